//! Opening a wgpu device: choose an adapter, request its own limits, and turn wgpu's errors into
//! [`GpuError`]s instead of its default panic.

use std::sync::{Arc, Mutex};

use crate::device::{GpuAdapter, GpuError};

/// An open device with its queue.
#[derive(Debug)]
pub(super) struct Context {
    pub(super) device: wgpu::Device,
    pub(super) queue: wgpu::Queue,
    pub(super) adapter: GpuAdapter,
    pub(super) limits: wgpu::Limits,
    /// The last error wgpu reported outside an error scope.
    uncaptured: Arc<Mutex<Option<String>>>,
}

/// Preference order of adapter kinds: real GPUs first, software last.
fn rank(kind: wgpu::DeviceType) -> u8 {
    match kind {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

impl Context {
    /// Opens the best adapter with compute shaders; with `hardware_only`, software adapters
    /// (lavapipe) do not count. `WGPU_BACKEND` and `WGPU_ADAPTER_NAME` narrow the choice.
    pub(super) fn open(hardware_only: bool) -> Result<Context, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let wanted_name = std::env::var("WGPU_ADAPTER_NAME").ok().map(|n| n.to_lowercase());
        let adapter = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
            .into_iter()
            .filter(|a| a.get_downlevel_capabilities().flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS))
            .filter(|a| !hardware_only || a.get_info().device_type != wgpu::DeviceType::Cpu)
            .filter(|a| wanted_name.as_ref().is_none_or(|n| a.get_info().name.to_lowercase().contains(n)))
            .min_by_key(|a| rank(a.get_info().device_type))
            .ok_or(GpuError::NoAdapter { hardware_only })?;
        let info = adapter.get_info();
        let described = GpuAdapter {
            name: info.name.clone(),
            api: format!("{:?}", info.backend),
            kind: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_owned(),
        };
        let limits = adapter.limits();
        let descriptor = wgpu::DeviceDescriptor {
            label: Some("bnas"),
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&descriptor))
            .map_err(|e| GpuError::Device { adapter: described.name.clone(), message: e.to_string() })?;
        let uncaptured = Arc::new(Mutex::new(None));
        let sink = Arc::clone(&uncaptured);
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            *sink.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
        }));
        Ok(Context { device, queue, adapter: described, limits, uncaptured })
    }

    /// Runs `work` inside validation and out-of-memory error scopes and reports the first
    /// error wgpu raised, naming `during`.
    pub(super) fn checked<T>(&self, during: &str, work: impl FnOnce() -> T) -> Result<T, GpuError> {
        let memory = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let result = work();
        let errors = [pollster::block_on(validation.pop()), pollster::block_on(memory.pop())];
        let uncaptured = self.uncaptured.lock().unwrap_or_else(|p| p.into_inner()).take();
        match errors.into_iter().flatten().map(|e| e.to_string()).next().or(uncaptured) {
            Some(message) => Err(GpuError::Wgpu { during: during.to_owned(), message }),
            None => Ok(result),
        }
    }

    /// The largest buffer a shader may bind, in bytes.
    pub(super) fn max_binding(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size)
    }

    /// Blocks until the queue is idle.
    pub(super) fn wait(&self, during: &str) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(drop)
            .map_err(|e| GpuError::Wgpu { during: during.to_owned(), message: e.to_string() })
    }
}
