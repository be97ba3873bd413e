//! The random numbers of one augmented copy: SplitMix64 seeded from sha256(seed, key, copy), so a
//! copy's parameters depend on nothing but those three (not on threads, workers or order). Written
//! out rather than taken from a crate so the stream can never change under a dependency update.
use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct Draw {
    state: u64,
    /// The second value of the last Box–Muller pair.
    spare: Option<f64>,
}

impl Draw {
    pub fn new(seed: u64, key: &str, copy: u32) -> Self {
        let mut h = Sha256::new();
        h.update(b"segprep-augment\0");
        h.update(seed.to_le_bytes());
        h.update(key.as_bytes());
        h.update([0]);
        h.update(copy.to_le_bytes());
        let digest = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Draw {
            state: u64::from_le_bytes(first),
            spare: None,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi].
    pub fn uniform(&mut self, [lo, hi]: [f64; 2]) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform integer in 0..=n.
    pub fn upto(&mut self, n: u32) -> u32 {
        ((self.unit() * (n as f64 + 1.0)) as u32).min(n)
    }

    /// Standard normal (Box–Muller, both values of each pair used).
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        let radius = (-2.0 * u1.ln()).sqrt();
        let (sin, cos) = (std::f64::consts::TAU * u2).sin_cos();
        self.spare = Some(radius * sin);
        radius * cos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_stream_other_inputs_other_stream() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut d = Draw::new(7, "a", 1);
                move |_| d.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut d = Draw::new(7, "a", 1);
                move |_| d.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        for (seed, key, copy) in [(8, "a", 1), (7, "b", 1), (7, "a", 2)] {
            let mut d = Draw::new(seed, key, copy);
            assert_ne!(d.next_u64(), a[0]);
        }
    }

    #[test]
    fn ranges_hold() {
        let mut d = Draw::new(1, "k", 0);
        for _ in 0..10_000 {
            let u = d.uniform([-2.0, 3.0]);
            assert!((-2.0..=3.0).contains(&u));
            assert!(d.upto(3) <= 3);
        }
        let mean: f64 = (0..20_000).map(|_| d.normal()).sum::<f64>() / 20_000.0;
        assert!(mean.abs() < 0.05);
    }
}
