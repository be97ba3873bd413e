//! What `segprep apply` writes beside its arrays, and `segprep restore` reads: `apply.json` (which
//! build, which format) and `samples.jsonl`, one line per image with its original size and the
//! geometry applied, so a prediction can be taken back to the original pixels.
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sample::Standardization;
use crate::stages::geometry::GeometryStep;

pub const APPLY_FILE: &str = "apply.json";
pub const SAMPLES_FILE: &str = "samples.jsonl";
/// Written first into every apply output folder: it marks the folder as segprep apply's.
pub const APPLY_MARKER: &str = ".segprep-apply";

/// `apply.json`: written last, so a folder without it is not a finished apply run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyMeta {
    pub segprep_version: String,
    /// The build whose stages were applied, as given on the command line.
    pub build: PathBuf,
    pub pipeline_hash: String,
    /// `npz` (stacked files of `batch` images of one size) or `npy` (one file per image).
    pub format: String,
    pub images: usize,
    pub files: usize,
    /// Images left out (unreadable) with `[run] on_error = "skip"`: key and reason.
    pub skipped: Vec<(String, String)>,
}

/// One image of an apply run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SampleRecord {
    pub key: String,
    /// The image files (band order).
    pub files: Vec<PathBuf>,
    /// The array file holding it (relative to the apply folder) and its position there.
    pub output: String,
    pub index: usize,
    /// [width, height] after decoding (EXIF orientation applied when the build applied it).
    pub original_size: [u32; 2],
    /// [width, height] of the prepared array.
    pub size: [u32; 2],
    /// The EXIF orientation that was applied, if any.
    pub exif: Option<String>,
    /// Every size change, in order: undo them in reverse to return to `original_size`.
    pub geometry: Vec<GeometryStep>,
    /// `standardize = per_image`: the mean and std used.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub standardization: Option<Standardization>,
}

/// Reads `apply.json` and `samples.jsonl` from an apply folder.
pub fn read(dir: &Path) -> Result<(ApplyMeta, Vec<SampleRecord>)> {
    let meta_path = dir.join(APPLY_FILE);
    let text = std::fs::read_to_string(&meta_path).map_err(|e| {
        // the marker says segprep apply wrote here: its last run did not finish
        let why = match dir.join(APPLY_MARKER).exists() {
            true => "the last `segprep apply` into this folder did not finish (apply.json is \
                     written last); run it again"
                .to_string(),
            false => format!("cannot read it ({e}); give the folder `segprep apply --out` wrote"),
        };
        Error::data(&meta_path, "restore", why)
    })?;
    let meta: ApplyMeta = serde_json::from_str(&text)
        .map_err(|e| Error::data(&meta_path, "restore", format!("not an apply.json: {e}")))?;
    let path = dir.join(SAMPLES_FILE);
    let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, "restore", e))?;
    let mut records = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io(&path, "restore", e))?;
        let record = serde_json::from_str(&line)
            .map_err(|e| Error::data(&path, "restore", format!("line {}: {e}", n + 1)))?;
        records.push(record);
    }
    Ok((meta, records))
}
