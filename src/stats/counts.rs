//! Per-split, per-class counts: pixels, images containing the class, and the labelled pixels of those
//! images. Ignore pixels, padding (pixels invented by a geometric stage holding the ignore index) and
//! unknown values mapped to ignore are counted apart. All counts are integers, so merging is exact and
//! independent of order.
use serde::Serialize;
use std::collections::BTreeMap;

use crate::classes::ClassSet;
use crate::sample::Sample;

/// Counts of one sample, computed in the worker that produced it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleCounts {
    /// Pixels per class id, dense over 0..=max class id.
    pub class_pixels: Vec<u64>,
    pub ignore_pixels: u64,
    pub pad_pixels: u64,
    pub unknown_pixels: u64,
    /// Instance masks merged into the label, for mask sources.
    pub instances: Option<u32>,
}

impl SampleCounts {
    pub fn of(s: &Sample, classes: &ClassSet) -> Result<Self, String> {
        let max_class = classes.classes.iter().map(|c| c.id).max().unwrap_or(0) as usize;
        let ignore = classes.ignore_index;
        let ids = &s.label.ids;
        let (histogram, ignored) = class_histogram(ids, max_class, ignore)?;
        let pad_pixels = s.padding.as_ref().map_or(0, |mask| {
            let padded = ids.iter().zip(mask).filter(|&(&id, &p)| p && id == ignore);
            padded.count() as u64
        });
        let mut c = SampleCounts {
            class_pixels: histogram,
            pad_pixels,
            ignore_pixels: ignored - pad_pixels,
            unknown_pixels: s.unknown_pixels,
            instances: s.instances,
        };
        // unknown pixels became ignore; keep them out of the genuine ignore count
        c.ignore_pixels -= c.unknown_pixels.min(c.ignore_pixels);
        Ok(c)
    }

    /// Counts from a histogram of ids (the ignore index included) without the pixels themselves.
    pub fn from_histogram(
        histogram: &BTreeMap<u16, u64>,
        classes: &ClassSet,
        unknown_pixels: u64,
        instances: Option<u32>,
    ) -> Result<Self, String> {
        let max_class = classes.classes.iter().map(|c| c.id).max().unwrap_or(0) as usize;
        let mut c = SampleCounts {
            class_pixels: vec![0; max_class + 1],
            unknown_pixels,
            instances,
            ..Default::default()
        };
        for (&id, &n) in histogram {
            if id == classes.ignore_index {
                c.ignore_pixels += n;
            } else if classes.contains(id) {
                c.class_pixels[id as usize] += n;
            } else {
                return Err(format!("label value {id} is not a declared class"));
            }
        }
        Ok(c)
    }

    /// Classes with at least one pixel.
    pub fn classes_present(&self) -> usize {
        self.class_pixels.iter().filter(|n| **n > 0).count()
    }

    pub fn labelled(&self) -> u64 {
        self.class_pixels.iter().sum()
    }
}

/// Pixels per class id over 0..=max_class, and the ignore pixels apart. One pass; with the
/// ignore index near the classes, one dense slot per id up to it (no branch per pixel); with a far
/// one (255 with a few classes is near; 65535 is far), the ignore pixels take the slot after the
/// classes, so a sample does not zero and scan a 512 KiB histogram for one ignore slot.
fn class_histogram(ids: &[u16], max_class: usize, ignore: u16) -> Result<(Vec<u64>, u64), String> {
    let undeclared = |id: u16| format!("label value {id} is not a declared class");
    let ignore_slot = ignore as usize;
    if ignore_slot <= max_class + 1024 {
        let mut histogram =
            dense_histogram(ids, (max_class + 1).max(ignore_slot + 1)).map_err(undeclared)?;
        let ignored = std::mem::take(&mut histogram[ignore_slot]);
        if let Some(id) = (max_class + 1..histogram.len()).find(|&id| histogram[id] > 0) {
            return Err(undeclared(id as u16));
        }
        histogram.truncate(max_class + 1);
        return Ok((histogram, ignored));
    }
    let mut histogram = vec![0u64; max_class + 2];
    for &id in ids {
        let slot = if id == ignore {
            max_class + 1
        } else {
            id as usize
        };
        match histogram.get_mut(slot) {
            Some(n) if slot <= max_class || id == ignore => *n += 1,
            _ => return Err(undeclared(id)),
        }
    }
    let ignored = histogram.pop().unwrap_or(0);
    Ok((histogram, ignored))
}

/// Pixels per id over 0..slots, or the first id at or past `slots`. Labels come in long runs of
/// one id: a block of 16 equal ids is one addition. Other blocks go pixel by pixel into four
/// tables, one per position mod 4, summed at the end, so that a pixel does not wait for the
/// previous pixel's increment of the same slot.
fn dense_histogram(ids: &[u16], slots: usize) -> Result<Vec<u64>, u16> {
    let mut tables = [
        vec![0u64; slots],
        vec![0u64; slots],
        vec![0u64; slots],
        vec![0u64; slots],
    ];
    let (blocks, rest) = ids.as_chunks::<16>();
    for block in blocks {
        let first = block[0];
        // a fold without early exit, so the comparison runs in vector lanes
        if block.iter().fold(0, |differ, &id| differ | (id ^ first)) == 0 {
            *tables[0].get_mut(first as usize).ok_or(first)? += 16;
        } else {
            count_by_position(block, &mut tables)?;
        }
    }
    count_by_position(rest, &mut tables)?;
    let [mut sum, b, c, d] = tables;
    for (i, n) in sum.iter_mut().enumerate() {
        *n += b[i] + c[i] + d[i];
    }
    Ok(sum)
}

/// Counts `ids` into the table of each one's position mod 4; the first id past the tables fails.
fn count_by_position(ids: &[u16], tables: &mut [Vec<u64>; 4]) -> Result<(), u16> {
    let (quads, rest) = ids.as_chunks::<4>();
    for quad in quads {
        for (table, &id) in tables.iter_mut().zip(quad) {
            *table.get_mut(id as usize).ok_or(id)? += 1;
        }
    }
    for &id in rest {
        *tables[0].get_mut(id as usize).ok_or(id)? += 1;
    }
    Ok(())
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ClassCount {
    pub id: u16,
    pub name: String,
    pub pixels: u64,
    /// Images in which the class occurs at least once.
    pub images: u64,
    /// Labelled (non-ignore, non-pad) pixels of the images in which the class occurs.
    pub image_pixels: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SplitCounts {
    pub samples: u64,
    /// Every label pixel: labelled + ignore + pad + unknown.
    pub pixels: u64,
    pub labelled_pixels: u64,
    pub ignore_pixels: u64,
    pub pad_pixels: u64,
    /// Undeclared values mapped to the ignore index (`unknown = "ignore"`).
    pub unknown_pixels: u64,
    /// For mask sources (per-instance masks, MVTec AD): instances per image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<InstanceCounts>,
    pub classes: Vec<ClassCount>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct InstanceCounts {
    /// Non-empty masks over all images.
    pub total: u64,
    /// Images with at least one instance.
    pub images_with_instances: u64,
    pub max_per_image: u64,
}

impl InstanceCounts {
    fn add(&mut self, other: &InstanceCounts) {
        self.total += other.total;
        self.images_with_instances += other.images_with_instances;
        self.max_per_image = self.max_per_image.max(other.max_per_image);
    }
}

impl SplitCounts {
    pub fn new(classes: &ClassSet) -> Self {
        SplitCounts {
            classes: classes
                .classes
                .iter()
                .map(|c| ClassCount {
                    id: c.id,
                    name: c.name.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    pub fn add(&mut self, s: &SampleCounts) {
        let labelled = s.labelled();
        self.samples += 1;
        self.labelled_pixels += labelled;
        self.ignore_pixels += s.ignore_pixels;
        self.pad_pixels += s.pad_pixels;
        self.unknown_pixels += s.unknown_pixels;
        self.pixels += labelled + s.ignore_pixels + s.pad_pixels + s.unknown_pixels;
        if let Some(n) = s.instances.map(u64::from) {
            self.instances
                .get_or_insert_with(Default::default)
                .add(&InstanceCounts {
                    total: n,
                    images_with_instances: u64::from(n > 0),
                    max_per_image: n,
                });
        }
        for c in &mut self.classes {
            let n = s.class_pixels.get(c.id as usize).copied().unwrap_or(0);
            if n > 0 {
                c.pixels += n;
                c.images += 1;
                c.image_pixels += labelled;
            }
        }
    }

    pub fn merge(&mut self, other: &SplitCounts) {
        self.samples += other.samples;
        self.pixels += other.pixels;
        self.labelled_pixels += other.labelled_pixels;
        self.ignore_pixels += other.ignore_pixels;
        self.pad_pixels += other.pad_pixels;
        self.unknown_pixels += other.unknown_pixels;
        if let Some(i) = &other.instances {
            self.instances.get_or_insert_with(Default::default).add(i);
        }
        for (a, b) in self.classes.iter_mut().zip(&other.classes) {
            a.pixels += b.pixels;
            a.images += b.images;
            a.image_pixels += b.image_pixels;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{class_histogram, dense_histogram};

    #[test]
    fn near_and_far_ignore_indices_count_alike() {
        for ignore in [3u16, 255, 1500, 65535] {
            let ids = [0, 1, 2, 2, ignore, 1, ignore, 0, 2];
            let (histogram, ignored) = class_histogram(&ids, 2, ignore).unwrap();
            assert_eq!((histogram, ignored), (vec![2, 2, 3], 2), "ignore {ignore}");
            for undeclared in [3u16, 254, 300, 65534] {
                if undeclared == ignore {
                    continue;
                }
                let e = class_histogram(&[0, undeclared, ignore], 2, ignore).unwrap_err();
                assert!(e.contains(&format!("value {undeclared} ")), "{e}");
            }
        }
    }

    #[test]
    fn dense_histogram_counts_every_position_and_stops_at_an_undeclared_id() {
        // lengths around multiples of four and of sixteen, so every table, whole blocks of one
        // id, mixed blocks and the remainders are used; ids mixed, or in runs of 5 and of 40
        for len in 0..70usize {
            for run in [1, 5, 40] {
                let ids: Vec<u16> = (0..len).map(|i| (i / run * 7 % 5) as u16).collect();
                let mut want = vec![0u64; 5];
                ids.iter().for_each(|&id| want[id as usize] += 1);
                assert_eq!(
                    dense_histogram(&ids, 5),
                    Ok(want),
                    "{len} ids, runs of {run}"
                );
                for at in 0..len {
                    let mut bad = ids.clone();
                    bad[at] = 9;
                    assert_eq!(dense_histogram(&bad, 5), Err(9), "{len} ids, 9 at {at}");
                    // a block of one undeclared id, and the first undeclared id is the one named
                    bad[at..(at + 16).min(len)].fill(11);
                    bad[len - 1] = 12;
                    let first = if at == len - 1 { 12 } else { 11 };
                    assert_eq!(
                        dense_histogram(&bad, 5),
                        Err(first),
                        "{len} ids, 11 from {at}"
                    );
                }
            }
        }
    }
}
