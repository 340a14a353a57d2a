//! Memory and re-entrancy (issue #16): what a backward pass frees, the reference cycles a
//! hook or a `.grad` can close and their way out, and backward passes started from inside
//! one another.
//!
//! Live heap bytes are counted by this binary's global allocator; the tests that read the
//! count take a lock so that no other test of this binary allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use eingrad::autograd::{grad, EnableGradGuard, GradOptions, Node};
use eingrad::{DType, Error, Result, Tensor};

/// Counts the bytes this process has allocated and not yet freed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc_zeroed(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const MB: f64 = (1 << 20) as f64;

/// Serialises the tests of this binary (they read a process-wide counter).
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn node_of(t: &Tensor) -> Weak<Node> {
    Arc::downgrade(&t.grad_fn().expect("recorded").node)
}

/// Runs `f` on a thread of its own and fails when it does not finish within `secs`.
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("did not finish in time (deadlock, endless re-entry, or a crash)")
}

// ------------------------------------------------------------------------------ release

#[test]
fn a_32_mb_activation_graph_frees_its_saved_tensors_at_backward_while_the_loss_lives() {
    let _s = serial();
    const N: usize = 8 << 20; // 8 Mi f32 = 32 MiB per activation
    const LAYERS: usize = 8;
    let act = (N * 4) as f64;
    let x = Tensor::full(&[N], 0.5, DType::F32)
        .unwrap()
        .requires_grad_(true);
    let base = live_bytes();
    let mut h = x.clone();
    for _ in 0..LAYERS {
        // tanh saves its output, mul its two operands: every activation is saved
        h = h.tanh().unwrap().mul_scalar(0.9).unwrap();
    }
    let loss = h.sum_all().unwrap();
    drop(h);
    let after_forward = live_bytes() - base;
    loss.backward().unwrap();
    let after_backward = live_bytes() - base;
    eprintln!(
        "live bytes above the input: after forward {:.0} MB, after backward with the loss \
         alive {:.0} MB",
        after_forward as f64 / MB,
        after_backward as f64 / MB
    );
    // Forward: two activations per layer (tanh's output, the scaled one).
    assert!(after_forward as f64 >= (2 * LAYERS) as f64 * act * 0.9);
    // After backward only x.grad (one activation) is left, although the loss lives.
    assert!(x.grad().is_some());
    assert!(
        (after_backward as f64) < 1.5 * act,
        "{:.0} MB still live after backward",
        after_backward as f64 / MB
    );
    // The graph's structure is still there: a second backward names the freed graph.
    let e = loss.backward().unwrap_err().to_string();
    assert!(e.contains("second time"), "{e}");
    drop(loss);
    assert!(((live_bytes() - base) as f64) < 1.5 * act);
}

#[test]
fn a_thousand_steps_that_keep_their_loss_tensors_stay_flat() {
    let _s = serial();
    let w = Tensor::randn(&[128, 128], DType::F32, 7)
        .unwrap()
        .mul_scalar(0.05)
        .unwrap()
        .requires_grad_(true);
    let mut losses: Vec<Tensor> = Vec::new();
    let mut seed = 0;
    let mut step = |losses: &mut Vec<Tensor>| {
        // a fresh batch each step (a leaf that does not require grad), two 64 KiB activations
        seed += 1;
        let x = Tensor::randn(&[128, 128], DType::F32, seed).unwrap();
        let loss = eingrad::einsum("ij,jk->ik", &[&x, &w])
            .unwrap()
            .tanh()
            .unwrap()
            .sum_all()
            .unwrap();
        w.zero_grad();
        loss.backward().unwrap();
        w.update_data::<f32>(|d| d.iter_mut().for_each(|v| *v *= 0.999))
            .unwrap();
        losses.push(loss);
    };
    for _ in 0..100 {
        step(&mut losses);
    }
    let at_100 = live_bytes();
    for _ in 100..1000 {
        step(&mut losses);
    }
    let per_step = (live_bytes() - at_100) as f64 / 900.0;
    eprintln!("live bytes grow {per_step:.0} bytes per step that keeps its loss");
    // One step's batch and activations are 192 KiB; what a kept loss holds is its graph's
    // structure (three small nodes), not their tensors.
    assert!(per_step < 4096.0, "{per_step} bytes per step");
    assert!(losses.iter().all(|l| l.item().unwrap().is_finite()));
}

#[test]
fn a_freed_node_keeps_its_edges_and_reports_the_freed_graph() {
    let _s = serial();
    let x = Tensor::from_vec(vec![0.5f64, 1.5], &[2])
        .unwrap()
        .requires_grad_(true);
    let h = x.exp().unwrap();
    let h_node = node_of(&h);
    let y = h.sin().unwrap().sum_all().unwrap();
    let sin = y.grad_fn().unwrap().node.inputs()[0]
        .grad_fn()
        .unwrap()
        .node
        .clone();
    drop(h);
    y.backward().unwrap();
    // the exp output is gone (nothing but the graph held it): a stand-in with its edge
    let stand_in = &sin.inputs()[0];
    assert_eq!(stand_in.dims(), &[2]);
    assert!(stand_in.to_vec_f64().iter().all(|v| v.is_nan()));
    let exp = &stand_in.grad_fn().unwrap().node;
    assert!(Arc::ptr_eq(exp, &h_node.upgrade().unwrap()));
    // the leaf that requires grad is kept, and is the same tensor
    assert_eq!(exp.inputs()[0].id(), x.id());
    // an input the caller still holds comes back as itself
    let x2 = Tensor::from_vec(vec![0.5f64], &[1])
        .unwrap()
        .requires_grad_(true);
    let a = x2.exp().unwrap();
    let b = a.sin().unwrap();
    b.sum_all().unwrap().backward().unwrap();
    assert_eq!(b.grad_fn().unwrap().node.inputs()[0].id(), a.id());
    assert_eq!(vals(&b.grad_fn().unwrap().node.inputs()[0]), vals(&a));
    // grad through the freed part fails the same way
    let e = grad(&[y], &[x], None, GradOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("second time"), "{e}");
}

#[test]
fn retain_graph_keeps_the_inputs_for_a_second_pass() {
    let _s = serial();
    let x = Tensor::from_vec(vec![0.3f64, 0.7], &[2])
        .unwrap()
        .requires_grad_(true);
    let y = x.exp().unwrap().tanh().unwrap().sum_all().unwrap();
    let opts = GradOptions::default().retain_graph(true);
    let g1 = grad(&[y.clone()], &[x.clone()], None, opts).unwrap()[0]
        .clone()
        .unwrap();
    let g2 = grad(&[y.clone()], &[x.clone()], None, GradOptions::default()).unwrap()[0]
        .clone()
        .unwrap();
    assert_eq!(vals(&g1), vals(&g2));
    let tanh = y.grad_fn().unwrap().node.inputs()[0].clone();
    assert!(tanh.to_vec_f64().iter().all(|v| v.is_nan()), "freed now");
}

// ------------------------------------------------------------------------------ cycles

/// Case 1 of finding G: a hook that holds its own tensor is a reference cycle (the tensor owns
/// its hooks). It cannot be broken from inside (the closure is the user's), so the way out is
/// shown: remove the hook with its handle, or capture a `WeakTensor`.
#[test]
fn a_hook_that_captures_its_own_tensor_is_freed_by_remove_or_a_weak_handle() {
    let _s = serial();
    let x = Tensor::from_vec(vec![0.5f64, 1.0], &[2])
        .unwrap()
        .requires_grad_(true);
    // strong capture: alive until the hook is removed
    let h = x.exp().unwrap();
    let node = node_of(&h);
    let me = h.clone();
    let handle = h.register_hook(move |g| Ok(Some(g.mul(&me.detach())?)));
    h.sum_all().unwrap().backward().unwrap();
    drop(h);
    assert!(node.upgrade().is_some(), "the cycle keeps the node alive");
    handle.remove();
    assert!(node.upgrade().is_none(), "removing the hook frees it");

    // weak capture: no cycle at all
    let h = x.exp().unwrap();
    let node = node_of(&h);
    let me = h.downgrade();
    h.register_hook(move |g| match me.upgrade() {
        Some(h) => Ok(Some(g.mul(&h.detach())?)),
        None => Ok(None),
    });
    x.zero_grad();
    h.sum_all().unwrap().backward().unwrap();
    // the hook ran: d/dx Σ eˣ with the gradient scaled by eˣ once more
    let want: Vec<f64> = [0.5f64, 1.0].iter().map(|v| (2.0 * v).exp()).collect();
    assert_close(&vals(&x.grad().unwrap()), &want);
    drop(h);
    assert!(node.upgrade().is_none(), "a weak capture closes no cycle");

    // the same on a leaf
    let leaf = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
    let me = leaf.downgrade();
    leaf.register_hook(move |g| me.upgrade().map(|_| g.mul_scalar(2.0)).transpose());
    let probe = leaf.downgrade();
    leaf.sum_all().unwrap().backward().unwrap();
    assert_eq!(vals(&leaf.grad().unwrap()), vec![2.0, 2.0]);
    drop(leaf);
    assert!(probe.upgrade().is_none());
}

/// Case 2 of finding G: `backward(create_graph)` stores into a leaf's `.grad` a gradient whose
/// graph holds the leaf (its rules saved it). The way out: clear `.grad` (what an optimizer's
/// `zero_grad` does) before dropping the leaf, or ask `grad` for create_graph gradients, which
/// stores nothing and closes no cycle.
#[test]
fn a_create_graph_gradient_in_a_leafs_grad_is_freed_by_zero_grad_or_by_using_grad() {
    let _s = serial();
    let make = || {
        Tensor::from_vec(vec![0.5f64, 2.0], &[2])
            .unwrap()
            .requires_grad_(true)
    };
    let cube = |x: &Tensor| x.mul(x).unwrap().mul(x).unwrap().sum_all().unwrap();
    let opts = GradOptions::default().create_graph(true);

    // the cycle, shown: leaf → .grad → its graph → the leaf
    let x = make();
    let probe = x.downgrade();
    cube(&x)
        .backward_with(&Tensor::ones(&[], DType::F64).unwrap(), opts)
        .unwrap();
    let g_node = node_of(&x.grad().unwrap());
    assert_eq!(vals(&x.grad().unwrap()), vec![0.75, 12.0]);
    drop(x);
    let leaked = probe.upgrade().is_some() && g_node.upgrade().is_some();
    // (break it here so that the test binary does not keep it)
    if let Some(x) = probe.upgrade() {
        x.zero_grad();
    }
    assert!(leaked, "expected the documented cycle");
    assert!(probe.upgrade().is_none() && g_node.upgrade().is_none());

    // way out 1: zero_grad before the leaf goes
    let x = make();
    let probe = x.downgrade();
    cube(&x)
        .backward_with(&Tensor::ones(&[], DType::F64).unwrap(), opts)
        .unwrap();
    let g_node = node_of(&x.grad().unwrap());
    // the gradient is differentiable (the reason for create_graph)
    let gg = grad(
        &[x.grad().unwrap().sum_all().unwrap()],
        &[x.clone()],
        None,
        opts,
    )
    .unwrap();
    assert_eq!(vals(gg[0].as_ref().unwrap()), vec![3.0, 12.0]);
    drop(gg);
    x.zero_grad();
    drop(x);
    assert!(probe.upgrade().is_none() && g_node.upgrade().is_none());

    // way out 2: grad returns the gradient instead of storing it
    let x = make();
    let probe = x.downgrade();
    let g = grad(&[cube(&x)], &[x.clone()], None, opts).unwrap()[0]
        .clone()
        .unwrap();
    let g_node = node_of(&g);
    drop((x, g));
    assert!(probe.upgrade().is_none() && g_node.upgrade().is_none());
}

/// Case 3 of finding G: `retain_grad` on a non-leaf under `create_graph` stores a gradient
/// whose graph holds the non-leaf itself (the consumer's rule saved it). Clearing its `.grad`
/// breaks the cycle and frees the whole graph behind it.
#[test]
fn a_retained_create_graph_gradient_of_a_non_leaf_is_freed_by_zero_grad() {
    let _s = serial();
    let opts = GradOptions::default().create_graph(true);
    let run = |clear: bool| {
        let x = Tensor::from_vec(vec![0.5f64, 2.0], &[2])
            .unwrap()
            .requires_grad_(true);
        let h = x.exp().unwrap();
        h.retain_grad();
        let h_node = node_of(&h);
        let y = h.mul(&h).unwrap().sum_all().unwrap();
        y.backward_with(&Tensor::ones(&[], DType::F64).unwrap(), opts)
            .unwrap();
        // d(Σh²)/dh = 2h
        let want: Vec<f64> = vals(&h).iter().map(|v| 2.0 * v).collect();
        assert_close(&vals(&h.grad().unwrap()), &want);
        let g_node = node_of(&h.grad().unwrap());
        // (the leaf's own create_graph gradient is case 2: cleared here)
        x.zero_grad();
        if clear {
            h.zero_grad();
        }
        let probe = h.downgrade();
        drop((x, h, y));
        let leaked = h_node.upgrade().is_some() || g_node.upgrade().is_some();
        if let Some(h) = probe.upgrade() {
            h.zero_grad();
        }
        assert!(h_node.upgrade().is_none() && g_node.upgrade().is_none());
        leaked
    };
    assert!(run(false), "expected the documented cycle");
    assert!(!run(true), "zero_grad frees it");
}

// --------------------------------------------------------------------------- re-entrancy

#[test]
fn a_leaf_hook_that_calls_grad_on_its_own_leaf_is_an_error_not_a_stack_overflow() {
    let _s = serial();
    let e = within(60, || {
        let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2])
            .unwrap()
            .requires_grad_(true);
        let me = x.downgrade();
        x.register_hook(move |g| {
            let Some(x) = me.upgrade() else {
                return Ok(None);
            };
            // hooks run in the pass's grad mode (off without create_graph), as in PyTorch
            let _on = EnableGradGuard::new();
            let y = x.mul(&x)?.sum_all()?;
            let inner = grad(&[y], &[x], None, GradOptions::default())?;
            Ok(Some(g.add(inner[0].as_ref().expect("used"))?))
        });
        let y = x.sum_all().unwrap();
        grad(&[y], &[x], None, GradOptions::default())
            .map(|_| ())
            .unwrap_err()
    });
    assert!(
        matches!(
            e,
            Error::Autograd(eingrad::error::AutogradError::ReentrantDepth { depth: 64 })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("reentrant"), "{e}");
    // the same from create_graph passes, whose grad mode the hook inherits, through backward
    let e = within(60, || {
        let x = Tensor::from_vec(vec![1.0f64], &[1])
            .unwrap()
            .requires_grad_(true);
        let me = x.downgrade();
        x.register_hook(move |g| {
            let x = me.upgrade().expect("alive");
            let y = x.exp()?.sum_all()?;
            let opts = GradOptions::default().create_graph(true);
            y.backward_with(&Tensor::ones(&[], DType::F64)?, opts)?;
            Ok(Some(g.clone()))
        });
        let y = x.exp().unwrap().sum_all().unwrap();
        let opts = GradOptions::default().create_graph(true);
        y.backward_with(&Tensor::ones(&[], DType::F64).unwrap(), opts)
            .unwrap_err()
    });
    assert!(e.to_string().contains("reentrant"), "{e}");
}

#[test]
fn a_hook_that_calls_grad_on_another_function_gets_the_right_gradient() {
    let _s = serial();
    let g = within(60, || -> Result<Vec<f64>> {
        let x = Tensor::from_vec(vec![0.5f64, 1.5], &[2])?.requires_grad_(true);
        let h = x.exp()?;
        let xw = x.downgrade();
        // the hook adds ∂(Σx³)/∂x (a backward pass of its own) to h's gradient
        h.register_hook(move |g| {
            let x = xw.upgrade().expect("alive");
            let _on = EnableGradGuard::new();
            let c = x.mul(&x)?.mul(&x)?.sum_all()?;
            let dc = grad(&[c], &[x], None, GradOptions::default())?;
            Ok(Some(g.add(dc[0].as_ref().expect("used"))?))
        });
        let y = h.sum_all()?;
        let gx = grad(&[y], &[x], None, GradOptions::default())?;
        Ok(vals(gx[0].as_ref().expect("used")))
    })
    .unwrap();
    // (1 + 3x²)·eˣ
    let want: Vec<f64> = [0.5f64, 1.5]
        .iter()
        .map(|v| (1.0 + 3.0 * v * v) * v.exp())
        .collect();
    assert_close(&g, &want);
}

#[test]
fn a_hook_may_register_and_remove_hooks_and_read_grads_without_deadlock() {
    let _s = serial();
    within(60, || {
        let x = Tensor::ones(&[2], DType::F64).unwrap().requires_grad_(true);
        let me = x.downgrade();
        x.register_hook(move |_| {
            let x = me.upgrade().expect("alive");
            let _ = x.grad();
            x.register_hook(|_| Ok(None)).remove();
            Ok(None)
        });
        x.sum_all().unwrap().backward().unwrap();
        assert_eq!(vals(&x.grad().unwrap()), vec![1.0, 1.0]);
    });
}

fn vals(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64()
}

fn assert_close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-9 * (1.0 + y.abs()), "{a:?} vs {b:?}");
    }
}
