//! What one flusher commit costs on the embedded database: a batch of
//! PEERS dirty peers (default 100k: their `xbt_files_users` rows with
//! their users' credit and their torrents' counts) committed into a fresh
//! SQLite file, then the same peers again (every row an update, as after
//! the first interval), ROUNDS times. Prints milliseconds per commit and
//! microseconds per peer row. `cargo bench --bench private_commit`.
//! Environment: PEERS, USERS, TORRENTS, ROUNDS, DIR (where the file goes;
//! default the system temp dir).

use std::time::Instant;

use hayate::db::{self, Batch, Mirror, PeerRow, TorrentRow, TorrentUpdate, UserCredit, UserRow};

mod common;
use common::{env, hash};

fn main() {
    let peers = env("PEERS", 100_000);
    let users = env("USERS", 100_000).max(1);
    let torrents = env("TORRENTS", 200_000).max(1);
    let rounds = env("ROUNDS", 3).max(1);
    let dir = std::env::var("DIR").map_or_else(|_| std::env::temp_dir(), Into::into);
    let path = dir.join(format!("hayate-commit-bench-{}.db", std::process::id()));
    let url = format!("sqlite:{}", path.display());
    let Ok(mut db) = db::open(&url) else {
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
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
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
