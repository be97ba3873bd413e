//! Split assignment: train/val/test by fractions, keyed by each sample's name (or group) and the seed,
//! never by its position, so adding or removing files moves at most the samples near a boundary.
//!
//! Groups (samples sharing a `group` regex match) are ordered by a hash of (seed, group name); each
//! group lands in the split whose share of the dataset covers the group's midpoint, which gives
//! exact proportions for ungrouped data (8/2 of 10 at 0.8/0.2) and keeps every group whole.
use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

use crate::sample::PairRef;

pub const SPLIT_ORDER: [&str; 3] = ["train", "val", "test"];

/// Where a split sorts: train, val, test, then any other (by name, at the caller).
pub fn rank(name: &str) -> usize {
    SPLIT_ORDER
        .iter()
        .position(|s| *s == name)
        .unwrap_or(SPLIT_ORDER.len())
}

#[derive(Debug, Clone)]
pub enum SplitPlan {
    /// No `[split]` table: the manifest's split column if present, else everything in `train`.
    Single,
    Fractions {
        fractions: [f64; 3],
        seed: u64,
        group: Option<Regex>,
    },
    /// `from = "source"`: the split each source gives.
    FromSource,
    /// `from = "folder"`: the key's first folder.
    FromFolder,
}

/// The usual names of the three splits: `training` -> `train`, `validation` -> `val`, ...
pub fn canonical(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "train" | "training" => "train".into(),
        "val" | "valid" | "validation" => "val".into(),
        "test" | "testing" => "test".into(),
        _ => name.to_string(),
    }
}

/// Whether a split name is safe in file names: letters, digits, `_` and `-`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl SplitPlan {
    /// Checks a `[split]` table; `has_manifest_split` says whether the source provides a column.
    pub fn from_config(cfg: Option<&SplitConfig>) -> Result<SplitPlan, Vec<String>> {
        let Some(cfg) = cfg else {
            return Ok(SplitPlan::Single);
        };
        let fractions = [cfg.train, cfg.val, cfg.test];
        if let Some(from) = cfg.from {
            if fractions.iter().any(|f| *f != 0.0) || cfg.group.is_some() {
                return Err(vec![
                    "split: `from` cannot be combined with fractions or group".into(),
                ]);
            }
            return Ok(match from {
                SplitSource::Source => SplitPlan::FromSource,
                SplitSource::Folder => SplitPlan::FromFolder,
            });
        }
        let mut problems = Vec::new();
        if fractions.iter().any(|f| !(0.0..=1.0).contains(f)) {
            problems.push("split: fractions must be between 0 and 1".to_string());
        }
        let sum: f64 = fractions.iter().sum();
        if (sum - 1.0).abs() > 1e-6 {
            problems.push(format!("split: train + val + test = {sum}, but must be 1"));
        }
        let group = match cfg.group.as_deref().map(Regex::new) {
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                problems.push(format!("split: group is not a valid regex: {e}"));
                None
            }
            None => None,
        };
        if problems.is_empty() {
            Ok(SplitPlan::Fractions {
                fractions,
                seed: cfg.seed,
                group,
            })
        } else {
            Err(problems)
        }
    }

    /// The split of each pair, in the pairs' order.
    pub fn assign(&self, pairs: &[PairRef]) -> Result<Vec<String>, String> {
        match self {
            // no [split] table: a manifest's split column if it has one, else everything in train
            SplitPlan::Single => match pairs.iter().filter(|p| p.split.is_some()).count() {
                0 => Ok(vec!["train".to_string(); pairs.len()]),
                n if n == pairs.len() => Ok(pairs.iter().filter_map(|p| p.split.clone()).collect()),
                n => Err(format!(
                    "{n} of {} manifest rows have a split; give every row one, or add a [split] table",
                    pairs.len()
                )),
            },
            SplitPlan::FromSource => pairs
                .iter()
                .map(|p| {
                    p.split
                        .clone()
                        .ok_or_else(|| format!("sample `{}` has no split in its source (manifest column, dictionary field or folder)", p.key))
                })
                .collect(),
            SplitPlan::FromFolder => pairs.iter().map(|p| folder_split(&p.key)).collect(),
            SplitPlan::Fractions {
                fractions,
                seed,
                group,
            } => Ok(assign_fractions(pairs, fractions, *seed, group.as_ref())),
        }
    }
}

fn folder_split(key: &str) -> Result<String, String> {
    let name = match key.split_once('/') {
        Some((first, _)) => canonical(first),
        None => {
            return Err(format!(
            "sample `{key}` is not in a folder, so split.from = \"folder\" cannot name its split"
        ))
        }
    };
    if is_valid_name(&name) {
        Ok(name)
    } else {
        Err(format!("folder `{name}` of sample `{key}` is not a usable split name (letters, digits, `_`, `-`)"))
    }
}

fn group_of<'a>(key: &'a str, group: Option<&Regex>) -> &'a str {
    let Some(re) = group else { return key };
    match re.captures(key) {
        Some(c) => c.get(1).or_else(|| c.get(0)).map_or(key, |m| m.as_str()),
        None => key,
    }
}

fn draw(seed: u64, name: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(name.as_bytes());
    h.finalize().into()
}

fn assign_fractions(
    pairs: &[PairRef],
    fractions: &[f64; 3],
    seed: u64,
    group: Option<&Regex>,
) -> Vec<String> {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, p) in pairs.iter().enumerate() {
        groups.entry(group_of(&p.key, group)).or_default().push(i);
    }
    let mut order: Vec<(&str, &Vec<usize>)> = groups.iter().map(|(k, v)| (*k, v)).collect();
    order.sort_by_cached_key(|(name, _)| (draw(seed, name), name.to_string()));
    let n = pairs.len() as f64;
    let bounds = [fractions[0] * n, (fractions[0] + fractions[1]) * n];
    let mut out = vec![String::new(); pairs.len()];
    let mut before = 0usize;
    for (_, members) in order {
        let middle = before as f64 + members.len() as f64 / 2.0;
        let split = if middle < bounds[0] {
            "train"
        } else if middle < bounds[1] {
            "val"
        } else {
            "test"
        };
        for &i in members {
            out[i] = split.to_string();
        }
        before += members.len();
    }
    out
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    #[serde(default)]
    pub train: f64,
    #[serde(default)]
    pub val: f64,
    #[serde(default)]
    pub test: f64,
    #[serde(default)]
    pub seed: u64,
    /// A regex on the key; samples whose first capture group (or whole match) agree share a split.
    pub group: Option<String>,
    /// `"source"`: the split the source gives (a manifest's `split` column, a pair list's name,
    /// an MVTec dictionary's `split`, MVTec AD's train/test folder); `"folder"`: the key's first
    /// folder (Cityscapes' `train/...`). `training`/`validation`/`testing` become train/val/test.
    pub from: Option<SplitSource>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitSource {
    #[serde(alias = "manifest")]
    Source,
    Folder,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(keys: &[&str]) -> Vec<PairRef> {
        keys.iter()
            .map(|k| PairRef::new(k.to_string(), k.into(), k.into()))
            .collect()
    }

    fn plan(train: f64, val: f64, group: Option<&str>) -> SplitPlan {
        let cfg = SplitConfig {
            train,
            val,
            test: (1.0 - train - val).max(0.0),
            seed: 7,
            group: group.map(String::from),
            from: None,
        };
        SplitPlan::from_config(Some(&cfg)).unwrap()
    }

    #[test]
    fn exact_proportions_for_ten() {
        let keys: Vec<String> = (0..10).map(|i| format!("img{i}")).collect();
        let p = pairs(&keys.iter().map(String::as_str).collect::<Vec<_>>());
        let s = plan(0.8, 0.2, None).assign(&p).unwrap();
        assert_eq!(s.iter().filter(|s| *s == "train").count(), 8);
        assert_eq!(s.iter().filter(|s| *s == "val").count(), 2);
    }

    #[test]
    fn keyed_by_name_not_position() {
        let a = plan(0.5, 0.5, None)
            .assign(&pairs(&["a", "b", "c", "d"]))
            .unwrap();
        let mut reversed = pairs(&["a", "b", "c", "d"]);
        reversed.reverse();
        let mut b = plan(0.5, 0.5, None).assign(&reversed).unwrap();
        b.reverse();
        assert_eq!(a, b);
    }

    #[test]
    fn groups_stay_together() {
        let keys = [
            "scene1_t0",
            "scene1_t1",
            "scene2_t0",
            "scene2_t1",
            "scene3_t0",
            "scene3_t1",
        ];
        let s = plan(0.67, 0.33, Some("^(scene\\d+)_"))
            .assign(&pairs(&keys))
            .unwrap();
        for i in (0..6).step_by(2) {
            assert_eq!(s[i], s[i + 1]);
        }
    }

    #[test]
    fn fractions_must_sum_to_one() {
        let cfg = SplitConfig {
            train: 0.8,
            val: 0.1,
            test: 0.0,
            ..Default::default()
        };
        assert!(SplitPlan::from_config(Some(&cfg)).is_err());
    }
}
