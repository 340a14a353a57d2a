//! Named state: [`StateDict`] (an ordered list of named tensors, PyTorch's `state_dict()`),
//! loading one into a module with a report of what did not match, and the dotted-name
//! helper composite modules use ([`prefixed`]).

use std::collections::{HashMap, HashSet};

use crate::autograd::NoGradGuard;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Named tensors in a fixed order: a module's parameters and buffers under PyTorch-style
/// dotted names (`h.0.attn.c_attn.weight`), as `Module::state_dict` returns them and
/// `Module::load_state_dict` takes them. Names are unique; inserting an existing name
/// replaces its tensor in place (the order is kept).
///
/// ```
/// use eingrad::nn::StateDict;
/// use eingrad::{DType, Tensor};
/// let mut sd = StateDict::new();
/// sd.insert("w", Tensor::zeros(&[2], DType::F32).unwrap());
/// sd.insert("b", Tensor::ones(&[1], DType::F32).unwrap());
/// sd.insert("w", Tensor::ones(&[3], DType::F32).unwrap());
/// assert_eq!(sd.names().collect::<Vec<_>>(), ["w", "b"]);
/// assert_eq!(sd.get("w").unwrap().dims(), &[3]);
/// assert!(sd.get("nope").is_none());
/// ```
#[derive(Clone, Default)]
pub struct StateDict {
    entries: Vec<(String, Tensor)>,
    index: HashMap<String, usize>,
}

impl StateDict {
    /// An empty state dict.
    pub fn new() -> StateDict {
        StateDict::default()
    }
    /// Adds `tensor` under `name`, replacing (in place, keeping the order) a tensor already
    /// stored under that name.
    pub fn insert(&mut self, name: impl Into<String>, tensor: Tensor) {
        let name = name.into();
        match self.index.get(&name) {
            Some(&i) => self.entries[i].1 = tensor,
            None => {
                self.index.insert(name.clone(), self.entries.len());
                self.entries.push((name, tensor));
            }
        }
    }
    /// The tensor stored under `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.index.get(name).map(|&i| &self.entries[i].1)
    }
    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// True when there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// The names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }
    /// `(name, tensor)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.entries.iter().map(|(n, t)| (n.as_str(), t))
    }
    /// The pairs, consuming the dict.
    pub fn into_vec(self) -> Vec<(String, Tensor)> {
        self.entries
    }
}

impl FromIterator<(String, Tensor)> for StateDict {
    fn from_iter<I: IntoIterator<Item = (String, Tensor)>>(iter: I) -> StateDict {
        let mut sd = StateDict::new();
        for (n, t) in iter {
            sd.insert(n, t);
        }
        sd
    }
}

impl std::fmt::Debug for StateDict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.entries
                    .iter()
                    .map(|(n, t)| (n, format!("{:?} {:?}", t.dtype(), t.dims()))),
            )
            .finish()
    }
}

/// What `load_state_dict` did not match by name (mis-shaped or mis-typed entries are always
/// an error): the model's names the dict lacks and the dict's names the model lacks, as
/// PyTorch's `_IncompatibleKeys`. Both are empty after a strict load.
///
/// ```
/// let r = eingrad::nn::LoadReport::default();
/// assert!(r.missing.is_empty() && r.unexpected.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// The module's parameters and buffers that the dict does not have (left unchanged).
    pub missing: Vec<String>,
    /// The dict's entries that name nothing in the module (ignored).
    pub unexpected: Vec<String>,
}

/// Prefixes every name with `prefix.` (no dot for an empty prefix): how a composite module
/// names its children's parameters.
///
/// ```
/// use eingrad::nn::prefixed;
/// use eingrad::{DType, Tensor};
/// let w = Tensor::zeros(&[1], DType::F32).unwrap();
/// let named = prefixed("h.0.attn", vec![("weight".to_string(), w)]);
/// assert_eq!(named[0].0, "h.0.attn.weight");
/// ```
pub fn prefixed(prefix: &str, named: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    if prefix.is_empty() {
        return named;
    }
    named
        .into_iter()
        .map(|(n, t)| (format!("{prefix}.{n}"), t))
        .collect()
}

/// Loads `dict` into `targets` (a module's parameters and buffers by name): checks every
/// matching entry's shape and dtype first and copies nothing unless all agree; with
/// `strict`, a missing or unexpected name is an error too. The copy is in place, so handles
/// an optimizer holds see the new values.
pub(crate) fn load_into(
    targets: &[(String, Tensor)],
    dict: &StateDict,
    strict: bool,
) -> Result<LoadReport> {
    let mut report = LoadReport::default();
    let mut problems = Vec::new();
    let mut copies = Vec::new();
    let mut own = HashSet::new();
    for (name, dst) in targets {
        if !own.insert(name.as_str()) {
            continue;
        }
        match dict.get(name) {
            None => report.missing.push(name.clone()),
            Some(src) if src.dims() != dst.dims() => problems.push(format!(
                "`{name}`: shape {:?} in the state dict, {:?} in the model",
                src.dims(),
                dst.dims()
            )),
            Some(src) if src.dtype() != dst.dtype() => problems.push(format!(
                "`{name}`: dtype {:?} in the state dict, {:?} in the model",
                src.dtype(),
                dst.dtype()
            )),
            Some(src) => copies.push((dst, src)),
        }
    }
    report.unexpected = dict
        .names()
        .filter(|n| !own.contains(n))
        .map(str::to_string)
        .collect();
    if strict {
        if !report.missing.is_empty() {
            problems.push(format!("missing keys {:?}", report.missing));
        }
        if !report.unexpected.is_empty() {
            problems.push(format!("unexpected keys {:?}", report.unexpected));
        }
    }
    if !problems.is_empty() {
        return Err(Error::arg(
            "load_state_dict",
            "state_dict",
            format!("{} (nothing was loaded)", problems.join("; ")),
        ));
    }
    let _no_grad = NoGradGuard::new();
    for (dst, src) in copies {
        if !dst.shares_storage_with(src) {
            dst.copy_from(src)?;
        }
    }
    Ok(report)
}
