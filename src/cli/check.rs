use super::progress_bar::Bar;
use super::CheckArgs;
use crate::check::{check, CheckReport};
use crate::engine::thread_pool;
use crate::error::Result;
use crate::pipeline::Pipeline;

/// How many names of a list are printed.
const SHOWN: usize = 20;

pub fn run(a: CheckArgs) -> Result<i32> {
    let pipeline = super::load_pipeline(&a.pipeline)?;
    let report = thread_pool(a.threads)?.install(|| check(&pipeline, &Bar::new()))?;
    print_report(&pipeline, &report);
    let problems = report.problem_count(&pipeline);
    if problems > 0 {
        println!("\n{problems} problem(s) would stop a build.");
        Ok(crate::error::EXIT_DATA)
    } else {
        println!("\nno problems found.");
        Ok(0)
    }
}

fn list(title: &str, items: &[String]) {
    println!("{title}: {}", items.len());
    for i in items.iter().take(SHOWN) {
        println!("  {i}");
    }
    if items.len() > SHOWN {
        println!("  ... and {} more", items.len() - SHOWN);
    }
}

fn print_report(p: &Pipeline, r: &CheckReport) {
    let d = &r.discovery;
    println!("pairs found: {}", d.pairs.len());
    let names = |v: &[std::path::PathBuf]| {
        v.iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
    };
    list("images without a label", &names(&d.unpaired_images));
    list("labels without an image", &names(&d.unpaired_labels));
    if !d.ignored.is_empty() {
        list(
            "files not matching the naming rules (ignored)",
            &names(&d.ignored),
        );
    }
    println!("image modes and sizes:");
    for ((mode, w, h), n) in &r.image_modes {
        println!("  {n:>6} × {mode} {w}x{h}");
    }
    println!("label files:");
    for (kind, n) in &r.label_kinds {
        println!("  {n:>6} × {kind}");
    }
    let mismatches: Vec<String> = r
        .size_mismatches
        .iter()
        .map(|m| {
            let (l, i) = (m.label_size, m.image_size);
            let note = m
                .note
                .as_deref()
                .map_or(String::new(), |n| format!(" ({n})"));
            format!(
                "{}: label {}x{}, image {}x{}{note}",
                m.label.display(),
                l.0,
                l.1,
                i.0,
                i.1
            )
        })
        .collect();
    list("image/label size mismatches", &mismatches);
    let unreadable: Vec<String> = r
        .unreadable
        .iter()
        .map(|(f, e)| format!("{}: {e}", f.display()))
        .collect();
    list("unreadable files", &unreadable);
    println!(
        "label values seen (format {:?}, ignore index {}):",
        p.config.labels.format, p.input_classes.ignore_index
    );
    for (value, seen) in &r.values {
        let class = seen.class.as_deref().unwrap_or("UNMAPPED");
        println!(
            "  {value:<24} -> {class:<20} {:>12} px in {} file(s)",
            seen.pixels, seen.files
        );
    }
    if r.jpeg_labels > 0 {
        println!(
            "warning: {} label file(s) are JPEG (lossy: ids change at edges)",
            r.jpeg_labels
        );
    }
    if r.exif_turned > 0 {
        println!(
            "JPEG images with an EXIF orientation: {} ([input] exif = {:?})",
            r.exif_turned, p.config.input.exif
        );
    }
    let splits: Vec<String> = r.splits.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!("splits: {}", splits.join(", "));
}
