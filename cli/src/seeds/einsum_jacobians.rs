//! Seed 003: the Jacobian of an einsum in closed form, checked against autograd.

use std::path::Path;

use super::{max_abs_diff, save_heatmap, SeedOutcome};
use eingrad::func::{einsum_jacobian, jacobian, JacobianMode};
use eingrad::Result;
use eingrad::Tensor;
use eingrad::{einsum, DType};

/// Pattern, x shape, w shape, expected Jacobian shape.
type Case = (
    &'static str,
    &'static [usize],
    &'static [usize],
    &'static [usize],
);

const CASES: &[Case] = &[
    ("ij,jk->ik", &[2, 3], &[3, 4], &[2, 4, 2, 3]),
    ("bij,bjk->bik", &[5, 3, 8], &[5, 8, 9], &[5, 3, 9, 5, 3, 8]),
    (
        "bchwkt,fckt->bfhw",
        &[1, 3, 16, 16, 2, 2],
        &[2, 3, 2, 2],
        &[1, 2, 16, 16, 1, 3, 16, 16, 2, 2],
    ),
    ("abcd,efd->", &[1, 2, 3, 4], &[9, 10, 4], &[1, 2, 3, 4]),
];

/// Runs the seed: for each pattern, the closed-form Jacobian (one generalised einsum of `w`)
/// against `jacobian` of the contraction.
pub fn run(out: Option<&Path>) -> Result<SeedOutcome> {
    let mut s = SeedOutcome::new("003", "Jacobian of any einsum in closed form vs autograd");
    for (i, (pattern, xs, ws, jshape)) in CASES.iter().enumerate() {
        let x = Tensor::randn(xs, DType::F64, 30 + i as u64)?;
        let w = Tensor::randn(ws, DType::F64, 40 + i as u64)?;
        let (closed, jp) = einsum_jacobian(pattern, &[&x, &w], 0)?;
        let wc = w.clone();
        let auto = jacobian(
            &move |a: &[Tensor]| Ok(vec![einsum(pattern, &[&a[0], &wc])?]),
            &[x],
            JacobianMode::Auto,
        )?;
        let auto = &auto[0][0];
        let diff = max_abs_diff(&closed, auto);
        s.line(format!(
            "  {pattern:<20} x {xs:?}, w {ws:?}: J = einsum(\"{jp}\", w), shape {:?}, max |closed - autograd| = {diff:.2e}",
            closed.dims()
        ));
        s.check(
            closed.dims() == *jshape,
            format!("{pattern}: Jacobian shape {:?} = {jshape:?}", closed.dims()),
        );
        s.check(
            diff <= 1e-12,
            format!("{pattern}: allclose(closed form, jacobian) (max diff {diff:.1e})"),
        );
        if i == 0 {
            let v = closed.to_vec_f64();
            save_heatmap(
                out,
                "003_einsum_jacobian_mm.png",
                &v,
                8,
                6,
                "dz/dx for ij,jk->ik",
                "x index (i,j)",
                "z index (i,k)",
            )?;
        }
    }
    Ok(s)
}
