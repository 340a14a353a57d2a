//! [`Dropout`]: zeroes each element with probability `p` in training and scales the rest by
//! `1/(1 − p)`; the identity in eval mode. Seeded: the `k`-th forward call draws its mask
//! from `(seed, k)`, so a run is reproducible and a resumed run can continue the stream.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{derive_seed, Module};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Inverted dropout with a seeded mask stream.
///
/// ```
/// use eingrad::nn::{Dropout, Module};
/// use eingrad::{DType, Tensor};
/// let mut d = Dropout::new(0.5, 7).unwrap();
/// let x = Tensor::ones(&[1000], DType::F64).unwrap();
/// let y = d.forward(&x).unwrap().to_vec::<f64>().unwrap();
/// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
/// let kept = y.iter().filter(|&&v| v == 2.0).count();
/// assert!((400..600).contains(&kept));
/// d.eval();
/// assert_eq!(d.forward(&x).unwrap().to_vec::<f64>().unwrap(), vec![1.0; 1000]);
/// assert!(Dropout::new(1.5, 0).is_err());
/// ```
pub struct Dropout {
    p: f64,
    seed: u64,
    calls: AtomicU64,
    training: bool,
}

impl Clone for Dropout {
    fn clone(&self) -> Dropout {
        Dropout {
            p: self.p,
            seed: self.seed,
            calls: AtomicU64::new(self.calls.load(Ordering::Relaxed)),
            training: self.training,
        }
    }
}

impl Dropout {
    /// Dropout with probability `p ∈ [0, 1]`, in training mode.
    pub fn new(p: f64, seed: u64) -> Result<Dropout> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::arg(
                "Dropout::new",
                "p",
                format!("must be a probability in [0, 1], got {p}"),
            ));
        }
        Ok(Dropout {
            p,
            seed,
            calls: AtomicU64::new(0),
            training: true,
        })
    }
    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }
    /// How many masks have been drawn (the position in the mask stream).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
    /// Moves the mask stream to position `calls` (to resume a run).
    pub fn set_calls(&self, calls: u64) {
        self.calls.store(calls, Ordering::Relaxed)
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !self.training || self.p == 0.0 {
            return Ok(x.clone());
        }
        if self.p == 1.0 {
            return x.mul_scalar(0.0);
        }
        let k = self.calls.fetch_add(1, Ordering::Relaxed);
        let keep = 1.0 / (1.0 - self.p);
        let u = Tensor::rand(x.dims(), x.dtype(), derive_seed(self.seed, k))?;
        let p = self.p;
        let mask: Vec<f64> = u
            .to_vec_f64()
            .into_iter()
            .map(|v| if v < p { 0.0 } else { keep })
            .collect();
        x.mul(&Tensor::from_f64s(&mask, x.dims(), x.dtype())?)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }
    fn train(&mut self, on: bool) {
        self.training = on;
    }
    fn is_training(&self) -> bool {
        self.training
    }
}

impl std::fmt::Debug for Dropout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dropout(p={})", self.p)
    }
}
