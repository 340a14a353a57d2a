//! The native half of `eingrad.nn`: the functional ops its layers call (`linear`, `conv1d`,
//! `pad`, activations, `softmax`, `layer_norm`, `embedding`, `dropout`, the losses), the
//! in-place initialisers of `eingrad.nn.init`, and the few tensor helpers the pure-Python
//! `Module` and `Parameter` need (marking a leaf as requiring grad, copying a state-dict value
//! into a parameter in place, clearing gradients).
//!
//! Everything is registered under a leading underscore (`_nn_linear`, ...): the Python module
//! `eingrad.nn.functional` wraps each with PyTorch's signature and docstring.

use crate::convert::short_repr;
use crate::errors::IntoPy;
use crate::tensor::{maybe_detach, seed_arg, wrap, PyTensor};
use eingrad::nn::init;
use eingrad::nn::Reduction;
use eingrad::{Error, Tensor};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyString};

/// A `reduction=` argument: `"mean"`, `"sum"` or `"none"`.
fn reduction_arg(reduction: &str, op: &str) -> PyResult<Reduction> {
    match reduction {
        "mean" => Ok(Reduction::Mean),
        "sum" => Ok(Reduction::Sum),
        "none" => Ok(Reduction::None),
        other => Err(PyValueError::new_err(format!(
            "{op}: reduction must be 'mean', 'sum' or 'none', got {other:?}"
        ))),
    }
}

/// `float32` / `float64`, for messages.
fn dtype_name(d: eingrad::DType) -> &'static str {
    match d {
        eingrad::DType::F32 => "float32",
        eingrad::DType::F64 => "float64",
    }
}

/// An eingrad `InvalidArgument` error for `op`'s argument `arg`.
fn arg_err(op: &'static str, arg: &'static str, msg: String) -> Error {
    Error::InvalidArgument { op, arg, msg }
}

/// Reads integer class indices / ids from a tensor (whole numbers stored as floats), a NumPy
/// array or nested lists: the values row-major and the shape. Each must be a whole number
/// (negative values are kept, for `ignore_index`).
fn int_values(obj: &Bound<'_, PyAny>, op: &str, arg: &str) -> PyResult<(Vec<i64>, Vec<usize>)> {
    let (vals, shape) = if let Ok(t) = obj.cast::<PyTensor>() {
        let t = t.get().tensor();
        (t.to_vec_f64(), t.dims().to_vec())
    } else if obj.is_instance_of::<PyInt>() {
        (vec![obj.extract::<f64>()?], vec![])
    } else if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "{op}: {arg} must hold integers, got the string {}",
            short_repr(obj)
        )));
    } else {
        let np = obj.py().import("numpy")?;
        let arr = np.call_method1("asarray", (obj,)).map_err(|e| {
            PyTypeError::new_err(format!(
                "{op}: {arg} must be a tensor, an array or a list of integers, got {}: {e}",
                short_repr(obj)
            ))
        })?;
        let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
        if !matches!(kind.as_str(), "i" | "u" | "f" | "b") {
            return Err(PyTypeError::new_err(format!(
                "{op}: {arg} must hold integers, got {}",
                short_repr(obj)
            )));
        }
        let shape: Vec<usize> = arr.getattr("shape")?.extract()?;
        let flat = arr
            .call_method1("astype", ("float64",))?
            .call_method0("ravel")?;
        let vals: Vec<f64> = flat.call_method0("tolist")?.extract()?;
        (vals, shape)
    };
    let mut out = Vec::with_capacity(vals.len());
    for (i, v) in vals.into_iter().enumerate() {
        if !(v.is_finite() && v.fract() == 0.0) {
            return Err(PyValueError::new_err(format!(
                "{op}: {arg} must hold whole numbers, element {i} is {v}"
            )));
        }
        out.push(v as i64);
    }
    Ok((out, shape))
}

/// `dim` (possibly negative) as an index into `rank` dims.
fn resolve_dim(dim: isize, rank: usize, op: &str) -> PyResult<usize> {
    let r = rank as isize;
    let d = if dim < 0 { dim + r } else { dim };
    if d < 0 || d >= r.max(1) {
        return Err(pyo3::exceptions::PyIndexError::new_err(format!(
            "{op}: dim {dim} is out of range for a tensor of rank {rank}"
        )));
    }
    Ok(d as usize)
}

// ---- Parameters and module helpers ----------------------------------------------------

/// The tensor an `nn.Parameter(data)` stands for: a leaf (no history) sharing `data`'s
/// storage, contiguous and owning its buffer (so optimizers can update it in place).
#[pyfunction]
fn _nn_param_data(data: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
    let t = crate::convert::tensor_from_any(data, None)?.detach();
    let t = if t.is_contiguous() && t.layout().offset() == 0 {
        t
    } else {
        t.contiguous().py_err()?.detach()
    };
    Ok(PyTensor::new(t))
}

/// Sets the leaf flag `requires_grad` of `t` in place (the tensor object is unchanged).
#[pyfunction]
fn _nn_requires_grad_(t: &PyTensor, requires_grad: bool) -> PyResult<()> {
    let inner = t.tensor();
    if !inner.is_leaf() && !requires_grad {
        return Err(PyRuntimeError::new_err(
            "requires_grad_: cannot turn off requires_grad on a tensor with history (detach it)",
        ));
    }
    let _ = inner.requires_grad_(requires_grad);
    Ok(())
}

/// Copies `src`'s values into `dst` in place (for `load_state_dict`); `name` is used in the
/// error messages.
#[pyfunction]
fn _nn_copy_(py: Python<'_>, dst: &PyTensor, src: &PyTensor, name: &str) -> PyResult<()> {
    let (d, s) = (dst.tensor(), src.tensor());
    if d.dims() != s.dims() {
        return Err(PyRuntimeError::new_err(format!(
            "error loading {name:?}: the checkpoint has shape {:?}, the module's parameter has \
             shape {:?}",
            s.dims(),
            d.dims()
        )));
    }
    let s = if s.dtype() != d.dtype() {
        s.to_dtype(d.dtype()).py_err()?
    } else {
        s
    };
    if d.is_contiguous() && d.layout().offset() == 0 {
        let n = d.numel();
        maybe_detach(py, n, || d.copy_from(&s)).py_err()
    } else {
        Err(PyRuntimeError::new_err(format!(
            "error loading {name:?}: the module's tensor is a strided view and cannot be \
             written in place"
        )))
    }
}

/// Rebinds the Python tensor `t` to `src`'s data (an in-place op done out of place, or a
/// dtype change of a module's parameter that keeps the Parameter object). With `check_leaf`,
/// a leaf that requires grad is refused, as PyTorch refuses in-place ops on one.
#[pyfunction]
#[pyo3(signature = (t, src, check_leaf=true))]
fn _nn_rebind(t: &PyTensor, src: &PyTensor, check_leaf: bool) -> PyResult<()> {
    let old = t.tensor();
    if check_leaf && old.is_leaf() && old.requires_grad() {
        return Err(PyRuntimeError::new_err(
            "a leaf tensor that requires grad is being used in an in-place operation",
        ));
    }
    let new = src.tensor();
    let new = if check_leaf {
        new
    } else {
        // a parameter stays a leaf with its requires_grad flag
        new.detach().requires_grad_(old.requires_grad())
    };
    t.set_tensor(new);
    Ok(())
}

/// Clears the gradients of `params` (`set_to_none`), or fills them with zeros in place.
#[pyfunction]
#[pyo3(signature = (params, set_to_none=true))]
fn _nn_zero_grad(params: &Bound<'_, PyAny>, set_to_none: bool) -> PyResult<()> {
    for p in params.try_iter()? {
        let p = p?;
        let t = p
            .cast::<PyTensor>()
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "zero_grad: expected tensors, got {}",
                    short_repr(&p)
                ))
            })?
            .get()
            .tensor();
        match t.grad() {
            None => {}
            Some(_) if set_to_none => t.zero_grad(),
            Some(g) => t
                .set_grad(Some(Tensor::zeros(g.dims(), g.dtype()).py_err()?))
                .py_err()?,
        }
    }
    Ok(())
}

// ---- Functional ops --------------------------------------------------------------------

/// `linear(input, weight, bias=None)`: `input @ weight.T + bias` over any leading dims.
#[pyfunction]
#[pyo3(signature = (input, weight, bias=None))]
fn _nn_linear(
    py: Python<'_>,
    input: &PyTensor,
    weight: &PyTensor,
    bias: Option<&PyTensor>,
) -> PyResult<PyTensor> {
    let (x, w) = (input.tensor(), weight.tensor());
    let b = bias.map(|b| b.tensor());
    if w.rank() != 2 && w.rank() != 1 {
        return Err(PyValueError::new_err(format!(
            "linear: weight must have shape (out_features, in_features), got {:?}",
            w.dims()
        )));
    }
    let in_features = w.dims()[w.rank() - 1];
    if x.rank() == 0 || x.dims()[x.rank() - 1] != in_features {
        return Err(PyValueError::new_err(format!(
            "linear: input of shape {:?} does not match weight of shape {:?} (the input's last \
             dim must be in_features = {in_features})",
            x.dims(),
            w.dims()
        )));
    }
    if x.dtype() != w.dtype() {
        return Err(PyTypeError::new_err(format!(
            "linear: input dtype {} differs from weight dtype {}",
            dtype_name(x.dtype()),
            dtype_name(w.dtype())
        )));
    }
    if let Some(b) = &b {
        let want: &[usize] = if w.rank() == 2 { &w.dims()[..1] } else { &[] };
        if b.dims() != want && b.numel() != 1 {
            return Err(PyValueError::new_err(format!(
                "linear: bias must have shape {want:?} (out_features), got {:?}",
                b.dims()
            )));
        }
    }
    let pattern = if w.rank() == 2 {
        "...i,oi->...o"
    } else {
        "...i,i->..."
    };
    let n = x.numel().max(w.numel());
    wrap(maybe_detach(py, n, || {
        let y = eingrad::einsum(pattern, &[&x, &w])?;
        match &b {
            Some(b) => y.add(b),
            None => Ok(y),
        }
    }))
}

/// Elementwise activations by name: relu, gelu, gelu_tanh, silu, sigmoid, tanh, softplus,
/// logsigmoid, and leaky_relu / elu with `alpha` (their slope / scale).
#[pyfunction]
#[pyo3(signature = (input, name, alpha=0.01))]
fn _nn_activation(py: Python<'_>, input: &PyTensor, name: &str, alpha: f64) -> PyResult<PyTensor> {
    let x = input.tensor();
    let f: fn(&Tensor, f64) -> eingrad::Result<Tensor> = match name {
        "relu" => |x, _| x.relu(),
        "gelu" => |x, _| x.gelu(),
        "gelu_tanh" => |x, _| x.gelu_tanh(),
        "silu" => |x, _| x.silu(),
        "sigmoid" => |x, _| x.sigmoid(),
        "tanh" => |x, _| x.tanh(),
        "softplus" => |x, _| x.softplus(),
        "logsigmoid" => |x, _| x.logsigmoid(),
        // max(x, 0) + α·min(x, 0) = relu(x) − α·relu(−x)
        "leaky_relu" => |x, a| x.relu()?.sub(&x.neg()?.relu()?.mul_scalar(a)?),
        // x for x > 0, α(eˣ − 1) otherwise = relu(x) + α·(exp(−relu(−x)) − 1)
        "elu" => |x, a| {
            x.relu()?.add(
                &x.neg()?
                    .relu()?
                    .neg()?
                    .exp()?
                    .add_scalar(-1.0)?
                    .mul_scalar(a)?,
            )
        },
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown activation {other:?}"
            )))
        }
    };
    wrap(maybe_detach(py, x.numel(), || f(&x, alpha)))
}

/// `softmax(input, dim)` or, with `log`, `log_softmax(input, dim)`.
#[pyfunction]
#[pyo3(signature = (input, dim, log=false))]
fn _nn_softmax(py: Python<'_>, input: &PyTensor, dim: isize, log: bool) -> PyResult<PyTensor> {
    let x = input.tensor();
    let op = if log { "log_softmax" } else { "softmax" };
    resolve_dim(dim, x.rank(), op)?;
    let x0 = x.rank() == 0;
    wrap(maybe_detach(py, x.numel(), || {
        // A 0-d input is treated as one element (softmax 1, log_softmax 0), as in PyTorch.
        let xs = if x0 { x.reshape(&[1])? } else { x.clone() };
        let d = if x0 { 0 } else { dim };
        let y = if log {
            xs.log_softmax(d)?
        } else {
            xs.softmax(d)?
        };
        if x0 {
            y.reshape(&[])
        } else {
            Ok(y)
        }
    }))
}

/// `layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5)`.
#[pyfunction]
#[pyo3(signature = (input, normalized_shape, weight=None, bias=None, eps=1e-5))]
fn _nn_layer_norm(
    py: Python<'_>,
    input: &PyTensor,
    normalized_shape: &Bound<'_, PyAny>,
    weight: Option<&PyTensor>,
    bias: Option<&PyTensor>,
    eps: f64,
) -> PyResult<PyTensor> {
    let x = input.tensor();
    let shape: Vec<usize> = if let Ok(n) = normalized_shape.extract::<usize>() {
        vec![n]
    } else {
        crate::convert::shape_from_seq(normalized_shape, "layer_norm(normalized_shape)")?
    };
    let r = x.rank();
    if shape.is_empty() || shape.len() > r || x.dims()[r - shape.len()..] != shape[..] {
        return Err(PyValueError::new_err(format!(
            "layer_norm: input of shape {:?} does not end in normalized_shape {shape:?}",
            x.dims()
        )));
    }
    let (w, b) = (weight.map(|w| w.tensor()), bias.map(|b| b.tensor()));
    wrap(maybe_detach(py, x.numel(), || {
        x.layer_norm(shape.len(), w.as_ref(), b.as_ref(), eps)
    }))
}

/// `embedding(input, weight, padding_idx=None)`: the rows of `weight` picked by the integer
/// ids in `input` (a tensor, array or list); the result has shape `input.shape +
/// (embedding_dim,)`. Rows looked up at `padding_idx` get no gradient (as in PyTorch).
#[pyfunction]
#[pyo3(signature = (input, weight, padding_idx=None))]
fn _nn_embedding(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    weight: &PyTensor,
    padding_idx: Option<i64>,
) -> PyResult<PyTensor> {
    let w = weight.tensor();
    if w.rank() != 2 {
        return Err(PyValueError::new_err(format!(
            "embedding: weight must have shape (num_embeddings, embedding_dim), got {:?}",
            w.dims()
        )));
    }
    let (ids, shape) = int_values(input, "embedding", "input")?;
    let rows = w.dims()[0] as i64;
    let mut idx = Vec::with_capacity(ids.len());
    for (i, &id) in ids.iter().enumerate() {
        if id < 0 || id >= rows {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "embedding: index {id} (element {i} of input) is out of range for a table of \
                 {rows} rows"
            )));
        }
        idx.push(id as usize);
    }
    let padding_idx = match padding_idx {
        Some(p) if p < 0 => Some(p + rows),
        p => p,
    };
    if let Some(p) = padding_idx {
        if p < 0 || p >= rows {
            return Err(PyValueError::new_err(format!(
                "embedding: padding_idx {p} is out of range for a table of {rows} rows"
            )));
        }
    }
    let pad_mask: Option<Vec<f64>> = padding_idx.and_then(|p| {
        let m: Vec<f64> = ids
            .iter()
            .map(|&id| if id == p { 0.0 } else { 1.0 })
            .collect();
        m.contains(&0.0).then_some(m)
    });
    let mut out_shape = shape;
    out_shape.push(w.dims()[1]);
    wrap(maybe_detach(py, idx.len() * w.dims()[1], || {
        let picked = w.index_select(0, &idx)?;
        let picked = match &pad_mask {
            // rows·m + detach(rows)·(1 − m): the same values, no gradient at padding_idx
            Some(m) => {
                let keep = Tensor::from_f64s(m, &[m.len(), 1], w.dtype())?;
                let drop = keep.rsub_scalar(1.0)?;
                picked.mul(&keep)?.add(&picked.detach().mul(&drop)?)?
            }
            None => picked,
        };
        picked.reshape(&out_shape)
    }))
}

/// `dropout(input, p, training)`: zeroes each element with probability `p` (a fresh mask
/// from the global generator, which `eingrad.manual_seed` seeds) and scales the rest by
/// `1/(1 − p)`; the input itself when not training.
#[pyfunction]
#[pyo3(signature = (input, p=0.5, training=true))]
fn _nn_dropout(py: Python<'_>, input: &PyTensor, p: f64, training: bool) -> PyResult<PyTensor> {
    if !(0.0..=1.0).contains(&p) {
        return Err(PyValueError::new_err(format!(
            "dropout: p must be a probability in [0, 1], got {p}"
        )));
    }
    let x = input.tensor();
    if !training || p == 0.0 {
        return Ok(PyTensor::new(x));
    }
    if p == 1.0 {
        return wrap(x.mul_scalar(0.0));
    }
    let seed = seed_arg(None);
    wrap(maybe_detach(py, x.numel(), || {
        let u = Tensor::rand(x.dims(), x.dtype(), seed)?;
        let mask = u.ge_scalar(p)?.mul_scalar(1.0 / (1.0 - p))?;
        x.mul(&mask)
    }))
}

/// `mse_loss(input, target, reduction='mean')`.
#[pyfunction]
#[pyo3(signature = (input, target, reduction="mean"))]
fn _nn_mse_loss(
    py: Python<'_>,
    input: &PyTensor,
    target: &PyTensor,
    reduction: &str,
) -> PyResult<PyTensor> {
    let r = reduction_arg(reduction, "mse_loss")?;
    let (x, y) = (input.tensor(), target.tensor());
    if x.dims() != y.dims() {
        return Err(PyValueError::new_err(format!(
            "mse_loss: input of shape {:?} and target of shape {:?} must have the same shape",
            x.dims(),
            y.dims()
        )));
    }
    let y = if y.dtype() != x.dtype() {
        y.to_dtype(x.dtype()).py_err()?
    } else {
        y
    };
    wrap(maybe_detach(py, x.numel(), || {
        eingrad::nn::mse_loss(&x, &y, r)
    }))
}

/// `binary_cross_entropy_with_logits(input, target, reduction='mean')`.
#[pyfunction]
#[pyo3(signature = (input, target, reduction="mean"))]
fn _nn_bce_with_logits(
    py: Python<'_>,
    input: &PyTensor,
    target: &PyTensor,
    reduction: &str,
) -> PyResult<PyTensor> {
    let r = reduction_arg(reduction, "binary_cross_entropy_with_logits")?;
    let (x, y) = (input.tensor(), target.tensor());
    if x.dims() != y.dims() {
        return Err(PyValueError::new_err(format!(
            "binary_cross_entropy_with_logits: input of shape {:?} and target of shape {:?} \
             must have the same shape",
            x.dims(),
            y.dims()
        )));
    }
    let y = if y.dtype() != x.dtype() {
        y.to_dtype(x.dtype()).py_err()?
    } else {
        y
    };
    wrap(maybe_detach(py, x.numel(), || {
        eingrad::nn::binary_cross_entropy_with_logits(&x, &y, r)
    }))
}

/// Logits `(N, C, d1, ...)` (or `(C,)`) as rows `(M, C)`, with the shape of the per-row
/// results `(N, d1, ...)` (or `()`).
fn logits_rows(x: &Tensor, op: &'static str) -> eingrad::Result<(Tensor, Vec<usize>)> {
    match x.rank() {
        0 => Err(arg_err(
            op,
            "input",
            "must have shape (N, C), (C,) or (N, C, d1, ...), got a 0-d tensor".into(),
        )),
        1 => Ok((x.unsqueeze(0)?, vec![])),
        2 => Ok((x.clone(), vec![x.dims()[0]])),
        r => {
            // (N, C, d...) → (N, d..., C) → (M, C)
            let mut perm: Vec<usize> = vec![0];
            perm.extend(2..r);
            perm.push(1);
            let c = x.dims()[1];
            let mut out: Vec<usize> = vec![x.dims()[0]];
            out.extend_from_slice(&x.dims()[2..]);
            let m: usize = out.iter().product();
            Ok((x.permute(&perm)?.reshape(&[m, c])?, out))
        }
    }
}

/// `cross_entropy(input, target, reduction='mean', ignore_index=-100, label_smoothing=0)`:
/// `target` holds class indices (shape `input.shape` without the class dim 1) or, when it has
/// `input`'s shape and is a tensor, class probabilities.
#[pyfunction]
#[pyo3(signature = (input, target, reduction="mean", ignore_index=-100, label_smoothing=0.0))]
fn _nn_cross_entropy(
    py: Python<'_>,
    input: &PyTensor,
    target: &Bound<'_, PyAny>,
    reduction: &str,
    ignore_index: i64,
    label_smoothing: f64,
) -> PyResult<PyTensor> {
    const OP: &str = "cross_entropy";
    let r = reduction_arg(reduction, OP)?;
    if !(0.0..=1.0).contains(&label_smoothing) {
        return Err(PyValueError::new_err(format!(
            "cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}"
        )));
    }
    let x = input.tensor();
    let (rows, out_shape) = logits_rows(&x, OP).py_err()?;
    let c = rows.dims()[1];
    // Class probabilities: a tensor target of the input's shape.
    if let Ok(t) = target.cast::<PyTensor>() {
        let t = t.get().tensor();
        if t.dims() == x.dims() && x.rank() >= 1 {
            let t = if t.dtype() != x.dtype() {
                t.to_dtype(x.dtype()).py_err()?
            } else {
                t
            };
            return wrap(maybe_detach(py, x.numel(), || {
                let (trows, _) = logits_rows(&t, OP)?;
                let trows = if label_smoothing > 0.0 {
                    trows
                        .mul_scalar(1.0 - label_smoothing)?
                        .add_scalar(label_smoothing / c as f64)?
                } else {
                    trows
                };
                let per = rows
                    .log_softmax(-1)?
                    .mul(&trows)?
                    .sum(&[-1], false)?
                    .neg()?;
                let per = per.reshape(&out_shape)?;
                match r {
                    Reduction::Mean => per.mean_all(),
                    Reduction::Sum => per.sum_all(),
                    Reduction::None => Ok(per),
                }
            }));
        }
    }
    let (ids, tshape) = int_values(target, OP, "target")?;
    if tshape != out_shape {
        return Err(PyValueError::new_err(format!(
            "cross_entropy: target of shape {tshape:?} does not match input of shape {:?} \
             (expected class indices of shape {out_shape:?}, or probabilities of shape {:?})",
            x.dims(),
            x.dims()
        )));
    }
    let mut keep = Vec::with_capacity(ids.len());
    let mut classes = Vec::with_capacity(ids.len());
    for (i, &t) in ids.iter().enumerate() {
        if t == ignore_index {
            keep.push(false);
            classes.push(0usize);
        } else if t < 0 || t >= c as i64 {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "cross_entropy: target {t} (element {i}) is out of range for {c} classes"
            )));
        } else {
            keep.push(true);
            classes.push(t as usize);
        }
    }
    let all_kept = keep.iter().all(|&k| k);
    wrap(maybe_detach(py, x.numel(), || {
        let smooth = |per: Tensor, rows: &Tensor| -> eingrad::Result<Tensor> {
            if label_smoothing == 0.0 {
                return Ok(per);
            }
            // (1 − ε)·nll + ε·mean_c(−log_softmax)
            let uniform = rows.log_softmax(-1)?.mean(&[-1], false)?.neg()?;
            per.mul_scalar(1.0 - label_smoothing)?
                .add(&uniform.mul_scalar(label_smoothing)?)
        };
        if all_kept && label_smoothing == 0.0 {
            let l = eingrad::nn::cross_entropy(&rows, &classes, r)?;
            return if r == Reduction::None {
                l.reshape(&out_shape)
            } else {
                Ok(l)
            };
        }
        let per = eingrad::nn::cross_entropy(&rows, &classes, Reduction::None)?;
        let per = smooth(per, &rows)?;
        let mask_v: Vec<f64> = keep.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
        let mask = Tensor::from_f64s(&mask_v, &[mask_v.len()], x.dtype())?;
        let per = per.mul(&mask)?;
        match r {
            Reduction::None => per.reshape(&out_shape),
            Reduction::Sum => per.sum_all(),
            Reduction::Mean => {
                // the mean over the targets that are not ignored (NaN when all are, as torch)
                let kept = keep.iter().filter(|&&k| k).count();
                per.sum_all()?.div_scalar(kept as f64)
            }
        }
    }))
}

/// `nll_loss(input, target, reduction='mean', ignore_index=-100)`: `−input[n, target[n]]`
/// for log-probabilities `input` `(N, C)` (or `(C,)`, or `(N, C, d1, ...)`).
#[pyfunction]
#[pyo3(signature = (input, target, reduction="mean", ignore_index=-100))]
fn _nn_nll_loss(
    py: Python<'_>,
    input: &PyTensor,
    target: &Bound<'_, PyAny>,
    reduction: &str,
    ignore_index: i64,
) -> PyResult<PyTensor> {
    const OP: &str = "nll_loss";
    let r = reduction_arg(reduction, OP)?;
    let x = input.tensor();
    let (rows, out_shape) = logits_rows(&x, OP).py_err()?;
    let c = rows.dims()[1];
    let (ids, tshape) = int_values(target, OP, "target")?;
    if tshape != out_shape {
        return Err(PyValueError::new_err(format!(
            "nll_loss: target of shape {tshape:?} does not match input of shape {:?} (expected \
             {out_shape:?})",
            x.dims()
        )));
    }
    let mut onehot = vec![0.0f64; ids.len() * c];
    let mut kept = 0usize;
    for (i, &t) in ids.iter().enumerate() {
        if t == ignore_index {
            continue;
        }
        if t < 0 || t >= c as i64 {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "nll_loss: target {t} (element {i}) is out of range for {c} classes"
            )));
        }
        onehot[i * c + t as usize] = 1.0;
        kept += 1;
    }
    wrap(maybe_detach(py, x.numel(), || {
        let oh = Tensor::from_f64s(&onehot, &[ids.len(), c], x.dtype())?;
        let per = rows.mul(&oh)?.sum(&[-1], false)?.neg()?;
        match r {
            Reduction::None => per.reshape(&out_shape),
            Reduction::Sum => per.sum_all(),
            Reduction::Mean => per.sum_all()?.div_scalar(kept as f64),
        }
    }))
}

/// `rms_norm(input, normalized_shape, weight=None, eps=None)`: `x / √(mean(x²) + eps) ·
/// weight` over the trailing dims; `eps=None` is the dtype's machine epsilon, as PyTorch.
#[pyfunction]
#[pyo3(signature = (input, normalized_shape, weight=None, eps=None))]
fn _nn_rms_norm(
    py: Python<'_>,
    input: &PyTensor,
    normalized_shape: &Bound<'_, PyAny>,
    weight: Option<&PyTensor>,
    eps: Option<f64>,
) -> PyResult<PyTensor> {
    let x = input.tensor();
    let shape: Vec<usize> = if let Ok(n) = normalized_shape.extract::<usize>() {
        vec![n]
    } else {
        crate::convert::shape_from_seq(normalized_shape, "rms_norm(normalized_shape)")?
    };
    let r = x.rank();
    if shape.is_empty() || shape.len() > r || x.dims()[r - shape.len()..] != shape[..] {
        return Err(PyValueError::new_err(format!(
            "rms_norm: input of shape {:?} does not end in normalized_shape {shape:?}",
            x.dims()
        )));
    }
    if let Some(w) = weight {
        if w.tensor().dims() != shape.as_slice() {
            return Err(PyValueError::new_err(format!(
                "rms_norm: weight must have shape {shape:?}, got {:?}",
                w.tensor().dims()
            )));
        }
    }
    let eps = eps.unwrap_or(match x.dtype() {
        eingrad::DType::F32 => f32::EPSILON as f64,
        eingrad::DType::F64 => f64::EPSILON,
    });
    let dims: Vec<isize> = (-(shape.len() as isize)..0).collect();
    let w = weight.map(|w| w.tensor());
    wrap(maybe_detach(py, x.numel(), || {
        let ms = x.mul(&x)?.mean(&dims, true)?;
        let y = x.mul(&ms.add_scalar(eps)?.rsqrt()?)?;
        match &w {
            Some(w) => y.mul(w),
            None => Ok(y),
        }
    }))
}

/// Causal multi-head self-attention (nanoGPT's `CausalSelfAttention`): `x` `(B, T, C)`, the
/// fused q/k/v projection `c_attn` (C → 3C) and the output projection `c_proj` (C → C), with
/// dropout `dropout` on the attention weights and the output when `training`.
#[pyfunction]
#[pyo3(signature = (x, c_attn_weight, c_attn_bias, c_proj_weight, c_proj_bias, n_head, dropout=0.0, training=false))]
#[allow(clippy::too_many_arguments)]
fn _nn_causal_self_attention(
    py: Python<'_>,
    x: &PyTensor,
    c_attn_weight: &PyTensor,
    c_attn_bias: Option<&PyTensor>,
    c_proj_weight: &PyTensor,
    c_proj_bias: Option<&PyTensor>,
    n_head: usize,
    dropout: f64,
    training: bool,
) -> PyResult<PyTensor> {
    use eingrad::nn::{CausalSelfAttention, Linear, Module};
    let x = x.tensor();
    let params = [
        Some(c_attn_weight.tensor()),
        c_attn_bias.map(|b| b.tensor()),
        Some(c_proj_weight.tensor()),
        c_proj_bias.map(|b| b.tensor()),
    ];
    // The Rust layers mark leaves as requiring grad; a frozen parameter is put back after.
    let frozen: Vec<Tensor> = params
        .iter()
        .flatten()
        .filter(|p| p.is_leaf() && !p.requires_grad())
        .cloned()
        .collect();
    let [aw, ab, pw, pb] = params;
    let build = || -> eingrad::Result<CausalSelfAttention> {
        let aw =
            aw.ok_or_else(|| arg_err("causal_self_attention", "c_attn_weight", "missing".into()))?;
        let pw =
            pw.ok_or_else(|| arg_err("causal_self_attention", "c_proj_weight", "missing".into()))?;
        CausalSelfAttention::from_layers(
            Linear::from_tensors(aw, ab)?,
            Linear::from_tensors(pw, pb)?,
            n_head,
            dropout,
            seed_arg(None),
        )
    };
    let built = build();
    for p in &frozen {
        let _ = p.clone().requires_grad_(false);
    }
    let mut attn = built.py_err()?;
    attn.train(training);
    wrap(maybe_detach(py, x.numel(), || attn.forward(&x)))
}

// ---- init ------------------------------------------------------------------------------

/// A tensor that an initialiser may overwrite in place (contiguous, owning its buffer).
fn init_target(t: &PyTensor, op: &str) -> PyResult<Tensor> {
    let t = t.tensor();
    if !t.is_contiguous() || t.layout().offset() != 0 {
        return Err(PyValueError::new_err(format!(
            "{op}: the tensor (shape {:?}) is a strided view; initialise a contiguous tensor",
            t.dims()
        )));
    }
    Ok(t)
}

/// `init.uniform_(tensor, a, b)` in place, from the global generator.
#[pyfunction]
fn _nn_init_uniform_(tensor: &PyTensor, a: f64, b: f64) -> PyResult<()> {
    let t = init_target(tensor, "uniform_")?;
    init::uniform_(&t, a, b, seed_arg(None)).py_err()
}

/// `init.normal_(tensor, mean, std)` in place, from the global generator.
#[pyfunction]
fn _nn_init_normal_(tensor: &PyTensor, mean: f64, std: f64) -> PyResult<()> {
    let t = init_target(tensor, "normal_")?;
    init::normal_(&t, mean, std, seed_arg(None)).py_err()
}

/// `init.constant_(tensor, val)` in place.
#[pyfunction]
fn _nn_init_constant_(tensor: &PyTensor, val: f64) -> PyResult<()> {
    let t = init_target(tensor, "constant_")?;
    init::constant_(&t, val).py_err()
}

/// `init._calculate_fan_in_and_fan_out(tensor)`: `(fan_in, fan_out)` of a weight of shape
/// `(out, in, *kernel)`.
#[pyfunction]
fn _nn_init_fans(tensor: &PyTensor) -> PyResult<(usize, usize)> {
    init::fans(tensor.tensor().dims()).py_err()
}

/// Registers the `_nn_*` functions.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    for f in [
        wrap_pyfunction!(_nn_param_data, m)?,
        wrap_pyfunction!(_nn_requires_grad_, m)?,
        wrap_pyfunction!(_nn_copy_, m)?,
        wrap_pyfunction!(_nn_zero_grad, m)?,
        wrap_pyfunction!(_nn_rebind, m)?,
        wrap_pyfunction!(_nn_causal_self_attention, m)?,
        wrap_pyfunction!(_nn_rms_norm, m)?,
        wrap_pyfunction!(_nn_linear, m)?,
        wrap_pyfunction!(_nn_activation, m)?,
        wrap_pyfunction!(_nn_softmax, m)?,
        wrap_pyfunction!(_nn_layer_norm, m)?,
        wrap_pyfunction!(_nn_embedding, m)?,
        wrap_pyfunction!(_nn_dropout, m)?,
        wrap_pyfunction!(_nn_mse_loss, m)?,
        wrap_pyfunction!(_nn_bce_with_logits, m)?,
        wrap_pyfunction!(_nn_cross_entropy, m)?,
        wrap_pyfunction!(_nn_nll_loss, m)?,
        wrap_pyfunction!(_nn_init_uniform_, m)?,
        wrap_pyfunction!(_nn_init_normal_, m)?,
        wrap_pyfunction!(_nn_init_constant_, m)?,
        wrap_pyfunction!(_nn_init_fans, m)?,
    ] {
        m.add_function(f)?;
    }
    Ok(())
}
