//! The flusher thread: the only writer of the database. It receives the
//! workers' ledgers over the bounded channel, merges them into one pending
//! ledger, and every `flush_interval` commits it, with the control API's
//! changes, in ONE transaction: credited totals and the per-peer
//! baselines they were computed up to land together or not at all.
//!
//! During an outage (database locked, disk full, file read-only) the
//! pending ledger stays in memory, bounded by the active peers (it is
//! keyed by peer, user and torrent), and the commit is retried with
//! back-off (1 s doubling to 30 s); one log line when the outage starts,
//! one with its length when it ends. Reloads (SIGUSR1) also run here, so
//! a worker never waits on the database. At shutdown the flusher takes
//! what the stopped workers left and commits it last.

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver};

use super::ledger::{unix_now, Ledger};
use super::site::{self, SiteUrl};
use super::Private;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::{Batch, Database, DbError, Mirror, Token};

/// First retry after a failed commit.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// Longest wait between retries during an outage.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long the last commit at shutdown keeps retrying before giving up
/// (what it could not write is credited from the committed baselines at
/// the peers' next announces after the restart).
const SHUTDOWN_RETRY: Duration = Duration::from_secs(3);

/// The flusher's work on its own data (merging the ledgers it received,
/// building a batch, the database commit) runs in the idle scheduling
/// class: it steps aside for announces (a worker woken by a packet
/// preempts the flusher at once, so a big commit on a shared core costs
/// announces CPU share, not latency). Only its own data: what it shares
/// with the workers (the ledger channel, whose operations spin while the
/// other side is midway; the spares, ledger and mirror locks) it touches
/// at normal priority, or a worker could spin on an operation that a
/// preempted idle flusher had begun (55 ms seen). When the oldest
/// pending delta is this many flush intervals old, a saturated core has
/// starved the flusher, and its commits run at normal priority until it
/// has caught up.
const STARVED_INTERVALS: u32 = 3;

/// What the supervisor asks of the flusher besides committing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Commit, then re-read users, torrents, tokens and whitelist.
    Reload,
    /// Commit everything and end.
    Stop,
}

/// The flusher's state.
pub struct Flusher<'a> {
    private: &'a Private,
    db: Box<dyn Database>,
    pending: Ledger,
    /// The batch being committed; its vectors are reused commit after
    /// commit.
    batch: Batch,
    outage: Option<(Instant, String)>,
    backoff: Duration,
    /// The current `flush_interval`.
    interval: Duration,
    /// Shutting down: the last commits run at normal priority.
    stopping: bool,
    /// No site callback before this (back-off after a failed one).
    site_retry: Option<(Instant, Duration)>,
}

impl<'a> Flusher<'a> {
    /// A flusher writing `private`'s deltas to `db`.
    pub fn new(private: &'a Private, db: Box<dyn Database>) -> Flusher<'a> {
        Flusher {
            private,
            db,
            pending: Ledger::default(),
            batch: Batch::default(),
            outage: None,
            backoff: BACKOFF_FIRST,
            interval: Duration::from_secs(3),
            stopping: false,
            site_retry: None,
        }
    }

    /// Enters the idle scheduling class for work on the flusher's own
    /// data, unless it is behind (see `STARVED_INTERVALS`) or stopping;
    /// true when it did (pass it to `leave_idle`).
    fn enter_idle(&self) -> bool {
        let starved = self
            .pending
            .since()
            .is_some_and(|t| t.elapsed() > self.interval * STARVED_INTERVALS);
        !self.stopping && !starved && crate::sys::sched::idle().is_ok()
    }

    /// Back to normal priority after `enter_idle`.
    fn leave_idle(entered: bool) {
        if entered {
            if let Err(e) = crate::sys::sched::normal() {
                log::warn!("flusher: cannot leave the idle scheduling class: {e}");
            }
        }
    }

    /// Serves until `Order::Stop`; `config` gives the current
    /// configuration (`flush_interval` and `site_url` follow reloads).
    pub fn run(mut self, orders: &Receiver<Order>, config: impl Fn() -> std::sync::Arc<Config>) {
        let interval = || config().flush_interval;
        let rx = self.private.receiver().clone();
        let nudges = self.private.nudges().clone();
        let mut next = Instant::now() + interval();
        let mut reload_due = false;
        loop {
            self.interval = interval();
            let wait = next.saturating_duration_since(Instant::now());
            select! {
                recv(rx) -> ledger => {
                    if let Ok(l) = ledger {
                        self.take(l);
                    }
                }
                recv(nudges) -> _ => {
                    // A control call waits for its change to be durable:
                    // commit now, unless an outage's back-off is running.
                    if self.outage.is_none() {
                        next = Instant::now();
                    }
                }
                recv(orders) -> order => match order {
                    Ok(Order::Reload) => {
                        // A reload read over control API changes not yet
                        // written would undo them: only after a commit.
                        if self.commit() {
                            self.reload();
                        } else {
                            log::warn!("reload postponed: the database is failing; it runs after the next commit");
                            reload_due = true;
                        }
                    }
                    Ok(Order::Stop) | Err(_) => break,
                },
                default(wait) => {}
            }
            self.publish_age();
            if Instant::now() >= next {
                let ok = self.commit();
                if ok && reload_due {
                    reload_due = false;
                    self.reload();
                }
                if ok {
                    self.tell_site(&config());
                }
                next = Instant::now() + if ok { interval() } else { self.backoff };
            }
        }
        let config = config();
        self.finish(&config);
    }

    /// Sends the spent tokens to the site (`site_url`) once their snatches
    /// are committed; a failure keeps them for a later try, with back-off.
    fn tell_site(&mut self, config: &Config) {
        if self.site_retry.is_some_and(|(at, _)| Instant::now() < at) {
            if self.stopping {
                // A failing site must not hold up the shutdown.
                let n = self.private.take_expiries().len();
                log::warn!("shutdown: {n} token expiries not sent to the failing site");
            }
            return;
        }
        let tokens = self.private.take_expiries();
        if tokens.is_empty() {
            return;
        }
        if config.site_url.is_empty() || config.readonly {
            // Off: the site learns of spent tokens some other way (a
            // readonly hayate runs beside the tracker that tells it).
            return;
        }
        let sent = SiteUrl::parse(&config.site_url)
            .map_err(std::io::Error::other)
            .and_then(|url| site::expire_tokens(&url, &config.site_password, &tokens));
        let f = &self.private.flush;
        match sent {
            Ok(()) => {
                f.site_calls.fetch_add(1, Relaxed);
                if self.site_retry.take().is_some() {
                    log::warn!("site_url: the site takes token expiries again");
                }
            }
            Err(e) => {
                f.site_errors.fetch_add(1, Relaxed);
                let wait = self
                    .site_retry
                    .map_or(BACKOFF_FIRST, |(_, w)| (w * 2).min(BACKOFF_MAX));
                if self.site_retry.is_none() {
                    log::error!(
                        "site_url: telling the site of {} spent tokens failed: {e}; retrying",
                        tokens.len()
                    );
                }
                self.site_retry = Some((Instant::now() + wait, wait));
                self.private.requeue_expiries(tokens);
            }
        }
    }

    fn take(&mut self, mut l: Ledger) {
        let f = &self.private.flush;
        f.handed_over.fetch_add(1, Relaxed);
        f.deltas.fetch_add(l.deltas(), Relaxed);
        let idle = self.enter_idle();
        self.pending.merge(&mut l);
        Self::leave_idle(idle);
        self.private.recycle(l);
    }

    fn publish_age(&self) {
        let age = self.pending.since().map_or(0, |t| {
            u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
        });
        self.private.flush.oldest_pending_millis.store(age, Relaxed);
        let outage = self.outage.as_ref().map_or(0, |(since, _)| {
            u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
        });
        self.private.flush.outage_millis.store(outage, Relaxed);
    }

    /// Commits everything recorded so far and the control API's changes;
    /// true when it landed (or there was nothing to write).
    pub fn commit(&mut self) -> bool {
        for l in self.private.collect() {
            self.take(l);
        }
        let (mirror, marks) = self.private.take_mirror();
        if self.pending.is_empty() && mirror.is_empty() {
            // Marks that came to nothing (a token of a torrent deleted
            // since) are as durable as they will get.
            self.private.confirm(&marks);
            return true;
        }
        let idle = self.enter_idle();
        self.pending.fill(&mut self.batch, mirror);
        let started = Instant::now();
        let result = self.db.commit(&self.batch);
        let took = started.elapsed();
        Self::leave_idle(idle);
        let batch = &self.batch;
        let f = &self.private.flush;
        match result {
            Ok(()) => {
                self.private.confirm(&marks);
                let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
                f.batches.fetch_add(1, Relaxed);
                f.peer_rows.fetch_add(batch.peers.len() as u64, Relaxed);
                f.last_commit_micros.store(micros, Relaxed);
                f.commit_micros.fetch_add(micros, Relaxed);
                log::debug!(
                    "flush: {} users, {} torrents, {} peer rows, {} snatches in {took:?}",
                    batch.users.len(),
                    batch.torrents.len(),
                    batch.peers.len(),
                    batch.snatches.len()
                );
                let rows = batch.peers.len();
                self.pending.clear_after(rows);
                self.batch.mirror = Mirror::default();
                let keep = rows.saturating_mul(2).max(1 << 12);
                if self.batch.peers.capacity() > keep.saturating_mul(2) {
                    self.batch.peers.shrink_to(keep);
                }
                self.publish_age();
                if let Some((since, _)) = self.outage.take() {
                    log::warn!(
                        "database back after {:.1}s: committed {rows} peer rows kept in memory",
                        since.elapsed().as_secs_f64(),
                    );
                }
                self.backoff = BACKOFF_FIRST;
                true
            }
            Err(DbError(e)) => {
                self.private.restore_mirror(marks);
                f.errors.fetch_add(1, Relaxed);
                match &self.outage {
                    None => {
                        log::error!(
                            "database commit failed: {e}; keeping {} peer rows in memory, retrying",
                            self.pending.peer_rows()
                        );
                        self.outage = Some((Instant::now(), e));
                    }
                    Some(_) => {
                        log::debug!("database commit failed again: {e}");
                        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                    }
                }
                false
            }
        }
    }

    /// Re-reads users, torrents, tokens and whitelist, as a diff.
    pub fn reload(&mut self) {
        match load_into(self.private, self.db.as_mut()) {
            Ok(summary) => {
                self.private.flush.reloads.fetch_add(1, Relaxed);
                log::info!("reload from database: {summary}");
            }
            Err(e) => log::error!("reload from database failed, state kept: {e}"),
        }
    }

    fn finish(mut self, config: &Config) {
        self.stopping = true;
        let deadline = Instant::now() + SHUTDOWN_RETRY;
        while !self.commit() {
            if Instant::now() >= deadline {
                log::error!(
                    "shutdown: database still failing, {} peer rows not committed \
                     (their bytes are credited from the committed baselines after the restart)",
                    self.pending.peer_rows()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.tell_site(config);
    }
}

/// Loads users, torrents, tokens and whitelist from `db` into `private`
/// as a diff; returns a line for the log.
pub fn load_into(private: &Private, db: &mut dyn Database) -> Result<String, DbError> {
    let loaded = db.load()?;
    let (users_changed, users_removed) = private.replace_users(&loaded.users);
    let (torrents_changed, torrents_removed) = private.replace_torrents(&loaded.torrents);
    let ids = private.torrent_ids();
    let tokens: HashSet<Token> = loaded
        .tokens
        .iter()
        .copied()
        .filter(|t| ids.contains_key(&t.torrent))
        .collect();
    let token_count = tokens.len();
    private.replace_tokens(tokens);
    let whitelist = loaded.whitelist.len();
    private.replace_whitelist(loaded.whitelist);
    Ok(format!(
        "{} users ({users_changed} added or changed, {users_removed} removed), \
         {} torrents ({torrents_changed} added or changed, {torrents_removed} removed), \
         {token_count} tokens, {whitelist} whitelisted clients",
        loaded.users.len(),
        loaded.torrents.len()
    ))
}

/// Start-up: loads the site's state, then brings back the live peers
/// committed within `peer_timeout` with their baselines, and records every
/// torrent's counts so the database's swarm counts match what came back.
pub fn start(
    private: &Private,
    db: &mut dyn Database,
    clock: &Clock,
    peer_timeout: Duration,
) -> Result<(), DbError> {
    let summary = load_into(private, db)?;
    log::info!("loaded from database: {summary}");
    let unix = unix_now();
    let timeout = i64::try_from(peer_timeout.as_secs()).unwrap_or(i64::MAX);
    let rows = db.live_peers(unix.saturating_sub(timeout))?;
    let ids = private.torrent_ids();
    let back = private.restore(&rows, &ids, clock.now(), unix);
    log::info!(
        "restored {back} live peers of {} committed rows",
        rows.len()
    );
    private.record_all_counts();
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::db::{Batch, LivePeer, Loaded};

    /// The real SQLite driver, noting the scheduling class each commit
    /// ran in.
    struct Watched {
        db: Box<dyn Database>,
        idle: Arc<Mutex<Vec<bool>>>,
    }

    impl Database for Watched {
        fn load(&mut self) -> Result<Loaded, DbError> {
            self.db.load()
        }
        fn live_peers(&mut self, since: i64) -> Result<Vec<LivePeer>, DbError> {
            self.db.live_peers(since)
        }
        fn commit(&mut self, batch: &Batch) -> Result<(), DbError> {
            self.idle.lock().unwrap().push(crate::sys::sched::is_idle());
            self.db.commit(batch)
        }
        fn owns_site_tables(&self) -> bool {
            self.db.owns_site_tables()
        }
    }

    #[test]
    fn commits_run_idle_and_the_rest_at_normal_priority() {
        let path = std::env::temp_dir().join(format!(
            "hayate-flusher-sched-{}-{:?}.db",
            std::process::id(),
            std::thread::current().id()
        ));
        let url = format!("sqlite:{}", path.display());
        let idle = Arc::new(Mutex::new(Vec::new()));
        let private = Private::new(4, 1, true);
        let db = Watched {
            db: crate::db::open(
                &url,
                crate::db::Options {
                    schema: crate::db::GazelleSchema::Classic,
                    readonly: false,
                },
            )
            .unwrap(),
            idle: Arc::clone(&idle),
        };
        // Its own thread: the test harness's must not change class.
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut f = Flusher::new(&private, Box::new(db));
                let passkey = "a".repeat(32);
                let add = format!("action=add_user&id=1&passkey={passkey}");
                crate::private::control::update(&private, add.as_bytes()).unwrap();
                assert!(f.commit());
                assert!(!crate::sys::sched::is_idle(), "left in the idle class");
                // At shutdown the last commits run at normal priority.
                f.stopping = true;
                let remove = format!("action=remove_user&passkey={passkey}");
                crate::private::control::update(&private, remove.as_bytes()).unwrap();
                assert!(f.commit());
            });
        });
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        assert_eq!(*idle.lock().unwrap(), vec![true, false]);
    }
}
