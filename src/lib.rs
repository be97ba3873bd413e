//! segprep: raw semantic-segmentation data in, model-ready shards out.
//!
//! Data flows one way: `source` (pairs) → `decode` → `stages` → `sink` (+ `stats` beside it),
//! driven by `engine`, configured by `pipeline`. The `cli` module is a thin layer on top.
pub mod check;
pub mod classes;
pub mod cli;
pub mod de;
pub mod decode;
pub mod engine;
pub mod error;
pub mod index;
pub mod inference;
pub mod measure;
pub mod memory;
pub mod online;
pub mod pipeline;
pub mod preview;
pub mod process;
pub mod progress;
pub mod sample;
pub mod sink;
pub mod source;
pub mod split;
pub mod stages;
pub mod stats;
pub mod storage;
pub mod verify;
