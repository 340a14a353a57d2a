//! Jacobians of the seed-003 einsum cases (`../shared/bench/WORKLOADS.md`: jac_mm, jac_bmm,
//! jac_conv), eingrad vs PyTorch side by side.
//!
//! `cargo bench --bench jacobian` prints, per case, eingrad's median time for
//! `func::jacobian` (one recorded forward, then reverse passes / the transpose trick) and for
//! `func::einsum_jacobian` (one closed-form generalised einsum per operand), next to the torch
//! peer (`../shared/bench/peers/autograd_py.py torch THREADS`: `torch.autograd.functional.
//! jacobian`, the same with `vectorize=True`, and `torch.func.jacrev`), with ratios
//! torch / eingrad (> 1: eingrad is faster). Like the peer, the main rows take the Jacobian
//! with respect to BOTH operands; "x only" rows are for the WORKLOADS.md targets, which name
//! the first operand. f32, `RAYON_NUM_THREADS` (default 2) threads on both sides. eingrad is
//! timed before and after the peer; the better median is kept.
//!
//! jac_conv uses x (1,3,16,16,2,2), the shape of WORKLOADS.md, the seed and the peer; the
//! smaller (1,3,8,8,2,2) is timed too (eingrad only; no peer figure exists for it).

mod common;

use common::{bench, run_peer};
use eingrad::func::{einsum_jacobian, jacobian, JacobianMode};
use eingrad::{einsum, DType, Result, Tensor};

struct Case {
    name: &'static str,
    pattern: &'static str,
    x: &'static [usize],
    w: &'static [usize],
    peer: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "jac_mm",
        pattern: "ij,jk->ik",
        x: &[2, 3],
        w: &[3, 4],
        peer: true,
    },
    Case {
        name: "jac_bmm",
        pattern: "bij,bjk->bik",
        x: &[5, 3, 8],
        w: &[5, 8, 9],
        peer: true,
    },
    Case {
        name: "jac_conv",
        pattern: "bchwkt,fckt->bfhw",
        x: &[1, 3, 16, 16, 2, 2],
        w: &[2, 3, 2, 2],
        peer: true,
    },
    Case {
        name: "jac_conv_8x8",
        pattern: "bchwkt,fckt->bfhw",
        x: &[1, 3, 8, 8, 2, 2],
        w: &[2, 3, 2, 2],
        peer: false,
    },
];

/// The eingrad methods timed for every case: (label, both operands?).
const METHODS: &[&str] = &[
    "jacobian(Reverse) both",
    "jacobian(Auto) both",
    "einsum_jacobian both",
    "jacobian(Reverse) x only",
    "einsum_jacobian x only",
    "einsum_jacobian w only",
];

fn time_method(case: &Case, method: &str) -> f64 {
    let x = Tensor::randn(case.x, DType::F32, 1).unwrap();
    let w = Tensor::randn(case.w, DType::F32, 2).unwrap();
    let pattern = case.pattern;
    let both =
        |xs: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![einsum(pattern, &[&xs[0], &xs[1]])?]) };
    let w2 = w.clone();
    let x_only =
        move |xs: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![einsum(pattern, &[&xs[0], &w2])?]) };
    let (min_reps, min_time) = (7, 0.5);
    match method {
        "jacobian(Reverse) both" => bench(
            || {
                drop(std::hint::black_box(
                    jacobian(&both, &[x.clone(), w.clone()], JacobianMode::Reverse).unwrap(),
                ))
            },
            min_reps,
            min_time,
        ),
        "jacobian(Auto) both" => bench(
            || {
                drop(std::hint::black_box(
                    jacobian(&both, &[x.clone(), w.clone()], JacobianMode::Auto).unwrap(),
                ))
            },
            min_reps,
            min_time,
        ),
        "einsum_jacobian both" => bench(
            || {
                let jx = einsum_jacobian(pattern, &[&x, &w], 0).unwrap();
                let jw = einsum_jacobian(pattern, &[&x, &w], 1).unwrap();
                drop(std::hint::black_box((jx, jw)))
            },
            min_reps,
            min_time,
        ),
        "jacobian(Reverse) x only" => bench(
            || {
                drop(std::hint::black_box(
                    jacobian(&x_only, &[x.clone()], JacobianMode::Reverse).unwrap(),
                ))
            },
            min_reps,
            min_time,
        ),
        "einsum_jacobian x only" => bench(
            || {
                drop(std::hint::black_box(
                    einsum_jacobian(pattern, &[&x, &w], 0).unwrap(),
                ))
            },
            min_reps,
            min_time,
        ),
        "einsum_jacobian w only" => bench(
            || {
                drop(std::hint::black_box(
                    einsum_jacobian(pattern, &[&x, &w], 1).unwrap(),
                ))
            },
            min_reps,
            min_time,
        ),
        other => panic!("unknown method {other}"),
    }
}

/// Checks that the two ways agree (and the shapes are the seed's) before timing.
fn cross_check(case: &Case) {
    let x = Tensor::randn(case.x, DType::F32, 1).unwrap();
    let w = Tensor::randn(case.w, DType::F32, 2).unwrap();
    let f = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        Ok(vec![einsum(case.pattern, &[&xs[0], &xs[1]])?])
    };
    let j = jacobian(&f, &[x.clone(), w.clone()], JacobianMode::Auto).unwrap();
    for (k, block) in j[0].iter().enumerate() {
        let (e, _) = einsum_jacobian(case.pattern, &[&x, &w], k).unwrap();
        assert_eq!(e.dims(), block.dims(), "{}", case.name);
        let (a, b) = (e.to_vec_f64(), block.to_vec_f64());
        let err = a
            .iter()
            .zip(&b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f64::max);
        assert!(
            err < 1e-4,
            "{}: einsum_jacobian and jacobian differ by {err}",
            case.name
        );
    }
}

fn main() {
    let Some(th) = common::start() else {
        return;
    };
    // EINGRAD_BENCH_ONLY=case[:method]: time just that, without the peer (for profiling).
    if let Ok(only) = std::env::var("EINGRAD_BENCH_ONLY") {
        let (case, method) = only.split_once(':').unwrap_or((&only, ""));
        for c in CASES.iter().filter(|c| c.name == case) {
            for m in METHODS
                .iter()
                .filter(|m| method.is_empty() || **m == method)
            {
                println!("{} {m}: {:.1} µs", c.name, time_method(c, m) * 1e6);
            }
        }
        return;
    }
    for c in CASES {
        cross_check(c);
    }
    let run_ours = |ours: &mut Vec<Vec<f64>>| {
        for (ci, c) in CASES.iter().enumerate() {
            for (mi, m) in METHODS.iter().enumerate() {
                let t = time_method(c, m);
                if ours.len() <= ci {
                    ours.push(vec![f64::INFINITY; METHODS.len()]);
                }
                ours[ci][mi] = ours[ci][mi].min(t);
            }
        }
    };
    let mut ours: Vec<Vec<f64>> = Vec::new();
    run_ours(&mut ours);
    // EINGRAD_BENCH_NO_PEER=1: eingrad only.
    let peer = if std::env::var("EINGRAD_BENCH_NO_PEER").is_ok() {
        Vec::new()
    } else {
        let ths = th.to_string();
        let p = run_peer("autograd_py.py", &["torch", &ths], th);
        run_ours(&mut ours);
        p
    };
    let peer_time = |eq: &str, method: &str| -> Option<f64> {
        peer.iter()
            .find(|v| {
                v.get("test").and_then(|t| t.as_str()) == Some("jacobian")
                    && v.get("eq").and_then(|t| t.as_str()) == Some(eq)
                    && v.get("method").and_then(|t| t.as_str()) == Some(method)
            })
            .and_then(|v| v.get("median_s")?.as_f64())
    };
    let torch_methods = [
        ("autograd.functional.jacobian", "functional"),
        ("autograd.functional.jacobian(vectorize=True)", "vectorize"),
        ("torch.func.jacrev", "jacrev"),
    ];
    println!("\nJacobians, f32, {th} threads; times in µs; ratio = torch / eingrad (> 1: eingrad faster)");
    for (ci, c) in CASES.iter().enumerate() {
        let x: Vec<String> = c.x.iter().map(|d| d.to_string()).collect();
        let w: Vec<String> = c.w.iter().map(|d| d.to_string()).collect();
        println!(
            "\n{} `{}` x {} w {}",
            c.name,
            c.pattern,
            x.join("×"),
            w.join("×")
        );
        let torch: Vec<Option<f64>> = torch_methods
            .iter()
            .map(|(m, _)| {
                if c.peer {
                    peer_time(c.pattern, m)
                } else {
                    None
                }
            })
            .collect();
        for ((m, _), t) in torch_methods.iter().zip(&torch) {
            match t {
                Some(t) => println!("  torch {m:<46} {:>10.1}", t * 1e6),
                None => println!("  torch {m:<46} {:>10}", "-"),
            }
        }
        print!("  {:<52} {:>10}", "eingrad", "µs");
        for (_, short) in &torch_methods {
            print!(" {:>11}", format!("vs {short}"));
        }
        println!();
        for (mi, m) in METHODS.iter().enumerate() {
            let t = ours[ci][mi];
            print!("  {m:<52} {:>10.1}", t * 1e6);
            for tt in &torch {
                match tt {
                    Some(tt) => print!(" {:>10.1}×", tt / t),
                    None => print!(" {:>11}", "-"),
                }
            }
            println!();
        }
    }
    println!(
        "\nTargets (WORKLOADS.md / brief): ≥ 20× torch.autograd.functional.jacobian and ≥ 5× \
         torch.func.jacrev; jac_mm ≤ 20 µs, jac_bmm ≤ 100 µs. The torch figures are for both \
         operands; compare them with the \"both\" rows."
    );
}
