use super::progress_bar::Bar;
use super::BuildArgs;
use crate::engine::{build, BuildOptions};
use crate::error::{Error, Result};

pub fn run(a: BuildArgs) -> Result<i32> {
    if a.threads == Some(0) {
        return Err(Error::Usage("--threads must be at least 1".into()));
    }
    let mut pipeline = crate::pipeline::load(&a.pipeline)?;
    let opts = BuildOptions {
        threads: a.threads,
        out: a.out,
        force: a.force,
    };
    let summary = build(&mut pipeline, &opts, &Bar::new())?;
    for w in &summary.warnings {
        eprintln!("warning: {w}");
    }
    if summary.resumed_shards > 0 {
        eprintln!(
            "resumed: {} shard(s) were already complete and verified",
            summary.resumed_shards
        );
    }
    let splits: Vec<String> = summary
        .splits
        .iter()
        .map(|(k, v)| format!("{k} {}", v.samples))
        .collect();
    println!(
        "built {} samples ({}) into {} file(s), {:.1} MiB, in {}",
        summary.samples,
        splits.join(", "),
        summary.files,
        summary.bytes as f64 / (1 << 20) as f64,
        crate::source::tidy(&summary.out_dir).display()
    );
    Ok(0)
}
