//! einsum: parse → plan → execute on strided views and batched GEMM.
//!
//! The notation is NumPy's and PyTorch's, generalised so that it is closed under the adjoint:
//! an output label may repeat (`"i->ii"` embeds on the diagonal) and may appear in no input
//! (a broadcast whose size is given with [`einsum_with_sizes`]).
//!
//! Multi-operand einsums run as a sequence of recorded pairwise contractions, so the
//! gradients of all operands reuse the forward intermediates.

mod contract;
mod exec;
pub mod parse;
pub mod plan;
mod vjp;

pub use exec::{einsum, einsum_with_sizes, EinsumExpr};
pub use plan::{ContractionPath, EinsumPlan, PlanStrategy};
pub use vjp::einsum_vjp_pattern;
