//! Configuration: the `Config` struct every part of hayate reads, and the one
//! key table (`keys.rs`) that drives flags, the conf file, `--help`,
//! `--print-config` and the shipped `tracker.conf`.
//!
//! A `Config` is plain data: built once at start (defaults < file < flags),
//! validated, then shared read-only behind an `Arc`.

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;








/// Every tunable of a running tracker. Field names are the conf keys.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// HTTP listen addresses (one SO_REUSEPORT listener per worker each).
    pub http_listen: Vec<SocketAddr>,
    /// Worker threads; 0 = one per available core.
    pub workers: usize,
    /// Mutex stripes over the swarm map; a power of two.
    pub stripes: usize,
    /// Base `interval` handed to clients.
    pub announce_interval: Duration,
    /// `min interval` handed to clients.
    pub min_announce_interval: Duration,
    /// `interval` is `announce_interval` ± a random value up to this.
    pub announce_jitter: Duration,
    /// A peer not heard from for this long is dropped.
    pub peer_timeout: Duration,
    /// How often the reaper sweeps the store.
    pub reap_interval: Duration,
    /// Peers returned when the client sends no `numwant`.
    pub numwant_default: usize,
    /// Upper bound on peers returned.
    pub numwant_max: usize,
    /// Most `info_hash` values in one scrape.
    pub max_scrape_hashes: usize,
    /// Honour the `ip`, `ipv4`, `ipv6` announce parameters.
    pub allow_ip_spoofing: bool,
    /// Peers whose connections may name the client in `real_ip_header`.
    pub trusted_proxies: Vec<IpNet>,
    /// Header carrying the client address behind a trusted proxy.
    pub real_ip_header: String,
    /// Largest request head (request line + headers) in bytes.
    pub http_max_request_bytes: usize,
    /// Most header lines in one request.
    pub http_max_headers: usize,
    /// Time from a request's first byte to its complete head.
    pub http_request_timeout: Duration,
    /// Keep-alive idle time; zero closes after each reply.
    pub http_idle_timeout: Duration,
    /// Open HTTP connections, all workers together.
    pub http_max_connections: usize,
    /// Open HTTP connections from one client address.
    pub http_max_connections_per_ip: usize,
    /// Path of the stats page.
    pub stats_path: String,
    /// Addresses allowed to read the stats page.
    pub stats_allow: Vec<IpNet>,
    /// Log level (`RUST_LOG` overrides).
    pub log_level: log::LevelFilter,
}

impl Config {
    /// The worker count to start: `workers`, or the available cores when 0.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}
