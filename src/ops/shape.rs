//! Views and reshapes. A view shares storage; its derivative is the view's adjoint, a
//! scatter-add into zeros, whose own derivative is the view again (so any order works).

use std::sync::Arc;

use crate::autograd::{record1, sum_to, Rule};
use crate::error::{Error, Result};
use crate::kernels::strided::{for_each_run, try_gather};
use crate::layout::{checked_numel, resolve_dim, Layout};
use crate::storage::try_zeroed;
use crate::tensor::Tensor;
use crate::with_dtype;

/// A view as a pure function on layouts.
pub(crate) type LayoutFn = Arc<dyn Fn(&Layout) -> Result<Layout> + Send + Sync>;

/// Applies a layout function as a recorded view. Linear: its JVP is the same view of the
/// tangent, its transpose the view's adjoint (a scatter-add into zeros).
pub(crate) fn view_op(x: &Tensor, name: &'static str, f: LayoutFn) -> Result<Tensor> {
    let layout = f(x.layout())?;
    let out = x.with_layout(layout);
    Ok(record1(name, &[x], out, |_| {
        let in_shape = x.dims().to_vec();
        let jf = f.clone();
        Rule::linear1_batched(
            move |t| view_op(t, name, jf.clone()),
            move |g, batched| {
                if batched {
                    batched_view_adjoint(g, &in_shape, name, &f)
                } else {
                    view_adjoint(g, &in_shape, name, f.clone())
                }
            },
        )
    }))
}

/// [`view_adjoint`] for a leading batch of gradients, `g` shaped `[batch] ++ view.shape`:
/// every batch entry scattered into its own zeros of `in_shape`. Unrecorded (batched reverse
/// passes are first order).
fn batched_view_adjoint(
    g: &Tensor,
    in_shape: &[usize],
    name: &'static str,
    f: &LayoutFn,
) -> Result<Tensor> {
    let target = f(&Layout::contiguous(in_shape))?;
    let batch = g.dims().first().copied().unwrap_or(0);
    if g.rank() == 0 || target.shape() != &g.dims()[1..] {
        return Err(Error::shapes(name, g.dims(), target.shape()));
    }
    let m: usize = in_shape.iter().product();
    // One more dim in front: batch entry b scatters into the b-th block of m elements.
    let shape: Vec<usize> = std::iter::once(batch)
        .chain(target.shape().iter().copied())
        .collect();
    let strides: Vec<isize> = std::iter::once(m as isize)
        .chain(target.strides().iter().copied())
        .collect();
    let full: Vec<usize> = std::iter::once(batch)
        .chain(in_shape.iter().copied())
        .collect();
    scatter_add_to_zeros(name, g, &shape, &strides, target.offset(), &full)
}

/// Zeros of `out_shape` (row-major) with each element of `g` added at the position that
/// (`at_shape` = `g`'s shape, `at_strides`, `at_offset`) gives it; repeats accumulate. An
/// error naming the view `op` when the zeros cannot be allocated (the input of a view may be
/// a broadcast far larger than memory).
fn scatter_add_to_zeros(
    op: &'static str,
    g: &Tensor,
    at_shape: &[usize],
    at_strides: &[isize],
    at_offset: usize,
    out_shape: &[usize],
) -> Result<Tensor> {
    let n = checked_numel(op, out_shape)?;
    with_dtype!(g.dtype(), T => {
        let mut buf = try_zeroed::<T>(op, out_shape, n)?;
        let storage = g.storage();
        let src = storage.as_slice::<T>().expect("dtype");
        let gl = g.layout();
        for_each_run(at_shape, [at_strides, gl.strides()], [at_offset, gl.offset()], |[o, s], len, [so, ss]| {
            for i in 0..len as isize {
                buf[(o + i * so) as usize] += src[(s + i * ss) as usize];
            }
        });
        Ok(Tensor::from_buf(buf, out_shape))
    })
}

/// Zeros of `in_shape` with `g` added at the positions the view `f` selects (overlapping
/// positions accumulate).
pub(crate) fn view_adjoint(
    g: &Tensor,
    in_shape: &[usize],
    name: &'static str,
    f: LayoutFn,
) -> Result<Tensor> {
    let target = f(&Layout::contiguous(in_shape))?;
    if target.shape() != g.dims() {
        return Err(Error::shapes(name, g.dims(), target.shape()));
    }
    let out = scatter_add_to_zeros(
        name,
        g,
        target.shape(),
        target.strides(),
        target.offset(),
        in_shape,
    )?;
    // Linear: its JVP is the same scatter-add of the tangent, its transpose the view.
    Ok(record1("view_adjoint", &[g], out, |_| {
        let (jf, jshape) = (f.clone(), in_shape.to_vec());
        Rule::linear1(
            move |t| view_adjoint(t, &jshape, name, jf.clone()),
            move |gg| view_op(gg, name, f.clone()),
        )
    }))
}

/// Row-major copy of a strided tensor for op `op`; gradient passes unchanged.
pub(crate) fn contiguous_copy(op: &'static str, x: &Tensor) -> Result<Tensor> {
    let out = with_dtype!(x.dtype(), T => {
        let storage = x.storage();
        let src = storage.as_slice::<T>().expect("dtype");
        let l = x.layout();
        Tensor::from_buf(try_gather(op, src, l.shape(), l.strides(), l.offset())?, l.shape())
    });
    Ok(record1("contiguous", &[x], out, |_| {
        Rule::linear1_batched(|t| Ok(t.clone()), |g, _| Ok(g.clone()))
    }))
}

impl Tensor {
    /// A row-major copy if the layout is strided; `self` if it is already contiguous.
    /// Gradient flows through. An error when the copy (as large as a broadcast view's
    /// logical size) cannot be allocated.
    ///
    /// ```
    /// use eingrad::{DType, Tensor};
    /// let t = Tensor::arange(0.0, 6.0, 1.0, DType::F32)?.reshape(&[2, 3])?.t()?;
    /// assert!(!t.is_contiguous() && t.contiguous()?.is_contiguous());
    /// let huge = Tensor::ones(&[1, 1], DType::F32)?.expand(&[1 << 31, 1 << 31])?;
    /// assert!(huge.contiguous().is_err());
    /// # Ok::<(), eingrad::Error>(())
    /// ```
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        contiguous_copy("contiguous", self)
    }

    /// Same elements in a new shape: a view when strides allow, else a copy.
    ///
    /// ```
    /// let t = eingrad::Tensor::arange(0.0, 6.0, 1.0, eingrad::DType::F32).unwrap();
    /// let r = t.reshape(&[2, 3]).unwrap();
    /// assert!(r.shares_storage_with(&t));
    /// assert!(t.reshape(&[4]).is_err());
    /// ```
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if checked_numel("reshape", shape)? != self.numel() {
            return Err(Error::ShapeMismatch {
                op: "reshape",
                lhs: self.dims().to_vec(),
                rhs: shape.to_vec(),
                detail: " (element counts differ)".into(),
            });
        }
        if shape == self.dims() {
            return Ok(self.clone());
        }
        let src = match self.layout().reshape_view(shape) {
            Some(l) => self.with_layout(l),
            None => {
                let c = contiguous_copy("reshape", &self.detach())?;
                c.with_layout(Layout::contiguous(shape))
            }
        };
        Ok(record1("reshape", &[self], src, |_| {
            let (in_shape, out_shape) = (self.dims().to_vec(), shape.to_vec());
            Rule::linear1_batched(
                move |t| t.reshape(&out_shape),
                move |g, batched| g.reshape(&batched_dims(g, batched, &in_shape)),
            )
        }))
    }
    /// Reshape where at most one entry is −1 (inferred).
    pub fn view(&self, shape: &[isize]) -> Result<Tensor> {
        let given: Vec<usize> = shape
            .iter()
            .filter(|&&d| d >= 0)
            .map(|&d| d as usize)
            .collect();
        let known = checked_numel("view", &given)?;
        let infer = shape.iter().filter(|&&d| d < 0).count();
        if infer > 1 || shape.iter().any(|&d| d < -1) {
            return Err(Error::arg(
                "view",
                "shape",
                format!("{shape:?}: at most one −1 allowed"),
            ));
        }
        let resolved: Vec<usize> = shape
            .iter()
            .map(|&d| {
                if d < 0 {
                    self.numel().checked_div(known).unwrap_or(0)
                } else {
                    d as usize
                }
            })
            .collect();
        self.reshape(&resolved)
    }
    /// Flattens everything into one dim.
    pub fn flatten(&self) -> Result<Tensor> {
        self.reshape(&[self.numel()])
    }
    /// Reorders dims (a view).
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let out = self.with_layout(self.layout().permute(perm)?);
        Ok(record1("permute", &[self], out, |_| {
            let mut inv = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inv[p] = i;
            }
            let fwd = perm.to_vec();
            let binv: Vec<usize> = std::iter::once(0)
                .chain(inv.iter().map(|&p| p + 1))
                .collect();
            Rule::linear1_batched(
                move |t| t.permute(&fwd),
                move |g, batched| g.permute(if batched { &binv } else { &inv }),
            )
        }))
    }
    /// Swaps two dims (negative dims count from the end).
    pub fn transpose(&self, a: isize, b: isize) -> Result<Tensor> {
        let (a, b) = (
            resolve_dim("transpose", a, self.rank())?,
            resolve_dim("transpose", b, self.rank())?,
        );
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }
    /// Transpose of a matrix (rank 2).
    pub fn t(&self) -> Result<Tensor> {
        if self.rank() != 2 {
            return Err(Error::arg(
                "t",
                "self",
                format!("needs rank 2, shape is {:?}", self.dims()),
            ));
        }
        self.permute(&[1, 0])
    }
    /// Broadcasts to `shape` without copying (PyTorch's `expand`).
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        if shape == self.dims() {
            return Ok(self.clone());
        }
        let out = self.with_layout(self.layout().broadcast_to(shape)?);
        Ok(record1("broadcast_to", &[self], out, |_| {
            let (in_shape, out_shape) = (self.dims().to_vec(), shape.to_vec());
            Rule::linear1_batched(
                move |t| t.broadcast_to(&out_shape),
                move |g, batched| sum_to(g, &in_shape, batched),
            )
        }))
    }
    /// Same as [`Tensor::broadcast_to`].
    pub fn expand(&self, shape: &[usize]) -> Result<Tensor> {
        self.broadcast_to(shape)
    }
    /// `len` elements from `start` along `dim` (a view).
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        view_op(
            self,
            "narrow",
            Arc::new(move |l: &Layout| l.narrow(dim, start, len)),
        )
    }
    /// Elements `start..end` every `step` along `dim` (a view).
    pub fn slice(&self, dim: isize, start: usize, end: usize, step: usize) -> Result<Tensor> {
        view_op(
            self,
            "slice",
            Arc::new(move |l: &Layout| l.slice(dim, start, end, step)),
        )
    }
    /// The diagonal over `dims` (a view): they are removed and one dim is appended last.
    ///
    /// ```
    /// let m = eingrad::Tensor::arange(0.0, 9.0, 1.0, eingrad::DType::F32).unwrap().reshape(&[3, 3]).unwrap();
    /// assert_eq!(m.diagonal(&[0, 1]).unwrap().to_vec::<f32>().unwrap(), vec![0.0, 4.0, 8.0]);
    /// ```
    pub fn diagonal(&self, dims: &[usize]) -> Result<Tensor> {
        let dims = dims.to_vec();
        view_op(
            self,
            "diagonal",
            Arc::new(move |l: &Layout| l.diagonal(&dims)),
        )
    }
    /// Sliding windows of `size` every `step` along `dim`; the window dim is appended (a view).
    pub fn unfold(&self, dim: isize, size: usize, step: usize) -> Result<Tensor> {
        view_op(
            self,
            "unfold",
            Arc::new(move |l: &Layout| l.unfold(dim, size, step)),
        )
    }
    /// Reverses the listed dims (a view with negative strides).
    pub fn flip(&self, dims: &[isize]) -> Result<Tensor> {
        let out = self.with_layout(self.layout().flip(dims)?);
        Ok(record1("flip", &[self], out, |_| {
            let d = dims.to_vec();
            let jd = d.clone();
            Rule::linear1_batched(
                move |t| t.flip(&jd),
                move |g, batched| g.flip(&batched_dim_list(&d, batched)),
            )
        }))
    }
    /// Inserts a size-1 dim.
    pub fn unsqueeze(&self, dim: isize) -> Result<Tensor> {
        let l = self.layout().unsqueeze(dim)?;
        self.reshape(l.shape())
    }
    /// Removes a size-1 dim (`Some(d)`) or all of them (`None`).
    pub fn squeeze(&self, dim: Option<isize>) -> Result<Tensor> {
        let l = self.layout().squeeze(dim)?;
        self.reshape(l.shape())
    }
}

/// `shape` with `g`'s leading batch dim in front when `batched`.
pub(crate) fn batched_dims(g: &Tensor, batched: bool, shape: &[usize]) -> Vec<usize> {
    let lead = g.dims().first().copied().filter(|_| batched);
    lead.into_iter().chain(shape.iter().copied()).collect()
}

/// Dim indices of an unbatched tensor moved past a leading batch dim when `batched`
/// (negative dims count from the end and stay as they are).
pub(crate) fn batched_dim_list(dims: &[isize], batched: bool) -> Vec<isize> {
    dims.iter()
        .map(|&d| if batched && d >= 0 { d + 1 } else { d })
        .collect()
}
