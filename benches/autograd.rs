//! Autograd overhead (WORKLOADS.md "chain100"): 100 elementwise ops (×1.01, +0.1, sin, tanh,
//! repeated) on a tiny tensor, then sum and backward; eingrad vs PyTorch eager side by side.

mod common;

use common::{bench, run_peer};
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
    let shapes: [&[usize]; 2] = [&[10], &[4, 4]];
    let measure = || {
        let mut rows = Vec::new();
        for shape in shapes {
            let x0 = Tensor::randn(shape, DType::F32, 0);
            let t = bench(
                || drop(no_grad(|| chain(x0.clone()).unwrap().sum_all().unwrap())),
                20,
                0.5,
            );
            rows.push(("chain100_fwd_nograd", shape, t));
            let x = x0.detach().requires_grad_(true);
            let t = bench(
                || {
                    x.zero_grad();
                    chain(x.clone())
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .backward()
                        .unwrap();
                },
                20,
                0.5,
            );
            rows.push(("chain100_fwd_bwd", shape, t));
            let t = bench(
                || drop(chain(x.clone()).unwrap().sum_all().unwrap()),
                20,
                0.5,
            );
            rows.push(("chain100_fwd_recording", shape, t));
        }
        rows
    };
    let first = measure();
    let peer = run_peer("autograd_py.py", &["torch", &th.to_string()], th);
    let second = measure();
    println!(
        "\n{:<26} {:>8} {:>14} {:>14} {:>8}",
        "workload", "shape", "eingrad µs/op", "torch µs/op", "ratio"
    );
    for ((name, shape, a), (_, _, b)) in first.iter().zip(&second) {
        let ours = a.min(*b) / NOPS as f64 * 1e6;
        let theirs = peer
            .iter()
            .find(|v| {
                v.get("test").and_then(|t| t.as_str()) == Some(*name)
                    && v.get("shape").and_then(|s| s.as_array()).map(|s| {
                        s.iter()
                            .filter_map(|d| d.as_u64())
                            .map(|d| d as usize)
                            .collect::<Vec<_>>()
                    }) == Some(shape.to_vec())
            })
            .and_then(|v| v.get("per_op_us")?.as_f64());
        let (ts, ratio) = match theirs {
            Some(p) => (format!("{p:.3}"), format!("{:.1}x", p / ours)),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{name:<26} {:>8} {ours:>14.3} {ts:>14} {ratio:>8}",
            format!("{shape:?}")
        );
    }
}
