//! Zip archives as every NPZ writer makes them: entries with a fixed time and permissions (the same
//! arrays always give the same bytes), zip64 only when an entry may pass 4 GiB, written through a
//! buffer that goes quiet after a failed write.
use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use zip::write::SimpleFileOptions;
use zip::ZipWriter;

use crate::sink::Compression;
use crate::storage::atomic::EarlyWriteback;

/// Zip entry options: fixed time and permissions; zip64 when an entry may pass 4 GiB.
pub fn entry_options(compression: Compression, bytes: u64) -> SimpleFileOptions {
    let method = match compression {
        Compression::Stored => zip::CompressionMethod::Stored,
        // zstd zip entries are not readable by numpy: the pipeline refuses zstd for NPZ
        Compression::Deflate | Compression::Zstd => zip::CompressionMethod::Deflated,
    };
    SimpleFileOptions::default()
        .compression_method(method)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644)
        .large_file(bytes >= u32::MAX as u64 - (1 << 20))
}

pub fn start_entry<W: Write + Seek>(
    zip: &mut ZipWriter<W>,
    name: &str,
    compression: Compression,
    bytes: u64,
) -> std::io::Result<()> {
    zip.start_file(name, entry_options(compression, bytes))
        .map_err(std::io::Error::other)
}

/// A zip file being written: buffered, and quiet once a write has failed (see [`QuietAfterError`]).
pub type ZipFile = ZipWriter<QuietAfterError<BufWriter<EarlyWriteback>>>;

/// Starts a zip archive on `file`, writing through a buffer of `buffer` bytes.
pub fn zip_file(file: File, buffer: usize) -> ZipFile {
    let file = EarlyWriteback::new(file);
    ZipWriter::new(QuietAfterError::new(BufWriter::with_capacity(buffer, file)))
}

/// Writes the zip directory and gives back the file.
pub fn finish_zip(zip: ZipFile) -> std::io::Result<File> {
    let quiet = zip.finish().map_err(std::io::Error::other)?;
    quiet
        .inner
        .into_inner()
        .map(EarlyWriteback::into_file)
        .map_err(|e| e.into_error())
}

/// The file under a zip writer. After its first failed write or seek it accepts and drops
/// everything, keeping a consistent position: the zip writer, dropped on the error path, would
/// otherwise try to finish the archive on the broken file and print its own message before
/// segprep's error, which names the file and the reason. The partial file is removed either way.
pub struct QuietAfterError<W> {
    inner: W,
    failed: bool,
    /// The stream position the zip writer sees, and the furthest it has been.
    position: u64,
    end: u64,
}

impl<W> QuietAfterError<W> {
    fn new(inner: W) -> Self {
        QuietAfterError {
            inner,
            failed: false,
            position: 0,
            end: 0,
        }
    }

    fn note<T>(&mut self, result: std::io::Result<T>) -> std::io::Result<T> {
        // an interrupted call is retried by the caller: not a failure
        if result
            .as_ref()
            .is_err_and(|e| e.kind() != std::io::ErrorKind::Interrupted)
        {
            self.failed = true;
        }
        result
    }

    fn moved_to(&mut self, position: u64) -> u64 {
        self.position = position;
        self.end = self.end.max(position);
        position
    }
}

impl<W: Write> Write for QuietAfterError<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = if self.failed {
            buf.len()
        } else {
            let result = self.inner.write(buf);
            self.note(result)?
        };
        self.moved_to(self.position + written as u64);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.failed {
            return Ok(());
        }
        let result = self.inner.flush();
        self.note(result)
    }
}

impl<W: Seek> Seek for QuietAfterError<W> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        use std::io::SeekFrom;
        if !self.failed {
            let result = self.inner.seek(pos);
            let position = self.note(result)?;
            return Ok(self.moved_to(position));
        }
        let offset = |base: u64, by: i64| base.saturating_add_signed(by);
        let position = match pos {
            SeekFrom::Start(p) => p,
            SeekFrom::Current(by) => offset(self.position, by),
            SeekFrom::End(by) => offset(self.end, by),
        };
        Ok(self.moved_to(position))
    }
}
