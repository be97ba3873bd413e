//! Label files read as stored: grey values, palette indices (never expanded to colours) or colours.
//! PNG goes through the `png` crate with no transformations; TIFF and JPEG through `image`.
use std::io::BufReader;
use std::path::Path;

use super::DecodeLimits;

#[derive(Debug, Clone, PartialEq)]
pub enum RawPixels {
    Gray8(Vec<u8>),
    Gray16(Vec<u16>),
    /// Palette indices and the palette's colours.
    Indexed {
        indices: Vec<u8>,
        palette: Vec<[u8; 3]>,
    },
    /// 3 or 4 interleaved channels; only RGB is read, alpha ignored.
    Color {
        data: Vec<u8>,
        channels: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RawLabel {
    pub width: u32,
    pub height: u32,
    pub pixels: RawPixels,
    /// The PNG bit depth (1, 2, 4, 8, 16) or 8/16 for other formats: hints in error messages.
    pub bit_depth: u8,
}

/// A raw label's pixels, borrowed: a whole label's or one row's.
#[derive(Debug, Clone, Copy)]
pub enum PixelsRef<'a> {
    Gray8(&'a [u8]),
    Gray16(&'a [u16]),
    Indexed(&'a [u8], &'a [[u8; 3]]),
    Color(&'a [u8], usize),
}

impl RawPixels {
    pub fn as_ref(&self) -> PixelsRef<'_> {
        match self {
            RawPixels::Gray8(v) => PixelsRef::Gray8(v),
            RawPixels::Gray16(v) => PixelsRef::Gray16(v),
            RawPixels::Indexed { indices, palette } => PixelsRef::Indexed(indices, palette),
            RawPixels::Color { data, channels } => PixelsRef::Color(data, *channels),
        }
    }

    /// 8-bit samples laid out as this kind's pixels (a row handed to [`LabelRows`]). Rows are
    /// only ever 8-bit, so a 16-bit kind does not occur; its samples would read as grey.
    pub fn with_samples<'a>(&'a self, samples: &'a [u8]) -> PixelsRef<'a> {
        match self {
            RawPixels::Gray8(_) | RawPixels::Gray16(_) => PixelsRef::Gray8(samples),
            RawPixels::Indexed { palette, .. } => PixelsRef::Indexed(samples, palette),
            RawPixels::Color { channels, .. } => PixelsRef::Color(samples, *channels),
        }
    }

    /// The same kind holding `samples` (8-bit, as decoded rows hold them).
    fn filled(self, samples: Vec<u8>) -> RawPixels {
        match self {
            RawPixels::Gray8(_) | RawPixels::Gray16(_) => RawPixels::Gray8(samples),
            RawPixels::Indexed { palette, .. } => RawPixels::Indexed {
                indices: samples,
                palette,
            },
            RawPixels::Color { channels, .. } => RawPixels::Color {
                data: samples,
                channels,
            },
        }
    }
}

/// Takes an 8-bit PNG label's rows as they are decoded, so a caller that maps each pixel (class
/// ids from colours) does not gather the whole file's samples into one buffer first.
pub trait LabelRows {
    /// Before the first row, with the label's size and kind (its pixels empty); false has the
    /// label read whole instead.
    fn start(&mut self, header: &RawLabel) -> bool;
    /// The next row: `width` pixels of the header's kind.
    fn row(&mut self, samples: &[u8]);
}

/// Declines the rows: the label is read whole.
struct Whole;

impl LabelRows for Whole {
    fn start(&mut self, _: &RawLabel) -> bool {
        false
    }

    fn row(&mut self, _: &[u8]) {}
}

/// The rows gathered into one buffer: how a label is read whole.
struct Gather(Vec<u8>);

impl LabelRows for Gather {
    fn start(&mut self, header: &RawLabel) -> bool {
        let channels = match header.pixels {
            RawPixels::Color { channels, .. } => channels,
            _ => 1,
        };
        self.0 = Vec::with_capacity(header.width as usize * header.height as usize * channels);
        true
    }

    fn row(&mut self, samples: &[u8]) {
        self.0.extend_from_slice(samples);
    }
}

impl RawLabel {
    pub fn kind(&self) -> &'static str {
        match self.pixels {
            RawPixels::Gray8(_) => "8-bit grey",
            RawPixels::Gray16(_) => "16-bit grey",
            RawPixels::Indexed { .. } => "palette",
            RawPixels::Color { .. } => "colour (RGB)",
        }
    }
}

pub fn read_raw_label(path: &Path, limits: &DecodeLimits) -> Result<RawLabel, String> {
    read_raw_label_rows(path, limits, &mut Whole)
}

/// Reads a label; an 8-bit PNG's rows go to `rows` as they are decoded if it starts them, and the
/// label returned then holds no pixels. Other labels are read whole.
pub fn read_raw_label_rows(
    path: &Path,
    limits: &DecodeLimits,
    rows: &mut dyn LabelRows,
) -> Result<RawLabel, String> {
    limits.check_file(path)?;
    let is_png = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if is_png {
        read_png(path, limits, rows)
    } else {
        read_other(path, limits)
    }
}

fn read_png(
    path: &Path,
    limits: &DecodeLimits,
    rows: &mut dyn LabelRows,
) -> Result<RawLabel, String> {
    let file = super::open_file(path)?;
    let mut input = BufReader::new(file);
    // 8-bit RGB(A) colour labels: rows un-filtered two at a time, as images are
    let corrupt = |e: png::DecodingError| format!("corrupt or truncated PNG: {e}");
    if let Some(png_rows) = super::png_stream::open(&mut input).map_err(corrupt)? {
        limits.check_size(png_rows.width, png_rows.height)?;
        let header = RawLabel {
            width: png_rows.width,
            height: png_rows.height,
            pixels: RawPixels::Color {
                data: Vec::new(),
                channels: png_rows.bands,
            },
            bit_depth: 8,
        };
        return deliver_rows(header, rows, |sink| {
            png_rows.for_each_row(|row| sink.row(row)).map_err(corrupt)
        });
    }
    std::io::Seek::rewind(&mut input).map_err(|e| format!("cannot read: {e}"))?;
    let allocation = png::Limits {
        bytes: super::MAX_DECODE_BYTES as usize,
    };
    let mut decoder = png::Decoder::new_with_limits(input, allocation);
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("not a readable PNG: {e}"))?;
    limits.check_size(reader.info().width, reader.info().height)?;
    if let Some(label) = read_png_8bit_rows(&mut reader, rows)? {
        return Ok(label);
    }
    let size = reader
        .output_buffer_size()
        .ok_or("PNG is too large to decode")?;
    let mut buf = vec![0u8; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("corrupt or truncated PNG: {e}"))?;
    let (w, h, depth) = (info.width, info.height, info.bit_depth as u8);
    let line = info.line_size;
    use png::ColorType as C;
    // 8-bit rows are used as decoded (no per-pixel copy); other depths are unpacked row by row
    let mut bytes = |channels: usize| packed(&mut buf, line, w as usize * channels, h as usize);
    let pixels = match (info.color_type, depth) {
        (C::Grayscale, 8) => RawPixels::Gray8(bytes(1)),
        (C::Indexed, 8) => RawPixels::Indexed {
            indices: bytes(1),
            palette: palette(&reader),
        },
        (C::Rgb, 8) => RawPixels::Color {
            data: bytes(3),
            channels: 3,
        },
        (C::Rgba, 8) => RawPixels::Color {
            data: bytes(4),
            channels: 4,
        },
        _ => {
            let rows = buf[..line * h as usize].chunks_exact(line);
            match (info.color_type, depth) {
                (C::Grayscale, 16) => RawPixels::Gray16(rows.flat_map(|r| be_u16(&r[..w as usize * 2])).collect()),
                (C::Grayscale, _) => RawPixels::Gray8(rows.flat_map(|r| unpack(r, w, depth)).collect()),
                (C::Indexed, _) => RawPixels::Indexed { indices: rows.flat_map(|r| unpack(r, w, depth)).collect(), palette: palette(&reader) },
                (C::GrayscaleAlpha, 8) => RawPixels::Gray8(rows.flat_map(|r| r.iter().step_by(2).copied().take(w as usize).collect::<Vec<_>>()).collect()),
                (C::GrayscaleAlpha, 16) => RawPixels::Gray16(rows.flat_map(|r| be_u16(r).into_iter().step_by(2).take(w as usize).collect::<Vec<_>>()).collect()),
                (c, d) => return Err(format!("unsupported label PNG mode {c:?} at {d} bits; labels must be grey, palette or 8-bit RGB(A)")),
            }
        }
    };
    Ok(RawLabel {
        width: w,
        height: h,
        pixels,
        bit_depth: depth,
    })
}

/// 8-bit grey, palette, RGB and RGBA labels, row by row as decoded (no zeroed frame buffer to
/// decode into and copy out of): to `rows` if it starts them, else into the label's pixels.
/// `None` for other modes.
fn read_png_8bit_rows<R: std::io::BufRead + std::io::Seek>(
    reader: &mut png::Reader<R>,
    rows: &mut dyn LabelRows,
) -> Result<Option<RawLabel>, String> {
    use png::ColorType as C;
    let info = reader.info();
    let (w, h, color) = (info.width, info.height, info.color_type);
    let (pixels, channels) = match color {
        C::Grayscale => (RawPixels::Gray8(Vec::new()), 1),
        C::Indexed => (
            RawPixels::Indexed {
                indices: Vec::new(),
                palette: palette(reader),
            },
            1,
        ),
        C::Rgb | C::Rgba => {
            let channels = if color == C::Rgb { 3 } else { 4 };
            let data = Vec::new();
            (RawPixels::Color { data, channels }, channels)
        }
        C::GrayscaleAlpha => return Ok(None),
    };
    if info.bit_depth != png::BitDepth::Eight || info.interlaced {
        return Ok(None);
    }
    let header = RawLabel {
        width: w,
        height: h,
        pixels,
        bit_depth: 8,
    };
    let label = deliver_rows(header, rows, |sink| {
        let mut samples = 0;
        while let Some(row) = reader
            .next_row()
            .map_err(|e| format!("corrupt or truncated PNG: {e}"))?
        {
            sink.row(row.data());
            samples += row.data().len();
        }
        if samples != w as usize * h as usize * channels {
            return Err("corrupt or truncated PNG: it ended before its last row".into());
        }
        Ok(())
    })?;
    Ok(Some(label))
}

/// Hands the rows `read` decodes to `rows` if it starts them (the label returned then holds no
/// pixels), else gathers them into the label's pixels.
fn deliver_rows(
    mut label: RawLabel,
    rows: &mut dyn LabelRows,
    read: impl FnOnce(&mut dyn LabelRows) -> Result<(), String>,
) -> Result<RawLabel, String> {
    if rows.start(&label) {
        read(rows)?;
        return Ok(label);
    }
    let mut gather = Gather(Vec::new());
    gather.start(&label);
    read(&mut gather)?;
    label.pixels = label.pixels.filled(gather.0);
    Ok(label)
}

fn be_u16(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .collect()
}

/// Unpacks one row of 1-, 2- or 4-bit samples (most significant bits first) to one byte each, unscaled.
/// The first `row_bytes` of each of `h` rows of `line` bytes, contiguous: the decoded buffer
/// itself, truncated, when rows carry no padding.
fn packed(buf: &mut Vec<u8>, line: usize, row_bytes: usize, h: usize) -> Vec<u8> {
    if line == row_bytes {
        let mut all = std::mem::take(buf);
        all.truncate(row_bytes * h);
        return all;
    }
    let mut out = Vec::with_capacity(row_bytes * h);
    for row in buf.chunks_exact(line).take(h) {
        out.extend_from_slice(&row[..row_bytes]);
    }
    out
}

fn palette<R: std::io::BufRead + std::io::Seek>(reader: &png::Reader<R>) -> Vec<[u8; 3]> {
    reader
        .info()
        .palette
        .as_ref()
        .map(|p| p.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
        .unwrap_or_default()
}

fn unpack(row: &[u8], width: u32, depth: u8) -> Vec<u8> {
    if depth == 8 {
        return row[..width as usize].to_vec();
    }
    let per_byte = 8 / depth as usize;
    let mask = (1u8 << depth) - 1;
    (0..width as usize)
        .map(|x| {
            let byte = row[x / per_byte];
            let shift = 8 - depth as usize * (x % per_byte + 1);
            (byte >> shift) & mask
        })
        .collect()
}

fn read_other(path: &Path, limits: &DecodeLimits) -> Result<RawLabel, String> {
    use image::DynamicImage as D;
    let img = super::image::decode_dynamic(path, limits)?;
    let (width, height) = (img.width(), img.height());
    let (pixels, bit_depth) = match img {
        D::ImageLuma8(b) => (RawPixels::Gray8(b.into_raw()), 8),
        D::ImageLuma16(b) => (RawPixels::Gray16(b.into_raw()), 16),
        D::ImageLumaA8(b) => (
            RawPixels::Gray8(b.into_raw().into_iter().step_by(2).collect()),
            8,
        ),
        D::ImageRgb8(b) => (
            RawPixels::Color {
                data: b.into_raw(),
                channels: 3,
            },
            8,
        ),
        D::ImageRgba8(b) => (
            RawPixels::Color {
                data: b.into_raw(),
                channels: 4,
            },
            8,
        ),
        other => {
            return Err(format!(
                "unsupported label mode {:?}; labels must be grey or 8-bit RGB",
                other.color()
            ))
        }
    };
    Ok(RawLabel {
        width,
        height,
        pixels,
        bit_depth,
    })
}

/// Small 8-bit PNGs written for the decoders' tests.
#[cfg(test)]
pub(crate) mod test_png {
    use std::path::Path;

    /// Writes `data` as a w x h PNG of `color`, with `palette` if indexed.
    pub fn write(
        path: &Path,
        (w, h): (u32, u32),
        color: (png::ColorType, &[[u8; 3]]),
        data: &[u8],
    ) {
        let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        let mut encoder = png::Encoder::new(file, w, h);
        encoder.set_color(color.0);
        encoder.set_depth(png::BitDepth::Eight);
        if color.0 == png::ColorType::Indexed {
            encoder.set_palette(color.1.concat());
        }
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(data).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpack_two_bit_samples_unscaled() {
        // 0b00_01_10_11 -> 0, 1, 2, 3
        assert_eq!(unpack(&[0b0001_1011], 4, 2), vec![0, 1, 2, 3]);
        assert_eq!(unpack(&[0b1000_0000], 1, 1), vec![1]);
    }

    #[test]
    fn eight_bit_rows_keep_every_value_and_a_cut_file_is_an_error() {
        use png::ColorType as C;
        let dir = tempfile::tempdir().unwrap();
        let (w, h) = (29u32, 13u32);
        let n = (w * h) as usize;
        for (name, color, channels) in [
            ("grey", C::Grayscale, 1),
            ("palette", C::Indexed, 1),
            ("rgb", C::Rgb, 3),
            ("rgba", C::Rgba, 4),
        ] {
            let data: Vec<u8> = (0..n * channels)
                .map(|i| {
                    if color == C::Indexed {
                        (i % 3 == 0) as u8
                    } else {
                        (i * 37 % 251) as u8
                    }
                })
                .collect();
            let path = dir.path().join(format!("{name}.png"));
            let palette = [[0, 0, 0], [200, 10, 30]];
            test_png::write(&path, (w, h), (color, &palette), &data);
            let label = read_raw_label(&path, &DecodeLimits::default()).unwrap();
            assert_eq!(
                (label.width, label.height, label.bit_depth),
                (w, h, 8),
                "{name}"
            );
            let want = match color {
                C::Grayscale => RawPixels::Gray8(data.clone()),
                C::Indexed => RawPixels::Indexed {
                    indices: data.clone(),
                    palette: vec![[0, 0, 0], [200, 10, 30]],
                },
                _ => RawPixels::Color {
                    data: data.clone(),
                    channels,
                },
            };
            assert!(label.pixels == want, "{name}");
            // cut before the end of the image data
            let bytes = std::fs::read(&path).unwrap();
            let cut = dir.path().join(format!("{name}-cut.png"));
            std::fs::write(&cut, &bytes[..bytes.len() - 40]).unwrap();
            let error = read_raw_label(&cut, &DecodeLimits::default()).unwrap_err();
            assert!(
                error.contains("corrupt or truncated PNG"),
                "{name}: {error}"
            );
        }
    }
}
