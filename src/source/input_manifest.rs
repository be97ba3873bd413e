//! Manifest sources: a `.csv` or `.parquet` table (read with polars) with `image` and `label` columns
//! and optionally `split` and `key`; or a `.txt` pair list (`image label` per line, as CamVid's
//! `train.txt`), whose split is its file name. Paths resolve against the manifest's folder.
use polars::prelude::*;
use std::path::Path;

use super::paths::Rebase;
use super::{relative_key, Discovery};
use crate::error::{Error, Result};
use crate::sample::PairRef;
use crate::split;

pub fn is_manifest(path: &Path) -> bool {
    path.is_file()
        && path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            ["csv", "parquet", "txt"]
                .iter()
                .any(|x| e.eq_ignore_ascii_case(x))
        })
}

fn is_pair_list(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("txt"))
}

/// Rows of (image, label, split) as written, with their line numbers.
struct Rows {
    rows: Vec<(usize, String, String, Option<String>)>,
    keys: Option<Vec<Option<String>>>,
}

/// A pair list: `image label` per line; blank lines and `#` comments are skipped.
fn read_pair_list(path: &Path) -> std::result::Result<Rows, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read pair list: {e}"))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let list_split = split::canonical(&stem);
    let list_split = ["train", "val", "test"]
        .contains(&list_split.as_str())
        .then_some(list_split);
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [image, label] = fields[..] else {
            return Err(format!(
                "line {}: a pair list has two paths per line, `image label`; found {} field(s)",
                i + 1,
                fields.len()
            ));
        };
        rows.push((
            i + 1,
            image.to_string(),
            label.to_string(),
            list_split.clone(),
        ));
    }
    Ok(Rows { rows, keys: None })
}

fn load(path: &Path) -> PolarsResult<DataFrame> {
    let is_csv = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if is_csv {
        CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))?
            .finish()
    } else {
        ParquetReader::new(std::fs::File::open(path)?).finish()
    }
}

/// A table manifest's rows.
fn read_table(path: &Path) -> std::result::Result<Rows, String> {
    let err = |m: String| m;
    let df = load(path).map_err(|e| format!("cannot read manifest: {e}"))?;
    let column = |name: &str| -> std::result::Result<Option<Vec<Option<String>>>, String> {
        match df.column(name) {
            Ok(c) => {
                let c = c
                    .cast(&DataType::String)
                    .map_err(|e| err(format!("column `{name}`: {e}")))?;
                let s = c.str().map_err(|e| err(format!("column `{name}`: {e}")))?;
                Ok(Some(
                    (0..s.len())
                        .map(|i| s.get(i).map(|v| v.trim().to_string()))
                        .collect(),
                ))
            }
            Err(_) => Ok(None),
        }
    };
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let missing = |c: &str| {
        err(format!(
            "no `{c}` column (columns are: {})",
            names.join(", ")
        ))
    };
    let images = column("image")?.ok_or_else(|| missing("image"))?;
    let labels = column("label")?.ok_or_else(|| missing("label"))?;
    let splits = column("split")?;
    let keys = column("key")?;
    let mut rows = Vec::new();
    for (row, (image, label)) in images.into_iter().zip(labels).enumerate() {
        let line = row + 2; // header is line 1
        let (Some(image), Some(label)) = (
            image.filter(|s| !s.is_empty()),
            label.filter(|s| !s.is_empty()),
        ) else {
            return Err(err(format!("row {line}: empty image or label")));
        };
        let split = splits
            .as_ref()
            .and_then(|s| s[row].clone())
            .filter(|s| !s.is_empty());
        rows.push((line, image, label, split));
    }
    Ok(Rows { rows, keys })
}

/// Reads a manifest; paths outside its folder are refused unless `allow_outside`.
pub fn read(path: &Path, rebase: Rebase) -> Result<Discovery> {
    let err = |m: String| Error::data(path, "manifest", m);
    let Rows { rows, keys } = if is_pair_list(path) {
        read_pair_list(path)
    } else {
        read_table(path)
    }
    .map_err(err)?;
    let mut d = Discovery::default();
    for (row, (line, image, label, split)) in rows.into_iter().enumerate() {
        let at = |m: String| err(format!("line {line}: {m}"));
        let image = rebase.resolve(&image).map_err(at)?;
        let label = rebase.resolve(&label).map_err(at)?;
        let key = match keys.as_ref().and_then(|k| k[row].clone()) {
            Some(k) => k,
            None => stem_key(&image, rebase.root),
        };
        let split = split.map(|s| split::canonical(&s));
        if let Some(s) = split.as_deref().filter(|s| !split::is_valid_name(s)) {
            return Err(at(format!(
                "split `{s}` must be letters, digits, `_` or `-`"
            )));
        }
        let mut pair = PairRef::new(key, image, label);
        pair.split = split;
        d.pairs.push(pair);
    }
    d.pairs.sort();
    super::check_unique_keys(&d.pairs, path)?;
    Ok(d)
}

fn stem_key(image: &Path, root: &Path) -> String {
    let rel = relative_key(image, root);
    match rel.rsplit_once('.') {
        Some((stem, _)) => stem.to_string(),
        None => rel,
    }
}
