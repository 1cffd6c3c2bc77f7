//! The runtime against an independent float reference of the network, written here in plain
//! loops from the spec (BatchNorm, sign, zero-padded conv, ReLU, pools, sums, concat, pool,
//! Linear) in f64, on random weights with random BatchNorm statistics.
//!
//! - Every binary conv's integer outputs must equal the reference's, given the same packed
//!   input (the runtime's, decoded here from the documented bit layout).
//! - End to end, a sign decision where |bn(x)| < 1e-5 may legitimately differ by float
//!   rounding, so the reference takes the runtime's decision there and counts those cases;
//!   the logits must then agree within 1e-4 relative to the largest logit (a per-logit relative
//!   error is meaningless for logits near zero).
//! - Batches: a batch gives exactly the single-sample results, on every ISA and thread count.
//!
//! This is the backend-agnostic suite: every test runs on each CPU instruction set and on the
//! GPU backend (wgpu; lavapipe on CI, where `BNAS_REQUIRE_GPU=1` makes a missing adapter a
//! failure rather than a visible skip).

use bnas_models::{
    ConvSpec, Edge, Genotype, InputShape, LayerOp, Liveness, NetworkConfig, NetworkSpec, OpKind, Overrides,
    Precision, Shape, Topology,
};
use bnas_runtime::bit_layout::{words_for, PANEL};
use bnas_runtime::format::{BnasFile, FloatStorage};
use bnas_runtime::kernels::Isa;
use bnas_runtime::plan::StepOp;
use bnas_runtime::{Device, GpuError, Model, Options, RuntimeError, Trace};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Below this |bn(x)|, the reference adopts the runtime's sign decision.
const TIE: f64 = 1e-5;

/// A backend to run the suite on.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Engine {
    /// The CPU kernels with one instruction set.
    Cpu(Isa),
    /// The wgpu backend on any adapter.
    Gpu,
}

impl Engine {
    fn options(self, threads: usize) -> Options {
        match self {
            Engine::Cpu(isa) => Options { threads: Some(threads), isa: Some(isa), device: Device::Cpu },
            Engine::Gpu => Options { threads: Some(threads), isa: None, device: Device::Gpu },
        }
    }

    /// Logit tolerance relative to the largest |logit|: float layers sum in another order on
    /// the GPU (tiled GEMM, fused multiply-adds), binary layers are exact on both.
    fn tolerance(self) -> f64 {
        match self {
            Engine::Cpu(_) => 1e-4,
            Engine::Gpu => 1e-4,
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Engine::Cpu(isa) => write!(f, "cpu {isa}"),
            Engine::Gpu => f.write_str("gpu"),
        }
    }
}

/// Every supported CPU instruction set, then the GPU when an adapter exists. Without one, the
/// GPU side is skipped with a notice on the real stderr (not the captured one), or fails
/// when `BNAS_REQUIRE_GPU` is set.
fn engines() -> Vec<Engine> {
    let mut engines: Vec<Engine> = Isa::supported().into_iter().map(Engine::Cpu).collect();
    let bytes = std::fs::read(format!("{GOLDEN}/model.bnas")).unwrap();
    let options = Engine::Gpu.options(1);
    match Model::from_file(BnasFile::from_bytes(bytes).unwrap(), &options) {
        Ok(_) => engines.push(Engine::Gpu),
        Err(RuntimeError::Gpu(e @ (GpuError::NoAdapter { .. } | GpuError::NotBuilt)))
            if std::env::var_os("BNAS_REQUIRE_GPU").is_none() =>
        {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "NOTICE: GPU side of the backend suite SKIPPED: {e}");
        }
        Err(e) => panic!("the GPU backend must run here (BNAS_REQUIRE_GPU is set): {e}"),
    }
    engines
}

/// A CHW activation in f64.
type Map = Vec<f64>;

struct Reference<'a> {
    spec: &'a NetworkSpec,
    file: &'a BnasFile,
    model: &'a Model,
    trace: &'a Trace,
    eps: f64,
    /// Sign decisions taken from the runtime because |bn(x)| was below [`TIE`].
    adopted: usize,
    /// All sign decisions.
    decisions: usize,
}

impl Reference<'_> {
    fn floats(&self, name: &str) -> Vec<f64> {
        self.file
            .floats(name)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .iter()
            .map(|&v| f64::from(v))
            .collect()
    }

    /// Runs every layer; returns the logits.
    fn run(&mut self, input: &[f32]) -> Vec<f64> {
        let layers = &self.spec.layers;
        let mut outputs: Vec<Option<Map>> = vec![None; layers.len()];
        outputs[0] = Some(input.iter().map(|&v| f64::from(v)).collect());
        for (id, layer) in layers.iter().enumerate().skip(1) {
            // Dead layers reach the logits only through Zeroise, which ignores its input's values.
            if layer.liveness == Liveness::Dead {
                continue;
            }
            let shape = layer.output;
            let input = |i: usize| outputs[layer.inputs[i]].as_ref().expect("inputs run first");
            let in_shape = |i: usize| layers[layer.inputs[i]].output;
            let out = match &layer.op {
                LayerOp::Input => unreachable!("the input is layer 0"),
                LayerOp::Zero { .. } => vec![0.0; shape.numel() as usize],
                LayerOp::Conv(conv) => self.conv(id, conv, layer.precision, input(0), in_shape(0), shape),
                LayerOp::MaxPool { kernel, stride, padding } => {
                    pool(input(0), in_shape(0), shape, *kernel, *stride, *padding, true)
                }
                LayerOp::AvgPool { kernel, stride, padding } => {
                    pool(input(0), in_shape(0), shape, *kernel, *stride, *padding, false)
                }
                LayerOp::Add => {
                    let mut sum = vec![0.0; shape.numel() as usize];
                    for i in 0..layer.inputs.len() {
                        sum.iter_mut().zip(input(i)).for_each(|(s, x)| *s += x);
                    }
                    sum
                }
                LayerOp::Concat => (0..layer.inputs.len()).flat_map(|i| input(i).clone()).collect(),
                LayerOp::GlobalAvgPool => {
                    let s = in_shape(0);
                    let pixels = s.height * s.width;
                    input(0).chunks(pixels).map(|c| c.iter().sum::<f64>() / pixels as f64).collect()
                }
                LayerOp::Linear { weight, bias } => {
                    let (w, b) = (self.floats(weight), self.floats(bias));
                    let x = input(0);
                    (0..shape.channels)
                        .map(|o| b[o] + (0..x.len()).map(|i| w[o * x.len() + i] * x[i]).sum::<f64>())
                        .collect()
                }
            };
            outputs[id] = Some(out);
        }
        outputs.pop().flatten().expect("the classifier runs")
    }

    fn batch_norm(&self, prefix: &str, affine: bool, channels: usize) -> Vec<(f64, f64, f64, f64)> {
        let mean = self.floats(&format!("{prefix}.running_mean"));
        let var = self.floats(&format!("{prefix}.running_var"));
        let (gamma, beta) = if affine {
            (self.floats(&format!("{prefix}.weight")), self.floats(&format!("{prefix}.bias")))
        } else {
            (vec![1.0; channels], vec![0.0; channels])
        };
        (0..channels).map(|c| (gamma[c], beta[c], mean[c], (var[c] + self.eps).sqrt())).collect()
    }

    fn conv(
        &mut self,
        id: usize,
        conv: &ConvSpec,
        precision: Precision,
        x: &Map,
        s: Shape,
        out: Shape,
    ) -> Map {
        let pixels = s.height * s.width;
        let mut x = x.clone();
        let bn = conv.input_bn.as_ref().map(|bn| self.batch_norm(&bn.prefix, bn.affine, s.channels));
        if let Some(bn) = &bn {
            for (c, plane) in x.chunks_mut(pixels).enumerate() {
                let (g, b, m, std) = bn[c];
                plane.iter_mut().for_each(|v| *v = g * (*v - m) / std + b);
            }
        }
        if conv.input_relu {
            x.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        if precision.binarizes_input() {
            let runtime_bit = self.runtime_decisions(id, precision, s);
            let mut adopted = 0;
            for (i, v) in x.iter_mut().enumerate() {
                let bit = if v.abs() < TIE {
                    adopted += 1;
                    runtime_bit(i)
                } else {
                    *v >= 0.0
                };
                *v = if bit { 1.0 } else { -1.0 };
            }
            drop(runtime_bit);
            self.adopted += adopted;
            self.decisions += x.len();
        }
        let weights: Vec<f64> = if precision == Precision::Binary {
            let signs = unpack_filters(&self.file.filters(&conv.weight).unwrap(), conv);
            let integer = correlate(&x, s, out, conv, &signs);
            let trace = self.layer_trace(id).binary.as_ref().expect("binary convs are traced");
            // Same packed input: the runtime's integer outputs must be exact.
            let from_runtime_input = correlate(&unpack_input(&trace.packed_input, s), s, out, conv, &signs);
            let runtime: Vec<f64> = trace.integer_outputs.iter().map(|&v| f64::from(v)).collect();
            assert_same(&from_runtime_input, &runtime, &format!("integer outputs of {}", conv.weight));
            assert_same(
                &integer,
                &runtime,
                &format!("integer outputs of {} from the reference's signs", conv.weight),
            );
            let alpha = self.floats(&format!("{}.alpha", conv.weight.strip_suffix(".weight").unwrap()));
            signs
                .chunks(signs.len() / conv.out_channels)
                .zip(alpha)
                .flat_map(|(f, a)| f.iter().map(move |s| s * a))
                .collect()
        } else {
            self.floats(&conv.weight)
        };
        let mut y = correlate(&x, s, out, conv, &weights);
        let out_pixels = out.height * out.width;
        if let Some(bias) = &conv.bias {
            let b = self.floats(bias);
            y.chunks_mut(out_pixels).zip(b).for_each(|(plane, b)| plane.iter_mut().for_each(|v| *v += b));
        }
        if let Some(bn) = &conv.output_bn {
            let bn = self.batch_norm(&bn.prefix, bn.affine, out.channels);
            for (c, plane) in y.chunks_mut(out_pixels).enumerate() {
                let (g, b, m, std) = bn[c];
                plane.iter_mut().for_each(|v| *v = g * (*v - m) / std + b);
            }
        }
        if conv.output_relu {
            y.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        y
    }

    fn layer_trace(&self, id: usize) -> &bnas_runtime::LayerTrace {
        self.trace.layers.iter().find(|l| l.layer == id).expect("every live layer is traced")
    }

    /// The runtime's sign decision for CHW index `i` of this conv's input: from its packed
    /// input for binary convs; for compat convs, from the runtime's own input values and its
    /// folded thresholds.
    fn runtime_decisions(
        &self,
        id: usize,
        precision: Precision,
        s: Shape,
    ) -> Box<dyn Fn(usize) -> bool + '_> {
        let pixels = s.height * s.width;
        if precision == Precision::Binary {
            let packed = &self.layer_trace(id).binary.as_ref().expect("binary convs are traced").packed_input;
            let words = words_for(s.channels);
            Box::new(move |i| {
                let (c, p) = (i / pixels, i % pixels);
                packed[p * words + c / 64] >> (c % 64) & 1 == 1
            })
        } else {
            let step = self.model.plan().steps.iter().find(|st| st.layer == id).unwrap();
            let StepOp::FloatConv(conv) = &step.op else { panic!("compat convs are float convs") };
            let binarize = conv.binarize.as_ref().unwrap();
            let input_layer = self.spec.layers[id].inputs[0];
            let x = &self.layer_trace(input_layer).output;
            Box::new(move |i| binarize.bit(i / pixels, x[i]))
        }
    }
}

/// Exact equality, reporting the first difference and how many there are.
fn assert_same(expected: &[f64], actual: &[f64], what: &str) {
    assert_eq!(expected.len(), actual.len(), "{what}: lengths");
    let diffs: Vec<usize> = (0..expected.len()).filter(|&i| expected[i] != actual[i]).collect();
    if let Some(&i) = diffs.first() {
        panic!(
            "{what}: {} of {} differ; first at {i}: expected {}, runtime {}",
            diffs.len(),
            expected.len(),
            expected[i],
            actual[i]
        );
    }
}

/// The filters' +1/-1 signs as `[out, in, k, k]`, decoded from the documented panel layout.
fn unpack_filters(words: &[u64], conv: &ConvSpec) -> Vec<f64> {
    let (o_n, c_n, k) = (conv.out_channels, conv.in_channels, conv.kernel);
    let w = words_for(c_n);
    let depth = k * k * w;
    let mut signs = Vec::with_capacity(o_n * c_n * k * k);
    for o in 0..o_n {
        for c in 0..c_n {
            for tap in 0..k * k {
                let word = words[((o / PANEL) * depth + tap * w + c / 64) * PANEL + o % PANEL];
                signs.push(if word >> (c % 64) & 1 == 1 { 1.0 } else { -1.0 });
            }
        }
    }
    signs
}

/// A packed pixel-major input as CHW +1/-1.
fn unpack_input(packed: &[u64], s: Shape) -> Map {
    let (pixels, words) = (s.height * s.width, words_for(s.channels));
    (0..s.channels)
        .flat_map(|c| {
            (0..pixels).map(move |p| if packed[p * words + c / 64] >> (c % 64) & 1 == 1 { 1.0 } else { -1.0 })
        })
        .collect()
}

/// Zero-padded cross-correlation of CHW `x` with `[out, in, k, k]` weights.
fn correlate(x: &Map, s: Shape, out: Shape, conv: &ConvSpec, w: &[f64]) -> Map {
    let k = conv.kernel;
    let mut y = vec![0.0; out.numel() as usize];
    for o in 0..out.channels {
        for oy in 0..out.height {
            for ox in 0..out.width {
                let mut acc = 0.0;
                for c in 0..s.channels {
                    for ky in 0..k {
                        let iy = (oy * conv.stride + ky * conv.dilation) as isize - conv.padding as isize;
                        if iy < 0 || iy >= s.height as isize {
                            continue;
                        }
                        for kx in 0..k {
                            let ix = (ox * conv.stride + kx * conv.dilation) as isize - conv.padding as isize;
                            if ix < 0 || ix >= s.width as isize {
                                continue;
                            }
                            let xv = x[(c * s.height + iy as usize) * s.width + ix as usize];
                            acc += w[((o * s.channels + c) * k + ky) * k + kx] * xv;
                        }
                    }
                }
                y[(o * out.height + oy) * out.width + ox] = acc;
            }
        }
    }
    y
}

/// Max (padding ignored) or average (padding not counted) pooling of CHW `x`.
fn pool(x: &Map, s: Shape, out: Shape, k: usize, stride: usize, pad: usize, max: bool) -> Map {
    let mut y = Vec::with_capacity(out.numel() as usize);
    for c in 0..s.channels {
        for oy in 0..out.height {
            for ox in 0..out.width {
                let mut values = Vec::new();
                for ky in 0..k {
                    for kx in 0..k {
                        let (iy, ix) = (
                            (oy * stride + ky) as isize - pad as isize,
                            (ox * stride + kx) as isize - pad as isize,
                        );
                        if (0..s.height as isize).contains(&iy) && (0..s.width as isize).contains(&ix) {
                            values.push(x[(c * s.height + iy as usize) * s.width + ix as usize]);
                        }
                    }
                }
                y.push(if max {
                    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                } else {
                    values.iter().sum::<f64>() / values.len() as f64
                });
            }
        }
    }
    y
}

/// Writes a random model of `config`, runs it on a random input with `isa`, and checks it
/// against the reference. Returns (adopted decisions, all decisions).
fn check(config: &NetworkConfig, seed: u64, engine: Engine) -> (usize, usize) {
    let bytes = bnas_runtime::init::random_model(config, seed, FloatStorage::F32).unwrap().to_bytes();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let input: Vec<f32> = (0..config.input.channels * config.input.height * config.input.width)
        .map(|_| rng.gen_range(-2.0..2.0))
        .collect();
    let (adopted, decisions, _) = check_file(&bytes, &input, engine);
    (adopted, decisions)
}

/// Runs the model in `bytes` on `input` with `engine` and checks it against the reference.
/// Returns (adopted decisions, all decisions, the reference's logits).
fn check_file(bytes: &[u8], input: &[f32], engine: Engine) -> (usize, usize, Vec<f64>) {
    let file = BnasFile::from_slice(bytes).unwrap();
    let config = &file.metadata().config;
    let options = engine.options(2);
    let model = Model::from_file(BnasFile::from_slice(bytes).unwrap(), &options).unwrap();
    let trace = model.trace(input).unwrap();
    let spec = config.spec().unwrap();
    let mut reference = Reference {
        spec: &spec,
        file: &file,
        model: &model,
        trace: &trace,
        eps: 1e-5,
        adopted: 0,
        decisions: 0,
    };
    let expected = reference.run(input);
    let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (&got, &want)) in trace.logits.iter().zip(&expected).enumerate() {
        assert!(
            (f64::from(got) - want).abs() <= engine.tolerance() * scale.max(1e-6),
            "{} ({engine}): logit {i}: runtime {got}, reference {want} (scale {scale})",
            config.name
        );
    }
    // The batch path gives the trace's logits.
    assert_eq!(model.run_batch(input, 1).unwrap(), trace.logits);
    eprintln!(
        "{} ({engine}): {} of {} sign decisions had |bn(x)| < {TIE:e} and took the runtime's",
        config.name, reference.adopted, reference.decisions
    );
    assert!(reference.adopted * 1000 <= reference.decisions.max(1000), "too many near-zero decisions");
    (reference.adopted, reference.decisions, expected)
}

/// The committed end-to-end case: a small model, an input and the reference's logits.
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/runtime_small");

#[derive(serde::Serialize, serde::Deserialize)]
struct GoldenCase {
    input: Vec<f32>,
    logits: Vec<f64>,
}

#[test]
#[ignore = "writes tests/golden/runtime_small; run by hand when the case must change"]
fn generate_runtime_golden() {
    let overrides = Overrides {
        layers: Some(3),
        channels: Some(4),
        input: Some(InputShape { channels: 3, height: 12, width: 12 }),
        ..Overrides::default()
    };
    let config = NetworkConfig::resolve("dense", &overrides).unwrap();
    let writer = bnas_runtime::init::random_model(&config, 2024, FloatStorage::F32).unwrap();
    let mut rng = StdRng::seed_from_u64(2024);
    let input: Vec<f32> = (0..3 * 12 * 12).map(|_| rng.gen_range(-2.0..2.0)).collect();
    let (_, _, logits) = check_file(&writer.to_bytes(), &input, Engine::Cpu(Isa::Scalar));
    std::fs::create_dir_all(GOLDEN).unwrap();
    writer.write(format!("{GOLDEN}/model.bnas")).unwrap();
    let case = serde_json::to_string_pretty(&GoldenCase { input, logits }).unwrap();
    std::fs::write(format!("{GOLDEN}/case.json"), case).unwrap();
}

#[test]
fn golden_case_keeps_its_logits_on_every_backend() {
    let bytes = std::fs::read(format!("{GOLDEN}/model.bnas")).unwrap();
    let case: GoldenCase =
        serde_json::from_str(&std::fs::read_to_string(format!("{GOLDEN}/case.json")).unwrap()).unwrap();
    let scale = case.logits.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for engine in engines() {
        let model = Model::from_file(BnasFile::from_slice(&bytes).unwrap(), &engine.options(1)).unwrap();
        let logits = model.run_batch(&case.input, 1).unwrap();
        for (i, (&got, &want)) in logits.iter().zip(&case.logits).enumerate() {
            assert!(
                (f64::from(got) - want).abs() <= engine.tolerance() * scale,
                "{engine}: logit {i}: {got} vs {want}"
            );
        }
        // Today's reference still agrees with the committed logits.
        let (_, _, reference) = check_file(&bytes, &case.input, engine);
        // (JSON keeps f64 to within an ulp or so.)
        for (r, c) in reference.iter().zip(&case.logits) {
            assert!((r - c).abs() <= 1e-12 * scale, "reference {r} vs committed {c}");
        }
    }
}

#[test]
fn bnas_a_matches_the_float_reference_on_cpu_and_gpu() {
    let config = NetworkConfig::named("bnas-a").unwrap();
    let best = Engine::Cpu(bnas_runtime::kernels::select().unwrap());
    for engine in engines().into_iter().filter(|&e| e == best || e == Engine::Gpu) {
        check(&config, 1, engine);
    }
}

#[test]
fn reduced_bnas_d_matches_the_float_reference_on_every_backend() {
    let overrides =
        Overrides { layers: Some(3), channels: Some(8), classes: Some(20), ..Overrides::default() };
    let config = NetworkConfig::resolve("bnas-d", &overrides).unwrap();
    assert_eq!(config.topology, Topology::Imagenet);
    for engine in engines() {
        check(&config, 2, engine);
    }
}

fn random_genotype(rng: &mut StdRng) -> Genotype {
    let mut cell = || -> Vec<Edge> {
        (0..8)
            .map(|i| {
                let node = Edge::node_of(i);
                Edge { op: OpKind::ALL[rng.gen_range(0..OpKind::ALL.len())], input: rng.gen_range(0..node) }
            })
            .collect()
    };
    let normal = cell();
    let reduce = cell();
    Genotype::new(normal, reduce).unwrap()
}

#[test]
fn random_genotypes_match_the_float_reference_on_every_backend() {
    let engines = engines();
    let mut rng = StdRng::seed_from_u64(42);
    for case in 0..6u64 {
        let genotype = random_genotype(&mut rng);
        let (channels, height) = if case % 2 == 0 { (3, 16) } else { (1, 12) };
        let overrides = Overrides {
            genotype: Some(genotype),
            layers: Some(3 + case as usize % 3),
            channels: Some([4, 7, 16, 33][case as usize % 4]),
            classes: Some(5 + case as usize),
            input: Some(InputShape { channels, height, width: height }),
            reference_compat: case % 3 == 2,
            ..Overrides::default()
        };
        let config = NetworkConfig::resolve("bnas-a", &overrides).unwrap();
        for &engine in &engines {
            check(&config, 100 + case, engine);
        }
    }
}

#[test]
fn batches_equal_single_samples_on_every_backend_and_thread_count() {
    let mut rng = StdRng::seed_from_u64(9);
    let overrides = Overrides {
        genotype: Some(random_genotype(&mut rng)),
        layers: Some(4),
        channels: Some(12),
        input: Some(InputShape { channels: 3, height: 12, width: 12 }),
        ..Overrides::default()
    };
    let config = NetworkConfig::resolve("bnas-a", &overrides).unwrap();
    let bytes = bnas_runtime::init::random_model(&config, 5, FloatStorage::F32).unwrap().to_bytes();
    let batch = 3;
    let per_sample = 3 * 12 * 12;
    let input: Vec<f32> = (0..batch * per_sample).map(|_| rng.gen_range(-2.0..2.0)).collect();
    let mut cpu: Option<Vec<f32>> = None;
    for engine in engines() {
        for threads in [1, 3] {
            let model =
                Model::from_file(BnasFile::from_bytes(bytes.clone()).unwrap(), &engine.options(threads))
                    .unwrap();
            let batched = model.run_batch(&input, batch).unwrap();
            let single: Vec<f32> =
                input.chunks(per_sample).flat_map(|x| model.run_batch(x, 1).unwrap()).collect();
            assert_eq!(batched, single, "{engine}, {threads} threads: batch of {batch} vs one at a time");
            let cpu = cpu.get_or_insert_with(|| batched.clone());
            if let Engine::Cpu(_) = engine {
                // Float convs are the same on every ISA, and binary convs are exact.
                assert_eq!(cpu, &batched, "{engine}, {threads} threads");
            } else {
                let scale = cpu.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                for (i, (c, g)) in cpu.iter().zip(&batched).enumerate() {
                    let tolerance = engine.tolerance() as f32 * scale;
                    assert!((c - g).abs() <= tolerance, "{engine}: logit {i}: cpu {c}, gpu {g}");
                }
            }
        }
    }
}

/// Counts the steps a run reports (a run with an observer takes the whole batch at once).
struct StepCount(usize);

impl bnas_runtime::Observer for StepCount {
    fn step_done(&mut self, _: &bnas_runtime::plan::Step, _: &[f32], _: std::time::Duration) {
        self.0 += 1;
    }
}

#[test]
fn batches_too_large_for_the_cache_run_as_sub_batches_with_the_same_logits() {
    // The zoo model's size: two samples' activations pass the 1 MiB a CPU sub-batch may hold,
    // so a batch runs sample by sample, side by side on the threads.
    let overrides = Overrides {
        layers: Some(8),
        channels: Some(16),
        input: Some(InputShape { channels: 1, height: 28, width: 28 }),
        ..Overrides::default()
    };
    let config = NetworkConfig::resolve("bnas-a", &overrides).unwrap();
    let bytes = bnas_runtime::init::random_model(&config, 3, FloatStorage::F32).unwrap().to_bytes();
    let (batch, per_sample) = (5, 28 * 28);
    let mut rng = StdRng::seed_from_u64(12);
    let input: Vec<f32> = (0..batch * per_sample).map(|_| rng.gen_range(-2.0..2.0)).collect();
    for threads in [1, 2, 3] {
        let options = Options { threads: Some(threads), ..Options::default() };
        let model = Model::from_file(BnasFile::from_bytes(bytes.clone()).unwrap(), &options).unwrap();
        let arena_bytes: usize = model.plan().slots.iter().sum::<usize>() * 4;
        assert!(2 * arena_bytes > 1 << 20, "one sample ({arena_bytes} bytes) per sub-batch");
        let split = model.run_batch(&input, batch).unwrap();
        let mut steps = StepCount(0);
        let whole = model.run_observed(&input, batch, Some(&mut steps)).unwrap();
        assert_eq!(steps.0, model.plan().steps.len(), "the observed run is one pass over the batch");
        let single: Vec<f32> =
            input.chunks(per_sample).flat_map(|x| model.run_batch(x, 1).unwrap()).collect();
        assert_eq!(split, whole, "{threads} threads: sub-batches vs the whole batch in one arena");
        assert_eq!(split, single, "{threads} threads: sub-batches vs one sample at a time");
    }
}
