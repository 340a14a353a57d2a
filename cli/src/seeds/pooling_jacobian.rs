//! Seed 000: dynamic token pooling — the pooling matrix from boundaries and its (surrogate)
//! Jacobian with respect to the boundaries.

use std::path::Path;

use super::{matrix_text, save_heatmap, SeedOutcome};
use eingrad::func::{jacobian, JacobianMode};
use eingrad::models::pooling::pooling_matrix;
use eingrad::DType;
use eingrad::Result;
use eingrad::Tensor;

const B: [f64; 10] = [0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];

/// Segment of each token (b_l = 1 ends a segment at l).
fn segments() -> Vec<Vec<usize>> {
    let mut segs = vec![vec![]];
    for (l, &b) in B.iter().enumerate() {
        segs.last_mut().expect("one").push(l);
        if b == 1.0 && l + 1 < B.len() {
            segs.push(vec![]);
        }
    }
    segs
}

/// Runs the seed for α = 1 and α = −2.
pub fn run(out: Option<&Path>) -> Result<SeedOutcome> {
    let mut s = SeedOutcome::new(
        "000",
        "dynamic token pooling: pooling matrix and its Jacobian w.r.t. boundaries",
    );
    let b = Tensor::from_f64s(&B, &[1, 10], DType::F64)?;
    let bar = pooling_matrix(&b, 1.0)?;
    let n = bar.dims()[2];
    s.line(format!(
        "  boundaries {B:?} -> {n} segments; pooling matrix (10 x {n}):"
    ));
    let bv = bar.to_vec_f64();
    s.line(matrix_text(&bv, 10, n, "    ").trim_end());
    let segs = segments();
    let mut ok = n == 4;
    for (k, seg) in segs.iter().enumerate() {
        for &l in seg {
            for c in 0..n {
                let want = if c == k { 1.0 / seg.len() as f64 } else { 0.0 };
                ok &= (bv[l * n + c] - want).abs() <= 1e-6;
            }
        }
    }
    s.check(
        ok,
        "n = 4; bar = 1/3 rows 0-2 col 0, 1 row 3 col 1, 1/2 rows 4-5 col 2, 1/4 rows 6-9 col 3",
    );
    for alpha in [1.0, -2.0] {
        let j = jacobian(
            &move |x: &[Tensor]| Ok(vec![pooling_matrix(&x[0], alpha)?]),
            &[b.clone()],
            JacobianMode::Reverse,
        )?;
        let jv = j[0][0].to_vec_f64(); // (1, 10, n, 1, 10)
        s.line(format!(
            "  alpha = {alpha}: Jacobian of each row's nonzero w.r.t. b, per segment:"
        ));
        let mut worst: f64 = 0.0;
        let mut full = vec![0.0; 100];
        for (k, seg) in segs.iter().enumerate() {
            let nn = seg.len() as f64;
            let mut block = Vec::new();
            for &l in seg {
                for &m in seg {
                    let got = jv[(l * n + k) * 10 + m];
                    let last = m == *seg.last().expect("nonempty");
                    let want = if last {
                        0.0
                    } else {
                        alpha
                            * ((m < l) as u8 as f64 / nn
                                - seg.iter().filter(|&&q| q > m).count() as f64 / (nn * nn))
                    };
                    worst = worst.max((got - want).abs());
                    block.push(got);
                }
                for m in 0..10 {
                    full[l * 10 + m] = jv[(l * n + k) * 10 + m];
                }
            }
            s.line(format!("    segment {seg:?}:"));
            s.line(matrix_text(&block, seg.len(), seg.len(), "      ").trim_end());
        }
        // Outside a row's own segment columns the Jacobian is zero.
        let mut outside_max: f64 = 0.0;
        for (k, seg) in segs.iter().enumerate() {
            for &l in seg {
                for m in (0..10).filter(|m| !seg.contains(m)) {
                    outside_max = outside_max.max(jv[(l * n + k) * 10 + m].abs());
                }
            }
        }
        let outside = outside_max <= 1e-6; // the +1e-9 in the normaliser leaves O(1e-9)
        if !outside {
            s.line(format!(
                "    largest entry outside the own segment: {outside_max:e}"
            ));
        }
        s.check(
            worst <= 1e-6,
            format!("alpha = {alpha}: blocks = alpha x the seed's blocks (max diff {worst:.1e})"),
        );
        s.check(
            outside,
            format!("alpha = {alpha}: zero outside each segment's own columns"),
        );
        let file = if alpha == 1.0 {
            "000_pooling_jacobian.png"
        } else {
            "000_pooling_jacobian_alpha_-2.png"
        };
        save_heatmap(
            out,
            file,
            &full,
            10,
            10,
            &format!("d bar[l, seg(l)] / d b, alpha {alpha}"),
            "boundary m",
            "token l",
        )?;
    }
    Ok(s)
}
