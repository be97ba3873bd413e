//! Exact geometric operations shared by stages, generic over the element type so the image, the
//! label and the padding mask go through the very same code (and so the same geometry).
//!
//! `resize` and `pad` first plan what they do to a sample's size as `GeometryStep`s, then run the
//! plan: the same plan is what `segprep apply` records and `segprep restore` undoes.
use serde::{Deserialize, Serialize};

use crate::sample::{Image, LabelPart, Pixels};

/// One change of a sample's size. Sizes are `[width, height]`, offsets `[left, top]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum GeometryStep {
    /// Resampled from `from` to `to` (image by the stage's filter, labels nearest).
    Resize { from: [u32; 2], to: [u32; 2] },
    /// `from` placed at `at` on a `to` canvas.
    Pad {
        from: [u32; 2],
        to: [u32; 2],
        at: [u32; 2],
    },
    /// The `to`-sized window at `at` cut out of `from`.
    Crop {
        from: [u32; 2],
        to: [u32; 2],
        at: [u32; 2],
    },
}

impl GeometryStep {
    pub fn from_size(&self) -> [u32; 2] {
        match *self {
            GeometryStep::Resize { from, .. }
            | GeometryStep::Pad { from, .. }
            | GeometryStep::Crop { from, .. } => from,
        }
    }

    pub fn to_size(&self) -> [u32; 2] {
        match *self {
            GeometryStep::Resize { to, .. }
            | GeometryStep::Pad { to, .. }
            | GeometryStep::Crop { to, .. } => to,
        }
    }
}

/// Nearest-neighbour resampling of an interleaved (h, w, bands) buffer, sampling at pixel centres:
/// source x = floor((x + 0.5) * w / new_w), computed in integers so it is exact on every machine.
pub fn resize_nearest<T: Copy>(
    src: &[T],
    w: u32,
    h: u32,
    bands: usize,
    new_w: u32,
    new_h: u32,
) -> Vec<T> {
    // halving a one-band buffer (a label), the common downscale: the centres are the odd columns,
    // so no column table
    let halving = bands == 1 && w == 2 * new_w;
    let columns = if halving { 0 } else { new_w as u64 };
    let xs: Vec<usize> = (0..columns)
        .map(|x| (((2 * x + 1) * w as u64) / (2 * new_w as u64)).min(w as u64 - 1) as usize)
        .collect();
    let mut out = Vec::with_capacity(new_w as usize * new_h as usize * bands);
    for y in 0..new_h as u64 {
        let sy = (((2 * y + 1) * h as u64) / (2 * new_h as u64)).min(h as u64 - 1) as usize;
        let row = &src[sy * w as usize * bands..(sy + 1) * w as usize * bands];
        if halving {
            // a fixed stride the compiler turns into shuffles, not a gather through `xs`
            out.extend(row.as_chunks::<2>().0.iter().map(|pair| pair[1]));
        } else {
            with_const_bands!(bands, |b| pick(row, &xs, b, &mut out));
        }
    }
    out
}

/// Appends the pixels of `row` at columns `xs`, `bands` values each (a constant under
/// `with_const_bands!`, so a pixel is a move, not a copy call).
#[inline(always)]
fn pick<T: Copy>(row: &[T], xs: &[usize], bands: usize, out: &mut Vec<T>) {
    if bands == 1 {
        // an iterator of known length: room is made once for the row, not checked per value
        out.extend(xs.iter().map(|&sx| row[sx]));
        return;
    }
    for &sx in xs {
        out.extend_from_slice(&row[sx * bands..(sx + 1) * bands]);
    }
}

/// The window (left, top, width, height) cut out of a (w, h, bands) buffer.
pub fn crop<T: Copy>(src: &[T], w: u32, bands: usize, window: (u32, u32, u32, u32)) -> Vec<T> {
    let (left, top, cw, ch) = window;
    let stride = w as usize * bands;
    let mut out = Vec::with_capacity(cw as usize * ch as usize * bands);
    for y in top..top + ch {
        let start = y as usize * stride + left as usize * bands;
        out.extend_from_slice(&src[start..start + cw as usize * bands]);
    }
    out
}

/// Places a (w, h, bands) buffer at (left, top) on a (new_w, new_h) canvas filled with `fill`
/// (one value per band).
pub fn place<T: Copy>(
    src: &[T],
    w: u32,
    h: u32,
    bands: usize,
    canvas: (u32, u32),
    at: (u32, u32),
    fill: &[T],
) -> Vec<T> {
    let (new_w, new_h) = canvas;
    let mut out: Vec<T> = Vec::with_capacity(new_w as usize * new_h as usize * bands);
    // one row of fill, then whole slices per row: no per-pixel copy calls
    let fill_row: Vec<T> = fill.repeat(new_w as usize);
    let (stride, left) = (w as usize * bands, at.0 as usize * bands);
    let rows = at.1 as usize..at.1 as usize + h as usize;
    for y in 0..new_h as usize {
        if rows.contains(&y) {
            let from = (y - rows.start) * stride;
            out.extend_from_slice(&fill_row[..left]);
            out.extend_from_slice(&src[from..from + stride]);
            out.extend_from_slice(&fill_row[left + stride..]);
        } else {
            out.extend_from_slice(&fill_row);
        }
    }
    out
}

/// Resizes a label and its padding mask nearest (never mixing ids) to `nw`×`nh`.
pub fn resize_label(l: &mut LabelPart, nw: u32, nh: u32) {
    let (w, h) = (l.label.width, l.label.height);
    if (w, h) == (nw, nh) {
        return;
    }
    l.label.ids = resize_nearest(&l.label.ids, w, h, 1, nw, nh);
    (l.label.width, l.label.height) = (nw, nh);
    if let Some(mask) = l.padding.as_mut() {
        *mask = resize_nearest(mask, w, h, 1, nw, nh);
    }
}

/// Cuts the window (left, top, width, height) out of an image.
pub fn crop_image(img: &mut Image, window: (u32, u32, u32, u32)) {
    let (w, bands) = (img.width, img.bands);
    img.pixels = match &img.pixels {
        Pixels::U8(p) => Pixels::U8(crop(p, w, bands, window)),
        Pixels::U16(p) => Pixels::U16(crop(p, w, bands, window)),
        Pixels::F32(p) => Pixels::F32(crop(p, w, bands, window)),
    };
    (img.width, img.height) = (window.2, window.3);
}

/// Cuts the same window out of a label and its padding mask.
pub fn crop_label(l: &mut LabelPart, window: (u32, u32, u32, u32)) {
    let w = l.label.width;
    l.label.ids = crop(&l.label.ids, w, 1, window);
    if let Some(mask) = l.padding.as_mut() {
        *mask = crop(mask, w, 1, window);
    }
    (l.label.width, l.label.height) = (window.2, window.3);
}

/// Places an image on a `canvas` at `at` (left, top), `fill` (one value per band) around it.
pub fn pad_image(img: &mut Image, canvas: (u32, u32), at: (u32, u32), fill: &[f64]) {
    let (w, h, bands) = (img.width, img.height, img.bands);
    if (w, h) == canvas {
        return;
    }
    // the fill was checked to fit the dtype, so these casts are exact
    img.pixels = match &img.pixels {
        Pixels::U8(p) => {
            let fill: Vec<u8> = fill.iter().map(|&v| v as u8).collect();
            Pixels::U8(place(p, w, h, bands, canvas, at, &fill))
        }
        Pixels::U16(p) => {
            let fill: Vec<u16> = fill.iter().map(|&v| v as u16).collect();
            Pixels::U16(place(p, w, h, bands, canvas, at, &fill))
        }
        Pixels::F32(p) => {
            let fill: Vec<f32> = fill.iter().map(|&v| v as f32).collect();
            Pixels::F32(place(p, w, h, bands, canvas, at, &fill))
        }
    };
    (img.width, img.height) = canvas;
}

/// Places a label on the same canvas, `label_fill` around it, and marks the new pixels as
/// padding in the mask (created here if the sample had none).
pub fn pad_label(l: &mut LabelPart, canvas: (u32, u32), at: (u32, u32), label_fill: u16) {
    let (w, h) = (l.label.width, l.label.height);
    if (w, h) == canvas {
        return;
    }
    l.label.ids = place(&l.label.ids, w, h, 1, canvas, at, &[label_fill]);
    let mask = l
        .padding
        .take()
        .unwrap_or_else(|| vec![false; w as usize * h as usize]);
    *l.padding = Some(place(&mask, w, h, 1, canvas, at, &[true]));
    (l.label.width, l.label.height) = canvas;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_integer_factor_picks_every_other_pixel_centre() {
        let src: Vec<u16> = (0..16).collect();
        // 4x4 -> 2x2 samples the centres (1,1), (3,1), (1,3), (3,3)
        assert_eq!(resize_nearest(&src, 4, 4, 1, 2, 2), vec![5, 7, 13, 15]);
    }

    /// The halving shortcut picks what the general path picks (odd columns and rows of the
    /// odd centres), on odd and even heights.
    #[test]
    fn nearest_halving_equals_the_general_columns() {
        for (w, h) in [(8u32, 6u32), (10, 7), (2, 1)] {
            let src: Vec<u16> = (0..w * h).map(|v| (v * 7919 % 65521) as u16).collect();
            let (nw, nh) = (w / 2, h / 2 + 1);
            let general = |x: u32, y: u32| {
                let sx = ((2 * x + 1) * w / (2 * nw)).min(w - 1);
                let sy = ((2 * y + 1) * h / (2 * nh)).min(h - 1);
                src[(sy * w + sx) as usize]
            };
            let want: Vec<u16> = (0..nh)
                .flat_map(|y| (0..nw).map(move |x| (x, y)))
                .map(|(x, y)| general(x, y))
                .collect();
            assert_eq!(resize_nearest(&src, w, h, 1, nw, nh), want, "{w}x{h}");
        }
    }

    #[test]
    fn nearest_upscale_repeats() {
        let src = [1u8, 2];
        assert_eq!(resize_nearest(&src, 2, 1, 1, 4, 1), vec![1, 1, 2, 2]);
    }

    #[test]
    fn nearest_keeps_bands_together() {
        let src = [1u8, 10, 2, 20];
        assert_eq!(resize_nearest(&src, 2, 1, 2, 1, 1), vec![2, 20]);
    }

    #[test]
    fn place_fills_around_the_source_with_every_band() {
        // 2x1 RGB at (1, 1) on a 4x3 canvas
        let out = place(&[1u8, 2, 3, 4, 5, 6], 2, 1, 3, (4, 3), (1, 1), &[7, 8, 9]);
        let f = [7u8, 8, 9];
        let mut want: Vec<u8> = f.repeat(4);
        want.extend_from_slice(&f);
        want.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
        want.extend_from_slice(&f);
        want.extend(f.repeat(4));
        assert_eq!(out, want);
        assert_eq!(place(&[5u16], 1, 1, 1, (1, 1), (0, 0), &[0]), [5]);
    }

    #[test]
    fn crop_and_place_are_inverse() {
        let src: Vec<u8> = (0..6).collect(); // 3x2
        let big = place(&src, 3, 2, 1, (5, 4), (1, 1), &[9]);
        assert_eq!(big.iter().filter(|&&v| v == 9).count(), 20 - 6);
        assert_eq!(crop(&big, 5, 1, (1, 1, 3, 2)), src);
    }
}
