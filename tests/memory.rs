//! Memory stays flat as the dataset grows: it depends on threads and shard size, not on the number
//! of pairs. Its own test binary, so the peak resident memory of waited-for children
//! (`getrusage(RUSAGE_CHILDREN)`) covers only the builds this test starts.
mod common;
use common::*;
use std::path::Path;

/// Copies the six fixture pairs under new names until the folder holds `pairs` of them.
fn replicate(dir: &Path, pairs: usize) {
    let q = dir.join("q");
    let stems: Vec<String> = std::fs::read_dir(q.join("stills"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().replace(".png", ""))
        .filter(|s| s.starts_with("datasetQuintal"))
        .collect();
    for n in stems.len()..pairs {
        let stem = &stems[n % stems.len()];
        let copy = format!("copy{n:04}{}", &stem["datasetQuintal".len()..]);
        let (image, label) = (format!("{stem}.png"), format!("{stem}_L.png"));
        std::fs::copy(
            q.join("stills").join(&image),
            q.join("stills").join(format!("{copy}.png")),
        )
        .unwrap();
        std::fs::copy(
            q.join("labelsRGB").join(&label),
            q.join("labelsRGB").join(format!("{copy}_L.png")),
        )
        .unwrap();
    }
}

/// The largest resident set of any child this process has waited for, in KiB.
#[cfg(target_os = "linux")]
fn children_peak_kib() -> i64 {
    // SAFETY: getrusage only fills the struct it is given
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
        usage.ru_maxrss
    }
}

#[cfg(target_os = "linux")]
#[test]
fn peak_memory_does_not_grow_with_the_number_of_pairs() {
    const STAGES: &str = "[[stage]]\nresize = { size = 192, mode = \"fit\" }\n[[stage]]\n\
        augment = { copies = 2, seed = 1, hflip = 0.5, rotate = [-10, 10] }\n\
        [split]\ntrain = 0.8\nval = 0.2\n[output]\ndir = \"out\"\nshard_samples = 24\n";
    let build = |pairs: usize| {
        let d = quintal_dir();
        replicate(d.path(), pairs);
        let p = quintal_pipeline(d.path(), STAGES);
        let r = run(d.path(), &["build", p, "--threads", "2"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let built: usize = r.stdout.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(built >= pairs, "every pair gives a sample: {}", r.stdout);
        children_peak_kib()
    };
    // the smaller build first: the children's peak after the larger one is the larger of the two
    let small = build(30);
    let large = build(300);
    // ~42 MiB either way here; holding the samples would add ~110 MiB (780 samples of ~150 KiB):
    // one shard for the whole dataset (on_error = "skip", held whole) measured 53 -> 202 MiB
    assert!(
        large * 10 <= small * 13,
        "peak memory grew from {small} KiB (30 pairs) to {large} KiB (300 pairs)"
    );
}
