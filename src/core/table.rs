//! One stripe's map from info hash to swarm: open addressing with Robin
//! Hood linear probing, written for the store rather than taken from std.
//!
//! Why not `std::collections::HashMap` (which the store used until issue
//! #5): a UDP worker serves a batch of up to 32 datagrams at a time, and
//! with std's map each announce waits, one after another, for three cache
//! misses (the stripe's mutex, the control bytes, the bucket) that cannot
//! overlap, since each request's lock and unlock are full fences. This
//! table's home slot is a plain function of the hash, and the store
//! publishes where each stripe's arrays are (`Layout`), so a worker can
//! prefetch every request's slot before serving the first one
//! (`Store::prefetch_slot`). It also takes a hash the caller computed once for
//! both the stripe and the slot, where std hashed the key twice.
//!
//! Layout: `dist[i]` is 0 for an empty slot, else 1 + how far the entry in
//! `slots[i]` sits from its home slot (`hash & mask`). An empty slot holds
//! `([0; 20], S::default())` (a default swarm does not allocate), so no
//! slot is ever uninitialised and nothing here needs `unsafe`. Same memory
//! as std's map: a 40-byte slot and one byte of metadata each, at most 7/8
//! full, a power of two slots.
//!
//! Robin Hood: an insert displaces an entry nearer its home than the one
//! being placed, so probe lengths stay short and even at 7/8 load, and a
//! lookup stops as soon as it meets an entry nearer home than it has come.
//! Removal shifts the following run back one slot (no tombstones).
//!
//! Locking: none here; a `Table` lives under its stripe's mutex.

use std::hash::BuildHasher;

use super::InfoHash;

/// Fullest a table gets: 7/8 of its slots (as std's map).
const LOAD_NUM: usize = 7;
const LOAD_DEN: usize = 8;
/// Smallest table that allocates.
const MIN_SLOTS: usize = 8;
/// `dist` of an entry 254 or more slots from home: its distance is then
/// worked out from its key's hash. With a keyed hash at 7/8 load that
/// never happens in practice; a test forces it with a constant hash.
const FAR: u8 = u8::MAX;

/// Where a table's arrays are, for prefetching without its lock: the
/// address of `dist[0]`, of `slots[0]` (a slot is `size_of::<(InfoHash,
/// S)>()` bytes) and the index mask (0 when nothing is allocated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// `dist.as_ptr()`.
    pub dist: *const u8,
    /// `slots.as_ptr()` as bytes.
    pub slots: *const u8,
    /// `slots.len() - 1`, or 0.
    pub mask: usize,
}

/// An info hash → `S` map; see the module note.
pub struct Table<S, H> {
    dist: Box<[u8]>,
    slots: Box<[(InfoHash, S)]>,
    len: usize,
    hasher: H,
}

impl<S: Default, H: BuildHasher + Clone> Table<S, H> {
    /// An empty table (no allocation) hashing with `hasher`.
    pub fn new(hasher: H) -> Self {
        Table {
            dist: Box::default(),
            slots: Box::default(),
            len: 0,
            hasher,
        }
    }

    /// The hash of `key` that the `*_hashed` methods take.
    pub fn hash(&self, key: &InfoHash) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries it can hold before it grows.
    pub fn capacity(&self) -> usize {
        self.slots.len() / LOAD_DEN * LOAD_NUM
    }

    /// Where its arrays are (see `Layout`).
    pub fn layout(&self) -> Layout {
        Layout {
            dist: self.dist.as_ptr(),
            slots: self.slots.as_ptr().cast(),
            mask: self.mask(),
        }
    }

    fn mask(&self) -> usize {
        self.slots.len().saturating_sub(1)
    }

    // Slot indexes below are always masked, and `dist` and `slots` are
    // `mask + 1` long: the indexing cannot go out of bounds.

    /// How far the entry in slot `i` is from its home; `None` if empty.
    #[inline]
    fn distance(&self, i: usize) -> Option<usize> {
        match self.dist[i] {
            0 => None,
            FAR => {
                let home = self.hash(&self.slots[i].0) as usize;
                Some(i.wrapping_sub(home) & self.mask())
            }
            d => Some(usize::from(d) - 1),
        }
    }

    fn set_distance(&mut self, i: usize, d: usize) {
        self.dist[i] = u8::try_from(d + 1).unwrap_or(FAR);
    }

    /// The slot holding `key` (whose hash is `h`).
    fn find(&self, h: u64, key: &InfoHash) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = h as usize & mask;
        let mut d = 0;
        loop {
            // Empty, or an entry nearer its home than `key` would be:
            // Robin Hood would have placed `key` before it.
            match self.distance(i) {
                Some(sd) if sd >= d => {}
                _ => return None,
            }
            if self.slots[i].0 == *key {
                return Some(i);
            }
            i = (i + 1) & mask;
            d += 1;
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &InfoHash) -> Option<&S> {
        self.get_hashed(self.hash(key), key)
    }

    /// The value of `key`, whose hash is `h`.
    pub fn get_hashed(&self, h: u64, key: &InfoHash) -> Option<&S> {
        debug_assert_eq!(h, self.hash(key));
        let i = self.find(h, key)?;
        self.slots.get(i).map(|s| &s.1)
    }

    /// The value of `key`, whose hash is `h`.
    pub fn get_mut_hashed(&mut self, h: u64, key: &InfoHash) -> Option<&mut S> {
        debug_assert_eq!(h, self.hash(key));
        let i = self.find(h, key)?;
        self.slots.get_mut(i).map(|s| &mut s.1)
    }

    /// The value of `key` (hash `h`), inserted as `S::default()` if
    /// absent; true when it was inserted.
    pub fn get_or_insert_hashed(&mut self, h: u64, key: &InfoHash) -> (&mut S, bool) {
        debug_assert_eq!(h, self.hash(key));
        let (i, inserted) = match self.find(h, key) {
            Some(i) => (i, false),
            None => (self.insert_new(h, *key, S::default()), true),
        };
        // `i` is a slot index the probe or the insert just used.
        (&mut self.slots[i].1, inserted)
    }

    /// Sets `key` to `value`; the old value, if any.
    pub fn insert(&mut self, key: InfoHash, value: S) -> Option<S> {
        let h = self.hash(&key);
        match self.find(h, &key) {
            Some(i) => Some(std::mem::replace(&mut self.slots[i].1, value)),
            None => {
                self.insert_new(h, key, value);
                None
            }
        }
    }

    /// Removes `key`; its value, if it was there.
    pub fn remove(&mut self, key: &InfoHash) -> Option<S> {
        self.remove_hashed(self.hash(key), key)
    }

    /// Removes `key` (hash `h`); its value, if it was there.
    pub fn remove_hashed(&mut self, h: u64, key: &InfoHash) -> Option<S> {
        debug_assert_eq!(h, self.hash(key));
        let i = self.find(h, key)?;
        let (_, value) = std::mem::take(&mut self.slots[i]);
        self.dist[i] = 0;
        self.len -= 1;
        self.shift_back(i);
        Some(value)
    }

    /// After slot `hole` was emptied: moves the run after it back one
    /// slot, up to the next empty slot or entry already at home.
    fn shift_back(&mut self, mut hole: usize) {
        let mask = self.mask();
        loop {
            let next = (hole + 1) & mask;
            let d = match self.distance(next) {
                Some(d) if d > 0 => d,
                _ => return,
            };
            self.slots.swap(hole, next);
            self.set_distance(hole, d - 1);
            self.dist[next] = 0;
            hole = next;
        }
    }

    /// Places `key`, known to be absent, growing first when full; returns
    /// its slot.
    fn insert_new(&mut self, h: u64, key: InfoHash, value: S) -> usize {
        if self.len >= self.capacity() {
            self.resize((self.slots.len() * 2).max(MIN_SLOTS));
        }
        self.place(h, key, value)
    }

    /// Robin Hood insert of an absent `key` (hash `h`) into a table with
    /// room for it; returns its slot.
    fn place(&mut self, h: u64, key: InfoHash, value: S) -> usize {
        let mask = self.mask();
        let mut hand = (key, value);
        let mut i = h as usize & mask;
        let mut d = 0;
        let mut landed = None;
        loop {
            match self.distance(i) {
                None => {
                    self.slots[i] = hand;
                    self.set_distance(i, d);
                    self.len += 1;
                    return landed.unwrap_or(i);
                }
                Some(sd) if sd < d => {
                    std::mem::swap(&mut self.slots[i], &mut hand);
                    self.set_distance(i, d);
                    landed.get_or_insert(i);
                    d = sd;
                }
                Some(_) => {}
            }
            i = (i + 1) & mask;
            d += 1;
        }
    }

    /// Moves every entry into a table of `slots` slots (a power of two,
    /// big enough).
    fn resize(&mut self, slots: usize) {
        let old = std::mem::take(&mut self.slots);
        let old_dist = std::mem::replace(&mut self.dist, vec![0; slots].into_boxed_slice());
        self.slots = (0..slots).map(|_| Default::default()).collect();
        self.len = 0;
        for (entry, d) in old.into_vec().into_iter().zip(old_dist.iter()) {
            if *d != 0 {
                let h = self.hash(&entry.0);
                self.place(h, entry.0, entry.1);
            }
        }
    }

    /// Keeps the entries `keep` says yes to; `keep` sees each entry once.
    pub fn retain(&mut self, mut keep: impl FnMut(&InfoHash, &mut S) -> bool) {
        let mut removed = 0;
        for (slot, d) in self.slots.iter_mut().zip(self.dist.iter_mut()) {
            if *d != 0 && !keep(&slot.0, &mut slot.1) {
                *slot = Default::default();
                *d = 0;
                removed += 1;
            }
        }
        if removed == 0 {
            return;
        }
        self.len -= removed;
        self.close_gaps();
    }

    /// After `retain` emptied slots anywhere: moves each entry back to the
    /// first free slot between its home and where it is, in one pass that
    /// keeps the entries' order, so the Robin Hood invariant holds again.
    /// The pass starts at an empty slot that no probe run crosses: the
    /// first of a gap of empty slots whose next entry has its home after
    /// it (entries along a run are in order of home, so no later one has
    /// its home before it either). A slot that was empty before `retain`
    /// (the table is never full) lies in such a gap.
    fn close_gaps(&mut self) {
        let n = self.slots.len();
        let mask = self.mask();
        let mut start = None;
        let mut gap = None;
        for j in 0..2 * n {
            match self.distance(j & mask) {
                None => {
                    gap.get_or_insert(j);
                }
                Some(d) => {
                    if let Some(g) = gap.take() {
                        if d < j - g {
                            start = Some(g & mask);
                            break;
                        }
                    }
                }
            }
        }
        let Some(start) = start else {
            return;
        };
        // Positions are unrolled (start..start + n); every slot in
        // [free, r) is empty.
        let mut free = start;
        for r in start + 1..start + n {
            let at = r & mask;
            let Some(d) = self.distance(at) else {
                continue;
            };
            let to = r - d.min(r - free);
            if to != r {
                let t = to & mask;
                self.slots.swap(t, at);
                self.set_distance(t, d - (r - to));
                self.dist[at] = 0;
            }
            free = to + 1;
        }
    }

    /// Empties it, handing back the old contents as a table (to free
    /// outside the lock); keeps the hasher.
    pub fn take(&mut self) -> Self {
        std::mem::replace(self, Table::new(self.hasher.clone()))
    }

    /// Shrinks to the smallest table that holds its entries.
    pub fn shrink_to_fit(&mut self) {
        let mut want = 0;
        if self.len > 0 {
            want = MIN_SLOTS;
            while want / LOAD_DEN * LOAD_NUM < self.len {
                want *= 2;
            }
        }
        if want < self.slots.len() {
            if want == 0 {
                *self = Table::new(self.hasher.clone());
            } else {
                self.resize(want);
            }
        }
    }

    /// Every entry, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (&InfoHash, &S)> {
        self.slots
            .iter()
            .zip(self.dist.iter())
            .filter(|(_, d)| **d != 0)
            .map(|(s, _)| (&s.0, &s.1))
    }

    /// Every value, in slot order.
    pub fn values(&self) -> impl Iterator<Item = &S> {
        self.iter().map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use std::collections::HashMap;
    use std::hash::{Hasher, RandomState};

    /// Hashes a key to its first `bits` bits of byte 0 (0 bits: every key
    /// the same hash): long runs and wrap-around on purpose.
    #[derive(Clone)]
    struct Crowd(u32);
    struct CrowdHasher(u32, u64);
    impl BuildHasher for Crowd {
        type Hasher = CrowdHasher;
        fn build_hasher(&self) -> CrowdHasher {
            CrowdHasher(self.0, 0)
        }
    }
    impl Hasher for CrowdHasher {
        fn write(&mut self, bytes: &[u8]) {
            // A `[u8; 20]` is hashed as a length, then its 20 bytes.
            if let (20, Some(b)) = (bytes.len(), bytes.first()) {
                self.1 = u64::from(*b);
            }
        }
        fn finish(&self) -> u64 {
            (self.1 & ((1 << self.0) - 1)).wrapping_mul(0x9e37_79b9)
        }
    }

    fn key(rng: &mut Rng, spread: usize) -> InfoHash {
        let mut k = [0; 20];
        k[0] = rng.below(256) as u8;
        k[1] = rng.below(spread) as u8;
        k
    }

    /// Every key reachable, probe distances what `dist` says, the Robin
    /// Hood order along each run, and `len` right.
    fn check<S: Default, H: BuildHasher + Clone>(t: &Table<S, H>, why: &str) {
        let mask = t.mask();
        let mut n = 0;
        for i in 0..t.slots.len() {
            let Some(d) = t.distance(i) else {
                continue;
            };
            n += 1;
            let k = t.slots[i].0;
            let home = t.hash(&k) as usize & mask;
            assert_eq!((i + t.slots.len() - home) & mask, d, "slot {i}");
            assert_eq!(t.dist[i], u8::try_from(d + 1).unwrap_or(FAR), "slot {i}");
            let next = t.distance((i + 1) & mask).unwrap_or(0);
            assert!(next <= d + 1, "slot {i}: a run may grow by one at most");
            assert_eq!(t.find(t.hash(&k), &k), Some(i), "{why}: slot {i}");
        }
        assert_eq!(n, t.len);
        assert!(t.len <= t.capacity() || t.slots.is_empty());
    }

    /// Random inserts, removes, retains and shrinks against std's map,
    /// with a real hash and with crowded ones.
    fn against_model<H: BuildHasher + Clone>(hasher: H, spread: usize, seed: u64) {
        let mut rng = Rng::from_seed(seed);
        let mut t: Table<u32, H> = Table::new(hasher);
        let mut m: HashMap<InfoHash, u32> = HashMap::new();
        for step in 0..4000u32 {
            let k = key(&mut rng, spread);
            let op = rng.below(10);
            match op {
                0..=3 => {
                    let h = t.hash(&k);
                    let (v, inserted) = t.get_or_insert_hashed(h, &k);
                    assert_eq!(inserted, !m.contains_key(&k));
                    *v = step;
                    m.insert(k, step);
                }
                4 => assert_eq!(t.insert(k, step), m.insert(k, step)),
                5..=6 => assert_eq!(t.remove(&k), m.remove(&k)),
                7 => {
                    let cut = rng.below(3) as u32;
                    let mut seen = 0;
                    t.retain(|_, v| {
                        seen += 1;
                        *v % 3 != cut
                    });
                    assert_eq!(seen, m.len(), "retain sees each entry once");
                    m.retain(|_, v| *v % 3 != cut);
                }
                8 if rng.below(20) == 0 => t.shrink_to_fit(),
                _ => {
                    let h = t.hash(&k);
                    assert_eq!(t.get_mut_hashed(h, &k).map(|v| *v), m.get(&k).copied());
                }
            }
            check(&t, &format!("seed {seed} step {step} op {op}"));
            assert_eq!(t.len(), m.len());
        }
        for (k, v) in &m {
            assert_eq!(t.get(k), Some(v));
        }
        let mut got: Vec<_> = t.iter().map(|(k, v)| (*k, *v)).collect();
        let mut want: Vec<_> = m.into_iter().collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
    }

    #[test]
    fn agrees_with_std_map() {
        for seed in 1..4 {
            against_model(RandomState::new(), 256, seed);
            against_model(RandomState::new(), 4, seed);
            // Hashes from 4 bits of the first byte: 16 homes, long runs.
            against_model(Crowd(4), 256, seed);
        }
    }

    #[test]
    fn entries_far_from_home_are_found_and_removed() {
        // Every key the same hash: one run of 600 entries, most of them
        // further from home than `dist` can say (`FAR`).
        let mut t: Table<u32, Crowd> = Table::new(Crowd(0));
        let k = |i: u32| {
            let mut k = [0; 20];
            k[1..5].copy_from_slice(&i.to_le_bytes());
            k
        };
        for i in 0..600 {
            assert_eq!(t.insert(k(i), i), None);
        }
        assert!(t.dist.iter().filter(|&&d| d == FAR).count() > 300);
        check(&t, "");
        for i in 0..600 {
            assert_eq!(t.get(&k(i)), Some(&i), "key {i}");
        }
        for i in (0..600).step_by(3) {
            assert_eq!(t.remove(&k(i)), Some(i));
        }
        t.retain(|_, v| *v % 3 != 1);
        check(&t, "");
        assert_eq!(t.len(), 200);
        for i in 0..600 {
            assert_eq!(t.get(&k(i)).is_some(), i % 3 == 2, "key {i}");
        }
    }

    #[test]
    fn shrink_take_and_capacity() {
        let mut t: Table<u32, RandomState> = Table::new(RandomState::new());
        assert_eq!((t.capacity(), t.layout().mask), (0, 0));
        for i in 0..1000u32 {
            let mut k = [1; 20];
            k[..4].copy_from_slice(&i.to_le_bytes());
            t.insert(k, i);
        }
        assert_eq!(t.capacity(), 1792);
        t.retain(|_, v| *v < 10);
        t.shrink_to_fit();
        assert_eq!((t.len(), t.capacity()), (10, 14));
        check(&t, "");
        let old = t.take();
        assert_eq!((old.len(), t.len(), t.capacity()), (10, 0, 0));
        t.shrink_to_fit();
        assert_eq!(t.capacity(), 0);
    }
}
