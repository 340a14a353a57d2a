//! The native half of `eingrad.func` (`torch.func`'s names): Jacobians by rows or columns,
//! forward-mode `jvp`, Hessians and Hessian–vector products, the closed-form Jacobian of an
//! einsum, and the derivative checks `gradcheck`, `gradgradcheck` and `verify_backward`.
//!
//! The function to transform is any Python callable of tensors. Rust calls it back with
//! `Python::attach` while the transform runs with the GIL released; a Python exception it
//! raises reaches the caller unchanged ([`stash_python_error`]), and a callable that returns
//! something other than a tensor or a tuple of tensors is a `TypeError` naming what it
//! returned.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::autograd::{detached, tensor_arg, tensor_seq};
use crate::convert::{short_repr, PyDType};
use crate::errors::stash_python_error;
use crate::tensor::PyTensor;
use eingrad::func::{
    einsum_jacobian, gradcheck, gradgradcheck, hessian, hvp, jacobian, jvp, verify_backward,
    GradcheckOptions, JacobianMode, VerifyOptions, VerifyReport,
};
use eingrad::Tensor;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

/// A Python callable as a tensor function: the transform's inputs go to the argument
/// positions `slots` of `args` (the other arguments are passed as given).
struct PyCallable {
    /// The transform, for error messages.
    op: &'static str,
    /// The callable.
    func: Py<PyAny>,
    /// All positional arguments, as given.
    args: Vec<Py<PyAny>>,
    /// The positions the transform's inputs take, in order.
    slots: Vec<usize>,
    /// Whether the last call returned a single tensor (not a tuple).
    single: AtomicBool,
}

impl PyCallable {
    /// Checks `func` and the slots (each must hold a tensor).
    fn new(
        op: &'static str,
        func: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        slots: Vec<usize>,
    ) -> PyResult<Self> {
        if !func.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "{op}: func must be callable, got {}",
                short_repr(func)
            )));
        }
        for &s in &slots {
            if s >= args.len() {
                return Err(PyValueError::new_err(format!(
                    "{op}: argnums {s} is out of range for {} positional arguments",
                    args.len()
                )));
            }
        }
        Ok(PyCallable {
            op,
            func: func.clone().unbind(),
            args: args.iter().map(Bound::unbind).collect(),
            slots,
            single: AtomicBool::new(true),
        })
    }

    /// The tensors at the slots (the transform's inputs).
    fn inputs(&self, py: Python<'_>) -> PyResult<Vec<Tensor>> {
        self.slots
            .iter()
            .map(|&s| tensor_arg(self.args[s].bind(py), &format!("{}: argument {s}", self.op)))
            .collect()
    }

    /// Calls the function with `xs` at the slots (from any thread: takes the GIL).
    fn call(&self, xs: &[Tensor]) -> eingrad::Result<Vec<Tensor>> {
        Python::attach(|py| {
            let mut args: Vec<Bound<'_, PyAny>> =
                self.args.iter().map(|a| a.bind(py).clone()).collect();
            for (&s, x) in self.slots.iter().zip(xs) {
                args[s] = Bound::new(py, PyTensor::new(x.clone()))
                    .map_err(stash_python_error)?
                    .into_any();
            }
            let args = PyTuple::new(py, args).map_err(stash_python_error)?;
            let r = self.func.bind(py).call1(args).map_err(stash_python_error)?;
            self.outputs(&r).map_err(stash_python_error)
        })
    }

    /// A tensor, or a non-empty tuple/list of tensors, as a list.
    fn outputs(&self, r: &Bound<'_, PyAny>) -> PyResult<Vec<Tensor>> {
        if let Ok(t) = r.cast::<PyTensor>() {
            self.single.store(true, Ordering::Relaxed);
            return Ok(vec![t.get().tensor()]);
        }
        let bad = || {
            PyTypeError::new_err(format!(
                "{}: the function returned {}; expected a Tensor or a tuple of Tensors",
                self.op,
                short_repr(r)
            ))
        };
        if !(r.is_instance_of::<PyTuple>() || r.is_instance_of::<PyList>()) {
            return Err(bad());
        }
        let items: Vec<Bound<'_, PyAny>> = r.try_iter()?.collect::<PyResult<_>>()?;
        if items.is_empty() {
            return Err(bad());
        }
        self.single.store(false, Ordering::Relaxed);
        items
            .iter()
            .enumerate()
            .map(|(i, o)| tensor_arg(o, &format!("{}: output {i} of the function", self.op)))
            .collect()
    }

    /// One tensor from a scalar function (hessian, hvp).
    fn call_scalar(&self, x: &Tensor) -> eingrad::Result<Tensor> {
        let mut outs = self.call(std::slice::from_ref(x))?;
        if outs.len() != 1 {
            return Err(eingrad::Error::InvalidArgument {
                op: self.op,
                arg: "func",
                msg: format!(
                    "must return a single one-element tensor, it returned {} tensors",
                    outs.len()
                ),
            });
        }
        Ok(outs.remove(0))
    }

    /// Whether the last call returned a single tensor.
    fn single(&self) -> bool {
        self.single.load(Ordering::Relaxed)
    }
}

/// Python tensors of `ts`.
fn wrap_all(ts: Vec<Tensor>) -> Vec<PyTensor> {
    ts.into_iter().map(PyTensor::new).collect()
}

/// The Jacobian blocks of `func(*args)` with respect to the arguments at `argnums`:
/// `blocks[i][j]` = ∂ output i / ∂ input j, of shape `output_i.shape ++ input_j.shape`; and
/// whether the function returned a single tensor. `mode`: `"rev"`, `"fwd"` or `"auto"`;
/// `op` (`"jacrev"`, `"jacfwd"` or `"jacobian"`) is the name errors give.
#[pyfunction]
#[pyo3(signature = (func, args, argnums, mode="rev", op="jacobian"))]
fn _func_jacobian(
    py: Python<'_>,
    func: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
    argnums: Vec<usize>,
    mode: &str,
    op: &str,
) -> PyResult<(Vec<Vec<PyTensor>>, bool)> {
    let op = match op {
        "jacrev" => "jacrev",
        "jacfwd" => "jacfwd",
        _ => "jacobian",
    };
    let mode = match mode {
        "rev" | "reverse" | "reverse-mode" => JacobianMode::Reverse,
        "fwd" | "forward" | "forward-mode" => JacobianMode::Forward,
        "auto" => JacobianMode::Auto,
        other => {
            return Err(PyValueError::new_err(format!(
                "{op}: mode must be \"rev\", \"fwd\" or \"auto\", got {other:?}"
            )))
        }
    };
    let f = PyCallable::new(op, func, args, argnums)?;
    let xs = f.inputs(py)?;
    let blocks = detached(py, op, || jacobian(&|xs: &[Tensor]| f.call(xs), &xs, mode))?;
    Ok((blocks.into_iter().map(wrap_all).collect(), f.single()))
}

/// Forward mode: `(outputs, output tangents, single)` of `func(*args)` with the arguments at
/// `argnums` moved along `tangents`.
#[pyfunction]
fn _func_jvp(
    py: Python<'_>,
    func: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
    argnums: Vec<usize>,
    tangents: &Bound<'_, PyAny>,
) -> PyResult<(Vec<PyTensor>, Vec<PyTensor>, bool)> {
    let f = PyCallable::new("jvp", func, args, argnums)?;
    let xs = f.inputs(py)?;
    let ts = tensor_seq(tangents, "jvp", "tangents")?;
    let (outs, touts) = detached(py, "jvp", || jvp(&|xs: &[Tensor]| f.call(xs), &xs, &ts))?;
    Ok((wrap_all(outs), wrap_all(touts), f.single()))
}

/// The Hessian of the scalar `func(*args)` with respect to the argument at `argnum`.
#[pyfunction]
fn _func_hessian(
    py: Python<'_>,
    func: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
    argnum: usize,
) -> PyResult<PyTensor> {
    let f = PyCallable::new("hessian", func, args, vec![argnum])?;
    let x = f.inputs(py)?.remove(0);
    let h = detached(py, "hessian", || {
        hessian(&|x: &Tensor| f.call_scalar(x), &x)
    })?;
    Ok(PyTensor::new(h))
}

/// `(func(*args), H v)` for the scalar `func` and the argument at `argnum`.
#[pyfunction]
fn _func_hvp(
    py: Python<'_>,
    func: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
    argnum: usize,
    v: &Bound<'_, PyAny>,
) -> PyResult<(PyTensor, PyTensor)> {
    let f = PyCallable::new("hvp", func, args, vec![argnum])?;
    let x = f.inputs(py)?.remove(0);
    let v = tensor_arg(v, "hvp: the tangent")?;
    let (y, hv) = detached(py, "hvp", || hvp(&|x: &Tensor| f.call_scalar(x), &x, &v))?;
    Ok((PyTensor::new(y), PyTensor::new(hv)))
}

/// `einsum_jacobian(pattern, operands, k)`: ∂z/∂operands[k] for `z = einsum(pattern,
/// *operands)` in closed form, with the einsum pattern that computes it.
#[pyfunction]
fn _func_einsum_jacobian(
    py: Python<'_>,
    pattern: &str,
    operands: &Bound<'_, PyAny>,
    k: isize,
) -> PyResult<(PyTensor, String)> {
    let ops = tensor_seq(operands, "einsum_jacobian", "operands")?;
    let n = ops.len() as isize;
    let idx = if k < 0 { k + n } else { k };
    if idx < 0 {
        return Err(pyo3::exceptions::PyIndexError::new_err(format!(
            "einsum_jacobian: k = {k} is out of range for {n} operands"
        )));
    }
    let refs: Vec<&Tensor> = ops.iter().collect();
    let (j, p) = detached(py, "einsum_jacobian", || {
        einsum_jacobian(pattern, &refs, idx as usize)
    })?;
    Ok((PyTensor::new(j), p))
}

/// What `verify_backward` found: `passed`, the tolerances, one entry per comparison in
/// `checks`, and a table when printed.
///
/// ```python
/// >>> x = eingrad.randn(5, dtype=eingrad.float64, seed=0)
/// >>> r = eingrad.func.verify_backward(lambda x: x * x, lambda x: x ** 2, (x,))
/// >>> r.passed
/// True
/// >>> print(r)   # one row per output and per input gradient
/// verify_backward: passed ...
/// ```
#[pyclass(name = "VerifyReport", module = "eingrad.func", frozen)]
pub struct PyVerifyReport {
    report: VerifyReport,
}

#[pymethods]
impl PyVerifyReport {
    /// True when every comparison passed.
    #[getter]
    fn passed(&self) -> bool {
        self.report.passed()
    }

    /// The dtype whose default tolerances apply (float32 if any input is float32).
    #[getter]
    fn dtype(&self) -> PyDType {
        PyDType::new(self.report.dtype)
    }

    /// The absolute tolerance used.
    #[getter]
    fn atol(&self) -> f64 {
        self.report.atol
    }

    /// The relative tolerance used.
    #[getter]
    fn rtol(&self) -> f64 {
        self.report.rtol
    }

    /// How many cotangents were tried (random and one-hot).
    #[getter]
    fn cotangents(&self) -> usize {
        self.report.cotangents
    }

    /// Every comparison (outputs, then input gradients, then finite differences), each a
    /// dict: what, compared, max_abs_err, max_rel_err, worst_index, worst_cotangent,
    /// custom, reference, passed, skipped.
    #[getter]
    fn checks<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.report
            .all()
            .map(|d| {
                let x = PyDict::new(py);
                x.set_item("what", &d.what)?;
                x.set_item("compared", d.compared)?;
                x.set_item("max_abs_err", d.max_abs_err)?;
                x.set_item("max_rel_err", d.max_rel_err)?;
                x.set_item("worst_index", PyTuple::new(py, &d.worst_index)?)?;
                x.set_item("worst_cotangent", d.worst_cotangent.clone())?;
                x.set_item("custom", d.custom)?;
                x.set_item("reference", d.reference)?;
                x.set_item("passed", d.passed)?;
                x.set_item("skipped", d.skipped)?;
                Ok(x)
            })
            .collect()
    }

    /// What the first failing comparison compared (`None` when all passed).
    #[getter]
    fn first_failure(&self) -> Option<String> {
        self.report.first_failure().map(|d| d.what.clone())
    }

    /// `bool(report)` is `report.passed`.
    fn __bool__(&self) -> bool {
        self.report.passed()
    }

    /// The table.
    fn __str__(&self) -> String {
        self.report.to_string()
    }

    /// The table, too (so the REPL shows it).
    fn __repr__(&self) -> String {
        self.report.to_string()
    }
}

/// Compares `custom(*inputs)` with `reference(*inputs)`: outputs, vector–Jacobian products
/// for random and one-hot cotangents, and (optionally) finite differences.
#[pyfunction]
#[pyo3(signature = (custom, reference, inputs, atol=None, rtol=None, random_cotangents=4,
    max_one_hot=64, one_hot_samples=16, finite_differences=false, fd_eps=1e-6, fd_atol=1e-6,
    fd_rtol=1e-4, seed=0))]
#[allow(clippy::too_many_arguments)]
fn _func_verify_backward(
    py: Python<'_>,
    custom: &Bound<'_, PyAny>,
    reference: &Bound<'_, PyAny>,
    inputs: &Bound<'_, PyAny>,
    atol: Option<f64>,
    rtol: Option<f64>,
    random_cotangents: usize,
    max_one_hot: usize,
    one_hot_samples: usize,
    finite_differences: bool,
    fd_eps: f64,
    fd_atol: f64,
    fd_rtol: f64,
    seed: u64,
) -> PyResult<PyVerifyReport> {
    let xs = tensor_seq(inputs, "verify_backward", "inputs")?;
    let args = PyTuple::new(py, xs.iter().map(|t| PyTensor::new(t.clone())))?;
    let slots: Vec<usize> = (0..xs.len()).collect();
    let c = PyCallable::new("verify_backward", custom, &args, slots.clone())?;
    let r = PyCallable::new("verify_backward", reference, &args, slots)?;
    let opts = VerifyOptions {
        atol,
        rtol,
        random_cotangents,
        max_one_hot,
        one_hot_samples,
        finite_differences,
        fd_eps,
        fd_atol,
        fd_rtol,
        seed,
        ..VerifyOptions::default()
    };
    let report = detached(py, "verify_backward", || {
        verify_backward(
            &|xs: &[Tensor]| c.call(xs),
            &|xs: &[Tensor]| r.call(xs),
            &xs,
            opts,
        )
    })?;
    Ok(PyVerifyReport { report })
}

/// `gradcheck` (or with `second_order`, `gradgradcheck`) of `func(*args)` with respect to the
/// arguments at `argnums`: `(passed, max_abs_err, worst entry)`.
#[pyfunction]
#[pyo3(signature = (func, args, argnums, eps, atol, rtol, second_order=false, seed=0))]
#[allow(clippy::too_many_arguments)]
fn _func_gradcheck(
    py: Python<'_>,
    func: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
    argnums: Vec<usize>,
    eps: f64,
    atol: f64,
    rtol: f64,
    second_order: bool,
    seed: u64,
) -> PyResult<(bool, f64, String)> {
    let op = if second_order {
        "gradgradcheck"
    } else {
        "gradcheck"
    };
    let f = PyCallable::new(op, func, args, argnums)?;
    let xs = f.inputs(py)?;
    let opts = GradcheckOptions {
        eps,
        atol,
        rtol,
        seed,
        ..GradcheckOptions::default()
    };
    let call = |xs: &[Tensor]| f.call(xs);
    let r = detached(py, op, || {
        if second_order {
            gradgradcheck(&call, &xs, opts)
        } else {
            gradcheck(&call, &xs, opts)
        }
    })?;
    Ok((r.passed, r.max_abs_err, r.worst))
}

/// Adds this file's class and functions to the native module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("_VerifyReport", m.py().get_type::<PyVerifyReport>())?;
    for f in [
        wrap_pyfunction!(_func_jacobian, m)?,
        wrap_pyfunction!(_func_jvp, m)?,
        wrap_pyfunction!(_func_hessian, m)?,
        wrap_pyfunction!(_func_hvp, m)?,
        wrap_pyfunction!(_func_einsum_jacobian, m)?,
        wrap_pyfunction!(_func_verify_backward, m)?,
        wrap_pyfunction!(_func_gradcheck, m)?,
    ] {
        m.add_function(f)?;
    }
    Ok(())
}
