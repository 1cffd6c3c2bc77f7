//! Evaluation: loss, top-1 and top-5 over a data set, with binarized weights (reference §1, as the
//! reference's `infer`), optionally keeping every example's logits.

use tch::{Kind, Tensor};

use crate::binary::WeightBinarizer;
use crate::error::Result;
use crate::loader::Loader;
use crate::network::Network;

/// Accuracy and loss over some examples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// Examples evaluated.
    pub examples: usize,
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction whose label has the highest logit (ties count as correct).
    pub top1: f64,
    /// Fraction whose label is among the five highest logits.
    pub top5: f64,
}

/// One example's outcome, as `bnas-run eval --predictions` writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Index in the data set.
    pub index: usize,
    /// True label.
    pub label: usize,
    /// Predicted label (highest logit, lowest index on ties).
    pub pred: usize,
    /// The logits.
    pub logits: Vec<f32>,
}

/// Counts (top-1, top-5) hits of `logits` `[N, K]` against `labels` `[N]` with the runtime's
/// rule: the label is within the top k when fewer than k logits exceed its own.
pub fn hits(logits: &Tensor, labels: &Tensor) -> (usize, usize) {
    let own = logits.gather(1, &labels.unsqueeze(1), false);
    let above = logits.gt_tensor(&own).sum_dim_intlist([1i64].as_slice(), false, Kind::Int64);
    let top1 = above.eq(0).sum(Kind::Int64).int64_value(&[]) as usize;
    let top5 = above.lt(5).sum(Kind::Int64).int64_value(&[]) as usize;
    (top1, top5)
}

/// Evaluates `network` on the examples at `indices`, `batch` at a time, in inference mode with
/// binarized weights (the latent weights are restored afterwards). `on_batch` sees each batch's
/// predictions (for a per-example log or a progress bar).
pub fn evaluate(
    network: &Network,
    loader: &Loader,
    indices: &[usize],
    batch: usize,
    mut on_batch: impl FnMut(&[Prediction]) -> Result<()>,
) -> Result<Evaluation> {
    let mut binarizer = WeightBinarizer::new(network.binary_weights());
    binarizer.binarize_for_inference();
    let result = tch::no_grad(|| -> Result<Evaluation> {
        let (mut loss, mut top1, mut top5) = (0.0, 0, 0);
        for chunk in indices.chunks(batch.max(1)) {
            let (input, labels) = loader.batch(chunk, None)?;
            let logits = network.forward(&input, false, None)?;
            loss += logits.cross_entropy_for_logits(&labels).double_value(&[]) * chunk.len() as f64;
            let (h1, h5) = hits(&logits, &labels);
            top1 += h1;
            top5 += h5;
            let cpu = logits.to_device(tch::Device::Cpu).to_kind(Kind::Float);
            let classes = cpu.size()[1] as usize;
            let flat = Vec::<f32>::try_from(cpu.flatten(0, -1))?;
            let labels = Vec::<i64>::try_from(labels.to_device(tch::Device::Cpu))?;
            let predictions: Vec<Prediction> = chunk
                .iter()
                .zip(labels)
                .zip(flat.chunks_exact(classes))
                .map(|((&index, label), logits)| Prediction {
                    index,
                    label: label as usize,
                    pred: (0..classes)
                        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]).then(b.cmp(&a)))
                        .unwrap_or(0),
                    logits: logits.to_vec(),
                })
                .collect();
            on_batch(&predictions)?;
        }
        let n = indices.len().max(1) as f64;
        Ok(Evaluation {
            examples: indices.len(),
            loss: loss / n,
            top1: top1 as f64 / n,
            top5: top5 as f64 / n,
        })
    });
    binarizer.restore(false);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_follow_the_runtime_rule() {
        // Example 0: label 2 has the top logit. Example 1: label 0 is 7th of 7 (6 above).
        // Example 2: label 1 ties the top logit: counts as top-1.
        let logits = Tensor::from_slice(&[
            0.0f32, 1.0, 5.0, 2.0, 0.0, 0.0, 0.0, //
            -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, //
            3.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        ])
        .reshape([3, 7]);
        let labels = Tensor::from_slice(&[2i64, 0, 1]);
        assert_eq!(hits(&logits, &labels), (2, 2));
    }
}

/// A trained network loaded from a checkpoint directory.
#[derive(Debug)]
pub struct TrainedModel {
    /// Its `model.json`.
    pub card: crate::checkpoint::ModelCard,
    /// The network, its variables in `vs`.
    pub network: Network,
    /// Owns the variables.
    pub vs: tch::nn::VarStore,
}

impl TrainedModel {
    /// Loads the checkpoint in `dir` onto `device`.
    pub fn load(dir: &std::path::Path, device: tch::Device) -> Result<TrainedModel> {
        let card = crate::checkpoint::load_card(dir)?;
        let spec = card.config.spec()?;
        let vs = tch::nn::VarStore::new(device);
        let network = Network::new(&vs.root(), spec);
        let variables = crate::checkpoint::named_tensors(network.spec(), &vs);
        crate::checkpoint::load_weights(dir, network.spec(), &variables)?;
        Ok(TrainedModel { card, network, vs })
    }
}
