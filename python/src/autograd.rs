//! Autograd from Python: the `Tensor` methods (`backward`, `.grad`, `requires_grad_`,
//! `retain_grad`, `register_hook`, `grad_fn`, ...), the functions behind `eingrad.autograd`
//! (`grad`, `backward`, grad mode and anomaly mode) and the native half of
//! `eingrad.autograd.Function` (a Python class run as a Rust [`CustomFunction`]).
//!
//! Every backward pass releases the GIL: hooks and Python `Function`s re-acquire it
//! (`Python::attach`) when the engine calls them, and a Python exception they raise reaches
//! the caller unchanged ([`stash_python_error`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::convert::{short_repr, tensor_from_any};
use crate::errors::{guard, stash_python_error, IntoPy};
use crate::tensor::PyTensor;
use eingrad::autograd::{
    apply_function, backward_many, grad, is_anomaly_enabled, is_grad_enabled, set_anomaly_enabled,
    CustomFunction, EnableGradGuard, FunctionCtx, GradFn, GradOptions, HookHandle, NoGradGuard,
};
use eingrad::error::{AutogradError, FunctionProblem, FunctionValue, TensorMeta};
use eingrad::{Tensor, WeakTensor};
use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

// ---------------------------------------------------------------------------------------
// Reading tensors from Python arguments
// ---------------------------------------------------------------------------------------

/// The Rust tensor of a Python `Tensor`, or a `TypeError` naming `what` and what it got.
pub(crate) fn tensor_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Tensor> {
    match obj.cast::<PyTensor>() {
        Ok(t) => Ok(t.get().tensor()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{what} must be a Tensor, got {}",
            short_repr(obj)
        ))),
    }
}

/// A tensor or a sequence of tensors (`op(arg)` names it in errors) as a list.
pub(crate) fn tensor_seq(obj: &Bound<'_, PyAny>, op: &str, arg: &str) -> PyResult<Vec<Tensor>> {
    if let Ok(t) = obj.cast::<PyTensor>() {
        return Ok(vec![t.get().tensor()]);
    }
    if obj.is_instance_of::<PyTuple>() || obj.is_instance_of::<PyList>() {
        return obj
            .try_iter()?
            .enumerate()
            .map(|(i, item)| tensor_arg(&item?, &format!("{op}: {arg}[{i}]")))
            .collect();
    }
    Err(PyTypeError::new_err(format!(
        "{op}: {arg} must be a Tensor or a sequence of Tensors, got {}",
        short_repr(obj)
    )))
}

/// Optional gradients: `None`, one tensor/None, or a sequence of tensors/Nones (numbers and
/// arrays are converted to the dtype of the output they belong to).
fn optional_grads(
    obj: Option<&Bound<'_, PyAny>>,
    outputs: &[Tensor],
    op: &str,
    arg: &str,
) -> PyResult<Vec<Option<Tensor>>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(vec![None; outputs.len()]);
    };
    let items: Vec<Bound<'_, PyAny>> =
        if obj.is_instance_of::<PyTuple>() || obj.is_instance_of::<PyList>() {
            obj.try_iter()?.collect::<PyResult<_>>()?
        } else {
            vec![obj.clone()]
        };
    if items.len() != outputs.len() {
        return Err(PyRuntimeError::new_err(format!(
            "{op}: {} {arg} given for {} outputs (one per output, None for an implicit one)",
            items.len(),
            outputs.len()
        )));
    }
    items
        .iter()
        .zip(outputs)
        .enumerate()
        .map(|(i, (g, o))| {
            if g.is_none() {
                Ok(None)
            } else if let Ok(t) = g.cast::<PyTensor>() {
                Ok(Some(t.get().tensor()))
            } else {
                tensor_from_any(g, Some(o.dtype())).map(Some).map_err(|e| {
                    PyTypeError::new_err(format!("{op}: {arg}[{i}] is not a tensor: {e}"))
                })
            }
        })
        .collect()
}

/// Fills the implicit gradients: ones for one-element outputs, an error otherwise.
fn implicit_grads(
    op: &'static str,
    outputs: &[Tensor],
    grads: Vec<Option<Tensor>>,
) -> PyResult<Vec<Tensor>> {
    grads
        .into_iter()
        .zip(outputs)
        .enumerate()
        .map(|(i, (g, o))| match g {
            Some(g) => Ok(g),
            None if o.numel() == 1 => Tensor::ones(o.dims(), o.dtype()).py_err(),
            None => Err(eingrad::Error::from(AutogradError::ImplicitGradOutput {
                op,
                output: i,
                shape: o.dims().to_vec(),
            }))
            .py_err(),
        })
        .collect()
}

/// Runs `f` with the GIL released (callbacks take it back), converting its error; a Rust
/// panic becomes a `RuntimeError` naming `what` instead of crossing into Python.
pub(crate) fn detached<T: Send>(
    py: Python<'_>,
    what: &str,
    f: impl FnOnce() -> eingrad::Result<T> + Send,
) -> PyResult<T> {
    guard(what, || py.detach(f).py_err())
}

// ---------------------------------------------------------------------------------------
// grad / backward
// ---------------------------------------------------------------------------------------

/// The options of a pass.
fn options(retain_graph: Option<bool>, create_graph: bool, allow_unused: bool) -> GradOptions {
    GradOptions {
        retain_graph,
        create_graph,
        allow_unused,
    }
}

/// Adds `g` to `x.grad` (recorded under `create_graph`, as the engine does for leaves).
fn accumulate(x: &Tensor, g: Tensor, create_graph: bool) -> eingrad::Result<()> {
    let g = if create_graph { g } else { g.detach() };
    let new = match x.grad() {
        None => g,
        Some(old) if create_graph => {
            let _on = EnableGradGuard::new();
            old.add(&g)?
        }
        Some(old) => {
            let _off = NoGradGuard::new();
            old.add(&g)?
        }
    };
    x.set_grad(Some(new))
}

/// Runs a backward pass from `tensors` (the GIL released): into every leaf's `.grad`, or with
/// `inputs` only into theirs.
fn run_backward(
    py: Python<'_>,
    tensors: Vec<Tensor>,
    grads: Vec<Option<Tensor>>,
    opts: GradOptions,
    inputs: Option<Vec<Tensor>>,
) -> PyResult<()> {
    let grads = implicit_grads("backward", &tensors, grads)?;
    match inputs {
        None => detached(py, "backward", || backward_many(&tensors, &grads, opts)),
        Some(inputs) => {
            let opts = GradOptions {
                allow_unused: true,
                ..opts
            };
            let create = opts.create_graph;
            detached(py, "backward", || -> eingrad::Result<()> {
                let gs = grad(&tensors, &inputs, Some(&grads), opts)?;
                for (x, g) in inputs.iter().zip(gs) {
                    if let Some(g) = g {
                        accumulate(x, g, create)?;
                    }
                }
                Ok(())
            })
        }
    }
}

/// `eingrad.autograd.grad(outputs, inputs, grad_outputs=None, retain_graph=None,
/// create_graph=False, allow_unused=False)`: the gradients as a list (None for an unused
/// input when `allow_unused`).
#[pyfunction]
#[pyo3(signature = (outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=false, allow_unused=false))]
fn _autograd_grad(
    py: Python<'_>,
    outputs: &Bound<'_, PyAny>,
    inputs: &Bound<'_, PyAny>,
    grad_outputs: Option<&Bound<'_, PyAny>>,
    retain_graph: Option<bool>,
    create_graph: bool,
    allow_unused: bool,
) -> PyResult<Vec<Option<PyTensor>>> {
    let outs = tensor_seq(outputs, "grad", "outputs")?;
    let ins = tensor_seq(inputs, "grad", "inputs")?;
    let gs = optional_grads(grad_outputs, &outs, "grad", "grad_outputs")?;
    let gs = implicit_grads("grad", &outs, gs)?;
    let opts = options(retain_graph, create_graph, allow_unused);
    let found = detached(py, "grad", || grad(&outs, &ins, Some(&gs), opts))?;
    Ok(found.into_iter().map(|g| g.map(PyTensor::new)).collect())
}

/// `eingrad.autograd.backward(tensors, grad_tensors=None, retain_graph=None,
/// create_graph=False, inputs=None)`: accumulates into the leaves' `.grad`.
#[pyfunction]
#[pyo3(signature = (tensors, grad_tensors=None, retain_graph=None, create_graph=false, inputs=None))]
fn _autograd_backward(
    py: Python<'_>,
    tensors: &Bound<'_, PyAny>,
    grad_tensors: Option<&Bound<'_, PyAny>>,
    retain_graph: Option<bool>,
    create_graph: bool,
    inputs: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let ts = tensor_seq(tensors, "backward", "tensors")?;
    let gs = optional_grads(grad_tensors, &ts, "backward", "grad_tensors")?;
    let inputs = inputs
        .filter(|i| !i.is_none())
        .map(|i| tensor_seq(i, "backward", "inputs"))
        .transpose()?;
    run_backward(
        py,
        ts,
        gs,
        options(retain_graph, create_graph, false),
        inputs,
    )
}

// ---------------------------------------------------------------------------------------
// Grad mode and anomaly mode
// ---------------------------------------------------------------------------------------

/// Turns recording on or off on this thread; returns the previous mode (the Python context
/// managers restore it on exit).
#[pyfunction]
fn _set_grad_enabled(mode: bool) -> bool {
    let prev = is_grad_enabled();
    // The guards only hold the previous flag: forgetting one leaves the mode set.
    if mode {
        std::mem::forget(EnableGradGuard::new());
    } else {
        std::mem::forget(NoGradGuard::new());
    }
    prev
}

/// Whether operations are recorded on this thread.
#[pyfunction]
fn _is_grad_enabled() -> bool {
    is_grad_enabled()
}

/// Turns anomaly detection on or off (globally); returns the previous setting.
#[pyfunction]
fn _set_anomaly_enabled(mode: bool) -> bool {
    let prev = is_anomaly_enabled();
    set_anomaly_enabled(mode);
    prev
}

/// Whether anomaly detection is on.
#[pyfunction]
fn _is_anomaly_enabled() -> bool {
    is_anomaly_enabled()
}

// ---------------------------------------------------------------------------------------
// retain_grad bookkeeping
// ---------------------------------------------------------------------------------------

/// Non-leaf tensors on which `retain_grad()` was called (the library keeps the flag private;
/// this list answers `retains_grad`). Dead entries are pruned on every insertion.
static RETAINING: Mutex<Vec<WeakTensor>> = Mutex::new(Vec::new());

/// Notes that `t` retains its gradient.
fn note_retains_grad(t: &Tensor) {
    let mut list = RETAINING.lock();
    list.retain(|w| w.upgrade().is_some());
    if !list
        .iter()
        .any(|w| w.upgrade().is_some_and(|u| u.id() == t.id()))
    {
        list.push(t.downgrade());
    }
}

/// Whether `retain_grad()` was called on the non-leaf `t`.
fn retains_grad(t: &Tensor) -> bool {
    !t.is_leaf()
        && RETAINING
            .lock()
            .iter()
            .any(|w| w.upgrade().is_some_and(|u| u.id() == t.id()))
}

// ---------------------------------------------------------------------------------------
// grad_fn nodes and hook handles
// ---------------------------------------------------------------------------------------

/// What a [`PyNode`] stands for.
enum NodeKind {
    /// A recorded op.
    Op(GradFn),
    /// A leaf that requires grad (PyTorch's `AccumulateGrad`).
    Leaf(Tensor),
}

/// A node of the backward graph, as `tensor.grad_fn` gives it.
///
/// ```python
/// >>> x = eingrad.ones(2, requires_grad=True)
/// >>> y = x * x
/// >>> y.grad_fn.name(), y.grad_fn.next_functions[0][0].name()
/// ('mul', 'AccumulateGrad')
/// ```
#[pyclass(name = "Node", module = "eingrad.autograd.graph", frozen)]
pub struct PyNode {
    kind: NodeKind,
}

impl PyNode {
    /// The node behind `t` in the graph: its op, or `AccumulateGrad` for a leaf that requires
    /// grad; `None` for a tensor outside the graph.
    fn of(t: &Tensor) -> Option<PyNode> {
        match t.grad_fn() {
            Some(gf) => Some(PyNode {
                kind: NodeKind::Op(gf.clone()),
            }),
            None if t.requires_grad() => Some(PyNode {
                kind: NodeKind::Leaf(t.clone()),
            }),
            None => None,
        }
    }
    /// An identity for `==` and hashing.
    fn key(&self) -> usize {
        match &self.kind {
            NodeKind::Op(gf) => Arc::as_ptr(&gf.node) as usize,
            NodeKind::Leaf(t) => t.id().0 as usize,
        }
    }
}

#[pymethods]
impl PyNode {
    /// The op's name (`"einsum"`, `"mul"`, ... or `"AccumulateGrad"` for a leaf).
    fn name(&self) -> String {
        match &self.kind {
            NodeKind::Op(gf) => gf.node.name().to_string(),
            NodeKind::Leaf(_) => "AccumulateGrad".into(),
        }
    }

    /// One `(node, output index)` pair per input of the op (`(None, 0)` for an input that
    /// does not require grad), as in PyTorch.
    #[getter]
    fn next_functions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let items: Vec<Bound<'py, PyAny>> = match &self.kind {
            NodeKind::Leaf(_) => Vec::new(),
            NodeKind::Op(gf) => gf
                .node
                .inputs()
                .iter()
                .map(|t| {
                    let index = t.grad_fn().map_or(0, |g| g.output);
                    let node = match PyNode::of(t) {
                        Some(n) => Bound::new(py, n)?.into_any(),
                        None => py.None().into_bound(py),
                    };
                    Ok(PyTuple::new(py, [node, index.into_pyobject(py)?.into_any()])?.into_any())
                })
                .collect::<PyResult<_>>()?,
        };
        PyTuple::new(py, items)
    }

    /// The leaf tensor of an `AccumulateGrad` node (`None` for an op).
    #[getter]
    fn variable(&self) -> Option<PyTensor> {
        match &self.kind {
            NodeKind::Leaf(t) => Some(PyTensor::new(t.clone())),
            NodeKind::Op(_) => None,
        }
    }

    /// `<grad_fn mul>`.
    fn __repr__(&self) -> String {
        format!("<grad_fn {}>", self.name())
    }

    /// Two handles on the same node are equal.
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyNode>()
            .is_ok_and(|o| o.get().key() == self.key())
    }

    /// Hashes the node's identity.
    fn __hash__(&self) -> isize {
        self.key() as isize
    }
}

/// What `register_hook` returns: `remove()` unregisters the hook.
///
/// ```python
/// >>> x = eingrad.ones(2, requires_grad=True)
/// >>> h = x.register_hook(lambda g: g * 2)
/// >>> (x * 3).sum().backward(); x.grad
/// tensor([6., 6.])
/// >>> h.remove()
/// ```
#[pyclass(name = "RemovableHandle", module = "eingrad.utils.hooks", frozen)]
pub struct PyHookHandle {
    handle: Mutex<Option<HookHandle>>,
}

#[pymethods]
impl PyHookHandle {
    /// Unregisters the hook (a second call does nothing).
    fn remove(&self) {
        if let Some(h) = self.handle.lock().take() {
            h.remove();
        }
    }

    /// `with x.register_hook(f):` removes the hook at the end of the block.
    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Removes the hook.
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) {
        self.remove();
    }
}

// ---------------------------------------------------------------------------------------
// Tensor methods
// ---------------------------------------------------------------------------------------

#[pymethods]
impl PyTensor {
    /// Sets `requires_grad` (leaves only may turn it off, as in PyTorch).
    #[setter(requires_grad)]
    fn autograd_set_requires_grad(&self, value: bool) -> PyResult<()> {
        let t = self.tensor();
        if !value && !t.is_leaf() {
            return Err(PyRuntimeError::new_err(
                "requires_grad: you can only change requires_grad flags of leaf tensors; \
                 use .detach() to get a tensor without history",
            ));
        }
        let _ = t.requires_grad_(value);
        Ok(())
    }

    /// Marks this tensor as requiring grad (in place) and returns it.
    ///
    /// ```python
    /// >>> x = eingrad.ones(3).requires_grad_()
    /// >>> x.requires_grad
    /// True
    /// ```
    #[pyo3(name = "requires_grad_", signature = (requires_grad=true))]
    fn autograd_requires_grad_(
        slf: Bound<'_, Self>,
        requires_grad: bool,
    ) -> PyResult<Bound<'_, Self>> {
        slf.get().autograd_set_requires_grad(requires_grad)?;
        Ok(slf)
    }

    /// The gradient accumulated by `backward` (leaves, and non-leaves after
    /// `retain_grad()`); `None` until then. Assign a tensor of the same shape and dtype, or
    /// `None` to clear it.
    #[getter(grad)]
    fn autograd_get_grad(&self) -> Option<PyTensor> {
        self.tensor().grad().map(PyTensor::new)
    }

    #[setter(grad)]
    fn autograd_set_grad(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let g = if value.is_none() {
            None
        } else {
            Some(tensor_arg(value, "grad: the assigned gradient")?)
        };
        self.tensor().set_grad(g).py_err()
    }

    /// `del x.grad` clears the gradient, as `x.grad = None` does.
    #[deleter(grad)]
    fn autograd_del_grad(&self) -> PyResult<()> {
        self.tensor().set_grad(None).py_err()
    }

    /// True for tensors without recorded history (every tensor that does not require grad,
    /// and the tensors created by the user that do).
    #[getter(is_leaf)]
    fn autograd_is_leaf(&self) -> bool {
        self.tensor().is_leaf()
    }

    /// The graph node that produced this tensor (`None` for a leaf).
    #[getter(grad_fn)]
    fn autograd_grad_fn(&self) -> Option<PyNode> {
        self.tensor().grad_fn().map(|gf| PyNode {
            kind: NodeKind::Op(gf.clone()),
        })
    }

    /// Computes the gradient of this tensor with respect to the leaves and accumulates it
    /// into their `.grad` (PyTorch's `Tensor.backward`). `gradient` is required unless the
    /// tensor has one element.
    ///
    /// ```python
    /// >>> x = eingrad.tensor([1., 2.], requires_grad=True)
    /// >>> (x * x).backward(eingrad.ones(2)); x.grad
    /// tensor([2., 4.])
    /// ```
    #[pyo3(name = "backward", signature = (gradient=None, retain_graph=None, create_graph=false, inputs=None))]
    fn autograd_backward(
        &self,
        py: Python<'_>,
        gradient: Option<&Bound<'_, PyAny>>,
        retain_graph: Option<bool>,
        create_graph: bool,
        inputs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let t = self.tensor();
        let g = match gradient.filter(|g| !g.is_none()) {
            None => None,
            Some(g) => Some(match g.cast::<PyTensor>() {
                Ok(g) => g.get().tensor(),
                Err(_) => tensor_from_any(g, Some(t.dtype()))?,
            }),
        };
        let inputs = inputs
            .filter(|i| !i.is_none())
            .map(|i| tensor_seq(i, "backward", "inputs"))
            .transpose()?;
        run_backward(
            py,
            vec![t],
            vec![g],
            options(retain_graph, create_graph, false),
            inputs,
        )
    }

    /// Keeps this non-leaf tensor's gradient in `.grad` after `backward` (a no-op on leaves).
    ///
    /// ```python
    /// >>> x = eingrad.ones(2, requires_grad=True)
    /// >>> h = x * 2; h.retain_grad(); (h * h).backward(eingrad.ones(2)); h.grad
    /// tensor([4., 4.])
    /// ```
    #[pyo3(name = "retain_grad")]
    fn autograd_retain_grad(&self) -> PyResult<()> {
        let t = self.tensor();
        if !t.requires_grad() {
            return Err(PyRuntimeError::new_err(
                "retain_grad: can't retain_grad on a tensor that has requires_grad=False",
            ));
        }
        if !t.is_leaf() {
            t.retain_grad();
            note_retains_grad(&t);
        }
        Ok(())
    }

    /// True when `retain_grad()` was called on this non-leaf tensor.
    #[getter(retains_grad)]
    fn autograd_retains_grad(&self) -> bool {
        retains_grad(&self.tensor())
    }

    /// Registers `hook(grad)`, called with this tensor's gradient during backward; it may
    /// return a replacement gradient (same shape and dtype) or `None`. An exception it raises
    /// propagates out of `backward`. Returns a handle whose `remove()` unregisters it.
    ///
    /// ```python
    /// >>> x = eingrad.ones(2, requires_grad=True)
    /// >>> h = x.register_hook(lambda g: g * 10)
    /// >>> (x * 1.0).backward(eingrad.ones(2)); x.grad
    /// tensor([10., 10.])
    /// ```
    #[pyo3(name = "register_hook")]
    fn autograd_register_hook(&self, hook: &Bound<'_, PyAny>) -> PyResult<PyHookHandle> {
        if !hook.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "register_hook: hook must be callable, got {}",
                short_repr(hook)
            )));
        }
        let t = self.tensor();
        if !t.requires_grad() {
            return Err(PyRuntimeError::new_err(
                "register_hook: cannot register a hook on a tensor that doesn't require gradient",
            ));
        }
        let f: Py<PyAny> = hook.clone().unbind();
        let handle = t.register_hook(move |g| {
            Python::attach(|py| {
                let r = f
                    .bind(py)
                    .call1((PyTensor::new(g.clone()),))
                    .map_err(stash_python_error)?;
                if r.is_none() {
                    return Ok(None);
                }
                match r.cast::<PyTensor>() {
                    Ok(t) => Ok(Some(t.get().tensor())),
                    Err(_) => Err(stash_python_error(PyTypeError::new_err(format!(
                        "hook: a tensor hook must return a Tensor or None, it returned {}",
                        short_repr(&r)
                    )))),
                }
            })
        });
        Ok(PyHookHandle {
            handle: Mutex::new(Some(handle)),
        })
    }

    /// Cuts this tensor from the graph in place (it becomes a leaf that does not require
    /// grad) and returns it.
    #[pyo3(name = "detach_")]
    fn autograd_detach_(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        let t = slf.get().tensor();
        slf.get().set_tensor(t.detach());
        slf
    }
}

// ---------------------------------------------------------------------------------------
// autograd.Function
// ---------------------------------------------------------------------------------------

/// What the Python context holds between `forward` and `backward`.
#[derive(Default)]
struct CtxState {
    /// The tensors given to `save_for_backward` (None kept in place).
    saved: Vec<Option<Tensor>>,
    /// Whether each argument of `apply` needs a gradient.
    needs_input_grad: Vec<bool>,
    /// Outputs marked non-differentiable.
    non_differentiable: Vec<Tensor>,
    /// `set_materialize_grads` (recorded; gradients are always materialised as zeros).
    materialize_grads: bool,
}

/// The `ctx` object of a `Function`: `save_for_backward(*tensors)` / `saved_tensors`,
/// `needs_input_grad`, `mark_non_differentiable(*outputs)`, and any attribute you set
/// (`ctx.scale = 2.0`).
///
/// ```python
/// >>> class Square(eingrad.autograd.Function):
/// ...     @staticmethod
/// ...     def forward(ctx, x):
/// ...         ctx.save_for_backward(x)
/// ...         return x * x
/// ...     @staticmethod
/// ...     def backward(ctx, g):
/// ...         (x,) = ctx.saved_tensors
/// ...         return 2 * x * g
/// ```
#[pyclass(
    name = "FunctionCtx",
    module = "eingrad.autograd.function",
    dict,
    subclass,
    frozen
)]
pub struct PyFunctionCtx {
    /// What forward saved and what backward sees.
    state: Mutex<CtxState>,
}

#[pymethods]
impl PyFunctionCtx {
    #[new]
    fn py_new() -> Self {
        PyFunctionCtx {
            state: Mutex::new(CtxState {
                materialize_grads: true,
                ..CtxState::default()
            }),
        }
    }

    /// Saves tensors (or None) for `backward`; call it once, in `forward`.
    #[pyo3(signature = (*tensors))]
    fn save_for_backward(&self, tensors: &Bound<'_, PyTuple>) -> PyResult<()> {
        let saved = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if t.is_none() {
                    Ok(None)
                } else {
                    tensor_arg(&t, &format!("save_for_backward: argument {i}")).map(Some)
                }
            })
            .collect::<PyResult<_>>()?;
        self.state.lock().saved = saved;
        Ok(())
    }

    /// The tensors given to `save_for_backward`, as a tuple (a saved output comes back
    /// carrying this function's node under `create_graph`).
    #[getter]
    fn saved_tensors(&self) -> Vec<Option<PyTensor>> {
        self.state
            .lock()
            .saved
            .iter()
            .map(|t| t.clone().map(PyTensor::new))
            .collect()
    }

    /// One bool per argument of `apply`: whether it needs a gradient.
    #[getter]
    fn needs_input_grad<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.state.lock().needs_input_grad.clone())
    }

    /// Marks outputs of `forward` as not differentiable (they come back without history;
    /// `backward` gets zeros as their gradients).
    #[pyo3(signature = (*outputs))]
    fn mark_non_differentiable(&self, outputs: &Bound<'_, PyTuple>) -> PyResult<()> {
        let ts = outputs
            .iter()
            .enumerate()
            .map(|(i, t)| tensor_arg(&t, &format!("mark_non_differentiable: argument {i}")))
            .collect::<PyResult<Vec<_>>>()?;
        self.state.lock().non_differentiable.extend(ts);
        Ok(())
    }

    /// Accepted for compatibility: eingrad always hands `backward` zeros (never None) for
    /// outputs that got no gradient.
    fn set_materialize_grads(&self, value: bool) {
        self.state.lock().materialize_grads = value;
    }

    /// Accepted for compatibility (eingrad's outputs never alias their inputs' history).
    #[pyo3(signature = (*_args))]
    fn mark_dirty(&self, _args: &Bound<'_, PyTuple>) {}
}

/// A Python `Function` subclass run as a Rust [`CustomFunction`].
struct PyFunction {
    /// The class name (the node's name and what errors name).
    name: String,
    /// `forward(ctx, *args)`.
    forward: Py<PyAny>,
    /// `backward(ctx, *grad_outputs)`.
    backward: Py<PyAny>,
    /// `jvp(ctx, *tangents)`, when the class defines one.
    jvp: Option<Py<PyAny>>,
    /// The context object.
    ctx: Py<PyFunctionCtx>,
    /// The arguments of `apply`, as given.
    args: Vec<Py<PyAny>>,
    /// For each argument: its index among the tensor inputs, if it is a tensor.
    tensor_index: Vec<Option<usize>>,
    /// Whether `forward` returned a single tensor (not a tuple).
    single: AtomicBool,
}

impl PyFunction {
    /// An error of this function's contract.
    fn fn_err(&self, problem: FunctionProblem) -> eingrad::Error {
        AutogradError::Function {
            function: self.name.clone(),
            problem,
        }
        .into()
    }

    /// Gives the Python ctx the tensors as the Rust ctx holds them now (under `create_graph`
    /// saved outputs carry this node) and the per-argument `needs_input_grad`.
    fn sync_ctx(&self, py: Python<'_>, ctx: &FunctionCtx) {
        let pyctx = self.ctx.bind(py).get();
        let mut st = pyctx.state.lock();
        let mut rust_saved = ctx.saved_tensors().iter();
        for slot in st.saved.iter_mut() {
            if slot.is_some() {
                *slot = rust_saved.next().cloned();
            }
        }
        st.needs_input_grad = self
            .tensor_index
            .iter()
            .map(|k| k.is_some_and(|k| ctx.needs_input_grad(k)))
            .collect();
    }

    /// Calls `f(ctx, *rest)`.
    fn call<'py>(
        &self,
        py: Python<'py>,
        f: &Py<PyAny>,
        rest: Vec<Bound<'py, PyAny>>,
    ) -> eingrad::Result<Bound<'py, PyAny>> {
        let mut args = Vec::with_capacity(rest.len() + 1);
        args.push(self.ctx.bind(py).clone().into_any());
        args.extend(rest);
        let args = PyTuple::new(py, args).map_err(stash_python_error)?;
        f.bind(py).call1(args).map_err(stash_python_error)
    }

    /// A tuple or list as its items; anything else as one item.
    fn items<'py>(r: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        if r.is_instance_of::<PyTuple>() || r.is_instance_of::<PyList>() {
            r.try_iter()?.collect()
        } else {
            Ok(vec![r.clone()])
        }
    }

    /// The tensor inputs' gradients (or tangents) from what a Python rule returned for every
    /// argument: checks the count, that non-tensor arguments got None, and the shapes.
    fn per_argument(
        &self,
        r: &Bound<'_, PyAny>,
        ctx: &FunctionCtx,
        rule: &str,
    ) -> eingrad::Result<Vec<Option<Tensor>>> {
        let items = Self::items(r).map_err(stash_python_error)?;
        if items.len() != self.args.len() {
            return Err(self.fn_err(FunctionProblem::GradientCount {
                returned: items.len(),
                inputs: self.args.len(),
            }));
        }
        let n_tensors = self.tensor_index.iter().flatten().count();
        let mut out = vec![None; n_tensors];
        for (i, (item, k)) in items.iter().zip(&self.tensor_index).enumerate() {
            if item.is_none() {
                continue;
            }
            let Ok(t) = item.cast::<PyTensor>() else {
                return Err(stash_python_error(PyTypeError::new_err(format!(
                    "function {} {rule} returned {} at position {i}; expected a Tensor or None",
                    self.name,
                    short_repr(item)
                ))));
            };
            let Some(k) = *k else {
                return Err(stash_python_error(PyRuntimeError::new_err(format!(
                    "function {} {rule} returned a gradient different than None at position {i}, \
                     but the corresponding forward input was not a Tensor",
                    self.name
                ))));
            };
            let t = t.get().tensor();
            let (shape, dtype) = (
                ctx.input_shape(k).unwrap_or_default(),
                ctx.input_dtype(k).unwrap_or(t.dtype()),
            );
            if t.dims() != shape || t.dtype() != dtype {
                return Err(self.fn_err(FunctionProblem::Mismatch {
                    value: FunctionValue::BackwardGradient,
                    index: i,
                    got: TensorMeta {
                        shape: t.dims().to_vec(),
                        dtype: t.dtype(),
                    },
                    want: TensorMeta {
                        shape: shape.to_vec(),
                        dtype,
                    },
                }));
            }
            out[k] = Some(t);
        }
        Ok(out)
    }
}

impl CustomFunction for PyFunction {
    fn name(&self) -> &str {
        &self.name
    }

    fn forward(&self, ctx: &mut FunctionCtx, _inputs: &[Tensor]) -> eingrad::Result<Vec<Tensor>> {
        Python::attach(|py| {
            self.sync_ctx(py, ctx);
            let args = self.args.iter().map(|a| a.bind(py).clone()).collect();
            let r = self.call(py, &self.forward, args)?;
            let single = r.cast::<PyTensor>().is_ok();
            self.single.store(single, Ordering::Relaxed);
            let items = Self::items(&r).map_err(stash_python_error)?;
            let outs = items
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    tensor_arg(o, &format!("function {} forward output {i}", self.name))
                        .map_err(stash_python_error)
                })
                .collect::<eingrad::Result<Vec<_>>>()?;
            let st = self.ctx.bind(py).get().state.lock();
            let saved: Vec<Tensor> = st.saved.iter().flatten().cloned().collect();
            ctx.save_for_backward(&saved);
            let marked: Vec<&Tensor> = st.non_differentiable.iter().collect();
            ctx.mark_non_differentiable(&marked);
            Ok(outs)
        })
    }

    fn backward(
        &self,
        ctx: &FunctionCtx,
        grad_outputs: &[Tensor],
    ) -> eingrad::Result<Vec<Option<Tensor>>> {
        Python::attach(|py| {
            self.sync_ctx(py, ctx);
            let grads = grad_outputs
                .iter()
                .map(|g| {
                    Bound::new(py, PyTensor::new(g.clone()))
                        .map(Bound::into_any)
                        .map_err(stash_python_error)
                })
                .collect::<eingrad::Result<_>>()?;
            let r = self.call(py, &self.backward, grads)?;
            self.per_argument(&r, ctx, "backward")
        })
    }

    fn jvp(
        &self,
        ctx: &FunctionCtx,
        tangents: &[Option<Tensor>],
    ) -> Option<eingrad::Result<Vec<Option<Tensor>>>> {
        let jvp = self.jvp.as_ref()?;
        Some(Python::attach(|py| {
            self.sync_ctx(py, ctx);
            // One tangent per argument: zeros for a tensor without one, None otherwise.
            let ts = self
                .tensor_index
                .iter()
                .map(|k| match k {
                    None => Ok(py.None().into_bound(py)),
                    Some(k) => {
                        let t = match &tangents[*k] {
                            Some(t) => t.clone(),
                            None => Tensor::zeros(
                                ctx.input_shape(*k).unwrap_or_default(),
                                ctx.input_dtype(*k).unwrap_or(eingrad::DType::F32),
                            )?,
                        };
                        Bound::new(py, PyTensor::new(t))
                            .map(Bound::into_any)
                            .map_err(stash_python_error)
                    }
                })
                .collect::<eingrad::Result<_>>()?;
            let r = self.call(py, jvp, ts)?;
            let items = Self::items(&r).map_err(stash_python_error)?;
            items
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    if t.is_none() {
                        Ok(None)
                    } else {
                        tensor_arg(t, &format!("function {} jvp output {i}", self.name))
                            .map(Some)
                            .map_err(stash_python_error)
                    }
                })
                .collect()
        }))
    }
}

/// Runs a Python `Function` (`Function.apply` calls this): `forward(ctx, *args)` under
/// no-grad, its outputs recorded as one graph node whose backward calls
/// `backward(ctx, *grad_outputs)`. Returns one tensor, or a tuple when `forward` returned one.
#[pyfunction]
#[pyo3(signature = (name, forward, backward, jvp, ctx, args))]
fn _function_apply<'py>(
    py: Python<'py>,
    name: String,
    forward: Py<PyAny>,
    backward: Py<PyAny>,
    jvp: Option<Py<PyAny>>,
    ctx: Py<PyFunctionCtx>,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut tensors = Vec::new();
    let mut tensor_index = Vec::with_capacity(args.len());
    for a in args.iter() {
        match a.cast::<PyTensor>() {
            Ok(t) => {
                tensor_index.push(Some(tensors.len()));
                tensors.push(t.get().tensor());
            }
            Err(_) => tensor_index.push(None),
        }
    }
    let f = Arc::new(PyFunction {
        name,
        forward,
        backward,
        jvp,
        ctx,
        args: args.iter().map(Bound::unbind).collect(),
        tensor_index,
        single: AtomicBool::new(false),
    });
    let refs: Vec<&Tensor> = tensors.iter().collect();
    let outs = guard("Function.apply", || {
        apply_function(f.clone(), &refs).py_err()
    })?;
    let mut outs: Vec<PyTensor> = outs.into_iter().map(PyTensor::new).collect();
    if f.single.load(Ordering::Relaxed) && outs.len() == 1 {
        return Ok(Bound::new(py, outs.remove(0))?.into_any());
    }
    Ok(PyTuple::new(py, outs)?.into_any())
}

/// Adds this file's classes and functions to the native module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Under underscore names: eingrad.autograd re-exports them (`from ._eingrad import *`
    // must not put them at the top level).
    let py = m.py();
    m.add("_Node", py.get_type::<PyNode>())?;
    m.add("_RemovableHandle", py.get_type::<PyHookHandle>())?;
    m.add("_FunctionCtx", py.get_type::<PyFunctionCtx>())?;
    for f in [
        wrap_pyfunction!(_autograd_grad, m)?,
        wrap_pyfunction!(_autograd_backward, m)?,
        wrap_pyfunction!(_set_grad_enabled, m)?,
        wrap_pyfunction!(_is_grad_enabled, m)?,
        wrap_pyfunction!(_set_anomaly_enabled, m)?,
        wrap_pyfunction!(_is_anomaly_enabled, m)?,
        wrap_pyfunction!(_function_apply, m)?,
    ] {
        m.add_function(f)?;
    }
    Ok(())
}
