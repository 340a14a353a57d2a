//! # eingrad
//!
//! Tensors with reverse- and forward-mode automatic differentiation to any order, built around
//! one multilinear primitive: `einsum`.
//!
//! ```
//! use eingrad::{Tensor, DType, autograd::{grad, GradOptions}};
//! let x = Tensor::randn(&[2, 3], DType::F64, 0).unwrap().requires_grad_(true);
//! let w = Tensor::randn(&[3, 4], DType::F64, 1).unwrap();
//! let y = eingrad::einsum("ij,jk->ik", &[&x, &w]).unwrap().tanh().unwrap().sum_all().unwrap();
//! let g = grad(&[y], &[x.clone()], None, GradOptions::default()).unwrap();
//! assert_eq!(g[0].as_ref().unwrap().dims(), &[2, 3]);
//! ```

pub mod autograd;
pub mod dtype;
pub mod einsum;
pub mod error;
pub mod func;
pub mod io;
pub mod kernels;
pub mod layout;
pub mod models;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod storage;
pub mod tensor;

pub use dtype::{DType, Float};
pub use einsum::{einsum, einsum_with_sizes};
pub use error::{Error, Result};
pub use layout::Layout;
#[doc(hidden)]
pub use num_traits as __num_traits;
pub use ops::conv::{Conv1dOptions, Padding};
pub use ops::reduce::Indices;
pub use tensor::{Tensor, TensorId, WeakTensor};
