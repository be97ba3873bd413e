//! Shards fixed before any pixel is processed: splits in order train, val, test, then others; keys
//! sorted within each; samples per shard from `shard_samples` or from `shard_bytes` and the
//! reference sample's size. The same inputs always give the same plan, so a resumed build and an
//! uninterrupted one agree on every file name.
use std::collections::BTreeMap;

use crate::decode::stack::pair_header;
use crate::engine::DEFAULT_SHARD_BYTES;
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::sample::{PairRef, PixelType, Sample};
use crate::sink::{sample_bytes, ShardPlan};

/// The pairs of each split in plan order: splits train, val, test, then others; keys sorted.
pub(super) fn by_split<'a>(
    pairs: &[PairRef],
    splits: &'a [String],
) -> Vec<(&'a str, Vec<PairRef>)> {
    let mut by_split: BTreeMap<(usize, &str), Vec<PairRef>> = BTreeMap::new();
    for (pair, split) in pairs.iter().zip(splits) {
        by_split
            .entry((crate::split::rank(split), split))
            .or_default()
            .push(pair.clone());
    }
    by_split.into_iter().map(|((_, s), m)| (s, m)).collect()
}

/// `num_shards` shards over all splits, fixed by the sorted input alone (no sample is decoded), so
/// every worker computes the same partition. Each split gets at least one shard; the rest go one
/// at a time to the split with the most pairs per shard, and a split's pairs are cut evenly.
pub fn plan_fixed(
    p: &Pipeline,
    pairs: &[PairRef],
    splits: &[String],
    num_shards: usize,
) -> Result<Vec<ShardPlan>> {
    let groups = by_split(pairs, splits);
    if num_shards < groups.len() || num_shards > pairs.len() {
        return Err(Error::Usage(format!(
            "num_shards = {num_shards}, but the input has {} pairs in {} split(s): give between {} and {} shards",
            pairs.len(),
            groups.len(),
            groups.len(),
            pairs.len()
        )));
    }
    let sizes: Vec<usize> = groups.iter().map(|(_, m)| m.len()).collect();
    let counts = shard_counts(&sizes, num_shards);
    let mut plans = Vec::new();
    for ((split, members), of) in groups.into_iter().zip(counts) {
        let n = members.len();
        for index in 0..of {
            let (start, end) = (index * n / of, (index + 1) * n / of);
            plans.push(ShardPlan {
                split: split.to_string(),
                index,
                of,
                first_sample: start * p.samples_per_pair(split),
                pairs: members[start..end].to_vec(),
                samples: (end - start) * p.samples_per_pair(split),
            });
        }
    }
    Ok(plans)
}

/// Shards per split: one each, then one at a time to the split with the most pairs per shard
/// (the first on ties), never more shards than pairs. Needs `sizes.len() <= n <= sum(sizes)`.
fn shard_counts(sizes: &[usize], n: usize) -> Vec<usize> {
    let mut counts = vec![1usize; sizes.len()];
    for _ in sizes.len()..n {
        // compared as fractions: a/ca > b/cb  <=>  a*cb > b*ca
        let next = (0..sizes.len())
            .filter(|&k| counts[k] < sizes[k])
            .reduce(|a, b| {
                if sizes[b] * counts[a] > sizes[a] * counts[b] {
                    b
                } else {
                    a
                }
            })
            .expect("fewer shards than pairs");
        counts[next] += 1;
    }
    counts
}

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
    let mut plans = Vec::new();
    for (split, members) in by_split(pairs, splits) {
        // shard sizes count samples; an augmented pair becomes several
        let per_pair = p.samples_per_pair(split);
        let pairs_per_shard = (per_shard / per_pair).max(1);
        let chunks: Vec<&[PairRef]> = members.chunks(pairs_per_shard).collect();
        let of = chunks.len();
        for (index, chunk) in chunks.into_iter().enumerate() {
            plans.push(ShardPlan {
                split: split.to_string(),
                index,
                of,
                first_sample: index * pairs_per_shard * per_pair,
                samples: chunk.len() * per_pair,
                pairs: chunk.to_vec(),
            });
        }
    }
    plans
}

/// Every sample must match the reference's bands and dtype, and its size too when the layout
/// stacks samples into one array (all but `huggingface`, whose rows are PNGs of any size).
pub fn check_shape(s: &Sample, reference: &Sample, fixed_size: bool) -> Result<()> {
    let shape = |s: &Sample| {
        let size = fixed_size.then_some((s.image.width, s.image.height));
        (size, s.image.bands, s.image.pixels.dtype())
    };
    if shape(s) == shape(reference) {
        return Ok(());
    }
    let describe = |s: &Sample| {
        format!(
            "{}x{}x{} {:?}",
            s.image.width,
            s.image.height,
            s.image.bands,
            s.image.pixels.dtype()
        )
    };
    let advice = if fixed_size {
        "shards stack samples of one shape: add a resize (and pad) stage, or make the band count and dtype agree"
    } else {
        "every sample needs the same band count and dtype"
    };
    Err(Error::data(
        &s.pair.image,
        "write",
        format!(
            "sample is {} after the stages, but {} is {}; {advice}",
            describe(s),
            reference.pair.image.display(),
            describe(reference)
        ),
    ))
}

/// Every sample must share one band count and dtype: read from the headers before any pixel, so
/// a mixed dataset (grey among RGB, a 16-bit file among 8-bit ones) is reported with every odd
/// file at once rather than at the first one a worker meets.
pub fn check_uniform_images(p: &Pipeline, pairs: &[&PairRef]) -> Result<()> {
    use rayon::prelude::*;
    let input = &p.config.input;
    let rules = input.image_rules();
    let kinds: Vec<Option<(usize, Option<PixelType>)>> = pairs
        .par_iter()
        .map(|pair| {
            pair_header(pair, &rules, input.channels)
                .ok()
                .map(|h| (h.bands, h.dtype))
        })
        .collect();
    let mut tally: BTreeMap<(usize, Option<PixelType>), usize> = BTreeMap::new();
    for k in kinds.iter().flatten() {
        *tally.entry(*k).or_default() += 1;
    }
    let Some((&usual, _)) = tally.iter().max_by_key(|(_, n)| **n) else {
        return Ok(()); // unreadable files are reported when they are decoded
    };
    let describe = |(bands, dtype): (usize, Option<PixelType>)| {
        format!(
            "{bands} band(s) {}",
            dtype.map_or("of mixed dtypes".into(), |t| format!("{t:?}")
                .to_lowercase())
        )
    };
    let odd: Vec<Error> = pairs
        .iter()
        .zip(&kinds)
        .filter_map(|(pair, k)| k.filter(|k| *k != usual).map(|k| (pair, k)))
        .map(|(pair, k)| {
            Error::data(
                &pair.image,
                "decode",
                format!("{} where the others have {}", describe(k), describe(usual)),
            )
        })
        .collect();
    if odd.is_empty() {
        return Ok(());
    }
    let hint = if usual.0 == 3 || usual.0 == 1 {
        format!(
            "; set [input] channels = {} to convert grey and RGB images",
            usual.0
        )
    } else {
        String::new()
    };
    Err(Error::DataSet {
        summary: format!(
            "{} of {} images differ in band count or dtype from the rest ({}); shards hold one kind{hint}:",
            odd.len(),
            pairs.len(),
            describe(usual)
        ),
        problems: odd,
    })
}

#[cfg(test)]
mod tests {
    use super::shard_counts;

    #[test]
    fn shard_counts_follow_the_pairs() {
        assert_eq!(shard_counts(&[70, 20, 10], 10), [7, 2, 1]);
        assert_eq!(shard_counts(&[12, 6], 7), [5, 2]);
        assert_eq!(shard_counts(&[3, 1000], 2), [1, 1]);
        assert_eq!(shard_counts(&[2, 3], 5), [2, 3], "as many shards as pairs");
        for n in 3..=20 {
            let c = shard_counts(&[9, 7, 4], n);
            assert_eq!(c.iter().sum::<usize>(), n);
            assert!(c.iter().zip([9, 7, 4]).all(|(&c, s)| c >= 1 && c <= s));
        }
    }
}
