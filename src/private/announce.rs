//! A private announce, after the front has found the user and checked the
//! client (GAZELLE.md "Announce rules"): credit, snatch, peers, and the
//! deltas for the flusher; plus private scrape and the reaper's sweep.
//!
//! Credit per peer (user + peer_id on one torrent): first sight or
//! `started` remembers the reported counters and credits nothing; counters
//! lower than remembered re-baseline; otherwise the difference is credited
//! (free: no download; neutral: nothing; a token works as free for its
//! user and its real download is recorded against the token) and the
//! torrent's balance moves by upload − download − corrupt, raw.
//!
//! Everything that decides credit happens under the torrent's stripe lock
//! with one sequence number, so the row the flusher keeps for a peer is
//! always the one its credited totals were computed up to.

use std::net::IpAddr;

use super::ledger::unix_now;
use super::swarm::{
    Leech, Peer, Picked, Torrent, FLAG_HIDDEN, FLAG_NO_ADDR, FLAG_RESTORED, FLAG_SNATCHED, NO_IP,
};
use super::{Private, Refusal, User};
use crate::core::announce::{AnnounceStats, ScrapeCounts};
use crate::core::{Event, InfoHash, PeerId};
use crate::db::{LivePeer, PeerRow, Snatch, Token, UserAgent};

/// A private announce, decoded by a front.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The client's peer id.
    pub peer_id: PeerId,
    /// Where the peer is reachable.
    pub ip: IpAddr,
    /// Its port.
    pub port: u16,
    /// Reported upload counter.
    pub uploaded: u64,
    /// Reported download counter.
    pub downloaded: u64,
    /// Reported corrupt counter (0 when absent).
    pub corrupt: u64,
    /// Bytes left.
    pub left: u64,
    /// Event.
    pub event: Event,
    /// Peers wanted (already capped).
    pub numwant: usize,
    /// Hand out IPv4 peers.
    pub want_v4: bool,
    /// Hand out IPv6 peers.
    pub want_v6: bool,
    /// The `User-Agent` header (HTTP) or empty.
    pub user_agent: &'a [u8],
}

/// What an announce decided, for the ledger (built after the lock).
struct Outcome {
    seq: u64,
    torrent: u32,
    counts: (u32, u32),
    snatched: u32,
    balance: i64,
    credit: (u64, u64),
    token: Option<(Token, u64)>,
    expire_token: bool,
    row: Option<PeerRowParts>,
}

struct PeerRowParts {
    active: bool,
    speeds: (u32, u32),
    timespent: u32,
}

impl Private {
    /// Serves `r` for `user` (already found by passkey, client checked),
    /// recording into ledger `slot`. `now`: clock seconds. `draw`: a
    /// random number for where the peer list is read from.
    pub fn announce(
        &self,
        user: User,
        r: &Request,
        now: u32,
        draw: u64,
        slot: usize,
        out: &mut Picked,
    ) -> Result<AnnounceStats, Refusal> {
        out.reset(r.want_v4, r.want_v6);
        let key = self.peer_key(&r.peer_id);
        let forbidden = !user.can_leech && r.left > 0;
        let seeder = r.left == 0;
        let mut stats = AnnounceStats::default();
        let outcome = {
            let mut stripe = self.torrents.stripe(&r.info_hash);
            let h = stripe.hash(&r.info_hash);
            let Some(t) = stripe.get_mut_hashed(h, &r.info_hash) else {
                drop(stripe);
                return Err(self.unregistered(&r.info_hash));
            };
            let o = self.update(t, user, key, r, now, forbidden);
            if r.event != Event::Stopped && !forbidden {
                t.select(user.id, seeder, r.numwant, draw, out);
            }
            let (s, l) = t.counts();
            stats.complete = s;
            stats.incomplete = l;
            stats.downloaded = t.snatched;
            // Recorded before the stripe is let go: the next announce of
            // this peer, on any worker, records after this one, which is
            // what lets the flusher commit per-peer prefixes (`collect`).
            self.record(user, r, &o, slot);
            o
        };
        if outcome.expire_token {
            if let Some((tok, _)) = outcome.token {
                self.set_token(tok.user, &r.info_hash, false);
                self.queue_expiry(tok);
            }
        }
        if forbidden {
            return Err(Refusal::LeechingForbidden);
        }
        Ok(stats)
    }

    /// Updates the torrent under its stripe lock.
    fn update(
        &self,
        t: &mut Torrent,
        user: User,
        key: u32,
        r: &Request,
        now: u32,
        forbidden: bool,
    ) -> Outcome {
        let seeder = r.left == 0;
        let mut flags = if forbidden { FLAG_HIDDEN } else { 0 };
        let mut credit_up = 0u64;
        let mut credit_down = 0u64;
        let mut corrupt_d = 0u64;
        let mut elapsed = 0u32;
        let mut snatch = false;
        let found = t.find(user.id, key);
        let had = found.and_then(|i| Some((i, *t.peers().get(i)?)));
        if let Some((_, old)) = had {
            flags |= old.flags & FLAG_SNATCHED;
            elapsed = now.saturating_sub(old.last);
            let lower = r.uploaded < old.uploaded || r.downloaded < old.downloaded;
            // `started` re-baselines, except on a peer restored from the
            // database whose counters went on from the committed ones: its
            // `stopped` was lost with the crash, and what it reports now
            // beyond the baseline was never credited.
            let restored = old.flags & FLAG_RESTORED != 0;
            let rebase = lower || (r.event == Event::Started && !restored);
            if !rebase {
                credit_up = r.uploaded - old.uploaded;
                credit_down = r.downloaded - old.downloaded;
                corrupt_d = r.corrupt.saturating_sub(t.corrupt(user.id, key));
            }
        }
        if r.event == Event::Completed && seeder && flags & FLAG_SNATCHED == 0 {
            snatch = true;
            flags |= FLAG_SNATCHED;
            t.snatched = t.snatched.saturating_add(1);
        }
        let balance = i64::try_from(credit_up)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(credit_down).unwrap_or(i64::MAX))
            .saturating_sub(i64::try_from(corrupt_d).unwrap_or(i64::MAX));
        // Leech type and tokens: what the user is credited.
        let mut token = None;
        let mut expire_token = false;
        let real_down = credit_down;
        match t.leech {
            Leech::Neutral => {
                credit_up = 0;
                credit_down = 0;
            }
            leech => {
                // Only a download to credit or a snatch to expire it needs the
                // token set (a read lock): most announces skip it.
                let tokened = (real_down > 0 || snatch) && self.has_token(user.id, t.id);
                if tokened {
                    let tok = Token {
                        user: user.id,
                        torrent: t.id,
                    };
                    token = Some((tok, real_down));
                    expire_token = snatch;
                }
                if leech == Leech::Free || tokened {
                    credit_down = 0;
                }
            }
        }
        let peer = Peer {
            uploaded: r.uploaded,
            downloaded: r.downloaded,
            key,
            ip: NO_IP,
            user: user.id,
            last: now,
            port: r.port,
            flags,
        };
        let mut peer = peer;
        peer.set_ip(r.ip);
        let active = r.event != Event::Stopped;
        match (had, active) {
            (Some((i, _)), true) => {
                let was = t.is_seeder(i);
                let at = t.set_seeder(i, seeder);
                if let Some(p) = t.get_mut(at) {
                    *p = peer;
                }
                t.set_corrupt(user.id, key, r.corrupt);
                if was != seeder {
                    self.gauge(was, -1);
                    self.gauge(seeder, 1);
                }
            }
            (Some((i, _)), false) => {
                let was = t.is_seeder(i);
                t.remove(i);
                self.gauge(was, -1);
            }
            (None, true) => {
                t.insert(peer, seeder);
                t.set_corrupt(user.id, key, r.corrupt);
                self.gauge(seeder, 1);
            }
            (None, false) => {}
        }
        let per_sec = |bytes: u64| -> u32 {
            let secs = u64::from(elapsed.max(1));
            u32::try_from(bytes / secs).unwrap_or(u32::MAX)
        };
        let row = (had.is_some() || active).then(|| PeerRowParts {
            active,
            speeds: (
                per_sec(r.uploaded.saturating_sub(had.map_or(0, |h| h.1.uploaded))),
                per_sec(
                    r.downloaded
                        .saturating_sub(had.map_or(0, |h| h.1.downloaded)),
                ),
            ),
            timespent: elapsed,
        });
        Outcome {
            seq: self.next_seq(),
            torrent: t.id,
            counts: t.counts(),
            snatched: u32::from(snatch),
            balance,
            credit: (credit_up, credit_down),
            token,
            expire_token,
            row,
        }
    }

    /// Writes an announce's outcome into ledger `slot`, under the
    /// torrent's stripe lock.
    fn record(&self, user: User, r: &Request, o: &Outcome, slot: usize) {
        let unix = unix_now();
        let ip = (!user.protected).then_some(r.ip);
        let Some(mut ledger) = self.ledger(slot) else {
            return;
        };
        ledger.credit(user.id, o.credit.0, o.credit.1);
        ledger.torrent(o.seq, o.torrent, o.counts, o.balance, o.snatched);
        if let Some((tok, down)) = o.token {
            ledger.token(tok, down);
        }
        if o.snatched > 0 {
            ledger.snatch(Snatch {
                user: user.id,
                torrent: o.torrent,
                time: unix,
                ip,
            });
        }
        if let Some(parts) = &o.row {
            ledger.peer(
                o.seq,
                PeerRow {
                    user: user.id,
                    torrent: o.torrent,
                    peer_id: r.peer_id,
                    active: parts.active,
                    uploaded: r.uploaded,
                    downloaded: r.downloaded,
                    corrupt: r.corrupt,
                    left: r.left,
                    upspeed: parts.speeds.0,
                    downspeed: parts.speeds.1,
                    timespent: parts.timespent,
                    announced: 1,
                    ip,
                    port: r.port,
                    useragent: UserAgent::new(r.user_agent),
                    mtime: unix,
                },
            );
        }
    }

    /// A registered torrent's counts; `None` for an unknown one.
    pub fn scrape(&self, hash: &InfoHash) -> Option<ScrapeCounts> {
        let stripe = self.torrents.stripe(hash);
        let t = stripe.get(hash)?;
        let (s, l) = t.counts();
        Some(ScrapeCounts {
            complete: s,
            incomplete: l,
            downloaded: t.snatched,
        })
    }

    /// Drops peers last seen before `cutoff` (clock seconds); torrents
    /// whose counts changed are recorded for the flusher. Recounts the
    /// live gauges. Returns (torrents, seeders, leechers).
    pub fn reap(&self, cutoff: u32) -> (u64, u64, u64) {
        let (mut torrents, mut seeders, mut leechers) = (0u64, 0u64, 0u64);
        let slot = self.reaper_slot();
        for i in 0..self.torrents.stripe_count() {
            let mut stripe = self.torrents.lock(i);
            // Counts are recorded under the stripe lock, as announces do.
            let Some(mut ledger) = self.ledger(slot) else {
                break;
            };
            stripe.retain(|_, t| {
                if t.expire(cutoff, |_| {}) > 0 {
                    ledger.torrent(self.next_seq(), t.id, t.counts(), 0, 0);
                }
                let (s, l) = t.counts();
                torrents += 1;
                seeders += u64::from(s);
                leechers += u64::from(l);
                true
            });
        }
        self.hand_over(slot, true);
        let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.seeders
            .store(to_i64(seeders), std::sync::atomic::Ordering::Relaxed);
        self.leechers
            .store(to_i64(leechers), std::sync::atomic::Ordering::Relaxed);
        (torrents, seeders, leechers)
    }

    /// Restores committed live peers (start-up): each comes back with its
    /// committed baselines, last seen at clock second `now` minus its age.
    /// Rows of unknown torrents or users are skipped; a leecher whose user
    /// may not leech comes back hidden. Returns how many came back.
    pub fn restore(
        &self,
        rows: &[LivePeer],
        ids: &std::collections::HashMap<u32, InfoHash>,
        now: u32,
        unix_now: i64,
    ) -> usize {
        let mut n = 0;
        let users = self.users();
        for row in rows {
            let Some(hash) = ids.get(&row.torrent) else {
                continue;
            };
            let Some(user) = users.by_id(row.user) else {
                continue;
            };
            let age = u32::try_from(unix_now.saturating_sub(row.mtime).max(0)).unwrap_or(u32::MAX);
            let mut peer = Peer {
                uploaded: row.uploaded,
                downloaded: row.downloaded,
                key: self.peer_key(&row.peer_id),
                ip: NO_IP,
                user: row.user,
                last: now.saturating_sub(age),
                port: row.port,
                flags: FLAG_RESTORED,
            };
            match row.ip {
                Some(ip) if row.port != 0 => peer.set_ip(ip),
                _ => peer.flags |= FLAG_NO_ADDR,
            }
            let seeder = row.left == 0;
            if !seeder && !user.can_leech {
                peer.flags |= FLAG_HIDDEN;
            }
            if seeder {
                // A seeder has had its snatch (or never needed one): a
                // `completed` it repeats after the restart is not another.
                peer.flags |= FLAG_SNATCHED;
            }
            let mut stripe = self.torrents.stripe(hash);
            let h = stripe.hash(hash);
            let Some(t) = stripe.get_mut_hashed(h, hash) else {
                continue;
            };
            if t.find(peer.user, peer.key).is_some() {
                continue;
            }
            t.insert(peer, seeder);
            t.set_corrupt(peer.user, peer.key, row.corrupt);
            self.gauge(seeder, 1);
            n += 1;
        }
        n
    }

    /// Records every torrent's counts for the flusher (start-up: the
    /// database's swarm counts become what was restored).
    pub fn record_all_counts(&self) {
        let slot = self.reaper_slot();
        for i in 0..self.torrents.stripe_count() {
            let stripe = self.torrents.lock(i);
            let Some(mut ledger) = self.ledger(slot) else {
                break;
            };
            for t in stripe.values() {
                ledger.torrent(self.next_seq(), t.id, t.counts(), 0, 0);
            }
        }
        self.hand_over(slot, true);
    }

    /// Torrents `user` is leeching and seeding on (the report API).
    pub fn user_counts(&self, user: u32) -> (u64, u64) {
        let (mut leeching, mut seeding) = (0, 0);
        for i in 0..self.torrents.stripe_count() {
            let stripe = self.torrents.lock(i);
            for t in stripe.values() {
                for (j, p) in t.peers().iter().enumerate() {
                    if p.user == user {
                        if t.is_seeder(j) {
                            seeding += 1;
                        } else {
                            leeching += 1;
                        }
                    }
                }
            }
        }
        (leeching, seeding)
    }
}
