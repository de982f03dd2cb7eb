//! One public torrent's swarm: IPv4 and IPv6 peers kept apart in packed
//! records (11 and 23 bytes), identified by address and port, plus the
//! torrent's download count.
//!
//! The record *is* the compact wire form (address bytes then big-endian
//! port), so handing out a peer is a copy of its first 6 or 18 bytes.
//! Public mode stores no peer_id: it would be 20 of the ~31 bytes a peer
//! costs, and BEP 23 compact replies (what clients ask for) carry none.

use std::net::{SocketAddrV4, SocketAddrV6};

use super::local::{bits_v4, bits_v6, sample_near, Locality, Scratch};
use super::peers::{PeerList, PeerRecord};
use crate::rng::Rng;

/// Set once the peer's `completed` has been counted.
const FLAG_COMPLETED: u8 = 1;

/// An IPv4 peer: 4 address bytes + 2 port bytes, flags, last seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V4Peer {
    compact: [u8; 6],
    flags: u8,
    seen: [u8; 4],
}

/// An IPv6 peer: 16 address bytes + 2 port bytes, flags, last seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V6Peer {
    compact: [u8; 18],
    flags: u8,
    seen: [u8; 4],
}

impl V4Peer {
    /// The record for `addr`, seen at `now`.
    pub fn new(addr: SocketAddrV4, flags: u8, now: u32) -> V4Peer {
        let mut compact = [0; 6];
        compact[..4].copy_from_slice(&addr.ip().octets());
        compact[4..].copy_from_slice(&addr.port().to_be_bytes());
        V4Peer {
            compact,
            flags,
            seen: now.to_le_bytes(),
        }
    }
    /// The 6-byte compact form (BEP 23).
    pub fn compact(&self) -> &[u8; 6] {
        &self.compact
    }
}

impl V6Peer {
    /// The record for `addr`, seen at `now`.
    pub fn new(addr: SocketAddrV6, flags: u8, now: u32) -> V6Peer {
        let mut compact = [0; 18];
        compact[..16].copy_from_slice(&addr.ip().octets());
        compact[16..].copy_from_slice(&addr.port().to_be_bytes());
        V6Peer {
            compact,
            flags,
            seen: now.to_le_bytes(),
        }
    }
    /// The 18-byte compact form (BEP 7).
    pub fn compact(&self) -> &[u8; 18] {
        &self.compact
    }
}

impl PeerRecord for V4Peer {
    type Key = [u8; 6];
    fn key(&self) -> [u8; 6] {
        self.compact
    }
    fn last_seen(&self) -> u32 {
        u32::from_le_bytes(self.seen)
    }
}

impl PeerRecord for V6Peer {
    type Key = [u8; 18];
    fn key(&self) -> [u8; 18] {
        self.compact
    }
    fn last_seen(&self) -> u32 {
        u32::from_le_bytes(self.seen)
    }
}

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

/// One torrent's peers and download count.
#[derive(Clone, Debug, Default)]
pub struct Swarm {
    /// IPv4 peers.
    pub v4: PeerList<V4Peer>,
    /// IPv6 peers.
    pub v6: PeerList<V6Peer>,
    /// Completed downloads (kept while the swarm exists).
    pub downloaded: u32,
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
    /// Records an announce (not `stopped`). Counts `completed` once per
    /// peer: a dual-stacked peer's two records share the flag. Adds the
    /// change in peer counts to `delta`.
    pub fn update(&mut self, u: &PeerUpdate, now: u32, delta: &mut Delta) -> SelfIndex {
        let prev4 = u.v4.and_then(|a| self.v4.find(&V4Peer::new(a, 0, 0).key()));
        let prev6 = u.v6.and_then(|a| self.v6.find(&V6Peer::new(a, 0, 0).key()));
        let was_counted = prev4
            .and_then(|i| self.v4.get(i))
            .is_some_and(|p| p.flags & FLAG_COMPLETED != 0)
            || prev6
                .and_then(|i| self.v6.get(i))
                .is_some_and(|p| p.flags & FLAG_COMPLETED != 0);
        let mut flags = if was_counted { FLAG_COMPLETED } else { 0 };
        if u.completed && !was_counted {
            self.downloaded = self.downloaded.saturating_add(1);
            flags |= FLAG_COMPLETED;
        }
        let mut track = |family: usize, was: Option<bool>| {
            if let Some(was_seeder) = was {
                delta.add(family, was_seeder, -1);
            }
            delta.add(family, u.seeder, 1);
        };
        let v4 = u.v4.map(|a| {
            let up = self.v4.upsert(V4Peer::new(a, flags, now), u.seeder);
            track(0, up.previous.map(|_| up.was_seeder));
            up.index
        });
        let v6 = u.v6.map(|a| {
            let up = self.v6.upsert(V6Peer::new(a, flags, now), u.seeder);
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
        if let Some((_, was_seeder)) = v4.and_then(|a| self.v4.remove(&V4Peer::new(a, 0, 0).key()))
        {
            delta.add(0, was_seeder, -1);
        }
        if let Some((_, was_seeder)) = v6.and_then(|a| self.v6.remove(&V6Peer::new(a, 0, 0).key()))
        {
            delta.add(1, was_seeder, -1);
        }
    }

    /// Appends up to `want4` IPv4 and `want6` IPv6 peers (compact form) to
    /// the buffers, never the announcer itself; a seeder gets leechers only.
    /// A family with a `near` view hands out the announcer's neighbours
    /// first (`local::sample_near`); one without is plain random.
    #[allow(clippy::too_many_arguments)]
    pub fn select(
        &self,
        me: SelfIndex,
        seeder: bool,
        want4: usize,
        want6: usize,
        near: &Locality,
        scratch: &mut Scratch,
        rng: &mut Rng,
        out4: &mut Vec<u8>,
        out6: &mut Vec<u8>,
    ) {
        let put4 = |p: &V4Peer| out4.extend_from_slice(p.compact());
        match near.v4 {
            Some(n) => sample_near(
                &self.v4,
                want4,
                seeder,
                me.v4,
                rng,
                |p| n.group(bits_v4(p)),
                scratch,
                put4,
            ),
            None => self.v4.sample(want4, seeder, me.v4, rng, put4),
        }
        let put6 = |p: &V6Peer| out6.extend_from_slice(p.compact());
        match near.v6 {
            Some(n) => sample_near(
                &self.v6,
                want6,
                seeder,
                me.v6,
                rng,
                |p| n.group(bits_v6(p)),
                scratch,
                put6,
            ),
            None => self.v6.sample(want6, seeder, me.v6, rng, put6),
        }
    }

    /// Peers an announcer could be handed, per family (excluding itself).
    pub fn available(&self, me: SelfIndex, seeder: bool) -> (usize, usize) {
        let pool4 = if seeder {
            self.v4.leechers()
        } else {
            self.v4.len()
        };
        let pool6 = if seeder {
            self.v6.leechers()
        } else {
            self.v6.len()
        };
        let mine = |i: Option<usize>, seeders: usize| match i {
            Some(i) if !seeder || i >= seeders => 1,
            _ => 0,
        };
        (
            pool4.saturating_sub(mine(me.v4, self.v4.seeders())),
            pool6.saturating_sub(mine(me.v6, self.v6.seeders())),
        )
    }

    /// Seeders and leechers per family.
    pub fn counts(&self) -> (FamilyCounts, FamilyCounts) {
        (
            FamilyCounts {
                seeders: self.v4.seeders(),
                leechers: self.v4.leechers(),
            },
            FamilyCounts {
                seeders: self.v6.seeders(),
                leechers: self.v6.leechers(),
            },
        )
    }

    /// Drops peers last seen before `cutoff`, adding the change to `delta`.
    pub fn expire(&mut self, cutoff: u32, delta: &mut Delta) {
        let (s4, l4) = self.v4.retain(|p| p.last_seen() >= cutoff);
        let (s6, l6) = self.v6.retain(|p| p.last_seen() >= cutoff);
        delta.add(0, true, -(s4 as i64));
        delta.add(0, false, -(l4 as i64));
        delta.add(1, true, -(s6 as i64));
        delta.add(1, false, -(l6 as i64));
    }

    /// True when no peer is left.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Heap bytes owned (memory accounting).
    pub fn heap_bytes(&self) -> usize {
        self.v4.heap_bytes() + self.v6.heap_bytes()
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

/// Snapshot support (`src/snapshot/`): a record's saved parts, and a
/// record rebuilt from them. Seeders are the first `seeders()` records of
/// a list, so the seeder flag needs no accessor.
impl V4Peer {
    /// True once this peer's `completed` has been counted.
    pub fn completed(&self) -> bool {
        self.flags & FLAG_COMPLETED != 0
    }

    /// The record for a restored peer, last seen at `last_seen`.
    pub fn restored(compact: [u8; 6], completed: bool, last_seen: u32) -> V4Peer {
        V4Peer {
            compact,
            flags: if completed { FLAG_COMPLETED } else { 0 },
            seen: last_seen.to_le_bytes(),
        }
    }
}

/// Snapshot support: as for `V4Peer`.
impl V6Peer {
    /// True once this peer's `completed` has been counted.
    pub fn completed(&self) -> bool {
        self.flags & FLAG_COMPLETED != 0
    }

    /// The record for a restored peer, last seen at `last_seen`.
    pub fn restored(compact: [u8; 18], completed: bool, last_seen: u32) -> V6Peer {
        V6Peer {
            compact,
            flags: if completed { FLAG_COMPLETED } else { 0 },
            seen: last_seen.to_le_bytes(),
        }
    }
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
        assert_eq!(s.downloaded, 1);
        s.update(&upd(Some(a4(2, 1)), None, true, true), 3, d);
        assert_eq!(s.downloaded, 2);
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
        assert_eq!(s.v4.len(), 1);
        assert!(s.v6.is_empty());
        s.remove(Some(a4(2, 1)), None, d);
        assert!(s.is_empty());
        assert_eq!(d.0, [[0, 0], [0, 0]]);
    }
}
