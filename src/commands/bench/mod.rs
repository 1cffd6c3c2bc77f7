//! `bnas bench`: the bnas runtime against ONNX Runtime, OpenVINO and libtorch fp32 on the same
//! network, weights and input, in one process, interleaved pass by pass; with the runtime's
//! per-layer times, each binary conv's share of this machine's popcount peak, the model files'
//! sizes and each engine's peak memory (measured in a child process per engine).

mod affinity;
mod engines;
mod openvino;
mod plot;
mod report;
mod rss;
mod torch;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use bnas_models::{Overrides, Summary};
use bnas_runtime::cli::{parse_threads, ModelSource, PassArgs, TOP_LAYERS};
use bnas_runtime::format::{BnasFile, FloatStorage};
use bnas_runtime::kernels::peak;
use bnas_runtime::report::emit;
use bnas_runtime::report::profile::step_medians;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use engines::{Engine, EngineKind, ModelFiles};
use report::{Agreement, BenchReport, EngineStats};
use rss::{ChildReport, ChildRun};

/// Pause before each timed pass with more than one thread: the previous engine's worker threads
/// spin for a while after its pass (OpenMP, ONNX Runtime and rayon pools all do) and would
/// otherwise compete with the next engine for the cores. With one thread ONNX Runtime and
/// libtorch run on the caller's thread and there is nothing to wait for (and a pause would let
/// the core idle, which costs the next pass its wake-up).
const SETTLE: Duration = Duration::from_millis(10);

/// Largest tolerated difference between two engines' logits, relative to the largest logit.
const AGREEMENT: f32 = 1e-3;

/// The fewest samples the agreement check compares: one sample can hold an activation within
/// rounding distance of a sign threshold, which moves that sample's logits in any engine that
/// sums in another order (OpenVINO does, on BNAS-D's first random sample).
const AGREEMENT_SAMPLES: usize = 8;

/// Flags of `bnas bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A named model (bnas-a, bnas-d..bnas-h), run with random weights, or a `.bnas` file.
    #[arg(long, short)]
    model: String,
    /// Worker threads of every engine [default: all cores].
    #[arg(long, value_parser = parse_threads)]
    threads: Option<usize>,
    #[command(flatten)]
    passes: PassArgs,
    /// Seed of a named model's random weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Layers to list, slowest first (all of them with --json).
    #[arg(long, default_value_t = TOP_LAYERS)]
    top: usize,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Let the OS place the threads (by default all engines are pinned to the first `--threads`
    /// CPUs this process may use, so that no thread migrates between passes).
    #[arg(long)]
    no_pin: bool,
    /// Also draw the per-layer times and the speedups to this SVG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Internal: run only this engine and print its peak memory (the parent's child process).
    #[arg(long, hide = true, requires = "child_onnx")]
    rss_child: Option<EngineKind>,
    /// Internal: the ONNX file of an `--rss-child` run.
    #[arg(long, hide = true)]
    child_onnx: Option<PathBuf>,
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("bnas-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover temporary directory is harmless.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the command.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    ensure!(args.passes.batch > 0 && args.passes.iters > 0, "--batch and --iters must be at least 1");
    let child =
        ChildRun { threads, batch: args.passes.batch, iters: args.passes.iters, warmup: args.passes.warmup };
    if let (Some(kind), Some(onnx)) = (args.rss_child, &args.child_onnx) {
        let files = ModelFiles { bnas: Path::new(&args.model), onnx };
        return run_child(kind, files, child);
    }
    // Before any engine's threads exist: they inherit the mask.
    let cpus = if args.no_pin { None } else { affinity::pin(threads).context("pinning to CPUs")? };
    let temp = TempDir::new()?;
    let bnas_path = model_file(&args.model, args.seed, &temp.0)?;
    let file = BnasFile::open(&bnas_path).with_context(|| format!("reading {}", bnas_path.display()))?;
    let onnx_path = temp.0.join("model.onnx");
    let onnx_bytes =
        bnas_export::onnx::write_onnx(&file, &onnx_path).context("exporting the ONNX baseline")?;
    let bnas_bytes = std::fs::metadata(&bnas_path)?.len();
    let files = ModelFiles { bnas: &bnas_path, onnx: &onnx_path };

    // Before any engine's threads exist, so that nothing competes with the single-core loops.
    let progress = spinner("measuring this core's peak");
    let peak = peak::measure();
    progress.set_message("loading the engines");
    let mut engines = EngineKind::ALL
        .into_iter()
        .map(|kind| {
            Engine::load(kind, files, threads, args.passes.batch)
                .with_context(|| format!("loading {}", kind.name()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    progress.finish_and_clear();
    let passes = AGREEMENT_SAMPLES.div_ceil(args.passes.batch);
    let samples = random_input(&file, passes * args.passes.batch)?;
    let agreement = check_agreement(&mut engines, &samples, args.passes.batch, passes)?;
    // The timed input is the first pass of the checked samples.
    let input = &samples[..samples.len() / passes];
    let latencies = time_interleaved(&mut engines, input, args, threads)?;

    let Engine::Bnas(model) = &engines[0] else { unreachable!("EngineKind::ALL starts with bnas") };
    let progress = spinner("profiling the runtime's layers");
    let layer_times = step_medians(model, input, args.passes.batch, args.passes.iters)?;
    let mut rss = Vec::new();
    for kind in EngineKind::ALL {
        progress.set_message(format!("measuring the peak memory of {} in a child process", kind.name()));
        rss.push(rss::measure_in_child(kind, files, child)?);
    }
    progress.finish_and_clear();

    let stats = |i: usize| EngineStats::new(latencies[i].clone(), args.passes.batch, rss[i]);
    let report = BenchReport::new(
        report::Inputs {
            model: &args.model,
            runtime: model,
            totals: Summary::of(model.spec()).totals,
            batch: args.passes.batch,
            iters: args.passes.iters,
            engines: [stats(0), stats(1), stats(2), stats(3)],
            agreement,
            bnas_bytes,
            onnx_bytes,
            peak,
            cpus,
        },
        &layer_times,
    );
    if let Some(path) = &args.plot {
        plot::write(&report, path).with_context(|| format!("writing {}", path.display()))?;
    }
    let text = if args.json { serde_json::to_string_pretty(&report)? } else { report.render(args.top) };
    Ok(emit(&text)?)
}

/// The `.bnas` file to benchmark: `model` itself if it names one, else a random-weight model of
/// the network it names, written into `dir`.
fn model_file(model: &str, seed: u64, dir: &Path) -> anyhow::Result<PathBuf> {
    let source = ModelSource::parse(model);
    if let ModelSource::File(path) = source {
        return Ok(path);
    }
    let config = source
        .config(&Overrides::default())
        .with_context(|| format!("--model {model} is neither a .bnas file nor a named model"))?;
    let out = dir.join("model.bnas");
    bnas_runtime::init::random_model(&config, seed, FloatStorage::F32)?
        .write(&out)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

/// `batch` samples of standard normal values, NCHW, the same on every run.
fn random_input(file: &BnasFile, batch: usize) -> anyhow::Result<Vec<f32>> {
    let input = file.metadata().config.input;
    let per_sample = input.channels * input.height * input.width;
    let values = batch.checked_mul(per_sample).context("--batch is too large")?;
    bnas_runtime::init::random_input(values).context("--batch is too large for this machine's memory")
}

/// A progress line on stderr (hidden when stderr is not a terminal).
fn spinner(message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Checks that the baselines compute the runtime's function on `samples`, `passes` passes of
/// `batch` samples: sample by sample, their logits must be within [`AGREEMENT`] of the runtime's,
/// relative to the sample's largest logit. A float engine rounds differently, so a sign decision
/// within rounding distance of zero can flip and move one sample's logits; a different function
/// moves every sample's. Hence at least half of the samples must agree (all of them, in
/// practice, for the engines that sum in the runtime's order).
fn check_agreement(
    engines: &mut [Engine],
    samples: &[f32],
    batch: usize,
    passes: usize,
) -> anyhow::Result<[Agreement; 3]> {
    let logits = engines
        .iter_mut()
        .map(|engine| {
            let mut logits = Vec::new();
            for pass in samples.chunks_exact(samples.len() / passes) {
                logits.extend(engine.run(pass, batch)?);
            }
            Ok(logits)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (reference, baselines) = logits.split_first().expect("four engines");
    let total = passes * batch;
    let classes = reference.len() / total;
    let mut agreements = Vec::new();
    for (kind, values) in EngineKind::ALL[1..].iter().zip(baselines) {
        ensure!(
            values.len() == reference.len(),
            "{} returned {} logits, the runtime {}",
            kind.name(),
            values.len(),
            reference.len()
        );
        let mut differences: Vec<f32> = values
            .chunks_exact(classes)
            .zip(reference.chunks_exact(classes))
            .map(|(values, reference)| {
                let scale = reference.iter().fold(f32::MIN_POSITIVE, |m, v| m.max(v.abs()));
                values.iter().zip(reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) / scale
            })
            .collect();
        let agreeing = differences.iter().filter(|&&d| d <= AGREEMENT).count();
        differences.sort_by(f32::total_cmp);
        let agreement = Agreement {
            samples: total,
            samples_within_tolerance: agreeing,
            median_difference: differences[differences.len() / 2],
            max_difference: differences[differences.len() - 1],
        };
        ensure!(
            2 * agreeing >= total,
            "{} and the bnas runtime compute different functions on the bench input: only {agreeing} of \
             {total} samples have logits within {AGREEMENT} of each other (relative to the largest \
             logit; median difference {:.1e}); refusing to compare their speed",
            kind.name(),
            agreement.median_difference
        );
        agreements.push(agreement);
    }
    Ok(agreements.try_into().expect("three baselines"))
}

/// Warm-up passes, then `args.passes.iters` rounds in which every engine runs once on `input` (after
/// [`SETTLE`] with `threads > 1`); returns each engine's pass times.
fn time_interleaved(
    engines: &mut [Engine],
    input: &[f32],
    args: &BenchArgs,
    threads: usize,
) -> anyhow::Result<Vec<Vec<Duration>>> {
    for _ in 0..args.passes.warmup {
        for engine in engines.iter_mut() {
            engine.run(input, args.passes.batch)?;
        }
    }
    let bar = ProgressBar::new(args.passes.iters as u64).with_style(
        ProgressStyle::with_template("timing {bar:30} {pos}/{len} rounds, {eta} left")
            .expect("a valid progress template"),
    );
    let mut times = vec![Vec::with_capacity(args.passes.iters); engines.len()];
    for _ in 0..args.passes.iters {
        for (engine, times) in engines.iter_mut().zip(&mut times) {
            if threads > 1 {
                std::thread::sleep(SETTLE);
            }
            let started = Instant::now();
            engine.run(input, args.passes.batch)?;
            times.push(started.elapsed());
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(times)
}

/// The hidden `--rss-child` mode: load one engine, run the parent's passes, print the peak
/// memory.
fn run_child(kind: EngineKind, files: ModelFiles<'_>, run: ChildRun) -> anyhow::Result<()> {
    let mut engine = Engine::load(kind, files, run.threads, run.batch)?;
    let file = BnasFile::open(files.bnas)?;
    let input = random_input(&file, run.batch)?;
    drop(file);
    for _ in 0..run.warmup + run.iters {
        engine.run(&input, run.batch)?;
    }
    let report = ChildReport { peak_rss_bytes: rss::peak_rss_bytes()? };
    Ok(emit(&serde_json::to_string(&report)?)?)
}
