//! A model's predictions on applied images, found by key: `<key>.png` (8/16-bit grey or palette
//! indices), `<key>.npy` ((H,W) integer class ids, or (H,W,K) / (K,H,W) float probabilities), or
//! one row of a stacked `apply-NNNNN.npy` ((N,H,W) or (N,H,W,K) / (N,K,H,W)) named after the NPZ
//! file the images came from.
use npyz::{DType, Order, TypeChar};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::sidecar::SampleRecord;
use crate::decode::raw_label::{read_raw_label, RawPixels};
use crate::decode::DecodeLimits;
use crate::error::{Error, Result};

/// At the applied size, row-major: class ids, or K probabilities per pixel.
pub enum Prediction {
    Labels(Vec<u16>),
    Probabilities(usize, Vec<f32>),
}

/// An .npy array as read: its shape and values.
struct Array {
    shape: Vec<u64>,
    values: Values,
}

enum Values {
    Int(Vec<i64>),
    Float(Vec<f32>),
}

/// The stacked prediction file of one apply output, read once when first needed.
pub struct Stacked {
    path: PathBuf,
    array: OnceLock<Result<Array, String>>,
}

impl Stacked {
    pub fn new(dir: &Path, output: &str) -> Self {
        Stacked {
            path: dir.join(stacked_name(output)),
            array: OnceLock::new(),
        }
    }

    fn get(&self) -> Result<&Array> {
        self.array
            .get_or_init(|| read_npy(&self.path))
            .as_ref()
            .map_err(|m| Error::data(&self.path, "restore", m.clone()))
    }
}

/// `apply-00003.npz` → `apply-00003.npy`.
pub fn stacked_name(output: &str) -> String {
    let stem = output.strip_suffix(".npz").unwrap_or(output);
    format!("{stem}.npy")
}

/// The prediction for `record` and the file it came from; `None` when there is none.
pub fn find(
    dir: &Path,
    record: &SampleRecord,
    stacked: &Stacked,
) -> Result<Option<(PathBuf, Prediction)>> {
    let size = record.size;
    let png = dir.join(format!("{}.png", record.key));
    let npy = dir.join(format!("{}.npy", record.key));
    let candidates: Vec<&Path> = [png.as_path(), npy.as_path(), stacked.path.as_path()]
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    if let [first, second, ..] = candidates[..] {
        return Err(Error::data(
            second,
            "restore",
            format!(
                "{} also holds a prediction for `{}`; restore will not guess which is meant: \
                 keep one of them in the predictions folder",
                first.display(),
                record.key
            ),
        ));
    }
    if png.is_file() {
        let p = read_png(&png, size).map_err(|m| Error::data(&png, "restore", m))?;
        return Ok(Some((png, p)));
    }
    if npy.is_file() {
        let fail = |m: String| Error::data(&npy, "restore", m);
        let array = read_npy(&npy).map_err(fail)?;
        let p = interpret(&array.shape, &array.values, 0, size).map_err(fail)?;
        return Ok(Some((npy, p)));
    }
    if !stacked.path.is_file() {
        return Ok(None);
    }
    let array = stacked.get()?;
    let fail = |m: String| Error::data(&stacked.path, "restore", m);
    let Some((&n, one)) = array.shape.split_first() else {
        return Err(fail("is a scalar, not a stack of predictions".into()));
    };
    if record.index as u64 >= n {
        return Err(fail(format!(
            "has {n} rows but `{}` is row {} of the applied file",
            record.key, record.index
        )));
    }
    let p = interpret(one, &array.values, record.index, size).map_err(fail)?;
    Ok(Some((stacked.path.clone(), p)))
}

fn read_png(path: &Path, size: [u32; 2]) -> Result<Prediction, String> {
    let raw = read_raw_label(path, &DecodeLimits::default())?;
    if [raw.width, raw.height] != size {
        return Err(wrong_size(&[raw.height as u64, raw.width as u64], size));
    }
    match raw.pixels {
        RawPixels::Gray8(v) => Ok(Prediction::Labels(v.into_iter().map(u16::from).collect())),
        RawPixels::Gray16(v) => Ok(Prediction::Labels(v)),
        RawPixels::Indexed { indices, .. } => Ok(Prediction::Labels(
            indices.into_iter().map(u16::from).collect(),
        )),
        RawPixels::Color { .. } => Err(
            "is a colour PNG; predictions must be class ids (8/16-bit grey or palette PNG, or .npy)"
                .into(),
        ),
    }
}

/// Row `row` of `values` read with per-row shape `shape`: (H,W) ids or (H,W,K)/(K,H,W) floats.
fn interpret(
    shape: &[u64],
    values: &Values,
    row: usize,
    size: [u32; 2],
) -> Result<Prediction, String> {
    let (w, h) = (size[0] as u64, size[1] as u64);
    let per_row = shape.iter().product::<u64>() as usize;
    let range = row * per_row..(row + 1) * per_row;
    match (shape, values) {
        (&[ph, pw], Values::Int(v)) if (ph, pw) == (h, w) => v[range]
            .iter()
            .map(|&x| {
                u16::try_from(x).map_err(|_| {
                    format!("holds the class id {x}; ids are 0..65535 (write the build's ignore index for unlabelled pixels)")
                })
            })
            .collect::<Result<_, _>>()
            .map(Prediction::Labels),
        (&[a, b, c], Values::Float(v)) => {
            let hwk = (a, b) == (h, w);
            let khw = (b, c) == (h, w);
            // H = W = K fits both; it is read as (H,W,K)
            match (hwk, khw) {
                (true, _) => Ok(Prediction::Probabilities(c as usize, v[range].to_vec())),
                (false, true) => Ok(Prediction::Probabilities(a as usize, to_channels_last(&v[range], a as usize, (h * w) as usize))),
                _ => Err(wrong_size(shape, size)),
            }
        }
        (&[_, _], Values::Float(_)) => Err("holds floats in 2 dimensions; class ids must be integers, probabilities (H,W,K)".into()),
        (&[_, _, _], Values::Int(_)) => Err("holds integers in 3 dimensions; class ids are (H,W), probabilities (H,W,K) floats".into()),
        (&[_, _], _) => Err(wrong_size(shape, size)),
        _ => Err(format!("has shape {shape:?}; expected (H,W) class ids or (H,W,K) probabilities")),
    }
}

fn wrong_size(shape: &[u64], size: [u32; 2]) -> String {
    format!(
        "has shape {shape:?} but the applied image is {}x{} (H={}, W={})",
        size[0], size[1], size[1], size[0]
    )
}

fn to_channels_last(v: &[f32], k: usize, pixels: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for c in 0..k {
        for p in 0..pixels {
            out[p * k + c] = v[c * pixels + p];
        }
    }
    out
}

/// Reads a C-ordered .npy of any integer, bool or float dtype.
fn read_npy(path: &Path) -> Result<Array, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let npy =
        npyz::NpyFile::new(BufReader::new(file)).map_err(|e| format!("not an .npy file: {e}"))?;
    if npy.order() == Order::Fortran {
        return Err("is Fortran-ordered; save np.ascontiguousarray(prediction)".into());
    }
    let shape = npy.shape().to_vec();
    let DType::Plain(t) = npy.dtype() else {
        return Err("has a structured dtype; save plain integer or float arrays".into());
    };
    let values = match (t.type_char(), t.size_field()) {
        (TypeChar::Uint, 1) => widen::<u8, _>(npy),
        (TypeChar::Uint, 2) => widen::<u16, _>(npy),
        (TypeChar::Uint, 4) => widen::<u32, _>(npy),
        (TypeChar::Uint, 8) => npy.into_vec::<u64>().map(|v| {
            // beyond i64 is beyond any class id too, and is reported as such
            Values::Int(
                v.into_iter()
                    .map(|x| i64::try_from(x).unwrap_or(i64::MAX))
                    .collect(),
            )
        }),
        (TypeChar::Int, 1) => widen::<i8, _>(npy),
        (TypeChar::Int, 2) => widen::<i16, _>(npy),
        (TypeChar::Int, 4) => widen::<i32, _>(npy),
        (TypeChar::Int, 8) => widen::<i64, _>(npy),
        (TypeChar::Bool, 1) => widen::<bool, _>(npy),
        (TypeChar::Float, 4) => npy.into_vec::<f32>().map(Values::Float),
        (TypeChar::Float, 8) => npy
            .into_vec::<f64>()
            .map(|v| Values::Float(v.into_iter().map(|x| x as f32).collect())),
        _ => {
            return Err(format!(
                "has dtype {t}; save integer class ids or float32/float64 probabilities"
            ))
        }
    }
    .map_err(|e| format!("cannot read: {e}"))?;
    Ok(Array { shape, values })
}

/// Integer (or bool) values of any width as i64.
fn widen<T, R>(npy: npyz::NpyFile<R>) -> std::io::Result<Values>
where
    T: npyz::Deserialize,
    i64: From<T>,
    R: std::io::Read,
{
    Ok(Values::Int(
        npy.into_vec::<T>()?.into_iter().map(i64::from).collect(),
    ))
}
