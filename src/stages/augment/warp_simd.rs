//! SIMD rows of the warp for x86-64, each giving the very bytes of the scalar row in `warp`: the
//! same f32 products and sums in the same order, only several lanes at a time. AVX2 is used when
//! the CPU has it (checked at run time, once per row); SSE2, part of the x86-64 baseline, otherwise.
use super::sampling::{
    bilinear_at_border, bilinear_tap, nearest_row as scalar_nearest, Border, NearestLabel,
};
use std::arch::x86_64::*;

/// Bilinear row of an 8-bit 3- or 4-band image; false when the band count has no SIMD row.
pub fn bilinear_row_u8(
    src: &[u8],
    dims: (usize, usize, usize),
    pos: (&[f64], &[f64]),
    border: Border,
    fill: &[f32],
    out: &mut [u8],
) -> bool {
    let avx2 = is_x86_feature_detected!("avx2");
    // SAFETY: each row runs only on a CPU with the features it is compiled for
    unsafe {
        match (dims.2, avx2) {
            (3, true) => avx2::bilinear_row::<3>(src, dims, pos, border, fill, out),
            (4, true) => avx2::bilinear_row::<4>(src, dims, pos, border, fill, out),
            (3, false) => sse2::bilinear_row::<3>(src, dims, pos, border, fill, out),
            (4, false) => sse2::bilinear_row::<4>(src, dims, pos, border, fill, out),
            _ => return false,
        }
    }
    true
}

/// Nearest sources of a row (as `warp::nearest_row`); false when the CPU lacks AVX2.
pub fn nearest_row(
    xs: &[f64],
    ys: &[f64],
    dims: (usize, usize),
    border: Border,
    out: &mut [usize],
) -> bool {
    if !is_x86_feature_detected!("avx2") {
        return false;
    }
    // SAFETY: the CPU has AVX2, checked above
    unsafe { avx2::nearest_row(xs, ys, dims, border, out) };
    true
}

/// A label row sampled nearest at the positions (xs, ys) of a `dims` label (as `warp::nearest_row`
/// then `NearestLabel::fill`), writing its ids and padding flags; whether a source fell outside.
/// `None` (nothing written) when the CPU lacks AVX2.
pub fn label_row(
    pos: (&[f64], &[f64]),
    dims: (usize, usize),
    border: Border,
    label: &NearestLabel,
    out: (&mut [u16], &mut [bool]),
) -> Option<bool> {
    if !is_x86_feature_detected!("avx2") {
        return None;
    }
    // SAFETY: the CPU has AVX2, checked above
    Some(unsafe { avx2::label_row(pos, dims, border, label, out) })
}

/// The scalar tail and edge pixels of a bilinear row, as `warp::bilinear_row` does them.
#[inline]
fn scalar_pixel<const B: usize>(
    src: &[u8],
    (w, h): (usize, usize),
    (sx, sy): (f64, f64),
    border: Border,
    fill: &[f32],
    px: &mut [u8],
) {
    let ((ix, iy), (fx, fy), _) = bilinear_tap(sx, sy, (w, h));
    bilinear_at_border(src, (w, h, B), (ix, iy), (fx, fy), border, fill, px);
}

/// `a * (1 - f) + b * f`, lane by lane: the vertical step of every bilinear pixel.
#[inline]
#[target_feature(enable = "sse2")]
fn mix(a: __m128, b: __m128, f: f32) -> __m128 {
    _mm_add_ps(
        _mm_mul_ps(a, _mm_set1_ps(1.0 - f)),
        _mm_mul_ps(b, _mm_set1_ps(f)),
    )
}

/// Rounds four lanes in [0, 255] to bytes (`(v + 0.5) as u8`, as `PixelValue::from_f32`) and
/// writes the first `px.len()`.
#[inline]
#[target_feature(enable = "sse2")]
fn store_rounded(value: __m128, px: &mut [u8]) {
    let ints = _mm_cvttps_epi32(_mm_add_ps(value, _mm_set1_ps(0.5)));
    let bytes = _mm_packus_epi16(_mm_packs_epi32(ints, ints), ints);
    let word = (_mm_cvtsi128_si32(bytes) as u32).to_le_bytes();
    px.copy_from_slice(&word[..px.len()]);
}

/// One pixel's bands in the four f32 lanes of an SSE2 register.
mod sse2 {
    use super::*;

    /// The four bytes from `at` as four f32 lanes.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn lanes(src: &[u8], at: usize) -> __m128 {
        let four: [u8; 4] = src[at..at + 4].try_into().expect("four bytes");
        let word = u32::from_le_bytes(four);
        let zero = _mm_setzero_si128();
        let words = _mm_unpacklo_epi8(_mm_cvtsi32_si128(word as i32), zero);
        _mm_cvtepi32_ps(_mm_unpacklo_epi16(words, zero))
    }

    #[target_feature(enable = "sse2")]
    pub fn bilinear_row<const B: usize>(
        src: &[u8],
        (w, h, _): (usize, usize, usize),
        (xs, ys): (&[f64], &[f64]),
        border: Border,
        fill: &[f32],
        out: &mut [u8],
    ) {
        let stride = w * B;
        for ((px, &sx), &sy) in out.chunks_exact_mut(B).zip(xs).zip(ys) {
            let ((ix, iy), (fx, fy), inside) = bilinear_tap(sx, sy, (w, h));
            let at = if inside {
                iy as usize * stride + ix as usize * B
            } else {
                usize::MAX
            };
            // a 3-band tap loads 4 bytes: the image's very last pixel takes the general path
            if at.saturating_add(stride + B + 4) > src.len() {
                bilinear_at_border(src, (w, h, B), (ix, iy), (fx, fy), border, fill, px);
                continue;
            }
            let top = mix(lanes(src, at), lanes(src, at + B), fx);
            let bottom = mix(lanes(src, at + stride), lanes(src, at + stride + B), fx);
            store_rounded(mix(top, bottom, fy), px);
        }
    }
}

/// Four positions at a time: floors and fractions in f64 lanes, then per pixel both horizontal
/// taps of a source row in one 8-lane register.
mod avx2 {
    use super::*;

    /// Floors of four positions as i32 (out of range: i32::MIN, which no bounds check passes) and
    /// the f32 fractions toward the next pixel, as `bilinear_tap` computes them.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn floor_lanes(v: &[f64]) -> (__m128i, __m128) {
        // SAFETY: `v[..4]` holds the four lanes read
        let v = unsafe { _mm256_loadu_pd(v[..4].as_ptr()) };
        let floor = _mm256_floor_pd(v);
        let fractions = _mm256_cvtpd_ps(_mm256_sub_pd(v, floor));
        (_mm256_cvttpd_epi32(floor), fractions)
    }

    /// [`floor_lanes`] as arrays, for pixels taken one at a time.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn floors_and_fractions(v: &[f64]) -> ([i32; 4], [f32; 4]) {
        let (floors, fractions) = floor_lanes(v);
        let (mut ints, mut fracs) = ([0i32; 4], [0f32; 4]);
        // SAFETY: both arrays hold four lanes
        unsafe {
            _mm_storeu_si128(ints.as_mut_ptr().cast(), floors);
            _mm_storeu_ps(fracs.as_mut_ptr(), fractions);
        }
        (ints, fracs)
    }

    /// Both horizontal taps of one source row from `at` (B bands each; the lanes past B of each
    /// tap are discarded), weighted and summed: `left * (1 - fx) + right * fx` per band.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn row_taps<const B: usize>(src: &[u8], at: usize, weights: __m256) -> __m128 {
        let eight: [u8; 8] = src[at..at + 8].try_into().expect("eight bytes");
        let mut bytes = _mm_cvtsi64_si128(i64::from_le_bytes(eight));
        if B == 3 {
            // left pixel to lanes 0..3, right pixel to lanes 4..7
            let spread = _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, -1, -1, -1, -1, -1, -1, -1, -1);
            bytes = _mm_shuffle_epi8(bytes, spread);
        }
        let taps = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes)), weights);
        _mm_add_ps(_mm256_castps256_ps128(taps), _mm256_extractf128_ps(taps, 1))
    }

    #[target_feature(enable = "avx2")]
    pub fn bilinear_row<const B: usize>(
        src: &[u8],
        (w, h, _): (usize, usize, usize),
        (xs, ys): (&[f64], &[f64]),
        border: Border,
        fill: &[f32],
        out: &mut [u8],
    ) {
        let n = (out.len() / B).min(xs.len()).min(ys.len());
        let octets = Octets::<B>::new(src.len(), (w, h));
        let mut i = 0;
        while i + 4 <= n {
            let octet = match octets {
                Some(o) if i + 8 <= n => o.row(src, (&xs[i..], &ys[i..]), &mut out[i * B..]),
                _ => false,
            };
            if octet {
                i += 8;
                continue;
            }
            let pos = (&xs[i..], &ys[i..]);
            quad::<B>(src, (w, h), pos, border, fill, &mut out[i * B..]);
            i += 4;
        }
        for i in i..n {
            let px = &mut out[i * B..(i + 1) * B];
            scalar_pixel::<B>(src, (w, h), (xs[i], ys[i]), border, fill, px);
        }
    }

    /// Four pixels, one at a time: both horizontal taps of a source row in one register. Pixels
    /// whose taps are not all inside the image take the scalar way.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn quad<const B: usize>(
        src: &[u8],
        (w, h): (usize, usize),
        (xs, ys): (&[f64], &[f64]),
        border: Border,
        fill: &[f32],
        out: &mut [u8],
    ) {
        let stride = w * B;
        let (last_x, last_y) = ((w as u32).wrapping_sub(1), (h as u32).wrapping_sub(1));
        let (ix, fx) = floors_and_fractions(xs);
        let (iy, fy) = floors_and_fractions(ys);
        for lane in 0..4 {
            let px = &mut out[lane * B..(lane + 1) * B];
            let inside = (ix[lane] as u32) < last_x && (iy[lane] as u32) < last_y;
            let at = match inside {
                true => iy[lane] as usize * stride + ix[lane] as usize * B,
                false => usize::MAX,
            };
            // the taps load 8 bytes from each row: the image's last pixels go the scalar way
            if at.saturating_add(stride + 8) > src.len() {
                scalar_pixel::<B>(src, (w, h), (xs[lane], ys[lane]), border, fill, px);
                continue;
            }
            let (f, g) = (fx[lane], fy[lane]);
            let weights = _mm256_set_m128(_mm_set1_ps(f), _mm_set1_ps(1.0 - f));
            let top = row_taps::<B>(src, at, weights);
            let bottom = row_taps::<B>(src, at + stride, weights);
            store_rounded(mix(top, bottom, g), px);
        }
    }

    /// Eight pixels at once, band by band: the scalar row's f32 products and sums in eight lanes.
    /// Each gather fetches eight bytes per pixel, both horizontal taps of one source row, so four
    /// gathers of four lanes serve eight pixels. For images whose byte offsets fit i32.
    #[derive(Clone, Copy)]
    pub(super) struct Octets<const B: usize> {
        stride: i32,
        /// `w - 1` and `h - 1`: the top-left tap must lie below both
        last: (i32, i32),
        /// The highest top-left offset whose eight-byte gathers stay inside the source
        max_at: i32,
    }

    impl<const B: usize> Octets<B> {
        pub(super) fn new(len: usize, (w, h): (usize, usize)) -> Option<Self> {
            let stride = i32::try_from(w * B).ok()?;
            let len = i32::try_from(len).ok()?;
            let last = (i32::try_from(w).ok()? - 1, i32::try_from(h).ok()? - 1);
            let max_at = len.checked_sub(stride + 8)?;
            Some(Self {
                stride,
                last,
                max_at,
            })
        }

        /// Writes eight pixels to `out`; false (nothing written) when a tap of one of them lies
        /// off the image or a gather would read past the source.
        #[inline]
        #[target_feature(enable = "avx2")]
        pub(super) fn row(self, src: &[u8], (xs, ys): (&[f64], &[f64]), out: &mut [u8]) -> bool {
            let (ix, fx) = floors_and_fractions8(xs);
            let (iy, fy) = floors_and_fractions8(ys);
            let at = _mm256_add_epi32(
                _mm256_mullo_epi32(iy, _mm256_set1_epi32(self.stride)),
                _mm256_mullo_epi32(ix, _mm256_set1_epi32(B as i32)),
            );
            let ok = _mm256_and_si256(
                _mm256_and_si256(below(ix, self.last.0), below(iy, self.last.1)),
                _mm256_cmpgt_epi32(_mm256_set1_epi32(self.max_at + 1), at),
            );
            if _mm256_movemask_epi8(ok) != -1 {
                return false;
            }
            // pixels 0, 1, 4, 5 and 2, 3, 6, 7: the pairs in which unpacking pairs the weights
            let order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
            let split = _mm256_permutevar8x32_epi32(at, order);
            let (first, second) = (
                _mm256_castsi256_si128(split),
                _mm256_extracti128_si256(split, 1),
            );
            let down = _mm_set1_epi32(self.stride);
            let base = src.as_ptr().cast::<i64>();
            // SAFETY: every offset is at most max_at + stride, so each eight-byte read ends
            // inside `src` (checked above)
            let taps = unsafe {
                [
                    _mm256_i32gather_epi64::<1>(base, first),
                    _mm256_i32gather_epi64::<1>(base, second),
                    _mm256_i32gather_epi64::<1>(base, _mm_add_epi32(first, down)),
                    _mm256_i32gather_epi64::<1>(base, _mm_add_epi32(second, down)),
                ]
            };
            let one = _mm256_set1_ps(1.0);
            let (gx, gy) = (_mm256_sub_ps(one, fx), _mm256_sub_ps(one, fy));
            // (1 - fx, fx) of each pixel side by side, as its two taps lie in a gathered lane
            let weights = (_mm256_unpacklo_ps(gx, fx), _mm256_unpackhi_ps(gx, fx));
            let mut pixels = _mm256_setzero_si256();
            for band in 0..B {
                let top = row_mix::<B>((taps[0], taps[1]), band, weights);
                let under = row_mix::<B>((taps[2], taps[3]), band, weights);
                let mixed = _mm256_add_ps(_mm256_mul_ps(top, gy), _mm256_mul_ps(under, fy));
                let rounded = _mm256_cvttps_epi32(_mm256_add_ps(mixed, _mm256_set1_ps(0.5)));
                let shifted = _mm256_sllv_epi32(rounded, _mm256_set1_epi32(8 * band as i32));
                pixels = _mm256_or_si256(pixels, shifted);
            }
            store_pixels::<B>(pixels, &mut out[..8 * B]);
            true
        }
    }

    /// `left * (1 - fx) + right * fx` of band `band` for eight pixels in order, from the taps of
    /// pixels 0, 1, 4, 5 (`taps.0`) and 2, 3, 6, 7 (`taps.1`), eight bytes a pixel: the two
    /// products of a pixel lie side by side, and one horizontal add sums each pair (one rounding,
    /// as the scalar sum).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn row_mix<const B: usize>(
        taps: (__m256i, __m256i),
        band: usize,
        w: (__m256, __m256),
    ) -> __m256 {
        let (l, r) = (band as i8, (B + band) as i8);
        let (z, m) = (-1, 8);
        let spread = _mm256_setr_epi8(
            l,
            z,
            z,
            z,
            r,
            z,
            z,
            z,
            l + m,
            z,
            z,
            z,
            r + m,
            z,
            z,
            z, //
            l,
            z,
            z,
            z,
            r,
            z,
            z,
            z,
            l + m,
            z,
            z,
            z,
            r + m,
            z,
            z,
            z,
        );
        let lanes = |t: __m256i| _mm256_cvtepi32_ps(_mm256_shuffle_epi8(t, spread));
        let products = (
            _mm256_mul_ps(lanes(taps.0), w.0),
            _mm256_mul_ps(lanes(taps.1), w.1),
        );
        _mm256_hadd_ps(products.0, products.1)
    }

    /// Lanes with `0 <= v < limit` (the floors of far positions are i32::MIN, so never).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn below(v: __m256i, limit: i32) -> __m256i {
        let nonnegative = _mm256_cmpgt_epi32(v, _mm256_set1_epi32(-1));
        _mm256_and_si256(nonnegative, _mm256_cmpgt_epi32(_mm256_set1_epi32(limit), v))
    }

    /// Eight pixels, one per 32-bit lane (band b in byte b), written as 8 * B bytes. Stored
    /// straight to `out`: packing through a stack array with overlapping stores stalled the load
    /// that copied it out (a failed store forward, a sixth of the whole row's time).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn store_pixels<const B: usize>(pixels: __m256i, out: &mut [u8]) {
        assert_eq!(out.len(), 8 * B);
        if B == 4 {
            // SAFETY: `out` holds 32 bytes (asserted)
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), pixels) };
            return;
        }
        // each half's four pixels to its first 12 bytes (the last 4 zero)
        let keep = _mm256_setr_epi8(
            0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1, //
            0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1,
        );
        let packed = _mm256_shuffle_epi8(pixels, keep);
        let (low, high) = (
            _mm256_castsi256_si128(packed),
            _mm256_extracti128_si256(packed, 1),
        );
        // bytes 0..16: the low half's 12 and the high half's first 4; bytes 16..24: its other 8
        let first = _mm_or_si128(low, _mm_slli_si128(high, 12));
        let rest = _mm_srli_si128(high, 4);
        // SAFETY: `out` holds 24 bytes (asserted): 16 at 0, 8 at 16
        unsafe {
            _mm_storeu_si128(out.as_mut_ptr().cast(), first);
            _mm_storel_epi64(out[16..].as_mut_ptr().cast(), rest);
        }
    }

    /// [`floor_lanes`] of eight positions.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn floors_and_fractions8(v: &[f64]) -> (__m256i, __m256) {
        let ((int_low, frac_low), (int_high, frac_high)) = (floor_lanes(v), floor_lanes(&v[4..]));
        let ints = _mm256_set_m128i(int_high, int_low);
        (ints, _mm256_set_m128(frac_high, frac_low))
    }

    /// `warp::nearest_row` four positions at a time; a quad with a position off the image, and
    /// the row's tail, take the scalar way.
    #[target_feature(enable = "avx2")]
    pub fn nearest_row(
        xs: &[f64],
        ys: &[f64],
        (w, h): (usize, usize),
        border: Border,
        out: &mut [usize],
    ) {
        let n = out.len().min(xs.len()).min(ys.len());
        for q in 0..n / 4 {
            let at = 4 * q;
            let (ix, iy) = (rounded(&xs[at..]), rounded(&ys[at..]));
            let quad = &mut out[at..at + 4];
            let mut all_inside = true;
            for (lane, o) in quad.iter_mut().enumerate() {
                let (x, y) = (ix[lane] as u32 as usize, iy[lane] as u32 as usize);
                all_inside &= x < w && y < h;
                *o = y.wrapping_mul(w).wrapping_add(x);
            }
            if !all_inside {
                scalar_nearest(&xs[at..at + 4], &ys[at..at + 4], (w, h), border, quad);
            }
        }
        let tail = 4 * (n / 4);
        scalar_nearest(
            &xs[tail..n],
            &ys[tail..n],
            (w, h),
            border,
            &mut out[tail..n],
        );
    }

    /// `floor(v + 0.5)` of four positions as i32 (round half up; out of range: i32::MIN).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn rounded_lanes(v: &[f64]) -> __m128i {
        // SAFETY: `v[..4]` holds the four lanes read
        let v = unsafe { _mm256_loadu_pd(v[..4].as_ptr()) };
        let v = _mm256_add_pd(v, _mm256_set1_pd(0.5));
        _mm256_cvttpd_epi32(_mm256_floor_pd(v))
    }

    /// [`rounded_lanes`] of eight positions.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn rounded8(v: &[f64]) -> __m256i {
        _mm256_set_m128i(rounded_lanes(&v[4..]), rounded_lanes(v))
    }

    /// [`rounded_lanes`] as an array.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn rounded(v: &[f64]) -> [i32; 4] {
        let mut ints = [0i32; 4];
        // SAFETY: the array holds four lanes
        unsafe { _mm_storeu_si128(ints.as_mut_ptr().cast(), rounded_lanes(v)) };
        ints
    }

    /// See [`super::label_row`]: octets whose eight sources all lie inside are gathered at once,
    /// the others (and the row's tail) take the scalar way.
    #[target_feature(enable = "avx2")]
    pub fn label_row(
        (xs, ys): (&[f64], &[f64]),
        (w, h): (usize, usize),
        border: Border,
        label: &NearestLabel,
        (ids, pads): (&mut [u16], &mut [bool]),
    ) -> bool {
        let n = ids.len().min(pads.len()).min(xs.len()).min(ys.len());
        let octets = LabelOctets::new(label, (w, h));
        let (mut outside, mut sources) = (false, [0usize; 8]);
        for start in (0..n).step_by(8) {
            let end = (start + 8).min(n);
            let (ids, pads) = (&mut ids[start..end], &mut pads[start..end]);
            let pos = (&xs[start..end], &ys[start..end]);
            let octet = match octets {
                Some(o) if end - start == 8 => o.row(label, pos, (&mut *ids, &mut *pads)),
                _ => false,
            };
            if octet {
                continue;
            }
            let sources = &mut sources[..end - start];
            scalar_nearest(pos.0, pos.1, (w, h), border, sources);
            outside |= label.fill(sources, ids, pads);
        }
        outside
    }

    /// Eight label pixels at once, ids and padding flags each fetched by one gather, for labels
    /// whose pixel offsets fit i32.
    #[derive(Clone, Copy)]
    pub(super) struct LabelOctets {
        dims: (i32, i32),
        /// The highest source offset whose four-byte gathers stay inside the ids (two ids read)
        /// and the padding mask (four flags read).
        max_at: i32,
    }

    impl LabelOctets {
        pub(super) fn new(label: &NearestLabel, (w, h): (usize, usize)) -> Option<Self> {
            let len = i32::try_from(label.ids.len()).ok()?;
            let spare = if label.padding.is_some() { 4 } else { 2 };
            let fits = label.padding.is_none_or(|m| m.len() == label.ids.len());
            Some(Self {
                dims: (i32::try_from(w).ok()?, i32::try_from(h).ok()?),
                max_at: len.checked_sub(spare).filter(|_| fits)?,
            })
        }

        /// Writes eight pixels; false (nothing written) when a source lies off the label or a
        /// gather would read past it.
        #[inline]
        #[target_feature(enable = "avx2")]
        pub(super) fn row(
            self,
            label: &NearestLabel,
            (xs, ys): (&[f64], &[f64]),
            (ids, pads): (&mut [u16], &mut [bool]),
        ) -> bool {
            let (ix, iy) = (rounded8(xs), rounded8(ys));
            let at = _mm256_add_epi32(_mm256_mullo_epi32(iy, _mm256_set1_epi32(self.dims.0)), ix);
            let ok = _mm256_and_si256(
                _mm256_and_si256(below(ix, self.dims.0), below(iy, self.dims.1)),
                _mm256_cmpgt_epi32(_mm256_set1_epi32(self.max_at + 1), at),
            );
            if _mm256_movemask_epi8(ok) != -1 {
                return false;
            }
            // SAFETY: every offset is at most max_at, so each four-byte read ends inside the ids
            // (two ids) and the mask (four flags), checked above and in `new`
            let gathered = unsafe { _mm256_i32gather_epi32::<2>(label.ids.as_ptr().cast(), at) };
            let words = low_words(_mm256_and_si256(gathered, _mm256_set1_epi32(0xffff)));
            // SAFETY: `ids` holds the eight words written
            unsafe { _mm_storeu_si128(ids[..8].as_mut_ptr().cast(), words) };
            match label.padding {
                None => pads[..8].fill(false),
                Some(mask) => {
                    // SAFETY: as above
                    let flags = unsafe { _mm256_i32gather_epi32::<1>(mask.as_ptr().cast(), at) };
                    let flags = low_words(_mm256_and_si256(flags, _mm256_set1_epi32(0xff)));
                    let mut bytes = [0u8; 16];
                    // SAFETY: `bytes` holds the sixteen bytes written
                    unsafe {
                        _mm_storeu_si128(bytes.as_mut_ptr().cast(), _mm_packus_epi16(flags, flags))
                    };
                    for (pad, &flag) in pads[..8].iter_mut().zip(&bytes) {
                        *pad = flag != 0;
                    }
                }
            }
            true
        }
    }

    /// The eight lanes (each in 0..=65535) as eight u16 in the low 128 bits, in order.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn low_words(lanes: __m256i) -> __m128i {
        // packs within each 128-bit half: [0..4, 0..4 | 4..8, 4..8]; then the halves' first
        // 64 bits side by side
        let packed = _mm256_packus_epi32(lanes, lanes);
        _mm256_castsi256_si128(_mm256_permute4x64_epi64::<0b1000>(packed))
    }
}

#[cfg(test)]
mod tests {
    use super::super::sampling::{bilinear_row, bilinear_tap, nearest_row};
    use super::super::warp::{affine, invert, Mapping};
    use super::*;

    /// Source positions of a warp that reaches past every edge, then a row of far and odd ones.
    fn position_rows(w: usize, h: usize, turn: f64) -> Vec<(Vec<f64>, Vec<f64>)> {
        let m = affine(w, h, turn, (1.3, 0.7), 5.0, (2.5, -1.5));
        let map = Mapping::Affine(invert(&m).expect("invertible"));
        let mut rows = Vec::new();
        super::super::warp::for_each_row(&map, (w + 3, h + 2), |_, xs, ys| {
            rows.push((xs.to_vec(), ys.to_vec()))
        });
        let (wf, hf) = (w as f64, h as f64);
        #[rustfmt::skip]
        let odd = [-1e12, -2.5, -1.0, -0.51, -0.5, 0.0, 0.49, 0.5, wf - 1.5, wf - 1.0, wf - 0.5, hf - 0.5, 1e12, 3e9];
        let xs: Vec<f64> = odd.iter().flat_map(|&x| [x; 14]).collect();
        let ys: Vec<f64> = (0..odd.len()).flat_map(|_| odd).collect();
        rows.push((xs, ys));
        rows
    }

    type Row = unsafe fn(&[u8], (usize, usize, usize), (&[f64], &[f64]), Border, &[f32], &mut [u8]);

    /// The SIMD bilinear rows of a band count that this CPU runs: SSE2, and AVX2 if it has it.
    fn simd_rows(bands: usize) -> Vec<(&'static str, Row)> {
        let mut rows: Vec<(&str, Row)> = match bands {
            3 => vec![
                ("SSE2", sse2::bilinear_row::<3>),
                ("AVX2", avx2::bilinear_row::<3>),
            ],
            _ => vec![
                ("SSE2", sse2::bilinear_row::<4>),
                ("AVX2", avx2::bilinear_row::<4>),
            ],
        };
        rows.retain(|(name, _)| *name != "AVX2" || is_x86_feature_detected!("avx2"));
        rows
    }

    #[test]
    fn sse2_and_avx2_bilinear_rows_give_the_scalar_bytes() {
        for bands in [3usize, 4] {
            let (w, h) = (23usize, 17usize);
            let src: Vec<u8> = (0..w * h * bands).map(|i| (i * 7919 % 251) as u8).collect();
            let fill = vec![37.0f32; bands];
            for (k, border) in [Border::Constant, Border::Reflect, Border::Edge]
                .into_iter()
                .enumerate()
            {
                for (xs, ys) in position_rows(w, h, 17.0 + 40.0 * k as f64) {
                    let mut want = vec![0u8; xs.len() * bands];
                    bilinear_row(&src, (w, h, bands), (&xs, &ys), border, &fill, &mut want);
                    for (name, row) in simd_rows(bands) {
                        let mut got = vec![0u8; want.len()];
                        // SAFETY: `simd_rows` offers only rows the CPU runs
                        unsafe { row(&src, (w, h, bands), (&xs, &ys), border, &fill, &mut got) };
                        assert_eq!(got, want, "{name}, {bands} bands, {border:?}");
                    }
                }
            }
        }
    }

    /// Runs the eight-pixel AVX2 step over every octet of the rows: it must take exactly those
    /// whose pixels all have their taps inside and their gathers inside the source, and give the
    /// scalar row's bytes for them. Returns how many it took.
    fn octets_against_scalar<const B: usize>(
        w: usize,
        h: usize,
        rows: &[(Vec<f64>, Vec<f64>)],
    ) -> usize {
        let src: Vec<u8> = (0..w * h * B).map(|i| (i * 7919 % 251) as u8).collect();
        let octets = avx2::Octets::<B>::new(src.len(), (w, h)).expect("a small image");
        let mut taken = 0;
        for (xs, ys) in rows {
            let mut want = vec![0u8; xs.len() * B];
            bilinear_row(
                &src,
                (w, h, B),
                (xs, ys),
                Border::Reflect,
                &[9.0; B],
                &mut want,
            );
            for i in (0..xs.len() / 8).map(|k| 8 * k) {
                let gathers_fit = |(ix, iy): (i64, i64)| {
                    (iy as usize * w + ix as usize) * B + w * B + B + 4 <= src.len()
                };
                let all_fit = (i..i + 8).all(|j| {
                    let (taps, _, inside) = bilinear_tap(xs[j], ys[j], (w, h));
                    inside && gathers_fit(taps)
                });
                let mut got = [0u8; 32];
                // SAFETY: the caller checked that the CPU has AVX2
                let took = unsafe { octets.row(&src, (&xs[i..], &ys[i..]), &mut got) };
                assert_eq!(
                    took, all_fit,
                    "{B} bands: octet at {i} taken or declined wrongly"
                );
                if took {
                    let want = &want[i * B..(i + 8) * B];
                    assert_eq!(&got[..8 * B], want, "{B} bands, octet at {i}");
                    taken += 1;
                }
            }
        }
        taken
    }

    #[test]
    fn avx2_octets_give_the_scalar_bytes_and_decline_only_at_edges() {
        if !is_x86_feature_detected!("avx2") {
            return; // the octets run only on AVX2 CPUs
        }
        let (w, h) = (64usize, 48usize);
        let mut rows = position_rows(w, h, 7.0);
        // the last pixel with all four taps inside: a 3-band gather there would read one byte past
        let corner = (w as f64 - 1.5, h as f64 - 1.5);
        rows.push((vec![corner.0; 16], vec![corner.1; 16]));
        assert!(octets_against_scalar::<3>(w, h, &rows) > 100);
        assert!(octets_against_scalar::<4>(w, h, &rows) > 100);
    }

    /// The label row of the scalar path: sources, then fill.
    fn scalar_label_row(
        label: &NearestLabel,
        (xs, ys): (&[f64], &[f64]),
        dims: (usize, usize),
        border: Border,
    ) -> (Vec<u16>, Vec<bool>, bool) {
        let mut sources = vec![0usize; xs.len()];
        nearest_row(xs, ys, dims, border, &mut sources);
        let (mut ids, mut pads) = (vec![0u16; xs.len()], vec![false; xs.len()]);
        let outside = label.fill(&sources, &mut ids, &mut pads);
        (ids, pads, outside)
    }

    #[test]
    fn avx2_label_rows_give_the_scalar_labels_and_octets_decline_only_at_edges() {
        if !is_x86_feature_detected!("avx2") {
            return; // the scalar row is the one used on this CPU
        }
        let (w, h) = (23usize, 17usize);
        let ids: Vec<u16> = (0..w * h).map(|i| (i * 7919 % 65521) as u16).collect();
        let mask: Vec<bool> = (0..w * h).map(|i| i % 3 == 0 || i % 7 == 0).collect();
        let mut rows = position_rows(w, h, 33.0);
        // the last pixels, where a gather would read past the ids or the mask
        for back in 1..=5 {
            rows.push((vec![(w - back) as f64; 8], vec![h as f64 - 1.0; 8]));
        }
        for padding in [None, Some(&mask[..])] {
            let label = NearestLabel {
                ids: &ids,
                padding,
                ignore_index: 255,
            };
            let octets = avx2::LabelOctets::new(&label, (w, h)).expect("a small label");
            let spare = if padding.is_some() { 4 } else { 2 };
            let mut taken = 0;
            for border in [Border::Constant, Border::Reflect, Border::Edge] {
                for (xs, ys) in &rows {
                    let want = scalar_label_row(&label, (xs, ys), (w, h), border);
                    let (mut got_ids, mut got_pads) = (vec![1u16; xs.len()], vec![true; xs.len()]);
                    let out = (&mut got_ids[..], &mut got_pads[..]);
                    let outside = label_row((xs, ys), (w, h), border, &label, out);
                    assert_eq!(
                        outside,
                        Some(want.2),
                        "{border:?}, mask {}",
                        padding.is_some()
                    );
                    assert_eq!((got_ids, got_pads), (want.0, want.1), "{border:?}");
                    for i in (0..xs.len() / 8).map(|k| 8 * k) {
                        let fits = (i..i + 8).all(|j| {
                            let (x, y) = ((xs[j] + 0.5).floor(), (ys[j] + 0.5).floor());
                            let inside =
                                (0.0..w as f64).contains(&x) && (0.0..h as f64).contains(&y);
                            inside && y as usize * w + x as usize + spare <= ids.len()
                        });
                        let (mut ids8, mut pads8) = ([0u16; 8], [false; 8]);
                        let pos = (&xs[i..i + 8], &ys[i..i + 8]);
                        // SAFETY: the CPU has AVX2, checked above
                        let took = unsafe { octets.row(&label, pos, (&mut ids8, &mut pads8)) };
                        assert_eq!(took, fits, "octet at {i} taken or declined wrongly");
                        taken += took as usize;
                    }
                }
            }
            assert!(taken > 30, "only {taken} octets taken");
        }
    }

    #[test]
    fn avx2_nearest_rows_give_the_scalar_sources() {
        if !is_x86_feature_detected!("avx2") {
            return; // nothing to compare on this CPU: the scalar row is the one used
        }
        let (w, h) = (23usize, 17usize);
        for border in [Border::Constant, Border::Reflect, Border::Edge] {
            for (xs, ys) in position_rows(w, h, 33.0) {
                let mut want = vec![0usize; xs.len()];
                nearest_row(&xs, &ys, (w, h), border, &mut want);
                let mut got = vec![1usize; xs.len()];
                assert!(super::nearest_row(&xs, &ys, (w, h), border, &mut got));
                assert_eq!(got, want, "{border:?}");
            }
        }
    }
}
