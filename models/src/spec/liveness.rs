//! Dead-layer analysis (reference §8): which layers are statically zero (Zeroise, and sums or pools
//! of zeros), and which reach the logits only through Zeroise edges.

use super::{Layer, LayerOp, Liveness};

/// Marks every layer Live, Zero or Dead. The last layer is the network output.
pub(super) fn analyze(layers: &mut [Layer]) {
    let mut zero = vec![false; layers.len()];
    for (i, layer) in layers.iter().enumerate() {
        zero[i] = match layer.op {
            LayerOp::Zero { .. } => true,
            LayerOp::Add | LayerOp::Concat => layer.inputs.iter().all(|&j| zero[j]),
            // Pooling zeros gives zeros. Convs are never zero: BN + sign turn zeros into a constant.
            LayerOp::MaxPool { .. } | LayerOp::AvgPool { .. } | LayerOp::GlobalAvgPool => {
                zero[layer.inputs[0]]
            }
            _ => false,
        };
    }
    // A statically zero output needs nothing computed upstream: Zeroise stops liveness.
    let mut live = vec![false; layers.len()];
    if let Some(last) = live.last_mut() {
        *last = true;
    }
    for i in (0..layers.len()).rev() {
        if live[i] && !zero[i] {
            for &j in &layers[i].inputs {
                live[j] = true;
            }
        }
    }
    for (i, layer) in layers.iter_mut().enumerate() {
        layer.liveness = match (zero[i], live[i]) {
            (true, _) => Liveness::Zero,
            (false, true) => Liveness::Live,
            (false, false) => Liveness::Dead,
        };
    }
}
