//! Row kernels: layer normalisation and softmax over the last (contiguous) dim of a
//! row-major buffer, forward and first-order backward, each one pass per row. Rows are split
//! across rayon threads once the buffer has [`super::min_parallel_elements`] elements.
//!
//! Sums run in eight independent lanes so that the compiler can vectorise them (a single
//! accumulator would be a chain of dependent adds).

use rayon::prelude::*;

use crate::dtype::Float;

/// Σ f(a[i], b[i]) in sixteen independent lanes (folded in a fixed order), over slices so
/// that the loop has no bounds checks and vectorises.
#[inline(always)]
fn lanes_sum2<T: Float>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> T {
    const L: usize = 16;
    let mut acc = [T::zero(); L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..L {
            acc[k] += f(x[k], y[k]);
        }
    }
    let mut w = L;
    while w > 1 {
        w /= 2;
        for k in 0..w {
            let hi = acc[k + w];
            acc[k] += hi;
        }
    }
    let mut tail = T::zero();
    for (&x, &y) in ra.iter().zip(rb) {
        tail += f(x, y);
    }
    acc[0] + tail
}

/// Σ a[i], as [`lanes_sum2`].
#[inline(always)]
fn lanes_sum<T: Float>(a: &[T]) -> T {
    lanes_sum2(a, a, |x, _| x)
}

fn parallel(len: usize) -> bool {
    super::worth_parallel(len)
}

/// Rows per parallel task (whole rows, so every task sees complete rows).
fn rows_per_task(rows: usize) -> usize {
    rows.div_ceil(rayon::current_num_threads() * 4).max(1)
}

super::multiversion! {
fn ln_forward_rows<T: Float>(
    x: &[T],
    y: &mut [T],
    stats: &mut [(T, T)],
    n: usize,
    w: &[T],
    b: &[T],
    eps: T,
) {
    let inv_n = T::one() / T::of(n as f64);
    for ((xr, yr), st) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)).zip(stats) {
        let mean = lanes_sum(xr) * inv_n;
        let var = lanes_sum2(xr, xr, |v, _| (v - mean) * (v - mean)) * inv_n;
        let rstd = T::one() / (var + eps).sqrt();
        for (((o, &xv), &wv), &bv) in yr.iter_mut().zip(xr).zip(w).zip(b) {
            *o = (xv - mean) * rstd * wv + bv;
        }
        *st = (mean, rstd);
    }
}
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
    if rows > 0 {
        let ones = vec![T::one(); if w.is_none() { n } else { 0 }];
        let zeros = vec![T::zero(); if b.is_none() { n } else { 0 }];
        let w = w.unwrap_or(&ones);
        let b = b.unwrap_or(&zeros);
        let eps = T::of(eps);
        if parallel(x.len()) {
            let per = rows_per_task(rows);
            x.par_chunks(per * n)
                .zip(y.par_chunks_mut(per * n).zip(stats.par_chunks_mut(per)))
                .for_each(|(xc, (yc, sc))| ln_forward_rows(xc, yc, sc, n, w, b, eps));
        } else {
            ln_forward_rows(x, &mut y, &mut stats, n, w, b, eps);
        }
    }
    let (mean, rstd) = stats.into_iter().unzip();
    (y, mean, rstd)
}

super::multiversion! {
/// Rows `r0..r1` of the layer-norm backward: `dx` rows (when given) and this block's
/// partial weight and bias gradients (empty when not wanted).
#[allow(clippy::too_many_arguments)]
fn ln_backward_rows<T: Float>(
    g: &[T],
    x: &[T],
    mean: &[T],
    rstd: &[T],
    n: usize,
    w: &[T],
    dx: Option<&mut [T]>,
    dw: &mut [T],
    db: &mut [T],
    scratch: &mut [T],
) {
    let mut dx = dx;
    let inv_n = T::one() / T::of(n as f64);
    let (xhat, gw) = scratch.split_at_mut(n);
    for (r, (xr, gr)) in x.chunks_exact(n).zip(g.chunks_exact(n)).enumerate() {
        let (mu, rho) = (mean[r], rstd[r]);
        for (((xh, gv), (&xv, &gi)), &wi) in xhat
            .iter_mut()
            .zip(gw.iter_mut())
            .zip(xr.iter().zip(gr))
            .zip(w)
        {
            *xh = (xv - mu) * rho;
            *gv = gi * wi;
        }
        for ((d, &gi), &xh) in dw.iter_mut().zip(gr).zip(xhat.iter()) {
            *d += gi * xh;
        }
        for (d, &gi) in db.iter_mut().zip(gr) {
            *d += gi;
        }
        if let Some(d) = dx.as_deref_mut() {
            let a = lanes_sum(gw) * inv_n;
            let c = lanes_sum2(gw, xhat, |u, v| u * v) * inv_n;
            for ((o, &gv), &xh) in d[r * n..(r + 1) * n]
                .iter_mut()
                .zip(gw.iter())
                .zip(xhat.iter())
            {
                *o = rho * (gv - a - xh * c);
            }
        }
    }
}
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
    let mut dx = if want_dx {
        Some(vec![T::zero(); rows * n])
    } else {
        None
    };
    let ones = vec![T::one(); if w.is_none() { n } else { 0 }];
    let w = w.unwrap_or(&ones);
    // Rows in blocks: each block adds its rows' dw/db into its own partial sums.
    let blocks = if parallel(x.len()) {
        rayon::current_num_threads().min(rows.max(1))
    } else {
        1
    };
    let per = rows.div_ceil(blocks.max(1)).max(1);
    let block = |bi: usize, dx_block: Option<&mut [T]>| -> (Vec<T>, Vec<T>) {
        let mut dw = vec![T::zero(); n];
        let mut db = vec![T::zero(); n];
        let mut scratch = vec![T::zero(); 2 * n];
        let r0 = (bi * per).min(rows);
        let r1 = (r0 + per).min(rows);
        let (gs, xs) = (&g[r0 * n..r1 * n], &x[r0 * n..r1 * n]);
        let (ms, rs) = (&mean[r0..r1], &rstd[r0..r1]);
        ln_backward_rows(
            gs,
            xs,
            ms,
            rs,
            n,
            w,
            dx_block,
            &mut dw,
            &mut db,
            &mut scratch,
        );
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

super::multiversion! {
fn softmax_forward_rows<T: Float>(x: &[T], y: &mut [T], n: usize) {
    for (xr, yr) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
        let m = xr.iter().fold(T::neg_infinity(), |m, &v| m.max(v));
        if m == T::neg_infinity() {
            yr.iter_mut().for_each(|v| *v = T::zero());
            continue;
        }
        for (o, &v) in yr.iter_mut().zip(xr) {
            *o = super::special::exp(v - m);
        }
        let s = lanes_sum(yr);
        let inv = T::one() / s;
        yr.iter_mut().for_each(|v| *v *= inv);
    }
}
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
    if n == 0 || x.is_empty() {
        return y;
    }
    if parallel(x.len()) {
        let per = rows_per_task(x.len() / n) * n;
        x.par_chunks(per)
            .zip(y.par_chunks_mut(per))
            .for_each(|(xc, yc)| softmax_forward_rows(xc, yc, n));
    } else {
        softmax_forward_rows(x, &mut y, n);
    }
    y
}

super::multiversion! {
fn softmax_backward_rows<T: Float>(v: &[T], y: &[T], out: &mut [T], n: usize) {
    for ((vr, yr), or) in v
        .chunks_exact(n)
        .zip(y.chunks_exact(n))
        .zip(out.chunks_exact_mut(n))
    {
        let dot = lanes_sum2(vr, yr, |u, v| u * v);
        for ((o, &yv), &vv) in or.iter_mut().zip(yr).zip(vr) {
            // strong zero: where y is 0 the entry is 0 even if v is not finite
            *o = if yv == T::zero() {
                T::zero()
            } else {
                yv * (vv - dot)
            };
        }
    }
}
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
    if n == 0 || y.is_empty() {
        return out;
    }
    if parallel(y.len()) {
        let per = rows_per_task(y.len() / n) * n;
        v.par_chunks(per)
            .zip(y.par_chunks(per))
            .zip(out.par_chunks_mut(per))
            .for_each(|((vc, yc), oc)| softmax_backward_rows(vc, yc, oc, n));
    } else {
        softmax_backward_rows(v, y, &mut out, n);
    }
    out
}
