//! Reductions over any set of dims, arg-reductions and scans along one dim.

use super::strided::{for_each_run, gather};
use crate::dtype::Float;
use crate::layout::Layout;
use crate::tensor::Tensor;

/// Folds the elements of `x` over `dims` with `combine`, starting from `init`.
/// The result keeps reduced dims as size 1.
pub fn reduce<T: Float>(
    x: &Tensor,
    dims: &[usize],
    init: T,
    combine: impl Fn(T, T) -> T,
) -> Tensor {
    let l = x.layout();
    let rank = l.rank();
    let mut reduced = vec![false; rank];
    for &d in dims {
        reduced[d] = true;
    }
    let out_shape: Vec<usize> = (0..rank)
        .map(|i| if reduced[i] { 1 } else { l.shape()[i] })
        .collect();
    let out_layout = Layout::contiguous(&out_shape);
    let mut out = vec![init; out_layout.numel()];
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
    let storage = x.storage();
    let src = T::slice(&storage).expect("caller dispatched on dtype");
    for_each_run(
        &shape,
        [&os, &xs],
        [0, l.offset()],
        |[ob, xb], len, [so, sx]| {
            if so == 0 {
                let mut acc = out[ob as usize];
                if sx == 1 {
                    let xb = xb as usize;
                    for &v in &src[xb..xb + len] {
                        acc = combine(acc, v);
                    }
                } else {
                    for i in 0..len as isize {
                        acc = combine(acc, src[(xb + i * sx) as usize]);
                    }
                }
                out[ob as usize] = acc;
            } else if so == 1 && sx == 1 {
                let (ob, xb) = (ob as usize, xb as usize);
                for (o, &v) in out[ob..ob + len].iter_mut().zip(&src[xb..xb + len]) {
                    *o = combine(*o, v);
                }
            } else {
                for i in 0..len as isize {
                    let o = (ob + i * so) as usize;
                    out[o] = combine(out[o], src[(xb + i * sx) as usize]);
                }
            }
        },
    );
    Tensor::from_buf(out, &out_shape)
}

/// Moves `dim` last and returns the rows (contiguous) and the permuted shape.
fn rows_along<T: Float>(x: &Tensor, dim: usize) -> (Vec<T>, Vec<usize>, Vec<usize>) {
    let rank = x.rank();
    let perm: Vec<usize> = (0..rank).filter(|&i| i != dim).chain([dim]).collect();
    let l = x.layout().permute(&perm).expect("valid perm");
    let storage = x.storage();
    let src = T::slice(&storage).expect("caller dispatched on dtype");
    (
        gather(src, l.shape(), l.strides(), l.offset()),
        l.shape().to_vec(),
        perm,
    )
}

/// Index and value of the best element along `dim` (`better(a, b)`: a beats b; NaN wins,
/// the first of equals wins). Returns values and indices with `dim` kept as size 1.
pub fn arg_reduce<T: Float>(
    x: &Tensor,
    dim: usize,
    better: impl Fn(T, T) -> bool,
) -> (Tensor, Vec<usize>) {
    let (rows, pshape, _) = rows_along::<T>(x, dim);
    let n = x.dims()[dim];
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
    let _ = pshape;
    let mut out_shape = x.dims().to_vec();
    out_shape[dim] = 1;
    (Tensor::from_buf(vals, &out_shape), idx)
}

/// Inclusive running sum along `dim`, from the end when `reverse`.
pub fn cumsum<T: Float>(x: &Tensor, dim: usize, reverse: bool) -> Tensor {
    let (mut rows, pshape, perm) = rows_along::<T>(x, dim);
    let n = x.dims()[dim];
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
    let t = Tensor::from_buf(rows, &pshape);
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    let l = t.layout().permute(&inv).expect("valid perm");
    let v = {
        let storage = t.storage();
        let src = T::slice(&storage).expect("same dtype");
        gather(src, l.shape(), l.strides(), l.offset())
    };
    Tensor::from_buf(v, x.dims())
}
