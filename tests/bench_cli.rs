//! `bnas bench` end to end on BNAS-A with random weights: the JSON contract (the engines'
//! latencies, throughputs, memory and the ratios between them), the per-layer report and clear
//! errors. Timings are checked for consistency only, never for speed.

use std::process::{Command, Output};

use bnas_models::{NetworkConfig, Summary};
use serde_json::Value;

fn bnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bnas")).args(args).output().expect("run bnas")
}

fn number(value: &Value, key: &str) -> f64 {
    value[key].as_f64().unwrap_or_else(|| panic!("{key} is not a number in {value}"))
}

const ENGINES: [&str; 4] = ["bnas", "ort", "openvino", "torch"];

/// The engines an `engines` object names, in the order of [`ENGINES`] (JSON objects are
/// unordered).
fn engine_names(engines: &serde_json::Map<String, Value>) -> Vec<&str> {
    let mut names: Vec<&str> = engines.keys().map(String::as_str).collect();
    names.sort_by_key(|name| ENGINES.iter().position(|e| e == name).unwrap_or(usize::MAX));
    names
}

#[test]
fn json_reports_four_engines_and_consistent_ratios() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("bench.svg");
    let out = bnas(&[
        "bench",
        "--model",
        "bnas-a",
        "--batch",
        "1",
        "--iters",
        "2",
        "--threads",
        "1",
        "--json",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["model"], "bnas-a");
    assert_eq!(json["threads"], 1);
    assert_eq!(json["batch"], 1);
    let engines = json["engines"].as_object().unwrap();
    assert_eq!(engine_names(engines), ENGINES);
    for (name, engine) in engines {
        for key in ["median_ms", "p90_ms", "throughput"] {
            assert!(number(engine, key) > 0.0, "{name}.{key}");
        }
        assert!(number(engine, "p90_ms") >= number(engine, "median_ms"), "{name}");
        assert!(
            (number(engine, "throughput") * number(engine, "median_ms") / 1e3 - 1.0).abs() < 1e-9,
            "{name}"
        );
        assert!(engine["peak_rss_bytes"].as_u64().unwrap() > 1 << 20, "{name}: at least a MiB resident");
    }
    let median = |name: &str| number(&json["engines"][name], "median_ms");
    for (ratio, baseline) in
        [("speedup_vs_ort", "ort"), ("speedup_vs_openvino", "openvino"), ("speedup_vs_torch", "torch")]
    {
        let expected = median(baseline) / median("bnas");
        assert!((number(&json, ratio) / expected - 1.0).abs() < 1e-9, "{ratio}");
    }
    let totals = Summary::of(&NetworkConfig::named("bnas-a").unwrap().spec().unwrap()).totals;
    assert_eq!(json["float_macs"].as_u64(), Some(totals.float_macs));
    assert_eq!(json["binary_macs"].as_u64(), Some(totals.binary_macs));
    assert_eq!(json["ops"].as_f64(), Some(totals.ops));
    assert!(json["onnx_bytes"].as_u64().unwrap() > json["bnas_bytes"].as_u64().unwrap());
    for engine in &ENGINES[1..] {
        let agreement = &json["agreement"][engine];
        assert_eq!(agreement["samples"], 8, "{engine}: batch 1 is checked on 8 passes");
        let within = agreement["samples_within_tolerance"].as_u64().unwrap();
        if *engine == "openvino" {
            // It sums in its own order: a sign decision at rounding distance may flip.
            assert!(2 * within >= 8 && number(agreement, "median_difference") <= 1e-3, "{agreement}");
        } else {
            // They sum in the runtime's order: every sample agrees.
            assert_eq!(within, 8, "{engine}");
            assert!(number(agreement, "max_difference") <= 1e-3, "{engine}");
        }
    }
    let layers = json["layers"].as_array().unwrap();
    let binary: Vec<&Value> = layers.iter().filter(|l| l["op"] == "binary conv").collect();
    assert!(!binary.is_empty());
    let binary_macs: u64 = binary.iter().map(|l| l["binary_macs"].as_u64().unwrap()).sum();
    assert_eq!(binary_macs, totals.binary_macs, "the binary convs hold every binary MAC");
    for layer in binary {
        let percent = number(layer, "percent_of_peak");
        let rate = number(layer, "binary_macs_per_s");
        let expected = 100.0 * rate / number(&json, "binary_peak_macs_per_s");
        assert!(percent > 0.0 && (percent / expected - 1.0).abs() < 1e-9, "{}", layer["name"]);
    }
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("bnas-a"), "an SVG plot of the run");
}

#[test]
fn a_bnas_file_runs_on_all_four_engines() {
    let zoo = concat!(env!("CARGO_MANIFEST_DIR"), "/models/zoo/bnas-a-l8c16-fmnist.bnas");
    let out = bnas(&["bench", "--model", zoo, "--batch", "2", "--iters", "2", "--threads", "1", "--json"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["model"], zoo);
    assert_eq!(json["batch"], 2);
    let engines = json["engines"].as_object().unwrap();
    assert_eq!(engine_names(engines), ENGINES);
    for name in &ENGINES[1..] {
        let expected = number(&engines[*name], "median_ms") / number(&engines["bnas"], "median_ms");
        assert!((number(&json, &format!("speedup_vs_{name}")) / expected - 1.0).abs() < 1e-9, "{name}");
        let agreement = &json["agreement"][name];
        assert_eq!(agreement["samples"], 8, "{name}: batch 2 is checked on 4 passes");
        let within = agreement["samples_within_tolerance"].as_u64().unwrap();
        assert!(2 * within >= 8, "{name}: the bench refuses a baseline that disagrees on most samples");
    }
}

#[test]
fn an_unknown_model_is_a_clear_error() {
    let out = bnas(&["bench", "--model", "no-such-model", "--iters", "1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("neither a .bnas file nor a named model"), "{stderr}");
}
