//! `bnas-run`: the compact deployment CLI. It runs `.bnas` models with the XNOR/popcount
//! runtime and links no libtorch.

mod bench;
mod compare;
mod eval;
mod init;
mod peak;
mod predict;
#[cfg(feature = "serve")]
mod serve;
mod summary;

use std::path::{Path, PathBuf};

use anyhow::Context;
use bnas_models::Overrides;
use bnas_runtime::cli::{parse_threads, ModelSource};
use bnas_runtime::format::{BnasFile, FloatStorage};
use bnas_runtime::kernels::Isa;
use bnas_runtime::{Device, Model, Options};
use clap::{Args, Parser, Subcommand};

/// Run BNAS binary networks: predict, evaluate, benchmark, inspect, or make a random model.
#[derive(Debug, Parser)]
#[command(name = "bnas-run", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Classify images: top-k labels with softmax probabilities.
    Predict(predict::PredictArgs),
    /// Top-1/top-5 accuracy and throughput on a data set.
    Eval(eval::EvalArgs),
    /// Latency, throughput and per-layer time on random inputs.
    Bench(bench::BenchArgs),
    /// The model's layers, cost, file contents and provenance.
    Summary(summary::SummaryArgs),
    /// Per-example agreement of two `--predictions` files (e.g. `bnas eval`'s and `eval`'s).
    Compare(compare::CompareArgs),
    /// Write a random-weight model (random BatchNorm statistics too), for benchmarks and tests.
    Init(init::InitArgs),
    /// This machine's single-core XOR+popcount and FP32 FMA peaks.
    Peak(peak::PeakArgs),
    /// Answer predictions over HTTP, batching concurrent requests.
    #[cfg(feature = "serve")]
    Serve(serve::ServeArgs),
}

/// The flags of every command that runs a model.
#[derive(Debug, Clone, Args)]
struct RunArgs {
    /// The `.bnas` model file (`bench` also takes a network name or genotype file, run with
    /// random weights).
    #[arg(long, short)]
    model: String,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = parse_threads)]
    threads: Option<usize>,
    /// Kernel instruction set: scalar, avx2 or avx512 (default: the best this CPU supports,
    /// or BNAS_FORCE_ISA).
    #[arg(long)]
    isa: Option<Isa>,
    /// Where to run: cpu, gpu (any wgpu adapter, lavapipe included) or auto (a hardware GPU
    /// if there is one, else the CPU).
    #[arg(long, default_value_t = Device::Cpu)]
    device: Device,
}

impl RunArgs {
    /// The `--model` file, for a `command` that needs trained weights.
    fn model_file(&self, command: &'static str) -> anyhow::Result<PathBuf> {
        Ok(ModelSource::parse(&self.model).weights_file(command)?)
    }

    /// Loads the `--model` file for `command`.
    fn load(&self, command: &'static str) -> anyhow::Result<Model> {
        self.open(&self.model_file(command)?)
    }

    /// Loads the `--model` file, or builds the network it names with random weights from `seed`.
    fn load_or_build(&self, seed: u64) -> anyhow::Result<Model> {
        match ModelSource::parse(&self.model) {
            ModelSource::File(path) => self.open(&path),
            source @ ModelSource::Network(_) => {
                let config = source.config(&Overrides::default())?;
                let writer = bnas_runtime::init::random_model(&config, seed, FloatStorage::F32)?;
                self.plan(BnasFile::from_bytes(writer.to_bytes())?)
            }
        }
    }

    fn open(&self, path: &Path) -> anyhow::Result<Model> {
        let loading = || format!("loading {}", path.display());
        self.plan(BnasFile::open(path).with_context(loading)?).with_context(loading)
    }

    fn plan(&self, file: BnasFile) -> anyhow::Result<Model> {
        let options = Options { threads: self.threads, isa: self.isa, device: self.device };
        let model = Model::from_file(file, &options)?;
        if let Some(reason) = model.gpu_fallback() {
            eprintln!("note: --device auto runs on the CPU: {reason}");
        }
        Ok(model)
    }
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Predict(args) => predict::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Summary(args) => summary::run(&args),
        Command::Init(args) => init::run(&args),
        Command::Peak(args) => peak::run(&args),
        Command::Compare(args) => compare::run(&args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::run(&args),
    }
}
