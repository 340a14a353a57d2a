//! Vector–Jacobian products of tensor functions (`torch.func.vjp`), and the input handling
//! shared by the other transforms of this module.

use crate::autograd::{grad, is_grad_enabled, record1, GradOptions, Rule};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// A function of several tensors returning several tensors: what the transforms of
/// [`crate::func`] take.
pub type TensorFn<'a> = dyn Fn(&[Tensor]) -> Result<Vec<Tensor>> + 'a;

/// The inputs a transform hands to the user's function.
pub(crate) struct Prepared {
    /// One tensor per primal: a fresh leaf that requires grad, or (when the primal itself
    /// carries gradient history and grad mode is on) a recorded alias of it.
    pub(crate) leaves: Vec<Tensor>,
    /// True when some primal is tracked by an enclosing computation: the transform then
    /// records its own backward passes (`create_graph`) so that its results can be
    /// differentiated again with respect to the primals.
    pub(crate) nested: bool,
}

/// Prepares `primals` for a transform named `op` (errors name it).
pub(crate) fn prepare(op: &'static str, primals: &[Tensor]) -> Result<Prepared> {
    if primals.is_empty() {
        return Err(Error::arg(
            op,
            "primals",
            "at least one input tensor is needed",
        ));
    }
    let nested = is_grad_enabled() && primals.iter().any(|p| p.requires_grad());
    let leaves = primals
        .iter()
        .map(|p| {
            if nested && p.requires_grad() {
                alias(p)
            } else {
                p.detach().requires_grad_(true)
            }
        })
        .collect();
    Ok(Prepared { leaves, nested })
}

/// A recorded identity of a tracked tensor: a distinct graph slot that `grad` can target,
/// whose backward passes the gradient on to `p` (so nested transforms compose).
fn alias(p: &Tensor) -> Tensor {
    record1("func_input", &[p], p.detach(), |_| {
        Rule::linear1_batched(|t| Ok(t.clone()), |g, _| Ok(g.clone()))
    })
}

/// Checks that `given[i]` fits `outs[i]` in shape and dtype; `arg` names the argument.
pub(crate) fn check_like(
    op: &'static str,
    arg: &'static str,
    what: &str,
    given: &[Tensor],
    outs: &[Tensor],
) -> Result<()> {
    if given.len() != outs.len() {
        return Err(Error::arg(
            op,
            arg,
            format!(
                "f returned {} {what}{} but {} {arg} were given",
                outs.len(),
                if outs.len() == 1 { "" } else { "s" },
                given.len()
            ),
        ));
    }
    for (i, (c, o)) in given.iter().zip(outs).enumerate() {
        if c.dims() != o.dims() {
            return Err(Error::arg(
                op,
                arg,
                format!(
                    "{arg}[{i}] has shape {:?} but {what} {i} has shape {:?}",
                    c.dims(),
                    o.dims()
                ),
            ));
        }
        if c.dtype() != o.dtype() {
            return Err(Error::arg(
                op,
                arg,
                format!(
                    "{arg}[{i}] is {:?} but {what} {i} is {:?}",
                    c.dtype(),
                    o.dtype()
                ),
            ));
        }
    }
    Ok(())
}

/// Errors if `f` returned nothing.
pub(crate) fn check_nonempty(op: &'static str, outs: &[Tensor]) -> Result<()> {
    if outs.is_empty() {
        return Err(Error::arg(op, "f", "returned no tensor"));
    }
    Ok(())
}

/// The outputs as returned to the caller: detached unless the transform is nested.
pub(crate) fn finish_outputs(outs: Vec<Tensor>, nested: bool) -> Vec<Tensor> {
    if nested {
        outs
    } else {
        outs.iter().map(Tensor::detach).collect()
    }
}

/// `Σ_i ⟨cotangents[i], ∂outs[i]/∂leaves⟩` with zeros for unused leaves and for outputs that
/// do not depend on any leaf.
pub(crate) fn vjp_of_recorded(
    outs: &[Tensor],
    leaves: &[Tensor],
    cotangents: &[Tensor],
    opts: GradOptions,
) -> Result<Vec<Tensor>> {
    let (roots, cots): (Vec<Tensor>, Vec<Tensor>) = outs
        .iter()
        .zip(cotangents)
        .filter(|(o, _)| o.requires_grad())
        .map(|(o, c)| (o.clone(), c.clone()))
        .unzip();
    if roots.is_empty() {
        return leaves.iter().map(Tensor::zeros_like).collect();
    }
    let gs = grad(&roots, leaves, Some(&cots), opts.allow_unused(true))?;
    gs.into_iter()
        .zip(leaves)
        .map(|(g, x)| g.map_or_else(|| x.zeros_like(), Ok))
        .collect()
}

/// Evaluates `f` at `primals` and pulls `cotangents` (one per output, same shapes and dtypes)
/// back through it, like `torch.func.vjp(f, *primals)[1](*cotangents)`.
///
/// Returns `(outputs, cotangents of the primals)`. A primal that `f` does not use gets zeros,
/// and an output that depends on no primal contributes nothing. When a primal carries
/// gradient history (and grad mode is on), the results are recorded too, so `vjp` can be
/// nested inside another transform or differentiated again.
///
/// ```
/// use eingrad::{Tensor, func::vjp};
/// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]).unwrap();
/// let u = Tensor::from_vec(vec![1.0f64, 0.0, 1.0], &[3]).unwrap();
/// let f = |xs: &[Tensor]| Ok(vec![xs[0].mul(&xs[0])?]);
/// let (out, g) = vjp(&f, &[x], &[u]).unwrap();
/// assert_eq!(out[0].to_vec::<f64>().unwrap(), vec![1.0, 4.0, 9.0]);
/// assert_eq!(g[0].to_vec::<f64>().unwrap(), vec![2.0, 0.0, 6.0]);
/// ```
pub fn vjp(
    f: &TensorFn<'_>,
    primals: &[Tensor],
    cotangents: &[Tensor],
) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
    let p = prepare("vjp", primals)?;
    let outs = f(&p.leaves)?;
    check_nonempty("vjp", &outs)?;
    check_like("vjp", "cotangents", "output", cotangents, &outs)?;
    let create = is_grad_enabled() && (p.nested || cotangents.iter().any(|c| c.requires_grad()));
    let opts = GradOptions::default().create_graph(create);
    let grads = vjp_of_recorded(&outs, &p.leaves, cotangents, opts)?;
    Ok((finish_outputs(outs, p.nested), grads))
}
