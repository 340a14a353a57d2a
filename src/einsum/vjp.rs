//! The VJP of an einsum with respect to one operand, as an einsum pattern string.

use super::parse::{parse_pattern, term_to_string};
use crate::error::{Error, Result};

/// The generalised einsum that maps the output gradient and the other operands to the
/// gradient of operand `k`: for `"in0,in1,…->out"` it is `"out,in0,…(without ink)…->ink"`.
/// Labels of `ink` found in neither `out` nor another operand become output-only labels
/// (broadcasts whose sizes are operand `k`'s), and repeated labels of `ink` become repeated
/// output labels (diagonal embeddings).
///
/// ```
/// use eingrad::einsum::einsum_vjp_pattern;
/// assert_eq!(einsum_vjp_pattern("bij,bjk->bik", 0).unwrap(), "bik,bjk->bij");
/// assert_eq!(einsum_vjp_pattern("bij,bjk->bik", 1).unwrap(), "bik,bij->bjk");
/// assert_eq!(einsum_vjp_pattern("ii->i", 0).unwrap(), "i->ii");
/// assert_eq!(einsum_vjp_pattern("...ij,...jk", 1).unwrap(), "...ik,...ij->...jk");
/// ```
pub fn einsum_vjp_pattern(pattern: &str, k: usize) -> Result<String> {
    let n = pattern.split("->").next().unwrap_or("").split(',').count();
    let spec = parse_pattern(pattern, n)?;
    if k >= spec.inputs.len() {
        return Err(Error::arg(
            "einsum_vjp_pattern",
            "k",
            format!(
                "operand {k} does not exist; \"{pattern}\" has {} operands",
                spec.inputs.len()
            ),
        ));
    }
    // Ellipsis dims of operand k that neither the output nor another operand carries would
    // become output-only dims, but the notation cannot give an ellipsis a size.
    let has_ellipsis = |t: &[super::parse::Label]| t.contains(&super::parse::Label::Ellipsis);
    if has_ellipsis(&spec.inputs[k])
        && !has_ellipsis(&spec.output)
        && !spec
            .inputs
            .iter()
            .enumerate()
            .any(|(j, t)| j != k && has_ellipsis(t))
    {
        return Err(Error::Einsum {
            pattern: pattern.to_string(),
            msg: format!(
                "the VJP of operand {k} needs its '...' dims as output-only dims, which cannot be \
                 sized in einsum notation; write the ellipsis dims as letters"
            ),
        });
    }
    let mut terms = vec![term_to_string(&spec.output)];
    for (j, t) in spec.inputs.iter().enumerate() {
        if j != k {
            terms.push(term_to_string(t));
        }
    }
    Ok(format!(
        "{}->{}",
        terms.join(","),
        term_to_string(&spec.inputs[k])
    ))
}
