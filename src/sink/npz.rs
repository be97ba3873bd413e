//! Stacked NPZ shards: `image` (N,H,W,C), `label` (N,H,W), `key` (N,), plus `image_mean` and
//! `image_std` (N,) when images were standardized per image. Entries carry a fixed timestamp so the
//! same samples always give the same bytes.
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::npy;
use super::zip_file::{finish_zip, start_entry, zip_file, ZipFile};
use super::{push_label_bytes, shard_name, Commit, ShardPlan, Sink, SinkOptions};
use crate::error::{Error, Result};
use crate::index::FileRecord;
use crate::sample::{Sample, Standardization};
use crate::stats::counts::SplitCounts;
use crate::storage::atomic::AtomicFile;

/// Stacked arrays are written entry by entry, each one zip entry: all images, then all labels.
/// When a shard's sample count is known in advance (`on_error = "fail"`: any bad sample stops the
/// run), images stream to the file as batches arrive and only the labels and the small arrays wait
/// for the shard's end, so writing overlaps compute. Otherwise (samples may be skipped) the shard
/// is held whole and written at its end. Both paths write through [`ShardWriter`]: same bytes.
pub struct NpzSink {
    dir: PathBuf,
    options: SinkOptions,
    open: Option<Open>,
}

enum Open {
    /// The shard's samples, held until its end.
    Held(ShardPlan, Vec<Sample>),
    /// The shard's file, started by its first sample.
    Streaming(ShardPlan, Option<Box<ShardWriter>>),
}

impl NpzSink {
    pub fn new(dir: &Path, options: SinkOptions) -> Self {
        NpzSink {
            dir: dir.to_path_buf(),
            options,
            open: None,
        }
    }
}

impl Sink for NpzSink {
    fn batch_samples(&self, sample_bytes: u64) -> usize {
        if self.options.samples_known {
            // a few samples: little waits in memory for the writer, and each hand-over is still
            // a few large writes
            ((STREAM_BATCH_BYTES / sample_bytes.max(1)) as usize).max(1)
        } else {
            usize::MAX
        }
    }

    fn begin(&mut self, plan: &ShardPlan) -> Result<()> {
        self.open = Some(if self.options.samples_known {
            Open::Streaming(plan.clone(), None)
        } else {
            Open::Held(plan.clone(), Vec::with_capacity(plan.samples))
        });
        Ok(())
    }

    fn write(&mut self, samples: Vec<Sample>) -> Result<()> {
        let NpzSink { dir, options, open } = self;
        match open.as_mut().expect("begin before write") {
            Open::Held(_, held) => held.extend(samples),
            Open::Streaming(plan, writer) => {
                for s in samples {
                    let w = match writer {
                        Some(w) => w,
                        None => writer.insert(Box::new(ShardWriter::start(
                            (dir, options),
                            plan,
                            &s,
                            plan.samples,
                        )?)),
                    };
                    w.push(s)?;
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, _counts: &SplitCounts) -> Result<Commit> {
        let (plan, writer) = match self.open.take().expect("begin before finish") {
            Open::Streaming(plan, writer) => (plan, writer),
            Open::Held(plan, samples) => {
                let writer = self.write_held(&plan, samples)?;
                (plan, writer)
            }
        };
        let path = self.dir.join(shard_name(&plan, "npz"));
        writer
            .ok_or_else(|| Error::data(&path, "write", "empty shard"))?
            .finish()
    }
}

impl NpzSink {
    fn write_held(
        &self,
        plan: &ShardPlan,
        samples: Vec<Sample>,
    ) -> Result<Option<Box<ShardWriter>>> {
        let Some(first) = samples.first() else {
            return Ok(None);
        };
        let sink = (self.dir.as_path(), &self.options);
        let mut writer = ShardWriter::start(sink, plan, first, samples.len())?;
        samples.into_iter().try_for_each(|s| writer.push(s))?;
        Ok(Some(Box::new(writer)))
    }
}

/// Samples per streamed batch: about this many bytes of output.
const STREAM_BATCH_BYTES: u64 = 2 << 20;

/// One shard's file being written: `image.npy` as samples come, the other arrays at the end.
struct ShardWriter {
    path: PathBuf,
    name: String,
    split: String,
    atomic: AtomicFile,
    zip: ZipFile,
    options: SinkOptions,
    /// Samples the header announced, and written so far.
    expected: usize,
    written: usize,
    /// Height, width and bands of every image.
    shape: (u64, u64, u64),
    rest: Rest,
}

/// What waits for the shard's end: labels as output bytes, keys, drawn parameters,
/// standardization values.
struct Rest {
    labels: Vec<u8>,
    keys: Vec<String>,
    drawn: Vec<String>,
    standardization: Vec<Option<Standardization>>,
}

impl ShardWriter {
    /// Opens the partial file and writes the `image.npy` header for `n` samples shaped as `first`.
    fn start(
        (dir, options): (&Path, &SinkOptions),
        plan: &ShardPlan,
        first: &Sample,
        n: usize,
    ) -> Result<ShardWriter> {
        let name = shard_name(plan, "npz");
        let path = dir.join(&name);
        let image = &first.image;
        let shape = (image.height as u64, image.width as u64, image.bands as u64);
        let dtype = image.pixels.dtype();
        let (atomic, file) = AtomicFile::create(&path)?;
        // small: arrays larger than the buffer go to the file directly instead of being copied into it
        let mut zip = zip_file(file, 64 << 10);
        let (h, w, c) = shape;
        let image_bytes = n as u64 * h * w * c * dtype.size() as u64;
        start_entry(&mut zip, "image.npy", options.compression, image_bytes)
            .and_then(|()| npy::write_header(&mut zip, dtype.numpy(), &[n as u64, h, w, c]))
            .map_err(|e| Error::write(&path, e))?;
        let label_bytes = n * (h * w) as usize * options.label_dtype.size();
        Ok(ShardWriter {
            path,
            name,
            split: plan.split.clone(),
            atomic,
            zip,
            options: options.clone(),
            expected: n,
            written: 0,
            shape,
            rest: Rest {
                labels: Vec::with_capacity(label_bytes),
                keys: Vec::with_capacity(n),
                drawn: Vec::with_capacity(n),
                standardization: Vec::with_capacity(n),
            },
        })
    }

    /// Writes the sample's image and keeps the rest for the end; its pixels are freed here.
    fn push(&mut self, s: Sample) -> Result<()> {
        let (h, w, c) = self.shape;
        let shape = (
            s.image.height as u64,
            s.image.width as u64,
            s.image.bands as u64,
        );
        if self.written == self.expected || shape != (h, w, c) {
            let why = format!(
                "sample {} does not fit the shard's array ({} samples of {h}x{w}x{c} announced)",
                s.pair.key, self.expected
            );
            return Err(Error::data(&self.path, "write", why));
        }
        self.zip
            .write_all(s.image.pixels.as_bytes())
            .map_err(|e| Error::write(&self.path, e))?;
        let rest = &mut self.rest;
        push_label_bytes(&mut rest.labels, &s.label.ids, self.options.label_dtype);
        rest.keys.push(s.pair.key);
        rest.drawn.push(s.augment.unwrap_or_else(|| "null".into()));
        rest.standardization.push(s.standardization);
        s.image.pixels.recycle();
        s.label.recycle(s.padding);
        self.written += 1;
        Ok(())
    }

    /// Writes the remaining arrays and the zip directory; the returned commit makes the file whole.
    fn finish(self) -> Result<Commit> {
        if self.written != self.expected {
            let why = format!(
                "{} samples written, {} announced in the array's header",
                self.written, self.expected
            );
            return Err(Error::data(&self.path, "write", why));
        }
        let (h, w, _) = self.shape;
        let file = self
            .rest
            .write(self.zip, &self.options, (h, w))
            .map_err(|e| Error::write(&self.path, e))?;
        let (name, split, samples, atomic) = (self.name, self.split, self.written, self.atomic);
        Ok(Box::new(move || {
            let (bytes, sha256) = atomic.commit(file)?;
            Ok(vec![FileRecord {
                file: name,
                split,
                samples,
                bytes,
                sha256,
            }])
        }))
    }
}

impl Rest {
    /// The arrays after `image.npy`, then the zip directory; gives back the file to commit.
    fn write(
        self,
        mut zip: ZipFile,
        options: &SinkOptions,
        (h, w): (u64, u64),
    ) -> std::io::Result<File> {
        let c_opt = options.compression;
        let n = self.keys.len() as u64;
        start_entry(&mut zip, "label.npy", c_opt, self.labels.len() as u64)?;
        npy::write_header(&mut zip, options.label_dtype.numpy(), &[n, h, w])?;
        zip.write_all(&self.labels)?;
        drop(self.labels);
        start_entry(&mut zip, "key.npy", c_opt, 0)?;
        npy::write_strings(&mut zip, &strs(&self.keys))?;
        if options.augment {
            // the parameters drawn for each copy, as JSON ("null" for originals and unaugmented splits)
            start_entry(&mut zip, "augment.npy", c_opt, 0)?;
            npy::write_strings(&mut zip, &strs(&self.drawn))?;
        }
        let standardized: Option<Vec<Standardization>> = self.standardization.into_iter().collect();
        if let Some(values) = standardized {
            let (means, stds): (Vec<f64>, Vec<f64>) =
                values.iter().map(|v| (v.mean, v.std)).unzip();
            start_entry(&mut zip, "image_mean.npy", c_opt, 0)?;
            npy::write_f64s(&mut zip, &means)?;
            start_entry(&mut zip, "image_std.npy", c_opt, 0)?;
            npy::write_f64s(&mut zip, &stds)?;
        }
        finish_zip(zip)
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
