//! [`HourglassLm`]: token embedding → [`HourglassStack`] → final LayerNorm → vocabulary
//! projection, with the language-model loss (cross-entropy plus, for Gumbel boundaries, the
//! binomial prior).

use super::{BoundaryInput, BoundaryMode, HourglassConfig, HourglassStack};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::nn::{
    cross_entropy, derive_seed, Dropout, Embedding, LayerNorm, Linear, Module, Reduction,
};
use crate::tensor::Tensor;

/// The sizes of a [`HourglassLm`]: the vocabulary, an optional learned position embedding,
/// the whitespace tokens and the stack.
///
/// ```
/// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig, HourglassLmConfig};
/// let c = HourglassLmConfig::new(27, HourglassConfig::new(8, 2, BoundaryMode::Whitespace));
/// assert_eq!((c.vocab_size, c.block_size), (27, None));
/// assert!(c.whitespace_ids.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HourglassLmConfig {
    /// Number of token ids.
    pub vocab_size: usize,
    /// With `Some(n)`, a learned absolute position embedding (`pos_emb.weight`, `n × d`, as
    /// nanoGPT's `wpe`) is added to the token embedding and sequences may hold at most `n`
    /// tokens. `None`: no position embedding (the source puts relative positions inside its
    /// attention, which eingrad's [`crate::nn::Block`] does not have); causal attention still
    /// tells positions apart.
    pub block_size: Option<usize>,
    /// The token ids that count as whitespace: with [`BoundaryMode::Whitespace`] and
    /// [`BoundaryInput::Auto`], the boundaries are `ids ∈ whitespace_ids` (the source's
    /// `data == whitespace_id`).
    pub whitespace_ids: Vec<usize>,
    /// The hourglass stack.
    pub stack: HourglassConfig,
}

impl HourglassLmConfig {
    /// A vocabulary and a stack; no position embedding, no whitespace ids.
    ///
    /// ```
    /// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig, HourglassLmConfig};
    /// let c = HourglassLmConfig::new(5, HourglassConfig::new(4, 1, BoundaryMode::FixedEvery(2)));
    /// assert_eq!(c.stack.d_model, 4);
    /// ```
    pub fn new(vocab_size: usize, stack: HourglassConfig) -> HourglassLmConfig {
        HourglassLmConfig {
            vocab_size,
            block_size: None,
            whitespace_ids: Vec::new(),
            stack,
        }
    }

    /// Checks every field (and the stack's); the error names the field at fault.
    ///
    /// ```
    /// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig, HourglassLmConfig};
    /// let mut c = HourglassLmConfig::new(5, HourglassConfig::new(4, 1, BoundaryMode::Whitespace));
    /// c.whitespace_ids = vec![5];
    /// assert!(c.validate().unwrap_err().to_string().contains("`whitespace_ids`"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "HourglassLmConfig";
        self.stack.validate()?;
        if self.vocab_size == 0 {
            return Err(Error::arg(OP, "vocab_size", "must be at least 1"));
        }
        if self.block_size == Some(0) {
            return Err(Error::arg(
                OP,
                "block_size",
                "must be at least 1 when given",
            ));
        }
        if let Some(&id) = self.whitespace_ids.iter().find(|&&i| i >= self.vocab_size) {
            return Err(Error::arg(
                OP,
                "whitespace_ids",
                format!(
                    "id {id} is out of range for a vocabulary of {}",
                    self.vocab_size
                ),
            ));
        }
        Ok(())
    }
}

/// What [`HourglassLm::forward_with`] returns.
///
/// ```
/// use eingrad::models::hourglass::{BoundaryInput, BoundaryMode, HourglassConfig, HourglassLm,
///     HourglassLmConfig};
/// use eingrad::{DType, Tensor};
/// let stack = HourglassConfig { pre_layers: 1, shortened_layers: 1, post_layers: 1,
///     ..HourglassConfig::new(4, 1, BoundaryMode::FixedEvery(2)) };
/// let lm = HourglassLm::new(&HourglassLmConfig::new(5, stack), DType::F64, 0).unwrap();
/// let ids = Tensor::from_vec(vec![1.0f64, 4.0, 0.0], &[1, 3]).unwrap();
/// let out = lm.forward_with(&ids, BoundaryInput::Auto).unwrap();
/// assert_eq!(out.logits.dims(), &[1, 3, 5]);
/// ```
#[derive(Debug, Clone)]
pub struct HourglassLmOutput {
    /// Next-token logits, `B × L × vocab_size`.
    pub logits: Tensor,
    /// The hard boundaries used, `B × L`.
    pub boundaries: Tensor,
    /// The binomial prior loss (Gumbel mode only).
    pub prior_loss: Option<Tensor>,
}

/// The terms of [`HourglassLm::loss`].
///
/// ```
/// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig, HourglassLm, HourglassLmConfig};
/// use eingrad::{DType, Tensor};
/// let stack = HourglassConfig { pre_layers: 1, shortened_layers: 1, post_layers: 1,
///     ..HourglassConfig::new(4, 1, BoundaryMode::Gumbel) };
/// let lm = HourglassLm::new(&HourglassLmConfig::new(5, stack), DType::F64, 0).unwrap();
/// let ids = Tensor::from_vec(vec![1.0f64, 4.0, 0.0, 2.0], &[1, 4]).unwrap();
/// let l = lm.loss(&ids, &[4, 0, 2, 3]).unwrap();
/// let (total, lm_term, prior) = (l.loss.item().unwrap(), l.lm_loss.item().unwrap(),
///     l.prior_loss.unwrap().item().unwrap());
/// assert!((total - lm_term - prior).abs() < 1e-12);
/// ```
#[derive(Debug, Clone)]
pub struct HourglassLoss {
    /// `lm_loss + prior_loss` (the source's total), a scalar to call `backward` on.
    pub loss: Tensor,
    /// The mean cross-entropy of the next-token logits.
    pub lm_loss: Tensor,
    /// The binomial prior loss (Gumbel mode only).
    pub prior_loss: Option<Tensor>,
    /// The hard boundaries used, `B × L`.
    pub boundaries: Tensor,
}

/// The hourglass language model: `word_emb` (+ `pos_emb`), dropout, [`HourglassStack`],
/// `ln_f`, `final_cast` (the vocabulary projection, as the source names it).
///
/// Parameter names: `word_emb.weight`, `pos_emb.weight` (with a block size), the stack's
/// names unprefixed (`pre_layers.0.attn.c_attn.weight`, `null_group`, `down_ln.weight`,
/// `boundary_predictor.hidden.weight`, …), `ln_f.weight`, `ln_f.bias`, `final_cast.weight`,
/// `final_cast.bias`.
///
/// As a [`Module`], `forward` maps token ids `B × L` (a tensor of whole numbers) to logits
/// `B × L × vocab_size`.
///
/// ```
/// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig, HourglassLm, HourglassLmConfig};
/// use eingrad::nn::Module;
/// use eingrad::{DType, Tensor};
/// let stack = HourglassConfig { pre_layers: 1, shortened_layers: 1, post_layers: 1,
///     ..HourglassConfig::new(8, 2, BoundaryMode::Whitespace) };
/// let mut cfg = HourglassLmConfig::new(6, stack);
/// cfg.whitespace_ids = vec![0];
/// cfg.block_size = Some(16);
/// let lm = HourglassLm::new(&cfg, DType::F32, 0).unwrap();
/// let ids = Tensor::from_vec(vec![3.0f32, 1.0, 0.0, 2.0, 5.0, 0.0], &[1, 6]).unwrap();
/// let loss = lm.loss(&ids, &[1, 0, 2, 5, 0, 4]).unwrap();
/// assert_eq!(loss.boundaries.to_vec::<f32>().unwrap(), vec![0.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
/// loss.loss.backward().unwrap();
/// assert!(lm.parameters().iter().all(|p| p.grad().is_some()));
/// assert_eq!(lm.named_parameters()[0].0, "word_emb.weight");
/// ```
#[derive(Debug, Clone)]
pub struct HourglassLm {
    config: HourglassLmConfig,
    word_emb: Embedding,
    pos_emb: Option<Embedding>,
    drop: Dropout,
    stack: HourglassStack,
    ln_f: LayerNorm,
    final_cast: Linear,
}

/// Token ids `B × L` (whole numbers) as a flat vector.
fn parse_ids(op: &'static str, ids: &Tensor) -> Result<(usize, usize, Vec<usize>)> {
    if ids.rank() != 2 || ids.dims().contains(&0) {
        return Err(Error::arg(
            op,
            "ids",
            format!("must have shape (B, L) with B, L ≥ 1, got {:?}", ids.dims()),
        ));
    }
    let v = ids
        .to_vec_f64()
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            if v >= 0.0 && v.fract() == 0.0 && v < u32::MAX as f64 {
                Ok(v as usize)
            } else {
                Err(Error::arg(
                    op,
                    "ids",
                    format!("element {i} is {v}, not a non-negative whole number"),
                ))
            }
        })
        .collect::<Result<Vec<usize>>>()?;
    Ok((ids.dims()[0], ids.dims()[1], v))
}

impl HourglassLm {
    /// A model for `cfg` with PyTorch's default initialisation drawn from `seed` (embeddings
    /// standard normal, Linear layers Kaiming-uniform, LayerNorms ones and zeros).
    ///
    /// ```
    /// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig, HourglassLm, HourglassLmConfig};
    /// use eingrad::nn::Module;
    /// let stack = HourglassConfig { pre_layers: 1, shortened_layers: 1, post_layers: 1,
    ///     ..HourglassConfig::new(4, 1, BoundaryMode::FixedEvery(2)) };
    /// let lm = HourglassLm::new(&HourglassLmConfig::new(5, stack), eingrad::DType::F32, 0).unwrap();
    /// assert_eq!(lm.named_parameters().last().unwrap().0, "final_cast.bias");
    /// ```
    pub fn new(cfg: &HourglassLmConfig, dtype: DType, seed: u64) -> Result<HourglassLm> {
        cfg.validate()?;
        let d = cfg.stack.d_model;
        let pos_emb = match cfg.block_size {
            Some(n) => Some(Embedding::new(n, d, dtype, derive_seed(seed, 1))?),
            None => None,
        };
        Ok(HourglassLm {
            config: cfg.clone(),
            word_emb: Embedding::new(cfg.vocab_size, d, dtype, derive_seed(seed, 0))?,
            pos_emb,
            drop: Dropout::new(cfg.stack.dropout, derive_seed(seed, 2))?,
            stack: HourglassStack::new(&cfg.stack, dtype, derive_seed(seed, 3))?,
            ln_f: LayerNorm::new(&[d], cfg.stack.eps, cfg.stack.bias, dtype)?,
            final_cast: Linear::new(d, cfg.vocab_size, true, dtype, derive_seed(seed, 4))?,
        })
    }

    /// The configuration.
    ///
    /// ```
    /// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig, HourglassLm, HourglassLmConfig};
    /// let cfg = HourglassLmConfig::new(5, HourglassConfig { shortened_layers: 1,
    ///     ..HourglassConfig::new(4, 1, BoundaryMode::FixedEvery(2)) });
    /// assert_eq!(HourglassLm::new(&cfg, eingrad::DType::F32, 0).unwrap().config(), &cfg);
    /// ```
    pub fn config(&self) -> &HourglassLmConfig {
        &self.config
    }

    /// The hourglass stack.
    ///
    /// ```
    /// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig, HourglassLm, HourglassLmConfig};
    /// let cfg = HourglassLmConfig::new(5, HourglassConfig { shortened_layers: 1,
    ///     ..HourglassConfig::new(4, 1, BoundaryMode::Gumbel) });
    /// let lm = HourglassLm::new(&cfg, eingrad::DType::F32, 0).unwrap();
    /// assert!(lm.stack().boundary_predictor().is_some());
    /// ```
    pub fn stack(&self) -> &HourglassStack {
        &self.stack
    }

    /// The whitespace mask of `ids` (`B × L`, 1 where the id is in `whitespace_ids`).
    fn whitespace_mask(&self, b: usize, l: usize, ids: &[usize]) -> Result<Tensor> {
        let ws = &self.config.whitespace_ids;
        let v: Vec<f64> = ids
            .iter()
            .map(|i| if ws.contains(i) { 1.0 } else { 0.0 })
            .collect();
        Tensor::from_f64s(&v, &[b, l], self.stack.dtype())
    }

    /// Logits for token ids `B × L` (a tensor of whole numbers below `vocab_size`), with what
    /// the boundary mode needs (see [`HourglassStack::forward_with`]); in whitespace mode
    /// [`BoundaryInput::Auto`] derives the mask from `whitespace_ids`. Errors name the
    /// argument at fault (`ids`, `boundary_input`).
    ///
    /// ```
    /// use eingrad::models::hourglass::{BoundaryInput, BoundaryMode, HourglassConfig, HourglassLm,
    ///     HourglassLmConfig};
    /// use eingrad::{DType, Tensor};
    /// let stack = HourglassConfig { pre_layers: 1, shortened_layers: 1, post_layers: 1,
    ///     ..HourglassConfig::new(4, 1, BoundaryMode::Whitespace) };
    /// let lm = HourglassLm::new(&HourglassLmConfig::new(5, stack), DType::F64, 0).unwrap();
    /// let ids = Tensor::from_vec(vec![1.0f64, 4.0, 0.0], &[1, 3]).unwrap();
    /// let mask = Tensor::from_vec(vec![0.0f64, 1.0, 0.0], &[1, 3]).unwrap();
    /// let out = lm.forward_with(&ids, BoundaryInput::Whitespace(&mask)).unwrap();
    /// assert_eq!(out.boundaries.to_vec::<f64>().unwrap(), vec![0.0, 1.0, 0.0]);
    /// // No whitespace ids configured: Auto cannot find the whitespace.
    /// assert!(lm.forward_with(&ids, BoundaryInput::Auto).is_err());
    /// ```
    pub fn forward_with(
        &self,
        ids: &Tensor,
        boundary_input: BoundaryInput<'_>,
    ) -> Result<HourglassLmOutput> {
        const OP: &str = "HourglassLm::forward";
        let (b, l, flat) = parse_ids(OP, ids)?;
        let mut x = self.word_emb.lookup(&flat, &[b, l])?;
        if let Some(pe) = &self.pos_emb {
            if l > pe.num_embeddings() {
                return Err(Error::arg(
                    OP,
                    "ids",
                    format!(
                        "holds {l} tokens per row, more than the block size {}",
                        pe.num_embeddings()
                    ),
                ));
            }
            let pos: Vec<usize> = (0..l).collect();
            x = x.add(&pe.lookup(&pos, &[1, l])?)?;
        }
        let x = self.drop.forward(&x)?;
        let mask;
        let input = match (self.config.stack.boundaries, boundary_input) {
            (BoundaryMode::Whitespace, BoundaryInput::Auto)
                if !self.config.whitespace_ids.is_empty() =>
            {
                mask = self.whitespace_mask(b, l, &flat)?;
                BoundaryInput::Whitespace(&mask)
            }
            (_, given) => given,
        };
        let out = self.stack.forward_with(&x, input)?;
        let logits = self.final_cast.forward(&self.ln_f.forward(&out.hidden)?)?;
        Ok(HourglassLmOutput {
            logits,
            boundaries: out.boundaries,
            prior_loss: out.prior_loss,
        })
    }

    /// [`HourglassLm::loss_with`] with [`BoundaryInput::Auto`].
    ///
    /// ```
    /// use eingrad::models::hourglass::{BoundaryMode, HourglassConfig, HourglassLm, HourglassLmConfig};
    /// use eingrad::{DType, Tensor};
    /// let stack = HourglassConfig { pre_layers: 1, shortened_layers: 1, post_layers: 1,
    ///     ..HourglassConfig::new(4, 1, BoundaryMode::FixedEvery(2)) };
    /// let lm = HourglassLm::new(&HourglassLmConfig::new(5, stack), DType::F64, 0).unwrap();
    /// let ids = Tensor::from_vec(vec![1.0f64, 4.0, 0.0], &[1, 3]).unwrap();
    /// let l = lm.loss(&ids, &[4, 0, 3]).unwrap();
    /// assert!(l.prior_loss.is_none() && l.loss.item().unwrap() > 0.0);
    /// assert!(lm.loss(&ids, &[4, 0]).unwrap_err().to_string().contains("`targets`"));
    /// ```
    pub fn loss(&self, ids: &Tensor, targets: &[usize]) -> Result<HourglassLoss> {
        self.loss_with(ids, targets, BoundaryInput::Auto)
    }

    /// The training loss for token ids `B × L` and their next tokens `targets` (`B·L` ids,
    /// row-major): the mean cross-entropy plus, in Gumbel mode, the binomial prior loss.
    ///
    /// ```
    /// use eingrad::models::hourglass::{BoundaryInput, BoundaryMode, HourglassConfig, HourglassLm,
    ///     HourglassLmConfig};
    /// use eingrad::{DType, Tensor};
    /// let stack = HourglassConfig { pre_layers: 1, shortened_layers: 1, post_layers: 1,
    ///     ..HourglassConfig::new(4, 1, BoundaryMode::Gumbel) };
    /// let lm = HourglassLm::new(&HourglassLmConfig::new(5, stack), DType::F64, 0).unwrap();
    /// let ids = Tensor::from_vec(vec![1.0f64, 4.0, 0.0], &[1, 3]).unwrap();
    /// let a = lm.loss_with(&ids, &[4, 0, 3], BoundaryInput::GumbelSeed(9)).unwrap();
    /// let b = lm.loss_with(&ids, &[4, 0, 3], BoundaryInput::GumbelSeed(9)).unwrap();
    /// assert_eq!(a.loss.item().unwrap(), b.loss.item().unwrap());
    /// ```
    pub fn loss_with(
        &self,
        ids: &Tensor,
        targets: &[usize],
        boundary_input: BoundaryInput<'_>,
    ) -> Result<HourglassLoss> {
        let n = ids.numel();
        if targets.len() != n {
            return Err(Error::arg(
                "HourglassLm::loss",
                "targets",
                format!(
                    "must hold one id per token ({n} for ids of shape {:?}), got {}",
                    ids.dims(),
                    targets.len()
                ),
            ));
        }
        let out = self.forward_with(ids, boundary_input)?;
        let v = self.config.vocab_size;
        let lm_loss = cross_entropy(&out.logits.reshape(&[n, v])?, targets, Reduction::Mean)?;
        let loss = match &out.prior_loss {
            Some(p) => lm_loss.add(p)?,
            None => lm_loss.clone(),
        };
        Ok(HourglassLoss {
            loss,
            lm_loss,
            prior_loss: out.prior_loss,
            boundaries: out.boundaries,
        })
    }
}

impl Module for HourglassLm {
    /// Logits `B × L × vocab_size` for token ids `B × L` ([`HourglassLm::forward_with`] with
    /// [`BoundaryInput::Auto`]).
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        Ok(self.forward_with(ids, BoundaryInput::Auto)?.logits)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = crate::nn::prefixed("word_emb", self.word_emb.named_parameters());
        if let Some(pe) = &self.pos_emb {
            v.extend(crate::nn::prefixed("pos_emb", pe.named_parameters()));
        }
        v.extend(self.stack.named_parameters());
        v.extend(crate::nn::prefixed("ln_f", self.ln_f.named_parameters()));
        v.extend(crate::nn::prefixed(
            "final_cast",
            self.final_cast.named_parameters(),
        ));
        v
    }
    fn train(&mut self, on: bool) {
        self.drop.train(on);
        self.stack.train(on);
    }
    fn is_training(&self) -> bool {
        self.stack.is_training()
    }
}
