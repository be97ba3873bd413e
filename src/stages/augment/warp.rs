//! Geometry of augmentation: an image path and a label path (ids and padding mask), run from one
//! set of parameters. Flips, 90° turns and crops move whole pixels (exact). Warps (affine, elastic) map
//! every output pixel back to a source position — pixel centres at integer coordinates, as OpenCV's
//! `warpAffine` — then sample the image with the chosen interpolation and the label (and padding
//! mask) with nearest, so no class id is ever mixed.
use super::sampling::{bilinear_row, nearest_row, Border, NearestLabel, OUTSIDE};
use crate::memory::pixel_buffers::{self, Pooled};
use crate::sample::{Image, LabelMap, PixelValue, Pixels};

/// Where each output pixel's source lies.
#[derive(Debug, Clone, Copy)]
pub enum Mapping<'a> {
    /// An affine map from output to source position (the inverse of the drawn warp).
    Affine(Affine),
    /// The output position displaced by a field (dx, dy), row-major at the output size (elastic).
    Displaced { dx: &'a [f32], dy: &'a [f32] },
}

impl Mapping<'_> {
    /// The source positions of output row `y`, one per entry of `xs` and `ys`.
    #[inline]
    fn row(&self, y: usize, columns: &[f64], xs: &mut [f64], ys: &mut [f64]) {
        let yf = y as f64;
        let points = columns.iter().zip(xs.iter_mut().zip(ys.iter_mut()));
        match self {
            Mapping::Affine(m) => {
                // the row's share of each coordinate, then the same sums as m · (x, y, 1)
                let (x_of_row, y_of_row) = (m[0][1] * yf, m[1][1] * yf);
                for (&xf, (sx, sy)) in points {
                    *sx = m[0][0] * xf + x_of_row + m[0][2];
                    *sy = m[1][0] * xf + y_of_row + m[1][2];
                }
            }
            Mapping::Displaced { dx, dy } => {
                let at = y * columns.len();
                let shifts = dx[at..].iter().zip(&dy[at..]);
                for ((&xf, (sx, sy)), (&ddx, &ddy)) in points.zip(shifts) {
                    *sx = xf + ddx as f64;
                    *sy = yf + ddy as f64;
                }
            }
        }
    }
}

/// Calls `f(y, xs, ys)` for each output row with its source positions (buffers reused; the
/// column coordinates as f64 once, so the position arithmetic vectorizes).
pub(super) fn for_each_row(
    map: &Mapping,
    (out_w, out_h): (usize, usize),
    mut f: impl FnMut(usize, &[f64], &[f64]),
) {
    let columns: Vec<f64> = (0..out_w).map(|x| x as f64).collect();
    let (mut xs, mut ys) = (vec![0f64; out_w], vec![0f64; out_w]);
    for y in 0..out_h {
        map.row(y, &columns, &mut xs, &mut ys);
        f(y, &xs, &ys);
    }
}

/// `nearest_row`, by SIMD where the CPU has it (the same sources).
#[inline]
fn nearest_sources(
    xs: &[f64],
    ys: &[f64],
    dims: (usize, usize),
    border: Border,
    out: &mut [usize],
) {
    #[cfg(target_arch = "x86_64")]
    if super::warp_simd::nearest_row(xs, ys, dims, border, out) {
        return;
    }
    nearest_row(xs, ys, dims, border, out)
}

/// Copies each source pixel into a row (`fill` where it is `OUTSIDE`).
#[inline(always)]
fn gather_row<T: Copy>(src: &[T], bands: usize, sources: &[usize], fill: &[T], out: &mut [T]) {
    for (px, &i) in out.chunks_exact_mut(bands.max(1)).zip(sources) {
        px.copy_from_slice(if i == OUTSIDE {
            fill
        } else {
            &src[i * bands..(i + 1) * bands]
        });
    }
}

/// The bilinear row of a pixel type: the generic one, or for 8-bit 3- and 4-band images the SIMD
/// one (`warp_simd`), which gives the same bytes.
pub trait BilinearRow: PixelValue + Pooled {
    fn bilinear_row(
        src: &[Self],
        dims: (usize, usize, usize),
        pos: (&[f64], &[f64]),
        border: Border,
        fill: &[f32],
        out: &mut [Self],
    ) {
        generic_bilinear_row(src, dims, pos, border, fill, out)
    }
}

/// `bilinear_row` with the band count a constant for 1, 3 and 4 bands.
fn generic_bilinear_row<T: PixelValue>(
    src: &[T],
    dims: (usize, usize, usize),
    pos: (&[f64], &[f64]),
    border: Border,
    fill: &[f32],
    out: &mut [T],
) {
    with_const_bands!(dims.2, |b| bilinear_row(
        src,
        (dims.0, dims.1, b),
        pos,
        border,
        fill,
        out
    ))
}

impl BilinearRow for u16 {}
impl BilinearRow for f32 {}

impl BilinearRow for u8 {
    fn bilinear_row(
        src: &[u8],
        dims: (usize, usize, usize),
        pos: (&[f64], &[f64]),
        border: Border,
        fill: &[f32],
        out: &mut [u8],
    ) {
        #[cfg(target_arch = "x86_64")]
        if super::warp_simd::bilinear_row_u8(src, dims, pos, border, fill, out) {
            return;
        }
        generic_bilinear_row(src, dims, pos, border, fill, out)
    }
}

/// How a warp samples and fills.
#[derive(Debug, Clone, Copy)]
pub struct WarpRules<'a> {
    pub bilinear: bool,
    pub image_border: Border,
    /// Per band.
    pub image_fill: &'a [f64],
    pub label_border: Border,
    pub ignore_index: u16,
}

/// `img` warped to `out` (width, height) through `map`, row by row: bilinear or nearest under
/// the image's border rule, the image fill outside.
pub fn warped_image(img: &Image, out: (usize, usize), map: &Mapping, rules: &WarpRules) -> Image {
    let dims = (img.width as usize, img.height as usize, img.bands);
    let fill: Vec<f32> = (0..dims.2)
        .map(|b| {
            rules
                .image_fill
                .get(b)
                .or(rules.image_fill.first())
                .copied()
                .unwrap_or(0.0) as f32
        })
        .collect();
    let pixels = match &img.pixels {
        Pixels::U8(v) => Pixels::U8(warp_rows(v, dims, out, map, rules, &fill)),
        Pixels::U16(v) => Pixels::U16(warp_rows(v, dims, out, map, rules, &fill)),
        Pixels::F32(v) => Pixels::F32(warp_rows(v, dims, out, map, rules, &fill)),
    };
    Image {
        width: out.0 as u32,
        height: out.1 as u32,
        bands: img.bands,
        pixels,
    }
}

/// A label and its padding mask, as a geometric step makes them anew.
pub type MovedLabel = (LabelMap, Option<Vec<bool>>);

/// A label and its padding mask warped the same way, nearest (no id is ever mixed). A pixel from
/// outside under a constant border gets the ignore index and is marked as padding.
pub fn warped_label(
    (l, padding): (&LabelMap, Option<&[bool]>),
    out: (usize, usize),
    map: &Mapping,
    rules: &WarpRules,
) -> MovedLabel {
    let (w, h) = (l.width as usize, l.height as usize);
    let mut label = LabelWarp::new(&l.ids, padding, out, rules.ignore_index);
    let mut sources = vec![0usize; out.0];
    for_each_row(map, out, |y, xs, ys| {
        if rules.bilinear {
            label.row_at(y, (xs, ys), (w, h), rules.label_border, &mut sources);
        } else {
            nearest_sources(xs, ys, (w, h), rules.label_border, &mut sources);
            label.row(y, &sources);
        }
    });
    let (ids, padding) = label.finish();
    let size = (out.0 as u32, out.1 as u32);
    (label_map(size, ids), padding)
}

fn label_map((width, height): (u32, u32), ids: Vec<u16>) -> LabelMap {
    LabelMap { width, height, ids }
}

/// One pass over the output rows: each row's source positions are computed once, then the image
/// sampled bilinear, or nearest under its border rule.
fn warp_rows<T: BilinearRow>(
    src: &[T],
    (w, h, bands): (usize, usize, usize),
    out: (usize, usize),
    map: &Mapping,
    rules: &WarpRules,
    fill: &[f32],
) -> Vec<T> {
    // from the pool, not zeroed: every row writes every value
    let mut pixels = pixel_buffers::take(out.0 * out.1 * bands);
    let row_len = (out.0 * bands).max(1);
    let nearest_fill: Vec<T> = fill.iter().map(|&f| T::from_f32(f)).collect();
    let mut sources = vec![0usize; out.0];
    for_each_row(map, out, |y, xs, ys| {
        let row = &mut pixels[y * row_len..(y + 1) * row_len];
        if rules.bilinear {
            T::bilinear_row(src, (w, h, bands), (xs, ys), rules.image_border, fill, row)
        } else {
            nearest_sources(xs, ys, (w, h), rules.image_border, &mut sources);
            with_const_bands!(bands, |b| gather_row(src, b, &sources, &nearest_fill, row))
        }
    });
    pixels
}

/// The warped label (nearest) and padding mask, filled row by row: a pixel whose source falls
/// outside under a constant border gets the ignore index and is padding; the mask exists when
/// the input had one or a pixel fell outside.
struct LabelWarp<'a> {
    source: NearestLabel<'a>,
    width: usize,
    labels: Vec<u16>,
    pads: Vec<bool>,
    any_outside: bool,
}

impl<'a> LabelWarp<'a> {
    fn new(ids: &'a [u16], padding: Option<&'a [bool]>, out: (usize, usize), ignore: u16) -> Self {
        LabelWarp {
            source: NearestLabel {
                ids,
                padding,
                ignore_index: ignore,
            },
            width: out.0,
            // from the pool, not zeroed: every row writes every id and flag
            labels: pixel_buffers::take(out.0 * out.1),
            pads: pixel_buffers::take(out.0 * out.1),
            any_outside: false,
        }
    }

    /// Output row `y` from the source pixel of each of its positions.
    fn row(&mut self, y: usize, sources: &[usize]) {
        let row = y * self.width..(y + 1) * self.width;
        let (labels, pads) = (&mut self.labels[row.clone()], &mut self.pads[row]);
        self.any_outside |= self.source.fill(sources, labels, pads);
    }

    /// Output row `y` from its source positions in a `dims` label: eight pixels at a time by
    /// SIMD where the CPU has it, else through `sources`; the same labels either way.
    fn row_at(
        &mut self,
        y: usize,
        (xs, ys): (&[f64], &[f64]),
        dims: (usize, usize),
        border: Border,
        sources: &mut [usize],
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            let row = y * self.width..(y + 1) * self.width;
            let out = (&mut self.labels[row.clone()], &mut self.pads[row]);
            let label = &self.source;
            if let Some(outside) = super::warp_simd::label_row((xs, ys), dims, border, label, out) {
                self.any_outside |= outside;
                return;
            }
        }
        nearest_row(xs, ys, dims, border, sources);
        self.row(y, sources);
    }

    fn finish(self) -> (Vec<u16>, Option<Vec<bool>>) {
        if self.source.padding.is_some() || self.any_outside {
            return (self.labels, Some(self.pads));
        }
        pixel_buffers::give(self.pads);
        (self.labels, None)
    }
}

/// Whole-pixel moves of an interleaved buffer: flips, then turns by 90° (counter-clockwise, as
/// `numpy.rot90`). Returns the buffer and its new (w, h).
pub fn move_pixels<T: Pooled>(
    src: &[T],
    (w, h, bands): (usize, usize, usize),
    hflip: bool,
    vflip: bool,
    turns: u32,
) -> (Vec<T>, usize, usize) {
    let flipped = (hflip || vflip).then(|| flipped(src, (w, h, bands), hflip, vflip));
    if turns.is_multiple_of(4) {
        return (flipped.unwrap_or_else(|| src.to_vec()), w, h);
    }
    let rows = flipped.as_deref().unwrap_or(src);
    let mut out = Vec::with_capacity(src.len());
    if turns % 4 == 2 {
        rows.chunks_exact(bands)
            .rev()
            .for_each(|px| out.extend_from_slice(px));
    } else {
        // output (x, y) of the (h, w) result reads (w - 1 - y, x) for one turn, (y, h - 1 - x) for three
        for y in 0..w {
            for x in 0..h {
                let (sx, sy) = if turns % 4 == 1 {
                    (w - 1 - y, x)
                } else {
                    (y, h - 1 - x)
                };
                let at = (sy * w + sx) * bands;
                out.extend_from_slice(&rows[at..at + bands]);
            }
        }
    }
    if let Some(buffer) = flipped {
        pixel_buffers::give(buffer);
    }
    let (w, h) = if turns % 2 == 1 { (h, w) } else { (w, h) };
    (out, w, h)
}

/// `src` flipped, written row by row into a pooled buffer (each value once, none copied first).
fn flipped<T: Pooled>(
    src: &[T],
    (w, h, bands): (usize, usize, usize),
    hflip: bool,
    vflip: bool,
) -> Vec<T> {
    let stride = w * bands;
    let mut out = pixel_buffers::take(src.len());
    for (y, out_row) in out.chunks_exact_mut(stride.max(1)).enumerate() {
        let sy = if vflip { h - 1 - y } else { y };
        let row = &src[sy * stride..(sy + 1) * stride];
        if hflip {
            // whole pixels, last first (a constant band count: each pixel one move)
            with_const_bands!(bands, |b| {
                let pixels = out_row.chunks_exact_mut(b.max(1));
                pixels
                    .zip(row.chunks_exact(b.max(1)).rev())
                    .for_each(|(to, from)| to.copy_from_slice(from))
            });
        } else {
            out_row.copy_from_slice(row);
        }
    }
    out
}

/// `img` flipped and turned (flips first, then counter-clockwise turns); `None` when neither.
pub fn moved_image(img: &Image, hflip: bool, vflip: bool, turns: u32) -> Option<Image> {
    if !hflip && !vflip && turns.is_multiple_of(4) {
        return None;
    }
    let dims = (img.width as usize, img.height as usize, img.bands);
    let (pixels, w, h) = match &img.pixels {
        Pixels::U8(v) => wrapped(move_pixels(v, dims, hflip, vflip, turns)),
        Pixels::U16(v) => wrapped(move_pixels(v, dims, hflip, vflip, turns)),
        Pixels::F32(v) => wrapped(move_pixels(v, dims, hflip, vflip, turns)),
    };
    Some(Image {
        width: w as u32,
        height: h as u32,
        bands: img.bands,
        pixels,
    })
}

/// A label and its padding mask flipped and turned as `moved_image` does the image.
pub fn moved_label(
    (l, padding): (&LabelMap, Option<&[bool]>),
    hflip: bool,
    vflip: bool,
    turns: u32,
) -> Option<MovedLabel> {
    if !hflip && !vflip && turns.is_multiple_of(4) {
        return None;
    }
    let dims = (l.width as usize, l.height as usize, 1);
    let (ids, w, h) = move_pixels(&l.ids, dims, hflip, vflip, turns);
    let padding = padding.map(|m| move_pixels(m, dims, hflip, vflip, turns).0);
    Some((label_map((w as u32, h as u32), ids), padding))
}

fn wrapped<T: PixelValue>((v, w, h): (Vec<T>, usize, usize)) -> (Pixels, usize, usize) {
    (T::wrap(v), w, h)
}

/// A 2x3 affine map in OpenCV's convention: destination = M · (x, y, 1) of the source position.
pub type Affine = [[f64; 3]; 2];

/// The map of a rotation (degrees, counter-clockwise on screen), zoom (x, y), shear (degrees, along
/// x) about the image centre, then a shift (pixels) — as `cv2.getRotationMatrix2D` composes them.
pub fn affine(
    w: usize,
    h: usize,
    rotate: f64,
    zoom: (f64, f64),
    shear: f64,
    shift: (f64, f64),
) -> Affine {
    let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    let (sin, cos) = rotate.to_radians().sin_cos();
    let t = shear.to_radians().tan();
    // A = R · Sh · Z with R = [[cos, sin], [-sin, cos]], Sh = [[1, t], [0, 1]], Z = diag(zx, zy)
    let a = [
        [cos * zoom.0, (cos * t + sin) * zoom.1],
        [-sin * zoom.0, (-sin * t + cos) * zoom.1],
    ];
    let tx = cx + shift.0 - a[0][0] * cx - a[0][1] * cy;
    let ty = cy + shift.1 - a[1][0] * cx - a[1][1] * cy;
    [[a[0][0], a[0][1], tx], [a[1][0], a[1][1], ty]]
}

pub fn invert(m: &Affine) -> Option<Affine> {
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    if det.abs() < 1e-12 {
        return None;
    }
    let (a, b, c, d) = (m[1][1] / det, -m[0][1] / det, -m[1][0] / det, m[0][0] / det);
    Some([
        [a, b, -(a * m[0][2] + b * m[1][2])],
        [c, d, -(c * m[0][2] + d * m[1][2])],
    ])
}

/// A smooth random displacement field (Simard et al.): uniform noise in [-1, 1] blurred by a
/// gaussian of `sigma` pixels and scaled by `alpha`. Returns (dx, dy), row-major.
pub fn elastic_field(
    w: usize,
    h: usize,
    alpha: f64,
    sigma: f64,
    mut noise: impl FnMut() -> f64,
) -> (Vec<f32>, Vec<f32>) {
    let mut field = |_| -> Vec<f32> {
        let raw: Vec<f32> = (0..w * h).map(|_| (2.0 * noise() - 1.0) as f32).collect();
        let smooth = super::photometric::gaussian_blur(&raw, (w, h, 1), sigma);
        smooth.into_iter().map(|v| v * alpha as f32).collect()
    };
    (field(0), field(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_match_numpy_rot90_and_flips_are_exact() {
        // 3x2 image [[0,1,2],[3,4,5]]; np.rot90 (k=1) -> [[2,5],[1,4],[0,3]]
        let src: Vec<u8> = (0..6).collect();
        assert_eq!(
            move_pixels(&src, (3, 2, 1), false, false, 1),
            (vec![2, 5, 1, 4, 0, 3], 2, 3)
        );
        assert_eq!(
            move_pixels(&src, (3, 2, 1), false, false, 2).0,
            vec![5, 4, 3, 2, 1, 0]
        );
        assert_eq!(
            move_pixels(&src, (3, 2, 1), false, false, 3).0,
            vec![3, 0, 4, 1, 5, 2]
        );
        assert_eq!(
            move_pixels(&src, (3, 2, 1), true, false, 0).0,
            vec![2, 1, 0, 5, 4, 3]
        );
        assert_eq!(
            move_pixels(&src, (3, 2, 1), false, true, 0).0,
            vec![3, 4, 5, 0, 1, 2]
        );
    }

    /// Flips of 1-, 2-, 3- and 4-band images move whole pixels, bands in order: pixel (x, y) of
    /// the result is pixel (w-1-x or x, h-1-y or y) of the source. The images are large enough
    /// for pooled buffers, and the pool holds stale values first: every value is written.
    #[test]
    fn flips_move_whole_pixels_at_every_band_count() {
        let (w, h) = (257, 131);
        for bands in 1..=4 {
            let src: Vec<u16> = (0..w * h * bands).map(|i| (i % 65521) as u16).collect();
            for (hflip, vflip) in [(true, false), (false, true), (true, true)] {
                pixel_buffers::give(vec![u16::MAX; src.len()]);
                let (got, gw, gh) = move_pixels(&src, (w, h, bands), hflip, vflip, 0);
                assert_eq!((gw, gh), (w, h));
                let want: Vec<u16> = (0..h)
                    .flat_map(|y| (0..w).flat_map(move |x| (0..bands).map(move |b| (y, x, b))))
                    .map(|(y, x, b)| {
                        let sx = if hflip { w - 1 - x } else { x };
                        let sy = if vflip { h - 1 - y } else { y };
                        src[(sy * w + sx) * bands + b]
                    })
                    .collect();
                assert!(got == want, "{bands} bands, flips {hflip} {vflip}");
                // a turn after the flips reads the flipped rows, then hands them back
                let (turned, tw, th) = move_pixels(&src, (w, h, bands), hflip, vflip, 1);
                assert_eq!((tw, th), (h, w));
                let (want_turned, _, _) = move_pixels(&want, (w, h, bands), false, false, 1);
                assert!(
                    turned == want_turned,
                    "{bands} bands, flips {hflip} {vflip}, turned"
                );
            }
        }
    }

    #[test]
    fn affine_identity_and_inverse() {
        let m = affine(10, 8, 0.0, (1.0, 1.0), 0.0, (0.0, 0.0));
        assert_eq!(m, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]);
        let m = affine(10, 8, 30.0, (1.2, 0.9), 5.0, (2.0, -1.0));
        let inv = invert(&m).unwrap();
        let (x, y) = (3.0, 4.0);
        let (u, v) = (
            m[0][0] * x + m[0][1] * y + m[0][2],
            m[1][0] * x + m[1][1] * y + m[1][2],
        );
        let back = (
            inv[0][0] * u + inv[0][1] * v + inv[0][2],
            inv[1][0] * u + inv[1][1] * v + inv[1][2],
        );
        assert!((back.0 - x).abs() < 1e-9 && (back.1 - y).abs() < 1e-9);
    }

    #[test]
    fn simd_bilinear_gives_the_generic_bytes() {
        // 3 and 4 bands, every border rule, maps that reach past every edge and the last pixel
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        for bands in [3usize, 4] {
            let (w, h) = (23usize, 17usize);
            let src: Vec<u8> = (0..w * h * bands).map(|_| next() as u8).collect();
            let fill = vec![37.0f32; bands];
            for (k, border) in [Border::Constant, Border::Reflect, Border::Edge]
                .into_iter()
                .enumerate()
            {
                let m = affine(w, h, 17.0 + 40.0 * k as f64, (1.3, 0.7), 5.0, (2.5, -1.5));
                let map = Mapping::Affine(invert(&m).unwrap());
                for_each_row(&map, (w + 3, h + 2), |_, xs, ys| {
                    let mut simd = vec![0u8; xs.len() * bands];
                    let mut generic = simd.clone();
                    let dims = (w, h, bands);
                    u8::bilinear_row(&src, dims, (xs, ys), border, &fill, &mut simd);
                    bilinear_row(&src, dims, (xs, ys), border, &fill, &mut generic);
                    assert_eq!(simd, generic, "{bands} bands, {border:?}");
                });
            }
            // the bottom-right 2x2 block, whose last tap is the image's last pixel
            let (xs, ys) = (vec![w as f64 - 1.5; 4], vec![h as f64 - 1.25; 4]);
            let mut simd = vec![0u8; 4 * bands];
            let mut generic = simd.clone();
            u8::bilinear_row(
                &src,
                (w, h, bands),
                (&xs, &ys),
                Border::Constant,
                &fill,
                &mut simd,
            );
            bilinear_row(
                &src,
                (w, h, bands),
                (&xs, &ys),
                Border::Constant,
                &fill,
                &mut generic,
            );
            assert_eq!(simd, generic);
        }
    }

    #[test]
    fn nearest_warp_of_a_shift_moves_whole_pixels() {
        let src: Vec<u16> = (0..12).collect(); // 4x3
        let shift = Mapping::Affine([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]]);
        let mut label = LabelWarp::new(&src, None, (4, 3), 99);
        let mut sources = vec![0; 4];
        for_each_row(&shift, (4, 3), |y, xs, ys| {
            nearest_row(xs, ys, (4, 3), Border::Constant, &mut sources);
            label.row(y, &sources);
        });
        let (out, padding) = label.finish();
        assert_eq!(out, vec![99, 0, 1, 2, 99, 4, 5, 6, 99, 8, 9, 10]);
        let padding = padding.expect("a shifted-in column is padding");
        assert_eq!(padding.iter().filter(|&&p| p).count(), 3);
    }
}
