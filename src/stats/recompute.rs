//! Counts recomputed from a build's shards, read back the way a trainer would (NPZ arrays, Parquet
//! PNG structs or tensors), to compare with the `stats.json` written at build time. The shards
//! store pad and undeclared pixels as the ignore index, so those three are compared as one sum.
use arrow_array::{
    Array, BinaryArray, FixedSizeListArray, RecordBatch, StructArray, UInt16Array, UInt8Array,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::counts::{SampleCounts, SplitCounts};
use crate::classes::ClassSet;
use crate::error::{Error, Result};

/// One sample's label as read back.
pub struct ReadLabel {
    pub key: String,
    pub ids: Vec<u16>,
}

/// What a built output says about itself (from index.json).
pub struct Built {
    pub classes: ClassSet,
    pub format: String,
    pub layout: String,
    /// (file, split), in index order.
    pub files: Vec<(String, String)>,
}

pub fn read_index(dir: &Path) -> Result<Built> {
    let hint = "is this a finished segprep build?";
    let (path, index) = crate::index::Index::read(dir, "stats", hint)?;
    let classes = ClassSet::new(index.classes, index.ignore_index)
        .map_err(|p| Error::data(&path, "stats", p.join("; ")))?;
    Ok(Built {
        classes,
        format: index.format,
        layout: index.layout,
        files: index.files.into_iter().map(|f| (f.file, f.split)).collect(),
    })
}

/// Every label of one shard.
pub fn read_labels(path: &Path, built: &Built) -> Result<Vec<ReadLabel>> {
    let err = |m: String| Error::data(path, "stats", m);
    match (built.format.as_str(), built.layout.as_str()) {
        ("npz", "stacked") => read_stacked(path).map_err(err),
        ("npz", "gym") => read_gym(path).map_err(err),
        ("parquet", layout) => read_parquet(path, layout == "tensor").map_err(err),
        (f, l) => Err(err(format!(
            "unknown format {f} / layout {l} in index.json"
        ))),
    }
}

type Npz = zip::ZipArchive<std::io::BufReader<std::fs::File>>;

fn open_npz(path: &Path) -> Result<Npz, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| format!("not a readable NPZ: {e}"))
}

/// A u1 or u2 array entry: its shape and values.
fn npy_entry(zip: &mut Npz, name: &str) -> Result<(Vec<u64>, Vec<u16>), String> {
    let entry = zip.by_name(name).map_err(|e| format!("no {name}: {e}"))?;
    let npy = npyz::NpyFile::new(entry).map_err(|e| format!("{name}: {e}"))?;
    let shape = npy.shape().to_vec();
    let values = match npy.dtype().descr().trim_matches('\'') {
        "|u1" => npy
            .into_vec::<u8>()
            .map(|v| v.into_iter().map(u16::from).collect()),
        "<u2" => npy.into_vec::<u16>(),
        other => return Err(format!("{name} has dtype {other}, expected u1 or u2")),
    }
    .map_err(|e| format!("{name}: {e}"))?;
    Ok((shape, values))
}

fn npy_keys(zip: &mut Npz) -> Result<Vec<String>, String> {
    let mut entry = zip
        .by_name("key.npy")
        .map_err(|e| format!("no key.npy: {e}"))?;
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| format!("key.npy: {e}"))?;
    // fixed-width UTF-32 (`<U{n}`): n code points per key, zero-padded
    let width = npy.dtype().num_bytes().unwrap_or(0) / 4;
    let data = npy.into_inner();
    Ok(data
        .chunks_exact((width * 4).max(1))
        .map(|k| {
            k.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .take_while(|&c| c != 0)
                .filter_map(char::from_u32)
                .collect()
        })
        .collect())
}

fn read_stacked(path: &Path) -> Result<Vec<ReadLabel>, String> {
    let mut zip = open_npz(path)?;
    let (shape, ids) = npy_entry(&mut zip, "label.npy")?;
    let keys = npy_keys(&mut zip)?;
    let per = shape.iter().skip(1).product::<u64>() as usize;
    if shape.len() != 3 || keys.len() as u64 != shape[0] {
        return Err(format!(
            "label.npy has shape {shape:?} for {} keys",
            keys.len()
        ));
    }
    Ok(keys
        .into_iter()
        .zip(ids.chunks_exact(per.max(1)))
        .map(|(key, ids)| ReadLabel {
            key,
            ids: ids.to_vec(),
        })
        .collect())
}

/// Gym's one-hot `arr_1` (H, W, K): the set position is the id; an all-zero row is ignore.
fn read_gym(path: &Path) -> Result<Vec<ReadLabel>, String> {
    let (shape, one_hot) = npy_entry(&mut open_npz(path)?, "arr_1.npy")?;
    let k = *shape.last().unwrap_or(&1) as usize;
    let ids = one_hot
        .chunks_exact(k.max(1))
        .map(|row| {
            row.iter()
                .position(|&v| v == 1)
                .map_or(u16::MAX, |i| i as u16)
        })
        .collect();
    let key = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(vec![ReadLabel { key, ids }])
}

fn read_parquet(path: &Path, tensor: bool) -> Result<Vec<ReadLabel>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let schema = builder.parquet_schema();
    let wanted: Vec<usize> = (0..schema.num_columns())
        .filter(|&i| {
            let path = schema.column(i).path().string();
            path == "key" || path.starts_with("label")
        })
        .collect();
    let mask = ProjectionMask::leaves(schema, wanted);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        out.extend(labels_of_batch(&batch, tensor)?);
    }
    Ok(out)
}

fn labels_of_batch(batch: &RecordBatch, tensor: bool) -> Result<Vec<ReadLabel>, String> {
    let keys = batch
        .column_by_name("key")
        .and_then(|c| {
            c.as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .cloned()
        })
        .ok_or("no key column")?;
    let label = batch.column_by_name("label").ok_or("no label column")?;
    (0..batch.num_rows())
        .map(|row| {
            let ids = if tensor {
                let list = label
                    .as_any()
                    .downcast_ref::<FixedSizeListArray>()
                    .ok_or("label is not a tensor")?;
                let values = list.value(row);
                if let Some(v) = values.as_any().downcast_ref::<UInt8Array>() {
                    v.values().iter().map(|&x| x as u16).collect()
                } else {
                    let v = values
                        .as_any()
                        .downcast_ref::<UInt16Array>()
                        .ok_or("label tensor is not u8 or u16")?;
                    v.values().to_vec()
                }
            } else {
                let s = label
                    .as_any()
                    .downcast_ref::<StructArray>()
                    .ok_or("label is not an Image struct")?;
                let bytes = s
                    .column_by_name("bytes")
                    .and_then(|c| c.as_any().downcast_ref::<BinaryArray>())
                    .ok_or("label struct has no bytes")?;
                png_ids(bytes.value(row))?
            };
            Ok(ReadLabel {
                key: keys.value(row).to_string(),
                ids,
            })
        })
        .collect()
}

/// A grey 8- or 16-bit PNG's values.
fn png_ids(bytes: &[u8]) -> Result<Vec<u16>, String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().map_err(|e| format!("label PNG: {e}"))?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or("label PNG too large")?];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("label PNG: {e}"))?;
    let data = &buf[..info.buffer_size()];
    match (info.color_type, info.bit_depth) {
        (png::ColorType::Grayscale, png::BitDepth::Eight) => {
            Ok(data.iter().map(|&v| v as u16).collect())
        }
        (png::ColorType::Grayscale, png::BitDepth::Sixteen) => Ok(data
            .chunks_exact(2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .collect()),
        other => Err(format!(
            "label PNG is {other:?}, expected 8- or 16-bit grey"
        )),
    }
}

/// Counts per split from every shard, and the keys of single-class and all-ignore samples.
pub fn recompute(
    dir: &Path,
    built: &Built,
) -> Result<(BTreeMap<String, SplitCounts>, super::report::Quality)> {
    use rayon::prelude::*;
    let read: Vec<Result<Vec<ReadLabel>>> = built
        .files
        .par_iter()
        .map(|(file, _)| read_labels(&dir.join(file), built))
        .collect();
    let mut splits: BTreeMap<String, SplitCounts> = BTreeMap::new();
    let mut quality = super::report::Quality::default();
    for ((file, split), labels) in built.files.iter().zip(read) {
        for label in labels? {
            let mut histogram: BTreeMap<u16, u64> = BTreeMap::new();
            for &id in &label.ids {
                let id = if id == u16::MAX && built.layout == "gym" {
                    built.classes.ignore_index
                } else {
                    id
                };
                *histogram.entry(id).or_default() += 1;
            }
            let counts = SampleCounts::from_histogram(&histogram, &built.classes, 0, None)
                .map_err(|m| {
                    Error::data(
                        dir.join(file),
                        "stats",
                        format!("sample `{}`: {m}", label.key),
                    )
                })?;
            if counts.labelled() == 0 {
                quality.all_ignore.push(label.key.clone());
            } else if counts.classes_present() == 1 {
                quality.single_class.push(label.key.clone());
            }
            splits
                .entry(split.clone())
                .or_insert_with(|| SplitCounts::new(&built.classes))
                .add(&counts);
        }
    }
    Ok((splits, quality))
}

/// Differences between build-time and recomputed counts (ignore, pad and unknown compared as one).
pub fn compare(
    written: &BTreeMap<String, SplitCounts>,
    recomputed: &BTreeMap<String, SplitCounts>,
) -> Vec<String> {
    let mut diffs = Vec::new();
    let names: std::collections::BTreeSet<&String> =
        written.keys().chain(recomputed.keys()).collect();
    for split in names {
        let (Some(w), Some(r)) = (written.get(split), recomputed.get(split)) else {
            diffs.push(format!("{split}: present on one side only"));
            continue;
        };
        let w_ignore = w.ignore_pixels + w.pad_pixels + w.unknown_pixels;
        let r_ignore = r.ignore_pixels + r.pad_pixels + r.unknown_pixels;
        for (what, a, b) in [
            ("samples", w.samples, r.samples),
            ("labelled pixels", w.labelled_pixels, r.labelled_pixels),
            ("ignore + pad + unknown pixels", w_ignore, r_ignore),
        ] {
            if a != b {
                diffs.push(format!("{split}: {what} {a} written, {b} in the shards"));
            }
        }
        for (a, b) in w.classes.iter().zip(&r.classes) {
            if (a.pixels, a.images, a.image_pixels) != (b.pixels, b.images, b.image_pixels) {
                diffs.push(format!(
                    "{split}: class {} ({}) pixels/images/image pixels {}/{}/{} written, {}/{}/{} in the shards",
                    a.id, a.name, a.pixels, a.images, a.image_pixels, b.pixels, b.images, b.image_pixels
                ));
            }
        }
    }
    diffs
}
