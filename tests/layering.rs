//! The workspace's layering rule: only the trainer (and the CLI above it) links libtorch; the
//! architecture description, the runtime and the exporter must build without it, and the runtime
//! without protobuf.

use std::collections::{HashMap, HashSet};
use std::process::Command;

use serde_json::Value;

/// Every package reachable from `root` through normal (non-dev, non-build) dependencies.
fn closure<'a>(graph: &'a HashMap<&'a str, Vec<&'a str>>, root: &'a str) -> HashSet<&'a str> {
    let mut seen = HashSet::new();
    let mut stack = vec![root];
    while let Some(package) = stack.pop() {
        if seen.insert(package) {
            stack.extend(graph.get(package).into_iter().flatten());
        }
    }
    seen
}

#[test]
fn only_the_trainer_links_libtorch() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let graph: HashMap<&str, Vec<&str>> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| {
            let normal = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null()))
                .map(|d| names[d["pkg"].as_str().unwrap()])
                .collect();
            (names[node["id"].as_str().unwrap()], normal)
        })
        .collect();
    for package in ["bnas-models", "bnas-runtime", "bnas-export"] {
        let deps = closure(&graph, package);
        assert!(!deps.contains("torch-sys"), "{package} must not depend on libtorch: {deps:?}");
    }
    // The deployment runtime stays small: no protobuf either (that is the exporter's, for ONNX).
    let runtime = closure(&graph, "bnas-runtime");
    assert!(!runtime.contains("protobuf") && !runtime.contains("prost"), "{runtime:?}");
    assert!(closure(&graph, "bnas-trainer").contains("torch-sys"));
}

/// The packages `cargo tree` shows for `package`'s normal dependencies, with the features that
/// package itself turns on (not the workspace's union).
fn tree(package: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--locked", "-e", "normal", "--prefix", "none", "--format", "{p}", "-p", package])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("run cargo tree");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn sibling_crates_get_the_lean_runtime() {
    // The GPU backend, the server and the CLI glue are the binaries' features, never the
    // trainer's or the exporter's.
    for package in ["bnas-trainer", "bnas-export"] {
        let deps = tree(package);
        assert!(deps.iter().any(|d| d == "bnas-runtime"), "{package}: {deps:?}");
        for heavy in ["wgpu", "axum", "tokio", "clap"] {
            assert!(!deps.iter().any(|d| d == heavy), "{package} must not pull in {heavy}: {deps:?}");
        }
    }
    // The runtime's own default build has them all.
    let runtime = tree("bnas-runtime");
    for feature_dep in ["wgpu", "axum", "clap"] {
        assert!(runtime.iter().any(|d| d == feature_dep), "bnas-runtime defaults lack {feature_dep}");
    }
}
