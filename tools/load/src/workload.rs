//! What to ask the tracker: torrents with skewed popularity, peer identities
//! that join, re-announce, complete, leave and vanish, and scrapes.
//!
//! Everything is derived from `--seed` by hashing, so two runs with the same
//! flags send the same requests in the same per-lane order. Each sending lane
//! (a UDP thread, an HTTP connection) owns a disjoint share of the peer slots
//! (slot `j` belongs to lane `j % lanes`), so no state is shared between
//! threads and one peer's announces never race each other.

use std::sync::Arc;

/// wyrand: a tiny, fast, well-mixed PRNG (Wang Yi's wyhash family).
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        mix(self.0, self.0 ^ 0xe703_7ed1_a0b4_28db)
    }

    /// Uniform in `0..n` (n > 0); the bias of a 64-bit multiply-shift is
    /// negligible for the ranges used here.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// wyhash's 128-bit multiply-fold.
fn mix(a: u64, b: u64) -> u64 {
    let r = a as u128 * b as u128;
    (r as u64) ^ ((r >> 64) as u64)
}

/// A stateless hash of a few words: identities are computed, not stored.
fn hash(words: &[u64]) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15u64;
    for &w in words {
        h = mix(h ^ w, 0x8ebc_6af0_9c88_c6e3 ^ w.rotate_left(29));
    }
    mix(h, 0x5899_65cc_7537_4cc3)
}

/// One peer's request, already decided; the protocol drivers encode it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    None,
    Completed,
    Started,
    Stopped,
}

impl Event {
    /// BEP 15 numbering.
    pub fn udp_code(self) -> u32 {
        match self {
            Event::None => 0,
            Event::Completed => 1,
            Event::Started => 2,
            Event::Stopped => 3,
        }
    }

    /// The HTTP `event=` value (`None` sends no parameter).
    pub fn http_name(self) -> Option<&'static str> {
        match self {
            Event::None => None,
            Event::Completed => Some("completed"),
            Event::Started => Some("started"),
            Event::Stopped => Some("stopped"),
        }
    }
}

/// Most hashes one scrape request carries (the BEP 15 reply must fit a
/// datagram: 74 hashes; trackers cap it lower by default).
pub const MAX_SCRAPE_HASHES: usize = 64;

/// A request ready to encode (a scrape's hashes are borrowed from the lane).
pub enum Request<'a> {
    Announce {
        info_hash: [u8; 20],
        peer_id: [u8; 20],
        port: u16,
        left: u64,
        event: Event,
        numwant: u32,
        key: u32,
        /// Bytes sent and received so far in this life (0 without
        /// `--passkeys`).
        uploaded: u64,
        downloaded: u64,
        /// Private mode: the passkey of the peer's user.
        passkey: Option<[u8; 32]>,
    },
    Scrape(&'a [[u8; 20]]),
}

/// Private mode: what a peer adds to `uploaded` (and a leecher to
/// `downloaded`) at each announce after `started`, so the tracker credits
/// something every time.
pub const BYTES_PER_ANNOUNCE: u64 = 16384;

/// The passkey of user `user` (0-based): `user + 1` as 32 lowercase hex
/// digits, so user id `n` (1-based, as `register` adds them) has passkey
/// `format!("{:032x}", n)`.
pub fn passkey(user: u64) -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = user as u128 + 1;
    let mut out = [b'0'; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = HEX[((n >> (4 * (31 - i))) & 15) as usize];
    }
    out
}

// The churn mix, per announce of a peer that is in a swarm, in per mille.
// About 95% of announces are plain re-announces, as on a real tracker.
/// A leecher finishes (`completed`, becomes a seeder).
const COMPLETE_PER_MILLE: u64 = 30;
/// A peer leaves politely (`stopped`); the slot then joins as a new peer.
const STOP_PER_MILLE: u64 = 10;
/// A peer vanishes without `stopped` (crash, NAT timeout): nothing is sent,
/// the tracker must time it out; the slot joins again as a new peer.
const VANISH_PER_MILLE: u64 = 10;
/// Share of peers that join as seeders (`left=0`).
const SEED_PER_MILLE: u64 = 200;
/// Smallest port handed out: below it are well-known services.
const FIRST_PORT: u64 = 1024;
/// Ports handed out.
const PORTS: u64 = 65536 - FIRST_PORT;

/// The shared description of the workload (read-only once built).
pub struct Workload {
    /// Every torrent's info hash, by popularity rank (rank 0 is the biggest).
    pub hashes: Vec<[u8; 20]>,
    /// Peer slots in total.
    pub peers: u64,
    /// Zipf exponent of torrent popularity.
    pub skew: f64,
    /// Probability that a request is a scrape.
    pub scrape_ratio: f64,
    /// Hashes per scrape.
    pub scrape_hashes: usize,
    /// `numwant` sent with every announce.
    pub numwant: u32,
    /// The run's seed.
    pub seed: u64,
    /// Private mode: users the peers belong to (slot `i` to user
    /// `i % passkeys`); 0 = public announces.
    pub passkeys: u64,
    /// Port of each slot's first life: its ordinal within its swarm, so the
    /// first lives of all slots are distinct peers to the tracker (which
    /// tells peers apart by address and port) up to `PORTS` per swarm.
    first_ports: Vec<u16>,
}

impl Workload {
    /// Builds the torrent set (20 bytes per torrent).
    pub fn new(
        torrents: u64,
        peers: u64,
        skew: f64,
        scrape_ratio: f64,
        scrape_hashes: usize,
        numwant: u32,
        seed: u64,
    ) -> Workload {
        let hashes = (0..torrents)
            .map(|t| {
                let mut h = [0u8; 20];
                for (i, chunk) in h.chunks_mut(8).enumerate() {
                    let w = hash(&[seed, 0x7472_6e74, t, i as u64]).to_le_bytes();
                    chunk.copy_from_slice(&w[..chunk.len()]);
                }
                h
            })
            .collect();
        let mut w = Workload {
            hashes,
            peers,
            skew,
            scrape_ratio,
            scrape_hashes: scrape_hashes.clamp(1, MAX_SCRAPE_HASHES),
            numwant,
            seed,
            passkeys: 0,
            first_ports: Vec::new(),
        };
        let mut in_swarm = vec![0u32; w.hashes.len()];
        w.first_ports = (0..peers)
            .map(|slot| {
                let n = &mut in_swarm[w.identity(slot, 0).torrent];
                *n += 1;
                (FIRST_PORT + (*n as u64 - 1) % PORTS) as u16
            })
            .collect();
        w
    }

    /// A torrent rank drawn from a Zipf-like law: P(rank k) ~ 1/(k+1)^skew,
    /// by inverting the continuous power law's CDF over [1, n+1). With
    /// skew 1 most swarms get one or two peers and a few get thousands.
    pub fn zipf(&self, u: f64) -> usize {
        let n = self.hashes.len() as f64;
        let x = if (self.skew - 1.0).abs() < 1e-9 {
            (n + 1.0).powf(u)
        } else {
            let a = 1.0 - self.skew;
            (1.0 + u * ((n + 1.0).powf(a) - 1.0)).powf(1.0 / a)
        };
        ((x.floor() as usize).saturating_sub(1)).min(self.hashes.len() - 1)
    }

    /// The identity a slot has in its `gen`-th life: torrent rank, port,
    /// peer_id, key, and the size of its download. A slot that stops or
    /// vanishes comes back as a new peer (next generation), usually in
    /// another swarm and always on another port.
    pub fn identity(&self, slot: u64, gen: u32) -> Identity {
        let h = hash(&[self.seed, 0x7065_6572, slot, gen as u64]);
        let u = (h >> 11) as f64 / (1u64 << 53) as f64;
        let h2 = hash(&[self.seed, 0x6964, slot, gen as u64]);
        let mut peer_id = *b"-HL0001-000000000000";
        for (i, b) in peer_id[8..].iter_mut().enumerate() {
            *b = b"0123456789abcdefghijklmnopqrstuv"[((h2 >> (i * 5)) & 31) as usize];
        }
        let port = match self.first_ports.get(slot as usize) {
            Some(&p) if gen == 0 => p,
            _ => (FIRST_PORT + (h2 >> 4) % PORTS) as u16,
        };
        Identity {
            torrent: self.zipf(u),
            port,
            peer_id,
            key: (h2 >> 32) as u32,
            size: 1 + (h >> 40),
            seeder: hash(&[self.seed, 0x7365_6564, slot, gen as u64]) % 1000 < SEED_PER_MILLE,
        }
    }
}

/// One life of a peer slot.
pub struct Identity {
    pub torrent: usize,
    pub port: u16,
    pub peer_id: [u8; 20],
    pub key: u32,
    pub size: u64,
    pub seeder: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Absent,
    Leecher,
    Seeder,
}

#[derive(Clone, Copy)]
struct Slot {
    gen: u32,
    state: State,
    /// Counters of the current life (private mode only).
    uploaded: u64,
    downloaded: u64,
}

/// How a lane walks its slots.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Announce every slot once (`started`), then end.
    Fill,
    /// Churn forever: slots are visited round-robin in a shuffled order, so
    /// each peer re-announces at a steady interval (slots / lane rate), as
    /// clients do.
    Churn,
}

/// One sending lane's share of the workload.
pub struct Lane {
    work: Arc<Workload>,
    rng: Rng,
    /// Global slot index of local slot i: `first + i * step`.
    first: u64,
    step: u64,
    slots: Vec<Slot>,
    /// Round-robin position and a stride coprime with the slot count.
    pos: u64,
    stride: u64,
    shape: Shape,
    visited: u64,
    scrape: [[u8; 20]; MAX_SCRAPE_HASHES],
}

impl Lane {
    /// Lane `index` of `lanes`.
    pub fn new(work: Arc<Workload>, index: u64, lanes: u64, shape: Shape) -> Lane {
        let count = (work.peers.saturating_sub(index)).div_ceil(lanes);
        let mut rng = Rng::new(hash(&[work.seed, 0x6c61_6e65, index]));
        let mut stride = 1;
        if count > 2 && shape == Shape::Churn {
            loop {
                stride = 1 + rng.below(count - 1);
                if gcd(stride, count) == 1 {
                    break;
                }
            }
        }
        Lane {
            work,
            rng,
            first: index,
            step: lanes,
            slots: vec![
                Slot {
                    gen: 0,
                    state: State::Absent,
                    uploaded: 0,
                    downloaded: 0,
                };
                count as usize
            ],
            pos: 0,
            stride,
            shape,
            visited: 0,
            scrape: [[0; 20]; MAX_SCRAPE_HASHES],
        }
    }

    /// Slots this lane owns.
    pub fn slots(&self) -> u64 {
        self.slots.len() as u64
    }

    /// The next request, or `None` when a fill lane has announced every slot.
    pub fn next(&mut self) -> Option<Request<'_>> {
        let work = Arc::clone(&self.work);
        if self.slots.is_empty() {
            return None;
        }
        if self.shape == Shape::Churn && self.rng.unit() < work.scrape_ratio {
            let hashes = &mut self.scrape[..work.scrape_hashes];
            for h in hashes.iter_mut() {
                *h = work.hashes[work.zipf(self.rng.unit())];
            }
            return Some(Request::Scrape(hashes));
        }
        // A vanishing peer sends nothing: move on to the next slot (bounded,
        // in case every slot vanished in a row).
        for _ in 0..64 {
            if self.shape == Shape::Fill && self.visited == self.slots() {
                return None;
            }
            let i = self.pos as usize;
            self.pos = (self.pos + self.stride) % self.slots();
            self.visited += 1;
            let slot = &mut self.slots[i];
            let global = self.first + i as u64 * self.step;
            let id = work.identity(global, slot.gen);
            let roll = self.rng.below(1000);
            let private = work.passkeys > 0;
            match slot.state {
                // A new life (`started`) starts from zero.
                State::Absent => (slot.uploaded, slot.downloaded) = (0, 0),
                // Another announce of the same life moved some data (a
                // leecher both ways, including the one that completes).
                State::Leecher | State::Seeder if private => {
                    slot.uploaded += BYTES_PER_ANNOUNCE;
                    if slot.state == State::Leecher {
                        slot.downloaded += BYTES_PER_ANNOUNCE;
                    }
                }
                _ => {}
            }
            let (uploaded, downloaded) = (slot.uploaded, slot.downloaded);
            let (event, left) = match slot.state {
                State::Absent => {
                    slot.state = if id.seeder {
                        State::Seeder
                    } else {
                        State::Leecher
                    };
                    let left = if id.seeder { 0 } else { id.size };
                    (Event::Started, left)
                }
                State::Leecher if roll < COMPLETE_PER_MILLE => {
                    slot.state = State::Seeder;
                    (Event::Completed, 0)
                }
                state => {
                    let left = if state == State::Seeder {
                        0
                    } else {
                        id.size / 2
                    };
                    let roll = roll.saturating_sub(COMPLETE_PER_MILLE);
                    if roll < STOP_PER_MILLE {
                        slot.state = State::Absent;
                        slot.gen = slot.gen.wrapping_add(1);
                        (Event::Stopped, left)
                    } else if roll < STOP_PER_MILLE + VANISH_PER_MILLE {
                        slot.state = State::Absent;
                        slot.gen = slot.gen.wrapping_add(1);
                        continue;
                    } else {
                        (Event::None, left)
                    }
                }
            };
            return Some(Request::Announce {
                info_hash: work.hashes[id.torrent],
                peer_id: id.peer_id,
                port: id.port,
                left,
                event,
                numwant: work.numwant,
                key: id.key,
                uploaded,
                downloaded,
                passkey: private.then(|| passkey(global % work.passkeys)),
            });
        }
        None
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(torrents: u64, peers: u64) -> Arc<Workload> {
        Arc::new(Workload::new(torrents, peers, 1.0, 0.0, 4, 50, 7))
    }

    #[test]
    fn fill_announces_every_slot_once_with_started() {
        let w = work(100, 1000);
        let mut seen = std::collections::HashSet::new();
        for lane in 0..3 {
            let mut l = Lane::new(Arc::clone(&w), lane, 3, Shape::Fill);
            while let Some(r) = l.next() {
                match r {
                    Request::Announce { peer_id, event, .. } => {
                        assert_eq!(event, Event::Started);
                        assert!(seen.insert(peer_id));
                    }
                    Request::Scrape(_) => panic!("fill never scrapes"),
                }
            }
        }
        assert_eq!(seen.len(), 1000);
    }

    #[test]
    fn popularity_is_skewed() {
        let w = work(10_000, 0);
        let mut rng = Rng::new(1);
        let mut counts = vec![0u32; 10_000];
        // Two peers per torrent on average, as in the soak.
        for _ in 0..20_000 {
            counts[w.zipf(rng.unit())] += 1;
        }
        assert!(counts[0] > 1_000, "top torrent {}", counts[0]);
        let small = counts.iter().filter(|&&c| (1..=2).contains(&c)).count();
        let big = counts.iter().filter(|&&c| c > 2).count();
        assert!(small > big, "small {small} big {big}");
    }

    #[test]
    fn passkeys_are_user_plus_one_in_32_hex_digits() {
        for user in [0u64, 9, 99_999, u64::from(u32::MAX) - 1] {
            assert_eq!(passkey(user), format!("{:032x}", user + 1).as_bytes());
        }
    }

    /// (slot's user passkey, event, uploaded, downloaded, left).
    type Sent = (Option<[u8; 32]>, Event, u64, u64, u64);

    /// The next `n` announces of a one-lane run over `peers` slots.
    fn announces(passkeys: u64, peers: u64, n: usize) -> Vec<Sent> {
        let mut w = Workload::new(10, peers, 1.0, 0.0, 4, 50, 7);
        w.passkeys = passkeys;
        let mut l = Lane::new(Arc::new(w), 0, 1, Shape::Churn);
        let mut out = Vec::new();
        while out.len() < n {
            if let Some(Request::Announce {
                passkey,
                event,
                uploaded,
                downloaded,
                left,
                ..
            }) = l.next()
            {
                out.push((passkey, event, uploaded, downloaded, left));
            }
        }
        out
    }

    #[test]
    fn public_counters_stay_zero() {
        for (passkey, _, up, down, _) in announces(0, 5, 2_000) {
            assert!(passkey.is_none() && up == 0 && down == 0);
        }
    }

    #[test]
    fn private_counters_grow_per_announce_and_restart_with_a_life() {
        // One slot: every announce is the same peer slot, user 0.
        let mut last = (0, 0);
        let mut grew = 0;
        for (passkey, event, up, down, left) in announces(3, 1, 5_000) {
            assert_eq!(passkey, Some(*b"00000000000000000000000000000001"));
            if event == Event::Started {
                assert_eq!((up, down), (0, 0), "a new life starts from zero");
            } else {
                assert_eq!(up, last.0 + BYTES_PER_ANNOUNCE);
                // A seeder (left 0, not the announce that completes) uploads only.
                let leeching = left > 0 || event == Event::Completed;
                let step = if leeching { BYTES_PER_ANNOUNCE } else { 0 };
                assert_eq!(down, last.1 + step, "{event:?}");
                grew += 1;
            }
            last = (up, down);
        }
        assert!(grew > 4_000);
        // Slots map to users round-robin.
        let users: std::collections::HashSet<_> =
            announces(3, 7, 100).into_iter().map(|a| a.0).collect();
        assert_eq!(users.len(), 3);
    }

    #[test]
    fn churn_mixes_events_and_revisits_slots() {
        let w = work(100, 100);
        let mut l = Lane::new(w, 0, 1, Shape::Churn);
        let mut counts = [0u32; 4];
        for _ in 0..100_000 {
            if let Some(Request::Announce { event, .. }) = l.next() {
                counts[event.udp_code() as usize] += 1;
            }
        }
        let [none, completed, started, stopped] = counts;
        assert!(none > 80_000, "{counts:?}");
        assert!(
            completed > 500 && started > 500 && stopped > 500,
            "{counts:?}"
        );
    }
}
