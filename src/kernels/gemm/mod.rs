//! The one GEMM call site: strided batched matrix products.
//!
//! On x86-64 CPUs with AVX2 and FMA but no AVX-512 the products run through this module's
//! own blocked driver (`blocked`) and register-tile kernels (`avx2`); elsewhere through
//! the `gemm` crate (with its AVX-512 kernels where the CPU has them). Side by side with
//! MKL on a 2-core Zen machine the `gemm` crate's AVX2 path reached 0.66–0.95× of torch's
//! GEMM, the own kernels 1.0–1.15× (see README, benchmarks).

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::dtype::{DType, Float};

#[cfg(target_arch = "x86_64")]
mod avx2;
// Without the AVX2 kernels only the strided-view types of this module are used.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
mod blocked;

/// One operand of a batched matrix product: base pointer offset, batch/row/col strides.
#[derive(Debug, Clone, Copy)]
pub struct MatView {
    /// Storage offset of element [0, 0, 0].
    pub offset: usize,
    /// Stride between batch entries.
    pub batch_stride: isize,
    /// Stride between rows.
    pub row_stride: isize,
    /// Stride between columns.
    pub col_stride: isize,
}

/// Number of threads rayon may use.
pub fn num_threads() -> usize {
    rayon::current_num_threads()
}

/// `dst[b] = lhs[b] · rhs[b]` for `b < batch`, with `lhs[b]` m×k and `rhs[b]` k×n, every
/// operand strided. `dst` must be a distinct buffer whose views for different batches do not
/// overlap.
#[allow(clippy::too_many_arguments)]
pub fn batched_gemm<T: Float>(
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [MaybeUninit<T>],
    d: MatView,
    lhs: &[T],
    a: MatView,
    rhs: &[T],
    b: MatView,
) {
    if batch == 0 || m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for bi in 0..batch {
            for i in 0..m {
                for j in 0..n {
                    let o = d.offset as isize
                        + bi as isize * d.batch_stride
                        + i as isize * d.row_stride
                        + j as isize * d.col_stride;
                    dst[o as usize].write(T::zero());
                }
            }
        }
        return;
    }
    let threads = batch_threads(batch, (m, n, k));
    #[cfg(target_arch = "x86_64")]
    if use_blocked() {
        // SAFETY: DTYPE names T exactly, so the casts are identities; offsets come from
        // layouts checked against their buffers by the caller; batches write disjoint blocks.
        unsafe {
            let dp = dst.as_mut_ptr() as *mut T;
            let (lp, rp) = (lhs.as_ptr(), rhs.as_ptr());
            match T::DTYPE {
                DType::F32 => blocked_products(
                    batch,
                    (m, n, k),
                    (dp as *mut f32, d),
                    (lp as *const f32, a),
                    (rp as *const f32, b),
                    threads,
                ),
                DType::F64 => blocked_products(
                    batch,
                    (m, n, k),
                    (dp as *mut f64, d),
                    (lp as *const f64, a),
                    (rp as *const f64, b),
                    threads,
                ),
            }
        }
        return;
    }
    let (dp, lp, rp) = (
        SendPtr(dst.as_mut_ptr() as *mut T),
        SendPtr(lhs.as_ptr()),
        SendPtr(rhs.as_ptr()),
    );
    for_each_product(batch, threads, |bi, within| {
        // SAFETY: offsets come from layouts that were checked against their buffers by the
        // caller; batches write disjoint regions of `dst`. gemm writes every element of each
        // m×n block (read_dst = false), so `dst` may start uninitialised.
        unsafe {
            let (c, x, y) = (d.entry(dp, bi), a.entry(lp, bi), b.entry(rp, bi));
            gemm::gemm(
                m,
                n,
                k,
                c.ptr,
                c.cs,  // dst column stride
                c.rs,  // dst row stride
                false, // read_dst: overwrite
                x.ptr,
                x.cs, // lhs column stride
                x.rs, // lhs row stride
                y.ptr,
                y.cs,      // rhs column stride
                y.rs,      // rhs row stride
                T::zero(), // alpha (scales dst, unused when not read)
                T::one(),  // beta (scales lhs·rhs)
                false,
                false,
                false,
                if within > 1 {
                    gemm::Parallelism::Rayon(within)
                } else {
                    gemm::Parallelism::None
                },
            )
        }
    });
}

#[cfg(test)]
thread_local! {
    /// Tests pick a path on this thread: `Some(true)` the blocked kernels (where the CPU
    /// runs them), `Some(false)` the portable `gemm` crate, `None` the normal choice.
    static FORCE_BLOCKED: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// Whether this thread's products run through the blocked driver and AVX2 kernels.
#[cfg(target_arch = "x86_64")]
fn use_blocked() -> bool {
    #[cfg(test)]
    if let Some(forced) = FORCE_BLOCKED.with(|f| f.get()) {
        return forced && avx2::supported();
    }
    avx2::preferred()
}

/// How a batched product uses the threads.
#[derive(Clone, Copy)]
enum BatchThreads {
    /// One thread does everything.
    Serial,
    /// Products one after another, each split across this many threads.
    WithinProduct(usize),
    /// Whole products on different threads.
    AcrossBatch,
}

/// The thread plan for `batch` products of m×k·k×n: none under 2e6 FLOPs (waking a thread
/// costs more), whole products per thread when the batch splits evenly or is large (no
/// synchronisation; measured 4-7% faster than splitting each product even for large ones,
/// pool_downsample: 8 products of 512×2048·2048×512), otherwise each product split.
fn batch_threads(batch: usize, (m, n, k): (usize, usize, usize)) -> BatchThreads {
    let flops = 2.0 * batch as f64 * m as f64 * n as f64 * k as f64;
    let threads = num_threads();
    if flops <= 2e6 || threads <= 1 {
        BatchThreads::Serial
    } else if batch < threads || (!batch.is_multiple_of(threads) && batch < 4 * threads) {
        BatchThreads::WithinProduct(threads)
    } else {
        BatchThreads::AcrossBatch
    }
}

/// Runs `product(bi, threads_within)` for every batch entry as `plan` says.
fn for_each_product(batch: usize, plan: BatchThreads, product: impl Fn(usize, usize) + Sync) {
    match plan {
        BatchThreads::Serial => (0..batch).for_each(|bi| product(bi, 1)),
        BatchThreads::WithinProduct(t) => (0..batch).for_each(|bi| product(bi, t)),
        BatchThreads::AcrossBatch => (0..batch).into_par_iter().for_each(|bi| product(bi, 1)),
    }
}

/// [`batched_gemm`] through the blocked driver.
///
/// # Safety
/// As [`blocked::gemm`] for every batch entry; entries write disjoint blocks.
#[cfg(target_arch = "x86_64")]
unsafe fn blocked_products<K: blocked::MicroKernel>(
    batch: usize,
    (m, n, k): (usize, usize, usize),
    (dp, d): (*mut K, MatView),
    (lp, a): (*const K, MatView),
    (rp, b): (*const K, MatView),
    threads: BatchThreads,
) {
    let (dp, lp, rp) = (SendPtr(dp), SendPtr(lp), SendPtr(rp));
    for_each_product(batch, threads, |bi, within| {
        let (x, y, c) = (a.entry(lp, bi), b.entry(rp, bi), d.entry(dp, bi));
        blocked::gemm_parallel(within, m, n, k, x, y, c);
    });
}

impl MatView {
    /// Batch entry `bi` of this view over the buffer at `base`.
    ///
    /// # Safety
    /// The entry's first element lies inside the buffer (`pointer::offset`).
    unsafe fn entry<P: blocked::ElementPtr>(
        &self,
        base: SendPtr<P>,
        bi: usize,
    ) -> blocked::Strided<P> {
        blocked::Strided {
            ptr: base
                .0
                .step(self.offset as isize + bi as isize * self.batch_stride),
            rs: self.row_stride,
            cs: self.col_stride,
        }
    }
}

/// A raw pointer (`*const T` or `*mut T`) handed to other threads, which touch disjoint
/// parts of its buffer.
#[derive(Clone, Copy)]
struct SendPtr<P>(P);
// SAFETY: see the type's doc; every user writes disjoint blocks.
unsafe impl<P> Send for SendPtr<P> {}
unsafe impl<P> Sync for SendPtr<P> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive `dst[b] = lhs[b]·rhs[b]` over the same strided views.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        batch: usize,
        (m, n, k): (usize, usize, usize),
        d: MatView,
        dst_len: usize,
        lhs: &[f64],
        a: MatView,
        rhs: &[f64],
        b: MatView,
    ) -> Vec<f64> {
        let mut out = vec![f64::NAN; dst_len];
        let at = |v: &MatView, bi: usize, i: usize, j: usize| {
            (v.offset as isize
                + bi as isize * v.batch_stride
                + i as isize * v.row_stride
                + j as isize * v.col_stride) as usize
        };
        for bi in 0..batch {
            for i in 0..m {
                for j in 0..n {
                    let s: f64 = (0..k)
                        .map(|p| lhs[at(&a, bi, i, p)] * rhs[at(&b, bi, p, j)])
                        .sum();
                    out[at(&d, bi, i, j)] = s;
                }
            }
        }
        out
    }

    /// A view of a `batch × rows × cols` operand stored row-major (`transposed`: stored as
    /// `batch × cols × rows`), optionally read backwards along its rows.
    fn view(rows: usize, cols: usize, transposed: bool, flip: bool) -> MatView {
        let (mut rs, cs) = if transposed {
            (1isize, rows as isize)
        } else {
            (cols as isize, 1isize)
        };
        let mut offset = 0usize;
        if flip {
            offset = (rows - 1) * rs as usize;
            rs = -rs;
        }
        MatView {
            offset,
            batch_stride: (rows * cols) as isize,
            row_stride: rs,
            col_stride: cs,
        }
    }

    fn check_shapes<T: Float>(tol: f64) {
        let mut rng = crate::tensor::SplitMix64::new(7);
        // Edges of the register tile (6 × 16 / 6 × 8), of the pack blocks (KC = 256,
        // MC = 144 / 72) and the parallel split; every stride orientation.
        let shapes = [
            (1, 1, 1, 1),
            (1, 5, 7, 3),
            (2, 6, 16, 8),
            (1, 7, 17, 257),
            (3, 13, 33, 40),
            (1, 150, 70, 300),
            (2, 40, 300, 20),
            (1, 300, 40, 513),
            (1, 40, 300, 200),
            (4, 100, 100, 60),
        ];
        for (case, &(batch, m, n, k)) in shapes.iter().enumerate() {
            for orient in 0..16u32 {
                let (ta, tb, tc, flip) = (
                    orient & 1 != 0,
                    orient & 2 != 0,
                    orient & 4 != 0,
                    orient & 8 != 0,
                );
                let a = view(m, k, ta, flip);
                let b = view(k, n, tb, false);
                let d = view(m, n, tc, false);
                let lhs64: Vec<f64> = (0..batch * m * k).map(|_| rng.next_f64() - 0.5).collect();
                let rhs64: Vec<f64> = (0..batch * k * n).map(|_| rng.next_f64() - 0.5).collect();
                let lhs: Vec<T> = lhs64.iter().map(|&v| T::of(v)).collect();
                let rhs: Vec<T> = rhs64.iter().map(|&v| T::of(v)).collect();
                let lhs64: Vec<f64> = lhs.iter().map(|v| v.f64()).collect();
                let rhs64: Vec<f64> = rhs.iter().map(|v| v.f64()).collect();
                let len = batch * m * n;
                let mut out = vec![MaybeUninit::<T>::uninit(); len];
                batched_gemm(batch, m, n, k, &mut out, d, &lhs, a, &rhs, b);
                let want = naive(batch, (m, n, k), d, len, &lhs64, a, &rhs64, b);
                for (idx, (got, want)) in out.iter().zip(&want).enumerate() {
                    let got = unsafe { got.assume_init() }.f64();
                    assert!(
                        (got - want).abs() <= tol * (1.0 + want.abs()) * (k as f64).sqrt(),
                        "case {case} orient {orient} ({batch}×{m}×{n}×{k}) [{idx}]: {got} vs {want}"
                    );
                }
            }
        }
    }

    /// Runs `check` with each GEMM path forced on this thread.
    fn on_both_paths(check: impl Fn()) {
        for blocked in [true, false] {
            FORCE_BLOCKED.with(|f| f.set(Some(blocked)));
            check();
        }
        FORCE_BLOCKED.with(|f| f.set(None));
    }

    #[test]
    fn products_match_a_naive_loop_for_every_edge_and_stride_f64() {
        on_both_paths(|| check_shapes::<f64>(1e-13));
    }

    #[test]
    fn products_match_a_naive_loop_for_every_edge_and_stride_f32() {
        on_both_paths(|| check_shapes::<f32>(1e-5));
    }

    #[test]
    fn wide_products_cross_the_column_block() {
        // n > NC = 4096 exercises the outermost loop (under 2e6 FLOPs: one thread, unsplit).
        let (m, n, k) = (3, 4100, 40);
        let lhs: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let rhs: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 - 2.0).collect();
        let mut out = vec![MaybeUninit::<f32>::uninit(); m * n];
        let row_major = |rows: usize, cols: usize| MatView {
            offset: 0,
            batch_stride: (rows * cols) as isize,
            row_stride: cols as isize,
            col_stride: 1,
        };
        FORCE_BLOCKED.with(|f| f.set(Some(true)));
        batched_gemm(
            1,
            m,
            n,
            k,
            &mut out,
            row_major(m, n),
            &lhs,
            row_major(m, k),
            &rhs,
            row_major(k, n),
        );
        for i in 0..m {
            for j in [0, 1, 4095, 4096, 4099] {
                let want: f32 = (0..k).map(|p| lhs[i * k + p] * rhs[p * n + j]).sum();
                assert_eq!(unsafe { out[i * n + j].assume_init() }, want, "[{i}, {j}]");
            }
        }
    }

    #[test]
    fn small_product_matches_hand_result() {
        // [[1,2],[3,4]] · [[5,6],[7,8]] = [[19,22],[43,50]]
        let a = [1.0f64, 2.0, 3.0, 4.0];
        let b = [5.0f64, 6.0, 7.0, 8.0];
        let mut c = [MaybeUninit::<f64>::uninit(); 4];
        let v = MatView {
            offset: 0,
            batch_stride: 4,
            row_stride: 2,
            col_stride: 1,
        };
        batched_gemm(1, 2, 2, 2, &mut c, v, &a, v, &b, v);
        let c: Vec<f64> = c.iter().map(|x| unsafe { x.assume_init() }).collect();
        assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
    }
}
