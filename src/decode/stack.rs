//! A sample's image from its files: band files stacked as channels in the declared order (all of
//! one size and dtype), then the optional `channels` conversion.
use crate::decode::image::{decode_file, decode_jpeg_reduced, DecodedImage, ReduceTarget};
use crate::decode::rules::ImageRules;
use crate::error::{Error, Result};
use crate::sample::{Image, PairRef, PixelValue, Pixels};

/// Decodes every band file of the pair and stacks them; errors name the file at fault.
pub fn decode_pair_image(
    pair: &PairRef,
    rules: &ImageRules,
    channels: Option<usize>,
    reduce_to: Option<ReduceTarget>,
) -> Result<DecodedImage> {
    // a reduced JPEG: one file (band stacks need every band at one size)
    let reduced = match reduce_to {
        Some(target) if rules.jpeg_reduce && pair.bands.is_empty() => {
            decode_jpeg_reduced(&pair.image, rules, target)
                .map_err(|m| Error::data(&pair.image, "decode", m))?
        }
        _ => None,
    };
    let mut first = match reduced {
        Some(r) => r,
        None => {
            decode_file(&pair.image, rules).map_err(|m| Error::data(&pair.image, "decode", m))?
        }
    };
    for file in &pair.bands {
        let band = decode_file(file, rules)
            .map_err(|m| Error::data(file, "decode", m))?
            .image;
        let img = &first.image;
        if (band.width, band.height) != (img.width, img.height) {
            return Err(Error::data(
                file,
                "decode",
                format!(
                    "band is {}x{} but {} is {}x{}; every band of a sample has one size",
                    band.width,
                    band.height,
                    pair.image.display(),
                    img.width,
                    img.height
                ),
            ));
        }
        if band.pixels.dtype() != img.pixels.dtype() {
            return Err(Error::data(
                file,
                "decode",
                format!(
                    "band is {:?} but {} is {:?}; every band of a sample has one dtype",
                    band.pixels.dtype(),
                    pair.image.display(),
                    img.pixels.dtype()
                ),
            ));
        }
        first.image = stack(&first.image, &band);
    }
    if let Some(c) = channels {
        first.image =
            convert_channels(first.image, c).map_err(|m| Error::data(&pair.image, "decode", m))?;
    }
    Ok(first)
}

/// `a`'s bands then `b`'s, pixel by pixel.
fn stack(a: &Image, b: &Image) -> Image {
    fn run<T: Copy>(x: &[T], xb: usize, y: &[T], yb: usize) -> Vec<T> {
        x.chunks_exact(xb)
            .zip(y.chunks_exact(yb))
            .flat_map(|(p, q)| p.iter().chain(q).copied())
            .collect()
    }
    let pixels = match (&a.pixels, &b.pixels) {
        (Pixels::U8(x), Pixels::U8(y)) => Pixels::U8(run(x, a.bands, y, b.bands)),
        (Pixels::U16(x), Pixels::U16(y)) => Pixels::U16(run(x, a.bands, y, b.bands)),
        (Pixels::F32(x), Pixels::F32(y)) => Pixels::F32(run(x, a.bands, y, b.bands)),
        _ => unreachable!("dtypes are checked before stacking"),
    };
    Image {
        bands: a.bands + b.bands,
        pixels,
        ..a.clone()
    }
}

/// The explicit `channels` rule: grey repeated to 3 bands, or RGB to grey by ITU-R 601 luma in
/// Pillow's fixed-point form (`convert("L")`: (19595 R + 38470 G + 7471 B + 2^15) >> 16).
pub fn convert_channels(img: Image, want: usize) -> Result<Image, String> {
    fn repeat<T: PixelValue>(v: Vec<T>) -> Pixels {
        T::wrap(v.into_iter().flat_map(|x| [x, x, x]).collect())
    }
    fn luma<T: PixelValue + Into<u64>>(v: Vec<T>, narrow: impl Fn(u64) -> T) -> Pixels {
        T::wrap(
            v.chunks_exact(3)
                .map(|p| {
                    narrow(
                        (19595 * p[0].into()
                            + 38470 * p[1].into()
                            + 7471 * p[2].into()
                            + (1 << 15))
                            >> 16,
                    )
                })
                .collect(),
        )
    }
    fn luma_f32(v: Vec<f32>) -> Pixels {
        Pixels::F32(
            v.chunks_exact(3)
                .map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])
                .collect(),
        )
    }
    let pixels = match (img.bands, want, img.pixels) {
        (have, want, pixels) if have == want => return Ok(Image { pixels, ..img }),
        (1, 3, Pixels::U8(v)) => repeat(v),
        (1, 3, Pixels::U16(v)) => repeat(v),
        (1, 3, Pixels::F32(v)) => repeat(v),
        // the weights sum to 2^16, so the result never exceeds the input's maximum
        (3, 1, Pixels::U8(v)) => luma(v, |x| x as u8),
        (3, 1, Pixels::U16(v)) => luma(v, |x| x as u16),
        (3, 1, Pixels::F32(v)) => luma_f32(v),
        (have, want, _) => {
            return Err(format!(
                "image has {have} band(s); [input] channels = {want} converts only between 1 (grey) and 3 (RGB)"
            ))
        }
    };
    Ok(Image {
        bands: want,
        pixels,
        ..img
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(bands: usize, pixels: Pixels) -> Image {
        Image {
            width: 2,
            height: 1,
            bands,
            pixels,
        }
    }

    #[test]
    fn bands_stack_pixel_by_pixel() {
        let s = stack(
            &image(2, Pixels::U16(vec![1, 2, 3, 4])),
            &image(1, Pixels::U16(vec![9, 8])),
        );
        assert_eq!(s.pixels, Pixels::U16(vec![1, 2, 9, 3, 4, 8]));
        assert_eq!(s.bands, 3);
    }

    #[test]
    fn channels_rule_converts_grey_and_rgb_only() {
        let g = convert_channels(image(1, Pixels::U8(vec![7, 9])), 3).unwrap();
        assert_eq!(g.pixels, Pixels::U8(vec![7, 7, 7, 9, 9, 9]));
        // Pillow's convert("L"): (255, 0, 0) -> 76, (0, 0, 255) -> 29
        let l = convert_channels(image(3, Pixels::U8(vec![255, 0, 0, 0, 0, 255])), 1).unwrap();
        assert_eq!(l.pixels, Pixels::U8(vec![76, 29]));
        assert!(convert_channels(image(2, Pixels::U8(vec![0; 4])), 3).is_err());
    }
}

/// What a sample's image will be, read from the headers of its files only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairHeader {
    /// The size after the EXIF rule.
    pub width: u32,
    pub height: u32,
    /// Bands after the alpha and `channels` rules.
    pub bands: usize,
    pub dtype: Option<crate::sample::PixelType>,
    /// Modes of the files, `+`-joined for band stacks.
    pub mode: String,
    /// (orientation, size as stored) of a turned JPEG.
    pub exif: Option<(String, (u32, u32))>,
}

/// The header of a pair's image; errors name the file (a band of another size, for instance).
pub fn pair_header(
    pair: &PairRef,
    rules: &ImageRules,
    channels: Option<usize>,
) -> std::result::Result<PairHeader, (std::path::PathBuf, String)> {
    use crate::decode::image::read_header;
    let first = read_header(&pair.image).map_err(|e| (pair.image.clone(), e))?;
    let (width, height) = first.size(rules.exif);
    let mut h = PairHeader {
        width,
        height,
        bands: first.decoded_bands(rules.alpha),
        dtype: first.dtype,
        mode: first.mode.clone(),
        exif: first.exif.clone().map(|o| (o, (first.width, first.height))),
    };
    for file in &pair.bands {
        let b = read_header(file).map_err(|e| (file.clone(), e))?;
        if b.size(rules.exif) != (width, height) {
            let (w, hh) = b.size(rules.exif);
            return Err((
                file.clone(),
                format!(
                    "band is {w}x{hh} but {} is {width}x{height}",
                    pair.image.display()
                ),
            ));
        }
        if b.dtype != h.dtype {
            let name = |t: Option<crate::sample::PixelType>| {
                t.map_or("unsupported".into(), |t| format!("{t:?}"))
            };
            return Err((
                file.clone(),
                format!(
                    "band is {} but {} is {}; every band of a sample has one dtype",
                    name(b.dtype),
                    pair.image.display(),
                    name(h.dtype)
                ),
            ));
        }
        h.bands += b.decoded_bands(rules.alpha);
        h.mode = format!("{}+{}", h.mode, b.mode);
    }
    if let Some(c) = channels.filter(|&c| matches!((h.bands, c), (1, 3) | (3, 1))) {
        h.bands = c;
    }
    Ok(h)
}
