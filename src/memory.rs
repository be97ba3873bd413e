//! Process-wide allocator settings for builds.
/// Call first thing in `main`. Every sample allocates and frees pixel buffers of the same few
/// megabytes. glibc's defaults hand such buffers back to the kernel on free (mmap, or trimming the
/// arena's top), so the next sample page-faults them in again and the kernel zeroes them: 14% of a
/// build's time on one core, and a third of its system time. Freed memory is kept in the process
/// instead, in one arena shared by all threads so that it stays flat as the dataset grows. A user's own `GLIBC_TUNABLES`
/// or `MALLOC_*` settings win.
pub fn keep_freed_pixel_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let user_tuned = std::env::vars_os().any(|(name, _)| {
            let name = name.to_string_lossy();
            name == "GLIBC_TUNABLES" || name.starts_with("MALLOC_")
        });
        if user_tuned {
            return;
        }
        // SAFETY: mallopt only changes allocator thresholds; the caller runs this at start-up,
        // before any thread exists.
        unsafe {
            // The largest threshold glibc accepts: buffers up to 32 MiB come from the arenas.
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
            // One arena for all threads: a build allocates a handful of large buffers per sample,
            // so threads hardly contend for it, and a buffer freed by the writer is reused by any
            // worker instead of stranding in the arena of the thread that made it (with one
            // arena per thread, peak memory crept up by a third over 3,000 pairs).
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}
