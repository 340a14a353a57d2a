//! Graph nodes and how ops record them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::mode::is_grad_enabled;
use super::rule::Rule;
use crate::dtype::DType;
use crate::error::Result;
use crate::tensor::{Tensor, TensorInner};

static NEXT_NODE_ID: AtomicU64 = AtomicU64::new(1);
static NEXT_HOOK_ID: AtomicU64 = AtomicU64::new(1);

/// A gradient hook: sees the gradient and may return a replacement.
pub type Hook = Arc<dyn Fn(&Tensor) -> Result<Option<Tensor>> + Send + Sync>;

pub(crate) struct OutputMeta {
    pub(crate) tensor: Weak<TensorInner>,
    pub(crate) shape: Vec<usize>,
    pub(crate) dtype: DType,
}

/// One recorded op: its inputs (the graph's edges) and its derivative [`Rule`].
pub struct Node {
    pub(crate) id: u64,
    pub(crate) name: std::borrow::Cow<'static, str>,
    pub(crate) inputs: Vec<Tensor>,
    /// The op's derivative rule; `None` once a backward pass without `retain_graph` freed it
    /// (and the tensors it saved). Shared out under the lock and run outside it, so a rule
    /// that differentiates through its own node does not deadlock.
    rule: Mutex<Option<Arc<Rule>>>,
    pub(crate) outputs: Mutex<Vec<OutputMeta>>,
}

impl Node {
    /// The op's name, e.g. `"einsum"` or `"exp"`.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The tensors this node's op consumed.
    pub fn inputs(&self) -> &[Tensor] {
        &self.inputs
    }
    /// The derivative rule, unless a backward pass freed it.
    pub(crate) fn rule(&self) -> Option<Arc<Rule>> {
        self.rule.lock().clone()
    }
    /// Frees the rule and the tensors it saved (backward without `retain_graph`).
    pub(crate) fn release_rule(&self) {
        drop(self.rule.lock().take());
    }
}

impl Drop for Node {
    /// Drops long chains iteratively: a 100,000-op graph must not overflow the stack.
    fn drop(&mut self) {
        // The rules capture input tensors: drop them first so the inputs below are unique.
        drop(self.rule.get_mut().take());
        let mut stack = std::mem::take(&mut self.inputs);
        while let Some(t) = stack.pop() {
            if let Ok(inner) = Arc::try_unwrap(t.0) {
                if let Some(gf) = inner.grad_fn {
                    if let Ok(mut node) = Arc::try_unwrap(gf.node) {
                        drop(node.rule.get_mut().take());
                        stack.append(&mut node.inputs);
                    }
                }
            }
        }
    }
}

/// Where a non-leaf tensor came from: a node and which of its outputs.
#[derive(Clone)]
pub struct GradFn {
    /// The producing node.
    pub node: Arc<Node>,
    /// Index among the node's outputs.
    pub output: usize,
}

/// Removes a hook when `remove` is called.
pub struct HookHandle {
    pub(crate) tensor: Weak<TensorInner>,
    pub(crate) id: u64,
}

impl HookHandle {
    /// Unregisters the hook.
    pub fn remove(self) {
        if let Some(t) = self.tensor.upgrade() {
            t.hooks.lock().retain(|(id, _)| *id != self.id);
        }
    }
}

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
    let node = Arc::new(Node {
        id: NEXT_NODE_ID.fetch_add(1, Ordering::Relaxed),
        name: name.into(),
        inputs: inputs.iter().map(|&t| t.clone()).collect(),
        rule: Mutex::new(Some(Arc::new(make_rule()))),
        outputs: Mutex::new(Vec::new()),
    });
    let outs: Vec<Tensor> = outputs
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let gf = GradFn {
                node: node.clone(),
                output: i,
            };
            t.with_grad_fn(gf)
        })
        .collect();
    *node.outputs.lock() = outs
        .iter()
        .map(|t| OutputMeta {
            tensor: Arc::downgrade(&t.0),
            shape: t.dims().to_vec(),
            dtype: t.dtype(),
        })
        .collect();
    outs
}

/// [`record`] for the common one-output op.
pub(crate) fn record1(
    name: &'static str,
    inputs: &[&Tensor],
    output: Tensor,
    make_rule: impl FnOnce() -> Rule,
) -> Tensor {
    if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
        return output;
    }
    let mut v = record(name, inputs, vec![output], make_rule);
    v.pop()
        .unwrap_or_else(|| unreachable!("record returns one output per output"))
}

/// The id the next recorded node will get (nodes created later have larger ids).
pub(crate) fn next_node_id() -> u64 {
    NEXT_NODE_ID.load(Ordering::Relaxed)
}
