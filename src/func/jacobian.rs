//! Full Jacobians of tensor functions (`torch.func.jacrev` / `torch.autograd.functional.jacobian`).
//!
//! `f` is recorded once; the Jacobian is then read off that one graph by rows (reverse mode:
//! the output elements' one-hot cotangents go through batched reverse passes, each op's
//! backward rule vectorised over a leading batch dim or run once per row inside the pass) or
//! by columns (forward mode: one-hot tangents pushed through the ops' JVP rules), per input as
//! [`JacobianMode`] says. Graphs with hooks or `retain_grad`, and nested Jacobians, take one
//! reverse pass per row. For an einsum, the closed form
//! [`einsum_jacobian`](super::einsum_jacobian) is one einsum instead.

use crate::autograd::{grad, push_tangents, GradOptions};
use crate::dtype::{DType, Float};
use crate::error::{Error, Result};
use crate::kernels::strided::scatter;
use crate::kernels::Operand;
use crate::layout::checked_numel;
use crate::storage::{try_filled, try_zeroed, Storage};
use crate::tensor::Tensor;
use crate::with_dtype;

use super::vjp::{check_nonempty, prepare, TensorFn};

/// How [`jacobian`] reads the Jacobian off the recorded graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JacobianMode {
    /// By rows: every output element's cotangent at once, in batched reverse passes over the
    /// one recorded graph (each op's backward rule vectorised over a leading batch of
    /// cotangents; ops without a vectorised rule run once per row inside the pass). Graphs
    /// with hooks or `retain_grad`, and nested (differentiable) Jacobians, take one reverse
    /// pass per row instead.
    Reverse,
    /// One column per input element by forward mode: a one-hot tangent is pushed through
    /// the recorded graph with each op's JVP rule ([`crate::func::jvp`]'s machinery). When
    /// the result itself must stay differentiable (an input carries gradient history), the
    /// columns are instead the transpose of a recorded reverse pass (differentiating
    /// `⟨Jᵀu, e_j⟩` with respect to `u`), since pushed tangents carry no history. The
    /// values are the same as `Reverse`'s.
    Forward,
    /// Per input: by columns (`Forward`) when the input has several times fewer elements
    /// than all outputs together, else by rows (`Reverse`; the rows of all such inputs come
    /// from the same reverse passes).
    #[default]
    Auto,
}

/// A column pass through the backward graph costs about 1–1.5 row passes (measured on small
/// einsum/elementwise/softmax graphs), plus one recorded reverse pass for all columns; `Auto`
/// goes by columns for an input when `COLUMN_COST × its elements < output elements`.
const COLUMN_COST: usize = 2;

/// Jacobian blocks being filled, one per (output, input) pair, each laid out as
/// `out.shape ++ in.shape` (row-major: `rows` = output elements, `cols` = input elements).
enum Blocks {
    /// Plain values (the usual case), each block in its input's dtype.
    Values(Vec<Vec<Storage>>),
    /// Tensors with history (nested transforms): rows or columns, stacked at the end.
    Tracked(Vec<Vec<Vec<Option<Tensor>>>>),
}

/// Copies the elements of `v` (row-major) to `block[start + i * step]`.
fn scatter_into(block: &mut Storage, start: usize, step: usize, v: &Tensor) -> Result<()> {
    // A column pushed forward has the output's dtype; the block has the input's.
    let converted;
    let v = if v.dtype() == block.dtype() {
        v
    } else {
        converted = v.detach().to_dtype(block.dtype())?;
        &converted
    };
    with_dtype!(block.dtype(), T => {
        let mismatch = Error::DTypeMismatch {
            op: "jacobian",
            lhs: v.dtype(),
            rhs: T::DTYPE,
        };
        let storage = v.storage();
        let (Some(dst), Some(src)) = (block.as_mut_slice::<T>(), storage.as_slice::<T>()) else {
            return Err(mismatch);
        };
        let src = Operand {
            data: src,
            layout: v.layout(),
        };
        scatter("jacobian", src, dst, start, step)
    })
}

struct Assembler {
    blocks: Blocks,
    out_shapes: Vec<Vec<usize>>,
    in_shapes: Vec<Vec<usize>>,
    in_dtypes: Vec<DType>,
    /// Per input: filled by rows (else by columns).
    by_row: Vec<bool>,
}

impl Assembler {
    /// Room for every block; an error when a block (output size × input size elements) cannot
    /// be allocated.
    fn new(
        outs: &[Tensor],
        leaves: &[Tensor],
        by_row: &[bool],
        tracked: bool,
    ) -> Result<Assembler> {
        let out_shapes: Vec<Vec<usize>> = outs.iter().map(|o| o.dims().to_vec()).collect();
        let in_shapes: Vec<Vec<usize>> = leaves.iter().map(|x| x.dims().to_vec()).collect();
        let blocks = if tracked {
            Blocks::Tracked(
                outs.iter()
                    .map(|o| {
                        leaves
                            .iter()
                            .zip(by_row)
                            .map(|(x, &r)| {
                                let len = if r { o.numel() } else { x.numel() };
                                try_filled("jacobian", &[len], len, None)
                            })
                            .collect::<Result<_>>()
                    })
                    .collect::<Result<_>>()?,
            )
        } else {
            Blocks::Values(
                outs.iter()
                    .map(|o| {
                        leaves
                            .iter()
                            .map(|x| {
                                let shape: Vec<usize> =
                                    o.dims().iter().chain(x.dims()).copied().collect();
                                let n = checked_numel("jacobian", &shape)?;
                                with_dtype!(x.dtype(), T => {
                                    Ok(Storage::from_vec(try_zeroed::<T>("jacobian", &shape, n)?))
                                })
                            })
                            .collect::<Result<_>>()
                    })
                    .collect::<Result<_>>()?,
            )
        };
        Ok(Assembler {
            blocks,
            out_shapes,
            in_dtypes: leaves.iter().map(|x| x.dtype()).collect(),
            in_shapes,
            by_row: by_row.to_vec(),
        })
    }

    /// Stores row `r` (shape of input `j`) or column `r` (shape of output `i`) of block
    /// (i, j), as the plan for input `j` says.
    fn put(&mut self, i: usize, j: usize, r: usize, v: Tensor) -> Result<()> {
        let cols: usize = self.in_shapes[j].iter().product();
        match &mut self.blocks {
            Blocks::Tracked(b) => b[i][j][r] = Some(v),
            Blocks::Values(b) => {
                let (start, step) = if self.by_row[j] {
                    (r * cols, 1)
                } else {
                    (r, cols)
                };
                scatter_into(&mut b[i][j], start, step, &v)?;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<Vec<Tensor>>> {
        let mut result = Vec::with_capacity(self.out_shapes.len());
        let (outs, ins) = (&self.out_shapes, &self.in_shapes);
        match self.blocks {
            Blocks::Values(b) => {
                for (i, row) in b.into_iter().enumerate() {
                    let mut r = Vec::with_capacity(row.len());
                    for (j, buf) in row.into_iter().enumerate() {
                        let shape: Vec<usize> = outs[i].iter().chain(&ins[j]).copied().collect();
                        r.push(Tensor::from_storage(buf, &shape));
                    }
                    result.push(r);
                }
            }
            Blocks::Tracked(b) => {
                for (i, row) in b.into_iter().enumerate() {
                    let mut r = Vec::with_capacity(row.len());
                    for (j, parts) in row.into_iter().enumerate() {
                        let by_row = self.by_row[j];
                        let shape: Vec<usize> = outs[i].iter().chain(&ins[j]).copied().collect();
                        let part_shape = if by_row { &ins[j] } else { &outs[i] };
                        let dtype = self.in_dtypes[j];
                        if parts.is_empty() || shape.iter().product::<usize>() == 0 {
                            r.push(Tensor::zeros(&shape, dtype)?);
                            continue;
                        }
                        let parts: Vec<Tensor> = parts
                            .into_iter()
                            .map(|p| match p {
                                None => Tensor::zeros(part_shape, dtype),
                                Some(p) if p.dtype() != dtype => p.to_dtype(dtype),
                                Some(p) => Ok(p),
                            })
                            .collect::<Result<_>>()?;
                        let refs: Vec<&Tensor> = parts.iter().collect();
                        let dim = if by_row { 0 } else { part_shape.len() as isize };
                        r.push(Tensor::stack(&refs, dim)?.reshape(&shape)?);
                    }
                    result.push(r);
                }
            }
        }
        Ok(result)
    }
}

/// A tensor of `shape` with a one at flat position `r`.
fn one_hot(shape: &[usize], dtype: DType, r: usize) -> Tensor {
    let n: usize = shape.iter().product();
    with_dtype!(dtype, T => {
        let mut v = vec![T::zero(); n];
        v[r] = T::one();
        Tensor::from_buf(v, shape)
    })
}

/// Most cotangent elements (or gradient elements) one batched reverse pass may hold. Small
/// enough that its buffers come from the heap and stay in cache: 2^22 was 3.5x slower than
/// 2^15–2^17 on jac_conv (page faults of fresh multi-MB buffers).
const BATCH_ELEMENTS: usize = 1 << 16;

/// `[batch] ++ shape` one-hot cotangents for output rows `r0..r0 + batch`.
fn one_hot_rows(shape: &[usize], dtype: DType, r0: usize, batch: usize) -> Tensor {
    let n: usize = shape.iter().product();
    let full: Vec<usize> = std::iter::once(batch)
        .chain(shape.iter().copied())
        .collect();
    with_dtype!(dtype, T => {
        let mut v = vec![T::zero(); batch * n];
        for k in 0..batch {
            v[k * n + r0 + k] = T::one();
        }
        Tensor::from_buf(v, &full)
    })
}

/// Fills the row-planned blocks of plain values with batched reverse passes: one walk of the
/// graph per chunk of output rows, each node running its rule vectorised over the chunk
/// ([`crate::autograd::grad_batched`]). Errors (e.g. a hook in the graph) leave the caller
/// to go row by row, which overwrites every row.
fn rows_batched(
    outs: &[Tensor],
    row_leaves: &[Tensor],
    rows: &[usize],
    blocks: &mut [Vec<Storage>],
    in_shapes: &[Vec<usize>],
) -> Result<()> {
    let widest = row_leaves.iter().map(|x| x.numel()).max().unwrap_or(1);
    for (i, out) in outs.iter().enumerate() {
        if !out.requires_grad() {
            continue;
        }
        let n = out.numel();
        let chunk = (BATCH_ELEMENTS / n.max(widest).max(1)).clamp(1, n.max(1));
        let mut r0 = 0;
        while r0 < n {
            let b = chunk.min(n - r0);
            let e = one_hot_rows(out.dims(), out.dtype(), r0, b);
            let gs = crate::autograd::grad_batched(std::slice::from_ref(out), row_leaves, &[e], b)?;
            for (&j, g) in rows.iter().zip(gs) {
                if let Some(g) = g {
                    // rows r0..r0 + b of block (i, j) at once, from g shaped [b] ++ in.shape
                    let cols: usize = in_shapes[j].iter().product();
                    scatter_into(&mut blocks[i][j], r0 * cols, 1, &g)?;
                }
            }
            r0 += b;
        }
    }
    Ok(())
}

/// The Jacobian blocks of recorded `outs` with respect to `leaves`.
pub(crate) fn jacobian_of_recorded(
    outs: &[Tensor],
    leaves: &[Tensor],
    mode: JacobianMode,
    nested: bool,
) -> Result<Vec<Vec<Tensor>>> {
    let n_out: usize = outs
        .iter()
        .filter(|o| o.requires_grad())
        .map(|o| o.numel())
        .sum();
    // Per input: rows (one reverse pass per output element, shared by all row inputs) or
    // columns (one pass per element of that input through the backward graph).
    let mut by_row: Vec<bool> = leaves
        .iter()
        .map(|x| match mode {
            JacobianMode::Reverse => true,
            JacobianMode::Forward => false,
            JacobianMode::Auto => x.numel().saturating_mul(COLUMN_COST) >= n_out,
        })
        .collect();
    let mut asm = Assembler::new(outs, leaves, &by_row, nested)?;
    if by_row.iter().any(|r| !r) && !by_columns(outs, leaves, &by_row, &mut asm, nested)? {
        // A backward rule was not differentiable in its upstream gradient: rows instead.
        by_row = vec![true; leaves.len()];
        asm = Assembler::new(outs, leaves, &by_row, nested)?;
    }
    let rows: Vec<usize> = (0..leaves.len()).filter(|&j| by_row[j]).collect();
    if rows.is_empty() {
        return asm.finish();
    }
    let row_leaves: Vec<Tensor> = rows.iter().map(|&j| leaves[j].clone()).collect();
    // (plain values exactly when not nested)
    if let Blocks::Values(blocks) = &mut asm.blocks {
        if rows_batched(outs, &row_leaves, &rows, blocks, &asm.in_shapes).is_ok() {
            return asm.finish();
        }
    }
    let opts = GradOptions::default()
        .retain_graph(true)
        .allow_unused(true)
        .create_graph(nested);
    for (i, out) in outs.iter().enumerate() {
        if !out.requires_grad() {
            continue; // depends on no input: zero blocks
        }
        let root = std::slice::from_ref(out);
        for r in 0..out.numel() {
            let e = one_hot(out.dims(), out.dtype(), r);
            let gs = grad(root, &row_leaves, Some(std::slice::from_ref(&e)), opts)?;
            for (&j, g) in rows.iter().zip(gs) {
                if let Some(g) = g {
                    asm.put(i, j, r, g)?;
                }
            }
        }
    }
    asm.finish()
}

/// Fills the blocks of the inputs planned by columns, by the transpose of the reverse pass.
/// Returns false if some reverse rule turned out not to be differentiable in its upstream
/// gradient (the blocks are then incomplete).
fn by_columns(
    outs: &[Tensor],
    leaves: &[Tensor],
    by_row: &[bool],
    asm: &mut Assembler,
    nested: bool,
) -> Result<bool> {
    let live: Vec<usize> = (0..outs.len())
        .filter(|&i| outs[i].requires_grad())
        .collect();
    let cols: Vec<usize> = (0..leaves.len()).filter(|&j| !by_row[j]).collect();
    if live.is_empty() || cols.is_empty() {
        return Ok(true);
    }
    let roots: Vec<Tensor> = live.iter().map(|&i| outs[i].clone()).collect();
    if !nested {
        // True forward mode: push a one-hot tangent per input element through the recorded
        // graph (each op's JVP rule), one column of every output block per push.
        let _g = crate::autograd::NoGradGuard::new();
        for &j in &cols {
            let x = &leaves[j];
            for c in 0..x.numel() {
                let e = one_hot(x.dims(), x.dtype(), c);
                // An op that can be pushed forward neither by its own rule nor through its
                // backward rule: read this input by rows instead.
                let Ok(tangents) = push_tangents(std::slice::from_ref(x), &[e], &roots) else {
                    return Ok(false);
                };
                for (k, t) in tangents.into_iter().enumerate() {
                    asm.put(live[k], j, c, t)?;
                }
            }
        }
        return Ok(true);
    }
    let col_leaves: Vec<Tensor> = cols.iter().map(|&j| leaves[j].clone()).collect();
    // Random cotangents: the column sums Σ_o u[o]·J[o, c] must reproduce Jᵀu, which checks
    // that no reverse rule dropped its dependence on the upstream gradient.
    let us: Vec<Tensor> = roots
        .iter()
        .enumerate()
        .map(|(k, o)| {
            Ok(Tensor::randn(o.dims(), o.dtype(), 0x5eed + k as u64)?.requires_grad_(true))
        })
        .collect::<Result<_>>()?;
    let u_vals: Vec<Vec<f64>> = us.iter().map(Tensor::to_vec_f64).collect();
    let first = GradOptions::default()
        .create_graph(true)
        .retain_graph(true)
        .allow_unused(true);
    let jtu = grad(&roots, &col_leaves, Some(&us), first)?;
    let second = GradOptions::default()
        .retain_graph(true)
        .allow_unused(true)
        .create_graph(nested);
    for (&j, g) in cols.iter().zip(&jtu) {
        let Some(g) = g else { continue }; // input unused: zero blocks
        if !g.requires_grad() {
            if g.to_vec_f64().iter().all(|v| *v == 0.0) {
                continue;
            }
            return Ok(false);
        }
        let root = std::slice::from_ref(g);
        let expected = g.to_vec_f64();
        for (c, &want) in expected.iter().enumerate() {
            let e = one_hot(g.dims(), g.dtype(), c);
            let columns = grad(root, &us, Some(std::slice::from_ref(&e)), second)?;
            let (mut got, mut scale) = (0.0f64, want.abs());
            for (k, col) in columns.into_iter().enumerate() {
                if let Some(col) = col {
                    for (a, b) in col.to_vec_f64().iter().zip(&u_vals[k]) {
                        got += a * b;
                        scale += (a * b).abs();
                    }
                    asm.put(live[k], j, c, col)?;
                }
            }
            if !((got - want).abs() <= 1e-3 * scale + 1e-30 || (got.is_nan() && want.is_nan())) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The Jacobian of `f` at `inputs`: `result[i][j]` is ∂ output i / ∂ input j, of shape
/// `output_i.shape ++ input_j.shape` (like `torch.func.jacrev(f, argnums=all)`).
///
/// Every block has its input's dtype, in every mode (an f64 → f32 function has f64 blocks).
///
/// `f` is run (recorded) once; the blocks are read off that graph as `mode` says. An output
/// that does not depend on an input gives a zero block. When an input carries gradient
/// history (and grad mode is on) the blocks are recorded too and can be differentiated again.
///
/// ```
/// use eingrad::{Tensor, func::{jacobian, JacobianMode}};
/// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap();
/// let f = |xs: &[Tensor]| Ok(vec![xs[0].mul(&xs[0])?.sum_all()?, xs[0].exp()?]);
/// let j = jacobian(&f, &[x], JacobianMode::Reverse).unwrap();
/// assert_eq!(j[0][0].dims(), &[2]);
/// assert_eq!(j[0][0].to_vec::<f64>().unwrap(), vec![2.0, 4.0]);
/// assert_eq!(j[1][0].dims(), &[2, 2]);
/// let e = 2f64.exp();
/// let jf = jacobian(&f, &[Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap()], JacobianMode::Forward).unwrap();
/// assert!((jf[1][0].to_vec::<f64>().unwrap()[3] - e).abs() < 1e-12);
/// ```
pub fn jacobian(
    f: &TensorFn<'_>,
    inputs: &[Tensor],
    mode: JacobianMode,
) -> Result<Vec<Vec<Tensor>>> {
    let p = prepare("jacobian", inputs)?;
    let outs = f(&p.leaves)?;
    check_nonempty("jacobian", &outs)?;
    jacobian_of_recorded(&outs, &p.leaves, mode, p.nested)
}

/// Errors unless `t` has exactly one element; `op`/`what` name the culprit.
pub(crate) fn check_scalar(op: &'static str, t: &Tensor) -> Result<()> {
    if t.numel() != 1 {
        return Err(Error::arg(
            op,
            "f",
            format!(
                "must return a one-element tensor, it returned shape {:?}",
                t.dims()
            ),
        ));
    }
    Ok(())
}
