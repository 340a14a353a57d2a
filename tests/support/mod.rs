//! Helpers shared by the integration tests (`mod support;` in each file that needs one; a
//! file uses some of them, hence the `dead_code` allowance).
#![allow(dead_code)]

use eingrad::autograd::take_jvp_fallbacks;
use eingrad::func::{jvp, vjp};
use eingrad::{DType, Result, Tensor};

/// Forward mode is native and agrees with reverse mode for `f` at `primals`: no op falls
/// back to transposing its backward rule, and ⟨J·t, c⟩ = ⟨t, Jᵀ·c⟩ to 1e-10 (relative) for
/// the `tangents` and seeded cotangents.
pub fn assert_jvp_agrees_with_vjp(
    name: &str,
    f: &dyn Fn(&[Tensor]) -> Result<Vec<Tensor>>,
    primals: &[Tensor],
    tangents: &[Tensor],
) {
    let _ = take_jvp_fallbacks();
    let (outs, jt) = jvp(f, primals, tangents).unwrap();
    let fallbacks = take_jvp_fallbacks();
    assert!(
        fallbacks.is_empty(),
        "{name}: JVPs fell back to the VJP: {fallbacks:?}"
    );
    let cot: Vec<Tensor> = outs
        .iter()
        .map(|o| Tensor::randn(o.dims(), DType::F64, 77).unwrap())
        .collect();
    let (_, back) = vjp(f, primals, &cot).unwrap();
    let dot = |a: &Tensor, b: &Tensor| -> f64 {
        a.to_vec_f64()
            .iter()
            .zip(b.to_vec_f64())
            .map(|(x, y)| x * y)
            .sum()
    };
    let lhs: f64 = jt.iter().zip(&cot).map(|(a, c)| dot(a, c)).sum();
    let rhs: f64 = back.iter().zip(tangents).map(|(g, t)| dot(g, t)).sum();
    assert!(
        (lhs - rhs).abs() <= 1e-10 * (1.0 + lhs.abs()),
        "{name}: <J t, c> = {lhs} but <t, J'c> = {rhs}"
    );
}

/// Caps this test process's address space at 4 GiB (once, for the fuzz). Dropping one dim
/// of a huge broadcast view (a reduction, an index) can leave an output of a few GiB, which
/// memory might hold: under the cap every such allocation fails at once, so the fuzz never
/// takes real memory, and an allocation made without a check aborts the run (reported as
/// the bug it is) instead of passing on a large machine.
pub fn cap_address_space() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(target_os = "linux")]
        // SAFETY: getrlimit/setrlimit only read and write the rlimit struct passed in.
        unsafe {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_AS, &mut lim) == 0 {
                lim.rlim_cur = lim.rlim_cur.min(4 << 30);
                libc::setrlimit(libc::RLIMIT_AS, &lim);
            }
        }
    });
}
