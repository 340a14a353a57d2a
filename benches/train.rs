//! Training workloads of `../shared/bench/WORKLOADS.md`, eingrad vs PyTorch side by side.
//!
//! `cargo bench --bench train` prints, per workload, eingrad's median time, torch's median
//! time (the same workload in `benches/peers/torch_server.py`, same thread count) and the
//! ratio torch/eingrad (> 1 means eingrad is faster). The sides are timed in alternating
//! rounds and the ratio is the median of the per-round ratios. It then times the sections of
//! one `mlp_step` (forward, loss, backward, optimizer step) to show where the time goes.
//!
//! Workloads (batch 128, ReLU, cross-entropy; torch builds the same `nn.Sequential`):
//! - `mlp_step`: MLP 784-256-256-10 with Adam (lr 1e-3): zero_grad + forward + backward + step.
//! - `mlp_fwd_bwd`: the same without the step.
//! - `mlp_forward`: forward under no-grad.
//! - `adam_step`: the Adam update alone on the 784-256-256-10 parameters (no torch row).
//! - `mlp_784_256_10_fwd_bwd`: the autograd issue's 2-layer MLP 784-256-10, forward and
//!   backward.
//! - `mlp_784_256_10_backward`: the same, backward only, replayed on a retained graph
//!   (torch: `loss.backward(retain_graph=True)`).

mod common;

use std::time::Instant;

use common::{bench, interleaved, PeerServer};
use eingrad::autograd::{no_grad, GradOptions};
use eingrad::nn::{cross_entropy, Activation, Mlp, Module, Reduction};
use eingrad::optim::{Adam, AdamConfig, Optimizer};
use eingrad::{DType, Tensor};

const BATCH: usize = 128;

fn targets() -> Vec<usize> {
    (0..BATCH).map(|i| (i * 7 + 3) % 10).collect()
}

struct Setup {
    x: Tensor,
    y: Vec<usize>,
    mlp: Mlp,
    opt: Adam,
}

impl Setup {
    fn new(sizes: &[usize]) -> Setup {
        let mlp = Mlp::new(sizes, Activation::Relu, DType::F32, 0).expect("mlp");
        let opt = Adam::new(
            mlp.parameters(),
            AdamConfig {
                lr: 1e-3,
                ..Default::default()
            },
        )
        .expect("adam");
        Setup {
            x: Tensor::randn(&[BATCH, sizes[0]], DType::F32, 1).unwrap(),
            y: targets(),
            mlp,
            opt,
        }
    }
    fn loss(&self) -> Tensor {
        cross_entropy(
            &self.mlp.forward(&self.x).unwrap(),
            &self.y,
            Reduction::Mean,
        )
        .unwrap()
    }
    fn step(&mut self) -> f64 {
        self.opt.zero_grad();
        let loss = self.loss();
        loss.backward().unwrap();
        self.opt.step().unwrap();
        loss.item().unwrap()
    }
}

/// Alternating rounds per workload.
const ROUNDS: usize = 5;

/// eingrad vs torch on every workload, in alternating rounds: (name, comparison).
fn compare_all(peer: &mut Option<PeerServer>) -> Vec<(&'static str, common::Compared)> {
    let mlp = |sizes: &[usize], mode: &str| {
        Some(serde_json::json!({"kind": "mlp", "sizes": sizes, "batch": BATCH, "mode": mode}))
    };
    let big = [784usize, 256, 256, 10];
    let small = [784usize, 256, 10];
    let mut rows = Vec::new();
    let mut s = Setup::new(&big);
    rows.push((
        "mlp_step",
        interleaved(peer, mlp(&big, "step"), ROUNDS, 0.5, || {
            std::hint::black_box(s.step());
        }),
    ));
    let s2 = Setup::new(&big);
    rows.push((
        "mlp_fwd_bwd",
        interleaved(peer, mlp(&big, "fwd_bwd"), ROUNDS, 0.3, || {
            s2.mlp.zero_grad();
            s2.loss().backward().unwrap();
        }),
    ));
    rows.push((
        "mlp_forward",
        interleaved(peer, mlp(&big, "forward"), ROUNDS, 0.3, || {
            drop(std::hint::black_box(no_grad(|| {
                s2.mlp.forward(&s2.x).unwrap()
            })))
        }),
    ));
    // Adam alone: gradients stay in place, so each call is one full update.
    let mut s3 = Setup::new(&big);
    s3.loss().backward().unwrap();
    rows.push((
        "adam_step",
        interleaved(peer, None, 1, 0.5, || s3.opt.step().unwrap()),
    ));
    // The 2-layer MLP: forward + backward, then backward only on a retained graph.
    let s4 = Setup::new(&small);
    rows.push((
        "mlp_784_256_10_fwd_bwd",
        interleaved(peer, mlp(&small, "fwd_bwd"), ROUNDS, 0.3, || {
            s4.mlp.zero_grad();
            s4.loss().backward().unwrap();
        }),
    ));
    let loss = s4.loss();
    let one = Tensor::ones(&[], DType::F32).unwrap();
    let keep = GradOptions::default().retain_graph(true);
    rows.push((
        "mlp_784_256_10_backward",
        interleaved(peer, mlp(&small, "backward"), ROUNDS, 0.3, || {
            s4.mlp.zero_grad();
            loss.backward_with(&one, keep).unwrap();
        }),
    ));
    rows
}

/// Median time of each section of `mlp_step` over `reps` steps.
fn sections(reps: usize) -> Vec<(&'static str, f64)> {
    let mut s = Setup::new(&[784, 256, 256, 10]);
    let names = [
        "zero_grad",
        "forward",
        "loss",
        "backward",
        "adam step",
        "total",
    ];
    let mut t: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for _ in 0..reps {
        let t0 = Instant::now();
        s.opt.zero_grad();
        let t1 = Instant::now();
        let logits = s.mlp.forward(&s.x).unwrap();
        let t2 = Instant::now();
        let loss = cross_entropy(&logits, &s.y, Reduction::Mean).unwrap();
        let t3 = Instant::now();
        loss.backward().unwrap();
        let t4 = Instant::now();
        s.opt.step().unwrap();
        let t5 = Instant::now();
        drop((logits, loss));
        for (k, (a, b)) in [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t0, t5)]
            .iter()
            .enumerate()
        {
            t[k].push((*b - *a).as_secs_f64());
        }
    }
    names
        .iter()
        .zip(t)
        .map(|(n, mut v)| {
            v.sort_by(|a, b| a.total_cmp(b));
            (*n, v[v.len() / 2])
        })
        .collect()
}

/// The individual ops of one `mlp_step`, timed alone (medians), for profiling.
fn ops() {
    let f32s = |s: &[usize], seed| Tensor::randn(s, DType::F32, seed).unwrap();
    let x = f32s(&[BATCH, 784], 0);
    let w1 = f32s(&[256, 784], 1);
    let h = f32s(&[BATCH, 256], 2);
    let b = f32s(&[256], 3);
    let w2 = f32s(&[256, 256], 6);
    let g = f32s(&[BATCH, 256], 4);
    let logits = f32s(&[BATCH, 10], 5);
    let y = targets();
    let mut rows: Vec<(&str, f64)> = Vec::new();
    let mut t = |name, f: &mut dyn FnMut()| rows.push((name, bench(f, 20, 0.3)));
    t("fwd gemm x(128,784)·W1ᵀ", &mut || {
        std::hint::black_box(eingrad::einsum("...i,oi->...o", &[&x, &w1]).unwrap());
    });
    t("fwd gemm 'ij,kj->ik' same", &mut || {
        std::hint::black_box(eingrad::einsum("ij,kj->ik", &[&x, &w1]).unwrap());
    });
    t("bwd gemm dW1 = gᵀ·x", &mut || {
        std::hint::black_box(eingrad::einsum("no,ni->oi", &[&g, &x]).unwrap());
    });
    t("bwd gemm dh = g·W2 (256x256)", &mut || {
        std::hint::black_box(eingrad::einsum("no,oi->ni", &[&g, &w2]).unwrap());
    });
    t("bias add (128,256)+(256)", &mut || {
        std::hint::black_box(h.add(&b).unwrap());
    });
    t("relu (128,256)", &mut || {
        std::hint::black_box(h.relu().unwrap());
    });
    t("relu bwd: g·(h>0)", &mut || {
        std::hint::black_box(g.mul(&h.gt_scalar(0.0).unwrap()).unwrap());
    });
    t("bias grad sum_to (128,256)->(256)", &mut || {
        std::hint::black_box(g.sum_to(&[256]).unwrap());
    });
    t("cross_entropy fwd (128,10)", &mut || {
        std::hint::black_box(cross_entropy(&logits, &y, Reduction::Mean).unwrap());
    });
    let lg = logits.detach().requires_grad_(true);
    t("cross_entropy fwd+bwd (128,10)", &mut || {
        lg.zero_grad();
        cross_entropy(&lg, &y, Reduction::Mean)
            .unwrap()
            .backward()
            .unwrap();
    });
    t("einsum plan only (EinsumExpr::new)", &mut || {
        std::hint::black_box(
            eingrad::einsum::EinsumExpr::new(
                "...i,oi->...o",
                &[&[BATCH, 784], &[256, 784]],
                &[],
                eingrad::einsum::PlanStrategy::Auto,
            )
            .unwrap(),
        );
    });
    let mut s3 = Setup::new(&[784, 256, 256, 10]);
    s3.loss().backward().unwrap();
    t("adam step, 784-256-256-10 params", &mut || {
        s3.opt.step().unwrap()
    });
    for (n, t) in rows {
        println!("  {n:<40} {:>9.1} µs", t * 1e6);
    }
}

fn main() {
    let Some(th) = common::start() else {
        return;
    };
    if std::env::args().any(|a| a == "--ops") {
        ops();
        return;
    }
    if std::env::args().any(|a| a == "--profile") {
        // A long steady loop for `perf record`.
        let mut s = Setup::new(&[784, 256, 256, 10]);
        let t0 = Instant::now();
        while t0.elapsed().as_secs_f64() < 10.0 {
            s.step();
        }
        return;
    }
    let mut peer = PeerServer::start(th);
    println!(
        "{:<26} {:>12} {:>12} {:>8}",
        "workload", "eingrad", "torch", "ratio"
    );
    for (name, c) in compare_all(&mut peer) {
        let ps = c
            .peer_s
            .map_or("-".into(), |p| format!("{:.3} ms", p * 1e3));
        let rs = c.ratio.map_or("-".into(), |r| format!("{r:.2}x"));
        println!("{name:<26} {:>9.3} ms {ps:>12} {rs:>8}", c.ours_s * 1e3);
    }
    println!("\nmlp_step sections (median of 200 steps):");
    for (n, t) in sections(200) {
        println!("  {n:<10} {:>8.3} ms", t * 1e3);
    }
    println!("threads: {th}");
}
