//! Compute kernels over strided storage. Generic over [`crate::Float`]; no autograd here.

pub mod elementwise;
pub mod gemm;
pub mod reduce;
pub mod strided;

/// Element count above which kernels split work across rayon threads.
pub(crate) const PAR_THRESHOLD: usize = 1 << 15;
