//! ONNX Runtime, the float baseline that runs the exported ONNX models: the `libonnxruntime`
//! shared library is loaded at run time (no link-time dependency), from `ORT_DYLIB_PATH` or the
//! path `scripts/setup.sh` installs it at. Used by the agreement tests and the benchmarks.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;

/// Why ONNX Runtime could not run a model.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OrtError {
    /// The shared library is missing or unusable.
    #[error("cannot load ONNX Runtime from {path}: {message} (run `bash scripts/setup.sh`, or set ORT_DYLIB_PATH)")]
    Library {
        /// Where it was looked for.
        path: PathBuf,
        /// The loader's reason.
        message: String,
    },
    /// ONNX Runtime refused or failed to run the model.
    #[error("ONNX Runtime, while {during}: {message}")]
    Session {
        /// What was being done.
        during: &'static str,
        /// Its message.
        message: String,
    },
}

/// The ONNX Runtime library to load: `ORT_DYLIB_PATH` at run time, else at build time (the
/// workspace's `.cargo/config.toml` points it at `.deps/onnxruntime`).
pub fn library_path() -> PathBuf {
    std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .or_else(|| option_env!("ORT_DYLIB_PATH").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("libonnxruntime.so"))
}

/// The process's ONNX Runtime environment, loaded once from [`library_path`].
pub fn environment() -> Result<&'static Environment, OrtError> {
    static ENVIRONMENT: OnceLock<Result<Environment, OrtError>> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(|| {
            let path = library_path();
            let failed = |message: String| OrtError::Library { path: path.clone(), message };
            if !Path::new(&path).exists() {
                return Err(failed("no such file".into()));
            }
            ort::init_from(&path)
                .map_err(|e| failed(e.to_string()))?
                .with_name("bnas")
                .build()
                .map_err(|e| failed(e.to_string()))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// An exported model in an ONNX Runtime session (CPU, full graph optimizations).
#[derive(Debug)]
pub struct OrtModel {
    session: Session,
}

fn session_error<E: std::fmt::Display>(during: &'static str) -> impl Fn(E) -> OrtError {
    move |e| OrtError::Session { during, message: e.to_string() }
}

impl OrtModel {
    /// Loads a serialized ONNX model with `threads` intra-op threads.
    pub fn new(onnx: &[u8], threads: usize) -> Result<OrtModel, OrtError> {
        let session = Session::builder(environment()?)
            .map_err(session_error("creating a session"))?
            .with_intra_threads(threads)
            .map_err(session_error("setting the thread count"))?
            .commit_from_memory(onnx)
            .map_err(session_error("loading the model"))?;
        Ok(OrtModel { session })
    }

    /// Runs `batch` NCHW samples of `sample` shape `[C, H, W]` through the `input` -> `logits`
    /// graph of [`crate::onnx::to_onnx`]; returns the logits, `batch x classes`.
    pub fn run(&mut self, input: Vec<f32>, batch: usize, sample: [usize; 3]) -> Result<Vec<f32>, OrtError> {
        let shape = [batch, sample[0], sample[1], sample[2]];
        Ok(self.run_named("input", &shape, input, "logits")?.1)
    }

    /// Feeds `values` of `shape` to the float input `input`; returns the shape and values of the
    /// float output `output`.
    pub fn run_named(
        &mut self,
        input: &str,
        shape: &[usize],
        values: Vec<f32>,
        output: &str,
    ) -> Result<(Vec<i64>, Vec<f32>), OrtError> {
        let tensor =
            Tensor::from_array((shape.to_vec(), values)).map_err(session_error("building the input"))?;
        let outputs = self.session.run(ort::inputs![input => tensor]).map_err(session_error("running"))?;
        let (shape, data) =
            outputs[output].try_extract_tensor::<f32>().map_err(session_error("reading the output"))?;
        Ok((shape.to_vec(), data.to_vec()))
    }
}
