//! Binary masks merged into one label map (per-instance masks, MVTec AD defect masks): each mask's
//! foreground pixels take its class id; the rest stay background (0). Masks are read raw and must be
//! binary (0 and `foreground_value`); a pixel claimed by two masks follows the overlap policy.
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use super::raw_label::{read_raw_label, RawPixels};
use super::DecodeLimits;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy)]
pub struct MaskMerge {
    pub foreground_value: u16,
    pub overlap: OverlapPolicy,
    pub ignore_index: u16,
    pub limits: DecodeLimits,
}

#[derive(Debug)]
pub struct Merged {
    pub ids: Vec<u16>,
    /// Masks with at least one foreground pixel.
    pub instances: u32,
}

impl MaskMerge {
    /// Merges the masks of each class, in order, onto a background label of `width` x `height`.
    pub fn merge(
        &self,
        classes: &[(u16, Vec<PathBuf>)],
        width: u32,
        height: u32,
    ) -> Result<Merged> {
        let n = width as usize * height as usize;
        let mut ids = vec![0u16; n];
        // which mask (index + 1) owns each pixel, to name both files of an overlap
        let mut owner = vec![0u32; n];
        let masks: Vec<(u16, &PathBuf)> = classes
            .iter()
            .flat_map(|(class, files)| files.iter().map(move |f| (*class, f)))
            .collect();
        let mut instances = 0;
        for (m, (class, file)) in masks.iter().enumerate() {
            let fg = self.foreground(file, width, height)?;
            instances += u32::from(fg.iter().any(|&f| f));
            let mut clashes: std::collections::BTreeMap<u32, u64> = Default::default();
            for (i, _) in fg.iter().enumerate().filter(|(_, f)| **f) {
                match (owner[i], self.overlap) {
                    (0, _) => {
                        ids[i] = *class;
                        owner[i] = m as u32 + 1;
                    }
                    (o, OverlapPolicy::Error) => *clashes.entry(o).or_default() += 1,
                    (_, OverlapPolicy::First) => {}
                    (_, OverlapPolicy::Ignore) => ids[i] = self.ignore_index,
                }
            }
            if let Some((o, count)) = clashes.into_iter().next() {
                let other = masks[o as usize - 1].1;
                return Err(Error::data(
                    file,
                    "decode",
                    format!(
                        "{count} pixel(s) are also in {}; masks overlap: set labels.overlap = \"first\" (earlier mask wins) or \"ignore\"",
                        other.display()
                    ),
                ));
            }
        }
        Ok(Merged { ids, instances })
    }

    /// A mask as booleans, after checking its size and that it is binary.
    fn foreground(&self, file: &Path, width: u32, height: u32) -> Result<Vec<bool>> {
        let err = |m: String| Error::data(file, "decode", m);
        let raw = read_raw_label(file, &self.limits).map_err(err)?;
        if (raw.width, raw.height) != (width, height) {
            return Err(err(format!(
                "mask is {}x{} but its image is {width}x{height}",
                raw.width, raw.height
            )));
        }
        let values: Vec<u16> = match raw.pixels {
            RawPixels::Gray8(v) => v.into_iter().map(u16::from).collect(),
            RawPixels::Gray16(v) => v,
            RawPixels::Indexed { indices, .. } => indices.into_iter().map(u16::from).collect(),
            RawPixels::Color { .. } => {
                return Err(err(
                    "mask is a colour image; masks are single-channel 0 / foreground images".into(),
                ))
            }
        };
        let fg = self.foreground_value;
        if let Some(bad) = values.iter().find(|&&v| v != 0 && v != fg) {
            let count = values.iter().filter(|&&v| v == *bad).count();
            return Err(err(format!(
                "mask is not binary: value {bad} at {count} pixel(s); masks hold 0 and {fg} (labels.foreground_value)"
            )));
        }
        Ok(values.into_iter().map(|v| v == fg).collect())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlapPolicy {
    /// A pixel in two masks stops the run, naming both masks.
    #[default]
    Error,
    /// The first mask (folder order, then file name) keeps the pixel.
    First,
    /// Overlapping pixels become the ignore index.
    Ignore,
}
