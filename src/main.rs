use clap::Parser;

fn main() {
    ignore_file_size_signal();
    keep_freed_pixel_buffers();
    let cli = segprep::cli::Cli::parse();
    let code = match segprep::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}

/// A file size limit (`ulimit -f`) would kill the process with SIGXFSZ in the middle of a write;
/// ignored, the write fails with EFBIG and segprep reports which file could not be written.
fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Every sample allocates and frees pixel buffers of the same few megabytes. glibc's defaults hand
/// such buffers back to the kernel on free (mmap, or trimming the arena's top), so the next sample
/// page-faults them in again and the kernel zeroes them: 14% of a build's time on one core, and
/// a third of its system time. Keeping freed memory in the process costs ~10% more peak RSS, which
/// stays flat as the dataset grows. A user's own `GLIBC_TUNABLES` or `MALLOC_*` settings win.
fn keep_freed_pixel_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let user_tuned = std::env::vars_os().any(|(name, _)| {
            let name = name.to_string_lossy();
            name == "GLIBC_TUNABLES" || name.starts_with("MALLOC_")
        });
        if user_tuned {
            return;
        }
        // SAFETY: mallopt only changes allocator thresholds; called at start-up, before any thread.
        unsafe {
            // The largest threshold glibc accepts: buffers up to 32 MiB come from the arenas.
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        }
    }
}
