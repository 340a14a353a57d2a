//! Table-driven finite-difference checks: every differentiable op is registered here with
//! inputs away from its kinks and checked to orders 1 and 2 (`gradcheck`, `gradgradcheck`).
//!
//! `every_op_has_a_native_jvp_matching_vjp_and_finite_differences` checks forward mode on
//! the same table: ⟨J·t, c⟩ = ⟨t, Jᵀ·c⟩, J·t against central differences, and that no op
//! was pushed forward through the transpose of its backward rule.
//!
//! `every_recorded_op_is_in_the_table` scans the sources under `src/` for the names ops
//! record (`record1_jvp("…")`, `record_with_jvp("…")`, `unary_op!` names, and names passed through a
//! variable or a helper's parameter) and fails listing any that has no entry here, so a new
//! op without a gradient check fails CI.

use std::collections::{BTreeMap, BTreeSet};

use eingrad::autograd::{
    apply_function1, grad, take_jvp_fallbacks, CustomFunction, FunctionCtx, GradOptions,
};
use eingrad::func::{gradcheck, gradgradcheck, jvp, vjp, GradcheckOptions};
use eingrad::nn::{cross_entropy, Reduction};
use eingrad::ops::conv::{Conv1dOptions, Padding};
use eingrad::{einsum, einsum_with_sizes, DType, Indices, Result, Tensor};

type OpFn = Box<dyn Fn(&[Tensor]) -> Result<Vec<Tensor>>>;

/// One row of the table: the op's recorded name, inputs, the function under test.
struct Entry {
    op: &'static str,
    label: &'static str,
    inputs: Vec<Tensor>,
    f: OpFn,
    opts: GradcheckOptions,
}

fn t(data: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_f64s(data, shape, DType::F64).unwrap()
}

/// Seeded values in (lo, hi) pushed at least `gap` away from every point in `kinks`.
fn away(shape: &[usize], seed: u64, lo: f64, hi: f64, kinks: &[f64], gap: f64) -> Tensor {
    let v: Vec<f64> = Tensor::uniform(shape, lo, hi, DType::F64, seed)
        .unwrap()
        .to_vec_f64()
        .into_iter()
        .map(|mut x| {
            for &k in kinks {
                if (x - k).abs() < gap {
                    x = if x >= k { k + gap } else { k - gap };
                }
            }
            x
        })
        .collect();
    t(&v, shape)
}

fn rn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, DType::F64, seed).unwrap()
}

/// Distinct values (no ties) with gaps ≥ 0.2, in a seeded order.
fn distinct(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let keys = Tensor::rand(&[n], DType::F64, seed).unwrap().to_vec_f64();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| keys[a].partial_cmp(&keys[b]).unwrap());
    let mut v = vec![0.0; n];
    for (rank, &i) in order.iter().enumerate() {
        v[i] = -1.0 + 0.25 * rank as f64;
    }
    t(&v, shape)
}

fn opts() -> GradcheckOptions {
    GradcheckOptions::default()
}

fn idx(values: &[usize], shape: &[usize]) -> Indices {
    Indices {
        values: values.to_vec(),
        shape: shape.to_vec(),
    }
}

macro_rules! entry {
    ($table:ident, $op:literal, $label:literal, [$($x:expr),*], |$xs:ident| $body:expr) => {
        entry!($table, $op, $label, [$($x),*], opts(), |$xs| $body)
    };
    ($table:ident, $op:literal, $label:literal, [$($x:expr),*], $opts:expr, |$xs:ident| $body:expr) => {
        $table.push(Entry {
            op: $op,
            label: $label,
            inputs: vec![$($x),*],
            f: Box::new(move |$xs: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![$body]) }),
            opts: $opts,
        })
    };
}

/// A user-defined op: x³ with a hand-written backward 3x²·g in tensor ops (so it is
/// differentiable again).
struct Cube;
impl CustomFunction for Cube {
    fn name(&self) -> &str {
        "custom_cube"
    }
    fn forward(&self, ctx: &mut FunctionCtx, x: &[Tensor]) -> Result<Vec<Tensor>> {
        ctx.save_for_backward(&[x[0].clone()]);
        Ok(vec![x[0].mul(&x[0])?.mul(&x[0])?])
    }
    fn backward(&self, ctx: &FunctionCtx, g: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
        let x = &ctx.saved_tensors()[0];
        Ok(vec![Some(g[0].mul(&x.mul(x)?.mul_scalar(3.0)?)?)])
    }
}

/// Every differentiable op, keyed by the name it records.
fn table() -> Vec<Entry> {
    let mut tb: Vec<Entry> = Vec::new();
    let s = [2, 3];

    // ---- unary (unary_op! and friends)
    entry!(tb, "neg", "", [rn(&s, 1)], |x| x[0].neg()?);
    entry!(
        tb,
        "abs",
        "away from 0",
        [away(&s, 2, -2.0, 2.0, &[0.0], 0.3)],
        |x| x[0].abs()?
    );
    entry!(tb, "exp", "", [rn(&s, 3)], |x| x[0].exp()?);
    entry!(tb, "log", "x > 0", [away(&s, 4, 0.3, 3.0, &[], 0.0)], |x| x
        [0]
    .log()?);
    entry!(
        tb,
        "log1p",
        "x > -1",
        [away(&s, 5, -0.7, 3.0, &[], 0.0)],
        |x| x[0].log1p()?
    );
    entry!(
        tb,
        "sqrt",
        "x > 0",
        [away(&s, 6, 0.3, 3.0, &[], 0.0)],
        |x| x[0].sqrt()?
    );
    entry!(
        tb,
        "rsqrt",
        "x > 0",
        [away(&s, 7, 0.3, 3.0, &[], 0.0)],
        |x| x[0].rsqrt()?
    );
    entry!(tb, "sin", "", [rn(&s, 8)], |x| x[0].sin()?);
    entry!(tb, "cos", "", [rn(&s, 9)], |x| x[0].cos()?);
    entry!(tb, "tanh", "", [rn(&s, 10)], |x| x[0].tanh()?);
    entry!(tb, "sigmoid", "", [rn(&s, 11)], |x| x[0].sigmoid()?);
    entry!(tb, "logsigmoid", "", [rn(&s, 12)], |x| x[0].logsigmoid()?);
    entry!(tb, "softplus", "", [rn(&s, 13)], |x| x[0].softplus()?);
    entry!(
        tb,
        "relu",
        "away from 0",
        [away(&s, 14, -2.0, 2.0, &[0.0], 0.3)],
        |x| x[0].relu()?
    );
    entry!(tb, "erf", "", [rn(&s, 15)], |x| x[0].erf()?);
    entry!(tb, "gelu", "", [rn(&s, 16)], |x| x[0].gelu()?);
    entry!(tb, "gelu_tanh", "", [rn(&s, 160)], |x| x[0].gelu_tanh()?);
    entry!(tb, "silu", "", [rn(&s, 17)], |x| x[0].silu()?);
    entry!(tb, "powf", "p = 3", [rn(&s, 18)], |x| x[0].powf(3.0)?);
    entry!(tb, "powf", "p = 2", [rn(&s, 19)], |x| x[0].powf(2.0)?);
    entry!(
        tb,
        "powf",
        "p = -1.5, x > 0",
        [away(&s, 20, 0.4, 2.0, &[], 0.0)],
        |x| x[0].powf(-1.5)?
    );
    entry!(
        tb,
        "clamp",
        "both bounds, away from them",
        [away(&[2, 4], 21, -2.0, 2.0, &[-0.5, 0.5], 0.2)],
        |x| x[0].clamp(Some(-0.5), Some(0.5))?
    );
    entry!(
        tb,
        "clamp",
        "min only",
        [away(&s, 22, -2.0, 2.0, &[0.1], 0.2)],
        |x| x[0].clamp(Some(0.1), None)?
    );
    entry!(
        tb,
        "to_dtype",
        "f64 -> f32 -> f64 (coarse steps: f32 rounding)",
        [rn(&s, 23)],
        GradcheckOptions {
            eps: 1e-2,
            atol: 1e-3,
            rtol: 1e-2,
            ..opts()
        },
        |x| x[0].to_dtype(DType::F32)?.exp()?.to_dtype(DType::F64)?
    );

    // ---- binary, with broadcasting
    entry!(
        tb,
        "add",
        "broadcast [2,3] + [3]",
        [rn(&s, 30), rn(&[3], 31)],
        |x| x[0].add(&x[1])?
    );
    entry!(
        tb,
        "sub",
        "broadcast [2,1] - [3]",
        [rn(&[2, 1], 32), rn(&[3], 33)],
        |x| x[0].sub(&x[1])?
    );
    entry!(
        tb,
        "mul",
        "broadcast [2,3] * [2,1]",
        [rn(&s, 34), rn(&[2, 1], 35)],
        |x| x[0].mul(&x[1])?
    );
    entry!(tb, "mul", "square (same input twice)", [rn(&s, 36)], |x| x
        [0]
    .mul(&x[0])?);
    entry!(
        tb,
        "div",
        "denominator away from 0",
        [rn(&s, 37), away(&[3], 38, -2.0, 2.0, &[0.0], 0.5)],
        |x| x[0].div(&x[1])?
    );
    entry!(
        tb,
        "pow",
        "a > 0",
        [away(&s, 39, 0.4, 2.0, &[], 0.0), rn(&[3], 40)],
        |x| x[0].pow(&x[1])?
    );
    entry!(
        tb,
        "maximum",
        "|a - b| ≥ 0.3",
        [
            t(&[0.1, -1.0, 2.0, 0.5, -0.3, 1.2], &s),
            t(&[0.6, -1.5, 1.0], &[3])
        ],
        |x| x[0].maximum(&x[1])?
    );
    entry!(
        tb,
        "minimum",
        "|a - b| ≥ 0.3",
        [
            t(&[0.1, -1.0, 2.0, 0.5, -0.3, 1.2], &s),
            t(&[0.6, -1.5, 1.0], &[3])
        ],
        |x| x[0].minimum(&x[1])?
    );
    entry!(tb, "add_scalar", "", [rn(&s, 41)], |x| x[0]
        .add_scalar(2.5)?
        .mul(&x[0])?);
    entry!(tb, "mul_scalar", "", [rn(&s, 42)], |x| x[0]
        .mul_scalar(-1.5)?
        .mul(&x[0])?);
    entry!(tb, "div_scalar", "", [rn(&s, 43)], |x| x[0]
        .div_scalar(4.0)?
        .exp()?);
    entry!(
        tb,
        "where_",
        "where_ (mask constant)",
        [rn(&s, 44), rn(&[3], 45)],
        |x| {
            let m = t(&[1.0, 0.0, 1.0, 0.0, 0.0, 1.0], &[2, 3]);
            Tensor::where_(&m, &x[0].mul(&x[0])?, &x[1].exp()?)?
        }
    );
    entry!(tb, "where_", "masked_fill", [rn(&s, 46)], |x| {
        let m = t(&[0.0, 1.0, 0.0], &[3]);
        x[0].mul(&x[0])?.masked_fill(&m, -2.0)?
    });

    // ---- reductions
    let x3 = [2, 3, 2];
    entry!(tb, "sum", "dims [0, 2] keepdim", [rn(&x3, 50)], |x| x[0]
        .sum(&[0, 2], true)?
        .mul(&x[0].sum(&[0, 2], true)?)?);
    entry!(tb, "sum", "mean over -1", [rn(&x3, 51)], |x| x[0]
        .mul(&x[0])?
        .mean(&[-1], false)?);
    entry!(tb, "sum", "var over [0, 1]", [rn(&x3, 52)], |x| x[0].var(
        &[0, 1],
        1,
        false
    )?);
    entry!(tb, "logsumexp", "dims [1]", [rn(&x3, 53)], |x| x[0]
        .logsumexp(&[1], false)?);
    entry!(tb, "logsumexp", "dims [0, 2] keepdim", [rn(&x3, 54)], |x| x
        [0]
    .logsumexp(&[0, 2], true)?);
    entry!(
        tb,
        "layer_norm",
        "weight and bias",
        [rn(&x3, 150), rn(&[2], 151), rn(&[2], 152)],
        |x| x[0].layer_norm(1, Some(&x[1]), Some(&x[2]), 1e-5)?
    );
    entry!(
        tb,
        "layer_norm",
        "2 dims, weight only",
        [rn(&x3, 153), rn(&[3, 2], 154)],
        |x| x[0].layer_norm(2, Some(&x[1]), None, 1e-5)?
    );
    entry!(tb, "layer_norm", "no affine", [rn(&x3, 155)], |x| x[0]
        .layer_norm(1, None, None, 1e-5)?);
    entry!(tb, "softmax", "dim -1", [rn(&x3, 55)], |x| x[0]
        .softmax(-1)?);
    entry!(tb, "softmax", "dim 0", [rn(&x3, 56)], |x| x[0]
        .softmax(0)?);
    entry!(tb, "log_softmax", "dim 1", [rn(&x3, 57)], |x| x[0]
        .log_softmax(1)?);
    entry!(tb, "cumsum", "dim 1", [rn(&x3, 58)], |x| x[0]
        .cumsum(1, false)?
        .mul(&x[0])?);
    entry!(tb, "cumsum", "dim 0 reversed", [rn(&x3, 59)], |x| x[0]
        .cumsum(0, true)?
        .powf(2.0)?);
    entry!(tb, "max_dim", "no ties", [distinct(&x3, 60)], |x| x[0]
        .max_dim(1, false)?
        .0
        .mul(&x[0].sum(&[1], false)?)?);
    entry!(tb, "min_dim", "no ties", [distinct(&x3, 61)], |x| x[0]
        .min_dim(-1, true)?
        .0
        .exp()?);
    entry!(tb, "amax", "no ties", [distinct(&x3, 62)], |x| x[0]
        .amax(&[0, 2], false)?
        .powf(2.0)?);
    entry!(tb, "amax", "max_all", [distinct(&x3, 63)], |x| x[0]
        .max_all()?
        .exp()?);
    entry!(tb, "amin", "no ties", [distinct(&x3, 64)], |x| x[0]
        .amin(&[1], true)?
        .powf(3.0)?);

    // ---- shape ops and views
    entry!(tb, "reshape", "", [rn(&x3, 70)], |x| x[0]
        .reshape(&[3, 4])?
        .powf(2.0)?);
    entry!(
        tb,
        "reshape",
        "of a permuted tensor (copy)",
        [rn(&x3, 71)],
        |x| x[0].permute(&[2, 0, 1])?.reshape(&[12])?.powf(2.0)?
    );
    entry!(
        tb,
        "reshape",
        "squeeze / unsqueeze",
        [rn(&[2, 1, 3], 72)],
        |x| x[0].squeeze(None)?.unsqueeze(0)?.powf(2.0)?
    );
    entry!(tb, "permute", "", [rn(&x3, 73)], |x| x[0]
        .permute(&[2, 0, 1])?
        .powf(2.0)?);
    entry!(tb, "permute", "transpose", [rn(&x3, 74)], |x| x[0]
        .transpose(0, -1)?
        .powf(2.0)?);
    entry!(tb, "broadcast_to", "", [rn(&[3, 1], 75)], |x| x[0]
        .broadcast_to(&[2, 3, 4])?
        .powf(2.0)?);
    entry!(tb, "flip", "", [rn(&x3, 76)], |x| x[0]
        .flip(&[0, 2])?
        .mul(&x[0])?);
    entry!(tb, "narrow", "", [rn(&x3, 77)], |x| x[0]
        .narrow(1, 1, 2)?
        .powf(2.0)?);
    entry!(tb, "slice", "step 2", [rn(&[2, 5], 78)], |x| x[0]
        .slice(1, 0, 5, 2)?
        .powf(2.0)?);
    entry!(tb, "diagonal", "", [rn(&[2, 3, 3], 79)], |x| x[0]
        .diagonal(&[1, 2])?
        .powf(2.0)?);
    entry!(
        tb,
        "unfold",
        "overlapping windows",
        [rn(&[2, 5], 80)],
        |x| x[0].unfold(1, 3, 1)?.powf(2.0)?
    );
    entry!(tb, "contiguous", "", [rn(&x3, 81)], |x| x[0]
        .permute(&[1, 0, 2])?
        .contiguous()?
        .powf(2.0)?);
    entry!(
        tb,
        "view_adjoint",
        "the gradient of narrow, as a function of the cotangent",
        [rn(&[2, 2], 82)],
        |x| {
            let base = rn(&[2, 3], 83).requires_grad_(true);
            let y = base.narrow(1, 1, 2)?;
            let g = grad(
                &[y],
                &[base.clone()],
                Some(&[x[0].powf(2.0)?]),
                GradOptions::default().create_graph(true),
            )?;
            g[0].clone().expect("used")
        }
    );

    // ---- ops written by others (index, conv, einsum)
    entry!(
        tb,
        "einsum",
        "matmul",
        [rn(&[2, 3], 90), rn(&[3, 2], 91)],
        |x| einsum("ij,jk->ik", &[&x[0], &x[1]])?.powf(2.0)?
    );
    entry!(
        tb,
        "einsum",
        "three operands, batch and trace",
        [rn(&[2, 3], 92), rn(&[3, 3], 93), rn(&[3], 94)],
        |x| { einsum("ij,jk,k->i", &[&x[0], &x[1], &x[2]])?.mul(&einsum("ii->", &[&x[1]])?)? }
    );
    entry!(
        tb,
        "einsum",
        "diagonal embedding i->ii and broadcast j->ij, then a product",
        [rn(&[3], 95)],
        |x| {
            let m = einsum("i->ii", &[&x[0]])?.add(&einsum_with_sizes(
                "j->ij",
                &[&x[0]],
                &[('i', 3)],
            )?)?;
            einsum("ij,j->i", &[&m, &x[0]])?
        }
    );
    entry!(tb, "cat", "", [rn(&[2, 1], 100), rn(&[2, 2], 101)], |x| {
        Tensor::cat(&[&x[0], &x[1]], 1)?.powf(2.0)?
    });
    entry!(tb, "cat", "stack", [rn(&[3], 102), rn(&[3], 103)], |x| {
        Tensor::stack(&[&x[0], &x[1]], -1)?.powf(2.0)?
    });
    entry!(tb, "pad", "", [rn(&[2, 2], 104)], |x| x[0]
        .pad(&[(1, 0), (0, 2)], 0.5)?
        .powf(2.0)?);
    entry!(
        tb,
        "index_select",
        "repeated index",
        [rn(&[3, 2], 105)],
        |x| x[0].index_select(0, &[2, 0, 2])?.powf(2.0)?
    );
    entry!(
        tb,
        "index_add",
        "",
        [rn(&[3, 2], 106), rn(&[2, 2], 107)],
        |x| x[0].index_add(0, &[1, 1], &x[1])?.powf(2.0)?
    );
    entry!(tb, "gather", "", [rn(&[2, 3], 108)], |x| x[0]
        .gather(1, &idx(&[2, 0, 1, 1], &[2, 2]))?
        .powf(2.0)?);
    entry!(
        tb,
        "scatter_add",
        "",
        [rn(&[2, 3], 109), rn(&[2, 2], 110)],
        |x| x[0]
            .scatter_add(1, &idx(&[2, 0, 2, 2], &[2, 2]), &x[1])?
            .powf(2.0)?
    );
    entry!(
        tb,
        "einsum",
        "conv1d (pad, unfold, einsum)",
        [rn(&[1, 2, 5], 111), rn(&[2, 2, 3], 112), rn(&[2], 113)],
        |x| x[0]
            .conv1d(
                &x[1],
                Some(&x[2]),
                Conv1dOptions::default().padding(Padding::Causal).stride(2)
            )?
            .powf(2.0)?
    );

    // ---- nn
    entry!(
        tb,
        "cross_entropy",
        "reduction none",
        [rn(&[3, 4], 130)],
        |x| { cross_entropy(&x[0], &[2, 0, 3], Reduction::None)? }
    );
    entry!(
        tb,
        "cross_entropy",
        "reduction mean",
        [rn(&[2, 3], 131)],
        |x| { cross_entropy(&x[0], &[1, 1], Reduction::Mean)? }
    );

    // ---- transforms and custom functions
    entry!(
        tb,
        "func_input",
        "nested vjp (recorded alias of a tracked primal)",
        [rn(&s, 120)],
        |x| {
            let u = rn(&[2, 3], 121);
            let f = |xs: &[Tensor]| Ok(vec![xs[0].sin()?.mul(&xs[0])?]);
            vjp(&f, &[x[0].clone()], &[u])?.1[0].clone()
        }
    );
    entry!(
        tb,
        "custom_function",
        "CustomFunction x³ with a hand-written backward",
        [rn(&s, 122)],
        |x| { apply_function1(Cube, &[&x[0]])?.mul(&x[0])? }
    );

    tb
}

// ------------------------------------------------------------------ graph inspection

/// Names of every node reachable from `outs`.
fn graph_names(outs: &[Tensor]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut stack: Vec<Tensor> = outs.to_vec();
    while let Some(t) = stack.pop() {
        if let Some(gf) = t.grad_fn() {
            let p = std::sync::Arc::as_ptr(&gf.node) as usize;
            if seen.insert(p) {
                names.insert(gf.node.name().to_string());
                stack.extend(gf.node.inputs().iter().cloned());
            }
        }
    }
    names
}

#[test]
fn every_op_passes_gradcheck_orders_1_and_2() {
    let mut failures = Vec::new();
    for e in table() {
        let what = format!("{} [{}]", e.op, e.label);
        for x in &e.inputs {
            assert_eq!(x.dtype(), DType::F64, "{what}: inputs must be f64");
        }
        // the entry must really exercise the op it is registered for
        let leaves: Vec<Tensor> = e
            .inputs
            .iter()
            .map(|x| x.detach().requires_grad_(true))
            .collect();
        match (e.f)(&leaves) {
            Ok(outs) => {
                let names = graph_names(&outs);
                // a custom function's node carries the user's name
                let node = if e.op == "custom_function" {
                    Cube.name()
                } else {
                    e.op
                };
                if !names.contains(node) {
                    failures.push(format!(
                        "{what}: the graph has no `{node}` node, only {names:?}"
                    ));
                    continue;
                }
            }
            Err(err) => {
                failures.push(format!("{what}: forward failed: {err}"));
                continue;
            }
        }
        match gradcheck(&*e.f, &e.inputs, e.opts) {
            Ok(r) if r.passed => {}
            Ok(r) => failures.push(format!("{what}: order 1: {}", r.worst)),
            Err(err) => failures.push(format!("{what}: order 1 errored: {err}")),
        }
        match gradgradcheck(&*e.f, &e.inputs, e.opts) {
            Ok(r) if r.passed => {}
            Ok(r) => failures.push(format!("{what}: order 2: {}", r.worst)),
            Err(err) => failures.push(format!("{what}: order 2 errored: {err}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} gradient checks failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Forward mode on every table entry: (a) ⟨J·t, c⟩ = ⟨t, Jᵀ·c⟩ with seeded random t and c
/// (`func::jvp` against `func::vjp`), (b) J·t against central differences along t, (c) no op
/// of the entry fell back to transposing its backward rule (custom functions, which may lack
/// a rule, excepted).
#[test]
fn every_op_has_a_native_jvp_matching_vjp_and_finite_differences() {
    let mut failures = Vec::new();
    let table = table();
    for (k, e) in table.iter().enumerate() {
        let what = format!("{} [{}]", e.op, e.label);
        let seed = 7000 + 100 * k as u64;
        let ts: Vec<Tensor> = e
            .inputs
            .iter()
            .enumerate()
            .map(|(i, x)| rn(x.dims(), seed + i as u64))
            .collect();
        let _ = take_jvp_fallbacks();
        let (outs, jt) = match jvp(&*e.f, &e.inputs, &ts) {
            Ok(r) => r,
            Err(err) => {
                failures.push(format!("{what}: jvp errored: {err}"));
                continue;
            }
        };
        let fallbacks = take_jvp_fallbacks();
        // (c)
        if e.op != "custom_function" && !fallbacks.is_empty() {
            failures.push(format!(
                "{what}: ops pushed forward through their backward rule (no native JVP rule): \
                 {fallbacks:?}"
            ));
        }
        for (o, t) in outs.iter().zip(&jt) {
            if o.dims() != t.dims() {
                failures.push(format!(
                    "{what}: a tangent has shape {:?} but its output {:?}",
                    t.dims(),
                    o.dims()
                ));
            }
        }
        // (a)
        let cs: Vec<Tensor> = outs
            .iter()
            .enumerate()
            .map(|(i, o)| rn(o.dims(), seed + 50 + i as u64))
            .collect();
        let back = match vjp(&*e.f, &e.inputs, &cs) {
            Ok((_, g)) => g,
            Err(err) => {
                failures.push(format!("{what}: vjp errored: {err}"));
                continue;
            }
        };
        let lhs: f64 = jt
            .iter()
            .zip(&cs)
            .map(|(a, c)| dot(&a.to_vec_f64(), &c.to_vec_f64()))
            .sum();
        let rhs: f64 = back
            .iter()
            .zip(&ts)
            .map(|(g, t)| dot(&g.to_vec_f64(), &t.to_vec_f64()))
            .sum();
        // an f32 round trip (to_dtype) perturbs each side at f32 precision
        let ip_tol = if e.opts.eps > 1e-4 { 1e-5 } else { 1e-10 };
        if !((lhs - rhs).abs() <= ip_tol * (1.0 + lhs.abs().max(rhs.abs()))) {
            failures.push(format!("{what}: <J t, c> = {lhs} but <t, J'c> = {rhs}"));
        }
        // (b)
        let h = e.opts.eps;
        let shifted = |s: f64| -> Result<Vec<f64>> {
            let p: Vec<Tensor> = e
                .inputs
                .iter()
                .zip(&ts)
                .map(|(x, t)| x.add(&t.mul_scalar(s)?))
                .collect::<Result<_>>()?;
            Ok((e.f)(&p)?.iter().flat_map(|o| o.to_vec_f64()).collect())
        };
        let (plus, minus) = match (shifted(h), shifted(-h)) {
            (Ok(p), Ok(m)) => (p, m),
            (Err(err), _) | (_, Err(err)) => {
                failures.push(format!("{what}: perturbed forward failed: {err}"));
                continue;
            }
        };
        let got: Vec<f64> = jt.iter().flat_map(|t| t.to_vec_f64()).collect();
        if let Some((i, g, n)) = got
            .iter()
            .zip(plus.iter().zip(&minus))
            .map(|(&g, (p, m))| (g, (p - m) / (2.0 * h)))
            .enumerate()
            .map(|(i, (g, n))| (i, g, n))
            .find(|&(_, g, n)| !((g - n).abs() <= e.opts.atol + e.opts.rtol * n.abs()))
        {
            failures.push(format!(
                "{what}: tangent entry {i} is {g} but the central difference {n}"
            ));
        }
    }
    eprintln!("forward mode checked on {} table entries", table.len());
    assert!(
        failures.is_empty(),
        "{} forward-mode checks failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// The checker can fail: a deliberately wrong backward (the gradient of x² reported as x,
/// built with a hook) is caught at order 1, and a first derivative with a wrong slope at
/// order 2.
#[test]
fn the_checker_catches_wrong_gradients() {
    let x = rn(&[3], 7);
    let wrong = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        let y = xs[0].mul(&xs[0])?;
        y.register_hook(|g| Ok(Some(g.mul_scalar(0.5)?)));
        Ok(vec![y])
    };
    let r = gradcheck(&wrong, &[x.clone()], opts()).unwrap();
    assert!(!r.passed, "a halved gradient passed: {}", r.worst);
    // detach inside the function: first order wrong
    let detached = |xs: &[Tensor]| Ok(vec![xs[0].mul(&xs[0].detach())?]);
    assert!(!gradcheck(&detached, &[x.clone()], opts()).unwrap().passed);
    // x·stop(x)² has first derivative stop(x)² (which the checker compares against finite
    // differences of x³: wrong), and at order 2 its derivative is 0 instead of 6x
    let half = |xs: &[Tensor]| Ok(vec![xs[0].mul(&xs[0].detach().powf(2.0)?)?]);
    assert!(!gradgradcheck(&half, &[x], opts()).unwrap().passed);
}

// ------------------------------------------------------------------ completeness

/// Strips `//` comments (incl. doc comments) and everything from `#[cfg(test)]` on.
fn strip(src: &str) -> String {
    let src = match src.find("#[cfg(test)]") {
        Some(i) => &src[..i],
        None => src,
    };
    let mut out = String::with_capacity(src.len());
    let b = src.as_bytes();
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i] as char;
        if in_str {
            out.push(c);
            if c == '\\' && i + 1 < b.len() {
                out.push(b[i + 1] as char);
                i += 2;
                continue;
            }
            if c == '"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        if c == '"' && !(i > 0 && b[i - 1] == b'\'' && i + 1 < b.len() && b[i + 1] == b'\'') {
            in_str = true;
            out.push(c);
            i += 1;
            continue;
        }
        if c == '/' && i + 1 < b.len() && b[i + 1] == b'/' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Top-level comma-separated arguments of the call whose `(` is at `open`.
fn call_args(s: &str, open: usize) -> Vec<String> {
    let mut args = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    let mut in_str = false;
    let mut chars = s[open..].chars();
    while let Some(c) = chars.next() {
        if in_str {
            cur.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                cur.push(c);
            }
            '(' | '[' | '{' => {
                depth += 1;
                if depth > 1 {
                    cur.push(c);
                }
            }
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    args.push(cur.trim().to_string());
                    return args;
                }
                cur.push(c);
            }
            ',' if depth == 1 => {
                args.push(cur.trim().to_string());
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    args
}

/// String literals in a snippet.
fn literals(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(a) = rest.find('"') {
        let after = &rest[a + 1..];
        let Some(b) = after.find('"') else { break };
        out.push(after[..b].to_string());
        rest = &after[b + 1..];
    }
    out
}

/// Positions of `name(` (as a call: not `fn name(`, not part of a longer identifier).
fn call_sites(s: &str, name: &str) -> Vec<usize> {
    let pat = format!("{name}(");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(p) = s[from..].find(&pat) {
        let at = from + p;
        from = at + pat.len();
        let before = s[..at].chars().next_back();
        if before.is_some_and(|c| is_ident(c) || c == '.' || c == ':') && !s[..at].ends_with("::") {
            continue;
        }
        if s[..at].trim_end().ends_with("fn") {
            continue;
        }
        out.push(at + name.len());
    }
    out
}

fn line_of(s: &str, pos: usize) -> usize {
    s[..pos].matches('\n').count() + 1
}

/// The op names recorded in `files` (path, stripped source), and the record sites whose
/// name could not be resolved.
fn recorded_names(
    files: &[(String, String)],
    recorders: &[String],
    dynamic: &[DynamicSite],
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut names: BTreeMap<String, String> = BTreeMap::new(); // name -> where
    let mut unresolved = Vec::new();
    let mut dynamic_used = vec![false; dynamic.len()];
    for (path, src) in files {
        for callee in recorders.iter().map(String::as_str) {
            for open in call_sites(src, callee) {
                let args = call_args(src, open);
                let Some(first) = args.first() else { continue };
                let at = format!("{path}:{}", line_of(src, open));
                // 0. a site whose name is chosen at run time, registered in DYNAMIC_SITES
                if let Some(k) = dynamic
                    .iter()
                    .position(|d| d.file == path && d.name_expr == first)
                {
                    dynamic_used[k] = true;
                    names.insert(dynamic[k].table_name.to_string(), at.clone());
                    continue;
                }
                // 1. a literal
                if first.starts_with('"') {
                    for l in literals(first) {
                        names.insert(l, at.clone());
                    }
                    continue;
                }
                // 2. stringify!($name) inside `macro_rules! m`: the names are the first
                //    identifier of each `m!(` invocation
                if first.starts_with("stringify!") {
                    let Some(m) = src[..open].rfind("macro_rules!") else {
                        unresolved.push(format!("{at}: {first}"));
                        continue;
                    };
                    let mac: String = src[m + "macro_rules!".len()..]
                        .trim_start()
                        .chars()
                        .take_while(|&c| is_ident(c))
                        .collect();
                    let mut found = false;
                    for (_, other) in files {
                        for inv in call_sites(other, &format!("{mac}!")) {
                            let body = &other[inv + 1..];
                            // skip attributes like #[doc = …]
                            let mut rest = body.trim_start();
                            while rest.starts_with("#[") {
                                let close = rest.find(']').unwrap_or(rest.len() - 1);
                                rest = rest[close + 1..].trim_start();
                            }
                            let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
                            if !name.is_empty() {
                                names.insert(name, format!("{path}: {mac}!"));
                                found = true;
                            }
                        }
                    }
                    if !found {
                        unresolved.push(format!("{at}: {first} (no {mac}! invocations)"));
                    }
                    continue;
                }
                // 3. an identifier: `let x = …;` in the enclosing fn, or a parameter of it
                if first.chars().all(is_ident) {
                    let fn_start = src[..open].rfind("fn ").unwrap_or(0);
                    let let_pat = format!("let {first} =");
                    if let Some(l) = src[fn_start..open].rfind(&let_pat) {
                        let stmt = &src[fn_start + l..];
                        let stmt = &stmt[..stmt.find(';').unwrap_or(stmt.len())];
                        let lits = literals(stmt);
                        if lits.is_empty() {
                            unresolved.push(format!("{at}: `{first}` is not built from literals"));
                        }
                        for l in lits {
                            names.insert(l, at.clone());
                        }
                        continue;
                    }
                    // a parameter of the enclosing fn: collect literals at its call sites
                    let fn_name: String = src[fn_start + 3..]
                        .chars()
                        .skip_while(|c| c.is_whitespace())
                        .take_while(|&c| is_ident(c))
                        .collect();
                    let params_open = fn_start + src[fn_start..].find('(').unwrap_or(0);
                    let params = call_args(src, params_open);
                    let pos = params
                        .iter()
                        .position(|p| p.split(':').next().map(str::trim) == Some(first.as_str()));
                    if let Some(pos) = pos {
                        let mut found = false;
                        for (opath, other) in files {
                            for site in call_sites(other, &fn_name) {
                                let a = call_args(other, site);
                                if let Some(arg) = a.get(pos) {
                                    if arg.starts_with('"') {
                                        for l in literals(arg) {
                                            names.insert(
                                                l,
                                                format!("{opath}:{}", line_of(other, site)),
                                            );
                                            found = true;
                                        }
                                    }
                                }
                            }
                        }
                        if found {
                            continue;
                        }
                    }
                }
                unresolved.push(format!("{at}: cannot resolve the op name `{first}`"));
            }
        }
    }
    for (d, used) in dynamic.iter().zip(dynamic_used) {
        if !used {
            unresolved.push(format!(
                "DYNAMIC_SITES lists {}: `{}` but no record site there uses that name expression",
                d.file, d.name_expr
            ));
        }
    }
    (names, unresolved)
}

/// A record site whose op name is chosen at run time, and the table entry standing for it.
struct DynamicSite {
    file: &'static str,
    name_expr: &'static str,
    table_name: &'static str,
}

/// Record sites with run-time names. Custom functions (`autograd::apply_function`) record
/// under the name the user's `CustomFunction` gives; the table checks one such function.
const DYNAMIC_SITES: &[DynamicSite] = &[DynamicSite {
    file: "src/autograd/function.rs",
    name_expr: "name",
    table_name: "custom_function",
}];

/// The functions that record graph nodes: every `fn record…(` in `src/autograd/node.rs`
/// (`record`, `record1`, and variants such as `record1_jvp`).
fn recorder_fns() -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/autograd/node.rs");
    let src = strip(&std::fs::read_to_string(path).unwrap());
    let mut out = Vec::new();
    let mut rest = src.as_str();
    while let Some(p) = rest.find("fn record") {
        let name: String = rest[p + 3..].chars().take_while(|&c| is_ident(c)).collect();
        rest = &rest[p + 3..];
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// Every `.rs` file under `src/` except the autograd node module (where `record` is defined).
fn source_files() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    let mut dirs = vec![root.join("src")];
    while let Some(d) = dirs.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                if rel == "src/autograd/node.rs" {
                    continue;
                }
                out.push((rel, strip(&std::fs::read_to_string(&p).unwrap())));
            }
        }
    }
    out
}

#[test]
fn every_recorded_op_is_in_the_table() {
    let files = source_files();
    assert!(
        files.iter().any(|(p, _)| p == "src/ops/unary.rs"),
        "scanner found no sources"
    );
    let recorders = recorder_fns();
    for must in ["record", "record1"] {
        assert!(
            recorders.iter().any(|r| r == must),
            "no `fn {must}` in src/autograd/node.rs: {recorders:?}"
        );
    }
    let (found, unresolved) = recorded_names(&files, &recorders, DYNAMIC_SITES);
    let table: BTreeSet<&str> = table().iter().map(|e| e.op).collect();
    let missing: Vec<String> = found
        .iter()
        .filter(|(n, _)| !table.contains(n.as_str()))
        .map(|(n, at)| format!("{n} (recorded at {at})"))
        .collect();
    let stale: Vec<&str> = table
        .iter()
        .filter(|n| !found.contains_key(**n))
        .copied()
        .collect();
    let mut msg = String::new();
    if !missing.is_empty() {
        msg += &format!(
            "ops recorded in src/ with no gradcheck entry in tests/gradcheck_table.rs:\n  {}\n",
            missing.join("\n  ")
        );
    }
    if !unresolved.is_empty() {
        msg += &format!(
            "record sites whose op name the scanner cannot resolve (use a literal, a `let` of literals, or \
             a helper's literal argument):\n  {}\n",
            unresolved.join("\n  ")
        );
    }
    if !stale.is_empty() {
        msg += &format!("table entries for ops no longer recorded anywhere: {stale:?}\n");
    }
    assert!(msg.is_empty(), "{msg}");
    eprintln!(
        "recorded op names found in src/: {:?}",
        found.keys().collect::<Vec<_>>()
    );
    // the scan sees the ops we know exist (guards against a scanner that finds nothing)
    for known in [
        "exp",
        "add",
        "maximum",
        "max_dim",
        "amax",
        "narrow",
        "view_adjoint",
        "softmax",
        "to_dtype",
    ] {
        assert!(
            found.contains_key(known),
            "scanner missed `{known}`: found {:?}",
            found.keys()
        );
    }
}

/// The scanner on a synthetic source: every way of naming an op is found, an unresolvable
/// one is reported.
#[test]
fn scanner_finds_every_naming_style() {
    let src = r#"
        macro_rules! unary_op {
            ($name:ident) => { record1(stringify!($name), &[x], out, |g, _| Ok(vec![])) };
        }
        unary_op!(
            /// doc
            #[inline]
            alpha, |v| v);
        unary_op!(beta, |v| v);
        fn f() { record1("gamma", &[a], o, |g, _| Ok(vec![])); }
        fn g(max: bool) { let name = if max { "delta" } else { "epsilon" }; record1(name, &[a], o, r) }
        fn helper(x: &Tensor, name: &'static str) { record1(name, &[x], o, r) }
        fn h() { helper(x, "zeta"); helper(y, "eta"); }
        fn multi() { record(
            "theta", &[a], outs, r) }
        fn fwd() { crate::autograd::record1_jvp("iota", &[a], o, r, j); x.record1("not_a_call") }
        // record1("commented_out", …)
        fn dynamic(s: String) { record1(s.as_str(), &[a], o, r) }
    "#;
    let files = vec![("x.rs".to_string(), strip(src))];
    let recorders = vec![
        "record".to_string(),
        "record1".to_string(),
        "record1_jvp".to_string(),
    ];
    let (found, unresolved) = recorded_names(&files, &recorders, &[]);
    let names: Vec<&str> = found.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        vec!["alpha", "beta", "delta", "epsilon", "eta", "gamma", "iota", "theta", "zeta"]
    );
    assert_eq!(unresolved.len(), 1, "{unresolved:?}");
    assert!(unresolved[0].contains("s.as_str()"), "{unresolved:?}");
}
