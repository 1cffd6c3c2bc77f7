//! `bnas train`: train a network from scratch on a data set (reference §5), with a resumable
//! checkpoint directory.

use std::path::PathBuf;

use anyhow::Context;
use bnas_runtime::cli::{parse_threads, DataArgs, ModelArgs};
use bnas_runtime::data::{self, Split};
use bnas_runtime::report::{emit, thousands, Table};
use bnas_trainer::train::{self, DataSource, RunOptions, ScheduleKind, TrainSettings, TrainSummary};
use bnas_trainer::DeviceChoice;
use clap::{Args, ValueEnum};

/// Flags of `bnas train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The network (not needed with --resume).
    #[command(flatten)]
    model: Option<ModelArgs>,
    #[command(flatten)]
    dataset: DataArgs,
    /// Checkpoint directory (created; written after every epoch).
    #[arg(long)]
    out: PathBuf,
    /// Continue the run whose checkpoint is --out, with its stored settings.
    #[arg(long)]
    resume: bool,
    /// Hyperparameter defaults: the reference's CIFAR-10 or ImageNet recipe, reference §5 (default: the model's
    /// topology).
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Epochs of the whole run (the schedule spans them).
    #[arg(long)]
    epochs: Option<usize>,
    /// Examples per step.
    #[arg(long)]
    batch: Option<usize>,
    /// Peak learning rate (default: the preset's, 0.05, scaled linearly from its batch of 256
    /// to --batch).
    #[arg(long)]
    lr: Option<f64>,
    /// Weight decay.
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Learning-rate schedule.
    #[arg(long, value_enum)]
    schedule: Option<ScheduleArg>,
    /// Epochs per period of --schedule cosine-restarts.
    #[arg(long, default_value_t = 50)]
    restart_period: usize,
    /// Label smoothing epsilon.
    #[arg(long)]
    label_smoothing: Option<f64>,
    /// Clip the gradient norm to this.
    #[arg(long)]
    grad_clip: Option<f64>,
    /// Final drop-path probability.
    #[arg(long)]
    drop_path: Option<f64>,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train on the first N training examples only.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Evaluate on the first N test examples only.
    #[arg(long)]
    test_limit: Option<usize>,
    /// Train without augmentation.
    #[arg(long)]
    no_augment: bool,
    /// Write a step record to metrics.jsonl every N steps (0: none).
    #[arg(long, default_value_t = 50)]
    log_every: usize,
    /// Stop after N epochs in this invocation; continue later with --resume.
    #[arg(long)]
    stop_after_epochs: Option<usize>,
    /// Device: cpu, cuda or auto (a CUDA device when libtorch sees one, else the CPU).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// libtorch intra-op threads (default: libtorch's choice; 1 makes runs bit-reproducible).
    #[arg(long, value_parser = parse_threads)]
    threads: Option<usize>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// `--preset` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Preset {
    Cifar,
    Imagenet,
}

/// `--schedule` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum ScheduleArg {
    OneCycle,
    CosineRestarts,
}

/// Runs the command.
pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    if let Some(threads) = args.threads {
        tch::set_num_threads(i32::try_from(threads).context("--threads is too large")?);
    }
    let options = RunOptions {
        out: args.out.clone(),
        device: args.device.resolve()?,
        stop_after: args.stop_after_epochs,
        progress: !args.quiet,
    };
    let summary = if args.resume {
        train::resume(&options).with_context(|| format!("resuming from {}", args.out.display()))?
    } else {
        let model = args.model.as_ref().context("--model is required (or --resume to continue a run)")?;
        anyhow::ensure!(
            !args.out.join(bnas_trainer::checkpoint::STATE).exists(),
            "{} already holds a checkpoint: pass --resume to continue it, or choose another --out",
            args.out.display()
        );
        let source = DataSource::new(args.dataset.data, args.dataset.root.clone())?;
        let config = fitted_config(model, &source)?;
        let settings = settings(args, config.topology)?;
        train::train(config, settings, &source, &options)?
    };
    report(&summary, args.json)
}

/// The network configuration, with input shape and classes taken from the data set unless
/// given.
pub fn fitted_config(model: &ModelArgs, source: &DataSource) -> anyhow::Result<bnas_models::NetworkConfig> {
    let mut model = model.clone();
    if model.input.is_none() {
        model.input = Some(source.kind.preprocess().input_shape());
    }
    if model.classes.is_none() {
        let classes = match source.kind.class_names() {
            Some(names) => names.len(),
            None => data::open(source.kind, &source.root, Split::Train)?.class_names().len(),
        };
        model.classes = Some(classes);
    }
    Ok(model.config()?)
}

fn settings(args: &TrainArgs, topology: bnas_models::Topology) -> anyhow::Result<TrainSettings> {
    let preset = args.preset.unwrap_or(match topology {
        bnas_models::Topology::Cifar => Preset::Cifar,
        bnas_models::Topology::Imagenet => Preset::Imagenet,
    });
    let base = match preset {
        Preset::Cifar => TrainSettings::cifar(),
        Preset::Imagenet => TrainSettings::imagenet(),
    };
    let schedule = match args.schedule {
        None => base.schedule,
        Some(ScheduleArg::OneCycle) => ScheduleKind::OneCycle,
        Some(ScheduleArg::CosineRestarts) => {
            ScheduleKind::CosineRestarts { period_epochs: args.restart_period }
        }
    };
    let batch = args.batch.unwrap_or(base.batch);
    let settings = TrainSettings {
        epochs: args.epochs.unwrap_or(base.epochs),
        batch,
        // The linear scaling rule: the recipe's learning rate is for its batch size.
        lr: args.lr.unwrap_or(base.lr * batch as f64 / base.batch as f64),
        weight_decay: args.weight_decay.unwrap_or(base.weight_decay),
        schedule,
        label_smoothing: args.label_smoothing.unwrap_or(base.label_smoothing),
        grad_clip: args.grad_clip.or(base.grad_clip),
        drop_path: args.drop_path.unwrap_or(base.drop_path),
        seed: args.seed,
        train_limit: args.train_limit,
        test_limit: args.test_limit,
        augment: !args.no_augment,
        log_every: args.log_every,
        ..base
    };
    settings.validate()?;
    Ok(settings)
}

fn report(summary: &TrainSummary, json: bool) -> anyhow::Result<()> {
    if json {
        return Ok(emit(&serde_json::to_string_pretty(summary)?)?);
    }
    let mut table = Table::new(&["metric", "value"], 1);
    let rows = [
        ("model", summary.model.clone()),
        ("params", thousands(summary.params)),
        ("epochs", format!("{}/{}", summary.epochs_done, summary.epochs)),
        ("steps", summary.steps.to_string()),
        ("test top-1", format!("{:.2}% (best {:.2}%)", 100.0 * summary.top1, 100.0 * summary.best_top1)),
        ("test top-5", format!("{:.2}%", 100.0 * summary.top5)),
        ("test examples", summary.test_examples.to_string()),
        ("train time", format!("{:.0} s ({:.3} s/step)", summary.seconds, summary.seconds_per_step)),
        ("checkpoint", summary.checkpoint.display().to_string()),
    ];
    for (metric, value) in rows {
        table.row(vec![metric.to_owned(), value]);
    }
    emit(&table.render())?;
    Ok(())
}
