//! Each label encoding read as the class ids it stores, and each source kind (folders, manifests).
mod common;
use common::*;
use std::path::Path;

fn folders(d: &Path) {
    for sub in ["img", "lab"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
}

fn build_labels(d: &Path, labels: &str) -> (Run, Vec<u8>) {
    std::fs::write(d.join("p.toml"), format!("[input]\nimages = \"img\"\nlabels = \"lab\"\n[labels]\n{labels}\n[output]\ndir = \"out\"\n")).unwrap();
    std::fs::remove_dir_all(d.join("out")).ok();
    let r = run(d, &["build", "p.toml"]);
    let body = if r.code == 0 {
        npz_entry(&d.join("out/train-00000-of-00001.npz"), "label.npy").2
    } else {
        vec![]
    };
    (r, body)
}

#[test]
fn palette_png_gives_raw_indices_not_colours() {
    let d = tempfile::tempdir().unwrap();
    folders(d.path());
    write_rgb(&d.path().join("img/a.png"), 6, 2, |x, y| {
        [x as u8, y as u8, 0]
    });
    write_palette(&d.path().join("lab/a.png"), 6, 2, |x, y| {
        if y == 1 && x == 5 {
            255
        } else {
            x as u8
        }
    });
    let (r, ids) = build_labels(d.path(), "format = \"palette\"\nnum_classes = 21");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        ids,
        vec![0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 255],
        "palette index 255 is the ignore index (VOC's border)"
    );
}

#[test]
fn palette_png_through_the_colour_table() {
    let d = tempfile::tempdir().unwrap();
    folders(d.path());
    write_rgb(&d.path().join("img/a.png"), 2, 1, |_, _| [0, 0, 0]);
    // palette index i has colour (255 - i, i / 2, 128)
    write_palette(&d.path().join("lab/a.png"), 2, 1, |x, _| x as u8 * 4);
    let (r, ids) = build_labels(d.path(), "format = \"rgb\"\nclasses = [{ id = 0, name = \"a\", color = [251, 2, 128] }, { id = 1, name = \"b\", color = [255, 0, 128] }]");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(ids, vec![1, 0]);
}

#[test]
fn binary_masks_0_255_and_0_1() {
    let d = tempfile::tempdir().unwrap();
    folders(d.path());
    write_gray8(&d.path().join("img/a.png"), 4, 1, |x, _| x as u8);
    write_gray8(&d.path().join("lab/a.png"), 4, 1, |x, _| {
        if x % 2 == 1 {
            255
        } else {
            0
        }
    });
    let (r, ids) = build_labels(d.path(), "format = \"binary\"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(ids, vec![0, 1, 0, 1]);
    write_gray8(&d.path().join("lab/a.png"), 4, 1, |x, _| (x % 2) as u8);
    let (r, _) = build_labels(d.path(), "format = \"binary\"");
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("value 1 (2 pixels)"), "{}", r.stderr);
    let (r, ids) = build_labels(d.path(), "format = \"binary\"\nforeground_value = 1");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(ids, vec![0, 1, 0, 1]);
}

#[test]
fn index_labels_pass_the_ignore_index_through() {
    let d = tempfile::tempdir().unwrap();
    folders(d.path());
    write_gray8(&d.path().join("img/a.png"), 3, 1, |_, _| 7);
    write_gray8(&d.path().join("lab/a.png"), 3, 1, |x, _| {
        [2, 255, 0][x as usize]
    });
    let (r, ids) = build_labels(
        d.path(),
        "format = \"index\"\nclasses = [\"a\", \"b\", \"c\"]",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(ids, vec![2, 255, 0]);
    let stats = json(d.path().join("out/stats.json"));
    assert_eq!(stats["splits"]["train"]["ignore_pixels"], 1);
    assert_eq!(stats["splits"]["train"]["pad_pixels"], 0);
}

#[test]
fn jpeg_labels_get_a_warning() {
    let d = tempfile::tempdir().unwrap();
    folders(d.path());
    write_gray8(&d.path().join("img/a.png"), 16, 16, |_, _| 7);
    image::GrayImage::from_fn(16, 16, |_, _| image::Luma([0]))
        .save(d.path().join("lab/a.jpg"))
        .unwrap();
    let (r, _) = build_labels(d.path(), "format = \"index\"\nnum_classes = 2");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("JPEG"), "{}", r.stderr);
}

#[test]
fn csv_manifest_with_split_column_and_relative_paths() {
    let d = quintal_dir();
    let mut csv = String::from("image,label,split\n");
    for (n, split) in [("001", "val"), ("003", "train"), ("027", "train")] {
        csv += &format!(
            "q/stills/datasetQuintal_{n}.png, q/labelsRGB/datasetQuintal_{n}_L.png ,{split}\n"
        );
    }
    std::fs::create_dir_all(d.path().join("lists")).unwrap();
    std::fs::write(d.path().join("m.csv"), csv).unwrap();
    let text = "[input]\nimages = \"m.csv\"\n[labels]\nformat = \"rgb\"\ncolors = \"q/label_colors.txt\"\n[split]\nfrom = \"manifest\"\n[output]\ndir = \"out\"\n";
    std::fs::write(d.path().join("p.toml"), text).unwrap();
    let r = run(d.path(), &["build", "p.toml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("train 2, val 1"), "{}", r.stdout);
    let (_, shape, _) = npz_entry(&d.path().join("out/val-00000-of-00001.npz"), "label.npy");
    assert_eq!(shape, vec![1, 256, 256]);
    // without a [split] table the column is still used, never silently dropped
    let text = text.replace("[split]\nfrom = \"manifest\"\n", "");
    std::fs::write(d.path().join("p.toml"), text).unwrap();
    let r = run(d.path(), &["build", "p.toml", "--out", "out2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("train 2, val 1"), "{}", r.stdout);
}

#[test]
fn parquet_manifest() {
    use polars::prelude::*;
    let d = quintal_dir();
    let images: Vec<String> = ["001", "155"]
        .iter()
        .map(|n| format!("q/stills/datasetQuintal_{n}.png"))
        .collect();
    let labels: Vec<String> = ["001", "155"]
        .iter()
        .map(|n| format!("q/labelsRGB/datasetQuintal_{n}_L.png"))
        .collect();
    let mut df = DataFrame::new(
        2,
        vec![
            Column::new("image".into(), images),
            Column::new("label".into(), labels),
        ],
    )
    .unwrap();
    ParquetWriter::new(std::fs::File::create(d.path().join("m.parquet")).unwrap())
        .finish(&mut df)
        .unwrap();
    std::fs::write(d.path().join("p.toml"), "[input]\nimages = \"m.parquet\"\n[labels]\nformat = \"rgb\"\ncolors = \"q/label_colors.txt\"\n[output]\ndir = \"out\"\n").unwrap();
    let r = run(d.path(), &["build", "p.toml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("built 2 samples"), "{}", r.stdout);
}

#[test]
fn pairing_is_by_name_in_nested_folders_with_suffixes() {
    let d = tempfile::tempdir().unwrap();
    for sub in [
        "leftImg8bit/train/aachen",
        "leftImg8bit/train/bremen",
        "gtFine/train/aachen",
        "gtFine/train/bremen",
    ] {
        std::fs::create_dir_all(d.path().join(sub)).unwrap();
    }
    for (city, n) in [("aachen", 1u8), ("bremen", 2)] {
        let stem = format!("{city}_000000_000019");
        write_rgb(
            &d.path()
                .join(format!("leftImg8bit/train/{city}/{stem}_leftImg8bit.png")),
            4,
            2,
            |_, _| [n; 3],
        );
        write_gray8(
            &d.path().join(format!(
                "gtFine/train/{city}/{stem}_gtFine_labelTrainIds.png"
            )),
            4,
            2,
            |_, _| n,
        );
        write_rgb(
            &d.path()
                .join(format!("gtFine/train/{city}/{stem}_gtFine_color.png")),
            4,
            2,
            |_, _| [9; 3],
        );
    }
    let text = "[input]\nimages = \"leftImg8bit\"\nlabels = \"gtFine\"\nimage_suffix = \"_leftImg8bit\"\nlabel_suffix = \"_gtFine_labelTrainIds\"\n[labels]\nformat = \"index\"\nnum_classes = 19\n[output]\ndir = \"out\"\n";
    std::fs::write(d.path().join("p.toml"), text).unwrap();
    let r = run(d.path(), &["build", "p.toml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text: String = npz_keys(&d.path().join("out/train-00000-of-00001.npz")).concat();
    assert_eq!(
        text,
        "train/aachen/aachen_000000_000019train/bremen/bremen_000000_000019"
    );
    let (_, _, ids) = npz_entry(&d.path().join("out/train-00000-of-00001.npz"), "label.npy");
    assert_eq!(
        ids,
        [vec![1u8; 8], vec![2u8; 8]].concat(),
        "each image got its own city's label"
    );
    let c = run(d.path(), &["check", "p.toml"]);
    assert!(
        c.stdout
            .contains("not matching the naming rules (ignored): 2"),
        "{}",
        c.stdout
    );
}

#[test]
fn init_template_is_a_valid_pipeline() {
    let d = tempfile::tempdir().unwrap();
    let r = run(d.path(), &["init", "ds"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    folders(&d.path().join("ds"));
    std::fs::rename(d.path().join("ds/img"), d.path().join("ds/images")).unwrap();
    std::fs::rename(d.path().join("ds/lab"), d.path().join("ds/labels")).unwrap();
    for n in 0..5 {
        write_rgb(
            &d.path().join(format!("ds/images/{n}.png")),
            40,
            30,
            |x, _| [x as u8; 3],
        );
        write_gray8(
            &d.path().join(format!("ds/labels/{n}.png")),
            40,
            30,
            |x, _| (x > 20) as u8,
        );
    }
    let c = run(d.path(), &["check", "ds/pipeline.toml"]);
    assert_eq!(c.code, 0, "{}\n{}", c.stdout, c.stderr);
    let b = run(d.path(), &["build", "ds/pipeline.toml"]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert_eq!(
        run(d.path(), &["init", "ds"]).code,
        2,
        "init must not overwrite"
    );
}
