//! Files that appear whole or not at all: written under a `.partial` name, synced, then renamed.
//!
//! The partial name carries the process id and a counter, so two workers writing the same shard
//! (a scheduler's retry beside the original) never write into one temporary file; each renames its
//! own whole file into place, and the bytes are the same.
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

pub const PARTIAL_SUFFIX: &str = ".partial";

static PARTIAL_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A temporary name beside `path`, unique to this process and call: `{name}.{pid}-{n}.partial`.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    let n = PARTIAL_COUNTER.fetch_add(1, Ordering::Relaxed);
    name.push(format!(".{}-{n}{PARTIAL_SUFFIX}", std::process::id()));
    path.with_file_name(name)
}

/// Removes a file; one that is not there is not an error.
pub fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes the partial files any process left for `path` (a build killed mid-write).
pub fn remove_partials(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!("{}.", name.to_string_lossy());
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let n = entry.file_name().to_string_lossy().into_owned();
        if n.starts_with(&prefix) && n.ends_with(PARTIAL_SUFFIX) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Removes every partial file under `dir` (recursively): what killed writers left. Only safe when
/// no other process writes there (the build holds the lock; merge runs after the workers).
pub fn remove_all_partials(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_all_partials(&path);
        } else if entry
            .file_name()
            .to_string_lossy()
            .ends_with(PARTIAL_SUFFIX)
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Creates `path` with `bytes` unless it exists; returns whether this call created it. The file
/// is written whole under a partial name and hard-linked into place, which fails if another
/// process got there first, so exactly one writer wins.
pub fn create_exclusive(path: &Path, bytes: &[u8]) -> Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    let tmp = partial_path(path);
    let result = (|| {
        std::fs::write(&tmp, bytes)?;
        File::open(&tmp)?.sync_all()?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    result.map_err(|e| Error::write(path, e))
}

/// A file being written under its `.partial` name. `commit` syncs, hashes and renames it into
/// place; dropped without a commit (an error on the way), the partial file is removed.
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<(AtomicFile, File)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
        }
        let tmp = partial_path(path);
        let file = File::create(&tmp).map_err(|e| Error::write(path, e))?;
        Ok((
            AtomicFile {
                path: path.to_path_buf(),
                tmp,
                committed: false,
            },
            file,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the file whole under its final name; returns its size and sha256. The written bytes
    /// are hashed (from the page cache) while the sync waits for the disk: the last shard's
    /// commit is the tail of every build, which nothing else overlaps.
    pub fn commit(mut self, file: File) -> Result<(u64, String)> {
        let fail = |e: std::io::Error| Error::write(&self.path, e);
        let (synced, hashed) = std::thread::scope(|scope| {
            let hashing = scope.spawn(|| sha256_mapped(&self.tmp));
            let synced = file.sync_all();
            let hashed = hashing.join().expect("hashing a file does not panic");
            (synced, hashed)
        });
        synced.map_err(fail)?;
        drop(file);
        let (bytes, sha) = hashed.map_err(fail)?;
        std::fs::rename(&self.tmp, &self.path).map_err(fail)?;
        self.committed = true;
        Ok((bytes, sha))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Runs `write` on a new partial file and commits it if `write` succeeds.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(File) -> std::io::Result<File>,
) -> Result<(u64, String)> {
    let (atomic, file) = AtomicFile::create(path)?;
    let file = write(file).map_err(|e| Error::write(path, e))?;
    atomic.commit(file)
}

/// A file that asks the kernel to start writing its pages to disk every [`WRITEBACK_EVERY`]
/// bytes. A shard is synced before it is committed; left to that sync, a whole shard's pages went
/// to disk at once while the writer waited (a shard takes the disk about a third of a second).
/// Started early, the disk writes while the shard is computed. Linux only; elsewhere a plain file.
pub struct EarlyWriteback {
    file: File,
    unflushed: u64,
}

const WRITEBACK_EVERY: u64 = 16 << 20;

impl EarlyWriteback {
    pub fn new(file: File) -> Self {
        EarlyWriteback { file, unflushed: 0 }
    }

    /// The file, for its sync and commit.
    pub fn into_file(self) -> File {
        self.file
    }

    fn start_writeback(&mut self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a valid descriptor; the call only starts asynchronous writeback of the
            // file's dirty pages, and its failure changes nothing (the commit's sync still runs)
            unsafe {
                libc::sync_file_range(self.file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
            }
        }
    }
}

impl Write for EarlyWriteback {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.unflushed += n as u64;
        if self.unflushed >= WRITEBACK_EVERY {
            self.unflushed = 0;
            self.start_writeback();
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Seek for EarlyWriteback {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.file.seek(pos)
    }
}

/// A file's size and sha256. Each thread reads through one buffer it keeps: a fresh megabyte a
/// call (inputs are hashed per pair) cost page faults and zeroing on every file.
pub fn sha256_of(path: &Path) -> std::io::Result<(u64, String)> {
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 256 << 10]);
    }
    let mut file = File::open(path)?;
    BUFFER.with_borrow_mut(|buf| {
        let mut h = Sha256::new();
        let mut total = 0u64;
        loop {
            let n = file.read(buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            total += n as u64;
        }
        Ok((total, hex::encode(h.finalize())))
    })
}

/// A file's size and sha256, hashed where the page cache holds it (mapped): a shard just written
/// is hashed without copying its bytes out first. A window of `MAPPED_WINDOW` bytes is mapped at
/// a time, since mapped pages count in the process's resident memory: a whole mapped shard
/// raised a build's peak RSS from 120 to 270 MiB. Falls back to reading where it cannot be mapped.
fn sha256_mapped(path: &Path) -> std::io::Result<(u64, String)> {
    let file = File::open(path)?;
    let bytes = file.metadata()?.len();
    let mut h = Sha256::new();
    let mut at = 0u64;
    while at < bytes {
        let len = (bytes - at).min(MAPPED_WINDOW) as usize;
        // SAFETY: a partial file is its writer's alone (its name carries the process id and a
        // counter) and is complete when committed: nothing changes or truncates it while mapped
        let window = unsafe { memmap2::MmapOptions::new().offset(at).len(len).map(&file) };
        match window {
            Ok(window) => h.update(&window[..]),
            Err(_) => return sha256_of(path),
        }
        at += len as u64;
    }
    Ok((bytes, hex::encode(h.finalize())))
}

/// A multiple of every page size in use (4 KiB to 64 KiB), as a mapping's offset must be.
const MAPPED_WINDOW: u64 = 8 << 20;

/// Writes small text (JSON) atomically.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_bytes(path, text.as_bytes())
}

/// Writes a small file (a report, a plot) atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically(path, |mut f| {
        std::io::Write::write_all(&mut f, bytes)?;
        Ok(f)
    })
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past several writeback starts, seeking back to patch bytes as the zip writer does: the
    /// file holds exactly what was written.
    #[test]
    fn early_writeback_keeps_every_byte_and_seek() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = EarlyWriteback::new(File::create(&path).unwrap());
        let block: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
        let mut want = Vec::new();
        for i in 0..((3 * WRITEBACK_EVERY) >> 20) + 1 {
            let b: Vec<u8> = block.iter().map(|v| v.wrapping_add(i as u8)).collect();
            file.write_all(&b).unwrap();
            want.extend(b);
        }
        file.seek(std::io::SeekFrom::Start(5)).unwrap();
        file.write_all(b"patch").unwrap();
        want[5..10].copy_from_slice(b"patch");
        let file = file.into_file();
        file.sync_all().unwrap();
        drop(file);
        assert!(std::fs::read(&path).unwrap() == want);
    }
}
