//! Shared by the ONNX export tests: ONNX Runtime and the Python `onnx` checker (both installed
//! by `bash scripts/setup.sh`, neither ever skipped), and the random models the tests export.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use bnas_export::onnx_runtime::OrtModel;
use bnas_models::{Edge, Genotype, InputShape, NetworkConfig, OpKind, Overrides};
use bnas_runtime::format::FloatStorage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("export/ has a parent").to_owned()
}

const SETUP_HINT: &str = "run `bash scripts/setup.sh` from the workspace root";

/// An ONNX Runtime session (CPU, 2 threads) for a serialized model, through the crate's
/// runner; fails the test with the reason (and the fix) when ONNX Runtime cannot load.
pub fn session(model: &[u8]) -> OrtModel {
    OrtModel::new(model, 2).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `session` on one float input of `shape` named `input`; returns the output `output` and
/// its shape.
pub fn run(
    session: &mut OrtModel,
    input: &str,
    shape: &[usize],
    values: Vec<f32>,
    output: &str,
) -> (Vec<i64>, Vec<f32>) {
    session.run_named(input, shape, values, output).unwrap_or_else(|e| panic!("{e}"))
}

/// The Python of the venv `scripts/setup.sh` creates, with the `onnx` package.
pub fn python() -> PathBuf {
    let python = workspace_root().join(".deps/python/bin/python");
    assert!(
        python.exists(),
        "{} is missing: the ONNX checker needs the venv with the onnx package; {SETUP_HINT}",
        python.display()
    );
    python
}

/// Runs `onnx.checker.check_model(onnx.load(path), full_check=True)` on each file; returns
/// (success, the checker's stderr) per file.
pub fn onnx_check(paths: &[&Path]) -> Vec<(bool, String)> {
    let python = python();
    paths
        .iter()
        .map(|path| {
            let out = Command::new(&python)
                .args([
                    "-c",
                    "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)",
                ])
                .arg(path)
                .output()
                .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
            (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
        })
        .collect()
}

/// A genotype whose cells use every op, Zeroise included: a node that is all Zeroise (so the
/// concat has a zero part, and a conv and a pool read a zero tensor), pools on strided inputs.
pub fn zeroise_and_pools_genotype() -> Genotype {
    use OpKind::*;
    let edge = |op, input| Edge { op, input };
    let normal = vec![
        edge(AvgPool3x3, 1),
        edge(BinConv5x5, 0),
        edge(None, 0),
        edge(None, 2),
        edge(BinConv3x3, 3),
        edge(MaxPool3x3, 3),
        edge(BinDilConv5x5, 2),
        edge(AvgPool3x3, 4),
    ];
    let reduce = vec![
        edge(MaxPool3x3, 0),
        edge(None, 1),
        edge(AvgPool3x3, 1),
        edge(BinDilConv3x3, 2),
        edge(None, 3),
        edge(None, 0),
        edge(MaxPool3x3, 4),
        edge(BinConv3x3, 2),
    ];
    Genotype::new(normal, reduce).expect("a valid genotype")
}

/// A random genotype that has at least one Zeroise and one pool in each cell.
pub fn random_genotype(seed: u64) -> Genotype {
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        let mut cell = || -> Vec<Edge> {
            (0..8)
                .map(|i| Edge {
                    op: OpKind::ALL[rng.gen_range(0..OpKind::ALL.len())],
                    input: rng.gen_range(0..Edge::node_of(i)),
                })
                .collect()
        };
        let (normal, reduce) = (cell(), cell());
        let covers = |c: &[Edge]| {
            c.iter().any(|e| e.op == OpKind::None)
                && c.iter().any(|e| matches!(e.op, OpKind::MaxPool3x3 | OpKind::AvgPool3x3))
        };
        if covers(&normal) && covers(&reduce) {
            return Genotype::new(normal, reduce).expect("a valid genotype");
        }
    }
}

/// The networks every ONNX test exports: (label, config).
pub fn test_configs() -> Vec<(&'static str, NetworkConfig)> {
    let small = Overrides { layers: Some(5), channels: Some(8), ..Overrides::default() };
    let resolve =
        |model: &str, overrides: &Overrides| NetworkConfig::resolve(model, overrides).expect("config");
    vec![
        ("bnas-a small (CIFAR)", resolve("bnas-a", &small)),
        (
            "bnas-a small, reference_compat",
            resolve("bnas-a", &Overrides { reference_compat: true, ..small.clone() }),
        ),
        (
            "bnas-d small (ImageNet)",
            resolve("bnas-d", &Overrides { layers: Some(3), channels: Some(8), ..Overrides::default() }),
        ),
        (
            "zeroise and pools genotype",
            resolve(
                "bnas-a",
                &Overrides {
                    genotype: Some(zeroise_and_pools_genotype()),
                    layers: Some(4),
                    channels: Some(12),
                    classes: Some(7),
                    input: Some(InputShape { channels: 3, height: 16, width: 16 }),
                    ..Overrides::default()
                },
            ),
        ),
        (
            "random genotype, grey input, compat",
            resolve(
                "bnas-a",
                &Overrides {
                    genotype: Some(random_genotype(7)),
                    layers: Some(3),
                    channels: Some(33),
                    classes: Some(5),
                    input: Some(InputShape { channels: 1, height: 12, width: 12 }),
                    reference_compat: true,
                    ..Overrides::default()
                },
            ),
        ),
    ]
}

/// A `.bnas` file with random weights (and random BatchNorm statistics) for `config`.
pub fn random_bnas(config: &NetworkConfig, seed: u64) -> Vec<u8> {
    bnas_runtime::init::random_model(config, seed, FloatStorage::F32).expect("random model").to_bytes()
}
