//! Input formats end to end: every example pipeline builds and checks clean on its fixture, and
//! the path rules of listings written on other machines (pair lists, MVTec dictionaries) hold.
//! Pixel values are compared with numpy in tests/python/test_formats.py.
mod common;
use common::*;
use std::path::Path;

/// (example pipeline, samples per split).
const EXAMPLES: &[(&str, &[(&str, u64)])] = &[
    ("quickstart", &[("train", 4), ("val", 2)]),
    ("cityscapes", &[("test", 2), ("train", 1), ("val", 1)]),
    ("voc", &[("train", 1)]),
    ("camvid", &[("test", 2), ("train", 1), ("val", 1)]),
    ("ade20k", &[("train", 1), ("val", 1)]),
    ("mvtec_ad", &[("default", 3)]),
    ("mvtec_dlt", &[("test", 1), ("train", 5), ("val", 2)]),
    ("dsb2018", &[("train", 6)]),
    ("multiband", &[("train", 9), ("val", 1)]),
];

#[test]
fn every_example_pipeline_builds_and_checks_clean() {
    let listed: Vec<String> = std::fs::read_dir(repo().join("pipelines"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml") && n != "template.toml")
        .collect();
    assert_eq!(
        listed.len(),
        EXAMPLES.len(),
        "an example pipeline without a test: {listed:?}"
    );
    for (name, splits) in EXAMPLES {
        let pipeline = repo().join("pipelines").join(format!("{name}.toml"));
        let out = tempfile::tempdir().unwrap();
        let p = pipeline.to_str().unwrap();
        let r = run(
            &repo(),
            &["build", p, "--out", out.path().to_str().unwrap()],
        );
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let index = json(out.path().join("index.json"));
        for (split, n) in *splits {
            assert_eq!(index["splits"][split]["samples"], *n, "{name} {split}");
        }
        let r = run(&repo(), &["check", p]);
        assert_eq!(r.code, 0, "{name}: check\n{}{}", r.stdout, r.stderr);
    }
}

fn camvid_copy(dir: &Path) {
    copy_dir(
        &repo().join("fixtures/datumaro/camvid_dataset"),
        &dir.join("cv"),
    );
}

const CAMVID_LABELS: &str = "[labels]\nformat = \"rgb\"\nunknown = \"ignore\"\nclasses = [{ id = 0, name = \"Road\", color = [128, 64, 128] }]\n[output]\ndir = \"out\"\n";

#[test]
fn pair_lists_from_another_machine_need_and_take_a_path_prefix() {
    let d = tempfile::tempdir().unwrap();
    camvid_copy(d.path());
    let list = d.path().join("cv/train.txt");
    let text = std::fs::read_to_string(&list)
        .unwrap()
        .replace("/train", "/SegNet/CamVid/train");
    std::fs::write(&list, text).unwrap();
    let input = "[input]\nimages = \"cv/train.txt\"\n";
    std::fs::write(d.path().join("p.toml"), format!("{input}{CAMVID_LABELS}")).unwrap();
    let r = run(d.path(), &["build", "p.toml"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("SegNet/CamVid/train/0001TP_006690.png"),
        "{}",
        r.stderr
    );

    let prefixed = format!("{input}path_prefix = {{ from = \"/SegNet/CamVid\", to = \".\" }}\n");
    std::fs::write(
        d.path().join("p.toml"),
        format!("{prefixed}{CAMVID_LABELS}"),
    )
    .unwrap();
    let r = run(d.path(), &["build", "p.toml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        json(d.path().join("out/index.json"))["splits"]["train"]["samples"],
        1
    );
}

#[test]
fn mvtec_dictionary_windows_folders_follow_path_prefix() {
    let d = tempfile::tempdir().unwrap();
    copy_dir(
        &repo().join("fixtures/mvtec_dlt"),
        &d.path().join("export/pills"),
    );
    // the dictionary sits one folder above its data, so the default rule (beside it) cannot work
    std::fs::rename(
        d.path().join("export/pills/pill_bags.json"),
        d.path().join("export/pill_bags.json"),
    )
    .unwrap();
    let head = "[input]\nimages = \"export/pill_bags.json\"\n";
    let rest = "[labels]\nformat = \"mvtec\"\n[output]\ndir = \"out\"\n";
    std::fs::write(d.path().join("p.toml"), format!("{head}{rest}")).unwrap();
    let r = run(d.path(), &["build", "p.toml"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("image_dir") && r.stderr.contains("path_prefix"),
        "{}",
        r.stderr
    );

    let prefix = r"path_prefix = { from = 'C:\Users\ana\Documents\MVTec\pill_bags', to = 'pills' }";
    std::fs::write(d.path().join("p.toml"), format!("{head}{prefix}\n{rest}")).unwrap();
    let r = run(d.path(), &["build", "p.toml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let index = json(d.path().join("out/index.json"));
    let ids: Vec<u64> = index["input_classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [0, 3, 7], "sparse ids are kept");
}

#[test]
fn split_from_folder_needs_folders() {
    let d = quintal_dir();
    let p = quintal_pipeline(
        d.path(),
        "[split]\nfrom = \"folder\"\n[output]\ndir = \"out\"\n",
    );
    let r = run(d.path(), &["build", p]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not in a folder"), "{}", r.stderr);
}

#[test]
fn dataset_formats_refuse_a_label_folder_and_foreign_classes() {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("fixtures/dsb2018"), &d.path().join("dsb"));
    let write = |labels: &str| {
        let text = format!("[input]\nimages = \"dsb\"\n{labels}[labels]\nformat = \"instances\"\nclasses = [\"a\", \"b\", \"c\"]\n[output]\ndir = \"out\"\n");
        std::fs::write(d.path().join("p.toml"), text).unwrap();
        run(d.path(), &["build", "p.toml"])
    };
    let r = write("labels = \"dsb\"\n");
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("exactly 2 names") && r.stderr.contains("remove `labels`"),
        "{}",
        r.stderr
    );
}

#[test]
fn mvtec_ad_single_defect_class() {
    let d = tempfile::tempdir().unwrap();
    copy_dir(
        &repo().join("fixtures/datumaro/mvtec_dataset/category_0"),
        &d.path().join("ad"),
    );
    let text = "[input]\nimages = \"ad\"\n[labels]\nformat = \"mvtec_ad\"\ngood = [\"label_0\"]\ndefects = \"single\"\n[output]\ndir = \"out\"\n";
    std::fs::write(d.path().join("p.toml"), text).unwrap();
    assert_eq!(run(d.path(), &["build", "p.toml"]).code, 0);
    let stats = json(d.path().join("out/stats.json"));
    let classes = &stats["splits"]["default"]["classes"];
    assert_eq!(classes[1]["name"], "defect");
    assert_eq!(
        classes[1]["pixels"], 32,
        "both defect types' 16 pixels in one class"
    );
    assert_eq!(classes.as_array().unwrap().len(), 2);
}

#[test]
fn instance_folders_give_classes_and_first_wins_on_overlap() {
    let d = tempfile::tempdir().unwrap();
    let sample = d.path().join("ds/s1");
    for sub in ["images", "nuclei", "cells"] {
        std::fs::create_dir_all(sample.join(sub)).unwrap();
    }
    write_rgb(&sample.join("images/s1.png"), 4, 2, |_, _| [9, 9, 9]);
    write_gray8(&sample.join("nuclei/a.png"), 4, 2, |x, _| {
        if x < 2 {
            255
        } else {
            0
        }
    });
    write_gray8(&sample.join("cells/b.png"), 4, 2, |x, _| {
        if x < 3 {
            255
        } else {
            0
        }
    });
    let text = |overlap: &str| {
        format!("[input]\nimages = \"ds\"\n[labels]\nformat = \"instances\"\nmask_folders = [\"nuclei\", \"cells\"]\noverlap = \"{overlap}\"\n[output]\ndir = \"out_{overlap}\"\n")
    };
    std::fs::write(d.path().join("p.toml"), text("first")).unwrap();
    let r = run(d.path(), &["build", "p.toml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (_, _, labels) = npz_entry(
        &d.path().join("out_first/train-00000-of-00001.npz"),
        "label.npy",
    );
    // nuclei (class 1) came first and keeps its pixels; cells (2) get only the third column
    assert_eq!(labels, [1, 1, 2, 0, 1, 1, 2, 0]);
    let index = json(d.path().join("out_first/index.json"));
    let names: Vec<&str> = index["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["background", "nuclei", "cells"]);
    std::fs::write(d.path().join("p.toml"), text("error")).unwrap();
    let r = run(d.path(), &["build", "p.toml"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("b.png") && r.stderr.contains("a.png"),
        "{}",
        r.stderr
    );
}

#[test]
fn options_for_another_format_are_refused() {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), "[output]\ndir = \"out\"\n");
    let text = std::fs::read_to_string(d.path().join(p)).unwrap().replace(
        "format = \"rgb\"",
        "format = \"rgb\"\noverlap = \"first\"\ngood = [\"ok\"]",
    );
    std::fs::write(d.path().join(p), text).unwrap();
    let r = run(d.path(), &["build", p]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("overlap does not apply") && r.stderr.contains("good does not apply"),
        "{}",
        r.stderr
    );
}
