//! `bnas eval`: evaluate a checkpoint in libtorch, writing the same per-example JSON lines as
//! `bnas-run eval --predictions`, so the two engines can be compared example by example.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use bnas_runtime::cli::DataArgs;
use bnas_runtime::data::{self, Split};
use bnas_runtime::report::{emit, PredictionLine, Table};
use bnas_runtime::AtomicFile;
use bnas_trainer::augment::Augment;
use bnas_trainer::eval::{evaluate, TrainedModel};
use bnas_trainer::loader::Loader;
use bnas_trainer::train::{check_fit, progress_bar, DataSource};
use bnas_trainer::DeviceChoice;
use clap::Args;
use serde::Serialize;

/// Flags of `bnas eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Checkpoint directory written by `bnas train`.
    #[arg(long)]
    checkpoint: PathBuf,
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
    /// Device: cpu, cuda or auto (a CUDA device when libtorch sees one, else the CPU).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The evaluation result.
#[derive(Debug, Serialize)]
struct EvalReport {
    checkpoint: String,
    model: String,
    data: String,
    root: String,
    examples: usize,
    loss: f64,
    top1: f64,
    top5: f64,
    batch: usize,
    device: String,
    images_per_s: f64,
}

/// Runs the command.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    let device = args.device.resolve()?;
    let model = TrainedModel::load(&args.checkpoint, device)
        .with_context(|| format!("loading checkpoint {}", args.checkpoint.display()))?;
    let source = DataSource::new(args.dataset.data, args.dataset.root.clone())?;
    let split = args.split;
    let dataset = data::open(source.kind, &source.root, split)?;
    check_fit(&model.card.config, &model.card.preprocess, dataset.class_names().len())?;
    let total = args.limit.unwrap_or(usize::MAX).min(dataset.len());
    anyhow::ensure!(total > 0, "no examples to evaluate in {}", source.root.display());
    let indices: Vec<usize> = (0..total).collect();
    let mut predictions = args
        .predictions
        .as_ref()
        .map(|path| AtomicFile::create(path).with_context(|| format!("creating {}", path.display())))
        .transpose()?;
    let loader = Loader::new(dataset.as_ref(), model.card.preprocess.clone(), Augment::None, 0, device);
    let bar = progress_bar(!args.json, total as u64, "evaluating");
    let started = Instant::now();
    let result = evaluate(&model.network, &loader, &indices, args.batch, |batch| {
        if let Some(file) = predictions.as_mut() {
            for p in batch {
                let line = PredictionLine {
                    index: p.index,
                    label: p.label,
                    pred: p.pred,
                    logits: (&p.logits[..]).into(),
                };
                serde_json::to_writer(&mut *file, &line)
                    .map_err(std::io::Error::from)
                    .and_then(|()| file.write_all(b"\n"))
                    .map_err(bnas_trainer::TrainerError::io(file.path()))?;
            }
        }
        bar.inc(batch.len() as u64);
        Ok(())
    })?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if let Some(file) = predictions {
        let path = file.path().display().to_string();
        file.commit().with_context(|| format!("writing {path}"))?;
    }
    let report = EvalReport {
        checkpoint: args.checkpoint.display().to_string(),
        model: model.card.config.name.clone(),
        data: source.kind.to_string(),
        root: source.root.display().to_string(),
        examples: result.examples,
        loss: result.loss,
        top1: result.top1,
        top5: result.top5,
        batch: args.batch,
        device: format!("{device:?}"),
        images_per_s: total as f64 / seconds,
    };
    if args.json {
        return Ok(emit(&serde_json::to_string_pretty(&report)?)?);
    }
    let mut table = Table::new(&["metric", "value"], 1);
    let rows = [
        ("checkpoint", report.checkpoint.clone()),
        ("model", report.model.clone()),
        ("data", format!("{} {:?} split, {}", report.data, args.split, report.root)),
        ("examples", report.examples.to_string()),
        ("loss", format!("{:.4}", report.loss)),
        ("top-1", format!("{:.2}%", 100.0 * report.top1)),
        ("top-5", format!("{:.2}%", 100.0 * report.top5)),
        ("speed", format!("{:.1} images/s (batch {}, {})", report.images_per_s, report.batch, report.device)),
    ];
    for (metric, value) in rows {
        table.row(vec![metric.to_owned(), value]);
    }
    emit(&table.render())?;
    Ok(())
}
