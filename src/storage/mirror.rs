//! URL inputs mirrored into a local cache before discovery, so every reader (folders, manifests,
//! multi-band stacks, MVTec layouts) works on them unchanged. The cache is kept between runs: an
//! object is fetched again only when its size changed, and local files the store no longer holds
//! are removed so discovery never sees them.
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{ObjectInfo, Remote};
use crate::error::{Error, Result};

const MIRROR_RECORD: &str = ".segprep-mirror.json";

/// A URL input and where it was mirrored, for the command line to report.
#[derive(Debug, Clone)]
pub struct Mirrored {
    pub url: String,
    pub local: PathBuf,
    pub objects: usize,
}

impl std::fmt::Display for Mirrored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mirrored {} object(s) of {} in {}",
            self.objects,
            self.url,
            self.local.display()
        )
    }
}

/// Where mirrors live: `$SEGPREP_CACHE`, else `segprep-cache` in the temporary folder.
fn cache_root() -> PathBuf {
    std::env::var_os("SEGPREP_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("segprep-cache"))
}

/// Mirrors a URL (a folder of objects, or one object) and says where.
pub fn mirror(url: &Path) -> Result<Mirrored> {
    let url = url.to_string_lossy().into_owned();
    let remote = Remote::open(&url)?;
    let key = hex::encode(Sha256::digest(url.trim_end_matches('/').as_bytes()));
    let dir = cache_root().join(&key[..16]);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, "storage", e))?;
    let objects = remote.list()?;
    if objects.is_empty() {
        // a single object (a manifest): mirrored under its own name
        let name = url.rsplit('/').next().unwrap_or("object").to_string();
        if remote.size("")?.is_none() {
            return Err(Error::data(PathBuf::from(&url), "discover", "no object at this URL or under it; check the bucket, the prefix and the credentials"));
        }
        remote.download("", &dir.join(&name))?;
        return Ok(Mirrored {
            url,
            local: dir.join(name),
            objects: 1,
        });
    }
    sync(&remote, &objects, &dir)?;
    Ok(Mirrored {
        url,
        local: dir,
        objects: objects.len(),
    })
}

/// Downloads what is new or changed (its ETag, version or size differs from the mirror's record,
/// or the local copy is missing or cut), removes what the store no longer has. A record of an
/// earlier version (sizes only) does not parse, so everything is fetched again once.
fn sync(remote: &Remote, objects: &[ObjectInfo], dir: &Path) -> Result<()> {
    let record_path = dir.join(MIRROR_RECORD);
    let had: BTreeMap<String, ObjectInfo> = std::fs::read_to_string(&record_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let now: BTreeMap<String, ObjectInfo> =
        objects.iter().map(|o| (o.rel.clone(), o.clone())).collect();
    for rel in had.keys().filter(|rel| !now.contains_key(*rel)) {
        let _ = std::fs::remove_file(dir.join(rel));
    }
    // the record goes first: a run stopped halfway then fetches again what it had not checked
    crate::storage::atomic::remove_if_present(&record_path)
        .map_err(|e| Error::io(&record_path, "storage", e))?;
    for object in objects {
        if object
            .rel
            .split('/')
            .any(|part| part == ".." || part.is_empty())
        {
            continue; // never write outside the mirror
        }
        let local = dir.join(&object.rel);
        let current = std::fs::metadata(&local).ok().map(|m| m.len());
        if had.get(&object.rel) != Some(object) || current != Some(object.size) {
            remote.download(&object.rel, &local)?;
        }
    }
    crate::storage::atomic::write_text(
        &record_path,
        &serde_json::to_string(&now).expect("serializes"),
    )
}
