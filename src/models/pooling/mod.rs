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

use crate::autograd::{apply_function1, CustomFunction, FunctionCtx};
use crate::dtype::DType;
use crate::einsum::einsum;
use crate::error::{Error, Result};
use crate::nn::{Linear, Module};
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

// ---------------------------------------------------------------------------------------------
// lgamma

/// Lanczos coefficients for g = 7, nine terms (relative error about 1e-15 for x ≥ 0.5).
const LANCZOS_G: f64 = 7.0;
const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];
/// ½·ln(2π).
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// ln|Γ(x)| by the Lanczos approximation (g = 7, nine terms), with the reflection formula
/// below ½; `+∞` at the poles 0, −1, −2, …
///
/// ```
/// use eingrad::models::pooling::lgamma_f64;
/// assert!((lgamma_f64(10.0) - 362880f64.ln()).abs() < 1e-12);
/// assert!((lgamma_f64(0.5) - 0.5 * std::f64::consts::PI.ln()).abs() < 1e-14);
/// ```
pub fn lgamma_f64(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.5 {
        if x == x.floor() {
            return f64::INFINITY;
        }
        // Γ(x)Γ(1−x) = π / sin(πx).
        let s = (std::f64::consts::PI * x).sin().abs();
        return std::f64::consts::PI.ln() - s.ln() - lgamma_f64(1.0 - x);
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    let mut a = LANCZOS[0];
    for (k, c) in LANCZOS.iter().enumerate().skip(1) {
        a += c / (x + (k as f64 - 1.0));
    }
    let t = x + LANCZOS_G - 0.5;
    HALF_LN_2PI + (x - 0.5) * t.ln() - t + a.ln()
}

/// ln Γ(x) elementwise for `x ≥ ½`, written in tensor ops (the same Lanczos formula as
/// [`lgamma_f64`]), so it is differentiable to any order: its derivative is the digamma
/// function ψ(x) to about 1e-13. Errors (naming `x`) when an element is below ½ or NaN.
///
/// ```
/// use eingrad::models::pooling::lgamma;
/// use eingrad::Tensor;
/// let x = Tensor::from_vec(vec![1.0f64, 10.0], &[2]).unwrap().requires_grad_(true);
/// let y = lgamma(&x).unwrap();
/// assert!((y.to_vec::<f64>().unwrap()[1] - 362880f64.ln()).abs() < 1e-12);
/// y.sum_all().unwrap().backward().unwrap();
/// let g = x.grad().unwrap().to_vec::<f64>().unwrap();
/// assert!((g[0] + 0.5772156649015329).abs() < 1e-12); // ψ(1) = −γ
/// ```
pub fn lgamma(x: &Tensor) -> Result<Tensor> {
    if let Some(v) = x.to_vec_f64().into_iter().find(|v| v.is_nan() || *v < 0.5) {
        return Err(Error::arg(
            "lgamma",
            "x",
            format!(
                "the tensor form needs every element ≥ 0.5 (Lanczos without reflection), found {v}"
            ),
        ));
    }
    let dtype = x.dtype();
    let mut a = Tensor::full(&[], LANCZOS[0], dtype)?.add(&x.zeros_like()?)?;
    for (k, &c) in LANCZOS.iter().enumerate().skip(1) {
        let term = Tensor::full(&[], c, dtype)?.div(&x.add_scalar(k as f64 - 1.0)?)?;
        a = a.add(&term)?;
    }
    let t = x.add_scalar(LANCZOS_G - 0.5)?;
    x.add_scalar(-0.5)?
        .mul(&t.log()?)?
        .sub(&t)?
        .add(&a.log()?)?
        .add_scalar(HALF_LN_2PI)
}

// ---------------------------------------------------------------------------------------------
// Boundary predictor

/// Straight-through hard threshold: forward `1[soft > threshold]` exactly (0.0 or 1.0),
/// backward the identity to `soft`.
struct StraightThrough {
    threshold: f64,
}

impl CustomFunction for StraightThrough {
    fn name(&self) -> &str {
        "straight_through"
    }
    fn forward(&self, _: &mut FunctionCtx, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        Ok(vec![inputs[0].gt_scalar(self.threshold)?])
    }
    fn backward(&self, _: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g[0].clone())])
    }
    /// The identity, like the backward.
    fn jvp(&self, _: &FunctionCtx, t: &[Option<Tensor>]) -> Option<Result<Vec<Option<Tensor>>>> {
        Some(Ok(vec![t[0].clone()]))
    }
}

/// `1[soft > threshold]` in the forward pass (exact zeros and ones) with the gradient passed
/// to `soft` unchanged (PyTorch's `hard − soft.detach() + soft`).
///
/// ```
/// use eingrad::models::pooling::straight_through;
/// use eingrad::Tensor;
/// let s = Tensor::from_vec(vec![0.2f64, 0.7], &[2]).unwrap().requires_grad_(true);
/// let h = straight_through(&s, 0.5).unwrap();
/// assert_eq!(h.to_vec::<f64>().unwrap(), vec![0.0, 1.0]);
/// h.mul_scalar(3.0).unwrap().sum_all().unwrap().backward().unwrap();
/// assert_eq!(s.grad().unwrap().to_vec::<f64>().unwrap(), vec![3.0, 3.0]);
/// ```
pub fn straight_through(soft: &Tensor, threshold: f64) -> Result<Tensor> {
    apply_function1(StraightThrough { threshold }, &[soft])
}

/// A relaxed Bernoulli sample and its straight-through hardening.
#[derive(Debug, Clone)]
pub struct BoundarySample {
    /// σ(logits): the predicted boundary probabilities.
    pub probs: Tensor,
    /// The Gumbel-sigmoid sample `σ((logits + log u − log(1−u))/τ)`.
    pub soft: Tensor,
    /// `1[soft > threshold]` forward, gradient to `soft` (straight-through).
    pub hard: Tensor,
}

/// Gumbel-sigmoid (relaxed Bernoulli with logits `logits`):
/// `soft = σ((logits + log u − log(1−u)) / temperature)` with `u = Tensor::rand(shape, dtype,
/// seed).unwrap()` clamped into `[ε, 1−ε]` (ε the dtype's machine epsilon, as `clamp_probs` in
/// PyTorch), and `hard = straight_through(soft, threshold)`. Returns `(soft, hard)`.
///
/// The source parameterises the relaxed Bernoulli by `probs = σ(logits)`; using the logits
/// directly is the same distribution without the round trip through `log p − log(1−p)`.
pub fn gumbel_sigmoid(
    logits: &Tensor,
    temperature: f64,
    threshold: f64,
    seed: u64,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "gumbel_sigmoid";
    if temperature <= 0.0 || !temperature.is_finite() {
        return Err(Error::arg(
            OP,
            "temperature",
            format!("must be positive and finite, got {temperature}"),
        ));
    }
    let eps = match logits.dtype() {
        DType::F32 => f32::EPSILON as f64,
        DType::F64 => f64::EPSILON,
    };
    let u = Tensor::rand(logits.dims(), logits.dtype(), seed)?.clamp(Some(eps), Some(1.0 - eps))?;
    let noise = u.log()?.sub(&u.neg()?.log1p()?)?;
    let soft = logits.add(&noise)?.div_scalar(temperature)?.sigmoid()?;
    let hard = straight_through(&soft, threshold)?;
    Ok((soft, hard))
}

/// `prior` (the expected boundary rate) must lie in (0, 1).
fn check_prior(op: &'static str, prior: f64) -> Result<()> {
    if prior > 0.0 && prior < 1.0 {
        Ok(())
    } else {
        Err(Error::arg(
            op,
            "prior",
            format!("must lie in (0, 1), got {prior}"),
        ))
    }
}

/// The binomial boundary prior of the source: `−mean_b log Binomial(T, prior).log_prob(k_b) / T`
/// with `k_b = Σ_l hard[b, l]` and `T = L`, for `hard` of shape `B × L`.
///
/// `log_prob(k) = lgamma(T+1) − lgamma(k+1) − lgamma(T−k+1) + k·ln p + (T−k)·ln(1−p)`; the two
/// terms in `k` use the tensor [`lgamma`], so the loss is differentiable in the count (and
/// through a straight-through `hard` in the soft boundaries), as with PyTorch's
/// `Binomial.log_prob`. The constant `lgamma(T+1)` uses [`lgamma_f64`].
///
/// Errors when `hard` is not `B × L`, `prior` is not in (0, 1), or a count lies outside
/// `[0, T]`.
pub fn binomial_prior_loss(hard: &Tensor, prior: f64) -> Result<Tensor> {
    const OP: &str = "binomial_prior_loss";
    if hard.rank() != 2 || hard.numel() == 0 {
        return Err(Error::arg(
            OP,
            "hard",
            format!(
                "must have shape (B, L) with B, L ≥ 1, got {:?}",
                hard.dims()
            ),
        ));
    }
    check_prior(OP, prior)?;
    let t = hard.dims()[1] as f64;
    let k = hard.sum(&[-1], false)?;
    if let Some(v) = k.to_vec_f64().into_iter().find(|v| !(*v >= 0.0 && *v <= t)) {
        return Err(Error::arg(
            OP,
            "hard",
            format!("boundary counts must lie in [0, {t}], found {v}"),
        ));
    }
    let log_prob = lgamma(&k.add_scalar(1.0)?)?
        .add(&lgamma(&k.rsub_scalar(t + 1.0)?)?)?
        .rsub_scalar(lgamma_f64(t + 1.0))?
        .add(&k.mul_scalar(prior.ln())?)?
        .add(&k.rsub_scalar(t)?.mul_scalar((-prior).ln_1p())?)?;
    log_prob.mean_all()?.mul_scalar(-1.0 / t)
}

/// The boundary predictor of the source: `Linear(d → d_inner) → GELU → Linear(d_inner → 1)`
/// giving one logit per token, `σ` giving the boundary probability; boundaries are sampled
/// with [`gumbel_sigmoid`] (temperature 0.5 and threshold 0.5 by default) and regularised by
/// [`binomial_prior_loss`].
///
/// As a [`Module`], `forward` maps hidden states `B × L × d` to probabilities `B × L`.
///
/// ```
/// use eingrad::models::pooling::{downsample, BoundaryPredictor};
/// use eingrad::nn::Module;
/// use eingrad::{DType, Tensor};
/// let bp = BoundaryPredictor::new(4, 8, 0.2, DType::F64, 0).unwrap();
/// let x = Tensor::randn(&[2, 6, 4], DType::F64, 1).unwrap();
/// let s = bp.sample(&x, 7).unwrap();
/// assert!(s.hard.to_vec::<f64>().unwrap().iter().all(|&v| v == 0.0 || v == 1.0));
/// let loss = bp.prior_loss(&s.hard).unwrap()
///     .add(&downsample(&s.hard, &x, &Tensor::zeros(&[4], DType::F64).unwrap()).unwrap().sum_all().unwrap())
///     .unwrap();
/// loss.backward().unwrap();
/// assert!(bp.parameters().iter().all(|p| p.grad().is_some()));
/// ```
#[derive(Debug, Clone)]
pub struct BoundaryPredictor {
    hidden: Linear,
    output: Linear,
    prior: f64,
    temperature: f64,
    threshold: f64,
}

impl BoundaryPredictor {
    /// A predictor for hidden width `d_model` with an inner width `d_inner`, the binomial
    /// `prior` (the expected fraction of boundaries, in (0, 1)), PyTorch's default `Linear`
    /// initialisation drawn from `seed`, temperature 0.5 and threshold 0.5.
    pub fn new(
        d_model: usize,
        d_inner: usize,
        prior: f64,
        dtype: DType,
        seed: u64,
    ) -> Result<BoundaryPredictor> {
        const OP: &str = "BoundaryPredictor::new";
        if d_model == 0 || d_inner == 0 {
            return Err(Error::arg(
                OP,
                if d_model == 0 { "d_model" } else { "d_inner" },
                "must be at least 1",
            ));
        }
        check_prior(OP, prior)?;
        let hidden = Linear::new(d_model, d_inner, true, dtype, seed.wrapping_mul(2))?;
        let output = Linear::new(
            d_inner,
            1,
            true,
            dtype,
            seed.wrapping_mul(2).wrapping_add(1),
        )?;
        Ok(BoundaryPredictor {
            hidden,
            output,
            prior,
            temperature: 0.5,
            threshold: 0.5,
        })
    }

    /// A predictor made of the two given layers (`d → d_inner`, `d_inner → 1`).
    pub fn from_layers(hidden: Linear, output: Linear, prior: f64) -> Result<BoundaryPredictor> {
        const OP: &str = "BoundaryPredictor::from_layers";
        if output.in_features() != hidden.out_features() || output.out_features() != 1 {
            return Err(Error::arg(
                OP,
                "output",
                format!(
                    "must map {} features to 1, it maps {} to {}",
                    hidden.out_features(),
                    output.in_features(),
                    output.out_features()
                ),
            ));
        }
        check_prior(OP, prior)?;
        Ok(BoundaryPredictor {
            hidden,
            output,
            prior,
            temperature: 0.5,
            threshold: 0.5,
        })
    }

    /// Sets the Gumbel-sigmoid temperature τ (positive, finite).
    pub fn with_temperature(mut self, temperature: f64) -> Result<BoundaryPredictor> {
        if temperature <= 0.0 || !temperature.is_finite() {
            return Err(Error::arg(
                "BoundaryPredictor::with_temperature",
                "temperature",
                format!("must be positive and finite, got {temperature}"),
            ));
        }
        self.temperature = temperature;
        Ok(self)
    }

    /// The temperature τ.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }
    /// The binomial prior.
    pub fn prior(&self) -> f64 {
        self.prior
    }
    /// The threshold on the soft sample.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }
    /// The first layer (`d → d_inner`).
    pub fn hidden_layer(&self) -> &Linear {
        &self.hidden
    }
    /// The second layer (`d_inner → 1`).
    pub fn output_layer(&self) -> &Linear {
        &self.output
    }

    /// One logit per token: hidden states `B × L × d` to `B × L`.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        if hidden.rank() != 3 || hidden.dims()[2] != self.hidden.in_features() {
            return Err(Error::arg(
                "BoundaryPredictor::logits",
                "hidden",
                format!(
                    "must have shape (B, L, {}), got {:?}",
                    self.hidden.in_features(),
                    hidden.dims()
                ),
            ));
        }
        let z = self.hidden.forward(hidden)?.gelu()?;
        self.output.forward(&z)?.squeeze(Some(-1))
    }

    /// Boundary probabilities σ(logits), `B × L`.
    pub fn probabilities(&self, hidden: &Tensor) -> Result<Tensor> {
        self.logits(hidden)?.sigmoid()
    }

    /// Probabilities, a Gumbel-sigmoid sample (noise from `seed`) and its straight-through
    /// hard boundaries.
    pub fn sample(&self, hidden: &Tensor, seed: u64) -> Result<BoundarySample> {
        let logits = self.logits(hidden)?;
        let probs = logits.sigmoid()?;
        let (soft, hard) = gumbel_sigmoid(&logits, self.temperature, self.threshold, seed)?;
        Ok(BoundarySample { probs, soft, hard })
    }

    /// [`binomial_prior_loss`] of `hard` with this predictor's prior.
    pub fn prior_loss(&self, hard: &Tensor) -> Result<Tensor> {
        binomial_prior_loss(hard, self.prior)
    }
}

impl Module for BoundaryPredictor {
    /// Boundary probabilities `B × L` for hidden states `B × L × d`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.probabilities(x)
    }
    fn parameters(&self) -> Vec<Tensor> {
        let mut p = self.hidden.parameters();
        p.extend(self.output.parameters());
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lgamma_f64_known_values() {
        let cases = [
            (1.0, 0.0),
            (2.0, 0.0),
            (3.0, 2f64.ln()),
            (0.5, 0.5 * std::f64::consts::PI.ln()),
            (100.0, 359.134_205_369_575_4),
            (-0.5, (2.0 * std::f64::consts::PI.sqrt()).ln()),
        ];
        for (x, want) in cases {
            let got = lgamma_f64(x);
            assert!(
                (got - want).abs() < 1e-12 * want.abs().max(1.0),
                "lgamma({x}) = {got}, want {want}"
            );
        }
        assert_eq!(lgamma_f64(0.0), f64::INFINITY);
        assert_eq!(lgamma_f64(-3.0), f64::INFINITY);
        for x in [0.7, 1.3, 4.5, 17.25, 250.0] {
            assert!(
                (lgamma_f64(x) - libm::lgamma(x)).abs() < 1e-12 * libm::lgamma(x).abs().max(1.0)
            );
        }
    }

    #[test]
    fn lgamma_tensor_rejects_small_values() {
        let x = Tensor::from_vec(vec![1.0f64, 0.25], &[2]).unwrap();
        let e = lgamma(&x).unwrap_err().to_string();
        assert!(e.contains("lgamma") && e.contains("`x`"), "{e}");
    }

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
