//! `index.json` and the inputs hash.
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

use super::output::ShardRecord;
use super::run::all_files;
use crate::pipeline::Pipeline;
use crate::sink::manifest::{ArrayInfo, Index, SplitSummary};
use crate::sink::ShardPlan;
use crate::source::Discovery;
use crate::stages::Stage;

/// sha256 over every input file's size and modification time: whether the inputs changed since a
/// build, without reading them. Machine-specific, so it stays out of index.json.
pub fn inputs_state_hash(found: &Discovery) -> String {
    let mut h = Sha256::new();
    for pair in &found.pairs {
        for file in pair.files() {
            let meta = std::fs::metadata(file).ok();
            let size = meta.as_ref().map_or(0, |m| m.len());
            let modified = meta
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            // no path: the same build run from another folder must match (names are in inputs_hash)
            h.update(size.to_le_bytes());
            h.update(modified.to_le_bytes());
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

pub fn make_index(
    p: &Pipeline,
    found: &Discovery,
    records: &[ShardRecord],
    plans: &[ShardPlan],
    references: &super::References,
    warnings: Vec<String>,
) -> Index {
    let reference = &references.first;
    let files = all_files(records);
    let fixed = p.config.output.layout().fixed_size();
    let skipped: usize = records.iter().map(|r| r.skipped.len()).sum();
    let mut splits: BTreeMap<String, SplitSummary> = BTreeMap::new();
    for (plan, record) in plans.iter().zip(records) {
        let shape = references.of(&plan.split);
        let e = splits.entry(plan.split.clone()).or_insert(SplitSummary {
            samples: 0,
            files: 0,
            height: fixed.then_some(shape.image.height),
            width: fixed.then_some(shape.image.width),
        });
        e.samples += record.counts.samples as usize;
    }
    for f in &files {
        if let Some(e) = splits.get_mut(&f.split) {
            e.files += 1;
        }
    }
    Index {
        segprep_version: env!("CARGO_PKG_VERSION"),
        pipeline_hash: p.hash.clone(),
        inputs_sha256: inputs_hash(found),
        pipeline: serde_json::to_value(&p.config).expect("pipeline serializes"),
        format: p.config.output.format.extension(),
        layout: p.config.output.layout().name(),
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
        stages: p.stages.iter().map(Stage::describe).collect(),
        splits,
        unpaired_skipped: found.unpaired_images.len() + found.unpaired_labels.len(),
        warnings,
        skipped_samples: skipped,
        files,
    }
}
