//! Discovery of image/label pairs: from folders (paired by name, with extra band folders), from
//! manifests and pair lists, or from a dataset in its own layout (MVTec dictionary, MVTec AD,
//! per-instance masks). The result is sorted by key, so everything downstream is independent of
//! file-system order.
pub mod bands;
pub mod folder;
pub mod input_manifest;
pub mod instances;
pub mod mvtec_ad;
pub mod mvtec_dict;
pub mod paths;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sample::PairRef;
use mvtec_ad::DefectClasses;
use paths::PathPrefix;

/// What discovery reads of a pipeline: where the files are and how they pair.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// The pipeline file, named when a needed path is missing.
    pub pipeline_file: PathBuf,
    /// The image folder, manifest or dataset.
    pub images: PathBuf,
    /// Further band folders (or manifests), in the declared order.
    pub bands: Vec<PathBuf>,
    pub labels: Option<PathBuf>,
    pub dataset: DatasetKind,
    pub image_suffix: String,
    pub label_suffix: String,
    pub image_extensions: Option<Vec<String>>,
    pub unpaired: UnpairedPolicy,
    pub path_prefix: Option<PathPrefix>,
    pub allow_outside: bool,
}

/// How the pairs are laid out: image and label files (folders or manifests), or a dataset that
/// names its own labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetKind {
    Pairs,
    /// An MVTec HALCON / Deep Learning Tool dictionary exported to JSON.
    MvtecDict,
    /// An MVTec AD category folder.
    MvtecAd {
        good: Vec<String>,
        defects: DefectClasses,
    },
    /// One binary mask per instance, in these folders of each sample folder.
    Instances {
        mask_folders: Vec<String>,
    },
}

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
pub fn discover(o: &SourceOptions) -> Result<Discovery> {
    let d = discover_all(o)?;
    if d.pairs.is_empty() {
        return Err(zero_pairs(o, &d));
    }
    if o.unpaired == UnpairedPolicy::Error {
        check_unpaired(o, &d)?;
    }
    Ok(d)
}

fn zero_pairs(o: &SourceOptions, d: &Discovery) -> Error {
    Error::data(
        &o.images,
        "discover",
        format!(
            "no image/label pairs found: {} image(s) and {} label(s) without a partner, {} file(s) not matching the suffixes \
             (image_suffix = {:?}, label_suffix = {:?}); labels: {}",
            d.unpaired_images.len(),
            d.unpaired_labels.len(),
            d.ignored.len(),
            o.image_suffix,
            o.label_suffix,
            o.labels.as_deref().map_or("-".into(), |l| l.display().to_string()),
        ),
    )
}

/// Everything found, paired or not, without judging it: what `segprep check` reports.
pub fn discover_all(o: &SourceOptions) -> Result<Discovery> {
    match &o.dataset {
        DatasetKind::MvtecDict => {
            return mvtec_dict::discover(&o.images, o.path_prefix.as_ref(), o.allow_outside)
        }
        DatasetKind::MvtecAd { good, defects } => {
            return mvtec_ad::discover(&o.images, good, *defects)
        }
        DatasetKind::Instances { mask_folders } => {
            return instances::discover(&o.images, mask_folders)
        }
        DatasetKind::Pairs => {}
    }
    let listings: Vec<&PathBuf> = std::iter::once(&o.images).chain(&o.bands).collect();
    if listings.iter().all(|l| input_manifest::is_manifest(l)) {
        return read_manifests(o, &listings);
    }
    let mut d = pair_folders(o)?;
    let skip = o.unpaired == UnpairedPolicy::Skip;
    bands::attach(&mut d, &o.images, &o.bands, &o.image_suffix, skip)?;
    Ok(d)
}

/// One or several manifests (e.g. CamVid's train.txt, val.txt, test.txt), read one after another.
fn read_manifests(o: &SourceOptions, listings: &[&PathBuf]) -> Result<Discovery> {
    let mut d = Discovery::default();
    for listing in listings {
        let rebase = paths::Rebase {
            root: listing.parent().unwrap_or(Path::new(".")),
            prefix: o.path_prefix.as_ref(),
            allow_outside: o.allow_outside,
        };
        d.pairs.extend(input_manifest::read(listing, rebase)?.pairs);
    }
    d.pairs.sort();
    check_unique_keys(&d.pairs, &o.images)?;
    Ok(d)
}

/// Keys name samples in shards and splits: two samples with one key would be indistinguishable.
pub fn check_unique_keys(sorted: &[PairRef], listing: &Path) -> Result<()> {
    let dup: Vec<Error> = sorted
        .windows(2)
        .filter(|w| w[0].key == w[1].key)
        .map(|w| {
            Error::data(
                &w[1].image,
                "discover",
                format!(
                    "key `{}` is also the key of {}",
                    w[1].key,
                    w[0].image.display()
                ),
            )
        })
        .collect();
    if dup.is_empty() {
        return Ok(());
    }
    Err(Error::DataSet {
        summary: format!("{}: sample keys must be unique:", listing.display()),
        problems: dup,
    })
}

fn pair_folders(o: &SourceOptions) -> Result<Discovery> {
    let labels = o.labels.as_deref().ok_or_else(|| {
        Error::pipeline(
            &o.pipeline_file,
            "[input] labels: a label folder is needed when images is a folder",
        )
    })?;
    folder::pair_folders(
        &o.images,
        labels,
        &o.image_suffix,
        &o.label_suffix,
        o.image_extensions.as_deref(),
    )
}

fn check_unpaired(o: &SourceOptions, d: &Discovery) -> Result<()> {
    let problems: Vec<Error> = d
        .unpaired_images
        .iter()
        .map(|f| match &o.dataset {
            DatasetKind::MvtecAd { good, .. } => {
                Error::data(f, "discover", mvtec_ad::missing_mask_hint(f, good))
            }
            _ => Error::data(f, "discover", "image has no label"),
        })
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

/// The folders directly inside `dir`, sorted.
pub fn subfolders(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
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
    if crate::storage::is_url(path) {
        return path.to_path_buf();
    }
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnpairedPolicy {
    /// Unpaired files stop the run, listed by name.
    #[default]
    Error,
    /// Unpaired files are skipped, counted and reported.
    Skip,
}
