//! Folder sources: images and labels found recursively, paired by relative folder and name
//! (key = image stem minus `image_suffix`; label stem = key + `label_suffix`), never by position.
use polars::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::{relative_key, Discovery};
use crate::decode::is_supported_image;
use crate::error::{Error, Result};
use crate::sample::PairRef;

/// Every supported image file below `root`, sorted. Directory symlink loops are visited once.
pub fn walk(root: &Path) -> Result<Vec<PathBuf>> {
    walk_with(root, None)
}

/// `walk`, keeping only the given extensions (case-insensitive) when some are given.
pub fn walk_with(root: &Path, extensions: Option<&[String]>) -> Result<Vec<PathBuf>> {
    let wanted = |p: &Path| {
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        extensions.is_none_or(|list| {
            list.iter()
                .any(|x| x.trim_start_matches('.').eq_ignore_ascii_case(ext))
        })
    };
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let real = std::fs::canonicalize(&dir).map_err(|e| Error::io(&dir, "discover", e))?;
        if !seen.insert(real) {
            continue;
        }
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, "discover", e))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::io(&dir, "discover", e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if is_supported_image(&path) && wanted(&path) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Key of a file: its relative folder and stem with `suffix` removed; `None` if the stem lacks it.
pub fn key_of(path: &Path, root: &Path, suffix: &str) -> Option<String> {
    let rel = relative_key(path, root);
    let stem = match rel.rsplit_once('.') {
        Some((stem, _ext)) => stem,
        None => &rel,
    };
    stem.strip_suffix(suffix)
        .filter(|k| !k.is_empty() && !k.ends_with('/'))
        .map(str::to_string)
}

pub fn pair_folders(
    images: &Path,
    labels: &Path,
    image_suffix: &str,
    label_suffix: &str,
    image_extensions: Option<&[String]>,
) -> Result<Discovery> {
    for dir in [images, labels] {
        if !dir.is_dir() {
            return Err(Error::data(dir, "discover", "folder not found"));
        }
    }
    let same_folder = std::fs::canonicalize(images).ok() == std::fs::canonicalize(labels).ok();
    let mut ignored = Vec::new();
    let mut label_side = Vec::new();
    for f in walk(labels)? {
        match key_of(&f, labels, label_suffix) {
            Some(k) => label_side.push((k, f)),
            None if !same_folder => ignored.push(f),
            None => {}
        }
    }
    let label_files: HashSet<&PathBuf> = label_side.iter().map(|(_, f)| f).collect();
    let mut image_side = Vec::new();
    for f in walk_with(images, image_extensions)? {
        if same_folder && label_files.contains(&f) {
            continue; // `x.png` and `x_mask.png` in one folder: the mask is not an image
        }
        match key_of(&f, images, image_suffix) {
            Some(k) => image_side.push((k, f)),
            None => ignored.push(f),
        }
    }
    check_duplicates(&image_side)?;
    check_duplicates(&label_side)?;
    let mut d = join_by_key(&image_side, &label_side)
        .map_err(|e| Error::data(images, "discover", format!("pairing failed: {e}")))?;
    ignored.sort();
    d.ignored = ignored;
    Ok(d)
}

/// Two files with one key (`a.png` and `a.jpg`) cannot be paired unambiguously.
fn check_duplicates(side: &[(String, PathBuf)]) -> Result<()> {
    let mut sorted: Vec<&(String, PathBuf)> = side.iter().collect();
    sorted.sort();
    let problems: Vec<Error> = sorted
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| {
            Error::data(
                &w[1].1,
                "discover",
                format!("has the same name as {}", w[0].1.display()),
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::DataSet {
            summary: "files that differ only by extension cannot be paired:".into(),
            problems,
        })
    }
}

/// Full outer join of the two sides on the key (polars); rows missing a side are unpaired.
fn join_by_key(
    images: &[(String, PathBuf)],
    labels: &[(String, PathBuf)],
) -> PolarsResult<Discovery> {
    let frame = |side: &[(String, PathBuf)], col: &str| -> PolarsResult<DataFrame> {
        let keys: Vec<&str> = side.iter().map(|(k, _)| k.as_str()).collect();
        let paths: Vec<String> = side
            .iter()
            .map(|(_, p)| p.to_string_lossy().into_owned())
            .collect();
        DataFrame::new(
            side.len(),
            vec![
                Column::new("key".into(), keys),
                Column::new(col.into(), paths),
            ],
        )
    };
    let joined = frame(images, "image")?
        .join(
            &frame(labels, "label")?,
            ["key"],
            ["key"],
            JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
            None,
        )?
        .sort(["key"], SortMultipleOptions::default())?;
    let (key, image, label) = (
        joined.column("key")?.str()?,
        joined.column("image")?.str()?,
        joined.column("label")?.str()?,
    );
    let mut d = Discovery::default();
    for i in 0..joined.height() {
        match (key.get(i), image.get(i), label.get(i)) {
            (Some(k), Some(im), Some(lb)) => {
                d.pairs
                    .push(PairRef::new(k.to_string(), im.into(), lb.into()))
            }
            (_, Some(im), None) => d.unpaired_images.push(im.into()),
            (_, None, Some(lb)) => d.unpaired_labels.push(lb.into()),
            _ => {}
        }
    }
    Ok(d)
}
