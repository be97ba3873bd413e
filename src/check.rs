//! `segprep check`: a dry run that reads headers and labels, writes nothing, and reports what a
//! build would meet: pairs, unpaired files, image modes and sizes, size mismatches, label values
//! or colours seen and which of them are not mapped.
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::decode::is_jpeg;
use crate::decode::label::RawValue;
use crate::decode::stack::{pair_header, PairHeader};
use crate::error::Result;
use crate::pipeline::Pipeline;
use crate::progress::Progress;
use crate::sample::{LabelSource, PairRef};
use crate::source::{discover_all, Discovery};

#[derive(Debug, Default)]
pub struct ValueSeen {
    pub pixels: u64,
    pub files: u64,
    /// The class it maps to, or `None` if it is not declared.
    pub class: Option<String>,
}

#[derive(Debug)]
pub struct SizeMismatch {
    pub label: PathBuf,
    pub label_size: (u32, u32),
    pub image_size: (u32, u32),
    /// For a turned JPEG: which orientation the label matches.
    pub note: Option<String>,
}

#[derive(Debug, Default)]
pub struct CheckReport {
    pub discovery: Discovery,
    /// (mode, width, height) -> number of images.
    pub image_modes: BTreeMap<(String, u32, u32), usize>,
    pub label_kinds: BTreeMap<String, usize>,
    pub size_mismatches: Vec<SizeMismatch>,
    pub values: BTreeMap<RawValue, ValueSeen>,
    /// Files that could not be read, with the reason.
    pub unreadable: Vec<(PathBuf, String)>,
    pub jpeg_labels: usize,
    /// JPEG images with an EXIF orientation other than "as stored".
    pub exif_turned: usize,
    pub splits: BTreeMap<String, usize>,
}

impl CheckReport {
    pub fn unmapped(&self) -> impl Iterator<Item = (&RawValue, &ValueSeen)> {
        self.values.iter().filter(|(_, v)| v.class.is_none())
    }

    /// Problems that would stop a build (given the pipeline's policies).
    pub fn problem_count(&self, p: &Pipeline) -> usize {
        use crate::decode::label::UnknownPolicy;
        use crate::source::UnpairedPolicy;
        let unpaired = self.discovery.unpaired_images.len() + self.discovery.unpaired_labels.len();
        let unpaired = if p.config.input.unpaired == UnpairedPolicy::Error {
            unpaired
        } else {
            0
        };
        let unmapped = if p.config.labels.unknown == UnknownPolicy::Error {
            self.unmapped().count()
        } else {
            0
        };
        unpaired
            + unmapped
            + self.size_mismatches.len()
            + self.unreadable.len()
            + usize::from(self.discovery.pairs.is_empty())
    }
}

struct LabelFacts {
    kind: String,
    size: (u32, u32),
    histogram: BTreeMap<RawValue, u64>,
}

struct PairFacts {
    image: std::result::Result<PairHeader, (PathBuf, String)>,
    label: std::result::Result<LabelFacts, String>,
}

pub fn check(p: &Pipeline, progress: &dyn Progress) -> Result<CheckReport> {
    let discovery = discover_all(&p.source())?;
    let mut report = CheckReport::default();
    if let Ok(splits) = p.split.assign(&discovery.pairs) {
        for s in splits {
            *report.splits.entry(s).or_default() += 1;
        }
    }
    progress.start("checking pairs", discovery.pairs.len() as u64);
    let input = &p.config.input;
    let rules = input.image_rules();
    let facts: Vec<PairFacts> = discovery
        .pairs
        .par_iter()
        .map(|pair| {
            let image = pair_header(pair, &rules, p.config.input.channels);
            let label = label_facts(p, pair, image.as_ref().ok());
            progress.advance(1);
            PairFacts { image, label }
        })
        .collect();
    progress.finish();
    for (pair, f) in discovery.pairs.iter().zip(facts) {
        let image = match f.image {
            Ok(h) => h,
            Err(e) => {
                report.unreadable.push(e);
                continue;
            }
        };
        *report
            .image_modes
            .entry((image.mode.clone(), image.width, image.height))
            .or_default() += 1;
        report.exif_turned += usize::from(image.exif.is_some());
        let LabelFacts {
            kind,
            size,
            histogram,
        } = match f.label {
            Ok(x) => x,
            Err(e) => {
                report.unreadable.push((pair.label_path().to_path_buf(), e));
                continue;
            }
        };
        *report.label_kinds.entry(kind).or_default() += 1;
        if size != (image.width, image.height) {
            let note = image.exif.as_ref().map(|(o, stored)| {
                if *stored == size {
                    format!("the label matches the image as stored, before its EXIF orientation {o}: set [input] exif = \"ignore\"")
                } else {
                    format!("the label matches neither the stored image nor its EXIF orientation {o}")
                }
            });
            report.size_mismatches.push(SizeMismatch {
                label: pair.label_path().to_path_buf(),
                label_size: size,
                image_size: (image.width, image.height),
                note,
            });
        }
        for (value, n) in histogram {
            let seen = report.values.entry(value).or_default();
            seen.pixels += n;
            seen.files += 1;
            seen.class = p.decoder.lookup(value).map(|id| class_name(p, id));
        }
        report.jpeg_labels +=
            usize::from(matches!(&pair.label, LabelSource::File(f) if is_jpeg(f)));
    }
    report.discovery = discovery;
    Ok(report)
}

/// A label file's raw values; for mask sources, the merged class ids.
fn label_facts(
    p: &Pipeline,
    pair: &PairRef,
    image: Option<&PairHeader>,
) -> std::result::Result<LabelFacts, String> {
    match (&pair.label, image) {
        (LabelSource::File(f), _) => p.decoder.histogram(f).map(|(raw, histogram)| LabelFacts {
            kind: raw.kind().to_string(),
            size: (raw.width, raw.height),
            histogram,
        }),
        (source, Some(h)) => {
            let (histogram, _) = p
                .decoder
                .source_histogram(source, h.width, h.height)
                .map_err(|e| e.to_string())?;
            let kind = match source {
                LabelSource::Background => "none (all background)",
                _ => "binary masks",
            };
            Ok(LabelFacts {
                kind: kind.into(),
                size: (h.width, h.height),
                histogram,
            })
        }
        (_, None) => Err("not checked: its image is unreadable".into()),
    }
}

fn class_name(p: &Pipeline, id: u16) -> String {
    if id == p.input_classes.ignore_index {
        return "(ignore)".into();
    }
    p.input_classes
        .by_id(id)
        .map_or_else(|| format!("id {id}"), |c| c.name.clone())
}
