//! `segprep verify`: reads again every input file a build recorded (its `inputs.jsonl`) and names
//! each whose bytes changed since the build (another size or sha256) or that is gone, so a dataset
//! that drifted under its shards is found before the next build or paper.
use rayon::prelude::*;
use sha2::Digest;
use std::path::{Path, PathBuf};

use crate::engine::fingerprint::{input_roots, resolve};
use crate::engine::output::OutputDir;
use crate::error::{Error, Result};
use crate::index::{BuildFiles, Index, InputFile, PairInputs};
use crate::pipeline::Pipeline;
use crate::progress::Progress;

/// An input file that is no longer what the build read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The file (its URL for an object-store input).
    pub file: PathBuf,
    pub key: String,
    pub what: String,
}

#[derive(Debug)]
pub struct Verified {
    pub pairs: usize,
    pub files: usize,
    /// In the build's pair order.
    pub changed: Vec<Changed>,
}

/// Checks the inputs of the build in `out_dir` (local or a URL) against its record, reading them
/// where `p` says the inputs are.
pub fn verify(p: &Pipeline, out_dir: &Path, progress: &dyn Progress) -> Result<Verified> {
    let pairs = recorded_inputs(out_dir)?;
    let roots = input_roots(p);
    let files: Vec<(&str, &InputFile, Option<PathBuf>)> = pairs
        .iter()
        .flat_map(|pair| pair.files.iter().map(move |f| (pair.key.as_str(), f)))
        .map(|(key, f)| (key, f, resolve(&roots, f)))
        .collect();
    let present = files.iter().filter_map(|(_, _, path)| path.as_deref());
    crate::storage::mirror::prefetch(present.filter(|path| path.exists()), progress)?;
    progress.start("verifying inputs", files.len() as u64);
    let changed: Vec<Option<Changed>> = files
        .par_iter()
        .map(|(key, recorded, path)| {
            let found = check(recorded, path.as_deref());
            progress.advance(1);
            found.map(|what| Changed {
                file: path.as_deref().map_or_else(
                    || PathBuf::from(format!("{}/{}", recorded.input, recorded.file)),
                    crate::storage::mirror::origin,
                ),
                key: key.to_string(),
                what,
            })
        })
        .collect();
    progress.finish();
    Ok(Verified {
        pairs: pairs.len(),
        files: files.len(),
        changed: changed.into_iter().flatten().collect(),
    })
}

/// How a file differs from its record, or `None` when it holds the recorded bytes.
fn check(recorded: &InputFile, path: Option<&Path>) -> Option<String> {
    let Some(path) = path else {
        return Some(format!(
            "recorded under the input `{}`, which this pipeline does not have",
            recorded.input
        ));
    };
    let Ok(meta) = std::fs::metadata(path) else {
        return Some("missing: the build read it, it is gone".into());
    };
    if meta.len() != recorded.bytes {
        return Some(format!(
            "changed since the build: {} bytes, the build read {}",
            meta.len(),
            recorded.bytes
        ));
    }
    match crate::storage::atomic::sha256_of(path) {
        Ok((_, sha)) if sha == recorded.sha256 => None,
        Ok(_) => Some("changed since the build: same size, other bytes (sha256 differs)".into()),
        Err(e) => Some(format!("cannot read it: {e}")),
    }
}

/// The build's `inputs.jsonl`, checked against the sha256 its index records.
fn recorded_inputs(out_dir: &Path) -> Result<Vec<PairInputs>> {
    let out = OutputDir::open(out_dir)?;
    let (names, text) = BuildFiles::both()
        .into_iter()
        .find_map(|names| Some(names).zip(out.read_text(names.index).transpose()))
        .ok_or_else(|| {
            Error::data(
                out_dir,
                "verify",
                "no index.json: not a finished segprep build (run the build, or merge its workers)",
            )
        })?;
    let index_path = out_dir.join(names.index);
    let index = Index::parse(text?.as_bytes(), &index_path, "verify")?;
    let record = index.inputs.ok_or_else(|| {
        Error::data(
            &index_path,
            "verify",
            "this build records no input fingerprints (an earlier segprep made it); build it again to verify its inputs later",
        )
    })?;
    let path = out_dir.join(&record.file);
    let text = out
        .read_text(&record.file)?
        .ok_or_else(|| Error::data(&path, "verify", "missing, though index.json lists it"))?;
    if hex::encode(sha2::Sha256::digest(text.as_bytes())) != record.sha256 {
        return Err(Error::data(
            &path,
            "verify",
            "its sha256 differs from index.json's record: the build folder was changed",
        ));
    }
    text.lines()
        .map(|line| {
            serde_json::from_str(line)
                .map_err(|e| Error::data(&path, "verify", format!("not a valid line: {e}")))
        })
        .collect()
}
