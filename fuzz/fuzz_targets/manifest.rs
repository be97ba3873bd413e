//! Any bytes as a CSV manifest (read with polars) and as a `.txt` pair list.
#![no_main]
use libfuzzer_sys::fuzz_target;
use segprep::source::paths::Rebase;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let rebase = Rebase {
        root: dir.path(),
        prefix: None,
        allow_outside: false,
    };
    for name in ["m.csv", "train.txt"] {
        let path = dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        let _ = segprep::source::input_manifest::read(&path, rebase);
    }
});
