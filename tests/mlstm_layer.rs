//! The xLSTM mLSTM layer (`models::xlstm::MlstmLayer`, SEEDS.md §1): orders 1 and 2 in f64
//! with respect to the input and every parameter, forward mode against reverse mode,
//! causality, the parallel form against the step form, the hand-written decay backward
//! against autograd's, a PyTorch golden file (read with `io::load_safetensors`), state dicts
//! and bad inputs.

mod support;

use eingrad::autograd::{grad, GradOptions};
use eingrad::func::{
    gradcheck, gradgradcheck, jacobian, verify_backward, GradcheckOptions, JacobianMode,
    VerifyOptions,
};
use eingrad::models::xlstm::{DecayBackward, MlstmLayer, MlstmLayerConfig};
use eingrad::nn::{Module, StateDict};
use eingrad::{DType, Result, Tensor};

fn rn(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
    Tensor::randn(shape, dtype, seed).unwrap()
}

/// E = 4, NH = 2, inner 8 (DH = 4), q/k/v blocks of 4, conv kernel 4.
fn tiny(decay_backward: DecayBackward) -> MlstmLayerConfig {
    MlstmLayerConfig {
        round_proj_up_to_multiple_of: 4,
        decay_backward,
        ..MlstmLayerConfig::new(4, 2)
    }
}

/// Random parameters for `cfg` (all of them, gate weights included, so every path counts),
/// scaled to keep the activations in a well-conditioned range.
fn random_params(cfg: &MlstmLayerConfig, seed: u64, dtype: DType) -> Vec<Tensor> {
    cfg.parameter_shapes()
        .iter()
        .enumerate()
        .map(|(k, (name, shape))| {
            let t = rn(shape, seed + k as u64, dtype);
            let (scale, shift) = match name.as_str() {
                "mlstm_cell.fgate.bias" => (1.0, 2.0),
                "learnable_skip" => (0.3, 1.0),
                n if n.contains("gate.weight") => (0.3, 0.0),
                n if n.contains("outnorm") => (0.3, 0.0),
                _ => (0.6, 0.0),
            };
            t.mul_scalar(scale).unwrap().add_scalar(shift).unwrap()
        })
        .collect()
}

/// The layer rebuilt from `[x, params...]`, so checks differentiate with respect to both.
fn layer_fn(cfg: MlstmLayerConfig) -> impl Fn(&[Tensor]) -> Result<Vec<Tensor>> {
    move |t: &[Tensor]| {
        let named: Vec<(String, Tensor)> = cfg
            .parameter_shapes()
            .into_iter()
            .map(|(n, _)| n)
            .zip(t[1..].iter().cloned())
            .collect();
        Ok(vec![MlstmLayer::from_tensors(&cfg, &named)?.forward(&t[0])?])
    }
}

fn inputs(cfg: &MlstmLayerConfig, b: usize, s: usize, seed: u64) -> Vec<Tensor> {
    let mut v = vec![rn(&[b, s, cfg.embedding_dim], seed, DType::F64)];
    v.extend(random_params(cfg, seed + 100, DType::F64));
    v
}

/// The configurations checked to second order: the default layout with both decay
/// backwards, and one with every optional bias and a shorter kernel.
fn configs() -> Vec<(&'static str, MlstmLayerConfig)> {
    vec![
        ("autograd decay", tiny(DecayBackward::Autograd)),
        ("hand-written decay", tiny(DecayBackward::HandWritten)),
        (
            "biases, kernel 2",
            MlstmLayerConfig {
                bias: true,
                conv_kernel: 2,
                ..tiny(DecayBackward::Autograd)
            },
        ),
    ]
}

fn max_rel_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

#[test]
fn gradcheck_and_gradgradcheck_over_input_and_every_parameter() {
    let opts = GradcheckOptions {
        atol: 1e-6,
        rtol: 1e-4,
        ..Default::default()
    };
    for (k, (name, cfg)) in configs().into_iter().enumerate() {
        let f = layer_fn(cfg);
        let xs = inputs(&cfg, 2, 4, 10 * k as u64);
        let r = gradcheck(&f, &xs, opts).unwrap();
        assert!(r.passed, "{name}: gradcheck {r:?}");
        let r = gradgradcheck(&f, &xs, opts).unwrap();
        assert!(r.passed, "{name}: gradgradcheck {r:?}");
    }
}

#[test]
fn forward_mode_is_native_and_agrees_with_reverse_mode() {
    for (k, (name, cfg)) in configs().into_iter().enumerate() {
        let f = layer_fn(cfg);
        let xs = inputs(&cfg, 2, 4, 50 + 10 * k as u64);
        let ts: Vec<Tensor> = xs
            .iter()
            .enumerate()
            .map(|(i, x)| rn(x.dims(), 900 + i as u64, DType::F64))
            .collect();
        support::assert_jvp_agrees_with_vjp(name, &f, &xs, &ts);
    }
}

#[test]
fn output_i_depends_on_no_input_after_i() {
    for backward in [DecayBackward::Autograd, DecayBackward::HandWritten] {
        let cfg = tiny(backward);
        let params = random_params(&cfg, 7, DType::F64);
        let named: Vec<(String, Tensor)> = cfg
            .parameter_shapes()
            .into_iter()
            .map(|(n, _)| n)
            .zip(params)
            .collect();
        let layer = MlstmLayer::from_tensors(&cfg, &named).unwrap();
        let x = rn(&[2, 5, 4], 8, DType::F64);
        let f = |t: &[Tensor]| Ok(vec![layer.forward(&t[0])?]);
        let jac = jacobian(&f, &[x.clone()], JacobianMode::Reverse).unwrap();
        let j = &jac[0][0];
        let (b, t, c) = (2, 5, 4);
        assert_eq!(j.dims(), &[b, t, c, b, t, c]);
        let v = j.to_vec_f64();
        let idx = |b1: usize, i: usize, c1: usize, b2: usize, jj: usize, c2: usize| {
            ((((b1 * t + i) * c + c1) * b + b2) * t + jj) * c + c2
        };
        let mut past = 0;
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
                                        "{backward:?}: y[{b1},{i},{c1}] depends on x[{b2},{jj},{c2}]"
                                    );
                                } else if jj < i && e != 0.0 {
                                    past += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        // strictly earlier positions do matter (through the conv and the cell)
        assert!(past > 0, "{backward:?}: no dependence on the past");
    }
}

/// Runs `step` over `x` from the zero state, position by position.
fn stepped(layer: &MlstmLayer, x: &Tensor) -> Tensor {
    let (b, s, e) = (x.dims()[0], x.dims()[1], x.dims()[2]);
    let mut state = layer.zero_state(b).unwrap();
    let mut ys = Vec::new();
    for t in 0..s {
        let x_t = x.narrow(1, t, 1).unwrap().reshape(&[b, e]).unwrap();
        let (y, next) = layer.step(&x_t, &state).unwrap();
        assert_eq!(y.dims(), &[b, e]);
        ys.push(y);
        state = next;
    }
    let refs: Vec<&Tensor> = ys.iter().collect();
    Tensor::stack(&refs, 1).unwrap()
}

#[test]
fn the_step_form_equals_the_parallel_form() {
    let mut worst = [0.0f64; 2];
    for (k, dtype) in [DType::F64, DType::F32].into_iter().enumerate() {
        for (kernel, random) in [(4, false), (4, true), (1, true), (0, true), (3, true)] {
            let cfg = MlstmLayerConfig {
                conv_kernel: kernel,
                ..MlstmLayerConfig::new(16, 2)
            };
            let layer = if random {
                let named: Vec<(String, Tensor)> = cfg
                    .parameter_shapes()
                    .into_iter()
                    .map(|(n, _)| n)
                    .zip(random_params(&cfg, 30, dtype))
                    .collect();
                MlstmLayer::from_tensors(&cfg, &named).unwrap()
            } else {
                MlstmLayer::new(&cfg, dtype, 5).unwrap()
            };
            let x = rn(&[2, 8, 16], 31, dtype);
            let par = layer.forward(&x).unwrap().to_vec_f64();
            let rec = stepped(&layer, &x).to_vec_f64();
            let d = max_rel_diff(&rec, &par);
            worst[k] = worst[k].max(d);
            assert!(
                d < 1e-5,
                "{dtype:?} kernel {kernel} random {random}: step vs parallel rel diff {d}"
            );
            // forward_recurrent does the same, and its final state carries on: the second
            // half from the state after the first half equals the parallel form's.
            let (first, state) = layer
                .forward_recurrent(&x.narrow(1, 0, 5).unwrap(), None)
                .unwrap();
            let (second, _) = layer
                .forward_recurrent(&x.narrow(1, 5, 3).unwrap(), Some(state))
                .unwrap();
            let both = Tensor::cat(&[&first, &second], 1).unwrap().to_vec_f64();
            let d = max_rel_diff(&both, &par);
            assert!(
                d < 1e-5,
                "{dtype:?} kernel {kernel}: resumed state rel diff {d}"
            );
        }
    }
    // In f64 the two forms differ only through the cell's 1e-6 added to the normaliser,
    // which they weigh by different stabilisers (see `mlstm_recurrent`); that is a per-head
    // scale of h, which the per-head norm divides out up to its own ε: far below 1e-5.
    assert!(worst[0] < 1e-6, "f64 worst {}", worst[0]);
    eprintln!(
        "step vs parallel, max rel diff: f64 {:.1e}, f32 {:.1e}",
        worst[0], worst[1]
    );
}

#[test]
fn the_hand_written_decay_backward_matches_autograd_through_the_layer() {
    let auto = layer_fn(tiny(DecayBackward::Autograd));
    let hand = layer_fn(tiny(DecayBackward::HandWritten));
    let xs = inputs(&tiny(DecayBackward::Autograd), 2, 4, 200);
    let opts = VerifyOptions::default()
        .tolerances(1e-12, 1e-9)
        .finite_differences(true)
        .seed(4);
    let r = verify_backward(&hand, &auto, &xs, opts).unwrap();
    assert!(r.passed(), "{r}");
    // and layer gradients of one loss, both ways, by name
    let cfg_a = tiny(DecayBackward::Autograd);
    let named: Vec<(String, Tensor)> = cfg_a
        .parameter_shapes()
        .into_iter()
        .map(|(n, _)| n)
        .zip(random_params(&cfg_a, 300, DType::F64))
        .collect();
    let mut layer = MlstmLayer::from_tensors(&cfg_a, &named).unwrap();
    let x = rn(&[2, 6, 4], 301, DType::F64).requires_grad_(true);
    let r = rn(&[2, 6, 4], 302, DType::F64);
    let mut grads = Vec::new();
    for backward in [DecayBackward::Autograd, DecayBackward::HandWritten] {
        layer.set_decay_backward(backward);
        let loss = layer
            .forward(&x)
            .unwrap()
            .mul(&r)
            .unwrap()
            .sum_all()
            .unwrap();
        let mut wrt = vec![x.clone()];
        wrt.extend(layer.parameters());
        let g = grad(&[loss], &wrt, None, GradOptions::default()).unwrap();
        grads.push(
            g.into_iter()
                .map(|t| t.unwrap().to_vec_f64())
                .collect::<Vec<_>>(),
        );
    }
    let names: Vec<String> = std::iter::once("x".to_string())
        .chain(layer.named_parameters().into_iter().map(|(n, _)| n))
        .collect();
    for ((a, h), n) in grads[0].iter().zip(&grads[1]).zip(&names) {
        let d = max_rel_diff(h, a);
        assert!(d < 1e-12, "gradient of {n}: rel diff {d}");
    }
}

#[test]
fn names_follow_xlstm_and_state_dicts_round_trip() {
    let cfg = MlstmLayerConfig::new(16, 2);
    let layer = MlstmLayer::new(&cfg, DType::F32, 1).unwrap();
    let names: Vec<String> = layer
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            "proj_up.weight",
            "q_proj.weight",
            "k_proj.weight",
            "v_proj.weight",
            "conv1d.conv.weight",
            "conv1d.conv.bias",
            "mlstm_cell.igate.weight",
            "mlstm_cell.igate.bias",
            "mlstm_cell.fgate.weight",
            "mlstm_cell.fgate.bias",
            "mlstm_cell.outnorm.weight",
            "learnable_skip",
            "proj_down.weight",
        ]
    );
    let other = MlstmLayer::new(&cfg, DType::F32, 2).unwrap();
    let x = rn(&[1, 3, 16], 3, DType::F32);
    assert_ne!(
        layer.forward(&x).unwrap().to_vec_f64(),
        other.forward(&x).unwrap().to_vec_f64()
    );
    let report = other.load_state_dict(&layer.state_dict(), true).unwrap();
    assert!(report.missing.is_empty() && report.unexpected.is_empty());
    assert_eq!(
        layer.forward(&x).unwrap().to_vec_f64(),
        other.forward(&x).unwrap().to_vec_f64()
    );
}

#[test]
fn dropout_follows_the_training_mode() {
    let cfg = MlstmLayerConfig {
        dropout: 0.5,
        ..MlstmLayerConfig::new(8, 2)
    };
    let mut layer = MlstmLayer::new(&cfg, DType::F64, 0).unwrap();
    let x = rn(&[1, 4, 8], 1, DType::F64);
    assert!(layer.is_training());
    let a = layer.forward(&x).unwrap().to_vec_f64();
    assert!(a.contains(&0.0));
    layer.eval();
    assert!(!layer.is_training());
    let b = layer.forward(&x).unwrap().to_vec_f64();
    assert!(!b.contains(&0.0));
    for (p, q) in a.iter().zip(&b) {
        assert!(*p == 0.0 || (p - 2.0 * q).abs() < 1e-12);
    }
}

fn err(r: Result<impl std::fmt::Debug>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn bad_inputs_and_configs_are_errors_naming_the_argument() {
    let cfg = MlstmLayerConfig::new(8, 2);
    let layer = MlstmLayer::new(&cfg, DType::F32, 0).unwrap();
    let zeros = |shape: &[usize], dtype| Tensor::zeros(shape, dtype).unwrap();

    // forward: wrong E, wrong rank, empty sequence, wrong dtype
    let e = err(layer.forward(&zeros(&[2, 3, 7], DType::F32)));
    assert!(
        e.contains("`x`") && e.contains("(B, S, 8)") && e.contains("[2, 3, 7]"),
        "{e}"
    );
    let e = err(layer.forward(&zeros(&[3, 8], DType::F32)));
    assert!(e.contains("`x`"), "{e}");
    let e = err(layer.forward(&zeros(&[2, 0, 8], DType::F32)));
    assert!(e.contains("`x`"), "{e}");
    let e = err(layer.forward(&zeros(&[2, 3, 8], DType::F64)));
    assert!(e.contains("`x`") && e.contains("F64"), "{e}");
    let e = err(layer.forward_recurrent(&zeros(&[2, 3, 9], DType::F32), None));
    assert!(e.contains("`x`"), "{e}");

    // step: wrong shape, wrong dtype, a state of another batch size
    let st = layer.zero_state(2).unwrap();
    let e = err(layer.step(&zeros(&[2, 1, 8], DType::F32), &st));
    assert!(e.contains("`x_t`"), "{e}");
    let e = err(layer.step(&zeros(&[2, 8], DType::F64), &st));
    assert!(e.contains("`x_t`") && e.contains("F64"), "{e}");
    let e = err(layer.step(&zeros(&[3, 8], DType::F32), &st));
    assert!(e.contains("`state`"), "{e}");
    let mut st2 = layer.zero_state(2).unwrap();
    st2.cell = layer.zero_state(1).unwrap().cell;
    let e = err(layer.step(&zeros(&[2, 8], DType::F32), &st2));
    assert!(e.contains("`state`"), "{e}");

    // configs
    let bad = |c: MlstmLayerConfig, field: &str| {
        let e = err(MlstmLayer::new(&c, DType::F32, 0));
        assert!(e.contains(&format!("`{field}`")), "{field}: {e}");
        assert!(c.validate().is_err());
    };
    bad(MlstmLayerConfig::new(0, 2), "embedding_dim");
    bad(MlstmLayerConfig::new(8, 0), "num_heads");
    bad(MlstmLayerConfig::new(8, 3), "num_heads");
    bad(
        MlstmLayerConfig {
            proj_factor: f64::NAN,
            ..cfg
        },
        "proj_factor",
    );
    bad(
        MlstmLayerConfig {
            proj_factor: -1.0,
            ..cfg
        },
        "proj_factor",
    );
    bad(
        MlstmLayerConfig {
            round_proj_up_to_multiple_of: 0,
            ..cfg
        },
        "round_proj_up_to_multiple_of",
    );
    bad(
        MlstmLayerConfig {
            qkv_proj_blocksize: 5,
            ..cfg
        },
        "qkv_proj_blocksize",
    );
    bad(
        MlstmLayerConfig {
            qkv_proj_blocksize: 0,
            ..cfg
        },
        "qkv_proj_blocksize",
    );
    bad(
        MlstmLayerConfig {
            dropout: 1.5,
            ..cfg
        },
        "dropout",
    );
    bad(
        MlstmLayerConfig {
            norm_eps: -1.0,
            ..cfg
        },
        "norm_eps",
    );
    bad(
        MlstmLayerConfig {
            num_blocks: 0,
            ..cfg
        },
        "num_blocks",
    );

    // from_tensors: missing, unexpected, repeated, mis-shaped, mixed dtypes
    let named = layer.named_parameters();
    let e = err(MlstmLayer::from_tensors(&cfg, &named[..named.len() - 1]));
    assert!(e.contains("missing parameter `proj_down.weight`"), "{e}");
    let mut extra = named.clone();
    extra.push(("proj_down.bias".into(), zeros(&[8], DType::F32)));
    let e = err(MlstmLayer::from_tensors(&cfg, &extra));
    assert!(e.contains("unexpected parameter `proj_down.bias`"), "{e}");
    let mut twice = named.clone();
    twice.push(named[0].clone());
    let e = err(MlstmLayer::from_tensors(&cfg, &twice));
    assert!(e.contains("`proj_up.weight` given twice"), "{e}");
    let mut shaped = named.clone();
    shaped[1].1 = zeros(&[8, 4, 4], DType::F32);
    let e = err(MlstmLayer::from_tensors(&cfg, &shaped));
    assert!(
        e.contains("`q_proj.weight` must have shape [16, 4, 4]"),
        "{e}"
    );
    let mut mixed = named.clone();
    mixed[2].1 = zeros(&[16, 4, 4], DType::F64);
    let e = err(MlstmLayer::from_tensors(&cfg, &mixed));
    assert!(e.contains("`k_proj.weight` has dtype F64"), "{e}");
}

/// The PyTorch golden file written by `tests/golden/mlstm/make_mlstm_golden.py`: an
/// independent implementation of the same layer (B = 2, S = 8, E = 16, NH = 2, inner 64)
/// with fixed f32 weights under the layer's parameter names, evaluated in f64.
#[test]
fn matches_the_pytorch_golden_file() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/mlstm/mlstm_layer.safetensors"
    );
    let file = eingrad::io::load_safetensors(path).unwrap();
    let get = |name: &str| {
        file.get(name)
            .unwrap_or_else(|| panic!("{name} missing from the golden file"))
            .clone()
    };
    let cfg = MlstmLayerConfig::new(16, 2);
    assert_eq!(cfg.inner_dim(), 64);
    let dict: StateDict = cfg
        .parameter_shapes()
        .into_iter()
        .map(|(n, _)| {
            let t = get(&n);
            (n, t)
        })
        .collect();
    assert_eq!(
        dict.len() + 4 + cfg.parameter_shapes().len(),
        file.tensors.len(),
        "the file holds the parameters, their gradients and the four golden.* tensors"
    );
    // f32: the layer as loaded; f64: the same f32 values widened (the reference ran in f64).
    // |a − r| ≤ rtol·max|r| + atol per tensor; atol covers the input-gate bias gradient, a
    // near-cancelling sum of O(1) terms (a uniform shift of ĩ only moves the stabiliser).
    for (dtype, rtol, atol) in [(DType::F32, 1e-4, 1e-6), (DType::F64, 1e-6, 1e-7)] {
        let layer = MlstmLayer::new(&cfg, dtype, 0).unwrap();
        // detached: to_dtype to the same dtype returns the file's own handle (as PyTorch's
        // `.to`), and marking that requires_grad would make the f64 pass record the cast.
        let cast = |t: Tensor| t.to_dtype(dtype).unwrap().detach();
        let dict: StateDict = dict
            .iter()
            .map(|(n, t)| (n.to_string(), cast(t.clone())))
            .collect();
        let report = layer.load_state_dict(&dict, true).unwrap();
        assert!(report.missing.is_empty() && report.unexpected.is_empty());
        let x = cast(get("golden.input")).requires_grad_(true);
        let y = layer.forward(&x).unwrap();
        let mut checks = vec![("output".to_string(), y.clone(), get("golden.output"))];
        y.mul(&cast(get("golden.cotangent")))
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        checks.push((
            "input gradient".into(),
            x.grad().unwrap(),
            get("golden.input_grad"),
        ));
        for (n, p) in layer.named_parameters() {
            let want = get(&format!("golden.grad.{n}"));
            checks.push((format!("gradient of {n}"), p.grad().unwrap(), want));
        }
        for (what, got, want) in checks {
            assert_eq!(got.dims(), want.dims(), "{what}");
            let (got, want) = (got.to_vec_f64(), want.to_vec_f64());
            let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let err = got
                .iter()
                .zip(&want)
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                err <= rtol * scale + atol,
                "{dtype:?} {what}: max abs err {err:.2e}, max |ref| {scale:.2e}"
            );
        }
    }
}
