//! The bad-input corpus: one table of broken inputs, each run under `on_error = "fail"` (exit 1,
//! the file named, no panic) and under `on_error = "skip"` (the run completes and errors.jsonl names
//! the file). New input kinds add their bad inputs here.
mod common;
use common::*;
use std::path::Path;

/// (name, the file it breaks relative to q/, how).
type Breaker = fn(&Path);

const CORPUS: &[(&str, &str, Breaker)] = &[
    ("truncated image", "stills/datasetQuintal_001.png", |f| {
        truncate(f, 0.5)
    }),
    (
        "truncated label",
        "labelsRGB/datasetQuintal_001_L.png",
        |f| truncate(f, 0.5),
    ),
    ("empty image file", "stills/datasetQuintal_001.png", |f| {
        std::fs::write(f, b"").unwrap()
    }),
    (
        "empty label file",
        "labelsRGB/datasetQuintal_001_L.png",
        |f| std::fs::write(f, b"").unwrap(),
    ),
    (
        "text named .png",
        "labelsRGB/datasetQuintal_001_L.png",
        |f| std::fs::write(f, b"hello").unwrap(),
    ),
    ("png header only", "stills/datasetQuintal_001.png", |f| {
        truncate(f, 0.02)
    }),
    (
        "unknown colour",
        "labelsRGB/datasetQuintal_001_L.png",
        |f| write_rgb(f, 256, 256, |_, _| [1, 2, 3]),
    ),
    (
        "label of another size",
        "labelsRGB/datasetQuintal_001_L.png",
        |f| write_rgb(f, 255, 256, |_, _| [255, 254, 229]),
    ),
    (
        "grey label for rgb format",
        "labelsRGB/datasetQuintal_001_L.png",
        |f| write_gray8(f, 256, 256, |_, _| 0),
    ),
    (
        "16-bit label for rgb format",
        "labelsRGB/datasetQuintal_001_L.png",
        |f| write_gray16(f, 256, 256, |_, _| 7),
    ),
    (
        "palette label with unknown colours",
        "labelsRGB/datasetQuintal_001_L.png",
        |f| write_palette(f, 256, 256, |_, _| 3),
    ),
    (
        "image too large for max_pixels",
        "stills/datasetQuintal_001.png",
        |f| write_rgb(f, 2000, 1200, |_, _| [0, 0, 0]),
    ),
];

fn truncate(f: &Path, keep: f64) {
    let bytes = std::fs::read(f).unwrap();
    std::fs::write(f, &bytes[..(bytes.len() as f64 * keep) as usize]).unwrap();
}

fn pipeline(policy: &str) -> String {
    let head = QUINTAL_HEAD.replace(
        "label_suffix = \"_L\"",
        "label_suffix = \"_L\"\nmax_pixels = 2000000",
    );
    format!("{head}[[stage]]\nresize = {{ size = 64 }}\n[run]\non_error = \"{policy}\"\n[output]\ndir = \"out\"\n")
}

#[test]
fn every_bad_input_is_named_never_a_panic() {
    for (name, file, breaker) in CORPUS {
        let d = quintal_dir();
        breaker(&d.path().join("q").join(file));
        let base = Path::new(file)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();

        std::fs::write(d.path().join("p.toml"), pipeline("fail")).unwrap();
        let r = run(d.path(), &["build", "p.toml"]);
        assert_eq!(r.code, 1, "{name}: exit code\n{}", r.stderr);
        assert!(
            !r.stderr.contains("panicked"),
            "{name}: panic\n{}",
            r.stderr
        );
        assert!(
            r.stderr.contains(&base),
            "{name}: the message does not name {base}\n{}",
            r.stderr
        );
        assert!(
            !d.path().join("out/index.json").exists(),
            "{name}: a failed build looks finished"
        );

        std::fs::write(d.path().join("p.toml"), pipeline("skip")).unwrap();
        let r = run(d.path(), &["build", "p.toml"]);
        assert_eq!(r.code, 0, "{name}: skip should complete\n{}", r.stderr);
        let errors = std::fs::read_to_string(d.path().join("out/errors.jsonl")).unwrap_or_default();
        assert_eq!(errors.lines().count(), 1, "{name}: {errors}");
        assert!(
            errors.contains(&base),
            "{name}: errors.jsonl does not name {base}: {errors}"
        );
        assert_eq!(
            json(d.path().join("out/index.json"))["skipped_samples"],
            1,
            "{name}"
        );
    }
}
