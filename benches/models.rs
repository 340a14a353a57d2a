//! Issue 13's model benchmarks: one training step of each model `eingrad train` builds by
//! default, eingrad vs PyTorch eager side by side (`benches/peers/torch_server.py`, same
//! thread count, alternating rounds; the ratio is torch/eingrad, > 1 means eingrad is faster),
//! reported as milliseconds per step and tokens/s (B·T = 768 tokens per step) of both.
//!
//! One step, on both sides: zero the gradients, forward on a fixed batch (B = 12, T = 64 ids
//! below 76 from a seeded generator), the loss, backward, clip the global gradient norm to 1,
//! AdamW (lr 1e-3, betas 0.9/0.99, eps 1e-8, decoupled decay 0.1 on the parameters of rank ≥ 2
//! and none on the rest: the CLI's `split_decay_by_rank` groups, `peer_common.adamw` in torch).
//!
//! - `gpt_step`: nanoGPT's CPU Shakespeare GPT (4 layers, 4 heads, width 128, no biases, tied
//!   head), as `gpt_step` in `benches/layers.rs`; torch: the server's own nanoGPT copy.
//! - `mlstm_step`: `eingrad train mlstm`'s default model (7 residual mLSTM layers, 4 heads,
//!   width 128, projection factor 2, conv kernel 4, q/k/v blocks of 4, tied head, no bias);
//!   torch: `MlstmLm` of `benches/peers/train_mlstm_torch.py`. Loss: cross-entropy.
//! - `hourglass_step`: `eingrad train hourglass`'s default model (width 128, 4 heads, layers
//!   1/2/1, MLP 512, no bias, learned positions, Gumbel boundaries with prior 0.2 and
//!   temperature 0.5); torch: `HourglassLm` of `benches/peers/train_hourglass_torch.py`. Loss:
//!   cross-entropy + the boundary prior loss. Each side draws fresh Gumbel noise every step (as
//!   in training), so the shortened sequence's length varies from step to step and between
//!   the sides; the mean boundary rate of eingrad's timed steps is printed with the row.
//!
//!     cargo bench --bench models [-- gpt_step|mlstm_step|hourglass_step ...]
//!
//! Threads: `RAYON_NUM_THREADS` (default 2) for eingrad's pool and torch's
//! `set_num_threads`. Rounds: 7, or `EINGRAD_BENCH_ROUNDS`. The torch columns need a Python
//! with torch (`PEER_PYTHON`, else `../ref-venv/bin/python`); without one they stay empty.

mod common;

use common::{interleaved, Compared, PeerServer};
use eingrad::models::gpt::{Gpt, GptConfig};
use eingrad::models::hourglass::{BoundaryMode, HourglassConfig, HourglassLm, HourglassLmConfig};
use eingrad::models::mlstm_lm::{MlstmLm, MlstmLmConfig};
use eingrad::nn::Module;
use eingrad::optim::{
    clip_grad_norm, split_decay_by_rank, Adam, AdamConfig, Optimizer, ParamGroup,
};
use eingrad::{DType, Tensor};

const B: usize = 12;
const T: usize = 64;
const VOCAB: usize = 76;
const ROUNDS: usize = 7;
/// Seconds each side runs per round.
const MIN_TIME: f64 = 0.5;
/// The PyTorch models' parameter counts (`sum(p.numel() for p in model.parameters())`, the
/// tied embedding counted once).
const TORCH_PARAMS: [(&str, usize); 3] = [
    ("gpt_step", 805_504),
    ("mlstm_step", 775_992),
    ("hourglass_step", 882_125),
];

/// `EINGRAD_BENCH_ROUNDS`, else [`ROUNDS`].
fn rounds() -> usize {
    std::env::var("EINGRAD_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(ROUNDS)
}

/// The fixed batch: `B·T` input ids and `B·T` targets below [`VOCAB`], from SplitMix64
/// seeded 0 (torch draws its own from `torch.Generator().manual_seed(0)`).
fn batch() -> (Vec<usize>, Vec<usize>) {
    let mut state = 0u64;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z as u128 * VOCAB as u128) >> 64) as usize
    };
    let x = (0..B * T).map(|_| next()).collect();
    let y = (0..B * T).map(|_| next()).collect();
    (x, y)
}

/// The CLI's optimizer (`train_lm`): AdamW, decay 0.1 on the parameters of rank ≥ 2.
fn adamw(params: &[Tensor]) -> Adam {
    let (decay, no_decay) = split_decay_by_rank(params);
    Adam::with_groups(
        vec![
            ParamGroup::new(decay).weight_decay(0.1),
            ParamGroup::new(no_decay).weight_decay(0.0),
        ],
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.99),
            eps: 1e-8,
            weight_decay: 0.1,
            decoupled_weight_decay: true,
        },
    )
    .unwrap()
}

/// The first `model name` of /proc/cpuinfo.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Checks eingrad's parameter count against the torch model's.
fn check_params(name: &str, m: &dyn Module) -> usize {
    let n = m.num_parameters();
    let want = TORCH_PARAMS.iter().find(|(k, _)| *k == name).unwrap().1;
    assert_eq!(
        n, want,
        "{name}: eingrad's model has {n} parameters, the torch peer's {want}"
    );
    n
}

fn case(kind: &str) -> Option<serde_json::Value> {
    Some(serde_json::json!({"kind": kind, "vocab": VOCAB, "block": T, "batch": B}))
}

struct Row {
    name: &'static str,
    params: usize,
    c: Compared,
    note: String,
}

fn main() {
    let Some(threads) = common::start() else {
        return;
    };
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    let rounds = rounds();
    let mut peer = PeerServer::start(threads);
    let (ids, targets) = batch();
    let mut rows = Vec::new();

    if run("gpt_step") {
        let gpt = Gpt::new(GptConfig::shakespeare_char(VOCAB), DType::F32, 0).unwrap();
        let params = gpt.parameters();
        let mut opt = adamw(&params);
        let c = interleaved(
            &mut peer,
            Some(
                serde_json::json!({"kind": "gpt_step", "vocab": VOCAB, "n_layer": 4,
                "n_head": 4, "n_embd": 128, "block": T, "batch": B}),
            ),
            rounds,
            MIN_TIME,
            || {
                opt.zero_grad();
                let loss = gpt.loss(&ids, &targets, B, T).unwrap();
                loss.backward().unwrap();
                clip_grad_norm(&params, 1.0).unwrap();
                opt.step().unwrap();
            },
        );
        let params = check_params("gpt_step", &gpt);
        rows.push(Row {
            name: "gpt_step",
            params,
            c,
            note: String::new(),
        });
    }

    if run("mlstm_step") {
        // cli/src/train/model.rs `ModelSpec::build` with `MlstmSpec::default()` and the
        // defaults of `new_spec`: 7 layers, 4 heads, width 128, no bias.
        let mut cfg = MlstmLmConfig::new(VOCAB, 128, 4, 7);
        cfg.layer.proj_factor = 2.0;
        cfg.layer.round_proj_up_to_multiple_of = 64;
        cfg.layer.conv_kernel = 4;
        cfg.layer.qkv_proj_blocksize = 4;
        cfg.tie_weights = true;
        cfg.bias = false;
        let lm = MlstmLm::new(&cfg, DType::F32, 0).unwrap();
        let params = lm.parameters();
        let mut opt = adamw(&params);
        let c = interleaved(&mut peer, case("mlstm_step"), rounds, MIN_TIME, || {
            opt.zero_grad();
            let loss = lm.loss(&ids, &targets, B, T).unwrap();
            loss.backward().unwrap();
            clip_grad_norm(&params, 1.0).unwrap();
            opt.step().unwrap();
        });
        let params = check_params("mlstm_step", &lm);
        rows.push(Row {
            name: "mlstm_step",
            params,
            c,
            note: String::new(),
        });
    }

    if run("hourglass_step") {
        // cli/src/train/model.rs `ModelSpec::build` with the defaults of `new_spec`: layers
        // 1/2/1, Gumbel boundaries (prior 0.2, temperature 0.5), no bias, learned positions.
        let mut stack = HourglassConfig::new(128, 4, BoundaryMode::Gumbel);
        stack.pre_layers = 1;
        stack.shortened_layers = 2;
        stack.post_layers = 1;
        stack.prior = 0.2;
        stack.temperature = 0.5;
        stack.bias = false;
        let mut cfg = HourglassLmConfig::new(VOCAB, stack);
        cfg.block_size = Some(T);
        let lm = HourglassLm::new(&cfg, DType::F32, 0).unwrap();
        let params = lm.parameters();
        let mut opt = adamw(&params);
        let x = Tensor::from_vec(ids.iter().map(|&i| i as f32).collect(), &[B, T]).unwrap();
        // The boundaries of the steps, summed (read after the step: one small copy).
        let (mut boundaries, mut steps) = (0.0f64, 0usize);
        let c = interleaved(&mut peer, case("hourglass_step"), rounds, MIN_TIME, || {
            opt.zero_grad();
            let l = lm.loss(&x, &targets).unwrap();
            l.loss.backward().unwrap();
            clip_grad_norm(&params, 1.0).unwrap();
            opt.step().unwrap();
            boundaries += l.boundaries.sum_all().unwrap().item().unwrap();
            steps += 1;
        });
        let params = check_params("hourglass_step", &lm);
        let rate = boundaries / (steps * B * T) as f64;
        rows.push(Row {
            name: "hourglass_step",
            params,
            c,
            note: format!("eingrad's boundary rate {rate:.3} over {steps} steps"),
        });
    }

    println!(
        "models: one training step, B={B} T={T} vocab {VOCAB}, f32, AdamW + clip 1.0; \
         {threads} thread(s) each, {rounds} rounds; {}",
        cpu_model()
    );
    println!(
        "{:<16} {:>10} {:>12} {:>12} {:>8} {:>14} {:>14}",
        "workload", "params", "eingrad", "torch", "ratio", "eingrad tok/s", "torch tok/s"
    );
    let tokens = (B * T) as f64;
    for r in rows {
        let c = r.c;
        let ps = c
            .peer_s
            .map_or("-".into(), |p| format!("{:.3} ms", p * 1e3));
        let rs = c.ratio.map_or("-".into(), |x| format!("{x:.2}x"));
        let pt = c
            .peer_s
            .map_or("-".into(), |p| format!("{:.0}", tokens / p));
        println!(
            "{:<16} {:>10} {:>9.3} ms {ps:>12} {rs:>8} {:>14.0} {pt:>14}",
            r.name,
            r.params,
            c.ours_s * 1e3,
            tokens / c.ours_s
        );
        if !r.note.is_empty() {
            println!("{:<16} {}", "", r.note);
        }
    }
}
