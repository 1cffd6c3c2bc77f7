//! `bnas search`: search a binary cell on a data set (reference §4) and write its genotype.

use std::path::PathBuf;

use anyhow::Context;
use bnas_runtime::cli::{parse_threads, DataArgs};
use bnas_runtime::report::{emit, Table};
use bnas_trainer::search::{self, SearchSettings};
use bnas_trainer::train::DataSource;
use bnas_trainer::DeviceChoice;
use clap::{Args, ValueEnum};

/// Flags of `bnas search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    #[command(flatten)]
    dataset: DataArgs,
    /// Output directory: genotype.{json,txt}, genotype_transfer.{json,txt}, alphas.json,
    /// search.jsonl.
    #[arg(long)]
    out: PathBuf,
    /// Settings: `reduced` (minutes on 2 CPU cores) or `paper` (the reference's, reference §4: 8 cells, C=16,
    /// 50 epochs, the whole training split).
    #[arg(long, value_enum, default_value_t = Preset::Reduced)]
    preset: Preset,
    /// Supernet cells.
    #[arg(long)]
    layers: Option<usize>,
    /// Supernet initial channels.
    #[arg(long)]
    channels: Option<usize>,
    /// Epochs (tau is rescaled to 7.7 * epochs / 50 unless --tau is given).
    #[arg(long)]
    epochs: Option<usize>,
    /// Examples per step.
    #[arg(long)]
    batch: Option<usize>,
    /// Use the first N training examples (halved between weights and alphas).
    #[arg(long)]
    train_limit: Option<usize>,
    /// Use the whole training split.
    #[arg(long, conflicts_with = "train_limit")]
    full: bool,
    /// Alphas' Adam learning rate.
    #[arg(long)]
    arch_lr: Option<f64>,
    /// Diversity regularizer weight.
    #[arg(long)]
    lambda: Option<f64>,
    /// Diversity regularizer decay, in epochs.
    #[arg(long)]
    tau: Option<f64>,
    /// Zeroise divisor of the transferable genotype.
    #[arg(long)]
    gamma: Option<f64>,
    /// Random seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Device: cpu, cuda or auto (a CUDA device when libtorch sees one, else the CPU).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// libtorch intra-op threads.
    #[arg(long, value_parser = parse_threads)]
    threads: Option<usize>,
    /// No progress bars or per-epoch lines.
    #[arg(long)]
    quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// `--preset` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Preset {
    Reduced,
    Paper,
}

/// Runs the command.
pub fn run(args: &SearchArgs) -> anyhow::Result<()> {
    if let Some(threads) = args.threads {
        tch::set_num_threads(i32::try_from(threads).context("--threads is too large")?);
    }
    let base = match args.preset {
        Preset::Reduced => SearchSettings::reduced(),
        Preset::Paper => SearchSettings::paper(),
    };
    let epochs = args.epochs.unwrap_or(base.epochs);
    let settings = SearchSettings {
        layers: args.layers.unwrap_or(base.layers),
        channels: args.channels.unwrap_or(base.channels),
        epochs,
        batch: args.batch.unwrap_or(base.batch),
        train_limit: if args.full { None } else { args.train_limit.or(base.train_limit) },
        arch_lr: args.arch_lr.unwrap_or(base.arch_lr),
        lambda: args.lambda.unwrap_or(base.lambda),
        tau: args.tau.unwrap_or(7.7 * epochs as f64 / 50.0),
        gamma: args.gamma.unwrap_or(base.gamma),
        seed: args.seed.unwrap_or(base.seed),
        ..base
    };
    let source = DataSource::new(args.dataset.data, args.dataset.root.clone())?;
    let summary = search::search(&settings, &source, &args.out, args.device.resolve()?, !args.quiet)?;
    if args.json {
        return Ok(emit(&serde_json::to_string_pretty(&summary)?)?);
    }
    let mut table = Table::new(&["epoch", "train loss", "valid top-1", "alpha entropy", "alpha drift"], 1);
    for e in &summary.epochs {
        table.row(vec![
            (e.epoch + 1).to_string(),
            format!("{:.4}", e.train_loss),
            format!("{:.2}%", 100.0 * e.valid_top1),
            format!("{:.4}", e.alpha_entropy),
            format!("{:.2e}", e.alpha_drift),
        ]);
    }
    emit(&format!(
        "{}\n\nbest epoch {} (valid top-1 {:.2}%), {:.0} s\ngenotype:          {}\ntransfer (gamma): {}\nwritten to {}/genotype.{{json,txt}} and genotype_transfer.{{json,txt}}",
        table.render(),
        summary.best_epoch + 1,
        100.0 * summary.best_valid_top1,
        summary.seconds,
        summary.genotype,
        summary.transfer_genotype,
        summary.out.display()
    ))?;
    Ok(())
}
