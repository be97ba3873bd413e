//! Parquet shards `{split}-{i:05d}-of-{n:05d}.parquet`, in two layouts:
//!
//! - `huggingface`: `image` and `label` as Image structs `{bytes, path}` holding PNG (labels 8- or
//!   16-bit grey, never lossy), `key`, `split`; the schema's `huggingface` metadata declares the
//!   features so `datasets.load_dataset("parquet", ...)` decodes them.
//! - `tensor`: `image` (and `label`) as Arrow's canonical `arrow.fixed_shape_tensor` extension over a
//!   fixed-size list whose items are nullable (pyarrow drops the extension otherwise), plus
//!   `image_mean` / `image_std` after per-image standardization.
//!
//! Row groups hold at most `row_group_bytes` of pixels and are flushed one by one; pixel columns have
//! no dictionary and no statistics; pages uncompressed unless `compression` says gzip or zstd. The file's key-value metadata carries the
//! manifest essentials and the shard's class counts under `segprep`.
use arrow_array::builder::{BinaryBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, FixedSizeListArray, Float64Array, RecordBatch, StructArray, UInt16Array, UInt8Array,
};
use arrow_buffer::ScalarBuffer;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as PqCompression, GzipLevel, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{
    label_bytes, sample_bytes, shard_name, Commit, FileRecord, ShardPlan, Sink, SinkOptions,
};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::sample::{PixelType, Pixels, Sample};
use crate::sink::{Compression, Layout};
use crate::stats::counts::SplitCounts;
use crate::storage::atomic::{AtomicFile, EarlyWriteback};

/// Default target of uncompressed pixel bytes per row group.
pub const DEFAULT_ROW_GROUP_BYTES: u64 = 32 << 20;

/// Key of segprep's entry in the Parquet key-value metadata.
pub const METADATA_KEY: &str = "segprep";

pub struct ParquetSink {
    dir: PathBuf,
    options: SinkOptions,
    tensor: bool,
    row_group_bytes: u64,
    /// Manifest essentials shared by every shard.
    manifest: serde_json::Value,
    open: Option<OpenShard>,
}

/// A shard being written: one row group per batch, so only one batch is held at a time.
struct OpenShard {
    plan: ShardPlan,
    samples: usize,
    /// Created with the first batch, whose first sample fixes the schema.
    writer: Option<(AtomicFile, ArrowWriter<EarlyWriteback>, SchemaRef)>,
}

impl ParquetSink {
    /// `build`: the build's index as known before any shard, whose essentials every shard's
    /// metadata repeats, so the two never disagree.
    pub fn new(dir: &Path, options: SinkOptions, build: &Index) -> Self {
        let manifest = serde_json::json!({
            "segprep_version": build.segprep_version,
            "pipeline_hash": build.pipeline_hash,
            "classes": build.classes,
            "ignore_index": build.ignore_index,
            "label_dtype": build.label_dtype,
            "stages": build.stages,
        });
        ParquetSink {
            dir: dir.to_path_buf(),
            tensor: options.layout == Layout::Tensor,
            row_group_bytes: options.row_group_bytes,
            options,
            manifest,
            open: None,
        }
    }

    /// `integer_pixels`: the image is u8 or u16 (labels always are).
    fn properties(&self, rows: usize, integer_pixels: bool) -> WriterProperties {
        let compression = match self.options.compression {
            Compression::Stored => PqCompression::UNCOMPRESSED,
            Compression::Deflate => PqCompression::GZIP(GzipLevel::default()),
            Compression::Zstd => PqCompression::ZSTD(ZstdLevel::default()),
        };
        let mut b = WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_row_count(Some(rows))
            // pixels: no dictionary (never repeats), no statistics (min/max of PNG bytes means nothing)
            .set_dictionary_enabled(false)
            .set_statistics_enabled(EnabledStatistics::None);
        if self.tensor {
            // Parquet has no 8- or 16-bit type: u8 and u16 pixels are INT32, 4 bytes a value in
            // PLAIN pages. Delta bit-packing stores them in about one byte a value (527 MiB
            // where PLAIN took 3,121 and NPZ 782) and wrote fastest of the encodings tried
            // (docs/performance.md). f32 images stay PLAIN: 4 bytes is their size.
            let delta = parquet::basic::Encoding::DELTA_BINARY_PACKED;
            let columns: &[&str] = if integer_pixels {
                &["image", "label"]
            } else {
                &["label"]
            };
            for column in columns {
                let leaf = ColumnPath::new(vec![column.to_string(), "list".into(), "item".into()]);
                b = b.set_column_encoding(leaf, delta);
            }
        }
        if !self.tensor {
            // readers look for it in the file's key-value metadata; arrow-rs keeps schema metadata
            // only inside the encoded ARROW:schema
            let hf = KeyValue::new(
                "huggingface".to_string(),
                huggingface_features(self.options.augment).to_string(),
            );
            b = b.set_key_value_metadata(Some(vec![hf]));
        }
        for small in ["key", "split"] {
            b = b
                .set_column_dictionary_enabled(ColumnPath::from(small), true)
                .set_column_statistics_enabled(ColumnPath::from(small), EnabledStatistics::Chunk);
        }
        b.build()
    }

    /// The `segprep` entry: manifest essentials, the shard's place and its class counts.
    fn shard_metadata(&self, plan: &ShardPlan, samples: usize, counts: &SplitCounts) -> KeyValue {
        let mut meta = self.manifest.clone();
        meta["shard"] = serde_json::json!({ "split": plan.split, "index": plan.index, "of": plan.of, "samples": samples });
        meta["counts"] = serde_json::to_value(counts).expect("counts serialize");
        KeyValue::new(METADATA_KEY.to_string(), meta.to_string())
    }

    fn schema(&self, first: &Sample) -> SchemaRef {
        let mut fields = if self.tensor {
            let (h, w, c) = (
                first.image.height as usize,
                first.image.width as usize,
                first.image.bands,
            );
            vec![
                tensor_field(
                    "image",
                    arrow_type(first.image.pixels.dtype()),
                    &[h, w, c],
                    &["H", "W", "C"],
                ),
                tensor_field(
                    "label",
                    arrow_type(self.options.label_dtype),
                    &[h, w],
                    &["H", "W"],
                ),
            ]
        } else {
            vec![image_struct_field("image"), image_struct_field("label")]
        };
        // nullable like Hugging Face's own fields: `datasets` applies a declared feature only when
        // the Arrow field equals the feature's field exactly, nullability included
        fields.push(Field::new("key", DataType::Utf8, true));
        fields.push(Field::new("split", DataType::Utf8, true));
        if self.options.augment {
            fields.push(Field::new("augment", DataType::Utf8, true));
        }
        if self.tensor && first.standardization.is_some() {
            fields.push(Field::new("image_mean", DataType::Float64, true));
            fields.push(Field::new("image_std", DataType::Float64, true));
        }
        // the build's classes, ignore index and stages, where `pyarrow.parquet.read_table(f)
        // .schema.metadata` shows them (pyarrow shows the Arrow schema's metadata, not the
        // footer's other keys); the footer's `segprep` entry adds the shard and its counts
        let mut metadata = HashMap::from([(METADATA_KEY.to_string(), self.manifest.to_string())]);
        if !self.tensor {
            metadata.insert(
                "huggingface".to_string(),
                huggingface_features(self.options.augment).to_string(),
            );
        }
        Arc::new(Schema::new_with_metadata(fields, metadata))
    }

    fn batch(
        &self,
        schema: &SchemaRef,
        plan: &ShardPlan,
        samples: &[Sample],
    ) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = if self.tensor {
            vec![
                image_tensor(schema, samples)?,
                label_tensor(schema, samples, self.options.label_dtype),
            ]
        } else {
            vec![
                png_structs(samples, encode_image_png)?,
                png_structs(samples, |s| {
                    Ok(encode_label_png(s, self.options.label_dtype))
                })?,
            ]
        };
        let mut keys = StringBuilder::new();
        let mut splits = StringBuilder::new();
        for s in samples {
            keys.append_value(&s.pair.key);
            splits.append_value(&plan.split);
        }
        columns.push(Arc::new(keys.finish()));
        columns.push(Arc::new(splits.finish()));
        if self.options.augment {
            let mut drawn = StringBuilder::new();
            samples
                .iter()
                .for_each(|s| drawn.append_value(s.augment.as_deref().unwrap_or("null")));
            columns.push(Arc::new(drawn.finish()));
        }
        if schema.column_with_name("image_mean").is_some() {
            let values = |f: &dyn Fn(&crate::sample::Standardization) -> f64| -> ArrayRef {
                Arc::new(Float64Array::from_iter_values(
                    samples
                        .iter()
                        .map(|s| s.standardization.as_ref().map_or(f64::NAN, f)),
                ))
            };
            columns.push(values(&|v| v.mean));
            columns.push(values(&|v| v.std));
        }
        let path = &samples[0].pair.image;
        RecordBatch::try_new(schema.clone(), columns)
            .map_err(|e| Error::data(path, "write", format!("parquet batch: {e}")))
    }

    /// Opens the shard's file on its first batch.
    fn open_writer(
        &self,
        plan: &ShardPlan,
        first: &Sample,
    ) -> Result<(AtomicFile, ArrowWriter<EarlyWriteback>, SchemaRef)> {
        let path = self.dir.join(shard_name(plan, "parquet"));
        let schema = self.schema(first);
        let (atomic, file) = AtomicFile::create(&path)?;
        let props = self.properties(
            self.batch_samples(sample_bytes(first, self.options.label_dtype)),
            first.image.pixels.dtype() != PixelType::F32,
        );
        let writer = ArrowWriter::try_new(EarlyWriteback::new(file), schema.clone(), Some(props))
            .map_err(|e| Error::output(&path, "write", e.to_string()))?;
        Ok((atomic, writer, schema))
    }
}

impl Sink for ParquetSink {
    fn batch_samples(&self, sample_bytes: u64) -> usize {
        (self.row_group_bytes / sample_bytes.max(1)).max(1) as usize
    }

    fn begin(&mut self, plan: &ShardPlan) -> Result<()> {
        self.open = Some(OpenShard {
            plan: plan.clone(),
            samples: 0,
            writer: None,
        });
        Ok(())
    }

    /// One batch = one row group, written and flushed before the next arrives.
    fn write(&mut self, samples: Vec<Sample>) -> Result<()> {
        let Some(first) = samples.first() else {
            return Ok(());
        };
        let mut open = self.open.take().expect("begin before write");
        if open.writer.is_none() {
            open.writer = Some(self.open_writer(&open.plan, first)?);
        }
        let (atomic, writer, schema) = open.writer.as_mut().expect("opened above");
        let batch = self.batch(schema, &open.plan, &samples)?;
        let fail =
            |e: parquet::errors::ParquetError| Error::output(atomic.path(), "write", e.to_string());
        writer.write(&batch).map_err(fail)?;
        writer.flush().map_err(fail)?;
        open.samples += samples.len();
        self.open = Some(open);
        Ok(())
    }

    fn finish(&mut self, counts: &SplitCounts) -> Result<Commit> {
        let open = self.open.take().expect("begin before finish");
        let Some((atomic, mut writer, _)) = open.writer else {
            return Ok(Box::new(|| Ok(vec![])));
        };
        writer.append_key_value_metadata(self.shard_metadata(&open.plan, open.samples, counts));
        let file = writer
            .into_inner()
            .map_err(|e| Error::output(atomic.path(), "write", e.to_string()))?
            .into_file();
        Ok(Box::new(move || {
            let (bytes, sha256) = atomic.commit(file)?;
            Ok(vec![FileRecord {
                file: shard_name(&open.plan, "parquet"),
                split: open.plan.split.clone(),
                samples: open.samples,
                bytes,
                sha256,
            }])
        }))
    }
}

fn arrow_type(t: PixelType) -> DataType {
    match t {
        PixelType::U8 => DataType::UInt8,
        PixelType::U16 => DataType::UInt16,
        PixelType::F32 => DataType::Float32,
    }
}

/// `{bytes: binary, path: string}`: the storage of Hugging Face's `Image` feature.
fn image_struct_field(name: &str) -> Field {
    let fields = Fields::from(vec![
        Field::new("bytes", DataType::Binary, true),
        Field::new("path", DataType::Utf8, true),
    ]);
    Field::new(name, DataType::Struct(fields), true)
}

fn huggingface_features(augment: bool) -> serde_json::Value {
    let value = |dtype: &str| serde_json::json!({ "dtype": dtype, "_type": "Value" });
    let mut features = serde_json::json!({
        "image": { "_type": "Image" },
        "label": { "_type": "Image" },
        "key": value("string"),
        "split": value("string"),
    });
    if augment {
        features["augment"] = value("string");
    }
    serde_json::json!({ "info": { "features": features } })
}

/// A fixed-size list of `shape`'s product, tagged as `arrow.fixed_shape_tensor`. Items nullable.
fn tensor_field(name: &str, item: DataType, shape: &[usize], dims: &[&str]) -> Field {
    let size = shape.iter().product::<usize>() as i32;
    let list = DataType::FixedSizeList(Arc::new(Field::new("item", item, true)), size);
    let meta = serde_json::json!({ "shape": shape, "dim_names": dims });
    Field::new(name, list, true).with_metadata(HashMap::from([
        (
            "ARROW:extension:name".to_string(),
            "arrow.fixed_shape_tensor".to_string(),
        ),
        ("ARROW:extension:metadata".to_string(), meta.to_string()),
    ]))
}

fn list_of(schema: &SchemaRef, column: &str, values: ArrayRef) -> Result<ArrayRef> {
    let field = schema
        .field_with_name(column)
        .map_err(|e| Error::Usage(e.to_string()))?;
    let DataType::FixedSizeList(item, size) = field.data_type() else {
        unreachable!("tensor columns are fixed-size lists")
    };
    let list = FixedSizeListArray::try_new(item.clone(), *size, values, None)
        .map_err(|e| Error::Usage(format!("tensor column {column}: {e}")))?;
    Ok(Arc::new(list))
}

fn image_tensor(schema: &SchemaRef, samples: &[Sample]) -> Result<ArrayRef> {
    let values: ArrayRef = match &samples[0].image.pixels {
        Pixels::U8(_) => Arc::new(UInt8Array::new(
            ScalarBuffer::from(concat(samples, |p| match p {
                Pixels::U8(v) => v.as_slice(),
                _ => &[],
            })),
            None,
        )),
        Pixels::U16(_) => Arc::new(UInt16Array::new(
            ScalarBuffer::from(concat(samples, |p| match p {
                Pixels::U16(v) => v.as_slice(),
                _ => &[],
            })),
            None,
        )),
        Pixels::F32(_) => Arc::new(arrow_array::Float32Array::new(
            ScalarBuffer::from(concat(samples, |p| match p {
                Pixels::F32(v) => v.as_slice(),
                _ => &[],
            })),
            None,
        )),
    };
    list_of(schema, "image", values)
}

fn concat<'a, T: Copy + 'a>(samples: &'a [Sample], get: impl Fn(&'a Pixels) -> &'a [T]) -> Vec<T> {
    let mut out = Vec::with_capacity(samples.iter().map(|s| s.image.pixels.len()).sum());
    samples
        .iter()
        .for_each(|s| out.extend_from_slice(get(&s.image.pixels)));
    out
}

fn label_tensor(schema: &SchemaRef, samples: &[Sample], dtype: PixelType) -> ArrayRef {
    let values: ArrayRef = match dtype {
        PixelType::U8 => Arc::new(UInt8Array::from_iter_values(
            samples
                .iter()
                .flat_map(|s| s.label.ids.iter().map(|&v| v as u8)),
        )),
        _ => Arc::new(UInt16Array::from_iter_values(
            samples.iter().flat_map(|s| s.label.ids.iter().copied()),
        )),
    };
    list_of(schema, "label", values).expect("label tensor shape matches the schema")
}

fn png_structs(
    samples: &[Sample],
    encode: impl Fn(&Sample) -> Result<Vec<u8>>,
) -> Result<ArrayRef> {
    let mut bytes = BinaryBuilder::new();
    for s in samples {
        bytes.append_value(encode(s)?);
    }
    let mut paths = StringBuilder::new();
    samples.iter().for_each(|_| paths.append_null());
    let DataType::Struct(fields) = image_struct_field("x").data_type().clone() else {
        unreachable!()
    };
    Ok(Arc::new(StructArray::new(
        fields,
        vec![Arc::new(bytes.finish()), Arc::new(paths.finish())],
        None,
    )))
}

fn encode_png(
    width: u32,
    height: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(color);
    enc.set_depth(depth);
    enc.set_compression(png::Compression::Fast);
    let mut w = enc.write_header().map_err(std::io::Error::other)?;
    w.write_image_data(data).map_err(std::io::Error::other)?;
    w.finish().map_err(std::io::Error::other)?;
    Ok(out)
}

fn encode_image_png(s: &Sample) -> Result<Vec<u8>> {
    use png::ColorType as C;
    let color = match s.image.bands {
        1 => C::Grayscale,
        2 => C::GrayscaleAlpha,
        3 => C::Rgb,
        4 => C::Rgba,
        n => {
            return Err(Error::data(
                &s.pair.image,
                "write",
                format!("PNG holds 1 to 4 bands, this image has {n}; use layout = \"tensor\""),
            ))
        }
    };
    let result = match &s.image.pixels {
        Pixels::U8(v) => encode_png(
            s.image.width,
            s.image.height,
            color,
            png::BitDepth::Eight,
            v,
        ),
        Pixels::U16(v) => {
            let be: Vec<u8> = v.iter().flat_map(|x| x.to_be_bytes()).collect();
            encode_png(
                s.image.width,
                s.image.height,
                color,
                png::BitDepth::Sixteen,
                &be,
            )
        }
        Pixels::F32(_) => {
            return Err(Error::data(
                &s.pair.image,
                "write",
                "f32 images cannot be PNG; use layout = \"tensor\"",
            ))
        }
    };
    result.map_err(|e| Error::data(&s.pair.image, "write", format!("PNG encoding: {e}")))
}

/// Labels as 8- or 16-bit grey PNG: lossless, so every id survives exactly.
fn encode_label_png(s: &Sample, dtype: PixelType) -> Vec<u8> {
    let (w, h) = (s.label.width, s.label.height);
    let result = match dtype {
        PixelType::U8 => encode_png(
            w,
            h,
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            &label_bytes(&s.label.ids, dtype),
        ),
        _ => {
            let be: Vec<u8> = s.label.ids.iter().flat_map(|x| x.to_be_bytes()).collect();
            encode_png(w, h, png::ColorType::Grayscale, png::BitDepth::Sixteen, &be)
        }
    };
    result.expect("encoding a grey PNG into memory does not fail")
}
