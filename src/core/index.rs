//! The key → position index of a big `PeerList` (issue 5: bytes per peer).
//!
//! An open-addressing table (linear probing) of `u32` positions into the
//! list; the key lives only in the record, so an entry costs 4 bytes
//! instead of a `HashMap<[u8; 6], u32>` entry's 12 + 1 at a lower load.
//! The table holds between 3/8 and 3/4 of its slots (2× growth at 3/4;
//! rebuilt smaller by `shrink` below 1/8). Probes hash the key with a
//! keyed hasher (std's `RandomState`, random per table): a client picks
//! its port, and could otherwise aim many keys at one probe chain.
//! Deletion shifts the following entries back (no tombstones), so a probe
//! ends at the first empty slot.
//!
//! Every call takes the list's records: the index never holds a key, and a
//! position past the records reads as a miss, never a panic.

use std::hash::{BuildHasher, RandomState};

use super::peers::PeerRecord;
use crate::sys::prefetch::prefetch;

const EMPTY: u32 = u32::MAX;

/// Positions of a list's records, found by key.
#[derive(Clone, Debug)]
pub struct PosIndex {
    slots: Box<[u32]>,
    len: usize,
    hasher: RandomState,
}

impl PosIndex {
    /// An index of every record.
    pub fn build<P: PeerRecord>(records: &[P]) -> PosIndex {
        let size = (records.len() * 2).next_power_of_two().max(16);
        let mut index = PosIndex {
            slots: vec![EMPTY; size].into_boxed_slice(),
            len: 0,
            hasher: RandomState::new(),
        };
        for (pos, p) in records.iter().enumerate() {
            index.put::<P>(&p.key(), pos);
        }
        index
    }

    /// Heap bytes (memory accounting).
    pub fn heap_bytes(&self) -> usize {
        self.slots.len() * 4
    }

    fn home<P: PeerRecord>(&self, key: &P::Key) -> usize {
        self.hasher.hash_one(key) as usize & (self.slots.len() - 1)
    }

    fn next(&self, slot: usize) -> usize {
        (slot + 1) & (self.slots.len() - 1)
    }

    /// Starts loading the slot where a probe for `key` begins
    /// (`Swarm::aim`).
    pub fn prefetch_home<P: PeerRecord>(&self, key: &P::Key) {
        if let Some(slot) = self.slots.get(self.home::<P>(key)) {
            prefetch((slot as *const u32).cast());
        }
    }

    /// Starts loading the record that the first slot of `key`'s probe
    /// names (`Swarm::reach`): best once that slot has arrived
    /// (`prefetch_home`). Usually the record is the key's own; when it is
    /// not, the hint is wasted, never wrong.
    pub fn prefetch_record<P: PeerRecord>(&self, records: &[P], key: &P::Key) {
        let pos = self.slots.get(self.home::<P>(key)).copied();
        if let Some(p) = pos.and_then(|pos| records.get(pos as usize)) {
            prefetch((p as *const P).cast());
        }
    }

    /// Position of the record with `key`.
    pub fn find<P: PeerRecord>(&self, records: &[P], key: &P::Key) -> Option<usize> {
        let mut slot = self.home::<P>(key);
        loop {
            let pos = *self.slots.get(slot)?;
            if pos == EMPTY {
                return None;
            }
            if records.get(pos as usize).is_some_and(|p| p.key() == *key) {
                return Some(pos as usize);
            }
            slot = self.next(slot);
        }
    }

    /// The slot holding `pos`, whose record's key is `key`.
    fn slot_of<P: PeerRecord>(&self, key: &P::Key, pos: usize) -> Option<usize> {
        let mut slot = self.home::<P>(key);
        loop {
            let at = *self.slots.get(slot)?;
            if at == EMPTY {
                return None;
            }
            if at as usize == pos {
                return Some(slot);
            }
            slot = self.next(slot);
        }
    }

    fn put<P: PeerRecord>(&mut self, key: &P::Key, pos: usize) {
        let mut slot = self.home::<P>(key);
        while self.slots.get(slot).is_some_and(|&at| at != EMPTY) {
            slot = self.next(slot);
        }
        if let Some(s) = self.slots.get_mut(slot) {
            *s = pos as u32;
            self.len += 1;
        }
    }

    /// Adds the record at `pos` (already in `records`); grows at 3/4 full.
    pub fn insert<P: PeerRecord>(&mut self, records: &[P], pos: usize) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            *self = PosIndex::build(records);
            return;
        }
        if let Some(p) = records.get(pos) {
            self.put::<P>(&p.key(), pos);
        }
    }

    /// Records `a` and `b` traded places (`records` is after the swap).
    pub fn swapped<P: PeerRecord>(&mut self, records: &[P], a: usize, b: usize) {
        let (Some(now_a), Some(now_b)) = (records.get(a), records.get(b)) else {
            return;
        };
        // Find both slots before writing either: a slot is found by the
        // position it holds.
        let slot_a = self.slot_of::<P>(&now_a.key(), b);
        let slot_b = self.slot_of::<P>(&now_b.key(), a);
        if let Some(s) = slot_a.and_then(|s| self.slots.get_mut(s)) {
            *s = a as u32;
        }
        if let Some(s) = slot_b.and_then(|s| self.slots.get_mut(s)) {
            *s = b as u32;
        }
    }

    /// Drops `gone` (key `key`), which was at `pos`, the last position;
    /// `records` no longer holds it.
    pub fn removed<P: PeerRecord>(&mut self, records: &[P], key: &P::Key, pos: usize) {
        let Some(mut hole) = self.slot_of::<P>(key, pos) else {
            return;
        };
        if let Some(s) = self.slots.get_mut(hole) {
            *s = EMPTY;
            self.len -= 1;
        }
        // Backward shift: move up each later entry of the run whose home
        // is not in (hole, slot], so no probe crosses the new gap.
        let mut slot = self.next(hole);
        while let Some(&at) = self.slots.get(slot).filter(|&&at| at != EMPTY) {
            let Some(home) = records.get(at as usize).map(|p| self.home::<P>(&p.key())) else {
                return;
            };
            let between = if hole <= slot {
                hole < home && home <= slot
            } else {
                hole < home || home <= slot
            };
            if !between {
                self.slots.swap(hole, slot);
                hole = slot;
            }
            slot = self.next(slot);
        }
    }

    /// Rebuilt smaller when under 1/8 full (the reaper calls it).
    pub fn shrink<P: PeerRecord>(&mut self, records: &[P]) {
        if self.len * 8 < self.slots.len() && self.slots.len() > 16 {
            *self = PosIndex::build(records);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    use crate::core::peers::KeyOnly as P;

    fn check(index: &PosIndex, records: &[P]) {
        assert_eq!(index.len, records.len());
        for (pos, p) in records.iter().enumerate() {
            assert_eq!(index.find(records, &p.0), Some(pos), "key {}", p.0);
        }
        let filled = index.slots.iter().filter(|&&s| s != EMPTY).count();
        assert_eq!(filled, records.len());
    }

    /// Pushes, swaps and pops as `PeerList` does, checked after each step.
    #[test]
    fn follows_pushes_swaps_and_pops() {
        let mut rng = Rng::from_seed(9);
        let mut records: Vec<P> = (0..60).map(P).collect();
        let mut index = PosIndex::build(&records);
        let mut next = 60;
        for step in 0..20_000 {
            match rng.below(3) {
                0 if records.len() < 3_000 => {
                    records.push(P(next));
                    next += 1;
                    index.insert(&records, records.len() - 1);
                }
                1 if !records.is_empty() => {
                    let (a, b) = (rng.below(records.len()), rng.below(records.len()));
                    records.swap(a, b);
                    if a != b {
                        index.swapped(&records, a, b);
                    }
                }
                _ => {
                    if let Some(gone) = records.pop() {
                        index.removed(&records, &gone.0, records.len());
                    }
                }
            }
            if step % 500 == 0 {
                index.shrink(&records);
            }
            check(&index, &records);
            assert_eq!(index.find(&records, &u32::MAX), None);
        }
    }

    #[test]
    fn stays_between_three_eighths_and_three_quarters() {
        let mut records = Vec::new();
        let mut index = PosIndex::build(&records);
        for k in 0..100_000 {
            records.push(P(k));
            index.insert(&records, records.len() - 1);
            assert!(index.len * 4 <= index.slots.len() * 3);
        }
        assert!(index.len * 8 >= index.slots.len() * 3);
        assert!(index.heap_bytes() <= 100_000 * 4 * 8 / 3);
    }
}
