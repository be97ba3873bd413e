//! Extra band folders (`images = ["rgb", "nir", "swir"]`): each pair gets the file of the same
//! relative folder and stem (minus `image_suffix`) from every further folder, in declared order.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{folder, Discovery};
use crate::error::{Error, Result};

/// Adds the band files to each pair. A pair missing a band is an error naming the folder and the
/// key, or, with `unpaired = "skip"`, an unpaired image; band files no pair uses are unpaired too.
pub fn attach(
    d: &mut Discovery,
    first: &Path,
    folders: &[PathBuf],
    suffix: &str,
    skip: bool,
) -> Result<()> {
    let mut by_folder: Vec<HashMap<String, PathBuf>> = Vec::new();
    for dir in folders {
        if !dir.is_dir() {
            return Err(Error::data(dir, "discover", "band folder not found"));
        }
        let mut files = HashMap::new();
        for f in folder::walk(dir)? {
            match folder::key_of(&f, dir, suffix) {
                Some(k) => {
                    if let Some(other) = files.insert(k, f.clone()) {
                        return Err(Error::data(
                            &f,
                            "discover",
                            format!("has the same name as {}", other.display()),
                        ));
                    }
                }
                None => d.ignored.push(f),
            }
        }
        by_folder.push(files);
    }
    let mut missing = Vec::new();
    let mut kept = Vec::new();
    for mut pair in std::mem::take(&mut d.pairs) {
        let found: Vec<Option<PathBuf>> =
            by_folder.iter_mut().map(|m| m.remove(&pair.key)).collect();
        let absent: Vec<&PathBuf> = folders
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(dir, _)| dir)
            .collect();
        if absent.is_empty() {
            pair.bands = found.into_iter().flatten().collect();
            kept.push(pair);
        } else {
            for dir in absent {
                missing.push(Error::data(
                    dir.join(&pair.key),
                    "discover",
                    format!("band file missing: {} has no file named `{}` (with any image extension) beside {}", dir.display(), pair.key, pair.image.display()),
                ));
            }
            d.unpaired_images.push(pair.image);
        }
    }
    d.pairs = kept;
    let mut leftover: Vec<PathBuf> = by_folder
        .into_iter()
        .flat_map(|m| m.into_values())
        .collect();
    leftover.sort();
    d.unpaired_images.extend(leftover);
    if !missing.is_empty() && !skip {
        return Err(Error::DataSet {
            summary: format!(
                "{} band file(s) missing (bands are paired with {} by name); add them, or set [input] unpaired = \"skip\":",
                missing.len(),
                first.display()
            ),
            problems: missing,
        });
    }
    Ok(())
}
