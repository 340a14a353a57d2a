//! Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay.

use rayon::prelude::*;

use super::group::{GroupSettings, Groups, ParamGroup};
use super::state::{self, buffer_like, buffer_tensor, scalar_tensor};
use super::{
    check_lr, dense_grad, parallel, state_mut, with_slice, zero_storage, Optimizer, CHUNK,
};
use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::tensor::Tensor;
use crate::with_dtype;

/// Hyperparameters of [`Sgd`] (PyTorch's names and defaults, with `lr` = 0.01).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0 disables the momentum buffer).
    pub momentum: f64,
    /// Dampening of the gradient added to the momentum buffer.
    pub dampening: f64,
    /// L2 penalty: `weight_decay · p` is added to the gradient.
    pub weight_decay: f64,
    /// Nesterov momentum (needs momentum > 0 and dampening = 0).
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 0.01,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

/// SGD as `torch.optim.SGD`: with `d = g + wd·p`, the momentum buffer is `b = d` at the
/// first step and `b = μ·b + (1 − dampening)·d` after; the step is `p −= lr·(d + μ·b)` with
/// Nesterov, `p −= lr·b` without, `p −= lr·d` when μ = 0.
///
/// ```
/// use eingrad::optim::{Optimizer, Sgd, SgdConfig};
/// use eingrad::{DType, Tensor};
/// let p = Tensor::from_vec(vec![1.0f64, -2.0], &[2]).unwrap().requires_grad_(true);
/// let mut opt = Sgd::new(vec![p.clone()], SgdConfig { lr: 0.5, ..Default::default() }).unwrap();
/// p.mul(&p).unwrap().sum_all().unwrap().backward().unwrap(); // grad 2p
/// opt.step().unwrap();
/// assert_eq!(p.to_vec::<f64>().unwrap(), vec![0.0, 0.0]);
/// ```
pub struct Sgd {
    params: Vec<Tensor>,
    groups: Vec<GroupSettings>,
    cfg: SgdConfig,
    /// Momentum buffers, created at a parameter's first step.
    momentum: Vec<Option<Storage>>,
}

/// The per-parameter field of [`Sgd`]'s state list (PyTorch's name).
const MOMENTUM_BUFFER: &str = "momentum_buffer";

impl Sgd {
    /// An optimizer over `params` (leaves that require grad); checks the hyperparameters.
    pub fn new(params: Vec<Tensor>, cfg: SgdConfig) -> Result<Sgd> {
        Sgd::build("Sgd::new", vec![ParamGroup::new(params)], cfg, false)
    }
    /// An optimizer over parameter groups, as `torch.optim.SGD(param_groups, ...)`: each group
    /// may override `cfg.weight_decay` and scale `cfg.lr`; one [`Optimizer::step`] updates
    /// every group.
    ///
    /// ```
    /// use eingrad::optim::{Optimizer, ParamGroup, Sgd, SgdConfig};
    /// use eingrad::{DType, Tensor};
    /// let a = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    /// let b = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    /// let groups = vec![ParamGroup::new(vec![a.clone()]), ParamGroup::new(vec![b.clone()]).lr_scale(0.5)];
    /// let mut opt = Sgd::with_groups(groups, SgdConfig { lr: 0.5, ..Default::default() }).unwrap();
    /// for p in [&a, &b] {
    ///     p.set_grad(Some(Tensor::ones(&[2], DType::F64).unwrap())).unwrap();
    /// }
    /// opt.step().unwrap();
    /// assert_eq!(a.to_vec::<f64>().unwrap(), vec![0.5; 2]);
    /// assert_eq!(b.to_vec::<f64>().unwrap(), vec![0.75; 2]);
    /// ```
    pub fn with_groups(groups: Vec<ParamGroup>, cfg: SgdConfig) -> Result<Sgd> {
        Sgd::build("Sgd::with_groups", groups, cfg, true)
    }
    fn build(
        op: &'static str,
        groups: Vec<ParamGroup>,
        cfg: SgdConfig,
        named: bool,
    ) -> Result<Sgd> {
        check_lr(op, cfg.lr)?;
        for (name, v) in [
            ("momentum", cfg.momentum),
            ("dampening", cfg.dampening),
            ("weight_decay", cfg.weight_decay),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::arg(
                    op,
                    name,
                    format!("must be finite and ≥ 0, got {v}"),
                ));
            }
        }
        if cfg.nesterov && (cfg.momentum <= 0.0 || cfg.dampening != 0.0) {
            return Err(Error::arg(
                op,
                "nesterov",
                format!(
                    "Nesterov momentum needs momentum > 0 and dampening = 0, got momentum = {} \
                     and dampening = {}",
                    cfg.momentum, cfg.dampening
                ),
            ));
        }
        let Groups { params, settings } = Groups::build(op, groups, cfg.weight_decay, named)?;
        let n = params.len();
        Ok(Sgd {
            params,
            groups: settings,
            cfg,
            momentum: (0..n).map(|_| None).collect(),
        })
    }
    /// The hyperparameters.
    pub fn config(&self) -> &SgdConfig {
        &self.cfg
    }
    /// The parameter groups with their resolved settings (one group for [`Sgd::new`]).
    ///
    /// ```
    /// use eingrad::optim::{Sgd, SgdConfig};
    /// let p = eingrad::Tensor::ones(&[2], eingrad::DType::F64).unwrap().requires_grad_(true);
    /// let opt = Sgd::new(vec![p], SgdConfig::default()).unwrap();
    /// assert_eq!(opt.groups()[0].params, 0..1);
    /// ```
    pub fn groups(&self) -> &[GroupSettings] {
        &self.groups
    }
}

impl Optimizer for Sgd {
    fn step(&mut self) -> Result<()> {
        let c = self.cfg;
        for group in &self.groups {
            let lr = c.lr * group.lr_scale;
            for i in group.params.clone() {
                let p = &self.params[i];
                let Some(g) = dense_grad("Sgd::step", i, p)? else {
                    continue;
                };
                let first = self.momentum[i].is_none();
                let buf = if c.momentum != 0.0 {
                    Some(self.momentum[i].get_or_insert_with(|| zero_storage(p.dtype(), p.numel())))
                } else {
                    None
                };
                with_dtype!(p.dtype(), T => {
                    let k = SgdScalars::<T> {
                        lr: T::of(lr),
                        wd: T::of(group.weight_decay),
                        mu: T::of(c.momentum),
                        keep: T::of(1.0 - c.dampening),
                        first,
                        nesterov: c.nesterov,
                    };
                    with_slice::<T, Result<()>>(&g, |gs| {
                        p.update_data::<T>(|ps| match buf {
                            Some(b) => sgd_momentum(ps, gs, state_mut::<T>(b), &k),
                            None => sgd_plain(ps, gs, &k),
                        })
                    })?
                });
            }
        }
        Ok(())
    }
    fn parameters(&self) -> &[Tensor] {
        &self.params
    }
    fn lr(&self) -> f64 {
        self.cfg.lr
    }
    fn set_lr(&mut self, lr: f64) -> Result<()> {
        check_lr("Sgd::set_lr", lr)?;
        self.cfg.lr = lr;
        Ok(())
    }
    /// `lr`, and with momentum `state.{i}.momentum_buffer` for every parameter that has taken
    /// a step (a copy, in the parameter's shape and dtype).
    ///
    /// ```
    /// use eingrad::optim::{Optimizer, Sgd, SgdConfig};
    /// use eingrad::{DType, Tensor};
    /// let p = Tensor::ones(&[3], DType::F32).unwrap().requires_grad_(true);
    /// let cfg = SgdConfig { momentum: 0.9, ..Default::default() };
    /// let mut opt = Sgd::new(vec![p.clone()], cfg).unwrap();
    /// p.set_grad(Some(Tensor::ones(&[3], DType::F32).unwrap())).unwrap();
    /// opt.step().unwrap();
    /// let names: Vec<String> = opt.state_tensors().into_iter().map(|(k, _)| k).collect();
    /// assert_eq!(names, ["lr", "state.0.momentum_buffer"]);
    /// ```
    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![(state::LR_KEY.to_string(), scalar_tensor(self.cfg.lr))];
        for (i, (p, b)) in self.params.iter().zip(&self.momentum).enumerate() {
            if let Some(b) = b {
                out.push((state::key(i, MOMENTUM_BUFFER), buffer_tensor(b, p.dims())));
            }
        }
        out
    }
    /// Restores what [`Optimizer::state_tensors`] returned: the learning rate and the listed
    /// momentum buffers (copied); parameters not listed start afresh. Momentum buffers given
    /// to an `Sgd` without momentum are an error. Checks every entry first and changes nothing
    /// on an error, which names the key at fault.
    ///
    /// ```
    /// use eingrad::optim::{Optimizer, Sgd, SgdConfig};
    /// use eingrad::{DType, Tensor};
    /// let p = Tensor::ones(&[3], DType::F32).unwrap().requires_grad_(true);
    /// let mut opt = Sgd::new(vec![p], SgdConfig { momentum: 0.9, ..Default::default() }).unwrap();
    /// let state = vec![
    ///     ("lr".to_string(), Tensor::scalar(0.5, DType::F64)),
    ///     ("state.0.momentum_buffer".to_string(), Tensor::ones(&[4], DType::F32).unwrap()),
    /// ];
    /// let e = opt.load_state_tensors(&state).unwrap_err().to_string();
    /// assert!(e.contains("state.0.momentum_buffer") && e.contains("[4]"), "{e}");
    /// assert_eq!(opt.lr(), 0.01); // unchanged
    /// ```
    fn load_state_tensors(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        const OP: &str = "Sgd::load_state_tensors";
        let parsed = state::parse(OP, state, self.params.len(), &[MOMENTUM_BUFFER])?;
        let mut loaded = Vec::with_capacity(self.params.len());
        for (i, (p, entry)) in self.params.iter().zip(&parsed.per_param).enumerate() {
            let Some(t) = entry else {
                loaded.push(None);
                continue;
            };
            let key = state::key(i, MOMENTUM_BUFFER);
            if self.cfg.momentum == 0.0 {
                return Err(Error::arg(
                    OP,
                    "state",
                    format!("unexpected key \"{key}\": this Sgd has no momentum"),
                ));
            }
            loaded.push(Some(buffer_like(OP, &key, t[0], p)?));
        }
        self.cfg.lr = parsed.lr;
        self.momentum = loaded;
        Ok(())
    }
}

struct SgdScalars<T> {
    lr: T,
    wd: T,
    mu: T,
    keep: T,
    first: bool,
    nesterov: bool,
}

fn sgd_plain<T: Float>(p: &mut [T], g: &[T], k: &SgdScalars<T>) {
    let run = |p: &mut [T], g: &[T]| {
        let neg_lr = -k.lr;
        if k.wd == T::zero() {
            for (p, &g) in p.iter_mut().zip(g) {
                *p += neg_lr * g;
            }
        } else {
            for (p, &g) in p.iter_mut().zip(g) {
                *p += neg_lr * (g + k.wd * *p);
            }
        }
    };
    if parallel(p.len()) {
        p.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .for_each(|(p, g)| run(p, g));
    } else {
        run(p, g);
    }
}

fn sgd_momentum<T: Float>(p: &mut [T], g: &[T], b: &mut [T], k: &SgdScalars<T>) {
    let run = |p: &mut [T], g: &[T], b: &mut [T]| {
        let neg_lr = -k.lr;
        for ((p, &g), b) in p.iter_mut().zip(g).zip(b.iter_mut()) {
            let d = if k.wd == T::zero() { g } else { g + k.wd * *p };
            *b = if k.first { d } else { k.mu * *b + k.keep * d };
            let step = if k.nesterov { d + k.mu * *b } else { *b };
            *p += neg_lr * step;
        }
    };
    if parallel(p.len()) {
        p.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(b.par_chunks_mut(CHUNK))
            .for_each(|((p, g), b)| run(p, g, b));
    } else {
        run(p, g, b);
    }
}
