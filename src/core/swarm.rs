//! One public torrent's swarm: IPv4 and IPv6 peers kept apart in packed
//! records (11 and 23 bytes), identified by address and port, plus the
//! torrent's download count. Up to `SMALL_MAX` peers live packed in one
//! allocation (`small.rs`), more in two `PeerList`s (`peers.rs`).
//!
//! Memory, `cargo bench --bench memory` (1M IPv4 peers over 200k
//! torrents, all-in resident bytes per peer): two `PeerList`s per swarm
//! with `HashMap` indexes 56.9; packed small swarms 34.5; 4-byte position
//! index (`index.rs`) 31.9; download count inside the packed box 30.3.
//! IPv6: 43.3. Cost: the core announce is about 9% slower (123 → 134 ns
//! in a swarm of 1, 394 → 428 ns at 100k; `--bench announce`, A/B on the
//! same machine), well under 1% of a UDP request's CPU.
//!
//! The records themselves are in `records.rs`.

use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

use super::local::{bits_v4, bits_v6, sample_near, Locality, Scratch};
use super::peers::{remove, sample, upsert, PeerList, PeerRecord, Records};
use super::records::FLAG_COMPLETED;
pub use super::records::{V4Peer, V6Peer};
use super::small::{self, FamilyMut, FamilyRef, Packed, SMALL_MAX};
use crate::rng::Rng;
use crate::sys::prefetch::prefetch;

/// Bytes of a big swarm's selection window loaded ahead of an announce
/// (`reach`): 46 IPv4 or 22 IPv6 records, what a numwant of 50 reads when
/// the window is all the announcer's neighbours. A longer scan goes on in
/// storage order, which the hardware prefetcher follows. 8 lines measured
/// about 1% better than 4.
const WINDOW_BYTES: usize = 512;

/// A signed change in peer counts, `[family][kind]`: family 0 is IPv4 and
/// 1 is IPv6; kind 0 is leecher and 1 is seeder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta(pub [[i64; 2]; 2]);

impl Delta {
    fn add(&mut self, family: usize, seeder: bool, n: i64) {
        self.0[family][usize::from(seeder)] += n;
    }
}

/// Seeder and leecher counts of one family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FamilyCounts {
    /// Seeders.
    pub seeders: usize,
    /// Leechers.
    pub leechers: usize,
}

/// One torrent's peers and completed downloads (kept while the swarm
/// exists): up to `SMALL_MAX` peers packed in one exact-size allocation
/// (`small.rs`), more in two `PeerList`s. 16 bytes, so a torrent's map
/// entry is 36 (with its key; 40 aligned) + the map's control byte.
#[derive(Clone, Debug, Default)]
pub struct Swarm {
    peers: Peers,
}

#[derive(Clone, Debug)]
enum Peers {
    /// Packed: `[n4, s4, n6, s6]`, IPv4 records, IPv6 records.
    Small(Box<[u8]>),
    /// Over `SMALL_MAX` peers.
    Big(Box<Big>),
}

impl Default for Peers {
    fn default() -> Self {
        Peers::Small(Box::default())
    }
}

#[derive(Clone, Debug, Default)]
struct Big {
    v4: PeerList<V4Peer>,
    v6: PeerList<V6Peer>,
    downloaded: u32,
}

/// One family's peers of a swarm, read-only, whichever way it is stored.
pub enum Family<'a, P: Packed> {
    /// A packed family.
    Small(FamilyRef<'a, P>),
    /// A list of a big swarm.
    Big(&'a PeerList<P>),
}

impl<P: Packed> Records<P> for Family<'_, P> {
    fn len(&self) -> usize {
        match self {
            Family::Small(f) => f.len(),
            Family::Big(l) => l.len(),
        }
    }
    fn seeders(&self) -> usize {
        match self {
            Family::Small(f) => f.seeders(),
            Family::Big(l) => l.seeders(),
        }
    }
    fn get(&self, i: usize) -> Option<P> {
        match self {
            Family::Small(f) => f.get(i),
            Family::Big(l) => l.get(i),
        }
    }
    fn find(&self, key: &P::Key) -> Option<usize> {
        match self {
            Family::Small(f) => f.find(key),
            Family::Big(l) => l.find(key),
        }
    }
}

impl<P: Packed> Family<'_, P> {
    /// The records with their seeder flag, seeders first.
    pub fn iter(&self) -> impl Iterator<Item = (P, bool)> + '_ {
        let seeders = self.seeders();
        (0..self.len()).filter_map(move |i| self.get(i).map(|p| (p, i < seeders)))
    }
}

/// Runs `$body` with `$s` bound to family `$fam` (of record type `$ty`) of
/// `$swarm` as its concrete store, so the generic rules in `peers.rs` are
/// compiled once per store with no dispatch per record. (An enum of the
/// two stores behind the traits cost 45% on a 1-peer announce and 2.5x on
/// the local-peers scan: `cargo bench --bench announce`.)
macro_rules! on_family {
    ($swarm:expr, $ty:ty, $fam:ident, |$s:ident| $body:expr) => {
        match &$swarm.peers {
            Peers::Small(b) => {
                let $s = &FamilyRef::<$ty>::new(b);
                $body
            }
            Peers::Big(big) => {
                let $s = &big.$fam;
                $body
            }
        }
    };
}

/// `on_family!` for a change.
macro_rules! on_family_mut {
    ($swarm:expr, $ty:ty, $fam:ident, |$s:ident| $body:expr) => {
        match &mut $swarm.peers {
            Peers::Small(b) => {
                let $s = &mut FamilyMut::<$ty>::new(b);
                $body
            }
            Peers::Big(big) => {
                let $s = &mut big.$fam;
                $body
            }
        }
    };
}

/// What one announcer looks like to its swarm.
#[derive(Clone, Copy, Debug)]
pub struct PeerUpdate {
    /// Where the peer is reachable over IPv4, if at all.
    pub v4: Option<SocketAddrV4>,
    /// Where the peer is reachable over IPv6, if at all.
    pub v6: Option<SocketAddrV6>,
    /// `left == 0`.
    pub seeder: bool,
    /// `event=completed` with nothing left.
    pub completed: bool,
}

/// Positions of the announcer's own records, to exclude from its reply.
#[derive(Clone, Copy, Debug, Default)]
pub struct SelfIndex {
    v4: Option<usize>,
    v6: Option<usize>,
}

impl Swarm {
    /// The IPv4 peers.
    pub fn v4(&self) -> Family<'_, V4Peer> {
        match &self.peers {
            Peers::Small(b) => Family::Small(FamilyRef::new(b)),
            Peers::Big(big) => Family::Big(&big.v4),
        }
    }

    /// The IPv6 peers.
    pub fn v6(&self) -> Family<'_, V6Peer> {
        match &self.peers {
            Peers::Small(b) => Family::Small(FamilyRef::new(b)),
            Peers::Big(big) => Family::Big(&big.v6),
        }
    }

    /// Completed downloads.
    pub fn downloaded(&self) -> u32 {
        match &self.peers {
            Peers::Small(b) => small::downloaded(b),
            Peers::Big(big) => big.downloaded,
        }
    }

    /// Sets the completed downloads.
    pub fn set_downloaded(&mut self, n: u32) {
        match &mut self.peers {
            Peers::Small(b) => small::set_downloaded(b, n),
            Peers::Big(big) => big.downloaded = n,
        }
    }

    /// Peers of both families.
    pub fn len(&self) -> usize {
        self.v4().len() + self.v6().len()
    }

    /// Unpacks a small swarm about to hold `adding` more peers than
    /// `SMALL_MAX` allows.
    fn make_room(&mut self, adding: usize) {
        let Peers::Small(b) = &self.peers else {
            return;
        };
        if small::total(b) + adding <= SMALL_MAX {
            return;
        }
        let v4: Family<'_, V4Peer> = Family::Small(FamilyRef::new(b));
        let v6: Family<'_, V6Peer> = Family::Small(FamilyRef::new(b));
        let big = Big {
            v4: PeerList::from_records(v4.iter()),
            v6: PeerList::from_records(v6.iter()),
            downloaded: small::downloaded(b),
        };
        self.peers = Peers::Big(Box::new(big));
    }

    /// Packs a big swarm that has fallen below half of `SMALL_MAX`.
    fn maybe_pack(&mut self) {
        let Peers::Big(big) = &self.peers else {
            return;
        };
        let total = big.v4.len() + big.v6.len();
        if total >= SMALL_MAX / 2 || total == 0 {
            // Empty: the caller drops the swarm (the reaper after letting
            // go of the stripe); packing it first would only free under
            // the lock.
            return;
        }
        let mut packed = Box::default();
        small::set_downloaded(&mut packed, big.downloaded);
        for (p, seeder) in Family::Big(&big.v4).iter() {
            upsert(&mut FamilyMut::<V4Peer>::new(&mut packed), p, seeder);
        }
        for (p, seeder) in Family::Big(&big.v6).iter() {
            upsert(&mut FamilyMut::<V6Peer>::new(&mut packed), p, seeder);
        }
        self.peers = Peers::Small(packed);
    }

    /// Records an announce (not `stopped`). Counts `completed` once per
    /// peer: a dual-stacked peer's two records share the flag. Adds the
    /// change in peer counts to `delta`.
    pub fn update(&mut self, u: &PeerUpdate, now: u32, delta: &mut Delta) -> SelfIndex {
        let prev4 = u.v4.and_then(|a| {
            let key = V4Peer::new(a, 0, 0).key();
            on_family!(self, V4Peer, v4, |s| s.find(&key).and_then(|i| s.get(i)))
        });
        let prev6 = u.v6.and_then(|a| {
            let key = V6Peer::new(a, 0, 0).key();
            on_family!(self, V6Peer, v6, |s| s.find(&key).and_then(|i| s.get(i)))
        });
        let was_counted =
            prev4.is_some_and(|p| p.completed()) || prev6.is_some_and(|p| p.completed());
        let mut flags = if was_counted { FLAG_COMPLETED } else { 0 };
        if u.completed && !was_counted {
            self.set_downloaded(self.downloaded().saturating_add(1));
            flags |= FLAG_COMPLETED;
        }
        let joining = usize::from(u.v4.is_some() && prev4.is_none())
            + usize::from(u.v6.is_some() && prev6.is_none());
        self.make_room(joining);
        let mut track = |family: usize, was: Option<bool>| {
            if let Some(was_seeder) = was {
                delta.add(family, was_seeder, -1);
            }
            delta.add(family, u.seeder, 1);
        };
        let v4 = u.v4.map(|a| {
            let record = V4Peer::new(a, flags, now);
            let up = on_family_mut!(self, V4Peer, v4, |s| upsert(s, record, u.seeder));
            track(0, up.previous.map(|_| up.was_seeder));
            up.index
        });
        let v6 = u.v6.map(|a| {
            let record = V6Peer::new(a, flags, now);
            let up = on_family_mut!(self, V6Peer, v6, |s| upsert(s, record, u.seeder));
            track(1, up.previous.map(|_| up.was_seeder));
            up.index
        });
        SelfIndex { v4, v6 }
    }

    /// Removes the announcer's records (`stopped`), adding the change to `delta`.
    pub fn remove(
        &mut self,
        v4: Option<SocketAddrV4>,
        v6: Option<SocketAddrV6>,
        delta: &mut Delta,
    ) {
        if let Some(a) = v4 {
            let key = V4Peer::new(a, 0, 0).key();
            if let Some((_, was_seeder)) = on_family_mut!(self, V4Peer, v4, |s| remove(s, &key)) {
                delta.add(0, was_seeder, -1);
            }
        }
        if let Some(a) = v6 {
            let key = V6Peer::new(a, 0, 0).key();
            if let Some((_, was_seeder)) = on_family_mut!(self, V6Peer, v6, |s| remove(s, &key)) {
                delta.add(1, was_seeder, -1);
            }
        }
        self.maybe_pack();
    }

    /// Adds a peer read back from the swarm state file.
    pub fn restore_v4(&mut self, record: V4Peer, seeder: bool) {
        self.make_room(1);
        on_family_mut!(self, V4Peer, v4, |s| upsert(s, record, seeder));
    }

    /// Adds a peer read back from the swarm state file.
    pub fn restore_v6(&mut self, record: V6Peer, seeder: bool) {
        self.make_room(1);
        on_family_mut!(self, V6Peer, v6, |s| upsert(s, record, seeder));
    }

    /// Appends up to `want4` IPv4 and `want6` IPv6 peers (compact form) to
    /// the buffers, never the announcer itself; a seeder gets leechers only.
    /// A family with a `near` view hands out the announcer's neighbours
    /// first (`local::sample_near`, whose window starts at `ahead` when it
    /// is given); one without is plain random.
    #[allow(clippy::too_many_arguments)]
    pub fn select(
        &self,
        me: SelfIndex,
        seeder: bool,
        want4: usize,
        want6: usize,
        near: &Locality,
        scratch: &mut Scratch,
        ahead: Option<u64>,
        rng: &mut Rng,
        out4: &mut Vec<u8>,
        out6: &mut Vec<u8>,
    ) {
        let put4 = |p: &V4Peer| out4.extend_from_slice(p.compact());
        on_family!(self, V4Peer, v4, |s| match near.v4 {
            Some(n) => sample_near(
                s,
                want4,
                seeder,
                me.v4,
                ahead,
                rng,
                |p| n.group(bits_v4(p)),
                scratch,
                put4,
            ),
            None => sample(s, want4, seeder, me.v4, rng, put4),
        });
        let put6 = |p: &V6Peer| out6.extend_from_slice(p.compact());
        on_family!(self, V6Peer, v6, |s| match near.v6 {
            Some(n) => sample_near(
                s,
                want6,
                seeder,
                me.v6,
                ahead,
                rng,
                |p| n.group(bits_v6(p)),
                scratch,
                put6,
            ),
            None => sample(s, want6, seeder, me.v6, rng, put6),
        });
    }

    /// Peers an announcer could be handed, per family (excluding itself).
    pub fn available(&self, me: SelfIndex, seeder: bool) -> (usize, usize) {
        let (v4, v6) = (self.v4(), self.v6());
        let pool = |len: usize, leechers: usize| if seeder { leechers } else { len };
        let mine = |i: Option<usize>, seeders: usize| match i {
            Some(i) if !seeder || i >= seeders => 1,
            _ => 0,
        };
        (
            pool(v4.len(), v4.leechers()).saturating_sub(mine(me.v4, v4.seeders())),
            pool(v6.len(), v6.leechers()).saturating_sub(mine(me.v6, v6.seeders())),
        )
    }

    /// Seeders and leechers per family.
    pub fn counts(&self) -> (FamilyCounts, FamilyCounts) {
        let (v4, v6) = (self.v4(), self.v6());
        (
            FamilyCounts {
                seeders: v4.seeders(),
                leechers: v4.leechers(),
            },
            FamilyCounts {
                seeders: v6.seeders(),
                leechers: v6.leechers(),
            },
        )
    }

    /// Drops peers last seen before `cutoff`, adding the change to `delta`.
    pub fn expire(&mut self, cutoff: u32, delta: &mut Delta) {
        let fresh4 = |p: &V4Peer| p.last_seen() >= cutoff;
        let fresh6 = |p: &V6Peer| p.last_seen() >= cutoff;
        let ((s4, l4), (s6, l6)) = match &mut self.peers {
            Peers::Small(b) => {
                let [gone4, gone6] = small::retain(b, fresh4, fresh6);
                (gone4, gone6)
            }
            Peers::Big(big) => (big.v4.retain(fresh4), big.v6.retain(fresh6)),
        };
        self.maybe_pack();
        delta.add(0, true, -(s4 as i64));
        delta.add(0, false, -(l4 as i64));
        delta.add(1, true, -(s6 as i64));
        delta.add(1, false, -(l6 as i64));
    }

    /// True when no peer is left.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts loading the swarm's records (packed) or lists (big) into the
    /// cache, for an announce about to come (`Tracker::warm`). True for a
    /// big swarm: its announcer's record is two more misses away (`aim`,
    /// `reach`).
    pub fn prefetch(&self) -> bool {
        match &self.peers {
            Peers::Small(b) => {
                prefetch(b.as_ptr());
                false
            }
            Peers::Big(big) => {
                // Both lists and their indexes: every line the struct
                // touches (three or four, by its alignment).
                let at: *const u8 = (&**big as *const Big).cast();
                let size = std::mem::size_of::<Big>();
                for offset in (0..size).step_by(64).chain([size - 1]) {
                    prefetch(at.wrapping_add(offset));
                }
                true
            }
        }
    }

    /// Big swarm: starts loading the index slot of the announcer `peer`
    /// (best once `prefetch` has brought the lists). True for a big swarm:
    /// `reach` follows.
    pub fn aim(&self, peer: SocketAddr) -> bool {
        let Peers::Big(big) = &self.peers else {
            return false;
        };
        match peer {
            SocketAddr::V4(a) => big.v4.prefetch_home(&V4Peer::new(a, 0, 0).key()),
            SocketAddr::V6(a) => big.v6.prefetch_home(&V6Peer::new(a, 0, 0).key()),
        }
        true
    }

    /// Big swarm: starts loading the announcer's record, which the index
    /// slot `aim` asked for names, and the start of the window its peers
    /// will be picked from (`draw`: `select`'s `ahead`).
    pub fn reach(&self, peer: SocketAddr, seeder: bool, draw: u64) {
        let Peers::Big(big) = &self.peers else {
            return;
        };
        match peer {
            SocketAddr::V4(a) => {
                big.v4.prefetch_record(&V4Peer::new(a, 0, 0).key());
                big.v4
                    .prefetch_window(seeder, draw, WINDOW_BYTES / size_of::<V4Peer>());
            }
            SocketAddr::V6(a) => {
                big.v6.prefetch_record(&V6Peer::new(a, 0, 0).key());
                big.v6
                    .prefetch_window(seeder, draw, WINDOW_BYTES / size_of::<V6Peer>());
            }
        }
    }

    /// Heap bytes owned (memory accounting).
    pub fn heap_bytes(&self) -> usize {
        match &self.peers {
            Peers::Small(b) => b.len(),
            Peers::Big(big) => {
                std::mem::size_of::<Big>() + big.v4.heap_bytes() + big.v6.heap_bytes()
            }
        }
    }
}

/// Shares `want` peers between the families by their size, giving each
/// non-empty family at least a quarter (or all it has, if fewer), and
/// passing whatever one family cannot fill to the other.
pub fn split_want(want: usize, avail4: usize, avail6: usize) -> (usize, usize) {
    let total = avail4 + avail6;
    if total <= want {
        return (avail4, avail6);
    }
    let quarter = want.div_ceil(4);
    // Proportional share, then the floors: leave IPv6 its quarter, take
    // IPv4's quarter, never more than a family has.
    let mut w4 = (want as u128 * avail4 as u128 / total as u128) as usize;
    if avail6 > 0 {
        w4 = w4.min(want - quarter.min(avail6));
    }
    if avail4 > 0 {
        w4 = w4.max(quarter.min(avail4));
    }
    w4 = w4.min(avail4);
    let w6 = (want - w4).min(avail6);
    // Whatever IPv6 could not fill goes back to IPv4.
    let w4 = (want - w6).min(avail4);
    (w4, w6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn a4(last: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, last), port)
    }
    fn a6(last: u16, port: u16) -> SocketAddrV6 {
        SocketAddrV6::new(
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last),
            port,
            0,
            0,
        )
    }
    fn upd(
        v4: Option<SocketAddrV4>,
        v6: Option<SocketAddrV6>,
        seeder: bool,
        completed: bool,
    ) -> PeerUpdate {
        PeerUpdate {
            v4,
            v6,
            seeder,
            completed,
        }
    }

    #[test]
    fn split_want_table() {
        // (want, avail4, avail6) -> (w4, w6)
        let cases = [
            ((50, 10, 10), (10, 10)),
            ((50, 0, 0), (0, 0)),
            ((50, 100, 0), (50, 0)),
            ((50, 0, 100), (0, 50)),
            ((40, 1000, 10), (30, 10)),
            ((40, 1000, 100), (30, 10)),
            ((40, 100, 100), (20, 20)),
            ((40, 900, 100), (30, 10)),
            ((40, 100, 900), (10, 30)),
            ((40, 30, 1000), (10, 30)),
            ((0, 5, 5), (0, 0)),
            ((1, 5, 5), (1, 0)),
            ((3, 100, 1), (2, 1)),
        ];
        for ((want, a4, a6), expect) in cases {
            let got = split_want(want, a4, a6);
            assert_eq!(got, expect, "split_want({want}, {a4}, {a6})");
            assert!(got.0 <= a4 && got.1 <= a6 && got.0 + got.1 == want.min(a4 + a6));
        }
    }

    #[test]
    fn completed_counts_once_per_peer_across_families() {
        let mut s = Swarm::default();
        let d = &mut Delta::default();
        s.update(&upd(Some(a4(1, 1)), Some(a6(1, 1)), false, false), 0, d);
        s.update(&upd(Some(a4(1, 1)), Some(a6(1, 1)), true, true), 1, d);
        s.update(&upd(Some(a4(1, 1)), Some(a6(1, 1)), true, true), 2, d);
        s.update(&upd(Some(a4(1, 1)), None, true, true), 3, d);
        assert_eq!(s.downloaded(), 1);
        s.update(&upd(Some(a4(2, 1)), None, true, true), 3, d);
        assert_eq!(s.downloaded(), 2);
        let (c4, c6) = s.counts();
        assert_eq!(
            (c4.seeders, c4.leechers, c6.seeders, c6.leechers),
            (2, 0, 1, 0)
        );
    }

    #[test]
    fn select_excludes_self_and_seeders_get_leechers() {
        let mut s = Swarm::default();
        let d = &mut Delta::default();
        for i in 1..=5 {
            s.update(&upd(Some(a4(i, 100)), None, i <= 2, false), 0, d);
        }
        let me = s.update(&upd(Some(a4(1, 100)), None, true, false), 0, d);
        let mut rng = Rng::from_seed(3);
        let (mut o4, mut o6) = (Vec::new(), Vec::new());
        assert_eq!(s.available(me, true), (3, 0));
        s.select(
            me,
            true,
            50,
            50,
            &Locality::default(),
            &mut Scratch::default(),
            None,
            &mut rng,
            &mut o4,
            &mut o6,
        );
        assert_eq!(o4.len(), 3 * 6);
        for chunk in o4.chunks(6) {
            assert!(chunk[3] >= 3, "seeder handed a seeder: {chunk:?}");
        }
        let me = s.update(&upd(Some(a4(4, 100)), None, false, false), 0, d);
        assert_eq!(s.available(me, false), (4, 0));
        o4.clear();
        s.select(
            me,
            false,
            50,
            50,
            &Locality::default(),
            &mut Scratch::default(),
            None,
            &mut rng,
            &mut o4,
            &mut o6,
        );
        assert_eq!(o4.len(), 4 * 6);
        assert!(o4.chunks(6).all(|c| c[3] != 4));
    }

    #[test]
    fn expire_and_remove() {
        let mut s = Swarm::default();
        let d = &mut Delta::default();
        s.update(&upd(Some(a4(1, 1)), Some(a6(1, 1)), false, false), 10, d);
        s.update(&upd(Some(a4(2, 1)), None, true, false), 20, d);
        assert_eq!(d.0, [[1, 1], [1, 0]]);
        s.expire(15, d);
        assert_eq!(s.v4().len(), 1);
        assert!(s.v6().is_empty());
        s.remove(Some(a4(2, 1)), None, d);
        assert!(s.is_empty());
        assert_eq!(d.0, [[0, 0], [0, 0]]);
    }

    /// Random joins, re-announces, leaves and expiries across the packed
    /// and the big form (both ways), checked after every step against a
    /// plain map of who is in the swarm.
    #[test]
    fn packed_and_big_forms_agree_with_a_model() {
        use std::collections::HashMap;
        let mut rng = Rng::from_seed(5);
        let mut s = Swarm::default();
        let mut d = Delta::default();
        // peer id -> (seeder, last seen); ids < 200 are IPv4, the rest
        // IPv6, ids divisible by 7 dual-stacked.
        let mut model: HashMap<u16, (bool, u32)> = HashMap::new();
        // [packed, unpacked] transitions seen.
        let mut transitions = [0; 2];
        let mut was_big = false;
        for step in 0..20_000u32 {
            let now = step / 10;
            let id = rng.below(400) as u16;
            let v4 = (id < 200 || id.is_multiple_of(7)).then(|| a4((id % 250) as u8, 1000 + id));
            let v6 = (id >= 200 || id.is_multiple_of(7)).then(|| a6(id, 1000 + id));
            // Phases of 2,000 steps: grow (towards ~250 peers, big), then
            // shrink (towards ~15, packed), five times each.
            let growing = (step / 2_000) % 2 == 0;
            let roll = rng.below(100);
            if roll < 10 {
                let cutoff = now.saturating_sub(30);
                s.expire(cutoff, &mut d);
                model.retain(|_, (_, seen)| *seen >= cutoff);
            } else if roll < if growing { 70 } else { 14 } {
                let seeder = rng.below(3) == 0;
                s.update(&upd(v4, v6, seeder, false), now, &mut d);
                model.insert(id, (seeder, now));
            } else {
                s.remove(v4, v6, &mut d);
                model.remove(&id);
            }
            let big = matches!(s.peers, Peers::Big(_));
            if big != was_big {
                transitions[usize::from(big)] += 1;
                was_big = big;
            }
            let mut want = [[0i64; 2]; 2];
            for (&id, &(seeder, _)) in &model {
                if id < 200 || id % 7 == 0 {
                    want[0][usize::from(seeder)] += 1;
                }
                if id >= 200 || id % 7 == 0 {
                    want[1][usize::from(seeder)] += 1;
                }
            }
            assert_eq!(d.0, want, "step {step}");
            let (c4, c6) = s.counts();
            assert_eq!(
                [
                    [c4.leechers as i64, c4.seeders as i64],
                    [c6.leechers as i64, c6.seeders as i64]
                ],
                want,
                "step {step}"
            );
            let records: Vec<(V4Peer, bool)> = s.v4().iter().collect();
            assert_eq!(records.len(), s.v4().len());
            for (p, seeder) in records {
                let port = u16::from_be_bytes([p.compact()[4], p.compact()[5]]);
                let (want_seeder, seen) = model[&(port - 1000)];
                assert_eq!((seeder, p.last_seen()), (want_seeder, seen), "step {step}");
            }
            let records: Vec<(V6Peer, bool)> = s.v6().iter().collect();
            assert_eq!(records.len(), s.v6().len());
            for (p, seeder) in records {
                let port = u16::from_be_bytes([p.compact()[16], p.compact()[17]]);
                let (want_seeder, seen) = model[&(port - 1000)];
                assert_eq!((seeder, p.last_seen()), (want_seeder, seen), "step {step}");
            }
            if step % 97 == 0 {
                let me = s.update(&upd(v4, v6, false, false), now, &mut d);
                model.insert(id, (false, now));
                let (mut o4, mut o6) = (Vec::new(), Vec::new());
                s.select(
                    me,
                    false,
                    30,
                    30,
                    &Locality::default(),
                    &mut Scratch::default(),
                    None,
                    &mut rng,
                    &mut o4,
                    &mut o6,
                );
                let mut got: Vec<&[u8]> = o4.chunks(6).chain(o6.chunks(18)).collect();
                let n = got.len();
                got.sort();
                got.dedup();
                assert_eq!(got.len(), n, "repeats at step {step}");
                let (w4, w6) = s.available(me, false);
                assert_eq!(o4.len() / 6, w4.min(30), "step {step}");
                assert_eq!(o6.len() / 18, w6.min(30), "step {step}");
            }
        }
        assert!(
            transitions[0] >= 4 && transitions[1] >= 4,
            "{transitions:?}"
        );
    }

    #[test]
    fn a_swarm_entry_is_small() {
        assert_eq!(std::mem::size_of::<Swarm>(), 16);
    }

    #[test]
    fn downloads_survive_packing_and_unpacking() {
        let mut s = Swarm::default();
        let d = &mut Delta::default();
        s.update(&upd(Some(a4(1, 1)), None, true, true), 0, d);
        assert_eq!(s.downloaded(), 1);
        for i in 2..=60u16 {
            s.update(&upd(None, Some(a6(i, 1)), false, false), 1, d);
        }
        assert!(matches!(s.peers, Peers::Big(_)));
        s.update(&upd(Some(a4(2, 1)), None, true, true), 2, d);
        s.update(&upd(Some(a4(1, 1)), None, true, true), 2, d);
        assert_eq!(s.downloaded(), 2);
        s.expire(2, d);
        assert!(matches!(s.peers, Peers::Small(_)));
        assert_eq!((s.downloaded(), s.len()), (2, 2));
        s.remove(Some(a4(1, 1)), None, d);
        assert_eq!((s.downloaded(), s.len()), (2, 1));
    }
}
