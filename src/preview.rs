//! `segprep preview`: a contact sheet of samples after every stage (augmented copies included),
//! each label drawn over its image in the class colours, with a legend, so a pipeline can be seen
//! before a long run. Nothing else is written.
use image::{Rgb, RgbImage};
use rayon::prelude::*;

use crate::classes::display_colours;
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::process::process_pair;
use crate::sample::{Pixels, Sample};
use crate::source::discover;

/// Longest side of one tile, in pixels.
const TILE: u32 = 192;
const GAP: u32 = 6;
/// Height of a tile's caption, and of a legend line.
const LINE: u32 = 12;
/// A legend line's colour swatch and the space after it.
const SWATCH: u32 = 22;
/// Opacity of the label colours over the image.
const ALPHA: f32 = 0.45;

/// Up to `n` samples of `split` (the first pairs in key order), after every stage.
pub fn contact_sheet(p: &Pipeline, n: usize, split: &str) -> Result<RgbImage> {
    let found = discover(&p.source())?;
    let splits = p
        .split
        .assign(&found.pairs)
        .map_err(|m| Error::pipeline(&p.file, m))?;
    let pairs: Vec<_> = found
        .pairs
        .iter()
        .zip(&splits)
        .filter(|(_, s)| *s == split)
        .map(|(pair, _)| pair)
        .collect();
    if pairs.is_empty() {
        return Err(Error::Usage(format!(
            "no samples in split `{split}`; splits here: {}",
            distinct(&splits)
        )));
    }
    // what the model sees: with augment = "online", also the stages the data loader runs
    let stages = p.all_stages();
    let per_pair: usize = stages.iter().map(|s| s.multiplicity(split)).product();
    let wanted = n.div_ceil(per_pair).min(pairs.len());
    let samples: Vec<Sample> = pairs[..wanted]
        .par_iter()
        .map(|pair| process_pair(p, &stages, pair, split))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .take(n)
        .collect();
    let colours = display_colours(&p.classes.classes);
    let tiles: Vec<(RgbImage, String)> = samples
        .iter()
        .map(|s| {
            (
                tile(s, &colours, p.classes.ignore_index),
                s.pair.key.clone(),
            )
        })
        .collect();
    Ok(sheet(&tiles, p, &colours))
}

fn distinct(splits: &[String]) -> String {
    let mut v: Vec<&str> = splits.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.dedup();
    v.join(", ")
}

/// One sample scaled to fit TILE (nearest, so labels stay ids), its label blended over it.
fn tile(s: &Sample, colours: &[(u16, [u8; 3])], ignore: u16) -> RgbImage {
    let (w, h) = (s.image.width, s.image.height);
    let scale = TILE as f64 / w.max(h).max(1) as f64;
    let (tw, th) = (
        ((w as f64 * scale).round() as u32).max(1),
        ((h as f64 * scale).round() as u32).max(1),
    );
    let rgb = display_rgb(s);
    RgbImage::from_fn(tw, th, |x, y| {
        let sx = ((x as u64 * w as u64) / tw as u64) as usize;
        let sy = ((y as u64 * h as u64) / th as u64) as usize;
        let i = sy * w as usize + sx;
        let base = rgb[i];
        let id = s.label.ids[i];
        let over = if id == ignore {
            None
        } else {
            colours.iter().find(|(c, _)| *c == id).map(|(_, rgb)| *rgb)
        };
        Rgb(match over {
            Some(c) => std::array::from_fn(|k| {
                ((1.0 - ALPHA) * base[k] as f32 + ALPHA * c[k] as f32) as u8
            }),
            None => base,
        })
    })
}

/// The image as 8-bit RGB for display: 3 bands as they are, else the first band as grey; u16 and
/// f32 stretched from their own minimum to maximum.
fn display_rgb(s: &Sample) -> Vec<[u8; 3]> {
    let bands = s.image.bands;
    let values: Vec<f32> = match &s.image.pixels {
        Pixels::U8(v) => v.iter().map(|&x| x as f32).collect(),
        Pixels::U16(v) => v.iter().map(|&x| x as f32).collect(),
        Pixels::F32(v) => v.clone(),
    };
    let (lo, hi) = match s.image.pixels {
        Pixels::U8(_) => (0.0, 255.0),
        _ => values
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v))),
    };
    let to8 = |v: f32| (255.0 * (v - lo) / (hi - lo).max(f32::EPSILON)).clamp(0.0, 255.0) as u8;
    values
        .chunks_exact(bands)
        .map(|px| {
            if bands >= 3 {
                [to8(px[0]), to8(px[1]), to8(px[2])]
            } else {
                [to8(px[0]); 3]
            }
        })
        .collect()
}

/// Tiles in a grid with their keys under them, then the legend, the sheet wide enough for every
/// legend line (a narrow sheet of one or two tiles must not cut the title or a class name).
fn sheet(tiles: &[(RgbImage, String)], p: &Pipeline, colours: &[(u16, [u8; 3])]) -> RgbImage {
    let columns = (tiles.len() as f64).sqrt().ceil().max(1.0) as u32;
    let rows = (tiles.len() as u32).div_ceil(columns);
    let cell = (TILE + GAP, TILE + LINE + GAP);
    let title = format!(
        "classes (ignore {} shows the image)",
        p.classes.ignore_index
    );
    let names: Vec<String> = colours
        .iter()
        .map(|(id, _)| {
            let name = p.classes.by_id(*id).map_or("", |c| c.name.as_str());
            format!("{id} {name}")
        })
        .collect();
    let legend_width = names
        .iter()
        .map(|n| SWATCH + 8 * n.chars().count() as u32)
        .chain([8 * title.chars().count() as u32])
        .max()
        .unwrap_or(0);
    let width = (columns * cell.0 + GAP).max(legend_width + 2 * GAP);
    let height = rows * cell.1 + GAP + (names.len() as u32 + 1) * LINE + GAP;
    let mut out = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    for (i, (t, key)) in tiles.iter().enumerate() {
        let (cx, cy) = (
            GAP + (i as u32 % columns) * cell.0,
            GAP + (i as u32 / columns) * cell.1,
        );
        image::imageops::replace(&mut out, t, cx as i64, cy as i64);
        text(&mut out, cx, cy + t.height() + 2, key, TILE / 8);
    }
    let top = rows * cell.1 + GAP;
    text(&mut out, GAP, top, &title, u32::MAX);
    for (i, ((_, c), name)) in colours.iter().zip(&names).enumerate() {
        let y = top + (i as u32 + 1) * LINE;
        for dy in 0..8 {
            for dx in 0..16 {
                out.put_pixel(GAP + dx, y + dy, Rgb(*c));
            }
        }
        text(&mut out, GAP + SWATCH, y, name, u32::MAX);
    }
    out
}

/// 8x8 bitmap text (public-domain font8x8 glyphs), cut to `max_chars`; non-ASCII shows as `?`.
fn text(img: &mut RgbImage, x: u32, y: u32, s: &str, max_chars: u32) {
    for (i, ch) in s.chars().take(max_chars as usize).enumerate() {
        let glyph = font8x8::legacy::BASIC_LEGACY[if ch.is_ascii() {
            ch as usize
        } else {
            b'?' as usize
        }];
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                let (px, py) = (x + i as u32 * 8 + col, y + row as u32);
                if bits >> col & 1 == 1 && px < img.width() && py < img.height() {
                    img.put_pixel(px, py, Rgb([0, 0, 0]));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Columns of the sheet holding any dark (text) pixel at or below row `from`.
    fn rightmost_ink(img: &RgbImage, from: u32) -> u32 {
        let mut right = 0;
        for y in from..img.height() {
            for x in 0..img.width() {
                if img.get_pixel(x, y).0 == [0, 0, 0] {
                    right = right.max(x);
                }
            }
        }
        right
    }

    #[test]
    fn a_one_tile_sheet_is_wide_enough_for_its_legend() {
        let text_pipeline =
            "[input]\nimages = \"i\"\nlabels = \"l\"\n[labels]\nformat = \"index\"\n\
                    classes = [\"background\", \"a rather long class name for a small sheet\"]\n\
                    [output]\ndir = \"out\"\n";
        let dir = std::env::temp_dir().join(format!("segprep-preview-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.toml");
        std::fs::write(&path, text_pipeline).unwrap();
        let p = crate::pipeline::load(&path).unwrap();
        let tile = (
            RgbImage::from_pixel(64, 48, Rgb([200, 200, 200])),
            "k".to_string(),
        );
        let colours = [(0u16, [10, 20, 30]), (1u16, [40, 50, 60])];
        let img = sheet(&[tile], &p, &colours);
        let long = "1 a rather long class name for a small sheet";
        let need = GAP + SWATCH + 8 * long.len() as u32;
        assert!(img.width() >= need, "{} < {need}", img.width());
        // the last glyph of the longest line is drawn, not cut
        assert!(rightmost_ink(&img, TILE + LINE + GAP) >= need - 8);
        let title = "classes (ignore 255 shows the image)";
        assert!(img.width() >= GAP + 8 * title.len() as u32);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
