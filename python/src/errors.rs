//! Errors between Rust and Python, both ways.
//!
//! * An eingrad [`Error`] becomes a Python exception carrying the Rust message: bad shapes,
//!   dims, patterns and arguments a `ValueError`, a dtype mismatch a `TypeError`, autograd
//!   misuse and anomalies a `RuntimeError`, file problems an `OSError`.
//! * A Python exception raised inside a callable that Rust calls (a function given to a
//!   transform, a hook, a `Function`'s backward) must surface unchanged to the Python caller of
//!   the outer Rust call. The callable stores it with [`stash_python_error`] and returns an
//!   eingrad error; when that error reaches [`to_py_err`], the stashed exception is raised in
//!   its place (the Rust message, which names where it happened, is added as a note).
//! * A Rust panic never crosses into Python: [`guard`] turns one into a `RuntimeError`.

use eingrad::Error;
use parking_lot::Mutex;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

/// Python exceptions raised in callbacks that have not reached Python yet (most recent last).
static PENDING: Mutex<Vec<PyErr>> = Mutex::new(Vec::new());

/// Keeps `err` (raised by Python code that Rust called) to be re-raised when the eingrad error
/// that the callback returns reaches Python; returns that eingrad error.
///
/// ```ignore
/// let out = callable.call1(args).map_err(stash_python_error)?;
/// ```
pub(crate) fn stash_python_error(err: PyErr) -> Error {
    let msg = Python::attach(|py| err.to_string_lossy(py));
    PENDING.lock().push(err);
    Error::InvalidArgument {
        op: "python callback",
        arg: "callable",
        msg: format!("raised {msg}"),
    }
}

/// The message of a Python exception, for Rust errors.
trait Lossy {
    fn to_string_lossy(&self, py: Python<'_>) -> String;
}
impl Lossy for PyErr {
    fn to_string_lossy(&self, py: Python<'_>) -> String {
        let ty = self
            .get_type(py)
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "exception".into());
        format!("{ty}: {}", self.value(py))
    }
}

/// Converts an eingrad error into the Python exception to raise.
pub(crate) fn to_py_err(err: Error) -> PyErr {
    if let Some(pending) = PENDING.lock().pop() {
        // A callback raised: that exception is what the user should see.
        return pending;
    }
    let msg = err.to_string();
    match err {
        Error::DTypeMismatch { .. } => PyTypeError::new_err(msg),
        Error::Autograd(_) | Error::Anomaly { .. } => PyRuntimeError::new_err(msg),
        Error::Io(_) | Error::File { .. } => PyOSError::new_err(msg),
        Error::Format { .. } => PyValueError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}

/// `Result<T, eingrad::Error>` → `PyResult<T>`.
pub(crate) trait IntoPy<T> {
    /// Converts the error with [`to_py_err`].
    fn py_err(self) -> PyResult<T>;
}
impl<T> IntoPy<T> for eingrad::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py_err)
    }
}

/// Runs `f`, turning a Rust panic into a `RuntimeError` (a panic must never reach Python as a
/// crash or as PyO3's `PanicException`, which is not an `Exception`).
pub(crate) fn guard<T>(what: &str, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(PyRuntimeError::new_err(format!(
                "{what}: internal error (a Rust panic): {text}"
            )))
        }
    }
}

pub(crate) fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
