//! The UDP side of a worker: its SO_REUSEPORT socket per `udp_listen`
//! address, and the handling of each datagram: decode, check the
//! connection ID, call the core, encode, send.
//!
//! Datagrams come in and replies go out `sys::mmsg::BATCH` (32) per system
//! call (`recvmmsg`/`sendmmsg`, `sys/mmsg.rs`). Measured with one worker on
//! one core under aquatic_udp_load_test on the other (100k torrents,
//! 200k peers, announce 100 : scrape 1; 15 s runs alternated, the 2-core
//! VM is noisy): a syscall per datagram 166–175k responses/s, batched
//! 180–194k (median +12%); aquatic_udp 0.9.0 159–181k on the same runs.
//!
//! Garbage is dropped without a reply and counted by cause. A reply that
//! would block is counted as dropped, never retried: the client retries.
//! One socket serves at most `DATAGRAMS_PER_TURN` datagrams per poll
//! wakeup so a flood on UDP cannot starve this worker's HTTP connections;
//! the worker keeps a pending list for sockets with more waiting.
//!
//! A socket whose turn runs out with datagrams still waiting leaves the
//! poll (epoll) until it is drained, as a network driver masks its
//! interrupt while it polls (NAPI): the worker serves it from the pending
//! list, and it goes back into the poll the first time `recvmmsg` finds
//! nothing. While a socket is in an epoll set, the kernel walks its wait
//! queue into epoll for every datagram it *sends* (`sock_wfree` →
//! write-space wakeup, on this worker's CPU) and every datagram that
//! arrives (on the sender's CPU); out of it, neither. Measured with both
//! builds on one core at once (each under its own aquatic_udp_load_test
//! on the other core, so machine drift hits both alike; two sets of 4–5
//! rounds of 10 s, both orders): CPU per request 3.2–3.9% lower.
//! It costs two `epoll_ctl` calls per busy spell of at least
//! `DATAGRAMS_PER_TURN` datagrams; `hayate_udp_busy_turns_total` counts
//! the turns that ran out.
//!
//! A received batch is served in passes (`locate`): every announce with
//! a valid connection ID has its stripe prefetched, then its table slot,
//! then (a short lock each) its swarm's records, and only then are the
//! datagrams served. Served one by one, each announce waited out its
//! cache misses alone, since every stripe lock and unlock is a full
//! fence. Same-core A/B as above against the build before (4 rounds of
//! 10 s in each order): CPU per request 5.6–7.3% lower; the stripe and
//! the slot in separate passes are part of that (2.4–3.1%).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

use super::codec::{self, AnnounceRequest, Request};
use super::connid::Refused;
use crate::access::AccessList;
use crate::config::Config;
use crate::core::announce::{Announce, Announcer, PeerBuf, Place};
use crate::core::{Event, Failure, InfoHash};
use crate::http::client_ip::canonical;
use crate::private::announce::Request as PrivRequest;
use crate::private::swarm::Picked;
use crate::private::{Private, Refusal};
use crate::rng::Rng;
use crate::server::{Env, Shared};
use crate::stats::{Family, WorkerStats, PROTO_UDP};
use crate::sys::mmsg::{RecvBatch, SendBatch, BATCH};

/// Socket `i` has token `UDP_BASE + i`.
pub const UDP_BASE: usize = 1 << 12;
/// Most peers in one reply over IPv4: 20 + 200 × 6 = 1,220 bytes.
pub const MAX_UDP_PEERS_V4: usize = 200;
/// Most peers in one reply over IPv6: 20 + 66 × 18 = 1,208 bytes.
pub const MAX_UDP_PEERS_V6: usize = 66;
/// Most hashes in one scrape: 8 + 74 × 12 = 896 bytes of reply, and the
/// request (16 + 74 × 20 = 1,496 bytes) still fits an Ethernet MTU.
pub const MAX_UDP_SCRAPE_HASHES: usize = 74;
/// Datagrams served per socket per wakeup (fairness with HTTP).
const DATAGRAMS_PER_TURN: usize = 256;
// Receive slots (`sys::mmsg::RECV_SLOT`, 2,048 bytes) are larger than any
// request we accept (98 bytes + BEP 41 options up to `MAX_URL_DATA`, or a
// scrape of `MAX_UDP_SCRAPE_HASHES`); anything longer is truncated by the
// kernel and then fails to decode.

/// One worker's UDP sockets and buffers.
pub struct UdpFront {
    id: usize,
    shared: Arc<Shared>,
    config: Arc<Config>,
    access: Arc<AccessList>,
    sockets: Vec<UdpSocket>,
    /// Per socket: out of the poll while busy (see the module notes).
    quiet: Vec<bool>,
    registry: Registry,
    rx: RecvBatch,
    /// Per received datagram: where its torrent is, for an announce.
    places: [Option<Place>; BATCH],
    tx: SendBatch,
    scratch: Scratch,
}

/// Reused per datagram: the reply, BEP 41 URL data, selected peers.
struct Scratch {
    send: Vec<u8>,
    url: Vec<u8>,
    peers: PeerBuf,
    rng: Rng,
    /// Private mode's reply peers.
    picked: Picked,
    /// The worker's id: its private ledger.
    slot: usize,
}

/// What handling a datagram produced.
enum Outcome {
    /// Send the reply in `send`.
    Reply,
    /// Drop silently.
    Drop,
}

impl UdpFront {
    /// Worker `id`'s UDP side over `sockets` (bound, non-blocking).
    pub fn new(
        id: usize,
        registry: &Registry,
        shared: Arc<Shared>,
        sockets: Vec<std::net::UdpSocket>,
    ) -> io::Result<UdpFront> {
        let registry = registry.try_clone()?;
        let mut mio_sockets = Vec::with_capacity(sockets.len());
        for (i, s) in sockets.into_iter().enumerate() {
            let mut s = UdpSocket::from_std(s);
            registry.register(&mut s, Token(UDP_BASE + i), Interest::READABLE)?;
            mio_sockets.push(s);
        }
        Ok(UdpFront {
            id,
            config: shared.config.load(),
            access: shared.access.load(),
            shared,
            quiet: vec![false; mio_sockets.len()],
            sockets: mio_sockets,
            registry,
            rx: RecvBatch::default(),
            places: [None; BATCH],
            tx: SendBatch::default(),
            scratch: Scratch {
                send: Vec::with_capacity(1500),
                url: Vec::with_capacity(codec::MAX_URL_DATA),
                peers: PeerBuf::default(),
                rng: Rng::from_entropy(),
                picked: Picked::default(),
                slot: id,
            },
        })
    }

    /// Takes a reloaded configuration.
    pub fn set_config(&mut self, config: Arc<Config>) {
        self.config = config;
    }

    /// Takes reloaded access lists.
    pub fn set_access(&mut self, access: Arc<AccessList>) {
        self.access = access;
    }

    /// Serves datagrams waiting on socket `i`, `BATCH` per system call
    /// each way. True when the socket must be called again without
    /// polling: its turn's budget ran out with more possibly waiting (it
    /// has left the poll), or it could not rejoin the poll.
    pub fn on_readable(&mut self, i: usize) -> bool {
        let Some(fd) = self.sockets.get(i).map(|s| s.as_raw_fd()) else {
            return false;
        };
        let stats = self.shared.stats.worker(self.id);
        let mut served = 0;
        while served < DATAGRAMS_PER_TURN {
            let n = match self.rx.recv(fd) {
                Ok(0) => return !self.set_quiet(i, false),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return !self.set_quiet(i, false)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP-reported errors for earlier sends and the like:
                    // they concern one peer, the socket is fine.
                    log::debug!("worker {}: udp recv: {e}", self.id);
                    served += 1;
                    continue;
                }
            };
            served += n;
            if self.shared.private.is_some() {
                // Private swarms live in their own store: nothing to locate.
                self.places = [None; BATCH];
            } else {
                locate(
                    &self.shared,
                    &self.rx,
                    &mut self.places,
                    n,
                    &mut self.scratch.rng,
                );
            }
            for k in 0..n {
                let Some((datagram, from)) = self.rx.get(k) else {
                    continue;
                };
                stats.udp_bytes_in.fetch_add(datagram.len() as u64, Relaxed);
                let env = Env {
                    shared: &self.shared,
                    config: &self.config,
                    access: &self.access,
                    stats,
                };
                let place = self.places.get(k).copied().flatten();
                if let Outcome::Reply = handle(&env, &mut self.scratch, datagram, from, place) {
                    if !self.tx.push(&self.scratch.send, from) {
                        WorkerStats::bump(&stats.udp_dropped_replies);
                    }
                }
            }
            let sent = self.tx.flush(fd);
            stats.udp_bytes_out.fetch_add(sent.bytes as u64, Relaxed);
            for _ in 0..sent.failed {
                WorkerStats::bump(&stats.udp_dropped_replies);
            }
            if let Some(e) = sent.error {
                log::debug!("worker {}: udp send: {e}", self.id);
            }
        }
        WorkerStats::bump(&stats.udp_busy_turns);
        self.set_quiet(i, true);
        true
    }

    /// Takes socket `i` out of the poll (`quiet`) or puts it back; true
    /// when it is where it was asked to be. A failure is logged and
    /// changes nothing: a socket that cannot rejoin the poll stays on the
    /// worker's pending list and is served from there.
    fn set_quiet(&mut self, i: usize, quiet: bool) -> bool {
        let (Some(s), Some(q)) = (self.sockets.get_mut(i), self.quiet.get_mut(i)) else {
            return false;
        };
        if *q == quiet {
            return true;
        }
        let done = if quiet {
            self.registry.deregister(s)
        } else {
            // Edge-triggered: datagrams that came while the socket was out
            // are reported at once, since the kernel polls it on insertion.
            self.registry
                .register(s, Token(UDP_BASE + i), Interest::READABLE)
        };
        match done {
            Ok(()) => {
                *q = quiet;
                true
            }
            Err(e) => {
                log::warn!("worker {}: udp socket {i}: epoll: {e}", self.id);
                false
            }
        }
    }
}

/// Locates the torrent of every announce among the first `n` datagrams
/// in `rx` (into `places`) before any is served. Cache misses overlap only
/// when their loads are issued together, and every stripe lock and
/// unlock is a full fence: so first each stripe's lines are asked for
/// (`Tracker::locate`, no lock), then each table slot's (`fetch`, no
/// lock: the stripe's layout has arrived by then), then each swarm's
/// records (`warm`, a short lock whose lines are there or arriving). A
/// big swarm's announcer is two more misses away, each under a short
/// lock: its index slot (`aim`), then its record and the start of the
/// window its peers will come from (`reach`). Only then does serving
/// begin. Only announces with a valid connection ID are located: a forged
/// datagram never touches the store.
///
/// Measured, `benches/same-core.sh udp` against the build without them,
/// 4 rounds each way: the stripe, slot and `warm` passes 5.6–7.3% less
/// CPU per request; `aim` and `reach` a further 2.0–4.3% for the record
/// alone, 2.3–5.8% with the window (under aquatic_udp_load_test two
/// thirds of announces go to swarms over 48 peers).
fn locate(shared: &Shared, rx: &RecvBatch, places: &mut [Option<Place>], n: usize, rng: &mut Rng) {
    let tracker = &shared.tracker;
    let now = tracker.clock().now();
    // Entries from `n` on are stale and never read (the serve loop stops
    // at `n` too).
    for (k, place) in places.iter_mut().enumerate().take(n) {
        *place = rx.get(k).and_then(|(d, from)| {
            let peek = codec::peek_announce(d)?;
            let ip = canonical(from.ip());
            shared.conn_ids.check(peek.connection_id, ip, now).ok()?;
            let who = Announcer {
                peer: SocketAddr::new(ip, peek.port),
                seeder: peek.seeder,
                draw: rng.next_u64(),
            };
            Some(tracker.locate(&peek.info_hash, Some(who)))
        });
    }
    for place in places.iter().take(n).flatten() {
        tracker.fetch(place);
    }
    for place in places.iter_mut().take(n).flatten() {
        tracker.warm(place);
    }
    for place in places.iter_mut().take(n).flatten() {
        tracker.aim(place);
    }
    for place in places.iter().take(n).flatten() {
        tracker.reach(place);
    }
}

/// Decodes and answers one datagram; the reply is left in `scratch.send`.
/// `place`: where its torrent is, for an announce whose connection ID
/// `locate` found valid.
fn handle(
    env: &Env,
    scratch: &mut Scratch,
    datagram: &[u8],
    from: SocketAddr,
    place: Option<Place>,
) -> Outcome {
    let Env {
        shared,
        config,
        access,
        stats,
    } = *env;
    if log::log_enabled!(log::Level::Debug) {
        log::debug!("udp {from}: {}", Hex(datagram));
    }
    let ip = canonical(from.ip());
    let family = Family::of(ip) as usize;
    let request = match codec::parse(datagram, &mut scratch.url) {
        Ok(r) => r,
        Err(why) => {
            WorkerStats::bump(&stats.udp_invalid[why as usize]);
            return Outcome::Drop;
        }
    };
    let now = shared.tracker.clock().now();
    match request {
        Request::Connect { transaction_id } => {
            WorkerStats::bump(&stats.udp_requests[0][family]);
            let id = shared.conn_ids.issue(ip, now);
            codec::connect_reply(&mut scratch.send, transaction_id, id);
        }
        Request::Announce(a) => {
            WorkerStats::bump(&stats.udp_requests[1][family]);
            // A located announce had its ID checked by `locate`.
            if place.is_none() {
                if let Err(why) = shared.conn_ids.check(a.connection_id, ip, now) {
                    return refuse(&mut scratch.send, stats, a.transaction_id, why);
                }
            }
            if let Some(private) = &shared.private {
                match private_announce(env, private, scratch, &a, ip) {
                    Ok(()) => WorkerStats::bump(&stats.announces[PROTO_UDP][family]),
                    Err(refusal) => {
                        if let Refusal::Query(f) = refusal {
                            WorkerStats::bump(&stats.failures[f as usize]);
                        }
                        WorkerStats::bump(&stats.private_refusals[refusal.index()]);
                        codec::error_reply(&mut scratch.send, a.transaction_id, &refusal.reason());
                    }
                }
            } else if let Err(f) = announce(env, scratch, &a, ip, place) {
                fail(&mut scratch.send, stats, a.transaction_id, f);
            } else {
                WorkerStats::bump(&stats.announces[PROTO_UDP][family]);
            }
        }
        Request::Scrape {
            connection_id,
            transaction_id,
            hashes,
        } => {
            WorkerStats::bump(&stats.udp_requests[2][family]);
            if let Err(why) = shared.conn_ids.check(connection_id, ip, now) {
                return refuse(&mut scratch.send, stats, transaction_id, why);
            }
            let limit = MAX_UDP_SCRAPE_HASHES.min(config.max_scrape_hashes);
            if shared.private.is_some() {
                // A UDP scrape carries no passkey (BEP 41 options are for
                // announces), and a private tracker tells nothing to
                // someone it does not know: as HTTP's `/scrape`.
                let refusal = Refusal::PasskeyNotFound;
                WorkerStats::bump(&stats.private_refusals[refusal.index()]);
                codec::error_reply(&mut scratch.send, transaction_id, &refusal.reason());
            } else if hashes.len() / 20 > limit {
                fail(
                    &mut scratch.send,
                    stats,
                    transaction_id,
                    Failure::TooManyInfoHashes,
                );
            } else {
                codec::scrape_reply(&mut scratch.send, transaction_id);
                for chunk in hashes.chunks_exact(20) {
                    let hash: InfoHash = chunk.try_into().unwrap_or([0; 20]);
                    let c = if access.permits(&hash) {
                        shared.tracker.scrape(&hash)
                    } else {
                        Default::default()
                    };
                    codec::scrape_entry(&mut scratch.send, c.complete, c.downloaded, c.incomplete);
                }
                WorkerStats::bump(&stats.scrapes[PROTO_UDP][family]);
            }
        }
    }
    Outcome::Reply
}

/// A verified announce: update the swarm, write the reply.
fn announce(
    env: &Env,
    scratch: &mut Scratch,
    a: &AnnounceRequest,
    ip: IpAddr,
    place: Option<Place>,
) -> Result<(), Failure> {
    let Env {
        shared,
        config,
        access,
        stats,
    } = *env;
    let event = a.event.ok_or(Failure::InvalidEvent)?;
    access.check(&a.info_hash)?;
    if a.port == 0 {
        return Err(Failure::InvalidPort);
    }
    // The request's IP field: honoured only when spoofing is allowed,
    // and only as an IPv4 address for an IPv4 sender.
    let ip = match ip {
        IpAddr::V4(_) if config.allow_ip_spoofing && a.ip != 0 => IpAddr::V4(Ipv4Addr::from(a.ip)),
        other => other,
    };
    let (v4, v6, cap) = match ip {
        IpAddr::V4(v4) => (Some(SocketAddrV4::new(v4, a.port)), None, MAX_UDP_PEERS_V4),
        IpAddr::V6(v6) => (
            None,
            Some(SocketAddrV6::new(v6, a.port, 0, 0)),
            MAX_UDP_PEERS_V6,
        ),
    };
    // Private mode reads its passkey from BEP 41 URL data (`scratch.url`);
    // the public tracker accepts any.
    let wanted = usize::try_from(a.num_want).unwrap_or(config.numwant_default);
    let request = Announce {
        info_hash: a.info_hash,
        v4,
        v6,
        left: a.left,
        event,
        numwant: wanted.min(config.numwant_max).min(cap),
        want_v4: v4.is_some(),
        want_v6: v6.is_some(),
        local_networks: &config.local_networks,
    };
    let (rng, peers, gauges) = (&mut scratch.rng, &mut scratch.peers, &stats.gauges);
    let counts = match place {
        Some(p) => shared.tracker.announce_at(&request, &p, rng, peers, gauges),
        None => shared.tracker.announce(&request, rng, peers, gauges),
    };
    codec::announce_reply(
        &mut scratch.send,
        a.transaction_id,
        counts.interval_secs,
        counts.incomplete,
        counts.complete,
    );
    let peers = if v4.is_some() {
        &scratch.peers.v4
    } else {
        &scratch.peers.v6
    };
    if event != Event::Stopped {
        scratch.send.extend_from_slice(peers);
    }
    Ok(())
}

/// A private announce: the passkey comes from the BEP 41 URL data
/// (`udp://host:port/<passkey>/announce`), then the same rules as HTTP.
fn private_announce(
    env: &Env,
    private: &Private,
    scratch: &mut Scratch,
    a: &AnnounceRequest,
    ip: IpAddr,
) -> Result<(), Refusal> {
    let Env { shared, config, .. } = *env;
    let passkey = url_passkey(&scratch.url).ok_or(Refusal::PasskeyNotFound)?;
    let user = private.user(passkey)?;
    private.check_registered(&a.info_hash)?;
    let event = a.event.ok_or(Refusal::Query(Failure::InvalidEvent))?;
    private.check_client(&a.peer_id)?;
    if a.port == 0 {
        return Err(Refusal::Query(Failure::InvalidPort));
    }
    let (v4, cap) = match ip {
        IpAddr::V4(_) => (true, MAX_UDP_PEERS_V4),
        IpAddr::V6(_) => (false, MAX_UDP_PEERS_V6),
    };
    let wanted = usize::try_from(a.num_want).unwrap_or(config.numwant_default);
    let r = PrivRequest {
        info_hash: a.info_hash,
        peer_id: a.peer_id,
        ip,
        port: a.port,
        uploaded: a.uploaded,
        downloaded: a.downloaded,
        corrupt: 0,
        left: a.left,
        event,
        numwant: wanted.min(config.numwant_max).min(cap),
        want_v4: v4,
        want_v6: !v4,
        user_agent: b"",
    };
    let now = shared.tracker.clock().now();
    let draw = scratch.rng.next_u64();
    let counts = private.announce(user, &r, now, draw, scratch.slot, &mut scratch.picked)?;
    let interval = shared.tracker.jittered_interval(&mut scratch.rng);
    codec::announce_reply(
        &mut scratch.send,
        a.transaction_id,
        interval,
        counts.incomplete,
        counts.complete,
    );
    if event != Event::Stopped {
        let peers = if v4 {
            &scratch.picked.v4
        } else {
            &scratch.picked.v6
        };
        scratch.send.extend_from_slice(peers);
    }
    Ok(())
}

/// The passkey of BEP 41 URL data `/<passkey>/announce[?...]`.
fn url_passkey(url: &[u8]) -> Option<&[u8]> {
    let path = url.split(|&b| b == b'?').next()?;
    let rest = path.strip_prefix(b"/")?;
    let (key, action) = rest.split_at(rest.iter().position(|&b| b == b'/')?);
    (key.len() == crate::config::PASSWORD_LEN && action == b"/announce").then_some(key)
}

/// An error reply for a refused connection ID (short: no amplification).
fn refuse(send: &mut Vec<u8>, stats: &WorkerStats, transaction_id: i32, why: Refused) -> Outcome {
    WorkerStats::bump(&stats.udp_connid_refused[why as usize]);
    // Short on purpose: this goes to an address that has not proven it
    // receives, so it must not outweigh the smallest request (see connid.rs).
    codec::error_reply(send, transaction_id, "invalid connection ID");
    Outcome::Reply
}

fn fail(send: &mut Vec<u8>, stats: &WorkerStats, transaction_id: i32, f: Failure) {
    WorkerStats::bump(&stats.failures[f as usize]);
    codec::error_reply(send, transaction_id, f.reason());
}

/// A datagram as lowercase hex, for the per-request debug line.
struct Hex<'a>(&'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}
