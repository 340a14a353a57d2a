//! Autograd overhead (WORKLOADS.md "chain100"): 100 elementwise ops (×1.01, +0.1, sin, tanh,
//! repeated) on a tiny tensor, then sum and backward; eingrad vs PyTorch eager, timed in
//! alternating rounds against `benches/peers/torch_server.py` (median of per-round ratios).

mod common;

use common::{interleaved, PeerServer};

/// Alternating rounds per workload.
const ROUNDS: usize = 7;
use eingrad::autograd::no_grad;
use eingrad::{DType, Result, Tensor};

const NOPS: usize = 100;

fn chain(mut y: Tensor) -> Result<Tensor> {
    for _ in 0..NOPS / 4 {
        y = y.mul_scalar(1.01)?;
        y = y.add_scalar(0.1)?;
        y = y.sin()?;
        y = y.tanh()?;
    }
    Ok(y)
}

fn main() {
    let Some(th) = common::start() else {
        return;
    };
    let mut peer = PeerServer::start(th);
    println!(
        "{:<26} {:>8} {:>14} {:>14} {:>8}",
        "workload", "shape", "eingrad µs/op", "torch µs/op", "ratio"
    );
    let shapes: [&[usize]; 2] = [&[10], &[4, 4]];
    for shape in shapes {
        let x0 = Tensor::randn(shape, DType::F32, 0).unwrap();
        let x = x0.detach().requires_grad_(true);
        let case = |mode: &str| {
            Some(serde_json::json!({"kind": "chain100", "shape": shape, "mode": mode}))
        };
        let rows = [
            (
                "chain100_fwd_nograd",
                interleaved(&mut peer, case("fwd_nograd"), ROUNDS, 0.3, || {
                    drop(no_grad(|| chain(x0.clone()).unwrap().sum_all().unwrap()))
                }),
            ),
            (
                "chain100_fwd_bwd",
                interleaved(&mut peer, case("fwd_bwd"), ROUNDS, 0.3, || {
                    x.zero_grad();
                    chain(x.clone())
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .backward()
                        .unwrap();
                }),
            ),
        ];
        for (name, c) in rows {
            let per_op = |t: f64| t / NOPS as f64 * 1e6;
            let ts = c.peer_s.map_or("-".into(), |p| format!("{:.3}", per_op(p)));
            let rs = c.ratio.map_or("-".into(), |r| format!("{r:.1}x"));
            println!(
                "{name:<26} {:>8} {:>14.3} {ts:>14} {rs:>8}",
                format!("{shape:?}"),
                per_op(c.ours_s)
            );
        }
    }
    println!("threads: {th}");
}
