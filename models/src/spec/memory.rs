//! Activation memory per sample: fp32 layer outputs, bit-packed binary inputs, and the peak of
//! a simple sequential schedule.

use super::{LayerId, NetworkSpec};

/// Bits per packed word: activations are packed along channels into u64 words.
const WORD_BITS: usize = 64;

impl NetworkSpec {
    /// Bytes of a layer's fp32 output; 0 for a pruned layer, which is never materialized.
    pub fn activation_bytes(&self, id: LayerId) -> u64 {
        let layer = &self.layers[id];
        if layer.pruned() {
            0
        } else {
            4 * layer.output.numel()
        }
    }

    /// Bytes of a binary-input conv's bit-packed input: `ceil(C / 64)` u64 words per pixel.
    /// 0 for other layers and for pruned ones.
    pub fn packed_input_bytes(&self, id: LayerId) -> u64 {
        let layer = &self.layers[id];
        match layer.conv() {
            Some(conv) if layer.precision.binarizes_input() && !layer.pruned() => {
                let input = self.layers[layer.inputs[0]].output;
                let words = conv.in_channels.div_ceil(WORD_BITS);
                (words * 8 * input.height * input.width) as u64
            }
            _ => 0,
        }
    }

    /// Peak bytes of running the live layers in order, one sample: every output is allocated
    /// when produced and freed after its last consumer; a binary conv also holds its packed input.
    pub fn peak_activation_bytes(&self) -> u64 {
        let n = self.layers.len();
        let live: Vec<LayerId> = (0..n).filter(|&id| !self.layers[id].pruned()).collect();
        let mut last_use: Vec<LayerId> = (0..n).collect();
        for &id in &live {
            for &input in &self.layers[id].inputs {
                last_use[input] = last_use[input].max(id);
            }
        }
        let mut frees: Vec<Vec<LayerId>> = vec![Vec::new(); n];
        for &id in &live {
            frees[last_use[id]].push(id);
        }
        let (mut held, mut peak) = (0u64, 0u64);
        for &id in &live {
            held += self.activation_bytes(id);
            peak = peak.max(held + self.packed_input_bytes(id));
            // The network output stays allocated: it is what the caller reads.
            for &done in frees[id].iter().filter(|&&done| done != n - 1) {
                held -= self.activation_bytes(done);
            }
        }
        peak
    }
}
