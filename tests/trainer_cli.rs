//! `bnas search`, `bnas train` and `bnas eval` end to end on real Fashion-MNIST data (small
//! subsets, tiny networks): a search that moves the alphas and writes a genotype `bnas summary`
//! accepts, an exact resume, `bnas eval`'s prediction lines, and clear errors on bad input.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const FASHION: &str = "/usr/share/datasets/fashion-mnist";

fn bnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bnas")).args(args).output().expect("run bnas")
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn failure(args: &[&str]) -> String {
    let out = bnas(args);
    assert!(!out.status.success(), "expected {args:?} to fail");
    String::from_utf8(out.stderr).unwrap()
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn tiny_search_moves_alphas_and_writes_a_genotype_summary_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let summary: Value = serde_json::from_str(&ok(bnas(&[
        "search",
        "--out",
        out,
        "--layers",
        "3",
        "--channels",
        "4",
        "--epochs",
        "2",
        "--batch",
        "16",
        "--train-limit",
        "128",
        "--arch-lr",
        "0.01",
        "--device",
        "cpu",
        "--quiet",
        "--json",
    ])))
    .unwrap();
    let epochs = summary["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    // Adam at lr 0.01 for 8 steps moves each alpha by up to 0.08, against an initial spread of
    // 1e-3: a drift below 1e-3 would mean the alphas did not train.
    let drift = epochs[1]["alpha_drift"].as_f64().unwrap();
    assert!(drift > 1e-3, "alpha drift {drift}");
    assert!(epochs[1]["alpha_drift"].as_f64() > epochs[0]["alpha_drift"].as_f64());
    let entropy = epochs[1]["alpha_entropy"].as_f64().unwrap();
    assert!(entropy > 0.0 && entropy <= 7f64.ln() + 1e-9, "{entropy}");
    // Both files parse in `bnas summary`, and describe the same genotype.
    let txt = dir.path().join("genotype.txt");
    let json = dir.path().join("genotype.json");
    let from_txt: Value =
        serde_json::from_str(&ok(bnas(&["summary", "--model", txt.to_str().unwrap(), "--json"]))).unwrap();
    let from_json: Value =
        serde_json::from_str(&ok(bnas(&["summary", "--model", json.to_str().unwrap(), "--json"]))).unwrap();
    assert_eq!(from_txt["totals"], from_json["totals"]);
    assert!(dir.path().join("genotype_transfer.json").is_file());
    assert_eq!(jsonl(&dir.path().join("search.jsonl")).len(), 2);
}

/// A tiny training run's flags: 128 examples, batch 32 (4 steps per epoch), 2 epochs, 1 thread.
fn tiny_train(out: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "train",
        "--model",
        "bnas-a",
        "--layers",
        "3",
        "--channels",
        "4",
        "--out",
        out,
        "--epochs",
        "2",
        "--batch",
        "32",
        "--train-limit",
        "128",
        "--test-limit",
        "64",
        "--log-every",
        "1",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--quiet",
        "--json",
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run_strings(args: &[String]) -> String {
    ok(bnas(&args.iter().map(String::as_str).collect::<Vec<_>>()))
}

fn step_losses(dir: &Path) -> Vec<(u64, u64)> {
    jsonl(&dir.join("metrics.jsonl"))
        .iter()
        .filter(|r| r["event"] == "step")
        .map(|r| (r["step"].as_u64().unwrap(), r["loss"].as_f64().unwrap().to_bits()))
        .collect()
}

#[test]
fn resume_continues_bit_identically_and_eval_matches() {
    let whole = tempfile::tempdir().unwrap();
    let parts = tempfile::tempdir().unwrap();
    let (whole_dir, parts_dir) = (whole.path().to_str().unwrap(), parts.path().to_str().unwrap());
    let summary: Value = serde_json::from_str(&run_strings(&tiny_train(whole_dir, &[]))).unwrap();
    run_strings(&tiny_train(parts_dir, &["--stop-after-epochs", "1"]));
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(parts.path().join("state.json")).unwrap()).unwrap();
    assert_eq!(state["epochs_done"], 1);
    assert_eq!(state["step"], 4);
    for file in ["weights.safetensors", "optimizer.safetensors", "model.json"] {
        assert!(parts.path().join(file).is_file(), "{file}");
    }
    ok(bnas(&["train", "--out", parts_dir, "--resume", "--threads", "1", "--device", "cpu", "--quiet"]));
    let (a, b) = (step_losses(whole.path()), step_losses(parts.path()));
    assert_eq!(a.len(), 8);
    // Every step's loss, the four after the resume included, is bit-identical.
    assert_eq!(a, b);

    // `bnas eval` on the same 64 test images reproduces the last epoch's top-1 and writes
    // bnas-run's per-example lines.
    let predictions = whole.path().join("predictions.jsonl");
    let report: Value = serde_json::from_str(&ok(bnas(&[
        "eval",
        "--checkpoint",
        whole_dir,
        "--limit",
        "64",
        "--device",
        "cpu",
        "--json",
        "--predictions",
        predictions.to_str().unwrap(),
    ])))
    .unwrap();
    assert_eq!(report["top1"], summary["top1"]);
    let lines = jsonl(&predictions);
    assert_eq!(lines.len(), 64);
    let correct = lines.iter().filter(|l| l["label"] == l["pred"]).count();
    assert_eq!(correct as f64 / 64.0, report["top1"].as_f64().unwrap());
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["index"], i);
        assert_eq!(line["logits"].as_array().unwrap().len(), 10);
        let keys: Vec<&String> = line.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["index", "label", "logits", "pred"]);
    }
}

#[test]
fn bad_arguments_and_data_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ck");
    let out = out.to_str().unwrap();
    let err = failure(&[
        "train",
        "--model",
        "bnas-a",
        "--out",
        out,
        "--root",
        "/nonexistent/data",
        "--device",
        "cpu",
    ]);
    assert!(err.contains("/nonexistent/data") && err.contains("not found"), "{err}");
    let err = failure(&["train", "--model", "bnas-a", "--out", out, "--batch", "0", "--device", "cpu"]);
    assert!(err.contains("--batch") && err.contains("at least 1"), "{err}");
    let err = failure(&["train", "--out", out, "--device", "cpu"]);
    assert!(err.contains("--model is required"), "{err}");
    let err = failure(&["train", "--model", "bnas-a", "--out", out, "--input", "3x32x32", "--device", "cpu"]);
    assert!(err.contains("1x28x28 images") && err.contains("3x32x32 inputs"), "{err}");
    let err = failure(&["train", "--out", out, "--resume", "--device", "cpu"]);
    assert!(err.contains("not a checkpoint directory"), "{err}");
    let err = failure(&["eval", "--checkpoint", out, "--device", "cpu"]);
    assert!(err.contains("not a checkpoint directory"), "{err}");
    let err = failure(&["train", "--model", "bnas-a", "--out", out, "--device", "tpu"]);
    assert!(err.contains("\"tpu\" is not one of cpu, cuda, auto"), "{err}");
    let err = failure(&["search", "--out", out, "--layers", "2", "--device", "cpu"]);
    assert!(err.contains("at least 3 cells"), "{err}");
    let err = failure(&["search", "--out", out, "--data", "cifar10", "--device", "cpu"]);
    assert!(err.contains("--root") && err.contains("cifar10"), "{err}");
    assert!(Path::new(FASHION).is_dir(), "Fashion-MNIST is installed by scripts/setup.sh");
}
