//! Parquet shards `{split}-{i:05d}-of-{n:05d}.parquet`, in two layouts:
//!
//! - `huggingface`: `image` and `label` as Image structs `{bytes, path}` holding PNG (labels 8- or
//!   16-bit grey, never lossy), `key`, `split`; the schema's `huggingface` metadata declares the
//!   features so `datasets.load_dataset("parquet", ...)` decodes them.
//! - `tensor`: `image` (and `label`) as Arrow's canonical `arrow.fixed_shape_tensor` extension over a
//!   fixed-size list whose items are nullable (pyarrow drops the extension otherwise), plus
//!   `image_mean` / `image_std` after per-image standardization. Their pages are encoded by
//!   [`parquet_pixels`](super::parquet_pixels), a page per sample; the other columns by arrow-rs.
//!
//! Row groups hold at most `row_group_bytes` of pixels and are flushed one by one; pixel columns have
//! no statistics; pages uncompressed unless `compression` says gzip or zstd. The file's key-value
//! metadata carries the manifest essentials and the shard's class counts under `segprep`.
use arrow_array::builder::{BinaryBuilder, StringBuilder};
use arrow_array::{ArrayRef, Float64Array, StructArray};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use parquet::arrow::arrow_writer::{compute_leaves, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowWriter;
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use std::collections::HashMap;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::parquet_pixels::{parquet_compression, EncodedChunk, PixelColumn, PixelEncoding};
use super::{
    label_bytes, push_label_bytes, sample_bytes, shard_name, Commit, FileRecord, ShardPlan, Sink,
    SinkOptions,
};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::sample::{PixelType, Pixels, Sample};
use crate::sink::Layout;
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
    writer: Option<(AtomicFile, ShardWriter)>,
}

/// A shard's Parquet file: arrow-rs's file writer, and its encoders of the non-pixel columns.
struct ShardWriter {
    file: SerializedFileWriter<BufWriter<EarlyWriteback>>,
    arrow_columns: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    row_groups: usize,
}

/// A row group's column, in schema order: pixels encoded by segprep, or an Arrow array.
enum Column {
    Pixels(Box<EncodedChunk>),
    Arrow(ArrayRef),
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

    /// Writer settings of the arrow-rs columns (all but the tensor layout's pixels).
    fn properties(&self, rows: usize) -> WriterProperties {
        let mut b = WriterProperties::builder()
            .set_compression(parquet_compression(self.options.compression))
            .set_max_row_group_row_count(Some(rows))
            // PNG bytes: no dictionary (never repeats), no statistics (their min/max means nothing)
            .set_dictionary_enabled(false)
            .set_statistics_enabled(EnabledStatistics::None);
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

    /// A row group's columns in schema order.
    fn columns(
        &self,
        w: &ShardWriter,
        plan: &ShardPlan,
        samples: &[Sample],
    ) -> Result<Vec<Column>> {
        let mut columns = if self.tensor {
            self.pixel_columns(w, samples)?
        } else {
            vec![
                Column::Arrow(png_structs(samples, encode_image_png)?),
                Column::Arrow(png_structs(samples, |s| {
                    Ok(encode_label_png(s, self.options.label_dtype))
                })?),
            ]
        };
        columns.push(strings(samples, |s| &s.pair.key));
        columns.push(strings(samples, |_| &plan.split));
        if self.options.augment {
            columns.push(strings(samples, |s| s.augment.as_deref().unwrap_or("null")));
        }
        if w.schema.column_with_name("image_mean").is_some() {
            let values = |f: &dyn Fn(&crate::sample::Standardization) -> f64| -> Column {
                Column::Arrow(Arc::new(Float64Array::from_iter_values(
                    samples
                        .iter()
                        .map(|s| s.standardization.as_ref().map_or(f64::NAN, f)),
                )))
            };
            columns.push(values(&|v| v.mean));
            columns.push(values(&|v| v.std));
        }
        Ok(columns)
    }

    /// The tensor layout's `image` and `label` column chunks (the file's first two leaves).
    fn pixel_columns(&self, w: &ShardWriter, samples: &[Sample]) -> Result<Vec<Column>> {
        let leaves = w.file.schema_descr();
        let column = |leaf: usize, encoding: PixelEncoding| PixelColumn {
            descr: leaves.column(leaf),
            encoding,
            values_per_row: tensor_size(&w.schema, leaf),
            compression: self.options.compression,
        };
        let path = &samples[0].pair.image;
        let fail = |e: ParquetError| Error::data(path, "write", format!("parquet pixels: {e}"));
        let image = column(0, PixelEncoding::of(samples[0].image.pixels.dtype()))
            .encode(samples, |s, out| {
                out.extend_from_slice(s.image.pixels.as_bytes())
            })
            .map_err(fail)?;
        let dtype = self.options.label_dtype;
        let label = column(1, PixelEncoding::of(dtype))
            .encode(samples, |s, out| push_label_bytes(out, &s.label.ids, dtype))
            .map_err(fail)?;
        Ok(vec![
            Column::Pixels(Box::new(image)),
            Column::Pixels(Box::new(label)),
        ])
    }

    /// Writes `columns` as the shard's next row group.
    fn write_row_group(w: &mut ShardWriter, columns: Vec<Column>) -> parquet::errors::Result<()> {
        let mut encoders = w
            .arrow_columns
            .create_column_writers(w.row_groups)?
            .into_iter();
        let mut encoder = || {
            encoders
                .next()
                .ok_or_else(|| ParquetError::General("more columns than the schema's".into()))
        };
        let mut group = w.file.next_row_group()?;
        for (field, column) in w.schema.fields().iter().zip(columns) {
            match column {
                Column::Pixels(chunk) => {
                    encoder()?; // a pixel column is one leaf, not written by arrow-rs
                    let EncodedChunk { bytes, close } = *chunk;
                    group.append_column(&bytes, close)?;
                }
                Column::Arrow(array) => {
                    for leaf in compute_leaves(field, &array)? {
                        let mut leaf_encoder = encoder()?;
                        leaf_encoder.write(&leaf)?;
                        leaf_encoder.close()?.append_to_row_group(&mut group)?;
                    }
                }
            }
        }
        group.close()?;
        w.row_groups += 1;
        Ok(())
    }

    /// Opens the shard's file on its first batch.
    fn open_writer(&self, plan: &ShardPlan, first: &Sample) -> Result<(AtomicFile, ShardWriter)> {
        let path = self.dir.join(shard_name(plan, "parquet"));
        let schema = self.schema(first);
        let (atomic, file) = AtomicFile::create(&path)?;
        let props =
            self.properties(self.batch_samples(sample_bytes(first, self.options.label_dtype)));
        // ArrowWriter derives the Parquet schema and stores the Arrow one, as readers expect
        let (file, arrow_columns) =
            ArrowWriter::try_new(shard_file(file), schema.clone(), Some(props))
                .and_then(ArrowWriter::into_serialized_writer)
                .map_err(|e| Error::output(&path, "write", e.to_string()))?;
        let writer = ShardWriter {
            file,
            arrow_columns,
            schema,
            row_groups: 0,
        };
        Ok((atomic, writer))
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
        let (atomic, writer) = open.writer.as_mut().expect("opened above");
        let columns = self.columns(writer, &open.plan, &samples)?;
        Self::write_row_group(writer, columns)
            .map_err(|e| Error::output(atomic.path(), "write", e.to_string()))?;
        open.samples += samples.len();
        self.open = Some(open);
        Ok(())
    }

    fn finish(&mut self, counts: &SplitCounts) -> Result<Commit> {
        let open = self.open.take().expect("begin before finish");
        let Some((atomic, mut writer)) = open.writer else {
            return Ok(Box::new(|| Ok(vec![])));
        };
        let metadata = self.shard_metadata(&open.plan, open.samples, counts);
        writer.file.append_key_value_metadata(metadata);
        let fail = |e: String| Error::output(atomic.path(), "write", e);
        let file = writer.file.into_inner().map_err(|e| fail(e.to_string()))?;
        let file = file
            .into_inner()
            .map_err(|e| fail(e.to_string()))?
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

/// The shard file as the Parquet writer gets it. Pixel column chunks reach it in the 8 KiB pieces
/// of `append_column`'s copy; written to the file as they come, each piece's partly covered pages
/// were first zeroed by the kernel (9% of a tensor build in `perf`), so they are gathered here.
fn shard_file(file: std::fs::File) -> BufWriter<EarlyWriteback> {
    BufWriter::with_capacity(1 << 20, EarlyWriteback::new(file))
}

/// A string column of one value per sample.
fn strings<'a>(samples: &'a [Sample], value: impl Fn(&'a Sample) -> &'a str) -> Column {
    let mut column = StringBuilder::new();
    samples.iter().for_each(|s| column.append_value(value(s)));
    Column::Arrow(Arc::new(column.finish()))
}

/// The value count of a tensor column's rows: its fixed-size list's length.
fn tensor_size(schema: &SchemaRef, column: usize) -> usize {
    match schema.field(column).data_type() {
        DataType::FixedSizeList(_, size) => *size as usize,
        other => unreachable!("tensor columns are fixed-size lists, not {other}"),
    }
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
