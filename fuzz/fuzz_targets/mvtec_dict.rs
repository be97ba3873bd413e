//! Any bytes as an MVTec DLDataset dictionary (JSON from HALCON's dict_to_json), read, checked and
//! resolved against a dataset folder that holds `images/` and `labels/`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["images", "labels"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let path = dir.path().join("dataset.json");
    std::fs::write(&path, data).unwrap();
    let _ = segprep::source::mvtec_dict::discover(&path, None, false);
});
