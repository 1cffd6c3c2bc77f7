//! Choice of the device that tensors and models live on.

use std::fmt;
use std::str::FromStr;

use tch::{Cuda, Device};

use crate::error::{Result, TrainerError};

/// The device to search and train on.
///
/// With the `cuda` feature this is the first CUDA device when libtorch finds one, else the CPU
/// ([`Device::cuda_if_available`]); without it, always [`Device::Cpu`], so that results do not
/// depend on the machine a test happens to run on.
pub fn select_device() -> Device {
    if cfg!(feature = "cuda") {
        Device::cuda_if_available()
    } else {
        Device::Cpu
    }
}

/// The `--device` flag: `cpu`, `cuda` or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// Always the CPU (the default, as for the runtime's `--device`).
    #[default]
    Cpu,
    /// The first CUDA device; an error when libtorch sees none.
    Cuda,
    /// A CUDA device when libtorch sees one, else the CPU.
    Auto,
}

impl DeviceChoice {
    /// The libtorch device this choice means on this machine.
    pub fn resolve(self) -> Result<Device> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Auto => Ok(Device::cuda_if_available()),
            DeviceChoice::Cuda if Cuda::is_available() => Ok(Device::Cuda(0)),
            DeviceChoice::Cuda => Err(TrainerError::CudaUnavailable {
                reason: if cfg!(feature = "cuda") {
                    "libtorch sees no CUDA device (check the driver and that libtorch_cuda.so is loaded)"
                        .to_owned()
                } else {
                    "this build has no CUDA support; rebuild with `--features cuda` against a CUDA libtorch"
                        .to_owned()
                },
            }),
        }
    }
}

impl FromStr for DeviceChoice {
    type Err = TrainerError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda),
            "auto" => Ok(DeviceChoice::Auto),
            other => Err(TrainerError::InvalidSetting {
                field: "--device",
                reason: format!("{other:?} is not one of cpu, cuda, auto"),
            }),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Cuda => "cuda",
            DeviceChoice::Auto => "auto",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cpu_without_cuda_feature() {
        assert_eq!(select_device(), Device::Cpu);
    }

    #[test]
    fn parses_the_three_choices_and_refuses_others() {
        assert_eq!("cpu".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!("cuda".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda);
        assert_eq!("auto".parse::<DeviceChoice>().unwrap(), DeviceChoice::Auto);
        let err = "gpu".parse::<DeviceChoice>().unwrap_err().to_string();
        assert!(err.contains("\"gpu\" is not one of cpu, cuda, auto"), "{err}");
        assert_eq!(DeviceChoice::Cpu.resolve().unwrap(), Device::Cpu);
    }
}
