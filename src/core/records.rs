//! The stored peer records of a public swarm: an IPv4 peer in 11 bytes,
//! an IPv6 peer in 23, each the compact wire form (address bytes then
//! big-endian port), a flags byte and a last-seen time. Handing out a peer
//! is a copy of its first 6 or 18 bytes. Public mode stores no peer_id: it
//! would be 20 more bytes a peer, and BEP 23 compact replies (what clients
//! ask for) carry none.

use std::net::{SocketAddrV4, SocketAddrV6};

use super::peers::PeerRecord;
use super::small::{self, Packed};

/// Set once the peer's `completed` has been counted.
pub(super) const FLAG_COMPLETED: u8 = 1;

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

// The packed form is the record's own bytes: compact address, flags,
// last seen (little-endian).
impl Packed for V4Peer {
    const SIZE: usize = 11;
    const FAMILY: usize = 0;
    fn encode(&self, out: &mut [u8]) {
        if let Some(out) = out.get_mut(..Self::SIZE) {
            out[..6].copy_from_slice(&self.compact);
            out[6] = self.flags;
            out[7..].copy_from_slice(&self.seen);
        }
    }
    fn decode(b: &[u8]) -> Option<V4Peer> {
        Some(V4Peer {
            compact: b.get(..6)?.try_into().ok()?,
            flags: *b.get(6)?,
            seen: b.get(7..11)?.try_into().ok()?,
        })
    }
}

impl Packed for V6Peer {
    const SIZE: usize = 23;
    const FAMILY: usize = 1;
    fn encode(&self, out: &mut [u8]) {
        if let Some(out) = out.get_mut(..Self::SIZE) {
            out[..18].copy_from_slice(&self.compact);
            out[18] = self.flags;
            out[19..].copy_from_slice(&self.seen);
        }
    }
    fn decode(b: &[u8]) -> Option<V6Peer> {
        Some(V6Peer {
            compact: b.get(..18)?.try_into().ok()?,
            flags: *b.get(18)?,
            seen: b.get(19..23)?.try_into().ok()?,
        })
    }
}

// small.rs finds the IPv6 records after the IPv4 ones by this size.
const _: () = assert!(<V4Peer as Packed>::SIZE == small::V4_SIZE);

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
