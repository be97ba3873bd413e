//! Segmentation Gym layout: one npz per sample in `{split}_data/{split}_npzs/`, named
//! `{root}_noaug_nd_data_{i:06}.npz` (`_aug_` for augmented copies), holding `arr_0` (H,W,C) u8,
//! `arr_1` (H,W,NCLASSES) one-hot u8 (ignore pixels are all-zero rows), `num_bands` and `files`,
//! which is what Gym's `load_npz` reads, plus `augment` (the drawn parameters) when augmenting.
use std::io::Write;
use std::path::{Path, PathBuf};

use super::npy;
use super::zip_file::{finish_zip, start_entry, zip_file};
use super::{Commit, ShardPlan, Sink, SinkOptions};
use crate::classes::Class;
use crate::error::{Error, Result};
use crate::index::FileRecord;
use crate::sample::{Pixels, Sample};
use crate::stats::counts::SplitCounts;
use crate::storage::atomic::write_atomically;

/// One file per sample, written as samples arrive.
pub struct GymSink {
    dir: PathBuf,
    options: SinkOptions,
    root: String,
    num_classes: usize,
    /// (split, index of the next sample within it, files written in this shard)
    open: Option<(String, usize, Vec<FileRecord>)>,
}

impl GymSink {
    pub fn new(dir: &Path, options: SinkOptions, classes: &[Class]) -> Self {
        let num_classes = classes.iter().map(|c| c.id as usize + 1).max().unwrap_or(0);
        let root = options.gym_root.clone();
        GymSink {
            dir: dir.to_path_buf(),
            options,
            root,
            num_classes,
            open: None,
        }
    }

    fn write_one(&self, split: &str, index: usize, s: &Sample) -> Result<FileRecord> {
        // Gym's own names: augmented copies are `aug`, originals `noaug`
        let kind = match s.augment.as_deref() {
            Some(drawn) if drawn != "null" => "aug",
            _ => "noaug",
        };
        let rel = format!(
            "{split}_data/{split}_npzs/{}_{kind}_nd_data_{index:06}.npz",
            self.root
        );
        let path = self.dir.join(&rel);
        let Pixels::U8(pixels) = &s.image.pixels else {
            return Err(Error::data(
                &s.pair.image,
                "write",
                "the gym layout stores u8 images; this image is not 8-bit",
            ));
        };
        let (h, w, c) = (
            s.image.height as u64,
            s.image.width as u64,
            s.image.bands as u64,
        );
        let k = self.num_classes;
        let mut one_hot = vec![0u8; s.label.ids.len() * k];
        for (i, &id) in s.label.ids.iter().enumerate() {
            if (id as usize) < k {
                one_hot[i * k + id as usize] = 1;
            }
        }
        let file_name = s
            .pair
            .image
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let compression = self.options.compression;
        let (bytes, sha256) = write_atomically(&path, |file| {
            let mut zip = zip_file(file, 8 << 10);
            start_entry(&mut zip, "arr_0.npy", compression, pixels.len() as u64)?;
            npy::write_header(&mut zip, "|u1", &[h, w, c])?;
            zip.write_all(pixels)?;
            start_entry(&mut zip, "arr_1.npy", compression, one_hot.len() as u64)?;
            npy::write_header(&mut zip, "|u1", &[h, w, k as u64])?;
            zip.write_all(&one_hot)?;
            start_entry(&mut zip, "num_bands.npy", compression, 0)?;
            npy::write_scalar_i64(&mut zip, c as i64)?;
            start_entry(&mut zip, "files.npy", compression, 0)?;
            npy::write_strings(&mut zip, &[&file_name])?;
            if let Some(drawn) = &s.augment {
                start_entry(&mut zip, "augment.npy", compression, 0)?;
                npy::write_strings(&mut zip, &[drawn.as_str()])?;
            }
            finish_zip(zip)
        })?;
        Ok(FileRecord {
            file: rel,
            split: split.to_string(),
            samples: 1,
            bytes,
            sha256,
        })
    }
}

impl Sink for GymSink {
    fn batch_samples(&self, _sample_bytes: u64) -> usize {
        4 * rayon::current_num_threads()
    }

    fn begin(&mut self, plan: &ShardPlan) -> Result<()> {
        self.open = Some((plan.split.clone(), plan.first_sample, Vec::new()));
        Ok(())
    }

    fn write(&mut self, samples: Vec<Sample>) -> Result<()> {
        let (split, mut next, mut files) = self.open.take().expect("begin before write");
        for s in &samples {
            files.push(self.write_one(&split, next, s)?);
            next += 1;
        }
        self.open = Some((split, next, files));
        Ok(())
    }

    fn finish(&mut self, _counts: &SplitCounts) -> Result<Commit> {
        // every sample file was committed as it was written
        let files = self.open.take().expect("begin before finish").2;
        Ok(Box::new(move || Ok(files)))
    }
}
