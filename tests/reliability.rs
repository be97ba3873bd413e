//! Nothing lost, nothing silent: kill-and-resume, the error policy, the lock, write failures.
mod common;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The documented exit status of an output that cannot be written.
const EXIT_OUTPUT: i32 = 3;

const STAGES: &str = "[[stage]]\nresize = { size = [320, 240], mode = \"fill\" }\n[split]\ntrain = 0.7\nval = 0.3\nseed = 9\n";

/// Kill times spread over `build` (how long an uninterrupted build took here), from 3% to 93% of
/// it, so the kills land mid-build however fast the machine or the build is. A small
/// deterministic generator picks them, so the trials are the same on every run.
fn delays(n: usize, build: Duration) -> Vec<Duration> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            build.mul_f64(0.03 + (x % 900) as f64 / 1000.0)
        })
        .collect()
}

#[test]
fn killed_builds_resume_to_byte_identical_output() {
    kill_and_resume("", 10);
}

#[test]
fn killed_parquet_builds_resume_to_byte_identical_output() {
    kill_and_resume("format = \"parquet\"\n", 6);
}

fn kill_and_resume(output: &str, trials: usize) {
    let d = many_pairs();
    let p = quintal_pipeline(
        d.path(),
        &format!("{STAGES}[output]\ndir = \"clean\"\nshard_samples = 1\n{output}"),
    );
    let started = std::time::Instant::now();
    let clean = run(d.path(), &["build", p, "--threads", "2"]);
    let build = started.elapsed();
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    let want = snapshot(&d.path().join("clean"));
    let mut interrupted = 0;
    for (trial, mut delay) in delays(trials, build).into_iter().enumerate() {
        let out = format!("trial{trial}");
        // a build that finished before its kill (the machine got faster than when the clean build
        // was timed) is tried again from scratch with half the delay, a few times at most
        for attempt in 0..4 {
            let _ = std::fs::remove_dir_all(d.path().join(&out));
            let mut child = command(d.path(), &["build", p, "--threads", "2", "--out", &out])
                .spawn()
                .unwrap();
            std::thread::sleep(delay);
            let finished = child.try_wait().unwrap().is_some();
            child.kill().ok();
            child.wait().unwrap();
            let killed = !finished && !build_file(&d.path().join(&out).join("index.json")).exists();
            interrupted += usize::from(killed);
            if killed || attempt == 3 {
                break;
            }
            delay /= 2;
        }
        let resumed = run(d.path(), &["build", p, "--threads", "2", "--out", &out]);
        assert_eq!(
            resumed.code, 0,
            "trial {trial} ({delay:?}): {}",
            resumed.stderr
        );
        let got = snapshot(&d.path().join(&out));
        let names = |s: &[(String, Vec<u8>)]| s.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&got), names(&want), "trial {trial} ({delay:?})");
        for ((name, a), (_, b)) in got.iter().zip(&want) {
            assert!(
                a == b,
                "trial {trial} ({delay:?}): {name} differs from the uninterrupted build"
            );
        }
    }
    assert!(
        interrupted * 10 >= trials * 7,
        "only {interrupted} of {trials} kills landed mid-build; the trials test little"
    );
}

#[test]
fn skip_policy_lists_every_bad_input_and_completes() {
    let d = quintal_dir();
    let q = d.path().join("q");
    let truncate = |path: &Path| {
        let bytes = std::fs::read(path).unwrap();
        std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
    };
    truncate(&q.join("stills/datasetQuintal_001.png"));
    std::fs::write(q.join("labelsRGB/datasetQuintal_003_L.png"), b"not a png").unwrap();
    write_rgb(
        &q.join("labelsRGB/datasetQuintal_027_L.png"),
        256,
        256,
        |_, _| [1, 2, 3],
    ); // unknown colour
    write_rgb(
        &q.join("labelsRGB/datasetQuintal_038_L.png"),
        128,
        256,
        |_, _| [255, 233, 87],
    ); // wrong size
    let p = quintal_pipeline(
        d.path(),
        "[run]\non_error = \"skip\"\n[output]\ndir = \"out\"\n",
    );
    let r = run(d.path(), &["build", p]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("4 sample(s) failed and were left out"),
        "{}",
        r.stderr
    );
    let errors = std::fs::read_to_string(build_file(&d.path().join("out/errors.jsonl"))).unwrap();
    let lines: Vec<serde_json::Value> = errors
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["file"].as_str().unwrap().to_string(),
                l["stage"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = [
        ("datasetQuintal_001.png", "decode"),
        ("datasetQuintal_003_L.png", "decode"),
        ("datasetQuintal_027_L.png", "decode"),
        ("datasetQuintal_038_L.png", "pair"),
    ];
    assert_eq!(seen.len(), 4, "{errors}");
    for ((file, stage), (want_file, want_stage)) in seen.iter().zip(expect) {
        assert!(
            file.ends_with(want_file) && stage == want_stage,
            "{file} [{stage}], wanted {want_file} [{want_stage}]"
        );
    }
    let index = json(d.path().join("out/index.json"));
    assert_eq!(index["skipped_samples"], 4);
    assert_eq!(index["splits"]["train"]["samples"], 2);
    let stats = json(d.path().join("out/stats.json"));
    assert_eq!(stats["splits"]["train"]["samples"], 2);
    let (_, shape, _) = npz_entry(&d.path().join("out/train-00000-of-00001.npz"), "label.npy");
    assert_eq!(shape, vec![2, 256, 256]);
    // max_errors: the run stops once more than that many failed
    let p = quintal_pipeline(
        d.path(),
        "[run]\non_error = \"skip\"\nmax_errors = 2\n[output]\ndir = \"out2\"\n",
    );
    let r = run(d.path(), &["build", p]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("max_errors = 2"), "{}", r.stderr);
}

#[test]
fn a_live_lock_refuses_a_second_build_and_a_stale_one_is_taken_over() {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), "[output]\ndir = \"out\"\n");
    std::fs::create_dir_all(d.path().join("out/.segprep")).unwrap();
    let mut holder = Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(d.path().join("out/.segprep/lock"), holder.id().to_string()).unwrap();
    std::fs::write(d.path().join("out/.segprep/plan.json"), "{}").unwrap();
    // --force does not take a live lock either, and touches nothing
    let forced = run(d.path(), &["build", p, "--force"]);
    assert_eq!(forced.code, 2, "{}", forced.stderr);
    assert!(d.path().join("out/.segprep/plan.json").exists());
    let r = run(d.path(), &["build", p]);
    holder.kill().ok();
    holder.wait().unwrap();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("pid {}", holder.id())),
        "{}",
        r.stderr
    );
    // the holder is gone now: its lock is stale
    let r = run(d.path(), &["build", p]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !d.path().join("out/.segprep/lock").exists(),
        "the lock is released at the end"
    );
}

/// Two builds started together into one new folder: one builds, the other is refused with the
/// lock's message (never a stray I/O error), and the folder holds one whole build.
#[test]
fn two_builds_started_together_one_wins_and_the_other_is_told_why() {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), "[output]\ndir = \"out\"\n");
    let want = {
        assert_eq!(run(d.path(), &["build", p, "--out", "alone"]).code, 0);
        std::fs::read(d.path().join("alone/index.json")).unwrap()
    };
    for trial in 0..12 {
        let out = format!("race{trial}");
        let args = ["build", p, "--out", out.as_str()];
        let mut a = command(d.path(), &args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut b = command(d.path(), &args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (ra, rb) = (a.wait().unwrap(), b.wait().unwrap());
        let stderr = |c: &mut std::process::Child| {
            let mut s = String::new();
            std::io::Read::read_to_string(c.stderr.as_mut().unwrap(), &mut s).unwrap();
            s
        };
        let (ea, eb) = (stderr(&mut a), stderr(&mut b));
        let codes = (ra.code(), rb.code());
        let loser = match codes {
            (Some(0), Some(2)) => &eb,
            (Some(2), Some(0)) => &ea,
            // one finished before the other started: the second resumed the whole build
            (Some(0), Some(0)) => {
                assert!(
                    ea.contains("resumed") || eb.contains("resumed"),
                    "{ea}\n{eb}"
                );
                continue;
            }
            _ => panic!("trial {trial}: exit codes {codes:?}\n{ea}\n{eb}"),
        };
        assert!(
            loser.contains("another segprep build"),
            "trial {trial}: {loser}"
        );
        let index = std::fs::read(d.path().join(&out).join("index.json")).unwrap();
        assert_eq!(index, want, "trial {trial}: the winner's build is whole");
        assert!(!d.path().join(&out).join(".segprep/lock").exists());
    }
}

/// An output path that is a file: an output problem (exit 3), and the file is left as it was.
#[test]
fn an_output_path_that_is_a_file_is_an_output_error() {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), "[output]\ndir = \"out\"\n");
    std::fs::write(d.path().join("out"), "not a folder").unwrap();
    let r = run(d.path(), &["build", p]);
    assert_eq!(r.code, EXIT_OUTPUT, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot write in the output folder"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(d.path().join("out")).unwrap(),
        "not a folder"
    );
}

#[test]
fn file_size_limit_is_a_clear_error_and_no_shard_passes_as_whole() {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), "[output]\ndir = \"out\"\n");
    let r = Command::new("bash")
        .args(["-c", &format!("ulimit -f 200; exec {} build {p}", bin())])
        .current_dir(d.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(EXIT_OUTPUT), "{stderr}");
    assert!(
        stderr.contains("train-00000-of-00001.npz") && stderr.to_lowercase().contains("too large"),
        "{stderr}"
    );
    // only segprep's error: the zip writer must not add its own about the broken file
    assert!(!stderr.contains("ZipWriter"), "{stderr}");
    assert_nothing_left(&d.path().join("out"));
}

/// A failed build leaves only its own bookkeeping folder: no shard, no partial file.
fn assert_nothing_left(out: &Path) {
    let left: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.iter().all(|f| f == ".segprep"),
        "left behind: {left:?}"
    );
}

/// A shard whose bytes are written but cannot be made whole (here its final name is taken by a
/// folder, so the rename fails on the committer thread): the run fails naming it, and it gets no
/// record, so no later run takes it for complete; the other shard is kept.
#[test]
fn a_shard_that_cannot_be_committed_is_a_clear_error_and_gets_no_record() {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), &format!("{STAGES}[output]\ndir = \"out\"\n"));
    assert_eq!(run(d.path(), &["build", p]).code, 0);
    let out = d.path().join("out");
    let (shard, record) = ("train-00000-of-00001.npz", ".segprep/records/00000.json");
    std::fs::remove_file(out.join(shard)).unwrap();
    std::fs::remove_file(out.join(record)).unwrap();
    std::fs::create_dir(out.join(shard)).unwrap();
    let kept = std::fs::read(out.join("val-00000-of-00001.npz")).unwrap();
    let r = run(d.path(), &["build", p]);
    assert_eq!(r.code, EXIT_OUTPUT, "{}", r.stderr);
    assert!(
        r.stderr.contains(shard) && r.stderr.contains("[write]"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(
        !out.join(record).exists(),
        "a record for a shard that is not whole"
    );
    assert_eq!(
        std::fs::read(out.join("val-00000-of-00001.npz")).unwrap(),
        kept
    );
    let partials = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".partial")
        })
        .count();
    assert_eq!(partials, 0, "a partial file left behind");
}

/// Makes a folder unwritable even for root (the immutable attribute) or, for other users, by mode.
/// Returns false where neither is possible, and the caller skips.
fn make_read_only(dir: &Path) -> bool {
    if unsafe { libc::geteuid() } == 0 {
        return Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
    }
    let mut perms = std::fs::metadata(dir).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    std::fs::set_permissions(dir, perms).is_ok()
}

fn make_writable(dir: &Path) {
    let _ = Command::new("chattr").arg("-i").arg(dir).status();
    let mut perms = std::fs::metadata(dir).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    let _ = std::fs::set_permissions(dir, perms);
}

#[test]
fn read_only_output_folder_is_a_clear_error() {
    let d = quintal_dir();
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    if !make_read_only(&out) {
        eprintln!("skipped: cannot make a folder read-only here (root without chattr)");
        return;
    }
    let p = quintal_pipeline(d.path(), "[output]\ndir = \"out\"\n");
    let r = run(d.path(), &["build", p]);
    make_writable(&out);
    assert_eq!(r.code, EXIT_OUTPUT, "{}", r.stderr);
    let msg = r.stderr.to_lowercase();
    assert!(
        r.stderr.contains("out")
            && (msg.contains("not permitted") || msg.contains("permission denied")),
        "{}",
        r.stderr
    );
    assert!(!msg.contains("panicked"));
}

#[test]
fn decode_limits_stop_oversized_files_before_decoding() {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), "[output]\ndir = \"out\"\n").to_string();
    let with = |extra: &str| {
        let text = QUINTAL_HEAD.replace(
            "label_suffix = \"_L\"",
            &format!("label_suffix = \"_L\"\n{extra}"),
        ) + "[output]\ndir = \"out\"\n";
        std::fs::write(d.path().join(&p), text).unwrap();
        std::fs::remove_dir_all(d.path().join("out")).ok();
        run(d.path(), &["build", &p])
    };
    let r = with("max_pixels = 65535");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("256x256 (65536 pixels)") && r.stderr.contains("max_pixels = 65535"),
        "{}",
        r.stderr
    );
    let r = with("max_file_bytes = 1000");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("max_file_bytes = 1000"), "{}", r.stderr);
    assert_eq!(
        with("max_pixels = 65536").code,
        0,
        "exactly at the limit is allowed"
    );
}

#[test]
fn manifest_paths_outside_the_dataset_are_refused_unless_allowed() {
    let d = quintal_dir();
    std::fs::create_dir(d.path().join("lists")).unwrap();
    let row = "../q/stills/datasetQuintal_001.png,../q/labelsRGB/datasetQuintal_001_L.png";
    std::fs::write(
        d.path().join("lists/m.csv"),
        format!("image,label\n{row}\n"),
    )
    .unwrap();
    let head = "[input]\nimages = \"lists/m.csv\"\n[labels]\nformat = \"rgb\"\ncolors = \"q/label_colors.txt\"\n";
    std::fs::write(
        d.path().join("p.toml"),
        format!("{head}[output]\ndir = \"out\"\n"),
    )
    .unwrap();
    let r = run(d.path(), &["build", "p.toml"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("line 2") && r.stderr.contains("points outside"),
        "{}",
        r.stderr
    );
    let allowed = head.replace("[labels]", "allow_outside = true\n[labels]");
    std::fs::write(
        d.path().join("p.toml"),
        format!("{allowed}[output]\ndir = \"out\"\n"),
    )
    .unwrap();
    let r = run(d.path(), &["build", "p.toml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn symlink_loops_do_not_hang_discovery() {
    let d = quintal_dir();
    std::os::unix::fs::symlink("..", d.path().join("q/stills/loop")).unwrap();
    std::os::unix::fs::symlink(".", d.path().join("q/labelsRGB/self")).unwrap();
    let p = quintal_pipeline(d.path(), "[output]\ndir = \"out\"\n");
    let r = run(d.path(), &["check", p]);
    // the loop leads back to the stills once: their files are found again under another name
    assert!(
        r.stdout.contains("pairs found: 6"),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
}

#[test]
fn an_input_edited_in_place_is_not_resumed_over() {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), "[output]\ndir = \"out\"\n");
    assert_eq!(run(d.path(), &["build", p]).code, 0);
    // same name, new content: the old shard must not be kept silently
    std::thread::sleep(Duration::from_millis(20));
    write_rgb(
        &d.path().join("q/labelsRGB/datasetQuintal_001_L.png"),
        256,
        256,
        |_, _| [255, 233, 87],
    );
    let r = run(d.path(), &["build", p]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("different inputs") && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    let r = run(d.path(), &["build", p, "--force"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// A pair that fails after earlier pairs of its shard were already streamed into the shard's file
/// stops the run with its name, and leaves neither a shard nor a partial file behind.
#[test]
fn a_bad_pair_mid_shard_leaves_no_shard_and_no_partial_file() {
    let d = quintal_dir();
    let image = d.path().join("q/stills/datasetQuintal_155.png");
    let bytes = std::fs::read(&image).unwrap();
    std::fs::write(&image, &bytes[..bytes.len() / 2]).unwrap();
    let rest = "[split]\ntrain = 1.0\n[output]\ndir = \"out\"\n";
    let p = quintal_pipeline(d.path(), rest);
    for threads in ["1", "2"] {
        let r = run(d.path(), &["build", p, "--threads", threads]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(r.stderr.contains("datasetQuintal_155.png"), "{}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        assert_nothing_left(&d.path().join("out"));
    }
}

/// Every built pair's input files are recorded (inputs.jsonl, its sha256 in index.json); `verify`
/// reads them again and names each file changed since (same size, other bytes) or gone, by pair.
#[test]
fn verify_names_the_inputs_changed_since_the_build() {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), &format!("{STAGES}[output]\ndir = \"out\"\n"));
    assert_eq!(run(d.path(), &["build", p]).code, 0);
    let index = json(d.path().join("out/index.json"));
    assert_eq!(index["inputs"]["file"], "inputs.jsonl");
    assert_eq!(index["inputs"]["pairs"], 6);
    let r = run(d.path(), &["verify", p]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("verified 12 input file(s) of 6 pair(s)"),
        "{}",
        r.stdout
    );

    let label = d.path().join("q/labelsRGB/datasetQuintal_027_L.png");
    let mut bytes = std::fs::read(&label).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 1;
    std::fs::write(&label, bytes).unwrap();
    std::fs::remove_file(d.path().join("q/stills/datasetQuintal_155.png")).unwrap();
    let r = run(d.path(), &["verify", p]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("datasetQuintal_027_L.png (pair datasetQuintal_027): changed since the build: same size, other bytes"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("datasetQuintal_155.png (pair datasetQuintal_155): missing"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("2 of 12 input file(s)"), "{}", r.stdout);

    // the record itself is checked: an edited inputs.jsonl is named, not trusted
    let record = d.path().join("out/inputs.jsonl");
    let text = std::fs::read_to_string(&record).unwrap();
    std::fs::write(&record, text.replacen("\"bytes\":", "\"bytes\": ", 1)).unwrap();
    let r = run(d.path(), &["verify", p]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("differs from index.json's record"),
        "{}",
        r.stderr
    );
}

/// Waits until every thread of `pid` has stopped: `kill -STOP` returns once the signal is sent,
/// and a thread inside a write finishes it first (the snapshot taken next then missed its bytes).
fn wait_stopped(pid: u32) {
    let stopped = |task: &Path| {
        let stat = std::fs::read_to_string(task.join("stat")).unwrap_or_default();
        let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
        state.is_none_or(|s| s.starts_with('T'))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return;
        };
        if tasks.flatten().all(|t| stopped(&t.path())) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("build {pid} did not stop within 30 s of SIGSTOP");
}

/// A build in another pid namespace (as a pod or another host on shared storage would be) cannot
/// look up the holder's pid, so it honours the lease: it is refused, with --force too, and the
/// running build's files are left alone. Needs `unshare --pid` (root on Linux); says so otherwise.
#[test]
fn a_build_in_another_pid_namespace_does_not_take_a_live_lock() {
    let probe = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipped: unshare --pid is not available here");
        return;
    }
    let d = many_pairs();
    let p = quintal_pipeline(d.path(), &format!("{STAGES}[output]\ndir = \"out\"\n"));
    assert_eq!(run(d.path(), &["build", p, "--out", "alone"]).code, 0);
    let mut first = command(d.path(), &["build", p, "--threads", "1"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = d.path().join("out/.segprep/lock");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !lock.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // held still, so the second build surely meets it running
    let signal = |sig: &str| {
        let pid = first.id().to_string();
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");
    wait_stopped(first.id());
    let before = snapshot(&d.path().join("out"));
    for extra in [None, Some("--force")] {
        let mut args = vec!["--pid", "--fork", "--mount-proc", bin(), "build", p];
        args.extend(extra);
        let out = Command::new("unshare")
            .args(&args)
            .current_dir(d.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(
            stderr.contains(&format!("pid {}", first.id())),
            "{extra:?}: {stderr}"
        );
        assert!(
            snapshot(&d.path().join("out")) == before,
            "{extra:?} touched the running build's files"
        );
    }
    signal("-CONT");
    assert!(first.wait().unwrap().success());
    let built = |dir: &str| std::fs::read(d.path().join(dir).join("index.json")).unwrap();
    let (a, b) = (built("alone"), built("out"));
    let strip = |v: Vec<u8>| {
        let mut j: serde_json::Value = serde_json::from_slice(&v).unwrap();
        j.as_object_mut().unwrap().remove("pipeline");
        j
    };
    assert_eq!(strip(a), strip(b));
}
