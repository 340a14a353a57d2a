//! Unary elementwise math and activations, each with its derivative rule.

use super::{map1, saved_output};
use crate::autograd::{record1, Rule};
use crate::dtype::Float;
use crate::error::Result;
use crate::kernels::special::exp;
use crate::tensor::Tensor;

/// Stable log σ(x): x>0: −log(1+e^−x); else x − log(1+e^x). logσ(−∞) = −∞.
#[inline(always)]
fn log_sigmoid<T: Float>(x: T) -> T {
    if x > T::zero() {
        -(-x).exp().ln_1p()
    } else {
        x - x.exp().ln_1p()
    }
}
/// σ(x) from e^−|x| (never overflows), as a select rather than a branch so that it
/// vectorises.
#[inline(always)]
fn sigmoid<T: Float>(x: T) -> T {
    let e = exp(-x.abs());
    let pos = T::one() / (T::one() + e);
    let neg = e / (T::one() + e);
    if x >= T::zero() {
        pos
    } else {
        neg
    }
}
#[inline(always)]
fn softplus<T: Float>(x: T) -> T {
    // log(1 + e^x) = max(x, 0) + log1p(e^-|x|)
    x.max(T::zero()) + (-x.abs()).exp().ln_1p()
}
/// erf: libm's in f64; in f32 a rational approximation `x·P(x²)/Q(x²)` on [−4, 4] (erf is
/// ±1 in f32 beyond), within 4.2e-7 of the exact value, branch-free so that loops over it
/// vectorise (libm's scalar erf was 13% of a GPT training step through GELU).
#[inline(always)]
fn erf<T: Float>(x: T) -> T {
    if T::DTYPE == crate::dtype::DType::F64 {
        return T::of(libm::erf(x.f64()));
    }
    const P: [f64; 7] = [
        -1.609_603_332_624_15e-2,
        -2.954_599_808_540_25e-3,
        -7.349_906_303_268_55e-4,
        -5.692_506_394_623_46e-5,
        -2.101_024_020_825_08e-6,
        2.770_681_424_959_02e-8,
        -2.726_142_258_013_06e-10,
    ];
    const Q: [f64; 5] = [
        -1.426_473_905_141_89e-2,
        -7.373_329_167_204_68e-3,
        -1.682_826_974_382_03e-3,
        -2.133_740_552_789_05e-4,
        -1.456_607_184_649_96e-5,
    ];
    let c = x.max(T::of(-4.0)).min(T::of(4.0));
    let x2 = c * c;
    let mut p = T::of(P[6]);
    for &k in P[..6].iter().rev() {
        p = p * x2 + T::of(k);
    }
    let mut q = T::of(Q[4]);
    for &k in Q[..4].iter().rev() {
        q = q * x2 + T::of(k);
    }
    let r = c * p / q;
    // NaN stays NaN (the clamp above would have made it ±4); a select, not a branch.
    if x.is_nan() {
        x
    } else {
        r
    }
}
/// sign(x) ∈ {−1, 0, 1}, NaN for NaN. Branch-free but for NaN (random signs would
/// mispredict a branch on every other element).
#[inline(always)]
fn sign_of<T: Float>(x: T) -> T {
    if x.is_nan() {
        return x;
    }
    let pos = if x > T::zero() { T::one() } else { T::zero() };
    let neg = if x < T::zero() { T::one() } else { T::zero() };
    pos - neg
}
/// GELU′(x) = Φ(x) + x·φ(x).
#[inline(always)]
fn gelu_derivative<T: Float>(x: T) -> T {
    let cdf = T::of(0.5) * (T::one() + erf(x * T::of(std::f64::consts::FRAC_1_SQRT_2)));
    let pdf = exp(x * x * T::of(-0.5)) * T::of(1.0 / (2.0 * std::f64::consts::PI).sqrt());
    cdf + x * pdf
}
/// √(2/π) and the cubic coefficient of GELU's tanh approximation.
const GELU_TANH_C: f64 = 0.797_884_560_802_865_4;
const GELU_TANH_A: f64 = 0.044_715;
#[inline(always)]
fn gelu_tanh<T: Float>(x: T) -> T {
    let u = T::of(GELU_TANH_C) * (x + T::of(GELU_TANH_A) * x * x * x);
    T::of(0.5) * x * (T::one() + u.tanh())
}
/// d/dx of ½x(1 + tanh u), u = c(x + a x³): ½(1 + t) + ½x(1 − t²)·c(1 + 3a x²).
#[inline(always)]
fn gelu_tanh_derivative<T: Float>(x: T) -> T {
    let c = T::of(GELU_TANH_C);
    let a = T::of(GELU_TANH_A);
    let t = (c * (x + a * x * x * x)).tanh();
    let half = T::of(0.5);
    half * (T::one() + t) + half * x * (T::one() - t * t) * c * (T::one() + T::of(3.0) * a * x * x)
}

/// Defines a unary elementwise op with its derivative rule, stated once.
///
/// `$rule` is `v·f'(x)` written in public tensor ops (`$x` the input, `$y()` the output, `$g`
/// the vector `v`). An elementwise op's Jacobian is diagonal, hence its own transpose: the
/// same map serves the VJP (`v` = gradient), the JVP (`v` = tangent) and, since it broadcasts,
/// batched reverse passes (`[batch] ++ x.shape`), so the conventions at kinks (abs'(0) = 0)
/// and at ±∞ agree in every mode. The map is one fused pass `v·f'(x, y)` when nothing is
/// being recorded (first order), and the differentiable `$rule` otherwise. Both keep strong
/// zeros ([`super::strong_zero`]): where `v` is 0 the result is 0, even where f'(x) is ±∞ or
/// NaN (log and 1/x at 0, exp past overflow).
macro_rules! unary_op {
    ($(#[$doc:meta])* $name:ident, |$v:ident| $fwd:expr, |$x:ident, $y:ident, $g:ident| $rule:expr
     $(, fused |$gv:ident, $xv:ident, $yv:ident| $d:expr)?) => {
        $(#[$doc])*
        pub fn $name(&self) -> Result<Tensor> {
            let out = map1!(stringify!($name), self, |$v| $fwd)?;
            Ok(record1(stringify!($name), &[self], out, |out| {
                let (saved_in, saved_out) = (self.clone(), out.detach());
                Rule::self_adjoint1(true, move |$g: &Tensor| {
                    $(
                        if !crate::autograd::is_grad_enabled() {
                            // A type with an inline(always) `apply`, not a closure: the
                            // kernel's SIMD copies inline it (a closure this size would be
                            // called per element from a baseline-compiled body).
                            struct Fused;
                            impl<T: Float> crate::kernels::elementwise::Ternary<T> for Fused {
                                #[inline(always)]
                                #[allow(unused_variables)]
                                fn apply(&self, $gv: T, $xv: T, $yv: T) -> T {
                                    if $gv == T::zero() { T::zero() } else { $d }
                                }
                            }
                            return crate::with_dtype!($g.dtype(), T => super::map_ternary::<T>(
                                stringify!($name), $g, &saved_in, &saved_out, Fused));
                        }
                    )?
                    #[allow(unused_variables)]
                    let $x = &saved_in;
                    #[allow(unused_variables)]
                    let $y = || saved_output(&saved_out, || saved_in.$name());
                    #[allow(clippy::redundant_closure_call)]
                    super::strong_zero($g, $rule?)
                })
            }))
        }
    };
}

impl Tensor {
    unary_op!(
        /// −x.
        neg, |v| -v, |x, y, g| g.neg(), fused |g, x, y| -g);
    unary_op!(
        /// |x|; derivative sign(x), 0 at 0 (PyTorch's convention).
        abs, |v| v.abs(), |x, y, g| g.mul(&x.sign()?), fused |g, x, y| g * sign_of(x));
    unary_op!(
        /// eˣ; exp(−∞) = 0.
        ///
        /// ```
        /// let t = eingrad::Tensor::from_vec(vec![0.0f64, f64::NEG_INFINITY], &[2]).unwrap();
        /// assert_eq!(t.exp().unwrap().to_vec::<f64>().unwrap(), vec![1.0, 0.0]);
        /// ```
        exp, |v| exp(v), |x, y, g| g.mul(&y()?), fused |g, x, y| g * y);
    unary_op!(
        /// Natural log.
        log, |v| v.ln(), |x, y, g| g.div(x), fused |g, x, y| g / x);
    unary_op!(
        /// log(1 + x), accurate near 0.
        log1p, |v| v.ln_1p(), |x, y, g| g.div(&x.add_scalar(1.0)?), fused |g, x, y| g / (T::one() + x));
    unary_op!(
        /// √x.
        sqrt, |v| v.sqrt(), |x, y, g| g.div(&y()?.mul_scalar(2.0)?), fused |g, x, y| g / (y + y));
    unary_op!(
        /// 1/√x.
        rsqrt, |v| v.sqrt().recip(), |x, y, g| g.mul(&y()?.powf(3.0)?.mul_scalar(-0.5)?), fused |g, x, y| g * (y.powi(3) * T::of(-0.5)));
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
        logsigmoid, |v| log_sigmoid(v), |x, y, g| g.mul(&x.neg()?.sigmoid()?), fused |g, x, y| g * sigmoid(-x));
    unary_op!(
        /// log(1 + eˣ), stable.
        softplus, |v| softplus(v), |x, y, g| g.mul(&x.sigmoid()?), fused |g, x, y| g * sigmoid(x));
    unary_op!(
        /// max(x, 0); derivative 0 at 0.
        relu, |v| v.max(T::zero()), |x, y, g| g.mul(&x.gt_scalar(0.0)?), fused |g, x, y| if x > T::zero() { g } else { T::zero() });
    unary_op!(
        /// The Gauss error function.
        erf, |v| erf(v), |x, y, g| g.mul(&x.mul(x)?.neg()?.exp()?.mul_scalar(std::f64::consts::FRAC_2_SQRT_PI)?), fused |g, x, y| g * ((-(x * x)).exp() * T::of(std::f64::consts::FRAC_2_SQRT_PI)));
    unary_op!(
    /// GELU, exact (erf) form: x·Φ(x).
    gelu, |v| v * T::of(0.5) * (T::one() + erf(v * T::of(std::f64::consts::FRAC_1_SQRT_2))),
    |x, y, g| {
        let cdf = x.mul_scalar(std::f64::consts::FRAC_1_SQRT_2)?.erf()?.add_scalar(1.0)?.mul_scalar(0.5)?;
        let pdf = x.mul(x)?.mul_scalar(-0.5)?.exp()?.mul_scalar(1.0 / (2.0 * std::f64::consts::PI).sqrt())?;
        g.mul(&cdf.add(&x.mul(&pdf)?)?)
    }, fused |g, x, y| g * gelu_derivative(x));
    unary_op!(
    /// GELU, tanh approximation (PyTorch's `approximate="tanh"`, GPT-2's `new_gelu`):
    /// ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
    ///
    /// ```
    /// let x = eingrad::Tensor::from_vec(vec![0.0f64, 1.0], &[2]).unwrap();
    /// let y = x.gelu_tanh().unwrap().to_vec::<f64>().unwrap();
    /// assert_eq!(y[0], 0.0);
    /// assert!((y[1] - 0.841_191_990_608_276_8).abs() < 1e-12);
    /// ```
    gelu_tanh, |v| gelu_tanh(v),
    |x, y, g| {
        let u = x.mul(x)?.mul_scalar(GELU_TANH_A)?.add_scalar(1.0)?.mul(x)?.mul_scalar(GELU_TANH_C)?;
        let t = u.tanh()?;
        let du = x.mul(x)?.mul_scalar(3.0 * GELU_TANH_A * GELU_TANH_C)?.add_scalar(GELU_TANH_C)?;
        let sech2 = t.mul(&t)?.neg()?.add_scalar(1.0)?;
        let d = t.add_scalar(1.0)?.add(&x.mul(&sech2)?.mul(&du)?)?.mul_scalar(0.5)?;
        g.mul(&d)
    }, fused |g, x, y| g * gelu_tanh_derivative(x));
    unary_op!(
    /// SiLU (swish): x·σ(x).
    silu, |v| v * sigmoid(v), |x, y, g| {
        let s = x.sigmoid()?;
        g.mul(&s.mul(&x.mul(&s.neg()?.add_scalar(1.0)?)?.add_scalar(1.0)?)?)
    }, fused |g, x, y| { let s = sigmoid(x); g * (s * (T::one() + x * (T::one() - s))) });

    /// sign(x) ∈ {−1, 0, 1} (NaN stays NaN); no gradient.
    pub fn sign(&self) -> Result<Tensor> {
        map1!("sign", self, |v| sign_of(v))
    }

    /// xᵖ for a scalar exponent; derivative `p·x^(p−1)` (`2x` for p = 2, zero for p = 0).
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
        Ok(record1("powf", &[self], out, |_| {
            let x = self.clone();
            Rule::self_adjoint1(true, move |v| powf_times_derivative(v, &x, p))
        }))
    }

    /// Clamps into [min, max] (either bound optional). The gradient passes where
    /// min < x < max strictly (0 at a bound), as in PyTorch for scalar bounds; a tangent
    /// passes through the same mask.
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
        Ok(record1("clamp", &[self], out, |_| {
            let x = self.clone();
            Rule::self_adjoint1(true, move |v| v.mul(&clamp_mask(&x, min, max)?))
        }))
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
        // Linear: a tangent is converted forward, a gradient back.
        Ok(record1("to_dtype", &[self], out, |_| {
            Rule::linear1_batched(move |t| t.to_dtype(dtype), move |g, _| g.to_dtype(from))
        }))
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
    super::strong_mul(g, &d)
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

#[cfg(test)]
mod tests {
    use super::erf;

    #[test]
    fn f32_erf_is_within_5e_7_of_libm_and_keeps_nan_and_limits() {
        let mut worst = 0.0f64;
        for i in -60_000..=60_000 {
            let x = i as f32 * 1e-4;
            worst = worst.max((erf(x) as f64 - libm::erf(x as f64)).abs());
        }
        assert!(worst < 5e-7, "{worst}");
        assert!(erf(f32::NAN).is_nan());
        assert_eq!((erf(f32::INFINITY), erf(f32::NEG_INFINITY)), (1.0, -1.0));
        assert_eq!(erf(0.0f32), 0.0);
        assert_eq!(erf(0.5f64), libm::erf(0.5));
    }
}
