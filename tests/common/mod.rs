//! Helpers for tests that run the real `segprep` binary in temporary folders.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Output;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_segprep")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(dir: &Path, args: &[&str]) -> Run {
    let out: Output = command(dir, args).output().expect("run segprep");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The scheduler variables that make a build a worker: removed, so a test run inside a Slurm or
/// Kubernetes job still builds alone unless the test says otherwise.
pub const WORKER_VARS: [&str; 11] = [
    "SEGPREP_WORKER_INDEX",
    "SEGPREP_WORKER_COUNT",
    "JOB_COMPLETION_INDEX",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_COUNT",
    "AWS_BATCH_JOB_ARRAY_INDEX",
    "AWS_BATCH_JOB_ARRAY_SIZE",
    "BATCH_TASK_INDEX",
    "BATCH_TASK_COUNT",
];

/// `segprep ARGS` in `dir`, with no scheduler variables.
pub fn command(dir: &Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(bin());
    c.args(args).current_dir(dir);
    for v in WORKER_VARS {
        c.env_remove(v);
    }
    c
}

/// A temp folder holding a copy of the Quintal fixture under `q/`.
pub fn quintal_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("fixtures/quintal"), &dir.path().join("q"));
    dir
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

pub const QUINTAL_HEAD: &str = r#"
[input]
images = "q/stills"
labels = "q/labelsRGB"
label_suffix = "_L"

[labels]
format = "rgb"
colors = "q/label_colors.txt"
"#;

/// Writes `p.toml` = Quintal input + `rest`, returns its name.
pub fn quintal_pipeline(dir: &Path, rest: &str) -> &'static str {
    std::fs::write(dir.join("p.toml"), format!("{QUINTAL_HEAD}\n{rest}")).unwrap();
    "p.toml"
}

/// Every file of a folder (recursively) with its bytes, sorted by relative path.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(root: &Path, d: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push((
                    p.strip_prefix(root).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Reads one .npy entry of an .npz shard: (numpy dtype string, shape, raw body).
pub fn npz_entry(path: &Path, name: &str) -> (String, Vec<u64>, Vec<u8>) {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut buf = Vec::new();
    zip.by_name(name).unwrap().read_to_end(&mut buf).unwrap();
    let header_len = u16::from_le_bytes([buf[8], buf[9]]) as usize;
    let header = String::from_utf8_lossy(&buf[10..10 + header_len]).to_string();
    let dtype = header
        .split("'descr': '")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_string();
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape = shape_text
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    (dtype, shape, buf[10 + header_len..].to_vec())
}

/// The `key` array of an .npz shard: fixed-width UTF-32 strings, zero-padded.
pub fn npz_keys(path: &Path) -> Vec<String> {
    let (_, shape, body) = npz_entry(path, "key.npy");
    let n = shape[0] as usize;
    if n == 0 {
        return Vec::new();
    }
    body.chunks(body.len() / n)
        .map(|k| {
            k.chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .take_while(|&c| c != 0)
                .filter_map(char::from_u32)
                .collect()
        })
        .collect()
}

pub fn write_gray8(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> u8) {
    image::GrayImage::from_fn(w, h, |x, y| image::Luma([f(x, y)]))
        .save(path)
        .unwrap();
}

pub fn write_gray16(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> u16) {
    image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(w, h, |x, y| image::Luma([f(x, y)]))
        .save(path)
        .unwrap();
}

pub fn write_rgb(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb(f(x, y)))
        .save(path)
        .unwrap();
}

/// A palette PNG whose indices are given by `f`; the palette maps index i to a colour that is not i.
pub fn write_palette(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> u8) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut enc = png::Encoder::new(file, w, h);
    enc.set_color(png::ColorType::Indexed);
    enc.set_depth(png::BitDepth::Eight);
    let palette: Vec<u8> = (0..=255u8).flat_map(|i| [255 - i, i / 2, 128]).collect();
    enc.set_palette(palette);
    let mut writer = enc.write_header().unwrap();
    let data: Vec<u8> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .map(|(x, y)| f(x, y))
        .collect();
    writer.write_image_data(&data).unwrap();
}

/// A JSON file (index.json, stats.json) parsed; a Parquet build's `_index.json` and
/// `_stats.json` are found under the plain names too.
pub fn json(path: impl AsRef<Path>) -> serde_json::Value {
    let path = &build_file(path.as_ref());
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// 18 pairs (the fixture three times under other names), one sample per shard: many kill points.
pub fn many_pairs() -> tempfile::TempDir {
    let d = quintal_dir();
    for copy in ["b", "c"] {
        for sub in ["stills", "labelsRGB"] {
            let originals: Vec<_> = std::fs::read_dir(d.path().join("q").join(sub))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("datasetQuintal")
                })
                .collect();
            for path in originals {
                let name = path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .replace("datasetQuintal", &format!("{copy}Quintal"));
                std::fs::copy(&path, path.with_file_name(name)).unwrap();
            }
        }
    }
    d
}

/// `path`, or the Parquet build's `_`-prefixed name for it where only that exists.
pub fn build_file(path: &Path) -> std::path::PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    match name {
        Some(n)
            if !path.exists()
                && ["index.json", "stats.json", "errors.jsonl"].contains(&n.as_str()) =>
        {
            path.with_file_name(format!("_{n}"))
        }
        _ => path.to_path_buf(),
    }
}
