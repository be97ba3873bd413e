//! Decoding files into pixels: images keep their dtype and bands; labels become class ids.
pub mod image;
pub mod label;
pub mod masks;
mod png_rows;
mod png_stream;
pub mod raw_label;
pub mod rules;
pub mod stack;
pub mod tiff;
mod unfilter;

/// Largest allocation a decoder may make for one file; guards against decompression bombs.
pub const MAX_DECODE_BYTES: u64 = 4 << 30;

/// True for the file extensions segprep reads: png, jpg/jpeg, tif/tiff, in any case.
pub fn is_supported_image(path: &std::path::Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| {
            matches!(
                e.to_ascii_lowercase().as_str(),
                "png" | "jpg" | "jpeg" | "tif" | "tiff"
            )
        })
        .unwrap_or(false)
}

/// Opens an input file for reading. A mirrored object whose bytes are not here yet is fetched
/// first (see `storage::mirror`): every decoder opens its files here.
pub fn open_file(path: &std::path::Path) -> Result<std::fs::File, String> {
    crate::storage::mirror::ensure_local(path).map_err(|e| e.to_string())?;
    std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))
}

pub fn is_jpeg(path: &std::path::Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg"))
        .unwrap_or(false)
}

/// Limits against decompression bombs and runaway files, checked from the file size and the header
/// before any pixel buffer is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    pub max_pixels: u64,
    pub max_file_bytes: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_pixels: 100_000_000,
            max_file_bytes: 1 << 30,
        }
    }
}

impl DecodeLimits {
    pub fn check_file(&self, path: &std::path::Path) -> Result<(), String> {
        let bytes = std::fs::metadata(path)
            .map_err(|e| format!("cannot open: {e}"))?
            .len();
        if bytes > self.max_file_bytes {
            return Err(format!("file is {bytes} bytes, over [input] max_file_bytes = {}; raise it if the file is genuine", self.max_file_bytes));
        }
        Ok(())
    }

    pub fn check_size(&self, width: u32, height: u32) -> Result<(), String> {
        let pixels = width as u64 * height as u64;
        if pixels > self.max_pixels {
            return Err(format!("image is {width}x{height} ({pixels} pixels), over [input] max_pixels = {}; raise it if the image is genuine", self.max_pixels));
        }
        Ok(())
    }
}
