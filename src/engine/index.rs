//! `index.json` (a base fixed before the shards, completed from their records) and the inputs hash.
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

use super::output::ShardRecord;
use crate::decode::is_jpeg;
use crate::index::{ArrayInfo, Index, SplitSummary};
use crate::pipeline::Pipeline;
use crate::sample::{LabelSource, Sample};
use crate::sink::ShardPlan;
use crate::source::Discovery;
use crate::stages::Stage;

/// sha256 over every input file's size and modification time: whether the inputs changed since a
/// build, without reading them. Machine-specific, so it stays out of index.json.
pub fn inputs_state_hash(found: &Discovery) -> String {
    hash_metadata(found, |meta| {
        let modified = meta
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        modified.to_le_bytes().to_vec()
    })
}

/// sha256 over every input file's size: what workers on other machines (where modification times
/// differ) can still compare, so a worker reading an older copy of a file of another size is
/// refused.
pub fn inputs_sizes_hash(found: &Discovery) -> String {
    hash_metadata(found, |_| Vec::new())
}

/// sha256 over each input file's size and what `more` adds from its metadata, in pair order. No
/// path: the same build run from another folder must match (names are in `inputs_hash`).
fn hash_metadata(
    found: &Discovery,
    more: impl Fn(Option<&std::fs::Metadata>) -> Vec<u8>,
) -> String {
    let mut h = Sha256::new();
    for pair in &found.pairs {
        for file in pair.files() {
            let meta = std::fs::metadata(file).ok();
            h.update(meta.as_ref().map_or(0, |m| m.len()).to_le_bytes());
            h.update(more(meta.as_ref()));
        }
    }
    hex::encode(h.finalize())
}

/// sha256 over the sorted sample keys, their file names and given splits: which inputs were used.
pub fn inputs_hash(found: &Discovery) -> String {
    let mut h = Sha256::new();
    for pair in &found.pairs {
        for part in [
            pair.key.as_str(),
            &file_names(&pair.files()),
            pair.split.as_deref().unwrap_or(""),
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
    }
    hex::encode(h.finalize())
}

fn file_names(files: &[&Path]) -> String {
    let names: Vec<String> = files
        .iter()
        .map(|p| {
            p.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    names.join("\u{1f}")
}

/// Everything `index.json` holds that is known before any shard is built: what a worker leaves
/// in `.segprep/index-base.json` so that `segprep merge` needs nothing but the output folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexBase {
    /// index.json with no files, zero counts, and the warnings discovery gives.
    pub index: Index,
    /// The split of every logical shard, in plan order.
    pub shard_splits: Vec<String>,
}

pub const BASE_FILE: &str = "index-base.json";

pub fn make_base(
    p: &Pipeline,
    found: &Discovery,
    plans: &[ShardPlan],
    references: &super::References,
) -> IndexBase {
    let reference = &references.first;
    let fixed = p.config.output.layout().fixed_size();
    let mut splits: BTreeMap<String, SplitSummary> = BTreeMap::new();
    for plan in plans {
        let shape = references.of(&plan.split);
        splits.entry(plan.split.clone()).or_insert(SplitSummary {
            samples: 0,
            files: 0,
            height: fixed.then_some(shape.image.height),
            width: fixed.then_some(shape.image.width),
        });
    }
    let index = Index {
        inputs_sha256: inputs_hash(found),
        splits,
        unpaired_skipped: found.unpaired_images.len() + found.unpaired_labels.len(),
        warnings: discovery_warnings(found),
        ..essentials(p, reference)
    };
    IndexBase {
        index,
        shard_splits: plans.iter().map(|p| p.split.clone()).collect(),
    }
}

/// What index.json says of the pipeline and its samples' arrays, before any input is listed:
/// the record sinks take their metadata from. No files, splits or counts yet.
pub fn essentials(p: &Pipeline, reference: &Sample) -> Index {
    let fixed = p.config.output.layout().fixed_size();
    Index {
        segprep_version: env!("CARGO_PKG_VERSION").into(),
        pipeline_hash: p.hash.clone(),
        inputs_sha256: String::new(),
        pipeline: serde_json::to_value(&p.config).expect("pipeline serializes"),
        format: p.config.output.format.extension().into(),
        layout: p.config.output.layout().name().into(),
        input_classes: p.input_classes.classes.clone(),
        classes: p.classes.classes.clone(),
        ignore_index: p.classes.ignore_index,
        image: ArrayInfo {
            dtype: reference.image.pixels.dtype(),
            height: fixed.then_some(reference.image.height),
            width: fixed.then_some(reference.image.width),
            bands: reference.image.bands,
        },
        label_dtype: p.label_dtype,
        // with augment = "online", also the stages left to the data loader: `apply` replays them
        stages: p.all_stages().iter().map(Stage::describe).collect(),
        splits: BTreeMap::new(),
        unpaired_skipped: 0,
        skipped_samples: 0,
        warnings: Vec::new(),
        files: Vec::new(),
        inputs: None,
    }
}

/// index.json from the base and the shards' records, in plan order: `None` for a shard this
/// process did not build (another worker's), so a worker's summary counts only its own.
pub fn complete(base: &IndexBase, records: &[Option<ShardRecord>]) -> Index {
    let mut index = base.index.clone();
    let present: Vec<&ShardRecord> = records.iter().flatten().collect();
    index.files = present
        .iter()
        .flat_map(|r| r.files.iter().cloned())
        .collect();
    index.skipped_samples = present.iter().map(|r| r.skipped.len()).sum();
    index.warnings.extend(record_warnings(&present));
    for (split, record) in base.shard_splits.iter().zip(records) {
        if let (Some(e), Some(r)) = (index.splits.get_mut(split), record) {
            e.samples += r.counts.samples as usize;
        }
    }
    for f in &index.files {
        if let Some(e) = index.splits.get_mut(&f.split) {
            e.files += 1;
        }
    }
    index
}

fn discovery_warnings(found: &Discovery) -> Vec<String> {
    let mut w = Vec::new();
    let jpeg_labels = found
        .pairs
        .iter()
        .filter(|p| matches!(&p.label, LabelSource::File(f) if is_jpeg(f)))
        .count();
    if jpeg_labels > 0 {
        w.push(format!("{jpeg_labels} label file(s) are JPEG: lossy compression changes class ids at edges; use PNG labels"));
    }
    let unpaired = found.unpaired_images.len() + found.unpaired_labels.len();
    if unpaired > 0 {
        w.push(format!(
            "{unpaired} unpaired file(s) skipped (unpaired = \"skip\")"
        ));
    }
    w
}

fn record_warnings(records: &[&ShardRecord]) -> Vec<String> {
    let mut w = Vec::new();
    let skipped: usize = records.iter().map(|r| r.skipped.len()).sum();
    if skipped > 0 {
        w.push(format!(
            "{skipped} sample(s) failed and were left out (on_error = \"skip\"); see errors.jsonl"
        ));
    }
    if records.iter().any(|r| r.counts.unknown_pixels > 0) {
        w.push("some label values were not declared and were mapped to the ignore index (see unknown_pixels in stats.json)".into());
    }
    w
}
