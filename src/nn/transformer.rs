//! The pre-LN transformer block ([`Block`]) and its feed-forward part ([`FeedForward`]), with
//! nanoGPT's structure and parameter names.

use super::{
    derive_seed, prefixed, Activation, CausalSelfAttention, Dropout, LayerNorm, Linear, Module,
};
use crate::dtype::DType;
use crate::error::Result;
use crate::tensor::Tensor;

/// The sizes and switches of a transformer [`Block`] (nanoGPT's `GPTConfig` minus the
/// vocabulary and depth).
///
/// ```
/// let c = eingrad::nn::BlockConfig::new(128, 4);
/// assert_eq!((c.n_embd, c.n_head, c.bias, c.dropout), (128, 4, true, 0.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockConfig {
    /// Width C.
    pub n_embd: usize,
    /// Attention heads (dividing C).
    pub n_head: usize,
    /// Biases in the Linear layers and LayerNorms (nanoGPT's `bias`).
    pub bias: bool,
    /// Dropout probability (attention weights, residual branches).
    pub dropout: f64,
    /// The feed-forward activation (nanoGPT: exact GELU).
    pub activation: Activation,
    /// LayerNorm ε.
    pub eps: f64,
}

impl BlockConfig {
    /// Width and heads; biases on, no dropout, exact GELU, ε = 1e-5 (PyTorch's LayerNorm
    /// default).
    pub fn new(n_embd: usize, n_head: usize) -> BlockConfig {
        BlockConfig {
            n_embd,
            n_head,
            bias: true,
            dropout: 0.0,
            activation: Activation::Gelu,
            eps: 1e-5,
        }
    }
}

/// The transformer's position-wise MLP: `c_fc` (C → 4C), activation, `c_proj` (4C → C),
/// dropout.
///
/// ```
/// use eingrad::nn::{BlockConfig, FeedForward, Module};
/// use eingrad::{DType, Tensor};
/// let ff = FeedForward::new(&BlockConfig::new(8, 2), DType::F32, 0).unwrap();
/// assert_eq!(ff.num_parameters(), 8 * 32 + 32 + 32 * 8 + 8);
/// assert_eq!(ff.forward(&Tensor::ones(&[2, 3, 8], DType::F32).unwrap()).unwrap().dims(), &[2, 3, 8]);
/// ```
#[derive(Clone, Debug)]
pub struct FeedForward {
    c_fc: Linear,
    c_proj: Linear,
    activation: Activation,
    dropout: Dropout,
}

impl FeedForward {
    /// PyTorch's default Linear init from `seed`.
    pub fn new(cfg: &BlockConfig, dtype: DType, seed: u64) -> Result<FeedForward> {
        let c = cfg.n_embd;
        Ok(FeedForward {
            c_fc: Linear::new(c, 4 * c, cfg.bias, dtype, derive_seed(seed, 0))?,
            c_proj: Linear::new(4 * c, c, cfg.bias, dtype, derive_seed(seed, 1))?,
            activation: cfg.activation,
            dropout: Dropout::new(cfg.dropout, derive_seed(seed, 2))?,
        })
    }
    /// A feed-forward part from its layers (`c_fc`: C → H, `c_proj`: H → C).
    pub fn from_layers(
        c_fc: Linear,
        c_proj: Linear,
        activation: Activation,
        dropout: f64,
        seed: u64,
    ) -> Result<FeedForward> {
        if c_fc.out_features() != c_proj.in_features()
            || c_fc.in_features() != c_proj.out_features()
        {
            return Err(crate::error::Error::arg(
                "FeedForward::from_layers",
                "c_proj",
                format!("needs c_fc: C → H and c_proj: H → C, got {c_fc:?} and {c_proj:?}"),
            ));
        }
        Ok(FeedForward {
            c_fc,
            c_proj,
            activation,
            dropout: Dropout::new(dropout, derive_seed(seed, 2))?,
        })
    }
    /// The up-projection.
    pub fn c_fc(&self) -> &Linear {
        &self.c_fc
    }
    /// The down-projection.
    pub fn c_proj(&self) -> &Linear {
        &self.c_proj
    }
}

impl Module for FeedForward {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.activation.apply(&self.c_fc.forward(x)?)?;
        self.dropout.forward(&self.c_proj.forward(&h)?)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = prefixed("c_fc", self.c_fc.named_parameters());
        v.extend(prefixed("c_proj", self.c_proj.named_parameters()));
        v
    }
    fn train(&mut self, on: bool) {
        self.dropout.train(on);
    }
    fn is_training(&self) -> bool {
        self.dropout.is_training()
    }
}

/// The pre-LN transformer block: `x + attn(ln_1(x))`, then `+ mlp(ln_2(·))`. Names
/// `ln_1.weight`, `attn.c_attn.weight`, `mlp.c_fc.weight`, … as nanoGPT's `Block`.
///
/// ```
/// use eingrad::nn::{Block, BlockConfig, Module};
/// use eingrad::{DType, Tensor};
/// let block = Block::new(&BlockConfig::new(8, 2), DType::F32, 0).unwrap();
/// let y = block.forward(&Tensor::randn(&[2, 5, 8], DType::F32, 1).unwrap()).unwrap();
/// assert_eq!(y.dims(), &[2, 5, 8]);
/// assert_eq!(block.named_parameters()[2].0, "attn.c_attn.weight");
/// ```
#[derive(Clone, Debug)]
pub struct Block {
    ln_1: LayerNorm,
    attn: CausalSelfAttention,
    ln_2: LayerNorm,
    mlp: FeedForward,
}

impl Block {
    /// A block with PyTorch's default init from `seed`.
    pub fn new(cfg: &BlockConfig, dtype: DType, seed: u64) -> Result<Block> {
        let c = cfg.n_embd;
        Ok(Block {
            ln_1: LayerNorm::new(&[c], cfg.eps, cfg.bias, dtype)?,
            attn: CausalSelfAttention::new(
                c,
                cfg.n_head,
                cfg.bias,
                cfg.dropout,
                dtype,
                derive_seed(seed, 0),
            )?,
            ln_2: LayerNorm::new(&[c], cfg.eps, cfg.bias, dtype)?,
            mlp: FeedForward::new(cfg, dtype, derive_seed(seed, 1))?,
        })
    }
    /// A block from its parts (their widths must agree).
    pub fn from_parts(
        ln_1: LayerNorm,
        attn: CausalSelfAttention,
        ln_2: LayerNorm,
        mlp: FeedForward,
    ) -> Result<Block> {
        let c = attn.c_proj().out_features();
        if ln_1.weight().dims() != [c]
            || ln_2.weight().dims() != [c]
            || mlp.c_fc().in_features() != c
        {
            return Err(crate::error::Error::arg(
                "Block::from_parts",
                "ln_1",
                format!(
                    "the parts disagree on the width: attention {c}, ln_1 {:?}, ln_2 {:?}, mlp \
                     {:?}",
                    ln_1.weight().dims(),
                    ln_2.weight().dims(),
                    mlp.c_fc()
                ),
            ));
        }
        Ok(Block {
            ln_1,
            attn,
            ln_2,
            mlp,
        })
    }
    /// The block with an optional key-padding mask `(B, T)` for its attention (see
    /// [`CausalSelfAttention::forward_masked`]).
    pub fn forward_masked(&self, x: &Tensor, key_padding_mask: Option<&Tensor>) -> Result<Tensor> {
        let x = x.add(
            &self
                .attn
                .forward_masked(&self.ln_1.forward(x)?, key_padding_mask)?,
        )?;
        x.add(&self.mlp.forward(&self.ln_2.forward(&x)?)?)
    }
    /// The attention sub-layer.
    pub fn attn(&self) -> &CausalSelfAttention {
        &self.attn
    }
    /// The feed-forward sub-layer.
    pub fn mlp(&self) -> &FeedForward {
        &self.mlp
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_masked(x, None)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = prefixed("ln_1", self.ln_1.named_parameters());
        v.extend(prefixed("attn", self.attn.named_parameters()));
        v.extend(prefixed("ln_2", self.ln_2.named_parameters()));
        v.extend(prefixed("mlp", self.mlp.named_parameters()));
        v
    }
    fn train(&mut self, on: bool) {
        self.attn.train(on);
        self.mlp.train(on);
    }
    fn is_training(&self) -> bool {
        self.attn.is_training()
    }
}
