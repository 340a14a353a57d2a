//! Reductions: `sum`, `mean`, `var`, `std`, `norm`, `amax`/`amin`, `max`/`min` (with their
//! indices), `argmax`/`argmin`, `logsumexp`, `all`/`any`, `cumsum`, `softmax`/`log_softmax`,
//! and the closeness tests `isclose`, `allclose` and `equal`.

use super::{run, tensor_arg, values_f64};
use crate::convert::{dims_arg, dtype_arg};
use crate::errors::IntoPy;
use crate::tensor::{maybe_detach, wrap, PyTensor};
use eingrad::{DType, Indices, Tensor};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyInt};

/// A `dim` argument that may be `None`, an int or a tuple of ints. `None` (and, as in
/// PyTorch's `sum`, an empty tuple) means every dim.
fn opt_dims(dim: Option<&Bound<'_, PyAny>>, rank: usize, arg: &str) -> PyResult<Vec<isize>> {
    match dim {
        Some(d) if !d.is_none() => {
            let v = dims_arg(d, arg)?;
            if v.is_empty() {
                Ok((0..rank as isize).collect())
            } else {
                Ok(v)
            }
        }
        _ => Ok((0..rank as isize).collect()),
    }
}

/// Indices (no gradient) as a tensor of `dtype`: eingrad has float dtypes only, so `argmax`
/// and `max(dim)` give whole numbers in the input's dtype (exact below 2²⁴ in float32).
fn indices_tensor(ix: &Indices, dtype: DType) -> PyResult<Tensor> {
    let v: Vec<f64> = ix.values.iter().map(|&i| i as f64).collect();
    Tensor::from_f64s(&v, &ix.shape, dtype).py_err()
}

/// PyTorch's `torch.return_types.max/min`: a named tuple `(values, indices)`.
fn values_indices<'py>(
    py: Python<'py>,
    name: &str,
    values: Tensor,
    indices: Tensor,
) -> PyResult<Bound<'py, PyAny>> {
    static MAX: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    static MIN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let cell = if name == "max" { &MAX } else { &MIN };
    let cls = cell.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        let nt = py.import("collections")?.getattr("namedtuple")?;
        let kw = PyDict::new(py);
        kw.set_item("module", "eingrad.return_types")?;
        Ok(nt.call((name, ("values", "indices")), Some(&kw))?.unbind())
    })?;
    cls.bind(py)
        .call1((PyTensor::new(values), PyTensor::new(indices)))
}

/// Elementwise closeness as in PyTorch's `isclose`: equal values (infinities of the same
/// sign included) are close; otherwise both finite and `|a − b| ≤ atol + rtol·|b|`; NaNs
/// are close to each other only with `equal_nan`.
fn close(a: f64, b: f64, rtol: f64, atol: f64, equal_nan: bool) -> bool {
    if a == b {
        return true;
    }
    if a.is_nan() || b.is_nan() {
        return equal_nan && a.is_nan() && b.is_nan();
    }
    if !a.is_finite() || !b.is_finite() {
        return false;
    }
    (a - b).abs() <= atol + rtol * b.abs()
}

/// `a` and `b` broadcast to a common shape, as f64 values, with that shape.
fn broadcast_pair(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
) -> PyResult<(Vec<f64>, Vec<f64>, Vec<usize>)> {
    let shape = eingrad::layout::broadcast_shapes(op, a.dims(), b.dims()).py_err()?;
    let av = values_f64(&a.detach().broadcast_to(&shape).py_err()?)?;
    let bv = values_f64(&b.detach().broadcast_to(&shape).py_err()?)?;
    Ok((av, bv, shape))
}

/// A `dtype=` argument applied to `x` (the op's input is converted first, as in PyTorch).
fn with_dtype_arg(x: Tensor, dtype: Option<&Bound<'_, PyAny>>, op: &str) -> PyResult<Tensor> {
    match dtype_arg(dtype, &format!("{op}(dtype=)"))? {
        Some(d) if d != x.dtype() => x.to_dtype(d).py_err(),
        _ => Ok(x),
    }
}

/// A sum over `dims` (every dim when `dims` lists them all).
fn sum_impl(x: &Tensor, dims: &[isize], keepdim: bool) -> eingrad::Result<Tensor> {
    if !keepdim && dims.len() == x.rank() && x.rank() > 0 {
        let mut all: Vec<isize> = dims.to_vec();
        all.sort_unstable();
        all.dedup();
        if all.len() == x.rank() && all.iter().all(|&d| d >= 0) {
            return x.sum_all();
        }
    }
    x.sum(dims, keepdim)
}

/// The keepdim shape (all ones) for an all-elements reduction of `x`.
fn ones_shape(x: &Tensor) -> Vec<usize> {
    vec![1; x.rank()]
}

#[pymethods]
impl PyTensor {
    /// `isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False)`: the mask of
    /// elements with `|input − other| ≤ atol + rtol·|other|`; equal infinities are close.
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0, float('-inf')]).isclose(eingrad.tensor([1.0 + 1e-9, float('-inf')]))
    /// tensor([1., 1.])
    /// ```
    #[pyo3(signature = (other, rtol=1e-5, atol=1e-8, equal_nan=false))]
    fn isclose(
        &self,
        other: &Bound<'_, PyAny>,
        rtol: f64,
        atol: f64,
        equal_nan: bool,
    ) -> PyResult<PyTensor> {
        let x = self.tensor();
        let o = tensor_arg(other, &x, "isclose", "other")?;
        let (a, b, shape) = broadcast_pair("isclose", &x, &o)?;
        let v: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(&a, &b)| f64::from(u8::from(close(a, b, rtol, atol, equal_nan))))
            .collect();
        wrap(Tensor::from_f64s(&v, &shape, x.dtype()))
    }

    /// `allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False)`: whether every
    /// element is close (see `isclose`; −inf == −inf counts as close, as in PyTorch).
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0, float('-inf')]).allclose(eingrad.tensor([1.0, float('-inf')]))
    /// True
    /// ```
    #[pyo3(signature = (other, rtol=1e-5, atol=1e-8, equal_nan=false))]
    fn allclose(
        &self,
        other: &Bound<'_, PyAny>,
        rtol: f64,
        atol: f64,
        equal_nan: bool,
    ) -> PyResult<bool> {
        let x = self.tensor();
        let o = tensor_arg(other, &x, "allclose", "other")?;
        let (a, b, _) = broadcast_pair("allclose", &x, &o)?;
        Ok(a.iter()
            .zip(&b)
            .all(|(&a, &b)| close(a, b, rtol, atol, equal_nan)))
    }

    /// `equal(input, other)`: whether both have the same shape and the same values.
    ///
    /// ```python
    /// >>> eingrad.ones(2).equal(eingrad.ones(2))
    /// True
    /// ```
    fn equal(&self, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let x = self.tensor();
        let o = tensor_arg(other, &x, "equal", "other")?;
        Ok(x.dims() == o.dims() && values_f64(&x)? == values_f64(&o)?)
    }

    // ---- reductions ----

    /// `sum(input, dim=None, keepdim=False, dtype=None)`: the sum over `dim` (an int or a
    /// tuple; all dims when None).
    ///
    /// ```python
    /// >>> eingrad.tensor([[1.0, 2.0], [3.0, 4.0]]).sum(dim=1)
    /// tensor([3., 7.])
    /// ```
    #[pyo3(signature = (dim=None, keepdim=false, dtype=None))]
    fn sum(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
        dtype: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        let x = with_dtype_arg(self.tensor(), dtype, "sum")?;
        let dims = opt_dims(dim, x.rank(), "sum(dim)")?;
        run(py, x.numel(), || sum_impl(&x, &dims, keepdim))
    }

    /// `mean(input, dim=None, keepdim=False, dtype=None)`: the mean over `dim`.
    ///
    /// ```python
    /// >>> eingrad.tensor([[1.0, 2.0], [3.0, 4.0]]).mean()
    /// tensor(2.5000)
    /// ```
    #[pyo3(signature = (dim=None, keepdim=false, dtype=None))]
    fn mean(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
        dtype: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        let x = with_dtype_arg(self.tensor(), dtype, "mean")?;
        let all = dim.is_none_or(|d| d.is_none());
        let dims = opt_dims(dim, x.rank(), "mean(dim)")?;
        run(py, x.numel(), || {
            if all && !keepdim {
                x.mean_all()
            } else {
                x.mean(&dims, keepdim)
            }
        })
    }

    /// `var(input, dim=None, unbiased=True, keepdim=False, *, correction=None)`: the
    /// variance over `dim` with `correction` (1, unbiased, by default; `unbiased=False` is 0).
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0, 2.0, 3.0]).var()
    /// tensor(1.)
    /// ```
    #[pyo3(signature = (dim=None, unbiased=None, keepdim=false, *, correction=None))]
    fn var(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        unbiased: Option<bool>,
        keepdim: bool,
        correction: Option<i64>,
    ) -> PyResult<PyTensor> {
        let x = self.tensor();
        let c = var_correction(unbiased, correction, "var")?;
        let dims = opt_dims(dim, x.rank(), "var(dim)")?;
        run(py, x.numel(), || x.var(&dims, c, keepdim))
    }

    /// `std(input, dim=None, unbiased=True, keepdim=False, *, correction=None)`: the
    /// square root of `var`.
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0, 2.0, 3.0]).std()
    /// tensor(1.)
    /// ```
    #[pyo3(signature = (dim=None, unbiased=None, keepdim=false, *, correction=None))]
    fn std(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        unbiased: Option<bool>,
        keepdim: bool,
        correction: Option<i64>,
    ) -> PyResult<PyTensor> {
        let x = self.tensor();
        let c = var_correction(unbiased, correction, "std")?;
        let dims = opt_dims(dim, x.rank(), "std(dim)")?;
        run(py, x.numel(), || x.var(&dims, c, keepdim)?.sqrt())
    }

    /// `norm(input, p=2, dim=None, keepdim=False)`: the p-norm over `dim` (`p` a positive
    /// number or `inf`).
    ///
    /// ```python
    /// >>> eingrad.tensor([3.0, 4.0]).norm()
    /// tensor(5.)
    /// ```
    #[pyo3(signature = (p=2.0, dim=None, keepdim=false))]
    fn norm(
        &self,
        py: Python<'_>,
        p: f64,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
    ) -> PyResult<PyTensor> {
        let x = self.tensor();
        if p.is_nan() || p <= 0.0 {
            return Err(PyValueError::new_err(format!(
                "norm: p must be positive or inf, got {p}"
            )));
        }
        let dims = opt_dims(dim, x.rank(), "norm(dim)")?;
        run(py, x.numel(), || {
            let a = x.abs()?;
            if p.is_infinite() {
                a.amax(&dims, keepdim)
            } else if p == 2.0 {
                sum_impl(&x.mul(&x)?, &dims, keepdim)?.sqrt()
            } else if p == 1.0 {
                sum_impl(&a, &dims, keepdim)
            } else {
                sum_impl(&a.powf(p)?, &dims, keepdim)?.powf(1.0 / p)
            }
        })
    }

    /// `amax(input, dim=(), keepdim=False)`: the maximum over `dim` (all dims by default); a
    /// tie splits the gradient evenly.
    ///
    /// ```python
    /// >>> eingrad.tensor([[1.0, 5.0], [3.0, 2.0]]).amax(dim=0)
    /// tensor([3., 5.])
    /// ```
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn amax(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
    ) -> PyResult<PyTensor> {
        let x = self.tensor();
        let dims = opt_dims(dim, x.rank(), "amax(dim)")?;
        run(py, x.numel(), || x.amax(&dims, keepdim))
    }

    /// `amin(input, dim=(), keepdim=False)`: the minimum over `dim`.
    ///
    /// ```python
    /// >>> eingrad.tensor([[1.0, 5.0], [3.0, 2.0]]).amin(dim=1)
    /// tensor([1., 2.])
    /// ```
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn amin(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
    ) -> PyResult<PyTensor> {
        let x = self.tensor();
        let dims = opt_dims(dim, x.rank(), "amin(dim)")?;
        run(py, x.numel(), || x.amin(&dims, keepdim))
    }

    /// `max(input)`: the largest value; `max(input, dim, keepdim=False)`: a named tuple
    /// `(values, indices)` along `dim` (indices as whole numbers in the input's dtype);
    /// `max(input, other)`: the elementwise maximum.
    ///
    /// ```python
    /// >>> x = eingrad.tensor([[1.0, 5.0], [3.0, 2.0]])
    /// >>> x.max().item(), x.max(dim=1).indices.tolist()
    /// (5.0, [1.0, 0.0])
    /// ```
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn max<'py>(
        &self,
        py: Python<'py>,
        dim: Option<&Bound<'py, PyAny>>,
        keepdim: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.extremum(py, dim, keepdim, true)
    }

    /// `min(input)`, `min(input, dim, keepdim=False)` → `(values, indices)`,
    /// `min(input, other)`: as `max`.
    ///
    /// ```python
    /// >>> eingrad.tensor([[1.0, 5.0], [3.0, 2.0]]).min(dim=0).values
    /// tensor([1., 2.])
    /// ```
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn min<'py>(
        &self,
        py: Python<'py>,
        dim: Option<&Bound<'py, PyAny>>,
        keepdim: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.extremum(py, dim, keepdim, false)
    }

    /// `argmax(input, dim=None, keepdim=False)`: the index of the maximum (over the
    /// flattened tensor when `dim` is None), as whole numbers in the input's dtype.
    ///
    /// ```python
    /// >>> eingrad.tensor([[1.0, 5.0], [3.0, 2.0]]).argmax()
    /// tensor(1.)
    /// ```
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn argmax(&self, dim: Option<isize>, keepdim: bool) -> PyResult<PyTensor> {
        self.arg_extremum(dim, keepdim, true)
    }

    /// `argmin(input, dim=None, keepdim=False)`: the index of the minimum.
    ///
    /// ```python
    /// >>> eingrad.tensor([[1.0, 5.0], [3.0, 2.0]]).argmin(dim=1)
    /// tensor([0., 1.])
    /// ```
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn argmin(&self, dim: Option<isize>, keepdim: bool) -> PyResult<PyTensor> {
        self.arg_extremum(dim, keepdim, false)
    }

    /// `logsumexp(input, dim, keepdim=False)`: log Σ exp over `dim`, stable.
    ///
    /// ```python
    /// >>> eingrad.tensor([0.0, 0.0]).logsumexp(0)
    /// tensor(0.6931)
    /// ```
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn logsumexp(
        &self,
        py: Python<'_>,
        dim: Option<&Bound<'_, PyAny>>,
        keepdim: bool,
    ) -> PyResult<PyTensor> {
        let x = self.tensor();
        let dims = opt_dims(dim, x.rank(), "logsumexp(dim)")?;
        run(py, x.numel(), || x.logsumexp(&dims, keepdim))
    }

    /// `all(input, dim=None, keepdim=False)`: whether every element is nonzero (a 1.0/0.0
    /// mask tensor).
    ///
    /// ```python
    /// >>> bool(eingrad.tensor([1.0, 2.0]).all())
    /// True
    /// ```
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn all(&self, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> PyResult<PyTensor> {
        let x = self.tensor();
        let dims = opt_dims(dim, x.rank(), "all(dim)")?;
        // No zero anywhere (true for an empty tensor, as in PyTorch).
        wrap(
            x.detach()
                .eq_scalar(0.0)
                .and_then(|m| sum_impl(&m, &dims, keepdim))
                .and_then(|s| s.eq_scalar(0.0)),
        )
    }

    /// `any(input, dim=None, keepdim=False)`: whether some element is nonzero.
    ///
    /// ```python
    /// >>> bool(eingrad.tensor([0.0, 2.0]).any())
    /// True
    /// ```
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn any(&self, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> PyResult<PyTensor> {
        let x = self.tensor();
        let dims = opt_dims(dim, x.rank(), "any(dim)")?;
        wrap(
            x.detach()
                .ne_scalar(0.0)
                .and_then(|m| sum_impl(&m, &dims, keepdim))
                .and_then(|s| s.gt_scalar(0.0)),
        )
    }

    /// `cumsum(input, dim, dtype=None)`: the running sum along `dim`.
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0, 2.0, 3.0]).cumsum(0)
    /// tensor([1., 3., 6.])
    /// ```
    #[pyo3(signature = (dim, dtype=None))]
    fn cumsum(
        &self,
        py: Python<'_>,
        dim: isize,
        dtype: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        let x = with_dtype_arg(self.tensor(), dtype, "cumsum")?;
        run(py, x.numel(), || x.cumsum(dim, false))
    }

    /// `softmax(input, dim, dtype=None)`: exp normalised along `dim` (a row of −inf gives
    /// zeros).
    ///
    /// ```python
    /// >>> eingrad.tensor([0.0, 0.0]).softmax(0)
    /// tensor([0.5000, 0.5000])
    /// ```
    #[pyo3(signature = (dim, dtype=None))]
    fn softmax(
        &self,
        py: Python<'_>,
        dim: isize,
        dtype: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        let x = with_dtype_arg(self.tensor(), dtype, "softmax")?;
        run(py, x.numel(), || x.softmax(dim))
    }

    /// `log_softmax(input, dim, dtype=None)`: log of `softmax`, stable.
    ///
    /// ```python
    /// >>> eingrad.tensor([0.0, 0.0]).log_softmax(0)
    /// tensor([-0.6931, -0.6931])
    /// ```
    #[pyo3(signature = (dim, dtype=None))]
    fn log_softmax(
        &self,
        py: Python<'_>,
        dim: isize,
        dtype: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        let x = with_dtype_arg(self.tensor(), dtype, "log_softmax")?;
        run(py, x.numel(), || x.log_softmax(dim))
    }
}

impl PyTensor {
    /// `max`/`min` in their three forms.
    fn extremum<'py>(
        &self,
        py: Python<'py>,
        dim: Option<&Bound<'py, PyAny>>,
        keepdim: bool,
        is_max: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let x = self.tensor();
        let name = if is_max { "max" } else { "min" };
        let Some(dim) = dim.filter(|d| !d.is_none()) else {
            if x.numel() == 0 {
                return Err(PyValueError::new_err(format!(
                    "{name}: the tensor is empty (shape {:?}); give a dim",
                    x.dims()
                )));
            }
            let all: Vec<isize> = (0..x.rank() as isize).collect();
            let r = run(py, x.numel(), || {
                if is_max {
                    x.amax(&all, false)
                } else {
                    x.amin(&all, false)
                }
            })?;
            return Ok(Bound::new(py, r)?.into_any());
        };
        if dim.is_instance_of::<PyInt>() {
            let d: isize = dim.extract()?;
            let (v, ix) = maybe_detach(py, x.numel(), || {
                if is_max {
                    x.max_dim(d, keepdim)
                } else {
                    x.min_dim(d, keepdim)
                }
            })
            .py_err()?;
            let ix = indices_tensor(&ix, x.dtype())?;
            return values_indices(py, name, v, ix);
        }
        // max(other): the elementwise maximum.
        let o = tensor_arg(dim, &x, name, "other")?;
        let r = run(py, x.numel().max(o.numel()), || {
            if is_max {
                x.maximum(&o)
            } else {
                x.minimum(&o)
            }
        })?;
        Ok(Bound::new(py, r)?.into_any())
    }

    /// `argmax`/`argmin`.
    fn arg_extremum(&self, dim: Option<isize>, keepdim: bool, is_max: bool) -> PyResult<PyTensor> {
        let x = self.tensor();
        let name = if is_max { "argmax" } else { "argmin" };
        let (src, d) = match dim {
            Some(d) => (x.clone(), d),
            None => (x.reshape(&[x.numel()]).py_err()?, 0),
        };
        if src.numel() == 0 {
            return Err(PyValueError::new_err(format!(
                "{name}: the tensor is empty (shape {:?})",
                x.dims()
            )));
        }
        let ix = if is_max {
            src.argmax(d, keepdim && dim.is_some())
        } else {
            src.argmin(d, keepdim && dim.is_some())
        }
        .py_err()?;
        let mut t = indices_tensor(&ix, x.dtype())?;
        if dim.is_none() && keepdim {
            t = t.reshape(&ones_shape(&x)).py_err()?;
        }
        Ok(PyTensor::new(t))
    }
}

/// The `correction` of `var`/`std` from `unbiased` and `correction`.
fn var_correction(unbiased: Option<bool>, correction: Option<i64>, op: &str) -> PyResult<usize> {
    match (unbiased, correction) {
        (Some(_), Some(_)) => Err(PyValueError::new_err(format!(
            "{op}: give either `unbiased` or `correction`, not both"
        ))),
        (_, Some(c)) if c < 0 => Err(PyValueError::new_err(format!(
            "{op}: correction must be non-negative, got {c}"
        ))),
        (_, Some(c)) => Ok(c as usize),
        (Some(false), None) => Ok(0),
        _ => Ok(1),
    }
}
