//! Containers: [`Sequential`] (any modules in a row) and [`Mlp`] (linear layers with one
//! activation between them).

use super::{derive_seed, Activation, Linear, Module};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Modules applied one after the other.
///
/// ```
/// use eingrad::nn::{Activation, Linear, Module, Sequential};
/// use eingrad::{DType, Tensor};
/// let net = Sequential::new()
///     .layer(Linear::new(3, 8, true, DType::F64, 0).unwrap())
///     .layer(Activation::Tanh)
///     .layer(Linear::new(8, 1, true, DType::F64, 1).unwrap());
/// assert_eq!(net.len(), 3);
/// assert_eq!(net.parameters().len(), 4);
/// assert_eq!(net.forward(&Tensor::ones(&[5, 3], DType::F64).unwrap()).unwrap().dims(), &[5, 1]);
/// ```
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
    training: bool,
}

impl Default for Sequential {
    fn default() -> Self {
        Sequential::new()
    }
}

impl Sequential {
    /// An empty container (its forward is the identity), in training mode.
    pub fn new() -> Sequential {
        Sequential {
            layers: Vec::new(),
            training: true,
        }
    }
    /// Appends a module (builder style).
    pub fn layer(mut self, m: impl Module + 'static) -> Sequential {
        self.push(Box::new(m));
        self
    }
    /// Appends a boxed module.
    pub fn push(&mut self, mut m: Box<dyn Module>) {
        m.train(self.training);
        self.layers.push(m);
    }
    /// Number of modules.
    pub fn len(&self) -> usize {
        self.layers.len()
    }
    /// True when there is no module.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
    /// The modules in order.
    pub fn layers(&self) -> &[Box<dyn Module>] {
        &self.layers
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for m in &self.layers {
            h = m.forward(&h)?;
        }
        Ok(h)
    }
    /// Named `{i}.{name}` by position, as PyTorch's `nn.Sequential`.
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = Vec::new();
        for (i, m) in self.layers.iter().enumerate() {
            v.extend(super::prefixed(&i.to_string(), m.named_parameters()));
        }
        v
    }
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut v = Vec::new();
        for (i, m) in self.layers.iter().enumerate() {
            v.extend(super::prefixed(&i.to_string(), m.named_buffers()));
        }
        v
    }
    fn train(&mut self, on: bool) {
        self.training = on;
        for m in &mut self.layers {
            m.train(on);
        }
    }
    fn is_training(&self) -> bool {
        self.training
    }
}

/// A multilayer perceptron: `Linear → act → Linear → act → … → Linear` (no activation after
/// the last layer), every layer with a bias and PyTorch's default init.
///
/// ```
/// use eingrad::nn::{Activation, Mlp, Module};
/// use eingrad::{DType, Tensor};
/// let mlp = Mlp::new(&[784, 256, 256, 10], Activation::Relu, DType::F32, 0).unwrap();
/// assert_eq!(mlp.num_parameters(), 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10);
/// assert_eq!(mlp.forward(&Tensor::zeros(&[2, 784], DType::F32).unwrap()).unwrap().dims(), &[2, 10]);
/// assert!(Mlp::new(&[5], Activation::Relu, DType::F32, 0).is_err());
/// ```
#[derive(Clone, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
    activation: Activation,
    training: bool,
}

impl Mlp {
    /// Layers `sizes[0] → sizes[1] → … → sizes[n-1]`; layer `i` is seeded from `(seed, i)`.
    pub fn new(sizes: &[usize], activation: Activation, dtype: DType, seed: u64) -> Result<Mlp> {
        if sizes.len() < 2 {
            return Err(Error::arg(
                "Mlp::new",
                "sizes",
                format!("needs at least an input and an output size, got {sizes:?}"),
            ));
        }
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| Linear::new(w[0], w[1], true, dtype, derive_seed(seed, i as u64)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Mlp {
            layers,
            activation,
            training: true,
        })
    }
    /// An MLP from existing layers (consecutive sizes must chain).
    pub fn from_layers(layers: Vec<Linear>, activation: Activation) -> Result<Mlp> {
        if layers.is_empty() {
            return Err(Error::arg(
                "Mlp::from_layers",
                "layers",
                "the list is empty",
            ));
        }
        for (i, w) in layers.windows(2).enumerate() {
            if w[0].out_features() != w[1].in_features() {
                return Err(Error::arg(
                    "Mlp::from_layers",
                    "layers",
                    format!(
                        "layers[{i}] has {} outputs but layers[{}] takes {} inputs",
                        w[0].out_features(),
                        i + 1,
                        w[1].in_features()
                    ),
                ));
            }
        }
        Ok(Mlp {
            layers,
            activation,
            training: true,
        })
    }
    /// The linear layers.
    pub fn layers(&self) -> &[Linear] {
        &self.layers
    }
    /// The activation between layers.
    pub fn activation(&self) -> Activation {
        self.activation
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let last = self.layers.len() - 1;
        let mut h = x.clone();
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward(&h)?;
            if i < last {
                h = self.activation.apply(&h)?;
            }
        }
        Ok(h)
    }
    /// Named `layers.{i}.weight` / `layers.{i}.bias`.
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            v.extend(super::prefixed(
                &format!("layers.{i}"),
                l.named_parameters(),
            ));
        }
        v
    }
    fn train(&mut self, on: bool) {
        self.training = on;
    }
    fn is_training(&self) -> bool {
        self.training
    }
}
