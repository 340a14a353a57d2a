//! einsum values, gradients and second-order gradients against PyTorch (float64) goldens
//! written by `scripts/golden_einsum.py` into `tests/golden/einsum_{values,grads}.json`.
//!
//! Also proves `einsum_vjp_pattern` right: evaluating the derived pattern on the output
//! cotangent and the other operands reproduces PyTorch's gradient of every operand.

use std::collections::BTreeMap;

use eingrad::autograd::{grad, GradOptions};
use eingrad::einsum::einsum_vjp_pattern;
use eingrad::einsum::parse::{parse_pattern, Label};
use eingrad::{einsum, einsum_with_sizes, DType, Tensor};
use serde::Deserialize;

const VALUES: &str = include_str!("golden/einsum_values.json");
const GRADS: &str = include_str!("golden/einsum_grads.json");

/// Relative tolerance, against the larger of the entry and the tensor's largest magnitude
/// (entries near zero come from cancellation, where a per-entry relative test is meaningless).
const RTOL: f64 = 1e-10;

#[derive(Deserialize)]
struct File<C> {
    cases: Vec<C>,
}

#[derive(Deserialize)]
struct ValueCase {
    name: String,
    pattern: String,
    shapes: Vec<Vec<usize>>,
    inputs: Vec<Vec<f64>>,
    out_shape: Vec<usize>,
    output: Vec<f64>,
}

#[derive(Deserialize)]
struct GradCase {
    name: String,
    pattern: String,
    u: Vec<f64>,
    grads: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
    second_order: Option<Vec<Vec<f64>>>,
    second_order_zero_reason: Option<String>,
    broadcast_operands: Vec<bool>,
}

fn load() -> Vec<(ValueCase, GradCase)> {
    let values: File<ValueCase> = serde_json::from_str(VALUES).expect("einsum_values.json");
    let grads: File<GradCase> = serde_json::from_str(GRADS).expect("einsum_grads.json");
    assert_eq!(values.cases.len(), grads.cases.len());
    let cases: Vec<_> = values.cases.into_iter().zip(grads.cases).collect();
    for (v, g) in &cases {
        assert_eq!(v.name, g.name);
        assert_eq!(v.pattern, g.pattern);
        assert_eq!(v.inputs.len(), v.shapes.len(), "{}", v.name);
        assert_eq!(g.grads.len(), v.shapes.len(), "{}", v.name);
        assert_eq!(g.broadcast_operands.len(), v.shapes.len(), "{}", v.name);
    }
    cases
}

fn tensor(data: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(data.to_vec(), shape).expect("golden data matches its shape")
}

fn operands(c: &ValueCase, requires_grad: bool) -> Vec<Tensor> {
    c.inputs
        .iter()
        .zip(&c.shapes)
        .map(|(d, s)| tensor(d, s).requires_grad_(requires_grad))
        .collect()
}

/// `None` when `got` agrees with `want`, else a description of the worst entry.
fn compare(got: &Tensor, want_shape: &[usize], want: &[f64]) -> Option<String> {
    if got.dims() != want_shape {
        return Some(format!("shape {:?}, expected {want_shape:?}", got.dims()));
    }
    if got.dtype() != DType::F64 {
        return Some(format!("dtype {:?}", got.dtype()));
    }
    let g = got.to_vec_f64();
    if g.len() != want.len() {
        return Some(format!("{} values, expected {}", g.len(), want.len()));
    }
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (a, b)) in g.iter().zip(want).enumerate() {
        if !((a - b).abs() <= RTOL * b.abs().max(scale)) {
            return Some(format!("entry {i}: got {a:e}, expected {b:e}"));
        }
    }
    None
}

fn report(what: &str, failures: Vec<String>, checked: usize) {
    assert!(
        failures.is_empty(),
        "{what}: {} of {checked} checks failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

#[test]
fn golden_has_enough_patterns() {
    let cases = load();
    let patterns: std::collections::BTreeSet<&str> =
        cases.iter().map(|(v, _)| v.pattern.as_str()).collect();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    assert!(patterns.len() >= 60, "{} distinct patterns", patterns.len());
}

#[test]
fn golden_values() {
    let cases = load();
    let mut failures = Vec::new();
    for (c, _) in &cases {
        let ops = operands(c, false);
        let refs: Vec<&Tensor> = ops.iter().collect();
        match einsum(&c.pattern, &refs) {
            Ok(out) => {
                if let Some(e) = compare(&out, &c.out_shape, &c.output) {
                    failures.push(format!("{}: {e}", c.name));
                }
            }
            Err(e) => failures.push(format!("{}: error {e}", c.name)),
        }
    }
    report("einsum values", failures, cases.len());
}

/// First- and second-order gradients of one case; pushes failures.
fn check_grads(c: &ValueCase, g: &GradCase, failures: &mut Vec<String>) -> eingrad::Result<()> {
    let ops = operands(c, true);
    let refs: Vec<&Tensor> = ops.iter().collect();
    let out = einsum(&c.pattern, &refs)?;
    let u = tensor(&g.u, out.dims());
    let loss = out.mul(&u)?.sum_all()?;
    let opts = GradOptions::default().create_graph(true).allow_unused(true);
    let gs = grad(&[loss], &ops, None, opts)?;
    let gs: Vec<Tensor> = gs
        .into_iter()
        .zip(&ops)
        .map(|(g, x)| g.unwrap_or_else(|| x.zeros_like().unwrap()))
        .collect();
    for (k, (gk, want)) in gs.iter().zip(&g.grads).enumerate() {
        if let Some(e) = compare(gk, &c.shapes[k], want) {
            failures.push(format!("{}: grad of operand {k}: {e}", c.name));
        }
    }
    // Second order: d/d op_j of Σ_k <grad_k, V_k>.
    let mut s = Tensor::zeros(&[], DType::F64).unwrap();
    for (k, gk) in gs.iter().enumerate() {
        let vk = tensor(&g.v[k], &c.shapes[k]);
        s = s.add(&gk.mul(&vk)?.sum_all()?)?;
    }
    let hs: Vec<Tensor> = if s.requires_grad() {
        let opts = GradOptions::default().allow_unused(true);
        grad(&[s], &ops, None, opts)?
            .into_iter()
            .zip(&ops)
            .map(|(h, x)| h.unwrap_or_else(|| x.zeros_like().unwrap()))
            .collect()
    } else {
        ops.iter().map(|x| x.zeros_like().unwrap()).collect()
    };
    match &g.second_order {
        Some(want) => {
            for (j, (h, w)) in hs.iter().zip(want).enumerate() {
                if let Some(e) = compare(h, &c.shapes[j], w) {
                    failures.push(format!("{}: second order, operand {j}: {e}", c.name));
                }
            }
        }
        None => {
            // Identically zero (recorded with a reason); eingrad must agree.
            if g.second_order_zero_reason.is_none() {
                failures.push(format!("{}: second order missing without a reason", c.name));
            }
            for (j, h) in hs.iter().enumerate() {
                if h.to_vec_f64().iter().any(|&x| x != 0.0) {
                    failures.push(format!("{}: second order of operand {j} not zero", c.name));
                }
            }
        }
    }
    Ok(())
}

#[test]
fn golden_first_and_second_order_gradients() {
    let cases = load();
    let mut failures = Vec::new();
    let mut with_second = 0;
    for (c, g) in &cases {
        if let Err(e) = check_grads(c, g, &mut failures) {
            failures.push(format!("{}: error {e}", c.name));
        }
        with_second += usize::from(g.second_order.is_some());
    }
    assert!(
        with_second >= 40,
        "only {with_second} cases with second order"
    );
    report("einsum gradients", failures, cases.len());
}

#[test]
fn golden_gradients_f32() {
    // The same contractions in f32 agree with the f64 goldens to f32 accuracy.
    let cases = load();
    let mut failures = Vec::new();
    for (c, g) in &cases {
        let ops: Vec<Tensor> = operands(c, false)
            .iter()
            .map(|t| t.to_dtype(DType::F32).unwrap().requires_grad_(true))
            .collect();
        let refs: Vec<&Tensor> = ops.iter().collect();
        let r = einsum(&c.pattern, &refs).and_then(|out| {
            let u = Tensor::from_f64s(&g.u, out.dims(), DType::F32)?;
            let gs = grad(&[out], &ops, Some(&[u]), GradOptions::default())?;
            Ok(gs)
        });
        match r {
            Ok(gs) => {
                for (k, (gk, want)) in gs.iter().zip(&g.grads).enumerate() {
                    let got = gk.as_ref().map(|t| t.to_vec_f64()).unwrap_or_default();
                    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                    let bad = got.len() != want.len()
                        || got
                            .iter()
                            .zip(want)
                            .any(|(a, b)| (a - b).abs() > 1e-5 * scale);
                    if bad {
                        failures.push(format!("{}: f32 grad of operand {k}", c.name));
                    }
                }
            }
            Err(e) => failures.push(format!("{}: error {e}", c.name)),
        }
    }
    report("einsum f32 gradients", failures, cases.len());
}

/// The size of every letter label over all operands (the broadcast size: the largest).
fn label_sizes(c: &ValueCase) -> eingrad::Result<BTreeMap<char, usize>> {
    let spec = parse_pattern(&c.pattern, c.shapes.len())?;
    let mut sizes = BTreeMap::new();
    for (term, shape) in spec.inputs.iter().zip(&c.shapes) {
        let letters = term.iter().filter(|l| **l != Label::Ellipsis).count();
        let e = shape.len() - letters;
        let mut d = 0;
        for l in term {
            match l {
                Label::Ellipsis => d += e,
                Label::Char(ch) => {
                    let s = sizes.entry(*ch).or_insert(shape[d]);
                    *s = (*s).max(shape[d]);
                    d += 1;
                }
            }
        }
    }
    Ok(sizes)
}

/// Sums a gradient of operand `k`'s broadcast shape down to its own shape: the extra leading
/// dims of its ellipsis, then the dims where it has size 1.
fn reduce_to_operand(r: &Tensor, term: &[Label], shape: &[usize]) -> eingrad::Result<Tensor> {
    let letters = term.iter().filter(|l| **l != Label::Ellipsis).count();
    let mut r = r.clone();
    if let Some(p) = term.iter().position(|l| *l == Label::Ellipsis) {
        let big = r.rank() - letters;
        let small = shape.len() - letters;
        if big > small {
            let dims: Vec<isize> = (p..p + big - small).map(|d| d as isize).collect();
            r = r.sum(&dims, false)?;
        }
    }
    let dims: Vec<isize> = (0..shape.len())
        .filter(|&d| shape[d] == 1 && r.dims()[d] != 1)
        .map(|d| d as isize)
        .collect();
    if !dims.is_empty() {
        r = r.sum(&dims, true)?;
    }
    Ok(r)
}

/// Patterns whose VJP cannot be written as one einsum pattern: operand `k`'s ellipsis is
/// summed away (absent from the output) and no other operand has one, so the VJP pattern's
/// output `...` has nothing to take its dims from (and sizes are given per letter only).
fn vjp_inexpressible(c: &ValueCase, k: usize) -> bool {
    let Ok(spec) = parse_pattern(&c.pattern, c.shapes.len()) else {
        return false;
    };
    let has = |t: &[Label]| t.contains(&Label::Ellipsis);
    has(&spec.inputs[k])
        && !has(&spec.output)
        && !spec
            .inputs
            .iter()
            .enumerate()
            .any(|(j, t)| j != k && has(t))
}

#[test]
fn einsum_vjp_pattern_reproduces_golden_gradients() {
    let cases = load();
    let mut failures = Vec::new();
    let (mut direct, mut summed, mut inexpressible) = (0, Vec::new(), Vec::new());
    for (c, g) in &cases {
        let ops = operands(c, false);
        let spec = parse_pattern(&c.pattern, c.shapes.len()).expect("golden pattern parses");
        let sizes = label_sizes(c).expect("sizes");
        let out_shape = &c.out_shape;
        let u = tensor(&g.u, out_shape);
        for k in 0..ops.len() {
            if vjp_inexpressible(c, k) {
                // The derivation must say so rather than return a pattern it cannot run.
                if einsum_vjp_pattern(&c.pattern, k).is_ok() {
                    failures.push(format!(
                        "{} operand {k}: an inexpressible VJP gave a pattern",
                        c.name
                    ));
                }
                inexpressible.push(format!("{} (operand {k})", c.name));
                continue;
            }
            let r = (|| -> eingrad::Result<Tensor> {
                let pat = einsum_vjp_pattern(&c.pattern, k)?;
                let mut args: Vec<&Tensor> = vec![&u];
                args.extend(
                    ops.iter()
                        .enumerate()
                        .filter(|&(j, _)| j != k)
                        .map(|(_, t)| t),
                );
                let given: Vec<(char, usize)> = spec.inputs[k]
                    .iter()
                    .filter_map(|l| match l {
                        Label::Char(ch) => Some((*ch, sizes[ch])),
                        Label::Ellipsis => None,
                    })
                    .collect();
                let r = einsum_with_sizes(&pat, &args, &given)?;
                if g.broadcast_operands[k] {
                    reduce_to_operand(&r, &spec.inputs[k], &c.shapes[k])
                } else {
                    Ok(r)
                }
            })();
            match r {
                Ok(r) => {
                    if g.broadcast_operands[k] {
                        summed.push(format!("{} (operand {k})", c.name));
                    } else {
                        direct += 1;
                    }
                    if let Some(e) = compare(&r, &c.shapes[k], &g.grads[k]) {
                        let pat = einsum_vjp_pattern(&c.pattern, k).unwrap_or_default();
                        failures.push(format!("{} operand {k} via \"{pat}\": {e}", c.name));
                    }
                }
                Err(e) => failures.push(format!("{} operand {k}: error {e}", c.name)),
            }
        }
    }
    eprintln!(
        "einsum_vjp_pattern: {direct} gradients reproduced exactly; {} compared after summing \
         broadcast dims: {summed:?}; {} not expressible as one pattern: {inexpressible:?}",
        summed.len(),
        inexpressible.len()
    );
    assert!(direct >= 100, "only {direct} direct comparisons");
    report("einsum_vjp_pattern", failures, direct + summed.len());
}
