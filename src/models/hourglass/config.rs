//! The configuration of the hourglass stack ([`HourglassConfig`], [`BoundaryMode`]) and the
//! per-call boundary input ([`BoundaryInput`]).

use crate::error::{Error, Result};
use crate::nn::Activation;
use crate::tensor::Tensor;

/// Where segment boundaries come from.
///
/// ```
/// use eingrad::models::hourglass::BoundaryMode;
/// assert_ne!(BoundaryMode::FixedEvery(2), BoundaryMode::Whitespace);
/// assert!(BoundaryMode::Gumbel.needs_predictor());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundaryMode {
    /// A boundary at tokens `k−1, 2k−1, …` (segments of `k` tokens). The source marks tokens
    /// `0, k, 2k, …` (`boundaries[:, ::k] = 1`); ending segments at `k−1` gives whole
    /// segments from the first token on.
    FixedEvery(usize),
    /// A boundary at every whitespace token, from a per-token 0/1 mask given to
    /// [`HourglassStack::forward_with`](super::HourglassStack::forward_with)
    /// ([`BoundaryInput::Whitespace`]).
    Whitespace,
    /// Boundaries sampled from a
    /// [`BoundaryPredictor`](crate::models::pooling::BoundaryPredictor) (Gumbel-sigmoid,
    /// straight-through), with the binomial prior loss.
    Gumbel,
}

impl BoundaryMode {
    /// Whether the mode has a learned boundary predictor (only [`BoundaryMode::Gumbel`]).
    ///
    /// ```
    /// assert!(!eingrad::models::hourglass::BoundaryMode::Whitespace.needs_predictor());
    /// ```
    pub fn needs_predictor(&self) -> bool {
        matches!(self, BoundaryMode::Gumbel)
    }
}

/// The sizes and switches of a [`HourglassStack`](super::HourglassStack).
///
/// ```
/// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig};
/// let c = HourglassConfig::new(512, 8, BoundaryMode::Gumbel);
/// assert_eq!((c.d_inner, c.pre_layers, c.shortened_layers, c.post_layers), (2048, 2, 8, 2));
/// assert_eq!((c.prior, c.temperature), (0.2, 0.5));
/// assert!(c.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HourglassConfig {
    /// Width `d` of the hidden states.
    pub d_model: usize,
    /// Attention heads (dividing `d_model`).
    pub n_head: usize,
    /// Inner width of the feed-forward layers and of the boundary predictor.
    pub d_inner: usize,
    /// Transformer blocks before pooling.
    pub pre_layers: usize,
    /// Transformer blocks over the shortened sequence.
    pub shortened_layers: usize,
    /// Transformer blocks after upsampling.
    pub post_layers: usize,
    /// Dropout probability inside the blocks (the source trains with 0.1).
    pub dropout: f64,
    /// Where boundaries come from.
    pub boundaries: BoundaryMode,
    /// The binomial prior: the expected fraction of boundary tokens (Gumbel mode), in (0, 1).
    pub prior: f64,
    /// The Gumbel-sigmoid temperature τ (Gumbel mode), positive.
    pub temperature: f64,
    /// Biases in the blocks' Linear layers and LayerNorms.
    pub bias: bool,
    /// The feed-forward activation.
    pub activation: Activation,
    /// LayerNorm ε.
    pub eps: f64,
}

impl HourglassConfig {
    /// Width, heads and boundary mode; the source's defaults otherwise: `d_inner = 4·d_model`,
    /// layers `[2, (8,), 2]`, prior 0.2, temperature 0.5; biases, exact GELU, ε = 1e-5 and no
    /// dropout as [`crate::nn::BlockConfig::new`].
    ///
    /// ```
    /// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig};
    /// let c = HourglassConfig::new(16, 2, BoundaryMode::FixedEvery(4));
    /// assert_eq!(c.d_inner, 64);
    /// ```
    pub fn new(d_model: usize, n_head: usize, boundaries: BoundaryMode) -> HourglassConfig {
        HourglassConfig {
            d_model,
            n_head,
            d_inner: 4 * d_model,
            pre_layers: 2,
            shortened_layers: 8,
            post_layers: 2,
            dropout: 0.0,
            boundaries,
            prior: 0.2,
            temperature: 0.5,
            bias: true,
            activation: Activation::Gelu,
            eps: 1e-5,
        }
    }

    /// Checks every field; the error names the field at fault.
    ///
    /// ```
    /// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig};
    /// let c = HourglassConfig::new(8, 3, BoundaryMode::FixedEvery(2));
    /// assert!(c.validate().unwrap_err().to_string().contains("`n_head`"));
    /// let c = HourglassConfig::new(8, 2, BoundaryMode::FixedEvery(0));
    /// assert!(c.validate().unwrap_err().to_string().contains("`boundaries`"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "HourglassConfig";
        let bad = |arg: &'static str, msg: String| Err(Error::arg(OP, arg, msg));
        if self.d_model == 0 {
            return bad("d_model", "must be at least 1".into());
        }
        if self.n_head == 0 || !self.d_model.is_multiple_of(self.n_head) {
            return bad(
                "n_head",
                format!(
                    "must be ≥ 1 and divide d_model = {}, got {}",
                    self.d_model, self.n_head
                ),
            );
        }
        if self.d_inner == 0 {
            return bad("d_inner", "must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.dropout) {
            return bad(
                "dropout",
                format!("must be a probability in [0, 1], got {}", self.dropout),
            );
        }
        if let BoundaryMode::FixedEvery(0) = self.boundaries {
            return bad("boundaries", "FixedEvery(k) needs k ≥ 1, got 0".into());
        }
        if !(self.prior > 0.0 && self.prior < 1.0) {
            return bad("prior", format!("must lie in (0, 1), got {}", self.prior));
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return bad(
                "temperature",
                format!("must be positive and finite, got {}", self.temperature),
            );
        }
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return bad("eps", format!("must be finite and ≥ 0, got {}", self.eps));
        }
        Ok(())
    }
}

/// The per-call input the boundaries may need, given to
/// [`HourglassStack::forward_with`](super::HourglassStack::forward_with).
///
/// ```
/// use eingrad::models::hourglass::BoundaryInput;
/// use eingrad::{DType, Tensor};
/// let mask = Tensor::zeros(&[1, 4], DType::F32).unwrap();
/// let inputs = [BoundaryInput::Auto, BoundaryInput::Whitespace(&mask), BoundaryInput::GumbelSeed(7)];
/// assert_eq!(inputs.len(), 3);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub enum BoundaryInput<'a> {
    /// Nothing: fixed-every-k boundaries, or Gumbel noise from the stack's own seeded stream
    /// (the `k`-th such call draws from `(seed, k)`).
    #[default]
    Auto,
    /// The whitespace mask (`B × L`, 1 where the token is whitespace, 0 elsewhere, the hidden
    /// states' dtype) for [`BoundaryMode::Whitespace`].
    Whitespace(&'a Tensor),
    /// Gumbel noise drawn from this seed (leaves the stack's stream alone).
    GumbelSeed(u64),
}
