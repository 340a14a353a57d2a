//! The native half of `eingrad.optim`: one Rust optimizer ([`eingrad::optim::Sgd`] or
//! [`eingrad::optim::Adam`]) per parameter group, behind the class `_OptimizerCore`, and
//! gradient clipping. The Python classes `SGD`, `Adam` and `AdamW` keep PyTorch's
//! `param_groups` (a list of dicts) and build one core per group, so every hyperparameter may
//! differ between groups as in PyTorch.
//!
//! A step updates the parameters in place through [`eingrad::Tensor::update_data`]; Python
//! sees the new values because a `Parameter` and the optimizer hold the same Rust tensor.

use crate::convert::short_repr;
use crate::errors::IntoPy;
use crate::tensor::PyTensor;
use eingrad::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use eingrad::Tensor;
use parking_lot::Mutex;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

/// The tensors of a `params` argument (any iterable of tensors).
fn tensors_of(params: &Bound<'_, PyAny>, op: &str) -> PyResult<Vec<Tensor>> {
    let mut out = Vec::new();
    for (i, p) in params.try_iter()?.enumerate() {
        let p = p?;
        let t = p.cast::<PyTensor>().map_err(|_| {
            PyTypeError::new_err(format!(
                "{op}: params[{i}] must be a tensor, got {}",
                short_repr(&p)
            ))
        })?;
        out.push(t.get().tensor());
    }
    Ok(out)
}

/// One Rust optimizer over one parameter group (an internal class of `eingrad.optim`).
#[pyclass(name = "_OptimizerCore", module = "eingrad._eingrad", frozen)]
pub struct PyOptimizerCore {
    inner: Mutex<Box<dyn Optimizer + Send>>,
}

#[pymethods]
impl PyOptimizerCore {
    /// One update of every parameter that has a gradient (the GIL is released).
    fn step(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.lock().step()).py_err()
    }
    /// The current learning rate.
    #[getter]
    fn lr(&self) -> f64 {
        self.inner.lock().lr()
    }
    /// Changes the learning rate (the state is kept).
    fn set_lr(&self, lr: f64) -> PyResult<()> {
        self.inner.lock().set_lr(lr).py_err()
    }
    /// The state as `(name, tensor)` pairs: `lr`, then `state.{i}.{field}` per parameter.
    fn state_tensors(&self) -> Vec<(String, PyTensor)> {
        self.inner
            .lock()
            .state_tensors()
            .into_iter()
            .map(|(n, t)| (n, PyTensor::new(t)))
            .collect()
    }
    /// Restores a state that `state_tensors` returned (nothing changes on an error).
    fn load_state_tensors(&self, state: Vec<(String, PyRef<'_, PyTensor>)>) -> PyResult<()> {
        let state: Vec<(String, Tensor)> =
            state.into_iter().map(|(n, t)| (n, t.tensor())).collect();
        self.inner.lock().load_state_tensors(&state).py_err()
    }
}

/// `_optim_sgd(params, lr, momentum, dampening, weight_decay, nesterov)`: an SGD core.
#[pyfunction]
fn _optim_sgd(
    params: &Bound<'_, PyAny>,
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    nesterov: bool,
) -> PyResult<PyOptimizerCore> {
    let params = tensors_of(params, "SGD")?;
    let cfg = SgdConfig {
        lr,
        momentum,
        dampening,
        weight_decay,
        nesterov,
    };
    let opt = Sgd::new(params, cfg).py_err()?;
    Ok(PyOptimizerCore {
        inner: Mutex::new(Box::new(opt)),
    })
}

/// `_optim_adam(params, lr, beta1, beta2, eps, weight_decay, decoupled)`: an Adam core (AdamW
/// with `decoupled`).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn _optim_adam(
    params: &Bound<'_, PyAny>,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
) -> PyResult<PyOptimizerCore> {
    let params = tensors_of(params, if decoupled { "AdamW" } else { "Adam" })?;
    let cfg = AdamConfig {
        lr,
        betas: (beta1, beta2),
        eps,
        weight_decay,
        decoupled_weight_decay: decoupled,
    };
    let opt = Adam::new(params, cfg).py_err()?;
    Ok(PyOptimizerCore {
        inner: Mutex::new(Box::new(opt)),
    })
}

/// `clip_grad_norm_(parameters, max_norm)`: scales the gradients in place so their joint
/// 2-norm is at most `max_norm`; returns the norm before clipping.
#[pyfunction]
fn _optim_clip_grad_norm(
    py: Python<'_>,
    parameters: &Bound<'_, PyAny>,
    max_norm: f64,
) -> PyResult<f64> {
    let params = tensors_of(parameters, "clip_grad_norm_")?;
    py.detach(|| eingrad::optim::clip_grad_norm(&params, max_norm))
        .py_err()
}

/// Registers `_OptimizerCore` and the `_optim_*` functions.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyOptimizerCore>()?;
    m.add_function(wrap_pyfunction!(_optim_sgd, m)?)?;
    m.add_function(wrap_pyfunction!(_optim_adam, m)?)?;
    m.add_function(wrap_pyfunction!(_optim_clip_grad_norm, m)?)?;
    Ok(())
}
