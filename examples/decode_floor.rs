//! The physical floor of a build: only decode every image and label file of a pipeline, with the
//! decoders a build uses and the same thread count, nothing else. `benches/e2e.py` compares a
//! build's time with this one.
//!
//!   cargo run --release --example decode_floor -- PIPELINE [THREADS] [--image-crate]
//!
//! `--images-only` decodes the images alone; `--images-reduced-to=WxH` decodes them as
//! `[input] jpeg_reduce` does for a resize to WxH (benches/reduced_jpeg.py compares the two).
//! `--image-crate` decodes every file with the `image` crate's decoders instead: a second floor,
//! for context (what a Rust program reading these files with the usual crate would need).
//!
//! Prints one JSON line: pairs, seconds, pairs_per_s.
use rayon::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

use segprep::decode::image::{decode_file, decode_jpeg_reduced};
use segprep::decode::raw_label::read_raw_label;
use segprep::sample::LabelSource;

fn main() {
    // The build's allocator settings, so the floor gains what the build gains.
    segprep::memory::keep_freed_pixel_buffers();
    let usage =
        "usage: decode_floor PIPELINE [THREADS] [--image-crate | --images-only | --images-reduced-to=WxH]";
    let (flags, args): (Vec<String>, Vec<String>) =
        std::env::args().skip(1).partition(|a| a.starts_with("--"));
    // (image crate, images alone, reduced to)
    let (image_crate, images_only, reduced) = match flags.as_slice() {
        [] => (false, false, None),
        [flag] if flag == "--image-crate" => (true, false, None),
        [flag] if flag == "--images-only" => (false, true, None),
        [flag] if flag.starts_with("--images-reduced-to=") => {
            (false, true, Some(size(flag, usage)))
        }
        _ => panic!("{usage}"),
    };
    let mut args = args.into_iter();
    let pipeline = PathBuf::from(args.next().expect(usage));
    let threads: usize = args
        .next()
        .map_or(0, |t| t.parse().expect("THREADS is a number"));
    let p = segprep::pipeline::load(&pipeline).unwrap_or_else(|e| panic!("{e}"));
    let pairs = segprep::source::discover(&p.source())
        .unwrap_or_else(|e| panic!("{e}"))
        .pairs;
    let rules = p.config.input.image_rules();
    let limits = p.config.input.limits();
    let pool = segprep::engine::thread_pool(Some(threads).filter(|&t| t > 0)).unwrap();
    let start = Instant::now();
    pool.install(|| {
        pairs.par_iter().for_each(|pair| {
            if image_crate {
                let label = match &pair.label {
                    LabelSource::File(label) => Some(label),
                    _ => None,
                };
                for file in pair.image_files().chain(label) {
                    std::hint::black_box(decode_with_image_crate(file));
                }
                return;
            }
            if let Some(at_least) = reduced {
                // as `[input] jpeg_reduce` decodes them for a resize to `at_least`
                let reduced = decode_jpeg_reduced(&pair.image, &rules, &|_, _| Some(at_least));
                if std::hint::black_box(reduced.expect("image decodes")).is_some() {
                    return;
                }
            }
            for file in pair.image_files() {
                std::hint::black_box(decode_file(file, &rules).expect("image decodes"));
            }
            if images_only {
                return;
            }
            if let LabelSource::File(label) = &pair.label {
                std::hint::black_box(read_raw_label(label, &limits).expect("label decodes"));
            }
        })
    });
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{{\"pairs\": {}, \"seconds\": {seconds:.4}, \"pairs_per_s\": {:.2}}}",
        pairs.len(),
        pairs.len() as f64 / seconds
    );
}

/// `WxH` of `--images-reduced-to=WxH`.
fn size(flag: &str, usage: &str) -> (u32, u32) {
    let (w, h) = flag
        .trim_start_matches("--images-reduced-to=")
        .split_once('x')
        .expect(usage);
    (w.parse().expect(usage), h.parse().expect(usage))
}

fn decode_with_image_crate(file: &std::path::Path) -> image::DynamicImage {
    image::ImageReader::open(file)
        .and_then(|r| r.with_guessed_format())
        .map_err(image::ImageError::IoError)
        .and_then(|r| r.decode())
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}
