//! Row kernels: layer normalisation and softmax over the last (contiguous) dim of a
//! row-major buffer, forward and first-order backward, each one pass per row. Rows are split
//! across rayon threads once the buffer has [`super::min_parallel_elements`] elements.
//!
//! Sums run in eight independent lanes so that the compiler can vectorise them (a single
//! accumulator would be a chain of dependent adds).

use rayon::prelude::*;

use crate::dtype::Float;

/// Σ f(i) for i in 0..n in eight lanes.
#[inline(always)]
fn lanes_sum<T: Float>(n: usize, f: impl Fn(usize) -> T) -> T {
    let mut acc = [T::zero(); 8];
    let full = n / 8 * 8;
    let mut i = 0;
    while i < full {
        for (k, a) in acc.iter_mut().enumerate() {
            *a += f(i + k);
        }
        i += 8;
    }
    let mut tail = T::zero();
    for j in full..n {
        tail += f(j);
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

fn parallel(len: usize) -> bool {
    len >= super::min_parallel_elements() && rayon::current_num_threads() > 1
}

/// Layer norm of each length-`n` row of `x`: `y = (x − μ)·ρ·w + b` with `ρ = 1/√(σ² + eps)`
/// (biased variance, two passes). Returns `y` and the per-row `μ` and `ρ`.
///
/// ```
/// use eingrad::kernels::rows::layer_norm_forward;
/// let (y, mean, rstd) = layer_norm_forward(&[1.0f64, 3.0], 2, None, None, 0.0);
/// assert_eq!((y, mean, rstd), (vec![-1.0, 1.0], vec![2.0], vec![1.0]));
/// ```
pub fn layer_norm_forward<T: Float>(
    x: &[T],
    n: usize,
    w: Option<&[T]>,
    b: Option<&[T]>,
    eps: f64,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let rows = x.len().checked_div(n).unwrap_or(0);
    let mut y = vec![T::zero(); rows * n];
    let mut stats = vec![(T::zero(), T::zero()); rows];
    let eps = T::of(eps);
    let inv_n = T::one() / T::of(n as f64);
    type Row<'a, T> = (&'a [T], (&'a mut [T], &'a mut (T, T)));
    let row = |(xr, (yr, st)): Row<'_, T>| {
        let mean = lanes_sum(n, |i| xr[i]) * inv_n;
        let var = lanes_sum(n, |i| {
            let d = xr[i] - mean;
            d * d
        }) * inv_n;
        let rstd = T::one() / (var + eps).sqrt();
        match (w, b) {
            (Some(w), Some(b)) => {
                for i in 0..n {
                    yr[i] = (xr[i] - mean) * rstd * w[i] + b[i];
                }
            }
            (Some(w), None) => {
                for i in 0..n {
                    yr[i] = (xr[i] - mean) * rstd * w[i];
                }
            }
            (None, Some(b)) => {
                for i in 0..n {
                    yr[i] = (xr[i] - mean) * rstd + b[i];
                }
            }
            (None, None) => {
                for i in 0..n {
                    yr[i] = (xr[i] - mean) * rstd;
                }
            }
        }
        *st = (mean, rstd);
    };
    if rows > 0 {
        if parallel(x.len()) {
            x.par_chunks(n)
                .zip(y.par_chunks_mut(n).zip(stats.par_iter_mut()))
                .for_each(row);
        } else {
            x.chunks(n)
                .zip(y.chunks_mut(n).zip(stats.iter_mut()))
                .for_each(row);
        }
    }
    let (mean, rstd) = stats.into_iter().unzip();
    (y, mean, rstd)
}

/// Gradients of [`layer_norm_forward`] for the output gradient `g`: `dx` (if `want_dx`),
/// and the weight and bias gradients summed over rows (if `want_dw` / `want_db`). With
/// `x̂ = (x − μ)ρ` and `ĝ = g·w`: `dx = ρ(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))`, `dw = Σ g·x̂`,
/// `db = Σ g`.
///
/// ```
/// use eingrad::kernels::rows::{layer_norm_backward, layer_norm_forward};
/// let x = [1.0f64, 3.0];
/// let (_, mean, rstd) = layer_norm_forward(&x, 2, None, None, 0.0);
/// let (dx, _, db) = layer_norm_backward(&[1.0, 1.0], &x, &mean, &rstd, 2, None, true, false, true);
/// assert_eq!(dx.unwrap(), vec![0.0, 0.0]); // a shift of y is orthogonal to the normalised rows
/// assert_eq!(db.unwrap(), vec![1.0, 1.0]);
/// ```
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn layer_norm_backward<T: Float>(
    g: &[T],
    x: &[T],
    mean: &[T],
    rstd: &[T],
    n: usize,
    w: Option<&[T]>,
    want_dx: bool,
    want_dw: bool,
    want_db: bool,
) -> (Option<Vec<T>>, Option<Vec<T>>, Option<Vec<T>>) {
    let rows = mean.len();
    let inv_n = T::one() / T::of(n.max(1) as f64);
    let mut dx = if want_dx {
        Some(vec![T::zero(); rows * n])
    } else {
        None
    };
    // Rows in blocks: each block adds its rows' dw/db into its own partial sums.
    let blocks = if parallel(x.len()) {
        rayon::current_num_threads().min(rows.max(1))
    } else {
        1
    };
    let per = rows.div_ceil(blocks.max(1)).max(1);
    let block = |bi: usize, dx_block: Option<&mut [T]>| -> (Vec<T>, Vec<T>) {
        let mut dw = if want_dw {
            vec![T::zero(); n]
        } else {
            Vec::new()
        };
        let mut db = if want_db {
            vec![T::zero(); n]
        } else {
            Vec::new()
        };
        let r0 = bi * per;
        let r1 = (r0 + per).min(rows);
        let mut dx_block = dx_block;
        for r in r0..r1 {
            let (xr, gr) = (&x[r * n..(r + 1) * n], &g[r * n..(r + 1) * n]);
            let (mu, rho) = (mean[r], rstd[r]);
            if want_dw {
                for i in 0..n {
                    dw[i] += gr[i] * (xr[i] - mu) * rho;
                }
            }
            if want_db {
                for i in 0..n {
                    db[i] += gr[i];
                }
            }
            if let Some(d) = dx_block.as_deref_mut() {
                let dr = &mut d[(r - r0) * n..(r - r0 + 1) * n];
                let gw = |i: usize| match w {
                    Some(w) => gr[i] * w[i],
                    None => gr[i],
                };
                let a = lanes_sum(n, gw) * inv_n;
                let c = lanes_sum(n, |i| gw(i) * (xr[i] - mu) * rho) * inv_n;
                for i in 0..n {
                    dr[i] = rho * (gw(i) - a - (xr[i] - mu) * rho * c);
                }
            }
        }
        (dw, db)
    };
    let partials: Vec<(Vec<T>, Vec<T>)> = if blocks > 1 {
        match dx.as_mut() {
            Some(d) => d
                .par_chunks_mut(per * n)
                .enumerate()
                .map(|(bi, chunk)| block(bi, Some(chunk)))
                .collect(),
            None => (0..blocks)
                .into_par_iter()
                .map(|bi| block(bi, None))
                .collect(),
        }
    } else {
        vec![block(0, dx.as_deref_mut())]
    };
    let fold = |pick: fn(&(Vec<T>, Vec<T>)) -> &Vec<T>| {
        let mut out = vec![T::zero(); n];
        for p in &partials {
            for (o, v) in out.iter_mut().zip(pick(p)) {
                *o += *v;
            }
        }
        out
    };
    let dw = want_dw.then(|| fold(|p| &p.0));
    let db = want_db.then(|| fold(|p| &p.1));
    (dx, dw, db)
}

/// Softmax of each length-`n` row: `y = exp(x − max)/Σ exp(x − max)`; a row that is all −∞
/// gives zeros (not NaN).
///
/// ```
/// let y = eingrad::kernels::rows::softmax_forward(&[0.0f64, 0.0, f64::NEG_INFINITY, f64::NEG_INFINITY], 2);
/// assert_eq!(y, vec![0.5, 0.5, 0.0, 0.0]);
/// ```
pub fn softmax_forward<T: Float>(x: &[T], n: usize) -> Vec<T> {
    let mut y = vec![T::zero(); x.len()];
    if n == 0 {
        return y;
    }
    let row = |(xr, yr): (&[T], &mut [T])| {
        let m = xr.iter().fold(T::neg_infinity(), |m, &v| m.max(v));
        if m == T::neg_infinity() {
            yr.iter_mut().for_each(|v| *v = T::zero());
            return;
        }
        for i in 0..n {
            yr[i] = super::special::exp(xr[i] - m);
        }
        let s = lanes_sum(n, |i| yr[i]);
        let inv = T::one() / s;
        yr.iter_mut().for_each(|v| *v *= inv);
    };
    if parallel(x.len()) {
        x.par_chunks(n).zip(y.par_chunks_mut(n)).for_each(row);
    } else {
        x.chunks(n).zip(y.chunks_mut(n)).for_each(row);
    }
    y
}

/// The softmax Jacobian (symmetric) applied to `v` row by row: `y ⊙ (v − Σ y·v)`; strong
/// zeros: an entry where `y` is 0 stays 0.
///
/// ```
/// let d = eingrad::kernels::rows::softmax_backward(&[1.0f64, 0.0], &[0.5, 0.5], 2);
/// assert_eq!(d, vec![0.25, -0.25]);
/// ```
pub fn softmax_backward<T: Float>(v: &[T], y: &[T], n: usize) -> Vec<T> {
    let mut out = vec![T::zero(); y.len()];
    if n == 0 {
        return out;
    }
    let row = |((vr, yr), or): ((&[T], &[T]), &mut [T])| {
        let dot = lanes_sum(n, |i| vr[i] * yr[i]);
        for i in 0..n {
            or[i] = if yr[i] == T::zero() {
                T::zero()
            } else {
                yr[i] * (vr[i] - dot)
            };
        }
    };
    if parallel(y.len()) {
        v.par_chunks(n)
            .zip(y.par_chunks(n))
            .zip(out.par_chunks_mut(n))
            .for_each(row);
    } else {
        v.chunks(n)
            .zip(y.chunks(n))
            .zip(out.chunks_mut(n))
            .for_each(row);
    }
    out
}
