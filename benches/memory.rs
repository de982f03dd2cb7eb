//! Resident bytes per peer: fills 1M IPv4 peers over 200k torrents (half
//! of the torrents with 1-2 peers, the rest a skewed tail, like a public
//! tracker) through the real core, then prints resident memory growth ÷
//! peers, and the heap the swarms own. `cargo bench --bench memory`.
//! Environment: PEERS, TORRENTS override the sizes.

use std::time::Instant;

use hayate::clock::Clock;
use hayate::core::announce::{Gauges, Tracker};
use hayate::stats::resident_bytes;
use hayate::Config;

mod common;
use common::{env, fill};

fn main() {
    // `cargo bench` passes --bench; nothing else is expected.
    let peers = env("PEERS", 1_000_000);
    let torrents = env("TORRENTS", 200_000).max(2);
    let before = resident_bytes().unwrap_or(0);
    let tracker = Tracker::new(&Config::default(), Clock::new());
    let gauges = Gauges::default();
    let started = Instant::now();
    fill(&tracker, peers, torrents);
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
