//! The bad-input corpus: one table of broken inputs, each run under `on_error = "fail"` (exit 1,
//! the file named, no panic) and under `on_error = "skip"` (the run completes and errors.jsonl names
//! the file). New input kinds add a dataset and their bad inputs here; inputs that break discovery
//! itself (before any sample runs) are in `DISCOVERY`, where only `fail` applies.
mod common;
use common::*;
use std::path::Path;

type Breaker = fn(&Path);

/// A dataset copied into the test folder, with the pipeline input that reads it.
#[derive(Debug, Clone, Copy)]
enum Dataset {
    /// RGB colour labels (fixtures/quintal) under `q/`.
    Quintal,
    /// Per-instance masks (fixtures/dsb2018) under `dsb/`.
    Instances,
    /// Band folders of 16-bit TIFFs (fixtures/multiband) under `mb/`.
    Bands,
    /// An MVTec DLT dictionary (fixtures/mvtec_dlt) under `dlt/`.
    MvtecDict,
    /// An MVTec AD category (fixtures/datumaro/mvtec_dataset/category_0) under `ad/`.
    MvtecAd,
}

impl Dataset {
    /// Copies the data into `dir`; returns the pipeline's [input], [labels] and stages.
    fn setup(self, dir: &Path) -> String {
        let (from, to, input) = match self {
            Dataset::Quintal => (
                "fixtures/quintal",
                "q",
                QUINTAL_HEAD.replace("label_suffix = \"_L\"", "label_suffix = \"_L\"\nmax_pixels = 2000000")
                    + "[[stage]]\nresize = { size = 64 }\n",
            ),
            Dataset::Instances => (
                "fixtures/dsb2018",
                "dsb",
                "[input]\nimages = \"dsb\"\n[labels]\nformat = \"instances\"\n[[stage]]\nresize = { size = 64 }\n".into(),
            ),
            Dataset::Bands => (
                "fixtures/multiband",
                "mb",
                "[input]\nimages = [\"mb/rgb\", \"mb/nir\", \"mb/swir\"]\nlabels = \"mb/labels\"\n[labels]\nformat = \"index\"\nnum_classes = 4\n".into(),
            ),
            Dataset::MvtecDict => (
                "fixtures/mvtec_dlt",
                "dlt",
                "[input]\nimages = \"dlt/pill_bags.json\"\n[labels]\nformat = \"mvtec\"\n".into(),
            ),
            Dataset::MvtecAd => (
                "fixtures/datumaro/mvtec_dataset/category_0",
                "ad",
                "[input]\nimages = \"ad\"\n[labels]\nformat = \"mvtec_ad\"\ngood = [\"label_0\"]\n".into(),
            ),
        };
        copy_dir(&repo().join(from), &dir.join(to));
        input
    }
}

const DSB_MASK: &str = "dsb/0114f484a16c152baa2d82fdd43740880a762c93f436c8988ac461c5c9dbe7d5/masks/0114f484a16c152baa2d82fdd43740880a762c93f436c8988ac461c5c9dbe7d5_0.png";

/// (name, dataset, the file it breaks, how). Each breaks one sample.
const CORPUS: &[(&str, Dataset, &str, Breaker)] = &[
    (
        "truncated image",
        Dataset::Quintal,
        "q/stills/datasetQuintal_001.png",
        |f| truncate(f, 0.5),
    ),
    (
        "truncated label",
        Dataset::Quintal,
        "q/labelsRGB/datasetQuintal_001_L.png",
        |f| truncate(f, 0.5),
    ),
    (
        "empty image file",
        Dataset::Quintal,
        "q/stills/datasetQuintal_001.png",
        |f| std::fs::write(f, b"").unwrap(),
    ),
    (
        "empty label file",
        Dataset::Quintal,
        "q/labelsRGB/datasetQuintal_001_L.png",
        |f| std::fs::write(f, b"").unwrap(),
    ),
    (
        "text named .png",
        Dataset::Quintal,
        "q/labelsRGB/datasetQuintal_001_L.png",
        |f| std::fs::write(f, b"hello").unwrap(),
    ),
    (
        "png header only",
        Dataset::Quintal,
        "q/stills/datasetQuintal_001.png",
        |f| truncate(f, 0.02),
    ),
    (
        "unknown colour",
        Dataset::Quintal,
        "q/labelsRGB/datasetQuintal_001_L.png",
        |f| write_rgb(f, 256, 256, |_, _| [1, 2, 3]),
    ),
    (
        "label of another size",
        Dataset::Quintal,
        "q/labelsRGB/datasetQuintal_001_L.png",
        |f| write_rgb(f, 255, 256, |_, _| [255, 254, 229]),
    ),
    (
        "grey label for rgb format",
        Dataset::Quintal,
        "q/labelsRGB/datasetQuintal_001_L.png",
        |f| write_gray8(f, 256, 256, |_, _| 0),
    ),
    (
        "16-bit label for rgb format",
        Dataset::Quintal,
        "q/labelsRGB/datasetQuintal_001_L.png",
        |f| write_gray16(f, 256, 256, |_, _| 7),
    ),
    (
        "palette label with unknown colours",
        Dataset::Quintal,
        "q/labelsRGB/datasetQuintal_001_L.png",
        |f| write_palette(f, 256, 256, |_, _| 3),
    ),
    (
        "image too large for max_pixels",
        Dataset::Quintal,
        "q/stills/datasetQuintal_001.png",
        |f| write_rgb(f, 2000, 1200, |_, _| [0, 0, 0]),
    ),
    (
        "non-binary instance mask",
        Dataset::Instances,
        DSB_MASK,
        |f| write_gray8(f, 256, 256, |x, _| if x < 10 { 128 } else { 0 }),
    ),
    (
        "instance mask of another size",
        Dataset::Instances,
        DSB_MASK,
        |f| write_gray8(f, 200, 256, |_, _| 0),
    ),
    (
        "truncated instance mask",
        Dataset::Instances,
        DSB_MASK,
        |f| truncate(f, 0.5),
    ),
    ("colour instance mask", Dataset::Instances, DSB_MASK, |f| {
        write_rgb(f, 256, 256, |_, _| [255, 255, 255])
    }),
    (
        "band of another size",
        Dataset::Bands,
        "mb/nir/tile_001.tif",
        |f| {
            write_gray16(&f.with_extension("png"), 20, 24, |_, _| 9);
            std::fs::rename(f.with_extension("png"), f).unwrap()
        },
    ),
    (
        "8-bit band among 16-bit ones",
        Dataset::Bands,
        "mb/nir/tile_001.tif",
        |f| {
            write_gray8(&f.with_extension("png"), 24, 24, |_, _| 9);
            std::fs::rename(f.with_extension("png"), f).unwrap()
        },
    ),
    (
        "truncated band TIFF",
        Dataset::Bands,
        "mb/swir/tile_002.tif",
        |f| truncate(f, 0.6),
    ),
    (
        "undeclared id in an MVTec label",
        Dataset::MvtecDict,
        "dlt/labels/pill_bag_002_label.png",
        |f| write_gray8(f, 40, 30, |_, _| 5),
    ),
    (
        "MVTec label file missing",
        Dataset::MvtecDict,
        "dlt/labels/pill_bag_004_label.png",
        |f| std::fs::remove_file(f).unwrap(),
    ),
    (
        "non-binary MVTec AD mask",
        Dataset::MvtecAd,
        "ad/ground_truth/label_1/000_mask.png",
        |f| write_gray8(f, 8, 8, |_, _| 7),
    ),
];

/// Inputs that break discovery: the build stops before any sample, naming the file.
/// (name, dataset, the file it breaks, how, a phrase the message must hold).
const DISCOVERY: &[(&str, Dataset, &str, Breaker, &str)] = &[
    (
        "missing band file",
        Dataset::Bands,
        "mb/swir/tile_003.tif",
        |f| std::fs::remove_file(f).unwrap(),
        "band file missing",
    ),
    (
        "MVTec sample outside the dataset",
        Dataset::MvtecDict,
        "dlt/pill_bags.json",
        |f| {
            let text = std::fs::read_to_string(f).unwrap();
            std::fs::write(
                f,
                text.replace("\"pill_bag_005.png\"", "\"..\\\\..\\\\secret.png\""),
            )
            .unwrap()
        },
        "points outside",
    ),
    (
        "binary .hdict dictionary",
        Dataset::MvtecDict,
        "dlt/pill_bags.json",
        |f| {
            std::fs::write(f.with_extension("hdict"), b"HSDF\x00\x01binary").unwrap();
            let p = f.parent().unwrap().parent().unwrap().join("p.toml");
            let text = std::fs::read_to_string(&p).unwrap();
            std::fs::write(p, text.replace("pill_bags.json", "pill_bags.hdict")).unwrap()
        },
        "dict_to_json",
    ),
    (
        "dictionary that is not JSON",
        Dataset::MvtecDict,
        "dlt/pill_bags.json",
        |f| truncate(f, 0.5),
        "not valid JSON",
    ),
    (
        "MVTec dictionary without segmentation_dir",
        Dataset::MvtecDict,
        "dlt/pill_bags.json",
        |f| {
            let text = std::fs::read_to_string(f).unwrap();
            std::fs::write(f, text.replace("\"segmentation_dir\"", "\"other_dir\"")).unwrap()
        },
        "segmentation_dir",
    ),
    (
        "instance sample without its image",
        Dataset::Instances,
        DSB_MASK,
        |f| {
            let sample = f.parent().unwrap().parent().unwrap();
            std::fs::remove_dir_all(sample.join("images")).unwrap()
        },
        "images/",
    ),
    (
        "MVTec AD defect image without its mask",
        Dataset::MvtecAd,
        "ad/ground_truth/label_2/000_mask.png",
        |f| std::fs::remove_file(f).unwrap(),
        "000_mask.png",
    ),
];

fn truncate(f: &Path, keep: f64) {
    let bytes = std::fs::read(f).unwrap();
    std::fs::write(f, &bytes[..(bytes.len() as f64 * keep) as usize]).unwrap();
}

fn write_pipeline(dir: &Path, input: &str, policy: &str) {
    let p = format!("{input}[run]\non_error = \"{policy}\"\n[output]\ndir = \"out\"\n");
    std::fs::write(dir.join("p.toml"), p).unwrap();
}

fn file_name(file: &str) -> String {
    Path::new(file)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string()
}

#[test]
fn every_bad_input_is_named_never_a_panic() {
    for (name, dataset, file, breaker) in CORPUS {
        let d = tempfile::tempdir().unwrap();
        let input = dataset.setup(d.path());
        breaker(&d.path().join(file));
        let base = file_name(file);

        write_pipeline(d.path(), &input, "fail");
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
            !build_file(&d.path().join("out/index.json")).exists(),
            "{name}: a failed build looks finished"
        );

        write_pipeline(d.path(), &input, "skip");
        let r = run(d.path(), &["build", "p.toml"]);
        assert_eq!(r.code, 0, "{name}: skip should complete\n{}", r.stderr);
        let errors = std::fs::read_to_string(build_file(&d.path().join("out/errors.jsonl")))
            .unwrap_or_default();
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

#[test]
fn discovery_problems_stop_the_build_naming_the_file() {
    for (name, dataset, file, breaker, phrase) in DISCOVERY {
        let d = tempfile::tempdir().unwrap();
        let input = dataset.setup(d.path());
        write_pipeline(d.path(), &input, "skip");
        breaker(&d.path().join(file));
        let r = run(d.path(), &["build", "p.toml"]);
        assert!(
            r.code == 1 || r.code == 2,
            "{name}: exit code {}\n{}",
            r.code,
            r.stderr
        );
        assert!(
            !r.stderr.contains("panicked"),
            "{name}: panic\n{}",
            r.stderr
        );
        assert!(
            r.stderr.contains(phrase),
            "{name}: the message lacks `{phrase}`\n{}",
            r.stderr
        );
        assert!(
            !build_file(&d.path().join("out/index.json")).exists(),
            "{name}: a failed build looks finished"
        );
    }
}
