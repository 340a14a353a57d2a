//! Joining and integer indexing: the functions `cat`/`concat`/`concatenate` and `stack`, the
//! methods `index_select`, `gather`, `scatter_add` and `index_add`, and `_one_hot` (for
//! `eingrad.nn.functional.one_hot`).

use super::{check_indices, int_index, resolve, run, tensor_arg};
use crate::convert::{dtype_arg, short_repr};
use crate::errors::IntoPy;
use crate::tensor::{wrap, PyTensor};
use eingrad::{DType, Indices, Tensor};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PySequence, PyString};

/// A sequence of tensors (`cat`, `stack`): all converted to the first tensor's dtype.
fn tensor_seq(tensors: &Bound<'_, PyAny>, op: &str) -> PyResult<Vec<Tensor>> {
    if tensors.cast::<PyTensor>().is_ok() || tensors.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "{op}: expected a sequence of tensors, got {}",
            short_repr(tensors)
        )));
    }
    let seq = tensors.cast::<PySequence>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{op}: expected a sequence of tensors, got {}",
            short_repr(tensors)
        ))
    })?;
    let mut out: Vec<Tensor> = Vec::with_capacity(seq.len()?);
    for (i, item) in seq.try_iter()?.enumerate() {
        let item = item?;
        let t = item.cast::<PyTensor>().map_err(|_| {
            PyTypeError::new_err(format!(
                "{op}: tensors[{i}] must be a tensor, got {}",
                short_repr(&item)
            ))
        })?;
        let t = t.get().tensor();
        match out.first() {
            Some(f) if f.dtype() != t.dtype() => out.push(t.to_dtype(f.dtype()).py_err()?),
            _ => out.push(t),
        }
    }
    if out.is_empty() {
        return Err(PyValueError::new_err(format!(
            "{op}: expected a non-empty sequence of tensors"
        )));
    }
    Ok(out)
}

#[pymethods]
impl PyTensor {
    /// `index_select(dim, index)`: the slices at `index` (ints: a list, a NumPy array or a
    /// tensor of whole numbers) along `dim`.
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0, 2.0, 3.0]).index_select(0, [2, 0])
    /// tensor([3., 1.])
    /// ```
    fn index_select(
        &self,
        py: Python<'_>,
        dim: isize,
        index: &Bound<'_, PyAny>,
    ) -> PyResult<PyTensor> {
        let x = self.tensor();
        let d = resolve("index_select", dim, x.rank())?;
        let (vals, shape) = int_index(index, "index_select")?;
        if shape.len() > 1 {
            return Err(PyValueError::new_err(format!(
                "index_select: index must be 1-d, got shape {shape:?}"
            )));
        }
        let ix = check_indices("index_select", &vals, d, x.dims()[d], false)?;
        run(py, x.numel(), || x.index_select(d as isize, &ix))
    }

    /// `gather(dim, index)`: `out[i][j] = input[index[i][j]][j]` for dim 0 (and likewise);
    /// `index` has the input's rank.
    ///
    /// ```python
    /// >>> eingrad.tensor([[1.0, 2.0], [3.0, 4.0]]).gather(1, [[0, 0], [1, 0]])
    /// tensor([[1., 1.],
    ///         [4., 3.]])
    /// ```
    fn gather(&self, py: Python<'_>, dim: isize, index: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let x = self.tensor();
        let d = resolve("gather", dim, x.rank())?;
        let (vals, shape) = int_index(index, "gather")?;
        let values = check_indices("gather", &vals, d, x.dims()[d], false)?;
        let ix = Indices { values, shape };
        run(py, x.numel(), || x.gather(d as isize, &ix))
    }

    /// `scatter_add(dim, index, src)` (out of place): `src`'s entries added at `index`
    /// along `dim`.
    ///
    /// ```python
    /// >>> eingrad.zeros(3).scatter_add(0, [2, 0, 2], eingrad.tensor([1.0, 2.0, 4.0]))
    /// tensor([2., 0., 5.])
    /// ```
    fn scatter_add(
        &self,
        py: Python<'_>,
        dim: isize,
        index: &Bound<'_, PyAny>,
        src: &Bound<'_, PyAny>,
    ) -> PyResult<PyTensor> {
        let x = self.tensor();
        let d = resolve("scatter_add", dim, x.rank())?;
        let (vals, shape) = int_index(index, "scatter_add")?;
        let values = check_indices("scatter_add", &vals, d, x.dims()[d], false)?;
        let ix = Indices { values, shape };
        let s = tensor_arg(src, &x, "scatter_add", "src")?;
        run(py, x.numel(), || x.scatter_add(d as isize, &ix, &s))
    }

    /// `index_add(dim, index, source, alpha=1)` (out of place): `alpha·source`'s slices
    /// added at `index` along `dim` (repeated indices accumulate).
    ///
    /// ```python
    /// >>> eingrad.zeros(3).index_add(0, [1, 1, 0], eingrad.tensor([1.0, 2.0, 4.0]))
    /// tensor([4., 3., 0.])
    /// ```
    #[pyo3(signature = (dim, index, source, alpha=1.0))]
    fn index_add(
        &self,
        py: Python<'_>,
        dim: isize,
        index: &Bound<'_, PyAny>,
        source: &Bound<'_, PyAny>,
        alpha: f64,
    ) -> PyResult<PyTensor> {
        let x = self.tensor();
        let d = resolve("index_add", dim, x.rank())?;
        let (vals, _) = int_index(index, "index_add")?;
        let ix = check_indices("index_add", &vals, d, x.dims()[d], false)?;
        let s = tensor_arg(source, &x, "index_add", "source")?;
        run(py, x.numel(), || {
            let s = if alpha == 1.0 {
                s
            } else {
                s.mul_scalar(alpha)?
            };
            x.index_add(d as isize, &ix, &s)
        })
    }
}

/// `cat(tensors, dim=0)`: tensors joined along `dim` (same shape elsewhere).
///
/// ```python
/// >>> eingrad.cat([eingrad.ones(2), eingrad.zeros(1)]).tolist()
/// [1.0, 1.0, 0.0]
/// ```
#[pyfunction]
#[pyo3(signature = (tensors, dim=0))]
pub(super) fn cat(py: Python<'_>, tensors: &Bound<'_, PyAny>, dim: isize) -> PyResult<PyTensor> {
    let ts = tensor_seq(tensors, "cat")?;
    let refs: Vec<&Tensor> = ts.iter().collect();
    let numel = ts.iter().map(|t| t.numel()).sum();
    run(py, numel, || Tensor::cat(&refs, dim))
}

/// `concat(tensors, dim=0)`: the same as `cat`.
///
/// ```python
/// >>> eingrad.concat([eingrad.ones(1), eingrad.ones(1)]).shape
/// (2,)
/// ```
#[pyfunction]
#[pyo3(signature = (tensors, dim=0))]
pub(super) fn concat(py: Python<'_>, tensors: &Bound<'_, PyAny>, dim: isize) -> PyResult<PyTensor> {
    cat(py, tensors, dim)
}

/// `concatenate(tensors, dim=0)`: the same as `cat`.
///
/// ```python
/// >>> eingrad.concatenate([eingrad.ones(1), eingrad.ones(1)]).shape
/// (2,)
/// ```
#[pyfunction]
#[pyo3(signature = (tensors, dim=0))]
pub(super) fn concatenate(
    py: Python<'_>,
    tensors: &Bound<'_, PyAny>,
    dim: isize,
) -> PyResult<PyTensor> {
    cat(py, tensors, dim)
}

/// `stack(tensors, dim=0)`: same-shape tensors stacked along a new dim.
///
/// ```python
/// >>> eingrad.stack([eingrad.ones(3), eingrad.zeros(3)], dim=1).shape
/// (3, 2)
/// ```
#[pyfunction]
#[pyo3(signature = (tensors, dim=0))]
pub(super) fn stack(py: Python<'_>, tensors: &Bound<'_, PyAny>, dim: isize) -> PyResult<PyTensor> {
    let ts = tensor_seq(tensors, "stack")?;
    let refs: Vec<&Tensor> = ts.iter().collect();
    let numel = ts.iter().map(|t| t.numel()).sum();
    run(py, numel, || Tensor::stack(&refs, dim))
}

/// `_one_hot(indices, num_classes, dtype=None)`: a constant `(len(indices), num_classes)`
/// tensor with a 1 at `[i, indices[i]]` (for `eingrad.nn.functional.one_hot`).
///
/// ```python
/// >>> eingrad._eingrad._one_hot([2, 0], 3)
/// tensor([[0., 0., 1.],
///         [1., 0., 0.]])
/// ```
#[pyfunction]
#[pyo3(name = "_one_hot", signature = (indices, num_classes, dtype=None))]
pub(super) fn one_hot(
    indices: &Bound<'_, PyAny>,
    num_classes: usize,
    dtype: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyTensor> {
    let (vals, shape) = int_index(indices, "one_hot")?;
    let ix = check_indices("one_hot", &vals, 1, num_classes, false)?;
    let d = dtype_arg(dtype, "one_hot(dtype=)")?.unwrap_or(DType::F32);
    let t = Tensor::one_hot(&ix, num_classes, d).py_err()?;
    let out_shape: Vec<usize> = shape
        .into_iter()
        .chain(std::iter::once(num_classes))
        .collect();
    wrap(t.reshape(&out_shape))
}
