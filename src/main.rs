//! `bnas`: the BNAS toolchain's command line.

mod commands;

use clap::{Parser, Subcommand};

/// Binary neural networks from architecture search to deployment.
#[derive(Debug, Parser)]
#[command(name = "bnas", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Per-layer shapes, parameters, precision and cost of a network, or of every named network.
    Summary(commands::summary::SummaryArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Summary(args) => commands::summary::run(&args),
    }
}
