//! The content of `stats.json`: per split the class counts, and the class weights of every scheme
//! derived from them (so a trainer reads its loss weights without a second `segprep stats` call).
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

use super::counts::SplitCounts;
use super::weights::{weights, ClassWeights, DEFAULT_BETA};
use crate::error::{Error, Result};
use crate::index::BuildFiles;

/// The content of `stats.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub ignore_index: u16,
    pub note: &'static str,
    pub splits: BTreeMap<String, SplitCounts>,
    /// Per split, the class weights of every scheme, so a trainer needs no second call.
    pub class_weights: BTreeMap<String, SplitWeights>,
}

/// One split's class weights: `ids[k]`'s weight is `inverse[k]` (and so on), in class order.
#[derive(Debug, Clone, Serialize)]
pub struct SplitWeights {
    pub ids: Vec<u16>,
    /// β of the `effective` scheme.
    pub beta: f64,
    #[serde(flatten)]
    pub weights: ClassWeights,
}

impl Stats {
    pub fn new(ignore_index: u16) -> Self {
        Stats {
            ignore_index,
            note: "pixels: per class; images: images containing the class; image_pixels: labelled pixels of those images; ignore, pad and unknown pixels are counted apart; class_weights: per split, one weight per class in the order of `ids` (absent classes 0)",
            splits: BTreeMap::new(),
            class_weights: BTreeMap::new(),
        }
    }

    /// Fills `class_weights` from the counts (call once every split is counted).
    pub fn weigh(&mut self) {
        self.class_weights = self
            .splits
            .iter()
            .map(|(split, counts)| {
                let w = SplitWeights {
                    ids: counts.classes.iter().map(|c| c.id).collect(),
                    beta: DEFAULT_BETA,
                    weights: weights(&counts.classes, DEFAULT_BETA),
                };
                (split.clone(), w)
            })
            .collect();
    }
}

/// What a reader takes from a build's `stats.json`: the counts per split (the weights derive from
/// them).
#[derive(Debug, Deserialize)]
struct WrittenStats {
    splits: BTreeMap<String, SplitCounts>,
}

/// The counts per split in the `stats.json` of the build in `dir`.
pub fn read_counts(dir: &Path) -> Result<BTreeMap<String, SplitCounts>> {
    let path = dir.join(BuildFiles::in_dir(dir).stats);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::data(&path, "stats", format!("cannot read: {e}")))?;
    let written: WrittenStats = serde_json::from_str(&text)
        .map_err(|e| Error::data(&path, "stats", format!("unexpected content: {e}")))?;
    Ok(written.splits)
}
