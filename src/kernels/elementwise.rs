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

/// `f` applied to every element for op `op`; the result is contiguous. An error when the
/// output (as large as a broadcast view's logical size) cannot be allocated.
pub fn map_unary<T: Float>(
    op: &'static str,
    x: &Tensor,
    f: impl Fn(T) -> T + Sync,
) -> Result<Tensor> {
    let storage = x.storage();
    let src = T::slice(&storage).expect("caller dispatched on dtype");
    let l = x.layout();
    let n = l.numel();
    let mut out: Vec<T> = crate::storage::try_buffer(op, l.shape(), n)?;
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
    Ok(Tensor::from_buf(out, l.shape()))
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
        let mut out: Vec<T> = crate::storage::try_buffer(op, la.shape(), n)?;
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
    let mut out: Vec<T> = crate::storage::try_buffer(op, &shape, n)?;
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
    f: impl Fn(T, T, T) -> T + Sync,
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
    let same = |t: &Tensor| t.dims() == shape.as_slice() && t.layout().is_contiguous();
    if same(a) && same(b) && same(c) {
        // The common case (a fused backward g·f'(x, y)): three dense slices, one pass.
        let n: usize = shape.iter().product();
        let (oa, ob, oc) = (
            a.layout().offset(),
            b.layout().offset(),
            c.layout().offset(),
        );
        let (pa, pb, pc) = (&xa[oa..oa + n], &xb[ob..ob + n], &xc[oc..oc + n]);
        let mut out: Vec<T> = crate::storage::try_buffer(op, &shape, n)?;
        let fill = |dst: &mut [MaybeUninit<T>], start: usize| {
            let end = start + dst.len();
            for (o, ((&u, &v), &w)) in dst.iter_mut().zip(
                pa[start..end]
                    .iter()
                    .zip(&pb[start..end])
                    .zip(&pc[start..end]),
            ) {
                o.write(f(u, v, w));
            }
        };
        let spare = &mut out.spare_capacity_mut()[..n];
        if n >= min_parallel_elements() {
            let per = n.div_ceil(rayon::current_num_threads() * 4).max(1);
            spare
                .par_chunks_mut(per)
                .enumerate()
                .for_each(|(i, dst)| fill(dst, i * per));
        } else {
            fill(spare, 0);
        }
        // SAFETY: `fill` wrote all n elements.
        unsafe { out.set_len(n) };
        return Ok(Tensor::from_buf(out, &shape));
    }
    let (la, lb, lc) = (
        a.layout().broadcast_to(&shape)?,
        b.layout().broadcast_to(&shape)?,
        c.layout().broadcast_to(&shape)?,
    );
    let n: usize = shape.iter().product();
    let mut out: Vec<T> = crate::storage::try_buffer(op, &shape, n)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The dense fast path (serial and, with the threshold lowered, parallel), a broadcast
    /// operand and a strided view all agree with an index loop.
    #[test]
    fn map_ternary_paths_match_index_loop() {
        crate::kernels::set_min_parallel_elements(1 << 10);
        let f = |u: f64, v: f64, w: f64| u * v - w;
        for n in [7usize, 5000] {
            let va: Vec<f64> = (0..n).map(|i| i as f64 * 0.5).collect();
            let vb: Vec<f64> = (0..n).map(|i| 3.0 - i as f64).collect();
            let vc: Vec<f64> = (0..n).map(|i| (i % 7) as f64).collect();
            let t = |v: &Vec<f64>| Tensor::from_vec(v.clone(), &[n]).unwrap();
            let out = map_ternary::<f64>("t", &t(&va), &t(&vb), &t(&vc), f).unwrap();
            let want: Vec<f64> = (0..n).map(|i| f(va[i], vb[i], vc[i])).collect();
            assert_eq!(out.to_vec::<f64>().unwrap(), want, "n = {n}");
        }
        // (2,3) transposed view, a (3,1) broadcast column and a scalar-like (1,) tensor.
        let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])
            .unwrap()
            .permute(&[1, 0])
            .unwrap();
        let b = Tensor::from_vec(vec![10.0, 20.0, 30.0], &[3, 1]).unwrap();
        let c = Tensor::from_vec(vec![1.0], &[1]).unwrap();
        let out = map_ternary::<f64>("t", &a, &b, &c, f).unwrap();
        assert_eq!(out.dims(), &[3, 2]);
        assert_eq!(
            out.to_vec::<f64>().unwrap(),
            vec![9.0, 39.0, 39.0, 99.0, 89.0, 179.0]
        );
    }
}
