//! `standardize`: image values to f32 zero mean, unit spread.
//!
//! - `per_image`: exactly Segmentation Gym's rule, (x - mean) / max(std, 1/sqrt(H*W)), with mean and
//!   std over all pixels and bands (numpy's population std); the values used are kept per sample.
//! - `fixed`: per-band mean and std given in the pipeline.
//! - `dataset`: per-band mean and std measured on the training split in a first pass.
//!
//! Image: becomes f32. Label: untouched.
use serde::{Deserialize, Serialize};

use super::geometry::GeometryStep;
use super::{AtInference, BuildContext, SampleAt, StageOps};
use crate::sample::{ImagePart, LabelPart, Pixels, Sample, Standardization};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StandardizeConfig {
    pub mode: StandardizeMode,
    /// `fixed`: per-band means, in input units.
    pub mean: Option<Vec<f64>>,
    /// `fixed`: per-band standard deviations, in input units.
    pub std: Option<Vec<f64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StandardizeMode {
    PerImage,
    Fixed,
    Dataset,
}

#[derive(Debug, Clone)]
pub struct Standardize {
    pub mode: StandardizeMode,
    /// Per-band (mean, std) for `fixed`, and for `dataset` once measured.
    pub bands: Option<Vec<(f64, f64)>>,
}

impl StandardizeConfig {
    pub fn build(&self, _ctx: &mut BuildContext) -> Result<Standardize, Vec<String>> {
        let given = self.mean.is_some() || self.std.is_some();
        match self.mode {
            StandardizeMode::Fixed => {
                let (Some(mean), Some(std)) = (&self.mean, &self.std) else {
                    return Err(vec![
                        "standardize: mode = \"fixed\" needs `mean` and `std` (one value per band)"
                            .into(),
                    ]);
                };
                if mean.len() != std.len() || mean.is_empty() {
                    return Err(vec![format!(
                        "standardize: {} means and {} stds; give one of each per band",
                        mean.len(),
                        std.len()
                    )]);
                }
                if std.iter().any(|s| !(s.is_finite() && *s > 0.0))
                    || mean.iter().any(|m| !m.is_finite())
                {
                    return Err(vec![
                        "standardize: std values must be positive and all values finite".into(),
                    ]);
                }
                Ok(Standardize {
                    mode: self.mode,
                    bands: Some(mean.iter().copied().zip(std.iter().copied()).collect()),
                })
            }
            _ if given => Err(vec![format!(
                "standardize: `mean`/`std` only apply to mode = \"fixed\" (mode here is {:?})",
                self.mode
            )]),
            _ => Ok(Standardize {
                mode: self.mode,
                bands: None,
            }),
        }
    }
}

impl StageOps for Standardize {
    type Plan = ();

    fn name(&self) -> &'static str {
        "standardize"
    }

    fn copies(&self, _split: &str) -> Vec<u32> {
        vec![0]
    }

    fn plan(&self, _at: SampleAt) -> Result<(), String> {
        Ok(())
    }

    /// Image: (x - mean) / std as f32, per band (`fixed`, `dataset`) or over the whole image
    /// (`per_image`, whose values are recorded with the sample).
    fn apply_image(&self, _plan: &(), part: ImagePart) -> Result<(), String> {
        let img = part.image;
        match self.mode {
            StandardizeMode::PerImage => {
                let BandMoments { count, sum, sum_sq } = moments(&img.pixels, 1).remove(0);
                let mean = sum / count as f64;
                let var = (sum_sq / count as f64 - mean * mean).max(0.0);
                let floor = 1.0 / (img.pixel_count() as f64).sqrt();
                let std = var.sqrt().max(floor);
                img.pixels =
                    Pixels::F32(map_values(&img.pixels, 1, |_, x| ((x - mean) / std) as f32));
                *part.standardization = Some(Standardization { mean, std });
            }
            StandardizeMode::Fixed | StandardizeMode::Dataset => {
                let bands = self
                    .bands
                    .as_ref()
                    .ok_or("dataset statistics were not measured")?;
                if bands.len() != img.bands {
                    return Err(format!(
                        "standardize has values for {} bands but the image has {}",
                        bands.len(),
                        img.bands
                    ));
                }
                img.pixels = Pixels::F32(map_values(&img.pixels, img.bands, |b, x| {
                    ((x - bands[b].0) / bands[b].1) as f32
                }));
            }
        }
        Ok(())
    }

    /// Label: untouched.
    fn apply_label(&self, _plan: &(), _part: LabelPart) -> Result<(), String> {
        Ok(())
    }

    /// One sample in, one out: no copy to derive.
    fn derive(&self, _plan: &(), _sample: &Sample) -> Result<Option<Sample>, String> {
        Ok(None)
    }

    fn drawn(&self, _plan: &()) -> Option<String> {
        None
    }

    /// Runs with the build's values (`dataset`: the recorded train mean and std).
    fn at_inference(&self) -> AtInference {
        AtInference::Runs
    }

    fn geometry(&self, _w: u32, _h: u32) -> Result<Vec<GeometryStep>, String> {
        Ok(Vec::new())
    }

    fn describe(&self) -> serde_json::Value {
        let (mean, std): (Vec<f64>, Vec<f64>) = self.bands.iter().flatten().copied().unzip();
        match self.mode {
            StandardizeMode::PerImage => serde_json::json!({
                "stage": "standardize", "mode": "per_image",
                "rule": "(x - mean) / max(std, 1/sqrt(H*W)), mean and population std over all pixels and bands",
                "values": "per sample, in each shard's image_mean and image_std arrays",
            }),
            mode => {
                serde_json::json!({ "stage": "standardize", "mode": mode, "mean": mean, "std": std })
            }
        }
    }
}

/// Sums for a mean and a population variance. For integer pixels they are exact, so the result does
/// not depend on the order samples are merged in.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BandMoments {
    pub count: u64,
    pub sum: f64,
    pub sum_sq: f64,
}

impl BandMoments {
    pub fn merge(&mut self, other: &BandMoments) {
        self.count += other.count;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
    }

    pub fn mean_std(&self) -> (f64, f64) {
        let n = self.count.max(1) as f64;
        let mean = self.sum / n;
        (mean, (self.sum_sq / n - mean * mean).max(0.0).sqrt())
    }
}

/// Moments per band (`groups` = number of bands), or over all values (`groups` = 1).
pub fn moments(p: &Pixels, groups: usize) -> Vec<BandMoments> {
    fn exact<T: Copy + Into<u64>>(v: &[T], groups: usize) -> Vec<BandMoments> {
        let mut sums = vec![(0u64, 0u128, 0u64); groups];
        for (i, &x) in v.iter().enumerate() {
            let x: u64 = x.into();
            let s = &mut sums[i % groups];
            s.0 += x;
            s.1 += (x * x) as u128;
            s.2 += 1;
        }
        sums.into_iter()
            .map(|(s, sq, n)| BandMoments {
                count: n,
                sum: s as f64,
                sum_sq: sq as f64,
            })
            .collect()
    }
    match p {
        Pixels::U8(v) => exact(v, groups),
        Pixels::U16(v) => exact(v, groups),
        Pixels::F32(v) => {
            let mut out = vec![BandMoments::default(); groups];
            for (i, &x) in v.iter().enumerate() {
                let m = &mut out[i % groups];
                m.count += 1;
                m.sum += x as f64;
                m.sum_sq += x as f64 * x as f64;
            }
            out
        }
    }
}

pub fn map_values(p: &Pixels, bands: usize, f: impl Fn(usize, f64) -> f32) -> Vec<f32> {
    match p {
        Pixels::U8(v) => v
            .iter()
            .enumerate()
            .map(|(i, &x)| f(i % bands, x as f64))
            .collect(),
        Pixels::U16(v) => v
            .iter()
            .enumerate()
            .map(|(i, &x)| f(i % bands, x as f64))
            .collect(),
        Pixels::F32(v) => v
            .iter()
            .enumerate()
            .map(|(i, &x)| f(i % bands, x as f64))
            .collect(),
    }
}
