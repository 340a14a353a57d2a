//! Forward-mode Jacobian-vector products (JAX's `jvp`, `torch.func.jvp`).

use super::vjp::TensorFn;
use crate::autograd::{push_tangents, EnableGradGuard, NoGradGuard};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Evaluates `f` at `primals` and pushes `tangents` forward: returns `(f(primals), J·t)`.
///
/// Tangents travel forward through the recorded ops, each applying its JVP rule (ops
/// without a rule of their own use the transpose of their backward rule). An output that
/// does not depend on the primals gets a zero tangent.
///
/// ```
/// use eingrad::{Tensor, DType, func::jvp};
/// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap();
/// let t = Tensor::from_vec(vec![1.0f64, 0.0], &[2]).unwrap();
/// let (y, ty) = jvp(&|xs: &[Tensor]| Ok(vec![xs[0].mul(&xs[0])?]), &[x], &[t]).unwrap();
/// assert_eq!(y[0].to_vec::<f64>().unwrap(), vec![1.0, 4.0]);
/// assert_eq!(ty[0].to_vec::<f64>().unwrap(), vec![2.0, 0.0]);
/// ```
pub fn jvp(
    f: &TensorFn,
    primals: &[Tensor],
    tangents: &[Tensor],
) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
    if primals.len() != tangents.len() {
        return Err(Error::arg(
            "jvp",
            "tangents",
            format!("{} primals but {} tangents", primals.len(), tangents.len()),
        ));
    }
    for (i, (p, t)) in primals.iter().zip(tangents).enumerate() {
        if p.dims() != t.dims() {
            return Err(Error::arg(
                "jvp",
                "tangents",
                format!(
                    "tangent {i} has shape {:?} but primal {i} has shape {:?}",
                    t.dims(),
                    p.dims()
                ),
            ));
        }
        if p.dtype() != t.dtype() {
            return Err(Error::arg(
                "jvp",
                "tangents",
                format!(
                    "tangent {i} is {:?} but primal {i} is {:?}",
                    t.dtype(),
                    p.dtype()
                ),
            ));
        }
    }
    let leaves: Vec<Tensor> = primals
        .iter()
        .map(|p| p.detach().requires_grad_(true))
        .collect();
    let outputs = {
        let _g = EnableGradGuard::new();
        f(&leaves)?
    };
    if outputs.is_empty() {
        return Err(Error::arg("jvp", "f", "returned no tensor"));
    }
    let _g = NoGradGuard::new();
    let tans = push_tangents(&leaves, tangents, &outputs)?;
    Ok((outputs.iter().map(|o| o.detach()).collect(), tans))
}
