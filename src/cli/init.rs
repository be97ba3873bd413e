use super::InitArgs;
use crate::error::{Error, Result};

/// The starter pipeline; `tests/init.rs` checks that it parses.
pub const TEMPLATE: &str = include_str!("../../pipelines/template.toml");

pub fn run(a: InitArgs) -> Result<i32> {
    let path = a.dir.join("pipeline.toml");
    if path.exists() && !a.force {
        return Err(Error::Usage(format!(
            "{} exists; pass --force to overwrite it",
            path.display()
        )));
    }
    std::fs::create_dir_all(&a.dir).map_err(|e| Error::io(&a.dir, "init", e))?;
    std::fs::write(&path, TEMPLATE).map_err(|e| Error::io(&path, "init", e))?;
    println!(
        "wrote {}; edit the paths and [labels], then run: segprep check {}",
        path.display(),
        path.display()
    );
    Ok(0)
}
