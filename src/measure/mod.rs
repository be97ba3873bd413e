//! The `segprep stats` job: the class-balance report of a pipeline's input (decoded and counted
//! here, `input`) or of a finished build (its stats.json, or its shards recounted).
pub mod input;

use std::path::Path;

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::stats::report::{self, split_reports, Report, ReportOptions};
use crate::stats::{recompute, stats_file};

#[derive(Debug, Clone, Copy)]
pub struct StatsOptions {
    /// Pipeline input: run every stage (images decoded too), not only remaps.
    pub geometry: bool,
    /// Built output: recount from the shards and compare with stats.json.
    pub recompute: bool,
    pub report: ReportOptions,
}

/// The report of a pipeline's input (after every stage with `geometry`), with the default
/// thresholds, as `segprep stats PIPELINE --format json` prints it.
pub fn json_report(pipeline: &Path, geometry: bool, progress: &dyn Progress) -> Result<String> {
    let options = StatsOptions {
        geometry,
        recompute: false,
        report: ReportOptions::default(),
    };
    report(pipeline, &options, progress).map(|r| crate::stats::render::json(&r))
}

/// The report for a pipeline file (its input) or a build folder (its stats.json, or its shards).
pub fn report(target: &Path, o: &StatsOptions, progress: &dyn Progress) -> Result<Report> {
    if target.is_dir() {
        if o.geometry {
            return Err(Error::Usage("--geometry applies to a pipeline file; a build's counts are after every stage already".into()));
        }
        return built_report(target, o);
    }
    if o.recompute {
        return Err(Error::Usage(
            "--recompute applies to a build folder (one holding index.json)".into(),
        ));
    }
    let p = crate::pipeline::load(target)?;
    let m = input::measure(&p, o.geometry, progress)?;
    let what = if o.geometry {
        "every stage"
    } else {
        "remap (no geometric stages; --geometry for those)"
    };
    finish(Report {
        source: format!("input of {}, labels after {what}", target.display()),
        ignore_index: p.classes.ignore_index,
        rare_threshold: o.report.rare,
        effective_number_beta: o.report.beta,
        splits: split_reports(&m.splits, o.report),
        before_remap: m.before_remap.as_ref().map(|b| split_reports(b, o.report)),
        quality: m.quality,
        recompute_differences: None,
        warnings: Vec::new(),
    })
}

fn built_report(dir: &Path, o: &StatsOptions) -> Result<Report> {
    let built = recompute::read_index(dir)?;
    let written = stats_file::read_counts(dir)?;
    let mut quality = report::Quality::default();
    let (splits, differences, source) = if o.recompute {
        let (recomputed, q) = recompute::recompute(dir, &built)?;
        quality = q;
        let diffs = recompute::compare(&written, &recomputed);
        (
            recomputed,
            Some(diffs),
            format!("build {}, recounted from its shards", dir.display()),
        )
    } else {
        (
            written,
            None,
            format!(
                "build {} (stats.json, counted at build time)",
                dir.display()
            ),
        )
    };
    for (name, s) in &splits {
        if s.unknown_pixels > 0 {
            quality.undeclared.push((
                format!("{name}: values mapped to ignore at build (unknown = \"ignore\")"),
                s.unknown_pixels,
                0,
            ));
        }
    }
    finish(Report {
        source,
        ignore_index: built.classes.ignore_index,
        rare_threshold: o.report.rare,
        effective_number_beta: o.report.beta,
        splits: split_reports(&splits, o.report),
        before_remap: None,
        quality,
        recompute_differences: differences,
        warnings: Vec::new(),
    })
}

fn finish(mut r: Report) -> Result<Report> {
    r.warnings = report::warnings(&r);
    Ok(r)
}
