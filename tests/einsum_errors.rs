//! einsum error messages: a table of malformed patterns and mismatched operands, each checked
//! for the fragments its message must contain and, for parse errors, for a caret under the
//! character at fault. No input may panic.

use std::panic::{catch_unwind, AssertUnwindSafe};

use eingrad::einsum::{einsum_vjp_pattern, EinsumExpr, PlanStrategy};
use eingrad::{einsum_with_sizes, DType, Error, Tensor};

use DType::{F32, F64};

/// Where a parse error's caret must point (a char index into the pattern; the pattern's length
/// means "just past the end").
#[derive(Clone, Copy, Debug)]
enum Caret {
    /// Not a parse error: the error is about the operands, not a character.
    None,
    /// A parse error with the caret at this char index.
    At(usize),
}

struct Row {
    pattern: &'static str,
    operands: &'static [(&'static [usize], DType)],
    sizes: &'static [(char, usize)],
    /// Fragments the error's Display must contain.
    expect: &'static [&'static str],
    caret: Caret,
}

const fn row(
    pattern: &'static str,
    operands: &'static [(&'static [usize], DType)],
    sizes: &'static [(char, usize)],
    expect: &'static [&'static str],
    caret: Caret,
) -> Row {
    Row {
        pattern,
        operands,
        sizes,
        expect,
        caret,
    }
}

use Caret::{At, None as Sem};

const M23: (&[usize], DType) = (&[2, 3], F64);
const M32: (&[usize], DType) = (&[3, 2], F64);
const V3: (&[usize], DType) = (&[3], F64);

#[rustfmt::skip]
const TABLE: &[Row] = &[
    // ---- parse errors: bad characters ----
    row("ij,j$->i", &[M23, V3], &[], &["invalid character '$'"], At(4)),
    row("ab1", &[(&[2, 2, 2], F64)], &[], &["invalid character '1'"], At(2)),
    row("ij,jk->i_k", &[M23, M32], &[], &["invalid character '_'"], At(8)),
    row("i>j", &[M23], &[], &["invalid character '>'"], At(1)),
    row("i-j", &[M23], &[], &["'->'"], At(1)),
    row("ij-", &[M23], &[], &["'->'"], At(2)),
    row("é,j", &[V3, V3], &[], &["'é'"], At(0)),
    row("ab,cé", &[M23, M23], &[], &["'é'"], At(4)),
    row("i j,  j - k", &[M23, M32], &[], &["'->'"], At(8)),
    // ---- parse errors: ellipsis ----
    row("...i...j", &[M23], &[], &["only once per term"], At(4)),
    row("ij->...i...", &[(&[2, 3, 4], F64)], &[], &["'...'"], At(8)),
    row("i.j", &[M23], &[], &["incomplete ellipsis", "'...'"], At(1)),
    row(".", &[V3], &[], &["incomplete ellipsis"], At(0)),
    row("ab..", &[M23], &[], &["incomplete ellipsis"], At(2)),
    row("....a", &[V3], &[], &["'...'"], At(3)),
    row("ij->...i", &[M23], &[], &["output has '...' but no input term has one"], At(4)),
    row("ij,jk->...", &[M23, M32], &[], &["no input term has one"], At(7)),
    // ---- parse errors: arrows and terms ----
    row("ij->i->j", &[M23], &[], &["'->' may appear only once"], At(5)),
    row("ij->i,j", &[M23], &[], &["output term may not contain ','"], At(5)),
    row("ij,jk->ik", &[M23, M32, M32], &[], &["2 input terms but 3 operands were given"], At(9)),
    row("ij", &[M23, M32], &[], &["1 input term but 2 operands were given"], At(2)),
    row("i,j,k", &[V3, V3], &[], &["3 input terms but 2 operands were given"], At(5)),
    row("", &[], &[], &["1 input term but 0 operands were given"], At(0)),
    row("i->i", &[], &[], &["1 input term but 0 operands were given"], At(4)),
    // ---- operands: rank ----
    row("ij,jk", &[M23, V3], &[], &["operand 1", "[3]", "rank 1", "'jk'", "2 labels"], Sem),
    row("ijk->i", &[M23], &[], &["operand 0", "[2, 3]", "'ijk'", "3 labels"], Sem),
    row("", &[V3], &[], &["operand 0", "[3]", "0 labels"], Sem),
    row("...ijk", &[M23], &[], &["operand 0", "[2, 3]", "needs at least 3 dims"], Sem),
    // ---- operands: sizes ----
    row("ij,jk->ik", &[M23, (&[4, 5], F64)], &[], &["operand 1", "'j'", "size 4", "operand 0", "size 3"], Sem),
    row("ab,bc,cd->ad", &[M23, (&[3, 4], F64), (&[5, 2], F64)], &[], &["operand 2", "'c'", "size 5", "size 4"], Sem),
    row("Ab,bA->", &[M23, (&[3, 4], F64)], &[], &["operand 1", "'A'", "size 4", "size 2"], Sem),
    row("...i,...i", &[M23, (&[4, 3], F64)], &[], &["operand 1", "dim 0 of '...'", "size 4", "size 2"], Sem),
    row("ii->i", &[(&[3, 4], F64)], &[], &["operand 0", "repeats label 'i'", "sizes 3 and 4", "diagonal"], Sem),
    row("iij", &[(&[2, 3, 4], F64)], &[], &["operand 0", "label 'i'", "sizes 2 and 3"], Sem),
    row("ii", &[(&[1, 4], F64)], &[], &["label 'i'", "sizes 1 and 4"], Sem),
    row("ij,jii->", &[M23, (&[3, 2, 5], F64)], &[], &["operand 1", "label 'i'", "sizes 2 and 5"], Sem),
    // ---- output-only labels ----
    row("i->ij", &[V3], &[], &["label 'j' appears only in the output; give its size"], Sem),
    row("i->jj", &[V3], &[], &["label 'j'", "give its size"], Sem),
    row("ij,jk->ikz", &[M23, M32], &[('q', 2)], &["label 'z'", "give its size"], Sem),
    row("i->ij", &[V3], &[('j', 5), ('i', 4)], &["label 'i' has size 3 in the operands but size 4 was given"], Sem),
    row("i->ij", &[V3], &[('j', 5), ('j', 6)], &["label 'j' was given two sizes, 5 and 6"], Sem),
    // ---- dtypes ----
    row("ij,jk->ik", &[M23, (&[3, 2], F32)], &[], &["operand 1", "F32", "F64"], Sem),
    row("i,i,i->", &[(&[3], F32), (&[3], F32), V3], &[], &["operand 2", "F64", "F32"], Sem),
];

fn operands(r: &Row) -> Vec<Tensor> {
    r.operands
        .iter()
        .enumerate()
        .map(|(k, (s, d))| {
            let n: usize = s.iter().product();
            let v: Vec<f64> = (0..n).map(|i| (i + k) as f64 * 0.5).collect();
            Tensor::from_f64s(&v, s, *d).expect("valid test tensor")
        })
        .collect()
}

/// Runs one row's einsum, catching panics.
fn run(r: &Row) -> std::thread::Result<eingrad::Result<Tensor>> {
    let ops = operands(r);
    catch_unwind(AssertUnwindSafe(|| {
        let refs: Vec<&Tensor> = ops.iter().collect();
        einsum_with_sizes(r.pattern, &refs, r.sizes)
    }))
}

/// Checks that a parse error's Display has the pattern line and a caret line with exactly one
/// `^` under char `pos` of the pattern.
fn check_caret(display: &str, pattern: &str, pos: usize) -> Result<(), String> {
    let lines: Vec<&str> = display.lines().collect();
    let pat_line = lines
        .iter()
        .position(|l| l.trim_start() == pattern.trim_start() && l.ends_with(pattern))
        .ok_or_else(|| format!("no line showing the pattern in {display:?}"))?;
    let caret_line = lines
        .get(pat_line + 1)
        .ok_or_else(|| format!("no caret line in {display:?}"))?;
    let indent = lines[pat_line].chars().count() - pattern.chars().count();
    if caret_line.chars().filter(|&c| c == '^').count() != 1
        || !caret_line.chars().all(|c| c == ' ' || c == '^')
    {
        return Err(format!("malformed caret line {caret_line:?}"));
    }
    let at = caret_line.chars().position(|c| c == '^').unwrap_or(0);
    if at < indent || at - indent != pos {
        return Err(format!(
            "caret at char {} of the pattern, expected {pos}:\n{display}",
            at as isize - indent as isize
        ));
    }
    Ok(())
}

#[test]
fn error_table() {
    assert!(TABLE.len() >= 25, "{} rows", TABLE.len());
    let mut failures = Vec::new();
    for (i, r) in TABLE.iter().enumerate() {
        let id = format!("row {i} ({:?}, {} operands)", r.pattern, r.operands.len());
        let res = match run(r) {
            Ok(res) => res,
            Err(_) => {
                failures.push(format!("{id}: panicked"));
                continue;
            }
        };
        let err = match res {
            Ok(t) => {
                failures.push(format!("{id}: succeeded with shape {:?}", t.dims()));
                continue;
            }
            Err(e) => e,
        };
        let msg = err.to_string();
        for frag in r.expect {
            if !msg.contains(frag) {
                failures.push(format!("{id}: message lacks {frag:?}: {msg}"));
            }
        }
        match (r.caret, &err) {
            (At(pos), Error::EinsumParse { pattern, caret, .. }) => {
                if pattern != r.pattern {
                    failures.push(format!("{id}: error names pattern {pattern:?}"));
                }
                if caret.chars().position(|c| c == '^') != Some(pos) {
                    failures.push(format!("{id}: caret field {caret:?}, expected ^ at {pos}"));
                }
                if let Err(e) = check_caret(&msg, r.pattern, pos) {
                    failures.push(format!("{id}: {e}"));
                }
            }
            (At(_), other) => failures.push(format!("{id}: expected a parse error: {other:?}")),
            (Sem, Error::Einsum { pattern, .. }) => {
                if pattern != r.pattern || !msg.contains(&format!("\"{}\"", r.pattern)) {
                    failures.push(format!("{id}: message does not name the pattern: {msg}"));
                }
            }
            (Sem, other) => failures.push(format!("{id}: expected Error::Einsum: {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n  {}",
        failures.len(),
        TABLE.len(),
        failures.join("\n  ")
    );
}

#[test]
fn other_entry_points_report_errors() {
    // einsum_vjp_pattern: operand out of range, malformed pattern.
    let m = einsum_vjp_pattern("ij,jk", 5).unwrap_err().to_string();
    assert!(
        m.contains("einsum_vjp_pattern") && m.contains("operand 5"),
        "{m}"
    );
    assert!(m.contains("2 operands"), "{m}");
    let e = einsum_vjp_pattern("ij,j$", 0).unwrap_err();
    assert!(matches!(e, Error::EinsumParse { .. }), "{e:?}");
    // A compiled expression run on operands of other shapes, counts or dtypes.
    let expr = EinsumExpr::new("ij,jk->ik", &[&[2, 3], &[3, 2]], &[], PlanStrategy::Auto).unwrap();
    let a = Tensor::zeros(&[2, 3], F64).unwrap();
    let b = Tensor::zeros(&[3, 4], F64).unwrap();
    let m = expr.run(&[&a, &b]).unwrap_err().to_string();
    assert!(
        m.contains("ij,jk->ik") && m.contains("operand 1") && m.contains("[3, 4]"),
        "{m}"
    );
    let m = expr.run(&[&a]).unwrap_err().to_string();
    assert!(m.contains("compiled for 2 operands, got 1"), "{m}");
    let b32 = Tensor::zeros(&[3, 2], F32).unwrap();
    let m = expr.run(&[&a, &b32]).unwrap_err().to_string();
    assert!(m.contains("operand 1") && m.contains("F32"), "{m}");
    // Building the expression validates like einsum does.
    let m = EinsumExpr::new("ij,jk", &[&[2, 3], &[4, 2]], &[], PlanStrategy::Greedy)
        .unwrap_err()
        .to_string();
    assert!(m.contains("'j'") && m.contains("operand 1"), "{m}");
}

#[test]
fn no_short_pattern_panics() {
    // Every pattern of up to 4 characters over a small alphabet, against a few operand lists:
    // each call returns Ok or Err, never panics.
    let alphabet = ['i', 'j', 'I', '.', ',', '-', '>', '$'];
    let shape_sets: Vec<Vec<Vec<usize>>> = vec![
        vec![],
        vec![vec![]],
        vec![vec![3]],
        vec![vec![2, 2]],
        vec![vec![2, 1, 2]],
        vec![vec![2], vec![2]],
        vec![vec![2, 3], vec![3, 1]],
        vec![vec![0, 2], vec![2]],
    ];
    let sets: Vec<Vec<Tensor>> = shape_sets
        .iter()
        .map(|ss| ss.iter().map(|s| Tensor::ones(s, F64).unwrap()).collect())
        .collect();
    let mut patterns: Vec<String> = vec![String::new()];
    let mut frontier: Vec<String> = vec![String::new()];
    for _ in 0..4 {
        let mut next = Vec::new();
        for p in &frontier {
            for c in alphabet {
                next.push(format!("{p}{c}"));
            }
        }
        patterns.extend(next.iter().cloned());
        frontier = next;
    }
    let mut panicked = Vec::new();
    let mut n = 0;
    for p in &patterns {
        for ops in &sets {
            let refs: Vec<&Tensor> = ops.iter().collect();
            n += 1;
            let r = catch_unwind(AssertUnwindSafe(|| {
                let _ = einsum_with_sizes(p, &refs, &[('I', 2)]);
                for k in 0..3 {
                    let _ = einsum_vjp_pattern(p, k);
                }
            }));
            if r.is_err() {
                panicked.push(format!("{p:?} with shapes {:?}", shape_sets_of(ops)));
            }
        }
    }
    assert!(
        panicked.is_empty(),
        "{} of {n} calls panicked:\n  {}",
        panicked.len(),
        panicked.join("\n  ")
    );
}

fn shape_sets_of(ops: &[Tensor]) -> Vec<Vec<usize>> {
    ops.iter().map(|t| t.dims().to_vec()).collect()
}

/// A generalised output is shown as what it is: the contraction's result, then a last row
/// that embeds it on a diagonal (`i->ii`) or broadcasts it over an output-only label.
#[test]
fn plan_display_shows_generalised_outputs() {
    let diag = EinsumExpr::new("i->ii", &[&[3]], &[], PlanStrategy::Auto).unwrap();
    assert_eq!(diag.plan().output, vec!['i']);
    assert_eq!(diag.plan().final_output, vec!['i', 'i']);
    let shown = diag.plan().to_string();
    assert!(
        shown.lines().last().unwrap().contains("'i' repeated 2×"),
        "{shown}"
    );
    assert!(
        shown.lines().rev().nth(1).unwrap().contains("i->ii"),
        "{shown}"
    );
    let bcast = EinsumExpr::new("j->ij", &[&[2]], &[('i', 4)], PlanStrategy::Auto).unwrap();
    let shown = bcast.plan().to_string();
    assert!(
        shown
            .lines()
            .last()
            .unwrap()
            .contains("'i' only in the output"),
        "{shown}"
    );
    assert!(
        shown.lines().rev().nth(1).unwrap().contains("j->ij"),
        "{shown}"
    );
    let plain = EinsumExpr::new("ij,jk->ik", &[&[2, 3], &[3, 2]], &[], PlanStrategy::Auto).unwrap();
    assert_eq!(plain.plan().final_output, plain.plan().output);
    // Header (10 lines), one row per step, and the extra row only for a generalised output.
    let rows = |e: &EinsumExpr| e.plan().to_string().lines().count() - 10;
    assert_eq!(rows(&plain), plain.plan().steps.len());
    assert_eq!(rows(&diag), diag.plan().steps.len() + 2);
}
