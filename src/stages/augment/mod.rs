//! `augment`: `copies` augmented copies of each sample of the chosen splits (train by default),
//! the original kept or not. Each copy draws all its parameters once, from (seed, sample key, copy
//! index) alone, and the same draw moves image, label and padding mask (albumentations' rule).
//!
//! Image: flips, 90° turns, affine warp (rotate, shift, zoom, shear), elastic warp, crop or random
//! resized crop with the chosen interpolation; then photometric changes, band by band.
//! Label: the same geometry with nearest sampling (flips, turns and crops exact); uncovered pixels
//! get the ignore index (counted as padding) or follow `label_border`. Photometric: untouched.
//!
//! The drawn parameters of every copy are written beside it (`augment` in the shards), so any copy
//! can be regenerated on its own.
pub mod photometric;
pub mod rng;
pub mod sampling;
pub mod warp;
#[cfg(target_arch = "x86_64")]
mod warp_simd;

use serde::{Deserialize, Serialize};

use super::geometry::{crop_image, crop_label, resize_label, GeometryStep};
use super::resize::{resize_image_to, Filter};
use super::{AtInference, BuildContext, SampleAt, SizeSpec, StageOps};
use crate::sample::{Image, ImagePart, LabelMap, LabelPart, Sample};
use photometric::Photometric;
use rng::Draw;
use sampling::Border;
use warp::{affine, invert, Mapping, MovedLabel, WarpRules};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentConfig {
    /// Augmented copies per sample.
    pub copies: u32,
    /// Also keep the sample itself (default true).
    #[serde(default = "yes")]
    pub keep_original: bool,
    /// Splits that are augmented (default `["train"]`); others pass through unchanged.
    #[serde(default = "train_only")]
    pub splits: Vec<String>,
    #[serde(default)]
    pub seed: u64,
    /// Probability of a horizontal flip.
    #[serde(default)]
    pub hflip: f64,
    #[serde(default)]
    pub vflip: f64,
    /// Probability of a turn by 90, 180 or 270 degrees (one of the three, equally likely).
    #[serde(default)]
    pub rot90: f64,
    /// Rotation range in degrees (counter-clockwise).
    pub rotate: Option<[f64; 2]>,
    /// Shift range as a fraction of width (x) and height (y).
    pub shift: Option<[f64; 2]>,
    /// Zoom factor range.
    pub zoom: Option<[f64; 2]>,
    /// Draw the x and y zoom apart.
    #[serde(default)]
    pub zoom_per_axis: bool,
    /// Shear range in degrees (along x).
    pub shear: Option<[f64; 2]>,
    /// Elastic deformation: displacement `alpha` pixels, smoothness `sigma` pixels.
    pub elastic: Option<ElasticConfig>,
    /// Random crop to `[width, height]`.
    pub crop: Option<SizeSpec>,
    pub random_resized_crop: Option<ResizedCropConfig>,
    /// Image interpolation of warps and resized crops: `bilinear` (default) or `nearest`.
    #[serde(default)]
    pub interpolation: Interpolation,
    /// Uncovered image pixels: `constant` (image_fill), `reflect` or `edge`.
    #[serde(default = "constant")]
    pub image_border: Border,
    #[serde(default)]
    pub image_fill: f64,
    /// Uncovered label pixels: `ignore` (default, counted as padding), `reflect` or `edge`.
    #[serde(default)]
    pub label_border: LabelBorder,
    /// Added brightness range, as a fraction of the full range (255, 65535, or 1 for f32).
    pub brightness: Option<[f64; 2]>,
    /// Contrast factor range (around each band's mean).
    pub contrast: Option<[f64; 2]>,
    pub gamma: Option<[f64; 2]>,
    /// Hue turn range, as a fraction of a full turn (3-band images only).
    pub hue: Option<[f64; 2]>,
    /// Saturation factor range (3-band images only).
    pub saturation: Option<[f64; 2]>,
    /// Gaussian noise standard deviation range, as a fraction of the full range.
    pub noise: Option<[f64; 2]>,
    /// Gaussian blur sigma range in pixels.
    pub blur: Option<[f64; 2]>,
}

fn yes() -> bool {
    true
}

fn train_only() -> Vec<String> {
    vec!["train".into()]
}

fn constant() -> Border {
    Border::Constant
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticConfig {
    pub alpha: f64,
    pub sigma: f64,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResizedCropConfig {
    pub size: SizeSpec,
    /// Area fraction range (default [0.08, 1.0], as torchvision).
    #[serde(default = "default_scale")]
    pub scale: [f64; 2],
    /// Aspect ratio range (default [3/4, 4/3]).
    #[serde(default = "default_ratio")]
    pub ratio: [f64; 2],
}

fn default_scale() -> [f64; 2] {
    [0.08, 1.0]
}

fn default_ratio() -> [f64; 2] {
    [0.75, 4.0 / 3.0]
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    Nearest,
    #[default]
    Bilinear,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelBorder {
    #[default]
    Ignore,
    Reflect,
    Edge,
}

#[derive(Debug, Clone)]
pub struct Augment {
    config: AugmentConfig,
    ignore_index: u16,
}

impl AugmentConfig {
    pub fn build(&self, ctx: &mut BuildContext) -> Result<Augment, Vec<String>> {
        let mut problems = Vec::new();
        let mut need = |ok: bool, what: &str| {
            if !ok {
                problems.push(format!("augment: {what}"));
            }
        };
        need(self.copies >= 1, "copies must be at least 1");
        need(
            !self.splits.is_empty(),
            "splits must name at least one split",
        );
        for (name, p) in [
            ("hflip", self.hflip),
            ("vflip", self.vflip),
            ("rot90", self.rot90),
        ] {
            need(
                (0.0..=1.0).contains(&p),
                &format!("{name} is a probability between 0 and 1"),
            );
        }
        let ranges = [
            ("rotate", self.rotate, f64::NEG_INFINITY),
            ("shift", self.shift, -1.0),
            ("zoom", self.zoom, 1e-3),
            ("shear", self.shear, -89.0),
            ("brightness", self.brightness, -1.0),
            ("contrast", self.contrast, 0.0),
            ("gamma", self.gamma, 1e-3),
            ("hue", self.hue, -1.0),
            ("saturation", self.saturation, 0.0),
            ("noise", self.noise, 0.0),
            ("blur", self.blur, 0.0),
        ];
        for (name, range, min) in ranges {
            if let Some([lo, hi]) = range {
                need(
                    lo.is_finite() && hi.is_finite() && lo <= hi,
                    &format!("{name} = [low, high] with low <= high"),
                );
                need(lo >= min, &format!("{name} must be at least {min}"));
            }
        }
        if let Some([_, hi]) = self.shear {
            need(hi <= 89.0, "shear must be under 90 degrees");
        }
        if let Some(e) = self.elastic {
            need(
                e.alpha >= 0.0 && e.sigma > 0.0,
                "elastic needs alpha >= 0 and sigma > 0",
            );
        }
        need(
            self.crop.is_none() || self.random_resized_crop.is_none(),
            "give crop or random_resized_crop, not both",
        );
        if let Some(c) = self.crop {
            if let Err(e) = c.check("augment crop") {
                need(false, &e);
            }
        }
        if let Some(r) = self.random_resized_crop {
            if let Err(e) = r.size.check("augment random_resized_crop") {
                need(false, &e);
            }
            need(
                0.0 < r.scale[0] && r.scale[0] <= r.scale[1] && r.scale[1] <= 1.0,
                "random_resized_crop scale is within (0, 1], low <= high",
            );
            need(
                0.0 < r.ratio[0] && r.ratio[0] <= r.ratio[1],
                "random_resized_crop ratio is positive, low <= high",
            );
        }
        if problems.is_empty() {
            Ok(Augment {
                config: self.clone(),
                ignore_index: ctx.classes.ignore_index,
            })
        } else {
            Err(problems)
        }
    }
}

/// Everything drawn for one copy: what `augment` records beside it.
#[derive(Debug, Clone, Serialize)]
pub struct Drawn {
    pub copy: u32,
    pub hflip: bool,
    pub vflip: bool,
    /// Counter-clockwise turns by 90 degrees.
    pub rot90: u32,
    /// The affine map applied (OpenCV `warpAffine` convention), when any affine range is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affine: Option<[[f64; 3]; 2]>,
    pub rotate: f64,
    pub zoom: [f64; 2],
    pub shear: f64,
    /// In pixels.
    pub shift: [f64; 2],
    /// (left, top, width, height) of the crop, before any resize.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crop: Option<[u32; 4]>,
    pub photometric: Photometric,
}

/// One sample's plan: passed untouched (a split that is not augmented), brought to the copies'
/// size (the kept original), or one augmented copy.
pub enum AugmentPlan {
    Pass,
    Original(OriginalPlan),
    Copy(Box<CopyPlan>),
}

/// The kept original: a centre crop (`crop`) or the whole image resized (`random_resized_crop`).
pub struct OriginalPlan {
    window: Option<(u32, u32, u32, u32)>,
    resize_to: Option<(u32, u32)>,
    drawn: String,
}

/// Everything drawn for one copy, and what follows from it at the sample's size.
pub struct CopyPlan {
    drawn: Drawn,
    /// The size after the turns (which warps and crops work at).
    turned: (usize, usize),
    /// Output position → source position, inverted from the drawn affine map.
    inverse: Option<warp::Affine>,
    /// The elastic displacement field (dx, dy) at the turned size.
    elastic: Option<(Vec<f32>, Vec<f32>)>,
    crop: Option<(u32, u32, u32, u32)>,
    resize_to: Option<(u32, u32)>,
    /// The stream after every geometric draw: the image path draws its noise from a copy of it.
    noise: Draw,
}

impl StageOps for Augment {
    type Plan = AugmentPlan;

    fn name(&self) -> &'static str {
        "augment"
    }

    /// The original (if kept) then the copies, keyed `key@1`, `key@2`, ...
    fn copies(&self, split: &str) -> Vec<u32> {
        if !self.applies(split) {
            return vec![0];
        }
        let original = self.config.keep_original.then_some(0);
        original.into_iter().chain(1..=self.config.copies).collect()
    }

    fn plan(&self, at: SampleAt) -> Result<AugmentPlan, String> {
        if !self.applies(at.split) {
            return Ok(AugmentPlan::Pass);
        }
        match at.copy {
            0 => self
                .plan_original(at.width, at.height)
                .map(AugmentPlan::Original),
            copy => self
                .plan_copy(at, copy)
                .map(|c| AugmentPlan::Copy(Box::new(c))),
        }
    }

    /// Image: flips and turns, the warps with the chosen interpolation, the crop (and its resize),
    /// then the photometric changes.
    fn apply_image(&self, plan: &AugmentPlan, part: ImagePart) -> Result<(), String> {
        let img = part.image;
        match plan {
            AugmentPlan::Pass => Ok(()),
            AugmentPlan::Original(o) => {
                if let Some(window) = o.window {
                    crop_image(img, window);
                }
                match o.resize_to {
                    Some((tw, th)) => resize_image_to(img, tw, th, self.filter()),
                    None => Ok(()),
                }
            }
            AugmentPlan::Copy(c) => {
                if let Some(moved) = self.copy_geometry_image(c, img) {
                    img.replace(moved);
                }
                self.finish_copy_image(c, img)
            }
        }
    }

    /// Label: the same flips, turns, warps and crop, nearest; uncovered pixels by `label_border`.
    /// Photometric changes: none.
    fn apply_label(&self, plan: &AugmentPlan, mut part: LabelPart) -> Result<(), String> {
        let (window, resize_to) = match plan {
            AugmentPlan::Pass => return Ok(()),
            AugmentPlan::Original(o) => (o.window, o.resize_to),
            AugmentPlan::Copy(c) => {
                let source = (&*part.label, part.padding.as_deref());
                if let Some((label, padding)) = self.copy_geometry_label(c, source) {
                    (*part.label, *part.padding) = (label, padding);
                }
                (c.crop, c.resize_to)
            }
        };
        crop_and_resize_label(&mut part, window, resize_to);
        Ok(())
    }

    /// A copy whose geometry moves or warps the pixels is made from the original's, not from a
    /// clone of them; then its crop, resize and photometric changes run on it in place.
    fn derive(&self, plan: &AugmentPlan, sample: &Sample) -> Result<Option<Sample>, String> {
        let AugmentPlan::Copy(c) = plan else {
            return Ok(None);
        };
        let Some(image) = self.copy_geometry_image(c, &sample.image) else {
            return Ok(None);
        };
        let source = (&sample.label, sample.padding.as_deref());
        let (label, padding) = self
            .copy_geometry_label(c, source)
            .expect("the label takes the steps the image takes");
        let mut copy = sample.with_pixels(image, label, padding);
        let (image, mut label) = copy.parts();
        self.finish_copy_image(c, image.image)?;
        crop_and_resize_label(&mut label, c.crop, c.resize_to);
        Ok(Some(copy))
    }

    fn drawn(&self, plan: &AugmentPlan) -> Option<String> {
        match plan {
            AugmentPlan::Pass => None,
            AugmentPlan::Original(o) => Some(o.drawn.clone()),
            AugmentPlan::Copy(c) => {
                Some(serde_json::to_string(&c.drawn).expect("parameters serialize"))
            }
        }
    }

    /// Random by design: a model is applied to the images as they are.
    fn at_inference(&self) -> AtInference {
        AtInference::Skipped
    }

    fn geometry(&self, _w: u32, _h: u32) -> Result<Vec<GeometryStep>, String> {
        Err("augment: its geometry is drawn per copy; it does not run at inference".into())
    }

    fn describe(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.config).expect("augment config serializes");
        v["stage"] = "augment".into();
        v
    }
}

impl CopyPlan {
    /// The warps in the order they run: affine, then elastic.
    fn mappings(&self) -> Vec<Mapping<'_>> {
        let affine = self.inverse.map(Mapping::Affine);
        let elastic = self
            .elastic
            .as_ref()
            .map(|(dx, dy)| Mapping::Displaced { dx, dy });
        affine.into_iter().chain(elastic).collect()
    }
}

impl Augment {
    fn applies(&self, split: &str) -> bool {
        self.config.splits.iter().any(|s| s == split)
    }

    /// The image filter of the crop's resize: labels are always nearest.
    fn filter(&self) -> Filter {
        match self.config.interpolation {
            Interpolation::Nearest => Filter::Nearest,
            Interpolation::Bilinear => Filter::Bilinear,
        }
    }

    fn warp_rules(&self) -> WarpRules<'_> {
        let c = &self.config;
        WarpRules {
            bilinear: c.interpolation == Interpolation::Bilinear,
            image_border: c.image_border,
            image_fill: std::slice::from_ref(&c.image_fill),
            label_border: match c.label_border {
                LabelBorder::Ignore => Border::Constant,
                LabelBorder::Reflect => Border::Reflect,
                LabelBorder::Edge => Border::Edge,
            },
            ignore_index: self.ignore_index,
        }
    }

    /// What follows a copy's geometry on its image: the crop (and its resize), then the
    /// photometric changes.
    fn finish_copy_image(&self, c: &CopyPlan, img: &mut Image) -> Result<(), String> {
        if let Some(window) = c.crop {
            crop_image(img, window);
        }
        if let Some((tw, th)) = c.resize_to {
            resize_image_to(img, tw, th, self.filter())?;
        }
        let mut noise = c.noise.clone();
        photometric::apply(img, &c.drawn.photometric, &mut || noise.normal());
        Ok(())
    }

    /// A copy's flips, turns and warps, read from `src` into new pixels; `None` when it has
    /// none. The first step reads the original, so a copy need not clone it first.
    fn copy_geometry_image(&self, c: &CopyPlan, src: &Image) -> Option<Image> {
        let d = &c.drawn;
        let rules = self.warp_rules();
        let mut made = warp::moved_image(src, d.hflip, d.vflip, d.rot90);
        for map in c.mappings() {
            let warped = warp::warped_image(made.as_ref().unwrap_or(src), c.turned, &map, &rules);
            if let Some(replaced) = made.replace(warped) {
                replaced.pixels.recycle();
            }
        }
        made
    }

    /// The same steps for the label and its padding mask (nearest).
    fn copy_geometry_label(
        &self,
        c: &CopyPlan,
        src: (&LabelMap, Option<&[bool]>),
    ) -> Option<MovedLabel> {
        let d = &c.drawn;
        let rules = self.warp_rules();
        let mut made = warp::moved_label(src, d.hflip, d.vflip, d.rot90);
        for map in c.mappings() {
            let from = made.as_ref().map_or(src, |(l, p)| (l, p.as_deref()));
            let warped = warp::warped_label(from, c.turned, &map, &rules);
            if let Some((replaced, padding)) = made.replace(warped) {
                replaced.recycle(padding);
            }
        }
        made
    }

    /// The kept original, brought to the copies' size when they are cropped: a centre crop
    /// (`crop`) or the whole image resized (`random_resized_crop`), recorded like a copy's draw.
    fn plan_original(&self, w: u32, h: u32) -> Result<OriginalPlan, String> {
        let (window, resize_to, recorded) = match (
            self.config.crop,
            self.config.random_resized_crop,
        ) {
            (Some(size), _) => {
                let (cw, ch) = size.width_height();
                if cw > w || ch > h {
                    return Err(format!("augment: crop {cw}x{ch} is larger than the image ({w}x{h}); resize or pad first"));
                }
                let window = ((w - cw) / 2, (h - ch) / 2, cw, ch);
                (Some(window), None, Some(window))
            }
            (None, Some(r)) => (None, Some(r.size.width_height()), Some((0, 0, w, h))),
            (None, None) => (None, None, None),
        };
        let drawn = match recorded {
            Some((l, t, cw, ch)) => {
                serde_json::json!({ "copy": 0, "crop": [l, t, cw, ch] }).to_string()
            }
            None => "null".into(),
        };
        Ok(OriginalPlan {
            window,
            resize_to,
            drawn,
        })
    }

    /// Draws every parameter (always all of them, in one order, so enabling one transform does
    /// not change the others' values), then the elastic field and the crop at the turned size.
    fn plan_copy(&self, at: SampleAt, copy: u32) -> Result<CopyPlan, String> {
        let c = &self.config;
        let mut d = Draw::new(c.seed, at.key, copy);
        let hflip = d.chance(c.hflip);
        let vflip = d.chance(c.vflip);
        let turns = if d.chance(c.rot90) { 1 + d.upto(2) } else { 0 };
        let rotate = d.uniform(c.rotate.unwrap_or_default());
        let zx = d.uniform(c.zoom.unwrap_or([1.0, 1.0]));
        let zy = if c.zoom_per_axis {
            d.uniform(c.zoom.unwrap_or([1.0, 1.0]))
        } else {
            zx
        };
        let shear = d.uniform(c.shear.unwrap_or_default());
        let (fx, fy) = (
            d.uniform(c.shift.unwrap_or_default()),
            d.uniform(c.shift.unwrap_or_default()),
        );
        let photometric = self.draw_photometric(&mut d);
        let (w, h) = match turns % 2 {
            0 => (at.width as usize, at.height as usize),
            _ => (at.height as usize, at.width as usize),
        };
        let shift = [fx * w as f64, fy * h as f64];
        let affine_set =
            c.rotate.is_some() || c.zoom.is_some() || c.shear.is_some() || c.shift.is_some();
        let m = affine_set.then(|| affine(w, h, rotate, (zx, zy), shear, (shift[0], shift[1])));
        let inverse = match m {
            Some(m) => Some(invert(&m).ok_or("augment: the drawn affine map cannot be inverted")?),
            None => None,
        };
        let elastic = c
            .elastic
            .map(|e| warp::elastic_field(w, h, e.alpha, e.sigma, || d.unit()));
        let (crop, resize_to) = self.draw_crop((w as u32, h as u32), &mut d)?;
        let drawn = Drawn {
            copy,
            hflip,
            vflip,
            rot90: turns,
            affine: m,
            rotate,
            zoom: [zx, zy],
            shear,
            shift,
            crop: crop.map(|(l, t, cw, ch)| [l, t, cw, ch]),
            photometric,
        };
        Ok(CopyPlan {
            drawn,
            turned: (w, h),
            inverse,
            elastic,
            crop,
            resize_to,
            noise: d,
        })
    }

    fn draw_photometric(&self, d: &mut Draw) -> Photometric {
        let c = &self.config;
        let mut pick = |range: Option<[f64; 2]>| {
            let v = d.uniform(range.unwrap_or_default());
            range.map(|_| v)
        };
        Photometric {
            brightness: pick(c.brightness),
            contrast: pick(c.contrast),
            gamma: pick(c.gamma),
            hue: pick(c.hue),
            saturation: pick(c.saturation),
            noise: pick(c.noise),
            blur: pick(c.blur),
        }
    }

    /// A random crop, or a random resized crop (torchvision's rule: ten tries at a window of the
    /// drawn area and aspect, else the centre crop at the nearest allowed aspect) and the size it
    /// is resized to.
    #[allow(clippy::type_complexity)]
    fn draw_crop(
        &self,
        (w, h): (u32, u32),
        d: &mut Draw,
    ) -> Result<(Option<(u32, u32, u32, u32)>, Option<(u32, u32)>), String> {
        if let Some(size) = self.config.crop {
            let (cw, ch) = size.width_height();
            if cw > w || ch > h {
                return Err(format!("augment: crop {cw}x{ch} is larger than the image ({w}x{h}); resize or pad first"));
            }
            return Ok((Some((d.upto(w - cw), d.upto(h - ch), cw, ch)), None));
        }
        let Some(r) = self.config.random_resized_crop else {
            return Ok((None, None));
        };
        let area = w as f64 * h as f64;
        let mut window = centre_crop(w, h, r.ratio);
        for _ in 0..10 {
            let target = d.uniform(r.scale) * area;
            let ratio = d.uniform([r.ratio[0].ln(), r.ratio[1].ln()]).exp();
            let cw = (target * ratio).sqrt().round() as u32;
            let ch = (target / ratio).sqrt().round() as u32;
            if (1..=w).contains(&cw) && (1..=h).contains(&ch) {
                window = (d.upto(w - cw), d.upto(h - ch), cw, ch);
                break;
            }
        }
        Ok((Some(window), Some(r.size.width_height())))
    }
}

/// The crop (window) and resize that end a label's augmentation, nearest.
fn crop_and_resize_label(
    part: &mut LabelPart,
    window: Option<(u32, u32, u32, u32)>,
    resize_to: Option<(u32, u32)>,
) {
    if let Some(window) = window {
        crop_label(part, window);
    }
    if let Some((tw, th)) = resize_to {
        resize_label(part, tw, th);
    }
}

/// torchvision's fallback when ten draws find no box: the whole image, cut in the centre to the
/// nearest allowed aspect ratio when its own is outside `ratio`.
fn centre_crop(w: u32, h: u32, ratio: [f64; 2]) -> (u32, u32, u32, u32) {
    let own = w as f64 / h as f64;
    let (cw, ch) = if own < ratio[0] {
        (w, ((w as f64 / ratio[0]).round() as u32).clamp(1, h))
    } else if own > ratio[1] {
        (((h as f64 * ratio[1]).round() as u32).clamp(1, w), h)
    } else {
        (w, h)
    };
    ((w - cw) / 2, (h - ch) / 2, cw, ch)
}
