//! SIMD rows of the warp for x86-64, each giving the very bytes of the scalar row in `warp`: the
//! same f32 products and sums in the same order, only several lanes at a time. AVX2 is used when
//! the CPU has it (checked at run time, once per row); SSE2, part of the x86-64 baseline, otherwise.
use super::warp::{bilinear_at_border, bilinear_tap, nearest_row as scalar_nearest, Border};
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
    fn floors_and_fractions(v: &[f64]) -> ([i32; 4], [f32; 4]) {
        // SAFETY: `v[..4]` holds the four lanes read
        let v = unsafe { _mm256_loadu_pd(v[..4].as_ptr()) };
        let floor = _mm256_floor_pd(v);
        let (mut ints, mut fractions) = ([0i32; 4], [0f32; 4]);
        // SAFETY: both arrays hold four lanes
        unsafe {
            _mm_storeu_si128(ints.as_mut_ptr().cast(), _mm256_cvttpd_epi32(floor));
            _mm_storeu_ps(
                fractions.as_mut_ptr(),
                _mm256_cvtpd_ps(_mm256_sub_pd(v, floor)),
            );
        }
        (ints, fractions)
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
        let stride = w * B;
        let (last_x, last_y) = ((w as u32).wrapping_sub(1), (h as u32).wrapping_sub(1));
        let pixels = out.len() / B;
        let quads = pixels.min(xs.len()).min(ys.len()) / 4;
        for q in 0..quads {
            let (ix, fx) = floors_and_fractions(&xs[4 * q..]);
            let (iy, fy) = floors_and_fractions(&ys[4 * q..]);
            for lane in 0..4 {
                let i = 4 * q + lane;
                let px = &mut out[i * B..(i + 1) * B];
                let inside = (ix[lane] as u32) < last_x && (iy[lane] as u32) < last_y;
                let at = match inside {
                    true => iy[lane] as usize * stride + ix[lane] as usize * B,
                    false => usize::MAX,
                };
                // the taps load 8 bytes from each row: the image's last pixels go the scalar way
                if at.saturating_add(stride + 8) > src.len() {
                    scalar_pixel::<B>(src, (w, h), (xs[i], ys[i]), border, fill, px);
                    continue;
                }
                let (f, g) = (fx[lane], fy[lane]);
                let weights = _mm256_set_m128(_mm_set1_ps(f), _mm_set1_ps(1.0 - f));
                let top = row_taps::<B>(src, at, weights);
                let bottom = row_taps::<B>(src, at + stride, weights);
                store_rounded(mix(top, bottom, g), px);
            }
        }
        for i in 4 * quads..pixels.min(xs.len()).min(ys.len()) {
            let px = &mut out[i * B..(i + 1) * B];
            scalar_pixel::<B>(src, (w, h), (xs[i], ys[i]), border, fill, px);
        }
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
    fn rounded(v: &[f64]) -> [i32; 4] {
        // SAFETY: `v[..4]` holds the four lanes read
        let v = unsafe { _mm256_loadu_pd(v[..4].as_ptr()) };
        let v = _mm256_add_pd(v, _mm256_set1_pd(0.5));
        let mut ints = [0i32; 4];
        // SAFETY: the array holds four lanes
        unsafe {
            _mm_storeu_si128(
                ints.as_mut_ptr().cast(),
                _mm256_cvttpd_epi32(_mm256_floor_pd(v)),
            )
        };
        ints
    }
}

#[cfg(test)]
mod tests {
    use super::super::warp::{affine, bilinear_row, invert, nearest_row, Mapping};
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
