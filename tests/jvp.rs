//! Forward mode: ⟨J·t, c⟩ = ⟨t, Jᵀ·c⟩ for every op family, and J·t against finite differences.

use eingrad::autograd::{grad, take_jvp_fallbacks, GradOptions};
use eingrad::func::jvp;
use eingrad::{einsum, DType, Result, Tensor};

type F = Box<dyn Fn(&[Tensor]) -> Result<Vec<Tensor>>>;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn table() -> Vec<(&'static str, Vec<Vec<usize>>, F)> {
    vec![
        ("exp", vec![vec![3, 2]], Box::new(|x| Ok(vec![x[0].exp()?]))),
        (
            "tanh·sin",
            vec![vec![4]],
            Box::new(|x| Ok(vec![x[0].tanh()?.sin()?])),
        ),
        (
            "sigmoid,relu",
            vec![vec![5]],
            Box::new(|x| Ok(vec![x[0].sigmoid()?, x[0].relu()?])),
        ),
        ("gelu", vec![vec![5]], Box::new(|x| Ok(vec![x[0].gelu()?]))),
        (
            "mul/div broadcast",
            vec![vec![2, 3], vec![3]],
            Box::new(|x| Ok(vec![x[0].mul(&x[1])?.div(&x[1].exp()?)?])),
        ),
        (
            "einsum bmm",
            vec![vec![2, 3, 4], vec![2, 4, 5]],
            Box::new(|x| Ok(vec![einsum("bij,bjk->bik", &[&x[0], &x[1]])?])),
        ),
        (
            "einsum chain",
            vec![vec![2, 3], vec![3, 4], vec![4, 2]],
            Box::new(|x| Ok(vec![einsum("ab,bc,cd->ad", &[&x[0], &x[1], &x[2]])?])),
        ),
        (
            "einsum diag+generalised",
            vec![vec![3, 3]],
            Box::new(|x| {
                Ok(vec![
                    einsum("ii->i", &[&x[0]])?,
                    einsum("ij->iij", &[&x[0]])?,
                ])
            }),
        ),
        (
            "softmax·logsumexp",
            vec![vec![2, 4]],
            Box::new(|x| Ok(vec![x[0].softmax(-1)?, x[0].logsumexp(&[1], false)?])),
        ),
        (
            "cumsum reversed",
            vec![vec![3, 4]],
            Box::new(|x| Ok(vec![x[0].cumsum(1, true)?])),
        ),
        (
            "views",
            vec![vec![3, 4]],
            Box::new(|x| {
                Ok(vec![x[0]
                    .transpose(0, 1)?
                    .narrow(0, 1, 2)?
                    .flip(&[1])?
                    .unfold(1, 2, 1)?])
            }),
        ),
        (
            "sum/mean/var",
            vec![vec![3, 4]],
            Box::new(|x| {
                Ok(vec![
                    x[0].sum(&[0], true)?,
                    x[0].mean(&[1], false)?,
                    x[0].var(&[1], 1, false)?,
                ])
            }),
        ),
        (
            "where/masked",
            vec![vec![6]],
            Box::new(|x| {
                let m = x[0].gt_scalar(0.0)?;
                Ok(vec![
                    Tensor::where_(&m, &x[0].exp()?, &x[0].sin()?)?,
                    x[0].masked_fill(&m, 2.0)?,
                ])
            }),
        ),
        (
            "conv1d",
            vec![vec![1, 2, 7], vec![3, 2, 3]],
            Box::new(|x| Ok(vec![x[0].conv1d(&x[1], None, Default::default())?])),
        ),
        (
            "cat/index_select",
            vec![vec![2, 3], vec![1, 3]],
            Box::new(|x| {
                Ok(vec![
                    Tensor::cat(&[&x[0], &x[1]], 0)?.index_select(1, &[2, 0, 2])?
                ])
            }),
        ),
    ]
}

#[test]
fn jvp_agrees_with_vjp_by_inner_products() {
    for (k, (name, shapes, f)) in table().into_iter().enumerate() {
        let xs: Vec<Tensor> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| Tensor::randn(s, DType::F64, 10 * k as u64 + i as u64).unwrap())
            .collect();
        let ts: Vec<Tensor> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| Tensor::randn(s, DType::F64, 500 + 10 * k as u64 + i as u64).unwrap())
            .collect();
        let (outs, jt) = jvp(&f, &xs, &ts).unwrap_or_else(|e| panic!("{name}: {e}"));
        let cs: Vec<Tensor> = outs
            .iter()
            .enumerate()
            .map(|(i, o)| Tensor::randn(o.dims(), DType::F64, 900 + i as u64).unwrap())
            .collect();
        let leaves: Vec<Tensor> = xs.iter().map(|x| x.detach().requires_grad_(true)).collect();
        let ys = f(&leaves).unwrap();
        let g = grad(
            &ys,
            &leaves,
            Some(&cs),
            GradOptions::default().allow_unused(true),
        )
        .unwrap();
        let lhs: f64 = jt
            .iter()
            .zip(&cs)
            .map(|(a, c)| dot(&a.to_vec_f64(), &c.to_vec_f64()))
            .sum();
        let rhs: f64 = g
            .iter()
            .zip(&ts)
            .map(|(g, t)| {
                g.as_ref()
                    .map(|g| dot(&g.to_vec_f64(), &t.to_vec_f64()))
                    .unwrap_or(0.0)
            })
            .sum();
        assert!(
            (lhs - rhs).abs() <= 1e-9 * (1.0 + lhs.abs()),
            "{name}: <Jt,c> = {lhs} but <t,J'c> = {rhs}"
        );
        // and J·t against central differences
        let eps = 1e-6;
        let shifted = |s: f64| -> Vec<f64> {
            let p: Vec<Tensor> = xs
                .iter()
                .zip(&ts)
                .map(|(x, t)| x.add(&t.mul_scalar(s).unwrap()).unwrap())
                .collect();
            f(&p).unwrap().iter().flat_map(|o| o.to_vec_f64()).collect()
        };
        let (plus, minus) = (shifted(eps), shifted(-eps));
        let got: Vec<f64> = jt.iter().flat_map(|t| t.to_vec_f64()).collect();
        for (i, g) in got.iter().enumerate() {
            let n = (plus[i] - minus[i]) / (2.0 * eps);
            assert!(
                (g - n).abs() <= 1e-5 * (1.0 + n.abs()),
                "{name}[{i}]: jvp {g} vs finite difference {n}"
            );
        }
    }
}

#[test]
fn jvp_bad_inputs_name_the_argument() {
    let f = |x: &[Tensor]| Ok(vec![x[0].exp()?]);
    let x = Tensor::ones(&[2], DType::F64).unwrap();
    let e = jvp(&f, &[x.clone()], &[Tensor::ones(&[3], DType::F64).unwrap()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("tangent 0") && e.contains("[3]"), "{e}");
    let e = jvp(&f, &[x.clone()], &[Tensor::ones(&[2], DType::F32).unwrap()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("F32"), "{e}");
    let e = jvp(&f, &[x.clone()], &[]).unwrap_err().to_string();
    assert!(e.contains("tangents"), "{e}");
    let none = |_: &[Tensor]| Ok(vec![]);
    assert!(jvp(&none, &[x.clone()], &[x])
        .unwrap_err()
        .to_string()
        .contains("no tensor"));
}

#[test]
fn unrelated_output_gets_zero_tangent() {
    let f = |x: &[Tensor]| Ok(vec![x[0].exp()?, Tensor::ones(&[2], DType::F64).unwrap()]);
    let x = Tensor::ones(&[2], DType::F64).unwrap();
    let (_, t) = jvp(&f, &[x.clone()], &[x]).unwrap();
    assert_eq!(t[1].to_vec::<f64>().unwrap(), vec![0.0, 0.0]);
}

mod custom {
    use eingrad::autograd::{apply_function1, CustomFunction, FunctionCtx};
    use eingrad::func::jvp;
    use eingrad::{DType, Result, Tensor};

    /// Forward 2x; backward says 2g; the JVP rule deliberately says 3t so that the test can
    /// tell which rule forward mode used.
    struct Marked;
    impl CustomFunction for Marked {
        fn name(&self) -> &str {
            "marked"
        }
        fn forward(&self, _: &mut FunctionCtx, x: &[Tensor]) -> Result<Vec<Tensor>> {
            Ok(vec![x[0].mul_scalar(2.0)?])
        }
        fn backward(&self, _: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
            Ok(vec![Some(g[0].mul_scalar(2.0)?)])
        }
        fn jvp(
            &self,
            _: &FunctionCtx,
            t: &[Option<Tensor>],
        ) -> Option<Result<Vec<Option<Tensor>>>> {
            Some(
                t[0].as_ref()
                    .map(|t| t.mul_scalar(3.0))
                    .transpose()
                    .map(|t| vec![t]),
            )
        }
    }
    /// Same without a JVP rule: forward mode transposes the backward rule.
    struct Unmarked;
    impl CustomFunction for Unmarked {
        fn name(&self) -> &str {
            "unmarked"
        }
        fn forward(&self, _: &mut FunctionCtx, x: &[Tensor]) -> Result<Vec<Tensor>> {
            Ok(vec![x[0].mul_scalar(2.0)?])
        }
        fn backward(&self, _: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
            Ok(vec![Some(g[0].mul_scalar(2.0)?)])
        }
    }

    #[test]
    fn custom_function_jvp_rule_is_used_and_fallback_transposes_backward() {
        let x = Tensor::ones(&[2], DType::F64).unwrap();
        let (_, t) = jvp(
            &|x: &[Tensor]| Ok(vec![apply_function1(Marked, &[&x[0]])?]),
            &[x.clone()],
            &[x.clone()],
        )
        .unwrap();
        assert_eq!(t[0].to_vec::<f64>().unwrap(), vec![3.0, 3.0]);
        let (_, t) = jvp(
            &|x: &[Tensor]| Ok(vec![apply_function1(Unmarked, &[&x[0]])?]),
            &[x.clone()],
            &[x],
        )
        .unwrap();
        assert_eq!(t[0].to_vec::<f64>().unwrap(), vec![2.0, 2.0]);
    }
}

mod opaque {
    use eingrad::autograd::{apply_function1, CustomFunction, FunctionCtx};
    use eingrad::func::jvp;
    use eingrad::{DType, Result, Tensor};

    /// A backward that detaches its upstream gradient and no JVP rule: forward mode must
    /// say it cannot proceed rather than return a zero tangent.
    struct Opaque;
    impl CustomFunction for Opaque {
        fn name(&self) -> &str {
            "opaque"
        }
        fn forward(&self, _: &mut FunctionCtx, x: &[Tensor]) -> Result<Vec<Tensor>> {
            Ok(vec![x[0].mul_scalar(2.0)?])
        }
        fn backward(&self, _: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
            Ok(vec![Some(g[0].detach().mul_scalar(2.0)?)])
        }
    }

    #[test]
    fn untransposable_rule_is_an_error_naming_the_op() {
        let x = Tensor::ones(&[2], DType::F64).unwrap();
        let e = jvp(
            &|x: &[Tensor]| Ok(vec![apply_function1(Opaque, &[&x[0]])?]),
            &[x.clone()],
            &[x],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("opaque") && e.contains("no JVP rule"), "{e}");
    }
}

fn v(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64()
}

fn f64s(data: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_f64s(data, shape, DType::F64).unwrap()
}

/// The tangent of one output of `f` at `x` along `t`, and the ops that fell back.
fn tangent(
    f: impl Fn(&Tensor) -> Result<Tensor>,
    x: &Tensor,
    t: &Tensor,
) -> (Tensor, Vec<(String, usize)>) {
    let _ = take_jvp_fallbacks();
    let (_, ts) = jvp(
        &|xs: &[Tensor]| Ok(vec![f(&xs[0])?]),
        &[x.clone()],
        &[t.clone()],
    )
    .unwrap();
    (ts[0].clone(), take_jvp_fallbacks())
}

#[test]
fn tangent_of_a_broadcast_binary_op_has_the_output_shape() {
    let x = f64s(&[1.0, 2.0, 3.0], &[3]);
    let t = f64s(&[1.0, 10.0, 100.0], &[3]);
    let c = f64s(&[0.5; 6], &[2, 3]);
    for (name, f) in [
        (
            "add",
            Box::new(|x: &Tensor| x.add(&c)) as Box<dyn Fn(&Tensor) -> Result<Tensor>>,
        ),
        ("sub", Box::new(|x: &Tensor| c.sub(x))),
        ("mul", Box::new(|x: &Tensor| x.mul(&c))),
        ("div", Box::new(|x: &Tensor| c.div(x))),
        ("pow", Box::new(|x: &Tensor| x.pow(&c))),
        ("maximum", Box::new(|x: &Tensor| x.maximum(&c))),
        (
            "where_",
            Box::new(|x: &Tensor| Tensor::where_(&c.gt_scalar(0.0)?, x, &c)),
        ),
    ] {
        let (ty, fb) = tangent(f, &x, &t);
        assert_eq!(ty.dims(), &[2, 3], "{name}");
        assert!(fb.is_empty(), "{name}: {fb:?}");
    }
    let (ty, _) = tangent(|x| x.add(&c), &x, &t);
    assert_eq!(v(&ty), vec![1.0, 10.0, 100.0, 1.0, 10.0, 100.0]);
}

/// Softmax, log_softmax and logsumexp on a row that is all −∞ give no NaN tangent, and
/// `where_`/`masked_fill` never leak an infinite tangent from the branch they do not select.
#[test]
fn tangents_are_finite_on_minus_infinity_rows_and_unselected_branches() {
    let ninf = f64::NEG_INFINITY;
    let x = f64s(&[ninf, ninf, ninf, 0.5, ninf, -1.0], &[2, 3]);
    let t = f64s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let (ts, _) = tangent(|x| x.softmax(-1), &x, &t);
    let y = v(&x.softmax(-1).unwrap());
    let tv = v(&ts);
    assert_eq!(&tv[..3], &[0.0, 0.0, 0.0]);
    // the second row: y ⊙ (t − Σ y·t), with y = 0 at −∞
    let mean = y[3] * 4.0 + y[5] * 6.0;
    assert!((tv[3] - y[3] * (4.0 - mean)).abs() < 1e-15 && tv[4] == 0.0);
    let (tl, _) = tangent(|x| x.log_softmax(-1), &x, &t);
    let tl = v(&tl);
    assert_eq!(
        &tl[..3],
        &[1.0, 2.0, 3.0],
        "an all −∞ row passes t (its gradient is g)"
    );
    assert!(tl.iter().all(|v| v.is_finite()), "{tl:?}");
    let (te, _) = tangent(|x| x.logsumexp(&[1], false), &x, &t);
    let te = v(&te);
    assert_eq!(te[0], 0.0);
    assert!((te[1] - mean).abs() < 1e-15);
    // log x at 0 has tangent t/0 = ∞, unselected by the mask
    let z = f64s(&[0.0, 2.0], &[2]);
    let tz = f64s(&[1.0, 1.0], &[2]);
    let m = f64s(&[1.0, 0.0], &[2]);
    let (tw, fb) = tangent(|x| Tensor::where_(&m, x, &x.log()?), &z, &tz);
    assert_eq!(v(&tw), vec![1.0, 0.5]);
    assert!(fb.is_empty(), "{fb:?}");
    let (tm, _) = tangent(|x| x.log()?.masked_fill(&m, 3.0), &z, &tz);
    assert_eq!(v(&tm), vec![0.0, 0.5]);
}

/// At kinks the JVP follows the same convention as the VJP (PyTorch's): maximum/minimum
/// and amax/amin split ties evenly, max_dim takes the first of tied indices, relu'(0) = 0.
#[test]
fn tangents_at_kinks_follow_the_gradient_conventions() {
    let a = f64s(&[1.0, 2.0, 3.0], &[3]);
    let b = f64s(&[1.0, 0.0, 5.0], &[3]);
    let f = |xs: &[Tensor]| Ok(vec![xs[0].maximum(&xs[1])?, xs[0].minimum(&xs[1])?]);
    let ta = f64s(&[2.0, 2.0, 2.0], &[3]);
    let tb = f64s(&[4.0, 4.0, 4.0], &[3]);
    let (_, ts) = jvp(&f, &[a.clone(), b.clone()], &[ta, tb]).unwrap();
    assert_eq!(v(&ts[0]), vec![3.0, 2.0, 4.0]);
    assert_eq!(v(&ts[1]), vec![3.0, 4.0, 2.0]);
    let x = f64s(&[1.0, 3.0, 3.0, 0.0], &[4]);
    let t = f64s(&[1.0, 2.0, 4.0, 8.0], &[4]);
    assert_eq!(v(&tangent(|x| x.amax(&[0], false), &x, &t).0), vec![3.0]);
    assert_eq!(v(&tangent(|x| x.amin(&[0], false), &x, &t).0), vec![8.0]);
    assert_eq!(
        v(&tangent(|x| Ok(x.max_dim(0, false)?.0), &x, &t).0),
        vec![2.0]
    );
    assert_eq!(
        v(&tangent(|x| Ok(x.min_dim(0, true)?.0), &x, &t).0),
        vec![8.0]
    );
    let r = f64s(&[-1.0, 0.0, 2.0], &[3]);
    let tr = f64s(&[1.0, 1.0, 1.0], &[3]);
    assert_eq!(v(&tangent(|x| x.relu(), &r, &tr).0), vec![0.0, 0.0, 1.0]);
}

fn one_hot(n: usize, i: usize) -> Tensor {
    let mut e = vec![0.0; n];
    e[i] = 1.0;
    f64s(&e, &[n])
}

/// Equal, or both NaN.
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// The Jacobian of the elementwise `f` at `x` twice: column i is J·eᵢ by forward mode (its
/// native rule: no fallback), row j is Jᵀ·eⱼ by reverse mode. Entry (j, i) must agree,
/// ⟨J·eᵢ, eⱼ⟩ = ⟨eᵢ, Jᵀ·eⱼ⟩; returns the diagonal.
fn jacobian_both_ways(name: &str, f: impl Fn(&Tensor) -> Result<Tensor>, x: &Tensor) -> Vec<f64> {
    let n = x.numel();
    let cols: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let (t, fb) = tangent(&f, x, &one_hot(n, i));
            assert!(fb.is_empty(), "{name}: fell back {fb:?}");
            v(&t)
        })
        .collect();
    for j in 0..n {
        let leaf = x.detach().requires_grad_(true);
        let y = f(&leaf).unwrap();
        let row = grad(
            &[y],
            &[leaf],
            Some(&[one_hot(n, j)]),
            GradOptions::default(),
        )
        .unwrap()[0]
            .clone()
            .unwrap();
        for (i, col) in cols.iter().enumerate() {
            let (fwd, rev) = (col[j], v(&row)[i]);
            assert!(
                same(fwd, rev),
                "{name} at {:?}: <J e{i}, e{j}> = {fwd} but <e{i}, J' e{j}> = {rev}",
                v(x)
            );
        }
    }
    (0..n).map(|i| cols[i][i]).collect()
}

/// The unary ops' JVP rules at exactly their kinks follow the backward rule's conventions:
/// abs'(0) = 0; clamp passes only strictly inside a given bound (0 at a bound) and everything
/// (±∞ included) on a side with no bound; sqrt'(0) = +∞ as in PyTorch.
#[test]
fn unary_tangents_at_kinks_match_the_vjp() {
    let x = f64s(&[-1.5, 0.0, 2.0], &[3]);
    assert_eq!(
        jacobian_both_ways("abs", |x| x.abs(), &x),
        vec![-1.0, 0.0, 1.0]
    );
    let x = f64s(&[-1.0, 0.0, 0.5, 1.0, 2.0], &[5]);
    assert_eq!(
        jacobian_both_ways("clamp(0, 1)", |x| x.clamp(Some(0.0), Some(1.0)), &x),
        vec![0.0, 0.0, 1.0, 0.0, 0.0]
    );
    let x = f64s(&[f64::NEG_INFINITY, 0.0, 1.0, 3.0], &[4]);
    assert_eq!(
        jacobian_both_ways("clamp(-, 1)", |x| x.clamp(None, Some(1.0)), &x),
        vec![1.0, 1.0, 0.0, 0.0]
    );
    let x = f64s(&[-3.0, 0.0, 1.0, f64::INFINITY], &[4]);
    assert_eq!(
        jacobian_both_ways("clamp(0, -)", |x| x.clamp(Some(0.0), None), &x),
        vec![0.0, 0.0, 1.0, 1.0]
    );
    // NaN passes nothing
    let x = f64s(&[f64::NAN, 0.5], &[2]);
    let (t, _) = tangent(
        |x| x.clamp(Some(0.0), Some(1.0)),
        &x,
        &f64s(&[1.0, 1.0], &[2]),
    );
    assert_eq!(v(&t), vec![0.0, 1.0]);

    // sqrt at 0: t/(2·0) = ±∞ for t ≠ 0, like the gradient. A zero tangent entry there gives
    // 0 (strong zeros, as the gradient does for a zero cotangent there; PyTorch gives 0/0 =
    // NaN in both).
    let x = f64s(&[0.0, 4.0], &[2]);
    let (t, fb) = tangent(|x| x.sqrt(), &x, &f64s(&[1.0, 1.0], &[2]));
    assert!(fb.is_empty(), "{fb:?}");
    assert_eq!(v(&t), vec![f64::INFINITY, 0.25]);
    let (t, _) = tangent(|x| x.sqrt(), &x, &f64s(&[-2.0, 1.0], &[2]));
    assert_eq!(v(&t), vec![f64::NEG_INFINITY, 0.25]);
    let (t, _) = tangent(|x| x.sqrt(), &x, &f64s(&[0.0, 1.0], &[2]));
    assert_eq!(v(&t), vec![0.0, 0.25]);
    assert_eq!(
        jacobian_both_ways("sqrt", |x| x.sqrt(), &f64s(&[0.0], &[1])),
        vec![f64::INFINITY]
    );
}

/// to_dtype pushes the tangent into the target dtype; powf(0) has a zero tangent.
#[test]
fn to_dtype_converts_the_tangent_and_powf_zero_is_flat() {
    let x = f64s(&[1.0, -2.0], &[2]);
    let t = f64s(&[0.5, 3.0], &[2]);
    let (ty, fb) = tangent(|x| x.to_dtype(DType::F32), &x, &t);
    assert!(fb.is_empty(), "{fb:?}");
    assert_eq!(ty.dtype(), DType::F32);
    assert_eq!(ty.to_vec::<f32>().unwrap(), vec![0.5f32, 3.0]);
    let (ty, _) = tangent(|x| x.to_dtype(DType::F32)?.to_dtype(DType::F64), &x, &t);
    assert_eq!(ty.dtype(), DType::F64);
    assert_eq!(v(&ty), vec![0.5, 3.0]);
    let (ty, fb) = tangent(|x| x.powf(0.0), &x, &t);
    assert!(fb.is_empty(), "{fb:?}");
    assert_eq!(v(&ty), vec![0.0, 0.0]);
}

/// `autograd::take_jvp_fallbacks` reports the ops forward mode pushed through their
/// backward rule: none for built-in ops with rules, the function's name for a custom
/// function without a JVP rule.
#[test]
fn fallbacks_are_observable() {
    use eingrad::autograd::{apply_function1, CustomFunction, FunctionCtx};
    struct NoRule;
    impl CustomFunction for NoRule {
        fn name(&self) -> &str {
            "no_rule"
        }
        fn forward(&self, _: &mut FunctionCtx, x: &[Tensor]) -> Result<Vec<Tensor>> {
            Ok(vec![x[0].mul_scalar(2.0)?])
        }
        fn backward(&self, _: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
            Ok(vec![Some(g[0].mul_scalar(2.0)?)])
        }
    }
    let x = f64s(&[1.0, 2.0], &[2]);
    let (_, fb) = tangent(|x| x.div(&x.exp()?)?.cumsum(0, false)?.softmax(0), &x, &x);
    assert!(fb.is_empty(), "{fb:?}");
    let (t, fb) = tangent(
        |x| apply_function1(NoRule, &[&apply_function1(NoRule, &[x])?]),
        &x,
        &x,
    );
    assert_eq!(v(&t), vec![4.0, 8.0]);
    assert_eq!(fb, vec![("no_rule".to_string(), 2)]);
    assert!(take_jvp_fallbacks().is_empty(), "taking resets the tally");
}

/// The model custom functions' JVP rules: the xLSTM decay matrix (−∞ above the diagonal)
/// agrees with forward mode through the plain-op version, and straight-through passes t.
#[test]
fn model_custom_functions_have_jvp_rules() {
    use eingrad::models::pooling::straight_through;
    use eingrad::models::xlstm::{decay_matrix, decay_matrix_custom};
    let ig = Tensor::randn(&[1, 2, 5, 1], DType::F64, 1).unwrap();
    let fg = Tensor::randn(&[1, 2, 5, 1], DType::F64, 2).unwrap();
    let ti = Tensor::randn(&[1, 2, 5, 1], DType::F64, 3).unwrap();
    let tf = Tensor::randn(&[1, 2, 5, 1], DType::F64, 4).unwrap();
    let prim = [ig, fg];
    let tans = [ti, tf];
    let _ = take_jvp_fallbacks();
    let (_, custom) = jvp(
        &|x: &[Tensor]| Ok(vec![decay_matrix_custom(&x[0], &x[1])?]),
        &prim,
        &tans,
    )
    .unwrap();
    assert!(take_jvp_fallbacks().is_empty());
    let (_, plain) = jvp(
        &|x: &[Tensor]| Ok(vec![decay_matrix(&x[0], &x[1])?]),
        &prim,
        &tans,
    )
    .unwrap();
    let (c, p) = (v(&custom[0]), v(&plain[0]));
    assert!(c.iter().all(|x| x.is_finite()), "{c:?}");
    for (a, b) in c.iter().zip(&p) {
        assert!((a - b).abs() < 1e-12, "{c:?} vs {p:?}");
    }
    let s = f64s(&[0.2, 0.7], &[2]);
    let (t, fb) = tangent(|x| straight_through(x, 0.5), &s, &f64s(&[3.0, 4.0], &[2]));
    assert_eq!(v(&t), vec![3.0, 4.0]);
    assert!(fb.is_empty(), "{fb:?}");
}

/// JVP rules hold their inputs, like backward rules: dropping a deep chain of such ops
/// (`div`, `exp`/`log`) must stay iterative.
#[test]
fn deep_chain_with_jvp_rules_drops_without_stack_overflow() {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let x = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
            let one = Tensor::ones(&[2], DType::F64).unwrap();
            let mut y = x.clone();
            for _ in 0..50_000 {
                y = y.div(&one).unwrap().exp().unwrap().log().unwrap();
            }
            assert_eq!(v(&y), vec![1.0, 1.0]);
            drop(y);
        })
        .unwrap()
        .join()
        .unwrap();
}
