//! Label maps to class ids, by format:
//! - `index`: grey 8/16-bit values (or palette indices) are ids;
//! - `palette`: palette indices are ids (never the colours);
//! - `rgb`: colours through the colour table (palette PNGs by their palette colours);
//! - `binary`: 0 is background (0), `foreground_value` is foreground (1);
//! - `mvtec`: like `index`, with the dictionary's (possibly sparse) class ids;
//! - `ade20k`: colour (R, G, B) holds class R / 10 * 256 + G;
//! - `mvtec_ad`, `instances`: binary masks merged by `masks`.
//!
//! The input's ignore index passes through as ignore (except for `binary`, whose values are fixed).
//! A value that is not declared is an error naming it and its pixel count, or, with
//! `unknown = "ignore"`, becomes the ignore index and is counted.
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::masks::MaskMerge;
use super::raw_label::{
    read_raw_label, read_raw_label_rows, LabelRows, PixelsRef, RawLabel, RawPixels,
};
use super::DecodeLimits;
use crate::classes::ClassSet;
use crate::error::{Error, Result as DataResult};

use crate::sample::{LabelMap, LabelSource};

/// A value as found in a label file, before mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RawValue {
    Value(u16),
    Color([u8; 3]),
}

impl std::fmt::Display for RawValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RawValue::Value(v) => write!(f, "value {v}"),
            RawValue::Color([r, g, b]) => write!(f, "colour ({r}, {g}, {b})"),
        }
    }
}

#[derive(Debug)]
pub struct DecodedLabel {
    pub map: LabelMap,
    pub unknown_pixels: u64,
    /// Instance masks merged into the map, for mask sources.
    pub instances: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct LabelDecoder {
    format: LabelFormat,
    /// value -> id for grey and index inputs; `None` where undeclared.
    by_value: Vec<Option<u16>>,
    by_color: HashMap<[u8; 3], u16>,
    ignore_index: u16,
    unknown: UnknownPolicy,
    limits: DecodeLimits,
    masks: MaskMerge,
}

impl LabelDecoder {
    pub fn new(
        format: LabelFormat,
        classes: &ClassSet,
        unknown: UnknownPolicy,
        masks: MaskMerge,
    ) -> Self {
        let foreground_value = masks.foreground_value;
        let mut by_value = vec![None; 1 << 16];
        let mut by_color = HashMap::new();
        match format {
            LabelFormat::Binary => {
                by_value[0] = Some(0);
                by_value[foreground_value as usize] = Some(1);
            }
            LabelFormat::Index
            | LabelFormat::Palette
            | LabelFormat::Mvtec
            | LabelFormat::Ade20k
            | LabelFormat::MvtecAd
            | LabelFormat::Instances => {
                for c in &classes.classes {
                    by_value[c.id as usize] = Some(c.id);
                }
                by_value[classes.ignore_index as usize] = Some(classes.ignore_index);
            }
            LabelFormat::Rgb => {
                for c in &classes.classes {
                    if let Some(rgb) = c.color {
                        by_color.insert(rgb, c.id);
                    }
                }
            }
        }
        LabelDecoder {
            format,
            by_value,
            by_color,
            ignore_index: classes.ignore_index,
            unknown,
            limits: masks.limits,
            masks,
        }
    }

    /// Decodes a pair's label at its image's size: one file, merged masks, or all background.
    pub fn decode_source(
        &self,
        source: &LabelSource,
        width: u32,
        height: u32,
    ) -> DataResult<DecodedLabel> {
        let map = |ids| LabelMap { width, height, ids };
        match source {
            LabelSource::File(f) => self.decode(f).map_err(|m| Error::data(f, "decode", m)),
            LabelSource::Masks { classes, .. } => {
                let merged = self.masks.merge(classes, width, height)?;
                Ok(DecodedLabel {
                    map: map(merged.ids),
                    unknown_pixels: 0,
                    instances: Some(merged.instances),
                })
            }
            LabelSource::Background => Ok(DecodedLabel {
                map: map(vec![0; width as usize * height as usize]),
                unknown_pixels: 0,
                instances: Some(0),
            }),
        }
    }

    /// The id a raw value maps to, if declared.
    pub fn lookup(&self, v: RawValue) -> Option<u16> {
        match v {
            RawValue::Value(v) => self.by_value[v as usize],
            RawValue::Color(c) => self.by_color.get(&c).copied(),
        }
    }

    /// Class ids of a label file; 8-bit PNG rows are mapped as they are decoded, while still in
    /// cache, rather than gathered into the file's raw samples first.
    pub fn decode(&self, path: &Path) -> Result<DecodedLabel, String> {
        let mut rows = MappedRows {
            decoder: self,
            kind: None,
            ids: Vec::new(),
            unknown: BTreeMap::new(),
        };
        let raw = read_raw_label_rows(path, &self.limits, &mut rows)?;
        match rows.kind {
            Some(_) => self.mapped(&raw, rows.ids, rows.unknown),
            None => self.map_label(&raw),
        }
    }

    /// Class ids of a label read as stored (values or colours through the tables).
    pub fn map_label(&self, raw: &RawLabel) -> Result<DecodedLabel, String> {
        self.check_kind(raw)?;
        let mut unknown: BTreeMap<RawValue, u64> = BTreeMap::new();
        let mut ids = Vec::with_capacity(raw.width as usize * raw.height as usize);
        self.map_pixels(raw.pixels.as_ref(), &mut ids, &mut unknown);
        self.mapped(raw, ids, unknown)
    }

    /// The decoded label from its ids, or the error listing values the tables do not declare.
    fn mapped(
        &self,
        raw: &RawLabel,
        ids: Vec<u16>,
        unknown: BTreeMap<RawValue, u64>,
    ) -> Result<DecodedLabel, String> {
        let unknown_pixels: u64 = unknown.values().sum();
        if unknown_pixels > 0 && self.unknown == UnknownPolicy::Error {
            return Err(self.unknown_message(raw, &unknown));
        }
        Ok(DecodedLabel {
            map: LabelMap {
                width: raw.width,
                height: raw.height,
                ids,
            },
            unknown_pixels,
            instances: None,
        })
    }

    /// Refuses combinations that would silently lose classes, with a hint at the right format.
    fn check_kind(&self, raw: &RawLabel) -> Result<(), String> {
        let ok = matches!(
            (self.format, &raw.pixels),
            (
                LabelFormat::Rgb,
                RawPixels::Color { .. } | RawPixels::Indexed { .. }
            ) | (LabelFormat::Ade20k, RawPixels::Color { .. })
                | (
                    LabelFormat::Index
                        | LabelFormat::Palette
                        | LabelFormat::Binary
                        | LabelFormat::Mvtec,
                    RawPixels::Gray8(_) | RawPixels::Indexed { .. }
                )
                | (
                    LabelFormat::Index | LabelFormat::Binary | LabelFormat::Mvtec,
                    RawPixels::Gray16(_)
                )
        );
        if ok {
            return Ok(());
        }
        let hint = match raw.pixels {
            RawPixels::Color { .. } => {
                "; colour labels need labels.format = \"rgb\" and a colour table"
            }
            RawPixels::Gray16(_) => "; 16-bit labels need labels.format = \"index\"",
            _ => "; grey or palette labels need labels.format = \"index\" or \"palette\"",
        };
        Err(format!(
            "label is {} but labels.format is {:?}{hint}",
            raw.kind(),
            self.format
        ))
    }

    /// Appends the ids of `pixels` to `ids`, tallying undeclared values in `unknown`.
    fn map_pixels(
        &self,
        pixels: PixelsRef,
        ids: &mut Vec<u16>,
        unknown: &mut BTreeMap<RawValue, u64>,
    ) {
        let by_value = |v: u16, unknown: &mut BTreeMap<RawValue, u64>| {
            self.by_value[v as usize].unwrap_or_else(|| {
                *unknown.entry(RawValue::Value(v)).or_default() += 1;
                self.ignore_index
            })
        };
        match pixels {
            PixelsRef::Gray8(v) => ids.extend(v.iter().map(|&x| by_value(x as u16, unknown))),
            PixelsRef::Gray16(v) => ids.extend(v.iter().map(|&x| by_value(x, unknown))),
            // runs of one index are runs of one colour; no colour buffer per call (per row when
            // decoding row by row)
            PixelsRef::Indexed(indices, palette) if self.format == LabelFormat::Rgb => {
                let mut rest = indices;
                while let Some(&first) = rest.first() {
                    let run = rest.iter().position(|&i| i != first).unwrap_or(rest.len());
                    let color = palette.get(first as usize).copied().unwrap_or([0, 0, 0]);
                    ids.extend(std::iter::repeat_n(self.color_id(color, run, unknown), run));
                    rest = &rest[run..];
                }
            }
            PixelsRef::Indexed(indices, _) => {
                ids.extend(indices.iter().map(|&x| by_value(x as u16, unknown)))
            }
            PixelsRef::Color(data, channels) if self.format == LabelFormat::Ade20k => ids.extend(
                data.chunks_exact(channels)
                    .map(|p| by_value(ade20k_class(p), unknown)),
            ),
            // Constant channel counts, so each pixel is a fixed load and compare.
            PixelsRef::Color(data, 3) => self.map_colors(data.as_chunks::<3>().0, ids, unknown),
            PixelsRef::Color(data, 4) => self.map_colors(data.as_chunks::<4>().0, ids, unknown),
            PixelsRef::Color(data, channels) => {
                let rgb: Vec<[u8; 3]> = data
                    .chunks_exact(channels)
                    .map(|p| [p[0], p[1], p[2]])
                    .collect();
                self.map_colors(&rgb, ids, unknown)
            }
        }
    }

    /// Pixels of `N >= 3` channels, of which the first three are the colour (alpha ignored).
    fn map_colors<const N: usize>(
        &self,
        pixels: &[[u8; N]],
        ids: &mut Vec<u16>,
        unknown: &mut BTreeMap<RawValue, u64>,
    ) {
        let rgb = |p: &[u8; N]| [p[0], p[1], p[2]];
        // Labels come in runs of one colour: look each run's colour up once, fill the run.
        let mut rest = pixels;
        while let Some(first) = rest.first() {
            let color = rgb(first);
            // Whole blocks first: a fixed-size block of compares vectorizes, an early exit does not.
            let same = |p: &[u8; N]| rgb(p) == color;
            let blocks = rest.as_chunks::<16>().0;
            let whole = blocks
                .iter()
                .take_while(|b| b.iter().fold(true, |all, p| all & same(p)));
            let start = whole.count() * 16;
            let run = rest[start..]
                .iter()
                .position(|p| !same(p))
                .map_or(rest.len(), |i| start + i);
            ids.extend(std::iter::repeat_n(self.color_id(color, run, unknown), run));
            rest = &rest[run..];
        }
    }

    /// The id of a run of `run` pixels of `color`; an undeclared colour tallies the run in
    /// `unknown` and gives the ignore index.
    fn color_id(&self, color: [u8; 3], run: usize, unknown: &mut BTreeMap<RawValue, u64>) -> u16 {
        self.by_color.get(&color).copied().unwrap_or_else(|| {
            *unknown.entry(RawValue::Color(color)).or_default() += run as u64;
            self.ignore_index
        })
    }

    fn unknown_message(&self, raw: &RawLabel, unknown: &BTreeMap<RawValue, u64>) -> String {
        let mut worst: Vec<(&RawValue, &u64)> = unknown.iter().collect();
        worst.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let listed: Vec<String> = worst
            .iter()
            .take(5)
            .map(|(v, n)| format!("{v} ({n} pixels)"))
            .collect();
        let more = if worst.len() > 5 {
            format!(" and {} more", worst.len() - 5)
        } else {
            String::new()
        };
        let what = if self.format == LabelFormat::Rgb {
            "not in the colour table"
        } else {
            "not a declared class"
        };
        let depth_hint = if raw.bit_depth < 8 && self.format == LabelFormat::Binary {
            format!(
                "; this is a {}-bit PNG: set labels.foreground_value = 1",
                raw.bit_depth
            )
        } else {
            String::new()
        };
        format!(
            "{}{more} {what}; declare it, or set labels.unknown = \"ignore\" to map it to the ignore index{depth_hint}",
            listed.join(", ")
        )
    }

    /// The ids of a mask or background source at its image's size, counted, and its instance
    /// count (the values of a label file come from `histogram`).
    pub fn source_histogram(
        &self,
        source: &LabelSource,
        width: u32,
        height: u32,
    ) -> DataResult<(BTreeMap<RawValue, u64>, Option<u32>)> {
        let decoded = self.decode_source(source, width, height)?;
        Ok((
            value_histogram(decoded.map.ids.into_iter()),
            decoded.instances,
        ))
    }

    /// Raw values and their pixel counts, for `segprep check`.
    pub fn histogram(&self, path: &Path) -> Result<(RawLabel, BTreeMap<RawValue, u64>), String> {
        let raw = read_raw_label(path, &self.limits)?;
        let hist = match &raw.pixels {
            RawPixels::Gray8(v) => value_histogram(v.iter().map(|&x| x as u16)),
            RawPixels::Gray16(v) => value_histogram(v.iter().copied()),
            RawPixels::Indexed { indices, palette } if self.format == LabelFormat::Rgb => {
                color_histogram(
                    indices
                        .iter()
                        .map(|&i| palette.get(i as usize).copied().unwrap_or([0, 0, 0])),
                )
            }
            RawPixels::Indexed { indices, .. } => {
                value_histogram(indices.iter().map(|&x| x as u16))
            }
            RawPixels::Color { data, channels } if self.format == LabelFormat::Ade20k => {
                value_histogram(data.chunks_exact(*channels).map(ade20k_class))
            }
            RawPixels::Color { data, channels } => {
                color_histogram(data.chunks_exact(*channels).map(|p| [p[0], p[1], p[2]]))
            }
        };
        Ok((raw, hist))
    }
}

/// A label's rows mapped to ids as they are decoded: the label's kind once started.
struct MappedRows<'a> {
    decoder: &'a LabelDecoder,
    kind: Option<RawPixels>,
    ids: Vec<u16>,
    unknown: BTreeMap<RawValue, u64>,
}

impl LabelRows for MappedRows<'_> {
    fn start(&mut self, header: &RawLabel) -> bool {
        // a kind the format refuses is read whole, for map_label's error
        if self.decoder.check_kind(header).is_err() {
            return false;
        }
        self.ids = Vec::with_capacity(header.width as usize * header.height as usize);
        self.kind = Some(header.pixels.clone());
        true
    }

    fn row(&mut self, samples: &[u8]) {
        if let Some(kind) = &self.kind {
            let pixels = kind.with_samples(samples);
            self.decoder
                .map_pixels(pixels, &mut self.ids, &mut self.unknown);
        }
    }
}

/// ADE20K's full-format class index: R / 10 * 256 + G (B holds the instance).
fn ade20k_class(p: &[u8]) -> u16 {
    (p[0] / 10) as u16 * 256 + p[1] as u16
}

fn value_histogram(values: impl Iterator<Item = u16>) -> BTreeMap<RawValue, u64> {
    let mut dense = vec![0u64; 1 << 16];
    values.for_each(|v| dense[v as usize] += 1);
    dense
        .into_iter()
        .enumerate()
        .filter(|(_, n)| *n > 0)
        .map(|(v, n)| (RawValue::Value(v as u16), n))
        .collect()
}

fn color_histogram(colors: impl Iterator<Item = [u8; 3]>) -> BTreeMap<RawValue, u64> {
    let mut counts: HashMap<[u8; 3], u64> = HashMap::new();
    let mut run: Option<([u8; 3], u64)> = None;
    for c in colors {
        match &mut run {
            Some((rc, n)) if *rc == c => *n += 1,
            _ => {
                if let Some((rc, n)) = run.take() {
                    *counts.entry(rc).or_default() += n;
                }
                run = Some((c, 1));
            }
        }
    }
    if let Some((rc, n)) = run {
        *counts.entry(rc).or_default() += n;
    }
    counts
        .into_iter()
        .map(|(c, n)| (RawValue::Color(c), n))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelFormat {
    /// Grey 8- or 16-bit images whose values are class ids.
    Index,
    /// Palette PNGs read as their raw indices (never expanded to colours).
    Palette,
    /// RGB colour maps with a colour table.
    Rgb,
    /// 0 / foreground masks: background = 0, foreground = 1.
    Binary,
    /// An MVTec HALCON / Deep Learning Tool dataset dictionary exported to JSON (`dict_to_json`).
    Mvtec,
    /// An MVTec AD category folder: `{train,test}/<type>/NNN.png`, `ground_truth/<type>/NNN_mask.png`.
    MvtecAd,
    /// One binary mask per instance: `<id>/images/<id>.png` and `<id>/<mask folder>/*.png` (DSB 2018).
    Instances,
    /// ADE20K full-format `_seg.png`: class = R / 10 * 256 + G (the instance is in B).
    Ade20k,
}

impl LabelFormat {
    /// Formats whose source is the dataset itself rather than image and label folders.
    pub fn is_dataset(self) -> bool {
        matches!(
            self,
            LabelFormat::Mvtec | LabelFormat::MvtecAd | LabelFormat::Instances
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownPolicy {
    /// An undeclared value or colour stops the run, naming the file, the value and its pixel count.
    #[default]
    Error,
    /// Undeclared values become the ignore index and are counted.
    Ignore,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classes::Class;
    use crate::decode::masks::OverlapPolicy;

    const RED: [u8; 3] = [255, 0, 0];
    const GREEN: [u8; 3] = [0, 255, 0];
    const STRANGER: [u8; 3] = [9, 9, 9];

    fn rgb_decoder() -> LabelDecoder {
        let class = |id, name: &str, color| Class {
            id,
            name: name.into(),
            color: Some(color),
        };
        let classes = ClassSet::new(vec![class(0, "red", RED), class(1, "green", GREEN)], 255);
        let masks = MaskMerge {
            foreground_value: 255,
            overlap: OverlapPolicy::Error,
            ignore_index: 255,
            limits: DecodeLimits::default(),
        };
        LabelDecoder::new(
            LabelFormat::Rgb,
            &classes.unwrap(),
            UnknownPolicy::Ignore,
            masks,
        )
    }

    /// Runs shorter and longer than the 16-pixel blocks, starting anywhere in a block, and an
    /// unknown colour in two separate runs.
    fn colors() -> Vec<[u8; 3]> {
        let runs = [
            (RED, 3),
            (STRANGER, 17),
            (GREEN, 40),
            (RED, 1),
            (STRANGER, 5),
            (GREEN, 16),
        ];
        runs.iter()
            .flat_map(|&(c, n)| std::iter::repeat_n(c, n))
            .collect()
    }

    /// What every pixel maps to, looked up one at a time, and the unknown tally.
    fn reference(colors: &[[u8; 3]]) -> (Vec<u16>, u64) {
        let id = |c| {
            [(RED, 0), (GREEN, 1)]
                .iter()
                .find(|(k, _)| *k == c)
                .map(|p| p.1)
        };
        let ids = colors.iter().map(|&c| id(c).unwrap_or(255)).collect();
        (
            ids,
            colors.iter().filter(|&&c| id(c).is_none()).count() as u64,
        )
    }

    fn raw(pixels: RawPixels, n: usize) -> RawLabel {
        RawLabel {
            width: n as u32,
            height: 1,
            pixels,
            bit_depth: 8,
        }
    }

    #[test]
    fn files_mapped_row_by_row_match_pixel_by_pixel_lookup() {
        use crate::decode::raw_label::test_png;
        use png::ColorType as C;
        // 13 x 7: runs cross the row ends
        let (w, h) = (13u32, 7u32);
        let colors: Vec<[u8; 3]> = colors()
            .into_iter()
            .cycle()
            .take((w * h) as usize)
            .collect();
        let (want_ids, want_unknown) = reference(&colors);
        let palette = [RED, GREEN, STRANGER];
        let indices: Vec<u8> = colors
            .iter()
            .map(|c| palette.iter().position(|p| p == c).unwrap() as u8)
            .collect();
        let rgba: Vec<u8> = colors.iter().flat_map(|c| [c[0], c[1], c[2], 7]).collect();
        let dir = tempfile::tempdir().unwrap();
        let decoder = rgb_decoder();
        for (name, color, data) in [
            ("rgb", C::Rgb, colors.concat()),
            ("rgba", C::Rgba, rgba),
            ("palette", C::Indexed, indices),
        ] {
            let path = dir.path().join(format!("{name}.png"));
            test_png::write(&path, (w, h), (color, &palette), &data);
            let label = decoder.decode(&path).unwrap();
            assert_eq!(label.map.ids, want_ids, "{name}");
            assert_eq!(label.unknown_pixels, want_unknown, "{name}");
            assert_eq!((label.map.width, label.map.height), (w, h), "{name}");
        }
        // grey values through an index decoder: 0 and 1 declared, 255 the ignore index, 9 not
        let grey: Vec<u8> = (0..w * h)
            .map(|i| [0, 1, 9, 255][(i / 5 % 4) as usize])
            .collect();
        let path = dir.path().join("grey.png");
        test_png::write(&path, (w, h), (C::Grayscale, &[]), &grey);
        let mut index = rgb_decoder();
        index.format = LabelFormat::Index;
        index.by_value = vec![None; 1 << 16];
        for v in [0u16, 1, 255] {
            index.by_value[v as usize] = Some(v);
        }
        let label = index.decode(&path).unwrap();
        let want: Vec<u16> = grey
            .iter()
            .map(|&v| if v == 9 { 255 } else { v as u16 })
            .collect();
        assert_eq!(label.map.ids, want);
        assert_eq!(
            label.unknown_pixels,
            grey.iter().filter(|&&v| v == 9).count() as u64
        );
        // a grey file under the colour format is refused, as when read whole
        let error = decoder.decode(&path).unwrap_err();
        assert!(error.contains("labels.format"), "{error}");
    }

    #[test]
    fn colour_runs_map_like_pixel_by_pixel_lookup() {
        let colors = colors();
        let (want_ids, want_unknown) = reference(&colors);
        let n = colors.len();
        let rgb = colors.concat();
        let rgba: Vec<u8> = colors.iter().flat_map(|c| [c[0], c[1], c[2], 7]).collect();
        let palette = vec![RED, GREEN, STRANGER];
        let indices = colors
            .iter()
            .map(|c| palette.iter().position(|p| p == c).unwrap() as u8)
            .collect();
        let inputs = [
            RawPixels::Color {
                data: rgb,
                channels: 3,
            },
            RawPixels::Color {
                data: rgba,
                channels: 4,
            },
            RawPixels::Indexed { indices, palette },
        ];
        let decoder = rgb_decoder();
        for pixels in inputs {
            let kind = format!("{pixels:?}").chars().take(12).collect::<String>();
            let label = decoder.map_label(&raw(pixels, n)).unwrap();
            assert_eq!(label.map.ids, want_ids, "{kind}");
            assert_eq!(label.unknown_pixels, want_unknown, "{kind}");
        }
    }
}
