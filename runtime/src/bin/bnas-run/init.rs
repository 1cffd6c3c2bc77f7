//! `bnas-run init`: a random-weight model, so benchmarks need no training.

use std::path::PathBuf;

use anyhow::Context;
use bnas_runtime::cli::ModelArgs;
use bnas_runtime::format::FloatStorage;
use bnas_runtime::report::{bytes, emit};
use clap::Args;

/// Flags of `bnas-run init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Where to write the `.bnas` file.
    #[arg(long, short)]
    out: PathBuf,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Compact file: float tensors as fp16 (computed in fp32), binary filters bit-dense.
    #[arg(long)]
    fp16: bool,
}

/// Runs the command.
pub fn run(args: &InitArgs) -> anyhow::Result<()> {
    let config = args.model.config()?;
    let storage = if args.fp16 { FloatStorage::F16 } else { FloatStorage::F32 };
    let writer = bnas_runtime::init::random_model(&config, args.seed, storage)?;
    writer.write(&args.out).with_context(|| format!("writing {}", args.out.display()))?;
    let size = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    emit(&format!(
        "wrote {} ({}): {} with random weights, seed {}",
        args.out.display(),
        bytes(size),
        config.name,
        args.seed
    ))?;
    Ok(())
}
