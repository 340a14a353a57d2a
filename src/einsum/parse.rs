//! Parsing of einsum patterns (NumPy/PyTorch notation plus generalised outputs) and resolution
//! of their labels to concrete dim sizes.
//!
//! A pattern such as `"...ij,jk->...ik"` is first parsed by [`parse_pattern`] into an
//! [`EinsumSpec`] (pure syntax), then [`resolve`] matches it against the operands' shapes,
//! expands every `...` into synthetic labels and computes the size of every label, giving a
//! [`ResolvedSpec`] whose terms are plain `char` lists.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// One label of a parsed term; `Label::Ellipsis` stands for the `...` dims.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Label {
    /// An ASCII letter label (`a`–`z`, `A`–`Z`).
    Char(char),
    /// The `...` that stands for any number of (broadcast) dims.
    Ellipsis,
}

/// A parsed einsum pattern: one term per input operand and the output term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EinsumSpec {
    /// The input terms, one per operand, in order.
    pub inputs: Vec<Vec<Label>>,
    /// The output term: explicit (after `->`) or the implicit NumPy output.
    pub output: Vec<Label>,
    /// Whether the pattern gave its output explicitly with `->`.
    pub explicit_output: bool,
}

/// The first code point used for the synthetic labels that an ellipsis expands into; synthetic
/// labels are `ELLIPSIS_LABEL_BASE`, `ELLIPSIS_LABEL_BASE + 1`, … and are never ASCII letters.
pub const ELLIPSIS_LABEL_BASE: u32 = 0x100;

/// Whether `c` is a synthetic label produced by expanding an ellipsis (i.e. not a letter label).
pub fn is_synthetic_label(c: char) -> bool {
    !c.is_ascii_alphabetic()
}

/// Renders a parsed term back to pattern text, e.g. `[Ellipsis, Char('i')]` → `"...i"`.
pub fn term_to_string(term: &[Label]) -> String {
    let mut s = String::new();
    for l in term {
        match l {
            Label::Char(c) => s.push(*c),
            Label::Ellipsis => s.push_str("..."),
        }
    }
    s
}

/// A string of spaces with a `^` at char position `pos`.
fn caret_at(pos: usize) -> String {
    let mut s = " ".repeat(pos);
    s.push('^');
    s
}

/// A parse error at char position `pos` of `pattern`.
fn parse_err(pattern: &str, pos: usize, msg: impl Into<String>) -> Error {
    Error::EinsumParse {
        pattern: pattern.to_string(),
        caret: caret_at(pos),
        msg: msg.into(),
    }
}

/// A semantic einsum error about `pattern`.
fn einsum_err(pattern: &str, msg: impl Into<String>) -> Error {
    Error::Einsum {
        pattern: pattern.to_string(),
        msg: msg.into(),
    }
}

/// `"1 input term"` / `"2 input terms"`.
fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Parses an einsum pattern for `n_operands` operands.
///
/// Letters `a`–`z` and `A`–`Z` are labels, `...` may appear at most once per term, whitespace
/// is ignored, terms are separated by `,` and an optional `->` introduces the output. Without
/// `->` the output is every label that appears exactly once over all inputs, in ASCII order
/// (uppercase before lowercase), preceded by the ellipsis if any input has one. An explicit
/// output may repeat labels (`"i->ii"`, a diagonal embedding) and may name labels absent from
/// every input (a generalised broadcast whose sizes are given to [`resolve`]).
///
/// Errors are [`Error::EinsumParse`] with a caret under the offending character.
pub fn parse_pattern(pattern: &str, n_operands: usize) -> Result<EinsumSpec> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut inputs: Vec<Vec<Label>> = Vec::new();
    let mut output: Option<Vec<Label>> = None;
    let mut cur: Vec<Label> = Vec::new();
    let mut cur_has_ellipsis = false;
    let mut out_ellipsis_pos: Option<usize> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() {
            cur.push(Label::Char(c));
            i += 1;
        } else if c == '.' {
            let run = chars[i..].iter().take(3).take_while(|&&d| d == '.').count();
            if run < 3 {
                return Err(parse_err(pattern, i, "incomplete ellipsis: expected '...'"));
            }
            if cur_has_ellipsis {
                return Err(parse_err(
                    pattern,
                    i,
                    "ellipsis '...' may appear only once per term",
                ));
            }
            cur_has_ellipsis = true;
            if output.is_some() {
                out_ellipsis_pos = Some(i);
            }
            cur.push(Label::Ellipsis);
            i += 3;
        } else if c == ',' {
            if output.is_some() {
                return Err(parse_err(pattern, i, "the output term may not contain ','"));
            }
            inputs.push(std::mem::take(&mut cur));
            cur_has_ellipsis = false;
            i += 1;
        } else if c == '-' {
            if chars.get(i + 1) != Some(&'>') {
                return Err(parse_err(
                    pattern,
                    i,
                    "expected '->' ('-' must be followed by '>')",
                ));
            }
            if output.is_some() {
                return Err(parse_err(pattern, i, "'->' may appear only once"));
            }
            inputs.push(std::mem::take(&mut cur));
            output = Some(Vec::new());
            cur_has_ellipsis = false;
            i += 2;
        } else {
            return Err(parse_err(
                pattern,
                i,
                format!("invalid character '{c}' in subscripts"),
            ));
        }
    }
    let explicit_output = output.is_some();
    let output = if explicit_output {
        cur
    } else {
        inputs.push(cur);
        Vec::new()
    };
    if inputs.len() != n_operands {
        return Err(parse_err(
            pattern,
            chars.len(),
            format!(
                "pattern has {} but {} given",
                plural(inputs.len(), "input term", "input terms"),
                if n_operands == 1 {
                    "1 operand was".to_string()
                } else {
                    format!("{n_operands} operands were")
                }
            ),
        ));
    }
    let any_input_ellipsis = inputs.iter().any(|t| t.contains(&Label::Ellipsis));
    let output = if explicit_output {
        if let Some(pos) = out_ellipsis_pos {
            if !any_input_ellipsis {
                return Err(parse_err(
                    pattern,
                    pos,
                    "output has '...' but no input term has one",
                ));
            }
        }
        output
    } else {
        implicit_output(&inputs, any_input_ellipsis)
    };
    Ok(EinsumSpec {
        inputs,
        output,
        explicit_output,
    })
}

/// The NumPy implicit output: the ellipsis (if any input has one), then the labels that appear
/// exactly once over all inputs in ASCII order.
fn implicit_output(inputs: &[Vec<Label>], any_ellipsis: bool) -> Vec<Label> {
    let mut counts: BTreeMap<char, usize> = BTreeMap::new();
    for term in inputs {
        for l in term {
            if let Label::Char(c) = l {
                *counts.entry(*c).or_insert(0) += 1;
            }
        }
    }
    let mut out = Vec::new();
    if any_ellipsis {
        out.push(Label::Ellipsis);
    }
    out.extend(
        counts
            .into_iter()
            .filter(|&(_, n)| n == 1)
            .map(|(c, _)| Label::Char(c)),
    );
    out
}

/// An einsum pattern matched against concrete operand shapes.
///
/// Every `...` is expanded into synthetic labels (see [`ELLIPSIS_LABEL_BASE`]), so `inputs` and
/// `output` are plain `char` lists: `inputs[k][d]` is the label of dim `d` of operand `k`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSpec {
    /// The parsed pattern this was resolved from.
    pub spec: EinsumSpec,
    /// Per operand, the label of each of its dims (ellipsis expanded; length = operand rank).
    pub inputs: Vec<Vec<char>>,
    /// The output labels (ellipsis expanded); may repeat labels and hold output-only labels.
    pub output: Vec<char>,
    /// The size of every label of the inputs and the output (after broadcasting).
    pub sizes: BTreeMap<char, usize>,
    /// The synthetic labels of the broadcast ellipsis, outermost first; an operand whose
    /// ellipsis covers `e` dims uses the last `e` of them (right alignment).
    pub ellipsis_labels: Vec<char>,
    /// Per operand and dim: whether the dim has size 1 while its label's size is larger, i.e.
    /// the dim is broadcast.
    pub broadcast: Vec<Vec<bool>>,
}

/// Describes a label for error messages: `label 'i'` or `dim 0 of '...'`.
fn describe_label(c: char, ellipsis_labels: &[char]) -> String {
    match ellipsis_labels.iter().position(|&e| e == c) {
        Some(j) => format!("dim {j} of '...'"),
        None => format!("label '{c}'"),
    }
}

/// Resolves labels to dim sizes given each operand's shape.
///
/// Ellipsis dims are broadcast NumPy-style (right aligned, size-1 stretches) and a labelled dim
/// of size 1 broadcasts against a larger size of the same label; repeated labels within one term
/// must have equal sizes (they denote a diagonal). `extra_sizes` gives the sizes of output-only
/// labels; an entry for a label that also appears in the inputs must agree with it (or stretch
/// a size of 1), and entries for labels absent from the pattern are ignored. Errors are
/// [`Error::Einsum`] naming the pattern, the operand, the label and the sizes at fault.
pub fn resolve(
    pattern: &str,
    spec: &EinsumSpec,
    shapes: &[&[usize]],
    extra_sizes: &[(char, usize)],
) -> Result<ResolvedSpec> {
    if shapes.len() != spec.inputs.len() {
        return Err(einsum_err(
            pattern,
            format!(
                "pattern has {} but {} given",
                plural(spec.inputs.len(), "input term", "input terms"),
                if shapes.len() == 1 {
                    "1 operand was".to_string()
                } else {
                    format!("{} operands were", shapes.len())
                }
            ),
        ));
    }
    for term in spec.inputs.iter().chain(std::iter::once(&spec.output)) {
        for l in term {
            if let Label::Char(c) = l {
                if !c.is_ascii_alphabetic() {
                    return Err(einsum_err(
                        pattern,
                        format!("invalid label '{c}': labels must be ASCII letters"),
                    ));
                }
            }
        }
    }

    // Ellipsis extent of each operand.
    let mut ellipsis_rank = Vec::with_capacity(shapes.len());
    for (k, (term, shape)) in spec.inputs.iter().zip(shapes).enumerate() {
        let n_ell = term.iter().filter(|l| **l == Label::Ellipsis).count();
        let m = term.len() - n_ell;
        let r = shape.len();
        if n_ell > 1 {
            return Err(einsum_err(
                pattern,
                format!(
                    "term '{}' of operand {k} has more than one '...'",
                    term_to_string(term)
                ),
            ));
        }
        if n_ell == 0 && r != m {
            return Err(einsum_err(
                pattern,
                format!(
                    "operand {k} has shape {shape:?} (rank {r}) but its term '{}' has {}",
                    term_to_string(term),
                    plural(m, "label", "labels")
                ),
            ));
        }
        if n_ell == 1 && r < m {
            return Err(einsum_err(
                pattern,
                format!(
                    "operand {k} has shape {shape:?} (rank {r}) but its term '{}' needs at least {}",
                    term_to_string(term),
                    plural(m, "dim", "dims")
                ),
            ));
        }
        ellipsis_rank.push(r - m);
    }
    let max_e = ellipsis_rank.iter().copied().max().unwrap_or(0);
    let mut ellipsis_labels = Vec::with_capacity(max_e);
    for j in 0..max_e {
        let c = u32::try_from(j)
            .ok()
            .and_then(|j| ELLIPSIS_LABEL_BASE.checked_add(j))
            .and_then(char::from_u32)
            .ok_or_else(|| einsum_err(pattern, format!("'...' covers too many dims ({max_e})")))?;
        ellipsis_labels.push(c);
    }

    // Concrete labels per operand.
    let mut inputs: Vec<Vec<char>> = Vec::with_capacity(shapes.len());
    for (term, &e) in spec.inputs.iter().zip(&ellipsis_rank) {
        let mut labels = Vec::with_capacity(term.len() + e);
        for l in term {
            match l {
                Label::Char(c) => labels.push(*c),
                Label::Ellipsis => labels.extend_from_slice(&ellipsis_labels[max_e - e..]),
            }
        }
        inputs.push(labels);
    }

    // Sizes: repeated labels within a term must agree exactly; across operands 1 stretches.
    let mut sizes: BTreeMap<char, usize> = BTreeMap::new();
    let mut seen_in: BTreeMap<char, usize> = BTreeMap::new();
    for (k, (labels, shape)) in inputs.iter().zip(shapes).enumerate() {
        let mut local: BTreeMap<char, usize> = BTreeMap::new();
        for (&c, &s) in labels.iter().zip(shape.iter()) {
            if let Some(&prev) = local.get(&c) {
                if prev != s {
                    return Err(einsum_err(
                        pattern,
                        format!(
                            "operand {k} (shape {shape:?}) repeats {} with sizes {prev} and {s}; \
                             a repeated label takes a diagonal, so its dims must be equal",
                            describe_label(c, &ellipsis_labels)
                        ),
                    ));
                }
                continue;
            }
            local.insert(c, s);
            match sizes.get(&c).copied() {
                None => {
                    sizes.insert(c, s);
                    seen_in.insert(c, k);
                }
                Some(prev) if prev == s || s == 1 => {}
                Some(1) => {
                    sizes.insert(c, s);
                    seen_in.insert(c, k);
                }
                Some(prev) => {
                    let k0 = seen_in.get(&c).copied().unwrap_or(0);
                    return Err(einsum_err(
                        pattern,
                        format!(
                            "operand {k} (shape {shape:?}) has size {s} for {} but operand {k0} \
                             has size {prev}",
                            describe_label(c, &ellipsis_labels)
                        ),
                    ));
                }
            }
        }
    }

    // Output labels, with the ellipsis expanded.
    let mut output = Vec::with_capacity(spec.output.len() + max_e);
    for l in &spec.output {
        match l {
            Label::Char(c) => output.push(*c),
            Label::Ellipsis => output.extend_from_slice(&ellipsis_labels),
        }
    }

    // Extra sizes: output-only labels, or stretching a size-1 input label.
    let mut extra: BTreeMap<char, usize> = BTreeMap::new();
    for &(c, s) in extra_sizes {
        if !c.is_ascii_alphabetic() {
            // Labels are ASCII letters; the ellipsis's internal labels (U+0100 on) are not
            // the caller's to size.
            return Err(einsum_err(
                pattern,
                format!(
                    "a size was given for '{c}', which is not a label: labels are ASCII letters"
                ),
            ));
        }
        if let Some(&prev) = extra.get(&c) {
            if prev != s {
                return Err(einsum_err(
                    pattern,
                    format!("label '{c}' was given two sizes, {prev} and {s}"),
                ));
            }
        }
        extra.insert(c, s);
    }
    for (&c, &s) in &extra {
        match sizes.get(&c).copied() {
            Some(prev) if prev == s => {}
            Some(1) => {
                sizes.insert(c, s);
            }
            Some(prev) => {
                return Err(einsum_err(
                    pattern,
                    format!("label '{c}' has size {prev} in the operands but size {s} was given"),
                ));
            }
            None => {
                if output.contains(&c) {
                    sizes.insert(c, s);
                }
            }
        }
    }
    for &c in &output {
        if !sizes.contains_key(&c) {
            return Err(einsum_err(
                pattern,
                format!("label '{c}' appears only in the output; give its size"),
            ));
        }
    }

    let broadcast = inputs
        .iter()
        .zip(shapes)
        .map(|(labels, shape)| {
            labels
                .iter()
                .zip(shape.iter())
                // A size-1 dim stretched to any other size (0 included) is a broadcast.
                .map(|(c, &s)| s == 1 && sizes.get(c).copied().unwrap_or(1) != 1)
                .collect()
        })
        .collect();

    Ok(ResolvedSpec {
        spec: spec.clone(),
        inputs,
        output,
        sizes,
        ellipsis_labels,
        broadcast,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<Label> {
        s.chars().map(Label::Char).collect()
    }

    /// The (caret, msg) of a parse error.
    fn perr(pattern: &str, n: usize) -> (String, String) {
        match parse_pattern(pattern, n) {
            Err(Error::EinsumParse {
                pattern: p,
                caret,
                msg,
            }) => {
                assert_eq!(p, pattern);
                (caret, msg)
            }
            other => panic!("expected a parse error for {pattern:?}, got {other:?}"),
        }
    }

    fn caret_pos(caret: &str) -> usize {
        assert!(caret.chars().filter(|&c| c == '^').count() == 1);
        assert!(caret.chars().all(|c| c == ' ' || c == '^'));
        caret.chars().position(|c| c == '^').unwrap()
    }

    fn emsg(r: Result<ResolvedSpec>) -> String {
        match r {
            Err(Error::Einsum { pattern: _, msg }) => msg,
            other => panic!("expected an einsum error, got {other:?}"),
        }
    }

    fn res(p: &str, shapes: &[&[usize]], extra: &[(char, usize)]) -> Result<ResolvedSpec> {
        let spec = parse_pattern(p, shapes.len())?;
        resolve(p, &spec, shapes, extra)
    }

    #[test]
    fn explicit_matmul() {
        let s = parse_pattern("ij,jk->ik", 2).unwrap();
        assert_eq!(s.inputs, vec![chars("ij"), chars("jk")]);
        assert_eq!(s.output, chars("ik"));
        assert!(s.explicit_output);
    }

    #[test]
    fn implicit_output_sorted_upper_first() {
        let s = parse_pattern("zb,bA,a", 3).unwrap();
        assert_eq!(s.output, chars("Aaz"));
        assert!(!s.explicit_output);
        let s = parse_pattern("ii", 1).unwrap();
        assert_eq!(s.output, vec![]);
        let s = parse_pattern("ij,...jk", 2).unwrap();
        assert_eq!(
            s.output,
            vec![Label::Ellipsis, Label::Char('i'), Label::Char('k')]
        );
    }

    #[test]
    fn whitespace_and_ellipsis() {
        let s = parse_pattern(" ... i j , j k -> ... i k ", 2).unwrap();
        assert_eq!(
            s.inputs[0],
            vec![Label::Ellipsis, Label::Char('i'), Label::Char('j')]
        );
        assert_eq!(
            s.output,
            vec![Label::Ellipsis, Label::Char('i'), Label::Char('k')]
        );
        let s = parse_pattern("i...j->", 1).unwrap();
        assert_eq!(
            s.inputs[0],
            vec![Label::Char('i'), Label::Ellipsis, Label::Char('j')]
        );
        assert!(s.output.is_empty());
    }

    #[test]
    fn empty_terms_and_generalised_output() {
        let s = parse_pattern(",i->", 2).unwrap();
        assert_eq!(s.inputs, vec![vec![], chars("i")]);
        let s = parse_pattern("i->iij", 1).unwrap();
        assert_eq!(s.output, chars("iij"));
        let s = parse_pattern("->", 1).unwrap();
        assert_eq!(s.inputs, vec![vec![]]);
    }

    #[test]
    fn caret_positions() {
        let (c, m) = perr("ij,j$->i", 2);
        assert_eq!(caret_pos(&c), 4);
        assert_eq!(m, "invalid character '$' in subscripts");
        let (c, m) = perr("...i...j", 1);
        assert_eq!(caret_pos(&c), 4);
        assert_eq!(m, "ellipsis '...' may appear only once per term");
        let (c, m) = perr("ij->i->j", 1);
        assert_eq!(caret_pos(&c), 5);
        assert!(m.contains("only once"), "{m}");
        let (c, m) = perr("i.j", 1);
        assert_eq!(caret_pos(&c), 1);
        assert!(m.contains("'...'"), "{m}");
        let (c, _) = perr("ab..", 1);
        assert_eq!(caret_pos(&c), 2);
        let (c, _) = perr("....a", 1);
        assert_eq!(caret_pos(&c), 3);
        let (c, m) = perr("ij,jk->ik", 3);
        assert_eq!(caret_pos(&c), 9);
        assert_eq!(m, "pattern has 2 input terms but 3 operands were given");
        let (c, m) = perr("ij", 2);
        assert_eq!(caret_pos(&c), 2);
        assert_eq!(m, "pattern has 1 input term but 2 operands were given");
        let (c, _) = perr("i j,  j - k", 2);
        assert_eq!(caret_pos(&c), 8);
        let (c, _) = perr("i>j", 1);
        assert_eq!(caret_pos(&c), 1);
        let (c, _) = perr("ij->i,j", 1);
        assert_eq!(caret_pos(&c), 5);
        let (c, m) = perr("ij->...i", 1);
        assert_eq!(caret_pos(&c), 4);
        assert!(m.contains("no input"), "{m}");
        let (c, _) = perr("ij->...i...", 1);
        assert_eq!(caret_pos(&c), 8);
        // Char positions, not bytes: 'é' is two bytes.
        let (c, m) = perr("é,j", 2);
        assert_eq!(caret_pos(&c), 0);
        assert!(m.contains('é'));
        let (c, _) = perr("ab,cé", 2);
        assert_eq!(caret_pos(&c), 4);
    }

    #[test]
    fn error_display_shows_caret() {
        let e = parse_pattern("ij,j$->i", 2).unwrap_err().to_string();
        assert!(e.contains("ij,j$->i"), "{e}");
        assert!(e.contains("    ^"), "{e}");
    }

    #[test]
    fn resolve_basic_and_ellipsis() {
        let r = res("...ij,jk->...ik", &[&[7, 5, 2, 3], &[3, 4]], &[]).unwrap();
        assert_eq!(r.ellipsis_labels.len(), 2);
        let (e0, e1) = (r.ellipsis_labels[0], r.ellipsis_labels[1]);
        assert!(is_synthetic_label(e0) && is_synthetic_label(e1) && e0 != e1);
        assert_eq!(r.inputs[0], vec![e0, e1, 'i', 'j']);
        assert_eq!(r.inputs[1], vec!['j', 'k']);
        assert_eq!(r.output, vec![e0, e1, 'i', 'k']);
        assert_eq!(r.sizes[&e0], 7);
        assert_eq!(r.sizes[&e1], 5);
        assert_eq!(r.sizes[&'k'], 4);
        assert!(r.broadcast.iter().flatten().all(|&b| !b));
    }

    #[test]
    fn resolve_ellipsis_right_aligned_broadcast() {
        let r = res("...i,...i->...i", &[&[4, 1, 3], &[5, 3]], &[]).unwrap();
        let (e0, e1) = (r.ellipsis_labels[0], r.ellipsis_labels[1]);
        assert_eq!(r.inputs[1], vec![e1, 'i']);
        assert_eq!(r.sizes[&e0], 4);
        assert_eq!(r.sizes[&e1], 5);
        assert_eq!(r.broadcast[0], vec![false, true, false]);
        assert_eq!(r.broadcast[1], vec![false, false]);
        // An empty ellipsis.
        let r = res("...i->...", &[&[3]], &[]).unwrap();
        assert!(r.ellipsis_labels.is_empty());
        assert_eq!(r.inputs[0], vec!['i']);
        assert!(r.output.is_empty());
    }

    #[test]
    fn resolve_labelled_broadcast() {
        let r = res("ij,ij->ij", &[&[1, 3], &[2, 3]], &[]).unwrap();
        assert_eq!(r.sizes[&'i'], 2);
        assert_eq!(r.broadcast[0], vec![true, false]);
        let r = res("ij,ij->ij", &[&[2, 3], &[1, 3]], &[]).unwrap();
        assert_eq!(r.broadcast[1], vec![true, false]);
        let r = res("i,i->i", &[&[1], &[1]], &[]).unwrap();
        assert_eq!(r.broadcast, vec![vec![false], vec![false]]);
    }

    #[test]
    fn resolve_size_mismatch() {
        let m = emsg(res("ij,jk->ik", &[&[2, 3], &[4, 5]], &[]));
        assert!(m.contains("operand 1") && m.contains("'j'"), "{m}");
        assert!(m.contains('3') && m.contains('4'), "{m}");
        let m = emsg(res("...i,...i", &[&[2, 3], &[4, 3]], &[]));
        assert!(m.contains("'...'"), "{m}");
    }

    #[test]
    fn resolve_diagonal() {
        let r = res("ii->i", &[&[3, 3]], &[]).unwrap();
        assert_eq!(r.inputs[0], vec!['i', 'i']);
        assert_eq!(r.output, vec!['i']);
        let m = emsg(res("ii->i", &[&[3, 4]], &[]));
        assert!(m.contains("operand 0") && m.contains("'i'"), "{m}");
        assert!(m.contains('3') && m.contains('4'), "{m}");
        // Repeated dims must be exactly equal, even if one is 1.
        assert!(res("ii", &[&[1, 4]], &[]).is_err());
    }

    #[test]
    fn resolve_rank_errors() {
        let m = emsg(res("ij,jk", &[&[2, 3], &[3]], &[]));
        assert!(
            m.contains("operand 1") && m.contains("[3]") && m.contains("'jk'"),
            "{m}"
        );
        let m = emsg(res("...ijk", &[&[2, 3]], &[]));
        assert!(m.contains("operand 0") && m.contains("[2, 3]"), "{m}");
        let spec = parse_pattern("ij,jk", 2).unwrap();
        assert!(resolve("ij,jk", &spec, &[&[2, 3]], &[]).is_err());
    }

    #[test]
    fn resolve_output_only_labels() {
        let m = emsg(res("i->ij", &[&[3]], &[]));
        assert_eq!(m, "label 'j' appears only in the output; give its size");
        let r = res("i->ij", &[&[3]], &[('j', 5), ('z', 9)]).unwrap();
        assert_eq!(r.sizes[&'j'], 5);
        assert!(!r.sizes.contains_key(&'z'));
        let r = res("i->ii", &[&[3]], &[]).unwrap();
        assert_eq!(r.output, vec!['i', 'i']);
        // Extra sizes must agree with the operands, or stretch a size of 1.
        assert!(res("i->ij", &[&[3]], &[('j', 5), ('i', 4)]).is_err());
        assert!(res("i->ij", &[&[3]], &[('j', 5), ('j', 6)]).is_err());
        let r = res("i->i", &[&[1]], &[('i', 4)]).unwrap();
        assert_eq!(r.sizes[&'i'], 4);
        assert_eq!(r.broadcast[0], vec![true]);
    }

    #[test]
    fn resolve_zero_sized() {
        let r = res("ij,jk->ik", &[&[0, 3], &[3, 1]], &[]).unwrap();
        assert_eq!(r.sizes[&'i'], 0);
        let r = res("i,i->i", &[&[1], &[0]], &[]).unwrap();
        assert_eq!(r.sizes[&'i'], 0);
    }
}
