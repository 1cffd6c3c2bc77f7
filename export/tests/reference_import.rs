//! Golden test of the reference checkpoint import (reference §7): `from_reference` turns PyTorch
//! checkpoints in the reference's key layout into `.bnas` models whose logits equal a PyTorch
//! forward of the reference's own arithmetic.
//!
//! `fixtures/reference/` holds two random-weight networks written by `generate.py` (a CIFAR one
//! with the BNAS-A genotype, Zeroise and pools included, and an ImageNet one with the dense
//! genotype of BNAS-D), each as a bare `module.` state_dict and as an ImageNet-style checkpoint
//! dict, in the legacy and the zip serialization. `expected.json` has their network flags, the
//! seeds of the inputs (rebuilt here from the same SplitMix64 stream) and the reference's logits:
//! eval mode, its conv selection (`reference_compat`), weights binarized as its evaluation does,
//! activations binarized by `torch.sign`, computed in float64. Every sign decision of the fixture
//! is at least 1e-4 away from 0, so PyTorch's sign(0) = 0 never arises, and float32 rounding
//! (about 1e-6 there) does not flip one. The fixture also records how far plausible mistakes
//! (uncentred or unclamped weights, the default conv selection) move the logits: far beyond the
//! tolerance.
//!
//! Agreement: max |logit - reference| <= 1e-3, absolute (the largest |logit| is 22 for the CIFAR
//! network and 38 for the ImageNet one, so this is under 5e-5 of it).

mod onnx_support;

use std::path::{Path, PathBuf};

use bnas_export::onnx::to_onnx;
use bnas_export::{from_reference, ExportError};
use bnas_models::{InputShape, NetworkConfig, Overrides, Precision};
use bnas_runtime::format::{BnasFile, Dtype, FloatStorage};
use bnas_runtime::{Model, Options};
use onnx_protobuf::Message;
use serde_json::Value as Json;

/// Largest allowed |logit - reference logit|, absolute.
const TOLERANCE: f64 = 1e-3;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference")
}

fn expected() -> Json {
    let path = fixtures().join("expected.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn usize_of(value: &Json) -> usize {
    usize::try_from(value.as_u64().unwrap_or_else(|| panic!("{value} is not a count"))).unwrap()
}

/// The Rust network of a fixture's recorded flags.
fn config_of(flags: &Json, change: impl FnOnce(&mut Overrides)) -> NetworkConfig {
    let input: Vec<usize> = flags["input"].as_array().unwrap().iter().map(usize_of).collect();
    let mut overrides = Overrides {
        layers: Some(usize_of(&flags["layers"])),
        channels: Some(usize_of(&flags["channels"])),
        classes: Some(usize_of(&flags["classes"])),
        input: Some(InputShape { channels: input[0], height: input[1], width: input[2] }),
        reference_compat: flags["reference_compat"].as_bool().unwrap(),
        ..Overrides::default()
    };
    change(&mut overrides);
    NetworkConfig::resolve(flags["model"].as_str().unwrap(), &overrides).unwrap()
}

/// Element `index` (0-based) of the fixture's input stream for `seed`: SplitMix64's output for
/// state `seed + (index + 1) * golden gamma`, its top 24 bits as a float in [-2, 2).
fn stream_value(seed: u64, index: u64) -> f32 {
    let mut z = seed.wrapping_add((index + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let top = i32::try_from(z >> 40).unwrap() - (1 << 23);
    // Both conversions are exact: |top| <= 2^23 and the divisor is a power of two.
    top as f32 / (1 << 22) as f32
}

/// One fixture network: its config, checkpoint files, inputs and reference logits.
struct Case {
    key: String,
    flags: Json,
    config: NetworkConfig,
    files: Vec<(String, PathBuf)>,
    batch: usize,
    inputs: Vec<f32>,
    /// `[batch, classes]`, row-major.
    logits: Vec<f64>,
    record: Json,
}

impl Case {
    fn input_shape(&self) -> [usize; 4] {
        let i = self.config.input;
        [self.batch, i.channels, i.height, i.width]
    }
}

fn cases() -> Vec<Case> {
    let expected = expected();
    let models = expected["models"].as_object().unwrap();
    assert_eq!(models.len(), 2, "the fixture has a CIFAR and an ImageNet network");
    models
        .iter()
        .map(|(key, record)| {
            let flags = record["flags"].clone();
            let config = config_of(&flags, |_| {});
            let files = record["files"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(form, name)| (form.clone(), fixtures().join(name.as_str().unwrap())))
                .collect::<Vec<_>>();
            assert_eq!(files.len(), 4, "{key}: legacy and zip, bare and dict");
            let batch = usize_of(&record["inputs"]["batch"]);
            let per_sample = config.input.channels * config.input.height * config.input.width;
            let inputs: Vec<f32> = record["inputs"]["seeds"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|seed| {
                    let seed = seed.as_u64().unwrap();
                    (0..per_sample as u64).map(move |i| stream_value(seed, i))
                })
                .collect();
            assert_eq!(inputs.len(), batch * per_sample, "{key}: one seed per example");
            // The values are multiples of 2^-22 below 2 in magnitude, so their f64 sum is exact
            // in any order; serde_json's default float parsing may miss the recorded sum by an ulp.
            let sum: f64 = inputs.iter().map(|&v| f64::from(v)).sum();
            let recorded = record["inputs"]["sum"].as_f64().unwrap();
            assert!(
                (sum - recorded).abs() <= 4.0 * f64::EPSILON * recorded.abs(),
                "{key}: input sum {sum} vs {recorded}"
            );
            for (got, want) in inputs.iter().zip(record["inputs"]["first"].as_array().unwrap()) {
                // f32 values, recorded exactly; an ulp of f64 parsing error rounds away.
                assert_eq!(*got, want.as_f64().unwrap() as f32, "{key}: first inputs");
            }
            let logits: Vec<f64> = record["logits"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
                .collect();
            assert_eq!(logits.len(), batch * config.classes, "{key}: logits shape");
            Case { key: key.clone(), flags, config, files, batch, inputs, logits, record: record.clone() }
        })
        .collect()
}

/// Max |logits - reference| over the batch.
fn max_difference(logits: &[f32], reference: &[f64]) -> f64 {
    assert_eq!(logits.len(), reference.len());
    // `f64::max` would skip a NaN.
    assert!(logits.iter().all(|v| v.is_finite()), "non-finite logits: {logits:?}");
    logits.iter().zip(reference).map(|(&a, &b)| (f64::from(a) - b).abs()).fold(0.0, f64::max)
}

/// One `.bnas` tensor: name, dtype, shape and raw bits (f32 bit patterns or packed words).
type TensorBits = (String, Dtype, Vec<usize>, Vec<u64>);

/// Every tensor of a `.bnas` file, in file order.
fn tensor_bits(file: &BnasFile) -> Vec<TensorBits> {
    file.tensors()
        .iter()
        .map(|info| {
            let bits = match info.dtype {
                Dtype::BinaryFilters | Dtype::DenseFilters => file.filters(&info.name).unwrap().to_vec(),
                _ => file.floats(&info.name).unwrap().iter().map(|v| u64::from(v.to_bits())).collect(),
            };
            (info.name.clone(), info.dtype, info.shape.clone(), bits)
        })
        .collect()
}

/// Imports `path` for `config` and reads the `.bnas` bytes back.
fn import(path: &Path, config: &NetworkConfig) -> BnasFile {
    let writer =
        from_reference(path, config, FloatStorage::F32).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    BnasFile::from_bytes(writer.to_bytes()).unwrap_or_else(|e| panic!("{}: re-reading: {e}", path.display()))
}

#[test]
fn the_fixture_matches_the_rust_network_description() {
    for case in cases() {
        let spec = case.config.spec().unwrap();
        assert!(
            case.config.reference_compat,
            "{}: the fixture is in the reference's conv selection",
            case.key
        );
        // The generator's compat convs (the reference's BinOp selection over its module tree)
        // are the spec's.
        let mut compat: Vec<String> = spec
            .layers
            .iter()
            .filter(|l| l.precision == Precision::BinaryInputFloatWeight)
            .map(|l| format!("{}.op.0", l.name))
            .collect();
        compat.sort();
        let want: Vec<String> = case.record["compat_convs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(compat, want, "{}: compat convs", case.key);
        assert_eq!(spec.params().count(), usize_of(&case.record["tensors"]), "{}: state_dict size", case.key);
        let margin = case.record["smallest_presign"].as_f64().unwrap();
        assert!(margin >= 1e-4, "{}: a sign decision {margin:e} from 0", case.key);
        let weights = case.record["smallest_centred_weight"].as_f64().unwrap();
        assert!(weights >= 1e-4, "{}: a centred weight {weights:e} from 0", case.key);
        // The logits tell the reference's arithmetic from near misses: uncentred or unclamped
        // weights, and the default conv selection wherever a compat conv is live.
        let live_compat = spec.live_layers().any(|l| l.precision == Precision::BinaryInputFloatWeight);
        for (miss, diff) in case.record["near_misses_max_diff"].as_object().unwrap() {
            let diff = diff.as_f64().unwrap();
            if miss == "default_conv_selection" && !live_compat {
                assert_eq!(diff, 0.0, "{}: a dead compat conv changed the logits", case.key);
            } else {
                assert!(diff > 100.0 * TOLERANCE, "{}: {miss} is only {diff:e} from the reference", case.key);
            }
        }
    }
}

#[test]
fn reference_checkpoints_import_to_models_with_the_reference_logits() {
    for case in cases() {
        let mut first: Option<(String, Vec<TensorBits>)> = None;
        for (form, path) in &case.files {
            let file = import(path, &case.config);
            let tensors = tensor_bits(&file);
            assert!(file.metadata().config.reference_compat, "{} {form}", case.key);
            let model = Model::from_file(file, &Options::default()).unwrap();
            let logits = model.run_batch(&case.inputs, case.batch).unwrap();
            let diff = max_difference(&logits, &case.logits);
            eprintln!("{} {form}: runtime max |logit - reference| = {diff:.3e}", case.key);
            assert!(
                diff <= TOLERANCE,
                "{} {form}: runtime logits differ from the reference's by {diff:e}",
                case.key
            );
            match &first {
                None => first = Some((form.clone(), tensors)),
                Some((first_form, want)) => {
                    assert_eq!(
                        tensors.len(),
                        want.len(),
                        "{} {form} vs {first_form}: tensor count",
                        case.key
                    );
                    for (got, want) in tensors.iter().zip(want) {
                        assert!(
                            got == want,
                            "{} {form} vs {first_form}: tensor `{}` differs",
                            case.key,
                            got.0
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn onnx_runtime_runs_the_imported_models_with_the_reference_logits() {
    for case in cases() {
        // The four files give bit-identical tensors (checked above): one ONNX export per network.
        let (form, path) = &case.files[0];
        let file = import(path, &case.config);
        let onnx = to_onnx(&file).unwrap_or_else(|e| panic!("{} {form}: ONNX export: {e}", case.key));
        let mut session = onnx_support::session(&onnx.write_to_bytes().unwrap());
        let shape = case.input_shape();
        let (out_shape, logits) =
            onnx_support::run(&mut session, "input", &shape, case.inputs.clone(), "logits");
        assert_eq!(
            out_shape,
            [case.batch as i64, case.config.classes as i64],
            "{}: ORT logits shape",
            case.key
        );
        let diff = max_difference(&logits, &case.logits);
        eprintln!("{} {form}: ONNX Runtime max |logit - reference| = {diff:.3e}", case.key);
        assert!(diff <= TOLERANCE, "{} {form}: ORT logits differ from the reference's by {diff:e}", case.key);
    }
}

/// The error of importing `path` for `config`, which must fail.
fn import_error(path: &Path, config: &NetworkConfig) -> ExportError {
    match from_reference(path, config, FloatStorage::F32) {
        Ok(_) => panic!("{} imported as {} with {} channels", path.display(), config.name, config.channels),
        Err(e) => e,
    }
}

#[test]
fn a_checkpoint_of_another_architecture_is_an_error_naming_a_tensor() {
    let cases = cases();
    let cifar = cases.iter().find(|c| c.key == "cifar").unwrap();
    let imagenet = cases.iter().find(|c| c.key == "imagenet").unwrap();
    for case in [cifar, imagenet] {
        for (form, path) in &case.files {
            let at = format!("{} {form}", case.key);
            // Another channel count: the same keys with other shapes.
            let wider = config_of(&case.flags, |o| o.channels = Some(16));
            match import_error(path, &wider) {
                ExportError::BadTensor { name, problem, .. } => {
                    assert!(problem.contains("shape"), "{at}: {problem}");
                    let known = case.config.spec().unwrap().params().any(|p| p.name == name);
                    assert!(known, "{at}: names `{name}`");
                }
                other => panic!("{at}: 16 channels: {other}"),
            }
            if form == &case.files[0].0 {
                eprintln!("{at} as 16 channels: {}", import_error(path, &wider));
            }
            // Another class count: only the classifier differs.
            let classes = config_of(&case.flags, |o| o.classes = Some(7));
            match import_error(path, &classes) {
                ExportError::BadTensor { name, .. } => assert_eq!(name, "classifier.weight", "{at}"),
                other => panic!("{at}: 7 classes: {other}"),
            }
            // One more cell: its tensors are missing.
            let deeper = config_of(&case.flags, |o| o.layers = Some(4));
            let error = import_error(path, &deeper);
            let message = error.to_string();
            if form == &case.files[0].0 {
                eprintln!("{at} as 4 cells: {message}");
            }
            assert!(
                matches!(&error, ExportError::MissingTensor { name, .. } | ExportError::BadTensor { name, .. }
                    if message.contains(name.as_str()) && name.starts_with("cells.")),
                "{at}: 4 cells: {error:?}"
            );
        }
    }
    // The other topology: keys the network does not have, the first one named.
    for (from, to) in [(imagenet, cifar), (cifar, imagenet)] {
        let (_, path) = &from.files[0];
        let error = import_error(path, &to.config);
        let message = error.to_string();
        eprintln!("{} checkpoint as {}: {message}", from.key, to.key);
        assert!(
            matches!(error, ExportError::Checkpoint { .. }) && message.contains("(first: `"),
            "{} checkpoint as {}: {message}",
            from.key,
            to.key
        );
    }
}
