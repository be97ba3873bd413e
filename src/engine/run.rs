//! Running the planned shards: each shard is skipped if its record says it is complete, otherwise
//! computed in batches (rayon) and handed to the writer thread, which writes one batch while the
//! next is computed; a committer thread syncs, hashes and renames written shards and records them.
//! Bad samples stop the run or, with `on_error = "skip"`, are left out and listed.
use rayon::prelude::*;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use super::output::{OutputDir, ShardRecord, SkippedSample};
use super::plan::check_shape;
use super::process;
use crate::error::{Error, Result};
use crate::pipeline::schema::OnError;
use crate::pipeline::Pipeline;
use crate::progress::Progress;
use crate::sample::{PairRef, Sample};
use crate::sink::{self, Commit, ShardPlan, Sink};
use crate::stats::counts::{SampleCounts, SplitCounts};

/// What the compute side sends the writer thread.
enum ToWriter {
    Begin(ShardPlan),
    Batch(Vec<Sample>),
    /// The shard's counts and skipped samples; the writer completes the files and the record.
    Finish(usize, SplitCounts, Vec<SkippedSample>),
}

/// What running the shards gives: the record of every shard this process owns in plan order
/// (`None` for a shard another worker builds), and how many were kept from an earlier run.
pub struct ShardResults {
    pub records: Vec<Option<ShardRecord>>,
    pub resumed: usize,
}

/// Runs every shard `owns` accepts; shards whose record and files check out (verified once, here)
/// are kept.
pub fn run_shards(
    p: &Pipeline,
    out: &OutputDir,
    plans: &[ShardPlan],
    references: &super::References,
    owns: &(dyn Fn(usize) -> bool + Sync),
    progress: &dyn Progress,
) -> Result<ShardResults> {
    let reference = &references.first;
    let total: usize = (0..plans.len())
        .filter(|&s| owns(s))
        .map(|s| plans[s].pairs.len())
        .sum();
    progress.start("building shards", total as u64);
    let sink = sink::for_layout(p, &out.dir);
    let batch = sink
        .batch_samples(sink::sample_bytes(reference, p.label_dtype))
        .max(1);
    let mut records: Vec<Option<ShardRecord>> = (0..plans.len())
        .into_par_iter()
        .map(|i| owns(i).then(|| out.valid_record(i, false)).flatten())
        .collect();
    let resumed = records.iter().flatten().count();
    let result = std::thread::scope(|scope| -> Result<Vec<(usize, ShardRecord)>> {
        // rendezvous: compute hands a batch over only when the writer has written the last one,
        // so one shard's pixels at most are held (a whole shard for NPZ); syncing, hashing and
        // renaming hold no pixels and run on a third thread, so compute does not wait for them
        let (tx, rx) = sync_channel::<ToWriter>(0);
        let (commit_tx, commit_rx) = sync_channel::<Written>(1);
        let committer = scope.spawn(move || commit_shards(out, commit_rx));
        let writer = scope.spawn(move || write_shards(sink, rx, commit_tx));
        let computed = compute_shards(p, plans, owns, &records, references, batch, progress, &tx);
        drop(tx);
        let written = join(writer, "writer");
        let committed = join(committer, "committer").and_then(|done| done);
        // a compute error explains a writer that stopped early, a writer's error a committer's
        // short list; otherwise the committer's own error
        computed.and(written.and_then(|w| w)).and(committed)
    });
    progress.finish();
    for (i, record) in result? {
        records[i] = Some(record);
    }
    Ok(ShardResults { records, resumed })
}

/// A shard whose bytes are written, waiting to be made whole and recorded.
struct Written {
    index: usize,
    counts: SplitCounts,
    skipped: Vec<SkippedSample>,
    commit: Commit,
}

/// The writer thread: writes each shard's batches and hands the written shard to the committer.
fn write_shards(
    mut sink: Box<dyn Sink>,
    rx: Receiver<ToWriter>,
    committer: SyncSender<Written>,
) -> Result<()> {
    for message in rx {
        match message {
            ToWriter::Begin(plan) => sink.begin(&plan)?,
            ToWriter::Batch(samples) => sink.write(samples)?,
            ToWriter::Finish(index, counts, skipped) => {
                let commit = sink.finish(&counts)?;
                let written = Written {
                    index,
                    counts,
                    skipped,
                    commit,
                };
                // a failed send means the committer stopped on an error, which run_shards reports
                if committer.send(written).is_err() {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// The committer thread: makes each written shard's files whole, then writes its record.
fn commit_shards(out: &OutputDir, rx: Receiver<Written>) -> Result<Vec<(usize, ShardRecord)>> {
    let mut done = Vec::new();
    for w in rx {
        let record = ShardRecord {
            files: (w.commit)()?,
            counts: w.counts,
            skipped: w.skipped,
        };
        out.commit_shard(w.index, &record)?;
        done.push((w.index, record));
    }
    Ok(done)
}

fn join<T>(thread: std::thread::ScopedJoinHandle<'_, T>, name: &str) -> Result<T> {
    thread
        .join()
        .map_err(|_| Error::Usage(format!("the shard {name} thread panicked")))
}

#[allow(clippy::too_many_arguments)]
fn compute_shards(
    p: &Pipeline,
    plans: &[ShardPlan],
    owns: &dyn Fn(usize) -> bool,
    done: &[Option<ShardRecord>],
    references: &super::References,
    batch: usize,
    progress: &dyn Progress,
    tx: &SyncSender<ToWriter>,
) -> Result<()> {
    // a failed send means the writer stopped on an error, which run_shards reports
    let send = |m: ToWriter| tx.send(m).is_ok();
    let mut errors_so_far: usize = done.iter().flatten().map(|r| r.skipped.len()).sum();
    for (i, plan) in plans.iter().enumerate() {
        if !owns(i) {
            continue;
        }
        if done[i].is_some() {
            progress.advance(plan.pairs.len() as u64);
            continue;
        }
        let (mut counts, mut skipped) = (SplitCounts::new(&p.classes), Vec::new());
        if !send(ToWriter::Begin(plan.clone())) {
            return Ok(());
        }
        // a batch is counted in samples: an augmented pair brings several
        let per_pair = p.samples_per_pair(&plan.split);
        let pairs_per_batch = (batch / per_pair).max(1);
        for pairs in plan.pairs.chunks(pairs_per_batch) {
            let mut samples = Vec::with_capacity(pairs.len() * per_pair);
            for (pair, result) in pairs.iter().zip(process_batch(
                p,
                pairs,
                &plan.split,
                references.of(&plan.split),
                progress,
            )) {
                match result {
                    Ok(produced) => {
                        for (s, c) in produced {
                            counts.add(&c);
                            samples.push(s);
                        }
                    }
                    Err(e) => {
                        skipped.push(skip_or_fail(p, pair, e, errors_so_far + skipped.len())?)
                    }
                }
            }
            if !samples.is_empty() && !send(ToWriter::Batch(samples)) {
                return Ok(());
            }
        }
        errors_so_far += skipped.len();
        if !send(ToWriter::Finish(i, counts, skipped)) {
            return Ok(());
        }
    }
    Ok(())
}

/// With `on_error = "fail"` the error stops the run; with `skip` it is recorded, up to `max_errors`.
fn skip_or_fail(p: &Pipeline, pair: &PairRef, e: Error, before: usize) -> Result<SkippedSample> {
    let run = &p.config.run;
    if run.on_error == OnError::Fail {
        return Err(e);
    }
    if let Some(max) = run.max_errors {
        if before >= max {
            return Err(Error::DataSet {
                summary: format!("more than max_errors = {max} samples failed; the last one:"),
                problems: vec![e],
            });
        }
    }
    Ok(skipped_sample(pair, e))
}

pub fn skipped_sample(pair: &PairRef, e: Error) -> SkippedSample {
    match e {
        Error::Data {
            file,
            stage,
            message,
        } => SkippedSample {
            key: pair.key.clone(),
            file,
            stage,
            message,
        },
        other => SkippedSample {
            key: pair.key.clone(),
            file: pair.image.clone(),
            stage: "build".into(),
            message: other.to_string(),
        },
    }
}

/// Processes pairs in parallel; results come back in the pairs' order whatever thread finished first.
fn process_batch(
    p: &Pipeline,
    pairs: &[PairRef],
    split: &str,
    reference: &Sample,
    progress: &dyn Progress,
) -> Vec<Result<Vec<(Sample, SampleCounts)>>> {
    pairs
        .par_iter()
        .map(|pair| {
            let result = process(p, &p.stages, pair, split).and_then(|samples| {
                samples
                    .into_iter()
                    .map(|mut s| {
                        check_shape(&s, reference, p.config.output.layout().fixed_size())?;
                        let c = SampleCounts::of(&s, &p.classes)
                            .map_err(|m| Error::data(pair.label_path(), "stats", m))?;
                        // counted; no sink writes the mask, so it is not held until the shard is
                        s.padding = None;
                        Ok((s, c))
                    })
                    .collect()
            });
            progress.advance(1);
            result
        })
        .collect()
}
