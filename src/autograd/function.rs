//! User-defined differentiable functions (PyTorch's `torch.autograd.Function`).
//!
//! Implement [`CustomFunction`] with a `forward` (run under no-grad, with a [`FunctionCtx`]
//! to stash what the backward needs) and a `backward` that maps the gradients of the
//! outputs to one optional gradient per input; then call [`apply_function`]. The outputs are
//! recorded as one multi-output graph node named after the function.
//!
//! When the engine runs with `create_graph`, `backward` runs with grad mode on, so a backward
//! written in tensor ops is itself differentiable: saved inputs keep their history and saved
//! outputs are handed back carrying this node as their history.
//!
//! ```
//! use eingrad::autograd::{apply_function, grad, CustomFunction, FunctionCtx, GradOptions};
//! use eingrad::{Result, Tensor};
//!
//! /// x³ with the rule 3x²·g.
//! struct Cube;
//! impl CustomFunction for Cube {
//!     fn name(&self) -> &str { "cube" }
//!     fn forward(&self, ctx: &mut FunctionCtx, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
//!         ctx.save_for_backward(&[inputs[0].clone()]);
//!         Ok(vec![inputs[0].mul(&inputs[0])?.mul(&inputs[0])?])
//!     }
//!     fn backward(&self, ctx: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
//!         let x = &ctx.saved_tensors()[0];
//!         Ok(vec![Some(g[0].mul(&x.mul(x)?.mul_scalar(3.0)?)?)])
//!     }
//! }
//!
//! let x = Tensor::from_vec(vec![2.0f64], &[1]).unwrap().requires_grad_(true);
//! let y = apply_function(Cube, &[&x]).unwrap().remove(0);
//! let opts = GradOptions::default().create_graph(true);
//! let g = grad(&[y], &[x.clone()], None, opts).unwrap()[0].clone().unwrap();
//! assert_eq!(g.item().unwrap(), 12.0); // 3·2²
//! let gg = grad(&[g], &[x], None, GradOptions::default()).unwrap();
//! assert_eq!(gg[0].as_ref().unwrap().item().unwrap(), 12.0); // 6·2
//! ```

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use super::mode::{is_grad_enabled, NoGradGuard};
use super::node::record;
use super::rule::{BackwardFn, JvpFn, Rule};
use crate::dtype::DType;
use crate::error::{AutogradError, Error, FunctionProblem, FunctionValue, Result, TensorMeta};
use crate::tensor::{Tensor, TensorId, TensorInner};

/// The state a [`CustomFunction`] carries from `forward` to `backward` (and `jvp`): saved
/// tensors, which inputs need a gradient, the inputs' and outputs' shapes, and any other
/// values the rule needs (scalars, sizes, flags).
///
/// Cloning is cheap: tensors are handles and saved values are shared.
#[derive(Clone, Default)]
pub struct FunctionCtx {
    name: String,
    saved: Vec<Tensor>,
    needs_input_grad: Vec<bool>,
    inputs: Vec<(Vec<usize>, DType)>,
    outputs: Vec<(Vec<usize>, DType)>,
    non_differentiable: Vec<TensorId>,
    values: BTreeMap<String, Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for FunctionCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionCtx")
            .field("name", &self.name)
            .field(
                "saved",
                &self
                    .saved
                    .iter()
                    .map(|t| t.dims().to_vec())
                    .collect::<Vec<_>>(),
            )
            .field("needs_input_grad", &self.needs_input_grad)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .field("values", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl FunctionCtx {
    /// A context for `inputs` of the function `name`; `needs_input_grad[i]` is whether input
    /// `i` requires grad while grad mode is on.
    pub(crate) fn new(name: &str, inputs: &[&Tensor]) -> FunctionCtx {
        let grad_on = is_grad_enabled();
        FunctionCtx {
            name: name.to_string(),
            needs_input_grad: inputs
                .iter()
                .map(|t| grad_on && t.requires_grad())
                .collect(),
            inputs: inputs
                .iter()
                .map(|t| (t.dims().to_vec(), t.dtype()))
                .collect(),
            ..FunctionCtx::default()
        }
    }

    /// The name of the function this context belongs to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Saves tensors for the backward (replacing any saved before, as in PyTorch). Save the
    /// inputs and outputs themselves, not copies: with `create_graph` a saved input keeps its
    /// history and a saved output comes back carrying this function's node, so a backward
    /// written in tensor ops differentiates correctly.
    pub fn save_for_backward(&mut self, ts: &[Tensor]) {
        self.saved = ts.to_vec();
    }

    /// The tensors given to [`FunctionCtx::save_for_backward`], in the same order.
    pub fn saved_tensors(&self) -> &[Tensor] {
        &self.saved
    }

    /// Whether input `i` needs a gradient (false for an index out of range). In `forward` this
    /// is whether the input requires grad (and grad mode was on); in `backward` it is
    /// narrowed further to the inputs whose gradient the current backward pass wants, so a
    /// rule may skip the rest (returning `None` for them).
    pub fn needs_input_grad(&self, i: usize) -> bool {
        self.needs_input_grad.get(i).copied().unwrap_or(false)
    }

    /// [`FunctionCtx::needs_input_grad`] for every input.
    pub fn needs_input_grads(&self) -> &[bool] {
        &self.needs_input_grad
    }

    /// The number of inputs.
    pub fn num_inputs(&self) -> usize {
        self.inputs.len()
    }

    /// The shape of input `i`.
    pub fn input_shape(&self, i: usize) -> Option<&[usize]> {
        self.inputs.get(i).map(|(s, _)| s.as_slice())
    }

    /// The dtype of input `i`.
    pub fn input_dtype(&self, i: usize) -> Option<DType> {
        self.inputs.get(i).map(|(_, d)| *d)
    }

    /// The number of outputs (0 until `forward` has returned).
    pub fn num_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// The shape of output `i` (known once `forward` has returned).
    pub fn output_shape(&self, i: usize) -> Option<&[usize]> {
        self.outputs.get(i).map(|(s, _)| s.as_slice())
    }

    /// Marks outputs of `forward` as not differentiable (indices, argmax-like results, masks):
    /// they are returned without history, and `backward` receives zeros as their gradients.
    /// Pass the very tensors `forward` returns; a tensor that is not one of the outputs is an
    /// error when `forward` returns.
    pub fn mark_non_differentiable(&mut self, outputs: &[&Tensor]) {
        self.non_differentiable
            .extend(outputs.iter().map(|t| t.id()));
    }

    /// Stores any value for the backward under `key` (replacing an earlier one).
    pub fn save_value<T: Any + Send + Sync>(&mut self, key: impl Into<String>, value: T) {
        self.values.insert(key.into(), Arc::new(value));
    }

    /// The value stored under `key`, if there is one of type `T`.
    pub fn saved_value<T: Any + Send + Sync>(&self, key: &str) -> Option<&T> {
        self.values.get(key).and_then(|v| v.downcast_ref::<T>())
    }

    /// Stores an `f64` under `key`.
    pub fn save_f64(&mut self, key: impl Into<String>, value: f64) {
        self.save_value(key, value)
    }

    /// The `f64` stored under `key`.
    pub fn saved_f64(&self, key: &str) -> Option<f64> {
        self.saved_value::<f64>(key).copied()
    }

    /// Stores a `usize` under `key`.
    pub fn save_usize(&mut self, key: impl Into<String>, value: usize) {
        self.save_value(key, value)
    }

    /// The `usize` stored under `key`.
    pub fn saved_usize(&self, key: &str) -> Option<usize> {
        self.saved_value::<usize>(key).copied()
    }
}

/// A differentiable function defined by its forward computation and its own derivative rules
/// (PyTorch's `torch.autograd.Function`). Run it with [`apply_function`].
pub trait CustomFunction: Send + Sync + 'static {
    /// The name of the graph node and of error messages.
    fn name(&self) -> &str;

    /// Computes the outputs (at least one). Runs under no-grad; save what the backward needs
    /// in `ctx`. `inputs` are the tensors given to [`apply_function`].
    fn forward(&self, ctx: &mut FunctionCtx, inputs: &[Tensor]) -> Result<Vec<Tensor>>;

    /// Maps the gradients of the outputs (one per output, zeros for outputs that did not
    /// contribute or are non-differentiable) to one gradient per input, `None` where there is
    /// none. Each gradient must have its input's shape and dtype. Runs with grad mode on under
    /// `create_graph` (so a rule in tensor ops is differentiable), off otherwise.
    fn backward(&self, ctx: &FunctionCtx, grad_outputs: &[Tensor]) -> Result<Vec<Option<Tensor>>>;

    /// Optional forward-mode rule: maps one tangent per input (`None` for a zero tangent) to
    /// one tangent per output. `None` (the default) means the function has no forward-mode
    /// rule. Call it through [`function_jvp`], which checks the shapes.
    fn jvp(
        &self,
        ctx: &FunctionCtx,
        tangents: &[Option<Tensor>],
    ) -> Option<Result<Vec<Option<Tensor>>>> {
        let _ = (ctx, tangents);
        None
    }
}

impl<F: CustomFunction + ?Sized> CustomFunction for Arc<F> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn forward(&self, ctx: &mut FunctionCtx, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        (**self).forward(ctx, inputs)
    }
    fn backward(&self, ctx: &FunctionCtx, grad_outputs: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
        (**self).backward(ctx, grad_outputs)
    }
    fn jvp(
        &self,
        ctx: &FunctionCtx,
        tangents: &[Option<Tensor>],
    ) -> Option<Result<Vec<Option<Tensor>>>> {
        (**self).jvp(ctx, tangents)
    }
}

fn fn_err(name: &str, problem: FunctionProblem) -> Error {
    AutogradError::Function {
        function: name.to_string(),
        problem,
    }
    .into()
}

/// Checks that `g` fits `(shape, dtype)`; `value` says which value it is, `i` the index of the
/// input or output it is for.
fn check_fits(
    name: &str,
    value: FunctionValue,
    i: usize,
    g: &Tensor,
    meta: &(Vec<usize>, DType),
) -> Result<()> {
    if g.dims() != meta.0.as_slice() || g.dtype() != meta.1 {
        return Err(fn_err(
            name,
            FunctionProblem::Mismatch {
                value,
                index: i,
                got: TensorMeta::new(g.dims(), g.dtype()),
                want: TensorMeta::new(&meta.0, meta.1),
            },
        ));
    }
    Ok(())
}

/// Runs a [`CustomFunction`] on `inputs` and records its outputs as one graph node (when grad
/// mode is on and an input requires grad). Accepts the function by value or as an `Arc`.
///
/// `forward` runs under no-grad. Outputs marked non-differentiable come back without
/// history. During backward the user rule's gradients are checked: one per input, each with
/// its input's shape and dtype, else an [`AutogradError::Function`] naming the function and
/// the input.
///
/// ```
/// use eingrad::autograd::{apply_function, CustomFunction, FunctionCtx};
/// use eingrad::{Result, Tensor, DType};
///
/// /// Gradient reversal: identity forward, −g backward.
/// struct Reverse;
/// impl CustomFunction for Reverse {
///     fn name(&self) -> &str { "grad_reverse" }
///     fn forward(&self, _: &mut FunctionCtx, x: &[Tensor]) -> Result<Vec<Tensor>> {
///         Ok(vec![x[0].clone()])
///     }
///     fn backward(&self, _: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
///         Ok(vec![Some(g[0].neg()?)])
///     }
/// }
/// let x = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
/// let y = apply_function(Reverse, &[&x]).unwrap().remove(0);
/// y.sum_all().unwrap().backward().unwrap();
/// assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), vec![-1.0, -1.0]);
/// ```
pub fn apply_function<F: CustomFunction>(f: F, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    let f = Arc::new(f);
    let name = f.name().to_string();
    let mut ctx = FunctionCtx::new(&name, inputs);
    let owned: Vec<Tensor> = inputs.iter().map(|&t| t.clone()).collect();
    let outs = {
        let _g = NoGradGuard::new();
        f.forward(&mut ctx, &owned)?
    };
    if outs.is_empty() {
        return Err(fn_err(&name, FunctionProblem::NoOutputs));
    }
    // Outputs never carry history of their own (forward may have returned an input as is).
    let outs: Vec<Tensor> = outs
        .into_iter()
        .map(|o| if o.requires_grad() { o.detach() } else { o })
        .collect();
    ctx.outputs = outs
        .iter()
        .map(|t| (t.dims().to_vec(), t.dtype()))
        .collect();
    // Which outputs are differentiable.
    let mut diff = vec![true; outs.len()];
    for id in std::mem::take(&mut ctx.non_differentiable) {
        match outs.iter().position(|o| o.id() == id) {
            Some(k) => diff[k] = false,
            None => return Err(fn_err(&name, FunctionProblem::ForeignNonDifferentiable)),
        }
    }
    // Saved tensors that are outputs (and not inputs): with create_graph the backward gets
    // the recorded output back, so that differentiating the rule flows through this node.
    let saved_output: Vec<Option<usize>> = ctx
        .saved
        .iter()
        .map(|s| {
            if inputs.iter().any(|t| t.id() == s.id()) {
                None
            } else {
                outs.iter().position(|o| o.id() == s.id())
            }
        })
        .collect();

    let recording = ctx.needs_input_grad.iter().any(|&b| b);
    if !recording {
        return Ok(outs);
    }
    let diff_idx: Vec<usize> = (0..outs.len()).filter(|&k| diff[k]).collect();
    if diff_idx.is_empty() {
        return Ok(outs);
    }
    let diff_outs: Vec<Tensor> = diff_idx.iter().map(|&k| outs[k].clone()).collect();
    let recorded_weak: Arc<parking_lot::Mutex<Vec<Weak<TensorInner>>>> =
        Arc::new(parking_lot::Mutex::new(Vec::new()));
    let weak_for_rule = recorded_weak.clone();
    let diff_for_rule = diff_idx.clone();
    let ctx = Arc::new(ctx);
    let rule_ctx = ctx.clone();
    let rule_f = f.clone();
    let backward: BackwardFn = Box::new(
        move |grads: &[Tensor], needs: &[bool]| -> Result<Vec<Option<Tensor>>> {
            let c = &*rule_ctx;
            let name = c.name.as_str();
            // All outputs' gradients in order; non-differentiable ones are zeros.
            let mut full: Vec<Tensor> = c
                .outputs
                .iter()
                .map(|(s, d)| Tensor::zeros(s, *d))
                .collect::<Result<_>>()?;
            for (&k, g) in diff_for_rule.iter().zip(grads) {
                full[k] = g.clone();
            }
            let mut view = c.clone();
            view.needs_input_grad = c
                .needs_input_grad
                .iter()
                .zip(needs)
                .map(|(&a, &b)| a && b)
                .collect();
            if is_grad_enabled() {
                let live = weak_for_rule.lock();
                for (s, slot) in view.saved.iter_mut().zip(&saved_output) {
                    let Some(k) = *slot else { continue };
                    let Some(pos) = diff_for_rule.iter().position(|&d| d == k) else {
                        continue;
                    };
                    if let Some(inner) = live.get(pos).and_then(|w| w.upgrade()) {
                        *s = Tensor(inner);
                    }
                }
            }
            let gs = rule_f.backward(&view, &full)?;
            if gs.len() != c.inputs.len() {
                return Err(fn_err(
                    name,
                    FunctionProblem::GradientCount {
                        returned: gs.len(),
                        inputs: c.inputs.len(),
                    },
                ));
            }
            let mut out = Vec::with_capacity(gs.len());
            for (i, g) in gs.into_iter().enumerate() {
                match g {
                    Some(g) if view.needs_input_grad(i) => {
                        check_fits(name, FunctionValue::BackwardGradient, i, &g, &c.inputs[i])?;
                        out.push(Some(g));
                    }
                    _ => out.push(None),
                }
            }
            Ok(out)
        },
    );
    // Forward mode: the function's own JVP rule when it has one (declining otherwise).
    let (jvp_f, jvp_ctx, jvp_idx) = (f.clone(), ctx.clone(), diff_idx.clone());
    let jvp: JvpFn = Box::new(move |t: &[Option<Tensor>]| {
        Ok(function_jvp(&*jvp_f, &jvp_ctx, t)?
            .map(|ts| jvp_idx.iter().map(|&k| ts[k].clone()).collect()))
    });
    let recorded = record(name, inputs, diff_outs, || Rule::General { backward, jvp });
    *recorded_weak.lock() = recorded.iter().map(|t| Arc::downgrade(&t.0)).collect();
    let mut result = outs;
    for (&k, t) in diff_idx.iter().zip(recorded) {
        result[k] = t;
    }
    Ok(result)
}

/// [`apply_function`] for a function with exactly one output.
///
/// ```
/// # use eingrad::autograd::{apply_function1, CustomFunction, FunctionCtx};
/// # use eingrad::{Result, Tensor, DType};
/// struct Double;
/// impl CustomFunction for Double {
///     fn name(&self) -> &str { "double" }
///     fn forward(&self, _: &mut FunctionCtx, x: &[Tensor]) -> Result<Vec<Tensor>> {
///         Ok(vec![x[0].mul_scalar(2.0)?])
///     }
///     fn backward(&self, _: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
///         Ok(vec![Some(g[0].mul_scalar(2.0)?)])
///     }
/// }
/// let y = apply_function1(Double, &[&Tensor::ones(&[3], DType::F64).unwrap()]).unwrap();
/// assert_eq!(y.to_vec::<f64>().unwrap(), vec![2.0; 3]);
/// ```
pub fn apply_function1<F: CustomFunction>(f: F, inputs: &[&Tensor]) -> Result<Tensor> {
    let name = f.name().to_string();
    let mut outs = apply_function(f, inputs)?;
    if outs.len() != 1 {
        return Err(fn_err(
            &name,
            FunctionProblem::NotOneOutput {
                outputs: outs.len(),
            },
        ));
    }
    Ok(outs.remove(0))
}

/// Runs `f`'s forward-mode rule with checks: `tangents` holds one entry per input of `ctx`
/// (each `None` or of its input's shape and dtype), and the rule must return one entry per
/// output, each `None` or of its output's shape and dtype. `Ok(None)` when `f` has no rule.
/// (Forward-mode autodiff calls this with the context `forward` filled.)
pub fn function_jvp<F: CustomFunction + ?Sized>(
    f: &F,
    ctx: &FunctionCtx,
    tangents: &[Option<Tensor>],
) -> Result<Option<Vec<Option<Tensor>>>> {
    let name = f.name();
    if tangents.len() != ctx.inputs.len() {
        return Err(fn_err(
            name,
            FunctionProblem::TangentCount {
                given: tangents.len(),
                inputs: ctx.inputs.len(),
            },
        ));
    }
    for (i, t) in tangents.iter().enumerate() {
        if let Some(t) = t {
            check_fits(name, FunctionValue::JvpTangent, i, t, &ctx.inputs[i])?;
        }
    }
    let Some(r) = f.jvp(ctx, tangents) else {
        return Ok(None);
    };
    let ts = r?;
    if ts.len() != ctx.outputs.len() {
        return Err(fn_err(
            name,
            FunctionProblem::JvpOutputCount {
                returned: ts.len(),
                outputs: ctx.outputs.len(),
            },
        ));
    }
    for (k, t) in ts.iter().enumerate() {
        if let Some(t) = t {
            check_fits(name, FunctionValue::JvpResult, k, t, &ctx.outputs[k])?;
        }
    }
    Ok(Some(ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Scale(f64);
    impl CustomFunction for Scale {
        fn name(&self) -> &str {
            "scale"
        }
        fn forward(&self, ctx: &mut FunctionCtx, x: &[Tensor]) -> Result<Vec<Tensor>> {
            ctx.save_f64("c", self.0);
            Ok(vec![x[0].mul_scalar(self.0)?])
        }
        fn backward(&self, ctx: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
            Ok(vec![Some(
                g[0].mul_scalar(ctx.saved_f64("c").unwrap_or(0.0))?,
            )])
        }
        fn jvp(
            &self,
            ctx: &FunctionCtx,
            t: &[Option<Tensor>],
        ) -> Option<Result<Vec<Option<Tensor>>>> {
            let c = ctx.saved_f64("c")?;
            Some(
                t[0].as_ref()
                    .map(|t| t.mul_scalar(c))
                    .transpose()
                    .map(|t| vec![t]),
            )
        }
    }

    #[test]
    fn jvp_is_checked_and_runs() {
        let x = Tensor::ones(&[3], DType::F64).unwrap();
        let mut ctx = FunctionCtx::new("scale", &[&x]);
        let y = Scale(2.0)
            .forward(&mut ctx, std::slice::from_ref(&x))
            .unwrap();
        ctx.outputs = y.iter().map(|t| (t.dims().to_vec(), t.dtype())).collect();
        let t = Tensor::full(&[3], 0.5, DType::F64).unwrap();
        let r = function_jvp(&Scale(2.0), &ctx, &[Some(t)])
            .unwrap()
            .unwrap();
        assert_eq!(
            r[0].as_ref().unwrap().to_vec::<f64>().unwrap(),
            vec![1.0; 3]
        );
        let bad = function_jvp(
            &Scale(2.0),
            &ctx,
            &[Some(Tensor::ones(&[2], DType::F64).unwrap())],
        );
        let msg = bad.unwrap_err().to_string();
        assert!(msg.contains("scale") && msg.contains("input 0"), "{msg}");
        let msg = function_jvp(&Scale(2.0), &ctx, &[])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("0 tangents"), "{msg}");
    }

    #[test]
    fn arc_and_no_recording() {
        let f = Arc::new(Scale(3.0));
        let x = Tensor::ones(&[2], DType::F64).unwrap();
        let y = apply_function(f.clone(), &[&x]).unwrap();
        assert!(!y[0].requires_grad());
        let xr = x.clone().requires_grad_(true);
        let y = crate::autograd::no_grad(|| apply_function(f, &[&xr])).unwrap();
        assert!(!y[0].requires_grad());
    }
}
