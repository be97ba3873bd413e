//! NPY arrays written straight into a zip entry: the header from npyz, the body streamed in bulk.
use npyz::WriterBuilder;
use std::io::Write;

/// Writes an .npy header for a C-order array of `dtype` (numpy type string) and `shape`.
pub fn write_header<W: Write>(w: &mut W, dtype: &str, shape: &[u64]) -> std::io::Result<()> {
    let type_str: npyz::TypeStr = dtype
        .parse()
        .map_err(|e| std::io::Error::other(format!("{e}")))?;
    npyz::WriteOptions::new_header_only()
        .dtype(npyz::DType::Plain(type_str))
        .shape(shape)
        .writer(w)
        .write_header_only()?;
    Ok(())
}

/// A (N,) array of strings as numpy's fixed-width unicode `<U{n}`, readable without pickle.
pub fn write_strings<W: Write>(w: &mut W, strings: &[&str]) -> std::io::Result<()> {
    let width = strings
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0)
        .max(1);
    write_header(w, &format!("<U{width}"), &[strings.len() as u64])?;
    let mut row = Vec::with_capacity(width * 4);
    for s in strings {
        row.clear();
        for c in s.chars() {
            row.extend_from_slice(&(c as u32).to_le_bytes());
        }
        row.resize(width * 4, 0);
        w.write_all(&row)?;
    }
    Ok(())
}

/// A 0-d int64 array (numpy scalar), as `np.savez(num_bands=3)` writes it.
pub fn write_scalar_i64<W: Write>(w: &mut W, value: i64) -> std::io::Result<()> {
    write_header(w, "<i8", &[])?;
    w.write_all(&value.to_le_bytes())
}

/// A (N,) float64 array.
pub fn write_f64s<W: Write>(w: &mut W, values: &[f64]) -> std::io::Result<()> {
    write_header(w, "<f8", &[values.len() as u64])?;
    for v in values {
        w.write_all(&v.to_le_bytes())?;
    }
    Ok(())
}
