//! Counts measured on a pipeline's input: labels decoded (never images, unless geometry is asked
//! for), mapped through the declared remap stages as histograms, and summed per split. Problems in
//! single files are collected for the report instead of stopping it.
use rayon::prelude::*;
use std::collections::BTreeMap;

use crate::classes::ClassSet;
use crate::decode::label::RawValue;
use crate::decode::stack::pair_header;
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::process::process_pair;
use crate::progress::Progress;
use crate::sample::{LabelSource, PairRef};
use crate::source::discover_all;
use crate::stages::Stage;
use crate::stats::counts::{SampleCounts, SplitCounts};
use crate::stats::report::Quality;

#[derive(Debug, Default)]
pub struct Measured {
    /// Counts in the input classes, when a remap changes them.
    pub before_remap: Option<BTreeMap<String, SplitCounts>>,
    pub splits: BTreeMap<String, SplitCounts>,
    pub quality: Quality,
}

struct FileCounts {
    before: SampleCounts,
    /// One per output sample (an augment stage makes several with --geometry).
    after: Vec<SampleCounts>,
    undeclared: BTreeMap<RawValue, u64>,
}

/// Counts per split; with `geometry`, samples run through every stage (images decoded too).
pub fn measure(p: &Pipeline, geometry: bool, progress: &dyn Progress) -> Result<Measured> {
    let found = discover_all(&p.source())?;
    let splits = p
        .split
        .assign(&found.pairs)
        .map_err(|m| Error::pipeline(&p.file, m))?;
    // object-store inputs: what is counted (labels; images too for the geometry) comes in
    // several GETs at a time rather than one per thread as each file is opened
    let read = found.pairs.iter().flat_map(|pair| {
        let images: Vec<&std::path::Path> = pair.image_files().map(|f| f.as_path()).collect();
        pair.files()
            .into_iter()
            .filter(move |f| geometry || !images.contains(f))
    });
    crate::storage::mirror::prefetch(read, progress)?;
    progress.start("counting labels", found.pairs.len() as u64);
    let results: Vec<Result<FileCounts>> = found
        .pairs
        .par_iter()
        .zip(&splits)
        .map(|(pair, split)| {
            let r = file_counts(p, pair, split, geometry);
            progress.advance(1);
            r
        })
        .collect();
    progress.finish();
    let mut m = Measured::default();
    m.quality.unpaired_files = found.unpaired_images.len() + found.unpaired_labels.len();
    let remaps = p.stages.iter().any(|s| matches!(s, Stage::Remap(_)));
    let mut before: BTreeMap<String, SplitCounts> = BTreeMap::new();
    let mut undeclared: BTreeMap<RawValue, (u64, u64)> = BTreeMap::new();
    for ((pair, split), result) in found.pairs.iter().zip(&splits).zip(results) {
        let f = match result {
            Ok(f) => f,
            Err(Error::Data {
                file,
                stage,
                message,
            }) => {
                m.quality
                    .unreadable
                    .push((file.display().to_string(), format!("[{stage}] {message}")));
                continue;
            }
            Err(other) => {
                m.quality
                    .unreadable
                    .push((pair.image.display().to_string(), other.to_string()));
                continue;
            }
        };
        for (v, n) in f.undeclared {
            let e = undeclared.entry(v).or_default();
            e.0 += n;
            e.1 += 1;
        }
        let first = &f.after[0];
        if first.labelled() == 0 && first.ignore_pixels + first.unknown_pixels > 0 {
            m.quality.all_ignore.push(pair.key.clone());
        } else if first.classes_present() == 1 {
            m.quality.single_class.push(pair.key.clone());
        }
        for after in &f.after {
            add(&mut m.splits, split, &p.classes, after);
        }
        add(&mut before, split, &p.input_classes, &f.before);
    }
    m.quality.undeclared = undeclared
        .into_iter()
        .map(|(v, (px, files))| (v.to_string(), px, files))
        .collect();
    m.before_remap = remaps.then_some(before);
    Ok(m)
}

fn add(
    splits: &mut BTreeMap<String, SplitCounts>,
    split: &str,
    classes: &ClassSet,
    c: &SampleCounts,
) {
    splits
        .entry(split.to_string())
        .or_insert_with(|| SplitCounts::new(classes))
        .add(c);
}

fn file_counts(p: &Pipeline, pair: &PairRef, split: &str, geometry: bool) -> Result<FileCounts> {
    let (histogram, undeclared, instances) = input_histogram(p, pair)?;
    let unknown: u64 = undeclared.values().sum();
    let label_err = |m: String| Error::data(pair.label_path(), "stats", m);
    let before = SampleCounts::from_histogram(&histogram, &p.input_classes, unknown, instances)
        .map_err(label_err)?;
    let after = if geometry {
        process_pair(p, &p.stages, pair, split)?
            .iter()
            .map(|s| SampleCounts::of(s, &p.classes).map_err(label_err))
            .collect::<Result<Vec<_>>>()?
    } else {
        let remapped = remap_histogram(&p.stages, &histogram).map_err(label_err)?;
        vec![
            SampleCounts::from_histogram(&remapped, &p.classes, unknown, instances)
                .map_err(label_err)?,
        ]
    };
    Ok(FileCounts {
        before,
        after,
        undeclared,
    })
}

/// The label's ids (unknown values left out and returned apart), and its instance count.
#[allow(clippy::type_complexity)]
fn input_histogram(
    p: &Pipeline,
    pair: &PairRef,
) -> Result<(BTreeMap<u16, u64>, BTreeMap<RawValue, u64>, Option<u32>)> {
    let (raw, instances) = match &pair.label {
        LabelSource::File(f) => {
            let (_, raw) = p
                .decoder
                .histogram(f)
                .map_err(|m| Error::data(f, "decode", m))?;
            (raw, None)
        }
        source => {
            let h = pair_header(pair, &p.config.input.image_rules(), p.config.input.channels)
                .map_err(|(f, m)| Error::data(f, "decode", m))?;
            p.decoder.source_histogram(source, h.width, h.height)?
        }
    };
    let mut ids: BTreeMap<u16, u64> = BTreeMap::new();
    let mut undeclared = BTreeMap::new();
    for (v, n) in raw {
        match p.decoder.lookup(v) {
            Some(id) => *ids.entry(id).or_default() += n,
            None => *undeclared.entry(v).or_default() += n,
        }
    }
    Ok((ids, undeclared, instances))
}

/// Sends every id of a histogram through the remap stages, in order.
fn remap_histogram(
    stages: &[Stage],
    histogram: &BTreeMap<u16, u64>,
) -> Result<BTreeMap<u16, u64>, String> {
    let mut out = histogram.clone();
    for stage in stages {
        if let Stage::Remap(r) = stage {
            let mut next = BTreeMap::new();
            for (id, n) in out {
                let to = r
                    .map_id(id)
                    .ok_or_else(|| format!("label value {id} is not a declared class"))?;
                *next.entry(to).or_default() += n;
            }
            out = next;
        }
    }
    Ok(out)
}
