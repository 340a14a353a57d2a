//! Decoupled Neural Interfaces (Jaderberg et al., 2017; SEEDS.md §3, seed `001_…`).
//!
//! A *synthesizer* predicts a message from a *trigger*: an activation in the forward direction
//! (a forward unlock) or the gradient of the loss with respect to an activation in the backward
//! direction (an update unlock). The pieces:
//!
//! - [`BasicSynthesizer`]: a small ReLU MLP whose last layer's weight starts at zero, so that
//!   its first predictions are its bias; optionally conditioned on a context (cDNI).
//! - [`UnidirectionalInterface`] (`receive` / `send`), [`ForwardInterface`],
//!   [`BackwardInterface`] and [`BidirectionalInterface`], each with a train/eval mode.
//! - [`SyntheticGradientUpdater`]: the custom autograd function behind
//!   [`BackwardInterface::make_trigger`]. Forward copies the trigger; backward hands the true
//!   gradient `g` to the trigger unchanged and `(2/B)(sg − g)` to the synthetic gradient `sg`,
//!   which is the gradient of `Σ(sg − g)²/B`, so the synthesizer learns to predict `g`.
//! - [`backward`] with [`defer_backward`] / [`DeferBackwardGuard`]: inside a deferred scope the
//!   backward passes are queued and run as one combined [`backward_many`] at the scope's normal
//!   end, so real and synthetic gradients can flow through the same nodes once.
//! - [`with_synthesizer_context`]: a nestable stack whose top is given to every synthesizer.
//!
//! The deferred scope and the context stack are per thread.
//!
//! ```
//! use eingrad::models::dni::{defer_backward, backward, BackwardInterface, BasicSynthesizer,
//!     BasicSynthesizerConfig, Synthesizer};
//! use eingrad::nn::{cross_entropy, Linear, Module, Reduction};
//! use eingrad::{DType, Tensor};
//!
//! let l1 = Linear::new(4, 8, true, DType::F64, 0).unwrap();
//! let l2 = Linear::new(8, 3, true, DType::F64, 1).unwrap();
//! let synth = BasicSynthesizer::new(BasicSynthesizerConfig::new(8), DType::F64, 2).unwrap();
//! let iface = BackwardInterface::new(synth);
//! let x = Tensor::randn(&[5, 4], DType::F64, 3).unwrap();
//! defer_backward(|| {
//!     let h = iface.forward(&l1.forward(&x)?)?; // synthetic gradient into l1
//!     let loss = cross_entropy(&l2.forward(&h.relu()?)?, &[0, 1, 2, 0, 1], Reduction::Mean)?;
//!     backward(&loss, None) // true gradient into l2 and the synthesizer
//! })
//! .unwrap();
//! assert!(l1.weight().grad().is_some() && l2.weight().grad().is_some());
//! assert!(iface.synthesizer().parameters().iter().all(|p| p.grad().is_some()));
//! ```

mod interface;
mod synthesizer;

pub use interface::{
    synthetic_gradient_update, BackwardInterface, BidirectionalInterface, ForwardInterface,
    SyntheticGradientUpdater, UnidirectionalInterface,
};
pub use synthesizer::{BasicSynthesizer, BasicSynthesizerConfig, Synthesizer};

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::autograd::{backward_many, GradOptions};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

// ---------------------------------------------------------------------------------------------
// Thread-local state: the deferred-backward queue and the synthesizer context stack.

thread_local! {
    /// `Some(queue)` inside a deferred-backward scope.
    static DEFERRED: RefCell<Option<Vec<(Tensor, Tensor)>>> = const { RefCell::new(None) };
    static CONTEXT_STACK: RefCell<Vec<Tensor>> = const { RefCell::new(Vec::new()) };
}

/// Leaves the deferred scope, returning what was queued.
fn take_deferred() -> Vec<(Tensor, Tensor)> {
    DEFERRED
        .try_with(|d| d.borrow_mut().take())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// True inside a [`defer_backward`] scope on this thread.
pub fn is_backward_deferred() -> bool {
    DEFERRED.with(|d| d.borrow().is_some())
}

/// How many backward calls the current deferred scope has queued (0 outside one).
pub fn deferred_backward_count() -> usize {
    DEFERRED.with(|d| d.borrow().as_ref().map_or(0, |q| q.len()))
}

/// Backpropagates `gradient` (ones when `None`) from `variable` into the leaves' `.grad()`,
/// or, inside a [`defer_backward`] scope, queues the pair for the scope's combined backward.
/// The arguments are checked at once in both cases.
///
/// ```
/// use eingrad::models::dni::backward;
/// use eingrad::{DType, Tensor};
/// let x = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
/// backward(&x.mul_scalar(3.0).unwrap(), None).unwrap();
/// assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), vec![3.0, 3.0]);
/// let e = backward(&Tensor::ones(&[2], DType::F64).unwrap(), None).unwrap_err().to_string();
/// assert!(e.contains("`variable`"), "{e}");
/// ```
pub fn backward(variable: &Tensor, gradient: Option<&Tensor>) -> Result<()> {
    const OP: &str = "dni::backward";
    if !variable.requires_grad() {
        return Err(Error::arg(
            OP,
            "variable",
            format!(
                "(shape {:?}) does not require grad and has no history",
                variable.dims()
            ),
        ));
    }
    let g = match gradient {
        Some(g) => {
            if g.dims() != variable.dims() {
                return Err(Error::ShapeMismatch {
                    op: OP,
                    lhs: variable.dims().to_vec(),
                    rhs: g.dims().to_vec(),
                    detail: " (`gradient` must have the shape of `variable`)".into(),
                });
            }
            if g.dtype() != variable.dtype() {
                return Err(Error::DTypeMismatch {
                    op: OP,
                    lhs: variable.dtype(),
                    rhs: g.dtype(),
                });
            }
            g.clone()
        }
        None => variable.ones_like()?,
    };
    let queued = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
        Some(q) => {
            q.push((variable.clone(), g.clone()));
            true
        }
        None => false,
    });
    if queued {
        return Ok(());
    }
    variable.backward_with(&g, GradOptions::default())
}

/// A deferred-backward scope held by a value: created by [`DeferBackwardGuard::new`] (an error
/// if a scope is already open on this thread), ended by [`DeferBackwardGuard::finish`], which
/// runs one combined backward over everything [`backward`] queued. Dropping the guard without
/// `finish` (an early `?` return, a panic) discards the queue. Either way the thread leaves the
/// deferred state.
///
/// ```
/// use eingrad::models::dni::{backward, is_backward_deferred, DeferBackwardGuard};
/// use eingrad::{DType, Tensor};
/// let x = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
/// let guard = DeferBackwardGuard::new().unwrap();
/// assert!(DeferBackwardGuard::new().is_err()); // no nesting
/// backward(&x.mul_scalar(2.0).unwrap(), None).unwrap();
/// assert!(x.grad().is_none()); // queued
/// guard.finish().unwrap();
/// assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), vec![2.0, 2.0]);
/// assert!(!is_backward_deferred());
/// ```
pub struct DeferBackwardGuard {
    // The state is thread-local: the guard must be dropped on the thread that made it.
    _not_send: PhantomData<*const ()>,
}

impl DeferBackwardGuard {
    /// Opens a deferred-backward scope on this thread.
    pub fn new() -> Result<DeferBackwardGuard> {
        DEFERRED.with(|d| {
            let mut d = d.borrow_mut();
            if d.is_some() {
                return Err(Error::arg(
                    "dni::defer_backward",
                    "scope",
                    "cannot nest defer_backward: a deferred-backward scope is already open on \
                     this thread",
                ));
            }
            *d = Some(Vec::new());
            Ok(())
        })?;
        Ok(DeferBackwardGuard {
            _not_send: PhantomData,
        })
    }

    /// How many backward calls are queued so far.
    pub fn len(&self) -> usize {
        deferred_backward_count()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes the scope and runs one [`backward_many`] over all queued pairs (nothing when
    /// none were queued). The state is reset before the backward runs.
    pub fn finish(self) -> Result<()> {
        let pairs = take_deferred();
        drop(self);
        if pairs.is_empty() {
            return Ok(());
        }
        let (vars, grads): (Vec<Tensor>, Vec<Tensor>) = pairs.into_iter().unzip();
        backward_many(&vars, &grads, GradOptions::default())
    }
}

impl Drop for DeferBackwardGuard {
    fn drop(&mut self) {
        take_deferred();
    }
}

/// Runs `f` with backward deferred: every [`backward`] call inside is queued, and when `f`
/// returns `Ok` one combined backward over all queued pairs runs (its error, if any, is
/// returned). When `f` returns `Err` or panics nothing is run. Scopes cannot nest (an error);
/// the thread leaves the deferred state in every case.
///
/// ```
/// use eingrad::models::dni::{backward, defer_backward};
/// use eingrad::{DType, Tensor};
/// let x = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
/// let y = x.exp().unwrap();
/// // two backward passes through the same `exp` node, run as one
/// defer_backward(|| {
///     backward(&y, None)?;
///     backward(&y.mul_scalar(2.0)?, None)
/// })
/// .unwrap();
/// let e = std::f64::consts::E;
/// assert!((x.grad().unwrap().to_vec::<f64>().unwrap()[0] - 3.0 * e).abs() < 1e-12);
/// assert!(defer_backward(|| defer_backward(|| Ok(()))).is_err());
/// ```
pub fn defer_backward<R>(f: impl FnOnce() -> Result<R>) -> Result<R> {
    let guard = DeferBackwardGuard::new()?;
    let r = f()?;
    guard.finish()?;
    Ok(r)
}

/// Runs `f` with `context` on top of the synthesizer context stack: every synthesizer call made
/// through an interface inside receives it.
/// Scopes nest; the context is popped when `f` returns or panics.
///
/// ```
/// use eingrad::models::dni::{current_synthesizer_context, with_synthesizer_context};
/// use eingrad::{DType, Tensor};
/// let a = Tensor::ones(&[1], DType::F32).unwrap();
/// let b = Tensor::zeros(&[1], DType::F32).unwrap();
/// with_synthesizer_context(&a, || {
///     let top = with_synthesizer_context(&b, || current_synthesizer_context().unwrap());
///     assert_eq!(top.id(), b.id());
///     assert_eq!(current_synthesizer_context().unwrap().id(), a.id());
/// });
/// assert!(current_synthesizer_context().is_none());
/// ```
pub fn with_synthesizer_context<R>(context: &Tensor, f: impl FnOnce() -> R) -> R {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            let _ = CONTEXT_STACK.try_with(|s| s.borrow_mut().pop());
        }
    }
    CONTEXT_STACK.with(|s| s.borrow_mut().push(context.clone()));
    let _pop = Pop;
    f()
}

/// The context on top of this thread's synthesizer context stack, if any.
pub fn current_synthesizer_context() -> Option<Tensor> {
    CONTEXT_STACK.with(|s| s.borrow().last().cloned())
}

/// The depth of this thread's synthesizer context stack.
pub fn synthesizer_context_depth() -> usize {
    CONTEXT_STACK.with(|s| s.borrow().len())
}
