//! The pipeline run live, sample by sample, for a data loader (`segprep.Pipeline` in Python): the
//! pairs discovered and split as a build does, and any copy of any key made alone by
//! `process::process_copy`, so a copy a build writes comes out with the very bytes in its shard.
//! Batches run on a thread pool this value owns; the caller decides where it lives.
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::process::{process_copy, run_copy};
use crate::progress::Progress;
use crate::sample::{Image, LabelMap, PairRef, Sample, Standardization};
use crate::sink::label_bytes;

/// A pipeline ready to make samples: its splits' pairs in the build's order.
pub struct Online {
    /// The pipeline with every stage in `stages`, also those `[output] augment = "online"` leaves
    /// to the data loader.
    pipeline: Pipeline,
    /// Where the data loader's stages begin (`[output] augment = "online"`): what runs on a
    /// prepared sample read from a build.
    online_from: Option<usize>,
    /// Splits in plan order (train, val, test, others), each with its pairs sorted by key.
    splits: Vec<(String, Vec<PairRef>)>,
    /// Key → (split position, pair position).
    by_key: HashMap<String, (usize, usize)>,
    /// The pipeline augments: every sample records its drawn parameters, as in the shards.
    records_augment: bool,
}

/// One sample as a shard stores it: the arrays' bytes in their output dtypes, and the small values.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSample {
    /// `key`, or `key@copy` for an augmented copy.
    pub key: String,
    pub split: String,
    /// (height, width, bands), and the little-endian bytes in `image_dtype`.
    pub image_shape: [usize; 3],
    pub image_dtype: &'static str,
    pub image: Vec<u8>,
    /// (height, width), in the build's label dtype.
    pub label_shape: [usize; 2],
    pub label_dtype: &'static str,
    pub label: Vec<u8>,
    /// The drawn parameters (JSON) where the pipeline augments: `"null"` for an original.
    pub augment: Option<String>,
    /// Per-image standardization: (mean, std).
    pub standardization: Option<(f64, f64)>,
}

/// A sample as a build with `[output] augment = "online"` stores it: before the augment stage.
pub struct Prepared {
    pub key: String,
    pub image: Image,
    pub label: LabelMap,
    pub standardization: Option<Standardization>,
}

impl Online {
    /// Loads the pipeline, discovers and splits its pairs, and measures dataset-wide
    /// standardization if a stage asks for it (the train split's pass a build makes first).
    /// `augment_online`: as `segprep build --augment-online`, the stages from augment on are the
    /// data loader's (`finish_prepared`). `moments`: the dataset standardization's per-band
    /// (mean, std) as `dataset_moments` gave them in another process, instead of measuring the
    /// train split again (a spawned data-loader worker).
    pub fn open(
        path: &Path,
        augment_online: bool,
        moments: Option<Vec<(f64, f64)>>,
        progress: &dyn Progress,
    ) -> Result<Online> {
        let mut pipeline = crate::pipeline::load(path)?;
        if augment_online {
            pipeline.set_augment_online()?;
        }
        let online_from = (!pipeline.online_stages.is_empty()).then_some(pipeline.stages.len());
        pipeline.stages = pipeline.all_stages();
        pipeline.online_stages.clear();
        let splits = crate::engine::splits_for_online(&mut pipeline, moments, progress)?;
        let by_key = splits
            .iter()
            .enumerate()
            .flat_map(|(s, (_, pairs))| {
                pairs
                    .iter()
                    .enumerate()
                    .map(move |(i, p)| (p.key.clone(), (s, i)))
            })
            .collect();
        Ok(Online {
            records_augment: pipeline.sink_options().augment,
            pipeline,
            online_from,
            splits,
            by_key,
        })
    }

    /// The per-band (mean, std) a `standardize = { mode = "dataset" }` stage uses, if any.
    pub fn dataset_moments(&self) -> Option<Vec<(f64, f64)>> {
        self.pipeline.stages.iter().find_map(|s| match s {
            crate::stages::Stage::Standardize(st)
                if st.mode == crate::stages::standardize::StandardizeMode::Dataset =>
            {
                st.bands.clone()
            }
            _ => None,
        })
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The split names, in the build's order.
    pub fn split_names(&self) -> Vec<&str> {
        self.splits.iter().map(|(s, _)| s.as_str()).collect()
    }

    /// The keys of `split` in the order a build writes them (its copies follow each key there).
    pub fn keys(&self, split: &str) -> Result<Vec<&str>> {
        let (_, pairs) = self.split(split)?;
        Ok(pairs.iter().map(|p| p.key.as_str()).collect())
    }

    /// Copies a build writes of each sample of `split` (1: the sample alone).
    pub fn copies_per_key(&self, split: &str) -> usize {
        self.pipeline.samples_per_pair(split)
    }

    /// Whether `split` gets fresh copies (an augment stage draws copies of it).
    pub fn augments(&self, split: &str) -> bool {
        self.pipeline.stages.iter().any(|s| s.draws_copies(split))
    }

    fn split(&self, name: &str) -> Result<&(String, Vec<PairRef>)> {
        self.splits.iter().find(|(s, _)| s == name).ok_or_else(|| {
            Error::Usage(format!(
                "no split {name:?} in {} (splits: {})",
                self.pipeline.file.display(),
                self.split_names().join(", ")
            ))
        })
    }

    /// Copy `copy` of `key`, as a build stores it.
    pub fn sample(&self, key: &str, copy: u32) -> Result<OutputSample> {
        let &(s, i) = self.by_key.get(key).ok_or_else(|| {
            Error::Usage(format!(
                "no key {key:?} in the input of {} (keys are file names without extension, e.g. {:?})",
                self.pipeline.file.display(),
                self.splits
                    .iter()
                    .find_map(|(_, p)| p.first())
                    .map_or("", |p| p.key.as_str())
            ))
        })?;
        let (split, pairs) = &self.splits[s];
        let p = &self.pipeline;
        let sample = process_copy(p, &p.stages, &pairs[i], split, copy)?;
        Ok(self.output(sample))
    }

    /// Copy `copy` of each key, computed in parallel on the current rayon pool, in the order given.
    pub fn batch(&self, keys: &[String], copy: u32) -> Result<Vec<OutputSample>> {
        keys.par_iter().map(|k| self.sample(k, copy)).collect()
    }

    /// Copy `copy` of a prepared sample (read from a build of a pipeline with `[output] augment =
    /// "online"`, which stores each sample as it is before the augment stage): the data loader's
    /// stages run on it, giving the bytes `sample` gives without reading the inputs again.
    pub fn finish_prepared(&self, prepared: Prepared, copy: u32) -> Result<OutputSample> {
        let Some(from) = self.online_from else {
            return Err(Error::Usage(format!(
                "{} builds every stage ([output] augment is not \"online\"): read its build, there is nothing to finish",
                self.pipeline.file.display()
            )));
        };
        let &(s, i) = self.by_key.get(&prepared.key).ok_or_else(|| {
            Error::Usage(format!(
                "no key {:?} in the input of {}",
                prepared.key,
                self.pipeline.file.display()
            ))
        })?;
        let (split, pairs) = &self.splits[s];
        let sample = Sample {
            pair: pairs[i].clone(),
            split: split.clone(),
            image: prepared.image,
            label: prepared.label,
            padding: None,
            unknown_pixels: 0,
            standardization: prepared.standardization,
            instances: None,
            augment: None,
        };
        let sample = run_copy(&self.pipeline.stages[from..], sample, copy)?;
        Ok(self.output(sample))
    }

    /// The sample's arrays as the sinks write them.
    fn output(&self, s: Sample) -> OutputSample {
        let image = s.image;
        OutputSample {
            key: s.pair.key,
            split: s.split,
            image_shape: [image.height as usize, image.width as usize, image.bands],
            image_dtype: image.pixels.dtype().numpy(),
            image: image.pixels.into_le_bytes(),
            label_shape: [s.label.height as usize, s.label.width as usize],
            label_dtype: self.pipeline.label_dtype.numpy(),
            label: label_bytes(&s.label.ids, self.pipeline.label_dtype),
            augment: self
                .records_augment
                .then(|| s.augment.unwrap_or_else(|| "null".into())),
            standardization: s.standardization.map(|v| (v.mean, v.std)),
        }
    }
}
