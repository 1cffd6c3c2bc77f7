//! Activation memory per sample: fp32 layer outputs, bit-packed binary inputs, and the peak of
//! a simple sequential schedule.

use super::{LayerId, Liveness, NetworkSpec};

/// Bits per packed word: activations are packed along channels into u64 words.
const WORD_BITS: usize = 64;

impl NetworkSpec {
    /// Whether a layer's output must exist in memory: every computed layer, and a statically
    /// zero output that a computed conv reads (BN + sign turn zeros into a constant, so the conv
    /// needs them). Sums and concats skip or fill zero inputs without materializing them.
    pub fn materialized(&self, id: LayerId) -> bool {
        match self.layers[id].liveness {
            Liveness::Live => true,
            Liveness::Dead => false,
            Liveness::Zero => self.live_layers().any(|l| l.conv().is_some() && l.inputs.contains(&id)),
        }
    }

    /// Bytes of a layer's fp32 output; 0 when it is not [materialized](Self::materialized).
    pub fn activation_bytes(&self, id: LayerId) -> u64 {
        if self.materialized(id) {
            4 * self.layers[id].output.numel()
        } else {
            0
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
        let mut last_use: Vec<LayerId> = (0..n).collect();
        for (id, layer) in self.layers.iter().enumerate().filter(|(_, l)| !l.pruned()) {
            for &input in &layer.inputs {
                last_use[input] = last_use[input].max(id);
            }
        }
        // Every materialized output has a non-zero size, so bytes > 0 marks exactly those held.
        let bytes: Vec<u64> = (0..n).map(|id| self.activation_bytes(id)).collect();
        let held_layers: Vec<LayerId> = (0..n).filter(|&id| bytes[id] > 0).collect();
        let mut frees: Vec<Vec<LayerId>> = vec![Vec::new(); n];
        for &id in &held_layers {
            frees[last_use[id]].push(id);
        }
        let (mut held, mut peak) = (0u64, 0u64);
        for &id in &held_layers {
            held += bytes[id];
            peak = peak.max(held + self.packed_input_bytes(id));
            // The network output stays allocated: it is what the caller reads.
            for &done in frees[id].iter().filter(|&&done| done != n - 1) {
                held -= bytes[done];
            }
        }
        peak
    }
}
