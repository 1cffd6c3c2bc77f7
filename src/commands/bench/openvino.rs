//! The OpenVINO baseline: the float-equivalent ONNX model compiled by OpenVINO's CPU plugin, f32
//! inference precision, one stream, the bench's thread count, the input reshaped to the bench's
//! static batch (OpenVINO compiles a static shape into faster code than a dynamic one, so this
//! gives the baseline its best case). The C API is loaded at run time from the library that
//! `scripts/setup.sh` installs in `.deps/openvino`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, ensure, Context};
use openvino::{
    CompiledModel, Core, DeviceType, ElementType, InferRequest, PartialShape, RwPropertyKey, Shape, Tensor,
};

/// The OpenVINO C library to load: `BNAS_OPENVINO_LIB` at run time, else at build time (the
/// workspace's `.cargo/config.toml` points it at `.deps/openvino`).
pub fn library_path() -> PathBuf {
    std::env::var_os("BNAS_OPENVINO_LIB")
        .map(PathBuf::from)
        .or_else(|| option_env!("BNAS_OPENVINO_LIB").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("libopenvino_c.so"))
}

/// An ONNX model compiled for OpenVINO's CPU device at one batch size.
pub struct OpenVinoModel {
    /// Declared before the compiled network it runs, so that it is dropped first.
    request: InferRequest,
    _compiled: CompiledModel,
    shape: Shape,
    values: usize,
}

impl std::fmt::Debug for OpenVinoModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenVinoModel").field("values", &self.values).finish_non_exhaustive()
    }
}

impl OpenVinoModel {
    /// Reads `onnx` and compiles it for `batch` samples of shape `sample` (CHW) on `threads`
    /// threads.
    pub fn new(
        onnx: &Path,
        batch: usize,
        sample: [usize; 3],
        threads: usize,
    ) -> anyhow::Result<OpenVinoModel> {
        let library = library_path();
        ensure!(
            library.exists(),
            "cannot load OpenVINO from {}: no such file (run `bash scripts/setup.sh`, or set BNAS_OPENVINO_LIB)",
            library.display()
        );
        openvino_sys::library::load_from(&library)
            .map_err(|e| anyhow!("cannot load OpenVINO from {}: {e}", library.display()))?;
        let mut core = Core::new().context("starting OpenVINO")?;
        let threads = threads.to_string();
        let properties = [
            (RwPropertyKey::InferenceNumThreads, threads.as_str()),
            (RwPropertyKey::NumStreams, "1"),
            (RwPropertyKey::HintPerformanceMode, "LATENCY"),
            (RwPropertyKey::HintInferencePrecision, "f32"),
        ];
        core.set_properties(&DeviceType::CPU, properties).context("setting OpenVINO's CPU properties")?;
        let path = onnx.to_str().with_context(|| format!("{} is not UTF-8", onnx.display()))?;
        let mut model =
            core.read_model_from_file(path, "").with_context(|| format!("OpenVINO reading {path}"))?;
        let mut dims = vec![i64::try_from(batch)?];
        dims.extend(sample.iter().map(|&d| d as i64));
        model
            .reshape_single_input(&PartialShape::new_static(4, &dims)?)
            .context("OpenVINO fixing the input shape")?;
        let mut compiled =
            core.compile_model(&model, DeviceType::CPU).context("OpenVINO compiling the model")?;
        let request = compiled.create_infer_request().context("creating an OpenVINO request")?;
        let values = batch * sample.iter().product::<usize>();
        Ok(OpenVinoModel { request, _compiled: compiled, shape: Shape::new(&dims)?, values })
    }

    /// Logits of the `batch` NCHW samples it was compiled for.
    pub fn run(&mut self, input: &[f32]) -> anyhow::Result<Vec<f32>> {
        ensure!(
            input.len() == self.values,
            "OpenVINO: {} input values, compiled for {}",
            input.len(),
            self.values
        );
        let mut tensor = Tensor::new(ElementType::F32, &self.shape)?;
        tensor.get_data_mut::<f32>()?.copy_from_slice(input);
        self.request.set_input_tensor(&tensor)?;
        self.request.infer().context("OpenVINO inference")?;
        Ok(self.request.get_output_tensor()?.get_data::<f32>()?.to_vec())
    }
}
