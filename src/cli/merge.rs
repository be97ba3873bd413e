use super::MergeArgs;
use crate::engine::merge::merge;
use crate::error::Result;

pub fn run(a: MergeArgs) -> Result<i32> {
    let merged = merge(&a.dir, a.threads)?;
    let index = &merged.index;
    for w in &index.warnings {
        eprintln!("warning: {w}");
    }
    let splits: Vec<String> = index
        .splits
        .iter()
        .map(|(k, v)| format!("{k} {}", v.samples))
        .collect();
    println!(
        "merged {} shards: {} samples ({}) in {} file(s), {:.1} MiB, in {}",
        merged.shards,
        index.splits.values().map(|s| s.samples).sum::<usize>(),
        splits.join(", "),
        index.files.len(),
        index.files.iter().map(|f| f.bytes).sum::<u64>() as f64 / (1 << 20) as f64,
        crate::source::tidy(&a.dir).display()
    );
    Ok(0)
}
