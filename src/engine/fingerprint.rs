//! Each built pair's input files with their sizes and sha256, so `segprep verify` can say later
//! which inputs changed since the build. Named under the configured input they sit in, so the
//! record is the same whether that input was a local folder, a mount elsewhere or an object-store
//! URL (whose mirror holds the bytes hashed).
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::index::{InputFile, PairInputs};
use crate::pipeline::Pipeline;
use crate::sample::PairRef;

/// The configured inputs, named as `inputs.jsonl` names them: `images`, `bands.1`, ..., `labels`.
pub fn input_roots(p: &Pipeline) -> Vec<(String, PathBuf)> {
    let bands = p.band_paths.iter().enumerate();
    std::iter::once(("images".to_string(), p.images_path.clone()))
        .chain(bands.map(|(i, b)| (format!("bands.{}", i + 1), b.clone())))
        .chain(
            p.labels_path
                .iter()
                .map(|l| ("labels".to_string(), l.clone())),
        )
        .collect()
}

/// A file's place: the first configured input folder it is under and its path there, else no
/// input and the path as it is.
pub fn place(roots: &[(String, PathBuf)], file: &Path) -> (String, String) {
    for (name, root) in roots {
        if let Ok(rel) = file.strip_prefix(root) {
            let parts: Vec<_> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect();
            return (name.clone(), parts.join("/"));
        }
    }
    (String::new(), file.display().to_string())
}

/// The file a recorded place names now, under `roots`.
pub fn resolve(roots: &[(String, PathBuf)], f: &InputFile) -> Option<PathBuf> {
    if f.input.is_empty() {
        return Some(PathBuf::from(&f.file));
    }
    let root = roots.iter().find(|(name, _)| *name == f.input)?;
    Some(
        f.file
            .split('/')
            .fold(root.1.clone(), |p, part| p.join(part)),
    )
}

/// The pair's input files, each hashed. The decoder has just read them, so the bytes come from
/// the page cache.
pub fn of_pair(roots: &[(String, PathBuf)], pair: &PairRef) -> Result<PairInputs> {
    let files = pair
        .files()
        .into_iter()
        .map(|path| {
            let (bytes, sha256) = crate::storage::atomic::sha256_of(path)
                .map_err(|e| Error::io(path, "fingerprint", e))?;
            let (input, file) = place(roots, path);
            Ok(InputFile {
                input,
                file,
                bytes,
                sha256,
            })
        })
        .collect::<Result<_>>()?;
    Ok(PairInputs {
        key: pair.key.clone(),
        files,
    })
}
