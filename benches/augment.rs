//! Per-transform throughput of the augment stage on one core: `cargo bench --bench augment`.
//! Each transform runs alone on the fixture pairs (256x256 RGB + label), decoded once; prints one
//! JSON line per transform with images/s. `benches/augment_vs_albumentations.py` runs this and
//! albumentations on the same images in the same run and reports the ratios.
mod common;
use std::path::Path;
use std::time::Instant;

use segprep::pipeline;
use segprep::process::process_pair;
use segprep::source::discover;
use segprep::stages::run_on;
use segprep::stages::Stage;

use common::QUINTAL_HEAD as HEAD;

/// (name, augment options). The same names and settings are used on the albumentations side.
pub const TRANSFORMS: &[(&str, &str)] = &[
    ("hflip", "hflip = 1.0"),
    ("rot90", "rot90 = 1.0"),
    ("rotate", "rotate = [-30, 30]"),
    (
        "shift_zoom_shear",
        "shift = [-0.1, 0.1], zoom = [0.8, 1.2], shear = [-10, 10]",
    ),
    ("elastic", "elastic = { alpha = 30, sigma = 5 }"),
    ("crop", "crop = [192, 192]"),
    (
        "random_resized_crop",
        "random_resized_crop = { size = [192, 192] }",
    ),
    ("brightness", "brightness = [-0.2, 0.2]"),
    ("contrast", "contrast = [0.8, 1.2]"),
    ("gamma", "gamma = [0.8, 1.2]"),
    (
        "hue_saturation",
        "hue = [-0.05, 0.05], saturation = [0.7, 1.3]",
    ),
    ("noise", "noise = [0.01, 0.05]"),
    ("blur", "blur = [0.5, 1.5]"),
];

fn main() {
    // the allocator settings of the `segprep` command: without them, buffers taken anew from the
    // pixel pool page-fault on every image, and a 256x256 flip ran at 40% of the command's speed
    segprep::memory::keep_freed_pixel_buffers();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(40);
    std::fs::create_dir_all(repo.join("out")).unwrap();
    let only = std::env::var("ONLY").ok();
    for (name, options) in TRANSFORMS {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        let path = repo.join("out/bench_augment.toml");
        let stage =
            format!("[[stage]]\naugment = {{ copies = 1, keep_original = false, {options} }}\n");
        std::fs::write(&path, format!("{HEAD}{stage}")).unwrap();
        let p = pipeline::load(&path).unwrap();
        let Stage::Augment(augment) = &p.stages[0] else {
            unreachable!()
        };
        let samples: Vec<_> = discover(&p.source())
            .unwrap()
            .pairs
            .iter()
            .map(|pair| process_pair(&p, &[], pair, "train").unwrap().remove(0))
            .collect();
        let mut done = 0usize;
        let start = Instant::now();
        for round in 0..rounds {
            for s in &samples {
                // a new copy index per round: fresh parameters, as in a real run
                let mut copy = s.clone();
                run_on(&**augment, &mut copy, round as u32 + 1).unwrap();
                std::hint::black_box(&copy);
                done += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{{\"transform\": \"{name}\", \"images_per_s\": {:.1}, \"images\": {done}, \"size\": \"256x256x3\"}}",
            done as f64 / secs
        );
    }
}
