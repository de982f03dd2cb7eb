//! A real MariaDB/MySQL for the `mysql` feature's tests: the server of
//! `HAYATE_TEST_MYSQL` (default `mysql://root@127.0.0.1:3306`, what this
//! machine and CI run). Each `TestDb` is a database of its own with a
//! random name, holding Gazelle's tables of one schema generation
//! (`tests/mysql/{classic,ops}.sql`), dropped when the value goes. An
//! unreachable server fails the test: `make test-mysql` never skips.
//! `Proxy` is a TCP relay to the server that a test closes and reopens:
//! a database outage as the tracker sees it.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{Conn, Opts};

/// The server's URL without a database.
pub fn server_url() -> String {
    std::env::var("HAYATE_TEST_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// The server's TCP address.
pub fn server_addr() -> SocketAddr {
    let opts = Opts::from_url(&server_url()).expect("HAYATE_TEST_MYSQL is a mysql:// URL");
    let host = opts.get_ip_or_hostname().to_string();
    let host = if host == "localhost" {
        "127.0.0.1".into()
    } else {
        host
    };
    format!("{host}:{}", opts.get_tcp_port())
        .parse()
        .expect("HAYATE_TEST_MYSQL names an IP address")
}

/// A connection to the server (no database), or a panic that says why.
fn admin() -> Conn {
    let url = server_url();
    Conn::new(Opts::from_url(&url).unwrap()).unwrap_or_else(|e| {
        panic!(
            "MariaDB/MySQL at {url} is unreachable ({e}): the mysql tests need it \
             (set HAYATE_TEST_MYSQL=mysql://user:password@host:port)"
        )
    })
}

/// Schema generation of a test database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    Classic,
    Ops,
}

impl Schema {
    pub fn name(self) -> &'static str {
        match self {
            Schema::Classic => "classic",
            Schema::Ops => "ops",
        }
    }
}

/// A database of one test, dropped at the end.
pub struct TestDb {
    pub name: String,
    pub schema: Schema,
}

impl TestDb {
    /// A new database with Gazelle's tables of `schema`.
    pub fn create(schema: Schema) -> TestDb {
        let name = format!(
            "hayate_test_{}_{}_{}",
            std::process::id(),
            super::unique(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let mut c = admin();
        c.query_drop(format!("CREATE DATABASE `{name}`")).unwrap();
        let db = TestDb { name, schema };
        let ddl = std::fs::read_to_string(format!(
            "{}/tests/mysql/{}.sql",
            env!("CARGO_MANIFEST_DIR"),
            schema.name()
        ))
        .unwrap();
        let mut c = db.conn();
        for statement in ddl.split(";\n").filter(|s| {
            s.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
        }) {
            c.query_drop(statement)
                .unwrap_or_else(|e| panic!("{}: {e}\n{statement}", schema.name()));
        }
        db
    }

    /// The URL hayate gets: the server's, or `via` (a proxy) instead.
    pub fn url(&self, via: Option<SocketAddr>) -> String {
        let opts = Opts::from_url(&server_url()).unwrap();
        let user = opts.get_user().unwrap_or("root");
        let auth = match opts.get_pass() {
            Some(p) => format!("{user}:{p}"),
            None => user.to_owned(),
        };
        let addr = via.unwrap_or_else(server_addr);
        format!("mysql://{auth}@{addr}/{}", self.name)
    }

    /// A connection of the test's own (the site's view).
    pub fn conn(&self) -> Conn {
        let mut c = admin();
        c.query_drop(format!("USE `{}`", self.name)).unwrap();
        c
    }

    /// Runs statements, panicking with the failing one.
    pub fn exec(&self, sql: &[&str]) {
        let mut c = self.conn();
        for s in sql {
            c.query_drop(s).unwrap_or_else(|e| panic!("{e}\n{s}"));
        }
    }

    /// One value as text (NULL and no row read as None).
    pub fn text(&self, sql: &str) -> Option<String> {
        let v: Option<Option<String>> = self.conn().query_first(sql).unwrap();
        v.flatten()
    }

    /// One integer (NULL and no row read as None).
    pub fn int(&self, sql: &str) -> Option<i128> {
        let v: Option<Option<String>> = self.conn().query_first(sql).unwrap();
        v.flatten().map(|s| s.parse().unwrap())
    }

    /// A user row as the site writes it (`visible` 0 = protected), with
    /// its `users_leech_stats` row on ops.
    pub fn add_user(&self, id: u32, passkey: &str, visible: bool) {
        let v = if visible { "1" } else { "0" };
        match self.schema {
            Schema::Classic => self.exec(&[&format!(
                "INSERT INTO users_main (ID, Username, Email, PassHash, Secret, Title, \
                 PermissionID, torrent_pass, Visible, Enabled, IP) VALUES ({id}, 'u{id}', \
                 'u{id}@x', 'h', '{pad}', '', 2, '{passkey}', '{v}', '1', '10.0.0.1')",
                pad = "s".repeat(32)
            )]),
            Schema::Ops => self.exec(&[
                &format!(
                    "INSERT INTO users_main (ID, Username, Email, PassHash, PermissionID, \
                     torrent_pass, auth_key, Visible, Enabled, IP) VALUES ({id}, 'u{id}', \
                     'u{id}@x', 'h', 2, '{passkey}', 'a', '{v}', '1', '10.0.0.1')"
                ),
                &format!("INSERT INTO users_leech_stats (UserID) VALUES ({id})"),
            ]),
        }
    }

    /// A torrent row (`free`: 0, 1, 2), with its `torrents_leech_stats`
    /// row on ops.
    pub fn add_torrent(&self, id: u32, hash: &[u8; 20], free: u8) {
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        self.exec(&[&format!(
            "INSERT INTO torrents (ID, GroupID, info_hash, FileCount, FileList, Size, FreeTorrent) \
             VALUES ({id}, 1, X'{hex}', 1, '', 1, '{free}')"
        )]);
        if self.schema == Schema::Ops {
            self.exec(&[&format!(
                "INSERT INTO torrents_leech_stats (TorrentID) VALUES ({id})"
            )]);
        }
    }

    /// A token row, unexpired.
    pub fn add_token(&self, user: u32, torrent: u32) {
        self.exec(&[&format!(
            "INSERT INTO users_freeleeches (UserID, TorrentID, Time, Expired) \
             VALUES ({user}, {torrent}, NOW(), 0) ON DUPLICATE KEY UPDATE Expired = 0"
        )]);
    }

    /// The site deletes a torrent (its stats row too, as OPS's foreign
    /// key cascades; its tokens expired).
    pub fn delete_torrent(&self, id: u32) {
        self.exec(&[
            &format!("DELETE FROM torrents WHERE ID = {id}"),
            &format!("UPDATE users_freeleeches SET Expired = 1 WHERE TorrentID = {id}"),
        ]);
        if self.schema == Schema::Ops {
            self.exec(&[&format!(
                "DELETE FROM torrents_leech_stats WHERE TorrentID = {id}"
            )]);
        }
    }

    /// (Uploaded, Downloaded) of a user, from its schema's table.
    pub fn credit(&self, id: u32) -> (u64, u64) {
        let table = match self.schema {
            Schema::Classic => format!("users_main WHERE ID = {id}"),
            Schema::Ops => format!("users_leech_stats WHERE UserID = {id}"),
        };
        let row: Option<(u64, u64)> = self
            .conn()
            .query_first(format!("SELECT Uploaded, Downloaded FROM {table}"))
            .unwrap();
        row.unwrap_or_else(|| panic!("no credit row for user {id}"))
    }

    /// (Seeders, Leechers, Snatched, balance) of a torrent.
    pub fn torrent_stats(&self, id: u32) -> Option<(u64, u64, u64, i64)> {
        let sql = match self.schema {
            Schema::Classic => {
                format!("SELECT Seeders, Leechers, Snatched, balance FROM torrents WHERE ID = {id}")
            }
            Schema::Ops => format!(
                "SELECT Seeders, Leechers, Snatched, Balance FROM torrents_leech_stats \
                 WHERE TorrentID = {id}"
            ),
        };
        self.conn().query_first(sql).unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = Conn::new(Opts::from_url(&server_url()).unwrap()) {
            let _ = c.query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.name));
        }
    }
}

/// A TCP relay to the server on a port of its own. `close` cuts every
/// relayed connection and refuses new ones (accepted, then closed at once)
/// until `open`: the address stays the same, as a real outage's would.
pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (o, l) = (Arc::clone(&open), Arc::clone(&live));
        let target = server_addr();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !o.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) else {
                    continue;
                };
                let mut list = l.lock().unwrap();
                list.retain(|s| s.peer_addr().is_ok());
                for s in [&client, &server] {
                    if let Ok(c) = s.try_clone() {
                        list.push(c);
                    }
                }
                drop(list);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        loop {
                            match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { addr, open, live }
    }

    /// The outage starts: every relayed connection is cut.
    pub fn close(&self) {
        self.open.store(false, Ordering::SeqCst);
        for s in self.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// The outage ends.
    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// The site's `tools.php?type=expiretoken` as Gazelle answers it: marks
/// each `tokens=user:torrent,...` row of database `db` expired, answers
/// 200. Returns its `site_url` and a counter of the calls it served.
pub fn site_callback(db: &str) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::BufRead;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let served = Arc::clone(&calls);
    let db = db.to_owned();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let mut line = String::new();
            if std::io::BufReader::new(&s).read_line(&mut line).is_err() {
                continue;
            }
            let tokens = line
                .split_whitespace()
                .nth(1)
                .and_then(|t| t.split("tokens=").nth(1))
                .unwrap_or("")
                .replace("%3A", ":")
                .replace("%2C", ",");
            let mut c = admin();
            c.query_drop(format!("USE `{db}`")).unwrap();
            for pair in tokens.split(',').filter(|p| !p.is_empty()) {
                let (u, t) = pair.split_once(':').unwrap();
                let (u, t): (u32, u32) = (u.parse().unwrap(), t.parse().unwrap());
                c.query_drop(format!(
                    "UPDATE users_freeleeches SET Expired = 1 WHERE UserID = {u} AND TorrentID = {t}"
                ))
                .unwrap();
            }
            served.fetch_add(1, Ordering::SeqCst);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (url, calls)
}
