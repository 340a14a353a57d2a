//! vjp, jacobian (all modes), hessian, hvp and verify_backward: against values from PyTorch
//! (`torch.func.jacrev` / `torch.func.hessian`, generated once by the script at the end of this
//! file and embedded below), against central finite differences, and their error messages.

use eingrad::autograd::{apply_function, grad, CustomFunction, FunctionCtx, GradOptions};
use eingrad::func::{hessian, hvp, jacobian, verify_backward, vjp, JacobianMode, VerifyOptions};
use eingrad::{einsum, DType, Result, Tensor};

struct JacCase {
    name: &'static str,
    inputs: &'static [(&'static [usize], &'static [f64])],
    out_shape: &'static [usize],
    /// One flattened block (out.shape ++ in.shape) per input.
    jac: &'static [&'static [f64]],
}

struct HessCase {
    name: &'static str,
    shape: &'static [usize],
    x: &'static [f64],
    value: f64,
    hess: &'static [f64],
}

fn t(shape: &[usize], v: &[f64]) -> Tensor {
    Tensor::from_f64s(v, shape, DType::F64).unwrap()
}
fn w() -> Tensor {
    t(&[3, 2], W)
}
fn c() -> Tensor {
    t(&[2, 3], C)
}
fn m() -> Tensor {
    t(&[2, 3], M)
}

type Fun = Box<dyn Fn(&[Tensor]) -> Result<Vec<Tensor>>>;
type SFun = Box<dyn Fn(&Tensor) -> Result<Tensor>>;

fn layernorm(x: &Tensor) -> Result<Tensor> {
    let mean = x.mean(&[-1], true)?;
    let var = x.var(&[-1], 0, true)?;
    x.sub(&mean)?.div(&var.add_scalar(1e-5)?.sqrt()?)
}

/// The eingrad version of each function of the generator script.
fn jac_fn(name: &str) -> Fun {
    let one =
        |f: fn(&Tensor) -> Result<Tensor>| -> Fun { Box::new(move |xs| Ok(vec![f(&xs[0])?])) };
    match name {
        "mm" => one(|x| einsum("ij,jk->ik", &[x, &w()])),
        "tanh_mm" => one(|x| einsum("ij,jk->ik", &[x, &w()])?.tanh()),
        "softmax_rows" => one(|x| x.softmax(-1)),
        "log_softmax_cols" => one(|x| x.log_softmax(0)),
        "cumsum_1" => one(|x| x.cumsum(1, false)),
        "cumsum_rev_0_sin" => one(|x| x.sin()?.cumsum(0, true)),
        "where_sq_sin" => one(|x| Tensor::where_(&x.gt_scalar(0.0)?, &x.mul(x)?, &x.sin()?)),
        "masked_fill_exp" => one(|x| x.masked_fill(&m(), 0.0)?.mul(&x.exp()?)),
        "sigmoid_rowsum" => one(|x| x.sum(&[1], false)?.sigmoid()),
        "var_plus_mean" => one(|x| x.var(&[1], 1, false)?.add(&x.mean(&[1], false)?)),
        "logsumexp_1" => one(|x| x.logsumexp(&[1], false)),
        "gelu" => one(|x| x.gelu()),
        "silu_times_softplus" => one(|x| x.silu()?.mul(&x.softplus()?)),
        "relu_times_x" => one(|x| x.relu()?.mul(x)),
        "rowdot" => one(|x| einsum("ij,ij->i", &[x, x])),
        "diag_exp" => one(|s| einsum("ii->i", &[s])?.exp()),
        "attention" => one(|x| {
            let p = einsum("id,jd->ij", &[x, x])?
                .div_scalar(3f64.sqrt())?
                .softmax(-1)?;
            einsum("ij,jd->id", &[&p, x])
        }),
        "layernorm" => one(layernorm),
        "tanh_mm_two_inputs" => {
            Box::new(|xs| Ok(vec![einsum("ij,jk->ik", &[&xs[0].tanh()?, &xs[1]])?]))
        }
        "erf_plus_logsigmoid" => one(|x| x.erf()?.add(&x.logsigmoid()?)),
        "cube_cumsum_0" => one(|x| x.powf(3.0)?.cumsum(0, false)),
        "masked_softmax" => one(|x| x.masked_fill(&m(), f64::NEG_INFINITY)?.softmax(-1)),
        "bilinear_three" => Box::new(|xs| Ok(vec![einsum("i,ij,j->", &[&xs[0], &xs[1], &xs[2]])?])),
        "softmax_cumsum" => one(|x| x.softmax(-1)?.cumsum(-1, false)),
        "amax_1_times_sum" => one(|x| x.amax(&[1], false)?.mul(&x.sum(&[1], false)?)),
        "mlp_two_layer" => Box::new(|xs| {
            let h = einsum("ij,jk->ik", &[&xs[0], &w()])?.relu()?;
            Ok(vec![einsum("bi,ji->bj", &[&h, &xs[1]])?.tanh()?])
        }),
        other => panic!("no eingrad function for case {other}"),
    }
}

fn hess_fn(name: &str) -> SFun {
    match name {
        "sum_tanh_mm_sq" => Box::new(|x| {
            einsum("ij,jk->ik", &[x, &w()])?
                .tanh()?
                .powf(2.0)?
                .sum_all()
        }),
        "logsumexp_all" => Box::new(|x| x.logsumexp(&[0, 1], false)),
        "softmax_dot" => Box::new(|x| x.softmax(-1)?.mul(&c())?.sum_all()),
        "cumsum_sq_sigmoid" => {
            Box::new(|x| x.cumsum(1, false)?.powf(2.0)?.mul(&x.sigmoid()?)?.sum_all())
        }
        "quadratic_form" => Box::new(|v| einsum("i,ij,j->", &[v, &t(&[4, 4], A4), v])),
        "layernorm_dot" => Box::new(|x| layernorm(x)?.mul(&c())?.sum_all()),
        "where_cube_exp" => {
            Box::new(|x| Tensor::where_(&x.gt_scalar(0.0)?, &x.powf(3.0)?, &x.exp()?)?.sum_all())
        }
        "log_softmax_dot" => Box::new(|x| x.log_softmax(0)?.mul(&c())?.sum_all()),
        "gelu_times_silu" => Box::new(|x| x.gelu()?.mul(&x.silu()?)?.sum_all()),
        "masked_sq_exp" => Box::new(|x| {
            x.masked_fill(&m(), 0.0)?
                .powf(2.0)?
                .mul(&x.exp()?)?
                .sum_all()
        }),
        other => panic!("no eingrad function for case {other}"),
    }
}

fn inputs_of(c: &JacCase) -> Vec<Tensor> {
    c.inputs.iter().map(|(s, v)| t(s, v)).collect()
}

/// |a − b| ≤ atol + rtol·|b| everywhere (NaN = NaN, ±∞ = ±∞).
fn assert_close(what: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        let ok = a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= atol + rtol * b.abs();
        assert!(ok, "{what}: entry {i}: got {a}, want {b}");
    }
}

/// Central differences of all outputs (flattened, concatenated) by input `j`, laid out like
/// a Jacobian block (out ++ in).
fn numeric_block(
    f: &dyn Fn(&[Tensor]) -> Result<Vec<Tensor>>,
    xs: &[Tensor],
    j: usize,
    eps: f64,
) -> Vec<f64> {
    let eval = |xs: &[Tensor]| -> Vec<f64> {
        f(xs).unwrap().iter().flat_map(|o| o.to_vec_f64()).collect()
    };
    let n_in = xs[j].numel();
    let base = xs[j].to_vec_f64();
    let mut cols = Vec::with_capacity(n_in);
    for e in 0..n_in {
        let shifted = |h: f64| {
            let mut v = base.clone();
            v[e] += h;
            let mut ys = xs.to_vec();
            ys[j] = t(xs[j].dims(), &v);
            eval(&ys)
        };
        let (p, q) = (shifted(eps), shifted(-eps));
        cols.push(
            p.iter()
                .zip(&q)
                .map(|(a, b)| (a - b) / (2.0 * eps))
                .collect::<Vec<f64>>(),
        );
    }
    let n_out = cols.first().map_or(0, |c| c.len());
    let mut block = vec![0.0; n_out * n_in];
    for (e, col) in cols.iter().enumerate() {
        for (o, v) in col.iter().enumerate() {
            block[o * n_in + e] = *v;
        }
    }
    block
}

#[test]
fn at_least_twenty_cases() {
    assert!(JAC_CASES.len() >= 20 && HESS_CASES.len() >= 8);
}

#[test]
fn jacobian_matches_torch_in_every_mode() {
    for mode in [
        JacobianMode::Reverse,
        JacobianMode::Forward,
        JacobianMode::Auto,
    ] {
        for case in JAC_CASES {
            let f = jac_fn(case.name);
            let xs = inputs_of(case);
            let j = jacobian(&*f, &xs, mode).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(j.len(), 1, "{}", case.name);
            assert_eq!(j[0].len(), xs.len(), "{}", case.name);
            for (k, (block, want)) in j[0].iter().zip(case.jac).enumerate() {
                let shape: Vec<usize> =
                    case.out_shape.iter().chain(xs[k].dims()).copied().collect();
                assert_eq!(block.dims(), shape.as_slice(), "{} input {k}", case.name);
                let what = format!("{} ({mode:?}) block [0][{k}]", case.name);
                assert_close(&what, &block.to_vec_f64(), want, 1e-12, 1e-10);
            }
        }
    }
}

#[test]
fn jacobian_matches_finite_differences() {
    for case in JAC_CASES {
        let f = jac_fn(case.name);
        let xs = inputs_of(case);
        let j = jacobian(&*f, &xs, JacobianMode::Auto).unwrap();
        for (k, block) in j[0].iter().enumerate() {
            let num = numeric_block(&*f, &xs, k, 1e-6);
            assert_close(
                &format!("{} d/d input {k} vs differences", case.name),
                &block.to_vec_f64(),
                &num,
                1e-6,
                1e-5,
            );
        }
    }
}

#[test]
fn hessian_matches_torch_and_finite_differences() {
    for case in HESS_CASES {
        let f = hess_fn(case.name);
        let x = t(case.shape, case.x);
        let h = hessian(&*f, &x).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let shape: Vec<usize> = case.shape.iter().chain(case.shape).copied().collect();
        assert_eq!(h.dims(), shape.as_slice(), "{}", case.name);
        let hv = h.to_vec_f64();
        assert_close(case.name, &hv, case.hess, 1e-11, 1e-9);
        // Symmetric.
        let n = x.numel();
        for a in 0..n {
            for b in 0..n {
                assert!(
                    (hv[a * n + b] - hv[b * n + a]).abs() < 1e-10,
                    "{} not symmetric",
                    case.name
                );
            }
        }
        // Differences of the gradient.
        let gradient = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
            let y = f(&xs[0])?;
            Ok(vec![grad(
                &[y],
                &[xs[0].clone()],
                None,
                GradOptions::default(),
            )?[0]
                .clone()
                .unwrap()])
        };
        let leaf = |v: &Tensor| v.detach().requires_grad_(true);
        let g_of = |xs: &[Tensor]| gradient(&[leaf(&xs[0])]);
        let num = numeric_block(&g_of, &[x.clone()], 0, 1e-5);
        assert_close(
            &format!("{} vs differences", case.name),
            &hv,
            &num,
            1e-5,
            1e-4,
        );
        // hvp agrees with H v, and returns f(x).
        let v = Tensor::randn(case.shape, DType::F64, 3).unwrap();
        let (y, hvv) = hvp(&*f, &x, &v).unwrap();
        assert!(
            (y.item().unwrap() - case.value).abs() < 1e-12 * (1.0 + case.value.abs()),
            "{}",
            case.name
        );
        let vv = v.to_vec_f64();
        let want: Vec<f64> = (0..n)
            .map(|a| (0..n).map(|b| hv[a * n + b] * vv[b]).sum())
            .collect();
        assert_close(
            &format!("{} hvp", case.name),
            &hvv.to_vec_f64(),
            &want,
            1e-11,
            1e-9,
        );
    }
}

#[test]
fn mixed_partials_through_nested_grad() {
    // f(x, y) = Σ tanh(x y) · sin(x) (x 2×3, y 3×2). ∂²f/∂x∂y from jacobian of the x-gradient
    // equals the element-by-element nested grad, and ∂²f/∂y∂x is its transpose.
    let x = Tensor::randn(&[2, 3], DType::F64, 11).unwrap();
    let y = Tensor::randn(&[3, 2], DType::F64, 12).unwrap();
    let f = |x: &Tensor, y: &Tensor| -> Result<Tensor> {
        einsum("ij,jk->ik", &[x, y])?
            .tanh()?
            .sum(&[1], false)?
            .mul(&x.sin()?.sum(&[1], false)?)?
            .sum_all()
    };
    let grad_by = |k: usize| {
        move |xs: &[Tensor]| -> Result<Vec<Tensor>> {
            let v = f(&xs[0], &xs[1])?;
            let g = grad(
                &[v],
                &[xs[k].clone()],
                None,
                GradOptions::default().create_graph(true),
            )?;
            Ok(vec![g[0].clone().unwrap()])
        }
    };
    let gx = grad_by(0);
    let gy = grad_by(1);
    let jx = jacobian(&gx, &[x.clone(), y.clone()], JacobianMode::Reverse).unwrap();
    let jy = jacobian(&gy, &[x.clone(), y.clone()], JacobianMode::Reverse).unwrap();
    let dxdy = jx[0][1].to_vec_f64(); // [2,3] ++ [3,2]
    let dydx = jy[0][0].to_vec_f64(); // [3,2] ++ [2,3]
                                      // Nested grad, one element at a time.
    let xl = x.detach().requires_grad_(true);
    let yl = y.detach().requires_grad_(true);
    let v = f(&xl, &yl).unwrap();
    let g = grad(
        &[v],
        &[xl.clone()],
        None,
        GradOptions::default().create_graph(true),
    )
    .unwrap()[0]
        .clone()
        .unwrap();
    for a in 0..6 {
        let mut e = vec![0.0; 6];
        e[a] = 1.0;
        let row = grad(
            &[g.clone()],
            &[yl.clone()],
            Some(&[t(&[2, 3], &e)]),
            GradOptions::default().retain_graph(true),
        )
        .unwrap()[0]
            .clone()
            .unwrap()
            .to_vec_f64();
        for b in 0..6 {
            assert!((row[b] - dxdy[a * 6 + b]).abs() < 1e-12, "∂²f/∂x{a}∂y{b}");
            assert!(
                (dydx[b * 6 + a] - dxdy[a * 6 + b]).abs() < 1e-12,
                "symmetry at ({a}, {b})"
            );
        }
    }
    // The diagonal blocks agree with `hessian` of the partial functions.
    let hx = hessian(&|x: &Tensor| f(x, &y), &x).unwrap().to_vec_f64();
    assert_close("∂²f/∂x²", &jx[0][0].to_vec_f64(), &hx, 1e-12, 1e-10);
}

#[test]
fn vjp_values_unused_inputs_and_independent_outputs() {
    let x = Tensor::randn(&[2, 3], DType::F64, 1).unwrap();
    let unused = Tensor::randn(&[4], DType::F64, 2).unwrap();
    let u0 = Tensor::randn(&[2, 3], DType::F64, 3).unwrap();
    let u1 = Tensor::randn(&[5], DType::F64, 4).unwrap();
    let f = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        Ok(vec![xs[0].tanh()?, Tensor::ones(&[5], DType::F64).unwrap()]) // output 1 is a constant
    };
    let (outs, g) = vjp(&f, &[x.clone(), unused.clone()], &[u0.clone(), u1]).unwrap();
    assert_eq!(outs.len(), 2);
    assert!(!outs[0].requires_grad(), "outputs come back detached");
    assert_close(
        "out",
        &outs[0].to_vec_f64(),
        &x.tanh().unwrap().to_vec_f64(),
        0.0,
        0.0,
    );
    let th = x.tanh().unwrap().to_vec_f64();
    let want: Vec<f64> = u0
        .to_vec_f64()
        .iter()
        .zip(&th)
        .map(|(u, y)| u * (1.0 - y * y))
        .collect();
    assert_close("vjp", &g[0].to_vec_f64(), &want, 1e-14, 1e-12);
    assert_eq!(g[1].dims(), &[4]);
    assert!(
        g[1].to_vec_f64().iter().all(|v| *v == 0.0),
        "unused input gets zeros"
    );
    // No output depends on any input: all zeros.
    let konst =
        |_: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![Tensor::ones(&[2], DType::F64).unwrap()]) };
    let (_, g) = vjp(
        &konst,
        &[x.clone()],
        &[Tensor::ones(&[2], DType::F64).unwrap()],
    )
    .unwrap();
    assert!(g[0].to_vec_f64().iter().all(|v| *v == 0.0));
    // f may return an input unchanged.
    let ident = |xs: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![xs[0].clone()]) };
    let (_, g) = vjp(&ident, &[x.clone()], &[u0.clone()]).unwrap();
    assert_eq!(g[0].to_vec_f64(), u0.to_vec_f64());
}

#[test]
fn vjp_errors_name_the_argument() {
    let x = Tensor::randn(&[2, 3], DType::F64, 1).unwrap();
    let f = |xs: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![xs[0].exp()?, xs[0].sum_all()?]) };
    let ok = [
        Tensor::ones(&[2, 3], DType::F64).unwrap(),
        Tensor::ones(&[], DType::F64).unwrap(),
    ];
    assert!(vjp(&f, &[x.clone()], &ok).is_ok());
    let e = vjp(&f, &[x.clone()], &ok[..1]).unwrap_err().to_string();
    assert!(
        e.contains("vjp")
            && e.contains("cotangents")
            && e.contains("2 outputs")
            && e.contains("1 cotangents"),
        "{e}"
    );
    let bad_shape = [
        Tensor::ones(&[2, 3], DType::F64).unwrap(),
        Tensor::ones(&[2], DType::F64).unwrap(),
    ];
    let e = vjp(&f, &[x.clone()], &bad_shape).unwrap_err().to_string();
    assert!(
        e.contains("cotangents[1]") && e.contains("[2]") && e.contains("output 1"),
        "{e}"
    );
    let bad_dtype = [
        Tensor::ones(&[2, 3], DType::F32).unwrap(),
        Tensor::ones(&[], DType::F64).unwrap(),
    ];
    let e = vjp(&f, &[x.clone()], &bad_dtype).unwrap_err().to_string();
    assert!(
        e.contains("cotangents[0]") && e.contains("F32") && e.contains("F64"),
        "{e}"
    );
    let none = |_: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![]) };
    let e = vjp(&none, &[x.clone()], &[]).unwrap_err().to_string();
    assert!(e.contains("`f`") && e.contains("no tensor"), "{e}");
    let e = vjp(&f, &[], &ok).unwrap_err().to_string();
    assert!(e.contains("primals"), "{e}");
    // f's own errors come through unchanged.
    let failing = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        Ok(vec![xs[0].add(&Tensor::ones(&[7], DType::F64).unwrap())?])
    };
    let e = vjp(&failing, &[x], &ok[..1]).unwrap_err().to_string();
    assert!(e.contains("add"), "{e}");
}

#[test]
fn jacobian_zero_blocks_and_errors() {
    let x = Tensor::randn(&[3], DType::F64, 1).unwrap();
    let y = Tensor::randn(&[2], DType::F64, 2).unwrap();
    let f = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        Ok(vec![
            xs[0].exp()?,
            Tensor::ones(&[4], DType::F64).unwrap(),
            xs[0].sum_all()?,
        ])
    };
    for mode in [
        JacobianMode::Reverse,
        JacobianMode::Forward,
        JacobianMode::Auto,
    ] {
        let j = jacobian(&f, &[x.clone(), y.clone()], mode).unwrap();
        assert_eq!(j.len(), 3);
        assert_eq!(j[0][1].dims(), &[3, 2]);
        assert!(
            j[0][1].to_vec_f64().iter().all(|v| *v == 0.0),
            "unused input: zero block"
        );
        assert_eq!(j[1][0].dims(), &[4, 3]);
        assert!(
            j[1][0].to_vec_f64().iter().all(|v| *v == 0.0),
            "independent output: zero block"
        );
        assert_eq!(j[2][0].dims(), &[3]);
        assert_eq!(j[2][0].to_vec_f64(), vec![1.0; 3]);
        let ex = x.exp().unwrap().to_vec_f64();
        let d = j[0][0].to_vec_f64();
        for a in 0..3 {
            for b in 0..3 {
                assert_eq!(d[a * 3 + b], if a == b { ex[a] } else { 0.0 });
            }
        }
    }
    let none = |_: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![]) };
    let e = jacobian(&none, &[x.clone()], JacobianMode::Auto)
        .unwrap_err()
        .to_string();
    assert!(e.contains("jacobian") && e.contains("`f`"), "{e}");
    let e = jacobian(&f, &[], JacobianMode::Auto)
        .unwrap_err()
        .to_string();
    assert!(e.contains("jacobian") && e.contains("primals"), "{e}");
}

#[test]
fn jacobian_f32_and_empty_tensors() {
    let x = Tensor::randn(&[2, 3], DType::F32, 1).unwrap();
    let f = |xs: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![xs[0].sigmoid()?.sum(&[0], false)?]) };
    let j = jacobian(&f, &[x.clone()], JacobianMode::Reverse).unwrap();
    assert_eq!(j[0][0].dtype(), DType::F32);
    let jf = jacobian(&f, &[x.clone()], JacobianMode::Forward).unwrap();
    assert_close(
        "f32 fwd vs rev",
        &jf[0][0].to_vec_f64(),
        &j[0][0].to_vec_f64(),
        1e-6,
        1e-5,
    );
    let z = Tensor::zeros(&[0, 3], DType::F64).unwrap();
    let g = |xs: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![xs[0].exp()?]) };
    let j = jacobian(&g, &[z], JacobianMode::Auto).unwrap();
    assert_eq!(j[0][0].dims(), &[0, 3, 0, 3]);
}

#[test]
fn transforms_nest_and_differentiate_again() {
    // jacobian of x ↦ tanh(x) at a tracked x: the diagonal 1 − tanh² is differentiable,
    // its gradient −2 tanh (1 − tanh²).
    let x = Tensor::randn(&[3], DType::F64, 5)
        .unwrap()
        .requires_grad_(true);
    let f = |xs: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![xs[0].tanh()?]) };
    for mode in [JacobianMode::Reverse, JacobianMode::Forward] {
        let j = jacobian(&f, &[x.clone()], mode).unwrap();
        assert!(
            j[0][0].requires_grad(),
            "{mode:?}: a tracked input gives a tracked Jacobian"
        );
        let s = j[0][0].sum_all().unwrap();
        let g = grad(&[s], &[x.clone()], None, GradOptions::default()).unwrap()[0]
            .clone()
            .unwrap();
        let th = x.tanh().unwrap().to_vec_f64();
        let want: Vec<f64> = th.iter().map(|t| -2.0 * t * (1.0 - t * t)).collect();
        assert_close(
            &format!("{mode:?}: d/dx Σ J"),
            &g.to_vec_f64(),
            &want,
            1e-13,
            1e-11,
        );
    }
    // vjp inside grad: d/dx ⟨u, sin'(x)⟩ = −u sin(x).
    let u = Tensor::randn(&[3], DType::F64, 6).unwrap();
    let sin = |xs: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![xs[0].sin()?]) };
    let (out, g) = vjp(&sin, &[x.clone()], &[u.clone()]).unwrap();
    assert!(out[0].requires_grad() && g[0].requires_grad());
    let gg = grad(
        &[g[0].sum_all().unwrap()],
        &[x.clone()],
        None,
        GradOptions::default(),
    )
    .unwrap()[0]
        .clone()
        .unwrap();
    let want: Vec<f64> = u
        .to_vec_f64()
        .iter()
        .zip(x.sin().unwrap().to_vec_f64())
        .map(|(u, s)| -u * s)
        .collect();
    assert_close("grad of vjp", &gg.to_vec_f64(), &want, 1e-14, 1e-12);
    // hessian at a tracked x: third derivative of Σ x⁴/12 is 2x on the diagonal.
    let h = hessian(&|x: &Tensor| x.powf(4.0)?.div_scalar(12.0)?.sum_all(), &x).unwrap();
    assert!(h.requires_grad());
    let d = grad(
        &[h.sum_all().unwrap()],
        &[x.clone()],
        None,
        GradOptions::default(),
    )
    .unwrap()[0]
        .clone()
        .unwrap();
    let want: Vec<f64> = x.to_vec_f64().iter().map(|v| 2.0 * v).collect();
    assert_close("d/dx Σ H", &d.to_vec_f64(), &want, 1e-13, 1e-11);
}

#[test]
fn hessian_and_hvp_errors_and_linear_functions() {
    let x = Tensor::randn(&[2, 2], DType::F64, 1).unwrap();
    let e = hessian(&|x: &Tensor| x.exp(), &x).unwrap_err().to_string();
    assert!(
        e.contains("hessian")
            && e.contains("`f`")
            && e.contains("one-element")
            && e.contains("[2, 2]"),
        "{e}"
    );
    let e = hvp(
        &|x: &Tensor| x.sum_all(),
        &x,
        &Tensor::ones(&[4], DType::F64).unwrap(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("hvp") && e.contains("`v`") && e.contains("[4]") && e.contains("[2, 2]"),
        "{e}"
    );
    let e = hvp(
        &|x: &Tensor| x.sum_all(),
        &x,
        &Tensor::ones(&[2, 2], DType::F32).unwrap(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("`v`") && e.contains("F32"), "{e}");
    let e = hvp(&|x: &Tensor| x.exp(), &x, &x).unwrap_err().to_string();
    assert!(e.contains("hvp") && e.contains("one-element"), "{e}");
    // Linear and constant functions have a zero Hessian.
    let h = hessian(&|x: &Tensor| x.mul_scalar(3.0)?.sum_all(), &x).unwrap();
    assert_eq!(h.dims(), &[2, 2, 2, 2]);
    assert!(h.to_vec_f64().iter().all(|v| *v == 0.0));
    let h = hessian(&|_: &Tensor| Ok(Tensor::ones(&[], DType::F64).unwrap()), &x).unwrap();
    assert!(h.to_vec_f64().iter().all(|v| *v == 0.0));
    let (y, hv) = hvp(&|x: &Tensor| x.sum_all(), &x, &x).unwrap();
    assert!((y.item().unwrap() - x.sum_all().unwrap().item().unwrap()).abs() < 1e-14);
    assert!(hv.to_vec_f64().iter().all(|v| *v == 0.0));
}

// ---------------------------------------------------------------------------------------
// verify_backward

/// σ(x) with its own backward; `bug` perturbs the gradient of element `bug_at`.
struct Sigmoid {
    bug_at: Option<usize>,
}
impl CustomFunction for Sigmoid {
    fn name(&self) -> &str {
        "my_sigmoid"
    }
    fn forward(&self, ctx: &mut FunctionCtx, x: &[Tensor]) -> Result<Vec<Tensor>> {
        let v: Vec<f64> = x[0]
            .to_vec_f64()
            .iter()
            .map(|v| 1.0 / (1.0 + (-v).exp()))
            .collect();
        let y = Tensor::from_f64s(&v, x[0].dims(), x[0].dtype())?;
        ctx.save_for_backward(&[y.clone()]);
        Ok(vec![y])
    }
    fn backward(&self, ctx: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
        let y = &ctx.saved_tensors()[0];
        let mut d = y.mul(&y.rsub_scalar(1.0)?)?;
        if let Some(at) = self.bug_at {
            let mut e = vec![1.0; y.numel()];
            e[at] = 1.01;
            d = d.mul(&Tensor::from_f64s(&e, y.dims(), y.dtype())?)?;
        }
        Ok(vec![Some(g[0].mul(&d)?)])
    }
}

/// a ⊙ σ(b) + (a·b)ᵀ-free: two inputs, two outputs; the custom side uses `Sigmoid`.
fn two_in_two_out(bug_at: Option<usize>) -> impl Fn(&[Tensor]) -> Result<Vec<Tensor>> {
    move |xs: &[Tensor]| {
        let s = apply_function(Sigmoid { bug_at }, &[&xs[1]])?.remove(0);
        Ok(vec![xs[0].mul(&s)?, s.sum_all()?])
    }
}
fn two_in_two_out_ref(xs: &[Tensor]) -> Result<Vec<Tensor>> {
    let s = xs[1].sigmoid()?;
    Ok(vec![xs[0].mul(&s)?, s.sum_all()?])
}

#[test]
fn verify_backward_passes_a_correct_custom_function() {
    for dtype in [DType::F64, DType::F32] {
        let xs = [
            Tensor::randn(&[2, 3], dtype, 1).unwrap(),
            Tensor::randn(&[2, 3], dtype, 2).unwrap(),
        ];
        let opts = VerifyOptions::default().finite_differences(dtype == DType::F64);
        let r = verify_backward(&two_in_two_out(None), &two_in_two_out_ref, &xs, opts).unwrap();
        assert!(r.passed(), "{r}");
        assert_eq!(r.dtype, dtype);
        assert_eq!(r.forward.len(), 2);
        assert_eq!(r.gradients.len(), 2);
        assert_eq!(
            r.finite_differences.len(),
            if dtype == DType::F64 { 2 } else { 0 }
        );
        assert_eq!(r.cotangents, 4 + 7, "4 random + all 7 one-hot");
        assert!(r.all().all(|d| d.skipped == 0), "finite outputs: {r}");
        let table = r.to_string();
        assert!(
            table.contains("passed") && table.contains("gradient of input 1"),
            "{table}"
        );
    }
}

#[test]
fn verify_backward_points_at_a_wrong_gradient() {
    let xs = [
        Tensor::randn(&[2, 3], DType::F64, 1).unwrap(),
        Tensor::randn(&[2, 3], DType::F64, 2).unwrap(),
    ];
    let opts = VerifyOptions::default().finite_differences(true);
    let r = verify_backward(&two_in_two_out(Some(4)), &two_in_two_out_ref, &xs, opts).unwrap();
    assert!(!r.passed());
    assert!(r.forward.iter().all(|d| d.passed), "forward is right: {r}");
    assert!(
        r.gradients[0].passed,
        "input 0's gradient does not go through the bug: {r}"
    );
    let bad = &r.gradients[1];
    assert!(!bad.passed);
    assert_eq!(
        bad.worst_index,
        vec![1, 1],
        "flat index 4 of a 2×3 input: {r}"
    );
    assert!((bad.custom / bad.reference - 1.01).abs() < 1e-9, "{r}");
    assert!(
        !r.finite_differences[1].passed && r.finite_differences[0].passed,
        "{r}"
    );
    assert_eq!(r.first_failure().unwrap().what, "gradient of input 1");
    let table = r.to_string();
    assert!(
        table.contains("FAILED") && table.contains("[1, 1]") && table.contains("FAIL"),
        "{table}"
    );
    println!("{table}");
}

#[test]
fn verify_backward_forward_checks_and_nonfinite_values() {
    // −∞ == −∞ and NaN == NaN in the forward comparison; a real difference fails.
    let x = [Tensor::from_f64s(&[0.0, 1.0, 2.0], &[3], DType::F64).unwrap()];
    let mask = Tensor::from_f64s(&[1.0, 0.0, 0.0], &[3], DType::F64).unwrap();
    let a = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        Ok(vec![xs[0]
            .masked_fill(&mask, f64::NEG_INFINITY)?
            .exp()?
            .log()?])
    };
    let b = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        Ok(vec![xs[0].masked_fill(&mask, f64::NEG_INFINITY)?])
    };
    let r = verify_backward(
        &a,
        &b,
        &x,
        VerifyOptions::default().tolerances(1e-12, 1e-12),
    )
    .unwrap();
    assert!(r.forward[0].passed, "{r}");
    let nan = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        Ok(vec![xs[0].log()?.mul_scalar(0.0)?.add(&xs[0])?])
    };
    let nan2 = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        Ok(vec![xs[0].log()?.mul_scalar(0.0)?.add(&xs[0])?])
    };
    let x = [Tensor::from_f64s(&[0.0, 1.0], &[2], DType::F64).unwrap()]; // 0·log 0 = NaN
    let r = verify_backward(&nan, &nan2, &x, VerifyOptions::default()).unwrap();
    assert!(r.forward[0].passed, "{r}");
    let off = |xs: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![xs[0].add_scalar(1e-3)?]) };
    let id = |xs: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![xs[0].clone()]) };
    let x = [Tensor::randn(&[4], DType::F32, 0).unwrap()];
    let r = verify_backward(&off, &id, &x, VerifyOptions::default()).unwrap();
    assert!(!r.forward[0].passed && r.gradients[0].passed, "{r}");
    assert!(r.forward[0].max_abs_err > 9e-4 && r.forward[0].max_abs_err < 1.1e-3);
}

/// Finite differences where the reference holds −∞ (the xLSTM decay matrix, −∞ above the
/// diagonal): a difference quotient there is ∞ − ∞, so those output entries are left out of
/// the comparison on both sides and counted, in the full-Jacobian and the directional
/// probes; a wrong custom gradient is still caught.
#[test]
fn verify_backward_finite_differences_skip_nonfinite_outputs() {
    use eingrad::models::xlstm::{decay_matrix, decay_matrix_custom};
    let xs = [
        Tensor::randn(&[1, 2, 4, 1], DType::F64, 11).unwrap(),
        Tensor::randn(&[1, 2, 4, 1], DType::F64, 12).unwrap(),
    ];
    let custom =
        |x: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![decay_matrix_custom(&x[0], &x[1])?]) };
    let reference = |x: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![decay_matrix(&x[0], &x[1])?]) };
    let fd = VerifyOptions::default().finite_differences(true);
    let directional = VerifyOptions {
        fd_max_elements: 0,
        ..fd
    };
    for opts in [fd, directional] {
        let r = verify_backward(&custom, &reference, &xs, opts).unwrap();
        assert!(r.passed(), "{r}");
        assert_eq!(r.finite_differences.len(), 2);
        for d in &r.finite_differences {
            // 2 heads × the 6 entries above the diagonal of a 4×4
            assert_eq!(d.skipped, 12, "{r}");
            assert!(d.compared > 0 && d.max_abs_err.is_finite(), "{r}");
        }
        assert!(r.forward.iter().chain(&r.gradients).all(|d| d.skipped == 0));
        let table = r.to_string();
        assert!(
            table.contains("12 non-finite output entries skipped"),
            "{table}"
        );
    }
    // a gradient 10% too large is caught by the finite differences too
    let wrong = |x: &[Tensor]| -> Result<Vec<Tensor>> {
        let y = decay_matrix_custom(&x[0], &x[1])?;
        y.register_hook(|g| Ok(Some(g.mul_scalar(1.1)?)));
        Ok(vec![y])
    };
    let r = verify_backward(&wrong, &reference, &xs, fd).unwrap();
    assert!(
        r.finite_differences
            .iter()
            .all(|d| !d.passed && d.skipped == 12),
        "{r}"
    );
}

#[test]
fn verify_backward_with_hooks_samples_and_errors() {
    // A "custom" gradient written as a hook that rescales the incoming gradient.
    let scaled = |k: f64| {
        move |xs: &[Tensor]| -> Result<Vec<Tensor>> {
            let y = xs[0].mul_scalar(2.0)?;
            y.register_hook(move |g| Ok(Some(g.mul_scalar(k)?)));
            Ok(vec![y.exp()?])
        }
    };
    let reference =
        |xs: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![xs[0].mul_scalar(2.0)?.exp()?]) };
    let x = [Tensor::randn(&[10, 10], DType::F64, 4).unwrap()];
    let r = verify_backward(&scaled(1.0), &reference, &x, VerifyOptions::default()).unwrap();
    assert!(r.passed(), "{r}");
    assert_eq!(r.cotangents, 4 + 16, "a large output is sampled");
    let r = verify_backward(
        &scaled(1.5),
        &reference,
        &x,
        VerifyOptions::default().finite_differences(true),
    )
    .unwrap();
    assert!(
        !r.gradients[0].passed && !r.finite_differences[0].passed,
        "{r}"
    );
    // Structural mismatches are errors.
    let two = |xs: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![xs[0].clone(), xs[0].clone()]) };
    let e = verify_backward(&two, &reference, &x, VerifyOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("verify_backward") && e.contains("2 outputs") && e.contains("1"),
        "{e}"
    );
    let other_shape = |xs: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![xs[0].sum_all()?]) };
    let e = verify_backward(&other_shape, &reference, &x, VerifyOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("output 0"), "{e}");
    let x32 = [Tensor::randn(&[3], DType::F32, 4).unwrap()];
    let e = verify_backward(
        &reference,
        &reference,
        &x32,
        VerifyOptions::default().finite_differences(true),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("f64"), "{e}");
}

#[test]
fn forward_mode_falls_back_when_a_rule_is_not_differentiable_in_its_gradient() {
    /// 2x whose backward detaches the upstream gradient (fine for first order, but the
    /// transpose trick cannot see through it).
    struct Opaque;
    impl CustomFunction for Opaque {
        fn name(&self) -> &str {
            "opaque_double"
        }
        fn forward(&self, _: &mut FunctionCtx, x: &[Tensor]) -> Result<Vec<Tensor>> {
            Ok(vec![x[0].mul_scalar(2.0)?])
        }
        fn backward(&self, _: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
            Ok(vec![Some(g[0].detach().mul_scalar(2.0)?)])
        }
    }
    let x = Tensor::randn(&[3], DType::F64, 1).unwrap();
    let f = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        Ok(vec![apply_function(Opaque, &[&xs[0].sin()?])?.remove(0)])
    };
    let rev = jacobian(&f, &[x.clone()], JacobianMode::Reverse).unwrap();
    let fwd = jacobian(&f, &[x.clone()], JacobianMode::Forward).unwrap();
    assert_close(
        "fallback",
        &fwd[0][0].to_vec_f64(),
        &rev[0][0].to_vec_f64(),
        0.0,
        0.0,
    );
    let cos = x.cos().unwrap().to_vec_f64();
    let d = rev[0][0].to_vec_f64();
    for a in 0..3 {
        assert!((d[a * 4] - 2.0 * cos[a]).abs() < 1e-14);
    }
}

#[test]
fn auto_mixes_columns_for_small_inputs_with_rows_for_large_ones() {
    // s (2 elements) is done by columns, x (40) by rows; outputs 40 + 8 elements.
    let s = Tensor::randn(&[2], DType::F64, 1).unwrap();
    let x = Tensor::randn(&[4, 10], DType::F64, 2).unwrap();
    let f = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        let y = einsum("k,ij->ij", &[&xs[0], &xs[1]])?.tanh()?.softmax(-1)?;
        let z = einsum("k,ij->ki", &[&xs[0].exp()?, &xs[1]])?;
        Ok(vec![y, z])
    };
    let rev = jacobian(&f, &[s.clone(), x.clone()], JacobianMode::Reverse).unwrap();
    let auto = jacobian(&f, &[s.clone(), x.clone()], JacobianMode::Auto).unwrap();
    let fwd = jacobian(&f, &[s.clone(), x.clone()], JacobianMode::Forward).unwrap();
    for i in 0..2 {
        for j in 0..2 {
            let want = rev[i][j].to_vec_f64();
            assert_close(
                &format!("auto [{i}][{j}]"),
                &auto[i][j].to_vec_f64(),
                &want,
                1e-14,
                1e-12,
            );
            assert_close(
                &format!("forward [{i}][{j}]"),
                &fwd[i][j].to_vec_f64(),
                &want,
                1e-14,
                1e-12,
            );
        }
    }
    let num = numeric_block(&f, &[s.clone(), x.clone()], 0, 1e-6);
    let got: Vec<f64> = (0..2).flat_map(|i| auto[i][0].to_vec_f64()).collect();
    assert_close("d/ds vs differences", &got, &num, 1e-6, 1e-5);
    // Tracked inputs: the mixed plan gives differentiable blocks too.
    let sr = s.clone().requires_grad_(true);
    let j = jacobian(&f, &[sr.clone(), x.clone()], JacobianMode::Auto).unwrap();
    assert!(j[0][0].requires_grad() && j[0][1].requires_grad());
    assert_close(
        "tracked auto",
        &j[0][0].to_vec_f64(),
        &rev[0][0].to_vec_f64(),
        1e-14,
        1e-12,
    );
}

#[test]
fn identity_outputs_and_tracked_cotangents() {
    // f returns its input unchanged: J = I (the root is the leaf itself).
    let x = Tensor::randn(&[2, 2], DType::F64, 1).unwrap();
    let ident = |xs: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![xs[0].clone()]) };
    for mode in [JacobianMode::Reverse, JacobianMode::Forward] {
        let j = jacobian(&ident, &[x.clone()], mode).unwrap();
        let v = j[0][0].to_vec_f64();
        for a in 0..4 {
            for b in 0..4 {
                assert_eq!(v[a * 4 + b], if a == b { 1.0 } else { 0.0 }, "{mode:?}");
            }
        }
    }
    // A cotangent that requires grad: the vjp is differentiable in it (d/du ⟨u·J, 1⟩ = J 1).
    let u = Tensor::randn(&[2, 2], DType::F64, 2)
        .unwrap()
        .requires_grad_(true);
    let sq = |xs: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![xs[0].mul(&xs[0])?]) };
    let (_, g) = vjp(&sq, &[x.clone()], &[u.clone()]).unwrap();
    assert!(g[0].requires_grad());
    let gu = grad(
        &[g[0].sum_all().unwrap()],
        &[u],
        None,
        GradOptions::default(),
    )
    .unwrap()[0]
        .clone()
        .unwrap();
    let want: Vec<f64> = x.to_vec_f64().iter().map(|v| 2.0 * v).collect();
    assert_close("d/du", &gu.to_vec_f64(), &want, 1e-15, 1e-13);
}

// ---- generated by the script at the end of this file ----
#[rustfmt::skip]
const W: &[f64] = &[
    -0.08552001807748738, -0.42878573752306764, -2.8734865022264633, 3.2451613070070113,
    0.14668388342363958, 1.3115753704454038,
];
#[rustfmt::skip]
const C: &[f64] = &[
    0.35092551857021514, -0.7204469556287365, 0.8165372446534841, -2.1175510265618134,
    0.2938771469591313, 0.563962485262978,
];
#[rustfmt::skip]
const M: &[f64] = &[
    1.0, 0.0, 0.0, 0.0,
    1.0, 1.0,
];
#[rustfmt::skip]
const A4: &[f64] = &[
    -0.9788868763444784, -1.0014059306387189, 0.5715235696295656, 0.5923842062303706,
    -1.1419068504121672, -1.4414286984154094, 2.093481663165074, 0.5131749101146518,
    0.029452145883949444, -1.1681114051634238, -0.8886144685911661, -0.5583506215048075,
    -0.55870076695673, -0.5734981419367167, 2.0579957336864325, 0.5782140123881957,
];
#[rustfmt::skip]
const JAC_CASES: &[JacCase] = &[
    JacCase {
        name: "mm",
        inputs: &[
            (&[2, 3], &[
                -1.4174718500062202, 0.4664281109460171, -1.951805635191481, -0.8602778034120232,
                -0.3830342364944372, 0.8844860209773845,
            ]),
        ],
        out_shape: &[2, 2],
        jac: &[
            &[
                -0.08552001807748738, -2.8734865022264633, 0.14668388342363958, 0.0,
                0.0, 0.0, -0.42878573752306764, 3.2451613070070113,
                1.3115753704454038, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, -0.08552001807748738,
                -2.8734865022264633, 0.14668388342363958, 0.0, 0.0,
                0.0, -0.42878573752306764, 3.2451613070070113, 1.3115753704454038,
            ],
        ],
    },
    JacCase {
        name: "tanh_mm",
        inputs: &[
            (&[2, 3], &[
                -1.2489264927269503, -0.09521950185041249, 0.08959376884540303, -1.5028400214530306,
                -0.4407139870031102, 0.8814031547617596,
            ]),
        ],
        out_shape: &[2, 2],
        jac: &[
            &[
                -0.07353048702067068, -2.470636310724259, 0.126119446986679, 0.0,
                0.0, 0.0, -0.38178799723443557, 2.889470259113357,
                1.1678180734204688, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, -0.014790180893495757,
                -0.49695248104882583, 0.025368109347572457, 0.0, 0.0,
                0.0, -0.3749921114648445, 2.8380372388041635, 1.1470307299625337,
            ],
        ],
    },
    JacCase {
        name: "softmax_rows",
        inputs: &[
            (&[2, 3], &[
                -0.009374193614916912, -0.7594193671445486, -0.26480466187658236, 0.2781515486865573,
                -0.8162797592379583, -1.7820667548326454,
            ]),
        ],
        out_shape: &[2, 3],
        jac: &[
            &[
                0.2469807225476034, -0.09355804265772864, -0.1534226798898747, 0.0,
                0.0, 0.0, -0.09355804265772864, 0.16602651133913723,
                -0.07246846868140855, 0.0, 0.0, 0.0,
                -0.1534226798898747, -0.07246846868140855, 0.2258911485712833, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.21617287329319967, -0.15656946400031643, -0.059603409292883255,
                0.0, 0.0, 0.0, -0.15656946400031643,
                0.17652050789293514, -0.019951043892618703, 0.0, 0.0,
                0.0, -0.059603409292883255, -0.019951043892618703, 0.07955445318550196,
            ],
        ],
    },
    JacCase {
        name: "log_softmax_cols",
        inputs: &[
            (&[2, 3], &[
                1.0005510489425118, -0.08951356768362832, -0.3872426130021328, -0.3551270615777571,
                1.13610714559944, 0.10970195569700748,
            ]),
        ],
        out_shape: &[2, 3],
        jac: &[
            &[
                0.20494362047847126, 0.0, 0.0, -0.20494362047847126,
                0.0, 0.0, 0.0, 0.773051177687686,
                0.0, 0.0, -0.7730511776876859, 0.0,
                0.0, 0.0, 0.621741025296897, 0.0,
                0.0, -0.621741025296897, -0.7950563795215287, 0.0,
                0.0, 0.7950563795215287, 0.0, 0.0,
                0.0, -0.22694882231231392, 0.0, 0.0,
                0.22694882231231406, 0.0, 0.0, 0.0,
                -0.378258974703103, 0.0, 0.0, 0.378258974703103,
            ],
        ],
    },
    JacCase {
        name: "cumsum_1",
        inputs: &[
            (&[2, 3], &[
                1.2660615911760271, 1.8470514290034152, -1.5532667156645934, 0.28460576583166264,
                0.45694915466853964, 2.235376254287952,
            ]),
        ],
        out_shape: &[2, 3],
        jac: &[
            &[
                1.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 1.0, 1.0,
                0.0, 0.0, 0.0, 0.0,
                1.0, 1.0, 1.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 1.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 1.0,
                1.0, 0.0, 0.0, 0.0,
                0.0, 1.0, 1.0, 1.0,
            ],
        ],
    },
    JacCase {
        name: "cumsum_rev_0_sin",
        inputs: &[
            (&[2, 3], &[
                0.4563997505080777, 1.2820402417516648, -1.1389308857743148, 0.27060439786983687,
                0.24184049163282884, 0.6341310752266411,
            ]),
        ],
        out_shape: &[2, 3],
        jac: &[
            &[
                0.8976450108004642, 0.0, 0.0, 0.9636095084323527,
                0.0, 0.0, 0.0, 0.284760030292847,
                0.0, 0.0, 0.9708988402447284, 0.0,
                0.0, 0.0, 0.41856569811360306, 0.0,
                0.0, 0.8055868191190978, 0.0, 0.0,
                0.0, 0.9636095084323527, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.9708988402447284, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.8055868191190978,
            ],
        ],
    },
    JacCase {
        name: "where_sq_sin",
        inputs: &[
            (&[2, 3], &[
                -1.0138612046570568, -0.7156532224288364, -0.5932377732264661, -0.7239450009485581,
                0.2845454804322744, 0.08501135949307215,
            ]),
        ],
        out_shape: &[2, 3],
        jac: &[
            &[
                0.5285869737123965, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.754664816141723,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.8291349559786078, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.7491986125508757, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.5690909608645488, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.1700227189861443,
            ],
        ],
    },
    JacCase {
        name: "masked_fill_exp",
        inputs: &[
            (&[2, 3], &[
                0.5653689246296697, 1.1460607065579316, -2.037706847983393, -0.2744670225215993,
                0.17910367335939748, -0.6174531651545581,
            ]),
        ],
        out_shape: &[2, 3],
        jac: &[
            &[
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 6.7510269807239425,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, -0.1352414576191881, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.5513884234834069, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
            ],
        ],
    },
    JacCase {
        name: "sigmoid_rowsum",
        inputs: &[
            (&[2, 3], &[
                -2.1726357377518735, -0.9722594892861558, -1.3189421210145391, 0.27553031734712236,
                -2.5257945779376607, 0.40404140299110275,
            ]),
        ],
        out_shape: &[2],
        jac: &[
            &[
                0.011257261961704486, 0.011257261961704486, 0.011257261961704486, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.11773466608556189, 0.11773466608556189, 0.11773466608556189,
            ],
        ],
    },
    JacCase {
        name: "var_plus_mean",
        inputs: &[
            (&[2, 3], &[
                -0.8099421591283865, -0.653078894741156, 0.6122978893091762, -0.08909267974060114,
                1.0358841497303881, -1.5245370569660235,
            ]),
        ],
        out_shape: &[2],
        jac: &[
            &[
                -0.1930344376082644, -0.036171173221033914, 1.2292056108292981, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.43682251591814436, 1.5617993453891335, -0.9986218613072781,
            ],
        ],
    },
    JacCase {
        name: "logsumexp_1",
        inputs: &[
            (&[2, 3], &[
                -1.1411642658266672, 0.2696211780313864, 0.4075430321852086, -0.06980711827899796,
                -0.20759171291842127, -0.8237802042657861,
            ]),
        ],
        out_shape: &[2],
        jac: &[
            &[
                0.10199338522378769, 0.41808861359026794, 0.4799180011859443, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.4270256188153499, 0.3720615933225472, 0.20091278786210295,
            ],
        ],
    },
    JacCase {
        name: "gelu",
        inputs: &[
            (&[2, 3], &[
                0.7121829752680813, 0.8705708575387184, -1.640719534429988, -0.7658201130518795,
                0.4260003218942812, -0.9247796689683051,
            ]),
        ],
        out_shape: &[2, 3],
        jac: &[
            &[
                0.9823014058414005, 0.0, -0.0, -0.0,
                0.0, -0.0, 0.0, 1.0457662304089368,
                -0.0, -0.0, 0.0, -0.0,
                0.0, 0.0, -0.11994197052502156, -0.0,
                0.0, -0.0, 0.0, 0.0,
                -0.0, -0.00597679077218205, 0.0, -0.0,
                0.0, 0.0, -0.0, -0.0,
                0.8201537719132386, -0.0, 0.0, 0.0,
                -0.0, -0.0, 0.0, -0.06302905138448822,
            ],
        ],
    },
    JacCase {
        name: "silu_times_softplus",
        inputs: &[
            (&[2, 3], &[
                0.1591032273124044, -0.5704381000261634, 1.5315952434715536, -0.060261206284853756,
                1.8751427433319379, 0.21843863609043596,
            ]),
        ],
        out_shape: &[2, 3],
        jac: &[
            &[
                0.49573293444242567, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.028446251898045893,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 2.8424259872821005, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.29758515406727704, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
                3.5953835847126, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.558884119376222,
            ],
        ],
    },
    JacCase {
        name: "relu_times_x",
        inputs: &[
            (&[2, 3], &[
                0.7291206758602673, 0.1290448054921574, 0.6782910133873661, 0.9182312752864253,
                -0.881226348537136, 0.7075700085987473,
            ]),
        ],
        out_shape: &[2, 3],
        jac: &[
            &[
                1.4582413517205346, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.2580896109843148,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 1.3565820267747322, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 1.8364625505728507, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 1.4151400171974946,
            ],
        ],
    },
    JacCase {
        name: "rowdot",
        inputs: &[
            (&[2, 3], &[
                -0.06835786373722091, -2.390179798259182, -0.1660671328995926, -1.4062866815865702,
                0.20800274527039173, -1.182147519071107,
            ]),
        ],
        out_shape: &[2],
        jac: &[
            &[
                -0.13671572747444183, -4.780359596518364, -0.3321342657991852, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, -2.8125733631731404, 0.41600549054078345, -2.364295038142214,
            ],
        ],
    },
    JacCase {
        name: "diag_exp",
        inputs: &[
            (&[3, 3], &[
                0.16336198860691473, -0.013932600014128453, -0.20387128878340502, 0.2480331661422589,
                -0.19966598659097992, 0.23766436601704177, -0.7751035035097459, 0.04345152500865177,
                0.37275085304934097,
            ]),
        ],
        out_shape: &[3],
        jac: &[
            &[
                1.1774628406863046, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.8190042658038031, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 1.4517226025121526,
            ],
        ],
    },
    JacCase {
        name: "attention",
        inputs: &[
            (&[2, 3], &[
                -0.02230776573588688, -0.48110986469382794, 0.08718507195389154, 0.6487499408891783,
                0.2842342408095895, -0.8729718681132927,
            ]),
        ],
        out_shape: &[2, 3],
        jac: &[
            &[
                0.6329386652063194, 0.11856319270484048, -0.09962358479991032, 0.4308926082213432,
                -0.04576335987029464, 0.00829307839215182, 0.07521989537231526, 0.7022072827273372,
                -0.11362111282380626, -0.002420062537769408, 0.38082122941324986, 0.0094582903992449,
                -0.09436657844950694, -0.16964155420344507, 0.7095280177776762, 0.003036072041748447,
                0.0654787317788837, 0.42114870152905115, 0.24466164578735486, -0.022999580973954097,
                0.07063887556779634, 0.8096388002734647, 0.08492946555551092, -0.14833256661599364,
                -0.05987116840311682, 0.2709258809950667, 0.08056393138989537, 0.12180105298467367,
                0.7997054099521419, -0.1691739091779375, 0.07511094348126139, 0.03290806002637501,
                0.1960860983777461, -0.15280463452945875, -0.12151803781441713, 0.9150789116100493,
            ],
        ],
    },
    JacCase {
        name: "layernorm",
        inputs: &[
            (&[2, 3], &[
                -1.4583688001033337, -0.24507727323671463, -1.3625929111325297, -0.13133247529396325,
                1.7653220517977284, -0.5096977387998027,
            ]),
        ],
        out_shape: &[2, 3],
        jac: &[
            &[
                0.8305433114658772, 0.07115775801052149, -0.9017010694763985, 0.0,
                0.0, 0.0, 0.07115775801052149, 0.006140136428809506,
                -0.07729789443933133, 0.0, 0.0, 0.0,
                -0.9017010694763985, -0.07729789443933144, 0.9789989639157298, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.5832064113083755, -0.09699703748983698, -0.48620937381853846,
                0.0, 0.0, 0.0, -0.0969970374898369,
                0.016138062504175765, 0.08085897498566114, 0.0, 0.0,
                0.0, -0.4862093738185385, 0.08085897498566114, 0.4053503988328773,
            ],
        ],
    },
    JacCase {
        name: "tanh_mm_two_inputs",
        inputs: &[
            (&[2, 3], &[
                0.062261720406840845, -0.10672252242571392, -0.26343438562979565, -0.7584702402529448,
                2.7502136883906236, -0.24830438126163057,
            ]),
            (&[3, 2], &[
                0.6334544308745684, -1.1965660383643588, 0.8004528869379978, 0.41578873751547407,
                -0.7467957775083989, -1.578553494013154,
            ]),
        ],
        out_shape: &[2, 2],
        jac: &[
            &[
                0.6310051631583068, 0.7914047530367018, -0.697276621617905, 0.0,
                0.0, 0.0, -1.191939485252883, 0.4110887580000248,
                -1.4738814552767783, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.37384956838576966,
                0.012973272145186773, -0.7025805272947677, 0.0, 0.0,
                0.0, -0.7061844943920894, 0.00673886063091893, -1.48509268475917,
            ],
            &[
                0.062181391989751124, 0.0, -0.1063191808442926, 0.0,
                -0.25750501391102176, 0.0, 0.0, 0.062181391989751124,
                0.0, -0.1063191808442926, 0.0, -0.25750501391102176,
                -0.6401750177678751, 0.0, 0.9918631886387961, 0.0,
                -0.2433240949341107, 0.0, 0.0, -0.6401750177678751,
                0.0, 0.9918631886387961, 0.0, -0.2433240949341107,
            ],
        ],
    },
    JacCase {
        name: "erf_plus_logsigmoid",
        inputs: &[
            (&[2, 3], &[
                -1.8681718719222444, 0.11468846165328897, -0.06010687342232003, 0.42088344028819236,
                0.3578574824181543, -0.13497688855482357,
            ]),
        ],
        out_shape: &[2, 3],
        jac: &[
            &[
                0.9006608784679699, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 1.5849935527580066,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 1.6393320691289897, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 1.3415035750348983, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
                1.4042250008330404, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 1.6417007167028044,
            ],
        ],
    },
    JacCase {
        name: "cube_cumsum_0",
        inputs: &[
            (&[2, 3], &[
                0.5132406379831702, -1.87012525838064, -0.41206533715395405, -1.3826025480547277,
                2.07577469470831, 0.6154339862683649,
            ]),
        ],
        out_shape: &[2, 3],
        jac: &[
            &[
                0.7902478574321148, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 10.492105446099767,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.5093935262514055, 0.0,
                0.0, 0.0, 0.7902478574321148, 0.0,
                0.0, 5.734769417662277, 0.0, 0.0,
                0.0, 10.492105446099767, 0.0, 0.0,
                12.926521749574134, 0.0, 0.0, 0.0,
                0.5093935262514055, 0.0, 0.0, 1.1362769743625099,
            ],
        ],
    },
    JacCase {
        name: "masked_softmax",
        inputs: &[
            (&[2, 3], &[
                -0.29224035390381836, -0.5905924255935718, 0.9355220556704104, -1.0243831088776518,
                -0.0071272072235517, 1.0447209354866969,
            ]),
        ],
        out_shape: &[2, 3],
        jac: &[
            &[
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.14667818753059947,
                -0.14667818753059947, 0.0, 0.0, 0.0,
                0.0, -0.14667818753059947, 0.14667818753059947, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
            ],
        ],
    },
    JacCase {
        name: "bilinear_three",
        inputs: &[
            (&[3], &[0.32810279822703103, -0.8957310564432506, 0.17652698987442295]),
            (&[3, 2], &[
                0.12852876020010504, -1.564902038823526, 1.659972273988767, -1.8155203143630132,
                -0.7185909531772109, 0.15072171052353678,
            ]),
            (&[2], &[-0.7860118860123272, -0.06058220676607842]),
        ],
        out_shape: &[],
        jac: &[
            &[-0.006219914327046161, -1.1947697107333266, 0.5556899765471415],
            &[
                -0.2578926992403507, -0.0198771915627189, 0.7040552570347737, 0.054265364068242866,
                -0.13875231224327417, -0.010694394600365724,
            ],
            &[-1.5715687706875232, 1.1393756411568234],
        ],
    },
    JacCase {
        name: "softmax_cumsum",
        inputs: &[
            (&[2, 3], &[
                -0.42493669192507505, 1.125742143174063, 0.21288853715923378, 0.8870349574136025,
                0.5924668226265539, 1.42023657362971,
            ]),
        ],
        out_shape: &[2, 3],
        jac: &[
            &[
                0.1141763078898812, -0.08147435722585053, -0.03270195066403068, 0.0,
                0.0, 0.0, 0.032701950664030685, 0.1541788919934681,
                -0.18688084265749874, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.20586617550283717, -0.06260737302251967, -0.1432588024803175,
                0.0, 0.0, 0.0, 0.1432588024803175,
                0.1067067766245682, -0.24996557910488573, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.0,
            ],
        ],
    },
    JacCase {
        name: "amax_1_times_sum",
        inputs: &[
            (&[2, 3], &[
                -0.26763911361357334, 0.1769394895735059, 0.45433167778320377, -0.19130663868341716,
                -0.7882365191638703, -0.1581781973999727,
            ]),
        ],
        out_shape: &[2],
        jac: &[
            &[
                0.45433167778320377, 0.45433167778320377, 0.8179637315263402, -0.0,
                -0.0, -0.0, 0.0, 0.0,
                0.0, -0.1581781973999727, -0.1581781973999727, -1.2958995526472328,
            ],
        ],
    },
    JacCase {
        name: "mlp_two_layer",
        inputs: &[
            (&[2, 3], &[
                1.0477315891853534, 1.030705115911146, 0.32271263822437907, 0.13820207290912714,
                -0.9250985277594481, 0.7724974070877422,
            ]),
            (&[2, 2], &[0.2577693162529626, 2.0648007041903798, 0.2902817014436697, -0.5426353177057736]),
        ],
        out_shape: &[2, 2],
        jac: &[
            &[
                -3.953731103379516e-06, 2.992285906969351e-05, 1.209372393427039e-05, 0.0,
                0.0, 0.0, 0.024054081168895725, -0.1820475045084889,
                -0.07357693518927032, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, -0.013800203177199544,
                -0.4636890689351304, 0.023670100165703246, 0.0, 0.0,
                0.0, -0.01385811573396573, -0.4656349402517884, 0.023769431748137653,
            ],
            &[
                0.0, 1.4820797207375464e-05, 0.0, 0.0,
                0.0, 0.0, 0.0, 0.343102032504673,
                1.7276530651571562, 0.0, 0.0, 0.0,
                0.0, 0.0, 1.540589019385387, 0.0,
            ],
        ],
    },
];
#[rustfmt::skip]
const HESS_CASES: &[HessCase] = &[
    HessCase {
        name: "sum_tanh_mm_sq",
        shape: &[2, 3],
        x: &[
            -0.3029165877871642, -1.0249429096845624, 0.5806822182237521, -0.2888282931431951,
            -0.25341938571325767, -1.665317437106359,
        ],
        value: 3.1683106281483964,
        hess: &[
            -0.02149258538142536, 0.1521782077927724, 0.06539965740833942, 0.0,
            0.0, 0.0, 0.1521782077927724, -1.5039623960692583,
            -0.4769806763761948, 0.0, 0.0, 0.0,
            0.06539965740833942, -0.47698067637619485, -0.19945847907150924, 0.0,
            0.0, 0.0, 0.0, 0.0,
            0.0, -0.005105038212810921, 0.19859348725787118, 0.020835880675407262,
            0.0, 0.0, 0.0, 0.19859348725787118,
            3.8715823478688587, -0.43204988998981003, 0.0, 0.0,
            0.0, 0.020835880675407255, -0.43204988998981, -0.07268730080657233,
        ],
    },
    HessCase {
        name: "logsumexp_all",
        shape: &[2, 3],
        x: &[
            -0.4602874658386575, 1.1539148240173536, -1.9402367379080732, -0.7225695728483532,
            0.27153575493398235, -1.3971517691857673,
        ],
        value: 1.7901138278255995,
        hess: &[
            0.09425685283092024, -0.055765476740543496, -0.002526925684999949, -0.008539227821155003,
            -0.023075603004640614, -0.004349619579581171, -0.05576547674054349, 0.2491414821989347,
            -0.012694968189969858, -0.042900044983503575, -0.11592903101473338, -0.021851961270184385,
            -0.0025269256849999484, -0.012694968189969857, 0.02340917354246462, -0.0019439486917836011,
            -0.005253143400373812, -0.0009901875753374014, -0.008539227821155002, -0.042900044983503575,
            -0.0019439486917836016, 0.07448127985286476, -0.017751922242616236, -0.003346136113806341,
            -0.023075603004640614, -0.1159290310147334, -0.005253143400373814, -0.01775192224261624,
            0.17105198195988006, -0.009042282297516009, -0.004349619579581173, -0.021851961270184395,
            -0.000990187575337402, -0.003346136113806343, -0.009042282297516012, 0.03958018683642533,
        ],
    },
    HessCase {
        name: "softmax_dot",
        shape: &[2, 3],
        x: &[
            -0.7566813329918588, 1.1830815175284097, 0.4833563084949149, -0.9909179810263575,
            -0.17580848084899148, 0.9088104757397424,
        ],
        value: 0.07173437535527274,
        hess: &[
            0.03700793480795005, 0.002518705531274767, -0.039526640339224824, 0.0,
            0.0, 0.0, 0.002518705531274777, 0.07471938600146366,
            -0.07723809153273847, -0.0, -0.0, -0.0,
            -0.03952664033922482, -0.07723809153273845, 0.11676473187196326, 0.0,
            0.0, 0.0, -0.0, -0.0,
            -0.0, -0.18883723651700446, 0.05231918683268413, 0.13651804968432033,
            0.0, 0.0, 0.0, 0.05231918683268413,
            0.007556772145416064, -0.05987595897810019, 0.0, 0.0,
            0.0, 0.13651804968432033, -0.05987595897810019, -0.07664209070622013,
        ],
    },
    HessCase {
        name: "cumsum_sq_sigmoid",
        shape: &[2, 3],
        x: &[
            -0.7841297017420744, -0.8064780432738736, -1.205573070611864, -0.06792013040457526,
            -0.6860949485585138, 1.3367531608528331,
        ],
        value: 3.2372357692196663,
        hess: &[
            1.0795324387382634, 0.3994396893790727, -0.530900855249426, 0.0,
            0.0, 0.0, 0.3994396893790726, -0.07275934816180762,
            -0.530900855249426, 0.0, 0.0, 0.0,
            -0.530900855249426, -0.530900855249426, -0.7752861862967888, 0.0,
            0.0, 0.0, 0.0, 0.0,
            0.0, 3.1519658832655533, 1.9178128526197584, 1.775937157970588,
            0.0, 0.0, 0.0, 1.9178128526197584,
            1.6237252918756437, 1.775937157970588, 0.0, 0.0,
            0.0, 1.775937157970588, 1.775937157970588, 1.9352932293476806,
        ],
    },
    HessCase {
        name: "quadratic_form",
        shape: &[4],
        x: &[-0.18690753063711152, 0.12831135299848948, 1.1065712557433414, 0.2097815043675375],
        value: -0.7169166887088463,
        hess: &[
            -1.9577737526889567, -2.143312781050886, 0.600975715513515, 0.03368343927364059,
            -2.143312781050886, -2.882857396830819, 0.9253702580016503, -0.06032323182206489,
            0.600975715513515, 0.9253702580016503, -1.7772289371823322, 1.499645112181625,
            0.03368343927364059, -0.06032323182206489, 1.499645112181625, 1.1564280247763914,
        ],
    },
    HessCase {
        name: "layernorm_dot",
        shape: &[2, 3],
        x: &[
            2.1042034404089645, -0.728063898465584, -1.3730499114459584, -0.11302132914724612,
            -1.333449149397756, 0.5590678200851348,
        ],
        value: -0.174327248537482,
        hess: &[
            -0.06477780246077551, 0.1865420583461913, -0.12176425588541581, 0.0,
            0.0, 0.0, 0.18654205834619136, -0.12860239420497332,
            -0.057939664141218, 0.0, 0.0, 0.0,
            -0.12176425588541583, -0.05793966414121801, 0.17970392002663385, 0.0,
            0.0, 0.0, 0.0, 0.0,
            0.0, 0.5194269824817087, -1.315500108333367, 0.7960731258516582,
            0.0, 0.0, 0.0, -1.315500108333367,
            0.8688415457757398, 0.44665856255762726, 0.0, 0.0,
            0.0, 0.7960731258516582, 0.4466585625576272, -1.2427316884092854,
        ],
    },
    HessCase {
        name: "where_cube_exp",
        shape: &[2, 3],
        x: &[
            -0.6849233839996302, 0.5092607841263167, 0.49486578892035654, -1.7099438267703948,
            1.2515287884382877, -1.6614658962469406,
        ],
        value: 3.0884290013199376,
        hess: &[
            0.5041288524315866, 0.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 3.0555647047579004,
            0.0, 0.0, 0.0, 0.0,
            0.0, 0.0, 2.9691947335221394, 0.0,
            0.0, 0.0, 0.0, 0.0,
            0.0, 0.18087595271817866, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.0,
            7.509172730629727, 0.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.18986046027465187,
        ],
    },
    HessCase {
        name: "log_softmax_dot",
        shape: &[2, 3],
        x: &[
            0.5776118626577487, -0.26367601279664044, 1.3401800040822007, 0.12578919791222357,
            0.07036985166214696, 0.27967419112118524,
        ],
        value: 1.2893330725102465,
        hess: &[
            0.41986134046801377, 0.0, 0.0, -0.4198613404680139,
            0.0, 0.0, 0.0, 0.10372194964505976,
            0.0, 0.0, -0.10372194964505976, 0.0,
            -0.0, -0.0, -0.2637505171844018, -0.0,
            -0.0, 0.2637505171844018, -0.4198613404680139, 0.0,
            0.0, 0.4198613404680138, 0.0, 0.0,
            0.0, -0.10372194964505975, 0.0, 0.0,
            0.10372194964505976, 0.0, -0.0, -0.0,
            0.2637505171844018, -0.0, -0.0, -0.2637505171844018,
        ],
    },
    HessCase {
        name: "gelu_times_silu",
        shape: &[2, 3],
        x: &[
            -1.2770178534282735, 0.11073633096340611, -2.168441891835647, -0.27917370218957926,
            -1.9900734785834284, 0.03809944071042341,
        ],
        value: 0.0711980437251857,
        hess: &[
            -0.046319157333143325, -0.0, -0.0, -0.0,
            -0.0, -0.0, 0.0, 0.728967028159946,
            0.0, 0.0, 0.0, 0.0,
            0.0, 0.0, 0.03509662239823238, 0.0,
            0.0, 0.0, 0.0, 0.0,
            0.0, 0.06393147010072378, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.0,
            0.039022750797926796, 0.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.5758604402103443,
        ],
    },
    HessCase {
        name: "masked_sq_exp",
        shape: &[2, 3],
        x: &[
            -0.7866181445237861, 0.12454792975588867, 0.33409359969792024, -0.19068400826921034,
            1.6888216003890337, -1.2906436390144187,
        ],
        value: 0.20351235178570068,
        hess: &[
            0.0, 0.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 2.847112306631404,
            0.0, 0.0, 0.0, 0.0,
            0.0, 0.0, 4.815721617482834, 0.0,
            0.0, 0.0, 0.0, 0.0,
            0.0, 1.0525151206843795, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.0,
        ],
    },
];

/* The generator (run once with torch 2.15.0+cu132: /work/ref-venv/bin/python gen_func.py > out.rs,
   then paste out.rs above):

# Generates the expected values embedded in tests/func.rs (run once with the reference venv:
#   /work/ref-venv/bin/python gen_func.py > out.rs).
import math
import numpy as np
import torch
from torch.func import jacrev, hessian

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(20240607)

def arr(*shape, scale=1.0):
    return torch.tensor(rng.standard_normal(shape) * scale)

W = arr(3, 2)
C = arr(2, 3)
M = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])  # never a whole row
Mb = M.bool()
A4 = arr(4, 4)

def cumsum_rev(x, d):
    return torch.flip(torch.cumsum(torch.flip(x, [d]), d), [d])

def layernorm(x):
    m = x.mean(-1, keepdim=True)
    v = x.var(-1, correction=0, keepdim=True)
    return (x - m) / torch.sqrt(v + 1e-5)

F = torch.nn.functional
# name -> (function of inputs, input shapes)
jac_cases = [
    ("mm", lambda x: torch.einsum("ij,jk->ik", x, W), [(2, 3)]),
    ("tanh_mm", lambda x: torch.tanh(x @ W), [(2, 3)]),
    ("softmax_rows", lambda x: torch.softmax(x, -1), [(2, 3)]),
    ("log_softmax_cols", lambda x: torch.log_softmax(x, 0), [(2, 3)]),
    ("cumsum_1", lambda x: torch.cumsum(x, 1), [(2, 3)]),
    ("cumsum_rev_0_sin", lambda x: cumsum_rev(torch.sin(x), 0), [(2, 3)]),
    ("where_sq_sin", lambda x: torch.where(x > 0, x * x, torch.sin(x)), [(2, 3)]),
    ("masked_fill_exp", lambda x: x.masked_fill(Mb, 0.0) * torch.exp(x), [(2, 3)]),
    ("sigmoid_rowsum", lambda x: torch.sigmoid(x.sum(1)), [(2, 3)]),
    ("var_plus_mean", lambda x: x.var(1, correction=1) + x.mean(1), [(2, 3)]),
    ("logsumexp_1", lambda x: torch.logsumexp(x, 1), [(2, 3)]),
    ("gelu", lambda x: F.gelu(x), [(2, 3)]),
    ("silu_times_softplus", lambda x: F.silu(x) * F.softplus(x), [(2, 3)]),
    ("relu_times_x", lambda x: torch.relu(x) * x, [(2, 3)]),
    ("rowdot", lambda x: torch.einsum("ij,ij->i", x, x), [(2, 3)]),
    ("diag_exp", lambda s: torch.exp(torch.einsum("ii->i", s)), [(3, 3)]),
    ("attention", lambda x: torch.softmax(torch.einsum("id,jd->ij", x, x) / math.sqrt(3.0), -1) @ x, [(2, 3)]),
    ("layernorm", layernorm, [(2, 3)]),
    ("tanh_mm_two_inputs", lambda x, w: torch.einsum("ij,jk->ik", torch.tanh(x), w), [(2, 3), (3, 2)]),
    ("erf_plus_logsigmoid", lambda x: torch.erf(x) + F.logsigmoid(x), [(2, 3)]),
    ("cube_cumsum_0", lambda x: torch.cumsum(x ** 3, 0), [(2, 3)]),
    ("masked_softmax", lambda x: x.masked_fill(Mb, float("-inf")).softmax(-1), [(2, 3)]),
    ("bilinear_three", lambda a, b, c: torch.einsum("i,ij,j->", a, b, c), [(3,), (3, 2), (2,)]),
    ("softmax_cumsum", lambda x: torch.cumsum(torch.softmax(x, -1), -1), [(2, 3)]),
    ("amax_1_times_sum", lambda x: x.amax(1) * x.sum(1), [(2, 3)]),
    ("mlp_two_layer", lambda x, w: torch.tanh(torch.einsum("bi,ij->bj", torch.relu(x @ W.T.T), w.T)), [(2, 3), (2, 2)]),
]

hess_cases = [
    ("sum_tanh_mm_sq", lambda x: (torch.tanh(x @ W) ** 2).sum(), (2, 3)),
    ("logsumexp_all", lambda x: torch.logsumexp(x, (0, 1)), (2, 3)),
    ("softmax_dot", lambda x: (torch.softmax(x, -1) * C).sum(), (2, 3)),
    ("cumsum_sq_sigmoid", lambda x: (torch.cumsum(x, 1) ** 2 * torch.sigmoid(x)).sum(), (2, 3)),
    ("quadratic_form", lambda v: torch.einsum("i,ij,j->", v, A4, v), (4,)),
    ("layernorm_dot", lambda x: (layernorm(x) * C).sum(), (2, 3)),
    ("where_cube_exp", lambda x: torch.where(x > 0, x ** 3, torch.exp(x)).sum(), (2, 3)),
    ("log_softmax_dot", lambda x: (torch.log_softmax(x, 0) * C).sum(), (2, 3)),
    ("gelu_times_silu", lambda x: (F.gelu(x) * F.silu(x)).sum(), (2, 3)),
    ("masked_sq_exp", lambda x: (x.masked_fill(Mb, 0.0) ** 2 * torch.exp(x)).sum(), (2, 3)),
]

def fmt(t, per_line=4, indent=" " * 12):
    v = t.detach().reshape(-1).tolist()
    items = [repr(float(a)) if math.isfinite(a) else ("f64::NAN" if math.isnan(a) else ("f64::INFINITY" if a > 0 else "f64::NEG_INFINITY")) for a in v]
    if len(items) <= per_line:
        return "&[" + ", ".join(items) + "]"
    lines = [indent + ", ".join(items[i:i + per_line]) + "," for i in range(0, len(items), per_line)]
    return "&[\n" + "\n".join(lines) + "\n" + indent[:-4] + "]"

print("// ---- generated by the script at the end of this file ----")
for name, v in [("W", W), ("C", C), ("M", M), ("A4", A4)]:
    print("#[rustfmt::skip]")
    print(f"const {name}: &[f64] = {fmt(v, indent=' ' * 4)};")
print("#[rustfmt::skip]")
print("const JAC_CASES: &[JacCase] = &[")
for name, f, shapes in jac_cases:
    xs = [arr(*s) for s in shapes]
    if name == "diag_exp":
        xs = [x * 0.5 for x in xs]
    J = jacrev(f, argnums=tuple(range(len(xs))))(*xs)
    out = f(*xs)
    ins = "".join(f"\n            (&{list(s)}, {fmt(x, indent=' ' * 16)})," for s, x in zip(shapes, xs))
    jacs = "".join(f"\n            {fmt(j, indent=' ' * 16)}," for j in J)
    print(f'    JacCase {{\n        name: "{name}",\n        inputs: &[{ins}\n        ],\n        out_shape: &{list(out.shape)},\n        jac: &[{jacs}\n        ],\n    }},')
print("];")
print("#[rustfmt::skip]")
print("const HESS_CASES: &[HessCase] = &[")
for name, f, shape in hess_cases:
    x = arr(*shape)
    H = hessian(f)(x)
    print(f'    HessCase {{\n        name: "{name}",\n        shape: &{list(shape)},\n        x: {fmt(x)},\n        value: {float(f(x))!r},\n        hess: {fmt(H)},\n    }},')
print("];")
*/
