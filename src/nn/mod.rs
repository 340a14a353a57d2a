//! Neural-network building blocks: the [`Module`] trait, [`Linear`], [`Activation`],
//! [`Sequential`] and [`Mlp`], parameter initialisers ([`init`]) and losses ([`loss`]).
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
pub mod init;
mod linear;
pub mod loss;
mod sequential;

pub use activation::Activation;
pub use linear::Linear;
pub use loss::{binary_cross_entropy_with_logits, cross_entropy, mse_loss, Reduction};
pub use sequential::{Mlp, Sequential};

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
    /// The trainable parameters (leaf tensors with `requires_grad`), as handles sharing
    /// storage with the module's own: an optimizer updating them updates the module.
    fn parameters(&self) -> Vec<Tensor>;
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
    /// Total number of scalar parameters.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|p| p.numel()).sum()
    }
}

impl<M: Module + ?Sized> Module for Box<M> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        (**self).forward(x)
    }
    fn parameters(&self) -> Vec<Tensor> {
        (**self).parameters()
    }
    fn train(&mut self, on: bool) {
        (**self).train(on)
    }
    fn is_training(&self) -> bool {
        (**self).is_training()
    }
}

/// Derives an independent seed for sub-part `k` of something seeded with `seed`
/// (a SplitMix64 finaliser, so nearby seeds give unrelated streams).
pub(crate) fn derive_seed(seed: u64, k: u64) -> u64 {
    crate::tensor::SplitMix64::derive(seed, k, 0xD1B5_4A32_D192_ED03)
}
