//! The striped-mutex map from info hash to swarm.
//!
//! `stripes` mutexes (a power of two), each over its own `Table`
//! (`table.rs`). One keyed hash of the info hash (std's `RandomState`,
//! random per process, so nobody can aim many torrents at one stripe or
//! one slot) picks both the stripe (high bits) and the slot in its table
//! (low bits): every table shares the store's hash keys. Locking rules:
//! `stripe()` hands out the guard that owns the data; hold one stripe at a
//! time, do no I/O and no big allocation under it. Generic over the swarm
//! type.
//!
//! Prefetch: next to each mutex the stripe publishes where its table's
//! arrays are (`Layout`, refreshed by the guard when it is dropped), so
//! `prefetch_stripe` and `prefetch_slot` can start loading a torrent's
//! lines without the lock; a stale layout only prefetches the wrong line.

use std::hash::{BuildHasher, RandomState};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use super::table::Table;
use super::InfoHash;
use crate::sys::prefetch::prefetch;

/// One stripe's torrents.
pub type Stripe<S> = Table<S, RandomState>;

/// A stripe's mutex and the published layout of its table. (Aligning
/// each to its own two cache lines measured no better: 0.5% worse.)
struct Cell<S> {
    table: Mutex<Stripe<S>>,
    dist: AtomicPtr<u8>,
    slots: AtomicPtr<u8>,
    mask: AtomicUsize,
}

/// `stripes` mutexes over tables of info hash → swarm.
pub struct Store<S> {
    stripes: Box<[Cell<S>]>,
    mask: usize,
    hasher: RandomState,
}

/// A locked stripe: derefs to its table; publishes the table's layout
/// for `Store::prefetch_slot` when dropped (still under the lock).
pub struct Guard<'a, S: Default> {
    table: MutexGuard<'a, Stripe<S>>,
    cell: &'a Cell<S>,
}

impl<S: Default> Deref for Guard<'_, S> {
    type Target = Stripe<S>;
    fn deref(&self) -> &Stripe<S> {
        &self.table
    }
}

impl<S: Default> DerefMut for Guard<'_, S> {
    fn deref_mut(&mut self) -> &mut Stripe<S> {
        &mut self.table
    }
}

impl<S: Default> Drop for Guard<'_, S> {
    fn drop(&mut self) {
        let l = self.table.layout();
        let c = self.cell;
        // Changes only when the table was reallocated: read first, so the
        // common case writes nothing to the shared line.
        if c.dist.load(Relaxed).cast_const() != l.dist {
            c.dist.store(l.dist.cast_mut(), Relaxed);
        }
        if c.slots.load(Relaxed).cast_const() != l.slots {
            c.slots.store(l.slots.cast_mut(), Relaxed);
        }
        if c.mask.load(Relaxed) != l.mask {
            c.mask.store(l.mask, Relaxed);
        }
    }
}

impl<S: Default> Store<S> {
    /// A store with `stripes` stripes (rounded up to a power of two).
    pub fn new(stripes: usize) -> Store<S> {
        let n = stripes.max(1).next_power_of_two();
        let hasher = RandomState::new();
        Store {
            stripes: (0..n)
                .map(|_| Cell {
                    table: Mutex::new(Table::new(hasher.clone())),
                    dist: AtomicPtr::default(),
                    slots: AtomicPtr::default(),
                    mask: AtomicUsize::new(0),
                })
                .collect(),
            mask: n - 1,
            hasher,
        }
    }

    /// The keyed hash of `hash` that `stripe_hashed`, the prefetches
    /// and the table's `*_hashed` methods take.
    pub fn hash(&self, hash: &InfoHash) -> u64 {
        self.hasher.hash_one(hash)
    }

    /// The stripe of hash value `h`: its high half (the table's slot
    /// comes from the low bits).
    fn index(&self, h: u64) -> usize {
        (h >> 32) as usize & self.mask
    }

    /// Locks and returns the stripe that holds `hash`.
    pub fn stripe(&self, hash: &InfoHash) -> Guard<'_, S> {
        self.stripe_hashed(self.hash(hash))
    }

    /// Locks and returns the stripe of a torrent whose `hash()` is `h`.
    pub fn stripe_hashed(&self, h: u64) -> Guard<'_, S> {
        self.lock(self.index(h))
    }

    /// Starts loading, without locking, the stripe of the torrent whose
    /// `hash()` is `h`: its mutex and published layout.
    pub fn prefetch_stripe(&self, h: u64) {
        let Some(cell) = self.stripes.get(self.index(h)) else {
            return;
        };
        // Its first and last byte: the mutex, and the layout after it.
        let at: *const u8 = (cell as *const Cell<S>).cast();
        prefetch(at);
        prefetch(at.wrapping_add(std::mem::size_of::<Cell<S>>() - 1));
    }

    /// Starts loading, without locking, the home slot (metadata byte and
    /// entry) of the torrent whose `hash()` is `h`. Reads the stripe's
    /// published layout: best after `prefetch_stripe`.
    pub fn prefetch_slot(&self, h: u64) {
        let Some(cell) = self.stripes.get(self.index(h)) else {
            return;
        };
        let dist = cell.dist.load(Relaxed);
        if dist.is_null() {
            return;
        }
        // Possibly stale (the table may have been reallocated since):
        // then these are addresses of nothing in particular, which a
        // prefetch allows. `wrapping_add` computes them without claiming
        // they point anywhere.
        let home = h as usize & cell.mask.load(Relaxed);
        prefetch(dist.cast_const().wrapping_add(home));
        let slot_bytes = std::mem::size_of::<(InfoHash, S)>();
        prefetch(
            cell.slots
                .load(Relaxed)
                .cast_const()
                .wrapping_add(home * slot_bytes),
        );
    }

    /// Number of stripes.
    pub fn stripe_count(&self) -> usize {
        self.stripes.len()
    }

    /// Locks stripe `i` (the reaper walks them in order); `i` wraps.
    pub fn lock(&self, i: usize) -> Guard<'_, S> {
        let cell = &self.stripes[i & self.mask];
        // A poisoned stripe means a thread panicked holding it; the
        // supervisor is already stopping the process. Keep serving the
        // data rather than cascading panics into every worker.
        let table = cell
            .table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Guard { table, cell }
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

    #[test]
    fn a_dropped_guard_publishes_its_tables_layout() {
        let s: Store<u32> = Store::new(4);
        let key = [9; 20];
        let h = s.hash(&key);
        s.prefetch_stripe(h);
        s.prefetch_slot(h);
        let i = s.index(h);
        assert!(s.stripes[i].dist.load(Relaxed).is_null());
        for n in 0..100u8 {
            let mut k = key;
            k[0] = n;
            let h = s.hash(&k);
            s.stripe_hashed(h).get_or_insert_hashed(h, &k);
        }
        for cell in s.stripes.iter() {
            let l = cell.table.lock().unwrap().layout();
            assert_eq!(cell.dist.load(Relaxed).cast_const(), l.dist);
            assert_eq!(cell.slots.load(Relaxed).cast_const(), l.slots);
            assert_eq!(cell.mask.load(Relaxed), l.mask);
        }
        s.prefetch_stripe(h);
        s.prefetch_slot(h);
        assert_eq!(s.stripe_hashed(h).get(&key), Some(&0));
    }
}
