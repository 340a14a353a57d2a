//! Second derivatives of scalar functions: the full Hessian (forward over reverse: the
//! gradient is recorded with `create_graph`, then one-hot tangents are pushed forward
//! through it) and Hessian–vector products (reverse over reverse).

use crate::autograd::{grad, GradOptions};
use crate::error::{AutogradError, Error, Result};
use crate::tensor::Tensor;

use super::jacobian::{check_scalar, jacobian_of_recorded, JacobianMode};
use super::vjp::prepare;

/// A scalar-valued function of one tensor, as [`hessian`] and [`hvp`] take it.
pub type ScalarFn<'a> = dyn Fn(&Tensor) -> Result<Tensor> + 'a;

/// Records `f` at `x` and its gradient with `create_graph`. Returns (leaf, f(x), ∇f(x)),
/// where the gradient is `None` when `f` does not depend on `x`.
fn value_and_grad(
    op: &'static str,
    f: &ScalarFn<'_>,
    x: &Tensor,
) -> Result<(Tensor, Tensor, Option<Tensor>, bool)> {
    let p = prepare(op, std::slice::from_ref(x))?;
    let leaf = p.leaves[0].clone();
    let y = f(&leaf)?;
    check_scalar(op, &y)?;
    if !y.requires_grad() {
        return Ok((leaf, y, None, p.nested));
    }
    let opts = GradOptions::default().create_graph(true).allow_unused(true);
    let ones = Tensor::ones(y.dims(), y.dtype())?;
    let g = grad(
        std::slice::from_ref(&y),
        std::slice::from_ref(&leaf),
        Some(&[ones]),
        opts,
    )?;
    Ok((leaf, y, g.into_iter().next().flatten(), p.nested))
}

/// The Hessian of a scalar function `f` at `x`, of shape `x.shape ++ x.shape`
/// (`torch.func.hessian`): `H[i, j] = ∂²f / ∂x_i ∂x_j`.
///
/// The gradient is recorded once (`create_graph`) and the columns are forward-mode pushes
/// of one-hot tangents through it (forward over reverse, like `torch.func.hessian`). `f`
/// must return a one-element tensor. A function linear in `x` gives zeros.
///
/// ```
/// use eingrad::{Tensor, func::hessian};
/// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap();
/// // f = x0² x1 → H = [[2 x1, 2 x0], [2 x0, 0]]
/// let f = |x: &Tensor| x.narrow(0, 0, 1)?.powf(2.0)?.mul(&x.narrow(0, 1, 1)?)?.sum_all();
/// let h = hessian(&f, &x).unwrap();
/// assert_eq!(h.dims(), &[2, 2]);
/// assert_eq!(h.to_vec::<f64>().unwrap(), vec![4.0, 2.0, 2.0, 0.0]);
/// ```
pub fn hessian(f: &ScalarFn<'_>, x: &Tensor) -> Result<Tensor> {
    let (leaf, _, g, nested) = value_and_grad("hessian", f, x)?;
    let shape: Vec<usize> = x.dims().iter().chain(x.dims()).copied().collect();
    crate::with_dtype!(x.dtype(), T => crate::storage::check_allocation::<T>("hessian", &shape))?;
    let Some(g) = g else {
        return Tensor::filled("hessian", &shape, 0.0, x.dtype());
    };
    let blocks = jacobian_of_recorded(&[g], &[leaf], JacobianMode::Forward, nested)?;
    blocks
        .into_iter()
        .next()
        .and_then(|b| b.into_iter().next())
        .ok_or_else(|| {
            Error::from(AutogradError::MissingGradient {
                op: "hessian",
                tensor: "x",
            })
        })
}

/// The value `f(x)` and the Hessian–vector product `H v` of a scalar function `f` at `x`
/// (`torch.func.hvp`-like), by reverse-over-reverse: one recorded gradient, one reverse pass
/// through it. `v` must have `x`'s shape and dtype.
///
/// ```
/// use eingrad::{Tensor, func::hvp};
/// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap();
/// let v = Tensor::from_vec(vec![1.0f64, 0.0], &[2]).unwrap();
/// let f = |x: &Tensor| x.powf(3.0)?.sum_all(); // H = diag(6 x)
/// let (y, hv) = hvp(&f, &x, &v).unwrap();
/// assert_eq!(y.item().unwrap(), 9.0);
/// assert_eq!(hv.to_vec::<f64>().unwrap(), vec![6.0, 0.0]);
/// ```
pub fn hvp(f: &ScalarFn<'_>, x: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
    if v.dims() != x.dims() {
        return Err(Error::arg(
            "hvp",
            "v",
            format!("has shape {:?} but x has shape {:?}", v.dims(), x.dims()),
        ));
    }
    if v.dtype() != x.dtype() {
        return Err(Error::arg(
            "hvp",
            "v",
            format!("is {:?} but x is {:?}", v.dtype(), x.dtype()),
        ));
    }
    let (leaf, y, g, nested) = value_and_grad("hvp", f, x)?;
    let y = if nested { y } else { y.detach() };
    let hv = match g {
        Some(g) if g.requires_grad() => {
            let opts = GradOptions::default()
                .allow_unused(true)
                .create_graph(nested || v.requires_grad());
            grad(
                &[g],
                std::slice::from_ref(&leaf),
                Some(std::slice::from_ref(v)),
                opts,
            )?
            .into_iter()
            .next()
            .flatten()
        }
        _ => None,
    };
    Ok((y, hv.map_or_else(|| x.zeros_like(), Ok)?))
}
