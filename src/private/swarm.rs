//! A private torrent: its registration (id, leech type) and its peers.
//!
//! A private peer is (user, peer_id) on a torrent. The record keeps what
//! credit needs (the counters last seen: the baselines) and what a reply
//! needs (address, port, seeder), in 48 bytes. The peer_id itself is kept
//! as a keyed 32-bit hash: the real bytes travel with each announce to the
//! flusher, and a collision (about 2^-32 for two clients of one user on
//! one torrent; nobody else's peers are compared) could only merge two
//! clients of the same user, whose counters that user reports anyway. The
//! `corrupt` baseline, non-zero for few clients, lives in a side map.
//!
//! Peers are one `Vec`, seeders first (`peers[..seeders]`), so a leecher's
//! reply walks the seeders then the leechers and a seeder's walks only the
//! leechers. Small swarms are searched linearly; from `INDEX_FROM` peers on
//! an index maps (user, key) to the position. The index and the corrupt
//! baselines share one boxed `Extra`, so a small swarm pays one pointer. Locking: a torrent lives in
//! one stripe of the private store; everything here runs under that lock.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Peers at which a swarm gets a position index (below it a linear scan
/// over at most this many 64-byte records is cheaper than hashing).
const INDEX_FROM: usize = 48;

/// The record has counted its `completed` (a snatch is once per peer).
pub const FLAG_SNATCHED: u8 = 1;
/// Its user may not leech and it is leeching: handed to nobody.
pub const FLAG_HIDDEN: u8 = 2;
/// Its address is not known (restored row of a protected user): it is
/// credited but handed to nobody until it announces again.
pub const FLAG_NO_ADDR: u8 = 4;
/// Restored from the database at start and not heard from since.
pub const FLAG_RESTORED: u8 = 8;

/// Leech type of a torrent (`FreeTorrent`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Leech {
    /// Upload and download count.
    #[default]
    Normal,
    /// Download does not count.
    Free,
    /// Neither counts.
    Neutral,
}

impl Leech {
    /// From `FreeTorrent`'s 0/1/2; other values are normal.
    pub fn from_code(code: u8) -> Leech {
        match code {
            1 => Leech::Free,
            2 => Leech::Neutral,
            _ => Leech::Normal,
        }
    }

    /// `FreeTorrent`'s code.
    pub fn code(self) -> u8 {
        match self {
            Leech::Normal => 0,
            Leech::Free => 1,
            Leech::Neutral => 2,
        }
    }
}

/// One private peer. 48 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Uploaded bytes last seen (the baseline of the next delta).
    pub uploaded: u64,
    /// Downloaded bytes last seen.
    pub downloaded: u64,
    /// Keyed hash of the peer_id.
    pub key: u32,
    /// Address; IPv4 peers as IPv4-mapped IPv6.
    pub ip: [u8; 16],
    /// User id.
    pub user: u32,
    /// Clock seconds of the last announce.
    pub last: u32,
    /// Listening port.
    pub port: u16,
    /// `FLAG_*`.
    pub flags: u8,
}

impl Peer {
    /// The address as std sees it.
    pub fn addr(&self) -> SocketAddr {
        let v6 = Ipv6Addr::from(self.ip);
        let ip = match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        };
        SocketAddr::new(ip, self.port)
    }

    /// Stores `ip` (IPv4 mapped into IPv6).
    pub fn set_ip(&mut self, ip: IpAddr) {
        self.ip = match ip {
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            IpAddr::V6(a) => a.octets(),
        };
    }

    /// True for an IPv4 address.
    pub fn is_v4(&self) -> bool {
        Ipv6Addr::from(self.ip).to_ipv4_mapped().is_some()
    }

    /// True when it may be handed to other peers.
    pub fn visible(&self) -> bool {
        self.flags & (FLAG_HIDDEN | FLAG_NO_ADDR) == 0
    }
}

/// A registered private torrent and its peers.
#[derive(Debug, Default)]
pub struct Torrent {
    /// `torrents.ID`.
    pub id: u32,
    /// Leech type.
    pub leech: Leech,
    /// Completed downloads (`Snatched`), for scrape and replies.
    pub snatched: u32,
    /// Peers, seeders first.
    peers: Vec<Peer>,
    /// How many of `peers` are seeders.
    seeders: u32,
    /// The position index and corrupt baselines, when either is needed.
    extra: Option<Box<Extra>>,
}

/// What only some swarms need.
#[derive(Debug, Default)]
struct Extra {
    /// (user, key) → position, for big swarms.
    index: Option<HashMap<(u32, u32), u32>>,
    /// (user, key) → corrupt bytes last seen, when not zero.
    corrupt: HashMap<(u32, u32), u64>,
}

impl Torrent {
    /// A registered torrent with no peers.
    pub fn new(id: u32, leech: Leech, snatched: u32) -> Torrent {
        Torrent {
            id,
            leech,
            snatched,
            ..Torrent::default()
        }
    }

    /// Seeders and leechers.
    pub fn counts(&self) -> (u32, u32) {
        let len = u32::try_from(self.peers.len()).unwrap_or(u32::MAX);
        (self.seeders, len.saturating_sub(self.seeders))
    }

    /// Every peer (seeders first).
    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }

    /// Position of the peer (user, key).
    pub fn find(&self, user: u32, key: u32) -> Option<usize> {
        match self.index() {
            Some(index) => index.get(&(user, key)).map(|&i| i as usize),
            None => self
                .peers
                .iter()
                .position(|p| p.key == key && p.user == user),
        }
    }

    /// The peer at `i`.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Peer> {
        self.peers.get_mut(i)
    }

    /// True when the peer at `i` is a seeder.
    pub fn is_seeder(&self, i: usize) -> bool {
        i < self.seeders as usize
    }

    /// Adds `peer`; returns its position.
    pub fn insert(&mut self, peer: Peer, seeder: bool) -> usize {
        // Grow by one at a time while small: most private swarms have a
        // handful of peers, and doubling would leave up to half unused.
        if self.peers.len() == self.peers.capacity() {
            let more = (self.peers.len() / 4).max(1);
            self.peers.reserve_exact(more);
        }
        let mut at = self.peers.len();
        self.peers.push(peer);
        if let Some(index) = self.index_mut() {
            index.insert((peer.user, peer.key), pos(at));
        } else if self.peers.len() >= INDEX_FROM {
            self.build_index();
        }
        if seeder {
            let boundary = self.seeders as usize;
            self.swap(at, boundary);
            self.seeders += 1;
            at = boundary;
        }
        at
    }

    /// Removes the peer at `i`.
    pub fn remove(&mut self, i: usize) -> Option<Peer> {
        if i >= self.peers.len() {
            return None;
        }
        let mut i = i;
        if self.is_seeder(i) {
            let last_seeder = self.seeders as usize - 1;
            self.swap(i, last_seeder);
            self.seeders -= 1;
            i = last_seeder;
        }
        let last = self.peers.len() - 1;
        self.swap(i, last);
        let gone = self.peers.pop()?;
        let small = self.peers.len() < INDEX_FROM / 2;
        if let Some(extra) = &mut self.extra {
            if let Some(index) = &mut extra.index {
                index.remove(&(gone.user, gone.key));
            }
            if small {
                extra.index = None;
            }
            extra.corrupt.remove(&(gone.user, gone.key));
            if extra.index.is_none() && extra.corrupt.is_empty() {
                self.extra = None;
            }
        }
        Some(gone)
    }

    /// Makes the peer at `i` a seeder or a leecher; returns its new position.
    pub fn set_seeder(&mut self, i: usize, seeder: bool) -> usize {
        match (self.is_seeder(i), seeder) {
            (false, true) if i < self.peers.len() => {
                let boundary = self.seeders as usize;
                self.swap(i, boundary);
                self.seeders += 1;
                boundary
            }
            (true, false) => {
                let last_seeder = self.seeders as usize - 1;
                self.swap(i, last_seeder);
                self.seeders -= 1;
                last_seeder
            }
            _ => i,
        }
    }

    /// Drops peers last seen before `cutoff`; returns how many went.
    pub fn expire(&mut self, cutoff: u32, mut gone: impl FnMut(&Peer)) -> usize {
        let mut n = 0;
        let mut i = 0;
        while i < self.peers.len() {
            if self.peers[i].last < cutoff {
                if let Some(p) = self.remove(i) {
                    gone(&p);
                    n += 1;
                }
                // `remove` moved another peer into `i`: look at it next.
            } else {
                i += 1;
            }
        }
        if self.peers.capacity() > self.peers.len() * 2 {
            self.peers.shrink_to_fit();
        }
        n
    }

    /// Drops every peer of `user`; returns the dropped peers' seeder flags.
    pub fn remove_user(&mut self, user: u32) -> Vec<bool> {
        let mut gone = Vec::new();
        let mut i = 0;
        while i < self.peers.len() {
            if self.peers[i].user == user {
                gone.push(self.is_seeder(i));
                self.remove(i);
            } else {
                i += 1;
            }
        }
        gone
    }

    /// Appends up to `want` peers for an announcer of `user` into `v4`
    /// and `v6` (compact entries), starting at `start` (random) in each
    /// region: a leecher gets seeders then leechers, a seeder only
    /// leechers; never a peer of its own user, never a hidden one.
    pub fn select(&self, user: u32, seeder: bool, want: usize, start: u64, out: &mut Picked) {
        let seeders = self.seeders as usize;
        let regions: [&[Peer]; 2] = match self.peers.split_at_checked(seeders) {
            Some((s, l)) if !seeder => [s, l],
            Some((_, l)) => [l, &[]],
            None => [&[], &[]],
        };
        let mut left = want;
        for region in regions {
            if left == 0 || region.is_empty() {
                continue;
            }
            let from = (start % region.len() as u64) as usize;
            let (tail, head) = region.split_at(from);
            for p in head.iter().chain(tail) {
                if left == 0 {
                    break;
                }
                if p.user == user || !p.visible() {
                    continue;
                }
                if out.push(p) {
                    left -= 1;
                }
            }
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        if a == b {
            return;
        }
        self.peers.swap(a, b);
        let Some(index) = self.extra.as_mut().and_then(|e| e.index.as_mut()) else {
            return;
        };
        for at in [a, b] {
            if let Some(p) = self.peers.get(at) {
                index.insert((p.user, p.key), pos(at));
            }
        }
    }

    fn index(&self) -> Option<&HashMap<(u32, u32), u32>> {
        self.extra.as_ref()?.index.as_ref()
    }

    fn index_mut(&mut self) -> Option<&mut HashMap<(u32, u32), u32>> {
        self.extra.as_mut()?.index.as_mut()
    }

    fn build_index(&mut self) {
        let index = self
            .peers
            .iter()
            .enumerate()
            .map(|(i, p)| ((p.user, p.key), pos(i)))
            .collect();
        self.extra.get_or_insert_with(Box::default).index = Some(index);
    }

    /// The corrupt bytes last seen of peer (user, key); 0 when none.
    pub fn corrupt(&self, user: u32, key: u32) -> u64 {
        self.extra
            .as_ref()
            .and_then(|e| e.corrupt.get(&(user, key)).copied())
            .unwrap_or(0)
    }

    /// Remembers the corrupt bytes of peer (user, key).
    pub fn set_corrupt(&mut self, user: u32, key: u32, corrupt: u64) {
        if corrupt == 0 {
            if let Some(extra) = &mut self.extra {
                extra.corrupt.remove(&(user, key));
                if extra.index.is_none() && extra.corrupt.is_empty() {
                    self.extra = None;
                }
            }
        } else {
            let extra = self.extra.get_or_insert_with(Box::default);
            extra.corrupt.insert((user, key), corrupt);
        }
    }

    /// Heap bytes held (peers, index, corrupt baselines), for the memory
    /// bench.
    pub fn heap_bytes(&self) -> usize {
        let peers = self.peers.capacity() * std::mem::size_of::<Peer>();
        let extra = self.extra.as_ref().map_or(0, |e| {
            let entry = std::mem::size_of::<((u32, u32), u64)>() + 1;
            std::mem::size_of::<Extra>()
                + e.index.as_ref().map_or(0, |i| i.capacity() * entry)
                + e.corrupt.capacity() * entry
        });
        peers + extra
    }
}

fn pos(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// Peers picked for one reply, compact (BEP 23 and BEP 7).
#[derive(Debug, Default)]
pub struct Picked {
    /// 6-byte IPv4 entries.
    pub v4: Vec<u8>,
    /// 18-byte IPv6 entries.
    pub v6: Vec<u8>,
    /// Families the announcer is handed.
    pub want_v4: bool,
    /// See `want_v4`.
    pub want_v6: bool,
}

impl Picked {
    /// Empties both lists and sets which families are wanted.
    pub fn reset(&mut self, want_v4: bool, want_v6: bool) {
        self.v4.clear();
        self.v6.clear();
        self.want_v4 = want_v4;
        self.want_v6 = want_v6;
    }

    /// Appends `p` if its family is wanted; true when it was.
    fn push(&mut self, p: &Peer) -> bool {
        let port = p.port.to_be_bytes();
        match Ipv6Addr::from(p.ip).to_ipv4_mapped() {
            Some(v4) if self.want_v4 => {
                self.v4.extend_from_slice(&v4.octets());
                self.v4.extend_from_slice(&port);
                true
            }
            None if self.want_v6 => {
                self.v6.extend_from_slice(&p.ip);
                self.v6.extend_from_slice(&port);
                true
            }
            _ => false,
        }
    }
}

/// The unspecified IPv4 address, mapped: a record with no address.
pub const NO_IP: [u8; 16] = Ipv4Addr::UNSPECIFIED.to_ipv6_mapped().octets();

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(user: u32, key: u32, last: u32) -> Peer {
        let mut p = Peer {
            uploaded: 0,
            downloaded: 0,
            key,
            ip: NO_IP,
            user,
            last,
            port: 6881,
            flags: 0,
        };
        p.set_ip(IpAddr::V4(Ipv4Addr::new(
            10,
            0,
            (key >> 8) as u8,
            key as u8,
        )));
        p
    }

    fn check(t: &Torrent) {
        let (s, _) = t.counts();
        assert!(s as usize <= t.peers.len());
        for (i, p) in t.peers.iter().enumerate() {
            assert_eq!(t.find(p.user, p.key), Some(i), "index of {i}");
        }
    }

    #[test]
    fn peer_record_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Peer>(), 48);
    }

    #[test]
    fn corrupt_baselines_come_and_go_with_their_peers() {
        let mut t = Torrent::new(1, Leech::Normal, 0);
        t.insert(peer(1, 1, 0), false);
        t.insert(peer(1, 2, 0), false);
        assert_eq!(t.corrupt(1, 1), 0);
        t.set_corrupt(1, 1, 500);
        assert_eq!(t.corrupt(1, 1), 500);
        assert!(t.extra.is_some());
        t.remove(t.find(1, 1).unwrap());
        assert_eq!(t.corrupt(1, 1), 0);
        assert!(t.extra.is_none());
        t.set_corrupt(1, 2, 7);
        t.set_corrupt(1, 2, 0);
        assert!(t.extra.is_none());
    }

    #[test]
    fn partition_and_index_hold_through_churn() {
        for n in [5usize, 47, 48, 49, 200] {
            let mut t = Torrent::new(1, Leech::Normal, 0);
            for k in 0..n as u32 {
                t.insert(peer(k % 7, k, 10), k % 3 == 0);
                check(&t);
            }
            let seeders = (0..n as u32).filter(|k| k % 3 == 0).count();
            assert_eq!(t.counts().0 as usize, seeders);
            for i in 0..t.peers.len() {
                assert_eq!(t.is_seeder(i), t.peers[i].key.is_multiple_of(3));
            }
            // flip some, remove some
            for k in (0..n as u32).step_by(4) {
                let i = t.find(k % 7, k).unwrap();
                let s = t.is_seeder(i);
                let j = t.set_seeder(i, !s);
                assert_eq!(t.is_seeder(j), !s);
                assert_eq!(t.peers[j].key, k);
                check(&t);
            }
            for k in (0..n as u32).step_by(5) {
                let i = t.find(k % 7, k).unwrap();
                assert_eq!(t.remove(i).unwrap().key, k);
                assert_eq!(t.find(k % 7, k), None);
                check(&t);
            }
        }
    }

    #[test]
    fn expire_drops_only_old_peers() {
        let mut t = Torrent::new(1, Leech::Normal, 0);
        for k in 0..100u32 {
            t.insert(peer(1, k, if k % 2 == 0 { 5 } else { 50 }), k % 4 == 0);
        }
        let mut gone = 0;
        assert_eq!(t.expire(10, |_| gone += 1), 50);
        assert_eq!(gone, 50);
        assert!(t.peers.iter().all(|p| p.last == 50));
        assert_eq!(t.counts(), (0, 50));
        check(&t);
    }

    #[test]
    fn selection_rules() {
        let mut t = Torrent::new(1, Leech::Normal, 0);
        // user 1: two seeders; user 2: a seeder and a leecher; user 3: a
        // hidden leecher; user 4: a leecher.
        t.insert(peer(1, 1, 0), true);
        t.insert(peer(1, 2, 0), true);
        t.insert(peer(2, 3, 0), true);
        t.insert(peer(2, 4, 0), false);
        let mut hidden = peer(3, 5, 0);
        hidden.flags |= FLAG_HIDDEN;
        t.insert(hidden, false);
        t.insert(peer(4, 6, 0), false);
        let keys = |out: &Picked| -> Vec<u8> { out.v4.chunks(6).map(|c| c[3]).collect() };
        for start in 0..6 {
            let mut out = Picked::default();
            // A leecher of user 4 gets every seeder first, then user 2's
            // leecher; never itself, never the hidden one.
            out.reset(true, true);
            t.select(4, false, 10, start, &mut out);
            let got = keys(&out);
            assert_eq!(got.len(), 4, "{got:?}");
            let mut first: Vec<u8> = got[..3].to_vec();
            first.sort();
            assert_eq!(first, vec![1, 2, 3]);
            assert_eq!(got[3], 4);
            // A seeder of user 2 gets only leechers of other users.
            out.reset(true, true);
            t.select(2, true, 10, start, &mut out);
            assert_eq!(keys(&out), vec![6]);
            // want caps it.
            out.reset(true, true);
            t.select(4, false, 2, start, &mut out);
            assert_eq!(keys(&out).len(), 2);
            // A family not wanted is skipped.
            out.reset(false, true);
            t.select(4, false, 10, start, &mut out);
            assert!(out.v4.is_empty() && out.v6.is_empty());
        }
    }

    #[test]
    fn remove_user_drops_all_its_peers() {
        let mut t = Torrent::new(1, Leech::Normal, 0);
        for k in 0..60u32 {
            t.insert(peer(k % 3, k, 0), k % 2 == 0);
        }
        let gone = t.remove_user(1);
        assert_eq!(gone.len(), 20);
        assert!(t.peers.iter().all(|p| p.user != 1));
        check(&t);
    }
}
