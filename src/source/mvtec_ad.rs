//! MVTec AD category folders: `<split>/<type>/NNN.png` images, `ground_truth/<type>/NNN_mask.png`
//! masks (0/255). Images of a `good` type have no mask and are all background; every other type is
//! a defect class (or all one `defect` class). The split folder (`train`, `test`) is the split.
use serde::{Deserialize, Serialize};
use std::path::Path;

use super::{folder, subfolders, Discovery};
use crate::classes::{background_and, Class};
use crate::error::{Error, Result};

use crate::sample::{LabelSource, PairRef};
use crate::split;

const GROUND_TRUTH: &str = "ground_truth";

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The defect types of a category: its `ground_truth` subfolders, in name order.
pub fn defect_types(root: &Path) -> std::result::Result<Vec<String>, String> {
    let gt = root.join(GROUND_TRUTH);
    if !gt.is_dir() {
        let categories: Vec<String> = subfolders(root)
            .map_err(|e| format!("cannot read {}: {e}", root.display()))?
            .into_iter()
            .filter(|d| d.join(GROUND_TRUTH).is_dir())
            .map(|d| name(&d))
            .collect();
        return Err(if categories.is_empty() {
            format!(
                "{} is not an MVTec AD category: it has no `{GROUND_TRUTH}` folder",
                root.display()
            )
        } else {
            format!(
                "{} holds several MVTec AD categories ({}); set [input] images to one of them, one pipeline per category",
                root.display(),
                categories.join(", ")
            )
        });
    }
    let types = subfolders(&gt).map_err(|e| format!("cannot read {}: {e}", gt.display()))?;
    Ok(types.iter().map(|d| name(d)).collect())
}

/// Background 0, then the defect classes.
pub fn classes(types: &[String], defects: DefectClasses) -> Vec<Class> {
    match defects {
        DefectClasses::PerType => background_and(types.iter().cloned()),
        DefectClasses::Single => background_and(["defect"]),
    }
}

/// Every image of the category with its mask (or none, for `good` types).
pub fn discover(root: &Path, good: &[String], defects: DefectClasses) -> Result<Discovery> {
    let err = |m: String| Error::data(root, "discover", m);
    let types = defect_types(root).map_err(err)?;
    let mut d = Discovery::default();
    let mut used_masks = std::collections::HashSet::new();
    for split_dir in subfolders(root).map_err(|e| Error::io(root, "discover", e))? {
        let split_name = name(&split_dir);
        if split_name == GROUND_TRUTH {
            continue;
        }
        for type_dir in subfolders(&split_dir).map_err(|e| Error::io(&split_dir, "discover", e))? {
            let kind = name(&type_dir);
            for image in folder::walk(&type_dir)? {
                let stem = image
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let key = format!("{split_name}/{kind}/{stem}");
                let label = if good.contains(&kind) {
                    LabelSource::Background
                } else {
                    let mask = root
                        .join(GROUND_TRUTH)
                        .join(&kind)
                        .join(format!("{stem}_mask.png"));
                    let class = match defects {
                        DefectClasses::PerType => {
                            types.iter().position(|t| *t == kind).map(|i| i as u16 + 1)
                        }
                        DefectClasses::Single => Some(1),
                    };
                    match class.filter(|_| mask.is_file()) {
                        Some(class) => {
                            used_masks.insert(mask.clone());
                            LabelSource::Masks {
                                folder: mask.parent().map(Path::to_path_buf).unwrap_or_default(),
                                classes: vec![(class, vec![mask])],
                            }
                        }
                        None => {
                            d.unpaired_images.push(image);
                            continue;
                        }
                    }
                };
                d.pairs.push(PairRef {
                    key,
                    image,
                    bands: Vec::new(),
                    label,
                    split: Some(split::canonical(&split_name)),
                });
            }
        }
    }
    d.unpaired_labels = folder::walk(&root.join(GROUND_TRUTH))?
        .into_iter()
        .filter(|m| !used_masks.contains(m))
        .collect();
    d.pairs.sort();
    Ok(d)
}

/// What an unpaired MVTec AD image lacks, for the error message.
pub fn missing_mask_hint(image: &Path, good: &[String]) -> String {
    let stem = image
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kind = image.parent().map(name).unwrap_or_default();
    format!(
        "no mask ground_truth/{kind}/{stem}_mask.png; if `{kind}` images are defect-free, add it to labels.good (now {good:?})"
    )
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DefectClasses {
    /// Background 0, then one class per defect folder in name order.
    #[default]
    PerType,
    /// Background 0 and `defect` 1.
    Single,
}
