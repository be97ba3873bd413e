//! The closed list of stages. Adding a stage = one file + one variant in each enum below + one arm
//! in `dispatch!` and `StageConfig`'s two matches (none has a catch-all arm, so the compiler names
//! each place).
//!
//! Each stage has a `XxxConfig` (serde, what the pipeline file says) whose `build` checks everything
//! it can before a pixel is read, and a runtime `Xxx` that implements [`StageOps`]: one plan per
//! sample (every size, window and random value the image and label share), then what happens to the
//! image and what happens to the label, side by side, what it does at inference, how it changes
//! geometry, and how it describes itself.
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
use crate::sample::{ImagePart, LabelPart, Sample};
use geometry::GeometryStep;

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

/// Where a stage meets one sample: its size now, its key and split, and which copy this is (0:
/// the sample itself, or an augment stage's kept original; 1, 2, ...: augmented copies).
#[derive(Debug, Clone, Copy)]
pub struct SampleAt<'a> {
    pub width: u32,
    pub height: u32,
    pub key: &'a str,
    pub split: &'a str,
    pub copy: u32,
}

/// Whether a stage runs when a model is applied to new images (`segprep apply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtInference {
    /// It prepares the model's input exactly as it prepared the training images.
    Runs,
    /// It changes labels only (remap), or is random (augment): skipped.
    Skipped,
}

/// Everything the rest of the program asks of a stage, answered in the stage's own file. No method
/// has a default, so a new stage answers each question.
pub trait StageOps {
    /// What the image path and the label path share for one sample, drawn once: sizes, windows,
    /// random values.
    type Plan;

    /// The stage's name in the pipeline file and in messages.
    fn name(&self) -> &'static str;
    /// The copies one sample of `split` becomes, in output order (`[0]`: itself).
    fn copies(&self, split: &str) -> Vec<u32>;
    fn plan(&self, at: SampleAt) -> Result<Self::Plan, String>;
    fn apply_image(&self, plan: &Self::Plan, image: ImagePart) -> Result<(), String>;
    fn apply_label(&self, plan: &Self::Plan, label: LabelPart) -> Result<(), String>;
    /// The copy `plan` makes of `sample`, its image and label paths run, made without a clone
    /// of the sample's pixels first: for a copy whose pixels are written anew from the
    /// original's (an augment copy that flips or warps). `None`: the copy is a clone of the
    /// sample, run in place. Either way the same copy.
    fn derive(&self, plan: &Self::Plan, sample: &Sample) -> Result<Option<Sample>, String>;
    /// The parameters drawn for this copy, recorded with the sample (`augment` in the shards).
    fn drawn(&self, plan: &Self::Plan) -> Option<String>;
    fn at_inference(&self) -> AtInference;
    /// What the stage does to a `w`×`h` sample's size, planned exactly as it runs (empty for
    /// stages that keep the size), so `restore` can undo it. An error for a stage whose geometry
    /// is drawn per copy (augment): it never runs at inference.
    fn geometry(&self, w: u32, h: u32) -> Result<Vec<GeometryStep>, String>;
    /// The values this stage used, for index.json.
    fn describe(&self) -> serde_json::Value;
}

/// Evaluates `$body` with `$s` bound to the stage's runtime type: the one place that lists them.
macro_rules! dispatch {
    ($stage:expr, |$s:ident| $body:expr) => {
        match $stage {
            Stage::Remap($s) => $body,
            Stage::Resize($s) => $body,
            Stage::Pad($s) => $body,
            Stage::Standardize($s) => $body,
            Stage::Rescale($s) => $body,
            Stage::Augment($s) => {
                let $s = &**$s;
                $body
            }
        }
    };
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
        dispatch!(self, |s| s.name())
    }

    /// Runs the stage on every sample, in order; an augment stage turns each into its copies.
    /// Errors are plain reasons; the caller adds file and stage.
    pub fn apply_all(&self, samples: Vec<Sample>) -> Result<Vec<Sample>, String> {
        dispatch!(self, |s| run_all(s, samples))
    }

    /// The image path alone, as `segprep apply` runs it on a new image (no label exists there).
    /// `size`: the image's size as the stages see it (its full size, also when a JPEG was decoded
    /// reduced for a first resize).
    pub fn apply_image(&self, key: &str, size: (u32, u32), image: ImagePart) -> Result<(), String> {
        dispatch!(self, |s| {
            let at = SampleAt {
                width: size.0,
                height: size.1,
                key,
                split: INFERENCE_SPLIT,
                copy: 0,
            };
            s.plan(at).and_then(|plan| s.apply_image(&plan, image))
        })
    }

    pub fn at_inference(&self) -> AtInference {
        dispatch!(self, |s| s.at_inference())
    }

    pub fn geometry(&self, w: u32, h: u32) -> Result<Vec<GeometryStep>, String> {
        dispatch!(self, |s| s.geometry(w, h))
    }

    /// Samples one input sample becomes in `split`.
    pub fn multiplicity(&self, split: &str) -> usize {
        dispatch!(self, |s| s.copies(split).len())
    }

    /// Whether the stage draws copies of `split`'s samples (an augment stage on a split it
    /// augments): only such a stage sees a copy number other than 0.
    pub fn draws_copies(&self, split: &str) -> bool {
        dispatch!(self, |s| s.copies(split) != [0])
    }

    /// Runs the stage on one sample as copy `copy` (0 for a stage that draws no copies): what
    /// `apply_all` makes of that copy, made alone. Any copy number may be drawn, also past the
    /// build's `copies`, which is how a loader draws fresh copies every epoch.
    pub fn apply_copy(&self, sample: &mut Sample, copy: u32) -> Result<(), String> {
        dispatch!(self, |s| run_on(s, sample, copy))
    }

    pub fn describe(&self) -> serde_json::Value {
        dispatch!(self, |s| s.describe())
    }
}

/// The split name new images have at inference: no stage's split list names it.
pub const INFERENCE_SPLIT: &str = "apply";

/// Every sample through `stage`, each as its copies. Copies the stage derives from the sample
/// (see `StageOps::derive`) need no clone of it; of the others, the last runs on the sample itself.
/// Each copy is planned once.
fn run_all<S: StageOps>(stage: &S, samples: Vec<Sample>) -> Result<Vec<Sample>, String> {
    let mut out = Vec::with_capacity(samples.len());
    for sample in samples {
        let copies = stage.copies(&sample.split);
        let made = copies
            .iter()
            .map(|&copy| make_copy(stage, &sample, copy))
            .collect::<Result<Vec<_>, _>>()?;
        let last_in_place = made.iter().rposition(|m| matches!(m, Made::InPlace(_)));
        let mut original = Some(sample);
        for (i, (&copy, made)) in copies.iter().zip(made).enumerate() {
            out.push(match made {
                Made::Derived(made) => *made,
                Made::InPlace(plan) => {
                    let mut made = if Some(i) == last_in_place {
                        original.take()
                    } else {
                        original.clone()
                    }
                    .expect("the sample is taken by its last copy only");
                    run_planned(stage, &plan, &mut made, copy)?;
                    made
                }
            });
        }
    }
    Ok(out)
}

/// A copy as the stage makes it: derived from the sample, or run in place on it (or a clone of
/// it) by its plan.
enum Made<P> {
    Derived(Box<Sample>),
    InPlace(P),
}

/// Plans copy `copy` of `sample`, and derives it if the stage does (never copy 0, the sample
/// itself), recorded as `run_planned` records it.
fn make_copy<S: StageOps>(stage: &S, sample: &Sample, copy: u32) -> Result<Made<S::Plan>, String> {
    let plan = stage.plan(sample_at(sample, copy))?;
    if copy > 0 {
        if let Some(mut made) = stage.derive(&plan, sample)? {
            record_copy(stage, &plan, &mut made, copy);
            return Ok(Made::Derived(Box::new(made)));
        }
    }
    Ok(Made::InPlace(plan))
}

/// Where copy `copy` of `sample` is planned: at the label's size, also when the image was
/// decoded reduced for a first resize.
fn sample_at(sample: &Sample, copy: u32) -> SampleAt<'_> {
    SampleAt {
        width: sample.label.width,
        height: sample.label.height,
        key: &sample.pair.key,
        split: &sample.split,
        copy,
    }
}

/// Runs `stage` on one sample as copy `copy`: one plan, the image path, the label path, then the
/// drawn parameters and (for copies 1, 2, ...) the key `key@copy` recorded.
pub fn run_on<S: StageOps>(stage: &S, sample: &mut Sample, copy: u32) -> Result<(), String> {
    let plan = stage.plan(sample_at(sample, copy))?;
    run_planned(stage, &plan, sample, copy)
}

/// `run_on` with the copy's plan already made.
fn run_planned<S: StageOps>(
    stage: &S,
    plan: &S::Plan,
    sample: &mut Sample,
    copy: u32,
) -> Result<(), String> {
    let (image, label) = sample.parts();
    stage.apply_image(plan, image)?;
    stage.apply_label(plan, label)?;
    record_copy(stage, plan, sample, copy);
    Ok(())
}

/// The drawn parameters and, for copies 1, 2, ..., the key `key@copy`.
fn record_copy<S: StageOps>(stage: &S, plan: &S::Plan, sample: &mut Sample, copy: u32) {
    if let Some(drawn) = stage.drawn(plan) {
        sample.augment = Some(drawn);
    }
    if copy > 0 {
        sample.pair.key = format!("{}@{copy}", sample.pair.key);
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
