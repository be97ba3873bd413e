//! Shards fixed before any pixel is processed: splits in order train, val, test, then others; keys
//! sorted within each; samples per shard from `shard_samples` or from `shard_bytes` and the
//! reference sample's size. The same inputs always give the same plan, so a resumed build and an
//! uninterrupted one agree on every file name.
use std::collections::BTreeMap;

use crate::engine::DEFAULT_SHARD_BYTES;
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::sample::{PairRef, Sample};
use crate::sink::{sample_bytes, ShardPlan};
use crate::split::SPLIT_ORDER;

pub fn plan_shards(
    p: &Pipeline,
    pairs: &[PairRef],
    splits: &[String],
    reference: &Sample,
) -> Vec<ShardPlan> {
    let per_shard = p.config.output.shard_samples.unwrap_or_else(|| {
        let target = p
            .config
            .output
            .shard_bytes
            .map_or(DEFAULT_SHARD_BYTES, |b| b.0);
        (target / sample_bytes(reference, p.label_dtype).max(1)).max(1) as usize
    });
    let mut by_split: BTreeMap<(usize, &str), Vec<PairRef>> = BTreeMap::new();
    for (pair, split) in pairs.iter().zip(splits) {
        let rank = SPLIT_ORDER
            .iter()
            .position(|s| s == split)
            .unwrap_or(SPLIT_ORDER.len());
        by_split
            .entry((rank, split))
            .or_default()
            .push(pair.clone());
    }
    let mut plans = Vec::new();
    for ((_, split), members) in by_split {
        let chunks: Vec<&[PairRef]> = members.chunks(per_shard).collect();
        let of = chunks.len();
        for (index, chunk) in chunks.into_iter().enumerate() {
            plans.push(ShardPlan {
                split: split.to_string(),
                index,
                of,
                first_sample: index * per_shard,
                pairs: chunk.to_vec(),
            });
        }
    }
    plans
}

/// Every sample must match the reference shape and dtype to be stacked.
pub fn check_shape(s: &Sample, reference: &Sample) -> Result<()> {
    let shape = |s: &Sample| {
        (
            s.image.width,
            s.image.height,
            s.image.bands,
            s.image.pixels.dtype(),
        )
    };
    if shape(s) == shape(reference) {
        return Ok(());
    }
    let (w, h, c, t) = shape(s);
    let (rw, rh, rc, rt) = shape(reference);
    Err(Error::data(
        &s.pair.image,
        "write",
        format!(
            "sample is {w}x{h}x{c} {t:?} after the stages, but {} is {rw}x{rh}x{rc} {rt:?}; shards stack samples of one shape: add a resize (and pad) stage, or make the band count and dtype agree",
            reference.pair.image.display()
        ),
    ))
}
