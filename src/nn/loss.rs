//! Losses: [`mse_loss`], [`cross_entropy`], [`binary_cross_entropy_with_logits`], written
//! with differentiable tensor ops (so their gradients can be differentiated again).

use crate::autograd::{is_grad_enabled, record1, Rule};
use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::with_dtype;

/// How a loss combines its per-element values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// The mean over elements (a 0-dim tensor); PyTorch's default.
    #[default]
    Mean,
    /// The sum over elements (a 0-dim tensor).
    Sum,
    /// No reduction: one value per element (per sample for cross-entropy).
    None,
}

fn reduce(x: Tensor, r: Reduction) -> Result<Tensor> {
    match r {
        Reduction::Mean => x.mean_all(),
        Reduction::Sum => x.sum_all(),
        Reduction::None => Ok(x),
    }
}

fn same_shape_dtype(op: &'static str, input: &Tensor, target: &Tensor) -> Result<()> {
    if input.dims() != target.dims() {
        return Err(Error::ShapeMismatch {
            op,
            lhs: input.dims().to_vec(),
            rhs: target.dims().to_vec(),
            detail: " (`input` and `target` must have the same shape)".into(),
        });
    }
    if input.dtype() != target.dtype() {
        return Err(Error::arg(
            op,
            "target",
            format!(
                "dtype {:?} differs from the input's {:?}",
                target.dtype(),
                input.dtype()
            ),
        ));
    }
    Ok(())
}

/// Mean squared error: `reduce((input − target)²)`; shapes must match exactly.
///
/// ```
/// use eingrad::nn::{mse_loss, Reduction};
/// use eingrad::Tensor;
/// let p = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap();
/// let t = Tensor::from_vec(vec![0.0f64, 4.0], &[2]).unwrap();
/// assert_eq!(mse_loss(&p, &t, Reduction::Mean).unwrap().item().unwrap(), 2.5);
/// assert_eq!(mse_loss(&p, &t, Reduction::Sum).unwrap().item().unwrap(), 5.0);
/// assert!(mse_loss(&p, &Tensor::zeros(&[3], eingrad::DType::F64).unwrap(), Reduction::Mean).is_err());
/// ```
pub fn mse_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape_dtype("mse_loss", input, target)?;
    let d = input.sub(target)?;
    reduce(d.mul(&d)?, reduction)
}

/// Cross-entropy of `logits` `(N, C)` against class indices `targets` (`N` of them, each
/// below `C`): `−log_softmax(logits)[n, targets[n]]`, reduced over `n` (PyTorch's
/// `F.cross_entropy` without class weights). Gradients of any order.
///
/// ```
/// use eingrad::nn::{cross_entropy, Reduction};
/// use eingrad::{DType, Tensor};
/// let logits = Tensor::zeros(&[2, 4], DType::F64).unwrap();
/// let l = cross_entropy(&logits, &[0, 3], Reduction::Mean).unwrap();
/// assert!((l.item().unwrap() - 4f64.ln()).abs() < 1e-12);
/// let e = cross_entropy(&logits, &[0, 4], Reduction::Mean).unwrap_err().to_string();
/// assert!(e.contains("targets[1] = 4"), "{e}");
/// ```
pub fn cross_entropy(logits: &Tensor, targets: &[usize], reduction: Reduction) -> Result<Tensor> {
    if logits.rank() != 2 {
        return Err(Error::arg(
            "cross_entropy",
            "logits",
            format!("must have shape (N, C), got {:?}", logits.dims()),
        ));
    }
    let (n, c) = (logits.dims()[0], logits.dims()[1]);
    if targets.len() != n {
        return Err(Error::ShapeMismatch {
            op: "cross_entropy",
            lhs: logits.dims().to_vec(),
            rhs: vec![targets.len()],
            detail: format!(
                " (`logits` (N, C) = {:?} needs N = {n} `targets`, got {})",
                logits.dims(),
                targets.len()
            ),
        });
    }
    if let Some((i, &t)) = targets.iter().enumerate().find(|(_, &t)| t >= c) {
        return Err(Error::arg(
            "cross_entropy",
            "targets",
            format!("targets[{i}] = {t} is out of range for C = {c} classes"),
        ));
    }
    with_dtype!(logits.dtype(), T => fused_cross_entropy::<T>(logits, targets, reduction))
}

/// Cross-entropy as one recorded op: the forward is one pass over the rows (max, log-sum-exp,
/// pick) that also keeps the softmax; the first-order backward is one pass
/// `(softmax − onehot)·g/N`. When the backward itself is recorded (`create_graph`) the rule
/// is the same formula in differentiable tensor ops, with the softmax recomputed from the
/// logits, so higher derivatives are exact.
fn fused_cross_entropy<T: Float>(
    logits: &Tensor,
    targets: &[usize],
    reduction: Reduction,
) -> Result<Tensor> {
    let (n, c) = (logits.dims()[0], logits.dims()[1]);
    let x = logits.to_vec::<T>()?;
    let mut probs = vec![T::zero(); n * c];
    let mut losses = Vec::with_capacity(n);
    for ((row, prow), &t) in x
        .chunks_exact(c)
        .zip(probs.chunks_exact_mut(c))
        .zip(targets)
    {
        let m = row.iter().fold(T::neg_infinity(), |m, &v| m.max(v));
        // A row that is all −∞ (or holds +∞) is shifted by 0 so that it yields inf/NaN as
        // PyTorch does, rather than by an infinite max.
        let m = if m.is_finite() { m } else { T::zero() };
        let mut s = T::zero();
        for (p, &v) in prow.iter_mut().zip(row) {
            *p = (v - m).exp();
            s += *p;
        }
        let inv = T::one() / s;
        for p in prow.iter_mut() {
            *p *= inv;
        }
        losses.push(m + s.ln() - row[t]);
    }
    let out = match reduction {
        Reduction::None => Tensor::from_vec(losses, &[n])?,
        Reduction::Sum | Reduction::Mean => {
            let total: f64 = losses.iter().map(|v| v.f64()).sum();
            let v = if reduction == Reduction::Mean {
                total / n as f64
            } else {
                total
            };
            Tensor::scalar(v, T::DTYPE)
        }
    };
    let probs = Tensor::from_vec(probs, &[n, c])?;
    // JVP: Σ_c (softmax − onehot)·t per row, reduced like the loss; VJP: (softmax −
    // onehot)·g/N, one fused pass at first order.
    Ok(record1("cross_entropy", &[logits], out, |_| {
        let (xs, idx) = (logits.clone(), targets.to_vec());
        let (jx, jidx, jprobs) = (xs.clone(), idx.clone(), probs.clone());
        Rule::general1(
            move |t| {
                let p = crate::ops::saved_output(&jprobs, || jx.softmax(-1))?;
                let d = p.sub(&Tensor::one_hot(&jidx, c, t.dtype())?)?;
                let per_row = d.mul(t)?.sum(&[-1], false)?;
                match reduction {
                    Reduction::None => Ok(per_row),
                    Reduction::Sum => per_row.sum_all(),
                    Reduction::Mean => per_row.sum_all()?.div_scalar(n as f64),
                }
            },
            move |g| {
                let scale = if reduction == Reduction::Mean {
                    1.0 / n as f64
                } else {
                    1.0
                };
                if is_grad_enabled() {
                    // Recorded (create_graph): differentiable ops only.
                    let p = xs.softmax(-1)?;
                    let d = p.sub(&Tensor::one_hot(&idx, c, g.dtype())?)?;
                    let gg = match reduction {
                        Reduction::None => g.unsqueeze(-1)?,
                        _ => g.mul_scalar(scale)?,
                    };
                    return d.mul(&gg);
                }
                let gv = g.to_vec::<T>()?;
                let mut out = probs.to_vec::<T>()?;
                for (r, (orow, &t)) in out.chunks_exact_mut(c).zip(&idx).enumerate() {
                    let w = T::of(scale)
                        * if reduction == Reduction::None {
                            gv[r]
                        } else {
                            gv[0]
                        };
                    orow[t] = orow[t] - T::one();
                    for v in orow.iter_mut() {
                        *v *= w;
                    }
                }
                Tensor::from_vec(out, &[n, c])
            },
        )
    }))
}

/// Binary cross-entropy on logits, computed stably as `softplus(x) − x·y` (never forming
/// σ(x) or log σ(x) separately); `target` holds probabilities in [0, 1] and has `logits`'
/// shape.
///
/// ```
/// use eingrad::nn::{binary_cross_entropy_with_logits, Reduction};
/// use eingrad::Tensor;
/// let x = Tensor::from_vec(vec![0.0f64, 1000.0, -1000.0], &[3]).unwrap();
/// let y = Tensor::from_vec(vec![1.0f64, 1.0, 0.0], &[3]).unwrap();
/// let l = binary_cross_entropy_with_logits(&x, &y, Reduction::None).unwrap().to_vec::<f64>().unwrap();
/// assert!((l[0] - 2f64.ln()).abs() < 1e-15 && l[1] == 0.0 && l[2] == 0.0);
/// ```
pub fn binary_cross_entropy_with_logits(
    logits: &Tensor,
    target: &Tensor,
    reduction: Reduction,
) -> Result<Tensor> {
    same_shape_dtype("binary_cross_entropy_with_logits", logits, target)?;
    let l = logits.softplus()?.sub(&logits.mul(target)?)?;
    reduce(l, reduction)
}
