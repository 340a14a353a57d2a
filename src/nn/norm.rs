//! Normalisation layers: [`LayerNorm`] (with or without bias) and [`RMSNorm`], over the
//! trailing dims, with PyTorch's definitions (biased variance, `eps` inside the root).

use super::init;
use super::{as_parameter, Module};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The trailing dims a norm reduces over, checked against `x`.
fn trailing_dims(op: &'static str, x: &Tensor, normalized_shape: &[usize]) -> Result<Vec<isize>> {
    let n = normalized_shape.len();
    if x.rank() < n || x.dims()[x.rank() - n..] != *normalized_shape {
        return Err(Error::ShapeMismatch {
            op,
            lhs: x.dims().to_vec(),
            rhs: normalized_shape.to_vec(),
            detail: format!(" (input `x` must end in normalized_shape {normalized_shape:?})"),
        });
    }
    Ok((-(n as isize)..0).collect())
}

fn check_dtype(op: &'static str, x: &Tensor, w: &Tensor) -> Result<()> {
    if x.dtype() != w.dtype() {
        return Err(Error::arg(
            op,
            "x",
            format!(
                "dtype {:?} differs from the weight's {:?}",
                x.dtype(),
                w.dtype()
            ),
        ));
    }
    Ok(())
}

fn check_param(
    op: &'static str,
    name: &'static str,
    t: &Tensor,
    shape: &[usize],
    dtype: DType,
) -> Result<()> {
    if t.rank() == 0 || t.dims() != shape || t.dims().contains(&0) {
        return Err(Error::arg(
            op,
            name,
            format!(
                "must have shape {shape:?} (non-empty, rank ≥ 1), got {:?}",
                t.dims()
            ),
        ));
    }
    if t.dtype() != dtype {
        return Err(Error::arg(
            op,
            name,
            format!("dtype {:?} differs from the weight's {dtype:?}", t.dtype()),
        ));
    }
    Ok(())
}

fn check_eps(op: &'static str, eps: f64) -> Result<()> {
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(Error::arg(
            op,
            "eps",
            format!("must be finite and ≥ 0, got {eps}"),
        ));
    }
    Ok(())
}

/// Layer normalisation: `(x − mean) / √(var + eps) · weight + bias` over the trailing
/// `normalized_shape` dims (biased variance), as `torch.nn.LayerNorm`; weight starts at 1 and
/// the optional bias at 0.
///
/// ```
/// use eingrad::nn::{LayerNorm, Module};
/// use eingrad::{DType, Tensor};
/// let ln = LayerNorm::new(&[4], 1e-5, true, DType::F64).unwrap();
/// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[1, 4]).unwrap();
/// let y = ln.forward(&x).unwrap().to_vec::<f64>().unwrap();
/// assert!((y.iter().sum::<f64>()).abs() < 1e-12);
/// assert!((y[3] - 1.5 / (1.25f64 + 1e-5).sqrt()).abs() < 1e-12);
/// assert_eq!(ln.named_parameters().len(), 2);
/// ```
#[derive(Clone)]
pub struct LayerNorm {
    normalized_shape: Vec<usize>,
    weight: Tensor,
    bias: Option<Tensor>,
    eps: f64,
}

impl LayerNorm {
    /// A layer over the trailing dims `normalized_shape`; `bias: false` is nanoGPT's
    /// `LayerNorm(ndim, bias=False)`.
    pub fn new(
        normalized_shape: &[usize],
        eps: f64,
        bias: bool,
        dtype: DType,
    ) -> Result<LayerNorm> {
        check_eps("LayerNorm::new", eps)?;
        if normalized_shape.is_empty() || normalized_shape.contains(&0) {
            return Err(Error::arg(
                "LayerNorm::new",
                "normalized_shape",
                format!("must be non-empty with no zero size, got {normalized_shape:?}"),
            ));
        }
        Ok(LayerNorm {
            normalized_shape: normalized_shape.to_vec(),
            weight: init::ones(normalized_shape, dtype)?,
            bias: if bias {
                Some(init::zeros(normalized_shape, dtype)?)
            } else {
                None
            },
            eps,
        })
    }
    /// A layer with the given scale (whose shape is `normalized_shape`) and optional shift of
    /// the same shape; leaves are marked `requires_grad`.
    ///
    /// ```
    /// use eingrad::nn::LayerNorm;
    /// use eingrad::{DType, Tensor};
    /// let w = Tensor::ones(&[3], DType::F64).unwrap();
    /// assert!(LayerNorm::from_tensors(w.clone(), Some(w.clone()), 1e-5).is_ok());
    /// let b = Tensor::ones(&[2], DType::F64).unwrap();
    /// assert!(LayerNorm::from_tensors(w, Some(b), 1e-5).unwrap_err().to_string().contains("bias"));
    /// ```
    pub fn from_tensors(weight: Tensor, bias: Option<Tensor>, eps: f64) -> Result<LayerNorm> {
        const OP: &str = "LayerNorm::from_tensors";
        check_eps(OP, eps)?;
        check_param(OP, "weight", &weight, weight.dims(), weight.dtype())?;
        if let Some(b) = &bias {
            check_param(OP, "bias", b, weight.dims(), weight.dtype())?;
        }
        Ok(LayerNorm {
            normalized_shape: weight.dims().to_vec(),
            weight: as_parameter(weight),
            bias: bias.map(as_parameter),
            eps,
        })
    }
    /// The scale, shaped `normalized_shape`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
    /// The shift, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
    /// The ε added to the variance.
    pub fn eps(&self) -> f64 {
        self.eps
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        const OP: &str = "LayerNorm::forward";
        let dims = trailing_dims(OP, x, &self.normalized_shape)?;
        check_dtype(OP, x, &self.weight)?;
        x.layer_norm(dims.len(), Some(&self.weight), self.bias.as_ref(), self.eps)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = vec![("weight".to_string(), self.weight.clone())];
        v.extend(self.bias.iter().map(|b| ("bias".to_string(), b.clone())));
        v
    }
}

impl std::fmt::Debug for LayerNorm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LayerNorm({:?}, eps={}, bias={})",
            self.normalized_shape,
            self.eps,
            self.bias.is_some()
        )
    }
}

/// Root-mean-square normalisation: `x / √(mean(x²) + eps) · weight` over the trailing
/// `normalized_shape` dims, as `torch.nn.RMSNorm`; `eps: None` uses the dtype's machine
/// epsilon, as PyTorch does.
///
/// ```
/// use eingrad::nn::{Module, RMSNorm};
/// use eingrad::{DType, Tensor};
/// let rms = RMSNorm::new(&[2], Some(0.0), DType::F64).unwrap();
/// let x = Tensor::from_vec(vec![3.0f64, 4.0], &[2]).unwrap();
/// let y = rms.forward(&x).unwrap().to_vec::<f64>().unwrap();
/// let r = (12.5f64).sqrt();
/// assert!((y[0] - 3.0 / r).abs() < 1e-12 && (y[1] - 4.0 / r).abs() < 1e-12);
/// ```
#[derive(Clone)]
pub struct RMSNorm {
    normalized_shape: Vec<usize>,
    weight: Tensor,
    eps: Option<f64>,
}

impl RMSNorm {
    /// A layer over the trailing dims `normalized_shape`, weight starting at 1.
    pub fn new(normalized_shape: &[usize], eps: Option<f64>, dtype: DType) -> Result<RMSNorm> {
        if let Some(e) = eps {
            check_eps("RMSNorm::new", e)?;
        }
        if normalized_shape.is_empty() || normalized_shape.contains(&0) {
            return Err(Error::arg(
                "RMSNorm::new",
                "normalized_shape",
                format!("must be non-empty with no zero size, got {normalized_shape:?}"),
            ));
        }
        Ok(RMSNorm {
            normalized_shape: normalized_shape.to_vec(),
            weight: init::ones(normalized_shape, dtype)?,
            eps,
        })
    }
    /// A layer with the given scale (whose shape is `normalized_shape`); a leaf is marked
    /// `requires_grad`.
    ///
    /// ```
    /// let w = eingrad::Tensor::ones(&[3], eingrad::DType::F64).unwrap();
    /// assert!(eingrad::nn::RMSNorm::from_tensors(w, None).is_ok());
    /// ```
    pub fn from_tensors(weight: Tensor, eps: Option<f64>) -> Result<RMSNorm> {
        const OP: &str = "RMSNorm::from_tensors";
        if let Some(e) = eps {
            check_eps(OP, e)?;
        }
        check_param(OP, "weight", &weight, weight.dims(), weight.dtype())?;
        Ok(RMSNorm {
            normalized_shape: weight.dims().to_vec(),
            weight: as_parameter(weight),
            eps,
        })
    }
    /// The scale, shaped `normalized_shape`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
    /// The ε used for `dtype`.
    pub fn eps_for(&self, dtype: DType) -> f64 {
        self.eps.unwrap_or(match dtype {
            DType::F32 => f32::EPSILON as f64,
            DType::F64 => f64::EPSILON,
        })
    }
}

impl Module for RMSNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        const OP: &str = "RMSNorm::forward";
        let dims = trailing_dims(OP, x, &self.normalized_shape)?;
        check_dtype(OP, x, &self.weight)?;
        let ms = x.mul(x)?.mean(&dims, true)?;
        x.mul(&ms.add_scalar(self.eps_for(x.dtype()))?.rsqrt()?)?
            .mul(&self.weight)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("weight".to_string(), self.weight.clone())]
    }
}

impl std::fmt::Debug for RMSNorm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RMSNorm({:?}, eps={:?})",
            self.normalized_shape, self.eps
        )
    }
}
