//! Class-balance statistics: counted as samples stream past a build (`counts`) or read back from a
//! build's shards (`recompute`), and reported with class weights (`weights`, `report`, `render`,
//! `plot`). Measuring a pipeline's input is a job above the pipeline: `crate::measure`.
pub mod counts;
pub mod plot;
pub mod recompute;
pub mod render;
pub mod report;
pub mod stats_file;
pub mod weights;
