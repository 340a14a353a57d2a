//! [`MlstmLm`]: a language model of pre-LN residual [`MlstmLayer`]s (the xLSTM mLSTM block
//! without a feed-forward): token embedding → `n_layer × (x + MlstmLayer(LayerNorm(x)))` →
//! final LayerNorm → vocabulary head, tied to the embedding or not. No position embedding: the
//! mLSTM's recurrence (its decay matrix and causal conv) orders the tokens.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::nn::{
    cross_entropy, derive_seed, init, prefixed, Embedding, LayerNorm, Linear, Module, Reduction,
};
use crate::tensor::Tensor;

use super::xlstm::{MlstmLayer, MlstmLayerConfig};

/// The sizes of an [`MlstmLm`].
///
/// ```
/// use eingrad::models::mlstm_lm::MlstmLmConfig;
/// let c = MlstmLmConfig::new(65, 128, 4, 7);
/// assert_eq!((c.layer.embedding_dim, c.layer.num_heads, c.layer.num_blocks), (128, 4, 7));
/// assert_eq!(c.layer.inner_dim(), 256);
/// assert!(c.tie_weights && !c.bias);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MlstmLmConfig {
    /// Number of token ids.
    pub vocab_size: usize,
    /// Number of residual mLSTM blocks.
    pub n_layer: usize,
    /// Each block's mLSTM layer (its `embedding_dim` is the model's width).
    pub layer: MlstmLayerConfig,
    /// Biases in the LayerNorms (the blocks' and the final one).
    pub bias: bool,
    /// The head shares the token embedding's weight (as nanoGPT's GPT).
    pub tie_weights: bool,
    /// LayerNorm ε.
    pub eps: f64,
}

impl MlstmLmConfig {
    /// Width `n_embd`, `n_head` heads, `n_layer` blocks; xLSTM's layer defaults otherwise
    /// (projection factor 2 rounded up to a multiple of 64, conv kernel 4, q/k/v blocks of 4,
    /// `num_blocks = n_layer` for the down-projection's init), LayerNorms without bias, tied
    /// head, ε 1e-5.
    pub fn new(vocab_size: usize, n_embd: usize, n_head: usize, n_layer: usize) -> MlstmLmConfig {
        MlstmLmConfig {
            vocab_size,
            n_layer,
            layer: MlstmLayerConfig {
                num_blocks: n_layer.max(1),
                ..MlstmLayerConfig::new(n_embd, n_head)
            },
            bias: false,
            tie_weights: true,
            eps: 1e-5,
        }
    }

    /// Checks every field (and the layer's); the error names the field at fault.
    ///
    /// ```
    /// use eingrad::models::mlstm_lm::MlstmLmConfig;
    /// let e = MlstmLmConfig::new(0, 16, 2, 1).validate().unwrap_err().to_string();
    /// assert!(e.contains("`vocab_size`"), "{e}");
    /// ```
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "MlstmLmConfig";
        if self.vocab_size == 0 {
            return Err(Error::arg(OP, "vocab_size", "must be at least 1"));
        }
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return Err(Error::arg(
                OP,
                "eps",
                format!("must be finite and ≥ 0, got {}", self.eps),
            ));
        }
        self.layer.validate()
    }
}

/// One residual block: `x + mlstm(norm(x))`.
#[derive(Debug, Clone)]
struct MlstmBlock {
    norm: LayerNorm,
    mlstm: MlstmLayer,
}

/// The mLSTM language model.
///
/// Parameter names: `token_embedding.weight`, `blocks.{i}.norm.weight` (`.bias` with biases),
/// `blocks.{i}.mlstm.…` (the [`MlstmLayer`]'s xLSTM names: `proj_up.weight`,
/// `mlstm_cell.fgate.bias`, …), `ln_f.weight`, and `lm_head.weight` (with a tied head, the
/// same tensor as `token_embedding.weight`, listed under both names and once in
/// `parameters()`, as [`crate::models::gpt::Gpt`]).
///
/// ```
/// use eingrad::models::mlstm_lm::{MlstmLm, MlstmLmConfig};
/// use eingrad::nn::Module;
/// let mut cfg = MlstmLmConfig::new(10, 8, 2, 2);
/// cfg.layer.round_proj_up_to_multiple_of = 8;
/// let lm = MlstmLm::new(&cfg, eingrad::DType::F32, 0).unwrap();
/// let logits = lm.logits(&[1, 2, 3, 4, 5, 6], 2, 3).unwrap();
/// assert_eq!(logits.dims(), &[2, 3, 10]);
/// let loss = lm.loss(&[1, 2, 3, 4, 5, 6], &[2, 3, 4, 5, 6, 7], 2, 3).unwrap();
/// loss.backward().unwrap();
/// assert!(lm.parameters().iter().all(|p| p.grad().is_some()));
/// assert_eq!(lm.named_parameters().last().unwrap().0, "lm_head.weight");
/// ```
#[derive(Debug, Clone)]
pub struct MlstmLm {
    config: MlstmLmConfig,
    token_embedding: Embedding,
    blocks: Vec<MlstmBlock>,
    ln_f: LayerNorm,
    /// The untied head (`None` when tied).
    lm_head: Option<Linear>,
}

impl MlstmLm {
    /// A model for `cfg`, drawn from `seed`: the token embedding (and an untied head) from
    /// N(0, 2/(5·n_embd)) (xLSTM's `small_init`), the layers as [`MlstmLayer::new`], LayerNorms
    /// ones and zeros.
    pub fn new(cfg: &MlstmLmConfig, dtype: DType, seed: u64) -> Result<MlstmLm> {
        cfg.validate()?;
        let e = cfg.layer.embedding_dim;
        let small = (2.0 / (5.0 * e as f64)).sqrt();
        let token_embedding = Embedding::from_weight(init::normal(
            &[cfg.vocab_size, e],
            0.0,
            small,
            dtype,
            derive_seed(seed, 0),
        )?)?;
        let blocks = (0..cfg.n_layer)
            .map(|i| {
                Ok(MlstmBlock {
                    norm: LayerNorm::new(&[e], cfg.eps, cfg.bias, dtype)?,
                    mlstm: MlstmLayer::new(&cfg.layer, dtype, derive_seed(seed, 100 + i as u64))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let lm_head = if cfg.tie_weights {
            None
        } else {
            Some(Linear::from_tensors(
                init::normal(
                    &[cfg.vocab_size, e],
                    0.0,
                    small,
                    dtype,
                    derive_seed(seed, 1),
                )?,
                None,
            )?)
        };
        Ok(MlstmLm {
            config: *cfg,
            token_embedding,
            blocks,
            ln_f: LayerNorm::new(&[e], cfg.eps, cfg.bias, dtype)?,
            lm_head,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MlstmLmConfig {
        &self.config
    }

    /// Logits `(b, t, vocab_size)` for `ids` (row-major `(b, t)`, `t ≥ 1`). Position `i`'s
    /// logits depend on `ids[..=i]` of its row only.
    pub fn logits(&self, ids: &[usize], b: usize, t: usize) -> Result<Tensor> {
        const OP: &str = "MlstmLm::logits";
        if b == 0 || t == 0 || ids.len() != b * t {
            return Err(Error::arg(
                OP,
                "ids",
                format!("{} ids given for b = {b}, t = {t} (both ≥ 1)", ids.len()),
            ));
        }
        let mut x = self.token_embedding.lookup(ids, &[b, t])?;
        for block in &self.blocks {
            x = x.add(&block.mlstm.forward(&block.norm.forward(&x)?)?)?;
        }
        let x = self.ln_f.forward(&x)?;
        match &self.lm_head {
            Some(head) => head.forward(&x),
            None => crate::einsum::einsum("btc,vc->btv", &[&x, self.token_embedding.weight()]),
        }
    }

    /// Mean next-token cross-entropy (nats) of `targets` under the logits of `ids` (both
    /// row-major `(b, t)`).
    pub fn loss(&self, ids: &[usize], targets: &[usize], b: usize, t: usize) -> Result<Tensor> {
        if targets.len() != ids.len() {
            return Err(Error::arg(
                "MlstmLm::loss",
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
}

impl Module for MlstmLm {
    /// `x` holds ids `(b, t)` as whole numbers; returns the logits `(b, t, vocab_size)`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (ids, b, t) = crate::nn::batch_ids_of("MlstmLm::forward", x)?;
        self.logits(&ids, b, t)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = prefixed("token_embedding", self.token_embedding.named_parameters());
        for (i, b) in self.blocks.iter().enumerate() {
            v.extend(prefixed(
                &format!("blocks.{i}.norm"),
                b.norm.named_parameters(),
            ));
            v.extend(prefixed(
                &format!("blocks.{i}.mlstm"),
                b.mlstm.named_parameters(),
            ));
        }
        v.extend(prefixed("ln_f", self.ln_f.named_parameters()));
        match &self.lm_head {
            Some(h) => v.extend(prefixed("lm_head", h.named_parameters())),
            None => v.push((
                "lm_head.weight".to_string(),
                self.token_embedding.weight().clone(),
            )),
        }
        v
    }
    fn train(&mut self, on: bool) {
        for b in &mut self.blocks {
            b.mlstm.train(on);
        }
    }
    fn is_training(&self) -> bool {
        self.blocks.first().is_none_or(|b| b.mlstm.is_training())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(tie: bool) -> MlstmLm {
        let mut cfg = MlstmLmConfig::new(11, 8, 2, 2);
        cfg.layer.round_proj_up_to_multiple_of = 8;
        cfg.tie_weights = tie;
        cfg.bias = !tie;
        MlstmLm::new(&cfg, DType::F64, 5).unwrap()
    }

    /// The logits of every prefix equal those of the full sequence at the same positions, in
    /// every row of a batch (nothing leaks from later tokens or other rows).
    #[test]
    fn every_prefix_gets_the_logits_of_the_full_sequence() {
        for tie in [true, false] {
            let lm = small(tie);
            let ids: Vec<usize> = (0..2 * 13).map(|i| (i * 5 + 1) % 11).collect();
            let full = lm.logits(&ids, 2, 13).unwrap().to_vec_f64();
            for t in 1..=13 {
                let rows: Vec<usize> = (0..2)
                    .flat_map(|r| ids[r * 13..r * 13 + t].to_vec())
                    .collect();
                let part = lm.logits(&rows, 2, t).unwrap().to_vec_f64();
                for r in 0..2 {
                    for p in 0..t {
                        for v in 0..11 {
                            let a = part[(r * t + p) * 11 + v];
                            let b = full[(r * 13 + p) * 11 + v];
                            assert!(
                                (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                                "t {t}: {a} vs {b}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn names_ties_and_state_dicts() {
        let tied = small(true);
        let names: Vec<String> = tied.named_parameters().into_iter().map(|p| p.0).collect();
        assert_eq!(names[0], "token_embedding.weight");
        assert!(names.contains(&"blocks.1.mlstm.mlstm_cell.fgate.bias".to_string()));
        assert!(!names.iter().any(|n| n.ends_with("norm.bias")));
        assert_eq!(tied.parameters().len() + 1, names.len());
        let untied = small(false);
        assert!(untied
            .named_parameters()
            .iter()
            .any(|(n, _)| n == "blocks.0.norm.bias"));
        let copy = small(false);
        copy.load_state_dict(&untied.state_dict(), true).unwrap();
        let e = tied
            .load_state_dict(&untied.state_dict(), true)
            .unwrap_err();
        assert!(e.to_string().contains("unexpected keys"), "{e}");
        assert!(tied.logits(&[1, 2], 1, 3).is_err());
        assert!(tied.loss(&[1, 2], &[1], 1, 2).is_err());
    }
}
