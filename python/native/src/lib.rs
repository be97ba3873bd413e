//! `segprep._native`: the live pipeline (`segprep.Pipeline` wraps `Pipeline` here) and the
//! `segprep` command, both from the one Rust library. Arrays cross as bytes plus dtype and shape;
//! the Python package makes them numpy arrays (one copy, no numpy at build time). Work runs with
//! the GIL released; batches run on a thread pool made in the process that uses it, so a pool
//! never crosses a fork.
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict, PyList, PyTuple};
use rayon::prelude::*;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use segprep::error::Error;
use segprep::online::{Online, OutputSample, Prepared};
use segprep::progress::Silent;
use segprep::sample::{Image, LabelMap, PixelType, Pixels, Standardization};

#[pyclass(module = "segprep._native", frozen)]
struct Pipeline {
    online: Online,
    /// Threads of `batch` (0: one per core).
    threads: usize,
    /// The batch pool and the process that made it.
    pool: Mutex<Option<(u32, Arc<rayon::ThreadPool>)>>,
}

#[pymethods]
impl Pipeline {
    /// `augment_online`: as `segprep build --augment-online`, the stages from augment on are the
    /// data loader's (what `finish_prepared` runs).
    #[new]
    #[pyo3(signature = (path, threads = 0, augment_online = false))]
    fn new(py: Python<'_>, path: PathBuf, threads: usize, augment_online: bool) -> PyResult<Self> {
        let pool = Arc::new(make_pool(threads)?);
        // dataset-wide standardization measures the train split on this pool, not rayon's global one
        let online = py
            .detach(|| pool.install(|| Online::open(&path, augment_online, &Silent)))
            .map_err(|e| to_python(py, e))?;
        Ok(Pipeline {
            online,
            threads,
            pool: Mutex::new(Some((std::process::id(), pool))),
        })
    }

    /// The split names, in the build's order.
    fn splits(&self) -> Vec<String> {
        self.online
            .split_names()
            .into_iter()
            .map(String::from)
            .collect()
    }

    /// The keys of `split` in the order a build writes them.
    fn keys(&self, py: Python<'_>, split: &str) -> PyResult<Vec<String>> {
        let keys = self.online.keys(split).map_err(|e| to_python(py, e))?;
        Ok(keys.into_iter().map(String::from).collect())
    }

    /// Samples a build writes per key of `split` (the original and its copies).
    fn copies_per_key(&self, split: &str) -> usize {
        self.online.copies_per_key(split)
    }

    /// Whether an augment stage draws copies of `split`.
    fn augments(&self, split: &str) -> bool {
        self.online.augments(split)
    }

    /// (id, name, colour or None) of every class the samples hold.
    fn classes(&self) -> Vec<(u16, String, Option<[u8; 3]>)> {
        let p = self.online.pipeline();
        p.classes
            .classes
            .iter()
            .map(|c| (c.id, c.name.clone(), c.color))
            .collect()
    }

    #[getter]
    fn ignore_index(&self) -> u16 {
        self.online.pipeline().classes.ignore_index
    }

    #[getter]
    fn file(&self) -> PathBuf {
        self.online.pipeline().file.clone()
    }

    /// The pipeline as index.json records it (`pipeline`), as JSON.
    fn config_json(&self) -> String {
        serde_json_string(&self.online.pipeline().config)
    }

    /// sha256 of the pipeline as written: the `pipeline_hash` of a build from it.
    #[getter]
    fn hash(&self) -> String {
        self.online.pipeline().hash.clone()
    }

    /// Copy `copy` of `key` as a build stores it: a dict of raw parts (`image` bytes with
    /// `image_dtype` and `image_shape`, the same for `label`, `key`, `augment`, `image_mean`,
    /// `image_std`).
    fn sample<'py>(&self, py: Python<'py>, key: &str, copy: u32) -> PyResult<Bound<'py, PyDict>> {
        let s = py
            .detach(|| self.online.sample(key, copy))
            .map_err(|e| to_python(py, e))?;
        let parts = PyDict::new(py);
        parts.set_item("image", PyByteArray::new(py, &s.image))?;
        parts.set_item("image_shape", PyTuple::new(py, s.image_shape)?)?;
        parts.set_item("label", PyByteArray::new(py, &s.label))?;
        parts.set_item("label_shape", PyTuple::new(py, s.label_shape)?)?;
        set_small(&parts, &s)?;
        parts.set_item("key", &s.key)?;
        parts.set_item("augment", &s.augment)?;
        parts.set_item("image_mean", s.standardization.map(|v| v.0))?;
        parts.set_item("image_std", s.standardization.map(|v| v.1))?;
        Ok(parts)
    }

    /// Copy `copy` of each key, made in parallel on segprep's threads with the GIL released, and
    /// stacked in the order given: the same raw parts as `sample`, with a leading batch axis and
    /// lists for `key`, `augment`, `image_mean` and `image_std`.
    fn batch<'py>(
        &self,
        py: Python<'py>,
        keys: Vec<String>,
        copy: u32,
    ) -> PyResult<Bound<'py, PyDict>> {
        if keys.is_empty() {
            return Err(PyValueError::new_err("an empty batch"));
        }
        let pool = self.pool()?;
        let samples = py
            .detach(|| pool.install(|| self.online.batch(&keys, copy)))
            .map_err(|e| to_python(py, e))?;
        stacked(py, samples)
    }

    /// Copy `copy` of each prepared sample (stacked as `batch` gives them: `image` (N,H,W,C) in
    /// `image_dtype`, `label` (N,H,W) in `label_dtype`, per-image standardization values if any), read
    /// from a build of this pipeline with `[output] augment = "online"`: the stages left to the data
    /// loader run on them in parallel, with the GIL released. Stacked as `batch` gives them.
    #[pyo3(signature = (keys, copy, image, image_shape, image_dtype, label, label_dtype, standardization = None))]
    #[allow(clippy::too_many_arguments)]
    fn finish_prepared<'py>(
        &self,
        py: Python<'py>,
        keys: Vec<String>,
        copy: u32,
        image: &[u8],
        image_shape: [usize; 4],
        image_dtype: &str,
        label: &[u8],
        label_dtype: &str,
        standardization: Option<Vec<(f64, f64)>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let prepared = prepared_samples(
            keys,
            (image, image_shape, image_dtype),
            (label, label_dtype),
            standardization,
        )?;
        let pool = self.pool()?;
        let samples = py
            .detach(|| {
                pool.install(|| {
                    prepared
                        .into_par_iter()
                        .map(|p| self.online.finish_prepared(p, copy))
                        .collect::<segprep::error::Result<Vec<_>>>()
                })
            })
            .map_err(|e| to_python(py, e))?;
        stacked(py, samples)
    }

    /// The class-balance report of the pipeline's input after every stage (what `segprep stats
    /// PIPELINE --geometry --format json` prints), as JSON.
    fn stats_json(&self, py: Python<'_>) -> PyResult<String> {
        let pool = self.pool()?;
        let file = self.online.pipeline().file.clone();
        py.detach(|| pool.install(|| segprep::measure::json_report(&file, true, &Silent)))
            .map_err(|e| to_python(py, e))
    }
}

impl Pipeline {
    /// The pool of this process, made on first use and again after a fork (a pool made before a
    /// fork has no threads in the child).
    fn pool(&self) -> PyResult<Arc<rayon::ThreadPool>> {
        let pid = std::process::id();
        let mut slot = self
            .pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((owner, pool)) = slot.as_ref() {
            if *owner == pid {
                return Ok(pool.clone());
            }
        }
        // its threads stayed in the parent: dropping it here would signal threads that do not exist
        std::mem::forget(slot.take());
        let pool = Arc::new(make_pool(self.threads)?);
        *slot = Some((pid, pool.clone()));
        Ok(pool)
    }
}

/// Samples stacked along a new first axis, as raw parts (see `Pipeline.batch`).
fn stacked(py: Python<'_>, samples: Vec<OutputSample>) -> PyResult<Bound<'_, PyDict>> {
    let first = &samples[0];
    if let Some(odd) = samples.iter().find(|s| s.image_shape != first.image_shape) {
        return Err(PyValueError::new_err(format!(
            "cannot stack a batch of different sizes: {} is {:?}, {} is {:?}; add a resize stage, or take samples one by one",
            first.key, first.image_shape, odd.key, odd.image_shape
        )));
    }
    let n = samples.len();
    let [h, w, c] = first.image_shape;
    let images = py.detach(|| concat(samples.iter().map(|s| &s.image)));
    let labels = py.detach(|| concat(samples.iter().map(|s| &s.label)));
    let parts = PyDict::new(py);
    parts.set_item("image", PyByteArray::new(py, &images))?;
    parts.set_item("image_shape", PyTuple::new(py, [n, h, w, c])?)?;
    parts.set_item("label", PyByteArray::new(py, &labels))?;
    parts.set_item("label_shape", PyTuple::new(py, [n, h, w])?)?;
    set_small(&parts, first)?;
    let list = |f: &dyn Fn(&OutputSample) -> PyResult<Py<PyAny>>| -> PyResult<_> {
        let items: PyResult<Vec<Py<PyAny>>> = samples.iter().map(f).collect();
        PyList::new(py, items?)
    };
    parts.set_item(
        "key",
        list(&|s| Ok(s.key.clone().into_pyobject(py)?.into_any().unbind()))?,
    )?;
    if first.augment.is_some() {
        parts.set_item(
            "augment",
            list(&|s| Ok(s.augment.clone().into_pyobject(py)?.into_any().unbind()))?,
        )?;
    }
    if first.standardization.is_some() {
        let value = |i: usize| {
            move |s: &OutputSample| -> PyResult<Py<PyAny>> {
                let v = s.standardization.map(|m| if i == 0 { m.0 } else { m.1 });
                Ok(v.into_pyobject(py)?.into_any().unbind())
            }
        };
        parts.set_item("image_mean", list(&value(0))?)?;
        parts.set_item("image_std", list(&value(1))?)?;
    }
    Ok(parts)
}

/// Prepared samples from stacked bytes: images in their dtype, labels in the build's label dtype.
fn prepared_samples(
    keys: Vec<String>,
    (image, [n, h, w, c], image_dtype): (&[u8], [usize; 4], &str),
    (label, label_dtype): (&[u8], &str),
    standardization: Option<Vec<(f64, f64)>>,
) -> PyResult<Vec<Prepared>> {
    let image_type = PixelType::of_numpy(image_dtype).ok_or_else(|| {
        PyValueError::new_err(format!("image dtype {image_dtype}: not u8, u16 or f32"))
    })?;
    let label_size = match label_dtype {
        "|u1" => 1,
        "<u2" => 2,
        other => {
            return Err(PyValueError::new_err(format!(
                "label dtype {other}: not u8 or u16"
            )))
        }
    };
    let per_image = h * w * c * image_type.size();
    if keys.len() != n || image.len() != n * per_image || label.len() != n * h * w * label_size {
        return Err(PyValueError::new_err(format!(
            "{} keys, {} image bytes and {} label bytes do not make {n} samples of {h}x{w}x{c}",
            keys.len(),
            image.len(),
            label.len()
        )));
    }
    let values = standardization.map(|v| v.into_iter().map(Some).collect::<Vec<_>>());
    Ok(keys
        .into_iter()
        .enumerate()
        .map(|(i, key)| {
            let pixels = &image[i * per_image..(i + 1) * per_image];
            let ids = &label[i * h * w * label_size..(i + 1) * h * w * label_size];
            Prepared {
                key,
                image: Image {
                    width: w as u32,
                    height: h as u32,
                    bands: c,
                    pixels: Pixels::from_le_bytes(image_type, pixels),
                },
                label: LabelMap {
                    width: w as u32,
                    height: h as u32,
                    ids: if label_size == 1 {
                        ids.iter().map(|&v| v as u16).collect()
                    } else {
                        ids.chunks_exact(2)
                            .map(|b| u16::from_le_bytes([b[0], b[1]]))
                            .collect()
                    },
                },
                standardization: values
                    .as_ref()
                    .and_then(|v| v[i])
                    .map(|(mean, std)| Standardization { mean, std }),
            }
        })
        .collect())
}

fn serde_json_string(config: &segprep::pipeline::schema::PipelineFile) -> String {
    segprep::pipeline::config_json(config)
}

fn make_pool(threads: usize) -> PyResult<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("segprep-{i}"))
        .build()
        .map_err(|e| PyValueError::new_err(format!("cannot start threads: {e}")))
}

fn set_small(parts: &Bound<'_, PyDict>, s: &OutputSample) -> PyResult<()> {
    parts.set_item("image_dtype", s.image_dtype)?;
    parts.set_item("label_dtype", s.label_dtype)?;
    parts.set_item("split", &s.split)
}

fn concat<'a>(parts: impl Iterator<Item = &'a Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// A segprep error as the Python package's exception: `DataError` (file, stage, reason),
/// `PipelineError` (file, problems), or `ValueError` for a wrong request; its text is what the
/// command prints after `error: `.
fn to_python(py: Python<'_>, e: Error) -> PyErr {
    let text = e.to_string();
    let errors = match py.import("segprep._errors") {
        Ok(m) => m,
        Err(err) => return err,
    };
    let made = match &e {
        Error::Data {
            file,
            stage,
            message,
        }
        | Error::Output {
            file,
            stage,
            message,
        } => errors
            .getattr("DataError")
            .and_then(|c| c.call1((text, Some(file.clone()), Some(stage), Some(message)))),
        Error::DataSet { .. } => errors
            .getattr("DataError")
            .and_then(|c| c.call1((text, None::<PathBuf>, None::<String>, None::<String>))),
        Error::Pipeline { file, problems } => errors
            .getattr("PipelineError")
            .and_then(|c| c.call1((text, file.clone(), problems.clone()))),
        Error::Usage(_) => return PyValueError::new_err(text),
    };
    match made {
        Ok(exception) => PyErr::from_value(exception),
        Err(err) => err,
    }
}

/// The `segprep` command: parses `argv` (its first item the program name) and runs it as the
/// binary does; returns the exit status.
#[pyfunction]
fn run_cli(py: Python<'_>, argv: Vec<std::ffi::OsString>) -> i32 {
    py.detach(|| {
        ignore_file_size_signal();
        segprep::memory::keep_freed_pixel_buffers();
        let code = match <segprep::cli::Cli as clap::Parser>::try_parse_from(argv) {
            Ok(cli) => segprep::cli::run(cli).unwrap_or_else(|e| {
                eprintln!("error: {e}");
                e.exit_code()
            }),
            Err(e) => {
                let _ = e.print();
                e.exit_code()
            }
        };
        let _ = std::io::stdout().flush();
        code
    })
}

/// As the binary does: a file size limit is an error message, not a kill.
fn ignore_file_size_signal() {
    // SAFETY: only the disposition of SIGXFSZ changes; no handler runs Rust code.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Pipeline>()?;
    m.add_function(wrap_pyfunction!(run_cli, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
