//! The layers of `nn` to orders 1 and 2 in f64 (with respect to the input and every
//! parameter), forward mode against reverse mode, causality of attention and the block,
//! fully masked attention rows, state dicts and their bad inputs.

mod support;

use eingrad::autograd::{grad, GradOptions};
use eingrad::func::{gradcheck, gradgradcheck, jacobian, GradcheckOptions, JacobianMode};
use eingrad::nn::{
    Activation, Block, BlockConfig, CausalSelfAttention, Conv1d, Dropout, Embedding, FeedForward,
    LayerNorm, Linear, Module, RMSNorm, StateDict,
};
use eingrad::{Conv1dOptions, DType, Padding, Result, Tensor};

type LayerFn = Box<dyn Fn(&[Tensor]) -> Result<Vec<Tensor>>>;

fn rn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, DType::F64, seed).unwrap()
}

fn lin(w: &Tensor, b: &Tensor) -> Linear {
    Linear::from_tensors(w.clone(), Some(b.clone())).unwrap()
}

/// `(name, inputs, f)`: each layer rebuilt from its inputs `[x, params...]`, so the checks
/// differentiate with respect to the parameters too.
fn cases() -> Vec<(&'static str, Vec<Tensor>, LayerFn)> {
    let c = 4;
    let mut v: Vec<(&'static str, Vec<Tensor>, LayerFn)> = Vec::new();
    v.push((
        "LayerNorm",
        vec![rn(&[2, 3, c], 1), rn(&[c], 2), rn(&[c], 3)],
        Box::new(|t| {
            let ln = LayerNorm::from_tensors(t[1].clone(), Some(t[2].clone()), 1e-5)?;
            Ok(vec![ln.forward(&t[0])?])
        }),
    ));
    v.push((
        "LayerNorm without bias, 2 trailing dims",
        vec![rn(&[2, 3, c], 4), rn(&[3, c], 5)],
        Box::new(|t| {
            let ln = LayerNorm::from_tensors(t[1].clone(), None, 1e-5)?;
            Ok(vec![ln.forward(&t[0])?])
        }),
    ));
    v.push((
        "RMSNorm",
        vec![rn(&[2, 3, c], 6), rn(&[c], 7)],
        Box::new(|t| {
            let n = RMSNorm::from_tensors(t[1].clone(), Some(1e-6))?;
            Ok(vec![n.forward(&t[0])?])
        }),
    ));
    v.push((
        "Embedding",
        vec![rn(&[5, 3], 8)],
        Box::new(|t| {
            let e = Embedding::from_weight(t[0].clone())?;
            Ok(vec![e.lookup(&[4, 0, 4, 2], &[2, 2])?])
        }),
    ));
    v.push((
        "Conv1d causal, dilation 2, groups 2",
        vec![rn(&[2, 4, 7], 9), rn(&[6, 2, 3], 10), rn(&[6], 11)],
        Box::new(|t| {
            let opts = Conv1dOptions::default()
                .padding(Padding::Causal)
                .dilation(2)
                .groups(2);
            let conv = Conv1d::from_tensors(t[1].clone(), Some(t[2].clone()), opts)?;
            Ok(vec![conv.forward(&t[0])?])
        }),
    ));
    v.push((
        "CausalSelfAttention",
        vec![
            rn(&[2, 3, c], 12),
            rn(&[3 * c, c], 13),
            rn(&[3 * c], 14),
            rn(&[c, c], 15),
            rn(&[c], 16),
        ],
        Box::new(|t| {
            let a =
                CausalSelfAttention::from_layers(lin(&t[1], &t[2]), lin(&t[3], &t[4]), 2, 0.0, 0)?;
            Ok(vec![a.forward(&t[0])?])
        }),
    ));
    v.push((
        "CausalSelfAttention with a padding mask and a fully masked row",
        vec![
            rn(&[2, 3, c], 17),
            rn(&[3 * c, c], 18),
            rn(&[3 * c], 19),
            rn(&[c, c], 20),
            rn(&[c], 21),
        ],
        Box::new(|t| {
            let a =
                CausalSelfAttention::from_layers(lin(&t[1], &t[2]), lin(&t[3], &t[4]), 2, 0.0, 0)?;
            // batch 0: key 0 padded (query 0 sees nothing); batch 1: key 2 padded.
            let pad = Tensor::from_vec(vec![1.0f64, 0.0, 0.0, 0.0, 0.0, 1.0], &[2, 3])?;
            Ok(vec![a.forward_masked(&t[0], Some(&pad))?])
        }),
    ));
    v.push((
        "Block (tanh GELU)",
        vec![
            rn(&[1, 3, c], 22),
            rn(&[c], 23),
            rn(&[c], 24),
            rn(&[3 * c, c], 25),
            rn(&[3 * c], 26),
            rn(&[c, c], 27),
            rn(&[c], 28),
            rn(&[c], 29),
            rn(&[c], 30),
            rn(&[4 * c, c], 31),
            rn(&[4 * c], 32),
            rn(&[c, 4 * c], 33),
            rn(&[c], 34),
        ],
        Box::new(|t| {
            let ln_1 = LayerNorm::from_tensors(t[1].clone(), Some(t[2].clone()), 1e-5)?;
            let attn =
                CausalSelfAttention::from_layers(lin(&t[3], &t[4]), lin(&t[5], &t[6]), 2, 0.0, 0)?;
            let ln_2 = LayerNorm::from_tensors(t[7].clone(), Some(t[8].clone()), 1e-5)?;
            let mlp = FeedForward::from_layers(
                lin(&t[9], &t[10]),
                lin(&t[11], &t[12]),
                Activation::GeluTanh,
                0.0,
                0,
            )?;
            Ok(vec![
                Block::from_parts(ln_1, attn, ln_2, mlp)?.forward(&t[0])?
            ])
        }),
    ));
    v
}

#[test]
fn every_layer_passes_gradcheck_and_gradgradcheck_in_f64() {
    let opts = GradcheckOptions {
        atol: 1e-6,
        rtol: 1e-4,
        ..Default::default()
    };
    for (name, inputs, f) in cases() {
        let r = gradcheck(&*f, &inputs, opts).unwrap();
        assert!(r.passed, "{name}: gradcheck {r:?}");
        let r = gradgradcheck(&*f, &inputs, opts).unwrap();
        assert!(r.passed, "{name}: gradgradcheck {r:?}");
    }
}

#[test]
fn every_layer_pushes_forward_natively_and_agrees_with_its_vjp() {
    for (k, (name, inputs, f)) in cases().into_iter().enumerate() {
        let ts: Vec<Tensor> = inputs
            .iter()
            .enumerate()
            .map(|(i, x)| rn(x.dims(), 900 + 40 * k as u64 + i as u64))
            .collect();
        support::assert_jvp_agrees_with_vjp(name, &*f, &inputs, &ts);
    }
}

/// ∂out[b, i, :] / ∂x[b, j, :] must be exactly zero for j > i.
fn assert_causal(name: &str, f: &dyn Fn(&[Tensor]) -> Result<Vec<Tensor>>, x: &Tensor) {
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
    for bb in 0..b {
        for i in 0..t {
            for jj in 0..t {
                for c1 in 0..c {
                    for c2 in 0..c {
                        let e = v[idx(bb, i, c1, bb, jj, c2)];
                        if jj > i {
                            assert_eq!(
                                e, 0.0,
                                "{name}: out[{bb},{i},{c1}] depends on x[{bb},{jj},{c2}]"
                            );
                        } else if e != 0.0 {
                            nonzero_past += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(nonzero_past > 0, "{name}: the Jacobian is zero everywhere");
}

#[test]
fn attention_and_the_block_are_causal() {
    let attn = CausalSelfAttention::new(8, 2, true, 0.0, DType::F64, 3).unwrap();
    assert_causal(
        "attention",
        &|t: &[Tensor]| Ok(vec![attn.forward(&t[0])?]),
        &rn(&[2, 5, 8], 4),
    );
    let block = Block::new(&BlockConfig::new(8, 2), DType::F64, 5).unwrap();
    assert_causal(
        "block",
        &|t: &[Tensor]| Ok(vec![block.forward(&t[0])?]),
        &rn(&[2, 5, 8], 6),
    );
}

#[test]
fn a_fully_masked_row_is_zero_with_finite_derivatives_to_second_order() {
    let attn = CausalSelfAttention::new(4, 1, true, 0.0, DType::F64, 8).unwrap();
    let x = rn(&[1, 3, 4], 9).requires_grad_(true);
    let pad = Tensor::from_vec(vec![1.0f64, 1.0, 0.0], &[1, 3]).unwrap();
    let y = attn.forward_masked(&x, Some(&pad)).unwrap();
    let yv = y.to_vec_f64();
    assert!(yv.iter().all(|v| v.is_finite()));
    // queries 0 and 1 see only padded keys: their output is c_proj's bias
    let bias = attn.c_proj().bias().unwrap().to_vec_f64();
    assert_eq!(&yv[..4], &bias[..]);
    assert_eq!(&yv[4..8], &bias[..]);
    let loss = y.mul(&y).unwrap().sum_all().unwrap();
    let mut params = attn.parameters();
    params.insert(0, x.clone());
    let g = grad(
        &[loss],
        &params,
        None,
        GradOptions {
            create_graph: true,
            ..Default::default()
        },
    )
    .unwrap();
    for gi in g.iter().flatten() {
        assert!(gi.to_vec_f64().iter().all(|v| v.is_finite()));
    }
    let s = g[0].as_ref().unwrap().sum_all().unwrap();
    let h = grad(
        &[s],
        &params,
        None,
        GradOptions {
            allow_unused: true,
            ..Default::default()
        },
    )
    .unwrap();
    for hi in h.iter().flatten() {
        assert!(hi.to_vec_f64().iter().all(|v| v.is_finite()));
    }
}

#[test]
fn dropout_is_seeded_scaled_and_the_identity_in_eval() {
    let d = Dropout::new(0.25, 3).unwrap();
    let x = Tensor::ones(&[4000], DType::F64)
        .unwrap()
        .requires_grad_(true);
    let a = d.forward(&x).unwrap();
    let b = d.forward(&x).unwrap();
    assert_ne!(a.to_vec_f64(), b.to_vec_f64(), "each call draws a new mask");
    let d2 = Dropout::new(0.25, 3).unwrap();
    assert_eq!(
        d2.forward(&x).unwrap().to_vec_f64(),
        a.to_vec_f64(),
        "same seed, same stream"
    );
    d2.set_calls(1);
    assert_eq!(
        d2.forward(&x).unwrap().to_vec_f64(),
        b.to_vec_f64(),
        "resumable stream"
    );
    let kept = a.to_vec_f64().iter().filter(|&&v| v != 0.0).count() as f64 / 4000.0;
    assert!((kept - 0.75).abs() < 0.03, "{kept}");
    assert!(a
        .to_vec_f64()
        .iter()
        .all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-15));
    a.sum_all().unwrap().backward().unwrap();
    assert_eq!(
        x.grad().unwrap().to_vec_f64(),
        a.to_vec_f64(),
        "the gradient is the mask"
    );
    let mut d3 = Dropout::new(0.25, 3).unwrap();
    d3.eval();
    assert_eq!(d3.forward(&x).unwrap().to_vec_f64(), vec![1.0; 4000]);
    assert!(Dropout::new(-0.1, 0)
        .unwrap_err()
        .to_string()
        .contains("`p`"));
    assert!(Dropout::new(f64::NAN, 0).is_err());
}

#[test]
fn names_follow_pytorch_and_state_dicts_round_trip() {
    let block = Block::new(&BlockConfig::new(8, 2), DType::F32, 1).unwrap();
    let names: Vec<String> = block
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
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
            "mlp.c_proj.bias"
        ]
    );
    let other = Block::new(&BlockConfig::new(8, 2), DType::F32, 2).unwrap();
    let x = Tensor::randn(&[1, 4, 8], DType::F32, 3).unwrap();
    assert_ne!(
        block.forward(&x).unwrap().to_vec_f64(),
        other.forward(&x).unwrap().to_vec_f64()
    );
    let report = other.load_state_dict(&block.state_dict(), true).unwrap();
    assert!(report.missing.is_empty() && report.unexpected.is_empty());
    assert_eq!(
        block.forward(&x).unwrap().to_vec_f64(),
        other.forward(&x).unwrap().to_vec_f64()
    );
    // the loaded values went into the parameters in place: handles taken before see them
    let p = other.parameters();
    assert_eq!(p[0].to_vec_f64(), block.parameters()[0].to_vec_f64());
}

#[test]
fn bad_state_dicts_name_the_key_and_load_nothing() {
    let block = Block::new(&BlockConfig::new(8, 2), DType::F32, 1).unwrap();
    let before = block.state_dict();
    let snapshot: Vec<Vec<f64>> = before.iter().map(|(_, t)| t.to_vec_f64()).collect();
    let source = Block::new(&BlockConfig::new(8, 2), DType::F32, 9)
        .unwrap()
        .state_dict();

    let mut missing: StateDict = source
        .clone()
        .into_vec()
        .into_iter()
        .filter(|(n, _)| n != "ln_2.bias")
        .collect();
    let e = block
        .load_state_dict(&missing, true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing keys [\"ln_2.bias\"]"), "{e}");
    let report = block.load_state_dict(&missing, false).unwrap();
    assert_eq!(report.missing, ["ln_2.bias"]);
    block.load_state_dict(&before, true).unwrap();

    missing.insert("ln_2.bias", Tensor::zeros(&[8], DType::F32).unwrap());
    missing.insert(
        "lm_head.weight",
        Tensor::zeros(&[3, 8], DType::F32).unwrap(),
    );
    let e = block
        .load_state_dict(&missing, true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unexpected keys [\"lm_head.weight\"]"), "{e}");

    let mut misshaped = source.clone();
    misshaped.insert(
        "attn.c_attn.weight",
        Tensor::zeros(&[24, 9], DType::F32).unwrap(),
    );
    let e = block
        .load_state_dict(&misshaped, false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`attn.c_attn.weight`: shape [24, 9]") && e.contains("[24, 8]"),
        "{e}"
    );

    let mut wrong_dtype = source.clone();
    wrong_dtype.insert("ln_1.weight", Tensor::ones(&[8], DType::F64).unwrap());
    let e = block
        .load_state_dict(&wrong_dtype, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`ln_1.weight`: dtype F64"), "{e}");

    let after: Vec<Vec<f64>> = block
        .state_dict()
        .iter()
        .map(|(_, t)| t.to_vec_f64())
        .collect();
    assert_eq!(after, snapshot, "a failed load changed the model");
}

#[test]
fn bad_layer_inputs_are_errors_naming_the_argument() {
    let ln = LayerNorm::new(&[4], 1e-5, true, DType::F32).unwrap();
    let e = ln
        .forward(&Tensor::zeros(&[2, 3], DType::F32).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("normalized_shape") && e.contains("`x`"), "{e}");
    assert!(ln
        .forward(&Tensor::zeros(&[2, 4], DType::F64).unwrap())
        .is_err());
    assert!(LayerNorm::new(&[], 1e-5, true, DType::F32)
        .unwrap_err()
        .to_string()
        .contains("normalized_shape"));
    assert!(LayerNorm::new(&[4], f64::NAN, true, DType::F32)
        .unwrap_err()
        .to_string()
        .contains("eps"));
    let attn = CausalSelfAttention::new(8, 2, true, 0.0, DType::F32, 0).unwrap();
    let e = attn
        .forward(&Tensor::zeros(&[2, 3, 7], DType::F32).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("`x`") && e.contains("(B, T, 8)"), "{e}");
    assert!(CausalSelfAttention::new(8, 3, true, 0.0, DType::F32, 0)
        .unwrap_err()
        .to_string()
        .contains("n_head"));
    let emb = Embedding::new(5, 2, DType::F32, 0).unwrap();
    let e = emb
        .forward(&Tensor::from_vec(vec![1.0f32, 2.5], &[2]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("ids") && e.contains("2.5"), "{e}");
    assert!(emb
        .forward(&Tensor::from_vec(vec![5.0f32], &[1]).unwrap())
        .is_err());
    let e = Conv1d::new(
        4,
        6,
        3,
        Conv1dOptions::default().groups(4),
        true,
        DType::F32,
        0,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("groups"), "{e}");
    let conv = Conv1d::new(4, 4, 3, Conv1dOptions::default(), true, DType::F32, 0).unwrap();
    assert!(conv
        .forward(&Tensor::zeros(&[1, 3, 8], DType::F32).unwrap())
        .is_err());
}

#[test]
fn bad_layer_norm_and_generate_arguments_are_errors_naming_them() {
    let x = Tensor::zeros(&[2, 4], DType::F32).unwrap();
    let w3 = Tensor::ones(&[3], DType::F32).unwrap();
    let e = x
        .layer_norm(1, Some(&w3), None, 1e-5)
        .unwrap_err()
        .to_string();
    assert!(e.contains("layer_norm") && e.contains("`weight`"), "{e}");
    let e = x
        .layer_norm(1, None, Some(&w3), 1e-5)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`bias`"), "{e}");
    let w64 = Tensor::ones(&[4], DType::F64).unwrap();
    assert!(x.layer_norm(1, Some(&w64), None, 1e-5).is_err());
    let e = x.layer_norm(0, None, None, 1e-5).unwrap_err().to_string();
    assert!(e.contains("normalized_dims"), "{e}");
    let e = x
        .layer_norm(1, None, None, f64::NAN)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`eps`"), "{e}");

    use eingrad::models::gpt::{Gpt, GptConfig};
    let cfg = GptConfig {
        n_layer: 1,
        n_embd: 8,
        n_head: 2,
        block_size: 4,
        ..GptConfig::shakespeare_char(10)
    };
    let gpt = Gpt::new(cfg, DType::F32, 0).unwrap();
    let e = gpt.generate(&[], 3, 1.0, None, 0).unwrap_err().to_string();
    assert!(e.contains("`prompt`"), "{e}");
    let e = gpt
        .generate(&[1], 3, -1.0, None, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`temperature`"), "{e}");
    let e = gpt
        .generate(&[1], 3, 1.0, Some(0), 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`top_k`"), "{e}");
    assert!(
        gpt.generate(&[10], 3, 1.0, None, 0).is_err(),
        "an id outside the vocabulary"
    );
    let e = gpt.logits(&[1, 2, 3, 4, 5], 1, 5).unwrap_err().to_string();
    assert!(e.contains("block_size"), "{e}");
    let e = Gpt::new(GptConfig { n_head: 3, ..cfg }, DType::F32, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("n_head"), "{e}");
}
