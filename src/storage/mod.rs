//! Object storage: `s3://`, `gs://`, `az://` (and `file://`) URLs for inputs and outputs, through
//! the `object_store` crate. Credentials and endpoints come from the usual variables (`AWS_*`,
//! `GOOGLE_*`, `AZURE_*`), read the way `object_store` documents them.
//!
//! Outputs: the engine writes each shard into a local staging folder exactly as for a local build,
//! then publishes the finished files (one PUT, or a multipart upload for large ones), which object
//! stores make atomic (an object appears whole or not at all), and only then the shard's record.
//! Inputs: a URL folder is listed into a local mirror whose image files are fetched as runs need
//! them (see `mirror`).
pub mod atomic;
pub mod mirror;

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Whether a configured path is a URL (`scheme://...`) rather than a local path.
pub fn is_url(p: &Path) -> bool {
    p.to_str()
        .and_then(|s| s.split_once("://"))
        .is_some_and(|(scheme, _)| {
            scheme.len() > 1
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+')
        })
}

/// Files up to this size go up in one PUT; larger ones in parts.
const SINGLE_PUT_BYTES: u64 = 32 << 20;
/// The size of each uploaded part (S3 wants at least 5 MiB but for the last).
const PART_BYTES: usize = 16 << 20;
const PARTS_IN_FLIGHT: usize = 2;

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(file: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// One listed object: where it is under the prefix, its size, and what identifies its content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectInfo {
    pub rel: String,
    pub size: u64,
    /// The ETag (or version, or write time) the store gives: it changes with the content, also
    /// when the size does not.
    pub tag: String,
    /// When the object was written (milliseconds since 1970): the mirror gives its copy this
    /// time, so a resumed build sees the same input state as the run it continues.
    #[serde(default)]
    pub modified_ms: i64,
}

/// The store's own word for "this content": its ETag, else its version, else when it was written.
/// Quotes are dropped: Azure lists an ETag bare and sends it quoted with the object.
fn content_tag(meta: &object_store::ObjectMeta) -> String {
    let tag = meta.e_tag.as_deref().or(meta.version.as_deref());
    tag.map(|t| t.trim_start_matches("W/").trim_matches('"').to_string())
        .unwrap_or_else(|| meta.last_modified.to_rfc3339())
}

/// One URL prefix in an object store, with the runtime that drives its calls.
pub struct Remote {
    pub url: String,
    store: Box<dyn ObjectStore>,
    prefix: ObjectPath,
    runtime: tokio::runtime::Runtime,
}

impl Remote {
    /// Opens `url` (`s3://bucket/prefix`, `gs://...`, `az://...`, `file:///...`).
    pub fn open(url: &str) -> Result<Remote> {
        let bad = |why: String| Error::Usage(format!("cannot use {url}: {why}"));
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        // object_store's builders take lower-case keys (aws_endpoint, aws_allow_http, ...)
        let options = std::env::vars()
            .filter(|(k, _)| {
                ["AWS_", "GOOGLE_", "AZURE_"]
                    .iter()
                    .any(|p| k.starts_with(p))
            })
            .map(|(k, v)| (k.to_ascii_lowercase(), v));
        let (store, prefix) = object_store::parse_url_opts(&parsed, options).map_err(|e| {
            bad(format!(
                "{e} (s3://, gs://, az:// and file:// are supported; credentials come from AWS_*, GOOGLE_*, AZURE_* variables)"
            ))
        })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| bad(format!("cannot start the I/O runtime: {e}")))?;
        Ok(Remote {
            url: url.trim_end_matches('/').to_string(),
            store,
            prefix,
            runtime,
        })
    }

    fn path(&self, rel: &str) -> ObjectPath {
        rel.split('/')
            .filter(|p| !p.is_empty())
            .fold(self.prefix.clone(), |p, part| p.join(part))
    }

    /// The URL of `rel` under this prefix, for messages.
    pub fn describe(&self, rel: &str) -> PathBuf {
        PathBuf::from(format!("{}/{rel}", self.url))
    }

    /// A store that cannot be reached or refuses the call is the environment's problem, not the
    /// data's (exit status 3); a missing object is answered by the callers.
    fn fail(&self, rel: &str, what: &str, e: object_store::Error) -> Error {
        Error::output(self.describe(rel), "storage", format!("cannot {what}: {e}"))
    }

    /// The object's bytes, or `None` when there is no such object.
    pub fn get(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(rel);
        let got = self.runtime.block_on(async {
            match self.store.get(&path).await {
                Ok(r) => r.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        got.map(|b| b.map(|b| b.to_vec()))
            .map_err(|e| self.fail(rel, "read", e))
    }

    /// The object's size, or `None` when there is no such object.
    pub fn size(&self, rel: &str) -> Result<Option<u64>> {
        let path = self.path(rel);
        match self.runtime.block_on(self.store.head(&path)) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail(rel, "look up", e)),
        }
    }

    /// Writes an object in one PUT: it appears whole or not at all.
    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        let path = self.path(rel);
        self.runtime
            .block_on(self.store.put(&path, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| Error::output(self.describe(rel), "storage", format!("cannot write: {e}")))
    }

    /// Uploads a finished local file: in one PUT up to `SINGLE_PUT_BYTES`, else in parts, read
    /// from the file as they go (memory stays at a few parts). Either way the object appears whole
    /// or not at all.
    pub fn put_file(&self, rel: &str, local: &Path) -> Result<()> {
        let size = std::fs::metadata(local)
            .map_err(|e| Error::io(local, "storage", e))?
            .len();
        if size > SINGLE_PUT_BYTES {
            return self.put_in_parts(rel, local);
        }
        let bytes = std::fs::read(local).map_err(|e| Error::io(local, "storage", e))?;
        self.put(rel, bytes)
    }

    /// A multipart upload of `local`, `PART_BYTES` at a time with at most `PARTS_IN_FLIGHT`
    /// parts uploading; a failed upload is aborted, so no parts are left in the store.
    fn put_in_parts(&self, rel: &str, local: &Path) -> Result<()> {
        let failed = |e: object_store::Error| {
            Error::output(self.describe(rel), "storage", format!("cannot write: {e}"))
        };
        let mut file = std::fs::File::open(local).map_err(|e| Error::io(local, "storage", e))?;
        self.runtime.block_on(async {
            let upload = self
                .store
                .put_multipart(&self.path(rel))
                .await
                .map_err(failed)?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            let mut part = vec![0u8; PART_BYTES];
            let sent: Result<()> = async {
                loop {
                    let n = read_full(&mut file, &mut part)
                        .map_err(|e| Error::io(local, "storage", e))?;
                    if n == 0 {
                        return Ok(());
                    }
                    writer
                        .wait_for_capacity(PARTS_IN_FLIGHT)
                        .await
                        .map_err(failed)?;
                    writer.write(&part[..n]);
                }
            }
            .await;
            match sent {
                Ok(()) => writer.finish().await.map(drop).map_err(failed),
                Err(e) => {
                    let _ = writer.abort().await;
                    Err(e)
                }
            }
        })
    }

    /// Creates an object unless one exists; returns whether this call created it. Exclusive where
    /// the store supports conditional puts (local, GCS, Azure; S3 with `AWS_CONDITIONAL_PUT=etag`),
    /// else a look-up then a put.
    pub fn create(&self, rel: &str, bytes: Vec<u8>) -> Result<bool> {
        let path = self.path(rel);
        let options = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let payload = PutPayload::from(bytes.clone());
        match self
            .runtime
            .block_on(self.store.put_opts(&path, payload, options))
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(false),
            Err(object_store::Error::NotImplemented { .. }) => {
                if self.size(rel)?.is_some() {
                    return Ok(false);
                }
                self.put(rel, bytes).map(|_| true)
            }
            Err(e) => Err(self.fail(rel, "create", e)),
        }
    }

    /// Deletes an object; one that does not exist is not an error.
    pub fn delete(&self, rel: &str) -> Result<()> {
        let path = self.path(rel);
        match self.runtime.block_on(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail(rel, "delete", e)),
        }
    }

    /// Every object under the prefix, sorted by relative path.
    pub fn list(&self) -> Result<Vec<ObjectInfo>> {
        let listed: std::result::Result<Vec<_>, _> = self
            .runtime
            .block_on(self.store.list(Some(&self.prefix)).try_collect());
        let base: Vec<_> = self.prefix.parts().collect();
        let mut out: Vec<ObjectInfo> = listed
            .map_err(|e| self.fail("", "list", e))?
            .into_iter()
            .map(|meta| {
                let rel: Vec<String> = meta
                    .location
                    .parts()
                    .skip(base.len())
                    .map(|p| p.as_ref().to_string())
                    .collect();
                ObjectInfo {
                    rel: rel.join("/"),
                    size: meta.size,
                    tag: content_tag(&meta),
                    modified_ms: meta.last_modified.timestamp_millis(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    }

    /// Downloads an object into a local file, atomically.
    pub fn download(&self, rel: &str, local: &Path) -> Result<()> {
        let bytes = self.get(rel)?.ok_or_else(|| {
            Error::data(
                self.describe(rel),
                "storage",
                "the object disappeared while mirroring",
            )
        })?;
        crate::storage::atomic::write_bytes(local, &bytes)
    }

    /// Downloads listed objects into `dir` (each at its relative path), up to `in_flight` GETs at
    /// once; `landed` hears of each object as its file is in place, and says whether to go on
    /// (GETs still in flight when it says no are dropped). Each file is written under a
    /// partial name and renamed, and takes the object's write time. An object whose size or tag
    /// is no longer the listed one is an error (it changed after the listing the plan was made
    /// from). Stops at the first failure; GETs still in flight are dropped.
    pub fn download_listed(
        &self,
        objects: &[ObjectInfo],
        dir: &Path,
        in_flight: usize,
        mut landed: impl FnMut(&ObjectInfo) -> bool,
    ) -> Result<()> {
        use futures::StreamExt;
        self.runtime.block_on(async {
            let mut gets = futures::stream::iter(objects)
                .map(|object| async move { self.download_one(object, dir).await.map(|()| object) })
                .buffer_unordered(in_flight.max(1));
            while let Some(done) = gets.next().await {
                if !landed(done?) {
                    break;
                }
            }
            Ok(())
        })
    }

    async fn download_one(&self, object: &ObjectInfo, dir: &Path) -> Result<()> {
        let rel = &object.rel;
        let got = self
            .store
            .get(&self.path(rel))
            .await
            .map_err(|e| self.fail(rel, "read", e))?;
        let tag = content_tag(&got.meta);
        let bytes = got.bytes().await.map_err(|e| self.fail(rel, "read", e))?;
        if bytes.len() as u64 != object.size || tag != object.tag {
            return Err(Error::data(
                self.describe(rel),
                "storage",
                format!(
                    "the object changed while this run used it (listed with {} bytes and tag {}, now {} bytes and tag {tag}); run again",
                    object.size, object.tag, bytes.len()
                ),
            ));
        }
        let local = dir.join(rel);
        write_with_time(&local, &bytes, object.modified_ms)
            .map_err(|e| Error::io(&local, "storage", e))
    }
}

/// Writes `bytes` to `path`, with the write time `modified_ms`. Not synced: this is a cache of
/// objects the store still holds.
pub fn write_with_time(path: &Path, bytes: &[u8], modified_ms: i64) -> std::io::Result<()> {
    replace_file(path, modified_ms, |mut file| {
        std::io::Write::write_all(&mut file, bytes)
    })
}

/// A placeholder for an object not fetched yet: a sparse file of the object's size and write
/// time (so listings, sizes and times are the object's) that holds no data.
pub fn write_placeholder(path: &Path, size: u64, modified_ms: i64) -> std::io::Result<()> {
    replace_file(path, modified_ms, |file| file.set_len(size))
}

/// Fills a file under a partial name, gives it the write time `modified_ms` and renames it into
/// place: readers see the old file or the whole new one.
fn replace_file(
    path: &Path,
    modified_ms: i64,
    fill: impl FnOnce(&std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = atomic::partial_path(path);
    let written = (|| {
        let file = std::fs::File::create(&tmp)?;
        fill(&file)?;
        file.set_modified(time_of(modified_ms))?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn time_of(modified_ms: i64) -> std::time::SystemTime {
    let since = std::time::Duration::from_millis(modified_ms.unsigned_abs());
    if modified_ms >= 0 {
        std::time::UNIX_EPOCH + since
    } else {
        std::time::UNIX_EPOCH - since
    }
}

#[cfg(test)]
mod tests {
    use super::is_url;
    use std::path::Path;

    #[test]
    fn urls_are_told_from_paths() {
        for url in [
            "s3://bucket/prefix",
            "gs://b",
            "az://container/x/y",
            "file:///data/images",
        ] {
            assert!(is_url(Path::new(url)), "{url}");
        }
        for path in [
            "images",
            "/data/s3/images",
            "./a://b",
            "C:\\data",
            "://x",
            "s3:/bucket",
        ] {
            assert!(!is_url(Path::new(path)), "{path}");
        }
    }
}
