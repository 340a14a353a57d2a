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
