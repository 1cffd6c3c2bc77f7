//! The three engines agree on real images: the trainer's libtorch forward (`bnas eval
//! --predictions`), the bnas runtime (the library `bnas-run` is built on) on the exported `.bnas`,
//! and ONNX Runtime on the exported ONNX. Cases: a Fashion-MNIST model (1x28x28, 1,000 test
//! images) and a CIFAR-10 model (3x32x32, the 20 real CIFAR-10 test images of the foolbox wheel),
//! each trained briefly by `bnas train` so that its weights and BatchNorm statistics are real.
//!
//! Every example is compared: every pair of engines must agree within 1e-3 on every logit, with
//! the same argmax wherever the top-2 margin exceeds 1e-3, unless a sign decision of that example
//! fell within 1e-5 of zero (|bn(x)| < 1e-5, found from the runtime's trace; exact structural
//! zeros, which every engine computes exactly, do not count), where float rounding may flip it.
//! Such differing examples are counted and must be under 1%. (Examples with a near-zero decision
//! are common, since a network makes tens of thousands of decisions per image; most still agree,
//! and they are checked like the others.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bnas_export::onnx_runtime::OrtModel;
use bnas_runtime::data::{self, DatasetKind, Split};
use bnas_runtime::Model;
use serde_json::Value;

const FASHION: &str = "/usr/share/datasets/fashion-mnist";
const TIE: f64 = 1e-5;
const TOLERANCE: f32 = 1e-3;

fn bnas(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_bnas")).args(args).output().expect("run bnas");
    assert!(out.status.success(), "bnas {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The 20 CIFAR-10 test PNGs (`cifar10_<i>_<label>.png`) as a CIFAR-10 binary data set: every
/// train batch and the test batch hold all 20.
fn cifar_root(dir: &Path) -> PathBuf {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/cifar10-samples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&samples)
        .unwrap_or_else(|e| panic!("{}: {e} (run bash scripts/setup.sh)", samples.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 20, "the foolbox wheel ships 20 CIFAR-10 images");
    let mut records = Vec::new();
    for path in &files {
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let label: u8 = stem.rsplit('_').next().unwrap().parse().unwrap();
        let image = image::open(path).unwrap().to_rgb8();
        records.push(label);
        for channel in 0..3 {
            records.extend(image.pixels().map(|p| p.0[channel]));
        }
    }
    let root = dir.join("cifar");
    std::fs::create_dir_all(&root).unwrap();
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    {
        std::fs::write(root.join(format!("{name}.bin")), &records).unwrap();
    }
    root
}

/// Compares two engines' logits of one example; returns a description of the first problem.
fn disagreement(a: &[f32], b: &[f32]) -> Option<String> {
    let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    if worst > TOLERANCE {
        return Some(format!("max |logit difference| {worst}"));
    }
    let argmax = |l: &[f32]| (0..l.len()).max_by(|&i, &j| l[i].total_cmp(&l[j])).unwrap();
    let mut sorted = a.to_vec();
    sorted.sort_by(|x, y| y.total_cmp(x));
    let margin = sorted[0] - sorted.get(1).copied().unwrap_or(f32::NEG_INFINITY);
    (margin > TOLERANCE && argmax(a) != argmax(b)).then(|| format!("argmax {} vs {}", argmax(a), argmax(b)))
}

/// Trains a small model on `data`, exports it, and checks the three engines on the first
/// `examples` test images.
fn check(data: &str, root: &Path, examples: usize, dir: &Path) {
    let root = root.to_str().unwrap();
    let checkpoint = dir.join(format!("{data}-checkpoint"));
    let (bnas_path, onnx_path, trainer_path) = (
        dir.join(format!("{data}.bnas")),
        dir.join(format!("{data}.onnx")),
        dir.join(format!("{data}-trainer.jsonl")),
    );
    let p = |path: &Path| path.to_str().unwrap().to_owned();
    bnas(&[
        "train",
        "--model",
        "bnas-a",
        "--layers",
        "3",
        "--channels",
        "8",
        "--data",
        data,
        "--root",
        root,
        "--epochs",
        "1",
        "--batch",
        "32",
        "--train-limit",
        "320",
        "--test-limit",
        "64",
        "--device",
        "cpu",
        "--threads",
        "2",
        "--quiet",
        "--out",
        &p(&checkpoint),
    ]);
    bnas(&["export", "--checkpoint", &p(&checkpoint), "--out", &p(&bnas_path), "--onnx", &p(&onnx_path)]);
    let limit = examples.to_string();
    bnas(&[
        "eval",
        "--checkpoint",
        &p(&checkpoint),
        "--data",
        data,
        "--root",
        root,
        "--limit",
        &limit,
        "--device",
        "cpu",
        "--predictions",
        &p(&trainer_path),
        "--json",
    ]);
    let trainer: Vec<Vec<f32>> = std::fs::read_to_string(&trainer_path)
        .unwrap()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            v["logits"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
        })
        .collect();
    assert_eq!(trainer.len(), examples);

    let model = Model::load(&bnas_path).unwrap();
    let mut ort = OrtModel::new(&std::fs::read(&onnx_path).unwrap(), 2).unwrap();
    let kind: DatasetKind = data.parse().unwrap();
    let dataset = data::open(kind, Path::new(root), Split::Test).unwrap();
    let pre = &model.metadata().preprocess;
    let sample = [pre.color.channels(), pre.height, pre.width];
    let classes = model.metadata().class_names.len();
    let (mut near_zero, mut differing) = (0, 0);
    for start in (0..examples).step_by(50) {
        let indices: Vec<usize> = (start..examples.min(start + 50)).collect();
        let (input, _) = data::batch(dataset.as_ref(), pre, &indices).unwrap();
        let runtime = model.run_batch(&input, indices.len()).unwrap();
        let onnx = ort.run(input.clone(), indices.len(), sample).unwrap();
        for (k, &index) in indices.iter().enumerate() {
            let x = &input[k * model.input_len()..][..model.input_len()];
            let fragile =
                bnas_runtime::diagnostics::sign_margins(&model, x).unwrap().iter().any(|m| m.abs() < TIE);
            near_zero += usize::from(fragile);
            let logits =
                [&trainer[index][..], &runtime[k * classes..][..classes], &onnx[k * classes..][..classes]];
            for (a, b, names) in
                [(0, 1, "trainer vs runtime"), (0, 2, "trainer vs ORT"), (1, 2, "runtime vs ORT")]
            {
                if let Some(problem) = disagreement(logits[a], logits[b]) {
                    // Only a sign decision that rounding can flip may explain a difference.
                    assert!(
                        fragile,
                        "{data} example {index}, {names}: {problem}\n{:?}\n{:?}",
                        logits[a], logits[b]
                    );
                    differing += 1;
                    break;
                }
            }
        }
    }
    eprintln!(
        "{data}: {} of {examples} examples agree; {differing} differ, each with a sign decision within \
         {TIE:e} of zero; {near_zero} examples had such a decision",
        examples - differing
    );
    assert!(differing * 100 < examples.max(100), "{differing} of {examples} examples differ");
}

#[test]
fn trainer_runtime_and_onnx_runtime_agree_on_fashion_mnist() {
    let dir = tempfile::tempdir().unwrap();
    check("fashion-mnist", Path::new(FASHION), 1000, dir.path());
}

#[test]
fn trainer_runtime_and_onnx_runtime_agree_on_real_cifar10_images() {
    let dir = tempfile::tempdir().unwrap();
    let root = cifar_root(dir.path());
    check("cifar10", &root, 20, dir.path());
}
