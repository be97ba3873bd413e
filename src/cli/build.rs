use super::progress_bar::Bar;
use super::{BuildArgs, ShardingArgs};
use crate::engine::worker::{identify_from_process, Worker};
use crate::engine::{build, BuildOptions, BuildSummary};
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;

pub fn run(a: BuildArgs) -> Result<i32> {
    if a.threads == Some(0) {
        return Err(Error::Usage("--threads must be at least 1".into()));
    }
    let mut pipeline = super::load_pipeline(&a.pipeline)?;
    if a.augment_online {
        pipeline.set_augment_online()?;
    }
    let worker = sharding(&mut pipeline, &a.sharding)?;
    let opts = BuildOptions {
        threads: a.threads,
        out: a.out,
        force: a.force,
        worker: worker.clone(),
    };
    let summary = build(&mut pipeline, &opts, &Bar::new());
    super::report_fetched();
    let summary = summary?;
    for w in &summary.warnings {
        eprintln!("warning: {w}");
    }
    if summary.resumed_shards > 0 {
        eprintln!(
            "resumed: {} shard(s) were already complete and verified",
            summary.resumed_shards
        );
    }
    println!("{}", describe(&summary, worker.as_ref()));
    Ok(0)
}

/// Applies --num-shards and finds this process's worker identity (logged with its source).
pub fn sharding(p: &mut Pipeline, a: &ShardingArgs) -> Result<Option<Worker>> {
    if let Some(n) = a.num_shards {
        p.set_num_shards(n)?;
    }
    let worker = identify_from_process(a.worker.as_deref(), a.workers)?;
    if let Some(w) = &worker {
        eprintln!("worker {}/{} (from {})", w.index, w.count, w.source);
    }
    Ok(worker)
}

fn describe(s: &BuildSummary, worker: Option<&Worker>) -> String {
    let splits: Vec<String> = s
        .splits
        .iter()
        .filter(|(_, v)| worker.is_none() || v.samples > 0)
        .map(|(k, v)| format!("{k} {}", v.samples))
        .collect();
    let what = format!(
        "{} samples ({}) into {} file(s), {:.1} MiB, in {}",
        s.samples,
        splits.join(", "),
        s.files,
        s.bytes as f64 / (1 << 20) as f64,
        crate::source::tidy(&s.out_dir).display()
    );
    match worker {
        None => format!("built {what}"),
        Some(w) => format!(
            "worker {}/{} built {} of {} shards: {what}. When every worker is done: segprep merge {}",
            w.index,
            w.count,
            s.shards.0,
            s.shards.1,
            crate::source::tidy(&s.out_dir).display()
        ),
    }
}
