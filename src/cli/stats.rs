use std::io::{IsTerminal, Write};

use super::progress_bar::Bar;
use super::{StatsArgs, StatsFormat};
use crate::engine::thread_pool;
use crate::error::{Error, Result};
use crate::measure::{report, StatsOptions};
use crate::stats::report::ReportOptions;
use crate::stats::{plot, render};

pub fn run(a: StatsArgs) -> Result<i32> {
    if a.sharding.worker.is_some() || a.sharding.workers.is_some() {
        return worker_moments(a);
    }
    if a.sharding.num_shards.is_some() || a.build_dir.is_some() {
        return Err(Error::Usage(
            "--num-shards and --build-dir go with --worker (the stats pass of a worker build)"
                .into(),
        ));
    }
    if !(0.0..1.0).contains(&a.rare) || !(0.0..1.0).contains(&a.beta) || a.beta == 0.0 {
        return Err(Error::Usage(
            "--rare and --beta are between 0 and 1 (--beta above 0)".into(),
        ));
    }
    let options = StatsOptions {
        geometry: a.geometry,
        recompute: a.recompute,
        report: ReportOptions {
            rare: a.rare,
            beta: a.beta,
        },
    };
    let r = thread_pool(a.threads)?.install(|| report(&a.target, &options, &Bar::new()));
    super::report_fetched();
    let r = r?;
    let polars_err =
        |e: polars::error::PolarsError| Error::Usage(format!("cannot write the table: {e}"));
    let bytes = match a.format {
        StatsFormat::Table => {
            let colour = a.out.is_none() && std::io::stdout().is_terminal();
            render::terminal(&r, colour).into_bytes()
        }
        StatsFormat::Json => render::json(&r).into_bytes(),
        StatsFormat::Csv => render::csv(&r).map_err(polars_err)?,
        StatsFormat::Markdown => render::markdown(&r).map_err(polars_err)?.into_bytes(),
        StatsFormat::Parquet if a.out.is_none() => {
            return Err(Error::Usage(
                "--format parquet needs --out FILE.parquet".into(),
            ))
        }
        StatsFormat::Parquet => render::parquet(&r).map_err(polars_err)?,
    };
    match &a.out {
        Some(path) => write_file(path, &bytes)?,
        None => std::io::stdout()
            .write_all(&bytes)
            .map_err(|e| Error::Usage(format!("cannot write to standard output: {e}")))?,
    }
    if let Some(path) = &a.plot {
        if path.extension().and_then(|e| e.to_str()) != Some("svg") {
            return Err(Error::Usage(format!(
                "--plot writes SVG: name the file .svg, not {}",
                path.display()
            )));
        }
        write_file(path, plot::svg(&r).as_bytes())?;
    }
    let disagrees = r
        .recompute_differences
        .as_ref()
        .is_some_and(|d| !d.is_empty());
    Ok(if disagrees {
        crate::error::EXIT_DATA
    } else {
        0
    })
}

fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    crate::storage::atomic::write_bytes(path, bytes)
}

/// `segprep stats PIPELINE --worker I/W`: the train moments of this worker's shards, saved in the
/// build folder for the build workers of a dataset-standardized pipeline.
fn worker_moments(a: StatsArgs) -> Result<i32> {
    let mut p = super::load_pipeline(&a.target)?;
    let worker = super::build::sharding(&mut p, &a.sharding)?;
    let opts = crate::engine::BuildOptions {
        threads: a.threads,
        out: a.build_dir.clone(),
        force: false,
        worker,
    };
    let measuring = crate::engine::measure_worker_moments(&mut p, &opts, &Bar::new());
    super::report_fetched();
    let (measured, owned) = measuring?;
    println!(
        "measured the train moments of {measured} shard(s) ({} already saved) of the {owned} this worker owns",
        owned - measured
    );
    Ok(0)
}
