//! The autograd surface: grad / backward options, hooks, grad modes, anomaly mode, IEEE edge
//! cases of gradients, deep graphs and release of the graph.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use eingrad::autograd::{
    backward_many, grad, is_anomaly_enabled, is_grad_enabled, no_grad, AnomalyGuard,
    EnableGradGuard, GradOptions, NoGradGuard,
};
use eingrad::{DType, Error, Tensor};

fn t(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_f64s(v, shape, DType::F64).unwrap()
}
fn v1(v: &[f64]) -> Tensor {
    t(v, &[v.len()])
}
fn vals(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64()
}
fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
}
fn d() -> GradOptions {
    GradOptions::default()
}

/// Anomaly mode is process-global: tests that switch it on, or whose gradients are
/// deliberately non-finite, run one at a time.
static ANOMALY_LOCK: Mutex<()> = Mutex::new(());
fn anomaly_lock() -> MutexGuard<'static, ()> {
    ANOMALY_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

// ------------------------------------------------------------------ grad()

#[test]
fn grad_with_grad_outputs() {
    let x = v1(&[1.0, -2.0, 3.0]).requires_grad_(true);
    let y = x.mul(&x).unwrap(); // non-scalar
    let u = v1(&[0.5, 1.0, -1.0]);
    let g = grad(&[y.clone()], &[x.clone()], Some(&[u]), d()).unwrap();
    assert_eq!(vals(g[0].as_ref().unwrap()), vec![1.0, -4.0, -6.0]);
    // .grad is not touched by grad()
    assert!(x.grad().is_none());
    // a cotangent of the wrong shape or dtype is an error naming it
    let e = grad(&[y.clone()], &[x.clone()], Some(&[v1(&[1.0, 2.0])]), d())
        .unwrap_err()
        .to_string();
    assert!(e.contains("grad_outputs[0]") && e.contains("[2]"), "{e}");
    let u32 = Tensor::ones(&[3], DType::F32).unwrap();
    let e = grad(&[y.clone()], &[x.clone()], Some(&[u32]), d())
        .unwrap_err()
        .to_string();
    assert!(e.contains("grad_outputs[0]") && e.contains("F32"), "{e}");
    let e = grad(&[y], &[x], Some(&[]), d()).unwrap_err().to_string();
    assert!(e.contains("1 outputs but 0 grad_outputs"), "{e}");
}

#[test]
fn grad_of_several_outputs_and_inputs_at_once() {
    let x = v1(&[1.0, 2.0]).requires_grad_(true);
    let w = v1(&[3.0, -1.0]).requires_grad_(true);
    let y1 = x.mul(&w).unwrap(); // d/dx = w, d/dw = x
    let y2 = x.exp().unwrap().sum_all().unwrap(); // d/dx = e^x
    let u1 = v1(&[1.0, 10.0]);
    let u2 = Tensor::scalar(2.0, DType::F64);
    let g = grad(&[y1, y2], &[x.clone(), w.clone()], Some(&[u1, u2]), d()).unwrap();
    let gx = vals(g[0].as_ref().unwrap());
    let gw = vals(g[1].as_ref().unwrap());
    assert!(
        close(
            &gx,
            &[3.0 + 2.0 * 1f64.exp(), -10.0 + 2.0 * 2f64.exp()],
            1e-14
        ),
        "{gx:?}"
    );
    assert_eq!(gw, vec![1.0, 20.0]);
    // the same input listed twice gets the same gradient twice
    let y = x.mul(&x).unwrap().sum_all().unwrap();
    let g = grad(&[y], &[x.clone(), x.clone()], None, d()).unwrap();
    assert_eq!(vals(g[0].as_ref().unwrap()), vec![2.0, 4.0]);
    assert_eq!(vals(g[1].as_ref().unwrap()), vec![2.0, 4.0]);
}

#[test]
fn grad_with_respect_to_a_non_leaf() {
    let x = v1(&[1.0, 2.0]).requires_grad_(true);
    let h = x.mul_scalar(3.0).unwrap();
    let y = h.mul(&h).unwrap().sum_all().unwrap();
    let g = grad(&[y], &[h.clone(), x.clone()], None, d()).unwrap();
    assert_eq!(vals(g[0].as_ref().unwrap()), vec![6.0, 12.0]); // 2h
    assert_eq!(vals(g[1].as_ref().unwrap()), vec![18.0, 36.0]); // 18x
}

#[test]
fn missing_grad_outputs_for_non_scalar_outputs_is_an_error() {
    let x = v1(&[1.0, 2.0]).requires_grad_(true);
    let y = x.exp().unwrap();
    let e = grad(&[y.clone()], &[x.clone()], None, d())
        .unwrap_err()
        .to_string();
    assert!(e.contains("grad_outputs") && e.contains("[2]"), "{e}");
    let e = y.backward().unwrap_err().to_string();
    assert!(
        e.contains("one-element") || e.contains("one element"),
        "{e}"
    );
    // a one-element non-scalar output is fine
    let z = y.sum(&[0], true).unwrap();
    assert_eq!(z.dims(), &[1]);
    assert!(grad(&[z], &[x], None, d()).is_ok());
}

#[test]
fn inputs_and_outputs_that_do_not_require_grad_are_errors() {
    let x = v1(&[1.0]);
    let e = grad(&[x.exp().unwrap()], &[x.clone()], None, d())
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not require grad"), "{e}");
    let w = v1(&[1.0]).requires_grad_(true);
    let e = grad(&[x.exp().unwrap()], &[w.clone()], None, d())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("output 0") && e.contains("does not require grad"),
        "{e}"
    );
    let e = grad(&[], &[w], None, d()).unwrap_err().to_string();
    assert!(e.contains("no outputs"), "{e}");
}

#[test]
fn allow_unused_gives_none_otherwise_an_error_naming_the_input() {
    let x = v1(&[1.0, 2.0]).requires_grad_(true);
    let unused = t(&[5.0, 6.0, 7.0], &[3]).requires_grad_(true);
    let y = x.mul_scalar(2.0).unwrap().sum_all().unwrap();
    let e = grad(
        &[y.clone()],
        &[x.clone(), unused.clone()],
        None,
        d().retain_graph(true),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Autograd(_)), "{e:?}");
    assert!(
        msg.contains("input 1") && msg.contains("[3]") && msg.contains("allow_unused"),
        "{msg}"
    );
    let g = grad(&[y], &[x, unused], None, d().allow_unused(true)).unwrap();
    assert_eq!(vals(g[0].as_ref().unwrap()), vec![2.0, 2.0]);
    assert!(g[1].is_none());
}

// ------------------------------------------------------------------ retain_graph / create_graph

#[test]
fn retain_graph_allows_a_second_backward_and_its_absence_a_clear_error() {
    let x = v1(&[1.0, 2.0]).requires_grad_(true);
    let y = x.exp().unwrap().mul(&x).unwrap().sum_all().unwrap();
    y.backward_with(&Tensor::scalar(1.0, DType::F64), d().retain_graph(true))
        .unwrap();
    let first = vals(&x.grad().unwrap());
    // second pass works and accumulates
    y.backward().unwrap();
    let second = vals(&x.grad().unwrap());
    assert!(close(&second, &[2.0 * first[0], 2.0 * first[1]], 1e-15));
    // the graph was freed by the pass without retain_graph
    let e = y.backward().unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("second time") && msg.contains("retain_graph"),
        "{msg}"
    );
    // grad() on the freed graph fails the same way; .grad is unchanged
    let e = grad(&[y], &[x.clone()], None, d()).unwrap_err().to_string();
    assert!(e.contains("second time"), "{e}");
    assert_eq!(vals(&x.grad().unwrap()), second);
}

#[test]
fn create_graph_keeps_the_graph_by_default() {
    let x = v1(&[0.5]).requires_grad_(true);
    let y = x.sin().unwrap().sum_all().unwrap();
    let g = grad(&[y.clone()], &[x.clone()], None, d().create_graph(true)).unwrap()[0]
        .clone()
        .unwrap();
    assert!(g.requires_grad());
    // retain_graph defaulted to true: the forward graph can be walked again
    assert!(grad(&[y.clone()], &[x.clone()], None, d()).is_ok());
    // without create_graph the gradient is a plain tensor
    let x2 = v1(&[0.5]).requires_grad_(true);
    let g2 = grad(&[x2.sin().unwrap().sum_all().unwrap()], &[x2], None, d()).unwrap()[0]
        .clone()
        .unwrap();
    assert!(!g2.requires_grad() && g2.is_leaf());
}

/// Hessian rows by differentiating each gradient entry again.
fn hessian(f: impl Fn(&Tensor) -> Tensor, x0: &[f64]) -> Vec<Vec<f64>> {
    let x = v1(x0).requires_grad_(true);
    let y = f(&x);
    let g = grad(&[y], &[x.clone()], None, d().create_graph(true)).unwrap()[0]
        .clone()
        .unwrap();
    (0..x0.len())
        .map(|i| {
            let gi = g.narrow(0, i, 1).unwrap().sum_all().unwrap();
            match grad(
                &[gi],
                &[x.clone()],
                None,
                d().retain_graph(true).allow_unused(true),
            )
            .unwrap()[0]
                .clone()
            {
                Some(r) => vals(&r),
                None => vec![0.0; x0.len()],
            }
        })
        .collect()
}

#[test]
fn create_graph_hessians_match_hand_math() {
    // f = x0²·x1 + sin(x1)·x2³
    let (a, b, c) = (0.7, -1.3, 0.9);
    let f = |x: &Tensor| {
        let x0 = x.narrow(0, 0, 1).unwrap();
        let x1 = x.narrow(0, 1, 1).unwrap();
        let x2 = x.narrow(0, 2, 1).unwrap();
        x0.mul(&x0)
            .unwrap()
            .mul(&x1)
            .unwrap()
            .add(&x1.sin().unwrap().mul(&x2.powf(3.0).unwrap()).unwrap())
            .unwrap()
            .sum_all()
            .unwrap()
    };
    let h = hessian(f, &[a, b, c]);
    let want = [
        vec![2.0 * b, 2.0 * a, 0.0],
        vec![2.0 * a, -b.sin() * c * c * c, 3.0 * b.cos() * c * c],
        vec![0.0, 3.0 * b.cos() * c * c, 6.0 * b.sin() * c],
    ];
    for (row, w) in h.iter().zip(&want) {
        assert!(close(row, w, 1e-13), "{row:?} vs {w:?}");
    }
    // a quadratic form xᵀAx (A not symmetric): Hessian A + Aᵀ
    let a_m = t(&[1.0, 2.0, 0.0, -1.0, 3.0, 0.5, 4.0, 0.0, -2.0], &[3, 3]);
    let q = move |x: &Tensor| {
        let ax = a_m
            .mul(&x.unsqueeze(0).unwrap())
            .unwrap()
            .sum(&[1], false)
            .unwrap();
        x.mul(&ax).unwrap().sum_all().unwrap()
    };
    let h = hessian(q, &[0.3, -0.2, 1.1]);
    let want = [
        vec![2.0, 1.0, 4.0],
        vec![1.0, 6.0, 0.5],
        vec![4.0, 0.5, -4.0],
    ];
    assert_eq!(h, want);
    // log-sum-exp: Hessian diag(p) − p pᵀ
    let xs = [0.2, -0.5, 1.0];
    let h = hessian(|x| x.logsumexp(&[0], false).unwrap(), &xs);
    let e: Vec<f64> = xs.iter().map(|v: &f64| v.exp()).collect();
    let z: f64 = e.iter().sum();
    let p: Vec<f64> = e.iter().map(|v| v / z).collect();
    for i in 0..3 {
        let w: Vec<f64> = (0..3)
            .map(|j| if i == j { p[i] } else { 0.0 } - p[i] * p[j])
            .collect();
        assert!(close(&h[i], &w, 1e-14), "{:?} vs {w:?}", h[i]);
    }
}

#[test]
fn third_and_fourth_derivatives() {
    // d³/dx³ x⁴ = 24x, d⁴/dx⁴ = 24
    let x = v1(&[2.0]).requires_grad_(true);
    let mut y = x.powf(4.0).unwrap().sum_all().unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        y = grad(&[y], &[x.clone()], None, d().create_graph(true)).unwrap()[0]
            .clone()
            .unwrap()
            .sum_all()
            .unwrap();
        got.push(y.item().unwrap());
    }
    assert_eq!(got, vec![32.0, 48.0, 48.0, 24.0]);
    // tanh''' at 0.3: −2(1 − t²)(1 − 3t²)
    let x = v1(&[0.3]).requires_grad_(true);
    let mut y = x.tanh().unwrap().sum_all().unwrap();
    for _ in 0..3 {
        y = grad(&[y], &[x.clone()], None, d().create_graph(true)).unwrap()[0]
            .clone()
            .unwrap()
            .sum_all()
            .unwrap();
    }
    let th = 0.3f64.tanh();
    let want = -2.0 * (1.0 - th * th) * (1.0 - 3.0 * th * th);
    assert!(
        (y.item().unwrap() - want).abs() < 1e-14,
        "{} vs {want}",
        y.item().unwrap()
    );
}

// ------------------------------------------------------------------ .grad accumulation

#[test]
fn backward_many_accumulates_into_grad_and_zero_grad_clears() {
    let x = v1(&[1.0, 2.0]).requires_grad_(true);
    let w = v1(&[-1.0, 0.5]).requires_grad_(true);
    let a = x.mul(&w).unwrap(); // d/dx = w, d/dw = x
    let b = x.mul_scalar(3.0).unwrap(); // d/dx = 3
    let ones = Tensor::ones(&[2], DType::F64).unwrap();
    backward_many(
        &[a.clone(), b.clone()],
        &[ones.clone(), v1(&[2.0, 2.0])],
        d().retain_graph(true),
    )
    .unwrap();
    assert_eq!(vals(&x.grad().unwrap()), vec![-1.0 + 6.0, 0.5 + 6.0]);
    assert_eq!(vals(&w.grad().unwrap()), vec![1.0, 2.0]);
    // a second call accumulates
    backward_many(&[a.clone()], &[ones.clone()], d().retain_graph(true)).unwrap();
    assert_eq!(vals(&x.grad().unwrap()), vec![4.0, 7.0]);
    assert_eq!(vals(&w.grad().unwrap()), vec![2.0, 4.0]);
    // zero_grad clears one leaf only
    x.zero_grad();
    assert!(x.grad().is_none());
    backward_many(&[a], &[ones], d()).unwrap();
    assert_eq!(vals(&x.grad().unwrap()), vec![-1.0, 0.5]);
    assert_eq!(vals(&w.grad().unwrap()), vec![3.0, 6.0]);
    // leaves that do not require grad get nothing; non-leaves get nothing without retain_grad
    let c = v1(&[1.0, 1.0]);
    let h = x.mul(&c).unwrap();
    h.sum_all().unwrap().backward().unwrap();
    assert!(c.grad().is_none());
    assert!(h.grad().is_none());
    // set_grad checks the shape
    assert!(x.set_grad(Some(v1(&[1.0]))).is_err());
    x.set_grad(Some(v1(&[9.0, 9.0]))).unwrap();
    assert_eq!(vals(&x.grad().unwrap()), vec![9.0, 9.0]);
}

#[test]
fn retain_grad_on_a_non_leaf() {
    let x = v1(&[1.0, -2.0]).requires_grad_(true);
    let h = x.mul_scalar(3.0).unwrap();
    h.retain_grad();
    let y = h.mul(&h).unwrap().sum_all().unwrap();
    y.backward_with(&Tensor::scalar(1.0, DType::F64), d().retain_graph(true))
        .unwrap();
    assert_eq!(vals(&h.grad().unwrap()), vec![6.0, -12.0]); // 2h
    assert_eq!(vals(&x.grad().unwrap()), vec![18.0, -36.0]);
    assert!(!h.grad().unwrap().requires_grad());
    // it accumulates like a leaf's
    y.backward().unwrap();
    assert_eq!(vals(&h.grad().unwrap()), vec![12.0, -24.0]);
}

// ------------------------------------------------------------------ hooks

#[test]
fn hooks_observe_replace_and_remove_on_leaf_and_non_leaf() {
    let seen: Arc<Mutex<Vec<Vec<f64>>>> = Arc::new(Mutex::new(Vec::new()));
    let x = v1(&[1.0, 2.0]).requires_grad_(true);
    let h = x.mul(&x).unwrap(); // dh/dx = 2x

    // observe on the non-leaf
    let s = seen.clone();
    let obs = h.register_hook(move |g| {
        s.lock().unwrap().push(g.to_vec_f64());
        Ok(None)
    });
    // replace on the non-leaf: scale the gradient flowing into x by 10
    let rep = h.register_hook(|g| Ok(Some(g.mul_scalar(10.0)?)));
    let y = h.mul_scalar(0.5).unwrap().sum_all().unwrap();
    y.backward_with(&Tensor::scalar(1.0, DType::F64), d().retain_graph(true))
        .unwrap();
    assert_eq!(seen.lock().unwrap().clone(), vec![vec![0.5, 0.5]]);
    assert_eq!(vals(&x.grad().unwrap()), vec![10.0, 20.0]); // 10 · 0.5 · 2x

    // remove both: plain gradient, nothing observed
    obs.remove();
    rep.remove();
    x.zero_grad();
    y.backward_with(&Tensor::scalar(1.0, DType::F64), d().retain_graph(true))
        .unwrap();
    assert_eq!(vals(&x.grad().unwrap()), vec![1.0, 2.0]);
    assert_eq!(seen.lock().unwrap().len(), 1);

    // on the leaf: sees the total gradient once, its replacement is what lands in .grad
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let s = seen.clone();
    let leaf_hook = x.register_hook(move |g| {
        c.fetch_add(1, Ordering::SeqCst);
        s.lock().unwrap().push(g.to_vec_f64());
        Ok(Some(g.neg()?))
    });
    x.zero_grad();
    let z = x
        .mul_scalar(2.0)
        .unwrap()
        .add(&x.mul_scalar(3.0).unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    z.backward().unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the leaf hook runs once on the summed gradient"
    );
    assert_eq!(seen.lock().unwrap().last().unwrap(), &vec![5.0, 5.0]);
    assert_eq!(vals(&x.grad().unwrap()), vec![-5.0, -5.0]);
    // leaf hooks also apply to grad()
    let g = grad(&[x.sum_all().unwrap()], &[x.clone()], None, d()).unwrap();
    assert_eq!(vals(g[0].as_ref().unwrap()), vec![-1.0, -1.0]);
    leaf_hook.remove();
    let g = grad(&[x.sum_all().unwrap()], &[x.clone()], None, d()).unwrap();
    assert_eq!(vals(g[0].as_ref().unwrap()), vec![1.0, 1.0]);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_hook_on_a_non_leaf_may_differentiate_through_its_own_node() {
    // Issue #16, finding E: the engine held the node's output list locked while it called
    // the hooks of those outputs, so a hook that walked its own tensor's node waited on that
    // lock forever. The pass runs on its own thread: a deadlock fails here instead of hanging.
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let run = || -> eingrad::Result<(Vec<f64>, Vec<f64>)> {
            let x = v1(&[0.0, 1.0]).requires_grad_(true);
            let h = x.exp()?;
            let inner = Arc::new(Mutex::new(Vec::new()));
            let (h_in, x_in, seen) = (h.clone(), x.clone(), inner.clone());
            let busy = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let hook = h.register_hook(move |_| {
                // the inner pass meets this hook again: let it through
                if busy.swap(true, Ordering::SeqCst) {
                    return Ok(None);
                }
                // d/dx Σ exp(x), through the node that made h (kept for the outer pass);
                // hooks run under no-grad like the rest of a first-order pass
                let _record = EnableGradGuard::new();
                let g = grad(
                    &[h_in.sum_all()?],
                    &[x_in.clone()],
                    None,
                    d().retain_graph(true),
                )?;
                *seen.lock().unwrap() = vals(g[0].as_ref().unwrap());
                Ok(None)
            });
            h.mul_scalar(2.0)?.sum_all()?.backward()?;
            hook.remove(); // the hook holds h: break the cycle
            let outer = vals(&x.grad().unwrap());
            let inner = inner.lock().unwrap().clone();
            Ok((inner, outer))
        };
        let _ = done.send(run().map_err(|e| e.to_string()));
    });
    let (inner, outer) = result
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the pass did not finish: a hook differentiating through its own node deadlocks")
        .unwrap();
    let e = std::f64::consts::E;
    assert!(close(&inner, &[1.0, e], 1e-15), "{inner:?}");
    assert!(close(&outer, &[2.0, 2.0 * e], 1e-15), "{outer:?}");
}

#[test]
fn hook_errors_and_wrong_shapes_propagate() {
    let x = v1(&[1.0, 2.0]).requires_grad_(true);
    let h = x.exp().unwrap();
    let _k = h.register_hook(|_| {
        Err(Error::InvalidArgument {
            op: "hook",
            arg: "g",
            msg: "hook says no".into(),
        })
    });
    let e = h.sum_all().unwrap().backward().unwrap_err().to_string();
    assert!(e.contains("hook says no"), "{e}");
    let x = v1(&[1.0, 2.0]).requires_grad_(true);
    let h = x.exp().unwrap();
    let _k = h.register_hook(|g| Ok(Some(g.sum_all()?)));
    let e = h.sum_all().unwrap().backward().unwrap_err().to_string();
    assert!(e.contains("hook result") && e.contains("[2]"), "{e}");
}

// ------------------------------------------------------------------ grad modes, detach

#[test]
fn no_grad_guard_and_closure() {
    let x = v1(&[1.0, 2.0]).requires_grad_(true);
    assert!(is_grad_enabled());
    {
        let _g = NoGradGuard::new();
        assert!(!is_grad_enabled());
        let y = x.exp().unwrap();
        assert!(!y.requires_grad() && y.is_leaf() && y.grad_fn().is_none());
        {
            let _e = EnableGradGuard::new();
            assert!(x.exp().unwrap().requires_grad());
            let _n = NoGradGuard::new();
            assert!(!x.exp().unwrap().requires_grad());
        }
        assert!(!is_grad_enabled(), "nested guards restore the outer mode");
    }
    assert!(is_grad_enabled());
    let y = no_grad(|| x.mul(&x).unwrap());
    assert!(!y.requires_grad());
    assert_eq!(vals(&y), vec![1.0, 4.0]);
    assert!(is_grad_enabled());
    assert!(x.exp().unwrap().requires_grad());
    // grad mode is per thread
    let other = std::thread::spawn(is_grad_enabled);
    let _g = NoGradGuard::new();
    assert!(other.join().unwrap());
}

#[test]
fn detach_stops_gradient_and_shares_storage() {
    let x = v1(&[1.0, 2.0]).requires_grad_(true);
    let h = x.mul_scalar(2.0).unwrap();
    let dh = h.detach();
    assert!(dh.shares_storage_with(&h));
    assert!(!dh.requires_grad() && dh.is_leaf());
    assert_eq!(vals(&dh), vals(&h));
    // y = h · stop(h): dy/dx = 2 · stop(h) = 4x, not 8x
    let y = h.mul(&dh).unwrap().sum_all().unwrap();
    let g = grad(&[y], &[x.clone()], None, d()).unwrap();
    assert_eq!(vals(g[0].as_ref().unwrap()), vec![4.0, 8.0]);
    // a function of detached tensors only has no graph
    assert!(!dh.exp().unwrap().requires_grad());
    let e = grad(&[dh.exp().unwrap()], &[x], None, d())
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not require grad"), "{e}");
}

#[test]
fn grad_fn_names_the_op_and_lists_inputs() {
    let x = v1(&[1.0, 2.0]).requires_grad_(true);
    let w = v1(&[3.0, 4.0]);
    let y = x.mul(&w).unwrap();
    let gf = y.grad_fn().expect("recorded");
    assert_eq!(gf.node.name(), "mul");
    assert_eq!(gf.node.inputs().len(), 2);
    assert_eq!(gf.node.inputs()[0].id(), x.id());
    assert_eq!(gf.node.inputs()[1].id(), w.id());
    assert!(x.grad_fn().is_none() && x.is_leaf() && x.requires_grad());
    assert!(!w.requires_grad());
    assert!(
        w.mul(&w).unwrap().grad_fn().is_none(),
        "no node when no input requires grad"
    );
}

// ------------------------------------------------------------------ anomaly mode, IEEE edges

#[test]
fn anomaly_mode_names_the_op_that_produced_nan() {
    let _l = anomaly_lock();
    // sqrt at −1 (a finite input) with upstream gradient 1: its rule computes 1 / (2·√−1) =
    // NaN. (A zero upstream gradient would give 0 there: strong zeros.)
    let run = || {
        let x = v1(&[-1.0, 4.0]).requires_grad_(true);
        let y = x.sqrt().unwrap().sum_all().unwrap();
        grad(&[y], &[x], None, d())
    };
    // off: the NaN silently reaches the result
    assert!(!is_anomaly_enabled());
    let g = run().unwrap()[0].clone().unwrap();
    assert!(vals(&g)[0].is_nan() && vals(&g)[1] == 0.25);
    {
        let _a = AnomalyGuard::new();
        assert!(is_anomaly_enabled());
        let e = run().unwrap_err();
        match &e {
            Error::Anomaly { op, what, shapes } => {
                assert_eq!(op, "sqrt");
                assert_eq!(what, "NaN");
                assert_eq!(shapes, &vec![vec![2usize]]);
            }
            other => panic!("expected an anomaly error, got {other:?}"),
        }
        assert!(
            e.to_string().contains("sqrt") && e.to_string().contains("NaN"),
            "{e}"
        );
        // an infinity is reported too: sqrt'(0) = ∞ with upstream 1
        let x = v1(&[0.0]).requires_grad_(true);
        let e = grad(&[x.sqrt().unwrap().sum_all().unwrap()], &[x], None, d())
            .unwrap_err()
            .to_string();
        assert!(e.contains("sqrt") && e.contains("infinity"), "{e}");
        // finite gradients pass untouched
        let x = v1(&[1.0]).requires_grad_(true);
        assert!(grad(&[x.sqrt().unwrap().sum_all().unwrap()], &[x], None, d()).is_ok());
    }
    assert!(
        !is_anomaly_enabled(),
        "the guard restores the previous mode"
    );
}

#[test]
fn where_with_inf_in_the_unselected_branch_gives_finite_gradients() {
    let _l = anomaly_lock();
    let m = v1(&[1.0, 0.0, 1.0, 0.0]);
    let a = v1(&[1.0, f64::INFINITY, 2.0, f64::NAN]).requires_grad_(true);
    let b = v1(&[f64::NEG_INFINITY, 3.0, f64::NAN, -1.0]).requires_grad_(true);
    let y = Tensor::where_(&m, &a, &b).unwrap();
    assert_eq!(vals(&y), vec![1.0, 3.0, 2.0, -1.0]);
    let u = v1(&[1.0, 2.0, 3.0, 4.0]);
    let g = grad(&[y], &[a.clone(), b.clone()], Some(&[u.clone()]), d()).unwrap();
    assert_eq!(vals(g[0].as_ref().unwrap()), vec![1.0, 0.0, 3.0, 0.0]);
    assert_eq!(vals(g[1].as_ref().unwrap()), vec![0.0, 2.0, 0.0, 4.0]);
    // an infinite upstream gradient only reaches the selected entries
    let y = Tensor::where_(&m, &a, &b).unwrap();
    let u = v1(&[1.0, f64::INFINITY, 1.0, 1.0]);
    let g = grad(&[y], &[a.clone()], Some(&[u]), d()).unwrap();
    assert_eq!(vals(g[0].as_ref().unwrap()), vec![1.0, 0.0, 1.0, 0.0]);
    // the same selection written as a·m + b·(1−m) has NaN values: where_ is not that
    let naive = a
        .mul(&m)
        .unwrap()
        .add(&b.mul(&m.rsub_scalar(1.0).unwrap()).unwrap())
        .unwrap();
    assert!(vals(&naive).iter().any(|v| v.is_nan()));
    // masked_fill with −∞ (attention masks): the filled entries get zero gradient
    let x = v1(&[0.5, 1.0, -0.5]).requires_grad_(true);
    let s = x
        .masked_fill(&v1(&[0.0, 1.0, 0.0]), f64::NEG_INFINITY)
        .unwrap()
        .softmax(0)
        .unwrap();
    let g = grad(
        &[s.narrow(0, 0, 1).unwrap().sum_all().unwrap()],
        &[x],
        None,
        d(),
    )
    .unwrap()[0]
        .clone()
        .unwrap();
    let gv = vals(&g);
    assert!(gv.iter().all(|v| v.is_finite()) && gv[1] == 0.0, "{gv:?}");
}

#[test]
fn adding_a_neg_inf_tensor_passes_gradient_one() {
    let _l = anomaly_lock();
    let x = v1(&[1.0, 2.0, 3.0]).requires_grad_(true);
    let c = v1(&[f64::NEG_INFINITY, 0.0, f64::NEG_INFINITY]).requires_grad_(true);
    let y = x.add(&c).unwrap();
    assert_eq!(vals(&y), vec![f64::NEG_INFINITY, 2.0, f64::NEG_INFINITY]);
    let g = grad(&[y], &[x, c], Some(&[v1(&[1.0, 1.0, 1.0])]), d()).unwrap();
    assert_eq!(vals(g[0].as_ref().unwrap()), vec![1.0, 1.0, 1.0]);
    assert_eq!(vals(g[1].as_ref().unwrap()), vec![1.0, 1.0, 1.0]);
    // broadcast −∞ bias
    let x = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]).requires_grad_(true);
    let bias = v1(&[0.0, f64::NEG_INFINITY]).requires_grad_(true);
    let y = x.add(&bias).unwrap();
    let g = grad(
        &[y],
        &[x, bias],
        Some(&[Tensor::ones(&[2, 2], DType::F64).unwrap()]),
        d(),
    )
    .unwrap();
    assert_eq!(vals(g[0].as_ref().unwrap()), vec![1.0; 4]);
    assert_eq!(vals(g[1].as_ref().unwrap()), vec![2.0, 2.0]);
}

#[test]
fn kink_conventions_relu_abs_clamp_at_zero() {
    let x = v1(&[-1.0, 0.0, 2.0]).requires_grad_(true);
    let one = |y: Tensor| {
        grad(&[y.sum_all().unwrap()], &[x.clone()], None, d()).unwrap()[0]
            .clone()
            .unwrap()
    };
    assert_eq!(vals(&one(x.relu().unwrap())), vec![0.0, 0.0, 1.0]);
    assert_eq!(vals(&one(x.abs().unwrap())), vec![-1.0, 0.0, 1.0]);
    assert_eq!(
        vals(&one(x.clamp(Some(0.0), Some(2.0)).unwrap())),
        vec![0.0, 0.0, 0.0]
    );
    assert_eq!(
        vals(&one(x.clamp(Some(-2.0), Some(3.0)).unwrap())),
        vec![1.0, 1.0, 1.0]
    );
}

#[test]
fn max_ties() {
    let x = t(&[1.0, 3.0, 3.0, 2.0, 2.0, 0.0], &[2, 3]).requires_grad_(true);
    let g = |y: Tensor| {
        grad(&[y.sum_all().unwrap()], &[x.clone()], None, d()).unwrap()[0]
            .clone()
            .unwrap()
    };
    // max_dim: the first maximal index takes the whole gradient
    let (v, i) = x.max_dim(1, false).unwrap();
    assert_eq!(i.values, vec![1, 0]);
    assert_eq!(vals(&v), vec![3.0, 2.0]);
    assert_eq!(vals(&g(v)), vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
    let (_, i) = x.min_dim(0, true).unwrap();
    assert_eq!(
        (i.values.clone(), i.shape.clone()),
        (vec![0, 1, 1], vec![1, 3])
    );
    // amax: ties share evenly
    assert_eq!(
        vals(&g(x.amax(&[1], false).unwrap())),
        vec![0.0, 0.5, 0.5, 0.5, 0.5, 0.0]
    );
    assert_eq!(
        vals(&g(x.max_all().unwrap())),
        vec![0.0, 0.5, 0.5, 0.0, 0.0, 0.0]
    );
    // maximum: a tie splits the gradient in half between the two inputs
    let a = v1(&[1.0, 2.0]).requires_grad_(true);
    let b = v1(&[1.0, 3.0]).requires_grad_(true);
    let gg = grad(
        &[a.maximum(&b).unwrap().sum_all().unwrap()],
        &[a.clone(), b.clone()],
        None,
        d(),
    )
    .unwrap();
    assert_eq!(vals(gg[0].as_ref().unwrap()), vec![0.5, 0.0]);
    assert_eq!(vals(gg[1].as_ref().unwrap()), vec![0.5, 1.0]);
}

// ------------------------------------------------------------------ deep graphs, release

/// Runs `f` on a thread with a small stack, so recursion depth proportional to the graph
/// would overflow.
fn small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn chain_of_100k_ops_backward_and_drop_without_stack_overflow() {
    small_stack(|| {
        let x = v1(&[0.5, -0.25]).requires_grad_(true);
        let mut y = x.clone();
        for i in 0..100_000 {
            y = if i % 2 == 0 {
                y.mul_scalar(1.0).unwrap()
            } else {
                y.add_scalar(1e-5).unwrap()
            };
        }
        let s = y.sum_all().unwrap();
        s.backward().unwrap();
        assert_eq!(vals(&x.grad().unwrap()), vec![1.0, 1.0]);
        assert!((vals(&y)[0] - 1.0).abs() < 1e-9);
        // the graph was freed by that backward
        let g = grad(&[s], &[x.clone()], None, d());
        assert!(g.unwrap_err().to_string().contains("second time"));
        drop(y);
        // a deep chain with two inputs per node (a ladder)
        let mut a = x.clone();
        let mut b = x.clone();
        for _ in 0..20_000 {
            let na = a.add(&b).unwrap().mul_scalar(0.5).unwrap();
            b = a;
            a = na;
        }
        let gx = grad(&[a.sum_all().unwrap()], &[x.clone()], None, d()).unwrap()[0]
            .clone()
            .unwrap();
        assert!(close(&vals(&gx), &[1.0, 1.0], 1e-12), "{:?}", vals(&gx));
        drop((a, b));
    });
}

#[test]
fn the_graph_is_released() {
    struct Marker;
    let marker = Arc::new(Marker);
    let x = v1(&[1.0, 2.0]).requires_grad_(true);
    let node_weak;
    {
        let h = x.exp().unwrap();
        let m = marker.clone();
        // a hook on an intermediate tensor owns a clone of the marker; it lives as long as
        // the intermediate tensor, which the graph keeps alive
        let _k = h.register_hook(move |_| {
            let _ = &m;
            Ok(None)
        });
        let y = h.sin().unwrap().sum_all().unwrap();
        node_weak = Arc::downgrade(&y.grad_fn().unwrap().node);
        drop(h);
        assert_eq!(
            Arc::strong_count(&marker),
            2,
            "the graph keeps the intermediate alive"
        );
        y.backward().unwrap();
        // without retain_graph the saved state is gone: walking the graph again fails
        let e = y.backward().unwrap_err().to_string();
        assert!(e.contains("second time"), "{e}");
        assert!(node_weak.upgrade().is_some());
    }
    // dropping the output frees every node and every intermediate tensor
    assert!(
        node_weak.upgrade().is_none(),
        "the output's node is still alive"
    );
    assert_eq!(
        Arc::strong_count(&marker),
        1,
        "the intermediate tensor was not freed"
    );
    assert!(x.grad().is_some());
    // retain_graph keeps the saved tensors: a second pass gives the same gradient
    let x = v1(&[0.3]).requires_grad_(true);
    let y = x.exp().unwrap().sin().unwrap().sum_all().unwrap();
    let g1 = grad(&[y.clone()], &[x.clone()], None, d().retain_graph(true)).unwrap()[0]
        .clone()
        .unwrap();
    let g2 = grad(&[y.clone()], &[x.clone()], None, d().retain_graph(true)).unwrap()[0]
        .clone()
        .unwrap();
    assert_eq!(vals(&g1), vals(&g2));
    let want = 0.3f64.exp().cos() * 0.3f64.exp();
    assert!((vals(&g1)[0] - want).abs() < 1e-15);
}

#[test]
fn update_data_after_backward_and_detached_copies() {
    // the optimizer pattern: forward, backward, update in place, forward again
    let x = v1(&[1.0, 2.0]).requires_grad_(true);
    let y = x.mul(&x).unwrap().sum_all().unwrap();
    y.backward().unwrap();
    assert_eq!(vals(&x.grad().unwrap()), vec![2.0, 4.0]);
    let snapshot = x.detach();
    let g = x.grad().unwrap();
    x.update_data::<f64>(|v| {
        v.iter_mut()
            .zip(g.to_vec_f64())
            .for_each(|(e, g)| *e -= 0.5 * g)
    })
    .unwrap();
    assert_eq!(vals(&x), vec![0.0, 0.0]);
    // a detached handle (another view of the old buffer) keeps the old values
    assert_eq!(vals(&snapshot), vec![1.0, 2.0]);
    assert!(x.requires_grad() && x.is_leaf());
    x.zero_grad();
    x.add_scalar(1.0)
        .unwrap()
        .mul(&x)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(vals(&x.grad().unwrap()), vec![1.0, 1.0]); // 2x + 1 at 0
                                                          // update_data refuses views and wrong dtypes
    assert!(x
        .narrow(0, 1, 1)
        .unwrap()
        .update_data::<f64>(|_| {})
        .is_err());
    assert!(x.update_data::<f32>(|_| {}).is_err());
}

#[test]
fn clamp_with_one_bound_passes_infinite_inputs() {
    let _l = anomaly_lock();
    let x = v1(&[f64::NEG_INFINITY, 0.5, f64::INFINITY]).requires_grad_(true);
    let g = grad(
        &[x.clamp(Some(0.0), None).unwrap().sum_all().unwrap()],
        &[x.clone()],
        None,
        d(),
    )
    .unwrap();
    assert_eq!(vals(g[0].as_ref().unwrap()), vec![0.0, 1.0, 1.0]);
    let g = grad(
        &[x.clamp(None, Some(1.0)).unwrap().sum_all().unwrap()],
        &[x.clone()],
        None,
        d(),
    )
    .unwrap();
    assert_eq!(vals(g[0].as_ref().unwrap()), vec![1.0, 1.0, 0.0]);
}

/// grad() with respect to an intermediate tensor stops there: the nodes below it are neither
/// run nor freed, so a later backward through them still works.
#[test]
fn grad_wrt_an_intermediate_does_not_run_or_free_the_nodes_below_it() {
    let x = v1(&[1.0, 2.0]).requires_grad_(true);
    let h = x.exp().unwrap();
    let y = h.mul_scalar(3.0).unwrap().sum_all().unwrap();
    let g = grad(&[y], &[h.clone()], None, d()).unwrap();
    assert_eq!(vals(g[0].as_ref().unwrap()), vec![3.0, 3.0]);
    // the exp node was not part of that pass: backward through it works (once)
    let y2 = h.sum_all().unwrap();
    let g = grad(&[y2], &[x.clone()], None, d()).unwrap();
    assert!(close(
        &vals(g[0].as_ref().unwrap()),
        &[1f64.exp(), 2f64.exp()],
        1e-15
    ));
    // and a hook below the target never fires
    let fired = Arc::new(AtomicUsize::new(0));
    let f = fired.clone();
    let x = v1(&[1.0]).requires_grad_(true);
    let a = x.sin().unwrap();
    let _k = a.register_hook(move |_| {
        f.fetch_add(1, Ordering::SeqCst);
        Ok(None)
    });
    let b = a.mul_scalar(2.0).unwrap();
    let c = b.exp().unwrap().sum_all().unwrap();
    grad(&[c], &[b], None, d()).unwrap();
    assert_eq!(fired.load(Ordering::SeqCst), 0);
}

#[test]
fn leaf_gradient_is_stored_dense_even_from_a_broadcast() {
    let p = eingrad::Tensor::ones(&[3, 4], eingrad::DType::F64)
        .unwrap()
        .requires_grad_(true);
    p.sum_all().unwrap().backward().unwrap();
    let g = p.grad().unwrap();
    assert!(
        g.is_contiguous() && g.strides() == [4, 1],
        "{:?}",
        g.strides()
    );
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![1.0; 12]);
}
