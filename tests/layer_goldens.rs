//! The nn layers against PyTorch: forward value, input gradient and every parameter gradient
//! of `sum(y * r)` for weights PyTorch initialised, read from the safetensors file that
//! `tests/golden/layers/make_layer_goldens.py` wrote (f32, to f32 tolerance).

use eingrad::autograd::grad;
use eingrad::nn::{
    Activation, Block, BlockConfig, CausalSelfAttention, Conv1d, Embedding, LayerNorm, Module,
    RMSNorm, StateDict,
};
use eingrad::{Conv1dOptions, DType, Padding, Tensor};

fn golden() -> eingrad::io::SafeTensorsFile {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/layers/layers.safetensors"
    );
    eingrad::io::load_safetensors(path).unwrap()
}

fn get(g: &eingrad::io::SafeTensorsFile, name: &str) -> Tensor {
    g.get(name)
        .unwrap_or_else(|| panic!("the golden file has no `{name}`"))
        .clone()
}

/// The case's parameters as a state dict under the layer's own names.
fn params_of(g: &eingrad::io::SafeTensorsFile, key: &str) -> StateDict {
    let prefix = format!("{key}.");
    g.tensors
        .iter()
        .filter_map(|(n, t)| {
            let rest = n.strip_prefix(&prefix)?;
            if ["x", "r", "y", "mask", "ids"].contains(&rest) || rest.starts_with("grad.") {
                None
            } else {
                Some((rest.to_string(), t.clone()))
            }
        })
        .collect()
}

fn assert_close(what: &str, got: &Tensor, want: &Tensor, tol: f64) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let (g, w) = (got.to_vec_f64(), want.to_vec_f64());
    let scale = w.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1.0);
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!(
            (a - b).abs() <= tol * scale,
            "{what}[{i}]: eingrad {a}, PyTorch {b} (tolerance {tol} × {scale})"
        );
    }
}

/// Loads the case into `layer`, runs `forward`, and checks y and every gradient.
fn check(key: &str, layer: &dyn Module, forward: &dyn Fn(&Tensor) -> eingrad::Result<Tensor>) {
    let g = golden();
    let report = layer.load_state_dict(&params_of(&g, key), true).unwrap();
    assert!(report.missing.is_empty() && report.unexpected.is_empty());
    let x = get(&g, &format!("{key}.x")).requires_grad_(true);
    let y = forward(&x).unwrap();
    assert_close(
        &format!("{key}: y"),
        &y,
        &get(&g, &format!("{key}.y")),
        2e-5,
    );
    let loss = y
        .mul(&get(&g, &format!("{key}.r")))
        .unwrap()
        .sum_all()
        .unwrap();
    let named = layer.named_parameters();
    let mut wrt: Vec<Tensor> = named.iter().map(|(_, t)| t.clone()).collect();
    wrt.push(x.clone());
    let grads = grad(&[loss], &wrt, None, Default::default()).unwrap();
    for ((name, _), gr) in named.iter().zip(&grads) {
        let want = get(&g, &format!("{key}.grad.{name}"));
        assert_close(
            &format!("{key}: grad {name}"),
            gr.as_ref().unwrap(),
            &want,
            5e-5,
        );
    }
    assert_close(
        &format!("{key}: grad x"),
        grads.last().unwrap().as_ref().unwrap(),
        &get(&g, &format!("{key}.grad.x")),
        5e-5,
    );
}

const C: usize = 16;
const H: usize = 4;

#[test]
fn layer_norm_with_and_without_bias() {
    let ln = LayerNorm::new(&[C], 1e-5, true, DType::F32).unwrap();
    check("layer_norm", &ln, &|x| ln.forward(x));
    let ln = LayerNorm::new(&[C], 1e-5, false, DType::F32).unwrap();
    check("layer_norm_no_bias", &ln, &|x| ln.forward(x));
}

#[test]
fn rms_norm() {
    let n = RMSNorm::new(&[C], Some(1e-6), DType::F32).unwrap();
    check("rms_norm", &n, &|x| n.forward(x));
}

#[test]
fn attention_with_and_without_a_padding_mask() {
    let a = CausalSelfAttention::new(C, H, true, 0.0, DType::F32, 0).unwrap();
    check("attention", &a, &|x| a.forward(x));
    let mask = get(&golden(), "attention_padded.mask");
    check("attention_padded", &a, &|x| {
        a.forward_masked(x, Some(&mask))
    });
}

#[test]
fn transformer_block_with_and_without_biases() {
    let b = Block::new(&BlockConfig::new(C, H), DType::F32, 0).unwrap();
    check("block", &b, &|x| b.forward(x));
    let cfg = BlockConfig {
        bias: false,
        activation: Activation::Gelu,
        ..BlockConfig::new(C, H)
    };
    let b = Block::new(&cfg, DType::F32, 0).unwrap();
    check("block_no_bias", &b, &|x| b.forward(x));
}

#[test]
fn causal_dilated_grouped_conv1d() {
    let opts = Conv1dOptions::default()
        .padding(Padding::Causal)
        .dilation(2)
        .groups(2);
    let conv = Conv1d::new(6, 4, 3, opts, true, DType::F32, 0).unwrap();
    check("conv1d_causal", &conv, &|x| conv.forward(x));
}

#[test]
fn embedding_lookup_and_its_gradient() {
    let g = golden();
    let emb = Embedding::new(10, C, DType::F32, 0).unwrap();
    emb.load_state_dict(&params_of(&g, "embedding"), true)
        .unwrap();
    let ids = get(&g, "embedding.ids");
    let y = emb.forward(&ids).unwrap();
    assert_close("embedding: y", &y, &get(&g, "embedding.y"), 0.0);
    let loss = y.mul(&get(&g, "embedding.r")).unwrap().sum_all().unwrap();
    let gw = grad(&[loss], &[emb.weight().clone()], None, Default::default()).unwrap();
    assert_close(
        "embedding: grad weight",
        gw[0].as_ref().unwrap(),
        &get(&g, "embedding.grad.weight"),
        1e-6,
    );
}
