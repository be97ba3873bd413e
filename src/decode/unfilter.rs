//! Un-filtering PNG rows (PNG spec, section 9: None, Sub, Up, Average, Paeth), two rows at a time.
//! Average and Paeth rows are chains: each pixel needs the unfiltered pixel left of it, so one row
//! runs at the latency of that chain, not at the CPU's throughput (Paeth: about 13 cycles a pixel
//! in the png crate). Row r+1's pixel x needs only row r's pixels up to x, so the AVX2 path runs
//! row r's pixel x and row r+1's pixel x-1 in the two halves of one register: two pixels a step
//! of the same chain. Rows without such a chain (None, Sub, Up) run alone, as plain loops. Same
//! bytes as the spec's arithmetic ([`row_scalar`]), tested against it.

/// The five filter types, as the byte that starts each filtered row.
const FILTERS: u8 = 5;

/// Unfilters two consecutive rows of `bpp` bytes a pixel. `prev` is the unfiltered row above the
/// first one (zeros above the first row of an image), `raw` the two filtered rows without their
/// filter bytes, `out` where they go. `Err` carries a filter byte the spec does not define.
pub(crate) fn pair(
    bpp: usize,
    filters: [u8; 2],
    prev: &[u8],
    raw: [&[u8]; 2],
    out: [&mut [u8]; 2],
) -> Result<(), u8> {
    if let Some(&bad) = filters.iter().find(|&&f| f >= FILTERS) {
        return Err(bad);
    }
    let [out0, out1] = out;
    // None and Up rows have no chain, Sub a one-add chain: two of them run faster alone
    let chained = |f: u8| f == AVERAGE || f == PAETH;
    #[cfg(target_arch = "x86_64")]
    if filters.iter().any(|&f| chained(f))
        && avx2::pair(bpp, filters, prev, raw, [&mut *out0, &mut *out1])
    {
        return Ok(());
    }
    row_alone(bpp, filters[0], prev, raw[0], out0);
    row_alone(bpp, filters[1], out0, raw[1], out1);
    Ok(())
}

/// Unfilters one row (see [`pair`]).
pub(crate) fn row(
    bpp: usize,
    filter: u8,
    prev: &[u8],
    raw: &[u8],
    out: &mut [u8],
) -> Result<(), u8> {
    if filter >= FILTERS {
        return Err(filter);
    }
    row_alone(bpp, filter, prev, raw, out);
    Ok(())
}

const SUB: u8 = 1;
const UP: u8 = 2;
const AVERAGE: u8 = 3;
const PAETH: u8 = 4;

/// One row on its own: whole pixels as arrays the compiler keeps in registers for 3 and 4 bytes
/// a pixel, the spec's byte loop otherwise.
fn row_alone(bpp: usize, filter: u8, prev: &[u8], raw: &[u8], out: &mut [u8]) {
    match bpp {
        3 => row_of::<3>(filter, prev, raw, out),
        4 => row_of::<4>(filter, prev, raw, out),
        _ => row_scalar(bpp, filter, prev, raw, out),
    }
}

fn row_of<const BPP: usize>(filter: u8, prev: &[u8], raw: &[u8], out: &mut [u8]) {
    let avg = |a: u8, b: u8| ((u16::from(a) + u16::from(b)) / 2) as u8;
    // one loop per filter (the predictor inlined), not a choice per byte
    match filter {
        0 => out.copy_from_slice(raw),
        SUB => pixels::<BPP>(prev, raw, out, |a, _, _| a),
        UP => {
            for ((out, raw), b) in out.iter_mut().zip(raw).zip(prev) {
                *out = raw.wrapping_add(*b);
            }
        }
        AVERAGE => pixels::<BPP>(prev, raw, out, |a, b, _| avg(a, b)),
        _ => pixels::<BPP>(prev, raw, out, paeth),
    }
}

/// `out = raw + predict(a, b, c)` pixel by pixel, a pixel's bands side by side.
#[inline(always)]
fn pixels<const BPP: usize>(
    prev: &[u8],
    raw: &[u8],
    out: &mut [u8],
    predict: impl Fn(u8, u8, u8) -> u8,
) {
    let rows = raw
        .as_chunks::<BPP>()
        .0
        .iter()
        .zip(prev.as_chunks::<BPP>().0);
    let (mut a, mut c) = ([0u8; BPP], [0u8; BPP]);
    for ((raw, b), out) in rows.zip(out.as_chunks_mut::<BPP>().0) {
        *out = std::array::from_fn(|i| raw[i].wrapping_add(predict(a[i], b[i], c[i])));
        (a, c) = (*out, *b);
    }
}

/// Whether [`pair`] has a fast path for rows of `bpp` bytes a pixel on this CPU: callers with
/// another decoder keep it where this one would be slower.
pub(crate) fn fast_for(bpp: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    return matches!(bpp, 3 | 4) && is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The spec's arithmetic, byte by byte: `a` left, `b` above, `c` above-left, zero off the image.
fn row_scalar(bpp: usize, filter: u8, prev: &[u8], raw: &[u8], out: &mut [u8]) {
    for i in 0..raw.len() {
        let left = |v: &[u8]| if i >= bpp { v[i - bpp] } else { 0 };
        let (a, b, c) = (left(out), prev[i], left(prev));
        let predicted = match filter {
            0 => 0,
            1 => a,
            2 => b,
            3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
            _ => paeth(a, b, c),
        };
        out[i] = raw[i].wrapping_add(predicted);
    }
}

/// The Paeth predictor as the spec writes it: whichever of a, b, c is nearest a + b - c, ties
/// going to a, then b.
fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// The two-row path for 3 and 4 bytes a pixel when one row is Average or Paeth; false
    /// (nothing written) otherwise.
    pub fn pair(
        bpp: usize,
        filters: [u8; 2],
        prev: &[u8],
        raw: [&[u8]; 2],
        out: [&mut [u8]; 2],
    ) -> bool {
        if !super::fast_for(bpp) {
            return false;
        }
        let len = raw[0].len();
        assert!(
            prev.len() == len && raw[1].len() == len && out.iter().all(|o| o.len() == len),
            "rows of one length"
        );
        assert!(len.is_multiple_of(bpp), "whole pixels");
        // one instance for each pair of filters, so each step computes only its two predictors
        // (pairs without Average or Paeth have no chain worth pairing)
        macro_rules! dispatch {
            ($bpp:literal; $($f0:literal, $f1:literal);*) => {
                match (filters[0], filters[1]) {
                    $(($f0, $f1) => rows::<$bpp, $f0, $f1>(prev, raw, out),)*
                    _ => return false,
                }
            };
        }
        macro_rules! all_pairs {
            ($bpp:literal) => {
                dispatch!($bpp; 0,3; 0,4; 1,3; 1,4; 2,3; 2,4; 3,0; 3,1; 3,2; 3,3; 3,4; 4,0; 4,1;
                    4,2; 4,3; 4,4)
            };
        }
        // SAFETY: the CPU has AVX2 (`fast_for`), and the rows have the lengths `rows` requires
        unsafe {
            match bpp {
                3 => all_pairs!(3),
                _ => all_pairs!(4),
            }
        }
        true
    }

    /// Step x computes row 0's pixel x in the low half (i16 lanes 0-3) and row 1's pixel x-1 in
    /// the high half (lanes 4-7). Then the high half's `b` (row 0's pixel x-1) is the low half of
    /// the step before, and its `c` the low half of the `b` before: both come from registers.
    /// Pixels are loaded and stored four bytes at a time; with three bytes a pixel the fourth
    /// lane is the next pixel's first byte, computed and overwritten, so the last two steps,
    /// whose fourth byte would pass the row's end, load and store exact bytes.
    #[target_feature(enable = "avx2")]
    unsafe fn rows<const BPP: usize, const F0: u8, const F1: u8>(
        prev: &[u8],
        raw: [&[u8]; 2],
        out: [&mut [u8]; 2],
    ) {
        let n = prev.len() / BPP;
        if n == 0 {
            return;
        }
        let [out0, out1] = out;
        let (p, r0, r1) = (prev.as_ptr(), raw[0].as_ptr(), raw[1].as_ptr());
        let (o0, o1) = (out0.as_mut_ptr(), out1.as_mut_ptr());
        let zero = _mm_setzero_si128();
        // row 0's pixel -1 and row 1's pixel -2: zero, as is everything left of the image
        let (mut left, mut above_left) = (zero, zero);
        // steps before n-1 load and store four bytes inside the rows; the last two, exact bytes
        let fast = n - 1;
        // SAFETY (all loads and stores): pixel x of a row of n pixels spans bytes BPP*x..BPP*x+4,
        // within the row for x < n-1 (BPP <= 4); the exact steps access BPP bytes
        unsafe {
            for x in 0..fast {
                let above = _mm_unpacklo_epi64(load(p.add(BPP * x)), left);
                let row1 = if x == 0 {
                    zero
                } else {
                    load(r1.add(BPP * (x - 1)))
                };
                let filtered = _mm_unpacklo_epi64(load(r0.add(BPP * x)), row1);
                left = step::<F0, F1>(left, above, above_left, filtered);
                store(o0.add(BPP * x), left);
                if x > 0 {
                    store(o1.add(BPP * (x - 1)), _mm_unpackhi_epi64(left, left));
                }
                above_left = above;
            }
            for x in fast..=n {
                let inside = x < n;
                let (p_x, r0_x) = if inside {
                    (
                        load_exact::<BPP>(p.add(BPP * x)),
                        load_exact::<BPP>(r0.add(BPP * x)),
                    )
                } else {
                    (zero, zero)
                };
                let row1 = if x == 0 {
                    zero
                } else {
                    load_exact::<BPP>(r1.add(BPP * (x - 1)))
                };
                let above = _mm_unpacklo_epi64(p_x, left);
                left = step::<F0, F1>(left, above, above_left, _mm_unpacklo_epi64(r0_x, row1));
                if inside {
                    store_exact::<BPP>(o0.add(BPP * x), left);
                }
                if x > 0 {
                    store_exact::<BPP>(o1.add(BPP * (x - 1)), _mm_unpackhi_epi64(left, left));
                }
                above_left = above;
            }
        }
    }

    /// One step of both rows: the filtered bytes plus each half's predictor, kept to 8 bits.
    #[inline(always)]
    unsafe fn step<const F0: u8, const F1: u8>(
        a: __m128i,
        b: __m128i,
        c: __m128i,
        filtered: __m128i,
    ) -> __m128i {
        let predicted = if F0 == F1 {
            predict::<F0>(a, b, c)
        } else {
            _mm_blend_epi16(predict::<F0>(a, b, c), predict::<F1>(a, b, c), 0xF0)
        };
        _mm_and_si128(_mm_add_epi16(filtered, predicted), _mm_set1_epi16(0xFF))
    }

    #[inline(always)]
    unsafe fn predict<const F: u8>(a: __m128i, b: __m128i, c: __m128i) -> __m128i {
        match F {
            0 => _mm_setzero_si128(),
            1 => a,
            2 => b,
            3 => _mm_srli_epi16(_mm_add_epi16(a, b), 1),
            _ => paeth(a, b, c),
        }
    }

    /// Paeth without branches, in the form of stb_image (public domain): with t = 3c - (a + b),
    /// the nearest of a, b, c to a + b - c is max(a,b) when t <= min(a,b), min(a,b) when
    /// max(a,b) <= t, c otherwise; equal to the spec's choice, ties included (tested).
    #[inline(always)]
    unsafe fn paeth(a: __m128i, b: __m128i, c: __m128i) -> __m128i {
        let threshold = _mm_sub_epi16(_mm_add_epi16(_mm_add_epi16(c, c), c), _mm_add_epi16(a, b));
        let (low, high) = (_mm_min_epi16(a, b), _mm_max_epi16(a, b));
        let low_or_c = _mm_blendv_epi8(low, c, _mm_cmpgt_epi16(high, threshold));
        _mm_blendv_epi8(high, low_or_c, _mm_cmpgt_epi16(threshold, low))
    }

    /// The fast Paeth of `a`, `b` and every c, eight lanes at a time (for the test).
    #[cfg(test)]
    pub fn paeth_lanes(a: u8, b: u8) -> [u8; 256] {
        assert!(is_x86_feature_detected!("avx2"));
        let mut got = [0u8; 256];
        for c0 in (0..256).step_by(8) {
            let c: [i16; 8] = std::array::from_fn(|i| (c0 + i) as i16);
            let mut lanes = [0i16; 8];
            // SAFETY: AVX2 checked above; the arrays are 16 bytes
            unsafe {
                let chosen = paeth_avx2(
                    _mm_set1_epi16(a.into()),
                    _mm_set1_epi16(b.into()),
                    _mm_loadu_si128(c.as_ptr().cast()),
                );
                _mm_storeu_si128(lanes.as_mut_ptr().cast(), chosen);
            }
            for (i, v) in lanes.iter().enumerate() {
                got[c0 + i] = *v as u8;
            }
        }
        got
    }

    #[cfg(test)]
    #[target_feature(enable = "avx2")]
    fn paeth_avx2(a: __m128i, b: __m128i, c: __m128i) -> __m128i {
        // SAFETY: this function runs with AVX2
        unsafe { paeth(a, b, c) }
    }

    /// Four bytes widened to i16 lanes 0-3.
    #[inline(always)]
    unsafe fn load(at: *const u8) -> __m128i {
        unsafe { _mm_cvtepu8_epi16(_mm_cvtsi32_si128(at.cast::<i32>().read_unaligned())) }
    }

    /// Lanes 0-3 narrowed to four bytes.
    #[inline(always)]
    unsafe fn store(at: *mut u8, v: __m128i) {
        let bytes = _mm_cvtsi128_si32(_mm_packus_epi16(v, v));
        unsafe { at.cast::<i32>().write_unaligned(bytes) }
    }

    #[inline(always)]
    unsafe fn load_exact<const BPP: usize>(at: *const u8) -> __m128i {
        let mut px = [0u8; 4];
        unsafe { std::ptr::copy_nonoverlapping(at, px.as_mut_ptr(), BPP) };
        unsafe { load(px.as_ptr()) }
    }

    #[inline(always)]
    unsafe fn store_exact<const BPP: usize>(at: *mut u8, v: __m128i) {
        let px = _mm_cvtsi128_si32(_mm_packus_epi16(v, v)).to_ne_bytes();
        unsafe { std::ptr::copy_nonoverlapping(px.as_ptr(), at, BPP) };
    }
}

/// Pseudo-random bytes from a seed (xorshift), for tests of rows and files.
#[cfg(test)]
pub(crate) fn test_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 32) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pseudo-random bytes, a third of them 0 to 3: runs of equal and near values make the
    /// Paeth ties that uniform bytes rarely give.
    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let tie_prone = |b: u8| if b.is_multiple_of(3) { b & 0x03 } else { b };
        test_bytes(n, seed).into_iter().map(tie_prone).collect()
    }

    const GUARD: u8 = 0xA5;

    /// Every pair of filters, at 1, 2, 3, 4, 6 and 8 bytes a pixel and widths from 0 to 9 pixels
    /// and one long row: the pair path gives the spec's bytes, row by row.
    #[test]
    fn pairs_of_rows_equal_the_specs_arithmetic() {
        for bpp in [1, 2, 3, 4, 6, 8] {
            for width in (0..10).chain([257]) {
                let len = width * bpp;
                for f0 in 0..FILTERS {
                    for f1 in 0..FILTERS {
                        let seed = (bpp * 1000 + width * 25 + f0 as usize * 5 + f1 as usize) as u64;
                        let (prev, r0, r1) =
                            (bytes(len, seed), bytes(len, seed + 1), bytes(len, seed + 2));
                        let (mut want0, mut want1) = (vec![0; len], vec![0; len]);
                        row_scalar(bpp, f0, &prev, &r0, &mut want0);
                        row_scalar(bpp, f1, &want0, &r1, &mut want1);
                        // guard bytes past each output row: nothing may be written there
                        let (mut got0, mut got1) = (vec![GUARD; len + 8], vec![GUARD; len + 8]);
                        let out = [&mut got0[..len], &mut got1[..len]];
                        pair(bpp, [f0, f1], &prev, [&r0, &r1], out).unwrap();
                        let at = format!("bpp {bpp}, width {width}, filters {f0} {f1}");
                        assert_eq!(got0[..len], want0, "{at}: first row");
                        assert_eq!(got1[..len], want1, "{at}: second row");
                        let intact = |g: &[u8]| g[len..].iter().all(|&b| b == GUARD);
                        assert!(intact(&got0) && intact(&got1), "{at}: wrote past a row");
                    }
                }
            }
        }
    }

    /// The branch-free Paeth of the fast path chooses as the spec does for all 2^24 triples.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn paeth_chooses_as_the_spec_for_every_triple() {
        if !is_x86_feature_detected!("avx2") {
            return;
        }
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let got = avx2::paeth_lanes(a, b);
                for (c, &choice) in got.iter().enumerate() {
                    assert_eq!(choice, paeth(a, b, c as u8), "a {a} b {b} c {c}");
                }
            }
        }
    }

    #[test]
    fn an_undefined_filter_is_named() {
        let z = vec![0u8; 12];
        let (mut a, mut b) = (vec![0u8; 12], vec![0u8; 12]);
        assert_eq!(pair(3, [1, 5], &z, [&z, &z], [&mut a, &mut b]), Err(5));
        assert_eq!(row(3, 9, &z, &z, &mut a), Err(9));
    }
}
