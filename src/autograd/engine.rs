//! The backward engine: iterative topological traversal of the part of the graph between
//! the roots and the requested inputs.

use std::collections::HashMap as StdHashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-rotate hasher for the engine's integer keys (node and tensor ids): SipHash
/// showed up as a tenth of small-graph backward time.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
}

pub(crate) type HashMap<K, V> = StdHashMap<K, V, BuildHasherDefault<IdHasher>>;
use std::sync::Arc;

use super::mode::{is_anomaly_enabled, EnableGradGuard, NoGradGuard};
use super::node::{BackwardFn, BatchedRule, Node};
use crate::error::{AutogradError, Error, Result, TensorMeta};
use crate::tensor::{Tensor, TensorId};

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
    rule: &BackwardFn,
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
    let retain = opts.effective_retain_graph();
    let _mode: (Option<NoGradGuard>, Option<EnableGradGuard>) = if opts.create_graph {
        (None, Some(EnableGradGuard::new()))
    } else {
        (Some(NoGradGuard::new()), None)
    };

    // Targets: leaves by tensor id, non-leaves by (node, output).
    // (an input may be listed more than once: each listing gets the gradient)
    let mut leaf_target: HashMap<TensorId, Vec<usize>> = HashMap::default();
    let mut slot_target: HashMap<Slot, Vec<usize>> = HashMap::default();
    if let Some(ts) = targets {
        for (i, t) in ts.iter().enumerate() {
            match &t.0.grad_fn {
                Some(gf) => slot_target
                    .entry((gf.node.id, gf.output))
                    .or_default()
                    .push(i),
                None => {
                    leaf_target.entry(t.id()).or_default().push(i);
                }
            }
        }
    }

    // Discover nodes reachable from the roots (iteratively).
    let mut nodes: HashMap<u64, Arc<Node>> = HashMap::default();
    let mut order: Vec<u64> = Vec::new(); // discovery order
    let mut stack: Vec<Arc<Node>> = roots
        .iter()
        .filter_map(|(t, _)| t.0.grad_fn.as_ref().map(|g| g.node.clone()))
        .collect();
    while let Some(n) = stack.pop() {
        if nodes.contains_key(&n.id) {
            continue;
        }
        for inp in &n.inputs {
            if let Some(gf) = &inp.0.grad_fn {
                if gf.node.id >= min_node && !nodes.contains_key(&gf.node.id) {
                    stack.push(gf.node.clone());
                }
            }
        }
        order.push(n.id);
        nodes.insert(n.id, n);
    }

    // Which nodes lead to something we want? Node ids grow with creation, so a node's
    // inputs' nodes always have smaller ids: ascending id order is a topological order.
    order.sort_unstable();
    let mut needed: HashMap<u64, bool> =
        HashMap::with_capacity_and_hasher(order.len(), Default::default());
    for &id in &order {
        let n = &nodes[&id];
        let is_target_slot =
            (0..n.outputs.lock().len()).any(|k| slot_target.contains_key(&(id, k)));
        let leads = n.inputs.iter().any(|inp| match &inp.0.grad_fn {
            Some(gf) => needed.get(&gf.node.id).copied().unwrap_or(false),
            None => match targets {
                Some(_) => leaf_target.contains_key(&inp.id()),
                None => inp.requires_grad(),
            },
        });
        needed.insert(id, leads || is_target_slot);
    }

    // Seed the buffers with the roots' gradients.
    let mut buffers: HashMap<Slot, Tensor> = HashMap::default();
    let mut leaf_grads: HashMap<TensorId, (Tensor, Tensor)> = HashMap::default();
    let mut found: Vec<Option<Tensor>> = vec![None; targets.map_or(0, |t| t.len())];
    for (t, g) in roots {
        match &t.0.grad_fn {
            Some(gf) => accumulate(&mut buffers, (gf.node.id, gf.output), g.clone())?,
            None => add_leaf(&mut leaf_grads, t, g.clone())?,
        }
    }

    // Process in reverse creation order: every consumer runs before its producers.
    for &id in order.iter().rev() {
        if !needed[&id] {
            continue;
        }
        let node = &nodes[&id];
        let metas = node.outputs.lock();
        let mut grads_out: Vec<Option<Tensor>> = Vec::with_capacity(metas.len());
        for (k, meta) in metas.iter().enumerate() {
            let mut g = buffers.remove(&(id, k));
            if let (Some(gv), Some(inner)) = (&g, meta.tensor.upgrade()) {
                if batch.is_some()
                    && (!inner.hooks.lock().is_empty()
                        || inner
                            .retains_grad
                            .load(std::sync::atomic::Ordering::Relaxed))
                {
                    return Err(AutogradError::BatchedHook {
                        op: Some(node.name.to_string()),
                    }
                    .into());
                }
                let mut gv = gv.clone();
                let hooks: Vec<_> = inner.hooks.lock().iter().map(|(_, h)| h.clone()).collect();
                for h in hooks {
                    if let Some(r) = h(&gv)? {
                        check_same(&node.name, "hook result", None, &gv, &r)?;
                        gv = r;
                    }
                }
                if inner
                    .retains_grad
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    let mut slot = inner.grad.lock();
                    let new = match slot.take() {
                        Some(old) => old.add(&maybe_detach(&gv, opts.create_graph))?,
                        None => maybe_detach(&gv, opts.create_graph),
                    };
                    *slot = Some(new);
                }
                g = Some(gv);
            }
            if let (Some(gv), Some(idx)) = (&g, slot_target.get(&(id, k))) {
                for &i in idx {
                    found[i] = Some(gv.clone());
                }
            }
            grads_out.push(g);
        }
        if grads_out.iter().all(|g| g.is_none()) {
            continue;
        }
        let filled: Vec<Tensor> = grads_out
            .into_iter()
            .zip(metas.iter())
            .map(|(g, m)| {
                g.map_or_else(
                    || Tensor::zeros(&batched_shape(batch, &m.shape), m.dtype),
                    Ok,
                )
            })
            .collect::<Result<_>>()?;
        drop(metas);
        let needs: Vec<bool> = node
            .inputs
            .iter()
            .map(|inp| match &inp.0.grad_fn {
                Some(gf) => needed.get(&gf.node.id).copied().unwrap_or(false),
                None => match targets {
                    Some(_) => leaf_target.contains_key(&inp.id()),
                    None => inp.requires_grad(),
                },
            })
            .collect();
        if !needs.iter().any(|&n| n) {
            // a requested intermediate whose inputs lead nowhere wanted: stop here (neither
            // run nor free the rule)
            continue;
        }
        let input_grads = {
            let guard = node.backward.lock();
            let rule = guard.as_ref().ok_or_else(|| {
                Error::from(AutogradError::GraphFreed {
                    op: node.name.to_string(),
                })
            })?;
            match (batch, &node.batched) {
                (None, _) | (Some(_), BatchedRule::Backward) => rule(&filled, &needs)?,
                (Some(_), BatchedRule::Own(vectorised)) => vectorised(&filled, &needs)?,
                (Some(b), BatchedRule::PerEntry) => {
                    rule_per_entry(&node.name, rule, &filled, &needs, &node.inputs, b)?
                }
            }
        };
        if !retain {
            drop(node.backward.lock().take());
        }
        if input_grads.len() != node.inputs.len() {
            return Err(AutogradError::GradientCount {
                op: node.name.to_string(),
                returned: input_grads.len(),
                inputs: node.inputs.len(),
            }
            .into());
        }
        for ((inp, g), need) in node.inputs.iter().zip(input_grads).zip(&needs) {
            let Some(g) = g else { continue };
            if !need {
                continue;
            }
            check_same(&node.name, "gradient", batch, inp, &g)?;
            if is_anomaly_enabled() {
                check_finite(node, &g)?;
            }
            match &inp.0.grad_fn {
                Some(gf) => accumulate(&mut buffers, (gf.node.id, gf.output), g)?,
                None => add_leaf(&mut leaf_grads, inp, g)?,
            }
        }
    }

    // Leaves: hooks see the total gradient, then it is returned or accumulated.
    for (_, (leaf, g)) in leaf_grads {
        if batch.is_some() && !leaf.0.hooks.lock().is_empty() {
            return Err(AutogradError::BatchedHook { op: None }.into());
        }
        let mut g = g;
        let hooks: Vec<_> = leaf.0.hooks.lock().iter().map(|(_, h)| h.clone()).collect();
        for h in hooks {
            if let Some(r) = h(&g)? {
                check_same("leaf", "hook result", None, &g, &r)?;
                g = r;
            }
        }
        match targets {
            Some(_) => {
                for &i in leaf_target.get(&leaf.id()).into_iter().flatten() {
                    found[i] = Some(g.clone());
                }
            }
            None => {
                if leaf.requires_grad() {
                    // Like PyTorch, a leaf's stored gradient is dense (never a stride-0 broadcast
                    // view), so optimizers can update it and it in place.
                    let g = maybe_detach(&g, opts.create_graph).contiguous()?;
                    let mut slot = leaf.0.grad.lock();
                    let new = match slot.take() {
                        Some(old) => old.add(&g)?,
                        None => g,
                    };
                    *slot = Some(new);
                }
            }
        }
    }
    Ok(found)
}

fn maybe_detach(g: &Tensor, create_graph: bool) -> Tensor {
    if create_graph {
        g.clone()
    } else {
        g.detach()
    }
}

fn accumulate(buffers: &mut HashMap<Slot, Tensor>, slot: Slot, g: Tensor) -> Result<()> {
    match buffers.remove(&slot) {
        Some(old) => buffers.insert(slot, old.add(&g)?),
        None => buffers.insert(slot, g),
    };
    Ok(())
}

fn add_leaf(map: &mut HashMap<TensorId, (Tensor, Tensor)>, leaf: &Tensor, g: Tensor) -> Result<()> {
    match map.remove(&leaf.id()) {
        Some((t, old)) => map.insert(leaf.id(), (t, old.add(&g)?)),
        None => map.insert(leaf.id(), (leaf.clone(), g)),
    };
    Ok(())
}

/// `got` must have `expected`'s dtype and shape (with the leading `batch` dim, if any).
fn check_same(
    op: &str,
    what: &'static str,
    batch: Option<usize>,
    expected: &Tensor,
    got: &Tensor,
) -> Result<()> {
    let want = batched_shape(batch, expected.dims());
    if got.dims() != want.as_slice() || expected.dtype() != got.dtype() {
        return Err(AutogradError::GradientMismatch {
            op: op.to_string(),
            what,
            got: TensorMeta::new(got.dims(), got.dtype()),
            want: TensorMeta::new(&want, expected.dtype()),
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
        shapes: node.inputs.iter().map(|t| t.dims().to_vec()).collect(),
    })
}
