//! Matrix and vector products under PyTorch's names (`matmul`, `mm`, `bmm`, `dot`, `outer`,
//! `tensordot`), each one einsum, as methods and as `eingrad.X(input, other)`.

use crate::tensor::{matmul, maybe_detach, wrap, PyTensor};
use eingrad::{einsum, Tensor};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// Labels for einsum patterns built here (up to 52 dims in all).
const LABELS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Checks that `t` has `rank` dims for `op`'s argument `arg`.
fn want_rank(t: &Tensor, rank: usize, op: &str, arg: &str) -> PyResult<()> {
    if t.rank() == rank {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "{op}: {arg} must have {rank} dims, got shape {:?}",
            t.dims()
        )))
    }
}

/// Runs `pattern` on two operands, releasing the GIL for big ones.
fn contract(py: Python<'_>, pattern: &str, a: &Tensor, b: &Tensor) -> PyResult<PyTensor> {
    wrap(maybe_detach(py, a.numel().max(b.numel()), || {
        einsum(pattern, &[a, b])
    }))
}

#[pymethods]
impl PyTensor {
    /// `a.matmul(b)`: `a @ b` (NumPy's rules: 1-D operands are vectors, leading dims batch
    /// and broadcast).
    ///
    /// ```python
    /// >>> eingrad.ones(2, 3).matmul(eingrad.ones(3)).tolist()
    /// [3.0, 3.0]
    /// ```
    #[pyo3(name = "matmul")]
    fn products_matmul(&self, py: Python<'_>, other: &PyTensor) -> PyResult<PyTensor> {
        let (a, b) = (self.tensor(), other.tensor());
        wrap(maybe_detach(py, a.numel().max(b.numel()), || {
            matmul(&a, &b)
        }))
    }

    /// `a.mm(b)`: the product of two matrices (2-D only, as in PyTorch).
    ///
    /// ```python
    /// >>> eingrad.eye(2).mm(eingrad.tensor([[1., 2.], [3., 4.]])).tolist()
    /// [[1.0, 2.0], [3.0, 4.0]]
    /// ```
    #[pyo3(name = "mm")]
    fn products_mm(&self, py: Python<'_>, mat2: &PyTensor) -> PyResult<PyTensor> {
        let (a, b) = (self.tensor(), mat2.tensor());
        want_rank(&a, 2, "mm", "input")?;
        want_rank(&b, 2, "mm", "mat2")?;
        contract(py, "ij,jk->ik", &a, &b)
    }

    /// `a.bmm(b)`: batched matrix products of two 3-D tensors with the same batch size.
    ///
    /// ```python
    /// >>> eingrad.ones(4, 2, 3).bmm(eingrad.ones(4, 3, 5)).shape
    /// (4, 2, 5)
    /// ```
    #[pyo3(name = "bmm")]
    fn products_bmm(&self, py: Python<'_>, mat2: &PyTensor) -> PyResult<PyTensor> {
        let (a, b) = (self.tensor(), mat2.tensor());
        want_rank(&a, 3, "bmm", "input")?;
        want_rank(&b, 3, "bmm", "mat2")?;
        if a.dims()[0] != b.dims()[0] {
            return Err(PyValueError::new_err(format!(
                "bmm: batch sizes differ: input {:?}, mat2 {:?}",
                a.dims(),
                b.dims()
            )));
        }
        contract(py, "bij,bjk->bik", &a, &b)
    }

    /// `a.dot(b)`: the inner product of two 1-D tensors of the same length (a 0-d tensor).
    ///
    /// ```python
    /// >>> eingrad.tensor([1., 2.]).dot(eingrad.tensor([3., 4.])).item()
    /// 11.0
    /// ```
    #[pyo3(name = "dot")]
    fn products_dot(&self, py: Python<'_>, other: &PyTensor) -> PyResult<PyTensor> {
        let (a, b) = (self.tensor(), other.tensor());
        want_rank(&a, 1, "dot", "input")?;
        want_rank(&b, 1, "dot", "other")?;
        contract(py, "i,i->", &a, &b)
    }

    /// `a.outer(b)`: the outer product of two 1-D tensors.
    ///
    /// ```python
    /// >>> eingrad.tensor([1., 2.]).outer(eingrad.tensor([1., 10., 100.])).tolist()
    /// [[1.0, 10.0, 100.0], [2.0, 20.0, 200.0]]
    /// ```
    #[pyo3(name = "outer")]
    fn products_outer(&self, py: Python<'_>, vec2: &PyTensor) -> PyResult<PyTensor> {
        let (a, b) = (self.tensor(), vec2.tensor());
        want_rank(&a, 1, "outer", "input")?;
        want_rank(&b, 1, "outer", "vec2")?;
        contract(py, "i,j->ij", &a, &b)
    }
}

/// The dims `tensordot` contracts: `dims` as an int n (the last n of `a` with the first n of
/// `b`) or a pair of dim lists.
fn tensordot_dims(
    dims: &Bound<'_, PyAny>,
    ra: usize,
    rb: usize,
) -> PyResult<(Vec<usize>, Vec<usize>)> {
    let norm = |d: isize, r: usize, which: &str| -> PyResult<usize> {
        let i = if d < 0 { d + r as isize } else { d };
        if i < 0 || i >= r as isize {
            return Err(PyValueError::new_err(format!(
                "tensordot: dim {d} out of range for {which} with {r} dims"
            )));
        }
        Ok(i as usize)
    };
    if let Ok(n) = dims.extract::<usize>() {
        if n > ra || n > rb {
            return Err(PyValueError::new_err(format!(
                "tensordot: dims={n} is more than the operands' dims ({ra} and {rb})"
            )));
        }
        return Ok(((ra - n..ra).collect(), (0..n).collect()));
    }
    let pair: (Vec<isize>, Vec<isize>) = dims.extract().map_err(|_| {
        PyTypeError::new_err("tensordot: dims must be an int or a pair of lists of dims")
    })?;
    if pair.0.len() != pair.1.len() {
        return Err(PyValueError::new_err(format!(
            "tensordot: dims lists differ in length: {:?} and {:?}",
            pair.0, pair.1
        )));
    }
    let da = pair
        .0
        .iter()
        .map(|&d| norm(d, ra, "a"))
        .collect::<PyResult<Vec<_>>>()?;
    let db = pair
        .1
        .iter()
        .map(|&d| norm(d, rb, "b"))
        .collect::<PyResult<Vec<_>>>()?;
    Ok((da, db))
}

/// `tensordot(a, b, dims=2)`: sums the products over the given dims of `a` and `b`; the
/// result has `a`'s free dims, then `b`'s.
///
/// ```python
/// >>> eingrad.tensordot(eingrad.ones(2, 3, 4), eingrad.ones(3, 4, 5), dims=2).shape
/// (2, 5)
/// ```
#[pyfunction]
#[pyo3(signature = (a, b, dims=None))]
fn tensordot(
    py: Python<'_>,
    a: &PyTensor,
    b: &PyTensor,
    dims: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyTensor> {
    let (ta, tb) = (a.tensor(), b.tensor());
    let (ra, rb) = (ta.rank(), tb.rank());
    if ra + rb > LABELS.len() {
        return Err(PyValueError::new_err(format!(
            "tensordot: at most {} dims in all, got {ra} + {rb}",
            LABELS.len()
        )));
    }
    let two = 2usize.into_pyobject(py)?.into_any();
    let (da, db) = tensordot_dims(dims.unwrap_or(&two), ra, rb)?;
    let mut la: Vec<u8> = LABELS[..ra].to_vec();
    let mut lb: Vec<u8> = LABELS[ra..ra + rb].to_vec();
    for (&i, &j) in da.iter().zip(&db) {
        if ta.dims()[i] != tb.dims()[j] {
            return Err(PyValueError::new_err(format!(
                "tensordot: dim {i} of a (size {}) and dim {j} of b (size {}) differ",
                ta.dims()[i],
                tb.dims()[j]
            )));
        }
        lb[j] = la[i];
    }
    let out: Vec<u8> = (0..ra)
        .filter(|i| !da.contains(i))
        .map(|i| la[i])
        .chain((0..rb).filter(|j| !db.contains(j)).map(|j| lb[j]))
        .collect();
    la.extend_from_slice(b",");
    la.extend_from_slice(&lb);
    la.extend_from_slice(b"->");
    la.extend_from_slice(&out);
    let pattern: String = la.iter().map(|&c| c as char).collect();
    contract(py, &pattern, &ta, &tb)
}

/// Registers `tensordot` and the function forms of the product methods.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(tensordot, m)?)?;
    let cls = m.py().get_type::<PyTensor>();
    for name in ["mm", "bmm", "dot", "outer"] {
        // The method itself: `eingrad.mm(a, b)` calls `Tensor.mm(a, b)`.
        m.add(name, cls.getattr(name)?)?;
    }
    Ok(())
}
