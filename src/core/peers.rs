//! `PeerList`: one address family's peers of one swarm, generic over the
//! record so public (address-keyed) and private (user + peer_id keyed) peers
//! share the same storage and selection code.
//!
//! Layout: a single `Vec` partitioned in place, seeders in `[0, seeders)`,
//! leechers in `[seeders, len)`. A seeder asking for peers is handed
//! leechers only, so the partition makes "leechers only" a slice, not a
//! scan. Most public swarms hold one or two peers, so small lists have no
//! index at all (a linear scan of a few packed records is cheaper than a
//! hash); a list that grows past `INDEX_FROM` builds a key → position map
//! and drops it again below `INDEX_UNTIL`. Every operation on the announce
//! path is O(1) (amortised) plus O(numwant) for selection, whatever the
//! swarm size.
//!
//! Locking: a `PeerList` lives inside a swarm inside a store stripe; the
//! stripe's mutex guards it. Nothing here locks.

use std::collections::HashMap;
use std::hash::Hash;

use crate::rng::Rng;

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

/// One family's peers of one swarm.
#[derive(Clone, Debug)]
pub struct PeerList<P: PeerRecord> {
    peers: Vec<P>,
    seeders: u32,
    // Boxed on purpose: 8 bytes in every list instead of a 48-byte map
    // header, and almost no swarm is large enough to build an index.
    #[allow(clippy::box_collection)]
    index: Option<Box<HashMap<P::Key, u32>>>,
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

impl<P: PeerRecord> PeerList<P> {
    /// Number of peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// True when the list holds no peer.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Number of seeders.
    pub fn seeders(&self) -> usize {
        self.seeders as usize
    }

    /// Number of leechers.
    pub fn leechers(&self) -> usize {
        self.peers.len() - self.seeders as usize
    }

    /// All peers, seeders first.
    pub fn as_slice(&self) -> &[P] {
        &self.peers
    }

    /// Heap bytes this list owns (for memory accounting in benches).
    pub fn heap_bytes(&self) -> usize {
        let index = self.index.as_ref().map_or(0, |m| {
            m.capacity() * (std::mem::size_of::<(P::Key, u32)>() + 1)
                + std::mem::size_of::<HashMap<P::Key, u32>>()
        });
        self.peers.capacity() * std::mem::size_of::<P>() + index
    }

    /// Position of the peer with this key.
    pub fn find(&self, key: &P::Key) -> Option<usize> {
        match &self.index {
            Some(map) => map.get(key).map(|&i| i as usize),
            None => self.peers.iter().position(|p| p.key() == *key),
        }
    }

    /// The peer at `index`, if any.
    pub fn get(&self, index: usize) -> Option<&P> {
        self.peers.get(index)
    }

    /// Inserts or replaces the peer with `record`'s key and places it in the
    /// seeder or leecher part.
    pub fn upsert(&mut self, record: P, seeder: bool) -> Upserted<P> {
        match self.find(&record.key()) {
            Some(i) => {
                let was_seeder = i < self.seeders as usize;
                let previous = self.peers[i];
                self.peers[i] = record;
                let index = self.set_seeder(i, seeder);
                Upserted {
                    index,
                    previous: Some(previous),
                    was_seeder,
                }
            }
            None => {
                let i = self.peers.len();
                self.peers.push(record);
                if let Some(map) = self.index.as_mut() {
                    map.insert(record.key(), i as u32);
                }
                let index = if seeder {
                    let s = self.seeders as usize;
                    self.swap(i, s);
                    self.seeders += 1;
                    s
                } else {
                    i
                };
                self.maybe_build_index();
                Upserted {
                    index,
                    previous: None,
                    was_seeder: false,
                }
            }
        }
    }

    /// Removes the peer with this key; returns its record and whether it
    /// was a seeder.
    pub fn remove(&mut self, key: &P::Key) -> Option<(P, bool)> {
        let i = self.find(key)?;
        let was_seeder = i < self.seeders as usize;
        self.remove_at(i).map(|p| (p, was_seeder))
    }

    /// Keeps only the peers for which `keep` is true; returns how many
    /// seeders and leechers went. O(len): reaper only.
    pub fn retain(&mut self, mut keep: impl FnMut(&P) -> bool) -> (usize, usize) {
        let (mut seeders, mut leechers) = (0, 0);
        let mut i = 0;
        while i < self.peers.len() {
            if keep(&self.peers[i]) {
                i += 1;
            } else {
                // remove_at moves an unchecked peer into `i`: don't advance.
                if i < self.seeders as usize {
                    seeders += 1;
                } else {
                    leechers += 1;
                }
                self.remove_at(i);
            }
        }
        if self.peers.capacity() > 2 * self.peers.len() + 4 {
            self.peers.shrink_to_fit();
        }
        (seeders, leechers)
    }

    /// Calls `out` for up to `want` distinct peers chosen at random, never
    /// the one at `exclude`. A seeder (`for_seeder`) is offered leechers
    /// only. O(want).
    pub fn sample(
        &self,
        want: usize,
        for_seeder: bool,
        exclude: Option<usize>,
        rng: &mut Rng,
        mut out: impl FnMut(&P),
    ) {
        let start = if for_seeder { self.seeders as usize } else { 0 };
        let pool = &self.peers[start..];
        let exclude = exclude
            .and_then(|e| e.checked_sub(start))
            .filter(|&e| e < pool.len());
        let available = pool.len() - usize::from(exclude.is_some());
        if want == 0 || available == 0 {
            return;
        }
        if want >= available {
            for (i, p) in pool.iter().enumerate() {
                if Some(i) != exclude {
                    out(p);
                }
            }
            return;
        }
        // A random start and a random stride coprime to the pool size visit
        // distinct positions: a sample without repeats in O(want), no
        // scratch memory. One extra step covers skipping the excluded peer.
        let n = pool.len();
        let mut pos = rng.below(n);
        let stride = coprime_stride(n, rng);
        let mut taken = 0;
        for _ in 0..n {
            if taken == want {
                break;
            }
            if Some(pos) != exclude {
                if let Some(p) = pool.get(pos) {
                    out(p);
                    taken += 1;
                }
            }
            pos += stride;
            if pos >= n {
                pos -= n;
            }
        }
    }

    /// Moves the peer at `i` to the seeder or leecher part; returns its new position.
    fn set_seeder(&mut self, i: usize, seeder: bool) -> usize {
        let s = self.seeders as usize;
        if seeder && i >= s {
            self.swap(i, s);
            self.seeders += 1;
            s
        } else if !seeder && i < s {
            self.swap(i, s - 1);
            self.seeders -= 1;
            s - 1
        } else {
            i
        }
    }

    fn remove_at(&mut self, mut i: usize) -> Option<P> {
        let s = self.seeders as usize;
        if i < s {
            // Move the gap to the seeder/leecher boundary first.
            self.swap(i, s - 1);
            self.seeders -= 1;
            i = s - 1;
        }
        let last = self.peers.len().checked_sub(1)?;
        self.swap(i, last);
        let gone = self.peers.pop()?;
        if let Some(map) = self.index.as_mut() {
            map.remove(&gone.key());
        }
        if self.index.is_some() && self.peers.len() < INDEX_UNTIL {
            self.index = None;
        }
        Some(gone)
    }

    fn swap(&mut self, a: usize, b: usize) {
        if a == b {
            return;
        }
        self.peers.swap(a, b);
        if let Some(map) = self.index.as_mut() {
            map.insert(self.peers[a].key(), a as u32);
            map.insert(self.peers[b].key(), b as u32);
        }
    }

    fn maybe_build_index(&mut self) {
        if self.index.is_none() && self.peers.len() > INDEX_FROM {
            let mut map = HashMap::with_capacity(self.peers.len() * 2);
            for (i, p) in self.peers.iter().enumerate() {
                map.insert(p.key(), i as u32);
            }
            self.index = Some(Box::new(map));
        }
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
        if let Some(map) = &list.index {
            assert_eq!(map.len(), list.len());
            for (i, p) in list.peers.iter().enumerate() {
                assert_eq!(map.get(&p.0), Some(&(i as u32)), "index of {}", p.0);
            }
        }
        for p in &list.peers {
            assert!(list.find(&p.0).is_some());
        }
    }

    #[test]
    fn upsert_moves_between_parts() {
        let mut l = PeerList::default();
        l.upsert(P(1, 0), false);
        l.upsert(P(2, 0), true);
        l.upsert(P(3, 0), false);
        check(&l, &[2], &[1, 3]);
        let u = l.upsert(P(1, 5), true);
        assert_eq!(u.previous, Some(P(1, 0)));
        assert_eq!(l.get(u.index), Some(&P(1, 5)));
        check(&l, &[1, 2], &[3]);
        l.upsert(P(2, 6), false);
        check(&l, &[1], &[2, 3]);
        assert_eq!(l.remove(&1), Some((P(1, 5), true)));
        check(&l, &[], &[2, 3]);
        assert_eq!(l.remove(&9), None);
    }

    #[test]
    fn index_stays_consistent_across_growth_and_shrink() {
        let mut l = PeerList::default();
        for k in 0..200u32 {
            l.upsert(P(k, k), k % 3 == 0);
        }
        assert!(l.index.is_some());
        let seeders: Vec<u32> = (0..200).filter(|k| k % 3 == 0).collect();
        let leechers: Vec<u32> = (0..200).filter(|k| k % 3 != 0).collect();
        check(&l, &seeders, &leechers);
        for k in (0..200u32).step_by(2) {
            l.upsert(P(k, k), k % 4 == 0);
        }
        for k in 0..190u32 {
            l.remove(&k);
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
                l.upsert(P(k, k % 7), k % 2 == 0);
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
                l.upsert(P(k, 0), k % 4 == 0);
            }
            for want in [0usize, 1, 5, 50, 5000] {
                for for_seeder in [false, true] {
                    let me = l.find(&0).unwrap_or(0);
                    let mut got = Vec::new();
                    l.sample(want, for_seeder, Some(me), &mut rng, |p| got.push(p.0));
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
            l.upsert(P(k, 0), false);
        }
        let mut seen = vec![false; 500];
        for _ in 0..200 {
            l.sample(10, false, None, &mut rng, |p| seen[p.0 as usize] = true);
        }
        assert!(seen.iter().filter(|&&s| s).count() > 490);
    }
}
