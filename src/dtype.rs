//! Element types: [`DType`] names them, [`Float`] is the one trait kernels are generic over.

/// The element type of a tensor.
///
/// ```
/// use eingrad::{DType, Tensor};
/// assert_eq!(Tensor::ones(&[2], DType::F64).unwrap().dtype(), DType::F64);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float (use it for gradient checks).
    F64,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
        }
    }
}

mod sealed {
    /// Only f32 and f64 are element types: storage holds exactly those two.
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A float element type that every kernel is generic over (one kernel, dispatched once).
/// Implemented for `f32` and `f64` only (sealed).
pub trait Float:
    sealed::Sealed
    + num_traits::Float
    + num_traits::FloatConst
    + std::fmt::Debug
    + std::fmt::Display
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::MulAssign
    + Send
    + Sync
    + Default
    + 'static
{
    /// The dtype tag of this type.
    const DTYPE: DType;
    /// Converts from f64 (rounding for f32).
    fn of(v: f64) -> Self;
    /// Converts to f64.
    fn f64(self) -> f64;
    /// `v` as `Self`s if `Self` is f32 (statically dispatched: storage's typed views).
    #[doc(hidden)]
    fn of_f32s(v: &[f32]) -> Option<&[Self]>;
    /// `v` as `Self`s if `Self` is f64.
    #[doc(hidden)]
    fn of_f64s(v: &[f64]) -> Option<&[Self]>;
    /// [`Float::of_f32s`], mutably.
    #[doc(hidden)]
    fn of_f32s_mut(v: &mut [f32]) -> Option<&mut [Self]>;
    /// [`Float::of_f64s`], mutably.
    #[doc(hidden)]
    fn of_f64s_mut(v: &mut [f64]) -> Option<&mut [Self]>;
    /// The buffer as f32s (`Ok`) or f64s (`Err`).
    #[doc(hidden)]
    fn into_f32s_or_f64s(v: Vec<Self>) -> std::result::Result<Vec<f32>, Vec<f64>>;
}

impl Float for f32 {
    const DTYPE: DType = DType::F32;
    fn of_f32s(v: &[f32]) -> Option<&[Self]> {
        Some(v)
    }
    fn of_f64s(_: &[f64]) -> Option<&[Self]> {
        None
    }
    fn of_f32s_mut(v: &mut [f32]) -> Option<&mut [Self]> {
        Some(v)
    }
    fn of_f64s_mut(_: &mut [f64]) -> Option<&mut [Self]> {
        None
    }
    fn into_f32s_or_f64s(v: Vec<Self>) -> std::result::Result<Vec<f32>, Vec<f64>> {
        Ok(v)
    }
    fn of(v: f64) -> Self {
        v as f32
    }
    fn f64(self) -> f64 {
        self as f64
    }
}

impl Float for f64 {
    const DTYPE: DType = DType::F64;
    fn of_f64s(v: &[f64]) -> Option<&[Self]> {
        Some(v)
    }
    fn of_f32s(_: &[f32]) -> Option<&[Self]> {
        None
    }
    fn of_f64s_mut(v: &mut [f64]) -> Option<&mut [Self]> {
        Some(v)
    }
    fn of_f32s_mut(_: &mut [f32]) -> Option<&mut [Self]> {
        None
    }
    fn into_f32s_or_f64s(v: Vec<Self>) -> std::result::Result<Vec<f32>, Vec<f64>> {
        Err(v)
    }
    fn of(v: f64) -> Self {
        v
    }
    fn f64(self) -> f64 {
        self
    }
}

/// Runs a generic body once with `T` bound to the element type of `$dtype`.
#[macro_export]
#[doc(hidden)]
macro_rules! with_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                #[allow(unused_imports)]
                use $crate::__num_traits::{Float as _, One as _, Zero as _};
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                #[allow(unused_imports)]
                use $crate::__num_traits::{Float as _, One as _, Zero as _};
                type $T = f64;
                $body
            }
        }
    };
}
