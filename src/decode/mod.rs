//! Decoding files into pixels: images keep their dtype and bands; labels become class ids.
pub mod image;
pub mod label;
pub mod raw_label;

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

pub fn is_jpeg(path: &std::path::Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg"))
        .unwrap_or(false)
}
