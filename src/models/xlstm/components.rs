//! The two small layers the mLSTM layer is made of besides `nn`'s: the head-wise
//! (block-diagonal) projection [`LinearHeadwise`] (xLSTM's `LinearHeadwiseExpand` with
//! expansion 1) and the per-head layer norm [`MultiHeadLayerNorm`] (xLSTM's
//! `MultiHeadLayerNorm`, a group norm with one group per head).

use crate::dtype::DType;
use crate::einsum::einsum;
use crate::error::{Error, Result};
use crate::nn::{as_parameter, init, Module};
use crate::tensor::Tensor;

/// A block-diagonal linear map: the `in_features` inputs split into `num_heads` blocks of
/// `d = in_features / num_heads`, each block mapped by its own `d × d` matrix,
///
/// ```text
/// y[..., h·d + o] = Σ_i weight[h, o, i] · x[..., h·d + i]  (+ bias[h·d + o])
/// ```
///
/// one einsum `...hi,hoi->...ho`. The weight has xLSTM's shape `(num_heads, d, d)`.
///
/// ```
/// use eingrad::models::xlstm::LinearHeadwise;
/// use eingrad::nn::Module;
/// use eingrad::Tensor;
/// // two heads of size 1 with weights 2 and 3: y = (2·x0, 3·x1)
/// let w = Tensor::from_vec(vec![2.0f64, 3.0], &[2, 1, 1]).unwrap();
/// let lin = LinearHeadwise::from_tensors(w, None).unwrap();
/// let x = Tensor::from_vec(vec![1.0f64, 1.0], &[1, 2]).unwrap();
/// assert_eq!(lin.forward(&x).unwrap().to_vec::<f64>().unwrap(), vec![2.0, 3.0]);
/// ```
#[derive(Clone)]
pub struct LinearHeadwise {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl LinearHeadwise {
    /// A projection of `in_features` in `num_heads` blocks, weight from N(0, std²) (xLSTM's
    /// default `std = √(2 / (5·d))`, `d = in_features / num_heads`, when `std` is `None`), bias
    /// zero. `num_heads` must divide `in_features`.
    ///
    /// ```
    /// use eingrad::models::xlstm::LinearHeadwise;
    /// use eingrad::DType;
    /// let lin = LinearHeadwise::new(8, 2, true, None, DType::F32, 0).unwrap();
    /// assert_eq!(lin.weight().dims(), &[2, 4, 4]);
    /// assert!(LinearHeadwise::new(8, 3, true, None, DType::F32, 0).is_err());
    /// ```
    pub fn new(
        in_features: usize,
        num_heads: usize,
        bias: bool,
        std: Option<f64>,
        dtype: DType,
        seed: u64,
    ) -> Result<LinearHeadwise> {
        const OP: &str = "LinearHeadwise::new";
        if num_heads == 0 || in_features == 0 || !in_features.is_multiple_of(num_heads) {
            return Err(Error::arg(
                OP,
                "num_heads",
                format!(
                    "must be ≥ 1 and divide in_features = {in_features} (≥ 1), got {num_heads}"
                ),
            ));
        }
        let d = in_features / num_heads;
        let std = std.unwrap_or((2.0 / (5.0 * d as f64)).sqrt());
        let weight = init::normal(&[num_heads, d, d], 0.0, std, dtype, seed)?;
        let bias = if bias {
            Some(init::zeros(&[in_features], dtype)?)
        } else {
            None
        };
        Ok(LinearHeadwise { weight, bias })
    }

    /// A projection with the given weight `(num_heads, d, d)` and optional bias
    /// `(num_heads·d)`; leaves are marked `requires_grad`.
    ///
    /// ```
    /// use eingrad::models::xlstm::LinearHeadwise;
    /// use eingrad::{DType, Tensor};
    /// let w = Tensor::zeros(&[2, 3, 3], DType::F64).unwrap();
    /// let e = LinearHeadwise::from_tensors(w, Some(Tensor::zeros(&[5], DType::F64).unwrap()));
    /// assert!(e.unwrap_err().to_string().contains("bias"));
    /// ```
    pub fn from_tensors(weight: Tensor, bias: Option<Tensor>) -> Result<LinearHeadwise> {
        const OP: &str = "LinearHeadwise::from_tensors";
        let d = weight.dims();
        if d.len() != 3 || d[1] != d[2] || d.contains(&0) {
            return Err(Error::arg(
                OP,
                "weight",
                format!("must have shape (num_heads, d, d) with no zero size, got {d:?}"),
            ));
        }
        if let Some(b) = &bias {
            if b.dims() != [d[0] * d[1]] || b.dtype() != weight.dtype() {
                return Err(Error::arg(
                    OP,
                    "bias",
                    format!(
                        "must have shape [{}] and dtype {:?}, got {:?} {:?}",
                        d[0] * d[1],
                        weight.dtype(),
                        b.dims(),
                        b.dtype()
                    ),
                ));
            }
        }
        Ok(LinearHeadwise {
            weight: as_parameter(weight),
            bias: bias.map(as_parameter),
        })
    }
    /// The weight, `(num_heads, d, d)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
    /// The bias, `(num_heads·d)`, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
    /// The number of blocks.
    pub fn num_heads(&self) -> usize {
        self.weight.dims()[0]
    }
    /// Input (and output) size, `num_heads·d`.
    pub fn in_features(&self) -> usize {
        self.weight.dims()[0] * self.weight.dims()[1]
    }
}

impl Module for LinearHeadwise {
    /// `x` of shape `(..., in_features)` to the same shape.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        const OP: &str = "LinearHeadwise::forward";
        let n = self.in_features();
        if x.rank() == 0 || x.dims()[x.rank() - 1] != n {
            return Err(Error::arg(
                OP,
                "x",
                format!("must have shape (..., {n}), got {:?}", x.dims()),
            ));
        }
        if x.dtype() != self.weight.dtype() {
            return Err(Error::arg(
                OP,
                "x",
                format!(
                    "dtype {:?} differs from the weight's {:?}",
                    x.dtype(),
                    self.weight.dtype()
                ),
            ));
        }
        let lead = &x.dims()[..x.rank() - 1];
        let mut split = lead.to_vec();
        split.extend([self.num_heads(), self.weight.dims()[1]]);
        let y = einsum("...hi,hoi->...ho", &[&x.reshape(&split)?, &self.weight])?;
        let mut flat = lead.to_vec();
        flat.push(n);
        let y = y.reshape(&flat)?;
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

impl std::fmt::Debug for LinearHeadwise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LinearHeadwise(in_features={}, num_heads={}, bias={})",
            self.in_features(),
            self.num_heads(),
            self.bias.is_some()
        )
    }
}

/// Layer normalisation of each head's `DH` channels of `h` `(B, NH, S, DH)`, with a
/// per-channel scale and no shift, as xLSTM's `MultiHeadLayerNorm` (a group norm with `NH`
/// groups over the `NH·DH` channels):
///
/// ```text
/// out[b, h, s, :] = (x − mean) / √(var + eps) · (1 + weight[h·DH .. (h+1)·DH])
/// ```
///
/// The parameter is stored as xLSTM stores it (`residual_weight`): `weight` `(NH·DH)` is an
/// offset from 1, initialised to 0, so xLSTM checkpoints load unchanged.
///
/// ```
/// use eingrad::models::xlstm::MultiHeadLayerNorm;
/// use eingrad::nn::Module;
/// use eingrad::{DType, Tensor};
/// let norm = MultiHeadLayerNorm::new(2, 2, 0.0, DType::F64).unwrap();
/// let h = Tensor::from_vec(vec![1.0f64, 3.0, 5.0, 5.5], &[1, 2, 1, 2]).unwrap();
/// assert_eq!(norm.forward(&h).unwrap().to_vec::<f64>().unwrap(), vec![-1.0, 1.0, -1.0, 1.0]);
/// ```
#[derive(Clone)]
pub struct MultiHeadLayerNorm {
    weight: Tensor,
    num_heads: usize,
    eps: f64,
}

impl MultiHeadLayerNorm {
    /// A norm over `num_heads` heads of `head_dim` channels, weight 0 (scale 1).
    pub fn new(
        num_heads: usize,
        head_dim: usize,
        eps: f64,
        dtype: DType,
    ) -> Result<MultiHeadLayerNorm> {
        MultiHeadLayerNorm::from_tensors(
            Tensor::zeros(&[num_heads * head_dim], dtype)?,
            num_heads,
            eps,
        )
    }
    /// A norm with the given weight `(num_heads·head_dim)` (the offset from a scale of 1); a
    /// leaf is marked `requires_grad`.
    ///
    /// ```
    /// use eingrad::models::xlstm::MultiHeadLayerNorm;
    /// use eingrad::{DType, Tensor};
    /// let w = Tensor::zeros(&[6], DType::F64).unwrap();
    /// assert!(MultiHeadLayerNorm::from_tensors(w.clone(), 4, 1e-5).is_err());
    /// assert!(MultiHeadLayerNorm::from_tensors(w, 3, 1e-5).is_ok());
    /// ```
    pub fn from_tensors(weight: Tensor, num_heads: usize, eps: f64) -> Result<MultiHeadLayerNorm> {
        const OP: &str = "MultiHeadLayerNorm::from_tensors";
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(Error::arg(
                OP,
                "eps",
                format!("must be finite and ≥ 0, got {eps}"),
            ));
        }
        if weight.rank() != 1 || weight.numel() == 0 {
            return Err(Error::arg(
                OP,
                "weight",
                format!(
                    "must have shape (NH·DH) with NH·DH ≥ 1, got {:?}",
                    weight.dims()
                ),
            ));
        }
        if num_heads == 0 || !weight.numel().is_multiple_of(num_heads) {
            return Err(Error::arg(
                OP,
                "num_heads",
                format!(
                    "must be ≥ 1 and divide the weight's size {}, got {num_heads}",
                    weight.numel()
                ),
            ));
        }
        Ok(MultiHeadLayerNorm {
            weight: as_parameter(weight),
            num_heads,
            eps,
        })
    }
    /// The scale offset, `(NH·DH)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
    /// The number of heads (groups).
    pub fn num_heads(&self) -> usize {
        self.num_heads
    }
    /// The ε added to the variance.
    pub fn eps(&self) -> f64 {
        self.eps
    }
}

impl Module for MultiHeadLayerNorm {
    /// `h` of shape `(B, NH, S, DH)` to the same shape.
    fn forward(&self, h: &Tensor) -> Result<Tensor> {
        const OP: &str = "MultiHeadLayerNorm::forward";
        let nh = self.num_heads;
        let dh = self.weight.numel() / nh;
        if h.rank() != 4 || h.dims()[1] != nh || h.dims()[3] != dh {
            return Err(Error::arg(
                OP,
                "h",
                format!("must have shape (B, {nh}, S, {dh}), got {:?}", h.dims()),
            ));
        }
        if h.dtype() != self.weight.dtype() {
            return Err(Error::arg(
                OP,
                "h",
                format!(
                    "dtype {:?} differs from the weight's {:?}",
                    h.dtype(),
                    self.weight.dtype()
                ),
            ));
        }
        let centered = h.sub(&h.mean(&[-1], true)?)?;
        let var = centered.mul(&centered)?.mean(&[-1], true)?;
        let scale = self.weight.add_scalar(1.0)?.reshape(&[nh, 1, dh])?;
        centered
            .mul(&var.add_scalar(self.eps)?.rsqrt()?)?
            .mul(&scale)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("weight".to_string(), self.weight.clone())]
    }
}

impl std::fmt::Debug for MultiHeadLayerNorm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MultiHeadLayerNorm(num_heads={}, head_dim={}, eps={})",
            self.num_heads,
            self.weight.numel() / self.num_heads,
            self.eps
        )
    }
}
