//! Running the planned shards: each shard is skipped if its record says it is complete, otherwise
//! its pairs are computed on every thread, taken in plan order, and handed in batches to the
//! writer thread, which writes one batch while the next pairs are computed; a committer thread
//! syncs, hashes and renames written shards and records them.
//! Bad samples stop the run or, with `on_error = "skip"`, are left out and listed.
use rayon::prelude::*;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use super::output::{OutputDir, ShardRecord, SkippedSample};
use super::plan::check_shape;
use super::{fingerprint, ordered};
use crate::error::{Error, Result};
use crate::index::{Index, PairInputs};
use crate::pipeline::schema::OnError;
use crate::pipeline::Pipeline;
use crate::process::process_pair;
use crate::progress::Progress;
use crate::sample::{PairRef, Sample};
use crate::sink::{self, Commit, ShardPlan, Sink};
use crate::stats::counts::{SampleCounts, SplitCounts};

/// What the compute side sends the writer thread.
enum ToWriter {
    Begin(ShardPlan),
    Batch(Vec<Sample>),
    /// The shard's counts, skipped samples and inputs; the writer completes the files and the
    /// record.
    Finish(usize, SplitCounts, Vec<SkippedSample>, Vec<PairInputs>),
}

/// What running the shards gives: the record of every shard this process owns in plan order
/// (`None` for a shard another worker builds), and how many were kept from an earlier run.
pub struct ShardResults {
    pub records: Vec<Option<ShardRecord>>,
    pub resumed: usize,
}

/// Runs every shard `owns` accepts; shards whose record and files check out (verified once, here)
/// are kept. `build` is the index known before any shard, which the sink's metadata repeats.
pub fn run_shards(
    p: &Pipeline,
    build: &Index,
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
    let sink = sink::open(p.sink_options(), build, &out.dir);
    let batch = sink
        .batch_samples(sink::sample_bytes(reference, p.label_dtype))
        .max(1);
    let mut records: Vec<Option<ShardRecord>> = (0..plans.len())
        .into_par_iter()
        .map(|i| owns(i).then(|| out.valid_record(i)).flatten())
        .collect();
    let resumed = records.iter().flatten().count();
    let result = std::thread::scope(|scope| -> Result<Vec<(usize, ShardRecord)>> {
        // rendezvous: compute hands a batch over only when the writer has written the last one,
        // so few pixels wait for the writer (a sink may hold more: NPZ keeps a shard's labels,
        // or the whole shard when pairs may be skipped); syncing, hashing and renaming hold no
        // pixels and run on a third thread, so compute does not wait for them
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
    inputs: Vec<PairInputs>,
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
            ToWriter::Finish(index, counts, skipped, inputs) => {
                let commit = sink.finish(&counts)?;
                let written = Written {
                    index,
                    counts,
                    skipped,
                    inputs,
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
            inputs: w.inputs,
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

/// One pair to compute: its shard and its place in the shard.
struct Job<'a> {
    shard: usize,
    at: usize,
    pair: &'a PairRef,
}

/// A pair's samples with their class counts, and its input files; or why it failed.
type PairResult = Result<(Vec<(Sample, SampleCounts)>, PairInputs)>;

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
    let mut jobs = Vec::new();
    for (shard, plan) in plans.iter().enumerate().filter(|(i, _)| owns(*i)) {
        if done[shard].is_some() {
            progress.advance(plan.pairs.len() as u64);
            continue;
        }
        let pairs = plan.pairs.iter().enumerate();
        jobs.extend(pairs.map(|(at, pair)| Job { shard, at, pair }));
    }
    let roots = fingerprint::input_roots(p);
    let work = |job: &Job| {
        let split = &plans[job.shard].split;
        let processed = match references.take_processed(job.pair, split) {
            Some(samples) => Ok(samples),
            None => process_pair(p, &p.stages, job.pair, split),
        };
        let result = processed
            .and_then(|s| count_pair(p, job.pair, s, references.of(split)))
            .and_then(|counted| Ok((counted, fingerprint::of_pair(&roots, job.pair)?)));
        progress.advance(1);
        result
    };
    let errors_before = done.iter().flatten().map(|r| r.skipped.len()).sum();
    let mut shards = Assembler::new(p, plans, batch, errors_before, tx);
    let threads = rayon::current_num_threads();
    // a few pairs per thread ahead of the writer: enough that no thread waits while the writer
    // closes a shard, few enough that their samples stay small beside a shard
    let window = 2 * threads;
    ordered::for_each_in_order(&jobs, threads, window, work, |i, result| {
        shards.add(&jobs[i], result)
    });
    shards.outcome
}

/// Gathers computed pairs, in plan order, into the writer's messages: each shard's `Begin`, its
/// samples in batches of whole pairs, and its `Finish` with the shard's counts and skipped pairs.
struct Assembler<'a> {
    p: &'a Pipeline,
    plans: &'a [ShardPlan],
    /// Samples per batch; a batch holds whole pairs.
    batch: usize,
    tx: &'a SyncSender<ToWriter>,
    samples: Vec<Sample>,
    counts: SplitCounts,
    skipped: Vec<SkippedSample>,
    inputs: Vec<PairInputs>,
    /// Pairs skipped in the whole build so far, for `max_errors`.
    errors: usize,
    outcome: Result<()>,
}

impl<'a> Assembler<'a> {
    fn new(
        p: &'a Pipeline,
        plans: &'a [ShardPlan],
        batch: usize,
        errors: usize,
        tx: &'a SyncSender<ToWriter>,
    ) -> Self {
        Assembler {
            p,
            plans,
            batch,
            tx,
            samples: Vec::new(),
            counts: SplitCounts::new(&p.classes),
            skipped: Vec::new(),
            inputs: Vec::new(),
            errors,
            outcome: Ok(()),
        }
    }

    /// Takes the next pair's result; `false` when the run must stop (an error, or the writer
    /// stopped on one, which run_shards reports).
    fn add(&mut self, job: &Job, result: PairResult) -> bool {
        self.try_add(job, result).unwrap_or_else(|e| {
            self.outcome = Err(e);
            false
        })
    }

    fn try_add(&mut self, job: &Job, result: PairResult) -> Result<bool> {
        let plan = &self.plans[job.shard];
        if job.at == 0 && !self.send(ToWriter::Begin(plan.clone())) {
            return Ok(false);
        }
        match result {
            Ok((produced, inputs)) => {
                for (s, c) in produced {
                    self.counts.add(&c);
                    self.samples.push(s);
                }
                self.inputs.push(inputs);
            }
            Err(e) => {
                let skipped = skip_or_fail(self.p, job.pair, e, self.errors)?;
                self.skipped.push(skipped);
                self.errors += 1;
            }
        }
        // a batch is counted in samples: an augmented pair brings several
        let pairs_per_batch = (self.batch / self.p.samples_per_pair(&plan.split)).max(1);
        let last = job.at + 1 == plan.pairs.len();
        let batch_full = (job.at + 1).is_multiple_of(pairs_per_batch) || last;
        if batch_full && !self.samples.is_empty() {
            let samples = std::mem::take(&mut self.samples);
            if !self.send(ToWriter::Batch(samples)) {
                return Ok(false);
            }
        }
        if !last {
            return Ok(true);
        }
        let counts = std::mem::replace(&mut self.counts, SplitCounts::new(&self.p.classes));
        let skipped = std::mem::take(&mut self.skipped);
        let inputs = std::mem::take(&mut self.inputs);
        Ok(self.send(ToWriter::Finish(job.shard, counts, skipped, inputs)))
    }

    fn send(&self, message: ToWriter) -> bool {
        self.tx.send(message).is_ok()
    }
}

/// With `on_error = "fail"` the error stops the run; with `skip` it is recorded, up to `max_errors`.
/// An environment problem (an output that cannot be written, a store that cannot be reached) is
/// not the sample's fault: it stops the run under either policy.
fn skip_or_fail(p: &Pipeline, pair: &PairRef, e: Error, before: usize) -> Result<SkippedSample> {
    let run = &p.config.run;
    if run.on_error == OnError::Fail || matches!(e, Error::Output { .. }) {
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

/// A pair's samples, checked against the reference shape, with their class counts.
fn count_pair(
    p: &Pipeline,
    pair: &PairRef,
    samples: Vec<Sample>,
    reference: &Sample,
) -> Result<Vec<(Sample, SampleCounts)>> {
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
}
