//! The `Tensor` class: construction (from data, NumPy, and the factories `zeros`, `randn`,
//! ...), conversion back (`numpy`, `item`, `tolist`), its attributes (`shape`, `dtype`, ...),
//! `repr`, and the arithmetic and comparison operators with broadcasting and Python scalars.
//! The ops live in `ops/`, indexing in `indexing.rs`, autograd in `autograd.rs`.

use crate::convert::{
    dtype_arg, shape_args, short_repr, tensor_from_any, tensor_from_numpy, tensor_to_numpy, PyDType,
};
use crate::errors::IntoPy;
use eingrad::{DType, Tensor};
use parking_lot::RwLock;
use pyo3::basic::CompareOp;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt, PyList, PyTuple};

/// Tensors this large release the GIL while an op runs (smaller ones finish before a thread
/// switch would pay off).
pub(crate) const RELEASE_GIL_NUMEL: usize = 1 << 14;

/// A tensor: an n-dimensional array of float32 or float64 that records the operations on it
/// for automatic differentiation when `requires_grad` is set.
///
/// ```python
/// >>> x = eingrad.tensor([[1., 2.], [3., 4.]], requires_grad=True)
/// >>> (x * x).sum().backward(); x.grad
/// tensor([[2., 4.],
///         [6., 8.]])
/// ```
#[pyclass(name = "Tensor", module = "eingrad", subclass, frozen, weakref)]
pub struct PyTensor {
    /// The Rust tensor this Python object stands for. In-place operations on a tensor with
    /// history (`y[mask] = 0` where `y` requires grad, as PyTorch allows) rebind it to the
    /// result of the equivalent out-of-place op, so the object's later uses see the new
    /// values and differentiate through the write.
    cell: RwLock<Tensor>,
}

impl PyTensor {
    /// Wraps a Rust tensor.
    pub(crate) fn new(inner: Tensor) -> Self {
        PyTensor {
            cell: RwLock::new(inner),
        }
    }
    /// The Rust tensor (a cheap handle: an `Arc`).
    pub(crate) fn tensor(&self) -> Tensor {
        self.cell.read().clone()
    }
    /// Rebinds this Python object to `t` (an in-place op that had to build a new tensor).
    pub(crate) fn set_tensor(&self, t: Tensor) {
        *self.cell.write() = t;
    }
}

/// Wraps a Rust result as a Python tensor.
pub(crate) fn wrap(r: eingrad::Result<Tensor>) -> PyResult<PyTensor> {
    r.py_err().map(PyTensor::new)
}

/// Runs `f`, releasing the GIL when `numel` is large enough for that to pay off.
pub(crate) fn maybe_detach<T: Send>(
    py: Python<'_>,
    numel: usize,
    f: impl FnOnce() -> T + Send,
) -> T {
    if numel >= RELEASE_GIL_NUMEL {
        py.detach(f)
    } else {
        f()
    }
}

/// The other operand of a binary operator: a tensor, or a Python number.
pub(crate) enum Operand {
    Tensor(Tensor),
    Scalar(f64),
}

/// Reads the other operand of `op`: a tensor, a Python int/float/bool, a NumPy array or a
/// nested list (converted to `like`'s dtype). `None` means "not an operand" (the operator
/// returns `NotImplemented`).
pub(crate) fn operand(other: &Bound<'_, PyAny>, like: &Tensor) -> PyResult<Option<Operand>> {
    if let Ok(t) = other.cast::<PyTensor>() {
        return Ok(Some(Operand::Tensor(t.get().tensor())));
    }
    if other.is_instance_of::<PyFloat>() || other.is_instance_of::<PyInt>() {
        return Ok(Some(Operand::Scalar(other.extract::<f64>()?)));
    }
    if other.hasattr("__array__")? || other.is_instance_of::<PyList>() {
        // NumPy scalars (np.float64(2.0)) count as numbers.
        if let Ok(v) = other.extract::<f64>() {
            if !other.is_instance_of::<PyList>()
                && other
                    .getattr("ndim")
                    .map(|n| n.extract::<usize>().unwrap_or(1) == 0)
                    .unwrap_or(false)
            {
                return Ok(Some(Operand::Scalar(v)));
            }
        }
        return Ok(Some(Operand::Tensor(tensor_from_any(
            other,
            Some(like.dtype()),
        )?)));
    }
    Ok(None)
}

/// A binary op on two tensors.
type TensorOp = fn(&Tensor, &Tensor) -> eingrad::Result<Tensor>;
/// A binary op on a tensor and a number.
type ScalarOp = fn(&Tensor, f64) -> eingrad::Result<Tensor>;

/// An operator's result: a tensor, or `NotImplemented` (Python then tries the reflected
/// operator of the other operand, and raises `TypeError` if that fails too).
pub(crate) struct OrNotImplemented(pub(crate) Option<PyTensor>);

impl<'py> IntoPyObject<'py> for OrNotImplemented {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.0 {
            Some(t) => Ok(Bound::new(py, t)?.into_any()),
            None => Ok(py.NotImplemented().into_bound(py)),
        }
    }
}

/// `self op other` where `other` may be a number: `tensor_op` for two tensors, `scalar_op`
/// for a number (which never allocates a broadcast operand).
fn binary(
    py: Python<'_>,
    a: &Tensor,
    other: &Bound<'_, PyAny>,
    tensor_op: fn(&Tensor, &Tensor) -> eingrad::Result<Tensor>,
    scalar_op: impl Fn(&Tensor, f64) -> eingrad::Result<Tensor> + Send + Sync,
) -> PyResult<OrNotImplemented> {
    let Some(b) = operand(other, a)? else {
        return Ok(OrNotImplemented(None));
    };
    let n = a.numel();
    let r = match b {
        Operand::Scalar(c) => maybe_detach(py, n, || scalar_op(a, c)),
        Operand::Tensor(b) => maybe_detach(py, n.max(b.numel()), || tensor_op(a, &b)),
    };
    wrap(r).map(|t| OrNotImplemented(Some(t)))
}

/// `other op self` for the reflected operators (`2 - x`, `1 / x`).
fn reflected(
    py: Python<'_>,
    a: &Tensor,
    other: &Bound<'_, PyAny>,
    tensor_op: fn(&Tensor, &Tensor) -> eingrad::Result<Tensor>,
    scalar_op: impl Fn(&Tensor, f64) -> eingrad::Result<Tensor> + Send + Sync,
) -> PyResult<OrNotImplemented> {
    let Some(b) = operand(other, a)? else {
        return Ok(OrNotImplemented(None));
    };
    let n = a.numel();
    let r = match b {
        Operand::Scalar(c) => maybe_detach(py, n, || scalar_op(a, c)),
        Operand::Tensor(b) => maybe_detach(py, n.max(b.numel()), || tensor_op(&b, a)),
    };
    wrap(r).map(|t| OrNotImplemented(Some(t)))
}

/// `a @ b` with NumPy's rules: 1-d operands are vectors, more than 2 dims batch (with
/// broadcasting), every case one einsum.
pub(crate) fn matmul(a: &Tensor, b: &Tensor) -> eingrad::Result<Tensor> {
    let pattern = match (a.rank(), b.rank()) {
        (0, _) | (_, 0) => {
            return Err(eingrad::Error::InvalidArgument {
                op: "matmul",
                arg: "input",
                msg: format!(
                    "both operands need at least one dim, got shapes {:?} and {:?}",
                    a.dims(),
                    b.dims()
                ),
            })
        }
        (1, 1) => "i,i->",
        (1, 2) => "j,jk->k",
        (2, 1) => "ij,j->i",
        (2, 2) => "ij,jk->ik",
        (1, _) => "j,...jk->...k",
        (_, 1) => "...ij,j->...i",
        _ => "...ij,...jk->...ik",
    };
    if a.dims()[a.rank() - 1] != b.dims()[if b.rank() == 1 { 0 } else { b.rank() - 2 }] {
        return Err(eingrad::Error::ShapeMismatch {
            op: "matmul",
            lhs: a.dims().to_vec(),
            rhs: b.dims().to_vec(),
            detail: " (the last dim of the first must equal the contracted dim of the second)"
                .into(),
        });
    }
    eingrad::einsum(pattern, &[a, b])
}

/// An int seed from Python (`None` → 0).
/// The global generator's state: `manual_seed` sets it; each random factory called without
/// `seed=` takes the next seed from it (so successive `randn()` calls differ, as in PyTorch,
/// and a script that calls `manual_seed` first is reproducible).
static GLOBAL_SEED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0x5eed);

/// The seed of one random draw: `seed` when given, else the global generator's next.
pub(crate) fn seed_arg(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(|| {
        // splitmix64 on a counter: well-mixed, distinct seeds for consecutive draws.
        let s = GLOBAL_SEED.fetch_add(0x9E37_79B9_7F4A_7C15, std::sync::atomic::Ordering::Relaxed);
        let mut z = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// `eingrad.manual_seed(seed)`: seeds the global generator that `randn`, `rand` and the
/// layers' initialisation use when no `seed=` is given.
///
/// ```python
/// >>> eingrad.manual_seed(0); a = eingrad.randn(3)
/// >>> eingrad.manual_seed(0); bool((eingrad.randn(3) == a).all())
/// True
/// ```
#[pyfunction]
fn manual_seed(seed: u64) {
    GLOBAL_SEED.store(seed, std::sync::atomic::Ordering::Relaxed);
}

#[pymethods]
impl PyTensor {
    /// `Tensor(data)`: a tensor from data, like `eingrad.tensor(data)` (float32 unless `data`
    /// is a float64 array or tensor). Subclasses (`nn.Parameter`) call it as `super().__new__`.
    #[new]
    #[pyo3(signature = (data=None, dtype=None))]
    fn py_new(data: Option<&Bound<'_, PyAny>>, dtype: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let dtype = dtype_arg(dtype, "Tensor(dtype=)")?;
        match data {
            None => Ok(PyTensor::new(
                Tensor::zeros(&[0], dtype.unwrap_or(DType::F32)).py_err()?,
            )),
            Some(d) => Ok(PyTensor::new(tensor_from_any(d, dtype)?)),
        }
    }

    // ---- attributes ----

    /// The shape as a tuple (PyTorch's `torch.Size` is a tuple too).
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.tensor().dims())
    }

    /// `size()` is the shape; `size(dim)` one of its entries (negative dims count from the end).
    #[pyo3(signature = (dim=None))]
    fn size<'py>(&self, py: Python<'py>, dim: Option<isize>) -> PyResult<Bound<'py, PyAny>> {
        match dim {
            None => Ok(self.shape(py)?.into_any()),
            Some(d) => {
                let r = self.tensor().rank() as isize;
                let i = if d < 0 { d + r } else { d };
                if i < 0 || i >= r {
                    return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                        "size: dim {d} is out of range for a tensor of rank {r}"
                    )));
                }
                Ok(self.tensor().dims()[i as usize]
                    .into_pyobject(py)?
                    .into_any())
            }
        }
    }

    /// The element type: `eingrad.float32` or `eingrad.float64`.
    #[getter]
    fn dtype(&self) -> PyDType {
        PyDType::new(self.tensor().dtype())
    }

    /// The number of dimensions.
    #[getter]
    fn ndim(&self) -> usize {
        self.tensor().rank()
    }

    /// The number of dimensions (PyTorch's older name).
    fn dim(&self) -> usize {
        self.tensor().rank()
    }

    /// The number of elements.
    fn numel(&self) -> usize {
        self.tensor().numel()
    }

    /// Always `"cpu"`.
    #[getter]
    fn device(&self) -> &'static str {
        "cpu"
    }

    /// The strides in elements.
    fn stride<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.tensor().strides())
    }

    /// True when the elements are laid out densely in row-major order.
    fn is_contiguous(&self) -> bool {
        self.tensor().is_contiguous()
    }

    /// Always true: eingrad's dtypes are floating point.
    fn is_floating_point(&self) -> bool {
        true
    }

    fn __len__(&self) -> PyResult<usize> {
        match self.tensor().dims().first() {
            Some(&n) => Ok(n),
            None => Err(PyTypeError::new_err("len() of a 0-d tensor")),
        }
    }

    fn __repr__(&self) -> String {
        // The Rust display is PyTorch's format (dtype when not float32, grad_fn or
        // requires_grad); only the dtype's name gets its Python module.
        self.tensor()
            .to_string()
            .replacen("dtype=float64", "dtype=eingrad.float64", 1)
    }

    fn __str__(&self) -> String {
        self.__repr__()
    }

    /// Identity hash, as in PyTorch (tensors compare elementwise, so equality is not identity).
    fn __hash__(slf: &Bound<'_, Self>) -> isize {
        slf.as_ptr() as isize
    }

    fn __bool__(&self) -> PyResult<bool> {
        if self.tensor().numel() != 1 {
            return Err(PyValueError::new_err(format!(
                "the truth value of a tensor of shape {:?} is ambiguous (it has {} elements)",
                self.tensor().dims(),
                self.tensor().numel()
            )));
        }
        Ok(self.tensor().item().py_err()? != 0.0)
    }

    fn __float__(&self) -> PyResult<f64> {
        self.item()
    }

    fn __int__(&self) -> PyResult<i64> {
        Ok(self.item()? as i64)
    }

    /// `np.asarray(t)`: a copy of the data as a NumPy array.
    #[pyo3(signature = (dtype=None, copy=None))]
    fn __array__<'py>(
        &self,
        py: Python<'py>,
        dtype: Option<&Bound<'py, PyAny>>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = copy;
        let a = tensor_to_numpy(py, &self.tensor())?;
        match dtype {
            Some(d) if !d.is_none() => a.call_method1("astype", (d,)),
            _ => Ok(a),
        }
    }

    // ---- conversion ----

    /// The data as a new NumPy array of the same dtype (a copy; a tensor that requires grad
    /// converts too, as `t.detach().numpy()` would).
    fn numpy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        tensor_to_numpy(py, &self.tensor())
    }

    /// The value of a one-element tensor as a Python float.
    fn item(&self) -> PyResult<f64> {
        if self.tensor().numel() != 1 {
            return Err(PyValueError::new_err(format!(
                "item: the tensor has shape {:?} ({} elements), not one element",
                self.tensor().dims(),
                self.tensor().numel()
            )));
        }
        self.tensor().item().py_err()
    }

    /// The data as nested Python lists of floats (a float for a 0-d tensor).
    fn tolist<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        tensor_to_numpy(py, &self.tensor())?.call_method0("tolist")
    }

    /// A copy with another dtype (the same tensor when it already has it, as in PyTorch).
    #[pyo3(signature = (dtype))]
    fn to(&self, dtype: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let d = dtype_arg(Some(dtype), "to(dtype)")?
            .ok_or_else(|| PyTypeError::new_err("to: expected a dtype such as eingrad.float64"))?;
        wrap(self.tensor().to_dtype(d))
    }

    /// This tensor as float64.
    fn double(&self) -> PyResult<PyTensor> {
        wrap(self.tensor().to_dtype(DType::F64))
    }

    /// This tensor as float32.
    fn float(&self) -> PyResult<PyTensor> {
        wrap(self.tensor().to_dtype(DType::F32))
    }

    // ---- autograd flags used everywhere (the rest is in autograd.rs) ----

    /// Whether operations on this tensor are recorded for differentiation.
    #[getter]
    fn requires_grad(&self) -> bool {
        self.tensor().requires_grad()
    }

    /// The same tensor cut from the graph (shares its data).
    fn detach(&self) -> PyTensor {
        PyTensor::new(self.tensor().detach())
    }

    /// `x.cpu()`: the tensor itself (eingrad tensors live on the CPU; for code written for
    /// PyTorch).
    ///
    /// ```python
    /// >>> x = eingrad.ones(2); x.cpu() is x
    /// True
    /// ```
    fn cpu(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// `x.data`: the values without history (PyTorch's legacy spelling of `detach()`).
    #[getter]
    fn data(&self) -> PyTensor {
        self.detach()
    }

    /// `x.data = values`: replaces the values in place, outside autograd (same shape and
    /// dtype; what old PyTorch code does to update parameters by hand).
    #[setter(data)]
    fn set_data(&self, values: &Bound<'_, PyAny>) -> PyResult<()> {
        let t = self.tensor();
        let src = tensor_from_any(values, Some(t.dtype()))?;
        if src.dims() != t.dims() {
            return Err(PyValueError::new_err(format!(
                "x.data = values: values have shape {:?}, the tensor {:?}",
                src.dims(),
                t.dims()
            )));
        }
        if t.is_contiguous() && t.copy_from(&src).is_ok() {
            return Ok(());
        }
        let fresh = src.contiguous().py_err()?.detach();
        self.set_tensor(fresh.requires_grad_(t.requires_grad() && t.is_leaf()));
        Ok(())
    }

    // ---- arithmetic ----

    fn __add__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<OrNotImplemented> {
        binary(py, &self.tensor(), other, Tensor::add, |a, c| {
            a.add_scalar(c)
        })
    }
    fn __radd__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<OrNotImplemented> {
        reflected(py, &self.tensor(), other, Tensor::add, |a, c| {
            a.add_scalar(c)
        })
    }
    fn __sub__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<OrNotImplemented> {
        binary(py, &self.tensor(), other, Tensor::sub, |a, c| {
            a.add_scalar(-c)
        })
    }
    fn __rsub__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<OrNotImplemented> {
        reflected(py, &self.tensor(), other, Tensor::sub, |a, c| {
            a.rsub_scalar(c)
        })
    }
    fn __mul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<OrNotImplemented> {
        binary(py, &self.tensor(), other, Tensor::mul, |a, c| {
            a.mul_scalar(c)
        })
    }
    fn __rmul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<OrNotImplemented> {
        reflected(py, &self.tensor(), other, Tensor::mul, |a, c| {
            a.mul_scalar(c)
        })
    }
    fn __truediv__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<OrNotImplemented> {
        binary(py, &self.tensor(), other, Tensor::div, |a, c| {
            a.div_scalar(c)
        })
    }
    fn __rtruediv__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<OrNotImplemented> {
        reflected(py, &self.tensor(), other, Tensor::div, |a, c| {
            a.powf(-1.0)?.mul_scalar(c)
        })
    }
    fn __pow__(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        modulo: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<OrNotImplemented> {
        if modulo.is_some_and(|m| !m.is_none()) {
            return Err(PyTypeError::new_err(
                "pow: the modulo argument is not supported",
            ));
        }
        binary(py, &self.tensor(), other, Tensor::pow, |a, c| a.powf(c))
    }
    fn __rpow__(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        modulo: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<OrNotImplemented> {
        if modulo.is_some_and(|m| !m.is_none()) {
            return Err(PyTypeError::new_err(
                "pow: the modulo argument is not supported",
            ));
        }
        reflected(py, &self.tensor(), other, Tensor::pow, |a, c| {
            // c ** a = exp(a ln c)
            a.mul_scalar(c.ln())?.exp()
        })
    }
    fn __matmul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<OrNotImplemented> {
        let Some(Operand::Tensor(b)) = operand(other, &self.tensor())? else {
            return Ok(OrNotImplemented(None));
        };
        let a = &self.tensor();
        wrap(maybe_detach(py, a.numel().max(b.numel()), || matmul(a, &b)))
            .map(|t| OrNotImplemented(Some(t)))
    }
    fn __rmatmul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<OrNotImplemented> {
        let Some(Operand::Tensor(b)) = operand(other, &self.tensor())? else {
            return Ok(OrNotImplemented(None));
        };
        let a = &self.tensor();
        wrap(maybe_detach(py, a.numel().max(b.numel()), || matmul(&b, a)))
            .map(|t| OrNotImplemented(Some(t)))
    }
    fn __neg__(&self) -> PyResult<PyTensor> {
        wrap(self.tensor().neg())
    }
    fn __pos__(&self) -> PyTensor {
        PyTensor::new(self.tensor().clone())
    }
    fn __abs__(&self) -> PyResult<PyTensor> {
        wrap(self.tensor().abs())
    }

    /// Comparisons give float masks (1.0 where true, 0.0 where false) that `where`,
    /// `masked_fill` and boolean indexing accept.
    fn __richcmp__(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<OrNotImplemented> {
        let (t, s): (TensorOp, ScalarOp) = match op {
            CompareOp::Eq => (Tensor::eq, Tensor::eq_scalar),
            CompareOp::Ne => (Tensor::ne, Tensor::ne_scalar),
            CompareOp::Lt => (Tensor::lt, Tensor::lt_scalar),
            CompareOp::Le => (Tensor::le, Tensor::le_scalar),
            CompareOp::Gt => (Tensor::gt, Tensor::gt_scalar),
            CompareOp::Ge => (Tensor::ge, Tensor::ge_scalar),
        };
        binary(py, &self.tensor(), other, t, s)
    }
}

/// `eingrad.tensor(data, dtype=None, device=None, requires_grad=False)`: a new leaf tensor
/// holding a copy of `data` (a number, nested lists, a NumPy array or a tensor). Numbers and
/// lists are float32 unless `dtype` says otherwise; float64 arrays stay float64.
///
/// ```python
/// >>> eingrad.tensor([[1, 2], [3, 4]], dtype=eingrad.float64, requires_grad=True)
/// tensor([[1., 2.],
///         [3., 4.]], dtype=eingrad.float64, requires_grad=True)
/// ```
#[pyfunction]
#[pyo3(signature = (data, dtype=None, device=None, requires_grad=false))]
fn tensor(
    data: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    check_device(device, "tensor")?;
    let dtype = dtype_arg(dtype, "tensor(dtype=)")?;
    let t = tensor_from_any(data, dtype)?;
    // A fresh leaf that shares nothing with `data`: numbers, lists and arrays were copied on
    // the way in; a tensor is copied here (its values, not its history).
    let t = if data.is_instance_of::<PyTensor>() {
        match t.dtype() {
            DType::F32 => Tensor::from_vec(t.to_vec::<f32>().py_err()?, t.dims()),
            DType::F64 => Tensor::from_vec(t.to_vec::<f64>().py_err()?, t.dims()),
        }
        .py_err()?
    } else {
        t.detach()
    };
    Ok(PyTensor::new(t.requires_grad_(requires_grad)))
}

/// `eingrad.from_numpy(array)`: a tensor with the array's data (a copy; float32 and float64
/// keep their dtype, other number types become float32).
///
/// ```python
/// >>> eingrad.from_numpy(np.arange(3.0))
/// tensor([0., 1., 2.], dtype=eingrad.float64)
/// ```
#[pyfunction]
fn from_numpy(array: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
    if !array.hasattr("__array_interface__")? {
        return Err(PyTypeError::new_err(format!(
            "from_numpy: expected a NumPy array, got {}",
            short_repr(array)
        )));
    }
    Ok(PyTensor::new(tensor_from_numpy(array, None, DType::F32)?))
}

/// Checks a factory's `device=`: eingrad computes on the CPU, so `None`, `"cpu"` or any
/// object whose `str` is `"cpu"` (a `torch.device("cpu")`) is accepted; anything else is a
/// `ValueError` naming the device.
fn check_device(device: Option<&Bound<'_, PyAny>>, func: &str) -> PyResult<()> {
    let Some(d) = device.filter(|d| !d.is_none()) else {
        return Ok(());
    };
    let name = d.str()?.to_string();
    if name == "cpu" {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "{func}(device={name:?}): eingrad tensors live on the CPU; pass device=None or \"cpu\""
        )))
    }
}

fn factory_dtype(dtype: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<DType> {
    Ok(dtype_arg(dtype, name)?.unwrap_or(DType::F32))
}

fn leaf(t: eingrad::Result<Tensor>, requires_grad: bool) -> PyResult<PyTensor> {
    Ok(PyTensor::new(t.py_err()?.requires_grad_(requires_grad)))
}

/// `zeros(*size, dtype=None, device=None, requires_grad=False)`: a tensor of zeros; the size
/// as separate ints or one sequence.
///
/// ```python
/// >>> eingrad.zeros(2, 3).shape, eingrad.zeros((2, 3)).shape
/// ((2, 3), (2, 3))
/// ```
#[pyfunction]
#[pyo3(signature = (*size, dtype=None, device=None, requires_grad=false))]
fn zeros(
    size: &Bound<'_, PyTuple>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    check_device(device, "zeros")?;
    let shape = shape_args(size, "zeros(size)")?;
    leaf(
        Tensor::zeros(&shape, factory_dtype(dtype, "zeros(dtype=)")?),
        requires_grad,
    )
}

/// `ones(*size, dtype=None, device=None, requires_grad=False)`: a tensor of ones.
///
/// ```python
/// >>> eingrad.ones(2, dtype=eingrad.float64)
/// tensor([1., 1.], dtype=eingrad.float64)
/// ```
#[pyfunction]
#[pyo3(signature = (*size, dtype=None, device=None, requires_grad=false))]
fn ones(
    size: &Bound<'_, PyTuple>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    check_device(device, "ones")?;
    let shape = shape_args(size, "ones(size)")?;
    leaf(
        Tensor::ones(&shape, factory_dtype(dtype, "ones(dtype=)")?),
        requires_grad,
    )
}

/// `full(size, fill_value, dtype=None, device=None, requires_grad=False)`: every entry
/// `fill_value`.
///
/// ```python
/// >>> eingrad.full((2,), 7.0).tolist()
/// [7.0, 7.0]
/// ```
#[pyfunction]
#[pyo3(signature = (size, fill_value, dtype=None, device=None, requires_grad=false))]
fn full(
    size: &Bound<'_, PyAny>,
    fill_value: f64,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    check_device(device, "full")?;
    let shape = crate::convert::shape_from_seq(size, "full(size)")?;
    leaf(
        Tensor::full(&shape, fill_value, factory_dtype(dtype, "full(dtype=)")?),
        requires_grad,
    )
}

/// `arange(end)`, `arange(start, end, step=1)`: evenly spaced values in `[start, end)`.
///
/// ```python
/// >>> eingrad.arange(1, 2, 0.25).tolist()
/// [1.0, 1.25, 1.5, 1.75]
/// ```
#[pyfunction]
#[pyo3(signature = (start, end=None, step=1.0, dtype=None, device=None, requires_grad=false))]
fn arange(
    start: f64,
    end: Option<f64>,
    step: f64,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    check_device(device, "arange")?;
    let (s, e) = match end {
        Some(e) => (start, e),
        None => (0.0, start),
    };
    leaf(
        Tensor::arange(s, e, step, factory_dtype(dtype, "arange(dtype=)")?),
        requires_grad,
    )
}

/// `linspace(start, end, steps)`: `steps` evenly spaced values from `start` to `end`
/// inclusive.
///
/// ```python
/// >>> eingrad.linspace(0, 1, 5).tolist()
/// [0.0, 0.25, 0.5, 0.75, 1.0]
/// ```
#[pyfunction]
#[pyo3(signature = (start, end, steps, dtype=None, device=None, requires_grad=false))]
fn linspace(
    start: f64,
    end: f64,
    steps: usize,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    check_device(device, "linspace")?;
    leaf(
        Tensor::linspace(start, end, steps, factory_dtype(dtype, "linspace(dtype=)")?),
        requires_grad,
    )
}

/// `eye(n, m=None)`: an n×m matrix (n×n by default) with ones on the diagonal.
///
/// ```python
/// >>> eingrad.eye(2, 3).tolist()
/// [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
/// ```
#[pyfunction]
#[pyo3(signature = (n, m=None, dtype=None, device=None, requires_grad=false))]
fn eye(
    n: usize,
    m: Option<usize>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    check_device(device, "eye")?;
    let d = factory_dtype(dtype, "eye(dtype=)")?;
    let t = match m {
        None => Tensor::eye(n, d),
        Some(m) => {
            Tensor::eye(n.max(m), d).and_then(|e| e.narrow(0, 0, n)?.narrow(1, 0, m)?.contiguous())
        }
    };
    leaf(t.map(|t| t.detach()), requires_grad)
}

/// `randn(*size, dtype=None, device=None, seed=None, requires_grad=False)`: standard normal
/// samples; the same `seed` gives the same tensor, no seed draws from the global generator
/// (`manual_seed`).
///
/// ```python
/// >>> eingrad.randn(3, seed=7).tolist() == eingrad.randn(3, seed=7).tolist()
/// True
/// ```
#[pyfunction]
#[pyo3(signature = (*size, dtype=None, device=None, seed=None, requires_grad=false))]
fn randn(
    size: &Bound<'_, PyTuple>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    seed: Option<u64>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    check_device(device, "randn")?;
    let shape = shape_args(size, "randn(size)")?;
    leaf(
        Tensor::randn(
            &shape,
            factory_dtype(dtype, "randn(dtype=)")?,
            seed_arg(seed),
        ),
        requires_grad,
    )
}

/// `rand(*size, dtype=None, device=None, seed=None, requires_grad=False)`: uniform samples in
/// [0, 1).
///
/// ```python
/// >>> x = eingrad.rand(1000, seed=1); bool((x >= 0).all()) and bool((x < 1).all())
/// True
/// ```
#[pyfunction]
#[pyo3(signature = (*size, dtype=None, device=None, seed=None, requires_grad=false))]
fn rand(
    size: &Bound<'_, PyTuple>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    seed: Option<u64>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    check_device(device, "rand")?;
    let shape = shape_args(size, "rand(size)")?;
    leaf(
        Tensor::rand(
            &shape,
            factory_dtype(dtype, "rand(dtype=)")?,
            seed_arg(seed),
        ),
        requires_grad,
    )
}

fn like_dtype(t: &PyTensor, dtype: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<DType> {
    Ok(dtype_arg(dtype, name)?.unwrap_or(t.tensor().dtype()))
}

/// `zeros_like(input)`: zeros of `input`'s shape and dtype (or `dtype=`).
///
/// ```python
/// >>> eingrad.zeros_like(eingrad.ones(2, 1)).tolist()
/// [[0.0], [0.0]]
/// ```
#[pyfunction]
#[pyo3(signature = (input, dtype=None, device=None, requires_grad=false))]
fn zeros_like(
    input: &PyTensor,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    check_device(device, "zeros_like")?;
    let d = like_dtype(input, dtype, "zeros_like(dtype=)")?;
    leaf(Tensor::zeros(input.tensor().dims(), d), requires_grad)
}

/// `ones_like(input)`: ones of `input`'s shape and dtype (or `dtype=`).
///
/// ```python
/// >>> eingrad.ones_like(eingrad.zeros(2, dtype=eingrad.float64))
/// tensor([1., 1.], dtype=eingrad.float64)
/// ```
#[pyfunction]
#[pyo3(signature = (input, dtype=None, device=None, requires_grad=false))]
fn ones_like(
    input: &PyTensor,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    check_device(device, "ones_like")?;
    let d = like_dtype(input, dtype, "ones_like(dtype=)")?;
    leaf(Tensor::ones(input.tensor().dims(), d), requires_grad)
}

/// `full_like(input, fill_value)`: `fill_value` in `input`'s shape and dtype.
///
/// ```python
/// >>> eingrad.full_like(eingrad.zeros(2), 3.0).tolist()
/// [3.0, 3.0]
/// ```
#[pyfunction]
#[pyo3(signature = (input, fill_value, dtype=None, device=None, requires_grad=false))]
fn full_like(
    input: &PyTensor,
    fill_value: f64,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    check_device(device, "full_like")?;
    let d = like_dtype(input, dtype, "full_like(dtype=)")?;
    leaf(
        Tensor::full(input.tensor().dims(), fill_value, d),
        requires_grad,
    )
}

/// `randn_like(input, seed=None)`: standard normal samples in `input`'s shape and dtype.
///
/// ```python
/// >>> eingrad.randn_like(eingrad.zeros(2, 3), seed=0).shape
/// (2, 3)
/// ```
#[pyfunction]
#[pyo3(signature = (input, dtype=None, device=None, seed=None, requires_grad=false))]
fn randn_like(
    input: &PyTensor,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    seed: Option<u64>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    check_device(device, "randn_like")?;
    let d = like_dtype(input, dtype, "randn_like(dtype=)")?;
    leaf(
        Tensor::randn(input.tensor().dims(), d, seed_arg(seed)),
        requires_grad,
    )
}

/// `rand_like(input, seed=None)`: uniform samples in [0, 1) in `input`'s shape and dtype.
///
/// ```python
/// >>> eingrad.rand_like(eingrad.zeros(4), seed=0).shape
/// (4,)
/// ```
#[pyfunction]
#[pyo3(signature = (input, dtype=None, device=None, seed=None, requires_grad=false))]
fn rand_like(
    input: &PyTensor,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    seed: Option<u64>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    check_device(device, "rand_like")?;
    let d = like_dtype(input, dtype, "rand_like(dtype=)")?;
    leaf(
        Tensor::rand(input.tensor().dims(), d, seed_arg(seed)),
        requires_grad,
    )
}

/// `matmul(input, other)`, the function form of `input @ other`.
///
/// ```python
/// >>> eingrad.matmul(eingrad.ones(2, 3), eingrad.ones(3, 4)).shape
/// (2, 4)
/// ```
#[pyfunction]
#[pyo3(name = "matmul")]
fn matmul_fn(py: Python<'_>, input: &PyTensor, other: &PyTensor) -> PyResult<PyTensor> {
    let (a, b) = (&input.tensor(), &other.tensor());
    wrap(maybe_detach(py, a.numel().max(b.numel()), || matmul(a, b)))
}

/// `empty(*size)`: a new tensor of that shape (zero-filled: eingrad never hands out
/// uninitialised memory).
///
/// ```python
/// >>> eingrad.empty(2, 3).shape
/// (2, 3)
/// ```
#[pyfunction]
#[pyo3(signature = (*size, dtype=None, device=None, requires_grad=false))]
fn empty(
    size: &Bound<'_, PyTuple>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    check_device(device, "empty")?;
    let shape = shape_args(size, "empty(size)")?;
    leaf(
        Tensor::zeros(&shape, factory_dtype(dtype, "empty(dtype=)")?),
        requires_grad,
    )
}

/// `empty_like(input)`: a new zero-filled tensor of `input`'s shape and dtype.
///
/// ```python
/// >>> eingrad.empty_like(eingrad.ones(3, dtype=eingrad.float64)).dtype
/// eingrad.float64
/// ```
#[pyfunction]
#[pyo3(signature = (input, dtype=None, device=None, requires_grad=false))]
fn empty_like(
    input: &PyTensor,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<PyTensor> {
    check_device(device, "empty_like")?;
    let d = like_dtype(input, dtype, "empty_like(dtype=)")?;
    leaf(Tensor::zeros(input.tensor().dims(), d), requires_grad)
}

/// `is_tensor(obj)`: whether `obj` is an eingrad tensor (or a subclass, like `Parameter`).
///
/// ```python
/// >>> eingrad.is_tensor(eingrad.ones(1)), eingrad.is_tensor([1.0])
/// (True, False)
/// ```
#[pyfunction]
fn is_tensor(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyTensor>()
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    for f in [
        wrap_pyfunction!(empty, m)?,
        wrap_pyfunction!(empty_like, m)?,
        wrap_pyfunction!(is_tensor, m)?,
    ] {
        m.add_function(f)?;
    }
    let cls = m.py().get_type::<PyTensor>();
    for name in ["numel", "detach"] {
        // `eingrad.numel(x)` is `Tensor.numel(x)`, as in PyTorch.
        m.add(name, cls.getattr(name)?)?;
    }
    m.add_function(wrap_pyfunction!(manual_seed, m)?)?;
    m.add_class::<PyTensor>()?;
    m.add_class::<PyDType>()?;
    m.add("float32", PyDType::new(DType::F32))?;
    m.add("float64", PyDType::new(DType::F64))?;
    m.add("float", PyDType::new(DType::F32))?;
    m.add("double", PyDType::new(DType::F64))?;
    for f in [
        wrap_pyfunction!(tensor, m)?,
        wrap_pyfunction!(from_numpy, m)?,
        wrap_pyfunction!(zeros, m)?,
        wrap_pyfunction!(ones, m)?,
        wrap_pyfunction!(full, m)?,
        wrap_pyfunction!(arange, m)?,
        wrap_pyfunction!(linspace, m)?,
        wrap_pyfunction!(eye, m)?,
        wrap_pyfunction!(randn, m)?,
        wrap_pyfunction!(rand, m)?,
        wrap_pyfunction!(zeros_like, m)?,
        wrap_pyfunction!(ones_like, m)?,
        wrap_pyfunction!(full_like, m)?,
        wrap_pyfunction!(randn_like, m)?,
        wrap_pyfunction!(rand_like, m)?,
        wrap_pyfunction!(matmul_fn, m)?,
    ] {
        m.add_function(f)?;
    }
    Ok(())
}
