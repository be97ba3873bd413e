//! The streaming executor: pairs → (rayon) decode + stages + counts → sink, shard by shard.
//!
//! `plan` fixes every shard before any pixel is processed; `output` claims the output folder (lock,
//! resume records); `run` computes batches in parallel while a writer thread writes the previous
//! one and a committer thread syncs, hashes and records finished shards; `index` derives the
//! manifest. The output depends only on the pipeline and the inputs, never
//! on scheduling or on where an interrupted run stopped.
mod dataset_stats;
pub mod fetch;
pub mod fingerprint;
pub mod index;
pub mod lock;
pub mod merge;
mod ordered;
pub mod output;
mod plan;
mod run;
pub mod worker;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};
use crate::index::SplitSummary;
use crate::pipeline::schema::OnError;
use crate::pipeline::Pipeline;
use crate::process::process_pair;
use crate::progress::Progress;
use crate::sample::{PairRef, Sample};
use crate::sink::ShardPlan;
use crate::source::{self, Discovery};
use crate::stages::Stage;
use crate::storage::mirror::is_mirrored;
use output::{OutputDir, PlanStamp};
use worker::Worker;

/// Default target of uncompressed bytes per shard.
pub const DEFAULT_SHARD_BYTES: u64 = 256 << 20;

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub threads: Option<usize>,
    pub out: Option<PathBuf>,
    pub force: bool,
    /// This process's part of a sharded build (`--worker I/W` or the scheduler's variables).
    pub worker: Option<Worker>,
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
    /// Logical shards this process completed or found complete, of the plan's total.
    pub shards: (usize, usize),
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
    let run = inputs(p, opts)?;
    // claimed before the expensive work, so a wrong output folder fails fast
    let out = claim_output(p, &run.found, &run.out_dir, opts)?;
    let mine = owned_pairs(&run.found.pairs, run.fixed.as_deref(), opts.worker.as_ref());
    // object-store inputs come in the background, in the order the run reads them, while it
    // decodes what has come (a decoder opening a file not here yet fetches it, or waits for it)
    let ahead = fetch_order(&run, &mine, opts.worker.is_none());
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| fetch_ahead(&ahead, &stop));
        let built = build_claimed(p, opts, progress, &run, out, &mine);
        stop.store(true, Ordering::Relaxed);
        built
    })
}

/// The build proper, once the output is claimed: checks, dataset moments, plan, shards, index.
fn build_claimed(
    p: &mut Pipeline,
    opts: &BuildOptions,
    progress: &dyn Progress,
    run: &Inputs,
    out: OutputDir,
    mine: &[&PairRef],
) -> Result<BuildSummary> {
    let (found, splits) = (&run.found, &run.splits);
    // the header check opens every file first: on object-store inputs it would wait for every
    // download; there the run's shape check against each split's first sample stands alone
    let mirrored = mine
        .iter()
        .any(|pair| pair.files().iter().any(|f| is_mirrored(f)));
    if p.config.run.on_error == OnError::Fail && !mirrored {
        plan::check_uniform_images(p, mine)?;
    }
    let groups = dataset_stats::train_groups(&found.pairs, splits, run.fixed.as_deref());
    let saved_moments = opts.worker.as_ref().map(|_| &out);
    dataset_stats::measure_dataset_standardization(p, &groups, saved_moments, progress)?;
    let references = reference_samples(p, &found.pairs, splits)?;
    let plans: std::borrow::Cow<[ShardPlan]> = match &run.fixed {
        Some(plans) => plans.into(),
        None => plan::plan_shards(p, &found.pairs, splits, &references.first).into(),
    };
    let base = index::make_base(p, found, &plans, &references);
    merge::write_base(&out, &base)?;
    let owns = |s: usize| opts.worker.as_ref().is_none_or(|w| w.owns(s));
    let run::ShardResults { records, resumed } =
        run::run_shards(p, &base.index, &out, &plans, &references, &owns, progress)?;
    let built = match &opts.worker {
        None => merge::write_derived(&out, &base, &records)?,
        // a worker's own part; `segprep merge` writes the whole
        Some(_) => index::complete(&base, &records),
    };
    Ok(BuildSummary {
        out_dir: run.out_dir.clone(),
        samples: built.splits.values().map(|s| s.samples).sum(),
        files: built.files.len(),
        bytes: built.files.iter().map(|f| f.bytes).sum(),
        splits: built.splits,
        unpaired_skipped: built.unpaired_skipped,
        skipped_samples: built.skipped_samples,
        resumed_shards: resumed,
        warnings: built.warnings,
        shards: (records.iter().flatten().count(), plans.len()),
    })
}

/// The pairs this process builds: a worker's are those of the shards it owns, in plan order (each
/// pair is checked and fetched by exactly one worker); a single build's are all, in key order.
fn owned_pairs<'a>(
    pairs: &'a [PairRef],
    fixed: Option<&'a [ShardPlan]>,
    worker: Option<&Worker>,
) -> Vec<&'a PairRef> {
    match (fixed, worker) {
        (Some(plans), Some(w)) => plans
            .iter()
            .enumerate()
            .filter(|(s, _)| w.owns(*s))
            .flat_map(|(_, plan)| &plan.pairs)
            .collect(),
        _ => pairs.iter().collect(),
    }
}

/// The owned pairs in the order a run reads them: each split's first pair (processed before the
/// run), then a worker's in plan order, a single build's split by split (keys sorted in each).
fn fetch_order<'a>(run: &'a Inputs, mine: &[&'a PairRef], single: bool) -> Vec<&'a PairRef> {
    let labelled = || run.found.pairs.iter().zip(&run.splits);
    let mut seen = std::collections::BTreeSet::new();
    let firsts = labelled().filter(|(_, split)| seen.insert(split.as_str()));
    let mut order: Vec<&PairRef> = firsts.map(|(pair, _)| pair).collect();
    if single {
        let mut by_split: Vec<(&PairRef, &String)> = labelled().collect();
        // stable: keys stay sorted within a split
        by_split
            .sort_by(|a, b| (crate::split::rank(a.1), a.1).cmp(&(crate::split::rank(b.1), b.1)));
        order.extend(by_split.into_iter().map(|(pair, _)| pair));
    } else {
        order.extend(mine);
    }
    order
}

/// Fetches the object-store inputs of `pairs` not in the local mirror yet, several at a time,
/// until `stop`; a file that fails here is fetched again, and its error reported, by the decoder
/// that opens it.
fn fetch_ahead(pairs: &[&PairRef], stop: &AtomicBool) {
    let files = pairs.iter().flat_map(|pair| pair.files());
    let _ = crate::storage::mirror::prefetch_until(files, &crate::progress::Silent, stop);
}

/// Fetches the object-store inputs of `pairs` not in the local mirror yet, several at a time,
/// before they are read.
fn fetch_inputs(pairs: &[&PairRef], progress: &dyn Progress) -> Result<()> {
    let files = pairs.iter().flat_map(|pair| pair.files());
    crate::storage::mirror::prefetch(files, progress)
}

/// The pairs of each split in plan order (train, val, test, others; keys sorted), with the
/// dataset-wide standardization measured as a build measures it (or set to `moments` measured
/// so before, by the process that handed the pipeline over): what a live pipeline (`online`)
/// needs before its first sample.
pub fn splits_for_online(
    p: &mut Pipeline,
    moments: Option<Vec<(f64, f64)>>,
    progress: &dyn Progress,
) -> Result<Vec<(String, Vec<PairRef>)>> {
    let found = source::discover(&p.source())?;
    let splits = p
        .split
        .assign(&found.pairs)
        .map_err(|m| Error::pipeline(&p.file, m))?;
    let fixed = fixed_plan(p, &found.pairs, &splits, None)?;
    match (moments, dataset_stats::dataset_stage(p)) {
        (Some(bands), Some(at)) => {
            if let Stage::Standardize(st) = &mut p.stages[at] {
                st.bands = Some(bands);
            }
        }
        _ => {
            let groups = dataset_stats::train_groups(&found.pairs, &splits, fixed.as_deref());
            dataset_stats::measure_dataset_standardization(p, &groups, None, progress)?;
        }
    }
    Ok(plan::by_split(&found.pairs, &splits)
        .into_iter()
        .map(|(s, pairs)| (s.to_string(), pairs))
        .collect())
}

/// What a run starts from: the pairs, their splits, the output, and the fixed plan if any.
struct Inputs {
    found: Discovery,
    splits: Vec<String>,
    out_dir: PathBuf,
    fixed: Option<Vec<ShardPlan>>,
}

fn inputs(p: &Pipeline, opts: &BuildOptions) -> Result<Inputs> {
    let found = source::discover(&p.source())?;
    let splits = p
        .split
        .assign(&found.pairs)
        .map_err(|m| Error::pipeline(&p.file, m))?;
    let fixed = fixed_plan(p, &found.pairs, &splits, opts.worker.as_ref())?;
    Ok(Inputs {
        out_dir: opts.out.clone().unwrap_or_else(|| p.output_dir.clone()),
        found,
        splits,
        fixed,
    })
}

/// The plan fixed by `num_shards` alone, if set; workers must have one.
fn fixed_plan(
    p: &Pipeline,
    pairs: &[PairRef],
    splits: &[String],
    worker: Option<&Worker>,
) -> Result<Option<Vec<ShardPlan>>> {
    match (p.config.output.num_shards, worker) {
        (Some(n), _) => plan::plan_fixed(p, pairs, splits, n).map(Some),
        (None, Some(w)) => Err(Error::Usage(format!(
            "worker {}/{} needs a shard count fixed up front, the same for every worker: pass --num-shards N (a few per worker, e.g. {}) or set [output] num_shards",
            w.index,
            w.count,
            4 * w.count
        ))),
        (None, None) => Ok(None),
    }
}

/// Claims the output folder: alone (lock, resume, --force) or as one of several workers.
fn claim_output(
    p: &Pipeline,
    found: &Discovery,
    out_dir: &std::path::Path,
    opts: &BuildOptions,
) -> Result<OutputDir> {
    let inputs: Vec<PathBuf> = std::iter::once(p.images_path.clone())
        .chain(p.band_paths.iter().cloned())
        .chain(p.labels_path.clone())
        .collect();
    let stamp = PlanStamp {
        pipeline_hash: p.hash.clone(),
        inputs_sha256: index::inputs_hash(found),
        inputs_state: index::inputs_state_hash(found),
        inputs_sizes: index::inputs_sizes_hash(found),
        num_shards: p.config.output.num_shards,
        segprep_version: env!("CARGO_PKG_VERSION").into(),
    };
    if crate::storage::is_url(out_dir) {
        if opts.force {
            return Err(Error::Usage(format!("--force does not apply to an object-store output; to start over, delete the objects under {}", out_dir.display())));
        }
        return OutputDir::remote(&out_dir.to_string_lossy(), &stamp);
    }
    match &opts.worker {
        None => OutputDir::claim(out_dir, &stamp, &inputs, opts.force),
        Some(_) if opts.force => Err(Error::Usage(
            "--force cannot be used by workers (one would delete the others' shards); empty the output folder once before starting them".into(),
        )),
        Some(_) => OutputDir::join(out_dir, &stamp, &inputs),
    }
}

/// A worker's stats pass for dataset-wide standardization: measures the train moments of the
/// shards it owns and saves them in the output folder, where the build workers read them all.
/// Returns (groups measured now, train groups this worker owns).
pub fn measure_worker_moments(
    p: &mut Pipeline,
    opts: &BuildOptions,
    progress: &dyn Progress,
) -> Result<(usize, usize)> {
    let Some(worker) = opts.worker.clone() else {
        return Err(Error::Usage(
            "measuring moments for workers needs --worker I/W".into(),
        ));
    };
    let Some(at) = dataset_stats::dataset_stage(p) else {
        return Err(Error::pipeline(&p.file, "segprep stats --worker measures the train moments for standardize mode = \"dataset\", which this pipeline does not have; run the build workers directly"));
    };
    thread_pool(opts.threads)?.install(|| {
        let run = inputs(p, opts)?;
        let out = claim_output(p, &run.found, &run.out_dir, opts)?;
        let groups =
            dataset_stats::train_groups(&run.found.pairs, &run.splits, run.fixed.as_deref());
        let owned = groups.iter().filter(|(s, _)| worker.owns(*s)).count();
        let mine: Vec<&PairRef> = groups
            .iter()
            .filter(|(s, _)| worker.owns(*s))
            .flat_map(|(_, pairs)| pairs)
            .collect();
        fetch_inputs(&mine, progress)?;
        let owns = |s| worker.owns(s);
        let measured = dataset_stats::save_worker_moments(p, at, &groups, &owns, &out, progress)?;
        Ok((measured, owned))
    })
}

/// The first sample (in key order) that processes, per split: its shape is what every sample of
/// that split must have. Splits may differ in size (an augment crop makes train samples smaller
/// than val's) but not in bands or dtype. Each split's first pair is processed in parallel, and
/// its samples are kept for the run, which would otherwise process it a second time.
fn reference_samples(p: &Pipeline, pairs: &[PairRef], splits: &[String]) -> Result<References> {
    use rayon::prelude::*;
    // each split's first pair: walked backwards, the lowest index is the last one inserted
    let firsts: BTreeMap<&String, usize> = splits
        .iter()
        .enumerate()
        .rev()
        .map(|(i, s)| (s, i))
        .collect();
    let mut early: BTreeMap<usize, Result<Vec<Sample>>> = firsts
        .into_values()
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|i| (i, process_pair(p, &p.stages, &pairs[i], &splits[i])))
        .collect();
    let mut by_split: BTreeMap<String, Sample> = BTreeMap::new();
    let mut processed = Vec::new();
    let mut first_error = None;
    for (i, (pair, split)) in pairs.iter().zip(splits).enumerate() {
        if by_split.contains_key(split) {
            continue;
        }
        let result = early
            .remove(&i)
            .unwrap_or_else(|| process_pair(p, &p.stages, pair, split));
        match result {
            Ok(samples) if !samples.is_empty() => {
                by_split.insert(split.clone(), samples[0].clone());
                processed.push((pair.clone(), split.clone(), samples));
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
    Ok(References {
        first,
        by_split,
        processed: std::sync::Mutex::new(processed),
    })
}

/// Reference samples: the first split's, and each split's own.
pub struct References {
    pub first: Sample,
    pub by_split: BTreeMap<String, Sample>,
    /// The reference pairs' samples (pair, split, samples), until the run takes them.
    processed: std::sync::Mutex<Vec<(PairRef, String, Vec<Sample>)>>,
}

impl References {
    pub fn of(&self, split: &str) -> &Sample {
        self.by_split.get(split).unwrap_or(&self.first)
    }

    /// The samples of `pair` in `split` if it is a reference pair not yet taken.
    pub fn take_processed(&self, pair: &PairRef, split: &str) -> Option<Vec<Sample>> {
        let mut processed = self.processed.lock().unwrap_or_else(|e| e.into_inner());
        let at = processed
            .iter()
            .position(|(p, s, _)| p == pair && s == split)?;
        Some(processed.swap_remove(at).2)
    }
}
