//! Parameter groups: subsets of an optimizer's parameters with their own weight decay and
//! learning-rate scale (PyTorch's `param_groups`), and the nanoGPT split by rank.

use std::collections::HashMap;
use std::ops::Range;

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Parameters that share hyperparameter overrides inside one optimizer, as one entry of
/// PyTorch's `param_groups`. A group may override the optimizer's weight decay and scale its
/// learning rate; everything else comes from the optimizer's config. Pass a list of groups to
/// [`Adam::with_groups`](crate::optim::Adam::with_groups) or
/// [`Sgd::with_groups`](crate::optim::Sgd::with_groups).
///
/// ```
/// use eingrad::optim::{split_decay_by_rank, Adam, AdamConfig, ParamGroup};
/// use eingrad::{DType, Tensor};
/// let w = Tensor::ones(&[3, 2], DType::F32).unwrap().requires_grad_(true);
/// let b = Tensor::zeros(&[2], DType::F32).unwrap().requires_grad_(true);
/// let (decay, no_decay) = split_decay_by_rank(&[w, b]);
/// let opt = Adam::with_groups(
///     vec![
///         ParamGroup::new(decay).weight_decay(0.1),
///         ParamGroup::new(no_decay).weight_decay(0.0),
///     ],
///     AdamConfig::adamw(),
/// )
/// .unwrap();
/// assert_eq!(opt.groups()[0].weight_decay, 0.1);
/// assert_eq!(opt.groups()[1].params, 1..2);
/// ```
#[derive(Clone)]
pub struct ParamGroup {
    params: Vec<Tensor>,
    weight_decay: Option<f64>,
    lr_scale: f64,
}

impl ParamGroup {
    /// A group of `params` that takes every hyperparameter from the optimizer's config.
    ///
    /// ```
    /// let p = eingrad::Tensor::ones(&[2], eingrad::DType::F64).unwrap().requires_grad_(true);
    /// assert_eq!(eingrad::optim::ParamGroup::new(vec![p]).params().len(), 1);
    /// ```
    pub fn new(params: Vec<Tensor>) -> ParamGroup {
        ParamGroup {
            params,
            weight_decay: None,
            lr_scale: 1.0,
        }
    }
    /// Overrides the optimizer's weight decay for this group (checked, finite and ≥ 0, when
    /// the optimizer is built).
    ///
    /// ```
    /// let g = eingrad::optim::ParamGroup::new(vec![]).weight_decay(0.0);
    /// assert_eq!(g.weight_decay_override(), Some(0.0));
    /// ```
    pub fn weight_decay(mut self, weight_decay: f64) -> ParamGroup {
        self.weight_decay = Some(weight_decay);
        self
    }
    /// Multiplies the optimizer's learning rate by `scale` for this group (default 1; checked,
    /// finite and ≥ 0, when the optimizer is built). A schedule sets the optimizer's rate and
    /// every group follows it in proportion.
    ///
    /// ```
    /// let g = eingrad::optim::ParamGroup::new(vec![]).lr_scale(0.5);
    /// assert_eq!(g.lr_scale_factor(), 0.5);
    /// ```
    pub fn lr_scale(mut self, scale: f64) -> ParamGroup {
        self.lr_scale = scale;
        self
    }
    /// The parameters of this group.
    ///
    /// ```
    /// assert!(eingrad::optim::ParamGroup::new(vec![]).params().is_empty());
    /// ```
    pub fn params(&self) -> &[Tensor] {
        &self.params
    }
    /// The weight decay this group sets, or `None` when it uses the optimizer's.
    ///
    /// ```
    /// assert_eq!(eingrad::optim::ParamGroup::new(vec![]).weight_decay_override(), None);
    /// ```
    pub fn weight_decay_override(&self) -> Option<f64> {
        self.weight_decay
    }
    /// The factor on the optimizer's learning rate (1 unless [`ParamGroup::lr_scale`] set it).
    ///
    /// ```
    /// assert_eq!(eingrad::optim::ParamGroup::new(vec![]).lr_scale_factor(), 1.0);
    /// ```
    pub fn lr_scale_factor(&self) -> f64 {
        self.lr_scale
    }
}

/// One group as an optimizer holds it: which of its parameters, and the resolved settings.
///
/// ```
/// use eingrad::optim::{GroupSettings, ParamGroup, Sgd, SgdConfig};
/// let p = eingrad::Tensor::ones(&[2], eingrad::DType::F32).unwrap().requires_grad_(true);
/// let cfg = SgdConfig { weight_decay: 0.1, ..Default::default() };
/// let opt = Sgd::with_groups(vec![ParamGroup::new(vec![p]).lr_scale(2.0)], cfg).unwrap();
/// let want = GroupSettings { params: 0..1, weight_decay: 0.1, lr_scale: 2.0 };
/// assert_eq!(opt.groups(), &[want]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSettings {
    /// Indices into the optimizer's [`parameters`](crate::optim::Optimizer::parameters).
    pub params: Range<usize>,
    /// The weight decay applied to this group (its override, or the config's).
    pub weight_decay: f64,
    /// The factor on the optimizer's learning rate.
    pub lr_scale: f64,
}

/// Splits parameters the nanoGPT way into `(decay, no_decay)`: tensors of rank ≥ 2 (weight
/// matrices, embeddings, convolution kernels) are decayed; rank < 2 (biases, norm gains and
/// shifts) are not. Order is kept within each list.
///
/// ```
/// use eingrad::optim::split_decay_by_rank;
/// use eingrad::{DType, Tensor};
/// let w = Tensor::ones(&[4, 3], DType::F32).unwrap();
/// let b = Tensor::ones(&[3], DType::F32).unwrap();
/// let (decay, no_decay) = split_decay_by_rank(&[b.clone(), w.clone()]);
/// assert_eq!((decay[0].id(), no_decay[0].id()), (w.id(), b.id()));
/// ```
pub fn split_decay_by_rank(params: &[Tensor]) -> (Vec<Tensor>, Vec<Tensor>) {
    params.iter().cloned().partition(|p| p.rank() >= 2)
}

/// The flat parameter list of an optimizer and its groups' settings.
pub(crate) struct Groups {
    pub(crate) params: Vec<Tensor>,
    pub(crate) settings: Vec<GroupSettings>,
}

impl Groups {
    /// Checks and flattens `groups`: every parameter a leaf that requires grad, contiguous
    /// with its own storage, in no group twice; every override finite and ≥ 0. Errors name the
    /// parameter as `params[i]` when `groups` came from a plain parameter list (`named` false),
    /// as `groups[g].params[j]` otherwise.
    pub(crate) fn build(
        op: &'static str,
        groups: Vec<ParamGroup>,
        default_weight_decay: f64,
        named: bool,
    ) -> Result<Groups> {
        let label = |g: usize, j: usize| {
            if named {
                format!("groups[{g}].params[{j}]")
            } else {
                format!("params[{j}]")
            }
        };
        let mut seen = HashMap::new();
        let mut params = Vec::new();
        let mut settings = Vec::with_capacity(groups.len());
        for (g, group) in groups.into_iter().enumerate() {
            let wd = group.weight_decay.unwrap_or(default_weight_decay);
            for (arg, v) in [("weight_decay", wd), ("lr_scale", group.lr_scale)] {
                if !(v.is_finite() && v >= 0.0) {
                    let at = if named {
                        format!("groups[{g}]: ")
                    } else {
                        String::new()
                    };
                    return Err(Error::arg(
                        op,
                        arg,
                        format!("{at}must be finite and ≥ 0, got {v}"),
                    ));
                }
            }
            let start = params.len();
            for (j, p) in group.params.into_iter().enumerate() {
                let why = if !p.is_leaf() {
                    Some("is not a leaf (it has autograd history); pass the parameter itself")
                } else if !p.requires_grad() {
                    Some("does not require grad")
                } else if !p.is_contiguous() || p.layout().offset() != 0 {
                    Some("is a strided view; parameters must be contiguous and own their storage")
                } else {
                    None
                };
                if let Some(why) = why {
                    return Err(Error::arg(
                        op,
                        if named { "groups" } else { "params" },
                        format!("{} (shape {:?}) {why}", label(g, j), p.dims()),
                    ));
                }
                if let Some(&(g0, j0)) = seen.get(&p.id()) {
                    return Err(Error::arg(
                        op,
                        if named { "groups" } else { "params" },
                        format!(
                            "{} (shape {:?}) appears twice in the list, first as {}",
                            label(g, j),
                            p.dims(),
                            label(g0, j0)
                        ),
                    ));
                }
                seen.insert(p.id(), (g, j));
                params.push(p);
            }
            settings.push(GroupSettings {
                params: start..params.len(),
                weight_decay: wd,
                lr_scale: group.lr_scale,
            });
        }
        Ok(Groups { params, settings })
    }
}
