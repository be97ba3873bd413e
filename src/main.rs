use clap::Parser;

fn main() {
    ignore_file_size_signal();
    segprep::memory::keep_freed_pixel_buffers();
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
