//! Dynamic token pooling (`SEEDS.md` §2; after `PiotrNawrot/dynamic-pooling`,
//! `shortening.py` and `boundary_creator.py`).
//!
//! **Layout: batch first.** Boundaries are `B × L` (0/1 floats), hidden states `B × L × D`,
//! shortened states `B × (n+1) × D`. (The source keeps hidden states `L × B × D`; convert with
//! `permute(&[1, 0, 2])`.)
//!
//! A boundary `b_l = 1` makes token `l` the **last** token of its segment. With `n` the largest
//! number of boundaries in any row of the batch:
//!
//! - [`downsample`]: `h_l = Σ_{m<l} b_m`, `foo[l, s] = s − h_l` for `s < n`,
//!   `v = 1 − foo` with `v := 0` wherever `foo ≠ 0`, `bar = v / (Σ_l v + 1e-9)`;
//!   the segment means `Σ_l bar[l, s]·x_l` follow a prepended null group (`n + 1` rows).
//!   Tokens after the last boundary of a row with `n` boundaries belong to no segment and
//!   are dropped; in a row with fewer boundaries they form one more, unfinished segment (as in
//!   the source), which [`upsample`] never reads.
//! - [`upsample`]: `c_l = Σ_{m≤l} b_m`; token `l` receives `shortened[c_l]` (row 0 is the null
//!   group), so a token only sees segments that ended at or before it: no leak.
//!
//! Both are differentiable in the hidden states *and* in the boundaries. The latter is the
//! seed's surrogate gradient: `bar` is built from `b` through a cumulative sum, and the entries
//! zeroed by the mask pass no gradient, so `∂ bar[l, seg(l)] / ∂ b_m
//! = [m<l]/N − #{l' ∈ seg(l): l' > m}/N²` for a segment of `N` tokens (the true map is piecewise
//! constant). [`pooling_matrix`] exposes `bar` with `foo` scaled by `alpha`, which leaves the
//! forward unchanged and scales that Jacobian by `alpha`.
//!
//! ```
//! use eingrad::models::pooling::{downsample, upsample};
//! use eingrad::{DType, Tensor};
//! let b = Tensor::from_vec(vec![0.0f64, 1.0, 0.0, 1.0, 0.0], &[1, 5]).unwrap();
//! let x = Tensor::arange(0.0, 5.0, 1.0, DType::F64).unwrap().reshape(&[1, 5, 1]).unwrap();
//! let null = Tensor::full(&[1], -1.0, DType::F64).unwrap();
//! let round = |t: &Tensor| -> Vec<f64> {
//!     t.to_vec::<f64>().unwrap().iter().map(|v| (v * 1e6).round() / 1e6).collect()
//! };
//! let short = downsample(&b, &x, &null).unwrap();
//! // null group, mean of tokens {0, 1}, mean of tokens {2, 3}; token 4 is dropped.
//! // (Means are exact up to the seed's 1e-9 in the normaliser.)
//! assert_eq!(round(&short), vec![-1.0, 0.5, 2.5]);
//! let up = upsample(&b, &short).unwrap();
//! assert_eq!(round(&up), vec![-1.0, 0.5, 0.5, 2.5, 2.5]);
//! ```

mod predictor;

pub use crate::kernels::special::lgamma_f64;
pub use predictor::{
    binomial_prior_loss, gumbel_sigmoid, lgamma, straight_through, BoundaryPredictor,
    BoundarySample,
};

use crate::einsum::einsum;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The added constant of the seed's normalisation `v / (Σ v + 1e-9)`.
const NORM_EPS: f64 = 1e-9;

/// Checks that `boundaries` is a `B × L` tensor of zeros and ones and returns
/// `(B, L, n)` with `n` the largest per-row count of ones.
fn check_boundaries(op: &'static str, boundaries: &Tensor) -> Result<(usize, usize, usize)> {
    if boundaries.rank() != 2 {
        return Err(Error::arg(
            op,
            "boundaries",
            format!("must have shape (B, L), got {:?}", boundaries.dims()),
        ));
    }
    let (b, l) = (boundaries.dims()[0], boundaries.dims()[1]);
    let vals = boundaries.to_vec_f64();
    if let Some((i, &v)) = vals.iter().enumerate().find(|(_, &v)| v != 0.0 && v != 1.0) {
        return Err(Error::arg(
            op,
            "boundaries",
            format!(
                "must hold only 0 and 1, found {v} at [{}, {}]",
                i / l.max(1),
                i % l.max(1)
            ),
        ));
    }
    let n = (0..b)
        .map(|r| {
            vals[r * l..(r + 1) * l]
                .iter()
                .filter(|&&v| v == 1.0)
                .count()
        })
        .max()
        .unwrap_or(0);
    Ok((b, l, n))
}

/// The number of segments `n`: the largest count of boundaries in any row of `boundaries`
/// (`B × L`, zeros and ones).
///
/// ```
/// use eingrad::Tensor;
/// let b = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 0.0, 0.0, 1.0], &[2, 3]).unwrap();
/// assert_eq!(eingrad::models::pooling::segment_count(&b).unwrap(), 2);
/// ```
pub fn segment_count(boundaries: &Tensor) -> Result<usize> {
    Ok(check_boundaries("segment_count", boundaries)?.2)
}

/// The segment index of every token, `h_l = Σ_{m<l} b_m` (`B × L`, the exclusive cumulative
/// sum of the boundaries, differentiable in them). Token `l` belongs to segment `h_l`; a value
/// of at least the row's count of boundaries marks a token after the last boundary (dropped
/// by [`downsample`]).
///
/// ```
/// use eingrad::Tensor;
/// let b = Tensor::from_vec(vec![0.0f64, 1.0, 0.0, 1.0, 0.0], &[1, 5]).unwrap();
/// let h = eingrad::models::pooling::segment_ids(&b).unwrap();
/// assert_eq!(h.to_vec::<f64>().unwrap(), vec![0.0, 0.0, 1.0, 1.0, 2.0]);
/// ```
pub fn segment_ids(boundaries: &Tensor) -> Result<Tensor> {
    check_boundaries("segment_ids", boundaries)?;
    boundaries.cumsum(1, false)?.sub(boundaries)
}

/// The seed's `common` + `final`: `foo[b, l, s] = alpha·(s − pos[b, l])` for `s < cols`, then
/// `v = 1 − foo` zeroed (by `masked_fill`, so no gradient) where `foo ≠ 0`, normalised over
/// `norm_dim`. `pos` is the exclusive (`inclusive = false`) or inclusive cumulative sum of the
/// boundaries; it carries the boundaries' history.
fn segment_matrix(
    boundaries: &Tensor,
    cols: usize,
    inclusive: bool,
    alpha: f64,
    norm_dim: isize,
) -> Result<Tensor> {
    let dtype = boundaries.dtype();
    let cum = boundaries.cumsum(1, false)?;
    let pos = if inclusive { cum } else { cum.sub(boundaries)? };
    let s = Tensor::arange(0.0, cols as f64, 1.0, dtype)?.reshape(&[1, 1, cols])?;
    let mut offset = s.sub(&pos.unsqueeze(-1)?)?;
    if alpha != 1.0 {
        offset = offset.mul_scalar(alpha)?;
    }
    // The seed's `foo`: nonzero off the token's own segment.
    let off_segment = offset.ne_scalar(0.0)?;
    let v = offset.rsub_scalar(1.0)?.masked_fill(&off_segment, 0.0)?;
    let total = v.sum(&[norm_dim], true)?.add_scalar(NORM_EPS)?;
    v.div(&total)
}

/// The downsampling matrix `bar` (`B × L × n`): `bar[b, l, s] = 1/N_s` when token `l` belongs
/// to segment `s` (of `N_s` tokens), else 0. `alpha` scales the seed's `foo` before the mask
/// and the normalisation: the values do not change, the surrogate Jacobian with respect to
/// the boundaries is multiplied by `alpha` (the seed compares `alpha = 1` with `alpha = −2`).
///
/// Errors when `boundaries` is not `B × L` zeros and ones, or `alpha` is zero or not finite.
///
/// ```
/// use eingrad::models::pooling::pooling_matrix;
/// use eingrad::Tensor;
/// let b = Tensor::from_vec(vec![0.0f64, 1.0, 1.0], &[1, 3]).unwrap();
/// let bar = pooling_matrix(&b, 1.0).unwrap();
/// assert_eq!(bar.dims(), &[1, 3, 2]);
/// let v: Vec<f64> = bar.to_vec::<f64>().unwrap().iter().map(|x| (x * 1e6).round() / 1e6).collect();
/// assert_eq!(v, vec![0.5, 0.0, 0.5, 0.0, 0.0, 1.0]);
/// assert_eq!(pooling_matrix(&b, -2.0).unwrap().to_vec::<f64>().unwrap(), bar.to_vec::<f64>().unwrap());
/// ```
pub fn pooling_matrix(boundaries: &Tensor, alpha: f64) -> Result<Tensor> {
    const OP: &str = "pooling_matrix";
    let (b, l, n) = check_boundaries(OP, boundaries)?;
    if alpha == 0.0 || !alpha.is_finite() {
        return Err(Error::arg(
            OP,
            "alpha",
            format!("must be finite and nonzero, got {alpha}"),
        ));
    }
    if n == 0 {
        return Tensor::zeros(&[b, l, 0], boundaries.dtype());
    }
    segment_matrix(boundaries, n, false, alpha, 1)
}

/// The upsampling matrix (`B × L × (n+1)`): a one-hot row per token selecting column
/// `c_l = Σ_{m≤l} b_m` (column 0 is the null group).
///
/// ```
/// use eingrad::models::pooling::upsampling_matrix;
/// use eingrad::Tensor;
/// let b = Tensor::from_vec(vec![0.0f64, 1.0, 0.0], &[1, 3]).unwrap();
/// let u = upsampling_matrix(&b).unwrap();
/// let v: Vec<f64> = u.to_vec::<f64>().unwrap().iter().map(|x| x.round()).collect();
/// assert_eq!(v, vec![1.0, 0.0, 0.0, 1.0, 0.0, 1.0]);
/// ```
pub fn upsampling_matrix(boundaries: &Tensor) -> Result<Tensor> {
    let (_, _, n) = check_boundaries("upsampling_matrix", boundaries)?;
    segment_matrix(boundaries, n + 1, true, 1.0, 2)
}

/// Segment means of `hidden` (`B × L × D`) with a null group prepended: `B × (n+1) × D`.
/// Row `s + 1` is the mean of segment `s` (the tokens `l` with `h_l = s`, see
/// [`segment_ids`]); rows past a batch entry's own segments are zero, except that the
/// tokens after its last boundary fill the next row when it has fewer than `n` boundaries.
///
/// `null_group` holds `D` values (shape `[D]`, or `[1, …, 1, D]` like the source's `1×1×D`
/// parameter); it becomes row 0 of every batch entry. With no boundary at all (`n = 0`) the
/// result is the null group alone.
///
/// Errors name the argument at fault: `boundaries` not `B × L` zeros and ones, `hidden` not
/// `B × L × D` for those `B, L`, `null_group` not of width `D`, or differing dtypes.
pub fn downsample(boundaries: &Tensor, hidden: &Tensor, null_group: &Tensor) -> Result<Tensor> {
    const OP: &str = "downsample";
    let (b, l, n) = check_boundaries(OP, boundaries)?;
    if hidden.rank() != 3 || hidden.dims()[0] != b || hidden.dims()[1] != l {
        return Err(Error::arg(
            OP,
            "hidden",
            format!(
                "must have shape (B, L, D) = ({b}, {l}, D) to match boundaries {:?}, got {:?}",
                boundaries.dims(),
                hidden.dims()
            ),
        ));
    }
    let d = hidden.dims()[2];
    let nd = null_group.dims();
    if nd.is_empty() || nd[nd.len() - 1] != d || nd[..nd.len() - 1].iter().any(|&s| s != 1) {
        return Err(Error::arg(
            OP,
            "null_group",
            format!(
                "must have shape [D] or [1, …, 1, D] with D = {d} (hidden's width), got {nd:?}"
            ),
        ));
    }
    check_dtype(OP, "hidden", hidden, boundaries)?;
    check_dtype(OP, "null_group", null_group, boundaries)?;
    let null = null_group.reshape(&[1, 1, d])?.broadcast_to(&[b, 1, d])?;
    if n == 0 {
        return Ok(null);
    }
    let bar = segment_matrix(boundaries, n, false, 1.0, 1)?;
    let pooled = einsum("bld,bls->bsd", &[hidden, &bar])?;
    Tensor::cat(&[&null, &pooled], 1)
}

/// Spreads `shortened` (`B × (n+1) × D`, row 0 the null group) back over the `L` tokens:
/// token `l` receives row `c_l = Σ_{m≤l} b_m`, i.e. the last segment that ended at or before
/// it. Result `B × L × D`.
///
/// Errors name the argument at fault: `boundaries` not `B × L` zeros and ones, `shortened`
/// not `B × (n+1) × D`, or differing dtypes.
pub fn upsample(boundaries: &Tensor, shortened: &Tensor) -> Result<Tensor> {
    const OP: &str = "upsample";
    let (b, _, n) = check_boundaries(OP, boundaries)?;
    if shortened.rank() != 3 || shortened.dims()[0] != b || shortened.dims()[1] != n + 1 {
        return Err(Error::arg(
            OP,
            "shortened",
            format!(
                "must have shape (B, n+1, D) = ({b}, {}, D) for boundaries with at most {n} \
                 segments, got {:?}",
                n + 1,
                shortened.dims()
            ),
        ));
    }
    check_dtype(OP, "shortened", shortened, boundaries)?;
    let bar = segment_matrix(boundaries, n + 1, true, 1.0, 2)?;
    einsum("bsd,bls->bld", &[shortened, &bar])
}

fn check_dtype(op: &'static str, arg: &'static str, t: &Tensor, boundaries: &Tensor) -> Result<()> {
    if t.dtype() != boundaries.dtype() {
        return Err(Error::arg(
            op,
            arg,
            format!(
                "dtype {:?} differs from the boundaries' {:?}",
                t.dtype(),
                boundaries.dtype()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;

    #[test]
    fn zero_segments() {
        let b = Tensor::zeros(&[2, 3], DType::F64).unwrap();
        assert_eq!(pooling_matrix(&b, 1.0).unwrap().dims(), &[2, 3, 0]);
        let x = Tensor::randn(&[2, 3, 4], DType::F64, 0).unwrap();
        let null = Tensor::randn(&[1, 1, 4], DType::F64, 1).unwrap();
        let s = downsample(&b, &x, &null).unwrap();
        assert_eq!(s.dims(), &[2, 1, 4]);
        let u = upsample(&b, &s).unwrap();
        assert_eq!(u.dims(), &[2, 3, 4]);
        let nv = null.to_vec::<f64>().unwrap();
        for (i, v) in u.to_vec::<f64>().unwrap().iter().enumerate() {
            assert!((v - nv[i % 4]).abs() < 1e-8);
        }
    }
}
