//! The output folder's life: what a build may do with it, the lock that keeps two builds apart, and
//! the per-shard records that let an interrupted build resume.
//!
//! Layout of the bookkeeping, beside the shards:
//! - `.segprep/plan.json`: pipeline hash and inputs hash of the build the folder belongs to;
//! - `.segprep/records/{i:05}.json`: written after shard `i`'s files are complete (files with size
//!   and sha256, class counts, skipped samples). A shard with a valid record is not rebuilt;
//! - `.segprep/lock`: the pid of the running build.
//!
//! `index.json`, `stats.json` and `errors.jsonl` are derived from the records at the end, so a
//! resumed build ends byte-identical to an uninterrupted one.
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::path::{Path, PathBuf};

use super::lock::{other_process_runs, Lock};
use crate::error::{Error, Result};
use crate::index::BuildFiles;
use crate::index::{FileProblem, FileRecord, Index};
use crate::stats::counts::SplitCounts;
use crate::storage::atomic;
use crate::storage::Remote;

pub const STATE_DIR: &str = ".segprep";
/// The lock file inside the state folder.
const LOCK_FILE: &str = "lock";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStamp {
    pub pipeline_hash: String,
    pub inputs_sha256: String,
    /// Sizes and modification times of the inputs: a file edited in place is a changed input.
    /// Machine-specific, so workers (which may run on other machines) do not compare it.
    pub inputs_state: String,
    /// Sizes of the inputs alone: what workers on other machines compare.
    #[serde(default)]
    pub inputs_sizes: String,
    /// The fixed shard count workers share (`num_shards`), if any.
    #[serde(default)]
    pub num_shards: Option<usize>,
    #[serde(default)]
    pub segprep_version: String,
}

impl PlanStamp {
    /// What every worker must agree on: pipeline, input list and sizes, partition and version.
    fn same_plan(&self, other: &PlanStamp) -> bool {
        (
            &self.pipeline_hash,
            &self.inputs_sha256,
            &self.inputs_sizes,
            self.num_shards,
            &self.segprep_version,
        ) == (
            &other.pipeline_hash,
            &other.inputs_sha256,
            &other.inputs_sizes,
            other.num_shards,
            &other.segprep_version,
        )
    }

    fn mismatch(&self, recorded: &PlanStamp, file: &Path) -> Error {
        let mut differ = Vec::new();
        if self.pipeline_hash != recorded.pipeline_hash {
            differ.push(format!(
                "pipeline hash {} (recorded {})",
                short(&self.pipeline_hash),
                short(&recorded.pipeline_hash)
            ));
        }
        if self.inputs_sha256 != recorded.inputs_sha256 {
            differ.push(format!(
                "input-list hash {} (recorded {})",
                short(&self.inputs_sha256),
                short(&recorded.inputs_sha256)
            ));
        }
        if self.inputs_sizes != recorded.inputs_sizes {
            differ.push(format!(
                "input sizes hash {} (recorded {}): this worker reads other bytes for the same files",
                short(&self.inputs_sizes),
                short(&recorded.inputs_sizes)
            ));
        }
        if self.num_shards != recorded.num_shards {
            let shown = |n: Option<usize>| n.map_or("not fixed".to_string(), |n| n.to_string());
            differ.push(format!(
                "num_shards {} (recorded {})",
                shown(self.num_shards),
                shown(recorded.num_shards)
            ));
        }
        if self.segprep_version != recorded.segprep_version {
            differ.push(format!(
                "segprep {} (recorded {})",
                self.segprep_version, recorded.segprep_version
            ));
        }
        Error::Usage(format!(
            "this worker's plan differs from the one recorded in {}: {}. Every worker must run the same pipeline file on the same inputs; to start a new build, use an empty output folder",
            file.display(),
            differ.join(", ")
        ))
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// A sample left out under `on_error = "skip"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedSample {
    pub key: String,
    pub file: PathBuf,
    pub stage: String,
    pub message: String,
}

/// Why a shard does not count as done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardProblem {
    /// No record: the shard was never finished (or its record is unreadable).
    NotFinished,
    File {
        file: String,
        what: FileProblem,
    },
}

impl std::fmt::Display for ShardProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShardProblem::NotFinished => write!(f, "not finished"),
            ShardProblem::File { file, what } => match what {
                FileProblem::Missing => write!(f, "{file} is missing"),
                FileProblem::Size { found, recorded } => {
                    write!(f, "{file} is {found} bytes, its record says {recorded}")
                }
                FileProblem::Sha256 => write!(
                    f,
                    "{file}'s sha256 differs from its record (the file was altered)"
                ),
            },
        }
    }
}

/// What a completed shard leaves behind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub files: Vec<FileRecord>,
    pub counts: SplitCounts,
    pub skipped: Vec<SkippedSample>,
    /// The input files of the shard's pairs, in plan order (records of earlier versions: none).
    #[serde(default)]
    pub inputs: Vec<crate::index::PairInputs>,
}

/// An output folder claimed by this build. Dropping it releases the lock.
pub struct OutputDir {
    /// Where shards are written: the folder itself, or the local staging folder of a URL output.
    pub dir: PathBuf,
    /// The lock of a single-machine build; workers take none. Released when dropped.
    _lock: Option<Lock>,
    /// An object-store output: finished shards are published there, then removed from `dir`.
    remote: Option<Remote>,
}

impl OutputDir {
    /// Takes the lock, then checks the folder: a resume of the same plan, a replaceable earlier
    /// build, or a refusal. Nothing of an earlier build is removed before the lock is ours.
    pub fn claim(
        dir: &Path,
        stamp: &PlanStamp,
        inputs: &[PathBuf],
        force: bool,
    ) -> Result<OutputDir> {
        refuse_inside_inputs(dir, inputs)?;
        let state = dir.join(STATE_DIR);
        let foreign = || {
            Error::Usage(format!("output folder {} is not empty and is not a segprep build; choose an empty or new folder", dir.display()))
        };
        // checked before the state folder is made, so a foreign folder is left untouched
        if !state.join("plan.json").exists() && !holds_only_state(dir) {
            return Err(foreign());
        }
        std::fs::create_dir_all(&state).map_err(|e| unwritable(dir, e))?;
        let lock = Lock::take(&state.join(LOCK_FILE))?;
        let previous = read_stamp(&state.join("plan.json"));
        // empty, or holding only segprep's state (a build that stopped before its first shard)
        let empty = holds_only_state(dir);
        let same = previous.as_ref() == Some(stamp);
        let different = || {
            Error::Usage(format!("output folder {} holds a build of a different pipeline or different inputs; pass --force to replace it", dir.display()))
        };
        match (previous.is_some(), same) {
            (false, _) if !empty => return Err(foreign()),
            (true, true) if !force => {} // resume: records are checked shard by shard
            // a different build with nothing complete (it failed early) is not worth keeping
            (true, false) if !force && holds_results(dir) => return Err(different()),
            _ => remove_previous_build(dir)?,
        }
        std::fs::create_dir_all(state.join("records")).map_err(|e| unwritable(dir, e))?;
        // the lock is ours: any partial file is a killed build's leftover
        atomic::remove_all_partials(dir);
        atomic::write_text(
            &state.join("plan.json"),
            &serde_json::to_string_pretty(stamp).expect("stamp serializes"),
        )?;
        Ok(OutputDir {
            dir: dir.to_path_buf(),
            _lock: Some(lock),
            remote: None,
        })
    }

    /// Joins a sharded build as one of its workers. No lock: workers (and a duplicate of a worker a
    /// scheduler retried) may share the folder, since each shard's bytes are fixed by the plan and
    /// written atomically. The first worker records the plan; every later one must match it.
    pub fn join(dir: &Path, stamp: &PlanStamp, inputs: &[PathBuf]) -> Result<OutputDir> {
        refuse_inside_inputs(dir, inputs)?;
        std::fs::create_dir_all(dir.join(STATE_DIR).join("records"))
            .map_err(|e| unwritable(dir, e))?;
        let out = OutputDir {
            dir: dir.to_path_buf(),
            _lock: None,
            remote: None,
        };
        out.agree_on_plan(stamp)?;
        Ok(out)
    }

    /// An object-store output (`s3://bucket/prefix`, ...), alone or as a worker: no lock exists
    /// across machines, so like workers it relies on the plan check and atomic puts. Shards are
    /// staged in a local folder of this process and published when whole.
    pub fn remote(url: &str, stamp: &PlanStamp) -> Result<OutputDir> {
        let remote = Remote::open(url)?;
        let key = hex::encode(sha2::Sha256::digest(url.as_bytes()));
        let prefix = format!("segprep-staging-{}-", &key[..16]);
        remove_dead_staging(&prefix);
        let staging = std::env::temp_dir().join(format!("{prefix}{}", std::process::id()));
        std::fs::create_dir_all(staging.join(STATE_DIR).join("records"))
            .map_err(|e| Error::write(&staging, e))?;
        let out = OutputDir {
            dir: staging,
            _lock: None,
            remote: Some(remote),
        };
        out.agree_on_plan(stamp)?;
        Ok(out)
    }

    /// What lets independent processes share an output: the first records its plan (an exclusive
    /// create: hard link locally, conditional put in a store), every later one must match it. An
    /// output without a plan must hold nothing but segprep's state.
    fn agree_on_plan(&self, stamp: &PlanStamp) -> Result<()> {
        let rel = format!("{STATE_DIR}/plan.json");
        let at = self.location().join(&rel);
        let read = || -> Result<Option<PlanStamp>> {
            Ok(self
                .read_text(&rel)?
                .and_then(|t| serde_json::from_str(&t).ok()))
        };
        if read()?.is_none() && !self.holds_only_state()? {
            return Err(Error::Usage(format!(
                "output {} is not empty and holds no segprep plan; workers and object-store builds need an empty or new folder or prefix",
                self.location().display()
            )));
        }
        let text = serde_json::to_string_pretty(stamp).expect("stamp serializes");
        match &self.remote {
            Some(r) => r.create(&rel, text.into_bytes())?,
            None => atomic::create_exclusive(&self.dir.join(&rel), text.as_bytes())?,
        };
        match read()? {
            Some(recorded) if stamp.same_plan(&recorded) => Ok(()),
            Some(recorded) => Err(stamp.mismatch(&recorded, &at)),
            None => Err(Error::data(
                at,
                "output",
                "the plan file is not valid JSON; empty the output and start the workers again",
            )),
        }
    }

    /// Whether the output holds nothing but segprep's state folder.
    fn holds_only_state(&self) -> Result<bool> {
        Ok(match &self.remote {
            Some(r) => r
                .list()?
                .iter()
                .all(|o| o.rel.starts_with(&format!("{STATE_DIR}/"))),
            None => holds_only_state(&self.dir),
        })
    }

    /// A finished or worker-built output opened to read its records (`segprep merge`); no lock.
    pub fn open(dir: &Path) -> Result<OutputDir> {
        let remote = match crate::storage::is_url(dir) {
            true => Some(Remote::open(&dir.to_string_lossy())?),
            false => None,
        };
        Ok(OutputDir {
            dir: dir.to_path_buf(),
            _lock: None,
            remote,
        })
    }

    fn record_rel(shard: usize) -> String {
        format!("{STATE_DIR}/records/{shard:05}.json")
    }

    /// The record of a shard whose files are all present and intact (each file's size, then its
    /// sha256, as the record gives them; in an object store the object is read back to hash it),
    /// or what is wrong with the shard.
    pub fn check_shard(&self, shard: usize) -> std::result::Result<ShardRecord, ShardProblem> {
        let text = self
            .read_text(&Self::record_rel(shard))
            .ok()
            .flatten()
            .ok_or(ShardProblem::NotFinished)?;
        let record: ShardRecord =
            serde_json::from_str(&text).map_err(|_| ShardProblem::NotFinished)?;
        for f in &record.files {
            let checked = match &self.remote {
                None => f.check_at(&self.dir.join(&f.file)),
                Some(r) => match r.get(&f.file).ok().flatten() {
                    Some(bytes) => f.check_bytes(&bytes),
                    None => Err(FileProblem::Missing),
                },
            };
            checked.map_err(|what| ShardProblem::File {
                file: f.file.clone(),
                what,
            })?;
        }
        Ok(record)
    }

    /// The record of a shard that `check_shard` finds whole, if any.
    pub fn valid_record(&self, shard: usize) -> Option<ShardRecord> {
        self.check_shard(shard).ok()
    }

    /// Makes a finished shard count: publishes its files (object store), then writes its record.
    pub fn commit_shard(&self, shard: usize, record: &ShardRecord) -> Result<()> {
        if let Some(remote) = &self.remote {
            for f in &record.files {
                let local = self.dir.join(&f.file);
                remote.put_file(&f.file, &local)?;
                let _ = std::fs::remove_file(local);
            }
        }
        self.write_text(
            &Self::record_rel(shard),
            &serde_json::to_string(record).expect("record serializes"),
        )
    }

    /// Writes a small file (JSON) under the output, atomically.
    pub fn write_text(&self, rel: &str, text: &str) -> Result<()> {
        match &self.remote {
            Some(r) => r.put(rel, text.as_bytes().to_vec()),
            None => atomic::write_text(&self.dir.join(rel), text),
        }
    }

    /// A small file under the output, or `None` when it does not exist.
    pub fn read_text(&self, rel: &str) -> Result<Option<String>> {
        let bytes = match &self.remote {
            Some(r) => r.get(rel)?,
            None => match std::fs::read(self.dir.join(rel)) {
                Ok(b) => Some(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(Error::output(self.dir.join(rel), "output", e.to_string())),
            },
        };
        Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    pub fn remove(&self, rel: &str) -> Result<()> {
        match &self.remote {
            Some(r) => r.delete(rel),
            None => {
                let _ = std::fs::remove_file(self.dir.join(rel));
                Ok(())
            }
        }
    }

    /// Where the output is, for messages: the URL of an object-store output.
    pub fn location(&self) -> PathBuf {
        match &self.remote {
            Some(r) => PathBuf::from(&r.url),
            None => self.dir.clone(),
        }
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if self.remote.is_some() && self.dir.starts_with(std::env::temp_dir()) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The error of an output folder that cannot be written in.
fn unwritable(dir: &Path, e: std::io::Error) -> Error {
    Error::output(dir, "output", format!("cannot write in the output folder ({e}); make it writable or choose another output.dir"))
}

/// Removes the staging folders (`{prefix}{pid}` in the temporary folder) of builds to this URL
/// that were killed: their process no longer runs here.
fn remove_dead_staging(prefix: &str) {
    let temp = std::env::temp_dir();
    for entry in std::fs::read_dir(&temp).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(prefix) else {
            continue;
        };
        let gone = pid.parse::<u32>().is_ok_and(|pid| !other_process_runs(pid));
        if gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether a folder is empty (or missing) but for segprep's state folder.
fn holds_only_state(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|e| e.flatten().all(|e| e.file_name() == STATE_DIR))
        .unwrap_or(true)
}

/// Whether a previous build left anything complete: a shard record or an index.
fn holds_results(dir: &Path) -> bool {
    let records = std::fs::read_dir(dir.join(STATE_DIR).join("records"))
        .map(|mut e| e.next().is_some())
        .unwrap_or(false);
    records || dir.join(BuildFiles::in_dir(dir).index).exists()
}

fn read_stamp(path: &Path) -> Option<PlanStamp> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The canonical form of a path that may not exist yet: its deepest existing ancestor canonicalized,
/// with the rest appended.
fn real_path(path: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut at = path;
    loop {
        let probe = if at.as_os_str().is_empty() {
            Path::new(".")
        } else {
            at
        };
        if let Ok(real) = std::fs::canonicalize(probe) {
            return missing
                .iter()
                .rev()
                .fold(real, |acc: PathBuf, part| acc.join(part));
        }
        match (at.file_name(), at.parent()) {
            (Some(name), Some(parent)) => {
                missing.push(name.to_os_string());
                at = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

fn refuse_inside_inputs(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    let out_real = real_path(out);
    for input in inputs {
        let dir = if input.is_file() {
            input.parent().unwrap_or(input)
        } else {
            input.as_path()
        };
        if let Ok(real) = std::fs::canonicalize(dir) {
            if out_real.starts_with(&real) {
                return Err(Error::Usage(format!(
                    "output folder {} is inside the input folder {}; choose another output.dir",
                    out.display(),
                    dir.display()
                )));
            }
        }
    }
    Ok(())
}

/// Deletes only what a previous build wrote: the files its records and index name, its derived
/// files and its state folder.
fn remove_previous_build(dir: &Path) -> Result<()> {
    let mut files: Vec<String> = Vec::new();
    let index_path = dir.join(BuildFiles::in_dir(dir).index);
    if let Ok(bytes) = std::fs::read(&index_path) {
        // an unreadable index names no files; the shard records below still do
        if let Ok(index) = Index::parse(&bytes, &index_path, "output") {
            files.extend(index.files.into_iter().map(|f| f.file));
        }
    }
    let records = dir.join(STATE_DIR).join("records");
    for entry in std::fs::read_dir(&records).into_iter().flatten().flatten() {
        let record: Option<ShardRecord> = std::fs::read_to_string(entry.path())
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        files.extend(
            record
                .into_iter()
                .flat_map(|r| r.files.into_iter().map(|f| f.file)),
        );
    }
    for f in files.iter().filter(|f| !f.contains("..")) {
        let _ = std::fs::remove_file(dir.join(f));
        atomic::remove_partials(&dir.join(f));
    }
    for name in BuildFiles::every_name() {
        let _ = std::fs::remove_file(dir.join(name));
    }
    // the state folder goes, but for the lock and the files other builds take it through
    let state = dir.join(STATE_DIR);
    for entry in std::fs::read_dir(&state).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(LOCK_FILE) {
            continue;
        }
        let path = entry.path();
        let removed = match path.is_dir() {
            true => std::fs::remove_dir_all(&path),
            false => std::fs::remove_file(&path),
        };
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::output(path, "output", e.to_string()))
            }
            _ => {}
        }
    }
    Ok(())
}
