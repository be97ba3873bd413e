use super::progress_bar::Bar;
use super::ApplyArgs;
use crate::engine::thread_pool;
use crate::error::{Error, Result};
use crate::inference::apply::{apply, ApplyOptions};
use crate::inference::replay;

pub fn run(a: ApplyArgs) -> Result<i32> {
    if a.batch == 0 {
        return Err(Error::Usage("--batch must be at least 1".into()));
    }
    let replay = replay::load(&a.build, a.any_version)?;
    let opts = ApplyOptions {
        images: a.images,
        out: a.out,
        format: a.format,
        batch: a.batch,
    };
    let summary = thread_pool(a.threads)?.install(|| apply(&replay, &opts, &Bar::new()))?;
    for (key, reason) in &summary.skipped {
        eprintln!("skipped {key}: {reason}");
    }
    println!(
        "prepared {} image(s) into {} file(s) in {} (geometry in samples.jsonl)",
        summary.images,
        summary.files,
        crate::source::tidy(&opts.out).display()
    );
    Ok(0)
}
