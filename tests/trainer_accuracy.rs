//! A short real training run: BNAS-A's cell at 3 cells and 16 channels, trained from scratch on
//! 6,000 Fashion-MNIST training images for 3 epochs (282 steps), must classify at least 70% of
//! 1,000 held-out test images (chance is 10%; this run reached 74% on the development machine).
//! The binary cells, the weight-gradient rewrite, the optimizer and the schedule all have to
//! work for a binary network to get there. So short a run learns faster without augmentation
//! and drop-path, which are for long runs.

use std::process::Command;

use serde_json::Value;

#[test]
fn short_fashion_mnist_run_reaches_70_percent_on_1000_test_images() {
    let dir = tempfile::tempdir().unwrap();
    let flags = "train --model bnas-a --layers 3 --channels 16 --epochs 3 --batch 64 --lr 0.02 --no-augment \
                 --drop-path 0 --train-limit 6000 --test-limit 1000 --device cpu --quiet --json";
    let out = Command::new(env!("CARGO_BIN_EXE_bnas"))
        .args(flags.split_whitespace())
        .arg("--out")
        .arg(dir.path())
        .output()
        .expect("run bnas");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["test_examples"], 1000);
    assert_eq!(summary["steps"], 282);
    let top1 = summary["top1"].as_f64().unwrap();
    assert!(top1 >= 0.70, "test top-1 {top1}");
}
