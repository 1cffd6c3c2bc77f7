//! Where a model runs: the CPU kernels, or the wgpu GPU backend (the `gpu` cargo feature). The
//! runtime's `gpu` device means wgpu (Vulkan, Metal, DX12); the trainer's `cuda` device means
//! libtorch.

use std::fmt;

/// The device a model is asked to run on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Device {
    /// The SIMD CPU kernels.
    #[default]
    Cpu,
    /// A wgpu adapter, software ones (lavapipe, "llvmpipe") included; an error when there is
    /// none.
    Gpu,
    /// A hardware wgpu adapter when there is one, else the CPU (a software adapter is slower
    /// than the CPU kernels).
    Auto,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Device::Cpu => "cpu",
            Device::Gpu => "gpu",
            Device::Auto => "auto",
        })
    }
}

/// What a loaded model runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The CPU kernels, with their instruction set.
    Cpu(crate::kernels::Isa),
    /// A wgpu adapter.
    Gpu(GpuAdapter),
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Cpu(isa) => write!(f, "cpu ({isa})"),
            Backend::Gpu(adapter) => write!(f, "gpu ({adapter})"),
        }
    }
}

/// The wgpu adapter a model runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuAdapter {
    /// Adapter name, e.g. "NVIDIA H100" or "llvmpipe (LLVM 19.1.7, 256 bits)".
    pub name: String,
    /// Graphics API: Vulkan, Metal or Dx12.
    pub api: String,
    /// Discrete, integrated, virtual, software ("Cpu") or other.
    pub kind: String,
    /// Driver name and version, as reported.
    pub driver: String,
}

impl fmt::Display for GpuAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {}, {}", self.name, self.api, self.kind)
    }
}

/// Why the GPU backend cannot run a model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// This build has no GPU backend.
    #[error("this build has no GPU backend (rebuild bnas-runtime with the `gpu` feature)")]
    NotBuilt,
    /// No usable adapter.
    #[error("no {} wgpu adapter with compute shaders was found (install a Vulkan driver; on Linux without a GPU, mesa-vulkan-drivers provides lavapipe)", if *.hardware_only { "hardware" } else { "usable" })]
    NoAdapter {
        /// Whether software adapters were excluded.
        hardware_only: bool,
    },
    /// The adapter refused to open a device.
    #[error("the GPU adapter `{adapter}` could not open a device: {message}")]
    Device {
        /// Adapter name.
        adapter: String,
        /// The driver's reason.
        message: String,
    },
    /// A buffer beyond the adapter's limits.
    #[error("{what} needs {bytes} bytes, over the adapter's {limit}-byte buffer limit")]
    TooLarge {
        /// Which buffer.
        what: String,
        /// Bytes needed.
        bytes: u64,
        /// The adapter's limit.
        limit: u64,
    },
    /// A dispatch beyond the 65535 workgroups per dimension every adapter accepts.
    #[error("{what} needs {groups} workgroups in one dimension, over the 65535 limit")]
    TooManyWorkgroups {
        /// Which dispatch.
        what: String,
        /// Workgroups needed.
        groups: usize,
    },
    /// wgpu reported an error while building or running the model.
    #[error("GPU error while {during}: {message}")]
    Wgpu {
        /// What was being done.
        during: String,
        /// wgpu's message.
        message: String,
    },
}
