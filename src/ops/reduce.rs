//! Reductions (sum, mean, max/min, var, logsumexp, softmax, log_softmax) and cumsum.

use super::operand;
use super::shape::{batched_dim_list, batched_dims};
use crate::autograd::{is_grad_enabled, record1, Rule};
use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::kernels::reduce::{arg_reduce, cumsum, reduce};
use crate::kernels::rows::{softmax_backward, softmax_forward};
use crate::kernels::Operand;
use crate::layout::resolve_dim;
use crate::storage::check_allocation;
use crate::tensor::Tensor;
use crate::with_dtype;

/// Integer indices with a shape (what `max_dim`/`argmax` return, what `gather` takes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indices {
    /// Row-major index values.
    pub values: Vec<usize>,
    /// Shape.
    pub shape: Vec<usize>,
}

fn resolve_dims(op: &'static str, dims: &[isize], rank: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(dims.len());
    for &d in dims {
        let r = resolve_dim(op, d, rank)?;
        if out.contains(&r) {
            return Err(Error::arg(
                op,
                "dims",
                format!("dim {d} listed twice in {dims:?}"),
            ));
        }
        out.push(r);
    }
    Ok(out)
}

/// The keepdim shape after reducing `dims`.
fn kept_shape(shape: &[usize], dims: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if dims.contains(&i) { 1 } else { d })
        .collect()
}

fn squeezed_shape(shape: &[usize], dims: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter(|(i, _)| !dims.contains(i))
        .map(|(_, &d)| d)
        .collect()
}

impl Tensor {
    /// Sum over `dims` (an empty list reduces nothing), keeping them as size 1 if `keepdim`.
    ///
    /// ```
    /// let t = eingrad::Tensor::ones(&[2, 3], eingrad::DType::F32).unwrap();
    /// assert_eq!(t.sum(&[-1], false).unwrap().to_vec::<f32>().unwrap(), vec![3.0, 3.0]);
    /// ```
    pub fn sum(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        let d = resolve_dims("sum", dims, self.rank())?;
        if d.is_empty() {
            return Ok(self.clone());
        }
        let kept = with_dtype!(self.dtype(), T => reduce_tensor::<T>("sum", self, &d, T::zero(), Copies::Scale, |a, b| a + b))?;
        let out = if keepdim {
            kept
        } else {
            kept.with_layout(crate::Layout::contiguous(&squeezed_shape(self.dims(), &d)))
        };
        // Linear: the transpose broadcasts g back over the summed dims.
        Ok(record1("sum", &[self], out, |_| {
            let (in_shape, kshape) = (self.dims().to_vec(), kept_shape(self.dims(), &d));
            let jdims = dims.to_vec();
            Rule::linear1_batched(
                move |t| t.sum(&jdims, keepdim),
                move |g, batched| {
                    g.reshape(&batched_dims(g, batched, &kshape))?
                        .broadcast_to(&batched_dims(g, batched, &in_shape))
                },
            )
        }))
    }
    /// Sum of all elements (a 0-dim tensor).
    pub fn sum_all(&self) -> Result<Tensor> {
        let all: Vec<isize> = (0..self.rank() as isize).collect();
        if all.is_empty() {
            return Ok(self.clone());
        }
        self.sum(&all, false)
    }
    /// Mean over `dims`: the sum divided by the count (NaN over an empty dim, as in PyTorch).
    ///
    /// ```
    /// let t = eingrad::Tensor::ones(&[2, 49], eingrad::DType::F64).unwrap();
    /// assert_eq!(t.mean(&[1], false).unwrap().to_vec::<f64>().unwrap(), vec![1.0, 1.0]);
    /// ```
    pub fn mean(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        let d = resolve_dims("mean", dims, self.rank())?;
        let count: usize = d.iter().map(|&i| self.dims()[i]).product();
        self.sum(dims, keepdim)?.div_scalar(count as f64)
    }
    /// Mean of all elements (NaN for an empty tensor, as in PyTorch).
    ///
    /// ```
    /// use eingrad::{DType, Tensor};
    /// assert_eq!(Tensor::ones(&[49], DType::F64)?.mean_all()?.item()?, 1.0);
    /// assert!(Tensor::zeros(&[0], DType::F64)?.mean_all()?.item()?.is_nan());
    /// # Ok::<(), eingrad::Error>(())
    /// ```
    pub fn mean_all(&self) -> Result<Tensor> {
        self.sum_all()?.div_scalar(self.numel() as f64)
    }
    /// Variance over `dims` with `correction` (1 = unbiased, as PyTorch's default).
    pub fn var(&self, dims: &[isize], correction: usize, keepdim: bool) -> Result<Tensor> {
        let d = resolve_dims("var", dims, self.rank())?;
        let count: usize = d.iter().map(|&i| self.dims()[i]).product();
        let centered = self.sub(&self.mean(dims, true)?)?;
        let ss = centered.mul(&centered)?.sum(dims, keepdim)?;
        ss.div_scalar(count.saturating_sub(correction) as f64)
    }

    /// max_dim/min_dim (and argmax/argmin, whose errors carry their own `name`).
    fn extreme_dim(
        &self,
        name: &'static str,
        dim: isize,
        keepdim: bool,
        max: bool,
    ) -> Result<(Tensor, Indices)> {
        let d = resolve_dim(name, dim, self.rank())?;
        if self.dims()[d] == 0 {
            return Err(Error::arg(name, "dim", format!("dim {dim} has size 0")));
        }
        let (vals, idx) = with_dtype!(self.dtype(), T => {
            let s = self.storage();
            let x = operand::<T>(name, self, &s)?;
            let (vals, shape, idx) = arg_reduce::<T>(name, x, d, |a: T, b: T| if max { a > b } else { a < b })?;
            (Tensor::from_buf(vals, &shape), idx)
        });
        let kshape = vals.dims().to_vec();
        let out_shape = if keepdim {
            kshape.clone()
        } else {
            squeezed_shape(self.dims(), &[d])
        };
        let vals = vals.with_layout(crate::Layout::contiguous(&out_shape));
        let indices = Indices {
            values: idx.clone(),
            shape: out_shape,
        };
        // Linear where it is differentiable: the tangent at the chosen index (the first of
        // ties); the transpose puts g there.
        // Recorded under max_dim/min_dim whichever public op called (argmax records nothing:
        // its input is detached).
        let recorded = if max { "max_dim" } else { "min_dim" };
        let out = record1(recorded, &[self], vals, |_| {
            let in_shape = self.dims().to_vec();
            let at = Indices {
                values: idx.clone(),
                shape: kshape.clone(),
            };
            let jshape = indices.shape.clone();
            Rule::linear1(
                move |t| t.gather(d as isize, &at)?.reshape(&jshape),
                move |g| {
                    let onehot = one_hot_along(name, &idx, &in_shape, d, g.dtype())?;
                    g.reshape(&kshape)?.mul(&onehot)
                },
            )
        });
        Ok((out, indices))
    }
    /// Maximum along `dim` and its index (first of ties); the gradient goes to that index.
    pub fn max_dim(&self, dim: isize, keepdim: bool) -> Result<(Tensor, Indices)> {
        self.extreme_dim("max_dim", dim, keepdim, true)
    }
    /// Minimum along `dim` and its index.
    pub fn min_dim(&self, dim: isize, keepdim: bool) -> Result<(Tensor, Indices)> {
        self.extreme_dim("min_dim", dim, keepdim, false)
    }
    /// Index of the maximum along `dim`.
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Result<Indices> {
        Ok(self.detach().extreme_dim("argmax", dim, keepdim, true)?.1)
    }
    /// Index of the minimum along `dim`.
    pub fn argmin(&self, dim: isize, keepdim: bool) -> Result<Indices> {
        Ok(self.detach().extreme_dim("argmin", dim, keepdim, false)?.1)
    }
    /// Maximum over `dims` (PyTorch's `amax`): at ties the gradient is split evenly.
    pub fn amax(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.extreme_dims(dims, keepdim, true)
    }
    /// Minimum over `dims` (PyTorch's `amin`).
    pub fn amin(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.extreme_dims(dims, keepdim, false)
    }
    /// Maximum of all elements.
    pub fn max_all(&self) -> Result<Tensor> {
        if self.numel() == 0 {
            return Err(Error::arg(
                "max_all",
                "self",
                format!(
                    "the maximum of an empty tensor (shape {:?}) is undefined",
                    self.dims()
                ),
            ));
        }
        let all: Vec<isize> = (0..self.rank() as isize).collect();
        self.amax(&all, false)
    }
    fn extreme_dims(&self, dims: &[isize], keepdim: bool, max: bool) -> Result<Tensor> {
        let name = if max { "amax" } else { "amin" };
        let d = resolve_dims(name, dims, self.rank())?;
        if d.iter().any(|&i| self.dims()[i] == 0) {
            return Err(Error::arg(
                name,
                "dims",
                format!("{dims:?} include a dim of size 0"),
            ));
        }
        if d.is_empty() {
            return Ok(self.clone());
        }
        let kept = with_dtype!(self.dtype(), T => {
            let init = if max { T::neg_infinity() } else { T::infinity() };
            reduce_tensor::<T>(name, self, &d, init, Copies::Idempotent, |a: T, b: T| if a.is_nan() || b.is_nan() { T::nan() } else if (b > a) == max { b } else { a })
        })?;
        let kshape = kept.dims().to_vec();
        let out = if keepdim {
            kept.clone()
        } else {
            kept.with_layout(crate::Layout::contiguous(&squeezed_shape(self.dims(), &d)))
        };
        // Linear where it is differentiable: the mean tangent over the tied extrema; the
        // transpose splits g evenly among them.
        Ok(record1(name, &[self], out, |_| {
            let (x, kept_d) = (self.clone(), kept.detach());
            let (jx, jkept, jd) = (x.clone(), kept_d.clone(), dims_isize(&d));
            Rule::linear1(
                move |t| {
                    let mask = jx.eq(&jkept)?;
                    let count = mask.sum(&jd, keepdim)?;
                    t.mul(&mask)?.sum(&jd, keepdim)?.div(&count)
                },
                move |g| {
                    let mask = x.eq(&kept_d)?;
                    let count = mask.sum(&dims_isize(&d), true)?;
                    g.reshape(&kshape)?.mul(&mask)?.div(&count)
                },
            )
        }))
    }

    /// log Σ exp over `dims`, stable; a slice that is all −∞ gives −∞ (no NaN), and its
    /// gradient is 0.
    pub fn logsumexp(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        let d = resolve_dims("logsumexp", dims, self.rank())?;
        // exp(x − max) is as large as x: refuse before any pass over a huge broadcast view.
        with_dtype!(self.dtype(), T => check_allocation::<T>("logsumexp", self.dims()))?;
        let x = self.detach();
        let m = safe_max(&x, dims)?;
        let lse_k = x.sub(&m)?.exp()?.sum(dims, true)?.log()?.add(&m)?;
        let kshape = lse_k.dims().to_vec();
        let out = if keepdim {
            lse_k.clone()
        } else {
            lse_k.reshape(&squeezed_shape(self.dims(), &d))?
        };
        // JVP Σ softmax(x)·t (0 on a slice that is all −∞, whose softmax is 0); VJP g·softmax(x).
        Ok(record1("logsumexp", &[self], out, |_| {
            let (xs, dv) = (self.clone(), dims.to_vec());
            let (jx, jd) = (xs.clone(), dv.clone());
            Rule::general1(
                move |t| t.mul(&jx.softmax_over(&jd)?)?.sum(&jd, keepdim),
                move |g| g.reshape(&kshape)?.mul(&xs.softmax_over(&dv)?),
            )
        }))
    }
    /// softmax along `dim`; a row that is all −∞ gives zeros (no NaN).
    ///
    /// ```
    /// let t = eingrad::Tensor::from_vec(vec![f64::NEG_INFINITY; 3], &[1, 3]).unwrap();
    /// assert_eq!(t.softmax(-1).unwrap().to_vec::<f64>().unwrap(), vec![0.0; 3]);
    /// ```
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        self.softmax_over(&[dim])
    }
    fn softmax_over(&self, dims: &[isize]) -> Result<Tensor> {
        let resolved = resolve_dims("softmax", dims, self.rank())?;
        // The output is as large as the input: refuse before any pass over a huge view.
        with_dtype!(self.dtype(), T => check_allocation::<T>("softmax", self.dims()))?;
        let rank_u = self.rank();
        let last_only = rank_u > 0 && resolved == [rank_u - 1];
        let y = if last_only {
            // One pass per row over the contiguous last dim.
            let n = self.dims()[rank_u - 1];
            with_dtype!(self.dtype(), T => super::with_contiguous::<T, _>("softmax", self, |x| {
                Ok(Tensor::from_buf(softmax_forward(x, n), self.dims()))
            }))?
        } else {
            let x = self.detach();
            let m = safe_max(&x, dims)?;
            let e = x.sub(&m)?.exp()?;
            let s = e.sum(dims, true)?;
            let s_safe = s.masked_fill(&s.eq_scalar(0.0)?, 1.0)?;
            e.div(&s_safe)?
        };
        // J = diag(y) − y·yᵀ is symmetric: v ↦ y ⊙ (v − Σ y·v) is both the VJP and the JVP.
        // The dims count from the end, so the map also serves a leading batch of gradients.
        let rank = self.rank() as isize;
        Ok(record1("softmax", &[self], y, |y| {
            let yd = y.detach();
            let dv: Vec<isize> = resolved.iter().map(|&d| d as isize - rank).collect();
            let xs = self.clone();
            Rule::self_adjoint1(true, move |v| {
                if last_only && !is_grad_enabled() && v.dims() == yd.dims() {
                    let n = yd.dims()[yd.rank() - 1];
                    return with_dtype!(yd.dtype(), T => super::with_contiguous::<T, _>("softmax", v, |vv| {
                        super::with_contiguous::<T, _>("softmax", &yd, |yv| {
                            Ok(Tensor::from_buf(softmax_backward(vv, yv, n), yd.dims()))
                        })
                    }));
                }
                let y = super::saved_output(&yd, || xs.softmax_over(&dv))?;
                let inner = v.mul(&y)?.sum(&dv, true)?;
                y.mul(&v.sub(&inner)?)
            })
        }))
    }
    /// log softmax along `dim`; a row that is all −∞ gives −∞ (no NaN) and gradient g.
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        // Checked here so that errors name this op, not the logsumexp inside it.
        resolve_dim("log_softmax", dim, self.rank())?;
        with_dtype!(self.dtype(), T => check_allocation::<T>("log_softmax", self.dims()))?;
        let lse = self.detach().logsumexp(&[dim], true)?;
        let lse_safe = lse.masked_fill(&lse.eq_scalar(f64::NEG_INFINITY)?, 0.0)?;
        let y = self.detach().sub(&lse_safe)?;
        // JVP t − Σ softmax(x)·t (softmax = exp(y): t itself on a row that is all −∞);
        // VJP g − softmax(x)·Σg.
        Ok(record1("log_softmax", &[self], y, |y| {
            let (xs, yd) = (self.clone(), y.detach());
            let jx = xs.clone();
            Rule::general1(
                move |t| {
                    let p = super::saved_output(&yd, || jx.log_softmax(dim))?.exp()?;
                    t.sub(&t.mul(&p)?.sum(&[dim], true)?)
                },
                move |g| {
                    let p = xs.softmax(dim)?;
                    g.sub(&p.mul(&g.sum(&[dim], true)?)?)
                },
            )
        }))
    }
    /// Running sum along `dim`, inclusive; from the end when `reverse`.
    ///
    /// ```
    /// let t = eingrad::Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap();
    /// assert_eq!(t.cumsum(0, false).unwrap().to_vec::<f32>().unwrap(), vec![1.0, 3.0, 6.0]);
    /// assert_eq!(t.cumsum(0, true).unwrap().to_vec::<f32>().unwrap(), vec![6.0, 5.0, 3.0]);
    /// ```
    pub fn cumsum(&self, dim: isize, reverse: bool) -> Result<Tensor> {
        let d = resolve_dim("cumsum", dim, self.rank())?;
        let out = with_dtype!(self.dtype(), T => {
            let s = self.storage();
            let x = operand::<T>("cumsum", self, &s)?;
            Tensor::from_buf(cumsum::<T>(x, d, reverse)?, self.dims())
        });
        // Linear: the transpose of a running sum is the running sum the other way.
        Ok(record1("cumsum", &[self], out, |_| {
            Rule::linear1_batched(
                move |t| t.cumsum(d as isize, reverse),
                move |g, batched| {
                    let dim = batched_dim_list(&[d as isize], batched)[0];
                    g.cumsum(dim, !reverse)
                },
            )
        }))
    }
}

/// How a reduction treats a reduced dim of stride 0 (a broadcast: n copies of one value).
#[derive(Clone, Copy, PartialEq)]
enum Copies {
    /// n copies add up to n times the value (sum).
    Scale,
    /// n copies fold to the value itself (max, min).
    Idempotent,
}

/// The reduction kernel on a tensor: `x` folded over `dims` (kept as size 1) for op `op`.
/// Reduced dims of stride 0 are read once (and the sum scaled by their sizes), so reducing a
/// huge broadcast view costs what its distinct elements cost.
fn reduce_tensor<T: Float>(
    op: &'static str,
    x: &Tensor,
    dims: &[usize],
    init: T,
    copies: Copies,
    combine: impl Fn(T, T) -> T + Sync,
) -> Result<Tensor> {
    let s = x.storage();
    let mut layout = x.layout().clone();
    let mut count = 1.0f64;
    for &d in dims {
        if layout.strides()[d] == 0 && layout.shape()[d] > 1 {
            count *= layout.shape()[d] as f64;
            layout = layout.narrow(d as isize, 0, 1)?;
        }
    }
    let data = operand::<T>(op, x, &s)?.data;
    let (mut out, shape) = reduce::<T>(
        Operand {
            data,
            layout: &layout,
        },
        dims,
        init,
        combine,
    )?;
    if copies == Copies::Scale && count != 1.0 {
        let c = T::of(count);
        out.iter_mut().for_each(|v| *v *= c);
    }
    Ok(Tensor::from_buf(out, &shape))
}

fn dims_isize(d: &[usize]) -> Vec<isize> {
    d.iter().map(|&i| i as isize).collect()
}

/// Row max with ±∞ (all-−∞ rows, rows holding +∞) replaced by 0, detached: a stabiliser
/// (subtracting an infinite max would turn the row into NaN).
fn safe_max(x: &Tensor, dims: &[isize]) -> Result<Tensor> {
    let resolved = resolve_dims("amax", dims, x.rank())?;
    if resolved.iter().any(|&d| x.dims()[d] == 0) {
        // An empty reduction: softmax of nothing is empty, logsumexp of nothing −∞ (as in
        // PyTorch); any finite shift gives that.
        let mut shape = x.dims().to_vec();
        for d in resolved {
            shape[d] = 1;
        }
        return Tensor::zeros(&shape, x.dtype());
    }
    let m = x.amax(dims, true)?;
    m.masked_fill(&m.abs()?.eq_scalar(f64::INFINITY)?, 0.0)
}

/// A constant with ones at `idx` along `dim` (the kept-dim layout of `idx`), zeros elsewhere,
/// for op `op`: an error when it cannot be allocated (the input may be a huge broadcast view).
fn one_hot_along(
    op: &'static str,
    idx: &[usize],
    shape: &[usize],
    dim: usize,
    dtype: crate::DType,
) -> Result<Tensor> {
    let n = shape[dim];
    let inner: usize = shape[dim + 1..].iter().product();
    let numel = crate::layout::checked_numel(op, shape)?;
    with_dtype!(dtype, T => {
        let mut v = crate::storage::try_zeroed::<T>(op, shape, numel)?;
        for (flat, &i) in idx.iter().enumerate() {
            let (outer, rest) = (flat / inner, flat % inner);
            v[(outer * n + i) * inner + rest] = T::one();
        }
        Ok(Tensor::from_buf(v, shape))
    })
}
