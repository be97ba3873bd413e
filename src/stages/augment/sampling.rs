//! Sampling a source image at output positions: border rules, nearest and bilinear taps, and the
//! scalar rows that the warp uses and that `warp_simd`'s rows reproduce byte for byte. The bottom
//! of the augment stage: it imports nothing of its siblings.
use crate::sample::PixelValue;

/// What fills output pixels whose source falls outside the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Border {
    /// A constant (the image fill; the ignore index for labels).
    Constant,
    /// Mirror without repeating the edge pixel (OpenCV's BORDER_REFLECT_101: ...cb|abc|ba...).
    Reflect,
    /// Repeat the edge pixel.
    Edge,
}

/// An index into 0..n under the border rule; `None` means "outside, use the constant".
pub fn border_index(i: i64, n: i64, border: Border) -> Option<usize> {
    if (0..n).contains(&i) {
        return Some(i as usize);
    }
    match border {
        Border::Constant => None,
        Border::Edge => Some(i.clamp(0, n - 1) as usize),
        Border::Reflect => Some(reflect_101(i, n)),
    }
}

/// Mirrors an index into 0..n without repeating the edge (...cb|abc|ba...), any distance out.
pub fn reflect_101(i: i64, n: i64) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - m }) as usize
}

/// `v.floor() as i64` without a libm call (`f64::floor` is not inlined below SSE4.1).
#[inline]
pub fn floor_i64(v: f64) -> i64 {
    let t = v as i64;
    if (t as f64) > v {
        t.saturating_sub(1)
    } else {
        t
    }
}

/// Marks a source that falls outside under a constant border.
pub const OUTSIDE: usize = usize::MAX;

/// The source pixel of each position of a row, nearest (round half up, as OpenCV's
/// INTER_NEAREST), or `OUTSIDE`.
#[inline]
pub fn nearest_row(
    xs: &[f64],
    ys: &[f64],
    (w, h): (usize, usize),
    border: Border,
    out: &mut [usize],
) {
    for ((o, &sx), &sy) in out.iter_mut().zip(xs).zip(ys) {
        let (ix, iy) = (floor_i64(sx + 0.5), floor_i64(sy + 0.5));
        // one unsigned compare per axis covers both ends
        *o = if (ix as u64) < w as u64 && (iy as u64) < h as u64 {
            iy as usize * w + ix as usize
        } else {
            let ix = border_index(ix, w as i64, border);
            let iy = border_index(iy, h as i64, border);
            ix.zip(iy).map_or(OUTSIDE, |(ix, iy)| iy * w + ix)
        };
    }
}

/// The top-left tap of a bilinear sample at (sx, sy), the fractions toward the next, and whether
/// all four taps lie inside the image (one unsigned compare per axis covers both ends).
#[inline(always)]
pub fn bilinear_tap(sx: f64, sy: f64, (w, h): (usize, usize)) -> ((i64, i64), (f32, f32), bool) {
    let (ix, iy) = (floor_i64(sx), floor_i64(sy));
    let (fx, fy) = ((sx - ix as f64) as f32, (sy - iy as f64) as f32);
    let inside =
        (ix as u64) < (w as u64).wrapping_sub(1) && (iy as u64) < (h as u64).wrapping_sub(1);
    ((ix, iy), (fx, fy), inside)
}

/// Bilinear sampling of one output row; each of the four taps follows the border rule on its
/// own (as OpenCV does).
#[inline(always)]
pub fn bilinear_row<T: PixelValue>(
    src: &[T],
    (w, h, bands): (usize, usize, usize),
    (xs, ys): (&[f64], &[f64]),
    border: Border,
    fill: &[f32],
    out: &mut [T],
) {
    for ((px, &sx), &sy) in out.chunks_exact_mut(bands.max(1)).zip(xs).zip(ys) {
        let ((ix, iy), (fx, fy), inside) = bilinear_tap(sx, sy, (w, h));
        if inside {
            let at = (iy as usize * w + ix as usize) * bands;
            let (top, bottom) = (
                &src[at..at + 2 * bands],
                &src[at + w * bands..at + (w + 2) * bands],
            );
            for b in 0..bands {
                let t = top[b].to_f32() * (1.0 - fx) + top[bands + b].to_f32() * fx;
                let u = bottom[b].to_f32() * (1.0 - fx) + bottom[bands + b].to_f32() * fx;
                px[b] = T::from_f32(t * (1.0 - fy) + u * fy);
            }
        } else {
            bilinear_at_border(src, (w, h, bands), (ix, iy), (fx, fy), border, fill, px);
        }
    }
}

/// A bilinear pixel with a tap outside the image: the taps follow the border rule one by one.
pub fn bilinear_at_border<T: PixelValue>(
    src: &[T],
    (w, h, bands): (usize, usize, usize),
    (ix, iy): (i64, i64),
    (fx, fy): (f32, f32),
    border: Border,
    fill: &[f32],
    px: &mut [T],
) {
    let beyond = ix < -1 || iy < -1 || ix >= w as i64 || iy >= h as i64;
    if beyond && border == Border::Constant {
        // no tap inside: the fill itself (as OpenCV's borderValue), not a weighted sum of it
        px.iter_mut()
            .zip(fill)
            .for_each(|(o, &f)| *o = T::from_f32(f));
        return;
    }
    let mut acc = [0f32; 16];
    let mut wide = Vec::new();
    let acc: &mut [f32] = if bands <= acc.len() {
        &mut acc[..bands]
    } else {
        wide.resize(bands, 0f32);
        &mut wide
    };
    for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
        for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
            let weight = wx * wy;
            if weight == 0.0 {
                continue;
            }
            let tap = border_index(ix + dx, w as i64, border).zip(border_index(
                iy + dy,
                h as i64,
                border,
            ));
            match tap {
                Some((tx, ty)) => {
                    let at = (ty * w + tx) * bands;
                    for b in 0..bands {
                        acc[b] += weight * src[at + b].to_f32();
                    }
                }
                None => (0..bands).for_each(|b| acc[b] += weight * fill[b]),
            }
        }
    }
    for (o, &v) in px.iter_mut().zip(acc.iter()) {
        *o = T::from_f32(v);
    }
}

/// A label sampled nearest: its ids, its padding mask if any, and the ignore index that a pixel
/// from outside under a constant border gets.
#[derive(Debug, Clone, Copy)]
pub struct NearestLabel<'a> {
    pub ids: &'a [u16],
    pub padding: Option<&'a [bool]>,
    pub ignore_index: u16,
}

impl NearestLabel<'_> {
    /// Each output pixel from its source (`OUTSIDE`: the ignore index, marked as padding);
    /// true if a source was outside.
    #[inline]
    pub fn fill(&self, sources: &[usize], labels: &mut [u16], pads: &mut [bool]) -> bool {
        let mut any_outside = false;
        for ((label, pad), &i) in labels.iter_mut().zip(pads).zip(sources) {
            if i == OUTSIDE {
                (*label, *pad) = (self.ignore_index, true);
                any_outside = true;
            } else {
                (*label, *pad) = (self.ids[i], self.padding.is_some_and(|m| m[i]));
            }
        }
        any_outside
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_is_reflect_101() {
        let idx: Vec<usize> = (-3..6)
            .map(|i| border_index(i, 3, Border::Reflect).unwrap())
            .collect();
        assert_eq!(idx, [1, 2, 1, 0, 1, 2, 1, 0, 1]);
        assert_eq!(border_index(-1, 3, Border::Constant), None);
        assert_eq!(border_index(7, 3, Border::Edge), Some(2));
    }
}
