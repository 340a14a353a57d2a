//! [`Linear`]: y = x·Wᵀ + b over any leading dims, as one einsum plus a broadcast add.

use super::init::{self, FanMode, Nonlinearity};
use super::{as_parameter, derive_seed, Module};
use crate::dtype::DType;
use crate::einsum::einsum;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// A fully connected layer: `y[..., o] = Σᵢ x[..., i]·W[o, i] + b[o]`.
///
/// ```
/// use eingrad::nn::{Linear, Module};
/// use eingrad::Tensor;
/// let w = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
/// let b = Tensor::from_vec(vec![0.5f64, -0.5], &[2]).unwrap();
/// let lin = Linear::from_tensors(w, Some(b)).unwrap();
/// let x = Tensor::from_vec(vec![1.0f64, 0.0, -1.0], &[3]).unwrap();
/// assert_eq!(lin.forward(&x).unwrap().to_vec::<f64>().unwrap(), vec![-1.5, -2.5]);
/// ```
#[derive(Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// A layer mapping `in_features` to `out_features` with PyTorch's default init: weight
    /// and bias from U(−1/√in, 1/√in) (kaiming_uniform with a = √5), drawn from `seed`.
    ///
    /// ```
    /// let lin = eingrad::nn::Linear::new(16, 4, true, eingrad::DType::F32, 0).unwrap();
    /// assert_eq!(lin.weight().dims(), &[4, 16]);
    /// assert!(lin.weight().to_vec_f64().iter().all(|w| w.abs() <= 0.25));
    /// assert!(eingrad::nn::Linear::new(0, 4, true, eingrad::DType::F32, 0).is_err());
    /// ```
    pub fn new(
        in_features: usize,
        out_features: usize,
        bias: bool,
        dtype: DType,
        seed: u64,
    ) -> Result<Linear> {
        if in_features == 0 {
            return Err(Error::arg(
                "Linear::new",
                "in_features",
                "must be at least 1 (the default init bound is 1/√in_features)",
            ));
        }
        let weight = init::kaiming_uniform(
            &[out_features, in_features],
            FanMode::FanIn,
            Nonlinearity::LeakyRelu(5f64.sqrt()),
            dtype,
            derive_seed(seed, 0),
        )?;
        let bias = if bias {
            let bound = 1.0 / (in_features as f64).sqrt();
            Some(init::uniform(
                &[out_features],
                -bound,
                bound,
                dtype,
                derive_seed(seed, 1),
            )?)
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    /// A layer with the given weight `(out, in)` and optional bias `(out)`. Leaves are marked
    /// `requires_grad` (the handles share that flag with the caller's); a tensor with history
    /// is used as is, so the layer stays differentiable with respect to whatever made it.
    pub fn from_tensors(weight: Tensor, bias: Option<Tensor>) -> Result<Linear> {
        if weight.rank() != 2 {
            return Err(Error::arg(
                "Linear::from_tensors",
                "weight",
                format!(
                    "must have shape (out_features, in_features), got {:?}",
                    weight.dims()
                ),
            ));
        }
        if let Some(b) = &bias {
            if b.dims() != [weight.dims()[0]] {
                return Err(Error::ShapeMismatch {
                    op: "Linear::from_tensors",
                    lhs: weight.dims().to_vec(),
                    rhs: b.dims().to_vec(),
                    detail: format!(
                        " (bias must have shape [{}] = [out_features])",
                        weight.dims()[0]
                    ),
                });
            }
            if b.dtype() != weight.dtype() {
                return Err(Error::arg(
                    "Linear::from_tensors",
                    "bias",
                    format!(
                        "dtype {:?} differs from weight's {:?}",
                        b.dtype(),
                        weight.dtype()
                    ),
                ));
            }
        }
        Ok(Linear {
            weight: as_parameter(weight),
            bias: bias.map(as_parameter),
        })
    }

    /// The weight, shape `(out_features, in_features)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
    /// The bias, shape `(out_features)`, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
    /// Input size.
    pub fn in_features(&self) -> usize {
        self.weight.dims()[1]
    }
    /// Output size.
    pub fn out_features(&self) -> usize {
        self.weight.dims()[0]
    }
}

impl Module for Linear {
    /// `x` of shape `(..., in_features)` to `(..., out_features)`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() == 0 || x.dims()[x.rank() - 1] != self.in_features() {
            return Err(Error::ShapeMismatch {
                op: "Linear::forward",
                lhs: x.dims().to_vec(),
                rhs: self.weight.dims().to_vec(),
                detail: format!(
                    " (input `x` must have shape (..., {}) for a weight (out, in) = {:?})",
                    self.in_features(),
                    self.weight.dims()
                ),
            });
        }
        if x.dtype() != self.weight.dtype() {
            return Err(Error::arg(
                "Linear::forward",
                "x",
                format!(
                    "dtype {:?} differs from the weight's {:?}",
                    x.dtype(),
                    self.weight.dtype()
                ),
            ));
        }
        let y = einsum("...i,oi->...o", &[x, &self.weight])?;
        match &self.bias {
            Some(b) => y.add(b),
            None => Ok(y),
        }
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = vec![("weight".to_string(), self.weight.clone())];
        v.extend(self.bias.iter().map(|b| ("bias".to_string(), b.clone())));
        v
    }
}

impl std::fmt::Debug for Linear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Linear(in_features={}, out_features={}, bias={})",
            self.in_features(),
            self.out_features(),
            self.bias.is_some()
        )
    }
}
