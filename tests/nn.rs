//! nn and optim: layers, init, losses and optimizers against hand math, finite differences
//! and PyTorch.
//!
//! The PyTorch reference values below were produced once with this script
//! (/work/ref-venv/bin/python, torch in float64) and embedded:
//!
//! ```python
//! import torch, torch.nn.functional as F
//! torch.set_default_dtype(torch.float64)
//! def p(name, t): print(name, [float(v) for v in t.flatten()])
//! pred = torch.tensor([[0.5, -1.2, 3.0], [2.0, 0.1, -0.7]])
//! tgt = torch.tensor([[1.0, 0.0, 2.5], [-1.0, 0.3, 0.2]])
//! for r in ["mean", "sum", "none"]: p("mse_"+r, F.mse_loss(pred, tgt, reduction=r))
//! logits = torch.tensor([[1.0, 2.0, 0.5, -1.0], [0.3, -0.2, 2.2, 0.0],
//!                        [-1.5, 0.5, 0.25, 3.0]], requires_grad=True)
//! y = torch.tensor([2, 0, 3])
//! for r in ["mean", "sum", "none"]: p("ce_"+r, F.cross_entropy(logits, y, reduction=r))
//! F.cross_entropy(logits, y).backward(); p("ce_grad", logits.grad)
//! x = torch.tensor([-3.0, -0.5, 0.0, 0.7, 4.0, 50.0])
//! t = torch.tensor([0.0, 1.0, 0.5, 1.0, 0.0, 1.0])
//! for r in ["mean", "none"]: p("bce_"+r, F.binary_cross_entropy_with_logits(x, t, reduction=r))
//! a = torch.tensor([1.0, 2.0, 0.5]); b = torch.tensor([0.1, -0.3, 0.2])
//! cfgs = {
//!  "sgd": (torch.optim.SGD, dict(lr=0.1)),
//!  "sgd_mom_wd": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
//!  "sgd_damp": (torch.optim.SGD, dict(lr=0.1, momentum=0.5, dampening=0.3)),
//!  "sgd_nesterov": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
//!  "adam": (torch.optim.Adam, dict(lr=0.1)),
//!  "adam_wd": (torch.optim.Adam, dict(lr=0.1, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
//!  "adamw": (torch.optim.AdamW, dict(lr=0.1, weight_decay=0.1)),
//! }
//! for name, (cls, kw) in cfgs.items():
//!     xx = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
//!     opt = cls([xx], foreach=False, **kw)
//!     traj = []
//!     for _ in range(5):
//!         opt.zero_grad()
//!         ((a * xx * xx).sum() + (b * xx).sum()).backward()
//!         opt.step()
//!         traj.append(xx.detach().clone())
//!     p("opt_"+name+"_step1", traj[0]); p("opt_"+name+"_step5", traj[4])
//! ```

use std::time::Instant;

use eingrad::func::{gradcheck, gradgradcheck, GradcheckOptions};
use eingrad::nn::init::{self, FanMode, Nonlinearity};
use eingrad::nn::{
    binary_cross_entropy_with_logits, cross_entropy, mse_loss, Activation, Linear, Mlp, Module,
    Reduction, Sequential,
};
use eingrad::optim::{clip_grad_norm, Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use eingrad::{DType, Result, Tensor};

fn t64(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_f64s(v, shape, DType::F64).unwrap()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w} (all: {got:?})"
        );
    }
}

fn check(r: eingrad::func::GradcheckReport, what: &str) {
    assert!(r.passed, "{what}: {}", r.worst);
}

// ---------------------------------------------------------------- Linear

#[test]
fn linear_forward_matches_hand_math() {
    // W (2, 3), b (2); x (2, 2, 3): any leading dims.
    let w = [1.0, -2.0, 0.5, 0.0, 3.0, -1.0];
    let b = [0.25, -0.75];
    let x: Vec<f64> = (0..12).map(|i| i as f64 * 0.5 - 2.0).collect();
    let lin = Linear::from_tensors(t64(&w, &[2, 3]), Some(t64(&b, &[2]))).unwrap();
    assert!(lin.weight().requires_grad() && lin.weight().is_leaf());
    let y = lin.forward(&t64(&x, &[2, 2, 3])).unwrap();
    assert_eq!(y.dims(), &[2, 2, 2]);
    let mut want = Vec::new();
    for row in x.chunks(3) {
        for o in 0..2 {
            want.push((0..3).map(|i| row[i] * w[o * 3 + i]).sum::<f64>() + b[o]);
        }
    }
    assert_close(&y.to_vec::<f64>().unwrap(), &want, 1e-15, "linear");
    // no bias, a single sample of rank 1
    let nb = Linear::from_tensors(t64(&w, &[2, 3]), None).unwrap();
    assert_eq!(nb.parameters().len(), 1);
    let y1 = nb.forward(&t64(&x[..3], &[3])).unwrap();
    assert_close(
        &y1.to_vec::<f64>().unwrap(),
        &[want[0] - b[0], want[1] - b[1]],
        1e-15,
        "linear no bias",
    );
}

#[test]
fn linear_gradients_match_finite_differences() {
    let f = |xs: &[Tensor]| -> Result<Vec<Tensor>> {
        let lin = Linear::from_tensors(xs[1].clone(), Some(xs[2].clone()))?;
        Ok(vec![lin.forward(&xs[0])?.tanh()?])
    };
    let inputs = [
        Tensor::randn(&[2, 3, 4], DType::F64, 1).unwrap(),
        Tensor::randn(&[5, 4], DType::F64, 2).unwrap(),
        Tensor::randn(&[5], DType::F64, 3).unwrap(),
    ];
    check(
        gradcheck(&f, &inputs, GradcheckOptions::default()).unwrap(),
        "linear gradcheck",
    );
    check(
        gradgradcheck(&f, &inputs, GradcheckOptions::default()).unwrap(),
        "linear gradgradcheck",
    );
}

#[test]
fn linear_default_init_range_and_determinism() {
    let a = Linear::new(50, 20, true, DType::F32, 7).unwrap();
    let bound = 1.0 / 50f64.sqrt();
    for p in a.parameters() {
        assert!(p.is_leaf() && p.requires_grad());
        let v = p.to_vec_f64();
        assert!(v.iter().all(|x| x.abs() <= bound), "outside ±1/√in");
        // not degenerate: spread over most of the range
        let max = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        assert!(max > 0.8 * bound);
    }
    let b = Linear::new(50, 20, true, DType::F32, 7).unwrap();
    let c = Linear::new(50, 20, true, DType::F32, 8).unwrap();
    assert_eq!(a.weight().to_vec_f64(), b.weight().to_vec_f64());
    assert_eq!(
        a.bias().unwrap().to_vec_f64(),
        b.bias().unwrap().to_vec_f64()
    );
    assert_ne!(a.weight().to_vec_f64(), c.weight().to_vec_f64());
    // weight and bias come from different streams
    assert_ne!(
        a.weight().to_vec_f64()[..20],
        a.bias().unwrap().to_vec_f64()[..]
    );
    // Mlp layers are seeded independently and reproducibly
    let m1 = Mlp::new(&[4, 4, 4], Activation::Tanh, DType::F64, 3).unwrap();
    let m2 = Mlp::new(&[4, 4, 4], Activation::Tanh, DType::F64, 3).unwrap();
    assert_ne!(
        m1.layers()[0].weight().to_vec_f64(),
        m1.layers()[1].weight().to_vec_f64()
    );
    assert_eq!(
        m1.layers()[1].weight().to_vec_f64(),
        m2.layers()[1].weight().to_vec_f64()
    );
}

// ---------------------------------------------------------------- init

#[test]
fn init_schemes_ranges_statistics_and_in_place() {
    let shape = [64, 32];
    let k =
        init::kaiming_uniform(&shape, FanMode::FanIn, Nonlinearity::Relu, DType::F64, 1).unwrap();
    let kb = 2f64.sqrt() * (3.0 / 32.0f64).sqrt();
    let kv = k.to_vec_f64();
    assert!(kv.iter().all(|v| v.abs() <= kb) && kv.iter().any(|v| v.abs() > 0.95 * kb));
    let ko =
        init::kaiming_uniform(&shape, FanMode::FanOut, Nonlinearity::Relu, DType::F64, 1).unwrap();
    let kob = 2f64.sqrt() * (3.0 / 64.0f64).sqrt();
    assert!(ko.to_vec_f64().iter().all(|v| v.abs() <= kob));

    let x = init::xavier_uniform(&[16, 8, 3], 1.5, DType::F32, 2).unwrap();
    let xb = 1.5 * (6.0 / (24.0 + 48.0f64)).sqrt();
    assert!(x.to_vec_f64().iter().all(|v| v.abs() <= xb + 1e-7));

    let n = init::normal(&[20000], 0.5, 2.0, DType::F64, 3).unwrap();
    let nv = n.to_vec_f64();
    let mean = nv.iter().sum::<f64>() / nv.len() as f64;
    let var = nv.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / nv.len() as f64;
    assert!(
        (mean - 0.5).abs() < 0.05 && (var.sqrt() - 2.0).abs() < 0.05,
        "{mean} {var}"
    );

    let u = init::uniform(&[1000], -0.1, 0.3, DType::F32, 4).unwrap();
    assert!(u.requires_grad() && u.is_leaf());
    assert!(u
        .to_vec_f64()
        .iter()
        .all(|v| (-0.1 - 1e-7..=0.3 + 1e-7).contains(v)));

    let c = init::constant(&[3], 2.5, DType::F32).unwrap();
    assert_eq!(c.to_vec::<f32>().unwrap(), vec![2.5; 3]);
    assert!(init::zeros(&[2], DType::F64)
        .unwrap()
        .to_vec_f64()
        .iter()
        .all(|&v| v == 0.0));

    // in place: same tensor (id), same values as the fresh version with the same seed
    let p = init::zeros(&[64, 32], DType::F64).unwrap();
    let id = p.id();
    init::kaiming_uniform_(&p, FanMode::FanIn, Nonlinearity::Relu, 1).unwrap();
    assert_eq!(p.id(), id);
    assert_eq!(p.to_vec_f64(), kv);
    init::xavier_uniform_(&p, 1.0, 9).unwrap();
    assert_eq!(
        p.to_vec_f64(),
        init::xavier_uniform(&[64, 32], 1.0, DType::F64, 9)
            .unwrap()
            .to_vec_f64()
    );
    init::normal_(&p, 0.0, 1.0, 5).unwrap();
    init::uniform_(&p, 0.0, 1.0, 5).unwrap();
    assert_eq!(
        p.to_vec_f64(),
        init::uniform(&[64, 32], 0.0, 1.0, DType::F64, 5)
            .unwrap()
            .to_vec_f64()
    );
    init::constant_(&p, 3.0).unwrap();
    assert!(p.to_vec_f64().iter().all(|&v| v == 3.0));
    init::zeros_(&p).unwrap();
    assert!(p.to_vec_f64().iter().all(|&v| v == 0.0));
    // determinism across calls
    assert_eq!(
        init::normal(&[10], 0.0, 1.0, DType::F32, 11)
            .unwrap()
            .to_vec_f64(),
        init::normal(&[10], 0.0, 1.0, DType::F32, 11)
            .unwrap()
            .to_vec_f64()
    );
}

#[test]
fn init_bad_inputs_name_the_argument() {
    let e = init::kaiming_uniform(&[5], FanMode::FanIn, Nonlinearity::Relu, DType::F32, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("shape") && e.contains("[5]"), "{e}");
    let e = init::uniform(&[2], 1.0, -1.0, DType::F32, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("low") && e.contains("high"), "{e}");
    let e = init::normal(&[2], 0.0, -1.0, DType::F32, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("std"), "{e}");
    let strided = Tensor::zeros(&[3, 4], DType::F32).unwrap().t().unwrap();
    let e = init::zeros_(&strided).unwrap_err().to_string();
    assert!(e.contains("tensor"), "{e}");
    assert!(init::xavier_uniform(&[0, 0], 1.0, DType::F32, 0).is_err());
}

// ---------------------------------------------------------------- losses

#[test]
fn mse_matches_torch() {
    let pred = t64(&[0.5, -1.2, 3.0, 2.0, 0.1, -0.7], &[2, 3]);
    let tgt = t64(&[1.0, 0.0, 2.5, -1.0, 0.3, 0.2], &[2, 3]);
    let l = |r| mse_loss(&pred, &tgt, r).unwrap().to_vec::<f64>().unwrap();
    assert_close(
        &l(Reduction::Mean),
        &[1.9649999999999999],
        1e-15,
        "mse mean",
    );
    assert_close(&l(Reduction::Sum), &[11.79], 1e-15, "mse sum");
    assert_close(
        &l(Reduction::None),
        &[
            0.25,
            1.44,
            0.25,
            9.0,
            0.039999999999999994,
            0.8099999999999998,
        ],
        1e-15,
        "mse none",
    );
    assert_eq!(
        mse_loss(&pred, &tgt, Reduction::Mean).unwrap().dims(),
        &[] as &[usize]
    );
}

#[test]
fn cross_entropy_matches_torch() {
    let logits = t64(
        &[
            1.0, 2.0, 0.5, -1.0, 0.3, -0.2, 2.2, 0.0, -1.5, 0.5, 0.25, 3.0,
        ],
        &[3, 4],
    )
    .requires_grad_(true);
    let y = [2, 0, 3];
    let l = |r| cross_entropy(&logits, &y, r).unwrap();
    assert_close(
        &l(Reduction::Mean).to_vec_f64(),
        &[1.4473430455384761],
        1e-14,
        "ce mean",
    );
    assert_close(
        &l(Reduction::Sum).to_vec_f64(),
        &[4.342029136615428],
        1e-14,
        "ce sum",
    );
    assert_close(
        &l(Reduction::None).to_vec_f64(),
        &[1.995181898085856, 2.200911474888229, 0.14593576364134375],
        1e-14,
        "ce none",
    );
    l(Reduction::Mean).backward().unwrap();
    assert_close(
        &logits.grad().unwrap().to_vec_f64(),
        &[
            0.07473593934940037,
            0.20315334586629236,
            -0.28800369473549814,
            0.010114409519805408,
            -0.29643259664038274,
            0.022381428170257487,
            0.246714430371409,
            0.027336738098716222,
            0.003200180539067085,
            0.02364631352987282,
            0.01841576749381691,
            -0.045262261562756846,
        ],
        1e-13,
        "ce grad",
    );
    // f32 agrees to f32 precision
    let l32 = cross_entropy(
        &logits.detach().to_dtype(DType::F32).unwrap(),
        &y,
        Reduction::Mean,
    )
    .unwrap();
    assert!((l32.item().unwrap() - 1.4473430455384761).abs() < 1e-6);
}

#[test]
fn bce_with_logits_matches_torch_and_is_stable() {
    let x = t64(&[-3.0, -0.5, 0.0, 0.7, 4.0, 50.0], &[6]);
    let t = t64(&[0.0, 1.0, 0.5, 1.0, 0.0, 1.0], &[6]);
    let l = |r| {
        binary_cross_entropy_with_logits(&x, &t, r)
            .unwrap()
            .to_vec_f64()
    };
    assert_close(
        &l(Reduction::Mean),
        &[1.0228579155195103],
        1e-14,
        "bce mean",
    );
    assert_close(
        &l(Reduction::None),
        &[
            0.048587351573742055,
            0.9740769841801067,
            std::f64::consts::LN_2, // torch printed 0.6931471805599453
            0.4031860488854579,
            4.0181499279178094,
            1.9287498479639178e-22,
        ],
        1e-14,
        "bce none",
    );
    // extreme logits stay finite in f32, with finite gradients
    let xe = Tensor::from_vec(vec![-1e4f32, 1e4, 88.0, -88.0], &[4])
        .unwrap()
        .requires_grad_(true);
    let te = Tensor::from_vec(vec![1.0f32, 0.0, 1.0, 0.0], &[4]).unwrap();
    let le = binary_cross_entropy_with_logits(&xe, &te, Reduction::Sum).unwrap();
    assert!(
        (le.item().unwrap() - 2e4).abs() < 1.0,
        "{}",
        le.item().unwrap()
    );
    le.backward().unwrap();
    assert!(xe
        .grad()
        .unwrap()
        .to_vec_f64()
        .iter()
        .all(|g| g.is_finite()));
}

#[test]
fn loss_gradients_first_and_second_order() {
    let o = GradcheckOptions::default();
    let mse = |xs: &[Tensor]| Ok(vec![mse_loss(&xs[0], &xs[1], Reduction::Mean)?]);
    let ins = [
        Tensor::randn(&[3, 2], DType::F64, 1).unwrap(),
        Tensor::randn(&[3, 2], DType::F64, 2).unwrap(),
    ];
    check(gradcheck(&mse, &ins, o).unwrap(), "mse");
    check(gradgradcheck(&mse, &ins, o).unwrap(), "mse 2nd");

    for r in [Reduction::Mean, Reduction::Sum, Reduction::None] {
        let ce = move |xs: &[Tensor]| Ok(vec![cross_entropy(&xs[0], &[1, 0, 3], r)?]);
        let ins = [Tensor::randn(&[3, 4], DType::F64, 3).unwrap()];
        check(gradcheck(&ce, &ins, o).unwrap(), "cross_entropy");
        check(gradgradcheck(&ce, &ins, o).unwrap(), "cross_entropy 2nd");
    }

    let bce = |xs: &[Tensor]| {
        Ok(vec![binary_cross_entropy_with_logits(
            &xs[0],
            &xs[1],
            Reduction::Mean,
        )?])
    };
    let ins = [
        Tensor::randn(&[5], DType::F64, 4)
            .unwrap()
            .mul_scalar(3.0)
            .unwrap(),
        Tensor::rand(&[5], DType::F64, 5).unwrap(),
    ];
    check(gradcheck(&bce, &ins, o).unwrap(), "bce");
    check(gradgradcheck(&bce, &ins, o).unwrap(), "bce 2nd");
}

#[test]
fn loss_bad_inputs_name_the_argument() {
    let logits = Tensor::zeros(&[2, 3], DType::F32).unwrap();
    let e = cross_entropy(&logits, &[0, 3], Reduction::Mean)
        .unwrap_err()
        .to_string();
    assert!(e.contains("targets[1] = 3") && e.contains("C = 3"), "{e}");
    let e = cross_entropy(&logits, &[0, 1, 2], Reduction::Mean)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("[2, 3]") && e.contains("targets") && e.contains("got 3"),
        "{e}"
    );
    let e = cross_entropy(
        &Tensor::zeros(&[3], DType::F32).unwrap(),
        &[0],
        Reduction::Mean,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("logits") && e.contains("[3]"), "{e}");
    let e = mse_loss(
        &logits,
        &Tensor::zeros(&[3, 2], DType::F32).unwrap(),
        Reduction::Mean,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("[2, 3]") && e.contains("[3, 2]") && e.contains("target"),
        "{e}"
    );
    let e = mse_loss(
        &logits,
        &Tensor::zeros(&[2, 3], DType::F64).unwrap(),
        Reduction::Mean,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("target") && e.contains("F64"), "{e}");
    let e = binary_cross_entropy_with_logits(
        &logits,
        &Tensor::zeros(&[2], DType::F32).unwrap(),
        Reduction::Sum,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("binary_cross_entropy_with_logits") && e.contains("[2, 3]"),
        "{e}"
    );
}

// ---------------------------------------------------------------- optimizers

/// Five steps on Σ a·x² + b·x from x = (1, −2, 3); returns x after step 1 and step 5.
fn run_quadratic<O: Optimizer>(
    dtype: DType,
    make: impl Fn(Vec<Tensor>) -> Result<O>,
) -> (Vec<f64>, Vec<f64>) {
    let x = Tensor::from_f64s(&[1.0, -2.0, 3.0], &[3], dtype)
        .unwrap()
        .requires_grad_(true);
    let a = Tensor::from_f64s(&[1.0, 2.0, 0.5], &[3], dtype).unwrap();
    let b = Tensor::from_f64s(&[0.1, -0.3, 0.2], &[3], dtype).unwrap();
    let mut opt = make(vec![x.clone()]).unwrap();
    let mut first = Vec::new();
    for s in 0..5 {
        opt.zero_grad();
        let loss = a
            .mul(&x)
            .unwrap()
            .mul(&x)
            .unwrap()
            .add(&b.mul(&x).unwrap())
            .unwrap();
        loss.sum_all().unwrap().backward().unwrap();
        opt.step().unwrap();
        if s == 0 {
            first = x.to_vec_f64();
        }
    }
    (first, x.to_vec_f64())
}

#[test]
fn sgd_matches_torch() {
    let cases: [(&str, SgdConfig, [f64; 3], [f64; 3]); 4] = [
        (
            "sgd",
            SgdConfig {
                lr: 0.1,
                ..Default::default()
            },
            [0.7899999999999999, -1.17, 2.68],
            [0.294064, -0.08635199999999998, 1.6895680000000004],
        ),
        (
            "sgd_mom_wd",
            SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                weight_decay: 0.01,
                ..Default::default()
            },
            [0.789, -1.168, 2.677],
            [-0.662759912494411, 1.5843943557768319, -0.31575492757172313],
        ),
        (
            "sgd_damp",
            SgdConfig {
                lr: 0.1,
                momentum: 0.5,
                dampening: 0.3,
                ..Default::default()
            },
            [0.7899999999999999, -1.17, 2.68],
            [0.09654653439999998, 0.4034377728000001, 1.3383549088000002],
        ),
        (
            "sgd_nesterov",
            SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                nesterov: true,
                ..Default::default()
            },
            [0.601, -0.42299999999999977, 2.392],
            [
                -0.48650345984000004,
                0.4176567883199999,
                -0.5346613884800002,
            ],
        ),
    ];
    for (name, cfg, s1, s5) in cases {
        let (g1, g5) = run_quadratic(DType::F64, |p| Sgd::new(p, cfg));
        assert_close(&g1, &s1, 1e-14, name);
        assert_close(&g5, &s5, 1e-13, name);
        let (_, f5) = run_quadratic(DType::F32, |p| Sgd::new(p, cfg));
        assert_close(&f5, &s5, 1e-5, name);
    }
}

#[test]
fn adam_matches_torch() {
    type Case = (&'static str, AdamConfig, bool, [f64; 3], [f64; 3]);
    let cases: [Case; 3] = [
        (
            "adam",
            AdamConfig {
                lr: 0.1,
                ..Default::default()
            },
            false,
            [0.9000000004761904, -1.900000000120482, 2.9000000003125],
            [0.5073758405922469, -1.5028178060755322, 2.501646937165005],
        ),
        (
            "adam_wd",
            AdamConfig {
                lr: 0.1,
                betas: (0.8, 0.99),
                eps: 1e-6,
                weight_decay: 0.1,
                ..Default::default()
            },
            false,
            [0.9000000454545248, -1.9000000117647045, 2.9000000285714203],
            [0.5122355337004643, -1.505102053241987, 2.503107781146191],
        ),
        (
            "adamw",
            AdamConfig {
                lr: 0.1,
                weight_decay: 0.1,
                ..Default::default()
            },
            true,
            [0.8900000004761904, -1.880000000120482, 2.8700000003125],
            [0.46926372098580904, -1.4153873511300896, 2.365091208476374],
        ),
    ];
    for (name, cfg, w, s1, s5) in cases {
        let make = |p| {
            if w {
                Adam::adamw(p, cfg)
            } else {
                Adam::new(p, cfg)
            }
        };
        let (g1, g5) = run_quadratic(DType::F64, make);
        assert_close(&g1, &s1, 1e-14, name);
        assert_close(&g5, &s5, 1e-13, name);
        let (_, f5) = run_quadratic(DType::F32, make);
        assert_close(&f5, &s5, 1e-5, name);
    }
}

#[test]
fn optimizer_skips_params_without_grad_and_handles_strided_grads() {
    let a = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    let b = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    let mut opt = Adam::new(vec![a.clone(), b.clone()], AdamConfig::default()).unwrap();
    // d(sum a)/da is a broadcast (stride-0) view of ones: the step must still work
    a.sum_all().unwrap().backward().unwrap();
    opt.step().unwrap();
    assert_eq!(b.to_vec::<f64>().unwrap(), vec![1.0, 1.0]);
    assert!(a
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .all(|&v| (v - 0.999).abs() < 1e-9));
    assert_eq!((opt.steps_taken(0), opt.steps_taken(1)), (1, 0));
    opt.zero_grad();
    assert!(a.grad().is_none());
    opt.set_lr(0.5).unwrap();
    assert_eq!(opt.lr(), 0.5);
    assert!(opt.set_lr(-1.0).is_err());
}

#[test]
fn clip_grad_norm_scales_like_torch() {
    let p = Tensor::zeros(&[2], DType::F32)
        .unwrap()
        .requires_grad_(true);
    let q = Tensor::zeros(&[1], DType::F32)
        .unwrap()
        .requires_grad_(true);
    p.set_grad(Some(Tensor::from_vec(vec![3.0f32, 0.0], &[2]).unwrap()))
        .unwrap();
    q.set_grad(Some(Tensor::from_vec(vec![4.0f32], &[1]).unwrap()))
        .unwrap();
    let n = clip_grad_norm(&[p.clone(), q.clone()], 2.5).unwrap();
    assert!((n - 5.0).abs() < 1e-12);
    let c = 2.5 / (5.0 + 1e-6);
    assert_close(&p.grad().unwrap().to_vec_f64(), &[3.0 * c, 0.0], 1e-6, "p");
    assert_close(&q.grad().unwrap().to_vec_f64(), &[4.0 * c], 1e-6, "q");
    // below the threshold nothing changes
    let n = clip_grad_norm(&[p.clone(), q.clone()], 10.0).unwrap();
    assert!((n - 2.5).abs() < 1e-5);
    assert_close(
        &q.grad().unwrap().to_vec_f64(),
        &[4.0 * c],
        1e-6,
        "q unchanged",
    );
    // strided gradient (a broadcast view) is replaced, not written through
    let r = Tensor::zeros(&[4], DType::F64)
        .unwrap()
        .requires_grad_(true);
    r.sum_all().unwrap().backward().unwrap();
    let n = clip_grad_norm(std::slice::from_ref(&r), 1.0).unwrap();
    assert!((n - 2.0).abs() < 1e-12);
    assert_close(&r.grad().unwrap().to_vec_f64(), &[0.5; 4], 1e-6, "r");
    assert!(clip_grad_norm(&[r], -1.0)
        .unwrap_err()
        .to_string()
        .contains("max_norm"));
}

#[test]
fn optimizer_bad_inputs_name_the_argument() {
    let p = Tensor::ones(&[2], DType::F32).unwrap().requires_grad_(true);
    let e = Sgd::new(
        vec![p.clone()],
        SgdConfig {
            lr: -0.1,
            ..Default::default()
        },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("`lr`"), "{e}");
    let e = Sgd::new(
        vec![p.clone()],
        SgdConfig {
            nesterov: true,
            ..Default::default()
        },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("nesterov"), "{e}");
    let e = Adam::new(
        vec![p.clone()],
        AdamConfig {
            betas: (0.9, 1.0),
            ..Default::default()
        },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("betas"), "{e}");
    let derived = p.mul_scalar(2.0).unwrap();
    let e = Adam::new(vec![derived], AdamConfig::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("params[0]") && e.contains("leaf"), "{e}");
    let frozen = Tensor::ones(&[2], DType::F32).unwrap();
    let e = Adam::new(vec![p.clone(), frozen], AdamConfig::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("params[1]") && e.contains("require grad"), "{e}");
    let e = Sgd::new(vec![p.clone(), p.clone()], SgdConfig::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("params[1]") && e.contains("twice"), "{e}");
}

// ---------------------------------------------------------------- modules

#[test]
fn module_bad_inputs_name_the_argument() {
    let lin = Linear::new(4, 3, true, DType::F32, 0).unwrap();
    let e = lin
        .forward(&Tensor::zeros(&[2, 5], DType::F32).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("[2, 5]") && e.contains("[3, 4]") && e.contains("`x`"),
        "{e}"
    );
    let e = lin
        .forward(&Tensor::zeros(&[2, 4], DType::F64).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("`x`") && e.contains("F64"), "{e}");
    let e = Linear::from_tensors(
        Tensor::zeros(&[3, 4], DType::F32).unwrap(),
        Some(Tensor::zeros(&[4], DType::F32).unwrap()),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("bias") && e.contains("[4]"), "{e}");
    let e = Linear::from_tensors(Tensor::zeros(&[3], DType::F32).unwrap(), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("weight"), "{e}");
    let e = Linear::new(0, 3, true, DType::F32, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("in_features"), "{e}");
    let e = Mlp::new(&[3], Activation::Relu, DType::F32, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("sizes"), "{e}");
    let e = Mlp::from_layers(
        vec![
            Linear::new(2, 3, true, DType::F32, 0).unwrap(),
            Linear::new(4, 1, true, DType::F32, 0).unwrap(),
        ],
        Activation::Relu,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("layers[0]") && e.contains("layers[1]"), "{e}");
}

#[test]
fn sequential_and_activations() {
    let mut net = Sequential::new()
        .layer(Linear::new(3, 4, true, DType::F64, 0).unwrap())
        .layer(Activation::Gelu)
        .layer(Linear::new(4, 4, false, DType::F64, 1).unwrap())
        .layer(Activation::Silu)
        .layer(Linear::new(4, 2, true, DType::F64, 2).unwrap())
        .layer(Activation::Sigmoid);
    assert_eq!(net.parameters().len(), 5);
    assert!(net.is_training());
    net.eval();
    assert!(!net.is_training());
    let y = net
        .forward(&Tensor::randn(&[5, 3], DType::F64, 9).unwrap())
        .unwrap();
    assert_eq!(y.dims(), &[5, 2]);
    assert!(y.to_vec_f64().iter().all(|&v| v > 0.0 && v < 1.0));
    y.sum_all().unwrap().backward().unwrap();
    assert!(net.parameters().iter().all(|p| p.grad().is_some()));
    net.zero_grad();
    assert!(net.parameters().iter().all(|p| p.grad().is_none()));
    let x = Tensor::from_vec(vec![-2.0f64, 0.0, 2.0], &[3]).unwrap();
    assert_eq!(
        Activation::Tanh.apply(&x).unwrap().to_vec_f64(),
        x.tanh().unwrap().to_vec_f64()
    );
    let mut mlp = Mlp::new(&[2, 3, 1], Activation::Identity, DType::F32, 0).unwrap();
    mlp.train(false);
    assert!(!mlp.is_training());
}

/// Two interleaved spiral arms (one class each) from a seeded RNG.
fn spiral(n_per_class: usize, seed: u64) -> (Tensor, Vec<usize>) {
    let noise = Tensor::randn(&[2 * n_per_class, 2], DType::F64, seed)
        .unwrap()
        .to_vec_f64();
    let mut pts = Vec::with_capacity(4 * n_per_class);
    let mut labels = Vec::with_capacity(2 * n_per_class);
    for c in 0..2 {
        for i in 0..n_per_class {
            let r = 0.1 + 0.9 * i as f64 / n_per_class as f64;
            let th = 1.25 * std::f64::consts::PI * r * 2.0 + c as f64 * std::f64::consts::PI;
            let k = c * n_per_class + i;
            pts.push(r * th.cos() + 0.03 * noise[2 * k]);
            pts.push(r * th.sin() + 0.03 * noise[2 * k + 1]);
            labels.push(c);
        }
    }
    (
        Tensor::from_f64s(&pts, &[2 * n_per_class, 2], DType::F32).unwrap(),
        labels,
    )
}

#[test]
fn mlp_learns_a_spiral_quickly() {
    let t0 = Instant::now();
    let (x, y) = spiral(100, 42);
    let mlp = Mlp::new(&[2, 64, 64, 2], Activation::Tanh, DType::F32, 1).unwrap();
    let mut opt = Adam::new(
        mlp.parameters(),
        AdamConfig {
            lr: 0.01,
            ..Default::default()
        },
    )
    .unwrap();
    let mut loss = f64::NAN;
    let first = cross_entropy(&mlp.forward(&x).unwrap(), &y, Reduction::Mean)
        .unwrap()
        .item()
        .unwrap();
    for _ in 0..400 {
        opt.zero_grad();
        let l = cross_entropy(&mlp.forward(&x).unwrap(), &y, Reduction::Mean).unwrap();
        loss = l.item().unwrap();
        l.backward().unwrap();
        opt.step().unwrap();
    }
    let logits = mlp.forward(&x).unwrap();
    let pred = logits.argmax(-1, false).unwrap().values;
    let acc = pred.iter().zip(&y).filter(|(p, t)| p == t).count() as f64 / y.len() as f64;
    let secs = t0.elapsed().as_secs_f64();
    assert!(first > 0.5, "initial loss {first}");
    assert!(
        loss < 0.05 && acc > 0.98,
        "loss {first} -> {loss}, accuracy {acc}"
    );
    assert!(
        secs < 5.0,
        "took {secs:.2}s (expected well under 2 s on an idle machine)"
    );
    eprintln!("spiral: loss {first:.3} -> {loss:.4}, accuracy {acc}, {secs:.2}s");
}
