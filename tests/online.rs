//! The pipeline live (`segprep::online`, behind `segprep.Pipeline`): every copy a build writes
//! comes out of `Online::sample` alone with the very bytes of its shard, later copies are fresh
//! draws, and a copy that cannot exist is refused. The Python side is tested in
//! tests/python/test_online.py.
mod common;
use common::*;
use segprep::online::Online;
use segprep::progress::Silent;

const STAGES: &str = "[[stage]]\nresize = { size = [48, 40], mode = \"fit\" }\n[[stage]]\naugment = { copies = 2, hflip = 0.5, rotate = [-20, 20], zoom = [0.9, 1.2], brightness = [-0.1, 0.1], noise = [0, 0.02], seed = 3 }\n[[stage]]\nstandardize = { mode = \"per_image\" }\n[split]\ntrain = 0.67\nval = 0.33\nseed = 1\n[output]\ndir = \"out\"\n";

#[test]
fn each_built_copy_is_made_alone_with_the_same_bytes() {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), STAGES);
    let r = run(d.path(), &["build", p, "--threads", "2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let online = Online::open(&d.path().join(p), false, None, &Silent).unwrap();
    assert_eq!(online.split_names(), ["train", "val"]);
    let mut compared = 0;
    for split in ["train", "val"] {
        let shard = d.path().join(format!("out/{split}-00000-of-00001.npz"));
        let built_keys = npz_keys(&shard);
        let (_, shape, images) = npz_entry(&shard, "image.npy");
        let (_, _, labels) = npz_entry(&shard, "label.npy");
        let (_, _, means) = npz_entry(&shard, "image_mean.npy");
        let image_bytes = images.len() / shape[0] as usize;
        let label_bytes = labels.len() / shape[0] as usize;
        let copies = online.copies_per_key(split) as u32;
        let keys = online.keys(split).unwrap();
        assert_eq!(built_keys.len(), keys.len() * copies as usize);
        for (row, built_key) in built_keys.iter().enumerate() {
            let (key, copy) = match built_key.split_once('@') {
                Some((k, c)) => (k, c.parse().unwrap()),
                None => (built_key.as_str(), 0),
            };
            assert_eq!(keys[row / copies as usize], key, "the build's key order");
            let s = online.sample(key, copy).unwrap();
            assert_eq!(&s.key, built_key);
            let at = |bytes: &[u8], n: usize| bytes[row * n..(row + 1) * n].to_vec();
            assert!(s.image == at(&images, image_bytes), "{built_key}: image");
            assert!(s.label == at(&labels, label_bytes), "{built_key}: label");
            let mean = f64::from_le_bytes(at(&means, 8).try_into().unwrap());
            assert_eq!(s.standardization.unwrap().0, mean, "{built_key}: mean");
            compared += 1;
        }
    }
    assert_eq!(
        compared,
        4 * 3 + 2,
        "4 train pairs as original + 2 copies, 2 val pairs"
    );
}

#[test]
fn later_copies_are_fresh_draws_and_impossible_copies_are_refused() {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), STAGES);
    let online = Online::open(&d.path().join(p), false, None, &Silent).unwrap();
    let key = online.keys("train").unwrap()[0].to_string();
    let drawn: Vec<_> = (0..6).map(|c| online.sample(&key, c).unwrap()).collect();
    for (i, a) in drawn.iter().enumerate() {
        for b in &drawn[i + 1..] {
            assert_ne!(a.image, b.image, "{} and {}", a.key, b.key);
        }
    }
    assert_eq!(online.sample(&key, 5).unwrap(), drawn[5], "a copy repeats");
    let batch = online.batch(&[key.clone(), key.clone()], 4).unwrap();
    assert_eq!(batch, [drawn[4].clone(), drawn[4].clone()]);
    let val = online.keys("val").unwrap()[0].to_string();
    let refused = online.sample(&val, 1).unwrap_err().to_string();
    assert!(
        refused.contains("split val has no augmented copies"),
        "{refused}"
    );
    let unknown = online.sample("nope", 0).unwrap_err().to_string();
    assert!(unknown.contains("no key \"nope\""), "{unknown}");
    let no_split = online.keys("test").unwrap_err().to_string();
    assert!(no_split.contains("splits: train, val"), "{no_split}");
}

const PREPARED: &str = "[[stage]]\nresize = { size = [48, 40], mode = \"fit\" }\n[[stage]]\naugment = { copies = 2, hflip = 0.5, rotate = [-20, 20], seed = 3 }\n[[stage]]\nstandardize = { mode = \"per_image\" }\n[output]\ndir = \"out\"\n";

#[test]
fn an_augment_online_build_stores_the_prepared_originals_and_records_every_stage() {
    let d = quintal_dir();
    let p = quintal_pipeline(d.path(), PREPARED);
    let r = run(d.path(), &["build", p, "--augment-online"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let index = json(d.path().join("out/index.json"));
    assert_eq!(index["splits"]["train"]["samples"], 6, "no copies: {index}");
    assert_eq!(index["pipeline"]["output"]["augment"], "online");
    let stages: Vec<_> = index["stages"].as_array().unwrap().iter().collect();
    assert_eq!(
        stages.len(),
        3,
        "apply replays the data loader's stages too"
    );
    let shard = d.path().join("out/train-00000-of-00001.npz");
    let (dtype, shape, _) = npz_entry(&shard, "image.npy");
    assert_eq!(
        (dtype.as_str(), shape),
        ("|u1", vec![6, 40, 48, 3]),
        "before standardize"
    );
    assert!(npz_keys(&shard).iter().all(|k| !k.contains('@')));
    // the same file without the flag builds every stage
    let full = run(d.path(), &["build", p, "--out", "full"]);
    assert_eq!(full.code, 0, "{}", full.stderr);
    assert_eq!(
        json(d.path().join("full/index.json"))["splits"]["train"]["samples"],
        18
    );
}

#[test]
fn augment_online_needs_an_augment_stage_and_nothing_after_it_that_changes_classes() {
    let d = quintal_dir();
    for (stages, why) in [
        ("[[stage]]\nresize = { size = 32 }\n", "the pipeline has none"),
        ("[[stage]]\naugment = { copies = 1, hflip = 0.5 }\n[[stage]]\nstandardize = { mode = \"dataset\" }\n", "standardize mode = \"dataset\" after the augment stage"),
        ("[[stage]]\naugment = { copies = 1, hflip = 0.5 }\n[[stage]]\nremap = { map = { areia = \"ignore\" }, unmapped = \"keep\" }\n", "a remap after the augment stage"),
    ] {
        let p = quintal_pipeline(d.path(), &format!("{stages}[output]\ndir = \"out\"\naugment = \"online\"\n"));
        let r = run(d.path(), &["build", p]);
        assert_eq!(r.code, 2, "{stages}: {}", r.stderr);
        assert!(r.stderr.contains(why), "{why}: {}", r.stderr);
    }
}
