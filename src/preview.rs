//! `segprep preview`: a contact sheet of samples after every stage (augmented copies included),
//! each label drawn over its image in the class colours, with a legend, so a pipeline can be seen
//! before a long run. Nothing else is written.
use image::{Rgb, RgbImage};
use rayon::prelude::*;

use crate::engine::process;
use crate::error::{Error, Result};
use crate::pipeline::classes::display_colours;
use crate::pipeline::Pipeline;
use crate::sample::{Pixels, Sample};
use crate::source::discover;

/// Longest side of one tile, in pixels.
const TILE: u32 = 192;
const GAP: u32 = 6;
/// Height of a tile's caption, and of a legend line.
const LINE: u32 = 12;
/// Opacity of the label colours over the image.
const ALPHA: f32 = 0.45;

/// Up to `n` samples of `split` (the first pairs in key order), after every stage.
pub fn contact_sheet(p: &Pipeline, n: usize, split: &str) -> Result<RgbImage> {
    let found = discover(p)?;
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
    let per_pair = p.samples_per_pair(split);
    let wanted = n.div_ceil(per_pair).min(pairs.len());
    let samples: Vec<Sample> = pairs[..wanted]
        .par_iter()
        .map(|pair| process(p, &p.stages, pair, split))
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

/// Tiles in a grid with their keys under them, then the legend.
fn sheet(tiles: &[(RgbImage, String)], p: &Pipeline, colours: &[(u16, [u8; 3])]) -> RgbImage {
    let columns = (tiles.len() as f64).sqrt().ceil().max(1.0) as u32;
    let rows = (tiles.len() as u32).div_ceil(columns);
    let cell = (TILE + GAP, TILE + LINE + GAP);
    let legend_rows = colours.len() as u32 + 1;
    let width = (columns * cell.0 + GAP).max(260);
    let height = rows * cell.1 + GAP + legend_rows * LINE + GAP;
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
    text(
        &mut out,
        GAP,
        top,
        &format!(
            "classes (ignore {} shows the image)",
            p.classes.ignore_index
        ),
        width / 8,
    );
    for (i, (id, c)) in colours.iter().enumerate() {
        let y = top + (i as u32 + 1) * LINE;
        for dy in 0..8 {
            for dx in 0..16 {
                out.put_pixel(GAP + dx, y + dy, Rgb(*c));
            }
        }
        let name = p.classes.by_id(*id).map_or("", |c| c.name.as_str());
        text(
            &mut out,
            GAP + 22,
            y,
            &format!("{id} {name}"),
            (width - GAP - 22) / 8,
        );
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
