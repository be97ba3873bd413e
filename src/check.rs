//! `segprep check`: a dry run that reads headers and labels, writes nothing, and reports what a
//! build would meet: pairs, unpaired files, image modes and sizes, size mismatches, label values
//! or colours seen and which of them are not mapped.
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::decode::image::{read_header, ImageHeader};
use crate::decode::is_jpeg;
use crate::decode::label::RawValue;
use crate::error::Result;
use crate::pipeline::Pipeline;
use crate::progress::Progress;
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
    pub splits: BTreeMap<String, usize>,
}

impl CheckReport {
    pub fn unmapped(&self) -> impl Iterator<Item = (&RawValue, &ValueSeen)> {
        self.values.iter().filter(|(_, v)| v.class.is_none())
    }

    /// Problems that would stop a build (given the pipeline's policies).
    pub fn problem_count(&self, p: &Pipeline) -> usize {
        use crate::pipeline::schema::{UnknownPolicy, UnpairedPolicy};
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
    image: std::result::Result<ImageHeader, String>,
    label: std::result::Result<LabelFacts, String>,
}

pub fn check(p: &Pipeline, progress: &dyn Progress) -> Result<CheckReport> {
    let discovery = discover_all(p)?;
    let mut report = CheckReport::default();
    if let Ok(splits) = p.split.assign(&discovery.pairs) {
        for s in splits {
            *report.splits.entry(s).or_default() += 1;
        }
    }
    progress.start("checking pairs", discovery.pairs.len() as u64);
    let facts: Vec<PairFacts> = discovery
        .pairs
        .par_iter()
        .map(|pair| {
            let image = read_header(&pair.image);
            let label = p
                .decoder
                .histogram(&pair.label)
                .map(|(raw, histogram)| LabelFacts {
                    kind: raw.kind().to_string(),
                    size: (raw.width, raw.height),
                    histogram,
                });
            progress.advance(1);
            PairFacts { image, label }
        })
        .collect();
    progress.finish();
    for (pair, f) in discovery.pairs.iter().zip(facts) {
        let image = match f.image {
            Ok(h) => h,
            Err(e) => {
                report.unreadable.push((pair.image.clone(), e));
                continue;
            }
        };
        *report
            .image_modes
            .entry((image.mode.clone(), image.width, image.height))
            .or_default() += 1;
        let LabelFacts {
            kind,
            size,
            histogram,
        } = match f.label {
            Ok(x) => x,
            Err(e) => {
                report.unreadable.push((pair.label.clone(), e));
                continue;
            }
        };
        *report.label_kinds.entry(kind).or_default() += 1;
        if size != (image.width, image.height) {
            report.size_mismatches.push(SizeMismatch {
                label: pair.label.clone(),
                label_size: size,
                image_size: (image.width, image.height),
            });
        }
        for (value, n) in histogram {
            let seen = report.values.entry(value).or_default();
            seen.pixels += n;
            seen.files += 1;
            seen.class = p.decoder.lookup(value).map(|id| class_name(p, id));
        }
        report.jpeg_labels += usize::from(is_jpeg(&pair.label));
    }
    report.discovery = discovery;
    Ok(report)
}

fn class_name(p: &Pipeline, id: u16) -> String {
    if id == p.input_classes.ignore_index {
        return "(ignore)".into();
    }
    p.input_classes
        .by_id(id)
        .map_or_else(|| format!("id {id}"), |c| c.name.clone())
}
