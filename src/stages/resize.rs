//! `resize`: to a size by `stretch`, `fit` (keep aspect, then pad) or `fill` (cover, then centre crop).
//!
//! Image: the chosen filter (fast_image_resize; `nearest` uses the same exact sampler as labels).
//! Label: always nearest, so no id is ever interpolated; the padding mask follows the label.
use fast_image_resize as fir;
use serde::{Deserialize, Serialize};

use super::geometry::{
    crop_image, crop_label, pad_image, pad_label, resize_label, resize_nearest, GeometryStep,
};
use super::pad::fill_values;
use super::{AtInference, BuildContext, LabelFill, SampleAt, SizeSpec, StageOps};
use crate::memory::pixel_buffers;
use crate::sample::{Image, ImagePart, LabelPart, PixelValue, Pixels, Sample};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResizeConfig {
    /// `N` or `[width, height]`.
    pub size: SizeSpec,
    #[serde(default)]
    pub mode: ResizeMode,
    #[serde(default)]
    pub filter: Filter,
    /// `fit` only: image value of the padding, in image units.
    #[serde(default)]
    pub image_fill: f64,
    /// `fit` only: label value of the padding.
    #[serde(default)]
    pub label_fill: LabelFill,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMode {
    #[default]
    Stretch,
    Fit,
    Fill,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    Nearest,
    #[default]
    Bilinear,
    Bicubic,
    Lanczos3,
}

#[derive(Debug, Clone)]
pub struct Resize {
    width: u32,
    height: u32,
    mode: ResizeMode,
    filter: Filter,
    image_fill: f64,
    label_fill: u16,
}

impl ResizeConfig {
    pub fn build(&self, ctx: &mut BuildContext) -> Result<Resize, Vec<String>> {
        let mut problems = Vec::new();
        let size = self.size.check("resize").map_err(|e| problems.push(e)).ok();
        let label_fill = self
            .label_fill
            .resolve(&ctx.classes, "resize")
            .map_err(|e| problems.push(e))
            .ok();
        if !self.image_fill.is_finite() {
            problems.push("resize: image_fill must be a finite number".into());
        }
        match (size, label_fill, problems.is_empty()) {
            (Some((width, height)), Some(label_fill), true) => Ok(Resize {
                width,
                height,
                mode: self.mode,
                filter: self.filter,
                image_fill: self.image_fill,
                label_fill,
            }),
            _ => Err(problems),
        }
    }
}

impl Resize {
    /// What this stage does to a `w`×`h` sample: a resize, then a centred pad (`fit`) or a centred
    /// crop (`fill`); steps that would change nothing are left out.
    pub fn steps(&self, w: u32, h: u32) -> Vec<GeometryStep> {
        let (tw, th) = (self.width, self.height);
        let (nw, nh) = match self.mode {
            ResizeMode::Stretch => (tw, th),
            ResizeMode::Fit => {
                let scale = (tw as f64 / w as f64).min(th as f64 / h as f64);
                scaled(w, h, scale, (tw, th))
            }
            ResizeMode::Fill => {
                let scale = (tw as f64 / w as f64).max(th as f64 / h as f64);
                let (nw, nh) = scaled(w, h, scale, (u32::MAX, u32::MAX));
                (nw.max(tw), nh.max(th))
            }
        };
        let mut steps = Vec::new();
        if (nw, nh) != (w, h) {
            steps.push(GeometryStep::Resize {
                from: [w, h],
                to: [nw, nh],
            });
        }
        if (nw, nh) != (tw, th) {
            let (from, to) = ([nw, nh], [tw, th]);
            steps.push(match self.mode {
                ResizeMode::Fill => GeometryStep::Crop {
                    from,
                    to,
                    at: [(nw - tw) / 2, (nh - th) / 2],
                },
                _ => GeometryStep::Pad {
                    from,
                    to,
                    at: [(tw - nw) / 2, (th - nh) / 2],
                },
            });
        }
        steps
    }
}

impl StageOps for Resize {
    type Plan = Vec<GeometryStep>;

    fn name(&self) -> &'static str {
        "resize"
    }

    fn copies(&self, _split: &str) -> Vec<u32> {
        vec![0]
    }

    fn plan(&self, at: SampleAt) -> Result<Self::Plan, String> {
        Ok(self.steps(at.width, at.height))
    }

    /// Image: the filter, then the fill around it (`fit`) or the centre window (`fill`).
    fn apply_image(&self, steps: &Self::Plan, part: ImagePart) -> Result<(), String> {
        let img = part.image;
        for step in steps {
            match *step {
                GeometryStep::Resize { to, .. } => resize_image_to(img, to[0], to[1], self.filter)?,
                GeometryStep::Pad { to, at, .. } => {
                    let fill = fill_values(self.image_fill, img)?;
                    pad_image(img, (to[0], to[1]), (at[0], at[1]), &fill);
                }
                GeometryStep::Crop { to, at, .. } => crop_image(img, (at[0], at[1], to[0], to[1])),
            }
        }
        Ok(())
    }

    /// Label: nearest, then `label_fill` around it (`fit`) or the same window (`fill`).
    fn apply_label(&self, steps: &Self::Plan, mut part: LabelPart) -> Result<(), String> {
        for step in steps {
            match *step {
                GeometryStep::Resize { to, .. } => resize_label(&mut part, to[0], to[1]),
                GeometryStep::Pad { to, at, .. } => {
                    pad_label(&mut part, (to[0], to[1]), (at[0], at[1]), self.label_fill)
                }
                GeometryStep::Crop { to, at, .. } => {
                    crop_label(&mut part, (at[0], at[1], to[0], to[1]))
                }
            }
        }
        Ok(())
    }

    /// One sample in, one out: no copy to derive.
    fn derive(&self, _plan: &Self::Plan, _sample: &Sample) -> Result<Option<Sample>, String> {
        Ok(None)
    }

    fn drawn(&self, _steps: &Self::Plan) -> Option<String> {
        None
    }

    fn at_inference(&self) -> AtInference {
        AtInference::Runs
    }

    fn geometry(&self, w: u32, h: u32) -> Result<Vec<GeometryStep>, String> {
        Ok(self.steps(w, h))
    }

    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "stage": "resize", "width": self.width, "height": self.height,
            "mode": self.mode, "filter": self.filter, "label": "nearest",
            "image_fill": self.image_fill, "label_fill": self.label_fill,
        })
    }
}

/// The scaled size, rounded, at least 1 and at most `limit`.
fn scaled(w: u32, h: u32, scale: f64, limit: (u32, u32)) -> (u32, u32) {
    let nw = ((w as f64 * scale).round() as u32).clamp(1, limit.0);
    let nh = ((h as f64 * scale).round() as u32).clamp(1, limit.1);
    (nw, nh)
}

/// Resizes an image (by `filter`) to `nw`×`nh`; nothing when it has that size.
pub fn resize_image_to(img: &mut Image, nw: u32, nh: u32, filter: Filter) -> Result<(), String> {
    if (img.width, img.height) != (nw, nh) {
        img.replace(resize_image(img, nw, nh, filter)?);
    }
    Ok(())
}

/// Resizes an image with the filter; bands are never treated as alpha.
pub fn resize_image(img: &Image, nw: u32, nh: u32, filter: Filter) -> Result<Image, String> {
    let pixels = if filter == Filter::Nearest {
        match &img.pixels {
            Pixels::U8(p) => {
                Pixels::U8(resize_nearest(p, img.width, img.height, img.bands, nw, nh))
            }
            Pixels::U16(p) => {
                Pixels::U16(resize_nearest(p, img.width, img.height, img.bands, nw, nh))
            }
            Pixels::F32(p) => {
                Pixels::F32(resize_nearest(p, img.width, img.height, img.bands, nw, nh))
            }
        }
    } else if img.bands <= 4 {
        resize_interleaved(img, img.bands, nw, nh, filter)?
    } else {
        resize_by_plane(img, nw, nh, filter)?
    };
    Ok(Image {
        width: nw,
        height: nh,
        bands: img.bands,
        pixels,
    })
}

fn pixel_type(p: &Pixels, bands: usize) -> Option<fir::PixelType> {
    use fir::PixelType as T;
    Some(match (p, bands) {
        (Pixels::U8(_), 1) => T::U8,
        (Pixels::U8(_), 2) => T::U8x2,
        (Pixels::U8(_), 3) => T::U8x3,
        (Pixels::U8(_), 4) => T::U8x4,
        (Pixels::U16(_), 1) => T::U16,
        (Pixels::U16(_), 2) => T::U16x2,
        (Pixels::U16(_), 3) => T::U16x3,
        (Pixels::U16(_), 4) => T::U16x4,
        (Pixels::F32(_), 1) => T::F32,
        (Pixels::F32(_), 2) => T::F32x2,
        (Pixels::F32(_), 3) => T::F32x3,
        (Pixels::F32(_), 4) => T::F32x4,
        _ => return None,
    })
}

fn algorithm(filter: Filter) -> fir::ResizeAlg {
    use fir::FilterType as F;
    match filter {
        Filter::Nearest => fir::ResizeAlg::Nearest,
        Filter::Bilinear => fir::ResizeAlg::Convolution(F::Bilinear),
        Filter::Bicubic => fir::ResizeAlg::Convolution(F::CatmullRom),
        Filter::Lanczos3 => fir::ResizeAlg::Convolution(F::Lanczos3),
    }
}

thread_local! {
    /// One resizer per thread: it keeps its scratch buffer (the image resized in one direction)
    /// between images instead of allocating and zeroing a new one for each (0.35% of a build).
    static RESIZER: std::cell::RefCell<fir::Resizer> = std::cell::RefCell::new(fir::Resizer::new());
}

fn resize_interleaved(
    img: &Image,
    bands: usize,
    nw: u32,
    nh: u32,
    filter: Filter,
) -> Result<Pixels, String> {
    let kind = pixel_type(&img.pixels, bands).ok_or("unsupported band count for resize")?;
    let src = fir::images::ImageRef::new(img.width, img.height, img.pixels.as_bytes(), kind)
        .map_err(|e| format!("resize: {e}"))?;
    // a pooled buffer: the resize writes every byte of it
    let len = nw as usize * nh as usize * kind.size();
    let mut dst = fir::images::Image::from_vec_u8(nw, nh, pixel_buffers::take(len), kind)
        .unwrap_or_else(|_| fir::images::Image::new(nw, nh, kind));
    let options = fir::ResizeOptions::new()
        .resize_alg(algorithm(filter))
        .use_alpha(false);
    RESIZER
        .with_borrow_mut(|resizer| resizer.resize(&src, &mut dst, &options))
        .map_err(|e| format!("resize: {e}"))?;
    let bytes = dst.into_vec();
    let typed = |bytes: Vec<u8>, wrap: fn(&[u8]) -> Pixels| {
        let pixels = wrap(&bytes);
        pixel_buffers::give(bytes);
        pixels
    };
    Ok(match img.pixels {
        Pixels::U8(_) => Pixels::U8(bytes),
        Pixels::U16(_) => typed(bytes, |b| Pixels::U16(bytemuck::pod_collect_to_vec(b))),
        Pixels::F32(_) => typed(bytes, |b| Pixels::F32(bytemuck::pod_collect_to_vec(b))),
    })
}

/// More than four bands: resize each band as its own plane, then interleave again.
fn resize_by_plane(img: &Image, nw: u32, nh: u32, filter: Filter) -> Result<Pixels, String> {
    fn run<T: PixelValue>(
        v: &[T],
        img: &Image,
        nw: u32,
        nh: u32,
        filter: Filter,
    ) -> Result<Pixels, String> {
        let bands = img.bands;
        let mut out = vec![T::default(); nw as usize * nh as usize * bands];
        for b in 0..bands {
            let plane: Vec<T> = v.iter().skip(b).step_by(bands).copied().collect();
            let plane = Image {
                width: img.width,
                height: img.height,
                bands: 1,
                pixels: T::wrap(plane),
            };
            let resized = T::unwrap(resize_interleaved(&plane, 1, nw, nh, filter)?)
                .ok_or("resize changed the pixel type")?;
            for (i, x) in resized.into_iter().enumerate() {
                out[i * bands + b] = x;
            }
        }
        Ok(T::wrap(out))
    }
    match &img.pixels {
        Pixels::U8(v) => run(v, img, nw, nh, filter),
        Pixels::U16(v) => run(v, img, nw, nh, filter),
        Pixels::F32(v) => run(v, img, nw, nh, filter),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classes::{background_and, ClassSet};
    use GeometryStep::{Crop, Pad, Resize as Scale};

    fn resize(toml: &str) -> Resize {
        let config: ResizeConfig = toml::from_str(toml).unwrap();
        let classes = ClassSet::new(background_and(["fg"]), 255).unwrap();
        config.build(&mut BuildContext { classes }).unwrap()
    }

    /// The thread's resizer, reused across sizes, band counts and filters, gives what a new
    /// resizer gives for each image.
    #[test]
    fn a_reused_resizer_gives_a_new_resizers_pixels() {
        let image = |w: u32, h: u32, bands: usize| Image {
            width: w,
            height: h,
            bands,
            pixels: Pixels::U8(
                (0..w as usize * h as usize * bands)
                    .map(|i| (i * 37 % 251) as u8)
                    .collect(),
            ),
        };
        let cases = [
            (image(64, 48, 3), (32, 24), Filter::Bilinear),
            (image(30, 70, 4), (45, 20), Filter::Lanczos3),
            (image(64, 48, 3), (17, 50), Filter::Bicubic),
            (image(9, 9, 1), (40, 40), Filter::Bilinear),
            (image(64, 48, 3), (32, 24), Filter::Bilinear),
        ];
        for (img, (nw, nh), filter) in cases {
            let got = resize_interleaved(&img, img.bands, nw, nh, filter).unwrap();
            let kind = pixel_type(&img.pixels, img.bands).unwrap();
            let src =
                fir::images::ImageRef::new(img.width, img.height, img.pixels.as_bytes(), kind)
                    .unwrap();
            let mut dst = fir::images::Image::new(nw, nh, kind);
            let options = fir::ResizeOptions::new()
                .resize_alg(algorithm(filter))
                .use_alpha(false);
            fir::Resizer::new()
                .resize(&src, &mut dst, &options)
                .unwrap();
            assert_eq!(
                got.as_bytes(),
                dst.buffer(),
                "{}x{}x{} to {nw}x{nh}",
                img.width,
                img.height,
                img.bands
            );
        }
    }

    #[test]
    fn fit_plans_a_resize_then_a_centred_pad() {
        let r = resize("size = [250, 190]\nmode = \"fit\"");
        assert_eq!(
            r.steps(300, 120),
            vec![
                Scale {
                    from: [300, 120],
                    to: [250, 100]
                },
                Pad {
                    from: [250, 100],
                    to: [250, 190],
                    at: [0, 45]
                }
            ]
        );
        // already the right size: nothing
        assert_eq!(r.steps(250, 190), vec![]);
    }

    #[test]
    fn fill_plans_a_cover_then_a_centred_crop() {
        let r = resize("size = [30, 30]\nmode = \"fill\"");
        assert_eq!(
            r.steps(40, 30),
            vec![Crop {
                from: [40, 30],
                to: [30, 30],
                at: [5, 0]
            }]
        );
        assert_eq!(
            r.steps(20, 10),
            vec![
                Scale {
                    from: [20, 10],
                    to: [60, 30]
                },
                Crop {
                    from: [60, 30],
                    to: [30, 30],
                    at: [15, 0]
                }
            ]
        );
    }

    #[test]
    fn stretch_plans_one_resize() {
        let r = resize("size = [8, 4]");
        assert_eq!(
            r.steps(3, 5),
            vec![Scale {
                from: [3, 5],
                to: [8, 4]
            }]
        );
    }
}
