//! The augment stage and `segprep preview` from the command line: copies only where asked,
//! recorded parameters, pipeline errors, Gym names, and the contact sheet. Pixel-level checks
//! against numpy and OpenCV are in tests/python/test_augment.py.
mod common;
use common::*;

const AUGMENT: &str = "[[stage]]\nresize = { size = 64 }\n[[stage]]\naugment = { copies = 2, hflip = 0.5, rotate = [-10, 10], brightness = [-0.1, 0.1] }\n";
const SPLIT: &str = "[split]\ntrain = 0.5\nval = 0.5\nseed = 1\n";

#[test]
fn copies_only_in_the_augmented_splits_with_their_parameters() {
    let d = quintal_dir();
    let p = quintal_pipeline(
        d.path(),
        &format!("{AUGMENT}{SPLIT}[output]\ndir = \"out\"\n"),
    );
    let r = run(d.path(), &["build", p]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let index = json(d.path().join("out/index.json"));
    assert_eq!(
        index["splits"]["train"]["samples"], 9,
        "3 pairs x (original + 2 copies)"
    );
    assert_eq!(index["splits"]["val"]["samples"], 3);
    let train = npz_keys(&d.path().join("out/train-00000-of-00001.npz"));
    assert_eq!(
        train
            .iter()
            .filter(|k| k.ends_with("@1") || k.ends_with("@2"))
            .count(),
        6
    );
    assert!(npz_keys(&d.path().join("out/val-00000-of-00001.npz"))
        .iter()
        .all(|k| !k.contains('@')));
    let (dtype, shape, _) = npz_entry(
        &d.path().join("out/train-00000-of-00001.npz"),
        "augment.npy",
    );
    assert!(dtype.starts_with("<U") && shape == [9], "{dtype} {shape:?}");
}

#[test]
fn gym_layout_names_copies_aug() {
    let d = quintal_dir();
    let p = quintal_pipeline(
        d.path(),
        &format!("{AUGMENT}[output]\nlayout = \"gym\"\ndir = \"out\"\n"),
    );
    assert_eq!(run(d.path(), &["build", p]).code, 0);
    let names: Vec<String> = std::fs::read_dir(d.path().join("out/train_data/train_npzs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.contains("_aug_nd_data_")).count(),
        12
    );
    assert_eq!(
        names
            .iter()
            .filter(|n| n.contains("_noaug_nd_data_"))
            .count(),
        6
    );
}

#[test]
fn bad_augment_settings_are_pipeline_errors() {
    let d = quintal_dir();
    for (stage, phrase) in [
        ("augment = { copies = 0 }", "copies must be at least 1"),
        ("augment = { copies = 1, hflip = 2 }", "probability"),
        (
            "augment = { copies = 1, rotate = [10, -10] }",
            "low <= high",
        ),
        (
            "augment = { copies = 1, crop = 10, random_resized_crop = { size = 8 } }",
            "not both",
        ),
        (
            "augment = { copies = 1, zoom = [0, 1] }",
            "zoom must be at least",
        ),
        (
            "augment = { copies = 1, rotat = [1, 2] }",
            "did you mean `rotate`",
        ),
    ] {
        let p = quintal_pipeline(
            d.path(),
            &format!("[[stage]]\n{stage}\n[output]\ndir = \"out\"\n"),
        );
        let r = run(d.path(), &["build", p]);
        assert_eq!(r.code, 2, "{stage}: {}", r.stderr);
        assert!(r.stderr.contains(phrase), "{stage}: {}", r.stderr);
    }
    let p = quintal_pipeline(
        d.path(),
        "[[stage]]\naugment = { copies = 1, crop = 999 }\n[output]\ndir = \"out\"\n",
    );
    let r = run(d.path(), &["build", p]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("larger than the image"), "{}", r.stderr);
}

#[test]
fn preview_draws_a_contact_sheet() {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), &format!("{AUGMENT}[output]\ndir = \"out\"\n"));
    let r = run(d.path(), &["preview", p, "--n", "5", "--out", "sheet.png"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let img = image::open(d.path().join("sheet.png")).unwrap().to_rgb8();
    // 5 tiles in 3 columns and 2 rows, then a legend of 11 classes
    assert_eq!(img.width(), 3 * (192 + 6) + 6);
    assert!(img.height() > 2 * (192 + 12 + 6) + 11 * 12);
    assert!(
        !d.path().join("out").exists(),
        "preview writes nothing else"
    );
    for (args, phrase) in [
        (vec!["preview", p, "--out", "sheet.jpg"], ".png"),
        (
            vec!["preview", p, "--split", "test"],
            "no samples in split `test`",
        ),
        (vec!["preview", p, "--n", "0"], "at least 1"),
    ] {
        let r = run(d.path(), &args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(phrase), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn augmented_splits_are_configurable() {
    let d = quintal_dir();
    let stage = "[[stage]]\nresize = { size = 32 }\n[[stage]]\naugment = { copies = 1, hflip = 1.0, splits = [\"val\"], keep_original = false }\n";
    let p = quintal_pipeline(
        d.path(),
        &format!("{stage}{SPLIT}[output]\ndir = \"out\"\n"),
    );
    assert_eq!(run(d.path(), &["build", p]).code, 0);
    assert!(npz_keys(&d.path().join("out/train-00000-of-00001.npz"))
        .iter()
        .all(|k| !k.contains('@')));
    assert!(npz_keys(&d.path().join("out/val-00000-of-00001.npz"))
        .iter()
        .all(|k| k.ends_with("@1")));
}
