//! Graph nodes and how ops record them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::mode::is_grad_enabled;
use crate::dtype::DType;
use crate::error::Result;
use crate::tensor::{Tensor, TensorInner};

static NEXT_NODE_ID: AtomicU64 = AtomicU64::new(1);
static NEXT_HOOK_ID: AtomicU64 = AtomicU64::new(1);

/// A backward rule: given the gradients of the node's outputs and which inputs need a
/// gradient, returns one optional gradient per input.
pub(crate) type BackwardFn =
    Box<dyn Fn(&[Tensor], &[bool]) -> Result<Vec<Option<Tensor>>> + Send + Sync>;

/// A forward-mode rule: given the tangents of the node's inputs (`None` = zero), returns
/// the tangents of its outputs (`None` = zero), or `Ok(None)` when it declines (forward mode
/// then goes through the backward rule).
pub(crate) type JvpFn =
    Box<dyn Fn(&[Option<Tensor>]) -> Result<Option<Vec<Option<Tensor>>>> + Send + Sync>;

/// A gradient hook: sees the gradient and may return a replacement.
pub type Hook = Arc<dyn Fn(&Tensor) -> Result<Option<Tensor>> + Send + Sync>;

pub(crate) struct OutputMeta {
    pub(crate) tensor: Weak<TensorInner>,
    pub(crate) shape: Vec<usize>,
    pub(crate) dtype: DType,
}

/// One recorded op: its inputs (the graph's edges) and its backward rule.
pub struct Node {
    pub(crate) id: u64,
    pub(crate) name: std::borrow::Cow<'static, str>,
    pub(crate) inputs: Vec<Tensor>,
    pub(crate) backward: Mutex<Option<BackwardFn>>,
    /// The op's own forward-mode rule; ops without one are pushed forward through their
    /// (linear, differentiable) backward rule instead.
    pub(crate) jvp: Option<JvpFn>,
    /// The op's backward rule vectorised over cotangents: every gradient it is given and
    /// returns carries one extra leading dim (the batch of cotangents). Used by batched
    /// reverse passes ([`crate::func::jacobian`]); ops without one run their plain rule once
    /// per batch entry.
    pub(crate) batched: BatchedRule,
    pub(crate) outputs: Mutex<Vec<OutputMeta>>,
}

/// How a node's backward runs on a leading batch of cotangents.
pub(crate) enum BatchedRule {
    /// Once per batch entry.
    PerEntry,
    /// The plain backward rule already broadcasts over a leading batch dim (elementwise
    /// rules `g·f'(x)`): no second closure to allocate.
    Backward,
    /// Its own vectorised rule.
    Own(BackwardFn),
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
}

impl Drop for Node {
    /// Drops long chains iteratively: a 100,000-op graph must not overflow the stack.
    fn drop(&mut self) {
        // The rules capture input tensors: drop them first so the inputs below are unique.
        drop(self.backward.get_mut().take());
        drop(self.jvp.take());
        self.batched = BatchedRule::PerEntry;
        let mut stack = std::mem::take(&mut self.inputs);
        while let Some(t) = stack.pop() {
            if let Ok(inner) = Arc::try_unwrap(t.0) {
                if let Some(gf) = inner.grad_fn {
                    if let Ok(mut node) = Arc::try_unwrap(gf.node) {
                        drop(node.backward.get_mut().take());
                        drop(node.jvp.take());
                        node.batched = BatchedRule::PerEntry;
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

/// Attaches a node, with the op's backward and (optional) forward-mode rule, to freshly
/// computed `outputs` if grad mode is on and an input requires grad; otherwise returns them
/// unchanged.
pub(crate) fn record_with_jvp(
    name: impl Into<std::borrow::Cow<'static, str>>,
    inputs: &[&Tensor],
    outputs: Vec<Tensor>,
    backward: BackwardFn,
    jvp: Option<JvpFn>,
) -> Vec<Tensor> {
    record_with_rules(name, inputs, outputs, backward, jvp, None)
}

/// [`record_with_jvp`] plus the backward rule vectorised over a leading batch of cotangents
/// (see [`Node`]'s `batched`).
pub(crate) fn record_with_rules(
    name: impl Into<std::borrow::Cow<'static, str>>,
    inputs: &[&Tensor],
    outputs: Vec<Tensor>,
    backward: BackwardFn,
    jvp: Option<JvpFn>,
    batched: Option<BackwardFn>,
) -> Vec<Tensor> {
    let batched = match batched {
        Some(rule) => BatchedRule::Own(rule),
        None => BatchedRule::PerEntry,
    };
    record_node(name, inputs, outputs, backward, jvp, batched)
}

fn record_node(
    name: impl Into<std::borrow::Cow<'static, str>>,
    inputs: &[&Tensor],
    outputs: Vec<Tensor>,
    backward: BackwardFn,
    jvp: Option<JvpFn>,
    batched: BatchedRule,
) -> Vec<Tensor> {
    if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
        return outputs;
    }
    let node = Arc::new(Node {
        id: NEXT_NODE_ID.fetch_add(1, Ordering::Relaxed),
        name: name.into(),
        inputs: inputs.iter().map(|&t| t.clone()).collect(),
        backward: Mutex::new(Some(backward)),
        jvp,
        batched,
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

/// The id the next recorded node will get (nodes created later have larger ids).
pub(crate) fn next_node_id() -> u64 {
    NEXT_NODE_ID.load(Ordering::Relaxed)
}

/// The one-output recorders below: one output gradient in, one output tangent out.
fn record1_node(
    name: &'static str,
    inputs: &[&Tensor],
    output: Tensor,
    backward: impl Fn(&Tensor, &[bool]) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
    jvp: impl Fn(&[Option<Tensor>]) -> Result<Option<Tensor>> + Send + Sync + 'static,
    batched: BatchedRule,
) -> Tensor {
    if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
        return output;
    }
    let mut v = record_node(
        name,
        inputs,
        vec![output],
        Box::new(move |g, needs| backward(&g[0], needs)),
        Some(Box::new(move |t| Ok(Some(vec![jvp(t)?])))),
        batched,
    );
    v.pop().expect("one output")
}

/// [`record_with_jvp`] for the common one-output op, with a forward-mode rule
/// `jvp(input tangents) -> output tangent`.
pub(crate) fn record1_jvp(
    name: &'static str,
    inputs: &[&Tensor],
    output: Tensor,
    backward: impl Fn(&Tensor, &[bool]) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
    jvp: impl Fn(&[Option<Tensor>]) -> Result<Option<Tensor>> + Send + Sync + 'static,
) -> Tensor {
    record1_node(name, inputs, output, backward, jvp, BatchedRule::PerEntry)
}

/// [`record1_jvp`] plus the backward rule vectorised over a leading batch of cotangents:
/// `batched(g, needs)` gets `g` shaped `[batch] ++ output.shape` and returns gradients shaped
/// `[batch] ++ input.shape` (see [`Node`]'s `batched`).
pub(crate) fn record1_batched(
    name: &'static str,
    inputs: &[&Tensor],
    output: Tensor,
    backward: impl Fn(&Tensor, &[bool]) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
    jvp: impl Fn(&[Option<Tensor>]) -> Result<Option<Tensor>> + Send + Sync + 'static,
    batched: impl Fn(&Tensor, &[bool]) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
) -> Tensor {
    if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
        return output; // no box for the vectorised rule when nothing is recorded
    }
    let own = BatchedRule::Own(Box::new(move |g, needs| batched(&g[0], needs)));
    record1_node(name, inputs, output, backward, jvp, own)
}

/// [`record1_jvp`] for an op whose backward rule broadcasts, so that it also serves a leading
/// batch of cotangents (`[batch] ++ output.shape` in, `[batch] ++ input.shape` out).
pub(crate) fn record1_jvp_broadcasting(
    name: &'static str,
    inputs: &[&Tensor],
    output: Tensor,
    backward: impl Fn(&Tensor, &[bool]) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
    jvp: impl Fn(&[Option<Tensor>]) -> Result<Option<Tensor>> + Send + Sync + 'static,
) -> Tensor {
    record1_node(name, inputs, output, backward, jvp, BatchedRule::Backward)
}
