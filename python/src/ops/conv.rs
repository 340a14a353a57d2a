//! Padding and convolution: the functions `pad` (as `torch.nn.functional.pad`: constant,
//! reflect, replicate, circular) and `conv1d`.

use super::{run, try_vec};
use crate::convert::{dims_arg, short_repr};
use crate::errors::IntoPy;
use crate::tensor::{maybe_detach, PyTensor};
use eingrad::{Conv1dOptions, Padding, Tensor};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// The padding of a conv1d: an int, a 1- or 2-tuple of ints, or `'valid'`, `'same'`,
/// `'causal'`.
fn conv_padding(
    padding: &Bound<'_, PyAny>,
    kernel: usize,
    dilation: usize,
    stride: usize,
) -> PyResult<Padding> {
    if let Ok(s) = padding.extract::<String>() {
        return match s.as_str() {
            "valid" => Ok(Padding::Symmetric(0)),
            "same" => {
                if stride != 1 {
                    return Err(PyValueError::new_err(format!(
                        "conv1d: padding='same' needs stride 1, got stride {stride}"
                    )));
                }
                let total = dilation * kernel.saturating_sub(1);
                Ok(Padding::LeftRight(total / 2, total - total / 2))
            }
            "causal" => Ok(Padding::Causal),
            other => Err(PyValueError::new_err(format!(
                "conv1d: padding must be an int, 'valid', 'same' or 'causal', got {other:?}"
            ))),
        };
    }
    let ints: Vec<i64> = if let Ok(p) = padding.extract::<i64>() {
        vec![p]
    } else {
        padding.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "conv1d: padding must be an int, a tuple of ints or a string, got {}",
                short_repr(padding)
            ))
        })?
    };
    if ints.iter().any(|&p| p < 0) {
        return Err(PyValueError::new_err(format!(
            "conv1d: padding must be non-negative, got {ints:?}"
        )));
    }
    match ints[..] {
        [p] => Ok(Padding::Symmetric(p as usize)),
        [l, r] => Ok(Padding::LeftRight(l as usize, r as usize)),
        _ => Err(PyValueError::new_err(format!(
            "conv1d: padding must have one entry (or two: left, right), got {ints:?}"
        ))),
    }
}

/// Reads an int that torch also accepts as a 1-tuple (`stride=(2,)`).
fn one_int(obj: &Bound<'_, PyAny>, arg: &str) -> PyResult<usize> {
    let v: i64 = if let Ok(v) = obj.extract::<i64>() {
        v
    } else {
        let v: Vec<i64> = obj.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "conv1d: {arg} must be an int, got {}",
                short_repr(obj)
            ))
        })?;
        match v[..] {
            [x] => x,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "conv1d: {arg} must have one entry, got {v:?}"
                )))
            }
        }
    };
    if v < 1 {
        return Err(PyValueError::new_err(format!(
            "conv1d: {arg} must be at least 1, got {v}"
        )));
    }
    Ok(v as usize)
}

/// The index that pad mode `mode` reads for position `p` (may be outside `0..n`).
fn pad_source(mode: &str, p: isize, n: isize) -> isize {
    match mode {
        "replicate" => p.clamp(0, n - 1),
        "circular" => p.rem_euclid(n),
        // reflect: mirror without repeating the edge.
        _ => {
            let period = 2 * (n - 1);
            if period == 0 {
                return 0;
            }
            let q = p.rem_euclid(period);
            if q < n {
                q
            } else {
                period - q
            }
        }
    }
}

/// `torch.nn.functional.pad` on a Rust tensor: `pad` pairs from the last dim backwards,
/// negative amounts crop; `mode` constant, reflect, replicate or circular.
fn pad_impl(x: &Tensor, pad: &[isize], mode: &str, value: f64) -> PyResult<Tensor> {
    if !pad.len().is_multiple_of(2) || pad.len() / 2 > x.rank() {
        return Err(PyValueError::new_err(format!(
            "pad: `pad` must have an even length (pairs from the last dim back), at most 2 × rank ({} for shape {:?}), got {pad:?}",
            2 * x.rank(),
            x.dims()
        )));
    }
    if !matches!(mode, "constant" | "reflect" | "replicate" | "circular") {
        return Err(PyValueError::new_err(format!(
            "pad: mode {mode:?} is not one of 'constant', 'reflect', 'replicate', 'circular'"
        )));
    }
    let rank = x.rank();
    let mut out = x.clone();
    for (k, pair) in pad.chunks(2).enumerate() {
        let dim = rank - 1 - k;
        let (mut before, mut after) = (pair[0], pair[1]);
        // Negative amounts crop first.
        let n = out.dims()[dim] as isize;
        let (crop_b, crop_a) = ((-before).max(0), (-after).max(0));
        if crop_b + crop_a > n {
            return Err(PyValueError::new_err(format!(
                "pad: cropping {pair:?} is more than dim {dim} of size {n}"
            )));
        }
        if crop_b + crop_a > 0 {
            out = out
                .narrow(
                    dim as isize,
                    crop_b as usize,
                    (n - crop_b - crop_a) as usize,
                )
                .py_err()?;
        }
        before = before.max(0);
        after = after.max(0);
        if before == 0 && after == 0 {
            continue;
        }
        let n = out.dims()[dim] as isize;
        if mode == "constant" {
            let mut pads = vec![(0usize, 0usize); rank];
            pads[dim] = (before as usize, after as usize);
            out = out.pad(&pads, value).py_err()?;
            continue;
        }
        if n == 0 || (mode == "reflect" && (before >= n || after >= n)) {
            return Err(PyValueError::new_err(format!(
                "pad: mode {mode:?} needs padding ({before}, {after}) smaller than dim {dim} of size {n}"
            )));
        }
        if mode == "circular" && (before > n || after > n) {
            return Err(PyValueError::new_err(format!(
                "pad: mode 'circular' needs padding ({before}, {after}) at most dim {dim} of size {n}"
            )));
        }
        let mut index = try_vec(0, 0usize, "pad")?;
        index
            .try_reserve_exact((n + before + after) as usize)
            .map_err(|_| PyValueError::new_err(format!("pad: padding {pair:?} is too large")))?;
        index.extend((-before..n + after).map(|p| pad_source(mode, p, n) as usize));
        out = out.index_select(dim as isize, &index).py_err()?;
    }
    Ok(out)
}

/// `pad(input, pad, mode='constant', value=None)` as `torch.nn.functional.pad`: `pad`
/// holds (before, after) pairs from the last dim backwards; negative amounts crop; `mode`
/// 'constant' (with `value`, 0 by default), 'reflect', 'replicate' or 'circular'.
///
/// ```python
/// >>> eingrad.pad(eingrad.ones(1, 2), (1, 0))
/// tensor([[0., 1., 1.]])
/// ```
#[pyfunction]
#[pyo3(signature = (input, pad, mode="constant", value=None))]
pub(super) fn pad(
    py: Python<'_>,
    input: &PyTensor,
    pad: &Bound<'_, PyAny>,
    mode: &str,
    value: Option<f64>,
) -> PyResult<PyTensor> {
    let x = input.tensor();
    let p = dims_arg(pad, "pad(pad)")?;
    if mode != "constant" && value.is_some_and(|v| v != 0.0) {
        return Err(PyValueError::new_err(format!(
            "pad: `value` is only for mode 'constant', not {mode:?}"
        )));
    }
    let v = value.unwrap_or(0.0);
    let out = maybe_detach(py, x.numel(), || pad_impl(&x, &p, mode, v))?;
    Ok(PyTensor::new(out))
}

/// `conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1)` as
/// `torch.nn.functional.conv1d`: input `(batch, c_in, length)`, weight
/// `(c_out, c_in / groups, k)`; `padding` an int, a `(left, right)` pair, 'valid', 'same' or
/// 'causal' (`dilation·(k − 1)` zeros on the left only).
///
/// ```python
/// >>> x = eingrad.tensor([[[1.0, 2.0, 3.0, 4.0]]]); w = eingrad.tensor([[[1.0, -1.0]]])
/// >>> eingrad.conv1d(x, w)
/// tensor([[[-1., -1., -1.]]])
/// ```
#[pyfunction]
#[pyo3(signature = (input, weight, bias=None, stride=None, padding=None, dilation=None, groups=1))]
#[allow(clippy::too_many_arguments)]
pub(super) fn conv1d(
    py: Python<'_>,
    input: &PyTensor,
    weight: &PyTensor,
    bias: Option<&PyTensor>,
    stride: Option<&Bound<'_, PyAny>>,
    padding: Option<&Bound<'_, PyAny>>,
    dilation: Option<&Bound<'_, PyAny>>,
    groups: isize,
) -> PyResult<PyTensor> {
    let (x, w) = (input.tensor(), weight.tensor());
    let stride = stride
        .map(|s| one_int(s, "stride"))
        .transpose()?
        .unwrap_or(1);
    let dilation = dilation
        .map(|s| one_int(s, "dilation"))
        .transpose()?
        .unwrap_or(1);
    if groups < 1 {
        return Err(PyValueError::new_err(format!(
            "conv1d: groups must be at least 1, got {groups}"
        )));
    }
    if w.rank() != 3 {
        return Err(PyValueError::new_err(format!(
            "conv1d: weight must have shape (out_channels, in_channels / groups, kernel_size), \
             got {:?}",
            w.dims()
        )));
    }
    let k = w.dims()[2];
    let padding = match padding {
        Some(p) => conv_padding(p, k, dilation, stride)?,
        None => Padding::Symmetric(0),
    };
    let opts = Conv1dOptions::default()
        .stride(stride)
        .padding(padding)
        .dilation(dilation)
        .groups(groups as usize);
    let b = bias.map(|b| b.tensor());
    run(py, x.numel().max(w.numel()), || {
        x.conv1d(&w, b.as_ref(), opts)
    })
}
