//! Flat, owned element buffers shared (through `Arc`) by a tensor and its views.

use crate::dtype::DType;

/// Size from which [`buffer`] asks for transparent huge pages.
const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

/// An empty `Vec` with room for `n` elements, for a kernel's output. On Linux, buffers of
/// 4 MiB or more are advised to use transparent huge pages (`MADV_HUGEPAGE`) before they are
/// first touched: a strided walk over a big tensor (a diagonal, a permuted copy, a GEMM
/// operand's rows) then needs one TLB entry per 2 MiB instead of per 4 KiB, and filling the
/// buffer takes one page fault per 2 MiB.
pub(crate) fn buffer<T>(n: usize) -> Vec<T> {
    let v: Vec<T> = Vec::with_capacity(n);
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
    v
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
