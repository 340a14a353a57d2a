//! Executing an einsum: per-operand diagonals/broadcasts/sums, the planned pairwise
//! contractions, then the generalised output (output-only labels, repeated labels).

use std::sync::Arc;

use super::contract::{contract_pair, permute_to, sum_labels};
use super::parse::{parse_pattern, resolve, ResolvedSpec};
use super::plan::{plan_contraction, EinsumPlan, PlanStrategy};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::ops::shape::view_adjoint as view_adjoint_op;
use crate::storage::check_allocation;
use crate::tensor::Tensor;
use crate::with_dtype;

/// A compiled einsum for fixed operand shapes: the resolved labels and the contraction plan.
/// Reuse it to run the same contraction many times without re-planning.
///
/// ```
/// use eingrad::{Tensor, DType, einsum::{EinsumExpr, PlanStrategy}};
/// let expr = EinsumExpr::new("ab,bc,cd->ad", &[&[2, 3], &[3, 4], &[4, 5]], &[], PlanStrategy::Auto).unwrap();
/// println!("{}", expr.plan());
/// let ops: Vec<Tensor> = [[2, 3], [3, 4], [4, 5]].iter().enumerate()
///     .map(|(i, s)| Tensor::randn(s, DType::F64, i as u64).unwrap()).collect();
/// let r = expr.run(&ops.iter().collect::<Vec<_>>()).unwrap();
/// assert_eq!(r.dims(), &[2, 5]);
/// ```
#[derive(Debug, Clone)]
pub struct EinsumExpr {
    pattern: String,
    resolved: ResolvedSpec,
    /// Per operand: labels after diagonals, broadcast squeezes and private sums.
    reduced_labels: Vec<Vec<char>>,
    plan: EinsumPlan,
    shapes: Vec<Vec<usize>>,
    /// How many times the core result is counted: the product of the sizes of labels summed
    /// away that every operand only broadcasts (a size-1 dim stretched by an explicit size:
    /// `"i->"` with `i = 1000` sums 1000 copies).
    multiplicity: f64,
}

impl EinsumExpr {
    /// Parses `pattern`, resolves it against `shapes` (and `sizes` of output-only labels)
    /// and plans the contraction order.
    pub fn new(
        pattern: &str,
        shapes: &[&[usize]],
        sizes: &[(char, usize)],
        strategy: PlanStrategy,
    ) -> Result<EinsumExpr> {
        let spec = parse_pattern(pattern, shapes.len())?;
        let resolved = resolve(pattern, &spec, shapes, sizes)?;
        let out_shape: Vec<usize> = resolved.output.iter().map(|l| resolved.sizes[l]).collect();
        if crate::layout::checked_numel("einsum", &out_shape).is_err() {
            return Err(Error::Einsum {
                pattern: pattern.to_string(),
                msg: format!(
                    "output shape {out_shape:?} has more elements than memory can address"
                ),
            });
        }
        let out_set: Vec<char> = dedup(&resolved.output);
        let n = resolved.inputs.len();
        let mut reduced_labels = Vec::with_capacity(n);
        for k in 0..n {
            let mut ls: Vec<char> = Vec::new();
            for (d, &l) in resolved.inputs[k].iter().enumerate() {
                if !resolved.broadcast[k][d] && !ls.contains(&l) {
                    ls.push(l);
                }
            }
            // Labels private to this operand and absent from the output are summed now.
            ls.retain(|l| {
                out_set.contains(l)
                    || (0..n).any(|j| {
                        j != k && resolved.inputs[j].contains(l) && !is_bcast(&resolved, j, *l)
                    })
            });
            reduced_labels.push(ls);
        }
        let core_out: Vec<char> = out_set
            .iter()
            .copied()
            .filter(|l| reduced_labels.iter().any(|ls| ls.contains(l)))
            .collect();
        let mut plan = plan_contraction(
            pattern,
            &reduced_labels,
            &core_out,
            &resolved.sizes,
            strategy,
        )?;
        plan.final_output = resolved.output.clone();
        let multiplicity = resolved
            .sizes
            .iter()
            .filter(|(l, _)| {
                !resolved.output.contains(l)
                    && (0..n).all(|k| is_bcast(&resolved, k, **l))
                    && resolved.inputs.iter().any(|ls| ls.contains(l))
            })
            .map(|(_, &s)| s as f64)
            .product();
        Ok(EinsumExpr {
            pattern: pattern.to_string(),
            resolved,
            reduced_labels,
            plan,
            shapes: shapes.iter().map(|s| s.to_vec()).collect(),
            multiplicity,
        })
    }

    /// The contraction plan (prints like opt_einsum's PathInfo).
    pub fn plan(&self) -> &EinsumPlan {
        &self.plan
    }

    /// The output shape.
    pub fn output_shape(&self) -> Vec<usize> {
        self.resolved
            .output
            .iter()
            .map(|l| self.resolved.sizes[l])
            .collect()
    }

    /// Runs the contraction on operands of the shapes this expression was built for.
    pub fn run(&self, operands: &[&Tensor]) -> Result<Tensor> {
        if operands.len() != self.shapes.len() {
            return Err(Error::Einsum {
                pattern: self.pattern.clone(),
                msg: format!(
                    "compiled for {} operands, got {}",
                    self.shapes.len(),
                    operands.len()
                ),
            });
        }
        for (k, (t, s)) in operands.iter().zip(&self.shapes).enumerate() {
            if t.dims() != s.as_slice() {
                return Err(Error::Einsum {
                    pattern: self.pattern.clone(),
                    msg: format!(
                        "operand {k} has shape {:?} but the expression was compiled for {s:?}",
                        t.dims()
                    ),
                });
            }
            if t.dtype() != operands[0].dtype() {
                return Err(Error::Einsum {
                    pattern: self.pattern.clone(),
                    msg: format!(
                        "operand {k} is {:?} but operand 0 is {:?}",
                        t.dtype(),
                        operands[0].dtype()
                    ),
                });
            }
        }
        // An inner op's error (an output too large to allocate) is reported as this pattern's.
        self.execute(operands).map_err(|e| match e {
            e @ Error::Einsum { .. } => e,
            Error::InvalidArgument {
                op: "einsum",
                arg,
                msg,
            } => Error::Einsum {
                pattern: self.pattern.clone(),
                msg: format!("invalid argument `{arg}`: {msg}"),
            },
            e => Error::Einsum {
                pattern: self.pattern.clone(),
                msg: e.to_string(),
            },
        })
    }

    /// [`EinsumExpr::run`] on checked operands.
    fn execute(&self, operands: &[&Tensor]) -> Result<Tensor> {
        // 1. Per operand: squeeze broadcast dims, take diagonals, sum private labels.
        let mut current: Vec<(Tensor, Vec<char>)> = Vec::with_capacity(operands.len());
        for (k, t) in operands.iter().enumerate() {
            current.push(self.reduce_operand(k, t)?);
        }
        // 2. Pairwise contractions along the planned path.
        let core_out: Vec<char> = self.plan.output.clone();
        for step in &self.plan.path.0 {
            let mut picked: Vec<(Tensor, Vec<char>)> = Vec::with_capacity(step.len());
            let mut idx = step.clone();
            idx.sort_unstable_by(|a, b| b.cmp(a));
            for &i in &idx {
                picked.push(current.remove(i));
            }
            picked.reverse();
            let mut keep: Vec<char> = core_out.clone();
            for (_, ls) in &current {
                keep.extend(ls.iter().copied());
            }
            let result = match picked.len() {
                1 => sum_labels(&picked[0].0, &picked[0].1, &keep)?,
                2 => contract_pair(
                    &picked[0].0,
                    &picked[0].1,
                    &picked[1].0,
                    &picked[1].1,
                    &keep,
                )?,
                _ => {
                    return Err(Error::Einsum {
                        pattern: self.pattern.clone(),
                        msg: format!("path step {step:?} must name one or two operands"),
                    })
                }
            };
            current.push(result);
        }
        // 3. Whatever remains (one operand after a full path) becomes the output.
        let (mut t, mut ls) = match current.len() {
            1 => current.pop().expect("one"),
            _ => {
                // No path steps were needed only when there is exactly one operand.
                let mut it = current.into_iter();
                let first = it.next().ok_or_else(|| Error::Einsum {
                    pattern: self.pattern.clone(),
                    msg: "no operands".into(),
                })?;
                it.try_fold(first, |(a, la), (b, lb)| {
                    contract_pair(&a, &la, &b, &lb, &core_out)
                })?
            }
        };
        let (t2, l2) = sum_labels(&t, &ls, &core_out)?;
        t = permute_to(&t2, &l2, &core_out)?;
        if self.multiplicity == 0.0 {
            // A sum over no copies is 0 even of inf or NaN (and passes a zero gradient).
            t = Tensor::where_(&t.ones_like()?, &t.zeros_like()?, &t)?;
        } else if self.multiplicity != 1.0 {
            t = t.mul_scalar(self.multiplicity)?;
        }
        ls = core_out;
        self.generalised_output(t, ls)
    }

    fn reduce_operand(&self, k: usize, t: &Tensor) -> Result<(Tensor, Vec<char>)> {
        let labels = &self.resolved.inputs[k];
        let bcast = &self.resolved.broadcast[k];
        // squeeze broadcast (size-1) dims
        let mut ls: Vec<char> = Vec::with_capacity(labels.len());
        let mut shape: Vec<usize> = Vec::with_capacity(labels.len());
        for (d, &l) in labels.iter().enumerate() {
            if !bcast[d] {
                ls.push(l);
                shape.push(t.dims()[d]);
            }
        }
        let mut t = if shape.len() != t.rank() {
            t.reshape(&shape)?
        } else {
            t.clone()
        };
        // diagonals of repeated labels
        loop {
            let rep = ls.iter().enumerate().find_map(|(i, l)| {
                let dims: Vec<usize> = (0..ls.len()).filter(|&j| ls[j] == *l).collect();
                (dims.len() > 1 && dims[0] == i).then_some((*l, dims))
            });
            let Some((l, dims)) = rep else { break };
            t = t.diagonal(&dims)?;
            ls.retain(|x| *x != l);
            ls.push(l);
        }
        let keep = &self.reduced_labels[k];
        let (t, ls) = sum_labels(&t, &ls, keep)?;
        Ok((t, ls))
    }

    /// Adds output-only labels (broadcast) and repeated output labels (diagonal embedding).
    fn generalised_output(&self, core: Tensor, core_labels: Vec<char>) -> Result<Tensor> {
        let out = &self.resolved.output;
        let uniq = dedup(out);
        if uniq.len() == out.len() && uniq.iter().all(|l| core_labels.contains(l)) {
            return permute_to(&core, &core_labels, out);
        }
        // Bring the core into `uniq` order, inserting size-1 dims for output-only labels.
        let present: Vec<char> = uniq
            .iter()
            .copied()
            .filter(|l| core_labels.contains(l))
            .collect();
        let t = permute_to(&core, &core_labels, &present)?;
        let shape1: Vec<usize> = uniq
            .iter()
            .map(|l| {
                if core_labels.contains(l) {
                    self.resolved.sizes[l]
                } else {
                    1
                }
            })
            .collect();
        let full: Vec<usize> = uniq.iter().map(|l| self.resolved.sizes[l]).collect();
        let t = t.reshape(&shape1)?.broadcast_to(&full)?;
        if uniq.len() == out.len() {
            return permute_to(&t, &uniq, out);
        }
        // Repeated labels: embed on the diagonal of the full output (checked before the
        // broadcast core is copied: the output may be far too large for memory).
        let out_shape: Vec<usize> = out.iter().map(|l| self.resolved.sizes[l]).collect();
        with_dtype!(t.dtype(), T => check_allocation::<T>("einsum", &out_shape))?;
        let out_labels = out.clone();
        let target_order = uniq.clone();
        let view = Arc::new(move |l: &Layout| -> Result<Layout> {
            let mut layout = l.clone();
            let mut ls = out_labels.clone();
            for lab in &target_order {
                let dims: Vec<usize> = (0..ls.len()).filter(|&j| ls[j] == *lab).collect();
                if dims.len() > 1 {
                    layout = layout.diagonal(&dims)?;
                    ls.retain(|x| x != lab);
                    ls.push(*lab);
                }
            }
            let perm: Vec<usize> = target_order
                .iter()
                .map(|lab| ls.iter().position(|x| x == lab).expect("label"))
                .collect();
            layout.permute(&perm)
        });
        view_adjoint_op(&t.contiguous()?, &out_shape, "einsum_embed", view)
    }
}

fn is_bcast(r: &ResolvedSpec, k: usize, l: char) -> bool {
    r.inputs[k]
        .iter()
        .zip(&r.broadcast[k])
        .all(|(x, &b)| *x != l || b)
}

fn dedup(ls: &[char]) -> Vec<char> {
    let mut out = Vec::with_capacity(ls.len());
    for &l in ls {
        if !out.contains(&l) {
            out.push(l);
        }
    }
    out
}

/// Evaluates an einsum (NumPy/PyTorch notation, generalised outputs allowed when every
/// output-only label's size follows from the operands — use [`einsum_with_sizes`] otherwise).
///
/// ```
/// use eingrad::{einsum, Tensor, DType};
/// let a = Tensor::arange(0.0, 6.0, 1.0, DType::F64).unwrap().reshape(&[2, 3]).unwrap();
/// let b = Tensor::ones(&[3, 2], DType::F64).unwrap();
/// let c = einsum("ij,jk->ik", &[&a, &b]).unwrap();
/// assert_eq!(c.to_vec::<f64>().unwrap(), vec![3.0, 3.0, 12.0, 12.0]);
/// let d = einsum("i->ii", &[&Tensor::ones(&[2], DType::F64).unwrap()]).unwrap();
/// assert_eq!(d.to_vec::<f64>().unwrap(), vec![1.0, 0.0, 0.0, 1.0]);
/// ```
pub fn einsum(pattern: &str, operands: &[&Tensor]) -> Result<Tensor> {
    einsum_with_sizes(pattern, operands, &[])
}

/// [`einsum`] with the sizes of output labels that appear in no input.
///
/// ```
/// use eingrad::{einsum_with_sizes, Tensor, DType};
/// let w = Tensor::ones(&[2, 2], DType::F32).unwrap();
/// let r = einsum_with_sizes("jk->ijk", &[&w], &[('i', 3)]).unwrap();
/// assert_eq!(r.dims(), &[3, 2, 2]);
/// assert!(eingrad::einsum("jk->ijk", &[&w]).is_err());
/// ```
pub fn einsum_with_sizes(
    pattern: &str,
    operands: &[&Tensor],
    sizes: &[(char, usize)],
) -> Result<Tensor> {
    let shapes: Vec<&[usize]> = operands.iter().map(|t| t.dims()).collect();
    EinsumExpr::new(pattern, &shapes, sizes, PlanStrategy::Auto)?.run(operands)
}
