//! [`Conv1d`]: a 1-d convolution layer (kernel, stride, dilation, groups, bias, and causal
//! padding) over [`Tensor::conv1d`], whose contraction is one einsum over an unfolded view.

use super::init::{self, FanMode, Nonlinearity};
use super::{as_parameter, derive_seed, Module};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops::conv::{Conv1dOptions, Padding};
use crate::tensor::Tensor;

/// `y[b, o, t] = bias[o] + Σ_{c, j} weight[o, c, j] · x[b, g·C + c, t·stride + j·dilation −
/// pad_left]` with channels in `groups` groups, as `torch.nn.Conv1d`. With
/// [`Padding::Causal`] output `t` sees inputs `≤ t` only (the mLSTM's causal conv).
///
/// ```
/// use eingrad::nn::{Conv1d, Module};
/// use eingrad::{Conv1dOptions, DType, Padding, Tensor};
/// let conv = Conv1d::new(4, 4, 3, Conv1dOptions::default().padding(Padding::Causal).groups(4),
///                        true, DType::F32, 0).unwrap();
/// assert_eq!(conv.weight().dims(), &[4, 1, 3]);
/// let y = conv.forward(&Tensor::ones(&[2, 4, 10], DType::F32).unwrap()).unwrap();
/// assert_eq!(y.dims(), &[2, 4, 10]);
/// ```
#[derive(Clone)]
pub struct Conv1d {
    weight: Tensor,
    bias: Option<Tensor>,
    opts: Conv1dOptions,
}

impl Conv1d {
    /// A layer from `in_channels` to `out_channels` with kernel size `kernel_size`, and
    /// PyTorch's default init (weight and bias from U(−1/√fan_in, 1/√fan_in), fan_in =
    /// in_channels / groups · kernel_size) drawn from `seed`.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel_size: usize,
        opts: Conv1dOptions,
        bias: bool,
        dtype: DType,
        seed: u64,
    ) -> Result<Conv1d> {
        const OP: &str = "Conv1d::new";
        for (name, v) in [
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("kernel_size", kernel_size),
            ("groups", opts.groups),
        ] {
            if v == 0 {
                return Err(Error::arg(OP, name, "must be at least 1"));
            }
        }
        if !in_channels.is_multiple_of(opts.groups) || !out_channels.is_multiple_of(opts.groups) {
            return Err(Error::arg(
                OP,
                "groups",
                format!(
                    "{} must divide in_channels = {in_channels} and out_channels = \
                     {out_channels}",
                    opts.groups
                ),
            ));
        }
        let shape = [out_channels, in_channels / opts.groups, kernel_size];
        let weight = init::kaiming_uniform(
            &shape,
            FanMode::FanIn,
            Nonlinearity::LeakyRelu(5f64.sqrt()),
            dtype,
            derive_seed(seed, 0),
        )?;
        let bias = if bias {
            let bound = 1.0 / ((shape[1] * kernel_size) as f64).sqrt();
            Some(init::uniform(
                &[out_channels],
                -bound,
                bound,
                dtype,
                derive_seed(seed, 1),
            )?)
        } else {
            None
        };
        Ok(Conv1d { weight, bias, opts })
    }
    /// A layer with the given weight `(out, in / groups, k)` and optional bias `(out)`;
    /// leaves are marked `requires_grad`. Shapes are checked at the first forward.
    pub fn from_tensors(
        weight: Tensor,
        bias: Option<Tensor>,
        opts: Conv1dOptions,
    ) -> Result<Conv1d> {
        if weight.rank() != 3 {
            return Err(Error::arg(
                "Conv1d::from_tensors",
                "weight",
                format!(
                    "must have shape (out, in / groups, k), got {:?}",
                    weight.dims()
                ),
            ));
        }
        if let Some(b) = &bias {
            if b.dims() != [weight.dims()[0]] {
                return Err(Error::arg(
                    "Conv1d::from_tensors",
                    "bias",
                    format!(
                        "must have shape [{}] = [out_channels], got {:?}",
                        weight.dims()[0],
                        b.dims()
                    ),
                ));
            }
        }
        Ok(Conv1d {
            weight: as_parameter(weight),
            bias: bias.map(as_parameter),
            opts,
        })
    }
    /// The kernel, `(out, in / groups, k)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
    /// The bias, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
    /// Stride, padding, dilation and groups.
    pub fn options(&self) -> Conv1dOptions {
        self.opts
    }
    /// Whether the padding is causal.
    pub fn is_causal(&self) -> bool {
        matches!(self.opts.padding, Padding::Causal)
    }
}

impl Module for Conv1d {
    /// `x` of shape `(batch, in_channels, length)`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.conv1d(&self.weight, self.bias.as_ref(), self.opts)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = vec![("weight".to_string(), self.weight.clone())];
        v.extend(self.bias.iter().map(|b| ("bias".to_string(), b.clone())));
        v
    }
}

impl std::fmt::Debug for Conv1d {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.weight.dims();
        write!(
            f,
            "Conv1d({}, {}, kernel_size={}, {:?}, bias={})",
            d[1] * self.opts.groups,
            d[0],
            d[2],
            self.opts,
            self.bias.is_some()
        )
    }
}
