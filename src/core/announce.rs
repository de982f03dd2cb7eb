//! The public tracker's rules (PROTOCOL.md "Counting rules"), shared by
//! HTTP and UDP: an announce updates the swarm and picks peers under one
//! stripe lock; a scrape reads counts; the reaper expires peers.

use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::local::{Locality, Scratch};
use super::store::Store;
use super::swarm::{split_want, Delta, PeerUpdate, Swarm};
use super::{Event, InfoHash};
use crate::clock::{secs, Clock};
use crate::config::Config;
use crate::rng::Rng;

/// Counts and timers of an announce reply, shared by HTTP and UDP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnnounceStats {
    /// Seeders in the swarm, the announcer included.
    pub complete: u32,
    /// Leechers in the swarm, the announcer included.
    pub incomplete: u32,
    /// Completed downloads of the torrent.
    pub downloaded: u32,
    /// `interval` in seconds (jittered).
    pub interval_secs: u32,
    /// `min interval` in seconds.
    pub min_interval_secs: u32,
}

/// One torrent's line in a scrape reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrapeCounts {
    /// Seeders.
    pub complete: u32,
    /// Leechers.
    pub incomplete: u32,
    /// Completed downloads.
    pub downloaded: u32,
}

/// An announce, decoded from any front end.
#[derive(Clone, Copy, Debug)]
pub struct Announce<'a> {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Where the announcer is reachable over IPv4, if at all.
    pub v4: Option<SocketAddrV4>,
    /// Where the announcer is reachable over IPv6, if at all.
    pub v6: Option<SocketAddrV6>,
    /// Bytes the announcer still needs (0 = seeder).
    pub left: u64,
    /// The announce event.
    pub event: Event,
    /// Peers wanted, already capped by the front end.
    pub numwant: usize,
    /// Hand out IPv4 peers (HTTP: yes; UDP: only over IPv4).
    pub want_v4: bool,
    /// Hand out IPv6 peers (HTTP: yes; UDP: only over IPv6).
    pub want_v6: bool,
    /// `local_networks` of the front end's current config. Borrowed from
    /// the worker's `Arc<Config>` (refreshed once per loop turn) rather
    /// than kept in the tracker: a reload swaps the `Arc` without any
    /// announce waiting on a lock, and one announce sees one list.
    pub local_networks: &'a [IpNet],
}

/// Where a torrent sits in the store: its keyed hash, worked out once per
/// request by `Tracker::locate` and used by the prefetches and the
/// announce alike.
#[derive(Clone, Copy, Debug)]
pub struct Place {
    info_hash: InfoHash,
    h: u64,
    /// The announcer, if the caller knows it before serving.
    who: Option<Announcer>,
    /// The torrent's swarm is big and the announcer's record is still
    /// misses away (`warm`, `aim`).
    deep: bool,
}

/// The announcer as its request names it, read before the request is
/// served: only a hint for the prefetches (a wrong one wastes a
/// prefetch, never changes a swarm), and the draw its peers' window
/// will start at.
#[derive(Clone, Copy, Debug)]
pub struct Announcer {
    /// Address and port.
    pub peer: SocketAddr,
    /// Has nothing left to download.
    pub seeder: bool,
    /// 64 random bits: where the selection window starts (`Swarm::select`'s
    /// `ahead`), drawn early so `reach` can prefetch it.
    pub draw: u64,
}

/// Reusable reply buffers for selected peers, in compact form.
#[derive(Debug, Default)]
pub struct PeerBuf {
    /// 6-byte IPv4 entries.
    pub v4: Vec<u8>,
    /// 18-byte IPv6 entries.
    pub v6: Vec<u8>,
    /// Selection's scratch space (local peers first).
    near: Scratch,
}

/// Totals over the whole store, refreshed by each reaper sweep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Torrents with at least one peer.
    pub torrents: u64,
    /// IPv4 seeders.
    pub seeders_v4: u64,
    /// IPv4 leechers.
    pub leechers_v4: u64,
    /// IPv6 seeders.
    pub seeders_v6: u64,
    /// IPv6 leechers.
    pub leechers_v6: u64,
    /// Longest time one stripe was held during the sweep.
    pub longest_hold: Duration,
}

/// Live counts kept by whoever changes the store: each worker and the
/// reaper own one and add signed changes (`Relaxed`, own cache line); the
/// sum over all of them is exact at any moment.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Torrents created minus torrents dropped.
    pub torrents: AtomicI64,
    /// Peers `[family][kind]` (family 0 IPv4, 1 IPv6; kind 0 leecher, 1 seeder).
    pub peers: [[AtomicI64; 2]; 2],
}

impl Gauges {
    fn apply(&self, delta: &Delta) {
        for (family, kinds) in delta.0.iter().enumerate() {
            for (kind, n) in kinds.iter().enumerate() {
                if *n != 0 {
                    self.peers[family][kind].fetch_add(*n, Relaxed);
                }
            }
        }
    }
}

/// The protocol-independent public tracker: the store and its rules.
pub struct Tracker {
    store: Store<Swarm>,
    clock: Clock,
    timers: Timers,
}

/// The timers and selection settings a reload may change, read with
/// `Relaxed` loads (a reply may mix old and new values for the instant of
/// the reload; harmless). `local_networks` is a list: it comes with each
/// `Announce` instead.
#[derive(Default)]
struct Timers {
    interval_secs: AtomicU32,
    min_interval_secs: AtomicU32,
    jitter_secs: AtomicU32,
    timeout_secs: AtomicU32,
    prefer_local: AtomicBool,
    local_prefix_v4: AtomicU32,
    local_prefix_v6: AtomicU32,
}

impl Tracker {
    /// A tracker with the store and timers of `config`.
    pub fn new(config: &Config, clock: Clock) -> Tracker {
        let tracker = Tracker {
            store: Store::new(config.stripes),
            clock,
            timers: Timers::default(),
        };
        tracker.apply(config);
        tracker
    }

    /// Takes the live-changeable settings of a (reloaded) config. `stripes`
    /// needs a restart.
    pub fn apply(&self, config: &Config) {
        let t = &self.timers;
        t.interval_secs
            .store(secs(config.announce_interval), Relaxed);
        t.min_interval_secs
            .store(secs(config.min_announce_interval), Relaxed);
        t.jitter_secs.store(secs(config.announce_jitter), Relaxed);
        t.timeout_secs
            .store(secs(config.peer_timeout).max(1), Relaxed);
        t.prefer_local.store(config.prefer_local_peers, Relaxed);
        t.local_prefix_v4
            .store(clamp_u32(config.local_prefix_v4), Relaxed);
        t.local_prefix_v6
            .store(clamp_u32(config.local_prefix_v6), Relaxed);
    }

    /// The tracker's clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Records an announce and writes the chosen peers into `out` (cleared
    /// first). `stopped` removes the peer and hands out nobody. Count
    /// changes go to the caller's `gauges`.
    pub fn announce(
        &self,
        a: &Announce,
        rng: &mut Rng,
        out: &mut PeerBuf,
        gauges: &Gauges,
    ) -> AnnounceStats {
        let place = Place {
            info_hash: a.info_hash,
            h: self.store.hash(&a.info_hash),
            who: None,
            deep: false,
        };
        self.announce_at(a, &place, rng, out, gauges)
    }

    /// Where `hash` sits in the store; starts loading, without any lock,
    /// its stripe (`Store::prefetch_stripe`). `who`: the announcer, if
    /// known, so a big swarm's record of it can be fetched too (`aim`).
    pub fn locate(&self, hash: &InfoHash, who: Option<Announcer>) -> Place {
        let h = self.store.hash(hash);
        self.store.prefetch_stripe(h);
        Place {
            info_hash: *hash,
            h,
            who,
            deep: false,
        }
    }

    /// Starts loading, without any lock, the torrent's table slot
    /// (`Store::prefetch_slot`): best once its stripe has arrived.
    pub fn fetch(&self, place: &Place) {
        self.store.prefetch_slot(place.h);
    }

    /// Starts loading the swarm's first records, or a big swarm's lists
    /// (`Swarm::prefetch`): one short lock that only looks the torrent
    /// up. Its slot should be in the cache already (`fetch`), so the lock
    /// is not held over a miss.
    pub fn warm(&self, place: &mut Place) {
        let big = self.peek(place, Swarm::prefetch);
        place.deep = big == Some(true) && place.who.is_some();
    }

    /// A big swarm (`warm` said so): starts loading the index slot of the
    /// announcer's record (`Swarm::aim`), under another short lock.
    pub fn aim(&self, place: &mut Place) {
        if let (true, Some(who)) = (place.deep, place.who) {
            place.deep = self.peek(place, |swarm| swarm.aim(who.peer)) == Some(true);
        }
    }

    /// After `aim`: starts loading the announcer's record itself and the
    /// start of its peers' window (`Swarm::reach`).
    pub fn reach(&self, place: &Place) {
        if let (true, Some(who)) = (place.deep, place.who) {
            self.peek(place, |swarm| swarm.reach(who.peer, who.seeder, who.draw));
        }
    }

    /// `f` on the located torrent's swarm, under its stripe's lock; `None`
    /// when the torrent has no swarm.
    fn peek<T>(&self, place: &Place, f: impl FnOnce(&Swarm) -> T) -> Option<T> {
        let stripe = self.store.stripe_hashed(place.h);
        stripe.get_hashed(place.h, &place.info_hash).map(f)
    }

    /// `announce` of a torrent already located (`locate`, `warm`): the
    /// UDP front locates a whole batch of datagrams before serving the
    /// first, so their cache misses overlap instead of coming one after
    /// another (each request's lock and unlock are full fences).
    pub fn announce_at(
        &self,
        a: &Announce,
        place: &Place,
        rng: &mut Rng,
        out: &mut PeerBuf,
        gauges: &Gauges,
    ) -> AnnounceStats {
        // A place for another torrent would corrupt the store: check.
        let h = if place.info_hash == a.info_hash {
            place.h
        } else {
            self.store.hash(&a.info_hash)
        };
        out.v4.clear();
        out.v6.clear();
        let seeder = a.left == 0;
        let mut stats = AnnounceStats {
            interval_secs: self.jittered_interval(rng),
            min_interval_secs: self.timers.min_interval_secs.load(Relaxed),
            ..AnnounceStats::default()
        };
        let mut delta = Delta::default();
        // Worked out before the lock: the network lookup is not swarm work.
        let near = self.locality(a);
        let mut stripe = self.store.stripe_hashed(h);
        if a.event == Event::Stopped {
            if let Some(swarm) = stripe.get_mut_hashed(h, &a.info_hash) {
                swarm.remove(a.v4, a.v6, &mut delta);
                fill_counts(&mut stats, swarm);
                if swarm.is_empty() {
                    stripe.remove_hashed(h, &a.info_hash);
                    gauges.torrents.fetch_sub(1, Relaxed);
                }
            }
            drop(stripe);
            gauges.apply(&delta);
            return stats;
        }
        let (swarm, inserted) = stripe.get_or_insert_hashed(h, &a.info_hash);
        if inserted {
            gauges.torrents.fetch_add(1, Relaxed);
        }
        let update = PeerUpdate {
            v4: a.v4,
            v6: a.v6,
            seeder,
            completed: a.event == Event::Completed && seeder,
        };
        let me = swarm.update(&update, self.clock.now(), &mut delta);
        let (avail4, avail6) = swarm.available(me, seeder);
        let avail4 = if a.want_v4 { avail4 } else { 0 };
        let avail6 = if a.want_v6 { avail6 } else { 0 };
        let (w4, w6) = split_want(a.numwant, avail4, avail6);
        swarm.select(
            me,
            seeder,
            w4,
            w6,
            &near,
            &mut out.near,
            place.who.map(|w| w.draw),
            rng,
            &mut out.v4,
            &mut out.v6,
        );
        fill_counts(&mut stats, swarm);
        drop(stripe);
        gauges.apply(&delta);
        stats
    }

    /// Counts of one torrent (zeros when unknown).
    pub fn scrape(&self, hash: &InfoHash) -> ScrapeCounts {
        self.store
            .stripe(hash)
            .get(hash)
            .map(counts_of)
            .unwrap_or_default()
    }

    /// Appends the counts of every torrent whose hash starts with `first`
    /// and that `permit` allows (one slice of a full scrape). Walks every
    /// stripe, holding one lock at a time while copying counts.
    pub fn scrape_slice(
        &self,
        first: u8,
        permit: &dyn Fn(&InfoHash) -> bool,
        out: &mut Vec<(InfoHash, ScrapeCounts)>,
    ) {
        for i in 0..self.store.stripe_count() {
            let stripe = self.store.lock(i);
            for (hash, swarm) in stripe.iter() {
                if hash[0] == first && permit(hash) {
                    out.push((*hash, counts_of(swarm)));
                }
            }
        }
    }

    /// Expires peers not seen for `peer_timeout`, drops empty swarms and
    /// swarms of torrents `permit` refuses (access lists), counts what is
    /// left; changes go to the reaper's `gauges`; one stripe locked at a
    /// time.
    pub fn reap(&self, gauges: &Gauges, permit: &dyn Fn(&InfoHash) -> bool) -> Totals {
        let cutoff = self
            .clock
            .now()
            .saturating_sub(self.timers.timeout_secs.load(Relaxed));
        let mut totals = Totals::default();
        for i in 0..self.store.stripe_count() {
            let started = Instant::now();
            let mut delta = Delta::default();
            let mut dropped = 0;
            let mut graveyard = Vec::new();
            let mut stripe = self.store.lock(i);
            stripe.retain(|hash, swarm| {
                if !permit(hash) {
                    // Denied since it was admitted: drop every peer.
                    swarm.expire(u32::MAX, &mut delta);
                }
                swarm.expire(cutoff, &mut delta);
                if swarm.is_empty() {
                    dropped += 1;
                    graveyard.push(std::mem::take(swarm));
                    return false;
                }
                let (c4, c6) = swarm.counts();
                totals.seeders_v4 += c4.seeders as u64;
                totals.leechers_v4 += c4.leechers as u64;
                totals.seeders_v6 += c6.seeders as u64;
                totals.leechers_v6 += c6.leechers as u64;
                true
            });
            totals.torrents += stripe.len() as u64;
            let mut old_table = None;
            if stripe.capacity() > 64 && stripe.capacity() > 4 * stripe.len() {
                if stripe.is_empty() {
                    old_table = Some(stripe.take());
                } else {
                    stripe.shrink_to_fit();
                }
            }
            drop(stripe);
            totals.longest_hold = totals.longest_hold.max(started.elapsed());
            // Freed here, not under the lock: glibc can take milliseconds
            // over a big free after many small ones (it consolidates its
            // fast bins). `cargo bench --bench memory`, every one of 1M
            // peers timing out: longest stripe hold 3.6-4.1 ms -> 0.13 ms.
            drop(graveyard);
            drop(old_table);
            gauges.apply(&delta);
            gauges.torrents.fetch_sub(dropped, Relaxed);
        }
        totals
    }

    /// Heap bytes held by swarms (benches), walking every stripe.
    pub fn swarm_heap_bytes(&self) -> usize {
        (0..self.store.stripe_count())
            .map(|i| {
                self.store
                    .lock(i)
                    .values()
                    .map(Swarm::heap_bytes)
                    .sum::<usize>()
            })
            .sum()
    }

    /// The announcer's nearness, or none (plain random selection) when
    /// `prefer_local_peers` is off or the announce stops.
    fn locality(&self, a: &Announce) -> Locality {
        let t = &self.timers;
        if a.event == Event::Stopped || !t.prefer_local.load(Relaxed) {
            return Locality::default();
        }
        Locality::of(
            a.v4,
            a.v6,
            t.local_prefix_v4.load(Relaxed) as usize,
            t.local_prefix_v6.load(Relaxed) as usize,
            a.local_networks,
        )
    }

    /// `min interval` for a reply, as of the latest `apply`.
    pub fn min_interval_secs(&self) -> u32 {
        self.timers.min_interval_secs.load(Relaxed)
    }

    /// `interval` for a reply: `announce_interval` ± up to `announce_jitter`,
    /// never below `min announce interval`.
    pub fn jittered_interval(&self, rng: &mut Rng) -> u32 {
        let t = &self.timers;
        let (interval, jitter) = (t.interval_secs.load(Relaxed), t.jitter_secs.load(Relaxed));
        if jitter == 0 {
            return interval;
        }
        let spread = rng.below(2 * jitter as usize + 1) as u32;
        interval
            .saturating_add(spread)
            .saturating_sub(jitter)
            .max(t.min_interval_secs.load(Relaxed))
    }
}

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn fill_counts(stats: &mut AnnounceStats, swarm: &Swarm) {
    let c = counts_of(swarm);
    stats.complete = c.complete;
    stats.incomplete = c.incomplete;
    stats.downloaded = c.downloaded;
}

fn counts_of(swarm: &Swarm) -> ScrapeCounts {
    let (c4, c6) = swarm.counts();
    ScrapeCounts {
        complete: u32::try_from(c4.seeders + c6.seeders).unwrap_or(u32::MAX),
        incomplete: u32::try_from(c4.leechers + c6.leechers).unwrap_or(u32::MAX),
        downloaded: swarm.downloaded(),
    }
}

/// Snapshot support (`src/snapshot/`): the store, to walk and fill one
/// stripe at a time under the store's own locking rules.
impl Tracker {
    /// The striped map of swarms.
    pub fn store(&self) -> &Store<Swarm> {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// Live gauges and the reaper's recount agree after a random mix of
    /// announces, stops, completions and expiry.
    #[test]
    fn live_gauges_match_recount() {
        let config = Config {
            stripes: 4,
            peer_timeout: Duration::from_secs(100),
            ..Config::default()
        };
        let tracker = Tracker::new(&config, Clock::new());
        let (workers, reaper) = ([Gauges::default(), Gauges::default()], Gauges::default());
        let mut rng = Rng::from_seed(9);
        let mut out = PeerBuf::default();
        for round in 0..4000u32 {
            let n = rng.below(1000) as u32;
            let addr = |n: u32| {
                SocketAddrV4::new(Ipv4Addr::from(0x0a00_0000 + n % 60), 1 + (n % 7) as u16)
            };
            let v6 = n
                .is_multiple_of(3)
                .then(|| SocketAddrV6::new(std::net::Ipv6Addr::from(u128::from(n % 40)), 9, 0, 0));
            let a = Announce {
                info_hash: [(n % 9) as u8; 20],
                v4: (!n.is_multiple_of(5)).then(|| addr(n)),
                v6,
                left: u64::from(n % 2),
                event: [
                    Event::None,
                    Event::Started,
                    Event::Completed,
                    Event::Stopped,
                ][rng.below(4)],
                numwant: 5,
                want_v4: true,
                want_v6: true,
                local_networks: &[],
            };
            tracker.announce(&a, &mut rng, &mut out, &workers[(round % 2) as usize]);
            if round % 1000 == 999 {
                tracker.clock().advance(Duration::from_secs(60));
            }
        }
        let totals = tracker.reap(&reaper, &|_| true);
        let sum = |f: &dyn Fn(&Gauges) -> i64| workers.iter().map(f).sum::<i64>() + f(&reaper);
        assert_eq!(sum(&|g| g.torrents.load(Relaxed)), totals.torrents as i64);
        assert_eq!(
            sum(&|g| g.peers[0][1].load(Relaxed)),
            totals.seeders_v4 as i64
        );
        assert_eq!(
            sum(&|g| g.peers[0][0].load(Relaxed)),
            totals.leechers_v4 as i64
        );
        assert_eq!(
            sum(&|g| g.peers[1][1].load(Relaxed)),
            totals.seeders_v6 as i64
        );
        assert_eq!(
            sum(&|g| g.peers[1][0].load(Relaxed)),
            totals.leechers_v6 as i64
        );
        assert!(totals.torrents > 0 && totals.seeders_v6 + totals.leechers_v6 > 0);
    }

    /// The UDP front's path (`locate`, `warm`, `announce_at`) lands the
    /// peer where a plain announce and a scrape look for it, and a place
    /// worked out for another torrent is not trusted.
    #[test]
    fn located_announces_land_where_lookups_look() {
        let tracker = Tracker::new(&Config::default(), Clock::new());
        let gauges = Gauges::default();
        let (mut rng, mut out) = (Rng::from_seed(3), PeerBuf::default());
        let announce = |hash: u8, port: u16| Announce {
            info_hash: [hash; 20],
            v4: Some(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), port)),
            v6: None,
            left: 1,
            event: Event::Started,
            numwant: 50,
            want_v4: true,
            want_v6: false,
            local_networks: &[],
        };
        for hash in 0..50u8 {
            let a = announce(hash, 1);
            let who = a.v4.map(|v4| Announcer {
                peer: SocketAddr::V4(v4),
                seeder: false,
                draw: rng.next_u64(),
            });
            let mut here = tracker.locate(&a.info_hash, who);
            tracker.fetch(&here);
            tracker.warm(&mut here);
            tracker.aim(&mut here);
            tracker.reach(&here);
            tracker.announce_at(&a, &here, &mut rng, &mut out, &gauges);
            // Another torrent's place: this announce must still count
            // under its own torrent.
            let mut elsewhere = tracker.locate(&[hash.wrapping_add(100); 20], None);
            tracker.warm(&mut elsewhere);
            let stats =
                tracker.announce_at(&announce(hash, 2), &elsewhere, &mut rng, &mut out, &gauges);
            assert_eq!(stats.incomplete, 2, "torrent {hash}");
            assert_eq!(out.v4.len(), 6, "torrent {hash}: the other peer");
            assert_eq!(tracker.scrape(&[hash; 20]).incomplete, 2, "torrent {hash}");
            assert_eq!(tracker.scrape(&[hash.wrapping_add(100); 20]).incomplete, 0);
            let stats = tracker.announce(&announce(hash, 3), &mut rng, &mut out, &gauges);
            assert_eq!(stats.incomplete, 3, "torrent {hash}");
        }
        assert_eq!(gauges.torrents.load(Relaxed), 50);
    }

    /// Big swarms take the two extra passes (`aim`, `reach`); a wrong
    /// hint about the announcer changes nothing, and the located draw is
    /// where the peers handed out come from.
    #[test]
    fn located_announces_in_big_swarms() {
        let tracker = Tracker::new(&Config::default(), Clock::new());
        let gauges = Gauges::default();
        let (mut rng, mut out) = (Rng::from_seed(5), PeerBuf::default());
        let hash = [7; 20];
        let announce = |port: u16, left: u64| Announce {
            info_hash: hash,
            v4: Some(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), port)),
            v6: None,
            left,
            event: Event::None,
            numwant: 20,
            want_v4: true,
            want_v6: false,
            local_networks: &[],
        };
        for port in 1..=300 {
            tracker.announce(
                &announce(port, u64::from(port % 2)),
                &mut rng,
                &mut out,
                &gauges,
            );
        }
        let mut served = |a: &Announce, who: Announcer, out: &mut PeerBuf| {
            let mut place = tracker.locate(&a.info_hash, Some(who));
            tracker.fetch(&place);
            tracker.warm(&mut place);
            assert!(place.deep, "a big swarm goes on to aim");
            tracker.aim(&mut place);
            tracker.reach(&place);
            let stats = tracker.announce_at(a, &place, &mut rng, out, &gauges);
            (stats.complete + stats.incomplete, out.v4.clone())
        };
        for port in (1..=300).step_by(7) {
            let a = announce(port, 1);
            let me = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), port);
            let right = Announcer {
                peer: SocketAddr::V4(me),
                seeder: false,
                draw: 99,
            };
            let wrong = Announcer {
                peer: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 9, 9, 9), port ^ 1)),
                seeder: true,
                draw: 99,
            };
            let (n, first) = served(&a, right, &mut out);
            assert_eq!(n, 300, "port {port}");
            assert_eq!(first.len(), 20 * 6);
            assert!(
                !first.chunks(6).any(|c| c[4..] == port.to_be_bytes()),
                "self handed out"
            );
            // Same state and the same draw: the same peers, whatever the
            // hint said about the announcer.
            let (n, again) = served(&a, wrong, &mut out);
            assert_eq!(n, 300);
            let sorted = |v: &[u8]| {
                let mut c: Vec<&[u8]> = v.chunks(6).collect();
                c.sort();
                c.concat()
            };
            assert_eq!(sorted(&again), sorted(&first), "port {port}");
            let (_, other) = served(
                &a,
                Announcer {
                    draw: 1 << 63,
                    ..right
                },
                &mut out,
            );
            assert_ne!(
                sorted(&other),
                sorted(&first),
                "port {port}: the draw picks the window"
            );
        }
        // 150 odd ports leech from the start; 21 of the 43 re-announcers
        // were seeding.
        assert_eq!(tracker.scrape(&hash).incomplete, 150 + 21);
    }
}
