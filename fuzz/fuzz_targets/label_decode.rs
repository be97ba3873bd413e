//! Any bytes as a label file (PNG, and TIFF through the first byte), decoded in every format.
#![no_main]
use libfuzzer_sys::fuzz_target;
use segprep::decode::label::LabelDecoder;
use segprep::decode::DecodeLimits;
use segprep::classes::{Class, ClassSet};
use segprep::decode::label::{LabelFormat, UnknownPolicy};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(if selector % 2 == 0 { "l.png" } else { "l.tif" });
    std::fs::write(&path, bytes).unwrap();
    let classes = (0..12u16).map(|id| Class { id, name: format!("c{id}"), color: Some([id as u8 * 20, 0, 255 - id as u8]) }).collect();
    let classes = ClassSet::new(classes, 255).unwrap();
    let limits = DecodeLimits { max_pixels: 1 << 22, max_file_bytes: 1 << 24 };
    for format in [LabelFormat::Index, LabelFormat::Palette, LabelFormat::Rgb, LabelFormat::Binary] {
        for unknown in [UnknownPolicy::Error, UnknownPolicy::Ignore] {
            let decoder = LabelDecoder::new(format, &classes, unknown, 255, limits);
            let _ = decoder.decode(&path);
        }
    }
});
