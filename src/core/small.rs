//! Small swarms packed into one allocation (issue 5: bytes per peer).
//!
//! Most public swarms hold one or two peers, so what a swarm costs beside
//! its peers decides memory per peer. A swarm of up to `SMALL_MAX` peers
//! keeps both families in one `Box<[u8]>`, sized exactly:
//!
//! ```text
//! [n4, s4, n6, s6]  counts (u8): IPv4 peers, of them seeders; IPv6 the same
//! downloaded        u32 little-endian: the torrent's completed downloads
//! n4 x V4Peer       11 bytes each, seeders first
//! n6 x V6Peer       23 bytes each, seeders first
//! ```
//!
//! An empty box means no peer and no download (and allocates nothing). The
//! swarm's map entry is then 20 (key) + 16 (this box or the big swarm's
//! pointer) bytes, where two `PeerList`s made it 108. The download count
//! is in the box, not beside it: beside it, it would pad the entry from 40
//! to 48 bytes, while the 4 header bytes it adds to the box mostly vanish
//! in malloc's 16-byte rounding. Growing or
//! shrinking a family reallocates the box: that happens on a join or a
//! leave, not on a re-announce, and copies at most `SMALL_MAX` records.
//! Figures: `swarm.rs`'s header.
//!
//! Records are found by a linear scan of at most `SMALL_MAX` records (as
//! an unindexed `PeerList` is). Nothing here panics on a short or
//! inconsistent buffer: a record that is not there reads as absent.

use std::marker::PhantomData;
use std::ops::Range;

use super::peers::{PeerRecord, Records, Slots};

/// A swarm with more peers than this (both families) is stored as two
/// `PeerList`s; one that falls below half of it is packed again. Kept
/// under `u8::MAX` (the counts are bytes).
pub const SMALL_MAX: usize = 48;

/// Bytes of counts and downloads before the records.
const HEADER: usize = 8;

/// The longest packed record (an IPv6 peer).
const MAX_RECORD: usize = 32;

/// A record with a fixed-size byte form.
pub trait Packed: PeerRecord {
    /// Bytes in the packed form (at most 32).
    const SIZE: usize;
    /// 0 for IPv4, 1 for IPv6: which counts and which part of the box.
    const FAMILY: usize;
    /// Writes the packed form into `out` (`SIZE` bytes).
    fn encode(&self, out: &mut [u8]);
    /// Reads a packed form (`SIZE` bytes).
    fn decode(bytes: &[u8]) -> Option<Self>;
}

/// Bytes per packed IPv4 record (`V4Peer`), so the IPv6 records that
/// follow them can be found; `swarm.rs` checks it at compile time.
pub const V4_SIZE: usize = 11;

fn count(buf: &[u8], at: usize) -> usize {
    buf.get(at).map_or(0, |&b| usize::from(b))
}

/// Peers of both families in a packed buffer.
pub fn total(buf: &[u8]) -> usize {
    count(buf, 0) + count(buf, 2)
}

/// The torrent's completed downloads.
pub fn downloaded(buf: &[u8]) -> u32 {
    buf.get(4..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// Sets the completed downloads (a header is made for an empty swarm).
pub fn set_downloaded(buf: &mut Box<[u8]>, n: u32) {
    if buf.is_empty() {
        *buf = Box::new([0; HEADER]);
    }
    if let Some(b) = buf.get_mut(4..8) {
        b.copy_from_slice(&n.to_le_bytes());
    }
}

/// Keeps the records `keep4` and `keep6` pass (pure tests), in one new
/// allocation (none when every peer goes); returns the (seeders,
/// leechers) that went, per family. The reaper's path: one allocation per
/// swarm instead of one per expired peer.
pub fn retain<A: Packed, B: Packed>(
    buf: &mut Box<[u8]>,
    mut keep4: impl FnMut(&A) -> bool,
    mut keep6: impl FnMut(&B) -> bool,
) -> [(usize, usize); 2] {
    let mut gone = [(0, 0); 2];
    let mut kept = [(0, 0); 2];
    let families = [
        (len_of::<A>(buf), count(buf, 1)),
        (len_of::<B>(buf), count(buf, 3)),
    ];
    let keeps = |family: usize,
                 i: usize,
                 keep4: &mut dyn FnMut(&A) -> bool,
                 keep6: &mut dyn FnMut(&B) -> bool| {
        if family == 0 {
            get_of::<A>(buf, i).is_some_and(|p| keep4(&p))
        } else {
            get_of::<B>(buf, i).is_some_and(|p| keep6(&p))
        }
    };
    for (family, &(n, seeders)) in families.iter().enumerate() {
        for i in 0..n {
            let tally = if keeps(family, i, &mut keep4, &mut keep6) {
                &mut kept[family]
            } else {
                &mut gone[family]
            };
            if i < seeders {
                tally.0 += 1;
            } else {
                tally.1 += 1;
            }
        }
    }
    if gone == [(0, 0); 2] {
        return gone;
    }
    if kept == [(0, 0); 2] {
        *buf = Box::default();
        return gone;
    }
    let count_byte = |n: usize| u8::try_from(n).unwrap_or(u8::MAX);
    let mut out = Vec::with_capacity(
        HEADER + (kept[0].0 + kept[0].1) * A::SIZE + (kept[1].0 + kept[1].1) * B::SIZE,
    );
    out.extend_from_slice(&[
        count_byte(kept[0].0 + kept[0].1),
        count_byte(kept[0].0),
        count_byte(kept[1].0 + kept[1].1),
        count_byte(kept[1].0),
    ]);
    out.extend_from_slice(&downloaded(buf).to_le_bytes());
    for (family, &(n, _)) in families.iter().enumerate() {
        for i in 0..n {
            if keeps(family, i, &mut keep4, &mut keep6) {
                let range = if family == 0 {
                    range_of::<A>(buf, i)
                } else {
                    range_of::<B>(buf, i)
                };
                if let Some(bytes) = range.and_then(|r| buf.get(r)) {
                    out.extend_from_slice(bytes);
                }
            }
        }
    }
    *buf = out.into_boxed_slice();
    gone
}

/// Where family `P`'s records start.
fn start<P: Packed>(buf: &[u8]) -> usize {
    HEADER
        + if P::FAMILY == 1 {
            count(buf, 0) * V4_SIZE
        } else {
            0
        }
}

fn len_of<P: Packed>(buf: &[u8]) -> usize {
    count(buf, 2 * P::FAMILY)
}

fn range_of<P: Packed>(buf: &[u8], i: usize) -> Option<Range<usize>> {
    (i < len_of::<P>(buf)).then(|| {
        let at = start::<P>(buf) + i * P::SIZE;
        at..at + P::SIZE
    })
}

fn get_of<P: Packed>(buf: &[u8], i: usize) -> Option<P> {
    P::decode(buf.get(range_of::<P>(buf, i)?)?)
}

fn find_of<P: Packed>(buf: &[u8], key: &P::Key) -> Option<usize> {
    (0..len_of::<P>(buf)).find(|&i| get_of::<P>(buf, i).is_some_and(|p| p.key() == *key))
}

/// One family (record type `P`) of a packed swarm: read-only over
/// `&[u8]` (`FamilyRef`), to change over `&mut Box<[u8]>` (`FamilyMut`).
pub struct PackedFamily<B, P> {
    buf: B,
    _p: PhantomData<P>,
}

/// A packed family, read-only.
pub type FamilyRef<'a, P> = PackedFamily<&'a [u8], P>;

/// A packed family, to change.
pub type FamilyMut<'a, P> = PackedFamily<&'a mut Box<[u8]>, P>;

impl<B, P> PackedFamily<B, P> {
    /// Family `P` of `buf`.
    pub fn new(buf: B) -> Self {
        PackedFamily {
            buf,
            _p: PhantomData,
        }
    }
}

impl<B: AsRef<[u8]>, P: Packed> Records<P> for PackedFamily<B, P> {
    fn len(&self) -> usize {
        len_of::<P>(self.buf.as_ref())
    }
    fn seeders(&self) -> usize {
        count(self.buf.as_ref(), 2 * P::FAMILY + 1)
    }
    fn get(&self, i: usize) -> Option<P> {
        get_of::<P>(self.buf.as_ref(), i)
    }
    fn find(&self, key: &P::Key) -> Option<usize> {
        find_of::<P>(self.buf.as_ref(), key)
    }
}

impl<P: Packed> FamilyMut<'_, P> {
    fn set_count(&mut self, at: usize, n: usize) {
        if let Some(b) = self.buf.get_mut(at) {
            *b = u8::try_from(n).unwrap_or(u8::MAX);
        }
    }
}

impl<P: Packed> Slots<P> for FamilyMut<'_, P> {
    fn set(&mut self, i: usize, record: P) {
        if let Some(out) = range_of::<P>(self.buf, i).and_then(|r| self.buf.get_mut(r)) {
            record.encode(out);
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        let (Some(ra), Some(rb)) = (range_of::<P>(self.buf, a), range_of::<P>(self.buf, b)) else {
            return;
        };
        if a == b {
            return;
        }
        let mut tmp = [0u8; MAX_RECORD];
        let (Some(t), Some(from_a)) = (tmp.get_mut(..P::SIZE), self.buf.get(ra.clone())) else {
            return;
        };
        t.copy_from_slice(from_a);
        // Both ranges were checked in bounds above; they do not overlap.
        self.buf.copy_within(rb.clone(), ra.start);
        if let (Some(to_b), Some(t)) = (self.buf.get_mut(rb), tmp.get(..P::SIZE)) {
            to_b.copy_from_slice(t);
        }
    }

    fn push(&mut self, record: P) {
        let n = self.len();
        if n >= usize::from(u8::MAX) || P::SIZE > MAX_RECORD {
            debug_assert!(false, "a packed family is full");
            return;
        }
        let mut rec = [0u8; MAX_RECORD];
        let Some(rec) = rec.get_mut(..P::SIZE) else {
            return;
        };
        record.encode(rec);
        let old: &[u8] = if self.buf.is_empty() {
            &[0; HEADER]
        } else {
            &self.buf[..]
        };
        let end = (start::<P>(old) + n * P::SIZE).min(old.len());
        let mut grown = Vec::with_capacity(old.len() + P::SIZE);
        grown.extend_from_slice(&old[..end]);
        grown.extend_from_slice(rec);
        grown.extend_from_slice(&old[end..]);
        *self.buf = grown.into_boxed_slice();
        self.set_count(2 * P::FAMILY, n + 1);
    }

    fn pop(&mut self) -> Option<P> {
        let n = self.len();
        let r = range_of::<P>(self.buf, n.checked_sub(1)?)?;
        let gone = P::decode(self.buf.get(r.clone())?)?;
        let seeders = self.seeders().min(n - 1);
        if total(self.buf) <= 1 {
            *self.buf = Box::default();
            return Some(gone);
        }
        let mut shrunk = Vec::with_capacity(self.buf.len() - P::SIZE);
        shrunk.extend_from_slice(self.buf.get(..r.start)?);
        shrunk.extend_from_slice(self.buf.get(r.end..)?);
        *self.buf = shrunk.into_boxed_slice();
        self.set_count(2 * P::FAMILY, n - 1);
        self.set_count(2 * P::FAMILY + 1, seeders);
        Some(gone)
    }

    fn set_seeders(&mut self, n: usize) {
        let n = n.min(self.len());
        self.set_count(2 * P::FAMILY + 1, n);
    }
}
