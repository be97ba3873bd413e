//! The pipeline file as written: serde types only, no checking beyond shape.
//! `pipeline::resolve` turns these into the runtime pipeline and reports every problem at once.
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use crate::decode::label::{LabelFormat, UnknownPolicy};
use crate::decode::masks::OverlapPolicy;
use crate::decode::rules::{AlphaRule, ExifRule};
use crate::sink::{Compression, Layout, OutputFormat};
use crate::source::mvtec_ad::DefectClasses;
use crate::source::paths::PathPrefix;
use crate::source::UnpairedPolicy;
use crate::split::SplitConfig;
use crate::stages::StageConfig;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    pub input: InputConfig,
    pub labels: LabelsConfig,
    /// Stages, run in the order written.
    #[serde(default, rename = "stage")]
    pub stages: Vec<StageConfig>,
    pub split: Option<SplitConfig>,
    pub output: OutputConfig,
    #[serde(default)]
    pub run: RunConfig,
}

/// How a run treats bad samples.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    #[serde(default)]
    pub on_error: OnError,
    /// With `on_error = "skip"`: stop anyway after this many skipped samples. Default: no limit.
    pub max_errors: Option<usize>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// The first bad sample stops the run.
    #[default]
    Fail,
    /// Bad samples are left out, listed in errors.jsonl and counted in index.json.
    Skip,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// A folder searched recursively; a list of band folders stacked as channels in that order
    /// (`["rgb", "nir", "swir"]`, paired by name); a manifest (`.csv` / `.parquet` with
    /// `image,label[,split]` columns, or a `.txt` pair list); or, for the MVTec and instance
    /// formats, the dataset itself.
    pub images: ImagePaths,
    /// The label folder (required when `images` is a folder).
    pub labels: Option<PathBuf>,
    /// Stripped from an image's file stem to get the pairing key (e.g. `_leftImg8bit`).
    #[serde(default)]
    pub image_suffix: String,
    /// Label stem = key + this suffix (e.g. `_L`, `_mask`, `_gtFine_labelTrainIds`).
    #[serde(default)]
    pub label_suffix: String,
    #[serde(default)]
    pub unpaired: UnpairedPolicy,
    #[serde(default)]
    pub alpha: AlphaRule,
    /// Largest image (width x height) decoded; larger files are an error. Default 100 million.
    pub max_pixels: Option<u64>,
    /// Largest file read. Default 1 GiB.
    pub max_file_bytes: Option<ByteSize>,
    /// Manifests: allow image/label paths outside the manifest's folder (refused by default).
    #[serde(default)]
    pub allow_outside: bool,
    /// Rewrites paths written on another machine (manifests, pair lists, MVTec dictionaries):
    /// a path starting with `from` gets `to` instead, relative to the listing file's folder.
    pub path_prefix: Option<PathPrefix>,
    /// Only files with these extensions are images (e.g. `["jpg"]` when labels share the folder).
    pub image_extensions: Option<Vec<String>>,
    /// JPEG EXIF orientation: `apply` (rotate as a viewer would), `ignore` (raw pixels), `error`.
    #[serde(default)]
    pub exif: ExifRule,
    /// Decode JPEG photos at 1/2, 1/4 or 1/8 of their size (the format's scaled inverse DCT, as
    /// libjpeg's `scale_denom` and Pillow's `draft` do) when the first resize shrinks them by 2x or
    /// more. Off by default: faster, and slightly different pixels from full decoding + the same
    /// resize (docs/performance.md). Not written when off, so the pipeline hash is unchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub jpeg_reduce: bool,
    /// Convert every image to this many bands: 1 (grey, ITU-R 601 luma) or 3 (grey repeated).
    /// Without it, a dataset mixing band counts is an error listing the odd files.
    pub channels: Option<usize>,
}

/// One image folder or manifest, or several band folders.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ImagePaths {
    One(PathBuf),
    Bands(Vec<PathBuf>),
}

impl ImagePaths {
    pub fn all(&self) -> &[PathBuf] {
        match self {
            ImagePaths::One(p) => std::slice::from_ref(p),
            ImagePaths::Bands(v) => v,
        }
    }
}

impl<'de> Deserialize<'de> for ImagePaths {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let forms = "a folder or manifest path, or a list of band folders [\"rgb\", \"nir\"]";
        match crate::de::any(d)? {
            toml::Value::String(s) => Ok(ImagePaths::One(s.into())),
            toml::Value::Array(items) if !items.is_empty() => items
                .into_iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(PathBuf::from(s)),
                    other => Err(crate::de::expected(forms, &other)),
                })
                .collect::<Result<_, _>>()
                .map(ImagePaths::Bands),
            other => Err(crate::de::expected(forms, &other)),
        }
    }
}

impl InputConfig {
    /// How each image file is decoded.
    pub fn image_rules(&self) -> crate::decode::rules::ImageRules {
        crate::decode::rules::ImageRules {
            alpha: self.alpha,
            exif: self.exif,
            limits: self.limits(),
            jpeg_reduce: self.jpeg_reduce,
        }
    }

    pub fn limits(&self) -> crate::decode::DecodeLimits {
        let default = crate::decode::DecodeLimits::default();
        crate::decode::DecodeLimits {
            max_pixels: self.max_pixels.unwrap_or(default.max_pixels),
            max_file_bytes: self.max_file_bytes.map_or(default.max_file_bytes, |b| b.0),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsConfig {
    pub format: LabelFormat,
    /// A colour table file for `format = "rgb"`: `label_colors.txt` (`R G B name`) or `class_dict.csv` (`name,r,g,b`).
    pub colors: Option<PathBuf>,
    /// Class names (ids 0, 1, ...) or tables `{ id, name, color }`.
    pub classes: Option<Vec<ClassEntry>>,
    /// Shorthand for classes `class_0 .. class_{N-1}`.
    pub num_classes: Option<u32>,
    #[serde(default = "default_ignore_index")]
    pub ignore_index: u16,
    #[serde(default)]
    pub unknown: UnknownPolicy,
    /// For `format = "binary"`: the value that marks foreground (255 for 0/255 masks, 1 for 0/1).
    #[serde(default = "default_foreground")]
    pub foreground_value: u16,
    /// `mvtec_ad`: one class per defect folder (`per_type`) or a single `defect` class.
    #[serde(default)]
    pub defects: DefectClasses,
    /// `mvtec_ad`: image folders that have no mask and are all background.
    #[serde(default = "default_good")]
    pub good: Vec<String>,
    /// `instances`: mask folders inside each sample folder; one folder gives one foreground
    /// class, several give one class per folder, in this order.
    #[serde(default = "default_mask_folders")]
    pub mask_folders: Vec<String>,
    /// `instances` and `mvtec_ad`: what a pixel covered by two masks becomes.
    #[serde(default)]
    pub overlap: OverlapPolicy,
}

fn default_good() -> Vec<String> {
    vec!["good".into()]
}

fn default_mask_folders() -> Vec<String> {
    vec!["masks".into()]
}

fn default_ignore_index() -> u16 {
    255
}

fn default_foreground() -> u16 {
    255
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ClassEntry {
    Name(String),
    Full(FullClass),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FullClass {
    pub id: u16,
    pub name: String,
    pub color: Option<[u8; 3]>,
}

impl<'de> Deserialize<'de> for ClassEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match crate::de::any(d)? {
            toml::Value::String(name) => Ok(ClassEntry::Name(name)),
            toml::Value::Table(t) => toml::Value::Table(t)
                .try_into::<FullClass>()
                .map(ClassEntry::Full)
                .map_err(|e| {
                    serde::de::Error::custom(format!(
                        "class entry {{ id, name, color = [r, g, b] }}: {}",
                        e.message()
                    ))
                }),
            other => Err(crate::de::expected(
                "a class name or { id, name, color = [r, g, b] }",
                &other,
            )),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    #[serde(default)]
    pub format: OutputFormat,
    /// Default: `stacked` for npz, `huggingface` for parquet.
    pub layout: Option<Layout>,
    pub dir: PathBuf,
    /// Samples per shard. Default: as many as fit in `shard_bytes`.
    pub shard_samples: Option<usize>,
    /// Target uncompressed bytes per shard: an integer or a string like "256MiB". Default 256 MiB.
    pub shard_bytes: Option<ByteSize>,
    /// A fixed number of shards over all splits, whatever the sample size: the partition workers
    /// share (`--num-shards`). Overrides `shard_samples` and `shard_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_shards: Option<usize>,
    #[serde(default)]
    pub compression: Compression,
    #[serde(default)]
    pub label_dtype: LabelDtype,
    /// Prefix of Segmentation Gym file names (Gym's ROOT_STRING).
    pub gym_root: Option<String>,
    /// Parquet: target uncompressed pixel bytes per row group. Default 32 MiB.
    pub row_group_bytes: Option<ByteSize>,
    /// Where the augment stage runs: `build` (its copies are written) or `online` (the build
    /// stops before it and writes the prepared originals; a data loader augments them live).
    #[serde(default, skip_serializing_if = "AugmentAt::in_build")]
    pub augment: AugmentAt,
}

/// Where the augment stage (and the stages after it) run. Not written when `build`, so the hash
/// of a pipeline without the setting is what it always was.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AugmentAt {
    #[default]
    Build,
    /// In the data loader (`segprep.Pipeline(file, prepared=OUT)`), on a build of the stages
    /// before it.
    Online,
}

impl AugmentAt {
    pub fn in_build(&self) -> bool {
        *self == AugmentAt::Build
    }
}

impl OutputConfig {
    pub fn layout(&self) -> Layout {
        self.layout.unwrap_or(match self.format {
            OutputFormat::Npz => Layout::Stacked,
            OutputFormat::Parquet => Layout::Huggingface,
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelDtype {
    /// u8 when every class id and the ignore index fit, else u16.
    #[default]
    Auto,
    U8,
    U16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "u64")]
pub struct ByteSize(pub u64);

impl From<ByteSize> for u64 {
    fn from(b: ByteSize) -> u64 {
        b.0
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match crate::de::any(d)? {
            v @ toml::Value::Integer(_) => crate::de::unsigned(&v, "a size in bytes").map(ByteSize),
            toml::Value::String(s) => parse_byte_size(&s)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
            other => Err(crate::de::expected(
                "a size in bytes: a number or a string like \"256MiB\"",
                &other,
            )),
        }
    }
}

/// Parses "512", "64KiB", "256MiB", "2GB" (decimal units are powers of 1000, binary ones of 1024).
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size like \"256MiB\""))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}` (use B, KiB, MiB, GiB, KB, MB or GB)"
            ))
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("size `{text}` is too large"))
}
