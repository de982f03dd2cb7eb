//! Private mode's exactly-once credit, with the real binary: every byte a
//! client reports after its peer's first committed announce is credited
//! once, across `kill -9` and database outages (the flusher commits credit
//! and baselines in one transaction; a restart restores the committed
//! baselines, `FLAG_RESTORED`).
//!
//! Each test runs a scripted site: users and torrents added through
//! `/update`, clients (user, torrent, peer_id, HTTP or UDP, IPv4 or IPv6)
//! announcing cumulative counters that grow by seeded random amounts, the
//! tracker killed and restarted on the same SQLite file. `Model` works out
//! what `users_main`, `torrents`, `users_freeleeches` and `xbt_snatched`
//! must hold; the tests read them with rusqlite and compare, exactly. A
//! failure prints the seed (`HAYATE_CRASH_SEED=N` replays the script; kill
//! timing within a burst is the machine's), both sets of numbers and every
//! run's stderr.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use rusqlite::{Connection, OptionalExtension};

/// The tracker's `flush_interval`: short, so barriers are quick.
const FLUSH_INTERVAL: &str = "200ms";
/// How long a barrier waits for the database to catch up. An outage's
/// back-off (1 s, then 2 s) fits several times.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(15);
/// Bursts of announces per phase in the scripted run.
const BURSTS: usize = 4;
const MIB: u64 = 1 << 20;
/// BEP 15's magic connect id.
const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// `FreeTorrent` codes.
const NORMAL: u8 = 0;
const FREE: u8 = 1;
const NEUTRAL: u8 = 2;

// ---------------------------------------------------------------------------
// Seeded randomness

/// splitmix64: small, seeded, the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn millis(&mut self, below: u64) -> Duration {
        Duration::from_millis(self.below(below))
    }
    fn text(&mut self, len: usize) -> String {
        const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..len)
            .map(|_| ALNUM[self.below(ALNUM.len() as u64) as usize] as char)
            .collect()
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

/// The run's seed: `HAYATE_CRASH_SEED`, or the clock. Printed first.
fn seed(test: &str) -> u64 {
    let seed = match std::env::var("HAYATE_CRASH_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("HAYATE_CRASH_SEED={s:?} is not a u64")),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nanos ^ (u64::from(std::process::id()) << 32) ^ unique().wrapping_mul(0x9e37)
        }
    };
    eprintln!("{test}: seed {seed} (HAYATE_CRASH_SEED={seed} replays it)");
    seed
}

// ---------------------------------------------------------------------------
// Announces on the wire

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    None,
    Started,
    Completed,
    Stopped,
}

impl Event {
    fn http(self) -> &'static str {
        match self {
            Event::None => "",
            Event::Started => "&event=started",
            Event::Completed => "&event=completed",
            Event::Stopped => "&event=stopped",
        }
    }
    fn udp(self) -> u32 {
        match self {
            Event::None => 0,
            Event::Completed => 1,
            Event::Started => 2,
            Event::Stopped => 3,
        }
    }
}

/// The running tracker's addresses (they change at each restart).
#[derive(Clone, Copy, Debug)]
struct Addrs {
    http4: SocketAddr,
    http6: SocketAddr,
    udp4: SocketAddr,
    udp6: SocketAddr,
}

/// How a client reaches the tracker: one UDP socket for all its announces
/// and one keep-alive HTTP connection (each lands on one worker: the
/// kernel's SO_REUSEPORT choice is by address and port), or (`fresh`) a
/// new socket or connection for every announce, as clients that close
/// after each HTTP announce do: a peer's announces then reach either
/// worker, and must still be committed in order.
#[derive(Debug, Default)]
struct Conn {
    fresh: bool,
    http: Option<(SocketAddr, BufReader<TcpStream>)>,
    udp: Option<(SocketAddr, UdpSocket)>,
}

/// One announce as sent: owned, so a burst thread can take it.
#[derive(Clone, Debug)]
struct Announce {
    passkey: String,
    info_hash: [u8; 20],
    peer_id: [u8; 20],
    port: u16,
    uploaded: u64,
    downloaded: u64,
    /// Sent over HTTP only (BEP 15 has no field for it).
    corrupt: u64,
    left: u64,
    event: Event,
    udp: bool,
    v6: bool,
}

/// The tracker's answer.
#[derive(Clone, Debug)]
enum Reply {
    Peers {
        seeders: u32,
        leechers: u32,
        peers: Vec<SocketAddr>,
    },
    Refused(String),
}

impl Announce {
    /// Sends it over `conn`; `Err` when no answer came (tracker down or
    /// killed mid-way).
    fn send(&self, to: &Addrs, conn: &mut Conn) -> Result<Reply, String> {
        match (self.udp, self.v6) {
            (false, false) => self.http(to.http4, conn),
            (false, true) => self.http(to.http6, conn),
            (true, false) => self.udp(to.udp4, conn),
            (true, true) => self.udp(to.udp6, conn),
        }
    }

    fn http(&self, to: SocketAddr, conn: &mut Conn) -> Result<Reply, String> {
        let target = format!(
            "/{}/announce?info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}\
             &corrupt={}&left={}&compact=1{}",
            self.passkey,
            pct(&self.info_hash),
            pct(&self.peer_id),
            self.port,
            self.uploaded,
            self.downloaded,
            self.corrupt,
            self.left,
            self.event.http()
        );
        let r = if conn.fresh {
            http_get(to, &target)?
        } else {
            // A kept connection the tracker closed meanwhile: once more on
            // a new one (the same counters: at most credited once).
            let reused = conn.http.as_ref().is_some_and(|(at, _)| *at == to);
            match keep_alive(to, &target, conn) {
                Err(_) if reused => keep_alive(to, &target, conn)?,
                r => r?,
            }
        };
        if r.status != 200 {
            return Ok(Reply::Refused(format!("HTTP {}: {}", r.status, r.text())));
        }
        let v: serde_bencode::value::Value = match serde_bencode::from_bytes(&r.body) {
            Ok(v) => v,
            Err(e) => return Ok(Reply::Refused(format!("not bencode ({e}): {}", r.text()))),
        };
        if let Some(why) = failure(&v) {
            return Ok(Reply::Refused(why));
        }
        let mut peers: Vec<SocketAddr> = peers4(&v)
            .into_iter()
            .map(|(ip, port)| (ip, port).into())
            .collect();
        peers.extend(
            peers6(&v)
                .into_iter()
                .map(|(ip, port)| SocketAddr::from((ip, port))),
        );
        Ok(Reply::Peers {
            seeders: int(&v, "complete") as u32,
            leechers: int(&v, "incomplete") as u32,
            peers,
        })
    }

    fn udp(&self, to: SocketAddr, conn: &mut Conn) -> Result<Reply, String> {
        let fail = |what: &str, e: std::io::Error| format!("udp {to}: {what}: {e}");
        if conn.fresh || conn.udp.as_ref().is_none_or(|(at, _)| *at != to) {
            let bind = if to.is_ipv4() {
                "127.0.0.1:0"
            } else {
                "[::1]:0"
            };
            let sock = UdpSocket::bind(bind).map_err(|e| fail("bind", e))?;
            // Connected: a dead tracker is ECONNREFUSED at once.
            sock.connect(to).map_err(|e| fail("connect", e))?;
            sock.set_read_timeout(Some(Duration::from_secs(2)))
                .map_err(|e| fail("timeout", e))?;
            conn.udp = Some((to, sock));
        }
        let sock = &conn.udp.as_ref().expect("socket").1;
        let be32 = |d: &[u8], at: usize| u32::from_be_bytes(d[at..at + 4].try_into().unwrap());
        let tx = unique() as u32;
        // The reply to this transaction (a late reply to an earlier one
        // that timed out is skipped).
        let exchange = |d: &[u8]| -> Result<Vec<u8>, String> {
            sock.send(d).map_err(|e| fail("send", e))?;
            let mut buf = [0u8; 2048];
            loop {
                let n = sock.recv(&mut buf).map_err(|e| fail("recv", e))?;
                if n >= 8 && be32(&buf, 4) == tx {
                    return Ok(buf[..n].to_vec());
                }
            }
        };
        let mut d = PROTOCOL_ID.to_be_bytes().to_vec();
        d.extend_from_slice(&0u32.to_be_bytes());
        d.extend_from_slice(&tx.to_be_bytes());
        let r = exchange(&d)?;
        if r.len() != 16 || be32(&r, 0) != 0 {
            return Ok(Reply::Refused(format!("bad connect reply {r:?}")));
        }
        let mut d = r[8..16].to_vec();
        d.extend_from_slice(&1u32.to_be_bytes());
        d.extend_from_slice(&tx.to_be_bytes());
        d.extend_from_slice(&self.info_hash);
        d.extend_from_slice(&self.peer_id);
        d.extend_from_slice(&self.downloaded.to_be_bytes());
        d.extend_from_slice(&self.left.to_be_bytes());
        d.extend_from_slice(&self.uploaded.to_be_bytes());
        d.extend_from_slice(&self.event.udp().to_be_bytes());
        d.extend_from_slice(&0u32.to_be_bytes()); // ip: the sender's
        d.extend_from_slice(&7u32.to_be_bytes()); // key
        d.extend_from_slice(&(-1i32).to_be_bytes()); // num_want: default
        d.extend_from_slice(&self.port.to_be_bytes());
        // BEP 41 URL data: the passkey's path.
        let url = format!("/{}/announce", self.passkey);
        d.push(2);
        d.push(url.len() as u8);
        d.extend_from_slice(url.as_bytes());
        let r = exchange(&d)?;
        match be32(&r, 0) {
            3 => Ok(Reply::Refused(
                String::from_utf8_lossy(&r[8..]).into_owned(),
            )),
            1 if r.len() >= 20 => {
                let peers = if to.is_ipv4() {
                    r[20..]
                        .chunks_exact(6)
                        .map(|c| {
                            let ip: [u8; 4] = c[..4].try_into().unwrap();
                            SocketAddr::from((ip, u16::from_be_bytes([c[4], c[5]])))
                        })
                        .collect()
                } else {
                    r[20..]
                        .chunks_exact(18)
                        .map(|c| {
                            let ip: [u8; 16] = c[..16].try_into().unwrap();
                            SocketAddr::from((ip, u16::from_be_bytes([c[16], c[17]])))
                        })
                        .collect()
                };
                Ok(Reply::Peers {
                    seeders: be32(&r, 16),
                    leechers: be32(&r, 12),
                    peers,
                })
            }
            _ => Ok(Reply::Refused(format!("bad announce reply {r:?}"))),
        }
    }
}

/// GET `target` on a new connection, closed after; `Err` when the tracker
/// is not there.
fn http_get(to: SocketAddr, target: &str) -> Result<Response, String> {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2))
        .map_err(|e| format!("http {to}: connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| format!("http {to}: {e}"))?;
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: tracker\r\nUser-Agent: private_crash/1\r\n\
         Connection: close\r\n\r\n"
    )
    .map_err(|e| format!("http {to}: write: {e}"))?;
    read_response(&mut BufReader::new(s)).ok_or_else(|| format!("http {to}: no response"))
}

/// GET `target` on `conn`'s kept connection to `to` (made when there is
/// none); a failure drops the connection.
fn keep_alive(to: SocketAddr, target: &str, conn: &mut Conn) -> Result<Response, String> {
    if conn.http.as_ref().is_none_or(|(at, _)| *at != to) {
        let s = TcpStream::connect_timeout(&to, Duration::from_secs(2))
            .map_err(|e| format!("http {to}: connect: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| format!("http {to}: {e}"))?;
        conn.http = Some((to, BufReader::new(s)));
    }
    let (_, reader) = conn.http.as_mut().expect("connection");
    let sent = write!(
        reader.get_mut(),
        "GET {target} HTTP/1.1\r\nHost: tracker\r\nUser-Agent: private_crash/1\r\n\r\n"
    );
    match sent.ok().and_then(|()| read_response(reader)) {
        Some(r) => Ok(r),
        None => {
            conn.http = None;
            Err(format!("http {to}: no response on the kept connection"))
        }
    }
}

// ---------------------------------------------------------------------------
// The site: a database file that outlives the tracker's runs

/// Which database the tracker runs on.
enum Backend {
    /// The embedded SQLite file in the site's directory.
    Sqlite,
    /// A Gazelle database on the MariaDB server (`make test-mysql`),
    /// reached through a proxy the test can cut; the site's token-expiry
    /// callback marks tokens expired as Gazelle's would.
    #[cfg(feature = "mysql")]
    Mysql {
        db: mariadb::TestDb,
        proxy: mariadb::Proxy,
        site_url: String,
    },
}

#[cfg(feature = "mysql")]
use common::mariadb;

struct Site {
    backend: Backend,
    /// Our own directory: the database lives here, across restarts.
    dir: PathBuf,
    db: PathBuf,
    site_password: String,
    report_password: String,
    tracker: Option<Proc>,
    /// stderr of the runs that ended (killed or stopped), oldest first.
    ended: Vec<String>,
}

impl Site {
    fn new(rng: &mut Rng, backend: Backend) -> Site {
        let dir =
            std::env::temp_dir().join(format!("hayate-crash-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).unwrap();
        Site {
            backend,
            db: dir.join("site.db"),
            dir,
            site_password: format!("S{}", rng.text(31)),
            report_password: format!("R{}", rng.text(31)),
            tracker: None,
            ended: Vec::new(),
        }
    }

    /// Starts the tracker on the database; returns how many live peers it
    /// says it restored.
    fn start(&mut self) -> usize {
        assert!(self.tracker.is_none(), "already running");
        let (database, extra): (String, Vec<String>) = match &self.backend {
            Backend::Sqlite => (format!("sqlite:{}", self.db.display()), Vec::new()),
            #[cfg(feature = "mysql")]
            Backend::Mysql {
                db,
                proxy,
                site_url,
            } => (
                db.url(Some(proxy.addr)),
                vec![
                    "--gazelle-schema".into(),
                    db.schema.name().into(),
                    "--site-url".into(),
                    site_url.clone(),
                ],
            ),
        };
        let mut args = vec![
            "--config",
            "/dev/null",
            "--mode",
            "private",
            "--site-password",
            &self.site_password,
            "--report-password",
            &self.report_password,
            "--database",
            &database,
            "--flush-interval",
            FLUSH_INTERVAL,
            "--http-listen",
            "127.0.0.1:0,[::1]:0",
            "--udp-listen",
            "127.0.0.1:0,[::1]:0",
            "--workers",
            "2",
        ];
        args.extend(extra.iter().map(String::as_str));
        let p = Proc::start(&args);
        assert!(
            p.http.len() == 2 && p.udp.len() == 2,
            "addresses: {}",
            p.stderr_text()
        );
        // Logged before the "serving" line Proc::start waited for.
        let restored = p
            .stderr_text()
            .lines()
            .find_map(|l| {
                let rest = l.split("restored ").nth(1)?;
                rest.split_whitespace().next()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("no \"restored N live peers\" line: {}", p.stderr_text()));
        self.tracker = Some(p);
        restored
    }

    fn tracker(&self) -> &Proc {
        self.tracker.as_ref().expect("tracker running")
    }

    fn addrs(&self) -> Addrs {
        let p = self.tracker();
        Addrs {
            http4: p.http[0],
            http6: p.http[1],
            udp4: p.udp[0],
            udp6: p.udp[1],
        }
    }

    /// SIGKILL; keeps its stderr.
    fn kill(&mut self) {
        let mut p = self.tracker.take().expect("tracker running");
        p.signal("KILL");
        let status = p.wait_exit(Duration::from_secs(5));
        self.ended.push(settled_stderr(&p, None));
        assert!(status.is_some(), "no exit after SIGKILL");
    }

    /// SIGTERM: exit 0 within 10 s (the last commit included).
    fn stop(&mut self) -> Result<(), String> {
        let mut p = self.tracker.take().expect("tracker running");
        p.signal("TERM");
        let status = p.wait_exit(Duration::from_secs(10));
        self.ended.push(settled_stderr(&p, Some(" stopped: ")));
        match status {
            Some(s) if s.success() => Ok(()),
            other => Err(format!("SIGTERM: exit {other:?}")),
        }
    }

    /// A control API call; `Err` unless it answers `success`.
    fn update(&self, query: &str) -> Result<(), String> {
        let target = format!("/{}/update?{query}", self.site_password);
        match http_get(self.tracker().http[0], &target) {
            Ok(r) if r.text() == "success" => Ok(()),
            Ok(r) => Err(format!("update?{query}: {}", r.text())),
            Err(e) => Err(format!("update?{query}: {e}")),
        }
    }

    fn metric(&self, name: &str) -> Option<u64> {
        metric(&get(self.tracker().http[0], "/stats").text(), name)
    }

    /// Failed commits so far (the stats page's counter).
    fn db_errors(&self) -> u64 {
        self.metric("hayate_private_database_errors_total")
            .unwrap_or(0)
    }

    /// The database as the site sees it, whichever it is.
    fn view(&self) -> View {
        match &self.backend {
            Backend::Sqlite => View::Sqlite(self.db()),
            #[cfg(feature = "mysql")]
            Backend::Mysql { db, .. } => View::Mysql(db.conn(), db.schema),
        }
    }

    /// The site's own database, when it owns one (the embedded one is
    /// written by hayate from the control API; a Gazelle site writes its
    /// rows, then tells the tracker).
    #[cfg(feature = "mysql")]
    fn site_db(&self) -> Option<&mariadb::TestDb> {
        match &self.backend {
            Backend::Mysql { db, .. } => Some(db),
            Backend::Sqlite => None,
        }
    }

    /// A connection of our own to the SQLite database (the site's view).
    fn db(&self) -> Connection {
        let c = Connection::open(&self.db).expect("open the database");
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c
    }

    /// Every run's stderr, the running one last.
    fn logs(&self) -> String {
        let mut all = self.ended.clone();
        if let Some(p) = &self.tracker {
            all.push(p.stderr_text());
        }
        all.iter()
            .enumerate()
            .map(|(i, t)| format!("--- run {} stderr ---\n{t}\n", i + 1))
            .collect()
    }

    /// Lines of every run's stderr containing `text`.
    fn log_lines(&self, text: &str) -> usize {
        self.logs().lines().filter(|l| l.contains(text)).count()
    }

    /// Lines containing `text` once at least one is there (waits up to
    /// 5 s: a figure on the stats page can move before its log line is
    /// written and read).
    fn logged(&self, text: &str) -> usize {
        wait_until(Duration::from_secs(5), || self.log_lines(text) > 0);
        self.log_lines(text)
    }
}

/// An exited tracker's whole stderr: the reader thread may still be
/// draining the pipe. Waits for `last` when given (the final line of a
/// normal stop), else until no line came for 100 ms.
fn settled_stderr(p: &Proc, last: Option<&str>) -> String {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut seen = p.stderr_text();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let now = p.stderr_text();
        let done = match last {
            Some(line) => now.contains(line),
            None => now == seen,
        };
        seen = now;
        if done {
            break;
        }
    }
    seen
}

impl Drop for Site {
    fn drop(&mut self) {
        drop(self.tracker.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------
// The model

/// What the database must hold, worked out from what the clients report.
///
/// Credit is per peer: what a client reports beyond its previous report,
/// from its first announce on (which credits nothing). Whether one given
/// announce reached the tracker, or was committed before a kill, does not
/// matter: counters are cumulative, so the next committed announce credits
/// the growth from the last committed baseline. What does matter is under
/// which leech type that growth is credited. So the script runs in phases:
/// leech-type changes, token grants, completed events and deletions happen
/// only at barriers (`Run::barrier`: every live peer's last report is
/// committed and the control change itself is in the database), kills only
/// inside a phase, and after a restart every live peer announces again
/// before the next barrier. Then each report's growth is credited under its
/// phase's rules, which is what `report` does when the report is made:
/// - normal: upload and download; free, or a token: upload only, and a
///   token's real download goes to `users_freeleeches.Downloaded`;
///   neutral: nothing;
/// - the torrent's balance moves by raw upload − download − corrupt,
///   whatever the type;
/// - a completed event (at a barrier) is one snatch and expires a token.
///
/// One limit no tracker can pass: growth reported to a tracker killed
/// before committing it is lost if the client's program restarts too (its
/// counters start again lower: a new baseline); `forget` takes it back.
#[derive(Debug, Default)]
struct Model {
    /// (Uploaded, Downloaded) by user index.
    credit: Vec<(u64, u64)>,
    /// balance by torrent index.
    balance: Vec<i64>,
    /// Snatches (`Snatched` and `xbt_snatched` rows) by torrent index.
    snatched: Vec<u64>,
    /// `FreeTorrent` by torrent index.
    leech: Vec<u8>,
    /// Deleted torrents (their `torrents` row is gone).
    deleted: Vec<bool>,
    /// Tokens held now: (user, torrent) indices.
    tokens: BTreeSet<(usize, usize)>,
    /// Every token ever granted: its `users_freeleeches.Downloaded`.
    token_downloads: BTreeMap<(usize, usize), u64>,
}

impl Model {
    fn new(users: usize, torrents: usize) -> Model {
        Model {
            credit: vec![(0, 0); users],
            balance: vec![0; torrents],
            snatched: vec![0; torrents],
            leech: vec![NORMAL; torrents],
            deleted: vec![false; torrents],
            ..Model::default()
        }
    }

    /// What growth (up, down) of `user`'s peer on `torrent` is credited
    /// under the current rules: (Uploaded, Downloaded, the token's
    /// Downloaded).
    fn rules(&self, user: usize, torrent: usize, up: u64, down: u64) -> (u64, u64, u64) {
        let tokened = self.tokens.contains(&(user, torrent));
        match self.leech[torrent] {
            NEUTRAL => (0, 0, 0),
            NORMAL if !tokened => (up, down, 0),
            _ if tokened => (up, 0, down),
            _ => (up, 0, 0),
        }
    }

    /// Growth of one peer's counters, credited under the current rules.
    fn report(&mut self, user: usize, torrent: usize, up: u64, down: u64, corrupt: u64) {
        self.balance[torrent] += up as i64 - down as i64 - corrupt as i64;
        let (up, down, token) = self.rules(user, torrent, up, down);
        self.credit[user].0 += up;
        self.credit[user].1 += down;
        if token > 0 {
            *self.token_downloads.entry((user, torrent)).or_default() += token;
        }
    }

    /// Takes a report back: growth a killed tracker never committed, from a
    /// client whose program then restarted too. Its counters went back
    /// below the baseline, so that growth is never reported again: no
    /// tracker can credit it.
    fn forget(&mut self, user: usize, torrent: usize, up: u64, down: u64, corrupt: u64) {
        self.balance[torrent] -= up as i64 - down as i64 - corrupt as i64;
        let (up, down, token) = self.rules(user, torrent, up, down);
        self.credit[user].0 -= up;
        self.credit[user].1 -= down;
        if token > 0 {
            *self.token_downloads.entry((user, torrent)).or_default() -= token;
        }
    }

    /// A first completed event: a snatch; a tokened one expires the token.
    fn snatch(&mut self, user: usize, torrent: usize) {
        self.snatched[torrent] += 1;
        self.tokens.remove(&(user, torrent));
    }

    /// The totals as the database must show them (by ids).
    fn expected(&self, users: &[User], torrents: &[Torrent]) -> Totals {
        let mut t = Totals::default();
        for (u, &c) in users.iter().zip(&self.credit) {
            t.credit.insert(u.id, c);
        }
        for (i, tor) in torrents.iter().enumerate() {
            if !self.deleted[i] {
                t.torrents
                    .insert(tor.id, (self.snatched[i], self.balance[i]));
            }
            if self.snatched[i] > 0 {
                t.snatch_rows.insert(tor.id, self.snatched[i]);
            }
        }
        for (&(u, tor), &down) in &self.token_downloads {
            t.token_downloads
                .insert((users[u].id, torrents[tor].id), down);
        }
        t
    }
}

/// The figures compared, by database id.
#[derive(Debug, Default, PartialEq, Eq)]
struct Totals {
    /// users_main: ID → (Uploaded, Downloaded).
    credit: BTreeMap<u32, (u64, u64)>,
    /// torrents: ID → (Snatched, balance).
    torrents: BTreeMap<u32, (u64, i64)>,
    /// xbt_snatched: fid → rows.
    snatch_rows: BTreeMap<u32, u64>,
    /// users_freeleeches: (UserID, TorrentID) → Downloaded.
    token_downloads: BTreeMap<(u32, u32), u64>,
}

/// An INTEGER column as u64 (SQLite has no unsigned type; a negative
/// value shows up as a huge one, which no expectation matches).
fn u64_at(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<u64> {
    r.get::<_, i64>(i).map(|v| v as u64)
}

/// The totals the database holds.
fn read_totals(db: &Connection) -> Totals {
    let mut t = Totals::default();
    let mut q = db
        .prepare("SELECT ID, Uploaded, Downloaded FROM users_main")
        .unwrap();
    for r in q
        .query_map([], |r| Ok((r.get(0)?, u64_at(r, 1)?, u64_at(r, 2)?)))
        .unwrap()
    {
        let (id, up, down): (u32, u64, u64) = r.unwrap();
        t.credit.insert(id, (up, down));
    }
    let mut q = db
        .prepare("SELECT ID, Snatched, balance FROM torrents")
        .unwrap();
    for r in q
        .query_map([], |r| Ok((r.get(0)?, u64_at(r, 1)?, r.get(2)?)))
        .unwrap()
    {
        let (id, snatched, balance): (u32, u64, i64) = r.unwrap();
        t.torrents.insert(id, (snatched, balance));
    }
    let mut q = db
        .prepare("SELECT fid, count(*) FROM xbt_snatched GROUP BY fid")
        .unwrap();
    for r in q.query_map([], |r| Ok((r.get(0)?, u64_at(r, 1)?))).unwrap() {
        let (fid, n): (u32, u64) = r.unwrap();
        t.snatch_rows.insert(fid, n);
    }
    let mut q = db
        .prepare("SELECT UserID, TorrentID, Downloaded FROM users_freeleeches")
        .unwrap();
    for r in q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, u64_at(r, 2)?)))
        .unwrap()
    {
        let (u, tor, down): (u32, u32, u64) = r.unwrap();
        t.token_downloads.insert((u, tor), down);
    }
    t
}

/// A connection of the test's own to the tracker's database.
enum View {
    Sqlite(Connection),
    #[cfg(feature = "mysql")]
    Mysql(mysql::Conn, mariadb::Schema),
}

/// (uploaded, downloaded, corrupt, remaining, active) of a peer row.
type PeerFigures = (u64, u64, u64, u64, bool);

impl View {
    fn peer_row(&mut self, uid: u32, fid: u32, peer_id: &[u8; 20]) -> Option<PeerFigures> {
        match self {
            View::Sqlite(db) => db
                .query_row(
                    "SELECT uploaded, downloaded, corrupt, remaining, active FROM xbt_files_users \
                     WHERE uid = ?1 AND fid = ?2 AND peer_id = ?3",
                    rusqlite::params![uid, fid, &peer_id[..]],
                    |r| {
                        Ok((
                            u64_at(r, 0)?,
                            u64_at(r, 1)?,
                            u64_at(r, 2)?,
                            u64_at(r, 3)?,
                            r.get(4)?,
                        ))
                    },
                )
                .optional()
                .unwrap(),
            #[cfg(feature = "mysql")]
            View::Mysql(c, _) => {
                use mysql::prelude::Queryable;
                let row: Option<(u64, u64, u64, u64, u8)> = c
                    .exec_first(
                        "SELECT uploaded, downloaded, corrupt, remaining, active FROM xbt_files_users \
                         WHERE uid = ? AND fid = ? AND peer_id = ?",
                        (uid, fid, peer_id.to_vec()),
                    )
                    .unwrap();
                row.map(|(a, b, c, d, e)| (a, b, c, d, e != 0))
            }
        }
    }

    /// `torrents.FreeTorrent` of torrent `id` (None: no row).
    fn free_torrent(&mut self, id: u32) -> Option<String> {
        self.text("SELECT FreeTorrent FROM torrents WHERE ID = ?", &[id])
    }

    /// `users_freeleeches.Expired` of a token (None: no row).
    fn token_expired(&mut self, user: u32, torrent: u32) -> Option<String> {
        self.text(
            "SELECT Expired FROM users_freeleeches WHERE UserID = ? AND TorrentID = ?",
            &[user, torrent],
        )
    }

    /// One column of one row as text; `?` placeholders take `ids`.
    fn text(&mut self, sql: &str, ids: &[u32]) -> Option<String> {
        match self {
            View::Sqlite(db) => db
                .query_row(sql, rusqlite::params_from_iter(ids), |r| {
                    r.get::<_, rusqlite::types::Value>(0)
                })
                .optional()
                .unwrap()
                .map(|v| match v {
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    other => format!("{other:?}"),
                }),
            #[cfg(feature = "mysql")]
            View::Mysql(c, _) => {
                use mysql::prelude::Queryable;
                let row: Option<mysql::Value> = c.exec_first(sql, ids.to_vec()).unwrap();
                match row? {
                    mysql::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                    mysql::Value::Int(i) => Some(i.to_string()),
                    mysql::Value::UInt(u) => Some(u.to_string()),
                    _ => None,
                }
            }
        }
    }

    fn totals(&mut self) -> Totals {
        match self {
            View::Sqlite(db) => read_totals(db),
            #[cfg(feature = "mysql")]
            View::Mysql(c, schema) => {
                use mysql::prelude::Queryable;
                let (users, torrents) = match schema {
                    mariadb::Schema::Classic => (
                        "SELECT ID, Uploaded, Downloaded FROM users_main",
                        "SELECT ID, Snatched, balance FROM torrents",
                    ),
                    mariadb::Schema::Ops => (
                        "SELECT u.ID, COALESCE(s.Uploaded, 0), COALESCE(s.Downloaded, 0) \
                         FROM users_main AS u LEFT JOIN users_leech_stats AS s ON s.UserID = u.ID",
                        "SELECT t.ID, COALESCE(s.Snatched, 0), COALESCE(s.Balance, 0) \
                         FROM torrents AS t LEFT JOIN torrents_leech_stats AS s ON s.TorrentID = t.ID",
                    ),
                };
                let mut t = Totals::default();
                for (id, up, down) in c.query::<(u32, u64, u64), _>(users).unwrap() {
                    t.credit.insert(id, (up, down));
                }
                for (id, n, balance) in c.query::<(u32, u64, i64), _>(torrents).unwrap() {
                    t.torrents.insert(id, (n, balance));
                }
                for (fid, n) in c
                    .query::<(u32, u64), _>("SELECT fid, count(*) FROM xbt_snatched GROUP BY fid")
                    .unwrap()
                {
                    t.snatch_rows.insert(fid, n);
                }
                for (u, tor, down) in c
                    .query::<(u32, u32, u64), _>(
                        "SELECT UserID, TorrentID, Downloaded FROM users_freeleeches",
                    )
                    .unwrap()
                {
                    t.token_downloads.insert((u, tor), down);
                }
                t
            }
        }
    }
}

// ---------------------------------------------------------------------------
// A scripted run

struct User {
    id: u32,
    passkey: String,
}

struct Torrent {
    id: u32,
    hash: [u8; 20],
}

/// A simulated BitTorrent client: one peer (user, peer_id, torrent).
struct Client {
    user: usize,
    torrent: usize,
    peer_id: [u8; 20],
    port: u16,
    udp: bool,
    v6: bool,
    /// Cumulative counters of its last report.
    up: u64,
    down: u64,
    /// Grows on HTTP clients only.
    corrupt: u64,
    left: u64,
    /// Has announced (its first announce credits nothing).
    seen: bool,
    /// Its last report got an answer from the tracker running now.
    confirmed: bool,
    /// Restored by the last restart and not heard from since: a `started`
    /// from it is credited from the committed baseline.
    restored: bool,
    /// Sent `stopped`, or its torrent was deleted: announces no more.
    gone: bool,
    conn: Conn,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "user {} torrent {} peer_id {} port {} {} {}{}: up {} down {} corrupt {} left {}{}{}{}{}",
            self.user,
            self.torrent,
            String::from_utf8_lossy(&self.peer_id),
            self.port,
            if self.udp { "udp" } else { "http" },
            if self.v6 { "ipv6" } else { "ipv4" },
            if self.conn.fresh { " fresh" } else { " kept" },
            self.up,
            self.down,
            self.corrupt,
            self.left,
            if self.seen { "" } else { ", unseen" },
            if self.confirmed { "" } else { ", unconfirmed" },
            if self.restored { ", restored" } else { "" },
            if self.gone { ", gone" } else { "" },
        )
    }
}

struct Run {
    name: &'static str,
    seed: u64,
    rng: Rng,
    site: Site,
    users: Vec<User>,
    torrents: Vec<Torrent>,
    clients: Vec<Client>,
    model: Model,
    /// Percent of new clients that use a new connection or socket per
    /// announce (the others keep theirs).
    fresh_percent: u64,
}

impl Run {
    /// Starts the tracker on a fresh database and registers `users` users
    /// (the last one protected: `visible=0`) and `torrents` torrents.
    fn new(name: &'static str, users: usize, torrents: usize) -> Run {
        Run::on(name, users, torrents, Backend::Sqlite)
    }

    /// `new` on the database `backend` names.
    fn on(name: &'static str, users: usize, torrents: usize, backend: Backend) -> Run {
        let seed = seed(name);
        let mut rng = Rng(seed);
        let mut site = Site::new(&mut rng, backend);
        let restored = site.start();
        let users: Vec<User> = (0..users)
            .map(|i| User {
                id: 11 + 7 * i as u32,
                passkey: rng.text(32),
            })
            .collect();
        let torrents: Vec<Torrent> = (0..torrents)
            .map(|i| Torrent {
                id: 201 + 3 * i as u32,
                hash: std::array::from_fn(|_| rng.next() as u8),
            })
            .collect();
        let run = Run {
            name,
            seed,
            rng,
            site,
            model: Model::new(users.len(), torrents.len()),
            users,
            torrents,
            clients: Vec::new(),
            fresh_percent: 50,
        };
        if restored != 0 {
            run.fail(&format!("a fresh database restored {restored} peers"));
        }
        let last = run.users.len() - 1;
        #[cfg(feature = "mysql")]
        if let Some(db) = run.site.site_db() {
            for (i, u) in run.users.iter().enumerate() {
                db.add_user(u.id, &u.passkey, i != last);
            }
            for t in &run.torrents {
                db.add_torrent(t.id, &t.hash, NORMAL);
            }
        }
        for (i, u) in run.users.iter().enumerate() {
            let visible = u8::from(i != last);
            run.update(&format!(
                "action=add_user&passkey={}&id={}&visible={visible}",
                u.passkey, u.id
            ));
        }
        for t in &run.torrents {
            run.update(&format!(
                "action=add_torrent&info_hash={}&id={}&freetorrent=0",
                hex(&t.hash),
                t.id
            ));
        }
        run
    }

    /// A control API call that must answer `success`.
    fn update(&self, query: &str) {
        if let Err(e) = self.site.update(query) {
            self.fail(&e);
        }
    }

    /// Adds a client; it resumes a session, so its counters start high.
    fn client(&mut self, user: usize, torrent: usize, seeder: bool, udp: bool, v6: bool) -> usize {
        let n = self.clients.len();
        let mut peer_id = *b"-CT0001-000000000000";
        peer_id[8..].copy_from_slice(self.rng.text(12).as_bytes());
        let up = self.rng.below(1 << 30);
        let down = self.rng.below(1 << 30);
        let fresh = self.rng.chance(self.fresh_percent);
        self.clients.push(Client {
            user,
            torrent,
            peer_id,
            port: 40_000 + n as u16,
            udp,
            v6,
            up,
            down,
            corrupt: 0,
            left: if seeder { 0 } else { 700 * MIB },
            seen: false,
            confirmed: false,
            restored: false,
            gone: false,
            conn: Conn {
                fresh,
                ..Conn::default()
            },
        });
        n
    }

    /// Clients still announcing.
    fn live(&self) -> Vec<usize> {
        (0..self.clients.len())
            .filter(|&i| !self.clients[i].gone)
            .collect()
    }

    /// Client `i`'s next report: its counters grow (not on a first
    /// `started`), the model credits the growth, `event` applies.
    fn next_report(&mut self, i: usize, event: Event) -> Announce {
        let first = !self.clients[i].seen;
        let seeder = self.clients[i].left == 0;
        let (mut up, mut down, mut corrupt) = (0, 0, 0);
        if !first && !self.rng.chance(15) {
            up = self.rng.below(if seeder { 8 * MIB } else { 2 * MIB });
            down = if seeder { 0 } else { self.rng.below(8 * MIB) };
            if !self.clients[i].udp && self.rng.chance(20) {
                corrupt = self.rng.below(256 * 1024);
            }
        }
        let c = &mut self.clients[i];
        // A `started` re-baselines, except from a restored peer.
        let credited = !first && (event != Event::Started || c.restored);
        c.up += up;
        c.down += down;
        c.corrupt += corrupt;
        if event == Event::Completed {
            c.left = 0;
        }
        let (user, torrent) = (c.user, c.torrent);
        if credited {
            self.model.report(user, torrent, up, down, corrupt);
        }
        self.wire(i, event)
    }

    /// Client `i`'s current counters as an announce.
    fn wire(&self, i: usize, event: Event) -> Announce {
        let c = &self.clients[i];
        Announce {
            passkey: self.users[c.user].passkey.clone(),
            info_hash: self.torrents[c.torrent].hash,
            peer_id: c.peer_id,
            port: c.port,
            uploaded: c.up,
            downloaded: c.down,
            corrupt: c.corrupt,
            left: c.left,
            event,
            udp: c.udp,
            v6: c.v6,
        }
    }

    /// Sends `a` for client `i` to the running tracker; it must be served
    /// (a lost UDP datagram is retried with the same counters).
    fn must(&mut self, i: usize, a: &Announce) -> Reply {
        let mut last = String::new();
        for _ in 0..3 {
            let addrs = self.site.addrs();
            match a.send(&addrs, &mut self.clients[i].conn) {
                Ok(Reply::Refused(why)) => {
                    self.fail(&format!("client {i} refused: {why:?}\n{a:?}"))
                }
                Ok(reply) => {
                    let c = &mut self.clients[i];
                    c.seen = true;
                    c.confirmed = true;
                    c.restored = false;
                    return reply;
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.fail(&format!(
            "client {i}: no answer from a running tracker: {last}"
        ))
    }

    /// Every client's first announce (`started`), then a barrier: first
    /// announces are committed before anything can be lost.
    fn start_all(&mut self) {
        for i in 0..self.clients.len() {
            let a = self.next_report(i, Event::Started);
            self.must(i, &a);
        }
        self.barrier();
    }

    /// One report from every live client, in random order, from two
    /// threads at once. With `kill_after`, the tracker gets SIGKILL that
    /// long after the burst starts (maybe after it ends): the caller then
    /// restarts it.
    fn burst(&mut self, kill_after: Option<Duration>) {
        let mut order = self.live();
        self.rng.shuffle(&mut order);
        let mut jobs: [Vec<(usize, Announce, Conn)>; 2] = [Vec::new(), Vec::new()];
        for (n, i) in order.into_iter().enumerate() {
            let a = self.next_report(i, Event::None);
            jobs[n % 2].push((i, a, std::mem::take(&mut self.clients[i].conn)));
        }
        let addrs = self.site.addrs();
        let site = &mut self.site;
        let results: Vec<(usize, Result<Reply, String>, Conn)> = std::thread::scope(|s| {
            let threads: Vec<_> = jobs
                .into_iter()
                .map(|half| {
                    s.spawn(move || {
                        half.into_iter()
                            .map(|(i, a, mut conn)| (i, a.send(&addrs, &mut conn), conn))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            if let Some(delay) = kill_after {
                std::thread::sleep(delay);
                site.kill();
            }
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect()
        });
        for (i, r, conn) in results {
            self.clients[i].conn = conn;
            match r {
                Ok(Reply::Peers { .. }) => {
                    let c = &mut self.clients[i];
                    c.confirmed = true;
                    c.restored = false;
                }
                Ok(Reply::Refused(why)) => self.fail(&format!("client {i} refused: {why:?}")),
                Err(_) if kill_after.is_some() => self.clients[i].confirmed = false,
                Err(e) => self.fail(&format!("client {i}: no answer, tracker running: {e}")),
            }
        }
    }

    /// Bursts with a random pause after each (so flushes fall anywhere).
    fn bursts(&mut self, n: usize) {
        for _ in 0..n {
            self.burst(None);
            let pause = self.rng.millis(120);
            std::thread::sleep(pause);
        }
    }

    /// SIGKILL now.
    fn kill(&mut self) {
        self.site.kill();
    }

    /// Starts the tracker again on the same database. Every live peer's
    /// committed row comes back; each must announce again before the next
    /// barrier (what it reported since its last commit is credited then).
    /// Returns how many live clients' last reports the kill lost (their
    /// rows hold an earlier report).
    fn restart(&mut self) -> usize {
        let restored = self.site.start();
        let live = self.live().len();
        if restored != live {
            self.fail(&format!(
                "restart restored {restored} live peers, {live} clients are live"
            ));
        }
        for c in self.clients.iter_mut().filter(|c| !c.gone) {
            c.confirmed = false;
            c.restored = true;
        }
        let lost = self
            .behind()
            .iter()
            .filter(|l| l.starts_with("client "))
            .count();
        eprintln!(
            "{}: restarted: {restored} peers restored, {lost} of their last reports not committed",
            self.name
        );
        lost
    }

    /// Ends a phase: every live client whose last report is not known to
    /// be served reports again, then waits until the database holds every
    /// client's last report and every control change (`behind`).
    fn barrier(&mut self) {
        for i in self.live() {
            if !self.clients[i].confirmed {
                let a = self.next_report(i, Event::None);
                self.must(i, &a);
            }
        }
        self.wait_db();
    }

    /// Waits until `behind` is empty and the flusher holds nothing.
    fn wait_db(&self) {
        let deadline = Instant::now() + BARRIER_TIMEOUT;
        loop {
            let behind = self.behind();
            let pending = self
                .site
                .metric("hayate_private_oldest_uncommitted_milliseconds");
            if behind.is_empty() && pending == Some(0) {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!(
                    "the database did not catch up within {BARRIER_TIMEOUT:?} \
                     (oldest uncommitted: {pending:?} ms):\n{}",
                    behind.join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// What the database does not show yet: peer rows not holding their
    /// client's last report, torrents and tokens not as the site set them.
    fn behind(&self) -> Vec<String> {
        let mut db = self.site.view();
        let mut out = Vec::new();
        for (i, c) in self.clients.iter().enumerate() {
            if !c.seen || self.model.deleted[c.torrent] {
                continue;
            }
            let row = db.peer_row(
                self.users[c.user].id,
                self.torrents[c.torrent].id,
                &c.peer_id,
            );
            let want = (c.up, c.down, c.corrupt, c.left, !c.gone);
            if row != Some(want) {
                out.push(format!(
                    "client {i}: xbt_files_users (uploaded, downloaded, corrupt, remaining, \
                     active) is {row:?}, last report {want:?}"
                ));
            }
        }
        for (i, t) in self.torrents.iter().enumerate() {
            let free = db.free_torrent(t.id);
            let want = (!self.model.deleted[i]).then(|| self.model.leech[i].to_string());
            if free != want {
                out.push(format!(
                    "torrent {}: FreeTorrent {free:?}, want {want:?}",
                    t.id
                ));
            }
        }
        for &(u, t) in self.model.token_downloads.keys() {
            let expired = db.token_expired(self.users[u].id, self.torrents[t].id);
            let want = if self.model.tokens.contains(&(u, t)) {
                "0"
            } else {
                "1"
            };
            if expired.as_deref() != Some(want) {
                out.push(format!(
                    "token user {} torrent {}: Expired {expired:?}, want {want}",
                    self.users[u].id, self.torrents[t].id
                ));
            }
        }
        out
    }

    /// Cuts the database off for `length` while clients announce: commits
    /// fail (counted) and the flusher keeps the deltas; then reconnects.
    fn outage(&mut self, length: Duration) {
        #[cfg(feature = "mysql")]
        if let Backend::Mysql { proxy, .. } = &self.site.backend {
            let errors = self.site.db_errors();
            proxy.close();
            let until = Instant::now() + length;
            while Instant::now() < until {
                self.burst(None);
                std::thread::sleep(Duration::from_millis(100));
            }
            if self.site.db_errors() == errors {
                self.fail("no commit failed during the outage");
            }
            if let Backend::Mysql { proxy, .. } = &self.site.backend {
                proxy.open();
            }
            eprintln!("{}: database outage of {length:?} over", self.name);
            return;
        }
        let _ = length;
        self.fail("an outage needs a database behind a proxy");
    }

    /// At a barrier: torrent `t`'s leech type, through the control API.
    fn set_leech(&mut self, t: usize, code: u8) {
        #[cfg(feature = "mysql")]
        if let Some(db) = self.site.site_db() {
            let id = self.torrents[t].id;
            db.exec(&[&format!(
                "UPDATE torrents SET FreeTorrent = '{code}' WHERE ID = {id}"
            )]);
        }
        self.update(&format!(
            "action=update_torrent&info_hash={}&freetorrent={code}",
            hex(&self.torrents[t].hash)
        ));
        self.model.leech[t] = code;
    }

    /// At a barrier: a token for user `u` on torrent `t`.
    fn add_token(&mut self, u: usize, t: usize) {
        #[cfg(feature = "mysql")]
        if let Some(db) = self.site.site_db() {
            db.add_token(self.users[u].id, self.torrents[t].id);
        }
        self.update(&format!(
            "action=add_token&info_hash={}&userid={}",
            hex(&self.torrents[t].hash),
            self.users[u].id
        ));
        self.model.tokens.insert((u, t));
        self.model.token_downloads.entry((u, t)).or_default();
    }

    /// At a barrier: client `i` completes (a snatch).
    fn complete(&mut self, i: usize) {
        let a = self.next_report(i, Event::Completed);
        self.must(i, &a);
        let c = &self.clients[i];
        self.model.snatch(c.user, c.torrent);
    }

    /// Client `i`'s program restarted: `started` with counters below the
    /// committed baseline re-baselines and credits nothing, even from a
    /// restored peer. A restored peer's reports the kill lost go with it
    /// (`Model::forget`).
    fn client_restarts(&mut self, i: usize) {
        if self.clients[i].restored {
            let c = &self.clients[i];
            let (up, down, corrupt, _, _) = self
                .site
                .view()
                .peer_row(
                    self.users[c.user].id,
                    self.torrents[c.torrent].id,
                    &c.peer_id,
                )
                .expect("a restored peer has its row");
            let (user, torrent) = (c.user, c.torrent);
            let lost = (c.up - up, c.down - down, c.corrupt - corrupt);
            self.model.forget(user, torrent, lost.0, lost.1, lost.2);
        }
        let (up, down) = (self.clients[i].up, self.clients[i].down);
        let up = self.rng.below(up.min(MIB));
        let down = self.rng.below(down.min(MIB));
        let c = &mut self.clients[i];
        (c.up, c.down, c.corrupt) = (up, down, 0);
        let a = self.wire(i, Event::Started);
        self.must(i, &a);
    }

    /// At a barrier: client `i` stops (its growth is credited).
    fn stop_client(&mut self, i: usize) {
        let a = self.next_report(i, Event::Stopped);
        self.must(i, &a);
        self.clients[i].gone = true;
    }

    /// At a barrier: torrent `t` deleted with reason 0 (Dupe); each of its
    /// clients is then refused with `Unregistered torrent: Dupe`.
    fn delete_torrent(&mut self, t: usize) {
        #[cfg(feature = "mysql")]
        if let Some(db) = self.site.site_db() {
            db.delete_torrent(self.torrents[t].id);
        }
        self.update(&format!(
            "action=delete_torrent&info_hash={}&reason=0",
            hex(&self.torrents[t].hash)
        ));
        self.model.deleted[t] = true;
        self.model.tokens.retain(|&(_, tor)| tor != t);
        for i in self.live() {
            if self.clients[i].torrent != t {
                continue;
            }
            // The same counters: a refused announce credits nothing.
            let a = self.wire(i, Event::None);
            let addrs = self.site.addrs();
            match a.send(&addrs, &mut self.clients[i].conn) {
                Ok(Reply::Refused(why)) if why == "Unregistered torrent: Dupe" => {}
                other => self.fail(&format!(
                    "client {i} (udp {}) on the deleted torrent: {other:?}",
                    a.udp
                )),
            }
            self.clients[i].gone = true;
        }
    }

    /// The database's totals must be the model's, exactly.
    fn check_totals(&self, when: &str) {
        let want = self.model.expected(&self.users, &self.torrents);
        let got = self.site.view().totals();
        if got != want {
            self.fail(&format!(
                "{when}: totals differ\nmodel expects: {want:#?}\ndatabase holds: {got:#?}"
            ));
        }
    }

    /// SIGTERM (exit 0), then the totals.
    fn finish(&mut self) {
        if let Err(e) = self.site.stop() {
            self.fail(&e);
        }
        self.check_totals("after SIGTERM");
    }

    /// Panics with the seed, `what`, both sets of totals and the logs.
    fn fail(&self, what: &str) -> ! {
        let want = self.model.expected(&self.users, &self.torrents);
        let got = self.site.view().totals();
        panic!(
            "{name}: {what}\n\nseed {seed}: replay with HAYATE_CRASH_SEED={seed} \
             cargo test --test private_crash -- {name}\nmodel expects: {want:?}\n\
             database holds: {got:?}\nclients: {clients:#?}\n{logs}",
            name = self.name,
            seed = self.seed,
            clients = self.clients,
            logs = self.site.logs()
        )
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where in the scripted run a kill falls.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// Before burst N, this long after the one before ended.
    Between(Duration),
    /// During burst N, this long after it started.
    During(Duration),
}

// ---------------------------------------------------------------------------
// The tests

/// The acceptance: a site with 6 users and 3 torrents, clients over
/// HTTP and UDP, IPv4 and IPv6; freeleech on and off, a token used, a
/// neutral torrent, snatches, a torrent deleted (Dupe), a client stopping;
/// SIGKILL twice at random points, restarts on the same file; SIGTERM.
/// Exact totals at every barrier and at the end. Each client keeps its
/// connection or opens one per announce (seeded).
#[test]
fn scripted_site_credit_is_exact_across_two_kill_9s() {
    let name = "scripted_site_credit_is_exact_across_two_kill_9s";
    scripted_site(Run::new(name, 6, 3), false);
}

/// The scripted run on a Gazelle database of the classic generation on
/// MariaDB, with a database outage (the proxy cut for 2.5 s) between
/// phases 1 and 2 besides the two kills.
#[cfg(feature = "mysql")]
#[test]
fn mysql_classic_scripted_site_is_exact_across_two_kill_9s_and_an_outage() {
    let name = "mysql_classic_scripted_site_is_exact_across_two_kill_9s_and_an_outage";
    scripted_site(
        Run::on(name, 6, 3, mysql_backend(mariadb::Schema::Classic)),
        true,
    );
}

/// The same on the ops generation (`users_leech_stats`,
/// `torrents_leech_stats`).
#[cfg(feature = "mysql")]
#[test]
fn mysql_ops_scripted_site_is_exact_across_two_kill_9s_and_an_outage() {
    let name = "mysql_ops_scripted_site_is_exact_across_two_kill_9s_and_an_outage";
    scripted_site(
        Run::on(name, 6, 3, mysql_backend(mariadb::Schema::Ops)),
        true,
    );
}

/// A fresh Gazelle database of `schema`, its proxy and its site callback.
#[cfg(feature = "mysql")]
fn mysql_backend(schema: mariadb::Schema) -> Backend {
    let db = mariadb::TestDb::create(schema);
    let (site_url, _) = mariadb::site_callback(&db.name);
    Backend::Mysql {
        db,
        proxy: mariadb::Proxy::start(),
        site_url,
    }
}

/// The scripted run on `run`'s database; `outage`: cut the database off
/// between phases 1 and 2 (a site-owned database behind its proxy).
fn scripted_site(mut run: Run, outage: bool) {
    let name = run.name;
    // Users 0..5 (5 is protected), torrents 0..2. (user, torrent, seeder, udp, v6)
    let t0_seeder = run.client(0, 0, true, false, false);
    run.client(1, 0, false, true, false);
    let t0_leecher = run.client(2, 0, false, false, true);
    run.client(5, 0, false, true, true);
    run.client(1, 1, true, true, true);
    let tokened = run.client(3, 1, false, false, false);
    run.client(4, 1, false, true, false);
    let second_peer = run.client(4, 1, false, false, false);
    run.client(0, 1, false, false, true);
    run.client(2, 2, true, false, false);
    run.client(3, 2, false, true, true);
    run.client(5, 2, true, true, false);
    run.client(4, 2, false, false, true);
    run.start_all();
    run.check_totals("after the first announces");

    // Two kills: one in phase 1 or 2, one later in phase 2 or 3.
    let k1 = run.rng.below(2 * BURSTS as u64) as usize;
    let from = (k1 + 1).max(BURSTS);
    let k2 = from + run.rng.below((3 * BURSTS - from) as u64) as usize;
    let mut kills: BTreeMap<usize, Kill> = BTreeMap::new();
    for k in [k1, k2] {
        let kill = if run.rng.chance(50) {
            Kill::During(run.rng.millis(12))
        } else {
            Kill::Between(run.rng.millis(300))
        };
        kills.insert(k, kill);
    }
    eprintln!("{name}: kills at bursts {kills:?}");

    for phase in 1..=3 {
        if phase == 2 && outage {
            run.outage(Duration::from_millis(2500));
        }
        match phase {
            // Freeleech on torrent 0, a token for user 3 on torrent 1,
            // torrent 2 neutral.
            2 => {
                run.set_leech(0, FREE);
                run.add_token(3, 1);
                run.set_leech(2, NEUTRAL);
                run.wait_db();
            }
            // Freeleech off; the tokened leecher and another complete;
            // torrent 2 deleted; a user's second client stops.
            3 => {
                run.set_leech(0, NORMAL);
                run.complete(tokened);
                run.complete(t0_leecher);
                run.delete_torrent(2);
                run.stop_client(second_peer);
                run.wait_db();
                run.check_totals("after phase 3's changes");
            }
            _ => {}
        }
        for b in 0..BURSTS {
            match kills.get(&((phase - 1) * BURSTS + b)) {
                Some(Kill::Between(after)) => {
                    std::thread::sleep(*after);
                    run.kill();
                    run.restart();
                    run.burst(None);
                }
                Some(Kill::During(after)) => {
                    run.burst(Some(*after));
                    run.restart();
                }
                None => run.burst(None),
            }
            let pause = run.rng.millis(120);
            std::thread::sleep(pause);
        }
        run.barrier();
        run.check_totals(&format!("end of phase {phase}"));
    }
    // A seeder leaves for good; the others just stop with the tracker.
    run.stop_client(t0_seeder);
    run.finish();
    // The outage's own line ("database commit failed") is the one
    // error expected.
    let errors = run.site.log_lines(" ERROR ") - run.site.log_lines("database commit failed");
    if errors + run.site.log_lines("panicked") > 0 {
        run.fail("error lines in stderr");
    }
    if outage && run.site.log_lines("database back after") != 1 {
        run.fail("the outage was not logged once as over");
    }
}

/// A database outage: the file locked by another connection (BEGIN
/// EXCLUSIVE) for 3 s while clients announce. Commits fail (counted, one
/// log line), nothing is lost or doubled once it is back ("database back
/// after"). Then an outage that ends in SIGKILL: the lock released, the
/// tracker restarted, the bytes it held in memory credited from the
/// restored baselines. Last, SIGTERM during an outage (its last commit
/// gives up): the same.
#[test]
fn database_outage_and_kill_9_during_one_lose_and_double_nothing() {
    let mut run = Run::new(
        "database_outage_and_kill_9_during_one_lose_and_double_nothing",
        4,
        2,
    );
    run.client(0, 0, true, false, false);
    run.client(1, 0, false, true, false);
    run.client(2, 0, false, false, true);
    run.client(3, 0, false, true, true);
    run.client(1, 1, true, false, true);
    run.client(0, 1, false, true, false);
    run.client(2, 1, false, true, true);
    run.start_all();
    run.bursts(2);
    run.barrier();
    run.check_totals("before the outage");

    if run.site.db_errors() != 0 {
        run.fail("database errors counted before the outage");
    }
    let lock = run.site.db();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        run.burst(None);
        let pause = run.rng.millis(150);
        std::thread::sleep(pause);
    }
    if run.site.db_errors() == 0 {
        run.fail("3 s of a locked database and no failed commit counted");
    }
    if run.site.logged("database commit failed") != 1 {
        run.fail("want exactly one \"database commit failed\" line for the outage");
    }
    lock.execute_batch("ROLLBACK").unwrap();
    run.barrier();
    run.check_totals("after the outage");
    if run.site.logged("database back after") != 1
        || run.site.log_lines("database commit failed") != 1
    {
        run.fail("want one \"database commit failed\" and one \"database back after\" line");
    }

    // A leech type change at a barrier, then an outage that ends in a kill.
    run.set_leech(1, FREE);
    run.wait_db();
    let before = run.site.db_errors();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    run.bursts(2);
    let site = &run.site;
    if !wait_until(Duration::from_secs(5), || site.db_errors() > before) {
        run.fail("locked again, no failed commit counted");
    }
    let after = run.rng.millis(12);
    run.burst(Some(after));
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    run.restart();
    run.bursts(2);
    run.barrier();
    run.check_totals("after the outage that ended in SIGKILL");

    // SIGTERM during an outage: the last commit gives up after its retries
    // (exit 0, an error line); what it held is credited after the restart.
    let lock = run.site.db();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    run.bursts(1);
    if let Err(e) = run.site.stop() {
        run.fail(&e);
    }
    if run.site.log_lines("shutdown: database still failing") != 1 {
        run.fail("SIGTERM during an outage: want one \"shutdown: database still failing\" line");
    }
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    run.restart();
    run.bursts(2);
    run.barrier();
    run.check_totals("after SIGTERM during an outage");
    run.finish();
}

/// Swarms survive `kill -9`: peers committed, then announcing again and
/// killed before the next flush. After the restart the stats page counts
/// them, a new leecher is handed every one of them (IPv4 and IPv6), a
/// restored peer's `started` is credited from its committed baseline (one
/// with lower counters, a restarted client, re-baselines), and the totals
/// are exact.
#[test]
fn restored_peers_are_handed_out_after_kill_9() {
    let mut run = Run::new("restored_peers_are_handed_out_after_kill_9", 5, 1);
    let seeder = run.client(0, 0, true, false, false);
    run.client(1, 0, true, true, true);
    let leecher = run.client(2, 0, false, true, false);
    run.client(3, 0, false, false, true);
    run.start_all();
    run.burst(None);
    run.kill();
    if run.restart() == 0 {
        run.fail("killed right after a burst, yet every report was committed");
    }

    let peers = |kind: &str| {
        run.site
            .metric(&format!("hayate_private_peers{{kind=\"{kind}\"}}"))
    };
    if (peers("seeder"), peers("leecher")) != (Some(2), Some(2)) {
        run.fail(&format!(
            "stats page after the restart: seeders {:?}, leechers {:?}, want 2 and 2",
            peers("seeder"),
            peers("leecher")
        ));
    }
    let mut want: Vec<SocketAddr> = run
        .clients
        .iter()
        .map(|c| {
            let ip = if c.v6 { "[::1]" } else { "127.0.0.1" };
            format!("{ip}:{}", c.port).parse().unwrap()
        })
        .collect();
    want.sort();
    let newcomer = run.client(4, 0, false, false, false);
    let a = run.next_report(newcomer, Event::Started);
    let got = match run.must(newcomer, &a) {
        Reply::Peers {
            seeders,
            leechers,
            mut peers,
        } => {
            peers.sort();
            (seeders, leechers, peers)
        }
        refused => run.fail(&format!("the newcomer got {refused:?}")),
    };
    if got != (2, 3, want.clone()) {
        run.fail(&format!(
            "the newcomer got (seeders, leechers, peers) {got:?}, want (2, 3, {want:?})"
        ));
    }
    // The restored seeder says `started` again (its client saw the tracker
    // go away): credited from the committed baseline, not re-baselined.
    let a = run.next_report(seeder, Event::Started);
    run.must(seeder, &a);
    // A restored leecher whose program restarted too: its `started` with
    // lower counters is a new baseline, nothing credited.
    run.client_restarts(leecher);
    run.barrier();
    run.check_totals("after the restart");
    run.bursts(1);
    run.finish();
}

/// Keeps one worker busy: connect requests every 5 ms from one UDP socket
/// (one source port: the kernel's SO_REUSEPORT hash sends them all to the
/// same worker) until `stop`: that worker takes turns all the time, the
/// other sleeps up to its poll timeout (1 s).
fn keep_one_worker_busy(to: SocketAddr, stop: &std::sync::atomic::AtomicBool) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut d = PROTOCOL_ID.to_be_bytes().to_vec();
    d.extend_from_slice(&[0; 8]);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let _ = sock.send_to(&d, to);
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A peer's row in `xbt_files_users` is the baseline its next credit
/// starts from, after a restart too; it must be the peer's LAST committed
/// announce. Clients that open a new connection per announce reach either
/// worker: three announces each in quick succession while one worker is
/// kept busy (before 2f1fcef it handed its ledger over at once and the
/// idle one up to 1 s later, whose older rows then overwrote the newer
/// committed ones: 8 of 12 rows stale, double credit after `kill -9`).
/// Once everything is committed, every row must hold its client's last
/// report, and after `kill -9` the totals must stay exact.
#[test]
fn an_older_announce_never_overwrites_a_newer_baseline() {
    let mut run = Run::new("an_older_announce_never_overwrites_a_newer_baseline", 2, 1);
    run.fresh_percent = 100;
    for i in 0..12 {
        run.client(i % 2, 0, i % 3 == 0, false, i % 2 == 1);
    }
    run.start_all();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let udp = run.site.addrs().udp4;
    std::thread::scope(|s| {
        s.spawn(|| keep_one_worker_busy(udp, &stop));
        for _ in 0..3 {
            run.burst(None);
        }
        // Both workers' ledgers handed over (poll timeout 1 s) and committed.
        std::thread::sleep(Duration::from_millis(1600));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    run.check_totals("everything committed");
    let stale = run.behind();
    run.kill();
    run.restart();
    run.burst(None);
    run.barrier();
    let want = run.model.expected(&run.users, &run.torrents);
    let got = read_totals(&run.site.db());
    if !stale.is_empty() || got != want {
        run.fail(&format!(
            "rows not holding the last committed report:\n{}\n\
             after kill -9 and a restart the totals are {}",
            stale.join("\n"),
            if got == want { "exact" } else { "wrong" }
        ));
    }
    run.finish();
}

/// The control API answers `success` to a change the site will not send
/// again: it must survive `kill -9` like credit does. Freeleech turned on,
/// the tracker killed at once, restarted: the torrent must still be free
/// (or its downloads are credited).
#[test]
fn an_acknowledged_freeleech_survives_kill_9() {
    let mut run = Run::new("an_acknowledged_freeleech_survives_kill_9", 2, 1);
    run.client(0, 0, true, false, false);
    let leecher = run.client(1, 0, false, true, false);
    run.start_all();
    run.set_leech(0, FREE);
    run.kill();
    run.restart();
    let free: String = run
        .site
        .db()
        .query_row("SELECT FreeTorrent FROM torrents", [], |r| r.get(0))
        .unwrap();
    if free != "1" {
        run.fail(&format!(
            "update_torrent freetorrent=1 answered success; after kill -9 FreeTorrent is {free:?}"
        ));
    }
    let a = run.next_report(leecher, Event::None);
    run.must(leecher, &a);
    run.barrier();
    run.check_totals("after the restart");
    run.finish();
}

/// `chattr` on `path`: `+i` makes it immutable (even root's writes, even
/// through a descriptor opened before, fail with EPERM), `-i` undoes it.
fn chattr(flag: &str, path: &std::path::Path) -> Result<(), String> {
    let out = std::process::Command::new("chattr")
        .arg(flag)
        .arg(path)
        .output()
        .map_err(|e| format!("chattr: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A database file made read-only while clients announce: the database
/// and its write-ahead log immutable (`chattr +i`, which holds for root
/// and for descriptors already open, unlike a mode change) for 3 s.
/// Commits fail (counted, one log line), and once the files are writable
/// again everything held in memory lands: nothing lost, nothing doubled.
/// Then the same ending in SIGKILL.
#[test]
fn database_made_read_only_loses_and_doubles_nothing() {
    let mut run = Run::new("database_made_read_only_loses_and_doubles_nothing", 3, 2);
    run.client(0, 0, true, false, false);
    run.client(1, 0, false, true, false);
    run.client(2, 1, false, false, true);
    run.client(1, 1, false, true, true);
    run.start_all();
    run.bursts(2);
    run.barrier();
    run.check_totals("before the outage");
    let db = run.site.db.clone();
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    // The shared-memory index stays writable: SQLite maps it, and a write
    // fault on a mapped immutable file would be a signal, not an error.
    let files = [db.clone(), wal.clone()];
    let freeze = |run: &Run| {
        for f in &files {
            if let Err(e) = chattr("+i", f) {
                run.fail(&format!("chattr +i {}: {e}", f.display()));
            }
        }
    };
    let thaw = || {
        for f in &files {
            let _ = chattr("-i", f);
        }
    };
    // Whatever happens, the files end writable (the test directory is
    // removed afterwards, and an immutable file cannot be).
    struct Thaw(Vec<PathBuf>);
    impl Drop for Thaw {
        fn drop(&mut self) {
            for f in &self.0 {
                let _ = chattr("-i", f);
            }
        }
    }
    let _thaw = Thaw(files.to_vec());
    freeze(&run);
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        run.burst(None);
        let pause = run.rng.millis(150);
        std::thread::sleep(pause);
    }
    let failed = run.site.db_errors();
    thaw();
    if failed == 0 {
        run.fail("3 s of a read-only database and no failed commit counted");
    }
    run.barrier();
    run.check_totals("after the read-only outage");
    if run.site.logged("database back after") != 1 {
        run.fail("want one \"database back after\" line");
    }

    // Read-only again, then SIGKILL while it is: the restart (files
    // writable again) credits what was held from the committed baselines.
    let before = run.site.db_errors();
    freeze(&run);
    run.bursts(2);
    let site = &run.site;
    let counted = wait_until(Duration::from_secs(5), || site.db_errors() > before);
    if !counted {
        thaw();
        run.fail("read-only again, no failed commit counted");
    }
    let after = run.rng.millis(12);
    run.burst(Some(after));
    thaw();
    run.restart();
    run.bursts(2);
    run.barrier();
    run.check_totals("after the read-only outage that ended in SIGKILL");
    run.finish();
}
