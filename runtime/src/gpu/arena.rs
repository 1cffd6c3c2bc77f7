//! The device buffers of one batch size and the recorded commands that run the plan over them:
//! every dispatch's parameters and bind group are built once, so a run only encodes and
//! submits.

use std::ops::Range;

use wgpu::util::DeviceExt;

use super::context::Context;
use super::kernels::{block_groups, flat_groups, Kernels};
use super::weights::StepWeights;
use crate::bit_layout::{words_for, PANEL};
use crate::device::GpuError;
use crate::plan::{BinaryConv, ConcatPart, FloatConv, Plan, Step, StepOp, Window};

/// Output pixels per binary conv workgroup (16 lanes x 4 invocations x 4 pixels).
const BINARY_ROWS_PER_GROUP: usize = 16;
/// Output tile edge of the float conv kernel.
const FLOAT_TILE: usize = 64;

/// One recorded operation.
#[derive(Debug)]
pub(super) enum Command {
    /// A compute dispatch.
    Dispatch { pipeline: wgpu::ComputePipeline, bind_group: wgpu::BindGroup, groups: [u32; 3] },
    /// A buffer copy from offset 0 to offset 0.
    Copy { from: wgpu::Buffer, to: wgpu::Buffer, bytes: u64 },
    /// Zeroes the first `bytes` of a buffer.
    Clear { buffer: wgpu::Buffer, bytes: u64 },
}

/// Encodes `commands`, consecutive dispatches in one compute pass (wgpu orders them).
pub(super) fn encode(encoder: &mut wgpu::CommandEncoder, commands: &[Command]) {
    let mut i = 0;
    while i < commands.len() {
        match &commands[i] {
            Command::Dispatch { .. } => {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
                while let Some(Command::Dispatch { pipeline, bind_group, groups }) = commands.get(i) {
                    pass.set_pipeline(pipeline);
                    pass.set_bind_group(0, bind_group, &[]);
                    pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                    i += 1;
                }
            }
            Command::Copy { from, to, bytes } => {
                encoder.copy_buffer_to_buffer(from, 0, to, 0, *bytes);
                i += 1;
            }
            Command::Clear { buffer, bytes } => {
                encoder.clear_buffer(buffer, 0, Some(*bytes));
                i += 1;
            }
        }
    }
}

/// The buffers and commands of one batch size.
#[derive(Debug)]
pub(super) struct Arena {
    pub(super) batch: usize,
    /// The NCHW input, written by the host.
    pub(super) input: wgpu::Buffer,
    /// The plan's activation slots (NHWC f32).
    pub(super) slots: Vec<wgpu::Buffer>,
    /// Bit-packed input of the current binary conv (u64 words as u32 pairs).
    pub(super) packed: wgpu::Buffer,
    /// The logits, mapped for reading.
    pub(super) readback: wgpu::Buffer,
    /// Every command of a run: the input transpose, then each step's.
    pub(super) commands: Vec<Command>,
    /// The commands of each step.
    pub(super) step_commands: Vec<Range<usize>>,
}

impl crate::arena_cache::Arena for Arena {
    fn batch(&self) -> usize {
        self.batch
    }
}

/// Bytes of `values` f32 (or u32) values.
fn bytes_of(values: usize) -> u64 {
    values as u64 * 4
}

/// Builds dispatches against one device.
pub(super) struct Recorder<'a> {
    pub(super) context: &'a Context,
    pub(super) kernels: &'a Kernels,
    /// Bound where a kernel's input is unused (a binding cannot alias the output).
    pub(super) dummy: &'a wgpu::Buffer,
}

impl Recorder<'_> {
    /// A dispatch of `pipeline` with a uniform of `params` at binding 0 and `buffers` after it.
    pub(super) fn dispatch(
        &self,
        pipeline: &wgpu::ComputePipeline,
        params: &[u32],
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) -> Command {
        let device = &self.context.device;
        let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::cast_slice(params),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let entries: Vec<wgpu::BindGroupEntry> = std::iter::once(&uniform)
            .chain(buffers.iter().copied())
            .enumerate()
            .map(|(binding, buffer)| wgpu::BindGroupEntry {
                binding: binding as u32,
                resource: buffer.as_entire_binding(),
            })
            .collect();
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Command::Dispatch { pipeline: pipeline.clone(), bind_group, groups }
    }

    /// A storage buffer of `bytes` (at least 4) that kernels write and copies read.
    pub(super) fn buffer(
        &self,
        what: &str,
        bytes: u64,
        extra: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer, GpuError> {
        let limit = self.context.max_binding();
        if bytes > limit {
            return Err(GpuError::TooLarge { what: what.to_owned(), bytes, limit });
        }
        Ok(self.context.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(what),
            size: bytes.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE | extra,
            mapped_at_creation: false,
        }))
    }

    /// The pack dispatch of a binary conv: NHWC `input` to `packed` bits.
    pub(super) fn pack(
        &self,
        conv: &BinaryConv,
        fold: &wgpu::Buffer,
        input: &wgpu::Buffer,
        packed: &wgpu::Buffer,
        batch: usize,
    ) -> Result<Command, GpuError> {
        let w = &conv.window;
        let pixels = batch * w.input_pixels();
        let halves = 2 * words_for(w.in_channels);
        let params = [pixels as u32, w.in_channels as u32, halves as u32, 0];
        Ok(self.dispatch(
            &self.kernels.pack,
            &params,
            &[input, fold, packed],
            flat_groups(pixels * halves, 256, "pack")?,
        ))
    }

    /// The XNOR/popcount dispatch of a binary conv; with `integer`, it writes the integer dot
    /// products (bit cast) instead of the scaled outputs.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn binary_conv(
        &self,
        conv: &BinaryConv,
        filters: &wgpu::Buffer,
        alpha: &wgpu::Buffer,
        packed: &wgpu::Buffer,
        output: &wgpu::Buffer,
        batch: usize,
        integer: bool,
    ) -> Result<Command, GpuError> {
        let w = &conv.window;
        let rows = batch * w.output_pixels();
        let groups = block_groups(
            rows.div_ceil(BINARY_ROWS_PER_GROUP),
            w.out_channels.div_ceil(PANEL),
            "a binary conv",
        )?;
        let mut params = geometry(w, rows);
        params.extend([words_for(w.in_channels), w.out_channels, conv.relu.into(), integer.into()]);
        params.extend([groups[0] as usize, 0]);
        Ok(self.dispatch(
            &self.kernels.binary_conv,
            &u32s(&params),
            &[packed, filters, alpha, output],
            groups,
        ))
    }

    /// The tiled GEMM dispatch of a float conv.
    fn float_conv(
        &self,
        conv: &FloatConv,
        weights: &StepWeights,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
        batch: usize,
    ) -> Result<Command, GpuError> {
        let w = &conv.window;
        let rows = batch * w.output_pixels();
        let groups =
            block_groups(rows.div_ceil(FLOAT_TILE), w.out_channels.div_ceil(FLOAT_TILE), "a float conv")?;
        let StepWeights::FloatConv { weight, input_fold, output_fold, depth_taps, flags } = weights else {
            unreachable!("float convs have float weights")
        };
        let mut params = geometry(w, rows);
        params.extend([w.out_channels, w.in_channels * w.taps(), *flags as usize, groups[0] as usize, 0, 0]);
        Ok(self.dispatch(
            &self.kernels.float_conv,
            &u32s(&params),
            &[input, weight, input_fold, output_fold, depth_taps, output],
            groups,
        ))
    }

    /// The commands of `step` at `batch`, reading and writing `slots`.
    pub(super) fn step(
        &self,
        step: &Step,
        weights: &StepWeights,
        slots: &[wgpu::Buffer],
        packed: &wgpu::Buffer,
        batch: usize,
    ) -> Result<Vec<Command>, GpuError> {
        let output = &slots[step.output];
        let input = |i: usize| &slots[step.inputs[i]];
        let shape = step.shape;
        let pixels = batch * shape.height * shape.width;
        let values = pixels * shape.channels;
        let elementwise = |pipeline: &wgpu::ComputePipeline, params: &[usize], input: &wgpu::Buffer| {
            Ok::<_, GpuError>(self.dispatch(
                pipeline,
                &u32s(params),
                &[input, output],
                flat_groups(params[0], 256, &step.name)?,
            ))
        };
        Ok(match (&step.op, weights) {
            (StepOp::BinaryConv(conv), StepWeights::BinaryConv { fold, filters, alpha }) => vec![
                self.pack(conv, fold, input(0), packed, batch)?,
                self.binary_conv(conv, filters, alpha, packed, output, batch, false)?,
            ],
            (StepOp::FloatConv(conv), weights @ StepWeights::FloatConv { .. }) => {
                vec![self.float_conv(conv, weights, input(0), output, batch)?]
            }
            (StepOp::MaxPool(w) | StepOp::AvgPool(w), _) => {
                let max = matches!(step.op, StepOp::MaxPool(_));
                let mut params = vec![values, w.in_channels, w.input.0, w.input.1, w.output.0, w.output.1];
                params.extend([w.kernel, w.stride, w.padding, w.dilation, max.into(), 0]);
                vec![elementwise(&self.kernels.pool, &params, input(0))?]
            }
            (StepOp::Add, _) => {
                let mut commands = vec![Command::Copy {
                    from: input(0).clone(),
                    to: output.clone(),
                    bytes: bytes_of(values),
                }];
                for i in 1..step.inputs.len() {
                    commands.push(elementwise(&self.kernels.accumulate, &[values, 0, 0, 0], input(i))?);
                }
                commands
            }
            (StepOp::Concat(parts), _) => {
                let (mut offset, mut next) = (0, 0);
                let mut commands = Vec::with_capacity(parts.len());
                for part in parts {
                    let (channels, source) = match *part {
                        ConcatPart::Input(c) => {
                            next += 1;
                            (c, input(next - 1))
                        }
                        ConcatPart::Zeros(c) => (c, self.dummy),
                    };
                    let zeros = matches!(part, ConcatPart::Zeros(_));
                    let params = [pixels, channels, shape.channels, offset, zeros.into(), 0, 0, 0];
                    let groups = flat_groups(pixels * channels, 256, &step.name)?;
                    commands.push(self.dispatch(
                        &self.kernels.concat,
                        &u32s(&params),
                        &[source, output],
                        groups,
                    ));
                    offset += channels;
                }
                commands
            }
            (StepOp::GlobalAvgPool { pixels }, _) => {
                vec![elementwise(
                    &self.kernels.global_avg_pool,
                    &[values, shape.channels, *pixels, 0],
                    input(0),
                )?]
            }
            (StepOp::Linear(linear), StepWeights::Linear { weight, bias }) => {
                let params = u32s(&[values, linear.in_features, linear.out_features, 0]);
                vec![self.dispatch(
                    &self.kernels.linear,
                    &params,
                    &[input(0), weight, bias, output],
                    flat_groups(values, 64, &step.name)?,
                )]
            }
            (StepOp::Zeros, _) => vec![Command::Clear { buffer: output.clone(), bytes: bytes_of(values) }],
            (op, _) => unreachable!("weights are uploaded for every {op:?}"),
        })
    }

    /// Allocates the buffers of `plan` at `batch` and records a run.
    pub(super) fn arena(
        &self,
        plan: &Plan,
        weights: &[StepWeights],
        batch: usize,
    ) -> Result<Arena, GpuError> {
        use wgpu::BufferUsages as U;
        let input_values = batch * plan.input.numel() as usize;
        let input = self.buffer("input", bytes_of(input_values), U::COPY_DST)?;
        let slots = plan
            .slots
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                self.buffer(&format!("slot {i}"), bytes_of(len * batch), U::COPY_SRC | U::COPY_DST)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let packed = self.buffer("packed input", packed_bytes(plan) * batch as u64, U::COPY_SRC)?;
        let readback = self.context.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("logits"),
            size: bytes_of(batch * plan.classes),
            usage: U::MAP_READ | U::COPY_DST,
            mapped_at_creation: false,
        });
        let shape = plan.input;
        let pixels = shape.height * shape.width;
        let mut commands = vec![self.dispatch(
            &self.kernels.to_nhwc,
            &u32s(&[input_values, shape.channels, pixels, 0]),
            &[&input, &slots[plan.input_slot]],
            flat_groups(input_values, 256, "the input")?,
        )];
        let mut step_commands = Vec::with_capacity(plan.steps.len());
        for (step, weights) in plan.steps.iter().zip(weights) {
            let first = commands.len();
            commands.extend(self.step(step, weights, &slots, &packed, batch)?);
            step_commands.push(first..commands.len());
        }
        Ok(Arena { batch, input, slots, packed, readback, commands, step_commands })
    }
}

/// Per-sample bytes of the largest packed binary conv input.
pub(super) fn packed_bytes(plan: &Plan) -> u64 {
    plan.steps
        .iter()
        .filter_map(|s| match &s.op {
            StepOp::BinaryConv(conv) => {
                Some(conv.window.input_pixels() * words_for(conv.window.in_channels) * 8)
            }
            _ => None,
        })
        .max()
        .unwrap_or(0) as u64
}

/// The geometry words shared by the conv kernels' parameters.
fn geometry(w: &Window, rows: usize) -> Vec<usize> {
    vec![
        rows,
        w.input.0,
        w.input.1,
        w.output.0,
        w.output.1,
        w.kernel,
        w.stride,
        w.padding,
        w.dilation,
        w.in_channels,
    ]
}

/// Kernel parameters as u32 (buffer sizes are checked against the binding limit first, so
/// every count fits).
fn u32s(values: &[usize]) -> Vec<u32> {
    values.iter().map(|&v| v as u32).collect()
}
