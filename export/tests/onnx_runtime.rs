//! ONNX Runtime 1.31 (through `ort`, loading the library `scripts/setup.sh` installs) runs the
//! exported models, and its logits agree with bnas-runtime's on the same random inputs, at
//! batch 1 and batch 3.
//!
//! Agreement: per example, max |ORT - runtime| <= 1e-3 x the largest |logit| (a per-logit
//! relative error is meaningless for logits near zero).
//!
//! Near ties: a sign decision whose |bn(x)| is within float rounding of 0 may legitimately go
//! either way: the engines sum float layers in different orders, and the runtime binarizes
//! through a folded threshold while ONNX Runtime runs the BatchNorm. For every example
//! `diagnostics::sign_margins` recomputes bn(x) in f64 from the runtime's traced inputs, and every
//! decision with |bn(x)| < `TIE` is counted. `TIE` is
//! ten times the runtime-vs-f64 suite's 1e-5 because x here is the runtime's f32 value, not an
//! exact one. An example that disagrees is excused only if it has such a near tie; near ties
//! must stay rare (at most 1 in 1000 decisions), and most examples must be compared.

mod onnx_support;

use bnas_export::onnx::to_onnx;
use bnas_models::NetworkConfig;
use bnas_runtime::format::BnasFile;
use bnas_runtime::{Model, Options};
use onnx_protobuf::Message;
use onnx_support::{random_bnas, run, session, test_configs};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Below this |bn(x)| a sign decision counts as a near tie.
const TIE: f64 = 1e-4;

/// Logit tolerance relative to the largest |logit| of the example.
const TOLERANCE: f64 = 1e-3;

/// What one model's comparison found.
#[derive(Debug, Default)]
struct Agreement {
    examples: usize,
    /// Examples over the tolerance that had a near tie.
    excused: usize,
    /// Examples that had at least one near tie.
    with_near_ties: usize,
    near_ties: usize,
    decisions: usize,
    /// Largest relative difference over the examples not excused.
    max_relative: f64,
    max_abs: f64,
}

/// Exports a random-weight model of `config` and compares ONNX Runtime with the runtime at
/// batch 1 and batch 3 (and `extra` more batch sizes).
fn compare(label: &str, config: &NetworkConfig, seed: u64, batches: &[usize]) -> Agreement {
    let bytes = random_bnas(config, seed);
    let file = BnasFile::from_slice(&bytes).unwrap();
    let onnx = to_onnx(&file).unwrap_or_else(|e| panic!("{label}: {e}")).write_to_bytes().unwrap();
    let mut ort = session(&onnx);
    let model = Model::from_file(BnasFile::from_bytes(bytes).unwrap(), &Options::default()).unwrap();
    let (input, classes) = (config.input, config.classes);
    let per_sample = input.channels * input.height * input.width;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0ddba11);
    let mut found = Agreement::default();
    for &batch in batches {
        let x: Vec<f32> = (0..batch * per_sample).map(|_| rng.gen_range(-2.0f32..2.0)).collect();
        let shape = [batch, input.channels, input.height, input.width];
        let (out_shape, ort_logits) = run(&mut ort, "input", &shape, x.clone(), "logits");
        assert_eq!(out_shape, [batch as i64, classes as i64], "{label}: logits shape");
        let logits = model.run_batch(&x, batch).unwrap();
        for e in 0..batch {
            let (ours, theirs) = (&logits[e * classes..][..classes], &ort_logits[e * classes..][..classes]);
            let scale = ours.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs())).max(1e-6);
            let diff = ours
                .iter()
                .zip(theirs)
                .map(|(&a, &b)| (f64::from(a) - f64::from(b)).abs())
                .fold(0.0, f64::max);
            let margins =
                bnas_runtime::diagnostics::sign_margins(&model, &x[e * per_sample..][..per_sample]).unwrap();
            let (near, all) = (margins.iter().filter(|m| m.abs() < TIE).count(), margins.len());
            found.examples += 1;
            found.near_ties += near;
            found.decisions += all;
            found.with_near_ties += usize::from(near > 0);
            if diff > TOLERANCE * scale {
                assert!(
                    near > 0,
                    "{label}, batch {batch}, example {e}: ORT and the runtime differ by {diff:e} \
                     ({:e} of the largest logit {scale}) with no near tie\nruntime {ours:?}\nORT     {theirs:?}",
                    diff / scale
                );
                found.excused += 1;
            } else {
                found.max_relative = found.max_relative.max(diff / scale);
                found.max_abs = found.max_abs.max(diff);
            }
        }
    }
    eprintln!(
        "{label}: {} examples, max |diff| {:.3e} ({:.3e} of the largest logit); \
         {} of {} sign decisions within {TIE:e} of 0, in {} examples; {} examples excused",
        found.examples,
        found.max_abs,
        found.max_relative,
        found.near_ties,
        found.decisions,
        found.with_near_ties,
        found.excused
    );
    assert!(found.near_ties * 1000 <= found.decisions.max(1000), "{label}: too many near ties: {found:?}");
    assert!(found.excused * 2 < found.examples, "{label}: too many examples excused: {found:?}");
    found
}

#[test]
fn onnx_runtime_agrees_with_the_runtime_on_every_test_network() {
    for (i, (label, config)) in test_configs().into_iter().enumerate() {
        compare(label, &config, 500 + i as u64, &[1, 3]);
    }
}

#[test]
fn onnx_runtime_agrees_on_full_size_bnas_a_and_sizes_are_reported() {
    let config = NetworkConfig::named("bnas-a").unwrap();
    let bytes = random_bnas(&config, 1);
    let file = BnasFile::from_slice(&bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let onnx_bytes = bnas_export::onnx::write_onnx(&file, &dir.path().join("bnas-a.onnx")).unwrap();
    eprintln!(
        "bnas-a (random weights): .bnas {} bytes ({:.2} MiB), ONNX {} bytes ({:.2} MiB), ratio {:.2}",
        bytes.len(),
        bytes.len() as f64 / (1 << 20) as f64,
        onnx_bytes,
        onnx_bytes as f64 / (1 << 20) as f64,
        onnx_bytes as f64 / bytes.len() as f64
    );
    compare("bnas-a (full size)", &config, 1, &[1, 3]);
}
