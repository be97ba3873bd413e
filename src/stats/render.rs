//! The report for people (an aligned table with a bar per class, coloured on a terminal) and for
//! programs (JSON, CSV, Parquet, Markdown).
use polars::prelude::*;
use std::fmt::Write;

use super::report::{Report, SplitReport};

const BAR: usize = 24;

struct Paint(bool);

impl Paint {
    fn on(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percent(share: f64) -> String {
    if share > 0.0 && share < 0.0001 {
        "<0.01%".into()
    } else {
        format!("{:.2}%", share * 100.0)
    }
}

fn bar(share: f64) -> String {
    let eighths = (share * (BAR * 8) as f64).round() as usize;
    let eighths = if share > 0.0 { eighths.max(1) } else { 0 };
    let mut s = "█".repeat(eighths / 8);
    if eighths % 8 > 0 {
        s.push(['▏', '▎', '▍', '▌', '▋', '▊', '▉'][eighths % 8 - 1]);
    }
    s
}

pub fn terminal(r: &Report, colour: bool) -> String {
    let paint = Paint(colour);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        paint.on("1", &format!("class balance: {}", r.source))
    );
    for s in &r.splits {
        split_table(&mut out, s, r, &paint);
    }
    if let Some(before) = &r.before_remap {
        let _ = writeln!(out, "\n{}", paint.on("1", "before remap (input classes):"));
        for s in before {
            let _ = writeln!(out, "  {}:", s.split);
            for c in s.classes.iter().filter(|c| c.pixels > 0) {
                let _ = writeln!(
                    out,
                    "    {:>5}  {:<24} {:>14} {:>8}",
                    c.id,
                    c.name,
                    thousands(c.pixels),
                    percent(c.share)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "\nweights: w_inv = N / (K·N_c); w_med = median(f) / f_c with f_c = N_c / S_c; w_enet = 1 / ln(1.02 + p_c); \
         w_eff = (1 − β) / (1 − β^n_c) on image counts, β = {}, summing to K (see `segprep stats --help`)",
        r.effective_number_beta
    );
    quality(&mut out, r, &paint);
    if let Some(d) = &r.recompute_differences {
        if d.is_empty() {
            let _ = writeln!(
                out,
                "\n{}",
                paint.on("32", "recomputed from the shards: agrees with stats.json")
            );
        } else {
            let _ = writeln!(
                out,
                "\n{}",
                paint.on("31", "recomputed from the shards: DIFFERS from stats.json")
            );
            for line in d {
                let _ = writeln!(out, "  {line}");
            }
        }
    }
    for w in &r.warnings {
        let _ = writeln!(out, "{}", paint.on("33", &format!("warning: {w}")));
    }
    out
}

fn split_table(out: &mut String, s: &SplitReport, r: &Report, paint: &Paint) {
    let _ = writeln!(
        out,
        "\n{}: {} samples, {} labelled pixels; ignore {}, pad {}, undeclared {}",
        paint.on("1", &s.split),
        s.samples,
        thousands(s.labelled_pixels),
        thousands(s.ignore_pixels),
        thousands(s.pad_pixels),
        thousands(s.unknown_pixels)
    );
    if let Some(i) = &s.instances {
        let _ = writeln!(
            out,
            "  instances: {} in {} images, at most {} per image",
            i.total, i.images_with_instances, i.max_per_image
        );
    }
    let name_width = s
        .classes
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 32);
    let _ = writeln!(
        out,
        "  {:>5}  {:<name_width$} {:>14} {:>8}  {:<BAR$} {:>7} {:>14} {:>8} {:>8} {:>8} {:>8}",
        "id",
        "class",
        "pixels",
        "share",
        "",
        "images",
        "image px",
        "w_inv",
        "w_med",
        "w_enet",
        "w_eff"
    );
    for c in &s.classes {
        let flag = if c.pixels == 0 {
            paint.on("31", "absent")
        } else if c.rare {
            paint.on("33", "rare")
        } else {
            String::new()
        };
        let b = format!("{:<BAR$}", bar(c.share));
        let line = format!(
            "  {:>5}  {:<name_width$} {:>14} {:>8}  {} {:>7} {:>14} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {flag}",
            c.id,
            c.name,
            thousands(c.pixels),
            percent(c.share),
            paint.on("36", &b),
            c.images,
            thousands(c.image_pixels),
            c.weight_inverse,
            c.weight_median,
            c.weight_enet,
            c.weight_effective,
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if let (Some(name), Some(acc)) = (&s.majority_class, s.majority_accuracy) {
        let _ = writeln!(
            out,
            "  A model that always predicts `{name}` scores {} pixel accuracy on {} (ignore and pad excluded).",
            paint.on("1", &format!("{:.1}%", acc * 100.0)),
            s.split
        );
    }
    if let Some(ratio) = s.imbalance_ratio {
        let _ = writeln!(out, "  Imbalance: the most frequent class has {ratio:.1}× the pixels of the least frequent.");
    }
    if !s.rare.is_empty() {
        let _ = writeln!(
            out,
            "  Rare (under {} of labelled pixels): {}",
            percent(r.rare_threshold),
            s.rare.join(", ")
        );
    }
    if !s.absent.is_empty() {
        let _ = writeln!(out, "  Absent: {}", s.absent.join(", "));
    }
}

fn quality(out: &mut String, r: &Report, paint: &Paint) {
    let q = &r.quality;
    let _ = writeln!(out, "\n{}", paint.on("1", "data quality:"));
    let list = |out: &mut String, title: &str, items: &[String]| {
        let _ = writeln!(out, "  {title}: {}", items.len());
        for i in items.iter().take(10) {
            let _ = writeln!(out, "    {i}");
        }
        if items.len() > 10 {
            let _ = writeln!(out, "    ... and {} more", items.len() - 10);
        }
    };
    let undeclared: Vec<String> = q
        .undeclared
        .iter()
        .map(|(v, px, files)| format!("{v}: {} pixels in {files} file(s)", thousands(*px)))
        .collect();
    list(out, "undeclared label values or colours", &undeclared);
    list(
        out,
        "samples whose label holds a single class",
        &q.single_class,
    );
    list(out, "samples whose label is all ignore", &q.all_ignore);
    let unreadable: Vec<String> = q
        .unreadable
        .iter()
        .map(|(f, m)| format!("{f}: {m}"))
        .collect();
    list(out, "files that could not be counted", &unreadable);
    if q.unpaired_files > 0 {
        let _ = writeln!(out, "  unpaired files (not counted): {}", q.unpaired_files);
    }
}

pub fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r).expect("report serializes") + "\n"
}

pub fn csv(r: &Report) -> PolarsResult<Vec<u8>> {
    let mut df = r.table()?;
    let mut bytes = Vec::new();
    CsvWriter::new(&mut bytes)
        .include_header(true)
        .finish(&mut df)?;
    Ok(bytes)
}

pub fn parquet(r: &Report) -> PolarsResult<Vec<u8>> {
    let mut df = r.table()?;
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes).finish(&mut df)?;
    Ok(bytes)
}

/// A GitHub-flavoured Markdown table of the polars table, then the plain statements.
pub fn markdown(r: &Report) -> PolarsResult<String> {
    let df = r.table()?;
    let mut out = String::new();
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let _ = writeln!(out, "| {} |", names.join(" | "));
    let _ = writeln!(out, "|{}", names.iter().map(|_| "---|").collect::<String>());
    let columns: Vec<Vec<String>> = df
        .columns()
        .iter()
        .map(|c| {
            (0..df.height())
                .map(|i| match c.get(i) {
                    Ok(AnyValue::Float64(f)) => format!("{f:.4}"),
                    Ok(AnyValue::String(s)) => s.to_string(),
                    Ok(v) => v.to_string(),
                    Err(_) => String::new(),
                })
                .collect()
        })
        .collect();
    for i in 0..df.height() {
        let row: Vec<&str> = columns.iter().map(|c| c[i].as_str()).collect();
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    for s in &r.splits {
        if let (Some(name), Some(acc)) = (&s.majority_class, s.majority_accuracy) {
            let _ = writeln!(
                out,
                "\nAlways predicting `{name}` scores {:.1}% pixel accuracy on {}.",
                acc * 100.0,
                s.split
            );
        }
    }
    Ok(out)
}
