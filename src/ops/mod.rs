//! Differentiable ops. Each op's forward and its derivative rule live side by side; rules are
//! written with public tensor ops so that `create_graph` makes them differentiable again.

pub mod binary;
pub mod conv;
pub mod index;
pub mod norm;
pub mod reduce;
pub mod shape;
pub mod unary;

use crate::autograd::is_grad_enabled;
use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::kernels::{elementwise, Operand};
use crate::storage::Storage;
use crate::tensor::Tensor;

/// Applies a generic unary closure to a tensor of either dtype for op `$op` (an error when
/// the output cannot be allocated).
macro_rules! map1 {
    ($op:expr, $x:expr, |$v:ident| $body:expr) => {
        $crate::with_dtype!($x.dtype(), T => {
            #[allow(unused_imports)]
            use $crate::dtype::Float as _;
            $crate::ops::map_unary::<T>($op, $x, |$v: T| $body)
        })
    };
}
pub(crate) use map1;

/// A saved output for a backward rule: the detached copy normally, or a recomputation
/// (which carries history) when the rule itself is being recorded (`create_graph`).
pub(crate) fn saved_output(
    detached: &Tensor,
    recompute: impl FnOnce() -> crate::Result<Tensor>,
) -> crate::Result<Tensor> {
    if is_grad_enabled() {
        recompute()
    } else {
        Ok(detached.clone())
    }
}

/// `x`'s buffer as `T` for op `op` (an error naming the op when `x`'s dtype is not `T`).
pub(crate) fn typed<'a, T: Float>(op: &'static str, s: &'a Storage) -> Result<&'a [T]> {
    s.as_slice::<T>().ok_or_else(|| Error::DTypeMismatch {
        op,
        lhs: s.dtype(),
        rhs: T::DTYPE,
    })
}

/// All of `ts` must have `first`'s dtype, for op `op`.
fn same_dtypes(op: &'static str, first: &Tensor, ts: &[&Tensor]) -> Result<()> {
    match ts.iter().find(|t| t.dtype() != first.dtype()) {
        Some(t) => Err(Error::DTypeMismatch {
            op,
            lhs: first.dtype(),
            rhs: t.dtype(),
        }),
        None => Ok(()),
    }
}

/// `f` on `x`'s elements as one row-major slice (copying a strided view first).
pub(crate) fn with_contiguous<T: Float, R>(
    op: &'static str,
    x: &Tensor,
    f: impl FnOnce(&[T]) -> Result<R>,
) -> Result<R> {
    let x = if x.is_contiguous() {
        x.detach()
    } else {
        x.detach().contiguous()?
    };
    let s = x.storage();
    let off = x.layout().offset();
    f(&typed::<T>(op, &s)?[off..off + x.numel()])
}

/// `x` as a kernel operand over its storage `s` (`x.storage()`), for op `op`.
pub(crate) fn operand<'a, T: Float>(
    op: &'static str,
    x: &'a Tensor,
    s: &'a Storage,
) -> Result<Operand<'a, T>> {
    Ok(Operand {
        data: typed::<T>(op, s)?,
        layout: x.layout(),
    })
}

/// `f` on every element of `x` (the elementwise kernel), as a fresh contiguous tensor.
pub(crate) fn map_unary<T: Float>(
    op: &'static str,
    x: &Tensor,
    f: impl Fn(T) -> T + Sync,
) -> Result<Tensor> {
    let s = x.storage();
    let out = elementwise::map_unary(op, operand(op, x, &s)?, f)?;
    Ok(Tensor::from_buf(out, x.dims()))
}

/// `f(a, b)` over the broadcast shape of `a` and `b` (same dtype required).
pub(crate) fn map_binary<T: Float>(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    f: impl Fn(T, T) -> T + Sync,
) -> Result<Tensor> {
    same_dtypes(op, a, &[b])?;
    let (sa, sb) = (a.storage(), b.storage());
    let (oa, ob) = (operand(op, a, &sa)?, operand(op, b, &sb)?);
    let (out, shape) = elementwise::map_binary(op, oa, ob, f)?;
    Ok(Tensor::from_buf(out, &shape))
}

/// `f(a, b, c)` over the broadcast shape of three tensors of one dtype (`where_`, fused
/// backward rules `g·f'(x, y)`).
pub(crate) fn map_ternary<T: Float>(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    f: impl elementwise::Ternary<T>,
) -> Result<Tensor> {
    same_dtypes(op, a, &[b, c])?;
    let (sa, sb, sc) = (a.storage(), b.storage(), c.storage());
    let (oa, ob, oc) = (
        operand(op, a, &sa)?,
        operand(op, b, &sb)?,
        operand(op, c, &sc)?,
    );
    let (out, shape) = elementwise::map_ternary(op, oa, ob, oc, f)?;
    Ok(Tensor::from_buf(out, &shape))
}

/// `r` with exact zeros where the vector `v` it was computed from is zero and `r` is not
/// finite: strong zeros. A VJP or JVP entry whose cotangent (tangent) is exactly zero
/// contributes exactly zero, whatever the local derivative: `0·∞ = 0` and `0/0 = 0` in a
/// derivative product, so a masked branch (`where_(x > 0, x.log(), 0)` at x = 0) gives a
/// zero gradient, not NaN, and reverse mode agrees with forward mode. Where `r` is finite
/// nothing changes, so `r` stays differentiable in `v` (second derivatives through a zero
/// cotangent, e.g. a Hessian at a minimum, are exact). `v` broadcasts to `r`'s shape. One
/// fused pass at first order; a `where_` with a constant mask when the rule is recorded.
pub(crate) fn strong_zero(v: &Tensor, r: Tensor) -> Result<Tensor> {
    let dtype = r.dtype();
    if is_grad_enabled() {
        // A constant mask: where r stays, it stays differentiable.
        let mask = crate::with_dtype!(dtype, T => map_binary::<T>(
            "strong_zero", &v.detach(), &r.detach(),
            |v, r| if v == T::zero() && !r.is_finite() { T::one() } else { T::zero() }))?;
        return Tensor::where_(&mask, &Tensor::zeros(&[], dtype)?, &r);
    }
    crate::with_dtype!(dtype, T => map_binary::<T>("strong_zero", v, &r, |v, r| {
        if v == T::zero() && !r.is_finite() { T::zero() } else { r }
    }))
}

/// `v·d` with strong zeros ([`strong_zero`]): 0 wherever `v` is 0, even where `d` is ±∞ or
/// NaN. One fused pass at first order (no slower than `v.mul(d)`).
pub(crate) fn strong_mul(v: &Tensor, d: &Tensor) -> Result<Tensor> {
    if is_grad_enabled() {
        return strong_zero(v, v.mul(d)?);
    }
    crate::with_dtype!(v.dtype(), T => map_binary::<T>("mul", v, d, |v, d| {
        if v == T::zero() { T::zero() } else { v * d }
    }))
}
