//! [`CausalSelfAttention`]: multi-head self-attention with a causal mask, written as a fused
//! q/k/v projection, two einsums (scores and mixing) and a softmax, as nanoGPT's layer.

use super::{derive_seed, prefixed, Dropout, Linear, Module};
use crate::dtype::DType;
use crate::einsum::einsum;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The additive mask of causal attention over `t` positions: 0 where key ≤ query, −∞ above
/// the diagonal (shape `(t, t)`).
///
/// ```
/// let m = eingrad::nn::causal_mask(2, eingrad::DType::F64).unwrap().to_vec::<f64>().unwrap();
/// assert_eq!(m, vec![0.0, f64::NEG_INFINITY, 0.0, 0.0]);
/// ```
pub fn causal_mask(t: usize, dtype: DType) -> Result<Tensor> {
    let mut v = vec![0.0; t * t];
    for q in 0..t {
        for k in q + 1..t {
            v[q * t + k] = f64::NEG_INFINITY;
        }
    }
    Tensor::from_f64s(&v, &[t, t], dtype)
}

/// Causal multi-head self-attention: `x (B, T, C)` → `c_attn` → q, k, v split into
/// `n_head` heads of size `C / n_head` → scores `einsum("bqhd,bkhd->bhqk") / √d` plus the
/// −∞ causal mask (and the key-padding mask) → softmax over keys → dropout → `einsum(
/// "bhqk,bkhd->bqhd")` → `c_proj` → dropout. Parameter names are nanoGPT's
/// (`c_attn.weight`, `c_proj.bias`).
///
/// A fully masked row (a query whose every key is masked) gives a zero output row with finite
/// derivatives of every order: eingrad's softmax of an all-(−∞) row is zero, not NaN.
///
/// ```
/// use eingrad::nn::{CausalSelfAttention, Module};
/// use eingrad::{DType, Tensor};
/// let attn = CausalSelfAttention::new(8, 2, true, 0.0, DType::F64, 0).unwrap();
/// let x = Tensor::randn(&[3, 5, 8], DType::F64, 1).unwrap();
/// assert_eq!(attn.forward(&x).unwrap().dims(), &[3, 5, 8]);
/// let names: Vec<_> = attn.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["c_attn.weight", "c_attn.bias", "c_proj.weight", "c_proj.bias"]);
/// ```
#[derive(Clone, Debug)]
pub struct CausalSelfAttention {
    c_attn: Linear,
    c_proj: Linear,
    n_head: usize,
    attn_dropout: Dropout,
    resid_dropout: Dropout,
}

impl CausalSelfAttention {
    /// A layer of width `n_embd` with `n_head` heads (`n_head` must divide `n_embd`),
    /// linear biases if `bias`, and dropout probability `dropout` on the attention weights
    /// and the output; PyTorch's default Linear init from `seed`.
    pub fn new(
        n_embd: usize,
        n_head: usize,
        bias: bool,
        dropout: f64,
        dtype: DType,
        seed: u64,
    ) -> Result<CausalSelfAttention> {
        if n_head == 0 || !n_embd.is_multiple_of(n_head) {
            return Err(Error::arg(
                "CausalSelfAttention::new",
                "n_head",
                format!("must be ≥ 1 and divide n_embd = {n_embd}, got {n_head}"),
            ));
        }
        CausalSelfAttention::from_layers(
            Linear::new(n_embd, 3 * n_embd, bias, dtype, derive_seed(seed, 0))?,
            Linear::new(n_embd, n_embd, bias, dtype, derive_seed(seed, 1))?,
            n_head,
            dropout,
            seed,
        )
    }
    /// A layer from its projections: `c_attn` maps C → 3C (q, k, v in that order), `c_proj`
    /// C → C.
    pub fn from_layers(
        c_attn: Linear,
        c_proj: Linear,
        n_head: usize,
        dropout: f64,
        seed: u64,
    ) -> Result<CausalSelfAttention> {
        const OP: &str = "CausalSelfAttention::from_layers";
        let c = c_proj.out_features();
        if c_proj.in_features() != c || c_attn.in_features() != c || c_attn.out_features() != 3 * c
        {
            return Err(Error::arg(
                OP,
                "c_attn",
                format!(
                    "needs c_attn: {c} → {}, c_proj: {c} → {c}; got {:?} and {:?}",
                    3 * c,
                    c_attn,
                    c_proj
                ),
            ));
        }
        if n_head == 0 || !c.is_multiple_of(n_head) {
            return Err(Error::arg(
                OP,
                "n_head",
                format!("must be ≥ 1 and divide n_embd = {c}, got {n_head}"),
            ));
        }
        Ok(CausalSelfAttention {
            c_attn,
            c_proj,
            n_head,
            attn_dropout: Dropout::new(dropout, derive_seed(seed, 2))?,
            resid_dropout: Dropout::new(dropout, derive_seed(seed, 3))?,
        })
    }
    /// Number of heads.
    pub fn n_head(&self) -> usize {
        self.n_head
    }
    /// The fused q/k/v projection.
    pub fn c_attn(&self) -> &Linear {
        &self.c_attn
    }
    /// The output projection.
    pub fn c_proj(&self) -> &Linear {
        &self.c_proj
    }
    /// Attention with an optional key-padding mask `(B, T)`: 1 marks a padded key that no
    /// query may attend to, 0 a real one (PyTorch's `key_padding_mask` with True = pad).
    ///
    /// ```
    /// use eingrad::nn::CausalSelfAttention;
    /// use eingrad::{DType, Tensor};
    /// let attn = CausalSelfAttention::new(4, 1, false, 0.0, DType::F64, 0).unwrap();
    /// let x = Tensor::randn(&[1, 3, 4], DType::F64, 1).unwrap();
    /// // Key 0 padded: query 0 sees nothing and gets a zero row.
    /// let pad = Tensor::from_vec(vec![1.0f64, 0.0, 0.0], &[1, 3]).unwrap();
    /// let y = attn.forward_masked(&x, Some(&pad)).unwrap().to_vec::<f64>().unwrap();
    /// assert_eq!(&y[..4], &[0.0; 4]);
    /// let bad = Tensor::zeros(&[1, 2], DType::F64).unwrap();
    /// assert!(attn.forward_masked(&x, Some(&bad)).unwrap_err().to_string().contains("key_padding_mask"));
    /// ```
    pub fn forward_masked(&self, x: &Tensor, key_padding_mask: Option<&Tensor>) -> Result<Tensor> {
        const OP: &str = "CausalSelfAttention::forward";
        let c = self.c_proj.out_features();
        if x.rank() != 3 || x.dims()[2] != c {
            return Err(Error::arg(
                OP,
                "x",
                format!("must have shape (B, T, {c}), got {:?}", x.dims()),
            ));
        }
        let (b, t) = (x.dims()[0], x.dims()[1]);
        let (h, d) = (self.n_head, c / self.n_head);
        if x.dtype() != self.c_attn.weight().dtype() {
            return Err(Error::arg(
                OP,
                "x",
                format!(
                    "dtype {:?} differs from the weights' {:?}",
                    x.dtype(),
                    self.c_attn.weight().dtype()
                ),
            ));
        }
        // q, k and v from the three row blocks of c_attn's weight: the same numbers as
        // narrowing c_attn(x), but the backward adds three small weight-block gradients
        // instead of scattering three activation-sized slices into zeros.
        let project = |i: usize| -> Result<Tensor> {
            let w = self.c_attn.weight().narrow(0, i * c, c)?;
            let y = einsum("bti,oi->bto", &[x, &w])?;
            let y = match self.c_attn.bias() {
                Some(bias) => y.add(&bias.narrow(0, i * c, c)?)?,
                None => y,
            };
            y.reshape(&[b, t, h, d])
        };
        // 1/√d applied to q (B·T·C values) rather than to the scores (B·H·T·T).
        let q = project(0)?.mul_scalar(1.0 / (d as f64).sqrt())?;
        let (k, v) = (project(1)?, project(2)?);
        let scores = einsum("bqhd,bkhd->bhqk", &[&q, &k])?;
        let mut mask = causal_mask(t, x.dtype())?;
        if let Some(pad) = key_padding_mask {
            if pad.dims() != [b, t] {
                return Err(Error::arg(
                    OP,
                    "key_padding_mask",
                    format!("must have shape (B, T) = [{b}, {t}], got {:?}", pad.dims()),
                ));
            }
            let additive: Vec<f64> = pad
                .to_vec_f64()
                .into_iter()
                .map(|p| if p != 0.0 { f64::NEG_INFINITY } else { 0.0 })
                .collect();
            let additive = Tensor::from_f64s(&additive, &[b, 1, 1, t], x.dtype())?;
            mask = mask.add(&additive)?;
        }
        let att = self
            .attn_dropout
            .forward(&scores.add(&mask)?.softmax(-1)?)?;
        let y = einsum("bhqk,bkhd->bqhd", &[&att, &v])?.reshape(&[b, t, c])?;
        self.resid_dropout.forward(&self.c_proj.forward(&y)?)
    }
}

impl Module for CausalSelfAttention {
    /// `x (B, T, C)` → `(B, T, C)`, causal, no padding mask.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_masked(x, None)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = prefixed("c_attn", self.c_attn.named_parameters());
        v.extend(prefixed("c_proj", self.c_proj.named_parameters()));
        v
    }
    fn train(&mut self, on: bool) {
        self.attn_dropout.train(on);
        self.resid_dropout.train(on);
    }
    fn is_training(&self) -> bool {
        self.attn_dropout.is_training()
    }
}
