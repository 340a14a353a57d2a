//! How ops record themselves into the graph (the node types live with [`Tensor`], which
//! carries them).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use smallvec::SmallVec;

use super::mode::is_grad_enabled;
use super::rule::Rule;
use crate::tensor::{Edge, OutputMeta, Saved, Tensor};
pub use crate::tensor::{GradFn, Hook, HookHandle, Node};

static NEXT_NODE_ID: AtomicU64 = AtomicU64::new(1);
static NEXT_HOOK_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh id for a hook (its [`HookHandle`] removes it by id).
pub(crate) fn next_hook_id() -> u64 {
    NEXT_HOOK_ID.fetch_add(1, Ordering::Relaxed)
}

/// Records an op: attaches a node with the rule that `make_rule` builds to the freshly
/// computed `outputs` when grad mode is on and an input requires grad; otherwise returns them
/// unchanged (and `make_rule` is never called, so an unrecorded op builds no rule). The one
/// way every op records itself.
pub(crate) fn record(
    name: impl Into<std::borrow::Cow<'static, str>>,
    inputs: &[&Tensor],
    outputs: Vec<Tensor>,
    make_rule: impl FnOnce() -> Rule,
) -> Vec<Tensor> {
    if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
        return outputs;
    }
    let node = new_node(name.into(), inputs, make_rule());
    let outs: Vec<Tensor> = outputs
        .into_iter()
        .enumerate()
        .map(|(i, t)| attach(&node, i, t))
        .collect();
    outs
}

/// [`record`] for the common one-output op (no vectors on the way). `make_rule` sees the
/// output, so a rule that saves it (`tanh`, `softmax`) copies the handle only when recording.
pub(crate) fn record1(
    name: &'static str,
    inputs: &[&Tensor],
    output: Tensor,
    make_rule: impl FnOnce(&Tensor) -> Rule,
) -> Tensor {
    if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
        return output;
    }
    let node = new_node(name.into(), inputs, make_rule(&output));
    attach(&node, 0, output)
}

/// A fresh node over `inputs` with `rule` (its outputs are attached by [`attach`]).
fn new_node(name: std::borrow::Cow<'static, str>, inputs: &[&Tensor], rule: Rule) -> Arc<Node> {
    Arc::new(Node {
        id: NEXT_NODE_ID.fetch_add(1, Ordering::Relaxed),
        name,
        edges: inputs.iter().map(|&t| Edge::new(t)).collect(),
        saved: Mutex::new(Some(Saved {
            rule: Arc::new(rule),
            inputs: inputs.iter().map(|&t| t.clone()).collect(),
        })),
        outputs: Mutex::new(SmallVec::new()),
    })
}

/// Makes `t` output `i` of `node` and notes it among the node's outputs.
fn attach(node: &Arc<Node>, i: usize, t: Tensor) -> Tensor {
    let t = t.with_grad_fn(GradFn {
        node: node.clone(),
        output: i,
    });
    node.outputs.lock().push(OutputMeta {
        tensor: Arc::downgrade(&t.0),
        shape: SmallVec::from_slice(t.dims()),
        dtype: t.dtype(),
    });
    t
}

/// The id the next recorded node will get (nodes created later have larger ids).
pub(crate) fn next_node_id() -> u64 {
    NEXT_NODE_ID.load(Ordering::Relaxed)
}
