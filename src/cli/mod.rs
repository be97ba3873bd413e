//! The command line: argument definitions and one small file per subcommand. Nothing below this
//! module prints or exits.
mod apply;
mod build;
mod check;
mod completions;
mod fetch;
mod init;
mod merge;
mod preview;
mod progress_bar;
mod restore;
mod stats;
mod verify;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

use crate::error::Result;

const ABOUT: &str =
    "Turns raw semantic-segmentation data (image/label pairs) into model-ready shards.";

const LONG_ABOUT: &str = "\
Turns raw semantic-segmentation data (image/label pairs) into model-ready shards.

A pipeline file (TOML) says where the pairs are, how labels are encoded, which stages to run
(remap, resize, pad, rescale, standardize, augment), how to split, and where to write. Start with:

  segprep init my-dataset        # writes my-dataset/pipeline.toml, commented
  segprep check my-dataset/pipeline.toml   # what would a build meet? writes nothing
  segprep build my-dataset/pipeline.toml   # write the shards
  segprep stats my-dataset/pipeline.toml   # class balance and weights, before you train
  segprep preview my-dataset/pipeline.toml # a contact sheet of samples after every stage

At inference, prepare new images exactly as the training samples, and take predictions back:

  segprep apply out/my-dataset --images new-photos --out prepared
  segprep restore out/my-dataset --predictions predicted --applied prepared --out restored

Exit status: 0 success, 1 data problem (bad or missing files), 2 usage or pipeline-file problem,\n3 environment problem (the output cannot be written: disk full, read-only, not a folder; an object
store cannot be reached or refuses a call).";

#[derive(Debug, Parser)]
#[command(name = "segprep", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build shards from a pipeline file.
    #[command(long_about = "\
Build shards from a pipeline file: pairs are discovered and sorted, split, run through the stages
in parallel and written as NPZ shards with index.json (manifest) and stats.json (class counts).

The shards are byte-identical for the same pipeline and inputs, whatever --threads is.
Output files appear whole or not at all; index.json is written last.

Stacked layout, one file per shard: {split}-{i:05d}-of-{n:05d}.npz with
  image (N,H,W,C) u8/u16 (f32 when standardized), label (N,H,W) u8/u16, key (N,) str

Past one machine: run N independent workers into one output folder (shared file system), then
`segprep merge`. --num-shards fixes the partition; worker I of W builds the shards s with
s % W == I. The identity comes from --worker I/W, else from the first of SEGPREP_WORKER_INDEX/
_COUNT, JOB_COMPLETION_INDEX (with --workers W), SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN with
SLURM_ARRAY_TASK_COUNT, AWS_BATCH_JOB_ARRAY_INDEX/_SIZE, BATCH_TASK_INDEX/_COUNT. The first worker
records the plan (pipeline hash, input-list hash, shard count); every other worker must match it.
A rerun worker builds only its missing shards; duplicate workers write the same bytes.

  segprep build pipeline.toml --num-shards 64 --worker 3/8
  segprep merge out/my-dataset

With standardize mode = \"dataset\", first run `segprep stats pipeline.toml --worker I/W
--num-shards N` as every worker (it saves the train moments in the output folder).")]
    Build(BuildArgs),
    /// Join the shards of worker builds into one dataset: checks, stats.json, index.json.
    #[command(long_about = MERGE_HELP)]
    Merge(MergeArgs),
    /// Copy a finished build from object storage into a local folder, every file checked.
    #[command(long_about = "\
Copies the finished build at URL (s3://, gs://, az://, file://) into the local folder --to: every
file that index.json lists, checked against its size and sha256, then stats.json, errors.jsonl,
inputs.jsonl and, last, index.json. Files already in the folder and intact are kept, so fetching
again after a change downloads only what changed. The Python package's segprep.open(URL) calls
this.

  segprep fetch s3://bucket/datasets/camvid --to ~/.cache/segprep/camvid")]
    Fetch(FetchArgs),
    /// Dry run: report what a build would meet, write nothing.
    #[command(long_about = "\
Dry run: reads every image header and every label, writes nothing, and reports pairs found,
unpaired files on each side by name, image modes and sizes, image/label size mismatches, and the
label values or colours seen with the class each maps to (or UNMAPPED).

Exits 1 when a build would stop on what it found, 0 otherwise.")]
    Check(CheckArgs),
    /// Name every input file that changed since a build read it.
    #[command(long_about = "\
Reads again every input file the build recorded in its inputs.jsonl (each built pair's files, with
their sizes and sha256), where PIPELINE's [input] says they are (local folders or s3://, gs://,
az:// URLs), and names each file whose bytes changed since the build, or that is gone.

Exits 0 when every input is as the build read it, 1 when any changed.

  segprep verify pipeline.toml
  segprep verify pipeline.toml --out s3://bucket/datasets/camvid")]
    Verify(VerifyArgs),
    /// Write a commented starter pipeline.
    #[command(long_about = "\
Writes DIR/pipeline.toml (DIR defaults to the current folder): a commented starter pipeline
listing every section and option. Edit the paths and the label format, then run
`segprep check DIR/pipeline.toml`.")]
    Init(InitArgs),
    /// The class-imbalance report: counts, shares, weights, a plot.
    #[command(long_about = STATS_HELP)]
    Stats(StatsArgs),
    /// A contact sheet of samples after every stage, labels drawn over images.
    #[command(long_about = "\
Runs the pipeline on the first samples of a split (augmented copies included) and writes a PNG
contact sheet: each sample scaled to fit 192 pixels, its label drawn over it in the class colours
(declared colours, else a fixed palette; ignore pixels show the image), its key under it, and a
legend of class ids, names and colours. Nothing else is written.

Example:
  segprep preview pipeline.toml --n 16 --out preview.png")]
    Preview(PreviewArgs),
    /// Prepare new images exactly as a build prepared its training samples.
    #[command(long_about = APPLY_HELP)]
    Apply(ApplyArgs),
    /// Take predictions on applied images back to the original images' pixels.
    #[command(long_about = RESTORE_HELP)]
    Restore(RestoreArgs),
    /// Print a shell completion script.
    #[command(long_about = "\
Prints a completion script for SHELL, generated from the same definition as --help.

  segprep completions bash > ~/.local/share/bash-completion/completions/segprep
  segprep completions zsh > \"${fpath[1]}/_segprep\"
  segprep completions fish > ~/.config/fish/completions/segprep.fish")]
    Completions(CompletionsArgs),
    /// Print the man page (or write one per command into a folder).
    #[command(long_about = "\
Prints segprep(1) in roff, generated from the same definition as --help; with --out DIR writes
segprep.1 and one page per command (segprep-build.1, ...) into DIR.

  segprep man | man -l -
  segprep man --out ~/.local/share/man/man1")]
    Man(ManArgs),
}

const MERGE_HELP: &str = "\
Joins what N workers built into one dataset, identical to a single-machine build: checks that
every logical shard has its record and that every file has the size and sha256 recorded, sums the
per-shard class counts (exact integers) into stats.json, writes errors.jsonl, inputs.jsonl (every
pair's input files with their sha256, for `segprep verify`) and, last, index.json. Missing shards
are listed (shard s belongs to worker s % W); rerun those workers, which build only what is
missing, and merge again. Writes nothing to the shards.

  segprep merge out/my-dataset";

const APPLY_HELP: &str = "\
Runs a finished build's deterministic image stages on new images, with the exact values recorded
in BUILD_DIR/index.json: decoding rules (alpha, EXIF, channels, bands), resize, pad, rescale and
standardize (the dataset mean and std the build measured included). Never augment, never remap;
no labels needed. An image that was in the build comes out byte-identical to its sample in the
shards (for an augmented split, to the sample before augmentation).

Images are found as the build found them (key = relative path minus extension and image_suffix);
a build with band folders takes one --images per band, in the same order.

Writes into --out:
  apply-NNNNN.npz   image (N,H,W,C) as in the shards, key (N,), image_mean/image_std (N,) with
                    per-image standardization; up to --batch images of one size per file
                    (or <key>.npy (H,W,C) per image with --format npy)
  samples.jsonl     per image: key, files, output file and row, original_size [w,h], size [w,h],
                    EXIF orientation applied, geometry (resize/pad/crop steps), standardization
  apply.json        the build, its pipeline hash, counts; written last

Example:
  segprep apply out/camvid --images field-photos --out prepared";

const RESTORE_HELP: &str = "\
Undoes the geometry `segprep apply` recorded (samples.jsonl), step by step in reverse: a pad is
cropped away, a resize resampled back (class ids nearest, probabilities bilinear), a `fill` crop
put back on its canvas (pixels it cut away become the ignore index). The result has each image's
original size.

Predictions (in --predictions), per image key, any of:
  <key>.png   class ids, 8/16-bit grey or palette PNG
  <key>.npy   (H,W) integer class ids, or (H,W,K) / (K,H,W) float probabilities, channel k being
              the k-th class of the build (argmax taken after resampling)
  apply-NNNNN.npy   a stack for one applied NPZ file: (N,H,W) ids or (N,H,W,K) / (N,K,H,W)

Writes <key>.png (class ids, 8-bit when every id and the ignore index fit) and <key>_color.png
(the build's class colours, ignore black); --probabilities adds <key>_prob.npy (H,W,K) float32.
Every id is checked against the build's classes.

Example:
  segprep restore out/camvid --predictions predicted --applied prepared --out restored";

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// A finished build folder (holding index.json).
    pub build: PathBuf,
    /// The images (a folder, searched recursively); repeat once per band folder of the build.
    #[arg(long, required = true)]
    pub images: Vec<PathBuf>,
    /// Output folder (new, empty, or an earlier apply output).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "npz")]
    pub format: crate::inference::apply::ApplyFormat,
    /// Images per NPZ file (and per parallel batch).
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Worker threads (default: all cores). Does not change the output.
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
    /// Accept a build made by another segprep version.
    #[arg(long)]
    pub any_version: bool,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The build the applied images were prepared with.
    pub build: PathBuf,
    /// The model's predictions (see above for names and shapes).
    #[arg(long)]
    pub predictions: PathBuf,
    /// The `segprep apply` output folder (default: the predictions folder, if samples.jsonl and
    /// apply.json were copied there).
    #[arg(long)]
    pub applied: Option<PathBuf>,
    /// Output folder for <key>.png and <key>_color.png.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the restored probabilities as <key>_prob.npy (H,W,K) float32.
    #[arg(long)]
    pub probabilities: bool,
    /// Leave out images without a prediction instead of stopping.
    #[arg(long)]
    pub skip_missing: bool,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
    /// Accept a build made by another segprep version.
    #[arg(long)]
    pub any_version: bool,
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write segprep.1 and segprep-<command>.1 into this folder instead of printing segprep.1.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// The pipeline file (TOML).
    pub pipeline: PathBuf,
    /// How many samples to show.
    #[arg(long, default_value_t = 16)]
    pub n: usize,
    /// The PNG to write.
    #[arg(long, default_value = "preview.png")]
    pub out: PathBuf,
    /// The split to show.
    #[arg(long, default_value = "train")]
    pub split: String,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
}

const STATS_HELP: &str = "\
The class-imbalance report, per split and class: pixels and their share of the labelled pixels,
images containing the class and the labelled pixels of those images, ignore and pad pixels apart,
absent and rare classes, the imbalance ratio (most / least frequent present class), the pixel
accuracy of always predicting the majority class, class weights, and data-quality findings
(undeclared values, single-class labels, all-ignore labels, unreadable files).

TARGET is either
  a pipeline file: counts its input, decoding labels only and mapping them through the remap
    stages (before- and after-remap counts are both shown); --geometry runs every stage instead
    (images decoded too, padding counted);
  a build folder: reads its stats.json; --recompute recounts from the NPZ or Parquet shards and
    says whether they agree with stats.json (exit 1 if not). The shards hold pad and undeclared
    pixels as the ignore index, so those are compared as one sum.

Class weights (N_c pixels of class c, N their sum over the K present classes, p_c = N_c / N;
absent classes get 0):
  w_inv   normalised inverse frequency: N / (K * N_c)  (pixel-weighted mean weight 1)
  w_med   median frequency balancing (Eigen & Fergus): f_c = N_c / S_c, S_c the labelled pixels
          of the images containing c; w_c = median(f) / f_c
  w_enet  ENet (Paszke et al.): 1 / ln(1.02 + p_c)
  w_eff   effective number of samples (Cui et al. 2019) on n_c, the images containing c:
          (1 - beta) / (1 - beta^n_c), scaled to sum to K; computed with expm1, no underflow

Examples:
  segprep stats pipelines/quickstart.toml
  segprep stats out/quickstart --recompute --format json --out stats-report.json
  segprep stats pipeline.toml --format csv --out balance.csv --plot balance.svg

As worker I of W of a sharded build (docs/scale.md) with standardize mode = \"dataset\",
`--worker I/W --num-shards N` measures the train moments of that worker's shards and saves them in
the build folder (--build-dir, default [output] dir) for the build workers; it prints no report.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsFormat {
    /// Aligned table with a bar per class (coloured on a terminal).
    Table,
    Json,
    Csv,
    Parquet,
    Markdown,
}

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// A pipeline file (counts its input) or a build folder (reads or recounts its output).
    pub target: PathBuf,
    #[arg(long, value_enum, default_value = "table")]
    pub format: StatsFormat,
    /// Write the report to this file instead of standard output (needed for parquet).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write a bar chart of class shares per split (log scale) to this .svg file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Pipeline file: run every stage (resize, pad, ...), not only remaps.
    #[arg(long)]
    pub geometry: bool,
    /// Build folder: recount from the shards and compare with stats.json.
    #[arg(long)]
    pub recompute: bool,
    /// Flag a class as rare under this share of a split's labelled pixels.
    #[arg(long, default_value_t = crate::stats::report::DEFAULT_RARE)]
    pub rare: f64,
    /// beta of the effective-number weights.
    #[arg(long, default_value_t = crate::stats::weights::DEFAULT_BETA)]
    pub beta: f64,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
    /// Pipeline file, as a worker of a sharded build: measure the train moments of this worker's
    /// shards (standardize mode = "dataset") and save them in the build folder.
    #[command(flatten)]
    pub sharding: ShardingArgs,
    /// With --worker: the build's output folder, overriding [output] dir.
    #[arg(long, value_name = "DIR")]
    pub build_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The output folder the workers wrote into.
    pub dir: PathBuf,
    /// Threads used to verify the shards' sha256 (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The pipeline file the build was made from: where the inputs are.
    pub pipeline: PathBuf,
    /// The build (default: the pipeline's [output] dir).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Threads hashing the inputs (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// The build's URL (the --out a build or its workers wrote to).
    pub url: String,
    /// The local folder to copy it into.
    #[arg(long)]
    pub to: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The pipeline file (TOML).
    pub pipeline: PathBuf,
    /// Worker threads (default: all cores); shards are written by one more thread beside them.
    /// Does not change the output.
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
    /// Output folder, overriding [output] dir.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace a previous build in the output folder (only its recorded files are removed).
    #[arg(long)]
    pub force: bool,
    /// Stop before the augment stage and store the prepared originals, which
    /// `segprep.Pipeline(PIPELINE, prepared=OUT)` augments live in a data loader, fresh every
    /// epoch (as [output] augment = "online" in the file).
    #[arg(long)]
    pub augment_online: bool,
    #[command(flatten)]
    pub sharding: ShardingArgs,
}

/// How a build is cut into logical shards and which of them this process builds.
#[derive(Debug, clap::Args)]
pub struct ShardingArgs {
    /// Fix the number of shards over all splits (overrides [output] num_shards and shard sizes).
    /// Workers need it: every worker must give the same N.
    #[arg(long, value_name = "N")]
    pub num_shards: Option<usize>,
    /// This process is worker I of W: it handles only the shards s with s % W == I. Without a
    /// value, the identity must come from the scheduler's variables (which a build also reads
    /// when --worker is absent).
    #[arg(long, value_name = "I/W", num_args = 0..=1, default_missing_value = crate::engine::worker::FROM_ENV)]
    pub worker: Option<String>,
    /// The worker count where the scheduler gives only an index (JOB_COMPLETION_INDEX).
    #[arg(long, value_name = "W")]
    pub workers: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The pipeline file (TOML).
    pub pipeline: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Folder to write pipeline.toml into.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite an existing pipeline.toml.
    #[arg(long)]
    pub force: bool,
}

/// Loads a pipeline file and says which URL inputs were mirrored, and where.
fn load_pipeline(path: &std::path::Path) -> Result<crate::pipeline::Pipeline> {
    let p = crate::pipeline::load(path)?;
    for m in &p.mirrored {
        eprintln!("{m}");
    }
    Ok(p)
}

/// Says what this run fetched of its object-store inputs (mirrors keep the rest for later runs).
fn report_fetched() {
    for (url, objects, bytes) in crate::storage::mirror::fetched() {
        eprintln!("fetched {objects} object(s), {bytes} bytes, of {url}");
    }
}

/// Runs a command; returns the exit status for a run that completed (check may report problems).
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Build(a) => build::run(a),
        Command::Merge(a) => merge::run(a),
        Command::Fetch(a) => fetch::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Check(a) => check::run(a),
        Command::Init(a) => init::run(a),
        Command::Stats(a) => stats::run(a),
        Command::Preview(a) => preview::run(a),
        Command::Apply(a) => apply::run(a),
        Command::Restore(a) => restore::run(a),
        Command::Completions(a) => completions::completions(a),
        Command::Man(a) => completions::man(a),
    }
}
