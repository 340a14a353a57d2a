//! The hourglass stack and language model (SEEDS.md §2, issue #12): orders 1 and 2 in f64
//! over the input and every parameter, forward mode against reverse mode, causality by
//! Jacobian for every boundary mode, the prefix (no-leak) test at the LM level, the Gumbel
//! mode (seeded, straight-through, prior loss), state dicts and bad inputs.

mod support;

use eingrad::autograd::NoGradGuard;
use eingrad::func::{gradcheck, gradgradcheck, jacobian, GradcheckOptions, JacobianMode};
use eingrad::models::hourglass::{
    BoundaryInput, BoundaryMode, HourglassConfig, HourglassLm, HourglassLmConfig, HourglassParts,
    HourglassStack,
};
use eingrad::nn::{Activation, Block, CausalSelfAttention, FeedForward, LayerNorm, Linear, Module};
use eingrad::{DType, Result, Tensor};

type StackFn<'a> = dyn Fn(&[Tensor]) -> Result<Vec<Tensor>> + 'a;

fn rn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, DType::F64, seed).unwrap()
}

fn tiny(boundaries: BoundaryMode) -> HourglassConfig {
    HourglassConfig {
        d_inner: 8,
        pre_layers: 1,
        shortened_layers: 1,
        post_layers: 1,
        ..HourglassConfig::new(4, 2, boundaries)
    }
}

fn err_of<T: std::fmt::Debug>(r: Result<T>) -> String {
    r.unwrap_err().to_string()
}

// ---------------------------------------------------------------------------------------------
// The stack rebuilt from tensors (in `named_parameters` order), so the checks differentiate
// with respect to every parameter.

/// A block from its 12 tensors in `Block::named_parameters` order.
fn block_from(t: &[Tensor], n_head: usize, activation: Activation) -> Result<Block> {
    let lin = |w: &Tensor, b: &Tensor| Linear::from_tensors(w.clone(), Some(b.clone()));
    Block::from_parts(
        LayerNorm::from_tensors(t[0].clone(), Some(t[1].clone()), 1e-5)?,
        CausalSelfAttention::from_layers(lin(&t[2], &t[3])?, lin(&t[4], &t[5])?, n_head, 0.0, 0)?,
        LayerNorm::from_tensors(t[6].clone(), Some(t[7].clone()), 1e-5)?,
        FeedForward::from_layers(lin(&t[8], &t[9])?, lin(&t[10], &t[11])?, activation, 0.0, 0)?,
    )
}

/// A 1+1+1 stack (no predictor) from `[pre (12), null_group, down_ln (2), shortened (12),
/// post (12)]`.
fn stack_from(cfg: &HourglassConfig, p: &[Tensor]) -> Result<HourglassStack> {
    assert_eq!(p.len(), 39);
    let (h, a) = (cfg.n_head, cfg.activation);
    let parts = HourglassParts {
        pre_layers: vec![block_from(&p[0..12], h, a)?],
        null_group: p[12].clone(),
        down_ln: LayerNorm::from_tensors(p[13].clone(), Some(p[14].clone()), 1e-5)?,
        shortened_layers: vec![block_from(&p[15..27], h, a)?],
        post_layers: vec![block_from(&p[27..39], h, a)?],
        boundary_predictor: None,
    };
    HourglassStack::from_parts(cfg, parts, 0)
}

/// The input and the parameters of a freshly built stack, moved off their special starting
/// values (LayerNorm ones and zeros) by a little noise.
fn gradcheck_point(cfg: &HourglassConfig) -> (HourglassStack, Vec<Tensor>) {
    let stack = HourglassStack::new(cfg, DType::F64, 11).unwrap();
    let mut inputs = vec![rn(&[2, 6, 4], 12)];
    for (k, p) in stack.parameters().iter().enumerate() {
        let noise = rn(p.dims(), 100 + k as u64).mul_scalar(0.2).unwrap();
        inputs.push(p.detach().add(&noise).unwrap());
    }
    (stack, inputs)
}

#[test]
fn the_stack_rebuilt_from_tensors_is_the_stack() {
    let cfg = tiny(BoundaryMode::FixedEvery(2));
    let stack = HourglassStack::new(&cfg, DType::F64, 3).unwrap();
    let params: Vec<Tensor> = stack.parameters();
    let rebuilt = stack_from(&cfg, &params).unwrap();
    let x = rn(&[2, 6, 4], 4);
    assert_eq!(
        stack.forward(&x).unwrap().to_vec_f64(),
        rebuilt.forward(&x).unwrap().to_vec_f64()
    );
}

#[test]
fn gradcheck_and_gradgradcheck_over_input_and_parameters_in_f64() {
    for activation in [Activation::Gelu, Activation::GeluTanh] {
        let cfg = HourglassConfig {
            activation,
            ..tiny(BoundaryMode::FixedEvery(2))
        };
        let (_, inputs) = gradcheck_point(&cfg);
        let f = |t: &[Tensor]| -> Result<Vec<Tensor>> {
            Ok(vec![stack_from(&cfg, &t[1..])?.forward(&t[0])?])
        };
        let n: usize = inputs.iter().map(|t| t.numel()).sum();
        // Order 1: the full Jacobian, entry by entry (576 input elements × 48 outputs).
        let opts = GradcheckOptions {
            atol: 1e-6,
            rtol: 1e-4,
            max_full_elements: n,
            ..Default::default()
        };
        let r = gradcheck(&f, &inputs, opts).unwrap();
        assert!(r.passed, "{activation:?}: gradcheck {r:?}");
        // Order 2: along random directions.
        let opts = GradcheckOptions {
            max_full_elements: 0,
            directions: 24,
            ..opts
        };
        let r = gradgradcheck(&f, &inputs, opts).unwrap();
        assert!(r.passed, "{activation:?}: gradgradcheck {r:?}");
    }
}

#[test]
fn gradcheck_and_gradgradcheck_over_the_input_with_whitespace_boundaries() {
    let stack = HourglassStack::new(&tiny(BoundaryMode::Whitespace), DType::F64, 5).unwrap();
    let mask = Tensor::from_f64s(
        &[1., 0., 0., 1., 1., 0., 0., 0., 1., 0., 0., 0.],
        &[2, 6],
        DType::F64,
    )
    .unwrap();
    let f = |t: &[Tensor]| -> Result<Vec<Tensor>> {
        Ok(vec![
            stack
                .forward_with(&t[0], BoundaryInput::Whitespace(&mask))?
                .hidden,
        ])
    };
    let opts = GradcheckOptions {
        atol: 1e-6,
        rtol: 1e-4,
        ..Default::default()
    };
    let x = [rn(&[2, 6, 4], 6)];
    assert!(gradcheck(&f, &x, opts).unwrap().passed);
    assert!(gradgradcheck(&f, &x, opts).unwrap().passed);
}

#[test]
fn jvp_agrees_with_vjp_without_fallbacks() {
    let cfg = tiny(BoundaryMode::FixedEvery(3));
    let (stack, inputs) = gradcheck_point(&cfg);
    // With respect to the input alone, on the stack itself …
    let on_input = |t: &[Tensor]| -> Result<Vec<Tensor>> { Ok(vec![stack.forward(&t[0])?]) };
    // … and with respect to the input and every parameter, rebuilt from tensors.
    let on_all = |t: &[Tensor]| -> Result<Vec<Tensor>> {
        Ok(vec![stack_from(&cfg, &t[1..])?.forward(&t[0])?])
    };
    let cases: [(&str, &StackFn, &[Tensor]); 2] = [
        ("input", &on_input, &inputs[..1]),
        ("input and parameters", &on_all, &inputs[..]),
    ];
    for (name, f, primals) in cases {
        let tangents: Vec<Tensor> = primals
            .iter()
            .enumerate()
            .map(|(i, p)| rn(p.dims(), 500 + i as u64))
            .collect();
        support::assert_jvp_agrees_with_vjp(name, f, primals, &tangents);
    }
}

// ---------------------------------------------------------------------------------------------
// Causality

/// ∂out[b, i, :] / ∂x[b', j, :] must be exactly zero for j > i and for b ≠ b'; some entry
/// with j < i must be nonzero (the test is not vacuous).
fn assert_causal(name: &str, f: &StackFn, x: &Tensor) {
    let jac = jacobian(f, &[x.clone()], JacobianMode::Reverse).unwrap();
    let j = &jac[0][0];
    let d = x.dims().to_vec();
    let (b, t, c) = (d[0], d[1], d[2]);
    assert_eq!(j.dims(), &[b, t, c, b, t, c]);
    let v = j.to_vec_f64();
    let idx = |b1: usize, i: usize, c1: usize, b2: usize, jj: usize, c2: usize| {
        ((((b1 * t + i) * c + c1) * b + b2) * t + jj) * c + c2
    };
    let mut nonzero_past = 0;
    for b1 in 0..b {
        for b2 in 0..b {
            for i in 0..t {
                for jj in 0..t {
                    for c1 in 0..c {
                        for c2 in 0..c {
                            let e = v[idx(b1, i, c1, b2, jj, c2)];
                            if jj > i || b1 != b2 {
                                assert_eq!(
                                    e, 0.0,
                                    "{name}: out[{b1},{i},{c1}] depends on x[{b2},{jj},{c2}]"
                                );
                            } else if jj < i && e != 0.0 {
                                nonzero_past += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(nonzero_past > 0, "{name}: no output depends on the past");
}

#[test]
fn the_stack_is_causal_for_every_boundary_mode() {
    let x = rn(&[2, 8, 4], 21);
    for k in [1, 2, 3] {
        let stack =
            HourglassStack::new(&tiny(BoundaryMode::FixedEvery(k)), DType::F64, 22).unwrap();
        assert_causal(
            &format!("fixed every {k}"),
            &|t: &[Tensor]| Ok(vec![stack.forward(&t[0])?]),
            &x,
        );
    }
    let stack = HourglassStack::new(&tiny(BoundaryMode::Whitespace), DType::F64, 23).unwrap();
    // Row 0: a whitespace first token and two in a row; row 1: none at all (only the null
    // group is read).
    for mask in [
        vec![
            1., 0., 0., 1., 1., 0., 1., 0., 0., 0., 1., 0., 0., 0., 0., 1.,
        ],
        vec![0.; 16],
    ] {
        let mask = Tensor::from_f64s(&mask, &[2, 8], DType::F64).unwrap();
        assert_causal(
            "whitespace",
            &|t: &[Tensor]| {
                Ok(vec![
                    stack
                        .forward_with(&t[0], BoundaryInput::Whitespace(&mask))?
                        .hidden,
                ])
            },
            &x,
        );
    }
    // Gumbel: the boundaries depend on x (straight-through), and still no future token
    // reaches the past.
    let stack = HourglassStack::new(&tiny(BoundaryMode::Gumbel), DType::F64, 24).unwrap();
    for seed in [1, 2, 3] {
        let f = |t: &[Tensor]| -> Result<Vec<Tensor>> {
            Ok(vec![
                stack
                    .forward_with(&t[0], BoundaryInput::GumbelSeed(seed))?
                    .hidden,
            ])
        };
        let hard = stack
            .forward_with(&x, BoundaryInput::GumbelSeed(seed))
            .unwrap()
            .boundaries
            .to_vec_f64();
        assert!(hard.contains(&1.0), "seed {seed}: no boundary at all");
        assert_causal(&format!("gumbel, seed {seed}"), &f, &x);
    }
}

/// The whole shortened path is exercised: with the pre- and post-layers removed, token i
/// depends on an earlier token j only through the shortened sequence, and only once the
/// segment holding j has ended at or before i.
#[test]
fn the_shortened_path_reads_only_finished_segments() {
    let cfg = HourglassConfig {
        pre_layers: 0,
        post_layers: 0,
        ..tiny(BoundaryMode::FixedEvery(3))
    };
    let stack = HourglassStack::new(&cfg, DType::F64, 31).unwrap();
    let x = rn(&[1, 8, 4], 32);
    let jac = jacobian(
        &|t: &[Tensor]| Ok(vec![stack.forward(&t[0])?]),
        &[x],
        JacobianMode::Reverse,
    )
    .unwrap();
    let v = jac[0][0].to_vec_f64();
    let block_norm = |i: usize, j: usize| -> f64 {
        let mut s = 0.0;
        for c1 in 0..4 {
            for c2 in 0..4 {
                s += v[((i * 4 + c1) * 8 + j) * 4 + c2].abs();
            }
        }
        s
    };
    // Boundaries at 2 and 5: segments {0,1,2}, {3,4,5}, then {6,7} unfinished.
    let finished = |j: usize| -> usize { (j / 3) * 3 + 2 };
    for i in 0..8 {
        for j in 0..8 {
            let n = block_norm(i, j);
            if j == i {
                continue; // the residual
            }
            if finished(j) <= i {
                assert!(
                    n > 0.0,
                    "out[{i}] should see x[{j}] (segment ended at {})",
                    finished(j)
                );
            } else {
                assert_eq!(n, 0.0, "out[{i}] sees x[{j}] before its segment ended");
            }
        }
    }
}

fn lm(mode: BoundaryMode, whitespace_ids: Vec<usize>) -> HourglassLm {
    let stack = HourglassConfig {
        d_inner: 16,
        pre_layers: 2,
        shortened_layers: 2,
        post_layers: 1,
        ..HourglassConfig::new(8, 2, mode)
    };
    let cfg = HourglassLmConfig {
        block_size: Some(32),
        whitespace_ids,
        ..HourglassLmConfig::new(11, stack)
    };
    HourglassLm::new(&cfg, DType::F64, 40).unwrap()
}

fn ids_tensor(ids: &[usize]) -> Tensor {
    let v: Vec<f64> = ids.iter().map(|&i| i as f64).collect();
    Tensor::from_f64s(&v, &[1, ids.len()], DType::F64).unwrap()
}

fn assert_prefixes_agree(
    name: &str,
    model: &HourglassLm,
    input: impl Fn(usize) -> BoundaryInput<'static>,
) {
    let (vocab, l) = (11, 32);
    let tokens: Vec<usize> = (0..l).map(|t| (t * 7 + 3) % vocab).collect();
    let _g = NoGradGuard::new();
    let logits = |ids: &[usize]| {
        let out = model
            .forward_with(&ids_tensor(ids), input(ids.len()))
            .unwrap();
        (out.logits.to_vec_f64(), out.boundaries.to_vec_f64())
    };
    let (full, fb) = logits(&tokens);
    assert_eq!(full.len(), l * vocab);
    let mut worst: f64 = 0.0;
    for p in 1..=l {
        let (pre, pb) = logits(&tokens[..p]);
        assert_eq!(pb, fb[..p], "{name}: prefix {p} has other boundaries");
        for (k, (a, b)) in pre.iter().zip(&full[..p * vocab]).enumerate() {
            worst = worst.max((a - b).abs());
            assert!(
                (a - b).abs() <= 1e-6,
                "{name}: prefix of length {p}, logit {k}: {a} vs {b}"
            );
        }
    }
    eprintln!("{name}: largest prefix/full logit difference {worst:e}");
    // Not vacuous: a token changes logits after it, and none before.
    let mut other = tokens.clone();
    other[20] = (other[20] + 1) % vocab;
    let (ov, _) = logits(&other);
    assert_eq!(
        ov[..20 * vocab],
        full[..20 * vocab],
        "{name}: the change leaked backwards"
    );
    let diff: f64 = ov[20 * vocab..]
        .iter()
        .zip(&full[20 * vocab..])
        .map(|(a, b)| (a - b).abs())
        .sum();
    assert!(
        diff > 1e-6,
        "{name}: changing token 20 changed nothing after it"
    );
}

#[test]
fn every_prefix_gets_the_logits_of_the_full_sequence() {
    // SEEDS.md: boundaries every 2 tokens, 32 tokens, atol 1e-6 in f64.
    assert_prefixes_agree(
        "fixed every 2",
        &lm(BoundaryMode::FixedEvery(2), vec![]),
        |_| BoundaryInput::Auto,
    );
    // Whitespace boundaries derived from the ids (tokens 3 and 10 are "spaces").
    assert_prefixes_agree(
        "whitespace",
        &lm(BoundaryMode::Whitespace, vec![3, 10]),
        |_| BoundaryInput::Auto,
    );
    // Gumbel with a fixed noise seed: a prefix draws the same first noise values (one row),
    // so it samples the same boundaries.
    assert_prefixes_agree("gumbel", &lm(BoundaryMode::Gumbel, vec![]), |_| {
        BoundaryInput::GumbelSeed(5)
    });
}

// ---------------------------------------------------------------------------------------------
// Gumbel mode

#[test]
fn gumbel_boundaries_are_seeded_hard_and_straight_through() {
    let cfg = tiny(BoundaryMode::Gumbel);
    let a = HourglassStack::new(&cfg, DType::F64, 50).unwrap();
    let b = HourglassStack::new(&cfg, DType::F64, 50).unwrap();
    let x = rn(&[3, 10, 4], 51);
    // The same seed, the same stream: the same boundaries and outputs, call after call.
    let mut seen = Vec::new();
    for _ in 0..3 {
        let oa = a.forward_with(&x, BoundaryInput::Auto).unwrap();
        let ob = b.forward_with(&x, BoundaryInput::Auto).unwrap();
        let hard = oa.boundaries.to_vec_f64();
        assert_eq!(hard, ob.boundaries.to_vec_f64());
        assert_eq!(oa.hidden.to_vec_f64(), ob.hidden.to_vec_f64());
        assert!(hard.iter().all(|&v| v == 0.0 || v == 1.0), "{hard:?}");
        assert!(hard.contains(&1.0) && hard.contains(&0.0), "{hard:?}");
        seen.push(hard);
    }
    assert_eq!(a.noise_calls(), 3);
    assert!(
        seen[0] != seen[1] || seen[1] != seen[2],
        "the stream does not move"
    );
    // Replay from the stream's position, and explicit seeds leave the stream alone.
    a.set_noise_calls(1);
    let replay = a.forward_with(&x, BoundaryInput::Auto).unwrap();
    assert_eq!(replay.boundaries.to_vec_f64(), seen[1]);
    let s1 = a.forward_with(&x, BoundaryInput::GumbelSeed(9)).unwrap();
    let s2 = b.forward_with(&x, BoundaryInput::GumbelSeed(9)).unwrap();
    assert_eq!(s1.boundaries.to_vec_f64(), s2.boundaries.to_vec_f64());
    assert_eq!(a.noise_calls(), 2);

    // The predictor learns from the task loss alone, through the straight-through
    // boundaries and the pooling's surrogate gradient.
    let out = a.forward_with(&x, BoundaryInput::GumbelSeed(9)).unwrap();
    let target = rn(&[3, 10, 4], 52);
    let task = out.hidden.sub(&target).unwrap();
    task.mul(&task)
        .unwrap()
        .mean_all()
        .unwrap()
        .backward()
        .unwrap();
    let bp = a.boundary_predictor().unwrap();
    for p in bp.parameters() {
        let g = p
            .grad()
            .expect("the predictor gets a gradient")
            .to_vec_f64();
        assert!(g.iter().all(|v| v.is_finite()));
        assert!(
            g.iter().any(|&v| v != 0.0),
            "zero gradient to the predictor"
        );
    }
    a.zero_grad();

    // The prior loss: finite, differentiable, and it pulls on the predictor too.
    let out = a.forward_with(&x, BoundaryInput::GumbelSeed(9)).unwrap();
    let prior = out.prior_loss.unwrap();
    let pv = prior.item().unwrap();
    assert!(pv.is_finite() && pv > 0.0, "{pv}");
    prior.backward().unwrap();
    for p in bp.parameters() {
        let g = p
            .grad()
            .expect("the prior reaches the predictor")
            .to_vec_f64();
        assert!(g.iter().all(|v| v.is_finite()) && g.iter().any(|&v| v != 0.0));
    }
    // … and only the predictor and the pre-layers feed the boundaries.
    for (name, p) in a.named_parameters() {
        if name.starts_with("post_layers") || name.starts_with("shortened_layers") {
            assert!(p.grad().is_none(), "{name} got a gradient from the prior");
        }
    }
}

#[test]
fn the_lm_loss_adds_the_prior_in_gumbel_mode_and_trains_every_parameter() {
    let model = lm(BoundaryMode::Gumbel, vec![]);
    let tokens: Vec<usize> = (0..12).map(|t| (t * 5 + 1) % 11).collect();
    let ids = Tensor::from_f64s(
        &tokens.iter().map(|&t| t as f64).collect::<Vec<_>>(),
        &[2, 6],
        DType::F64,
    )
    .unwrap();
    let targets: Vec<usize> = tokens.iter().map(|t| (t + 1) % 11).collect();
    let l = model.loss(&ids, &targets).unwrap();
    let (total, ce, prior) = (
        l.loss.item().unwrap(),
        l.lm_loss.item().unwrap(),
        l.prior_loss.as_ref().unwrap().item().unwrap(),
    );
    assert!((total - ce - prior).abs() < 1e-12);
    assert!(ce > 0.0 && prior > 0.0);
    l.loss.backward().unwrap();
    for (name, p) in model.named_parameters() {
        let g = p.grad().unwrap_or_else(|| panic!("{name} has no gradient"));
        assert!(g.to_vec_f64().iter().all(|v| v.is_finite()), "{name}");
    }
    // Fixed boundaries: no prior term.
    let fixed = lm(BoundaryMode::FixedEvery(2), vec![]);
    let l = fixed.loss(&ids, &targets).unwrap();
    assert!(l.prior_loss.is_none());
    assert_eq!(l.loss.item().unwrap(), l.lm_loss.item().unwrap());
}

// ---------------------------------------------------------------------------------------------
// State dicts

#[test]
fn names_follow_the_layout_and_state_dicts_round_trip() {
    let cfg = HourglassConfig {
        shortened_layers: 2,
        ..tiny(BoundaryMode::Gumbel)
    };
    let stack = HourglassStack::new(&cfg, DType::F32, 1).unwrap();
    let names: Vec<String> = stack
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let block = |p: &str| -> Vec<String> {
        [
            "ln_1.weight",
            "ln_1.bias",
            "attn.c_attn.weight",
            "attn.c_attn.bias",
            "attn.c_proj.weight",
            "attn.c_proj.bias",
            "ln_2.weight",
            "ln_2.bias",
            "mlp.c_fc.weight",
            "mlp.c_fc.bias",
            "mlp.c_proj.weight",
            "mlp.c_proj.bias",
        ]
        .iter()
        .map(|n| format!("{p}.{n}"))
        .collect()
    };
    let mut want = block("pre_layers.0");
    want.extend(
        [
            "boundary_predictor.hidden.weight",
            "boundary_predictor.hidden.bias",
            "boundary_predictor.output.weight",
            "boundary_predictor.output.bias",
            "null_group",
            "down_ln.weight",
            "down_ln.bias",
        ]
        .map(String::from),
    );
    want.extend(block("shortened_layers.0"));
    want.extend(block("shortened_layers.1"));
    want.extend(block("post_layers.0"));
    assert_eq!(names, want);
    let sd = stack.state_dict();
    assert!(sd.get("mlp.c_fc.weight").is_none());
    assert_eq!(
        sd.get("pre_layers.0.mlp.c_fc.weight").unwrap().dims(),
        &[8, 4]
    );
    assert_eq!(
        sd.get("boundary_predictor.hidden.weight").unwrap().dims(),
        &[8, 4]
    );
    assert_eq!(sd.get("null_group").unwrap().dims(), &[4]);

    let other = HourglassStack::new(&cfg, DType::F32, 2).unwrap();
    let x = Tensor::randn(&[2, 6, 4], DType::F32, 3).unwrap();
    let run = |s: &HourglassStack| {
        s.forward_with(&x, BoundaryInput::GumbelSeed(4))
            .unwrap()
            .hidden
            .to_vec_f64()
    };
    assert_ne!(run(&stack), run(&other));
    let report = other.load_state_dict(&sd, true).unwrap();
    assert!(report.missing.is_empty() && report.unexpected.is_empty());
    assert_eq!(run(&stack), run(&other));

    // The LM: its own names around the stack's, and a round trip.
    let a = lm(BoundaryMode::Whitespace, vec![3]);
    let lm_names: Vec<String> = a.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        lm_names[..3],
        [
            "word_emb.weight",
            "pos_emb.weight",
            "pre_layers.0.ln_1.weight"
        ]
    );
    assert!(lm_names.contains(&"null_group".to_string()));
    assert_eq!(
        lm_names[lm_names.len() - 4..],
        [
            "ln_f.weight",
            "ln_f.bias",
            "final_cast.weight",
            "final_cast.bias"
        ]
    );
    let b = HourglassLm::new(a.config(), DType::F64, 99).unwrap();
    let ids = ids_tensor(&[1, 3, 4, 3, 9, 0]);
    assert_ne!(
        a.forward(&ids).unwrap().to_vec_f64(),
        b.forward(&ids).unwrap().to_vec_f64()
    );
    b.load_state_dict(&a.state_dict(), true).unwrap();
    assert_eq!(
        a.forward(&ids).unwrap().to_vec_f64(),
        b.forward(&ids).unwrap().to_vec_f64()
    );
}

#[test]
fn a_mis_shaped_state_dict_names_the_key_and_loads_nothing() {
    let cfg = tiny(BoundaryMode::Gumbel);
    let stack = HourglassStack::new(&cfg, DType::F32, 1).unwrap();
    let before: Vec<Vec<f64>> = stack
        .state_dict()
        .iter()
        .map(|(_, t)| t.to_vec_f64())
        .collect();
    let mut sd = HourglassStack::new(&cfg, DType::F32, 2)
        .unwrap()
        .state_dict();
    sd.insert("null_group", Tensor::zeros(&[1, 1, 4], DType::F32).unwrap());
    let e = err_of(stack.load_state_dict(&sd, true));
    assert!(e.contains("`null_group`: shape [1, 1, 4]"), "{e}");
    let mut sd = HourglassStack::new(&cfg, DType::F32, 2)
        .unwrap()
        .state_dict();
    sd.insert(
        "shortened_layers.0.mlp.c_fc.weight",
        Tensor::zeros(&[16, 4], DType::F32).unwrap(),
    );
    let e = err_of(stack.load_state_dict(&sd, false));
    assert!(e.contains("`shortened_layers.0.mlp.c_fc.weight`"), "{e}");
    // A dict from a stack without a predictor is missing its keys.
    let fixed = HourglassStack::new(&tiny(BoundaryMode::FixedEvery(2)), DType::F32, 3).unwrap();
    let e = err_of(stack.load_state_dict(&fixed.state_dict(), true));
    assert!(e.contains("boundary_predictor.hidden.weight"), "{e}");
    let after: Vec<Vec<f64>> = stack
        .state_dict()
        .iter()
        .map(|(_, t)| t.to_vec_f64())
        .collect();
    assert_eq!(before, after, "a failed load changed the stack");
}

// ---------------------------------------------------------------------------------------------
// Bad inputs

#[test]
fn bad_inputs_are_errors_naming_the_argument() {
    let ws = HourglassStack::new(&tiny(BoundaryMode::Whitespace), DType::F64, 1).unwrap();
    let fixed = HourglassStack::new(&tiny(BoundaryMode::FixedEvery(2)), DType::F64, 1).unwrap();
    let gumbel = HourglassStack::new(&tiny(BoundaryMode::Gumbel), DType::F64, 1).unwrap();
    let x = rn(&[2, 6, 4], 2);
    let zeros = |shape: &[usize], dtype| Tensor::zeros(shape, dtype).unwrap();

    // The whitespace mask: wrong shape (L not matching, B not matching, rank), values, dtype.
    for shape in [&[2, 5][..], &[1, 6], &[2, 6, 1], &[12]] {
        let m = zeros(shape, DType::F64);
        let e = err_of(ws.forward_with(&x, BoundaryInput::Whitespace(&m)));
        assert!(
            e.contains("`boundary_input`") && e.contains("[2, 6]"),
            "{e}"
        );
    }
    let mut v = vec![0.0; 12];
    v[7] = 0.5;
    let m = Tensor::from_f64s(&v, &[2, 6], DType::F64).unwrap();
    let e = err_of(ws.forward_with(&x, BoundaryInput::Whitespace(&m)));
    assert!(
        e.contains("`boundary_input`") && e.contains("0.5 at [1, 1]"),
        "{e}"
    );
    let m = zeros(&[2, 6], DType::F32);
    let e = err_of(ws.forward_with(&x, BoundaryInput::Whitespace(&m)));
    assert!(e.contains("`boundary_input`") && e.contains("F32"), "{e}");

    // The input a mode needs, and nothing else.
    let m = zeros(&[2, 6], DType::F64);
    for e in [
        err_of(ws.forward_with(&x, BoundaryInput::Auto)),
        err_of(ws.forward(&x)),
        err_of(ws.forward_with(&x, BoundaryInput::GumbelSeed(1))),
        err_of(fixed.forward_with(&x, BoundaryInput::Whitespace(&m))),
        err_of(fixed.forward_with(&x, BoundaryInput::GumbelSeed(1))),
        err_of(gumbel.forward_with(&x, BoundaryInput::Whitespace(&m))),
    ] {
        assert!(e.contains("`boundary_input`"), "{e}");
    }

    // The hidden states: width, rank, empty, dtype.
    for bad in [
        zeros(&[2, 6, 5], DType::F64),
        zeros(&[6, 4], DType::F64),
        zeros(&[2, 0, 4], DType::F64),
        zeros(&[2, 6, 4], DType::F32),
    ] {
        for e in [
            err_of(fixed.forward(&bad)),
            err_of(gumbel.forward(&bad)),
            err_of(ws.forward_with(&bad, BoundaryInput::Whitespace(&m))),
        ] {
            assert!(e.contains("`hidden`"), "{e}");
        }
    }

    // Bad configs name the field.
    let base = tiny(BoundaryMode::FixedEvery(2));
    for (cfg, field) in [
        (HourglassConfig { d_model: 0, ..base }, "d_model"),
        (HourglassConfig { n_head: 3, ..base }, "n_head"),
        (HourglassConfig { d_inner: 0, ..base }, "d_inner"),
        (
            HourglassConfig {
                dropout: 1.5,
                ..base
            },
            "dropout",
        ),
        (
            HourglassConfig {
                boundaries: BoundaryMode::FixedEvery(0),
                ..base
            },
            "boundaries",
        ),
        (HourglassConfig { prior: 1.0, ..base }, "prior"),
        (
            HourglassConfig {
                temperature: 0.0,
                ..base
            },
            "temperature",
        ),
        (
            HourglassConfig {
                eps: f64::NAN,
                ..base
            },
            "eps",
        ),
    ] {
        let e = err_of(HourglassStack::new(&cfg, DType::F64, 0));
        assert!(e.contains(&format!("`{field}`")), "{field}: {e}");
    }

    // Parts that disagree with the config.
    let good = |bp| HourglassParts {
        pre_layers: vec![],
        null_group: zeros(&[4], DType::F64),
        down_ln: LayerNorm::new(&[4], 1e-5, true, DType::F64).unwrap(),
        shortened_layers: vec![],
        post_layers: vec![],
        boundary_predictor: bp,
    };
    let none = HourglassConfig {
        pre_layers: 0,
        shortened_layers: 0,
        post_layers: 0,
        ..base
    };
    assert!(HourglassStack::from_parts(&none, good(None), 0).is_ok());
    let e = err_of(HourglassStack::from_parts(&base, good(None), 0));
    assert!(e.contains("`pre_layers`"), "{e}");
    let e = err_of(HourglassStack::from_parts(
        &HourglassConfig {
            boundaries: BoundaryMode::Gumbel,
            ..none
        },
        good(None),
        0,
    ));
    assert!(e.contains("`boundary_predictor`"), "{e}");
    let bp = gumbel.boundary_predictor().cloned();
    let e = err_of(HourglassStack::from_parts(&none, good(bp), 0));
    assert!(e.contains("`boundary_predictor`"), "{e}");
    let mut parts = good(None);
    parts.down_ln = LayerNorm::new(&[4], 1e-5, true, DType::F32).unwrap();
    let e = err_of(HourglassStack::from_parts(&none, parts, 0));
    assert!(e.contains("`down_ln`"), "{e}");

    // The LM: ids, targets, block size, whitespace ids.
    let model = lm(BoundaryMode::FixedEvery(2), vec![]);
    let e = err_of(model.forward(&Tensor::from_f64s(&[1.0, 2.5], &[1, 2], DType::F64).unwrap()));
    assert!(e.contains("`ids`") && e.contains("2.5"), "{e}");
    let e = err_of(model.forward(&zeros(&[4], DType::F64)));
    assert!(e.contains("`ids`"), "{e}");
    let e = err_of(model.forward(&ids_tensor(&[11])));
    assert!(e.contains("`ids`"), "{e}");
    let e = err_of(model.forward(&ids_tensor(&[0; 33])));
    assert!(e.contains("`ids`") && e.contains("block size 32"), "{e}");
    let e = err_of(model.loss(&ids_tensor(&[1, 2, 3]), &[1, 2]));
    assert!(e.contains("`targets`"), "{e}");
    let e = err_of(model.loss(&ids_tensor(&[1, 2, 3]), &[1, 2, 11]));
    assert!(e.contains("`targets`"), "{e}");
    let no_ws = lm(BoundaryMode::Whitespace, vec![]);
    let e = err_of(no_ws.forward(&ids_tensor(&[1, 2, 3])));
    assert!(e.contains("`boundary_input`"), "{e}");
    let mut cfg = no_ws.config().clone();
    cfg.whitespace_ids = vec![11];
    let e = err_of(HourglassLm::new(&cfg, DType::F64, 0));
    assert!(e.contains("`whitespace_ids`"), "{e}");
    cfg.whitespace_ids = vec![];
    cfg.vocab_size = 0;
    assert!(err_of(HourglassLm::new(&cfg, DType::F64, 0)).contains("`vocab_size`"));
}
