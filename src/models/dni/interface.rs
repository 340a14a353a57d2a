//! The synthetic-gradient updater and the interfaces (unidirectional, forward, backward,
//! bidirectional).

use super::{backward, current_synthesizer_context, BasicSynthesizer, Synthesizer};
use crate::autograd::{apply_function1, no_grad, CustomFunction, FunctionCtx};
use crate::error::{Error, Result};
use crate::nn::{mse_loss, Module, Reduction};
use crate::tensor::Tensor;

/// The custom autograd function that lets a synthetic gradient learn from the true one.
/// Inputs `[trigger, synthetic_gradient]` of the same shape `(B, ...)`; the output is a copy
/// of the trigger. Backward, given the true gradient `g` of the output: `g` for the trigger
/// (unchanged) and `(2/B)(sg − g)` for the synthetic gradient. Its forward is an error when the
/// synthetic gradient does not require grad (it would learn nothing).
///
/// ```
/// use eingrad::autograd::{grad, GradOptions};
/// use eingrad::models::dni::synthetic_gradient_update;
/// use eingrad::Tensor;
/// let t = Tensor::from_vec(vec![1.0f64, 2.0], &[2, 1]).unwrap().requires_grad_(true);
/// let sg = Tensor::from_vec(vec![0.5f64, 0.0], &[2, 1]).unwrap().requires_grad_(true);
/// let y = synthetic_gradient_update(&t, &sg).unwrap();
/// assert_eq!(y.to_vec::<f64>().unwrap(), vec![1.0, 2.0]);
/// let g = Tensor::from_vec(vec![1.0f64, -1.0], &[2, 1]).unwrap();
/// let gs = grad(&[y], &[t, sg], Some(&[g]), GradOptions::default()).unwrap();
/// assert_eq!(gs[0].as_ref().unwrap().to_vec::<f64>().unwrap(), vec![1.0, -1.0]);
/// assert_eq!(gs[1].as_ref().unwrap().to_vec::<f64>().unwrap(), vec![-0.5, 1.0]); // (2/2)(sg − g)
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SyntheticGradientUpdater;

const UPDATER: &str = "synthetic_gradient_updater";

impl CustomFunction for SyntheticGradientUpdater {
    fn name(&self) -> &str {
        UPDATER
    }
    fn forward(&self, ctx: &mut FunctionCtx, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let [trigger, sg] = inputs else {
            return Err(Error::arg(
                UPDATER,
                "inputs",
                format!(
                    "takes [trigger, synthetic_gradient], got {} tensors",
                    inputs.len()
                ),
            ));
        };
        if !ctx.needs_input_grad(1) {
            return Err(Error::arg(
                UPDATER,
                "synthetic_gradient",
                "should require grad but does not (are the synthesizer's parameters frozen, \
                 or is grad mode off?)",
            ));
        }
        if trigger.dims() != sg.dims() || trigger.rank() == 0 {
            return Err(Error::ShapeMismatch {
                op: UPDATER,
                lhs: trigger.dims().to_vec(),
                rhs: sg.dims().to_vec(),
                detail: " (`synthetic_gradient` must have the shape (B, ...) of `trigger`)".into(),
            });
        }
        if trigger.dtype() != sg.dtype() {
            return Err(Error::DTypeMismatch {
                op: UPDATER,
                lhs: trigger.dtype(),
                rhs: sg.dtype(),
            });
        }
        ctx.save_for_backward(std::slice::from_ref(sg));
        // A new handle on the trigger's values (storage is copy-on-write).
        Ok(vec![trigger.detach()])
    }
    fn backward(&self, ctx: &FunctionCtx, grad_outputs: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
        let g = &grad_outputs[0];
        let sg = &ctx.saved_tensors()[0];
        let batch = sg.dims()[0];
        let g_trigger = ctx.needs_input_grad(0).then(|| g.clone());
        let g_sg = if ctx.needs_input_grad(1) && batch > 0 {
            Some(sg.sub(g)?.mul_scalar(2.0 / batch as f64)?)
        } else if ctx.needs_input_grad(1) {
            Some(sg.zeros_like()?)
        } else {
            None
        };
        Ok(vec![g_trigger, g_sg])
    }
}

/// Applies [`SyntheticGradientUpdater`] to `trigger` and `synthetic_gradient`.
pub fn synthetic_gradient_update(trigger: &Tensor, synthetic_gradient: &Tensor) -> Result<Tensor> {
    apply_function1(SyntheticGradientUpdater, &[trigger, synthetic_gradient])
}

// ---------------------------------------------------------------------------------------------
// Interfaces

/// Checks that the synthesized `out` has `message`'s shape, naming the argument at fault.
fn check_message(op: &'static str, out: &Tensor, message: &Tensor, what: &str) -> Result<()> {
    if out.dims() == message.dims() {
        return Ok(());
    }
    let (o, m) = (out.dims(), message.dims());
    let detail = if o.len() == m.len() && !o.is_empty() && o[..o.len() - 1] == m[..m.len() - 1] {
        format!(
            " (the synthesizer's output width {} does not match `{what}`'s width {})",
            o[o.len() - 1],
            m[m.len() - 1]
        )
    } else {
        format!(
            " (`trigger`'s leading dims give a synthesized {what} of shape {o:?}, but `{what}` \
             has shape {m:?})"
        )
    };
    Err(Error::ShapeMismatch {
        op,
        lhs: o.to_vec(),
        rhs: m.to_vec(),
        detail,
    })
}

/// The seed's unidirectional interface: `receive` synthesizes a message (detached), `send`
/// trains the synthesizer towards a true message. Both work in train and eval mode; the mode
/// matters to the interfaces built on it.
#[derive(Debug, Clone)]
pub struct UnidirectionalInterface<S: Synthesizer = BasicSynthesizer> {
    synthesizer: S,
    training: bool,
}

impl<S: Synthesizer> UnidirectionalInterface<S> {
    /// An interface around `synthesizer`, in training mode.
    pub fn new(synthesizer: S) -> Self {
        UnidirectionalInterface {
            synthesizer,
            training: true,
        }
    }
    /// The synthesizer.
    pub fn synthesizer(&self) -> &S {
        &self.synthesizer
    }
    /// The synthesizer, mutably.
    pub fn synthesizer_mut(&mut self) -> &mut S {
        &mut self.synthesizer
    }
    /// The synthesizer's parameters.
    pub fn parameters(&self) -> Vec<Tensor> {
        self.synthesizer.parameters()
    }
    /// Switches training mode on or off.
    pub fn train(&mut self, on: bool) {
        self.training = on;
    }
    /// Same as `train(false)`.
    pub fn eval(&mut self) {
        self.training = false;
    }
    /// Whether the interface is in training mode.
    pub fn is_training(&self) -> bool {
        self.training
    }
    /// The synthesizer's output for `trigger` under the current context, with history.
    pub fn synthesize(&self, trigger: &Tensor) -> Result<Tensor> {
        self.synthesizer
            .synthesize(trigger, current_synthesizer_context().as_ref())
    }
    /// The synthesized message for `trigger`, detached (no gradient flows through it).
    pub fn receive(&self, trigger: &Tensor) -> Result<Tensor> {
        Ok(no_grad(|| self.synthesize(trigger))?.detach())
    }
    /// Trains the synthesizer towards `message`: backpropagates (through [`backward`], so
    /// deferred inside [`defer_backward`](super::defer_backward))
    /// `mse_mean(synth(trigger.detach()), message.detach())` into the synthesizer's parameters
    /// only (the context is detached too), and returns that loss's value (detached), for
    /// logging; step an optimizer over the synthesizer's parameters afterwards. Nothing is
    /// backpropagated when the loss does not require grad (frozen synthesizer, no-grad mode).
    pub fn send(&self, message: &Tensor, trigger: &Tensor) -> Result<Tensor> {
        let context = current_synthesizer_context().map(|c| c.detach());
        let synthetic = self
            .synthesizer
            .synthesize(&trigger.detach(), context.as_ref())?;
        check_message("dni::send", &synthetic, message, "message")?;
        let loss = mse_loss(&synthetic, &message.detach(), Reduction::Mean)?;
        let value = loss.detach();
        if loss.requires_grad() {
            backward(&loss, None)?;
        }
        Ok(value)
    }
}

/// Synthesizes activations in the forward pass (a forward unlock): in training mode
/// `forward(message, trigger)` sends then receives; in eval mode it returns `message`.
/// No gradient flows through it; pair it with a backward interface for a full unlock.
#[derive(Debug, Clone)]
pub struct ForwardInterface<S: Synthesizer = BasicSynthesizer> {
    inner: UnidirectionalInterface<S>,
}

/// Synthesizes gradients in the backward pass (an update unlock).
#[derive(Debug, Clone)]
pub struct BackwardInterface<S: Synthesizer = BasicSynthesizer> {
    inner: UnidirectionalInterface<S>,
}

macro_rules! delegate_unidirectional {
    ($t:ident) => {
        impl<S: Synthesizer> $t<S> {
            /// An interface around `synthesizer`, in training mode.
            pub fn new(synthesizer: S) -> Self {
                $t {
                    inner: UnidirectionalInterface::new(synthesizer),
                }
            }
            /// The underlying unidirectional interface.
            pub fn interface(&self) -> &UnidirectionalInterface<S> {
                &self.inner
            }
            /// The synthesizer.
            pub fn synthesizer(&self) -> &S {
                self.inner.synthesizer()
            }
            /// The synthesizer, mutably.
            pub fn synthesizer_mut(&mut self) -> &mut S {
                self.inner.synthesizer_mut()
            }
            /// The synthesizer's parameters.
            pub fn parameters(&self) -> Vec<Tensor> {
                self.inner.parameters()
            }
            /// Switches training mode on or off.
            pub fn train(&mut self, on: bool) {
                self.inner.train(on)
            }
            /// Same as `train(false)`.
            pub fn eval(&mut self) {
                self.inner.eval()
            }
            /// Whether the interface is in training mode.
            pub fn is_training(&self) -> bool {
                self.inner.is_training()
            }
            /// [`UnidirectionalInterface::receive`].
            pub fn receive(&self, trigger: &Tensor) -> Result<Tensor> {
                self.inner.receive(trigger)
            }
            /// [`UnidirectionalInterface::send`].
            pub fn send(&self, message: &Tensor, trigger: &Tensor) -> Result<Tensor> {
                self.inner.send(message, trigger)
            }
        }
    };
}
delegate_unidirectional!(ForwardInterface);
delegate_unidirectional!(BackwardInterface);

impl<S: Synthesizer> ForwardInterface<S> {
    /// Training mode: trains the synthesizer towards `message` (see
    /// [`UnidirectionalInterface::send`]) and returns the synthesized message for `trigger`
    /// (detached). Eval mode: returns `message`.
    pub fn forward(&self, message: &Tensor, trigger: &Tensor) -> Result<Tensor> {
        if !self.is_training() {
            return Ok(message.clone());
        }
        self.send(message, trigger)?;
        self.receive(trigger)
    }
}

impl<S: Synthesizer> BackwardInterface<S> {
    /// Training mode: backpropagates the synthetic gradient from `trigger`, then returns
    /// [`BackwardInterface::make_trigger`] of `trigger.detach()`: a copy of the trigger, cut
    /// from the graph below, whose true gradient trains the synthesizer. Eval mode: returns
    /// `trigger`.
    pub fn forward(&self, trigger: &Tensor) -> Result<Tensor> {
        if !self.is_training() {
            return Ok(trigger.clone());
        }
        self.backward(trigger, 1.0)?;
        self.make_trigger(&trigger.detach())
    }

    /// Training mode: backpropagates the detached synthetic gradient `synth(trigger)·factor`
    /// from `trigger` (through [`backward`], so deferred inside
    /// [`defer_backward`](super::defer_backward)). Eval mode: does nothing.
    pub fn backward(&self, trigger: &Tensor, factor: f64) -> Result<()> {
        const OP: &str = "BackwardInterface::backward";
        if !self.is_training() {
            return Ok(());
        }
        if !trigger.requires_grad() {
            return Err(Error::arg(
                OP,
                "trigger",
                format!(
                    "(shape {:?}) does not require grad, so no gradient can flow from it",
                    trigger.dims()
                ),
            ));
        }
        let sg = self.receive(trigger)?;
        check_message(OP, &sg, trigger, "trigger")?;
        let sg = if factor == 1.0 {
            sg
        } else {
            sg.mul_scalar(factor)?
        };
        backward(trigger, Some(&sg))
    }

    /// Training mode: a copy of `trigger` carrying a [`SyntheticGradientUpdater`] node, whose
    /// backward passes the true gradient on and trains the synthesizer's estimate
    /// `synth(trigger)` towards it. Eval mode: returns `trigger`.
    pub fn make_trigger(&self, trigger: &Tensor) -> Result<Tensor> {
        if !self.is_training() {
            return Ok(trigger.clone());
        }
        let sg = self.inner.synthesize(trigger)?;
        check_message("BackwardInterface::make_trigger", &sg, trigger, "trigger")?;
        synthetic_gradient_update(trigger, &sg)
    }
}

impl<S: Synthesizer> Module for BackwardInterface<S> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        BackwardInterface::forward(self, x)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        crate::nn::prefixed("synthesizer", self.synthesizer().named_parameters())
    }
    fn train(&mut self, on: bool) {
        BackwardInterface::train(self, on)
    }
    fn is_training(&self) -> bool {
        BackwardInterface::is_training(self)
    }
}

/// Synthesizes activations and the gradients with respect to them (a full unlock).
#[derive(Debug, Clone)]
pub struct BidirectionalInterface<F: Synthesizer = BasicSynthesizer, B: Synthesizer = F> {
    forward_interface: ForwardInterface<F>,
    backward_interface: BackwardInterface<B>,
}

impl<F: Synthesizer, B: Synthesizer> BidirectionalInterface<F, B> {
    /// An interface synthesizing messages with `forward_synthesizer` and their gradients
    /// with `backward_synthesizer`, in training mode.
    pub fn new(forward_synthesizer: F, backward_synthesizer: B) -> Self {
        BidirectionalInterface {
            forward_interface: ForwardInterface::new(forward_synthesizer),
            backward_interface: BackwardInterface::new(backward_synthesizer),
        }
    }
    /// The forward half.
    pub fn forward_interface(&self) -> &ForwardInterface<F> {
        &self.forward_interface
    }
    /// The backward half.
    pub fn backward_interface(&self) -> &BackwardInterface<B> {
        &self.backward_interface
    }
    /// Both synthesizers' parameters (forward's first).
    pub fn parameters(&self) -> Vec<Tensor> {
        let mut v = self.forward_interface.parameters();
        v.extend(self.backward_interface.parameters());
        v
    }
    /// Switches training mode on or off (both halves).
    pub fn train(&mut self, on: bool) {
        self.forward_interface.train(on);
        self.backward_interface.train(on);
    }
    /// Same as `train(false)`.
    pub fn eval(&mut self) {
        self.train(false)
    }
    /// Whether the interface is in training mode.
    pub fn is_training(&self) -> bool {
        self.forward_interface.is_training()
    }
    /// Training mode: `send` then `receive`. Eval mode: returns `message`.
    pub fn forward(&self, message: &Tensor, trigger: &Tensor) -> Result<Tensor> {
        if !self.is_training() {
            return Ok(message.clone());
        }
        self.send(message, trigger)?;
        self.receive(trigger)
    }
    /// Trains the forward synthesizer towards `message` (returning its loss, detached) and
    /// backpropagates the synthetic gradient from `message` (when in training mode).
    pub fn send(&self, message: &Tensor, trigger: &Tensor) -> Result<Tensor> {
        let loss = self.forward_interface.send(message, trigger)?;
        self.backward_interface.backward(message, 1.0)?;
        Ok(loss)
    }
    /// The synthesized message for `trigger` with a synthetic-gradient updater attached
    /// ([`BackwardInterface::make_trigger`] of [`UnidirectionalInterface::receive`]).
    pub fn receive(&self, trigger: &Tensor) -> Result<Tensor> {
        let message = self.forward_interface.receive(trigger)?;
        self.backward_interface.make_trigger(&message)
    }
}
