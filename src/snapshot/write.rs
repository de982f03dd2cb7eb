//! Writing a state file: one stripe locked at a time, only while its
//! swarms are copied into a scratch buffer; the bytes go to the writer
//! after the guard is dropped.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use super::{
    Fnv1a, Saved, FLAG_COMPLETED, FLAG_SEEDER, HEADER_BYTES, MAGIC, RECORD_HEAD_BYTES,
    V4_ENTRY_BYTES, V6_ENTRY_BYTES, VERSION,
};
use crate::core::announce::Tracker;
use crate::core::peers::{PeerRecord, Records};
use crate::core::swarm::Swarm;
use crate::core::InfoHash;

/// Writes the snapshot of every swarm to `out`; `saved_at` is the wall
/// clock in unix seconds (a restore counts the time since as age).
pub fn write_to(tracker: &Tracker, out: impl Write, saved_at: u64) -> io::Result<Saved> {
    let mut out = Summed {
        inner: out,
        fnv: Fnv1a::new(),
        bytes: 0,
    };
    out.put(&MAGIC)?;
    out.put(&VERSION.to_le_bytes())?;
    out.put(&saved_at.to_le_bytes())?;
    let store = tracker.store();
    let now = tracker.clock().now();
    let (mut torrents, mut peers) = (0u64, 0u64);
    let mut scratch = Vec::new();
    let mut longest_hold = Duration::ZERO;
    for i in 0..store.stripe_count() {
        scratch.clear();
        let locked = Instant::now();
        let stripe = store.lock(i);
        for (hash, swarm) in stripe.iter() {
            encode(hash, swarm, now, &mut scratch)?;
            torrents += 1;
            peers += swarm.len() as u64;
        }
        drop(stripe);
        longest_hold = longest_hold.max(locked.elapsed());
        out.put(&scratch)?;
    }
    let body_len = out.bytes - HEADER_BYTES as u64;
    out.put(&torrents.to_le_bytes())?;
    out.put(&peers.to_le_bytes())?;
    out.put(&body_len.to_le_bytes())?;
    let checksum = out.fnv.0;
    out.put(&checksum.to_le_bytes())?;
    out.inner.flush()?;
    Ok(Saved {
        torrents,
        peers,
        bytes: out.bytes,
        longest_hold,
    })
}

/// Appends one torrent's record.
fn encode(hash: &InfoHash, swarm: &Swarm, now: u32, out: &mut Vec<u8>) -> io::Result<()> {
    let (n4, n6) = (swarm.v4().len() as u64, swarm.v6().len() as u64);
    let len = RECORD_HEAD_BYTES + n4 * V4_ENTRY_BYTES + n6 * V6_ENTRY_BYTES;
    // 4 GiB would be ~180M peers in one swarm; refuse rather than wrap.
    let len = u32::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a swarm too large to save"))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(hash);
    out.extend_from_slice(&swarm.downloaded().to_le_bytes());
    // Both counts are below `len`, so they fit in u32.
    out.extend_from_slice(&(n4 as u32).to_le_bytes());
    out.extend_from_slice(&(n6 as u32).to_le_bytes());
    let flags = |seeder: bool, completed: bool| {
        (if seeder { FLAG_SEEDER } else { 0 }) | (if completed { FLAG_COMPLETED } else { 0 })
    };
    for (p, seeder) in swarm.v4().iter() {
        out.extend_from_slice(p.compact());
        out.push(flags(seeder, p.completed()));
        out.extend_from_slice(&now.saturating_sub(p.last_seen()).to_le_bytes());
    }
    for (p, seeder) in swarm.v6().iter() {
        out.extend_from_slice(p.compact());
        out.push(flags(seeder, p.completed()));
        out.extend_from_slice(&now.saturating_sub(p.last_seen()).to_le_bytes());
    }
    Ok(())
}

/// A writer that checksums and counts what passes through it.
struct Summed<W> {
    inner: W,
    fnv: Fnv1a,
    bytes: u64,
}

impl<W: Write> Summed<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.fnv.update(bytes);
        self.bytes += bytes.len() as u64;
        self.inner.write_all(bytes)
    }
}
