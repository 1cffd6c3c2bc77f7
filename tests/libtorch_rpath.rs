//! Root test binaries link libtorch and start without LD_LIBRARY_PATH: the shared build script
//! (`build/libtorch_rpath.rs`) gives this package, not only the trainer, libtorch's run path.

use tch::{Kind, Tensor};

#[test]
fn root_tests_load_libtorch() {
    let sum = Tensor::from_slice(&[1.5f32, 2.0, -0.5]).sum(Kind::Float);
    assert_eq!(f32::try_from(sum).unwrap(), 3.0);
}
