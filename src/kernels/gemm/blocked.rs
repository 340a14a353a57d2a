//! Cache-blocked GEMM driver (the BLIS loop nest) around a register-tile micro-kernel.
//!
//! `C = A·B` for strided A (m×k), B (k×n), C (m×n). Loops: columns of C in NC blocks, k in
//! KC blocks (B's KC×NC block packed into NR-wide row panels), rows in MC blocks (A's MC×KC
//! block packed into MR-tall column panels), then NR×MR tiles, each one micro-kernel call.
//! The first KC block writes C, later ones add to it, so C may start uninitialised.
//!
//! Pack buffers are per thread and kept between calls: large fresh buffers would be mapped
//! and page-faulted on every product.

use std::cell::RefCell;

use crate::kernels::prefetch;

/// A register-tile kernel and the blocking sizes that suit it.
pub trait MicroKernel: Copy + Default + 'static {
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile.
    const NR: usize;
    /// Depth of one packed block.
    const KC: usize;
    /// Rows of A packed at once (a multiple of MR).
    const MC: usize;
    /// Columns of B packed at once (a multiple of NR).
    const NC: usize;
    /// `C[..mr, ..nr] (+)= Apanel · Bpanel` over `kc`.
    ///
    /// # Safety
    /// The CPU supports the kernel's instructions; `a` holds `kc·MR` and `b` `kc·NR`
    /// elements; `c` addresses an `mr × nr` block with strides `rs`, `cs`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn kernel(
        kc: usize,
        a: *const Self,
        b: *const Self,
        c: *mut Self,
        rs: isize,
        cs: isize,
        mr: usize,
        nr: usize,
        accumulate: bool,
    );
    /// `dst[k·w + i] = src[i·rs + k]` for `i < w`, `k < depth` (a panel from `w` rows that
    /// are contiguous along the depth: the transposing case of packing).
    ///
    /// # Safety
    /// As `kernel`; the `w` rows hold `depth` readable elements, `dst` holds `w·depth`.
    unsafe fn pack_rows(w: usize, depth: usize, src: *const Self, rs: isize, dst: *mut Self);
}

/// A strided matrix behind a raw pointer `P` (`*const T` to read, `*mut T` to write).
#[derive(Clone, Copy)]
pub struct Strided<P> {
    /// Element [0, 0].
    pub ptr: P,
    /// Row stride in elements.
    pub rs: isize,
    /// Column stride in elements.
    pub cs: isize,
}

/// A read-only strided matrix.
pub type Mat<T> = Strided<*const T>;
/// A writable strided matrix.
pub type MatMut<T> = Strided<*mut T>;

// SAFETY: the driver's callers hand disjoint output blocks to different threads.
unsafe impl<P> Send for Strided<P> {}
unsafe impl<P> Sync for Strided<P> {}

/// Raw pointers that can step by a signed element count.
pub trait ElementPtr: Copy {
    /// `self + count` elements.
    ///
    /// # Safety
    /// As `pointer::offset`.
    unsafe fn step(self, count: isize) -> Self;
}

impl<T> ElementPtr for *const T {
    unsafe fn step(self, count: isize) -> Self {
        self.offset(count)
    }
}

impl<T> ElementPtr for *mut T {
    unsafe fn step(self, count: isize) -> Self {
        self.offset(count)
    }
}

impl<P: ElementPtr> Strided<P> {
    /// The sub-matrix starting at row `i`, column `j`.
    unsafe fn at(self, i: usize, j: usize) -> Self {
        Strided {
            ptr: self.ptr.step(i as isize * self.rs + j as isize * self.cs),
            ..self
        }
    }
    /// The transpose (a view).
    fn t(self) -> Self {
        Strided {
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

thread_local! {
    /// This thread's pack buffers, in f64 units (8-byte aligned, so f32 fits too).
    static PACK: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// Packs rows `..mc` × columns `..kc` of `a` into MR-tall panels, zero-padded.
unsafe fn pack_a<T: MicroKernel>(mc: usize, kc: usize, a: Mat<T>, dst: *mut T) {
    pack_panels_of_width(mc, kc, a, dst, T::MR);
}

/// Packs rows `..kc` × columns `..nc` of `b` into NR-wide panels, zero-padded: packing B is
/// packing Bᵀ into A-style panels.
unsafe fn pack_b<T: MicroKernel>(kc: usize, nc: usize, b: Mat<T>, dst: *mut T) {
    pack_panels_of_width(nc, kc, b.t(), dst, T::NR);
}

/// [`pack_panels`] with the width as a compile-time constant for the kernels' widths, so
/// each panel row copy is a few vector moves instead of a `memcpy` call.
unsafe fn pack_panels_of_width<T: MicroKernel>(
    rows: usize,
    depth: usize,
    src: Mat<T>,
    dst: *mut T,
    width: usize,
) {
    match width {
        6 => pack_panels::<T, 6>(rows, depth, src, dst),
        8 => pack_panels::<T, 8>(rows, depth, src, dst),
        16 => pack_panels::<T, 16>(rows, depth, src, dst),
        _ => {
            for p in 0..rows.div_ceil(width) {
                let n = (rows - p * width).min(width);
                pack_general(
                    n,
                    depth,
                    src.at(p * width, 0),
                    dst.add(p * width * depth),
                    width,
                );
            }
        }
    }
}

/// Packs `rows × depth` of `src` into panels of `WIDTH` rows: panel `p` holds, depth step
/// by depth step, the `WIDTH` values of rows `p·width..`, zero past `rows`.
unsafe fn pack_panels<T: MicroKernel, const WIDTH: usize>(
    rows: usize,
    depth: usize,
    src: Mat<T>,
    dst: *mut T,
) {
    let width = WIDTH;
    let full = rows / width;
    let panel = |p: usize| dst.add(p * width * depth);
    if src.rs == 1 {
        // Each depth step reads one contiguous run across all panels: walk the depth in
        // the outer loop so the source is read once, in order (strided rows each touch a
        // new page; revisiting them per panel thrashed the TLB).
        let run_bytes = full * width * std::mem::size_of::<T>();
        for k in 0..depth {
            let run = src.ptr.offset(k as isize * src.cs);
            // Runs far apart sit on different pages, where the hardware prefetcher stops:
            // fetch the run a few steps ahead by hand.
            if k + PREFETCH_STEPS < depth {
                let ahead = src.ptr.offset((k + PREFETCH_STEPS) as isize * src.cs) as *const u8;
                for line in (0..run_bytes).step_by(64) {
                    prefetch(ahead.add(line));
                }
            }
            for p in 0..full {
                std::ptr::copy_nonoverlapping(run.add(p * width), panel(p).add(k * width), width);
            }
        }
    } else if src.cs == 1 {
        for p in 0..full {
            T::pack_rows(width, depth, src.at(p * width, 0).ptr, src.rs, panel(p));
        }
    } else {
        for p in 0..full {
            pack_general(width, depth, src.at(p * width, 0), panel(p), width);
        }
    }
    if full * width < rows {
        pack_general(
            rows - full * width,
            depth,
            src.at(full * width, 0),
            panel(full),
            width,
        );
    }
}

/// How many depth steps ahead [`pack_panels`] prefetches its source runs.
const PREFETCH_STEPS: usize = 8;

/// One panel of `rows ≤ width` rows from any strides, zero-padded to `width`.
unsafe fn pack_general<T: Copy + Default>(
    rows: usize,
    depth: usize,
    src: Mat<T>,
    d: *mut T,
    width: usize,
) {
    for k in 0..depth {
        for i in 0..width {
            *d.add(k * width + i) = if i < rows {
                *src.ptr.offset(i as isize * src.rs + k as isize * src.cs)
            } else {
                T::default()
            };
        }
    }
}

/// `c = a·b` on the calling thread.
///
/// # Safety
/// The CPU supports `T`'s kernel; the three matrices address valid memory for their shapes;
/// `c` does not overlap `a` or `b`. `k > 0`.
pub unsafe fn gemm<T: MicroKernel>(
    m: usize,
    n: usize,
    k: usize,
    a: Mat<T>,
    b: Mat<T>,
    c: MatMut<T>,
) {
    if m == 0 || n == 0 {
        return;
    }
    // The kernel stores whole rows of its tile with vector stores: keep C's unit stride on
    // the columns (Cᵀ = Bᵀ·Aᵀ).
    if c.cs != 1 && c.rs == 1 {
        return gemm(n, m, k, b.t(), a.t(), c.t());
    }
    let kc_max = T::KC.min(k);
    let a_len = T::MC.min(m.next_multiple_of(T::MR)) * kc_max;
    let b_len = T::NC.min(n.next_multiple_of(T::NR)) * kc_max;
    let units = |len: usize| (len * std::mem::size_of::<T>()).div_ceil(8) + 8;
    PACK.with(|buf| {
        let mut buf = buf.borrow_mut();
        let need = units(a_len) + units(b_len);
        if buf.len() < need {
            buf.resize(need, 0.0);
        }
        let base = buf.as_mut_ptr();
        // 64-byte align both panels (cache lines).
        let a_pack = base.add(base.align_offset(64).min(7)) as *mut T;
        let b_start = base.add(units(a_len));
        let b_pack = b_start.add(b_start.align_offset(64).min(7)) as *mut T;
        let mut jc = 0;
        while jc < n {
            let nc = T::NC.min(n - jc);
            let mut pc = 0;
            while pc < k {
                let kc = T::KC.min(k - pc);
                pack_b(kc, nc, b.at(pc, jc), b_pack);
                let mut ic = 0;
                while ic < m {
                    let mc = T::MC.min(m - ic);
                    pack_a(mc, kc, a.at(ic, pc), a_pack);
                    let mut jr = 0;
                    while jr < nc {
                        let nr = T::NR.min(nc - jr);
                        let mut ir = 0;
                        while ir < mc {
                            let mr = T::MR.min(mc - ir);
                            let tile = c.at(ic + ir, jc + jr);
                            T::kernel(
                                kc,
                                a_pack.add(ir * kc),
                                b_pack.add(jr * kc),
                                tile.ptr,
                                tile.rs,
                                tile.cs,
                                mr,
                                nr,
                                pc > 0,
                            );
                            ir += T::MR;
                        }
                        jr += T::NR;
                    }
                    ic += mc;
                }
                pc += kc;
            }
            jc += nc;
        }
    });
}

/// `c = a·b` split into `threads` independent blocks of C (along its longer side, in whole
/// tiles), each packed and multiplied by its own rayon task.
///
/// # Safety
/// As [`gemm`].
pub unsafe fn gemm_parallel<T: MicroKernel>(
    threads: usize,
    m: usize,
    n: usize,
    k: usize,
    a: Mat<T>,
    b: Mat<T>,
    c: MatMut<T>,
) {
    use rayon::prelude::*;
    if threads <= 1 {
        return gemm(m, n, k, a, b, c);
    }
    if n >= m {
        let chunk = n.div_ceil(threads).next_multiple_of(T::NR);
        (0..n.div_ceil(chunk)).into_par_iter().for_each(move |t| {
            let (a, b, c) = (a, b, c);
            let j0 = t * chunk;
            gemm(m, chunk.min(n - j0), k, a, b.at(0, j0), c.at(0, j0));
        });
    } else {
        let chunk = m.div_ceil(threads).next_multiple_of(T::MR);
        (0..m.div_ceil(chunk)).into_par_iter().for_each(move |t| {
            let (a, b, c) = (a, b, c);
            let i0 = t * chunk;
            gemm(chunk.min(m - i0), n, k, a.at(i0, 0), b, c.at(i0, 0));
        });
    }
}
