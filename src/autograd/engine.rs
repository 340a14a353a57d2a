//! The backward engine: iterative topological traversal of the part of the graph between
//! the roots and the requested inputs.
//!
//! One pass ([`run_backward`]) in named steps: discover the [`GraphSlice`] behind the roots,
//! mark the nodes that lead to something wanted ([`needs_gradient`]), then from the newest
//! node back: collect the gradients that reached its outputs and put them through the
//! outputs' hooks ([`output_grads`]), run its rule ([`run_rule`]) and pass the results on to
//! its inputs ([`Pending::add_rule_results`]); last, the leaves' hooks and their gradients
//! returned or accumulated ([`finish_leaves`]). No lock is held while a hook or a rule runs.
//!
//! Without `retain_graph` each node that ran frees its rule, the tensors the rule saved and its
//! handles to its inputs (keeping only the edges: producer, id, shape, dtype, and the leaves
//! that require grad), so activations die at backward even while the loss lives. Passes may
//! nest (a hook or a custom backward calling `grad`) up to [`MAX_REENTRY_DEPTH`] deep.

use std::sync::atomic::Ordering;

use parking_lot::Mutex;
use smallvec::SmallVec;

use super::mode::{is_anomaly_enabled, EnableGradGuard, NoGradGuard};
use super::node::{Hook, Node};
use super::slice::{GraphSlice, HashMap};
use crate::dtype::DType;
use crate::error::{AutogradError, Error, Result, TensorMeta};
use crate::tensor::{Edge, Tensor, TensorId, TensorInner};

/// A node output's gradient as it arrives (if any) and the output tensor, if still alive.
type Arrived = (Option<Tensor>, Option<std::sync::Arc<TensorInner>>);

/// Options of [`grad`] and [`backward_many`] (PyTorch's keyword arguments).
///
/// ```
/// let o = eingrad::autograd::GradOptions::default().create_graph(true);
/// assert!(o.create_graph && o.effective_retain_graph());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct GradOptions {
    /// Keep the saved tensors so the graph can be walked again (defaults to `create_graph`).
    pub retain_graph: Option<bool>,
    /// Record the backward computation so gradients can be differentiated again.
    ///
    /// A gradient that `backward` stores in a leaf's `.grad()` then carries a graph that
    /// usually holds the leaf itself: a reference cycle (PyTorch has it too) that keeps both
    /// alive until `.grad()` is cleared ([`Tensor::zero_grad`], as optimizers do) — or use
    /// [`grad`], which returns the gradients instead of storing them.
    pub create_graph: bool,
    /// Return `None` for inputs the outputs do not depend on instead of an error.
    pub allow_unused: bool,
}

impl GradOptions {
    /// Sets `retain_graph`.
    pub fn retain_graph(mut self, on: bool) -> Self {
        self.retain_graph = Some(on);
        self
    }
    /// Sets `create_graph`.
    pub fn create_graph(mut self, on: bool) -> Self {
        self.create_graph = on;
        self
    }
    /// Sets `allow_unused`.
    pub fn allow_unused(mut self, on: bool) -> Self {
        self.allow_unused = on;
        self
    }
    /// `retain_graph` with its default filled in.
    pub fn effective_retain_graph(&self) -> bool {
        self.retain_graph.unwrap_or(self.create_graph)
    }
}

/// Gradients of `outputs` (weighted by `grad_outputs`) with respect to `inputs`, like
/// `torch.autograd.grad`. Stored `.grad()` fields are not touched.
///
/// `grad_outputs` may be `None` only when every output has one element.
///
/// ```
/// use eingrad::{Tensor, autograd::{grad, GradOptions}};
/// let x = Tensor::from_vec(vec![3.0f64], &[1]).unwrap().requires_grad_(true);
/// let y = x.mul(&x).unwrap().mul(&x).unwrap(); // x³
/// let g = grad(&[y], &[x.clone()], None, GradOptions::default().create_graph(true)).unwrap();
/// let g = g[0].clone().unwrap();
/// assert_eq!(g.item().unwrap(), 27.0);
/// let gg = grad(&[g], &[x], None, GradOptions::default()).unwrap();
/// assert_eq!(gg[0].as_ref().unwrap().item().unwrap(), 18.0);
/// ```
pub fn grad(
    outputs: &[Tensor],
    inputs: &[Tensor],
    grad_outputs: Option<&[Tensor]>,
    opts: GradOptions,
) -> Result<Vec<Option<Tensor>>> {
    for (i, t) in inputs.iter().enumerate() {
        if !t.requires_grad() {
            return Err(AutogradError::InputNotRequiringGrad {
                op: "grad",
                input: i,
                shape: t.dims().to_vec(),
            }
            .into());
        }
    }
    let roots = pair_roots("grad", outputs, grad_outputs)?;
    let found = run_backward(&roots, Some(inputs), opts, 0, None)?;
    let mut result = Vec::with_capacity(inputs.len());
    for (i, g) in found.into_iter().enumerate() {
        if g.is_none() && !opts.allow_unused {
            return Err(AutogradError::UnusedInput {
                op: "grad",
                input: i,
                shape: inputs[i].dims().to_vec(),
            }
            .into());
        }
        result.push(g);
    }
    Ok(result)
}

/// Accumulates the gradients of several roots at once into the leaves' `.grad()`, like
/// `torch.autograd.backward(tensors, grad_tensors)`.
///
/// ```
/// use eingrad::{Tensor, autograd::{backward_many, GradOptions}};
/// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap().requires_grad_(true);
/// let a = x.mul_scalar(2.0).unwrap();
/// let b = x.mul_scalar(3.0).unwrap();
/// let ones = Tensor::ones(&[2], eingrad::DType::F64).unwrap();
/// backward_many(&[a, b], &[ones.clone(), ones], GradOptions::default()).unwrap();
/// assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), vec![5.0, 5.0]);
/// ```
pub fn backward_many(outputs: &[Tensor], grads: &[Tensor], opts: GradOptions) -> Result<()> {
    let roots = pair_roots("backward", outputs, Some(grads))?;
    run_backward(&roots, None, opts, 0, None).map(|_| ())
}

/// [`grad`] restricted to the nodes created at or after `min_node` (older history is not
/// walked): forward mode uses it to transpose one op's backward rule without visiting the
/// whole graph behind it.
pub(crate) fn grad_after(
    outputs: &[Tensor],
    inputs: &[Tensor],
    opts: GradOptions,
    min_node: u64,
) -> Result<Vec<Option<Tensor>>> {
    let roots = pair_roots("grad", outputs, None)?;
    run_backward(&roots, Some(inputs), opts, min_node, None)
}

/// Gradients of `outputs` with respect to `inputs` for a whole batch of cotangents at once:
/// `batched_grad_outputs[i]` has shape `[batch] ++ outputs[i].shape`, and each returned
/// gradient has shape `[batch] ++ inputs[j].shape` (`None`: unused). The graph is walked once;
/// each node runs its vectorised rule if it has one, else its plain rule once per batch
/// entry. Graphs are retained; no graph is recorded (first order only). Returns an error when
/// the graph holds hooks or retained gradients, which would see batched gradients: callers
/// then go row by row.
pub(crate) fn grad_batched(
    outputs: &[Tensor],
    inputs: &[Tensor],
    batched_grad_outputs: &[Tensor],
    batch: usize,
) -> Result<Vec<Option<Tensor>>> {
    if outputs.len() != batched_grad_outputs.len() {
        return Err(AutogradError::GradOutputCount {
            op: "grad_batched",
            outputs: outputs.len(),
            grad_outputs: batched_grad_outputs.len(),
        }
        .into());
    }
    let roots: Vec<(Tensor, Tensor)> = outputs
        .iter()
        .cloned()
        .zip(batched_grad_outputs.iter().cloned())
        .collect();
    for (o, g) in &roots {
        if !o.requires_grad() || g.dims().first() != Some(&batch) || g.dims()[1..] != *o.dims() {
            return Err(AutogradError::BatchedGradOutput {
                op: "grad_batched",
                output: o.dims().to_vec(),
                requires_grad: o.requires_grad(),
                grad_output: g.dims().to_vec(),
                batch,
            }
            .into());
        }
    }
    let opts = GradOptions::default().retain_graph(true).allow_unused(true);
    run_backward(&roots, Some(inputs), opts, 0, Some(batch))
}

/// `[batch] ++ shape`.
fn batched_shape(batch: Option<usize>, shape: &[usize]) -> Vec<usize> {
    batch.into_iter().chain(shape.iter().copied()).collect()
}

/// Runs a plain backward `rule` once per entry of the leading batch dim of `grads` and
/// stacks the results (a missing gradient in some entries is zeros there).
fn rule_per_entry(
    op: &str,
    rule: impl Fn(&[Tensor], &[bool]) -> Result<Vec<Option<Tensor>>>,
    grads: &[Tensor],
    needs: &[bool],
    inputs: &[Tensor],
    batch: usize,
) -> Result<Vec<Option<Tensor>>> {
    let mut per_input: Vec<Vec<Option<Tensor>>> = vec![Vec::with_capacity(batch); inputs.len()];
    for r in 0..batch {
        let g_r: Vec<Tensor> = grads
            .iter()
            .map(|g| g.narrow(0, r, 1)?.squeeze(Some(0)))
            .collect::<Result<_>>()?;
        let got = rule(&g_r, needs)?;
        if got.len() != inputs.len() {
            return Err(AutogradError::GradientCount {
                op: op.to_string(),
                returned: got.len(),
                inputs: inputs.len(),
            }
            .into());
        }
        for (acc, g) in per_input.iter_mut().zip(got) {
            acc.push(g);
        }
    }
    per_input
        .into_iter()
        .zip(inputs)
        .map(|(rows, inp)| {
            if rows.iter().all(|g| g.is_none()) {
                return Ok(None);
            }
            let rows: Vec<Tensor> = rows
                .into_iter()
                .map(|g| g.map_or_else(|| Tensor::zeros(inp.dims(), inp.dtype()), Ok))
                .collect::<Result<_>>()?;
            let refs: Vec<&Tensor> = rows.iter().collect();
            Tensor::stack(&refs, 0).map(Some)
        })
        .collect()
}

fn pair_roots(
    op: &'static str,
    outputs: &[Tensor],
    grad_outputs: Option<&[Tensor]>,
) -> Result<Vec<(Tensor, Tensor)>> {
    if outputs.is_empty() {
        return Err(AutogradError::NoOutputs { op }.into());
    }
    if let Some(g) = grad_outputs {
        if g.len() != outputs.len() {
            return Err(AutogradError::GradOutputCount {
                op,
                outputs: outputs.len(),
                grad_outputs: g.len(),
            }
            .into());
        }
    }
    let mut roots = Vec::with_capacity(outputs.len());
    for (i, out) in outputs.iter().enumerate() {
        if !out.requires_grad() {
            return Err(AutogradError::OutputNotRequiringGrad {
                op,
                output: i,
                shape: out.dims().to_vec(),
            }
            .into());
        }
        let g = match grad_outputs {
            Some(gs) => {
                let g = &gs[i];
                if g.dims() != out.dims() {
                    return Err(AutogradError::GradOutputShape {
                        op,
                        output: i,
                        got: g.dims().to_vec(),
                        want: out.dims().to_vec(),
                    }
                    .into());
                }
                if g.dtype() != out.dtype() {
                    return Err(AutogradError::GradOutputDType {
                        op,
                        output: i,
                        got: g.dtype(),
                        want: out.dtype(),
                    }
                    .into());
                }
                g.clone()
            }
            None => {
                if out.numel() != 1 {
                    return Err(AutogradError::ImplicitGradOutput {
                        op,
                        output: i,
                        shape: out.dims().to_vec(),
                    }
                    .into());
                }
                Tensor::ones(out.dims(), out.dtype())?
            }
        };
        roots.push((out.clone(), g));
    }
    Ok(roots)
}

/// A node output: (node id, output index).
type Slot = (u64, usize);

/// Walks the graph once. With `targets`, returns their gradients (not accumulating);
/// without, accumulates into every leaf that requires grad.
fn run_backward(
    roots: &[(Tensor, Tensor)],
    targets: Option<&[Tensor]>,
    opts: GradOptions,
    min_node: u64,
    batch: Option<usize>,
) -> Result<Vec<Option<Tensor>>> {
    let _depth = ReentryGuard::enter()?;
    // With create_graph the rules are recorded; otherwise they run under no-grad.
    let _mode: (Option<NoGradGuard>, Option<EnableGradGuard>) = if opts.create_graph {
        (None, Some(EnableGradGuard::new()))
    } else {
        (Some(NoGradGuard::new()), None)
    };
    let mut targets = Targets::new(targets);
    let slice = GraphSlice::discover(roots.iter().map(|(t, _)| t), min_node);
    let needed = needs_gradient(&slice, &targets);
    let mut pending = Pending::default();
    for (t, g) in roots {
        pending.add(t, g.clone())?;
    }
    // Newest first: every consumer runs before its producers.
    for (p, node) in slice.nodes().iter().enumerate().rev() {
        if !needed[p] {
            continue;
        }
        let Some(grads) = output_grads(node, &mut pending, &mut targets, opts, batch)? else {
            continue;
        };
        let needs: Vec<bool> = (node.edges.iter())
            .map(|e| wants_gradient(e, &slice, &needed, &targets))
            .collect();
        if !needs.iter().any(|&n| n) {
            // a requested intermediate whose inputs lead nowhere wanted: stop here (neither
            // run nor free the rule)
            continue;
        }
        let input_grads = run_rule(node, &grads, &needs, batch, opts.effective_retain_graph())?;
        pending.add_rule_results(node, input_grads, &needs, batch)?;
    }
    finish_leaves(pending.leaves, &mut targets, opts, batch)?;
    Ok(targets.found)
}

/// How deep backward passes may nest on one thread (a hook or a custom backward calling
/// `grad` starts a pass inside a pass). PyTorch runs 60 levels on the calling thread.
pub(crate) const MAX_REENTRY_DEPTH: usize = 64;

thread_local! {
    /// How many backward passes are running on this thread, one inside the other.
    static REENTRY_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts one running backward pass on this thread for as long as it lives.
struct ReentryGuard;

impl ReentryGuard {
    /// Enters a pass, or fails when [`MAX_REENTRY_DEPTH`] passes are already running: a hook
    /// that calls `grad` on its own tensor re-enters without end and must get an error, not
    /// overflow the stack.
    fn enter() -> Result<ReentryGuard> {
        REENTRY_DEPTH.with(|d| {
            if d.get() >= MAX_REENTRY_DEPTH {
                return Err(AutogradError::ReentrantDepth {
                    depth: MAX_REENTRY_DEPTH,
                }
                .into());
            }
            d.set(d.get() + 1);
            Ok(ReentryGuard)
        })
    }
}

impl Drop for ReentryGuard {
    fn drop(&mut self) {
        REENTRY_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// What a pass delivers. With requested tensors (`grad`), their gradients, by position (a
/// tensor listed twice gets it twice); without (`backward`), every leaf that requires grad
/// accumulates into `.grad()`.
struct Targets {
    /// Whether tensors were requested (else the pass accumulates).
    requested: bool,
    /// Requested leaves: tensor id → positions.
    leaves: HashMap<TensorId, Vec<usize>>,
    /// Requested non-leaves: their node output → positions.
    slots: HashMap<Slot, Vec<usize>>,
    /// The gradients found, one per requested tensor.
    found: Vec<Option<Tensor>>,
}

impl Targets {
    fn new(targets: Option<&[Tensor]>) -> Targets {
        let mut leaves: HashMap<TensorId, Vec<usize>> = HashMap::default();
        let mut slots: HashMap<Slot, Vec<usize>> = HashMap::default();
        for (i, t) in targets.into_iter().flatten().enumerate() {
            match &t.0.grad_fn {
                Some(gf) => slots.entry((gf.node.id, gf.output)).or_default().push(i),
                None => leaves.entry(t.id()).or_default().push(i),
            }
        }
        Targets {
            requested: targets.is_some(),
            leaves,
            slots,
            found: vec![None; targets.map_or(0, |t| t.len())],
        }
    }

    /// Whether a gradient must reach the leaf input `e`: requested, or (accumulating) alive
    /// and requiring grad.
    fn wants_leaf(&self, e: &Edge) -> bool {
        if self.requested {
            self.leaves.contains_key(&e.id)
        } else {
            e.tensor().is_some_and(|t| t.requires_grad())
        }
    }

    /// Whether one of `node`'s outputs was requested.
    fn wants_an_output_of(&self, node: &Node) -> bool {
        !self.slots.is_empty()
            && (0..node.outputs.lock().len()).any(|k| self.slots.contains_key(&(node.id, k)))
    }

    /// Keeps `g` wherever the node output `slot` was requested.
    fn deliver_slot(&mut self, slot: Slot, g: &Tensor) {
        for &i in self.slots.get(&slot).into_iter().flatten() {
            self.found[i] = Some(g.clone());
        }
    }

    /// Keeps `g` wherever the leaf `t` was requested.
    fn deliver_leaf(&mut self, t: &Tensor, g: &Tensor) {
        for &i in self.leaves.get(&t.id()).into_iter().flatten() {
            self.found[i] = Some(g.clone());
        }
    }
}

/// Which nodes of `slice` lead to something wanted: a requested output of their own, or an
/// input that is a wanted leaf or comes from a needed node. Only those run. One pass in
/// ascending order suffices, since a node's inputs come from nodes before it.
fn needs_gradient(slice: &GraphSlice, targets: &Targets) -> Vec<bool> {
    let mut needed = vec![false; slice.nodes().len()];
    for (p, n) in slice.nodes().iter().enumerate() {
        needed[p] = targets.wants_an_output_of(n)
            || (n.edges.iter()).any(|e| wants_gradient(e, slice, &needed, targets));
    }
    needed
}

/// Whether a gradient must flow along `e`, an input of a node: into a non-leaf when its
/// node is needed, into a leaf when the targets want it.
fn wants_gradient(e: &Edge, slice: &GraphSlice, needed: &[bool], targets: &Targets) -> bool {
    match &e.grad_fn {
        Some(gf) => slice.position(gf.node.id).is_some_and(|p| needed[p]),
        None => targets.wants_leaf(e),
    }
}

/// Gradients on their way: summed per node output and per leaf until they are used.
#[derive(Default)]
struct Pending {
    slots: HashMap<Slot, Tensor>,
    /// Leaf id → (the leaf, its gradient so far).
    leaves: HashMap<TensorId, (Tensor, Tensor)>,
}

impl Pending {
    /// Adds `g` to what `t` has received (at its node output, or at the leaf).
    fn add(&mut self, t: &Tensor, g: Tensor) -> Result<()> {
        match &t.0.grad_fn {
            Some(gf) => self.add_to_slot((gf.node.id, gf.output), g),
            None => self.add_to_leaf(t, g),
        }
    }

    /// Adds `g` to what the input behind `e` has received (a leaf nothing holds any more is
    /// skipped: its gradient can be seen by no one).
    fn add_along(&mut self, e: &Edge, g: Tensor) -> Result<()> {
        match &e.grad_fn {
            Some(gf) => self.add_to_slot((gf.node.id, gf.output), g),
            None => match e.tensor() {
                Some(t) => self.add_to_leaf(&t, g),
                None => Ok(()),
            },
        }
    }

    fn add_to_slot(&mut self, slot: Slot, g: Tensor) -> Result<()> {
        let total = match self.slots.remove(&slot) {
            Some(old) => old.add(&g)?,
            None => g,
        };
        self.slots.insert(slot, total);
        Ok(())
    }

    fn add_to_leaf(&mut self, t: &Tensor, g: Tensor) -> Result<()> {
        let entry = match self.leaves.remove(&t.id()) {
            Some((leaf, old)) => (leaf, old.add(&g)?),
            None => (t.clone(), g),
        };
        self.leaves.insert(t.id(), entry);
        Ok(())
    }

    /// Checks what `node`'s rule returned (one gradient per input, each fitting its input
    /// and, in anomaly mode, finite) and adds the needed ones to the inputs' totals.
    fn add_rule_results(
        &mut self,
        node: &Node,
        input_grads: Vec<Option<Tensor>>,
        needs: &[bool],
        batch: Option<usize>,
    ) -> Result<()> {
        if input_grads.len() != node.edges.len() {
            return Err(AutogradError::GradientCount {
                op: node.name.to_string(),
                returned: input_grads.len(),
                inputs: node.edges.len(),
            }
            .into());
        }
        for ((e, g), need) in node.edges.iter().zip(input_grads).zip(needs) {
            let Some(g) = g else { continue };
            if !need {
                continue;
            }
            check_same(&node.name, "gradient", batch, (&e.shape, e.dtype), &g)?;
            if is_anomaly_enabled() {
                check_finite(node, &g)?;
            }
            self.add_along(e, g)?;
        }
        Ok(())
    }
}

/// The gradients for `node`'s rule, one per output: what reached the output, through its
/// hooks (then kept where the output retains its gradient or was requested), zeros where
/// nothing arrived. `None` when nothing arrived at all.
fn output_grads(
    node: &Node,
    pending: &mut Pending,
    targets: &mut Targets,
    opts: GradOptions,
    batch: Option<usize>,
) -> Result<Option<Vec<Tensor>>> {
    // The live outputs are read under the lock, which is released before any hook runs: a
    // hook may walk this very node (issue #16, finding E).
    let arrived: SmallVec<[Arrived; 2]> = {
        let metas = node.outputs.lock();
        (metas.iter().enumerate())
            .map(|(k, m)| {
                let g = pending.slots.remove(&(node.id, k));
                let live = g.as_ref().and_then(|_| m.tensor.upgrade());
                (g, live)
            })
            .collect()
    };
    let mut grads: SmallVec<[Option<Tensor>; 2]> = SmallVec::with_capacity(arrived.len());
    for (k, (g, live)) in arrived.into_iter().enumerate() {
        let g = match (g, live) {
            (Some(g), Some(out)) => Some(through_output_hooks(node, &out, g, opts, batch)?),
            (g, _) => g,
        };
        if let Some(g) = &g {
            targets.deliver_slot((node.id, k), g);
        }
        grads.push(g);
    }
    if grads.iter().all(|g| g.is_none()) {
        return Ok(None);
    }
    let metas = node.outputs.lock();
    (grads.into_iter().zip(metas.iter()))
        .map(|(g, m)| {
            g.map_or_else(
                || Tensor::zeros(&batched_shape(batch, &m.shape), m.dtype),
                Ok,
            )
        })
        .collect::<Result<_>>()
        .map(Some)
}

/// `g`, arriving at the non-leaf `out` (an output of `node`), through `out`'s hooks; kept in
/// `out.grad()` too when it retains its gradient. A batched pass refuses both.
fn through_output_hooks(
    node: &Node,
    out: &TensorInner,
    g: Tensor,
    opts: GradOptions,
    batch: Option<usize>,
) -> Result<Tensor> {
    if batch.is_some() && (out.retains_grad.load(Ordering::Relaxed) || !out.hooks.lock().is_empty())
    {
        return Err(AutogradError::BatchedHook {
            op: Some(node.name.to_string()),
        }
        .into());
    }
    let g = run_hooks(out, g, &node.name)?;
    // (read after the hooks, which may have asked for it)
    if out.retains_grad.load(Ordering::Relaxed) {
        add_to_grad(&out.grad, maybe_detach(&g, opts.create_graph))?;
    }
    Ok(g)
}

/// Runs `t`'s hooks on `g` in registration order, each seeing the last one's result; `op`
/// names the op in a wrong-shape error (`leaf` for a leaf). The hooks are copied out of
/// their list first, so no lock is held while user code runs.
fn run_hooks(t: &TensorInner, mut g: Tensor, op: &str) -> Result<Tensor> {
    let hooks: Vec<Hook> = t.hooks.lock().iter().map(|(_, h)| h.clone()).collect();
    for h in hooks {
        if let Some(r) = h(&g)? {
            check_same(op, "hook result", None, (g.dims(), g.dtype()), &r)?;
            g = r;
        }
    }
    Ok(g)
}

/// Adds `g` to a stored `.grad()` (which is left as it was if the sum fails).
fn add_to_grad(cell: &Mutex<Option<Tensor>>, g: Tensor) -> Result<()> {
    let mut stored = cell.lock();
    let total = match stored.as_ref() {
        Some(old) => old.add(&g)?,
        None => g,
    };
    *stored = Some(total);
    Ok(())
}

/// Runs `node`'s backward rule on its output gradients `grads` (in a batched pass its
/// vectorised form, or the plain rule once per batch entry), then, unless the graph is
/// retained, frees the rule, the tensors it saved and the node's handles to its inputs.
fn run_rule(
    node: &Node,
    grads: &[Tensor],
    needs: &[bool],
    batch: Option<usize>,
    retain: bool,
) -> Result<Vec<Option<Tensor>>> {
    // The rule is shared out of its lock and run outside it: a rule that differentiates
    // through its own node (a custom backward calling grad) must not deadlock.
    let saved = node.saved().ok_or_else(|| {
        Error::from(AutogradError::GraphFreed {
            op: node.name.to_string(),
        })
    })?;
    let (rule, inputs) = (&saved.rule, &saved.inputs[..]);
    let input_grads = match batch {
        Some(b) if !rule.batches() => rule_per_entry(
            &node.name,
            |g, needs| rule.backward(inputs, g, needs, false),
            grads,
            needs,
            inputs,
            b,
        )?,
        _ => rule.backward(inputs, grads, needs, batch.is_some())?,
    };
    drop(saved);
    if !retain {
        node.release();
    }
    Ok(input_grads)
}

/// The leaves, last: their hooks see the total gradient, which is then returned (when
/// requested) or accumulated into `.grad()` (dense, like PyTorch's: never a stride-0
/// broadcast view, so optimizers can update it in place).
fn finish_leaves(
    leaves: HashMap<TensorId, (Tensor, Tensor)>,
    targets: &mut Targets,
    opts: GradOptions,
    batch: Option<usize>,
) -> Result<()> {
    for (_, (leaf, g)) in leaves {
        if batch.is_some() && !leaf.0.hooks.lock().is_empty() {
            return Err(AutogradError::BatchedHook { op: None }.into());
        }
        let g = run_hooks(&leaf.0, g, "leaf")?;
        if targets.requested {
            targets.deliver_leaf(&leaf, &g);
        } else if leaf.requires_grad() {
            add_to_grad(
                &leaf.0.grad,
                maybe_detach(&g, opts.create_graph).contiguous()?,
            )?;
        }
    }
    Ok(())
}

fn maybe_detach(g: &Tensor, create_graph: bool) -> Tensor {
    if create_graph {
        g.clone()
    } else {
        g.detach()
    }
}

/// `got` must have the `expected` shape and dtype (with the leading `batch` dim, if any).
fn check_same(
    op: &str,
    what: &'static str,
    batch: Option<usize>,
    (shape, dtype): (&[usize], DType),
    got: &Tensor,
) -> Result<()> {
    let want = batched_shape(batch, shape);
    if got.dims() != want.as_slice() || dtype != got.dtype() {
        return Err(AutogradError::GradientMismatch {
            op: op.to_string(),
            what,
            got: TensorMeta::new(got.dims(), got.dtype()),
            want: TensorMeta::new(&want, dtype),
        }
        .into());
    }
    Ok(())
}

fn check_finite(node: &Node, g: &Tensor) -> Result<()> {
    let v = g.to_vec_f64();
    let what = if v.iter().any(|x| x.is_nan()) {
        "NaN"
    } else if v.iter().any(|x| x.is_infinite()) {
        "infinity"
    } else {
        return Ok(());
    };
    Err(Error::Anomaly {
        op: node.name.to_string(),
        what: what.into(),
        shapes: node.edges.iter().map(|e| e.shape.to_vec()).collect(),
    })
}
