//! Closed-form Jacobians of einsums: ∂z/∂x_k for `z = einsum(pattern, x_0, …)` as one
//! generalised einsum of the other operands.
//!
//! Write `z[o] = Σ_s Π_j x_j[λ_j]` (s: the labels not in the output). Differentiating by
//! `x_k[ξ]` replaces the factor `x_k[λ_k]` by `Π_d δ(λ_{k,d}, ξ_d)`; summing the deltas away
//! ties each label of operand k to the matching Jacobian index. So, with every label of
//! operand k written once more in the output:
//!
//! `∂z/∂x_k = einsum("other operands' terms -> out ++ term_k")`
//!
//! and the generalised notation does the rest: a label of operand k that is also in `out`
//! becomes a repeated output label (a diagonal, the identity δ), one shared with other operands
//! stays free (indexes the Jacobian's column instead of being summed), one found nowhere else
//! becomes an output-only label (a broadcast of ones, its size taken from `x_k`), and a label
//! repeated within `term_k` is repeated in the output (a diagonal again). Nothing the size of
//! `x · w · x` is ever built: the cost is the size of the Jacobian itself.
//!
//! Ellipses are expanded into fresh letters. A dim of operand k that is broadcast (size 1
//! against a larger size elsewhere) gets a fresh size-1 label of its own: every output entry
//! depends on that single element.

use std::collections::BTreeSet;

use crate::einsum::einsum_with_sizes;
use crate::einsum::parse::{parse_pattern, resolve};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The einsum that computes ∂z/∂x_k: see [`einsum_jacobian_spec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EinsumJacobianSpec {
    /// The generalised einsum pattern (letters only; ellipses expanded).
    pub pattern: String,
    /// Sizes of the output labels (to pass to [`einsum_with_sizes`]).
    pub sizes: Vec<(char, usize)>,
    /// Which original operands the pattern takes, in order (all but `k`). When this is empty
    /// the pattern has one empty input term, for a scalar one.
    pub operands: Vec<usize>,
    /// The shape of the Jacobian: `out.shape ++ x_k.shape`.
    pub shape: Vec<usize>,
}

/// Letters not used by the pattern, handed out in order.
struct FreshLetters {
    free: Vec<char>,
    pattern: String,
}

impl FreshLetters {
    fn new(pattern: &str, used: &BTreeSet<char>) -> Self {
        let free = ('a'..='z')
            .chain('A'..='Z')
            .filter(|c| !used.contains(c))
            .rev()
            .collect();
        FreshLetters {
            free,
            pattern: pattern.to_string(),
        }
    }
    fn take(&mut self, why: &str) -> Result<char> {
        self.free.pop().ok_or_else(|| Error::Einsum {
            pattern: self.pattern.clone(),
            msg: format!(
                "einsum_jacobian: no unused letter left for {why} (all 52 letters a–z, A–Z \
                 are taken)"
            ),
        })
    }
}

/// The generalised einsum (pattern, label sizes, operands) that gives ∂z/∂x_k for
/// `z = einsum(pattern, operands)` with operands of the given shapes, without computing it.
///
/// The pattern is `"other operands' terms -> out ++ term_k"`: differentiating
/// `z[o] = Σ Π_j x_j[λ_j]` by `x_k[ξ]` replaces `x_k`'s factor by deltas that tie each of its
/// labels to the matching Jacobian index. A label of `x_k` also in `out` becomes a repeated
/// output label (a diagonal: the identity), one shared with other operands stays free (it
/// indexes the Jacobian instead of being summed), one found nowhere else becomes an
/// output-only label (a broadcast of ones, sized from `x_k`), and a label repeated within
/// `term_k` is repeated in the output. Ellipses become fresh letters; a broadcast (size-1)
/// dim of `x_k` gets a fresh size-1 label. With no other operand the pattern has one empty
/// input term, for a scalar one.
///
/// ```
/// use eingrad::func::einsum_jacobian_spec;
/// let s = einsum_jacobian_spec("ij,jk->ik", &[&[2, 3], &[3, 4]], 0).unwrap();
/// assert_eq!(s.pattern, "jk->ikij"); // J[i,k,i',j] = δ(i,i') w[j,k]
/// assert_eq!(s.shape, vec![2, 4, 2, 3]);
/// assert_eq!(s.operands, vec![1]);
/// let s = einsum_jacobian_spec("ij,jk->ik", &[&[2, 3], &[3, 4]], 1).unwrap();
/// assert_eq!(s.pattern, "ij->ikjk");
/// ```
pub fn einsum_jacobian_spec(
    pattern: &str,
    shapes: &[&[usize]],
    k: usize,
) -> Result<EinsumJacobianSpec> {
    let n = shapes.len();
    if k >= n {
        return Err(Error::arg(
            "einsum_jacobian",
            "k",
            format!("k = {k} is out of range: \"{pattern}\" was given {n} operands"),
        ));
    }
    let spec = parse_pattern(pattern, n)?;
    let r = resolve(pattern, &spec, shapes, &[])?;

    // Letters: keep the pattern's own, give each ellipsis dim a fresh one.
    let used: BTreeSet<char> = r
        .inputs
        .iter()
        .flatten()
        .chain(&r.output)
        .copied()
        .filter(|c| c.is_ascii_alphabetic())
        .collect();
    let mut fresh = FreshLetters::new(pattern, &used);
    let mut rename = std::collections::BTreeMap::new();
    for &e in &r.ellipsis_labels {
        rename.insert(e, fresh.take("a dim covered by '...'")?);
    }
    let letter = |c: char| rename.get(&c).copied().unwrap_or(c);

    let mut sizes: Vec<(char, usize)> = Vec::new();
    let mut add_size = |c: char, s: usize| {
        if !sizes.iter().any(|&(x, _)| x == c) {
            sizes.push((c, s));
        }
    };
    let mut out: String = String::new();
    for &c in &r.output {
        out.push(letter(c));
        add_size(letter(c), r.sizes[&c]);
    }
    for (d, &c) in r.inputs[k].iter().enumerate() {
        if r.broadcast[k][d] {
            let f = fresh.take("a broadcast (size-1) dim of the differentiated operand")?;
            out.push(f);
            add_size(f, 1);
        } else {
            out.push(letter(c));
            add_size(letter(c), r.sizes[&c]);
        }
    }
    let operands: Vec<usize> = (0..n).filter(|&j| j != k).collect();
    let terms: Vec<String> = if operands.is_empty() {
        vec![String::new()] // a scalar one
    } else {
        operands
            .iter()
            .map(|&j| r.inputs[j].iter().map(|&c| letter(c)).collect())
            .collect()
    };
    let shape: Vec<usize> = r
        .output
        .iter()
        .map(|c| r.sizes[c])
        .chain(shapes[k].iter().copied())
        .collect();
    Ok(EinsumJacobianSpec {
        pattern: format!("{}->{}", terms.join(","), out),
        sizes,
        operands,
        shape,
    })
}

/// ∂z/∂x_k for `z = einsum(pattern, operands)` in closed form: one generalised einsum of the
/// other operands (built by [`einsum_jacobian_spec`]), of shape `z.shape ++ operands[k].shape`.
/// Nothing larger than the Jacobian itself is built.
/// Returns the Jacobian and the pattern that produced it. Other operands are constants here
/// (a partial derivative, even if the same tensor is passed twice); the result is itself
/// differentiable with respect to them.
///
/// ```
/// use eingrad::{Tensor, DType, func::einsum_jacobian};
/// let x = Tensor::randn(&[2, 3], DType::F64, 0).unwrap();
/// let w = Tensor::randn(&[3, 4], DType::F64, 1).unwrap();
/// let (j, p) = einsum_jacobian("ij,jk->ik", &[&x, &w], 0).unwrap();
/// assert_eq!(p, "jk->ikij");
/// assert_eq!(j.dims(), &[2, 4, 2, 3]);
/// assert!(einsum_jacobian("ij,jk->ik", &[&x, &w], 2).unwrap_err().to_string().contains("k = 2"));
/// ```
pub fn einsum_jacobian(pattern: &str, operands: &[&Tensor], k: usize) -> Result<(Tensor, String)> {
    let shapes: Vec<&[usize]> = operands.iter().map(|t| t.dims()).collect();
    let s = einsum_jacobian_spec(pattern, &shapes, k)?;
    for (j, t) in operands.iter().enumerate() {
        if t.dtype() != operands[0].dtype() {
            return Err(Error::Einsum {
                pattern: pattern.to_string(),
                msg: format!(
                    "operand {j} is {:?} but operand 0 is {:?}",
                    t.dtype(),
                    operands[0].dtype()
                ),
            });
        }
    }
    let unit;
    let others: Vec<&Tensor> = if s.operands.is_empty() {
        unit = Tensor::ones(&[], operands[k].dtype())?;
        vec![&unit]
    } else {
        s.operands.iter().map(|&j| operands[j]).collect()
    };
    let j = einsum_with_sizes(&s.pattern, &others, &s.sizes)?;
    if j.dims() != s.shape.as_slice() {
        return Err(Error::Einsum {
            pattern: s.pattern,
            msg: format!(
                "einsum_jacobian: produced shape {:?}, expected {:?}",
                j.dims(),
                s.shape
            ),
        });
    }
    Ok((j, s.pattern))
}
