//! Adam and AdamW with PyTorch's bias correction.

use rayon::prelude::*;

use super::group::{GroupSettings, Groups, ParamGroup};
use super::state::{self, buffer_like, buffer_tensor, scalar_tensor, step_count};
use super::{
    check_lr, dense_grad, parallel, state_mut, with_slice, zero_storage, Optimizer, CHUNK,
};
use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::tensor::Tensor;
use crate::with_dtype;

/// Hyperparameters of [`Adam`] (PyTorch's names and defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// Decay rates (β₁, β₂) of the first and second moment estimates, each in [0, 1).
    pub betas: (f64, f64),
    /// Added to the denominator for stability.
    pub eps: f64,
    /// Weight decay: an L2 penalty added to the gradient (Adam), or with
    /// `decoupled_weight_decay` a shrink `p −= lr·wd·p` before the update (AdamW).
    pub weight_decay: f64,
    /// AdamW's decoupled weight decay.
    pub decoupled_weight_decay: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
        }
    }
}

impl AdamConfig {
    /// AdamW's defaults (`torch.optim.AdamW`): lr 1e-3, weight decay 0.01, decoupled.
    pub fn adamw() -> AdamConfig {
        AdamConfig {
            weight_decay: 1e-2,
            decoupled_weight_decay: true,
            ..AdamConfig::default()
        }
    }
}

struct MomentState {
    step: u64,
    m: Storage,
    v: Storage,
}

/// Adam as `torch.optim.Adam` (and AdamW as `torch.optim.AdamW` with
/// `decoupled_weight_decay`). Per parameter, at step t:
///
/// ```text
/// g ← g + wd·p                       (Adam with weight decay)
/// p ← p·(1 − lr·wd)                  (AdamW)
/// m ← m + (1 − β₁)(g − m)
/// v ← β₂·v + (1 − β₂)·g²
/// p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + eps)
/// ```
///
/// ```
/// use eingrad::optim::{Adam, AdamConfig, Optimizer};
/// use eingrad::Tensor;
/// let p = Tensor::from_vec(vec![1.0f64], &[1]).unwrap().requires_grad_(true);
/// let mut opt = Adam::new(vec![p.clone()], AdamConfig { lr: 0.1, ..Default::default() }).unwrap();
/// p.mul_scalar(3.0).unwrap().sum_all().unwrap().backward().unwrap();
/// opt.step().unwrap();
/// // the first Adam step moves by lr·g/(|g| + eps) ≈ lr
/// assert!((p.item().unwrap() - 0.9).abs() < 1e-8);
/// ```
pub struct Adam {
    params: Vec<Tensor>,
    groups: Vec<GroupSettings>,
    cfg: AdamConfig,
    state: Vec<Option<MomentState>>,
}

/// The per-parameter fields of [`Adam`]'s state list (PyTorch's names).
const FIELDS: [&str; 3] = ["step", "exp_avg", "exp_avg_sq"];

impl Adam {
    /// An optimizer over `params` (leaves that require grad); checks the hyperparameters.
    pub fn new(params: Vec<Tensor>, cfg: AdamConfig) -> Result<Adam> {
        Adam::build("Adam::new", vec![ParamGroup::new(params)], cfg, false)
    }
    /// An optimizer over parameter groups, as `torch.optim.Adam(param_groups, ...)`: each
    /// group may override `cfg.weight_decay` and scale `cfg.lr`; one [`Optimizer::step`]
    /// updates every group. Plain Adam or AdamW as `cfg.decoupled_weight_decay` says. The
    /// parameters are numbered group after group ([`Optimizer::parameters`]).
    ///
    /// ```
    /// use eingrad::optim::{split_decay_by_rank, Adam, AdamConfig, Optimizer, ParamGroup};
    /// use eingrad::{DType, Tensor};
    /// let w = Tensor::ones(&[2, 2], DType::F64).unwrap().requires_grad_(true);
    /// let b = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    /// let (decay, no_decay) = split_decay_by_rank(&[w.clone(), b.clone()]);
    /// let cfg = AdamConfig { lr: 0.1, ..AdamConfig::adamw() };
    /// let groups = vec![
    ///     ParamGroup::new(decay).weight_decay(0.5),
    ///     ParamGroup::new(no_decay).weight_decay(0.0),
    /// ];
    /// let mut opt = Adam::with_groups(groups, cfg).unwrap();
    /// for p in [&w, &b] {
    ///     p.set_grad(Some(Tensor::zeros(p.dims(), DType::F64).unwrap())).unwrap();
    /// }
    /// opt.step().unwrap(); // zero gradients: only the decay moves the weights
    /// assert_eq!(w.to_vec::<f64>().unwrap(), vec![0.95; 4]); // 1 − lr·wd
    /// assert_eq!(b.to_vec::<f64>().unwrap(), vec![1.0; 2]);
    /// ```
    pub fn with_groups(groups: Vec<ParamGroup>, cfg: AdamConfig) -> Result<Adam> {
        Adam::build("Adam::with_groups", groups, cfg, true)
    }
    fn build(
        op: &'static str,
        groups: Vec<ParamGroup>,
        cfg: AdamConfig,
        named: bool,
    ) -> Result<Adam> {
        check_lr(op, cfg.lr)?;
        let (b1, b2) = cfg.betas;
        if !((0.0..1.0).contains(&b1) && (0.0..1.0).contains(&b2)) {
            return Err(Error::arg(
                op,
                "betas",
                format!("both must be in [0, 1), got ({b1}, {b2})"),
            ));
        }
        if !(cfg.eps.is_finite() && cfg.eps >= 0.0) {
            return Err(Error::arg(
                op,
                "eps",
                format!("must be finite and ≥ 0, got {}", cfg.eps),
            ));
        }
        if !(cfg.weight_decay.is_finite() && cfg.weight_decay >= 0.0) {
            return Err(Error::arg(
                op,
                "weight_decay",
                format!("must be finite and ≥ 0, got {}", cfg.weight_decay),
            ));
        }
        let Groups { params, settings } = Groups::build(op, groups, cfg.weight_decay, named)?;
        let n = params.len();
        Ok(Adam {
            params,
            groups: settings,
            cfg,
            state: (0..n).map(|_| None).collect(),
        })
    }
    /// AdamW: [`Adam::new`] with `decoupled_weight_decay` set.
    pub fn adamw(params: Vec<Tensor>, cfg: AdamConfig) -> Result<Adam> {
        Adam::new(
            params,
            AdamConfig {
                decoupled_weight_decay: true,
                ..cfg
            },
        )
    }
    /// The hyperparameters (`lr` is the current rate; groups may scale it, and override
    /// `weight_decay`: see [`Adam::groups`]).
    pub fn config(&self) -> &AdamConfig {
        &self.cfg
    }
    /// The parameter groups with their resolved settings (one group for [`Adam::new`]).
    ///
    /// ```
    /// use eingrad::optim::{Adam, AdamConfig};
    /// let p = eingrad::Tensor::ones(&[2], eingrad::DType::F64).unwrap().requires_grad_(true);
    /// let opt = Adam::adamw(vec![p], AdamConfig::adamw()).unwrap();
    /// assert_eq!(opt.groups()[0].weight_decay, 0.01);
    /// ```
    pub fn groups(&self) -> &[GroupSettings] {
        &self.groups
    }
    /// How many steps parameter `i` has taken (0 before its first gradient).
    pub fn steps_taken(&self, i: usize) -> u64 {
        self.state
            .get(i)
            .and_then(|s| s.as_ref())
            .map_or(0, |s| s.step)
    }
}

impl Optimizer for Adam {
    fn step(&mut self) -> Result<()> {
        let c = self.cfg;
        let (b1, b2) = c.betas;
        for group in &self.groups {
            let lr = c.lr * group.lr_scale;
            let wd = group.weight_decay;
            let (l2, decay) = if wd == 0.0 {
                (0.0, 1.0)
            } else if c.decoupled_weight_decay {
                (0.0, 1.0 - lr * wd)
            } else {
                (wd, 1.0)
            };
            for i in group.params.clone() {
                let p = &self.params[i];
                let Some(g) = dense_grad("Adam::step", i, p)? else {
                    continue;
                };
                let st = self.state[i].get_or_insert_with(|| MomentState {
                    step: 0,
                    m: zero_storage(p.dtype(), p.numel()),
                    v: zero_storage(p.dtype(), p.numel()),
                });
                st.step += 1;
                let t = st.step as f64;
                let bc1 = 1.0 - b1.powf(t);
                let bc2_sqrt = (1.0 - b2.powf(t)).sqrt();
                let MomentState { m, v, .. } = st;
                with_dtype!(p.dtype(), T => {
                    let k = AdamScalars::<T> {
                        one_minus_b1: T::of(1.0 - b1),
                        b2: T::of(b2),
                        one_minus_b2: T::of(1.0 - b2),
                        neg_step_size: T::of(-lr / bc1),
                        inv_bc2_sqrt: T::of(1.0 / bc2_sqrt),
                        eps: T::of(c.eps),
                        l2: T::of(l2),
                        decay: T::of(decay),
                    };
                    let (m, v) = (state_mut::<T>(m), state_mut::<T>(v));
                    with_slice::<T, Result<()>>(&g, |gs| {
                        p.update_data::<T>(|ps| adam_update(ps, gs, m, v, &k))
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
        check_lr("Adam::set_lr", lr)?;
        self.cfg.lr = lr;
        Ok(())
    }
    /// `lr`, and for every parameter that has taken a step `state.{i}.step` (a 0-d f64),
    /// `state.{i}.exp_avg` and `state.{i}.exp_avg_sq` (copies, in the parameter's shape and
    /// dtype).
    ///
    /// ```
    /// use eingrad::optim::{Adam, AdamConfig, Optimizer};
    /// use eingrad::{DType, Tensor};
    /// let p = Tensor::ones(&[3], DType::F32).unwrap().requires_grad_(true);
    /// let mut opt = Adam::new(vec![p.clone()], AdamConfig::default()).unwrap();
    /// assert_eq!(opt.state_tensors().len(), 1); // only "lr" before the first step
    /// p.set_grad(Some(Tensor::ones(&[3], DType::F32).unwrap())).unwrap();
    /// opt.step().unwrap();
    /// let names: Vec<String> = opt.state_tensors().into_iter().map(|(k, _)| k).collect();
    /// assert_eq!(names, ["lr", "state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq"]);
    /// ```
    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![(state::LR_KEY.to_string(), scalar_tensor(self.cfg.lr))];
        for (i, (p, st)) in self.params.iter().zip(&self.state).enumerate() {
            if let Some(st) = st {
                out.push((state::key(i, FIELDS[0]), scalar_tensor(st.step as f64)));
                out.push((state::key(i, FIELDS[1]), buffer_tensor(&st.m, p.dims())));
                out.push((state::key(i, FIELDS[2]), buffer_tensor(&st.v, p.dims())));
            }
        }
        out
    }
    /// Restores what [`Optimizer::state_tensors`] returned: the learning rate and each listed
    /// parameter's moments and step count (copied); parameters not listed start afresh.
    /// Checks every entry first and changes nothing on an error, which names the key at fault.
    ///
    /// ```
    /// use eingrad::optim::{Adam, AdamConfig, Optimizer};
    /// use eingrad::{DType, Tensor};
    /// let p = Tensor::ones(&[3], DType::F64).unwrap().requires_grad_(true);
    /// let mut a = Adam::new(vec![p.clone()], AdamConfig::default()).unwrap();
    /// p.set_grad(Some(Tensor::ones(&[3], DType::F64).unwrap())).unwrap();
    /// a.step().unwrap();
    /// let mut b = Adam::new(vec![p.clone()], AdamConfig::default()).unwrap();
    /// b.load_state_tensors(&a.state_tensors()).unwrap();
    /// assert_eq!(b.steps_taken(0), 1);
    /// let mut bad = a.state_tensors();
    /// bad.retain(|(k, _)| k != "state.0.exp_avg_sq");
    /// let e = b.load_state_tensors(&bad).unwrap_err().to_string();
    /// assert!(e.contains("state.0.exp_avg_sq"), "{e}");
    /// ```
    fn load_state_tensors(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        const OP: &str = "Adam::load_state_tensors";
        let parsed = state::parse(OP, state, self.params.len(), &FIELDS)?;
        let mut loaded = Vec::with_capacity(self.params.len());
        for (i, (p, entry)) in self.params.iter().zip(&parsed.per_param).enumerate() {
            let Some(t) = entry else {
                loaded.push(None);
                continue;
            };
            loaded.push(Some(MomentState {
                step: step_count(OP, &state::key(i, FIELDS[0]), t[0])?,
                m: buffer_like(OP, &state::key(i, FIELDS[1]), t[1], p)?,
                v: buffer_like(OP, &state::key(i, FIELDS[2]), t[2], p)?,
            }));
        }
        self.cfg.lr = parsed.lr;
        self.state = loaded;
        Ok(())
    }
}

struct AdamScalars<T> {
    one_minus_b1: T,
    b2: T,
    one_minus_b2: T,
    neg_step_size: T,
    inv_bc2_sqrt: T,
    eps: T,
    /// L2 coefficient added to the gradient (0 unless plain Adam with weight decay).
    l2: T,
    /// Factor applied to p first (1 unless AdamW with weight decay).
    decay: T,
}

/// The fused update over one chunk; `L2`/`DECAY` select the weight-decay variant at compile
/// time so the common loop carries no dead arithmetic. Always inlined, so that the AVX2
/// wrapper compiles its own wide copy.
#[inline(always)]
fn adam_chunk<T: Float, const L2: bool, const DECAY: bool>(
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    k: &AdamScalars<T>,
) {
    let n = p.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    for i in 0..n {
        let mut pi = p[i];
        let mut gi = g[i];
        if L2 {
            gi += k.l2 * pi;
        }
        if DECAY {
            pi *= k.decay;
        }
        let mi = m[i] + k.one_minus_b1 * (gi - m[i]);
        let vi = k.b2 * v[i] + k.one_minus_b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        let denom = vi.sqrt() * k.inv_bc2_sqrt + k.eps;
        p[i] = pi + k.neg_step_size * (mi / denom);
    }
}

/// [`adam_chunk`] compiled for AVX2 (8 f32 lanes instead of SSE's 4), picked at run time.
///
/// # Safety
/// The CPU must support AVX2 (checked by the caller).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn adam_chunk_avx2<T: Float, const L2: bool, const DECAY: bool>(
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    k: &AdamScalars<T>,
) {
    adam_chunk::<T, L2, DECAY>(p, g, m, v, k)
}

type ChunkFn<T> = fn(&mut [T], &[T], &mut [T], &mut [T], &AdamScalars<T>);

fn pick_chunk<T: Float, const L2: bool, const DECAY: bool>() -> ChunkFn<T> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            return |p, g, m, v, k| {
                // SAFETY: AVX2 support was detected just above.
                unsafe { adam_chunk_avx2::<T, L2, DECAY>(p, g, m, v, k) }
            };
        }
    }
    adam_chunk::<T, L2, DECAY>
}

fn adam_update<T: Float>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], k: &AdamScalars<T>) {
    let run: ChunkFn<T> = match (k.l2 != T::zero(), k.decay != T::one()) {
        (false, false) => pick_chunk::<T, false, false>(),
        (true, false) => pick_chunk::<T, true, false>(),
        (false, true) => pick_chunk::<T, false, true>(),
        (true, true) => pick_chunk::<T, true, true>(),
    };
    if parallel(p.len()) {
        p.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .for_each(|(((p, g), m), v)| run(p, g, m, v, k));
    } else {
        run(p, g, m, v, k);
    }
}
