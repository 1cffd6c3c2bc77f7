//! Binary convolution per ISA on the real layer shapes of BNAS-A, BNAS-D and the shipped zoo
//! model (8 cells, C=16, 28x28), next to a float conv of the same shape (the float conv GEMM,
//! best ISA) in the same group, so every run yields the ratio. Narrow 3x3 and 5x5 convs run as
//! the model runs them, on kernel-row filters, and also on the plan's per-tap layout
//! (`<isa>-per-tap`). Throughput is in MACs (criterion prints elements/s); one thread, batch 1.

#![allow(missing_docs, reason = "criterion_group! generates an undocumented entry point")]

use std::collections::BTreeSet;

use bnas_models::NetworkConfig;
use bnas_runtime::cpu::{BinaryScratch, KernelRowFilters};
use bnas_runtime::format::{BnasFile, FloatStorage, Floats};
use bnas_runtime::kernels::Isa;
use bnas_runtime::plan::{FloatConv, StepOp, Window};
use bnas_runtime::{cpu, Model, Options};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn shape_label(w: &Window) -> String {
    let dilation = if w.dilation > 1 { format!("d{}", w.dilation) } else { String::new() };
    format!(
        "{}x{}x{}->{} k{}{dilation} s{}",
        w.in_channels, w.input.0, w.input.1, w.out_channels, w.kernel, w.stride
    )
}

fn binary_convs(c: &mut Criterion) {
    let single = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a one-thread pool");
    let mut rng = StdRng::seed_from_u64(7);
    for name in ["bnas-a", "bnas-d", "zoo"] {
        let bytes = match NetworkConfig::named(name) {
            Some(config) => bnas_runtime::init::random_model(&config, 0, FloatStorage::F32)
                .expect("a random model")
                .to_bytes(),
            None => {
                std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/models/zoo/bnas-a-l8c16-fmnist.bnas"))
                    .expect("the zoo model")
            }
        };
        let model = Model::from_file(BnasFile::from_bytes(bytes).expect("a valid file"), &Options::default())
            .expect("a runnable model");
        let mut seen = BTreeSet::new();
        for step in &model.plan().steps {
            let StepOp::BinaryConv(conv) = &step.op else { continue };
            let w = conv.window;
            if !seen.insert(shape_label(&w)) {
                continue;
            }
            let input: Vec<f32> =
                (0..w.input_pixels() * w.in_channels).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let mut output = vec![0.0; w.output_pixels() * w.out_channels];
            let mut group = c.benchmark_group(format!("{name}/{}", shape_label(&w)));
            group.throughput(Throughput::Elements(step.binary_macs));
            let kernel_rows = KernelRowFilters::pack(conv);
            let layouts = [(kernel_rows.as_ref(), ""), (None, "-per-tap")];
            for isa in Isa::supported() {
                for (rows, suffix) in layouts.iter().take(if kernel_rows.is_some() { 2 } else { 1 }) {
                    let mut packed = BinaryScratch::default();
                    // The whole timing loop runs on the pool's one thread: no cross-thread
                    // wake-up per iteration.
                    group.bench_function(format!("{}{suffix}", isa.name()), |b| {
                        single.install(|| {
                            b.iter(|| cpu::binary_conv(conv, *rows, isa, &input, 1, &mut packed, &mut output))
                        })
                    });
                }
            }
            let weights: Vec<f32> =
                (0..w.out_channels * w.in_channels * w.taps()).map(|_| rng.gen_range(-0.1..0.1)).collect();
            let float = FloatConv {
                window: w,
                input_bn: None,
                input_relu: false,
                binarize: None,
                weight: Floats::from(weights),
                bias: None,
                output_bn: None,
                relu: true,
            };
            let filters = cpu::FloatFilters::pack(&float);
            let (mut scratch, best) = (Vec::new(), bnas_runtime::kernels::select().expect("a supported ISA"));
            group.bench_function(format!("float32-{best}"), |b| {
                single.install(|| {
                    b.iter(|| cpu::float_conv(&float, &filters, best, &input, 1, &mut scratch, &mut output))
                })
            });
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = binary_convs
}
criterion_main!(benches);
