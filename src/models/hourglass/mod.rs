//! The hourglass transformer with dynamic token pooling (`SEEDS.md` §2; after
//! `PiotrNawrot/dynamic-pooling`, `hourglass.py`): [`HourglassStack`] (pre-layers, pooling,
//! shortened layers, upsampling, post-layers) and the language model around it
//! ([`HourglassLm`]).
//!
//! **Layout: batch first**, hidden states `B × L × d` (the source keeps `L × B × d`).
//!
//! ```text
//! x ─ pre_layers ─┬─ boundaries b (B × L) ─ downsample(b, ·, null_group) ─ down_ln
//!                 │                            ─ shortened_layers ─ upsample(b, ·) ─┐
//!                 └──────────────────────── residual ─────────────────────────────(+)─ post_layers
//! ```
//!
//! Boundaries ([`BoundaryMode`]): a boundary `b_l = 1` makes token `l` the *last* token of its
//! segment. Fixed every `k` puts them at tokens `k−1, 2k−1, …`; whitespace takes a per-token
//! 0/1 mask (1 where the token is whitespace, as the source's `data == whitespace_id`); the
//! Gumbel mode samples them from a [`BoundaryPredictor`] on the pre-layers' output
//! (straight-through hard boundaries, seeded) and adds the binomial prior loss.
//!
//! **Causality.** The shortened sequence is `[null_group, s_0, …, s_{n−1}]`: the null group
//! shifts the segments by one, and token `l` reads row `c_l = Σ_{m≤l} b_m` of the shortened
//! layers' output, i.e. the last segment that *ended at or before* `l` (row 0, the null group,
//! before the first boundary). The shortened layers attend causally over segments, so row
//! `c_l` only summarises tokens `≤ l`; the trailing unfinished segment is dropped or never read.
//! Nothing else needs shifting; `tests/hourglass.rs` checks `∂out_i/∂x_j = 0` for `j > i` and
//! that every prefix of a sequence gets the logits of the full sequence.
//!
//! ```
//! use eingrad::models::hourglass::{BoundaryMode, HourglassConfig, HourglassStack};
//! use eingrad::nn::Module;
//! use eingrad::{DType, Tensor};
//! let cfg = HourglassConfig {
//!     pre_layers: 1, shortened_layers: 1, post_layers: 1,
//!     ..HourglassConfig::new(8, 2, BoundaryMode::FixedEvery(3))
//! };
//! let stack = HourglassStack::new(&cfg, DType::F64, 0).unwrap();
//! let x = Tensor::randn(&[2, 7, 8], DType::F64, 1).unwrap();
//! assert_eq!(stack.forward(&x).unwrap().dims(), &[2, 7, 8]);
//! ```

mod config;
mod lm;

pub use config::{BoundaryInput, BoundaryMode, HourglassConfig};
pub use lm::{HourglassLm, HourglassLmConfig, HourglassLmOutput, HourglassLoss};

use std::sync::atomic::{AtomicU64, Ordering};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::models::pooling::{downsample, upsample, BoundaryPredictor};
use crate::nn::{
    derive_seed, init, prefixed, Block, CausalSelfAttention, FeedForward, LayerNorm, Linear, Module,
};
use crate::tensor::Tensor;

/// What [`HourglassStack::forward_with`] returns.
///
/// ```
/// use eingrad::models::hourglass::{BoundaryInput, BoundaryMode, HourglassConfig, HourglassStack};
/// use eingrad::{DType, Tensor};
/// let cfg = HourglassConfig { pre_layers: 1, shortened_layers: 1, post_layers: 1,
///     ..HourglassConfig::new(4, 1, BoundaryMode::FixedEvery(2)) };
/// let stack = HourglassStack::new(&cfg, DType::F64, 0).unwrap();
/// let out = stack.forward_with(&Tensor::randn(&[1, 4, 4], DType::F64, 1).unwrap(),
///     BoundaryInput::Auto).unwrap();
/// assert_eq!(out.boundaries.to_vec::<f64>().unwrap(), vec![0.0, 1.0, 0.0, 1.0]);
/// assert!(out.prior_loss.is_none());
/// ```
#[derive(Debug, Clone)]
pub struct HourglassOutput {
    /// The post-layers' output, `B × L × d`.
    pub hidden: Tensor,
    /// The hard boundaries used, `B × L` zeros and ones (in Gumbel mode straight-through: the
    /// gradient reaches the predictor).
    pub boundaries: Tensor,
    /// The binomial prior loss of the boundaries (Gumbel mode only), a scalar.
    pub prior_loss: Option<Tensor>,
}

/// The layers of a [`HourglassStack`], for [`HourglassStack::from_parts`] (e.g. layers built
/// from given tensors).
///
/// ```
/// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig, HourglassParts, HourglassStack};
/// use eingrad::nn::LayerNorm;
/// use eingrad::{DType, Tensor};
/// let cfg = HourglassConfig { pre_layers: 0, shortened_layers: 0, post_layers: 0,
///     ..HourglassConfig::new(4, 1, BoundaryMode::FixedEvery(2)) };
/// let parts = HourglassParts {
///     pre_layers: vec![], shortened_layers: vec![], post_layers: vec![],
///     null_group: Tensor::zeros(&[4], DType::F64).unwrap(),
///     down_ln: LayerNorm::new(&[4], 1e-5, true, DType::F64).unwrap(),
///     boundary_predictor: None,
/// };
/// assert!(HourglassStack::from_parts(&cfg, parts, 0).is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct HourglassParts {
    /// `cfg.pre_layers` blocks of width `d`.
    pub pre_layers: Vec<Block>,
    /// The null group, shape `[d]`.
    pub null_group: Tensor,
    /// The LayerNorm after downsampling, over `[d]`.
    pub down_ln: LayerNorm,
    /// `cfg.shortened_layers` blocks.
    pub shortened_layers: Vec<Block>,
    /// `cfg.post_layers` blocks.
    pub post_layers: Vec<Block>,
    /// The boundary predictor: required in Gumbel mode, refused otherwise. Its prior and
    /// temperature are replaced by the config's.
    pub boundary_predictor: Option<BoundaryPredictor>,
}

/// The hourglass stack of `SEEDS.md` §2: `B × L × d` hidden states through pre-layers,
/// boundaries, `downsample` (with the learned null group) and `down_ln`, shortened layers,
/// `upsample` plus the residual, and post-layers. The blocks are eingrad's pre-LN
/// [`Block`]s (causal attention, feed-forward of width `d_inner`).
///
/// Parameter names: `pre_layers.{i}.…` (as [`Block`]: `ln_1.weight`, `attn.c_attn.weight`,
/// `mlp.c_fc.weight`, …), `boundary_predictor.hidden.weight`, `….output.bias` (Gumbel mode),
/// `null_group`, `down_ln.weight`, `down_ln.bias`, `shortened_layers.{i}.…`,
/// `post_layers.{i}.…`.
///
/// As a [`Module`], `forward` needs no extra input: fixed-every-k boundaries, or Gumbel
/// noise from the stack's seeded stream; whitespace boundaries need
/// [`HourglassStack::forward_with`].
///
/// ```
/// use eingrad::models::hourglass::{BoundaryInput, BoundaryMode, HourglassConfig, HourglassStack};
/// use eingrad::{DType, Tensor};
/// let cfg = HourglassConfig { pre_layers: 1, shortened_layers: 1, post_layers: 1,
///     ..HourglassConfig::new(4, 2, BoundaryMode::Whitespace) };
/// let stack = HourglassStack::new(&cfg, DType::F32, 0).unwrap();
/// let x = Tensor::randn(&[1, 5, 4], DType::F32, 1).unwrap();
/// let space = Tensor::from_vec(vec![0.0f32, 0.0, 1.0, 0.0, 1.0], &[1, 5]).unwrap();
/// let out = stack.forward_with(&x, BoundaryInput::Whitespace(&space)).unwrap();
/// assert_eq!(out.hidden.dims(), &[1, 5, 4]);
/// let e = stack.forward_with(&x, BoundaryInput::Auto).unwrap_err().to_string();
/// assert!(e.contains("`boundary_input`"), "{e}");
/// ```
pub struct HourglassStack {
    config: HourglassConfig,
    pre_layers: Vec<Block>,
    null_group: Tensor,
    down_ln: LayerNorm,
    shortened_layers: Vec<Block>,
    post_layers: Vec<Block>,
    boundary_predictor: Option<BoundaryPredictor>,
    noise_seed: u64,
    noise_calls: AtomicU64,
    training: bool,
}

impl Clone for HourglassStack {
    fn clone(&self) -> HourglassStack {
        HourglassStack {
            config: self.config,
            pre_layers: self.pre_layers.clone(),
            null_group: self.null_group.clone(),
            down_ln: self.down_ln.clone(),
            shortened_layers: self.shortened_layers.clone(),
            post_layers: self.post_layers.clone(),
            boundary_predictor: self.boundary_predictor.clone(),
            noise_seed: self.noise_seed,
            noise_calls: AtomicU64::new(self.noise_calls()),
            training: self.training,
        }
    }
}

impl std::fmt::Debug for HourglassStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HourglassStack(d_model={}, n_head={}, d_inner={}, layers=[{}, ({},), {}], \
             boundaries={:?})",
            self.config.d_model,
            self.config.n_head,
            self.config.d_inner,
            self.config.pre_layers,
            self.config.shortened_layers,
            self.config.post_layers,
            self.config.boundaries
        )
    }
}

/// A pre-LN block of width `d_model` with a feed-forward of width `d_inner`.
fn new_block(cfg: &HourglassConfig, dtype: DType, seed: u64) -> Result<Block> {
    let (c, h) = (cfg.d_model, cfg.d_inner);
    let attn = CausalSelfAttention::new(
        c,
        cfg.n_head,
        cfg.bias,
        cfg.dropout,
        dtype,
        derive_seed(seed, 0),
    )?;
    let mlp = FeedForward::from_layers(
        Linear::new(c, h, cfg.bias, dtype, derive_seed(seed, 1))?,
        Linear::new(h, c, cfg.bias, dtype, derive_seed(seed, 2))?,
        cfg.activation,
        cfg.dropout,
        derive_seed(seed, 3),
    )?;
    Block::from_parts(
        LayerNorm::new(&[c], cfg.eps, cfg.bias, dtype)?,
        attn,
        LayerNorm::new(&[c], cfg.eps, cfg.bias, dtype)?,
        mlp,
    )
}

fn check_blocks(
    cfg: &HourglassConfig,
    arg: &'static str,
    blocks: &[Block],
    count: usize,
) -> Result<()> {
    const OP: &str = "HourglassStack::from_parts";
    if blocks.len() != count {
        return Err(Error::arg(
            OP,
            arg,
            format!(
                "the config asks for {count} blocks, {} were given",
                blocks.len()
            ),
        ));
    }
    for (i, b) in blocks.iter().enumerate() {
        let width = b.attn().c_proj().out_features();
        let inner = b.mlp().c_fc().out_features();
        if width != cfg.d_model || b.attn().n_head() != cfg.n_head || inner != cfg.d_inner {
            return Err(Error::arg(
                OP,
                arg,
                format!(
                    "block {i} has width {width}, {} heads and inner width {inner}; the config \
                     says {}, {} and {}",
                    b.attn().n_head(),
                    cfg.d_model,
                    cfg.n_head,
                    cfg.d_inner
                ),
            ));
        }
    }
    Ok(())
}

/// `B × L` boundaries at tokens `k−1, 2k−1, …`.
fn fixed_boundaries(b: usize, l: usize, k: usize, dtype: DType) -> Result<Tensor> {
    let row: Vec<f64> = (0..l)
        .map(|t| if (t + 1) % k == 0 { 1.0 } else { 0.0 })
        .collect();
    Tensor::from_f64s(&row, &[1, l], dtype)?
        .broadcast_to(&[b, l])?
        .contiguous()
}

/// Checks a whitespace mask against hidden states `B × L × d` of dtype `dtype`.
fn check_whitespace(
    op: &'static str,
    mask: &Tensor,
    b: usize,
    l: usize,
    dtype: DType,
) -> Result<()> {
    if mask.dims() != [b, l] {
        return Err(Error::arg(
            op,
            "boundary_input",
            format!(
                "the whitespace mask must have shape (B, L) = [{b}, {l}] to match `hidden`, got \
                 {:?}",
                mask.dims()
            ),
        ));
    }
    if mask.dtype() != dtype {
        return Err(Error::arg(
            op,
            "boundary_input",
            format!(
                "the whitespace mask has dtype {:?}, the hidden states {dtype:?}",
                mask.dtype()
            ),
        ));
    }
    if let Some((i, v)) = mask
        .to_vec_f64()
        .into_iter()
        .enumerate()
        .find(|&(_, v)| v != 0.0 && v != 1.0)
    {
        return Err(Error::arg(
            op,
            "boundary_input",
            format!(
                "the whitespace mask must hold only 0 and 1, found {v} at [{}, {}]",
                i / l,
                i % l
            ),
        ));
    }
    Ok(())
}

impl HourglassStack {
    /// A stack for `cfg` with PyTorch's default initialisation drawn from `seed` (blocks,
    /// predictor) and a standard-normal null group (as the source); Gumbel noise for
    /// [`BoundaryInput::Auto`] comes from a stream derived from `seed`.
    ///
    /// ```
    /// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig, HourglassStack};
    /// use eingrad::nn::Module;
    /// use eingrad::DType;
    /// let cfg = HourglassConfig { pre_layers: 1, shortened_layers: 2, post_layers: 1,
    ///     ..HourglassConfig::new(4, 1, BoundaryMode::Gumbel) };
    /// let stack = HourglassStack::new(&cfg, DType::F32, 0).unwrap();
    /// let names: Vec<String> = stack.named_parameters().into_iter().map(|(n, _)| n).collect();
    /// assert!(names.contains(&"shortened_layers.1.attn.c_attn.weight".to_string()));
    /// assert!(names.contains(&"boundary_predictor.hidden.weight".to_string()));
    /// assert!(names.contains(&"null_group".to_string()));
    /// ```
    pub fn new(cfg: &HourglassConfig, dtype: DType, seed: u64) -> Result<HourglassStack> {
        cfg.validate()?;
        let blocks = |group: u64, n: usize| -> Result<Vec<Block>> {
            let s = derive_seed(seed, group);
            (0..n)
                .map(|i| new_block(cfg, dtype, derive_seed(s, i as u64)))
                .collect()
        };
        let boundary_predictor = if cfg.boundaries.needs_predictor() {
            Some(BoundaryPredictor::new(
                cfg.d_model,
                cfg.d_inner,
                cfg.prior,
                dtype,
                derive_seed(seed, 3),
            )?)
        } else {
            None
        };
        let parts = HourglassParts {
            pre_layers: blocks(0, cfg.pre_layers)?,
            null_group: init::normal(&[cfg.d_model], 0.0, 1.0, dtype, derive_seed(seed, 4))?,
            down_ln: LayerNorm::new(&[cfg.d_model], cfg.eps, cfg.bias, dtype)?,
            shortened_layers: blocks(1, cfg.shortened_layers)?,
            post_layers: blocks(2, cfg.post_layers)?,
            boundary_predictor,
        };
        HourglassStack::from_parts(cfg, parts, seed)
    }

    /// A stack made of the given layers, which must agree with `cfg` (counts, widths, heads,
    /// inner width, dtypes; a predictor exactly in Gumbel mode); errors name the part at
    /// fault. The null group becomes a parameter (`requires_grad`) if it is a leaf. `seed`
    /// seeds the Gumbel noise stream.
    ///
    /// ```
    /// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig, HourglassParts, HourglassStack};
    /// use eingrad::nn::LayerNorm;
    /// use eingrad::{DType, Tensor};
    /// let cfg = HourglassConfig { pre_layers: 0, shortened_layers: 0, post_layers: 0,
    ///     ..HourglassConfig::new(4, 1, BoundaryMode::FixedEvery(2)) };
    /// let parts = HourglassParts {
    ///     pre_layers: vec![], shortened_layers: vec![], post_layers: vec![],
    ///     null_group: Tensor::zeros(&[5], DType::F64).unwrap(),
    ///     down_ln: LayerNorm::new(&[4], 1e-5, true, DType::F64).unwrap(),
    ///     boundary_predictor: None,
    /// };
    /// let e = HourglassStack::from_parts(&cfg, parts, 0).unwrap_err().to_string();
    /// assert!(e.contains("`null_group`"), "{e}");
    /// ```
    pub fn from_parts(
        cfg: &HourglassConfig,
        parts: HourglassParts,
        seed: u64,
    ) -> Result<HourglassStack> {
        const OP: &str = "HourglassStack::from_parts";
        cfg.validate()?;
        let d = cfg.d_model;
        check_blocks(cfg, "pre_layers", &parts.pre_layers, cfg.pre_layers)?;
        check_blocks(
            cfg,
            "shortened_layers",
            &parts.shortened_layers,
            cfg.shortened_layers,
        )?;
        check_blocks(cfg, "post_layers", &parts.post_layers, cfg.post_layers)?;
        if parts.null_group.dims() != [d] {
            return Err(Error::arg(
                OP,
                "null_group",
                format!(
                    "must have shape [d_model] = [{d}], got {:?}",
                    parts.null_group.dims()
                ),
            ));
        }
        let dtype = parts.null_group.dtype();
        if parts.down_ln.weight().dims() != [d] || parts.down_ln.weight().dtype() != dtype {
            return Err(Error::arg(
                OP,
                "down_ln",
                format!(
                    "must normalise [{d}] in {dtype:?} (the null group's dtype), got {:?} in {:?}",
                    parts.down_ln.weight().dims(),
                    parts.down_ln.weight().dtype()
                ),
            ));
        }
        let boundary_predictor = match (cfg.boundaries.needs_predictor(), parts.boundary_predictor)
        {
            (true, Some(bp)) => {
                if bp.hidden_layer().in_features() != d {
                    return Err(Error::arg(
                        OP,
                        "boundary_predictor",
                        format!(
                            "must read width {d}, it reads {}",
                            bp.hidden_layer().in_features()
                        ),
                    ));
                }
                Some(
                    BoundaryPredictor::from_layers(
                        bp.hidden_layer().clone(),
                        bp.output_layer().clone(),
                        cfg.prior,
                    )?
                    .with_temperature(cfg.temperature)?,
                )
            }
            (true, None) => {
                return Err(Error::arg(
                    OP,
                    "boundary_predictor",
                    "Gumbel boundaries need a boundary predictor",
                ))
            }
            (false, Some(_)) => {
                return Err(Error::arg(
                    OP,
                    "boundary_predictor",
                    format!("{:?} boundaries take no boundary predictor", cfg.boundaries),
                ))
            }
            (false, None) => None,
        };
        let null_group = crate::nn::as_parameter(parts.null_group);
        let stack = HourglassStack {
            config: *cfg,
            pre_layers: parts.pre_layers,
            null_group,
            down_ln: parts.down_ln,
            shortened_layers: parts.shortened_layers,
            post_layers: parts.post_layers,
            boundary_predictor,
            noise_seed: derive_seed(seed, 5),
            noise_calls: AtomicU64::new(0),
            training: true,
        };
        if let Some((name, t)) = stack
            .named_parameters()
            .into_iter()
            .find(|(_, t)| t.dtype() != dtype)
        {
            return Err(Error::arg(
                OP,
                "parts",
                format!(
                    "`{name}` has dtype {:?}, the null group {dtype:?}",
                    t.dtype()
                ),
            ));
        }
        Ok(stack)
    }

    /// The configuration.
    ///
    /// ```
    /// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig, HourglassStack};
    /// let cfg = HourglassConfig { shortened_layers: 1, ..HourglassConfig::new(4, 1, BoundaryMode::FixedEvery(2)) };
    /// let stack = HourglassStack::new(&cfg, eingrad::DType::F32, 0).unwrap();
    /// assert_eq!(stack.config(), &cfg);
    /// ```
    pub fn config(&self) -> &HourglassConfig {
        &self.config
    }

    /// The dtype of the parameters (and of the hidden states the stack takes).
    ///
    /// ```
    /// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig, HourglassStack};
    /// let cfg = HourglassConfig { shortened_layers: 1, ..HourglassConfig::new(4, 1, BoundaryMode::FixedEvery(2)) };
    /// let stack = HourglassStack::new(&cfg, eingrad::DType::F32, 0).unwrap();
    /// assert_eq!(stack.dtype(), eingrad::DType::F32);
    /// ```
    pub fn dtype(&self) -> DType {
        self.null_group.dtype()
    }

    /// The boundary predictor (Gumbel mode).
    ///
    /// ```
    /// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig, HourglassStack};
    /// let cfg = HourglassConfig { shortened_layers: 1, ..HourglassConfig::new(4, 1, BoundaryMode::Gumbel) };
    /// let stack = HourglassStack::new(&cfg, eingrad::DType::F32, 0).unwrap();
    /// assert_eq!(stack.boundary_predictor().unwrap().temperature(), 0.5);
    /// ```
    pub fn boundary_predictor(&self) -> Option<&BoundaryPredictor> {
        self.boundary_predictor.as_ref()
    }

    /// How many forward calls have drawn Gumbel noise from the stack's stream.
    ///
    /// ```
    /// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig, HourglassStack};
    /// let cfg = HourglassConfig { shortened_layers: 1, ..HourglassConfig::new(4, 1, BoundaryMode::Gumbel) };
    /// let stack = HourglassStack::new(&cfg, eingrad::DType::F32, 0).unwrap();
    /// assert_eq!(stack.noise_calls(), 0);
    /// ```
    pub fn noise_calls(&self) -> u64 {
        self.noise_calls.load(Ordering::Relaxed)
    }

    /// Sets the position in the Gumbel noise stream (to resume or replay a run).
    ///
    /// ```
    /// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig, HourglassStack};
    /// use eingrad::nn::Module;
    /// use eingrad::{DType, Tensor};
    /// let cfg = HourglassConfig { shortened_layers: 1, ..HourglassConfig::new(4, 1, BoundaryMode::Gumbel) };
    /// let stack = HourglassStack::new(&cfg, DType::F64, 0).unwrap();
    /// let x = Tensor::randn(&[1, 6, 4], DType::F64, 1).unwrap();
    /// let first = stack.forward(&x).unwrap().to_vec::<f64>().unwrap();
    /// stack.set_noise_calls(0);
    /// assert_eq!(stack.forward(&x).unwrap().to_vec::<f64>().unwrap(), first);
    /// ```
    pub fn set_noise_calls(&self, calls: u64) {
        self.noise_calls.store(calls, Ordering::Relaxed)
    }

    /// The stack on hidden states `B × L × d` (`B, L ≥ 1`, the parameters' dtype), with
    /// what the boundary mode needs: [`BoundaryInput::Whitespace`] for whitespace boundaries,
    /// [`BoundaryInput::Auto`] or [`BoundaryInput::GumbelSeed`] for Gumbel boundaries,
    /// [`BoundaryInput::Auto`] for fixed ones. Errors name the argument at fault (`hidden`,
    /// `boundary_input`).
    ///
    /// ```
    /// use eingrad::models::hourglass::{BoundaryInput, BoundaryMode, HourglassConfig, HourglassStack};
    /// use eingrad::{DType, Tensor};
    /// let cfg = HourglassConfig { pre_layers: 1, shortened_layers: 1, post_layers: 1,
    ///     ..HourglassConfig::new(4, 1, BoundaryMode::Gumbel) };
    /// let stack = HourglassStack::new(&cfg, DType::F64, 0).unwrap();
    /// let x = Tensor::randn(&[2, 6, 4], DType::F64, 1).unwrap();
    /// let a = stack.forward_with(&x, BoundaryInput::GumbelSeed(3)).unwrap();
    /// let b = stack.forward_with(&x, BoundaryInput::GumbelSeed(3)).unwrap();
    /// assert_eq!(a.boundaries.to_vec::<f64>().unwrap(), b.boundaries.to_vec::<f64>().unwrap());
    /// assert!(a.prior_loss.unwrap().item().unwrap().is_finite());
    /// ```
    pub fn forward_with(
        &self,
        hidden: &Tensor,
        boundary_input: BoundaryInput<'_>,
    ) -> Result<HourglassOutput> {
        const OP: &str = "HourglassStack::forward";
        let d = self.config.d_model;
        let dtype = self.dtype();
        if hidden.rank() != 3 || hidden.dims()[2] != d || hidden.dims()[..2].contains(&0) {
            return Err(Error::arg(
                OP,
                "hidden",
                format!(
                    "must have shape (B, L, {d}) with B, L ≥ 1, got {:?}",
                    hidden.dims()
                ),
            ));
        }
        if hidden.dtype() != dtype {
            return Err(Error::arg(
                OP,
                "hidden",
                format!(
                    "dtype {:?} differs from the parameters' {dtype:?}",
                    hidden.dtype()
                ),
            ));
        }
        let (b, l) = (hidden.dims()[0], hidden.dims()[1]);
        let mismatch = || {
            Err(Error::arg(
                OP,
                "boundary_input",
                format!(
                    "{:?} boundaries cannot use {boundary_input:?}: fixed boundaries take \
                     `Auto`, whitespace boundaries `Whitespace(mask)`, Gumbel boundaries `Auto` \
                     or `GumbelSeed(seed)`",
                    self.config.boundaries
                ),
            ))
        };
        // Boundaries that need the pre-layers' output are made after them.
        let given = match (self.config.boundaries, boundary_input) {
            (BoundaryMode::FixedEvery(k), BoundaryInput::Auto) => {
                Some(fixed_boundaries(b, l, k, dtype)?)
            }
            (BoundaryMode::Whitespace, BoundaryInput::Whitespace(mask)) => {
                check_whitespace(OP, mask, b, l, dtype)?;
                Some(mask.detach())
            }
            (BoundaryMode::Gumbel, BoundaryInput::Auto | BoundaryInput::GumbelSeed(_)) => None,
            _ => return mismatch(),
        };

        let mut x = hidden.clone();
        for block in &self.pre_layers {
            x = block.forward(&x)?;
        }
        let residual = x.clone();
        let (boundaries, prior_loss) = match (given, &self.boundary_predictor) {
            (Some(bd), _) => (bd, None),
            (None, Some(bp)) => {
                let seed = match boundary_input {
                    BoundaryInput::GumbelSeed(s) => s,
                    _ => derive_seed(
                        self.noise_seed,
                        self.noise_calls.fetch_add(1, Ordering::Relaxed),
                    ),
                };
                let sample = bp.sample(&x, seed)?;
                let prior = bp.prior_loss(&sample.hard)?;
                (sample.hard, Some(prior))
            }
            // from_parts guarantees a predictor in Gumbel mode.
            (None, None) => return mismatch(),
        };

        let mut short = self
            .down_ln
            .forward(&downsample(&boundaries, &x, &self.null_group)?)?;
        for block in &self.shortened_layers {
            short = block.forward(&short)?;
        }
        let mut x = upsample(&boundaries, &short)?.add(&residual)?;
        for block in &self.post_layers {
            x = block.forward(&x)?;
        }
        Ok(HourglassOutput {
            hidden: x,
            boundaries,
            prior_loss,
        })
    }
}

impl Module for HourglassStack {
    /// [`HourglassStack::forward_with`] with [`BoundaryInput::Auto`], returning the hidden
    /// states (an error naming `boundary_input` in whitespace mode).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_with(x, BoundaryInput::Auto)?.hidden)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = Vec::new();
        for (i, b) in self.pre_layers.iter().enumerate() {
            v.extend(prefixed(&format!("pre_layers.{i}"), b.named_parameters()));
        }
        if let Some(bp) = &self.boundary_predictor {
            v.extend(prefixed("boundary_predictor", bp.named_parameters()));
        }
        v.push(("null_group".to_string(), self.null_group.clone()));
        v.extend(prefixed("down_ln", self.down_ln.named_parameters()));
        for (i, b) in self.shortened_layers.iter().enumerate() {
            v.extend(prefixed(
                &format!("shortened_layers.{i}"),
                b.named_parameters(),
            ));
        }
        for (i, b) in self.post_layers.iter().enumerate() {
            v.extend(prefixed(&format!("post_layers.{i}"), b.named_parameters()));
        }
        v
    }
    fn train(&mut self, on: bool) {
        self.training = on;
        for b in self
            .pre_layers
            .iter_mut()
            .chain(&mut self.shortened_layers)
            .chain(&mut self.post_layers)
        {
            b.train(on);
        }
    }
    fn is_training(&self) -> bool {
        self.training
    }
}
