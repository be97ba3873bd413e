//! The dataset-wide first pass for `standardize = { mode = "dataset" }`: per-band mean and std of
//! the training split after the stages before it. Sums are exact for integer pixels and merged in
//! key order, so the values do not depend on threads.
use rayon::prelude::*;

use super::process;
use crate::error::{Error, Result};
use crate::pipeline::schema::OnError;
use crate::pipeline::Pipeline;
use crate::progress::Progress;
use crate::sample::PairRef;
use crate::stages::standardize::{moments, BandMoments, StandardizeMode};
use crate::stages::Stage;

pub fn measure_dataset_standardization(
    p: &mut Pipeline,
    pairs: &[PairRef],
    splits: &[String],
    progress: &dyn Progress,
) -> Result<()> {
    let Some(at) = p
        .stages
        .iter()
        .position(|s| matches!(s, Stage::Standardize(st) if st.mode == StandardizeMode::Dataset))
    else {
        return Ok(());
    };
    let train: Vec<(&PairRef, &String)> = pairs
        .iter()
        .zip(splits)
        .filter(|(_, s)| *s == "train")
        .collect();
    if train.is_empty() {
        return Err(Error::pipeline(
            &p.file,
            "standardize mode = \"dataset\" needs samples in the train split",
        ));
    }
    progress.start("measuring dataset mean/std", train.len() as u64);
    let before = &p.stages[..at];
    // per pair, the moments of each sample it gives (an augmented pair gives its copies too)
    let per_pair: Vec<Result<Vec<Vec<BandMoments>>>> = train
        .par_iter()
        .map(|(pair, split)| {
            let samples = process(p, before, pair, split)?;
            progress.advance(1);
            Ok(samples
                .iter()
                .map(|s| moments(&s.image.pixels, s.image.bands))
                .collect())
        })
        .collect();
    progress.finish();
    let mut total: Option<Vec<BandMoments>> = None;
    for (r, (pair, _)) in per_pair.into_iter().zip(&train) {
        // a bad sample is skipped here too when the run skips bad samples; the main pass lists it
        let samples = match r {
            Ok(samples) => samples,
            Err(_) if p.config.run.on_error == OnError::Skip => continue,
            Err(e) => return Err(e),
        };
        for m in samples {
            match &mut total {
                None => total = Some(m),
                Some(t) if t.len() == m.len() => t.iter_mut().zip(&m).for_each(|(a, b)| a.merge(b)),
                Some(t) => {
                    return Err(Error::data(
                        &pair.image,
                        "standardize",
                        format!("has {} bands, others have {}", m.len(), t.len()),
                    ))
                }
            }
        }
    }
    let bands: Vec<(f64, f64)> = total
        .unwrap_or_default()
        .iter()
        .map(|m| m.mean_std())
        .map(|(m, s)| (m, s.max(f64::EPSILON)))
        .collect();
    if let Stage::Standardize(st) = &mut p.stages[at] {
        st.bands = Some(bands);
    }
    Ok(())
}
