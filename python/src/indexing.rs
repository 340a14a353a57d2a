//! Indexing and in-place writes: `t[key]`, `t[key] = value`, iteration over dim 0, and the
//! in-place methods (`fill_`, `zero_`, `masked_fill_`, `add_`, `+=`, ...).
//!
//! Reading: a key is an int (negative counts from the end), a slice (any step; a negative
//! step reads a flipped view), `None`, `...`, a mask (an eingrad tensor of 0/1 values whose
//! shape matches the dims it indexes, as comparisons give, or a NumPy bool array) or integer
//! indices (a list, a NumPy int array, an eingrad tensor of whole numbers that is not such a
//! mask), at most one of the last two kinds per key. Every read is differentiable: views
//! (narrow, slice, flip, reshape) for the basic keys, `index_select` for masks and integers.
//!
//! Writing follows PyTorch: on a leaf that requires grad it is an error (outside `no_grad`);
//! on a tensor with history, or with a value that requires grad, the write is the equivalent
//! out-of-place op (`where` over the written positions, the value scattered with
//! `index_add`), and the Python object is rebound to its result, so gradients flow as in
//! PyTorch (zero through overwritten entries, into the value); on a plain tensor the data is
//! written in place.

use crate::convert::short_repr;
use crate::errors::IntoPy;
use crate::ops::{check_indices, int_index, mask_arg, tensor_arg, try_vec, values_f64};
use crate::tensor::{maybe_detach, PyTensor};
use eingrad::{DType, Tensor};
use pyo3::exceptions::{PyIndexError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyEllipsis, PyInt, PyList, PySlice, PyTuple};

/// One entry of an indexing key.
enum Item {
    /// An int (negative counts from the end).
    Int(i64),
    /// A slice's `(start, stop, step)` as Python gives them (`None` → default).
    Slice(Option<i64>, Option<i64>, Option<i64>),
    /// `None`: a new size-1 dim.
    NewAxis,
    /// `...`: as many full slices as needed.
    Ellipsis,
    /// A mask over the next `shape.len()` dims: the positions (row-major within those dims)
    /// where it is nonzero, and its shape.
    Mask(Vec<usize>, Vec<usize>),
    /// Integer indices into the next dim, with their shape.
    Ints(Vec<i64>, Vec<usize>),
}

impl Item {
    /// How many dims of the indexed tensor this item consumes.
    fn consumes(&self) -> usize {
        match self {
            Item::Int(_) | Item::Slice(..) | Item::Ints(..) => 1,
            Item::Mask(_, s) => s.len(),
            Item::NewAxis | Item::Ellipsis => 0,
        }
    }
}

/// The positions where `values` (row-major) are nonzero, or `None` when some value is not
/// 0 or 1 (then the tensor is read as integer indices, not as a mask).
fn mask_positions(values: &[f64]) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for (i, &v) in values.iter().enumerate() {
        if v == 1.0 {
            out.push(i);
        } else if v != 0.0 {
            return None;
        }
    }
    Some(out)
}

/// Parses one key entry; `dims` are the sizes of the dims it would index (from the current
/// position), used to tell a mask tensor from integer indices.
fn parse_item(obj: &Bound<'_, PyAny>, dims: &[usize]) -> PyResult<Item> {
    if obj.is_none() {
        return Ok(Item::NewAxis);
    }
    if obj.is_instance_of::<PyEllipsis>() {
        return Ok(Item::Ellipsis);
    }
    if let Ok(s) = obj.cast::<PySlice>() {
        let get = |name: &str| -> PyResult<Option<i64>> {
            let v = s.getattr(name)?;
            if v.is_none() {
                return Ok(None);
            }
            let i = slice_bound(&v, name)?;
            Ok(Some(i))
        };
        return Ok(Item::Slice(get("start")?, get("stop")?, get("step")?));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(Item::Int(obj.extract()?));
    }
    if let Ok(t) = obj.cast::<PyTensor>() {
        let t = t.get().tensor();
        if t.rank() == 0 {
            return Ok(Item::Int(whole(t.item().py_err()?)?));
        }
        let vals = values_f64(&t)?;
        if t.dims().len() <= dims.len() && t.dims() == &dims[..t.rank()] {
            if let Some(p) = mask_positions(&vals) {
                return Ok(Item::Mask(p, t.dims().to_vec()));
            }
        }
        let ints = vals.into_iter().map(whole).collect::<PyResult<Vec<_>>>()?;
        return Ok(Item::Ints(ints, t.dims().to_vec()));
    }
    if obj.is_instance_of::<PyTuple>() {
        return Err(PyIndexError::new_err(format!(
            "a tuple inside an index is not supported, got {}",
            short_repr(obj)
        )));
    }
    // A NumPy integer scalar or anything with __index__.
    if !obj.hasattr("__len__")? {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Item::Int(i));
        }
    }
    if obj.is_instance_of::<PyList>() || obj.hasattr("__array__")? {
        let np = obj.py().import("numpy")?;
        let arr = np.call_method1("asarray", (obj,))?;
        let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
        if kind == "b" {
            let shape: Vec<usize> = arr.getattr("shape")?.extract()?;
            if shape.len() > dims.len() || shape != dims[..shape.len()] {
                return Err(PyIndexError::new_err(format!(
                    "the boolean mask of shape {shape:?} does not match the indexed dims {:?}",
                    &dims[..shape.len().min(dims.len())]
                )));
            }
            let flags: Vec<bool> = arr
                .call_method0("ravel")?
                .call_method0("tolist")?
                .extract()?;
            let p = flags
                .iter()
                .enumerate()
                .filter(|(_, &b)| b)
                .map(|(i, _)| i)
                .collect();
            return Ok(Item::Mask(p, shape));
        }
        let (v, s) = int_index(obj, "index")?;
        return Ok(Item::Ints(v, s));
    }
    Err(PyTypeError::new_err(format!(
        "tensor indices must be ints, slices, None, ..., masks or integer lists, got {}",
        short_repr(obj)
    )))
}

/// A slice bound (an int, or a 0-d tensor holding a whole number).
fn slice_bound(v: &Bound<'_, PyAny>, name: &str) -> PyResult<i64> {
    if let Ok(t) = v.cast::<PyTensor>() {
        return whole(t.get().tensor().item().py_err()?);
    }
    v.extract::<i64>().map_err(|_| {
        PyTypeError::new_err(format!(
            "slice {name} must be an int or None, got {}",
            short_repr(v)
        ))
    })
}

/// A whole number as an index.
fn whole(v: f64) -> PyResult<i64> {
    if v.fract() != 0.0 || !v.is_finite() {
        return Err(PyIndexError::new_err(format!(
            "an index tensor must hold whole numbers, got {v}"
        )));
    }
    Ok(v as i64)
}

/// The entries of `key`, with `...` expanded, checked against the tensor's rank.
fn parse_key(key: &Bound<'_, PyAny>, shape: &[usize]) -> PyResult<Vec<Item>> {
    let raw: Vec<Bound<'_, PyAny>> = match key.cast::<PyTuple>() {
        Ok(t) => t.iter().collect(),
        Err(_) => vec![key.clone()],
    };
    // Parse in order, tracking which dim each entry starts at (before `...` is expanded, an
    // entry after it cannot know its dim: those are re-parsed from the end).
    let mut items = Vec::with_capacity(raw.len());
    let mut pos = 0usize;
    let ellipsis_at = raw.iter().position(|o| o.is_instance_of::<PyEllipsis>());
    if raw
        .iter()
        .filter(|o| o.is_instance_of::<PyEllipsis>())
        .count()
        > 1
    {
        return Err(PyIndexError::new_err(
            "an index can only have a single ellipsis ('...')",
        ));
    }
    let head = ellipsis_at.unwrap_or(raw.len());
    for o in &raw[..head] {
        let it = parse_item(o, shape.get(pos..).unwrap_or(&[]))?;
        pos += it.consumes();
        items.push(it);
    }
    if let Some(e) = ellipsis_at {
        // Entries after `...` index the last dims: parse them from the end.
        let mut tail = Vec::new();
        let mut end = shape.len();
        for o in raw[e + 1..].iter().rev() {
            // A mask's extent is known only from its own shape: try each start.
            let it = parse_tail_item(o, shape, end)?;
            end = end.saturating_sub(it.consumes());
            tail.push(it);
        }
        tail.reverse();
        let used: usize = items.iter().chain(&tail).map(Item::consumes).sum();
        if used > shape.len() {
            return Err(too_many(shape.len(), used));
        }
        items.push(Item::Ellipsis);
        items.extend(tail);
    }
    let used: usize = items.iter().map(Item::consumes).sum();
    if used > shape.len() {
        return Err(too_many(shape.len(), used));
    }
    let advanced = items
        .iter()
        .filter(|i| matches!(i, Item::Mask(..) | Item::Ints(..)))
        .count();
    if advanced > 1 {
        return Err(PyIndexError::new_err(
            "at most one mask or integer-list index per key is supported (index in two steps)",
        ));
    }
    Ok(items)
}

/// Parses an entry after `...` whose dims end at `end`.
fn parse_tail_item(o: &Bound<'_, PyAny>, shape: &[usize], end: usize) -> PyResult<Item> {
    if let Ok(t) = o.cast::<PyTensor>() {
        let r = t.get().tensor().rank();
        if r >= 1 && r <= end {
            return parse_item(o, &shape[end - r..end]);
        }
    }
    let start = end.saturating_sub(1);
    parse_item(o, shape.get(start..end).unwrap_or(&[]))
}

fn too_many(rank: usize, used: usize) -> PyErr {
    PyIndexError::new_err(format!(
        "too many indices for a tensor of dimension {rank} ({used} given)"
    ))
}

/// `x[key]` for parsed items (differentiable).
fn index(x: &Tensor, items: &[Item]) -> PyResult<Tensor> {
    let used: usize = items.iter().map(Item::consumes).sum();
    let mut t = x.clone();
    let mut d = 0usize; // the dim of `t` the next item indexes
    let mut src_dim = 0usize; // the dim of `x` it comes from (for messages)
    for it in items {
        match it {
            Item::NewAxis => {
                t = t.unsqueeze(d as isize).py_err()?;
                d += 1;
            }
            Item::Ellipsis => {
                let n = x.rank() - used;
                d += n;
                src_dim += n;
            }
            Item::Int(i) => {
                let size = t.dims()[d];
                let j = check_indices("index", &[*i], src_dim, size, true)?[0];
                let mut shape = t.dims().to_vec();
                shape.remove(d);
                t = t
                    .narrow(d as isize, j, 1)
                    .and_then(|s| s.reshape(&shape))
                    .py_err()?;
                src_dim += 1;
            }
            Item::Slice(start, stop, step) => {
                let n = t.dims()[d] as i64;
                let step = step.unwrap_or(1);
                if step == 0 {
                    return Err(PyValueError::new_err("slice step cannot be zero"));
                }
                let (a, b) = slice_range(*start, *stop, step, n);
                t = if step > 0 {
                    let b = b.max(a);
                    t.slice(d as isize, a as usize, b as usize, step as usize)
                } else {
                    // Elements a, a+step, ... > b: the same walk forwards on the flipped dim.
                    let (fa, fb) = (n - 1 - a, n - 1 - b);
                    let fb = fb.max(fa);
                    t.flip(&[d as isize]).and_then(|f| {
                        f.slice(d as isize, fa as usize, fb as usize, (-step) as usize)
                    })
                }
                .py_err()?;
                d += 1;
                src_dim += 1;
            }
            Item::Mask(pos, mshape) => {
                let k = mshape.len();
                let dims = t.dims();
                let mut shape: Vec<usize> = dims[..d].to_vec();
                shape.push(mshape.iter().product());
                shape.extend_from_slice(&dims[d + k..]);
                t = t
                    .reshape(&shape)
                    .and_then(|r| r.index_select(d as isize, pos))
                    .py_err()?;
                d += 1;
                src_dim += k;
            }
            Item::Ints(vals, ishape) => {
                let size = t.dims()[d];
                let ix = check_indices("index", vals, src_dim, size, true)?;
                let dims = t.dims();
                let mut shape: Vec<usize> = dims[..d].to_vec();
                shape.extend_from_slice(ishape);
                shape.extend_from_slice(&dims[d + 1..]);
                t = t
                    .index_select(d as isize, &ix)
                    .and_then(|r| r.reshape(&shape))
                    .py_err()?;
                d += ishape.len();
                src_dim += 1;
            }
        }
    }
    Ok(t)
}

/// Python's `slice.indices`: the clamped `(start, stop)` for `step` over `n` elements.
fn slice_range(start: Option<i64>, stop: Option<i64>, step: i64, n: i64) -> (i64, i64) {
    let norm = |v: i64, lo: i64, hi: i64| {
        let v = if v < 0 { v + n } else { v };
        v.clamp(lo, hi)
    };
    if step > 0 {
        (
            start.map_or(0, |s| norm(s, 0, n)),
            stop.map_or(n, |s| norm(s, 0, n)),
        )
    } else {
        (
            start.map_or(n - 1, |s| norm(s, -1, n - 1)),
            stop.map_or(-1, |s| norm(s, -1, n - 1)),
        )
    }
}

/// The row-major positions in `x` that `x[key]` reads, in the order of the result's
/// elements (from an `arange` indexed the same way, so every key kind is covered).
fn positions(x: &Tensor, items: &[Item]) -> PyResult<(Vec<usize>, Vec<usize>)> {
    let n = x.numel();
    // The storage offsets of a basic view of a dense tensor are the positions.
    if x.is_contiguous()
        && x.layout().offset() == 0
        && items
            .iter()
            .all(|i| !matches!(i, Item::Mask(..) | Item::Ints(..)))
    {
        let v = index(&x.detach(), items)?;
        if v.shares_storage_with(x) {
            return Ok((view_offsets(&v), v.dims().to_vec()));
        }
    }
    let ar = Tensor::arange(0.0, n as f64, 1.0, DType::F64)
        .and_then(|a| a.reshape(x.dims()))
        .py_err()?;
    let sel = index(&ar, items)?;
    let pos = values_f64(&sel)?.into_iter().map(|p| p as usize).collect();
    Ok((pos, sel.dims().to_vec()))
}

/// The storage offsets of `v`'s elements in row-major order.
fn view_offsets(v: &Tensor) -> Vec<usize> {
    let l = v.layout();
    let (shape, strides) = (l.shape(), l.strides());
    let mut out = Vec::new();
    if v.numel() == 0 {
        return out;
    }
    let mut idx = vec![0usize; shape.len()];
    let mut off = l.offset() as isize;
    loop {
        out.push(off as usize);
        // Odometer increment.
        let mut k = shape.len();
        loop {
            if k == 0 {
                return out;
            }
            k -= 1;
            idx[k] += 1;
            off += strides[k];
            if idx[k] < shape[k] {
                break;
            }
            off -= strides[k] * shape[k] as isize;
            idx[k] = 0;
        }
    }
}

/// `value` broadcast to `shape` and flattened (a tensor in `like`'s dtype).
fn value_for(value: &Tensor, shape: &[usize]) -> PyResult<Tensor> {
    let mut v = value.clone();
    // Leading size-1 dims beyond the target's rank are dropped, as in PyTorch.
    while v.rank() > shape.len() && v.dims()[0] == 1 {
        v = v.squeeze(Some(0)).py_err()?;
    }
    let b = v.broadcast_to(shape).map_err(|_| {
        PyValueError::new_err(format!(
            "cannot assign a value of shape {:?} to an indexed region of shape {shape:?}",
            value.dims()
        ))
    })?;
    b.reshape(&[b.numel()]).py_err()
}

/// Whether `t`'s Python object may be written: an error for a leaf that requires grad while
/// gradients are recorded (PyTorch's rule).
fn check_writable(t: &Tensor, op: &str) -> PyResult<()> {
    if t.requires_grad() && t.is_leaf() && eingrad::autograd::is_grad_enabled() {
        return Err(PyRuntimeError::new_err(format!(
            "{op}: a leaf Variable that requires grad is being used in an in-place operation \
             (write under eingrad.no_grad(), or on a clone)"
        )));
    }
    Ok(())
}

/// Whether a write into `t` with `value` must be recorded (out of place, then rebound).
fn recorded(t: &Tensor, value: Option<&Tensor>) -> bool {
    eingrad::autograd::is_grad_enabled()
        && (t.requires_grad() || value.is_some_and(|v| v.requires_grad()))
}

/// Replaces `slf`'s values by `new`'s (same shape), by PyTorch's in-place rules.
fn assign(slf: &PyTensor, new: Tensor, op: &str) -> PyResult<()> {
    let t = slf.tensor();
    check_writable(&t, op)?;
    if new.dims() != t.dims() {
        return Err(PyValueError::new_err(format!(
            "{op}: the result of shape {:?} does not fit the tensor's shape {:?} in place",
            new.dims(),
            t.dims()
        )));
    }
    let new = if new.dtype() != t.dtype() {
        new.to_dtype(t.dtype()).py_err()?
    } else {
        new
    };
    if recorded(&t, Some(&new)) {
        slf.set_tensor(new);
        return Ok(());
    }
    write_plain(slf, &t, &new.detach())
}

/// Writes `new`'s values into `t` (no autograd record): in its storage when it is dense
/// and starts at offset 0, else by rebinding `slf` (a leaf keeps `requires_grad`).
fn write_plain(slf: &PyTensor, t: &Tensor, new: &Tensor) -> PyResult<()> {
    if t.is_contiguous() && t.layout().offset() == 0 {
        return t.copy_from(new).py_err();
    }
    let fresh = new.contiguous().py_err()?;
    let fresh = if fresh.shares_storage_with(new) {
        fresh.mul_scalar(1.0).py_err()?.detach()
    } else {
        fresh.detach()
    };
    slf.set_tensor(fresh.requires_grad_(t.requires_grad()));
    Ok(())
}

/// `t[key] = value` by the in-place rules.
fn set_item(slf: &PyTensor, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
    let t = slf.tensor();
    check_writable(&t, "__setitem__")?;
    let items = parse_key(key, t.dims())?;
    let val = tensor_arg(value, &t, "__setitem__", "value")?;
    let (pos, shape) = positions(&t, &items)?;
    let v = value_for(&val, &shape)?;
    let n = t.numel();
    let (written, from) = if items.iter().any(|i| matches!(i, Item::Ints(..))) {
        // Integer lists may repeat a position: the last write wins.
        let mut last = try_vec(n, usize::MAX, "__setitem__")?;
        for (j, &p) in pos.iter().enumerate() {
            last[p] = j;
        }
        let written: Vec<usize> = (0..n).filter(|&p| last[p] != usize::MAX).collect();
        let from: Vec<usize> = written.iter().map(|&p| last[p]).collect();
        (written, from)
    } else {
        // Every other key reads each position once.
        let from = (0..pos.len()).collect();
        (pos, from)
    };
    if recorded(&t, Some(&val)) {
        // Out of place: where(written, scattered value, t), differentiable in both.
        let mut m = try_vec(n, 0.0, "__setitem__")?;
        for &p in &written {
            m[p] = 1.0;
        }
        let mask = Tensor::from_f64s(&m, t.dims(), t.dtype()).py_err()?;
        let scattered = v
            .index_select(0, &from)
            .and_then(|s| Tensor::zeros(&[n], t.dtype())?.index_add(0, &written, &s))
            .and_then(|s| s.reshape(t.dims()))
            .py_err()?;
        let out = Tensor::where_(&mask, &scattered, &t).py_err()?;
        slf.set_tensor(out);
        return Ok(());
    }
    let vals = values_f64(&v)?;
    if t.is_contiguous() && t.layout().offset() == 0 {
        // In place, touching only the written positions.
        let r = match t.dtype() {
            DType::F32 => t.update_data::<f32>(|d| {
                for (&p, &j) in written.iter().zip(&from) {
                    d[p] = vals[j] as f32;
                }
            }),
            DType::F64 => t.update_data::<f64>(|d| {
                for (&p, &j) in written.iter().zip(&from) {
                    d[p] = vals[j];
                }
            }),
        };
        return r.py_err();
    }
    let mut data = values_f64(&t)?;
    for (&p, &j) in written.iter().zip(&from) {
        data[p] = vals[j];
    }
    let fresh = Tensor::from_f64s(&data, t.dims(), t.dtype()).py_err()?;
    slf.set_tensor(fresh.requires_grad_(t.requires_grad()));
    Ok(())
}

/// `t op= other` (in place by PyTorch's rules); the result must keep `t`'s shape.
fn inplace_binary(
    py: Python<'_>,
    slf: &PyTensor,
    other: &Bound<'_, PyAny>,
    op: &str,
    f: fn(&Tensor, &Tensor) -> eingrad::Result<Tensor>,
) -> PyResult<()> {
    let t = slf.tensor();
    check_writable(&t, op)?;
    let o = tensor_arg(other, &t, op, "other")?;
    let new = maybe_detach(py, t.numel(), || f(&t, &o)).py_err()?;
    if new.dims() != t.dims() {
        return Err(PyValueError::new_err(format!(
            "{op}: the result's shape {:?} (broadcast with {:?}) does not match the tensor's shape {:?}",
            new.dims(),
            o.dims(),
            t.dims()
        )));
    }
    assign(slf, new, op)
}

#[pymethods]
impl PyTensor {
    /// `t[key]`: ints, slices (any step), `None`, `...`, a mask (a 0/1 tensor as comparisons
    /// give, or a NumPy bool array) or integer indices (a list, a NumPy int array, a tensor of
    /// whole numbers); differentiable.
    ///
    /// ```python
    /// >>> x = eingrad.arange(6).reshape(2, 3)
    /// >>> x[1, ::-1], x[x > 3]
    /// (tensor([5., 4., 3.]), tensor([4., 5.]))
    /// ```
    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let t = self.tensor();
        let items = parse_key(key, t.dims())?;
        let out = maybe_detach(py, t.numel(), || index(&t, &items))?;
        Ok(PyTensor::new(out))
    }

    /// `t[key] = value` (a number or a tensor broadcast to the indexed region). In place on a
    /// plain tensor; on a tensor with history it records the write (gradients flow as in
    /// PyTorch); on a leaf that requires grad it raises `RuntimeError`.
    ///
    /// ```python
    /// >>> z = eingrad.zeros(2, 3); z[:, 1] = 1.; z
    /// tensor([[0., 1., 0.],
    ///         [0., 1., 0.]])
    /// ```
    fn __setitem__(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        set_item(self, key, value)
    }

    /// Iterates over dim 0 (`for row in t`).
    ///
    /// ```python
    /// >>> [r.tolist() for r in eingrad.ones(2, 2)]
    /// [[1.0, 1.0], [1.0, 1.0]]
    /// ```
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let t = self.tensor();
        if t.rank() == 0 {
            return Err(PyTypeError::new_err("iteration over a 0-d tensor"));
        }
        let mut shape = t.dims().to_vec();
        shape.remove(0);
        let rows: Vec<PyTensor> = (0..t.dims()[0])
            .map(|i| {
                t.narrow(0, i, 1)
                    .and_then(|r| r.reshape(&shape))
                    .map(PyTensor::new)
            })
            .collect::<eingrad::Result<_>>()
            .py_err()?;
        PyList::new(py, rows)?
            .as_any()
            .try_iter()
            .map(|i| i.into_any())
    }

    /// `t += other`, in place.
    fn __iadd__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<()> {
        inplace_binary(py, self, other, "__iadd__", Tensor::add)
    }
    /// `t -= other`, in place.
    fn __isub__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<()> {
        inplace_binary(py, self, other, "__isub__", Tensor::sub)
    }
    /// `t *= other`, in place.
    fn __imul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<()> {
        inplace_binary(py, self, other, "__imul__", Tensor::mul)
    }
    /// `t /= other`, in place.
    fn __itruediv__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<()> {
        inplace_binary(py, self, other, "__itruediv__", Tensor::div)
    }

    /// `add_(other, alpha=1)`: `self += alpha·other` in place; returns self.
    ///
    /// ```python
    /// >>> x = eingrad.ones(2); x.add_(1.0)
    /// tensor([2., 2.])
    /// ```
    #[pyo3(signature = (other, alpha=1.0))]
    fn add_<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
        alpha: f64,
    ) -> PyResult<Bound<'py, Self>> {
        let me = slf.get();
        let o = tensor_arg(other, &me.tensor(), "add_", "other")?;
        let o = if alpha == 1.0 {
            o
        } else {
            o.mul_scalar(alpha).py_err()?
        };
        inplace_binary(
            py,
            me,
            &Bound::new(py, PyTensor::new(o))?.into_any(),
            "add_",
            Tensor::add,
        )?;
        Ok(slf.clone())
    }

    /// `sub_(other, alpha=1)`: `self -= alpha·other` in place; returns self.
    ///
    /// ```python
    /// >>> x = eingrad.ones(2); x.sub_(1.0)
    /// tensor([0., 0.])
    /// ```
    #[pyo3(signature = (other, alpha=1.0))]
    fn sub_<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
        alpha: f64,
    ) -> PyResult<Bound<'py, Self>> {
        let me = slf.get();
        let o = tensor_arg(other, &me.tensor(), "sub_", "other")?;
        let o = if alpha == 1.0 {
            o
        } else {
            o.mul_scalar(alpha).py_err()?
        };
        inplace_binary(
            py,
            me,
            &Bound::new(py, PyTensor::new(o))?.into_any(),
            "sub_",
            Tensor::sub,
        )?;
        Ok(slf.clone())
    }

    /// `mul_(other)`: `self *= other` in place; returns self.
    ///
    /// ```python
    /// >>> x = eingrad.ones(2); x.mul_(3.0)
    /// tensor([3., 3.])
    /// ```
    fn mul_<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Self>> {
        inplace_binary(py, slf.get(), other, "mul_", Tensor::mul)?;
        Ok(slf.clone())
    }

    /// `div_(other)`: `self /= other` in place; returns self.
    ///
    /// ```python
    /// >>> x = eingrad.ones(2); x.div_(4.0)
    /// tensor([0.2500, 0.2500])
    /// ```
    fn div_<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Self>> {
        inplace_binary(py, slf.get(), other, "div_", Tensor::div)?;
        Ok(slf.clone())
    }

    /// `fill_(value)`: every element set to `value` in place; returns self.
    ///
    /// ```python
    /// >>> eingrad.zeros(2).fill_(1)
    /// tensor([1., 1.])
    /// ```
    fn fill_<'py>(slf: &Bound<'py, Self>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let me = slf.get();
        let t = me.tensor();
        let v = tensor_arg(value, &t, "fill_", "value")?;
        if v.numel() != 1 {
            return Err(PyValueError::new_err(format!(
                "fill_: `value` must be a number or a one-element tensor, got shape {:?}",
                v.dims()
            )));
        }
        let v = v.reshape(&[]).py_err()?;
        let new = if v.requires_grad() {
            v.broadcast_to(t.dims())
                .and_then(|b| b.mul_scalar(1.0))
                .py_err()?
        } else {
            Tensor::full(t.dims(), v.item().py_err()?, t.dtype()).py_err()?
        };
        assign(me, new, "fill_")?;
        Ok(slf.clone())
    }

    /// `zero_()`: every element set to 0 in place; returns self.
    ///
    /// ```python
    /// >>> eingrad.ones(2).zero_()
    /// tensor([0., 0.])
    /// ```
    fn zero_<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        let me = slf.get();
        let t = me.tensor();
        assign(me, Tensor::zeros(t.dims(), t.dtype()).py_err()?, "zero_")?;
        Ok(slf.clone())
    }

    /// `masked_fill_(mask, value)`: `value` where `mask` is nonzero, in place; returns self.
    ///
    /// ```python
    /// >>> x = eingrad.tensor([1.0, -1.0]); x.masked_fill_(x < 0, 0.0)
    /// tensor([1., 0.])
    /// ```
    fn masked_fill_<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
        mask: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Self>> {
        let me = slf.get();
        let t = me.tensor();
        check_writable(&t, "masked_fill_")?;
        let m = mask_arg(mask, &t, "masked_fill_", "mask")?;
        let new = if let Ok(v) = value.cast::<PyTensor>() {
            let v = v.get().tensor();
            if v.numel() != 1 {
                return Err(PyValueError::new_err(format!(
                    "masked_fill_: `value` must be a number or a one-element tensor, got shape {:?}",
                    v.dims()
                )));
            }
            let v = v
                .reshape(&[])
                .and_then(|v| v.to_dtype(t.dtype()))
                .py_err()?;
            maybe_detach(py, t.numel(), || Tensor::where_(&m, &v, &t)).py_err()?
        } else {
            let v: f64 = value.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "masked_fill_: `value` must be a number, got {}",
                    short_repr(value)
                ))
            })?;
            maybe_detach(py, t.numel(), || t.masked_fill(&m, v)).py_err()?
        };
        assign(me, new, "masked_fill_")?;
        Ok(slf.clone())
    }

    /// `clamp_(min=None, max=None)`: `clamp` in place; returns self.
    ///
    /// ```python
    /// >>> eingrad.tensor([-1.0, 2.0]).clamp_(min=0)
    /// tensor([0., 2.])
    /// ```
    #[pyo3(signature = (min=None, max=None))]
    fn clamp_<'py>(
        slf: &Bound<'py, Self>,
        min: Option<f64>,
        max: Option<f64>,
    ) -> PyResult<Bound<'py, Self>> {
        let me = slf.get();
        let t = me.tensor();
        assign(me, t.clamp(min, max).py_err()?, "clamp_")?;
        Ok(slf.clone())
    }

    /// `copy_(src)`: `src`'s values (broadcast to this shape, converted to this dtype)
    /// copied in; returns self.
    ///
    /// ```python
    /// >>> eingrad.zeros(2).copy_(eingrad.tensor([1.0, 2.0]))
    /// tensor([1., 2.])
    /// ```
    fn copy_<'py>(slf: &Bound<'py, Self>, src: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let me = slf.get();
        let t = me.tensor();
        let s = tensor_arg(src, &t, "copy_", "src")?;
        let new = s
            .broadcast_to(t.dims())
            .map_err(|_| {
                PyValueError::new_err(format!(
                    "copy_: src of shape {:?} does not broadcast to the tensor's shape {:?}",
                    s.dims(),
                    t.dims()
                ))
            })?
            .mul_scalar(1.0)
            .py_err()?;
        assign(me, new, "copy_")?;
        Ok(slf.clone())
    }

    /// `resize_(*sizes)`: this tensor given a new shape in place, keeping the first elements
    /// (new ones are zeros). Only for a tensor that is not part of a graph.
    ///
    /// ```python
    /// >>> eingrad.ones(2).resize_(2, 2)
    /// tensor([[1., 1.],
    ///         [0., 0.]])
    /// ```
    #[pyo3(signature = (*sizes))]
    fn resize_<'py>(
        slf: &Bound<'py, Self>,
        sizes: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, Self>> {
        let me = slf.get();
        let t = me.tensor();
        if t.requires_grad() {
            return Err(PyRuntimeError::new_err(
                "resize_: cannot resize a tensor that requires grad",
            ));
        }
        let shape = crate::convert::shape_args(sizes, "resize_(sizes)")?;
        let n = shape
            .iter()
            .try_fold(1usize, |a, &b| a.checked_mul(b))
            .ok_or_else(|| PyValueError::new_err(format!("resize_: {shape:?} is too large")))?;
        let mut data = values_f64(&t)?;
        data.truncate(n);
        data.try_reserve_exact(n - data.len())
            .map_err(|_| PyValueError::new_err(format!("resize_: cannot allocate {shape:?}")))?;
        data.resize(n, 0.0);
        me.set_tensor(Tensor::from_f64s(&data, &shape, t.dtype()).py_err()?);
        Ok(slf.clone())
    }
}

pub(crate) fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
