//! Optimizer state as a plain list of named tensors, for checkpoints: the learning rate under
//! `lr` and each parameter's buffers under `state.{i}.{field}` (`i` indexes
//! [`Optimizer::parameters`](crate::optim::Optimizer::parameters), as PyTorch numbers its
//! `state_dict`). Loading checks every entry before it changes anything.

use std::collections::HashSet;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::tensor::Tensor;
use crate::with_dtype;

/// The key of the learning rate.
pub(crate) const LR_KEY: &str = "lr";

/// The key of parameter `i`'s `field`.
pub(crate) fn key(i: usize, field: &str) -> String {
    format!("state.{i}.{field}")
}

/// A copy of a state buffer as a tensor of `shape`.
pub(crate) fn buffer_tensor(s: &Storage, shape: &[usize]) -> Tensor {
    Tensor::from_storage(s.clone(), shape)
}

/// A 0-d f64 tensor (the learning rate, a step count).
pub(crate) fn scalar_tensor(v: f64) -> Tensor {
    Tensor::scalar(v, DType::F64)
}

/// A state list split by key: the learning rate and, per parameter, one entry per field
/// (all present or all absent).
pub(crate) struct ParsedState<'a> {
    pub(crate) lr: f64,
    pub(crate) per_param: Vec<Option<Vec<&'a Tensor>>>,
}

/// Splits `entries` into the learning rate and the per-parameter `fields` of `n_params`
/// parameters. Errors name the key at fault: an unknown or malformed key, one given twice,
/// a parameter index out of range, `lr` missing or not one finite value ≥ 0, a parameter
/// with some of its fields but not all.
pub(crate) fn parse<'a>(
    op: &'static str,
    entries: &'a [(String, Tensor)],
    n_params: usize,
    fields: &[&'static str],
) -> Result<ParsedState<'a>> {
    let expected = || {
        format!(
            "expected \"{LR_KEY}\" or \"state.<i>.<field>\" with field one of {fields:?} and \
             i < {n_params}"
        )
    };
    let mut seen = HashSet::with_capacity(entries.len());
    let mut lr = None;
    let mut found: Vec<Vec<Option<&Tensor>>> = vec![vec![None; fields.len()]; n_params];
    for (k, t) in entries {
        if !seen.insert(k.as_str()) {
            return Err(Error::arg(
                op,
                "state",
                format!("key \"{k}\" appears twice"),
            ));
        }
        if k == LR_KEY {
            lr = Some(t);
            continue;
        }
        let parsed = k.strip_prefix("state.").and_then(|rest| {
            let (i, field) = rest.split_once('.')?;
            let idx: usize = i.parse().ok().filter(|n: &usize| n.to_string() == i)?;
            let f = fields.iter().position(|f| *f == field)?;
            Some((idx, f))
        });
        let Some((i, f)) = parsed else {
            return Err(Error::arg(
                op,
                "state",
                format!("unexpected key \"{k}\"; {}", expected()),
            ));
        };
        if i >= n_params {
            return Err(Error::arg(
                op,
                "state",
                format!("unexpected key \"{k}\": this optimizer has {n_params} parameters"),
            ));
        }
        found[i][f] = Some(t);
    }
    let Some(lr_t) = lr else {
        return Err(Error::arg(
            op,
            "state",
            format!("missing key \"{LR_KEY}\" (the learning rate)"),
        ));
    };
    let lr = one_value(op, LR_KEY, lr_t)?;
    if !(lr.is_finite() && lr >= 0.0) {
        return Err(Error::arg(
            op,
            "state",
            format!("key \"{LR_KEY}\" must be finite and ≥ 0, got {lr}"),
        ));
    }
    let mut per_param = Vec::with_capacity(n_params);
    for (i, row) in found.into_iter().enumerate() {
        if row.iter().all(Option::is_none) {
            per_param.push(None);
            continue;
        }
        if let Some(f) = row.iter().position(Option::is_none) {
            let have = row
                .iter()
                .position(Option::is_some)
                .expect("one is present");
            return Err(Error::arg(
                op,
                "state",
                format!(
                    "missing key \"{}\" (the list has \"{}\")",
                    key(i, fields[f]),
                    key(i, fields[have])
                ),
            ));
        }
        per_param.push(Some(row.into_iter().flatten().collect()));
    }
    Ok(ParsedState { lr, per_param })
}

/// The value of a one-element tensor under `key`.
fn one_value(op: &'static str, key: &str, t: &Tensor) -> Result<f64> {
    if t.numel() != 1 {
        return Err(Error::arg(
            op,
            "state",
            format!(
                "key \"{key}\" must hold one value, got shape {:?}",
                t.dims()
            ),
        ));
    }
    t.item()
}

/// A step count stored under `key`: one integer value from 1 to 2⁵³.
pub(crate) fn step_count(op: &'static str, key: &str, t: &Tensor) -> Result<u64> {
    let v = one_value(op, key, t)?;
    if !(v.fract() == 0.0 && (1.0..=9_007_199_254_740_992.0).contains(&v)) {
        return Err(Error::arg(
            op,
            "state",
            format!("key \"{key}\" must be a whole step count ≥ 1, got {v}"),
        ));
    }
    Ok(v as u64)
}

/// A copy of the buffer stored under `key`, which must have parameter `p`'s shape and dtype.
pub(crate) fn buffer_like(op: &'static str, key: &str, t: &Tensor, p: &Tensor) -> Result<Storage> {
    if t.dims() != p.dims() || t.dtype() != p.dtype() {
        return Err(Error::arg(
            op,
            "state",
            format!(
                "key \"{key}\" has shape {:?} ({:?}) but its parameter has shape {:?} ({:?})",
                t.dims(),
                t.dtype(),
                p.dims(),
                p.dtype()
            ),
        ));
    }
    with_dtype!(t.dtype(), T => Ok(Storage::from_vec(t.to_vec::<T>()?)))
}
