//! Image decoding: u8, u16 or f32 in their own dtype, never narrowed. PNG and JPEG go through the
//! `image` crate (JPEG EXIF orientation applied by rule); TIFF with 1 to any number of samples
//! through the `tiff` crate. Alpha is kept or dropped by rule.
use image::metadata::Orientation;
use image::{DynamicImage, ImageReader, Limits};
use std::path::Path;

use super::rules::{swaps_sides, with_alpha, AlphaRule, ExifRule, ImageHeader, ImageRules};
use super::DecodeLimits;

use crate::memory::pixel_buffers;
use crate::sample::{Image, Pixels};

/// A decoded file, and the EXIF orientation applied to it, if any.
#[derive(Debug)]
pub struct DecodedImage {
    pub image: Image,
    /// (orientation, width, height as stored) when an orientation was applied.
    pub exif: Option<(String, u32, u32)>,
    /// The full (width, height), after orientation, when the image was decoded at a reduced size.
    pub reduced_from: Option<(u32, u32)>,
}

fn reader(path: &Path) -> Result<ImageReader<std::io::BufReader<std::fs::File>>, String> {
    let file = std::io::BufReader::new(super::open_file(path)?);
    // as ImageReader::open: the extension's format unless the content says otherwise
    let mut r = ImageReader::new(file);
    if let Ok(format) = image::ImageFormat::from_path(path) {
        r.set_format(format);
    }
    let mut r = r
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(super::MAX_DECODE_BYTES);
    r.limits(limits);
    Ok(r)
}

/// Decodes any supported file after checking its size and its header against the limits.
pub fn decode_dynamic(path: &Path, limits: &DecodeLimits) -> Result<DynamicImage, String> {
    decode_oriented(path, limits, ExifRule::Ignore).map(|(img, _)| img)
}

/// Decodes with the `image` crate, applying a JPEG's EXIF orientation by rule.
fn decode_oriented(
    path: &Path,
    limits: &DecodeLimits,
    exif: ExifRule,
) -> Result<(DynamicImage, Option<Orientation>), String> {
    use image::ImageDecoder;
    limits.check_file(path)?;
    let mut decoder = reader(path)?
        .into_decoder()
        .map_err(|e| format!("cannot decode image: {e}"))?;
    let (width, height) = decoder.dimensions();
    limits.check_size(width, height)?;
    let orientation = jpeg_orientation(path, &mut decoder);
    let img = read_pixels(decoder).map_err(|e| format!("cannot decode image: {e}"))?;
    orient(img, orientation, exif)
}

/// The decoded pixels. 8-bit pixels go into a pooled buffer (see `memory::pixel_buffers`): the
/// decoder writes every byte, so the buffer is not zeroed first, as `from_decoder`'s would be.
fn read_pixels(decoder: impl image::ImageDecoder) -> image::ImageResult<DynamicImage> {
    use image::{ColorType, ImageBuffer};
    let (w, h) = decoder.dimensions();
    let color = decoder.color_type();
    let eight_bit = [
        ColorType::L8,
        ColorType::La8,
        ColorType::Rgb8,
        ColorType::Rgba8,
    ];
    let len = usize::try_from(decoder.total_bytes()).ok();
    let Some(len) = len.filter(|&n| n <= isize::MAX as usize && eight_bit.contains(&color)) else {
        return DynamicImage::from_decoder(decoder);
    };
    let mut buffer = pixel_buffers::take(len);
    decoder.read_image(&mut buffer)?;
    let image = match color {
        ColorType::L8 => ImageBuffer::from_raw(w, h, buffer).map(DynamicImage::ImageLuma8),
        ColorType::La8 => ImageBuffer::from_raw(w, h, buffer).map(DynamicImage::ImageLumaA8),
        ColorType::Rgb8 => ImageBuffer::from_raw(w, h, buffer).map(DynamicImage::ImageRgb8),
        _ => ImageBuffer::from_raw(w, h, buffer).map(DynamicImage::ImageRgba8),
    };
    image.ok_or_else(|| {
        let mismatch = image::error::ParameterErrorKind::DimensionMismatch;
        image::ImageError::Parameter(image::error::ParameterError::from_kind(mismatch))
    })
}

/// Applies a JPEG's EXIF orientation by rule; returns the orientation applied.
fn orient(
    mut img: DynamicImage,
    orientation: Option<Orientation>,
    exif: ExifRule,
) -> Result<(DynamicImage, Option<Orientation>), String> {
    match (orientation, exif) {
        (Some(o), ExifRule::Apply) => img.apply_orientation(o),
        (Some(o), ExifRule::Error) => return Err(format!(
            "JPEG has EXIF orientation {o:?}: viewers show it turned, the stored pixels are not; set [input] exif = \"apply\" (turn it) or \"ignore\" (use the stored pixels)"
        )),
        _ => {}
    }
    Ok((img, orientation.filter(|_| exif == ExifRule::Apply)))
}

/// What a reduced decode must still cover, given the image's full (width, height) after
/// orientation: the size a resize wants, or `None` for no reduction.
pub type ReduceTarget<'a> = &'a dyn Fn(u32, u32) -> Option<(u32, u32)>;

/// A JPEG decoded at the smallest of 1/8, 1/4 and 1/2 of its size that still covers `target`'s
/// size (after orientation), by the format's scaled inverse DCT; `None` when no reduction applies
/// (not a JPEG, not 8-bit grey or RGB, no target, or no scale small enough), so the caller
/// decodes in full. Deterministic: the same file always gives the same pixels.
pub fn decode_jpeg_reduced(
    path: &Path,
    rules: &ImageRules,
    target: ReduceTarget,
) -> Result<Option<DecodedImage>, String> {
    use image::ImageDecoder;
    if !super::is_jpeg(path) {
        return Ok(None);
    }
    rules.limits.check_file(path)?;
    let mut header = reader(path)?
        .into_decoder()
        .map_err(|e| format!("cannot decode image: {e}"))?;
    let (width, height) = header.dimensions();
    rules.limits.check_size(width, height)?;
    let orientation = jpeg_orientation(path, &mut header);
    let turned = orientation.is_some_and(|o| swaps_sides(&format!("{o:?}")))
        && rules.exif == ExifRule::Apply;
    let full = if turned {
        (height, width)
    } else {
        (width, height)
    };
    let Some(at_least) = target(full.0, full.1) else {
        return Ok(None);
    };
    let stored_at_least = if turned {
        (at_least.1, at_least.0)
    } else {
        at_least
    };
    let file = super::open_file(path)?;
    let mut jpeg = jpeg_decoder::Decoder::new(std::io::BufReader::new(file));
    jpeg.read_info()
        .map_err(|e| format!("cannot decode image: {e}"))?;
    let clamp = |v: u32| v.min(u16::MAX as u32) as u16;
    let (w, h) = jpeg
        .scale(clamp(stored_at_least.0), clamp(stored_at_least.1))
        .map_err(|e| format!("cannot decode image: {e}"))?;
    let format = jpeg.info().map(|i| i.pixel_format);
    let grey_or_rgb = matches!(
        format,
        Some(jpeg_decoder::PixelFormat::L8 | jpeg_decoder::PixelFormat::RGB24)
    );
    if (w as u32, h as u32) == (width, height) || !grey_or_rgb {
        return Ok(None);
    }
    let pixels = jpeg
        .decode()
        .map_err(|e| format!("cannot decode image: {e}"))?;
    let img = match format {
        Some(jpeg_decoder::PixelFormat::L8) => {
            image::GrayImage::from_raw(w.into(), h.into(), pixels).map(DynamicImage::ImageLuma8)
        }
        _ => image::RgbImage::from_raw(w.into(), h.into(), pixels).map(DynamicImage::ImageRgb8),
    }
    .ok_or("cannot decode image: fewer pixels than its size")?;
    let (img, applied) = orient(img, orientation, rules.exif)?;
    Ok(Some(DecodedImage {
        exif: applied.map(|o| (format!("{o:?}"), width, height)),
        image: from_dynamic(img, rules.alpha)?,
        reduced_from: Some(full),
    }))
}

/// A JPEG's EXIF orientation when it is not "as stored".
fn jpeg_orientation(path: &Path, decoder: &mut impl image::ImageDecoder) -> Option<Orientation> {
    if !super::is_jpeg(path) {
        return None;
    }
    decoder
        .orientation()
        .ok()
        .filter(|o| *o != Orientation::NoTransforms)
}

pub fn read_header(path: &Path) -> Result<ImageHeader, String> {
    use image::ImageDecoder;
    if let Some(h) = super::tiff::read_header(path)? {
        return Ok(h);
    }
    let mut decoder = reader(path)?
        .into_decoder()
        .map_err(|e| format!("not a readable image: {e}"))?;
    let (width, height) = decoder.dimensions();
    let color = decoder.color_type();
    let bands = color.channel_count() as usize;
    Ok(ImageHeader {
        width,
        height,
        mode: format!("{color:?}"),
        bands,
        has_alpha: color.has_alpha(),
        dtype: crate::sample::PixelType::of_size(color.bytes_per_pixel() as usize / bands.max(1)),
        exif: jpeg_orientation(path, &mut decoder).map(|o| format!("{o:?}")),
    })
}

/// Decodes one image file by the rules.
pub fn decode_file(path: &Path, rules: &ImageRules) -> Result<DecodedImage, String> {
    if let Some(image) = super::tiff::decode(path, rules)? {
        return Ok(DecodedImage {
            image,
            exif: None,
            reduced_from: None,
        });
    }
    let drop_alpha = rules.alpha == AlphaRule::Drop;
    if let Some(image) = super::png_rows::decode(path, &rules.limits, drop_alpha)? {
        return Ok(DecodedImage {
            image,
            exif: None,
            reduced_from: None,
        });
    }
    let (img, orientation) = decode_oriented(path, &rules.limits, rules.exif)?;
    let exif = orientation.map(|o| {
        let (w, h) = (img.width(), img.height());
        let stored = if swaps_sides(&format!("{o:?}")) {
            (h, w)
        } else {
            (w, h)
        };
        (format!("{o:?}"), stored.0, stored.1)
    });
    Ok(DecodedImage {
        image: from_dynamic(img, rules.alpha)?,
        exif,
        reduced_from: None,
    })
}

fn from_dynamic(img: DynamicImage, alpha: AlphaRule) -> Result<Image, String> {
    let (width, height) = (img.width(), img.height());
    let keep = alpha == AlphaRule::Keep;
    let (bands, pixels) = match img {
        DynamicImage::ImageLuma8(b) => (1, Pixels::U8(b.into_raw())),
        DynamicImage::ImageLumaA8(b) => with_alpha(Pixels::U8(b.into_raw()), 2, keep),
        DynamicImage::ImageRgb8(b) => (3, Pixels::U8(b.into_raw())),
        DynamicImage::ImageRgba8(b) => with_alpha(Pixels::U8(b.into_raw()), 4, keep),
        DynamicImage::ImageLuma16(b) => (1, Pixels::U16(b.into_raw())),
        DynamicImage::ImageLumaA16(b) => with_alpha(Pixels::U16(b.into_raw()), 2, keep),
        DynamicImage::ImageRgb16(b) => (3, Pixels::U16(b.into_raw())),
        DynamicImage::ImageRgba16(b) => with_alpha(Pixels::U16(b.into_raw()), 4, keep),
        DynamicImage::ImageRgb32F(b) => (3, Pixels::F32(b.into_raw())),
        DynamicImage::ImageRgba32F(b) => with_alpha(Pixels::F32(b.into_raw()), 4, keep),
        other => return Err(format!("unsupported image mode {:?}", other.color())),
    };
    Ok(Image {
        width,
        height,
        bands,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_is_dropped_from_every_band_count() {
        let drop = |v: Vec<u8>, bands| with_alpha(Pixels::U8(v), bands, false);
        let (b, p) = drop(vec![1, 2, 3, 255, 4, 5, 6, 128], 4);
        assert_eq!((b, p), (3, Pixels::U8(vec![1, 2, 3, 4, 5, 6])));
        let (b, p) = drop(vec![7, 255, 8, 0, 9, 1], 2);
        assert_eq!((b, p), (1, Pixels::U8(vec![7, 8, 9])));
        let (b, p) = with_alpha(Pixels::U16((0..10).collect()), 5, false);
        assert_eq!((b, p), (4, Pixels::U16(vec![0, 1, 2, 3, 5, 6, 7, 8])));
        let (b, p) = with_alpha(Pixels::U8(vec![1, 2, 3, 4]), 4, true);
        assert_eq!((b, p), (4, Pixels::U8(vec![1, 2, 3, 4])));
    }
}
