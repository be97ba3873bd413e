//! URL inputs mirrored into a local cache, so every reader (folders, manifests, multi-band stacks,
//! MVTec layouts) works on them unchanged, without downloading what a run never reads.
//!
//! The store is listed once. Files discovery reads (manifests, dictionaries: anything the caller
//! does not mark as fetched later) come at once; each image file gets a placeholder of its size
//! and write time, and its bytes come when a run needs them: [`prefetch`] for the pairs a build or
//! a worker owns (several GETs in flight), [`ensure_local`] for any other file a decoder opens. So
//! W workers together read the dataset about once, not W times.
//!
//! The cache is kept between runs: an object is fetched again only when its ETag (or version)
//! changed, and local files the store no longer holds are removed so discovery never sees them.
//! Runs sharing a cache folder take its lock while they sync it and while they note a fetch.
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use super::{write_placeholder, ObjectInfo, Remote};
use crate::error::{Error, Result};
use crate::progress::{Progress, Silent};

/// What is listed and what is here, as of the last sync.
const RECORD: &str = ".segprep-mirror.json";
/// Objects fetched since the last sync, one JSON line each.
const LANDED_LOG: &str = ".segprep-mirror.log";
const LOCK: &str = ".segprep-mirror.lock";
/// GETs in flight while fetching the pairs a run owns.
pub const GETS_IN_FLIGHT: usize = 16;

/// A URL input and where it was mirrored, for the command line to report.
#[derive(Debug, Clone)]
pub struct Mirrored {
    pub url: String,
    pub local: PathBuf,
    pub objects: usize,
    /// Objects whose bytes are not here yet: fetched when a run reads them.
    pub waiting: usize,
}

impl std::fmt::Display for Mirrored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mirrored {} object(s) of {} in {}",
            self.objects,
            self.url,
            self.local.display()
        )?;
        if self.waiting > 0 {
            write!(f, " ({} fetched when a run reads them)", self.waiting)?;
        }
        Ok(())
    }
}

/// Where mirrors live: `$SEGPREP_CACHE`, else `segprep-cache` in the temporary folder.
fn cache_root() -> PathBuf {
    std::env::var_os("SEGPREP_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("segprep-cache"))
}

/// Mirrors a URL (a folder of objects, or one object) and says where. Files `fetch_later` accepts
/// (image files) get placeholders until a run reads them.
pub fn mirror(url: &Path, fetch_later: &dyn Fn(&Path) -> bool) -> Result<Mirrored> {
    mirror_in(&cache_root(), url, fetch_later)
}

fn mirror_in(cache: &Path, url: &Path, fetch_later: &dyn Fn(&Path) -> bool) -> Result<Mirrored> {
    let url = url.to_string_lossy().into_owned();
    let remote = Remote::open(&url)?;
    let key = hex::encode(Sha256::digest(url.trim_end_matches('/').as_bytes()));
    let dir = cache.join(&key[..16]);
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
            waiting: 0,
        });
    }
    let waiting = sync(&remote, &objects, &dir, fetch_later)?;
    let mirrored = Mirrored {
        url,
        local: dir.clone(),
        objects: objects.len(),
        waiting: waiting.len(),
    };
    register(Lazy {
        listed: objects.into_iter().map(|o| (o.rel.clone(), o)).collect(),
        waiting: Mutex::new(waiting.into_iter().map(|rel| (rel, false)).collect()),
        arrived: Condvar::new(),
        dir,
        remote,
        fetched: AtomicUsize::new(0),
        fetched_bytes: AtomicU64::new(0),
    });
    Ok(mirrored)
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    /// Every listed object, placeholder or fetched.
    listed: BTreeMap<String, ObjectInfo>,
    /// The objects whose bytes are here.
    fetched: BTreeMap<String, ObjectInfo>,
}

impl Record {
    /// The record and the fetches noted since; a record of an earlier version does not parse,
    /// so everything is fetched again once.
    fn read(dir: &Path) -> Record {
        let mut record: Record = std::fs::read_to_string(dir.join(RECORD))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let log = std::fs::read_to_string(dir.join(LANDED_LOG)).unwrap_or_default();
        for landed in log
            .lines()
            .filter_map(|l| serde_json::from_str::<ObjectInfo>(l).ok())
        {
            record.fetched.insert(landed.rel.clone(), landed);
        }
        record
    }

    fn write(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string(self).expect("serializes");
        crate::storage::atomic::write_text(&dir.join(RECORD), &text)?;
        let log = dir.join(LANDED_LOG);
        crate::storage::atomic::remove_if_present(&log).map_err(|e| Error::io(&log, "storage", e))
    }
}

/// Brings the folder to the listing: removes what the store no longer has, fetches what must be
/// here now and is new or changed (its ETag, version or size differs, or the local copy is cut),
/// and puts placeholders for the rest. Returns the objects left as placeholders.
fn sync(
    remote: &Remote,
    objects: &[ObjectInfo],
    dir: &Path,
    fetch_later: &dyn Fn(&Path) -> bool,
) -> Result<BTreeSet<String>> {
    let _lock = lock(dir)?;
    let had = Record::read(dir);
    let now: BTreeMap<String, ObjectInfo> =
        objects.iter().map(|o| (o.rel.clone(), o.clone())).collect();
    let size_of = |rel: &str| std::fs::metadata(dir.join(rel)).ok().map(|m| m.len());
    let mut record = Record {
        listed: now.clone(),
        fetched: had
            .fetched
            .into_iter()
            .filter(|(rel, o)| now.get(rel) == Some(o) && size_of(rel) == Some(o.size))
            .collect(),
    };
    // the record goes first: a run stopped halfway then fetches again what it had not checked
    record.write(dir)?;
    for rel in had.listed.keys().filter(|rel| !now.contains_key(*rel)) {
        let _ = std::fs::remove_file(dir.join(rel));
    }
    let mut fetch_now = Vec::new();
    let mut waiting = BTreeSet::new();
    for object in objects.iter().filter(|o| safe(&o.rel)) {
        if record.fetched.contains_key(&object.rel) {
            continue;
        }
        let local = dir.join(&object.rel);
        if !fetch_later(&local) {
            fetch_now.push(object.clone());
            continue;
        }
        let placeholder_there = had.listed.get(&object.rel) == Some(object)
            && size_of(&object.rel) == Some(object.size);
        if !placeholder_there {
            write_placeholder(&local, object.size, object.modified_ms)
                .map_err(|e| Error::io(&local, "storage", e))?;
        }
        waiting.insert(object.rel.clone());
    }
    remote.download_listed(&fetch_now, dir, GETS_IN_FLIGHT, |o| {
        record.fetched.insert(o.rel.clone(), o.clone());
        true
    })?;
    record.write(dir)?;
    Ok(waiting)
}

/// Never write outside the mirror.
fn safe(rel: &str) -> bool {
    !rel.split('/').any(|part| part == ".." || part.is_empty())
}

/// The cache folder's lock, held until the file is dropped.
fn lock(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join(LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, "storage", e))?;
    file.lock().map_err(|e| Error::io(&path, "storage", e))?;
    Ok(file)
}

/// A mirror whose placeholders this process may still fill.
struct Lazy {
    dir: PathBuf,
    remote: Remote,
    listed: BTreeMap<String, ObjectInfo>,
    /// Placeholders, each with whether a thread of this process is fetching it now.
    waiting: Mutex<BTreeMap<String, bool>>,
    arrived: Condvar,
    fetched: AtomicUsize,
    fetched_bytes: AtomicU64,
}

static MIRRORS: RwLock<Vec<Arc<Lazy>>> = RwLock::new(Vec::new());

/// Registers a mirror; one synced again (the same URL loaded twice) replaces the earlier one.
fn register(lazy: Lazy) {
    let mut all = MIRRORS.write().unwrap_or_else(|e| e.into_inner());
    all.retain(|l| l.dir != lazy.dir);
    all.push(Arc::new(lazy));
}

/// The mirror holding `path`, and the path's object name in it.
fn owner(path: &Path) -> Option<(Arc<Lazy>, String)> {
    let all = MIRRORS.read().unwrap_or_else(|e| e.into_inner());
    all.iter().find_map(|lazy| {
        let rel = path.strip_prefix(&lazy.dir).ok()?;
        let rel: Vec<_> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect();
        Some((lazy.clone(), rel.join("/")))
    })
}

/// The object a mirrored file stands for (its URL), for messages; any other path as it is.
pub fn origin(path: &Path) -> PathBuf {
    owner(path).map_or_else(
        || path.to_path_buf(),
        |(lazy, rel)| lazy.remote.describe(&rel),
    )
}

/// Makes sure a file about to be read holds its bytes, not a placeholder: fetches it if it is a
/// mirrored object not fetched yet. Any other path is left alone.
pub fn ensure_local(path: &Path) -> Result<()> {
    match owner(path) {
        Some((lazy, rel)) => lazy.fetch(vec![rel], 1, &Silent, &AtomicBool::new(false)),
        None => Ok(()),
    }
}

/// Whether `path` is in a mirror that fetches its objects as they are read.
pub fn is_mirrored(path: &Path) -> bool {
    owner(path).is_some()
}

/// Fetches the mirrored objects among `files` that are not here yet, in their order,
/// `GETS_IN_FLIGHT` at a time, before they are read.
pub fn prefetch<'a>(
    files: impl IntoIterator<Item = &'a Path>,
    progress: &dyn Progress,
) -> Result<()> {
    prefetch_until(files, progress, &AtomicBool::new(false))
}

/// [`prefetch`], stopping early (without error) once `stop` is set: what a run calls in the
/// background with the files of the pairs it owns, ahead of reading them.
pub fn prefetch_until<'a>(
    files: impl IntoIterator<Item = &'a Path>,
    progress: &dyn Progress,
    stop: &AtomicBool,
) -> Result<()> {
    let mut by_mirror: Vec<(Arc<Lazy>, Vec<String>)> = Vec::new();
    for (lazy, rel) in files.into_iter().filter_map(owner) {
        match by_mirror.iter_mut().find(|(l, _)| Arc::ptr_eq(l, &lazy)) {
            Some((_, rels)) => rels.push(rel),
            None => by_mirror.push((lazy, vec![rel])),
        }
    }
    for (lazy, rels) in by_mirror {
        lazy.fetch(rels, GETS_IN_FLIGHT, progress, stop)?;
    }
    Ok(())
}

/// What this process fetched of each mirrored URL after listing: (URL, objects, bytes).
pub fn fetched() -> Vec<(String, usize, u64)> {
    let all = MIRRORS.read().unwrap_or_else(|e| e.into_inner());
    all.iter()
        .map(|l| {
            let (n, bytes) = (&l.fetched, &l.fetched_bytes);
            (
                l.remote.url.clone(),
                n.load(Ordering::Relaxed),
                bytes.load(Ordering::Relaxed),
            )
        })
        .collect()
}

impl Lazy {
    /// Fetches the placeholders among `rels`, and waits for those another thread is fetching;
    /// once `stop` is set, returns with the rest left as placeholders.
    fn fetch(
        &self,
        rels: Vec<String>,
        in_flight: usize,
        progress: &dyn Progress,
        stop: &AtomicBool,
    ) -> Result<()> {
        let waiting = {
            let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            rels.iter().filter(|r| waiting.contains_key(*r)).count()
        };
        if waiting == 0 {
            return Ok(());
        }
        progress.start("fetching inputs", waiting as u64);
        // claimed a few batches at a time, so a reader wanting a file further on fetches it
        // itself rather than wait for this fetch to get there
        let fetched = rels
            .chunks(4 * in_flight)
            .try_for_each(|batch| self.fetch_batch(batch.to_vec(), in_flight, progress, stop));
        progress.finish();
        fetched
    }

    fn fetch_batch(
        &self,
        rels: Vec<String>,
        in_flight: usize,
        progress: &dyn Progress,
        stop: &AtomicBool,
    ) -> Result<()> {
        let mut pending = rels;
        while !pending.is_empty() && !stop.load(Ordering::Relaxed) {
            let (mine, theirs) = self.claim(pending);
            if !mine.is_empty() {
                let got = self
                    .remote
                    .download_listed(&mine, &self.dir, in_flight, |o| {
                        self.landed(o);
                        progress.advance(1);
                        !stop.load(Ordering::Relaxed)
                    });
                // what a failure or a stop left unfetched is a placeholder again
                self.release(&mine);
                got?;
            }
            // another thread's fetch that failed leaves placeholders: this thread tries them
            pending = self.wait_for(theirs);
        }
        Ok(())
    }

    /// Splits `rels` into placeholders this thread now fetches and ones another thread is
    /// fetching; objects already here are in neither.
    fn claim(&self, rels: Vec<String>) -> (Vec<ObjectInfo>, Vec<String>) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let (mut mine, mut theirs) = (Vec::new(), Vec::new());
        for rel in rels {
            match waiting.get_mut(&rel) {
                Some(busy @ false) => {
                    *busy = true;
                    mine.extend(self.listed.get(&rel).cloned());
                }
                Some(true) => theirs.push(rel),
                None => {}
            }
        }
        (mine, theirs)
    }

    /// Waits until no other thread is fetching any of `rels`; returns those still placeholders.
    fn wait_for(&self, rels: Vec<String>) -> Vec<String> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        while rels.iter().any(|r| waiting.get(r) == Some(&true)) {
            waiting = self
                .arrived
                .wait(waiting)
                .unwrap_or_else(|e| e.into_inner());
        }
        rels.into_iter()
            .filter(|r| waiting.contains_key(r))
            .collect()
    }

    /// Objects a failed fetch did not bring become placeholders again.
    fn release(&self, objects: &[ObjectInfo]) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        for o in objects {
            if let Some(busy) = waiting.get_mut(&o.rel) {
                *busy = false;
            }
        }
        self.arrived.notify_all();
    }

    /// An object's file is in place: noted for this process and, for later runs, in the log.
    fn landed(&self, object: &ObjectInfo) {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&object.rel);
        self.arrived.notify_all();
        self.fetched.fetch_add(1, Ordering::Relaxed);
        self.fetched_bytes.fetch_add(object.size, Ordering::Relaxed);
        // a lost note only means the object is fetched again by a later run
        let _ = self.note(object);
    }

    fn note(&self, object: &ObjectInfo) -> Result<()> {
        let _lock = lock(&self.dir)?;
        let path = self.dir.join(LANDED_LOG);
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, "storage", e))?;
        let line = serde_json::to_string(object).expect("serializes") + "\n";
        log.write_all(line.as_bytes())
            .map_err(|e| Error::io(&path, "storage", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let store = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            std::fs::write(store.path().join(name), bytes).unwrap();
        }
        store
    }

    fn is_png(p: &Path) -> bool {
        p.extension().is_some_and(|e| e == "png")
    }

    /// Image files wait as placeholders of their size until read; other files come at once; a
    /// prefetch brings many, an open brings one, and each object is fetched once.
    #[test]
    fn images_wait_until_read_and_are_fetched_once() {
        let store = store_with(&[
            ("a.png", b"AAAA"),
            ("b.png", b"BBBBBB"),
            ("list.txt", b"a\n"),
        ]);
        let cache = tempfile::tempdir().unwrap();
        let url = format!("file://{}", store.path().display());
        let m = mirror_in(cache.path(), Path::new(&url), &is_png).unwrap();
        assert_eq!((m.objects, m.waiting), (3, 2));
        let (a, b) = (m.local.join("a.png"), m.local.join("b.png"));
        assert_eq!(std::fs::read(m.local.join("list.txt")).unwrap(), b"a\n");
        assert_eq!(
            std::fs::read(&a).unwrap(),
            vec![0; 4],
            "a placeholder of the object's size"
        );
        ensure_local(&a).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"AAAA");
        prefetch([a.as_path(), b.as_path()], &Silent).unwrap();
        assert_eq!(std::fs::read(&b).unwrap(), b"BBBBBB");
        let tally = fetched().into_iter().find(|(u, ..)| *u == url).unwrap();
        assert_eq!((tally.1, tally.2), (2, 10), "each object once");
        // a second run finds both here and fetches nothing
        let again = mirror_in(cache.path(), Path::new(&url), &is_png).unwrap();
        assert_eq!(again.waiting, 0);
    }

    /// An object replaced after the listing is refused when fetched, not read in its new form.
    #[test]
    fn an_object_changed_after_the_listing_is_an_error() {
        let store = store_with(&[("a.png", b"AAAA")]);
        let cache = tempfile::tempdir().unwrap();
        let url = format!("file://{}", store.path().display());
        let m = mirror_in(cache.path(), Path::new(&url), &is_png).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(store.path().join("a.png"), b"ZZZZZ").unwrap();
        let e = ensure_local(&m.local.join("a.png"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("changed while this run used it"), "{e}");
    }
}
