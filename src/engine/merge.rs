//! The derived files of a build (`stats.json`, `errors.jsonl`, then `index.json`), written from the
//! index base and the shard records alone. A single-machine build calls this at its end; `segprep
//! merge` calls it once every worker is done, after checking every shard is present and intact.
use rayon::prelude::*;
use std::path::Path;

use super::index::{complete, IndexBase, BASE_FILE};
use super::output::{OutputDir, ShardProblem, ShardRecord, STATE_DIR};
use crate::classes::ClassSet;
use crate::error::{Error, Result};
use crate::index::{BuildFiles, Index, InputsRecord};
use crate::stats::counts::SplitCounts;
use crate::stats::stats_file::Stats;

/// Writes the derived files from every shard's record; index.json last, so its presence means the
/// build is whole.
pub fn write_derived(
    out: &OutputDir,
    base: &IndexBase,
    records: &[Option<ShardRecord>],
) -> Result<Index> {
    let mut index = complete(base, records);
    let classes = ClassSet {
        classes: index.classes.clone(),
        ignore_index: index.ignore_index,
    };
    let mut stats = Stats::new(index.ignore_index);
    let built = base.shard_splits.iter().zip(records);
    for (split, record) in built.filter_map(|(s, r)| Some(s).zip(r.as_ref())) {
        stats
            .splits
            .entry(split.clone())
            .or_insert_with(|| SplitCounts::new(&classes))
            .merge(&record.counts);
    }
    let errors: String = records
        .iter()
        .flatten()
        .flat_map(|r| &r.skipped)
        .map(|s| serde_json::to_string(s).expect("serializes") + "\n")
        .collect();
    stats.weigh();
    let names = BuildFiles::for_format(&index.format);
    index.inputs = Some(write_inputs(out, names.inputs, records)?);
    out.write_text(names.stats, &to_json(&stats))?;
    if errors.is_empty() {
        out.remove(names.errors)?;
    } else {
        out.write_text(names.errors, &errors)?;
    }
    out.write_text(names.index, &to_json(&index))?;
    Ok(index)
}

/// Writes every built pair's input files, one JSON line per pair in plan order, and says what
/// index.json records of the file.
fn write_inputs(
    out: &OutputDir,
    name: &str,
    records: &[Option<ShardRecord>],
) -> Result<InputsRecord> {
    use sha2::Digest;
    let pairs: Vec<String> = records
        .iter()
        .flatten()
        .flat_map(|r| &r.inputs)
        .map(|pair| serde_json::to_string(pair).expect("serializes") + "\n")
        .collect();
    let text = pairs.concat();
    out.write_text(name, &text)?;
    Ok(InputsRecord {
        file: name.to_string(),
        pairs: pairs.len(),
        bytes: text.len() as u64,
        sha256: hex::encode(sha2::Sha256::digest(text.as_bytes())),
    })
}

fn base_rel() -> String {
    format!("{STATE_DIR}/{BASE_FILE}")
}

pub fn write_base(out: &OutputDir, base: &IndexBase) -> Result<()> {
    out.write_text(&base_rel(), &to_json(base))
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).expect("manifest serializes") + "\n"
}

/// What `segprep merge` found and wrote.
pub struct MergeSummary {
    pub index: Index,
    pub shards: usize,
}

/// Checks that every logical shard of a worker build is complete (every file present with the
/// size and sha256 its record gives), then writes the derived files.
pub fn merge(dir: &Path, threads: Option<usize>) -> Result<MergeSummary> {
    let out = OutputDir::open(dir)?;
    let base_path = dir.join(STATE_DIR).join(BASE_FILE);
    let text = out.read_text(&base_rel())?.ok_or_else(|| {
        Error::data(
            &base_path,
            "merge",
            format!("not found: {} is not a segprep build, or no worker has started yet; run the workers first", dir.display()),
        )
    })?;
    let base: IndexBase = serde_json::from_str(&text).map_err(|e| {
        Error::data(
            &base_path,
            "merge",
            format!("not a valid index base ({e}); was it written by another segprep version?"),
        )
    })?;
    let shards = base.shard_splits.len();
    let checked: Vec<_> = super::thread_pool(threads)?.install(|| {
        (0..shards)
            .into_par_iter()
            .map(|s| out.check_shard(s))
            .collect()
    });
    let problems: Vec<(usize, ShardProblem)> = checked
        .iter()
        .enumerate()
        .filter_map(|(s, c)| c.as_ref().err().map(|p| (s, p.clone())))
        .collect();
    if !problems.is_empty() {
        return Err(missing_shards(dir, &base, &problems));
    }
    let records: Vec<Option<ShardRecord>> = checked.into_iter().map(Result::ok).collect();
    // every worker is done: partial files are leftovers of killed ones
    if !crate::storage::is_url(dir) {
        crate::storage::atomic::remove_all_partials(dir);
    }
    let index = write_derived(&out, &base, &records)?;
    Ok(MergeSummary { index, shards })
}

fn missing_shards(dir: &Path, base: &IndexBase, missing: &[(usize, ShardProblem)]) -> Error {
    let listed: Vec<String> = missing
        .iter()
        .take(20)
        .map(|(s, problem)| format!("{s} ({}): {problem}", base.shard_splits[*s]))
        .collect();
    let more = if missing.len() > 20 { ", ..." } else { "" };
    Error::Data {
        file: dir.to_path_buf(),
        stage: "merge".into(),
        message: format!(
            "{} of {} logical shards are missing or damaged: {}{more}. Shard s belongs to worker s % W; rerun those workers (a rerun builds only what is missing), then merge again",
            missing.len(),
            base.shard_splits.len(),
            listed.join("; ")
        ),
    }
}
