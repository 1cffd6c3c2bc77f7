//! Choice of the device that tensors and models live on.

use tch::Device;

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

#[cfg(all(test, not(feature = "cuda")))]
mod tests {
    use super::*;

    #[test]
    fn cpu_without_cuda_feature() {
        assert_eq!(select_device(), Device::Cpu);
    }
}
