//! The five seed experiments (`SEEDS.md`) as runnable reports: `eingrad seeds` prints each
//! one's tables and a pass/fail line, and with an output directory writes the Jacobians as
//! PNG heatmaps and the DNI loss curve as a PNG plot.

mod conv_partials;
mod decay_matrix;
mod dni_run;
mod einsum_jacobians;
mod pooling_jacobian;

use std::fmt::Write as _;
use std::path::Path;

use crate::plot::{heatmap_png, HeatmapOptions};
use eingrad::Result;
use eingrad::Tensor;

/// What one seed run printed and whether every check held.
#[derive(Debug, Clone)]
pub struct SeedOutcome {
    /// The seed's file prefix, e.g. `"003"`.
    pub id: &'static str,
    /// One line saying what the experiment is.
    pub title: &'static str,
    /// The tables the experiment printed.
    pub report: String,
    /// The checks that failed (empty when the seed passed).
    pub failures: Vec<String>,
}

impl SeedOutcome {
    fn new(id: &'static str, title: &'static str) -> Self {
        SeedOutcome {
            id,
            title,
            report: String::new(),
            failures: Vec::new(),
        }
    }
    /// True when every check held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
    /// Records a check.
    pub(crate) fn check(&mut self, ok: bool, what: impl Into<String>) {
        let what = what.into();
        let _ = writeln!(self.report, "  [{}] {what}", if ok { "ok" } else { "FAIL" });
        if !ok {
            self.failures.push(what);
        }
    }
    pub(crate) fn line(&mut self, s: impl AsRef<str>) {
        self.report.push_str(s.as_ref());
        self.report.push('\n');
    }
}

/// Runs all five seeds in order; `out` receives the PNGs when given.
///
/// ```no_run
/// for s in eingrad_cli::seeds::run_all(None).unwrap() {
///     println!("{} {}", s.id, if s.passed() { "pass" } else { "FAIL" });
/// }
/// ```
pub fn run_all(out: Option<&Path>) -> Result<Vec<SeedOutcome>> {
    if let Some(dir) = out {
        std::fs::create_dir_all(dir)?;
    }
    Ok(vec![
        pooling_jacobian::run(out)?,
        dni_run::run(out)?,
        decay_matrix::run(out)?,
        einsum_jacobians::run(out)?,
        conv_partials::run(out)?,
    ])
}

/// Largest |a − b| over two tensors of one shape, with equal infinities (and NaNs) as equal.
pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    if a.dims() != b.dims() {
        return f64::INFINITY;
    }
    a.to_vec_f64()
        .iter()
        .zip(b.to_vec_f64())
        .map(|(x, y)| {
            if x == &y || (x.is_nan() && y.is_nan()) {
                0.0
            } else {
                (x - y).abs()
            }
        })
        .fold(0.0, f64::max)
}

/// Formats a matrix (rows × cols) with 4 decimals, one row per line.
pub(crate) fn matrix_text(values: &[f64], rows: usize, cols: usize, indent: &str) -> String {
    let mut s = String::new();
    for r in 0..rows {
        s.push_str(indent);
        for c in 0..cols {
            let v = values[r * cols + c];
            let _ = write!(
                s,
                "{:>8}",
                if v.is_infinite() {
                    format!("{}inf", if v < 0.0 { "-" } else { "" })
                } else {
                    format!("{v:.4}")
                }
            );
        }
        s.push('\n');
    }
    s
}

/// Writes a rows × cols heatmap when `out` is set.
#[allow(clippy::too_many_arguments)]
pub(crate) fn save_heatmap(
    out: Option<&Path>,
    file: &str,
    values: &[f64],
    rows: usize,
    cols: usize,
    title: &str,
    x: &str,
    y: &str,
) -> Result<()> {
    if let Some(dir) = out {
        heatmap_png(
            &dir.join(file),
            values,
            rows,
            cols,
            &HeatmapOptions {
                title: title.into(),
                x_label: x.into(),
                y_label: y.into(),
                cell_px: 0,
            },
        )?;
    }
    Ok(())
}
