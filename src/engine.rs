//! The streaming executor: pairs → (rayon) decode + stages + counts → sink, one shard at a time.
//!
//! Shards are planned before any pixel is processed (split, position and size fixed by sorted keys),
//! each shard's samples are processed in parallel and collected in plan order, and a writer thread
//! writes shard k while shard k+1 is computed. Memory is bounded by threads and shard size; the
//! output depends only on the pipeline and the inputs, never on scheduling.
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use crate::decode::image::decode_image;
use crate::decode::is_jpeg;
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::progress::Progress;
use crate::sample::{PairRef, Sample};
use crate::sink::manifest::{ArrayInfo, Index, SplitSummary, INDEX_FILE, STATS_FILE};
use crate::sink::{self, atomic, FileRecord, ShardPlan};
use crate::source::{self, Discovery};
use crate::split::SPLIT_ORDER;
use crate::stages::standardize::{moments, BandMoments, StandardizeMode};
use crate::stages::Stage;
use crate::stats::counts::{SampleCounts, SplitCounts, Stats};

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
    pub warnings: Vec<String>,
}

/// Decodes a pair and runs every stage on it.
pub fn process(p: &Pipeline, stages: &[Stage], pair: &PairRef, split: &str) -> Result<Sample> {
    let image = decode_image(&pair.image, p.config.input.alpha)
        .map_err(|m| Error::data(&pair.image, "decode", m))?;
    let label = p
        .decoder
        .decode(&pair.label)
        .map_err(|m| Error::data(&pair.label, "decode", m))?;
    let l = &label.map;
    if (l.width, l.height) != (image.width, image.height) {
        return Err(Error::data(
            &pair.label,
            "pair",
            format!(
                "label is {}x{} but its image {} is {}x{}",
                l.width,
                l.height,
                pair.image.display(),
                image.width,
                image.height
            ),
        ));
    }
    let mut s = Sample {
        pair: pair.clone(),
        split: split.to_string(),
        image,
        label: label.map,
        padding: None,
        unknown_pixels: label.unknown_pixels,
        standardization: None,
    };
    for stage in stages {
        stage
            .apply(&mut s)
            .map_err(|m| Error::data(&pair.image, stage.name(), m))?;
    }
    Ok(s)
}

/// Runs a whole build.
pub fn build(
    p: &mut Pipeline,
    opts: &BuildOptions,
    progress: &dyn Progress,
) -> Result<BuildSummary> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.unwrap_or(0))
        .build()
        .map_err(|e| Error::Usage(format!("cannot start threads: {e}")))?;
    pool.install(|| build_in_pool(p, opts, progress))
}

fn build_in_pool(
    p: &mut Pipeline,
    opts: &BuildOptions,
    progress: &dyn Progress,
) -> Result<BuildSummary> {
    let out = opts.out.clone().unwrap_or_else(|| p.output_dir.clone());
    let found = source::discover(p)?;
    let splits = p
        .split
        .assign(&found.pairs)
        .map_err(|m| Error::pipeline(&p.file, m))?;
    check_output_dir(p, &out, opts.force)?;
    measure_dataset_standardization(p, &found.pairs, &splits, progress)?;
    let reference = process(p, &p.stages, &found.pairs[0], &splits[0])?;
    let plans = plan_shards(p, &found.pairs, &splits, &reference);
    let mut warnings = input_warnings(&found);
    let (files, stats) = run_shards(p, &out, &plans, &reference, progress)?;
    if stats.splits.values().any(|s| s.unknown_pixels > 0) {
        warnings.push("some label values were not declared and were mapped to the ignore index (see unknown_pixels in stats.json)".into());
    }
    let index = make_index(p, &found, &files, &plans, &reference, warnings.clone());
    atomic::write_text(&out.join(STATS_FILE), &to_json(&stats))?;
    atomic::write_text(&out.join(INDEX_FILE), &to_json(&index))?;
    Ok(BuildSummary {
        out_dir: out,
        samples: found.pairs.len(),
        files: files.len(),
        bytes: files.iter().map(|f| f.bytes).sum(),
        splits: index.splits,
        unpaired_skipped: index.unpaired_skipped,
        warnings,
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).expect("manifest serializes") + "\n"
}

fn input_warnings(found: &Discovery) -> Vec<String> {
    let mut w = Vec::new();
    let jpeg_labels = found.pairs.iter().filter(|p| is_jpeg(&p.label)).count();
    if jpeg_labels > 0 {
        w.push(format!(
            "{jpeg_labels} label file(s) are JPEG: lossy compression changes class ids at edges; use PNG labels"
        ));
    }
    let skipped = found.unpaired_images.len() + found.unpaired_labels.len();
    if skipped > 0 {
        w.push(format!(
            "{skipped} unpaired file(s) skipped (unpaired = \"skip\")"
        ));
    }
    w
}

/// Refuses to write where it would destroy something that is not a segprep build.
fn check_output_dir(p: &Pipeline, out: &Path, force: bool) -> Result<()> {
    let out_real = real_path(out);
    for input in [Some(&p.images_path), p.labels_path.as_ref()]
        .into_iter()
        .flatten()
    {
        let input_dir = if input.is_file() {
            input.parent().unwrap_or(input)
        } else {
            input.as_path()
        };
        if let Ok(real) = std::fs::canonicalize(input_dir) {
            if out_real.starts_with(&real) {
                return Err(Error::Usage(format!(
                    "output folder {} is inside the input folder {}; choose another output.dir",
                    out.display(),
                    input_dir.display()
                )));
            }
        }
    }
    let Ok(entries) = std::fs::read_dir(out) else {
        return Ok(());
    };
    if entries.count() == 0 {
        return Ok(());
    }
    let index = out.join(INDEX_FILE);
    if !index.exists() {
        return Err(Error::Usage(format!("output folder {} is not empty and is not a segprep build; choose an empty or new folder", out.display())));
    }
    if !force {
        return Err(Error::Usage(format!(
            "output folder {} already holds a build; pass --force to replace it",
            out.display()
        )));
    }
    remove_previous_build(out, &index)
}

/// The canonical form of a path that may not exist yet: its deepest existing ancestor canonicalized,
/// with the rest appended.
fn real_path(path: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut at = path;
    loop {
        if let Ok(real) = std::fs::canonicalize(if at.as_os_str().is_empty() {
            Path::new(".")
        } else {
            at
        }) {
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

/// Deletes only the files a previous build recorded, plus its index, stats and partial files.
fn remove_previous_build(out: &Path, index: &Path) -> Result<()> {
    let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, "output", e))?;
    let old: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::data(index, "output", format!("not a segprep index: {e}")))?;
    let files = old["files"].as_array().cloned().unwrap_or_default();
    for f in files.iter().filter_map(|f| f["file"].as_str()) {
        let path = out.join(f);
        if path.starts_with(out) && !f.contains("..") {
            let _ = std::fs::remove_file(&path);
        }
    }
    for name in [STATS_FILE, INDEX_FILE] {
        let _ = std::fs::remove_file(out.join(name));
    }
    Ok(())
}

/// `standardize = dataset`: per-band mean and std of the training split after the stages before it.
fn measure_dataset_standardization(
    p: &mut Pipeline,
    pairs: &[PairRef],
    splits: &[String],
    progress: &dyn Progress,
) -> Result<()> {
    let Some(at) = p
        .stages
        .iter()
        .position(|s| matches!(s, Stage::Standardize(st) if st.mode == StandardizeMode::Dataset))
    else {
        return Ok(());
    };
    let train: Vec<(&PairRef, &String)> = pairs
        .iter()
        .zip(splits)
        .filter(|(_, s)| *s == "train")
        .collect();
    if train.is_empty() {
        return Err(Error::pipeline(
            &p.file,
            "standardize mode = \"dataset\" needs samples in the train split",
        ));
    }
    progress.start("measuring dataset mean/std", train.len() as u64);
    let before = &p.stages[..at];
    let per_sample: Vec<Result<(usize, Vec<BandMoments>)>> = train
        .par_iter()
        .map(|(pair, split)| {
            let s = process(p, before, pair, split)?;
            progress.advance(1);
            Ok((s.image.bands, moments(&s.image.pixels, s.image.bands)))
        })
        .collect();
    progress.finish();
    let mut total: Option<Vec<BandMoments>> = None;
    for (r, (pair, _)) in per_sample.into_iter().zip(&train) {
        let (_, m) = r?;
        match &mut total {
            None => total = Some(m),
            Some(t) if t.len() == m.len() => t.iter_mut().zip(&m).for_each(|(a, b)| a.merge(b)),
            Some(t) => {
                return Err(Error::data(
                    &pair.image,
                    "standardize",
                    format!("has {} bands, others have {}", m.len(), t.len()),
                ))
            }
        }
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

/// Bytes of one sample in the output (image + label), from the reference sample.
fn sample_bytes(p: &Pipeline, s: &Sample) -> u64 {
    (s.image.pixels.len() * s.image.pixels.dtype().size()
        + s.label.ids.len() * p.label_dtype.size()) as u64
}

/// Fixes every shard up front: splits in order train, val, test, others; keys sorted within each.
fn plan_shards(
    p: &Pipeline,
    pairs: &[PairRef],
    splits: &[String],
    reference: &Sample,
) -> Vec<ShardPlan> {
    let per_shard = p.config.output.shard_samples.unwrap_or_else(|| {
        let target = p
            .config
            .output
            .shard_bytes
            .map_or(DEFAULT_SHARD_BYTES, |b| b.0);
        (target / sample_bytes(p, reference).max(1)).max(1) as usize
    });
    let mut by_split: BTreeMap<(usize, &str), Vec<PairRef>> = BTreeMap::new();
    for (pair, split) in pairs.iter().zip(splits) {
        let rank = SPLIT_ORDER
            .iter()
            .position(|s| s == split)
            .unwrap_or(SPLIT_ORDER.len());
        by_split
            .entry((rank, split))
            .or_default()
            .push(pair.clone());
    }
    let mut plans = Vec::new();
    for ((_, split), members) in by_split {
        let chunks: Vec<&[PairRef]> = members.chunks(per_shard).collect();
        let of = chunks.len();
        for (index, chunk) in chunks.into_iter().enumerate() {
            plans.push(ShardPlan {
                split: split.to_string(),
                index,
                of,
                first_sample: index * per_shard,
                pairs: chunk.to_vec(),
            });
        }
    }
    plans
}

/// Every sample must match the reference shape and dtype to be stacked.
fn check_shape(s: &Sample, reference: &Sample) -> Result<()> {
    let shape = |s: &Sample| {
        (
            s.image.width,
            s.image.height,
            s.image.bands,
            s.image.pixels.dtype(),
        )
    };
    if shape(s) == shape(reference) {
        return Ok(());
    }
    let (w, h, c, t) = shape(s);
    let (rw, rh, rc, rt) = shape(reference);
    Err(Error::data(
        &s.pair.image,
        "write",
        format!(
            "sample is {w}x{h}x{c} {t:?} after the stages, but {} is {rw}x{rh}x{rc} {rt:?}; shards stack samples of one shape: add a resize (and pad) stage, or make the band count and dtype agree",
            reference.pair.image.display()
        ),
    ))
}

/// What the compute side sends the writer thread.
enum ToWriter {
    Begin(ShardPlan),
    Batch(Vec<Sample>),
    Finish(SplitCounts),
}

/// Processes pairs in parallel; results come back in the pairs' order, with the first error in
/// that order whatever thread finished first.
fn process_batch(
    p: &Pipeline,
    pairs: &[PairRef],
    split: &str,
    reference: &Sample,
    progress: &dyn Progress,
) -> Result<(Vec<Sample>, Vec<SampleCounts>)> {
    let results: Vec<Result<(Sample, SampleCounts)>> = pairs
        .par_iter()
        .map(|pair| {
            let s = process(p, &p.stages, pair, split)?;
            check_shape(&s, reference)?;
            let c = SampleCounts::of(&s, &p.classes)
                .map_err(|m| Error::data(&pair.label, "stats", m))?;
            progress.advance(1);
            Ok((s, c))
        })
        .collect();
    Ok(results
        .into_iter()
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip())
}

/// Computes batches of each shard while a writer thread writes the previous batch.
fn run_shards(
    p: &Pipeline,
    out: &Path,
    plans: &[ShardPlan],
    reference: &Sample,
    progress: &dyn Progress,
) -> Result<(Vec<FileRecord>, Stats)> {
    let total: usize = plans.iter().map(|s| s.pairs.len()).sum();
    progress.start("building shards", total as u64);
    let mut stats = Stats::new(p.classes.ignore_index);
    let mut sink = sink::for_layout(p, out);
    let batch = sink.batch_samples(sample_bytes(p, reference)).max(1);
    let result = std::thread::scope(|scope| -> Result<Vec<FileRecord>> {
        // rendezvous: at most one batch being written and one being computed
        let (tx, rx) = sync_channel::<ToWriter>(0);
        let writer = scope.spawn(move || -> Result<Vec<FileRecord>> {
            let mut files = Vec::new();
            for message in rx {
                match message {
                    ToWriter::Begin(plan) => sink.begin(&plan)?,
                    ToWriter::Batch(samples) => sink.write(samples)?,
                    ToWriter::Finish(counts) => files.extend(sink.finish(&counts)?),
                }
            }
            Ok(files)
        });
        let computed = compute_shards(p, plans, reference, batch, progress, &tx, &mut stats);
        drop(tx);
        let written = writer
            .join()
            .map_err(|_| Error::Usage("the shard writer thread panicked".into()))?;
        // a compute error explains a writer that stopped early; otherwise the writer's own error
        computed.and(written)
    });
    progress.finish();
    Ok((result?, stats))
}

fn compute_shards(
    p: &Pipeline,
    plans: &[ShardPlan],
    reference: &Sample,
    batch: usize,
    progress: &dyn Progress,
    tx: &std::sync::mpsc::SyncSender<ToWriter>,
    stats: &mut Stats,
) -> Result<()> {
    // a failed send means the writer stopped on an error, which run_shards reports
    let send = |m: ToWriter| tx.send(m).is_ok();
    for plan in plans {
        let mut shard = SplitCounts::new(&p.classes);
        if !send(ToWriter::Begin(plan.clone())) {
            return Ok(());
        }
        for pairs in plan.pairs.chunks(batch) {
            let (samples, counts) = process_batch(p, pairs, &plan.split, reference, progress)?;
            counts.iter().for_each(|c| shard.add(c));
            if !send(ToWriter::Batch(samples)) {
                return Ok(());
            }
        }
        stats
            .splits
            .entry(plan.split.clone())
            .or_insert_with(|| SplitCounts::new(&p.classes))
            .merge(&shard);
        if !send(ToWriter::Finish(shard)) {
            return Ok(());
        }
    }
    Ok(())
}

fn inputs_hash(found: &Discovery) -> String {
    let mut h = Sha256::new();
    for pair in &found.pairs {
        for part in [
            pair.key.as_str(),
            &file_name(&pair.image),
            &file_name(&pair.label),
            pair.split.as_deref().unwrap_or(""),
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
    }
    hex::encode(h.finalize())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn make_index(
    p: &Pipeline,
    found: &Discovery,
    files: &[FileRecord],
    plans: &[ShardPlan],
    reference: &Sample,
    warnings: Vec<String>,
) -> Index {
    let mut splits: BTreeMap<String, SplitSummary> = BTreeMap::new();
    for plan in plans {
        let e = splits.entry(plan.split.clone()).or_insert(SplitSummary {
            samples: 0,
            files: 0,
        });
        e.samples += plan.pairs.len();
    }
    for f in files {
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
            height: reference.image.height,
            width: reference.image.width,
            bands: reference.image.bands,
        },
        label_dtype: p.label_dtype,
        stages: p.stages.iter().map(Stage::describe).collect(),
        splits,
        unpaired_skipped: found.unpaired_images.len() + found.unpaired_labels.len(),
        warnings,
        files: files.to_vec(),
    }
}
