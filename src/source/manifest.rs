//! Manifest sources: a `.csv` or `.parquet` table (read with polars) with `image` and `label` columns
//! and optionally `split` and `key`. Relative paths resolve against the manifest's folder.
use polars::prelude::*;
use std::path::Path;

use super::{relative_key, Discovery};
use crate::error::{Error, Result};
use crate::sample::PairRef;

pub fn is_manifest(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("csv") || e.eq_ignore_ascii_case("parquet"))
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

/// Reads a manifest; paths outside its folder are refused unless `allow_outside`.
pub fn read(path: &Path, allow_outside: bool) -> Result<Discovery> {
    let err = |m: String| Error::data(path, "manifest", m);
    let df = load(path).map_err(|e| err(format!("cannot read manifest: {e}")))?;
    let column = |name: &str| -> Result<Option<Vec<Option<String>>>> {
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
    let root = path.parent().unwrap_or(Path::new("."));
    let mut d = Discovery::default();
    for (row, (image, label)) in images.into_iter().zip(labels).enumerate() {
        let line = row + 2; // header is line 1
        let (Some(image), Some(label)) = (
            image.filter(|s| !s.is_empty()),
            label.filter(|s| !s.is_empty()),
        ) else {
            return Err(err(format!("row {line}: empty image or label")));
        };
        let (image, label) = (root.join(&image), root.join(&label));
        if !allow_outside {
            for file in [&image, &label] {
                if !inside(file, root) {
                    return Err(err(format!(
                        "row {line}: {} is outside the manifest's folder; set [input] allow_outside = true if that is intended",
                        file.display()
                    )));
                }
            }
        }
        let key = match keys.as_ref().and_then(|k| k[row].clone()) {
            Some(k) => k,
            None => stem_key(&image, root),
        };
        let split = splits
            .as_ref()
            .and_then(|s| s[row].clone())
            .filter(|s| !s.is_empty());
        if let Some(s) = &split {
            if !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(err(format!(
                    "row {line}: split `{s}` must be letters, digits, `_` or `-`"
                )));
            }
        }
        d.pairs.push(PairRef {
            key,
            image,
            label,
            split,
        });
    }
    d.pairs.sort();
    let dup: Vec<Error> = d
        .pairs
        .windows(2)
        .filter(|w| w[0].key == w[1].key)
        .map(|w| {
            Error::data(
                &w[1].image,
                "manifest",
                format!("key `{}` appears twice", w[1].key),
            )
        })
        .collect();
    if !dup.is_empty() {
        return Err(Error::DataSet {
            summary: format!("{}: keys must be unique:", path.display()),
            problems: dup,
        });
    }
    Ok(d)
}

fn stem_key(image: &Path, root: &Path) -> String {
    let rel = relative_key(image, root);
    match rel.rsplit_once('.') {
        Some((stem, _)) => stem.to_string(),
        None => rel,
    }
}

/// Whether `file` stays within `root`, both lexically (no `..` climbing out, no foreign absolute
/// path) and after following symlinks when the file exists.
fn inside(file: &Path, root: &Path) -> bool {
    let absolute = |p: &Path| {
        std::path::absolute(p)
            .map(|a| super::tidy(&a))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let lexical = absolute(file).starts_with(absolute(root));
    let real = match (std::fs::canonicalize(file), std::fs::canonicalize(root)) {
        (Ok(f), Ok(r)) => f.starts_with(r),
        _ => true, // a missing file is reported when it is read
    };
    lexical && real
}
