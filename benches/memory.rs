//! Resident bytes per peer: fills 1M IPv4 peers over 200k torrents (half
//! of the torrents with 1-2 peers, the rest a skewed tail, like a public
//! tracker) through the real core, then prints resident memory growth ÷
//! peers, and the heap the swarms own. `cargo bench --bench memory`.
//! Environment: PEERS, TORRENTS override the sizes.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use hayate::clock::Clock;
use hayate::core::announce::{Announce, Gauges, PeerBuf, Tracker};
use hayate::core::Event;
use hayate::rng::Rng;
use hayate::stats::resident_bytes;
use hayate::Config;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn hash(t: u64) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[..8].copy_from_slice(&t.to_le_bytes());
    h[8..16].copy_from_slice(&(t.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes());
    h
}

fn main() {
    // `cargo bench` passes --bench; nothing else is expected.
    let peers = env("PEERS", 1_000_000);
    let torrents = env("TORRENTS", 200_000).max(2);
    let before = resident_bytes().unwrap_or(0);
    let tracker = Tracker::new(&Config::default(), Clock::new());
    let gauges = Gauges::default();
    let mut rng = Rng::from_seed(42);
    let mut out = PeerBuf::default();
    let started = Instant::now();
    let small = torrents / 2;
    let mut placed = 0u64;
    let mut announce = |t: u64, i: u64, rng: &mut Rng| {
        let addr = SocketAddrV4::new(Ipv4Addr::from(0x0100_0000 + (i as u32)), 6881);
        let a = Announce {
            info_hash: hash(t),
            v4: Some(addr),
            v6: None,
            left: i % 2,
            event: Event::Started,
            numwant: 0,
            want_v4: true,
            want_v6: false,
            local_networks: &[],
        };
        tracker.announce(&a, rng, &mut out, &gauges);
    };
    // Half the torrents: one or two peers each.
    for t in 0..small {
        for _ in 0..(1 + t % 2) {
            if placed < peers {
                announce(t, placed, &mut rng);
                placed += 1;
            }
        }
    }
    // The rest: a skewed tail (u³ favours the first of them); each gets one
    // peer first so every torrent exists.
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
    let fill = started.elapsed();
    let totals = tracker.reap(&gauges, &|_| true);
    let after = resident_bytes().unwrap_or(0);
    let counted = totals.seeders_v4 + totals.leechers_v4;
    let heap = tracker.swarm_heap_bytes() as f64;
    println!(
        "filled {counted} IPv4 peers over {} torrents in {fill:.2?}",
        totals.torrents
    );
    println!(
        "resident: {:.1} MiB before, {:.1} MiB after: {:.1} bytes per peer (all-in)",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        after.saturating_sub(before) as f64 / counted.max(1) as f64
    );
    println!(
        "swarm heap (peer vectors + indexes): {:.1} bytes per peer",
        heap / counted.max(1) as f64
    );
    println!(
        "reap of the full store: longest stripe hold {:?}",
        totals.longest_hold
    );
}
