//! One sample's processing: a pair decoded (image and label, checked to have one size) and run
//! through the stages. The build, `segprep stats --geometry`, preview and the stage tests call
//! `process_pair`; `segprep apply` calls `prepare_image`, the same decoding and the stages' image
//! paths alone, so a sample is made one way everywhere.
use crate::decode::image::ReduceTarget;
use crate::decode::rules::ImageRules;
use crate::decode::stack::decode_pair_image;
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::sample::{Image, ImagePart, LabelMap, PairRef, Sample, Standardization};
use crate::stages::geometry::GeometryStep;
use crate::stages::Stage;

/// Decodes a pair and runs every stage on it: one sample, or several after an augment stage.
pub fn process_pair(
    p: &Pipeline,
    stages: &[Stage],
    pair: &PairRef,
    split: &str,
) -> Result<Vec<Sample>> {
    let mut samples = vec![decode_sample(p, stages, pair, split)?];
    for stage in stages {
        samples = stage
            .apply_all(samples)
            .map_err(|m| Error::data(&pair.image, stage.name(), m))?;
    }
    Ok(samples)
}

/// Decodes a pair and makes copy `copy` of it alone: the sample a build writes as `key` (copy 0)
/// or `key@copy`, with the same bytes, and any later copy drawn the same way. Copy 0 of a split
/// an augment stage draws is the original as that stage brings it to its copies' size (a build
/// writes it when the stage keeps originals).
pub fn process_copy(
    p: &Pipeline,
    stages: &[Stage],
    pair: &PairRef,
    split: &str,
    copy: u32,
) -> Result<Sample> {
    run_copy(stages, decode_sample(p, stages, pair, split)?, copy)
}

/// Runs `stages` on one sample as copy `copy` (see `process_copy`): also what a data loader runs
/// on a prepared sample read from a build (`[output] augment = "online"`).
pub fn run_copy(stages: &[Stage], mut sample: Sample, copy: u32) -> Result<Sample> {
    let split = sample.split.clone();
    if copy > 0 && !stages.iter().any(|s| s.draws_copies(&split)) {
        return Err(Error::Usage(format!(
            "{}: split {split} has no augmented copies (no augment stage draws copies of {split}); ask for copy 0",
            sample.pair.key
        )));
    }
    for stage in stages {
        let c = if stage.draws_copies(&split) { copy } else { 0 };
        stage
            .apply_copy(&mut sample, c)
            .map_err(|m| Error::data(&sample.pair.image, stage.name(), m))?;
    }
    Ok(sample)
}

/// The decoded image and label of a pair, checked to have one size (the image's full size when
/// it was decoded reduced: the label never is, and the first stage, a resize, plans from it).
fn decode_sample(p: &Pipeline, stages: &[Stage], pair: &PairRef, split: &str) -> Result<Sample> {
    let input = &p.config.input;
    let rules = input.image_rules();
    let target = first_resize_target(stages);
    let reduce_to = target.as_ref().map(|t| t as ReduceTarget);
    let decoded = decode_pair_image(pair, &rules, input.channels, reduce_to)?;
    let image = decoded.image;
    let (width, height) = decoded.reduced_from.unwrap_or((image.width, image.height));
    let label = p.decoder.decode_source(&pair.label, width, height)?;
    let l = &label.map;
    if (l.width, l.height) != (width, height) {
        let message = size_mismatch(pair, (width, height), l, decoded.exif.as_ref());
        return Err(Error::data(pair.label_path(), "pair", message));
    }
    Ok(Sample {
        pair: pair.clone(),
        split: split.to_string(),
        image,
        label: label.map,
        padding: None,
        unknown_pixels: label.unknown_pixels,
        standardization: None,
        instances: label.instances,
        augment: None,
    })
}

/// The size the first resize wants for an image of a given full size, when the first stage that
/// changes pixels is a resize: what a reduced JPEG decode (`[input] jpeg_reduce`) must still
/// cover. A size the resize cannot plan gives `None`: a full decode, and the resize reports it.
fn first_resize_target(stages: &[Stage]) -> Option<impl Fn(u32, u32) -> Option<(u32, u32)> + '_> {
    let first = stages.iter().find(|s| !matches!(s, Stage::Remap(_)))?;
    matches!(first, Stage::Resize(_)).then_some(move |w, h| {
        first
            .geometry(w, h)
            .ok()?
            .into_iter()
            .find_map(|s| match s {
                GeometryStep::Resize { to, .. } => Some((to[0], to[1])),
                _ => None,
            })
    })
}

/// Says which orientation of a turned JPEG the label matches, if any.
fn size_mismatch(
    pair: &PairRef,
    (width, height): (u32, u32),
    l: &LabelMap,
    exif: Option<&(String, u32, u32)>,
) -> String {
    let base = format!(
        "label is {}x{} but its image {} is {width}x{height}",
        l.width,
        l.height,
        pair.image.display(),
    );
    match exif {
        Some((o, w, h)) if (*w, *h) == (l.width, l.height) => format!(
            "{base} after its EXIF orientation ({o}); the label matches the image as stored ({w}x{h}): set [input] exif = \"ignore\""
        ),
        Some((o, w, h)) => format!("{base} after its EXIF orientation ({o}), {w}x{h} as stored; the label matches neither"),
        None => base,
    }
}

/// A new image prepared for a model, and how it got its size.
#[derive(Debug)]
pub struct PreparedImage {
    pub image: Image,
    /// [width, height] as decoded, before any stage.
    pub decoded_size: [u32; 2],
    /// Set by a `per_image` standardize stage.
    pub standardization: Option<Standardization>,
    /// Every change of size, in order: what `restore` undoes.
    pub geometry: Vec<GeometryStep>,
    /// The EXIF orientation applied to a JPEG, if any.
    pub exif: Option<String>,
}

/// Decodes a pair's image by `rules` and runs each stage's image path on it (there is no label):
/// pass the stages that run at inference.
pub fn prepare_image(
    stages: &[Stage],
    pair: &PairRef,
    rules: &ImageRules,
    channels: Option<usize>,
) -> Result<PreparedImage> {
    let target = first_resize_target(stages);
    let reduce_to = target.as_ref().map(|t| t as ReduceTarget);
    let decoded = decode_pair_image(pair, rules, channels, reduce_to)?;
    let mut image = decoded.image;
    // the size the stages plan from: the full size, also when the JPEG was decoded reduced
    let mut size = decoded.reduced_from.unwrap_or((image.width, image.height));
    let decoded_size = [size.0, size.1];
    let mut standardization = None;
    let mut geometry = Vec::new();
    for stage in stages {
        let fail = |m: String| Error::data(&pair.image, stage.name(), m);
        geometry.extend(stage.geometry(size.0, size.1).map_err(fail)?);
        let part = ImagePart {
            image: &mut image,
            standardization: &mut standardization,
        };
        stage.apply_image(&pair.key, size, part).map_err(fail)?;
        size = (image.width, image.height);
    }
    Ok(PreparedImage {
        image,
        decoded_size,
        standardization,
        geometry,
        exif: decoded.exif.map(|(orientation, _, _)| orientation),
    })
}
