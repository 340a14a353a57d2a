//! Optimizers ([`Sgd`], [`Adam`] / AdamW) with parameter groups ([`ParamGroup`],
//! [`split_decay_by_rank`]), learning-rate schedules ([`LrSchedule`], [`WarmupCosine`]),
//! gradient clipping ([`clip_grad_norm`]), and the optimizer state as named tensors for
//! checkpoints ([`Optimizer::state_tensors`], [`Optimizer::load_state_tensors`]).
//!
//! A step is one fused loop per parameter over its buffer, run in place through
//! [`Tensor::update_data`]; the optimizer state lives in plain buffers inside the optimizer,
//! allocated at the first step. After that a step allocates nothing (a gradient that is a
//! strided view, rare, is copied to a contiguous buffer first). The dtype is dispatched once
//! per parameter. Semantics follow PyTorch's `torch.optim` (single-tensor implementation).
//! (A parameter large enough to be updated by several threads, updated from outside rayon's
//! pool, hands rayon one job through its global queue, which allocates a block per 63 jobs;
//! on a pool thread nothing at all is allocated: `tests/optim_alloc.rs`.)
//!
//! nanoGPT's recipe: AdamW decaying only the matrices, warmup then cosine, clipping at 1.
//!
//! ```
//! use eingrad::optim::*;
//! use eingrad::{DType, Tensor};
//! let w = Tensor::randn(&[4, 4], DType::F32, 0).unwrap().requires_grad_(true);
//! let b = Tensor::zeros(&[4], DType::F32).unwrap().requires_grad_(true);
//! let (decay, no_decay) = split_decay_by_rank(&[w.clone(), b.clone()]);
//! let groups = vec![
//!     ParamGroup::new(decay).weight_decay(0.1),
//!     ParamGroup::new(no_decay).weight_decay(0.0),
//! ];
//! let cfg = AdamConfig { betas: (0.9, 0.95), ..AdamConfig::adamw() };
//! let mut opt = Adam::with_groups(groups, cfg).unwrap();
//! let schedule = WarmupCosine::new(6e-4, 6e-5, 10, 100).unwrap();
//! for it in 0..20 {
//!     opt.set_lr(schedule.lr_at(it)).unwrap();
//!     opt.zero_grad();
//!     w.add(&b).unwrap().tanh().unwrap().sum_all().unwrap().backward().unwrap();
//!     clip_grad_norm(opt.parameters(), 1.0).unwrap();
//!     opt.step().unwrap();
//! }
//! let checkpoint = opt.state_tensors(); // lr, state.{i}.{step,exp_avg,exp_avg_sq}
//! assert_eq!(checkpoint.len(), 1 + 2 * 3);
//! ```
//!
//! Any optimizer, on a small regression:
//!
//! ```
//! use eingrad::nn::{mse_loss, Linear, Module, Reduction};
//! use eingrad::optim::{Adam, AdamConfig, Optimizer};
//! use eingrad::{DType, Tensor};
//! let lin = Linear::new(2, 1, true, DType::F64, 0).unwrap();
//! let mut opt = Adam::new(lin.parameters(), AdamConfig { lr: 0.1, ..Default::default() }).unwrap();
//! let x = Tensor::randn(&[16, 2], DType::F64, 1).unwrap();
//! let y = x.sum(&[-1], true).unwrap();
//! for _ in 0..200 {
//!     opt.zero_grad();
//!     mse_loss(&lin.forward(&x).unwrap(), &y, Reduction::Mean).unwrap().backward().unwrap();
//!     opt.step().unwrap();
//! }
//! assert!(mse_loss(&lin.forward(&x).unwrap(), &y, Reduction::Mean).unwrap().item().unwrap() < 1e-3);
//! ```

mod adam;
mod group;
mod schedule;
mod sgd;
mod state;

pub use adam::{Adam, AdamConfig};
pub use group::{split_decay_by_rank, GroupSettings, ParamGroup};
pub use schedule::{Constant, LrSchedule, WarmupCosine};
pub use sgd::{Sgd, SgdConfig};

use rayon::prelude::*;

use crate::autograd::NoGradGuard;
use crate::dtype::{DType, Float};
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::tensor::Tensor;
use crate::with_dtype;

/// Something that updates parameters from their `.grad()`.
pub trait Optimizer {
    /// Applies one update to every parameter that has a gradient (others are skipped).
    fn step(&mut self) -> Result<()>;
    /// Clears the gradients of all parameters (`set_to_none` semantics).
    fn zero_grad(&mut self) {
        for p in self.parameters() {
            p.zero_grad();
        }
    }
    /// The parameters this optimizer updates.
    fn parameters(&self) -> &[Tensor];
    /// The current learning rate.
    fn lr(&self) -> f64;
    /// Changes the learning rate (for schedules); the state is kept.
    fn set_lr(&mut self, lr: f64) -> Result<()>;
    /// The optimizer's state as named tensors for a checkpoint: the learning rate under `lr`
    /// and each parameter's buffers under `state.{i}.{field}`, `i` indexing
    /// [`Optimizer::parameters`]. The tensors are copies: later steps do not change them.
    ///
    /// ```
    /// use eingrad::optim::{Adam, AdamConfig, Optimizer};
    /// let p = eingrad::Tensor::ones(&[2], eingrad::DType::F64).unwrap().requires_grad_(true);
    /// let opt: Box<dyn Optimizer> = Box::new(Adam::new(vec![p], AdamConfig::default()).unwrap());
    /// let state = opt.state_tensors();
    /// assert_eq!((state[0].0.as_str(), state[0].1.item().unwrap()), ("lr", 1e-3));
    /// ```
    fn state_tensors(&self) -> Vec<(String, Tensor)>;
    /// Restores a state that [`Optimizer::state_tensors`] returned, so that training goes on
    /// bit for bit as if it had not stopped (given the same parameters and gradients).
    /// Unknown, missing or mis-shaped entries are errors naming the key; on an error nothing
    /// changes.
    ///
    /// ```
    /// use eingrad::optim::{Optimizer, Sgd, SgdConfig};
    /// use eingrad::{DType, Tensor};
    /// let p = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    /// let mut opt = Sgd::new(vec![p], SgdConfig::default()).unwrap();
    /// opt.load_state_tensors(&[("lr".to_string(), Tensor::scalar(0.5, DType::F64))]).unwrap();
    /// assert_eq!(opt.lr(), 0.5);
    /// let e = opt.load_state_tensors(&[]).unwrap_err().to_string();
    /// assert!(e.contains("missing key \"lr\""), "{e}");
    /// ```
    fn load_state_tensors(&mut self, state: &[(String, Tensor)]) -> Result<()>;
}

/// Elements per parallel chunk of an update loop; parameters smaller than
/// [`crate::kernels::min_parallel_elements`] are updated on the calling thread.
pub(crate) const CHUNK: usize = 1 << 14;

/// True when an update over `n` elements should be split across threads.
pub(crate) fn parallel(n: usize) -> bool {
    crate::kernels::worth_parallel(n)
}

pub(crate) fn check_lr(op: &'static str, lr: f64) -> Result<()> {
    if !(lr.is_finite() && lr >= 0.0) {
        return Err(Error::arg(
            op,
            "lr",
            format!("must be finite and ≥ 0, got {lr}"),
        ));
    }
    Ok(())
}

/// The gradient of `p` as a contiguous tensor of `p`'s shape and dtype, or `None`.
pub(crate) fn dense_grad(op: &'static str, i: usize, p: &Tensor) -> Result<Option<Tensor>> {
    let Some(g) = p.grad() else { return Ok(None) };
    if g.dims() != p.dims() || g.dtype() != p.dtype() {
        return Err(Error::arg(
            op,
            "params",
            format!(
                "params[{i}] has shape {:?} ({:?}) but its grad has shape {:?} ({:?})",
                p.dims(),
                p.dtype(),
                g.dims(),
                g.dtype()
            ),
        ));
    }
    if g.is_contiguous() {
        return Ok(Some(g));
    }
    let _ng = NoGradGuard::new();
    Ok(Some(g.detach().contiguous()?))
}

/// Runs `f` on the elements of a contiguous tensor as a slice (no copy).
pub(crate) fn with_slice<T: Float, R>(t: &Tensor, f: impl FnOnce(&[T]) -> R) -> R {
    let storage = t.storage();
    let all = storage
        .as_slice::<T>()
        .expect("dtype checked by the caller");
    let off = t.layout().offset();
    f(&all[off..off + t.numel()])
}

/// A zero-filled state buffer of `n` elements.
pub(crate) fn zero_storage(dtype: DType, n: usize) -> Storage {
    with_dtype!(dtype, T => crate::storage::Storage::from_vec(vec![T::zero(); n]))
}

/// The buffer of a state storage (whose dtype the caller dispatched on).
pub(crate) fn state_mut<T: Float>(s: &mut Storage) -> &mut [T] {
    s.as_mut_slice::<T>()
        .expect("state dtype matches its parameter")
}

/// Clips the gradients of `params` in place so that their joint 2-norm is at most
/// `max_norm`, as `torch.nn.utils.clip_grad_norm_`: every gradient is scaled by
/// `max_norm / (total + 1e-6)` when that is below 1. Returns the total norm before clipping.
/// Parameters without a gradient are skipped.
///
/// Two passes over the gradients, in place: it allocates nothing when every gradient is
/// contiguous and owns its buffer (a strided gradient, such as the broadcast one of a sum, is
/// replaced by a contiguous copy). The norm is summed in a fixed order whatever the number of
/// threads, so a run repeats bit for bit.
///
/// ```
/// use eingrad::{Tensor, DType};
/// let p = Tensor::zeros(&[2], DType::F64).unwrap().requires_grad_(true);
/// p.set_grad(Some(Tensor::from_vec(vec![3.0f64, 4.0], &[2]).unwrap())).unwrap();
/// let total = eingrad::optim::clip_grad_norm(&[p.clone()], 1.0).unwrap();
/// assert_eq!(total, 5.0);
/// let g = p.grad().unwrap().to_vec::<f64>().unwrap();
/// assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
/// ```
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64) -> Result<f64> {
    const OP: &str = "clip_grad_norm";
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(Error::arg(
            OP,
            "max_norm",
            format!("must be ≥ 0, got {max_norm}"),
        ));
    }
    let mut sq = 0.0f64;
    for (i, p) in params.iter().enumerate() {
        let Some(g) = owned_grad(OP, i, p)? else {
            continue;
        };
        sq += with_dtype!(g.dtype(), T => with_slice::<T, f64>(&g, sum_sq));
    }
    let total = sq.sqrt();
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        for p in params {
            let Some(g) = p.grad() else { continue };
            with_dtype!(g.dtype(), T => {
                let c = T::of(coef);
                g.update_data::<T>(|buf| scale(buf, c))?
            });
        }
    }
    Ok(total)
}

/// The gradient of `p` as a contiguous tensor that owns its buffer; a gradient that is not
/// is replaced in `p.grad` by such a copy, so that it can be scaled in place.
fn owned_grad(op: &'static str, i: usize, p: &Tensor) -> Result<Option<Tensor>> {
    let Some(g) = dense_grad(op, i, p)? else {
        return Ok(None);
    };
    let g = if g.layout().offset() != 0 {
        with_dtype!(g.dtype(), T => with_slice::<T, Tensor>(&g, |s| Tensor::from_buf(s.to_vec(), g.dims())))
    } else {
        g
    };
    if p.grad().map(|cur| cur.id()) != Some(g.id()) {
        p.set_grad(Some(g.clone()))?;
    }
    Ok(Some(g))
}

fn scale<T: Float>(s: &mut [T], c: T) {
    let block = |b: &mut [T]| b.iter_mut().for_each(|v| *v *= c);
    if parallel(s.len()) {
        s.par_chunks_mut(CHUNK).for_each(block);
    } else {
        block(s);
    }
}

/// The sum of squares of `s` in f64, as a sum of `CHUNK`-element blocks combined in a binary
/// tree that depends only on the length: the same bits on one thread or many.
fn sum_sq<T: Float>(s: &[T]) -> f64 {
    fn tree<T: Float>(s: &[T], par: bool) -> f64 {
        if s.len() <= CHUNK {
            return s.iter().map(|v| v.f64() * v.f64()).sum::<f64>();
        }
        let mid = s.len().div_ceil(CHUNK) / 2 * CHUNK;
        let (a, b) = s.split_at(mid);
        if par {
            let (x, y) = rayon::join(|| tree(a, par), || tree(b, par));
            x + y
        } else {
            tree(a, par) + tree(b, par)
        }
    }
    tree(s, parallel(s.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The step writes into the parameter's own buffer: no new storage per step.
    #[test]
    fn steps_update_in_place() {
        for dtype in [DType::F32, DType::F64] {
            let p = Tensor::randn(&[300, 200], dtype, 0)
                .unwrap()
                .requires_grad_(true);
            let ptr = |t: &Tensor| std::sync::Arc::as_ptr(&t.storage()) as usize;
            let before = ptr(&p);
            let mut adam = Adam::new(vec![p.clone()], AdamConfig::default()).unwrap();
            let mut sgd = Sgd::new(
                vec![p.clone()],
                SgdConfig {
                    momentum: 0.9,
                    ..Default::default()
                },
            )
            .unwrap();
            for _ in 0..3 {
                p.zero_grad();
                p.mul(&p).unwrap().sum_all().unwrap().backward().unwrap();
                adam.step().unwrap();
                sgd.step().unwrap();
                assert_eq!(ptr(&p), before);
            }
        }
    }

    /// Also while the graph that used the parameters is still alive (the einsum records the
    /// weight itself, not a view sharing its buffer).
    #[test]
    fn linear_weights_update_in_place_with_live_graph() {
        use crate::nn::{cross_entropy, Linear, Module, Reduction};
        let lin = Linear::new(8, 3, true, DType::F32, 0).unwrap();
        let ptrs = |m: &Linear| -> Vec<usize> {
            m.parameters()
                .iter()
                .map(|p| std::sync::Arc::as_ptr(&p.storage()) as usize)
                .collect()
        };
        let before = ptrs(&lin);
        let mut opt = Adam::new(lin.parameters(), AdamConfig::default()).unwrap();
        let x = Tensor::randn(&[4, 2, 8], DType::F32, 1).unwrap();
        let logits = lin.forward(&x).unwrap().reshape(&[8, 3]).unwrap();
        let loss = cross_entropy(&logits, &[0, 1, 2, 0, 1, 2, 0, 1], Reduction::Mean).unwrap();
        loss.backward().unwrap();
        opt.step().unwrap();
        assert_eq!(ptrs(&lin), before);
        drop((logits, loss));
    }
}
