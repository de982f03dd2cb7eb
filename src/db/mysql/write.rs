//! A batch as SQL for a Gazelle database: multi-row statements, each under
//! the server's `max_allowed_packet`, all run inside the one transaction
//! the caller opened. Values go in as literals: numbers as digits, every
//! string (`peer_id`, `useragent`, `ip`) as a hex literal, so no byte a
//! client sent is ever parsed as SQL and a NUL in a `peer_id` is just a
//! byte. Each value is first fitted to its column (`Layout`).

use std::fmt::Write as _;

use super::columns::{clamp, fit_ip, fit_text, Charset, Tables};
use crate::db::{ip_text, Batch, GazelleSchema};

/// Bytes a statement leaves free under `max_allowed_packet` (the packet
/// header and the command byte, with room to spare).
const PACKET_SLACK: usize = 1024;

/// Longest statement hayate builds even when the server takes more:
/// bigger ones gain nothing and hold more memory.
const STATEMENT_MAX: usize = 4 << 20;

/// What each column takes, read once per connection: the sizes and ranges
/// values are fitted to, and which optional columns exist.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Which tables hold credit and swarm counts.
    pub schema: GazelleSchema,
    /// Longest statement to send, in bytes.
    pub statement_max: usize,
    user_credit: (i128, i128),
    counts: (i128, i128),
    snatched: (i128, i128),
    balance: (i128, i128),
    counter: (i128, i128),
    speed: (i128, i128),
    timespent: (i128, i128),
    announced: (i128, i128),
    mtime: (i128, i128),
    ip_chars: usize,
    snatch_ip_chars: usize,
    useragent_chars: usize,
    useragent_charset: Charset,
    snatch_time: (i128, i128),
    token_downloaded: (i128, i128),
    /// `xbt_files_users.port` exists (not in Gazelle; a site may add it so
    /// restored peers can be handed out before they announce again).
    pub has_port: bool,
    /// `users_freeleeches.Time` exists.
    token_time: bool,
}

impl Layout {
    /// The layout of `tables` for `schema`, statements under
    /// `max_allowed_packet` bytes.
    pub fn new(tables: &Tables, schema: GazelleSchema, max_allowed_packet: usize) -> Layout {
        let (users, up, torrents, balance) = match schema {
            GazelleSchema::Classic => ("users_main", "Uploaded", "torrents", "balance"),
            GazelleSchema::Ops => (
                "users_leech_stats",
                "Uploaded",
                "torrents_leech_stats",
                "Balance",
            ),
        };
        let narrowest = |a: (i128, i128), b: (i128, i128)| (a.0.max(b.0), a.1.min(b.1));
        let fu = "xbt_files_users";
        Layout {
            schema,
            statement_max: max_allowed_packet
                .saturating_sub(PACKET_SLACK)
                .clamp(PACKET_SLACK, STATEMENT_MAX),
            user_credit: narrowest(tables.range(users, up), tables.range(users, "Downloaded")),
            counts: narrowest(
                tables.range(torrents, "Seeders"),
                tables.range(torrents, "Leechers"),
            ),
            snatched: tables.range(torrents, "Snatched"),
            balance: tables.range(torrents, balance),
            counter: [
                tables.range(fu, "downloaded"),
                tables.range(fu, "remaining"),
                tables.range(fu, "corrupt"),
            ]
            .into_iter()
            .fold(tables.range(fu, "uploaded"), narrowest),
            speed: narrowest(tables.range(fu, "upspeed"), tables.range(fu, "downspeed")),
            timespent: tables.range(fu, "timespent"),
            announced: tables.range(fu, "announced"),
            mtime: tables.range(fu, "mtime"),
            ip_chars: tables.chars(fu, "ip"),
            snatch_ip_chars: tables.chars("xbt_snatched", "IP"),
            useragent_chars: tables.chars(fu, "useragent"),
            useragent_charset: tables.charset(fu, "useragent"),
            snatch_time: tables.range("xbt_snatched", "tstamp"),
            token_downloaded: tables.range("users_freeleeches", "Downloaded"),
            has_port: tables.has(fu, "port"),
            token_time: tables.has("users_freeleeches", "Time"),
        }
    }
}

/// The temporary tables a batch stages credit and swarm counts in, applied
/// from there to the rows the site has (classic: an UPDATE, since an
/// `INSERT ... ON DUPLICATE KEY UPDATE` into `users_main` or `torrents`
/// fails in strict mode on their columns without defaults; ops: an
/// `INSERT ... SELECT` joined with `users_main` or `torrents`, so a row the
/// site deleted cannot trip a foreign key). Column names start with `h_`,
/// so none is ambiguous beside the site's. Created once per connection.
pub const STAGING: &[&str] = &[
    "CREATE TEMPORARY TABLE IF NOT EXISTS hayate_users (ID int unsigned NOT NULL PRIMARY KEY, \
     h_up bigint unsigned NOT NULL, h_down bigint unsigned NOT NULL)",
    "CREATE TEMPORARY TABLE IF NOT EXISTS hayate_torrents (ID int unsigned NOT NULL PRIMARY KEY, \
     h_seeders bigint NOT NULL, h_leechers bigint NOT NULL, h_snatched bigint NOT NULL, \
     h_balance bigint NOT NULL, h_last_action bigint NULL)",
];

/// Rows of one multi-row statement, sent as the statement grows past the
/// layout's limit and at `finish`.
struct Rows<'r, E> {
    head: String,
    tail: String,
    limit: usize,
    sql: String,
    rows: usize,
    run: &'r mut dyn FnMut(&str) -> Result<(), E>,
}

impl<'r, E> Rows<'r, E> {
    fn new(
        head: String,
        tail: String,
        limit: usize,
        run: &'r mut dyn FnMut(&str) -> Result<(), E>,
    ) -> Self {
        Rows {
            sql: String::with_capacity(limit.min(1 << 20)),
            head,
            tail,
            limit,
            rows: 0,
            run,
        }
    }

    /// Adds one `(...)` row.
    fn push(&mut self, row: &str) -> Result<(), E> {
        let grown = self.sql.len() + 1 + row.len() + self.tail.len();
        if self.rows > 0 && grown > self.limit {
            self.send()?;
        }
        if self.rows == 0 {
            self.sql.clear();
            self.sql.push_str(&self.head);
        } else {
            self.sql.push(',');
        }
        self.sql.push_str(row);
        self.rows += 1;
        Ok(())
    }

    fn send(&mut self) -> Result<(), E> {
        if self.rows > 0 {
            self.sql.push_str(&self.tail);
            (self.run)(&self.sql)?;
            self.rows = 0;
        }
        Ok(())
    }

    /// Sends what is left.
    fn finish(mut self) -> Result<(), E> {
        self.send()
    }
}

/// `bytes` as a hex literal (`X'...'`, or `''` when empty).
fn hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    if bytes.is_empty() {
        out.push_str("''");
        return;
    }
    out.push_str("X'");
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out.push('\'');
}

/// `v` fitted to `range`, as digits.
fn num(out: &mut String, v: impl Into<i128>, range: (i128, i128)) {
    let _ = write!(out, "{}", clamp(v.into(), range));
}

/// A sum that cannot overflow in SQL (DECIMAL arithmetic), kept in range.
fn add(column: &str, value: &str, range: (i128, i128)) -> String {
    format!(
        "{column} = GREATEST(LEAST(CAST({column} AS DECIMAL(40)) + {value}, {}), {})",
        range.1, range.0
    )
}

/// Runs every statement of `batch` through `run`, in order: credit, swarm
/// counts, peer baselines, snatches, token downloads. The caller holds the
/// transaction; any error stops here and the caller rolls back.
pub fn write_batch<E>(
    layout: &Layout,
    batch: &Batch,
    run: &mut dyn FnMut(&str) -> Result<(), E>,
) -> Result<(), E> {
    let limit = layout.statement_max;
    let mut row = String::with_capacity(512);
    if !batch.users.is_empty() {
        // Staged, then applied to the rows of users the site has: credit
        // for a user deleted meanwhile is dropped, never a failed batch
        // (OPS's users_leech_stats has a foreign key to users_main).
        let r = layout.user_credit;
        run("DELETE FROM hayate_users")?;
        let mut rows = Rows::new(
            "INSERT INTO hayate_users (ID, h_up, h_down) VALUES ".to_owned(),
            String::new(),
            limit,
            run,
        );
        for c in &batch.users {
            row.clear();
            let _ = write!(row, "({},", c.id);
            num(&mut row, c.uploaded, (0, r.1.max(0)));
            row.push(',');
            num(&mut row, c.downloaded, (0, r.1.max(0)));
            row.push(')');
            rows.push(&row)?;
        }
        rows.finish()?;
        run(&match layout.schema {
            GazelleSchema::Ops => format!(
                "INSERT INTO users_leech_stats (UserID, Uploaded, Downloaded) \
                 SELECT c.ID, c.h_up, c.h_down FROM hayate_users AS c \
                 JOIN users_main AS u ON u.ID = c.ID ON DUPLICATE KEY UPDATE {}, {}",
                add("Uploaded", "VALUES(Uploaded)", r),
                add("Downloaded", "VALUES(Downloaded)", r)
            ),
            GazelleSchema::Classic => format!(
                "UPDATE users_main AS u JOIN hayate_users AS c ON c.ID = u.ID SET {}, {}",
                add("u.Uploaded", "c.h_up", r),
                add("u.Downloaded", "c.h_down", r)
            ),
        })?;
    }
    if !batch.torrents.is_empty() {
        // Staged likewise: a torrent deleted at the site meanwhile is
        // skipped (torrents_leech_stats has a foreign key to torrents).
        let (counts, snatched, balance) = (layout.counts, layout.snatched, layout.balance);
        run("DELETE FROM hayate_torrents")?;
        let mut rows = Rows::new(
            "INSERT INTO hayate_torrents (ID, h_seeders, h_leechers, h_snatched, h_balance, \
             h_last_action) VALUES "
                .to_owned(),
            String::new(),
            limit,
            run,
        );
        for t in &batch.torrents {
            row.clear();
            let _ = write!(row, "({},", t.id);
            num(&mut row, t.seeders, counts);
            row.push(',');
            num(&mut row, t.leechers, counts);
            row.push(',');
            num(&mut row, t.snatched, (0, snatched.1.max(0)));
            row.push(',');
            num(&mut row, t.balance, balance);
            match t.last_action {
                Some(at) => {
                    let _ = write!(row, ",{})", at.max(0));
                }
                None => row.push_str(",NULL)"),
            }
            rows.push(&row)?;
        }
        rows.finish()?;
        run(&match layout.schema {
            GazelleSchema::Ops => format!(
                "INSERT INTO torrents_leech_stats (TorrentID, Seeders, Leechers, Snatched, Balance, \
                 last_action) SELECT c.ID, c.h_seeders, c.h_leechers, c.h_snatched, c.h_balance, \
                 FROM_UNIXTIME(c.h_last_action) FROM hayate_torrents AS c \
                 JOIN torrents AS t ON t.ID = c.ID ON DUPLICATE KEY UPDATE \
                 Seeders = VALUES(Seeders), Leechers = VALUES(Leechers), {}, {}, \
                 last_action = COALESCE(VALUES(last_action), last_action)",
                add("Snatched", "VALUES(Snatched)", snatched),
                add("Balance", "VALUES(Balance)", balance),
            ),
            GazelleSchema::Classic => format!(
                "UPDATE torrents AS t JOIN hayate_torrents AS c ON c.ID = t.ID SET \
                 t.Seeders = c.h_seeders, t.Leechers = c.h_leechers, {}, {}, \
                 t.last_action = COALESCE(FROM_UNIXTIME(c.h_last_action), t.last_action)",
                add("t.Snatched", "c.h_snatched", snatched),
                add("t.balance", "c.h_balance", balance),
            ),
        })?;
    }
    if !batch.peers.is_empty() {
        write_peers(layout, batch, run)?;
    }
    if !batch.snatches.is_empty() {
        let mut rows = Rows::new(
            "INSERT INTO xbt_snatched (uid, fid, tstamp, IP) VALUES ".to_owned(),
            String::new(),
            limit,
            run,
        );
        for s in &batch.snatches {
            row.clear();
            let _ = write!(row, "({},{},", s.user, s.torrent);
            num(&mut row, s.time, layout.snatch_time);
            row.push(',');
            hex(
                &mut row,
                fit_ip(&ip_text(s.ip), layout.snatch_ip_chars).as_bytes(),
            );
            row.push(')');
            rows.push(&row)?;
        }
        rows.finish()?;
    }
    if !batch.tokens.is_empty() {
        // A token row removed meanwhile is recreated expired: the bytes
        // are kept, not lost.
        let (cols, time) = if layout.token_time {
            ("UserID, TorrentID, Time, Expired, Downloaded", "NOW(),")
        } else {
            ("UserID, TorrentID, Expired, Downloaded", "")
        };
        let range = layout.token_downloaded;
        let mut rows = Rows::new(
            format!("INSERT INTO users_freeleeches ({cols}) VALUES "),
            format!(
                " ON DUPLICATE KEY UPDATE {}",
                add("Downloaded", "VALUES(Downloaded)", range)
            ),
            limit,
            run,
        );
        for t in &batch.tokens {
            row.clear();
            let _ = write!(row, "({},{},{time}'1',", t.token.user, t.token.torrent);
            num(&mut row, t.downloaded, (0, range.1.max(0)));
            row.push(')');
            rows.push(&row)?;
        }
        rows.finish()?;
    }
    Ok(())
}

/// The peers' rows of `xbt_files_users`, upserted on `(peer_id, fid, uid)`.
fn write_peers<E>(
    layout: &Layout,
    batch: &Batch,
    run: &mut dyn FnMut(&str) -> Result<(), E>,
) -> Result<(), E> {
    let port = if layout.has_port { "port, " } else { "" };
    let port_update = if layout.has_port {
        "port = VALUES(port), "
    } else {
        ""
    };
    let head = format!(
        "INSERT INTO xbt_files_users (uid, fid, active, uploaded, downloaded, upspeed, downspeed, \
         remaining, corrupt, timespent, announced, ip, {port}peer_id, useragent, mtime) VALUES "
    );
    let tail = format!(
        " ON DUPLICATE KEY UPDATE active = VALUES(active), uploaded = VALUES(uploaded), \
         downloaded = VALUES(downloaded), upspeed = VALUES(upspeed), \
         downspeed = VALUES(downspeed), remaining = VALUES(remaining), \
         corrupt = VALUES(corrupt), {}, {}, ip = VALUES(ip), {port_update}\
         useragent = VALUES(useragent), mtime = VALUES(mtime)",
        add("timespent", "VALUES(timespent)", layout.timespent),
        add("announced", "VALUES(announced)", layout.announced),
    );
    let mut rows = Rows::new(head, tail, layout.statement_max, run);
    let mut row = String::with_capacity(512);
    for p in &batch.peers {
        row.clear();
        let _ = write!(row, "({},{},{},", p.user, p.torrent, u8::from(p.active));
        for v in [p.uploaded, p.downloaded] {
            num(&mut row, v, layout.counter);
            row.push(',');
        }
        num(&mut row, p.upspeed, layout.speed);
        row.push(',');
        num(&mut row, p.downspeed, layout.speed);
        row.push(',');
        num(&mut row, p.left, layout.counter);
        row.push(',');
        num(&mut row, p.corrupt, layout.counter);
        row.push(',');
        num(&mut row, p.timespent, (0, layout.timespent.1.max(0)));
        row.push(',');
        num(&mut row, p.announced, (0, layout.announced.1.max(0)));
        row.push(',');
        hex(&mut row, fit_ip(&ip_text(p.ip), layout.ip_chars).as_bytes());
        row.push(',');
        if layout.has_port {
            let _ = write!(row, "{},", p.port);
        }
        hex(&mut row, &p.peer_id);
        row.push(',');
        let ua = p.useragent.text();
        let ua = fit_text(&ua, layout.useragent_chars, layout.useragent_charset);
        hex(&mut row, ua.as_bytes());
        row.push(',');
        num(&mut row, p.mtime, layout.mtime);
        row.push(')');
        rows.push(&row)?;
    }
    rows.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{PeerRow, UserCredit};

    #[test]
    fn statements_stay_under_the_limit_and_carry_every_row() {
        let mut layout = Layout::new(&Tables::default(), GazelleSchema::Ops, 1 << 20);
        layout.statement_max = 2048;
        let batch = Batch {
            users: (1..=500)
                .map(|id| UserCredit {
                    id,
                    uploaded: u64::MAX,
                    downloaded: 7,
                })
                .collect(),
            peers: (1..=300)
                .map(|user| PeerRow {
                    user,
                    peer_id: [0; 20],
                    useragent: "x".repeat(100).as_str().into(),
                    ..PeerRow::default()
                })
                .collect(),
            ..Batch::default()
        };
        let mut sent = Vec::new();
        write_batch::<()>(&layout, &batch, &mut |sql| {
            sent.push(sql.to_owned());
            Ok(())
        })
        .unwrap();
        assert!(sent.len() > 10, "{} statements", sent.len());
        assert!(sent.iter().all(|s| s.len() <= 2048));
        let users: usize = sent
            .iter()
            .filter(|s| s.starts_with("INSERT INTO hayate_users"))
            .map(|s| s.matches("),(").count() + 1)
            .sum();
        assert_eq!(users, 500);
        let peers: usize = sent
            .iter()
            .filter(|s| s.starts_with("INSERT INTO xbt_files_users"))
            .map(|s| s.matches("),(").count() + 1)
            .sum();
        assert_eq!(peers, 300);
        // Fitted: BIGINT's range, a NUL peer_id as hex, the agent cut.
        assert_eq!(sent[0], "DELETE FROM hayate_users");
        assert!(sent[1].contains(&format!("(1,{},7)", i64::MAX)));
        let peer = sent.iter().find(|s| s.contains("xbt_files_users")).unwrap();
        assert!(peer.contains(&format!("X'{}'", "00".repeat(20))));
    }
}
