//! One table of stage configurations, run on every fixture pair: each must parse, keep image and
//! label the same size, and keep every output label value within the input's values plus the
//! ignore index (labels are never interpolated).
mod common;
use common::*;
use std::collections::BTreeSet;

use segprep::pipeline;
use segprep::process::process_pair;
use segprep::source::discover;

/// (name, [[stage]] tables). Every stage kind appears; geometric ones in every mode.
const TABLE: &[(&str, &str)] = &[
    ("stretch bilinear down", "resize = { size = [100, 60] }"),
    (
        "stretch nearest up",
        "resize = { size = [300, 290], filter = \"nearest\" }",
    ),
    (
        "stretch bicubic odd",
        "resize = { size = [97, 131], filter = \"bicubic\" }",
    ),
    (
        "fit lanczos",
        "resize = { size = [160, 90], mode = \"fit\", filter = \"lanczos3\" }",
    ),
    (
        "fit with class fill",
        "resize = { size = [90, 160], mode = \"fit\", label_fill = 6, image_fill = 255 }",
    ),
    ("fill", "resize = { size = [120, 50], mode = \"fill\" }"),
    (
        "fill tall",
        "resize = { size = [30, 200], mode = \"fill\", filter = \"nearest\" }",
    ),
    ("pad multiple", "pad = { multiple_of = 96 }"),
    (
        "pad size top-left",
        "pad = { size = [300, 260], placement = \"top_left\", image = [1, 2, 3] }",
    ),
    (
        "pad centre alias",
        "pad = { size = 257, placement = \"centre\", label = 0 }",
    ),
    (
        "remap names",
        "remap = { map = { areia = \"ignore\", gramaSeca = \"grama\" } }",
    ),
    (
        "remap compact",
        "remap = { map = { areia = \"ignore\" }, compact = true }",
    ),
    (
        "standardize per image",
        "standardize = { mode = \"per_image\" }",
    ),
    (
        "standardize fixed",
        "standardize = { mode = \"fixed\", mean = [120, 110, 100], std = [50, 50, 50] }",
    ),
    (
        "rescale to f32",
        "rescale = { input_range = [0, 255], output = \"f32\" }",
    ),
    (
        "augment flips and turns",
        "augment = { copies = 3, hflip = 0.5, vflip = 0.5, rot90 = 1.0 }",
    ),
    (
        "augment affine bilinear",
        "augment = { copies = 2, rotate = [-30, 30], shift = [-0.2, 0.2], zoom = [0.7, 1.4], zoom_per_axis = true, shear = [-10, 10] }",
    ),
    (
        "augment affine reflect nearest",
        "augment = { copies = 2, rotate = [-45, 45], interpolation = \"nearest\", image_border = \"reflect\", label_border = \"reflect\" }",
    ),
    (
        "augment elastic edge",
        "augment = { copies = 1, elastic = { alpha = 20, sigma = 4 }, label_border = \"edge\", image_border = \"edge\" }",
    ),
    (
        "augment crop and photometric",
        "augment = { copies = 2, crop = [100, 80], brightness = [-0.2, 0.2], contrast = [0.5, 1.5], gamma = [0.7, 1.5], hue = [-0.1, 0.1], saturation = [0, 2], noise = [0, 0.05], blur = [0, 2] }",
    ),
    (
        "augment random resized crop",
        "augment = { copies = 2, keep_original = false, random_resized_crop = { size = [64, 48] } }",
    ),
];

fn pipeline_text(stage: &str) -> String {
    format!("{QUINTAL_HEAD}\n[[stage]]\n{stage}\n[output]\ndir = \"out\"\n")
}

#[test]
fn every_stage_keeps_geometry_and_label_set() {
    let d = quintal_dir();
    let path = d.path().join("p.toml");
    for (name, stage) in TABLE {
        std::fs::write(&path, pipeline_text(stage)).unwrap();
        let p = pipeline::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let pairs = discover(&p.source()).unwrap().pairs;
        let remaps = stage.starts_with("remap");
        for pair in &pairs {
            let input = process_pair(&p, &[], pair, "train").unwrap().remove(0);
            let outputs = process_pair(&p, &p.stages, pair, "train")
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let expected = p.samples_per_pair("train");
            assert_eq!(outputs.len(), expected, "{name}: samples per pair");
            for out in outputs {
                assert_eq!(
                    (out.image.width, out.image.height),
                    (out.label.width, out.label.height),
                    "{name}: image and label differ in size"
                );
                assert_eq!(
                    out.label.ids.len(),
                    (out.label.width * out.label.height) as usize,
                    "{name}"
                );
                assert_eq!(
                    out.image.pixels.len(),
                    out.image.pixel_count() * out.image.bands,
                    "{name}"
                );
                if let Some(mask) = &out.padding {
                    assert_eq!(mask.len(), out.label.ids.len(), "{name}: padding mask size");
                }
                let allowed: BTreeSet<u16> = if remaps {
                    p.classes.classes.iter().map(|c| c.id).collect()
                } else {
                    input.label.ids.iter().copied().chain([6, 0]).collect()
                };
                let seen: BTreeSet<u16> = out.label.ids.iter().copied().collect();
                let stray: Vec<u16> = seen
                    .iter()
                    .copied()
                    .filter(|v| !allowed.contains(v) && *v != 255)
                    .collect();
                assert!(
                    stray.is_empty(),
                    "{name}: {} has label values {stray:?} not in its input",
                    out.pair.key
                );
            }
        }
    }
}

#[test]
fn fills_other_than_the_stage_declares_never_appear() {
    // the table above allows 6 and 0 for the two stages that fill with those classes; make sure a
    // plain pad does not invent them where the input lacks them
    let d = quintal_dir();
    let path = d.path().join("p.toml");
    std::fs::write(&path, pipeline_text("pad = { size = [300, 300] }")).unwrap();
    let p = pipeline::load(&path).unwrap();
    let pair = discover(&p.source())
        .unwrap()
        .pairs
        .into_iter()
        .find(|x| x.key == "datasetQuintal_001")
        .unwrap();
    let out = process_pair(&p, &p.stages, &pair, "train")
        .unwrap()
        .remove(0);
    let seen: BTreeSet<u16> = out.label.ids.iter().copied().collect();
    assert_eq!(
        seen,
        BTreeSet::from([8, 255]),
        "001 is all `muro` (8); padding must be ignore"
    );
    let pad_pixels = out.padding.unwrap().iter().filter(|&&b| b).count();
    assert_eq!(pad_pixels, 300 * 300 - 256 * 256);
}

#[test]
fn fit_keeps_aspect_and_centres() {
    let d = quintal_dir();
    let path = d.path().join("p.toml");
    std::fs::write(
        &path,
        pipeline_text("resize = { size = [200, 100], mode = \"fit\", filter = \"nearest\" }"),
    )
    .unwrap();
    let p = pipeline::load(&path).unwrap();
    let pair = discover(&p.source()).unwrap().pairs.remove(0);
    let out = process_pair(&p, &p.stages, &pair, "train")
        .unwrap()
        .remove(0);
    // 256x256 fits as 100x100 in the middle of 200x100: 50 columns of padding on each side
    let row: Vec<u16> = out.label.ids[..200].to_vec();
    assert!(row[..50].iter().all(|&v| v == 255) && row[150..].iter().all(|&v| v == 255));
    assert!(row[50..150].iter().all(|&v| v != 255));
}

#[test]
fn standardize_per_image_matches_the_gym_formula() {
    let d = quintal_dir();
    let path = d.path().join("p.toml");
    std::fs::write(
        &path,
        pipeline_text("standardize = { mode = \"per_image\" }"),
    )
    .unwrap();
    let p = pipeline::load(&path).unwrap();
    let pair = discover(&p.source()).unwrap().pairs.remove(0);
    let raw = process_pair(&p, &[], &pair, "train").unwrap().remove(0);
    let out = process_pair(&p, &p.stages, &pair, "train")
        .unwrap()
        .remove(0);
    let segprep::sample::Pixels::U8(x) = &raw.image.pixels else {
        panic!("u8 input")
    };
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let std = (x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n)
        .sqrt()
        .max(1.0 / (raw.image.pixel_count() as f64).sqrt());
    let segprep::sample::Pixels::F32(y) = &out.image.pixels else {
        panic!("f32 output")
    };
    for (a, b) in x.iter().zip(y) {
        assert!((((*a as f64 - mean) / std) as f32 - b).abs() < 1e-5);
    }
    let used = out.standardization.unwrap();
    assert!((used.mean - mean).abs() < 1e-9 && (used.std - std).abs() < 1e-9);
}

/// Every stage kind the pipeline file accepts, as serde names them when refusing an unknown one
/// (read from the enum itself, so a new variant appears here without anyone listing it).
fn every_stage_kind() -> Vec<String> {
    let text = pipeline_text("no_such_stage = {}");
    let err = pipeline::parse(std::path::Path::new("p.toml"), &text)
        .expect_err("an unknown stage is refused")
        .to_string();
    let expected = err
        .split("expected one of")
        .nth(1)
        .unwrap_or_else(|| panic!("no list of stages in: {err}"));
    let kinds: Vec<String> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect();
    assert!(kinds.len() >= 6, "{err}");
    kinds
}

#[test]
fn the_table_and_the_docs_hold_every_stage_kind() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let template = std::fs::read_to_string(repo.join("pipelines/template.toml")).unwrap();
    let reference = std::fs::read_to_string(repo.join("docs/pipeline.md")).unwrap();
    for kind in every_stage_kind() {
        let written = format!("{kind} = ");
        assert!(
            TABLE.iter().any(|(_, s)| s.starts_with(&written)),
            "stage `{kind}` has no row in this file's TABLE"
        );
        assert!(
            template.contains(&written),
            "stage `{kind}` is not shown in pipelines/template.toml"
        );
        assert!(
            reference.contains(&format!("`{kind}`")),
            "stage `{kind}` is not described in docs/pipeline.md"
        );
    }
}

/// `segprep apply` runs each stage's image path alone, on an image with no label: for every
/// stage that runs at inference, that path gives the very pixels (and the geometry it predicts)
/// of the training sample made with image and label together.
#[test]
fn the_image_path_alone_equals_the_training_image() {
    use segprep::sample::ImagePart;
    use segprep::stages::AtInference;
    let d = quintal_dir();
    let path = d.path().join("p.toml");
    let mut checked = BTreeSet::new();
    for (name, stage) in TABLE {
        std::fs::write(&path, pipeline_text(stage)).unwrap();
        let p = pipeline::load(&path).unwrap();
        let s = &p.stages[0];
        if s.at_inference() == AtInference::Skipped {
            continue;
        }
        for pair in discover(&p.source()).unwrap().pairs.iter().take(2) {
            let mut input = process_pair(&p, &[], pair, "train").unwrap().remove(0);
            let trained = process_pair(&p, &p.stages, pair, "train")
                .unwrap()
                .remove(0);
            let steps = s.geometry(input.image.width, input.image.height).unwrap();
            let predicted = steps
                .last()
                .map_or([input.image.width, input.image.height], |g| g.to_size());
            let mut standardization = None;
            let size = (input.image.width, input.image.height);
            let part = ImagePart {
                image: &mut input.image,
                standardization: &mut standardization,
            };
            s.apply_image(&pair.key, size, part).unwrap();
            assert_eq!(input.image, trained.image, "{name}: image path alone");
            assert_eq!(standardization, trained.standardization, "{name}");
            assert_eq!(
                predicted,
                [trained.image.width, trained.image.height],
                "{name}: geometry"
            );
        }
        checked.insert(s.name());
    }
    assert_eq!(
        checked,
        BTreeSet::from(["pad", "rescale", "resize", "standardize"]),
        "the stages that run at inference"
    );
}
