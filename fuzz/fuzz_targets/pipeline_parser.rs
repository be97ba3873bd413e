//! Any text as a pipeline file: parse, then resolve (classes, stages, split), reporting errors.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("/nonexistent/fuzz.toml");
    match segprep::pipeline::parse(path, text) {
        Ok(config) => {
            if let Err(e) = segprep::pipeline::resolve(path, config) {
                let _ = e.to_string();
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
