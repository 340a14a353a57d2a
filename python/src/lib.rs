//! The Python extension module `eingrad._eingrad`: eingrad's tensors, autograd, transforms,
//! layers, optimisers and file formats for Python. The pure-Python package `eingrad` (in
//! `python/eingrad/`) re-exports these under PyTorch's names and adds what is most natural in
//! Python (context managers, the `Function` and `Module` base classes).
//!
//! Each file registers its own classes and functions; methods of `Tensor` are spread over
//! several files (PyO3's `multiple-pymethods`), grouped by concern.

use pyo3::prelude::*;

mod autograd;
mod convert;
mod errors;
mod func;
mod indexing;
mod io;
mod masks;
mod nn;
mod ops;
mod optim;
mod products;
mod tensor;

pub use tensor::PyTensor;

/// The native half of the `eingrad` Python package.
#[pymodule]
fn _eingrad(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    tensor::register(m)?;
    ops::register(m)?;
    products::register(m)?;
    masks::register(m)?;
    indexing::register(m)?;
    autograd::register(m)?;
    func::register(m)?;
    nn::register(m)?;
    optim::register(m)?;
    io::register(m)?;
    Ok(())
}
