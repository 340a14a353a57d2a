//! Forward mode: ⟨J·t, c⟩ = ⟨t, Jᵀ·c⟩ for every op family, and J·t against finite differences.

use eingrad::autograd::{grad, GradOptions};
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
        (
            "gelu (fallback rule)",
            vec![vec![5]],
            Box::new(|x| Ok(vec![x[0].gelu()?])),
        ),
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
            .map(|(i, s)| Tensor::randn(s, DType::F64, 10 * k as u64 + i as u64))
            .collect();
        let ts: Vec<Tensor> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| Tensor::randn(s, DType::F64, 500 + 10 * k as u64 + i as u64))
            .collect();
        let (outs, jt) = jvp(&f, &xs, &ts).unwrap_or_else(|e| panic!("{name}: {e}"));
        let cs: Vec<Tensor> = outs
            .iter()
            .enumerate()
            .map(|(i, o)| Tensor::randn(o.dims(), DType::F64, 900 + i as u64))
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
    let x = Tensor::ones(&[2], DType::F64);
    let e = jvp(&f, &[x.clone()], &[Tensor::ones(&[3], DType::F64)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("tangent 0") && e.contains("[3]"), "{e}");
    let e = jvp(&f, &[x.clone()], &[Tensor::ones(&[2], DType::F32)])
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
    let f = |x: &[Tensor]| Ok(vec![x[0].exp()?, Tensor::ones(&[2], DType::F64)]);
    let x = Tensor::ones(&[2], DType::F64);
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
        let x = Tensor::ones(&[2], DType::F64);
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
        let x = Tensor::ones(&[2], DType::F64);
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
