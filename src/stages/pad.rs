//! `pad`: to a size or to the next multiple of N, content placed at the centre or top-left.
//!
//! Image: filled with a value per band (in image units). Label: filled with the ignore index by
//! default (or a declared class), and the padding mask records which pixels were invented so the
//! statistics count them apart.
use serde::{Deserialize, Serialize};

use super::geometry::{pad_image, pad_label, GeometryStep};
use super::{AtInference, BuildContext, LabelFill, Placement, SampleAt, SizeSpec, StageOps};
use crate::sample::{Image, ImagePart, LabelPart, PixelType, Sample};

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
    pub fn steps(&self, w: u32, h: u32) -> Result<Vec<GeometryStep>, String> {
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

    /// The image fill per band, each checked to fit the image's dtype.
    fn image_fill_for(&self, img: &Image) -> Result<Vec<f64>, String> {
        match &self.image_fill {
            ImageFill::All(v) => fill_values(*v, img),
            ImageFill::PerBand(v) if v.len() == img.bands => v
                .iter()
                .map(|x| fill_values(*x, img).map(|f| f[0]))
                .collect(),
            ImageFill::PerBand(v) => Err(format!(
                "pad: {} image fill values for an image with {} bands",
                v.len(),
                img.bands
            )),
        }
    }
}

impl StageOps for Pad {
    type Plan = Vec<GeometryStep>;

    fn name(&self) -> &'static str {
        "pad"
    }

    fn copies(&self, _split: &str) -> Vec<u32> {
        vec![0]
    }

    fn plan(&self, at: SampleAt) -> Result<Self::Plan, String> {
        self.steps(at.width, at.height)
    }

    /// Image: placed on the canvas, the image fill around it.
    fn apply_image(&self, steps: &Self::Plan, part: ImagePart) -> Result<(), String> {
        let fill = self.image_fill_for(part.image)?;
        for step in steps {
            if let GeometryStep::Pad { to, at, .. } = *step {
                pad_image(part.image, (to[0], to[1]), (at[0], at[1]), &fill);
            }
        }
        Ok(())
    }

    /// Label: placed the same way, the label fill around it, marked as padding.
    fn apply_label(&self, steps: &Self::Plan, mut part: LabelPart) -> Result<(), String> {
        for step in steps {
            if let GeometryStep::Pad { to, at, .. } = *step {
                pad_label(&mut part, (to[0], to[1]), (at[0], at[1]), self.label_fill);
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
        self.steps(w, h)
    }

    fn describe(&self) -> serde_json::Value {
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
