//! Elementwise activation functions as a value ([`Activation`]) and as a [`Module`].

use super::Module;
use crate::error::Result;
use crate::tensor::Tensor;

/// An elementwise nonlinearity, usable on its own (`apply`) or as a parameter-free module.
///
/// ```
/// use eingrad::nn::{Activation, Module};
/// use eingrad::Tensor;
/// let x = Tensor::from_vec(vec![-1.0f64, 2.0], &[2]).unwrap();
/// assert_eq!(Activation::Relu.forward(&x).unwrap().to_vec::<f64>().unwrap(), vec![0.0, 2.0]);
/// assert_eq!(Activation::Identity.apply(&x).unwrap().to_vec::<f64>().unwrap(), vec![-1.0, 2.0]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// max(x, 0).
    Relu,
    /// tanh x.
    Tanh,
    /// GELU, exact (erf) form, as PyTorch's default `nn.GELU()`.
    Gelu,
    /// GELU, tanh approximation (`nn.GELU(approximate="tanh")`, GPT-2's).
    GeluTanh,
    /// x·σ(x) (swish).
    Silu,
    /// σ(x) = 1/(1+e^−x).
    Sigmoid,
    /// x unchanged (no op recorded).
    Identity,
}

impl Activation {
    /// Applies the nonlinearity elementwise.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Relu => x.relu(),
            Activation::Tanh => x.tanh(),
            Activation::Gelu => x.gelu(),
            Activation::GeluTanh => x.gelu_tanh(),
            Activation::Silu => x.silu(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Identity => Ok(x.clone()),
        }
    }
}

impl Module for Activation {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.apply(x)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }
}
