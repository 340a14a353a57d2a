//! Masked branches and strong zeros (issue #16): `where_(x > 0, x.log(), 0)` and
//! `masked_fill(1/x, x == 0, 0)` — the pattern of every attention mask and safe log — have a
//! zero derivative at the masked points, to order 2, in reverse and forward mode alike.
//!
//! PyTorch and JAX give NaN there in reverse mode (pytorch#52248, jax#1052: the masked
//! branch's local derivative is ±∞ and `0·∞ = NaN`) and ask users to write a "double where".
//! eingrad keeps strong zeros instead: a cotangent (or tangent) entry that is exactly zero
//! contributes exactly zero whatever the local derivative.

use eingrad::autograd::{grad, GradOptions};
use eingrad::func::jvp;
use eingrad::{DType, Result, Tensor};

type Branch = fn(&Tensor) -> Result<Tensor>;

/// (name, branch, allowed-mask builder): the branch is used where the mask is 1.
fn branches() -> Vec<(&'static str, Branch, Branch)> {
    let positive: Branch = |x| x.gt_scalar(0.0);
    let nonzero: Branch = |x| x.ne_scalar(0.0);
    vec![
        ("log", |x| x.log(), positive),
        ("1/x", |x| Tensor::scalar(1.0, DType::F64).div(x), nonzero),
        ("sqrt", |x| x.sqrt(), positive),
        ("rsqrt", |x| x.rsqrt(), positive),
        ("pow", |x| x.pow(&Tensor::scalar(0.5, DType::F64)), positive),
        ("powf", |x| x.powf(-1.0), nonzero),
        ("log1p", |x| x.add_scalar(-1.0)?.log1p(), positive),
        ("exp", |x| x.exp(), |x| x.lt_scalar(10.0)),
    ]
}

/// The two ways of masking a branch `f` with the allowed-mask `m`.
fn masked(how: &str, f: Branch, m: Branch, x: &Tensor) -> Result<Tensor> {
    let allowed = m(&x.detach())?;
    match how {
        "where_" => Tensor::where_(&allowed, &f(x)?, &Tensor::scalar(0.0, DType::F64)),
        _ => f(x)?.masked_fill(&allowed.eq_scalar(0.0)?, 0.0),
    }
}

fn first_order(x: &Tensor, f: &dyn Fn(&Tensor) -> Result<Tensor>, create: bool) -> Tensor {
    let y = f(x).unwrap().sum_all().unwrap();
    let opts = GradOptions::default().create_graph(create);
    grad(&[y], &[x.clone()], None, opts).unwrap()[0]
        .clone()
        .unwrap()
}

#[test]
fn masked_branches_have_zero_derivatives_in_both_modes_to_order_two() {
    // 0 is masked for the branches singular at 0; 1000 overflows exp (masked for exp).
    let values = vec![0.0f64, 0.5, 2.0, 1000.0];
    for how in ["where_", "masked_fill"] {
        for (name, f, m) in branches() {
            let h = move |x: &Tensor| masked(how, f, m, x);
            let x = Tensor::from_vec(values.clone(), &[4])
                .unwrap()
                .requires_grad_(true);
            let allowed = m(&x.detach()).unwrap().to_vec_f64();
            // Order 1, reverse: the diagonal of an elementwise Jacobian.
            let rev1 = first_order(&x, &h, false).to_vec_f64();
            // Order 1, forward: J·1 is the same diagonal.
            let ones = Tensor::ones(&[4], DType::F64).unwrap();
            let fwd1 = jvp(
                &|xs: &[Tensor]| Ok(vec![h(&xs[0])?]),
                &[x.detach()],
                &[ones.clone()],
            )
            .unwrap()
            .1[0]
                .to_vec_f64();
            // Order 2, reverse: d/dx of the first derivative's sum (a diagonal Hessian).
            let d1 = first_order(&x, &h, true);
            let rev2 = grad(
                &[d1.sum_all().unwrap()],
                &[x.clone()],
                None,
                GradOptions::default(),
            )
            .unwrap()[0]
                .clone()
                .unwrap()
                .to_vec_f64();
            // Order 2, forward over reverse: J·1 of x ↦ ∂f/∂x (recorded with create_graph).
            let fwd2 = jvp(
                &|xs: &[Tensor]| {
                    let y = h(&xs[0])?.sum_all()?;
                    let opts = GradOptions::default().create_graph(true);
                    let g = grad(&[y], &[xs[0].clone()], None, opts)?[0].clone();
                    Ok(vec![g.map_or_else(|| xs[0].zeros_like(), Ok)?])
                },
                &[x.detach()],
                &[ones],
            )
            .unwrap()
            .1[0]
                .to_vec_f64();
            let case = format!("{how}({name})");
            for (k, &a) in allowed.iter().enumerate() {
                for (order, v) in [("rev1", &rev1), ("fwd1", &fwd1), ("rev2", &rev2)] {
                    assert!(v[k].is_finite(), "{case} {order}[{k}] = {}", v[k]);
                    if a == 0.0 {
                        assert_eq!(v[k], 0.0, "{case} {order} at masked entry {k}");
                    }
                }
                let tol = 1e-12 * (1.0 + rev1[k].abs());
                assert!(
                    (rev1[k] - fwd1[k]).abs() <= tol,
                    "{case}[{k}]: {rev1:?} vs {fwd1:?}"
                );
            }
            for (k, &a) in allowed.iter().enumerate() {
                assert!(fwd2[k].is_finite(), "{case} fwd2[{k}] = {}", fwd2[k]);
                if a == 0.0 {
                    assert_eq!(fwd2[k], 0.0, "{case} fwd2 at masked entry {k}");
                }
                let tol = 1e-10 * (1.0 + rev2[k].abs());
                assert!(
                    (rev2[k] - fwd2[k]).abs() <= tol,
                    "{case}[{k}]: {rev2:?} vs {fwd2:?}"
                );
            }
        }
    }
}

/// Strong zeros only where the cotangent is zero: a finite gradient is unchanged, and an
/// unmasked singular point still gives ±∞ (nothing is hidden).
#[test]
fn strong_zeros_change_nothing_else() {
    let x = Tensor::from_vec(vec![0.0f64, 4.0], &[2])
        .unwrap()
        .requires_grad_(true);
    let g = first_order(&x, &|x| x.sqrt(), false).to_vec_f64();
    assert_eq!(g[0], f64::INFINITY);
    assert_eq!(g[1], 0.25);
    // A zero cotangent entry against an infinite derivative gives 0, not NaN.
    let y = x.log().unwrap();
    let w = Tensor::from_vec(vec![0.0f64, 1.0], &[2]).unwrap();
    let g = grad(&[y], &[x.clone()], Some(&[w]), GradOptions::default()).unwrap()[0]
        .clone()
        .unwrap()
        .to_vec_f64();
    assert_eq!(g, vec![0.0, 0.25]);
    // mul against an infinite operand: 0·∞ = 0 in the VJP, ∞ where the gradient is not 0.
    let inf = Tensor::from_vec(vec![f64::INFINITY, 2.0], &[2]).unwrap();
    let y = x.mul(&inf).unwrap();
    let w = Tensor::from_vec(vec![0.0f64, 1.0], &[2]).unwrap();
    let g = grad(&[y], &[x.clone()], Some(&[w]), GradOptions::default()).unwrap()[0]
        .clone()
        .unwrap()
        .to_vec_f64();
    assert_eq!(g, vec![0.0, 2.0]);
}

/// Strong zeros must not cut second derivatives that flow through a zero cotangent: at the
/// minimum of Σ(x − 1)² the first-order cotangent 2(x − 1) is 0, and the Hessian is still 2·I.
#[test]
fn hessians_through_zero_cotangents_stay_exact() {
    let f = |x: &Tensor| -> Result<Tensor> {
        let r = x.add_scalar(-1.0)?;
        r.mul(&r)?.sum_all()
    };
    let x = Tensor::ones(&[3], DType::F64).unwrap();
    let h = eingrad::func::hessian(&f, &x).unwrap().to_vec_f64();
    assert_eq!(h, vec![2.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 2.0]);
}
