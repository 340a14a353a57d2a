//! PyTorch-like printing: `tensor([[0.3333, 0.0000], …])`.

use super::Tensor;

/// How PyTorch's formatter prints a whole tensor: integers as `1.`, else fixed 4 decimals,
/// or scientific `1.0000e+09` when the magnitudes span too much.
#[derive(Clone, Copy)]
enum Mode {
    Int,
    Fixed,
    Sci,
}

fn fmt_value(v: f64, mode: Mode) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        match mode {
            Mode::Int => format!("{v:.0}."),
            Mode::Fixed => format!("{v:.4}"),
            Mode::Sci => {
                // Rust writes `1.0000e9`; Python/PyTorch write `1.0000e+09`.
                let s = format!("{v:.4e}");
                let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
                let (sign, digits) = match exp.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', exp),
                };
                format!("{mant}e{sign}{digits:0>2}")
            }
        }
    }
}

impl std::fmt::Display for Tensor {
    /// ```
    /// let t = eingrad::Tensor::from_vec(vec![1.0f32 / 3.0, 0.0], &[1, 2]).unwrap();
    /// assert_eq!(t.to_string(), "tensor([[0.3333, 0.0000]])");
    /// ```
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.to_vec_f64();
        // PyTorch's rule: look at the nonzero finite magnitudes only.
        let nz: Vec<f64> = v
            .iter()
            .filter(|x| x.is_finite() && **x != 0.0)
            .map(|x| x.abs())
            .collect();
        let int_mode = nz.iter().all(|x| x.fract() == 0.0);
        let max = nz.iter().fold(0.0f64, |m, &x| m.max(x));
        let min = nz.iter().fold(f64::INFINITY, |m, &x| m.min(x));
        let wide = !nz.is_empty() && (max / min > 1000.0 || max > 1e8);
        let mode = if int_mode {
            if wide {
                Mode::Sci
            } else {
                Mode::Int
            }
        } else if wide || (!nz.is_empty() && min < 1e-4) {
            Mode::Sci
        } else {
            Mode::Fixed
        };
        let cells: Vec<String> = v.iter().map(|&x| fmt_value(x, mode)).collect();
        // Like PyTorch, only nonzero finite values set the column width.
        let width = v
            .iter()
            .zip(&cells)
            .filter(|(x, _)| x.is_finite() && **x != 0.0)
            .map(|(_, c)| c.len())
            .max()
            .unwrap_or(1);
        let shape = self.dims().to_vec();
        let mut out = String::from("tensor(");
        if shape.is_empty() {
            out.push_str(cells.first().map(String::as_str).unwrap_or(""));
        } else {
            write_nested(&mut out, &cells, &shape, 0, 0, width, 8);
        }
        if self.dtype() == crate::DType::F64 {
            out.push_str(", dtype=float64");
        }
        if self.grad_fn().is_some() {
            out.push_str(&format!(
                ", grad_fn=<{}>",
                self.grad_fn()
                    .map(|g| g.node.name().to_string())
                    .unwrap_or_default()
            ));
        }
        out.push(')');
        f.write_str(&out)
    }
}

fn write_nested(
    out: &mut String,
    cells: &[String],
    shape: &[usize],
    depth: usize,
    start: usize,
    width: usize,
    indent: usize,
) {
    out.push('[');
    let n = shape[depth];
    let stride: usize = shape[depth + 1..].iter().product();
    for i in 0..n {
        if i > 0 {
            if depth + 1 == shape.len() {
                out.push_str(", ");
            } else {
                out.push(',');
                for _ in 0..(shape.len() - depth - 1) {
                    out.push('\n');
                }
                out.push_str(&" ".repeat(indent + depth));
            }
        }
        if depth + 1 == shape.len() {
            out.push_str(&format!("{:>width$}", cells[start + i]));
        } else {
            write_nested(
                out,
                cells,
                shape,
                depth + 1,
                start + i * stride,
                width,
                indent,
            );
        }
    }
    out.push(']');
}
