//! Binary elementwise ops with NumPy broadcasting, scalar forms, comparisons and selection.

use super::{map1, map_binary, map_ternary, strong_mul, strong_zero};

use crate::autograd::{record1, sum_to, Rule};
use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::with_dtype;

macro_rules! map2 {
    ($op:expr, $a:expr, $b:expr, |$u:ident, $v:ident| $body:expr) => {
        with_dtype!($a.dtype(), T => map_binary::<T>($op, $a, $b, |$u: T, $v: T| $body))
    };
}

/// Records `out = a ± b` (`subtract`: minus): linear; its transpose sums g back to each
/// operand's shape (negated for b when subtracting), for one cotangent or a leading batch.
fn record_sum(name: &'static str, a: &Tensor, b: &Tensor, out: Tensor, subtract: bool) -> Tensor {
    record1(name, &[a, b], out, |_| {
        let shapes = [a.dims().to_vec(), b.dims().to_vec()];
        Rule::Linear {
            apply: Box::new(move |t| {
                if subtract {
                    t[0].sub(&t[1])
                } else {
                    t[0].add(&t[1])
                }
            }),
            transpose: Box::new(move |i, g, batched| {
                if subtract && i == 1 {
                    sum_to(&g.neg()?, &shapes[1], batched)
                } else {
                    sum_to(g, &shapes[i], batched)
                }
            }),
            batches: true,
        }
    })
}

/// ∂aᵇ/∂a = b·a^(b−1), which is 0 where b = 0 (aᵇ is then constant 1; PyTorch's rule: at
/// a = 0 the product would be 0·∞ = NaN). The base is taken as 1 there, so the rule's own
/// derivatives stay finite too.
fn pow_da(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let one = Tensor::ones(&[], a.dtype())?;
    let base = Tensor::where_(&b.eq_scalar(0.0)?, &one, a)?;
    b.mul(&base.pow(&b.add_scalar(-1.0)?)?)
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

impl Tensor {
    /// `self` (shaped `[batch] ++ out`) summed down to `[batch] ++ shape`, where `shape`
    /// broadcasts to `out`: [`Tensor::sum_to`] with a leading batch dim kept (batched
    /// reverse passes).
    ///
    /// ```
    /// let g = eingrad::Tensor::ones(&[4, 2, 3], eingrad::DType::F32).unwrap();
    /// assert_eq!(g.batched_sum_to(&[3]).unwrap().dims(), &[4, 3]);
    /// ```
    pub fn batched_sum_to(&self, shape: &[usize]) -> Result<Tensor> {
        let out_rank = self.rank().saturating_sub(1);
        let pad = out_rank.saturating_sub(shape.len());
        let padded: Vec<usize> = std::iter::once(self.dims().first().copied().unwrap_or(1))
            .chain(std::iter::repeat_n(1, pad))
            .chain(shape.iter().copied())
            .collect();
        let full: Vec<usize> = std::iter::once(padded[0])
            .chain(shape.iter().copied())
            .collect();
        self.sum_to(&padded)?.reshape(&full)
    }

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
        // Bilinear: ∂a = sum_to(g·b), ∂b = sum_to(g·a); the JVP ṫa·b + a·ṫb follows.
        Ok(record1("mul", &[self, other], out, |_| {
            let shapes = [self.dims().to_vec(), other.dims().to_vec()];
            Rule::Bilinear {
                a: self.clone(),
                b: other.clone(),
                // Strong zeros (see `strong_zero`): a zero tangent or gradient entry gives
                // zero even against an infinite operand.
                apply: Box::new(|x, y| strong_zero(y, strong_mul(x, y)?)),
                transpose: Box::new(move |i, g, other, batched| {
                    sum_to(&strong_mul(g, other)?, &shapes[i], batched)
                }),
            }
        }))
    }
    /// a / b with broadcasting: ∂a = g/b, ∂b = −(g/b)·(a/b).
    pub fn div(&self, other: &Tensor) -> Result<Tensor> {
        let out = map2!("div", self, other, |u, v| u / v)?;
        Ok(record1("div", &[self, other], out, |_| {
            let (a, b) = (self.clone(), other.clone());
            Rule::SelfAdjoint {
                map: Box::new(move |i, v| {
                    let vb = v.div(&b)?;
                    let r = if i == 0 {
                        vb
                    } else {
                        vb.mul(&a.div(&b)?)?.neg()?
                    };
                    strong_zero(v, r).map(Some)
                }),
                batches: true,
            }
        }))
    }
    /// aᵇ elementwise with broadcasting: ∂a = b·a^(b−1), ∂b = aᵇ·ln a (0 where a = 0; NaN for
    /// negative a, like PyTorch).
    pub fn pow(&self, other: &Tensor) -> Result<Tensor> {
        let out = map2!("pow", self, other, |u, v| u.powf(v))?;
        Ok(record1("pow", &[self, other], out, |_| {
            let (a, b) = (self.clone(), other.clone());
            Rule::SelfAdjoint {
                map: Box::new(move |i, v| {
                    let d = if i == 0 {
                        pow_da(&a, &b)?
                    } else {
                        pow_db(&a, &b)?
                    };
                    strong_mul(v, &d).map(Some)
                }),
                batches: true,
            }
        }))
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
        // The same weights on tangents: at a tie the output moves by the mean of the two
        // tangents, the transpose of the split gradient.
        Ok(record1(name, &[self, other], out, |_| {
            let (a, b) = (self.clone(), other.clone());
            Rule::SelfAdjoint {
                map: Box::new(move |i, v| {
                    let (wa, wb) = extremum_weights(&a, &b, max)?;
                    v.mul(if i == 0 { &wa } else { &wb }).map(Some)
                }),
                batches: true,
            }
        }))
    }

    /// x + c.
    pub fn add_scalar(&self, c: f64) -> Result<Tensor> {
        let out = map1!("add_scalar", self, |v| v + T::of(c))?;
        Ok(record1("add_scalar", &[self], out, |_| {
            Rule::self_adjoint1(true, |v| Ok(v.clone()))
        }))
    }
    /// x · c.
    pub fn mul_scalar(&self, c: f64) -> Result<Tensor> {
        let out = map1!("mul_scalar", self, |v| v * T::of(c))?;
        Ok(record1("mul_scalar", &[self], out, |_| {
            // 0·c = 0 for finite c; an infinite c needs strong zeros.
            Rule::self_adjoint1(true, move |v| {
                if c.is_finite() {
                    v.mul_scalar(c)
                } else {
                    strong_zero(v, v.mul_scalar(c)?)
                }
            })
        }))
    }
    /// x / c (a true division, not x · (1/c): `1e-300 / 1e-310` is 1e10, not inf).
    ///
    /// ```
    /// let x = eingrad::Tensor::from_vec(vec![1e-300f64, 0.0, 49.0], &[3]).unwrap();
    /// let y = x.div_scalar(1e-310).unwrap().to_vec::<f64>().unwrap();
    /// assert!((y[0] / 1e10 - 1.0).abs() < 1e-12 && y[1] == 0.0); // not inf, not NaN
    /// assert_eq!(x.div_scalar(49.0).unwrap().to_vec::<f64>().unwrap()[2], 1.0);
    /// ```
    pub fn div_scalar(&self, c: f64) -> Result<Tensor> {
        let out = map1!("div_scalar", self, |v| v / T::of(c))?;
        Ok(record1("div_scalar", &[self], out, |_| {
            Rule::self_adjoint1(true, move |v| v.div_scalar(c))
        }))
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
        // Each branch's derivative is the selection itself: an inf/NaN in the other branch
        // (of a gradient or a tangent) never leaks.
        Ok(record1("where_", &[a, b], out, |_| {
            let m = mask.detach();
            Rule::SelfAdjoint {
                map: Box::new(move |i, v| {
                    let zero = Tensor::zeros(&[], v.dtype())?;
                    let picked = if i == 0 {
                        Tensor::where_(&m, v, &zero)?
                    } else {
                        Tensor::where_(&m, &zero, v)?
                    };
                    Ok(Some(picked))
                }),
                batches: true,
            }
        }))
    }
    /// `value` where mask ≠ 0, else `self`; the gradient is zero where filled.
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Result<Tensor> {
        if mask.dtype() != self.dtype() {
            return Err(Error::DTypeMismatch {
                op: "masked_fill",
                lhs: self.dtype(),
                rhs: mask.dtype(),
            });
        }
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
