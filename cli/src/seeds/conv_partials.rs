//! Seed 004: partial derivatives of standard and left-padded conv1d via grad_outputs.

use std::path::Path;

use super::{matrix_text, save_heatmap, SeedOutcome};
use eingrad::autograd::{grad, GradOptions};
use eingrad::ops::conv::{Conv1dOptions, Padding};
use eingrad::DType;
use eingrad::Result;
use eingrad::Tensor;

const N: usize = 10;
const K: usize = 3;

/// The Jacobian of `y = conv1d(x, ones)` row by row: row i is the VJP with a one-hot
/// grad_outputs at i.
fn jacobian_rows(padding: Padding) -> Result<(usize, Vec<f64>)> {
    let x = Tensor::randn(&[1, 1, N], DType::F64, 4)?.requires_grad_(true);
    let w = Tensor::ones(&[1, 1, K], DType::F64)?;
    let y = x.conv1d(
        &w,
        None,
        Conv1dOptions {
            padding,
            ..Default::default()
        },
    )?;
    let len = y.dims()[2];
    let mut rows = Vec::with_capacity(len * N);
    for i in 0..len {
        let onehot = Tensor::zeros(&[1, 1, len], DType::F64)?.index_add(
            2,
            &[i],
            &Tensor::ones(&[1, 1, 1], DType::F64)?,
        )?;
        let g = grad(
            &[y.clone()],
            &[x.clone()],
            Some(&[onehot]),
            GradOptions::default().retain_graph(true),
        )?;
        rows.extend(
            g[0].as_ref()
                .map(|g| g.to_vec_f64())
                .unwrap_or_else(|| vec![0.0; N]),
        );
    }
    Ok((len, rows))
}

/// Runs the seed: standard (8×10 band i ≤ j ≤ i+2) and causal (10×10 band i−2 ≤ j ≤ i).
pub fn run(out: Option<&Path>) -> Result<SeedOutcome> {
    let mut s = SeedOutcome::new(
        "004",
        "partial derivatives of standard and left-padded conv1d",
    );
    for (name, padding, expect_len, band) in [
        (
            "standard",
            Padding::Symmetric(0),
            N - K + 1,
            (|i: usize, j: usize| i <= j && j < i + K) as fn(usize, usize) -> bool,
        ),
        (
            "left-padded (causal)",
            Padding::Causal,
            N,
            |i: usize, j: usize| j <= i && i < j + K,
        ),
    ] {
        let (len, rows) = jacobian_rows(padding)?;
        s.line(format!("  {name}: output length {len}; dy_i/dx_j:"));
        s.line(matrix_text(&rows, len, N, "    ").trim_end());
        s.check(
            len == expect_len,
            format!("{name}: output length {len} = {expect_len}"),
        );
        let ok =
            (0..len).all(|i| (0..N).all(|j| rows[i * N + j] == if band(i, j) { 1.0 } else { 0.0 }));
        s.check(ok, format!("{name}: Jacobian is the expected 0/1 band"));
        let file = if len == N {
            "004_conv1d_causal_jacobian.png"
        } else {
            "004_conv1d_standard_jacobian.png"
        };
        save_heatmap(
            out,
            file,
            &rows,
            len,
            N,
            &format!("dy/dx, {name} conv1d"),
            "input j",
            "output i",
        )?;
    }
    Ok(s)
}
