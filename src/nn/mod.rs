//! Neural-network building blocks: the [`Module`] trait with named parameters and state
//! dicts, layers written as einsum + activations ([`Linear`], [`Embedding`], [`LayerNorm`],
//! [`RMSNorm`], [`Dropout`], [`Conv1d`], [`CausalSelfAttention`], the transformer [`Block`]),
//! containers ([`Sequential`], [`Mlp`]), initialisers ([`init`]) and losses ([`loss`]).
//!
//! Parameters are leaf tensors with `requires_grad`; a module's forward is ordinary tensor
//! code, so gradients of any order flow through it. Optimizers live in [`crate::optim`].
//!
//! ```
//! use eingrad::nn::{cross_entropy, Activation, Mlp, Module, Reduction};
//! use eingrad::{DType, Tensor};
//! let mlp = Mlp::new(&[4, 8, 3], Activation::Relu, DType::F32, 0).unwrap();
//! let x = Tensor::randn(&[5, 4], DType::F32, 1).unwrap();
//! let loss = cross_entropy(&mlp.forward(&x).unwrap(), &[0, 2, 1, 1, 0], Reduction::Mean).unwrap();
//! loss.backward().unwrap();
//! assert!(mlp.parameters().iter().all(|p| p.grad().is_some()));
//! ```

mod activation;
mod attention;
mod conv;
mod dropout;
mod embedding;
pub mod init;
mod linear;
pub mod loss;
mod norm;
mod sequential;
mod state;
mod transformer;

pub use activation::Activation;
pub use attention::{causal_mask, CausalSelfAttention};
pub use conv::Conv1d;
pub use dropout::Dropout;
pub(crate) use embedding::batch_ids_of;
pub use embedding::Embedding;
pub use linear::Linear;
pub use loss::{binary_cross_entropy_with_logits, cross_entropy, mse_loss, Reduction};
pub use norm::{LayerNorm, RMSNorm};
pub use sequential::{Mlp, Sequential};
pub use state::{prefixed, LoadReport, StateDict};
pub use transformer::{Block, BlockConfig, FeedForward};

use crate::error::Result;
use crate::tensor::Tensor;

/// A layer or a model: a differentiable function of its input and its parameters.
///
/// ```
/// use eingrad::nn::{Linear, Module};
/// use eingrad::{DType, Tensor};
/// let lin = Linear::new(3, 2, true, DType::F64, 0).unwrap();
/// assert_eq!(lin.parameters().len(), 2);
/// assert_eq!(lin.num_parameters(), 3 * 2 + 2);
/// let y = lin.forward(&Tensor::ones(&[4, 3], DType::F64).unwrap()).unwrap();
/// assert_eq!(y.dims(), &[4, 2]);
/// ```
pub trait Module {
    /// Applies the module to `x`.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;
    /// The trainable parameters under PyTorch-style dotted names (`0.weight`,
    /// `h.0.attn.c_attn.bias`), as handles sharing storage with the module's own: an
    /// optimizer updating them updates the module. A tensor shared by two names (tied
    /// weights) is listed under each.
    fn named_parameters(&self) -> Vec<(String, Tensor)>;
    /// Non-trainable state saved with the model (running statistics, fixed masks), by name;
    /// none by default.
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }
    /// The trainable parameters (leaf tensors with `requires_grad`) in `named_parameters`
    /// order, each tensor once even when tied under several names.
    fn parameters(&self) -> Vec<Tensor> {
        let mut seen = std::collections::HashSet::new();
        self.named_parameters()
            .into_iter()
            .filter(|(_, t)| seen.insert(t.id()))
            .map(|(_, t)| t)
            .collect()
    }
    /// Parameters then buffers by name: what a checkpoint stores. The tensors are detached
    /// handles on the module's own buffers.
    ///
    /// ```
    /// use eingrad::nn::{Linear, Module};
    /// use eingrad::DType;
    /// let lin = Linear::new(3, 2, true, DType::F32, 0).unwrap();
    /// let sd = lin.state_dict();
    /// assert_eq!(sd.names().collect::<Vec<_>>(), ["weight", "bias"]);
    /// ```
    fn state_dict(&self) -> StateDict {
        self.named_parameters()
            .into_iter()
            .chain(self.named_buffers())
            .map(|(n, t)| (n, t.detach()))
            .collect()
    }
    /// Copies the values of `state_dict` into this module's parameters and buffers, in place.
    /// An entry whose shape or dtype differs from the module's is an error naming it, and
    /// then nothing is loaded; with `strict`, so is a missing or an unexpected name.
    /// Otherwise returns the names that did not match.
    ///
    /// ```
    /// use eingrad::nn::{Linear, Module};
    /// use eingrad::DType;
    /// let a = Linear::new(3, 2, true, DType::F32, 0).unwrap();
    /// let b = Linear::new(3, 2, true, DType::F32, 1).unwrap();
    /// b.load_state_dict(&a.state_dict(), true).unwrap();
    /// assert_eq!(a.weight().to_vec_f64(), b.weight().to_vec_f64());
    /// let c = Linear::new(4, 2, false, DType::F32, 0).unwrap();
    /// let e = c.load_state_dict(&a.state_dict(), true).unwrap_err().to_string();
    /// assert!(e.contains("`weight`") && e.contains("unexpected keys [\"bias\"]"), "{e}");
    /// ```
    fn load_state_dict(&self, state_dict: &StateDict, strict: bool) -> Result<LoadReport> {
        let targets: Vec<(String, Tensor)> = self
            .named_parameters()
            .into_iter()
            .chain(self.named_buffers())
            .collect();
        state::load_into(&targets, state_dict, strict)
    }
    /// Switches training mode on or off (layers such as dropout behave differently); the
    /// default does nothing.
    fn train(&mut self, on: bool) {
        let _ = on;
    }
    /// Whether the module is in training mode (true unless the module tracks it).
    fn is_training(&self) -> bool {
        true
    }
    /// Same as `train(false)`.
    fn eval(&mut self) {
        self.train(false)
    }
    /// Clears the gradients of every parameter (`set_to_none` semantics).
    fn zero_grad(&self) {
        for p in self.parameters() {
            p.zero_grad();
        }
    }
    /// Total number of scalar parameters (tied tensors counted once).
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|p| p.numel()).sum()
    }
}

impl<M: Module + ?Sized> Module for Box<M> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        (**self).forward(x)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        (**self).named_parameters()
    }
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        (**self).named_buffers()
    }
    fn train(&mut self, on: bool) {
        (**self).train(on)
    }
    fn is_training(&self) -> bool {
        (**self).is_training()
    }
}

/// A tensor given to a layer as a parameter: a leaf is marked `requires_grad` (the handle
/// shares that flag with the caller's); a tensor with history is kept as is, so the layer
/// stays differentiable with respect to whatever made it.
///
/// ```
/// use eingrad::{DType, Tensor};
/// let w = eingrad::nn::as_parameter(Tensor::zeros(&[2], DType::F32).unwrap());
/// assert!(w.requires_grad() && w.is_leaf());
/// ```
pub fn as_parameter(t: Tensor) -> Tensor {
    if t.is_leaf() {
        t.requires_grad_(true)
    } else {
        t
    }
}

/// Derives an independent seed for sub-part `k` of something seeded with `seed`
/// (a SplitMix64 finaliser, so nearby seeds give unrelated streams).
pub(crate) fn derive_seed(seed: u64, k: u64) -> u64 {
    crate::tensor::SplitMix64::derive(seed, k, 0xD1B5_4A32_D192_ED03)
}
