//! One address family's peers of one swarm, and the rules every peer
//! store follows, generic over the record so public (address-keyed) and
//! private (user + peer_id keyed) peers share the same code.
//!
//! Layout rule: seeders in `[0, seeders)`, leechers in `[seeders, len)`,
//! kept by swaps. A seeder asking for peers is handed leechers only, so
//! the partition makes "leechers only" a range, not a scan. The rules
//! (`upsert`, `remove`, `retain`, `sample`) are written once over the
//! `Slots`/`Records` traits; two stores implement them:
//! - `PeerList` (here): a `Vec` of records, for big swarms. A list longer
//!   than `INDEX_FROM` builds a key → position index (`index.rs`) and drops it again below
//!   `INDEX_UNTIL`, so every operation on the announce path is O(1)
//!   (amortised) plus O(numwant) for selection, whatever the swarm size;
//! - a packed family of a small swarm (`small.rs`): records as bytes in one
//!   allocation shared by both families, found by a linear scan.
//!
//! Locking: a store lives inside a swarm inside a store stripe; the
//! stripe's mutex guards it. Nothing here locks.

use std::hash::Hash;

use super::index::PosIndex;
use crate::rng::{scale, Rng};
use crate::sys::prefetch::prefetch;

/// A list longer than this gets a key → position index.
const INDEX_FROM: usize = 48;
/// An indexed list shorter than this drops its index (hysteresis, so a list
/// oscillating around `INDEX_FROM` does not rebuild it on every announce).
const INDEX_UNTIL: usize = 24;

/// A stored peer: a packed record with an identity key and a coarse
/// last-seen time.
pub trait PeerRecord: Copy {
    /// What identifies this peer within its swarm and family.
    type Key: Copy + Eq + Hash;
    /// This record's identity.
    fn key(&self) -> Self::Key;
    /// Coarse time (store clock seconds) the peer last announced.
    fn last_seen(&self) -> u32;
}

/// Read access to one family's peers of one swarm, seeders first.
pub trait Records<P: PeerRecord> {
    /// Number of peers.
    fn len(&self) -> usize;
    /// Number of seeders (the first `seeders()` records).
    fn seeders(&self) -> usize;
    /// The record at `i`.
    fn get(&self, i: usize) -> Option<P>;
    /// Position of the peer with this key.
    fn find(&self, key: &P::Key) -> Option<usize>;
    /// Calls `f` with each position in `range` and its record, in order,
    /// until it returns false (a store that can lend a slice walks it
    /// without a lookup per record).
    fn visit(&self, range: std::ops::Range<usize>, mut f: impl FnMut(usize, &P) -> bool) {
        for i in range {
            if let Some(p) = self.get(i) {
                if !f(i, &p) {
                    return;
                }
            }
        }
    }
    /// Number of leechers.
    fn leechers(&self) -> usize {
        self.len().saturating_sub(self.seeders())
    }
    /// True when there is no peer.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A store the partition rules can change.
pub trait Slots<P: PeerRecord>: Records<P> {
    /// Overwrites the record at `i` (same key).
    fn set(&mut self, i: usize, record: P);
    /// Swaps two records.
    fn swap(&mut self, a: usize, b: usize);
    /// Appends a record.
    fn push(&mut self, record: P);
    /// Removes the last record.
    fn pop(&mut self) -> Option<P>;
    /// Sets the seeder count (the partition point).
    fn set_seeders(&mut self, n: usize);
}

/// Where an upsert left the peer and what it was before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upserted<P> {
    /// The peer's position now.
    pub index: usize,
    /// The record it replaced, `None` for a new peer.
    pub previous: Option<P>,
    /// The replaced record was a seeder.
    pub was_seeder: bool,
}

/// Inserts or replaces the peer with `record`'s key and places it in the
/// seeder or leecher part.
pub fn upsert<P: PeerRecord>(s: &mut impl Slots<P>, record: P, seeder: bool) -> Upserted<P> {
    if let Some((i, previous)) = s.find(&record.key()).and_then(|i| s.get(i).map(|p| (i, p))) {
        let was_seeder = i < s.seeders();
        s.set(i, record);
        let index = set_seeder(s, i, seeder);
        return Upserted {
            index,
            previous: Some(previous),
            was_seeder,
        };
    }
    let i = s.len();
    s.push(record);
    let index = if seeder {
        let n = s.seeders();
        s.swap(i, n);
        s.set_seeders(n + 1);
        n
    } else {
        i
    };
    Upserted {
        index,
        previous: None,
        was_seeder: false,
    }
}

/// Removes the peer with this key; returns its record and whether it was
/// a seeder.
pub fn remove<P: PeerRecord>(s: &mut impl Slots<P>, key: &P::Key) -> Option<(P, bool)> {
    let i = s.find(key)?;
    let was_seeder = i < s.seeders();
    remove_at(s, i).map(|p| (p, was_seeder))
}

/// Keeps only the peers for which `keep` is true; returns how many seeders
/// and leechers went. O(len): reaper only.
pub fn retain<P: PeerRecord>(
    s: &mut impl Slots<P>,
    mut keep: impl FnMut(&P) -> bool,
) -> (usize, usize) {
    let (mut seeders, mut leechers) = (0, 0);
    let mut i = 0;
    while let Some(p) = s.get(i) {
        if keep(&p) {
            i += 1;
        } else {
            // remove_at moves an unchecked peer into `i`: don't advance.
            if i < s.seeders() {
                seeders += 1;
            } else {
                leechers += 1;
            }
            remove_at(s, i);
        }
    }
    (seeders, leechers)
}

/// Calls `out` for up to `want` distinct peers chosen at random, never the
/// one at `exclude`. A seeder (`for_seeder`) is offered leechers only.
/// O(want).
pub fn sample<P: PeerRecord>(
    list: &impl Records<P>,
    want: usize,
    for_seeder: bool,
    exclude: Option<usize>,
    rng: &mut Rng,
    mut out: impl FnMut(&P),
) {
    let start = if for_seeder { list.seeders() } else { 0 };
    let n = list.len().saturating_sub(start);
    let exclude = exclude
        .and_then(|e| e.checked_sub(start))
        .filter(|&e| e < n);
    let available = n - usize::from(exclude.is_some());
    if want == 0 || available == 0 {
        return;
    }
    if want >= available {
        for i in (0..n).filter(|&i| Some(i) != exclude) {
            if let Some(p) = list.get(start + i) {
                out(&p);
            }
        }
        return;
    }
    // A random start and a random stride coprime to the pool size visit
    // distinct positions: a sample without repeats in O(want), no scratch
    // memory. One extra step covers skipping the excluded peer.
    let mut pos = rng.below(n);
    let stride = coprime_stride(n, rng);
    let mut taken = 0;
    for _ in 0..n {
        if taken == want {
            break;
        }
        if Some(pos) != exclude {
            if let Some(p) = list.get(start + pos) {
                out(&p);
                taken += 1;
            }
        }
        pos += stride;
        if pos >= n {
            pos -= n;
        }
    }
}

/// Moves the peer at `i` to the seeder or leecher part; returns its new
/// position.
fn set_seeder<P: PeerRecord>(s: &mut impl Slots<P>, i: usize, seeder: bool) -> usize {
    let n = s.seeders();
    if seeder && i >= n {
        s.swap(i, n);
        s.set_seeders(n + 1);
        n
    } else if !seeder && i < n {
        s.swap(i, n - 1);
        s.set_seeders(n - 1);
        n - 1
    } else {
        i
    }
}

fn remove_at<P: PeerRecord>(s: &mut impl Slots<P>, mut i: usize) -> Option<P> {
    let n = s.seeders();
    if i < n {
        // Move the gap to the seeder/leecher boundary first.
        s.swap(i, n - 1);
        s.set_seeders(n - 1);
        i = n - 1;
    }
    let last = s.len().checked_sub(1)?;
    s.swap(i, last);
    s.pop()
}

/// One family's peers of one (big) swarm.
#[derive(Clone, Debug)]
pub struct PeerList<P: PeerRecord> {
    peers: Vec<P>,
    seeders: u32,
    // Inline, not boxed: one cache miss fewer on a big swarm's announce,
    // for 32 bytes more in each of a big swarm's two lists (small swarms
    // have no lists).
    index: Option<PosIndex>,
}

impl<P: PeerRecord> Default for PeerList<P> {
    fn default() -> Self {
        PeerList {
            peers: Vec::new(),
            seeders: 0,
            index: None,
        }
    }
}

impl<P: PeerRecord> Records<P> for PeerList<P> {
    fn len(&self) -> usize {
        self.peers.len()
    }
    fn seeders(&self) -> usize {
        self.seeders as usize
    }
    fn get(&self, i: usize) -> Option<P> {
        self.peers.get(i).copied()
    }
    fn visit(&self, range: std::ops::Range<usize>, mut f: impl FnMut(usize, &P) -> bool) {
        let start = range.start;
        for (i, p) in (start..).zip(self.peers.get(range).unwrap_or(&[])) {
            if !f(i, p) {
                return;
            }
        }
    }
    fn find(&self, key: &P::Key) -> Option<usize> {
        match &self.index {
            Some(index) => index.find(&self.peers, key),
            None => self.peers.iter().position(|p| p.key() == *key),
        }
    }
}

impl<P: PeerRecord> Slots<P> for PeerList<P> {
    fn set(&mut self, i: usize, record: P) {
        if let Some(p) = self.peers.get_mut(i) {
            *p = record;
        }
    }
    fn swap(&mut self, a: usize, b: usize) {
        if a == b || a.max(b) >= self.peers.len() {
            return;
        }
        self.peers.swap(a, b);
        if let Some(index) = self.index.as_mut() {
            index.swapped(&self.peers, a, b);
        }
    }
    fn push(&mut self, record: P) {
        let i = self.peers.len();
        self.peers.push(record);
        match self.index.as_mut() {
            Some(index) => index.insert(&self.peers, i),
            None if self.peers.len() > INDEX_FROM => {
                self.index = Some(PosIndex::build(&self.peers));
            }
            None => {}
        }
    }
    fn pop(&mut self) -> Option<P> {
        let gone = self.peers.pop()?;
        if let Some(index) = self.index.as_mut() {
            index.removed(&self.peers, &gone.key(), self.peers.len());
        }
        if self.index.is_some() && self.peers.len() < INDEX_UNTIL {
            self.index = None;
        }
        Some(gone)
    }
    fn set_seeders(&mut self, n: usize) {
        self.seeders = n.min(self.peers.len()) as u32;
    }
}

impl<P: PeerRecord> PeerList<P> {
    /// A list of `records` (record, seeder), in any order.
    pub fn from_records(records: impl Iterator<Item = (P, bool)>) -> Self {
        let mut list = PeerList::default();
        for (p, seeder) in records {
            upsert(&mut list, p, seeder);
        }
        list
    }

    /// Gives back spare capacity when over half of it is unused.
    fn shrink(&mut self) {
        if self.peers.capacity() > 2 * self.peers.len() + 4 {
            self.peers.shrink_to_fit();
        }
        if let Some(index) = self.index.as_mut() {
            index.shrink(&self.peers);
        }
    }

    /// Starts loading the index slot for `key` (`Swarm::aim`); nothing
    /// when the list has no index (a scan finds the key).
    pub fn prefetch_home(&self, key: &P::Key) {
        if let Some(index) = &self.index {
            index.prefetch_home::<P>(key);
        }
    }

    /// Starts loading the record of `key`, by way of its index slot
    /// (`Swarm::reach`).
    pub fn prefetch_record(&self, key: &P::Key) {
        if let Some(index) = &self.index {
            index.prefetch_record(&self.peers, key);
        }
    }

    /// Starts loading the first `records` records of the window that
    /// `local::sample_near` scans for an announcer (`window`).
    pub fn prefetch_window(&self, for_seeder: bool, draw: u64, records: usize) {
        for run in self.window(for_seeder, draw, records) {
            let at: *const u8 = run.as_ptr().cast();
            for offset in (0..std::mem::size_of_val(run)).step_by(64) {
                prefetch(at.wrapping_add(offset));
            }
        }
    }

    /// The first `records` records of the window that `local::sample_near`
    /// scans for an announcer (`for_seeder`: among the leechers) when its
    /// start's draw is `draw`, in scan order: from the start to the pool's
    /// end, then from the pool's beginning.
    fn window(&self, for_seeder: bool, draw: u64, records: usize) -> [&[P]; 2] {
        let start = if for_seeder { self.seeders() } else { 0 };
        let pool = self.peers.get(start..).unwrap_or(&[]);
        let first = scale(draw, pool.len());
        let (tail, head) = pool.split_at_checked(first).unwrap_or((pool, &[]));
        let head = head.get(..records).unwrap_or(head);
        let tail = tail.get(..records - head.len()).unwrap_or(tail);
        [head, tail]
    }

    /// Heap bytes this list owns (for memory accounting in benches).
    pub fn heap_bytes(&self) -> usize {
        let index = self.index.as_ref().map_or(0, PosIndex::heap_bytes);
        self.peers.capacity() * std::mem::size_of::<P>() + index
    }

    /// Keeps only the peers for which `keep` (a pure test) is true (see
    /// `retain`), then gives back spare capacity.
    ///
    /// An indexed list losing over 1/8 of its peers is compacted in one
    /// pass and its index rebuilt, instead of a swap and two index updates
    /// per peer: `cargo bench --bench memory` with 10M peers over 2M
    /// torrents, all timing out, longest stripe hold 14.5 → 4.5 ms. A list
    /// losing every peer keeps its buffers: the reaper frees the swarm
    /// after unlocking the stripe.
    pub fn retain(&mut self, mut keep: impl FnMut(&P) -> bool) -> (usize, usize) {
        let going = self.peers.iter().filter(|p| !keep(p)).count();
        if going == self.peers.len() && going > 0 {
            // Every peer goes: leave the buffers to be freed with the
            // swarm, after the reaper has let go of the stripe.
            let seeders = self.seeders as usize;
            self.peers.clear();
            self.seeders = 0;
            self.index = None;
            return (seeders, going - seeders);
        }
        let gone = if self.index.is_some() && going * 8 > self.peers.len() {
            self.compact(keep)
        } else if going > 0 {
            retain(self, keep)
        } else {
            (0, 0)
        };
        self.shrink();
        gone
    }

    /// `retain` in one pass: kept records slide down in order, so seeders
    /// stay first; then the index is rebuilt (or dropped).
    fn compact(&mut self, mut keep: impl FnMut(&P) -> bool) -> (usize, usize) {
        let seeders = self.seeders as usize;
        let (mut kept_seeders, mut gone_seeders, mut gone_leechers) = (0, 0, 0);
        let mut write = 0;
        for read in 0..self.peers.len() {
            let Some(p) = self.peers.get(read).copied() else {
                break;
            };
            if keep(&p) {
                if let Some(slot) = self.peers.get_mut(write) {
                    *slot = p;
                }
                write += 1;
                kept_seeders += usize::from(read < seeders);
            } else if read < seeders {
                gone_seeders += 1;
            } else {
                gone_leechers += 1;
            }
        }
        self.peers.truncate(write);
        self.seeders = kept_seeders as u32;
        self.index = (self.peers.len() >= INDEX_UNTIL).then(|| PosIndex::build(&self.peers));
        (gone_seeders, gone_leechers)
    }
}

/// A record that is only its key (tests of the stores and selection).
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeyOnly(pub u32);

#[cfg(test)]
impl PeerRecord for KeyOnly {
    type Key = u32;
    fn key(&self) -> u32 {
        self.0
    }
    fn last_seen(&self) -> u32 {
        0
    }
}

/// A random stride in `1..n` with gcd(stride, n) == 1 (1 when n < 3).
pub(super) fn coprime_stride(n: usize, rng: &mut Rng) -> usize {
    if n < 3 {
        return 1;
    }
    for _ in 0..16 {
        let s = 1 + rng.below(n - 1);
        if gcd(s, n) == 1 {
            return s;
        }
    }
    1
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    struct P(u32, u32);
    impl PeerRecord for P {
        type Key = u32;
        fn key(&self) -> u32 {
            self.0
        }
        fn last_seen(&self) -> u32 {
            self.1
        }
    }

    /// Checks the partition and the index against the records.
    fn check(list: &PeerList<P>, seeders: &[u32], leechers: &[u32]) {
        let mut s: Vec<u32> = list.peers[..list.seeders()].iter().map(|p| p.0).collect();
        let mut l: Vec<u32> = list.peers[list.seeders()..].iter().map(|p| p.0).collect();
        s.sort();
        l.sort();
        assert_eq!(s, seeders, "seeders");
        assert_eq!(l, leechers, "leechers");
        if let Some(index) = &list.index {
            for (i, p) in list.peers.iter().enumerate() {
                assert_eq!(index.find(&list.peers, &p.0), Some(i), "index of {}", p.0);
            }
        }
        for p in &list.peers {
            assert!(list.find(&p.0).is_some());
        }
    }

    #[test]
    fn upsert_moves_between_parts() {
        let mut l = PeerList::default();
        upsert(&mut l, P(1, 0), false);
        upsert(&mut l, P(2, 0), true);
        upsert(&mut l, P(3, 0), false);
        check(&l, &[2], &[1, 3]);
        let u = upsert(&mut l, P(1, 5), true);
        assert_eq!(u.previous, Some(P(1, 0)));
        assert_eq!(l.get(u.index), Some(P(1, 5)));
        check(&l, &[1, 2], &[3]);
        upsert(&mut l, P(2, 6), false);
        check(&l, &[1], &[2, 3]);
        assert_eq!(remove(&mut l, &1), Some((P(1, 5), true)));
        check(&l, &[], &[2, 3]);
        assert_eq!(remove(&mut l, &9), None);
    }

    /// `window` (what `Swarm::reach` prefetches) is where `sample_near`
    /// scans: with every peer a neighbour, a scan for `want` peers reads
    /// exactly the window's first `want` records, so they are the peers
    /// handed out.
    #[test]
    fn window_is_where_sample_near_scans() {
        use crate::core::local::{sample_near, Group, Scratch};
        let mut rng = Rng::from_seed(12);
        for n in [49u32, 60, 200, 1000] {
            let mut l = PeerList::default();
            for k in 0..n {
                upsert(&mut l, P(k, 0), k % 4 != 0);
            }
            for round in 0..200 {
                let (draw, for_seeder) = (rng.next_u64(), round % 2 == 0);
                let want = 1 + rng.below(60);
                let [head, tail] = l.window(for_seeder, draw, want);
                let mut expected: Vec<u32> = head.iter().chain(tail).map(|p| p.0).collect();
                let mut got = Vec::new();
                sample_near(
                    &l,
                    want,
                    for_seeder,
                    None,
                    Some(draw),
                    &mut rng,
                    |_: &P| Group::Subnet,
                    &mut Scratch::default(),
                    |p| got.push(p.0),
                );
                let pool = if for_seeder { l.leechers() } else { l.len() };
                assert_eq!(expected.len(), want.min(pool), "{n} peers, want {want}");
                expected.sort();
                got.sort();
                assert_eq!(got, expected, "{n} peers, want {want}, seeder {for_seeder}");
            }
        }
        let empty = PeerList::<P>::default();
        assert_eq!(empty.window(true, u64::MAX, 8), [&[] as &[P], &[]]);
    }

    #[test]
    fn index_stays_consistent_across_growth_and_shrink() {
        let mut l = PeerList::default();
        for k in 0..200u32 {
            upsert(&mut l, P(k, k), k % 3 == 0);
        }
        assert!(l.index.is_some());
        let seeders: Vec<u32> = (0..200).filter(|k| k % 3 == 0).collect();
        let leechers: Vec<u32> = (0..200).filter(|k| k % 3 != 0).collect();
        check(&l, &seeders, &leechers);
        for k in (0..200u32).step_by(2) {
            upsert(&mut l, P(k, k), k % 4 == 0);
        }
        for k in 0..190u32 {
            remove(&mut l, &k);
        }
        assert!(l.index.is_none());
        let rest: Vec<u32> = (190..200).collect();
        let s: Vec<u32> = rest
            .iter()
            .copied()
            .filter(|k| k % 4 == 0 || (k % 2 == 1 && k % 3 == 0))
            .collect();
        let le: Vec<u32> = rest.iter().copied().filter(|k| !s.contains(k)).collect();
        check(&l, &s, &le);
    }

    #[test]
    fn retain_removes_exactly_the_expired() {
        for n in [0u32, 1, 2, 5, 60, 300] {
            let mut l = PeerList::default();
            for k in 0..n {
                upsert(&mut l, P(k, k % 7), k % 2 == 0);
            }
            let (s, le) = l.retain(|p| p.1 >= 3);
            let gone = (0..n).filter(|k| k % 7 < 3);
            assert_eq!(s + le, gone.clone().count(), "n={n}");
            assert_eq!(s, gone.filter(|k| k % 2 == 0).count());
            let keep = |k: &u32| k % 7 >= 3;
            let sv: Vec<u32> = (0..n).filter(|k| keep(k) && k % 2 == 0).collect();
            let lv: Vec<u32> = (0..n).filter(|k| keep(k) && k % 2 == 1).collect();
            check(&l, &sv, &lv);
        }
    }

    #[test]
    fn sample_is_distinct_excludes_self_and_respects_seeders() {
        let mut rng = Rng::from_seed(7);
        for n in [1u32, 2, 3, 10, 64, 1000] {
            let mut l = PeerList::default();
            for k in 0..n {
                upsert(&mut l, P(k, 0), k % 4 == 0);
            }
            for want in [0usize, 1, 5, 50, 5000] {
                for for_seeder in [false, true] {
                    let me = l.find(&0).unwrap_or(0);
                    let mut got = Vec::new();
                    sample(&l, want, for_seeder, Some(me), &mut rng, |p| got.push(p.0));
                    let mut uniq = got.clone();
                    uniq.sort();
                    uniq.dedup();
                    assert_eq!(uniq.len(), got.len(), "repeats n={n} want={want}");
                    assert!(!got.contains(&0), "self returned");
                    let pool = if for_seeder {
                        l.leechers()
                    } else {
                        l.len() - 1
                    };
                    assert_eq!(
                        got.len(),
                        want.min(pool),
                        "n={n} want={want} seeder={for_seeder}"
                    );
                    if for_seeder {
                        assert!(got.iter().all(|k| k % 4 != 0), "seeder got a seeder");
                    }
                }
            }
        }
    }

    #[test]
    fn sample_covers_the_whole_swarm_over_time() {
        let mut rng = Rng::from_seed(1);
        let mut l = PeerList::default();
        for k in 0..500u32 {
            upsert(&mut l, P(k, 0), false);
        }
        let mut seen = vec![false; 500];
        for _ in 0..200 {
            sample(&l, 10, false, None, &mut rng, |p| seen[p.0 as usize] = true);
        }
        assert!(seen.iter().filter(|&&s| s).count() > 490);
    }
}
