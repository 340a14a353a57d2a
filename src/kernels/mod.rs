//! Compute kernels over strided storage. Generic over [`crate::Float`]; no autograd here.

/// Defines a kernel function whose body is compiled three times, for AVX-512, for AVX2 with
/// FMA and for the build's baseline (SSE2 on x86-64), the widest the CPU has chosen at run
/// time. The crate is built for baseline x86-64 (4 lanes of f32), so elementwise loops and
/// row kernels written with this run 8 or 16 lanes wide where the CPU allows. The body is an
/// `inline(always)` function, so closures it calls inline into each feature-enabled copy.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident<$($G:ident: $bound:path),*>($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        $vis fn $name<$($G: $bound),*>($($arg: $ty),*) {
            #[inline(always)]
            fn inner<$($G: $bound),*>($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn avx512<$($G: $bound),*>($($arg: $ty),*) {
                inner($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2<$($G: $bound),*>($($arg: $ty),*) {
                inner($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has AVX2 and FMA (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            inner($($arg),*)
        }
    };
}
pub(crate) use multiversion;

pub mod elementwise;
pub mod gemm;
pub mod reduce;
pub mod rows;
pub mod special;
pub mod strided;

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::layout::Layout;

/// A kernel's strided input: a typed buffer and the layout that reads it. Kernels take
/// operands and return plain buffers; they never see a tensor.
///
/// ```
/// use eingrad::{kernels::{elementwise::map_unary, Operand}, Layout};
/// let layout = Layout::contiguous(&[3]);
/// let x = Operand { data: &[1.0f64, 2.0, 3.0], layout: &layout };
/// assert_eq!(map_unary("double", x, |v| 2.0 * v).unwrap(), vec![2.0, 4.0, 6.0]);
/// ```
#[derive(Clone, Copy)]
pub struct Operand<'a, T> {
    /// The buffer the layout indexes into.
    pub data: &'a [T],
    /// Shape, strides and offset of the elements read.
    pub layout: &'a Layout,
}

/// Default of [`min_parallel_elements`].
/// 2¹⁷: profiling the MLP forward at the old 2¹⁵ showed 15% of its time in thread wake-ups
/// (`sched_yield`, task switches) for its 128×256 bias adds and ReLUs.
pub const DEFAULT_MIN_PARALLEL_ELEMENTS: usize = 1 << 17;

static MIN_PARALLEL_ELEMENTS: AtomicUsize = AtomicUsize::new(DEFAULT_MIN_PARALLEL_ELEMENTS);

/// Element count from which elementwise kernels, reductions, strided copies and optimizer
/// updates split their work across rayon threads (GEMM decides by FLOPs on its own).
///
/// ```
/// assert!(eingrad::kernels::min_parallel_elements() > 0);
/// ```
pub fn min_parallel_elements() -> usize {
    MIN_PARALLEL_ELEMENTS.load(Ordering::Relaxed)
}

/// Whether work over `n` elements is worth splitting across rayon threads: at least
/// [`min_parallel_elements`], and more than one thread in the current pool (with one, a
/// parallel iterator only hands the job to the pool's thread and waits: a futex wake-up per
/// op for nothing).
pub(crate) fn worth_parallel(n: usize) -> bool {
    n >= min_parallel_elements() && rayon::current_num_threads() > 1
}

/// Sets [`min_parallel_elements`] for the whole process (at least 1). Waking a second
/// thread costs a few microseconds, so below some size one thread is faster; the best value
/// depends on the machine.
///
/// ```
/// use eingrad::kernels::{min_parallel_elements, set_min_parallel_elements};
/// let before = min_parallel_elements();
/// set_min_parallel_elements(1 << 17);
/// assert_eq!(min_parallel_elements(), 1 << 17);
/// set_min_parallel_elements(0); // at least one element
/// assert_eq!(min_parallel_elements(), 1);
/// set_min_parallel_elements(before);
/// ```
pub fn set_min_parallel_elements(n: usize) {
    MIN_PARALLEL_ELEMENTS.store(n.max(1), Ordering::Relaxed);
}

/// Hints the CPU to load the cache line at `p` (no effect on other architectures). For
/// strided walks that jump pages, where hardware prefetchers stop.
#[inline(always)]
pub(crate) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
