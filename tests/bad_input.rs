//! Bad input → a message naming the file and the reason, the documented exit code, never a panic.
mod common;
use common::*;

fn assert_clean_failure(r: &Run, code: i32, needles: &[&str]) {
    assert_eq!(r.code, code, "exit code; stderr:\n{}", r.stderr);
    assert!(
        !r.stderr.contains("panicked"),
        "segprep panicked:\n{}",
        r.stderr
    );
    for n in needles {
        assert!(r.stderr.contains(n), "stderr lacks `{n}`:\n{}", r.stderr);
    }
}

const OUT: &str = "[output]\ndir = \"out\"\n";

#[test]
fn unknown_toml_key_names_line_and_nearest_key() {
    let d = quintal_dir();
    let text = QUINTAL_HEAD.replace("label_suffix", "labl_suffix") + OUT;
    std::fs::write(d.path().join("p.toml"), text).unwrap();
    let r = run(d.path(), &["build", "p.toml"]);
    assert_clean_failure(
        &r,
        2,
        &["p.toml:5:", "labl_suffix", "did you mean `label_suffix`"],
    );
    assert!(!d.path().join("out").exists());
}

#[test]
fn zstd_is_refused_for_npz_shards() {
    let d = quintal_dir();
    let p = quintal_pipeline(
        d.path(),
        "[output]\ndir = \"out\"\ncompression = \"zstd\"\n",
    );
    let r = run(d.path(), &["build", p]);
    assert_clean_failure(
        &r,
        2,
        &["compression = \"zstd\" applies to format = \"parquet\""],
    );
    assert!(!d.path().join("out").exists());
}

#[test]
fn unknown_stage_and_stage_key() {
    let d = quintal_dir();
    let p = quintal_pipeline(
        d.path(),
        &format!("[[stage]]\nresize = {{ size = 64, filtr = \"bilinear\" }}\n{OUT}"),
    );
    assert_clean_failure(
        &run(d.path(), &["build", p]),
        2,
        &["filtr", "did you mean `filter`"],
    );
    let p = quintal_pipeline(
        d.path(),
        &format!("[[stage]]\nresise = {{ size = 64 }}\n{OUT}"),
    );
    assert_clean_failure(
        &run(d.path(), &["check", p]),
        2,
        &["resise", "did you mean `resize`"],
    );
}

#[test]
fn unpaired_files_are_listed_by_name() {
    let d = quintal_dir();
    std::fs::remove_file(d.path().join("q/labelsRGB/datasetQuintal_027_L.png")).unwrap();
    std::fs::copy(
        d.path().join("q/labelsRGB/datasetQuintal_001_L.png"),
        d.path().join("q/labelsRGB/orphan_L.png"),
    )
    .unwrap();
    let p = quintal_pipeline(d.path(), OUT);
    let r = run(d.path(), &["build", p]);
    assert_clean_failure(
        &r,
        1,
        &[
            "datasetQuintal_027.png",
            "image has no label",
            "orphan_L.png",
            "label has no image",
            "unpaired = \"skip\"",
        ],
    );
    let skip = QUINTAL_HEAD.replace(
        "label_suffix = \"_L\"",
        "label_suffix = \"_L\"\nunpaired = \"skip\"",
    ) + OUT;
    std::fs::write(d.path().join("p.toml"), skip).unwrap();
    let r = run(d.path(), &["build", "p.toml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("2 unpaired file(s) skipped"),
        "{}",
        r.stderr
    );
    let index = json(d.path().join("out/index.json"));
    assert_eq!(index["unpaired_skipped"], 2);
}

#[test]
fn unknown_colour_names_file_colour_and_pixel_count() {
    let d = quintal_dir();
    // drop "areia" (255 233 87) from the table: 038 and 056 use it
    let table = std::fs::read_to_string(d.path().join("q/label_colors.txt")).unwrap();
    std::fs::write(
        d.path().join("q/label_colors.txt"),
        table.lines().skip(1).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let p = quintal_pipeline(d.path(), OUT);
    let r = run(d.path(), &["build", p]);
    assert_clean_failure(
        &r,
        1,
        &[
            "datasetQuintal_038_L.png",
            "colour (255, 233, 87)",
            "pixels)",
            "unknown = \"ignore\"",
        ],
    );
    // with unknown = "ignore" the run completes and counts them
    let text = std::fs::read_to_string(d.path().join(p))
        .unwrap()
        .replace("format = \"rgb\"", "format = \"rgb\"\nunknown = \"ignore\"");
    std::fs::write(d.path().join(p), text).unwrap();
    let r = run(d.path(), &["build", p]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let stats = json(d.path().join("out/stats.json"));
    assert!(stats["splits"]["train"]["unknown_pixels"].as_u64().unwrap() > 0);
}

#[test]
fn a_colour_given_twice_in_the_table_is_refused_by_check_and_build() {
    let d = quintal_dir();
    // a twelfth class with the colour of the first ("areia", line 1)
    let path = d.path().join("q/label_colors.txt");
    let table = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{table}\n255 233 87\tsand again")).unwrap();
    let p = quintal_pipeline(d.path(), OUT);
    for command in ["check", "build"] {
        let r = run(d.path(), &[command, p]);
        assert_clean_failure(
            &r,
            2,
            &["label_colors.txt", "line 12", "`sand again`", "at line 1"],
        );
    }
    assert!(!d.path().join("out").exists());
}

#[test]
fn corrupt_and_truncated_png() {
    let d = quintal_dir();
    let label = d.path().join("q/labelsRGB/datasetQuintal_003_L.png");
    let bytes = std::fs::read(&label).unwrap();
    std::fs::write(&label, &bytes[..bytes.len() / 2]).unwrap();
    let p = quintal_pipeline(d.path(), OUT);
    assert_clean_failure(
        &run(d.path(), &["build", p]),
        1,
        &["datasetQuintal_003_L.png", "[decode]"],
    );
    std::fs::write(&label, b"this is not a png at all").unwrap();
    assert_clean_failure(
        &run(d.path(), &["build", p]),
        1,
        &["datasetQuintal_003_L.png", "[decode]"],
    );
    let image = d.path().join("q/stills/datasetQuintal_027.png");
    std::fs::write(&label, &bytes).unwrap();
    let img = std::fs::read(&image).unwrap();
    std::fs::write(&image, &img[..img.len() / 3]).unwrap();
    assert_clean_failure(
        &run(d.path(), &["build", p]),
        1,
        &["datasetQuintal_027.png", "[decode]"],
    );
    assert!(
        !build_file(&d.path().join("out/index.json")).exists(),
        "a failed build must not look finished"
    );
}

#[test]
fn zero_pairs() {
    let d = quintal_dir();
    let text = QUINTAL_HEAD.replace("\"_L\"", "\"_label\"") + "[input.x]\n";
    let text = text.replace("[input.x]\n", "") + OUT;
    std::fs::write(d.path().join("p.toml"), text).unwrap();
    assert_clean_failure(
        &run(d.path(), &["build", "p.toml"]),
        1,
        &["no image/label pairs found"],
    );
    std::fs::create_dir_all(d.path().join("empty/a")).unwrap();
    std::fs::create_dir_all(d.path().join("empty/b")).unwrap();
    let text = format!(
        "[input]\nimages = \"empty/a\"\nlabels = \"empty/b\"\n[labels]\nformat = \"binary\"\n{OUT}"
    );
    std::fs::write(d.path().join("p.toml"), text).unwrap();
    assert_clean_failure(
        &run(d.path(), &["build", "p.toml"]),
        1,
        &["no image/label pairs found"],
    );
}

#[test]
fn sixteen_bit_labels_and_u8_output() {
    let d = tempfile::tempdir().unwrap();
    for sub in ["img", "lab"] {
        std::fs::create_dir_all(d.path().join(sub)).unwrap();
    }
    write_gray8(&d.path().join("img/a.png"), 8, 4, |x, _| x as u8);
    write_gray16(&d.path().join("lab/a.png"), 8, 4, |x, y| {
        if y == 0 {
            299
        } else {
            x as u16
        }
    });
    let base = "[input]\nimages = \"img\"\nlabels = \"lab\"\n[labels]\nformat = \"index\"\nignore_index = 65535\n";
    // 300 classes cannot be written as u8: refused before any pixel is read
    std::fs::write(
        d.path().join("p.toml"),
        format!("{base}num_classes = 300\n[output]\ndir = \"out\"\nlabel_dtype = \"u8\"\n"),
    )
    .unwrap();
    assert_clean_failure(
        &run(d.path(), &["build", "p.toml"]),
        2,
        &["p.toml", "label_dtype = \"u8\"", "class_299", "u16"],
    );
    // a 16-bit value beyond the declared classes names the value and the file
    std::fs::write(
        d.path().join("p.toml"),
        format!("{base}num_classes = 10\n[output]\ndir = \"out\"\n"),
    )
    .unwrap();
    assert_clean_failure(
        &run(d.path(), &["build", "p.toml"]),
        1,
        &["lab/a.png", "value 299 (8 pixels)", "not a declared class"],
    );
    // declared: kept exactly, as u16
    std::fs::write(
        d.path().join("p.toml"),
        format!("{base}num_classes = 300\n[output]\ndir = \"out\"\n"),
    )
    .unwrap();
    let r = run(d.path(), &["build", "p.toml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (dtype, shape, body) =
        npz_entry(&d.path().join("out/train-00000-of-00001.npz"), "label.npy");
    assert_eq!((dtype.as_str(), shape), ("<u2", vec![1, 4, 8]));
    let ids: Vec<u16> = body
        .chunks(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(&ids[..8], &[299; 8]);
    assert_eq!(&ids[8..16], &[0, 1, 2, 3, 4, 5, 6, 7]);
}

#[test]
fn size_mismatch_between_image_and_label() {
    let d = tempfile::tempdir().unwrap();
    for sub in ["img", "lab"] {
        std::fs::create_dir_all(d.path().join(sub)).unwrap();
    }
    write_gray8(&d.path().join("img/a.png"), 8, 4, |_, _| 1);
    write_gray8(&d.path().join("lab/a.png"), 4, 8, |_, _| 0);
    std::fs::write(d.path().join("p.toml"), "[input]\nimages = \"img\"\nlabels = \"lab\"\n[labels]\nformat = \"index\"\nnum_classes = 2\n[output]\ndir = \"out\"\n").unwrap();
    assert_clean_failure(
        &run(d.path(), &["build", "p.toml"]),
        1,
        &["lab/a.png", "label is 4x8 but its image", "8x4"],
    );
    let c = run(d.path(), &["check", "p.toml"]);
    assert_eq!(c.code, 1);
    assert!(c.stdout.contains("size mismatches: 1"), "{}", c.stdout);
}

#[test]
fn rgb_label_with_index_format_gets_a_hint() {
    let d = quintal_dir();
    let text = QUINTAL_HEAD.replace(
        "format = \"rgb\"\ncolors = \"q/label_colors.txt\"",
        "format = \"index\"\nnum_classes = 11",
    ) + OUT;
    std::fs::write(d.path().join("p.toml"), text).unwrap();
    assert_clean_failure(
        &run(d.path(), &["build", "p.toml"]),
        1,
        &["_L.png", "labels.format = \"rgb\""],
    );
}

#[test]
fn pipeline_problems_are_reported_together() {
    let d = quintal_dir();
    let p = quintal_pipeline(
        d.path(),
        "[[stage]]\npad = { multiple_of = 0 }\n[[stage]]\nremap = { map = { nope = \"ignore\" } }\n[split]\ntrain = 0.9\nval = 0.2\n[output]\ndir = \"out\"\n",
    );
    let r = run(d.path(), &["build", p]);
    assert_clean_failure(
        &r,
        2,
        &["multiple_of = 0", "no class is named `nope`", "must be 1"],
    );
}

#[test]
fn missing_pipeline_file_and_bad_threads() {
    let d = tempfile::tempdir().unwrap();
    assert_clean_failure(&run(d.path(), &["build", "nope.toml"]), 2, &["nope.toml"]);
    let q = quintal_dir();
    let p = quintal_pipeline(q.path(), OUT);
    assert_clean_failure(
        &run(q.path(), &["build", p, "--threads", "0"]),
        2,
        &["--threads"],
    );
}

#[test]
fn output_inside_input_or_in_a_foreign_folder_is_refused() {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), "[output]\ndir = \"q/stills/out\"\n");
    assert_clean_failure(
        &run(d.path(), &["build", p]),
        2,
        &["inside the input folder"],
    );
    std::fs::create_dir_all(d.path().join("mine")).unwrap();
    std::fs::write(d.path().join("mine/thesis.tex"), "x").unwrap();
    let p = quintal_pipeline(d.path(), "[output]\ndir = \"mine\"\n");
    assert_clean_failure(
        &run(d.path(), &["build", p, "--force"]),
        2,
        &["not a segprep build"],
    );
    assert!(d.path().join("mine/thesis.tex").exists());
}

#[test]
fn layout_must_fit_the_format() {
    let d = quintal_dir();
    let p = quintal_pipeline(
        d.path(),
        "[output]\ndir = \"out\"\nformat = \"parquet\"\nlayout = \"gym\"\n",
    );
    assert_clean_failure(
        &run(d.path(), &["build", p]),
        2,
        &["layout = \"gym\"", "parquet: huggingface, tensor"],
    );
    let p = quintal_pipeline(d.path(), "[[stage]]\nstandardize = { mode = \"per_image\" }\n[output]\ndir = \"out\"\nformat = \"parquet\"\n");
    assert_clean_failure(
        &run(d.path(), &["build", p]),
        2,
        &["PNG", "layout = \"tensor\""],
    );
}
