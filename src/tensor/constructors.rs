//! Ways to make a tensor: from data, filled, ranges, identity, seeded random.

use super::Tensor;
use crate::dtype::{DType, Float};
use crate::error::{Error, Result};
use crate::layout::checked_numel;
use crate::storage::{try_filled, try_zeroed};
use crate::with_dtype;

/// SplitMix64: a small, fast generator whose stream depends only on the seed.
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    /// The step between states (2⁶⁴ / φ).
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(Self::GOLDEN);
        Self::finalise(self.0)
    }
    /// The output function: a bijective mix of the state's 64 bits.
    fn finalise(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// An independent seed for part `k` of something seeded with `seed`: output `k` of the
    /// stream started at `seed + salt` (nearby seeds give unrelated streams; each user picks
    /// its own `salt`).
    pub(crate) fn derive(seed: u64, k: u64, salt: u64) -> u64 {
        Self::finalise(
            seed.wrapping_add(k.wrapping_add(1).wrapping_mul(Self::GOLDEN))
                .wrapping_add(salt),
        )
    }
    /// Uniform in [0, 1) with 53 random bits.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Standard normal (Box–Muller).
    pub(crate) fn next_normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // (0, 1]
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

impl Tensor {
    /// A tensor owning `data` with the given shape.
    ///
    /// ```
    /// let t = eingrad::Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// assert_eq!(t.dims(), &[2, 2]);
    /// assert!(eingrad::Tensor::from_vec(vec![1.0f32], &[2]).is_err());
    /// ```
    pub fn from_vec<T: Float>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        let n = checked_numel("from_vec", shape)?;
        if data.len() != n {
            return Err(Error::arg(
                "from_vec",
                "shape",
                format!("{shape:?} holds {n} elements but data has {}", data.len()),
            ));
        }
        Ok(Tensor::from_buf(data, shape))
    }
    /// A tensor copying `data`.
    pub fn from_slice<T: Float>(data: &[T], shape: &[usize]) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), shape)
    }
    /// A tensor of f64 values converted to `dtype`.
    ///
    /// ```
    /// let t = eingrad::Tensor::from_f64s(&[0.5, 1.5], &[2], eingrad::DType::F32).unwrap();
    /// assert_eq!(t.to_vec::<f32>().unwrap(), vec![0.5, 1.5]);
    /// ```
    pub fn from_f64s(data: &[f64], shape: &[usize], dtype: DType) -> Result<Tensor> {
        with_dtype!(dtype, T => Tensor::from_vec(data.iter().map(|&v| T::of(v)).collect::<Vec<T>>(), shape))
    }
    /// A zero-dimensional tensor.
    pub fn scalar(v: f64, dtype: DType) -> Tensor {
        with_dtype!(dtype, T => Tensor::from_buf(vec![T::of(v)], &[]))
    }
    /// All elements equal to `value`. Errors when the shape's element count overflows or its
    /// memory cannot be allocated.
    ///
    /// ```
    /// use eingrad::{DType, Tensor};
    /// let t = Tensor::full(&[2, 2], 0.5, DType::F32).unwrap();
    /// assert_eq!(t.to_vec::<f32>().unwrap(), vec![0.5; 4]);
    /// assert!(Tensor::full(&[1 << 40, 1 << 40], 0.5, DType::F32).is_err());
    /// ```
    pub fn full(shape: &[usize], value: f64, dtype: DType) -> Result<Tensor> {
        Tensor::filled("full", shape, value, dtype)
    }
    /// [`Tensor::full`] on behalf of `op`.
    pub(crate) fn filled(
        op: &'static str,
        shape: &[usize],
        value: f64,
        dtype: DType,
    ) -> Result<Tensor> {
        let n = checked_numel(op, shape)?;
        with_dtype!(dtype, T => {
            let buf = if value.to_bits() == 0 {
                try_zeroed(op, shape, n)?
            } else {
                try_filled(op, shape, n, T::of(value))?
            };
            Ok(Tensor::from_buf(buf, shape))
        })
    }
    /// All zeros.
    ///
    /// ```
    /// use eingrad::{DType, Tensor};
    /// let z = Tensor::zeros(&[2, 3], DType::F64)?;
    /// assert_eq!(z.to_vec::<f64>()?, vec![0.0; 6]);
    /// assert!(z.zeros_like()?.dims() == z.dims() && z.ones_like()?.sum_all()?.item()? == 6.0);
    /// # Ok::<(), eingrad::Error>(())
    /// ```
    pub fn zeros(shape: &[usize], dtype: DType) -> Result<Tensor> {
        Tensor::filled("zeros", shape, 0.0, dtype)
    }
    /// All ones.
    pub fn ones(shape: &[usize], dtype: DType) -> Result<Tensor> {
        Tensor::filled("ones", shape, 1.0, dtype)
    }
    /// A tensor of `shape` (checked like [`Tensor::full`]) whose elements come from `next`,
    /// in row-major order.
    fn generated(
        op: &'static str,
        shape: &[usize],
        dtype: DType,
        mut next: impl FnMut() -> f64,
    ) -> Result<Tensor> {
        let n = checked_numel(op, shape)?;
        with_dtype!(dtype, T => {
            let mut v = try_filled(op, shape, n, T::zero())?;
            v.iter_mut().for_each(|x| *x = T::of(next()));
            Ok(Tensor::from_buf(v, shape))
        })
    }
    /// Zeros with `self`'s shape and dtype (contiguous, so as large as a broadcast view's
    /// logical size: an error when that cannot be allocated).
    pub fn zeros_like(&self) -> Result<Tensor> {
        Tensor::filled("zeros_like", self.dims(), 0.0, self.dtype())
    }
    /// Ones with `self`'s shape and dtype (an error as for [`Tensor::zeros_like`]).
    pub fn ones_like(&self) -> Result<Tensor> {
        Tensor::filled("ones_like", self.dims(), 1.0, self.dtype())
    }
    /// `start, start+step, …` below `end` (like `torch.arange`).
    ///
    /// ```
    /// let t = eingrad::Tensor::arange(0.0, 1.0, 0.25, eingrad::DType::F64).unwrap();
    /// assert_eq!(t.to_vec::<f64>().unwrap(), vec![0.0, 0.25, 0.5, 0.75]);
    /// ```
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
            return Err(Error::arg(
                "arange",
                "step",
                format!("start {start}, end {end}, step {step} must be finite with step ≠ 0"),
            ));
        }
        let count = ((end - start) / step).ceil().max(0.0);
        if count >= isize::MAX as f64 {
            return Err(Error::arg(
                "arange",
                "step",
                format!("start {start}, end {end}, step {step} give {count:e} elements"),
            ));
        }
        let mut i = 0.0;
        Tensor::generated("arange", &[count as usize], dtype, || {
            let v = start + i * step;
            i += 1.0;
            v
        })
    }
    /// `steps` evenly spaced values from `start` to `end` inclusive.
    ///
    /// ```
    /// let t = eingrad::Tensor::linspace(0.0, 1.0, 5, eingrad::DType::F64).unwrap();
    /// assert_eq!(t.to_vec::<f64>().unwrap(), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    /// ```
    pub fn linspace(start: f64, end: f64, steps: usize, dtype: DType) -> Result<Tensor> {
        let h = if steps > 1 {
            (end - start) / (steps - 1) as f64
        } else {
            0.0
        };
        let mut i = 0;
        Tensor::generated("linspace", &[steps], dtype, || {
            let v = if i + 1 == steps && steps > 1 {
                end
            } else {
                start + i as f64 * h
            };
            i += 1;
            v
        })
    }
    /// The n×n identity.
    pub fn eye(n: usize, dtype: DType) -> Result<Tensor> {
        let mut k = 0;
        Tensor::generated("eye", &[n, n], dtype, || {
            let v = if k % (n + 1) == 0 { 1.0 } else { 0.0 };
            k += 1;
            v
        })
    }
    /// Standard normal samples from an explicit seed (same seed, same numbers).
    ///
    /// ```
    /// use eingrad::{Tensor, DType};
    /// let a = Tensor::randn(&[3], DType::F64, 7).unwrap();
    /// assert_eq!(a.to_vec::<f64>().unwrap(), Tensor::randn(&[3], DType::F64, 7).unwrap().to_vec::<f64>().unwrap());
    /// ```
    pub fn randn(shape: &[usize], dtype: DType, seed: u64) -> Result<Tensor> {
        let mut rng = SplitMix64::new(seed);
        Tensor::generated("randn", shape, dtype, || rng.next_normal())
    }
    /// Uniform samples in [0, 1) from an explicit seed.
    pub fn rand(shape: &[usize], dtype: DType, seed: u64) -> Result<Tensor> {
        let mut rng = SplitMix64::new(seed);
        Tensor::generated("rand", shape, dtype, || rng.next_f64())
    }
    /// Uniform samples in [low, high) from an explicit seed.
    pub fn uniform(
        shape: &[usize],
        low: f64,
        high: f64,
        dtype: DType,
        seed: u64,
    ) -> Result<Tensor> {
        let mut rng = SplitMix64::new(seed);
        Tensor::generated("uniform", shape, dtype, || {
            low + (high - low) * rng.next_f64()
        })
    }
}
