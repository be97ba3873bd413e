use super::PreviewArgs;
use crate::engine::thread_pool;
use crate::error::{Error, Result};

pub fn run(a: PreviewArgs) -> Result<i32> {
    if a.n == 0 {
        return Err(Error::Usage("--n must be at least 1".into()));
    }
    let is_png = a
        .out
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !is_png {
        return Err(Error::Usage(format!(
            "--out writes a PNG: name it .png, not {}",
            a.out.display()
        )));
    }
    let pipeline = super::load_pipeline(&a.pipeline)?;
    let sheet = thread_pool(a.threads)?
        .install(|| crate::preview::contact_sheet(&pipeline, a.n, &a.split))?;
    let mut bytes = Vec::new();
    sheet
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| Error::data(&a.out, "preview", e.to_string()))?;
    crate::storage::atomic::write_bytes(&a.out, &bytes)?;
    println!(
        "wrote {} ({}x{})",
        a.out.display(),
        sheet.width(),
        sheet.height()
    );
    Ok(0)
}
