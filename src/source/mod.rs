//! Discovery of image/label pairs: from folders (paired by name) or from a manifest table.
//! The result is sorted by key, so everything downstream is independent of file-system order.
pub mod folder;
pub mod manifest;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::pipeline::schema::UnpairedPolicy;
use crate::pipeline::Pipeline;
use crate::sample::PairRef;

#[derive(Debug, Default)]
pub struct Discovery {
    /// Sorted by key.
    pub pairs: Vec<PairRef>,
    pub unpaired_images: Vec<PathBuf>,
    pub unpaired_labels: Vec<PathBuf>,
    /// Files present but not matching the naming rules (e.g. `_color.png` beside `_labelIds.png`).
    pub ignored: Vec<PathBuf>,
}

/// Finds the pairs; with `unpaired = "error"`, any unpaired file is an error listing them.
pub fn discover(p: &Pipeline) -> Result<Discovery> {
    let d = discover_all(p)?;
    if d.pairs.is_empty() {
        return Err(zero_pairs(p, &d));
    }
    if p.config.input.unpaired == UnpairedPolicy::Error {
        check_unpaired(&d)?;
    }
    Ok(d)
}

fn zero_pairs(p: &Pipeline, d: &Discovery) -> Error {
    let i = &p.config.input;
    Error::data(
        &p.images_path,
        "discover",
        format!(
            "no image/label pairs found: {} image(s) and {} label(s) without a partner, {} file(s) not matching the suffixes \
             (image_suffix = {:?}, label_suffix = {:?}); labels: {}",
            d.unpaired_images.len(),
            d.unpaired_labels.len(),
            d.ignored.len(),
            i.image_suffix,
            i.label_suffix,
            p.labels_path.as_deref().map_or("-".into(), |l| l.display().to_string()),
        ),
    )
}

/// Everything found, paired or not, without judging it: what `segprep check` reports.
pub fn discover_all(p: &Pipeline) -> Result<Discovery> {
    if manifest::is_manifest(&p.images_path) {
        manifest::read(&p.images_path, p.config.input.allow_outside)
    } else {
        let labels = p.labels_path.as_deref().ok_or_else(|| {
            Error::pipeline(
                &p.file,
                "[input] labels: a label folder is needed when images is a folder",
            )
        })?;
        folder::pair_folders(
            &p.images_path,
            labels,
            &p.config.input.image_suffix,
            &p.config.input.label_suffix,
        )
    }
}

fn check_unpaired(d: &Discovery) -> Result<()> {
    let problems: Vec<Error> = d
        .unpaired_images
        .iter()
        .map(|f| Error::data(f, "discover", "image has no label"))
        .chain(
            d.unpaired_labels
                .iter()
                .map(|f| Error::data(f, "discover", "label has no image")),
        )
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::DataSet {
        summary: format!(
            "{} unpaired image(s) and {} unpaired label(s); fix the names or set [input] unpaired = \"skip\":",
            d.unpaired_images.len(),
            d.unpaired_labels.len()
        ),
        problems,
    })
}

/// A path relative to `root` with `/` separators, for keys and messages.
pub fn relative_key(path: &Path, root: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A path with `.` and `name/..` removed, for messages (`pipelines/../out` -> `out`).
pub fn tidy(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.iter().collect()
}
