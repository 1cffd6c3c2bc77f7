//! The libtorch baseline: the trainer's network, built from the model's spec, with its VarStore
//! filled from the `.bnas` tensors. Binary conv weights become their float equivalent, the
//! +1/-1 signs (unpacked as the ONNX export does) times the per-channel alpha, which is exactly
//! what training swaps in for a forward pass; so a plain eval-mode forward computes the deployed
//! function.

use anyhow::{bail, ensure, Context};
use bnas_export::onnx::unpack_filters;
use bnas_models::{LayerOp, Liveness, ParamKind, Precision};
use bnas_runtime::format::{alpha_name, BnasFile};
use bnas_trainer::network::Network;
use tch::{nn, Device, Kind, Tensor};

/// The BatchNorm epsilon the trainer's BatchNorm uses (PyTorch's default).
const TORCH_BN_EPS: f32 = 1e-5;

/// A `.bnas` model on libtorch fp32, CPU.
#[derive(Debug)]
pub struct TorchModel {
    network: Network,
    /// Holds the parameters the network's tensors share.
    _vars: nn::VarStore,
    sample: [i64; 3],
}

impl TorchModel {
    /// Builds the network of `file` and copies its tensors in.
    pub fn new(file: &BnasFile) -> anyhow::Result<TorchModel> {
        let metadata = file.metadata();
        ensure!(
            metadata.bn_eps == TORCH_BN_EPS,
            "the model's BatchNorm epsilon is {}, the trainer's network uses {TORCH_BN_EPS}",
            metadata.bn_eps
        );
        let spec = metadata.config.spec()?;
        let vars = nn::VarStore::new(Device::Cpu);
        let network = Network::new(&vars.root(), spec);
        let variables = vars.variables();
        tch::no_grad(|| -> anyhow::Result<()> {
            for layer in network.spec().layers.iter().filter(|l| l.liveness == Liveness::Live) {
                for param in layer.params.iter().filter(|p| p.kind != ParamKind::NumBatchesTracked) {
                    let Some(var) = variables.get(&param.name) else {
                        bail!("the trainer's network has no variable {}", param.name)
                    };
                    let values = match &layer.op {
                        LayerOp::Conv(conv)
                            if layer.precision == Precision::Binary && param.name == conv.weight =>
                        {
                            float_equivalent_filters(file, &param.name, &param.shape)?
                        }
                        _ => file.floats_shaped(&param.name, &param.shape)?.to_vec(),
                    };
                    let shape: Vec<i64> = param.shape.iter().map(|&d| d as i64).collect();
                    var.shallow_clone().copy_(&Tensor::from_slice(&values).reshape(shape));
                }
            }
            Ok(())
        })
        .with_context(|| format!("loading {} into libtorch", metadata.config.name))?;
        let input = metadata.config.input;
        let sample = [input.channels, input.height, input.width].map(|d| d as i64);
        Ok(TorchModel { network, _vars: vars, sample })
    }

    /// Logits, `batch x classes`, of `batch` NCHW samples.
    pub fn run(&self, input: &[f32], batch: usize) -> anyhow::Result<Vec<f32>> {
        let [c, h, w] = self.sample;
        let x = Tensor::from_slice(input).reshape([batch as i64, c, h, w]);
        let logits = tch::no_grad(|| self.network.forward(&x, false, None))?;
        Ok(Vec::<f32>::try_from(logits.to_kind(Kind::Float).reshape([-1]))?)
    }
}

/// `sign * alpha[o]`, OIHW, of the packed filters `name` of `shape` `[O, C, K, K]`.
fn float_equivalent_filters(file: &BnasFile, name: &str, shape: &[usize]) -> anyhow::Result<Vec<f32>> {
    let &[out, inputs, kernel, _] = shape else { bail!("{name}: a conv weight of shape {shape:?}") };
    let words = file.filters_shaped(name, shape)?;
    let mut weights = unpack_filters(&words, out, inputs, kernel)
        .with_context(|| format!("{name}: {} packed words for {shape:?}", words.len()))?;
    let alpha = file.floats_shaped(&alpha_name(name), &[out])?;
    for (filter, &alpha) in weights.chunks_exact_mut(inputs * kernel * kernel).zip(alpha.iter()) {
        filter.iter_mut().for_each(|w| *w *= alpha);
    }
    Ok(weights)
}
