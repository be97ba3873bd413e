//! The closed list of stages. Adding a stage = one file + one variant in each enum below.
//!
//! Each stage has a `XxxConfig` (serde, what the pipeline file says) whose `build` checks everything
//! it can before a pixel is read, and a runtime `Xxx` whose `apply` states what happens to the image
//! and what happens to the label, side by side.
/// Evaluates `$body` with `$b` bound to the band count, a constant for 1, 3 and 4 bands: the
/// `#[inline(always)]` bodies it calls then unroll their per-band loops (a pixel is a few moves,
/// not a loop or a copy call), with the same arithmetic as for any other count. Defined before the
/// stage modules so that each of them can use it.
macro_rules! with_const_bands {
    ($bands:expr, |$b:ident| $body:expr) => {
        match $bands {
            1 => {
                let $b = 1;
                $body
            }
            3 => {
                let $b = 3;
                $body
            }
            4 => {
                let $b = 4;
                $body
            }
            $b => $body,
        }
    };
}

pub mod augment;
pub mod geometry;
pub mod pad;
pub mod remap;
pub mod rescale;
pub mod resize;
pub mod standardize;

use serde::{Deserialize, Serialize};

use crate::classes::ClassSet;
use crate::sample::Sample;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StageConfig {
    Remap(remap::RemapConfig),
    Resize(resize::ResizeConfig),
    Pad(pad::PadConfig),
    Standardize(standardize::StandardizeConfig),
    Rescale(rescale::RescaleConfig),
    Augment(Box<augment::AugmentConfig>),
}

/// What a stage's `build` may read and change: the classes flowing into it.
pub struct BuildContext {
    pub classes: ClassSet,
}

#[derive(Debug, Clone)]
pub enum Stage {
    Remap(remap::Remap),
    Resize(resize::Resize),
    Pad(pad::Pad),
    Standardize(standardize::Standardize),
    Rescale(rescale::Rescale),
    Augment(Box<augment::Augment>),
}

impl StageConfig {
    pub fn name(&self) -> &'static str {
        match self {
            StageConfig::Remap(_) => "remap",
            StageConfig::Resize(_) => "resize",
            StageConfig::Pad(_) => "pad",
            StageConfig::Standardize(_) => "standardize",
            StageConfig::Rescale(_) => "rescale",
            StageConfig::Augment(_) => "augment",
        }
    }

    /// Validates the configuration against what flows in; returns every problem found.
    pub fn build(&self, ctx: &mut BuildContext) -> Result<Stage, Vec<String>> {
        match self {
            StageConfig::Remap(c) => c.build(ctx).map(Stage::Remap),
            StageConfig::Resize(c) => c.build(ctx).map(Stage::Resize),
            StageConfig::Pad(c) => c.build(ctx).map(Stage::Pad),
            StageConfig::Standardize(c) => c.build(ctx).map(Stage::Standardize),
            StageConfig::Rescale(c) => c.build(ctx).map(Stage::Rescale),
            StageConfig::Augment(c) => c.build(ctx).map(|a| Stage::Augment(Box::new(a))),
        }
    }
}

impl Stage {
    pub fn name(&self) -> &'static str {
        match self {
            Stage::Remap(_) => "remap",
            Stage::Resize(_) => "resize",
            Stage::Pad(_) => "pad",
            Stage::Standardize(_) => "standardize",
            Stage::Rescale(_) => "rescale",
            Stage::Augment(_) => "augment",
        }
    }

    /// Runs a one-to-one stage on one sample. Errors are plain reasons; the engine adds file and
    /// stage. Private: `apply_all` is the entry point, so an augment stage is never run by it.
    fn apply_one(&self, sample: &mut Sample) -> Result<(), String> {
        match self {
            Stage::Remap(s) => s.apply(sample),
            Stage::Resize(s) => s.apply(sample),
            Stage::Pad(s) => s.apply(sample),
            Stage::Standardize(s) => s.apply(sample),
            Stage::Rescale(s) => s.apply(sample),
            // never reached: `apply_all` expands augment stages itself
            Stage::Augment(_) => Ok(()),
        }
    }

    /// Runs the stage on every sample; `augment` turns each sample into its copies.
    pub fn apply_all(&self, samples: Vec<Sample>) -> Result<Vec<Sample>, String> {
        match self {
            Stage::Augment(a) => {
                let mut out = Vec::new();
                for s in samples {
                    out.extend(a.expand(s)?);
                }
                Ok(out)
            }
            other => {
                let mut samples = samples;
                for s in &mut samples {
                    other.apply_one(s)?;
                }
                Ok(samples)
            }
        }
    }

    /// What the stage does to a `w`×`h` sample's size, planned exactly as `apply` runs it (empty
    /// for stages that keep the size; augment is drawn per copy and has no plan).
    pub fn geometry(&self, w: u32, h: u32) -> Result<Vec<geometry::GeometryStep>, String> {
        match self {
            Stage::Resize(s) => Ok(s.plan(w, h)),
            Stage::Pad(s) => s.plan(w, h),
            _ => Ok(Vec::new()),
        }
    }

    /// Samples one input sample becomes in `split`.
    pub fn multiplicity(&self, split: &str) -> usize {
        match self {
            Stage::Augment(a) => a.multiplicity(split),
            _ => 1,
        }
    }

    /// The values this stage used, for the manifest.
    pub fn describe(&self) -> serde_json::Value {
        match self {
            Stage::Remap(s) => s.describe(),
            Stage::Resize(s) => s.describe(),
            Stage::Pad(s) => s.describe(),
            Stage::Standardize(s) => s.describe(),
            Stage::Rescale(s) => s.describe(),
            Stage::Augment(s) => s.describe(),
        }
    }
}

/// `"ignore"` or a class id: what a label gets where a geometric stage invents pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum LabelFill {
    #[default]
    Ignore,
    Class(u16),
}

impl<'de> Deserialize<'de> for LabelFill {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::de;
        // `Ignore` serializes as null (index.json's copy of the pipeline); TOML never gives null
        let Some(value) = Option::<toml::Value>::deserialize(d)? else {
            return Ok(LabelFill::Ignore);
        };
        match value {
            toml::Value::String(w) if w == "ignore" => Ok(LabelFill::Ignore),
            v @ toml::Value::Integer(_) => {
                let id = de::unsigned::<D::Error>(&v, "a label fill")?;
                u16::try_from(id)
                    .map(LabelFill::Class)
                    .map_err(|_| serde::de::Error::custom("a label fill is at most 65535"))
            }
            other => Err(de::expected("\"ignore\" or a class id", &other)),
        }
    }
}

impl LabelFill {
    /// The id to write, checked against the classes in force at this stage.
    pub fn resolve(self, classes: &ClassSet, stage: &str) -> Result<u16, String> {
        match self {
            LabelFill::Ignore => Ok(classes.ignore_index),
            LabelFill::Class(id) if classes.contains(id) => Ok(id),
            LabelFill::Class(id) => Err(format!(
                "{stage}: label fill {id} is not a declared class; use \"ignore\" or one of the class ids"
            )),
        }
    }
}

/// `N` (a square) or `[width, height]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SizeSpec {
    Square(u32),
    WidthHeight([u32; 2]),
}

impl<'de> Deserialize<'de> for SizeSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::de;
        let side = |v: &toml::Value| -> Result<u32, D::Error> {
            let n = de::unsigned::<D::Error>(v, "a size")?;
            u32::try_from(n).map_err(|_| serde::de::Error::custom("a size is at most 4294967295"))
        };
        match de::any(d)? {
            v @ toml::Value::Integer(_) => Ok(SizeSpec::Square(side(&v)?)),
            toml::Value::Array(a) if a.len() == 2 => {
                Ok(SizeSpec::WidthHeight([side(&a[0])?, side(&a[1])?]))
            }
            other => Err(de::expected("a size: N or [width, height]", &other)),
        }
    }
}

impl SizeSpec {
    pub fn width_height(self) -> (u32, u32) {
        match self {
            SizeSpec::Square(n) => (n, n),
            SizeSpec::WidthHeight([w, h]) => (w, h),
        }
    }

    pub fn check(self, stage: &str) -> Result<(u32, u32), String> {
        let (w, h) = self.width_height();
        if w == 0 || h == 0 || w > 1 << 16 || h > 1 << 16 {
            Err(format!(
                "{stage}: size [{w}, {h}] must be between 1 and 65536 on each side"
            ))
        } else {
            Ok((w, h))
        }
    }
}

/// Where the original content sits inside a padded canvas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    #[default]
    #[serde(alias = "centre")]
    Center,
    TopLeft,
}

impl Placement {
    /// Where a `size` image goes on a `canvas` at least as large.
    pub fn offset(self, size: (u32, u32), canvas: (u32, u32)) -> (u32, u32) {
        match self {
            Placement::Center => ((canvas.0 - size.0) / 2, (canvas.1 - size.1) / 2),
            Placement::TopLeft => (0, 0),
        }
    }
}
