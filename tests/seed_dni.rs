//! Decoupled Neural Interfaces (SEEDS.md §3, seed `001_…`): the synthetic-gradient updater's
//! formula, the zero-initialised synthesizer, train/eval behaviour of the interfaces, the
//! deferred-backward scope (equal to one combined backward, no nesting, state reset on error
//! and panic), the synthesizer context stack and the error messages. The demo experiment is
//! the command line's (`cli/tests/dni_demo.rs`).

use std::panic::{catch_unwind, AssertUnwindSafe};

use eingrad::autograd::{backward_many, grad, no_grad, GradOptions};
use eingrad::models::dni::{
    backward, current_synthesizer_context, defer_backward, deferred_backward_count,
    is_backward_deferred, synthesizer_context_depth, synthetic_gradient_update,
    with_synthesizer_context, BackwardInterface, BasicSynthesizer, BasicSynthesizerConfig,
    BidirectionalInterface, DeferBackwardGuard, ForwardInterface, Synthesizer,
    UnidirectionalInterface,
};
use eingrad::nn::{cross_entropy, init, mse_loss, Linear, Module, Reduction};
use eingrad::{DType, Error, Tensor};

fn synth(cfg: BasicSynthesizerConfig, seed: u64) -> BasicSynthesizer {
    BasicSynthesizer::new(cfg, DType::F64, seed).unwrap()
}

fn vals(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64()
}

fn err_string<T>(r: eingrad::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn assert_state_clean() {
    assert!(!is_backward_deferred());
    assert_eq!(deferred_backward_count(), 0);
}

// ---------------------------------------------------------------------------------------------
// The updater

#[test]
fn updater_gradient_formula_is_exact_f64() {
    for b in [1usize, 3, 4] {
        let trig = Tensor::randn(&[b, 5], DType::F64, 10)
            .unwrap()
            .requires_grad_(true);
        let sg = Tensor::randn(&[b, 5], DType::F64, 11)
            .unwrap()
            .requires_grad_(true);
        let g = Tensor::randn(&[b, 5], DType::F64, 12).unwrap();
        let out = synthetic_gradient_update(&trig, &sg).unwrap();
        assert!(out.requires_grad());
        assert_eq!(vals(&out), vals(&trig), "forward copies the trigger");
        assert_ne!(out.id(), trig.id());
        let gs = grad(
            &[out],
            &[trig.clone(), sg.clone()],
            Some(&[g.clone()]),
            GradOptions::default(),
        )
        .unwrap();
        let gt = gs[0].as_ref().unwrap().to_vec::<f64>().unwrap();
        let gsg = gs[1].as_ref().unwrap().to_vec::<f64>().unwrap();
        let gv = g.to_vec::<f64>().unwrap();
        assert_eq!(gt, gv, "the trigger gets the true gradient unchanged");
        let want: Vec<f64> = sg
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .zip(&gv)
            .map(|(s, t)| 2.0 / b as f64 * (s - t))
            .collect();
        assert_eq!(
            gsg, want,
            "the synthetic gradient gets (2/B)(sg − g), B = {b}"
        );
    }
}

#[test]
fn updater_gradient_formula_is_exact_f32_and_rank3() {
    let trig = Tensor::randn(&[4, 2, 3], DType::F32, 1)
        .unwrap()
        .requires_grad_(true);
    let sg = Tensor::randn(&[4, 2, 3], DType::F32, 2)
        .unwrap()
        .requires_grad_(true);
    let g = Tensor::randn(&[4, 2, 3], DType::F32, 3).unwrap();
    let out = synthetic_gradient_update(&trig, &sg).unwrap();
    let gs = grad(
        &[out],
        &[trig, sg.clone()],
        Some(&[g.clone()]),
        GradOptions::default(),
    )
    .unwrap();
    let gv = g.to_vec::<f32>().unwrap();
    assert_eq!(gs[0].as_ref().unwrap().to_vec::<f32>().unwrap(), gv);
    let want: Vec<f32> = sg
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .zip(&gv)
        .map(|(s, t)| (s - t) * 0.5)
        .collect();
    assert_eq!(gs[1].as_ref().unwrap().to_vec::<f32>().unwrap(), want);
}

#[test]
fn updater_through_backward_accumulates_into_synthesizer_only_via_sg() {
    // The trigger is detached in make_trigger: the true gradient stops there, while the
    // synthesizer's parameters get the gradient of Σ(synth(h) − g)²/B.
    let s = synth(BasicSynthesizerConfig::new(3).n_hidden(1).hidden_dim(5), 4);
    init::uniform_(s.layers()[0].weight(), -0.5, 0.5, 9).unwrap();
    let iface = BackwardInterface::new(s);
    let h = Tensor::randn(&[6, 3], DType::F64, 5).unwrap();
    let g = Tensor::randn(&[6, 3], DType::F64, 6).unwrap();
    let out = iface.make_trigger(&h).unwrap();
    out.backward_with(&g, GradOptions::default()).unwrap();
    let d = iface.interface().synthesize(&h).unwrap().sub(&g).unwrap();
    let l = d
        .mul(&d)
        .unwrap()
        .sum_all()
        .unwrap()
        .mul_scalar(1.0 / 6.0)
        .unwrap();
    let params = iface.parameters();
    let want = grad(&[l], &params, None, GradOptions::default()).unwrap();
    for (p, w) in params.iter().zip(want) {
        let (got, w) = (vals(&p.grad().unwrap()), vals(&w.unwrap()));
        for (a, b) in got.iter().zip(&w) {
            assert!((a - b).abs() < 1e-13, "{a} vs {b}");
        }
    }
}

#[test]
fn updater_errors() {
    let trig = Tensor::randn(&[2, 3], DType::F64, 0).unwrap();
    let sg = Tensor::randn(&[2, 3], DType::F64, 1).unwrap();
    let e = err_string(synthetic_gradient_update(&trig, &sg));
    assert!(
        e.contains("synthetic_gradient") && e.contains("require grad"),
        "{e}"
    );
    let sgr = sg.clone().requires_grad_(true);
    let e = err_string(no_grad(|| synthetic_gradient_update(&trig, &sgr)));
    assert!(e.contains("synthetic_gradient"), "{e}");
    let bad = Tensor::randn(&[2, 4], DType::F64, 1)
        .unwrap()
        .requires_grad_(true);
    let e = err_string(synthetic_gradient_update(&trig, &bad));
    assert!(
        e.contains("`synthetic_gradient`") && e.contains("[2, 4]"),
        "{e}"
    );
    let s32 = Tensor::randn(&[2, 3], DType::F32, 1)
        .unwrap()
        .requires_grad_(true);
    assert!(matches!(
        synthetic_gradient_update(&trig, &s32),
        Err(Error::DTypeMismatch { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// The synthesizer

#[test]
fn initial_synthesizer_output_is_its_bias() {
    let trig = Tensor::randn(&[5, 4], DType::F64, 7).unwrap();
    for n_hidden in [0usize, 1, 2] {
        let s = synth(
            BasicSynthesizerConfig::new(3)
                .n_hidden(n_hidden)
                .hidden_dim(6)
                .trigger_dim(4),
            n_hidden as u64,
        );
        assert_eq!(s.layers().len(), n_hidden);
        let last = s.layers().last().unwrap_or(s.input_trigger());
        assert!(vals(last.weight()).iter().all(|&w| w == 0.0));
        let bias = vals(last.bias().unwrap());
        assert!(
            bias.iter().any(|&b| b != 0.0),
            "the bias keeps its default init"
        );
        let out = s.synthesize(&trig, None).unwrap();
        assert_eq!(out.dims(), &[5, 3]);
        assert_eq!(vals(&out), bias.repeat(5), "n_hidden = {n_hidden}");
        // the earlier layers are not zero
        if n_hidden > 0 {
            assert!(vals(s.input_trigger().weight()).iter().any(|&w| w != 0.0));
        }
    }
    // With a context and no hidden layer, both input weights are zero: output = sum of biases.
    let s = synth(BasicSynthesizerConfig::new(3).context_dim(2), 5);
    let ctx = Tensor::randn(&[5, 2], DType::F64, 8).unwrap();
    let out = s
        .synthesize(&Tensor::randn(&[5, 3], DType::F64, 9).unwrap(), Some(&ctx))
        .unwrap();
    let bt = vals(s.input_trigger().bias().unwrap());
    let bc = vals(s.input_context().unwrap().bias().unwrap());
    let want: Vec<f64> = bt.iter().zip(&bc).map(|(a, b)| a + b).collect();
    assert_eq!(vals(&out), want.repeat(5));
    // Same seed, same synthesizer.
    let a = synth(BasicSynthesizerConfig::new(3).n_hidden(1), 42);
    let b = synth(BasicSynthesizerConfig::new(3).n_hidden(1), 42);
    for (p, q) in a.parameters().iter().zip(b.parameters()) {
        assert_eq!(vals(p), vals(&q));
    }
}

// ---------------------------------------------------------------------------------------------
// Interfaces: train and eval

#[test]
fn eval_mode_passes_the_message_through() {
    let msg = Tensor::randn(&[4, 3], DType::F64, 0)
        .unwrap()
        .requires_grad_(true);
    let trig = Tensor::randn(&[4, 5], DType::F64, 1).unwrap();
    let mut fwd = ForwardInterface::new(synth(BasicSynthesizerConfig::new(3).trigger_dim(5), 0));
    fwd.eval();
    assert!(!fwd.is_training());
    let out = fwd.forward(&msg, &trig).unwrap();
    assert_eq!(out.id(), msg.id());
    assert!(fwd.parameters().iter().all(|p| p.grad().is_none()));

    let mut bwd = BackwardInterface::new(synth(BasicSynthesizerConfig::new(3), 1));
    bwd.eval();
    let h = msg.mul_scalar(2.0).unwrap();
    assert_eq!(bwd.forward(&h).unwrap().id(), h.id());
    assert_eq!(bwd.make_trigger(&h).unwrap().id(), h.id());
    bwd.backward(&h, 1.0).unwrap(); // a no-op
    assert!(msg.grad().is_none());
    assert_eq!(Module::forward(&bwd, &h).unwrap().id(), h.id());

    let mut bi = BidirectionalInterface::new(
        synth(BasicSynthesizerConfig::new(3).trigger_dim(5), 2),
        synth(BasicSynthesizerConfig::new(3), 3),
    );
    bi.eval();
    assert!(!bi.backward_interface().is_training());
    assert_eq!(bi.forward(&msg, &trig).unwrap().id(), msg.id());
    assert!(bi.parameters().iter().all(|p| p.grad().is_none()));

    // back to training: the forward interface now synthesizes and trains
    fwd.train(true);
    let out = fwd.forward(&msg, &trig).unwrap();
    assert!(!out.requires_grad());
    assert_eq!(vals(&out), vals(&fwd.receive(&trig).unwrap()));
    assert!(fwd.parameters().iter().all(|p| p.grad().is_some()));
    assert!(
        msg.grad().is_none(),
        "send does not backpropagate into the message"
    );
}

#[test]
fn send_trains_only_the_synthesizer_on_mse() {
    let s = synth(BasicSynthesizerConfig::new(3).trigger_dim(2), 3);
    let iface = UnidirectionalInterface::new(s);
    let w = Tensor::randn(&[2, 2], DType::F64, 4)
        .unwrap()
        .requires_grad_(true);
    let trig = eingrad::einsum(
        "bi,ij->bj",
        &[&Tensor::randn(&[5, 2], DType::F64, 5).unwrap(), &w],
    )
    .unwrap();
    let msg = Tensor::randn(&[5, 3], DType::F64, 6)
        .unwrap()
        .requires_grad_(true);
    let loss = iface.send(&msg, &trig).unwrap();
    assert!(!loss.requires_grad());
    let want = mse_loss(
        &iface.receive(&trig).unwrap(),
        &msg.detach(),
        Reduction::Mean,
    )
    .unwrap();
    assert_eq!(loss.item().unwrap(), want.item().unwrap());
    assert!(w.grad().is_none() && msg.grad().is_none());
    assert!(iface.parameters().iter().all(|p| p.grad().is_some()));
}

#[test]
fn backward_interface_forward_sends_synthetic_gradient_below() {
    // Below the interface, the parameters get exactly the synthetic gradient's backward.
    let s = synth(BasicSynthesizerConfig::new(4).n_hidden(1), 2);
    init::uniform_(s.layers()[0].weight(), -0.3, 0.3, 1).unwrap();
    let iface = BackwardInterface::new(s);
    let lin = Linear::new(3, 4, true, DType::F64, 0).unwrap();
    let x = Tensor::randn(&[5, 3], DType::F64, 9).unwrap();
    let h = lin.forward(&x).unwrap();
    let out = iface.forward(&h).unwrap();
    assert_eq!(vals(&out), vals(&h));
    assert!(out.requires_grad());
    let sg = iface.receive(&h).unwrap();
    // dW = sgᵀ x, db = Σ_b sg
    let dw = eingrad::einsum("bo,bi->oi", &[&sg, &x]).unwrap();
    let db = sg.sum(&[0], false).unwrap();
    let gw = vals(&lin.weight().grad().unwrap());
    for (a, b) in gw.iter().zip(vals(&dw)) {
        assert!((a - b).abs() < 1e-13);
    }
    let gb = vals(&lin.bias().unwrap().grad().unwrap());
    for (a, b) in gb.iter().zip(vals(&db)) {
        assert!((a - b).abs() < 1e-13);
    }
    // the factor scales it
    lin.zero_grad();
    let h = lin.forward(&x).unwrap();
    iface.backward(&h, -2.0).unwrap();
    for (a, b) in vals(&lin.bias().unwrap().grad().unwrap())
        .iter()
        .zip(vals(&db))
    {
        assert!((a + 2.0 * b).abs() < 1e-13);
    }
}

#[test]
fn bidirectional_send_and_receive() {
    let fs = synth(BasicSynthesizerConfig::new(3).trigger_dim(2), 0);
    let bs = synth(BasicSynthesizerConfig::new(3).n_hidden(1), 1);
    let bi = BidirectionalInterface::new(fs, bs);
    let x = Tensor::randn(&[4, 3], DType::F64, 2)
        .unwrap()
        .requires_grad_(true);
    let msg = x.tanh().unwrap();
    let trig = Tensor::randn(&[4, 2], DType::F64, 3).unwrap();
    let out = bi.forward(&msg, &trig).unwrap();
    // send: the forward synthesizer got its MSE gradient, the synthetic gradient reached x
    assert!(bi
        .forward_interface()
        .parameters()
        .iter()
        .all(|p| p.grad().is_some()));
    assert!(x.grad().is_some());
    // receive: the synthesized message with an updater attached
    assert!(out.requires_grad());
    assert_eq!(
        vals(&out),
        vals(&bi.forward_interface().receive(&trig).unwrap())
    );
    out.sum_all().unwrap().backward().unwrap();
    assert!(bi
        .backward_interface()
        .parameters()
        .iter()
        .all(|p| p.grad().is_some()));
}

// ---------------------------------------------------------------------------------------------
// Deferred backward

struct Net {
    l1: Linear,
    l2: Linear,
    iface: BackwardInterface,
    x: Tensor,
}

fn net() -> Net {
    let s = synth(BasicSynthesizerConfig::new(6).n_hidden(1).hidden_dim(5), 3);
    init::uniform_(s.layers()[0].weight(), -0.4, 0.4, 4).unwrap();
    Net {
        l1: Linear::new(4, 6, true, DType::F64, 1).unwrap(),
        l2: Linear::new(6, 3, true, DType::F64, 2).unwrap(),
        iface: BackwardInterface::new(s),
        x: Tensor::randn(&[5, 4], DType::F64, 5)
            .unwrap()
            .requires_grad_(true),
    }
}

impl Net {
    fn leaves(&self) -> Vec<Tensor> {
        let mut v = vec![self.x.clone()];
        v.extend(self.l1.parameters());
        v.extend(self.l2.parameters());
        v.extend(self.iface.parameters());
        v
    }
}

const LABELS: [usize; 5] = [0, 2, 1, 1, 0];

#[test]
fn deferred_backward_equals_one_combined_backward() {
    // Deferred: the interface's synthetic backward and the task loss's backward are queued.
    let a = net();
    defer_backward(|| {
        let h = a.l1.forward(&a.x)?;
        let h2 = a.iface.forward(&h)?;
        assert!(a.x.grad().is_none(), "nothing runs inside the scope");
        let loss = cross_entropy(&a.l2.forward(&h2.relu()?)?, &LABELS, Reduction::Mean)?;
        backward(&loss, None)?;
        assert_eq!(deferred_backward_count(), 2);
        Ok(())
    })
    .unwrap();
    assert_state_clean();

    // By hand: the same graph and one backward_many over the same pairs.
    let b = net();
    let h = b.l1.forward(&b.x).unwrap();
    let sg = b.iface.receive(&h).unwrap();
    let h2 = b.iface.make_trigger(&h.detach()).unwrap();
    let loss = cross_entropy(
        &b.l2.forward(&h2.relu().unwrap()).unwrap(),
        &LABELS,
        Reduction::Mean,
    )
    .unwrap();
    backward_many(
        &[h, loss.clone()],
        &[sg, loss.ones_like().unwrap()],
        GradOptions::default(),
    )
    .unwrap();

    for (i, (p, q)) in a.leaves().iter().zip(b.leaves()).enumerate() {
        let (gp, gq) = (p.grad().unwrap(), q.grad().unwrap());
        assert_eq!(vals(&gp), vals(&gq), "leaf {i}");
    }
}

#[test]
fn deferred_backward_runs_two_passes_through_shared_nodes_once() {
    let x = Tensor::randn(&[3, 2], DType::F64, 0)
        .unwrap()
        .requires_grad_(true);
    let y = x.tanh().unwrap();
    let a = y.mul_scalar(2.0).unwrap();
    let b = y.mul(&y).unwrap();
    // Without deferral the second pass meets freed saved tensors of `tanh`.
    backward(&a, None).unwrap();
    let e = err_string(backward(&b, None));
    assert!(e.contains("second time"), "{e}");
    // With it, one combined pass.
    x.zero_grad();
    let y = x.tanh().unwrap();
    let a = y.mul_scalar(2.0).unwrap();
    let b = y.mul(&y).unwrap();
    let guard = DeferBackwardGuard::new().unwrap();
    backward(&a, None).unwrap();
    backward(&b, Some(&b.ones_like().unwrap())).unwrap();
    assert_eq!(guard.len(), 2);
    guard.finish().unwrap();
    assert_state_clean();
    let want: Vec<f64> = vals(&x)
        .iter()
        .map(|v| {
            let t = v.tanh();
            (2.0 + 2.0 * t) * (1.0 - t * t)
        })
        .collect();
    for (g, w) in vals(&x.grad().unwrap()).iter().zip(want) {
        assert!((g - w).abs() < 1e-14);
    }
    // an empty scope is fine
    defer_backward(|| Ok(())).unwrap();
    assert!(DeferBackwardGuard::new().unwrap().is_empty());
    assert_state_clean();
}

#[test]
fn nesting_defer_backward_is_an_error() {
    let x = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    let r = defer_backward(|| {
        backward(&x.mul_scalar(3.0)?, None)?;
        let inner = defer_backward(|| Ok(()));
        let e = err_string(inner);
        assert!(e.contains("cannot nest"), "{e}");
        assert!(DeferBackwardGuard::new().is_err());
        // the failed inner scope leaves the outer one intact
        assert!(is_backward_deferred());
        assert_eq!(deferred_backward_count(), 1);
        Ok(7)
    })
    .unwrap();
    assert_eq!(r, 7);
    assert_eq!(vals(&x.grad().unwrap()), vec![3.0, 3.0]);
    assert_state_clean();
    // a guard inside a closure scope, and the other way round
    let g = DeferBackwardGuard::new().unwrap();
    assert!(defer_backward(|| Ok(())).is_err());
    drop(g);
    assert_state_clean();
}

#[test]
fn state_resets_after_an_error_and_a_panic() {
    let x = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    // an Err from the closure: nothing runs, the state resets
    let r: eingrad::Result<()> = defer_backward(|| {
        backward(&x.mul_scalar(3.0)?, None)?;
        Err(Error::InvalidArgument {
            op: "closure",
            arg: "x",
            msg: "boom".into(),
        })
    });
    assert!(err_string(r).contains("boom"));
    assert_state_clean();
    assert!(x.grad().is_none(), "the queued pass was discarded");
    // a panic inside the closure
    let r = catch_unwind(AssertUnwindSafe(|| {
        defer_backward(|| -> eingrad::Result<()> {
            backward(&x.mul_scalar(3.0)?, None)?;
            panic!("boom");
        })
    }));
    assert!(r.is_err());
    assert_state_clean();
    // a failing combined backward (freed graph) still resets
    let y = x.exp().unwrap();
    y.sum_all().unwrap().backward().unwrap();
    x.zero_grad();
    let r = defer_backward(|| backward(&y.sum_all()?, None));
    assert!(err_string(r).contains("second time"));
    assert_state_clean();
    // a guard dropped early
    {
        let _g = DeferBackwardGuard::new().unwrap();
        backward(&x.mul_scalar(3.0).unwrap(), None).unwrap();
    }
    assert_state_clean();
    assert!(x.grad().is_none());
    // and a fresh scope works afterwards
    defer_backward(|| backward(&x.mul_scalar(5.0)?, None)).unwrap();
    assert_eq!(vals(&x.grad().unwrap()), vec![5.0, 5.0]);
    // the context stack unwinds on panic too
    let c = Tensor::ones(&[1], DType::F64).unwrap();
    let r = catch_unwind(AssertUnwindSafe(|| {
        with_synthesizer_context(&c, || with_synthesizer_context(&c, || panic!("boom")))
    }));
    assert!(r.is_err());
    assert_eq!(synthesizer_context_depth(), 0);
}

#[test]
fn deferred_state_is_per_thread() {
    let _g = DeferBackwardGuard::new().unwrap();
    std::thread::spawn(|| {
        assert!(!is_backward_deferred());
        defer_backward(|| Ok(())).unwrap();
    })
    .join()
    .unwrap();
    assert!(is_backward_deferred());
}

// ---------------------------------------------------------------------------------------------
// The context stack

#[test]
fn context_stack_nests_and_reaches_the_synthesizer() {
    let s = synth(
        BasicSynthesizerConfig::new(3)
            .n_hidden(1)
            .hidden_dim(4)
            .trigger_dim(2)
            .context_dim(2),
        11,
    );
    init::uniform_(s.layers()[0].weight(), -1.0, 1.0, 12).unwrap();
    let iface = ForwardInterface::new(s);
    let trig = Tensor::randn(&[3, 2], DType::F64, 13).unwrap();
    let c1 = Tensor::randn(&[3, 2], DType::F64, 14).unwrap();
    let c2 = Tensor::randn(&[2], DType::F64, 15).unwrap(); // one context for the whole batch
    let direct = |c: &Tensor| vals(&iface.synthesizer().synthesize(&trig, Some(c)).unwrap());
    assert_ne!(direct(&c1), direct(&c2));
    assert!(current_synthesizer_context().is_none());
    let e = err_string(iface.receive(&trig));
    assert!(
        e.contains("`context`") && e.contains("with_synthesizer_context"),
        "{e}"
    );
    with_synthesizer_context(&c1, || {
        assert_eq!(synthesizer_context_depth(), 1);
        assert_eq!(vals(&iface.receive(&trig).unwrap()), direct(&c1));
        with_synthesizer_context(&c2, || {
            assert_eq!(synthesizer_context_depth(), 2);
            assert_eq!(current_synthesizer_context().unwrap().id(), c2.id());
            assert_eq!(vals(&iface.receive(&trig).unwrap()), direct(&c2));
        });
        assert_eq!(vals(&iface.receive(&trig).unwrap()), direct(&c1));
        // send uses it too: its loss is measured against the c1 synthesis
        let msg = Tensor::zeros(&[3, 3], DType::F64).unwrap();
        let l = iface.send(&msg, &trig).unwrap().item().unwrap();
        let want: f64 = direct(&c1).iter().map(|v| v * v).sum::<f64>() / 9.0;
        assert!((l - want).abs() < 1e-14);
    });
    assert_eq!(synthesizer_context_depth(), 0);
    // send trains only the synthesizer: no gradient reaches a context that requires grad
    let cg = Tensor::randn(&[3, 2], DType::F64, 16)
        .unwrap()
        .requires_grad_(true);
    let msg = Tensor::ones(&[3, 3], DType::F64).unwrap();
    with_synthesizer_context(&cg, || iface.send(&msg, &trig)).unwrap();
    assert!(cg.grad().is_none());
    // an unconditioned synthesizer ignores the context
    let plain = UnidirectionalInterface::new(synth(BasicSynthesizerConfig::new(2), 0));
    let t = Tensor::randn(&[3, 2], DType::F64, 1).unwrap();
    let a = vals(&plain.receive(&t).unwrap());
    assert_eq!(
        with_synthesizer_context(&c1, || vals(&plain.receive(&t).unwrap())),
        a
    );
}

// ---------------------------------------------------------------------------------------------
// Bad inputs

#[test]
fn bad_inputs_name_the_argument() {
    // zero sizes
    for (cfg, name) in [
        (BasicSynthesizerConfig::new(0), "output_dim"),
        (BasicSynthesizerConfig::new(2).hidden_dim(0), "hidden_dim"),
        (BasicSynthesizerConfig::new(2).trigger_dim(0), "trigger_dim"),
        (BasicSynthesizerConfig::new(2).context_dim(0), "context_dim"),
    ] {
        let e = err_string(BasicSynthesizer::new(cfg, DType::F64, 0));
        assert!(e.contains(name), "{e}");
    }
    let s = synth(BasicSynthesizerConfig::new(3).trigger_dim(5), 0);
    // trigger width
    let e = err_string(s.synthesize(&Tensor::zeros(&[2, 4], DType::F64).unwrap(), None));
    assert!(
        e.contains("`trigger`") && e.contains("trigger_dim = 5"),
        "{e}"
    );
    let e = err_string(s.synthesize(&Tensor::scalar(1.0, DType::F64), None));
    assert!(e.contains("`trigger`"), "{e}");
    // context shape
    let sc = synth(BasicSynthesizerConfig::new(3).context_dim(2), 0);
    let t = Tensor::zeros(&[4, 3], DType::F64).unwrap();
    for bad in [&[4, 3][..], &[3, 2], &[4, 1, 2]] {
        let e = err_string(sc.synthesize(&t, Some(&Tensor::zeros(bad, DType::F64).unwrap())));
        assert!(e.contains("`context`"), "{e}");
    }
    // send: synthesizer output width vs message, trigger batch vs message
    let iface = ForwardInterface::new(s);
    let trig = Tensor::zeros(&[4, 5], DType::F64).unwrap();
    let e = err_string(iface.send(&Tensor::zeros(&[4, 2], DType::F64).unwrap(), &trig));
    assert!(
        e.contains("output width 3") && e.contains("`message`"),
        "{e}"
    );
    let e = err_string(iface.forward(&Tensor::zeros(&[6, 3], DType::F64).unwrap(), &trig));
    assert!(e.contains("`trigger`") && e.contains("`message`"), "{e}");
    assert!(iface.parameters().iter().all(|p| p.grad().is_none()));
    // backward interface: the synthesizer's output must have the trigger's shape
    let bwd = BackwardInterface::new(synth(BasicSynthesizerConfig::new(3).trigger_dim(5), 1));
    let h = Tensor::zeros(&[4, 5], DType::F64)
        .unwrap()
        .requires_grad_(true);
    let e = err_string(bwd.forward(&h));
    assert!(
        e.contains("output width 3") && e.contains("`trigger`"),
        "{e}"
    );
    let e = err_string(bwd.make_trigger(&h.detach()));
    assert!(e.contains("`trigger`"), "{e}");
    // a trigger that cannot take a gradient
    let bwd = BackwardInterface::new(synth(BasicSynthesizerConfig::new(3), 1));
    let e = err_string(bwd.backward(&Tensor::zeros(&[4, 3], DType::F64).unwrap(), 1.0));
    assert!(e.contains("`trigger`") && e.contains("require grad"), "{e}");
    // make_trigger with a frozen synthesizer: the updater refuses
    let e = err_string(no_grad(|| {
        bwd.make_trigger(&Tensor::zeros(&[4, 3], DType::F64).unwrap())
    }));
    assert!(e.contains("synthetic_gradient"), "{e}");
    // dni::backward's own checks
    let x = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    let e = err_string(backward(&x, Some(&Tensor::ones(&[3], DType::F64).unwrap())));
    assert!(e.contains("`gradient`"), "{e}");
    assert!(matches!(
        backward(&x, Some(&Tensor::ones(&[2], DType::F32).unwrap())),
        Err(Error::DTypeMismatch { .. })
    ));
    // inside a deferred scope the checks happen at the call, not at the end
    let r = defer_backward(|| backward(&x, Some(&Tensor::ones(&[3], DType::F64).unwrap())));
    assert!(err_string(r).contains("`gradient`"));
    assert_state_clean();
}
