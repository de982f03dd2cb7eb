//! Private mode (../shared/GAZELLE.md, the Gazelle/Ocelot contract) over
//! real sockets, IPv4 and IPv6, on a fresh SQLite file per test: every
//! control action (idempotent, written through to the database, kept over
//! a restart), every failure text in its order, credit arithmetic read
//! back from the database, peer rules, protected users, UDP with the
//! passkey as BEP 41 URL data, the report API, reloads as a diff, credit
//! exactly once under concurrency and across a locked database, public
//! mode serving no private URL, and the binary's config errors.
//!
//! Tests marked `#[ignore = "BUG: ..."]` would show open bugs; run them with
//! `cargo test --test private_api -- --include-ignored`.

mod common;

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hayate::config::Mode;
use hayate::{Config, Server};
use rusqlite::Connection;
use serde_bencode::value::Value;

/// `site_password`: the secret of `/<site_password>/update`.
const SITE: &str = "ssssssssssssssssssssssssssssssss";
/// `report_password`: the secret of `/<report_password>/report`.
const REPORT: &str = "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr";
/// How long anything asynchronous (a commit, a reload) may take.
const WAIT: Duration = Duration::from_secs(5);
const LOCAL4: [u8; 4] = [127, 0, 0, 1];
const LOCAL6: [u8; 16] = Ipv6Addr::LOCALHOST.octets();

/// Gazelle's deletion reasons by code (GAZELLE.md), copied, not imported.
const REASONS: [&str; 23] = [
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

// ---------------------------------------------------------------- helpers

/// User `id`'s passkey: 32 characters.
fn pk(id: u32) -> String {
    format!("passkey{id:025}")
}

/// Torrent `n`'s info hash.
fn ih(n: u8) -> [u8; 20] {
    [n; 20]
}

/// A 20-byte peer id: `prefix` (a client, for the whitelist), then `tag`,
/// padded with dots.
fn peer_id(prefix: &str, tag: &str) -> [u8; 20] {
    let mut id = [b'.'; 20];
    let text = format!("{prefix}{tag}");
    id[..text.len()].copy_from_slice(text.as_bytes());
    id
}

/// A peer id of the default client (`-HY0001-`).
fn pid(tag: &str) -> [u8; 20] {
    peer_id("-HY0001-", tag)
}

/// Announce parameters after `info_hash` and `peer_id`; `event` "" = none.
fn q(port: u16, up: u64, down: u64, left: u64, event: &str) -> String {
    let mut s = format!("&port={port}&uploaded={up}&downloaded={down}&left={left}");
    if !event.is_empty() {
        s.push_str("&event=");
        s.push_str(event);
    }
    s
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn temp_db() -> PathBuf {
    std::env::temp_dir().join(format!(
        "hayate-private-{}-{}.db",
        std::process::id(),
        unique()
    ))
}

/// Removes a database file and its WAL companions.
fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// The test config in private mode on the SQLite file `path`.
fn private_config(path: &Path) -> Config {
    let mut c = config();
    c.mode = Mode::Private;
    c.site_password = SITE.into();
    c.report_password = REPORT.into();
    c.database = format!("sqlite:{}", path.display());
    c.flush_interval = Duration::from_millis(100);
    c
}

/// An HTTP reply with the request that got it, for assertion messages.
struct Reply {
    request: String,
    response: Response,
}

impl Reply {
    fn context(&self) -> String {
        format!(
            "request: {}\nresponse: {} {:?}",
            self.request,
            self.response.status,
            self.response.text()
        )
    }

    /// The bencoded body.
    fn value(&self) -> Value {
        assert_eq!(self.response.status, 200, "{}", self.context());
        serde_bencode::from_bytes(&self.response.body)
            .unwrap_or_else(|e| panic!("not bencode ({e})\n{}", self.context()))
    }

    /// The reply of an announce that must succeed.
    fn ok(&self) -> Value {
        let v = self.value();
        assert_eq!(failure(&v), None, "refused\n{}", self.context());
        v
    }

    /// Asserts the exact failure text (and that failures carry `min interval`).
    fn refused(&self, text: &str) {
        let v = self.value();
        assert_eq!(failure(&v).as_deref(), Some(text), "{}", self.context());
        assert!(
            matches!(field(&v, "min interval"), Some(Value::Int(_))),
            "failure without min interval\n{}",
            self.context()
        );
    }

    /// (IPv4 ports, IPv6 ports) handed out, each list checked for loopback.
    fn ports(&self) -> (BTreeSet<u16>, BTreeSet<u16>) {
        let v = self.ok();
        let mut four = BTreeSet::new();
        for (ip, port) in peers4(&v) {
            assert_eq!(ip, LOCAL4, "{}", self.context());
            assert!(four.insert(port), "peer twice\n{}", self.context());
        }
        let mut six = BTreeSet::new();
        for (ip, port) in peers6(&v) {
            assert_eq!(ip, LOCAL6, "{}", self.context());
            assert!(six.insert(port), "peer twice\n{}", self.context());
        }
        (four, six)
    }
}

/// GET `target` from `addr`, remembered for assertion messages.
fn request(addr: SocketAddr, target: &str) -> Reply {
    Reply {
        request: format!("GET {target} via {addr}"),
        response: get(addr, target),
    }
}

/// An announce to `addr` (a `Site` is not shared across threads; this is).
fn announce_at(
    addr: SocketAddr,
    passkey: &str,
    hash: &[u8; 20],
    peer_id: &[u8],
    params: &str,
) -> Reply {
    let target = format!(
        "/{passkey}/announce?info_hash={}&peer_id={}{params}",
        pct(hash),
        pct(peer_id)
    );
    request(addr, &target)
}

/// One keep-alive HTTP connection: its requests stay on one worker.
struct KeepAlive {
    addr: SocketAddr,
    stream: std::net::TcpStream,
    replies: std::io::BufReader<std::net::TcpStream>,
}

impl KeepAlive {
    fn new(addr: SocketAddr) -> KeepAlive {
        let stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let replies = std::io::BufReader::new(stream.try_clone().unwrap());
        KeepAlive {
            addr,
            stream,
            replies,
        }
    }

    fn get(&mut self, target: &str) -> Reply {
        use std::io::Write;
        let head = format!("GET {target} HTTP/1.1\r\nHost: tracker\r\n\r\n");
        self.stream.write_all(head.as_bytes()).expect("write");
        let response = read_response(&mut self.replies)
            .unwrap_or_else(|| panic!("no response to {target} via {}", self.addr));
        Reply {
            request: format!("GET {target} via {} (keep-alive)", self.addr),
            response,
        }
    }

    fn announce(&mut self, passkey: &str, hash: &[u8; 20], peer_id: &[u8], params: &str) -> Reply {
        self.get(&format!(
            "/{passkey}/announce?info_hash={}&peer_id={}{params}",
            pct(hash),
            pct(peer_id)
        ))
    }
}

fn set(ports: &[u16]) -> BTreeSet<u16> {
    ports.iter().copied().collect()
}

/// A private tracker on its own SQLite file, with the site's view of it.
struct Site {
    server: Option<Server>,
    path: PathBuf,
    http: Vec<SocketAddr>,
    udp: Vec<SocketAddr>,
}

impl Site {
    fn new() -> Site {
        Site::with(|_| {})
    }

    /// A site whose config `tune` adjusts.
    fn with(tune: impl Fn(&mut Config)) -> Site {
        let mut site = Site {
            server: None,
            path: temp_db(),
            http: Vec::new(),
            udp: Vec::new(),
        };
        site.start(tune);
        site
    }

    fn start(&mut self, tune: impl Fn(&mut Config)) {
        let mut c = private_config(&self.path);
        tune(&mut c);
        let s = start(c);
        self.http = s.http_addrs().to_vec();
        self.udp = s.udp_addrs().to_vec();
        self.server = Some(s);
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("server running")
    }

    fn v4(&self) -> SocketAddr {
        self.http[0]
    }

    fn v6(&self) -> SocketAddr {
        self.http[1]
    }

    /// A control call; the body as text.
    fn update(&self, query: &str) -> String {
        get(self.v4(), &format!("/{SITE}/update?{query}")).text()
    }

    /// A control call made from another thread: it is answered only once
    /// its change is committed (`join` gives the reply).
    fn update_later(&self, query: &str) -> std::thread::JoinHandle<String> {
        let (addr, target) = (self.v4(), format!("/{SITE}/update?{query}"));
        std::thread::spawn(move || get(addr, &target).text())
    }

    /// A control call that must answer `success`, made twice (the site
    /// retries: every action is idempotent).
    fn ok(&self, query: &str) {
        for attempt in 1..=2 {
            let got = self.update(query);
            assert_eq!(got, "success", "update?{query} (call {attempt})");
        }
    }

    /// Registers user `id` (visible); returns its passkey.
    fn user(&self, id: u32) -> String {
        self.ok(&format!(
            "action=add_user&passkey={}&id={id}&visible=1",
            pk(id)
        ));
        pk(id)
    }

    /// Registers torrent `id` with leech type `free`.
    fn torrent(&self, hash: &[u8; 20], id: u32, free: u8) {
        self.ok(&format!(
            "action=add_torrent&info_hash={}&id={id}&freetorrent={free}",
            pct(hash)
        ));
    }

    /// An announce over IPv4.
    fn announce(&self, passkey: &str, hash: &[u8; 20], peer_id: &[u8], params: &str) -> Reply {
        self.announce_at(self.v4(), passkey, hash, peer_id, params)
    }

    /// An announce to `addr` (`v4()` or `v6()`).
    fn announce_at(
        &self,
        addr: SocketAddr,
        passkey: &str,
        hash: &[u8; 20],
        peer_id: &[u8],
        params: &str,
    ) -> Reply {
        announce_at(addr, passkey, hash, peer_id, params)
    }

    fn request(&self, addr: SocketAddr, target: &str) -> Reply {
        request(addr, target)
    }

    /// The report API's answer.
    fn report(&self, query: &str) -> String {
        get(self.v4(), &format!("/{REPORT}/report?{query}")).text()
    }

    /// The stats page.
    fn stats(&self) -> String {
        let r = get(self.v4(), "/stats");
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
    }

    /// Waits until `name` on the stats page is `want`.
    fn wait_metric(&self, name: &str, want: u64) {
        self.wait_metric_where(name, &format!("= {want}"), |n| n == want);
    }

    /// Waits until `name` on the stats page satisfies `cond` (`what` says it).
    fn wait_metric_where(&self, name: &str, what: &str, cond: impl Fn(u64) -> bool) {
        let mut last = None;
        let ok = wait_until(WAIT, || {
            last = metric(&self.stats(), name);
            last.is_some_and(&cond)
        });
        assert!(ok, "{name}: want {what}, got {last:?}\n{}", self.stats());
    }

    /// A connection to the database file (the site's view).
    fn db(&self) -> Connection {
        let db = Connection::open(&self.path).expect("open the database");
        db.busy_timeout(Duration::from_secs(5)).unwrap();
        db
    }

    /// Polls the database until `read` gives `want` (the flusher commits
    /// every `flush_interval`).
    fn wait_db<T: PartialEq + Debug>(&self, want: T, read: impl Fn(&Connection) -> T) {
        let db = self.db();
        let mut last = None;
        let ok = wait_until(WAIT, || {
            let got = read(&db);
            let done = got == want;
            last = Some(got);
            done
        });
        assert!(ok, "database: want {want:?}, got {last:?}");
    }

    /// Stops the server: its last batch is committed. The file stays.
    fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
        }
    }

    /// A new server on the same file.
    fn restart(&mut self) {
        self.stop();
        self.start(|_| {});
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop();
        remove_db(&self.path);
    }
}

/// (Uploaded, Downloaded) of a user in `users_main`.
fn credit(db: &Connection, user: u32) -> (i64, i64) {
    db.query_row(
        "SELECT Uploaded, Downloaded FROM users_main WHERE ID = ?1",
        [user],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap_or_else(|e| panic!("users_main {user}: {e}"))
}

/// Every row of `sql` as `f` reads it.
fn rows<T>(
    db: &Connection,
    sql: &str,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Vec<T> {
    let mut stmt = db.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let out = stmt
        .query_map([], f)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect::<Result<Vec<T>, _>>()
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    out
}

/// A count from `sql`.
fn count(db: &Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Text or blob column as bytes (the site may store either).
fn bytes_col(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Vec<u8>> {
    Ok(r.get_ref(i)?
        .as_bytes()
        .map(<[u8]>::to_vec)
        .unwrap_or_default())
}

// ----------------------------------------------------------- UDP client

/// A BEP 15 client on its own socket, with BEP 41 URL data.
struct Udp {
    sock: UdpSocket,
    server: SocketAddr,
    tx: i32,
}

#[derive(Debug, PartialEq)]
enum UdpReply {
    /// Action 1: interval, leechers, seeders, (address, port) peers.
    Peers {
        interval: i32,
        leechers: i32,
        seeders: i32,
        peers: Vec<(Vec<u8>, u16)>,
    },
    /// Action 3: the message.
    Error(String),
}

impl UdpReply {
    fn peers(&self) -> BTreeSet<u16> {
        match self {
            UdpReply::Peers { peers, .. } => peers.iter().map(|p| p.1).collect(),
            UdpReply::Error(e) => panic!("UDP announce refused: {e}"),
        }
    }
}

fn i32_at(d: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(d[at..at + 4].try_into().unwrap())
}

/// BEP 15's event codes.
fn udp_event(event: &str) -> i32 {
    match event {
        "" => 0,
        "completed" => 1,
        "started" => 2,
        "stopped" => 3,
        other => panic!("no UDP event {other}"),
    }
}

impl Udp {
    fn new(server: SocketAddr) -> Udp {
        let bind = if server.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        };
        let sock = UdpSocket::bind(bind).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        Udp {
            sock,
            server,
            tx: 0x2000,
        }
    }

    fn exchange(&self, d: &[u8]) -> Vec<u8> {
        self.sock.send_to(d, self.server).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = self
            .sock
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("no UDP reply from {} to {}: {e}", self.server, hex(d)));
        buf[..n].to_vec()
    }

    fn connect(&mut self) -> i64 {
        self.tx += 1;
        let mut d = 0x0417_2710_1980i64.to_be_bytes().to_vec();
        d.extend_from_slice(&0i32.to_be_bytes());
        d.extend_from_slice(&self.tx.to_be_bytes());
        let r = self.exchange(&d);
        assert_eq!((r.len(), i32_at(&r, 0), i32_at(&r, 4)), (16, 0, self.tx));
        i64::from_be_bytes(r[8..16].try_into().unwrap())
    }

    /// Connects, then scrapes: (seeders, completed, leechers) per hash,
    /// or the error message.
    fn scrape(&mut self, hashes: &[[u8; 20]]) -> Result<Vec<(i32, i32, i32)>, String> {
        let conn = self.connect();
        self.tx += 1;
        let mut d = conn.to_be_bytes().to_vec();
        d.extend_from_slice(&2i32.to_be_bytes());
        d.extend_from_slice(&self.tx.to_be_bytes());
        for h in hashes {
            d.extend_from_slice(h);
        }
        let r = self.exchange(&d);
        assert_eq!(i32_at(&r, 4), self.tx, "{}", hex(&r));
        match i32_at(&r, 0) {
            2 => Ok(r[8..]
                .chunks(12)
                .map(|c| (i32_at(c, 0), i32_at(c, 4), i32_at(c, 8)))
                .collect()),
            3 => Err(String::from_utf8_lossy(&r[8..]).into_owned()),
            other => panic!("UDP action {other}: {}", hex(&r)),
        }
    }

    /// Connects, then announces with `url` as BEP 41 URL data (one type-2
    /// option per piece; none when empty). `c`: (uploaded, downloaded, left).
    fn announce(
        &mut self,
        url: &[&str],
        hash: &[u8; 20],
        peer_id: &[u8; 20],
        port: u16,
        c: (u64, u64, u64),
        event: &str,
    ) -> UdpReply {
        let conn = self.connect();
        self.tx += 1;
        let mut d = conn.to_be_bytes().to_vec();
        d.extend_from_slice(&1i32.to_be_bytes());
        d.extend_from_slice(&self.tx.to_be_bytes());
        d.extend_from_slice(hash);
        d.extend_from_slice(peer_id);
        d.extend_from_slice(&c.1.to_be_bytes());
        d.extend_from_slice(&c.2.to_be_bytes());
        d.extend_from_slice(&c.0.to_be_bytes());
        d.extend_from_slice(&udp_event(event).to_be_bytes());
        d.extend_from_slice(&0u32.to_be_bytes()); // ip
        d.extend_from_slice(&7u32.to_be_bytes()); // key
        d.extend_from_slice(&(-1i32).to_be_bytes()); // num_want
        d.extend_from_slice(&port.to_be_bytes());
        for piece in url {
            d.push(2);
            d.push(u8::try_from(piece.len()).unwrap());
            d.extend_from_slice(piece.as_bytes());
        }
        if !url.is_empty() {
            d.push(0);
        }
        let r = self.exchange(&d);
        assert_eq!(i32_at(&r, 4), self.tx, "transaction id: {}", hex(&r));
        match i32_at(&r, 0) {
            1 => {
                let width = if self.server.is_ipv4() { 6 } else { 18 };
                assert_eq!((r.len() - 20) % width, 0, "peer list: {}", hex(&r));
                UdpReply::Peers {
                    interval: i32_at(&r, 8),
                    leechers: i32_at(&r, 12),
                    seeders: i32_at(&r, 16),
                    peers: r[20..]
                        .chunks(width)
                        .map(|p| {
                            let (ip, port) = p.split_at(width - 2);
                            (ip.to_vec(), u16::from_be_bytes([port[0], port[1]]))
                        })
                        .collect(),
                }
            }
            3 => UdpReply::Error(String::from_utf8_lossy(&r[8..]).into_owned()),
            other => panic!("UDP action {other}: {}", hex(&r)),
        }
    }
}

// ------------------------------------------------------ 1. control API

#[test]
fn torrent_actions_answer_success_twice_and_take_effect() {
    let mut site = Site::new();
    let user = site.user(1);
    let (raw, hexed, bulk1, bulk2, gone) = (ih(1), [0xab; 20], ih(3), ih(4), ih(5));
    site.torrent(&raw, 1, 0);
    // 40 hex digits, lowercase and uppercase, are the same torrent.
    site.ok(&format!(
        "action=add_torrent&info_hash={}&id=2&freetorrent=0",
        hex(&hexed)
    ));
    site.ok(&format!(
        "action=add_torrent&info_hash={}&id=2&freetorrent=0",
        hex(&hexed).to_uppercase()
    ));
    site.torrent(&bulk1, 3, 0);
    site.torrent(&bulk2, 4, 0);
    site.torrent(&gone, 5, 0);
    site.ok(&format!(
        "action=update_torrent&info_hash={}&freetorrent=1",
        pct(&raw)
    ));
    // Bulk: n x 20 raw bytes; a hash the tracker does not know is skipped.
    site.ok(&format!(
        "action=update_torrents&info_hashes={}{}{}&freetorrent=2",
        pct(&bulk1),
        pct(&ih(99)),
        pct(&bulk2)
    ));
    site.ok(&format!(
        "action=delete_torrent&info_hash={}&reason=0",
        pct(&gone)
    ));
    site.ok(&format!("action=info_torrent&info_hash={}", pct(&raw)));
    site.ok(&format!("action=info_torrent&info_hash={}", pct(&ih(99))));

    // Each registered torrent takes announces; credit shows its leech type.
    for (n, hash) in [raw, hexed, bulk1, bulk2].iter().enumerate() {
        let port = 6001 + n as u16;
        site.announce(&user, hash, &pid("a"), &q(port, 0, 0, 100, ""))
            .ok();
        site.announce(&user, hash, &pid("a"), &q(port, 100, 1000, 100, ""))
            .ok();
    }
    site.announce(&user, &gone, &pid("a"), &q(6009, 0, 0, 100, ""))
        .refused("Unregistered torrent: Dupe");
    site.stop();

    let db = site.db();
    // free: upload only (100); normal: both; neutral (x2): nothing.
    assert_eq!(credit(&db, 1), (200, 1000));
    let torrents = rows(
        &db,
        "SELECT ID, info_hash, FreeTorrent FROM torrents ORDER BY ID",
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                bytes_col(r, 1)?,
                r.get::<_, String>(2)?,
            ))
        },
    );
    assert_eq!(
        torrents,
        vec![
            (1, raw.to_vec(), "1".into()),
            (2, hexed.to_vec(), "0".into()),
            (3, bulk1.to_vec(), "2".into()),
            (4, bulk2.to_vec(), "2".into()),
        ]
    );
}

#[test]
fn update_torrents_takes_raw_hashes_even_when_they_look_like_hex() {
    let mut site = Site::new();
    // Raw hashes whose 40 bytes together happen to be hex digits.
    let (a, b) = (*b"aaaaaaaaaaaaaaaaaaaa", *b"bbbbbbbbbbbbbbbbbbbb");
    site.torrent(&a, 1, 0);
    site.torrent(&b, 2, 0);
    site.ok(&format!(
        "action=update_torrents&info_hashes={}{}&freetorrent=1",
        pct(&a),
        pct(&b)
    ));
    site.stop();
    let free = rows(
        &site.db(),
        "SELECT ID, FreeTorrent FROM torrents ORDER BY ID",
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
    );
    assert_eq!(free, vec![(1, "1".to_string()), (2, "1".to_string())]);
}

#[test]
fn user_actions_answer_success_twice_and_take_effect() {
    let mut site = Site::new();
    let hash = ih(1);
    site.torrent(&hash, 1, 0);
    for id in 1..=5 {
        site.user(id);
    }
    site.ok(&format!("action=add_user&passkey={}&id=6&visible=0", pk(6)));
    site.ok(&format!("action=update_user&passkey={}&can_leech=0", pk(3)));
    site.ok(&format!("action=update_user&passkey={}&visible=0", pk(2)));
    // Removals below must find committed rows to disable (a removal in
    // the same batch as the add is `add_then_remove_in_one_batch_*`).
    site.wait_db(6, |db| count(db, "SELECT count(*) FROM users_main"));

    // User 1 seeds, user 5 leeches: 5 gets 1's peer.
    site.announce(&pk(1), &hash, &pid("one"), &q(7001, 0, 0, 0, ""))
        .ok();
    let r = site.announce(&pk(5), &hash, &pid("five"), &q(7005, 0, 0, 100, ""));
    assert_eq!(r.ports(), (set(&[7001]), set(&[])), "{}", r.context());

    // change_passkey: the old key is gone, the peer stays, credit goes on.
    let new_key = "newpasskey000000000000000000000a";
    site.ok(&format!(
        "action=change_passkey&oldpasskey={}&newpasskey={new_key}",
        pk(1)
    ));
    site.announce(&pk(1), &hash, &pid("one"), &q(7001, 500, 0, 0, ""))
        .refused("Passkey not found");
    site.announce(new_key, &hash, &pid("one"), &q(7001, 500, 0, 0, ""))
        .ok();
    let r = site.announce(&pk(5), &hash, &pid("five"), &q(7005, 0, 0, 100, ""));
    assert_eq!(r.ports(), (set(&[7001]), set(&[])), "{}", r.context());

    // update_user can_leech=0: leeching refused, seeding fine.
    site.announce(&pk(3), &hash, &pid("three"), &q(7003, 0, 0, 100, ""))
        .refused("Access denied, leeching forbidden");
    site.announce(&pk(3), &hash, &pid("three"), &q(7003, 0, 0, 0, ""))
        .ok();

    site.ok(&format!("action=remove_user&passkey={}", pk(4)));
    // Bulk: n x 32 characters; an unknown passkey is no error.
    site.ok(&format!("action=remove_users&passkeys={}{}", pk(5), pk(77)));
    for removed in [4, 5] {
        site.announce(&pk(removed), &hash, &pid("x"), &q(7009, 0, 0, 100, ""))
            .refused("Passkey not found");
    }
    // 5's peer went with it: user 2 (a leecher) sees the seeders 1 and 3.
    let r = site.announce(&pk(2), &hash, &pid("two"), &q(7002, 0, 0, 100, ""));
    assert_eq!(r.ports(), (set(&[7001, 7003]), set(&[])), "{}", r.context());
    site.stop();

    let db = site.db();
    assert_eq!(credit(&db, 1), (500, 0), "credited under the new passkey");
    let users = rows(
        &db,
        "SELECT ID, torrent_pass, can_leech, Visible, Enabled FROM users_main ORDER BY ID",
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                String::from_utf8_lossy(&bytes_col(r, 1)?).into_owned(),
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        },
    );
    let row = |id: i64, key: &str, leech: i64, vis: &str, en: &str| {
        (id, key.to_string(), leech, vis.to_string(), en.to_string())
    };
    assert_eq!(
        users,
        vec![
            row(1, new_key, 1, "1", "1"),
            row(2, &pk(2), 1, "0", "1"),
            row(3, &pk(3), 0, "1", "1"),
            row(4, &pk(4), 1, "1", "0"),
            row(5, &pk(5), 1, "1", "0"),
            row(6, &pk(6), 1, "0", "1"),
        ]
    );
}

#[test]
fn add_then_remove_in_one_batch_keeps_the_row_and_its_credit() {
    // A long flush interval: everything lands in the shutdown batch.
    let mut site = Site::with(|c| c.flush_interval = Duration::from_secs(60));
    let hash = ih(1);
    site.torrent(&hash, 1, 0);
    let key = site.user(1);
    site.announce(&key, &hash, &pid("a"), &q(7001, 0, 0, 100, ""))
        .ok();
    site.announce(&key, &hash, &pid("a"), &q(7001, 300, 200, 100, ""))
        .ok();
    site.ok(&format!("action=remove_user&passkey={key}"));
    site.stop();
    let db = site.db();
    let enabled = rows(
        &db,
        "SELECT Enabled, Uploaded, Downloaded FROM users_main WHERE ID = 1",
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        },
    );
    assert_eq!(enabled, vec![("0".to_string(), 300, 200)]);
}

#[test]
fn token_and_whitelist_actions_answer_success_twice_and_take_effect() {
    let mut site = Site::new();
    let hash = ih(1);
    site.torrent(&hash, 1, 0);
    let (one, two) = (site.user(1), site.user(2));
    let token =
        |action: &str, user: u32| format!("action={action}&info_hash={}&userid={user}", pct(&hash));
    site.ok(&token("add_token", 1));
    site.ok(&token("add_token", 2));
    // The grant is in the file before it is taken away (in one batch the
    // two would leave no row at all).
    site.wait_db(2, |db| count(db, "SELECT count(*) FROM users_freeleeches"));
    site.ok(&token("remove_token", 2));
    for (key, port) in [(&one, 7001), (&two, 7002)] {
        site.announce(key, &hash, &pid("t"), &q(port, 0, 0, 1000, ""))
            .ok();
        site.announce(key, &hash, &pid("t"), &q(port, 10, 600, 400, ""))
            .ok();
    }

    // Whitelist: a non-empty list admits its prefixes only.
    let client = |prefix: &str| peer_id(prefix, "-client");
    let wl = |action: &str, p: &str| format!("action={action}&peer_id={}", pct(p.as_bytes()));
    let hash2 = ih(2);
    site.torrent(&hash2, 2, 0);
    let try_client =
        |prefix: &str| site.announce(&one, &hash2, &client(prefix), &q(7100, 0, 0, 5, ""));
    try_client("-XX").ok();
    site.ok(&wl("add_whitelist", "-HY"));
    site.ok(&wl("add_whitelist", "-ZZ"));
    try_client("-XX").refused("Your client is not on the whitelist");
    try_client("-HY").ok();
    try_client("-ZZ").ok();
    site.ok(&format!(
        "action=edit_whitelist&old_peer_id={}&new_peer_id={}",
        pct(b"-ZZ"),
        pct(b"-QQ")
    ));
    try_client("-ZZ").refused("Your client is not on the whitelist");
    try_client("-QQ").ok();
    site.ok(&wl("remove_whitelist", "-HY"));
    try_client("-HY").refused("Your client is not on the whitelist");
    site.ok(&wl("remove_whitelist", "-QQ"));
    // Empty again: every client is allowed.
    try_client("-XX").ok();
    site.ok(&wl("add_whitelist", "-HY"));
    site.stop();

    let db = site.db();
    assert_eq!(credit(&db, 1), (10, 0), "tokened: download not credited");
    assert_eq!(credit(&db, 2), (10, 600), "token removed: credited");
    let tokens = rows(
        &db,
        "SELECT UserID, TorrentID, Expired, Downloaded FROM users_freeleeches ORDER BY UserID",
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        },
    );
    assert_eq!(
        tokens,
        vec![(1, 1, "0".to_string(), 600), (2, 1, "1".to_string(), 0)]
    );
    let list = rows(&db, "SELECT peer_id FROM xbt_client_whitelist", |r| {
        bytes_col(r, 0)
    });
    assert_eq!(list, vec![b"-HY".to_vec()]);
}

#[test]
fn update_announce_interval_changes_the_next_reply() {
    let site = Site::new();
    let hash = ih(1);
    site.torrent(&hash, 1, 0);
    let key = site.user(1);
    let intervals = |addr: SocketAddr| {
        let v = site
            .announce_at(addr, &key, &hash, &pid("a"), &q(7001, 0, 0, 5, ""))
            .ok();
        (int(&v, "interval"), int(&v, "min interval"))
    };
    assert_eq!(intervals(site.v4()), (1800, 900));
    // (new interval, expected (interval, min interval) over IPv4 and IPv6)
    let steps = [
        // `min interval` is half the new interval (README: the default
        // ratio; Ocelot makes it equal), down and up again.
        (1200, (1200, 600)),
        (600, (600, 300)),
        (1800, (1800, 900)),
    ];
    for (secs, want) in steps {
        site.ok(&format!(
            "action=update_announce_interval&new_announce_interval={secs}"
        ));
        for addr in [site.v4(), site.v6()] {
            assert_eq!(intervals(addr), want, "after {secs} via {addr}");
        }
        for server in [site.udp[0], site.udp[1]] {
            let url = format!("/{key}/announce");
            match Udp::new(server).announce(&[&url], &hash, &pid("u"), 7002, (0, 0, 5), "") {
                UdpReply::Peers { interval, .. } => {
                    assert_eq!(i64::from(interval), want.0, "after {secs} via {server}")
                }
                other => panic!("{other:?}"),
            }
        }
    }
    for bad in [
        "action=update_announce_interval&new_announce_interval=0",
        "action=update_announce_interval",
    ] {
        let got = site.update(bad);
        assert!(got.contains("failure reason"), "{bad}: {got:?}");
    }
    assert_eq!(
        intervals(site.v4()),
        (1800, 900),
        "a refused call changed nothing"
    );
}

#[test]
fn control_refuses_wrong_secret_and_unknown_action() {
    let site = Site::new();
    let add = format!("action=add_user&passkey={}&id=1&visible=1", pk(1));
    for secret in ["tttttttttttttttttttttttttttttttt", REPORT] {
        let r = site.request(site.v4(), &format!("/{secret}/update?{add}"));
        r.refused("Authentication failure");
    }
    // Nothing was added.
    site.torrent(&ih(1), 1, 0);
    site.announce(&pk(1), &ih(1), &pid("a"), &q(7001, 0, 0, 5, ""))
        .refused("Passkey not found");
    for bad in [
        "action=frobnicate",
        "action=add_user&id=1",
        "action=add_torrent&info_hash=short&id=1",
        "action=update_torrents&info_hashes=%01%02&freetorrent=1",
        "action=remove_users&passkeys=abc",
        "nothing=here",
    ] {
        let r = site.request(site.v4(), &format!("/{SITE}/update?{bad}"));
        let v = r.value();
        assert!(
            failure(&v).is_some_and(|f| !f.is_empty()),
            "{}",
            r.context()
        );
    }
}

#[test]
fn restart_keeps_users_torrents_tokens_and_peer_baselines() {
    let mut site = Site::new();
    let (free, normal, tokened) = (ih(1), ih(2), ih(3));
    site.torrent(&free, 1, 1);
    site.torrent(&normal, 2, 0);
    site.torrent(&tokened, 3, 0);
    let (one, two) = (site.user(1), site.user(2));
    site.ok(&format!("action=add_user&passkey={}&id=3&visible=0", pk(3)));
    site.ok(&format!("action=update_user&passkey={two}&can_leech=0"));
    site.ok(&format!(
        "action=add_token&info_hash={}&userid=1",
        pct(&tokened)
    ));
    site.ok(&format!("action=add_whitelist&peer_id={}", pct(b"-HY")));
    // Each peer's announces on one keep-alive connection (one worker),
    // so its committed baseline is its last (see
    // `committed_baselines_never_go_back`).
    let four = site.user(4);
    site.ok(&format!("action=add_user&passkey={}&id=6&visible=0", pk(6)));
    let six = pk(6);
    // (passkey, peer, params of each announce)
    let before: [(&str, &str, [String; 2]); 3] = [
        // User 1 completes `normal` (one snatch), credited (1000, 100).
        (
            &one,
            "one",
            [q(7001, 0, 0, 100, ""), q(7001, 1000, 100, 0, "completed")],
        ),
        // User 4 stops: it does not come back.
        (
            &four,
            "four",
            [q(7004, 0, 0, 0, ""), q(7004, 0, 0, 0, "stopped")],
        ),
        // User 6 is protected: it comes back without an address (handed
        // to nobody until it announces).
        (&six, "six", [q(7006, 0, 0, 0, ""), q(7006, 100, 0, 0, "")]),
    ];
    for (key, tag, steps) in &before {
        let mut conn = KeepAlive::new(site.v4());
        for params in steps {
            conn.announce(key, &normal, &pid(tag), params).ok();
        }
    }
    site.restart();

    // The same users, torrents, leech types, token and whitelist.
    site.announce(&pk(9), &normal, &pid("x"), &q(7009, 0, 0, 5, ""))
        .refused("Passkey not found");
    site.announce(&two, &ih(9), &pid("x"), &q(7002, 0, 0, 5, ""))
        .refused("Unregistered torrent");
    site.announce(&two, &normal, &pid("two"), &q(7002, 0, 0, 5, ""))
        .refused("Access denied, leeching forbidden");
    site.announce(&two, &normal, &peer_id("-XX", "two"), &q(7002, 0, 0, 0, ""))
        .refused("Your client is not on the whitelist");
    // The seeder came back with its address: a new leecher gets it, and
    // the snatch count came back too.
    let r = site.announce(&pk(3), &normal, &pid("three"), &q(7003, 0, 0, 5, ""));
    assert_eq!(r.ports(), (set(&[7001]), set(&[])), "{}", r.context());
    let v = r.ok();
    assert_eq!(
        (int(&v, "complete"), int(&v, "downloaded")),
        (2, 1),
        "{}",
        r.context()
    );
    // Its next announce is credited from the committed baseline.
    site.announce(&one, &normal, &pid("one"), &q(7001, 1500, 300, 0, ""))
        .ok();
    // A restored peer coming back with `started` and counters that went
    // on is credited the difference (README), then handed out again.
    site.announce(&pk(6), &normal, &pid("six"), &q(7006, 300, 0, 0, "started"))
        .ok();
    let r = site.announce(&pk(3), &normal, &pid("three"), &q(7003, 0, 0, 5, ""));
    assert_eq!(r.ports(), (set(&[7001, 7006]), set(&[])), "{}", r.context());
    // Free torrent and tokened torrent: no download credit.
    for (hash, port) in [(free, 7011), (tokened, 7012)] {
        site.announce(&one, &hash, &pid("one"), &q(port, 0, 0, 50, ""))
            .ok();
        site.announce(&one, &hash, &pid("one"), &q(port, 0, 700, 50, ""))
            .ok();
    }
    site.stop();
    let db = site.db();
    assert_eq!(credit(&db, 1), (1500, 300));
    assert_eq!(credit(&db, 6), (300, 0));
    let token = rows(
        &db,
        "SELECT TorrentID, Expired, Downloaded FROM users_freeleeches WHERE UserID = 1",
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        },
    );
    assert_eq!(token, vec![(3, "0".to_string(), 700)]);
    assert_eq!(count(&db, "SELECT Snatched FROM torrents WHERE ID = 2"), 1);
}

#[test]
fn restart_does_not_bring_back_peers_of_removed_users() {
    let mut site = Site::new();
    let hash = ih(1);
    site.torrent(&hash, 1, 0);
    let (gone, stays) = (site.user(1), site.user(2));
    site.announce(&gone, &hash, &pid("gone"), &q(7001, 0, 0, 0, ""))
        .ok();
    site.ok(&format!("action=remove_user&passkey={gone}"));
    let r = site.announce(&stays, &hash, &pid("stays"), &q(7002, 0, 0, 5, ""));
    assert_eq!(
        r.ports(),
        (set(&[]), set(&[])),
        "before the restart\n{}",
        r.context()
    );
    site.restart();
    let r = site.announce(&stays, &hash, &pid("stays"), &q(7002, 0, 0, 5, ""));
    let v = r.ok();
    assert_eq!(
        r.ports(),
        (set(&[]), set(&[])),
        "after the restart\n{}",
        r.context()
    );
    assert_eq!(int(&v, "complete"), 0, "{}", r.context());
}

#[test]
fn restart_keeps_forbidden_leechers_hidden() {
    let mut site = Site::new();
    let hash = ih(1);
    site.torrent(&hash, 1, 0);
    let (banned, other) = (site.user(1), site.user(2));
    site.ok(&format!("action=update_user&passkey={banned}&can_leech=0"));
    site.announce(&banned, &hash, &pid("b"), &q(7001, 0, 0, 100, ""))
        .refused("Access denied, leeching forbidden");
    let r = site.announce(&other, &hash, &pid("o"), &q(7002, 0, 0, 100, ""));
    assert_eq!(
        r.ports(),
        (set(&[]), set(&[])),
        "before the restart\n{}",
        r.context()
    );
    site.restart();
    let r = site.announce(&other, &hash, &pid("o"), &q(7002, 0, 0, 100, ""));
    assert_eq!(
        r.ports(),
        (set(&[]), set(&[])),
        "after the restart\n{}",
        r.context()
    );
}

// ------------------------------------------------- 2. failure texts

#[test]
fn every_failure_text_in_gazelles_order() {
    let site = Site::new();
    let key = site.user(1);
    let banned = site.user(2);
    site.ok(&format!("action=update_user&passkey={banned}&can_leech=0"));
    let (live, never, dupe) = (ih(1), ih(2), ih(3));
    site.torrent(&live, 1, 0);
    site.torrent(&dupe, 3, 0);
    site.ok(&format!(
        "action=delete_torrent&info_hash={}&reason=0",
        pct(&dupe)
    ));
    let nobody = pk(99);
    let good = q(7001, 0, 0, 100, "");
    let announce = |passkey: &str, hash: &[u8; 20], peer: Option<&[u8]>, params: &str| {
        let mut target = format!("/{passkey}/announce?info_hash={}", pct(hash));
        if let Some(p) = peer {
            target.push_str(&format!("&peer_id={}", pct(p)));
        }
        target.push_str(params);
        target
    };
    let id = pid("a");
    // (what, target, failure text)
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown passkey",
            announce(&nobody, &live, Some(&id), &good),
            "Passkey not found",
        ),
        (
            "public announce",
            format!(
                "/announce?info_hash={}&peer_id={}{good}",
                pct(&live),
                pct(&id)
            ),
            "Passkey not found",
        ),
        (
            "public scrape",
            format!("/scrape?info_hash={}", pct(&live)),
            "Passkey not found",
        ),
        (
            "scrape, unknown passkey",
            format!("/{nobody}/scrape?info_hash={}", pct(&live)),
            "Passkey not found",
        ),
        (
            "never registered",
            announce(&key, &never, Some(&id), &good),
            "Unregistered torrent",
        ),
        (
            "deleted, reason 0",
            announce(&key, &dupe, Some(&id), &good),
            "Unregistered torrent: Dupe",
        ),
        (
            "no peer_id",
            announce(&key, &live, None, &good),
            "No peer ID",
        ),
        (
            "19-byte peer_id",
            announce(&key, &live, Some(&id[..19]), &good),
            "Invalid peer ID",
        ),
        (
            "21-byte peer_id",
            announce(&key, &live, Some(b"-HY0001-123456789012X"), &good),
            "Invalid peer ID",
        ),
        (
            "can_leech=0, left>0",
            announce(&banned, &live, Some(&id), &good),
            "Access denied, leeching forbidden",
        ),
        // Order: the earlier rule names the failure.
        (
            "unknown passkey + unregistered",
            announce(&nobody, &never, Some(&id), &good),
            "Passkey not found",
        ),
        (
            "unknown passkey + no peer_id",
            announce(&nobody, &never, None, &good),
            "Passkey not found",
        ),
        (
            "unregistered + no peer_id",
            announce(&key, &never, None, &good),
            "Unregistered torrent",
        ),
        (
            "deleted + bad peer_id",
            announce(&key, &dupe, Some(&id[..5]), &good),
            "Unregistered torrent: Dupe",
        ),
        (
            "unregistered + can_leech=0",
            announce(&banned, &never, Some(&id), &good),
            "Unregistered torrent",
        ),
    ];
    for (what, target, text) in &cases {
        for addr in [site.v4(), site.v6()] {
            let r = site.request(addr, target);
            assert_eq!(
                failure(&r.value()).as_deref(),
                Some(*text),
                "{what}\n{}",
                r.context()
            );
            r.refused(text);
        }
    }
    // The same forbidden user seeding is fine.
    site.announce(&banned, &live, &id, &q(7002, 0, 0, 0, ""))
        .ok();

    // Whitelist: only with a non-empty list, after the torrent check.
    let other = peer_id("-XX", "a");
    site.announce(&key, &live, &other, &good).ok();
    site.ok(&format!("action=add_whitelist&peer_id={}", pct(b"-HY")));
    site.announce(&key, &live, &other, &good)
        .refused("Your client is not on the whitelist");
    site.announce(&key, &never, &other, &good)
        .refused("Unregistered torrent");
    site.announce(&nobody, &live, &other, &good)
        .refused("Passkey not found");
    site.announce(&key, &live, &id, &good).ok();
}

#[test]
fn every_deletion_reason_has_its_text() {
    let site = Site::new();
    let key = site.user(1);
    // (reason parameter, expected failure)
    let mut cases: Vec<(String, String)> = REASONS
        .iter()
        .enumerate()
        .map(|(code, text)| {
            (
                format!("&reason={code}"),
                format!("Unregistered torrent: {text}"),
            )
        })
        .collect();
    for plain in ["&reason=23", "&reason=99", "&reason=300", "&reason=-1", ""] {
        cases.push((plain.to_string(), "Unregistered torrent".to_string()));
    }
    for (n, (reason, text)) in cases.iter().enumerate() {
        let hash = [n as u8 + 1; 20];
        site.torrent(&hash, n as u32 + 1, 0);
        site.announce(&key, &hash, &pid("a"), &q(7001, 0, 0, 5, ""))
            .ok();
        let call = format!("action=delete_torrent&info_hash={}{reason}", pct(&hash));
        let got = site.update(&call);
        assert_eq!(got, "success", "{call}");
        let addr = if n % 2 == 0 { site.v4() } else { site.v6() };
        site.announce_at(addr, &key, &hash, &pid("a"), &q(7001, 0, 0, 5, ""))
            .refused(text);
    }
    // Registered again: served again, the reason forgotten.
    site.torrent(&[1; 20], 1, 0);
    site.announce(&key, &[1; 20], &pid("a"), &q(7001, 0, 0, 5, ""))
        .ok();
}

#[test]
fn deletion_reason_expires_after_del_reason_lifetime() {
    let site = Site::with(|c| c.del_reason_lifetime = Duration::from_millis(300));
    let key = site.user(1);
    let hash = ih(1);
    site.torrent(&hash, 1, 0);
    site.ok(&format!(
        "action=delete_torrent&info_hash={}&reason=22",
        pct(&hash)
    ));
    let started = Instant::now();
    let text = || {
        failure(
            &site
                .announce(&key, &hash, &pid("a"), &q(7001, 0, 0, 5, ""))
                .value(),
        )
        .unwrap_or_default()
    };
    let first = text();
    if started.elapsed() < Duration::from_millis(250) {
        assert_eq!(first, "Unregistered torrent: Audience Recording");
    }
    let mut last = String::new();
    let ok = wait_until(WAIT, || {
        last = text();
        last == "Unregistered torrent"
    });
    assert!(ok, "still {last:?}");
}

// --------------------------------------------- 3. credit arithmetic

/// One credit scenario: its own user and torrent.
struct CreditCase {
    what: &'static str,
    /// `freetorrent`.
    free: u8,
    token: bool,
    /// `can_leech = 0`: every announce is refused (left > 0), yet credited.
    forbidden: bool,
    /// (uploaded, downloaded, left, event, corrupt) per announce.
    steps: &'static [(u64, u64, u64, &'static str, u64)],
    /// users_main (Uploaded, Downloaded).
    want: (i64, i64),
    /// torrents.balance.
    balance: i64,
    /// users_freeleeches.Downloaded (token cases).
    token_down: i64,
}

#[test]
fn credit_follows_the_deltas_leech_type_and_tokens() {
    const CASES: &[CreditCase] = &[
        CreditCase {
            what: "first announce credits nothing",
            free: 0,
            token: false,
            forbidden: false,
            steps: &[(1000, 500, 100, "", 0)],
            want: (0, 0),
            balance: 0,
            token_down: 0,
        },
        CreditCase {
            what: "started credits nothing, then the difference",
            free: 0,
            token: false,
            forbidden: false,
            steps: &[
                (0, 0, 100, "", 0),
                (1000, 500, 100, "started", 0),
                (1100, 600, 100, "", 0),
            ],
            want: (100, 100),
            balance: 0,
            token_down: 0,
        },
        CreditCase {
            what: "the next announce credits the difference",
            free: 0,
            token: false,
            forbidden: false,
            steps: &[
                (100, 50, 100, "", 0),
                (1100, 550, 100, "", 0),
                (1300, 560, 100, "", 0),
            ],
            want: (1200, 510),
            balance: 690,
            token_down: 0,
        },
        CreditCase {
            what: "lower counters re-baseline",
            free: 0,
            token: false,
            forbidden: false,
            steps: &[
                (1000, 1000, 100, "", 0),
                (10, 10, 100, "", 0),
                (60, 30, 100, "", 0),
            ],
            want: (50, 20),
            balance: 30,
            token_down: 0,
        },
        CreditCase {
            what: "one counter lower re-baselines both",
            free: 0,
            token: false,
            forbidden: false,
            steps: &[
                (1000, 0, 100, "", 0),
                (500, 300, 100, "", 0),
                (600, 400, 100, "", 0),
            ],
            want: (100, 100),
            balance: 0,
            token_down: 0,
        },
        CreditCase {
            what: "stopped credits its delta; the next is a first sight",
            free: 0,
            token: false,
            forbidden: false,
            steps: &[
                (0, 0, 100, "", 0),
                (300, 200, 100, "stopped", 0),
                (400, 300, 100, "", 0),
            ],
            want: (300, 200),
            balance: 100,
            token_down: 0,
        },
        CreditCase {
            what: "freeleech: upload only",
            free: 1,
            token: false,
            forbidden: false,
            steps: &[(0, 0, 1000, "", 0), (1000, 800, 200, "", 0)],
            want: (1000, 0),
            balance: 200,
            token_down: 0,
        },
        CreditCase {
            what: "neutral: nothing",
            free: 2,
            token: false,
            forbidden: false,
            steps: &[(0, 0, 1000, "", 0), (1000, 800, 200, "", 0)],
            want: (0, 0),
            balance: 200,
            token_down: 0,
        },
        CreditCase {
            what: "token on a normal torrent: upload only, download on the token",
            free: 0,
            token: true,
            forbidden: false,
            steps: &[(0, 0, 1000, "", 0), (1000, 800, 200, "", 0)],
            want: (1000, 0),
            balance: 200,
            token_down: 800,
        },
        CreditCase {
            what: "can_leech=0 leecher: refused, still credited",
            free: 0,
            token: false,
            forbidden: true,
            steps: &[(0, 0, 1000, "", 0), (1000, 800, 200, "", 0)],
            want: (1000, 800),
            balance: 200,
            token_down: 0,
        },
        CreditCase {
            what: "corrupt lowers the balance only",
            free: 0,
            token: false,
            forbidden: false,
            steps: &[(0, 0, 1000, "", 10), (1000, 100, 900, "", 60)],
            want: (1000, 100),
            balance: 850,
            token_down: 0,
        },
    ];
    let mut site = Site::new();
    for (i, c) in CASES.iter().enumerate() {
        let id = i as u32 + 1;
        let hash = [id as u8; 20];
        site.torrent(&hash, id, c.free);
        let key = site.user(id);
        if c.token {
            site.ok(&format!(
                "action=add_token&info_hash={}&userid={id}",
                pct(&hash)
            ));
        }
        if c.forbidden {
            site.ok(&format!("action=update_user&passkey={key}&can_leech=0"));
        }
        let addr = if i % 2 == 0 { site.v4() } else { site.v6() };
        for &(up, down, left, event, corrupt) in c.steps {
            let params = format!(
                "{}&corrupt={corrupt}",
                q(7000 + id as u16, up, down, left, event)
            );
            let r = site.announce_at(addr, &key, &hash, &pid("c"), &params);
            if c.forbidden {
                r.refused("Access denied, leeching forbidden");
            } else {
                r.ok();
            }
        }
    }
    site.stop();
    let db = site.db();
    for (i, c) in CASES.iter().enumerate() {
        let id = i as u32 + 1;
        assert_eq!(credit(&db, id), c.want, "{}: users_main", c.what);
        let balance = count(
            &db,
            &format!("SELECT balance FROM torrents WHERE ID = {id}"),
        );
        assert_eq!(balance, c.balance, "{}: torrents.balance", c.what);
        let token = rows(
            &db,
            &format!("SELECT Downloaded FROM users_freeleeches WHERE UserID = {id}"),
            |r| r.get::<_, i64>(0),
        );
        let want_token = if c.token { vec![c.token_down] } else { vec![] };
        assert_eq!(token, want_token, "{}: users_freeleeches", c.what);
    }
}

#[test]
fn a_snatch_counts_once_per_peer_and_expires_the_token() {
    let mut site = Site::new();
    let hash = ih(1);
    site.torrent(&hash, 1, 0);
    let (plain, tokened) = (site.user(1), site.user(2));
    site.ok(&format!(
        "action=add_token&info_hash={}&userid=2",
        pct(&hash)
    ));
    // User 1 completes twice from one peer: one snatch.
    site.announce(&plain, &hash, &pid("p"), &q(7001, 0, 0, 100, "started"))
        .ok();
    site.announce(&plain, &hash, &pid("p"), &q(7001, 0, 100, 0, "completed"))
        .ok();
    site.announce(&plain, &hash, &pid("p"), &q(7001, 0, 100, 0, "completed"))
        .ok();
    // `completed` while still leeching is no snatch.
    site.announce_at(
        site.v6(),
        &tokened,
        &hash,
        &pid("t"),
        &q(7002, 0, 0, 100, ""),
    )
    .ok();
    site.announce_at(
        site.v6(),
        &tokened,
        &hash,
        &pid("t"),
        &q(7002, 0, 50, 50, "completed"),
    )
    .ok();
    let scrape = |site: &Site| {
        let r = site.request(
            site.v4(),
            &format!("/{plain}/scrape?info_hash={}", pct(&hash)),
        );
        let v = r.ok();
        let Some(Value::Dict(files)) = field(&v, "files") else {
            panic!("no files\n{}", r.context())
        };
        int(&files[&hash[..]], "downloaded")
    };
    assert_eq!(scrape(&site), 1);
    // User 2's tokened snatch (over IPv6) expires its token: a second
    // peer's download is credited afterwards.
    site.announce_at(
        site.v6(),
        &tokened,
        &hash,
        &pid("t"),
        &q(7002, 0, 100, 0, "completed"),
    )
    .ok();
    assert_eq!(scrape(&site), 2);
    site.announce(&tokened, &hash, &pid("t2"), &q(7003, 0, 0, 500, ""))
        .ok();
    site.announce(&tokened, &hash, &pid("t2"), &q(7003, 0, 300, 200, ""))
        .ok();
    site.stop();
    let db = site.db();
    assert_eq!(count(&db, "SELECT Snatched FROM torrents WHERE ID = 1"), 2);
    let snatches = rows(&db, "SELECT uid, fid FROM xbt_snatched ORDER BY uid", |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    });
    assert_eq!(snatches, vec![(1, 1), (2, 1)]);
    assert_eq!(credit(&db, 1), (0, 100));
    assert_eq!(
        credit(&db, 2),
        (0, 300),
        "only the download after the expiry"
    );
    let token = rows(
        &db,
        "SELECT Expired, Downloaded FROM users_freeleeches WHERE UserID = 2",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
    );
    assert_eq!(token, vec![("1".to_string(), 100)]);
}

#[test]
fn a_locked_database_delays_credit_without_losing_or_doubling_it() {
    let mut site = Site::new();
    let hash = ih(1);
    site.torrent(&hash, 1, 0);
    let key = site.user(1);
    site.announce(&key, &hash, &pid("a"), &q(7001, 0, 0, 100, ""))
        .ok();
    site.wait_db(1, |db| count(db, "SELECT count(*) FROM xbt_files_users"));
    // The site holds the write lock: commits fail and are retried.
    let lock = site.db();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    site.announce(&key, &hash, &pid("a"), &q(7001, 1000, 500, 100, ""))
        .ok();
    let call = site.update_later(&format!("action=add_user&passkey={}&id=2&visible=1", pk(2)));
    site.wait_metric_where("hayate_private_database_errors_total", ">= 1", |n| n >= 1);
    assert_eq!(credit(&lock, 1), (0, 0));
    // Its `success` waits for the commit: the site must not take it as
    // done while the change could still be lost.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !call.is_finished(),
        "a control call answered before its commit"
    );
    lock.execute_batch("COMMIT").unwrap();
    assert_eq!(call.join().unwrap(), "success");
    site.announce(&key, &hash, &pid("a"), &q(7001, 1500, 600, 100, ""))
        .ok();
    site.wait_db(((1500, 600), 2), |db| {
        (credit(db, 1), count(db, "SELECT count(*) FROM users_main"))
    });
    site.stop();
    assert_eq!(credit(&site.db(), 1), (1500, 600), "credited once");
}

#[test]
fn expired_peers_leave_the_swarm_and_the_database_counts() {
    let site = Site::new();
    let hash = ih(1);
    site.torrent(&hash, 1, 0);
    for id in 1..=3 {
        site.user(id);
    }
    site.announce(&pk(1), &hash, &pid("s"), &q(7001, 0, 0, 0, ""))
        .ok();
    site.announce_at(site.v6(), &pk(2), &hash, &pid("l"), &q(7002, 0, 0, 5, ""))
        .ok();
    let counts = |db: &Connection| {
        db.query_row(
            "SELECT Seeders, Leechers, last_action IS NOT NULL FROM torrents WHERE ID = 1",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, bool>(2)?,
                ))
            },
        )
        .ok()
    };
    site.wait_db(Some((1, 1, true)), counts);
    // Past peer_timeout (45 min by default): the reaper drops both.
    site.server().clock().advance(Duration::from_secs(46 * 60));
    site.wait_metric("hayate_private_peers{kind=\"seeder\"}", 0);
    site.wait_metric("hayate_private_peers{kind=\"leecher\"}", 0);
    let r = site.announce(&pk(3), &hash, &pid("n"), &q(7003, 0, 0, 5, ""));
    assert_eq!(r.ports(), (set(&[]), set(&[])), "{}", r.context());
    let v = r.ok();
    assert_eq!(
        (int(&v, "complete"), int(&v, "incomplete")),
        (0, 1),
        "{}",
        r.context()
    );
    site.wait_db(Some((0, 1, true)), counts);
    let report = site.report("get=stats");
    assert!(
        report.contains("\n1 leechers tracked\n0 seeders tracked\n"),
        "{report}"
    );
}

#[test]
fn concurrent_announces_are_credited_exactly_once() {
    const USERS: u32 = 4;
    const ROUNDS: u64 = 60;
    let mut site = Site::new();
    let hash = ih(1);
    site.torrent(&hash, 1, 0);
    for id in 1..=USERS {
        site.user(id);
    }
    let (v4, v6) = (site.v4(), site.v6());
    // Every request is a new connection: the workers take turns, so one
    // peer's announces land in different ledgers and are merged.
    std::thread::scope(|scope| {
        for id in 1..=USERS {
            scope.spawn(move || {
                let addr = if id % 2 == 0 { v4 } else { v6 };
                for round in 0..ROUNDS {
                    for (n, tag) in ["a", "b"].into_iter().enumerate() {
                        let port = 8000 + 10 * id as u16 + n as u16;
                        let params = q(port, round * 1000, round * 10, 100, "");
                        announce_at(addr, &pk(id), &hash, &pid(tag), &params).ok();
                    }
                }
            });
        }
    });
    site.stop();
    let db = site.db();
    let last = ROUNDS - 1;
    for id in 1..=USERS {
        let want = (2 * last as i64 * 1000, 2 * last as i64 * 10);
        assert_eq!(credit(&db, id), want, "user {id}");
    }
    // Each peer's row counts every announce. (Its counters are
    // `committed_baselines_never_go_back`'s concern.)
    let peers = rows(
        &db,
        "SELECT uid, announced, active FROM xbt_files_users ORDER BY uid",
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, bool>(2)?,
            ))
        },
    );
    let row = |id: u32| (i64::from(id), ROUNDS as i64, true);
    let want: Vec<_> = (1..=USERS).flat_map(|id| [row(id), row(id)]).collect();
    assert_eq!(peers, want);
    let balance = count(&db, "SELECT balance FROM torrents WHERE ID = 1");
    assert_eq!(balance, i64::from(USERS) * 2 * last as i64 * 990);
}

#[test]
fn committed_baselines_never_go_back() {
    const PEERS: u32 = 40;
    let mut site = Site::new();
    let hash = ih(1);
    site.torrent(&hash, 1, 0);
    for id in 1..=PEERS {
        site.user(id);
    }
    // Each request on a new connection: a peer's consecutive announces
    // land on either worker.
    let announce_all = |site: &Site, uploaded: u64| {
        for id in 1..=PEERS {
            let params = q(8000 + id as u16, uploaded, 0, 100, "");
            site.announce(&pk(id), &hash, &pid("p"), &params).ok();
        }
    };
    // Committed: `announced` adds up every announce of every row.
    let committed = |site: &Site, announces: i64| {
        site.wait_db(announces, |db| {
            count(
                db,
                "SELECT coalesce(sum(announced), 0) FROM xbt_files_users",
            )
        });
    };
    announce_all(&site, 0);
    committed(&site, i64::from(PEERS));
    // A keep-alive connection stays on one worker.
    let mut poke = KeepAlive::new(site.v4());
    let mut handed_over = || {
        let page = poke.get("/stats").response.text();
        metric(&page, "hayate_private_ledgers_handed_over_total").unwrap()
    };
    let before = handed_over();
    announce_all(&site, 1000);
    announce_all(&site, 2000);
    // That worker hands its ledger over as soon as it is due; the other,
    // idle, at its next tick (up to a second later): two batches.
    assert!(wait_until(WAIT, || handed_over() > before));
    committed(&site, 3 * i64::from(PEERS));
    let baselines = rows(
        &site.db(),
        "SELECT uid, uploaded FROM xbt_files_users ORDER BY uid",
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
    );
    let stale: Vec<_> = baselines.into_iter().filter(|r| r.1 != 2000).collect();
    // After a restart, the same counters again: nothing more to credit.
    site.restart();
    announce_all(&site, 2000);
    site.stop();
    let db = site.db();
    let twice: Vec<_> = (1..=PEERS)
        .map(|id| (id, credit(&db, id).0))
        .filter(|c| c.1 != 2000)
        .collect();
    assert_eq!(
        (stale, twice),
        (vec![], vec![]),
        "(stale baselines (uid, uploaded), users credited other than 2000)"
    );
}

#[test]
fn reload_during_a_database_outage_keeps_uncommitted_control_calls() {
    let mut site = Site::new();
    let hash = ih(1);
    site.torrent(&hash, 1, 0);
    let (one, two) = (site.user(1), pk(2));
    site.wait_db(1, |db| count(db, "SELECT count(*) FROM users_main"));
    let lock = site.db();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Both calls are applied in memory at once and answered once committed.
    let remove = site.update_later(&format!("action=remove_user&passkey={one}"));
    let add = site.update_later(&format!("action=add_user&passkey={two}&id=2&visible=1"));
    site.wait_metric_where("hayate_private_database_errors_total", ">= 1", |n| n >= 1);
    let applied = wait_until(WAIT, || {
        let r = site.announce(&two, &hash, &pid("b"), &q(7002, 0, 0, 5, ""));
        failure(&r.value()).is_none()
    });
    assert!(applied, "add_user not applied in memory during the outage");
    // The reload waits for a commit that lands: until then memory keeps
    // the calls, and so does the reload that follows.
    assert!(site.server().reload_database());
    let removed_before = site.announce(&one, &hash, &pid("a"), &q(7001, 0, 0, 5, ""));
    let added_before = site.announce(&two, &hash, &pid("b"), &q(7002, 0, 0, 5, ""));
    assert_eq!(
        (
            failure(&removed_before.value()),
            failure(&added_before.value())
        ),
        (Some("Passkey not found".to_string()), None),
        "during the outage"
    );
    assert!(
        !remove.is_finished() && !add.is_finished(),
        "answered before the commit"
    );
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    assert_eq!(remove.join().unwrap(), "success");
    assert_eq!(add.join().unwrap(), "success");
    site.wait_metric("hayate_private_reloads_total", 1);
    let removed = site.announce(&one, &hash, &pid("a"), &q(7001, 0, 0, 5, ""));
    let added = site.announce(&two, &hash, &pid("b"), &q(7002, 0, 0, 5, ""));
    site.stop();
    let users = rows(
        &site.db(),
        "SELECT ID, Enabled FROM users_main ORDER BY ID",
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
    );
    // (removed user's announce, added user's announce, users_main)
    let got = (failure(&removed.value()), failure(&added.value()), users);
    let want = (
        Some("Passkey not found".to_string()),
        None,
        vec![(1, "0".to_string()), (2, "1".to_string())],
    );
    assert_eq!(got, want);
}

// -------------------------------------------------- 4. peer rules

#[test]
fn peer_selection_follows_the_private_rules() {
    let site = Site::new();
    let hash = ih(1);
    site.torrent(&hash, 1, 0);
    for id in 1..=7 {
        site.user(id);
    }
    site.ok(&format!("action=update_user&passkey={}&can_leech=0", pk(5)));
    let (v4, v6) = (site.v4(), site.v6());
    // (address, user, peer tag, port, left)
    let swarm: [(SocketAddr, u32, &str, u16, u64); 7] = [
        (v4, 1, "s1", 8001, 0),
        (v4, 2, "l2", 8002, 10),
        (v6, 3, "l3", 8003, 10),
        (v4, 4, "l4a", 8004, 10),
        (v4, 4, "l4b", 8005, 10),
        (v4, 5, "hidden", 8006, 10),
        (v6, 6, "s6", 8007, 0),
    ];
    for &(addr, user, tag, port, left) in &swarm {
        let r = site.announce_at(addr, &pk(user), &hash, &pid(tag), &q(port, 0, 0, left, ""));
        if user == 5 {
            r.refused("Access denied, leeching forbidden");
        } else {
            r.ok();
        }
    }
    // (who asks, IPv4 ports, IPv6 ports)
    let cases: [(usize, &[u16], &[u16]); 5] = [
        // A seeder gets leechers only, never the hidden one.
        (0, &[8002, 8004, 8005], &[8003]),
        // A leecher gets seeders and leechers, both families.
        (1, &[8001, 8004, 8005], &[8003, 8007]),
        (2, &[8001, 8002, 8004, 8005], &[8007]),
        // Never a peer of its own user.
        (3, &[8001, 8002], &[8003, 8007]),
        (6, &[8002, 8004, 8005], &[8003]),
    ];
    for (who, four, six) in cases {
        let (addr, user, tag, port, left) = swarm[who];
        let r = site.announce_at(addr, &pk(user), &hash, &pid(tag), &q(port, 0, 0, left, ""));
        assert_eq!(r.ports(), (set(four), set(six)), "{}", r.context());
        let v = r.ok();
        // The hidden leecher is counted, not handed out.
        assert_eq!(
            (int(&v, "complete"), int(&v, "incomplete")),
            (2, 5),
            "{}",
            r.context()
        );
    }
    // A leecher wanting two gets the two seeders first.
    for _ in 0..5 {
        let r = site.announce(
            &pk(7),
            &hash,
            &pid("l7"),
            &format!("{}&numwant=2", q(8008, 0, 0, 10, "")),
        );
        assert_eq!(r.ports(), (set(&[8001]), set(&[8007])), "{}", r.context());
    }
    // Scrape by passkey: unknown hashes are left out.
    let r = site.request(
        site.v6(),
        &format!(
            "/{}/scrape?info_hash={}&info_hash={}",
            pk(1),
            pct(&hash),
            pct(&ih(9))
        ),
    );
    let v = r.ok();
    let Some(Value::Dict(files)) = field(&v, "files") else {
        panic!("{}", r.context())
    };
    assert_eq!(files.len(), 1, "{}", r.context());
    let t = &files[&hash[..]];
    assert_eq!(
        (int(t, "complete"), int(t, "incomplete")),
        (2, 6),
        "{}",
        r.context()
    );
}

// --------------------------------------------- 5. protected users

#[test]
fn protected_users_ip_is_never_stored() {
    let mut site = Site::new();
    let hash = ih(1);
    site.torrent(&hash, 1, 0);
    site.ok(&format!("action=add_user&passkey={}&id=1&visible=0", pk(1)));
    site.user(2);
    site.user(3);
    // (address, user, port)
    for (addr, user, port) in [
        (site.v4(), 1, 7001),
        (site.v4(), 2, 7002),
        (site.v6(), 3, 7003),
    ] {
        site.announce_at(addr, &pk(user), &hash, &pid("p"), &q(port, 0, 0, 100, ""))
            .ok();
        site.announce_at(
            addr,
            &pk(user),
            &hash,
            &pid("p"),
            &q(port, 0, 100, 0, "completed"),
        )
        .ok();
    }
    // A protected user is still handed out live (only storage hides it).
    let r = site.announce(&pk(2), &hash, &pid("q"), &q(7009, 0, 0, 100, ""));
    assert_eq!(r.ports(), (set(&[7001]), set(&[7003])), "{}", r.context());
    // Protected later (update_user visible=0): its row loses the address.
    let four = site.user(4);
    site.announce_at(site.v6(), &four, &hash, &pid("p"), &q(7004, 0, 0, 100, ""))
        .ok();
    site.wait_db(1, |db| {
        count(
            db,
            "SELECT count(*) FROM xbt_files_users WHERE ip = '::1' AND uid = 4",
        )
    });
    site.ok(&format!("action=update_user&passkey={four}&visible=0"));
    site.announce_at(site.v6(), &four, &hash, &pid("p"), &q(7004, 0, 0, 100, ""))
        .ok();
    site.stop();
    let db = site.db();
    let peers = rows(
        &db,
        "SELECT uid, ip FROM xbt_files_users ORDER BY uid, ip",
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
    );
    assert_eq!(
        peers,
        vec![
            (1, String::new()),
            (2, "127.0.0.1".to_string()),
            (2, "127.0.0.1".to_string()),
            (3, "::1".to_string()),
            (4, String::new()),
        ]
    );
    let snatches = rows(&db, "SELECT uid, IP FROM xbt_snatched ORDER BY uid", |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    });
    assert_eq!(
        snatches,
        vec![
            (1, String::new()),
            (2, "127.0.0.1".to_string()),
            (3, "::1".to_string()),
        ]
    );
}

// ------------------------------------------------------------ 6. UDP

#[test]
fn udp_announce_with_passkey_url_data_works_and_credits() {
    let mut site = Site::new();
    let hash = ih(1);
    site.torrent(&hash, 1, 0);
    let (one, two) = (site.user(1), site.user(2));
    let (addr4, addr6) = (site.udp[0], site.udp[1]);
    // (server, user, passkey, URL data pieces)
    let url1 = format!("/{one}/announce");
    let (url2a, url2b) = (format!("/{two}"), "/announce?x=1".to_string());
    let runs: [(SocketAddr, u32, Vec<&str>, u16); 2] = [
        (addr4, 1, vec![url1.as_str()], 9001),
        // URL data split over two options, with a query after the path.
        (addr6, 2, vec![url2a.as_str(), url2b.as_str()], 9002),
    ];
    for (server, user, url, port) in &runs {
        let mut c = Udp::new(*server);
        let first = c.announce(url, &hash, &pid("u"), *port, (0, 0, 1000), "started");
        assert!(
            matches!(first, UdpReply::Peers { .. }),
            "user {user}: {first:?}"
        );
        let more = (u64::from(*user) * 1000, u64::from(*user) * 400, 600);
        let second = c.announce(url, &hash, &pid("u"), *port, more, "");
        let UdpReply::Peers {
            leechers, seeders, ..
        } = second
        else {
            panic!("user {user}: {second:?}")
        };
        assert_eq!(seeders, 0);
        assert!(leechers >= 1);
    }
    site.stop();
    let db = site.db();
    assert_eq!(credit(&db, 1), (1000, 400));
    assert_eq!(credit(&db, 2), (2000, 800));
    let peers = rows(
        &db,
        "SELECT uid, ip, port FROM xbt_files_users ORDER BY uid",
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        },
    );
    assert_eq!(
        peers,
        vec![
            (1, "127.0.0.1".to_string(), 9001),
            (2, "::1".to_string(), 9002)
        ]
    );
}

#[test]
fn udp_without_a_good_passkey_gets_passkey_not_found() {
    let site = Site::new();
    let hash = ih(1);
    site.torrent(&hash, 1, 0);
    let key = site.user(1);
    let good = format!("/{key}/announce");
    let wrong = format!("/{}/announce", pk(99));
    let scrape_path = format!("/{key}/scrape");
    let short = format!("/{}/announce", &key[..31]);
    let banned_key = site.user(2);
    site.ok(&format!(
        "action=update_user&passkey={banned_key}&can_leech=0"
    ));
    let banned = format!("/{banned_key}/announce");
    // (URL data, expected error)
    let cases: [(Vec<&str>, &str); 5] = [
        (vec![], "Passkey not found"),
        (vec![wrong.as_str()], "Passkey not found"),
        (vec![scrape_path.as_str()], "Passkey not found"),
        (vec![short.as_str()], "Passkey not found"),
        (vec!["/announce"], "Passkey not found"),
    ];
    for server in [site.udp[0], site.udp[1]] {
        let mut c = Udp::new(server);
        for (url, text) in &cases {
            // After a good one, so no state carries over between datagrams.
            assert!(matches!(
                c.announce(&[&good], &hash, &pid("u"), 9001, (0, 0, 5), ""),
                UdpReply::Peers { .. }
            ));
            let got = c.announce(url, &hash, &pid("u"), 9001, (0, 0, 5), "");
            assert_eq!(
                got,
                UdpReply::Error(text.to_string()),
                "{server} url {url:?}"
            );
        }
        let got = c.announce(&[&good], &ih(9), &pid("u"), 9001, (0, 0, 5), "");
        assert_eq!(
            got,
            UdpReply::Error("Unregistered torrent".into()),
            "{server}"
        );
        let got = c.announce(&[&banned], &hash, &pid("b"), 9002, (0, 0, 5), "");
        let text = "Access denied, leeching forbidden";
        assert_eq!(got, UdpReply::Error(text.into()), "{server}");
        let got = c.announce(&[&banned], &hash, &pid("b"), 9002, (0, 0, 0), "");
        assert!(
            matches!(got, UdpReply::Peers { .. }),
            "{server}: seeding is fine: {got:?}"
        );
    }
    // A UDP scrape carries no passkey: it is told nothing (README).
    for server in [site.udp[0], site.udp[1]] {
        let got = Udp::new(server).scrape(&[ih(9), hash]);
        assert_eq!(got, Err("Passkey not found".to_string()), "{server}");
    }
}

#[test]
fn http_and_udp_peers_of_one_torrent_see_each_other() {
    let site = Site::new();
    let hash = ih(1);
    site.torrent(&hash, 1, 0);
    for id in 1..=4 {
        site.user(id);
    }
    // (UDP server, HTTP server, UDP user, HTTP user, UDP port, HTTP port)
    let families = [
        (site.udp[0], site.v4(), 1, 2, 9001, 9002),
        (site.udp[1], site.v6(), 3, 4, 9003, 9004),
    ];
    for (udp, http, udp_user, http_user, udp_port, http_port) in families {
        let url = format!("/{}/announce", pk(udp_user));
        let mut c = Udp::new(udp);
        c.announce(&[&url], &hash, &pid("u"), udp_port, (0, 0, 5), "started")
            .peers();
        let r = site.announce_at(
            http,
            &pk(http_user),
            &hash,
            &pid("h"),
            &q(http_port, 0, 0, 0, ""),
        );
        let (four, six) = r.ports();
        let got = if udp.is_ipv4() { four } else { six };
        assert!(
            got.contains(&udp_port),
            "HTTP missed the UDP peer\n{}",
            r.context()
        );
        let peers = c
            .announce(&[&url], &hash, &pid("u"), udp_port, (0, 0, 5), "")
            .peers();
        assert!(
            peers.contains(&http_port),
            "UDP missed the HTTP peer: {peers:?}"
        );
        assert!(!peers.contains(&udp_port), "UDP got itself: {peers:?}");
    }
}

// ------------------------------------------------------- 7. report API

#[test]
fn report_api_stats_and_user_lines() {
    let site = Site::new();
    let (a, b) = (ih(1), ih(2));
    site.torrent(&a, 1, 0);
    site.torrent(&b, 2, 0);
    for id in 1..=3 {
        site.user(id);
    }
    site.announce(&pk(1), &a, &pid("1a"), &q(7001, 0, 0, 0, ""))
        .ok();
    site.announce(&pk(1), &b, &pid("1b"), &q(7001, 0, 0, 0, ""))
        .ok();
    site.announce(&pk(2), &a, &pid("2a"), &q(7002, 0, 0, 9, ""))
        .ok();
    site.announce(&pk(2), &b, &pid("2b"), &q(7002, 0, 0, 9, ""))
        .ok();
    site.announce_at(site.v6(), &pk(3), &a, &pid("3a"), &q(7003, 0, 0, 9, ""))
        .ok();
    // A stopped peer is no longer tracked.
    site.announce(&pk(3), &b, &pid("3b"), &q(7003, 0, 0, 9, ""))
        .ok();
    site.announce(&pk(3), &b, &pid("3b"), &q(7003, 0, 0, 9, "stopped"))
        .ok();

    let text = site.report("get=stats");
    let labels = [
        "uptime",
        "connections opened",
        "open connections",
        "connections/s",
        "requests handled",
        "requests/s",
        "successful announcements",
        "failed announcements",
        "scrapes",
        "leechers tracked",
        "seeders tracked",
        "bytes read",
        "bytes written",
    ];
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), labels.len(), "{text}");
    // Gazelle: explode(" ", $line, 2) → value, label.
    let mut stats = std::collections::HashMap::new();
    for (line, label) in lines.iter().zip(labels) {
        let (value, got) = line.split_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        assert_eq!(got, label, "{text}");
        let n: u64 = value.parse().unwrap_or_else(|_| panic!("{line:?}"));
        stats.insert(label, n);
    }
    assert_eq!(stats["leechers tracked"], 3, "{text}");
    assert_eq!(stats["seeders tracked"], 2, "{text}");
    assert!(stats["successful announcements"] >= 7, "{text}");

    for (user, want) in [
        (1, "0 leeching\n2 seeding\n"),
        (2, "2 leeching\n0 seeding\n"),
        (3, "1 leeching\n0 seeding\n"),
    ] {
        let got = site.report(&format!("get=user&key={}", pk(user)));
        assert_eq!(got, want, "user {user}");
    }
    site.request(
        site.v4(),
        &format!("/{REPORT}/report?get=user&key={}", pk(99)),
    )
    .refused("Passkey not found");
    for secret in ["tttttttttttttttttttttttttttttttt", SITE] {
        site.request(site.v4(), &format!("/{secret}/report?get=stats"))
            .refused("Authentication failure");
    }
    // No query: a page for crawlers, not a reply.
    for target in [
        format!("/{}/announce", pk(1)),
        format!("/{}/announce", pk(99)),
        format!("/{REPORT}/report"),
    ] {
        let r = get(site.v6(), &target);
        assert_eq!(r.status, 200, "{target}");
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{target}: {}",
            r.head
        );
        let page = r.text();
        assert!(page.contains("noindex, nofollow"), "{target}: {page}");
        assert!(page.contains("Nothing to see here"), "{target}: {page}");
    }
}

// ------------------------------------------------------ 8. reload

#[test]
fn reload_applies_database_changes_as_a_diff() {
    let mut site = Site::new();
    let (t, t2, t3) = (ih(1), ih(2), ih(3));
    site.torrent(&t, 1, 0);
    site.torrent(&t2, 2, 0);
    site.torrent(&t3, 3, 0);
    for id in [1, 2, 3, 5] {
        site.user(id);
    }
    // (user, torrent, peer, port, left)
    let peers: [(u32, [u8; 20], &str, u16, u64); 5] = [
        (1, t, "s1", 7001, 0),
        (2, t, "l2", 7002, 100),
        (3, t, "l3", 7003, 100),
        (3, t2, "l3", 7003, 100),
        (5, t3, "s5", 7005, 0),
    ];
    for (user, hash, tag, port, left) in peers {
        site.announce(&pk(user), &hash, &pid(tag), &q(port, 0, 0, left, ""))
            .ok();
    }
    // The control calls are in the file before the site edits it.
    site.wait_db((4, 3), |db| {
        (
            count(db, "SELECT count(*) FROM users_main"),
            count(db, "SELECT count(*) FROM torrents"),
        )
    });
    let rekeyed = "rekeyed0000000000000000000000003";
    {
        let db = site.db();
        let edits: [(&str, &[&dyn rusqlite::ToSql]); 8] = [
            (
                "INSERT INTO users_main (ID, torrent_pass, can_leech, Visible, Enabled) \
                 VALUES (4, ?1, 1, '1', '1')",
                &[&pk(4)],
            ),
            ("DELETE FROM users_main WHERE ID = 2", &[]),
            // Changed, not removed: their peers stay.
            (
                "UPDATE users_main SET torrent_pass = ?1 WHERE ID = 3",
                &[&rekeyed],
            ),
            ("UPDATE users_main SET can_leech = 0 WHERE ID = 1", &[]),
            ("UPDATE torrents SET FreeTorrent = '1' WHERE ID = 1", &[]),
            ("DELETE FROM torrents WHERE ID = 3", &[]),
            (
                "INSERT INTO users_freeleeches (UserID, TorrentID, Expired) VALUES (3, 2, '0')",
                &[],
            ),
            (
                "INSERT INTO xbt_client_whitelist (peer_id) VALUES ('-HY')",
                &[],
            ),
        ];
        for (sql, args) in edits {
            db.execute(sql, args)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
    assert!(site.server().reload_database());
    site.wait_metric("hayate_private_reloads_total", 1);

    for (key, hash) in [(pk(2), t), (pk(3), t)] {
        site.announce(&key, &hash, &pid("x"), &q(7009, 0, 0, 100, ""))
            .refused("Passkey not found");
    }
    site.announce(&pk(5), &t3, &pid("s5"), &q(7005, 0, 0, 0, ""))
        .refused("Unregistered torrent");
    site.announce(&pk(4), &t, &peer_id("-XX", "l4"), &q(7004, 0, 0, 100, ""))
        .refused("Your client is not on the whitelist");
    // The new user: 2's peer is gone; 1's (can_leech changed, seeding)
    // and 3's (re-keyed) are still handed out.
    let r = site.announce(&pk(4), &t, &pid("l4"), &q(7004, 0, 0, 100, ""));
    assert_eq!(r.ports(), (set(&[7001, 7003]), set(&[])), "{}", r.context());
    // t is free now; user 3 (its new key) holds a token on t2, and its
    // peers kept their baselines.
    site.announce(rekeyed, &t, &pid("l3"), &q(7003, 100, 1000, 100, ""))
        .ok();
    site.announce(rekeyed, &t2, &pid("l3"), &q(7003, 10, 2000, 100, ""))
        .ok();
    site.announce(&pk(1), &t2, &pid("l1"), &q(7001, 0, 0, 100, ""))
        .refused("Access denied, leeching forbidden");

    // Users 1, 3, 4, 5; torrents t, t2; seeder 1; leechers 3 (x2), 4, and
    // 1's refused (hidden) one on t2.
    let stats = site.stats();
    for (name, want) in [
        ("hayate_private_users", 4),
        ("hayate_private_torrents", 2),
        ("hayate_private_tokens", 1),
        ("hayate_private_peers{kind=\"seeder\"}", 1),
        ("hayate_private_peers{kind=\"leecher\"}", 4),
    ] {
        assert_eq!(metric(&stats, name), Some(want), "{name}\n{stats}");
    }
    site.stop();
    let db = site.db();
    assert_eq!(credit(&db, 3), (110, 0));
    assert_eq!(
        count(
            &db,
            "SELECT Downloaded FROM users_freeleeches WHERE UserID = 3 AND TorrentID = 2"
        ),
        2000
    );
}

// ------------------------------------------------ 9. public mode, stats

#[test]
fn public_mode_serves_no_private_url() {
    let s = start(config());
    for target in [
        format!(
            "/{}/announce?info_hash={}&peer_id={}{}",
            pk(1),
            pct(&ih(1)),
            pct(&pid("a")),
            q(7001, 0, 0, 5, "")
        ),
        format!("/{}/announce", pk(1)),
        format!("/{}/scrape?info_hash={}", pk(1), pct(&ih(1))),
        format!("/{SITE}/update?action=add_user&passkey={}&id=1", pk(1)),
        format!("/{REPORT}/report?get=stats"),
    ] {
        for addr in [v4(&s), v6(&s)] {
            let r = get(addr, &target);
            assert_eq!(r.status, 404, "{target} via {addr}: {}", r.text());
        }
    }
    assert!(!get(v4(&s), "/stats").text().contains("hayate_private_"));
    s.shutdown();
}

#[test]
fn private_stats_page_has_the_private_metrics() {
    let site = Site::new();
    site.torrent(&ih(1), 1, 0);
    site.torrent(&ih(2), 2, 0);
    let key = site.user(1);
    site.user(2);
    site.ok(&format!(
        "action=add_token&info_hash={}&userid=1",
        pct(&ih(1))
    ));
    site.announce(&key, &ih(1), &pid("a"), &q(7001, 0, 0, 0, ""))
        .ok();
    site.announce_at(site.v6(), &pk(2), &ih(1), &pid("b"), &q(7002, 0, 0, 5, ""))
        .ok();
    site.announce(&pk(9), &ih(1), &pid("c"), &q(7003, 0, 0, 5, ""))
        .refused("Passkey not found");
    site.wait_metric("hayate_private_peer_rows_committed_total", 2);
    let stats = site.stats();
    for (name, want) in [
        ("hayate_private_users", 2),
        ("hayate_private_torrents", 2),
        ("hayate_private_tokens", 1),
        ("hayate_private_peers{kind=\"seeder\"}", 1),
        ("hayate_private_peers{kind=\"leecher\"}", 1),
        (
            "hayate_private_refusals_total{reason=\"passkey_not_found\"}",
            1,
        ),
        ("hayate_private_database_errors_total", 0),
    ] {
        assert_eq!(metric(&stats, name), Some(want), "{name}\n{stats}");
    }
    assert!(metric(&stats, "hayate_private_batches_committed_total").is_some_and(|n| n >= 1));
}

// ------------------------------------------------------ 10. config

/// Runs the binary with `args` after a blank config and loopback ports;
/// returns the exit code (None if it was still running after 10 s) and
/// its stderr.
fn run_binary(args: &[&str]) -> (Option<i32>, String) {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_hayate"))
        .args([
            "--config",
            "/dev/null",
            "--http-listen",
            "127.0.0.1:0",
            "--udp-listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .current_dir(std::env::temp_dir())
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hayate");
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    (code, stderr)
}

#[test]
fn binary_refuses_unusable_private_configs_with_status_2() {
    let foreign = temp_db();
    {
        let db = Connection::open(&foreign).unwrap();
        db.execute("CREATE TABLE foo(x)", []).unwrap();
        db.execute("INSERT INTO foo VALUES (1)", []).unwrap();
    }
    let missing_dir =
        std::env::temp_dir().join(format!("hayate-nodir-{}-{}", std::process::id(), unique()));
    let foreign_url = format!("sqlite:{}", foreign.display());
    let missing_url = format!("sqlite:{}/x.db", missing_dir.display());
    let ok_db = temp_db();
    let ok_url = format!("sqlite:{}", ok_db.display());
    let short = &SITE[..31];
    let owned = |args: &[&str]| -> Vec<String> { args.iter().map(|s| s.to_string()).collect() };
    let with = |site: &str, database: &str| {
        owned(&[
            "--mode",
            "private",
            "--site-password",
            site,
            "--report-password",
            REPORT,
            "--database",
            database,
        ])
    };
    // (what, arguments, words the message must contain)
    let missing_text = missing_dir.display().to_string();
    let cases: Vec<(&str, Vec<String>, Vec<&str>)> = vec![
        (
            "no passwords",
            owned(&["--mode", "private", "--database", &ok_url]),
            vec!["site_password"],
        ),
        (
            "31-character site password",
            with(short, &ok_url),
            vec!["--site-password", "32", "31"],
        ),
        (
            "unknown scheme",
            with(SITE, "postgres://x"),
            vec!["sqlite:", "postgres"],
        ),
        #[cfg(not(feature = "mysql"))]
        (
            "mysql in a build without its driver",
            with(SITE, "mysql://root@127.0.0.1/gazelle"),
            vec!["mysql", "make build-mysql"],
        ),
        ("foreign schema", with(SITE, &foreign_url), vec!["foreign"]),
        (
            "missing directory",
            with(SITE, &missing_url),
            vec![missing_text.as_str()],
        ),
        (
            "an allowlist, which private mode would not use",
            [with(SITE, &ok_url), owned(&["--allowlist", "/dev/null"])].concat(),
            vec!["allowlist", "private mode"],
        ),
        (
            "the same secret twice",
            owned(&[
                "--mode",
                "private",
                "--site-password",
                SITE,
                "--report-password",
                SITE,
                "--database",
                &ok_url,
            ]),
            vec!["report_password"],
        ),
    ];
    for (what, args, words) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stderr) = run_binary(&args);
        assert_eq!(code, Some(2), "{what}: {args:?}\nstderr: {stderr}");
        for w in words {
            assert!(stderr.contains(w), "{what}: no {w:?} in\n{stderr}");
        }
    }
    // The foreign file is left as it was: no hayate tables, no WAL.
    let db = Connection::open(&foreign).unwrap();
    let tables = rows(&db, "SELECT name FROM sqlite_master ORDER BY name", |r| {
        r.get::<_, String>(0)
    });
    assert_eq!(tables, vec!["foo".to_string()]);
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_ne!(mode.to_lowercase(), "wal");
    drop(db);
    assert!(!missing_dir.exists(), "the missing directory was created");
    assert!(!ok_db.exists(), "a refused start created the database");
    remove_db(&foreign);
    remove_db(&ok_db);
}
