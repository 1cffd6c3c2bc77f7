//! libtorch links, loads and computes: a 2x2 matrix product on the selected device, checked
//! against values worked out by hand.

use bnas_trainer::select_device;
use tch::{Kind, Tensor};

#[test]
fn matmul_2x2_matches_hand_computation() {
    let device = select_device();
    let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).reshape([2, 2]).to_device(device);
    let b = Tensor::from_slice(&[5.0f32, 6.0, 7.0, 8.0]).reshape([2, 2]).to_device(device);

    let c = a.matmul(&b);
    assert_eq!(c.device(), device);
    assert_eq!(c.kind(), Kind::Float);
    assert_eq!(c.size(), [2, 2]);

    // [1 2] [5 6]   [1*5+2*7 1*6+2*8]   [19 22]
    // [3 4] [7 8] = [3*5+4*7 3*6+4*8] = [43 50]
    let got = Vec::<f32>::try_from(c.to_device(tch::Device::Cpu).flatten(0, -1)).unwrap();
    assert_eq!(got, [19.0, 22.0, 43.0, 50.0]);
}

#[test]
fn autograd_gradient_of_sum_of_squares() {
    // d/dx sum(x^2) = 2x: the training side depends on autograd, so check it runs too.
    let x = Tensor::from_slice(&[1.0f32, -2.0, 3.0]).to_device(select_device()).set_requires_grad(true);
    let y = (&x * &x).sum(Kind::Float);
    y.backward();
    let grad = Vec::<f32>::try_from(x.grad().to_device(tch::Device::Cpu)).unwrap();
    assert_eq!(grad, [2.0, -4.0, 6.0]);
}
