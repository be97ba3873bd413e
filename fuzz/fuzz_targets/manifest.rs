//! Any bytes as a CSV manifest, read with polars.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.csv");
    std::fs::write(&path, data).unwrap();
    let _ = segprep::source::manifest::read(&path, false);
});
