//! Whole-model latency of the bnas runtime next to ONNX Runtime, OpenVINO and libtorch fp32 on the
//! same BNAS-A network (random weights), the same input and one thread each, in one criterion
//! group so every run yields the ratios. The engines are `bnas bench`'s own. Throughput is in
//! OPs per pass (float MACs + binary MACs / 64, the glossary's cost), so criterion prints OP/s.

#![allow(missing_docs, reason = "criterion_group! generates an undocumented entry point")]

#[path = "../src/commands/bench/engines.rs"]
mod engines;
#[path = "../src/commands/bench/openvino.rs"]
mod openvino;
#[path = "../src/commands/bench/torch.rs"]
mod torch;

use bnas_models::{NetworkConfig, Summary};
use bnas_runtime::format::{BnasFile, FloatStorage};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use engines::{Engine, EngineKind, ModelFiles};

fn bnas_a_batch_1(c: &mut Criterion) {
    let config = NetworkConfig::named("bnas-a").expect("a named model");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (bnas, onnx) = (dir.path().join("bnas-a.bnas"), dir.path().join("bnas-a.onnx"));
    bnas_runtime::init::random_model(&config, 0, FloatStorage::F32)
        .expect("a random model")
        .write(&bnas)
        .expect("a written model");
    let file = BnasFile::open(&bnas).expect("a valid file");
    bnas_export::onnx::write_onnx(&file, &onnx).expect("an ONNX export");
    let input = config.input;
    let sample =
        bnas_runtime::init::random_input(input.channels * input.height * input.width).expect("memory");
    let ops = Summary::of(&config.spec().expect("a valid spec")).totals.ops;

    let mut group = c.benchmark_group("bnas-a batch 1, 1 thread");
    group.throughput(Throughput::Elements(ops.round() as u64));
    let files = ModelFiles { bnas: &bnas, onnx: &onnx };
    for kind in EngineKind::ALL {
        let mut engine = Engine::load(kind, files, 1, 1).expect("a loaded engine");
        group.bench_function(kind.name(), |b| b.iter(|| engine.run(&sample, 1).expect("logits")));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(5));
    targets = bnas_a_batch_1
}
criterion_main!(benches);
