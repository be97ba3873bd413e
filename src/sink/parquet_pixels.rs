//! The pixel columns of the Parquet tensor layout, encoded a page per sample.
//!
//! arrow-rs's writer builds a repetition and a definition level for each of a sample's million
//! pixel values, widens each to INT32 and encodes it, on the one writer thread: 3 to 4 times a
//! stored NPZ build. Here every level is known before a value is seen (no nulls, one length), so a
//! sample's page holds two runs of levels and then its pixel bytes as they are:
//! - u8 and u16 pixels (INT32 in Parquet, which has no 8- or 16-bit type) are dictionary encoded
//!   over the dictionary 0, 1, ..., 255 (or 65,535): each index *is* its value, and indices
//!   bit-packed 8 (16) bits wide are exactly the little-endian pixel bytes;
//! - f32 pixels are PLAIN, which is their little-endian bytes.
//!
//! Readers decode the same INT32 or FLOAT values as from any other writer's pages.
use bytes::Bytes;
use parquet::basic::{Compression as PqCompression, Encoding, PageType};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ColumnChunkMetaData, OffsetIndexBuilder, PageEncodingStats};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;
use std::io::Write;

use crate::sample::PixelType;
use crate::sink::Compression;

/// How one pixel column's values are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelEncoding {
    /// Dictionary indices `bits` wide over the identity dictionary `0..1 << bits`.
    Identity { bits: u8 },
    /// PLAIN little-endian values (f32).
    Plain,
}

impl PixelEncoding {
    /// The encoding of `dtype` values.
    pub fn of(dtype: PixelType) -> PixelEncoding {
        match dtype {
            PixelType::U8 => PixelEncoding::Identity { bits: 8 },
            PixelType::U16 => PixelEncoding::Identity { bits: 16 },
            PixelType::F32 => PixelEncoding::Plain,
        }
    }

    /// The encoding of the values in a data page.
    fn data_page_encoding(self) -> Encoding {
        match self {
            PixelEncoding::Identity { .. } => Encoding::RLE_DICTIONARY,
            PixelEncoding::Plain => Encoding::PLAIN,
        }
    }

    fn value_bytes(self) -> usize {
        match self {
            PixelEncoding::Identity { bits } => bits as usize / 8,
            PixelEncoding::Plain => 4,
        }
    }
}

/// One pixel column of a row group: its leaf, its encoding and each row's value count.
pub struct PixelColumn {
    pub descr: ColumnDescPtr,
    pub encoding: PixelEncoding,
    pub values_per_row: usize,
    pub compression: Compression,
}

/// A column chunk ready for `SerializedRowGroupWriter::append_column`: its bytes, with page offsets
/// counted from the chunk's start.
pub struct EncodedChunk {
    pub bytes: Bytes,
    pub close: ColumnCloseResult,
}

impl PixelColumn {
    /// Encodes one row per item of `rows`; `append(row, out)` appends the row's little-endian
    /// value bytes to `out` (which may hold other bytes before them).
    pub fn encode<T>(&self, rows: &[T], append: impl Fn(&T, &mut Vec<u8>)) -> Result<EncodedChunk> {
        let page_bytes = self.values_per_row * self.encoding.value_bytes() + 64;
        let mut sink = TrackedWrite::new(Vec::with_capacity(rows.len() * page_bytes + (4 << 16)));
        let mut pages = SerializedPageWriter::new(&mut sink);
        let mut totals = ChunkTotals::default();
        if let PixelEncoding::Identity { bits } = self.encoding {
            let spec = pages.write_page(self.compress(identity_dictionary(bits), true)?)?;
            totals.add(spec.compressed_size, spec.uncompressed_size);
        }
        let mut offsets = OffsetIndexBuilder::new();
        let mut first_data_page = None;
        for row in rows {
            let page = self.compress(self.data_page_body(row, &append)?, false)?;
            let spec = pages.write_page(page)?;
            first_data_page.get_or_insert(spec.offset as i64);
            offsets.append_offset_and_size(spec.offset as i64, spec.compressed_size as i32);
            offsets.append_row_count(1);
            totals.add(spec.compressed_size, spec.uncompressed_size);
        }
        pages.close()?;
        let bytes = Bytes::from(sink.into_inner()?);
        let metadata = self.metadata(&totals, rows.len(), first_data_page.unwrap_or(0))?;
        let close = ColumnCloseResult {
            bytes_written: bytes.len() as u64,
            rows_written: rows.len() as u64,
            metadata,
            bloom_filter: None,
            column_index: None,
            offset_index: Some(offsets.build()),
        };
        Ok(EncodedChunk { bytes, close })
    }

    /// Levels (all rows full, no nulls), then the row's values in this column's encoding.
    fn data_page_body<T>(&self, row: &T, append: &impl Fn(&T, &mut Vec<u8>)) -> Result<Vec<u8>> {
        let n = self.values_per_row;
        let bytes = n as u64 * self.encoding.value_bytes() as u64;
        if bytes > PAGE_LIMIT {
            // a page's sizes are 32-bit in its header
            return Err(ParquetError::General(format!(
                "a sample of {bytes} bytes is more than a Parquet page holds ({PAGE_LIMIT}); \
                 write this data set as NPZ (format = \"npz\")"
            )));
        }
        let mut body = Vec::with_capacity(n * self.encoding.value_bytes() + 64);
        let (max_rep, max_def) = (self.descr.max_rep_level(), self.descr.max_def_level());
        if max_rep > 0 {
            // a row starts at level 0; its other values repeat the innermost list
            push_level_runs(&mut body, max_rep, &[(0, 1), (max_rep, n - 1)]);
        }
        if max_def > 0 {
            push_level_runs(&mut body, max_def, &[(max_def, n)]);
        }
        if let PixelEncoding::Identity { bits } = self.encoding {
            body.push(bits);
            // one bit-packed run of ceil(n / 8) groups of eight indices
            push_uleb128(&mut body, ((n.div_ceil(8) as u64) << 1) | 1);
        }
        let start = body.len();
        append(row, &mut body);
        let got = body.len() - start;
        if got != n * self.encoding.value_bytes() {
            return Err(ParquetError::General(format!(
                "{}: a row holds {got} bytes, the column's shape {} values of {} bytes",
                self.descr.path().string(),
                n,
                self.encoding.value_bytes()
            )));
        }
        if let PixelEncoding::Identity { bits } = self.encoding {
            // the last group of eight is padded with index 0
            body.resize(start + n.div_ceil(8) * bits as usize, 0);
        }
        Ok(body)
    }

    /// A page of `body` (uncompressed), compressed as the column says.
    fn compress(&self, body: Vec<u8>, dictionary: bool) -> Result<CompressedPage> {
        let uncompressed = body.len();
        let buf = Bytes::from(compress(self.compression, body)?);
        let page = if dictionary {
            Page::DictionaryPage {
                num_values: (uncompressed / 4) as u32,
                buf,
                encoding: Encoding::PLAIN,
                is_sorted: true,
            }
        } else {
            Page::DataPage {
                buf,
                num_values: self.values_per_row as u32,
                encoding: self.encoding.data_page_encoding(),
                def_level_encoding: Encoding::RLE,
                rep_level_encoding: Encoding::RLE,
                statistics: None,
            }
        };
        Ok(CompressedPage::new(page, uncompressed))
    }

    fn metadata(
        &self,
        totals: &ChunkTotals,
        rows: usize,
        first_data_page: i64,
    ) -> Result<ColumnChunkMetaData> {
        let dictionary = matches!(self.encoding, PixelEncoding::Identity { .. });
        let mut encodings = vec![Encoding::PLAIN, Encoding::RLE];
        let mut stats = vec![PageEncodingStats {
            page_type: PageType::DATA_PAGE,
            encoding: self.encoding.data_page_encoding(),
            count: rows as i32,
        }];
        if dictionary {
            encodings.push(Encoding::RLE_DICTIONARY);
            stats.insert(
                0,
                PageEncodingStats {
                    page_type: PageType::DICTIONARY_PAGE,
                    encoding: Encoding::PLAIN,
                    count: 1,
                },
            );
        }
        ColumnChunkMetaData::builder(self.descr.clone())
            .set_compression(parquet_compression(self.compression))
            .set_encodings(encodings)
            .set_page_encoding_stats(stats)
            .set_num_values((rows * self.values_per_row) as i64)
            .set_total_compressed_size(totals.compressed as i64)
            .set_total_uncompressed_size(totals.uncompressed as i64)
            .set_data_page_offset(first_data_page)
            .set_dictionary_page_offset(dictionary.then_some(0))
            .build()
    }
}

#[derive(Default)]
struct ChunkTotals {
    compressed: usize,
    uncompressed: usize,
}

impl ChunkTotals {
    fn add(&mut self, compressed: usize, uncompressed: usize) {
        self.compressed += compressed;
        self.uncompressed += uncompressed;
    }
}

/// The dictionary page's body: INT32 `0..1 << bits`, PLAIN.
fn identity_dictionary(bits: u8) -> Vec<u8> {
    (0..1i32 << bits).flat_map(i32::to_le_bytes).collect()
}

/// A v1 page's level block: its byte length, then RLE runs of (level, count), each level in one
/// byte (levels here are at most 3).
fn push_level_runs(out: &mut Vec<u8>, max_level: i16, runs: &[(i16, usize)]) {
    debug_assert!(max_level < 256, "a level fits in one byte");
    let length_at = out.len();
    out.extend_from_slice(&[0; 4]);
    for &(level, count) in runs.iter().filter(|(_, count)| *count > 0) {
        push_uleb128(out, (count as u64) << 1);
        out.push(level as u8);
    }
    let length = (out.len() - length_at - 4) as u32;
    out[length_at..length_at + 4].copy_from_slice(&length.to_le_bytes());
}

fn push_uleb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The compression codec Parquet records for `compression`.
pub fn parquet_compression(compression: Compression) -> PqCompression {
    use parquet::basic::{GzipLevel, ZstdLevel};
    match compression {
        Compression::Stored => PqCompression::UNCOMPRESSED,
        Compression::Deflate => PqCompression::GZIP(GzipLevel::default()),
        Compression::Zstd => PqCompression::ZSTD(ZstdLevel::default()),
    }
}

/// `body` compressed as Parquet's codec for `compression` stores it (gzip level 6, zstd level 1:
/// the parquet crate's defaults, which the other columns use).
fn compress(compression: Compression, body: Vec<u8>) -> Result<Vec<u8>> {
    let failed = |e: std::io::Error| ParquetError::General(format!("compressing a page: {e}"));
    match compression {
        Compression::Stored => Ok(body),
        Compression::Deflate => {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 2),
                flate2::Compression::new(GZIP_LEVEL),
            );
            gz.write_all(&body).map_err(failed)?;
            gz.finish().map_err(failed)
        }
        Compression::Zstd => zstd::bulk::compress(&body, ZSTD_LEVEL).map_err(failed),
    }
}

const GZIP_LEVEL: u32 = 6;
/// The largest page body, with room for its levels and compression's overhead under `i32::MAX`.
const PAGE_LIMIT: u64 = i32::MAX as u64 - (16 << 20);
const ZSTD_LEVEL: i32 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uleb128_is_seven_bits_a_byte_low_first() {
        for (value, want) in [
            (0u64, vec![0u8]),
            (127, vec![127]),
            (128, vec![0x80, 1]),
            (196_609, vec![0x81, 0x80, 0x0c]),
        ] {
            let mut out = vec![];
            push_uleb128(&mut out, value);
            assert_eq!(out, want, "{value}");
        }
    }

    #[test]
    fn level_runs_are_length_prefixed_rle() {
        let mut out = vec![9];
        push_level_runs(&mut out, 1, &[(0, 1), (1, 99)]);
        // length 5: run (count 1 << 1, level 0), run (99 << 1 = 198 as a uleb128, level 1)
        assert_eq!(out, [9, 5, 0, 0, 0, 2, 0, 0xc6, 0x01, 1]);
    }

    #[test]
    fn a_sample_larger_than_a_page_holds_is_refused_before_anything_is_allocated() {
        use parquet::schema::{parser::parse_message_type, types::SchemaDescriptor};
        let message = "message m { optional group image (LIST) { repeated group list { optional float item; } } }";
        let schema =
            SchemaDescriptor::new(std::sync::Arc::new(parse_message_type(message).unwrap()));
        let column = PixelColumn {
            descr: schema.column(0),
            encoding: PixelEncoding::Plain,
            // 16384 x 16384 x 2 bands of f32: 2 GiB
            values_per_row: 16384 * 16384 * 2,
            compression: Compression::Stored,
        };
        let appended = std::cell::Cell::new(false);
        let err = column
            .encode(&[()], |_, _| appended.set(true))
            .err()
            .expect("refused");
        assert!(
            err.to_string().contains("more than a Parquet page holds"),
            "{err}"
        );
        assert!(err.to_string().contains("format = \"npz\""), "{err}");
        assert!(!appended.get(), "no pixel was copied");
    }

    #[test]
    fn the_identity_dictionary_holds_every_index_as_its_value() {
        let dict = identity_dictionary(8);
        assert_eq!(dict.len(), 256 * 4);
        assert_eq!(dict[4 * 200..4 * 201], 200i32.to_le_bytes());
    }
}
