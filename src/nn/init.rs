//! Parameter initialisers, PyTorch's `torch.nn.init`.
//!
//! Each scheme comes twice: `scheme(shape, …, dtype, seed)` returns a fresh leaf that
//! requires grad, and `scheme_(tensor, …, seed)` overwrites an existing parameter in place
//! (through [`Tensor::update_data`]: no autograd record, the tensor keeps its id). The same
//! shape, dtype and seed give the same values either way.
//!
//! ```
//! use eingrad::nn::init::{self, FanMode, Nonlinearity};
//! use eingrad::DType;
//! let w = init::kaiming_uniform(&[4, 9], FanMode::FanIn, Nonlinearity::Relu, DType::F32, 7).unwrap();
//! let bound = (2.0f64).sqrt() * (3.0 / 9.0f64).sqrt();
//! assert!(w.to_vec_f64().iter().all(|v| v.abs() <= bound));
//! init::zeros_(&w).unwrap();
//! assert!(w.to_vec_f64().iter().all(|&v| v == 0.0));
//! ```

use crate::dtype::{DType, Float};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::with_dtype;

/// Which fan a variance-scaling initialiser preserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanMode {
    /// Preserve the variance of activations in the forward pass.
    FanIn,
    /// Preserve the variance of gradients in the backward pass.
    FanOut,
}

/// The nonlinearity a layer feeds, for the recommended gain ([`Nonlinearity::gain`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Nonlinearity {
    /// Linear / identity / convolution: gain 1.
    Linear,
    /// Sigmoid: gain 1.
    Sigmoid,
    /// Tanh: gain 5/3.
    Tanh,
    /// ReLU: gain √2.
    Relu,
    /// Leaky ReLU with this negative slope: gain √(2 / (1 + slope²)).
    LeakyRelu(f64),
    /// SELU: gain 3/4.
    Selu,
}

impl Nonlinearity {
    /// PyTorch's `calculate_gain`.
    ///
    /// ```
    /// use eingrad::nn::init::Nonlinearity;
    /// assert_eq!(Nonlinearity::Tanh.gain(), 5.0 / 3.0);
    /// assert!((Nonlinearity::LeakyRelu(5f64.sqrt()).gain() - (1.0f64 / 3.0).sqrt()).abs() < 1e-15);
    /// ```
    pub fn gain(self) -> f64 {
        match self {
            Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
            Nonlinearity::Tanh => 5.0 / 3.0,
            Nonlinearity::Relu => 2f64.sqrt(),
            Nonlinearity::LeakyRelu(a) => (2.0 / (1.0 + a * a)).sqrt(),
            Nonlinearity::Selu => 0.75,
        }
    }
}

/// `(fan_in, fan_out)` of a weight of shape `(out, in, *kernel)`: `in·∏kernel` and
/// `out·∏kernel`. Needs rank ≥ 2.
///
/// ```
/// assert_eq!(eingrad::nn::init::fans(&[64, 32, 3]).unwrap(), (96, 192));
/// assert!(eingrad::nn::init::fans(&[5]).is_err());
/// ```
pub fn fans(shape: &[usize]) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::arg(
            "init::fans",
            "shape",
            format!(
                "fan in and fan out need a tensor of rank ≥ 2, shape is {shape:?} (rank {})",
                shape.len()
            ),
        ));
    }
    let field: usize = shape[2..].iter().product();
    Ok((shape[1] * field, shape[0] * field))
}

fn leaf(t: Tensor) -> Tensor {
    t.requires_grad_(true)
}

/// A fresh parameter holding `values` (row-major, of `shape`).
fn fresh(values: &[f64], shape: &[usize], dtype: DType) -> Result<Tensor> {
    Ok(leaf(Tensor::from_f64s(values, shape, dtype)?))
}

fn check_uniform(op: &'static str, low: f64, high: f64) -> Result<()> {
    if !(low.is_finite() && high.is_finite() && low <= high) {
        return Err(Error::arg(
            op,
            "low/high",
            format!("need finite low ≤ high, got low = {low}, high = {high}"),
        ));
    }
    Ok(())
}

fn check_normal(op: &'static str, mean: f64, std: f64) -> Result<()> {
    if !(mean.is_finite() && std.is_finite() && std >= 0.0) {
        return Err(Error::arg(
            op,
            "std",
            format!("need a finite mean and a finite std ≥ 0, got mean = {mean}, std = {std}"),
        ));
    }
    Ok(())
}

/// Overwrites `t` with `values` (row-major, as f64), converting to its dtype.
fn fill(op: &'static str, t: &Tensor, values: &[f64]) -> Result<()> {
    if !t.is_contiguous() || t.layout().offset() != 0 {
        return Err(Error::arg(
            op,
            "tensor",
            format!(
                "must be a contiguous tensor that owns its storage (shape {:?}, strides {:?})",
                t.dims(),
                t.strides()
            ),
        ));
    }
    with_dtype!(t.dtype(), T => t.update_data::<T>(|buf| {
        for (d, &v) in buf.iter_mut().zip(values) {
            *d = T::of(v);
        }
    }))
}

/// Samples of U(low, high) as f64 (the stream `Tensor::uniform` draws).
fn uniform_values(shape: &[usize], low: f64, high: f64, seed: u64) -> Result<Vec<f64>> {
    Ok(Tensor::uniform(shape, low, high, DType::F64, seed)?.to_vec_f64())
}

/// Samples of N(mean, std²) as f64 (the stream `Tensor::randn` draws, scaled).
fn normal_values(shape: &[usize], mean: f64, std: f64, seed: u64) -> Result<Vec<f64>> {
    let mut v = Tensor::randn(shape, DType::F64, seed)?.to_vec_f64();
    for x in &mut v {
        *x = mean + std * *x;
    }
    Ok(v)
}

fn kaiming_std(op: &'static str, shape: &[usize], mode: FanMode, nl: Nonlinearity) -> Result<f64> {
    let (fan_in, fan_out) = fans(shape).map_err(|_| {
        Error::arg(
            op,
            "shape",
            format!("needs rank ≥ 2 to compute fans, shape is {shape:?}"),
        )
    })?;
    let fan = match mode {
        FanMode::FanIn => fan_in,
        FanMode::FanOut => fan_out,
    };
    if fan == 0 {
        return Err(Error::arg(
            op,
            "shape",
            format!("the {mode:?} of shape {shape:?} is 0"),
        ));
    }
    Ok(nl.gain() / (fan as f64).sqrt())
}

fn xavier_std(op: &'static str, shape: &[usize], gain: f64) -> Result<f64> {
    let (fan_in, fan_out) = fans(shape).map_err(|_| {
        Error::arg(
            op,
            "shape",
            format!("needs rank ≥ 2 to compute fans, shape is {shape:?}"),
        )
    })?;
    if fan_in + fan_out == 0 {
        return Err(Error::arg(
            op,
            "shape",
            format!("fan_in + fan_out of shape {shape:?} is 0"),
        ));
    }
    if !gain.is_finite() {
        return Err(Error::arg(
            op,
            "gain",
            format!("must be finite, got {gain}"),
        ));
    }
    Ok(gain * (2.0 / (fan_in + fan_out) as f64).sqrt())
}

/// A fresh parameter filled with `value`.
pub fn constant(shape: &[usize], value: f64, dtype: DType) -> Result<Tensor> {
    Ok(leaf(Tensor::full(shape, value, dtype)?))
}
/// Fills `t` with `value` in place.
pub fn constant_(t: &Tensor, value: f64) -> Result<()> {
    fill("init::constant_", t, &vec![value; t.numel()])
}
/// A fresh parameter of zeros.
pub fn zeros(shape: &[usize], dtype: DType) -> Result<Tensor> {
    constant(shape, 0.0, dtype)
}
/// Fills `t` with zeros in place.
pub fn zeros_(t: &Tensor) -> Result<()> {
    fill("init::zeros_", t, &vec![0.0; t.numel()])
}
/// A fresh parameter of ones.
pub fn ones(shape: &[usize], dtype: DType) -> Result<Tensor> {
    constant(shape, 1.0, dtype)
}

/// A fresh parameter with samples of U(low, high).
///
/// ```
/// let w = eingrad::nn::init::uniform(&[100], -0.5, 0.5, eingrad::DType::F64, 3).unwrap();
/// assert!(w.requires_grad() && w.to_vec_f64().iter().all(|v| v.abs() <= 0.5));
/// assert!(eingrad::nn::init::uniform(&[2], 1.0, 0.0, eingrad::DType::F64, 3).is_err());
/// ```
pub fn uniform(shape: &[usize], low: f64, high: f64, dtype: DType, seed: u64) -> Result<Tensor> {
    check_uniform("init::uniform", low, high)?;
    fresh(&uniform_values(shape, low, high, seed)?, shape, dtype)
}
/// Fills `t` with samples of U(low, high) in place.
pub fn uniform_(t: &Tensor, low: f64, high: f64, seed: u64) -> Result<()> {
    check_uniform("init::uniform_", low, high)?;
    fill(
        "init::uniform_",
        t,
        &uniform_values(t.dims(), low, high, seed)?,
    )
}

/// A fresh parameter with samples of N(mean, std²).
pub fn normal(shape: &[usize], mean: f64, std: f64, dtype: DType, seed: u64) -> Result<Tensor> {
    check_normal("init::normal", mean, std)?;
    fresh(&normal_values(shape, mean, std, seed)?, shape, dtype)
}
/// Fills `t` with samples of N(mean, std²) in place.
pub fn normal_(t: &Tensor, mean: f64, std: f64, seed: u64) -> Result<()> {
    check_normal("init::normal_", mean, std)?;
    fill(
        "init::normal_",
        t,
        &normal_values(t.dims(), mean, std, seed)?,
    )
}

/// He/Kaiming uniform: U(−b, b) with b = gain·√(3 / fan). PyTorch's `nn.Linear` default is
/// `FanIn` with `LeakyRelu(√5)`, i.e. b = 1/√fan_in.
pub fn kaiming_uniform(
    shape: &[usize],
    mode: FanMode,
    nonlinearity: Nonlinearity,
    dtype: DType,
    seed: u64,
) -> Result<Tensor> {
    let b = 3f64.sqrt() * kaiming_std("init::kaiming_uniform", shape, mode, nonlinearity)?;
    uniform(shape, -b, b, dtype, seed)
}
/// [`kaiming_uniform`] in place.
pub fn kaiming_uniform_(
    t: &Tensor,
    mode: FanMode,
    nonlinearity: Nonlinearity,
    seed: u64,
) -> Result<()> {
    let b = 3f64.sqrt() * kaiming_std("init::kaiming_uniform_", t.dims(), mode, nonlinearity)?;
    uniform_(t, -b, b, seed)
}
/// He/Kaiming normal: N(0, (gain / √fan)²).
pub fn kaiming_normal(
    shape: &[usize],
    mode: FanMode,
    nonlinearity: Nonlinearity,
    dtype: DType,
    seed: u64,
) -> Result<Tensor> {
    let s = kaiming_std("init::kaiming_normal", shape, mode, nonlinearity)?;
    normal(shape, 0.0, s, dtype, seed)
}
/// [`kaiming_normal`] in place.
pub fn kaiming_normal_(
    t: &Tensor,
    mode: FanMode,
    nonlinearity: Nonlinearity,
    seed: u64,
) -> Result<()> {
    let s = kaiming_std("init::kaiming_normal_", t.dims(), mode, nonlinearity)?;
    normal_(t, 0.0, s, seed)
}

/// Glorot/Xavier uniform: U(−b, b) with b = gain·√(6 / (fan_in + fan_out)).
pub fn xavier_uniform(shape: &[usize], gain: f64, dtype: DType, seed: u64) -> Result<Tensor> {
    let b = 3f64.sqrt() * xavier_std("init::xavier_uniform", shape, gain)?;
    uniform(shape, -b, b, dtype, seed)
}
/// [`xavier_uniform`] in place.
pub fn xavier_uniform_(t: &Tensor, gain: f64, seed: u64) -> Result<()> {
    let b = 3f64.sqrt() * xavier_std("init::xavier_uniform_", t.dims(), gain)?;
    uniform_(t, -b, b, seed)
}
/// Glorot/Xavier normal: N(0, gain²·2 / (fan_in + fan_out)).
pub fn xavier_normal(shape: &[usize], gain: f64, dtype: DType, seed: u64) -> Result<Tensor> {
    let s = xavier_std("init::xavier_normal", shape, gain)?;
    normal(shape, 0.0, s, dtype, seed)
}
/// [`xavier_normal`] in place.
pub fn xavier_normal_(t: &Tensor, gain: f64, seed: u64) -> Result<()> {
    let s = xavier_std("init::xavier_normal_", t.dims(), gain)?;
    normal_(t, 0.0, s, seed)
}
