//! What `bnas bench` reports, as JSON and as tables.

use std::time::Duration;

use bnas_models::Totals;
use bnas_runtime::kernels::peak::PeakReport;
use bnas_runtime::plan::StepOp;
use bnas_runtime::report::profile::{op_name, quantile};
use bnas_runtime::report::{bytes, si, Table};
use bnas_runtime::Model;
use serde::Serialize;

/// One engine's timings and memory.
#[derive(Debug, Clone, Serialize)]
pub struct EngineStats {
    /// Median pass latency.
    pub median_ms: f64,
    /// 90th-percentile pass latency.
    pub p90_ms: f64,
    /// Samples per second at the median latency.
    pub throughput: f64,
    /// Peak resident memory of a process running only this engine.
    pub peak_rss_bytes: u64,
}

impl EngineStats {
    /// Statistics of `times`, passes of `batch` samples.
    pub fn new(mut times: Vec<Duration>, batch: usize, peak_rss_bytes: u64) -> EngineStats {
        let median = quantile(&mut times, 0.5).as_secs_f64();
        EngineStats {
            median_ms: median * 1e3,
            p90_ms: quantile(&mut times, 0.9).as_secs_f64() * 1e3,
            throughput: batch as f64 / median.max(1e-12),
            peak_rss_bytes,
        }
    }
}

/// The four engines.
#[derive(Debug, Clone, Serialize)]
pub struct Engines {
    /// The bnas runtime.
    pub bnas: EngineStats,
    /// ONNX Runtime fp32.
    pub ort: EngineStats,
    /// OpenVINO fp32.
    pub openvino: EngineStats,
    /// libtorch fp32.
    pub torch: EngineStats,
}

/// How closely a baseline's logits match the runtime's: per sample, the largest difference
/// relative to the sample's largest logit.
#[derive(Debug, Clone, Serialize)]
pub struct Agreement {
    /// Samples compared (the bench's batch, or whole passes of it adding up to at least 8).
    pub samples: usize,
    /// Samples within the tolerance (1e-3).
    pub samples_within_tolerance: usize,
    /// Median over the samples.
    pub median_difference: f32,
    /// Largest over the samples.
    pub max_difference: f32,
}

/// The baselines' agreement with the runtime.
#[derive(Debug, Clone, Serialize)]
pub struct Agreements {
    /// ONNX Runtime.
    pub ort: Agreement,
    /// OpenVINO.
    pub openvino: Agreement,
    /// libtorch.
    pub torch: Agreement,
}

/// One plan step of the runtime's profiled passes.
#[derive(Debug, Clone, Serialize)]
pub struct LayerTime {
    /// Layer name.
    pub name: String,
    /// Step kind.
    pub op: &'static str,
    /// Median wall time of the step per pass.
    pub median_us: f64,
    /// Its share of the sum of step medians.
    pub share: f64,
    /// Float MACs per pass (all samples).
    pub float_macs: u64,
    /// Binary MACs per pass (all samples), real channels only.
    pub binary_macs: u64,
    /// Binary convs: achieved binary MACs per second.
    pub binary_macs_per_s: Option<f64>,
    /// Binary convs: achieved rate over the popcount peak of the runtime's ISA times threads, in %.
    pub percent_of_peak: Option<f64>,
}

/// The benchmark's result.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The `--model` argument.
    pub model: String,
    /// The network's name.
    pub network: String,
    /// Worker threads of every engine.
    pub threads: usize,
    /// The CPUs every engine was pinned to (`null`: not pinned, `--no-pin`).
    pub cpus: Option<Vec<usize>>,
    /// Samples per pass.
    pub batch: usize,
    /// Timed passes per engine.
    pub iters: usize,
    /// The runtime's kernel instruction set.
    pub isa: String,
    /// Latency, throughput and memory per engine.
    pub engines: Engines,
    /// ORT median latency over the runtime's.
    pub speedup_vs_ort: f64,
    /// OpenVINO median latency over the runtime's.
    pub speedup_vs_openvino: f64,
    /// libtorch median latency over the runtime's.
    pub speedup_vs_torch: f64,
    /// How closely the baselines' logits match the runtime's.
    pub agreement: Agreements,
    /// Float MACs per sample.
    pub float_macs: u64,
    /// Binary MACs per sample.
    pub binary_macs: u64,
    /// `float_macs + binary_macs / 64` per sample.
    pub ops: f64,
    /// Size of the `.bnas` file.
    pub bnas_bytes: u64,
    /// Size of the float-equivalent ONNX model.
    pub onnx_bytes: u64,
    /// This machine's single-core peaks.
    pub peak: PeakReport,
    /// The popcount peak the layers are compared with: the runtime ISA's, times threads.
    pub binary_peak_macs_per_s: f64,
    /// The FP32 FMA peak times threads, in MACs per second.
    pub float_peak_macs_per_s: f64,
    /// Every step of the runtime's plan, in execution order.
    pub layers: Vec<LayerTime>,
}

/// What [`BenchReport::new`] assembles.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The `--model` argument.
    pub model: &'a str,
    /// The runtime's model.
    pub runtime: &'a Model,
    /// Per-sample cost totals.
    pub totals: Totals,
    /// Samples per pass.
    pub batch: usize,
    /// Timed passes.
    pub iters: usize,
    /// bnas, ort, openvino, torch.
    pub engines: [EngineStats; 4],
    /// ORT's, OpenVINO's and libtorch's agreement with the runtime.
    pub agreement: [Agreement; 3],
    /// `.bnas` size.
    pub bnas_bytes: u64,
    /// ONNX size.
    pub onnx_bytes: u64,
    /// The measured peaks.
    pub peak: PeakReport,
    /// The CPUs the run was pinned to.
    pub cpus: Option<Vec<usize>>,
}

impl BenchReport {
    /// The report of a run whose runtime step medians are `layer_times`.
    pub fn new(inputs: Inputs<'_>, layer_times: &[Duration]) -> BenchReport {
        let model = inputs.runtime;
        let threads = model.threads();
        let batch = inputs.batch as u64;
        let one_core =
            inputs.peak.binary_macs_per_s_of(model.isa()).unwrap_or(inputs.peak.binary_macs_per_s());
        let binary_peak = one_core * threads as f64;
        let total: f64 = layer_times.iter().map(Duration::as_secs_f64).sum();
        let layers = model
            .plan()
            .steps
            .iter()
            .zip(layer_times)
            .map(|(step, time)| {
                let seconds = time.as_secs_f64().max(1e-12);
                let binary = matches!(step.op, StepOp::BinaryConv(_));
                let rate = binary.then(|| (step.binary_macs * batch) as f64 / seconds);
                LayerTime {
                    name: step.name.clone(),
                    op: op_name(&step.op),
                    median_us: time.as_secs_f64() * 1e6,
                    share: time.as_secs_f64() / total.max(1e-12),
                    float_macs: step.float_macs * batch,
                    binary_macs: step.binary_macs * batch,
                    binary_macs_per_s: rate,
                    percent_of_peak: rate.map(|r| 100.0 * r / binary_peak),
                }
            })
            .collect();
        let [bnas, ort, openvino, torch] = inputs.engines;
        let [ort_agreement, openvino_agreement, torch_agreement] = inputs.agreement;
        BenchReport {
            model: inputs.model.to_owned(),
            network: model.metadata().config.name.clone(),
            threads,
            cpus: inputs.cpus,
            batch: inputs.batch,
            iters: inputs.iters,
            isa: model.isa().to_string(),
            speedup_vs_ort: ort.median_ms / bnas.median_ms,
            speedup_vs_openvino: openvino.median_ms / bnas.median_ms,
            speedup_vs_torch: torch.median_ms / bnas.median_ms,
            engines: Engines { bnas, ort, openvino, torch },
            agreement: Agreements {
                ort: ort_agreement,
                openvino: openvino_agreement,
                torch: torch_agreement,
            },
            float_macs: inputs.totals.float_macs,
            binary_macs: inputs.totals.binary_macs,
            ops: inputs.totals.ops,
            bnas_bytes: inputs.bnas_bytes,
            onnx_bytes: inputs.onnx_bytes,
            float_peak_macs_per_s: inputs.peak.flops() / 2.0 * threads as f64,
            peak: inputs.peak,
            binary_peak_macs_per_s: binary_peak,
            layers,
        }
    }

    /// The engines as `(name, stats)`, runtime first.
    pub fn engine_list(&self) -> [(&'static str, &EngineStats); 4] {
        let e = &self.engines;
        [("bnas", &e.bnas), ("ort", &e.ort), ("openvino", &e.openvino), ("torch", &e.torch)]
    }

    /// The report as tables; `top` slowest layers are listed.
    pub fn render(&self, top: usize) -> String {
        let mut engines =
            Table::new(&["engine", "median", "p90", "samples/s", "peak RSS", "bnas speedup"], 1);
        for (name, stats) in self.engine_list() {
            engines.row(vec![
                name.to_owned(),
                format!("{:.3} ms", stats.median_ms),
                format!("{:.3} ms", stats.p90_ms),
                format!("{:.1}", stats.throughput),
                bytes(stats.peak_rss_bytes),
                format!("{:.2}x", stats.median_ms / self.engines.bnas.median_ms),
            ]);
        }
        let mut by_op = Table::new(&["op", "layers", "time", "share", "achieved", "of peak"], 1);
        for group in self.op_groups() {
            by_op.row(vec![
                group.op.to_owned(),
                group.layers.to_string(),
                format!("{:.1} us", group.median_us),
                format!("{:.1}%", 100.0 * group.share),
                group.rate.map_or(String::new(), |(rate, unit, _)| format!("{}{unit}", si(rate))),
                group.rate.map_or(String::new(), |(_, _, percent)| format!("{percent:.1}%")),
            ]);
        }
        let mut slowest: Vec<&LayerTime> = self.layers.iter().collect();
        slowest.sort_by(|a, b| b.median_us.total_cmp(&a.median_us));
        let mut layers =
            Table::new(&["layer", "op", "median", "share", "MACs", "binary MAC/s", "of peak"], 2);
        for layer in slowest.into_iter().take(top) {
            let macs = if layer.binary_macs > 0 { layer.binary_macs } else { layer.float_macs };
            layers.row(vec![
                layer.name.clone(),
                layer.op.to_owned(),
                format!("{:.1} us", layer.median_us),
                format!("{:.1}%", 100.0 * layer.share),
                si(macs as f64),
                layer.binary_macs_per_s.map_or(String::new(), si),
                layer.percent_of_peak.map_or(String::new(), |p| format!("{p:.1}%")),
            ]);
        }
        let peak = &self.peak;
        let n = self.agreement.ort.samples;
        format!(
            "{} on {}: batch {}, {} thread(s) {}, {} interleaved rounds; runtime kernels {}\n\
             cost per sample  {} float MACs, {} binary MACs, {} OPs\n\
             model files      .bnas {}, ONNX fp32 {} ({:.1}x larger)\n\
             logits agree     within 1e-3 of the largest logit: ORT on {}/{n} samples (median {:.1e}), \
             OpenVINO on {}/{n} (median {:.1e}), libtorch on {}/{n} (median {:.1e})\n\n{}\n\n\
             speedup of bnas: {:.2}x vs ONNX Runtime, {:.2}x vs OpenVINO, {:.2}x vs libtorch\n\n\
             Peak of one core ({:.2} GHz): {} binary MAC/s ({}), {} FP32 FLOP/s; compared below \
             with x{} threads\n\n\
             Runtime time by op (medians of profiled passes):\n{}\n\nSlowest layers:\n{}",
            self.network,
            peak.cpu.as_deref().unwrap_or("this CPU"),
            self.batch,
            self.threads,
            self.cpus.as_ref().map_or("(not pinned)".to_owned(), |cpus| {
                let list: Vec<String> = cpus.iter().map(usize::to_string).collect();
                format!("pinned to CPU {}", list.join(","))
            }),
            self.iters,
            self.isa,
            si(self.float_macs as f64),
            si(self.binary_macs as f64),
            si(self.ops),
            bytes(self.bnas_bytes),
            bytes(self.onnx_bytes),
            self.onnx_bytes as f64 / self.bnas_bytes as f64,
            self.agreement.ort.samples_within_tolerance,
            self.agreement.ort.median_difference,
            self.agreement.openvino.samples_within_tolerance,
            self.agreement.openvino.median_difference,
            self.agreement.torch.samples_within_tolerance,
            self.agreement.torch.median_difference,
            engines.render(),
            self.speedup_vs_ort,
            self.speedup_vs_openvino,
            self.speedup_vs_torch,
            peak.clock_hz / 1e9,
            si(self.binary_peak_macs_per_s / self.threads as f64),
            self.isa,
            si(peak.flops()),
            self.threads,
            by_op.render(),
            layers.render(),
        )
    }

    /// Time per step kind, slowest first, with the achieved rate of convs and the classifier.
    fn op_groups(&self) -> Vec<OpGroup> {
        let mut groups: Vec<OpGroup> = Vec::new();
        for layer in &self.layers {
            let index = match groups.iter().position(|g| g.op == layer.op) {
                Some(i) => i,
                None => {
                    groups.push(OpGroup {
                        op: layer.op,
                        layers: 0,
                        median_us: 0.0,
                        share: 0.0,
                        macs: 0,
                        rate: None,
                    });
                    groups.len() - 1
                }
            };
            let group = &mut groups[index];
            group.layers += 1;
            group.median_us += layer.median_us;
            group.share += layer.share;
            group.macs += layer.binary_macs + layer.float_macs;
        }
        for group in &mut groups {
            let rate = group.macs as f64 / (group.median_us * 1e-6).max(1e-12);
            group.rate = match group.op {
                "binary conv" => Some((rate, " binary MAC/s", 100.0 * rate / self.binary_peak_macs_per_s)),
                "float conv" | "linear" => Some((rate, " MAC/s", 100.0 * rate / self.float_peak_macs_per_s)),
                _ => None,
            };
        }
        groups.sort_by(|a, b| b.median_us.total_cmp(&a.median_us));
        groups
    }
}

/// The layers of one step kind.
struct OpGroup {
    op: &'static str,
    layers: usize,
    median_us: f64,
    share: f64,
    macs: u64,
    /// Achieved rate, its unit and its percentage of the matching peak.
    rate: Option<(f64, &'static str, f64)>,
}
