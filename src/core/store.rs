//! The striped-mutex map from info hash to swarm.
//!
//! `stripes` mutexes (a power of two), each over its own `HashMap`. The
//! stripe is chosen by a keyed hash (std's `RandomState`, random per
//! process), so nobody can aim many torrents at one stripe; the maps use
//! keyed hashes too. Locking rules: `stripe()` hands out the guard that owns
//! the data; hold one stripe at a time, do no I/O and no big allocation
//! under it. Generic over the swarm type, so private mode brings its own.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard};

use super::InfoHash;

/// One stripe's torrents.
pub type Stripe<S> = HashMap<InfoHash, S>;

/// `stripes` mutexes over maps of info hash → swarm.
pub struct Store<S> {
    stripes: Box<[Mutex<Stripe<S>>]>,
    mask: usize,
    hasher: RandomState,
}

impl<S> Store<S> {
    /// A store with `stripes` stripes (rounded up to a power of two).
    pub fn new(stripes: usize) -> Store<S> {
        let n = stripes.max(1).next_power_of_two();
        Store {
            stripes: (0..n).map(|_| Mutex::new(HashMap::new())).collect(),
            mask: n - 1,
            hasher: RandomState::new(),
        }
    }

    /// Locks and returns the stripe that holds `hash`.
    pub fn stripe(&self, hash: &InfoHash) -> MutexGuard<'_, Stripe<S>> {
        let i = self.hasher.hash_one(hash) as usize & self.mask;
        self.lock(i)
    }

    /// Number of stripes.
    pub fn stripe_count(&self) -> usize {
        self.stripes.len()
    }

    /// Locks stripe `i` (the reaper walks them in order); `i` wraps.
    pub fn lock(&self, i: usize) -> MutexGuard<'_, Stripe<S>> {
        let m = &self.stripes[i & self.mask];
        // A poisoned stripe means a thread panicked holding it; the
        // supervisor is already stopping the process. Keep serving the
        // data rather than cascading panics into every worker.
        m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_hash_same_stripe_and_rounding() {
        let s: Store<u32> = Store::new(1000);
        assert_eq!(s.stripe_count(), 1024);
        s.stripe(&[7; 20]).insert([7; 20], 1);
        assert_eq!(s.stripe(&[7; 20]).get(&[7; 20]), Some(&1));
        let total: usize = (0..s.stripe_count()).map(|i| s.lock(i).len()).sum();
        assert_eq!(total, 1);
        assert_eq!(Store::<u32>::new(0).stripe_count(), 1);
    }
}
