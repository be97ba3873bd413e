//! The class-imbalance report: per split and class the counts, shares, flags and weights, the
//! majority-class accuracy, and the data-quality findings. Rendered as an aligned terminal table, or
//! as JSON, CSV, Parquet or Markdown from one polars table.
use polars::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

use super::counts::{InstanceCounts, SplitCounts};
use super::weights::{weights, ClassWeights};

#[derive(Debug, Clone, Copy)]
pub struct ReportOptions {
    /// A class under this share of a split's labelled pixels is flagged rare.
    pub rare: f64,
    /// β of the effective-number weights.
    pub beta: f64,
}

/// `segprep stats`'s default rare threshold: under 1% of a split's labelled pixels.
pub const DEFAULT_RARE: f64 = 0.01;

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            rare: DEFAULT_RARE,
            beta: crate::stats::weights::DEFAULT_BETA,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    /// What was counted.
    pub source: String,
    pub ignore_index: u16,
    pub rare_threshold: f64,
    pub effective_number_beta: f64,
    pub splits: Vec<SplitReport>,
    /// The same in the input classes, when a remap changes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_remap: Option<Vec<SplitReport>>,
    pub quality: Quality,
    /// With `--recompute`: differences between stats.json and the shards (empty: they agree).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recompute_differences: Option<Vec<String>>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct SplitReport {
    pub split: String,
    pub samples: u64,
    pub labelled_pixels: u64,
    pub ignore_pixels: u64,
    pub pad_pixels: u64,
    pub unknown_pixels: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<InstanceCounts>,
    pub classes: Vec<ClassRow>,
    /// Always predicting the most frequent class: its name and the pixel accuracy it scores.
    pub majority_class: Option<String>,
    pub majority_accuracy: Option<f64>,
    /// Pixels of the most frequent class over those of the least frequent present one.
    pub imbalance_ratio: Option<f64>,
    pub absent: Vec<String>,
    pub rare: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ClassRow {
    pub id: u16,
    pub name: String,
    pub pixels: u64,
    /// Of the split's labelled pixels.
    pub share: f64,
    pub images: u64,
    pub image_pixels: u64,
    pub rare: bool,
    pub weight_inverse: f64,
    pub weight_median: f64,
    pub weight_enet: f64,
    pub weight_effective: f64,
}

pub fn split_reports(splits: &BTreeMap<String, SplitCounts>, o: ReportOptions) -> Vec<SplitReport> {
    let mut ordered: Vec<(&String, &SplitCounts)> = splits.iter().collect();
    ordered.sort_by_key(|(name, _)| (crate::split::rank(name), name.to_string()));
    ordered
        .into_iter()
        .map(|(name, c)| split_report(name, c, o))
        .collect()
}

fn split_report(name: &str, c: &SplitCounts, o: ReportOptions) -> SplitReport {
    let ClassWeights {
        inverse,
        median,
        enet,
        effective,
    } = weights(&c.classes, o.beta);
    let labelled = c.labelled_pixels.max(1) as f64;
    let classes: Vec<ClassRow> = c
        .classes
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let share = k.pixels as f64 / labelled;
            ClassRow {
                id: k.id,
                name: k.name.clone(),
                pixels: k.pixels,
                share,
                images: k.images,
                image_pixels: k.image_pixels,
                rare: k.pixels > 0 && share < o.rare,
                weight_inverse: inverse[i],
                weight_median: median[i],
                weight_enet: enet[i],
                weight_effective: effective[i],
            }
        })
        .collect();
    let present: Vec<&ClassRow> = classes.iter().filter(|r| r.pixels > 0).collect();
    let most = present.iter().max_by_key(|r| r.pixels);
    let least = present.iter().min_by_key(|r| r.pixels);
    SplitReport {
        split: name.to_string(),
        samples: c.samples,
        labelled_pixels: c.labelled_pixels,
        ignore_pixels: c.ignore_pixels,
        pad_pixels: c.pad_pixels,
        unknown_pixels: c.unknown_pixels,
        instances: c.instances.clone(),
        majority_class: most.map(|r| r.name.clone()),
        majority_accuracy: most.map(|r| r.share),
        imbalance_ratio: most
            .zip(least)
            .map(|(m, l)| m.pixels as f64 / l.pixels as f64),
        absent: classes
            .iter()
            .filter(|r| r.pixels == 0)
            .map(|r| r.name.clone())
            .collect(),
        rare: classes
            .iter()
            .filter(|r| r.rare)
            .map(|r| r.name.clone())
            .collect(),
        classes,
    }
}

/// Warnings a user must not miss: absent classes (weight 0), undeclared values, unreadable files.
pub fn warnings(report: &Report) -> Vec<String> {
    let mut w = Vec::new();
    for s in &report.splits {
        if !s.absent.is_empty() {
            w.push(format!(
                "{}: class(es) {} have no pixels; their weights are 0",
                s.split,
                s.absent.join(", ")
            ));
        }
    }
    let q = &report.quality;
    if !q.undeclared.is_empty() {
        w.push(format!(
            "{} undeclared label value(s) or colour(s) found (see quality)",
            q.undeclared.len()
        ));
    }
    if !q.unreadable.is_empty() {
        w.push(format!(
            "{} file(s) could not be counted (see quality)",
            q.unreadable.len()
        ));
    }
    w
}

impl Report {
    /// One row per split and class: the table behind csv, parquet and markdown.
    pub fn table(&self) -> PolarsResult<DataFrame> {
        let rows: Vec<(&SplitReport, &ClassRow)> = self
            .splits
            .iter()
            .flat_map(|s| s.classes.iter().map(move |c| (s, c)))
            .collect();
        let col_u64 = |name: &str, f: &dyn Fn(&ClassRow) -> u64| {
            Column::new(
                name.into(),
                rows.iter().map(|(_, c)| f(c)).collect::<Vec<u64>>(),
            )
        };
        let col_f64 = |name: &str, f: &dyn Fn(&ClassRow) -> f64| {
            Column::new(
                name.into(),
                rows.iter().map(|(_, c)| f(c)).collect::<Vec<f64>>(),
            )
        };
        DataFrame::new(
            rows.len(),
            vec![
                Column::new(
                    "split".into(),
                    rows.iter()
                        .map(|(s, _)| s.split.as_str())
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "id".into(),
                    rows.iter().map(|(_, c)| c.id as u32).collect::<Vec<u32>>(),
                ),
                Column::new(
                    "name".into(),
                    rows.iter()
                        .map(|(_, c)| c.name.as_str())
                        .collect::<Vec<_>>(),
                ),
                col_u64("pixels", &|c| c.pixels),
                col_f64("share", &|c| c.share),
                col_u64("images", &|c| c.images),
                col_u64("image_pixels", &|c| c.image_pixels),
                Column::new(
                    "rare".into(),
                    rows.iter().map(|(_, c)| c.rare).collect::<Vec<bool>>(),
                ),
                Column::new(
                    "absent".into(),
                    rows.iter()
                        .map(|(_, c)| c.pixels == 0)
                        .collect::<Vec<bool>>(),
                ),
                col_f64("weight_inverse", &|c| c.weight_inverse),
                col_f64("weight_median", &|c| c.weight_median),
                col_f64("weight_enet", &|c| c.weight_enet),
                col_f64("weight_effective", &|c| c.weight_effective),
            ],
        )
    }
}

/// What the labels say about the data beyond counts.
#[derive(Debug, Default, Serialize)]
pub struct Quality {
    /// Undeclared label values or colours: (value, pixels, files).
    pub undeclared: Vec<(String, u64, u64)>,
    /// Keys of samples whose labels hold one class only.
    pub single_class: Vec<String>,
    /// Keys of samples whose labels are all ignore.
    pub all_ignore: Vec<String>,
    /// Files that could not be read or processed: (file, reason).
    pub unreadable: Vec<(String, String)>,
    pub unpaired_files: usize,
}
