use super::progress_bar::Bar;
use super::RestoreArgs;
use crate::engine::thread_pool;
use crate::error::Result;
use crate::inference::replay;
use crate::inference::restore::{restore, RestoreOptions};

pub fn run(a: RestoreArgs) -> Result<i32> {
    let replay = replay::load(&a.build, a.any_version)?;
    let opts = RestoreOptions {
        predictions: a.predictions,
        out: a.out,
        applied: a.applied,
        probabilities: a.probabilities,
        skip_missing: a.skip_missing,
    };
    let summary = thread_pool(a.threads)?.install(|| restore(&replay, &opts, &Bar::new()))?;
    if !summary.missing.is_empty() {
        eprintln!(
            "{} image(s) had no prediction and were left out (first: {})",
            summary.missing.len(),
            summary.missing[0]
        );
    }
    println!(
        "restored {} prediction(s) to their original size in {} (<key>.png class ids, <key>_color.png)",
        summary.restored,
        crate::source::tidy(&opts.out).display()
    );
    Ok(0)
}
