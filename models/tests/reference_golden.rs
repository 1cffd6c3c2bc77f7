//! The `models` spec against an independent PyTorch build of the same networks
//! (`models/tests/golden/reference_models/generate.py`, run once, output committed): parameter counts,
//! every state_dict key and shape in order, per-conv MACs, precision (default and reference-compat)
//! and dead layers.

use std::collections::HashMap;
use std::path::Path;

use bnas_models::{registry, CostKind, Layer, LayerOp, Liveness, NetworkConfig, NetworkSpec};
use serde_json::Value;

fn golden(model: &str) -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/reference_models/{model}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("golden file")).expect("golden JSON")
}

fn spec(model: &str) -> NetworkSpec {
    NetworkConfig::named(model).expect("named model").spec().expect("valid spec")
}

fn compat_spec(model: &str) -> NetworkSpec {
    NetworkConfig { reference_compat: true, ..NetworkConfig::named(model).expect("named model") }
        .spec()
        .expect("valid spec")
}

/// The module name a conv or linear layer's hook reports: its weight's name without `.weight`.
fn module_name(layer: &Layer) -> Option<String> {
    let weight = match &layer.op {
        LayerOp::Conv(conv) => &conv.weight,
        LayerOp::Linear { weight, .. } => weight,
        _ => return None,
    };
    Some(weight.trim_end_matches(".weight").to_owned())
}

#[test]
fn published_parameter_counts() {
    // The reference's own training logs (reference §6).
    assert_eq!(spec("bnas-a").param_count(), 5_578_252);
    assert_eq!(spec("bnas-f").param_count(), 39_781_442);
}

#[test]
fn every_named_model_matches_the_pytorch_build() {
    for model in registry::MODELS {
        let golden = golden(model.name);
        let spec = spec(model.name);
        assert_eq!(spec.param_count(), golden["params"].as_u64().unwrap(), "{} params", model.name);

        let ours: Vec<(String, Vec<usize>)> =
            spec.params().map(|p| (p.name.clone(), p.shape.clone())).collect();
        let theirs: Vec<(String, Vec<usize>)> = golden["state_dict"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let shape =
                    e["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
                (e["name"].as_str().unwrap().to_owned(), shape)
            })
            .collect();
        assert_eq!(ours, theirs, "{}: state_dict keys, shapes and order", model.name);
    }
}

#[test]
fn per_layer_macs_precision_and_deadness_match_the_pytorch_forward() {
    for model in registry::MODELS {
        let golden = golden(model.name);
        let spec = spec(model.name);
        let compat = compat_spec(model.name);
        let measured: HashMap<String, &Value> = golden["convs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap().to_owned(), c))
            .collect();
        let mut seen = 0;
        for (layer, compat_layer) in spec.layers.iter().zip(&compat.layers) {
            let Some(name) = module_name(layer) else { continue };
            let expected =
                measured.get(&name).unwrap_or_else(|| panic!("{}: {name} not in golden", model.name));
            let macs = layer.count(CostKind::FloatMac) + layer.count(CostKind::BinaryMac);
            assert_eq!(macs, expected["macs"].as_u64().unwrap(), "{} {name} MACs", model.name);
            assert_eq!(
                layer.precision.label(),
                expected["precision"].as_str().unwrap(),
                "{} {name}",
                model.name
            );
            let compat_precision = expected["compat_precision"].as_str().unwrap();
            assert_eq!(compat_layer.precision.label(), compat_precision, "{} {name} (compat)", model.name);
            if let Some(dead) = expected.get("dead") {
                assert_eq!(
                    layer.liveness == Liveness::Dead,
                    dead.as_bool().unwrap(),
                    "{} {name} dead",
                    model.name
                );
            }
            seen += 1;
        }
        assert_eq!(seen, measured.len(), "{}: every measured layer is in the spec", model.name);
    }
}

#[test]
fn golden_probe_found_exactly_the_documented_dead_layers() {
    // Reference §8: in BNAS-A's reduction cells (6 and 13), preprocess1 feeds only Zeroise.
    let golden = golden("bnas-a");
    let dead: Vec<&str> = golden["convs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["dead"].as_bool().unwrap())
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(dead, ["cells.6.preprocess1.op.0", "cells.13.preprocess1.op.0"]);
}
