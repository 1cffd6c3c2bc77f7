//! The WGSL compute kernels, compiled once per device, and the workgroup counts of a dispatch.

use crate::device::GpuError;

/// Included before every kernel.
const COMMON: &str = include_str!("shaders/common.wgsl");

/// Workgroups per dimension that every adapter accepts.
const MAX_GROUPS: u32 = 65_535;

/// One compute pipeline per kernel.
#[derive(Debug)]
pub(super) struct Kernels {
    pub(super) to_nhwc: wgpu::ComputePipeline,
    pub(super) pack: wgpu::ComputePipeline,
    pub(super) binary_conv: wgpu::ComputePipeline,
    pub(super) float_conv: wgpu::ComputePipeline,
    pub(super) pool: wgpu::ComputePipeline,
    pub(super) accumulate: wgpu::ComputePipeline,
    pub(super) concat: wgpu::ComputePipeline,
    pub(super) global_avg_pool: wgpu::ComputePipeline,
    pub(super) linear: wgpu::ComputePipeline,
}

fn pipeline(device: &wgpu::Device, name: &str, source: &str) -> wgpu::ComputePipeline {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(format!("{COMMON}\n{source}").into()),
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(name),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    })
}

impl Kernels {
    /// Compiles every kernel (errors surface through the caller's error scope).
    pub(super) fn new(device: &wgpu::Device) -> Kernels {
        Kernels {
            to_nhwc: pipeline(device, "to_nhwc", include_str!("shaders/to_nhwc.wgsl")),
            pack: pipeline(device, "pack", include_str!("shaders/pack.wgsl")),
            binary_conv: pipeline(device, "binary_conv", include_str!("shaders/binary_conv.wgsl")),
            float_conv: pipeline(device, "float_conv", include_str!("shaders/float_conv.wgsl")),
            pool: pipeline(device, "pool", include_str!("shaders/pool.wgsl")),
            accumulate: pipeline(device, "accumulate", include_str!("shaders/accumulate.wgsl")),
            concat: pipeline(device, "concat", include_str!("shaders/concat.wgsl")),
            global_avg_pool: pipeline(
                device,
                "global_avg_pool",
                include_str!("shaders/global_avg_pool.wgsl"),
            ),
            linear: pipeline(device, "linear", include_str!("shaders/linear.wgsl")),
        }
    }
}

/// Workgroups for `total` invocations of a kernel with `size` invocations per group that
/// recovers its index with `flat_index` (x, then y).
pub(super) fn flat_groups(total: usize, size: usize, what: &str) -> Result<[u32; 3], GpuError> {
    let groups = total.div_ceil(size).max(1);
    let x = groups.min(MAX_GROUPS as usize);
    let y = groups.div_ceil(x);
    too_many(y, what)?;
    Ok([x as u32, y as u32, 1])
}

/// Workgroups for `blocks` blocks along x (continued along z, the kernel's `blocks_x`) and
/// `columns` along y.
pub(super) fn block_groups(blocks: usize, columns: usize, what: &str) -> Result<[u32; 3], GpuError> {
    let blocks = blocks.max(1);
    let x = blocks.min(MAX_GROUPS as usize);
    let z = blocks.div_ceil(x);
    too_many(z, what)?;
    too_many(columns, what)?;
    Ok([x as u32, columns as u32, z as u32])
}

fn too_many(groups: usize, what: &str) -> Result<(), GpuError> {
    if groups > MAX_GROUPS as usize {
        return Err(GpuError::TooManyWorkgroups { what: what.to_owned(), groups });
    }
    Ok(())
}
