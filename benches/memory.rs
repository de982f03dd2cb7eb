//! Resident bytes per peer: fills 1M IPv4 (`FAMILY=6`: IPv6) peers over
//! 200k torrents (half
//! of the torrents with 1-2 peers, the rest a skewed tail, like a public
//! tracker) through the real core, then prints resident memory growth ÷
//! peers, and the heap the swarms own. `cargo bench --bench memory`.
//! Environment: PEERS, TORRENTS override the sizes; FAMILY=6 fills IPv6.

use std::time::Instant;

use hayate::clock::Clock;
use hayate::core::announce::{Gauges, Tracker};
use hayate::stats::resident_bytes;
use hayate::Config;

mod common;
use common::{env, fill_family};

fn main() {
    // `cargo bench` passes --bench; nothing else is expected.
    let peers = env("PEERS", 1_000_000);
    let torrents = env("TORRENTS", 200_000).max(2);
    let v6 = env("FAMILY", 4) == 6;
    let family = if v6 { "IPv6" } else { "IPv4" };
    let before = resident_bytes().unwrap_or(0);
    let tracker = Tracker::new(&Config::default(), Clock::new());
    let gauges = Gauges::default();
    let started = Instant::now();
    fill_family(&tracker, peers, torrents, v6);
    let fill = started.elapsed();
    let totals = tracker.reap(&gauges, &|_| true);
    let after = resident_bytes().unwrap_or(0);
    let counted = totals.seeders_v4 + totals.leechers_v4 + totals.seeders_v6 + totals.leechers_v6;
    let heap = tracker.swarm_heap_bytes() as f64;
    println!(
        "filled {counted} {family} peers over {} torrents in {fill:.2?}",
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
    // Every peer times out: the sweep that drops them all is the worst.
    tracker
        .clock()
        .advance(Config::default().peer_timeout + std::time::Duration::from_secs(1));
    let started = Instant::now();
    let gone = tracker.reap(&gauges, &|_| true);
    println!(
        "reap dropping all {counted} peers: longest stripe hold {:?}, {:.2?} in all, {} torrents left",
        gone.longest_hold,
        started.elapsed(),
        gone.torrents
    );
}
