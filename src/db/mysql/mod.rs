//! A Gazelle site's own MySQL/MariaDB database (`mysql://...`, cargo
//! feature `mysql`): the drop-in Ocelot replacement. The site owns the
//! tables; hayate reads users, torrents, tokens and the client whitelist
//! with GAZELLE.md's queries, and writes credit, swarm counts, peer rows,
//! snatches and token downloads in one transaction per batch, into the
//! tables of the site's schema generation (`gazelle_schema`).
//!
//! - Connection: one, used by one thread at a time (start-up, then the
//!   flusher), opened lazily and dropped after any error, so the next call
//!   reconnects (the flusher's back-off paces the retries).
//! - At every connect: the columns of the tables are read
//!   (`information_schema`), required ones checked, and the sizes values
//!   are fitted to noted (`columns`, `write::Layout`).
//! - `readonly`: loads and serves, never writes (no DELETE of old peer
//!   rows, commits dropped): for trying hayate beside a live Ocelot.

mod columns;
mod write;

use std::net::IpAddr;
use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{AccessMode, Conn, Opts, OptsBuilder, Row, TxOpts, Value};

use self::columns::{Column, Tables};
use self::write::{Layout, STAGING};
use super::{
    Batch, Database, DbError, GazelleSchema, LivePeer, Loaded, Token, TorrentRow, UserRow,
};

/// How long a connect may take before the attempt fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long one read or write on the connection may block: a server that
/// stops answering mid-commit fails the commit instead of hanging the
/// flusher (and shutdown) forever. A 100k-row batch takes about a second.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The columns hayate needs in both schema generations.
const REQUIRED: &[(&str, &[&str])] = &[
    (
        "users_main",
        &["ID", "torrent_pass", "can_leech", "Visible", "Enabled"],
    ),
    ("torrents", &["ID", "info_hash", "FreeTorrent"]),
    (
        "users_freeleeches",
        &["UserID", "TorrentID", "Expired", "Downloaded"],
    ),
    ("xbt_client_whitelist", &["peer_id"]),
    (
        "xbt_files_users",
        &[
            "uid",
            "fid",
            "active",
            "uploaded",
            "downloaded",
            "upspeed",
            "downspeed",
            "remaining",
            "corrupt",
            "timespent",
            "announced",
            "ip",
            "peer_id",
            "useragent",
            "mtime",
        ],
    ),
    ("xbt_snatched", &["uid", "fid", "tstamp", "IP"]),
];

/// What `classic` adds.
const REQUIRED_CLASSIC: &[(&str, &[&str])] = &[
    ("users_main", &["Uploaded", "Downloaded"]),
    (
        "torrents",
        &["Seeders", "Leechers", "Snatched", "balance", "last_action"],
    ),
];

/// What `ops` adds.
const REQUIRED_OPS: &[(&str, &[&str])] = &[
    ("users_leech_stats", &["UserID", "Uploaded", "Downloaded"]),
    (
        "torrents_leech_stats",
        &[
            "TorrentID",
            "Seeders",
            "Leechers",
            "Snatched",
            "Balance",
            "last_action",
        ],
    ),
];

/// A connection and what was read about the tables when it opened.
struct Open {
    conn: Conn,
    layout: Layout,
    /// `users_main.IP` exists (part of the protected-user rule).
    user_ip: bool,
}

/// The site's MySQL/MariaDB database.
pub struct Mysql {
    opts: Opts,
    /// `mysql://user@host:port/db`, without the password: for messages.
    name: String,
    schema: GazelleSchema,
    readonly: bool,
    open: Option<Open>,
    /// Statements smaller than the server allows (tests only set it).
    statement_max: Option<usize>,
}

impl Mysql {
    /// Connects to `url` (`mysql://user:password@host:port/db`, or with
    /// `?socket=/path` for a unix socket) and checks the tables of
    /// `schema`. Errors never show the password.
    pub fn open(url: &str, schema: GazelleSchema, readonly: bool) -> Result<Mysql, DbError> {
        let opts = Opts::from_url(url).map_err(|e| DbError(format!("database: {e}")))?;
        let name = display_name(&opts);
        if opts.get_db_name().is_none_or(str::is_empty) {
            return Err(DbError(format!(
                "{name}: the URL names no database (mysql://user:password@host:port/DBNAME)"
            )));
        }
        let via_socket = opts.get_socket().is_some();
        let opts: Opts = OptsBuilder::from_opts(opts)
            // A loopback TCP address stays TCP (the crate would switch to
            // the server's socket): the operator said where to connect.
            .prefer_socket(via_socket)
            .tcp_connect_timeout(Some(CONNECT_TIMEOUT))
            .read_timeout(Some(IO_TIMEOUT))
            .write_timeout(Some(IO_TIMEOUT))
            .into();
        let mut db = Mysql {
            opts,
            name,
            schema,
            readonly,
            open: None,
            statement_max: None,
        };
        db.connection()?;
        Ok(db)
    }

    /// The open connection, connecting (and reading the tables) first when
    /// there is none.
    fn connection(&mut self) -> Result<&mut Open, DbError> {
        if self.open.is_none() {
            let open = self.connect()?;
            self.open = Some(open);
        }
        self.open
            .as_mut()
            .ok_or_else(|| DbError(format!("{}: not connected", self.name)))
    }

    fn connect(&self) -> Result<Open, DbError> {
        let fail = |what: &str, e: mysql::Error| DbError(format!("{}: {what}: {e}", self.name));
        let mut conn = Conn::new(self.opts.clone()).map_err(|e| fail("connect", e))?;
        let tables = read_tables(&mut conn).map_err(|e| fail("reading the table columns", e))?;
        let extra = match self.schema {
            GazelleSchema::Classic => REQUIRED_CLASSIC,
            GazelleSchema::Ops => REQUIRED_OPS,
        };
        let mut missing = tables.missing(REQUIRED);
        missing.extend(tables.missing(extra));
        if !missing.is_empty() {
            return Err(DbError(format!(
                "{}: not a Gazelle database for gazelle_schema = {}: missing {}",
                self.name,
                self.schema.name(),
                missing.join(", ")
            )));
        }
        if let Some(c) = tables.get("xbt_files_users", "peer_id") {
            let binary = matches!(
                c.data_type.as_str(),
                "binary" | "varbinary" | "blob" | "tinyblob"
            );
            if !binary || c.max_len.is_some_and(|n| n < 20) {
                return Err(DbError(format!(
                    "{}: xbt_files_users.peer_id is {}({}); it must hold 20 raw bytes (binary(20))",
                    self.name,
                    c.data_type,
                    c.max_len.unwrap_or(0)
                )));
            }
        }
        let packet: Option<u64> = conn
            .query_first("SELECT @@max_allowed_packet")
            .map_err(|e| fail("max_allowed_packet", e))?;
        let packet = packet.map_or(1 << 20, |p| usize::try_from(p).unwrap_or(usize::MAX));
        let mut layout = Layout::new(&tables, self.schema, packet);
        if let Some(max) = self.statement_max {
            layout.statement_max = max;
        }
        if !self.readonly {
            for sql in STAGING {
                conn.query_drop(sql)
                    .map_err(|e| fail("temporary tables", e))?;
            }
        }
        Ok(Open {
            conn,
            layout,
            user_ip: tables.has("users_main", "IP"),
        })
    }

    /// Runs `f` on the connection; any error drops it (the next call
    /// reconnects) and is named by `what`.
    fn run<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut Open) -> mysql::Result<T>,
    ) -> Result<T, DbError> {
        let open = self.connection()?;
        match f(open) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.open = None;
                Err(DbError(format!("{}: {what}: {e}", self.name)))
            }
        }
    }
}

/// `mysql://user@host:port/db` (or `...?socket=PATH`), no password.
fn display_name(opts: &Opts) -> String {
    let user = opts.get_user().unwrap_or("");
    let db = opts.get_db_name().unwrap_or("");
    match opts.get_socket() {
        Some(socket) => format!("mysql://{user}@localhost/{db}?socket={socket}"),
        None => format!(
            "mysql://{user}@{}:{}/{db}",
            opts.get_ip_or_hostname(),
            opts.get_tcp_port()
        ),
    }
}

/// The columns of the tables hayate reads or writes.
fn read_tables(conn: &mut Conn) -> mysql::Result<Tables> {
    let mut tables = Tables::default();
    let rows: Vec<Row> = conn.query(
        "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_MAXIMUM_LENGTH, \
         CHARACTER_SET_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_NAME IN ('users_main', 'torrents', 'users_freeleeches', 'xbt_client_whitelist', \
         'xbt_files_users', 'xbt_snatched', 'users_leech_stats', 'torrents_leech_stats')",
    )?;
    for row in &rows {
        let text = |i| String::from_utf8_lossy(bytes(row.as_ref(i)).unwrap_or(b"")).into_owned();
        let column = Column {
            data_type: text(2).to_ascii_lowercase(),
            unsigned: text(3).to_ascii_lowercase().contains("unsigned"),
            max_len: int(row.as_ref(4)).and_then(|n| u64::try_from(n).ok()),
            charset: bytes(row.as_ref(5)).map(|b| String::from_utf8_lossy(b).to_ascii_lowercase()),
        };
        tables.insert(&text(0), &text(1), column);
    }
    Ok(tables)
}

/// A value's bytes (the text protocol sends every value as text).
fn bytes(v: Option<&Value>) -> Option<&[u8]> {
    match v {
        Some(Value::Bytes(b)) => Some(b),
        _ => None,
    }
}

/// An integer value, as text or binary.
fn int(v: Option<&Value>) -> Option<i128> {
    match v? {
        Value::Int(i) => Some(i128::from(*i)),
        Value::UInt(u) => Some(i128::from(*u)),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// An id column.
fn id(v: Option<&Value>) -> Option<u32> {
    int(v).and_then(|i| u32::try_from(i).ok())
}

/// A counter column; negative or NULL reads as 0.
fn count(v: Option<&Value>) -> u64 {
    int(v).map_or(0, |i| u64::try_from(i.max(0)).unwrap_or(u64::MAX))
}

/// Exactly `N` bytes.
fn fixed<const N: usize>(v: Option<&Value>) -> Option<[u8; N]> {
    bytes(v).and_then(|b| b.try_into().ok())
}

/// Reads every row of `sql`, keeping what `parse` accepts and warning
/// about the rest, named by `key` and the first column.
fn rows<T, Q: Queryable>(
    conn: &mut Q,
    sql: &str,
    key: &str,
    parse: impl Fn(&Row) -> Result<T, &'static str>,
) -> mysql::Result<Vec<T>> {
    let mut out = Vec::new();
    for row in conn.query_iter(sql)? {
        let row = row?;
        match parse(&row) {
            Ok(item) => out.push(item),
            Err(why) => log::warn!(
                "mysql: {key} {}: {why}; skipped",
                int(row.as_ref(0)).map_or_else(|| "?".to_owned(), |i| i.to_string())
            ),
        }
    }
    Ok(out)
}

fn user_of(row: &Row) -> Result<UserRow, &'static str> {
    Ok(UserRow {
        id: id(row.as_ref(0)).ok_or("ID is not a u32")?,
        can_leech: int(row.as_ref(1)).ok_or("can_leech is not an integer")? != 0,
        passkey: fixed(row.as_ref(2)).ok_or("torrent_pass is not 32 characters")?,
        // Unknown counts as protected: an IP is then never stored.
        protected: !matches!(int(row.as_ref(3)), Some(0)),
    })
}

fn torrent_of(row: &Row) -> Result<TorrentRow, &'static str> {
    Ok(TorrentRow {
        id: id(row.as_ref(0)).ok_or("ID is not a u32")?,
        info_hash: fixed(row.as_ref(1)).ok_or("info_hash is not 20 bytes")?,
        // enum('0','1','2') reads as its text; an unknown one as normal.
        free: match int(row.as_ref(2)) {
            Some(1) => 1,
            Some(2) => 2,
            _ => 0,
        },
        snatched: u32::try_from(count(row.as_ref(3))).unwrap_or(u32::MAX),
    })
}

fn peer_of(row: &Row) -> Result<LivePeer, &'static str> {
    Ok(LivePeer {
        torrent: id(row.as_ref(0)).ok_or("fid is not a u32")?,
        user: id(row.as_ref(1)).ok_or("uid is not a u32")?,
        peer_id: fixed(row.as_ref(2)).ok_or("peer_id is not 20 bytes")?,
        uploaded: count(row.as_ref(3)),
        downloaded: count(row.as_ref(4)),
        corrupt: count(row.as_ref(5)),
        left: count(row.as_ref(6)),
        ip: bytes(row.as_ref(7))
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.parse::<IpAddr>().ok()),
        port: int(row.as_ref(8))
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(0),
        mtime: int(row.as_ref(9))
            .and_then(|t| i64::try_from(t).ok())
            .ok_or("mtime is not an integer")?,
    })
}

impl Database for Mysql {
    fn load(&mut self) -> Result<Loaded, DbError> {
        let schema = self.schema;
        self.run("load", |open| {
            let users_sql = if open.user_ip {
                "SELECT ID, can_leech, torrent_pass, (Visible = '0' OR IP = '127.0.0.1') \
                 FROM users_main WHERE Enabled = '1'"
            } else {
                "SELECT ID, can_leech, torrent_pass, (Visible = '0') FROM users_main \
                 WHERE Enabled = '1'"
            };
            let torrents_sql = match schema {
                GazelleSchema::Classic => {
                    "SELECT ID, info_hash, FreeTorrent, Snatched FROM torrents"
                }
                GazelleSchema::Ops => {
                    "SELECT t.ID, t.info_hash, t.FreeTorrent, tls.Snatched FROM torrents AS t \
                     LEFT JOIN torrents_leech_stats AS tls ON tls.TorrentID = t.ID"
                }
            };
            // One consistent snapshot of the four.
            let opts = TxOpts::default()
                .set_with_consistent_snapshot(true)
                .set_access_mode(Some(AccessMode::ReadOnly));
            let mut tx = open.conn.start_transaction(opts)?;
            let loaded = Loaded {
                users: rows(&mut tx, users_sql, "users_main ID", user_of)?,
                torrents: rows(&mut tx, torrents_sql, "torrents ID", torrent_of)?,
                tokens: rows(
                    &mut tx,
                    "SELECT uf.UserID, uf.TorrentID FROM users_freeleeches AS uf \
                     JOIN torrents AS t ON t.ID = uf.TorrentID WHERE uf.Expired = '0'",
                    "users_freeleeches UserID",
                    |row| {
                        Ok(Token {
                            user: id(row.as_ref(0)).ok_or("UserID is not a u32")?,
                            torrent: id(row.as_ref(1)).ok_or("TorrentID is not a u32")?,
                        })
                    },
                )?,
                whitelist: rows(
                    &mut tx,
                    "SELECT 0, peer_id FROM xbt_client_whitelist",
                    "xbt_client_whitelist",
                    |row| {
                        bytes(row.as_ref(1))
                            .map(<[u8]>::to_vec)
                            .ok_or("peer_id is NULL")
                    },
                )?,
            };
            tx.commit()?;
            Ok(loaded)
        })
    }

    fn live_peers(&mut self, since: i64) -> Result<Vec<LivePeer>, DbError> {
        let readonly = self.readonly;
        self.run("live_peers", |open| {
            if !readonly {
                // Rows older than `since` can never be restored:
                // housekeeping (Ocelot truncates the whole table instead).
                open.conn
                    .query_drop(format!("DELETE FROM xbt_files_users WHERE mtime < {since}"))?;
            }
            let port = if open.layout.has_port { "port" } else { "0" };
            rows(
                &mut open.conn,
                &format!(
                    "SELECT fid, uid, peer_id, uploaded, downloaded, corrupt, remaining, ip, \
                     {port}, mtime FROM xbt_files_users WHERE active = 1 AND mtime >= {since}"
                ),
                "xbt_files_users fid",
                peer_of,
            )
        })
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), DbError> {
        if self.readonly || batch.is_empty() {
            return Ok(());
        }
        self.run("commit", |open| {
            let layout = &open.layout;
            let mut tx = open.conn.start_transaction(TxOpts::default())?;
            write::write_batch(layout, batch, &mut |sql| {
                let started = std::time::Instant::now();
                let result = tx.query_drop(sql);
                log::trace!(
                    "mysql: {:.1} ms, {} bytes: {}",
                    started.elapsed().as_secs_f64() * 1e3,
                    sql.len(),
                    sql.get(..60).unwrap_or(sql)
                );
                result
            })?;
            // On any error above, dropping `tx` rolls it all back (and the
            // connection is dropped with it).
            tx.commit()
        })
    }

    fn owns_site_tables(&self) -> bool {
        false
    }
}

#[cfg(test)]
impl Mysql {
    /// Statements of at most `max` bytes from the next connect on.
    pub fn set_statement_max(&mut self, max: usize) {
        self.statement_max = Some(max);
        self.open = None;
    }
}

/// Against the real server (`make test-mysql`; fails when unreachable):
/// a batch split into many statements lands whole or not at all.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{PeerRow, Snatch};

    fn server() -> String {
        std::env::var("HAYATE_TEST_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
    }

    #[test]
    fn mysql_a_batch_in_many_statements_is_one_transaction() {
        let name = format!("hayate_unit_{}_{}", std::process::id(), unix_nanos());
        let mut admin = Conn::new(Opts::from_url(&server()).unwrap())
            .unwrap_or_else(|e| panic!("MariaDB at {} unreachable: {e}", server()));
        admin
            .query_drop(format!("CREATE DATABASE `{name}`"))
            .unwrap();
        let url = format!("{}/{name}", server());
        let result = std::panic::catch_unwind(|| {
            let mut c = Conn::new(Opts::from_url(&url).unwrap()).unwrap();
            let ddl = include_str!("../../../tests/mysql/classic.sql");
            for s in ddl.split(";\n").filter(|s| s.contains("CREATE")) {
                c.query_drop(s).unwrap();
            }
            let mut db = Mysql::open(&url, GazelleSchema::Classic, false).unwrap();
            db.set_statement_max(8 << 10);
            let peers = |n: u32, up: u64| -> Vec<PeerRow> {
                (0..n)
                    .map(|i| PeerRow {
                        user: i % 50,
                        torrent: i % 7,
                        peer_id: {
                            let mut id = [0u8; 20];
                            id[..4].copy_from_slice(&i.to_be_bytes());
                            id
                        },
                        active: true,
                        uploaded: up,
                        mtime: 1_700_000_000,
                        ..PeerRow::default()
                    })
                    .collect()
            };
            let batch = Batch {
                peers: peers(3000, 1),
                ..Batch::default()
            };
            db.commit(&batch).unwrap();
            let count = |c: &mut Conn, sql: &str| -> u64 { c.query_first(sql).unwrap().unwrap() };
            assert_eq!(count(&mut c, "SELECT count(*) FROM xbt_files_users"), 3000);
            // The last statement fails (its table is gone): the peer rows
            // sent before it, in many statements, are rolled back.
            c.query_drop("DROP TABLE xbt_snatched").unwrap();
            let batch = Batch {
                peers: peers(3000, 2),
                snatches: vec![Snatch {
                    user: 1,
                    torrent: 1,
                    time: 1,
                    ip: None,
                }],
                ..Batch::default()
            };
            assert!(db.commit(&batch).is_err());
            let sum = "SELECT CAST(SUM(uploaded) AS UNSIGNED) FROM xbt_files_users";
            assert_eq!(
                count(&mut c, sum),
                3000,
                "nothing of the failed batch stayed"
            );
        });
        admin.query_drop(format!("DROP DATABASE `{name}`")).unwrap();
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
    }

    fn unix_nanos() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    }
}
