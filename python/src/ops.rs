//! The library's ops for Python, with PyTorch's names and argument names: einsum (with
//! `sizes=` for generalised outputs), elementwise functions, reductions, shape ops, joining,
//! padding, convolution, gathering and comparisons. Each is a `Tensor` method and, where
//! PyTorch has one, a top-level function `eingrad.X(input, ...)` (the method itself,
//! registered on the module: `eingrad.exp(x)` is `Tensor.exp(x)`), plus the functions whose
//! first argument is not a tensor (`einsum`, `cat`, `stack`, `where`, ...).
//!
//! Every op is differentiable where the library's op is; heavy ones release the GIL.

use crate::convert::{dims_arg, dtype_arg, short_repr, tensor_from_any};
use crate::errors::IntoPy;
use crate::tensor::{maybe_detach, operand, wrap, Operand, PyTensor};
use eingrad::{Conv1dOptions, DType, Indices, Padding, Tensor};
use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyInt, PyList, PySequence, PyString, PyTuple};

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

/// Ints given either as one sequence or as separate arguments (`view(2, -1)`,
/// `view((2, -1))`); negative values allowed (the op checks them).
fn int_args(args: &Bound<'_, PyTuple>, arg: &str) -> PyResult<Vec<isize>> {
    if args.len() == 1 {
        let first = args.get_item(0)?;
        if !first.is_instance_of::<PyInt>() {
            return dims_arg(&first, arg);
        }
    }
    dims_arg(args.as_any(), arg)
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

/// The `(left, right)` zeros of conv1d's `padding` argument: an int, a one-int tuple,
/// `'valid'` or `'same'` (for stride 1: `dilation·(k − 1)` in all, the extra one on the
/// right, as PyTorch).
fn conv_padding(
    padding: &Bound<'_, PyAny>,
    kernel: usize,
    dilation: usize,
    stride: usize,
) -> PyResult<Padding> {
    if let Ok(s) = padding.cast::<PyString>() {
        return match s.to_str()? {
            "valid" => Ok(Padding::Symmetric(0)),
            "same" => {
                if stride != 1 {
                    return Err(PyValueError::new_err(
                        "conv1d: padding='same' needs stride 1",
                    ));
                }
                let total = dilation * kernel.saturating_sub(1);
                Ok(Padding::LeftRight(total / 2, total - total / 2))
            }
            other => Err(PyValueError::new_err(format!(
                "conv1d: padding {other:?} is not one of 'valid', 'same' or an int"
            ))),
        };
    }
    let v: Vec<isize> = dims_arg(padding, "conv1d(padding)")?;
    match v.as_slice() {
        [p] if *p >= 0 => Ok(Padding::Symmetric(*p as usize)),
        _ => Err(PyValueError::new_err(format!(
            "conv1d: padding must be a non-negative int, 'same' or 'valid', got {}",
            short_repr(padding)
        ))),
    }
}

/// A one-int argument that may be given as a one-int tuple (`stride=(2,)`).
fn one_int(obj: &Bound<'_, PyAny>, op: &str, arg: &str) -> PyResult<usize> {
    let v = dims_arg(obj, &format!("{op}({arg})"))?;
    match v.as_slice() {
        [p] if *p >= 1 => Ok(*p as usize),
        _ => Err(PyValueError::new_err(format!(
            "{op}: {arg} must be a positive int, got {}",
            short_repr(obj)
        ))),
    }
}

/// The index that pad mode `mode` reads for position `p` (may be outside `0..n`).
fn pad_source(mode: &str, p: isize, n: isize) -> isize {
    match mode {
        "replicate" => p.clamp(0, n - 1),
        "circular" => p.rem_euclid(n),
        // reflect: mirror without repeating the edge.
        _ => {
            let period = 2 * (n - 1);
            if period == 0 {
                return 0;
            }
            let q = p.rem_euclid(period);
            if q < n {
                q
            } else {
                period - q
            }
        }
    }
}

/// `torch.nn.functional.pad` on a Rust tensor: `pad` pairs from the last dim backwards,
/// negative amounts crop; `mode` constant, reflect, replicate or circular.
fn pad_impl(x: &Tensor, pad: &[isize], mode: &str, value: f64) -> PyResult<Tensor> {
    if !pad.len().is_multiple_of(2) || pad.len() / 2 > x.rank() {
        return Err(PyValueError::new_err(format!(
            "pad: `pad` needs an even number of entries, at most 2 × rank ({} for shape {:?}), got {pad:?}",
            2 * x.rank(),
            x.dims()
        )));
    }
    if !matches!(mode, "constant" | "reflect" | "replicate" | "circular") {
        return Err(PyValueError::new_err(format!(
            "pad: mode {mode:?} is not one of 'constant', 'reflect', 'replicate', 'circular'"
        )));
    }
    let rank = x.rank();
    let mut out = x.clone();
    for (k, pair) in pad.chunks(2).enumerate() {
        let dim = rank - 1 - k;
        let (mut before, mut after) = (pair[0], pair[1]);
        // Negative amounts crop first.
        let n = out.dims()[dim] as isize;
        let (crop_b, crop_a) = ((-before).max(0), (-after).max(0));
        if crop_b + crop_a > n {
            return Err(PyValueError::new_err(format!(
                "pad: cropping {pair:?} is more than dim {dim} of size {n}"
            )));
        }
        if crop_b + crop_a > 0 {
            out = out
                .narrow(
                    dim as isize,
                    crop_b as usize,
                    (n - crop_b - crop_a) as usize,
                )
                .py_err()?;
        }
        before = before.max(0);
        after = after.max(0);
        if before == 0 && after == 0 {
            continue;
        }
        let n = out.dims()[dim] as isize;
        if mode == "constant" {
            let mut pads = vec![(0usize, 0usize); rank];
            pads[dim] = (before as usize, after as usize);
            out = out.pad(&pads, value).py_err()?;
            continue;
        }
        if n == 0 || (mode == "reflect" && (before >= n || after >= n)) {
            return Err(PyValueError::new_err(format!(
                "pad: mode {mode:?} needs padding ({before}, {after}) smaller than dim {dim} of size {n}"
            )));
        }
        if mode == "circular" && (before > n || after > n) {
            return Err(PyValueError::new_err(format!(
                "pad: mode 'circular' needs padding ({before}, {after}) at most dim {dim} of size {n}"
            )));
        }
        let mut index = try_vec(0, 0usize, "pad")?;
        index
            .try_reserve_exact((n + before + after) as usize)
            .map_err(|_| PyValueError::new_err(format!("pad: padding {pair:?} is too large")))?;
        index.extend((-before..n + after).map(|p| pad_source(mode, p, n) as usize));
        out = out.index_select(dim as isize, &index).py_err()?;
    }
    Ok(out)
}

/// Sizes of the pieces `split(split_size_or_sections)` cuts a dim of size `n` into.
fn split_sizes(arg: &Bound<'_, PyAny>, n: usize) -> PyResult<Vec<usize>> {
    if let Ok(s) = arg.extract::<isize>() {
        if s <= 0 {
            return Err(PyValueError::new_err(format!(
                "split: split_size must be positive, got {s}"
            )));
        }
        let s = s as usize;
        let mut v = vec![s; n / s];
        if !n.is_multiple_of(s) {
            v.push(n % s);
        }
        if n == 0 {
            v.push(0);
        }
        return Ok(v);
    }
    let v = dims_arg(arg, "split(split_size_or_sections)")?;
    if v.iter().any(|&s| s < 0) || v.iter().sum::<isize>() != n as isize {
        return Err(PyValueError::new_err(format!(
            "split: sections {v:?} must be non-negative and sum to the dim's size {n}"
        )));
    }
    Ok(v.into_iter().map(|s| s as usize).collect())
}

/// A tuple of tensors.
fn tensor_tuple(py: Python<'_>, ts: Vec<Tensor>) -> PyResult<Bound<'_, PyTuple>> {
    let objs: Vec<Bound<'_, PyTensor>> = ts
        .into_iter()
        .map(|t| Bound::new(py, PyTensor::new(t)))
        .collect::<PyResult<_>>()?;
    PyTuple::new(py, objs)
}

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

/// `x` with every dim reversed (`.T`), or `x` itself below rank 2.
fn reverse_dims(x: &Tensor) -> eingrad::Result<Tensor> {
    if x.rank() < 2 {
        return Ok(x.clone());
    }
    let perm: Vec<usize> = (0..x.rank()).rev().collect();
    x.permute(&perm)
}

/// The diagonal with `offset` of dims `d1`, `d2` (PyTorch's `diagonal`): those dims removed,
/// the diagonal appended last.
fn diagonal_impl(x: &Tensor, offset: isize, d1: isize, d2: isize) -> PyResult<Tensor> {
    let r = x.rank();
    let (a, b) = (resolve("diagonal", d1, r)?, resolve("diagonal", d2, r)?);
    if a == b {
        return Err(PyValueError::new_err(format!(
            "diagonal: dim1 and dim2 are the same dim ({a})"
        )));
    }
    let (na, nb) = (x.dims()[a] as isize, x.dims()[b] as isize);
    let (sa, sb) = if offset >= 0 {
        (0, offset)
    } else {
        (-offset, 0)
    };
    let len = (na - sa).min(nb - sb).max(0) as usize;
    let (sa, sb) = (sa.min(na) as usize, sb.min(nb) as usize);
    let y = x
        .narrow(a as isize, sa, len)
        .and_then(|y| y.narrow(b as isize, sb, len))
        .py_err()?;
    y.diagonal(&[a, b]).py_err()
}

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
        const UNARY_NAMES: &[&str] = &[$(stringify!($name)),*];
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

    // ---- shape ----

    /// `reshape(*shape)`: the same elements in a new shape (one entry may be −1); a view
    /// when the strides allow, else a copy.
    ///
    /// ```python
    /// >>> eingrad.arange(6).reshape(2, -1).shape
    /// (2, 3)
    /// ```
    #[pyo3(signature = (*shape))]
    fn reshape(&self, shape: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        let s = int_args(shape, "reshape(shape)")?;
        wrap(self.tensor().view(&s))
    }

    /// `view(*shape)`: as `reshape` (eingrad copies when a view is impossible).
    ///
    /// ```python
    /// >>> eingrad.arange(6).view(3, 2).shape
    /// (3, 2)
    /// ```
    #[pyo3(signature = (*shape))]
    fn view(&self, shape: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        let s = int_args(shape, "view(shape)")?;
        wrap(self.tensor().view(&s))
    }

    /// `view_as(other)`: `view(other.shape)`.
    ///
    /// ```python
    /// >>> eingrad.arange(6).view_as(eingrad.zeros(2, 3)).shape
    /// (2, 3)
    /// ```
    fn view_as(&self, other: &PyTensor) -> PyResult<PyTensor> {
        wrap(self.tensor().reshape(other.tensor().dims()))
    }

    /// `reshape_as(other)`: `reshape(other.shape)`.
    ///
    /// ```python
    /// >>> eingrad.arange(6).reshape_as(eingrad.zeros(3, 2)).shape
    /// (3, 2)
    /// ```
    fn reshape_as(&self, other: &PyTensor) -> PyResult<PyTensor> {
        wrap(self.tensor().reshape(other.tensor().dims()))
    }

    /// `permute(*dims)`: the dims reordered (a view).
    ///
    /// ```python
    /// >>> eingrad.zeros(2, 3, 4).permute(2, 0, 1).shape
    /// (4, 2, 3)
    /// ```
    #[pyo3(signature = (*dims))]
    fn permute(&self, dims: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        let x = self.tensor();
        let d = int_args(dims, "permute(dims)")?;
        if d.len() != x.rank() {
            return Err(PyValueError::new_err(format!(
                "permute: dims {d:?} must list each of the {} dims of shape {:?} once",
                x.rank(),
                x.dims()
            )));
        }
        let perm: Vec<usize> = d
            .iter()
            .map(|&v| resolve("permute", v, x.rank()))
            .collect::<PyResult<_>>()?;
        wrap(x.permute(&perm))
    }

    /// `transpose(dim0, dim1)`: two dims swapped (a view).
    ///
    /// ```python
    /// >>> eingrad.zeros(2, 3, 4).transpose(0, -1).shape
    /// (4, 3, 2)
    /// ```
    fn transpose(&self, dim0: isize, dim1: isize) -> PyResult<PyTensor> {
        wrap(self.tensor().transpose(dim0, dim1))
    }

    /// `swapaxes(axis0, axis1)`: the same as `transpose`.
    ///
    /// ```python
    /// >>> eingrad.zeros(2, 3).swapaxes(0, 1).shape
    /// (3, 2)
    /// ```
    fn swapaxes(&self, axis0: isize, axis1: isize) -> PyResult<PyTensor> {
        wrap(self.tensor().transpose(axis0, axis1))
    }

    /// `movedim(source, destination)`: dims moved to new positions (ints or tuples).
    ///
    /// ```python
    /// >>> eingrad.zeros(2, 3, 4).movedim(0, -1).shape
    /// (3, 4, 2)
    /// ```
    fn movedim(
        &self,
        source: &Bound<'_, PyAny>,
        destination: &Bound<'_, PyAny>,
    ) -> PyResult<PyTensor> {
        let x = self.tensor();
        let r = x.rank();
        let src: Vec<usize> = dims_arg(source, "movedim(source)")?
            .into_iter()
            .map(|d| resolve("movedim", d, r))
            .collect::<PyResult<_>>()?;
        let dst: Vec<usize> = dims_arg(destination, "movedim(destination)")?
            .into_iter()
            .map(|d| resolve("movedim", d, r))
            .collect::<PyResult<_>>()?;
        let distinct = |v: &[usize]| {
            let mut s = v.to_vec();
            s.sort_unstable();
            s.dedup();
            s.len() == v.len()
        };
        if src.len() != dst.len() || !distinct(&src) || !distinct(&dst) {
            return Err(PyValueError::new_err(format!(
                "movedim: source {src:?} and destination {dst:?} must be distinct dims of equal count"
            )));
        }
        let mut perm = vec![usize::MAX; r];
        for (&s, &d) in src.iter().zip(&dst) {
            perm[d] = s;
        }
        let mut rest = (0..r).filter(|i| !src.contains(i));
        for p in perm.iter_mut().filter(|p| **p == usize::MAX) {
            *p = rest.next().unwrap_or(0);
        }
        wrap(x.permute(&perm))
    }

    /// `T`: the dims reversed (a matrix's transpose).
    ///
    /// ```python
    /// >>> eingrad.zeros(2, 3).T.shape
    /// (3, 2)
    /// ```
    #[getter(T)]
    fn t_property(&self) -> PyResult<PyTensor> {
        wrap(reverse_dims(&self.tensor()))
    }

    /// `mT`: the last two dims swapped.
    ///
    /// ```python
    /// >>> eingrad.zeros(5, 2, 3).mT.shape
    /// (5, 3, 2)
    /// ```
    #[getter(mT)]
    fn mt_property(&self) -> PyResult<PyTensor> {
        let x = self.tensor();
        if x.rank() < 2 {
            return Err(PyValueError::new_err(format!(
                "mT: needs at least 2 dims, shape is {:?}",
                x.dims()
            )));
        }
        wrap(x.transpose(-2, -1))
    }

    /// `unsqueeze(dim)`: a size-1 dim inserted at `dim`.
    ///
    /// ```python
    /// >>> eingrad.zeros(2, 3).unsqueeze(1).shape
    /// (2, 1, 3)
    /// ```
    fn unsqueeze(&self, dim: isize) -> PyResult<PyTensor> {
        wrap(self.tensor().unsqueeze(dim))
    }

    /// `squeeze(dim=None)`: size-1 dims removed (all of them, or those of `dim`, an int or
    /// a tuple; a dim of another size stays).
    ///
    /// ```python
    /// >>> eingrad.zeros(2, 1, 3, 1).squeeze().shape
    /// (2, 3)
    /// ```
    #[pyo3(signature = (dim=None))]
    fn squeeze(&self, dim: Option<&Bound<'_, PyAny>>) -> PyResult<PyTensor> {
        let x = self.tensor();
        match dim.filter(|d| !d.is_none()) {
            None => wrap(x.squeeze(None)),
            Some(d) => {
                let r = x.rank();
                let mut ds: Vec<usize> = dims_arg(d, "squeeze(dim)")?
                    .into_iter()
                    .map(|v| resolve("squeeze", v, r))
                    .collect::<PyResult<_>>()?;
                if r == 0 {
                    return wrap(Ok(x));
                }
                ds.sort_unstable();
                ds.dedup();
                let shape: Vec<usize> = x
                    .dims()
                    .iter()
                    .enumerate()
                    .filter(|(i, &n)| !(n == 1 && ds.contains(i)))
                    .map(|(_, &n)| n)
                    .collect();
                wrap(x.reshape(&shape))
            }
        }
    }

    /// `expand(*sizes)`: size-1 dims broadcast to `sizes` without copying (−1 keeps a
    /// dim's size; extra leading dims are added).
    ///
    /// ```python
    /// >>> eingrad.zeros(3, 1).expand(2, -1, 4).shape
    /// (2, 3, 4)
    /// ```
    #[pyo3(signature = (*sizes))]
    fn expand(&self, sizes: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        let x = self.tensor();
        let s = int_args(sizes, "expand(sizes)")?;
        if s.len() < x.rank() {
            return Err(PyValueError::new_err(format!(
                "expand: sizes {s:?} have fewer entries than the tensor of shape {:?} has dims",
                x.dims()
            )));
        }
        let lead = s.len() - x.rank();
        let mut shape = Vec::with_capacity(s.len());
        for (i, &v) in s.iter().enumerate() {
            if v == -1 && i >= lead {
                shape.push(x.dims()[i - lead]);
            } else if v < 0 {
                return Err(PyValueError::new_err(format!(
                    "expand: size {v} at position {i} of {s:?} is invalid (−1 keeps an existing dim only)"
                )));
            } else {
                shape.push(v as usize);
            }
        }
        x.broadcast_to(&shape)
            .map(PyTensor::new)
            .map_err(|e| PyValueError::new_err(format!("expand: {e}")))
    }

    /// `expand_as(other)`: `expand(other.shape)`.
    ///
    /// ```python
    /// >>> eingrad.zeros(3, 1).expand_as(eingrad.zeros(3, 4)).shape
    /// (3, 4)
    /// ```
    fn expand_as(&self, other: &PyTensor) -> PyResult<PyTensor> {
        wrap(self.tensor().broadcast_to(other.tensor().dims()))
    }

    /// `broadcast_to(shape)`: `expand(shape)`.
    ///
    /// ```python
    /// >>> eingrad.zeros(3).broadcast_to((2, 3)).shape
    /// (2, 3)
    /// ```
    fn broadcast_to(&self, shape: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let s = crate::convert::shape_from_seq(shape, "broadcast_to(shape)")?;
        wrap(self.tensor().broadcast_to(&s))
    }

    /// `repeat(*sizes)`: the tensor tiled `sizes[i]` times along dim i (extra leading
    /// sizes add dims).
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0, 2.0]).repeat(2, 2).shape
    /// (2, 4)
    /// ```
    #[pyo3(signature = (*sizes))]
    fn repeat(&self, py: Python<'_>, sizes: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        let s = int_args(sizes, "repeat(sizes)")?;
        if let Some(v) = s.iter().find(|&&v| v < 0) {
            return Err(PyValueError::new_err(format!(
                "repeat: negative size {v} in {s:?}"
            )));
        }
        let reps: Vec<usize> = s.iter().map(|&v| v as usize).collect();
        let x = self.tensor();
        let n = x.numel().saturating_mul(reps.iter().product::<usize>());
        run(py, n, || x.repeat(&reps))
    }

    /// `flatten(start_dim=0, end_dim=-1)`: dims `start_dim..=end_dim` merged into one.
    ///
    /// ```python
    /// >>> eingrad.zeros(2, 3, 4).flatten(1).shape
    /// (2, 12)
    /// ```
    #[pyo3(signature = (start_dim=0, end_dim=-1))]
    fn flatten(&self, start_dim: isize, end_dim: isize) -> PyResult<PyTensor> {
        let x = self.tensor();
        if x.rank() == 0 {
            return wrap(x.reshape(&[1]));
        }
        let (a, b) = (
            resolve("flatten", start_dim, x.rank())?,
            resolve("flatten", end_dim, x.rank())?,
        );
        if a > b {
            return Err(PyValueError::new_err(format!(
                "flatten: start_dim {start_dim} comes after end_dim {end_dim}"
            )));
        }
        let d = x.dims();
        let shape: Vec<usize> = d[..a]
            .iter()
            .copied()
            .chain(std::iter::once(d[a..=b].iter().product()))
            .chain(d[b + 1..].iter().copied())
            .collect();
        wrap(x.reshape(&shape))
    }

    /// `unflatten(dim, sizes)`: dim `dim` split into `sizes` (one may be −1).
    ///
    /// ```python
    /// >>> eingrad.zeros(2, 12).unflatten(1, (3, 4)).shape
    /// (2, 3, 4)
    /// ```
    fn unflatten(&self, dim: isize, sizes: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let x = self.tensor();
        let d = resolve("unflatten", dim, x.rank())?;
        let s = dims_arg(sizes, "unflatten(sizes)")?;
        let mut shape: Vec<isize> = x.dims()[..d].iter().map(|&v| v as isize).collect();
        let n = x.dims()[d];
        let known: isize = s.iter().filter(|&&v| v >= 0).product();
        if s.iter().filter(|&&v| v < 0).count() > 1
            || s.iter().any(|&v| v < -1)
            || (s.contains(&-1) && (known == 0 || n as isize % known != 0))
            || (!s.contains(&-1) && known != n as isize)
        {
            return Err(PyValueError::new_err(format!(
                "unflatten: sizes {s:?} do not multiply to dim {dim}'s size {n}"
            )));
        }
        shape.extend(&s);
        shape.extend(x.dims()[d + 1..].iter().map(|&v| v as isize));
        wrap(x.view(&shape))
    }

    /// `flip(dims)`: the order reversed along `dims` (an int or a tuple).
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0, 2.0, 3.0]).flip(0)
    /// tensor([3., 2., 1.])
    /// ```
    #[pyo3(signature = (*dims))]
    fn flip(&self, dims: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        let d = int_args(dims, "flip(dims)")?;
        wrap(self.tensor().flip(&d))
    }

    /// `roll(shifts, dims=None)`: elements shifted cyclically along `dims` (the flattened
    /// tensor when None).
    ///
    /// ```python
    /// >>> eingrad.tensor([1.0, 2.0, 3.0]).roll(1)
    /// tensor([3., 1., 2.])
    /// ```
    #[pyo3(signature = (shifts, dims=None))]
    fn roll(
        &self,
        shifts: &Bound<'_, PyAny>,
        dims: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        let x = self.tensor();
        let s = dims_arg(shifts, "roll(shifts)")?;
        let Some(dims) = dims.filter(|d| !d.is_none()) else {
            if s.len() != 1 {
                return Err(PyValueError::new_err(
                    "roll: without `dims`, `shifts` must be one int",
                ));
            }
            let flat = x.reshape(&[x.numel()]).py_err()?;
            let r = roll_dim(&flat, s[0], 0)?;
            return wrap(r.reshape(x.dims()));
        };
        let d = dims_arg(dims, "roll(dims)")?;
        if d.len() != s.len() {
            return Err(PyValueError::new_err(format!(
                "roll: shifts {s:?} and dims {d:?} must have the same length"
            )));
        }
        let mut y = x.clone();
        for (&sh, &dm) in s.iter().zip(&d) {
            let dm = resolve("roll", dm, x.rank())?;
            y = roll_dim(&y, sh, dm)?;
        }
        Ok(PyTensor::new(y))
    }

    /// `narrow(dim, start, length)`: `length` elements from `start` along `dim` (a view;
    /// a negative `start` counts from the end).
    ///
    /// ```python
    /// >>> eingrad.arange(5).narrow(0, 1, 3)
    /// tensor([1., 2., 3.])
    /// ```
    fn narrow(&self, dim: isize, start: isize, length: usize) -> PyResult<PyTensor> {
        let x = self.tensor();
        let d = resolve("narrow", dim, x.rank())?;
        let n = x.dims()[d] as isize;
        let s = if start < 0 { start + n } else { start };
        if s < 0 || s > n {
            return Err(PyIndexError::new_err(format!(
                "narrow: start {start} is out of range for dim {dim} of size {n}"
            )));
        }
        if s as usize + length > n as usize {
            return Err(PyValueError::new_err(format!(
                "narrow: start {start} + length {length} exceeds dim {dim} of size {n}"
            )));
        }
        wrap(x.narrow(d as isize, s as usize, length))
    }

    /// `split(split_size_or_sections, dim=0)`: a tuple of pieces along `dim`, each of
    /// `split_size` (the last may be smaller) or of the listed sizes.
    ///
    /// ```python
    /// >>> [p.shape for p in eingrad.zeros(5, 2).split(2)]
    /// [(2, 2), (2, 2), (1, 2)]
    /// ```
    #[pyo3(signature = (split_size_or_sections, dim=0))]
    fn split<'py>(
        &self,
        py: Python<'py>,
        split_size_or_sections: &Bound<'py, PyAny>,
        dim: isize,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let x = self.tensor();
        let d = resolve("split", dim, x.rank())?;
        let sizes = split_sizes(split_size_or_sections, x.dims()[d])?;
        let mut start = 0;
        let mut out = Vec::with_capacity(sizes.len());
        for s in sizes {
            out.push(x.narrow(d as isize, start, s).py_err()?);
            start += s;
        }
        tensor_tuple(py, out)
    }

    /// `chunk(chunks, dim=0)`: up to `chunks` pieces of equal size (the last smaller).
    ///
    /// ```python
    /// >>> [p.shape for p in eingrad.zeros(5).chunk(3)]
    /// [(2,), (2,), (1,)]
    /// ```
    #[pyo3(signature = (chunks, dim=0))]
    fn chunk<'py>(
        &self,
        py: Python<'py>,
        chunks: isize,
        dim: isize,
    ) -> PyResult<Bound<'py, PyTuple>> {
        if chunks <= 0 {
            return Err(PyValueError::new_err(format!(
                "chunk: chunks must be positive, got {chunks}"
            )));
        }
        let x = self.tensor();
        let d = resolve("chunk", dim, x.rank())?;
        let n = x.dims()[d];
        let size = n.div_ceil(chunks as usize).max(1);
        let mut out = Vec::new();
        let mut start = 0;
        while start < n || (n == 0 && out.is_empty()) {
            let len = size.min(n - start);
            out.push(x.narrow(d as isize, start, len).py_err()?);
            start += len.max(1);
        }
        tensor_tuple(py, out)
    }

    /// `unbind(dim=0)`: a tuple of the slices along `dim` (that dim removed).
    ///
    /// ```python
    /// >>> [t.tolist() for t in eingrad.tensor([[1.0, 2.0], [3.0, 4.0]]).unbind(1)]
    /// [[1.0, 3.0], [2.0, 4.0]]
    /// ```
    #[pyo3(signature = (dim=0))]
    fn unbind<'py>(&self, py: Python<'py>, dim: isize) -> PyResult<Bound<'py, PyTuple>> {
        let x = self.tensor();
        let d = resolve("unbind", dim, x.rank())?;
        let out = (0..x.dims()[d])
            .map(|i| {
                x.narrow(d as isize, i, 1)
                    .and_then(|s| s.squeeze(Some(d as isize)))
            })
            .collect::<eingrad::Result<Vec<_>>>()
            .py_err()?;
        tensor_tuple(py, out)
    }

    /// `diagonal(offset=0, dim1=0, dim2=1)`: the diagonal of dims `dim1`, `dim2` (above it
    /// for `offset` > 0), appended as the last dim.
    ///
    /// ```python
    /// >>> eingrad.arange(9).reshape(3, 3).diagonal()
    /// tensor([0., 4., 8.])
    /// ```
    #[pyo3(signature = (offset=0, dim1=0, dim2=1))]
    fn diagonal(&self, offset: isize, dim1: isize, dim2: isize) -> PyResult<PyTensor> {
        Ok(PyTensor::new(diagonal_impl(
            &self.tensor(),
            offset,
            dim1,
            dim2,
        )?))
    }

    /// `tril(diagonal=0)`: the lower triangle of the last two dims, zeros above (even
    /// where the tensor holds ±inf).
    ///
    /// ```python
    /// >>> eingrad.ones(2, 2).tril()
    /// tensor([[1., 0.],
    ///         [1., 1.]])
    /// ```
    #[pyo3(signature = (diagonal=0))]
    fn tril(&self, py: Python<'_>, diagonal: isize) -> PyResult<PyTensor> {
        let x = self.tensor();
        run(py, x.numel(), || x.tril(diagonal))
    }

    /// `triu(diagonal=0)`: the upper triangle of the last two dims.
    ///
    /// ```python
    /// >>> eingrad.ones(2, 2).triu(1)
    /// tensor([[0., 1.],
    ///         [0., 0.]])
    /// ```
    #[pyo3(signature = (diagonal=0))]
    fn triu(&self, py: Python<'_>, diagonal: isize) -> PyResult<PyTensor> {
        let x = self.tensor();
        run(py, x.numel(), || x.triu(diagonal))
    }

    /// `unfold(dimension, size, step)`: windows of `size` every `step` along `dimension`,
    /// the window as a new last dim (a view).
    ///
    /// ```python
    /// >>> eingrad.arange(5).unfold(0, 2, 1).shape
    /// (4, 2)
    /// ```
    fn unfold(&self, dimension: isize, size: usize, step: usize) -> PyResult<PyTensor> {
        wrap(self.tensor().unfold(dimension, size, step))
    }

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

/// `x` rolled by `shift` along `dim` (two narrows and a cat).
fn roll_dim(x: &Tensor, shift: isize, dim: usize) -> PyResult<Tensor> {
    let n = x.dims()[dim];
    if n == 0 {
        return Ok(x.clone());
    }
    let s = shift.rem_euclid(n as isize) as usize;
    if s == 0 {
        return Ok(x.clone());
    }
    let d = dim as isize;
    let tail = x.narrow(d, n - s, s).py_err()?;
    let head = x.narrow(d, 0, n - s).py_err()?;
    Tensor::cat(&[&tail, &head], d).py_err()
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

// ---- functions whose first argument is not the tensor -----------------------------------

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
fn einsum(
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

/// `cat(tensors, dim=0)`: tensors joined along `dim` (same shape elsewhere).
///
/// ```python
/// >>> eingrad.cat([eingrad.ones(2), eingrad.zeros(1)]).tolist()
/// [1.0, 1.0, 0.0]
/// ```
#[pyfunction]
#[pyo3(signature = (tensors, dim=0))]
fn cat(py: Python<'_>, tensors: &Bound<'_, PyAny>, dim: isize) -> PyResult<PyTensor> {
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
fn concat(py: Python<'_>, tensors: &Bound<'_, PyAny>, dim: isize) -> PyResult<PyTensor> {
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
fn concatenate(py: Python<'_>, tensors: &Bound<'_, PyAny>, dim: isize) -> PyResult<PyTensor> {
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
fn stack(py: Python<'_>, tensors: &Bound<'_, PyAny>, dim: isize) -> PyResult<PyTensor> {
    let ts = tensor_seq(tensors, "stack")?;
    let refs: Vec<&Tensor> = ts.iter().collect();
    let numel = ts.iter().map(|t| t.numel()).sum();
    run(py, numel, || Tensor::stack(&refs, dim))
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
fn where_fn(
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

/// `pad(input, pad, mode='constant', value=None)` as `torch.nn.functional.pad`: `pad`
/// holds (before, after) pairs from the last dim backwards; negative amounts crop; `mode`
/// 'constant' (with `value`, 0 by default), 'reflect', 'replicate' or 'circular'.
///
/// ```python
/// >>> eingrad.pad(eingrad.ones(1, 2), (1, 0))
/// tensor([[0., 1., 1.]])
/// ```
#[pyfunction]
#[pyo3(signature = (input, pad, mode="constant", value=None))]
fn pad(
    py: Python<'_>,
    input: &PyTensor,
    pad: &Bound<'_, PyAny>,
    mode: &str,
    value: Option<f64>,
) -> PyResult<PyTensor> {
    let x = input.tensor();
    let p = dims_arg(pad, "pad(pad)")?;
    if mode != "constant" && value.is_some_and(|v| v != 0.0) {
        return Err(PyValueError::new_err(format!(
            "pad: `value` is only for mode 'constant', not {mode:?}"
        )));
    }
    let v = value.unwrap_or(0.0);
    let out = maybe_detach(py, x.numel(), || pad_impl(&x, &p, mode, v))?;
    Ok(PyTensor::new(out))
}

/// `conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1)` as
/// `torch.nn.functional.conv1d`: input `(batch, c_in, length)`, weight
/// `(c_out, c_in / groups, k)`; `padding` an int, 'valid' or 'same'.
///
/// ```python
/// >>> x = eingrad.tensor([[[1.0, 2.0, 3.0, 4.0]]]); w = eingrad.tensor([[[1.0, -1.0]]])
/// >>> eingrad.conv1d(x, w)
/// tensor([[[-1., -1., -1.]]])
/// ```
#[pyfunction]
#[pyo3(signature = (input, weight, bias=None, stride=None, padding=None, dilation=None, groups=1))]
#[allow(clippy::too_many_arguments)]
fn conv1d(
    py: Python<'_>,
    input: &PyTensor,
    weight: &PyTensor,
    bias: Option<&PyTensor>,
    stride: Option<&Bound<'_, PyAny>>,
    padding: Option<&Bound<'_, PyAny>>,
    dilation: Option<&Bound<'_, PyAny>>,
    groups: isize,
) -> PyResult<PyTensor> {
    let (x, w) = (input.tensor(), weight.tensor());
    let stride = stride
        .map(|s| one_int(s, "conv1d", "stride"))
        .transpose()?
        .unwrap_or(1);
    let dilation = dilation
        .map(|s| one_int(s, "conv1d", "dilation"))
        .transpose()?
        .unwrap_or(1);
    if groups < 1 {
        return Err(PyValueError::new_err(format!(
            "conv1d: groups must be at least 1, got {groups}"
        )));
    }
    let k = if w.rank() == 3 { w.dims()[2] } else { 0 };
    let padding = match padding {
        Some(p) => conv_padding(p, k, dilation, stride)?,
        None => Padding::Symmetric(0),
    };
    let opts = Conv1dOptions::default()
        .stride(stride)
        .padding(padding)
        .dilation(dilation)
        .groups(groups as usize);
    let b = bias.map(|b| b.tensor());
    run(py, x.numel().max(w.numel()), || {
        x.conv1d(&w, b.as_ref(), opts)
    })
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
fn one_hot(
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
        wrap_pyfunction!(einsum, m)?,
        wrap_pyfunction!(cat, m)?,
        wrap_pyfunction!(concat, m)?,
        wrap_pyfunction!(concatenate, m)?,
        wrap_pyfunction!(stack, m)?,
        wrap_pyfunction!(where_fn, m)?,
        wrap_pyfunction!(pad, m)?,
        wrap_pyfunction!(conv1d, m)?,
        wrap_pyfunction!(one_hot, m)?,
    ] {
        m.add_function(f)?;
    }
    let cls = m.py().get_type::<PyTensor>();
    // (`contiguous` is a method only, as in PyTorch.)
    for name in UNARY_NAMES
        .iter()
        .chain(FUNCTION_METHODS)
        .filter(|n| **n != "contiguous")
    {
        // The method descriptor itself: `eingrad.exp(x)` calls `Tensor.exp(x)`.
        m.add(*name, cls.getattr(*name)?)?;
    }
    Ok(())
}
