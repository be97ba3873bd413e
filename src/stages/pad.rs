//! `pad`: to a size or to the next multiple of N, content placed at the centre or top-left.
//!
//! Image: filled with a value per band (in image units). Label: filled with the ignore index by
//! default (or a declared class), and the padding mask records which pixels were invented so the
//! statistics count them apart.
use serde::{Deserialize, Serialize};

use super::geometry::{place, GeometryStep};
use super::{BuildContext, LabelFill, Placement, SizeSpec};
use crate::sample::{Image, PixelType, Pixels, Sample};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PadConfig {
    /// Pad to exactly this size (`N` or `[width, height]`); larger inputs are an error.
    pub size: Option<SizeSpec>,
    /// Pad each side up to the next multiple of this.
    pub multiple_of: Option<u32>,
    /// Image fill: one value for all bands or one per band.
    #[serde(default)]
    pub image: ImageFill,
    #[serde(default)]
    pub label: LabelFill,
    #[serde(default)]
    pub placement: Placement,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ImageFill {
    All(f64),
    PerBand(Vec<f64>),
}

impl<'de> Deserialize<'de> for ImageFill {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::de;
        let forms = "an image fill: a number or one number per band";
        match de::any(d)? {
            toml::Value::Array(a) => {
                let values: Option<Vec<f64>> = a.iter().map(de::number).collect();
                values
                    .map(ImageFill::PerBand)
                    .ok_or_else(|| de::expected(forms, &toml::Value::Array(a)))
            }
            v => de::number(&v)
                .map(ImageFill::All)
                .ok_or_else(|| de::expected(forms, &v)),
        }
    }
}

impl Default for ImageFill {
    fn default() -> Self {
        ImageFill::All(0.0)
    }
}

#[derive(Debug, Clone)]
enum Target {
    Size(u32, u32),
    MultipleOf(u32),
}

#[derive(Debug, Clone)]
pub struct Pad {
    target: Target,
    image_fill: ImageFill,
    label_fill: u16,
    placement: Placement,
}

impl PadConfig {
    pub fn build(&self, ctx: &mut BuildContext) -> Result<Pad, Vec<String>> {
        let mut problems = Vec::new();
        let target = match (self.size, self.multiple_of) {
            (Some(s), None) => s
                .check("pad")
                .map(|(w, h)| Target::Size(w, h))
                .map_err(|e| problems.push(e))
                .ok(),
            (None, Some(m)) if (1..=4096).contains(&m) => Some(Target::MultipleOf(m)),
            (None, Some(m)) => {
                problems.push(format!("pad: multiple_of = {m} must be between 1 and 4096"));
                None
            }
            _ => {
                problems.push("pad: give exactly one of `size` or `multiple_of`".into());
                None
            }
        };
        let values = match &self.image {
            ImageFill::All(v) => vec![v],
            ImageFill::PerBand(v) => v.iter().collect(),
        };
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            problems.push("pad: image fill must be finite numbers".into());
        }
        let label_fill = self
            .label
            .resolve(&ctx.classes, "pad")
            .map_err(|e| problems.push(e))
            .ok();
        match (target, label_fill, problems.is_empty()) {
            (Some(target), Some(label_fill), true) => Ok(Pad {
                target,
                image_fill: self.image.clone(),
                label_fill,
                placement: self.placement,
            }),
            _ => Err(problems),
        }
    }
}

impl Pad {
    /// What padding does to a `w`×`h` sample: nothing, or one `Pad` step.
    pub fn plan(&self, w: u32, h: u32) -> Result<Vec<GeometryStep>, String> {
        let (tw, th) = match self.target {
            Target::Size(tw, th) => (tw, th),
            Target::MultipleOf(m) => (w.div_ceil(m) * m, h.div_ceil(m) * m),
        };
        if w > tw || h > th {
            return Err(format!(
                "image is {w}x{h}, larger than the pad size {tw}x{th}; add a resize stage before pad"
            ));
        }
        if (w, h) == (tw, th) {
            return Ok(Vec::new());
        }
        let at = self.placement.offset((w, h), (tw, th));
        Ok(vec![GeometryStep::Pad {
            from: [w, h],
            to: [tw, th],
            at: [at.0, at.1],
        }])
    }

    pub fn apply(&self, s: &mut Sample) -> Result<(), String> {
        let steps = self.plan(s.image.width, s.image.height)?;
        let fill = match &self.image_fill {
            ImageFill::All(v) => fill_values(*v, &s.image)?,
            ImageFill::PerBand(v) if v.len() == s.image.bands => v
                .iter()
                .map(|x| fill_values(*x, &s.image).map(|f| f[0]))
                .collect::<Result<_, _>>()?,
            ImageFill::PerBand(v) => {
                return Err(format!(
                    "pad: {} image fill values for an image with {} bands",
                    v.len(),
                    s.image.bands
                ))
            }
        };
        for step in steps {
            if let GeometryStep::Pad { to, at, .. } = step {
                pad_sample(s, (to[0], to[1]), (at[0], at[1]), &fill, self.label_fill);
            }
        }
        Ok(())
    }

    pub fn describe(&self) -> serde_json::Value {
        let target = match self.target {
            Target::Size(w, h) => serde_json::json!({ "size": [w, h] }),
            Target::MultipleOf(m) => serde_json::json!({ "multiple_of": m }),
        };
        serde_json::json!({
            "stage": "pad", "target": target, "image_fill": self.image_fill,
            "label_fill": self.label_fill, "placement": self.placement,
        })
    }
}

/// One fill value per band, checked to be representable in the image's dtype (never clamped).
pub fn fill_values(value: f64, img: &Image) -> Result<Vec<f64>, String> {
    let t = img.pixels.dtype();
    let integral = t != PixelType::F32;
    if integral && (value < 0.0 || value > t.max_value() || value.fract() != 0.0) {
        return Err(format!(
            "fill value {value} does not fit {t:?} image pixels"
        ));
    }
    Ok(vec![value; img.bands])
}

/// Pads image, label and padding mask onto a `canvas`, the content at `at` (left, top).
pub fn pad_sample(
    s: &mut Sample,
    canvas: (u32, u32),
    at: (u32, u32),
    fill: &[f64],
    label_fill: u16,
) {
    let (w, h, bands) = (s.image.width, s.image.height, s.image.bands);
    if (w, h) == canvas {
        return;
    }
    s.image.pixels = match &s.image.pixels {
        Pixels::U8(p) => Pixels::U8(place(
            p,
            w,
            h,
            bands,
            canvas,
            at,
            &fill.iter().map(|&v| v as u8).collect::<Vec<_>>(),
        )),
        Pixels::U16(p) => Pixels::U16(place(
            p,
            w,
            h,
            bands,
            canvas,
            at,
            &fill.iter().map(|&v| v as u16).collect::<Vec<_>>(),
        )),
        Pixels::F32(p) => Pixels::F32(place(
            p,
            w,
            h,
            bands,
            canvas,
            at,
            &fill.iter().map(|&v| v as f32).collect::<Vec<_>>(),
        )),
    };
    s.label.ids = place(&s.label.ids, w, h, 1, canvas, at, &[label_fill]);
    let mask = s
        .padding
        .take()
        .unwrap_or_else(|| vec![false; w as usize * h as usize]);
    s.padding = Some(place(&mask, w, h, 1, canvas, at, &[true]));
    (s.image.width, s.image.height) = canvas;
    (s.label.width, s.label.height) = canvas;
}
