//! `index.json`: everything needed to trust and reuse a build: versions, the pipeline and its hash,
//! classes, stage values (standardization included), the shapes, and each file with its sha256.
//! Written last, atomically: a folder without it is not a finished build.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::FileRecord;
use crate::pipeline::classes::Class;
use crate::sample::PixelType;

pub const INDEX_FILE: &str = "index.json";
pub const STATS_FILE: &str = "stats.json";
pub const ERRORS_FILE: &str = "errors.jsonl";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArrayInfo {
    pub dtype: PixelType,
    /// The size of every sample, or `null` when the layout allows sizes to vary (`huggingface`).
    pub height: Option<u32>,
    pub width: Option<u32>,
    pub bands: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SplitSummary {
    pub samples: usize,
    pub files: usize,
    /// The split's sample size (splits may differ, e.g. after an augment crop); `null` when sizes vary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    pub segprep_version: String,
    pub pipeline_hash: String,
    /// sha256 over the sorted sample keys and their file names: which inputs were used.
    pub inputs_sha256: String,
    pub pipeline: serde_json::Value,
    pub format: String,
    pub layout: String,
    pub input_classes: Vec<Class>,
    pub classes: Vec<Class>,
    pub ignore_index: u16,
    pub image: ArrayInfo,
    pub label_dtype: PixelType,
    pub stages: Vec<serde_json::Value>,
    pub splits: BTreeMap<String, SplitSummary>,
    pub unpaired_skipped: usize,
    /// Samples left out under `on_error = "skip"`, listed in errors.jsonl.
    pub skipped_samples: usize,
    pub warnings: Vec<String>,
    pub files: Vec<FileRecord>,
}
