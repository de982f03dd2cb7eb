//! Private mode (Gazelle/Ocelot contract, ../shared/GAZELLE.md): users by
//! passkey, registered torrents, freeleech tokens, the client whitelist,
//! deletion reasons, and the deltas on their way to the database.
//!
//! Locking: users, tokens and the whitelist are each behind a `RwLock`
//! that an announce only reads; torrents and their peers live in their own
//! striped store (`Store<Torrent>`), one stripe lock per announce, as in
//! public mode. A worker records deltas into its own ledger (a mutex only
//! it and the flusher's `collect` take) and hands it to the flusher over
//! a bounded channel without ever blocking (`hand_over`), taking an
//! emptied one from the spares in its place. Lock order: stripe, then
//! ledger, then spares; users/tokens/whitelist are read and released
//! before the stripe is taken. Control API changes for the database:
//! `mirror`.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::core::store::Store;
use crate::core::{Failure, InfoHash, PeerId};
use crate::db::{Token, TorrentRow, UserRow};

pub mod announce;
pub mod control;
pub mod flusher;
pub mod ledger;
pub mod mirror;
pub mod report;
pub mod site;
pub mod swarm;

use ledger::Ledger;
use mirror::Dirty;
use swarm::{Leech, Torrent};

/// Ledgers waiting in the channel to the flusher. A worker that finds it
/// full keeps aggregating in its own ledger (bounded by its peers).
const CHANNEL_LEDGERS: usize = 64;
/// A worker hands its ledger over once it is this old (or at its next
/// turn after that): the flusher's view lags the announces by at most this.
pub const HAND_OVER_EVERY: Duration = Duration::from_millis(100);

/// A user as announces need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct User {
    /// `users_main.ID`.
    pub id: u32,
    /// May download (`can_leech`).
    pub can_leech: bool,
    /// Its IP is never stored (`Visible = '0'`).
    pub protected: bool,
}

/// Users by passkey, and each user's passkey by id.
#[derive(Debug, Default)]
pub struct Users {
    by_key: HashMap<[u8; 32], User>,
    by_id: HashMap<u32, [u8; 32]>,
}

impl Users {
    /// The user with `passkey`.
    pub fn get(&self, passkey: &[u8]) -> Option<User> {
        let key: &[u8; 32] = passkey.try_into().ok()?;
        self.by_key.get(key).copied()
    }

    /// The passkey of user `id`.
    pub fn passkey_of(&self, id: u32) -> Option<[u8; 32]> {
        self.by_id.get(&id).copied()
    }

    /// User `id`.
    pub fn by_id(&self, id: u32) -> Option<User> {
        self.by_key.get(self.by_id.get(&id)?).copied()
    }

    /// Adds or updates a user; a user whose id had another passkey loses
    /// that one, and a passkey that named another user now names this one.
    pub fn upsert(&mut self, passkey: [u8; 32], user: User) {
        if let Some(old) = self.by_id.insert(user.id, passkey) {
            if old != passkey {
                self.by_key.remove(&old);
            }
        }
        if let Some(other) = self.by_key.insert(passkey, user) {
            if other.id != user.id {
                self.by_id.remove(&other.id);
            }
        }
    }

    /// Removes the user with `passkey`.
    pub fn remove(&mut self, passkey: &[u8; 32]) -> Option<User> {
        let user = self.by_key.remove(passkey)?;
        self.by_id.remove(&user.id);
        Some(user)
    }

    /// Users.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// No users.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Every (passkey, user).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8; 32], &User)> {
        self.by_key.iter()
    }
}

/// Why a private request was refused. The texts are Ocelot's: sites'
/// help pages quote them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No user has this passkey.
    PasskeyNotFound,
    /// The torrent is not registered; the deletion reason code while kept.
    Unregistered(Option<u8>),
    /// The query could not be read (Ocelot's texts for a peer_id problem).
    Query(Failure),
    /// The peer_id matches no whitelisted prefix.
    NotWhitelisted,
    /// `can_leech = 0` and `left > 0`.
    LeechingForbidden,
    /// Wrong site or report password.
    AuthenticationFailure,
}

impl Refusal {
    /// Labels of the private refusals on the stats page, by `index`.
    pub const LABELS: [&'static str; 6] = [
        "passkey_not_found",
        "unregistered_torrent",
        "invalid_request",
        "client_not_whitelisted",
        "leeching_forbidden",
        "authentication_failure",
    ];

    /// Position in `LABELS`.
    pub fn index(self) -> usize {
        match self {
            Refusal::PasskeyNotFound => 0,
            Refusal::Unregistered(_) => 1,
            Refusal::Query(_) => 2,
            Refusal::NotWhitelisted => 3,
            Refusal::LeechingForbidden => 4,
            Refusal::AuthenticationFailure => 5,
        }
    }

    /// The `failure reason` text.
    pub fn reason(self) -> Cow<'static, str> {
        match self {
            Refusal::PasskeyNotFound => "Passkey not found".into(),
            Refusal::Unregistered(code) => match code.and_then(deletion_reason) {
                Some(why) => format!("Unregistered torrent: {why}").into(),
                None => "Unregistered torrent".into(),
            },
            Refusal::Query(Failure::MissingPeerId) => "No peer ID".into(),
            Refusal::Query(Failure::InvalidPeerId) => "Invalid peer ID".into(),
            Refusal::Query(f) => f.reason().into(),
            Refusal::NotWhitelisted => "Your client is not on the whitelist".into(),
            Refusal::LeechingForbidden => "Access denied, leeching forbidden".into(),
            Refusal::AuthenticationFailure => "Authentication failure".into(),
        }
    }
}

/// Gazelle's deletion reason texts by code (GAZELLE.md).
const DELETION_REASONS: [&str; 23] = [
    "Dupe",
    "Trump",
    "Bad File Names",
    "Bad Folder Names",
    "Bad Tags",
    "Disallowed Format",
    "Discs Missing",
    "Discography",
    "Edited Log",
    "Inaccurate Bitrate",
    "Low Bitrate",
    "Mutt Rip",
    "Disallowed Source",
    "Encode Errors",
    "Specifically Banned",
    "Tracks Missing",
    "Transcode",
    "Unapproved Cassette",
    "Unsplit Album",
    "User Compilation",
    "Wrong Format",
    "Wrong Media",
    "Audience Recording",
];

/// The text of deletion reason `code`; other codes have none.
pub fn deletion_reason(code: u8) -> Option<&'static str> {
    DELETION_REASONS.get(usize::from(code)).copied()
}

/// Flusher figures for the stats page.
#[derive(Debug, Default)]
pub struct FlushStats {
    /// Ledgers received from workers and the reaper.
    pub handed_over: AtomicU64,
    /// Deltas (announces, count changes) received.
    pub deltas: AtomicU64,
    /// Batches committed.
    pub batches: AtomicU64,
    /// Rows of `xbt_files_users` committed.
    pub peer_rows: AtomicU64,
    /// Microseconds the last commit took.
    pub last_commit_micros: AtomicU64,
    /// Microseconds of every commit.
    pub commit_micros: AtomicU64,
    /// Commits that failed.
    pub errors: AtomicU64,
    /// Milliseconds since the oldest delta not yet committed was recorded
    /// (0 = nothing pending), as of the flusher's last turn.
    pub oldest_pending_millis: AtomicU64,
    /// Reloads from the database (SIGUSR1).
    pub reloads: AtomicU64,
    /// Token-expiry calls the site answered (`site_url`).
    pub site_calls: AtomicU64,
    /// Token-expiry calls that failed (retried).
    pub site_errors: AtomicU64,
    /// Milliseconds the current database outage has lasted (0: none).
    pub outage_millis: AtomicU64,
}

/// The private tracker's shared state.
pub struct Private {
    users: RwLock<Users>,
    /// Registered torrents and their peers.
    pub torrents: Store<Torrent>,
    tokens: RwLock<HashSet<Token>>,
    whitelist: RwLock<Vec<Vec<u8>>>,
    deleted: Mutex<HashMap<InfoHash, (Option<u8>, Instant)>>,
    /// Keys peer_ids (see `swarm`).
    peer_keys: RandomState,
    seq: AtomicU64,
    /// One per worker, then the reaper's.
    ledgers: Box<[Mutex<Ledger>]>,
    tx: Sender<Ledger>,
    rx: Receiver<Ledger>,
    /// Emptied ledgers on their way back from the flusher, allocations
    /// kept: a worker that hands one over takes one of these instead of
    /// growing a new one from nothing (rehashing, page faults) every
    /// `HAND_OVER_EVERY`. A mutex, not a channel: a channel's operations
    /// spin while the other side is midway, and on a shared core a worker
    /// would spin out its time slice on a flusher preempted mid-send; a
    /// contended mutex sleeps.
    spares: Mutex<Vec<Ledger>>,
    /// At most this many spares are kept (one per ledger).
    spare_max: usize,
    dirty: Mutex<Dirty>,
    /// Control API changes are written to the database (embedded mode).
    mirror: bool,
    /// Tickets of control API changes: the last one issued (under the
    /// `dirty` lock) and the last one committed. A control call is
    /// answered once its ticket is durable (`http::conn`).
    issued: AtomicU64,
    durable: AtomicU64,
    /// Asks the flusher to commit now (a control call is waiting).
    nudge_tx: Sender<()>,
    nudge_rx: Receiver<()>,
    /// Live seeders, all torrents.
    pub seeders: AtomicI64,
    /// Live leechers, all torrents.
    pub leechers: AtomicI64,
    /// Flusher figures.
    pub flush: FlushStats,
    /// Spent tokens for the site's callback (`site`).
    expiries: Mutex<VecDeque<Token>>,
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}
fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Private {
    /// Empty state for `workers` workers; `mirror`: write control API
    /// changes through to the database.
    pub fn new(stripes: usize, workers: usize, mirror: bool) -> Private {
        let (tx, rx) = crossbeam_channel::bounded(CHANNEL_LEDGERS);
        let (nudge_tx, nudge_rx) = crossbeam_channel::bounded(1);
        Private {
            spares: Mutex::new(Vec::new()),
            spare_max: workers + 1,
            issued: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            nudge_tx,
            nudge_rx,
            users: RwLock::default(),
            torrents: Store::new(stripes),
            tokens: RwLock::default(),
            whitelist: RwLock::default(),
            deleted: Mutex::default(),
            peer_keys: RandomState::new(),
            seq: AtomicU64::new(1),
            ledgers: (0..=workers).map(|_| Mutex::default()).collect(),
            tx,
            rx,
            dirty: Mutex::default(),
            mirror,
            seeders: AtomicI64::new(0),
            leechers: AtomicI64::new(0),
            flush: FlushStats::default(),
            expiries: Mutex::default(),
        }
    }

    /// The users.
    pub fn users(&self) -> RwLockReadGuard<'_, Users> {
        read(&self.users)
    }

    /// The user with `passkey`.
    pub fn user(&self, passkey: &[u8]) -> Result<User, Refusal> {
        self.users().get(passkey).ok_or(Refusal::PasskeyNotFound)
    }

    /// The keyed hash a peer's record is found by.
    pub fn peer_key(&self, peer_id: &PeerId) -> u32 {
        // The low half of a keyed 64-bit hash (see `swarm` on collisions).
        self.peer_keys.hash_one(peer_id) as u32
    }

    /// The next announce sequence number (taken under the stripe lock).
    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Relaxed)
    }

    /// Whether `peer_id` starts with a whitelisted prefix (or the list is empty).
    pub fn check_client(&self, peer_id: &PeerId) -> Result<(), Refusal> {
        let list = read(&self.whitelist);
        if list.is_empty() || list.iter().any(|p| peer_id.starts_with(p)) {
            Ok(())
        } else {
            Err(Refusal::NotWhitelisted)
        }
    }

    /// Whether a torrent is registered; the refusal carries the deletion
    /// reason while it is kept.
    pub fn check_registered(&self, hash: &InfoHash) -> Result<(), Refusal> {
        if self.torrents.stripe(hash).get(hash).is_some() {
            Ok(())
        } else {
            Err(self.unregistered(hash))
        }
    }

    fn unregistered(&self, hash: &InfoHash) -> Refusal {
        Refusal::Unregistered(lock(&self.deleted).get(hash).and_then(|d| d.0))
    }

    /// Users with a token on torrent id `torrent`: whether `user` has one.
    pub fn has_token(&self, user: u32, torrent: u32) -> bool {
        read(&self.tokens).contains(&Token { user, torrent })
    }

    /// Tokens held.
    pub fn token_count(&self) -> usize {
        read(&self.tokens).len()
    }

    /// Records into ledger `slot` (a worker's id, or the reaper's).
    fn ledger(&self, slot: usize) -> Option<MutexGuard<'_, Ledger>> {
        self.ledgers.get(slot).map(lock)
    }

    /// The reaper's ledger slot.
    pub fn reaper_slot(&self) -> usize {
        self.ledgers.len() - 1
    }

    /// Hands ledger `slot` to the flusher when it is due (older than
    /// `HAND_OVER_EVERY`) or `now_anyway`; never blocks: a full channel
    /// leaves the ledger where it is, to be handed over later.
    pub fn hand_over(&self, slot: usize, now_anyway: bool) {
        let Some(mut ledger) = self.ledger(slot) else {
            return;
        };
        let due = ledger
            .since()
            .is_some_and(|t| now_anyway || t.elapsed() >= HAND_OVER_EVERY);
        if !due {
            return;
        }
        let fresh = self.spare();
        match self.tx.try_send(std::mem::replace(&mut *ledger, fresh)) {
            Ok(()) => {}
            Err(TrySendError::Full(back) | TrySendError::Disconnected(back)) => {
                let fresh = std::mem::replace(&mut *ledger, back);
                self.recycle(fresh);
            }
        }
    }

    /// Gives an emptied ledger back for a worker to fill (dropped when
    /// every worker has one waiting).
    pub fn recycle(&self, mut ledger: Ledger) {
        ledger.clear();
        let mut spares = lock(&self.spares);
        if spares.len() < self.spare_max {
            spares.push(ledger);
        }
    }

    /// An empty ledger: a recycled one when there is one.
    fn spare(&self) -> Ledger {
        lock(&self.spares).pop().unwrap_or_default()
    }

    /// The flusher's end of the channel.
    pub fn receiver(&self) -> &Receiver<Ledger> {
        &self.rx
    }

    /// Every delta recorded so far, for a commit: the ledgers waiting in
    /// the channel and what each worker (and the reaper) still holds,
    /// taken while every ledger is locked at once.
    ///
    /// Why at once: announces record under their torrent's stripe lock, so
    /// a peer's later delta is recorded after its earlier one, possibly by
    /// another worker. Taken one by one, the flusher could get worker B's
    /// later delta and miss worker A's earlier one, commit the later
    /// baseline, then the earlier one over it. With every ledger locked,
    /// what is taken is exactly everything recorded before that moment:
    /// each peer's deltas are committed in order, a prefix at a time. A
    /// worker waits for its own ledger's lock only for these swaps.
    pub fn collect(&self) -> Vec<Ledger> {
        let mut held: Vec<MutexGuard<'_, Ledger>> = self.ledgers.iter().map(lock).collect();
        // Nothing can be sent while the ledgers are locked (`hand_over`
        // sends under its ledger's lock): the channel holds all there is.
        let mut out: Vec<Ledger> = self.rx.try_iter().collect();
        for l in held.iter_mut().filter(|l| !l.is_empty()) {
            let fresh = self.spare();
            out.push(std::mem::replace(&mut **l, fresh));
        }
        drop(held);
        out
    }

    /// Removes deletion reasons older than `lifetime`.
    pub fn prune_deleted(&self, lifetime: Duration) {
        lock(&self.deleted).retain(|_, (_, at)| at.elapsed() < lifetime);
    }

    /// Adjusts the live gauges by a peer leaving or arriving.
    fn gauge(&self, seeder: bool, by: i64) {
        let g = if seeder {
            &self.seeders
        } else {
            &self.leechers
        };
        g.fetch_add(by, Relaxed);
    }
}

impl Private {
    /// Registers (or updates) torrent `hash`; its peers stay.
    pub fn add_torrent(&self, hash: InfoHash, id: u32, leech: Leech) {
        {
            let mut stripe = self.torrents.stripe(&hash);
            let h = stripe.hash(&hash);
            let (t, fresh) = stripe.get_or_insert_hashed(h, &hash);
            if fresh {
                *t = Torrent::new(id, leech, 0);
            } else {
                t.id = id;
                t.leech = leech;
            }
        }
        lock(&self.deleted).remove(&hash);
        self.mark(|d| {
            d.torrents.insert(hash);
        });
    }

    /// Sets the snatch count a loaded torrent starts from.
    pub fn set_snatched(&self, hash: &InfoHash, snatched: u32) {
        let mut stripe = self.torrents.stripe(hash);
        let h = stripe.hash(hash);
        if let Some(t) = stripe.get_mut_hashed(h, hash) {
            t.snatched = snatched;
        }
    }

    /// Changes a registered torrent's leech type; false if unknown.
    pub fn set_leech(&self, hash: &InfoHash, leech: Leech) -> bool {
        let found = {
            let mut stripe = self.torrents.stripe(hash);
            let h = stripe.hash(hash);
            match stripe.get_mut_hashed(h, hash) {
                Some(t) => {
                    t.leech = leech;
                    true
                }
                None => false,
            }
        };
        if found {
            self.mark(|d| {
                d.torrents.insert(*hash);
            });
        }
        found
    }

    /// Unregisters a torrent; its peers go. `reason`: the deletion reason
    /// code its announces are refused with (`None` when the call is a
    /// reload noticing the torrent is gone: no reason is kept).
    pub fn delete_torrent(&self, hash: &InfoHash, reason: Option<Option<u8>>) -> Option<u32> {
        let gone = {
            let mut stripe = self.torrents.stripe(hash);
            let h = stripe.hash(hash);
            stripe.remove_hashed(h, hash)
        };
        if let Some(reason) = reason {
            lock(&self.deleted).insert(*hash, (reason, Instant::now()));
        }
        let t = gone?;
        for i in 0..t.peers().len() {
            self.gauge(t.is_seeder(i), -1);
        }
        let id = t.id;
        write(&self.tokens).retain(|tok| tok.torrent != id);
        self.mark(|d| {
            d.deleted_torrents.insert(id);
            d.torrents.remove(hash);
        });
        Some(id)
    }

    /// Adds or updates a user.
    pub fn add_user(&self, passkey: [u8; 32], user: User) {
        write(&self.users).upsert(passkey, user);
        self.mark(|d| {
            d.users.insert(user.id);
        });
    }

    /// Removes a user and drops its peers (their pending credit stays).
    pub fn remove_user(&self, passkey: &[u8; 32]) -> Option<User> {
        let user = write(&self.users).remove(passkey)?;
        self.drop_peers_of(user.id);
        self.mark(|d| {
            d.users.insert(user.id);
            let row = UserRow {
                id: user.id,
                passkey: *passkey,
                can_leech: user.can_leech,
                protected: user.protected,
            };
            d.removed_users.insert(user.id, row);
        });
        Some(user)
    }

    /// Gives user `id` the passkey `new` (its peers stay).
    pub fn change_passkey(&self, old: &[u8; 32], new: [u8; 32]) -> bool {
        let mut users = write(&self.users);
        let Some(user) = users.remove(old) else {
            return false;
        };
        users.upsert(new, user);
        drop(users);
        self.mark(|d| {
            d.users.insert(user.id);
        });
        true
    }

    fn drop_peers_of(&self, user: u32) {
        for i in 0..self.torrents.stripe_count() {
            let mut stripe = self.torrents.lock(i);
            stripe.retain(|_, t| {
                for seeder in t.remove_user(user) {
                    self.gauge(seeder, -1);
                }
                true
            });
        }
    }

    /// Grants or takes away a token; false when the torrent is unknown.
    pub fn set_token(&self, user: u32, hash: &InfoHash, on: bool) -> bool {
        let Some(torrent) = self.torrents.stripe(hash).get(hash).map(|t| t.id) else {
            return false;
        };
        let token = Token { user, torrent };
        let mut tokens = write(&self.tokens);
        if on {
            tokens.insert(token);
        } else {
            tokens.remove(&token);
        }
        drop(tokens);
        self.mark(|d| {
            d.tokens.insert((user, *hash));
        });
        true
    }

    /// Replaces the client whitelist.
    pub fn edit_whitelist(&self, f: impl FnOnce(&mut Vec<Vec<u8>>)) {
        f(&mut write(&self.whitelist));
        self.mark(|d| d.whitelist = true);
    }

    /// The client whitelist.
    pub fn whitelist(&self) -> Vec<Vec<u8>> {
        read(&self.whitelist).clone()
    }

    /// Tokens replaced wholesale (load and reload).
    pub fn replace_tokens(&self, tokens: HashSet<Token>) {
        *write(&self.tokens) = tokens;
    }

    /// The whitelist replaced wholesale (load and reload).
    pub fn replace_whitelist(&self, list: Vec<Vec<u8>>) {
        *write(&self.whitelist) = list;
    }

    /// Users replaced by a load: users not in `rows` go (with their
    /// peers), the others are added or updated. Returns (added or
    /// changed, removed).
    pub fn replace_users(&self, rows: &[UserRow]) -> (usize, usize) {
        let wanted: HashMap<[u8; 32], User> = rows
            .iter()
            .map(|r| {
                let user = User {
                    id: r.id,
                    can_leech: r.can_leech,
                    protected: r.protected,
                };
                (r.passkey, user)
            })
            .collect();
        let mut gone = Vec::new();
        let mut changed = 0;
        {
            let mut users = write(&self.users);
            let stale: Vec<[u8; 32]> = users
                .iter()
                .filter(|(k, u)| wanted.get(*k) != Some(u))
                .map(|(k, _)| *k)
                .collect();
            for k in stale {
                if let Some(u) = users.remove(&k) {
                    gone.push(u.id);
                }
            }
            for (k, u) in &wanted {
                if users.get(k) != Some(*u) {
                    users.upsert(*k, *u);
                    changed += 1;
                }
            }
        }
        // A user only re-keyed or changed keeps its peers.
        let still: HashSet<u32> = wanted.values().map(|u| u.id).collect();
        let removed: Vec<u32> = gone.into_iter().filter(|id| !still.contains(id)).collect();
        for &id in &removed {
            self.drop_peers_of(id);
        }
        (changed, removed.len())
    }

    /// Torrents replaced by a load: torrents not in `rows` go (with their
    /// peers), the others are added or updated. Returns (added or
    /// changed, removed).
    pub fn replace_torrents(&self, rows: &[TorrentRow]) -> (usize, usize) {
        let wanted: HashMap<InfoHash, &TorrentRow> =
            rows.iter().map(|r| (r.info_hash, r)).collect();
        let mut stale = Vec::new();
        for i in 0..self.torrents.stripe_count() {
            let stripe = self.torrents.lock(i);
            for (hash, _) in stripe.iter() {
                if !wanted.contains_key(hash) {
                    stale.push(*hash);
                }
            }
        }
        let mut changed = 0;
        for r in rows {
            let leech = Leech::from_code(r.free);
            let mut stripe = self.torrents.stripe(&r.info_hash);
            let h = stripe.hash(&r.info_hash);
            let (t, fresh) = stripe.get_or_insert_hashed(h, &r.info_hash);
            if fresh {
                *t = Torrent::new(r.id, leech, r.snatched);
                changed += 1;
            } else if t.id != r.id || t.leech != leech {
                t.id = r.id;
                t.leech = leech;
                changed += 1;
            }
        }
        let removed = stale.len();
        for hash in stale {
            let gone = {
                let mut stripe = self.torrents.stripe(&hash);
                let h = stripe.hash(&hash);
                stripe.remove_hashed(h, &hash)
            };
            if let Some(t) = gone {
                for i in 0..t.peers().len() {
                    self.gauge(t.is_seeder(i), -1);
                }
            }
        }
        (changed, removed)
    }

    /// Torrent id → info hash of every registered torrent.
    pub fn torrent_ids(&self) -> HashMap<u32, InfoHash> {
        let mut ids = HashMap::new();
        for i in 0..self.torrents.stripe_count() {
            let stripe = self.torrents.lock(i);
            for (hash, t) in stripe.iter() {
                ids.insert(t.id, *hash);
            }
        }
        ids
    }

    /// Torrents registered.
    pub fn torrent_count(&self) -> usize {
        (0..self.torrents.stripe_count())
            .map(|i| self.torrents.lock(i).len())
            .sum()
    }
}
