//! A model's weights on the device, uploaded once: per step, the buffers its kernels read
//! besides activations. Per-channel vectors of a step share one buffer (a kernel may bind only
//! a few storage buffers).

use wgpu::util::DeviceExt;

use super::context::Context;
use crate::device::GpuError;
use crate::plan::{Plan, StepOp, Window};

/// The device buffers of one step.
#[derive(Debug)]
pub(super) enum StepWeights {
    /// A binary conv.
    BinaryConv {
        /// `sign[C]`, then `threshold[C]`.
        fold: wgpu::Buffer,
        /// Packed filters, panel layout, as u32 pairs.
        filters: wgpu::Buffer,
        /// `alpha[O]`.
        alpha: wgpu::Buffer,
    },
    /// A float conv.
    FloatConv {
        /// `[out, in, k, k]`.
        weight: wgpu::Buffer,
        /// Input BatchNorm `scale[C]`, `shift[C]`, then sign `sign[C]`, `threshold[C]`.
        input_fold: wgpu::Buffer,
        /// `bias[O]`, then output BatchNorm `scale[O]`, `shift[O]`.
        output_fold: wgpu::Buffer,
        /// Per depth index: channel, then `dy << 16 | dx`.
        depth_taps: wgpu::Buffer,
        /// The kernel's flags.
        flags: u32,
    },
    /// The classifier.
    Linear {
        /// `[out, in]`.
        weight: wgpu::Buffer,
        /// `[out]`.
        bias: wgpu::Buffer,
    },
    /// Nothing to upload.
    None,
}

/// A read-only storage buffer holding `values` (at least one element: empty bindings are
/// invalid), checked against the adapter's binding limit.
pub(super) fn storage<T: bytemuck::Pod>(
    context: &Context,
    what: &str,
    values: &[T],
) -> Result<wgpu::Buffer, GpuError> {
    let bytes: &[u8] = bytemuck::cast_slice(values);
    let padded;
    let contents = if bytes.len() < 4 {
        padded = [bytes, &[0; 4][bytes.len()..]].concat();
        &padded[..]
    } else {
        bytes
    };
    let limit = context.max_binding();
    if contents.len() as u64 > limit {
        return Err(GpuError::TooLarge { what: what.to_owned(), bytes: contents.len() as u64, limit });
    }
    Ok(context.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(what),
        contents,
        usage: wgpu::BufferUsages::STORAGE,
    }))
}

/// The channel and window offset of every depth index `(c, ky, kx)` of a float conv.
fn depth_taps(w: &Window, name: &str) -> Result<Vec<u32>, GpuError> {
    let reach = (w.kernel.saturating_sub(1)) * w.dilation;
    if reach > 0xffff {
        return Err(GpuError::TooLarge {
            what: format!("{name}: the window"),
            bytes: reach as u64,
            limit: 0xffff,
        });
    }
    let mut taps = Vec::with_capacity(2 * w.in_channels * w.taps());
    for c in 0..w.in_channels {
        for ky in 0..w.kernel {
            for kx in 0..w.kernel {
                taps.extend([c as u32, (((ky * w.dilation) << 16) | (kx * w.dilation)) as u32]);
            }
        }
    }
    Ok(taps)
}

/// `n` copies of `value`.
fn filled(n: usize, value: f32) -> Vec<f32> {
    vec![value; n]
}

impl StepWeights {
    /// Uploads the weights of every step of `plan`.
    pub(super) fn upload(context: &Context, plan: &Plan) -> Result<Vec<StepWeights>, GpuError> {
        plan.steps
            .iter()
            .map(|step| {
                let name = &step.name;
                Ok(match &step.op {
                    StepOp::BinaryConv(conv) => StepWeights::BinaryConv {
                        fold: storage(
                            context,
                            name,
                            &[&conv.binarize.sign[..], &conv.binarize.threshold].concat(),
                        )?,
                        filters: storage(context, name, &conv.filters)?,
                        alpha: storage(context, name, &conv.alpha)?,
                    },
                    StepOp::FloatConv(conv) => {
                        let (c, o) = (conv.window.in_channels, conv.window.out_channels);
                        let (scale, shift) =
                            conv.input_bn.as_ref().map_or((filled(c, 1.0), filled(c, 0.0)), |bn| {
                                (bn.scale.clone(), bn.shift.clone())
                            });
                        let (sign, threshold) =
                            conv.binarize.as_ref().map_or((filled(c, 0.0), filled(c, 0.0)), |b| {
                                (b.sign.clone(), b.threshold.clone())
                            });
                        let bias = conv.bias.as_ref().map_or(filled(o, 0.0), |b| b.to_vec());
                        let (out_scale, out_shift) =
                            conv.output_bn.as_ref().map_or((filled(o, 1.0), filled(o, 0.0)), |bn| {
                                (bn.scale.clone(), bn.shift.clone())
                            });
                        let flags = [
                            conv.input_bn.is_some(),
                            conv.input_relu,
                            conv.binarize.is_some(),
                            conv.bias.is_some(),
                            conv.output_bn.is_some(),
                            conv.relu,
                        ]
                        .iter()
                        .enumerate()
                        .fold(0, |flags, (bit, &on)| flags | u32::from(on) << bit);
                        StepWeights::FloatConv {
                            depth_taps: storage(context, name, &depth_taps(&conv.window, name)?)?,
                            weight: storage(context, name, &conv.weight[..])?,
                            input_fold: storage(context, name, &[scale, shift, sign, threshold].concat())?,
                            output_fold: storage(context, name, &[bias, out_scale, out_shift].concat())?,
                            flags,
                        }
                    }
                    StepOp::Linear(linear) => StepWeights::Linear {
                        weight: storage(context, name, &linear.weight)?,
                        bias: storage(context, name, &linear.bias)?,
                    },
                    _ => StepWeights::None,
                })
            })
            .collect()
    }
}
