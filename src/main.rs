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
    /// Search a binary cell on a data set and write its genotype.
    Search(Box<commands::search::SearchArgs>),
    /// Train a network from scratch on a data set, with a resumable checkpoint directory.
    Train(Box<commands::train::TrainArgs>),
    /// Evaluate a training checkpoint in libtorch.
    Eval(commands::eval::EvalArgs),
    /// Write a checkpoint (or a reference checkpoint) as a `.bnas` deployment file and ONNX.
    Export(Box<commands::export::ExportArgs>),
    /// The runtime against ONNX Runtime, OpenVINO and libtorch fp32 on the same network: latency, memory,
    /// per-layer time and the kernels' share of this machine's peak.
    Bench(Box<commands::bench::BenchArgs>),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Summary(args) => commands::summary::run(&args),
        Command::Search(args) => commands::search::run(&args),
        Command::Train(args) => commands::train::run(&args),
        Command::Eval(args) => commands::eval::run(&args),
        Command::Export(args) => commands::export::run(&args),
        Command::Bench(args) => commands::bench::run(&args),
    }
}
