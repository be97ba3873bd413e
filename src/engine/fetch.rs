//! `segprep fetch`: a finished build behind a URL copied into a local folder, for readers that want
//! files (the Python package's `segprep.open("s3://...")`). Every file is checked against the size
//! and sha256 that index.json records; files already there and intact are kept, so a second fetch
//! of an unchanged build reads only index.json. index.json is written last, so the local folder is
//! a finished build only when every file in it checks out.
use std::path::{Component, Path};

use crate::error::{Error, Result};
use crate::index::FileRecord;
use crate::index::{BuildFiles, Index};
use crate::storage::atomic::{remove_if_present, write_bytes};
use crate::storage::Remote;

/// What a fetch did.
pub struct Fetched {
    pub downloaded: usize,
    pub kept: usize,
    pub bytes: u64,
}

pub fn fetch(url: &str, to: &Path) -> Result<Fetched> {
    let remote = Remote::open(url)?;
    let (names, index_bytes) = remote_index(&remote)?;
    let index = Index::parse(&index_bytes, &remote.describe(names.index), "fetch")?;
    // until every file checks out, the local copy must not look finished
    for stale in BuildFiles::both().map(|n| to.join(n.index)) {
        remove_if_present(&stale).map_err(|e| Error::io(&stale, "fetch", e))?;
    }
    let mut done = Fetched {
        downloaded: 0,
        kept: 0,
        bytes: 0,
    };
    for record in &index.files {
        let local = to.join(checked_relative(&remote, names, record)?);
        if record.is_intact_at(&local) {
            done.kept += 1;
            continue;
        }
        if let Some(parent) = local.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "fetch", e))?;
        }
        remote.download(&record.file, &local)?;
        if !record.is_intact_at(&local) {
            let _ = std::fs::remove_file(&local);
            return Err(Error::data(
                remote.describe(&record.file),
                "fetch",
                format!(
                    "its size or sha256 differs from index.json ({} bytes, sha256 {}): the object was altered or is being rewritten",
                    record.bytes, record.sha256
                ),
            ));
        }
        done.downloaded += 1;
        done.bytes += record.bytes;
    }
    // the inputs record goes with the build, so `verify` works on the copy (it checks the sha256)
    for name in [names.stats, names.errors, names.inputs] {
        if let Some(bytes) = remote.get(name)? {
            write_bytes(&to.join(name), &bytes)?;
        }
    }
    write_bytes(&to.join(names.index), &index_bytes)?;
    Ok(done)
}

/// The build's index and the names its files go by (Parquet builds prefix them with `_`).
fn remote_index(remote: &Remote) -> Result<(BuildFiles, Vec<u8>)> {
    for names in BuildFiles::both() {
        if let Some(bytes) = remote.get(names.index)? {
            return Ok((names, bytes));
        }
    }
    Err(Error::data(
        remote.describe("index.json"),
        "fetch",
        "no such object: not a finished segprep build (index.json is written last)",
    ))
}

/// The record's path, refused if it would leave the folder (an index.json from elsewhere).
fn checked_relative<'a>(
    remote: &Remote,
    names: BuildFiles,
    record: &'a FileRecord,
) -> Result<&'a Path> {
    let rel = Path::new(&record.file);
    let inside = rel.components().all(|c| matches!(c, Component::Normal(_)));
    match inside {
        true => Ok(rel),
        false => Err(Error::data(
            remote.describe(names.index),
            "fetch",
            format!(
                "lists {:?}, which is not a path inside the build",
                record.file
            ),
        )),
    }
}
