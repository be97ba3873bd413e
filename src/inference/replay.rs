//! A finished build read back for inference: its pipeline (checked against the recorded hash) and
//! the stages that prepare an image — resize, pad, rescale, standardize, with the values the build
//! measured — without the ones that do not run at inference (label-only `remap`, random `augment`).
use std::path::{Path, PathBuf};

use crate::classes::{Class, ClassSet};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::pipeline::schema::PipelineFile;
use crate::sample::PixelType;
use crate::stages::standardize::StandardizeMode;
use crate::stages::{AtInference, BuildContext, Stage};

/// What `apply` and `restore` need from a build.
#[derive(Debug, Clone)]
pub struct Replay {
    pub build_dir: PathBuf,
    pub pipeline_hash: String,
    pub config: PipelineFile,
    /// The image stages, in pipeline order.
    pub stages: Vec<Stage>,
    /// Output classes (what a model predicts) and the ignore index.
    pub classes: Vec<Class>,
    pub ignore_index: u16,
    /// The shards' image dtype and band count.
    pub image_dtype: PixelType,
    pub image_bands: usize,
}

/// Reads `build_dir/index.json`. A build made by another segprep version is refused unless
/// `any_version`: the stages' arithmetic is only promised identical within one version.
pub fn load(build_dir: &Path, any_version: bool) -> Result<Replay> {
    let (path, index) = Index::read(
        build_dir,
        "apply",
        "BUILD_DIR must be a finished `segprep build` output",
    )?;
    let ours = env!("CARGO_PKG_VERSION");
    if index.segprep_version != ours && !any_version {
        return Err(Error::data(&path, "apply", format!(
            "built by segprep {}, this is {ours}; results may differ from the training samples. Use segprep {} or pass --any-version",
            index.segprep_version, index.segprep_version
        )));
    }
    let config: PipelineFile = serde_json::from_value(index.pipeline.clone())
        .map_err(|e| Error::data(&path, "apply", format!("its pipeline cannot be read: {e}")))?;
    if crate::pipeline::hash(&config) != index.pipeline_hash {
        return Err(Error::data(
            &path,
            "apply",
            "its pipeline does not match its pipeline_hash (edited, or written by another version)",
        ));
    }
    let stages = image_stages(&config, &index, &path)?;
    Ok(Replay {
        build_dir: build_dir.to_path_buf(),
        pipeline_hash: index.pipeline_hash,
        config,
        stages,
        classes: index.classes,
        ignore_index: index.ignore_index,
        image_dtype: index.image.dtype,
        image_bands: index.image.bands,
    })
}

/// Builds every stage as the build did (remaps change the classes later stages check), keeps the
/// ones that run at inference, and gives `standardize = dataset` the recorded mean and std.
fn image_stages(config: &PipelineFile, index: &Index, path: &Path) -> Result<Vec<Stage>> {
    let bad = |m: String| Error::data(path, "apply", m);
    let classes = ClassSet::new(index.input_classes.clone(), index.ignore_index)
        .map_err(|p| bad(p.join("; ")))?;
    let mut ctx = BuildContext { classes };
    let mut stages = Vec::new();
    for (config, recorded) in config.stages.iter().zip(&index.stages) {
        let mut stage = config
            .build(&mut ctx)
            .map_err(|p| bad(format!("{}: {}", config.name(), p.join("; "))))?;
        if stage.at_inference() == AtInference::Skipped {
            continue;
        }
        if let Stage::Standardize(s) = &mut stage {
            if s.mode == StandardizeMode::Dataset {
                s.bands = Some(recorded_bands(recorded).ok_or_else(|| {
                    bad("standardize: the dataset mean and std are not recorded".into())
                })?);
            }
        }
        stages.push(stage);
    }
    Ok(stages)
}

/// `{"mean": [...], "std": [...]}` of a described standardize stage.
fn recorded_bands(described: &serde_json::Value) -> Option<Vec<(f64, f64)>> {
    let values = |k: &str| -> Option<Vec<f64>> {
        described
            .get(k)?
            .as_array()?
            .iter()
            .map(|v| v.as_f64())
            .collect()
    };
    let (mean, std) = (values("mean")?, values("std")?);
    (mean.len() == std.len() && !mean.is_empty()).then(|| mean.into_iter().zip(std).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// index.json keeps the pipeline as JSON; apply rebuilds it from there and checks the hash,
    /// so every example pipeline must come back from JSON with the same hash.
    #[test]
    fn every_example_pipeline_survives_the_json_round_trip() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let config =
                crate::pipeline::parse(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
            let json = serde_json::to_value(&config).unwrap();
            let back: PipelineFile =
                serde_json::from_value(json).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                crate::pipeline::hash(&back),
                crate::pipeline::hash(&config),
                "{}",
                path.display()
            );
            seen += 1;
        }
        assert!(seen >= 10, "only {seen} example pipelines");
    }

    #[test]
    fn recorded_dataset_values_are_read_per_band() {
        let v = serde_json::json!({"stage": "standardize", "mode": "dataset", "mean": [1.0, 2.0], "std": [3.0, 4.0]});
        assert_eq!(recorded_bands(&v), Some(vec![(1.0, 3.0), (2.0, 4.0)]));
        let v = serde_json::json!({"mean": [1.0], "std": []});
        assert_eq!(recorded_bands(&v), None);
    }
}
