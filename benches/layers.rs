//! The layers issue's benchmarks, eingrad vs PyTorch side by side (`benches/peers/
//! torch_server.py`, same thread count, alternating rounds; the ratio is torch/eingrad, > 1
//! means eingrad is faster): forward + backward of `sum(y)` into the input and every
//! parameter at nanoGPT's CPU size (B = 12, T = 64, C = 128, 4 heads), f32.
//!
//! - `attention`: the causal self-attention layer; torch runs nanoGPT's code, which calls
//!   `F.scaled_dot_product_attention(is_causal=True)` (a fused kernel).
//! - `attention_eager`: the same layer against nanoGPT's explicit masked-softmax path.
//! - `block`: the pre-LN transformer block (LayerNorm, attention, GELU MLP 4×).
//! - `layer_norm`: LayerNorm(128) alone.
//! - `gpt_step`: one training step of nanoGPT's CPU Shakespeare model (4 layers, 4 heads,
//!   width 128, context 64, batch 12, vocabulary 76, no biases, tied head): forward,
//!   cross-entropy, backward, clip to norm 1, AdamW with decay on the 2-d weights.
//!
//! Then the sections of one block forward + backward, to show where the time goes.

mod common;

use std::time::Instant;

use common::{interleaved, PeerServer};
use eingrad::models::gpt::{Gpt, GptConfig};
use eingrad::nn::{Block, BlockConfig, CausalSelfAttention, LayerNorm, Module};
use eingrad::optim::{
    clip_grad_norm, split_decay_by_rank, Adam, AdamConfig, Optimizer, ParamGroup,
};
use eingrad::{DType, Tensor};

const B: usize = 12;
const T: usize = 64;
const C: usize = 128;
const H: usize = 4;
const ROUNDS: usize = 7;

fn case(layer: &str) -> Option<serde_json::Value> {
    Some(serde_json::json!({"kind": "layer", "layer": layer, "B": B, "T": T, "C": C, "H": H}))
}

fn fwd_bwd(m: &dyn Module, x: &Tensor) {
    x.zero_grad();
    m.zero_grad();
    m.forward(x).unwrap().sum_all().unwrap().backward().unwrap();
}

fn main() {
    let Some(threads) = common::start() else {
        return;
    };
    if std::env::args().any(|a| a == "--profile") {
        // A long steady loop of gpt_step for `perf record`.
        profile_gpt();
        return;
    }
    if std::env::args().any(|a| a == "--profile-layer-norm") {
        let x = Tensor::randn(&[B, T, C], DType::F32, 1)
            .unwrap()
            .requires_grad_(true);
        let ln = LayerNorm::new(&[C], 1e-5, true, DType::F32).unwrap();
        let t0 = Instant::now();
        let mut n = 0;
        while t0.elapsed().as_secs_f64() < 5.0 {
            fwd_bwd(&ln, &x);
            n += 1;
        }
        println!(
            "{:.1} µs per fwd+bwd",
            t0.elapsed().as_secs_f64() * 1e6 / n as f64
        );
        return;
    }
    let mut peer = PeerServer::start(threads);
    let x = Tensor::randn(&[B, T, C], DType::F32, 1)
        .unwrap()
        .requires_grad_(true);
    let attn = CausalSelfAttention::new(C, H, true, 0.0, DType::F32, 0).unwrap();
    let block = Block::new(&BlockConfig::new(C, H), DType::F32, 0).unwrap();
    let ln = LayerNorm::new(&[C], 1e-5, true, DType::F32).unwrap();
    let gpt = Gpt::new(GptConfig::shakespeare_char(76), DType::F32, 0).unwrap();
    let (decay, no_decay) = split_decay_by_rank(&gpt.parameters());
    let mut opt = Adam::with_groups(
        vec![
            ParamGroup::new(decay).weight_decay(0.1),
            ParamGroup::new(no_decay).weight_decay(0.0),
        ],
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.99),
            decoupled_weight_decay: true,
            ..Default::default()
        },
    )
    .unwrap();
    let ids: Vec<usize> = (0..B * T).map(|i| (i * 31 + 7) % 76).collect();
    let targets: Vec<usize> = (0..B * T).map(|i| (i * 17 + 3) % 76).collect();
    let mut gpt_step = || {
        opt.zero_grad();
        let loss = gpt.loss(&ids, &targets, B, T).unwrap();
        loss.backward().unwrap();
        clip_grad_norm(&gpt.parameters(), 1.0).unwrap();
        opt.step().unwrap();
    };
    let gpt_case = Some(
        serde_json::json!({"kind": "gpt_step", "vocab": 76, "n_layer": 4,
        "n_head": 4, "n_embd": 128, "block": T, "batch": B}),
    );
    let rows = vec![
        (
            "gpt_step",
            interleaved(&mut peer, gpt_case, ROUNDS, 0.5, &mut gpt_step),
        ),
        (
            "attention",
            interleaved(&mut peer, case("attention"), ROUNDS, 0.3, || {
                fwd_bwd(&attn, &x)
            }),
        ),
        (
            "attention_eager",
            interleaved(&mut peer, case("attention_eager"), ROUNDS, 0.3, || {
                fwd_bwd(&attn, &x)
            }),
        ),
        (
            "block",
            interleaved(&mut peer, case("block"), ROUNDS, 0.3, || {
                fwd_bwd(&block, &x)
            }),
        ),
        (
            "layer_norm",
            interleaved(&mut peer, case("layer_norm"), ROUNDS, 0.3, || {
                fwd_bwd(&ln, &x)
            }),
        ),
    ];
    println!("layers, B={B} T={T} C={C} heads={H}, f32, {threads} thread(s): forward + backward");
    println!(
        "{:<18} {:>12} {:>12} {:>8}",
        "workload", "eingrad", "torch", "ratio"
    );
    for (name, c) in rows {
        let ps = c
            .peer_s
            .map_or("-".into(), |p| format!("{:.3} ms", p * 1e3));
        let rs = c.ratio.map_or("-".into(), |r| format!("{r:.2}x"));
        println!("{name:<18} {:>9.3} ms {ps:>12} {rs:>8}", c.ours_s * 1e3);
        if name == "gpt_step" {
            println!("{:<18} {:>9.0} tokens/s", "", (B * T) as f64 / c.ours_s);
        }
    }

    let reps = 50;
    let mut t = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..reps {
        x.zero_grad();
        block.zero_grad();
        let t0 = Instant::now();
        let y = block.forward(&x).unwrap();
        let t1 = Instant::now();
        y.sum_all().unwrap().backward().unwrap();
        let t2 = Instant::now();
        t[0].push((t1 - t0).as_secs_f64());
        t[1].push((t2 - t1).as_secs_f64());
        t[2].push((t2 - t0).as_secs_f64());
    }
    for (name, v) in ["block forward", "block backward", "block total"]
        .iter()
        .zip(t)
    {
        println!("  {name:<16} {:>9.1} µs", common::median(v) * 1e6);
    }
}

fn profile_gpt() {
    let gpt = Gpt::new(GptConfig::shakespeare_char(76), DType::F32, 0).unwrap();
    let mut opt = Adam::adamw(gpt.parameters(), AdamConfig::default()).unwrap();
    let ids: Vec<usize> = (0..B * T).map(|i| (i * 31 + 7) % 76).collect();
    let t0 = Instant::now();
    let mut n = 0;
    while t0.elapsed().as_secs_f64() < 10.0 {
        opt.zero_grad();
        gpt.loss(&ids, &ids, B, T).unwrap().backward().unwrap();
        opt.step().unwrap();
        n += 1;
    }
    println!(
        "{:.1} ms per step",
        t0.elapsed().as_secs_f64() * 1e3 / n as f64
    );
}
