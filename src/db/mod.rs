//! The database seam of private mode: what the tracker loads at start and
//! on reload, the live peers it restores, and the batch the flusher
//! commits in one transaction. A driver only speaks SQL: it turns these
//! plain rows into statements and back. `sqlite.rs` is the embedded
//! default; `mysql/` (cargo feature `mysql`) writes into a Gazelle site's
//! own MySQL/MariaDB database.
//!
//! Only the flusher thread and start-up call a driver: a worker never
//! touches the database.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

#[cfg(feature = "mysql")]
pub mod mysql;
pub mod sqlite;

/// A user as the tracker needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    /// `users_main.ID`.
    pub id: u32,
    /// `users_main.torrent_pass`: 32 characters.
    pub passkey: [u8; 32],
    /// `users_main.can_leech`.
    pub can_leech: bool,
    /// `Visible = '0'` (or the site's own rule): its IP is never stored.
    pub protected: bool,
}

/// A torrent as the tracker needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentRow {
    /// `torrents.ID`.
    pub id: u32,
    /// `torrents.info_hash`: 20 raw bytes.
    pub info_hash: [u8; 20],
    /// `torrents.FreeTorrent`: 0 normal, 1 free, 2 neutral.
    pub free: u8,
    /// `torrents.Snatched`.
    pub snatched: u32,
}

/// One freeleech token: user `user` on torrent `torrent` (ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token {
    /// `users_freeleeches.UserID`.
    pub user: u32,
    /// `users_freeleeches.TorrentID`.
    pub torrent: u32,
}

/// Everything `load` reads: the site's view of who and what may announce.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Enabled users.
    pub users: Vec<UserRow>,
    /// Registered torrents.
    pub torrents: Vec<TorrentRow>,
    /// Unexpired tokens.
    pub tokens: Vec<Token>,
    /// Client whitelist: peer_id prefixes (empty = every client).
    pub whitelist: Vec<Vec<u8>>,
}

/// A row of `xbt_files_users` restored as a live peer: its committed
/// baselines are what the next announce is credited against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LivePeer {
    /// `fid`: torrent id.
    pub torrent: u32,
    /// `uid`: user id.
    pub user: u32,
    /// `peer_id`: 20 raw bytes.
    pub peer_id: [u8; 20],
    /// `uploaded`: the committed baseline.
    pub uploaded: u64,
    /// `downloaded`: the committed baseline.
    pub downloaded: u64,
    /// `corrupt`: the committed baseline.
    pub corrupt: u64,
    /// `remaining`: 0 = seeder.
    pub left: u64,
    /// `ip` parsed; `None` when empty (protected user) or unparsable.
    pub ip: Option<IpAddr>,
    /// `port` (hayate's own column; 0 when unknown).
    pub port: u16,
    /// `mtime`: unix seconds of its last announce.
    pub mtime: i64,
}

/// Credit to add to one user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserCredit {
    /// `users_main.ID`.
    pub id: u32,
    /// Bytes to add to `Uploaded`.
    pub uploaded: u64,
    /// Bytes to add to `Downloaded`.
    pub downloaded: u64,
}

/// One torrent's changes in a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TorrentUpdate {
    /// `torrents.ID`.
    pub id: u32,
    /// Set `Seeders`.
    pub seeders: u32,
    /// Set `Leechers`.
    pub leechers: u32,
    /// Add to `Snatched`.
    pub snatched: u32,
    /// Add to `balance`.
    pub balance: i64,
    /// Set `last_action` to this unix time (when it had seeders).
    pub last_action: Option<i64>,
}

/// One peer's row of `xbt_files_users`, upserted on `(peer_id, fid, uid)`.
/// `uploaded`/`downloaded`/`corrupt` are the baselines the batch's credit
/// was computed up to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerRow {
    /// `uid`.
    pub user: u32,
    /// `fid`.
    pub torrent: u32,
    /// `peer_id`: 20 raw bytes.
    pub peer_id: [u8; 20],
    /// `active`: false after `stopped` (or when the peer was dropped).
    pub active: bool,
    /// `uploaded`: counter last seen.
    pub uploaded: u64,
    /// `downloaded`: counter last seen.
    pub downloaded: u64,
    /// `corrupt`: counter last seen.
    pub corrupt: u64,
    /// `remaining`: `left` last seen.
    pub left: u64,
    /// `upspeed`, bytes/s over the last interval.
    pub upspeed: u32,
    /// `downspeed`, bytes/s over the last interval.
    pub downspeed: u32,
    /// Add to `timespent` (seconds).
    pub timespent: u32,
    /// Add to `announced`.
    pub announced: u32,
    /// `ip`, written as text; `None` (an empty string) for protected users.
    pub ip: Option<IpAddr>,
    /// `port` (hayate's own column).
    pub port: u16,
    /// `useragent`.
    pub useragent: UserAgent,
    /// `mtime`: unix seconds of the last announce.
    pub mtime: i64,
}

/// Longest `useragent` written, in characters (Gazelle's column is
/// `varchar(51)`).
pub const USERAGENT_MAX: usize = 51;

/// A client's `User-Agent` header as announced: its first bytes, held
/// inline so that recording an announce allocates nothing (a worker
/// records one row per announce; the flusher frees them). The text the
/// database gets is [`UserAgent::text`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UserAgent {
    len: u8,
    bytes: [u8; UserAgent::CAP],
}

impl UserAgent {
    /// Bytes kept: room for `USERAGENT_MAX` ASCII characters and some
    /// multi-byte ones (real clients' agents are ASCII).
    const CAP: usize = 64;

    /// The first bytes of `raw` (the whole header when it fits).
    pub fn new(raw: &[u8]) -> UserAgent {
        let mut ua = UserAgent::default();
        let n = raw.len().min(Self::CAP);
        ua.bytes[..n].copy_from_slice(&raw[..n]);
        ua.len = u8::try_from(n).unwrap_or(u8::MAX); // n <= CAP = 64
        ua
    }

    /// The column's value: at most `USERAGENT_MAX` characters, invalid
    /// UTF-8 replaced by U+FFFD (a character cut by the byte limit is
    /// dropped).
    pub fn text(&self) -> Cow<'_, str> {
        let mut raw = &self.bytes[..usize::from(self.len)];
        if let Err(e) = std::str::from_utf8(raw) {
            if e.error_len().is_none() {
                // A character cut by the byte limit: drop its first bytes.
                raw = &raw[..e.valid_up_to()];
            }
        }
        match std::str::from_utf8(raw) {
            Ok(s) => match s.char_indices().nth(USERAGENT_MAX) {
                None => Cow::Borrowed(s),
                Some((cut, _)) => Cow::Borrowed(&s[..cut]),
            },
            Err(_) => Cow::Owned(
                String::from_utf8_lossy(raw)
                    .chars()
                    .take(USERAGENT_MAX)
                    .collect(),
            ),
        }
    }
}

impl Default for UserAgent {
    fn default() -> UserAgent {
        UserAgent {
            len: 0,
            bytes: [0; UserAgent::CAP],
        }
    }
}

impl fmt::Debug for UserAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text(), f)
    }
}

impl From<&str> for UserAgent {
    fn from(s: &str) -> UserAgent {
        UserAgent::new(s.as_bytes())
    }
}

/// An address as its column's text: empty for none (protected users).
pub fn ip_text(ip: Option<IpAddr>) -> String {
    ip.map_or_else(String::new, |ip| ip.to_string())
}

/// One snatch: a row of `xbt_snatched`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snatch {
    /// `uid`.
    pub user: u32,
    /// `fid`.
    pub torrent: u32,
    /// `tstamp`: unix seconds.
    pub time: i64,
    /// `IP`, written as text; `None` (an empty string) for protected users.
    pub ip: Option<IpAddr>,
}

/// A token's real download, added to `users_freeleeches.Downloaded`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenCredit {
    /// The token.
    pub token: Token,
    /// Bytes to add.
    pub downloaded: u64,
}

/// Control API changes written through to a database hayate owns (the
/// embedded one): the current state of each entity a call touched, so
/// applying it is idempotent and order-free. A driver for a site-owned
/// database ignores it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mirror {
    /// Users to insert or update (by `ID`), `Enabled = '1'`.
    pub users: Vec<UserRow>,
    /// Users removed: `Enabled = '0'` (their credit stays); a user added
    /// and removed within one batch gets its row, disabled.
    pub disabled_users: Vec<UserRow>,
    /// Torrents to insert or update (by `ID`).
    pub torrents: Vec<TorrentRow>,
    /// Torrents deleted (by `ID`).
    pub deleted_torrents: Vec<u32>,
    /// Tokens granted: `users_freeleeches` row with `Expired = '0'`.
    pub tokens: Vec<Token>,
    /// Tokens taken away: `Expired = '1'`.
    pub expired_tokens: Vec<Token>,
    /// The whole client whitelist, when it changed.
    pub whitelist: Option<Vec<Vec<u8>>>,
}

impl Mirror {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.disabled_users.is_empty()
            && self.torrents.is_empty()
            && self.deleted_torrents.is_empty()
            && self.tokens.is_empty()
            && self.expired_tokens.is_empty()
            && self.whitelist.is_none()
    }
}

/// What the flusher commits in one transaction. The mirror goes first, so
/// credit to a user or torrent added in the same batch finds its row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Control API changes (embedded database only).
    pub mirror: Mirror,
    /// Credit per user.
    pub users: Vec<UserCredit>,
    /// Per torrent: counts, snatches, balance, last action.
    pub torrents: Vec<TorrentUpdate>,
    /// Per peer: the baselines the credit above was computed up to.
    pub peers: Vec<PeerRow>,
    /// New snatches.
    pub snatches: Vec<Snatch>,
    /// Token downloads.
    pub tokens: Vec<TokenCredit>,
}

impl Batch {
    /// True when committing would change nothing.
    pub fn is_empty(&self) -> bool {
        self.mirror.is_empty()
            && self.users.is_empty()
            && self.torrents.is_empty()
            && self.peers.is_empty()
            && self.snatches.is_empty()
            && self.tokens.is_empty()
    }
}

/// A database failure, with the driver's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbError(pub String);

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

/// A database driver. Every call is synchronous; `commit` is one
/// transaction that either lands whole or leaves the database as it was.
pub trait Database: Send {
    /// Users, torrents, tokens and whitelist as the database has them.
    fn load(&mut self) -> Result<Loaded, DbError>;
    /// Rows of `xbt_files_users` that are active and announced at or after
    /// `since` (unix seconds); rows older than that are deleted.
    fn live_peers(&mut self, since: i64) -> Result<Vec<LivePeer>, DbError>;
    /// Commits `batch` in one transaction; on error nothing of it stays.
    fn commit(&mut self, batch: &Batch) -> Result<(), DbError>;
    /// True when the control API's changes are written through (`Mirror`).
    fn owns_site_tables(&self) -> bool;
}

/// Where a Gazelle database keeps credit and swarm counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GazelleSchema {
    /// The living fork (Orpheus): `users_leech_stats`, `torrents_leech_stats`.
    Ops,
    /// What.CD's: `users_main` and `torrents` columns.
    Classic,
}

impl GazelleSchema {
    /// The config value: `ops` or `classic`.
    pub fn name(self) -> &'static str {
        match self {
            GazelleSchema::Ops => "ops",
            GazelleSchema::Classic => "classic",
        }
    }
}

/// How to open a database besides its URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// A site-owned database's schema generation (`gazelle_schema`).
    pub schema: GazelleSchema,
    /// Load and serve, never write (`readonly`; site-owned databases).
    pub readonly: bool,
}

/// The database schemes `database` accepts in this build.
#[cfg(feature = "mysql")]
pub const SCHEMES: &[&str] = &["sqlite", "mysql"];
/// The database schemes `database` accepts in this build.
#[cfg(not(feature = "mysql"))]
pub const SCHEMES: &[&str] = &["sqlite"];

/// Schemes of drivers this build left out, with how to get them.
pub const SCHEMES_NOT_BUILT: &[(&str, &str)] = if cfg!(feature = "mysql") {
    &[]
} else {
    &[("mysql", "a build with the mysql feature: make build-mysql")]
};

/// Opens the database `url` names: `sqlite:PATH` (a relative path is
/// against the working directory; the embedded schema is created on first
/// use, and a file that cannot be opened or holds another schema is an
/// error), or `mysql://user:password@host:port/db` (a Gazelle site's
/// database, checked against `options.schema`).
pub fn open(url: &str, options: Options) -> Result<Box<dyn Database>, DbError> {
    match url.split_once(':') {
        Some(("sqlite", path)) => Ok(Box::new(sqlite::Sqlite::open(path)?)),
        #[cfg(feature = "mysql")]
        Some(("mysql", _)) => Ok(Box::new(mysql::Mysql::open(
            url,
            options.schema,
            options.readonly,
        )?)),
        _ => {
            let _ = options;
            Err(DbError(format!(
                "database: unknown scheme (known: {})",
                SCHEMES
                    .iter()
                    .map(|s| format!("{s}:"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod user_agent_tests {
    use super::{UserAgent, USERAGENT_MAX};

    #[test]
    fn short_agents_are_kept_whole() {
        assert_eq!(
            UserAgent::from("qBittorrent/4.6.2").text(),
            "qBittorrent/4.6.2"
        );
        assert_eq!(UserAgent::default().text(), "");
    }

    #[test]
    fn long_agents_are_cut_to_the_column() {
        let long = "x".repeat(300);
        assert_eq!(
            UserAgent::from(long.as_str()).text().chars().count(),
            USERAGENT_MAX
        );
        // Multi-byte characters: at most 51 of them, never a split one.
        let wide = format!("a{}", "é".repeat(40));
        let text = UserAgent::from(wide.as_str()).text().into_owned();
        assert!(text.chars().count() <= USERAGENT_MAX);
        assert_eq!(text, format!("a{}", "é".repeat(31)));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let ua = UserAgent::new(b"client\xff\xfe/1.0");
        assert_eq!(ua.text(), "client\u{fffd}\u{fffd}/1.0");
    }
}
