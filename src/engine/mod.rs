//! The streaming executor: pairs → (rayon) decode + stages + counts → sink, shard by shard.
//!
//! `plan` fixes every shard before any pixel is processed; `output` claims the output folder (lock,
//! resume records); `run` computes batches in parallel while a writer thread writes the previous
//! one; `index` derives the manifest. The output depends only on the pipeline and the inputs, never
//! on scheduling or on where an interrupted run stopped.
mod dataset_stats;
mod index;
pub mod output;
mod plan;
mod run;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::decode::is_jpeg;
use crate::decode::stack::decode_pair_image;
use crate::error::{Error, Result};
use crate::pipeline::schema::OnError;
use crate::pipeline::Pipeline;
use crate::progress::Progress;
use crate::sample::{Image, LabelMap, LabelSource, PairRef, Sample};
use crate::sink::manifest::{SplitSummary, ERRORS_FILE, INDEX_FILE, STATS_FILE};
use crate::sink::{atomic, ShardPlan};
use crate::source::{self, Discovery};
use crate::stages::Stage;
use crate::stats::counts::{SplitCounts, Stats};
use output::{OutputDir, PlanStamp, ShardRecord};

/// Default target of uncompressed bytes per shard.
pub const DEFAULT_SHARD_BYTES: u64 = 256 << 20;

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub threads: Option<usize>,
    pub out: Option<PathBuf>,
    pub force: bool,
}

#[derive(Debug, Clone)]
pub struct BuildSummary {
    pub out_dir: PathBuf,
    pub samples: usize,
    pub files: usize,
    pub bytes: u64,
    pub splits: BTreeMap<String, SplitSummary>,
    pub unpaired_skipped: usize,
    pub skipped_samples: usize,
    /// Shards found complete from an earlier, interrupted run.
    pub resumed_shards: usize,
    pub warnings: Vec<String>,
}

/// Decodes a pair and runs every stage on it: one sample, or several after an augment stage.
pub fn process(p: &Pipeline, stages: &[Stage], pair: &PairRef, split: &str) -> Result<Vec<Sample>> {
    let mut samples = vec![decode_sample(p, pair, split)?];
    for stage in stages {
        samples = stage
            .apply_all(samples)
            .map_err(|m| Error::data(&pair.image, stage.name(), m))?;
    }
    Ok(samples)
}

/// The decoded image and label of a pair, checked to have one size.
fn decode_sample(p: &Pipeline, pair: &PairRef, split: &str) -> Result<Sample> {
    let input = &p.config.input;
    let rules = input.image_rules();
    let decoded = decode_pair_image(pair, &rules, input.channels)?;
    let image = decoded.image;
    let label = p
        .decoder
        .decode_source(&pair.label, image.width, image.height)?;
    let l = &label.map;
    if (l.width, l.height) != (image.width, image.height) {
        let message = size_mismatch(pair, &image, l, decoded.exif.as_ref());
        return Err(Error::data(pair.label_path(), "pair", message));
    }
    Ok(Sample {
        pair: pair.clone(),
        split: split.to_string(),
        image,
        label: label.map,
        padding: None,
        unknown_pixels: label.unknown_pixels,
        standardization: None,
        instances: label.instances,
        augment: None,
    })
}

/// Says which orientation of a turned JPEG the label matches, if any.
fn size_mismatch(
    pair: &PairRef,
    image: &Image,
    l: &LabelMap,
    exif: Option<&(String, u32, u32)>,
) -> String {
    let base = format!(
        "label is {}x{} but its image {} is {}x{}",
        l.width,
        l.height,
        pair.image.display(),
        image.width,
        image.height
    );
    match exif {
        Some((o, w, h)) if (*w, *h) == (l.width, l.height) => format!(
            "{base} after its EXIF orientation ({o}); the label matches the image as stored ({w}x{h}): set [input] exif = \"ignore\""
        ),
        Some((o, w, h)) => format!("{base} after its EXIF orientation ({o}), {w}x{h} as stored; the label matches neither"),
        None => base,
    }
}

/// Runs a whole build.
pub fn build(
    p: &mut Pipeline,
    opts: &BuildOptions,
    progress: &dyn Progress,
) -> Result<BuildSummary> {
    thread_pool(opts.threads)?.install(|| build_in_pool(p, opts, progress))
}

/// A rayon pool of `threads` workers (all cores when `None`).
pub fn thread_pool(threads: Option<usize>) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()
        .map_err(|e| Error::Usage(format!("cannot start threads: {e}")))
}

fn build_in_pool(
    p: &mut Pipeline,
    opts: &BuildOptions,
    progress: &dyn Progress,
) -> Result<BuildSummary> {
    let found = source::discover(p)?;
    let splits = p
        .split
        .assign(&found.pairs)
        .map_err(|m| Error::pipeline(&p.file, m))?;
    let out_dir = opts.out.clone().unwrap_or_else(|| p.output_dir.clone());
    let inputs: Vec<PathBuf> = std::iter::once(p.images_path.clone())
        .chain(p.band_paths.iter().cloned())
        .chain(p.labels_path.clone())
        .collect();
    let stamp = PlanStamp {
        pipeline_hash: p.hash.clone(),
        inputs_sha256: index::inputs_hash(&found),
        inputs_state: index::inputs_state_hash(&found),
    };
    if p.config.run.on_error == OnError::Fail {
        plan::check_uniform_images(p, &found.pairs)?;
    }
    // claimed before the expensive work, so a wrong output folder fails fast
    let out = OutputDir::claim(&out_dir, &stamp, &inputs, opts.force)?;
    dataset_stats::measure_dataset_standardization(p, &found.pairs, &splits, progress)?;
    let references = reference_samples(p, &found.pairs, &splits)?;
    let reference = &references.first;
    let plans = plan::plan_shards(p, &found.pairs, &splits, reference);
    let run::ShardResults { records, resumed } =
        run::run_shards(p, &out, &plans, &references, progress)?;
    let warnings = warnings(&found, &records);
    let index = index::make_index(p, &found, &records, &plans, &references, warnings.clone());
    write_derived(p, &out, &plans, &records, &index)?;
    Ok(BuildSummary {
        out_dir,
        samples: index.splits.values().map(|s| s.samples).sum(),
        files: index.files.len(),
        bytes: index.files.iter().map(|f| f.bytes).sum(),
        splits: index.splits,
        unpaired_skipped: index.unpaired_skipped,
        skipped_samples: index.skipped_samples,
        resumed_shards: resumed,
        warnings,
    })
}

/// The first sample (in key order) that processes, per split: its shape is what every sample of
/// that split must have. Splits may differ in size (an augment crop makes train samples smaller
/// than val's) but not in bands or dtype.
fn reference_samples(p: &Pipeline, pairs: &[PairRef], splits: &[String]) -> Result<References> {
    let mut by_split: BTreeMap<String, Sample> = BTreeMap::new();
    let mut first_error = None;
    for (pair, split) in pairs.iter().zip(splits) {
        if by_split.contains_key(split) {
            continue;
        }
        match process(p, &p.stages, pair, split) {
            Ok(mut s) if !s.is_empty() => {
                by_split.insert(split.clone(), s.swap_remove(0));
            }
            Ok(_) => {}
            Err(e) if p.config.run.on_error == OnError::Fail => return Err(e),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let Some(first) = by_split
        .iter()
        .min_by_key(|(k, _)| (crate::split::rank(k), (*k).clone()))
        .map(|(_, s)| s.clone())
    else {
        return Err(first_error.map_or_else(
            || Error::Usage("no samples".into()),
            |e| Error::DataSet {
                summary: "no sample could be processed; the first error:".into(),
                problems: vec![e],
            },
        ));
    };
    for s in by_split.values() {
        plan::check_shape(s, &first, false)?;
    }
    Ok(References { first, by_split })
}

/// Reference samples: the first split's, and each split's own.
pub struct References {
    pub first: Sample,
    pub by_split: BTreeMap<String, Sample>,
}

impl References {
    pub fn of(&self, split: &str) -> &Sample {
        self.by_split.get(split).unwrap_or(&self.first)
    }
}

/// stats.json, errors.jsonl and, last, index.json: all derived from the shard records.
fn write_derived(
    p: &Pipeline,
    out: &OutputDir,
    plans: &[ShardPlan],
    records: &[ShardRecord],
    index: &crate::sink::manifest::Index,
) -> Result<()> {
    let mut stats = Stats::new(p.classes.ignore_index);
    for (plan, record) in plans.iter().zip(records) {
        stats
            .splits
            .entry(plan.split.clone())
            .or_insert_with(|| SplitCounts::new(&p.classes))
            .merge(&record.counts);
    }
    let errors: String = records
        .iter()
        .flat_map(|r| &r.skipped)
        .map(|s| serde_json::to_string(s).expect("serializes") + "\n")
        .collect();
    atomic::write_text(&out.dir.join(STATS_FILE), &to_json(&stats))?;
    if errors.is_empty() {
        let _ = std::fs::remove_file(out.dir.join(ERRORS_FILE));
    } else {
        atomic::write_text(&out.dir.join(ERRORS_FILE), &errors)?;
    }
    atomic::write_text(&out.dir.join(INDEX_FILE), &to_json(index))
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).expect("manifest serializes") + "\n"
}

fn warnings(found: &Discovery, records: &[ShardRecord]) -> Vec<String> {
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
