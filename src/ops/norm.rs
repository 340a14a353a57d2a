//! Layer normalisation as one op ([`Tensor::layer_norm`]): one pass per row forward, one
//! fused pass backward at first order, and a rule written in tensor ops (differentiable to
//! any order) when the backward itself is recorded.

use super::with_contiguous;
use crate::autograd::{is_grad_enabled, record, Rule};
use crate::error::{Error, Result};
use crate::kernels::rows::{layer_norm_backward, layer_norm_forward};
use crate::tensor::Tensor;
use crate::with_dtype;

/// The trailing `nd` dims as negative dim indices.
fn trailing(nd: usize) -> Vec<isize> {
    (-(nd as isize)..0).collect()
}

/// Layer norm in tensor ops: `(x̂ = (x − μ)ρ, ρ)`, differentiable.
fn normalised(x: &Tensor, nd: usize, eps: f64) -> Result<(Tensor, Tensor)> {
    let dims = trailing(nd);
    let centered = x.sub(&x.mean(&dims, true)?)?;
    let rstd = centered
        .mul(&centered)?
        .mean(&dims, true)?
        .add_scalar(eps)?
        .rsqrt()?;
    Ok((centered.mul(&rstd)?, rstd))
}

/// Sums `t` over its leading dims down to the trailing `nd` (a parameter's gradient).
fn sum_leading(t: &Tensor, nd: usize) -> Result<Tensor> {
    let lead: Vec<isize> = (0..(t.rank() - nd) as isize).collect();
    if lead.is_empty() {
        Ok(t.clone())
    } else {
        t.sum(&lead, false)
    }
}

impl Tensor {
    /// Layer normalisation over the trailing `normalized_dims` dims: `(x − mean)/√(var + eps)
    /// · weight + bias` with the biased variance, as `torch.nn.functional.layer_norm`.
    /// `weight` and `bias` (optional) have the shape of those trailing dims.
    ///
    /// ```
    /// use eingrad::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let y = x.layer_norm(1, None, None, 0.0).unwrap();
    /// assert_eq!(y.to_vec::<f64>().unwrap(), vec![-1.0, 1.0, -1.0, 1.0]);
    /// assert!(x.layer_norm(3, None, None, 1e-5).unwrap_err().to_string().contains("normalized_dims"));
    /// ```
    pub fn layer_norm(
        &self,
        normalized_dims: usize,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor> {
        const OP: &str = "layer_norm";
        let nd = normalized_dims;
        if nd == 0 || nd > self.rank() {
            return Err(Error::arg(
                OP,
                "normalized_dims",
                format!("must be in 1..={} (the rank of x), got {nd}", self.rank()),
            ));
        }
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(Error::arg(
                OP,
                "eps",
                format!("must be finite and ≥ 0, got {eps}"),
            ));
        }
        let tail = &self.dims()[self.rank() - nd..];
        let n: usize = tail.iter().product();
        for (name, p) in [("weight", weight), ("bias", bias)] {
            if let Some(p) = p {
                if p.dims() != tail {
                    return Err(Error::arg(
                        OP,
                        name,
                        format!(
                            "must have shape {tail:?} (the normalised dims), got {:?}",
                            p.dims()
                        ),
                    ));
                }
                if p.dtype() != self.dtype() {
                    return Err(Error::DTypeMismatch {
                        op: OP,
                        lhs: self.dtype(),
                        rhs: p.dtype(),
                    });
                }
            }
        }
        let (out, mean, rstd) = with_dtype!(self.dtype(), T => {
            let wv = weight.map(|w| with_contiguous::<T, _>(OP, w, |d| Ok(d.to_vec()))).transpose()?;
            let bv = bias.map(|b| with_contiguous::<T, _>(OP, b, |d| Ok(d.to_vec()))).transpose()?;
            with_contiguous::<T, _>(OP, self, |x| {
                let (y, mean, rstd) = layer_norm_forward(x, n, wv.as_deref(), bv.as_deref(), eps);
                let stats_shape: Vec<usize> = self.dims()[..self.rank() - nd].to_vec();
                Ok((
                    Tensor::from_buf(y, self.dims()),
                    Tensor::from_buf(mean, &stats_shape),
                    Tensor::from_buf(rstd, &stats_shape),
                ))
            })?
        });
        let mut inputs = vec![self];
        inputs.extend(weight);
        inputs.extend(bias);
        let (has_w, has_b) = (weight.is_some(), bias.is_some());
        let outs = record("layer_norm", &inputs, vec![out], || {
            let x = self.clone();
            let w = weight.cloned();
            let (xj, wj) = (x.clone(), w.clone());
            Rule::General {
                backward: Box::new(move |g, needs| {
                    let g = &g[0];
                    let (nx, nw) = (needs[0], has_w && needs[1]);
                    let nb = has_b && needs[1 + has_w as usize];
                    let mut grads: Vec<Option<Tensor>> = Vec::with_capacity(needs.len());
                    if !is_grad_enabled() {
                        let (dx, dw, db) = with_dtype!(x.dtype(), T => {
                            let wv = w.as_ref().map(|w| with_contiguous::<T, _>(OP, w, |d| Ok(d.to_vec()))).transpose()?;
                            let ms = with_contiguous::<T, _>(OP, &mean, |d| Ok(d.to_vec()))?;
                            let rs = with_contiguous::<T, _>(OP, &rstd, |d| Ok(d.to_vec()))?;
                            let (dx, dw, db) = with_contiguous::<T, _>(OP, &x, |xv| {
                                with_contiguous::<T, _>(OP, g, |gv| {
                                    Ok(layer_norm_backward(gv, xv, &ms, &rs, n, wv.as_deref(), nx, nw, nb))
                                })
                            })?;
                            let tail = &x.dims()[x.rank() - nd..];
                            (
                                dx.map(|d| Tensor::from_buf(d, x.dims())),
                                dw.map(|d| Tensor::from_buf(d, tail)),
                                db.map(|d| Tensor::from_buf(d, tail)),
                            )
                        });
                        grads.push(dx);
                        if has_w {
                            grads.push(dw);
                        }
                        if has_b {
                            grads.push(db);
                        }
                        return Ok(grads);
                    }
                    // Recorded backward: the same formulas in tensor ops.
                    let dims = trailing(nd);
                    let (xhat, rho) = normalised(&x, nd, eps)?;
                    grads.push(if nx {
                        let gw = match &w {
                            Some(w) => g.mul(w)?,
                            None => g.clone(),
                        };
                        let a = gw.mean(&dims, true)?;
                        let c = gw.mul(&xhat)?.mean(&dims, true)?;
                        Some(rho.mul(&gw.sub(&a)?.sub(&xhat.mul(&c)?)?)?)
                    } else {
                        None
                    });
                    if has_w {
                        grads.push(if nw {
                            Some(sum_leading(&g.mul(&xhat)?, nd)?)
                        } else {
                            None
                        });
                    }
                    if has_b {
                        grads.push(if nb { Some(sum_leading(g, nd)?) } else { None });
                    }
                    Ok(grads)
                }),
                jvp: Box::new(move |t| {
                    // ẏ = w·ρ(ṫx − mean(ṫx) − x̂·mean(x̂·ṫx)) + x̂·ṫw + ṫb
                    let dims = trailing(nd);
                    let (xhat, rho) = normalised(&xj, nd, eps)?;
                    let mut acc: Option<Tensor> = None;
                    let mut add = |v: Tensor| -> Result<()> {
                        acc = Some(match acc.take() {
                            Some(a) => a.add(&v)?,
                            None => v,
                        });
                        Ok(())
                    };
                    if let Some(tx) = &t[0] {
                        let a = tx.mean(&dims, true)?;
                        let c = tx.mul(&xhat)?.mean(&dims, true)?;
                        let d = rho.mul(&tx.sub(&a)?.sub(&xhat.mul(&c)?)?)?;
                        add(match &wj {
                            Some(w) => d.mul(w)?,
                            None => d,
                        })?;
                    }
                    if has_w {
                        if let Some(tw) = &t[1] {
                            add(xhat.mul(tw)?)?;
                        }
                    }
                    if has_b {
                        if let Some(tb) = &t[1 + has_w as usize] {
                            add(tb.broadcast_to(xj.dims())?)?;
                        }
                    }
                    Ok(Some(vec![acc]))
                }),
            }
        });
        Ok(outs.into_iter().next().expect("one output"))
    }
}
