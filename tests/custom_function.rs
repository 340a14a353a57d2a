//! Custom autograd functions (`CustomFunction` + `apply_function`), PyTorch's
//! `torch.autograd.Function`.

use std::sync::{Arc, Mutex};

use eingrad::autograd::{
    apply_function, apply_function1, grad, is_grad_enabled, CustomFunction, FunctionCtx,
    GradOptions,
};
use eingrad::func::{gradcheck, gradgradcheck, GradcheckOptions};
use eingrad::{DType, Error, Result, Tensor};

fn vals(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64()
}

fn assert_close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "entry {i}: {x} vs {y}"
        );
    }
}

fn g1(outs: &[Tensor], inputs: &[Tensor], gout: Option<&[Tensor]>) -> Vec<Option<Tensor>> {
    grad(outs, inputs, gout, GradOptions::default()).unwrap()
}

/// eˣ saving its output; backward g·y.
struct MyExp;
impl CustomFunction for MyExp {
    fn name(&self) -> &str {
        "my_exp"
    }
    fn forward(&self, ctx: &mut FunctionCtx, x: &[Tensor]) -> Result<Vec<Tensor>> {
        assert!(!is_grad_enabled(), "forward must run under no-grad");
        let y = x[0].exp()?;
        ctx.save_for_backward(&[y.clone()]);
        Ok(vec![y])
    }
    fn backward(&self, ctx: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g[0].mul(&ctx.saved_tensors()[0])?)])
    }
}

#[test]
fn custom_exp_matches_builtin_exp() {
    let x = Tensor::randn(&[3, 4], DType::F64, 1)
        .unwrap()
        .requires_grad_(true);
    let w = Tensor::randn(&[3, 4], DType::F64, 2).unwrap();
    let y_custom = apply_function1(MyExp, &[&x]).unwrap();
    let y_builtin = x.exp().unwrap();
    assert_close(&vals(&y_custom), &vals(&y_builtin), 0.0);
    assert_eq!(y_custom.grad_fn().unwrap().node.name(), "my_exp");
    let l1 = y_custom.mul(&w).unwrap().tanh().unwrap().sum_all().unwrap();
    let l2 = y_builtin
        .mul(&w)
        .unwrap()
        .tanh()
        .unwrap()
        .sum_all()
        .unwrap();
    let a = g1(&[l1], &[x.clone()], None)[0].clone().unwrap();
    let b = g1(&[l2], &[x.clone()], None)[0].clone().unwrap();
    assert_close(&vals(&a), &vals(&b), 1e-14);
    // .backward() into .grad() works the same way.
    let l = apply_function1(MyExp, &[&x]).unwrap().sum_all().unwrap();
    l.backward().unwrap();
    assert_close(&vals(&x.grad().unwrap()), &vals(&x.exp().unwrap()), 1e-15);
}

#[test]
fn custom_exp_second_order_through_saved_output() {
    // The saved output comes back with history under create_graph, so d²/dx² eˣ = eˣ.
    let x = Tensor::randn(&[5], DType::F64, 3)
        .unwrap()
        .requires_grad_(true);
    let y = apply_function1(MyExp, &[&x]).unwrap().sum_all().unwrap();
    let opts = GradOptions::default().create_graph(true);
    let g = grad(&[y], &[x.clone()], None, opts).unwrap()[0]
        .clone()
        .unwrap();
    assert!(g.requires_grad());
    let gg = g1(&[g.sum_all().unwrap()], &[x.clone()], None)[0]
        .clone()
        .unwrap();
    let e = no_grad_exp(&x);
    assert_close(&vals(&gg), &e, 1e-14);
    let r = gradgradcheck(
        &|xs: &[Tensor]| Ok(vec![apply_function1(MyExp, &[&xs[0]])?]),
        &[x.detach()],
        GradcheckOptions::default(),
    )
    .unwrap();
    assert!(r.passed, "{}", r.worst);
}

fn no_grad_exp(x: &Tensor) -> Vec<f64> {
    vals(x).iter().map(|v| v.exp()).collect()
}

/// x³ with backward 3x²·g, written in tensor ops (so it is differentiable).
struct Cube;
impl CustomFunction for Cube {
    fn name(&self) -> &str {
        "cube"
    }
    fn forward(&self, ctx: &mut FunctionCtx, x: &[Tensor]) -> Result<Vec<Tensor>> {
        ctx.save_for_backward(&[x[0].clone()]);
        x[0].mul(&x[0])?.mul(&x[0]).map(|y| vec![y])
    }
    fn backward(&self, ctx: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
        let x = &ctx.saved_tensors()[0];
        Ok(vec![Some(g[0].mul(&x.mul(x)?.mul_scalar(3.0)?)?)])
    }
}

#[test]
fn backward_is_differentiable_cube() {
    let x = Tensor::from_vec(vec![-1.5f64, 0.5, 2.0], &[3])
        .unwrap()
        .requires_grad_(true);
    let y = apply_function1(Cube, &[&x]).unwrap().sum_all().unwrap();
    let opts = GradOptions::default().create_graph(true);
    let g = grad(&[y], &[x.clone()], None, opts).unwrap()[0]
        .clone()
        .unwrap();
    assert_close(&vals(&g), &[6.75, 0.75, 12.0], 1e-15);
    let gg = g1(&[g.sum_all().unwrap()], &[x.clone()], None)[0]
        .clone()
        .unwrap();
    assert_close(&vals(&gg), &[-9.0, 3.0, 12.0], 1e-15);
    let f = |xs: &[Tensor]| Ok(vec![apply_function1(Cube, &[&xs[0]])?]);
    let x0 = Tensor::randn(&[4], DType::F64, 9).unwrap();
    let r = gradcheck(&f, &[x0.clone()], GradcheckOptions::default()).unwrap();
    assert!(r.passed, "{}", r.worst);
    let r = gradgradcheck(&f, &[x0], GradcheckOptions::default()).unwrap();
    assert!(r.passed, "{}", r.worst);
}

#[test]
fn backward_runs_with_grad_only_under_create_graph() {
    struct Probe(Arc<Mutex<Vec<bool>>>);
    impl CustomFunction for Probe {
        fn name(&self) -> &str {
            "probe"
        }
        fn forward(&self, _: &mut FunctionCtx, x: &[Tensor]) -> Result<Vec<Tensor>> {
            self.0.lock().unwrap().push(is_grad_enabled());
            Ok(vec![x[0].mul_scalar(2.0)?])
        }
        fn backward(&self, _: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
            self.0.lock().unwrap().push(is_grad_enabled());
            Ok(vec![Some(g[0].mul_scalar(2.0)?)])
        }
    }
    let log = Arc::new(Mutex::new(Vec::new()));
    let x = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    let y = apply_function1(Probe(log.clone()), &[&x])
        .unwrap()
        .sum_all()
        .unwrap();
    let g = grad(
        &[y.clone()],
        &[x.clone()],
        None,
        GradOptions::default().retain_graph(true),
    )
    .unwrap();
    assert!(!g[0].as_ref().unwrap().requires_grad());
    let opts = GradOptions::default().create_graph(true);
    // (The rule's result depends only on the constant seed, so it carries no history.)
    grad(&[y], &[x], None, opts).unwrap();
    assert_eq!(*log.lock().unwrap(), vec![false, false, true]);
}

/// (x + y, x · y).
struct SumProd(Arc<Mutex<Vec<Vec<f64>>>>);
impl CustomFunction for SumProd {
    fn name(&self) -> &str {
        "sum_prod"
    }
    fn forward(&self, ctx: &mut FunctionCtx, xs: &[Tensor]) -> Result<Vec<Tensor>> {
        ctx.save_for_backward(xs);
        Ok(vec![xs[0].add(&xs[1])?, xs[0].mul(&xs[1])?])
    }
    fn backward(&self, ctx: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
        assert_eq!(g.len(), 2, "one gradient per output");
        self.0.lock().unwrap().push(vals(&g[0]));
        let (x, y) = (&ctx.saved_tensors()[0], &ctx.saved_tensors()[1]);
        let gx = g[0].add(&g[1].mul(y)?)?;
        let gy = g[0].add(&g[1].mul(x)?)?;
        Ok(vec![Some(gx), Some(gy)])
    }
}

#[test]
fn multi_output_with_one_output_used() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let x = Tensor::randn(&[2, 3], DType::F64, 4)
        .unwrap()
        .requires_grad_(true);
    let y = Tensor::randn(&[2, 3], DType::F64, 5)
        .unwrap()
        .requires_grad_(true);
    let outs = apply_function(SumProd(seen.clone()), &[&x, &y]).unwrap();
    assert_eq!(outs.len(), 2);
    assert_close(&vals(&outs[0]), &vals(&x.add(&y).unwrap()), 0.0);
    assert_close(&vals(&outs[1]), &vals(&x.mul(&y).unwrap()), 0.0);
    // Both outputs share one node.
    let (n0, n1) = (outs[0].grad_fn().unwrap(), outs[1].grad_fn().unwrap());
    assert!(Arc::ptr_eq(&n0.node, &n1.node));
    assert_eq!((n0.output, n1.output), (0, 1));
    // Only the product is used: the sum's gradient arrives as zeros.
    let u = Tensor::randn(&[2, 3], DType::F64, 6).unwrap();
    let l = outs[1].mul(&u).unwrap().sum_all().unwrap();
    let keep = GradOptions::default().retain_graph(true);
    let g = grad(&[l], &[x.clone(), y.clone()], None, keep).unwrap();
    assert_close(
        &vals(g[0].as_ref().unwrap()),
        &vals(&y.mul(&u).unwrap()),
        1e-15,
    );
    assert_close(
        &vals(g[1].as_ref().unwrap()),
        &vals(&x.mul(&u).unwrap()),
        1e-15,
    );
    assert_eq!(seen.lock().unwrap()[0], vec![0.0; 6]);
    // Both used.
    let l = outs[0]
        .sum_all()
        .unwrap()
        .add(&outs[1].sum_all().unwrap())
        .unwrap();
    let g = g1(&[l], &[x.clone()], None);
    assert_close(
        &vals(g[0].as_ref().unwrap()),
        &vals(&y.add_scalar(1.0).unwrap()),
        1e-15,
    );
    // Second order across outputs: d/dx of <d(x·y)/dy, 1> = 1.
    let f = |xs: &[Tensor]| {
        apply_function(SumProd(Arc::new(Mutex::new(Vec::new()))), &[&xs[0], &xs[1]])
    };
    let r = gradgradcheck(&f, &[x.detach(), y.detach()], GradcheckOptions::default()).unwrap();
    assert!(r.passed, "{}", r.worst);
}

/// Records `needs_input_grad` in forward and backward.
struct NeedsProbe(Arc<Mutex<Vec<Vec<bool>>>>);
impl CustomFunction for NeedsProbe {
    fn name(&self) -> &str {
        "needs_probe"
    }
    fn forward(&self, ctx: &mut FunctionCtx, xs: &[Tensor]) -> Result<Vec<Tensor>> {
        self.0
            .lock()
            .unwrap()
            .push(ctx.needs_input_grads().to_vec());
        assert!(!ctx.needs_input_grad(99));
        Ok(vec![xs[0].add(&xs[1])?.add(&xs[2])?])
    }
    fn backward(&self, ctx: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
        let n: Vec<bool> = (0..3).map(|i| ctx.needs_input_grad(i)).collect();
        self.0.lock().unwrap().push(n.clone());
        Ok(n.iter().map(|&b| b.then(|| g[0].clone())).collect())
    }
}

#[test]
fn needs_input_grad_is_correct() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let a = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    let b = Tensor::ones(&[2], DType::F64).unwrap();
    let c = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    let y = apply_function1(NeedsProbe(log.clone()), &[&a, &b, &c])
        .unwrap()
        .sum_all()
        .unwrap();
    // A pass that wants only `a` narrows needs_input_grad further.
    let g = grad(
        &[y.clone()],
        &[a.clone()],
        None,
        GradOptions::default().retain_graph(true),
    )
    .unwrap();
    assert_eq!(vals(g[0].as_ref().unwrap()), vec![1.0, 1.0]);
    y.backward().unwrap();
    assert_eq!(vals(&c.grad().unwrap()), vec![1.0, 1.0]);
    assert!(b.grad().is_none());
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            vec![true, false, true],
            vec![true, false, false],
            vec![true, false, true]
        ]
    );
    // Under no_grad nothing needs a gradient and nothing is recorded.
    let log2 = Arc::new(Mutex::new(Vec::new()));
    let y = eingrad::autograd::no_grad(|| apply_function1(NeedsProbe(log2.clone()), &[&a, &b, &c]))
        .unwrap();
    assert!(!y.requires_grad());
    assert_eq!(*log2.lock().unwrap(), vec![vec![false, false, false]]);
}

/// A backward that returns whatever the test asks for.
struct BadBackward {
    kind: &'static str,
}
impl CustomFunction for BadBackward {
    fn name(&self) -> &str {
        "bad_backward"
    }
    fn forward(&self, _: &mut FunctionCtx, xs: &[Tensor]) -> Result<Vec<Tensor>> {
        Ok(vec![xs[0].mul(&xs[1])?.sum_all()?])
    }
    fn backward(&self, _: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
        let ok = Tensor::ones(&[2, 3], DType::F64).unwrap().mul(&g[0])?;
        Ok(match self.kind {
            "shape" => vec![Some(ok), Some(Tensor::ones(&[3, 2], DType::F64).unwrap())],
            "dtype" => vec![Some(ok), Some(Tensor::ones(&[2, 3], DType::F32).unwrap())],
            "few" => vec![Some(ok)],
            "many" => vec![Some(ok.clone()), Some(ok.clone()), Some(ok)],
            _ => vec![Some(ok.clone()), Some(ok)],
        })
    }
}

fn bad_err(kind: &'static str) -> Error {
    let a = Tensor::randn(&[2, 3], DType::F64, 7)
        .unwrap()
        .requires_grad_(true);
    let b = Tensor::randn(&[2, 3], DType::F64, 8)
        .unwrap()
        .requires_grad_(true);
    let y = apply_function1(BadBackward { kind }, &[&a, &b]).unwrap();
    grad(&[y], &[a, b], None, GradOptions::default()).unwrap_err()
}

#[test]
fn wrong_gradient_shape_names_function_and_input() {
    let e = bad_err("shape");
    assert!(matches!(e, Error::Autograd(_)), "{e:?}");
    let m = e.to_string();
    assert!(m.contains("bad_backward"), "{m}");
    assert!(m.contains("input 1"), "{m}");
    assert!(m.contains("[3, 2]") && m.contains("[2, 3]"), "{m}");
    let m = bad_err("dtype").to_string();
    assert!(m.contains("bad_backward") && m.contains("input 1"), "{m}");
    assert!(m.contains("F32") && m.contains("F64"), "{m}");
}

#[test]
fn wrong_gradient_count_names_function() {
    let e = bad_err("few");
    assert!(matches!(e, Error::Autograd(_)), "{e:?}");
    let m = e.to_string();
    assert!(m.contains("bad_backward"), "{m}");
    assert!(
        m.contains("returned 1 gradients") && m.contains("2 inputs"),
        "{m}"
    );
    let m = bad_err("many").to_string();
    assert!(
        m.contains("bad_backward") && m.contains("returned 3"),
        "{m}"
    );
    // The well-behaved variant passes.
    let a = Tensor::randn(&[2, 3], DType::F64, 7)
        .unwrap()
        .requires_grad_(true);
    let b = Tensor::randn(&[2, 3], DType::F64, 8)
        .unwrap()
        .requires_grad_(true);
    let y = apply_function1(BadBackward { kind: "ok" }, &[&a, &b]).unwrap();
    assert!(grad(&[y], &[a, b], None, GradOptions::default()).is_ok());
}

#[test]
fn gradient_for_input_not_needing_one_is_ignored() {
    // A wrong-shaped gradient for an input that does not require grad is dropped, not checked.
    let a = Tensor::randn(&[2, 3], DType::F64, 7)
        .unwrap()
        .requires_grad_(true);
    let b = Tensor::randn(&[2, 3], DType::F64, 8).unwrap();
    let y = apply_function1(BadBackward { kind: "shape" }, &[&a, &b]).unwrap();
    let g = g1(&[y], &[a], None);
    assert_eq!(vals(g[0].as_ref().unwrap()), vec![1.0; 6]);
}

#[test]
fn saved_tensors_and_values() {
    /// a·x + b with a scalar stashed in the context and a usize checked in backward.
    struct Affine;
    impl CustomFunction for Affine {
        fn name(&self) -> &str {
            "affine"
        }
        fn forward(&self, ctx: &mut FunctionCtx, xs: &[Tensor]) -> Result<Vec<Tensor>> {
            ctx.save_for_backward(&[xs[0].clone(), xs[1].clone()]);
            ctx.save_f64("shift", 0.25);
            ctx.save_usize("n", xs[0].numel());
            ctx.save_value("tag", String::from("hello"));
            Ok(vec![xs[0].mul(&xs[1])?.add_scalar(0.25)?])
        }
        fn backward(&self, ctx: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
            let s = ctx.saved_tensors();
            assert_eq!(s.len(), 2);
            assert_eq!(ctx.saved_f64("shift"), Some(0.25));
            assert_eq!(ctx.saved_usize("n"), Some(4));
            assert_eq!(
                ctx.saved_value::<String>("tag").map(|s| s.as_str()),
                Some("hello")
            );
            assert_eq!(ctx.saved_value::<u32>("tag"), None);
            assert_eq!(ctx.saved_f64("missing"), None);
            assert_eq!(ctx.name(), "affine");
            assert_eq!(ctx.num_inputs(), 2);
            assert_eq!(ctx.num_outputs(), 1);
            assert_eq!(ctx.input_shape(1), Some(&[4][..]));
            assert_eq!(ctx.output_shape(0), Some(&[4][..]));
            assert_eq!(ctx.input_dtype(0), Some(DType::F64));
            Ok(vec![Some(g[0].mul(&s[1])?), Some(g[0].mul(&s[0])?)])
        }
    }
    let a = Tensor::randn(&[4], DType::F64, 11)
        .unwrap()
        .requires_grad_(true);
    let x = Tensor::randn(&[4], DType::F64, 12)
        .unwrap()
        .requires_grad_(true);
    let y = apply_function1(Affine, &[&a, &x]).unwrap();
    assert_close(
        &vals(&y),
        &vals(&a.mul(&x).unwrap().add_scalar(0.25).unwrap()),
        0.0,
    );
    let g = g1(&[y.sum_all().unwrap()], &[a.clone(), x.clone()], None);
    assert_close(&vals(g[0].as_ref().unwrap()), &vals(&x), 0.0);
    assert_close(&vals(g[1].as_ref().unwrap()), &vals(&a), 0.0);
    // Saved tensors are freed with the graph: a second pass without retain_graph fails.
    let y = apply_function1(Affine, &[&a, &x])
        .unwrap()
        .sum_all()
        .unwrap();
    y.backward().unwrap();
    let m = y.backward().unwrap_err().to_string();
    assert!(m.contains("second time"), "{m}");
    let y = apply_function1(Affine, &[&a, &x]).unwrap();
    let ones = Tensor::ones(&[4], DType::F64).unwrap();
    y.backward_with(&ones, GradOptions::default()).unwrap();
    let m = y
        .backward_with(&ones, GradOptions::default())
        .unwrap_err()
        .to_string();
    assert!(m.contains("affine") && m.contains("second time"), "{m}");
}

fn round_values(x: &Tensor) -> Result<Tensor> {
    let v: Vec<f64> = vals(x).iter().map(|v| v.round()).collect();
    Tensor::from_f64s(&v, x.dims(), x.dtype())
}

/// Straight-through estimator: forward rounds, backward passes the gradient unchanged.
struct RoundSte;
impl CustomFunction for RoundSte {
    fn name(&self) -> &str {
        "round_ste"
    }
    fn forward(&self, _: &mut FunctionCtx, x: &[Tensor]) -> Result<Vec<Tensor>> {
        Ok(vec![round_values(&x[0])?])
    }
    fn backward(&self, _: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g[0].clone())])
    }
}

#[test]
fn straight_through_estimator() {
    let x = Tensor::from_vec(vec![0.2f64, 1.7, -2.4, 3.5], &[4])
        .unwrap()
        .requires_grad_(true);
    let w = Tensor::from_vec(vec![1.0f64, -2.0, 3.0, 0.5], &[4]).unwrap();
    let q = apply_function1(RoundSte, &[&x]).unwrap();
    assert_eq!(vals(&q), vec![0.0, 2.0, -2.0, 4.0]);
    let l = q.mul(&w).unwrap().sum_all().unwrap();
    l.backward().unwrap();
    assert_eq!(vals(&x.grad().unwrap()), vals(&w));
    // f32 works too.
    let x32 = Tensor::from_vec(vec![0.6f32, -0.4], &[2])
        .unwrap()
        .requires_grad_(true);
    let q = apply_function1(RoundSte, &[&x32]).unwrap();
    assert_eq!(q.dtype(), DType::F32);
    q.sum_all().unwrap().backward().unwrap();
    assert_eq!(x32.grad().unwrap().to_vec::<f32>().unwrap(), vec![1.0, 1.0]);
}

/// Gradient reversal layer (domain-adversarial training): identity forward, −λ·g backward.
struct GradReverse {
    lambda: f64,
}
impl CustomFunction for GradReverse {
    fn name(&self) -> &str {
        "grad_reverse"
    }
    fn forward(&self, ctx: &mut FunctionCtx, x: &[Tensor]) -> Result<Vec<Tensor>> {
        ctx.save_f64("lambda", self.lambda);
        Ok(vec![x[0].clone()])
    }
    fn backward(&self, ctx: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
        let l = ctx.saved_f64("lambda").unwrap_or(1.0);
        Ok(vec![Some(g[0].mul_scalar(-l)?)])
    }
}

#[test]
fn gradient_reversal() {
    let x = Tensor::randn(&[3], DType::F64, 21)
        .unwrap()
        .requires_grad_(true);
    let h = x.tanh().unwrap();
    let r = apply_function1(GradReverse { lambda: 0.5 }, &[&h]).unwrap();
    assert_eq!(vals(&r), vals(&h));
    assert!(r.shares_storage_with(&h));
    let l = r.mul(&r).unwrap().sum_all().unwrap();
    let g = g1(&[l], &[x.clone()], None)[0].clone().unwrap();
    // d/dx Σ tanh(x)² = 2 tanh(x)(1 − tanh²x); reversed and scaled by 0.5.
    let expect: Vec<f64> = vals(&x)
        .iter()
        .map(|v| -0.5 * 2.0 * v.tanh() * (1.0 - v.tanh() * v.tanh()))
        .collect();
    assert_close(&vals(&g), &expect, 1e-14);
    // The input handle keeps its own history; the output got a new node.
    assert_eq!(h.grad_fn().unwrap().node.name(), "tanh");
    assert_eq!(r.grad_fn().unwrap().node.name(), "grad_reverse");
}

#[test]
fn non_differentiable_outputs() {
    /// (2x, argmax one-hot of x) with the mask marked non-differentiable.
    struct WithMask;
    impl CustomFunction for WithMask {
        fn name(&self) -> &str {
            "with_mask"
        }
        fn forward(&self, ctx: &mut FunctionCtx, x: &[Tensor]) -> Result<Vec<Tensor>> {
            let v = vals(&x[0]);
            let k = (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b });
            let mut m = vec![0.0; v.len()];
            m[k] = 1.0;
            let mask = Tensor::from_f64s(&m, x[0].dims(), x[0].dtype())?;
            ctx.mark_non_differentiable(&[&mask]);
            Ok(vec![x[0].mul_scalar(2.0)?, mask])
        }
        fn backward(&self, _: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
            assert_eq!(g.len(), 2);
            assert!(vals(&g[1]).iter().all(|&v| v == 0.0));
            Ok(vec![Some(g[0].mul_scalar(2.0)?)])
        }
    }
    let x = Tensor::from_vec(vec![1.0f64, 5.0, 2.0], &[3])
        .unwrap()
        .requires_grad_(true);
    let outs = apply_function(WithMask, &[&x]).unwrap();
    assert!(outs[0].requires_grad());
    assert!(!outs[1].requires_grad());
    assert_eq!(vals(&outs[1]), vec![0.0, 1.0, 0.0]);
    outs[0].sum_all().unwrap().backward().unwrap();
    assert_eq!(vals(&x.grad().unwrap()), vec![2.0; 3]);

    /// Marks a tensor it does not return.
    struct MarksStranger;
    impl CustomFunction for MarksStranger {
        fn name(&self) -> &str {
            "marks_stranger"
        }
        fn forward(&self, ctx: &mut FunctionCtx, x: &[Tensor]) -> Result<Vec<Tensor>> {
            ctx.mark_non_differentiable(&[&x[0]]);
            Ok(vec![x[0].mul_scalar(2.0)?])
        }
        fn backward(&self, _: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
            Ok(vec![Some(g[0].clone())])
        }
    }
    let m = apply_function(MarksStranger, &[&x])
        .unwrap_err()
        .to_string();
    assert!(m.contains("marks_stranger"), "{m}");
}

#[test]
fn forward_errors_and_empty_outputs() {
    struct Fails;
    impl CustomFunction for Fails {
        fn name(&self) -> &str {
            "fails"
        }
        fn forward(&self, _: &mut FunctionCtx, x: &[Tensor]) -> Result<Vec<Tensor>> {
            Ok(vec![x[0].add(&x[1])?])
        }
        fn backward(&self, _: &FunctionCtx, _: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
            Ok(vec![None, None])
        }
    }
    struct Empty;
    impl CustomFunction for Empty {
        fn name(&self) -> &str {
            "empty"
        }
        fn forward(&self, _: &mut FunctionCtx, _: &[Tensor]) -> Result<Vec<Tensor>> {
            Ok(vec![])
        }
        fn backward(&self, _: &FunctionCtx, _: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
            Ok(vec![])
        }
    }
    let a = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    let b = Tensor::ones(&[3], DType::F64).unwrap();
    assert!(apply_function(Fails, &[&a, &b]).is_err());
    let m = apply_function(Empty, &[&a]).unwrap_err().to_string();
    assert!(m.contains("empty") && m.contains("no outputs"), "{m}");
    let m = apply_function1(SumProd(Arc::new(Mutex::new(vec![]))), &[&a, &a])
        .unwrap_err()
        .to_string();
    assert!(m.contains("sum_prod") && m.contains("exactly one"), "{m}");
    // A backward returning None for every input gives no gradient.
    let a2 = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    let b2 = Tensor::ones(&[2], DType::F64).unwrap();
    let y = apply_function1(Fails, &[&a2, &b2])
        .unwrap()
        .sum_all()
        .unwrap();
    let g = grad(&[y], &[a2], None, GradOptions::default().allow_unused(true)).unwrap();
    assert!(g[0].is_none());
}

#[test]
fn function_shared_through_arc_and_inputs_without_grad() {
    let f = Arc::new(Cube);
    let x = Tensor::from_vec(vec![2.0f64], &[1]).unwrap();
    let y = apply_function1(f.clone(), &[&x]).unwrap();
    assert!(!y.requires_grad());
    assert_eq!(y.item().unwrap(), 8.0);
    let xr = x.detach().requires_grad_(true);
    let y = apply_function1(f, &[&xr]).unwrap();
    let g = g1(&[y], &[xr], None);
    assert_eq!(g[0].as_ref().unwrap().item().unwrap(), 12.0);
}

#[test]
fn deep_chain_of_custom_functions() {
    // Many custom nodes in a row: iterative engine and drop, no stack overflow.
    let x = Tensor::from_vec(vec![0.5f64], &[1])
        .unwrap()
        .requires_grad_(true);
    let mut h = x.clone();
    for _ in 0..20_000 {
        h = apply_function1(GradReverse { lambda: 1.0 }, &[&h]).unwrap();
    }
    let g = g1(&[h], &[x], None);
    assert_eq!(g[0].as_ref().unwrap().item().unwrap(), 1.0);
}

/// x² whose backward, when recorded (create_graph), differentiates through its own saved
/// output with `grad`, re-entering this node's rule (issue #16 finding F: the engine used to
/// hold the rule's lock while the rule ran, so this deadlocked). The re-entered call takes
/// the plain formula.
struct ReentrantSquare {
    depth: Arc<std::sync::atomic::AtomicUsize>,
}
impl CustomFunction for ReentrantSquare {
    fn name(&self) -> &str {
        "reentrant_square"
    }
    fn forward(&self, ctx: &mut FunctionCtx, x: &[Tensor]) -> Result<Vec<Tensor>> {
        let y = x[0].mul(&x[0])?;
        ctx.save_for_backward(&[x[0].clone(), y.clone()]);
        Ok(vec![y])
    }
    fn backward(&self, ctx: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
        use std::sync::atomic::Ordering::SeqCst;
        let (x, y) = (&ctx.saved_tensors()[0], &ctx.saved_tensors()[1]);
        let outer = self.depth.fetch_add(1, SeqCst) == 0 && is_grad_enabled();
        let r = if outer {
            let opts = GradOptions::default().create_graph(true);
            grad(&[y.mul(&g[0])?.sum_all()?], &[x.clone()], None, opts).map(|r| r[0].clone())
        } else {
            g[0].mul(&x.mul_scalar(2.0)?).map(Some)
        };
        self.depth.fetch_sub(1, SeqCst);
        Ok(vec![r?])
    }
}

#[test]
fn a_backward_that_calls_grad_through_its_own_node_finishes() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let x = Tensor::from_vec(vec![1.5f64, -2.0, 3.0], &[3])
            .unwrap()
            .requires_grad_(true);
        let f = ReentrantSquare {
            depth: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        };
        let y = apply_function1(f, &[&x]).unwrap().sum_all().unwrap();
        let opts = GradOptions::default().create_graph(true);
        let g = grad(&[y], &[x.clone()], None, opts).unwrap()[0]
            .clone()
            .unwrap();
        let _ = tx.send(vals(&g));
    });
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("grad from inside a custom backward deadlocked (no answer in 20 s)");
    assert_close(&got, &[3.0, -4.0, 6.0], 1e-15);
}
