//! Values of every elementwise op, reduction, shape op and constructor against PyTorch.
//!
//! The expected numbers (forward values, first derivatives of sum(op(x)·u) and Hessian-vector
//! products along a direction v, all in f64) live in `tests/golden/ops.json`, written by
//! `scripts/golden_ops.py` with torch. This test never runs Python.

use eingrad::autograd::{grad, GradOptions};
use eingrad::{DType, Indices, Result, Tensor};
use serde::Deserialize;
use serde_json::Value;

const GOLDEN: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/golden/ops.json"
));

#[derive(Deserialize)]
struct Golden {
    cases: Vec<Case>,
    constructors: Vec<Ctor>,
}

#[derive(Deserialize)]
struct Arr {
    shape: Vec<usize>,
    data: Vec<Value>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    op: String,
    params: Value,
    inputs: Vec<Arr>,
    diff: Vec<bool>,
    out: Arr,
    f32: bool,
    indices: Option<Vec<usize>>,
    u: Option<Vec<Value>>,
    grads: Option<Vec<Option<Vec<Value>>>>,
    v: Option<Vec<Option<Vec<Value>>>>,
    hvp: Option<Vec<Option<Vec<Value>>>>,
}

#[derive(Deserialize)]
struct Ctor {
    kind: String,
    args: Vec<f64>,
    data: Vec<Value>,
}

fn golden() -> Golden {
    serde_json::from_str(GOLDEN).expect("tests/golden/ops.json parses")
}

/// A JSON number, or "inf" / "-inf" / "nan".
fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().expect("number"),
        Value::String(s) => match s.as_str() {
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            "nan" => f64::NAN,
            other => panic!("bad number string {other:?}"),
        },
        other => panic!("not a number: {other}"),
    }
}

fn nums(v: &[Value]) -> Vec<f64> {
    v.iter().map(num).collect()
}

fn tensor(data: &[Value], shape: &[usize], dtype: DType) -> Tensor {
    Tensor::from_f64s(&nums(data), shape, dtype).unwrap()
}

/// Equal within atol + rtol·|want|; NaN matches NaN, infinities must match exactly.
fn assert_close(what: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: length {} vs expected {}",
        got.len(),
        want.len()
    );
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            g.is_finite() && (g - w).abs() <= atol + rtol * w.abs()
        };
        assert!(
            ok,
            "{what}: element {i}: got {g:e}, expected {w:e}\n  got  {got:?}\n  want {want:?}"
        );
    }
}

fn p_f64(p: &Value, k: &str) -> f64 {
    num(&p[k])
}
fn p_opt(p: &Value, k: &str) -> Option<f64> {
    p.get(k).map(num)
}
fn p_isize(p: &Value, k: &str) -> isize {
    p[k].as_i64().unwrap_or_else(|| panic!("param {k}")) as isize
}
fn p_usize(p: &Value, k: &str) -> usize {
    p[k].as_u64().unwrap_or_else(|| panic!("param {k}")) as usize
}
fn p_bool(p: &Value, k: &str) -> bool {
    p.get(k).and_then(Value::as_bool).unwrap_or(false)
}
fn p_isizes(p: &Value, k: &str) -> Vec<isize> {
    p[k].as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap() as isize)
        .collect()
}
fn p_usizes(p: &Value, k: &str) -> Vec<usize> {
    p[k].as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect()
}

/// Runs the eingrad op a golden case names.
fn apply(op: &str, p: &Value, xs: &[Tensor]) -> Result<(Tensor, Option<Indices>)> {
    let x = &xs[0];
    let y = |t: Tensor| Ok((t, None));
    match op {
        "neg" => y(x.neg()?),
        "abs" => y(x.abs()?),
        "exp" if p_bool(p, "transpose_input") => y(x.t()?.exp()?),
        "exp" => y(x.exp()?),
        "log" => y(x.log()?),
        "log1p" => y(x.log1p()?),
        "sqrt" => y(x.sqrt()?),
        "rsqrt" => y(x.rsqrt()?),
        "sin" => y(x.sin()?),
        "cos" => y(x.cos()?),
        "tanh" => y(x.tanh()?),
        "sigmoid" => y(x.sigmoid()?),
        "logsigmoid" => y(x.logsigmoid()?),
        "softplus" => y(x.softplus()?),
        "relu" => y(x.relu()?),
        "gelu" => y(x.gelu()?),
        "silu" => y(x.silu()?),
        "erf" => y(x.erf()?),
        "powf" => y(x.powf(p_f64(p, "p"))?),
        "clamp" => y(x.clamp(p_opt(p, "min"), p_opt(p, "max"))?),
        "add_scalar" => y(x.add_scalar(p_f64(p, "c"))?),
        "mul_scalar" => y(x.mul_scalar(p_f64(p, "c"))?),
        "div_scalar" => y(x.div_scalar(p_f64(p, "c"))?),
        "rsub_scalar" => y(x.rsub_scalar(p_f64(p, "c"))?),
        "add" => y(x.add(&xs[1])?),
        "sub" => y(x.sub(&xs[1])?),
        "mul" => y(x.mul(&xs[1])?),
        "div" => y(x.div(&xs[1])?),
        "pow" => y(x.pow(&xs[1])?),
        "maximum" => y(x.maximum(&xs[1])?),
        "minimum" => y(x.minimum(&xs[1])?),
        "eq" => y(x.eq(&xs[1])?),
        "ne" => y(x.ne(&xs[1])?),
        "lt" => y(x.lt(&xs[1])?),
        "le" => y(x.le(&xs[1])?),
        "gt" => y(x.gt(&xs[1])?),
        "ge" => y(x.ge(&xs[1])?),
        "eq_scalar" => y(x.eq_scalar(p_f64(p, "c"))?),
        "ne_scalar" => y(x.ne_scalar(p_f64(p, "c"))?),
        "lt_scalar" => y(x.lt_scalar(p_f64(p, "c"))?),
        "le_scalar" => y(x.le_scalar(p_f64(p, "c"))?),
        "gt_scalar" => y(x.gt_scalar(p_f64(p, "c"))?),
        "ge_scalar" => y(x.ge_scalar(p_f64(p, "c"))?),
        "where_" => y(Tensor::where_(&xs[0], &xs[1], &xs[2])?),
        "masked_fill" => y(x.masked_fill(&xs[1], p_f64(p, "value"))?),
        "sum" => y(x.sum(&p_isizes(p, "dims"), p_bool(p, "keepdim"))?),
        "mean" => y(x.mean(&p_isizes(p, "dims"), p_bool(p, "keepdim"))?),
        "logsumexp" => y(x.logsumexp(&p_isizes(p, "dims"), p_bool(p, "keepdim"))?),
        "amax" => y(x.amax(&p_isizes(p, "dims"), p_bool(p, "keepdim"))?),
        "amin" => y(x.amin(&p_isizes(p, "dims"), p_bool(p, "keepdim"))?),
        "var" => y(x.var(
            &p_isizes(p, "dims"),
            p_usize(p, "correction"),
            p_bool(p, "keepdim"),
        )?),
        "sum_all" => y(x.sum_all()?),
        "mean_all" => y(x.mean_all()?),
        "max_all" => y(x.max_all()?),
        "max_dim" => {
            let (v, i) = x.max_dim(p_isize(p, "dim"), p_bool(p, "keepdim"))?;
            Ok((v, Some(i)))
        }
        "min_dim" => {
            let (v, i) = x.min_dim(p_isize(p, "dim"), p_bool(p, "keepdim"))?;
            Ok((v, Some(i)))
        }
        "argmax" => {
            let (d, k) = (p_isize(p, "dim"), p_bool(p, "keepdim"));
            Ok((x.amax(&[d], k)?, Some(x.argmax(d, k)?)))
        }
        "argmin" => {
            let (d, k) = (p_isize(p, "dim"), p_bool(p, "keepdim"));
            Ok((x.amin(&[d], k)?, Some(x.argmin(d, k)?)))
        }
        "softmax" => y(x.softmax(p_isize(p, "dim"))?),
        "log_softmax" => y(x.log_softmax(p_isize(p, "dim"))?),
        "cumsum" => y(x.cumsum(p_isize(p, "dim"), p_bool(p, "reverse"))?),
        "permute" => y(x.permute(&p_usizes(p, "perm"))?),
        "transpose" => y(x.transpose(p_isize(p, "a"), p_isize(p, "b"))?),
        "reshape" => {
            let x = match p.get("permute_first") {
                Some(_) => x.permute(&p_usizes(p, "permute_first"))?,
                None => x.clone(),
            };
            y(x.reshape(&p_usizes(p, "shape"))?)
        }
        "narrow" => y(x.narrow(p_isize(p, "dim"), p_usize(p, "start"), p_usize(p, "len"))?),
        "slice" => y(x.slice(
            p_isize(p, "dim"),
            p_usize(p, "start"),
            p_usize(p, "end"),
            p_usize(p, "step"),
        )?),
        "diagonal" => y(x.diagonal(&p_usizes(p, "dims"))?),
        "unfold" => y(x.unfold(p_isize(p, "dim"), p_usize(p, "size"), p_usize(p, "step"))?),
        "flip" => y(x.flip(&p_isizes(p, "dims"))?),
        "broadcast_to" => y(x.broadcast_to(&p_usizes(p, "shape"))?),
        "unsqueeze" => y(x.unsqueeze(p_isize(p, "dim"))?),
        "squeeze" => y(x.squeeze(p.get("dim").map(|d| d.as_i64().unwrap() as isize))?),
        other => panic!("golden op {other:?} has no eingrad mapping in tests/ops_values.rs"),
    }
}

const ATOL: f64 = 1e-10;
const RTOL: f64 = 1e-9;

fn check_case(c: &Case) {
    let name = &c.name;
    let xs: Vec<Tensor> = c
        .inputs
        .iter()
        .zip(&c.diff)
        .map(|(a, &d)| tensor(&a.data, &a.shape, DType::F64).requires_grad_(d))
        .collect();
    let (out, idx) = apply(&c.op, &c.params, &xs).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(out.dims(), &c.out.shape[..], "{name}: output shape");
    assert_eq!(out.dtype(), DType::F64, "{name}: output dtype");
    assert_close(
        &format!("{name}: value"),
        &out.to_vec_f64(),
        &nums(&c.out.data),
        ATOL,
        RTOL,
    );
    match (&c.indices, idx) {
        (Some(want), Some(got)) => {
            assert_eq!(&got.values, want, "{name}: indices");
            assert_eq!(got.shape, c.out.shape, "{name}: indices shape");
        }
        (None, None) => {}
        (w, g) => panic!("{name}: indices expected {w:?}, got {g:?}"),
    }

    // The same forward in f32.
    if c.f32 {
        let xs32: Vec<Tensor> = c
            .inputs
            .iter()
            .map(|a| tensor(&a.data, &a.shape, DType::F32))
            .collect();
        let (o32, _) =
            apply(&c.op, &c.params, &xs32).unwrap_or_else(|e| panic!("{name} (f32): {e}"));
        assert_eq!(o32.dtype(), DType::F32, "{name}: f32 output dtype");
        // compare against the f64 result rounded to f32 (so overflow to inf matches)
        let want: Vec<f64> = nums(&c.out.data).iter().map(|&v| v as f32 as f64).collect();
        assert_close(
            &format!("{name}: f32 value"),
            &o32.to_vec_f64(),
            &want,
            2e-5,
            2e-5,
        );
    }

    // First derivative: the gradient of sum(op(x)·u).
    let (Some(u), Some(grads)) = (&c.u, &c.grads) else {
        return;
    };
    let u = tensor(u, &c.out.shape, DType::F64);
    let diff: Vec<Tensor> = xs
        .iter()
        .zip(&c.diff)
        .filter(|(_, &d)| d)
        .map(|(x, _)| x.clone())
        .collect();
    assert!(out.requires_grad(), "{name}: output must require grad");
    let g = grad(
        std::slice::from_ref(&out),
        &diff,
        Some(std::slice::from_ref(&u)),
        GradOptions::default().create_graph(true).allow_unused(true),
    )
    .unwrap_or_else(|e| panic!("{name}: grad: {e}"));
    let g: Vec<Tensor> = g
        .into_iter()
        .zip(&diff)
        .map(|(g, x)| g.unwrap_or_else(|| x.zeros_like().unwrap()))
        .collect();
    let want_g: Vec<&Vec<Value>> = grads.iter().flatten().collect();
    for (k, (gk, wk)) in g.iter().zip(&want_g).enumerate() {
        assert_eq!(gk.dims(), diff[k].dims(), "{name}: grad {k} shape");
        assert_close(
            &format!("{name}: grad of input {k}"),
            &gk.to_vec_f64(),
            &nums(wk),
            ATOL,
            RTOL,
        );
    }

    // Second derivative: d/dx Σ_k <grad_k, v_k>.
    let (Some(v), Some(hvp)) = (&c.v, &c.hvp) else {
        return;
    };
    let vs: Vec<Tensor> = v
        .iter()
        .flatten()
        .zip(&diff)
        .map(|(v, x)| tensor(v, x.dims(), DType::F64))
        .collect();
    let mut s: Option<Tensor> = None;
    for (gk, vk) in g.iter().zip(&vs) {
        let t = gk.mul(vk).unwrap().sum_all().unwrap();
        s = Some(match s {
            Some(acc) => acc.add(&t).unwrap(),
            None => t,
        });
    }
    let s = s.expect("at least one differentiable input");
    let h: Vec<Tensor> = if s.requires_grad() {
        grad(&[s], &diff, None, GradOptions::default().allow_unused(true))
            .unwrap_or_else(|e| panic!("{name}: second grad: {e}"))
            .into_iter()
            .zip(&diff)
            .map(|(h, x)| h.unwrap_or_else(|| x.zeros_like().unwrap()))
            .collect()
    } else {
        diff.iter().map(|x| x.zeros_like().unwrap()).collect()
    };
    let want_h: Vec<&Vec<Value>> = hvp.iter().flatten().collect();
    for (k, (hk, wk)) in h.iter().zip(&want_h).enumerate() {
        assert_close(
            &format!("{name}: hvp of input {k}"),
            &hk.to_vec_f64(),
            &nums(wk),
            1e-9,
            1e-8,
        );
    }
}

fn run_cases(filter: impl Fn(&Case) -> bool) -> usize {
    let g = golden();
    let mut n = 0;
    for c in g.cases.iter().filter(|c| filter(c)) {
        check_case(c);
        n += 1;
    }
    n
}

const UNARY: &[&str] = &[
    "neg",
    "abs",
    "exp",
    "log",
    "log1p",
    "sqrt",
    "rsqrt",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "logsigmoid",
    "softplus",
    "relu",
    "gelu",
    "silu",
    "erf",
    "powf",
    "clamp",
    "add_scalar",
    "mul_scalar",
    "div_scalar",
    "rsub_scalar",
];
const BINARY: &[&str] = &[
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "maximum",
    "minimum",
    "where_",
    "masked_fill",
];
const REDUCE: &[&str] = &[
    "sum",
    "mean",
    "logsumexp",
    "amax",
    "amin",
    "var",
    "sum_all",
    "mean_all",
    "max_all",
    "max_dim",
    "min_dim",
    "argmax",
    "argmin",
    "softmax",
    "log_softmax",
    "cumsum",
];

fn is_special(c: &Case) -> bool {
    c.name.starts_with("ieee_") || c.name.starts_with("kink_")
}

#[test]
fn golden_file_covers_every_op() {
    let g = golden();
    let ops: std::collections::BTreeSet<&str> = g.cases.iter().map(|c| c.op.as_str()).collect();
    for op in UNARY
        .iter()
        .chain(BINARY)
        .chain(REDUCE)
        .chain(&["eq", "ne", "lt", "le", "gt", "ge"])
    {
        assert!(ops.contains(op), "no golden case for {op}");
    }
    // every op with a gradient has first and second derivatives in the file
    for op in UNARY.iter().chain(BINARY).chain(REDUCE) {
        if matches!(*op, "argmax" | "argmin") {
            continue;
        }
        assert!(
            g.cases.iter().any(|c| c.op == *op && c.hvp.is_some()),
            "no second-derivative golden for {op}"
        );
    }
}

#[test]
fn unary_ops_and_scalar_forms() {
    let n = run_cases(|c| UNARY.contains(&c.op.as_str()) && !is_special(c));
    assert!(n >= 30, "only {n} unary cases");
}

#[test]
fn binary_ops_with_broadcasting() {
    let n = run_cases(|c| BINARY.contains(&c.op.as_str()) && !is_special(c));
    assert!(n >= 45, "only {n} binary cases");
}

#[test]
fn comparisons() {
    let n = run_cases(|c| {
        ["eq", "ne", "lt", "le", "gt", "ge"]
            .iter()
            .any(|o| c.op.trim_end_matches("_scalar") == *o)
    });
    assert_eq!(n, 12);
}

#[test]
fn reductions() {
    let n = run_cases(|c| REDUCE.contains(&c.op.as_str()) && !is_special(c));
    assert!(n >= 90, "only {n} reduction cases");
}

#[test]
fn shape_ops() {
    let ops = [
        "permute",
        "transpose",
        "reshape",
        "narrow",
        "slice",
        "diagonal",
        "unfold",
        "flip",
        "broadcast_to",
        "unsqueeze",
        "squeeze",
    ];
    let n = run_cases(|c| ops.contains(&c.op.as_str()));
    assert_eq!(n, 14);
}

#[test]
fn ieee_semantics_and_kinks() {
    let n = run_cases(is_special);
    assert!(n >= 18, "only {n} special-value cases");
}

#[test]
fn ieee_spot_checks() {
    let inf = f64::INFINITY;
    let t = |v: &[f64], d: DType| Tensor::from_f64s(v, &[v.len()], d).unwrap();
    for d in [DType::F32, DType::F64] {
        assert_eq!(t(&[-inf], d).exp().unwrap().to_vec_f64(), vec![0.0]);
        assert_eq!(t(&[-inf], d).logsigmoid().unwrap().to_vec_f64(), vec![-inf]);
        assert!(t(&[inf], d).sub(&t(&[inf], d)).unwrap().to_vec_f64()[0].is_nan());
        // sigmoid of ±large: no overflow, no NaN
        let s = t(&[-1e4, -100.0, 100.0, 1e4, -inf, inf], d)
            .sigmoid()
            .unwrap()
            .to_vec_f64();
        assert_eq!(s, vec![0.0, s[1], 1.0, 1.0, 0.0, 1.0]);
        assert!(s[1] >= 0.0 && s[1] < 1e-40, "{s:?}");
        let sp = t(&[-1e4, 1e4], d).softplus().unwrap().to_vec_f64();
        assert_eq!(sp, vec![0.0, 1e4]);
        let ls = t(&[-1e4, 1e4], d).logsigmoid().unwrap().to_vec_f64();
        assert_eq!(ls, vec![-1e4, 0.0]);
    }
    // gradients at ±large stay finite
    let x = t(&[-1e4, 1e4], DType::F32).requires_grad_(true);
    for f in [
        Tensor::sigmoid,
        Tensor::logsigmoid,
        Tensor::softplus,
        Tensor::silu,
        Tensor::tanh,
    ] {
        let g = grad(
            &[f(&x).unwrap().sum_all().unwrap()],
            &[x.clone()],
            None,
            GradOptions::default(),
        )
        .unwrap();
        assert!(g[0]
            .as_ref()
            .unwrap()
            .to_vec_f64()
            .iter()
            .all(|v| v.is_finite()));
    }
}

/// Softmax, log_softmax and logsumexp of rows that are entirely −∞: no NaN in values,
/// first derivatives or second derivatives.
#[test]
fn all_neg_inf_rows_give_no_nan() {
    let ni = f64::NEG_INFINITY;
    let x = Tensor::from_f64s(&[ni, ni, ni, 1.0, 2.0, 3.0], &[2, 3], DType::F64)
        .unwrap()
        .requires_grad_(true);
    let u = Tensor::from_f64s(&[0.5, -1.0, 2.0, 1.0, 0.25, -0.5], &[2, 3], DType::F64).unwrap();
    let v = Tensor::from_f64s(&[1.0, 2.0, -1.0, 0.5, -0.5, 1.5], &[2, 3], DType::F64).unwrap();

    let sm = x.softmax(-1).unwrap();
    let smv = sm.to_vec_f64();
    assert_eq!(&smv[..3], &[0.0, 0.0, 0.0]);
    let e: Vec<f64> = [1.0f64, 2.0, 3.0].iter().map(|v| v.exp()).collect();
    let z: f64 = e.iter().sum();
    assert_close(
        "softmax finite row",
        &smv[3..],
        &[e[0] / z, e[1] / z, e[2] / z],
        1e-15,
        1e-14,
    );

    let ls = x.log_softmax(1).unwrap();
    let lsv = ls.to_vec_f64();
    assert_eq!(&lsv[..3], &[ni, ni, ni]);
    assert_close(
        "log_softmax finite row",
        &lsv[3..],
        &[1.0 - z.ln(), 2.0 - z.ln(), 3.0 - z.ln()],
        1e-14,
        1e-14,
    );

    let lse = x.logsumexp(&[1], false).unwrap();
    assert_eq!(lse.to_vec_f64()[0], ni);

    for (name, y, first_row_grad) in [
        ("softmax", sm.clone(), vec![0.0; 3]),
        ("log_softmax", ls.clone(), vec![0.5, -1.0, 2.0]), // g − p·Σg with p = 0
        (
            "logsumexp",
            lse.unsqueeze(1).unwrap().broadcast_to(&[2, 3]).unwrap(),
            vec![0.0; 3],
        ),
    ] {
        let g = grad(
            &[y],
            &[x.clone()],
            Some(&[u.clone()]),
            GradOptions::default().create_graph(true),
        )
        .unwrap()[0]
            .clone()
            .unwrap();
        let gv = g.to_vec_f64();
        assert!(gv.iter().all(|v| v.is_finite()), "{name}: gradient {gv:?}");
        assert_eq!(
            &gv[..3],
            &first_row_grad[..],
            "{name}: gradient of the −∞ row"
        );
        let s = g.mul(&v).unwrap().sum_all().unwrap();
        if s.requires_grad() {
            let h = grad(&[s], &[x.clone()], None, GradOptions::default()).unwrap()[0]
                .clone()
                .unwrap();
            let hv = h.to_vec_f64();
            assert!(
                hv.iter().all(|v| v.is_finite()),
                "{name}: second derivative {hv:?}"
            );
            assert_eq!(
                &hv[..3],
                &[0.0; 3],
                "{name}: second derivative of the −∞ row"
            );
        }
    }
}

/// Reductions and cumsum on strided (permuted / sliced / broadcast) inputs equal those on a
/// contiguous copy.
#[test]
fn reductions_on_strided_inputs() {
    let base = Tensor::randn(&[3, 4, 5], DType::F64, 11).unwrap();
    let views = [
        base.permute(&[2, 0, 1]).unwrap(),
        base.slice(2, 0, 5, 2).unwrap().transpose(0, 1).unwrap(),
        base.flip(&[1]).unwrap(),
        base.narrow(0, 1, 1)
            .unwrap()
            .broadcast_to(&[2, 1, 4, 5])
            .unwrap()
            .reshape(&[2, 4, 5])
            .unwrap(),
    ];
    for v in &views {
        let c = Tensor::from_f64s(&v.to_vec_f64(), v.dims(), DType::F64).unwrap();
        assert!(c.is_contiguous());
        let pairs: Vec<(Tensor, Tensor)> = vec![
            (v.sum(&[0, 2], true).unwrap(), c.sum(&[0, 2], true).unwrap()),
            (v.mean(&[1], false).unwrap(), c.mean(&[1], false).unwrap()),
            (v.amax(&[2], false).unwrap(), c.amax(&[2], false).unwrap()),
            (
                v.logsumexp(&[0], false).unwrap(),
                c.logsumexp(&[0], false).unwrap(),
            ),
            (v.softmax(1).unwrap(), c.softmax(1).unwrap()),
            (v.cumsum(2, false).unwrap(), c.cumsum(2, false).unwrap()),
            (v.cumsum(0, true).unwrap(), c.cumsum(0, true).unwrap()),
            (v.exp().unwrap(), c.exp().unwrap()),
            (
                v.add(&c.flip(&[0]).unwrap()).unwrap(),
                c.add(&c.flip(&[0]).unwrap()).unwrap(),
            ),
        ];
        for (k, (a, b)) in pairs.iter().enumerate() {
            assert_eq!(a.dims(), b.dims(), "pair {k}");
            assert_close(
                &format!("strided pair {k}"),
                &a.to_vec_f64(),
                &b.to_vec_f64(),
                1e-12,
                1e-12,
            );
        }
        let (va, ia) = v.max_dim(1, false).unwrap();
        let (vb, ib) = c.max_dim(1, false).unwrap();
        assert_eq!(va.to_vec_f64(), vb.to_vec_f64());
        assert_eq!(ia, ib);
    }
}

#[test]
fn constructors_match_torch() {
    for c in golden().constructors {
        let want = nums(&c.data);
        for dtype in [DType::F64, DType::F32] {
            let t = match c.kind.as_str() {
                "arange" => Tensor::arange(c.args[0], c.args[1], c.args[2], dtype).unwrap(),
                "linspace" => {
                    Tensor::linspace(c.args[0], c.args[1], c.args[2] as usize, dtype).unwrap()
                }
                "eye" => Tensor::eye(c.args[0] as usize, dtype).unwrap(),
                k => panic!("unknown constructor {k}"),
            };
            assert_eq!(t.dtype(), dtype);
            let tol = if dtype == DType::F64 { 1e-15 } else { 1e-7 };
            assert_close(
                &format!("{} {:?} {dtype:?}", c.kind, c.args),
                &t.to_vec_f64(),
                &want,
                tol,
                tol,
            );
            if c.kind == "eye" {
                let n = c.args[0] as usize;
                assert_eq!(t.dims(), &[n, n]);
            } else {
                assert_eq!(t.dims(), &[want.len()]);
            }
        }
    }
    assert!(Tensor::arange(0.0, 1.0, 0.0, DType::F64).is_err());
    assert!(Tensor::arange(0.0, f64::INFINITY, 1.0, DType::F64).is_err());
    assert_eq!(
        Tensor::full(&[2, 2], 2.5, DType::F32).unwrap().to_vec_f64(),
        vec![2.5; 4]
    );
    assert_eq!(Tensor::scalar(3.0, DType::F64).dims(), &[] as &[usize]);
    assert_eq!(Tensor::zeros(&[0, 3], DType::F64).unwrap().numel(), 0);
}

#[test]
fn random_constructors_are_deterministic() {
    let a = Tensor::randn(&[1000], DType::F64, 42).unwrap().to_vec_f64();
    let b = Tensor::randn(&[1000], DType::F64, 42).unwrap().to_vec_f64();
    let c = Tensor::randn(&[1000], DType::F64, 43).unwrap().to_vec_f64();
    assert_eq!(a, b);
    assert_ne!(a, c);
    // f32 holds the same stream, rounded
    let a32 = Tensor::randn(&[1000], DType::F32, 42).unwrap().to_vec_f64();
    for (x, y) in a32.iter().zip(&a) {
        assert_eq!(*x, *y as f32 as f64);
    }
    // the shape does not change the stream
    assert_eq!(
        Tensor::randn(&[10, 100], DType::F64, 42)
            .unwrap()
            .to_vec_f64(),
        a
    );
    // moments of a large sample
    let n = 20_000;
    let s = Tensor::randn(&[n], DType::F64, 7).unwrap().to_vec_f64();
    let mean = s.iter().sum::<f64>() / n as f64;
    let var = s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    assert!(
        mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
        "mean {mean}, var {var}"
    );
    let r = Tensor::rand(&[n], DType::F64, 7).unwrap().to_vec_f64();
    assert!(r.iter().all(|&v| (0.0..1.0).contains(&v)));
    let m = r.iter().sum::<f64>() / n as f64;
    assert!((m - 0.5).abs() < 0.01, "{m}");
    let u = Tensor::uniform(&[n], -3.0, -1.0, DType::F32, 9)
        .unwrap()
        .to_vec_f64();
    assert!(u.iter().all(|&v| (-3.0..=-1.0).contains(&v)));
    assert_eq!(
        u,
        Tensor::uniform(&[n], -3.0, -1.0, DType::F32, 9)
            .unwrap()
            .to_vec_f64()
    );
}

#[test]
fn broadcasting_errors_name_the_op_and_dim() {
    let a = Tensor::zeros(&[2, 3], DType::F64).unwrap();
    let b = Tensor::zeros(&[4, 3, 2], DType::F64).unwrap();
    for (name, r) in [
        ("add", a.add(&b)),
        ("mul", a.mul(&b)),
        ("maximum", a.maximum(&b)),
        ("where_", Tensor::where_(&a, &a, &b)),
    ] {
        let e = r.unwrap_err().to_string();
        assert!(e.contains(name) && e.contains("cannot broadcast"), "{e}");
    }
    let e = a
        .add(&Tensor::zeros(&[3], DType::F32).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("dtype"), "{e}");
    // masked_fill's mask must broadcast to the tensor, not grow it
    let e = Tensor::zeros(&[3], DType::F64)
        .unwrap()
        .masked_fill(&Tensor::zeros(&[2, 3], DType::F64).unwrap(), 1.0)
        .unwrap_err();
    assert!(e.to_string().contains("masked_fill"), "{e}");
}

/// Tensors above the kernels' parallel threshold (lowered here to 2^12 elements) go through
/// the chunked parallel paths; they must agree with plain index loops.
#[test]
fn large_tensors_match_naive_loops() {
    eingrad::kernels::set_min_parallel_elements(1 << 12);
    let (r, c) = (180usize, 250usize); // 45,000 elements
    let a = Tensor::randn(&[r, c], DType::F64, 1).unwrap();
    let av = a.to_vec_f64();
    let at = |i: usize, j: usize| av[i * c + j];
    let row = Tensor::randn(&[c], DType::F64, 2).unwrap();
    let rv = row.to_vec_f64();
    let col = Tensor::randn(&[r, 1], DType::F64, 3).unwrap();
    let cv = col.to_vec_f64();
    let naive = |f: &dyn Fn(usize, usize) -> f64| -> Vec<f64> {
        (0..r * c).map(|k| f(k / c, k % c)).collect()
    };
    let check = |what: &str, t: Tensor, want: Vec<f64>| {
        assert_eq!(t.dims(), &[r, c], "{what}");
        assert_close(what, &t.to_vec_f64(), &want, 1e-12, 1e-12);
    };
    check(
        "same shape",
        a.add(&a.exp().unwrap()).unwrap(),
        naive(&|i, j| at(i, j) + at(i, j).exp()),
    );
    check(
        "row broadcast",
        a.mul(&row).unwrap(),
        naive(&|i, j| at(i, j) * rv[j]),
    );
    check(
        "col broadcast",
        col.sub(&a).unwrap(),
        naive(&|i, j| cv[i] - at(i, j)),
    );
    check(
        "outer",
        col.add(&row).unwrap(),
        naive(&|i, j| cv[i] + rv[j]),
    );
    // a transposed operand (strided) against a contiguous one
    let bt = Tensor::randn(&[c, r], DType::F64, 4).unwrap();
    let bv = bt.to_vec_f64();
    let b = bt.t().unwrap();
    check(
        "strided operand",
        a.div(&b).unwrap(),
        naive(&|i, j| at(i, j) / bv[j * r + i]),
    );
    check(
        "strided unary",
        b.tanh().unwrap(),
        naive(&|i, j| bv[j * r + i].tanh()),
    );
    check(
        "flipped",
        a.flip(&[1]).unwrap().maximum(&b).unwrap(),
        naive(&|i, j| at(i, c - 1 - j).max(bv[j * r + i])),
    );
    let m = a.gt_scalar(0.0).unwrap();
    check(
        "where_",
        Tensor::where_(&m, &b, &row).unwrap(),
        naive(&|i, j| if at(i, j) > 0.0 { bv[j * r + i] } else { rv[j] }),
    );
    // reductions and scans
    let sum0: Vec<f64> = (0..c).map(|j| (0..r).map(|i| at(i, j)).sum()).collect();
    assert_close(
        "sum dim 0",
        &a.sum(&[0], false).unwrap().to_vec_f64(),
        &sum0,
        1e-10,
        1e-12,
    );
    let sum1: Vec<f64> = (0..r)
        .map(|i| (0..c).map(|j| bv[j * r + i]).sum())
        .collect();
    assert_close(
        "sum of strided dim 1",
        &b.sum(&[1], false).unwrap().to_vec_f64(),
        &sum1,
        1e-10,
        1e-12,
    );
    let total: f64 = av.iter().sum();
    assert_close(
        "sum all",
        &a.sum_all().unwrap().to_vec_f64(),
        &[total],
        1e-9,
        1e-12,
    );
    let amax1: Vec<f64> = (0..r)
        .map(|i| (0..c).map(|j| at(i, j)).fold(f64::NEG_INFINITY, f64::max))
        .collect();
    assert_eq!(a.amax(&[1], false).unwrap().to_vec_f64(), amax1);
    let (_, idx) = a.max_dim(1, false).unwrap();
    for (i, &k) in idx.values.iter().enumerate() {
        assert_eq!(at(i, k), amax1[i]);
    }
    let cs: Vec<f64> = naive(&|i, j| (0..=i).map(|k| at(k, j)).sum());
    check("cumsum dim 0", a.cumsum(0, false).unwrap(), cs);
    let sm = b.softmax(1).unwrap().sum(&[1], false).unwrap().to_vec_f64();
    assert_close("softmax rows sum to 1", &sm, &vec![1.0; r], 1e-12, 0.0);
}
