//! 8-bit PNGs decoded row by row straight into a sample's pixels, the alpha band dropped on the
//! way when the rule drops it. The image crate's path decodes into a zeroed buffer of every band
//! and drops alpha in a second pass over it: for a 1024x1024 RGBA photo that is 4 MiB zeroed and
//! read again for nothing. Same bytes either way (the same `png` decoder and transformation);
//! 16-bit and interlaced PNGs, and other formats, take the image crate's path.
use std::io::{BufRead, BufReader, Seek};
use std::path::Path;

use super::DecodeLimits;
use crate::sample::{Image, Pixels};

const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The decoded image, or `None` when the file is not an 8-bit, non-interlaced PNG.
pub(crate) fn decode(
    path: &Path,
    limits: &DecodeLimits,
    drop_alpha: bool,
) -> Result<Option<Image>, String> {
    let file = super::open_file(path)?;
    let mut input = BufReader::new(file);
    let head = input.fill_buf().map_err(|e| format!("cannot read: {e}"))?;
    if !head.starts_with(SIGNATURE) {
        return Ok(None);
    }
    limits.check_file(path)?;
    let bad = |e: png::DecodingError| format!("cannot decode image: {e}");
    if let Some(rows) = super::png_stream::open(&mut input).map_err(bad)? {
        return decode_rows(rows, limits, drop_alpha).map(Some);
    }
    input.rewind().map_err(|e| format!("cannot read: {e}"))?;
    let bytes = super::MAX_DECODE_BYTES as usize;
    let mut decoder = png::Decoder::new_with_limits(input, png::Limits { bytes });
    let header = decoder.read_header_info().map_err(bad)?;
    limits.check_size(header.width, header.height)?;
    // as the image crate decodes: palettes, low bit depths and tRNS expanded to 8-bit bands
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(bad)?;
    let (color, depth) = reader.output_color_type();
    if depth != png::BitDepth::Eight || reader.info().interlaced {
        return Ok(None);
    }
    let (width, height) = (reader.info().width, reader.info().height);
    let bands = color.samples();
    let has_alpha = matches!(color, png::ColorType::GrayscaleAlpha | png::ColorType::Rgba);
    let mut image = Rows::new((width, height), bands, has_alpha && drop_alpha);
    while let Some(row) = reader.next_row().map_err(bad)? {
        image.push(row.data());
    }
    image.finish().map(Some)
}

/// The image of a PNG segprep un-filters itself ([`super::png_stream`]), alpha dropped as asked.
fn decode_rows<R: BufRead>(
    rows: super::png_stream::PngRows<R>,
    limits: &DecodeLimits,
    drop_alpha: bool,
) -> Result<Image, String> {
    let (width, height, bands) = (rows.width, rows.height, rows.bands);
    limits.check_size(width, height)?;
    let mut image = Rows::new((width, height), bands, bands == 4 && drop_alpha);
    rows.for_each_row(|row| image.push(row))
        .map_err(|e| format!("cannot decode image: {e}"))?;
    image.finish()
}

/// An image gathered row by row as either reader decodes it, its last band dropped if asked.
struct Rows {
    size: (u32, u32),
    bands: usize,
    kept: usize,
    pixels: Vec<u8>,
}

impl Rows {
    fn new((width, height): (u32, u32), bands: usize, drop_last: bool) -> Self {
        let kept = bands - usize::from(drop_last);
        let pixels = Vec::with_capacity(width as usize * height as usize * kept + SPILL);
        Rows {
            size: (width, height),
            bands,
            kept,
            pixels,
        }
    }

    fn push(&mut self, row: &[u8]) {
        match (self.bands, self.kept) {
            (4, 3) => push_dropping_last::<4, 3>(&mut self.pixels, row),
            (2, 1) => push_dropping_last::<2, 1>(&mut self.pixels, row),
            _ => self.pixels.extend_from_slice(row),
        }
    }

    /// The image, or an error if rows are missing.
    fn finish(self) -> Result<Image, String> {
        let (width, height) = self.size;
        if self.pixels.len() != width as usize * height as usize * self.kept {
            return Err("cannot decode image: the PNG ended before its last row".into());
        }
        Ok(Image {
            width,
            height,
            bands: self.kept,
            pixels: Pixels::U8(self.pixels),
        })
    }
}

/// Appends each pixel's first `KEEP` of its `BANDS` values: RGBA rows four pixels a shuffle where
/// the CPU can ([`dropped_by_simd`]); otherwise each pixel is copied whole, `BANDS` bytes, to its
/// `KEEP`-byte place: the bytes past `KEEP` land where the next pixel then goes, so it is one load
/// and one store a pixel. The last spill goes to spare room ([`SPILL`]) cut off at the end. The
/// pixels go straight into the vector's spare capacity: zeroing the room first cost a pass over
/// every image.
pub(crate) fn push_dropping_last<const BANDS: usize, const KEEP: usize>(
    out: &mut Vec<u8>,
    row: &[u8],
) {
    let pixels = row.len() / BANDS;
    out.reserve(pixels * KEEP + SPILL);
    let room = out.spare_capacity_mut();
    let done = dropped_by_simd::<BANDS, KEEP>(row, room);
    for (i, px) in row.chunks_exact(BANDS).enumerate().skip(done) {
        let place = &mut room[i * KEEP..i * KEEP + BANDS];
        // SAFETY: `place` and `px` are BANDS bytes each (slice bounds checked above), in different
        // allocations, and MaybeUninit<u8> has the layout of u8
        unsafe { std::ptr::copy_nonoverlapping(px.as_ptr(), place.as_mut_ptr().cast(), BANDS) };
    }
    // SAFETY: the first KEEP bytes of every pixel's place, so all `pixels * KEEP`, were written
    unsafe { out.set_len(out.len() + pixels * KEEP) };
}

/// Spare capacity for the spill past the last pixel in [`push_dropping_last`] (at most four bytes:
/// one pixel's dropped band, or the tail of a 16-byte SIMD store), so the pixel buffer never grows
/// (a reallocation would copy the whole image).
const SPILL: usize = 4;

/// RGBA to RGB four pixels at a time where the CPU has SSSE3 (one byte shuffle of 16 bytes into
/// 12, stored as 16: the last four land where the next pixels go, or in [`SPILL`]). Returns how
/// many of the row's pixels it wrote; the rest are left to the caller.
fn dropped_by_simd<const BANDS: usize, const KEEP: usize>(
    row: &[u8],
    room: &mut [std::mem::MaybeUninit<u8>],
) -> usize {
    #[cfg(target_arch = "x86_64")]
    if (BANDS, KEEP) == (4, 3) && is_x86_feature_detected!("ssse3") {
        // SAFETY: the CPU has SSSE3, checked above
        return unsafe { rgba_to_rgb_ssse3(row, room) };
    }
    let _ = (row, room);
    0
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
fn rgba_to_rgb_ssse3(row: &[u8], room: &mut [std::mem::MaybeUninit<u8>]) -> usize {
    use std::arch::x86_64::*;
    let keep = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
    let quads = row.as_chunks::<16>().0;
    for (q, four) in quads.iter().enumerate() {
        let place = &mut room[12 * q..12 * q + 16];
        // SAFETY: both are 16 bytes (`place`'s bounds checked by the slice), unaligned access
        unsafe {
            let pixels = _mm_loadu_si128(four.as_ptr().cast());
            _mm_storeu_si128(place.as_mut_ptr().cast(), _mm_shuffle_epi8(pixels, keep));
        }
    }
    4 * quads.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{DynamicImage, ImageBuffer};

    fn limits() -> DecodeLimits {
        DecodeLimits::default()
    }

    /// The image crate's decode of the same file, alpha dropped as the build drops it.
    fn reference(path: &Path, drop_alpha: bool) -> (usize, Vec<u8>) {
        let img = image::open(path).unwrap();
        let bands = img.color().channel_count() as usize;
        let raw = img.into_bytes();
        if !(drop_alpha && (bands == 2 || bands == 4)) {
            return (bands, raw);
        }
        let kept = raw
            .chunks_exact(bands)
            .flat_map(|p| p[..bands - 1].to_vec());
        (bands - 1, kept.collect())
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 37 % 251) as u8).collect()
    }

    #[test]
    fn rows_give_the_image_crates_pixels_with_or_without_alpha() {
        let dir = tempfile::tempdir().unwrap();
        let (w, h) = (37u32, 11u32);
        let n = (w * h) as usize;
        let images = [
            (
                "rgba",
                DynamicImage::ImageRgba8(ImageBuffer::from_raw(w, h, pattern(n * 4)).unwrap()),
            ),
            (
                "rgb",
                DynamicImage::ImageRgb8(ImageBuffer::from_raw(w, h, pattern(n * 3)).unwrap()),
            ),
            (
                "la",
                DynamicImage::ImageLumaA8(ImageBuffer::from_raw(w, h, pattern(n * 2)).unwrap()),
            ),
            (
                "l",
                DynamicImage::ImageLuma8(ImageBuffer::from_raw(w, h, pattern(n)).unwrap()),
            ),
        ];
        for (name, img) in images {
            let path = dir.path().join(format!("{name}.png"));
            img.save(&path).unwrap();
            for drop_alpha in [true, false] {
                let got = decode(&path, &limits(), drop_alpha).unwrap().unwrap();
                let (bands, want) = reference(&path, drop_alpha);
                assert_eq!((got.width, got.height, got.bands), (w, h, bands), "{name}");
                match got.pixels {
                    Pixels::U8(v) => assert!(v == want, "{name}, drop alpha {drop_alpha}"),
                    other => panic!("{name}: {:?}", other.dtype()),
                }
            }
        }
    }

    #[test]
    fn dropping_the_last_band_keeps_every_other_byte_at_every_row_length() {
        for pixels in 0..=13 {
            for (bands, keep) in [(4usize, 3usize), (2, 1)] {
                let row = pattern(pixels * bands);
                let want: Vec<u8> = row
                    .chunks_exact(bands)
                    .flat_map(|p| p[..keep].to_vec())
                    .collect();
                let mut got = vec![7u8; 5];
                match bands {
                    4 => push_dropping_last::<4, 3>(&mut got, &row),
                    _ => push_dropping_last::<2, 1>(&mut got, &row),
                }
                assert_eq!(
                    got[..5],
                    [7; 5],
                    "{pixels} pixels of {bands}: the prefix kept"
                );
                assert_eq!(got[5..], want, "{pixels} pixels of {bands}");
            }
        }
    }

    #[test]
    fn sixteen_bit_and_other_formats_are_left_to_the_image_crate() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("deep.png");
        let img: ImageBuffer<image::Rgb<u16>, Vec<u16>> =
            ImageBuffer::from_raw(4, 3, vec![700; 36]).unwrap();
        img.save(&deep).unwrap();
        assert!(decode(&deep, &limits(), true).unwrap().is_none());
        let tiff = dir.path().join("x.tif");
        DynamicImage::ImageLuma8(ImageBuffer::from_raw(4, 3, vec![9; 12]).unwrap())
            .save(&tiff)
            .unwrap();
        assert!(decode(&tiff, &limits(), true).unwrap().is_none());
    }

    #[test]
    fn a_truncated_png_is_an_error_not_a_short_image() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.png");
        let n = 64 * 64 * 3;
        DynamicImage::ImageRgb8(ImageBuffer::from_raw(64, 64, pattern(n)).unwrap())
            .save(&path)
            .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let e = decode(&path, &limits(), true).unwrap_err();
        assert!(e.contains("cannot decode image"), "{e}");
    }
}
