//! Tests of the embedded database driver: each on its own temp file.

use super::*;
use crate::db::{PeerRow, Snatch, TokenCredit, TorrentUpdate, UserCredit};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A database path under the temp dir, removed (with its WAL) on drop.
struct Temp(PathBuf);

impl Temp {
    fn new() -> Temp {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("hayate-sqlite-{}-{n}-{nanos}.db", std::process::id());
        Temp(std::env::temp_dir().join(name))
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
    fn raw(&self) -> Connection {
        Connection::open(&self.0).unwrap()
    }
    fn int(&self, sql: &str) -> i64 {
        self.raw().query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path()));
        }
    }
}

fn user(id: u32, key: u8, can_leech: bool, protected: bool) -> UserRow {
    UserRow {
        id,
        passkey: [key; 32],
        can_leech,
        protected,
    }
}

fn torrent(id: u32, hash: u8, free: u8) -> TorrentRow {
    TorrentRow {
        id,
        info_hash: [hash; 20],
        free,
        snatched: 0,
    }
}

fn mirror(m: Mirror) -> Batch {
    Batch {
        mirror: m,
        ..Batch::default()
    }
}

fn peer(torrent: u32, id: u8, active: bool, ip: &str, mtime: i64) -> PeerRow {
    let ip = ip.parse().ok();
    PeerRow {
        user: 1,
        torrent,
        peer_id: [id; 20],
        active,
        uploaded: 100,
        downloaded: 50,
        corrupt: 1,
        left: 7,
        upspeed: 10,
        downspeed: 20,
        timespent: 30,
        announced: 1,
        ip,
        port: 6881,
        useragent: "test/1.0".into(),
        mtime,
    }
}

fn sorted(mut l: Loaded) -> Loaded {
    l.users.sort_by_key(|u| u.id);
    l.torrents.sort_by_key(|t| t.id);
    l.tokens.sort();
    l.whitelist.sort();
    l
}

#[test]
fn fresh_open_creates_schema() {
    let t = Temp::new();
    let db = Sqlite::open(t.path()).unwrap();
    assert_eq!(db.path(), t.path());
    assert_eq!(t.int("PRAGMA user_version"), i64::from(SCHEMA_VERSION));
    let tables: Vec<String> = t
        .raw()
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let want = [
        "torrents",
        "users_freeleeches",
        "users_main",
        "xbt_client_whitelist",
        "xbt_files_users",
        "xbt_snatched",
    ];
    assert_eq!(tables, want);
}

#[test]
fn journal_mode_is_wal_and_synchronous_full() {
    let t = Temp::new();
    let db = Sqlite::open(t.path()).unwrap();
    let conn = db.conn.as_ref().unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = conn
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "FULL");
}

#[test]
fn reopen_keeps_data() {
    let t = Temp::new();
    let mut db = Sqlite::open(t.path()).unwrap();
    let m = Mirror {
        users: vec![user(1, b'a', true, false)],
        ..Mirror::default()
    };
    db.commit(&mirror(m)).unwrap();
    drop(db);
    let mut db = Sqlite::open(t.path()).unwrap();
    assert_eq!(db.load().unwrap().users, vec![user(1, b'a', true, false)]);
}

#[test]
fn foreign_schemas_are_refused_untouched() {
    let t = Temp::new();
    t.raw().execute_batch("CREATE TABLE foo(x)").unwrap();
    let err = Sqlite::open(t.path()).err().unwrap().0;
    assert!(
        err.starts_with(&format!("sqlite {}: foreign schema", t.path())),
        "{err}"
    );
    assert!(err.contains("will not touch it"), "{err}");
    assert_eq!(t.int("SELECT count(*) FROM sqlite_master"), 1);
    let mode: String = t
        .raw()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "the file's journal mode is left alone");

    let t = Temp::new();
    t.raw().execute_batch("PRAGMA user_version = 7").unwrap();
    let err = Sqlite::open(t.path()).err().unwrap().0;
    assert!(err.contains("unknown schema version 0x7"), "{err}");
    assert_eq!(t.int("PRAGMA user_version"), 7);
}

#[test]
fn non_sqlite_file_is_refused() {
    let t = Temp::new();
    std::fs::write(&t.0, [0x5a_u8; 4096]).unwrap();
    let err = Sqlite::open(t.path()).err().unwrap().0;
    assert_eq!(err, format!("sqlite {}: file is not a database", t.path()));
    assert_eq!(std::fs::read(&t.0).unwrap(), [0x5a_u8; 4096]);
}

#[test]
fn missing_directory_is_refused() {
    let t = Temp::new();
    let path = t.0.join("no-such-dir").join("hayate.db");
    let path = path.to_str().unwrap();
    let err = Sqlite::open(path).err().unwrap().0;
    assert_eq!(err, format!("sqlite {path}: unable to open database file"));
    assert!(Sqlite::open("").is_err());
}

#[test]
fn mirror_round_trips_through_load() {
    let t = Temp::new();
    let mut db = Sqlite::open(t.path()).unwrap();
    let first = Mirror {
        users: vec![
            user(1, b'a', true, false),
            user(2, b'b', false, true),
            user(3, b'c', true, false),
        ],
        torrents: vec![torrent(1, 1, 1), torrent(2, 2, 2), torrent(3, 3, 0)],
        tokens: vec![
            Token {
                user: 1,
                torrent: 1,
            },
            Token {
                user: 2,
                torrent: 1,
            },
            Token {
                user: 1,
                torrent: 2,
            },
        ],
        whitelist: Some(vec![b"-TR".to_vec(), b"-qB".to_vec()]),
        ..Mirror::default()
    };
    db.commit(&mirror(first)).unwrap();
    // Users 1 and 2 swap passkeys; 3 is disabled; torrent 2 deleted
    // (its token with it); one token expired; torrent 9 takes torrent
    // 3's info_hash.
    let second = Mirror {
        users: vec![user(1, b'b', true, false), user(2, b'a', false, true)],
        disabled_users: vec![user(3, b'c', true, false)],
        torrents: vec![torrent(9, 3, 2)],
        deleted_torrents: vec![2],
        expired_tokens: vec![Token {
            user: 2,
            torrent: 1,
        }],
        whitelist: Some(vec![b"-DE".to_vec(), b"-TR".to_vec()]),
        ..Mirror::default()
    };
    db.commit(&mirror(second)).unwrap();
    let want = Loaded {
        users: vec![user(1, b'b', true, false), user(2, b'a', false, true)],
        torrents: vec![torrent(1, 1, 1), torrent(9, 3, 2)],
        tokens: vec![Token {
            user: 1,
            torrent: 1,
        }],
        whitelist: vec![b"-DE".to_vec(), b"-TR".to_vec()],
    };
    assert_eq!(sorted(db.load().unwrap()), want);
    // Re-granting the expired token brings it back; retries change nothing.
    let again = Mirror {
        tokens: vec![Token {
            user: 2,
            torrent: 1,
        }],
        ..Mirror::default()
    };
    db.commit(&mirror(again.clone())).unwrap();
    db.commit(&mirror(again)).unwrap();
    assert_eq!(sorted(db.load().unwrap()).tokens.len(), 2);
    // A new user may take the passkey a disabled user still holds.
    let reuse = Mirror {
        users: vec![user(4, b'c', true, false)],
        ..Mirror::default()
    };
    db.commit(&mirror(reuse)).unwrap();
    assert_eq!(sorted(db.load().unwrap()).users.len(), 3);
    assert_eq!(
        t.int("SELECT count(*) FROM users_main WHERE torrent_pass = 'x3'"),
        1
    );
}

#[test]
fn load_skips_bad_rows() {
    let t = Temp::new();
    let mut db = Sqlite::open(t.path()).unwrap();
    t.raw()
        .execute_batch(
            "INSERT INTO users_main (ID, torrent_pass) VALUES (5, 'short');
             INSERT INTO users_main (ID, torrent_pass) VALUES (4294967296, 'x');
             INSERT INTO users_main (ID, torrent_pass, IP)
                 VALUES (6, 'dddddddddddddddddddddddddddddddd', '127.0.0.1');
             INSERT INTO torrents (ID, info_hash, FreeTorrent) VALUES (7, x'0102', '1');
             INSERT INTO torrents (ID, info_hash, FreeTorrent, Snatched)
                 VALUES (8, zeroblob(20), 'x', 4);",
        )
        .unwrap();
    let loaded = db.load().unwrap();
    assert_eq!(loaded.users, vec![user(6, b'd', true, true)]);
    assert_eq!(
        loaded.torrents,
        vec![TorrentRow {
            snatched: 4,
            ..torrent(8, 0, 0)
        }]
    );
}

#[test]
fn credit_adds_up_across_commits() {
    let t = Temp::new();
    let mut db = Sqlite::open(t.path()).unwrap();
    let credit = |uploaded, downloaded| UserCredit {
        id: 1,
        uploaded,
        downloaded,
    };
    let first = Batch {
        mirror: Mirror {
            users: vec![user(1, b'a', true, false)],
            ..Mirror::default()
        },
        users: vec![credit(10, 20)],
        ..Batch::default()
    };
    db.commit(&first).unwrap();
    db.commit(&Batch {
        users: vec![credit(5, 7)],
        ..Batch::default()
    })
    .unwrap();
    assert_eq!(t.int("SELECT Uploaded FROM users_main WHERE ID = 1"), 15);
    assert_eq!(t.int("SELECT Downloaded FROM users_main WHERE ID = 1"), 27);
}

#[test]
fn u64_max_credit_saturates() {
    let t = Temp::new();
    let mut db = Sqlite::open(t.path()).unwrap();
    let huge = Batch {
        mirror: Mirror {
            users: vec![user(1, b'a', true, false)],
            ..Mirror::default()
        },
        users: vec![UserCredit {
            id: 1,
            uploaded: u64::MAX,
            downloaded: 1,
        }],
        tokens: vec![TokenCredit {
            token: Token {
                user: 1,
                torrent: 1,
            },
            downloaded: u64::MAX,
        }],
        ..Batch::default()
    };
    db.commit(&huge).unwrap();
    db.commit(&huge).unwrap();
    assert_eq!(t.int("SELECT Uploaded FROM users_main"), i64::MAX);
    assert_eq!(t.int("SELECT Downloaded FROM users_main"), 2);
    assert_eq!(t.int("SELECT Downloaded FROM users_freeleeches"), i64::MAX);
    // No token row existed: the bytes landed on an expired one.
    assert_eq!(
        t.int("SELECT count(*) FROM users_freeleeches WHERE Expired = '1'"),
        1
    );
    let kind: String = t
        .raw()
        .query_row("SELECT typeof(Uploaded) FROM users_main", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kind, "integer");
}

#[test]
fn torrent_update_sets_counts_and_last_action() {
    let t = Temp::new();
    let mut db = Sqlite::open(t.path()).unwrap();
    let update = |snatched, balance, last_action| TorrentUpdate {
        id: 1,
        seeders: 3,
        leechers: snatched + 4,
        snatched,
        balance,
        last_action,
    };
    let first = Batch {
        mirror: Mirror {
            torrents: vec![torrent(1, 1, 0)],
            ..Mirror::default()
        },
        torrents: vec![update(1, 100, None)],
        ..Batch::default()
    };
    db.commit(&first).unwrap();
    let last = |t: &Temp| -> Option<String> {
        t.raw()
            .query_row("SELECT last_action FROM torrents", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(last(&t), None);
    db.commit(&Batch {
        torrents: vec![update(2, -30, Some(86_461))],
        ..Batch::default()
    })
    .unwrap();
    assert_eq!(last(&t).as_deref(), Some("1970-01-02 00:01:01"));
    db.commit(&Batch {
        torrents: vec![update(0, 5, None)],
        ..Batch::default()
    })
    .unwrap();
    assert_eq!(last(&t).as_deref(), Some("1970-01-02 00:01:01"));
    assert_eq!(t.int("SELECT Seeders FROM torrents"), 3);
    assert_eq!(t.int("SELECT Leechers FROM torrents"), 4);
    assert_eq!(t.int("SELECT balance FROM torrents"), 75);
    assert_eq!(db.load().unwrap().torrents[0].snatched, 3);
}

#[test]
fn peers_upsert_and_restore() {
    let t = Temp::new();
    let mut db = Sqlite::open(t.path()).unwrap();
    let old = peer(1, 3, true, "10.0.0.3", 500);
    let batch = Batch {
        peers: vec![
            peer(1, 1, true, "10.0.0.1", 1000),
            peer(1, 2, false, "", 1100),
            old,
        ],
        ..Batch::default()
    };
    db.commit(&batch).unwrap();
    let again = PeerRow {
        uploaded: 200,
        timespent: 20,
        mtime: 1100,
        ..peer(1, 1, true, "10.0.0.1", 0)
    };
    db.commit(&Batch {
        peers: vec![again],
        ..Batch::default()
    })
    .unwrap();
    let sql = "SELECT timespent * 1000 + announced FROM xbt_files_users WHERE peer_id = x'";
    assert_eq!(t.int(&format!("{sql}{}'", "01".repeat(20))), 50_002);
    let live = db.live_peers(900).unwrap();
    let want = LivePeer {
        torrent: 1,
        user: 1,
        peer_id: [1; 20],
        uploaded: 200,
        downloaded: 50,
        corrupt: 1,
        left: 7,
        ip: Some("10.0.0.1".parse().unwrap()),
        port: 6881,
        mtime: 1100,
    };
    assert_eq!(live, vec![want]);
    assert_eq!(
        t.int("SELECT count(*) FROM xbt_files_users"),
        2,
        "the old row is gone"
    );
}

#[test]
fn ipv6_and_empty_ip_round_trip() {
    let t = Temp::new();
    let mut db = Sqlite::open(t.path()).unwrap();
    let v6 = PeerRow {
        port: 51413,
        ..peer(1, 1, true, "2001:db8::1", 100)
    };
    let batch = Batch {
        peers: vec![v6, peer(2, 2, true, "", 100)],
        snatches: vec![Snatch {
            user: 1,
            torrent: 1,
            time: 100,
            ip: Some("2001:db8::1".parse().unwrap()),
        }],
        ..Batch::default()
    };
    db.commit(&batch).unwrap();
    let mut live = db.live_peers(0).unwrap();
    live.sort_by_key(|p| p.torrent);
    assert_eq!(live[0].ip, Some("2001:db8::1".parse().unwrap()));
    assert_eq!(live[0].port, 51413);
    assert_eq!(live[1].ip, None);
    let ip: String = t
        .raw()
        .query_row("SELECT IP FROM xbt_snatched", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ip, "2001:db8::1");
}

#[test]
fn locked_commit_fails_fast_then_lands_once() {
    let t = Temp::new();
    let mut db = Sqlite::open(t.path()).unwrap();
    let m = Mirror {
        users: vec![user(1, b'a', true, false)],
        ..Mirror::default()
    };
    db.commit(&mirror(m)).unwrap();
    let other = t.raw();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let batch = Batch {
        users: vec![UserCredit {
            id: 1,
            uploaded: 5,
            downloaded: 6,
        }],
        ..Batch::default()
    };
    let start = Instant::now();
    let err = db.commit(&batch).unwrap_err().0;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(err.contains("database is locked"), "{err}");
    other.execute_batch("ROLLBACK").unwrap();
    db.commit(&batch).unwrap();
    assert_eq!(t.int("SELECT Uploaded FROM users_main"), 5);
}

#[test]
fn failure_midway_leaves_nothing() {
    let t = Temp::new();
    let mut db = Sqlite::open(t.path()).unwrap();
    let m = Mirror {
        users: vec![user(1, b'a', true, false)],
        ..Mirror::default()
    };
    db.commit(&mirror(m)).unwrap();
    t.raw()
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON xbt_snatched BEGIN SELECT RAISE(ABORT, 'boom'); END",
        )
        .unwrap();
    let batch = Batch {
        mirror: Mirror {
            torrents: vec![torrent(1, 1, 0)],
            ..Mirror::default()
        },
        users: vec![UserCredit {
            id: 1,
            uploaded: 5,
            downloaded: 6,
        }],
        snatches: vec![Snatch {
            user: 1,
            torrent: 1,
            time: 1,
            ip: None,
        }],
        ..Batch::default()
    };
    let err = db.commit(&batch).unwrap_err().0;
    assert!(
        err.starts_with(&format!("sqlite {}: commit: ", t.path())),
        "{err}"
    );
    assert!(err.contains("boom"), "{err}");
    assert_eq!(t.int("SELECT Uploaded FROM users_main"), 0);
    assert_eq!(t.int("SELECT count(*) FROM torrents"), 0);
    t.raw().execute_batch("DROP TRIGGER boom").unwrap();
    db.commit(&batch).unwrap();
    assert_eq!(t.int("SELECT Uploaded FROM users_main"), 5);
    assert_eq!(t.int("SELECT count(*) FROM xbt_snatched"), 1);
}
