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
