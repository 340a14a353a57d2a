//! Differentiable ops. Each op's forward and its derivative rule live side by side; rules are
//! written with public tensor ops so that `create_graph` makes them differentiable again.

pub mod binary;
pub mod conv;
pub mod index;
pub mod reduce;
pub mod shape;
pub mod unary;

use crate::autograd::is_grad_enabled;
use crate::tensor::Tensor;

/// Applies a generic unary closure to a tensor of either dtype for op `$op` (an error when
/// the output cannot be allocated).
macro_rules! map1 {
    ($op:expr, $x:expr, |$v:ident| $body:expr) => {
        $crate::with_dtype!($x.dtype(), T => {
            #[allow(unused_imports)]
            use $crate::dtype::Float as _;
            $crate::kernels::elementwise::map_unary::<T>($op, $x, |$v: T| $body)
        })
    };
}
pub(crate) use map1;

/// A saved output for a backward rule: the detached copy normally, or a recomputation
/// (which carries history) when the rule itself is being recorded (`create_graph`).
pub(crate) fn saved_output(
    detached: &Tensor,
    recompute: impl FnOnce() -> crate::Result<Tensor>,
) -> crate::Result<Tensor> {
    if is_grad_enabled() {
        recompute()
    } else {
        Ok(detached.clone())
    }
}
