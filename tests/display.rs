//! `Display` against PyTorch's `str(tensor)`: notation, column widths, 80-column wrapping,
//! summaries of tensors over 1000 elements, empty tensors and suffixes.
//!
//! The expected strings live in `tests/golden/display.json`, written by
//! `scripts/golden_display.py` with torch. This test never runs Python.

use eingrad::{DType, Tensor};
use serde::Deserialize;
use serde_json::Value;

const GOLDEN: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/golden/display.json"
));

#[derive(Deserialize)]
struct Golden {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    shape: Vec<usize>,
    dtype: String,
    requires_grad: bool,
    values: Vec<Value>,
    torch: String,
}

fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().expect("nan, inf or -inf"),
        v => v.as_f64().expect("a number"),
    }
}

fn build(c: &Case) -> Tensor {
    let dtype = if c.dtype == "f64" {
        DType::F64
    } else {
        DType::F32
    };
    let values: Vec<f64> = c.values.iter().map(num).collect();
    Tensor::from_f64s(&values, &c.shape, dtype)
        .unwrap()
        .requires_grad_(c.requires_grad)
}

#[test]
fn every_golden_case_prints_like_pytorch() {
    let golden: Golden = serde_json::from_str(GOLDEN).unwrap();
    assert!(golden.cases.len() >= 40);
    for c in &golden.cases {
        let t = build(c);
        // PyTorch printed each case with its dtype as the default, so without a dtype suffix.
        let mut text = t.to_string();
        if c.dtype == "f64" {
            text = text.replacen(", dtype=float64", "", 1);
        }
        assert_eq!(text, c.torch, "case {}", c.name);
    }
}

#[test]
fn float64_suffix_follows_pytorchs_line_rule() {
    // A short tensor keeps the suffix on its line ...
    let t = Tensor::from_f64s(&[1.5, 2.5], &[2], DType::F64).unwrap();
    assert_eq!(t.to_string(), "tensor([1.5000, 2.5000], dtype=float64)");
    // ... a full last line moves it to the next, indented like the values (torch's
    // `_add_suffixes`: last line length + suffix + 2 > 80).
    let values: Vec<f64> = (0..8).map(|i| i as f64 + 0.5).collect();
    let t = Tensor::from_f64s(&values, &[8], DType::F64).unwrap();
    assert_eq!(
        t.to_string(),
        "tensor([0.5000, 1.5000, 2.5000, 3.5000, 4.5000, 5.5000, 6.5000, 7.5000],\n       dtype=float64)"
    );
    // Empty tensors print their size before the dtype.
    let e = Tensor::zeros(&[2, 0], DType::F64).unwrap();
    assert_eq!(e.to_string(), "tensor([], size=(2, 0), dtype=float64)");
}

#[test]
fn recorded_tensors_name_their_op_and_leaves_say_they_require_grad() {
    let x = Tensor::from_f64s(&[0.0], &[1], DType::F32)
        .unwrap()
        .requires_grad_(true);
    assert_eq!(x.to_string(), "tensor([0.], requires_grad=True)");
    assert_eq!(x.exp().unwrap().to_string(), "tensor([1.], grad_fn=<exp>)");
    // A transposed (non-contiguous) view prints its logical order.
    let m = Tensor::arange(0.0, 6.0, 1.0, DType::F32)
        .unwrap()
        .reshape(&[2, 3])
        .unwrap()
        .t()
        .unwrap();
    assert_eq!(
        m.to_string(),
        "tensor([[0., 3.],\n        [1., 4.],\n        [2., 5.]])"
    );
}
