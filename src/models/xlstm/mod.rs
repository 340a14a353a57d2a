//! The vLSTM/mLSTM log-space decay matrix and the mLSTM cell (`SEEDS.md` §1; after
//! `maximilianmbeck/vlstm_cuda`, `vlstm_fw_bw_torch/vlstm_Dmat.py`, and `NX-AI/xlstm`'s
//! `backends.py`).
//!
//! Shapes: gate pre-activations `ĩ, f̃` are `(B, NH, S, 1)`; queries, keys, values
//! `(B, NH, S, DH)`. Per batch and head, with `ℓ_t = log σ(f̃_t)` and `L_i = Σ_{t≤i} ℓ_t`:
//!
//! ```text
//! D̃_ij = L_i − L_j + ĩ_j   (j ≤ i),      D̃_ij = −∞   (j > i)
//! ```
//!
//! The forget part *selects* the lower triangle (`where_` with a constant −∞ above the
//! diagonal, so no gradient reaches `f̃` from there); `ĩ_j` is *added* to that constant mask, so
//! its gradient passes through every entry: for `D̃.sum()` every `∂/∂ĩ_j` is `S` (as in the
//! seed), not the `S − j` a selection would give.
//!
//! [`decay_matrix`] builds `D̃` from differentiable ops; [`decay_matrix_custom`] computes the
//! same forward as one [`CustomFunction`] ([`DecayMatrix`]) with the hand-written backward of
//! the seed, in O(S) cumulative-sum form after the O(S²) row and column sums:
//!
//! ```text
//! δĩ_j = Σ_i G_ij
//! r_t = Σ_{j<t} G_tj,   q_t = Σ_{i>t} G_it,   δℓ_k = Σ_{t≥k} (r_t − q_t)   (δℓ_0 = 0)
//! δf̃_k = δℓ_k · σ(−f̃_k)
//! ```
//!
//! The mLSTM cell on top of `D̃` comes in its parallel form ([`mlstm_parallel`]) and as a
//! recurrence ([`mlstm_step`], [`mlstm_recurrent`]); both give the same hidden states.
//!
//! The full xLSTM mLSTM layer built around the cell, [`MlstmLayer`] (up-projection, causal
//! conv, head-wise q/k/v, gates, per-head norm, learnable skip, output gate,
//! down-projection), lives in `layer.rs`, with its parallel and step forms; its two small
//! parts [`LinearHeadwise`] and [`MultiHeadLayerNorm`] in `components.rs`.
//!
//! ```
//! use eingrad::models::xlstm::decay_matrix;
//! use eingrad::{DType, Tensor};
//! let i = Tensor::from_vec(vec![0.5f64, -1.0], &[1, 1, 2, 1]).unwrap();
//! let f = Tensor::from_vec(vec![0.0f64, 2.0], &[1, 1, 2, 1]).unwrap();
//! let d = decay_matrix(&i, &f).unwrap().to_vec::<f64>().unwrap();
//! let l1 = -(1.0 + (-2.0f64).exp()).ln(); // log σ(2)
//! assert_eq!(d[0], 0.5);
//! assert_eq!(d[1], f64::NEG_INFINITY);
//! assert!((d[2] - (l1 + 0.5)).abs() < 1e-15);
//! assert_eq!(d[3], -1.0);
//! ```

use crate::autograd::{apply_function1, CustomFunction, FunctionCtx};
use crate::dtype::DType;
use crate::einsum::einsum;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

mod components;
mod layer;

pub use components::{LinearHeadwise, MultiHeadLayerNorm};
pub use layer::{DecayBackward, MlstmLayer, MlstmLayerConfig, MlstmLayerState};

/// The constant added to the mLSTM normaliser (`h = C̃v / (n + 1e-6)`).
pub const MLSTM_EPS: f64 = 1e-6;

/// Checks two gate tensors `(B, NH, S, 1)` of the same shape and dtype; returns `S`.
fn check_gates(op: &'static str, igate: &Tensor, fgate: &Tensor) -> Result<usize> {
    for (name, t) in [("igate", igate), ("fgate", fgate)] {
        if t.rank() != 4 || t.dims()[3] != 1 || t.dims()[2] == 0 {
            return Err(Error::arg(
                op,
                name,
                format!(
                    "must have shape (B, NH, S, 1) with S ≥ 1, got {:?}",
                    t.dims()
                ),
            ));
        }
    }
    if igate.dims() != fgate.dims() {
        return Err(Error::arg(
            op,
            "fgate",
            format!(
                "must have igate's shape {:?}, got {:?}",
                igate.dims(),
                fgate.dims()
            ),
        ));
    }
    if igate.dtype() != fgate.dtype() {
        return Err(Error::arg(
            op,
            "fgate",
            format!(
                "dtype {:?} differs from igate's {:?}",
                fgate.dtype(),
                igate.dtype()
            ),
        ));
    }
    Ok(igate.dims()[2])
}

/// A constant `S × S` 0/1 mask with ones where `keep(i, j)`.
fn mask(s: usize, dtype: DType, keep: impl Fn(usize, usize) -> bool) -> Result<Tensor> {
    let v: Vec<f64> = (0..s * s)
        .map(|p| if keep(p / s, p % s) { 1.0 } else { 0.0 })
        .collect();
    Tensor::from_f64s(&v, &[s, s], dtype)
}

/// The log-space decay matrix `D̃` (`(B, NH, S, S)`) of gate pre-activations `igate`, `fgate`
/// (`(B, NH, S, 1)` each), built from differentiable ops: `logsigmoid`, `cumsum`, the lower
/// triangle of `L_i − L_j` selected by `where_` (−∞ above the diagonal), plus `ĩ_j` added to
/// every entry. Errors name the argument whose shape or dtype is wrong.
pub fn decay_matrix(igate: &Tensor, fgate: &Tensor) -> Result<Tensor> {
    let s = check_gates("decay_matrix", igate, fgate)?;
    let cum = fgate.logsigmoid()?.cumsum(2, false)?; // L_i = c_{i+1}
    let diff = cum.sub(&cum.transpose(-2, -1)?)?; // L_i − L_j
    let lower = mask(s, igate.dtype(), |i, j| j <= i)?;
    let neg_inf = Tensor::full(&[], f64::NEG_INFINITY, igate.dtype())?;
    let forget = Tensor::where_(&lower, &diff, &neg_inf)?;
    forget.add(&igate.transpose(-2, -1)?)
}

/// The decay matrix as a [`CustomFunction`]: the forward of [`decay_matrix`] (run without
/// recording) and the seed's hand-written backward. Inputs `[igate, fgate]`, one output.
/// The backward is written in tensor ops, so under `create_graph` it is differentiable again.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecayMatrix;

impl CustomFunction for DecayMatrix {
    fn name(&self) -> &str {
        "vlstm_decay_matrix"
    }

    fn forward(&self, ctx: &mut FunctionCtx, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        ctx.save_for_backward(&[inputs[1].clone()]);
        Ok(vec![decay_matrix(&inputs[0], &inputs[1])?])
    }

    fn backward(&self, ctx: &FunctionCtx, grads: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
        let g = &grads[0]; // (B, NH, S, S)
        let s = g.dims()[2];
        let d_igate = if ctx.needs_input_grad(0) {
            // δĩ_j = Σ_i G_ij over all rows (the −∞ entries included).
            Some(g.sum(&[-2], true)?.transpose(-2, -1)?)
        } else {
            None
        };
        let d_fgate = if ctx.needs_input_grad(1) {
            let fgate = &ctx.saved_tensors()[0];
            let strict = mask(s, g.dtype(), |i, j| j < i)?;
            let zero = Tensor::zeros(&[], g.dtype())?;
            let below = Tensor::where_(&strict, g, &zero)?;
            let r = below.sum(&[-1], true)?; // r_t = Σ_{j<t} G_tj
            let q = below.sum(&[-2], true)?.transpose(-2, -1)?; // q_t = Σ_{i>t} G_it
            let d_ell = r.sub(&q)?.cumsum(2, true)?; // Σ_{t≥k} (r_t − q_t)
                                                     // δℓ_0 is exactly 0 (ℓ_0 enters no entry of D̃); the sum above only rounds to it.
            let first = Tensor::from_f64s(
                &(0..s)
                    .map(|k| if k == 0 { 0.0 } else { 1.0 })
                    .collect::<Vec<_>>(),
                &[s, 1],
                g.dtype(),
            )?;
            let d_ell = Tensor::where_(&first, &d_ell, &zero)?;
            Some(d_ell.mul(&fgate.neg()?.sigmoid()?)?)
        } else {
            None
        };
        Ok(vec![d_igate, d_fgate])
    }

    /// Forward mode, the transpose of `backward`: `tĩ_j` reaches every entry (the −∞ ones
    /// included) and `tL_i − tL_j` the entries strictly below the diagonal, where
    /// `tL = cumsum(t_f·σ(−f))` with the first step left out (ℓ_0 enters no entry).
    fn jvp(
        &self,
        ctx: &FunctionCtx,
        tangents: &[Option<Tensor>],
    ) -> Option<Result<Vec<Option<Tensor>>>> {
        let out_shape = ctx.output_shape(0)?.to_vec();
        let fgate = ctx.saved_tensors().first()?.clone();
        let rule = move || -> Result<Vec<Option<Tensor>>> {
            let s = out_shape[2];
            let t_igate = tangents[0]
                .as_ref()
                .map(|t| t.transpose(-2, -1)?.broadcast_to(&out_shape))
                .transpose()?;
            let t_fgate = match &tangents[1] {
                Some(t) => {
                    let zero = Tensor::zeros(&[], t.dtype())?;
                    let first = Tensor::from_f64s(
                        &(0..s)
                            .map(|k| if k == 0 { 0.0 } else { 1.0 })
                            .collect::<Vec<_>>(),
                        &[s, 1],
                        t.dtype(),
                    )?;
                    let t_ell = Tensor::where_(&first, &t.mul(&fgate.neg()?.sigmoid()?)?, &zero)?;
                    let t_cum = t_ell.cumsum(2, false)?;
                    let diff = t_cum.sub(&t_cum.transpose(-2, -1)?)?;
                    let strict = mask(s, t.dtype(), |i, j| j < i)?;
                    Some(Tensor::where_(&strict, &diff, &zero)?)
                }
                None => None,
            };
            Ok(vec![match (t_igate, t_fgate) {
                (Some(a), Some(b)) => Some(a.add(&b)?),
                (a, b) => a.or(b),
            }])
        };
        Some(rule())
    }
}

/// [`decay_matrix`] with the hand-written backward of [`DecayMatrix`] (same values, same
/// gradients to rounding).
///
/// ```
/// use eingrad::models::xlstm::{decay_matrix_custom};
/// use eingrad::{DType, Tensor};
/// let i = Tensor::randn(&[1, 1, 5, 1], DType::F64, 0).unwrap().requires_grad_(true);
/// let f = Tensor::randn(&[1, 1, 5, 1], DType::F64, 1).unwrap().requires_grad_(true);
/// decay_matrix_custom(&i, &f).unwrap().sum_all().unwrap().backward().unwrap();
/// assert_eq!(i.grad().unwrap().to_vec::<f64>().unwrap(), vec![5.0; 5]);
/// ```
pub fn decay_matrix_custom(igate: &Tensor, fgate: &Tensor) -> Result<Tensor> {
    check_gates("decay_matrix_custom", igate, fgate)?;
    apply_function1(DecayMatrix, &[igate, fgate])
}

/// Checks q, k, v `(B, NH, S, DH)` (v may have its own last dim) and gates `(B, NH, S, 1)`.
fn check_qkv(
    op: &'static str,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    igate: &Tensor,
    fgate: &Tensor,
) -> Result<()> {
    if q.rank() != 4 || q.dims()[3] == 0 {
        return Err(Error::arg(
            op,
            "q",
            format!(
                "must have shape (B, NH, S, DH) with DH ≥ 1, got {:?}",
                q.dims()
            ),
        ));
    }
    if k.dims() != q.dims() {
        return Err(Error::arg(
            op,
            "k",
            format!("must have q's shape {:?}, got {:?}", q.dims(), k.dims()),
        ));
    }
    if v.rank() != 4 || v.dims()[..3] != q.dims()[..3] {
        return Err(Error::arg(
            op,
            "v",
            format!(
                "must have shape ({}, {}, {}, DV), got {:?}",
                q.dims()[0],
                q.dims()[1],
                q.dims()[2],
                v.dims()
            ),
        ));
    }
    check_gates(op, igate, fgate)?;
    if igate.dims()[..3] != q.dims()[..3] {
        return Err(Error::arg(
            op,
            "igate",
            format!(
                "must have shape ({}, {}, {}, 1) to match q, got {:?}",
                q.dims()[0],
                q.dims()[1],
                q.dims()[2],
                igate.dims()
            ),
        ));
    }
    for (name, t) in [("k", k), ("v", v), ("igate", igate)] {
        if t.dtype() != q.dtype() {
            return Err(Error::arg(
                op,
                name,
                format!("dtype {:?} differs from q's {:?}", t.dtype(), q.dtype()),
            ));
        }
    }
    Ok(())
}

/// The mLSTM cell in parallel form: `h` `(B, NH, S, DV)` from `q, k` `(B, NH, S, DH)`,
/// `v` `(B, NH, S, DV)` and gate pre-activations `(B, NH, S, 1)`:
///
/// ```text
/// m_i = max_j D̃_ij,  D_ij = exp(D̃_ij − m_i),  C̃_ij = (q_i·k_j / √DH)·D_ij,
/// n_i = max(|Σ_j C̃_ij|, exp(−m_i)),  h_i = Σ_j C̃_ij v_j / (n_i + 1e-6)
/// ```
///
/// `D̃` comes from [`decay_matrix`]. Errors name the argument whose shape or dtype is wrong.
pub fn mlstm_parallel(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    igate: &Tensor,
    fgate: &Tensor,
) -> Result<Tensor> {
    check_qkv("mlstm_parallel", q, k, v, igate, fgate)?;
    let dmat = decay_matrix(igate, fgate)?;
    mlstm_parallel_from_decay(q, k, v, &dmat)
}

/// [`mlstm_parallel`] on a given decay matrix `dmat` `(B, NH, S, S)` (for instance from
/// [`decay_matrix_custom`]).
pub fn mlstm_parallel_from_decay(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    dmat: &Tensor,
) -> Result<Tensor> {
    const OP: &str = "mlstm_parallel_from_decay";
    if q.rank() != 4 || k.dims() != q.dims() {
        return Err(Error::arg(
            OP,
            "k",
            format!(
                "q and k must share a shape (B, NH, S, DH), got {:?} and {:?}",
                q.dims(),
                k.dims()
            ),
        ));
    }
    let s = q.dims()[2];
    let want = [q.dims()[0], q.dims()[1], s, s];
    if dmat.dims() != want {
        return Err(Error::arg(
            OP,
            "dmat",
            format!("must have shape {want:?}, got {:?}", dmat.dims()),
        ));
    }
    if v.rank() != 4 || v.dims()[..3] != q.dims()[..3] {
        return Err(Error::arg(
            OP,
            "v",
            format!(
                "must have shape ({}, {}, {s}, DV), got {:?}",
                q.dims()[0],
                q.dims()[1],
                v.dims()
            ),
        ));
    }
    let dh = q.dims()[3] as f64;
    let m = dmat.amax(&[-1], true)?; // (B, NH, S, 1); the diagonal keeps it finite
    let decay = dmat.sub(&m)?.exp()?;
    let qk = einsum("bhid,bhjd->bhij", &[q, k])?.div_scalar(dh.sqrt())?;
    let c = qk.mul(&decay)?;
    let norm = c
        .sum(&[-1], true)?
        .abs()?
        .maximum(&m.neg()?.exp()?)?
        .add_scalar(MLSTM_EPS)?;
    einsum("bhij,bhjd->bhid", &[&c, v])?.div(&norm)
}

/// The recurrent state of the mLSTM cell: matrix memory `c` `(B, NH, DH, DV)`, normaliser
/// `n` `(B, NH, 1, DH)` and stabiliser `m` `(B, NH, 1, 1)`.
#[derive(Debug, Clone)]
pub struct MlstmState {
    /// Matrix memory, `(B, NH, DH, DV)`.
    pub c: Tensor,
    /// Normaliser, `(B, NH, 1, DH)`.
    pub n: Tensor,
    /// Log-space stabiliser, `(B, NH, 1, 1)`.
    pub m: Tensor,
}

impl MlstmState {
    /// The zero state of `NX-AI/xlstm` (`C = 0`, `n = 0`, `m = 0`).
    pub fn zeros(b: usize, nh: usize, dh: usize, dv: usize, dtype: DType) -> Result<MlstmState> {
        Ok(MlstmState {
            c: Tensor::zeros(&[b, nh, dh, dv], dtype)?,
            n: Tensor::zeros(&[b, nh, 1, dh], dtype)?,
            m: Tensor::zeros(&[b, nh, 1, 1], dtype)?,
        })
    }
}

/// One step of the stabilised mLSTM recurrence. `q, k` `(B, NH, 1, DH)`, `v` `(B, NH, 1, DV)`,
/// gate pre-activations `(B, NH, 1, 1)`; returns `h_t` `(B, NH, 1, DV)` and the new state:
///
/// ```text
/// m_t = max(ℓ_t + m_{t−1}, ĩ_t),  f′ = exp(ℓ_t + m_{t−1} − m_t),  i′ = exp(ĩ_t − m_t)
/// C_t = f′C_{t−1} + i′ k̂ v_tᵀ,  n_t = f′n_{t−1} + i′k̂   (k̂ = k/√DH)
/// h_t = C_tᵀ q_t / (max(|q_t·n_t|, exp(−m_t)) + 1e-6)
/// ```
#[allow(clippy::too_many_arguments)]
pub fn mlstm_step(
    state: &MlstmState,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    igate: &Tensor,
    fgate: &Tensor,
) -> Result<(Tensor, MlstmState)> {
    const OP: &str = "mlstm_step";
    check_qkv(OP, q, k, v, igate, fgate)?;
    let (b, nh, s, dh) = (q.dims()[0], q.dims()[1], q.dims()[2], q.dims()[3]);
    let dv = v.dims()[3];
    if s != 1 {
        return Err(Error::arg(
            OP,
            "q",
            format!(
                "a step takes one position: shape (B, NH, 1, DH), got {:?}",
                q.dims()
            ),
        ));
    }
    for (name, t, want) in [
        ("state.c", &state.c, [b, nh, dh, dv]),
        ("state.n", &state.n, [b, nh, 1, dh]),
        ("state.m", &state.m, [b, nh, 1, 1]),
    ] {
        if t.dims() != want {
            return Err(Error::arg(
                OP,
                "state",
                format!("{name} must have shape {want:?}, got {:?}", t.dims()),
            ));
        }
        if t.dtype() != q.dtype() {
            return Err(Error::arg(
                OP,
                "state",
                format!("{name} has dtype {:?}, q has {:?}", t.dtype(), q.dtype()),
            ));
        }
    }
    let ell = fgate.logsigmoid()?;
    let carried = ell.add(&state.m)?;
    let m = carried.maximum(igate)?;
    let f_act = carried.sub(&m)?.exp()?;
    let i_act = igate.sub(&m)?.exp()?;
    let k_hat = k.div_scalar((dh as f64).sqrt())?;
    let kv = einsum("bhxd,bhxe->bhde", &[&k_hat, v])?;
    let c = f_act.mul(&state.c)?.add(&i_act.mul(&kv)?)?;
    let n = f_act.mul(&state.n)?.add(&i_act.mul(&k_hat)?)?;
    let num = einsum("bhxd,bhde->bhxe", &[q, &c])?;
    let qn = einsum("bhxd,bhxd->bhx", &[q, &n])?.unsqueeze(-1)?;
    let denom = qn.abs()?.maximum(&m.neg()?.exp()?)?.add_scalar(MLSTM_EPS)?;
    Ok((num.div(&denom)?, MlstmState { c, n, m }))
}

/// The mLSTM cell run step by step over the sequence from `state` (the zero state of
/// [`MlstmState::zeros`] when `None`); same arguments and result as [`mlstm_parallel`].
/// Returns the hidden states and the final state.
///
/// From the zero state the recurrent stabiliser is `max(m_parallel, Σ_{t≤i} ℓ_t)`, not always
/// the parallel one; the two forms then differ only through the `1e-6` added to the
/// normaliser, by a relative `1e-6·(e^{m_rec} − e^{m_par}) / max(|Σ_j e^{D̃_ij} q_i·k̂_j|, 1)`.
pub fn mlstm_recurrent(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    igate: &Tensor,
    fgate: &Tensor,
    state: Option<MlstmState>,
) -> Result<(Tensor, MlstmState)> {
    check_qkv("mlstm_recurrent", q, k, v, igate, fgate)?;
    let (b, nh, s, dh) = (q.dims()[0], q.dims()[1], q.dims()[2], q.dims()[3]);
    let mut state = match state {
        Some(s) => s,
        None => MlstmState::zeros(b, nh, dh, v.dims()[3], q.dtype())?,
    };
    let mut hs = Vec::with_capacity(s);
    for t in 0..s {
        let at = |x: &Tensor| x.narrow(2, t, 1);
        let (h, next) = mlstm_step(&state, &at(q)?, &at(k)?, &at(v)?, &at(igate)?, &at(fgate)?)?;
        hs.push(h);
        state = next;
    }
    let refs: Vec<&Tensor> = hs.iter().collect();
    Ok((Tensor::cat(&refs, 2)?, state))
}
