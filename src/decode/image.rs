//! Image decoding with the `image` crate: u8, u16 or f32, 1 to 4 bands, alpha kept or dropped by rule.
use image::{DynamicImage, ImageReader, Limits};
use std::path::Path;

use super::DecodeLimits;
use crate::pipeline::schema::AlphaRule;
use crate::sample::{Image, Pixels};

/// What `check` reports about an image without decoding its pixels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageHeader {
    pub width: u32,
    pub height: u32,
    pub mode: String,
}

fn reader(path: &Path) -> Result<ImageReader<std::io::BufReader<std::fs::File>>, String> {
    let mut r = ImageReader::open(path)
        .map_err(|e| format!("cannot open: {e}"))?
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(super::MAX_DECODE_BYTES);
    r.limits(limits);
    Ok(r)
}

/// Decodes any supported file after checking its size and its header against the limits.
pub fn decode_dynamic(path: &Path, limits: &DecodeLimits) -> Result<DynamicImage, String> {
    use image::ImageDecoder;
    limits.check_file(path)?;
    let decoder = reader(path)?
        .into_decoder()
        .map_err(|e| format!("cannot decode image: {e}"))?;
    let (width, height) = decoder.dimensions();
    limits.check_size(width, height)?;
    DynamicImage::from_decoder(decoder).map_err(|e| format!("cannot decode image: {e}"))
}

pub fn read_header(path: &Path) -> Result<ImageHeader, String> {
    use image::ImageDecoder;
    let decoder = reader(path)?
        .into_decoder()
        .map_err(|e| format!("not a readable image: {e}"))?;
    let (width, height) = decoder.dimensions();
    Ok(ImageHeader {
        width,
        height,
        mode: format!("{:?}", decoder.color_type()),
    })
}

pub fn decode_image(path: &Path, alpha: AlphaRule, limits: &DecodeLimits) -> Result<Image, String> {
    let img = decode_dynamic(path, limits)?;
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

/// Keeps all `bands`, or drops the last (alpha) one.
fn with_alpha(p: Pixels, bands: usize, keep: bool) -> (usize, Pixels) {
    fn drop_last<T: Copy>(v: Vec<T>, bands: usize) -> Vec<T> {
        v.chunks_exact(bands)
            .flat_map(|px| px[..bands - 1].iter().copied())
            .collect()
    }
    if keep {
        return (bands, p);
    }
    let p = match p {
        Pixels::U8(v) => Pixels::U8(drop_last(v, bands)),
        Pixels::U16(v) => Pixels::U16(drop_last(v, bands)),
        Pixels::F32(v) => Pixels::F32(drop_last(v, bands)),
    };
    (bands - 1, p)
}
