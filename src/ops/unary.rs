//! Unary elementwise math and activations, each with its derivative rule.

use super::{map1, saved_output};
use crate::autograd::record1_jvp;
use crate::dtype::Float;
use crate::error::Result;
use crate::tensor::Tensor;

/// Stable log σ(x): x>0: −log(1+e^−x); else x − log(1+e^x). logσ(−∞) = −∞.
fn log_sigmoid<T: Float>(x: T) -> T {
    if x > T::zero() {
        -(-x).exp().ln_1p()
    } else {
        x - x.exp().ln_1p()
    }
}
fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}
fn softplus<T: Float>(x: T) -> T {
    // log(1 + e^x) = max(x, 0) + log1p(e^-|x|)
    x.max(T::zero()) + (-x.abs()).exp().ln_1p()
}
fn erf<T: Float>(x: T) -> T {
    T::of(libm::erf(x.f64()))
}

/// Defines a unary elementwise op with its backward and forward-mode (JVP) rules.
///
/// `$rule` is `g·f'(x)` written in public tensor ops (`$x` the input, `$y()` the output,
/// `$g` the incoming gradient). An elementwise op's Jacobian is diagonal, hence its own
/// transpose: the JVP rule is the same expression with the tangent in place of `g`, so the
/// conventions at kinks (abs'(0) = 0) and at ±∞ are exactly the backward rule's. With a
/// `fused` rule, both directions take one fused pass `g·f'(x, y)` when nothing is being
/// recorded (first order), and the differentiable `$rule` otherwise. Both broadcast, so the
/// backward rule also serves batched reverse passes (gradients `[batch] ++ x.shape`).
macro_rules! unary_op {
    ($(#[$doc:meta])* $name:ident, |$v:ident| $fwd:expr, |$x:ident, $y:ident, $g:ident| $rule:expr
     $(, fused |$gv:ident, $xv:ident, $yv:ident| $d:expr)?) => {
        $(#[$doc])*
        pub fn $name(&self) -> Result<Tensor> {
            let out = map1!(stringify!($name), self, |$v| $fwd)?;
            let saved_in = self.clone();
            let saved_out = out.detach();
            let backward = move |$g: &Tensor, _: &[bool]| {
                // First order (no graph recorded): one fused pass g·f'(x, y).
                $(
                    if !crate::autograd::is_grad_enabled() {
                        let fused = crate::with_dtype!($g.dtype(), T => crate::kernels::elementwise::map_ternary::<T>(
                            stringify!($name), $g, &saved_in, &saved_out,
                            #[allow(unused_variables)] |$gv: T, $xv: T, $yv: T| $d))?;
                        return Ok(vec![Some(fused)]);
                    }
                )?
                #[allow(unused_variables)]
                let $x = &saved_in;
                #[allow(unused_variables)]
                let $y = || saved_output(&saved_out, || saved_in.$name());
                #[allow(clippy::redundant_closure_call)]
                Ok(vec![Some($rule?)])
            };
            // Forward mode: the same rule with the tangent in place of g (None stays None).
            let (jx, jy) = (self.clone(), out.detach());
            let jvp = move |t: &[Option<Tensor>]| -> Result<Option<Tensor>> {
                let Some($g) = &t[0] else { return Ok(None) };
                $(
                    if !crate::autograd::is_grad_enabled() {
                        return Ok(Some(crate::with_dtype!($g.dtype(), T => crate::kernels::elementwise::map_ternary::<T>(
                            stringify!($name), $g, &jx, &jy,
                            #[allow(unused_variables)] |$gv: T, $xv: T, $yv: T| $d))?));
                    }
                )?
                #[allow(unused_variables)]
                let $x = &jx;
                #[allow(unused_variables)]
                let $y = || saved_output(&jy, || jx.$name());
                #[allow(clippy::redundant_closure_call)]
                Ok(Some($rule?))
            };
            // `g·f'(x)` in broadcasting ops is the same rule for a leading batch of
            // gradients `[batch] ++ x.shape`: it serves batched reverse passes as is.
            Ok(crate::autograd::record1_jvp_broadcasting(
                stringify!($name),
                &[self],
                out,
                backward,
                jvp,
            ))
        }
    };
}

impl Tensor {
    unary_op!(
        /// −x.
        neg, |v| -v, |x, y, g| g.neg());
    unary_op!(
        /// |x|; derivative sign(x), 0 at 0 (PyTorch's convention).
        abs, |v| v.abs(), |x, y, g| g.mul(&x.sign()?));
    unary_op!(
        /// eˣ; exp(−∞) = 0.
        ///
        /// ```
        /// let t = eingrad::Tensor::from_vec(vec![0.0f64, f64::NEG_INFINITY], &[2]).unwrap();
        /// assert_eq!(t.exp().unwrap().to_vec::<f64>().unwrap(), vec![1.0, 0.0]);
        /// ```
        exp, |v| v.exp(), |x, y, g| g.mul(&y()?), fused |g, x, y| g * y);
    unary_op!(
        /// Natural log.
        log, |v| v.ln(), |x, y, g| g.div(x), fused |g, x, y| g / x);
    unary_op!(
        /// log(1 + x), accurate near 0.
        log1p, |v| v.ln_1p(), |x, y, g| g.div(&x.add_scalar(1.0)?));
    unary_op!(
        /// √x.
        sqrt, |v| v.sqrt(), |x, y, g| g.div(&y()?.mul_scalar(2.0)?));
    unary_op!(
        /// 1/√x.
        rsqrt, |v| v.sqrt().recip(), |x, y, g| g.mul(&y()?.powf(3.0)?.mul_scalar(-0.5)?));
    unary_op!(
        /// sin x.
        sin, |v| v.sin(), |x, y, g| g.mul(&x.cos()?), fused |g, x, y| g * x.cos());
    unary_op!(
        /// cos x.
        cos, |v| v.cos(), |x, y, g| g.mul(&x.sin()?.neg()?), fused |g, x, y| -g * x.sin());
    unary_op!(
        /// tanh x.
        tanh, |v| v.tanh(), |x, y, g| { let y = y()?; g.mul(&y.mul(&y)?.neg()?.add_scalar(1.0)?) }, fused |g, x, y| g * (T::one() - y * y));
    unary_op!(
        /// σ(x) = 1/(1+e^−x), computed without overflow.
        sigmoid, |v| sigmoid(v), |x, y, g| { let y = y()?; g.mul(&y.mul(&y.neg()?.add_scalar(1.0)?)?) }, fused |g, x, y| g * y * (T::one() - y));
    unary_op!(
        /// log σ(x), stable; logsigmoid(−∞) = −∞.
        logsigmoid, |v| log_sigmoid(v), |x, y, g| g.mul(&x.neg()?.sigmoid()?));
    unary_op!(
        /// log(1 + eˣ), stable.
        softplus, |v| softplus(v), |x, y, g| g.mul(&x.sigmoid()?));
    unary_op!(
        /// max(x, 0); derivative 0 at 0.
        relu, |v| v.max(T::zero()), |x, y, g| g.mul(&x.gt_scalar(0.0)?), fused |g, x, y| if x > T::zero() { g } else { T::zero() });
    unary_op!(
        /// The Gauss error function.
        erf, |v| erf(v), |x, y, g| g.mul(&x.mul(x)?.neg()?.exp()?.mul_scalar(std::f64::consts::FRAC_2_SQRT_PI)?));
    unary_op!(
    /// GELU, exact (erf) form: x·Φ(x).
    gelu, |v| v * T::of(0.5) * (T::one() + erf(v * T::of(std::f64::consts::FRAC_1_SQRT_2))),
    |x, y, g| {
        let cdf = x.mul_scalar(std::f64::consts::FRAC_1_SQRT_2)?.erf()?.add_scalar(1.0)?.mul_scalar(0.5)?;
        let pdf = x.mul(x)?.mul_scalar(-0.5)?.exp()?.mul_scalar(1.0 / (2.0 * std::f64::consts::PI).sqrt())?;
        g.mul(&cdf.add(&x.mul(&pdf)?)?)
    });
    unary_op!(
    /// SiLU (swish): x·σ(x).
    silu, |v| v * sigmoid(v), |x, y, g| {
        let s = x.sigmoid()?;
        g.mul(&s.mul(&x.mul(&s.neg()?.add_scalar(1.0)?)?.add_scalar(1.0)?)?)
    });

    /// sign(x) ∈ {−1, 0, 1} (NaN stays NaN); no gradient.
    pub fn sign(&self) -> Result<Tensor> {
        map1!("sign", self, |v| if v > T::zero() {
            T::one()
        } else if v < T::zero() {
            -T::one()
        } else {
            v
        })
    }

    /// xᵖ for a scalar exponent.
    ///
    /// JVP: `t·p·x^(p−1)` (`t·2x` for p = 2, zero for p = 0), the backward rule's factor.
    ///
    /// ```
    /// let t = eingrad::Tensor::from_vec(vec![2.0f64, 3.0], &[2]).unwrap();
    /// assert_eq!(t.powf(2.0).unwrap().to_vec::<f64>().unwrap(), vec![4.0, 9.0]);
    /// ```
    pub fn powf(&self, p: f64) -> Result<Tensor> {
        let out = map1!("powf", self, |v| if p == 2.0 {
            v * v
        } else {
            v.powf(T::of(p))
        })?;
        let (x, jx) = (self.clone(), self.clone());
        Ok(record1_jvp(
            "powf",
            &[self],
            out,
            move |g, _| Ok(vec![Some(powf_times_derivative(g, &x, p)?)]),
            move |t| {
                t[0].as_ref()
                    .map(|t| powf_times_derivative(t, &jx, p))
                    .transpose()
            },
        ))
    }

    /// Clamps into [min, max] (either bound optional). The gradient passes where
    /// min < x < max strictly (0 at a bound), as in PyTorch for scalar bounds; the JVP
    /// passes the tangent through the same mask.
    pub fn clamp(&self, min: Option<f64>, max: Option<f64>) -> Result<Tensor> {
        let (lo, hi) = (
            min.unwrap_or(f64::NEG_INFINITY),
            max.unwrap_or(f64::INFINITY),
        );
        // A NaN bound makes every output NaN (PyTorch); a NaN input stays NaN.
        let nan_bound = lo.is_nan() || hi.is_nan();
        let out = map1!("clamp", self, |v| if nan_bound {
            T::of(f64::NAN)
        } else if v.is_nan() {
            v
        } else {
            v.max(T::of(lo)).min(T::of(hi))
        })?;
        let (x, jx) = (self.clone(), self.clone());
        Ok(record1_jvp(
            "clamp",
            &[self],
            out,
            move |g, _| Ok(vec![Some(g.mul(&clamp_mask(&x, min, max)?)?)]),
            move |t| {
                t[0].as_ref()
                    .map(|t| t.mul(&clamp_mask(&jx, min, max)?))
                    .transpose()
            },
        ))
    }

    /// Converts to another dtype (differentiable: the gradient is converted back, a tangent
    /// is converted forward).
    pub fn to_dtype(&self, dtype: crate::DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        // The conversion goes through f64 values: check that they fit in memory first.
        crate::storage::check_allocation::<f64>("to_dtype", self.dims())?;
        let v = self.to_vec_f64();
        let out = Tensor::from_f64s(&v, self.dims(), dtype)?;
        let from = self.dtype();
        Ok(record1_jvp(
            "to_dtype",
            &[self],
            out,
            move |g, _| Ok(vec![Some(g.to_dtype(from)?)]),
            move |t| t[0].as_ref().map(|t| t.to_dtype(dtype)).transpose(),
        ))
    }
}

/// `g·∂xᵖ/∂x` for [`Tensor::powf`]: `g·p·x^(p−1)`, `g·2x` for p = 2, zeros for p = 0. Shared
/// by the backward rule (g the gradient) and the JVP (g the tangent).
fn powf_times_derivative(g: &Tensor, x: &Tensor, p: f64) -> Result<Tensor> {
    if p == 0.0 {
        return g.zeros_like();
    }
    let d = if p == 2.0 {
        x.mul_scalar(2.0)?
    } else {
        x.powf(p - 1.0)?.mul_scalar(p)?
    };
    g.mul(&d)
}

/// Where [`Tensor::clamp`] passes derivatives: strictly inside a given bound; an absent bound
/// (±∞) passes every value, ±∞ included. 1/0 in `x`'s dtype.
fn clamp_mask(x: &Tensor, min: Option<f64>, max: Option<f64>) -> Result<Tensor> {
    let above = match min {
        Some(lo) => x.gt_scalar(lo)?,
        None => x.ge_scalar(f64::NEG_INFINITY)?,
    };
    let below = match max {
        Some(hi) => x.lt_scalar(hi)?,
        None => x.le_scalar(f64::INFINITY)?,
    };
    above.mul(&below)
}
