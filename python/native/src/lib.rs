//! `segprep._native`: the live pipeline (`segprep.Pipeline` wraps `Pipeline` here) and the
//! `segprep` command, both from the one Rust library. Arrays cross as bytes plus dtype and shape;
//! the Python package makes them numpy arrays (one copy, no numpy at build time). Work runs with
//! the GIL released; batches run on a thread pool made in the process that uses it, so a pool
//! never crosses a fork.
use pyo3::buffer::PyBuffer;
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
    /// data loader's (what `finish_prepared` runs). `moments`: `dataset_moments()` of the same
    /// pipeline opened elsewhere, so a spawned worker does not measure the train split again.
    #[new]
    #[pyo3(signature = (path, threads = 0, augment_online = false, moments = None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        threads: usize,
        augment_online: bool,
        moments: Option<Vec<(f64, f64)>>,
    ) -> PyResult<Self> {
        let pool = Arc::new(make_pool(threads)?);
        // dataset-wide standardization measures the train split on this pool, not rayon's global one
        let open = || Online::open(&path, augment_online, moments, &Silent);
        let online = py
            .detach(|| pool.install(open))
            .map_err(|e| to_python(py, e))?;
        Ok(Pipeline {
            online,
            threads,
            pool: Mutex::new(Some((std::process::id(), pool))),
        })
    }

    /// The per-band (mean, std) of a dataset-wide standardize stage, if the pipeline has one.
    fn dataset_moments(&self) -> Option<Vec<(f64, f64)>> {
        self.online.dataset_moments()
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
        segprep::pipeline::config_json(&self.online.pipeline().config)
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

    /// Copy `copy` of each prepared sample, read from a build of this pipeline with `[output]
    /// augment = "online"`: `images` and `labels` are one buffer of bytes per sample (numpy arrays
    /// viewed as uint8, e.g. memory-mapped rows of the build), each image `image_shape` in
    /// `image_dtype`, each label in `label_dtype`. The stages left to the data loader run on them in
    /// parallel with the GIL released. Stacked as `batch` gives them.
    #[pyo3(signature = (keys, copy, images, image_shape, image_dtype, labels, label_dtype, standardization = None))]
    #[allow(clippy::too_many_arguments)]
    fn finish_prepared<'py>(
        &self,
        py: Python<'py>,
        keys: Vec<String>,
        copy: u32,
        images: Vec<PyBuffer<u8>>,
        image_shape: [usize; 3],
        image_dtype: &str,
        labels: Vec<PyBuffer<u8>>,
        label_dtype: &str,
        standardization: Option<Vec<(f64, f64)>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        if keys.is_empty() || images.len() != keys.len() || labels.len() != keys.len() {
            return Err(PyValueError::new_err(format!(
                "{} keys, {} images and {} labels: give one image and one label per key",
                keys.len(),
                images.len(),
                labels.len()
            )));
        }
        let layout = PreparedLayout::new(image_shape, image_dtype, label_dtype)?;
        let values = standardization.map(|v| v.into_iter().map(Some).collect::<Vec<_>>());
        let mut prepared = Vec::with_capacity(keys.len());
        for (i, key) in keys.into_iter().enumerate() {
            let standardization = values.as_ref().and_then(|v| v.get(i).copied().flatten());
            prepared.push(layout.sample(py, key, &images[i], &labels[i], standardization)?);
        }
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
    let parts = PyDict::new(py);
    parts.set_item("image", concat(py, samples.iter().map(|s| &s.image))?)?;
    parts.set_item("image_shape", PyTuple::new(py, [n, h, w, c])?)?;
    parts.set_item("label", concat(py, samples.iter().map(|s| &s.label))?)?;
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

/// How the prepared samples' bytes are laid out.
struct PreparedLayout {
    height: usize,
    width: usize,
    bands: usize,
    image_type: PixelType,
    /// Bytes per label id: 1 (u8) or 2 (u16).
    label_size: usize,
}

impl PreparedLayout {
    fn new(
        [height, width, bands]: [usize; 3],
        image_dtype: &str,
        label_dtype: &str,
    ) -> PyResult<Self> {
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
        Ok(PreparedLayout {
            height,
            width,
            bands,
            image_type,
            label_size,
        })
    }

    /// One prepared sample, its bytes copied out of the buffers (under the GIL).
    fn sample(
        &self,
        py: Python<'_>,
        key: String,
        image: &PyBuffer<u8>,
        label: &PyBuffer<u8>,
        standardization: Option<(f64, f64)>,
    ) -> PyResult<Prepared> {
        let pixels = self.height * self.width;
        let image_bytes = pixels * self.bands * self.image_type.size();
        if image.len_bytes() != image_bytes || label.len_bytes() != pixels * self.label_size {
            return Err(PyValueError::new_err(format!(
                "{key}: {} image bytes and {} label bytes, not a {}x{}x{} sample",
                image.len_bytes(),
                label.len_bytes(),
                self.height,
                self.width,
                self.bands
            )));
        }
        let mut raw = vec![0u8; image_bytes];
        image.copy_to_slice(py, &mut raw)?;
        let pixels_of = match self.image_type {
            PixelType::U8 => Pixels::U8(raw),
            other => Pixels::from_le_bytes(other, &raw),
        };
        let mut stored = vec![0u8; label.len_bytes()];
        label.copy_to_slice(py, &mut stored)?;
        let ids = if self.label_size == 1 {
            stored.iter().map(|&v| v as u16).collect()
        } else {
            stored
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect()
        };
        let (w, h) = (self.width as u32, self.height as u32);
        Ok(Prepared {
            key,
            image: Image {
                width: w,
                height: h,
                bands: self.bands,
                pixels: pixels_of,
            },
            label: LabelMap {
                width: w,
                height: h,
                ids,
            },
            standardization: standardization.map(|(mean, std)| Standardization { mean, std }),
        })
    }
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

/// The parts one after another in a new bytearray, copied once.
fn concat<'py, 'a>(
    py: Python<'py>,
    parts: impl Iterator<Item = &'a Vec<u8>> + Clone,
) -> PyResult<Bound<'py, PyByteArray>> {
    let total = parts.clone().map(Vec::len).sum();
    PyByteArray::new_with(py, total, |out| {
        let mut at = 0;
        for p in parts {
            out[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        Ok(())
    })
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
