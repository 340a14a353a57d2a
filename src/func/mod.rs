//! Functional transforms over tensor functions: gradient checking (and, later, vjp, jvp,
//! jacobian, hessian).

mod gradcheck;

pub use gradcheck::{gradcheck, gradgradcheck, GradcheckOptions, GradcheckReport};
