use eingrad::autograd::{grad, GradOptions};
use eingrad::func::{gradcheck, gradgradcheck, GradcheckOptions};
use eingrad::{DType, Tensor};

#[test]
fn chain_rule_and_second_order() {
    let x = Tensor::randn(&[4], DType::F64, 3).unwrap();
    let f = |xs: &[Tensor]| Ok(vec![xs[0].sin()?.mul(&xs[0].exp()?)?.tanh()?]);
    let r = gradcheck(&f, &[x.clone()], GradcheckOptions::default()).unwrap();
    assert!(r.passed, "{}", r.worst);
    let r = gradgradcheck(&f, &[x], GradcheckOptions::default()).unwrap();
    assert!(r.passed, "{}", r.worst);
}

#[test]
fn deep_chain_does_not_overflow() {
    let x = Tensor::ones(&[3], DType::F32).unwrap().requires_grad_(true);
    let mut y = x.clone();
    for _ in 0..100_000 {
        y = y.mul_scalar(1.0).unwrap();
    }
    y.sum_all().unwrap().backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec::<f32>().unwrap(), vec![1.0; 3]);
    drop(y);
}

#[test]
fn freed_graph_errors() {
    let x = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    let y = x.exp().unwrap().sum_all().unwrap();
    y.backward().unwrap();
    let e = y.backward().unwrap_err().to_string();
    assert!(e.contains("second time"), "{e}");
    let _ = grad(&[y], &[x], None, GradOptions::default());
}
