//! What one flusher commit costs on the embedded database: a batch of
//! PEERS dirty peers (default 100k: their `xbt_files_users` rows with
//! their users' credit and their torrents' counts) committed into a fresh
//! SQLite file, then the same peers again (every row an update, as after
//! the first interval), ROUNDS times. Prints milliseconds per commit and
//! microseconds per peer row. `cargo bench --bench private_commit`.
//! Environment: PEERS, USERS, TORRENTS, ROUNDS, DIR (where the file goes;
//! default the system temp dir).
//!
//! With `--features mysql` and MYSQL=mysql://user@host:port (a server
//! URL), the same batches go to a Gazelle database made on that server for
//! the run (GAZELLE_SCHEMA: classic or ops, from tests/mysql/), with the
//! site's USERS users and TORRENTS torrents rows, dropped at the end:
//! `MYSQL=mysql://root@127.0.0.1:3306 cargo bench --features mysql --bench private_commit`.

use std::time::Instant;

use hayate::db::{self, Batch, Mirror, PeerRow, TorrentRow, TorrentUpdate, UserCredit, UserRow};

mod common;
use common::{env, hash};

fn main() {
    let peers = env("PEERS", 100_000);
    let users = env("USERS", 100_000).max(1);
    let torrents = env("TORRENTS", 200_000).max(1);
    let rounds = env("ROUNDS", 3).max(1);
    #[cfg(feature = "mysql")]
    if let Ok(server) = std::env::var("MYSQL") {
        mysql_site::run(&server, peers, users, torrents, rounds);
        return;
    }
    let dir = std::env::var("DIR").map_or_else(|_| std::env::temp_dir(), Into::into);
    let path = dir.join(format!("hayate-commit-bench-{}.db", std::process::id()));
    let url = format!("sqlite:{}", path.display());
    let options = db::Options {
        schema: db::GazelleSchema::Classic,
        readonly: false,
    };
    let Ok(mut db) = db::open(&url, options) else {
        eprintln!("cannot open {url}");
        return;
    };
    // The site: every user and torrent, as the control API would add them.
    let mut mirror = Mirror::default();
    for u in 0..users {
        let mut passkey = [b'0'; 32];
        passkey.copy_from_slice(format!("{:032x}", u + 1).as_bytes());
        mirror.users.push(UserRow {
            id: u as u32 + 1,
            passkey,
            can_leech: true,
            protected: false,
        });
    }
    for t in 0..torrents {
        mirror.torrents.push(TorrentRow {
            id: t as u32 + 1,
            info_hash: hash(t),
            free: 0,
            snatched: 0,
        });
    }
    let started = Instant::now();
    if let Err(e) = db.commit(&Batch {
        mirror,
        ..Batch::default()
    }) {
        eprintln!("register: {e}");
        return;
    }
    println!(
        "registered {users} users and {torrents} torrents in {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    commit_rounds(db.as_mut(), peers, users, torrents, rounds);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// ROUNDS commits of one interval's batch each, timed.
fn commit_rounds(db: &mut dyn db::Database, peers: u64, users: u64, torrents: u64, rounds: u64) {
    for round in 0..rounds {
        let batch = batch(peers, users, torrents, round);
        let started = Instant::now();
        if let Err(e) = db.commit(&batch) {
            eprintln!("commit: {e}");
            break;
        }
        let took = started.elapsed().as_secs_f64();
        println!(
            "round {round}: {} peer rows, {} users, {} torrents committed in {:.0} ms: {:.1} us per peer row ({})",
            batch.peers.len(),
            batch.users.len(),
            batch.torrents.len(),
            took * 1000.0,
            took * 1e6 / batch.peers.len().max(1) as f64,
            if round == 0 { "inserts" } else { "updates" }
        );
    }
}

/// The same on a Gazelle database on a MySQL/MariaDB server.
#[cfg(feature = "mysql")]
mod mysql_site {
    use hayate::db::{self, GazelleSchema};
    use mysql::prelude::Queryable;
    use mysql::{Conn, Opts};

    pub fn run(server: &str, peers: u64, users: u64, torrents: u64, rounds: u64) {
        let classic = std::env::var("GAZELLE_SCHEMA").map_or(true, |s| s != "ops");
        let (schema, file) = if classic {
            (GazelleSchema::Classic, "classic")
        } else {
            (GazelleSchema::Ops, "ops")
        };
        let name = format!("hayate_commit_bench_{}", std::process::id());
        let mut admin = match Conn::new(Opts::from_url(server).expect("MYSQL: a mysql:// URL")) {
            Ok(c) => c,
            Err(e) => return eprintln!("cannot connect to {server}: {e}"),
        };
        admin
            .query_drop(format!("CREATE DATABASE `{name}`"))
            .unwrap();
        let url = format!("{server}/{name}");
        let mut c = Conn::new(Opts::from_url(&url).unwrap()).unwrap();
        let ddl = std::fs::read_to_string(format!(
            "{}/tests/mysql/{file}.sql",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        for s in ddl.split(";\n").filter(|s| s.contains("CREATE")) {
            c.query_drop(s).unwrap();
        }
        let started = std::time::Instant::now();
        let site = if classic {
            vec![
                format!("INSERT INTO users_main (ID, Username, Email, PassHash, Secret, Title, PermissionID, torrent_pass, Enabled) SELECT seq, concat('u', seq), '', '', '', '', 2, lpad(hex(seq), 32, '0'), '1' FROM seq_1_to_{users}"),
                format!("INSERT INTO torrents (ID, GroupID, info_hash, FileCount, FileList, Size) SELECT seq, 1, unhex(sha1(seq)), 1, '', 1 FROM seq_1_to_{torrents}"),
            ]
        } else {
            vec![
                format!("INSERT INTO users_main (ID, Username, Email, PassHash, PermissionID, torrent_pass, auth_key, Enabled) SELECT seq, concat('u', seq), '', '', 2, lpad(hex(seq), 32, '0'), '', '1' FROM seq_1_to_{users}"),
                format!("INSERT INTO users_leech_stats (UserID) SELECT seq FROM seq_1_to_{users}"),
                format!("INSERT INTO torrents (ID, GroupID, info_hash, FileCount, FileList, Size) SELECT seq, 1, unhex(sha1(seq)), 1, '', 1 FROM seq_1_to_{torrents}"),
                format!("INSERT INTO torrents_leech_stats (TorrentID) SELECT seq FROM seq_1_to_{torrents}"),
            ]
        };
        for s in &site {
            c.query_drop(s).unwrap();
        }
        println!(
            "site rows: {users} users and {torrents} torrents in {url} ({file}) in {:.0} ms",
            started.elapsed().as_secs_f64() * 1000.0
        );
        let options = db::Options {
            schema,
            readonly: false,
        };
        match db::open(&url, options) {
            Ok(mut db) => super::commit_rounds(db.as_mut(), peers, users, torrents, rounds),
            Err(e) => eprintln!("open {url}: {e}"),
        }
        admin.query_drop(format!("DROP DATABASE `{name}`")).unwrap();
    }
}

/// The batch of one flush interval in which every peer announced once.
fn batch(peers: u64, users: u64, torrents: u64, round: u64) -> Batch {
    let mut b = Batch::default();
    let mut per_user = std::collections::HashMap::new();
    let mut per_torrent = std::collections::HashMap::new();
    for i in 0..peers {
        let user = (i % users) as u32 + 1;
        let torrent = (i.wrapping_mul(0x9e37_79b9) % torrents) as u32 + 1;
        let mut peer_id = *b"-qB4620-000000000000";
        peer_id[8..16].copy_from_slice(&i.to_le_bytes());
        let up = (round + 1) * 16384;
        b.peers.push(PeerRow {
            user,
            torrent,
            peer_id,
            active: true,
            uploaded: up,
            downloaded: up / 2,
            corrupt: 0,
            left: i % 2 * 1000,
            upspeed: 10,
            downspeed: 5,
            timespent: 30,
            announced: 1,
            ip: Some(std::net::Ipv4Addr::from(0x0a00_0000 | (i as u32 & 0xff_ffff)).into()),
            port: 6881,
            useragent: "qBittorrent/4.6.2".into(),
            mtime: 1_700_000_000 + round as i64,
        });
        *per_user.entry(user).or_insert(0u64) += 16384;
        *per_torrent.entry(torrent).or_insert(0u32) += 1;
    }
    // The flusher's ledger sorts its batch the same way (`Ledger::batch`).
    b.peers.sort_by_key(|p| (p.peer_id, p.torrent, p.user));
    b.users = per_user
        .into_iter()
        .map(|(id, up)| UserCredit {
            id,
            uploaded: up,
            downloaded: up / 2,
        })
        .collect();
    b.torrents = per_torrent
        .into_iter()
        .map(|(id, n)| TorrentUpdate {
            id,
            seeders: n / 2,
            leechers: n - n / 2,
            snatched: 0,
            balance: 100,
            last_action: Some(1_700_000_000),
        })
        .collect();
    b.users.sort_by_key(|u| u.id);
    b.torrents.sort_by_key(|t| t.id);
    b
}
