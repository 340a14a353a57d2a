//! einsum workloads of `../shared/bench/WORKLOADS.md`, eingrad vs PyTorch side by side.
//!
//! `cargo bench --bench einsum` prints, per workload, eingrad's median time, torch's median
//! time (from `../shared/bench/peers/einsum_py.py` and `gemm_py.py` run in the same process
//! tree, same thread count) and the speed ratio torch/eingrad (> 1 means eingrad is faster).
//! eingrad is timed before and after the peer and the better median is kept.

mod common;

use common::{bench, by_key, run_peer};
use eingrad::einsum::{EinsumExpr, PlanStrategy};
use eingrad::{DType, Tensor};

const CASES: &[(&str, &str, &[&[usize]])] = &[
    ("bmm", "bij,bjk->bik", &[&[64, 128, 128], &[64, 128, 128]]),
    (
        "attn_scores",
        "bhqd,bhkd->bhqk",
        &[&[8, 8, 256, 64], &[8, 8, 256, 64]],
    ),
    (
        "pool_downsample",
        "lbd,bls->sbd",
        &[&[2048, 8, 512], &[8, 2048, 512]],
    ),
    (
        "conv_unfold",
        "bchwkt,fckt->bfhw",
        &[&[8, 32, 32, 32, 3, 3], &[64, 32, 3, 3]],
    ),
    (
        "chain4_256",
        "ab,bc,cd,de->ae",
        &[&[256, 256], &[256, 256], &[256, 256], &[256, 256]],
    ),
    (
        "chain4_skewed",
        "ab,bc,cd,de->ae",
        &[&[1000, 10], &[10, 1000], &[1000, 10], &[10, 1000]],
    ),
    ("diag_ii", "ii->i", &[&[512, 512]]),
    ("diag_ijjk", "ijjk->ik", &[&[64, 64, 64, 64]]),
    ("outer_batched", "bi,bj->bij", &[&[64, 256], &[64, 256]]),
];

fn time_case(pattern: &str, shapes: &[&[usize]], dtype: DType, strategy: PlanStrategy) -> f64 {
    let ops: Vec<Tensor> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| Tensor::rand(s, dtype, i as u64).add_scalar(-0.5).unwrap())
        .collect();
    let refs: Vec<&Tensor> = ops.iter().collect();
    let expr = EinsumExpr::new(pattern, shapes, &[], strategy).expect("valid case");
    bench(
        || drop(std::hint::black_box(expr.run(&refs).unwrap())),
        7,
        0.5,
    )
}

fn main() {
    let Some(th) = common::start() else {
        return;
    };
    // EINGRAD_BENCH_ONLY=name,name: time just those cases, without the peer.
    if let Ok(only) = std::env::var("EINGRAD_BENCH_ONLY") {
        for (name, pattern, shapes) in CASES.iter().filter(|c| only.split(',').any(|o| o == c.0)) {
            let t = time_case(pattern, shapes, DType::F32, PlanStrategy::Auto);
            println!("{name:<20} {:.3} ms", t * 1e3);
        }
        return;
    }
    let sizes = [256usize, 512, 1024, 2048];
    let mut ours: Vec<(String, f64)> = Vec::new();
    let run_ours = |ours: &mut Vec<(String, f64)>| {
        let mut row = Vec::new();
        for dt in [DType::F32, DType::F64] {
            for &n in &sizes {
                let name = format!(
                    "gemm_{}_{n}",
                    if dt == DType::F32 {
                        "float32"
                    } else {
                        "float64"
                    }
                );
                row.push((
                    name,
                    time_case("ij,jk->ik", &[&[n, n], &[n, n]], dt, PlanStrategy::Auto),
                ));
            }
        }
        for (name, pattern, shapes) in CASES {
            row.push((
                name.to_string(),
                time_case(pattern, shapes, DType::F32, PlanStrategy::Auto),
            ));
        }
        let (_, p, s) = CASES[5];
        row.push((
            "chain4_skewed_left_to_right".into(),
            time_case(p, s, DType::F32, PlanStrategy::LeftToRight),
        ));
        if ours.is_empty() {
            *ours = row;
        } else {
            for (o, r) in ours.iter_mut().zip(row) {
                o.1 = o.1.min(r.1);
            }
        }
    };
    run_ours(&mut ours);
    let ths = th.to_string();
    let peer_einsum = by_key(&run_peer("einsum_py.py", &["torch", &ths], th), "case");
    let peer_gemm: std::collections::HashMap<String, f64> =
        run_peer("gemm_py.py", &["torch", &ths], th)
            .iter()
            .filter_map(|v| {
                Some((
                    format!(
                        "gemm_{}_{}",
                        v.get("dtype")?.as_str()?,
                        v.get("n")?.as_u64()?
                    ),
                    v.get("median_s")?.as_f64()?,
                ))
            })
            .collect();
    run_ours(&mut ours);
    println!(
        "\n{:<30} {:>12} {:>12} {:>8}",
        "workload", "eingrad", "torch", "ratio"
    );
    let mut logs = Vec::new();
    for (name, t) in &ours {
        let peer = peer_gemm.get(name).copied().or_else(|| {
            peer_einsum
                .get(name)
                .and_then(|v| v.get("median_s")?.as_f64())
        });
        let (ps, ratio) = match peer {
            Some(p) => {
                if !name.starts_with("gemm") {
                    logs.push((p / t).ln());
                }
                (format!("{:.3} ms", p * 1e3), format!("{:.2}x", p / t))
            }
            None => ("-".into(), "-".into()),
        };
        let extra = if name.starts_with("gemm") {
            let n: f64 = name
                .rsplit('_')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0.0);
            format!("  ({:.0} GFLOP/s)", 2.0 * n * n * n / t / 1e9)
        } else {
            String::new()
        };
        println!("{name:<30} {:>9.3} ms {ps:>12} {ratio:>8}{extra}", t * 1e3);
    }
    if !logs.is_empty() {
        println!(
            "einsum suite geometric mean ratio: {:.2}x",
            (logs.iter().sum::<f64>() / logs.len() as f64).exp()
        );
    }
    let get = |n: &str| {
        ours.iter()
            .find(|(k, _)| k == n)
            .map(|x| x.1)
            .unwrap_or(f64::NAN)
    };
    println!(
        "chain4_skewed: planned order is {:.1}x faster than left-to-right",
        get("chain4_skewed_left_to_right") / get("chain4_skewed")
    );
    println!("threads: {th}");
}
