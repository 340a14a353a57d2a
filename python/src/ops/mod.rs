//! The library's ops for Python, with PyTorch's names and argument names: einsum (with
//! `sizes=` for generalised outputs), elementwise functions, reductions, shape ops, joining,
//! padding, convolution, gathering and comparisons. Each is a `Tensor` method and, where
//! PyTorch has one, a top-level function `eingrad.X(input, ...)` (the method itself,
//! registered on the module: `eingrad.exp(x)` is `Tensor.exp(x)`), plus the functions whose
//! first argument is not a tensor (`einsum`, `cat`, `stack`, `where`, ...).
//!
//! Every op is differentiable where the library's op is; heavy ones release the GIL.
//!
//! The ops are grouped by concern, each file with its own `#[pymethods] impl PyTensor` block
//! (PyO3's `multiple-pymethods`): `elementwise` (unary functions, arithmetic with arguments,
//! `where`/`masked_fill`, comparisons), `reduce` (reductions, `softmax`, closeness), `shape`
//! (views and reshaping, splitting, diagonals), `index` (joining and integer indexing),
//! `einsum`, `conv` (padding and convolution) and `new` (`type_as` and the `new_*`
//! constructors). This file holds the argument helpers they share and `register`, which adds
//! the functions and the methods that are also functions to the module.

use crate::convert::{short_repr, tensor_from_any};
use crate::errors::IntoPy;
use crate::tensor::{maybe_detach, operand, wrap, Operand, PyTensor};
use eingrad::{DType, Tensor};
use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyString};

mod conv;
mod einsum;
mod elementwise;
mod index;
mod new;
mod reduce;
mod shape;

// ---- argument helpers -------------------------------------------------------------------

/// Runs a tensor op, releasing the GIL when `numel` is large.
fn run(
    py: Python<'_>,
    numel: usize,
    f: impl FnOnce() -> eingrad::Result<Tensor> + Send,
) -> PyResult<PyTensor> {
    wrap(maybe_detach(py, numel, f))
}

/// `other` as a tensor in `like`'s dtype: a tensor (converted when its dtype differs), a
/// Python number (a 0-d tensor), a NumPy array or nested list. `op`/`arg` name the argument
/// in the `TypeError` for anything else.
pub(crate) fn tensor_arg(
    other: &Bound<'_, PyAny>,
    like: &Tensor,
    op: &str,
    arg: &str,
) -> PyResult<Tensor> {
    match operand(other, like)? {
        Some(Operand::Tensor(t)) if t.dtype() != like.dtype() => t.to_dtype(like.dtype()).py_err(),
        Some(Operand::Tensor(t)) => Ok(t),
        Some(Operand::Scalar(c)) => Ok(Tensor::scalar(c, like.dtype())),
        None => Err(PyTypeError::new_err(format!(
            "{op}: `{arg}` must be a tensor or a number, got {}",
            short_repr(other)
        ))),
    }
}

/// A mask argument (a tensor of 0/1, a NumPy bool array, a nested list) as a detached
/// tensor in `like`'s dtype.
pub(crate) fn mask_arg(
    mask: &Bound<'_, PyAny>,
    like: &Tensor,
    op: &str,
    arg: &str,
) -> PyResult<Tensor> {
    if mask.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "{op}: `{arg}` must be a mask tensor, got {}",
            short_repr(mask)
        )));
    }
    let t = tensor_from_any(mask, Some(like.dtype())).map_err(|e| {
        PyTypeError::new_err(format!(
            "{op}: `{arg}` must be a mask tensor, got {} ({e})",
            short_repr(mask)
        ))
    })?;
    Ok(t.detach())
}

/// Resolves a possibly negative `dim` against `rank` (a `ValueError` naming op and dim).
fn resolve(op: &str, dim: isize, rank: usize) -> PyResult<usize> {
    let r = rank as isize;
    let d = if dim < 0 { dim + r } else { dim };
    if d < 0 || d >= r {
        return Err(PyValueError::new_err(format!(
            "{op}: dim {dim} is out of range for a tensor of rank {rank}"
        )));
    }
    Ok(d as usize)
}

/// `t`'s values as f64 in row-major order, or a `ValueError` when they do not fit in memory
/// (a huge broadcast view).
pub(crate) fn values_f64(t: &Tensor) -> PyResult<Vec<f64>> {
    match t.dtype() {
        DType::F64 => t.to_vec::<f64>().py_err(),
        DType::F32 => {
            // `to_vec` returns an error (not an abort) when the copy cannot be allocated.
            let v = t.to_vec::<f32>().py_err()?;
            let mut out = try_vec(0, 0.0, "values")?;
            out.try_reserve_exact(v.len()).map_err(|_| {
                PyValueError::new_err(format!(
                    "cannot copy the {} elements of a tensor of shape {:?}",
                    v.len(),
                    t.dims()
                ))
            })?;
            out.extend(v.iter().map(|&x| f64::from(x)));
            Ok(out)
        }
    }
}

/// `n` copies of `v`, or a `ValueError` naming `op` when they cannot be allocated.
pub(crate) fn try_vec<T: Clone>(n: usize, v: T, op: &str) -> PyResult<Vec<T>> {
    let mut out = Vec::new();
    out.try_reserve_exact(n)
        .map_err(|_| PyValueError::new_err(format!("{op}: cannot allocate {n} elements")))?;
    out.resize(n, v);
    Ok(out)
}

/// Integer indices from a list, a range, a NumPy integer array or an eingrad tensor of whole
/// numbers: the values (negative ones kept) and the shape.
pub(crate) fn int_index(obj: &Bound<'_, PyAny>, op: &str) -> PyResult<(Vec<i64>, Vec<usize>)> {
    if let Ok(t) = obj.cast::<PyTensor>() {
        let t = t.get().tensor();
        let vals = values_f64(&t)?
            .into_iter()
            .map(|v| {
                if v.fract() != 0.0 || !v.is_finite() {
                    return Err(PyValueError::new_err(format!(
                        "{op}: index tensor holds {v}, not a whole number"
                    )));
                }
                Ok(v as i64)
            })
            .collect::<PyResult<Vec<i64>>>()?;
        return Ok((vals, t.dims().to_vec()));
    }
    if let Ok(i) = obj.extract::<i64>() {
        if obj.is_instance_of::<PyInt>() {
            return Ok((vec![i], vec![]));
        }
    }
    let np = obj.py().import("numpy")?;
    let arr = np.call_method1("asarray", (obj,)).map_err(|e| {
        PyTypeError::new_err(format!(
            "{op}: index must be ints, got {} ({e})",
            short_repr(obj)
        ))
    })?;
    let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
    let shape: Vec<usize> = arr.getattr("shape")?.extract()?;
    let ok = match kind.as_str() {
        "i" | "u" => true,
        // An empty list is float64 in NumPy; whole floats are accepted as well.
        "f" => {
            let whole: bool = np
                .call_method1(
                    "all",
                    (np.call_method1("equal", (&arr, np.call_method1("floor", (&arr,))?))?,),
                )?
                .extract()?;
            whole
        }
        _ => false,
    };
    if !ok {
        return Err(PyTypeError::new_err(format!(
            "{op}: index must be ints, got {} (NumPy dtype kind {kind:?})",
            short_repr(obj)
        )));
    }
    let vals: Vec<i64> = arr
        .call_method1("astype", ("int64",))?
        .call_method0("ravel")?
        .call_method0("tolist")?
        .extract()?;
    Ok((vals, shape))
}

/// Non-negative indices below `size` (negative ones count from the end when `wrap_negative`),
/// or an `IndexError` naming the op, the dim, the index and the size.
pub(crate) fn check_indices(
    op: &str,
    vals: &[i64],
    dim: usize,
    size: usize,
    wrap_negative: bool,
) -> PyResult<Vec<usize>> {
    vals.iter()
        .map(|&v| {
            let w = if v < 0 && wrap_negative {
                v + size as i64
            } else {
                v
            };
            if w < 0 || w >= size as i64 {
                Err(PyIndexError::new_err(format!(
                    "{op}: index {v} is out of range for dim {dim} of size {size}"
                )))
            } else {
                Ok(w as usize)
            }
        })
        .collect()
}

/// Methods that are also top-level functions (`eingrad.sum(x, dim=1)` is `x.sum(dim=1)`).
const FUNCTION_METHODS: &[&str] = &[
    "gelu",
    "softplus",
    "pow",
    "clamp",
    "clip",
    "maximum",
    "minimum",
    "add",
    "sub",
    "mul",
    "div",
    "masked_fill",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "isclose",
    "allclose",
    "equal",
    "sum",
    "mean",
    "var",
    "std",
    "norm",
    "amax",
    "amin",
    "max",
    "min",
    "argmax",
    "argmin",
    "logsumexp",
    "all",
    "any",
    "cumsum",
    "softmax",
    "log_softmax",
    "reshape",
    "permute",
    "transpose",
    "swapaxes",
    "movedim",
    "unsqueeze",
    "squeeze",
    "flatten",
    "unflatten",
    "flip",
    "roll",
    "narrow",
    "split",
    "chunk",
    "unbind",
    "diagonal",
    "tril",
    "triu",
    "index_select",
    "gather",
    "scatter_add",
    "index_add",
    "broadcast_to",
];

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    for f in [
        wrap_pyfunction!(einsum::einsum, m)?,
        wrap_pyfunction!(index::cat, m)?,
        wrap_pyfunction!(index::concat, m)?,
        wrap_pyfunction!(index::concatenate, m)?,
        wrap_pyfunction!(index::stack, m)?,
        wrap_pyfunction!(elementwise::where_fn, m)?,
        wrap_pyfunction!(conv::pad, m)?,
        wrap_pyfunction!(conv::conv1d, m)?,
        wrap_pyfunction!(index::one_hot, m)?,
    ] {
        m.add_function(f)?;
    }
    let cls = m.py().get_type::<PyTensor>();
    // (`contiguous` is a method only, as in PyTorch.)
    for name in elementwise::UNARY_NAMES
        .iter()
        .chain(FUNCTION_METHODS)
        .filter(|n| **n != "contiguous")
    {
        // The method descriptor itself: `eingrad.exp(x)` calls `Tensor.exp(x)`.
        m.add(*name, cls.getattr(*name)?)?;
    }
    Ok(())
}
