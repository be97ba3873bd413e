//! Files that appear whole or not at all: written under a `.partial` name, synced, then renamed.
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub const PARTIAL_SUFFIX: &str = ".partial";

pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(PARTIAL_SUFFIX);
    path.with_file_name(name)
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
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "write", e))?;
        }
        let tmp = partial_path(path);
        let file = File::create(&tmp).map_err(|e| Error::io(path, "write", e))?;
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

    /// Makes the file whole under its final name; returns its size and sha256.
    pub fn commit(mut self, file: File) -> Result<(u64, String)> {
        let fail = |e: std::io::Error| Error::io(&self.path, "write", e);
        file.sync_all().map_err(fail)?;
        drop(file);
        let (bytes, sha) = sha256_of(&self.tmp).map_err(fail)?;
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
    let file = write(file).map_err(|e| Error::io(path, "write", e))?;
    atomic.commit(file)
}

pub fn sha256_of(path: &Path) -> std::io::Result<(u64, String)> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex::encode(h.finalize())))
}

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
