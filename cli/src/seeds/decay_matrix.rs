//! Seed 002: xLSTM's log-space decay matrix with a hand-written backward checked against
//! autograd (−∞ above the diagonal).

use std::path::Path;

use super::{matrix_text, save_heatmap, SeedOutcome};
use eingrad::func::{verify_backward, VerifyOptions};
use eingrad::models::xlstm::{decay_matrix, decay_matrix_custom};
use eingrad::DType;
use eingrad::Result;
use eingrad::Tensor;

/// ĩ per head (b, h) in (b, h) order, as printed by the seed (4 decimals).
const IGATE: [[f64; 5]; 8] = [
    [1.6217, -1.1963, 1.2651, -1.0511, 0.8248],
    [1.7687, -0.2273, -0.3192, -0.1224, 0.5716],
    [1.7480, 1.5525, -0.0406, 1.0113, 1.5455],
    [2.1709, -0.0638, 0.3106, -0.2125, 0.0994],
    [0.7163, -0.5652, 0.1756, -0.3835, 0.2200],
    [-0.3686, -1.3597, 0.2573, 0.0560, 0.3304],
    [-0.1345, 0.9675, 0.8923, 0.5020, 0.1634],
    [-0.3290, 0.5576, 0.7773, -1.5742, 0.2267],
];
/// f̃ per head.
const FGATE: [[f64; 5]; 8] = [
    [0.0124, -1.0455, -0.0735, 0.0832, -0.5680],
    [1.9620, -0.3731, 0.5843, -0.4221, 1.5006],
    [0.5582, 1.2511, 0.6232, 0.7075, 1.3565],
    [0.5134, 1.9529, -1.8601, -0.8365, 0.6902],
    [1.5590, 1.5131, 0.3081, 0.3594, 0.7247],
    [-0.5370, -1.3131, -1.0852, 1.7549, -0.2841],
    [0.3271, -0.4896, 0.5642, -0.4275, -1.2305],
    [1.1763, -0.0798, 1.8283, 0.3819, 0.5638],
];
/// The seed's f̃ gradients of `dmat.sum()`.
const FGRAD: [[f64; 5]; 8] = [
    [0.0, 2.9597, 3.1102, 2.8753, 2.5532],
    [0.0, 2.3688, 2.1476, 3.6239, 0.7294],
    [0.0, 0.8900, 2.0944, 1.9809, 0.8192],
    [0.0, 0.4970, 5.1919, 4.1863, 1.3360],
    [0.0, 0.7219, 2.5414, 2.4667, 1.3054],
    [0.0, 3.1521, 4.4849, 0.8846, 2.2822],
    [0.0, 2.4800, 2.1754, 3.6317, 3.0956],
    [0.0, 2.0798, 0.8306, 2.4341, 1.4506],
];
/// D̃ of head (0,0), lower triangle, row by row.
const DMAT_00: [&[f64]; 5] = [
    &[1.6217],
    &[0.2749, -1.1963],
    &[-0.4557, -1.9268, 1.2651],
    &[-1.1081, -2.5793, 0.6127, -1.0511],
    &[-2.1250, -3.5962, -0.4043, -2.0680, 0.8248],
];
/// Row 4 of heads (0,1), (0,2), (1,1).
const ROW4: [(usize, [f64; 5]); 3] = [
    (1, [-0.6990, -1.7980, -1.4468, -0.3237, 0.5716]),
    (2, [0.4371, 0.4932, -0.6705, 0.7821, 1.5455]),
    (5, [-4.3009, -3.7407, -0.7475, -0.7892, 0.3304]),
];
const S: usize = 5;
const ATOL: f64 = 2e-4;

fn gates() -> Result<(Tensor, Tensor)> {
    let flat = |g: &[[f64; 5]; 8]| g.iter().flatten().copied().collect::<Vec<f64>>();
    Ok((
        Tensor::from_f64s(&flat(&IGATE), &[2, 4, S, 1], DType::F64)?,
        Tensor::from_f64s(&flat(&FGATE), &[2, 4, S, 1], DType::F64)?,
    ))
}

/// Runs the seed: D̃ values, both gradients of `sum()`, custom backward vs autograd.
pub fn run(out: Option<&Path>) -> Result<SeedOutcome> {
    let mut s = SeedOutcome::new(
        "002",
        "xLSTM log-space decay matrix, hand-written backward vs autograd",
    );
    let (i0, f0) = gates()?;
    let (i, f) = (
        i0.detach().requires_grad_(true),
        f0.detach().requires_grad_(true),
    );
    let d = decay_matrix(&i, &f)?;
    let dv = d.to_vec_f64();
    let head = |h: usize| &dv[h * S * S..(h + 1) * S * S];
    s.line("  D~ of head (0,0) (-inf above the diagonal):");
    s.line(matrix_text(head(0), S, S, "    ").trim_end());
    let mut worst: f64 = 0.0;
    for (r, row) in DMAT_00.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            worst = worst.max((head(0)[r * S + c] - v).abs());
        }
    }
    for (h, row) in ROW4.iter() {
        for (c, &v) in row.iter().enumerate() {
            worst = worst.max((head(*h)[4 * S + c] - v).abs());
        }
    }
    let upper_inf =
        (0..8).all(|h| (0..S).all(|r| (r + 1..S).all(|c| head(h)[r * S + c] == f64::NEG_INFINITY)));
    s.check(
        worst <= ATOL,
        format!("D~ matches the seed's printed rows (max diff {worst:.1e})"),
    );
    s.check(upper_inf, "every entry above the diagonal is -inf");
    let total = d.sum_all()?;
    s.line(format!("  dmat.sum() = {}", total.item()?));
    total.backward()?;
    let gi = i.grad().map(|g| g.to_vec_f64()).unwrap_or_default();
    let gf = f.grad().map(|g| g.to_vec_f64()).unwrap_or_default();
    s.line("  d sum / d i~ per head:");
    s.line(matrix_text(&gi, 8, S, "    ").trim_end());
    s.line("  d sum / d f~ per head:");
    s.line(matrix_text(&gf, 8, S, "    ").trim_end());
    s.check(
        gi.iter().all(|&g| g == S as f64),
        format!("every i~ gradient is S = {S} (adding the -inf mask passes gradient 1)"),
    );
    let fw: f64 = FGRAD
        .iter()
        .flatten()
        .zip(&gf)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    s.check(
        fw <= ATOL,
        format!("f~ gradients match the seed (max diff {fw:.1e})"),
    );
    let formula = (0..8).all(|h| {
        (0..S).all(|k| {
            let x = FGATE[h][k];
            let want = (k * (S - k)) as f64 / (1.0 + x.exp());
            (gf[h * S + k] - want).abs() <= 1e-9
        })
    });
    s.check(formula, "d/df~_k = k(S-k) sigmoid(-f~_k), so d/df~_0 = 0");
    // The hand-written backward against autograd, random and one-hot cotangents.
    let report = verify_backward(
        &|x: &[Tensor]| Ok(vec![decay_matrix_custom(&x[0], &x[1])?]),
        &|x: &[Tensor]| Ok(vec![decay_matrix(&x[0], &x[1])?]),
        &[i0, f0],
        VerifyOptions {
            atol: Some(1e-6),
            ..Default::default()
        },
    )?;
    s.line(format!("  custom backward vs autograd:\n{report}"));
    s.check(
        report.passed(),
        "hand-written backward agrees with autograd within 1e-6",
    );
    save_heatmap(
        out,
        "002_decay_matrix_head00.png",
        head(0),
        S,
        S,
        "D~ head (0,0)",
        "j",
        "i",
    )?;
    save_heatmap(
        out,
        "002_fgate_grad.png",
        &gf,
        8,
        S,
        "d sum(D~) / d f~",
        "k",
        "head (b,h)",
    )?;
    Ok(s)
}
