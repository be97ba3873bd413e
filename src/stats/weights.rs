//! Class weights from counts, four schemes. Classes absent from the counts get weight 0 (and the
//! report warns), so no scheme divides by zero.
//!
//! With N_c the pixels of class c, N = Σ N_c over the K present classes, p_c = N_c / N:
//! - `inverse`: normalised inverse frequency, w_c = N / (K · N_c) (scikit-learn's "balanced":
//!   the pixel-weighted mean weight is 1);
//! - `median`: median frequency balancing (Eigen & Fergus 2015): f_c = N_c / S_c with S_c the
//!   labelled pixels of the images containing c, w_c = median_c(f_c) / f_c;
//! - `enet`: w_c = 1 / ln(1.02 + p_c) (Paszke et al. 2016);
//! - `effective`: effective number of samples on image counts n_c (Cui et al. 2019),
//!   E_c = (1 − β^n_c) / (1 − β), w_c ∝ 1 / E_c, normalised so Σ w_c = K. 1 − β^n is computed as
//!   −expm1(n · ln1p(−(1 − β))), exact for β near 1 and n in the millions.
use serde::Serialize;

use super::counts::ClassCount;

/// β for the effective-number weights (Cui et al. use 0.9 to 0.9999).
pub const DEFAULT_BETA: f64 = 0.999;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassWeights {
    pub inverse: Vec<f64>,
    pub median: Vec<f64>,
    pub enet: Vec<f64>,
    pub effective: Vec<f64>,
}

pub fn weights(classes: &[ClassCount], beta: f64) -> ClassWeights {
    ClassWeights {
        inverse: inverse_frequency(classes),
        median: median_frequency(classes),
        enet: enet(classes),
        effective: effective_number(classes, beta),
    }
}

fn present(classes: &[ClassCount]) -> usize {
    classes.iter().filter(|c| c.pixels > 0).count()
}

pub fn inverse_frequency(classes: &[ClassCount]) -> Vec<f64> {
    let total: u64 = classes.iter().map(|c| c.pixels).sum();
    let k = present(classes) as f64;
    classes
        .iter()
        .map(|c| match c.pixels {
            0 => 0.0,
            n => total as f64 / (k * n as f64),
        })
        .collect()
}

pub fn median_frequency(classes: &[ClassCount]) -> Vec<f64> {
    let freq: Vec<Option<f64>> = classes
        .iter()
        .map(|c| {
            (c.pixels > 0 && c.image_pixels > 0).then(|| c.pixels as f64 / c.image_pixels as f64)
        })
        .collect();
    let mut sorted: Vec<f64> = freq.iter().flatten().copied().collect();
    sorted.sort_by(f64::total_cmp);
    let median = match sorted.len() {
        0 => return vec![0.0; classes.len()],
        n if !n.is_multiple_of(2) => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    };
    freq.iter().map(|f| f.map_or(0.0, |f| median / f)).collect()
}

pub fn enet(classes: &[ClassCount]) -> Vec<f64> {
    let total: u64 = classes.iter().map(|c| c.pixels).sum();
    classes
        .iter()
        .map(|c| match c.pixels {
            0 => 0.0,
            n => 1.0 / (1.02 + n as f64 / total as f64).ln(),
        })
        .collect()
}

pub fn effective_number(classes: &[ClassCount], beta: f64) -> Vec<f64> {
    let ln_beta = (-(1.0 - beta)).ln_1p();
    let raw: Vec<f64> = classes
        .iter()
        .map(|c| match c.images {
            0 => 0.0,
            // 1 / E_c = (1 - β) / (1 - β^n)
            n => (1.0 - beta) / -(n as f64 * ln_beta).exp_m1(),
        })
        .collect();
    let sum: f64 = raw.iter().sum();
    let k = raw.iter().filter(|w| **w > 0.0).count() as f64;
    raw.iter()
        .map(|w| if sum > 0.0 { w * k / sum } else { 0.0 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(pixels: u64, images: u64, image_pixels: u64) -> ClassCount {
        ClassCount {
            pixels,
            images,
            image_pixels,
            ..Default::default()
        }
    }

    /// Three classes over 4 images of 100 pixels: class 0 in all 4 (300 px), class 1 in 2
    /// (80 px), class 2 in 1 (20 px). Worked by hand below.
    fn example() -> Vec<ClassCount> {
        vec![class(300, 4, 400), class(80, 2, 200), class(20, 1, 100)]
    }

    fn close(a: &[f64], b: &[f64]) {
        assert!(
            a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9),
            "{a:?} vs {b:?}"
        );
    }

    #[test]
    fn inverse_frequency_by_hand() {
        // N = 400, K = 3: 400/900, 400/240, 400/60
        close(
            &inverse_frequency(&example()),
            &[4.0 / 9.0, 5.0 / 3.0, 20.0 / 3.0],
        );
    }

    #[test]
    fn median_frequency_by_hand() {
        // f = 300/400 = 0.75, 80/200 = 0.4, 20/100 = 0.2; median 0.4
        close(&median_frequency(&example()), &[0.4 / 0.75, 1.0, 2.0]);
    }

    #[test]
    fn enet_by_hand() {
        // p = 0.75, 0.2, 0.05
        let want = [1.0 / 1.77f64.ln(), 1.0 / 1.22f64.ln(), 1.0 / 1.07f64.ln()];
        close(&enet(&example()), &want);
    }

    #[test]
    fn effective_number_by_hand() {
        // β = 0.5, n = 4, 2, 1: 1/E = 0.5/(1-1/16), 0.5/(1-1/4), 0.5/(1-1/2) = 8/15, 2/3, 1
        let raw = [8.0 / 15.0, 2.0 / 3.0, 1.0];
        let sum: f64 = raw.iter().sum();
        let want: Vec<f64> = raw.iter().map(|w| w * 3.0 / sum).collect();
        close(&effective_number(&example(), 0.5), &want);
    }

    #[test]
    fn absent_classes_get_zero_and_huge_counts_do_not_underflow() {
        let mut c = example();
        c.push(class(0, 0, 0));
        let w = weights(&c, 0.9999);
        for scheme in [&w.inverse, &w.median, &w.enet, &w.effective] {
            assert_eq!(scheme[3], 0.0);
            assert!(
                scheme[..3].iter().all(|x| x.is_finite() && *x > 0.0),
                "{scheme:?}"
            );
        }
        // a million images: β^n underflows to 0 in f64 powf, expm1 keeps it exact
        let big = effective_number(&[class(1, 1_000_000, 1), class(1, 1, 1)], 0.999_999_9);
        assert!(big.iter().all(|x| x.is_finite() && *x > 0.0), "{big:?}");
        assert!(big[1] > big[0]);
    }
}
