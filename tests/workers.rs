//! Past one machine: N worker processes into one folder, then `segprep merge`, must equal a build
//! by one process; reruns, duplicates and mismatched workers must leave the dataset correct.
mod common;
use common::*;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

/// Resize, a random augment (so every worker must draw the same copies) and two splits.
const STAGES: &str = "[[stage]]\nresize = { size = [160, 120], mode = \"fill\" }\n[[stage]]\naugment = { copies = 1, hflip = 0.5, rotate = [-20, 20], brightness = [-0.1, 0.1] }\n[split]\ntrain = 0.7\nval = 0.3\nseed = 9\n";

fn pipeline(d: &Path, extra: &str) -> &'static str {
    quintal_pipeline(d, &format!("{STAGES}{extra}[output]\ndir = \"single\"\n"))
}

/// `segprep build` as a worker: `how` gives the identity (flag or scheduler variables).
fn worker(d: &Path, p: &str, out: &str, how: &[(&str, &str)], flags: &[&str]) -> Child {
    let mut args = vec![
        "build",
        p,
        "--threads",
        "1",
        "--num-shards",
        "7",
        "--out",
        out,
    ];
    args.extend_from_slice(flags);
    let mut c = command(d, &args);
    for (k, v) in how {
        c.env(k, v);
    }
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> Run {
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `(train 4, val 2)` in a worker's summary line, as (split, samples).
fn split_counts(stdout: &str) -> Vec<(String, u64)> {
    let inside = stdout
        .split_once(" samples (")
        .unwrap()
        .1
        .split_once(')')
        .unwrap()
        .0;
    inside
        .split(", ")
        .map(|part| {
            let (split, n) = part.rsplit_once(' ').unwrap();
            (split.to_string(), n.parse().unwrap())
        })
        .collect()
}

fn assert_same(got: &[(String, Vec<u8>)], want: &[(String, Vec<u8>)]) {
    let names = |s: &[(String, Vec<u8>)]| s.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(got), names(want));
    for ((name, a), (_, b)) in got.iter().zip(want) {
        assert!(a == b, "{name} differs from the single-process build");
    }
}

fn single_build(d: &Path, p: &str) -> Vec<(String, Vec<u8>)> {
    let r = run(d, &["build", p, "--num-shards", "7", "--threads", "2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    snapshot(&d.join("single"))
}

/// One worker from each identity source the schedulers use.
fn four_identities() -> [Vec<(&'static str, &'static str)>; 4] {
    [
        vec![("SEGPREP_WORKER_INDEX", "0"), ("SEGPREP_WORKER_COUNT", "4")],
        vec![
            ("SLURM_ARRAY_TASK_ID", "11"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_MAX", "13"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ],
        vec![
            ("AWS_BATCH_JOB_ARRAY_INDEX", "2"),
            ("AWS_BATCH_JOB_ARRAY_SIZE", "4"),
        ],
        vec![("BATCH_TASK_INDEX", "3"), ("BATCH_TASK_COUNT", "4")],
    ]
}

#[test]
fn four_workers_and_merge_equal_one_process() {
    let d = many_pairs();
    let p = pipeline(d.path(), "");
    let want = single_build(d.path(), p);
    let children: Vec<Child> = four_identities()
        .iter()
        .map(|how| worker(d.path(), p, "multi", how, &[]))
        .collect();
    let mut reported: std::collections::BTreeMap<String, u64> = Default::default();
    for (i, child) in children.into_iter().enumerate() {
        let r = finish(child);
        assert_eq!(r.code, 0, "worker {i}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("worker {i}/4 (from ")),
            "{}",
            r.stderr
        );
        assert!(r.stdout.contains("segprep merge"), "{}", r.stdout);
        for (split, n) in split_counts(&r.stdout) {
            *reported.entry(split).or_default() += n;
        }
    }
    let multi = d.path().join("multi");
    assert!(
        !build_file(&multi.join("index.json")).exists(),
        "workers leave the index to merge"
    );
    let r = run(d.path(), &["merge", "multi"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("merged 7 shards"), "{}", r.stdout);
    // what each worker said it built adds up, split by split, to the merged dataset
    let index = json(multi.join("index.json"));
    let merged: std::collections::BTreeMap<String, u64> = index["splits"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["samples"].as_u64().unwrap()))
        .collect();
    assert_eq!(reported, merged);
    assert_same(&snapshot(&multi), &want);
    // a Kubernetes Indexed Job gives the index only; the count comes from --workers
    let r = finish(worker(
        d.path(),
        p,
        "multi",
        &[("JOB_COMPLETION_INDEX", "1")],
        &["--workers", "4"],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("JOB_COMPLETION_INDEX, --workers"),
        "{}",
        r.stderr
    );
    assert_same(&snapshot(&multi), &want);
}

#[test]
fn merge_lists_missing_shards_and_a_rerun_worker_fills_them_without_touching_others() {
    let d = many_pairs();
    // one sample per shard: a kill lands mid-worker
    let p = pipeline(d.path(), "");
    let want = single_build(d.path(), p);
    for i in [0, 2] {
        let r = finish(worker(
            d.path(),
            p,
            "multi",
            &[],
            &["--worker", &format!("{i}/3")],
        ));
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let r = run(d.path(), &["merge", "multi"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    // worker 1 of 3 owns shards 1 and 4
    assert!(
        r.stderr.contains("2 of 7 logical shards are missing"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("1 (train)") && r.stderr.contains("4 (train)"),
        "{}",
        r.stderr
    );
    assert!(!build_file(&d.path().join("multi/index.json")).exists());
    let before = modified_times(&d.path().join("multi"));
    // worker 1 killed part way, then run again with the same index
    let mut child = worker(d.path(), p, "multi", &[], &["--worker", "1/3"]);
    std::thread::sleep(Duration::from_millis(300));
    child.kill().ok();
    child.wait().unwrap();
    let r = finish(worker(d.path(), p, "multi", &[], &["--worker", "1/3"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let after = modified_times(&d.path().join("multi"));
    for (name, time) in &before {
        assert_eq!(
            after.get(name),
            Some(time),
            "{name} was rewritten by another worker"
        );
    }
    let r = run(d.path(), &["merge", "multi"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_same(&snapshot(&d.path().join("multi")), &want);
}

/// Shard files and shard records with their modification times.
fn modified_times(dir: &Path) -> std::collections::BTreeMap<String, std::time::SystemTime> {
    let shards = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "npz"));
    let records = std::fs::read_dir(dir.join(".segprep/records"))
        .unwrap()
        .flatten();
    shards
        .chain(records)
        .map(|e| {
            (
                e.path().display().to_string(),
                e.metadata().unwrap().modified().unwrap(),
            )
        })
        .collect()
}

#[test]
fn duplicate_workers_with_one_index_leave_a_correct_dataset() {
    let d = many_pairs();
    let p = pipeline(d.path(), "");
    let want = single_build(d.path(), p);
    let children: Vec<Child> = ["1/2", "1/2", "0/2", "1/2"]
        .iter()
        .map(|w| worker(d.path(), p, "multi", &[], &["--worker", w]))
        .collect();
    for child in children {
        let r = finish(child);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let r = run(d.path(), &["merge", "multi"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got = snapshot(&d.path().join("multi"));
    assert!(got.iter().all(|(name, _)| !name.ends_with(".partial")));
    assert_same(&got, &want);
}

#[test]
fn a_worker_with_another_plan_is_refused() {
    let d = many_pairs();
    let p = pipeline(d.path(), "");
    let r = finish(worker(d.path(), p, "multi", &[], &["--worker", "0/2"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // another pipeline file
    let other = std::fs::read_to_string(d.path().join(p))
        .unwrap()
        .replace("[160, 120]", "[150, 120]");
    std::fs::write(d.path().join("other.toml"), other).unwrap();
    let r = finish(worker(
        d.path(),
        "other.toml",
        "multi",
        &[],
        &["--worker", "1/2"],
    ));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("pipeline hash") && r.stderr.contains("differs from the one recorded"),
        "{}",
        r.stderr
    );
    // another shard count
    let r = run(
        d.path(),
        &[
            "build",
            p,
            "--num-shards",
            "6",
            "--worker",
            "1/2",
            "--out",
            "multi",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("num_shards 6 (recorded 7)"),
        "{}",
        r.stderr
    );
    // the same names, but one file is another (older, smaller) copy: refused, not mixed in
    let stills = d.path().join("q/stills");
    let original = std::fs::read(stills.join("datasetQuintal_003.png")).unwrap();
    std::fs::copy(
        stills.join("datasetQuintal_027.png"),
        stills.join("datasetQuintal_003.png"),
    )
    .unwrap();
    let r = finish(worker(d.path(), p, "multi", &[], &["--worker", "1/2"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("input sizes hash"), "{}", r.stderr);
    std::fs::write(stills.join("datasetQuintal_003.png"), original).unwrap();
    // other inputs: one pair fewer
    std::fs::remove_file(d.path().join("q/stills/bQuintal_001.png")).unwrap();
    std::fs::remove_file(d.path().join("q/labelsRGB/bQuintal_001_L.png")).unwrap();
    let r = finish(worker(d.path(), p, "multi", &[], &["--worker", "1/2"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("input-list hash"), "{}", r.stderr);
    // workers need a fixed shard count, and --force would delete other workers' shards
    let r = run(d.path(), &["build", p, "--worker", "1/2", "--out", "fresh"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--num-shards"), "{}", r.stderr);
    let r = run(
        d.path(),
        &[
            "build",
            p,
            "--num-shards",
            "7",
            "--worker",
            "1/2",
            "--out",
            "multi",
            "--force",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = run(
        d.path(),
        &["build", p, "--num-shards", "99", "--out", "fresh"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("between 2 and 17"), "{}", r.stderr);
}

#[test]
fn dataset_standardization_measured_by_worker_stats_passes_matches_one_process() {
    let d = many_pairs();
    let p = pipeline(
        d.path(),
        "[[stage]]\nstandardize = { mode = \"dataset\" }\n",
    );
    let want = single_build(d.path(), p);
    let build = |i: usize| {
        finish(worker(
            d.path(),
            p,
            "multi",
            &[],
            &["--worker", &format!("{i}/3")],
        ))
    };
    let r = build(0);
    assert_eq!(r.code, 2, "a build before the stats pass: {}", r.stderr);
    assert!(
        r.stderr.contains("segprep stats PIPELINE --worker"),
        "{}",
        r.stderr
    );
    for i in 0..3 {
        let w = format!("{i}/3");
        let args = [
            "stats",
            p,
            "--worker",
            &w,
            "--num-shards",
            "7",
            "--build-dir",
            "multi",
            "-j",
            "1",
        ];
        let r = run(d.path(), &args);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    for i in 0..3 {
        let r = build(i);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let r = run(d.path(), &["merge", "multi"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got: Vec<_> = snapshot(&d.path().join("multi"))
        .into_iter()
        .filter(|(name, _)| !name.starts_with(".segprep/moments"))
        .collect();
    assert_same(&got, &want);
}
