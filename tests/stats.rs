//! `segprep stats`: its counts agree with what a build counts, with and without geometric stages;
//! it reports bad data instead of stopping on it; and its options are checked.
mod common;
use common::*;

fn stats_json(dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["stats"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let r = run(dir, &all);
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

/// (split, class name) -> (pixels, images, image_pixels), from a report or from stats.json.
fn counts(splits: &serde_json::Value) -> Vec<(String, String, u64, u64, u64)> {
    let mut out = Vec::new();
    let rows: Vec<(String, &serde_json::Value)> = match splits {
        serde_json::Value::Array(a) => a
            .iter()
            .map(|s| (s["split"].as_str().unwrap().to_string(), s))
            .collect(),
        serde_json::Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        _ => unreachable!(),
    };
    for (split, s) in rows {
        for c in s["classes"].as_array().unwrap() {
            let n = |k: &str| c[k].as_u64().unwrap();
            out.push((
                split.clone(),
                c["name"].as_str().unwrap().into(),
                n("pixels"),
                n("images"),
                n("image_pixels"),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn pipeline_counts_equal_the_build_counts() {
    let d = quintal_dir();
    let split = "[split]\ntrain = 0.5\nval = 0.5\nseed = 3\n";
    let p = quintal_pipeline(d.path(), &format!("[[stage]]\nremap = {{ map = {{ muro = \"ignore\" }} }}\n{split}[output]\ndir = \"out\"\n"));
    let report = stats_json(d.path(), &[p]);
    assert_eq!(run(d.path(), &["build", p]).code, 0);
    let built = json(d.path().join("out/stats.json"));
    assert_eq!(counts(&report["splits"]), counts(&built["splits"]));
    assert!(
        report["before_remap"].is_array(),
        "a remap shows the counts before it"
    );
}

#[test]
fn geometry_counts_padding_as_the_build_does() {
    let d = quintal_dir();
    let stages = "[[stage]]\nresize = { size = [80, 40], mode = \"fit\" }\n[[stage]]\npad = { multiple_of = 32 }\n";
    let p = quintal_pipeline(d.path(), &format!("{stages}[output]\ndir = \"out\"\n"));
    let report = stats_json(d.path(), &[p, "--geometry"]);
    assert_eq!(run(d.path(), &["build", p]).code, 0);
    let built = json(d.path().join("out/stats.json"));
    assert_eq!(counts(&report["splits"]), counts(&built["splits"]));
    assert_eq!(
        report["splits"][0]["pad_pixels"],
        built["splits"]["train"]["pad_pixels"]
    );
    let plain = stats_json(d.path(), &[p]);
    assert_eq!(
        plain["splits"][0]["pad_pixels"], 0,
        "without --geometry no stage but remap runs"
    );
}

#[test]
fn bad_labels_are_reported_not_fatal() {
    let d = quintal_dir();
    write_rgb(
        &d.path().join("q/labelsRGB/datasetQuintal_027_L.png"),
        256,
        256,
        |x, _| if x < 16 { [1, 2, 3] } else { [255, 254, 229] },
    );
    std::fs::write(
        d.path().join("q/labelsRGB/datasetQuintal_003_L.png"),
        b"not a png",
    )
    .unwrap();
    let p = quintal_pipeline(d.path(), "[output]\ndir = \"out\"\n");
    let r = stats_json(d.path(), &[p]);
    let q = &r["quality"];
    assert_eq!(q["undeclared"][0][0], "colour (1, 2, 3)");
    assert_eq!(q["undeclared"][0][1], 16 * 256);
    assert!(
        q["unreadable"][0][0]
            .as_str()
            .unwrap()
            .ends_with("datasetQuintal_003_L.png"),
        "{q}"
    );
    assert!(r["warnings"].to_string().contains("could not be counted"));
}

#[test]
fn options_are_checked() {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), "[output]\ndir = \"out\"\n");
    for (args, phrase) in [
        (vec!["stats", p, "--recompute"], "build folder"),
        (vec!["stats", p, "--plot", "x.png"], ".svg"),
        (vec!["stats", p, "--format", "parquet"], "--out"),
        (vec!["stats", p, "--rare", "2"], "between 0 and 1"),
        (vec!["stats", "nowhere"], "cannot read pipeline"),
    ] {
        let r = run(d.path(), &args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(phrase), "{args:?}: {}", r.stderr);
    }
    assert_eq!(run(d.path(), &["build", p]).code, 0);
    let r = run(d.path(), &["stats", "out", "--geometry"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn rare_classes_follow_the_threshold() {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), "[output]\ndir = \"out\"\n");
    let rare = |threshold: &str| -> Vec<String> {
        let r = stats_json(d.path(), &[p, "--rare", threshold]);
        let rows = r["splits"][0]["classes"].as_array().unwrap().clone();
        for c in &rows {
            let flagged = c["rare"].as_bool().unwrap();
            let share = c["share"].as_f64().unwrap();
            assert_eq!(
                flagged,
                c["pixels"].as_u64().unwrap() > 0 && share < threshold.parse::<f64>().unwrap(),
                "{c}"
            );
        }
        r["splits"][0]["rare"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let (low, high) = (rare("0.01"), rare("0.1"));
    assert!(
        low.len() < high.len() && low.iter().all(|c| high.contains(c)),
        "{low:?} {high:?}"
    );
}
