//! How an image file is decoded: the alpha and EXIF rules, the header `check` reports without
//! decoding pixels, and the alpha drop that the PNG/JPEG and TIFF decoders share.
use serde::{Deserialize, Serialize};

use super::DecodeLimits;
use crate::sample::Pixels;

/// What `check` reports about an image without decoding its pixels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageHeader {
    /// As stored.
    pub width: u32,
    pub height: u32,
    pub mode: String,
    /// Bands as stored, including alpha, and whether the last band is alpha.
    pub bands: usize,
    pub has_alpha: bool,
    pub dtype: Option<crate::sample::PixelType>,
    /// A JPEG's EXIF orientation other than "as stored".
    pub exif: Option<String>,
}

impl ImageHeader {
    /// Bands after the alpha rule.
    pub fn decoded_bands(&self, alpha: AlphaRule) -> usize {
        self.bands - usize::from(self.has_alpha && alpha == AlphaRule::Drop)
    }

    /// The size after the EXIF rule.
    pub fn size(&self, rule: ExifRule) -> (u32, u32) {
        match (&self.exif, rule) {
            (Some(o), ExifRule::Apply) if swaps_sides(o) => (self.height, self.width),
            _ => (self.width, self.height),
        }
    }
}

/// Whether an EXIF orientation turns the image by a quarter (width and height trade places).
pub fn swaps_sides(orientation: &str) -> bool {
    orientation.starts_with("Rotate90") || orientation.starts_with("Rotate270")
}

/// How one image file is decoded.
#[derive(Debug, Clone, Copy)]
pub struct ImageRules {
    pub alpha: AlphaRule,
    pub exif: ExifRule,
    pub limits: DecodeLimits,
    /// JPEGs may be decoded at 1/2, 1/4 or 1/8 of their size when that still covers the size a
    /// resize wants (`decode_jpeg_reduced`'s target).
    pub jpeg_reduce: bool,
}

/// Keeps all `bands`, or drops the last (alpha) one.
pub fn with_alpha(p: Pixels, bands: usize, keep: bool) -> (usize, Pixels) {
    /// In place: pixel i's first bands move to i * (bands - 1), never ahead of where they are read.
    /// `KEEP` is a constant so each pixel is a few register moves, not a `memmove` call.
    fn drop_last_of<T: Copy, const KEEP: usize>(mut v: Vec<T>) -> Vec<T> {
        let bands = KEEP + 1;
        let pixels = v.len() / bands;
        for i in 0..pixels {
            let px: [T; KEEP] = v[i * bands..i * bands + KEEP]
                .try_into()
                .expect("KEEP values");
            v[i * KEEP..(i + 1) * KEEP].copy_from_slice(&px);
        }
        v.truncate(pixels * KEEP);
        v
    }
    fn drop_last<T: Copy>(mut v: Vec<T>, bands: usize) -> Vec<T> {
        match bands {
            2 => drop_last_of::<T, 1>(v),
            4 => drop_last_of::<T, 3>(v),
            _ => {
                let (keep, pixels) = (bands - 1, v.len() / bands);
                for i in 0..pixels {
                    v.copy_within(i * bands..i * bands + keep, i * keep);
                }
                v.truncate(pixels * keep);
                v
            }
        }
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlphaRule {
    /// RGBA becomes RGB and grey+alpha becomes grey: alpha is transparency, not a band.
    #[default]
    Drop,
    /// The alpha channel is kept as a band.
    Keep,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExifRule {
    /// Rotate and flip JPEGs as their EXIF orientation says, as image viewers and labelling tools do.
    #[default]
    Apply,
    /// Use the pixels as stored.
    Ignore,
    /// A JPEG with a non-trivial orientation is an error.
    Error,
}
