//! `bnas-run peak`: this machine's single-core XOR+popcount and FP32 FMA peaks.

use bnas_runtime::kernels::peak;
use bnas_runtime::report::emit;
use clap::Args;

/// Flags of `bnas-run peak`.
#[derive(Debug, Args)]
pub struct PeakArgs {
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(args: &PeakArgs) -> anyhow::Result<()> {
    let report = peak::measure();
    let text = if args.json {
        serde_json::to_string_pretty(&report)?
    } else {
        bnas_runtime::report::render_peak(&report)
    };
    Ok(emit(&text)?)
}
