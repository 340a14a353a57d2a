//! Special functions of one real variable (ln Γ), on the kernels' floor so that every floor
//! above may use them. Code that evaluates one in tensor ops (to be differentiable to any
//! order) takes its coefficients from here, so that the two forms agree.

/// The Lanczos parameter g of [`LANCZOS`].
pub(crate) const LANCZOS_G: f64 = 7.0;
/// Lanczos coefficients for g = 7, nine terms (relative error about 1e-15 for x ≥ 0.5).
pub(crate) const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];
/// ½·ln(2π).
pub(crate) const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// ln|Γ(x)| by the Lanczos approximation (g = 7, nine terms), with the reflection formula
/// below ½; `+∞` at the poles 0, −1, −2, …
///
/// ```
/// use eingrad::kernels::special::lgamma_f64;
/// assert!((lgamma_f64(10.0) - 362880f64.ln()).abs() < 1e-12);
/// assert!((lgamma_f64(0.5) - 0.5 * std::f64::consts::PI.ln()).abs() < 1e-14);
/// ```
pub fn lgamma_f64(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.5 {
        if x == x.floor() {
            return f64::INFINITY;
        }
        // Γ(x)Γ(1−x) = π / sin(πx).
        let s = (std::f64::consts::PI * x).sin().abs();
        return std::f64::consts::PI.ln() - s.ln() - lgamma_f64(1.0 - x);
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    let mut a = LANCZOS[0];
    for (k, c) in LANCZOS.iter().enumerate().skip(1) {
        a += c / (x + (k as f64 - 1.0));
    }
    let t = x + LANCZOS_G - 0.5;
    HALF_LN_2PI + (x - 0.5) * t.ln() - t + a.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lgamma_f64_known_values() {
        let cases = [
            (1.0, 0.0),
            (2.0, 0.0),
            (3.0, 2f64.ln()),
            (0.5, 0.5 * std::f64::consts::PI.ln()),
            (100.0, 359.134_205_369_575_4),
            (-0.5, (2.0 * std::f64::consts::PI.sqrt()).ln()),
        ];
        for (x, want) in cases {
            let got = lgamma_f64(x);
            assert!(
                (got - want).abs() < 1e-12 * want.abs().max(1.0),
                "lgamma({x}) = {got}, want {want}"
            );
        }
        assert_eq!(lgamma_f64(0.0), f64::INFINITY);
        assert_eq!(lgamma_f64(-3.0), f64::INFINITY);
        for x in [0.7, 1.3, 4.5, 17.25, 250.0] {
            assert!(
                (lgamma_f64(x) - libm::lgamma(x)).abs() < 1e-12 * libm::lgamma(x).abs().max(1.0)
            );
        }
    }
}

/// eˣ, vectorisable: `f64` calls the standard library's; `f32` reduces `x = n·ln 2 + r`
/// (|r| ≤ ln 2 / 2), evaluates a degree-7 polynomial for eʳ (Cephes' `expf` coefficients)
/// and scales by 2ⁿ through the exponent bits, with selects instead of branches, so loops
/// over it compile to SIMD. Within 2 ulp of the exact value on normal results; a result
/// below the smallest normal f32 (x < −87.34) flushes to 0, x > 88.72 gives ∞, NaN stays NaN.
///
/// ```
/// use eingrad::kernels::special::exp;
/// assert_eq!(exp(0.0f32), 1.0);
/// assert_eq!(exp(f32::NEG_INFINITY), 0.0);
/// assert!((exp(1.0f32) - std::f32::consts::E).abs() <= f32::EPSILON * 4.0);
/// assert_eq!(exp(1.0f64), 1.0f64.exp());
/// ```
#[inline(always)]
pub fn exp<T: crate::dtype::Float>(x: T) -> T {
    if T::DTYPE == crate::dtype::DType::F64 {
        return x.exp();
    }
    let xf = x.f64() as f32;
    T::of(exp_f32(xf) as f64)
}

#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = x.clamp(-87.336_55, 88.722_83);
    // Round to nearest by adding and subtracting 1.5·2²³ (exact for |v| < 2²²): vectorises,
    // where `f32::round` is a libm call.
    const MAGIC: f32 = 12_582_912.0;
    let n = (xc * LOG2E + MAGIC) - MAGIC;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let r2 = r * r;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let er = p * r2 + r + 1.0;
    // 2ⁿ for n in [−126, 128]: 2^min(n, 127) from the exponent bits, times 2 more when
    // n = 128 (x near the overflow bound), so the product overflows only where eˣ does.
    let ni = n as i32;
    let scale = f32::from_bits(((ni.min(127) + 127) as u32) << 23);
    let y = er * scale;
    let y = if ni > 127 { y * 2.0 } else { y };
    let y = if x < -87.336_55 { 0.0 } else { y };
    let y = if x > 88.722_83 { f32::INFINITY } else { y };
    if x.is_nan() {
        x
    } else {
        y
    }
}

#[cfg(test)]
mod exp_tests {
    use super::exp;

    #[test]
    fn f32_exp_is_within_2_ulp_and_handles_the_edges() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.7 {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            let ulp = (want as f32).abs() * f32::EPSILON;
            worst = worst.max((got - want).abs() / ulp as f64);
            x += 0.000_7;
        }
        assert!(worst <= 2.0, "{worst} ulp");
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-100.0f32), 0.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(89.0f32), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(0.0f32), 1.0);
        assert!(exp(88.7f32).is_finite());
    }
}
