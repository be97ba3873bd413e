//! Sinks write finished samples. One trait, one file per format, chosen by layout in `open`.
pub mod gym;
pub mod npy;
pub mod npz;
pub mod parquet;
pub mod parquet_pixels;
pub mod zip_file;

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::error::Result;
use crate::index::{FileRecord, Index};

use crate::sample::{PairRef, Sample};
use crate::stats::counts::SplitCounts;

/// One output shard, fixed before any pixel is processed.
#[derive(Debug, Clone)]
pub struct ShardPlan {
    pub split: String,
    /// Position of the shard within its split, and the split's shard count.
    pub index: usize,
    pub of: usize,
    /// Position of the shard's first sample within its split.
    pub first_sample: usize,
    pub pairs: Vec<PairRef>,
    /// Samples the shard holds unless some are skipped: its pairs times samples per pair.
    pub samples: usize,
}

/// A sink receives each shard as `begin`, then its samples in plan order in one or more `write`
/// batches, then `finish` with the shard's class counts. The engine holds at most about two batches,
/// so a sink that can write as samples arrive keeps memory at its batch size.
pub trait Sink: Send {
    /// Samples per batch this sink wants, given one sample's output bytes.
    fn batch_samples(&self, sample_bytes: u64) -> usize;
    fn begin(&mut self, plan: &ShardPlan) -> Result<()>;
    fn write(&mut self, samples: Vec<Sample>) -> Result<()>;
    /// Writes the rest of the shard and frees its samples; the returned commit syncs, hashes and
    /// renames its files (the slow, pixel-free part, which the engine runs on another thread).
    fn finish(&mut self, counts: &SplitCounts) -> Result<Commit>;
}

/// What makes a written shard's files whole; returns their records.
pub type Commit = Box<dyn FnOnce() -> Result<Vec<FileRecord>> + Send>;

/// Settings every sink shares, and the few a layout adds.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    pub layout: Layout,
    pub compression: Compression,
    pub label_dtype: crate::sample::PixelType,
    /// The pipeline augments: every shard records each sample's drawn parameters (`augment`).
    pub augment: bool,
    /// Every shard gets exactly its planned samples: a bad sample stops the run
    /// (`on_error = "fail"`) instead of being left out.
    pub samples_known: bool,
    /// Gym: the prefix of file names (Gym's ROOT_STRING).
    pub gym_root: String,
    /// Parquet: target uncompressed pixel bytes per row group.
    pub row_group_bytes: u64,
}

/// The sink of `options.layout`, writing into `out`. `build` is the build's index.json as known
/// before any shard (classes, stages, hash): the Parquet metadata is taken from it.
pub fn open(options: SinkOptions, build: &Index, out: &Path) -> Box<dyn Sink> {
    match options.layout {
        Layout::Stacked => Box::new(npz::NpzSink::new(out, options)),
        Layout::Gym => Box::new(gym::GymSink::new(out, options, &build.classes)),
        Layout::Huggingface | Layout::Tensor => {
            Box::new(parquet::ParquetSink::new(out, options, build))
        }
    }
}

/// The shard file name the Hugging Face Hub also recognises: `{split}-{i:05d}-of-{n:05d}.{ext}`.
pub fn shard_name(plan: &ShardPlan, ext: &str) -> String {
    format!("{}-{:05}-of-{:05}.{ext}", plan.split, plan.index, plan.of)
}

/// Uncompressed output bytes of one sample (image + label in the output label dtype): what shard
/// and row-group sizes are computed from.
pub fn sample_bytes(s: &Sample, label_dtype: crate::sample::PixelType) -> u64 {
    (s.image.pixels.len() * s.image.pixels.dtype().size() + s.label.ids.len() * label_dtype.size())
        as u64
}

/// Label ids as the output dtype's little-endian bytes; ids were checked to fit at pipeline load.
pub fn label_bytes(ids: &[u16], dtype: crate::sample::PixelType) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(ids.len() * dtype.size());
    push_label_bytes(&mut bytes, ids, dtype);
    bytes
}

/// Appends the ids' bytes in the output dtype (as [`label_bytes`] gives them): the NPZ writer
/// gathers a shard's labels this way while its images stream to the file.
pub fn push_label_bytes(out: &mut Vec<u8>, ids: &[u16], dtype: crate::sample::PixelType) {
    match dtype {
        crate::sample::PixelType::U8 => out.extend(ids.iter().map(|&v| v as u8)),
        _ => out.extend(ids.iter().flat_map(|v| v.to_le_bytes())),
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    #[default]
    Npz,
    Parquet,
}

impl OutputFormat {
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Npz => "npz",
            OutputFormat::Parquet => "parquet",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// npz: stacked shards, `image` (N,H,W,C), `label` (N,H,W), `key` (N,).
    #[default]
    Stacked,
    /// npz: one file per sample, as Segmentation Gym's trainer reads them.
    Gym,
    /// parquet: image and label as PNG Image structs that Hugging Face datasets decodes.
    Huggingface,
    /// parquet: raw or standardized arrays as `arrow.fixed_shape_tensor` columns.
    Tensor,
}

impl Layout {
    /// Whether every sample must have one size (all but `huggingface`, whose rows are PNGs).
    pub fn fixed_size(self) -> bool {
        self != Layout::Huggingface
    }

    pub fn name(self) -> &'static str {
        match self {
            Layout::Stacked => "stacked",
            Layout::Gym => "gym",
            Layout::Huggingface => "huggingface",
            Layout::Tensor => "tensor",
        }
    }
}

/// Lossless either way. NPZ: zip entries stored or deflated. Parquet: pages uncompressed (stored),
/// gzip (deflate) or zstd; uncompressed by default, the fastest to write and to read (zstd level 1
/// takes about 10% longer to build and saves about 45% of a tensor build's bytes; gzip takes 3 to
/// 4 times as long: docs/performance.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    Stored,
    Deflate,
    /// Parquet only.
    Zstd,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::PixelType;

    #[test]
    fn label_bytes_are_little_endian_ids_and_push_appends_them() {
        let ids: Vec<u16> = (0..40_000u32).map(|i| (i % 251) as u16 * 3).collect();
        let u8s: Vec<u8> = ids.iter().map(|&v| v as u8).collect();
        let u16s: Vec<u8> = ids
            .iter()
            .flat_map(|&v| [v as u8, (v >> 8) as u8])
            .collect();
        for (dtype, want) in [(PixelType::U8, u8s), (PixelType::U16, u16s)] {
            assert_eq!(label_bytes(&ids, dtype), want, "{dtype:?}");
            let mut gathered = vec![7u8, 9];
            push_label_bytes(&mut gathered, &ids, dtype);
            assert_eq!(gathered[..2], [7, 9], "{dtype:?}: earlier bytes kept");
            assert_eq!(gathered[2..], want[..], "{dtype:?}");
        }
    }
}
