//! Dtype and new tensors: `type_as`, the `new_zeros`/`new_ones`/`new_empty`/`new_full`/
//! `new_tensor` constructors and the legacy `Tensor.new`.

use crate::convert::{dtype_arg, tensor_from_any};
use crate::errors::IntoPy;
use crate::tensor::{wrap, PyTensor};
use eingrad::Tensor;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

#[pymethods]
impl PyTensor {
    // ---- dtype / new tensors ----

    /// `type_as(other)`: this tensor in `other`'s dtype.
    ///
    /// ```python
    /// >>> eingrad.ones(2).type_as(eingrad.zeros(1, dtype=eingrad.float64)).dtype
    /// eingrad.float64
    /// ```
    fn type_as(&self, other: &PyTensor) -> PyResult<PyTensor> {
        wrap(self.tensor().to_dtype(other.tensor().dtype()))
    }

    /// `new_zeros(*size, dtype=None, requires_grad=False)`: zeros in this tensor's dtype.
    ///
    /// ```python
    /// >>> eingrad.ones(2, dtype=eingrad.float64).new_zeros(3).dtype
    /// eingrad.float64
    /// ```
    #[pyo3(signature = (*size, dtype=None, requires_grad=false))]
    fn new_zeros(
        &self,
        size: &Bound<'_, PyTuple>,
        dtype: Option<&Bound<'_, PyAny>>,
        requires_grad: bool,
    ) -> PyResult<PyTensor> {
        self.new_filled(size, 0.0, dtype, requires_grad, "new_zeros")
    }

    /// `new_ones(*size, dtype=None, requires_grad=False)`: ones in this tensor's dtype.
    ///
    /// ```python
    /// >>> eingrad.ones(2).new_ones(2, 2).shape
    /// (2, 2)
    /// ```
    #[pyo3(signature = (*size, dtype=None, requires_grad=false))]
    fn new_ones(
        &self,
        size: &Bound<'_, PyTuple>,
        dtype: Option<&Bound<'_, PyAny>>,
        requires_grad: bool,
    ) -> PyResult<PyTensor> {
        self.new_filled(size, 1.0, dtype, requires_grad, "new_ones")
    }

    /// `new_empty(*size, dtype=None, requires_grad=False)`: a new tensor (zeros) in this
    /// tensor's dtype.
    ///
    /// ```python
    /// >>> eingrad.ones(2).new_empty(3).shape
    /// (3,)
    /// ```
    #[pyo3(signature = (*size, dtype=None, requires_grad=false))]
    fn new_empty(
        &self,
        size: &Bound<'_, PyTuple>,
        dtype: Option<&Bound<'_, PyAny>>,
        requires_grad: bool,
    ) -> PyResult<PyTensor> {
        self.new_filled(size, 0.0, dtype, requires_grad, "new_empty")
    }

    /// `new_full(size, fill_value, dtype=None, requires_grad=False)`.
    ///
    /// ```python
    /// >>> eingrad.ones(2).new_full((2,), 7.0)
    /// tensor([7., 7.])
    /// ```
    #[pyo3(signature = (size, fill_value, dtype=None, requires_grad=false))]
    fn new_full(
        &self,
        size: &Bound<'_, PyAny>,
        fill_value: f64,
        dtype: Option<&Bound<'_, PyAny>>,
        requires_grad: bool,
    ) -> PyResult<PyTensor> {
        let shape = crate::convert::shape_from_seq(size, "new_full(size)")?;
        let d = dtype_arg(dtype, "new_full(dtype=)")?.unwrap_or(self.tensor().dtype());
        let t = Tensor::full(&shape, fill_value, d).py_err()?;
        Ok(PyTensor::new(t.requires_grad_(requires_grad)))
    }

    /// `new_tensor(data, dtype=None, requires_grad=False)`: a new tensor from data, in this
    /// tensor's dtype.
    ///
    /// ```python
    /// >>> eingrad.ones(1, dtype=eingrad.float64).new_tensor([1, 2]).dtype
    /// eingrad.float64
    /// ```
    #[pyo3(signature = (data, dtype=None, requires_grad=false))]
    fn new_tensor(
        &self,
        data: &Bound<'_, PyAny>,
        dtype: Option<&Bound<'_, PyAny>>,
        requires_grad: bool,
    ) -> PyResult<PyTensor> {
        let d = dtype_arg(dtype, "new_tensor(dtype=)")?.unwrap_or(self.tensor().dtype());
        let t = tensor_from_any(data, Some(d))?
            .detach()
            .mul_scalar(1.0)
            .py_err()?;
        Ok(PyTensor::new(t.detach().requires_grad_(requires_grad)))
    }

    /// `new(*args)`: PyTorch's legacy constructor in this tensor's dtype: `new()` is an
    /// empty tensor, `new(2, 3)` zeros of that size, `new(data)` a tensor from a list.
    ///
    /// ```python
    /// >>> eingrad.ones(2).new().shape
    /// (0,)
    /// ```
    #[pyo3(name = "new", signature = (*args))]
    fn legacy_new(&self, args: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        let d = self.tensor().dtype();
        if args.is_empty() {
            return wrap(Tensor::zeros(&[0], d));
        }
        if args.len() == 1 {
            let a = args.get_item(0)?;
            if a.is_instance_of::<PyList>()
                || a.cast::<PyTensor>().is_ok()
                || a.hasattr("__array__")?
            {
                return wrap(
                    tensor_from_any(&a, Some(d))?
                        .detach()
                        .mul_scalar(1.0)
                        .map(|t| t.detach()),
                );
            }
        }
        let shape = crate::convert::shape_args(args, "new(size)")?;
        wrap(Tensor::zeros(&shape, d))
    }
}

impl PyTensor {
    /// `new_zeros` and friends.
    fn new_filled(
        &self,
        size: &Bound<'_, PyTuple>,
        value: f64,
        dtype: Option<&Bound<'_, PyAny>>,
        requires_grad: bool,
        op: &str,
    ) -> PyResult<PyTensor> {
        let shape = crate::convert::shape_args(size, &format!("{op}(size)"))?;
        let d = dtype_arg(dtype, &format!("{op}(dtype=)"))?.unwrap_or(self.tensor().dtype());
        let t = Tensor::full(&shape, value, d).py_err()?;
        Ok(PyTensor::new(t.requires_grad_(requires_grad)))
    }
}
