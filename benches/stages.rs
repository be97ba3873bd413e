//! Per-stage throughput on the fixture pairs: `cargo bench --bench stages`.
//! A quick look at where time goes; the comparison against a Python peer lives in the [perf] work.
mod common;
use std::path::Path;
use std::time::Instant;

use segprep::engine::process;
use segprep::pipeline;
use segprep::source::discover;

use common::QUINTAL_HEAD as HEAD;

const CASES: &[(&str, &str)] = &[
    ("decode only", ""),
    (
        "resize 512 fit bilinear",
        "[[stage]]\nresize = { size = 512, mode = \"fit\" }\n",
    ),
    (
        "resize 128 stretch lanczos3",
        "[[stage]]\nresize = { size = 128, filter = \"lanczos3\" }\n",
    ),
    ("pad to 320", "[[stage]]\npad = { size = 320 }\n"),
    (
        "remap",
        "[[stage]]\nremap = { map = { areia = \"ignore\" }, compact = true }\n",
    ),
    (
        "standardize per_image",
        "[[stage]]\nstandardize = { mode = \"per_image\" }\n",
    ),
];

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rounds = 20;
    for (name, stages) in CASES {
        let path = repo.join("out/bench.toml");
        std::fs::create_dir_all(repo.join("out")).unwrap();
        std::fs::write(&path, format!("{HEAD}{stages}")).unwrap();
        let p = pipeline::load(&path).unwrap();
        let pairs = discover(&p).unwrap().pairs;
        for pair in &pairs {
            process(&p, &p.stages, pair, "train").unwrap(); // warm-up: page cache, allocator
        }
        let start = Instant::now();
        for _ in 0..rounds {
            for pair in &pairs {
                std::hint::black_box(process(&p, &p.stages, pair, "train").unwrap());
            }
        }
        let per_sec = (rounds * pairs.len()) as f64 / start.elapsed().as_secs_f64();
        println!(
            "{name:<30} {per_sec:>8.1} pairs/s (256x256 RGBA + RGB label, 1 thread, incl. decode)"
        );
    }
}
