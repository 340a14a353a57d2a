//! Grad mode (thread-local) and anomaly mode (global).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}
static ANOMALY: AtomicBool = AtomicBool::new(false);

/// True unless inside a no-grad scope on this thread.
///
/// ```
/// use eingrad::autograd::{is_grad_enabled, no_grad};
/// assert!(is_grad_enabled());
/// no_grad(|| assert!(!is_grad_enabled()));
/// ```
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

fn set_grad_enabled(on: bool) -> bool {
    GRAD_ENABLED.with(|g| g.replace(on))
}

/// Disables recording until dropped (PyTorch's `torch.no_grad()`).
///
/// ```
/// let _g = eingrad::autograd::NoGradGuard::new();
/// assert!(!eingrad::autograd::is_grad_enabled());
/// ```
pub struct NoGradGuard {
    prev: bool,
}
impl NoGradGuard {
    /// Enters a no-grad scope.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        NoGradGuard {
            prev: set_grad_enabled(false),
        }
    }
}
impl Drop for NoGradGuard {
    fn drop(&mut self) {
        set_grad_enabled(self.prev);
    }
}

/// Re-enables recording until dropped (PyTorch's `torch.enable_grad()`).
pub struct EnableGradGuard {
    prev: bool,
}
impl EnableGradGuard {
    /// Enters a grad-enabled scope.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        EnableGradGuard {
            prev: set_grad_enabled(true),
        }
    }
}
impl Drop for EnableGradGuard {
    fn drop(&mut self) {
        set_grad_enabled(self.prev);
    }
}

/// Runs `f` with recording disabled.
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _g = NoGradGuard::new();
    f()
}

/// True when anomaly detection is on.
pub fn is_anomaly_enabled() -> bool {
    ANOMALY.load(Ordering::Relaxed)
}

/// Turns anomaly detection on or off globally: backward then checks every gradient a rule
/// produces and fails naming the first op that produced NaN or infinity.
pub fn set_anomaly_enabled(on: bool) {
    ANOMALY.store(on, Ordering::Relaxed)
}

/// Enables anomaly detection until dropped.
pub struct AnomalyGuard {
    prev: bool,
}
impl AnomalyGuard {
    /// Turns anomaly detection on.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        AnomalyGuard {
            prev: ANOMALY.swap(true, Ordering::Relaxed),
        }
    }
}
impl Drop for AnomalyGuard {
    fn drop(&mut self) {
        ANOMALY.store(self.prev, Ordering::Relaxed);
    }
}
