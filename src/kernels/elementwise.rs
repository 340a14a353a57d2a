//! Elementwise maps with NumPy broadcasting.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::min_parallel_elements;
use super::strided::{coalesce, for_each_run};
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
        if n >= min_parallel_elements() {
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
        let (pa, pb) = (
            &xa[la.offset()..la.offset() + n],
            &xb[lb.offset()..lb.offset() + n],
        );
        let mut out: Vec<T> = Vec::with_capacity(n);
        if n >= min_parallel_elements() {
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
    let (cshape, [cs_a, cs_b]) = coalesce(&shape, [ba.strides(), bb.strides()]);
    if cshape.is_empty() {
        let out = if n == 1 {
            vec![f(xa[ba.offset()], xb[bb.offset()])]
        } else {
            vec![]
        };
        return Ok(Tensor::from_buf(out, &shape));
    }
    // Every element is written exactly once below, so the buffer starts uninitialised.
    let mut out: Vec<T> = Vec::with_capacity(n);
    let rows = cshape[0];
    let row_len: usize = cshape[1..].iter().product();
    let run_rows = |r0: usize, dst: &mut [MaybeUninit<T>]| {
        let nrows = dst.len() / row_len.max(1);
        let mut sub = cshape.clone();
        sub[0] = nrows;
        let oa = ba.offset() as isize + r0 as isize * cs_a[0];
        let ob = bb.offset() as isize + r0 as isize * cs_b[0];
        let mut w = 0usize;
        for_each_run(
            &sub,
            [&cs_a, &cs_b],
            [oa as usize, ob as usize],
            |[pa, pb], len, [sa, sb]| {
                let d = &mut dst[w..w + len];
                w += len;
                let (pa, pb) = (pa as usize, pb as usize);
                match (sa, sb) {
                    (1, 1) => d
                        .iter_mut()
                        .zip(xa[pa..pa + len].iter().zip(&xb[pb..pb + len]))
                        .for_each(|(o, (&u, &v))| {
                            o.write(f(u, v));
                        }),
                    (0, 1) => {
                        let u = xa[pa];
                        d.iter_mut().zip(&xb[pb..pb + len]).for_each(|(o, &v)| {
                            o.write(f(u, v));
                        })
                    }
                    (1, 0) => {
                        let v = xb[pb];
                        d.iter_mut().zip(&xa[pa..pa + len]).for_each(|(o, &u)| {
                            o.write(f(u, v));
                        })
                    }
                    _ => {
                        for (i, o) in d.iter_mut().enumerate() {
                            let i = i as isize;
                            o.write(f(
                                xa[(pa as isize + i * sa) as usize],
                                xb[(pb as isize + i * sb) as usize],
                            ));
                        }
                    }
                }
            },
        );
    };
    let spare = &mut out.spare_capacity_mut()[..n];
    if n >= min_parallel_elements() && rows > 1 {
        let per = rows.div_ceil(rayon::current_num_threads() * 4).max(1);
        spare
            .par_chunks_mut(per * row_len)
            .enumerate()
            .for_each(|(c, dst)| run_rows(c * per, dst));
    } else {
        run_rows(0, spare);
    }
    // SAFETY: the runs above cover all n = rows·row_len elements exactly once.
    unsafe { out.set_len(n) };
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
