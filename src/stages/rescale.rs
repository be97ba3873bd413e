//! `rescale`: the explicit rule that brings 16-bit (or f32) imagery to u8, or to [0, 1] f32.
//! Values in `input_range = [low, high]` (one range for all bands, or one per band) map linearly
//! onto 0..255 or 0..1; values outside saturate at the ends, as the rule says. Nothing narrows an
//! image without this stage.
//!
//! Image: u8 (rounded) or f32. Label: untouched.
use serde::{Deserialize, Serialize};

use super::geometry::GeometryStep;
use super::standardize::map_values;
use super::{AtInference, BuildContext, SampleAt, StageOps};
use crate::sample::{ImagePart, LabelPart, Pixels, Sample};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RescaleConfig {
    /// `[low, high]` for every band, or `[[low, high], ...]` one per band.
    pub input_range: Vec<toml::Value>,
    /// `u8` (0..255, rounded) or `f32` (0..1).
    pub output: RescaleOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RescaleOutput {
    U8,
    F32,
}

#[derive(Debug, Clone)]
pub struct Rescale {
    /// One (low, high) for all bands, or one per band.
    ranges: Vec<(f64, f64)>,
    output: RescaleOutput,
}

impl RescaleConfig {
    pub fn build(&self, _ctx: &mut BuildContext) -> Result<Rescale, Vec<String>> {
        let pair = |v: &[toml::Value]| -> Option<(f64, f64)> {
            match v {
                [lo, hi] => Some((crate::de::number(lo)?, crate::de::number(hi)?)),
                _ => None,
            }
        };
        let ranges = match self.input_range.as_slice() {
            all @ [toml::Value::Integer(_) | toml::Value::Float(_), _] => {
                pair(all).map(|r| vec![r])
            }
            per_band => per_band
                .iter()
                .map(|v| v.as_array().and_then(|a| pair(a)))
                .collect::<Option<Vec<_>>>(),
        };
        let Some(ranges) = ranges.filter(|r| !r.is_empty()) else {
            return Err(vec![
                "rescale: input_range is [low, high] or one [low, high] per band".into(),
            ]);
        };
        if ranges
            .iter()
            .any(|(lo, hi)| !(lo.is_finite() && hi.is_finite() && lo < hi))
        {
            return Err(vec![
                "rescale: each input_range needs low < high, both finite".into(),
            ]);
        }
        Ok(Rescale {
            ranges,
            output: self.output,
        })
    }
}

impl StageOps for Rescale {
    type Plan = ();

    fn name(&self) -> &'static str {
        "rescale"
    }

    fn copies(&self, _split: &str) -> Vec<u32> {
        vec![0]
    }

    fn plan(&self, _at: SampleAt) -> Result<(), String> {
        Ok(())
    }

    /// Image: each band's input range onto [0, 1] (f32) or 0..255 (u8), clipped.
    fn apply_image(&self, _plan: &(), part: ImagePart) -> Result<(), String> {
        let img = part.image;
        if self.ranges.len() > 1 && self.ranges.len() != img.bands {
            return Err(format!(
                "rescale has input ranges for {} bands but the image has {}",
                self.ranges.len(),
                img.bands
            ));
        }
        let range = |b: usize| self.ranges[if self.ranges.len() == 1 { 0 } else { b }];
        let unit = map_values(&img.pixels, img.bands, |b, x| {
            let (lo, hi) = range(b);
            ((x - lo) / (hi - lo)).clamp(0.0, 1.0) as f32
        });
        img.pixels = match self.output {
            RescaleOutput::F32 => Pixels::F32(unit),
            RescaleOutput::U8 => Pixels::U8(
                unit.into_iter()
                    .map(|u| (u * 255.0).round() as u8)
                    .collect(),
            ),
        };
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

    fn at_inference(&self) -> AtInference {
        AtInference::Runs
    }

    fn geometry(&self, _w: u32, _h: u32) -> Result<Vec<GeometryStep>, String> {
        Ok(Vec::new())
    }

    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "stage": "rescale",
            "input_range": self.ranges,
            "output": self.output,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{Image, LabelMap, PairRef, Sample};
    use crate::stages::run_on;

    fn sample(pixels: Pixels, bands: usize) -> Sample {
        let n = pixels.len() / bands;
        Sample {
            pair: PairRef::new("k".into(), "i".into(), "l".into()),
            split: "train".into(),
            image: Image {
                width: n as u32,
                height: 1,
                bands,
                pixels,
            },
            label: LabelMap {
                width: n as u32,
                height: 1,
                ids: vec![0; n],
            },
            padding: None,
            unknown_pixels: 0,
            standardization: None,
            instances: None,
            augment: None,
        }
    }

    fn build(text: &str) -> Result<Rescale, Vec<String>> {
        let c: RescaleConfig = toml::from_str(text).unwrap();
        let classes = crate::classes::ClassSet::new(
            vec![crate::classes::Class {
                id: 0,
                name: "a".into(),
                color: None,
            }],
            255,
        )
        .unwrap();
        c.build(&mut BuildContext { classes })
    }

    #[test]
    fn twelve_bit_to_u8_saturates_outside_the_range() {
        let r = build("input_range = [0, 4095]\noutput = \"u8\"").unwrap();
        let mut s = sample(Pixels::U16(vec![0, 4095, 2048, 65535]), 1);
        run_on(&r, &mut s, 0).unwrap();
        assert_eq!(s.image.pixels, Pixels::U8(vec![0, 255, 128, 255]));
    }

    #[test]
    fn per_band_ranges_to_unit_f32() {
        let r = build("input_range = [[0, 10], [100, 200]]\noutput = \"f32\"").unwrap();
        let mut s = sample(Pixels::U16(vec![5, 150, 10, 100]), 2);
        run_on(&r, &mut s, 0).unwrap();
        assert_eq!(s.image.pixels, Pixels::F32(vec![0.5, 0.5, 1.0, 0.0]));
        assert!(run_on(&r, &mut sample(Pixels::U16(vec![1, 2, 3]), 3), 0).is_err());
        assert!(build("input_range = [5, 5]\noutput = \"u8\"").is_err());
    }
}
