//! TIFF images through the `tiff` crate, which reads any number of samples per pixel (the `image`
//! crate stops at four): multispectral stacks keep every band, in u8, u16 or f32. Layouts the
//! `tiff` crate path does not cover (palette, CMYK, YCbCr, bit depths under 8) return `None` and
//! go through the `image` crate.
use std::io::BufReader;
use std::path::Path;
use tiff::decoder::{Decoder, DecodingResult};
use tiff::tags::Tag;
use tiff::ColorType;

use super::rules::{with_alpha, AlphaRule, ImageHeader, ImageRules};
use crate::sample::{Image, Pixels};

fn is_tiff(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("tif") || e.eq_ignore_ascii_case("tiff"))
}

type TiffFile = Decoder<BufReader<std::fs::File>>;

/// The decoder and the bands it yields, when this path handles the file.
fn open(path: &Path) -> Result<Option<(TiffFile, ColorType, usize)>, String> {
    if !is_tiff(path) {
        return Ok(None);
    }
    let file = super::open_file(path)?;
    let mut limits = tiff::decoder::Limits::default();
    limits.decoding_buffer_size = super::MAX_DECODE_BYTES as usize;
    limits.intermediate_buffer_size = super::MAX_DECODE_BYTES as usize;
    let mut dec = Decoder::new(BufReader::new(file))
        .map_err(|e| format!("not a readable TIFF: {e}"))?
        .with_limits(limits);
    let color = dec
        .colortype()
        .map_err(|e| format!("not a readable TIFF: {e}"))?;
    let depth = match color {
        ColorType::Gray(d) | ColorType::GrayA(d) | ColorType::RGB(d) | ColorType::RGBA(d) => d,
        ColorType::Multiband { bit_depth, .. } => bit_depth,
        _ => return Ok(None),
    };
    if ![8, 16, 32].contains(&depth) {
        return Ok(None);
    }
    // every sample is a band, extra samples (RGB + NIR) included
    let bands = dec
        .find_tag_unsigned::<u16>(Tag::SamplesPerPixel)
        .map_err(|e| format!("not a readable TIFF: {e}"))?
        .unwrap_or(1) as usize;
    Ok(Some((dec, color, bands)))
}

pub fn read_header(path: &Path) -> Result<Option<ImageHeader>, String> {
    let Some((mut dec, color, bands)) = open(path)? else {
        return Ok(None);
    };
    let (width, height) = dec
        .dimensions()
        .map_err(|e| format!("not a readable TIFF: {e}"))?;
    let depth = match color {
        ColorType::Multiband { bit_depth, .. } => bit_depth,
        ColorType::Gray(d) | ColorType::GrayA(d) | ColorType::RGB(d) | ColorType::RGBA(d) => d,
        _ => 0,
    };
    Ok(Some(ImageHeader {
        width,
        height,
        mode: format!("TIFF {color:?}"),
        bands,
        has_alpha: matches!(color, ColorType::GrayA(_) | ColorType::RGBA(_)),
        dtype: crate::sample::PixelType::of_size(depth as usize / 8),
        exif: None,
    }))
}

pub fn decode(path: &Path, rules: &ImageRules) -> Result<Option<Image>, String> {
    rules.limits.check_file(path)?;
    let Some((mut dec, color, bands)) = open(path)? else {
        return Ok(None);
    };
    let err = |e: tiff::TiffError| format!("cannot decode TIFF: {e}");
    let (width, height) = dec.dimensions().map_err(err)?;
    rules.limits.check_size(width, height)?;
    let planar = dec
        .find_tag_unsigned::<u16>(Tag::PlanarConfiguration)
        .map_err(err)?
        == Some(2);
    let mut result = DecodingResult::U8(Vec::new());
    let layout = dec.read_image_to_buffer(&mut result).map_err(err)?;
    if planar && result.as_buffer(0).as_bytes().len() < layout.complete_len {
        return Err("planar TIFF too large to read all its bands at once".into());
    }
    let pixels = match result {
        DecodingResult::U8(v) => Pixels::U8(v),
        DecodingResult::U16(v) => Pixels::U16(v),
        DecodingResult::F32(v) => Pixels::F32(v),
        other => {
            return Err(format!(
                "TIFF samples are {}: segprep reads u8, u16 and f32 images; convert the file",
                sample_name(&other)
            ))
        }
    };
    let n = width as usize * height as usize * bands;
    if pixels.len() < n {
        return Err(format!(
            "TIFF holds {} values, expected {n} ({width}x{height}x{bands})",
            pixels.len()
        ));
    }
    let pixels = if planar {
        interleave(pixels, bands, n)
    } else {
        truncate(pixels, n)
    };
    let has_alpha = matches!(color, ColorType::GrayA(_) | ColorType::RGBA(_));
    let (bands, pixels) = if has_alpha {
        with_alpha(pixels, bands, rules.alpha == AlphaRule::Keep)
    } else {
        (bands, pixels)
    };
    Ok(Some(Image {
        width,
        height,
        bands,
        pixels,
    }))
}

fn sample_name(r: &DecodingResult) -> &'static str {
    match r {
        DecodingResult::U32(_) => "u32",
        DecodingResult::U64(_) => "u64",
        DecodingResult::F16(_) => "f16",
        DecodingResult::F64(_) => "f64",
        DecodingResult::I8(_) => "i8",
        DecodingResult::I16(_) => "i16",
        DecodingResult::I32(_) => "i32",
        DecodingResult::I64(_) => "i64",
        _ => "of an unsupported type",
    }
}

fn truncate(p: Pixels, n: usize) -> Pixels {
    match p {
        Pixels::U8(mut v) => {
            v.truncate(n);
            Pixels::U8(v)
        }
        Pixels::U16(mut v) => {
            v.truncate(n);
            Pixels::U16(v)
        }
        Pixels::F32(mut v) => {
            v.truncate(n);
            Pixels::F32(v)
        }
    }
}

/// Planes one after another (RRR..GGG..) to pixels (RGBRGB..).
fn interleave(p: Pixels, bands: usize, n: usize) -> Pixels {
    fn run<T: Copy + Default>(v: &[T], bands: usize, n: usize) -> Vec<T> {
        let plane = n / bands;
        let mut out = vec![T::default(); n];
        for b in 0..bands {
            for (i, x) in v[b * plane..(b + 1) * plane].iter().enumerate() {
                out[i * bands + b] = *x;
            }
        }
        out
    }
    match p {
        Pixels::U8(v) => Pixels::U8(run(&v, bands, n)),
        Pixels::U16(v) => Pixels::U16(run(&v, bands, n)),
        Pixels::F32(v) => Pixels::F32(run(&v, bands, n)),
    }
}
