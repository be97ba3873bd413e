//! One error type for the whole library. Every variant names what went wrong and where, so the CLI
//! only has to print it; `exit_code` maps it to the documented exit status.
use std::fmt;
use std::path::{Path, PathBuf};

/// Exit status for data problems (bad or missing input files, unwritable output).
pub const EXIT_DATA: i32 = 1;
/// Exit status for usage and pipeline-file problems.
pub const EXIT_USAGE: i32 = 2;
/// Exit status for environment problems: the output could not be written (disk full, a read-only
/// or unusable folder, a name taken by a folder) or an object store could not be reached or
/// refused a call.
pub const EXIT_OUTPUT: i32 = 3;

#[derive(Debug)]
pub enum Error {
    /// The pipeline file is wrong: every problem found, each already prefixed with file:line where known.
    Pipeline {
        file: PathBuf,
        problems: Vec<String>,
    },
    /// The command line is wrong.
    Usage(String),
    /// One input or output file could not be used.
    Data {
        file: PathBuf,
        stage: String,
        message: String,
    },
    /// The output could not be written; the inputs are not at fault.
    Output {
        file: PathBuf,
        stage: String,
        message: String,
    },
    /// Several data problems found at once (unpaired files, many bad samples).
    DataSet {
        summary: String,
        problems: Vec<Error>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn data(file: impl AsRef<Path>, stage: &str, message: impl Into<String>) -> Self {
        Error::Data {
            file: file.as_ref().to_path_buf(),
            stage: stage.to_string(),
            message: message.into(),
        }
    }

    pub fn io(file: impl AsRef<Path>, stage: &str, err: std::io::Error) -> Self {
        Self::data(file, stage, err.to_string())
    }

    pub fn output(file: impl AsRef<Path>, stage: &str, message: impl Into<String>) -> Self {
        Error::Output {
            file: file.as_ref().to_path_buf(),
            stage: stage.to_string(),
            message: message.into(),
        }
    }

    /// A failed write of an output file.
    pub fn write(file: impl AsRef<Path>, err: std::io::Error) -> Self {
        Self::output(file, "write", err.to_string())
    }

    pub fn pipeline(file: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error::Pipeline {
            file: file.as_ref().to_path_buf(),
            problems: vec![problem.into()],
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Pipeline { .. } | Error::Usage(_) => EXIT_USAGE,
            Error::Data { .. } | Error::DataSet { .. } => EXIT_DATA,
            Error::Output { .. } => EXIT_OUTPUT,
        }
    }
}

/// How many problems of a set are printed before "... and N more".
const SHOWN_PROBLEMS: usize = 20;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Pipeline { file, problems } => {
                write!(f, "pipeline {} is not valid:", file.display())?;
                for p in problems {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
            Error::Usage(msg) => write!(f, "{msg}"),
            Error::Data {
                file,
                stage,
                message,
            }
            | Error::Output {
                file,
                stage,
                message,
            } => write!(f, "{}: [{stage}] {message}", file.display()),
            Error::DataSet { summary, problems } => {
                write!(f, "{summary}")?;
                for p in problems.iter().take(SHOWN_PROBLEMS) {
                    write!(f, "\n  - {p}")?;
                }
                if problems.len() > SHOWN_PROBLEMS {
                    write!(f, "\n  ... and {} more", problems.len() - SHOWN_PROBLEMS)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {}
