//! The values that flow through the pipeline: one image/label pair after decoding.
//!
//! Images are interleaved (H, W, C) in their own dtype; labels are class ids in u16 whatever the
//! output dtype, so no stage can clamp or wrap them.
use std::path::{Path, PathBuf};

// Pixel buffers are written to .npy as they sit in memory, declared little-endian ("<u2", "<f4").
#[cfg(target_endian = "big")]
compile_error!("segprep writes native-endian buffers as little-endian .npy; big-endian targets are not supported");

/// Pixel values of an image, interleaved band by band within each pixel.
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    U8(Vec<u8>),
    U16(Vec<u16>),
    F32(Vec<f32>),
}

impl Pixels {
    /// Hands pixels no longer needed to the buffer pool, for the next image's decoder, resize
    /// or warp (see `memory::pixel_buffers`).
    pub fn recycle(self) {
        use crate::memory::pixel_buffers::give;
        match self {
            Pixels::U8(v) => give(v),
            Pixels::U16(v) => give(v),
            Pixels::F32(v) => give(v),
        }
    }

    pub fn dtype(&self) -> PixelType {
        match self {
            Pixels::U8(_) => PixelType::U8,
            Pixels::U16(_) => PixelType::U16,
            Pixels::F32(_) => PixelType::F32,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Pixels::U8(v) => v.len(),
            Pixels::U16(v) => v.len(),
            Pixels::F32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pixels of `dtype` from their little-endian bytes (as an .npy body holds them).
    pub fn from_le_bytes(dtype: PixelType, bytes: &[u8]) -> Pixels {
        match dtype {
            PixelType::U8 => Pixels::U8(bytes.to_vec()),
            PixelType::U16 => Pixels::U16(
                bytes
                    .chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .collect(),
            ),
            PixelType::F32 => Pixels::F32(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
        }
    }

    /// The raw little-endian bytes, moved out where they already are bytes (u8).
    pub fn into_le_bytes(self) -> Vec<u8> {
        match self {
            Pixels::U8(v) => v,
            other => other.as_bytes().to_vec(),
        }
    }

    /// The raw little-endian bytes, as written into an .npy body.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Pixels::U8(v) => v,
            Pixels::U16(v) => bytemuck::cast_slice(v),
            Pixels::F32(v) => bytemuck::cast_slice(v),
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PixelType {
    U8,
    U16,
    F32,
}

impl PixelType {
    /// The image dtype of a sample of this many bytes (1: u8, 2: u16, 4: f32).
    pub fn of_size(bytes: usize) -> Option<PixelType> {
        match bytes {
            1 => Some(PixelType::U8),
            2 => Some(PixelType::U16),
            4 => Some(PixelType::F32),
            _ => None,
        }
    }

    pub fn size(self) -> usize {
        match self {
            PixelType::U8 => 1,
            PixelType::U16 => 2,
            PixelType::F32 => 4,
        }
    }

    /// The type of numpy's dtype string (as `numpy` gives it).
    pub fn of_numpy(dtype: &str) -> Option<PixelType> {
        [PixelType::U8, PixelType::U16, PixelType::F32]
            .into_iter()
            .find(|t| t.numpy() == dtype)
    }

    /// numpy's dtype string for this type, little-endian.
    pub fn numpy(self) -> &'static str {
        match self {
            PixelType::U8 => "|u1",
            PixelType::U16 => "<u2",
            PixelType::F32 => "<f4",
        }
    }

    /// The largest value an image fill of this type may take.
    pub fn max_value(self) -> f64 {
        match self {
            PixelType::U8 => u8::MAX as f64,
            PixelType::U16 => u16::MAX as f64,
            PixelType::F32 => f32::MAX as f64,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub bands: usize,
    pub pixels: Pixels,
}

impl Image {
    /// Puts `new` in this image's place, recycling the old pixels (see `Pixels::recycle`).
    pub fn replace(&mut self, new: Image) {
        std::mem::replace(self, new).pixels.recycle();
    }

    pub fn pixel_count(&self) -> usize {
        self.width as usize * self.height as usize
    }
}

/// A label map: one class id per pixel, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelMap {
    pub width: u32,
    pub height: u32,
    pub ids: Vec<u16>,
}

impl LabelMap {
    /// Hands the ids and a padding mask no longer needed to the buffer pool, for the next
    /// label's warp (see `memory::pixel_buffers`).
    pub fn recycle(self, padding: Option<Vec<bool>>) {
        crate::memory::pixel_buffers::give(self.ids);
        if let Some(mask) = padding {
            crate::memory::pixel_buffers::give(mask);
        }
    }
}

/// Where a sample came from, for error messages and the manifest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PairRef {
    /// The name pairing is based on, unique in the dataset, with `/` separators (e.g. `sub/img_001`).
    pub key: String,
    /// The image file; with several band folders, the first folder's file.
    pub image: PathBuf,
    /// Files of the further band folders, stacked after `image`'s bands in the declared order.
    pub bands: Vec<PathBuf>,
    pub label: LabelSource,
    /// A split given by the source (a manifest column, a dictionary field, a folder), if any.
    pub split: Option<String>,
}

impl PairRef {
    /// A pair of one image file and one label file.
    pub fn new(key: String, image: PathBuf, label: PathBuf) -> Self {
        PairRef {
            key,
            image,
            bands: Vec::new(),
            label: LabelSource::File(label),
            split: None,
        }
    }

    /// The image files in band order.
    pub fn image_files(&self) -> impl Iterator<Item = &PathBuf> {
        std::iter::once(&self.image).chain(&self.bands)
    }

    /// Every input file of the pair: image bands, then label files.
    pub fn files(&self) -> Vec<&Path> {
        let mut files: Vec<&Path> = self.image_files().map(PathBuf::as_path).collect();
        match &self.label {
            LabelSource::File(f) => files.push(f),
            LabelSource::Masks { classes, .. } => files.extend(
                classes
                    .iter()
                    .flat_map(|(_, m)| m.iter().map(PathBuf::as_path)),
            ),
            LabelSource::Background => {}
        }
        files
    }

    /// The path that names the label in messages: its file, its mask folder, or the image.
    pub fn label_path(&self) -> &Path {
        match &self.label {
            LabelSource::File(f) => f,
            LabelSource::Masks { folder, .. } => folder,
            LabelSource::Background => &self.image,
        }
    }
}

/// Where a sample's class ids come from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum LabelSource {
    /// One label image.
    File(PathBuf),
    /// Binary masks merged into one label map: each mask's foreground becomes its class id.
    /// Classes are listed in priority order (for `overlap = "first"`).
    Masks {
        folder: PathBuf,
        classes: Vec<(u16, Vec<PathBuf>)>,
    },
    /// No label file: every pixel is background (class 0), as for MVTec AD's `good` images.
    Background,
}

/// Per-image standardization values actually used, kept so inference can undo or repeat them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Standardization {
    pub mean: f64,
    pub std: f64,
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub pair: PairRef,
    pub split: String,
    pub image: Image,
    pub label: LabelMap,
    /// `true` where a pixel was created by padding; `None` until a stage pads.
    pub padding: Option<Vec<bool>>,
    /// Pixels whose label value was undeclared and mapped to the ignore index (`unknown = "ignore"`).
    pub unknown_pixels: u64,
    /// Set by a `per_image` standardize stage.
    pub standardization: Option<Standardization>,
    /// Instance masks merged into the label, for mask sources.
    pub instances: Option<u32>,
    /// With an augment stage: the parameters drawn for this copy, as JSON (`null` for an original).
    pub augment: Option<String>,
}

impl Sample {
    /// This sample's record (pair, split, counts, drawn values) with other pixels: what a stage
    /// that writes a copy's pixels anew from these makes, without cloning these first.
    pub fn with_pixels(&self, image: Image, label: LabelMap, padding: Option<Vec<bool>>) -> Sample {
        Sample {
            pair: self.pair.clone(),
            split: self.split.clone(),
            image,
            label,
            padding,
            unknown_pixels: self.unknown_pixels,
            standardization: self.standardization,
            instances: self.instances,
            augment: self.augment.clone(),
        }
    }

    /// The image side and the label side, for a stage's image path and label path.
    pub fn parts(&mut self) -> (ImagePart<'_>, LabelPart<'_>) {
        (
            ImagePart {
                image: &mut self.image,
                standardization: &mut self.standardization,
            },
            LabelPart {
                label: &mut self.label,
                padding: &mut self.padding,
            },
        )
    }
}

/// What a stage's image path reads and changes: the pixels, and the per-image standardization
/// values it records. `segprep apply` runs image paths on these alone, with no label.
pub struct ImagePart<'a> {
    pub image: &'a mut Image,
    pub standardization: &'a mut Option<Standardization>,
}

/// What a stage's label path reads and changes: the class ids and the padding mask, which every
/// geometric step moves exactly as the ids.
pub struct LabelPart<'a> {
    pub label: &'a mut LabelMap,
    pub padding: &'a mut Option<Vec<bool>>,
}

/// Element types an image can hold, to write one generic routine instead of three matches.
pub trait PixelValue: Copy + Default + Send + Sync + 'static {
    /// The value of "full intensity": 255, 65535, or 1.0 for f32.
    const RANGE: f32;
    fn wrap(v: Vec<Self>) -> Pixels;
    fn unwrap(p: Pixels) -> Option<Vec<Self>>;
    fn to_f32(self) -> f32;
    /// Rounded and saturated to the type's range (f32 as is).
    fn from_f32(v: f32) -> Self;
    /// The value as a table index (integer types; f32 gives 0).
    fn index(self) -> usize;
}

macro_rules! pixel_value {
    ($t:ty, $variant:ident, $range:expr, $from:expr) => {
        impl PixelValue for $t {
            const RANGE: f32 = $range;
            fn wrap(v: Vec<Self>) -> Pixels {
                Pixels::$variant(v)
            }
            fn unwrap(p: Pixels) -> Option<Vec<Self>> {
                match p {
                    Pixels::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn to_f32(self) -> f32 {
                self as f32
            }
            fn from_f32(v: f32) -> Self {
                $from(v)
            }
            fn index(self) -> usize {
                self as usize
            }
        }
    };
}

// `as` saturates float-to-int casts (NaN becomes 0), so adding a half rounds (half up; a
// negative value saturates to 0 either way) without a call to libm's `roundf`
pixel_value!(u8, U8, 255.0, |v: f32| (v + 0.5) as u8);
pixel_value!(u16, U16, 65535.0, |v: f32| (v + 0.5) as u16);
pixel_value!(f32, F32, 1.0, |v: f32| v);
