//! An HDR-style latency histogram: log2 buckets, each split in 32 linear
//! sub-buckets (3% resolution), over nanoseconds up to centuries. Recording
//! is an index computation and an add: no allocation per request.

/// Sub-bucket bits: 2^5 = 32 sub-buckets per power of two.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Values below 2*SUB are counted exactly (one bucket each).
const EXACT: u64 = 2 * SUB;
/// Buckets: the exact ones plus 32 for each power of two from 2^6 to 2^63.
const BUCKETS: usize = EXACT as usize + (63 - SUB_BITS as usize) * SUB as usize;

/// Counts of values (nanoseconds) by bucket, plus the exact maximum.
#[derive(Clone)]
pub struct Hist {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    max: u64,
}

impl Default for Hist {
    fn default() -> Hist {
        Hist {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            max: 0,
        }
    }
}

fn index(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    let sub = v >> shift; // in [SUB, 2*SUB)
    EXACT as usize + (shift as usize - 1) * SUB as usize + (sub - SUB) as usize
}

/// The largest value that falls in bucket `i`.
fn upper(i: usize) -> u64 {
    if (i as u64) < EXACT {
        return i as u64;
    }
    let j = i - EXACT as usize;
    let shift = (j / SUB as usize + 1) as u32;
    let sub = SUB + (j % SUB as usize) as u64;
    ((sub + 1) << shift).wrapping_sub(1)
}

impl Hist {
    /// Counts one value.
    pub fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Adds `other`'s counts to this one.
    pub fn merge(&mut self, other: &Hist) {
        if other.total == 0 {
            return;
        }
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The largest value counted.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1), as its bucket's upper bound (never
    /// above the maximum): an over-estimate by at most 3%.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i).min(self.max);
            }
        }
        self.max
    }
}

/// Nanoseconds as a short human figure: `850ns`, `42.1us`, `3.20ms`, `1.50s`.
pub fn human(ns: u64) -> String {
    let v = ns as f64;
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{:.1}us", v / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2}ms", v / 1e6)
    } else {
        format!("{:.2}s", v / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for v in (0..100_000u64).chain([u64::MAX / 3, u64::MAX]) {
            let i = index(v);
            assert!(i < BUCKETS);
            assert!(i >= last, "{v}");
            assert!(upper(i) >= v, "{v}: bucket {i} upper {}", upper(i));
            last = i;
        }
    }

    #[test]
    fn quantiles_are_within_three_percent() {
        let mut h = Hist::default();
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        for (q, want) in [
            (0.5, 50_000_000.0),
            (0.99, 99_000_000.0),
            (0.999, 99_900_000.0),
        ] {
            let got = h.quantile(q) as f64;
            assert!(got >= want && got <= want * 1.035, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.quantile(1.0), 100_000_000);
        assert_eq!(h.max(), 100_000_000);
    }
}
