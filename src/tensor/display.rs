//! PyTorch-like printing: `tensor([[0.3333, 0.0000], …])`.
//!
//! The rules are PyTorch's default print options: 4 decimals; tensors of more than 1000
//! elements summarised to their first and last 3 entries along every dimension (`...`); rows
//! wrapped at 80 columns; empty tensors as `[]` with their size; suffixes for float64
//! (`dtype=float64`: eingrad's name, where PyTorch writes `torch.float64`), for a recorded op
//! (`grad_fn=<name>`, the op's own name) and for a leaf that requires grad.

use super::Tensor;
use crate::dtype::Float;

/// Tensors with more elements than this are summarised.
const THRESHOLD: usize = 1000;
/// Entries kept at each end of a summarised dimension.
const EDGE_ITEMS: usize = 3;
/// Rows wrap before this many columns.
const LINE_WIDTH: usize = 80;
/// Decimals printed.
const PRECISION: usize = 4;

/// How PyTorch's formatter prints a whole tensor: integers as `1.`, else fixed decimals,
/// or scientific `1.0000e+09` when the magnitudes span too much.
#[derive(Clone, Copy)]
enum Mode {
    Int,
    Fixed,
    Sci,
}

/// One notation and one column width for every printed entry of a tensor.
struct Formatter {
    mode: Mode,
    width: usize,
}

impl Formatter {
    /// PyTorch's rule, over the entries that are printed: only nonzero finite values choose
    /// the notation and set the width.
    fn new(printed: &[f64]) -> Formatter {
        let nonzero: Vec<f64> = printed
            .iter()
            .copied()
            .filter(|x| x.is_finite() && *x != 0.0)
            .collect();
        if nonzero.is_empty() {
            return Formatter {
                mode: Mode::Int,
                width: 1,
            };
        }
        let max = nonzero.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let min = nonzero.iter().fold(f64::INFINITY, |m, x| m.min(x.abs()));
        let int_mode = nonzero.iter().all(|x| x.fract() == 0.0);
        let wide = max / min > 1000.0 || max > 1e8;
        let mode = match (int_mode, wide || (!int_mode && min < 1e-4)) {
            (_, true) => Mode::Sci,
            (true, false) => Mode::Int,
            (false, false) => Mode::Fixed,
        };
        let mut formatter = Formatter { mode, width: 1 };
        formatter.width = nonzero
            .iter()
            .map(|&x| formatter.text(x).len())
            .max()
            .unwrap_or(1);
        formatter
    }

    /// `v` in this notation, unpadded.
    fn text(&self, v: f64) -> String {
        if v.is_nan() {
            return "nan".into();
        }
        if v.is_infinite() {
            return if v > 0.0 { "inf" } else { "-inf" }.into();
        }
        match self.mode {
            Mode::Int => format!("{v:.0}."),
            Mode::Fixed => format!("{v:.PRECISION$}"),
            Mode::Sci => {
                // Rust writes `1.0000e9`; Python/PyTorch write `1.0000e+09`.
                let s = format!("{v:.PRECISION$e}");
                let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
                let (sign, digits) = match exp.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', exp),
                };
                format!("{mant}e{sign}{digits:0>2}")
            }
        }
    }

    /// `v` right-aligned in the column width.
    fn cell(&self, v: f64) -> String {
        format!("{:>width$}", self.text(v), width = self.width)
    }
}

/// A row-major block of the entries that are printed: `values` holds only those (at most
/// 2·[`EDGE_ITEMS`] per summarised dimension, shaped `shape`); `full` is the tensor's shape.
#[derive(Clone, Copy)]
struct Block<'a> {
    values: &'a [f64],
    shape: &'a [usize],
    full: &'a [usize],
}

impl<'a> Block<'a> {
    /// Entry `i` (an index into `values`) along the first dimension.
    fn sub(self, i: usize) -> Block<'a> {
        let len: usize = self.shape[1..].iter().product();
        Block {
            values: &self.values[i * len..(i + 1) * len],
            shape: &self.shape[1..],
            full: &self.full[1..],
        }
    }

    /// The indices (into `values`) printed along the first dimension, `None` standing for
    /// `...`.
    fn shown(self, summarize: bool) -> Vec<Option<usize>> {
        let n = self.shape[0];
        if summarize && self.full[0] > 2 * EDGE_ITEMS {
            (0..EDGE_ITEMS)
                .map(Some)
                .chain(std::iter::once(None))
                .chain((EDGE_ITEMS..2 * EDGE_ITEMS).map(Some))
                .collect()
        } else {
            (0..n).map(Some).collect()
        }
    }

    /// The values that are printed, in order.
    fn printed(self, summarize: bool, out: &mut Vec<f64>) {
        if self.shape.is_empty() {
            out.extend_from_slice(self.values);
            return;
        }
        for i in self.shown(summarize).into_iter().flatten() {
            if self.shape.len() == 1 {
                out.push(self.values[i]);
            } else {
                self.sub(i).printed(summarize, out);
            }
        }
    }

    /// The bracketed text of this block, whose first line starts at column `indent`.
    fn render(self, indent: usize, summarize: bool, fmt: &Formatter) -> String {
        match self.shape.len() {
            0 => fmt.cell(self.values[0]),
            1 => {
                let cells: Vec<String> = self
                    .shown(summarize)
                    .into_iter()
                    .map(|i| match i {
                        Some(i) => fmt.cell(self.values[i]),
                        None => " ...".to_string(),
                    })
                    .collect();
                let per_line = (LINE_WIDTH.saturating_sub(indent) / (fmt.width + 2)).max(1);
                let lines: Vec<String> = cells.chunks(per_line).map(|l| l.join(", ")).collect();
                format!(
                    "[{}]",
                    lines.join(&format!(",\n{}", " ".repeat(indent + 1)))
                )
            }
            dims => {
                let slices: Vec<String> = self
                    .shown(summarize)
                    .into_iter()
                    .map(|i| match i {
                        Some(i) => self.sub(i).render(indent + 1, summarize, fmt),
                        None => "...".to_string(),
                    })
                    .collect();
                let sep = format!(",{}{}", "\n".repeat(dims - 1), " ".repeat(indent + 1));
                format!("[{}]", slices.join(&sep))
            }
        }
    }
}

/// `text` followed by `, suffix` for each suffix, a suffix moving to its own line (indented
/// by `indent`) when it would pass the line width.
fn add_suffixes(mut text: String, suffixes: &[String], indent: usize) -> String {
    // PyTorch counts the last line's length this way (two more than its characters).
    let mut last_line = text.len() + 1 - text.rfind('\n').map_or(0, |p| p + 1) + 1;
    for suffix in suffixes {
        if last_line + suffix.len() + 2 > LINE_WIDTH {
            text.push_str(&format!(",\n{}{suffix}", " ".repeat(indent)));
            last_line = indent + suffix.len();
        } else {
            text.push_str(&format!(", {suffix}"));
            last_line += suffix.len() + 2;
        }
    }
    text.push(')');
    text
}

/// The entries of `t` at every combination of the indices `kept[d]` along each dim `d`, as
/// f64 in row-major order of that combination (read through the layout: nothing else is
/// copied).
fn entries(t: &Tensor, kept: &[Vec<usize>]) -> Vec<f64> {
    let layout = t.layout();
    let (strides, offset) = (layout.strides(), layout.offset() as isize);
    let count: usize = kept.iter().map(Vec::len).product();
    let storage = t.storage();
    crate::with_dtype!(t.dtype(), T => {
        let src = storage.as_slice::<T>().unwrap_or(&[]);
        let mut at = vec![0usize; kept.len()];
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let pos: isize = at
                .iter()
                .zip(kept)
                .zip(strides)
                .map(|((&a, k), &s)| k[a] as isize * s)
                .sum::<isize>()
                + offset;
            out.push(src.get(pos as usize).map_or(f64::NAN, |v| v.f64()));
            for d in (0..at.len()).rev() {
                at[d] += 1;
                if at[d] < kept[d].len() {
                    break;
                }
                at[d] = 0;
            }
        }
        out
    })
}

impl std::fmt::Display for Tensor {
    /// ```
    /// let t = eingrad::Tensor::from_vec(vec![1.0f32 / 3.0, 0.0], &[1, 2]).unwrap();
    /// assert_eq!(t.to_string(), "tensor([[0.3333, 0.0000]])");
    /// let big = eingrad::Tensor::arange(0.0, 2000.0, 1.0, eingrad::DType::F32).unwrap();
    /// assert_eq!(
    ///     big.to_string(),
    ///     "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n        1.9990e+03])"
    /// );
    /// ```
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const PREFIX: &str = "tensor(";
        let indent = PREFIX.len();
        let shape = self.dims().to_vec();
        let summarize = self.numel() > THRESHOLD;
        let mut suffixes = Vec::new();
        let body = if self.numel() == 0 {
            if shape.len() != 1 {
                let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
                suffixes.push(format!("size=({})", dims.join(", ")));
            }
            "[]".to_string()
        } else {
            // Only the printed entries are read: a huge broadcast view prints like any other.
            let kept: Vec<Vec<usize>> = shape
                .iter()
                .map(|&n| {
                    if summarize && n > 2 * EDGE_ITEMS {
                        (0..EDGE_ITEMS).chain(n - EDGE_ITEMS..n).collect()
                    } else {
                        (0..n).collect()
                    }
                })
                .collect();
            let values = entries(self, &kept);
            let kept_shape: Vec<usize> = kept.iter().map(Vec::len).collect();
            let block = Block {
                values: &values,
                shape: &kept_shape,
                full: &shape,
            };
            let mut printed = Vec::new();
            block.printed(summarize, &mut printed);
            block.render(indent, summarize, &Formatter::new(&printed))
        };
        if self.dtype() == crate::DType::F64 {
            suffixes.push("dtype=float64".to_string());
        }
        if let Some(g) = self.grad_fn() {
            suffixes.push(format!("grad_fn=<{}>", g.node.name()));
        } else if self.requires_grad() {
            suffixes.push("requires_grad=True".to_string());
        }
        f.write_str(&add_suffixes(format!("{PREFIX}{body}"), &suffixes, indent))
    }
}
