//! MVTec HALCON / Deep Learning Tool segmentation datasets: the DLDataset dictionary as HALCON's
//! `dict_to_json` writes it.
//!
//! `class_ids` and `class_names` give the classes (ids may be sparse: 0, 3, 7); `image_dir` and
//! `segmentation_dir` hold the files named by `samples[]` (`image_file_name`,
//! `segmentation_file_name`, optional `split` = train / validation / test). HALCON writes a
//! one-element tuple as a plain value, so single values and one-element lists are both accepted.
//!
//! Folder rule: a relative `image_dir` resolves against the dictionary's folder; an absolute one
//! from another machine (`C:\Users\...\images`) is re-rooted by `[input] path_prefix`, or else
//! becomes the folder of the same name beside the dictionary (`<dictionary folder>/images`).
use serde_json::Value;
use std::path::{Path, PathBuf};

use super::paths::{self, Rebase};
use super::{relative_key, Discovery};
use crate::classes::Class;
use crate::error::{Error, Result};
use crate::sample::PairRef;
use crate::source::paths::PathPrefix;
use crate::split;

/// The dictionary as far as segmentation needs it.
#[derive(Debug)]
pub struct Dictionary {
    pub classes: Vec<Class>,
    image_dir: String,
    segmentation_dir: String,
    samples: Vec<DictSample>,
}

#[derive(Debug)]
struct DictSample {
    image: String,
    label: String,
    split: Option<String>,
}

/// Reads and checks the dictionary file; errors name the field or sample at fault.
pub fn read(path: &Path) -> std::result::Result<Dictionary, String> {
    let is_hdict = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("hdict"));
    if is_hdict {
        return Err(hdict_message());
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read dictionary: {e}"))?;
    let root: Value = serde_json::from_slice(&bytes).map_err(|e| {
        if std::str::from_utf8(&bytes).is_err() {
            format!(
                "not JSON text ({e}); if this is a binary HALCON dictionary: {}",
                hdict_message()
            )
        } else {
            format!("not valid JSON: {e}")
        }
    })?;
    parse(&root)
}

fn hdict_message() -> String {
    "a binary HALCON dictionary (.hdict) can only be read by HALCON: open it with read_dict, \
     export it with dict_to_json and write the string to a .json file, then set [input] images to that file"
        .into()
}

pub fn parse(root: &Value) -> std::result::Result<Dictionary, String> {
    let obj = root
        .as_object()
        .ok_or("the dictionary must be a JSON object with class_ids, class_names, image_dir, segmentation_dir and samples")?;
    let field = |name: &str| obj.get(name).ok_or_else(|| format!("no `{name}` field"));
    let ids = list(field("class_ids")?)
        .iter()
        .map(|v| as_id(v).ok_or_else(|| format!("class_ids: `{v}` is not a class id (0..65535)")))
        .collect::<std::result::Result<Vec<u16>, String>>()?;
    let names = list(field("class_names")?)
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("class_names: `{v}` is not a string"))
        })
        .collect::<std::result::Result<Vec<String>, String>>()?;
    if ids.len() != names.len() {
        return Err(format!(
            "class_ids has {} entries but class_names has {}",
            ids.len(),
            names.len()
        ));
    }
    let classes = ids
        .into_iter()
        .zip(names)
        .map(|(id, name)| Class {
            id,
            name,
            color: None,
        })
        .collect();
    let text = |name: &str| -> std::result::Result<String, String> {
        match field(name)? {
            Value::String(s) => Ok(s.clone()),
            Value::Array(a) if a.len() == 1 && a[0].is_string() => {
                Ok(a[0].as_str().unwrap_or_default().into())
            }
            other => Err(format!("`{name}` must be a path, not `{other}`")),
        }
    };
    let image_dir = text("image_dir")?;
    let segmentation_dir = text("segmentation_dir").map_err(|e| {
        format!("{e}: a segmentation dataset names its label folder in segmentation_dir (is this a classification or detection dataset?)")
    })?;
    let samples = list(field("samples")?)
        .iter()
        .enumerate()
        .map(|(i, s)| sample(i, s))
        .collect::<std::result::Result<Vec<_>, String>>()?;
    Ok(Dictionary {
        classes,
        image_dir,
        segmentation_dir,
        samples,
    })
}

/// HALCON writes one-element tuples as plain values.
fn list(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a,
        other => std::slice::from_ref(other),
    }
}

fn as_id(v: &Value) -> Option<u16> {
    let v = match v {
        Value::Array(a) if a.len() == 1 => &a[0],
        v => v,
    };
    let n = v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0)
            .map(|f| f as u64)
    })?;
    u16::try_from(n).ok()
}

fn sample(i: usize, v: &Value) -> std::result::Result<DictSample, String> {
    let id = v
        .get("image_id")
        .map_or_else(|| format!("#{i}"), |id| format!("{i} (image_id {id})"));
    let text = |name: &str| -> std::result::Result<Option<String>, String> {
        match v.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
                Ok(a[0].as_str().map(str::to_string))
            }
            Some(other) => Err(format!(
                "samples[{id}]: `{name}` must be a file name, not `{other}`"
            )),
        }
    };
    let need = |name: &str| text(name)?.ok_or_else(|| format!("samples[{id}] has no `{name}`"));
    let split = text("split")?.map(|s| split::canonical(&s));
    if let Some(s) = split.as_deref().filter(|s| !split::is_valid_name(s)) {
        return Err(format!(
            "samples[{id}]: split `{s}` must be letters, digits, `_` or `-`"
        ));
    }
    Ok(DictSample {
        image: need("image_file_name")?,
        label: need("segmentation_file_name")?,
        split,
    })
}

/// The folder a dictionary's `image_dir` or `segmentation_dir` names on this machine.
fn dataset_folder(written: &str, dict_folder: &Path, prefix: Option<&PathPrefix>) -> PathBuf {
    let rebase = Rebase {
        root: dict_folder,
        prefix,
        allow_outside: true,
    };
    if let Some(p) = rebase.prefixed(written) {
        return p;
    }
    let s = paths::normalise(written);
    let foreign = paths::is_windows_absolute(&s) || (s.starts_with('/') && !Path::new(&s).is_dir());
    if foreign {
        let last = s.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        return dict_folder.join(last);
    }
    dict_folder.join(s)
}

/// The samples of a dictionary file as pairs; files must stay inside their folders.
pub fn discover(
    path: &Path,
    prefix: Option<&PathPrefix>,
    allow_outside: bool,
) -> Result<Discovery> {
    let err = |m: String| Error::data(path, "discover", m);
    let dict = read(path).map_err(err)?;
    let dict_folder = path.parent().unwrap_or(Path::new("."));
    let image_dir = dataset_folder(&dict.image_dir, dict_folder, prefix);
    let label_dir = dataset_folder(&dict.segmentation_dir, dict_folder, prefix);
    for (name, dir) in [("image_dir", &image_dir), ("segmentation_dir", &label_dir)] {
        if !dir.is_dir() {
            return Err(err(format!(
                "{name} `{}` is {}, which is not a folder; set [input] path_prefix = {{ from = \"<start of the written path>\", to = \"<folder here>\" }}",
                if name == "image_dir" { &dict.image_dir } else { &dict.segmentation_dir },
                super::tidy(dir).display()
            )));
        }
    }
    let at = |root| Rebase {
        root,
        prefix,
        allow_outside,
    };
    let mut d = Discovery::default();
    for s in &dict.samples {
        let named = |m: String| err(format!("sample `{}`: {m}", s.image));
        let image = at(&image_dir).resolve(&s.image).map_err(named)?;
        let label = at(&label_dir).resolve(&s.label).map_err(named)?;
        let rel = relative_key(&image, &image_dir);
        let key = rel
            .rsplit_once('.')
            .map_or(rel.as_str(), |(stem, _)| stem)
            .to_string();
        let mut pair = PairRef::new(key, image, label);
        pair.split = s.split.clone();
        d.pairs.push(pair);
    }
    d.pairs.sort();
    super::check_unique_keys(&d.pairs, path)?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halcon_single_values_and_sparse_ids_parse() {
        let v: Value = serde_json::from_str(
            r#"{"class_ids": [0, 3, 7], "class_names": ["good", "crack", "stain"],
                "image_dir": "C:\\data\\images", "segmentation_dir": "labels",
                "samples": [{"image_id": 1, "image_file_name": "a.png",
                             "segmentation_file_name": ["a.png"], "split": "validation"}]}"#,
        )
        .unwrap();
        let d = parse(&v).unwrap();
        assert_eq!(
            d.classes.iter().map(|c| c.id).collect::<Vec<_>>(),
            [0, 3, 7]
        );
        assert_eq!(d.samples[0].split.as_deref(), Some("val"));
        assert_eq!(d.samples[0].label, "a.png");
    }

    #[test]
    fn mismatched_classes_and_missing_label_are_named() {
        let v: Value = serde_json::from_str(
            r#"{"class_ids": [0, 1], "class_names": ["a"], "image_dir": "i", "segmentation_dir": "s", "samples": []}"#,
        )
        .unwrap();
        assert!(parse(&v).unwrap_err().contains("class_names has 1"));
        let v: Value = serde_json::from_str(
            r#"{"class_ids": 0, "class_names": "a", "image_dir": "i", "segmentation_dir": "s",
                "samples": [{"image_id": 5, "image_file_name": "x.png"}]}"#,
        )
        .unwrap();
        let e = parse(&v).unwrap_err();
        assert!(
            e.contains("image_id 5") && e.contains("segmentation_file_name"),
            "{e}"
        );
    }

    #[test]
    fn windows_folder_is_rerooted_beside_the_dictionary() {
        let d = Path::new("/data/pills");
        assert_eq!(
            dataset_folder(r"C:\Users\ana\pills\images", d, None),
            d.join("images")
        );
        assert_eq!(dataset_folder("labels", d, None), d.join("labels"));
        let p = PathPrefix {
            from: r"C:\Users\ana\pills".into(),
            to: "export".into(),
        };
        assert_eq!(
            dataset_folder(r"C:\Users\ana\pills\images", d, Some(&p)),
            d.join("export/images")
        );
    }
}
