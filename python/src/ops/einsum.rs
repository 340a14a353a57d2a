//! The function `einsum`, with eingrad's generalised notation (`sizes=` for labels absent
//! from the inputs).

use super::run;
use crate::convert::short_repr;
use crate::tensor::PyTensor;
use eingrad::Tensor;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

/// `einsum(equation, *operands, sizes=None)`: Einstein summation, with eingrad's
/// generalised notation (repeated output labels put values on a diagonal, a label absent from
/// the inputs broadcasts over a new dim whose size `sizes={'i': 3}` gives). The operands may
/// also come as one list, as in PyTorch.
///
/// ```python
/// >>> a = eingrad.ones(2, 3); b = eingrad.ones(3, 4)
/// >>> eingrad.einsum("ij,jk->ik", a, b).shape
/// (2, 4)
/// >>> eingrad.einsum("j->ij", eingrad.ones(2), sizes={"i": 3}).shape
/// (3, 2)
/// ```
#[pyfunction]
#[pyo3(signature = (equation, *operands, sizes=None))]
pub(super) fn einsum(
    py: Python<'_>,
    equation: &Bound<'_, PyAny>,
    operands: &Bound<'_, PyTuple>,
    sizes: Option<&Bound<'_, PyDict>>,
) -> PyResult<PyTensor> {
    let pattern: String = equation.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "einsum: the first argument must be the equation string, got {}",
            short_repr(equation)
        ))
    })?;
    let items: Vec<Bound<'_, PyAny>> = if operands.len() == 1
        && (operands.get_item(0)?.is_instance_of::<PyList>()
            || operands.get_item(0)?.is_instance_of::<PyTuple>())
    {
        operands.get_item(0)?.try_iter()?.collect::<PyResult<_>>()?
    } else {
        operands.iter().collect()
    };
    let mut ts: Vec<Tensor> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let t = item.cast::<PyTensor>().map_err(|_| {
            PyTypeError::new_err(format!(
                "einsum \"{pattern}\": operand {i} must be a tensor, got {}",
                short_repr(item)
            ))
        })?;
        ts.push(t.get().tensor());
    }
    let mut label_sizes: Vec<(char, usize)> = Vec::new();
    if let Some(sz) = sizes {
        for (k, v) in sz.iter() {
            let k: String = k.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "einsum \"{pattern}\": sizes keys must be one-letter labels, got {}",
                    short_repr(&k)
                ))
            })?;
            let mut chars = k.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(PyValueError::new_err(format!(
                    "einsum \"{pattern}\": sizes key {k:?} must be one label character"
                )));
            };
            let n: i64 = v.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "einsum \"{pattern}\": sizes[{k:?}] must be an int, got {}",
                    short_repr(&v)
                ))
            })?;
            if n < 0 {
                return Err(PyValueError::new_err(format!(
                    "einsum \"{pattern}\": sizes[{k:?}] = {n} is negative"
                )));
            }
            label_sizes.push((c, n as usize));
        }
    }
    if let Some(i) = ts.iter().position(|t| t.dtype() != ts[0].dtype()) {
        return Err(PyTypeError::new_err(format!(
            "einsum \"{pattern}\": operand {i} is {:?} but operand 0 is {:?}",
            ts[i].dtype(),
            ts[0].dtype()
        )));
    }
    let numel = ts.iter().map(|t| t.numel()).max().unwrap_or(0);
    let refs: Vec<&Tensor> = ts.iter().collect();
    run(py, numel, || {
        eingrad::einsum_with_sizes(&pattern, &refs, &label_sizes)
    })
}
