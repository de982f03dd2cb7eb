//! Swarm state save and load (issue 4): fills 1M IPv4 peers over 200k
//! torrents through the real core (the shape of `benches/memory.rs`), then
//! times a save to disk (fsync and rename included) and a load into an
//! empty tracker, and prints the file size. Target: under 1 s each.
//! `cargo bench --bench state`. Environment: PEERS, TORRENTS override the
//! sizes; STATE_DIR the directory written to (default: the temp dir).

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use hayate::clock::Clock;
use hayate::core::announce::{Gauges, Tracker};
use hayate::snapshot;
use hayate::Config;

mod common;
use common::{env, fill};

fn main() {
    // `cargo bench` passes --bench; nothing else is expected.
    let peers = env("PEERS", 1_000_000);
    let torrents = env("TORRENTS", 200_000).max(2);
    let dir = std::env::var_os("STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("hayate-bench-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("state dir");
    let path = dir.join("state");
    let config = Config::default();

    let tracker = Tracker::new(&config, Clock::new());
    let started = Instant::now();
    fill(&tracker, peers, torrents);
    println!(
        "filled {peers} IPv4 peers over {torrents} torrents in {:.2?}",
        started.elapsed()
    );

    let started = Instant::now();
    let saved = snapshot::save(&tracker, &path).expect("save");
    let save_time = started.elapsed();
    println!(
        "save: {} torrents, {} peers in {save_time:.2?} (fsync and rename included); \
         longest stripe hold {:?}",
        saved.torrents, saved.peers, saved.longest_hold
    );
    println!(
        "file: {} bytes ({:.1} MiB, {:.1} bytes per peer all-in) in {}",
        saved.bytes,
        saved.bytes as f64 / 1048576.0,
        saved.bytes as f64 / saved.peers.max(1) as f64,
        dir.display()
    );

    let fresh = Tracker::new(&config, Clock::new());
    let gauges = Gauges::default();
    let started = Instant::now();
    let restored =
        snapshot::load(&fresh, &path, config.peer_timeout, &gauges).expect("load the saved file");
    let load_time = started.elapsed();
    println!(
        "load: {} torrents, {} peers in {load_time:.2?} (read, checks, insert)",
        restored.torrents, restored.peers
    );

    // Cross-check: the loaded store recounts to what was saved, and the
    // gauges the load set agree.
    let totals = fresh.reap(&Gauges::default(), &|_| true);
    let counted = totals.seeders_v4 + totals.leechers_v4;
    assert_eq!((totals.torrents, counted), (saved.torrents, saved.peers));
    assert_eq!(gauges.torrents.load(Relaxed), totals.torrents as i64);
    let live: i64 = gauges.peers.iter().flatten().map(|g| g.load(Relaxed)).sum();
    assert_eq!(live, counted as i64);
    let _ = std::fs::remove_dir_all(&dir);
}
