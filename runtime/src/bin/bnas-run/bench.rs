//! `bnas-run bench`: latency, throughput and where the time goes, on random inputs.

use std::time::{Duration, Instant};

use anyhow::Context;
use bnas_models::CostKind;
use bnas_runtime::cli::{PassArgs, TOP_LAYERS};
use bnas_runtime::plan::{Step, StepOp};
use bnas_runtime::report::profile::{self, op_name, quantile};
use bnas_runtime::report::{emit, si, Table};
use clap::Args;
use serde::Serialize;

use bnas_runtime::init::random_input;

use crate::RunArgs;

/// Flags of `bnas-run bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    passes: PassArgs,
    /// Seed of the random weights when `--model` names a network.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Layers to list in the table, slowest first (all of them with --json).
    #[arg(long, default_value_t = TOP_LAYERS)]
    top: usize,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// One layer's share of a pass.
#[derive(Debug, Serialize)]
struct LayerTime {
    name: String,
    op: &'static str,
    median_us: f64,
    share: f64,
    float_macs: u64,
    binary_macs: u64,
}

/// The benchmark result.
#[derive(Debug, Serialize)]
struct BenchReport {
    model: String,
    /// What ran it: `cpu (<isa>)` or `gpu (<adapter>)`.
    backend: String,
    threads: usize,
    batch: usize,
    iters: usize,
    median_ms: f64,
    p90_ms: f64,
    images_per_s: f64,
    float_macs: u64,
    binary_macs: u64,
    ops: f64,
    /// Binary MACs of the binary convs (real channels only) over their median time.
    binary_gmacs_per_s: f64,
    /// Float MACs of the float convs and the classifier over their median time.
    float_gmacs_per_s: f64,
    layers: Vec<LayerTime>,
}

/// Runs the command.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.passes.batch > 0 && args.passes.iters > 0, "--batch and --iters must be at least 1");
    let model = args.run.load_or_build(args.seed)?;
    let values = args.passes.batch.checked_mul(model.input_len()).context("--batch is too large")?;
    let input = random_input(values).context("--batch is too large for this machine's memory")?;
    for _ in 0..args.passes.warmup {
        model.run_batch(&input, args.passes.batch)?;
    }
    let mut passes = Vec::with_capacity(args.passes.iters);
    for _ in 0..args.passes.iters {
        let started = Instant::now();
        model.run_batch(&input, args.passes.batch)?;
        passes.push(started.elapsed());
    }
    let step_medians = profile::step_medians(&model, &input, args.passes.batch, args.passes.iters)?;
    let steps = &model.plan().steps;
    let step_total: Duration = step_medians.iter().sum();
    let batch = args.passes.batch as u64;
    let rate = |kind: fn(&StepOp) -> bool, macs: fn(&Step) -> u64| {
        let (mut macs_sum, mut time) = (0u64, Duration::ZERO);
        for (step, t) in steps.iter().zip(&step_medians).filter(|(s, _)| kind(&s.op)) {
            macs_sum += macs(step) * batch;
            time += *t;
        }
        macs_sum as f64 / time.as_secs_f64().max(1e-12) / 1e9
    };
    let spec = model.spec();
    let median = quantile(&mut passes, 0.5);
    let report = BenchReport {
        model: args.run.model.clone(),
        backend: model.backend().to_string(),
        threads: model.threads(),
        batch: args.passes.batch,
        iters: args.passes.iters,
        median_ms: median.as_secs_f64() * 1e3,
        p90_ms: quantile(&mut passes, 0.9).as_secs_f64() * 1e3,
        images_per_s: args.passes.batch as f64 / median.as_secs_f64(),
        float_macs: spec.total(CostKind::FloatMac),
        binary_macs: spec.total(CostKind::BinaryMac),
        ops: spec.ops(),
        binary_gmacs_per_s: rate(|op| matches!(op, StepOp::BinaryConv(_)), |s| s.binary_macs),
        float_gmacs_per_s: rate(
            |op| matches!(op, StepOp::FloatConv(_) | StepOp::Linear(_)),
            |s| s.float_macs,
        ),
        layers: steps
            .iter()
            .zip(&step_medians)
            .map(|(step, t)| LayerTime {
                name: step.name.clone(),
                op: op_name(&step.op),
                median_us: t.as_secs_f64() * 1e6,
                share: t.as_secs_f64() / step_total.as_secs_f64().max(1e-12),
                float_macs: step.float_macs,
                binary_macs: step.binary_macs,
            })
            .collect(),
    };
    if args.json {
        return Ok(emit(&serde_json::to_string_pretty(&report)?)?);
    }
    emit(&render(&report, args.top))?;
    Ok(())
}

fn render(report: &BenchReport, top: usize) -> String {
    let mut by_op: Vec<(&str, f64, usize)> = Vec::new();
    for layer in &report.layers {
        match by_op.iter_mut().find(|(op, _, _)| *op == layer.op) {
            Some(entry) => {
                entry.1 += layer.share;
                entry.2 += 1;
            }
            None => by_op.push((layer.op, layer.share, 1)),
        }
    }
    by_op.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut ops = Table::new(&["op", "layers", "share"], 1);
    for (op, share, count) in by_op {
        ops.row(vec![op.to_owned(), count.to_string(), format!("{:.1}%", 100.0 * share)]);
    }
    let mut slowest: Vec<&LayerTime> = report.layers.iter().collect();
    slowest.sort_by(|a, b| b.median_us.total_cmp(&a.median_us));
    let mut layers = Table::new(&["layer", "op", "median", "share", "float MACs", "binary MACs"], 2);
    for layer in slowest.into_iter().take(top) {
        layers.row(vec![
            layer.name.clone(),
            layer.op.to_owned(),
            format!("{:.1} us", layer.median_us),
            format!("{:.1}%", 100.0 * layer.share),
            si(layer.float_macs as f64),
            si(layer.binary_macs as f64),
        ]);
    }
    let b = report.batch as f64;
    format!(
        "{}: {}, {} threads, batch {}, {} timed passes\n\n\
         latency     median {:.3} ms, p90 {:.3} ms\n\
         throughput  {:.1} images/s\n\
         cost        {} float MACs, {} binary MACs (BOPs), {} OPs per pass\n\
         achieved    {:.1} binary GMAC/s in binary convs, {:.1} float GMAC/s in float convs and the classifier\n\n\
         Time by op (medians):\n{}\n\nSlowest layers:\n{}",
        report.model,
        report.backend,
        report.threads,
        report.batch,
        report.iters,
        report.median_ms,
        report.p90_ms,
        report.images_per_s,
        si(report.float_macs as f64 * b),
        si(report.binary_macs as f64 * b),
        si(report.ops * b),
        report.binary_gmacs_per_s,
        report.float_gmacs_per_s,
        ops.render(),
        layers.render(),
    )
}
