//! Profiling aid: runs the chain100 forward+backward many times.
use eingrad::{DType, Tensor};

fn main() {
    let x = Tensor::randn(&[10], DType::F32, 0).requires_grad_(true);
    for _ in 0..20000 {
        x.zero_grad();
        let mut y = x.clone();
        for _ in 0..25 {
            y = y.mul_scalar(1.01).unwrap();
            y = y.add_scalar(0.1).unwrap();
            y = y.sin().unwrap();
            y = y.tanh().unwrap();
        }
        y.sum_all().unwrap().backward().unwrap();
    }
}
