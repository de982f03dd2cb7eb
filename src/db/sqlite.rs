//! The embedded database: one SQLite file that hayate owns, laid out like
//! Gazelle's classic tables (`users_main`, `torrents`, `users_freeleeches`,
//! `xbt_client_whitelist`, `xbt_files_users`, `xbt_snatched`; see
//! GAZELLE.md) so a site can read it with the same queries. Addresses are
//! TEXT, so an IPv6 address fits where MySQL's `varchar(15)` would not.
//!
//! Pragmas, set on every connection:
//! - `journal_mode = WAL`: a site (or `sqlite3`) may read while the flusher
//!   writes, and a commit is one append to the log, not a rewrite.
//! - `synchronous = FULL`: in WAL mode NORMAL may lose the last committed
//!   transactions on power loss; a lost batch is lost credit, so every
//!   commit waits for its fsync.
//! - `foreign_keys = OFF`: the tables have no foreign keys, as in Gazelle.
//! - a busy timeout of [`BUSY_TIMEOUT`]: a locked database fails fast and
//!   the flusher retries with back-off instead of hanging.
//!
//! `PRAGMA user_version` marks a file as hayate's ([`SCHEMA_VERSION`]). A
//! file with no tables gets the schema; a file with tables and another
//! version is someone else's database and is refused untouched: no pragma
//! that persists (WAL) is set before that check.
//!
//! One `Sqlite` is used by one thread at a time (start-up, then the
//! flusher). After a failure other than "locked", the connection is dropped
//! and the next call reopens it from the stored path.

use std::net::IpAddr;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, ErrorCode, OpenFlags, Row, TransactionBehavior};

use super::{
    ip_text, Batch, Database, DbError, LivePeer, Loaded, Mirror, Token, TorrentRow, UserRow,
};

/// `PRAGMA user_version` of a database hayate created: "Hy" (0x4879) and
/// schema revision 1. Bump the low half when the schema changes.
pub const SCHEMA_VERSION: i32 = 0x4879_0001;

/// How long a statement waits for another connection's lock before it
/// fails with "database is locked": the flusher retries with back-off, so
/// a longer wait would only delay its retry and shutdown.
const BUSY_TIMEOUT: Duration = Duration::from_millis(200);

/// Prepared statements cached per connection: all of `commit`, `load` and
/// `live_peers` (about twenty), with room to spare.
const STATEMENT_CACHE: usize = 32;

/// The schema, created in one transaction on an empty file.
const SCHEMA: &str = "
CREATE TABLE users_main (
    ID INTEGER PRIMARY KEY,
    torrent_pass TEXT NOT NULL UNIQUE,
    can_leech INTEGER NOT NULL DEFAULT 1,
    Visible TEXT NOT NULL DEFAULT '1',
    Enabled TEXT NOT NULL DEFAULT '1',
    IP TEXT NOT NULL DEFAULT '',
    Uploaded INTEGER NOT NULL DEFAULT 0,
    Downloaded INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE torrents (
    ID INTEGER PRIMARY KEY,
    info_hash BLOB NOT NULL UNIQUE,
    FreeTorrent TEXT NOT NULL DEFAULT '0',
    Seeders INTEGER NOT NULL DEFAULT 0,
    Leechers INTEGER NOT NULL DEFAULT 0,
    Snatched INTEGER NOT NULL DEFAULT 0,
    balance INTEGER NOT NULL DEFAULT 0,
    last_action TEXT
);
CREATE TABLE users_freeleeches (
    UserID INTEGER NOT NULL,
    TorrentID INTEGER NOT NULL,
    Time TEXT,
    Expired TEXT NOT NULL DEFAULT '0',
    Downloaded INTEGER NOT NULL DEFAULT 0,
    Uses INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (UserID, TorrentID)
);
CREATE TABLE xbt_client_whitelist (
    id INTEGER PRIMARY KEY,
    peer_id TEXT NOT NULL UNIQUE,
    vstring TEXT NOT NULL DEFAULT ''
);
CREATE TABLE xbt_files_users (
    uid INTEGER NOT NULL,
    fid INTEGER NOT NULL,
    active INTEGER NOT NULL,
    uploaded INTEGER NOT NULL DEFAULT 0,
    downloaded INTEGER NOT NULL DEFAULT 0,
    upspeed INTEGER NOT NULL DEFAULT 0,
    downspeed INTEGER NOT NULL DEFAULT 0,
    remaining INTEGER NOT NULL DEFAULT 0,
    corrupt INTEGER NOT NULL DEFAULT 0,
    timespent INTEGER NOT NULL DEFAULT 0,
    announced INTEGER NOT NULL DEFAULT 0,
    ip TEXT NOT NULL DEFAULT '',
    port INTEGER NOT NULL DEFAULT 0,
    peer_id BLOB NOT NULL,
    useragent TEXT NOT NULL DEFAULT '',
    mtime INTEGER NOT NULL,
    PRIMARY KEY (peer_id, fid, uid)
) WITHOUT ROWID;
CREATE TABLE xbt_snatched (
    uid INTEGER NOT NULL,
    fid INTEGER NOT NULL,
    tstamp INTEGER NOT NULL,
    IP TEXT NOT NULL DEFAULT ''
);
CREATE INDEX xbt_snatched_fid ON xbt_snatched (fid);
CREATE INDEX xbt_snatched_uid ON xbt_snatched (uid);
";

/// The embedded SQLite database (`sqlite:PATH`).
pub struct Sqlite {
    /// The path as given, for reopening and for error messages.
    path: String,
    /// `None` after a failure that may have left the connection unusable.
    conn: Option<Connection>,
}

impl Sqlite {
    /// Opens the database at `path` (relative to the working directory),
    /// creating the file and the schema when it does not exist or is
    /// empty. A file that is not SQLite, or holds another schema, is an
    /// error and is left as it was.
    pub fn open(path: &str) -> Result<Sqlite, DbError> {
        let conn = connect(path)?;
        Ok(Sqlite {
            path: path.to_owned(),
            conn: Some(conn),
        })
    }

    /// The path the database was opened with.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Runs `f` on the connection (reopening it if a failure dropped it).
    /// On error, the connection is kept only when it was merely locked out
    /// and holds no open transaction.
    fn run<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, DbError> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => connect(&self.path)?,
        };
        let conn = self.conn.insert(conn);
        match f(conn) {
            Ok(value) => Ok(value),
            Err(e) => {
                let locked = matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                );
                if !(locked && conn.is_autocommit()) {
                    self.conn = None;
                }
                Err(DbError(format!("sqlite {}: {what}: {e}", self.path)))
            }
        }
    }
}

/// `sqlite PATH: message`, without the path rusqlite appends to open errors.
fn open_error(path: &str, e: &rusqlite::Error) -> DbError {
    let text = e.to_string();
    let text = text
        .strip_suffix(path)
        .and_then(|t| t.strip_suffix(": "))
        .unwrap_or(&text);
    DbError(format!("sqlite {path}: {text}"))
}

/// Opens a connection, sets the pragmas, checks (or creates) the schema.
fn connect(path: &str) -> Result<Connection, DbError> {
    if path.is_empty() {
        // SQLite would open a private temporary database: data lost at exit.
        return Err(DbError("sqlite: empty path".into()));
    }
    let fail = |e: rusqlite::Error| open_error(path, &e);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(fail)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    // Per-connection settings only: nothing is written to the file yet.
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF; PRAGMA synchronous = FULL; PRAGMA cache_size = -65536;",
    )
    .map_err(fail)?;
    let create = check_schema(&conn)
        .map_err(fail)?
        .map_err(|why| DbError(format!("sqlite {path}: {why}: hayate will not touch it")))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(fail)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(DbError(format!(
            "sqlite {path}: journal_mode is {mode}, not wal"
        )));
    }
    if create {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        // Checked again under the write lock: another process may have
        // created the schema (or something else) since.
        match check_schema(&tx).map_err(fail)? {
            Ok(true) => {
                tx.execute_batch(SCHEMA).map_err(fail)?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                    .map_err(fail)?;
                tx.commit().map_err(fail)?;
            }
            Ok(false) => {}
            Err(why) => {
                return Err(DbError(format!(
                    "sqlite {path}: {why}: hayate will not touch it"
                )))
            }
        }
    }
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Ok(true): empty, create the schema; Ok(false): hayate's schema;
/// Err(why): someone else's database.
fn check_schema(conn: &Connection) -> rusqlite::Result<Result<bool, String>> {
    let version: i32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let objects: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))?;
    Ok(match (version, objects) {
        (SCHEMA_VERSION, _) => Ok(false),
        (0, 0) => Ok(true),
        (0, _) => Err("foreign schema (tables present, user_version 0)".into()),
        (v, _) => Err(format!(
            "unknown schema version {v:#x} (hayate's is {SCHEMA_VERSION:#x})"
        )),
    })
}

/// A u64 counter as SQLite's i64, saturating.
fn sat(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// An i64 column as a u64 counter; negative reads as 0.
fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// An integer column, also when a site stored it as text.
fn int(v: ValueRef<'_>) -> Option<i64> {
    match v {
        ValueRef::Integer(i) => Some(i),
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// Column `i` of `row`, NULL when it cannot be read.
fn col<'r>(row: &'r Row<'_>, i: usize) -> ValueRef<'r> {
    row.get_ref(i).unwrap_or(ValueRef::Null)
}

/// An id column as u32.
fn id(v: ValueRef<'_>) -> Option<u32> {
    int(v).and_then(|i| u32::try_from(i).ok())
}

/// `FreeTorrent` as written: '0' normal, '1' free, '2' neutral.
fn free_text(free: u8) -> &'static str {
    match free {
        1 => "1",
        2 => "2",
        _ => "0",
    }
}

/// Reads every row of `sql`, keeping what `parse` accepts and warning
/// about the rest, named by `key` (table and column) and the first column.
fn rows<T>(
    conn: &Connection,
    sql: &str,
    key: &str,
    parse: impl Fn(&Row<'_>) -> Result<T, &'static str>,
) -> rusqlite::Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        match parse(row) {
            Ok(item) => out.push(item),
            Err(why) => log::warn!(
                "sqlite: {key} {}: {why}; skipped",
                int(col(row, 0)).map_or_else(|| "?".to_owned(), |i| i.to_string())
            ),
        }
    }
    Ok(out)
}

/// A `users_main` row as a user.
fn user_of(row: &Row<'_>) -> Result<UserRow, &'static str> {
    Ok(UserRow {
        id: id(col(row, 0)).ok_or("ID is not a u32")?,
        can_leech: int(col(row, 1)).ok_or("can_leech is not an integer")? != 0,
        passkey: col(row, 2)
            .as_bytes()
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("torrent_pass is not 32 bytes")?,
        // Unknown counts as protected: an IP is then never stored.
        protected: !matches!(int(col(row, 3)), Some(0)),
    })
}

/// A `torrents` row; an unknown `FreeTorrent` reads as normal.
fn torrent_of(row: &Row<'_>) -> Result<TorrentRow, &'static str> {
    let snatched = int(col(row, 3)).unwrap_or(0);
    Ok(TorrentRow {
        id: id(col(row, 0)).ok_or("ID is not a u32")?,
        info_hash: col(row, 1)
            .as_bytes()
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("info_hash is not 20 bytes")?,
        free: match int(col(row, 2)) {
            Some(1) => 1,
            Some(2) => 2,
            _ => 0,
        },
        snatched: u32::try_from(snatched.max(0)).unwrap_or(u32::MAX),
    })
}

/// A `users_freeleeches` row as a token.
fn token_of(row: &Row<'_>) -> Result<Token, &'static str> {
    Ok(Token {
        user: id(col(row, 0)).ok_or("UserID is not a u32")?,
        torrent: id(col(row, 1)).ok_or("TorrentID is not a u32")?,
    })
}

/// An `xbt_files_users` row as a live peer.
fn peer_of(row: &Row<'_>) -> Result<LivePeer, &'static str> {
    let count = |i| unsigned(int(col(row, i)).unwrap_or(0));
    Ok(LivePeer {
        torrent: id(col(row, 0)).ok_or("fid is not a u32")?,
        user: id(col(row, 1)).ok_or("uid is not a u32")?,
        peer_id: col(row, 2)
            .as_bytes()
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("peer_id is not 20 bytes")?,
        uploaded: count(3),
        downloaded: count(4),
        corrupt: count(5),
        left: count(6),
        ip: col(row, 7)
            .as_str()
            .ok()
            .and_then(|s| s.parse::<IpAddr>().ok()),
        port: int(col(row, 8))
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(0),
        mtime: int(col(row, 9)).ok_or("mtime is not an integer")?,
    })
}

/// The control API's changes: entities first, so the credit that follows
/// in the same transaction finds its rows.
fn write_mirror(conn: &Connection, m: &Mirror) -> rusqlite::Result<()> {
    for u in &m.users {
        // torrent_pass is UNIQUE: whoever else holds the new passkey (a
        // swap within this batch, or a disabled user) gets a placeholder
        // that no real 32-character passkey can equal.
        let passkey = ToSqlOutput::Borrowed(ValueRef::Text(&u.passkey));
        conn.prepare_cached(
            "UPDATE users_main SET torrent_pass = 'x' || ID WHERE torrent_pass = ?1 AND ID <> ?2",
        )?
        .execute(params![passkey, u.id])?;
        conn.prepare_cached(
            "INSERT INTO users_main (ID, torrent_pass, can_leech, Visible, Enabled) \
             VALUES (?1, ?2, ?3, ?4, '1') ON CONFLICT(ID) DO UPDATE SET \
             torrent_pass = excluded.torrent_pass, can_leech = excluded.can_leech, \
             Visible = excluded.Visible, Enabled = '1'",
        )?
        .execute(params![
            u.id,
            passkey,
            u.can_leech,
            if u.protected { "0" } else { "1" }
        ])?;
    }
    for u in &m.disabled_users {
        // An existing row only changes `Enabled`; a missing one (added and
        // removed within one batch) is written so its credit has a row,
        // keeping its passkey unless another row holds it.
        let passkey = ToSqlOutput::Borrowed(ValueRef::Text(&u.passkey));
        conn.prepare_cached(
            "INSERT INTO users_main (ID, torrent_pass, can_leech, Visible, Enabled) \
             VALUES (?1, CASE WHEN EXISTS (SELECT 1 FROM users_main \
             WHERE torrent_pass = ?2 AND ID <> ?1) THEN 'x' || ?1 ELSE ?2 END, ?3, ?4, '0') \
             ON CONFLICT(ID) DO UPDATE SET Enabled = '0'",
        )?
        .execute(params![
            u.id,
            passkey,
            u.can_leech,
            if u.protected { "0" } else { "1" }
        ])?;
    }
    for t in &m.torrents {
        // info_hash is UNIQUE: a row of another ID with this hash is stale.
        let stale = conn
            .prepare_cached("DELETE FROM torrents WHERE info_hash = ?1 AND ID <> ?2")?
            .execute(params![&t.info_hash[..], t.id])?;
        if stale > 0 {
            log::warn!(
                "sqlite: torrent {}: deleted the older row with its info_hash",
                t.id
            );
        }
        // Snatched is left alone: it only grows through TorrentUpdate.
        conn.prepare_cached(
            "INSERT INTO torrents (ID, info_hash, FreeTorrent) VALUES (?1, ?2, ?3) \
             ON CONFLICT(ID) DO UPDATE SET info_hash = excluded.info_hash, \
             FreeTorrent = excluded.FreeTorrent",
        )?
        .execute(params![t.id, &t.info_hash[..], free_text(t.free)])?;
    }
    for torrent in &m.deleted_torrents {
        conn.prepare_cached("DELETE FROM torrents WHERE ID = ?1")?
            .execute([torrent])?;
    }
    for t in &m.tokens {
        // A retried grant keeps the time of the first one.
        conn.prepare_cached(
            "INSERT INTO users_freeleeches (UserID, TorrentID, Time, Expired) \
             VALUES (?1, ?2, datetime('now'), '0') ON CONFLICT(UserID, TorrentID) DO UPDATE SET \
             Time = CASE WHEN Expired = '0' THEN Time ELSE excluded.Time END, Expired = '0'",
        )?
        .execute(params![t.user, t.torrent])?;
    }
    for t in &m.expired_tokens {
        conn.prepare_cached(
            "UPDATE users_freeleeches SET Expired = '1' WHERE UserID = ?1 AND TorrentID = ?2",
        )?
        .execute(params![t.user, t.torrent])?;
    }
    if let Some(list) = &m.whitelist {
        conn.prepare_cached("DELETE FROM xbt_client_whitelist")?
            .execute([])?;
        for prefix in list {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO xbt_client_whitelist (peer_id) VALUES (?1)",
            )?
            .execute([&prefix[..]])?;
        }
    }
    Ok(())
}

/// Credit added to `users_main`. SQLite turns an integer that overflows
/// into a float: each sum saturates at i64::MAX instead (`?n` >= 0).
const ADD_USER_CREDIT: &str = "UPDATE users_main SET \
    Uploaded = CASE WHEN Uploaded > 9223372036854775807 - ?1 \
        THEN 9223372036854775807 ELSE Uploaded + ?1 END, \
    Downloaded = CASE WHEN Downloaded > 9223372036854775807 - ?2 \
        THEN 9223372036854775807 ELSE Downloaded + ?2 END \
    WHERE ID = ?3";

/// A token's download added to `users_freeleeches`, saturating likewise.
const ADD_TOKEN_CREDIT: &str = "UPDATE users_freeleeches SET \
    Downloaded = CASE WHEN Downloaded > 9223372036854775807 - ?1 \
        THEN 9223372036854775807 ELSE Downloaded + ?1 END \
    WHERE UserID = ?2 AND TorrentID = ?3";

/// Credit, swarm counts, peer baselines, snatches and token downloads.
fn write_live(conn: &Connection, b: &Batch) -> rusqlite::Result<()> {
    // Each statement prepared (from the cache) once per batch, not once
    // per row: the cache hashes the whole SQL text on every lookup.
    if !b.users.is_empty() {
        let mut credit = conn.prepare_cached(ADD_USER_CREDIT)?;
        for c in &b.users {
            let changed = credit.execute(params![sat(c.uploaded), sat(c.downloaded), c.id])?;
            if changed == 0 {
                log::warn!("sqlite: credit for unknown user {} dropped", c.id);
            }
        }
    }
    if !b.torrents.is_empty() {
        let mut update = conn.prepare_cached(
            "UPDATE torrents SET Seeders = ?1, Leechers = ?2, Snatched = Snatched + ?3, \
             balance = balance + ?4, last_action = COALESCE(datetime(?5, 'unixepoch'), last_action) \
             WHERE ID = ?6",
        )?;
        for t in &b.torrents {
            update.execute(params![
                t.seeders,
                t.leechers,
                t.snatched,
                t.balance,
                t.last_action,
                t.id
            ])?;
        }
    }
    if !b.peers.is_empty() {
        let mut upsert = conn.prepare_cached(
            "INSERT INTO xbt_files_users (uid, fid, active, uploaded, downloaded, upspeed, \
             downspeed, remaining, corrupt, timespent, announced, ip, port, peer_id, useragent, mtime) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
             ON CONFLICT(peer_id, fid, uid) DO UPDATE SET active = excluded.active, \
             uploaded = excluded.uploaded, downloaded = excluded.downloaded, \
             upspeed = excluded.upspeed, downspeed = excluded.downspeed, \
             remaining = excluded.remaining, corrupt = excluded.corrupt, \
             timespent = timespent + excluded.timespent, \
             announced = announced + excluded.announced, ip = excluded.ip, \
             port = excluded.port, useragent = excluded.useragent, mtime = excluded.mtime",
        )?;
        for p in &b.peers {
            upsert.execute(params![
                p.user,
                p.torrent,
                p.active,
                sat(p.uploaded),
                sat(p.downloaded),
                p.upspeed,
                p.downspeed,
                sat(p.left),
                sat(p.corrupt),
                p.timespent,
                p.announced,
                ip_text(p.ip),
                p.port,
                &p.peer_id[..],
                p.useragent.text(),
                p.mtime
            ])?;
        }
    }
    if !b.snatches.is_empty() {
        let mut insert = conn.prepare_cached(
            "INSERT INTO xbt_snatched (uid, fid, tstamp, IP) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for s in &b.snatches {
            insert.execute(params![s.user, s.torrent, s.time, ip_text(s.ip)])?;
        }
    }
    for t in &b.tokens {
        let args = params![sat(t.downloaded), t.token.user, t.token.torrent];
        let changed = conn.prepare_cached(ADD_TOKEN_CREDIT)?.execute(args)?;
        if changed == 0 {
            // No token row (removed meanwhile): keep the bytes on an
            // expired row rather than lose them.
            conn.prepare_cached(
                "INSERT INTO users_freeleeches (Downloaded, UserID, TorrentID, Time, Expired) \
                 VALUES (?1, ?2, ?3, datetime('now'), '1')",
            )?
            .execute(args)?;
        }
    }
    Ok(())
}

impl Database for Sqlite {
    fn load(&mut self) -> Result<Loaded, DbError> {
        self.run("load", |conn| {
            // One read transaction: a consistent snapshot of the four.
            let tx = conn.transaction()?;
            let loaded = Loaded {
                users: rows(
                    &tx,
                    "SELECT ID, can_leech, torrent_pass, (Visible = '0' OR IP = '127.0.0.1') \
                     FROM users_main WHERE Enabled = '1'",
                    "users_main ID",
                    user_of,
                )?,
                torrents: rows(
                    &tx,
                    "SELECT ID, info_hash, FreeTorrent, Snatched FROM torrents",
                    "torrents ID",
                    torrent_of,
                )?,
                tokens: rows(
                    &tx,
                    "SELECT uf.UserID, uf.TorrentID FROM users_freeleeches AS uf \
                     JOIN torrents AS t ON t.ID = uf.TorrentID WHERE uf.Expired = '0'",
                    "users_freeleeches UserID",
                    token_of,
                )?,
                whitelist: rows(
                    &tx,
                    "SELECT id, peer_id FROM xbt_client_whitelist",
                    "xbt_client_whitelist id",
                    |row| {
                        col(row, 1)
                            .as_bytes()
                            .map(<[u8]>::to_vec)
                            .map_err(|_| "peer_id is NULL")
                    },
                )?,
            };
            tx.commit()?;
            Ok(loaded)
        })
    }

    fn live_peers(&mut self, since: i64) -> Result<Vec<LivePeer>, DbError> {
        self.run("live_peers", |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Rows older than `since` can never be restored: housekeeping.
            tx.prepare_cached("DELETE FROM xbt_files_users WHERE mtime < ?1")?
                .execute([since])?;
            // Every row left is at or after `since`.
            let peers = rows(
                &tx,
                "SELECT fid, uid, peer_id, uploaded, downloaded, corrupt, remaining, ip, port, \
                 mtime FROM xbt_files_users WHERE active = 1",
                "xbt_files_users fid",
                peer_of,
            )?;
            tx.commit()?;
            Ok(peers)
        })
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), DbError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.run("commit", |conn| {
            // IMMEDIATE takes the write lock first: a locked database fails
            // here, before any work, and never halfway on an upgrade.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            write_mirror(&tx, &batch.mirror)?;
            write_live(&tx, batch)?;
            // On any error above, dropping `tx` rolls it all back.
            tx.commit()
        })
    }

    fn owns_site_tables(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests;
