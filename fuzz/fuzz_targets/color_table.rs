//! Any text as a colour table (label_colors.txt or class_dict.csv).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = segprep::classes::colors::parse_color_table(text);
    }
});
