//! Who this process is among N independent workers: from `--worker I/W`, else from the variables
//! the usual schedulers set. Worker `i` of `W` builds the logical shards `s` with `s % W == i`;
//! there is no coordinator, so the identity is all a worker needs.
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    pub index: usize,
    pub count: usize,
    /// Where the identity came from, for the log: `--worker` or the variable names.
    pub source: String,
}

impl Worker {
    /// Whether this worker builds logical shard `shard`.
    pub fn owns(&self, shard: usize) -> bool {
        shard % self.count == self.index
    }
}

/// `--worker` given without a value: the identity must come from the environment.
pub const FROM_ENV: &str = "env";

/// The scheduler variables, in the order they are consulted.
pub const ENV_SOURCES: [&str; 5] = [
    "SEGPREP_WORKER_INDEX",
    "JOB_COMPLETION_INDEX",
    "SLURM_ARRAY_TASK_ID",
    "AWS_BATCH_JOB_ARRAY_INDEX",
    "BATCH_TASK_INDEX",
];

/// The worker identity: `flag` ("I/W") first, then the environment (`count` from `--workers` where
/// the scheduler gives only an index). `None` when nothing names a worker: a single-machine build.
pub fn identify(
    flag: Option<&str>,
    count: Option<usize>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Worker>> {
    if let Some(flag) = flag.filter(|f| *f != FROM_ENV) {
        return parse_flag(flag).map(Some);
    }
    let found = from_env(count, env)?;
    if found.is_none() && (count.is_some() || flag.is_some()) {
        return Err(Error::Usage(format!(
            "--workers is set but no worker index was found: pass --worker I/W, or run under a scheduler that sets one of {}",
            ENV_SOURCES.join(", ")
        )));
    }
    found.map(check).transpose()
}

/// The identity from the real environment.
pub fn identify_from_process(flag: Option<&str>, count: Option<usize>) -> Result<Option<Worker>> {
    identify(flag, count, &|name| std::env::var(name).ok())
}

fn parse_flag(flag: &str) -> Result<Worker> {
    let bad = || {
        Error::Usage(format!(
            "--worker takes INDEX/COUNT with 0 <= INDEX < COUNT (e.g. --worker 0/4), not {flag:?}"
        ))
    };
    let (i, w) = flag.split_once('/').ok_or_else(bad)?;
    let worker = Worker {
        index: i.trim().parse().map_err(|_| bad())?,
        count: w.trim().parse().map_err(|_| bad())?,
        source: "--worker".into(),
    };
    check(worker)
}

fn check(w: Worker) -> Result<Worker> {
    if w.count == 0 || w.index >= w.count {
        return Err(Error::Usage(format!(
            "worker index {} is not below the worker count {} (from {}); indices run from 0 to count - 1",
            w.index, w.count, w.source
        )));
    }
    Ok(w)
}

fn from_env(count: Option<usize>, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Worker>> {
    let number = |name: &str| -> Result<Option<usize>> {
        env(name)
            .map(|v| {
                v.trim().parse::<usize>().map_err(|_| {
                    Error::Usage(format!("{name}={v:?} is not a non-negative integer"))
                })
            })
            .transpose()
    };
    let pair = |index: &str, total: Option<&str>| -> Result<Option<Worker>> {
        let Some(i) = number(index)? else {
            return Ok(None);
        };
        let (w, source) = match (total.map(number).transpose()?.flatten(), count) {
            (Some(w), _) => (w, format!("{index}, {}", total.unwrap_or_default())),
            (None, Some(w)) => (w, format!("{index}, --workers")),
            (None, None) => {
                let hint = total.map_or(String::new(), |t| format!(" or set {t}"));
                return Err(Error::Usage(format!(
                    "{index} is set but the worker count is not: pass --workers N{hint}"
                )));
            }
        };
        Ok(Some(Worker {
            index: i,
            count: w,
            source,
        }))
    };
    if let Some(w) = pair("SEGPREP_WORKER_INDEX", Some("SEGPREP_WORKER_COUNT"))? {
        return Ok(Some(w));
    }
    // a Kubernetes Indexed Job gives only the index; the count is the Job's `completions`
    if let Some(w) = pair("JOB_COMPLETION_INDEX", None)? {
        return Ok(Some(w));
    }
    if let Some(w) = slurm(&number)? {
        return Ok(Some(w));
    }
    if let Some(w) = pair(
        "AWS_BATCH_JOB_ARRAY_INDEX",
        Some("AWS_BATCH_JOB_ARRAY_SIZE"),
    )? {
        return Ok(Some(w));
    }
    pair("BATCH_TASK_INDEX", Some("BATCH_TASK_COUNT"))
}

/// A Slurm array `--array=MIN-MAX` with step 1: index = ID - MIN, count = COUNT. Other shapes
/// (a step, a list with gaps) would leave shards unbuilt, so they are refused.
fn slurm(number: &dyn Fn(&str) -> Result<Option<usize>>) -> Result<Option<Worker>> {
    let Some(id) = number("SLURM_ARRAY_TASK_ID")? else {
        return Ok(None);
    };
    let need = |name: &str| {
        number(name)?.ok_or_else(|| {
            Error::Usage(format!(
                "SLURM_ARRAY_TASK_ID is set but {name} is not; run as a Slurm job array (sbatch --array=0-N)"
            ))
        })
    };
    let (min, max, count) = (
        need("SLURM_ARRAY_TASK_MIN")?,
        need("SLURM_ARRAY_TASK_MAX")?,
        need("SLURM_ARRAY_TASK_COUNT")?,
    );
    let step = number("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1);
    if step != 1 || max + 1 != min + count || id < min {
        return Err(Error::Usage(format!(
            "the Slurm array must be a range with step 1 (like --array=0-{}), but it has MIN={min} MAX={max} STEP={step} COUNT={count}; workers would leave shards unbuilt",
            count.max(1) - 1
        )));
    }
    Ok(Some(Worker {
        index: id - min,
        count,
        source: "SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT".into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(
        vars: &[(&str, &str)],
        flag: Option<&str>,
        count: Option<usize>,
    ) -> Result<Option<Worker>> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        identify(flag, count, &|name| map.get(name).cloned())
    }

    fn at(vars: &[(&str, &str)], count: Option<usize>) -> (usize, usize) {
        let w = with(vars, None, count).unwrap().unwrap();
        (w.index, w.count)
    }

    #[test]
    fn the_flag_wins_over_the_environment() {
        let w = with(
            &[("SEGPREP_WORKER_INDEX", "1"), ("SEGPREP_WORKER_COUNT", "2")],
            Some("3/4"),
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!((w.index, w.count, w.source.as_str()), (3, 4, "--worker"));
        assert!(with(&[], Some("4/4"), None).is_err());
        assert!(with(&[], Some("1-4"), None).is_err());
        assert!(with(&[], Some("0/0"), None).is_err());
    }

    #[test]
    fn no_flag_and_no_variable_is_a_single_machine_build() {
        assert_eq!(with(&[], None, None).unwrap(), None);
        assert!(
            with(&[], None, Some(4)).is_err(),
            "--workers alone names no index"
        );
        assert!(
            with(&[], Some(FROM_ENV), None).is_err(),
            "--worker insists on an identity"
        );
        let from_env = with(
            &[("BATCH_TASK_INDEX", "1"), ("BATCH_TASK_COUNT", "2")],
            Some(FROM_ENV),
            None,
        );
        assert_eq!(from_env.unwrap().unwrap().index, 1);
    }

    #[test]
    fn variables_are_consulted_in_the_documented_order() {
        let all = [
            ("SEGPREP_WORKER_INDEX", "1"),
            ("SEGPREP_WORKER_COUNT", "7"),
            ("JOB_COMPLETION_INDEX", "2"),
            ("SLURM_ARRAY_TASK_ID", "13"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_MAX", "17"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
            ("AWS_BATCH_JOB_ARRAY_INDEX", "4"),
            ("AWS_BATCH_JOB_ARRAY_SIZE", "9"),
            ("BATCH_TASK_INDEX", "5"),
            ("BATCH_TASK_COUNT", "6"),
        ];
        assert_eq!(at(&all, Some(3)), (1, 7));
        assert_eq!(
            at(&all[2..], Some(3)),
            (2, 3),
            "Kubernetes: count from --workers"
        );
        assert_eq!(at(&all[3..], None), (3, 8), "Slurm: ID - MIN, COUNT");
        assert_eq!(at(&all[7..], None), (4, 9));
        assert_eq!(at(&all[9..], None), (5, 6));
    }

    #[test]
    fn missing_counts_and_odd_slurm_arrays_are_errors() {
        assert!(with(&[("JOB_COMPLETION_INDEX", "2")], None, None).is_err());
        assert!(with(
            &[("SEGPREP_WORKER_INDEX", "x"), ("SEGPREP_WORKER_COUNT", "2")],
            None,
            None
        )
        .is_err());
        let slurm = |step: &str, max: &str| {
            with(
                &[
                    ("SLURM_ARRAY_TASK_ID", "2"),
                    ("SLURM_ARRAY_TASK_MIN", "0"),
                    ("SLURM_ARRAY_TASK_MAX", max),
                    ("SLURM_ARRAY_TASK_COUNT", "4"),
                    ("SLURM_ARRAY_TASK_STEP", step),
                ],
                None,
                None,
            )
        };
        assert_eq!(slurm("1", "3").unwrap().unwrap().index, 2);
        let e = slurm("2", "6").unwrap_err().to_string();
        assert!(e.contains("step 1"), "{e}");
        assert!(slurm("1", "5").is_err(), "a list with gaps (0,1,2,5)");
        assert!(with(
            &[("BATCH_TASK_INDEX", "6"), ("BATCH_TASK_COUNT", "6")],
            None,
            None
        )
        .is_err());
    }

    #[test]
    fn shards_go_round_robin() {
        let w = Worker {
            index: 1,
            count: 3,
            source: String::new(),
        };
        let owned: Vec<usize> = (0..8).filter(|&s| w.owns(s)).collect();
        assert_eq!(owned, [1, 4, 7]);
    }
}
