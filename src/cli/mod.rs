//! The command line: argument definitions and one small file per subcommand. Nothing below this
//! module prints or exits.
mod build;
mod check;
mod init;
mod progress_bar;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

use crate::error::Result;

const ABOUT: &str =
    "Turns raw semantic-segmentation data (image/label pairs) into model-ready shards.";

const LONG_ABOUT: &str = "\
Turns raw semantic-segmentation data (image/label pairs) into model-ready shards.

A pipeline file (TOML) says where the pairs are, how labels are encoded, which stages to run
(remap, resize, pad, standardize), how to split, and where to write. Start with:

  segprep init my-dataset        # writes my-dataset/pipeline.toml, commented
  segprep check my-dataset/pipeline.toml   # what would a build meet? writes nothing
  segprep build my-dataset/pipeline.toml   # write the shards

Exit status: 0 success, 1 data problem (bad or missing files), 2 usage or pipeline-file problem.";

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
  image (N,H,W,C) u8/u16 (f32 when standardized), label (N,H,W) u8/u16, key (N,) str")]
    Build(BuildArgs),
    /// Dry run: report what a build would meet, write nothing.
    #[command(long_about = "\
Dry run: reads every image header and every label, writes nothing, and reports pairs found,
unpaired files on each side by name, image modes and sizes, image/label size mismatches, and the
label values or colours seen with the class each maps to (or UNMAPPED).

Exits 1 when a build would stop on what it found, 0 otherwise.")]
    Check(CheckArgs),
    /// Write a commented starter pipeline.
    #[command(long_about = "\
Writes DIR/pipeline.toml (DIR defaults to the current folder): a commented starter pipeline
listing every section and option. Edit the paths and the label format, then run
`segprep check DIR/pipeline.toml`.")]
    Init(InitArgs),
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The pipeline file (TOML).
    pub pipeline: PathBuf,
    /// Worker threads (default: all cores). Does not change the output.
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
    /// Output folder, overriding [output] dir.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace a previous build in the output folder (only its recorded files are removed).
    #[arg(long)]
    pub force: bool,
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

/// Runs a command; returns the exit status for a run that completed (check may report problems).
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Build(a) => build::run(a),
        Command::Check(a) => check::run(a),
        Command::Init(a) => init::run(a),
    }
}
