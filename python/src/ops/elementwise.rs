//! Elementwise ops: the unary functions (`exp`, `log`, `sin`, `relu`, ... each a method and
//! a top-level function), those with arguments (`gelu`, `softplus`, `pow`, `clamp`,
//! `maximum`/`minimum`, `add`/`sub`/`mul`/`div`), `where`/`masked_fill` and the comparison
//! methods (`eq`, `ne`, `lt`, `le`, `gt`, `ge`).

use super::{mask_arg, run, tensor_arg};
use crate::convert::short_repr;
use crate::errors::IntoPy;
use crate::tensor::{operand, wrap, Operand, PyTensor};
use eingrad::{DType, Tensor};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// A Python float/int fill value or a one-element tensor.
fn scalar_value(v: &Bound<'_, PyAny>, op: &str, arg: &str) -> PyResult<f64> {
    if let Ok(t) = v.cast::<PyTensor>() {
        let t = t.get().tensor();
        if t.numel() == 1 {
            return t.item().py_err();
        }
        return Err(PyValueError::new_err(format!(
            "{op}: `{arg}` must be a number or a one-element tensor, got a tensor of shape {:?}",
            t.dims()
        )));
    }
    v.extract::<f64>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{op}: `{arg}` must be a number, got {}",
            short_repr(v)
        ))
    })
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $body:expr;)*) => {
        #[pymethods]
        impl PyTensor {
            $(
                $(#[$doc])*
                fn $name(&self, py: Python<'_>) -> PyResult<PyTensor> {
                    let x = self.tensor();
                    #[allow(clippy::redundant_closure_call)]
                    run(py, x.numel(), || ($body)(&x))
                }
            )*
        }
        /// The names of the unary methods (registered as top-level functions too).
        pub(super) const UNARY_NAMES: &[&str] = &[$(stringify!($name)),*];
    };
}

unary_methods! {
    /// `exp(input)`: eˣ elementwise.
    ///
    /// ```python
    /// >>> eingrad.tensor([0.0]).exp()
    /// tensor([1.])
    /// ```
    exp => |x: &Tensor| x.exp();
    /// `log(input)`: the natural logarithm.
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0]).log()
    /// tensor([0.])
    /// ```
    log => |x: &Tensor| x.log();
    /// `log2(input)`: the base-2 logarithm.
    ///
    /// ```python
    /// >>> eingrad.tensor([8.0]).log2()
    /// tensor([3.])
    /// ```
    log2 => |x: &Tensor| x.log()?.mul_scalar(std::f64::consts::LOG2_E);
    /// `log10(input)`: the base-10 logarithm.
    ///
    /// ```python
    /// >>> eingrad.tensor([100.0]).log10()
    /// tensor([2.])
    /// ```
    log10 => |x: &Tensor| x.log()?.mul_scalar(std::f64::consts::LOG10_E);
    /// `log1p(input)`: log(1 + x), accurate near 0.
    ///
    /// ```python
    /// >>> eingrad.tensor([0.0]).log1p()
    /// tensor([0.])
    /// ```
    log1p => |x: &Tensor| x.log1p();
    /// `expm1(input)`: eˣ − 1 (computed as exp(x) − 1).
    ///
    /// ```python
    /// >>> eingrad.tensor([0.0]).expm1()
    /// tensor([0.])
    /// ```
    expm1 => |x: &Tensor| x.exp()?.add_scalar(-1.0);
    /// `sqrt(input)`: the square root.
    ///
    /// ```python
    /// >>> eingrad.tensor([4.0]).sqrt()
    /// tensor([2.])
    /// ```
    sqrt => |x: &Tensor| x.sqrt();
    /// `rsqrt(input)`: 1/√x.
    ///
    /// ```python
    /// >>> eingrad.tensor([4.0]).rsqrt()
    /// tensor([0.5000])
    /// ```
    rsqrt => |x: &Tensor| x.rsqrt();
    /// `sin(input)`.
    ///
    /// ```python
    /// >>> eingrad.tensor([0.0]).sin()
    /// tensor([0.])
    /// ```
    sin => |x: &Tensor| x.sin();
    /// `cos(input)`.
    ///
    /// ```python
    /// >>> eingrad.tensor([0.0]).cos()
    /// tensor([1.])
    /// ```
    cos => |x: &Tensor| x.cos();
    /// `tan(input)` (sin/cos).
    ///
    /// ```python
    /// >>> eingrad.tensor([0.0]).tan()
    /// tensor([0.])
    /// ```
    tan => |x: &Tensor| x.sin()?.div(&x.cos()?);
    /// `tanh(input)`.
    ///
    /// ```python
    /// >>> eingrad.tensor([0.0]).tanh()
    /// tensor([0.])
    /// ```
    tanh => |x: &Tensor| x.tanh();
    /// `sigmoid(input)`: 1/(1 + e⁻ˣ), without overflow.
    ///
    /// ```python
    /// >>> eingrad.tensor([0.0]).sigmoid()
    /// tensor([0.5000])
    /// ```
    sigmoid => |x: &Tensor| x.sigmoid();
    /// `logsigmoid(input)`: log σ(x), stable.
    ///
    /// ```python
    /// >>> eingrad.tensor([0.0]).logsigmoid()
    /// tensor([-0.6931])
    /// ```
    logsigmoid => |x: &Tensor| x.logsigmoid();
    /// `relu(input)`: max(x, 0).
    ///
    /// ```python
    /// >>> eingrad.tensor([-1.0, 2.0]).relu()
    /// tensor([0., 2.])
    /// ```
    relu => |x: &Tensor| x.relu();
    /// `silu(input)`: x·σ(x).
    ///
    /// ```python
    /// >>> eingrad.tensor([0.0]).silu()
    /// tensor([0.])
    /// ```
    silu => |x: &Tensor| x.silu();
    /// `erf(input)`: the Gauss error function.
    ///
    /// ```python
    /// >>> eingrad.tensor([0.0]).erf()
    /// tensor([0.])
    /// ```
    erf => |x: &Tensor| x.erf();
    /// `abs(input)`: |x| (derivative 0 at 0).
    ///
    /// ```python
    /// >>> eingrad.tensor([-2.0]).abs()
    /// tensor([2.])
    /// ```
    abs => |x: &Tensor| x.abs();
    /// `sign(input)`: −1, 0 or 1 (no gradient).
    ///
    /// ```python
    /// >>> eingrad.tensor([-2.0, 0.0, 3.0]).sign()
    /// tensor([-1.,  0.,  1.])
    /// ```
    sign => |x: &Tensor| x.sign();
    /// `neg(input)`: −x.
    ///
    /// ```python
    /// >>> eingrad.tensor([2.0]).neg()
    /// tensor([-2.])
    /// ```
    neg => |x: &Tensor| x.neg();
    /// `negative(input)`: −x (PyTorch's alias of `neg`).
    ///
    /// ```python
    /// >>> eingrad.tensor([2.0]).negative()
    /// tensor([-2.])
    /// ```
    negative => |x: &Tensor| x.neg();
    /// `reciprocal(input)`: 1/x.
    ///
    /// ```python
    /// >>> eingrad.tensor([4.0]).reciprocal()
    /// tensor([0.2500])
    /// ```
    reciprocal => |x: &Tensor| x.powf(-1.0);
    /// `square(input)`: x².
    ///
    /// ```python
    /// >>> eingrad.tensor([3.0]).square()
    /// tensor([9.])
    /// ```
    square => |x: &Tensor| x.powf(2.0);
    /// `contiguous()`: a row-major copy when the layout is strided, else the tensor itself.
    ///
    /// ```python
    /// >>> eingrad.ones(2, 3).t().contiguous().is_contiguous()
    /// True
    /// ```
    contiguous => |x: &Tensor| x.contiguous();
    /// `clone(input)`: a copy with its own data; gradients flow through it.
    ///
    /// ```python
    /// >>> x = eingrad.ones(2); y = x.clone(); y[0] = 5.; x
    /// tensor([1., 1.])
    /// ```
    clone => |x: &Tensor| x.mul_scalar(1.0);
    /// `t(input)`: the transpose of a matrix (a 0-d or 1-d tensor is returned as is).
    ///
    /// ```python
    /// >>> eingrad.ones(2, 3).t().shape
    /// (3, 2)
    /// ```
    t => |x: &Tensor| if x.rank() < 2 { Ok(x.clone()) } else { x.t() };
}

#[pymethods]
impl PyTensor {
    // ---- elementwise with arguments ----

    /// `gelu(input, approximate='none')`: GELU, exact (erf) or `approximate='tanh'`.
    ///
    /// ```python
    /// >>> eingrad.tensor([0.0]).gelu()
    /// tensor([0.])
    /// ```
    #[pyo3(signature = (approximate="none"))]
    fn gelu(&self, py: Python<'_>, approximate: &str) -> PyResult<PyTensor> {
        let x = self.tensor();
        match approximate {
            "none" => run(py, x.numel(), || x.gelu()),
            "tanh" => run(py, x.numel(), || x.gelu_tanh()),
            other => Err(PyValueError::new_err(format!(
                "gelu: approximate must be 'none' or 'tanh', got {other:?}"
            ))),
        }
    }

    /// `softplus(input, beta=1, threshold=20)`: log(1 + e^(βx))/β (linear above `threshold`).
    ///
    /// ```python
    /// >>> eingrad.tensor([0.0]).softplus()
    /// tensor([0.6931])
    /// ```
    #[pyo3(signature = (beta=1.0, threshold=20.0))]
    fn softplus(&self, py: Python<'_>, beta: f64, threshold: f64) -> PyResult<PyTensor> {
        let x = self.tensor();
        if beta == 0.0 {
            return Err(PyValueError::new_err("softplus: beta must not be 0"));
        }
        run(py, x.numel(), || {
            let bx = x.mul_scalar(beta)?;
            let soft = bx.softplus()?.div_scalar(beta)?;
            // Above the threshold PyTorch returns x itself (the same value to rounding).
            let linear = bx.gt_scalar(threshold)?;
            Tensor::where_(&linear, &x, &soft)
        })
    }

    /// `pow(input, exponent)`: xᵖ for a number or a tensor exponent (broadcast).
    ///
    /// ```python
    /// >>> eingrad.tensor([2.0, 3.0]).pow(2)
    /// tensor([4., 9.])
    /// ```
    fn pow(&self, py: Python<'_>, exponent: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let x = self.tensor();
        match operand(exponent, &x)? {
            Some(Operand::Scalar(p)) => run(py, x.numel(), || x.powf(p)),
            Some(Operand::Tensor(e)) => {
                let e = if e.dtype() != x.dtype() {
                    e.to_dtype(x.dtype()).py_err()?
                } else {
                    e
                };
                run(py, x.numel().max(e.numel()), || x.pow(&e))
            }
            None => Err(PyTypeError::new_err(format!(
                "pow: `exponent` must be a number or a tensor, got {}",
                short_repr(exponent)
            ))),
        }
    }

    /// `clamp(input, min=None, max=None)`: values limited to [min, max]; a bound may be a
    /// number or a tensor (broadcast). The gradient passes strictly inside the bounds.
    ///
    /// ```python
    /// >>> eingrad.tensor([-2.0, 0.5, 3.0]).clamp(min=0, max=1)
    /// tensor([0.0000, 0.5000, 1.0000])
    /// ```
    #[pyo3(signature = (min=None, max=None))]
    fn clamp(
        &self,
        py: Python<'_>,
        min: Option<&Bound<'_, PyAny>>,
        max: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        let x = self.tensor();
        let min = min.filter(|m| !m.is_none());
        let max = max.filter(|m| !m.is_none());
        if min.is_none() && max.is_none() {
            return Err(PyValueError::new_err(
                "clamp: at least one of `min` and `max` must be given",
            ));
        }
        let lo = min.map(|m| tensor_arg(m, &x, "clamp", "min")).transpose()?;
        let hi = max.map(|m| tensor_arg(m, &x, "clamp", "max")).transpose()?;
        let plain = |t: &Option<Tensor>| {
            t.as_ref()
                .is_none_or(|t| t.rank() == 0 && !t.requires_grad())
        };
        if plain(&lo) && plain(&hi) {
            let lo = lo.map(|t| t.item()).transpose().py_err()?;
            let hi = hi.map(|t| t.item()).transpose().py_err()?;
            return run(py, x.numel(), || x.clamp(lo, hi));
        }
        run(py, x.numel(), || {
            let mut y = x.clone();
            if let Some(l) = &lo {
                y = y.maximum(l)?;
            }
            if let Some(h) = &hi {
                y = y.minimum(h)?;
            }
            Ok(y)
        })
    }

    /// `clip`: the same as `clamp`.
    ///
    /// ```python
    /// >>> eingrad.tensor([-2.0, 3.0]).clip(0, 1)
    /// tensor([0., 1.])
    /// ```
    #[pyo3(signature = (min=None, max=None))]
    fn clip(
        &self,
        py: Python<'_>,
        min: Option<&Bound<'_, PyAny>>,
        max: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        self.clamp(py, min, max)
    }

    /// `maximum(input, other)`: the elementwise maximum (broadcast; a tie splits the gradient).
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0, 5.0]).maximum(eingrad.tensor([3.0, 2.0]))
    /// tensor([3., 5.])
    /// ```
    fn maximum(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let x = self.tensor();
        let o = tensor_arg(other, &x, "maximum", "other")?;
        run(py, x.numel().max(o.numel()), || x.maximum(&o))
    }

    /// `minimum(input, other)`: the elementwise minimum.
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0, 5.0]).minimum(eingrad.tensor([3.0, 2.0]))
    /// tensor([1., 2.])
    /// ```
    fn minimum(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let x = self.tensor();
        let o = tensor_arg(other, &x, "minimum", "other")?;
        run(py, x.numel().max(o.numel()), || x.minimum(&o))
    }

    /// `add(input, other, alpha=1)`: input + alpha·other.
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0]).add(eingrad.tensor([2.0]), alpha=10)
    /// tensor([21.])
    /// ```
    #[pyo3(signature = (other, alpha=1.0))]
    fn add(&self, py: Python<'_>, other: &Bound<'_, PyAny>, alpha: f64) -> PyResult<PyTensor> {
        let x = self.tensor();
        let o = tensor_arg(other, &x, "add", "other")?;
        run(py, x.numel().max(o.numel()), || {
            if alpha == 1.0 {
                x.add(&o)
            } else {
                x.add(&o.mul_scalar(alpha)?)
            }
        })
    }

    /// `sub(input, other, alpha=1)`: input − alpha·other.
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0]).sub(2)
    /// tensor([-1.])
    /// ```
    #[pyo3(signature = (other, alpha=1.0))]
    fn sub(&self, py: Python<'_>, other: &Bound<'_, PyAny>, alpha: f64) -> PyResult<PyTensor> {
        let x = self.tensor();
        let o = tensor_arg(other, &x, "sub", "other")?;
        run(py, x.numel().max(o.numel()), || {
            if alpha == 1.0 {
                x.sub(&o)
            } else {
                x.sub(&o.mul_scalar(alpha)?)
            }
        })
    }

    /// `mul(input, other)`: the elementwise product (broadcast).
    ///
    /// ```python
    /// >>> eingrad.tensor([2.0]).mul(3)
    /// tensor([6.])
    /// ```
    fn mul(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let x = self.tensor();
        let o = tensor_arg(other, &x, "mul", "other")?;
        run(py, x.numel().max(o.numel()), || x.mul(&o))
    }

    /// `div(input, other)`: the elementwise quotient (broadcast).
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0]).div(4)
    /// tensor([0.2500])
    /// ```
    fn div(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let x = self.tensor();
        let o = tensor_arg(other, &x, "div", "other")?;
        run(py, x.numel().max(o.numel()), || x.div(&o))
    }

    /// `where(condition, other)` as a method: `self` where `condition` is nonzero, else `other`.
    ///
    /// ```python
    /// >>> x = eingrad.tensor([1.0, -1.0]); x.where(x > 0, 0.0)
    /// tensor([1., 0.])
    /// ```
    #[pyo3(name = "where")]
    fn where_method(
        &self,
        py: Python<'_>,
        condition: &Bound<'_, PyAny>,
        other: &Bound<'_, PyAny>,
    ) -> PyResult<PyTensor> {
        let x = self.tensor();
        let m = mask_arg(condition, &x, "where", "condition")?;
        let o = tensor_arg(other, &x, "where", "other")?;
        run(py, x.numel().max(o.numel()), || Tensor::where_(&m, &x, &o))
    }

    /// `masked_fill(mask, value)`: `value` where `mask` is nonzero (the mask broadcasts to
    /// the tensor's shape); the gradient is zero where filled.
    ///
    /// ```python
    /// >>> x = eingrad.tensor([1.0, -1.0]); x.masked_fill(x < 0, 0.0)
    /// tensor([1., 0.])
    /// ```
    fn masked_fill(
        &self,
        py: Python<'_>,
        mask: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<PyTensor> {
        let x = self.tensor();
        let m = mask_arg(mask, &x, "masked_fill", "mask")?;
        if let Ok(v) = value.cast::<PyTensor>() {
            // A tensor value (0-d) keeps its gradient.
            let v = v.get().tensor();
            if v.numel() != 1 {
                return Err(PyValueError::new_err(format!(
                    "masked_fill: `value` must be a number or a one-element tensor, got shape {:?}",
                    v.dims()
                )));
            }
            let v = v
                .reshape(&[])
                .and_then(|v| v.to_dtype(x.dtype()))
                .py_err()?;
            let fits = eingrad::layout::broadcast_shapes("masked_fill", m.dims(), x.dims())
                .is_ok_and(|s| s == x.dims());
            if !fits {
                return Err(PyValueError::new_err(format!(
                    "masked_fill: the mask of shape {:?} does not broadcast to the tensor's shape {:?}",
                    m.dims(),
                    x.dims()
                )));
            }
            return run(py, x.numel(), || Tensor::where_(&m, &v, &x));
        }
        let v = scalar_value(value, "masked_fill", "value")?;
        run(py, x.numel(), || x.masked_fill(&m, v))
    }

    // ---- comparisons (methods; the operators are in tensor.rs) ----

    /// `eq(input, other)`: the mask (1.0/0.0) of `input == other`.
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0, 2.0]).eq(2)
    /// tensor([0., 1.])
    /// ```
    fn eq(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let x = self.tensor();
        wrap(x.eq(&tensor_arg(other, &x, "eq", "other")?))
    }
    /// `ne(input, other)`: the mask of `input != other`.
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0, 2.0]).ne(2)
    /// tensor([1., 0.])
    /// ```
    fn ne(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let x = self.tensor();
        wrap(x.ne(&tensor_arg(other, &x, "ne", "other")?))
    }
    /// `lt(input, other)`: the mask of `input < other`.
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0, 2.0]).lt(2)
    /// tensor([1., 0.])
    /// ```
    fn lt(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let x = self.tensor();
        wrap(x.lt(&tensor_arg(other, &x, "lt", "other")?))
    }
    /// `le(input, other)`: the mask of `input <= other`.
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0, 2.0]).le(1)
    /// tensor([1., 0.])
    /// ```
    fn le(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let x = self.tensor();
        wrap(x.le(&tensor_arg(other, &x, "le", "other")?))
    }
    /// `gt(input, other)`: the mask of `input > other`.
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0, 2.0]).gt(1)
    /// tensor([0., 1.])
    /// ```
    fn gt(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let x = self.tensor();
        wrap(x.gt(&tensor_arg(other, &x, "gt", "other")?))
    }
    /// `ge(input, other)`: the mask of `input >= other`.
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0, 2.0]).ge(2)
    /// tensor([0., 1.])
    /// ```
    fn ge(&self, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let x = self.tensor();
        wrap(x.ge(&tensor_arg(other, &x, "ge", "other")?))
    }
}

/// `where(condition, input, other)`: `input` where `condition` is nonzero, else `other`
/// (broadcast; either may be a number). The gradient reaches only the selected branch.
///
/// ```python
/// >>> x = eingrad.tensor([1.0, -1.0]); eingrad.where(x > 0, x, 0.0)
/// tensor([1., 0.])
/// ```
#[pyfunction]
#[pyo3(name = "where", signature = (condition, input=None, other=None))]
pub(super) fn where_fn(
    py: Python<'_>,
    condition: &Bound<'_, PyAny>,
    input: Option<&Bound<'_, PyAny>>,
    other: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyTensor> {
    let (Some(input), Some(other)) = (input, other) else {
        return Err(PyTypeError::new_err(
            "where: needs `condition`, `input` and `other` (the one-argument form is not supported)",
        ));
    };
    // The dtype: the first tensor among input, other, condition.
    let like = [input, other, condition]
        .iter()
        .find_map(|o| o.cast::<PyTensor>().ok().map(|t| t.get().tensor()))
        .unwrap_or_else(|| Tensor::scalar(0.0, DType::F32));
    let a = tensor_arg(input, &like, "where", "input")?;
    let b = tensor_arg(other, &like, "where", "other")?;
    let m = mask_arg(condition, &like, "where", "condition")?;
    run(py, a.numel().max(b.numel()).max(m.numel()), || {
        Tensor::where_(&m, &a, &b)
    })
}
