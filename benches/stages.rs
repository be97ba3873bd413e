//! Criterion benches, one per step of a build, on the fixture pairs (6 × 256x256 RGBA photos with
//! RGB colour labels): decoding, colour mapping, every stage, and each sink's encoding.
//!
//!   cargo bench --bench stages                 # all
//!   cargo bench --bench stages -- stage/       # the stages only
//!
//! Each bench runs on all six samples per iteration; `benches/e2e.py` is the end-to-end
//! comparison with a Python peer.
mod common;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::path::{Path, PathBuf};

use segprep::decode::image::decode_file;
use segprep::decode::raw_label::{read_raw_label, RawLabel};
use segprep::engine::index::essentials;
use segprep::pipeline::{self, Pipeline};
use segprep::process::process_pair;
use segprep::sample::{LabelSource, PairRef, Sample};
use segprep::sink::{self, ShardPlan};
use segprep::source::discover;
use segprep::stats::counts::SplitCounts;

use common::QUINTAL_HEAD as HEAD;

/// A pipeline of the fixture with these stages and output settings.
fn pipeline(name: &str, extra: &str) -> Pipeline {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(repo.join("out")).unwrap();
    let path = repo.join(format!("out/bench-{name}.toml"));
    std::fs::write(&path, format!("{HEAD}{extra}")).unwrap();
    pipeline::load(&path).unwrap()
}

fn pairs(p: &Pipeline) -> Vec<PairRef> {
    discover(&p.source()).unwrap().pairs
}

fn label_file(pair: &PairRef) -> &PathBuf {
    match &pair.label {
        LabelSource::File(f) => f,
        _ => unreachable!("the fixture has label files"),
    }
}

/// The fixture decoded, with labels mapped: what the first stage receives.
fn decoded(p: &Pipeline) -> Vec<Sample> {
    pairs(p)
        .iter()
        .flat_map(|pair| process_pair(p, &[], pair, "train").unwrap())
        .collect()
}

fn decode(c: &mut Criterion) {
    let p = pipeline("decode", "");
    let pairs = pairs(&p);
    let rules = p.config.input.image_rules();
    let limits = p.config.input.limits();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(pairs.len() as u64));
    g.bench_function("image_png_rgba", |b| {
        b.iter(|| {
            for pair in &pairs {
                std::hint::black_box(decode_file(&pair.image, &rules).unwrap());
            }
        })
    });
    g.bench_function("label_png_raw", |b| {
        b.iter(|| {
            for pair in &pairs {
                std::hint::black_box(read_raw_label(label_file(pair), &limits).unwrap());
            }
        })
    });
    let raw: Vec<RawLabel> = pairs
        .iter()
        .map(|pair| read_raw_label(label_file(pair), &limits).unwrap())
        .collect();
    g.bench_function("colour_mapping", |b| {
        b.iter(|| {
            for r in &raw {
                std::hint::black_box(p.decoder.map_label(r).unwrap());
            }
        })
    });
    g.finish();
}

const STAGES: &[(&str, &str)] = &[
    (
        "remap",
        "[[stage]]\nremap = { map = { areia = \"ignore\" }, compact = true }\n",
    ),
    (
        "resize_512_fit_bilinear",
        "[[stage]]\nresize = { size = 512, mode = \"fit\" }\n",
    ),
    (
        "resize_128_lanczos3",
        "[[stage]]\nresize = { size = 128, filter = \"lanczos3\" }\n",
    ),
    ("pad_to_320", "[[stage]]\npad = { size = 320 }\n"),
    (
        "augment_2_copies",
        "[[stage]]\naugment = { copies = 2, hflip = 0.5, rotate = [-15, 15], brightness = [-0.1, 0.1] }\n",
    ),
    (
        "standardize_per_image",
        "[[stage]]\nstandardize = { mode = \"per_image\" }\n",
    ),
    (
        "rescale_to_f32",
        "[[stage]]\nrescale = { input_range = [0, 255], output = \"f32\" }\n",
    ),
];

fn stages(c: &mut Criterion) {
    let mut g = c.benchmark_group("stage");
    for (name, stage) in STAGES {
        let p = pipeline(name, stage);
        let input = decoded(&p);
        g.throughput(Throughput::Elements(input.len() as u64));
        g.bench_function(*name, |b| {
            b.iter_batched(
                || input.clone(),
                |samples| p.stages[0].apply_all(samples).unwrap(),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

const SINKS: &[(&str, &str)] = &[
    ("npz_stored", ""),
    ("npz_deflate", "compression = \"deflate\"\n"),
    ("parquet_huggingface", "format = \"parquet\"\n"),
    (
        "parquet_tensor",
        "format = \"parquet\"\nlayout = \"tensor\"\n",
    ),
];

fn sinks(c: &mut Criterion) {
    let mut g = c.benchmark_group("sink");
    let out = tempfile::tempdir().unwrap();
    for (name, output) in SINKS {
        // the head ends with [output]; these lines extend it
        let p = pipeline(name, output);
        let samples = decoded(&p);
        let build = essentials(&p, &samples[0]);
        let plan = ShardPlan {
            split: "train".into(),
            index: 0,
            of: 1,
            first_sample: 0,
            pairs: samples.iter().map(|s| s.pair.clone()).collect(),
            samples: samples.len(),
        };
        g.throughput(Throughput::Elements(samples.len() as u64));
        g.bench_function(*name, |b| {
            b.iter_batched(
                || samples.clone(),
                |samples| {
                    let mut sink = sink::open(p.sink_options(), &build, out.path());
                    sink.begin(&plan).unwrap();
                    sink.write(samples).unwrap();
                    let commit = sink.finish(&SplitCounts::new(&p.classes)).unwrap();
                    commit().unwrap()
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = decode, stages, sinks
}
criterion_main!(benches);
