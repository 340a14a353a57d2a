//! Elementwise maps with NumPy broadcasting.

use rayon::prelude::*;

use super::strided::for_each_run;
use super::PAR_THRESHOLD;
use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::layout::broadcast_shapes;
use crate::tensor::Tensor;

fn typed<'a, T: Float>(op: &'static str, s: &'a crate::storage::Storage) -> Result<&'a [T]> {
    T::slice(s).ok_or(Error::DTypeMismatch {
        op,
        lhs: s.dtype(),
        rhs: T::DTYPE,
    })
}

/// `f` applied to every element; the result is contiguous.
pub fn map_unary<T: Float>(x: &Tensor, f: impl Fn(T) -> T + Sync) -> Tensor {
    let storage = x.storage();
    let src = T::slice(&storage).expect("caller dispatched on dtype");
    let l = x.layout();
    let n = l.numel();
    let mut out: Vec<T> = Vec::with_capacity(n);
    if l.is_contiguous() {
        let s = &src[l.offset()..l.offset() + n];
        if n >= PAR_THRESHOLD {
            s.par_iter().map(|&v| f(v)).collect_into_vec(&mut out);
        } else {
            out.extend(s.iter().map(|&v| f(v)));
        }
    } else {
        for_each_run(l.shape(), [l.strides()], [l.offset()], |[b], len, [st]| {
            for i in 0..len as isize {
                out.push(f(src[(b + i * st) as usize]));
            }
        });
    }
    Tensor::from_buf(out, l.shape())
}

/// `f(a, b)` over the broadcast shape of `a` and `b` (same dtype required).
pub fn map_binary<T: Float>(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    f: impl Fn(T, T) -> T + Sync,
) -> Result<Tensor> {
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch {
            op,
            lhs: a.dtype(),
            rhs: b.dtype(),
        });
    }
    let (sa, sb) = (a.storage(), b.storage());
    let (xa, xb) = (typed::<T>(op, &sa)?, typed::<T>(op, &sb)?);
    let (la, lb) = (a.layout(), b.layout());
    if la.shape() == lb.shape() && la.is_contiguous() && lb.is_contiguous() {
        let n = la.numel();
        let (pa, pb) = (&xa[la.offset()..la.offset() + n], &xb[lb.offset()..lb.offset() + n]);
        let mut out: Vec<T> = Vec::with_capacity(n);
        if n >= PAR_THRESHOLD {
            pa.par_iter()
                .zip(pb.par_iter())
                .map(|(&u, &v)| f(u, v))
                .collect_into_vec(&mut out);
        } else {
            out.extend(pa.iter().zip(pb).map(|(&u, &v)| f(u, v)));
        }
        return Ok(Tensor::from_buf(out, la.shape()));
    }
    let shape = broadcast_shapes(op, la.shape(), lb.shape())?;
    let ba = la.broadcast_to(&shape)?;
    let bb = lb.broadcast_to(&shape)?;
    let n: usize = shape.iter().product();
    let mut out: Vec<T> = Vec::with_capacity(n);
    for_each_run(
        &shape,
        [ba.strides(), bb.strides()],
        [ba.offset(), bb.offset()],
        |[oa, ob], len, [sa, sb]| {
            for i in 0..len as isize {
                out.push(f(xa[(oa + i * sa) as usize], xb[(ob + i * sb) as usize]));
            }
        },
    );
    Ok(Tensor::from_buf(out, &shape))
}

/// `f(a, b, c)` over the broadcast shape of three tensors (used by `where_`).
pub fn map_ternary<T: Float>(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    f: impl Fn(T, T, T) -> T,
) -> Result<Tensor> {
    for t in [b, c] {
        if t.dtype() != a.dtype() {
            return Err(Error::DTypeMismatch {
                op,
                lhs: a.dtype(),
                rhs: t.dtype(),
            });
        }
    }
    let shape = broadcast_shapes(op, a.dims(), b.dims())?;
    let shape = broadcast_shapes(op, &shape, c.dims())?;
    let (sa, sb, sc) = (a.storage(), b.storage(), c.storage());
    let (xa, xb, xc) = (
        typed::<T>(op, &sa)?,
        typed::<T>(op, &sb)?,
        typed::<T>(op, &sc)?,
    );
    let (la, lb, lc) = (
        a.layout().broadcast_to(&shape)?,
        b.layout().broadcast_to(&shape)?,
        c.layout().broadcast_to(&shape)?,
    );
    let n: usize = shape.iter().product();
    let mut out: Vec<T> = Vec::with_capacity(n);
    for_each_run(
        &shape,
        [la.strides(), lb.strides(), lc.strides()],
        [la.offset(), lb.offset(), lc.offset()],
        |[oa, ob, oc], len, [sa, sb, sc]| {
            for i in 0..len as isize {
                out.push(f(
                    xa[(oa + i * sa) as usize],
                    xb[(ob + i * sb) as usize],
                    xc[(oc + i * sc) as usize],
                ));
            }
        },
    );
    Ok(Tensor::from_buf(out, &shape))
}
