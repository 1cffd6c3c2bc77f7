//! `bnas-run eval`: accuracy and throughput on a data set, optionally with every prediction.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use bnas_runtime::cli::DataArgs;
use bnas_runtime::data::{self, Split};
use bnas_runtime::report::{emit, PredictionLine, Table};
use bnas_runtime::AtomicFile;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::RunArgs;

/// Flags of `bnas-run eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    dataset: DataArgs,
    /// Which split to evaluate.
    #[arg(long, value_enum, default_value_t = Split::Test)]
    split: Split,
    /// Evaluate only the first N examples.
    #[arg(long)]
    limit: Option<usize>,
    /// Samples per forward pass.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Write one JSON line per example: index, label, pred, logits.
    #[arg(long)]
    predictions: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The evaluation result.
#[derive(Debug, Serialize)]
struct EvalReport {
    model: String,
    data: String,
    root: String,
    examples: usize,
    top1: f64,
    top5: f64,
    batch: usize,
    threads: usize,
    /// What ran it: `cpu (<isa>)` or `gpu (<adapter>)`.
    backend: String,
    /// Images per second of the network alone.
    inference_images_per_s: f64,
    /// Images per second including decoding and preprocessing.
    end_to_end_images_per_s: f64,
}

/// Runs the command.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    let model = args.run.load("eval")?;
    let root = args
        .dataset
        .root
        .clone()
        .or_else(|| args.dataset.data.default_root())
        .with_context(|| format!("--root is required for --data {}", args.dataset.data))?;
    let split = args.split;
    let dataset = data::open(args.dataset.data, &root, split)?;
    let classes = model.plan().classes;
    anyhow::ensure!(
        dataset.class_names().len() == classes,
        "the model has {classes} classes but the {} data set has {}",
        args.dataset.data,
        dataset.class_names().len()
    );
    let total = args.limit.unwrap_or(usize::MAX).min(dataset.len());
    anyhow::ensure!(total > 0, "no examples to evaluate in {}", root.display());
    let mut predictions = args
        .predictions
        .as_ref()
        .map(|path| AtomicFile::create(path).with_context(|| format!("creating {}", path.display())))
        .transpose()?;
    let progress = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images  {per_sec}  ETA {eta}")
            .expect("a valid progress template"),
    );
    let preprocess = &model.metadata().preprocess;
    let (mut top1, mut top5, mut inference) = (0usize, 0usize, Duration::ZERO);
    let started = Instant::now();
    let indices: Vec<usize> = (0..total).collect();
    for chunk in indices.chunks(args.batch) {
        let (input, labels) = data::batch(dataset.as_ref(), preprocess, chunk)?;
        let t0 = Instant::now();
        let logits = model.run_batch(&input, chunk.len())?;
        inference += t0.elapsed();
        for ((&index, &label), logits) in chunk.iter().zip(&labels).zip(logits.chunks_exact(classes)) {
            let above = logits.iter().filter(|&&l| l > logits[label]).count();
            top1 += usize::from(above == 0);
            top5 += usize::from(above < 5);
            if let Some(file) = predictions.as_mut() {
                let pred = (0..classes)
                    .max_by(|&a, &b| logits[a].total_cmp(&logits[b]).then(b.cmp(&a)))
                    .unwrap_or(0);
                serde_json::to_writer(
                    &mut *file,
                    &PredictionLine { index, label, pred, logits: logits.into() },
                )?;
                file.write_all(b"\n")?;
            }
        }
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    if let Some(file) = predictions {
        let path = file.path().display().to_string();
        file.commit().with_context(|| format!("writing {path}"))?;
    }
    let report = EvalReport {
        model: args.run.model.clone(),
        data: args.dataset.data.to_string(),
        root: root.display().to_string(),
        examples: total,
        top1: top1 as f64 / total as f64,
        top5: top5 as f64 / total as f64,
        batch: args.batch,
        threads: model.threads(),
        backend: model.backend().to_string(),
        inference_images_per_s: total as f64 / inference.as_secs_f64(),
        end_to_end_images_per_s: total as f64 / started.elapsed().as_secs_f64(),
    };
    if args.json {
        return Ok(emit(&serde_json::to_string_pretty(&report)?)?);
    }
    let mut table = Table::new(&["metric", "value"], 1);
    let rows = [
        ("model", report.model.clone()),
        ("data", format!("{} {:?} split, {}", report.data, args.split, report.root)),
        ("examples", report.examples.to_string()),
        ("top-1", format!("{:.2}%", 100.0 * report.top1)),
        ("top-5", format!("{:.2}%", 100.0 * report.top5)),
        (
            "inference",
            format!(
                "{:.1} images/s (batch {}, {} threads, {})",
                report.inference_images_per_s, report.batch, report.threads, report.backend
            ),
        ),
        (
            "end to end",
            format!("{:.1} images/s (with decoding and preprocessing)", report.end_to_end_images_per_s),
        ),
    ];
    for (metric, value) in rows {
        table.row(vec![metric.to_owned(), value]);
    }
    emit(&table.render())?;
    Ok(())
}
