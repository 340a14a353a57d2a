//! The native half of `eingrad.io`: safetensors, NumPy `.npy` and `.npz` files, read and
//! written by the Rust library (atomic writes; malformed files are a `ValueError` naming the
//! file and the tensor at fault, unreadable ones an `OSError`). The GIL is released while a
//! file is read or written.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::errors::IntoPy;
use crate::tensor::PyTensor;
use eingrad::Tensor;
use pyo3::prelude::*;

/// `(name, tensor)` pairs as Rust tensors.
fn named(tensors: Vec<(String, PyRef<'_, PyTensor>)>) -> Vec<(String, Tensor)> {
    tensors.into_iter().map(|(n, t)| (n, t.tensor())).collect()
}

/// `(name, tensor)` pairs as Python tensors.
fn wrapped(tensors: Vec<(String, Tensor)>) -> Vec<(String, PyTensor)> {
    tensors
        .into_iter()
        .map(|(n, t)| (n, PyTensor::new(t)))
        .collect()
}

/// The tensors (in file order) and the metadata of a safetensors file.
type SafeTensorsContents = (Vec<(String, PyTensor)>, BTreeMap<String, String>);

/// Writes `(name, tensor)` pairs and string metadata to a safetensors file.
#[pyfunction]
fn _io_save_safetensors(
    py: Python<'_>,
    tensors: Vec<(String, PyRef<'_, PyTensor>)>,
    path: PathBuf,
    metadata: BTreeMap<String, String>,
) -> PyResult<()> {
    let tensors = named(tensors);
    py.detach(|| eingrad::io::save_safetensors(&path, &tensors, &metadata))
        .py_err()
}

/// Reads a safetensors file: the `(name, tensor)` pairs in file order and the metadata.
#[pyfunction]
fn _io_load_safetensors(py: Python<'_>, path: PathBuf) -> PyResult<SafeTensorsContents> {
    let file = py
        .detach(|| eingrad::io::load_safetensors(&path))
        .py_err()?;
    Ok((wrapped(file.tensors), file.metadata))
}

/// Writes one tensor to a `.npy` file.
#[pyfunction]
fn _io_save_npy(py: Python<'_>, path: PathBuf, tensor: &PyTensor) -> PyResult<()> {
    let t = tensor.tensor();
    py.detach(|| eingrad::io::save_npy(&path, &t)).py_err()
}

/// Reads a `.npy` file (float32 or float64).
#[pyfunction]
fn _io_load_npy(py: Python<'_>, path: PathBuf) -> PyResult<PyTensor> {
    let t = py.detach(|| eingrad::io::load_npy(&path)).py_err()?;
    Ok(PyTensor::new(t))
}

/// Writes `(name, tensor)` pairs to a `.npz` archive (uncompressed, as `numpy.savez`).
#[pyfunction]
fn _io_save_npz(
    py: Python<'_>,
    path: PathBuf,
    tensors: Vec<(String, PyRef<'_, PyTensor>)>,
) -> PyResult<()> {
    let tensors = named(tensors);
    py.detach(|| eingrad::io::save_npz(&path, &tensors))
        .py_err()
}

/// Reads a `.npz` archive: its `(name, tensor)` pairs in archive order.
#[pyfunction]
fn _io_load_npz(py: Python<'_>, path: PathBuf) -> PyResult<Vec<(String, PyTensor)>> {
    let arrays = py.detach(|| eingrad::io::load_npz(&path)).py_err()?;
    Ok(wrapped(arrays))
}

/// Registers the `_io_*` functions.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    for f in [
        wrap_pyfunction!(_io_save_safetensors, m)?,
        wrap_pyfunction!(_io_load_safetensors, m)?,
        wrap_pyfunction!(_io_save_npy, m)?,
        wrap_pyfunction!(_io_load_npy, m)?,
        wrap_pyfunction!(_io_save_npz, m)?,
        wrap_pyfunction!(_io_load_npz, m)?,
    ] {
        m.add_function(f)?;
    }
    Ok(())
}
