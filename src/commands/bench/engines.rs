//! The four engines `bnas bench` compares, each loaded from the files a deployment would ship:
//! the bnas runtime on the `.bnas`, ONNX Runtime fp32 and OpenVINO fp32 on the float-equivalent
//! ONNX, and libtorch fp32 on the trainer's network with the `.bnas` weights.

use std::path::Path;

use anyhow::Context;
use bnas_export::onnx_runtime::OrtModel;
use bnas_runtime::format::BnasFile;
use bnas_runtime::{Model, Options};
use clap::ValueEnum;
use serde::Serialize;

use super::openvino::OpenVinoModel;
use super::torch::TorchModel;

/// Which engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// The XNOR/popcount runtime.
    Bnas,
    /// ONNX Runtime, fp32.
    Ort,
    /// OpenVINO's CPU plugin, fp32.
    Openvino,
    /// libtorch, fp32.
    Torch,
}

impl EngineKind {
    /// Every engine, in the order of the report (and of each interleaved round).
    pub const ALL: [EngineKind; 4] =
        [EngineKind::Bnas, EngineKind::Ort, EngineKind::Openvino, EngineKind::Torch];

    /// The name used on the command line and in the JSON report.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Bnas => "bnas",
            EngineKind::Ort => "ort",
            EngineKind::Openvino => "openvino",
            EngineKind::Torch => "torch",
        }
    }
}

/// A loaded engine (boxed: the engines' sizes differ widely).
#[derive(Debug)]
pub enum Engine {
    /// The bnas runtime on the CPU.
    Bnas(Box<Model>),
    /// An ONNX Runtime session.
    Ort {
        /// The session.
        model: Box<OrtModel>,
        /// Per-sample input shape, CHW.
        sample: [usize; 3],
    },
    /// An OpenVINO CPU inference request, compiled for the bench's batch.
    Openvino(Box<OpenVinoModel>),
    /// The trainer's network on libtorch.
    Torch(Box<TorchModel>),
}

/// Where a benchmark's model lives.
#[derive(Debug, Clone, Copy)]
pub struct ModelFiles<'a> {
    /// The `.bnas` file.
    pub bnas: &'a Path,
    /// Its float-equivalent ONNX model.
    pub onnx: &'a Path,
}

impl Engine {
    /// Loads `kind` with `threads` worker threads (ORT's intra-op threads, OpenVINO's inference
    /// threads, libtorch's threads), for passes of `batch` samples.
    pub fn load(
        kind: EngineKind,
        files: ModelFiles<'_>,
        threads: usize,
        batch: usize,
    ) -> anyhow::Result<Engine> {
        let open = || BnasFile::open(files.bnas).with_context(|| format!("reading {}", files.bnas.display()));
        Ok(match kind {
            EngineKind::Bnas => {
                let options = Options { threads: Some(threads), ..Options::default() };
                Engine::Bnas(Box::new(Model::from_file(open()?, &options)?))
            }
            EngineKind::Ort => {
                let input = open()?.metadata().config.input;
                let onnx =
                    std::fs::read(files.onnx).with_context(|| format!("reading {}", files.onnx.display()))?;
                let model = Box::new(OrtModel::new(&onnx, threads)?);
                Engine::Ort { model, sample: [input.channels, input.height, input.width] }
            }
            EngineKind::Openvino => {
                let input = open()?.metadata().config.input;
                let sample = [input.channels, input.height, input.width];
                Engine::Openvino(Box::new(OpenVinoModel::new(files.onnx, batch, sample, threads)?))
            }
            EngineKind::Torch => {
                tch::set_num_threads(threads as i32);
                Engine::Torch(Box::new(TorchModel::new(&open()?)?))
            }
        })
    }

    /// Logits, `batch x classes`, of `batch` NCHW samples.
    pub fn run(&mut self, input: &[f32], batch: usize) -> anyhow::Result<Vec<f32>> {
        Ok(match self {
            Engine::Bnas(model) => model.run_batch(input, batch)?,
            Engine::Ort { model, sample } => model.run(input.to_vec(), batch, *sample)?,
            Engine::Openvino(model) => model.run(input)?,
            Engine::Torch(model) => model.run(input, batch)?,
        })
    }
}
