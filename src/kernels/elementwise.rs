//! Elementwise maps with NumPy broadcasting.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::strided::{coalesce, for_each_run};
use super::{worth_parallel, Operand};
use crate::dtype::Float;
use crate::error::Result;
use crate::layout::broadcast_shapes;

super::multiversion! {
    /// `dst[i] = f(a[i])`.
    fn fill1<T: Float, F: Fn(T) -> T>(dst: &mut [MaybeUninit<T>], a: &[T], f: &F) {
        for (o, &u) in dst.iter_mut().zip(a) {
            o.write(f(u));
        }
    }
}

super::multiversion! {
    /// `dst[i] = f(a[i], b[i])`.
    fn fill2<T: Float, F: Fn(T, T) -> T>(dst: &mut [MaybeUninit<T>], a: &[T], b: &[T], f: &F) {
        for (o, (&u, &v)) in dst.iter_mut().zip(a.iter().zip(b)) {
            o.write(f(u, v));
        }
    }
}

/// A scalar function of three arguments for [`map_ternary`]. Closures are one; a type whose
/// `apply` is `#[inline(always)]` (the fused backward rules of unary ops) is inlined into the
/// kernel's AVX copies, which a closure with a large body is not.
///
/// ```
/// use eingrad::kernels::elementwise::Ternary;
/// let f = |a: f64, b: f64, c: f64| a * b + c;
/// assert_eq!(f.apply(2.0, 3.0, 1.0), 7.0);
/// ```
pub trait Ternary<T>: Sync {
    /// The value at `(a, b, c)`.
    fn apply(&self, a: T, b: T, c: T) -> T;
}

impl<T, F: Fn(T, T, T) -> T + Sync> Ternary<T> for F {
    #[inline(always)]
    fn apply(&self, a: T, b: T, c: T) -> T {
        self(a, b, c)
    }
}

super::multiversion! {
    /// `dst[i] = f(a[i], b[i], c[i])`.
    fn fill3<T: Float, F: Ternary<T>>(
        dst: &mut [MaybeUninit<T>],
        a: &[T],
        b: &[T],
        c: &[T],
        f: &F,
    ) {
        for (o, ((&u, &v), &w)) in dst.iter_mut().zip(a.iter().zip(b).zip(c)) {
            o.write(f.apply(u, v, w));
        }
    }
}

/// `f` applied to every element of `x` for op `op`: a row-major buffer of `x`'s shape. An
/// error when the output (as large as a broadcast view's logical size) cannot be allocated.
pub fn map_unary<T: Float>(
    op: &'static str,
    x: Operand<'_, T>,
    f: impl Fn(T) -> T + Sync,
) -> Result<Vec<T>> {
    let (src, l) = (x.data, x.layout);
    let n = l.numel();
    if l.is_contiguous() {
        let mut out: Vec<T> = crate::storage::try_buffer(op, l.shape(), n)?;
        let s = &src[l.offset()..l.offset() + n];
        let fill = |dst: &mut [MaybeUninit<T>], src: &[T]| fill1(dst, src, &f);
        let spare = &mut out.spare_capacity_mut()[..n];
        if worth_parallel(n) {
            let per = n.div_ceil(rayon::current_num_threads() * 4).max(1);
            spare
                .par_chunks_mut(per)
                .zip(s.par_chunks(per))
                .for_each(|(d, x)| fill(d, x));
        } else {
            fill(spare, s);
        }
        // SAFETY: `fill` wrote all n elements.
        unsafe { out.set_len(n) };
        Ok(out)
    } else {
        fill_strided(
            op,
            l.shape(),
            [l.strides()],
            [l.offset()],
            |d, [p], [st]| {
                if st == 1 {
                    fill1(d, &src[p..p + d.len()], &f);
                } else {
                    for (i, o) in d.iter_mut().enumerate() {
                        o.write(f(src[(p as isize + i as isize * st) as usize]));
                    }
                }
            },
        )
    }
}

/// The output of an elementwise op over strided (or broadcast) operands: `n` = ∏`shape`
/// elements in row-major order, written by `run(dst, positions, strides)` once per innermost
/// run of the coalesced shape (`dst.len()` elements; operand k's i-th element at
/// `positions[k] + i·strides[k]`), in parallel over the outermost dim when the output is
/// large. `run` specialises the stride patterns it can (1: a slice for the vectorised fills;
/// 0: a broadcast value).
fn fill_strided<T: Float, const N: usize>(
    op: &'static str,
    shape: &[usize],
    strides: [&[isize]; N],
    offsets: [usize; N],
    run: impl Fn(&mut [MaybeUninit<T>], [usize; N], [isize; N]) + Sync,
) -> Result<Vec<T>> {
    let n: usize = shape.iter().product();
    let mut out: Vec<T> = crate::storage::try_buffer(op, shape, n)?;
    if n == 0 {
        return Ok(out);
    }
    let (cshape, cs) = coalesce(shape, strides);
    let spare = &mut out.spare_capacity_mut()[..n];
    if cshape.is_empty() {
        run(&mut spare[..1], offsets, [0; N]);
    } else {
        let rows = cshape[0];
        let row_len: usize = cshape[1..].iter().product();
        let cs_ref: [&[isize]; N] = std::array::from_fn(|k| cs[k].as_slice());
        let run_rows = |r0: usize, dst: &mut [MaybeUninit<T>]| {
            let mut sub = cshape.clone();
            sub[0] = dst.len() / row_len;
            let at: [usize; N] =
                std::array::from_fn(|k| (offsets[k] as isize + r0 as isize * cs[k][0]) as usize);
            let mut w = 0usize;
            for_each_run(&sub, cs_ref, at, |p, len, st| {
                run(&mut dst[w..w + len], p.map(|x| x as usize), st);
                w += len;
            });
        };
        if worth_parallel(n) && rows > 1 {
            let per = rows.div_ceil(rayon::current_num_threads() * 4).max(1);
            spare
                .par_chunks_mut(per * row_len)
                .enumerate()
                .for_each(|(c, dst)| run_rows(c * per, dst));
        } else {
            run_rows(0, spare);
        }
    }
    // SAFETY: the runs cover the n elements of the coalesced shape exactly once.
    unsafe { out.set_len(n) };
    Ok(out)
}

/// `f(a, b)` over the broadcast shape of `a` and `b`: the row-major buffer and that shape.
pub fn map_binary<T: Float>(
    op: &'static str,
    a: Operand<'_, T>,
    b: Operand<'_, T>,
    f: impl Fn(T, T) -> T + Sync,
) -> Result<(Vec<T>, Vec<usize>)> {
    let (xa, xb) = (a.data, b.data);
    let (la, lb) = (a.layout, b.layout);
    if la.shape() == lb.shape() && la.is_contiguous() && lb.is_contiguous() {
        let n = la.numel();
        let (pa, pb) = (
            &xa[la.offset()..la.offset() + n],
            &xb[lb.offset()..lb.offset() + n],
        );
        let mut out: Vec<T> = crate::storage::try_buffer(op, la.shape(), n)?;
        let fill = |dst: &mut [MaybeUninit<T>], start: usize| {
            let end = start + dst.len();
            fill2(dst, &pa[start..end], &pb[start..end], &f)
        };
        let spare = &mut out.spare_capacity_mut()[..n];
        if worth_parallel(n) {
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
        return Ok((out, la.shape().to_vec()));
    }
    let shape = broadcast_shapes(op, la.shape(), lb.shape())?;
    let ba = la.broadcast_to(&shape)?;
    let bb = lb.broadcast_to(&shape)?;
    let out = fill_strided(
        op,
        &shape,
        [ba.strides(), bb.strides()],
        [ba.offset(), bb.offset()],
        |d, [pa, pb], [sa, sb]| {
            let len = d.len();
            match (sa, sb) {
                (1, 1) => fill2(d, &xa[pa..pa + len], &xb[pb..pb + len], &f),
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
    )?;
    Ok((out, shape))
}

/// `f(a, b, c)` over the broadcast shape of three operands (`where_`, fused backward
/// rules): the row-major buffer and that shape.
pub fn map_ternary<T: Float>(
    op: &'static str,
    a: Operand<'_, T>,
    b: Operand<'_, T>,
    c: Operand<'_, T>,
    f: impl Ternary<T>,
) -> Result<(Vec<T>, Vec<usize>)> {
    let shape = broadcast_shapes(op, a.layout.shape(), b.layout.shape())?;
    let shape = broadcast_shapes(op, &shape, c.layout.shape())?;
    let (xa, xb, xc) = (a.data, b.data, c.data);
    let same =
        |t: &Operand<'_, T>| t.layout.shape() == shape.as_slice() && t.layout.is_contiguous();
    if same(&a) && same(&b) && same(&c) {
        // The common case (a fused backward g·f'(x, y)): three dense slices, one pass.
        let n: usize = shape.iter().product();
        let (oa, ob, oc) = (a.layout.offset(), b.layout.offset(), c.layout.offset());
        let (pa, pb, pc) = (&xa[oa..oa + n], &xb[ob..ob + n], &xc[oc..oc + n]);
        let mut out: Vec<T> = crate::storage::try_buffer(op, &shape, n)?;
        let fill = |dst: &mut [MaybeUninit<T>], start: usize| {
            let end = start + dst.len();
            fill3(dst, &pa[start..end], &pb[start..end], &pc[start..end], &f)
        };
        let spare = &mut out.spare_capacity_mut()[..n];
        if worth_parallel(n) {
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
        return Ok((out, shape));
    }
    let (la, lb, lc) = (
        a.layout.broadcast_to(&shape)?,
        b.layout.broadcast_to(&shape)?,
        c.layout.broadcast_to(&shape)?,
    );
    let out = fill_strided(
        op,
        &shape,
        [la.strides(), lb.strides(), lc.strides()],
        [la.offset(), lb.offset(), lc.offset()],
        |d, [pa, pb, pc], [sa, sb, sc]| {
            let len = d.len();
            if (sa, sb, sc) == (1, 1, 1) {
                fill3(
                    d,
                    &xa[pa..pa + len],
                    &xb[pb..pb + len],
                    &xc[pc..pc + len],
                    &f,
                );
            } else {
                for (i, o) in d.iter_mut().enumerate() {
                    let i = i as isize;
                    o.write(f.apply(
                        xa[(pa as isize + i * sa) as usize],
                        xb[(pb as isize + i * sb) as usize],
                        xc[(pc as isize + i * sc) as usize],
                    ));
                }
            }
        },
    )?;
    Ok((out, shape))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Layout;

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
            let l = Layout::contiguous(&[n]);
            let (a, b, c) = (
                Operand {
                    data: &va,
                    layout: &l,
                },
                Operand {
                    data: &vb,
                    layout: &l,
                },
                Operand {
                    data: &vc,
                    layout: &l,
                },
            );
            let (out, shape) = map_ternary::<f64>("t", a, b, c, f).unwrap();
            let want: Vec<f64> = (0..n).map(|i| f(va[i], vb[i], vc[i])).collect();
            assert_eq!((out, shape), (want, vec![n]), "n = {n}");
        }
        // (2,3) transposed view, a (3,1) broadcast column and a scalar-like (1,) operand.
        let la = Layout::contiguous(&[2, 3]).permute(&[1, 0]).unwrap();
        let (lb, lc) = (Layout::contiguous(&[3, 1]), Layout::contiguous(&[1]));
        let a = Operand {
            data: &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            layout: &la,
        };
        let b = Operand {
            data: &[10.0, 20.0, 30.0],
            layout: &lb,
        };
        let c = Operand {
            data: &[1.0],
            layout: &lc,
        };
        let (out, shape) = map_ternary::<f64>("t", a, b, c, f).unwrap();
        assert_eq!(shape, vec![3, 2]);
        assert_eq!(out, vec![9.0, 39.0, 39.0, 99.0, 89.0, 179.0]);
    }
}
