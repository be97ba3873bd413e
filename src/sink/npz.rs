//! Stacked NPZ shards: `image` (N,H,W,C), `label` (N,H,W), `key` (N,), plus `image_mean` and
//! `image_std` (N,) when images were standardized per image. Entries carry a fixed timestamp so the
//! same samples always give the same bytes.
use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use zip::write::SimpleFileOptions;
use zip::ZipWriter;

use super::atomic::AtomicFile;
use super::npy;
use super::{shard_name, write_label_bytes, Commit, FileRecord, ShardPlan, Sink, SinkOptions};
use crate::error::{Error, Result};
use crate::pipeline::schema::Compression;
use crate::sample::Sample;
use crate::stats::counts::SplitCounts;

/// Stacked arrays are written entry by entry (all images, then all labels), so this sink holds a
/// whole shard: its memory is bounded by `shard_bytes`.
pub struct NpzSink {
    dir: PathBuf,
    options: SinkOptions,
    open: Option<(ShardPlan, Vec<Sample>)>,
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

/// Zip entry options: fixed time and permissions; zip64 when an entry may pass 4 GiB.
pub fn entry_options(compression: Compression, bytes: u64) -> SimpleFileOptions {
    let method = match compression {
        Compression::Stored => zip::CompressionMethod::Stored,
        Compression::Deflate => zip::CompressionMethod::Deflated,
    };
    SimpleFileOptions::default()
        .compression_method(method)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644)
        .large_file(bytes >= u32::MAX as u64 - (1 << 20))
}

pub fn start_entry<W: Write + Seek>(
    zip: &mut ZipWriter<W>,
    name: &str,
    compression: Compression,
    bytes: u64,
) -> std::io::Result<()> {
    zip.start_file(name, entry_options(compression, bytes))
        .map_err(std::io::Error::other)
}

impl Sink for NpzSink {
    fn batch_samples(&self, _sample_bytes: u64) -> usize {
        usize::MAX
    }

    fn begin(&mut self, plan: &ShardPlan) -> Result<()> {
        self.open = Some((plan.clone(), Vec::with_capacity(plan.pairs.len())));
        Ok(())
    }

    fn write(&mut self, samples: Vec<Sample>) -> Result<()> {
        let (_, held) = self.open.as_mut().expect("begin before write");
        held.extend(samples);
        Ok(())
    }

    fn finish(&mut self, _counts: &SplitCounts) -> Result<Commit> {
        let (plan, samples) = self.open.take().expect("begin before finish");
        self.write_file(&plan, samples)
    }
}

impl NpzSink {
    /// Writes the shard to its partial file; the commit makes it whole.
    fn write_file(&self, plan: &ShardPlan, samples: Vec<Sample>) -> Result<Commit> {
        let name = shard_name(plan, "npz");
        let path = self.dir.join(&name);
        let first = samples
            .first()
            .ok_or_else(|| Error::data(&path, "write", "empty shard"))?;
        let (h, w, c) = (
            first.image.height as u64,
            first.image.width as u64,
            first.image.bands as u64,
        );
        let n = samples.len() as u64;
        let dtype = first.image.pixels.dtype();
        let c_opt = self.options.compression;
        let label_dtype = self.options.label_dtype;
        let (atomic, file) = AtomicFile::create(&path)?;
        let write = |file: File| -> std::io::Result<File> {
            // small: arrays larger than the buffer go to the file directly instead of being copied into it
            let mut zip = ZipWriter::new(BufWriter::with_capacity(64 << 10, file));
            let image_bytes = n * h * w * c * dtype.size() as u64;
            start_entry(&mut zip, "image.npy", c_opt, image_bytes)?;
            npy::write_header(&mut zip, dtype.numpy(), &[n, h, w, c])?;
            for s in &samples {
                zip.write_all(s.image.pixels.as_bytes())?;
            }
            start_entry(
                &mut zip,
                "label.npy",
                c_opt,
                n * h * w * label_dtype.size() as u64,
            )?;
            npy::write_header(&mut zip, label_dtype.numpy(), &[n, h, w])?;
            for s in &samples {
                write_label_bytes(&mut zip, &s.label.ids, label_dtype)?;
            }
            start_entry(&mut zip, "key.npy", c_opt, 0)?;
            let keys: Vec<&str> = samples.iter().map(|s| s.pair.key.as_str()).collect();
            npy::write_strings(&mut zip, &keys)?;
            if self.options.augment {
                // the parameters drawn for each copy, as JSON ("null" for originals and unaugmented splits)
                start_entry(&mut zip, "augment.npy", c_opt, 0)?;
                let drawn: Vec<&str> = samples
                    .iter()
                    .map(|s| s.augment.as_deref().unwrap_or("null"))
                    .collect();
                npy::write_strings(&mut zip, &drawn)?;
            }
            if samples.iter().all(|s| s.standardization.is_some()) {
                let (means, stds): (Vec<f64>, Vec<f64>) = samples
                    .iter()
                    .filter_map(|s| s.standardization)
                    .map(|v| (v.mean, v.std))
                    .unzip();
                start_entry(&mut zip, "image_mean.npy", c_opt, 0)?;
                npy::write_f64s(&mut zip, &means)?;
                start_entry(&mut zip, "image_std.npy", c_opt, 0)?;
                npy::write_f64s(&mut zip, &stds)?;
            }
            let buffered = zip.finish().map_err(std::io::Error::other)?;
            buffered.into_inner().map_err(|e| e.into_error())
        };
        let file = write(file).map_err(|e| Error::io(&path, "write", e))?;
        let split = plan.split.clone();
        Ok(Box::new(move || {
            let (bytes, sha256) = atomic.commit(file)?;
            Ok(vec![FileRecord {
                file: name,
                split,
                samples: n as usize,
                bytes,
                sha256,
            }])
        }))
    }
}
