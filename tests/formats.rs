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
    ("dsb2018", &[("train", 2)]),
    ("multiband", &[("train", 3), ("val", 1)]),
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
