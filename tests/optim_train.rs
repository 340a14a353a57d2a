//! Optimizers as a training loop uses them (issue #12 part 4): AdamW with nanoGPT's decay
//! groups, its warmup-cosine schedule and gradient clipping against PyTorch, and
//! checkpoint/resume through the optimizers' state lists, bit for bit.
//!
//! The golden `tests/golden/optim/adamw_groups_cosine_clip.json` comes from
//! `tests/golden/optim/make_optim_goldens.py` (torch.optim.AdamW, f64); its parameters and
//! gradients are closed-form functions of the element index and the step, regenerated here.

use eingrad::optim::{
    clip_grad_norm, split_decay_by_rank, Adam, AdamConfig, LrSchedule, Optimizer, ParamGroup, Sgd,
    SgdConfig, WarmupCosine,
};
use eingrad::{einsum, DType, Tensor};
use serde_json::Value;

const GOLDEN: &str = include_str!("golden/optim/adamw_groups_cosine_clip.json");
const NAMES: [&str; 4] = ["w1", "b1", "w2", "b2"];

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn shape(g: &Value, name: &str) -> Vec<usize> {
    g["shapes"][name]
        .as_array()
        .expect("shape")
        .iter()
        .map(|d| d.as_u64().expect("dim") as usize)
        .collect()
}

/// One vector per parameter of `f(k)`, `k` the flat index over all parameters in order (the
/// script's `flat_values`).
fn flat_values(g: &Value, f: impl Fn(f64) -> f64) -> Vec<Vec<f64>> {
    let mut k = 0usize;
    NAMES
        .iter()
        .map(|n| {
            let len: usize = shape(g, n).iter().product();
            let v = (k..k + len).map(|j| f(j as f64)).collect();
            k += len;
            v
        })
        .collect()
}

fn init_values(g: &Value) -> Vec<Vec<f64>> {
    flat_values(g, |k| 0.5 * (0.3 * k + 0.1).cos())
}

fn grad_values(g: &Value, t: u64) -> Vec<Vec<f64>> {
    let a = 0.1 + 0.25 * (t % 4) as f64;
    let t = t as f64;
    flat_values(g, |k| a * (0.7 * k + 1.3 * t + 0.2).sin())
}

fn rel_err(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1e-3)
}

/// Runs the script's 20 steps; `decay_all` puts every parameter in the decayed group (the
/// mistake the groups exist to avoid). Returns the largest relative error against the golden
/// over all steps and parameters.
fn run_golden(decay_all: bool) -> f64 {
    let g: Value = serde_json::from_str(GOLDEN).unwrap();
    let init = init_values(&g);
    // (serde_json's default float parser may be one ulp off the text: compare to 1e-15)
    for (n, v) in NAMES.iter().zip(&init) {
        for (a, b) in v.iter().zip(f64s(&g["init"][n])) {
            assert!(
                rel_err(*a, b) < 1e-15,
                "{n}: init formula {a} vs the script's {b}"
            );
        }
    }
    let params: Vec<Tensor> = NAMES
        .iter()
        .zip(&init)
        .map(|(n, v)| {
            Tensor::from_vec(v.clone(), &shape(&g, n))
                .unwrap()
                .requires_grad_(true)
        })
        .collect();
    let (decay, no_decay) = if decay_all {
        (params.clone(), vec![])
    } else {
        split_decay_by_rank(&params)
    };
    let wd = g["weight_decay"].as_f64().unwrap();
    let betas = f64s(&g["betas"]);
    let cfg = AdamConfig {
        betas: (betas[0], betas[1]),
        eps: g["eps"].as_f64().unwrap(),
        ..AdamConfig::adamw()
    };
    let mut opt = Adam::with_groups(
        vec![
            ParamGroup::new(decay).weight_decay(wd),
            ParamGroup::new(no_decay).weight_decay(0.0),
        ],
        cfg,
    )
    .unwrap();
    let s = &g["schedule"];
    let sched = WarmupCosine::new(
        s["max_lr"].as_f64().unwrap(),
        s["min_lr"].as_f64().unwrap(),
        s["warmup_steps"].as_u64().unwrap(),
        s["decay_steps"].as_u64().unwrap(),
    )
    .unwrap();
    let max_norm = g["max_norm"].as_f64().unwrap();
    let mut worst = 0.0f64;
    for step in g["steps"].as_array().unwrap() {
        let t = step["step"].as_u64().unwrap();
        let lr = sched.lr_at(t);
        let want_lr = step["lr"].as_f64().unwrap();
        assert!(
            rel_err(lr, want_lr) < 1e-15,
            "step {t}: lr {lr} vs nanoGPT's get_lr {want_lr}"
        );
        opt.set_lr(lr).unwrap();
        for (p, v) in params.iter().zip(grad_values(&g, t)) {
            p.set_grad(Some(Tensor::from_vec(v, p.dims()).unwrap()))
                .unwrap();
        }
        let total = clip_grad_norm(&params, max_norm).unwrap();
        let want_total = step["total_norm"].as_f64().unwrap();
        assert!(
            rel_err(total, want_total) < 1e-13,
            "step {t}: total norm {total} vs torch {want_total}"
        );
        opt.step().unwrap();
        for (p, n) in params.iter().zip(NAMES) {
            let want = f64s(&step["params"][n]);
            for (a, b) in p.to_vec::<f64>().unwrap().iter().zip(&want) {
                worst = worst.max(rel_err(*a, *b));
            }
        }
    }
    worst
}

#[test]
fn adamw_with_decay_groups_warmup_cosine_and_clipping_matches_torch() {
    let worst = run_golden(false);
    eprintln!("largest relative error against torch over 20 steps: {worst:e}");
    assert!(worst < 1e-12, "{worst:e}");
    // The groups matter: decaying the biases too moves them measurably off the golden.
    let wrong = run_golden(true);
    assert!(wrong > 1e-6, "{wrong:e}");
}

// ------------------------------------------------------------------ checkpoint and resume

/// A two-layer tanh network on fixed data plus a parameter `late` that receives gradients
/// only from step 9 on (so a snapshot before that has no state for it).
struct Net {
    params: Vec<Tensor>,
    x: Tensor,
    y: Tensor,
}

impl Net {
    fn new(dtype: DType) -> Net {
        let p = |shape: &[usize], seed| {
            Tensor::randn(shape, dtype, seed)
                .unwrap()
                .mul_scalar(0.5)
                .unwrap()
                .requires_grad_(true)
        };
        Net {
            params: vec![
                p(&[6, 8], 1),
                p(&[8], 2),
                p(&[8, 3], 3),
                p(&[3], 4),
                p(&[2], 5),
            ],
            x: Tensor::randn(&[16, 6], dtype, 6).unwrap(),
            y: Tensor::randn(&[16, 3], dtype, 7).unwrap(),
        }
    }
    /// A copy of the parameters as fresh leaves (what loading a model checkpoint gives).
    fn copy(&self) -> Net {
        let params = self
            .params
            .iter()
            .map(|p| {
                Tensor::from_f64s(&p.to_vec_f64(), p.dims(), p.dtype())
                    .unwrap()
                    .requires_grad_(true)
            })
            .collect();
        Net {
            params,
            x: self.x.clone(),
            y: self.y.clone(),
        }
    }
    fn backward(&self, t: u64) {
        let [w1, b1, w2, b2, late] = &self.params[..] else {
            unreachable!()
        };
        let h = einsum("bi,ij->bj", &[&self.x, w1])
            .unwrap()
            .add(b1)
            .unwrap()
            .tanh()
            .unwrap();
        let out = einsum("bi,ij->bj", &[&h, w2]).unwrap().add(b2).unwrap();
        let d = out.sub(&self.y).unwrap();
        let mut loss = d.mul(&d).unwrap().mean_all().unwrap();
        if t >= 9 {
            loss = loss
                .add(&late.mul(late).unwrap().sum_all().unwrap())
                .unwrap();
        }
        loss.backward().unwrap();
    }
    fn bits(&self) -> Vec<u64> {
        self.params
            .iter()
            .flat_map(|p| p.to_vec_f64())
            .map(f64::to_bits)
            .collect()
    }
}

fn train(net: &Net, opt: &mut dyn Optimizer, sched: &dyn LrSchedule, steps: std::ops::Range<u64>) {
    for t in steps {
        opt.set_lr(sched.lr_at(t)).unwrap();
        opt.zero_grad();
        net.backward(t);
        clip_grad_norm(&net.params, 1.0).unwrap();
        opt.step().unwrap();
    }
}

fn state_bits(state: &[(String, Tensor)]) -> Vec<(String, Vec<usize>, Vec<u64>)> {
    state
        .iter()
        .map(|(k, t)| {
            let bits = t.to_vec_f64().into_iter().map(f64::to_bits).collect();
            (k.clone(), t.dims().to_vec(), bits)
        })
        .collect()
}

/// Train N steps, snapshot, train M more; against a fresh optimizer loaded from the snapshot
/// over a copy of the parameters at N, trained the same M steps: the same bits.
fn check_resume<O: Optimizer>(dtype: DType, make: impl Fn(&Net) -> O) {
    let sched = WarmupCosine::new(3e-2, 3e-3, 3, 12).unwrap();
    let (n, m) = (7, 8);
    let a = Net::new(dtype);
    let mut opt_a = make(&a);
    train(&a, &mut opt_a, &sched, 0..n);
    let snapshot = opt_a.state_tensors();
    let params_at_n = a.copy();
    train(&a, &mut opt_a, &sched, n..n + m);

    let b = params_at_n;
    let mut opt_b = make(&b);
    opt_b.load_state_tensors(&snapshot).unwrap();
    assert_eq!(state_bits(&opt_b.state_tensors()), state_bits(&snapshot));
    train(&b, &mut opt_b, &sched, n..n + m);

    assert_eq!(a.bits(), b.bits(), "{dtype:?}: parameters after resuming");
    assert_eq!(
        state_bits(&opt_a.state_tensors()),
        state_bits(&opt_b.state_tensors()),
        "{dtype:?}: optimizer state after resuming"
    );
    // and the run did move: the snapshot is not the final state
    assert_ne!(state_bits(&snapshot), state_bits(&opt_a.state_tensors()));
}

#[test]
fn adamw_with_groups_resumes_bit_for_bit_from_its_state_tensors() {
    for dtype in [DType::F32, DType::F64] {
        check_resume(dtype, |net| {
            let (decay, no_decay) = split_decay_by_rank(&net.params);
            let cfg = AdamConfig {
                betas: (0.9, 0.95),
                ..AdamConfig::adamw()
            };
            Adam::with_groups(
                vec![
                    ParamGroup::new(decay).weight_decay(0.1),
                    ParamGroup::new(no_decay).weight_decay(0.0).lr_scale(0.5),
                ],
                cfg,
            )
            .unwrap()
        });
    }
}

#[test]
fn a_snapshot_before_a_parameters_first_gradient_leaves_it_fresh() {
    let net = Net::new(DType::F64);
    let mut opt = Adam::adamw(net.params.clone(), AdamConfig::adamw()).unwrap();
    let sched = WarmupCosine::new(1e-2, 1e-3, 2, 20).unwrap();
    train(&net, &mut opt, &sched, 0..4);
    let keys: Vec<String> = opt.state_tensors().into_iter().map(|(k, _)| k).collect();
    assert!(keys.contains(&"state.3.exp_avg".to_string()), "{keys:?}");
    assert!(!keys.iter().any(|k| k.starts_with("state.4.")), "{keys:?}");
    assert_eq!((opt.steps_taken(0), opt.steps_taken(4)), (4, 0));
    let snapshot = opt.state_tensors();
    let mut fresh = Adam::adamw(net.params.clone(), AdamConfig::adamw()).unwrap();
    fresh.load_state_tensors(&snapshot).unwrap();
    assert_eq!((fresh.steps_taken(0), fresh.steps_taken(4)), (4, 0));
    assert_eq!(fresh.lr(), sched.lr_at(3));
}

#[test]
fn sgd_with_momentum_and_groups_resumes_bit_for_bit() {
    for dtype in [DType::F32, DType::F64] {
        check_resume(dtype, |net| {
            let (decay, no_decay) = split_decay_by_rank(&net.params);
            let cfg = SgdConfig {
                momentum: 0.9,
                nesterov: true,
                ..Default::default()
            };
            Sgd::with_groups(
                vec![
                    ParamGroup::new(decay).weight_decay(1e-2),
                    ParamGroup::new(no_decay).lr_scale(2.0),
                ],
                cfg,
            )
            .unwrap()
        });
    }
}

// ----------------------------------------------------------------------------- errors

/// A state list as the optimizers return it.
type State = Vec<(String, Tensor)>;

fn trained_adam() -> (Vec<Tensor>, Adam) {
    let w = Tensor::ones(&[2, 3], DType::F64)
        .unwrap()
        .requires_grad_(true);
    let b = Tensor::ones(&[3], DType::F64).unwrap().requires_grad_(true);
    let mut opt = Adam::adamw(vec![w.clone(), b.clone()], AdamConfig::adamw()).unwrap();
    for p in [&w, &b] {
        p.set_grad(Some(Tensor::ones(p.dims(), DType::F64).unwrap()))
            .unwrap();
    }
    opt.step().unwrap();
    opt.step().unwrap();
    (vec![w, b], opt)
}

/// `state` with the entry under `key` replaced by `t` (or removed), or `t` added under `key`.
fn edit(state: &[(String, Tensor)], key: &str, t: Option<Tensor>) -> State {
    let mut out: State = state.iter().filter(|(k, _)| k != key).cloned().collect();
    if let Some(t) = t {
        out.push((key.to_string(), t));
    }
    out
}

#[test]
fn loading_a_bad_state_names_the_key_and_changes_nothing() {
    let (_, mut opt) = trained_adam();
    opt.set_lr(0.123).unwrap();
    let good = opt.state_tensors();
    let f64s = |v: &[f64], s: &[usize]| Tensor::from_vec(v.to_vec(), s).unwrap();
    let scalar = |v: f64| Tensor::scalar(v, DType::F64);
    let cases: Vec<(State, &[&str])> = vec![
        (edit(&good, "lr", None), &["missing key \"lr\""]),
        (
            edit(&good, "state.1.exp_avg_sq", None),
            &["missing key \"state.1.exp_avg_sq\""],
        ),
        (
            edit(&good, "state.0.step", None),
            &["missing key \"state.0.step\""],
        ),
        (
            edit(&good, "state.0.exp_avg", Some(f64s(&[0.0; 6], &[3, 2]))),
            &["state.0.exp_avg", "[3, 2]", "[2, 3]"],
        ),
        (
            edit(
                &good,
                "state.1.exp_avg",
                Some(Tensor::zeros(&[3], DType::F32).unwrap()),
            ),
            &["state.1.exp_avg", "F32"],
        ),
        (
            edit(&good, "state.2.exp_avg", Some(f64s(&[0.0], &[1]))),
            &["unexpected key \"state.2.exp_avg\"", "2 parameters"],
        ),
        (
            edit(&good, "state.0.momentum_buffer", Some(scalar(0.0))),
            &["unexpected key \"state.0.momentum_buffer\""],
        ),
        (
            edit(&good, "param_groups", Some(scalar(0.0))),
            &["unexpected key \"param_groups\""],
        ),
        (
            edit(&good, "state.00.step", Some(scalar(1.0))),
            &["unexpected key \"state.00.step\""],
        ),
        (
            edit(&good, "state.0.step", Some(scalar(0.0))),
            &["state.0.step", "≥ 1"],
        ),
        (
            edit(&good, "state.0.step", Some(scalar(2.5))),
            &["state.0.step", "2.5"],
        ),
        (
            edit(&good, "state.0.step", Some(f64s(&[1.0, 2.0], &[2]))),
            &["state.0.step", "one value"],
        ),
        (
            edit(&good, "lr", Some(scalar(f64::NAN))),
            &["\"lr\"", "NaN"],
        ),
        (
            [good.clone(), vec![good[1].clone()]].concat(),
            &["\"state.0.step\" appears twice"],
        ),
    ];
    for (state, wants) in cases {
        let e = opt.load_state_tensors(&state).unwrap_err().to_string();
        for w in wants {
            assert!(e.contains(w), "{e:?} lacks {w:?}");
        }
        assert!(
            e.contains("Adam::load_state_tensors") && e.contains("`state`"),
            "{e}"
        );
        assert_eq!(
            state_bits(&opt.state_tensors()),
            state_bits(&good),
            "after {e}"
        );
    }
    // The good list still loads, also in another order, and a list without any parameter
    // state resets the moments.
    let mut shuffled = good.clone();
    shuffled.reverse();
    opt.load_state_tensors(&shuffled).unwrap();
    assert_eq!(state_bits(&opt.state_tensors()), state_bits(&good));
    opt.load_state_tensors(&good[..1]).unwrap();
    assert_eq!(
        (opt.steps_taken(0), opt.steps_taken(1), opt.lr()),
        (0, 0, 0.123)
    );
}

#[test]
fn sgd_state_errors_name_the_key() {
    let p = Tensor::ones(&[2], DType::F32).unwrap().requires_grad_(true);
    let mut plain = Sgd::new(vec![p.clone()], SgdConfig::default()).unwrap();
    let state = vec![
        ("lr".to_string(), Tensor::scalar(0.1, DType::F64)),
        (
            "state.0.momentum_buffer".to_string(),
            Tensor::zeros(&[2], DType::F32).unwrap(),
        ),
    ];
    let e = plain.load_state_tensors(&state).unwrap_err().to_string();
    assert!(
        e.contains("state.0.momentum_buffer") && e.contains("no momentum"),
        "{e}"
    );
    let mut heavy = Sgd::new(
        vec![p.clone()],
        SgdConfig {
            momentum: 0.5,
            ..Default::default()
        },
    )
    .unwrap();
    heavy.load_state_tensors(&state).unwrap();
    assert_eq!(heavy.lr(), 0.1);
    let e = heavy
        .load_state_tensors(&state[1..])
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing key \"lr\""), "{e}");
    let e = heavy
        .load_state_tensors(&edit(
            &state,
            "state.0.exp_avg",
            Some(Tensor::scalar(0.0, DType::F64)),
        ))
        .unwrap_err()
        .to_string();
    assert!(e.contains("unexpected key \"state.0.exp_avg\""), "{e}");
}

#[test]
fn bad_groups_name_the_argument_and_the_group() {
    let p = |s: &[usize]| Tensor::ones(s, DType::F32).unwrap().requires_grad_(true);
    let (a, b) = (p(&[2, 2]), p(&[2]));
    let msg = |groups: Vec<ParamGroup>| {
        Adam::with_groups(groups, AdamConfig::adamw())
            .err()
            .expect("an error")
            .to_string()
    };
    let e = msg(vec![
        ParamGroup::new(vec![a.clone()]),
        ParamGroup::new(vec![b.clone()]).weight_decay(-0.1),
    ]);
    assert!(
        e.contains("`weight_decay`") && e.contains("groups[1]"),
        "{e}"
    );
    let e = msg(vec![ParamGroup::new(vec![a.clone()]).lr_scale(f64::NAN)]);
    assert!(e.contains("`lr_scale`") && e.contains("groups[0]"), "{e}");
    let e = msg(vec![
        ParamGroup::new(vec![a.clone(), b.clone()]),
        ParamGroup::new(vec![b.clone()]),
    ]);
    assert!(
        e.contains("groups[1].params[0]")
            && e.contains("twice")
            && e.contains("groups[0].params[1]"),
        "{e}"
    );
    let derived = a.mul_scalar(2.0).unwrap();
    let e = msg(vec![ParamGroup::new(vec![b.clone(), derived])]);
    assert!(
        e.contains("groups[0].params[1]") && e.contains("leaf"),
        "{e}"
    );
    let e = Sgd::with_groups(
        vec![ParamGroup::new(vec![a.clone()]).weight_decay(f64::INFINITY)],
        SgdConfig::default(),
    )
    .err()
    .expect("an error")
    .to_string();
    assert!(
        e.contains("Sgd::with_groups") && e.contains("`weight_decay`"),
        "{e}"
    );
    // empty groups are fine (a model without biases has an empty no-decay group)
    let opt = Adam::with_groups(
        vec![ParamGroup::new(vec![a.clone()]), ParamGroup::new(vec![])],
        AdamConfig::adamw(),
    )
    .unwrap();
    assert_eq!(opt.groups()[1].params, 1..1);
}

/// Plain Adam's weight decay is an L2 term in the gradient; per group it applies to that
/// group only, and `lr_scale` scales just that group's step.
#[test]
fn group_overrides_apply_to_their_group_only() {
    let p = |v: f64| {
        Tensor::from_vec(vec![v], &[1])
            .unwrap()
            .requires_grad_(true)
    };
    let (a, b, c) = (p(1.0), p(1.0), p(1.0));
    let cfg = AdamConfig {
        lr: 0.1,
        ..Default::default()
    };
    let mut opt = Adam::with_groups(
        vec![
            ParamGroup::new(vec![a.clone()]).weight_decay(1.0),
            ParamGroup::new(vec![b.clone()]),
            ParamGroup::new(vec![c.clone()]).lr_scale(0.5),
        ],
        cfg,
    )
    .unwrap();
    for t in [&a, &b, &c] {
        t.set_grad(Some(Tensor::from_vec(vec![-1.0f64], &[1]).unwrap()))
            .unwrap();
    }
    opt.step().unwrap();
    // the first Adam step is lr·sign(g) (up to eps): a's gradient −1 + 1·a = 0 does not move it
    assert_eq!(a.item().unwrap(), 1.0);
    assert!((b.item().unwrap() - 1.1).abs() < 1e-7);
    assert!((c.item().unwrap() - 1.05).abs() < 1e-7);
}
