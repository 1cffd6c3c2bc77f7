//! The GPU backend: runs the same [`Plan`] as the CPU backend with WGSL compute kernels through
//! wgpu (Vulkan, Metal, DX12; lavapipe on machines without a GPU). Weights are uploaded once
//! per model; each batch size gets its buffers and recorded commands once; a run writes the
//! input, submits every step in one command buffer and reads the logits back. Binary convs
//! give the CPU's integers exactly; float layers agree within rounding.

mod arena;
mod context;
mod kernels;
mod weights;

use std::time::Instant;

use self::arena::{encode, packed_bytes, Arena, Command, Recorder};
use self::context::Context;
use self::kernels::Kernels;
use self::weights::StepWeights;
use crate::arena_cache::{ArenaCache, KEPT_ARENAS};
use crate::device::{GpuAdapter, GpuError};
use crate::plan::{Plan, StepOp};
use crate::trace::Observer;

/// A model's weights and kernels on one device.
#[derive(Debug)]
pub(crate) struct GpuModel {
    context: Context,
    kernels: Kernels,
    weights: Vec<StepWeights>,
    dummy: wgpu::Buffer,
    /// The largest batch whose buffers fit the adapter's binding limit.
    max_batch: usize,
    arenas: ArenaCache<Arena>,
}

impl GpuModel {
    /// Opens an adapter (see [`crate::Device`]) and uploads the plan's weights.
    pub(crate) fn new(plan: &Plan, hardware_only: bool) -> Result<GpuModel, GpuError> {
        let context = Context::open(hardware_only)?;
        let per_sample = plan
            .slots
            .iter()
            .map(|&len| len as u64 * 4)
            .chain([packed_bytes(plan), plan.input.numel() * 4])
            .max()
            .unwrap_or(4)
            .max(4);
        let limit = context.max_binding();
        if per_sample > limit {
            return Err(GpuError::TooLarge {
                what: "one sample's activations".into(),
                bytes: per_sample,
                limit,
            });
        }
        let (kernels, weights, dummy) = context.checked("uploading the model", || {
            let kernels = Kernels::new(&context.device);
            let weights = StepWeights::upload(&context, plan)?;
            let dummy = weights::storage(&context, "unused input", &[0f32])?;
            Ok::<_, GpuError>((kernels, weights, dummy))
        })??;
        let max_batch = (limit / per_sample) as usize;
        Ok(GpuModel { context, kernels, weights, dummy, max_batch, arenas: ArenaCache::new(KEPT_ARENAS) })
    }

    /// The adapter it runs on.
    pub(crate) fn adapter(&self) -> &GpuAdapter {
        &self.context.adapter
    }

    fn recorder(&self) -> Recorder<'_> {
        Recorder { context: &self.context, kernels: &self.kernels, dummy: &self.dummy }
    }

    /// Runs `batch` NCHW samples; returns the logits. Batches beyond the adapter's buffer
    /// limit run in chunks.
    pub(crate) fn run(
        &self,
        plan: &Plan,
        input: &[f32],
        batch: usize,
        mut observer: Option<&mut dyn Observer>,
    ) -> Result<Vec<f32>, GpuError> {
        let per_sample = input.len() / batch;
        let mut logits = Vec::with_capacity(batch * plan.classes);
        for chunk in input.chunks(self.max_batch * per_sample) {
            let batch = chunk.len() / per_sample;
            let arena = self.arenas.take(batch, || {
                self.context
                    .checked("allocating activations", || self.recorder().arena(plan, &self.weights, batch))?
            })?;
            let result = match observer.as_deref_mut() {
                Some(observer) => self.run_observed(plan, &arena, chunk, observer),
                None => self.run_once(plan, &arena, chunk),
            };
            self.arenas.keep(arena);
            logits.extend(result?);
        }
        Ok(logits)
    }

    fn run_once(&self, plan: &Plan, arena: &Arena, input: &[f32]) -> Result<Vec<f32>, GpuError> {
        self.context.checked("running the model", || {
            self.context.queue.write_buffer(&arena.input, 0, bytemuck::cast_slice(input));
            let mut encoder = self.context.device.create_command_encoder(&Default::default());
            encode(&mut encoder, &arena.commands);
            let logits = &arena.slots[plan.output_slot];
            encoder.copy_buffer_to_buffer(logits, 0, &arena.readback, 0, arena.readback.size());
            self.context.queue.submit([encoder.finish()]);
        })?;
        let bytes = self.read(&arena.readback, arena.readback.size())?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Step by step, each submitted and waited for on its own, reading every output back.
    fn run_observed(
        &self,
        plan: &Plan,
        arena: &Arena,
        input: &[f32],
        observer: &mut dyn Observer,
    ) -> Result<Vec<f32>, GpuError> {
        let recorder = self.recorder();
        let first_step = arena.step_commands.first().map_or(arena.commands.len(), |r| r.start);
        self.context.checked("writing the input", || {
            self.context.queue.write_buffer(&arena.input, 0, bytemuck::cast_slice(input));
        })?;
        self.submit("the input", &arena.commands[..first_step], |_| ())?;
        for ((step, range), weights) in plan.steps.iter().zip(&arena.step_commands).zip(&self.weights) {
            let started = Instant::now();
            self.submit(&step.name, &arena.commands[range.clone()], |_| ())?;
            let elapsed = started.elapsed();
            let values = arena.batch * step.shape.numel() as usize;
            let output: Vec<f32> =
                bytemuck::pod_collect_to_vec(&self.copy_out(&arena.slots[step.output], values as u64 * 4)?);
            if let (StepOp::BinaryConv(conv), true) = (&step.op, observer.wants_binary_detail()) {
                let StepWeights::BinaryConv { filters, alpha, .. } = weights else {
                    unreachable!("binary convs have binary weights")
                };
                let integer =
                    recorder.buffer("integer outputs", values as u64 * 4, wgpu::BufferUsages::COPY_SRC)?;
                let command =
                    recorder.binary_conv(conv, filters, alpha, &arena.packed, &integer, arena.batch, true)?;
                self.submit(&step.name, std::slice::from_ref(&command), |_| ())?;
                let words = arena.batch
                    * conv.window.input_pixels()
                    * crate::bit_layout::words_for(conv.window.in_channels);
                let packed: Vec<u64> =
                    bytemuck::pod_collect_to_vec(&self.copy_out(&arena.packed, words as u64 * 8)?);
                let integer: Vec<i32> =
                    bytemuck::pod_collect_to_vec(&self.copy_out(&integer, values as u64 * 4)?);
                observer.binary_conv(step, &packed, integer);
            }
            observer.step_done(step, &output, elapsed);
        }
        let bytes = self.copy_out(&arena.slots[plan.output_slot], arena.readback.size())?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Encodes, submits and waits for `commands`.
    fn submit(
        &self,
        what: &str,
        commands: &[Command],
        extra: impl FnOnce(&mut wgpu::CommandEncoder),
    ) -> Result<(), GpuError> {
        self.context.checked(&format!("running {what}"), || {
            let mut encoder = self.context.device.create_command_encoder(&Default::default());
            encode(&mut encoder, commands);
            extra(&mut encoder);
            self.context.queue.submit([encoder.finish()]);
        })?;
        self.context.wait(what)
    }

    /// The first `bytes` of a storage buffer, through a mapped copy.
    fn copy_out(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>, GpuError> {
        let staging = self.context.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.submit("a readback", &[], |encoder| {
            encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes)
        })?;
        self.read(&staging, bytes)
    }

    /// Maps a `MAP_READ` buffer and copies out its first `bytes`.
    fn read(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>, GpuError> {
        let failed = |message: String| GpuError::Wgpu { during: "reading results back".into(), message };
        let slice = buffer.slice(..bytes);
        let (sender, receiver) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |result| {
            // The receiver waits below; a send can only fail if it is gone.
            let _ = sender.send(result);
        });
        self.context.wait("reading results back")?;
        receiver.recv().map_err(|e| failed(e.to_string()))?.map_err(|e| failed(e.to_string()))?;
        let data = slice.get_mapped_range().map_err(|e| failed(e.to_string()))?.to_vec();
        buffer.unmap();
        Ok(data)
    }
}
