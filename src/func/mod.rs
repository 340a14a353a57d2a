//! Functional transforms over tensor functions: gradient checking (and, later, vjp, jvp,
//! jacobian, hessian).

mod einsum_jacobian;
mod gradcheck;
mod hessian;
mod jacobian;
mod jvp;
mod verify;
mod vjp;

pub use einsum_jacobian::{einsum_jacobian, einsum_jacobian_spec, EinsumJacobianSpec};
pub use gradcheck::{gradcheck, gradgradcheck, GradcheckOptions, GradcheckReport};
pub use hessian::{hessian, hvp, ScalarFn};
pub use jacobian::{jacobian, JacobianMode};
pub use jvp::jvp;
pub use verify::{verify_backward, Discrepancy, VerifyOptions, VerifyReport};
pub use vjp::{vjp, TensorFn};
