//! AVX2 + FMA micro-kernels: a 6×16 f32 and a 6×8 f64 register tile (12 ymm accumulators,
//! two B vectors, one broadcast A value), the shape BLIS uses on Haswell and Zen.
//!
//! Each kernel multiplies a packed A micro-panel (`kc` columns of `MR` rows, column by column)
//! by a packed B micro-panel (`kc` rows of `NR` columns, row by row) and writes or adds the
//! `mr × nr` top-left corner of the tile to a strided C.

use std::arch::x86_64::*;

use super::blocked::MicroKernel;

/// Whether products should run through this module's kernels: the CPU has AVX2 and FMA but
/// not AVX-512, where the `gemm` crate's 16-lane kernels (its `x86-v4` feature) are about
/// twice as fast as any 8-lane tile (checked once by std, then cached).
pub fn preferred() -> bool {
    supported() && !is_x86_feature_detected!("avx512f")
}

/// Whether this CPU can run the kernels of this module at all.
pub fn supported() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// Writes one micro-kernel for an element type: `$lanes` elements per ymm register, tile
/// `6 × 2·$lanes`.
macro_rules! micro_kernel {
    ($name:ident, $t:ty, $lanes:expr, $zero:ident, $load:ident, $store:ident, $bcast:ident,
     $fma:ident, $add:ident) => {
        /// # Safety
        /// The CPU supports AVX2 and FMA; `a` holds `kc·6` and `b` `kc·NR` readable elements;
        /// `c` addresses an `mr × nr` block (`mr ≤ 6`, `nr ≤ NR`) with strides `rs`, `cs`.
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name(
            kc: usize,
            a: *const $t,
            b: *const $t,
            c: *mut $t,
            rs: isize,
            cs: isize,
            mr: usize,
            nr: usize,
            accumulate: bool,
        ) {
            const MR: usize = 6;
            const NR: usize = 2 * $lanes;
            let mut acc = [$zero(); 12];
            let (mut a, mut b) = (a, b);
            let full = mr == MR && nr == NR && cs == 1;
            if full {
                for i in 0..MR {
                    let row = c.offset(i as isize * rs);
                    _mm_prefetch::<_MM_HINT_T0>(row as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(row.add(NR - 1) as *const i8);
                }
            }
            macro_rules! step {
                () => {{
                    let b0 = $load(b);
                    let b1 = $load(b.add($lanes));
                    let x = $bcast(&*a);
                    acc[0] = $fma(x, b0, acc[0]);
                    acc[1] = $fma(x, b1, acc[1]);
                    let x = $bcast(&*a.add(1));
                    acc[2] = $fma(x, b0, acc[2]);
                    acc[3] = $fma(x, b1, acc[3]);
                    let x = $bcast(&*a.add(2));
                    acc[4] = $fma(x, b0, acc[4]);
                    acc[5] = $fma(x, b1, acc[5]);
                    let x = $bcast(&*a.add(3));
                    acc[6] = $fma(x, b0, acc[6]);
                    acc[7] = $fma(x, b1, acc[7]);
                    let x = $bcast(&*a.add(4));
                    acc[8] = $fma(x, b0, acc[8]);
                    acc[9] = $fma(x, b1, acc[9]);
                    let x = $bcast(&*a.add(5));
                    acc[10] = $fma(x, b0, acc[10]);
                    acc[11] = $fma(x, b1, acc[11]);
                    a = a.add(MR);
                    b = b.add(NR);
                }};
            }
            let mut left = kc;
            while left >= 4 {
                _mm_prefetch::<_MM_HINT_T0>(a.add(16 * MR) as *const i8);
                step!();
                step!();
                _mm_prefetch::<_MM_HINT_T0>(a.add(16 * MR) as *const i8);
                step!();
                step!();
                left -= 4;
            }
            while left > 0 {
                step!();
                left -= 1;
            }
            if full {
                for i in 0..MR {
                    let row = c.offset(i as isize * rs);
                    let (mut lo, mut hi) = (acc[2 * i], acc[2 * i + 1]);
                    if accumulate {
                        lo = $add(lo, $load(row));
                        hi = $add(hi, $load(row.add($lanes)));
                    }
                    $store(row, lo);
                    $store(row.add($lanes), hi);
                }
            } else {
                let mut tile = [0 as $t; MR * NR];
                for i in 0..MR {
                    $store(tile.as_mut_ptr().add(i * NR), acc[2 * i]);
                    $store(tile.as_mut_ptr().add(i * NR + $lanes), acc[2 * i + 1]);
                }
                for i in 0..mr {
                    for j in 0..nr {
                        let p = c.offset(i as isize * rs + j as isize * cs);
                        let v = tile[i * NR + j];
                        *p = if accumulate { *p + v } else { v };
                    }
                }
            }
        }
    };
}

micro_kernel!(
    kernel_f32,
    f32,
    8,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_broadcast_ss,
    _mm256_fmadd_ps,
    _mm256_add_ps
);
micro_kernel!(
    kernel_f64,
    f64,
    4,
    _mm256_setzero_pd,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_broadcast_sd,
    _mm256_fmadd_pd,
    _mm256_add_pd
);

/// `dst[k·w + i] = src[i·rs + k]` for `i < w`, `k < depth`: `w` rows, each contiguous
/// along the depth, transposed into one panel in 8×8 register blocks.
///
/// # Safety
/// The CPU supports AVX2; the `w` source rows hold `depth` readable elements; `dst` holds
/// `w·depth`.
#[target_feature(enable = "avx2")]
unsafe fn pack_rows_f32(w: usize, depth: usize, src: *const f32, rs: isize, dst: *mut f32) {
    const L: usize = 8;
    let blocks = depth / L * L;
    for i0 in (0..w).step_by(L) {
        let valid = (w - i0).min(L);
        // Rows past `w` repeat row i0: read but never stored.
        let rows: [*const f32; L] =
            std::array::from_fn(|r| src.offset((i0 + if r < valid { r } else { 0 }) as isize * rs));
        for k in (0..blocks).step_by(L) {
            let r: [__m256; L] = std::array::from_fn(|i| _mm256_loadu_ps(rows[i].add(k)));
            let t: [__m256; L] = std::array::from_fn(|i| {
                let (x, y) = (r[2 * (i / 2)], r[2 * (i / 2) + 1]);
                if i % 2 == 0 {
                    _mm256_unpacklo_ps(x, y)
                } else {
                    _mm256_unpackhi_ps(x, y)
                }
            });
            // t[2q] = (lo of rows 2q, 2q+1), t[2q+1] = (hi of them), q = 0..4.
            let s = [
                _mm256_shuffle_ps::<0x44>(t[0], t[2]),
                _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
                _mm256_shuffle_ps::<0x44>(t[1], t[3]),
                _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
                _mm256_shuffle_ps::<0x44>(t[4], t[6]),
                _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
                _mm256_shuffle_ps::<0x44>(t[5], t[7]),
                _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
            ];
            // Column kk of the 8×8 block: low halves give columns 0-3, high halves 4-7.
            let cols = [
                _mm256_permute2f128_ps::<0x20>(s[0], s[4]),
                _mm256_permute2f128_ps::<0x20>(s[1], s[5]),
                _mm256_permute2f128_ps::<0x20>(s[2], s[6]),
                _mm256_permute2f128_ps::<0x20>(s[3], s[7]),
                _mm256_permute2f128_ps::<0x31>(s[0], s[4]),
                _mm256_permute2f128_ps::<0x31>(s[1], s[5]),
                _mm256_permute2f128_ps::<0x31>(s[2], s[6]),
                _mm256_permute2f128_ps::<0x31>(s[3], s[7]),
            ];
            for (kk, col) in cols.iter().enumerate() {
                store_first_f32(dst.add((k + kk) * w + i0), *col, valid);
            }
        }
        for k in blocks..depth {
            for (i, row) in rows.iter().enumerate().take(valid) {
                *dst.add(k * w + i0 + i) = *row.add(k);
            }
        }
    }
}

/// Stores lanes `..n` of `v` at `d` (masked AVX stores are microcoded and slow on Zen).
#[inline(always)]
unsafe fn store_first_f32(d: *mut f32, v: __m256, n: usize) {
    match n {
        8 => _mm256_storeu_ps(d, v),
        6 => {
            _mm_storeu_ps(d, _mm256_castps256_ps128(v));
            _mm_store_sd(
                d.add(4) as *mut f64,
                _mm_castps_pd(_mm256_extractf128_ps::<1>(v)),
            );
        }
        _ => {
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), v);
            std::ptr::copy_nonoverlapping(lanes.as_ptr(), d, n);
        }
    }
}

/// [`store_first_f32`] for f64.
#[inline(always)]
unsafe fn store_first_f64(d: *mut f64, v: __m256d, n: usize) {
    match n {
        4 => _mm256_storeu_pd(d, v),
        2 => _mm_storeu_pd(d, _mm256_castpd256_pd128(v)),
        _ => {
            let mut lanes = [0f64; 4];
            _mm256_storeu_pd(lanes.as_mut_ptr(), v);
            std::ptr::copy_nonoverlapping(lanes.as_ptr(), d, n);
        }
    }
}

/// [`pack_rows_f32`] for f64, in 4×4 register blocks.
///
/// # Safety
/// As [`pack_rows_f32`].
#[target_feature(enable = "avx2")]
unsafe fn pack_rows_f64(w: usize, depth: usize, src: *const f64, rs: isize, dst: *mut f64) {
    const L: usize = 4;
    let blocks = depth / L * L;
    for i0 in (0..w).step_by(L) {
        let valid = (w - i0).min(L);
        let rows: [*const f64; L] =
            std::array::from_fn(|r| src.offset((i0 + if r < valid { r } else { 0 }) as isize * rs));
        for k in (0..blocks).step_by(L) {
            let r: [__m256d; L] = std::array::from_fn(|i| _mm256_loadu_pd(rows[i].add(k)));
            let t = [
                _mm256_unpacklo_pd(r[0], r[1]),
                _mm256_unpackhi_pd(r[0], r[1]),
                _mm256_unpacklo_pd(r[2], r[3]),
                _mm256_unpackhi_pd(r[2], r[3]),
            ];
            let cols = [
                _mm256_permute2f128_pd::<0x20>(t[0], t[2]),
                _mm256_permute2f128_pd::<0x20>(t[1], t[3]),
                _mm256_permute2f128_pd::<0x31>(t[0], t[2]),
                _mm256_permute2f128_pd::<0x31>(t[1], t[3]),
            ];
            for (kk, col) in cols.iter().enumerate() {
                store_first_f64(dst.add((k + kk) * w + i0), *col, valid);
            }
        }
        for k in blocks..depth {
            for (i, row) in rows.iter().enumerate().take(valid) {
                *dst.add(k * w + i0 + i) = *row.add(k);
            }
        }
    }
}

/// Blocking measured on a Zen AVX2 core (32 KB L1d, 512 KB L2): a KC×NR B micro-panel of
/// 16 KB stays in L1 while MC×KC of A (144 KB f32) streams from L2.
impl MicroKernel for f32 {
    const MR: usize = 6;
    const NR: usize = 16;
    const KC: usize = 256;
    const MC: usize = 144;
    const NC: usize = 4096;
    unsafe fn kernel(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        rs: isize,
        cs: isize,
        mr: usize,
        nr: usize,
        accumulate: bool,
    ) {
        kernel_f32(kc, a, b, c, rs, cs, mr, nr, accumulate)
    }
    unsafe fn pack_rows(w: usize, depth: usize, src: *const f32, rs: isize, dst: *mut f32) {
        pack_rows_f32(w, depth, src, rs, dst)
    }
}

/// Same bytes per panel as f32: NR = 8 doubles, MC halved.
impl MicroKernel for f64 {
    const MR: usize = 6;
    const NR: usize = 8;
    const KC: usize = 256;
    const MC: usize = 72;
    const NC: usize = 4096;
    unsafe fn kernel(
        kc: usize,
        a: *const f64,
        b: *const f64,
        c: *mut f64,
        rs: isize,
        cs: isize,
        mr: usize,
        nr: usize,
        accumulate: bool,
    ) {
        kernel_f64(kc, a, b, c, rs, cs, mr, nr, accumulate)
    }
    unsafe fn pack_rows(w: usize, depth: usize, src: *const f64, rs: isize, dst: *mut f64) {
        pack_rows_f64(w, depth, src, rs, dst)
    }
}
