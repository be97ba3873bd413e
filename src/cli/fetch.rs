use super::FetchArgs;
use crate::engine::fetch::fetch;
use crate::error::Result;

pub fn run(a: FetchArgs) -> Result<i32> {
    let done = fetch(&a.url, &a.to)?;
    println!(
        "fetched {} file(s) ({:.1} MiB), kept {} already intact, into {}",
        done.downloaded,
        done.bytes as f64 / (1 << 20) as f64,
        done.kept,
        a.to.display()
    );
    Ok(0)
}
