//! Flat, owned element buffers shared (through `Arc`) by a tensor and its views.

use crate::dtype::{DType, Float};

/// Size from which [`buffer`] asks for transparent huge pages.
const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

/// An empty `Vec` with room for `n` elements, for a kernel's output. On Linux, buffers of
/// 4 MiB or more are advised to use transparent huge pages (`MADV_HUGEPAGE`) before they are
/// first touched: a strided walk over a big tensor (a diagonal, a permuted copy, a GEMM
/// operand's rows) then needs one TLB entry per 2 MiB instead of per 4 KiB, and filling the
/// buffer takes one page fault per 2 MiB.
pub(crate) fn buffer<T>(n: usize) -> Vec<T> {
    let v: Vec<T> = Vec::with_capacity(n);
    advise_huge_pages(&v, n);
    v
}

/// [`buffer`] for an output of `shape` made by `op`, or an error (not an abort) when the
/// memory cannot be had: for outputs larger than their inputs (broadcasting).
pub(crate) fn try_buffer<T>(op: &'static str, shape: &[usize], n: usize) -> crate::Result<Vec<T>> {
    let mut v: Vec<T> = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| cannot_allocate::<T>(op, shape))?;
    advise_huge_pages(&v, n);
    Ok(v)
}

/// Asks for huge pages behind `v`'s first `n` elements when they span 4 MiB or more.
fn advise_huge_pages<T>(v: &[T], n: usize) {
    #[cfg(not(target_os = "linux"))]
    let _ = (v, n);
    #[cfg(target_os = "linux")]
    {
        let bytes = n.saturating_mul(std::mem::size_of::<T>());
        if bytes >= HUGE_PAGE_MIN_BYTES {
            const PAGE: usize = 4096;
            let start = (v.as_ptr() as usize).next_multiple_of(PAGE);
            let end = (v.as_ptr() as usize + bytes) / PAGE * PAGE;
            if end > start {
                // SAFETY: the range lies inside this Vec's allocation; MADV_HUGEPAGE only
                // changes how the kernel backs it, never its contents. Failure (no THP
                // support) leaves ordinary pages: nothing to handle.
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
                }
            }
        }
    }
}

/// `n` copies of `value` for a tensor of `shape` made by `op`, or an error (not an abort)
/// when the memory cannot be had.
pub(crate) fn try_filled<T: Clone>(
    op: &'static str,
    shape: &[usize],
    n: usize,
    value: T,
) -> crate::Result<Vec<T>> {
    let mut v: Vec<T> = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| cannot_allocate::<T>(op, shape))?;
    v.resize(n, value);
    Ok(v)
}

/// `n` zeros for a tensor of `shape` made by `op`, from zeroed memory (the kernel's zero
/// pages, as `vec![0.0; n]` gets them: no pass over the buffer), or an error when the memory
/// cannot be had.
pub(crate) fn try_zeroed<T: crate::dtype::Float>(
    op: &'static str,
    shape: &[usize],
    n: usize,
) -> crate::Result<Vec<T>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let layout = std::alloc::Layout::array::<T>(n).map_err(|_| cannot_allocate::<T>(op, shape))?;
    // SAFETY: the layout has a nonzero size; all-zero bits are +0.0 for f32 and f64.
    let p = unsafe { std::alloc::alloc_zeroed(layout) } as *mut T;
    if p.is_null() {
        return Err(cannot_allocate::<T>(op, shape));
    }
    // SAFETY: `p` comes from the global allocator with the layout of `n` elements of T, all
    // initialised (to zero).
    Ok(unsafe { Vec::from_raw_parts(p, n, n) })
}

/// The error for a buffer of `shape` that cannot be allocated.
pub(crate) fn cannot_allocate<T>(op: &'static str, shape: &[usize]) -> crate::Error {
    let bytes = shape
        .iter()
        .fold(std::mem::size_of::<T>() as u128, |b, &d| {
            b.saturating_mul(d as u128)
        });
    crate::Error::arg(
        op,
        "shape",
        format!("{shape:?} needs {bytes} bytes, which cannot be allocated"),
    )
}

/// Checks, before an op builds its output through other ops, that a buffer for `shape` can
/// be had: an error instead of an abort. Outputs under 64 MiB are not probed.
pub(crate) fn check_allocation<T>(op: &'static str, shape: &[usize]) -> crate::Result<()> {
    let n = crate::layout::checked_numel(op, shape)?;
    if n.saturating_mul(std::mem::size_of::<T>()) >= 64 << 20 {
        // Reserving without touching maps no pages: the probe costs one mmap/munmap.
        let mut probe: Vec<T> = Vec::new();
        probe
            .try_reserve_exact(n)
            .map_err(|_| cannot_allocate::<T>(op, shape))?;
    }
    Ok(())
}

/// A flat buffer of elements of one dtype.
#[derive(Debug, Clone)]
pub enum Storage {
    /// f32 elements.
    F32(Vec<f32>),
    /// f64 elements.
    F64(Vec<f64>),
}

impl Storage {
    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::F64(_) => DType::F64,
        }
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Storage::F32(v) => v.len(),
            Storage::F64(v) => v.len(),
        }
    }
    /// True when the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The buffer as `T`s, if it holds that element type.
    ///
    /// ```
    /// use eingrad::storage::Storage;
    /// let s = Storage::from_vec(vec![1.0f32, 2.0]);
    /// assert_eq!(s.as_slice::<f32>(), Some(&[1.0f32, 2.0][..]));
    /// assert!(s.as_slice::<f64>().is_none());
    /// ```
    pub fn as_slice<T: Float>(&self) -> Option<&[T]> {
        match self {
            Storage::F32(v) => T::of_f32s(v),
            Storage::F64(v) => T::of_f64s(v),
        }
    }
    /// The buffer as mutable `T`s, if it holds that element type.
    pub fn as_mut_slice<T: Float>(&mut self) -> Option<&mut [T]> {
        match self {
            Storage::F32(v) => T::of_f32s_mut(v),
            Storage::F64(v) => T::of_f64s_mut(v),
        }
    }
    /// Wraps a typed buffer.
    ///
    /// ```
    /// use eingrad::{storage::Storage, DType};
    /// assert_eq!(Storage::from_vec(vec![1.0f64]).dtype(), DType::F64);
    /// ```
    pub fn from_vec<T: Float>(v: Vec<T>) -> Storage {
        tune_allocator_once();
        match T::into_f32s_or_f64s(v) {
            Ok(v) => Storage::F32(v),
            Err(v) => Storage::F64(v),
        }
    }
}

/// Whether [`tune_allocator_once`] has run (or been skipped).
static TUNED: std::sync::Once = std::sync::Once::new();

/// On Linux with glibc, keeps freed tensor buffers in the process instead of handing each
/// back to the kernel: `M_MMAP_THRESHOLD` 32 MiB (buffers below it come from the heap, not
/// a fresh `mmap` that page-faults on first touch) and `M_TRIM_THRESHOLD` 256 MiB (the heap
/// top is returned only past that). A training step allocates and frees the same
/// activation-sized buffers every iteration; with glibc's defaults (128 KiB, adjusted
/// upward only by some frees) nanoGPT's CPU model spent about a quarter of its step in page
/// faults (a profile loop on a 2-core AMD EPYC Zen 4 with AVX-512, run back to back with and
/// without the settings on a machine other builds shared: 61.5 and 45.0 ms per step). Runs
/// once, at the first storage created; set the environment variable
/// `EINGRAD_MALLOC_TUNING=0` to leave the allocator alone (or tune it yourself, e.g. `MALLOC_MMAP_THRESHOLD_`). Other platforms and
/// C libraries: nothing is changed.
///
/// ```
/// let _ = eingrad::Tensor::zeros(&[1], eingrad::DType::F32).unwrap();
/// assert!(eingrad::storage::allocator_tuned() || std::env::var("EINGRAD_MALLOC_TUNING").is_ok()
///     || !cfg!(all(target_os = "linux", target_env = "gnu")));
/// ```
pub fn allocator_tuned() -> bool {
    TUNED.is_completed() && TUNED_APPLIED.load(std::sync::atomic::Ordering::Relaxed)
}

static TUNED_APPLIED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[inline]
fn tune_allocator_once() {
    if TUNED.is_completed() {
        return;
    }
    TUNED.call_once(|| {
        if std::env::var("EINGRAD_MALLOC_TUNING").is_ok_and(|v| v == "0") {
            return;
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // SAFETY: mallopt only sets glibc's allocator parameters; any value is valid.
            let ok = unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                    && libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20) == 1
            };
            TUNED_APPLIED.store(ok, std::sync::atomic::Ordering::Relaxed);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_small_and_huge_page_sized_hold_what_is_written() {
        // The huge-page advice is a hint the kernel may ignore; what must hold is an empty
        // Vec with room for n elements that keeps every value written into it.
        for n in [0usize, 1, 1000, (HUGE_PAGE_MIN_BYTES / 4) + 12345] {
            let mut v: Vec<f32> = buffer(n);
            assert!(v.is_empty() && v.capacity() >= n);
            v.extend((0..n).map(|i| i as f32));
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as f32));
        }
    }
}
