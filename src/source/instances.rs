//! Per-instance mask datasets (Data Science Bowl 2018 layout): one folder per sample,
//! `<id>/images/<id>.png` and one binary mask per instance in `<id>/<mask folder>/*.png`. The masks
//! are merged when the label is decoded (`decode::masks`); here they are only found.
use std::path::{Path, PathBuf};

use super::{folder, subfolders, Discovery};
use crate::classes::{background_and, Class};
use crate::error::{Error, Result};
use crate::sample::{LabelSource, PairRef};

/// Background 0, then one class per mask folder (named `foreground` when there is one folder,
/// unless names are given).
pub fn classes(mask_folders: &[String]) -> Vec<Class> {
    match mask_folders {
        [_] => background_and(["foreground"]),
        many => background_and(many.iter().cloned()),
    }
}

pub fn discover(root: &Path, mask_folders: &[String]) -> Result<Discovery> {
    if !root.is_dir() {
        return Err(Error::data(root, "discover", "folder not found"));
    }
    let samples = subfolders(root).map_err(|e| Error::io(root, "discover", e))?;
    let mut d = Discovery::default();
    for dir in samples {
        let id = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let image = sample_image(&dir, &id)?;
        let mut classes = Vec::new();
        for (i, f) in mask_folders.iter().enumerate() {
            let masks = dir.join(f);
            if !masks.is_dir() {
                return Err(Error::data(
                    &masks,
                    "discover",
                    format!("sample `{id}` has no mask folder `{f}` (labels.mask_folders = {mask_folders:?}); an image without instances needs an empty folder"),
                ));
            }
            classes.push((i as u16 + 1, folder::walk(&masks)?));
        }
        d.pairs.push(PairRef {
            key: id,
            image,
            bands: Vec::new(),
            label: LabelSource::Masks {
                folder: dir,
                classes,
            },
            split: None,
        });
    }
    Ok(d)
}

/// The one image in `<id>/images/`: `<id>.*`, or the only image there.
fn sample_image(dir: &Path, id: &str) -> Result<PathBuf> {
    let images_dir = dir.join("images");
    let files = if images_dir.is_dir() {
        folder::walk(&images_dir)?
    } else {
        Vec::new()
    };
    let named: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.file_stem().is_some_and(|s| s == id))
        .collect();
    let only = match (named.as_slice(), files.as_slice()) {
        ([one], _) => Some(*one),
        ([], [one]) => Some(one),
        _ => None,
    };
    match only {
        Some(one) => Ok(one.clone()),
        None => Err(Error::data(
            &images_dir,
            "discover",
            format!(
                "expected the image images/{id}.png ({} image file(s) found there)",
                files.len()
            ),
        )),
    }
}
