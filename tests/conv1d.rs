//! conv1d: the seed's band Jacobians, values against a naive loop (stride, dilation, groups,
//! padding), first and second derivatives against finite differences, and errors that name
//! the argument.

use eingrad::autograd::{grad, GradOptions};
use eingrad::func::{gradcheck, gradgradcheck, GradcheckOptions};
use eingrad::ops::conv::{Conv1dOptions, Padding};
use eingrad::{DType, Result, Tensor};

/// PyTorch's conv1d by definition:
/// `y[b,o,i] = bias[o] + Σ_{c,m} w[o,c,m] · xpad[b, g·cin_g + c, i·stride + m·dilation]`.
fn naive(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    o: Conv1dOptions,
) -> (Vec<f64>, Vec<usize>) {
    let (xv, wv) = (x.to_vec_f64(), w.to_vec_f64());
    let bv = bias.map(|b| b.to_vec_f64());
    let (nb, cin, len) = (x.dims()[0], x.dims()[1], x.dims()[2]);
    let (cout, cin_g, k) = (w.dims()[0], w.dims()[1], w.dims()[2]);
    let (left, right) = o.padding.amounts(k, o.dilation);
    let span = o.dilation * (k - 1) + 1;
    let lout = (len + left + right - span) / o.stride + 1;
    let cout_g = cout / o.groups;
    let xpad = |b: usize, c: usize, p: usize| -> f64 {
        if p < left || p - left >= len {
            0.0
        } else {
            xv[(b * cin + c) * len + p - left]
        }
    };
    let mut y = vec![0.0; nb * cout * lout];
    for b in 0..nb {
        for oc in 0..cout {
            let g = oc / cout_g;
            for i in 0..lout {
                let mut s = bv.as_ref().map_or(0.0, |bv| bv[oc]);
                for c in 0..cin_g {
                    for m in 0..k {
                        let wm = wv[(oc * cin_g + c) * k + m];
                        s += wm * xpad(b, g * cin_g + c, i * o.stride + m * o.dilation);
                    }
                }
                y[(b * cout + oc) * lout + i] = s;
            }
        }
    }
    (y, vec![nb, cout, lout])
}

fn assert_close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-10 * (1.0 + y.abs()),
            "{what}: entry {i}: {x} vs {y}"
        );
    }
}

/// Jacobian of `y` (a function of `x`) built row by row as VJPs with one-hot cotangents.
fn jacobian_rows(y: &Tensor, x: &Tensor) -> Vec<Vec<f64>> {
    let n = y.numel();
    (0..n)
        .map(|r| {
            let mut e = vec![0.0; n];
            e[r] = 1.0;
            let onehot = Tensor::from_f64s(&e, y.dims(), DType::F64).unwrap();
            let g = grad(
                std::slice::from_ref(y),
                std::slice::from_ref(x),
                Some(&[onehot]),
                GradOptions::default().retain_graph(true),
            )
            .unwrap();
            g[0].as_ref().unwrap().to_vec_f64()
        })
        .collect()
}

fn band(rows: usize, cols: usize, keep: impl Fn(isize, isize) -> bool) -> Vec<Vec<f64>> {
    (0..rows)
        .map(|i| {
            (0..cols)
                .map(|j| {
                    if keep(i as isize, j as isize) {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect()
}

#[test]
fn seed_band_jacobian_without_padding() {
    let x = Tensor::randn(&[1, 1, 10], DType::F64, 0)
        .unwrap()
        .requires_grad_(true);
    let w = Tensor::ones(&[1, 1, 3], DType::F64).unwrap();
    let y = x.conv1d(&w, None, Conv1dOptions::default()).unwrap();
    assert_eq!(y.dims(), &[1, 1, 8]);
    let j = jacobian_rows(&y, &x);
    assert_eq!(j, band(8, 10, |i, j| i <= j && j <= i + 2));
}

#[test]
fn seed_band_jacobian_with_causal_padding() {
    let x = Tensor::randn(&[1, 1, 10], DType::F64, 1)
        .unwrap()
        .requires_grad_(true);
    let w = Tensor::ones(&[1, 1, 3], DType::F64).unwrap();
    let want = band(10, 10, |i, j| i - 2 <= j && j <= i);
    for padding in [Padding::Causal, Padding::LeftRight(2, 0)] {
        let y = x
            .conv1d(&w, None, Conv1dOptions::default().padding(padding))
            .unwrap();
        assert_eq!(y.dims(), &[1, 1, 10], "{padding:?}");
        assert_eq!(jacobian_rows(&y, &x), want, "{padding:?}");
    }
}

#[test]
fn hand_computed_values() {
    // x = 1..5, w = [1, 0, -1]: y[i] = x[i] − x[i+2] = −2; with bias 0.5
    let x = Tensor::arange(1.0, 6.0, 1.0, DType::F64)
        .unwrap()
        .reshape(&[1, 1, 5])
        .unwrap();
    let w = Tensor::from_vec(vec![1.0f64, 0.0, -1.0], &[1, 1, 3]).unwrap();
    let b = Tensor::from_vec(vec![0.5f64], &[1]).unwrap();
    let y = x.conv1d(&w, Some(&b), Conv1dOptions::default()).unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![-1.5, -1.5, -1.5]);
    // symmetric padding 1: xpad = 0,1,2,3,4,5,0
    let y = x
        .conv1d(
            &w,
            None,
            Conv1dOptions::default().padding(Padding::Symmetric(1)),
        )
        .unwrap();
    assert_eq!(
        y.to_vec::<f64>().unwrap(),
        vec![-2.0, -2.0, -2.0, -2.0, 4.0]
    );
    // stride 2: windows at 0 and 2
    let y = x
        .conv1d(&w, None, Conv1dOptions::default().stride(2))
        .unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![-2.0, -2.0]);
    // dilation 2, k = 2, w = [1, −1]: y[i] = x[i] − x[i+2]
    let w2 = Tensor::from_vec(vec![1.0f64, -1.0], &[1, 1, 2]).unwrap();
    let y = x
        .conv1d(&w2, None, Conv1dOptions::default().dilation(2))
        .unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![-2.0, -2.0, -2.0]);
}

/// (input shape, weight shape, with bias, options) cases compared with the naive loop.
fn cases() -> Vec<([usize; 3], [usize; 3], bool, Conv1dOptions)> {
    let d = Conv1dOptions::default();
    vec![
        ([2, 3, 9], [4, 3, 3], true, d),
        ([2, 3, 9], [4, 3, 3], false, d.stride(2)),
        ([1, 2, 11], [3, 2, 3], true, d.dilation(2)),
        ([2, 4, 8], [6, 2, 3], true, d.groups(2)),
        (
            [1, 6, 7],
            [6, 2, 2],
            false,
            d.groups(3).padding(Padding::Symmetric(1)),
        ),
        (
            [2, 2, 10],
            [2, 1, 3],
            true,
            d.stride(2).dilation(2).groups(2).padding(Padding::Causal),
        ),
        (
            [1, 2, 6],
            [2, 2, 3],
            true,
            d.stride(3).padding(Padding::LeftRight(0, 2)),
        ),
        ([1, 1, 3], [1, 1, 3], true, d),
    ]
}

#[test]
fn matches_naive_loop() {
    for (n, (xs, ws, with_bias, o)) in cases().into_iter().enumerate() {
        let x = Tensor::randn(&xs, DType::F64, 10 + n as u64).unwrap();
        let w = Tensor::randn(&ws, DType::F64, 20 + n as u64).unwrap();
        let b = Tensor::randn(&[ws[0]], DType::F64, 30 + n as u64).unwrap();
        let b = with_bias.then_some(&b);
        let y = x.conv1d(&w, b, o).unwrap();
        let (want, shape) = naive(&x, &w, b, o);
        assert_eq!(y.dims(), shape.as_slice(), "case {n}: {o:?}");
        assert_close(
            &y.to_vec::<f64>().unwrap(),
            &want,
            &format!("case {n}: {o:?}"),
        );
    }
}

#[test]
fn works_in_f32() {
    let x = Tensor::randn(&[2, 4, 8], DType::F64, 3).unwrap();
    let w = Tensor::randn(&[2, 2, 3], DType::F64, 4).unwrap();
    let o = Conv1dOptions::default().groups(2).stride(2);
    let (want, _) = naive(&x, &w, None, o);
    let y = x
        .to_dtype(DType::F32)
        .unwrap()
        .conv1d(&w.to_dtype(DType::F32).unwrap(), None, o)
        .unwrap();
    assert_eq!(y.dtype(), DType::F32);
    for (a, b) in y.to_vec_f64().iter().zip(&want) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
}

#[test]
fn gradients_orders_one_and_two() {
    for (n, (xs, ws, with_bias, o)) in cases().into_iter().enumerate() {
        let mut inputs = vec![
            Tensor::randn(&xs, DType::F64, 40 + n as u64).unwrap(),
            Tensor::randn(&ws, DType::F64, 50 + n as u64).unwrap(),
        ];
        if with_bias {
            inputs.push(Tensor::randn(&[ws[0]], DType::F64, 60 + n as u64).unwrap());
        }
        let f = move |t: &[Tensor]| -> Result<Vec<Tensor>> {
            let y = t[0].conv1d(&t[1], t.get(2), o)?;
            Ok(vec![y.tanh()?])
        };
        let r = gradcheck(&f, &inputs, GradcheckOptions::default()).unwrap();
        assert!(r.passed, "case {n} {o:?}, order 1: {}", r.worst);
        let r = gradgradcheck(&f, &inputs, GradcheckOptions::default()).unwrap();
        assert!(r.passed, "case {n} {o:?}, order 2: {}", r.worst);
    }
}

fn err(x: &[usize], w: &[usize], bias: Option<&[usize]>, o: Conv1dOptions) -> String {
    let x = Tensor::zeros(x, DType::F64).unwrap();
    let w = Tensor::zeros(w, DType::F64).unwrap();
    let b = bias.map(|b| Tensor::zeros(b, DType::F64).unwrap());
    match x.conv1d(&w, b.as_ref(), o) {
        Ok(y) => panic!("expected an error, got shape {:?}", y.dims()),
        Err(e) => e.to_string(),
    }
}

fn assert_mentions(e: &str, needles: &[&str]) {
    for n in needles {
        assert!(e.contains(n), "error {e:?} should mention {n:?}");
    }
}

#[test]
fn bad_inputs_name_the_argument() {
    let d = Conv1dOptions::default();
    assert_mentions(
        &err(&[3, 8], &[1, 3, 3], None, d),
        &["conv1d", "input", "rank 3", "[3, 8]"],
    );
    assert_mentions(
        &err(&[1, 3, 8], &[3, 3], None, d),
        &["conv1d", "weight", "rank 3", "[3, 3]"],
    );
    assert_mentions(
        &err(&[1, 3, 8], &[2, 2, 3], None, d),
        &["conv1d", "[1, 3, 8]", "[2, 2, 3]", "c_in = 3"],
    );
    assert_mentions(
        &err(&[1, 4, 8], &[3, 2, 3], None, d.groups(2)),
        &["conv1d", "weight", "c_out = 3", "groups = 2"],
    );
    assert_mentions(
        &err(&[1, 4, 8], &[2, 4, 3], None, d.groups(2)),
        &["conv1d", "groups", "c_in = 4"],
    );
    assert_mentions(
        &err(&[1, 3, 8], &[2, 3, 3], Some(&[3]), d),
        &["conv1d", "bias", "[3]"],
    );
    assert_mentions(
        &err(&[1, 3, 8], &[2, 3, 3], Some(&[2, 1]), d),
        &["conv1d", "bias"],
    );
    assert_mentions(
        &err(&[1, 3, 8], &[2, 3, 3], None, d.stride(0)),
        &["conv1d", "stride"],
    );
    assert_mentions(
        &err(&[1, 3, 8], &[2, 3, 3], None, d.dilation(0)),
        &["conv1d", "dilation"],
    );
    assert_mentions(
        &err(&[1, 3, 8], &[2, 3, 3], None, d.groups(0)),
        &["conv1d", "groups"],
    );
    assert_mentions(
        &err(&[1, 3, 2], &[2, 3, 3], None, d),
        &["conv1d", "input", "length 2", "span"],
    );
    assert_mentions(
        &err(&[1, 3, 8], &[2, 3, 3], None, d.dilation(4)),
        &["conv1d", "input", "span"],
    );
    assert_mentions(
        &err(&[1, 3, 8], &[2, 3, 0], None, d),
        &["conv1d", "weight", "kernel size is 0"],
    );
    // dtypes
    let x = Tensor::zeros(&[1, 1, 4], DType::F64).unwrap();
    let w = Tensor::zeros(&[1, 1, 2], DType::F32).unwrap();
    let e = x.conv1d(&w, None, d).unwrap_err().to_string();
    assert_mentions(&e, &["conv1d", "F32"]);
    // a short input is fine once padded
    let x = Tensor::zeros(&[1, 1, 1], DType::F64).unwrap();
    let w = Tensor::zeros(&[1, 1, 3], DType::F64).unwrap();
    assert_eq!(
        x.conv1d(&w, None, d.padding(Padding::Causal))
            .unwrap()
            .dims(),
        &[1, 1, 1]
    );
}
