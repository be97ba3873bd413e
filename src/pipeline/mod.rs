//! The pipeline: the TOML file parsed (`schema`), checked as a whole, and resolved into what the
//! engine runs: absolute paths, the class set before and after the stages, built stages, the split
//! plan and the pipeline hash.
pub mod schema;
pub mod toml_errors;

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

use crate::classes::{colors, Class, ClassSet};
use crate::decode::label::LabelDecoder;
use crate::decode::label::LabelFormat;
use crate::error::{Error, Result};
use crate::sample::PixelType;
use crate::sink::{Compression, Layout, OutputFormat, SinkOptions};
use crate::source::{DatasetKind, SourceOptions};
use crate::split::SplitPlan;
use crate::stages::{BuildContext, Stage, StageConfig};
use schema::{AugmentAt, ClassEntry, LabelDtype, PipelineFile};

#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The pipeline file.
    pub file: PathBuf,
    /// As written (relative paths unresolved): this is what the hash covers.
    pub config: PipelineFile,
    /// The image folder, manifest or dataset (the first of `images`).
    pub images_path: PathBuf,
    /// Further band folders (or manifests), in the declared order.
    pub band_paths: Vec<PathBuf>,
    pub labels_path: Option<PathBuf>,
    pub output_dir: PathBuf,
    /// Classes as declared for the input labels.
    pub input_classes: ClassSet,
    /// Classes after all stages: what the shards hold.
    pub classes: ClassSet,
    pub decoder: LabelDecoder,
    /// The stages a build runs.
    pub stages: Vec<Stage>,
    /// The stages left to the data loader (`[output] augment = "online"`): the augment stage and
    /// those after it. Empty otherwise.
    pub online_stages: Vec<Stage>,
    pub split: SplitPlan,
    pub label_dtype: PixelType,
    /// sha256 of the canonical form of the pipeline as written.
    pub hash: String,
    /// URL inputs and the local mirrors the paths above now point at.
    pub mirrored: Vec<crate::storage::mirror::Mirrored>,
}

/// Reads, parses and resolves a pipeline file.
pub fn load(path: &Path) -> Result<Pipeline> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read pipeline {}: {e}", path.display())))?;
    let config = parse(path, &text)?;
    let mut pipeline = resolve(path, config)?;
    pipeline.localize_inputs()?;
    Ok(pipeline)
}

pub fn parse(path: &Path, text: &str) -> Result<PipelineFile> {
    toml::from_str(text).map_err(|e| Error::pipeline(path, toml_errors::describe(path, text, &e)))
}

pub fn resolve(path: &Path, config: PipelineFile) -> Result<Pipeline> {
    let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let at = |p: &Path| {
        if p.is_absolute() || crate::storage::is_url(p) {
            p.to_path_buf()
        } else {
            root.join(p)
        }
    };
    let mut problems = Vec::new();
    let input_classes = input_classes(&config, &at)
        .map_err(|p| problems.extend(p))
        .ok();
    problems.extend(misplaced_options(&config));
    let mut stages = Vec::new();
    let mut classes = input_classes.clone();
    if let Some(c) = classes.take() {
        let mut ctx = BuildContext { classes: c };
        for (i, sc) in config.stages.iter().enumerate() {
            match sc.build(&mut ctx) {
                Ok(s) => stages.push(s),
                Err(p) => problems.extend(
                    p.into_iter()
                        .map(|m| format!("[[stage]] #{} ({}): {m}", i + 1, sc.name())),
                ),
            }
        }
        classes = Some(ctx.classes);
    }
    let standardizes = config
        .stages
        .iter()
        .filter(|s| matches!(s, StageConfig::Standardize(_)))
        .count();
    if standardizes > 1 {
        problems.push("only one standardize stage is allowed".into());
    }
    if config
        .stages
        .iter()
        .filter(|s| matches!(s, StageConfig::Augment(_)))
        .count()
        > 1
    {
        problems.push("only one augment stage is allowed (it can hold every transform)".into());
    }
    let layout = config.output.layout();
    if layout == Layout::Gym && standardizes > 0 {
        problems.push("output.layout = \"gym\" stores u8 images (Gym standardizes when it loads them); remove the standardize stage".into());
    }
    if layout == Layout::Huggingface && standardizes > 0 {
        problems.push("output.layout = \"huggingface\" stores images as PNG (u8/u16); for standardized f32 images use layout = \"tensor\"".into());
    }
    let to_f32 = config.stages.iter().any(|s| {
        matches!(s, StageConfig::Rescale(r) if r.output == crate::stages::rescale::RescaleOutput::F32)
    });
    if to_f32 && matches!(layout, Layout::Huggingface | Layout::Gym) {
        problems.push(format!("output.layout = \"{}\" stores u8/u16 images; rescale to output = \"u8\", or use layout = \"stacked\" or \"tensor\" for f32", layout.name()));
    }
    let fits = match config.output.format {
        OutputFormat::Npz => matches!(layout, Layout::Stacked | Layout::Gym),
        OutputFormat::Parquet => matches!(layout, Layout::Huggingface | Layout::Tensor),
    };
    if config.output.format == OutputFormat::Npz && config.output.compression == Compression::Zstd {
        problems.push("output.compression = \"zstd\" applies to format = \"parquet\"; NPZ shards are \"stored\" or \"deflate\" (numpy reads no zstd zip entries)".into());
    }
    if !fits {
        problems.push(format!(
            "output.layout = \"{}\" does not apply to format = \"{}\" (npz: stacked, gym; parquet: huggingface, tensor)",
            layout.name(),
            config.output.format.extension()
        ));
    }
    if let (Layout::Gym, Some(c)) = (config.output.layout(), &classes) {
        if c.classes
            .iter()
            .enumerate()
            .any(|(i, class)| class.id as usize != i)
        {
            problems.push("output.layout = \"gym\" one-hot encodes class ids 0..N-1, but the ids are not contiguous; add a remap stage with compact = true".into());
        }
    }
    let split = SplitPlan::from_config(config.split.as_ref())
        .map_err(|p| problems.extend(p))
        .ok();
    let label_dtype = classes.as_ref().and_then(|c| {
        label_dtype(config.output.label_dtype, c)
            .map_err(|p| problems.push(p))
            .ok()
    });
    if let Some(n) = config.output.shard_samples {
        if n == 0 {
            problems.push("output.shard_samples must be at least 1".into());
        }
    }
    if config.output.num_shards == Some(0) {
        problems.push("output.num_shards must be at least 1".into());
    }
    let mut online_stages = Vec::new();
    if config.output.augment == AugmentAt::Online && problems.is_empty() {
        match split_online(&mut stages) {
            Ok(online) => online_stages = online,
            Err(p) => problems.push(p),
        }
    }
    match (
        input_classes,
        classes,
        split,
        label_dtype,
        problems.is_empty(),
    ) {
        (Some(input_classes), Some(classes), Some(split), Some(label_dtype), true) => {
            let l = &config.labels;
            let decoder = LabelDecoder::new(
                l.format,
                &input_classes,
                l.unknown,
                crate::decode::masks::MaskMerge {
                    foreground_value: l.foreground_value,
                    overlap: l.overlap,
                    ignore_index: l.ignore_index,
                    limits: config.input.limits(),
                },
            );
            let mut images = config.input.images.all().iter().map(|p| at(p));
            Ok(Pipeline {
                file: path.to_path_buf(),
                images_path: images.next().unwrap_or_default(),
                band_paths: images.collect(),
                labels_path: config.input.labels.as_deref().map(at),
                output_dir: at(&config.output.dir),
                hash: hash(&config),
                mirrored: Vec::new(),
                config,
                input_classes,
                classes,
                decoder,
                stages,
                online_stages,
                split,
                label_dtype,
            })
        }
        _ => Err(Error::Pipeline {
            file: path.to_path_buf(),
            problems,
        }),
    }
}

impl Pipeline {
    /// Fixes the shard count from the command line. It changes the output, so it becomes part of
    /// the pipeline (and of its hash, and of index.json) exactly as if the file had set it.
    pub fn set_num_shards(&mut self, n: usize) -> Result<()> {
        if n == 0 {
            return Err(Error::Usage("--num-shards must be at least 1".into()));
        }
        self.config.output.num_shards = Some(n);
        self.hash = hash(&self.config);
        Ok(())
    }

    /// Leaves the augment stage and those after it to the data loader (`--augment-online`, as
    /// `[output] augment = "online"`): it changes the output, so it becomes part of the pipeline,
    /// its hash and index.json.
    pub fn set_augment_online(&mut self) -> Result<()> {
        if self.config.output.augment == AugmentAt::Online {
            return Ok(());
        }
        self.online_stages =
            split_online(&mut self.stages).map_err(|p| Error::pipeline(&self.file, p))?;
        self.config.output.augment = AugmentAt::Online;
        self.hash = hash(&self.config);
        Ok(())
    }

    /// Every stage, the build's then the data loader's: what a live pipeline runs.
    pub fn all_stages(&self) -> Vec<Stage> {
        self.stages
            .iter()
            .chain(&self.online_stages)
            .cloned()
            .collect()
    }

    /// Points every URL input (images, band folders, labels) at its local mirror, and records each
    /// in `mirrored`.
    fn localize_inputs(&mut self) -> Result<()> {
        let mut mirrored = Vec::new();
        let mut localize = |path: &mut PathBuf| -> Result<()> {
            if crate::storage::is_url(path) {
                let m = crate::storage::mirror::mirror(path, &crate::decode::is_supported_image)?;
                *path = m.local.clone();
                mirrored.push(m);
            }
            Ok(())
        };
        localize(&mut self.images_path)?;
        for band in &mut self.band_paths {
            localize(band)?;
        }
        if let Some(labels) = self.labels_path.as_mut() {
            localize(labels)?;
        }
        self.mirrored = mirrored;
        Ok(())
    }

    /// What discovery reads: the (mirrored) paths and the pairing rules.
    pub fn source(&self) -> SourceOptions {
        let (input, labels) = (&self.config.input, &self.config.labels);
        let dataset = match labels.format {
            LabelFormat::Mvtec => DatasetKind::MvtecDict,
            LabelFormat::MvtecAd => DatasetKind::MvtecAd {
                good: labels.good.clone(),
                defects: labels.defects,
            },
            LabelFormat::Instances => DatasetKind::Instances {
                mask_folders: labels.mask_folders.clone(),
            },
            _ => DatasetKind::Pairs,
        };
        SourceOptions {
            pipeline_file: self.file.clone(),
            images: self.images_path.clone(),
            bands: self.band_paths.clone(),
            labels: self.labels_path.clone(),
            dataset,
            image_suffix: input.image_suffix.clone(),
            label_suffix: input.label_suffix.clone(),
            image_extensions: input.image_extensions.clone(),
            unpaired: input.unpaired,
            path_prefix: input.path_prefix.clone(),
            allow_outside: input.allow_outside,
        }
    }

    /// What the sinks need: the layout and its settings.
    pub fn sink_options(&self) -> SinkOptions {
        let output = &self.config.output;
        SinkOptions {
            layout: output.layout(),
            compression: output.compression,
            label_dtype: self.label_dtype,
            augment: self.stages.iter().any(|s| matches!(s, Stage::Augment(_))),
            samples_known: self.config.run.on_error == schema::OnError::Fail,
            gym_root: output.gym_root.clone().unwrap_or_else(|| "segprep".into()),
            row_group_bytes: output
                .row_group_bytes
                .map_or(crate::sink::parquet::DEFAULT_ROW_GROUP_BYTES, |b| b.0),
        }
    }

    /// Samples each pair of `split` becomes (more than one after an augment stage).
    pub fn samples_per_pair(&self, split: &str) -> usize {
        self.stages.iter().map(|s| s.multiplicity(split)).product()
    }
}

/// Cuts `stages` before the augment stage and returns the cut-off part, which must not remap
/// (the build's classes are the data loader's).
fn split_online(stages: &mut Vec<Stage>) -> Result<Vec<Stage>, String> {
    let at = stages
        .iter()
        .position(|s| matches!(s, Stage::Augment(_)))
        .ok_or("output.augment = \"online\" leaves the augment stage to the data loader, but the pipeline has none")?;
    if stages[at..].iter().any(|s| matches!(s, Stage::Remap(_))) {
        return Err("output.augment = \"online\": a remap after the augment stage would change the classes of the prepared build; move it before augment".into());
    }
    let dataset_standardize = |s: &Stage| matches!(s, Stage::Standardize(st) if st.mode == crate::stages::standardize::StandardizeMode::Dataset);
    if stages[at..].iter().any(dataset_standardize) {
        return Err("output.augment = \"online\": standardize mode = \"dataset\" after the augment stage would need the augmented copies measured; move it before augment, or use \"fixed\" or \"per_image\"".into());
    }
    Ok(stages.split_off(at))
}

/// The pipeline as index.json records it.
pub fn config_json(config: &PipelineFile) -> String {
    serde_json::to_string(config).expect("pipeline serializes")
}

pub fn hash(config: &PipelineFile) -> String {
    let canonical = serde_json::to_vec(config).expect("pipeline serializes");
    hex::encode(Sha256::digest(canonical))
}

/// The classes of the input labels, from the colour table, `classes` or `num_classes`.
fn input_classes(
    config: &PipelineFile,
    at: &dyn Fn(&Path) -> PathBuf,
) -> Result<ClassSet, Vec<String>> {
    let l = &config.labels;
    let declared: Option<Vec<Class>> = l.classes.as_ref().map(|entries| {
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| match e {
                ClassEntry::Name(name) => Class {
                    id: i as u16,
                    name: name.clone(),
                    color: None,
                },
                ClassEntry::Full(f) => Class {
                    id: f.id,
                    name: f.name.clone(),
                    color: f.color,
                },
            })
            .collect()
    });
    let numbered = l.num_classes.map(|n| {
        (0..n.min(1 << 16))
            .map(|i| Class {
                id: i as u16,
                name: format!("class_{i}"),
                color: None,
            })
            .collect::<Vec<_>>()
    });
    if l.format.is_dataset() {
        return dataset_classes(config, at, declared, numbered);
    }
    let classes = match (l.format, &l.colors, declared, numbered) {
        (_, _, Some(_), Some(_)) => return Err(vec!["[labels]: give `classes` or `num_classes`, not both".into()]),
        (LabelFormat::Rgb, Some(file), None, None) => {
            let file = at(file);
            let text = std::fs::read_to_string(&file).map_err(|e| vec![format!("[labels] colors: cannot read {}: {e}", file.display())])?;
            colors::parse_color_table(&text).map_err(|e| vec![format!("[labels] colors {}: {e}", file.display())])?
        }
        (LabelFormat::Rgb, Some(_), Some(_), _) => return Err(vec!["[labels]: for rgb give a `colors` file or `classes` with colours, not both".into()]),
        (LabelFormat::Rgb, None, Some(c), None) if c.iter().all(|c| c.color.is_some()) => c,
        (LabelFormat::Rgb, _, _, _) => return Err(vec!["[labels] format = \"rgb\" needs `colors = \"label_colors.txt\"` or `classes = [{ id, name, color = [r, g, b] }, ...]`".into()]),
        (_, Some(_), _, _) => return Err(vec![format!("[labels] colors only applies to format = \"rgb\" (format is {:?})", l.format)]),
        (LabelFormat::Binary, None, None, None) => vec![
            Class { id: 0, name: "background".into(), color: None },
            Class { id: 1, name: "foreground".into(), color: None },
        ],
        (LabelFormat::Binary, None, Some(c), None) if c.len() == 2 && c.iter().zip(0..).all(|(c, i)| c.id == i) => c,
        (LabelFormat::Binary, ..) => return Err(vec!["[labels] format = \"binary\" has exactly two classes, ids 0 and 1".into()]),
        (_, None, Some(c), None) | (_, None, None, Some(c)) => c,
        (_, None, None, None) => return Err(vec![format!("[labels] format = {:?} needs `classes = [\"name\", ...]` or `num_classes = N`", l.format)]),
    };
    if l.format == LabelFormat::Binary && l.foreground_value == 0 {
        return Err(vec![
            "[labels] foreground_value must not be 0 (0 is background)".into(),
        ]);
    }
    if l.format == LabelFormat::Palette {
        if let Some(c) = classes.iter().find(|c| c.id > 255) {
            return Err(vec![format!(
                "[labels] palette indices are at most 255, but class `{}` has id {}",
                c.name, c.id
            )]);
        }
    }
    ClassSet::new(classes, l.ignore_index)
        .map_err(|p| p.into_iter().map(|m| format!("[labels]: {m}")).collect())
}

/// Classes of formats that name them in the dataset: the MVTec dictionary, MVTec AD's defect
/// folders, the instance mask folders (whose names `classes` may replace).
fn dataset_classes(
    config: &PipelineFile,
    at: &dyn Fn(&Path) -> PathBuf,
    declared: Option<Vec<Class>>,
    numbered: Option<Vec<Class>>,
) -> Result<ClassSet, Vec<String>> {
    let l = &config.labels;
    let dataset = at(&config.input.images.all()[0]);
    let found = match l.format {
        LabelFormat::Mvtec => crate::source::mvtec_dict::read(&dataset)
            .map(|d| d.classes)
            .map_err(|e| format!("[input] images {}: {e}", dataset.display())),
        LabelFormat::MvtecAd => crate::source::mvtec_ad::defect_types(&dataset)
            .map(|t| crate::source::mvtec_ad::classes(&t, l.defects))
            .map_err(|e| format!("[input] images: {e}")),
        _ => Ok(crate::source::instances::classes(&l.mask_folders)),
    }
    .map_err(|e| vec![e]);
    let mut problems = Vec::new();
    if config.input.labels.is_some() {
        problems.push(format!(
            "[input] labels: format = {:?} finds the labels in the dataset itself; remove `labels`",
            l.format
        ));
    }
    let classes = match (found, declared, numbered) {
        (Err(e), ..) => {
            problems.extend(e);
            None
        }
        (Ok(found), None, None) => Some(found),
        (Ok(found), Some(names), None)
            if l.format == LabelFormat::Instances && names.len() == found.len() =>
        {
            Some(
                found
                    .into_iter()
                    .zip(names)
                    .map(|(c, n)| Class { name: n.name, ..c })
                    .collect(),
            )
        }
        (Ok(found), ..) => {
            let names_hint = if l.format == LabelFormat::Instances {
                format!(
                    " (or give exactly {} names: background, then one per mask folder)",
                    found.len()
                )
            } else {
                String::new()
            };
            problems.push(format!(
                "[labels] format = {:?} takes its classes from the dataset{names_hint}; rename or merge them with a remap stage",
                l.format
            ));
            None
        }
    };
    let Some(classes) = classes.filter(|_| problems.is_empty()) else {
        return Err(problems);
    };
    ClassSet::new(classes, l.ignore_index)
        .map_err(|p| p.into_iter().map(|m| format!("[labels]: {m}")).collect())
}

/// Options set for a format that does not read them: silently ignoring them would hide a mistake.
fn misplaced_options(config: &PipelineFile) -> Vec<String> {
    use crate::decode::masks::OverlapPolicy;
    use crate::source::mvtec_ad::DefectClasses;
    let l = &config.labels;
    let f = l.format;
    let masks = matches!(f, LabelFormat::Instances | LabelFormat::MvtecAd);
    let checks = [
        ("good", l.good != ["good"], f == LabelFormat::MvtecAd),
        (
            "defects",
            l.defects != DefectClasses::PerType,
            f == LabelFormat::MvtecAd,
        ),
        (
            "mask_folders",
            l.mask_folders != ["masks"],
            f == LabelFormat::Instances,
        ),
        ("overlap", l.overlap != OverlapPolicy::Error, masks),
        (
            "foreground_value",
            l.foreground_value != 255,
            masks || f == LabelFormat::Binary,
        ),
    ];
    let mut problems: Vec<String> = checks
        .iter()
        .filter(|(_, set, applies)| *set && !applies)
        .map(|(name, ..)| format!("[labels] {name} does not apply to format = {f:?}"))
        .collect();
    if f.is_dataset() && config.input.images.all().len() > 1 {
        problems.push(format!(
            "[input] images: format = {f:?} reads one dataset, not a list of band folders"
        ));
    }
    problems
}

fn label_dtype(wanted: LabelDtype, classes: &ClassSet) -> Result<PixelType, String> {
    let max = classes.max_value();
    match wanted {
        LabelDtype::Auto if max <= 255 => Ok(PixelType::U8),
        LabelDtype::Auto | LabelDtype::U16 => Ok(PixelType::U16),
        LabelDtype::U8 if max <= 255 => Ok(PixelType::U8),
        LabelDtype::U8 => {
            let what = classes
                .classes
                .iter()
                .rev()
                .find(|c| c.id > 255)
                .map_or(format!("the ignore index {}", classes.ignore_index), |c| {
                    format!("class `{}` (id {})", c.name, c.id)
                });
            Err(format!(
                "output.label_dtype = \"u8\" cannot hold {what}; use \"u16\" or \"auto\""
            ))
        }
    }
}
