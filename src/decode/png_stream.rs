//! 8-bit RGB and RGBA PNGs read as rows with segprep's un-filtering: the png crate's streaming
//! decoder parses the chunks up to the image data. Image data of at most [`WHOLE_AT_MOST`] bytes
//! is then inflated at once by libdeflate ([`whole`]); larger data, and any the one-shot inflate
//! does not take exactly, is inflated by the png crate's decoder as the rows are needed. The rows
//! are un-filtered two at a time ([`super::unfilter::pair`]), which the png crate's reader does
//! one at a time. Un-filtering was a fifth of a build's time, inflating a third. Other PNGs are
//! left to the png crate's reader ([`open`] says which).
use std::io::{BufRead, Cursor};

use png::{BitDepth, ColorType, Decoded, DecodingError, StreamingDecoder, UnfilterRegion};

use super::unfilter;

mod whole;

/// Inflated bytes are kept until this many before the inflater's window can be dropped at once:
/// the copy that drops them moves only the window and the rows not yet taken.
const DROP_AT_LEAST: usize = 128 << 10;
/// Room the inflater is given beyond what it has written (it writes at most 8 KiB a call).
const GROWTH: usize = 16 << 10;

/// A PNG positioned at its image data, whose rows this module un-filters.
pub(crate) struct PngRows<R> {
    input: R,
    decoder: StreamingDecoder,
    pub width: u32,
    pub height: u32,
    /// Bytes a pixel: 3 (RGB) or 4 (RGBA).
    pub bands: usize,
    /// Bytes of the first image data chunk, whose data the input is positioned at.
    first_chunk: u32,
}

/// Reads the PNG's chunks up to its image data. `None` when the PNG is not one this module reads
/// (not 8-bit RGB or RGBA, interlaced, with a transparency chunk to expand, or a CPU without the
/// fast path): the caller rewinds and takes the png crate's reader.
pub(crate) fn open<R: BufRead>(mut input: R) -> Result<Option<PngRows<R>>, DecodingError> {
    let mut decoder = StreamingDecoder::new();
    // nothing downstream reads text or colour profiles: skip them, and their inflating
    decoder.set_ignore_text_chunk(true);
    decoder.set_ignore_iccp_chunk(true);
    let first_chunk = loop {
        match next_event(&mut decoder, &mut input, None)? {
            Decoded::ChunkBegin(length, png::chunk::IDAT) => break length,
            Decoded::ChunkComplete(png::chunk::IEND) => {
                return Err(std::io::Error::other("the PNG has no image data").into())
            }
            _ => {}
        }
    };
    // the decoder refuses any chunk before the header, so this is there; an error if not
    let Some(info) = decoder.info() else {
        return Err(format_error("image data before the PNG header".into()));
    };
    let bands = match info.color_type {
        ColorType::Rgb => 3,
        ColorType::Rgba => 4,
        _ => return Ok(None),
    };
    let plain = info.bit_depth == BitDepth::Eight && !info.interlaced && info.trns.is_none();
    if !plain || !unfilter::fast_for(bands) {
        return Ok(None);
    }
    let (width, height) = (info.width, info.height);
    Ok(Some(PngRows {
        input,
        decoder,
        width,
        height,
        bands,
        first_chunk,
    }))
}

impl<R> PngRows<R> {
    /// (width, height, bytes a pixel).
    fn shape(&self) -> (usize, usize, usize) {
        (self.width as usize, self.height as usize, self.bands)
    }
}

impl<R: BufRead> PngRows<R> {
    /// Hands every row, un-filtered (`width * bands` bytes), to `f` in order. Rows are allocated
    /// here, so the caller checks the header's size against its limits first.
    pub fn for_each_row(self, f: impl FnMut(&[u8])) -> Result<(), DecodingError> {
        self.for_each_row_within(WHOLE_AT_MOST, f)
    }

    /// [`Self::for_each_row`], inflating at once image data of at most `whole_at_most` bytes.
    fn for_each_row_within(
        mut self,
        whole_at_most: usize,
        f: impl FnMut(&[u8]),
    ) -> Result<(), DecodingError> {
        let shape = self.shape();
        let (row_bytes, total) = (filtered_row_bytes(shape), filtered_size(shape)?);
        if total > whole_at_most {
            return unfilter_rows(Inflated::new(self)?, shape, f);
        }
        // the rest of the file: the image data, usually only IEND after it
        let mut rest = FILE_REST.take();
        rest.clear();
        let read = self.input.read_to_end(&mut rest);
        let outcome = match read {
            Ok(_) => match whole::inflate(&mut rest, self.first_chunk, row_bytes, total) {
                Some(rows) => unfilter_rows(rows, shape, f),
                // the png crate's decoder, where it stopped, reads what this one did not take
                None => {
                    let replay = PngRows {
                        input: Cursor::new(&rest[..]),
                        decoder: self.decoder,
                        width: self.width,
                        height: self.height,
                        bands: self.bands,
                        first_chunk: self.first_chunk,
                    };
                    Inflated::new(replay).and_then(|rows| unfilter_rows(rows, shape, f))
                }
            },
            Err(e) => Err(e.into()),
        };
        FILE_REST.set(rest);
        outcome
    }
}

/// Image data (filtered rows) of at most this many bytes is inflated at once: the file's rest
/// and the rows are held whole, which a 1024x1024 RGBA photo needs 4 MiB for. Larger images (a
/// satellite tile) stream through a window of the png crate's decoder instead.
const WHOLE_AT_MOST: usize = 64 << 20;

thread_local! {
    /// The last file's bytes after its header chunks, kept for the next on this thread.
    static FILE_REST: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Bytes of a filtered row: its filter byte and its pixels.
fn filtered_row_bytes((width, _, bands): (usize, usize, usize)) -> usize {
    1 + width * bands
}

/// Bytes of the filtered rows: a filter byte and `width * bands` bytes a row.
fn filtered_size((width, height, bands): (usize, usize, usize)) -> Result<usize, DecodingError> {
    width
        .checked_mul(bands)
        .and_then(|row| row.checked_add(1))
        .and_then(|row| row.checked_mul(height))
        .ok_or_else(|| format_error("the image is too large to address".into()))
}

/// Filtered rows handed out in order, each with its filter byte.
trait FilteredRows {
    /// The next `n` filtered rows.
    fn take(&mut self, n: usize) -> Result<&[u8], DecodingError>;
}

/// Un-filters every row from `stream` and hands it to `f` in order.
fn unfilter_rows(
    mut stream: impl FilteredRows,
    (width, height, bpp): (usize, usize, usize),
    mut f: impl FnMut(&[u8]),
) -> Result<(), DecodingError> {
    let row_bytes = width * bpp;
    let mut above = vec![0u8; row_bytes];
    let mut two = [vec![0u8; row_bytes], vec![0u8; row_bytes]];
    let mut left = height;
    while left > 0 {
        let taken = left.min(2);
        let filtered = stream.take(taken)?;
        let (first, second) = filtered.split_at(row_bytes + 1);
        let [out0, out1] = &mut two;
        let done = if taken == 2 {
            let raw = [&first[1..], &second[1..row_bytes + 1]];
            unfilter::pair(bpp, [first[0], second[0]], &above, raw, [out0, out1])
        } else {
            unfilter::row(bpp, first[0], &above, &first[1..], out0)
        };
        done.map_err(|filter| format_error(format!("unknown row filter type {filter}")))?;
        two[..taken].iter().for_each(|row| f(row));
        std::mem::swap(&mut above, &mut two[taken - 1]);
        left -= taken;
    }
    Ok(())
}

/// The image data inflated as it is needed: `data[start..filled]` are the filtered rows not yet
/// taken; the inflater may read back up to 32 KiB before `filled` (from `region.available`).
struct Inflated<R> {
    rows: PngRows<R>,
    data: Vec<u8>,
    region: UnfilterRegion,
    start: usize,
    /// Image data bytes not inflated yet.
    remaining: usize,
    /// Bytes of a filtered row: its filter byte and its pixels.
    filtered_row: usize,
}

thread_local! {
    /// The last image's inflate buffer, for the next one on this thread: growing a new one in
    /// 16 KiB steps zeroed and copied about a megabyte per 1024x1024 label. Its old bytes are
    /// never read: the inflater reads back only below what it has written for this image.
    static INFLATED: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

impl<R> Drop for Inflated<R> {
    fn drop(&mut self) {
        INFLATED.set(std::mem::take(&mut self.data));
    }
}

impl<R: BufRead> FilteredRows for Inflated<R> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodingError> {
        self.take_rows(n)
    }
}

impl<R: BufRead> Inflated<R> {
    fn new(rows: PngRows<R>) -> Result<Self, DecodingError> {
        let shape = rows.shape();
        let (filtered_row, total) = (filtered_row_bytes(shape), filtered_size(shape)?);
        Ok(Inflated {
            rows,
            data: INFLATED.take(),
            region: UnfilterRegion::default(),
            start: 0,
            remaining: total,
            filtered_row,
        })
    }

    /// The next `n` filtered rows, each with its filter byte.
    fn take_rows(&mut self, n: usize) -> Result<&[u8], DecodingError> {
        let want = n * self.filtered_row;
        while self.region.filled - self.start < want {
            if self.remaining == 0 {
                return Err(short_image());
            }
            self.make_room();
            let filled = self.region.filled;
            let event = next_event(
                &mut self.rows.decoder,
                &mut self.rows.input,
                Some(&mut self.region.as_buf(&mut self.data)),
            )?;
            self.remaining -= self.region.filled - filled;
            if self.remaining == 0 {
                // no more back-references will come: all of it may be dropped once taken
                self.region.available = self.region.filled;
            }
            let ended = matches!(
                event,
                Decoded::ImageDataFlushed | Decoded::ChunkComplete(png::chunk::IEND)
            );
            if ended && self.region.filled - self.start < want {
                return Err(short_image());
            }
        }
        let rows = &self.data[self.start..self.start + want];
        self.start += want;
        Ok(rows)
    }

    /// Drops taken bytes outside the window once there are many, and sizes the buffer so the
    /// inflater has room but never more than the image data left: the png crate's inflater takes
    /// a full buffer at the end of the data for a complete image.
    fn make_room(&mut self) {
        let droppable = self.start.min(self.region.available);
        if self.data.len() - self.region.filled < GROWTH && droppable >= DROP_AT_LEAST {
            self.data.copy_within(droppable..self.region.filled, 0);
            self.start -= droppable;
            self.region.available -= droppable;
            self.region.filled -= droppable;
        }
        let len = self.region.filled + GROWTH.min(self.remaining);
        if self.data.len() < len {
            self.data.resize(len, 0);
        } else {
            self.data.truncate(self.region.filled + self.remaining);
        }
    }
}

/// Feeds the decoder from `input` until it reports an event; end of input is an error.
fn next_event<R: BufRead>(
    decoder: &mut StreamingDecoder,
    input: &mut R,
    image_data: Option<&mut png::UnfilterBuf<'_>>,
) -> Result<Decoded, DecodingError> {
    let buf = input.fill_buf()?;
    if buf.is_empty() {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    let (used, event) = decoder.update(buf, image_data)?;
    input.consume(used);
    Ok(event)
}

fn short_image() -> DecodingError {
    format_error("the PNG ended before its last row".into())
}

fn format_error(why: String) -> DecodingError {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::unfilter::test_bytes as bytes;
    use crate::decode::DecodeLimits;
    use crate::sample::Pixels;
    use std::path::Path;

    /// A PNG made by hand from filtered rows (filter byte first), its zlib stream in stored
    /// blocks and its image data cut into IDAT chunks of `chunk` bytes: any filter bytes, any
    /// chunking. `trns` adds a transparency chunk.
    fn png_of_filtered(path: &Path, (w, h): (u32, u32), rgba: bool, rows: &[u8], chunk: usize) {
        fn put(out: &mut Vec<u8>, kind: &[u8], body: &[u8]) {
            out.extend((body.len() as u32).to_be_bytes());
            let mut crc = crc32fast::Hasher::new();
            crc.update(kind);
            crc.update(body);
            out.extend(kind);
            out.extend(body);
            out.extend(crc.finalize().to_be_bytes());
        }
        let mut zlib = vec![0x78, 0x01];
        let blocks: Vec<&[u8]> = rows.chunks(65535).collect();
        for (i, block) in blocks.iter().enumerate() {
            zlib.push(u8::from(i + 1 == blocks.len()));
            let n = block.len() as u16;
            zlib.extend(n.to_le_bytes());
            zlib.extend((!n).to_le_bytes());
            zlib.extend(*block);
        }
        let (mut a, mut b) = (1u32, 0u32);
        for &x in rows {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        zlib.extend(((b << 16) | a).to_be_bytes());
        let mut file = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut header = [w.to_be_bytes(), h.to_be_bytes()].concat();
        header.extend([8, if rgba { 6 } else { 2 }, 0, 0, 0]);
        put(&mut file, b"IHDR", &header);
        for part in zlib.chunks(chunk) {
            put(&mut file, b"IDAT", part);
        }
        put(&mut file, b"IEND", &[]);
        std::fs::write(path, file).unwrap();
    }

    /// The png crate's reading of a file: every band, alpha kept.
    fn png_crate_pixels(path: &Path) -> Vec<u8> {
        png_crate_reading(path).unwrap()
    }

    fn png_crate_reading(path: &Path) -> Result<Vec<u8>, png::DecodingError> {
        let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
        let mut reader = png::Decoder::new(file).read_info()?;
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut pixels)?;
        pixels.truncate(frame.buffer_size());
        Ok(pixels)
    }

    fn ours(path: &Path) -> Result<Vec<u8>, String> {
        let image = crate::decode::png_rows::decode(path, &DecodeLimits::default(), false)?;
        match image.expect("a PNG").pixels {
            Pixels::U8(v) => Ok(v),
            other => panic!("{:?}", other.dtype()),
        }
    }

    /// The rows as read with image data streamed through the png crate's decoder, never inflated
    /// at once.
    fn rows_streamed(path: &Path) -> Result<Vec<u8>, DecodingError> {
        let input = std::io::BufReader::new(std::fs::File::open(path).unwrap());
        let rows = open(input)?.expect("a PNG this reader takes");
        let mut pixels = Vec::new();
        rows.for_each_row_within(0, |row| pixels.extend_from_slice(row))?;
        Ok(pixels)
    }

    /// Whether the file's image data is inflated at once (not replayed to the png crate); the
    /// bytes are put back as they were when it is not.
    fn taken_whole(path: &Path) -> bool {
        let mut input = std::io::Cursor::new(std::fs::read(path).unwrap());
        let rows = open(&mut input).unwrap().expect("a PNG this reader takes");
        let shape = rows.shape();
        let first_chunk = rows.first_chunk;
        drop(rows);
        let mut rest = input.get_ref()[input.position() as usize..].to_vec();
        let before = rest.clone();
        let (row, total) = (filtered_row_bytes(shape), filtered_size(shape).unwrap());
        let taken = whole::inflate(&mut rest, first_chunk, row, total).is_some();
        assert!(taken || rest == before, "the bytes put back differ");
        taken
    }

    /// Image data the one-shot inflate does not take (too much of it, a chunk's CRC wrong, a
    /// preset dictionary, a zlib stream cut short) is read as the png crate reads it: the same
    /// rows, or an error where it errs.
    #[test]
    fn image_data_not_taken_whole_is_read_as_the_png_crate_reads_it() {
        if !unfilter::fast_for(3) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd.png");
        let (w, h) = (5u32, 4u32);
        let row = 3 * w as usize + 1;
        let rows: Vec<u8> = (0..row * (h as usize + 2)).map(|i| (i * 7) as u8).collect();
        let rows: Vec<u8> = rows
            .chunks(row)
            .flat_map(|r| [&[1][..], &r[1..]].concat())
            .collect();
        // two rows more than the header's height: the png crate takes the first four
        png_of_filtered(&path, (w, h), false, &rows, 20);
        assert!(!taken_whole(&path));
        assert_eq!(ours(&path).unwrap(), png_crate_pixels(&path));
        png_of_filtered(&path, (w, h), false, &rows[..row * h as usize], 20);
        assert!(taken_whole(&path));
        let good = std::fs::read(&path).unwrap();
        let idat: Vec<usize> = (0..good.len() - 4)
            .filter(|&i| &good[i..i + 4] == b"IDAT")
            .collect();
        assert!(idat.len() > 2);
        let damaged = |change: &dyn Fn(&mut Vec<u8>)| {
            let mut bytes = good.clone();
            change(&mut bytes);
            std::fs::write(&path, bytes).unwrap();
            assert!(!taken_whole(&path));
            let (got, want) = (ours(&path), png_crate_reading(&path));
            assert_eq!(got.is_ok(), want.is_ok(), "{got:?} against {want:?}");
            if let (Ok(got), Ok(want)) = (got, want) {
                assert_eq!(got, want);
            }
        };
        // the second chunk's CRC
        damaged(&|b| b[idat[2] - 5] ^= 1);
        // the preset dictionary flag, the header check kept valid
        damaged(&|b| {
            let at = idat[0] + 4;
            b[at + 1] = 0x20;
            b[at + 1] += 31 - ((u16::from(b[at]) << 8 | u16::from(b[at + 1])) % 31) as u8;
            let crc = crc32fast::hash(&b[idat[0]..idat[1] - 8]);
            b[idat[1] - 8..idat[1] - 4].copy_from_slice(&crc.to_be_bytes());
        });
        // the file cut inside the last chunk
        damaged(&|b| b.truncate(idat[idat.len() - 1] + 8));
    }

    /// Random filter bytes on random rows, at widths and heights around the two-row steps and the
    /// 3-byte pixels' exact last steps, in IDAT chunks of a few bytes: the png crate's pixels.
    #[test]
    fn rows_with_any_filters_and_chunking_give_the_png_crates_pixels() {
        if !unfilter::fast_for(3) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.png");
        for rgba in [false, true] {
            let bpp = if rgba { 4 } else { 3 };
            for (w, h) in [(1, 1), (1, 2), (2, 1), (2, 3), (3, 5), (17, 4), (300, 9)] {
                let row = w as usize * bpp + 1;
                let mut rows = bytes(row * h as usize, u64::from(w * 31 + h));
                for (i, r) in rows.chunks_mut(row).enumerate() {
                    r[0] = (i * 3 + w as usize) as u8 % 5;
                }
                for chunk in [7, 1000] {
                    png_of_filtered(&path, (w, h), rgba, &rows, chunk);
                    let at = format!("{w}x{h}, {bpp} bytes a pixel, IDAT of {chunk}");
                    let want = png_crate_pixels(&path);
                    assert_eq!(ours(&path).unwrap(), want, "{at}");
                    assert!(taken_whole(&path), "{at}");
                    assert_eq!(rows_streamed(&path).unwrap(), want, "{at}, streamed");
                }
            }
        }
    }

    /// Encoded by the png crate with each filter at real compression, large enough that the
    /// buffer drops inflated bytes many times while the inflater reads back into its window.
    #[test]
    fn compressed_images_of_every_filter_give_the_png_crates_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        let (w, h) = (301u32, 411u32);
        for (color, bpp) in [(png::ColorType::Rgb, 3), (png::ColorType::Rgba, 4)] {
            // smooth gradients with noise: every filter finds matches and literals
            let noise = bytes((w * h) as usize * bpp, 5);
            let data: Vec<u8> = (0..noise.len())
                .map(|i| ((i / bpp) % w as usize + i / (bpp * w as usize)) as u8 ^ (noise[i] & 7))
                .collect();
            use png::Filter as F;
            for filter in [F::NoFilter, F::Sub, F::Up, F::Avg, F::Paeth, F::Adaptive] {
                let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
                let mut encoder = png::Encoder::new(file, w, h);
                encoder.set_color(color);
                encoder.set_depth(png::BitDepth::Eight);
                encoder.set_filter(filter);
                encoder.set_compression(png::Compression::High);
                let mut writer = encoder.write_header().unwrap();
                writer.write_image_data(&data).unwrap();
                writer.finish().unwrap();
                assert!(ours(&path).unwrap() == data, "{color:?}, {filter:?}");
                let streamed = rows_streamed(&path).unwrap();
                assert!(streamed == data, "{color:?}, {filter:?}, streamed");
            }
        }
    }

    /// Damaged image data (bytes of the compressed stream changed, chunk CRCs made to match, so
    /// the inflater and the rows see them): never a panic, refused where the png crate refuses,
    /// and otherwise the png crate's pixels.
    #[test]
    fn damaged_image_data_is_an_error_or_the_png_crates_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.png");
        let (w, h) = (23u32, 17u32);
        let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut encoder = png::Encoder::new(file, w, h);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer
            .write_image_data(&bytes((w * h * 4) as usize, 3))
            .unwrap();
        writer.finish().unwrap();
        let good = std::fs::read(&path).unwrap();
        // the IDAT chunk: length, type, data, CRC
        let at = good.windows(4).position(|t| t == b"IDAT").unwrap() - 4;
        let len = u32::from_be_bytes(good[at..at + 4].try_into().unwrap()) as usize;
        let noise = bytes(3 * 400, 11);
        let mut outcomes = [0; 3];
        for (i, n) in noise.chunks(3).enumerate() {
            let mut bad = good.clone();
            let spot = at + 8 + (usize::from(n[0]) << 8 | usize::from(n[1])) % len;
            bad[spot] ^= n[2] | 1;
            let crc = crc32fast::hash(&bad[at + 4..at + 8 + len]);
            bad[at + 8 + len..at + 12 + len].copy_from_slice(&crc.to_be_bytes());
            std::fs::write(&path, &bad).unwrap();
            match (ours(&path), png_crate_reading(&path)) {
                (Ok(got), Ok(want)) => {
                    assert!(got == want, "damage {i} at byte {spot}");
                    outcomes[0] += 1;
                }
                (Err(_), Err(_)) => outcomes[1] += 1,
                _ => outcomes[2] += 1,
            }
        }
        // seeded: 394 read alike, 6 refused by both; none where one reader alone refuses
        assert_eq!(outcomes[2], 0, "read by one reader, refused by the other");
        assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
    }

    #[test]
    fn an_undefined_filter_byte_and_missing_rows_are_errors() {
        if !unfilter::fast_for(3) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.png");
        let mut rows = vec![0u8; (3 * 4 + 1) * 5];
        rows[13 * 3] = 9;
        png_of_filtered(&path, (4, 5), false, &rows, 100);
        let e = ours(&path).unwrap_err();
        assert!(e.contains("unknown row filter type 9"), "{e}");
        // the zlib stream ends complete, two rows short of the header's height
        png_of_filtered(&path, (4, 7), false, &[0u8; 13 * 5], 100);
        let e = ours(&path).unwrap_err();
        assert!(e.contains("ended before its last row"), "{e}");
    }

    #[test]
    fn pngs_this_reader_does_not_take_are_left_to_the_png_crate() {
        let dir = tempfile::tempdir().unwrap();
        let open_file = |name: &str| {
            let file = std::fs::File::open(dir.path().join(name)).unwrap();
            open(std::io::BufReader::new(file)).unwrap().is_some()
        };
        let write = |name: &str, color: png::ColorType, trns: Option<&[u8]>| {
            let file = std::fs::File::create(dir.path().join(name)).unwrap();
            let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), 2, 2);
            encoder.set_color(color);
            encoder.set_depth(png::BitDepth::Eight);
            if let Some(t) = trns {
                encoder.set_trns(t.to_vec());
            }
            let mut writer = encoder.write_header().unwrap();
            writer
                .write_image_data(&vec![9; 2 * 2 * color.samples()])
                .unwrap();
        };
        write("rgb.png", png::ColorType::Rgb, None);
        write("trns.png", png::ColorType::Rgb, Some(&[0, 9, 0, 9, 0, 9]));
        write("grey.png", png::ColorType::Grayscale, None);
        assert_eq!(open_file("rgb.png"), unfilter::fast_for(3));
        assert!(
            !open_file("trns.png"),
            "tRNS expands to RGBA: the png crate's reader"
        );
        assert!(!open_file("grey.png"));
        // and the tRNS image still decodes, as RGBA
        let image = crate::decode::png_rows::decode(
            &dir.path().join("trns.png"),
            &DecodeLimits::default(),
            false,
        );
        assert_eq!(image.unwrap().unwrap().bands, 4);
    }
}
