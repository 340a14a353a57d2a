//! Walking N strided operands that share one logical shape, a contiguous run at a time.

use std::mem::MaybeUninit;

use super::Operand;

/// Merges adjacent dims that are contiguous with each other in every operand, and drops
/// size-1 dims. Returns the reduced shape and per-operand strides.
pub fn coalesce<const N: usize>(
    shape: &[usize],
    strides: [&[isize]; N],
) -> (Vec<usize>, [Vec<isize>; N]) {
    let mut out_shape: Vec<usize> = Vec::with_capacity(shape.len());
    let mut out_strides: [Vec<isize>; N] = std::array::from_fn(|_| Vec::with_capacity(shape.len()));
    for (i, &d) in shape.iter().enumerate() {
        if d == 1 {
            continue;
        }
        if let Some(&last) = out_shape.last() {
            let mergeable = (0..N).all(|k| {
                let prev = *out_strides[k].last().unwrap_or(&0);
                prev == strides[k][i] * d as isize
            });
            if mergeable {
                let n = out_shape.len() - 1;
                out_shape[n] = last * d;
                for k in 0..N {
                    out_strides[k][n] = strides[k][i];
                }
                continue;
            }
        }
        out_shape.push(d);
        for k in 0..N {
            out_strides[k].push(strides[k][i]);
        }
    }
    (out_shape, out_strides)
}

/// Calls `f(bases, len, inner_strides)` once per innermost run, covering every element of
/// `shape` in row-major order. `bases` are storage offsets of the run's first element.
pub fn for_each_run<const N: usize>(
    shape: &[usize],
    strides: [&[isize]; N],
    offsets: [usize; N],
    mut f: impl FnMut([isize; N], usize, [isize; N]),
) {
    if shape.contains(&0) {
        return;
    }
    let (shape, strides) = coalesce(shape, strides);
    let base: [isize; N] = std::array::from_fn(|k| offsets[k] as isize);
    if shape.is_empty() {
        f(base, 1, [0; N]);
        return;
    }
    let r = shape.len();
    let inner = shape[r - 1];
    let inner_strides: [isize; N] = std::array::from_fn(|k| strides[k][r - 1]);
    let mut idx = vec![0usize; r - 1];
    let mut cur = base;
    loop {
        f(cur, inner, inner_strides);
        // increment the outer multi-index
        let mut d = r - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            for k in 0..N {
                cur[k] += strides[k][d];
            }
            if idx[d] < shape[d] {
                break;
            }
            for k in 0..N {
                cur[k] -= strides[k][d] * shape[d] as isize;
            }
            idx[d] = 0;
        }
    }
}

/// Copies the elements a layout selects into a new row-major buffer.
pub fn gather<T: Copy>(src: &[T], shape: &[usize], strides: &[isize], offset: usize) -> Vec<T> {
    let n: usize = shape.iter().product();
    gather_to(crate::storage::buffer(n), src, shape, strides, offset)
}

/// [`gather`] for op `op`, or an error when the copy (as large as a broadcast view's
/// logical size) cannot be allocated.
pub fn try_gather<T: Copy>(
    op: &'static str,
    src: &[T],
    shape: &[usize],
    strides: &[isize],
    offset: usize,
) -> crate::Result<Vec<T>> {
    let n: usize = shape.iter().product();
    let out = crate::storage::try_buffer(op, shape, n)?;
    Ok(gather_to(out, src, shape, strides, offset))
}

/// [`gather`] into `out`, an empty buffer with room for the elements.
fn gather_to<T: Copy>(
    mut out: Vec<T>,
    src: &[T],
    shape: &[usize],
    strides: &[isize],
    offset: usize,
) -> Vec<T> {
    let n: usize = shape.iter().product();
    gather_into(
        &mut out.spare_capacity_mut()[..n],
        src,
        shape,
        strides,
        offset,
    );
    // SAFETY: `gather_into` wrote all n elements.
    unsafe { out.set_len(n) };
    out
}

/// Writes the elements of `src` that `shape`/`strides`/`offset` select into `dst`, in
/// row-major order. Short contiguous innermost runs (e.g. the 3×3 kernel window of an
/// unfolded image) are copied as rows of a 2-d tile, one loop over the next dim out, instead
/// of one run callback each.
fn gather_into<T: Copy>(
    dst: &mut [MaybeUninit<T>],
    src: &[T],
    shape: &[usize],
    strides: &[isize],
    offset: usize,
) {
    let (cshape, [cstrides]) = coalesce(shape, [strides]);
    let r = cshape.len();
    let mut w = 0usize;
    if r >= 2 && cstrides[r - 1] == 1 && cshape[r - 1] < 64 && !cshape.contains(&0) {
        let inner = cshape[r - 1];
        for_each_run(
            &cshape[..r - 1],
            [&cstrides[..r - 1]],
            [offset],
            |[b], len, [s]| {
                for i in 0..len as isize {
                    let start = (b + i * s) as usize;
                    for (o, &v) in dst[w..w + inner].iter_mut().zip(&src[start..start + inner]) {
                        o.write(v);
                    }
                    w += inner;
                }
            },
        );
        return;
    }
    for_each_run(&cshape, [&cstrides], [offset], |[b], len, [s]| {
        if s == 1 {
            let b = b as usize;
            for (o, &v) in dst[w..w + len].iter_mut().zip(&src[b..b + len]) {
                o.write(v);
            }
        } else {
            for (i, o) in dst[w..w + len].iter_mut().enumerate() {
                o.write(src[(b + i as isize * s) as usize]);
            }
        }
        w += len;
    });
}

/// [`try_gather`] split across rayon threads along the outermost dim when the copy is large.
pub fn par_gather<T: Copy + Send + Sync>(
    op: &'static str,
    src: &[T],
    shape: &[usize],
    strides: &[isize],
    offset: usize,
) -> crate::Result<Vec<T>> {
    let n: usize = shape.iter().product();
    if !super::worth_parallel(n / 4) || shape.is_empty() || shape[0] < 2 {
        return try_gather(op, src, shape, strides, offset);
    }
    let rows = shape[0];
    let row_len = n / rows;
    let per = rows.div_ceil(rayon::current_num_threads() * 2).max(1);
    let mut out: Vec<T> = crate::storage::try_buffer(op, shape, n)?;
    {
        use rayon::prelude::*;
        let spare = &mut out.spare_capacity_mut()[..n];
        spare
            .par_chunks_mut(per * row_len)
            .enumerate()
            .for_each(|(c, dst)| {
                let r0 = c * per;
                let mut sub = shape.to_vec();
                sub[0] = dst.len() / row_len;
                let base = (offset as isize + r0 as isize * strides[0]) as usize;
                gather_into(dst, src, &sub, strides, base);
            });
    }
    // SAFETY: the chunks above cover all n elements, each written once.
    unsafe { out.set_len(n) };
    Ok(out)
}

/// The reverse of [`gather`] into a strided destination: copies the elements `src` selects,
/// in row-major order, to `dst[start + i * step]` (a row of a row-major matrix for
/// `step == 1`, a column for `step` = its row length). Errors, naming `op`, when `src`'s
/// layout reaches outside its buffer or `dst` has no room for the last element.
///
/// ```
/// use eingrad::{kernels::{strided::scatter, Operand}, Layout};
/// let t = Layout::new(vec![2, 2], vec![1, 2], 0); // a 2×2 matrix, read transposed: 1 3 2 4
/// let src = Operand { data: &[1, 2, 3, 4], layout: &t };
/// let mut dst = [0; 9];
/// scatter("demo", src, &mut dst, 1, 2).unwrap();
/// assert_eq!(dst, [0, 1, 0, 3, 0, 2, 0, 4, 0]);
/// assert!(scatter("demo", src, &mut dst, 3, 2).is_err()); // the last would land at 9
/// ```
pub fn scatter<T: Copy>(
    op: &'static str,
    src: Operand<'_, T>,
    dst: &mut [T],
    start: usize,
    step: usize,
) -> crate::Result<()> {
    let (shape, strides) = (src.layout.shape(), src.layout.strides());
    let n: usize = shape.iter().product();
    if n == 0 {
        return Ok(());
    }
    let (lo, hi) = src.layout.storage_span();
    if lo > hi || hi > src.data.len() {
        return Err(crate::Error::arg(
            op,
            "src",
            format!(
                "its layout reaches elements {lo}..{hi} of a buffer of {}",
                src.data.len()
            ),
        ));
    }
    let last = (n - 1).checked_mul(step).and_then(|e| e.checked_add(start));
    if last.is_none_or(|e| e >= dst.len()) {
        return Err(crate::Error::arg(
            op,
            "dst",
            format!(
                "{n} elements from {start} by {step} do not fit in {}",
                dst.len()
            ),
        ));
    }
    // The destination's strides: row-major over `shape`, scaled by `step`.
    let mut dst_strides = vec![0isize; shape.len()];
    let mut acc = step as isize;
    for d in (0..shape.len()).rev() {
        dst_strides[d] = acc;
        acc = acc.wrapping_mul(shape[d] as isize);
    }
    for_each_run(
        shape,
        [strides, &dst_strides],
        [src.layout.offset(), start],
        |[s, d], len, [ss, ds]| {
            if ss == 1 && ds == 1 {
                let (s, d) = (s as usize, d as usize);
                dst[d..d + len].copy_from_slice(&src.data[s..s + len]);
            } else {
                for i in 0..len as isize {
                    dst[(d + i * ds) as usize] = src.data[(s + i * ss) as usize];
                }
            }
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Layout;

    #[test]
    fn coalesce_merges_contiguous_dims() {
        let (s, [st]) = coalesce(&[2, 3, 4], [&[12, 4, 1]]);
        assert_eq!((s, st), (vec![24], vec![1]));
    }

    /// Short contiguous inner runs take the 2-d tile path; compare with index arithmetic.
    #[test]
    fn gather_with_short_inner_runs_matches_indexing() {
        // A (3,5,4,9) contiguous buffer viewed as (3,4,5,9): inner runs of 9.
        let src: Vec<u32> = (0..3 * 5 * 4 * 9).collect();
        let (shape, strides) = ([3usize, 4, 5, 9], [180isize, 9, 36, 1]);
        let mut want = Vec::new();
        for a in 0..3 {
            for b in 0..4 {
                for c in 0..5 {
                    for d in 0..9 {
                        want.push(src[a * 180 + b * 9 + c * 36 + d]);
                    }
                }
            }
        }
        assert_eq!(gather(&src, &shape, &strides, 0), want);
        crate::kernels::set_min_parallel_elements(16);
        assert_eq!(par_gather("test", &src, &shape, &strides, 0).unwrap(), want);
        // An offset view with a size-1 dim and a scalar.
        assert_eq!(
            gather(&src, &[1, 2, 3], &[0, 36, 1], 5),
            vec![5, 6, 7, 41, 42, 43]
        );
        assert_eq!(gather(&src, &[], &[], 7), vec![7]);
    }

    #[test]
    fn par_gather_matches_gather() {
        let src: Vec<u32> = (0..300_000).collect();
        let (shape, strides) = ([50, 60, 100], [6000isize, 1, 60]);
        assert_eq!(
            par_gather("test", &src, &shape, &strides, 0).unwrap(),
            gather(&src, &shape, &strides, 0)
        );
    }

    #[test]
    fn scatter_undoes_gather_into_rows_and_columns() {
        // A permuted (4,3,5) view of a (3,4,5) buffer, written as row 2 of a 4×60 matrix
        // and as column 1 of a 60×3 one.
        let src: Vec<u32> = (0..60).collect();
        let view = Layout::new(vec![4, 3, 5], vec![5, 20, 1], 0);
        let want = gather(&src, view.shape(), view.strides(), 0);
        let x = Operand {
            data: &src,
            layout: &view,
        };
        let mut rows = vec![0u32; 4 * 60];
        scatter("test", x, &mut rows, 2 * 60, 1).unwrap();
        assert_eq!(&rows[120..180], want.as_slice());
        assert!(rows[..120].iter().chain(&rows[180..]).all(|&v| v == 0));
        let mut cols = vec![0u32; 60 * 3];
        scatter("test", x, &mut cols, 1, 3).unwrap();
        let col: Vec<u32> = cols.iter().skip(1).step_by(3).copied().collect();
        assert_eq!(col, want);
        // a scalar at offset 7
        let scalar = Layout::new(vec![], vec![], 7);
        let mut one = [0u32; 2];
        let x7 = Operand {
            data: &src,
            layout: &scalar,
        };
        scatter("test", x7, &mut one, 1, 1).unwrap();
        assert_eq!(one, [0, 7]);
        // no room, or a layout past its buffer: errors naming the argument
        let e = scatter("test", x, &mut cols, 3, 3).unwrap_err().to_string();
        assert!(e.contains("test") && e.contains("`dst`"), "{e}");
        let past = Layout::new(vec![2], vec![60], 0);
        let e = scatter(
            "test",
            Operand {
                data: &src,
                layout: &past,
            },
            &mut one,
            0,
            1,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`src`"), "{e}");
    }

    #[test]
    fn gather_transposed() {
        let src = [0, 1, 2, 3, 4, 5];
        assert_eq!(gather(&src, &[3, 2], &[1, 3], 0), vec![0, 3, 1, 4, 2, 5]);
    }
}
