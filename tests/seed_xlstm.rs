//! vLSTM decay matrix and mLSTM cell (SEEDS.md §1, seed `002_…`): the seed's printed values,
//! the gradient facts of `dmat.sum().backward()`, the hand-written backward against autograd
//! (`verify_backward`, with −∞ outputs) and against finite differences, second order, the
//! mLSTM parallel form against a naive loop and against the recurrent form, and errors.

use eingrad::autograd::{grad, GradOptions};
use eingrad::func::{gradcheck, verify_backward, GradcheckOptions, VerifyOptions};
use eingrad::models::xlstm::{
    decay_matrix, decay_matrix_custom, mlstm_parallel, mlstm_parallel_from_decay, mlstm_recurrent,
    mlstm_step, MlstmState,
};
use eingrad::{DType, Result, Tensor};

const S: usize = 5;

/// ĩ of the seed notebook, heads in (b, h) order, printed to 4 decimals.
const IGATE: [[f64; S]; 8] = [
    [1.6217, -1.1963, 1.2651, -1.0511, 0.8248],
    [1.7687, -0.2273, -0.3192, -0.1224, 0.5716],
    [1.7480, 1.5525, -0.0406, 1.0113, 1.5455],
    [2.1709, -0.0638, 0.3106, -0.2125, 0.0994],
    [0.7163, -0.5652, 0.1756, -0.3835, 0.2200],
    [-0.3686, -1.3597, 0.2573, 0.0560, 0.3304],
    [-0.1345, 0.9675, 0.8923, 0.5020, 0.1634],
    [-0.3290, 0.5576, 0.7773, -1.5742, 0.2267],
];
/// f̃ of the seed notebook.
const FGATE: [[f64; S]; 8] = [
    [0.0124, -1.0455, -0.0735, 0.0832, -0.5680],
    [1.9620, -0.3731, 0.5843, -0.4221, 1.5006],
    [0.5582, 1.2511, 0.6232, 0.7075, 1.3565],
    [0.5134, 1.9529, -1.8601, -0.8365, 0.6902],
    [1.5590, 1.5131, 0.3081, 0.3594, 0.7247],
    [-0.5370, -1.3131, -1.0852, 1.7549, -0.2841],
    [0.3271, -0.4896, 0.5642, -0.4275, -1.2305],
    [1.1763, -0.0798, 1.8283, 0.3819, 0.5638],
];
/// f̃ gradients of `dmat.sum().backward()` printed by the seed.
const FGRAD: [[f64; S]; 8] = [
    [0.0, 2.9597, 3.1102, 2.8753, 2.5532],
    [0.0, 2.3688, 2.1476, 3.6239, 0.7294],
    [0.0, 0.8900, 2.0944, 1.9809, 0.8192],
    [0.0, 0.4970, 5.1919, 4.1863, 1.3360],
    [0.0, 0.7219, 2.5414, 2.4667, 1.3054],
    [0.0, 3.1521, 4.4849, 0.8846, 2.2822],
    [0.0, 2.4800, 2.1754, 3.6317, 3.0956],
    [0.0, 2.0798, 0.8306, 2.4341, 1.4506],
];

fn seed_gates(dtype: DType) -> (Tensor, Tensor) {
    let flat = |a: &[[f64; S]; 8]| a.iter().flatten().copied().collect::<Vec<f64>>();
    (
        Tensor::from_f64s(&flat(&IGATE), &[2, 4, S, 1], dtype).unwrap(),
        Tensor::from_f64s(&flat(&FGATE), &[2, 4, S, 1], dtype).unwrap(),
    )
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn assert_close(got: &[f64], want: &[f64], atol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = g == w || (g - w).abs() <= atol;
        assert!(ok, "{what}: entry {i}: got {g}, want {w} (atol {atol})");
    }
}

type DecayFn = fn(&Tensor, &Tensor) -> Result<Tensor>;
const BOTH: [(&str, DecayFn); 2] = [
    ("autograd", decay_matrix as DecayFn),
    ("custom", decay_matrix_custom as DecayFn),
];

#[test]
fn seed_decay_matrix_values() {
    for dtype in [DType::F32, DType::F64] {
        for (name, f) in BOTH {
            let (ig, fg) = seed_gates(dtype);
            let d = f(&ig, &fg).unwrap();
            assert_eq!(d.dims(), &[2, 4, S, S]);
            let v = d.to_vec_f64();
            let head = |h: usize| &v[h * S * S..(h + 1) * S * S];
            // Head (0,0): the whole lower triangle; −∞ above the diagonal.
            let rows: [&[f64]; S] = [
                &[1.6217],
                &[0.2749, -1.1963],
                &[-0.4557, -1.9268, 1.2651],
                &[-1.1081, -2.5793, 0.6127, -1.0511],
                &[-2.1250, -3.5962, -0.4043, -2.0680, 0.8248],
            ];
            for (i, row) in rows.iter().enumerate() {
                let got = &head(0)[i * S..(i + 1) * S];
                assert_close(
                    &got[..=i],
                    row,
                    2e-4,
                    &format!("{name} {dtype:?} D(0,0) row {i}"),
                );
                assert!(got[i + 1..].iter().all(|&x| x == f64::NEG_INFINITY));
            }
            // Row 4 of heads (0,1), (0,2), (1,1).
            for (h, row) in [
                (1, [-0.6990, -1.7980, -1.4468, -0.3237, 0.5716]),
                (2, [0.4371, 0.4932, -0.6705, 0.7821, 1.5455]),
                (5, [-4.3009, -3.7407, -0.7475, -0.7892, 0.3304]),
            ] {
                assert_close(
                    &head(h)[4 * S..],
                    &row,
                    2e-4,
                    &format!("{name} D head {h} row 4"),
                );
            }
            // Every head: the diagonal is ĩ, and −∞ strictly above it.
            for (h, ig_h) in IGATE.iter().enumerate() {
                for (i, ig) in ig_h.iter().enumerate() {
                    assert!((head(h)[i * S + i] - ig).abs() < 1e-6);
                    for j in i + 1..S {
                        assert_eq!(head(h)[i * S + j], f64::NEG_INFINITY);
                    }
                }
            }
        }
    }
}

#[test]
fn seed_gradients_of_the_sum() {
    for dtype in [DType::F32, DType::F64] {
        for (name, f) in BOTH {
            let (ig, fg) = seed_gates(dtype);
            let (ig, fg) = (ig.requires_grad_(true), fg.requires_grad_(true));
            let total = f(&ig, &fg).unwrap().sum_all().unwrap();
            assert_eq!(total.item().unwrap(), f64::NEG_INFINITY);
            total.backward().unwrap();
            // Every ĩ gradient is S (the input part is added, not selected).
            assert_eq!(
                ig.grad().unwrap().to_vec_f64(),
                vec![S as f64; 40],
                "{name}"
            );
            let gf = fg.grad().unwrap().to_vec_f64();
            let tol = if dtype == DType::F64 { 1e-12 } else { 2e-6 };
            for h in 0..8 {
                let got = &gf[h * S..(h + 1) * S];
                assert_close(
                    got,
                    &FGRAD[h],
                    2e-4,
                    &format!("{name} {dtype:?} df head {h}"),
                );
                assert_eq!(got[0], 0.0, "{name}: δf̃_0 must be exactly 0");
                // δf̃_k = k(S−k)σ(−f̃_k)
                let closed: Vec<f64> = (0..S)
                    .map(|k| (k * (S - k)) as f64 * sigmoid(-FGATE[h][k]))
                    .collect();
                assert_close(got, &closed, tol, &format!("{name} closed form head {h}"));
            }
        }
    }
}

/// The finite part of D̃ (−∞ above the diagonal replaced by 0 through `where_`, so it passes
/// no gradient there): what finite differences can look at.
fn finite_part(d: &Tensor) -> Result<Tensor> {
    let s = d.dims()[2];
    let lower: Vec<f64> = (0..s * s)
        .map(|p| if p % s <= p / s { 1.0 } else { 0.0 })
        .collect();
    let lower = Tensor::from_f64s(&lower, &[s, s], d.dtype())?;
    Tensor::where_(&lower, d, &Tensor::zeros(&[], d.dtype()).unwrap())
}

#[test]
fn custom_backward_matches_autograd() {
    let custom = |xs: &[Tensor]| Ok(vec![decay_matrix_custom(&xs[0], &xs[1])?]);
    let reference = |xs: &[Tensor]| Ok(vec![decay_matrix(&xs[0], &xs[1])?]);
    for (shape, seed) in [
        ([2usize, 4, 5, 1], 0u64),
        ([1, 2, 16, 1], 1),
        ([1, 1, 1, 1], 2),
    ] {
        for dtype in [DType::F32, DType::F64] {
            let xs = [
                Tensor::randn(&shape, dtype, seed * 10 + 1).unwrap(),
                Tensor::randn(&shape, dtype, seed * 10 + 2)
                    .unwrap()
                    .mul_scalar(2.0)
                    .unwrap(),
            ];
            // f32 with S = 16: autograd's δf̃_0 (exactly 0) comes out of a 16-term
            // cancellation as about 1.4e-6, while the hand-written rule returns 0.
            let atol = if dtype == DType::F32 && shape[2] > 8 {
                5e-6
            } else {
                1e-6
            };
            let mut opts = VerifyOptions::default().tolerances(atol, 1e-6).seed(seed);
            opts.random_cotangents = 6;
            opts.max_one_hot = 256; // every one-hot cotangent for the seed's shape
            let r = verify_backward(&custom, &reference, &xs, opts).unwrap();
            assert!(r.passed(), "{shape:?} {dtype:?}\n{r}");
            if dtype == DType::F64 {
                // Much tighter than asked for.
                assert!(r.gradients.iter().all(|d| d.max_abs_err < 1e-12), "{r}");
            }
            // The outputs hold −∞ (compared equal) above the diagonal when S > 1.
            if shape[2] > 1 {
                let d = decay_matrix(&xs[0], &xs[1]).unwrap();
                assert!(d.to_vec_f64().contains(&f64::NEG_INFINITY));
            }
        }
    }
    // Finite differences (f64) on the finite part as a third opinion.
    let custom_f = |xs: &[Tensor]| Ok(vec![finite_part(&decay_matrix_custom(&xs[0], &xs[1])?)?]);
    let reference_f = |xs: &[Tensor]| Ok(vec![finite_part(&decay_matrix(&xs[0], &xs[1])?)?]);
    let xs = [
        Tensor::randn(&[2, 4, 5, 1], DType::F64, 7).unwrap(),
        Tensor::randn(&[2, 4, 5, 1], DType::F64, 8).unwrap(),
    ];
    let opts = VerifyOptions::default().finite_differences(true).seed(3);
    let r = verify_backward(&custom_f, &reference_f, &xs, opts).unwrap();
    assert!(r.passed(), "{r}");
    assert_eq!(r.finite_differences.len(), 2);
    // And plain gradcheck of both on the finite part.
    for f in [
        &custom_f as &dyn Fn(&[Tensor]) -> Result<Vec<Tensor>>,
        &reference_f,
    ] {
        let r = gradcheck(f, &xs, GradcheckOptions::default()).unwrap();
        assert!(r.passed, "{}", r.worst);
    }
}

#[test]
fn custom_backward_is_differentiable() {
    // Second order: the hand-written rule, recorded with create_graph, against autograd's.
    fn vjp_fn(f: DecayFn) -> impl Fn(&[Tensor]) -> Result<Vec<Tensor>> {
        move |xs: &[Tensor]| {
            let d = f(&xs[0], &xs[1])?;
            let g = Tensor::randn(d.dims(), d.dtype(), 99).unwrap();
            let gs = grad(
                &[d],
                &[xs[0].clone(), xs[1].clone()],
                Some(&[g]),
                GradOptions::default().create_graph(true),
            )?;
            // δĩ does not depend on the inputs; δf̃ does (through σ(−f̃)).
            Ok(vec![gs[1].clone().unwrap().mul(&xs[1])?])
        }
    }
    let xs = [
        Tensor::randn(&[1, 2, 6, 1], DType::F64, 3).unwrap(),
        Tensor::randn(&[1, 2, 6, 1], DType::F64, 4).unwrap(),
    ];
    let custom = vjp_fn(decay_matrix_custom);
    let reference = vjp_fn(decay_matrix);
    let opts = VerifyOptions::default().finite_differences(true);
    let r = verify_backward(&custom, &reference, &xs, opts).unwrap();
    assert!(r.passed(), "{r}");
}

// ---------------------------------------------------------------------------------------------
// mLSTM

struct Inputs {
    q: Tensor,
    k: Tensor,
    v: Tensor,
    ig: Tensor,
    fg: Tensor,
}

fn mlstm_inputs(b: usize, nh: usize, s: usize, dh: usize, seed: u64) -> Inputs {
    Inputs {
        q: Tensor::randn(&[b, nh, s, dh], DType::F64, seed).unwrap(),
        k: Tensor::randn(&[b, nh, s, dh], DType::F64, seed + 1).unwrap(),
        v: Tensor::randn(&[b, nh, s, dh], DType::F64, seed + 2).unwrap(),
        ig: Tensor::randn(&[b, nh, s, 1], DType::F64, seed + 3).unwrap(),
        fg: Tensor::randn(&[b, nh, s, 1], DType::F64, seed + 4)
            .unwrap()
            .add_scalar(2.0)
            .unwrap(),
    }
}

/// The parallel mLSTM written as plain loops over f64 (per batch and head).
fn naive_parallel(x: &Inputs) -> Vec<f64> {
    let d = x.q.dims().to_vec();
    let (bh, s, dh) = (d[0] * d[1], d[2], d[3]);
    let (q, k, v) = (x.q.to_vec_f64(), x.k.to_vec_f64(), x.v.to_vec_f64());
    let (ig, fg) = (x.ig.to_vec_f64(), x.fg.to_vec_f64());
    let logsig = |z: f64| -(1.0 + (-z).exp()).ln();
    let mut out = vec![0.0; bh * s * dh];
    for h in 0..bh {
        for i in 0..s {
            let dt: Vec<f64> = (0..=i)
                .map(|j| (j + 1..=i).map(|t| logsig(fg[h * s + t])).sum::<f64>() + ig[h * s + j])
                .collect();
            let m = dt.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let c: Vec<f64> = (0..=i)
                .map(|j| {
                    let qk: f64 = (0..dh)
                        .map(|e| q[(h * s + i) * dh + e] * k[(h * s + j) * dh + e])
                        .sum();
                    qk / (dh as f64).sqrt() * (dt[j] - m).exp()
                })
                .collect();
            let n = c.iter().sum::<f64>().abs().max((-m).exp());
            for e in 0..dh {
                let num: f64 = (0..=i).map(|j| c[j] * v[(h * s + j) * dh + e]).sum();
                out[(h * s + i) * dh + e] = num / (n + 1e-6);
            }
        }
    }
    out
}

#[test]
fn mlstm_parallel_matches_a_naive_loop() {
    let x = mlstm_inputs(2, 2, 8, 4, 10);
    let h = mlstm_parallel(&x.q, &x.k, &x.v, &x.ig, &x.fg).unwrap();
    assert_eq!(h.dims(), &[2, 2, 8, 4]);
    assert_close(
        &h.to_vec_f64(),
        &naive_parallel(&x),
        1e-12,
        "parallel vs loop",
    );
    let d = decay_matrix_custom(&x.ig, &x.fg).unwrap();
    let h2 = mlstm_parallel_from_decay(&x.q, &x.k, &x.v, &d).unwrap();
    assert_close(&h2.to_vec_f64(), &h.to_vec_f64(), 1e-14, "custom decay");
}

#[test]
fn mlstm_parallel_and_recurrent_agree() {
    for seed in [20u64, 30, 40] {
        let x = mlstm_inputs(2, 2, 8, 4, seed);
        let par = mlstm_parallel(&x.q, &x.k, &x.v, &x.ig, &x.fg).unwrap();
        let (rec, state) = mlstm_recurrent(&x.q, &x.k, &x.v, &x.ig, &x.fg, None).unwrap();
        assert_eq!(rec.dims(), par.dims());
        assert_eq!(state.c.dims(), &[2, 2, 4, 4]);
        assert_close(
            &rec.to_vec_f64(),
            &par.to_vec_f64(),
            1e-5,
            "recurrent vs parallel",
        );

        // Their gradients agree too.
        let w = Tensor::randn(par.dims(), DType::F64, seed + 7).unwrap();
        let grads = |par_form: bool| {
            let leaves: Vec<Tensor> = [&x.q, &x.k, &x.v, &x.ig, &x.fg]
                .iter()
                .map(|t| t.detach().requires_grad_(true))
                .collect();
            let (q, k, v, ig, fg) = (&leaves[0], &leaves[1], &leaves[2], &leaves[3], &leaves[4]);
            let h = if par_form {
                mlstm_parallel(q, k, v, ig, fg).unwrap()
            } else {
                mlstm_recurrent(q, k, v, ig, fg, None).unwrap().0
            };
            let y = h.mul(&w).unwrap().sum_all().unwrap();
            grad(&[y], &leaves, None, GradOptions::default())
                .unwrap()
                .into_iter()
                .flat_map(|g| g.unwrap().to_vec_f64())
                .collect::<Vec<f64>>()
        };
        assert_close(&grads(false), &grads(true), 1e-5, "gradients");
    }
}

#[test]
fn mlstm_step_by_step_continues_a_state() {
    // Running the first half, then the second half from the carried state, equals one run.
    let x = mlstm_inputs(1, 2, 8, 3, 50);
    let (all, last) = mlstm_recurrent(&x.q, &x.k, &x.v, &x.ig, &x.fg, None).unwrap();
    let half = |t: &Tensor, a| t.narrow(2, a, 4).unwrap();
    let (h1, mid) = mlstm_recurrent(
        &half(&x.q, 0),
        &half(&x.k, 0),
        &half(&x.v, 0),
        &half(&x.ig, 0),
        &half(&x.fg, 0),
        None,
    )
    .unwrap();
    let (h2, end) = mlstm_recurrent(
        &half(&x.q, 4),
        &half(&x.k, 4),
        &half(&x.v, 4),
        &half(&x.ig, 4),
        &half(&x.fg, 4),
        Some(mid),
    )
    .unwrap();
    let joined = Tensor::cat(&[&h1, &h2], 2).unwrap();
    assert_eq!(joined.to_vec_f64(), all.to_vec_f64());
    assert_eq!(end.c.to_vec_f64(), last.c.to_vec_f64());
}

#[test]
fn gradcheck_mlstm_parallel() {
    let x = mlstm_inputs(1, 1, 4, 2, 60);
    let f = |xs: &[Tensor]| {
        Ok(vec![mlstm_parallel(
            &xs[0], &xs[1], &xs[2], &xs[3], &xs[4],
        )?])
    };
    let r = gradcheck(
        &f,
        &[x.q, x.k, x.v, x.ig, x.fg],
        GradcheckOptions::default(),
    )
    .unwrap();
    assert!(r.passed, "{}", r.worst);
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn bad_inputs_name_the_argument() {
    let g = Tensor::zeros(&[1, 2, 5, 1], DType::F64).unwrap();
    let err = |r: Result<Tensor>| r.unwrap_err().to_string();
    let e = err(decay_matrix(
        &Tensor::zeros(&[1, 2, 5], DType::F64).unwrap(),
        &g,
    ));
    assert!(e.contains("decay_matrix") && e.contains("`igate`"), "{e}");
    let e = err(decay_matrix(
        &g,
        &Tensor::zeros(&[1, 2, 5, 2], DType::F64).unwrap(),
    ));
    assert!(e.contains("`fgate`"), "{e}");
    let e = err(decay_matrix_custom(
        &g,
        &Tensor::zeros(&[1, 2, 4, 1], DType::F64).unwrap(),
    ));
    assert!(
        e.contains("decay_matrix_custom") && e.contains("`fgate`"),
        "{e}"
    );
    let e = err(decay_matrix(
        &g,
        &Tensor::zeros(&[1, 2, 5, 1], DType::F32).unwrap(),
    ));
    assert!(e.contains("`fgate`") && e.contains("dtype"), "{e}");

    let q = Tensor::zeros(&[1, 2, 5, 3], DType::F64).unwrap();
    let e = err(mlstm_parallel(
        &q,
        &Tensor::zeros(&[1, 2, 5, 4], DType::F64).unwrap(),
        &q,
        &g,
        &g,
    ));
    assert!(e.contains("mlstm_parallel") && e.contains("`k`"), "{e}");
    let e = err(mlstm_parallel(
        &q,
        &q,
        &Tensor::zeros(&[1, 2, 4, 3], DType::F64).unwrap(),
        &g,
        &g,
    ));
    assert!(e.contains("`v`"), "{e}");
    let g4 = Tensor::zeros(&[1, 2, 4, 1], DType::F64).unwrap();
    let e = err(mlstm_parallel(&q, &q, &q, &g4, &g4));
    assert!(e.contains("`igate`"), "{e}");
    let e = err(mlstm_parallel_from_decay(
        &q,
        &q,
        &q,
        &Tensor::zeros(&[1, 2, 5, 4], DType::F64).unwrap(),
    ));
    assert!(e.contains("`dmat`"), "{e}");

    let st = MlstmState::zeros(1, 2, 3, 3, DType::F64).unwrap();
    let step = |t: &Tensor| t.narrow(2, 0, 1).unwrap();
    let e = mlstm_step(&st, &q, &q, &q, &g, &g).unwrap_err().to_string();
    assert!(e.contains("mlstm_step") && e.contains("`q`"), "{e}");
    let bad = MlstmState::zeros(1, 2, 4, 3, DType::F64).unwrap();
    let e = mlstm_step(&bad, &step(&q), &step(&q), &step(&q), &step(&g), &step(&g))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`state`") && e.contains("state.c"), "{e}");
    assert!(mlstm_step(&st, &step(&q), &step(&q), &step(&q), &step(&g), &step(&g)).is_ok());
}
