//! The boundary predictor of dynamic pooling (after `boundary_creator.py`): a two-layer MLP
//! giving one boundary logit per token, Gumbel-sigmoid sampling with straight-through hard
//! boundaries, and the binomial prior on the boundary count (with the tensor form of
//! [`lgamma`] it needs).
//!
//! ```
//! use eingrad::models::pooling::{gumbel_sigmoid, binomial_prior_loss};
//! use eingrad::{DType, Tensor};
//! let logits = Tensor::zeros(&[2, 5], DType::F64).unwrap();
//! let (soft, hard) = gumbel_sigmoid(&logits, 0.5, 0.5, 3).unwrap();
//! assert_eq!(soft.dims(), &[2, 5]);
//! assert!(binomial_prior_loss(&hard, 0.2).unwrap().item().unwrap().is_finite());
//! ```

use crate::autograd::{apply_function1, CustomFunction, FunctionCtx};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::special::{lgamma_f64, HALF_LN_2PI, LANCZOS, LANCZOS_G};
use crate::nn::{prefixed, Linear, Module};
use crate::tensor::Tensor;

/// ln Γ(x) elementwise for `x ≥ ½`, written in tensor ops (the same Lanczos formula and
/// coefficients as [`lgamma_f64`]), so it is differentiable to any order: its derivative is
/// the digamma function ψ(x) to about 1e-13. Errors (naming `x`) when an element is below ½
/// or NaN.
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
        BoundaryPredictor::from_layers(hidden, output, prior)
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
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("hidden", self.hidden.named_parameters());
        p.extend(prefixed("output", self.output.named_parameters()));
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lgamma_tensor_rejects_small_values() {
        let x = Tensor::from_vec(vec![1.0f64, 0.25], &[2]).unwrap();
        let e = lgamma(&x).unwrap_err().to_string();
        assert!(e.contains("lgamma") && e.contains("`x`"), "{e}");
    }
}
