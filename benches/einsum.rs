//! einsum workloads of `../shared/bench/WORKLOADS.md`, eingrad vs PyTorch side by side.
//!
//! `cargo bench --bench einsum` prints, per workload, eingrad's median time, torch's median
//! time (`torch.einsum` on the same shapes in `benches/peers/torch_server.py`, same thread
//! count) and the speed ratio torch/eingrad (> 1 means eingrad is faster). The two sides are
//! timed in alternating rounds (`ROUNDS` of each) and the ratio is the median of the
//! per-round ratios, because this machine's speed drifts by up to 2x within a minute.

mod common;

use common::{bench, interleaved, PeerServer};
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

/// Alternating rounds per workload.
const ROUNDS: usize = 5;

fn operands(shapes: &[&[usize]], dtype: DType) -> Vec<Tensor> {
    shapes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Tensor::rand(s, dtype, i as u64)
                .unwrap()
                .add_scalar(-0.5)
                .unwrap()
        })
        .collect()
}

fn time_case(pattern: &str, shapes: &[&[usize]], dtype: DType, strategy: PlanStrategy) -> f64 {
    let ops = operands(shapes, dtype);
    let refs: Vec<&Tensor> = ops.iter().collect();
    let expr = EinsumExpr::new(pattern, shapes, &[], strategy).expect("valid case");
    bench(
        || drop(std::hint::black_box(expr.run(&refs).unwrap())),
        7,
        0.5,
    )
}

/// chain4_skewed's planned order against left-to-right evaluation: eingrad's own (both
/// orders in alternating rounds, median of the per-round ratios) and torch.einsum's with
/// opt_einsum switched off (torch's documented left-to-right order), side by side.
fn planned_vs_left_to_right(peer: &mut Option<PeerServer>) {
    let (name, pattern, shapes) = CASES[5];
    let ops = operands(shapes, DType::F32);
    let refs: Vec<&Tensor> = ops.iter().collect();
    let expr = |s| EinsumExpr::new(pattern, shapes, &[], s).expect("valid case");
    let (planned, ltr) = (expr(PlanStrategy::Auto), expr(PlanStrategy::LeftToRight));
    let run = |e: &EinsumExpr| bench(|| drop(std::hint::black_box(e.run(&refs).unwrap())), 5, 0.3);
    let (mut tp, mut tl, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (a, b) = (run(&planned), run(&ltr));
        tp.push(a);
        tl.push(b);
        r.push(b / a);
    }
    println!(
        "{name}: planned order {:.1}x faster than eingrad's left-to-right ({:.3} vs {:.3} ms)",
        common::median(r),
        common::median(tp) * 1e3,
        common::median(tl) * 1e3
    );
    let case = serde_json::json!({
        "kind": "einsum",
        "pattern": pattern,
        "shapes": shapes,
        "dtype": "float32",
        "left_to_right": true,
    });
    let c = interleaved(peer, Some(case), ROUNDS, 0.3, || {
        drop(std::hint::black_box(planned.run(&refs).unwrap()))
    });
    if let (Some(ratio), Some(torch)) = (c.ratio, c.peer_s) {
        println!(
            "{name}: planned order {ratio:.1}x faster than torch.einsum's left-to-right \
             (opt_einsum off; {:.3} vs {:.3} ms)",
            c.ours_s * 1e3,
            torch * 1e3
        );
    }
}

/// eingrad vs torch.einsum on one case, in alternating rounds.
fn compare_case(
    peer: &mut Option<PeerServer>,
    pattern: &str,
    shapes: &[&[usize]],
    dtype: DType,
) -> common::Compared {
    let ops = operands(shapes, dtype);
    let refs: Vec<&Tensor> = ops.iter().collect();
    let expr = EinsumExpr::new(pattern, shapes, &[], PlanStrategy::Auto).expect("valid case");
    let case = serde_json::json!({
        "kind": "einsum",
        "pattern": pattern,
        "shapes": shapes,
        "dtype": if dtype == DType::F32 { "float32" } else { "float64" },
    });
    interleaved(peer, Some(case), ROUNDS, 0.3, || {
        drop(std::hint::black_box(expr.run(&refs).unwrap()))
    })
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
    // EINGRAD_BENCH_FILTER=name,name: compare just those workloads (gemm_f32_1024, bmm, ...,
    // left_to_right for the chain4_skewed order comparison).
    let filter = std::env::var("EINGRAD_BENCH_FILTER").ok();
    let wanted = |name: &str| {
        filter
            .as_ref()
            .is_none_or(|f| f.split(',').any(|w| w == name))
    };
    let mut peer = PeerServer::start(th);
    println!(
        "{:<30} {:>12} {:>12} {:>8}",
        "workload", "eingrad", "torch", "ratio"
    );
    let show = |name: &str, c: &common::Compared, extra: String| {
        let ps = c
            .peer_s
            .map_or("-".into(), |p| format!("{:.3} ms", p * 1e3));
        let rs = c.ratio.map_or("-".into(), |r| format!("{r:.2}x"));
        println!(
            "{name:<30} {:>9.3} ms {ps:>12} {rs:>8}{extra}",
            c.ours_s * 1e3
        );
    };
    for dt in [DType::F32, DType::F64] {
        for n in [256usize, 512, 1024, 2048] {
            let name = format!("gemm_{}_{n}", if dt == DType::F32 { "f32" } else { "f64" });
            if !wanted(&name) {
                continue;
            }
            let c = compare_case(&mut peer, "ij,jk->ik", &[&[n, n], &[n, n]], dt);
            let gflops = 2.0 * (n * n * n) as f64 / c.ours_s / 1e9;
            show(&name, &c, format!("  ({gflops:.0} GFLOP/s)"));
        }
    }
    let mut logs = Vec::new();
    for (name, pattern, shapes) in CASES.iter().filter(|c| wanted(c.0)) {
        let c = compare_case(&mut peer, pattern, shapes, DType::F32);
        if let Some(r) = c.ratio {
            logs.push(r.ln());
        }
        show(name, &c, String::new());
    }
    if !logs.is_empty() {
        println!(
            "einsum suite geometric mean ratio: {:.2}x",
            (logs.iter().sum::<f64>() / logs.len() as f64).exp()
        );
    }
    if wanted("left_to_right") {
        planned_vs_left_to_right(&mut peer);
    }
    println!("threads: {th}");
}
