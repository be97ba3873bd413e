//! `index.json`: everything needed to trust and reuse a build: versions, the pipeline and its hash,
//! classes, stage values (standardization included), the shapes, and each file with its sha256.
//! Written last, atomically: a folder without it is not a finished build.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::classes::Class;
use crate::error::{Error, Result};
use crate::sample::PixelType;

/// A build's own files beside its shards. Parquet builds name them with a leading `_` (as Spark's
/// `_SUCCESS` and `_metadata`), which Parquet folder readers skip, so that
/// `pyarrow.dataset.dataset(OUT)` reads the folder as its shards alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildFiles {
    pub index: &'static str,
    pub stats: &'static str,
    pub errors: &'static str,
    pub inputs: &'static str,
}

const PLAIN: BuildFiles = BuildFiles {
    index: "index.json",
    stats: "stats.json",
    errors: "errors.jsonl",
    inputs: "inputs.jsonl",
};
const PARQUET: BuildFiles = BuildFiles {
    index: "_index.json",
    stats: "_stats.json",
    errors: "_errors.jsonl",
    inputs: "_inputs.jsonl",
};

impl BuildFiles {
    /// The names a build of `format` writes.
    pub fn for_format(format: &str) -> BuildFiles {
        match format {
            "parquet" => PARQUET,
            _ => PLAIN,
        }
    }

    /// The names of the build in `dir`: Parquet's where its index is, else the plain ones (also
    /// for a folder that holds no index yet, so messages name `index.json`).
    pub fn in_dir(dir: &Path) -> BuildFiles {
        match dir.join(PARQUET.index).exists() && !dir.join(PLAIN.index).exists() {
            true => PARQUET,
            false => PLAIN,
        }
    }

    /// Every name either kind of build uses.
    pub fn every_name() -> [&'static str; 8] {
        [
            PLAIN.index,
            PLAIN.stats,
            PLAIN.errors,
            PLAIN.inputs,
            PARQUET.index,
            PARQUET.stats,
            PARQUET.errors,
            PARQUET.inputs,
        ]
    }

    /// Both kinds, plain first (for readers of a remote build, which cannot look first).
    pub fn both() -> [BuildFiles; 2] {
        [PLAIN, PARQUET]
    }
}

/// A written file, as recorded in `index.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileRecord {
    pub file: String,
    pub split: String,
    pub samples: usize,
    pub bytes: u64,
    pub sha256: String,
}

/// How a file differs from its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileProblem {
    Missing,
    Size { found: u64, recorded: u64 },
    Sha256,
}

impl FileRecord {
    /// Whether the file at `path` has the recorded size and sha256.
    pub fn is_intact_at(&self, path: &Path) -> bool {
        self.check_at(path).is_ok()
    }

    /// The file at `path` against the record: the size first, so a file of another size is not
    /// hashed.
    pub fn check_at(&self, path: &Path) -> Result<(), FileProblem> {
        let found = std::fs::metadata(path)
            .map_err(|_| FileProblem::Missing)?
            .len();
        self.check_size(found)?;
        match crate::storage::atomic::sha256_of(path) {
            Ok((_, sha)) if sha == self.sha256 => Ok(()),
            // unreadable counts as not the recorded content
            _ => Err(FileProblem::Sha256),
        }
    }

    /// A file's bytes (an object read back from a store) against the record.
    pub fn check_bytes(&self, bytes: &[u8]) -> Result<(), FileProblem> {
        use sha2::Digest;
        self.check_size(bytes.len() as u64)?;
        match hex::encode(sha2::Sha256::digest(bytes)) == self.sha256 {
            true => Ok(()),
            false => Err(FileProblem::Sha256),
        }
    }

    fn check_size(&self, found: u64) -> Result<(), FileProblem> {
        match found == self.bytes {
            true => Ok(()),
            false => Err(FileProblem::Size {
                found,
                recorded: self.bytes,
            }),
        }
    }
}

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
    /// `inputs.jsonl`: every built pair's input files with their sizes and sha256, what
    /// `segprep verify` checks the inputs against. Absent in builds of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<InputsRecord>,
}

/// The inputs file of a build, as `index.json` records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InputsRecord {
    pub file: String,
    /// Pairs listed (one line each).
    pub pairs: usize,
    pub bytes: u64,
    pub sha256: String,
}

/// One line of `inputs.jsonl`: a built pair's key and its input files.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PairInputs {
    pub key: String,
    pub files: Vec<InputFile>,
}

/// An input file as read by the build: the configured input it is under (`images`, `labels`,
/// `bands.1`, ...; empty when under none) and its path there, so the record is the same whether
/// the folder was local, mounted elsewhere or an object-store URL.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InputFile {
    pub input: String,
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
}

impl Index {
    /// Reads the index of the finished build in `dir` (`index.json`, or a Parquet build's
    /// `_index.json`): the one typed reader for build, merge, stats, apply and restore. `stage`
    /// and `hint` go into the error, which names the file.
    pub fn read(dir: &Path, stage: &str, hint: &str) -> Result<(PathBuf, Index)> {
        let path = dir.join(BuildFiles::in_dir(dir).index);
        let text = std::fs::read(&path)
            .map_err(|e| Error::data(&path, stage, format!("cannot read it ({e}); {hint}")))?;
        let index = Index::parse(&text, &path, stage)?;
        Ok((path, index))
    }

    /// An index.json's bytes, read from `path` (a file or an object's URL, for the error).
    pub fn parse(bytes: &[u8], path: &Path, stage: &str) -> Result<Index> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::data(path, stage, format!("not a segprep index.json: {e}")))
    }
}
