//! The embedding API: load a `.bnas` model once, then run batches, classify images or trace
//! a run layer by layer.

use std::path::Path;

use bnas_models::NetworkSpec;

use rayon::prelude::*;

use crate::arena_cache::{ArenaCache, KEPT_ARENAS};
use crate::cpu::{self, Arena, PackedWeights};
use crate::data::RawImage;
use crate::device::{Backend, Device, GpuError};
use crate::error::RuntimeError;
use crate::format::{BnasFile, Metadata};
use crate::kernels::{self, Isa, KernelError};
use crate::plan::Plan;
use crate::trace::{Observer, Trace, TraceRecorder};

/// How to run a model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Worker threads (at least 1); all cores when `None`.
    pub threads: Option<usize>,
    /// Kernel ISA; the best supported one (or `BNAS_FORCE_ISA`) when `None`.
    pub isa: Option<Isa>,
    /// CPU, GPU (wgpu) or the best available.
    pub device: Device,
}

/// A loaded model: the memory-mapped file, its network spec, the execution plan and the
/// backend that runs it.
#[derive(Debug)]
pub struct Model {
    file: BnasFile,
    spec: NetworkSpec,
    plan: Plan,
    isa: Isa,
    pool: rayon::ThreadPool,
    engine: Engine,
    /// Why `Device::Auto` fell back to the CPU.
    fallback: Option<GpuError>,
}

/// The backend a model runs on, with the weights and arenas it owns.
#[derive(Debug)]
enum Engine {
    Cpu {
        weights: PackedWeights,
        arenas: ArenaCache<Arena>,
    },
    #[cfg(feature = "gpu")]
    Gpu(Box<crate::gpu::GpuModel>),
}

/// One of the top-k classes of a prediction.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Prediction {
    /// Class index.
    pub index: usize,
    /// Class name from the model's metadata.
    pub label: String,
    /// Softmax probability.
    pub score: f32,
}

impl Model {
    /// Loads a model with default [`Options`].
    pub fn load(path: impl AsRef<Path>) -> Result<Model, RuntimeError> {
        Model::load_with(path, &Options::default())
    }

    /// Loads (memory-maps and validates) a model.
    pub fn load_with(path: impl AsRef<Path>, options: &Options) -> Result<Model, RuntimeError> {
        Model::from_file(BnasFile::open(path.as_ref())?, options)
    }

    /// Plans a model from an opened file.
    pub fn from_file(file: BnasFile, options: &Options) -> Result<Model, RuntimeError> {
        let isa = match options.isa {
            Some(isa) if !isa.is_supported() => return Err(KernelError::UnsupportedIsa { isa }.into()),
            Some(isa) => isa,
            None => kernels::select()?,
        };
        if options.threads == Some(0) {
            return Err(RuntimeError::Threads {
                threads: 0,
                message: "at least one thread is needed".into(),
            });
        }
        let threads =
            options.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("bnas-worker-{i}"))
            .build()
            .map_err(|e| RuntimeError::Threads { threads, message: e.to_string() })?;
        let spec = file.metadata().config.spec()?;
        let plan = Plan::build(&spec, &file, file.metadata().bn_eps)?;
        let (engine, fallback) = match open_gpu(&plan, options.device) {
            Ok(Some(engine)) => (engine, None),
            Ok(None) => (cpu_engine(&plan, threads), None),
            Err(e) if options.device == Device::Auto => (cpu_engine(&plan, threads), Some(e)),
            Err(e) => return Err(e.into()),
        };
        Ok(Model { file, spec, plan, isa, pool, engine, fallback })
    }

    /// What the model runs on.
    pub fn backend(&self) -> Backend {
        match &self.engine {
            Engine::Cpu { .. } => Backend::Cpu(self.isa),
            #[cfg(feature = "gpu")]
            Engine::Gpu(gpu) => Backend::Gpu(gpu.adapter().clone()),
        }
    }

    /// Why [`Device::Auto`] chose the CPU, if it did.
    pub fn gpu_fallback(&self) -> Option<&GpuError> {
        self.fallback.as_ref()
    }

    /// The model's metadata: network config, preprocessing, class names, provenance.
    pub fn metadata(&self) -> &Metadata {
        self.file.metadata()
    }

    /// The opened file.
    pub fn file(&self) -> &BnasFile {
        &self.file
    }

    /// The network spec the model was planned from.
    pub fn spec(&self) -> &NetworkSpec {
        &self.spec
    }

    /// The execution plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The kernels in use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Values of one input sample, `C * H * W`.
    pub fn input_len(&self) -> usize {
        self.plan.input.numel() as usize
    }

    /// Runs `batch` samples given as NCHW f32 (already preprocessed); returns the logits,
    /// `batch x classes`.
    pub fn run_batch(&self, input: &[f32], batch: usize) -> Result<Vec<f32>, RuntimeError> {
        self.run_observed(input, batch, None)
    }

    /// Like [`run_batch`](Self::run_batch), reporting every step to `observer`.
    pub fn run_observed(
        &self,
        input: &[f32],
        batch: usize,
        observer: Option<&mut dyn Observer>,
    ) -> Result<Vec<f32>, RuntimeError> {
        if batch == 0 {
            return Err(RuntimeError::EmptyBatch);
        }
        let expected = batch.checked_mul(self.input_len());
        if expected != Some(input.len()) {
            return Err(RuntimeError::InputSize {
                found: input.len(),
                expected: expected.unwrap_or(usize::MAX),
                batch,
                shape: self.plan.input.to_string(),
            });
        }
        let (weights, arenas) = match &self.engine {
            Engine::Cpu { weights, arenas } => (weights, arenas),
            #[cfg(feature = "gpu")]
            Engine::Gpu(gpu) => return Ok(gpu.run(&self.plan, input, batch, observer)?),
        };
        let sub = self.sub_batch();
        if observer.is_none() && batch > sub {
            return self.run_sub_batches(weights, arenas, input, batch, sub);
        }
        let mut arena = self.arena(arenas, batch)?;
        let logits = self
            .pool
            .install(|| cpu::execute(&self.plan, weights, self.isa, &mut arena, input, observer).to_vec());
        arenas.keep(arena);
        Ok(logits)
    }

    /// Samples per sub-batch on the CPU: as many as keep the plan's activations within
    /// [`SUB_BATCH_BYTES`], at least 1.
    fn sub_batch(&self) -> usize {
        let per_sample = self.plan.slots.iter().sum::<usize>() * size_of::<f32>();
        (SUB_BATCH_BYTES / per_sample.max(1)).max(1)
    }

    /// Runs `batch` samples as sub-batches of `sub`, side by side on the pool's threads, each
    /// with its own arena. Every sample's logits are what a batch of any size gives.
    fn run_sub_batches(
        &self,
        weights: &PackedWeights,
        arenas: &ArenaCache<Arena>,
        input: &[f32],
        batch: usize,
        sub: usize,
    ) -> Result<Vec<f32>, RuntimeError> {
        let (classes, per_sample) = (self.plan.classes, self.input_len());
        let mut logits = vec![0.0; batch * classes];
        self.pool.install(|| {
            logits.par_chunks_mut(sub * classes).zip(input.par_chunks(sub * per_sample)).try_for_each(
                |(out, input)| {
                    let mut arena = self.arena(arenas, input.len() / per_sample)?;
                    out.copy_from_slice(cpu::execute(&self.plan, weights, self.isa, &mut arena, input, None));
                    arenas.keep(arena);
                    Ok::<(), RuntimeError>(())
                },
            )
        })?;
        Ok(logits)
    }

    /// A kept CPU arena for `batch` samples, or a new one.
    fn arena(&self, arenas: &ArenaCache<Arena>, batch: usize) -> Result<Arena, RuntimeError> {
        arenas.take(batch, || {
            Arena::new(&self.plan, batch).ok_or_else(|| RuntimeError::OutOfMemory {
                batch,
                values: self.plan.slots.iter().map(|&len| len as u128 * batch as u128).sum(),
            })
        })
    }

    /// Preprocesses an image as the metadata says, runs it and returns the `top_k` classes.
    pub fn predict(&self, image: &RawImage, top_k: usize) -> Result<Vec<Prediction>, RuntimeError> {
        let input = self.metadata().preprocess.apply(image)?;
        let logits = self.run_batch(&input, 1)?;
        Ok(self.top_k(&logits, top_k))
    }

    /// The `k` most probable classes of one sample's logits, with softmax probabilities.
    pub fn top_k(&self, logits: &[f32], k: usize) -> Vec<Prediction> {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
        let total: f32 = exp.iter().sum();
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        order
            .into_iter()
            .take(k)
            .map(|index| Prediction {
                index,
                label: self.metadata().class_names.get(index).cloned().unwrap_or_else(|| index.to_string()),
                score: exp[index] / total,
            })
            .collect()
    }

    /// Runs one NCHW sample and records every layer's output, plus the integer view of every
    /// binary conv.
    pub fn trace(&self, input: &[f32]) -> Result<Trace, RuntimeError> {
        let mut recorder = TraceRecorder::default();
        let logits = self.run_observed(input, 1, Some(&mut recorder))?;
        Ok(Trace { layers: recorder.layers, logits })
    }
}

/// Activations a CPU sub-batch may hold, about one core's share of the L2 cache: a larger
/// batch runs as sub-batches (see [`Model::run_batch`]), since a layer's activations for the
/// whole batch would stream through memory between layers.
const SUB_BATCH_BYTES: usize = 1 << 20;

/// The CPU engine of `plan` on `threads` threads: its convs packed, and room for a sub-batch
/// arena per thread beside the usual ones.
fn cpu_engine(plan: &Plan, threads: usize) -> Engine {
    Engine::Cpu { weights: PackedWeights::pack(plan), arenas: ArenaCache::new(KEPT_ARENAS + threads) }
}

/// The GPU model `device` asks for: none for the CPU; for `Auto`, a hardware adapter only.
#[cfg(feature = "gpu")]
fn open_gpu(plan: &Plan, device: Device) -> Result<Option<Engine>, GpuError> {
    match device {
        Device::Cpu => Ok(None),
        Device::Gpu | Device::Auto => crate::gpu::GpuModel::new(plan, device == Device::Auto)
            .map(|gpu| Some(Engine::Gpu(Box::new(gpu)))),
    }
}

/// Without the `gpu` feature, only the CPU.
#[cfg(not(feature = "gpu"))]
fn open_gpu(_plan: &Plan, device: Device) -> Result<Option<Engine>, GpuError> {
    match device {
        Device::Cpu => Ok(None),
        Device::Gpu | Device::Auto => Err(GpuError::NotBuilt),
    }
}
