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

use super::resize::{crop_sample, resize_sample, Filter};
use super::{BuildContext, SizeSpec};
use crate::sample::Sample;
use photometric::Photometric;
use rng::Draw;
use sampling::Border;
use warp::{affine, invert, move_sample, warp_sample, Mapping, WarpRules};

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

impl Augment {
    /// Samples one input sample becomes in `split`.
    pub fn multiplicity(&self, split: &str) -> usize {
        if self.applies(split) {
            self.config.copies as usize + usize::from(self.config.keep_original)
        } else {
            1
        }
    }

    fn applies(&self, split: &str) -> bool {
        self.config.splits.iter().any(|s| s == split)
    }

    /// The original (if kept) then the copies, keyed `key@1`, `key@2`, ...
    pub fn expand(&self, s: Sample) -> Result<Vec<Sample>, String> {
        if !self.applies(&s.split) {
            return Ok(vec![s]);
        }
        let mut out = Vec::with_capacity(self.multiplicity(&s.split));
        for copy in 1..=self.config.copies {
            let mut c = s.clone();
            let drawn = self.augment(&mut c, copy)?;
            c.augment = Some(serde_json::to_string(&drawn).expect("parameters serialize"));
            c.pair.key = format!("{}@{copy}", s.pair.key);
            out.push(c);
        }
        if self.config.keep_original {
            out.insert(0, self.original(s)?);
        }
        Ok(out)
    }

    /// The kept original, brought to the copies' size when they are cropped: a centre crop
    /// (`crop`) or the whole image resized (`random_resized_crop`), recorded like a copy's draw.
    fn original(&self, mut s: Sample) -> Result<Sample, String> {
        let (w, h) = (s.image.width, s.image.height);
        let window = match (self.config.crop, self.config.random_resized_crop) {
            (Some(size), _) => {
                let (cw, ch) = size.width_height();
                if cw > w || ch > h {
                    return Err(format!("augment: crop {cw}x{ch} is larger than the image ({w}x{h}); resize or pad first"));
                }
                let window = ((w - cw) / 2, (h - ch) / 2, cw, ch);
                crop_sample(&mut s, window);
                Some(window)
            }
            (None, Some(r)) => {
                let (tw, th) = r.size.width_height();
                self.resize_to(&mut s, tw, th)?;
                Some((0, 0, w, h))
            }
            (None, None) => None,
        };
        s.augment = Some(match window {
            Some((l, t, cw, ch)) => {
                serde_json::json!({ "copy": 0, "crop": [l, t, cw, ch] }).to_string()
            }
            None => "null".into(),
        });
        Ok(s)
    }

    /// Resizes a (cropped) sample: image by the interpolation, label and mask nearest.
    fn resize_to(&self, s: &mut Sample, tw: u32, th: u32) -> Result<(), String> {
        let filter = match self.config.interpolation {
            Interpolation::Nearest => Filter::Nearest,
            Interpolation::Bilinear => Filter::Bilinear,
        };
        resize_sample(s, tw, th, filter)
    }

    /// Draws every parameter (always all of them, in one order, so enabling one transform does
    /// not change the others' values) and applies the configured ones.
    pub fn augment(&self, s: &mut Sample, copy: u32) -> Result<Drawn, String> {
        let c = &self.config;
        let mut d = Draw::new(c.seed, &s.pair.key, copy);
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
        move_sample(s, hflip, vflip, turns);
        let (w, h) = (s.image.width as usize, s.image.height as usize);
        let shift = [fx * w as f64, fy * h as f64];
        let rules = WarpRules {
            bilinear: c.interpolation == Interpolation::Bilinear,
            image_border: c.image_border,
            image_fill: std::slice::from_ref(&c.image_fill),
            label_border: match c.label_border {
                LabelBorder::Ignore => Border::Constant,
                LabelBorder::Reflect => Border::Reflect,
                LabelBorder::Edge => Border::Edge,
            },
            ignore_index: self.ignore_index,
        };
        let affine_set =
            c.rotate.is_some() || c.zoom.is_some() || c.shear.is_some() || c.shift.is_some();
        let m = affine_set.then(|| affine(w, h, rotate, (zx, zy), shear, (shift[0], shift[1])));
        if let Some(m) = m {
            let inv = invert(&m).ok_or("augment: the drawn affine map cannot be inverted")?;
            warp_sample(s, (w, h), &Mapping::Affine(inv), &rules);
        }
        if let Some(e) = c.elastic {
            let (dx, dy) = warp::elastic_field(w, h, e.alpha, e.sigma, || d.unit());
            let field = Mapping::Displaced { dx: &dx, dy: &dy };
            warp_sample(s, (w, h), &field, &rules);
        }
        let crop = self.crop(s, &mut d)?;
        photometric::apply(&mut s.image, &photometric, &mut || d.normal());
        Ok(Drawn {
            copy,
            hflip,
            vflip,
            rot90: turns,
            affine: m,
            rotate,
            zoom: [zx, zy],
            shear,
            shift,
            crop,
            photometric,
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
    /// drawn area and aspect, else the centre crop at the nearest allowed aspect), resized to its
    /// size.
    fn crop(&self, s: &mut Sample, d: &mut Draw) -> Result<Option<[u32; 4]>, String> {
        let (w, h) = (s.image.width, s.image.height);
        if let Some(size) = self.config.crop {
            let (cw, ch) = size.width_height();
            if cw > w || ch > h {
                return Err(format!("augment: crop {cw}x{ch} is larger than the image ({w}x{h}); resize or pad first"));
            }
            let window = (d.upto(w - cw), d.upto(h - ch), cw, ch);
            crop_sample(s, window);
            return Ok(Some([window.0, window.1, cw, ch]));
        }
        let Some(r) = self.config.random_resized_crop else {
            return Ok(None);
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
        crop_sample(s, window);
        let (tw, th) = r.size.width_height();
        self.resize_to(s, tw, th)?;
        Ok(Some([window.0, window.1, window.2, window.3]))
    }

    pub fn describe(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.config).expect("augment config serializes");
        v["stage"] = "augment".into();
        v
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
