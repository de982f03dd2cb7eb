//! Reading a state file: the frame (magic, version, checksum, length) is
//! checked first, then every record in a first pass that inserts nothing,
//! then a second pass builds each swarm off-lock and inserts it under its
//! stripe. So a bad file leaves the store as it was.
//!
//! Every read goes through `Reader` (checked, no indexing, no `unwrap`):
//! no byte of the file can panic the tracker, and no allocation is sized by
//! a count read from the file (peer lists grow with the peers actually
//! present in a record whose length was already checked against the body).

use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::{
    Fnv1a, Restored, FLAG_COMPLETED, FLAG_SEEDER, HEADER_BYTES, MAGIC, RECORD_HEAD_BYTES,
    TRAILER_BYTES, V4_ENTRY_BYTES, V6_ENTRY_BYTES, VERSION,
};
use crate::clock::secs;
use crate::core::announce::{Gauges, Tracker};
use crate::core::swarm::{Swarm, V4Peer, V6Peer};
use crate::core::InfoHash;

/// What is wrong with a state file's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Shorter than an empty state file (bytes).
    TooShort(usize),
    /// Does not start with the magic: some other file.
    Magic,
    /// Written in a format version this build does not read.
    Version(u32),
    /// The checksum does not match the contents.
    Checksum,
    /// The trailer's body length does not match the file size.
    Length,
    /// A record is malformed (file offset, what).
    Record(u64, &'static str),
    /// The trailer's counts do not match the records.
    Counts,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::TooShort(n) => write!(f, "truncated: only {n} bytes"),
            Invalid::Magic => write!(f, "not a hayate state file (wrong magic)"),
            Invalid::Version(v) => {
                write!(f, "format version {v}; this build reads version {VERSION}")
            }
            Invalid::Checksum => write!(f, "checksum mismatch: corrupt or truncated"),
            Invalid::Length => write!(f, "body length does not match the file size"),
            Invalid::Record(at, what) => write!(f, "bad record at byte {at}: {what}"),
            Invalid::Counts => write!(f, "torrent or peer count does not match the records"),
        }
    }
}

/// Checks the whole file, then inserts its swarms: peers whose age plus
/// the time since the save (`now_unix − saved_at`, 0 if the wall clock went
/// back) reaches `peer_timeout` are left out, the rest are last seen that
/// long ago on the tracker clock. Torrent and peer counts go to `gauges`.
/// On an error the store is untouched. Meant for a tracker nothing serves
/// yet: it may move the tracker clock forward (see below).
pub fn restore(
    tracker: &Tracker,
    bytes: &[u8],
    peer_timeout: Duration,
    gauges: &Gauges,
    now_unix: u64,
) -> Result<Restored, Invalid> {
    let file = open(bytes)?;
    let timeout = secs(peer_timeout).max(1);
    let downtime = u32::try_from(now_unix.saturating_sub(file.saved_at)).unwrap_or(u32::MAX);
    // Pass 1: every record checked, nothing inserted yet.
    let mut scan = Scan {
        timeout,
        downtime,
        oldest: 0,
    };
    if walk(file.body, &mut scan)? != file.counts {
        return Err(Invalid::Counts);
    }
    // The clock of a new process starts at 0; move it on past the oldest
    // kept age so "last seen = now − age" holds exactly. Nothing else has
    // read the clock yet (no worker runs), and it only ever moves forward.
    let clock = tracker.clock();
    let now = clock.now();
    if now < scan.oldest {
        clock.advance(Duration::from_secs(u64::from(scan.oldest - now)));
    }
    // Pass 2: the same walk over the same bytes cannot fail now.
    let mut insert = Insert {
        tracker,
        now: clock.now(),
        timeout,
        downtime,
        hash: [0; 20],
        swarm: Swarm::default(),
        torrents: 0,
        peers: [[0; 2]; 2],
        expired: 0,
    };
    let walked = walk(file.body, &mut insert);
    // Whatever was inserted is counted, even on an (impossible) late error.
    gauges.torrents.fetch_add(insert.torrents, Relaxed);
    for (family, kinds) in insert.peers.iter().enumerate() {
        for (kind, n) in kinds.iter().enumerate() {
            gauges.peers[family][kind].fetch_add(*n, Relaxed);
        }
    }
    walked?;
    Ok(Restored {
        torrents: insert.torrents.max(0) as u64,
        peers: insert.peers.iter().flatten().sum::<i64>().max(0) as u64,
        expired: insert.expired,
    })
}

/// Torrent and peer counts, as in the trailer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    torrents: u64,
    peers: u64,
}

/// A state file whose frame (magic, version, checksum, length) is good.
struct Frame<'a> {
    saved_at: u64,
    body: &'a [u8],
    counts: Counts,
}

/// Checks the header (magic, version) at the start of `bytes`, which may
/// be the header alone; returns `saved_at`. `load` calls it on the first
/// bytes so that a foreign file is not read whole.
pub(super) fn check_header(bytes: &[u8]) -> Result<u64, Invalid> {
    let too_short = Invalid::TooShort(bytes.len());
    let mut r = Reader::new(bytes);
    match r.array::<8>() {
        Some(magic) if magic == MAGIC => {}
        Some(_) => return Err(Invalid::Magic),
        None if MAGIC.starts_with(bytes) => return Err(too_short),
        None => return Err(Invalid::Magic),
    }
    let version = r.u32().ok_or(too_short)?;
    if version != VERSION {
        return Err(Invalid::Version(version));
    }
    r.u64().ok_or(too_short)
}

/// Checks the frame: header, size, checksum, body length.
fn open(bytes: &[u8]) -> Result<Frame<'_>, Invalid> {
    let saved_at = check_header(bytes)?;
    let too_short = Invalid::TooShort(bytes.len());
    let (covered, checksum) = bytes.split_last_chunk::<8>().ok_or(too_short)?;
    if bytes.len() < HEADER_BYTES + TRAILER_BYTES {
        return Err(too_short);
    }
    let mut fnv = Fnv1a::new();
    fnv.update(covered);
    if fnv.0 != u64::from_le_bytes(*checksum) {
        return Err(Invalid::Checksum);
    }
    let (rest, trailer) = covered
        .split_last_chunk::<{ TRAILER_BYTES - 8 }>()
        .ok_or(too_short)?;
    let body = rest.get(HEADER_BYTES..).ok_or(too_short)?;
    let mut t = Reader::new(trailer);
    let (torrents, peers, body_len) = (t.u64(), t.u64(), t.u64());
    let (Some(torrents), Some(peers), Some(body_len)) = (torrents, peers, body_len) else {
        return Err(too_short);
    };
    if body_len != body.len() as u64 {
        return Err(Invalid::Length);
    }
    Ok(Frame {
        saved_at,
        body,
        counts: Counts { torrents, peers },
    })
}

/// One saved peer.
struct Entry<const N: usize> {
    compact: [u8; N],
    seeder: bool,
    completed: bool,
    age: u32,
}

/// What a walk over the records calls, record by record.
trait Visit {
    fn torrent(&mut self, hash: InfoHash, downloaded: u32);
    fn v4(&mut self, peer: Entry<6>);
    fn v6(&mut self, peer: Entry<18>);
    fn end(&mut self);
}

/// Checks every record of `body`, calling `visit` as it goes; returns the
/// counts. Reads only through `Reader` (no indexing): bytes from the file
/// cannot panic it, and no allocation is sized by them.
fn walk(body: &[u8], visit: &mut impl Visit) -> Result<Counts, Invalid> {
    let mut r = Reader::new(body);
    let mut counts = Counts::default();
    while !r.is_empty() {
        let at = (HEADER_BYTES + r.offset()) as u64;
        let bad = |what| Invalid::Record(at, what);
        let len = r.u32().ok_or(bad("truncated length"))?;
        let record = r.take(len as usize).ok_or(bad("longer than the body"))?;
        let mut rec = Reader::new(record);
        let short = bad("shorter than its header");
        let hash = rec.array::<20>().ok_or(short)?;
        let downloaded = rec.u32().ok_or(short)?;
        let n4 = rec.u32().ok_or(short)?;
        let n6 = rec.u32().ok_or(short)?;
        let expect =
            RECORD_HEAD_BYTES + u64::from(n4) * V4_ENTRY_BYTES + u64::from(n6) * V6_ENTRY_BYTES;
        if expect != u64::from(len) {
            return Err(bad("length does not match its peer counts"));
        }
        visit.torrent(hash, downloaded);
        for _ in 0..n4 {
            visit.v4(entry(&mut rec).ok_or(bad("unknown peer flags"))?);
        }
        for _ in 0..n6 {
            visit.v6(entry(&mut rec).ok_or(bad("unknown peer flags"))?);
        }
        visit.end();
        counts.torrents += 1;
        counts.peers += u64::from(n4) + u64::from(n6);
    }
    Ok(counts)
}

/// Reads one peer entry; `None` if cut short or its flags are unknown
/// (the length check before makes "cut short" impossible).
fn entry<const N: usize>(r: &mut Reader<'_>) -> Option<Entry<N>> {
    let compact = r.array::<N>()?;
    let [flags] = r.array::<1>()?;
    let age = r.u32()?;
    if flags & !(FLAG_SEEDER | FLAG_COMPLETED) != 0 {
        return None;
    }
    Some(Entry {
        compact,
        seeder: flags & FLAG_SEEDER != 0,
        completed: flags & FLAG_COMPLETED != 0,
        age,
    })
}

/// Pass 1: the oldest age that will be kept.
struct Scan {
    timeout: u32,
    downtime: u32,
    oldest: u32,
}

impl Scan {
    fn see(&mut self, age: u32) {
        let age = age.saturating_add(self.downtime);
        if age < self.timeout {
            self.oldest = self.oldest.max(age);
        }
    }
}

impl Visit for Scan {
    fn torrent(&mut self, _: InfoHash, _: u32) {}
    fn v4(&mut self, peer: Entry<6>) {
        self.see(peer.age);
    }
    fn v6(&mut self, peer: Entry<18>) {
        self.see(peer.age);
    }
    fn end(&mut self) {}
}

/// Pass 2: builds each swarm off-lock, then inserts it under its stripe.
struct Insert<'a> {
    tracker: &'a Tracker,
    now: u32,
    timeout: u32,
    downtime: u32,
    hash: InfoHash,
    swarm: Swarm,
    torrents: i64,
    /// Net change in peers `[family][kind]`, as in `Gauges`.
    peers: [[i64; 2]; 2],
    expired: u64,
}

impl Insert<'_> {
    /// The tracker-clock last-seen time of a kept peer.
    fn last_seen(&mut self, age: u32) -> Option<u32> {
        let age = age.saturating_add(self.downtime);
        if age >= self.timeout {
            self.expired += 1;
            return None;
        }
        Some(self.now.saturating_sub(age))
    }

    fn count(&mut self, swarm: &Swarm, sign: i64) {
        let (c4, c6) = swarm.counts();
        self.peers[0][0] += sign * c4.leechers as i64;
        self.peers[0][1] += sign * c4.seeders as i64;
        self.peers[1][0] += sign * c6.leechers as i64;
        self.peers[1][1] += sign * c6.seeders as i64;
    }
}

impl Visit for Insert<'_> {
    fn torrent(&mut self, hash: InfoHash, downloaded: u32) {
        self.hash = hash;
        self.swarm = Swarm::default();
        self.swarm.set_downloaded(downloaded);
    }

    fn v4(&mut self, p: Entry<6>) {
        if let Some(seen) = self.last_seen(p.age) {
            let record = V4Peer::restored(p.compact, p.completed, seen);
            self.swarm.restore_v4(record, p.seeder);
        }
    }

    fn v6(&mut self, p: Entry<18>) {
        if let Some(seen) = self.last_seen(p.age) {
            let record = V6Peer::restored(p.compact, p.completed, seen);
            self.swarm.restore_v6(record, p.seeder);
        }
    }

    fn end(&mut self) {
        let swarm = std::mem::take(&mut self.swarm);
        if swarm.is_empty() {
            return;
        }
        self.count(&swarm, 1);
        // A writer never repeats a torrent; if a file does, the last
        // record wins and the counts stay exact.
        let replaced = self
            .tracker
            .store()
            .stripe(&self.hash)
            .insert(self.hash, swarm);
        match replaced {
            Some(old) => self.count(&old, -1),
            None => self.torrents += 1,
        }
    }
}

/// A cursor over bytes that never panics: every read is checked.
struct Reader<'a> {
    all: usize,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            all: bytes.len(),
            rest: bytes,
        }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Bytes read so far.
    fn offset(&self) -> usize {
        self.all - self.rest.len()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.rest.split_at_checked(n)?;
        self.rest = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.rest.split_first_chunk::<N>()?;
        self.rest = rest;
        Some(*head)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::config::Config;
    use crate::core::announce::{Announce, PeerBuf};
    use crate::core::peers::PeerRecord;
    use crate::core::Event;
    use crate::rng::Rng;
    use crate::snapshot::write_to;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

    const SAVED_AT: u64 = 1_700_000_000;

    fn tracker(timeout_secs: u64) -> Tracker {
        let config = Config {
            stripes: 4,
            peer_timeout: Duration::from_secs(timeout_secs),
            ..Config::default()
        };
        Tracker::new(&config, Clock::new())
    }

    /// One announce: an IPv4 peer `10.0.0.v4`, an IPv6 peer `2001:db8::v6`
    /// (port 6881 + n), or both.
    fn announce(t: &Tracker, hash: u8, v4: Option<u8>, v6: Option<u16>, left: u64, event: Event) {
        let a = Announce {
            info_hash: [hash; 20],
            v4: v4.map(|n| SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, n), 6881 + u16::from(n))),
            v6: v6.map(|n| {
                SocketAddrV6::new(
                    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n),
                    6881 + n,
                    0,
                    0,
                )
            }),
            left,
            event,
            numwant: 0,
            want_v4: true,
            want_v6: true,
            local_networks: &[],
        };
        let mut rng = Rng::from_seed(1);
        t.announce(&a, &mut rng, &mut PeerBuf::default(), &Gauges::default());
    }

    /// Every peer in the store: (hash, downloaded, compact, seeder, completed, age).
    type Seen = (InfoHash, u32, Vec<u8>, bool, bool, u32);

    fn dump(t: &Tracker) -> Vec<Seen> {
        let now = t.clock().now();
        let mut all = Vec::new();
        for i in 0..t.store().stripe_count() {
            for (hash, s) in t.store().lock(i).iter() {
                for (p, seeder) in s.v4().iter() {
                    let age = now - p.last_seen();
                    all.push((
                        *hash,
                        s.downloaded(),
                        p.compact().to_vec(),
                        seeder,
                        p.completed(),
                        age,
                    ));
                }
                for (p, seeder) in s.v6().iter() {
                    let age = now - p.last_seen();
                    all.push((
                        *hash,
                        s.downloaded(),
                        p.compact().to_vec(),
                        seeder,
                        p.completed(),
                        age,
                    ));
                }
            }
        }
        all.sort();
        all
    }

    /// Equal but for ages, which may differ by the one clock tick that can
    /// pass between the two dumps.
    fn assert_same(a: &[Seen], b: &[Seen]) {
        assert_eq!(a.len(), b.len(), "{a:?}\n{b:?}");
        for (x, y) in a.iter().zip(b) {
            assert_eq!((&x.0, x.1, &x.2, x.3, x.4), (&y.0, y.1, &y.2, y.3, y.4));
            assert!(x.5.abs_diff(y.5) <= 1, "age {} vs {}", x.5, y.5);
        }
    }

    fn save(t: &Tracker) -> Vec<u8> {
        let mut file = Vec::new();
        let saved = write_to(t, &mut file, SAVED_AT).expect("write to a Vec");
        assert_eq!(saved.bytes, file.len() as u64);
        file
    }

    /// A small store: dual-stack, seeders, completed, an indexed swarm, and
    /// peers of different ages.
    fn sample() -> Tracker {
        let t = tracker(3600);
        announce(&t, 1, Some(1), None, 5, Event::Started);
        announce(&t, 1, Some(2), Some(2), 0, Event::Completed);
        announce(&t, 2, None, Some(3), 0, Event::None);
        t.clock().advance(Duration::from_secs(300));
        for n in 0..60 {
            announce(&t, 3, Some(100 + n), None, u64::from(n % 3), Event::None);
        }
        announce(&t, 1, Some(4), None, 0, Event::Completed);
        t.clock().advance(Duration::from_secs(20));
        t
    }

    /// A store small enough to corrupt every byte of its file every way.
    fn small() -> Tracker {
        let t = tracker(3600);
        announce(&t, 1, Some(1), None, 5, Event::Started);
        t.clock().advance(Duration::from_secs(30));
        announce(&t, 1, Some(2), Some(2), 0, Event::Completed);
        announce(&t, 2, None, Some(3), 0, Event::None);
        t
    }

    /// The sum of two sets of gauges, as the stats page adds them up.
    fn sum(a: &Gauges, b: &Gauges) -> (i64, [[i64; 2]; 2]) {
        let mut peers = [[0; 2]; 2];
        for (f, kinds) in peers.iter_mut().enumerate() {
            for (k, n) in kinds.iter_mut().enumerate() {
                *n = a.peers[f][k].load(Relaxed) + b.peers[f][k].load(Relaxed);
            }
        }
        (a.torrents.load(Relaxed) + b.torrents.load(Relaxed), peers)
    }

    #[test]
    fn round_trip_keeps_peers_flags_downloads_and_ages() {
        let a = sample();
        let file = save(&a);
        let b = tracker(3600);
        let gauges = Gauges::default();
        let r = restore(&b, &file, Duration::from_secs(3600), &gauges, SAVED_AT).unwrap();
        assert_eq!((r.torrents, r.peers, r.expired), (3, 65, 0));
        let (before, after) = (dump(&a), dump(&b));
        assert_same(&before, &after);
        let ages: Vec<u32> = after.iter().map(|p| p.5).collect();
        assert!(ages.iter().any(|&a| (320..=321).contains(&a)), "{ages:?}");
        assert!(ages.iter().any(|&a| (20..=21).contains(&a)), "{ages:?}");
        // Counted once per peer, kept per record.
        assert!(after.iter().any(|p| p.0 == [1; 20] && p.1 == 2 && p.4));
        // The live gauges agree with a full recount.
        let reaper = Gauges::default();
        let totals = b.reap(&reaper, &|_| true);
        let (torrents, peers) = sum(&gauges, &reaper);
        assert_eq!(torrents, totals.torrents as i64);
        assert_eq!(peers[0][1], totals.seeders_v4 as i64);
        assert_eq!(peers[0][0], totals.leechers_v4 as i64);
        assert_eq!(peers[1][1], totals.seeders_v6 as i64);
        assert_eq!(peers[1][0], totals.leechers_v6 as i64);
        assert_eq!(
            totals.seeders_v4 + totals.leechers_v4 + totals.seeders_v6 + totals.leechers_v6,
            65
        );
        // Saving the restored store gives back the same records.
        let again = tracker(3600);
        restore(
            &again,
            &save(&b),
            Duration::from_secs(3600),
            &Gauges::default(),
            SAVED_AT,
        )
        .unwrap();
        assert_same(&after, &dump(&again));
    }

    #[test]
    fn an_empty_store_round_trips() {
        let file = save(&tracker(60));
        assert_eq!(file.len(), HEADER_BYTES + TRAILER_BYTES);
        let r = restore(
            &tracker(60),
            &file,
            Duration::from_secs(60),
            &Gauges::default(),
            0,
        );
        assert_eq!(r, Ok(Restored::default()));
    }

    /// Asserts `bytes` is refused and left no trace in a fresh store.
    fn refused(bytes: &[u8]) -> Invalid {
        let t = tracker(3600);
        let gauges = Gauges::default();
        let err = restore(&t, bytes, Duration::from_secs(3600), &gauges, SAVED_AT)
            .expect_err("a bad file was accepted");
        assert!(dump(&t).is_empty());
        assert_eq!(sum(&gauges, &Gauges::default()), (0, [[0; 2]; 2]));
        err
    }

    #[test]
    fn every_single_byte_corruption_is_refused() {
        let file = save(&small());
        for at in 0..file.len() {
            for flip in 1..=255u8 {
                let mut bad = file.clone();
                bad[at] ^= flip;
                let t = tracker(3600);
                let got = restore(
                    &t,
                    &bad,
                    Duration::from_secs(3600),
                    &Gauges::default(),
                    SAVED_AT,
                );
                assert!(got.is_err(), "byte {at} ^ {flip:#x} accepted");
                assert!(t.store().lock(0).is_empty() && dump(&t).is_empty());
            }
        }
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let file = save(&small());
        for len in 0..file.len() {
            let err = refused(&file[..len]);
            let expect_short = len < HEADER_BYTES + TRAILER_BYTES;
            assert_eq!(
                matches!(err, Invalid::TooShort(_)),
                expect_short,
                "len {len}: {err}"
            );
        }
        let mut longer = file.clone();
        longer.push(0);
        assert_eq!(refused(&longer), Invalid::Checksum);
    }

    /// Recomputes the checksum after an edit.
    fn reseal(mut file: Vec<u8>) -> Vec<u8> {
        let n = file.len() - 8;
        let mut fnv = Fnv1a::new();
        fnv.update(&file[..n]);
        file[n..].copy_from_slice(&fnv.0.to_le_bytes());
        file
    }

    #[test]
    fn wrong_version_and_foreign_files_say_why() {
        let file = save(&sample());
        let mut v2 = file.clone();
        v2[8..12].copy_from_slice(&2u32.to_le_bytes());
        let err = refused(&reseal(v2));
        assert_eq!(err, Invalid::Version(2));
        assert_eq!(
            err.to_string(),
            "format version 2; this build reads version 1"
        );
        assert_eq!(refused(b""), Invalid::TooShort(0));
        assert_eq!(refused(&MAGIC[..5]), Invalid::TooShort(5));
        assert_eq!(refused(b"# tracker.conf\nworkers = 2\n"), Invalid::Magic);
        assert_eq!(
            refused(b"\x89PNG\r\n\x1a\n0000000000000000"),
            Invalid::Magic
        );
        assert_eq!(refused(&[0u8; 4096]), Invalid::Magic);
    }

    /// A file around hand-made records, correctly sealed.
    fn file_of(records: &[Vec<u8>], torrents: u64, peers: u64) -> Vec<u8> {
        let mut f = MAGIC.to_vec();
        f.extend_from_slice(&VERSION.to_le_bytes());
        f.extend_from_slice(&SAVED_AT.to_le_bytes());
        let body: Vec<u8> = records.concat();
        f.extend_from_slice(&body);
        for n in [torrents, peers, body.len() as u64, 0] {
            f.extend_from_slice(&n.to_le_bytes());
        }
        reseal(f)
    }

    /// A record with `n4` IPv4 entries, its length field set to `len` (or the right one).
    fn record(hash: u8, n4: u32, flags: u8, age: u32, len: Option<u32>) -> Vec<u8> {
        let right = RECORD_HEAD_BYTES as u32 + n4 * V4_ENTRY_BYTES as u32;
        let mut r = len.unwrap_or(right).to_le_bytes().to_vec();
        r.extend_from_slice(&[hash; 20]);
        r.extend_from_slice(&7u32.to_le_bytes());
        r.extend_from_slice(&n4.to_le_bytes());
        r.extend_from_slice(&0u32.to_le_bytes());
        for i in 0..n4 {
            r.extend_from_slice(&[10, 0, 0, i as u8, 0x1a, 0xe1, flags]);
            r.extend_from_slice(&age.to_le_bytes());
        }
        r
    }

    #[test]
    fn sealed_but_malformed_records_are_refused() {
        let ok = record(1, 2, FLAG_SEEDER, 5, None);
        // Claims 4G peers in a 40-byte record: refused before any allocation.
        let mut huge = record(1, 0, 0, 0, Some(40));
        huge[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 8]);
        let cases: &[(Vec<u8>, u64, u64, &str)] = &[
            (record(1, 2, 4, 5, None), 1, 2, "unknown peer flags"),
            (record(1, 2, 0, 5, Some(40)), 1, 2, "length does not match"),
            (record(1, 2, 0, 5, Some(200)), 1, 2, "longer than the body"),
            (ok[..ok.len() - 1].to_vec(), 1, 2, "longer than the body"),
            (ok[..3].to_vec(), 1, 2, "truncated length"),
            (record(1, 0, 0, 0, Some(8)), 1, 0, "shorter than its header"),
            (ok.clone(), 2, 2, "count does not match"),
            (ok.clone(), 1, 3, "count does not match"),
            (huge, 1, u64::from(u32::MAX), "length does not match"),
        ];
        for (rec, torrents, peers, why) in cases {
            let err = refused(&file_of(std::slice::from_ref(rec), *torrents, *peers));
            assert!(err.to_string().contains(why), "{err} (wanted {why:?})");
        }
        let good = restore(
            &tracker(60),
            &file_of(&[ok], 1, 2),
            Duration::from_secs(60),
            &Gauges::default(),
            SAVED_AT,
        );
        assert_eq!(good.map(|r| r.peers), Ok(2));
    }

    #[test]
    fn a_repeated_torrent_keeps_the_last_record_and_exact_counts() {
        let t = tracker(60);
        let gauges = Gauges::default();
        let file = file_of(
            &[record(1, 3, FLAG_SEEDER, 0, None), record(1, 1, 0, 0, None)],
            2,
            4,
        );
        let r = restore(&t, &file, Duration::from_secs(60), &gauges, SAVED_AT).unwrap();
        assert_eq!((r.torrents, r.peers), (1, 1));
        assert_eq!(sum(&gauges, &Gauges::default()), (1, [[1, 0], [0, 0]]));
    }

    #[test]
    fn peers_past_the_timeout_are_dropped_downtime_included() {
        let t = tracker(100_000);
        // Ages at the save: 150, 100, 99, 50, 0 (torrent 9 only the oldest).
        announce(&t, 9, Some(1), None, 1, Event::None);
        t.clock().advance(Duration::from_secs(50));
        announce(&t, 8, Some(2), None, 1, Event::None);
        t.clock().advance(Duration::from_secs(1));
        announce(&t, 8, Some(3), None, 1, Event::None);
        t.clock().advance(Duration::from_secs(49));
        announce(&t, 8, Some(4), None, 1, Event::None);
        t.clock().advance(Duration::from_secs(50));
        announce(&t, 8, Some(5), None, 1, Event::None);
        let file = save(&t);
        let kept = |downtime: u64| {
            let b = tracker(100);
            let gauges = Gauges::default();
            let r = restore(
                &b,
                &file,
                Duration::from_secs(100),
                &gauges,
                SAVED_AT + downtime,
            )
            .unwrap();
            let ports: Vec<u16> = dump(&b)
                .iter()
                .map(|p| u16::from_be_bytes([p.2[4], p.2[5]]) - 6881)
                .collect();
            assert_eq!(r.peers as usize, ports.len());
            assert_eq!(sum(&gauges, &Gauges::default()).0, r.torrents as i64);
            (r.torrents, r.expired, ports)
        };
        // The clock can tick during the test: an age may read one more.
        let (torrents, expired, ports) = kept(0);
        assert_eq!(torrents, 1, "torrent 9 had only expired peers");
        assert!((2..=3).contains(&expired), "{expired}");
        assert!(ports.ends_with(&[4, 5]) && !ports.contains(&1) && !ports.contains(&2));
        let (_, _, ports) = kept(10);
        assert_eq!(ports, [4, 5]);
        // A wall clock that went back counts as no downtime.
        let b = tracker(100);
        let r = restore(&b, &file, Duration::from_secs(100), &Gauges::default(), 0).unwrap();
        assert!(r.peers >= 2);
        let (_, expired, _) = kept(1_000);
        assert_eq!(expired, 5);
    }
}
