//! Conversions of Python arguments: dtypes, tensors from anything array-like, shapes, dims;
//! and of tensors to NumPy arrays and Python lists.

use crate::errors::IntoPy;
use crate::tensor::PyTensor;
use eingrad::{DType, Tensor};
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt, PyList, PySequence, PyString, PyTuple, PyType};

/// An eingrad dtype for Python: `eingrad.float32` and `eingrad.float64`.
///
/// ```python
/// >>> eingrad.zeros(2, dtype=eingrad.float64).dtype
/// eingrad.float64
/// ```
#[pyclass(name = "dtype", module = "eingrad", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyDType {
    pub(crate) inner: DTypeKey,
}

/// A hashable copy of [`DType`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum DTypeKey {
    F32,
    F64,
}

impl PyDType {
    pub(crate) fn new(d: DType) -> Self {
        PyDType {
            inner: match d {
                DType::F32 => DTypeKey::F32,
                DType::F64 => DTypeKey::F64,
            },
        }
    }
    pub(crate) fn dtype(&self) -> DType {
        match self.inner {
            DTypeKey::F32 => DType::F32,
            DTypeKey::F64 => DType::F64,
        }
    }
}

#[pymethods]
impl PyDType {
    fn __repr__(&self) -> &'static str {
        match self.inner {
            DTypeKey::F32 => "eingrad.float32",
            DTypeKey::F64 => "eingrad.float64",
        }
    }
    /// Bytes per element.
    #[getter]
    fn itemsize(&self) -> usize {
        match self.inner {
            DTypeKey::F32 => 4,
            DTypeKey::F64 => 8,
        }
    }
    /// Always true: eingrad's dtypes are floating point.
    #[getter]
    fn is_floating_point(&self) -> bool {
        true
    }
}

/// Reads a dtype argument: `eingrad.float32/float64`, the strings `"float32"`/`"float64"`
/// (and `"float"`, `"double"`), a NumPy dtype or scalar type of those, or Python's `float`
/// (float64). `None` stays `None`.
pub(crate) fn dtype_arg(obj: Option<&Bound<'_, PyAny>>, arg: &str) -> PyResult<Option<DType>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    if let Ok(d) = obj.cast::<PyDType>() {
        return Ok(Some(d.get().dtype()));
    }
    if let Ok(t) = obj.cast::<PyType>() {
        if t.is(obj.py().get_type::<PyFloat>()) {
            return Ok(Some(DType::F64));
        }
    }
    let name: Option<String> = if let Ok(s) = obj.cast::<PyString>() {
        Some(s.to_string())
    } else {
        // NumPy dtypes have `.name`; NumPy scalar types (np.float32) have `__name__`.
        obj.getattr("name")
            .or_else(|_| obj.getattr("__name__"))
            .ok()
            .and_then(|n| n.extract::<String>().ok())
    };
    match name.as_deref() {
        Some("float32" | "float" | "f4" | "single") => Ok(Some(DType::F32)),
        Some("float64" | "double" | "f8") => Ok(Some(DType::F64)),
        _ => Err(PyTypeError::new_err(format!(
            "{arg}: unsupported dtype {}; eingrad has eingrad.float32 and eingrad.float64",
            obj.repr().map(|r| r.to_string()).unwrap_or_default()
        ))),
    }
}

/// A tensor from a NumPy array of any numeric dtype: float32 and float64 keep their dtype
/// (unless `dtype` says otherwise), every other type becomes `default` (float32 when not
/// given). Copies the data.
pub(crate) fn tensor_from_numpy(
    obj: &Bound<'_, PyAny>,
    dtype: Option<DType>,
    default: DType,
) -> PyResult<Tensor> {
    let py = obj.py();
    if let Ok(a) = obj.cast::<PyArrayDyn<f32>>() {
        let shape = a.shape().to_vec();
        // Logical (C) order whatever the array's strides (a transposed array is
        // Fortran-ordered in memory).
        let data: Vec<f32> = a.readonly().as_array().iter().copied().collect();
        let t = Tensor::from_vec(data, &shape).py_err()?;
        return convert_dtype(t, dtype);
    }
    if let Ok(a) = obj.cast::<PyArrayDyn<f64>>() {
        let shape = a.shape().to_vec();
        // Logical (C) order whatever the array's strides (a transposed array is
        // Fortran-ordered in memory).
        let data: Vec<f64> = a.readonly().as_array().iter().copied().collect();
        let t = Tensor::from_vec(data, &shape).py_err()?;
        return convert_dtype(t, dtype);
    }
    // Any other array (ints, bools, float16): through NumPy's own float64 conversion.
    let np = py.import("numpy")?;
    let converted = np
        .call_method1("asarray", (obj, "float64"))
        .map_err(|e| PyTypeError::new_err(format!("cannot convert to a tensor: {e}")))?;
    let a = converted.cast::<PyArrayDyn<f64>>()?;
    let shape = a.shape().to_vec();
    let data: Vec<f64> = a.readonly().as_array().iter().copied().collect();
    Tensor::from_f64s(&data, &shape, dtype.unwrap_or(default)).py_err()
}

fn convert_dtype(t: Tensor, dtype: Option<DType>) -> PyResult<Tensor> {
    match dtype {
        Some(d) if d != t.dtype() => t.to_dtype(d).py_err(),
        _ => Ok(t),
    }
}

/// A tensor from anything `eingrad.tensor` takes: a tensor (copied? no: shared unless the
/// dtype changes), a NumPy array, a Python number, or nested sequences of numbers. Python
/// numbers and lists default to float32, as in PyTorch.
pub(crate) fn tensor_from_any(obj: &Bound<'_, PyAny>, dtype: Option<DType>) -> PyResult<Tensor> {
    if let Ok(t) = obj.cast::<PyTensor>() {
        return convert_dtype(t.get().tensor(), dtype);
    }
    if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>() {
        let v: f64 = obj.extract()?;
        return Ok(Tensor::scalar(v, dtype.unwrap_or(DType::F32)));
    }
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "cannot make a tensor from the string {}",
            obj.repr()?
        )));
    }
    let is_array = obj.hasattr("__array__")? && !obj.is_instance_of::<PyList>();
    if is_array || obj.cast::<PySequence>().is_ok() {
        let np = obj.py().import("numpy")?;
        let arr = if is_array {
            np.call_method1("asarray", (obj,))
        } else {
            np.call_method1("asarray", (obj, "float64"))
        }
        .map_err(|e| {
            PyValueError::new_err(format!(
                "cannot make a tensor from {}: {e}",
                short_repr(obj)
            ))
        })?;
        let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
        if !matches!(kind.as_str(), "f" | "i" | "u" | "b") {
            return Err(PyTypeError::new_err(format!(
                "cannot make a tensor from {} (NumPy dtype kind {kind:?}): expected numbers",
                short_repr(obj)
            )));
        }
        // Python numbers and lists become float32 (PyTorch's default dtype); arrays keep
        // float32/float64 and convert other kinds to float32.
        let dtype = if is_array {
            dtype
        } else {
            dtype.or(Some(DType::F32))
        };
        return tensor_from_numpy(&arr, dtype, DType::F32);
    }
    Err(PyTypeError::new_err(format!(
        "cannot make a tensor from an object of type {}",
        obj.get_type().name()?
    )))
}

/// The first 60 characters of `repr(obj)`.
pub(crate) fn short_repr(obj: &Bound<'_, PyAny>) -> String {
    let r = obj.repr().map(|r| r.to_string()).unwrap_or_default();
    if r.chars().count() > 60 {
        format!("{}...", r.chars().take(60).collect::<String>())
    } else {
        r
    }
}

/// A tensor as a new NumPy array of its dtype (a copy).
pub(crate) fn tensor_to_numpy<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    let shape = t.dims().to_vec();
    match t.dtype() {
        DType::F32 => {
            let v = t.to_vec::<f32>().py_err()?;
            Ok(numpy::PyArray1::from_vec(py, v).reshape(shape)?.into_any())
        }
        DType::F64 => {
            let v = t.to_vec::<f64>().py_err()?;
            Ok(numpy::PyArray1::from_vec(py, v).reshape(shape)?.into_any())
        }
    }
}

/// A shape argument given either as one sequence (`zeros((2, 3))`) or as separate ints
/// (`zeros(2, 3)`); every entry must be a non-negative int.
pub(crate) fn shape_args(args: &Bound<'_, PyTuple>, arg: &str) -> PyResult<Vec<usize>> {
    if args.len() == 1 {
        let first = args.get_item(0)?;
        if !first.is_instance_of::<PyInt>() {
            return shape_from_seq(&first, arg);
        }
    }
    shape_from_seq(args.as_any(), arg)
}

/// A shape from a sequence of non-negative ints.
pub(crate) fn shape_from_seq(obj: &Bound<'_, PyAny>, arg: &str) -> PyResult<Vec<usize>> {
    let seq = obj.cast::<PySequence>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{arg}: expected a sequence of ints, got {}",
            short_repr(obj)
        ))
    })?;
    let mut out = Vec::with_capacity(seq.len()?);
    for item in seq.try_iter()? {
        let item = item?;
        let v: i64 = item.extract().map_err(|_| {
            PyTypeError::new_err(format!("{arg}: expected ints, got {}", short_repr(&item)))
        })?;
        if v < 0 {
            return Err(PyValueError::new_err(format!(
                "{arg}: negative size {v} in {}",
                short_repr(obj)
            )));
        }
        out.push(v as usize);
    }
    Ok(out)
}

/// One int or a sequence of ints (a `dim` argument that may be a tuple) as a Vec.
pub(crate) fn dims_arg(obj: &Bound<'_, PyAny>, arg: &str) -> PyResult<Vec<isize>> {
    if let Ok(d) = obj.extract::<isize>() {
        return Ok(vec![d]);
    }
    let seq = obj.cast::<PySequence>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{arg}: expected an int or a tuple of ints, got {}",
            short_repr(obj)
        ))
    })?;
    let mut out = Vec::new();
    for item in seq.try_iter()? {
        let item = item?;
        out.push(item.extract::<isize>().map_err(|_| {
            PyTypeError::new_err(format!("{arg}: expected ints, got {}", short_repr(&item)))
        })?);
    }
    Ok(out)
}
