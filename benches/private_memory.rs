//! Resident bytes per private peer, all-in: 100k users, 200k registered
//! torrents and 1M private IPv4 peers (user, peer_id, baselines, times)
//! filled through the real private announce path (passkey lookup, credit,
//! the worker's ledger handed to the flusher's channel, which this bench
//! drains and drops as a committing flusher would). Torrents get their
//! peers the way `memory.rs` spreads public ones: half with one or two,
//! the rest a skewed tail. Prints resident growth ÷ peers, and the part
//! the peer vectors own. `cargo bench --bench private_memory`.
//! Environment: PEERS, TORRENTS, USERS override the sizes.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use hayate::core::Event;
use hayate::private::announce::Request;
use hayate::private::swarm::{Leech, Picked};
use hayate::private::{Private, User};
use hayate::rng::Rng;
use hayate::stats::resident_bytes;

mod common;
use common::{env, hash};

/// The passkey of user `u`.
fn passkey(u: u64) -> [u8; 32] {
    let mut k = [b'0'; 32];
    let text = format!("{:032x}", u + 1);
    k.copy_from_slice(text.as_bytes());
    k
}

fn main() {
    let peers = env("PEERS", 1_000_000);
    let torrents = env("TORRENTS", 200_000).max(2);
    let users = env("USERS", 100_000).max(1);
    let before = resident_bytes().unwrap_or(0);
    let private = Private::new(1024, 1, true);
    let started = Instant::now();
    for u in 0..users {
        let user = User {
            id: u as u32 + 1,
            can_leech: true,
            protected: false,
        };
        private.add_user(passkey(u), user);
    }
    for t in 0..torrents {
        private.add_torrent(hash(t), t as u32 + 1, Leech::Normal);
    }
    // The control API's marks would be written by the flusher's first
    // commit: take them, as it would.
    drop(private.take_mirror());
    let registered = resident_bytes().unwrap_or(0);
    let mut rng = Rng::from_seed(7);
    let mut out = Picked::default();
    let mut placed = 0u64;
    let mut announce = |t: u64, i: u64, rng: &mut Rng| {
        let u = i % users;
        let Ok(user) = private.user(&passkey(u)) else {
            return;
        };
        let mut peer_id = [b'-'; 20];
        peer_id[..8].copy_from_slice(&i.to_le_bytes());
        let r = Request {
            info_hash: hash(t),
            peer_id,
            ip: IpAddr::V4(Ipv4Addr::from(0x0100_0000 + i as u32)),
            port: 6881,
            uploaded: 0,
            downloaded: 0,
            corrupt: 0,
            left: i % 2,
            event: Event::Started,
            numwant: 0,
            want_v4: true,
            want_v6: false,
            user_agent: b"bench/1.0",
        };
        let _ = private.announce(user, &r, 0, rng.next_u64(), 0, &mut out);
        if i.is_multiple_of(4096) {
            private.hand_over(0, true);
            while private.receiver().try_recv().is_ok() {}
        }
    };
    let small = torrents / 2;
    for t in 0..small {
        for _ in 0..(1 + t % 2) {
            if placed < peers {
                announce(t, placed, &mut rng);
                placed += 1;
            }
        }
    }
    let tail = torrents - small;
    for t in 0..tail {
        if placed < peers {
            announce(small + t, placed, &mut rng);
            placed += 1;
        }
    }
    while placed < peers {
        let u = rng.below(1 << 20) as f64 / f64::from(1 << 20);
        let t = small + ((u * u * u) * tail as f64) as u64;
        announce(t.min(torrents - 1), placed, &mut rng);
        placed += 1;
    }
    private.hand_over(0, true);
    while private.receiver().try_recv().is_ok() {}
    let fill = started.elapsed();
    let after = resident_bytes().unwrap_or(0);
    let (counted_torrents, seeders, leechers) = private.reap(0);
    let counted = seeders + leechers;
    let mut heap = 0usize;
    for i in 0..private.torrents.stripe_count() {
        heap += private
            .torrents
            .lock(i)
            .values()
            .map(|t| t.heap_bytes())
            .sum::<usize>();
    }
    println!(
        "filled {counted} private IPv4 peers of {users} users over {counted_torrents} torrents in {fill:.2?}"
    );
    let mib = |b: u64| b as f64 / 1048576.0;
    println!(
        "resident: {:.1} MiB before, {:.1} MiB with users and torrents, {:.1} MiB with peers",
        mib(before),
        mib(registered),
        mib(after)
    );
    println!(
        "{:.1} bytes per peer all-in (users, torrents and peers ÷ peers); peers alone {:.1}",
        after.saturating_sub(before) as f64 / counted.max(1) as f64,
        after.saturating_sub(registered) as f64 / counted.max(1) as f64
    );
    println!(
        "peer vectors and indexes: {:.1} bytes per peer",
        heap as f64 / counted.max(1) as f64
    );
}
