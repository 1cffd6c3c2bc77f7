//! Watching a run step by step, on any backend: the [`Observer`] that profiling and tracing
//! implement, and the layer-by-layer [`Trace`] of one sample.

use std::time::Duration;

use bnas_models::LayerId;

use crate::plan::Step;

/// Watches a run step by step (profiling, tracing).
pub trait Observer: Send {
    /// Called after each step with its NHWC output and its wall time.
    fn step_done(&mut self, step: &Step, output: &[f32], elapsed: Duration);

    /// Whether [`binary_conv`](Self::binary_conv) should be called (it costs a second pass).
    fn wants_binary_detail(&self) -> bool {
        false
    }

    /// Called for each binary conv with its packed input (pixels x words, NHWC) and its
    /// integer outputs `sum_valid sign(x) * sign(w)` (NHWC).
    fn binary_conv(&mut self, _step: &Step, _packed: &[u64], _integer_outputs: Vec<i32>) {}
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

/// Collects a [`Trace`]'s layers.
#[derive(Debug, Default)]
pub(crate) struct TraceRecorder {
    pub(crate) layers: Vec<LayerTrace>,
    pending: Option<BinaryTrace>,
}

impl Observer for TraceRecorder {
    fn step_done(&mut self, step: &Step, output: &[f32], _elapsed: Duration) {
        let (channels, pixels) = (step.shape.channels, step.shape.height * step.shape.width);
        let mut binary = self.pending.take();
        if let Some(binary) = &mut binary {
            binary.integer_outputs = nhwc_to_nchw(&binary.integer_outputs, channels, pixels);
        }
        self.layers.push(LayerTrace {
            layer: step.layer,
            name: step.name.clone(),
            output: nhwc_to_nchw(output, channels, pixels),
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

/// A plan's NHWC activation (`samples x pixels x channels`) as NCHW.
fn nhwc_to_nchw<T: Copy + Default>(input: &[T], channels: usize, pixels: usize) -> Vec<T> {
    let mut output = vec![T::default(); input.len()];
    for (out, x) in output.chunks_exact_mut(pixels * channels).zip(input.chunks_exact(pixels * channels)) {
        for p in 0..pixels {
            for c in 0..channels {
                out[c * pixels + p] = x[p * channels + c];
            }
        }
    }
    output
}
