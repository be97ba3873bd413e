//! The dataset-wide first pass for `standardize = { mode = "dataset" }`: per-band mean and std of
//! the training split after the stages before it.
//!
//! The train pairs are measured in groups (the train shards of a fixed plan, else the whole split):
//! within a group samples are merged in key order, then groups in plan order. Sums are exact for
//! integer pixels, and the grouping is the same whoever measures a group, so a worker build (each
//! group measured by `segprep stats --worker` and saved in `.segprep/moments/`) gets the very same
//! values as one process.
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

use super::output::{OutputDir, STATE_DIR};
use crate::error::{Error, Result};
use crate::pipeline::schema::OnError;
use crate::pipeline::Pipeline;
use crate::process::process_pair;
use crate::progress::Progress;
use crate::sample::PairRef;
use crate::sink::ShardPlan;
use crate::stages::standardize::{moments, BandMoments, StandardizeMode};
use crate::stages::Stage;

/// Position of a dataset-mode standardize stage, if the pipeline has one.
pub fn dataset_stage(p: &Pipeline) -> Option<usize> {
    p.stages
        .iter()
        .position(|s| matches!(s, Stage::Standardize(st) if st.mode == StandardizeMode::Dataset))
}

/// The groups of train pairs moments are measured in: `(logical shard, pairs)` for each train shard
/// of a fixed plan, else one group of the whole split.
pub fn train_groups(
    pairs: &[PairRef],
    splits: &[String],
    fixed: Option<&[ShardPlan]>,
) -> Vec<(usize, Vec<PairRef>)> {
    match fixed {
        Some(plans) => plans
            .iter()
            .enumerate()
            .filter(|(_, plan)| plan.split == "train")
            .map(|(s, plan)| (s, plan.pairs.clone()))
            .collect(),
        None => vec![(
            0,
            pairs
                .iter()
                .zip(splits)
                .filter(|(_, s)| *s == "train")
                .map(|(p, _)| p.clone())
                .collect(),
        )],
    }
}

/// Measures (or, for a worker, reads from `moments_dir`) the train moments and sets them on the
/// dataset standardize stage.
pub fn measure_dataset_standardization(
    p: &mut Pipeline,
    groups: &[(usize, Vec<PairRef>)],
    saved: Option<&OutputDir>,
    progress: &dyn Progress,
) -> Result<()> {
    let Some(at) = dataset_stage(p) else {
        return Ok(());
    };
    if groups.iter().all(|(_, g)| g.is_empty()) {
        return Err(Error::pipeline(
            &p.file,
            "standardize mode = \"dataset\" needs samples in the train split",
        ));
    }
    let totals = match saved {
        Some(out) => read_group_moments(out, groups)?,
        None => measure_groups(p, at, groups, progress)?,
    };
    let mut total: Option<Vec<BandMoments>> = None;
    for group in totals.into_iter().flatten() {
        merge_into(&mut total, group, &p.file)?;
    }
    let bands: Vec<(f64, f64)> = total
        .unwrap_or_default()
        .iter()
        .map(|m| m.mean_std())
        .map(|(m, s)| (m, s.max(f64::EPSILON)))
        .collect();
    if let Stage::Standardize(st) = &mut p.stages[at] {
        st.bands = Some(bands);
    }
    Ok(())
}

/// Each group's moments (`None` for a group with no usable sample), groups measured in parallel
/// pair by pair and merged in key order.
fn measure_groups(
    p: &Pipeline,
    at: usize,
    groups: &[(usize, Vec<PairRef>)],
    progress: &dyn Progress,
) -> Result<Vec<Option<Vec<BandMoments>>>> {
    let total: usize = groups.iter().map(|(_, g)| g.len()).sum();
    progress.start("measuring dataset mean/std", total as u64);
    let before = &p.stages[..at];
    let result = groups
        .iter()
        .map(|(_, pairs)| group_moments(p, before, pairs, progress))
        .collect();
    progress.finish();
    result
}

fn group_moments(
    p: &Pipeline,
    before: &[Stage],
    pairs: &[PairRef],
    progress: &dyn Progress,
) -> Result<Option<Vec<BandMoments>>> {
    // per pair, the moments of each sample it gives (an augmented pair gives its copies too)
    let per_pair: Vec<Result<Vec<Vec<BandMoments>>>> = pairs
        .par_iter()
        .map(|pair| {
            let samples = process_pair(p, before, pair, "train")?;
            progress.advance(1);
            Ok(samples
                .iter()
                .map(|s| moments(&s.image.pixels, s.image.bands))
                .collect())
        })
        .collect();
    let mut total: Option<Vec<BandMoments>> = None;
    for (r, pair) in per_pair.into_iter().zip(pairs) {
        // a bad sample is skipped here too when the run skips bad samples; the main pass lists it
        let samples = match r {
            Ok(samples) => samples,
            Err(_) if p.config.run.on_error == OnError::Skip => continue,
            Err(e) => return Err(e),
        };
        for m in samples {
            merge_into(&mut total, m, &pair.image)?;
        }
    }
    Ok(total)
}

fn merge_into(
    total: &mut Option<Vec<BandMoments>>,
    m: Vec<BandMoments>,
    file: &Path,
) -> Result<()> {
    match total {
        None => *total = Some(m),
        Some(t) if t.len() == m.len() => t.iter_mut().zip(&m).for_each(|(a, b)| a.merge(b)),
        Some(t) => {
            return Err(Error::data(
                file,
                "standardize",
                format!("has {} bands, others have {}", m.len(), t.len()),
            ))
        }
    }
    Ok(())
}

/// One group's moments as saved by a worker's stats pass. The sums are kept as bit patterns: a
/// decimal round trip could change the last bit and with it every standardized pixel.
#[derive(Serialize, Deserialize)]
struct SavedMoments {
    shard: usize,
    pairs: usize,
    /// Per band: count, then the bits of sum and of sum of squares.
    bands: Option<Vec<(u64, u64, u64)>>,
}

fn moments_rel(shard: usize) -> String {
    format!("{STATE_DIR}/moments/{shard:05}.json")
}

fn read_group_moments(
    out: &OutputDir,
    groups: &[(usize, Vec<PairRef>)],
) -> Result<Vec<Option<Vec<BandMoments>>>> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (shard, pairs) in groups {
        let saved: Option<SavedMoments> = out
            .read_text(&moments_rel(*shard))?
            .and_then(|t| serde_json::from_str(&t).ok())
            .filter(|m: &SavedMoments| m.shard == *shard && m.pairs == pairs.len());
        match saved {
            Some(m) => found.push(m.bands.map(|b| {
                b.into_iter()
                    .map(|(count, sum, sq)| BandMoments {
                        count,
                        sum: f64::from_bits(sum),
                        sum_sq: f64::from_bits(sq),
                    })
                    .collect()
            })),
            None => missing.push(shard.to_string()),
        }
    }
    if missing.is_empty() {
        return Ok(found);
    }
    Err(Error::Usage(format!(
        "standardize mode = \"dataset\" on workers needs the train moments measured first, but {} of {} train shards have none in {} (shards {}). Run `segprep stats PIPELINE --worker I/W` as every worker (same --num-shards and output folder), then the build",
        missing.len(),
        groups.len(),
        out.location().join(STATE_DIR).join("moments").display(),
        missing.join(", ")
    )))
}

/// A worker's stats pass: measures the train groups it owns before stage `at` (the dataset
/// standardize stage) and saves each (atomically; a group already saved is kept). Returns how many
/// groups it measured.
pub fn save_worker_moments(
    p: &Pipeline,
    at: usize,
    groups: &[(usize, Vec<PairRef>)],
    owns: &dyn Fn(usize) -> bool,
    out: &OutputDir,
    progress: &dyn Progress,
) -> Result<usize> {
    let mine: Vec<(usize, Vec<PairRef>)> = groups
        .iter()
        .filter(|g| owns(g.0) && read_group_moments(out, std::slice::from_ref(*g)).is_err())
        .cloned()
        .collect();
    let measured = measure_groups(p, at, &mine, progress)?;
    for ((shard, pairs), bands) in mine.iter().zip(measured) {
        let saved = SavedMoments {
            shard: *shard,
            pairs: pairs.len(),
            bands: bands.map(|b| {
                b.iter()
                    .map(|m| (m.count, m.sum.to_bits(), m.sum_sq.to_bits()))
                    .collect()
            }),
        };
        let text = serde_json::to_string(&saved).expect("serializes");
        out.write_text(&moments_rel(*shard), &text)?;
    }
    Ok(mine.len())
}
