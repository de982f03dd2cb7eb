//! A small, fast, non-cryptographic random generator (wyrand) for peer
//! selection and interval jitter. Each worker owns one: no sharing, no locks.
//! Seeds come from std's `RandomState`, which the OS seeds per process.

use std::hash::{BuildHasher, RandomState};

/// wyrand: 64-bit state, one multiply per number; plenty for sampling.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from the OS (through `RandomState`).
    pub fn from_entropy() -> Rng {
        Rng(RandomState::new().hash_one(0x6861_7961_7465u64))
    }

    /// A generator with a fixed seed (tests, benches).
    pub fn from_seed(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    }

    /// A number in `0..n` (0 when n is 0), by Lemire's multiply-shift.
    pub fn below(&mut self, n: usize) -> usize {
        scale(self.next_u64(), n)
    }
}

/// `draw` (64 random bits) as a number in `0..n`, as `Rng::below` makes
/// it: for a draw taken before `n` is known.
pub fn scale(draw: u64, n: usize) -> usize {
    ((u128::from(draw) * n as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_spreads() {
        let mut r = Rng::from_seed(42);
        let mut hits = [0u32; 10];
        for _ in 0..10_000 {
            let v = r.below(10);
            hits[v] += 1;
        }
        assert!(hits.iter().all(|&h| h > 800), "{hits:?}");
        assert_eq!(r.below(0), 0);
        assert_eq!(r.below(1), 0);
    }
}
