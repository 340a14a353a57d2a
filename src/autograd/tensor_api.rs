//! The autograd surface of [`Tensor`]: requires_grad, detach, grad, hooks, backward.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::node::next_hook_id;
use super::{backward_many, GradOptions};
use crate::error::{AutogradError, Result, TensorMeta};
use crate::tensor::{GradFn, Hook, HookHandle, Tensor, TensorInner};

impl Tensor {
    /// Marks a leaf as requiring grad (returns the same tensor for chaining).
    ///
    /// ```
    /// let x = eingrad::Tensor::ones(&[2], eingrad::DType::F64).unwrap().requires_grad_(true);
    /// assert!(x.requires_grad() && x.is_leaf());
    /// ```
    pub fn requires_grad_(self, on: bool) -> Tensor {
        self.0.requires_grad.store(on, Ordering::Relaxed);
        self
    }
    /// True for leaves marked with `requires_grad_` and for every tensor with history.
    pub fn requires_grad(&self) -> bool {
        self.0.grad_fn.is_some() || self.0.requires_grad.load(Ordering::Relaxed)
    }
    /// True when the tensor has no recorded history.
    pub fn is_leaf(&self) -> bool {
        self.0.grad_fn.is_none()
    }
    /// The node that produced this tensor, if any.
    pub fn grad_fn(&self) -> Option<&GradFn> {
        self.0.grad_fn.as_ref()
    }
    /// Same values and storage, no history, does not require grad.
    ///
    /// ```
    /// let x = eingrad::Tensor::ones(&[2], eingrad::DType::F64).unwrap().requires_grad_(true);
    /// assert!(!x.exp().unwrap().detach().requires_grad());
    /// ```
    pub fn detach(&self) -> Tensor {
        self.with_layout(self.layout().clone())
    }
    /// A handle to the same tensor data carrying `grad_fn` (used when recording ops).
    pub(crate) fn with_grad_fn(mut self, gf: GradFn) -> Tensor {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.grad_fn = Some(gf);
            return self;
        }
        let inner = match Arc::try_unwrap(self.0) {
            Ok(inner) => inner,
            Err(shared) => {
                let t = Tensor(shared);
                let fresh = t.with_layout(t.layout().clone());
                Arc::try_unwrap(fresh.0).unwrap_or_else(|_| unreachable!("fresh handle"))
            }
        };
        Tensor(Arc::new(TensorInner {
            grad_fn: Some(gf),
            ..inner
        }))
    }
    /// The accumulated gradient (leaves, and non-leaves after [`Tensor::retain_grad`]).
    pub fn grad(&self) -> Option<Tensor> {
        self.0.grad.lock().clone()
    }
    /// Clears the accumulated gradient.
    pub fn zero_grad(&self) {
        // (the old gradient, and any graph it carries, is dropped after the lock is released)
        let old = self.0.grad.lock().take();
        drop(old);
    }
    /// Replaces the accumulated gradient.
    pub fn set_grad(&self, g: Option<Tensor>) -> Result<()> {
        if let Some(g) = &g {
            if g.dims() != self.dims() || g.dtype() != self.dtype() {
                return Err(AutogradError::SetGradMismatch {
                    got: TensorMeta::new(g.dims(), g.dtype()),
                    want: TensorMeta::new(self.dims(), self.dtype()),
                }
                .into());
            }
        }
        let old = std::mem::replace(&mut *self.0.grad.lock(), g);
        drop(old);
        Ok(())
    }
    /// Keeps this non-leaf's gradient in `.grad()` after backward.
    ///
    /// Under `create_graph` the kept gradient carries its graph, which usually holds this
    /// very tensor (the rule of an op that consumed it saved it): a reference cycle that keeps
    /// the tensor and the graph behind it alive. Clear it with [`Tensor::zero_grad`] once
    /// used (tests/memory.rs shows it).
    ///
    /// ```
    /// use eingrad::{Tensor, DType};
    /// let x = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    /// let h = x.mul_scalar(3.0).unwrap();
    /// h.retain_grad();
    /// h.sum_all().unwrap().backward().unwrap();
    /// assert_eq!(h.grad().unwrap().to_vec::<f64>().unwrap(), vec![1.0, 1.0]);
    /// ```
    pub fn retain_grad(&self) {
        self.0.retains_grad.store(true, Ordering::Relaxed);
    }
    /// Registers a hook that sees this tensor's gradient during backward and may replace it
    /// (return `Some(new)`).
    ///
    /// Hooks run with no lock held, in the pass's grad mode (off unless `create_graph`: a hook
    /// that differentiates something itself enables it with
    /// [`EnableGradGuard`](crate::autograd::EnableGradGuard)); they may call
    /// [`grad`](crate::autograd::grad) again, up to 64 passes deep, after which the pass fails
    /// with [`AutogradError::ReentrantDepth`] (a hook calling `grad` on its own tensor would
    /// re-enter without end).
    ///
    /// The tensor owns its hooks: a hook that captures a [`Tensor`] handle of this very tensor
    /// is a reference cycle that keeps the tensor (and the graph behind it) alive until the
    /// hook is removed. Capture [`Tensor::downgrade`] instead.
    ///
    /// ```
    /// use eingrad::{Tensor, DType};
    /// let x = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    /// let h = x.register_hook(|g| Ok(Some(g.mul_scalar(10.0)?)));
    /// x.sum_all().unwrap().backward().unwrap();
    /// assert_eq!(x.grad().unwrap().to_vec::<f64>().unwrap(), vec![10.0, 10.0]);
    /// h.remove();
    /// ```
    pub fn register_hook(
        &self,
        hook: impl Fn(&Tensor) -> Result<Option<Tensor>> + Send + Sync + 'static,
    ) -> HookHandle {
        let id = next_hook_id();
        let hook: Hook = Arc::new(hook);
        self.0.hooks.lock().push((id, hook));
        HookHandle {
            tensor: Arc::downgrade(&self.0),
            id,
        }
    }
    /// Backpropagates from a one-element tensor into the leaves' `.grad()`.
    pub fn backward(&self) -> Result<()> {
        if self.numel() != 1 {
            return Err(AutogradError::ImplicitGradOutput {
                op: "backward",
                output: 0,
                shape: self.dims().to_vec(),
            }
            .into());
        }
        backward_many(
            std::slice::from_ref(self),
            &[Tensor::ones(self.dims(), self.dtype())?],
            GradOptions::default(),
        )
    }
    /// Backpropagates with an explicit upstream gradient (PyTorch's `backward(gradient)`).
    pub fn backward_with(&self, grad: &Tensor, opts: GradOptions) -> Result<()> {
        backward_many(std::slice::from_ref(self), std::slice::from_ref(grad), opts)
    }
}
