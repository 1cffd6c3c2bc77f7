//! The embedding API: load a `.bnas` model once, then run batches, classify images or trace
//! a run layer by layer.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use bnas_models::{LayerId, LayerOp, NetworkSpec};

use crate::cpu::{self, Arena, Observer};
use crate::data::RawImage;
use crate::device::{Backend, Device, GpuError};
use crate::error::RuntimeError;
use crate::format::{BnasFile, Metadata};
use crate::kernels::{self, Isa, KernelError};
use crate::plan::{Plan, Step};

/// Arenas kept for reuse, one per recent batch size.
const KEPT_ARENAS: usize = 2;

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

/// A loaded model: the memory-mapped file, its network spec and the execution plan.
#[derive(Debug)]
pub struct Model {
    file: BnasFile,
    spec: NetworkSpec,
    plan: Plan,
    isa: Isa,
    pool: rayon::ThreadPool,
    arenas: Mutex<Vec<Arena>>,
    #[cfg(feature = "gpu")]
    gpu: Option<crate::gpu::GpuModel>,
    /// Why `Device::Auto` fell back to the CPU.
    fallback: Option<GpuError>,
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

/// A single-sample run, layer by layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Every computed layer, in execution order.
    pub layers: Vec<LayerTrace>,
    /// The logits.
    pub logits: Vec<f32>,
}

/// One computed layer of a [`Trace`].
#[derive(Debug, Clone, PartialEq)]
pub struct LayerTrace {
    /// Its index in the spec.
    pub layer: LayerId,
    /// Its name.
    pub name: String,
    /// Its output, CHW.
    pub output: Vec<f32>,
    /// For binary convs, what the XNOR kernel saw and produced.
    pub binary: Option<BinaryTrace>,
}

/// The integer view of one binary conv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryTrace {
    /// The binarized input, `height x width x words` (pixel-major, bit 1 = +1).
    pub packed_input: Vec<u64>,
    /// `sum_valid sign(x) * sign(w)` before the alpha scale, CHW.
    pub integer_outputs: Vec<i32>,
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
        #[cfg_attr(not(feature = "gpu"), allow(unused_variables))]
        let (gpu, fallback) = match open_gpu(&plan, options.device) {
            Ok(gpu) => (gpu, None),
            Err(e) if options.device == Device::Auto => (None, Some(e)),
            Err(e) => return Err(e.into()),
        };
        Ok(Model {
            file,
            spec,
            plan,
            isa,
            pool,
            arenas: Mutex::new(Vec::new()),
            #[cfg(feature = "gpu")]
            gpu,
            fallback,
        })
    }

    /// What the model runs on.
    pub fn backend(&self) -> Backend {
        #[cfg(feature = "gpu")]
        if let Some(gpu) = &self.gpu {
            return Backend::Gpu(gpu.adapter().clone());
        }
        Backend::Cpu(self.isa)
    }

    /// Why [`Device::Auto`] chose the CPU, if it did.
    pub fn gpu_fallback(&self) -> Option<&GpuError> {
        self.fallback.as_ref()
    }

    /// The model's metadata: network config, preprocessing, class names, provenance.
    pub fn metadata(&self) -> &Metadata {
        self.file.metadata()
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
        #[cfg(feature = "gpu")]
        if let Some(gpu) = &self.gpu {
            return Ok(gpu.run(&self.plan, input, batch, observer)?);
        }
        let mut arena = self.take_arena(batch)?;
        let logits =
            self.pool.install(|| cpu::execute(&self.plan, self.isa, &mut arena, input, observer).to_vec());
        let mut arenas = self.arenas.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Keep the most recent few batch sizes (an eval's last, partial batch is one more).
        if arenas.len() >= KEPT_ARENAS {
            arenas.remove(0);
        }
        arenas.push(arena);
        Ok(logits)
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
        let mut recorder = TraceRecorder { layers: Vec::new(), pending: None };
        let logits = self.run_observed(input, 1, Some(&mut recorder))?;
        Ok(Trace { layers: recorder.layers, logits })
    }

    /// The values that the sign decisions of one NCHW sample compare with zero: every binarized
    /// input after its BatchNorm, computed in f64 from the traced f32 inputs. A value near zero
    /// is a decision that rounding could flip between engines (agreement checks excuse such
    /// examples). Exact zeros of statically zero inputs through a BatchNorm with zero mean and
    /// shift are left out: every engine computes them exactly.
    pub fn sign_margins(&self, input: &[f32]) -> Result<Vec<f64>, RuntimeError> {
        let trace = self.trace(input)?;
        let spec = self.spec();
        let eps = f64::from(self.metadata().bn_eps);
        let floats = |name: String| -> Result<Vec<f64>, RuntimeError> {
            Ok(self.file.floats(&name)?.iter().map(|&v| f64::from(v)).collect())
        };
        let mut margins = Vec::new();
        for layer in spec.live_layers().filter(|l| l.precision.binarizes_input()) {
            let LayerOp::Conv(conv) = &layer.op else { continue };
            let source = layer.inputs[0];
            let shape = spec.layers[source].output;
            let zeros;
            let x: &[f32] = match trace.layers.iter().find(|t| t.layer == source) {
                Some(traced) => &traced.output,
                None if source == 0 => input,
                None => {
                    zeros = vec![0.0; shape.numel() as usize];
                    &zeros
                }
            };
            let bn = match &conv.input_bn {
                Some(bn) => {
                    let p = &bn.prefix;
                    let (gamma, beta) = if bn.affine {
                        (floats(format!("{p}.weight"))?, floats(format!("{p}.bias"))?)
                    } else {
                        (vec![1.0; bn.channels], vec![0.0; bn.channels])
                    };
                    Some((
                        gamma,
                        beta,
                        floats(format!("{p}.running_mean"))?,
                        floats(format!("{p}.running_var"))?,
                    ))
                }
                None => None,
            };
            let pixels = shape.height * shape.width;
            for (i, &v) in x.iter().enumerate() {
                let (c, mut y, mut structural) = (i / pixels, f64::from(v), v == 0.0);
                if let Some((gamma, beta, mean, var)) = &bn {
                    y = gamma[c] * (y - mean[c]) / (var[c] + eps).sqrt() + beta[c];
                    structural &= mean[c] == 0.0 && beta[c] == 0.0;
                }
                if !structural {
                    margins.push(y);
                }
            }
        }
        Ok(margins)
    }

    fn take_arena(&self, batch: usize) -> Result<Arena, RuntimeError> {
        let mut arenas = self.arenas.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match arenas.iter().position(|a| a.batch() == batch) {
            Some(i) => Ok(arenas.swap_remove(i)),
            None => Arena::new(&self.plan, batch).ok_or_else(|| RuntimeError::OutOfMemory {
                batch,
                values: self.plan.slots.iter().map(|&len| len as u128 * batch as u128).sum(),
            }),
        }
    }
}

/// The GPU model `device` asks for: none for the CPU; for `Auto`, a hardware adapter only.
#[cfg(feature = "gpu")]
fn open_gpu(plan: &Plan, device: Device) -> Result<Option<crate::gpu::GpuModel>, GpuError> {
    match device {
        Device::Cpu => Ok(None),
        Device::Gpu | Device::Auto => crate::gpu::GpuModel::new(plan, device == Device::Auto).map(Some),
    }
}

/// Without the `gpu` feature, only the CPU.
#[cfg(not(feature = "gpu"))]
fn open_gpu(_plan: &Plan, device: Device) -> Result<Option<std::convert::Infallible>, GpuError> {
    match device {
        Device::Cpu => Ok(None),
        Device::Gpu | Device::Auto => Err(GpuError::NotBuilt),
    }
}

/// Collects a [`Trace`].
struct TraceRecorder {
    layers: Vec<LayerTrace>,
    pending: Option<BinaryTrace>,
}

impl Observer for TraceRecorder {
    fn step_done(&mut self, step: &Step, output: &[f32], _elapsed: Duration) {
        let (channels, pixels) = (step.shape.channels, step.shape.height * step.shape.width);
        let mut binary = self.pending.take();
        if let Some(binary) = &mut binary {
            binary.integer_outputs = cpu::nhwc_to_nchw(&binary.integer_outputs, channels, pixels);
        }
        self.layers.push(LayerTrace {
            layer: step.layer,
            name: step.name.clone(),
            output: cpu::nhwc_to_nchw(output, channels, pixels),
            binary,
        });
    }

    fn wants_binary_detail(&self) -> bool {
        true
    }

    fn binary_conv(&mut self, _step: &Step, packed: &[u64], integer_outputs: Vec<i32>) {
        self.pending = Some(BinaryTrace { packed_input: packed.to_vec(), integer_outputs });
    }
}
