//! Binary elementwise ops with NumPy broadcasting, scalar forms, comparisons and selection.

use super::map1;
use std::sync::Arc;

use crate::autograd::{record1_batched, record1_jvp};
use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::kernels::elementwise::{map_binary, map_ternary};
use crate::tensor::Tensor;
use crate::with_dtype;

macro_rules! map2 {
    ($op:expr, $a:expr, $b:expr, |$u:ident, $v:ident| $body:expr) => {
        with_dtype!($a.dtype(), T => map_binary::<T>($op, $a, $b, |$u: T, $v: T| $body))
    };
}

/// `a ± b` for optional tangents (`None` = zero), broadcast to the op's output `shape` (a
/// tangent of a broadcast input alone would otherwise keep the input's shape).
fn tangent_sum(
    a: &Option<Tensor>,
    b: &Option<Tensor>,
    subtract: bool,
    shape: &[usize],
) -> Result<Option<Tensor>> {
    let t = match (a, b) {
        (Some(a), Some(b)) => Some(if subtract { a.sub(b)? } else { a.add(b)? }),
        (Some(a), None) => Some(a.clone()),
        (None, Some(b)) => Some(if subtract { b.neg()? } else { b.clone() }),
        (None, None) => None,
    };
    t.map(|t| t.broadcast_to(shape)).transpose()
}

/// Records `out = a ± b` (`subtract`: minus): the gradients are g summed back to each
/// operand's shape (negated for b when subtracting), for one cotangent or a leading batch.
fn record_sum(name: &'static str, a: &Tensor, b: &Tensor, out: Tensor, subtract: bool) -> Tensor {
    let (sa, sb) = (a.dims().to_vec(), b.dims().to_vec());
    let so = out.dims().to_vec();
    let rule = Arc::new(move |g: &Tensor, needs: &[bool], batched: bool| {
        Ok(vec![
            if needs[0] {
                Some(sum_to(g, &sa, batched)?)
            } else {
                None
            },
            if needs[1] {
                let gb = if subtract { g.neg()? } else { g.clone() };
                Some(sum_to(&gb, &sb, batched)?)
            } else {
                None
            },
        ])
    });
    let r = rule.clone();
    record1_batched(
        name,
        &[a, b],
        out,
        move |g, needs| r(g, needs, false),
        move |t| tangent_sum(&t[0], &t[1], subtract, &so),
        move |g, needs| rule(g, needs, true),
    )
}

/// ∂aᵇ/∂a = b·a^(b−1).
fn pow_da(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    b.mul(&a.pow(&b.add_scalar(-1.0)?)?)
}

/// ∂aᵇ/∂b = aᵇ·ln a, taken as 0 where a = 0.
fn pow_db(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let d = a.pow(b)?.mul(&a.log()?)?;
    d.masked_fill(&a.eq_scalar(0.0)?, 0.0)
}

/// The share of `maximum`/`minimum`'s output that comes from each input: 1 to the winner,
/// ½ each at a tie (PyTorch's rule), 0/1 where either is NaN.
fn extremum_weights(a: &Tensor, b: &Tensor, max: bool) -> Result<(Tensor, Tensor)> {
    let wins = if max { a.gt(b)? } else { a.lt(b)? };
    let ties = a.eq(b)?.mul_scalar(0.5)?;
    let wa = wins.add(&ties)?;
    let wb = wa.neg()?.add_scalar(1.0)?;
    Ok((wa, wb))
}

fn bool_to<T: Float>(b: bool) -> T {
    if b {
        T::one()
    } else {
        T::zero()
    }
}

/// `g` summed down to `shape` ([`Tensor::sum_to`]), or with `batched` its leading batch dim
/// kept: `[batch] ++ out` down to `[batch] ++ shape`.
fn sum_to(g: &Tensor, shape: &[usize], batched: bool) -> Result<Tensor> {
    if batched {
        batched_sum_to(g, shape)
    } else {
        g.sum_to(shape)
    }
}

/// `g` (shaped `[batch] ++ out`) summed down to `[batch] ++ shape`, where `shape`
/// broadcasts to `out`: the batched form of [`Tensor::sum_to`].
pub(crate) fn batched_sum_to(g: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let out_rank = g.rank().saturating_sub(1);
    let pad = out_rank.saturating_sub(shape.len());
    let padded: Vec<usize> = std::iter::once(g.dims().first().copied().unwrap_or(1))
        .chain(std::iter::repeat_n(1, pad))
        .chain(shape.iter().copied())
        .collect();
    let full: Vec<usize> = std::iter::once(padded[0])
        .chain(shape.iter().copied())
        .collect();
    g.sum_to(&padded)?.reshape(&full)
}

impl Tensor {
    /// Sums `self` (a gradient of the broadcast shape) down to `shape`, undoing broadcasting.
    ///
    /// ```
    /// let g = eingrad::Tensor::ones(&[2, 3], eingrad::DType::F32).unwrap();
    /// assert_eq!(g.sum_to(&[3]).unwrap().to_vec::<f32>().unwrap(), vec![2.0, 2.0, 2.0]);
    /// ```
    pub fn sum_to(&self, shape: &[usize]) -> Result<Tensor> {
        if self.dims() == shape {
            return Ok(self.clone());
        }
        let r = self.rank();
        if shape.len() > r {
            return Err(Error::shapes("sum_to", self.dims(), shape));
        }
        let lead = r - shape.len();
        let mut dims: Vec<isize> = (0..lead as isize).collect();
        for (i, &s) in shape.iter().enumerate() {
            let d = self.dims()[lead + i];
            if s == 1 && d != 1 {
                dims.push((lead + i) as isize);
            } else if s != d {
                return Err(Error::shapes("sum_to", self.dims(), shape));
            }
        }
        self.sum(&dims, true)?.reshape(shape)
    }

    /// a + b with broadcasting.
    ///
    /// ```
    /// use eingrad::{Tensor, DType};
    /// let a = Tensor::ones(&[2, 1], DType::F32).unwrap();
    /// let b = Tensor::arange(0.0, 3.0, 1.0, DType::F32).unwrap();
    /// assert_eq!(a.add(&b).unwrap().dims(), &[2, 3]);
    /// ```
    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        let out = map2!("add", self, other, |u, v| u + v)?;
        Ok(record_sum("add", self, other, out, false))
    }
    /// a − b with broadcasting.
    pub fn sub(&self, other: &Tensor) -> Result<Tensor> {
        let out = map2!("sub", self, other, |u, v| u - v)?;
        Ok(record_sum("sub", self, other, out, true))
    }
    /// a ⊙ b with broadcasting.
    pub fn mul(&self, other: &Tensor) -> Result<Tensor> {
        let out = map2!("mul", self, other, |u, v| u * v)?;
        let (a, b) = (self.clone(), other.clone());
        let (ja, jb) = (self.clone(), other.clone());
        let so = out.dims().to_vec();
        let rule = Arc::new(move |g: &Tensor, needs: &[bool], batched: bool| {
            Ok(vec![
                if needs[0] {
                    Some(sum_to(&g.mul(&b)?, a.dims(), batched)?)
                } else {
                    None
                },
                if needs[1] {
                    Some(sum_to(&g.mul(&a)?, b.dims(), batched)?)
                } else {
                    None
                },
            ])
        });
        let r = rule.clone();
        Ok(record1_batched(
            "mul",
            &[self, other],
            out,
            move |g, needs| r(g, needs, false),
            move |t| {
                let ta = t[0].as_ref().map(|t| t.mul(&jb)).transpose()?;
                let tb = t[1].as_ref().map(|t| ja.mul(t)).transpose()?;
                tangent_sum(&ta, &tb, false, &so)
            },
            move |g, needs| rule(g, needs, true),
        ))
    }
    /// a / b with broadcasting.
    ///
    /// JVP: `ta/b − tb·(a/b)/b`.
    pub fn div(&self, other: &Tensor) -> Result<Tensor> {
        let out = map2!("div", self, other, |u, v| u / v)?;
        let (a, b) = (self.clone(), other.clone());
        let (ja, jb) = (self.clone(), other.clone());
        let so = out.dims().to_vec();
        Ok(record1_jvp(
            "div",
            &[self, other],
            out,
            move |g, needs| {
                let gb = g.div(&b)?;
                Ok(vec![
                    if needs[0] {
                        Some(gb.sum_to(a.dims())?)
                    } else {
                        None
                    },
                    if needs[1] {
                        Some(gb.mul(&a.div(&b)?)?.neg()?.sum_to(b.dims())?)
                    } else {
                        None
                    },
                ])
            },
            move |t| {
                let ta = t[0].as_ref().map(|t| t.div(&jb)).transpose()?;
                let tb = t[1]
                    .as_ref()
                    .map(|t| t.mul(&ja.div(&jb)?)?.div(&jb))
                    .transpose()?;
                tangent_sum(&ta, &tb, true, &so)
            },
        ))
    }
    /// aᵇ elementwise with broadcasting. ∂/∂b uses log a (NaN for negative a, like PyTorch).
    ///
    /// JVP: `ta·b·a^(b−1) + tb·aᵇ·ln a` (the second term 0 where a = 0, as in the VJP).
    pub fn pow(&self, other: &Tensor) -> Result<Tensor> {
        let out = map2!("pow", self, other, |u, v| u.powf(v))?;
        let (a, b) = (self.clone(), other.clone());
        let (ja, jb) = (self.clone(), other.clone());
        let so = out.dims().to_vec();
        Ok(record1_jvp(
            "pow",
            &[self, other],
            out,
            move |g, needs| {
                Ok(vec![
                    if needs[0] {
                        Some(g.mul(&pow_da(&a, &b)?)?.sum_to(a.dims())?)
                    } else {
                        None
                    },
                    if needs[1] {
                        Some(g.mul(&pow_db(&a, &b)?)?.sum_to(b.dims())?)
                    } else {
                        None
                    },
                ])
            },
            move |t| {
                let ta = t[0]
                    .as_ref()
                    .map(|t| t.mul(&pow_da(&ja, &jb)?))
                    .transpose()?;
                let tb = t[1]
                    .as_ref()
                    .map(|t| t.mul(&pow_db(&ja, &jb)?))
                    .transpose()?;
                tangent_sum(&ta, &tb, false, &so)
            },
        ))
    }
    /// Elementwise maximum; at ties the gradient is split evenly (PyTorch's rule).
    pub fn maximum(&self, other: &Tensor) -> Result<Tensor> {
        self.extremum(other, true)
    }
    /// Elementwise minimum; at ties the gradient is split evenly.
    pub fn minimum(&self, other: &Tensor) -> Result<Tensor> {
        self.extremum(other, false)
    }
    fn extremum(&self, other: &Tensor, max: bool) -> Result<Tensor> {
        let name = if max { "maximum" } else { "minimum" };
        let out = map2!(name, self, other, |u, v| if u.is_nan() || v.is_nan() {
            T::nan()
        } else if (u > v) == max {
            u
        } else {
            v
        })?;
        let (a, b) = (self.clone(), other.clone());
        let (ja, jb) = (self.clone(), other.clone());
        let so = out.dims().to_vec();
        Ok(record1_jvp(
            name,
            &[self, other],
            out,
            move |g, needs| {
                let (wa, wb) = extremum_weights(&a, &b, max)?;
                Ok(vec![
                    if needs[0] {
                        Some(g.mul(&wa)?.sum_to(a.dims())?)
                    } else {
                        None
                    },
                    if needs[1] {
                        Some(g.mul(&wb)?.sum_to(b.dims())?)
                    } else {
                        None
                    },
                ])
            },
            // The same weights on the tangents: at a tie the output moves by the mean of the
            // two tangents, the transpose of the split gradient.
            move |t| {
                if t.iter().all(Option::is_none) {
                    return Ok(None);
                }
                let (wa, wb) = extremum_weights(&ja, &jb, max)?;
                let ta = t[0].as_ref().map(|t| t.mul(&wa)).transpose()?;
                let tb = t[1].as_ref().map(|t| t.mul(&wb)).transpose()?;
                tangent_sum(&ta, &tb, false, &so)
            },
        ))
    }

    /// x + c.
    pub fn add_scalar(&self, c: f64) -> Result<Tensor> {
        let out = map1!("add_scalar", self, |v| v + T::of(c))?;
        Ok(record1_jvp(
            "add_scalar",
            &[self],
            out,
            |g, _| Ok(vec![Some(g.clone())]),
            |t| Ok(t[0].clone()),
        ))
    }
    /// x · c.
    pub fn mul_scalar(&self, c: f64) -> Result<Tensor> {
        let out = map1!("mul_scalar", self, |v| v * T::of(c))?;
        Ok(record1_jvp(
            "mul_scalar",
            &[self],
            out,
            move |g, _| Ok(vec![Some(g.mul_scalar(c)?)]),
            move |t| t[0].as_ref().map(|t| t.mul_scalar(c)).transpose(),
        ))
    }
    /// x / c.
    pub fn div_scalar(&self, c: f64) -> Result<Tensor> {
        self.mul_scalar(1.0 / c)
    }
    /// c − x.
    pub fn rsub_scalar(&self, c: f64) -> Result<Tensor> {
        self.neg()?.add_scalar(c)
    }

    /// `where_(mask, a, b)`: a where mask ≠ 0, else b (broadcasting). Gradient reaches only
    /// the selected branch: an inf/NaN in the other branch never leaks into a gradient.
    ///
    /// ```
    /// use eingrad::Tensor;
    /// let m = Tensor::from_vec(vec![1.0f64, 0.0], &[2]).unwrap();
    /// let a = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap();
    /// let b = Tensor::from_vec(vec![f64::NAN, 5.0], &[2]).unwrap();
    /// assert_eq!(Tensor::where_(&m, &a, &b).unwrap().to_vec::<f64>().unwrap(), vec![1.0, 5.0]);
    /// ```
    pub fn where_(mask: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        if mask.dtype() != a.dtype() {
            return Err(Error::DTypeMismatch {
                op: "where_",
                lhs: mask.dtype(),
                rhs: a.dtype(),
            });
        }
        let out = with_dtype!(a.dtype(), T => map_ternary::<T>("where_", mask, a, b, |m, u, v| if m != T::zero() { u } else { v }))?;
        let (m, sa, sb) = (mask.detach(), a.dims().to_vec(), b.dims().to_vec());
        let (jm, so) = (m.clone(), out.dims().to_vec());
        Ok(record1_jvp(
            "where_",
            &[a, b],
            out,
            move |g, needs| {
                let zero = Tensor::zeros(&[], g.dtype())?;
                Ok(vec![
                    if needs[0] {
                        Some(Tensor::where_(&m, g, &zero)?.sum_to(&sa)?)
                    } else {
                        None
                    },
                    if needs[1] {
                        Some(Tensor::where_(&m, &zero, g)?.sum_to(&sb)?)
                    } else {
                        None
                    },
                ])
            },
            // Selected, not multiplied by the mask: a non-finite tangent in the unselected
            // branch never leaks.
            move |t| {
                let dtype = match (&t[0], &t[1]) {
                    (Some(x), _) | (None, Some(x)) => x.dtype(),
                    (None, None) => return Ok(None),
                };
                let zero = Tensor::zeros(&[], dtype)?;
                let ta = t[0].as_ref().unwrap_or(&zero);
                let tb = t[1].as_ref().unwrap_or(&zero);
                Ok(Some(Tensor::where_(&jm, ta, tb)?.broadcast_to(&so)?))
            },
        ))
    }
    /// `value` where mask ≠ 0, else `self`; the gradient is zero where filled.
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Result<Tensor> {
        let fits = crate::layout::broadcast_shapes("masked_fill", mask.dims(), self.dims())
            .is_ok_and(|s| s == self.dims());
        if !fits {
            return Err(Error::ShapeMismatch {
                op: "masked_fill",
                lhs: self.dims().to_vec(),
                rhs: mask.dims().to_vec(),
                detail: " (the mask must broadcast to the tensor's shape)".into(),
            });
        }
        let fill = Tensor::scalar(value, self.dtype());
        Tensor::where_(mask, &fill, self)
    }
}

macro_rules! comparison {
    ($name:ident, $scalar:ident, $op:tt, $doc:literal) => {
        impl Tensor {
            #[doc = concat!("Mask (1.0/0.0, same dtype) of `self ", stringify!($op), " other` with broadcasting; ", $doc, " No gradient flows through a mask.")]
            pub fn $name(&self, other: &Tensor) -> Result<Tensor> {
                map2!(stringify!($name), &self.detach(), &other.detach(), |u, v| bool_to::<T>(u $op v))
            }
            #[doc = concat!("Mask of `self ", stringify!($op), " c`.")]
            pub fn $scalar(&self, c: f64) -> Result<Tensor> {
                map1!(stringify!($scalar), &self.detach(), |v| bool_to::<T>(v $op T::of(c)))
            }
        }
    };
}
comparison!(eq, eq_scalar, ==, "NaN compares unequal.");
comparison!(ne, ne_scalar, !=, "NaN compares unequal.");
comparison!(lt, lt_scalar, <, "");
comparison!(le, le_scalar, <=, "");
comparison!(gt, gt_scalar, >, "");
comparison!(ge, ge_scalar, >=, "");
