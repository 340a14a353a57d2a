//! Shape ops: `reshape`/`view`, `permute`/`transpose`/`movedim`, `.T`/`.mT`,
//! `unsqueeze`/`squeeze`, `expand`/`broadcast_to`/`repeat`, `flatten`/`unflatten`, `flip`,
//! `roll`, `narrow`, `split`/`chunk`/`unbind`, `diagonal`, `tril`/`triu` and `unfold`.

use super::{resolve, run};
use crate::convert::dims_arg;
use crate::errors::IntoPy;
use crate::tensor::{wrap, PyTensor};
use eingrad::Tensor;
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyTuple};

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

#[pymethods]
impl PyTensor {
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
