//! `bnas summary` end to end: the table, the JSON contract, and clear errors on bad input.

use std::process::{Command, Output};

use bnas_models::{NetworkConfig, Summary};
use serde_json::Value;

fn bnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bnas")).args(args).output().expect("run bnas")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn json_totals_are_the_library_totals() {
    let json: Value =
        serde_json::from_str(&stdout(&bnas(&["summary", "--model", "bnas-a", "--json"]))).unwrap();
    let expected = Summary::of(&NetworkConfig::named("bnas-a").unwrap().spec().unwrap()).totals;
    let totals = &json["totals"];
    for (key, value) in [
        ("params", expected.params),
        ("float_macs", expected.float_macs),
        ("binary_macs", expected.binary_macs),
        ("fp32_bytes", expected.fp32_bytes),
        ("packed_bytes", expected.packed_bytes),
        ("peak_activation_bytes", expected.peak_activation_bytes),
    ] {
        assert_eq!(totals[key].as_u64(), Some(value), "{key}");
    }
    assert_eq!(totals["params"].as_u64(), Some(5_578_252));
    assert_eq!(totals["ops"].as_f64(), Some(expected.ops));
    let layers = json["layers"].as_array().unwrap();
    let dead = layers.iter().filter(|l| l["liveness"] == "dead").count();
    assert_eq!(dead, 2);
}

#[test]
fn table_lists_layers_and_totals() {
    let text = stdout(&bnas(&["summary", "--model", "bnas-a", "--input", "1x28x28"]));
    assert!(text.contains("cells.6.preprocess1"), "{text}");
    assert!(text.contains("pruned (dead)"));
    assert!(text.contains("576x7x7"));
    assert!(text.contains("Peak activations"));
    let registry = stdout(&bnas(&["summary"]));
    for model in ["bnas-a", "bnas-d", "bnas-e", "bnas-f", "bnas-g", "bnas-h"] {
        assert!(registry.contains(model), "{registry}");
    }
    assert!(registry.contains("39,781,442"));
}

#[test]
fn genotype_files_in_both_formats() {
    let dir = std::env::temp_dir().join(format!("bnas-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dense = bnas_models::registry::cell("dense").unwrap();
    let json = dir.join("dense.json");
    let text = dir.join("dense.txt");
    std::fs::write(&json, dense.to_json()).unwrap();
    std::fs::write(&text, dense.to_reference()).unwrap();
    let args = ["--topology", "imagenet", "--json"];
    for file in [&json, &text] {
        let out = stdout(&bnas(&[&["summary", "--model", file.to_str().unwrap()][..], &args[..]].concat()));
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["totals"]["params"].as_u64(), Some(28_407_560), "{}", file.display());
        // = BNAS-D
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_fails_with_a_message_not_a_panic() {
    let dir = std::env::temp_dir().join(format!("bnas-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.txt");
    let dense = bnas_models::registry::cell("dense").unwrap().to_reference();
    std::fs::write(&bad, dense.replacen("bin_conv_3x3", "sep_conv_3x3", 1)).unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["summary", "--model", bad.to_str().unwrap()], "unknown op 'sep_conv_3x3'"),
        (&["summary", "--model", "bnas-a", "--input", "3x30x30"], "cell 13 is a reduction cell at 15x15"),
        (&["summary", "--model", "bnas-q"], "unknown model 'bnas-q'"),
        (&["summary", "--model", "bnas-a", "--input", "3x32"], "not CxHxW"),
    ];
    for (args, message) in cases {
        let out = bnas(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_bnas"))
        .args(["summary", "--model", "bnas-h"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // like `| head` exiting before the report is written
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}
