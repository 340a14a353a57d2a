//! Functional transforms over tensor functions (`torch.func`, JAX): [`vjp`] and [`jvp`],
//! full Jacobians ([`jacobian`], by rows or by columns, and the closed form
//! [`einsum_jacobian`] of an einsum), [`hessian`] and [`hvp`]; and checks of derivatives:
//! [`gradcheck`] / [`gradgradcheck`] against finite differences, [`verify_backward`] of a
//! hand-written rule against a reference.
//!
//! ```
//! use eingrad::{Tensor, func::{vjp, jvp}};
//! let f = |xs: &[Tensor]| Ok(vec![xs[0].mul(&xs[0])?]); // x²
//! let x = Tensor::from_vec(vec![3.0f64], &[1]).unwrap();
//! let one = Tensor::from_vec(vec![1.0f64], &[1]).unwrap();
//! let (_, back) = vjp(&f, &[x.clone()], &[one.clone()]).unwrap();
//! let (_, fwd) = jvp(&f, &[x], &[one]).unwrap();
//! assert_eq!(back[0].to_vec::<f64>().unwrap(), fwd[0].to_vec::<f64>().unwrap()); // both 6
//! ```

mod einsum_jacobian;
mod gradcheck;
mod hessian;
mod jacobian;
mod jvp;
mod verify;
mod vjp;

pub use einsum_jacobian::{einsum_jacobian, einsum_jacobian_spec, EinsumJacobianSpec};
pub use gradcheck::{gradcheck, gradgradcheck, GradcheckOptions, GradcheckReport, MAX_DIRECTIONS};
pub use hessian::{hessian, hvp, ScalarFn};
pub use jacobian::{jacobian, JacobianMode};
pub use jvp::jvp;
pub use verify::{verify_backward, Discrepancy, VerifyOptions, VerifyReport};
pub use vjp::{vjp, TensorFn};
