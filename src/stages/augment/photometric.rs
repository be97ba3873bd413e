//! Photometric augmentation, image only, band by band, for u8, u16 and f32 (f32 taken as 0..1).
//! Values are computed in f32 and rounded and saturated back to the image's dtype.
use crate::sample::{Image, PixelValue, Pixels};

/// Drawn values of one copy; `None` leaves that operation out.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Photometric {
    /// Added, as a fraction of the full range.
    pub brightness: Option<f64>,
    /// Factor around each band's mean.
    pub contrast: Option<f64>,
    /// Exponent on values scaled to 0..1.
    pub gamma: Option<f64>,
    /// Hue turn as a fraction of a full turn (3-band images).
    pub hue: Option<f64>,
    /// Saturation factor around the luma (3-band images).
    pub saturation: Option<f64>,
    /// Standard deviation of gaussian noise, as a fraction of the full range.
    pub noise: Option<f64>,
    /// Gaussian blur sigma in pixels.
    pub blur: Option<f64>,
}

/// Applies the drawn operations in a fixed order; `noise` draws its values from `normal`.
pub fn apply(img: &mut Image, p: &Photometric, normal: &mut dyn FnMut() -> f64) {
    if *p == Photometric::default() {
        return;
    }
    img.pixels = match std::mem::replace(&mut img.pixels, Pixels::U8(Vec::new())) {
        Pixels::U8(v) => Pixels::U8(run(v, img, p, normal)),
        Pixels::U16(v) => Pixels::U16(run(v, img, p, normal)),
        Pixels::F32(v) => Pixels::F32(run(v, img, p, normal)),
    };
}

fn run<T: PixelValue>(
    v: Vec<T>,
    img: &Image,
    p: &Photometric,
    normal: &mut dyn FnMut() -> f64,
) -> Vec<T> {
    let (w, h, bands) = (img.width as usize, img.height as usize, img.bands);
    let range = T::RANGE;
    let add = p.brightness.map_or(0.0, |b| b as f32 * range);
    // contrast works around each band's mean after the brightness shift
    let means: Vec<f32> = match p.contrast {
        Some(_) => {
            let mut sums = vec![0f64; bands];
            // per-band sums in f32 within a row, f64 across rows: fast, and the mean is only a pivot
            for row in v.chunks(w.max(1) * bands) {
                let mut row_sums = vec![0f32; bands];
                for px in row.chunks_exact(bands) {
                    row_sums
                        .iter_mut()
                        .zip(px)
                        .for_each(|(s, x)| *s += x.to_f32());
                }
                sums.iter_mut()
                    .zip(&row_sums)
                    .for_each(|(s, r)| *s += *r as f64);
            }
            sums.iter()
                .map(|s| (s / (w * h).max(1) as f64) as f32 + add)
                .collect()
        }
        None => vec![0.0; bands],
    };
    let c = p.contrast.map_or(1.0, |c| c as f32);
    let g = p.gamma.map(|g| g as f32);
    let pointwise = |v: f32, band: usize| {
        let mean = means[band];
        let y = (v + add - mean) * c + mean;
        match g {
            Some(g) => range * (y.max(0.0) / range).powf(g),
            None => y,
        }
    };
    let only_pointwise =
        p.hue.is_none() && p.saturation.is_none() && p.noise.is_none() && p.blur.is_none();
    if range == 255.0 && only_pointwise {
        // u8: one table per band holds every possible result (256 entries: no bounds to check)
        let tables: Vec<[T; 256]> = (0..bands)
            .map(|b| std::array::from_fn(|v| T::from_f32(pointwise(v as f32, b))))
            .collect();
        let mut v = v;
        let same =
            |a: &[T; 256], b: &[T; 256]| a.iter().zip(b).all(|(x, y)| x.index() == y.index());
        if tables.windows(2).all(|pair| same(&pair[0], &pair[1])) {
            // the same table for every band (no contrast): one flat pass, no per-pixel chunks;
            // a table that only adds a constant (brightness) is a saturating add, which vectorizes
            if let Some(table) = tables.first() {
                let bytes = (&mut v as &mut dyn std::any::Any).downcast_mut::<Vec<u8>>();
                match (bytes, constant_shift(table)) {
                    (Some(bytes), Some(shift)) => add_saturating(bytes, shift),
                    _ => v.iter_mut().for_each(|x| *x = table[x.index() & 255]),
                }
            }
            return v;
        }
        for px in v.chunks_exact_mut(bands) {
            for (x, table) in px.iter_mut().zip(&tables) {
                *x = table[x.index() & 255];
            }
        }
        return v;
    }
    // the pointwise operations in one pass
    let mut x: Vec<f32> = Vec::with_capacity(v.len());
    for px in v.chunks_exact(bands) {
        for (b, value) in px.iter().enumerate() {
            x.push(pointwise(value.to_f32(), b));
        }
    }
    if bands == 3 && (p.hue.is_some() || p.saturation.is_some()) {
        colour(&mut x, p.hue.unwrap_or(0.0), p.saturation.unwrap_or(1.0));
    }
    if let Some(s) = p.noise {
        let sd = (s * range as f64) as f32;
        x.iter_mut().for_each(|v| *v += normal() as f32 * sd);
    }
    if let Some(sigma) = p.blur {
        x = gaussian_blur(&x, (w, h, bands), sigma);
    }
    // integer types saturate in from_f32; f32 images keep their own range
    x.into_iter().map(T::from_f32).collect()
}

/// The constant `k` when `table[v]` is `v + k` saturated to 0..=255 for every v.
fn constant_shift<T: PixelValue>(table: &[T; 256]) -> Option<i32> {
    let shift = table[128].index() as i32 - 128;
    let matches = |(v, x): (usize, &T)| x.index() as i32 == (v as i32 + shift).clamp(0, 255);
    table.iter().enumerate().all(matches).then_some(shift)
}

/// Adds `shift` (-255..=255) to every byte, saturating.
fn add_saturating(bytes: &mut [u8], shift: i32) {
    let step = shift.unsigned_abs().min(255) as u8;
    if shift >= 0 {
        bytes.iter_mut().for_each(|x| *x = x.saturating_add(step));
    } else {
        bytes.iter_mut().for_each(|x| *x = x.saturating_sub(step));
    }
}

/// Hue turn and saturation in YIQ: the chroma plane (I, Q) is turned by `hue` of a full turn and
/// scaled by `saturation`; luma (Y) stays.
fn colour(x: &mut [f32], hue: f64, saturation: f64) {
    let (sin, cos) = (hue * std::f64::consts::TAU).sin_cos();
    let (sin, cos, s) = (sin as f32, cos as f32, saturation as f32);
    for px in x.chunks_exact_mut(3) {
        let (r, g, b) = (px[0], px[1], px[2]);
        let y = 0.299 * r + 0.587 * g + 0.114 * b;
        let i = 0.596 * r - 0.274 * g - 0.322 * b;
        let q = 0.211 * r - 0.523 * g + 0.312 * b;
        let (i, q) = (s * (cos * i - sin * q), s * (sin * i + cos * q));
        px[0] = y + 0.956 * i + 0.621 * q;
        px[1] = y - 0.272 * i - 0.647 * q;
        px[2] = y - 1.106 * i + 1.703 * q;
    }
}

/// Separable gaussian blur of an interleaved (w, h, bands) f32 buffer, radius ceil(3 sigma),
/// edges reflected (OpenCV's default border).
pub fn gaussian_blur(x: &[f32], (w, h, bands): (usize, usize, usize), sigma: f64) -> Vec<f32> {
    if sigma <= 0.0 || w == 0 || h == 0 {
        return x.to_vec();
    }
    let r = (3.0 * sigma).ceil() as i64;
    let kernel: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let sum: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / sum).collect();
    let reflect = |i: i64, n: usize| super::sampling::reflect_101(i, n as i64);
    // along x: the source columns of each output column, reflected, computed once
    let cols: Vec<Vec<usize>> = (0..w)
        .map(|xx| (-r..=r).map(|k| reflect(xx as i64 + k, w)).collect())
        .collect();
    let stride = w * bands;
    let mut tmp = vec![0f32; x.len()];
    for y in 0..h {
        let row = &x[y * stride..(y + 1) * stride];
        let out_row = &mut tmp[y * stride..(y + 1) * stride];
        for (xx, taps) in cols.iter().enumerate() {
            for b in 0..bands {
                out_row[xx * bands + b] = taps
                    .iter()
                    .zip(&kernel)
                    .map(|(&sx, wk)| wk * row[sx * bands + b])
                    .sum();
            }
        }
    }
    // along y: whole rows weighted and added, so the inner loop runs over contiguous memory
    let mut out = vec![0f32; x.len()];
    for y in 0..h {
        let out_row = &mut out[y * stride..(y + 1) * stride];
        for (k, wk) in kernel.iter().enumerate() {
            let sy = reflect(y as i64 + k as i64 - r, h);
            let src = &tmp[sy * stride..(sy + 1) * stride];
            out_row.iter_mut().zip(src).for_each(|(o, s)| *o += wk * s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(pixels: Pixels, bands: usize) -> Image {
        let n = pixels.len() / bands;
        Image {
            width: n as u32,
            height: 1,
            bands,
            pixels,
        }
    }

    #[test]
    fn brightness_saturates_and_keeps_dtype() {
        let mut i = img(Pixels::U8(vec![0, 100, 250]), 1);
        apply(
            &mut i,
            &Photometric {
                brightness: Some(0.1),
                ..Default::default()
            },
            &mut || 0.0,
        );
        assert_eq!(i.pixels, Pixels::U8(vec![26, 126, 255]));
        let mut i = img(Pixels::U16(vec![0, 65000]), 1);
        apply(
            &mut i,
            &Photometric {
                gamma: Some(1.0),
                contrast: Some(1.0),
                ..Default::default()
            },
            &mut || 0.0,
        );
        assert_eq!(i.pixels, Pixels::U16(vec![0, 65000]));
    }

    #[test]
    fn u8_tables_shared_or_per_band_give_the_pointwise_values() {
        // brightness alone: one table for every band, a saturating add (up or down); gamma: one
        // shared table that is no shift; with contrast: one table per band (own means)
        let pixels: Vec<u8> = (0..3 * 300).map(|i| (i * 37 % 256) as u8).collect();
        let drawn = |brightness, contrast, gamma| Photometric {
            brightness,
            contrast,
            gamma,
            ..Default::default()
        };
        for p in [
            drawn(Some(0.07), None, None),
            drawn(Some(-0.23), None, None),
            drawn(Some(0.3), None, Some(0.8)),
            drawn(Some(0.07), Some(1.4), None),
        ] {
            let mut tabled = img(Pixels::U8(pixels.clone()), 3);
            apply(&mut tabled, &p, &mut || 0.0);
            // the same operations through the f32 path (noise of zero turns the tables off)
            let mut direct = img(Pixels::U8(pixels.clone()), 3);
            let with_noise = Photometric {
                noise: Some(0.0),
                ..p.clone()
            };
            apply(&mut direct, &with_noise, &mut || 0.0);
            assert_eq!(tabled.pixels, direct.pixels, "{p:?}");
            assert_ne!(tabled.pixels, Pixels::U8(pixels.clone()));
        }
    }

    #[test]
    fn a_table_is_a_shift_only_when_every_entry_is() {
        let shifted: [u8; 256] = std::array::from_fn(|v| (v as i32 + 40).min(255) as u8);
        assert_eq!(constant_shift(&shifted), Some(40));
        let down: [u8; 256] = std::array::from_fn(|v| (v as i32 - 7).max(0) as u8);
        assert_eq!(constant_shift(&down), Some(-7));
        let mut bent = shifted;
        bent[3] += 1;
        assert_eq!(constant_shift(&bent), None);
        let mut bytes = vec![0u8, 7, 100, 250];
        add_saturating(&mut bytes, -7);
        assert_eq!(bytes, vec![0, 0, 93, 243]);
        add_saturating(&mut bytes, 40);
        assert_eq!(bytes, vec![40, 40, 133, 255]);
    }

    #[test]
    fn zero_hue_and_unit_saturation_leave_colours() {
        let mut i = img(Pixels::U8(vec![200, 30, 90, 10, 240, 60]), 3);
        let before = i.pixels.clone();
        apply(
            &mut i,
            &Photometric {
                hue: Some(0.0),
                saturation: Some(1.0),
                ..Default::default()
            },
            &mut || 0.0,
        );
        let (Pixels::U8(a), Pixels::U8(b)) = (&i.pixels, &before) else {
            panic!()
        };
        assert!(
            a.iter()
                .zip(b)
                .all(|(x, y)| (*x as i32 - *y as i32).abs() <= 1),
            "{a:?} {b:?}"
        );
    }

    #[test]
    fn blur_keeps_a_constant_and_its_sum() {
        let x = vec![5.0f32; 30];
        assert!(gaussian_blur(&x, (6, 5, 1), 1.5)
            .iter()
            .all(|v| (v - 5.0).abs() < 1e-5));
    }
}
