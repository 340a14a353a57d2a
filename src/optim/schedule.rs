//! Learning-rate schedules: [`LrSchedule`], [`Constant`], and nanoGPT's [`WarmupCosine`].

use crate::error::{Error, Result};

/// A learning rate as a function of the step (the iteration number, from 0). The training
/// loop applies it before each step with [`Optimizer::set_lr`](crate::optim::Optimizer::set_lr);
/// the step counter is the loop's, so resuming from a checkpoint needs only that number.
///
/// ```
/// use eingrad::optim::{LrSchedule, WarmupCosine};
/// let s = WarmupCosine::new(1.0, 0.0, 1, 3).unwrap();
/// let lrs: Vec<f64> = (0..5).map(|it| s.lr_at(it)).collect();
/// assert_eq!(lrs, vec![0.5, 1.0, 0.5, 0.0, 0.0]);
/// ```
pub trait LrSchedule {
    /// The learning rate to use at step `step`.
    fn lr_at(&self, step: u64) -> f64;
}

/// The same learning rate at every step.
///
/// ```
/// use eingrad::optim::{Constant, LrSchedule};
/// assert_eq!(Constant::new(3e-4).unwrap().lr_at(1_000_000), 3e-4);
/// assert!(Constant::new(f64::NAN).unwrap_err().to_string().contains("`lr`"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Constant {
    lr: f64,
}

impl Constant {
    /// A constant schedule; `lr` must be finite and ≥ 0.
    ///
    /// ```
    /// assert!(eingrad::optim::Constant::new(-1.0).is_err());
    /// ```
    pub fn new(lr: f64) -> Result<Constant> {
        check_rate("Constant::new", "lr", lr)?;
        Ok(Constant { lr })
    }
}

impl LrSchedule for Constant {
    fn lr_at(&self, _step: u64) -> f64 {
        self.lr
    }
}

/// Linear warmup then cosine decay, exactly nanoGPT's `get_lr(it)`:
///
/// ```text
/// it < warmup_steps   →  max_lr · (it + 1) / (warmup_steps + 1)
/// it > decay_steps    →  min_lr
/// otherwise           →  min_lr + c · (max_lr − min_lr),  c = ½(1 + cos(π · r)),
///                        r = (it − warmup_steps) / (decay_steps − warmup_steps)
/// ```
///
/// The warmup never reaches `max_lr` (its last step is `max_lr · w/(w + 1)`); step
/// `warmup_steps` is the peak, and step `decay_steps` is the first at `min_lr`.
///
/// ```
/// use eingrad::optim::{LrSchedule, WarmupCosine};
/// let s = WarmupCosine::new(6e-4, 6e-5, 2000, 600_000).unwrap();
/// assert_eq!(s.lr_at(0), 6e-4 * 1.0 / 2001.0);
/// assert_eq!(s.lr_at(2000), 6e-4);
/// assert_eq!(s.lr_at(600_000), 6e-5);
/// assert_eq!(s.lr_at(700_000), 6e-5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmupCosine {
    max_lr: f64,
    min_lr: f64,
    warmup_steps: u64,
    decay_steps: u64,
}

impl WarmupCosine {
    /// The schedule rising to `max_lr` over `warmup_steps` and decaying to `min_lr` at
    /// `decay_steps` (nanoGPT's `learning_rate`, `min_lr`, `warmup_iters`,
    /// `lr_decay_iters`). Needs `0 ≤ min_lr ≤ max_lr`, both finite, and
    /// `warmup_steps < decay_steps` (nanoGPT divides by their difference).
    ///
    /// ```
    /// use eingrad::optim::WarmupCosine;
    /// let e = WarmupCosine::new(1e-3, 1e-4, 100, 50).unwrap_err().to_string();
    /// assert!(e.contains("warmup_steps"), "{e}");
    /// let e = WarmupCosine::new(1e-3, f64::NAN, 10, 50).unwrap_err().to_string();
    /// assert!(e.contains("min_lr"), "{e}");
    /// ```
    pub fn new(
        max_lr: f64,
        min_lr: f64,
        warmup_steps: u64,
        decay_steps: u64,
    ) -> Result<WarmupCosine> {
        const OP: &str = "WarmupCosine::new";
        check_rate(OP, "max_lr", max_lr)?;
        check_rate(OP, "min_lr", min_lr)?;
        if min_lr > max_lr {
            return Err(Error::arg(
                OP,
                "min_lr",
                format!("must be ≤ max_lr ({max_lr}), got {min_lr}"),
            ));
        }
        if warmup_steps >= decay_steps {
            return Err(Error::arg(
                OP,
                "warmup_steps",
                format!(
                    "must be < decay_steps ({decay_steps}), got {warmup_steps} (the cosine \
                     runs from warmup_steps to decay_steps)"
                ),
            ));
        }
        Ok(WarmupCosine {
            max_lr,
            min_lr,
            warmup_steps,
            decay_steps,
        })
    }
}

impl LrSchedule for WarmupCosine {
    fn lr_at(&self, step: u64) -> f64 {
        let (w, d) = (self.warmup_steps, self.decay_steps);
        if step < w {
            // The order of nanoGPT's `learning_rate * (it + 1) / (warmup_iters + 1)`.
            return self.max_lr * (step + 1) as f64 / (w + 1) as f64;
        }
        if step > d {
            return self.min_lr;
        }
        let ratio = (step - w) as f64 / (d - w) as f64;
        let coeff = 0.5 * (1.0 + (std::f64::consts::PI * ratio).cos());
        self.min_lr + coeff * (self.max_lr - self.min_lr)
    }
}

fn check_rate(op: &'static str, arg: &'static str, v: f64) -> Result<()> {
    if !(v.is_finite() && v >= 0.0) {
        return Err(Error::arg(
            op,
            arg,
            format!("must be finite and ≥ 0, got {v}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values written down by hand: warmup 4 in steps of 1/5, the peak, the cosine's midpoint
    /// and quarter points, and the floor.
    #[test]
    fn warmup_cosine_hand_values() {
        let s = WarmupCosine::new(1.0, 0.2, 4, 8).unwrap();
        let near = |it: u64, lr: f64| {
            let got = s.lr_at(it);
            assert!((got - lr).abs() < 1e-15, "step {it}: {got} vs {lr}");
        };
        near(0, 0.2);
        near(1, 0.4);
        near(2, 0.6);
        near(3, 0.8);
        near(4, 1.0); // ratio 0: c = 1
        near(6, 0.6); // ratio ½: c = ½, 0.2 + ½·0.8
        near(8, 0.2); // ratio 1: c = 0
        near(9, 0.2); // past decay_steps
        near(u64::MAX, 0.2);
        // ratio ¼: c = ½(1 + cos(π/4)) = ½ + √2/4; ratio ¾: 1 − that
        let c = 0.5 + 2f64.sqrt() / 4.0;
        near(5, 0.2 + c * 0.8);
        near(7, 0.2 + (1.0 - c) * 0.8);
    }

    /// nanoGPT's shakespeare-char config (learning_rate 1e-3, min_lr 1e-4, warmup_iters 100,
    /// lr_decay_iters 5000); the numbers are what its `get_lr` returns in CPython 3.11 (glibc
    /// `cos`), and the Rust formula reproduces them bit for bit.
    #[test]
    fn warmup_cosine_matches_nanogpt_shakespeare_char() {
        let s = WarmupCosine::new(1e-3, 1e-4, 100, 5000).unwrap();
        let want = [
            (0, 9.900990099009901e-06),
            (99, 0.0009900990099009901),
            (100, 0.001),
            (1000, 0.0009271396472013282),
            (2550, 0.00055),
            (4999, 0.00010000009248900101),
            (5000, 0.0001),
            (5001, 0.0001),
        ];
        for (it, lr) in want {
            assert_eq!(s.lr_at(it), lr, "step {it}");
        }
    }

    #[test]
    fn bad_arguments_name_the_argument() {
        let msg = |r: Result<WarmupCosine>| r.unwrap_err().to_string();
        assert!(msg(WarmupCosine::new(-1.0, 0.0, 1, 2)).contains("`max_lr`"));
        assert!(msg(WarmupCosine::new(f64::INFINITY, 0.0, 1, 2)).contains("`max_lr`"));
        assert!(msg(WarmupCosine::new(1.0, f64::NAN, 1, 2)).contains("`min_lr`"));
        assert!(msg(WarmupCosine::new(1.0, 2.0, 1, 2)).contains("`min_lr`"));
        assert!(msg(WarmupCosine::new(1.0, 0.0, 5, 5)).contains("`warmup_steps`"));
        assert!(msg(WarmupCosine::new(1.0, 0.0, 6, 5)).contains("`warmup_steps`"));
        assert!(Constant::new(-0.1)
            .unwrap_err()
            .to_string()
            .contains("`lr`"));
    }
}
