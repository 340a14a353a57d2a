//! Reductions over any set of dims, arg-reductions and scans along one dim.

use super::strided::{for_each_run, gather, try_gather};
use super::Operand;
use crate::dtype::Float;
use crate::layout::Layout;

/// Folds the elements of `x` over `dims` with `combine`, starting from `init`: a row-major
/// buffer and its shape, which keeps the reduced dims as size 1.
pub fn reduce<T: Float>(
    x: Operand<'_, T>,
    dims: &[usize],
    init: T,
    combine: impl Fn(T, T) -> T + Sync,
) -> crate::Result<(Vec<T>, Vec<usize>)> {
    let l = x.layout;
    let rank = l.rank();
    let mut reduced = vec![false; rank];
    for &d in dims {
        reduced[d] = true;
    }
    let out_shape: Vec<usize> = (0..rank)
        .map(|i| if reduced[i] { 1 } else { l.shape()[i] })
        .collect();
    let out_layout = Layout::contiguous(&out_shape);
    // An empty input can reduce to a large output (its other dims): allocate fallibly.
    let mut out = crate::storage::try_filled("reduce", &out_shape, out_layout.numel(), init)?;
    // Walk x in memory order: the dim with the smallest stride innermost (reduced or not).
    let mut order: Vec<usize> = (0..rank).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(l.strides()[i].unsigned_abs()));
    let shape: Vec<usize> = order.iter().map(|&i| l.shape()[i]).collect();
    let xs: Vec<isize> = order.iter().map(|&i| l.strides()[i]).collect();
    let os: Vec<isize> = order
        .iter()
        .map(|&i| {
            if reduced[i] {
                0
            } else {
                out_layout.strides()[i]
            }
        })
        .collect();
    let src = x.data;
    let dst = OutPtr(out.as_mut_ptr());
    // One block of rows of the outermost walked dim; blocks of a kept dim write disjoint
    // output elements, so they may run in parallel.
    let run_block = |r0: usize, r1: usize| {
        let mut sub = shape.clone();
        let (ob0, xb0) = if sub.is_empty() {
            (0, l.offset() as isize)
        } else {
            sub[0] = r1 - r0;
            (
                r0 as isize * os[0],
                l.offset() as isize + r0 as isize * xs[0],
            )
        };
        let out = dst;
        let n = sub.len();
        if n >= 2 && os[n - 1] == 1 && xs[n - 1] == 1 && os[n - 2] == 0 && sub[n - 1] >= 4 {
            // A kept contiguous run under a reduced dim: fold whole (reduced × run) tiles at
            // once, so the loads of many source rows are in flight together.
            let (rows, row_stride, len) = (sub[n - 2], xs[n - 2], sub[n - 1]);
            let tile = |ob: isize, xb: isize| {
                // SAFETY: as below; a tile's output run belongs to this block alone.
                let o = unsafe { std::slice::from_raw_parts_mut(out.0.offset(ob), len) };
                fold_tile(o, src, xb, rows, row_stride, &combine);
            };
            for_each_run(
                &sub[..n - 2],
                [&os[..n - 2], &xs[..n - 2]],
                [ob0 as usize, xb0 as usize],
                |[ob, xb], run, [so, sx]| {
                    for i in 0..run as isize {
                        tile(ob + i * so, xb + i * sx);
                    }
                },
            );
            return;
        }
        for_each_run(
            &sub,
            [&os, &xs],
            [ob0 as usize, xb0 as usize],
            |[ob, xb], len, [so, sx]| {
                // SAFETY: `out` has one element per kept position; `ob + i·so` stays inside it,
                // and concurrent blocks touch different positions of the kept outer dim.
                unsafe {
                    if so == 0 {
                        let o = out.0.offset(ob);
                        let mut acc = *o;
                        if sx == 1 {
                            // Eight independent accumulators (then folded in a fixed order),
                            // so the loop vectorises; a single one is a chain of dependent
                            // adds.
                            let xb = xb as usize;
                            let run = &src[xb..xb + len];
                            let mut lanes = [init; 8];
                            let mut chunks = run.chunks_exact(8);
                            for c in &mut chunks {
                                for k in 0..8 {
                                    lanes[k] = combine(lanes[k], c[k]);
                                }
                            }
                            let folded = combine(
                                combine(combine(lanes[0], lanes[4]), combine(lanes[1], lanes[5])),
                                combine(combine(lanes[2], lanes[6]), combine(lanes[3], lanes[7])),
                            );
                            acc = combine(acc, folded);
                            for &v in chunks.remainder() {
                                acc = combine(acc, v);
                            }
                        } else {
                            for i in 0..len as isize {
                                acc = combine(acc, src[(xb + i * sx) as usize]);
                            }
                        }
                        *o = acc;
                    } else if so == 1 && sx == 1 {
                        let o = std::slice::from_raw_parts_mut(out.0.offset(ob), len);
                        let xb = xb as usize;
                        for (o, &v) in o.iter_mut().zip(&src[xb..xb + len]) {
                            *o = combine(*o, v);
                        }
                    } else {
                        for i in 0..len as isize {
                            let o = out.0.offset(ob + i * so);
                            *o = combine(*o, src[(xb + i * sx) as usize]);
                        }
                    }
                }
            },
        );
    };
    let total: usize = shape.iter().product();
    let rows = shape.first().copied().unwrap_or(1);
    if super::worth_parallel(total / 4) && rows >= 2 && os.first().is_some_and(|&s| s != 0) {
        use rayon::prelude::*;
        let per = rows.div_ceil(rayon::current_num_threads() * 2).max(1);
        (0..rows.div_ceil(per))
            .into_par_iter()
            .for_each(|c| run_block(c * per, ((c + 1) * per).min(rows)));
    } else if total > 0 {
        run_block(0, rows);
    }
    Ok((out, out_shape))
}

/// `out[c] = combine(out[c], src[xb + r·row_stride + c])` for every `r < rows`, walked in
/// column chunks so that each chunk's accumulators stay in registers while the rows stream.
fn fold_tile<T: Float>(
    out: &mut [T],
    src: &[T],
    xb: isize,
    rows: usize,
    row_stride: isize,
    combine: &impl Fn(T, T) -> T,
) {
    const W: usize = 32;
    // Rows far apart each sit on their own page, where hardware prefetch stops (ijjk->ik
    // reads 4096 rows of 64 values): fetch a few rows ahead by hand.
    const AHEAD: usize = 4;
    let len = out.len();
    let row = |r: usize, c0: usize, w: usize| {
        let start = (xb + r as isize * row_stride) as usize + c0;
        &src[start..start + w]
    };
    let mut c0 = 0;
    while c0 + W <= len {
        let mut acc: [T; W] = out[c0..c0 + W].try_into().expect("W elements");
        for r in 0..rows {
            if r + AHEAD < rows {
                let next = row(r + AHEAD, c0, W);
                crate::kernels::prefetch(next.as_ptr() as *const u8);
                crate::kernels::prefetch(&next[W - 1] as *const T as *const u8);
            }
            let x: &[T; W] = row(r, c0, W).try_into().expect("W elements");
            for l in 0..W {
                acc[l] = combine(acc[l], x[l]);
            }
        }
        out[c0..c0 + W].copy_from_slice(&acc);
        c0 += W;
    }
    if c0 < len {
        let w = len - c0;
        let acc = &mut out[c0..];
        for r in 0..rows {
            for (a, &x) in acc.iter_mut().zip(row(r, c0, w)) {
                *a = combine(*a, x);
            }
        }
    }
}

#[derive(Clone, Copy)]
struct OutPtr<T>(*mut T);
// SAFETY: only used for disjoint writes from parallel blocks (see `reduce`).
unsafe impl<T> Send for OutPtr<T> {}
unsafe impl<T> Sync for OutPtr<T> {}

/// Moves `dim` last and returns the rows (contiguous, copied for op `op`: an error when they
/// cannot be allocated), the permuted shape and the permutation.
fn rows_along<T: Float>(
    op: &'static str,
    x: Operand<'_, T>,
    dim: usize,
) -> crate::Result<(Vec<T>, Vec<usize>, Vec<usize>)> {
    let rank = x.layout.rank();
    let perm: Vec<usize> = (0..rank).filter(|&i| i != dim).chain([dim]).collect();
    let l = x.layout.permute(&perm)?;
    let rows = try_gather(op, x.data, l.shape(), l.strides(), l.offset())?;
    Ok((rows, l.shape().to_vec(), perm))
}

/// Index and value of the best element along `dim` (`better(a, b)`: a beats b; NaN wins,
/// the first of equals wins), for op `op`. Returns the values (a row-major buffer), their
/// shape (`dim` kept as size 1) and the indices.
pub fn arg_reduce<T: Float>(
    op: &'static str,
    x: Operand<'_, T>,
    dim: usize,
    better: impl Fn(T, T) -> bool,
) -> crate::Result<(Vec<T>, Vec<usize>, Vec<usize>)> {
    let (rows, _, _) = rows_along::<T>(op, x, dim)?;
    let n = x.layout.shape()[dim];
    let m = rows.len().checked_div(n).unwrap_or(0);
    let mut vals = Vec::with_capacity(m);
    let mut idx = Vec::with_capacity(m);
    for r in 0..m {
        let row = &rows[r * n..(r + 1) * n];
        let (mut bi, mut bv) = (0usize, row[0]);
        for (i, &v) in row.iter().enumerate().skip(1) {
            if !bv.is_nan() && (v.is_nan() || better(v, bv)) {
                bi = i;
                bv = v;
            }
        }
        vals.push(bv);
        idx.push(bi);
    }
    let mut out_shape = x.layout.shape().to_vec();
    out_shape[dim] = 1;
    Ok((vals, out_shape, idx))
}

/// Inclusive running sum along `dim`, from the end when `reverse`: a row-major buffer of
/// `x`'s shape (an error when it cannot be allocated).
pub fn cumsum<T: Float>(x: Operand<'_, T>, dim: usize, reverse: bool) -> crate::Result<Vec<T>> {
    let (mut rows, pshape, perm) = rows_along::<T>("cumsum", x, dim)?;
    let n = x.layout.shape()[dim];
    if n > 0 {
        for row in rows.chunks_mut(n) {
            let mut acc = T::zero();
            if reverse {
                for v in row.iter_mut().rev() {
                    acc += *v;
                    *v = acc;
                }
            } else {
                for v in row.iter_mut() {
                    acc += *v;
                    *v = acc;
                }
            }
        }
    }
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    let l = Layout::contiguous(&pshape).permute(&inv)?;
    Ok(gather(&rows, l.shape(), l.strides(), l.offset()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reduced dim above a kept contiguous run goes through `fold_tile`: full 32-wide
    /// chunks plus a tail, with a non-additive combine.
    #[test]
    fn tiled_fold_matches_naive_max() {
        let (a, b, c) = (3usize, 5usize, 70usize);
        let v: Vec<f64> = (0..a * b * c)
            .map(|i| ((i * 7919) % 1013) as f64 - 500.0)
            .collect();
        let l = Layout::contiguous(&[a, b, c]);
        let x = Operand {
            data: &v,
            layout: &l,
        };
        let r = reduce::<f64>(x, &[1], f64::NEG_INFINITY, f64::max)
            .unwrap()
            .0;
        for i in 0..a {
            for k in 0..c {
                let want = (0..b)
                    .map(|j| v[(i * b + j) * c + k])
                    .fold(f64::NEG_INFINITY, f64::max);
                assert_eq!(r[i * c + k], want, "({i}, {k})");
            }
        }
    }

    /// Large enough to take the parallel path (threshold lowered to 2^12): blocks of the kept
    /// outer dim in parallel.
    #[test]
    fn parallel_reduce_matches_naive_sum() {
        crate::kernels::set_min_parallel_elements(1 << 12);
        let (a, b, c) = (64usize, 48usize, 50usize);
        let v: Vec<f64> = (0..a * b * c)
            .map(|i| ((i * 7919) % 1000) as f64 / 7.0)
            .collect();
        let l = Layout::contiguous(&[a, b, c]);
        let x = Operand {
            data: &v,
            layout: &l,
        };
        for dims in [vec![1usize], vec![2], vec![1, 2], vec![0]] {
            let r = reduce::<f64>(x, &dims, 0.0, |p, q| p + q).unwrap().0;
            let keep = |d: usize, i: usize| if dims.contains(&d) { 0 } else { i };
            let (sb, sc) = (
                if dims.contains(&1) { 1 } else { b },
                if dims.contains(&2) { 1 } else { c },
            );
            let mut want = vec![0.0; r.len()];
            for i in 0..a {
                for j in 0..b {
                    for k in 0..c {
                        let o = (keep(0, i) * sb + keep(1, j)) * sc + keep(2, k);
                        want[o] += v[(i * b + j) * c + k];
                    }
                }
            }
            for (g, w) in r.iter().zip(&want) {
                assert!((g - w).abs() < 1e-9 * w.abs().max(1.0), "dims {dims:?}");
            }
        }
    }
}
