//! `segprep apply`: new images through a build's deterministic image stages, exactly as its
//! training samples were made, written as NPZ or NPY with a geometry sidecar.
use rayon::prelude::*;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::replay::Replay;
use super::sidecar::{ApplyMeta, SampleRecord, APPLY_FILE, APPLY_MARKER as MARKER, SAMPLES_FILE};
use crate::error::{Error, Result};
use crate::pipeline::schema::OnError;
use crate::process::prepare_image;
use crate::progress::Progress;
use crate::sample::{Image, LabelSource, PairRef};
use crate::sink::npy;
use crate::sink::zip_file::{finish_zip, start_entry, zip_file};
use crate::sink::Compression;
use crate::source::{bands, folder, Discovery};
use crate::storage::atomic::{self, AtomicFile};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ApplyFormat {
    /// Stacked `apply-NNNNN.npz` files: `image` (N,H,W,C), `key` (N,), and `image_mean`/`image_std`.
    Npz,
    /// One `<key>.npy` (H,W,C) per image.
    Npy,
}

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The image folder, or one folder per band as the build had.
    pub images: Vec<PathBuf>,
    pub out: PathBuf,
    pub format: ApplyFormat,
    /// Images per NPZ file (and per parallel batch).
    pub batch: usize,
}

/// An image prepared for a model, and how it got its size.
struct Prepared {
    image: Image,
    record: SampleRecord,
}

pub struct ApplySummary {
    pub images: usize,
    pub files: usize,
    pub skipped: Vec<(String, String)>,
}

/// Runs the image stages of `replay` on every image below `opts.images`. The arrays and
/// `samples.jsonl` are written into a staging folder inside `opts.out` and moved in only when every
/// image is done, so a failed run leaves an earlier apply output in the folder as it was.
pub fn apply(
    replay: &Replay,
    opts: &ApplyOptions,
    progress: &dyn Progress,
) -> Result<ApplySummary> {
    let pairs = discover(replay, &opts.images)?;
    let staging = claim_output(&opts.out)?;
    let staged = ApplyOptions {
        out: staging.clone(),
        ..opts.clone()
    };
    let summary = match write_outputs(replay, &staged, &pairs, progress) {
        Ok(summary) => summary,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(left_as_it_was(e, &opts.out));
        }
    };
    publish(&staging, &opts.out)?;
    let meta = ApplyMeta {
        segprep_version: env!("CARGO_PKG_VERSION").into(),
        build: replay.build_dir.clone(),
        pipeline_hash: replay.pipeline_hash.clone(),
        format: format!("{:?}", opts.format).to_lowercase(),
        images: summary.images,
        files: summary.files,
        skipped: summary.skipped.clone(),
    };
    let text = serde_json::to_string_pretty(&meta).expect("meta serializes") + "\n";
    atomic::write_text(&opts.out.join(APPLY_FILE), &text)?;
    Ok(summary)
}

/// Prepares every image and writes the arrays and `samples.jsonl` into `opts.out`.
fn write_outputs(
    replay: &Replay,
    opts: &ApplyOptions,
    pairs: &[PairRef],
    progress: &dyn Progress,
) -> Result<ApplySummary> {
    let (samples_file, file) = AtomicFile::create(&opts.out.join(SAMPLES_FILE))?;
    let mut lines = BufWriter::new(file);
    let mut summary = ApplySummary {
        images: 0,
        files: 0,
        skipped: Vec::new(),
    };
    progress.start("applying", pairs.len() as u64);
    for chunk in pairs.chunks(opts.batch.max(1)) {
        let results: Vec<Result<Prepared>> = chunk
            .par_iter()
            .map(|pair| {
                let r = prepare(replay, pair);
                progress.advance(1);
                r
            })
            .collect();
        let mut batch = Vec::new();
        for (r, pair) in results.into_iter().zip(chunk) {
            match r {
                Ok(p) => batch.push(p),
                Err(e) if replay.config.run.on_error == OnError::Skip => {
                    summary.skipped.push((pair.key.clone(), e.to_string()))
                }
                Err(e) => return Err(e),
            }
        }
        summary.files += write_batch(&mut batch, opts, summary.files)?;
        summary.images += batch.len();
        for p in &batch {
            let line = serde_json::to_string(&p.record).expect("record serializes");
            writeln!(lines, "{line}").map_err(|e| Error::io(samples_file.path(), "write", e))?;
        }
    }
    progress.finish();
    let file = lines
        .into_inner()
        .map_err(|e| Error::io(samples_file.path(), "write", e.into_error()))?;
    samples_file.commit(file)?;
    Ok(summary)
}

/// The error of a failed run, saying that the output folder was not touched.
fn left_as_it_was(e: Error, out: &Path) -> Error {
    let note = match out.join(APPLY_FILE).exists() {
        true => "the earlier apply output there is left as it was",
        false => "nothing was written there",
    };
    match e {
        Error::Data {
            file,
            stage,
            message,
        } => Error::Data {
            file,
            stage,
            message: format!("{message} (applying into {}: {note})", out.display()),
        },
        other => other,
    }
}

/// Replaces the earlier output in `out` by the staged one: the old `apply.json` goes first (the
/// folder is not a finished output until the new one is written), then the arrays the old
/// `samples.jsonl` names, then the staged files move in.
fn publish(staging: &Path, out: &Path) -> Result<()> {
    let fail = |path: &Path, e: std::io::Error| Error::io(path, "apply", e);
    atomic::remove_if_present(&out.join(APPLY_FILE)).map_err(|e| fail(&out.join(APPLY_FILE), e))?;
    for old in earlier_outputs(out) {
        atomic::remove_if_present(&out.join(&old)).map_err(|e| fail(&out.join(&old), e))?;
    }
    let staged = std::fs::read_dir(staging).map_err(|e| fail(staging, e))?;
    for entry in staged {
        let entry = entry.map_err(|e| fail(staging, e))?;
        let to = out.join(entry.file_name());
        std::fs::rename(entry.path(), &to).map_err(|e| fail(&to, e))?;
    }
    std::fs::remove_dir(staging).map_err(|e| fail(staging, e))
}

/// The array files and `samples.jsonl` of the earlier output in `out`, as its records name them.
fn earlier_outputs(out: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(out.join(SAMPLES_FILE)).unwrap_or_default();
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<SampleRecord>(l).ok())
        .map(|r| r.output)
        .filter(|name| Path::new(name).components().count() == 1)
        .collect();
    names.sort();
    names.dedup();
    names.push(SAMPLES_FILE.to_string());
    names
}

/// Images found as the build found them: key = relative path minus extension and `image_suffix`,
/// band files from the further folders by the same key.
fn discover(replay: &Replay, images: &[PathBuf]) -> Result<Vec<PairRef>> {
    let input = &replay.config.input;
    let want = input.images.all().len();
    let Some((first, rest)) = images.split_first() else {
        return Err(Error::Usage("give the images with --images DIR".into()));
    };
    if images.len() != want {
        return Err(Error::Usage(format!(
            "the build stacked {want} band folder(s); give as many --images folders, in the same order (got {})",
            images.len()
        )));
    }
    if !first.is_dir() {
        return Err(Error::data(first, "apply", "folder not found"));
    }
    let mut d = Discovery::default();
    for f in folder::walk_with(first, input.image_extensions.as_deref())? {
        match folder::key_of(&f, first, &input.image_suffix) {
            Some(key) => d.pairs.push(PairRef {
                key,
                image: f,
                bands: Vec::new(),
                label: LabelSource::Background,
                split: None,
            }),
            None => d.ignored.push(f),
        }
    }
    if !rest.is_empty() {
        bands::attach(&mut d, first, rest, &input.image_suffix, false)?;
    }
    d.pairs.sort_by(|a, b| a.key.cmp(&b.key));
    crate::source::check_unique_keys(&d.pairs, first)?;
    if d.pairs.is_empty() {
        return Err(Error::data(
            first,
            "apply",
            "no images found (png, jpg, tif)",
        ));
    }
    Ok(d.pairs)
}

/// Where a run writes before its output replaces the earlier one.
const STAGING: &str = ".segprep-apply-staging";

/// The output folder: new, empty, or an earlier (possibly interrupted) apply output. Returns a
/// fresh staging folder inside it.
fn claim_output(out: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, "apply", e))?;
    let mut entries = std::fs::read_dir(out).map_err(|e| Error::io(out, "apply", e))?;
    if entries.next().is_some() && !out.join(MARKER).exists() {
        return Err(Error::data(
            out,
            "apply",
            "is not empty and holds no earlier apply output; choose a new folder",
        ));
    }
    std::fs::write(out.join(MARKER), "").map_err(|e| Error::io(out, "apply", e))?;
    let staging = out.join(STAGING);
    match std::fs::remove_dir_all(&staging) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::io(&staging, "apply", e))
        }
        _ => {}
    }
    std::fs::create_dir(&staging).map_err(|e| Error::io(&staging, "apply", e))?;
    Ok(staging)
}

/// Decodes one image and runs the image stages on it, recording every size change.
fn prepare(replay: &Replay, pair: &PairRef) -> Result<Prepared> {
    let input = &replay.config.input;
    let prepared = prepare_image(&replay.stages, pair, &input.image_rules(), input.channels)?;
    check_like_build(replay, pair, &prepared.image)?;
    let image = prepared.image;
    let record = SampleRecord {
        key: pair.key.clone(),
        files: pair.image_files().cloned().collect(),
        output: String::new(),
        index: 0,
        original_size: prepared.decoded_size,
        size: [image.width, image.height],
        exif: prepared.exif,
        geometry: prepared.geometry,
        standardization: prepared.standardization,
    };
    Ok(Prepared { image, record })
}

/// An image of other bands or dtype than the training samples would feed the model garbage.
fn check_like_build(replay: &Replay, pair: &PairRef, image: &Image) -> Result<()> {
    let dtype = image.pixels.dtype();
    if image.bands != replay.image_bands || dtype != replay.image_dtype {
        return Err(Error::data(&pair.image, "apply", format!(
            "prepared as {} band(s) of {dtype:?}, but the build's samples are {} band(s) of {:?}; convert the image, or set [input] channels in the pipeline and rebuild",
            image.bands, replay.image_bands, replay.image_dtype
        )));
    }
    Ok(())
}

/// Writes a batch; returns the number of files written. NPZ files hold runs of one size.
fn write_batch(batch: &mut [Prepared], opts: &ApplyOptions, files_before: usize) -> Result<usize> {
    match opts.format {
        ApplyFormat::Npy => {
            for p in batch.iter_mut() {
                p.record.output = format!("{}.npy", p.record.key);
                write_npy(&opts.out.join(&p.record.output), &p.image)?;
            }
            Ok(batch.len())
        }
        ApplyFormat::Npz => {
            let mut written = 0;
            let mut start = 0;
            while start < batch.len() {
                let size = batch[start].record.size;
                let len = batch[start..]
                    .iter()
                    .take_while(|p| p.record.size == size)
                    .count();
                let name = format!("apply-{:05}.npz", files_before + written);
                let run = &mut batch[start..start + len];
                for (i, p) in run.iter_mut().enumerate() {
                    (p.record.output, p.record.index) = (name.clone(), i);
                }
                write_npz(&opts.out.join(&name), run)?;
                written += 1;
                start += len;
            }
            Ok(written)
        }
    }
}

fn write_npy(path: &Path, image: &Image) -> Result<()> {
    let shape = [image.height as u64, image.width as u64, image.bands as u64];
    atomic::write_atomically(path, |file: File| {
        let mut w = BufWriter::new(file);
        npy::write_header(&mut w, image.pixels.dtype().numpy(), &shape)?;
        w.write_all(image.pixels.as_bytes())?;
        w.into_inner().map_err(|e| e.into_error())
    })?;
    Ok(())
}

/// `image` (N,H,W,C) and `key` (N,) as the build's stacked shards hold them, plus the per-image
/// standardization values when there are some.
fn write_npz(path: &Path, run: &[Prepared]) -> Result<()> {
    let first = &run[0].image;
    let shape = [
        run.len() as u64,
        first.height as u64,
        first.width as u64,
        first.bands as u64,
    ];
    let stored = Compression::Stored;
    atomic::write_atomically(path, |file: File| {
        let mut zip = zip_file(file, 1 << 20);
        let bytes = shape.iter().product::<u64>() * first.pixels.dtype().size() as u64;
        start_entry(&mut zip, "image.npy", stored, bytes)?;
        npy::write_header(&mut zip, first.pixels.dtype().numpy(), &shape)?;
        for p in run {
            zip.write_all(p.image.pixels.as_bytes())?;
        }
        start_entry(&mut zip, "key.npy", stored, 0)?;
        let keys: Vec<&str> = run.iter().map(|p| p.record.key.as_str()).collect();
        npy::write_strings(&mut zip, &keys)?;
        let values: Vec<_> = run
            .iter()
            .filter_map(|p| p.record.standardization)
            .collect();
        if values.len() == run.len() {
            start_entry(&mut zip, "image_mean.npy", stored, 0)?;
            npy::write_f64s(&mut zip, &values.iter().map(|v| v.mean).collect::<Vec<_>>())?;
            start_entry(&mut zip, "image_std.npy", stored, 0)?;
            npy::write_f64s(&mut zip, &values.iter().map(|v| v.std).collect::<Vec<_>>())?;
        }
        finish_zip(zip)
    })?;
    Ok(())
}
