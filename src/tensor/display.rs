//! PyTorch-like printing: `tensor([[0.3333, 0.0000], …])`.

use super::Tensor;

fn fmt_value(v: f64, sci: bool) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else if sci {
        format!("{v:.4e}")
    } else {
        format!("{v:.4}")
    }
}

impl std::fmt::Display for Tensor {
    /// ```
    /// let t = eingrad::Tensor::from_vec(vec![1.0f32 / 3.0, 0.0], &[1, 2]).unwrap();
    /// assert_eq!(t.to_string(), "tensor([[0.3333, 0.0000]])");
    /// ```
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.to_vec_f64();
        let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        let max = finite.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let min_nz = finite
            .iter()
            .filter(|x| **x != 0.0)
            .fold(f64::INFINITY, |m, x| m.min(x.abs()));
        let sci = max >= 1e8 || (min_nz < 1e-4 && min_nz.is_finite());
        let cells: Vec<String> = v.iter().map(|&x| fmt_value(x, sci)).collect();
        let width = cells.iter().map(|c| c.len()).max().unwrap_or(0);
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
            out.push_str(&format!(", grad_fn=<{}>", self.grad_fn().map(|g| g.node.name().to_string()).unwrap_or_default()));
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
            write_nested(out, cells, shape, depth + 1, start + i * stride, width, indent);
        }
    }
    out.push(']');
}
