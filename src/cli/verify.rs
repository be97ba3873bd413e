use super::progress_bar::Bar;
use super::VerifyArgs;
use crate::engine::thread_pool;
use crate::error::{Result, EXIT_DATA};

pub fn run(a: VerifyArgs) -> Result<i32> {
    let p = super::load_pipeline(&a.pipeline)?;
    let out = a.out.clone().unwrap_or_else(|| p.output_dir.clone());
    let verified = thread_pool(a.threads)?.install(|| crate::verify::verify(&p, &out, &Bar::new()));
    super::report_fetched();
    let v = verified?;
    for c in &v.changed {
        println!("{} (pair {}): {}", c.file.display(), c.key, c.what);
    }
    let what = format!("{} input file(s) of {} pair(s)", v.files, v.pairs);
    if v.changed.is_empty() {
        println!("verified {what}: each holds the bytes the build read");
        return Ok(0);
    }
    println!(
        "{} of {what} changed since the build of {}; build again to use them",
        v.changed.len(),
        crate::source::tidy(&out).display()
    );
    Ok(EXIT_DATA)
}
