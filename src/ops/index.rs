//! Joining, padding and indexing ops: `cat`, `stack`, `pad`, `index_select`, `index_add`,
//! `gather`, `scatter_add`, `repeat`, `tril`/`triu` and `one_hot`.
//!
//! Each op's backward and forward-mode (JVP) rules sit right after its forward and are
//! written with public tensor ops, so gradients built with `create_graph` are
//! differentiable again. Every op here is linear in its tensor inputs, so its JVP is the op
//! itself applied to the tangents (zeros for an input without one). The adjoint pairs
//! are: `cat` ↔ `narrow`, `pad` ↔ `narrow`, `index_select` ↔ `index_add`, `gather` ↔
//! `scatter_add`. Index arguments (`&[usize]`, [`Indices`]) have no gradient.

use super::shape::batched_dims;
use crate::autograd::{record1, Rule};
use crate::dtype::{DType, Float};
use crate::error::{Error, Result};
use crate::kernels::strided::for_each_run;
use crate::layout::{checked_numel, resolve_dim, Layout};
use crate::ops::reduce::Indices;
use crate::storage::{check_allocation, try_buffer, try_filled};
use crate::tensor::Tensor;
use crate::with_dtype;

/// Splits `shape` at `dim` into (product before, size of `dim`, product after).
fn split_at_dim(shape: &[usize], dim: usize) -> (usize, usize, usize) {
    let outer = shape[..dim].iter().product();
    let inner = shape[dim + 1..].iter().product();
    (outer, shape[dim], inner)
}

/// `shape` with entry `dim` replaced by `size`.
fn with_dim(shape: &[usize], dim: usize, size: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    s[dim] = size;
    s
}

fn same_dtype(op: &'static str, arg: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.dtype() != b.dtype() {
        return Err(Error::arg(
            op,
            arg,
            format!("dtype {:?} differs from self's {:?}", b.dtype(), a.dtype()),
        ));
    }
    Ok(())
}

/// Checks every entry of `index` is below `size` (the size of `dim`).
fn check_range(op: &'static str, index: &[usize], dim: usize, size: usize) -> Result<()> {
    if let Some((j, &ix)) = index.iter().enumerate().find(|(_, &ix)| ix >= size) {
        return Err(Error::arg(
            op,
            "index",
            format!("index[{j}] = {ix} is out of range for dim {dim} of size {size}"),
        ));
    }
    Ok(())
}

impl Tensor {
    /// Concatenates tensors along `dim` (negative counts from the end). All must share the
    /// dtype and the shape outside `dim`.
    ///
    /// Backward: the gradient of piece `i` is `g.narrow(dim, offset_i, len_i)`.
    ///
    /// ```
    /// use eingrad::{Tensor, DType};
    /// let a = Tensor::ones(&[2, 1], DType::F32).unwrap();
    /// let b = Tensor::zeros(&[2, 2], DType::F32).unwrap();
    /// let c = Tensor::cat(&[&a, &b], 1).unwrap();
    /// assert_eq!(c.dims(), &[2, 3]);
    /// assert_eq!(c.to_vec::<f32>().unwrap(), vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    /// assert!(Tensor::cat(&[&a, &b], 0).is_err());
    /// ```
    pub fn cat(tensors: &[&Tensor], dim: isize) -> Result<Tensor> {
        let first = match tensors.first() {
            Some(t) => *t,
            None => return Err(Error::arg("cat", "tensors", "the list is empty")),
        };
        let d = resolve_dim("cat", dim, first.rank())?;
        let mut total = 0usize;
        for (i, t) in tensors.iter().enumerate() {
            if t.dtype() != first.dtype() {
                return Err(Error::arg(
                    "cat",
                    "tensors",
                    format!(
                        "tensors[{i}] has dtype {:?} but tensors[0] has {:?}",
                        t.dtype(),
                        first.dtype()
                    ),
                ));
            }
            let differs = t.rank() != first.rank()
                || (0..first.rank()).any(|k| k != d && t.dims()[k] != first.dims()[k]);
            if differs {
                return Err(Error::ShapeMismatch {
                    op: "cat",
                    lhs: first.dims().to_vec(),
                    rhs: t.dims().to_vec(),
                    detail: format!(" (tensors[{i}] differs from tensors[0] outside dim {d})"),
                });
            }
            total = total.checked_add(t.dims()[d]).ok_or_else(|| {
                Error::arg(
                    "cat",
                    "tensors",
                    format!("the sizes along dim {d} overflow"),
                )
            })?;
        }
        let out_shape = with_dim(first.dims(), d, total);
        let out = with_dtype!(first.dtype(), T => cat_kernel::<T>(tensors, d, &out_shape))?;
        // Linear: the tangents concatenated; the transpose narrows g back into the pieces.
        Ok(record1("cat", tensors, out, |_| {
            let pieces: Vec<(usize, usize)> = tensors
                .iter()
                .scan(0usize, |start, t| {
                    let piece = (*start, t.dims()[d]);
                    *start += t.dims()[d];
                    Some(piece)
                })
                .collect();
            Rule::Linear {
                apply: Box::new(move |t| {
                    let refs: Vec<&Tensor> = t.iter().collect();
                    Tensor::cat(&refs, d as isize)
                }),
                transpose: Box::new(move |i, g, batched| {
                    let (start, len) = pieces[i];
                    g.narrow((d + usize::from(batched)) as isize, start, len)
                }),
                batches: true,
            }
        }))
    }

    /// Stacks same-shape tensors along a new dim `dim` (in `0..=rank`; negative counts from
    /// the end of the result's dims). Built as unsqueeze + [`Tensor::cat`].
    ///
    /// ```
    /// use eingrad::{Tensor, DType};
    /// let a = Tensor::ones(&[3], DType::F64).unwrap();
    /// let b = Tensor::zeros(&[3], DType::F64).unwrap();
    /// let s = Tensor::stack(&[&a, &b], 0).unwrap();
    /// assert_eq!(s.dims(), &[2, 3]);
    /// assert_eq!(Tensor::stack(&[&a, &b], -1).unwrap().dims(), &[3, 2]);
    /// ```
    pub fn stack(tensors: &[&Tensor], dim: isize) -> Result<Tensor> {
        let first = match tensors.first() {
            Some(t) => *t,
            None => return Err(Error::arg("stack", "tensors", "the list is empty")),
        };
        let d = resolve_dim("stack", dim, first.rank() + 1)?;
        for (i, t) in tensors.iter().enumerate() {
            if t.dtype() != first.dtype() {
                return Err(Error::arg(
                    "stack",
                    "tensors",
                    format!(
                        "tensors[{i}] has dtype {:?} but tensors[0] has {:?}",
                        t.dtype(),
                        first.dtype()
                    ),
                ));
            }
            if t.dims() != first.dims() {
                return Err(Error::ShapeMismatch {
                    op: "stack",
                    lhs: first.dims().to_vec(),
                    rhs: t.dims().to_vec(),
                    detail: format!(" (tensors[{i}] differs from tensors[0])"),
                });
            }
        }
        let mut out_shape = first.dims().to_vec();
        out_shape.insert(d, tensors.len());
        with_dtype!(first.dtype(), T => check_allocation::<T>("stack", &out_shape))?;
        let parts = tensors
            .iter()
            .map(|t| t.unsqueeze(d as isize))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Tensor> = parts.iter().collect();
        Tensor::cat(&refs, d as isize)
    }

    /// Constant padding: `pads[i] = (before, after)` elements of `value` are added around
    /// dim `i`; `pads.len()` must equal the rank.
    ///
    /// Backward: `g` narrowed back to the interior along every dim.
    ///
    /// ```
    /// use eingrad::{Tensor, DType};
    /// let x = Tensor::ones(&[1, 2], DType::F32).unwrap();
    /// let p = x.pad(&[(0, 0), (1, 2)], 0.0).unwrap();
    /// assert_eq!(p.to_vec::<f32>().unwrap(), vec![0.0, 1.0, 1.0, 0.0, 0.0]);
    /// assert!(x.pad(&[(1, 1)], 0.0).is_err());
    /// ```
    pub fn pad(&self, pads: &[(usize, usize)], value: f64) -> Result<Tensor> {
        if pads.len() != self.rank() {
            return Err(Error::arg(
                "pad",
                "pads",
                format!(
                    "has {} entries but the tensor of shape {:?} has rank {}",
                    pads.len(),
                    self.dims(),
                    self.rank()
                ),
            ));
        }
        let mut out_shape = Vec::with_capacity(pads.len());
        for (i, (&n, &(b, a))) in self.dims().iter().zip(pads).enumerate() {
            let size = n
                .checked_add(b)
                .and_then(|s| s.checked_add(a))
                .ok_or_else(|| {
                    Error::arg("pad", "pads", format!("pads[{i}] = ({b}, {a}) overflows"))
                })?;
            out_shape.push(size);
        }
        let out =
            with_dtype!(self.dtype(), T => pad_kernel::<T>(self, pads, &out_shape, T::of(value)))?;
        // Linear: the padding value is a constant, so a tangent is padded with zeros; the
        // transpose narrows g back to the interior along every dim.
        Ok(record1("pad", &[self], out, |_| {
            let (pads_v, in_shape) = (pads.to_vec(), self.dims().to_vec());
            let jpads = pads_v.clone();
            Rule::linear1_batched(
                move |t| t.pad(&jpads, 0.0),
                move |g, batched| {
                    let lead = usize::from(batched);
                    let mut inner = g.clone();
                    for (i, (&(b, a), &n)) in pads_v.iter().zip(&in_shape).enumerate() {
                        if b != 0 || a != 0 {
                            inner = inner.narrow((i + lead) as isize, b, n)?;
                        }
                    }
                    Ok(inner)
                },
            )
        }))
    }

    /// Constant padding of one dim: `before` and `after` elements of `value` around `dim`.
    ///
    /// ```
    /// use eingrad::{Tensor, DType};
    /// let x = Tensor::ones(&[2, 2], DType::F64).unwrap();
    /// let p = x.pad_dim(-1, 2, 0, 0.0).unwrap();
    /// assert_eq!(p.dims(), &[2, 4]);
    /// assert_eq!(p.to_vec::<f64>().unwrap(), vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]);
    /// ```
    pub fn pad_dim(&self, dim: isize, before: usize, after: usize, value: f64) -> Result<Tensor> {
        let d = resolve_dim("pad_dim", dim, self.rank())?;
        let mut pads = vec![(0, 0); self.rank()];
        pads[d] = (before, after);
        self.pad(&pads, value)
    }

    /// The slices at `index` along `dim`, in that order (repeats allowed).
    ///
    /// Backward: `zeros.index_add(dim, index, g)`.
    ///
    /// ```
    /// use eingrad::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap();
    /// let y = x.index_select(0, &[2, 0, 2]).unwrap();
    /// assert_eq!(y.to_vec::<f32>().unwrap(), vec![3.0, 1.0, 3.0]);
    /// assert!(x.index_select(0, &[3]).is_err());
    /// ```
    pub fn index_select(&self, dim: isize, index: &[usize]) -> Result<Tensor> {
        let d = resolve_dim("index_select", dim, self.rank())?;
        check_range("index_select", index, d, self.dims()[d])?;
        let out = with_dtype!(self.dtype(), T => index_select_kernel::<T>(self, d, index))?;
        Ok(record1("index_select", &[self], out, |_| {
            let (idx, in_shape) = (index.to_vec(), self.dims().to_vec());
            let jidx = idx.clone();
            Rule::linear1_batched(
                move |t| t.index_select(d as isize, &jidx),
                move |g, batched| {
                    let zeros = Tensor::zeros(&batched_dims(g, batched, &in_shape), g.dtype())?;
                    zeros.index_add((d + usize::from(batched)) as isize, &idx, g)
                },
            )
        }))
    }

    /// `self` with `source`'s slices added at `index` along `dim` (out of place; repeated
    /// indices accumulate). `source` has `self`'s shape except `index.len()` along `dim`.
    ///
    /// Backward: `g` to `self`; `g.index_select(dim, index)` to `source`.
    ///
    /// ```
    /// use eingrad::{Tensor, DType};
    /// let x = Tensor::zeros(&[3], DType::F64).unwrap();
    /// let s = Tensor::from_vec(vec![1.0f64, 2.0, 4.0], &[3]).unwrap();
    /// let y = x.index_add(0, &[1, 1, 0], &s).unwrap();
    /// assert_eq!(y.to_vec::<f64>().unwrap(), vec![4.0, 3.0, 0.0]);
    /// ```
    pub fn index_add(&self, dim: isize, index: &[usize], source: &Tensor) -> Result<Tensor> {
        let d = resolve_dim("index_add", dim, self.rank())?;
        same_dtype("index_add", "source", self, source)?;
        let want = with_dim(self.dims(), d, index.len());
        if source.dims() != want.as_slice() {
            return Err(Error::ShapeMismatch {
                op: "index_add",
                lhs: want,
                rhs: source.dims().to_vec(),
                detail: format!(
                    " (source must have self's shape {:?} with {} = index.len() along dim {d})",
                    self.dims(),
                    index.len()
                ),
            });
        }
        check_range("index_add", index, d, self.dims()[d])?;
        let out = with_dtype!(self.dtype(), T => index_add_kernel::<T>(self, d, index, source))?;
        // Linear in (self, source): the same index_add of the tangents; the transpose passes
        // g to self and picks its slices at `index` for source.
        Ok(record1("index_add", &[self, source], out, |_| {
            let (idx, jidx) = (index.to_vec(), index.to_vec());
            Rule::Linear {
                apply: Box::new(move |t| t[0].index_add(d as isize, &jidx, &t[1])),
                transpose: Box::new(move |i, g, batched| {
                    if i == 0 {
                        Ok(g.clone())
                    } else {
                        g.index_select((d + usize::from(batched)) as isize, &idx)
                    }
                }),
                batches: true,
            }
        }))
    }

    /// torch.gather: `out[i][j][k] = self[index[i][j][k]][j][k]` for `dim` 0 (and likewise
    /// for other dims). `index` has `self`'s rank, `index.shape[d] ≤ self.shape[d]` for
    /// `d ≠ dim`; the result has `index.shape`.
    ///
    /// Backward: `zeros.scatter_add(dim, index, g)`.
    ///
    /// ```
    /// use eingrad::{Tensor, Indices};
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let idx = Indices { values: vec![0, 0, 1, 0], shape: vec![2, 2] };
    /// let y = x.gather(1, &idx).unwrap();
    /// assert_eq!(y.to_vec::<f32>().unwrap(), vec![1.0, 1.0, 4.0, 3.0]);
    /// ```
    pub fn gather(&self, dim: isize, index: &Indices) -> Result<Tensor> {
        let d = resolve_dim("gather", dim, self.rank())?;
        check_indices("gather", index, self.dims(), d, None)?;
        let out = with_dtype!(self.dtype(), T => gather_kernel::<T>(self, d, index))?;
        Ok(record1("gather", &[self], out, |_| {
            let (idx, in_shape) = (index.clone(), self.dims().to_vec());
            let jidx = idx.clone();
            Rule::linear1(
                move |t| t.gather(d as isize, &jidx),
                move |g| Tensor::zeros(&in_shape, g.dtype())?.scatter_add(d as isize, &idx, g),
            )
        }))
    }

    /// torch.scatter_add (out of place): `self` with `out[index[i][j][k]][j][k] +=
    /// src[i][j][k]` for `dim` 0 (and likewise for other dims), over the positions of
    /// `index`. `index` has `self`'s rank, `index.shape[d] ≤ src.shape[d]` for every `d` and
    /// `≤ self.shape[d]` for `d ≠ dim`.
    ///
    /// Backward: `g` to `self`; `g.gather(dim, index)` (zero-padded to `src`'s shape) to
    /// `src`.
    ///
    /// ```
    /// use eingrad::{Tensor, Indices, DType};
    /// let x = Tensor::zeros(&[3], DType::F64).unwrap();
    /// let src = Tensor::from_vec(vec![1.0f64, 2.0, 4.0], &[3]).unwrap();
    /// let idx = Indices { values: vec![2, 0, 2], shape: vec![3] };
    /// let y = x.scatter_add(0, &idx, &src).unwrap();
    /// assert_eq!(y.to_vec::<f64>().unwrap(), vec![2.0, 0.0, 5.0]);
    /// ```
    pub fn scatter_add(&self, dim: isize, index: &Indices, src: &Tensor) -> Result<Tensor> {
        let d = resolve_dim("scatter_add", dim, self.rank())?;
        same_dtype("scatter_add", "src", self, src)?;
        if src.rank() != self.rank() {
            return Err(Error::ShapeMismatch {
                op: "scatter_add",
                lhs: self.dims().to_vec(),
                rhs: src.dims().to_vec(),
                detail: " (src must have self's rank)".into(),
            });
        }
        check_indices("scatter_add", index, self.dims(), d, Some(src.dims()))?;
        let out = with_dtype!(self.dtype(), T => scatter_add_kernel::<T>(self, d, index, src))?;
        // Linear in (self, src): the same scatter_add of the tangents; the transpose passes g
        // to self and gathers it at `index` (zero-padded to src's shape) for src.
        Ok(record1("scatter_add", &[self, src], out, |_| {
            let (idx, jidx, src_shape) = (index.clone(), index.clone(), src.dims().to_vec());
            Rule::Linear {
                apply: Box::new(move |t| t[0].scatter_add(d as isize, &jidx, &t[1])),
                transpose: Box::new(move |i, g, _| {
                    if i == 0 {
                        return Ok(g.clone());
                    }
                    let picked = g.gather(d as isize, &idx)?;
                    if picked.dims() == src_shape.as_slice() {
                        return Ok(picked);
                    }
                    let pads: Vec<(usize, usize)> = idx
                        .shape
                        .iter()
                        .zip(&src_shape)
                        .map(|(&i, &s)| (0, s - i))
                        .collect();
                    picked.pad(&pads, 0.0)
                }),
                batches: false,
            }
        }))
    }

    /// Tiles the tensor `reps[i]` times along dim `i` (torch.Tensor.repeat); `reps` may be
    /// longer than the rank, adding leading dims. Built from reshape + broadcast_to, so its
    /// gradient (a sum over the copies) comes from those ops.
    ///
    /// ```
    /// use eingrad::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
    /// let y = x.repeat(&[2, 2]).unwrap();
    /// assert_eq!(y.dims(), &[2, 4]);
    /// assert_eq!(y.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
    /// assert!(y.repeat(&[2]).is_err());
    /// ```
    pub fn repeat(&self, reps: &[usize]) -> Result<Tensor> {
        if reps.len() < self.rank() {
            return Err(Error::arg(
                "repeat",
                "reps",
                format!(
                    "{reps:?} has fewer entries than the rank of shape {:?}",
                    self.dims()
                ),
            ));
        }
        let lead = reps.len() - self.rank();
        let shape: Vec<usize> = std::iter::repeat_n(1, lead)
            .chain(self.dims().iter().copied())
            .collect();
        let (mut split, mut tiled, mut out) = (Vec::new(), Vec::new(), Vec::new());
        for (&r, &s) in reps.iter().zip(&shape) {
            split.extend([1, s]);
            tiled.extend([r, s]);
            out.push(r.checked_mul(s).ok_or_else(|| {
                Error::arg(
                    "repeat",
                    "reps",
                    format!("{reps:?} overflows for shape {shape:?}"),
                )
            })?);
        }
        if out
            .iter()
            .try_fold(1usize, |acc, &n| acc.checked_mul(n))
            .is_none()
        {
            return Err(Error::arg(
                "repeat",
                "reps",
                format!("{reps:?} overflows for shape {shape:?}"),
            ));
        }
        with_dtype!(self.dtype(), T => check_allocation::<T>("repeat", &out))?;
        self.reshape(&split)?.broadcast_to(&tiled)?.reshape(&out)
    }

    /// Lower triangle of the last two dims: keeps `(i, j)` with `j − i ≤ k`, zeros the rest
    /// (even where the rest holds ±∞ or NaN). Rank ≥ 2.
    ///
    /// ```
    /// use eingrad::{Tensor, DType};
    /// let x = Tensor::full(&[2, 2], f64::NEG_INFINITY, DType::F64).unwrap();
    /// assert_eq!(x.tril(0).unwrap().to_vec::<f64>().unwrap(), vec![f64::NEG_INFINITY, 0.0, f64::NEG_INFINITY, f64::NEG_INFINITY]);
    /// ```
    pub fn tril(&self, k: isize) -> Result<Tensor> {
        self.triangle("tril", |i, j| j - i <= k)
    }

    /// Upper triangle of the last two dims: keeps `(i, j)` with `j − i ≥ k`, zeros the rest.
    /// Rank ≥ 2.
    ///
    /// ```
    /// use eingrad::{Tensor, DType};
    /// let x = Tensor::ones(&[2, 3], DType::F32).unwrap();
    /// assert_eq!(x.triu(1).unwrap().to_vec::<f32>().unwrap(), vec![0.0, 1.0, 1.0, 0.0, 0.0, 1.0]);
    /// ```
    pub fn triu(&self, k: isize) -> Result<Tensor> {
        self.triangle("triu", |i, j| j - i >= k)
    }

    /// `where_(mask, self, 0)` with a constant 0/1 mask over the last two dims: the gradient
    /// is `g` on the kept triangle and 0 elsewhere (through `where_`'s own rule).
    fn triangle(&self, op: &'static str, keep: impl Fn(isize, isize) -> bool) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(Error::arg(
                op,
                "self",
                format!("needs rank ≥ 2, shape is {:?}", self.dims()),
            ));
        }
        if self.numel() == 0 {
            // Nothing to mask (the last two dims of an empty view may still be huge).
            return self.mul_scalar(1.0);
        }
        let (n, m) = (self.dims()[self.rank() - 2], self.dims()[self.rank() - 1]);
        let count = checked_numel(op, &[n, m])?;
        let mut mask = try_filled(op, &[n, m], count, 0.0f64)?;
        for (p, v) in mask.iter_mut().enumerate() {
            if keep((p / m) as isize, (p % m) as isize) {
                *v = 1.0;
            }
        }
        let mask = Tensor::from_f64s(&mask, &[n, m], self.dtype())?;
        let zero = Tensor::zeros(&[], self.dtype())?;
        Tensor::where_(&mask, self, &zero)
    }

    /// A constant `(indices.len(), num_classes)` tensor with a 1 at `[i, indices[i]]`.
    ///
    /// ```
    /// use eingrad::{Tensor, DType};
    /// let t = Tensor::one_hot(&[2, 0], 3, DType::F32).unwrap();
    /// assert_eq!(t.to_vec::<f32>().unwrap(), vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    /// assert!(Tensor::one_hot(&[3], 3, DType::F32).is_err());
    /// ```
    pub fn one_hot(indices: &[usize], num_classes: usize, dtype: DType) -> Result<Tensor> {
        if let Some((i, &c)) = indices.iter().enumerate().find(|(_, &c)| c >= num_classes) {
            return Err(Error::arg(
                "one_hot",
                "indices",
                format!("indices[{i}] = {c} is not below num_classes = {num_classes}"),
            ));
        }
        let out = Tensor::filled("one_hot", &[indices.len(), num_classes], 0.0, dtype)?;
        with_dtype!(dtype, T => out.update_data::<T>(|v| {
            for (i, &c) in indices.iter().enumerate() {
                v[i * num_classes + c] = T::one();
            }
        }))?;
        Ok(out)
    }
}

/// Validates an [`Indices`] argument against `self_shape` (and `src_shape` for scatter).
fn check_indices(
    op: &'static str,
    index: &Indices,
    self_shape: &[usize],
    dim: usize,
    src_shape: Option<&[usize]>,
) -> Result<()> {
    let n = checked_numel(op, &index.shape)?;
    if index.values.len() != n {
        return Err(Error::arg(
            op,
            "index",
            format!(
                "holds {} values but its shape {:?} needs {n}",
                index.values.len(),
                index.shape
            ),
        ));
    }
    if index.shape.len() != self_shape.len() {
        return Err(Error::ShapeMismatch {
            op,
            lhs: self_shape.to_vec(),
            rhs: index.shape.clone(),
            detail: " (index must have self's rank)".into(),
        });
    }
    for (d, (&i, &s)) in index.shape.iter().zip(self_shape).enumerate() {
        if d != dim && i > s {
            return Err(Error::ShapeMismatch {
                op,
                lhs: self_shape.to_vec(),
                rhs: index.shape.clone(),
                detail: format!(" (index is larger than self in dim {d})"),
            });
        }
    }
    if let Some(src) = src_shape {
        for (d, (&i, &s)) in index.shape.iter().zip(src).enumerate() {
            if i > s {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: src.to_vec(),
                    rhs: index.shape.clone(),
                    detail: format!(" (index is larger than src in dim {d})"),
                });
            }
        }
    }
    check_range(op, &index.values, dim, self_shape[dim])
}

// ---- kernels (row-major buffers; autograd is recorded by the callers) ----

fn cat_kernel<T: Float>(tensors: &[&Tensor], d: usize, out_shape: &[usize]) -> Result<Tensor> {
    let (outer, _, inner) = split_at_dim(out_shape, d);
    if out_shape.contains(&0) {
        // Nothing to copy (and `outer` may count rows of a huge empty view).
        return Ok(Tensor::from_buf(Vec::<T>::new(), out_shape));
    }
    let mut out = try_buffer("cat", out_shape, checked_numel("cat", out_shape)?)?;
    let parts = tensors
        .iter()
        .map(|t| read_all::<T>("cat", t))
        .collect::<Result<Vec<_>>>()?;
    for o in 0..outer {
        for (t, p) in tensors.iter().zip(&parts) {
            let slab = t.dims()[d] * inner;
            out.extend_from_slice(&p[o * slab..(o + 1) * slab]);
        }
    }
    Ok(Tensor::from_buf(out, out_shape))
}

fn pad_kernel<T: Float>(
    x: &Tensor,
    pads: &[(usize, usize)],
    out_shape: &[usize],
    value: T,
) -> Result<Tensor> {
    let n = checked_numel("pad", out_shape)?;
    let mut buf = try_filled("pad", out_shape, n, value)?;
    let mut target = Layout::contiguous(out_shape);
    for (i, (&(b, _), &n)) in pads.iter().zip(x.dims()).enumerate() {
        target = target
            .narrow(i as isize, b, n)
            .unwrap_or_else(|_| unreachable!("the interior fits the padded shape"));
    }
    let storage = x.storage();
    let src = storage.as_slice::<T>().expect("dtype dispatched by caller");
    let xl = x.layout();
    for_each_run(
        x.dims(),
        [target.strides(), xl.strides()],
        [target.offset(), xl.offset()],
        |[o, s], len, [so, ss]| {
            for i in 0..len as isize {
                buf[(o + i * so) as usize] = src[(s + i * ss) as usize];
            }
        },
    );
    Ok(Tensor::from_buf(buf, out_shape))
}

/// `x`'s elements for op `op`, row-major (an error naming `op` when a huge view cannot be
/// copied).
fn read_all<T: Float>(op: &'static str, x: &Tensor) -> Result<Vec<T>> {
    let storage = x.storage();
    let src = super::typed::<T>(op, &storage)?;
    let l = x.layout();
    crate::kernels::strided::try_gather(op, src, l.shape(), l.strides(), l.offset())
}

/// Reads only the selected slices, through `x`'s layout: selecting from a huge broadcast
/// view costs what the output costs.
fn index_select_kernel<T: Float>(x: &Tensor, d: usize, index: &[usize]) -> Result<Tensor> {
    let out_shape = with_dim(x.dims(), d, index.len());
    if out_shape.contains(&0) {
        return Ok(Tensor::from_buf(Vec::<T>::new(), &out_shape));
    }
    let n_out = checked_numel("index_select", &out_shape)?;
    let mut out = try_buffer("index_select", &out_shape, n_out)?;
    let storage = x.storage();
    let src = super::typed::<T>("index_select", &storage)?;
    let l = x.layout();
    let (strides, offset) = (l.strides(), l.offset() as isize);
    // An odometer over the output's dims but the last, which is copied as one strided run.
    let r = out_shape.len();
    let (last, last_stride) = (out_shape[r - 1], strides[r - 1]);
    let mut m = vec![0usize; r - 1];
    loop {
        let mut at = offset;
        for (k, &mk) in m.iter().enumerate() {
            let i = if k == d { index[mk] } else { mk };
            at += i as isize * strides[k];
        }
        if d == r - 1 {
            out.extend(
                index
                    .iter()
                    .map(|&i| src[(at + i as isize * last_stride) as usize]),
            );
        } else {
            out.extend((0..last as isize).map(|i| src[(at + i * last_stride) as usize]));
        }
        let mut k = r - 1;
        loop {
            if k == 0 {
                return Ok(Tensor::from_buf(out, &out_shape));
            }
            k -= 1;
            m[k] += 1;
            if m[k] < out_shape[k] {
                break;
            }
            m[k] = 0;
        }
    }
}

fn index_add_kernel<T: Float>(
    x: &Tensor,
    d: usize,
    index: &[usize],
    source: &Tensor,
) -> Result<Tensor> {
    let (outer, n, inner) = split_at_dim(x.dims(), d);
    let mut out = read_all::<T>("index_add", x)?;
    let src = read_all::<T>("index_add", source)?;
    let k = index.len();
    for o in 0..outer {
        for (j, &ix) in index.iter().enumerate() {
            let (dst, from) = ((o * n + ix) * inner, (o * k + j) * inner);
            for (a, &b) in out[dst..dst + inner]
                .iter_mut()
                .zip(&src[from..from + inner])
            {
                *a += b;
            }
        }
    }
    Ok(Tensor::from_buf(out, x.dims()))
}

/// For every entry of `index` calls `f(at, at_other)`: the row-major offset in `shape` of
/// the entry's multi-index with `dim` replaced by its value, and the row-major offset in
/// `other` of the multi-index itself.
fn for_each_index(
    index: &Indices,
    shape: &[usize],
    other: &[usize],
    dim: usize,
    mut f: impl FnMut(usize, usize),
) {
    let strides = crate::layout::contiguous_strides(shape);
    let other_strides = crate::layout::contiguous_strides(other);
    let r = index.shape.len();
    let mut m = vec![0usize; r];
    for &v in &index.values {
        let (mut at, mut at_other) = (0isize, 0isize);
        for d in 0..r {
            at += if d == dim { v } else { m[d] } as isize * strides[d];
            at_other += m[d] as isize * other_strides[d];
        }
        f(at as usize, at_other as usize);
        for d in (0..r).rev() {
            m[d] += 1;
            if m[d] < index.shape[d] {
                break;
            }
            m[d] = 0;
        }
    }
}

/// Reads only the gathered entries, through `x`'s layout (cheap on a huge broadcast view).
fn gather_kernel<T: Float>(x: &Tensor, d: usize, index: &Indices) -> Result<Tensor> {
    let storage = x.storage();
    let src = super::typed::<T>("gather", &storage)?;
    let l = x.layout();
    let (strides, offset) = (l.strides(), l.offset() as isize);
    let mut out = try_buffer("gather", &index.shape, index.values.len())?;
    let r = index.shape.len();
    let mut m = vec![0usize; r];
    for &v in &index.values {
        let mut at = offset;
        for k in 0..r {
            at += if k == d { v } else { m[k] } as isize * strides[k];
        }
        out.push(src[at as usize]);
        for k in (0..r).rev() {
            m[k] += 1;
            if m[k] < index.shape[k] {
                break;
            }
            m[k] = 0;
        }
    }
    Ok(Tensor::from_buf(out, &index.shape))
}

fn scatter_add_kernel<T: Float>(
    x: &Tensor,
    d: usize,
    index: &Indices,
    src: &Tensor,
) -> Result<Tensor> {
    let mut out = read_all::<T>("scatter_add", x)?;
    let s = read_all::<T>("scatter_add", src)?;
    for_each_index(index, x.dims(), src.dims(), d, |at, from| {
        out[at] += s[from]
    });
    Ok(Tensor::from_buf(out, x.dims()))
}
