//! Logic on masks. eingrad has no bool dtype: comparisons give float masks (1.0 where true,
//! 0.0 where false), and these ops read any nonzero as true and return such masks:
//! `logical_not/and/or/xor`, and the operators `~ & | ^` that PyTorch offers on bool tensors.

use crate::tensor::{operand, wrap, Operand, OrNotImplemented, PyTensor};
use eingrad::Tensor;
use pyo3::prelude::*;

/// Nonzero entries as 1.0, zeros as 0.0.
fn truth(t: &Tensor) -> eingrad::Result<Tensor> {
    t.ne_scalar(0.0)
}

/// A logical op on two masks (`both`), or on a mask and a Python truth value (`with_bool`).
fn logic(
    a: &Tensor,
    other: &Bound<'_, PyAny>,
    both: fn(&Tensor, &Tensor) -> eingrad::Result<Tensor>,
    with_bool: fn(&Tensor, bool) -> eingrad::Result<Tensor>,
) -> PyResult<OrNotImplemented> {
    let r = match operand(other, a)? {
        None => return Ok(OrNotImplemented(None)),
        Some(Operand::Tensor(b)) => truth(a).and_then(|ta| both(&ta, &truth(&b)?)),
        Some(Operand::Scalar(c)) => truth(a).and_then(|ta| with_bool(&ta, c != 0.0)),
    };
    wrap(r).map(|t| OrNotImplemented(Some(t)))
}

fn and_masks(a: &Tensor, b: &Tensor) -> eingrad::Result<Tensor> {
    a.mul(b)
}
fn and_bool(a: &Tensor, c: bool) -> eingrad::Result<Tensor> {
    if c {
        Ok(a.clone())
    } else {
        a.mul_scalar(0.0)
    }
}
fn or_masks(a: &Tensor, b: &Tensor) -> eingrad::Result<Tensor> {
    a.maximum(b)
}
fn or_bool(a: &Tensor, c: bool) -> eingrad::Result<Tensor> {
    if c {
        a.mul_scalar(0.0)?.add_scalar(1.0)
    } else {
        Ok(a.clone())
    }
}
fn xor_masks(a: &Tensor, b: &Tensor) -> eingrad::Result<Tensor> {
    a.ne(b)
}
fn xor_bool(a: &Tensor, c: bool) -> eingrad::Result<Tensor> {
    if c {
        a.eq_scalar(0.0)
    } else {
        Ok(a.clone())
    }
}

#[pymethods]
impl PyTensor {
    /// `logical_not()` (and `~mask`): 1.0 where the entry is zero, else 0.0.
    ///
    /// ```python
    /// >>> (~(eingrad.tensor([1., -2., 0.]) > 0)).tolist()
    /// [0.0, 1.0, 1.0]
    /// ```
    fn logical_not(&self) -> PyResult<PyTensor> {
        wrap(self.tensor().eq_scalar(0.0))
    }
    /// `a.logical_and(b)` (and `a & b`): 1.0 where both are nonzero.
    ///
    /// ```python
    /// >>> eingrad.tensor([1., 1., 0.]).logical_and(eingrad.tensor([2., 0., 0.])).tolist()
    /// [1.0, 0.0, 0.0]
    /// ```
    fn logical_and(&self, other: &Bound<'_, PyAny>) -> PyResult<OrNotImplemented> {
        logic(&self.tensor(), other, and_masks, and_bool)
    }
    /// `a.logical_or(b)` (and `a | b`): 1.0 where either is nonzero.
    ///
    /// ```python
    /// >>> eingrad.tensor([1., 0., 0.]).logical_or(eingrad.tensor([0., 3., 0.])).tolist()
    /// [1.0, 1.0, 0.0]
    /// ```
    fn logical_or(&self, other: &Bound<'_, PyAny>) -> PyResult<OrNotImplemented> {
        logic(&self.tensor(), other, or_masks, or_bool)
    }
    /// `a.logical_xor(b)` (and `a ^ b`): 1.0 where exactly one is nonzero.
    ///
    /// ```python
    /// >>> eingrad.tensor([1., 1., 0.]).logical_xor(eingrad.tensor([1., 0., 0.])).tolist()
    /// [0.0, 1.0, 0.0]
    /// ```
    fn logical_xor(&self, other: &Bound<'_, PyAny>) -> PyResult<OrNotImplemented> {
        logic(&self.tensor(), other, xor_masks, xor_bool)
    }
    fn __invert__(&self) -> PyResult<PyTensor> {
        self.logical_not()
    }
    fn __and__(&self, other: &Bound<'_, PyAny>) -> PyResult<OrNotImplemented> {
        self.logical_and(other)
    }
    fn __rand__(&self, other: &Bound<'_, PyAny>) -> PyResult<OrNotImplemented> {
        self.logical_and(other)
    }
    fn __or__(&self, other: &Bound<'_, PyAny>) -> PyResult<OrNotImplemented> {
        self.logical_or(other)
    }
    fn __ror__(&self, other: &Bound<'_, PyAny>) -> PyResult<OrNotImplemented> {
        self.logical_or(other)
    }
    fn __xor__(&self, other: &Bound<'_, PyAny>) -> PyResult<OrNotImplemented> {
        self.logical_xor(other)
    }
    fn __rxor__(&self, other: &Bound<'_, PyAny>) -> PyResult<OrNotImplemented> {
        self.logical_xor(other)
    }
}

/// Registers the function forms `eingrad.logical_not(x)`, ... (the methods themselves).
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let cls = m.py().get_type::<PyTensor>();
    for name in ["logical_not", "logical_and", "logical_or", "logical_xor"] {
        m.add(name, cls.getattr(name)?)?;
    }
    Ok(())
}
