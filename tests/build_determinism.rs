//! Same pipeline and inputs → byte-identical outputs, whatever the thread count or run.
mod common;
use common::*;

const STAGES: &str = r#"
[[stage]]
resize = { size = [200, 150], mode = "fit", filter = "lanczos3" }
[[stage]]
pad = { multiple_of = 32 }
[[stage]]
standardize = { mode = "per_image" }
[split]
train = 0.5
val = 0.5
seed = 3
[output]
dir = "out"
shard_samples = 2
"#;

#[test]
fn one_and_two_threads_give_identical_bytes() {
    threads_give_identical_bytes(STAGES);
}

#[test]
fn one_and_two_threads_give_identical_parquet() {
    let tensor = STAGES.replace(
        "shard_samples = 2",
        "shard_samples = 2\nformat = \"parquet\"\nlayout = \"tensor\"",
    );
    threads_give_identical_bytes(&tensor);
    let hf = STAGES
        .replace("[[stage]]\nstandardize = { mode = \"per_image\" }\n", "")
        .replace(
            "shard_samples = 2",
            "shard_samples = 2\nformat = \"parquet\"\nrow_group_bytes = 100000",
        );
    threads_give_identical_bytes(&hf);
}

fn threads_give_identical_bytes(stages: &str) {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), stages);
    let a = run(d.path(), &["build", p, "--threads", "1", "--out", "a"]);
    assert_eq!(a.code, 0, "{}", a.stderr);
    let b = run(d.path(), &["build", p, "--threads", "2", "--out", "b"]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let (sa, sb) = (snapshot(&d.path().join("a")), snapshot(&d.path().join("b")));
    assert!(
        sa.len() >= 5,
        "expected several shards, got {:?}",
        sa.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert_eq!(
        sa.iter().map(|f| &f.0).collect::<Vec<_>>(),
        sb.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((name, x), (_, y)) in sa.iter().zip(&sb) {
        assert!(x == y, "{name} differs between --threads 1 and --threads 2");
    }
}

#[test]
fn rerun_resumes_changed_pipeline_needs_force_and_force_keeps_foreign_files() {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), STAGES);
    assert_eq!(run(d.path(), &["build", p]).code, 0);
    let first = snapshot(&d.path().join("out"));
    // the same pipeline again: every shard verified and kept, nothing changes
    let again = run(d.path(), &["build", p]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stderr.contains("resumed: 4 shard(s)"),
        "{}",
        again.stderr
    );
    assert_eq!(snapshot(&d.path().join("out")), first);
    // a changed pipeline must not mix with the old shards
    let changed = quintal_pipeline(d.path(), &STAGES.replace("seed = 3", "seed = 4"));
    let refused = run(d.path(), &["build", changed]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("different pipeline") && refused.stderr.contains("--force"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        snapshot(&d.path().join("out")),
        first,
        "a refused build must not touch the folder"
    );
    std::fs::write(d.path().join("out/notes.txt"), "mine").unwrap();
    let forced = run(d.path(), &["build", changed, "--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(
        d.path().join("out/notes.txt").exists(),
        "--force removed a file segprep did not write"
    );
    assert_eq!(run(d.path(), &["build", changed, "--out", "fresh"]).code, 0);
    let mut replaced = snapshot(&d.path().join("out"));
    replaced.retain(|(n, _)| n != "notes.txt");
    assert_eq!(
        replaced,
        snapshot(&d.path().join("fresh")),
        "--force must give what a fresh build gives"
    );
}

#[test]
fn split_is_keyed_by_name_so_removing_a_file_keeps_the_others() {
    let d = quintal_dir();
    let p = quintal_pipeline(
        d.path(),
        "[split]\ntrain = 0.5\nval = 0.5\nseed = 11\n[output]\ndir = \"out\"\n",
    );
    let keys_of = |dir: &str, split: &str| -> Vec<String> {
        let index = json(d.path().join(dir).join("index.json"));
        let file = index["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["split"] == split)
            .unwrap()["file"]
            .as_str()
            .unwrap()
            .to_string();
        npz_keys(&d.path().join(dir).join(file))
    };
    assert_eq!(run(d.path(), &["build", p, "--out", "a"]).code, 0);
    let train_a = keys_of("a", "train");
    assert_eq!(train_a.len(), 3);
    // the same seed on a reversed file system order cannot matter: only names do
    std::fs::remove_file(d.path().join("q/stills/datasetQuintal_001.png")).unwrap();
    std::fs::remove_file(d.path().join("q/labelsRGB/datasetQuintal_001_L.png")).unwrap();
    assert_eq!(run(d.path(), &["build", p, "--out", "b"]).code, 0);
    let train_b = keys_of("b", "train");
    let kept: Vec<&String> = train_a
        .iter()
        .filter(|k| k.as_str() != "datasetQuintal_001")
        .collect();
    let moved = kept.iter().filter(|k| !train_b.contains(k)).count();
    assert!(
        moved <= 1,
        "removing one file moved {moved} samples out of train: {train_a:?} -> {train_b:?}"
    );
}

#[test]
fn shard_bytes_sets_samples_per_shard() {
    let d = quintal_dir();
    // 256x256 RGB u8 + u8 label = 262144 bytes a sample: 600000 bytes hold 2 samples
    let p = quintal_pipeline(d.path(), "[output]\ndir = \"out\"\nshard_bytes = 600000\n");
    let r = run(d.path(), &["build", p]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let index = json(d.path().join("out/index.json"));
    let files: Vec<(String, u64)> = index["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["file"].as_str().unwrap().to_string(),
                f["samples"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        files,
        vec![
            ("train-00000-of-00003.npz".to_string(), 2),
            ("train-00001-of-00003.npz".to_string(), 2),
            ("train-00002-of-00003.npz".to_string(), 2)
        ]
    );
}

#[test]
fn gym_layout_needs_contiguous_ids() {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), "[[stage]]\nremap = { map = { areia = \"ignore\" } }\n[output]\ndir = \"out\"\nlayout = \"gym\"\n");
    let r = run(d.path(), &["build", p]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("compact = true"), "{}", r.stderr);
}

#[test]
fn resuming_from_another_working_folder_is_the_same_build() {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), "[output]\ndir = \"out\"\n");
    assert_eq!(run(d.path(), &["build", p]).code, 0);
    let parent = d.path().parent().unwrap();
    let name = d.path().file_name().unwrap().to_string_lossy().to_string();
    let r = run(parent, &["build", &format!("{name}/{p}")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("resumed: 1 shard(s)"), "{}", r.stderr);
}

/// NPZ images stream to the file when every planned sample will come (`on_error = "fail"`) and
/// shards are held whole when some may be skipped: both ways must give the same shard bytes.
#[test]
fn streamed_and_held_npz_shards_are_identical() {
    let d = quintal_dir();
    let augmented = STAGES.replace(
        "[split]",
        "[[stage]]\naugment = { copies = 2, seed = 5, hflip = 0.5, rotate = [-10, 10] }\n[split]",
    );
    let streamed = augmented.replace("dir = \"out\"", "dir = \"streamed\"");
    let held = augmented.replace("[output]", "[run]\non_error = \"skip\"\n[output]");
    let held = held.replace("dir = \"out\"", "dir = \"held\"");
    for rest in [&streamed, &held] {
        let p = quintal_pipeline(d.path(), rest);
        let r = run(d.path(), &["build", p, "--threads", "2"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let shards = |dir: &str| -> Vec<(String, Vec<u8>)> {
        let all = snapshot(&d.path().join(dir));
        all.into_iter().filter(|f| f.0.ends_with(".npz")).collect()
    };
    let (a, b) = (shards("streamed"), shards("held"));
    assert!(a.len() >= 5, "expected several shards, got {}", a.len());
    assert_eq!(a.len(), b.len());
    for ((name, x), (other, y)) in a.iter().zip(&b) {
        assert_eq!(name, other);
        assert!(x == y, "{name}: streamed and held shards differ");
    }
}
