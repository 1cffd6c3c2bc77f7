//! `bnas-run` end to end: init, summary, bench, predict and eval on real Fashion-MNIST files,
//! and clear errors (never panics) on bad models, images and flags.

#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::Command;

use bnas_runtime::data::{self, DatasetKind, Split};
use serde_json::Value;
use support::{bnas_run, succeed};

mod support;

const FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// A failing run: its stderr, which must not be a panic.
fn fail(args: &[&str]) -> String {
    let out = bnas_run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "bnas-run {args:?} should fail");
    assert!(!stderr.contains("panicked"), "bnas-run {args:?} panicked: {stderr}");
    stderr
}

/// A small random Fashion-MNIST model (BNAS-A cells at 1x28x28).
fn small_model(dir: &Path) -> PathBuf {
    let path = dir.join("small.bnas");
    let p = path.to_str().unwrap();
    succeed(&[
        "init",
        "--model",
        "bnas-a",
        "--layers",
        "3",
        "--channels",
        "8",
        "--input",
        "1x28x28",
        "--out",
        p,
        "--seed",
        "3",
    ]);
    path
}

/// Test image `index` of Fashion-MNIST saved as a PNG.
fn fashion_png(dir: &Path, index: usize) -> PathBuf {
    let test = data::open(DatasetKind::FashionMnist, Path::new(FASHION_MNIST), Split::Test)
        .expect("bash scripts/setup.sh installs Fashion-MNIST");
    let example = test.get(index).unwrap();
    let path = dir.join(format!("fashion_{index}.png"));
    image::GrayImage::from_raw(28, 28, example.image.pixels).unwrap().save(&path).unwrap();
    path
}

#[test]
fn init_summary_and_bench_report_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path());
    let m = model.to_str().unwrap();
    let text = succeed(&["summary", "--model", m]);
    assert!(text.contains("cells.2.residual") && text.contains("random weights, seed 3"), "{text}");
    let json: Value = serde_json::from_str(&succeed(&["summary", "--model", m, "--json"])).unwrap();
    assert_eq!(json["metadata"]["class_names"][9], "Ankle boot");
    assert_eq!(json["metadata"]["config"]["layers"], 3);

    let bench: Value = serde_json::from_str(&succeed(&[
        "bench",
        "--model",
        m,
        "--iters",
        "3",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--json",
    ]))
    .unwrap();
    assert_eq!(bench["threads"], 1);
    assert!(bench["median_ms"].as_f64().unwrap() > 0.0);
    assert!(bench["p90_ms"].as_f64().unwrap() >= bench["median_ms"].as_f64().unwrap());
    assert!(bench["binary_gmacs_per_s"].as_f64().unwrap() > 0.0);
    let layers = bench["layers"].as_array().unwrap();
    let share: f64 = layers.iter().map(|l| l["share"].as_f64().unwrap()).sum();
    assert!((share - 1.0).abs() < 1e-6, "shares sum to {share}");
    let text = succeed(&["bench", "--model", m, "--iters", "2", "--warmup", "0", "--batch", "3"]);
    assert!(text.contains("batch 3") && text.contains("binary GMAC/s"), "{text}");
}

#[test]
fn predict_reports_each_file_and_keeps_going_after_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path());
    let good = fashion_png(dir.path(), 0);
    let corrupt = dir.path().join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let wrong_size = dir.path().join("wrong_size.png");
    image::GrayImage::new(10, 12).save(&wrong_size).unwrap();
    let paths = [&good, &corrupt, &wrong_size].map(|p| p.to_str().unwrap().to_owned());
    let mut args = vec!["predict", "--model", model.to_str().unwrap(), "--top-k", "3", "--json"];
    args.extend(paths.iter().map(String::as_str));
    let out = bnas_run(&args);
    assert!(!out.status.success(), "a failed image makes the exit status an error");
    let results: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 3);
    let top = results[0]["top_k"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    let scores: Vec<f64> = top.iter().map(|p| p["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]) && scores.iter().sum::<f64>() <= 1.0 + 1e-6);
    assert!(
        results[1]["top_k"].as_array().unwrap().is_empty()
            && results[1]["error"].as_str().unwrap().contains("corrupt.png"),
        "{}",
        results[1]
    );
    assert!(
        results[2]["error"].as_str().unwrap().contains("10x12")
            || results[2]["error"].as_str().unwrap().contains("12"),
        "{}",
        results[2]
    );
    let text = succeed(&["predict", "--model", model.to_str().unwrap(), good.to_str().unwrap()]);
    assert!(text.contains("fashion_0.png"), "{text}");
}

#[test]
fn eval_matches_its_predictions_file_and_predict() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path());
    let predictions = dir.path().join("preds.jsonl");
    let report: Value = serde_json::from_str(&succeed(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        "fashion-mnist",
        "--root",
        FASHION_MNIST,
        "--limit",
        "300",
        "--batch",
        "64",
        "--predictions",
        predictions.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    assert_eq!(report["examples"], 300);
    let lines: Vec<Value> = std::fs::read_to_string(&predictions)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 300);
    let (mut top1, mut top5) = (0, 0);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["index"], i);
        let logits: Vec<f64> =
            line["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let label = line["label"].as_u64().unwrap() as usize;
        let pred = line["pred"].as_u64().unwrap() as usize;
        assert!(logits.iter().all(|&l| l <= logits[pred]));
        let above = logits.iter().filter(|&&l| l > logits[label]).count();
        top1 += usize::from(above == 0);
        top5 += usize::from(above < 5);
    }
    assert_eq!(report["top1"].as_f64().unwrap(), top1 as f64 / 300.0);
    assert_eq!(report["top5"].as_f64().unwrap(), top5 as f64 / 300.0);
    // The PNG of test image 7 goes through the same preprocessing as the reader's example 7.
    let png = fashion_png(dir.path(), 7);
    let predicted: Value = serde_json::from_str(&succeed(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--top-k",
        "1",
        "--json",
        png.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(predicted[0]["top_k"][0]["index"], lines[7]["pred"]);
}

/// The shipped model: its sample PNGs (Fashion-MNIST test images, named by index) are predicted
/// as the data set labels them, and the whole test set scores at least its documented 90%.
#[test]
fn shipped_zoo_model_predicts_its_samples_and_scores_90_percent() {
    let zoo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/zoo");
    let model = zoo.join("bnas-a-l8c16-fmnist.bnas");
    let model = model.to_str().unwrap();
    let test = data::open(DatasetKind::FashionMnist, Path::new(FASHION_MNIST), Split::Test).unwrap();
    let mut samples: Vec<PathBuf> =
        std::fs::read_dir(zoo.join("samples")).unwrap().map(|entry| entry.unwrap().path()).collect();
    samples.sort();
    assert!(!samples.is_empty());
    for sample in &samples {
        let name = sample.file_name().unwrap().to_str().unwrap();
        let index: usize = name.split('-').nth(1).and_then(|i| i.parse().ok()).expect("test-INDEX-label.png");
        let predicted: Value = serde_json::from_str(&succeed(&[
            "predict",
            "--model",
            model,
            "--top-k",
            "1",
            "--json",
            sample.to_str().unwrap(),
        ]))
        .unwrap();
        assert_eq!(predicted[0]["top_k"][0]["index"], test.get(index).unwrap().label, "{name}");
    }
    let report: Value = serde_json::from_str(&succeed(&[
        "eval",
        "--model",
        model,
        "--data",
        "fashion-mnist",
        "--root",
        FASHION_MNIST,
        "--json",
    ]))
    .unwrap();
    assert_eq!(report["examples"], 10_000);
    assert!(report["top1"].as_f64().unwrap() >= 0.90, "{report}");
}

#[test]
fn bad_models_and_flags_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path());
    let bytes = std::fs::read(&model).unwrap();
    let truncated = dir.path().join("truncated.bnas");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let t = truncated.to_str().unwrap();
    for command in ["summary", "bench"] {
        let stderr = fail(&[command, "--model", t]);
        assert!(stderr.contains("truncated.bnas"), "{stderr}");
    }
    let missing = fail(&["bench", "--model", "/nonexistent/model.bnas"]);
    assert!(missing.contains("/nonexistent/model.bnas"), "{missing}");
    let m = model.to_str().unwrap();
    assert!(fail(&["bench", "--model", m, "--threads", "0"]).contains("--threads"));
    assert!(fail(&["bench", "--model", m, "--isa", "neon"]).contains("neon"));
    let eval = fail(&["eval", "--model", m, "--data", "cifar10", "--root", dir.path().to_str().unwrap()]);
    assert!(eval.contains("data_batch") || eval.contains("test_batch"), "{eval}");
    let forced = Command::new(env!("CARGO_BIN_EXE_bnas-run"))
        .args(["bench", "--model", m, "--iters", "1"])
        .env("BNAS_FORCE_ISA", "sse9")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&forced.stderr);
    assert!(!forced.status.success() && stderr.contains("sse9") && !stderr.contains("panicked"), "{stderr}");
    // An output that cannot be written leaves nothing behind.
    let out = dir.path().join("no_such_dir").join("m.bnas");
    fail(&["init", "--model", "bnas-a", "--out", out.to_str().unwrap()]);
    assert!(!out.exists());
}

/// Whether `bnas-run --device gpu` finds an adapter; without one the GPU tests print a
/// notice on the real stderr and stop, unless `BNAS_REQUIRE_GPU` makes that a failure.
fn gpu_available(model: &str, image: &str) -> bool {
    let out = bnas_run(&["predict", "--model", model, "--device", "gpu", image]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return true;
    }
    assert!(
        stderr.contains("no usable wgpu adapter") && std::env::var_os("BNAS_REQUIRE_GPU").is_none(),
        "the GPU backend must run here: {stderr}"
    );
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "NOTICE: bnas-run GPU tests SKIPPED: {}", stderr.trim());
    false
}

#[test]
fn gpu_device_predicts_and_benchmarks_like_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path());
    let m = model.to_str().unwrap();
    let images: Vec<PathBuf> = (0..4).map(|i| fashion_png(dir.path(), i)).collect();
    let image_args: Vec<&str> = images.iter().map(|p| p.to_str().unwrap()).collect();
    if !gpu_available(m, image_args[0]) {
        return;
    }
    let predict = |device: &str| -> Value {
        let mut args = vec!["predict", "--model", m, "--device", device, "--top-k", "3", "--json"];
        args.extend(&image_args);
        serde_json::from_str(&succeed(&args)).unwrap()
    };
    let (cpu, gpu) = (predict("cpu"), predict("gpu"));
    for (c, g) in cpu.as_array().unwrap().iter().zip(gpu.as_array().unwrap()) {
        for (c, g) in c["top_k"].as_array().unwrap().iter().zip(g["top_k"].as_array().unwrap()) {
            assert_eq!(c["label"], g["label"], "cpu {c} vs gpu {g}");
            let (c, g) = (c["score"].as_f64().unwrap(), g["score"].as_f64().unwrap());
            assert!((c - g).abs() < 1e-4, "score cpu {c} vs gpu {g}");
        }
    }
    let bench: Value = serde_json::from_str(&succeed(&[
        "bench", "--model", m, "--device", "gpu", "--batch", "5", "--iters", "2", "--warmup", "1", "--json",
    ]))
    .unwrap();
    assert!(bench["backend"].as_str().unwrap().starts_with("gpu ("), "{bench}");
    let share: f64 = bench["layers"].as_array().unwrap().iter().map(|l| l["share"].as_f64().unwrap()).sum();
    assert!((share - 1.0).abs() < 1e-6, "shares sum to {share}");
    assert!(bench["median_ms"].as_f64().unwrap() > 0.0);
    // lavapipe is a software adapter: `auto` keeps the CPU and says why.
    let out = bnas_run(&["predict", "--model", m, "--device", "auto", image_args[0]]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let gpu_name = bench["backend"].as_str().unwrap();
    if gpu_name.contains("Cpu)") {
        assert!(stderr.contains("--device auto runs on the CPU"), "{stderr}");
    }
}

#[test]
fn model_takes_a_network_name_where_no_weights_are_needed_and_says_so_where_they_are() {
    // A network name where either works: the same layer costs as `bnas_models` computes.
    let json: Value = serde_json::from_str(&succeed(&["summary", "--model", "bnas-a", "--json"])).unwrap();
    let spec = bnas_models::NetworkConfig::named("bnas-a").unwrap().spec().unwrap();
    let totals = bnas_models::Summary::of(&spec).totals;
    assert_eq!(json["totals"]["binary_macs"], totals.binary_macs);
    assert_eq!(json["totals"]["float_macs"], totals.float_macs);
    let bench: Value = serde_json::from_str(&succeed(&[
        "bench",
        "--model",
        "dense",
        "--iters",
        "2",
        "--warmup",
        "0",
        "--threads",
        "1",
        "--json",
    ]))
    .unwrap();
    let dense = bnas_models::NetworkConfig::resolve("dense", &Default::default()).unwrap().spec().unwrap();
    assert_eq!(bench["model"], "dense");
    assert_eq!(bench["binary_macs"], bnas_models::Summary::of(&dense).totals.binary_macs);
    // Where only trained weights work, a network name is refused with the commands that make a file.
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/zoo/samples/test-00000-Ankle-boot.png");
    let mut refused = vec![vec!["predict", "--model", "bnas-a", image.to_str().unwrap()]];
    if cfg!(feature = "serve") {
        refused.push(vec!["serve", "--model", "bnas-a"]);
    }
    for args in refused {
        let stderr = fail(&args);
        assert!(
            stderr.contains("`bnas-a` names a network")
                && stderr.contains("bnas-run init")
                && stderr.contains("bnas export"),
            "{args:?}: {stderr}"
        );
    }
    // One thread-count parser: 0 is refused before anything runs.
    let stderr = fail(&["bench", "--model", "bnas-a", "--threads", "0"]);
    assert!(stderr.contains("--threads") && stderr.contains("at least 1"), "{stderr}");
}
