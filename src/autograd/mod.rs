//! Define-by-run reverse-mode autograd: graph nodes, grad mode, and the backward engine.
//!
//! Every op records a [`Node`] holding its inputs and a backward rule written in public
//! tensor ops, so that with `create_graph` the gradients are themselves differentiable.

mod engine;
mod forward;
mod function;
mod mode;
mod node;
mod rule;
mod slice;
mod tensor_api;

pub(crate) use engine::grad_batched;
pub use engine::{backward_many, grad, GradOptions};
pub(crate) use forward::push_tangents;
#[doc(hidden)]
pub use forward::take_jvp_fallbacks;
pub use function::{apply_function, apply_function1, function_jvp, CustomFunction, FunctionCtx};
pub use mode::{
    is_anomaly_enabled, is_grad_enabled, no_grad, set_anomaly_enabled, AnomalyGuard,
    EnableGradGuard, NoGradGuard,
};
pub(crate) use node::{record, record1};
pub use node::{GradFn, Hook, HookHandle, Node};
pub(crate) use rule::{sum_to, Rule};
