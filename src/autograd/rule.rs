//! How an op differentiates, stated once.
//!
//! An op records one [`Rule`]; the engine derives everything else from it, following JAX's
//! `deflinear` / `defbilinear`:
//!
//! | rule | the op states | reverse mode (VJP) | forward mode (JVP) | batched VJP |
//! |---|---|---|---|---|
//! | [`Rule::SelfAdjoint`] | `v ↦ J_i·v` per input (`g·f′(x)` for elementwise ops) | `sum_to(J_i·g, x_i)` | `Σ_i J_i·t_i` | the same map, when it broadcasts |
//! | [`Rule::Linear`] | the linear map `L` and its transpose `Lᵀ` | `Lᵀ_i(g)` | `L(t)` | `Lᵀ` when it takes a batch |
//! | [`Rule::Bilinear`] | `B(a, b)` and its two partial transposes | `B_aᵀ(g, b)`, `B_bᵀ(a, g)` | `B(ṫa, b) + B(a, ṫb)` | the transposes with a batch |
//! | [`Rule::General`] | its own VJP and JVP | as stated | as stated | once per batch entry |
//!
//! **Strong zeros.** Elementwise rules (every unary op, `mul`, `div`, `pow`, `powf`) keep a
//! zero exactly zero: a cotangent (or tangent) entry that is 0 contributes 0 whatever the
//! local derivative, so `0·∞ = 0` and `0/0 = 0` inside a derivative product. A masked branch
//! (`where_(x > 0, x.log(), 0)`, `masked_fill(1/x, x == 0, 0)`) then has gradient 0 at the
//! masked points, to any order, and reverse mode agrees with forward mode. PyTorch and JAX
//! give NaN there in reverse mode (pytorch#52248, jax#1052) and ask for a "double where";
//! eingrad needs none. An unmasked singular point still gives ±∞ or NaN, and anomaly mode
//! still names the op that produces a NaN gradient from finite values. The fused first-order
//! kernels do it in the same pass (`if g == 0 { 0 } else { g·f′ }`).
//!
//! Missing tangents (`None`) are zeros; forward-mode results that come out smaller than
//! the op's output (a tangent of a broadcast operand alone) are broadcast to it. Rules are
//! written in public tensor ops, so with `create_graph` they are differentiable again.

use crate::error::Result;
use crate::tensor::{DerivativeRule, Tensor};

/// A general op's backward rule: the gradients of its outputs and which inputs need one in,
/// one optional gradient per input out.
pub(crate) type BackwardFn =
    Box<dyn Fn(&[Tensor], &[bool]) -> Result<Vec<Option<Tensor>>> + Send + Sync>;

/// `v ↦ J_i·v` of a [`Rule::SelfAdjoint`] (`None`: input `i` is not differentiable).
pub(crate) type PartialMapFn = Box<dyn Fn(usize, &Tensor) -> Result<Option<Tensor>> + Send + Sync>;

/// The linear map `L` of a [`Rule::Linear`], applied to one tangent per input.
pub(crate) type LinearFn = Box<dyn Fn(&[Tensor]) -> Result<Tensor> + Send + Sync>;

/// `Lᵀ` onto input `i` of a [`Rule::Linear`]: `(i, g, batched)`.
pub(crate) type TransposeFn = Box<dyn Fn(usize, &Tensor, Batched) -> Result<Tensor> + Send + Sync>;

/// `B(a, b)` of a [`Rule::Bilinear`].
pub(crate) type BilinearFn = Box<dyn Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync>;

/// The partial transposes of a [`Rule::Bilinear`]: `(i, g, other operand, batched)`.
pub(crate) type BilinearTransposeFn =
    Box<dyn Fn(usize, &Tensor, &Tensor, Batched) -> Result<Tensor> + Send + Sync>;

/// A general op's forward-mode rule: input tangents (`None` = zero) in, output tangents
/// (`None` = zero) out, or `Ok(None)` when it declines (custom functions without a JVP:
/// forward mode then transposes the backward rule).
pub(crate) type JvpFn =
    Box<dyn Fn(&[Option<Tensor>]) -> Result<Option<Vec<Option<Tensor>>>> + Send + Sync>;

/// Whether a gradient carries a leading batch of cotangents (`[batch] ++ shape`).
pub(crate) type Batched = bool;

/// How an op differentiates (see the module docs for what each kind derives).
pub(crate) enum Rule {
    /// Each input's Jacobian, after broadcasting the input to the output's shape, is a
    /// symmetric map `v ↦ J_i·v`: diagonal `v·∂f/∂x_i` for elementwise ops, `y⊙(v − Σy·v)`
    /// for softmax. `map(i, v)` returns it (`None`: input `i` is not differentiable).
    SelfAdjoint {
        map: PartialMapFn,
        /// The map broadcasts over a leading batch dim.
        batches: bool,
    },
    /// A linear op `y = L(x_1, …, x_n)` (or the linear piece an op is locally, like
    /// `max_dim` at its chosen indices): `apply` is `L` (inputs without a tangent get zeros),
    /// `transpose(i, g, batched)` is `Lᵀ` onto input `i`.
    Linear {
        apply: LinearFn,
        transpose: TransposeFn,
        /// `transpose` handles a leading batch of cotangents.
        batches: bool,
    },
    /// A bilinear op `y = B(a, b)` of its two inputs: `transpose(0, g, b, batched)` is
    /// `B_aᵀ(g)` (the gradient for `a`, given `b`), `transpose(1, g, a, batched)` is
    /// `B_bᵀ(g)`.
    Bilinear {
        a: Tensor,
        b: Tensor,
        apply: BilinearFn,
        transpose: BilinearTransposeFn,
    },
    /// Anything else: its own backward and forward-mode rules.
    General { backward: BackwardFn, jvp: JvpFn },
}

impl Rule {
    /// An elementwise (or otherwise self-adjoint) rule of one input: `map(v) = J·v`.
    pub(crate) fn self_adjoint1(
        batches: bool,
        map: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static,
    ) -> Rule {
        Rule::SelfAdjoint {
            map: Box::new(move |_, v| map(v).map(Some)),
            batches,
        }
    }

    /// A linear op of one input: `apply` is the op on a tangent, `transpose` its adjoint.
    pub(crate) fn linear1(
        apply: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static,
        transpose: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static,
    ) -> Rule {
        Rule::Linear {
            apply: Box::new(move |t| apply(&t[0])),
            transpose: Box::new(move |_, g, _| transpose(g)),
            batches: false,
        }
    }

    /// [`Rule::linear1`] whose transpose also takes a leading batch of cotangents
    /// (`transpose(g, batched)`).
    pub(crate) fn linear1_batched(
        apply: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static,
        transpose: impl Fn(&Tensor, Batched) -> Result<Tensor> + Send + Sync + 'static,
    ) -> Rule {
        Rule::Linear {
            apply: Box::new(move |t| apply(&t[0])),
            transpose: Box::new(move |_, g, batched| transpose(g, batched)),
            batches: true,
        }
    }

    /// A one-input op that is neither linear nor self-adjoint: its JVP `t ↦ J·t` and its VJP
    /// `g ↦ Jᵀ·g`, each written once.
    pub(crate) fn general1(
        jvp: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static,
        vjp: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static,
    ) -> Rule {
        Rule::General {
            backward: Box::new(move |g, needs| for_needed(needs, |_| vjp(&g[0]).map(Some))),
            jvp: Box::new(move |t| Ok(Some(vec![t[0].as_ref().map(&jvp).transpose()?]))),
        }
    }
}

impl DerivativeRule for Rule {
    /// Whether the VJP runs on a whole batch of cotangents at once.
    fn batches(&self) -> bool {
        match self {
            Rule::SelfAdjoint { batches, .. } | Rule::Linear { batches, .. } => *batches,
            Rule::Bilinear { .. } => true,
            Rule::General { .. } => false,
        }
    }

    /// The VJP: gradients for the `inputs` that `needs` marks, from the outputs' `grads`
    /// (each with a leading batch dim when `batched`; only rules that [`Rule::batches`] are
    /// called so).
    fn backward(
        &self,
        inputs: &[Tensor],
        grads: &[Tensor],
        needs: &[bool],
        batched: Batched,
    ) -> Result<Vec<Option<Tensor>>> {
        match self {
            Rule::General { backward, .. } => backward(grads, needs),
            Rule::SelfAdjoint { map, .. } => for_needed(needs, |i| match map(i, &grads[0])? {
                Some(g) if g.dims() == inputs[i].dims() => Ok(Some(g)),
                Some(g) => sum_to(&g, inputs[i].dims(), batched).map(Some),
                None => Ok(None),
            }),
            Rule::Linear { transpose, .. } => {
                for_needed(needs, |i| transpose(i, &grads[0], batched).map(Some))
            }
            Rule::Bilinear {
                a, b, transpose, ..
            } => for_needed(needs, |i| {
                let other = if i == 0 { b } else { a };
                transpose(i, &grads[0], other, batched).map(Some)
            }),
        }
    }

    /// The JVP: output tangents from input `tangents` (`None` = zero); `inputs` and the
    /// outputs' `out_shapes` as recorded. `Ok(None)`: the rule declines.
    fn jvp(
        &self,
        inputs: &[Tensor],
        tangents: &[Option<Tensor>],
        out_shapes: &[&[usize]],
    ) -> Result<Option<Vec<Option<Tensor>>>> {
        let one = match self {
            Rule::General { jvp, .. } => return jvp(tangents),
            Rule::SelfAdjoint { map, .. } => {
                let mut acc = None;
                for (i, t) in tangents.iter().enumerate() {
                    if let Some(t) = t {
                        acc = add_term(acc, map(i, t)?)?;
                    }
                }
                acc
            }
            Rule::Linear { apply, .. } => {
                if tangents.iter().all(Option::is_none) {
                    None
                } else {
                    let full: Vec<Tensor> = tangents
                        .iter()
                        .zip(inputs)
                        .map(|(t, x)| t.clone().map_or_else(|| zeros_view(x), Ok))
                        .collect::<Result<_>>()?;
                    Some(apply(&full)?)
                }
            }
            Rule::Bilinear { a, b, apply, .. } => {
                let mut acc = None;
                if let Some(ta) = &tangents[0] {
                    acc = Some(apply(ta, b)?);
                }
                if let Some(tb) = &tangents[1] {
                    acc = add_term(acc, Some(apply(a, tb)?))?;
                }
                acc
            }
        };
        let shape = out_shapes.first().copied().unwrap_or(&[]);
        Ok(Some(vec![one
            .map(|t| {
                if t.dims() == shape {
                    Ok(t)
                } else {
                    t.broadcast_to(shape)
                }
            })
            .transpose()?]))
    }
}

/// One optional result per input: `f(i)` where `needs[i]`, `None` elsewhere.
fn for_needed(
    needs: &[bool],
    mut f: impl FnMut(usize) -> Result<Option<Tensor>>,
) -> Result<Vec<Option<Tensor>>> {
    needs
        .iter()
        .enumerate()
        .map(|(i, &need)| if need { f(i) } else { Ok(None) })
        .collect()
}

/// `acc + term`, where either may be absent (zero).
fn add_term(acc: Option<Tensor>, term: Option<Tensor>) -> Result<Option<Tensor>> {
    Ok(match (acc, term) {
        (Some(a), Some(t)) => Some(a.add(&t)?),
        (a, t) => a.or(t),
    })
}

/// Zeros shaped like `x` without allocating them: one zero broadcast to `x`'s shape.
fn zeros_view(x: &Tensor) -> Result<Tensor> {
    Tensor::zeros(&[], x.dtype())?.broadcast_to(x.dims())
}

/// `g` summed down to `shape` (undoing broadcasting); with `batched` the leading batch dim
/// is kept.
pub(crate) fn sum_to(g: &Tensor, shape: &[usize], batched: Batched) -> Result<Tensor> {
    if batched {
        g.batched_sum_to(shape)
    } else {
        g.sum_to(shape)
    }
}
