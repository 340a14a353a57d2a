//! conv1d as pad → unfold → einsum.
//!
//! A 1-D convolution (PyTorch's cross-correlation) is multilinear in input and weight, so it
//! is one einsum over a strided window view of the padded input:
//! `y[b,o,i] = bias[o] + Σ_{c,m} w[o,c,m] · xpad[b, g·cin_g + c, i·stride + m·dilation]`.
//! Padding, unfolding and the dilation slice are views (or a padded copy) whose adjoints are
//! differentiable, and einsum's derivative is einsum, so conv1d has gradients of any order
//! without a rule of its own.

use crate::einsum::einsum;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// How the length dim of a [`Tensor::conv1d`] input is padded with zeros.
///
/// ```
/// use eingrad::ops::conv::Padding;
/// assert_eq!(Padding::Causal.amounts(3, 2), (4, 0));
/// assert_eq!(Padding::Symmetric(1).amounts(3, 1), (1, 1));
/// assert_eq!(Padding::LeftRight(0, 2).amounts(3, 1), (0, 2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// The same number of zeros on both ends (`Symmetric(0)`: no padding).
    Symmetric(usize),
    /// `(left, right)` zeros.
    LeftRight(usize, usize),
    /// `dilation·(k − 1)` zeros on the left only: output `i` sees inputs `≤ i` and the
    /// output length equals the input length when `stride` is 1.
    Causal,
}

impl Default for Padding {
    /// No padding.
    fn default() -> Self {
        Padding::Symmetric(0)
    }
}

impl Padding {
    /// `(left, right)` zeros for a kernel of size `kernel` with `dilation`.
    ///
    /// ```
    /// assert_eq!(eingrad::ops::conv::Padding::Causal.amounts(5, 1), (4, 0));
    /// ```
    pub fn amounts(self, kernel: usize, dilation: usize) -> (usize, usize) {
        match self {
            Padding::Symmetric(p) => (p, p),
            Padding::LeftRight(l, r) => (l, r),
            Padding::Causal => (dilation.saturating_mul(kernel.saturating_sub(1)), 0),
        }
    }
}

/// Options of [`Tensor::conv1d`]; the default is stride 1, no padding, dilation 1, one
/// group (the setters chain).
///
/// ```
/// use eingrad::ops::conv::{Conv1dOptions, Padding};
/// let o = Conv1dOptions::default().stride(2).padding(Padding::Causal);
/// assert_eq!((o.stride, o.dilation, o.groups), (2, 1, 1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv1dOptions {
    /// Step between output positions (≥ 1).
    pub stride: usize,
    /// Zero padding of the length dim.
    pub padding: Padding,
    /// Step between kernel taps (≥ 1).
    pub dilation: usize,
    /// Channel groups (≥ 1, dividing both channel counts).
    pub groups: usize,
}

impl Default for Conv1dOptions {
    fn default() -> Self {
        Conv1dOptions {
            stride: 1,
            padding: Padding::default(),
            dilation: 1,
            groups: 1,
        }
    }
}

impl Conv1dOptions {
    /// Sets `stride`.
    ///
    /// ```
    /// use eingrad::ops::conv::{Conv1dOptions, Padding};
    /// assert_eq!(Conv1dOptions::default().stride(2).stride, 2);
    /// ```
    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }
    /// Sets `padding`.
    ///
    /// ```
    /// use eingrad::ops::conv::{Conv1dOptions, Padding};
    /// assert_eq!(Conv1dOptions::default().padding(Padding::Causal).padding, Padding::Causal);
    /// ```
    pub fn padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }
    /// Sets `dilation`.
    ///
    /// ```
    /// use eingrad::ops::conv::{Conv1dOptions, Padding};
    /// assert_eq!(Conv1dOptions::default().dilation(3).dilation, 3);
    /// ```
    pub fn dilation(mut self, dilation: usize) -> Self {
        self.dilation = dilation;
        self
    }
    /// Sets `groups`.
    ///
    /// ```
    /// use eingrad::ops::conv::{Conv1dOptions, Padding};
    /// assert_eq!(Conv1dOptions::default().groups(4).groups, 4);
    /// ```
    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }
}

impl Tensor {
    /// 1-D convolution (cross-correlation, as in PyTorch) of `self`, shaped
    /// `(batch, c_in, length)`, with `weight` `(c_out, c_in / groups, k)` and an optional
    /// `bias` `(c_out)`. The result is `(batch, c_out, l_out)` with
    /// `l_out = (length + left + right − dilation·(k − 1) − 1) / stride + 1`.
    ///
    /// Built as pad → unfold → einsum, so gradients of every order come from those ops.
    ///
    /// ```
    /// use eingrad::{Tensor, DType, ops::conv::{Conv1dOptions, Padding}};
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[1, 1, 4]).unwrap();
    /// let w = Tensor::from_vec(vec![1.0f64, -1.0], &[1, 1, 2]).unwrap();
    /// let y = x.conv1d(&w, None, Conv1dOptions::default()).unwrap();
    /// assert_eq!(y.to_vec::<f64>().unwrap(), vec![-1.0, -1.0, -1.0]);
    /// let y = x.conv1d(&w, None, Conv1dOptions::default().padding(Padding::Causal)).unwrap();
    /// assert_eq!(y.to_vec::<f64>().unwrap(), vec![-1.0, -1.0, -1.0, -1.0]);
    /// ```
    pub fn conv1d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        opts: Conv1dOptions,
    ) -> Result<Tensor> {
        const OP: &str = "conv1d";
        let Conv1dOptions {
            stride,
            padding,
            dilation,
            groups,
        } = opts;
        for (name, v) in [
            ("stride", stride),
            ("dilation", dilation),
            ("groups", groups),
        ] {
            if v == 0 {
                return Err(Error::arg(OP, name, "must be at least 1"));
            }
        }
        if self.rank() != 3 {
            return Err(Error::arg(
                OP,
                "input",
                format!(
                    "needs rank 3 (batch, c_in, length), shape is {:?}",
                    self.dims()
                ),
            ));
        }
        if weight.rank() != 3 {
            return Err(Error::arg(
                OP,
                "weight",
                format!(
                    "needs rank 3 (c_out, c_in / groups, k), shape is {:?}",
                    weight.dims()
                ),
            ));
        }
        if weight.dtype() != self.dtype() {
            return Err(Error::DTypeMismatch {
                op: OP,
                lhs: self.dtype(),
                rhs: weight.dtype(),
            });
        }
        let (batch, c_in, length) = (self.dims()[0], self.dims()[1], self.dims()[2]);
        let (c_out, cin_g, k) = (weight.dims()[0], weight.dims()[1], weight.dims()[2]);
        if cin_g.checked_mul(groups) != Some(c_in) {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: self.dims().to_vec(),
                rhs: weight.dims().to_vec(),
                detail: format!(
                    " (input has c_in = {c_in} channels but weight expects groups · weight.shape[1] = {groups} · {cin_g})"
                ),
            });
        }
        if c_out % groups != 0 {
            return Err(Error::arg(
                OP,
                "weight",
                format!(
                    "c_out = {c_out} (weight shape {:?}) is not divisible by groups = {groups}",
                    weight.dims()
                ),
            ));
        }
        if k == 0 {
            return Err(Error::arg(
                OP,
                "weight",
                format!("kernel size is 0 (weight shape {:?})", weight.dims()),
            ));
        }
        if let Some(b) = bias {
            if b.dims() != [c_out] {
                return Err(Error::ShapeMismatch {
                    op: OP,
                    lhs: vec![c_out],
                    rhs: b.dims().to_vec(),
                    detail: " (bias must have shape (c_out))".into(),
                });
            }
            if b.dtype() != self.dtype() {
                return Err(Error::DTypeMismatch {
                    op: OP,
                    lhs: self.dtype(),
                    rhs: b.dtype(),
                });
            }
        }
        let (left, right) = padding.amounts(k, dilation);
        let span = dilation
            .checked_mul(k - 1)
            .and_then(|s| s.checked_add(1))
            .ok_or_else(|| {
                Error::arg(
                    OP,
                    "dilation",
                    format!("dilation {dilation} · (k − 1) overflows"),
                )
            })?;
        let padded = length
            .checked_add(left)
            .and_then(|s| s.checked_add(right))
            .ok_or_else(|| Error::arg(OP, "padding", format!("{padding:?} overflows")))?;
        if padded < span {
            return Err(Error::arg(
                OP,
                "input",
                format!(
                    "length {length} padded by ({left}, {right}) is shorter than the kernel span \
                     dilation · (k − 1) + 1 = {span} (input {:?}, weight {:?}): the output would be empty",
                    self.dims(),
                    weight.dims()
                ),
            ));
        }
        let xp = if left == 0 && right == 0 {
            self.clone()
        } else {
            self.pad_dim(2, left, right, 0.0)?
        };
        // (batch, c_in, l_out, span) windows, then every `dilation`-th tap: (…, l_out, k)
        let mut windows = xp.unfold(2, span, stride)?;
        if dilation > 1 {
            windows = windows.slice(3, 0, span, dilation)?;
        }
        let l_out = windows.dims()[2];
        let y = if groups == 1 {
            einsum("bcik,ock->boi", &[&windows, weight])?
        } else {
            let xw = windows.reshape(&[batch, groups, cin_g, l_out, k])?;
            let wg = weight.reshape(&[groups, c_out / groups, cin_g, k])?;
            einsum("bgcik,gock->bgoi", &[&xw, &wg])?.reshape(&[batch, c_out, l_out])?
        };
        match bias {
            Some(b) => y.add(&b.reshape(&[c_out, 1])?),
            None => Ok(y),
        }
    }
}
