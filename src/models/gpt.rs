//! A GPT language model compatible with nanoGPT (`model.py`): token and position embeddings,
//! pre-LN transformer [`Block`]s, a final LayerNorm and a vocabulary head tied to the token
//! embedding, with nanoGPT's initialisation and parameter names, so a state dict moves
//! between the two unchanged.

use crate::autograd::no_grad;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::nn::{
    cross_entropy, derive_seed, init, prefixed, Activation, Block, BlockConfig, Dropout, Embedding,
    LayerNorm, Module, Reduction,
};
use crate::tensor::{SplitMix64, Tensor};

/// nanoGPT's `GPTConfig`.
///
/// ```
/// let c = eingrad::models::gpt::GptConfig::shakespeare_char(65);
/// assert_eq!((c.n_layer, c.n_head, c.n_embd, c.block_size), (4, 4, 128, 64));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GptConfig {
    /// Longest context (positions).
    pub block_size: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Number of transformer blocks.
    pub n_layer: usize,
    /// Attention heads per block.
    pub n_head: usize,
    /// Width.
    pub n_embd: usize,
    /// Dropout probability.
    pub dropout: f64,
    /// Biases in Linear layers and LayerNorms.
    pub bias: bool,
}

impl GptConfig {
    /// nanoGPT's CPU recipe for character-level Shakespeare (`config/train_shakespeare_char.py`
    /// with the README's CPU overrides): 4 layers, 4 heads, width 128, context 64, no dropout,
    /// and `train.py`'s default `bias = False`.
    pub fn shakespeare_char(vocab_size: usize) -> GptConfig {
        GptConfig {
            block_size: 64,
            vocab_size,
            n_layer: 4,
            n_head: 4,
            n_embd: 128,
            dropout: 0.0,
            bias: false,
        }
    }
    fn check(&self) -> Result<()> {
        let bad = |arg: &'static str, msg: String| Err(Error::arg("GptConfig", arg, msg));
        if self.block_size == 0 {
            return bad("block_size", "must be at least 1".into());
        }
        if self.vocab_size == 0 {
            return bad("vocab_size", "must be at least 1".into());
        }
        if self.n_head == 0 || self.n_embd == 0 || !self.n_embd.is_multiple_of(self.n_head) {
            return bad(
                "n_head",
                format!(
                    "must be ≥ 1 and divide n_embd = {}, got {}",
                    self.n_embd, self.n_head
                ),
            );
        }
        Ok(())
    }
}

/// The GPT model. Names: `transformer.wte.weight`, `transformer.wpe.weight`,
/// `transformer.h.{i}.ln_1.weight`, …, `transformer.ln_f.weight`, and `lm_head.weight`, which
/// is the same tensor as `transformer.wte.weight` (weight tying, as nanoGPT; listed under both
/// names in the state dict, once in `parameters()`).
///
/// ```
/// use eingrad::models::gpt::{Gpt, GptConfig};
/// use eingrad::nn::Module;
/// let cfg = GptConfig { n_layer: 1, n_embd: 8, n_head: 2, block_size: 4, ..GptConfig::shakespeare_char(10) };
/// let gpt = Gpt::new(cfg, eingrad::DType::F32, 0).unwrap();
/// let logits = gpt.logits(&[1, 2, 3, 4, 5, 6], 2, 3).unwrap();
/// assert_eq!(logits.dims(), &[2, 3, 10]);
/// let loss = gpt.loss(&[1, 2, 3, 4, 5, 6], &[2, 3, 4, 5, 6, 7], 2, 3).unwrap();
/// assert!((loss.item().unwrap() - (10f64).ln()).abs() < 0.2); // near-uniform at init
/// assert_eq!(gpt.named_parameters().last().unwrap().0, "lm_head.weight");
/// ```
#[derive(Clone, Debug)]
pub struct Gpt {
    config: GptConfig,
    wte: Embedding,
    wpe: Embedding,
    drop: Dropout,
    h: Vec<Block>,
    ln_f: LayerNorm,
    training: bool,
}

impl Gpt {
    /// A model with nanoGPT's initialisation drawn from `seed`: every Linear and Embedding
    /// weight N(0, 0.02), biases 0, the residual projections (`c_proj`) N(0, 0.02/√(2·n_layer)),
    /// LayerNorm weights 1.
    pub fn new(config: GptConfig, dtype: DType, seed: u64) -> Result<Gpt> {
        config.check()?;
        let c = config.n_embd;
        let block_cfg = BlockConfig {
            bias: config.bias,
            dropout: config.dropout,
            activation: Activation::Gelu,
            ..BlockConfig::new(c, config.n_head)
        };
        let h = (0..config.n_layer)
            .map(|i| Block::new(&block_cfg, dtype, derive_seed(seed, 100 + i as u64)))
            .collect::<Result<Vec<_>>>()?;
        let gpt = Gpt {
            config,
            wte: Embedding::new(config.vocab_size, c, dtype, derive_seed(seed, 1))?,
            wpe: Embedding::new(config.block_size, c, dtype, derive_seed(seed, 2))?,
            drop: Dropout::new(config.dropout, derive_seed(seed, 3))?,
            h,
            ln_f: LayerNorm::new(&[c], 1e-5, config.bias, dtype)?,
            training: true,
        };
        let proj_std = 0.02 / ((2 * config.n_layer) as f64).sqrt();
        for (k, (name, p)) in gpt.named_parameters().into_iter().enumerate() {
            if name == "lm_head.weight" {
                continue; // tied to wte
            }
            let s = derive_seed(seed, 1000 + k as u64);
            if name.ends_with("c_proj.weight") {
                init::normal_(&p, 0.0, proj_std, s)?;
            } else if name.ends_with(".bias") {
                init::zeros_(&p)?;
            } else if p.rank() == 2 {
                init::normal_(&p, 0.0, 0.02, s)?;
            }
        }
        Ok(gpt)
    }
    /// The configuration.
    pub fn config(&self) -> &GptConfig {
        &self.config
    }
    /// The number of parameters without the position embedding (nanoGPT's count).
    pub fn num_parameters_without_positions(&self) -> usize {
        self.num_parameters() - self.wpe.weight().numel()
    }

    /// Logits `(b, t, vocab_size)` for `ids` (row-major `(b, t)`, t ≤ block_size).
    pub fn logits(&self, ids: &[usize], b: usize, t: usize) -> Result<Tensor> {
        const OP: &str = "Gpt::logits";
        if t == 0 || t > self.config.block_size {
            return Err(Error::arg(
                OP,
                "t",
                format!(
                    "sequence length {t} must be in 1..={} (block_size)",
                    self.config.block_size
                ),
            ));
        }
        if ids.len() != b * t {
            return Err(Error::arg(
                OP,
                "ids",
                format!("{} ids given for b = {b}, t = {t}", ids.len()),
            ));
        }
        let pos: Vec<usize> = (0..t).collect();
        let tok = self.wte.lookup(ids, &[b, t])?;
        let mut x = self
            .drop
            .forward(&tok.add(&self.wpe.lookup(&pos, &[t])?)?)?;
        for block in &self.h {
            x = block.forward(&x)?;
        }
        let x = self.ln_f.forward(&x)?;
        crate::einsum::einsum("btc,vc->btv", &[&x, self.wte.weight()])
    }

    /// Mean next-token cross-entropy (nats) of `targets` under the logits of `ids` (both
    /// row-major `(b, t)`).
    pub fn loss(&self, ids: &[usize], targets: &[usize], b: usize, t: usize) -> Result<Tensor> {
        if targets.len() != ids.len() {
            return Err(Error::arg(
                "Gpt::loss",
                "targets",
                format!("{} targets for {} ids", targets.len(), ids.len()),
            ));
        }
        let logits = self.logits(ids, b, t)?;
        cross_entropy(
            &logits.reshape(&[b * t, self.config.vocab_size])?,
            targets,
            Reduction::Mean,
        )
    }

    /// Generates `n` tokens after `prompt`, sampling from softmax(logits / temperature) of the
    /// last position (the context cropped to `block_size`), with an optional top-k cut; the
    /// draws come from `seed`. `temperature = 0` is greedy decoding.
    ///
    /// ```
    /// use eingrad::models::gpt::{Gpt, GptConfig};
    /// let cfg = GptConfig { n_layer: 1, n_embd: 8, n_head: 2, block_size: 4, ..GptConfig::shakespeare_char(10) };
    /// let gpt = Gpt::new(cfg, eingrad::DType::F32, 0).unwrap();
    /// let out = gpt.generate(&[1, 2], 6, 1.0, None, 7).unwrap();
    /// assert_eq!(out.len(), 6);
    /// assert_eq!(out, gpt.generate(&[1, 2], 6, 1.0, None, 7).unwrap());
    /// ```
    pub fn generate(
        &self,
        prompt: &[usize],
        n: usize,
        temperature: f64,
        top_k: Option<usize>,
        seed: u64,
    ) -> Result<Vec<usize>> {
        const OP: &str = "Gpt::generate";
        if prompt.is_empty() {
            return Err(Error::arg(OP, "prompt", "needs at least one token"));
        }
        if !(temperature.is_finite() && temperature >= 0.0) {
            return Err(Error::arg(
                OP,
                "temperature",
                format!("must be finite and ≥ 0, got {temperature}"),
            ));
        }
        if top_k == Some(0) {
            return Err(Error::arg(OP, "top_k", "must be at least 1"));
        }
        let mut rng = SplitMix64::new(seed);
        let mut ctx = prompt.to_vec();
        let mut out = Vec::with_capacity(n);
        no_grad(|| -> Result<()> {
            for _ in 0..n {
                let start = ctx.len().saturating_sub(self.config.block_size);
                let window = &ctx[start..];
                let logits = self.logits(window, 1, window.len())?;
                let v = self.config.vocab_size;
                let last = logits.to_vec_f64()[(window.len() - 1) * v..].to_vec();
                let next = super::sample_logits(&last, temperature, top_k, rng.next_f64());
                out.push(next);
                ctx.push(next);
            }
            Ok(())
        })?;
        Ok(out)
    }
}

impl Module for Gpt {
    /// `x` holds ids `(b, t)` as whole numbers; returns the logits `(b, t, vocab_size)`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (ids, b, t) = crate::nn::batch_ids_of("Gpt::forward", x)?;
        self.logits(&ids, b, t)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = prefixed("transformer.wte", self.wte.named_parameters());
        v.extend(prefixed("transformer.wpe", self.wpe.named_parameters()));
        for (i, b) in self.h.iter().enumerate() {
            v.extend(prefixed(
                &format!("transformer.h.{i}"),
                b.named_parameters(),
            ));
        }
        v.extend(prefixed("transformer.ln_f", self.ln_f.named_parameters()));
        v.push(("lm_head.weight".to_string(), self.wte.weight().clone()));
        v
    }
    fn train(&mut self, on: bool) {
        self.training = on;
        self.drop.train(on);
        for b in &mut self.h {
            b.train(on);
        }
    }
    fn is_training(&self) -> bool {
        self.training
    }
}
