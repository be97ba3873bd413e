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

/// Runs `write` on a temporary file and renames it into place once `write` succeeded and the data
/// reached the disk. Returns the final size and sha256.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(File) -> std::io::Result<File>,
) -> Result<(u64, String)> {
    let tmp = partial_path(path);
    let fail = |e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, "write", e)
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "write", e))?;
    }
    let file = File::create(&tmp).map_err(fail)?;
    let file = write(file).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    drop(file);
    let (bytes, sha) = sha256_of(&tmp).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)?;
    Ok((bytes, sha))
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
    write_atomically(path, |mut f| {
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        Ok(f)
    })
    .map(|_| ())
}
