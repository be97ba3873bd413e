//! `segprep restore`: predictions on applied images taken back to each image's original pixels by
//! undoing the recorded geometry in reverse (labels nearest, probabilities bilinear), written as
//! class-index PNGs and colour PNGs.
use rayon::prelude::*;
use std::path::{Path, PathBuf};

use super::predictions::{self, Prediction, Stacked};
use super::replay::Replay;
use super::sidecar::{self, SampleRecord};
use crate::classes::display_colours;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::sample::{Image, Pixels};
use crate::stages::geometry::{crop, place, resize_nearest, GeometryStep};
use crate::stages::resize::{resize_image, Filter};
use crate::storage::atomic;

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub predictions: PathBuf,
    pub out: PathBuf,
    /// The apply folder (its `samples.jsonl`); default: the predictions folder.
    pub applied: Option<PathBuf>,
    /// Also write the restored probabilities as `<key>_prob.npy`.
    pub probabilities: bool,
    /// Leave out images without a prediction instead of stopping.
    pub skip_missing: bool,
}

pub struct RestoreSummary {
    pub restored: usize,
    pub missing: Vec<String>,
}

/// A prediction on its way back: class ids or probabilities, and which pixels are known (pixels a
/// `fill` resize cropped away have no prediction and become the ignore index).
struct Restoring {
    size: [u32; 2],
    values: Prediction,
    known: Vec<bool>,
}

pub fn restore(
    replay: &Replay,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreSummary> {
    let applied = opts.applied.as_ref().unwrap_or(&opts.predictions);
    let (meta, records) = sidecar::read(applied)?;
    if meta.pipeline_hash != replay.pipeline_hash {
        return Err(Error::data(
            applied.join(sidecar::APPLY_FILE),
            "restore",
            format!(
                "was applied with another build ({}); restore with that build",
                meta.build.display()
            ),
        ));
    }
    if same_folder(&opts.predictions, applied) && meta.format == "npy" {
        return Err(Error::Usage(
            "the predictions folder holds the applied images (<key>.npy); write predictions to a folder of their own and pass --applied".into(),
        ));
    }
    let mut summary = RestoreSummary {
        restored: 0,
        missing: Vec::new(),
    };
    progress.start("restoring", records.len() as u64);
    for group in records.chunk_by(|a, b| a.output == b.output) {
        let stacked = Stacked::new(&opts.predictions, &group[0].output);
        let results: Vec<Result<bool>> = group
            .par_iter()
            .map(|record| {
                let r = restore_one(replay, opts, record, &stacked);
                progress.advance(1);
                r
            })
            .collect();
        for (r, record) in results.into_iter().zip(group) {
            match r? {
                true => summary.restored += 1,
                false => summary.missing.push(record.key.clone()),
            }
        }
    }
    progress.finish();
    Ok(summary)
}

fn same_folder(a: &Path, b: &Path) -> bool {
    std::fs::canonicalize(a).ok() == std::fs::canonicalize(b).ok()
}

/// Restores one image's prediction; `false` when it has none and `skip_missing` is set.
fn restore_one(
    replay: &Replay,
    opts: &RestoreOptions,
    record: &SampleRecord,
    stacked: &Stacked,
) -> Result<bool> {
    let Some((file, prediction)) = predictions::find(&opts.predictions, record, stacked)? else {
        if opts.skip_missing {
            return Ok(false);
        }
        return Err(Error::data(
            opts.predictions.join(&record.key),
            "restore",
            format!(
                "no prediction for `{}`: expected {0}.png, {0}.npy, or row {} of {}; pass --skip-missing to leave it out",
                record.key,
                record.index,
                predictions::stacked_name(&record.output)
            ),
        ));
    };
    let fail = |m: String| Error::data(&file, "restore", m);
    let mut r = Restoring {
        size: record.size,
        known: vec![true; record.size[0] as usize * record.size[1] as usize],
        values: prediction,
    };
    for step in record.geometry.iter().rev() {
        r = undo(r, step, replay.ignore_index).map_err(fail)?;
    }
    if let (true, Prediction::Probabilities(k, v)) = (opts.probabilities, &r.values) {
        let path = opts.out.join(format!("{}_prob.npy", record.key));
        let [w, h] = r.size;
        write_probabilities(&path, [h as u64, w as u64, *k as u64], v)?;
    }
    let ids = final_ids(r, replay).map_err(fail)?;
    write_outputs(replay, opts, record, &ids)?;
    Ok(true)
}

/// Undoes one geometry step.
fn undo(r: Restoring, step: &GeometryStep, ignore: u16) -> Result<Restoring, String> {
    let [w, h] = r.size;
    let (size, values, known) = match *step {
        GeometryStep::Pad { from, at, .. } => {
            let window = (at[0], at[1], from[0], from[1]);
            let values = match r.values {
                Prediction::Labels(v) => Prediction::Labels(crop(&v, w, 1, window)),
                Prediction::Probabilities(k, v) => {
                    Prediction::Probabilities(k, crop(&v, w, k, window))
                }
            };
            (from, values, crop(&r.known, w, 1, window))
        }
        GeometryStep::Crop { from, at, .. } => {
            let (canvas, at) = ((from[0], from[1]), (at[0], at[1]));
            let values = match r.values {
                Prediction::Labels(v) => {
                    Prediction::Labels(place(&v, w, h, 1, canvas, at, &[ignore]))
                }
                Prediction::Probabilities(k, v) => {
                    Prediction::Probabilities(k, place(&v, w, h, k, canvas, at, &vec![0.0; k]))
                }
            };
            (from, values, place(&r.known, w, h, 1, canvas, at, &[false]))
        }
        GeometryStep::Resize { from, .. } => {
            let (fw, fh) = (from[0], from[1]);
            let values = match r.values {
                Prediction::Labels(v) => Prediction::Labels(resize_nearest(&v, w, h, 1, fw, fh)),
                Prediction::Probabilities(k, v) => {
                    let img = Image {
                        width: w,
                        height: h,
                        bands: k,
                        pixels: Pixels::F32(v),
                    };
                    match resize_image(&img, fw, fh, Filter::Bilinear)?.pixels {
                        Pixels::F32(v) => Prediction::Probabilities(k, v),
                        _ => unreachable!("f32 stays f32"),
                    }
                }
            };
            (from, values, resize_nearest(&r.known, w, h, 1, fw, fh))
        }
    };
    Ok(Restoring {
        size,
        values,
        known,
    })
}

/// Class ids at the original size: probabilities by argmax (channel k is the k-th class of the
/// build), unknown pixels the ignore index; every id checked against the build's classes.
fn final_ids(r: Restoring, replay: &Replay) -> Result<Vec<u16>, String> {
    let ignore = replay.ignore_index;
    let mut ids = match r.values {
        Prediction::Labels(v) => v,
        Prediction::Probabilities(k, v) => {
            if k != replay.classes.len() {
                return Err(format!(
                    "holds {k} class probabilities, but the build has {} classes",
                    replay.classes.len()
                ));
            }
            v.chunks_exact(k)
                .map(|p| replay.classes[argmax(p)].id)
                .collect()
        }
    };
    for (id, known) in ids.iter_mut().zip(&r.known) {
        if !known {
            *id = ignore;
        }
    }
    if let Some(bad) = ids
        .iter()
        .find(|&&id| id != ignore && !replay.classes.iter().any(|c| c.id == id))
    {
        return Err(format!(
            "holds {bad}, which is neither a class id of the build ({}) nor the ignore index {ignore}",
            class_ids(replay)
        ));
    }
    Ok(ids)
}

/// The first largest value's position (NaN never wins).
fn argmax(p: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in p.iter().enumerate() {
        if x > p[best] || p[best].is_nan() {
            best = i;
        }
    }
    best
}

fn class_ids(replay: &Replay) -> String {
    let ids: Vec<String> = replay.classes.iter().map(|c| c.id.to_string()).collect();
    ids.join(", ")
}

/// `<key>.png` (class ids, 8-bit when they fit) and `<key>_color.png` (the class colours).
fn write_outputs(
    replay: &Replay,
    opts: &RestoreOptions,
    r: &SampleRecord,
    ids: &[u16],
) -> Result<()> {
    let [w, h] = r.original_size;
    let index_png =
        grey_png(w, h, ids, replay).map_err(|m| Error::data(&opts.out, "restore", m))?;
    atomic::write_bytes(&opts.out.join(format!("{}.png", r.key)), &index_png)?;
    let colours = display_colours(&replay.classes);
    let rgb: Vec<u8> = ids
        .iter()
        .flat_map(|id| {
            colours
                .iter()
                .find(|(c, _)| c == id)
                .map_or([0, 0, 0], |(_, rgb)| *rgb)
        })
        .collect();
    let colour_png = encode_png(image::RgbImage::from_raw(w, h, rgb))
        .map_err(|m| Error::data(&opts.out, "restore", m))?;
    atomic::write_bytes(&opts.out.join(format!("{}_color.png", r.key)), &colour_png)
}

/// 8-bit when every class id and the ignore index fit, else 16-bit: one depth per build.
fn grey_png(w: u32, h: u32, ids: &[u16], replay: &Replay) -> Result<Vec<u8>, String> {
    let largest = replay.classes.iter().map(|c| c.id).max().unwrap_or(0);
    if largest.max(replay.ignore_index) <= u8::MAX as u16 {
        let bytes = ids.iter().map(|&i| i as u8).collect();
        encode_png(image::GrayImage::from_raw(w, h, bytes))
    } else {
        encode_png(image::ImageBuffer::<image::Luma<u16>, _>::from_raw(
            w,
            h,
            ids.to_vec(),
        ))
    }
}

fn encode_png<P, C>(img: Option<image::ImageBuffer<P, C>>) -> Result<Vec<u8>, String>
where
    P: image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    let img = img.ok_or("restored size does not match its pixels")?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| format!("cannot encode PNG: {e}"))?;
    Ok(out.into_inner())
}

/// (H,W,K) float32 probabilities at the original size.
fn write_probabilities(path: &Path, shape: [u64; 3], values: &[f32]) -> Result<()> {
    atomic::write_atomically(path, |file| {
        let mut w = std::io::BufWriter::new(file);
        crate::sink::npy::write_header(&mut w, "<f4", &shape)?;
        std::io::Write::write_all(&mut w, bytemuck::cast_slice(values))?;
        w.into_inner().map_err(|e| e.into_error())
    })?;
    Ok(())
}
