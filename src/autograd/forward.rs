//! Forward mode: pushing tangents through a recorded graph in creation order.
//!
//! Each node applies its own JVP rule when it has one. A node without one is pushed through
//! its backward rule, which is linear in the output gradient and written in differentiable
//! ops: for a fresh `g`, `J·t = ∂/∂g ⟨vjp(g), t⟩` (the transpose of the transpose).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;

use super::engine::grad_after;
use super::mode::EnableGradGuard;
use super::node::{next_node_id, Node};
use super::slice::{GraphSlice, HashMap};
use super::GradOptions;
use crate::error::{AutogradError, Error, Result};
use crate::tensor::{Saved, Tensor, TensorId};

thread_local! {
    /// Per-thread tally of the nodes forward mode pushed through their backward rule.
    static FALLBACKS: RefCell<BTreeMap<Cow<'static, str>, usize>> =
        const { RefCell::new(BTreeMap::new()) };
}

/// The ops that forward mode pushed through the transpose of their backward rule (no JVP rule
/// of their own, or a custom function's rule that declined) on this thread since the last
/// call, with how many nodes of each, sorted by name; the tally is reset.
///
/// Every built-in op has a native JVP rule, so outside custom functions this is expected to
/// be empty; tests use it to prove that. Counting costs one map update per fallback, which
/// is itself several backward passes.
///
/// ```
/// use eingrad::{Tensor, DType, func::jvp, autograd::take_jvp_fallbacks};
/// let x = Tensor::ones(&[2], DType::F64).unwrap();
/// let _ = take_jvp_fallbacks();
/// jvp(&|xs: &[Tensor]| Ok(vec![xs[0].exp()?.sum_all()?]), &[x.clone()], &[x]).unwrap();
/// assert!(take_jvp_fallbacks().is_empty());
/// ```
#[doc(hidden)]
pub fn take_jvp_fallbacks() -> Vec<(String, usize)> {
    FALLBACKS.with(|f| {
        std::mem::take(&mut *f.borrow_mut())
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v))
            .collect()
    })
}

fn note_fallback(node: &Node) {
    FALLBACKS.with(|f| *f.borrow_mut().entry(node.name.clone()).or_insert(0) += 1);
}

/// Tangents of `outputs` given tangents of the leaves `inputs` (zeros where unrelated).
/// `outputs` must have been computed from `inputs` with recording on.
pub(crate) fn push_tangents(
    inputs: &[Tensor],
    tangents: &[Tensor],
    outputs: &[Tensor],
) -> Result<Vec<Tensor>> {
    let mut leaf_tangent: HashMap<TensorId, Tensor> = HashMap::default();
    for (x, t) in inputs.iter().zip(tangents) {
        if let Some(old) = leaf_tangent.remove(&x.id()) {
            leaf_tangent.insert(x.id(), old.add(t)?);
        } else {
            leaf_tangent.insert(x.id(), t.clone());
        }
    }
    // Nodes between the outputs and anything, in creation (= topological) order.
    let slice = GraphSlice::discover(outputs, 0);
    let mut slot_tangent: HashMap<(u64, usize), Tensor> = HashMap::default();
    for node in slice.nodes() {
        let tin: Vec<Option<Tensor>> = (node.edges.iter())
            .map(|e| match &e.grad_fn {
                Some(gf) => slot_tangent.get(&(gf.node.id, gf.output)).cloned(),
                None => leaf_tangent.get(&e.id).cloned(),
            })
            .collect();
        if tin.iter().all(|t| t.is_none()) {
            continue;
        }
        for (k, t) in node_tangents(node, &tin)?.into_iter().enumerate() {
            if let Some(t) = t {
                slot_tangent.insert((node.id, k), t);
            }
        }
    }
    outputs
        .iter()
        .map(|o| tangent_of(o, &slot_tangent, &leaf_tangent).map_or_else(|| o.zeros_like(), Ok))
        .collect()
}

/// The tangent pushed to `t` so far (`None`: zero): at its node output, or at the leaf.
fn tangent_of(
    t: &Tensor,
    slot_tangent: &HashMap<(u64, usize), Tensor>,
    leaf_tangent: &HashMap<TensorId, Tensor>,
) -> Option<Tensor> {
    match &t.0.grad_fn {
        Some(gf) => slot_tangent.get(&(gf.node.id, gf.output)).cloned(),
        None => leaf_tangent.get(&t.id()).cloned(),
    }
}

/// The tangents of `node`'s outputs from those of its inputs: its rule's JVP, or (when a
/// custom function's rule declines) the transpose of its backward rule.
fn node_tangents(node: &Node, tin: &[Option<Tensor>]) -> Result<Vec<Option<Tensor>>> {
    let saved = node.saved().ok_or_else(|| {
        Error::from(AutogradError::ForwardGraphFreed {
            op: node.name.to_string(),
        })
    })?;
    let shapes: Vec<Vec<usize>> = node
        .outputs
        .lock()
        .iter()
        .map(|m| m.shape.to_vec())
        .collect();
    let shape_refs: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
    if let Some(t) = saved.rule.jvp(&saved.inputs, tin, &shape_refs)? {
        return Ok(t);
    }
    note_fallback(node);
    jvp_through_vjp(node, &saved, tin)
}

/// J·t for a node whose rule declines forward mode, through its backward rule.
fn jvp_through_vjp(
    node: &Node,
    saved: &Saved,
    tin: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    let metas: Vec<(Vec<usize>, crate::DType)> = node
        .outputs
        .lock()
        .iter()
        .map(|m| (m.shape.to_vec(), m.dtype))
        .collect();
    let _g = EnableGradGuard::new();
    let since = next_node_id();
    let gs: Vec<Tensor> = metas
        .iter()
        // Any value works (the rule is linear in g); ones make a rule that detaches g
        // visible below.
        .map(|(s, d)| Ok(Tensor::ones(s, *d)?.requires_grad_(true)))
        .collect::<Result<_>>()?;
    let needs: Vec<bool> = tin.iter().map(|t| t.is_some()).collect();
    let grads_in = saved.rule.backward(&saved.inputs, &gs, &needs, false)?;
    let mut total: Option<Tensor> = None;
    for (g, t) in grads_in.iter().zip(tin) {
        if let (Some(g), Some(t)) = (g, t) {
            let term = g.mul(t)?.sum_all()?;
            total = Some(match total {
                Some(acc) => acc.add(&term)?,
                None => term,
            });
        }
    }
    let Some(total) = total else {
        return Ok(vec![None; gs.len()]);
    };
    if !total.requires_grad() {
        // A linear rule that ignores g is the zero map; anything else detached g and
        // cannot be transposed.
        let all_zero = grads_in
            .iter()
            .flatten()
            .all(|g| g.to_vec_f64().iter().all(|v| *v == 0.0));
        if all_zero {
            return Ok(vec![None; gs.len()]);
        }
        return Err(AutogradError::NotTransposable {
            op: node.name.to_string(),
        }
        .into());
    }
    let jt = grad_after(
        &[total],
        &gs,
        GradOptions::default().allow_unused(true),
        since,
    )?;
    Ok(jt.into_iter().map(|t| t.map(|t| t.detach())).collect())
}
