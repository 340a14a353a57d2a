//! The `eingrad` binary as a new user meets it (issue #11, item 6): `--grad` without `--shapes`
//! prints the VJP patterns, `--shapes 3,4` (meant `3x4`) gets a hint on the syntax, the plan
//! table shows a generalised output such as `i->ii`, every help text has examples, and bad
//! input exits with status 2 and a message naming the argument at fault.

use std::process::{Command, Output};

/// Runs the built binary with `args`; returns (exit code, stdout, stderr).
fn eingrad(args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_eingrad"))
        .args(args)
        .output()
        .expect("the eingrad binary runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Runs `args`, expects exit code 2 and returns stderr.
fn usage_error(args: &[&str]) -> String {
    let (code, out, err) = eingrad(args);
    assert_eq!(code, 2, "{args:?}\nstdout: {out}\nstderr: {err}");
    assert!(out.is_empty(), "{args:?} printed to stdout: {out}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

#[test]
fn grad_without_shapes_prints_the_vjp_patterns() {
    let (code, out, err) = eingrad(&["einsum", "bij,bjk->bik", "--grad"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("operand 0: bik,bjk->bij"), "{out}");
    assert!(out.contains("operand 1: bik,bij->bjk"), "{out}");
    // and says how to get the rest
    assert!(out.contains("--shapes 2x3x4,2x4x5"), "{out}");
    // generalised adjoints need no sizes either
    let (code, out, _) = eingrad(&["einsum", "ii->i", "--grad"]);
    assert_eq!(code, 0);
    assert!(out.contains("operand 0: i->ii"), "{out}");
    let (code, out, _) = eingrad(&["einsum", "...ij,...jk", "--grad"]);
    assert_eq!(code, 0);
    assert!(out.contains("operand 1: ...ik,...ij->...jk"), "{out}");
}

#[test]
fn missing_shapes_without_grad_names_shapes() {
    let err = usage_error(&["einsum", "ij,jk->ik"]);
    assert!(err.contains("--shapes") && err.contains("2x3,3x4"), "{err}");
    assert!(err.contains("--grad"), "{err}");
    let err = usage_error(&["einsum", "ij,jk->ik", "--run"]);
    assert!(err.contains("--run needs --shapes"), "{err}");
}

#[test]
fn comma_for_x_gets_a_hint() {
    // one term, two comma-separated "operands"
    let err = usage_error(&["einsum", "ij->ji", "--shapes", "3,4"]);
    assert!(err.contains("--shapes gives 2 operand shapes"), "{err}");
    assert!(err.contains("1 input term"), "{err}");
    assert!(err.contains("joined by 'x'"), "{err}");
    assert!(err.contains("--shapes 2x3 "), "{err}");
    // two terms, the count fits but the ranks do not
    let err = usage_error(&["einsum", "ij,jk->ik", "--shapes", "3,4"]);
    assert!(err.contains("operand 0 has shape [3]"), "{err}");
    assert!(err.contains("needs 2 dims"), "{err}");
    assert!(err.contains("--shapes 2x3,3x4"), "{err}");
    // not a number
    let err = usage_error(&["einsum", "ij,jk->ik", "--shapes", "2*3,3x4"]);
    assert!(err.contains("--shapes: '2*3' is not a dim size"), "{err}");
    // too few dims for a term with an ellipsis
    let err = usage_error(&["einsum", "...ij->...ji", "--shapes", "3"]);
    assert!(err.contains("at least 2 dims"), "{err}");
    // the right spelling works
    let (code, out, err) = eingrad(&["einsum", "ij->ji", "--shapes", "3x4"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("output shape: [4, 3]"), "{out}");
}

#[test]
fn other_bad_input_names_the_argument() {
    let err = usage_error(&["einsum", "ij,jk->ik", "--shapes", "2x3,4x5"]);
    assert!(err.contains("label 'j'"), "{err}");
    let err = usage_error(&["einsum", "jk->ijk", "--shapes", "3x4"]);
    assert!(err.contains("'i'") && err.contains("--sizes i=2"), "{err}");
    let err = usage_error(&["einsum", "jk->ijk", "--shapes", "3x4", "--sizes", "i:2"]);
    assert!(err.contains("--sizes: 'i:2' is not label=size"), "{err}");
    let err = usage_error(&["einsum", "jk->ijk", "--shapes", "3x4", "--sizes", "ii=2"]);
    assert!(err.contains("--sizes: 'ii' is not a single label"), "{err}");
    // a malformed pattern: a caret under the character at fault
    let err = usage_error(&["einsum", "ij,j&k->ik", "--grad"]);
    assert!(err.contains("invalid character '&'"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert_eq!(lines[2].find('^'), lines[1].find('&'), "{err}");
    // clap's own errors keep status 2 too
    let (code, _, err) = eingrad(&["einsum"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = eingrad(&["einsum", "ij->ji", "--shape", "3x4"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn plan_table_prints_generalised_outputs() {
    let (code, out, err) = eingrad(&["einsum", "i->ii", "--shapes", "3"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("output shape: [3, 3]"), "{out}");
    let rows: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("scaling"))
        .skip(2)
        .collect();
    let cells = |r: &str| r.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(cells(rows[0]), ["1", "i->i", "i->ii"], "{out}");
    assert_eq!(cells(rows[1]), ["1", "i->ii", "ii->ii"], "{out}");
    assert!(rows[2].contains("'i' repeated 2×"), "{out}");
    // an output-only label, with its size from --sizes
    let (code, out, err) = eingrad(&["einsum", "jk->ijk", "--shapes", "3x4", "--sizes", "i=2"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("output shape: [2, 3, 4]"), "{out}");
    assert!(out.contains("jk->ijk") && out.contains("ijk->ijk"), "{out}");
    assert!(out.contains("'i' only in the output (broadcast)"), "{out}");
    // an ordinary einsum gets no extra row, and the remaining column ends in its output
    let (code, out, _) = eingrad(&["einsum", "ij,jk,kl->il", "--shapes", "2x3,3x4,4x5", "--run"]);
    assert_eq!(code, 0);
    assert!(!out.contains("generalised"), "{out}");
    assert!(out.contains("il->il"), "{out}");
    assert!(out.contains("ran in"), "{out}");
}

#[test]
fn every_help_has_examples() {
    for args in [
        &["--help"][..],
        &["einsum", "--help"],
        &["seeds", "--help"],
        &["help", "einsum"],
    ] {
        let (code, out, err) = eingrad(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.contains("Example"), "{args:?}:\n{out}");
    }
    let (_, out, _) = eingrad(&["einsum", "--help"]);
    assert!(
        out.contains("eingrad einsum \"bij,bjk->bik\" --grad"),
        "{out}"
    );
    let (_, out, _) = eingrad(&["seeds", "--help"]);
    assert!(out.contains("eingrad seeds --out seeds-out"), "{out}");
}
