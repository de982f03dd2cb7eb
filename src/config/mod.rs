//! Configuration: the `Config` struct every part of hayate reads, and the one
//! key table (`keys.rs`) that drives flags, the conf file, `--help`,
//! `--print-config` and the shipped `tracker.conf`.
//!
//! A `Config` is plain data: built once at start (defaults < file < flags),
//! validated, then shared read-only behind an `Arc`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::db::GazelleSchema;

pub mod file;
pub mod keys;
pub mod value;

pub use file::{load, parse_conf, ConfigError};
pub use keys::{render_conf, Key, KEYS};

/// Every tunable of a running tracker. Field names are the conf keys.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// HTTP listen addresses (one SO_REUSEPORT listener per worker each).
    pub http_listen: Vec<SocketAddr>,
    /// UDP listen addresses (one SO_REUSEPORT socket per worker each).
    pub udp_listen: Vec<SocketAddr>,
    /// Requested UDP socket receive buffer in bytes (the kernel may clamp it).
    pub udp_recv_buffer: usize,
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
    /// Swarm state file; empty = off.
    pub state_file: String,
    /// Periodic state save; zero = only on shutdown.
    pub state_save_interval: Duration,
    /// Allowlist file of info hashes; empty = off.
    pub allowlist: String,
    /// Denylist file of info hashes; empty = off.
    pub denylist: String,
    /// Prefer peers in the announcer's subnet and local networks.
    pub prefer_local_peers: bool,
    /// IPv4 neighbour prefix length.
    pub local_prefix_v4: usize,
    /// IPv6 neighbour prefix length.
    pub local_prefix_v6: usize,
    /// Networks whose peers are preferred for each other.
    pub local_networks: Vec<IpNet>,
    /// Serve full scrapes.
    pub full_scrape: bool,
    /// One full scrape per client address per this period.
    pub full_scrape_interval: Duration,
    /// Public or private tracker.
    pub mode: Mode,
    /// Private mode: secret of the control API.
    pub site_password: String,
    /// Private mode: secret of the report API.
    pub report_password: String,
    /// Private mode: database URL (`sqlite:PATH`, `mysql://...`).
    pub database: String,
    /// Private mode, MySQL: the site's schema generation.
    pub gazelle_schema: GazelleSchema,
    /// Private mode, MySQL: never write.
    pub readonly: bool,
    /// Private mode: the site's address for the token-expiry callback
    /// (empty = off).
    pub site_url: String,
    /// Private mode: commit period of the flusher.
    pub flush_interval: Duration,
    /// Private mode: how long a deletion reason is kept.
    pub del_reason_lifetime: Duration,
    /// Keys the operator set (conf file line or flag), by name. The others
    /// hold their built-in default, or a value derived from the keys that
    /// were set (`derive`): only a value the operator set is refused.
    pub explicit: BTreeSet<&'static str>,
}

/// Public or private tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Anyone may announce any torrent (allow/deny lists apply).
    Public,
    /// Users by passkey, registered torrents, credit (Gazelle/Ocelot).
    Private,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    match s {
        "public" => Ok(Mode::Public),
        "private" => Ok(Mode::Private),
        _ => Err(format!("expected public or private, got {s:?}")),
    }
}

fn render_mode(m: &Mode) -> String {
    match m {
        Mode::Public => "public".into(),
        Mode::Private => "private".into(),
    }
}

/// Length of the site and report passwords (Ocelot's, and Gazelle's URLs).
pub const PASSWORD_LEN: usize = 32;

fn check_password(p: &str) -> Result<(), String> {
    if p.is_empty()
        || (p.len() == PASSWORD_LEN
            && p.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'?'))
    {
        Ok(())
    } else {
        Err(format!(
            "must be exactly {PASSWORD_LEN} printable characters without / or ?, got {}",
            p.len()
        ))
    }
}

fn check_database(url: &str) -> Result<(), String> {
    let scheme = url.split_once(':').map(|(scheme, _)| scheme);
    match url.split_once(':') {
        Some((scheme, rest)) if crate::db::SCHEMES.contains(&scheme) => {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            if rest.is_empty() {
                Err(format!(
                    "{scheme}: needs a path or address, like sqlite:hayate.db or mysql://user:password@host:3306/gazelle"
                ))
            } else {
                Ok(())
            }
        }
        _ => match crate::db::SCHEMES_NOT_BUILT
            .iter()
            .find(|(s, _)| Some(*s) == scheme)
        {
            Some((s, how)) => Err(format!(
                "{s}: this binary has no {s} driver; it needs {how}"
            )),
            None => Err(format!(
                "unknown scheme in {:?}; known: {}",
                scheme.unwrap_or(url),
                crate::db::SCHEMES
                    .iter()
                    .map(|s| format!("{s}:"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        },
    }
}

fn parse_schema(s: &str) -> Result<GazelleSchema, String> {
    match s {
        "ops" => Ok(GazelleSchema::Ops),
        "classic" => Ok(GazelleSchema::Classic),
        _ => Err(format!("expected ops or classic, got {s:?}")),
    }
}

fn render_schema(s: &GazelleSchema) -> String {
    s.name().into()
}

/// Empty, or `http://host[:port][/path]` (Ocelot talks plain HTTP to the
/// site too).
fn check_site_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Ok(());
    }
    crate::private::site::SiteUrl::parse(url).map(|_| ())
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

impl Default for Config {
    /// The built-in defaults: every key's `default` string from the table,
    /// applied through its setter, so the table is the only place they live.
    /// None of them counts as set by the operator.
    fn default() -> Self {
        let mut config = Config::blank();
        for key in KEYS {
            // ok: the test `every_default_parses` applies each default too.
            key.set(&mut config, key.default)
                .unwrap_or_else(|e| panic!("default of {}: {e}", key.name));
        }
        config.explicit.clear();
        config.derive();
        config
    }
}

/// A duration key's built-in default (zero if the table's text is bad,
/// which the test `every_default_parses` rules out).
fn builtin_duration(name: &str) -> Duration {
    keys::lookup(name)
        .and_then(|k| value::parse_duration(k.default).ok())
        .unwrap_or_default()
}

/// A count key's built-in default (see `builtin_duration`).
fn builtin_count(name: &str) -> usize {
    keys::lookup(name)
        .and_then(|k| value::parse_count(k.default).ok())
        .unwrap_or_default()
}

impl Config {
    /// A config with every field zero or empty, overwritten field by field
    /// when the defaults are applied.
    fn blank() -> Self {
        Config {
            http_listen: Vec::new(),
            udp_listen: Vec::new(),
            udp_recv_buffer: 0,
            workers: 0,
            stripes: 0,
            announce_interval: Duration::ZERO,
            min_announce_interval: Duration::ZERO,
            announce_jitter: Duration::ZERO,
            peer_timeout: Duration::ZERO,
            reap_interval: Duration::ZERO,
            numwant_default: 0,
            numwant_max: 0,
            max_scrape_hashes: 0,
            allow_ip_spoofing: false,
            trusted_proxies: Vec::new(),
            real_ip_header: String::new(),
            http_max_request_bytes: 0,
            http_max_headers: 0,
            http_request_timeout: Duration::ZERO,
            http_idle_timeout: Duration::ZERO,
            http_max_connections: 0,
            http_max_connections_per_ip: 0,
            stats_path: String::new(),
            stats_allow: Vec::new(),
            log_level: log::LevelFilter::Off,
            state_file: String::new(),
            state_save_interval: Duration::ZERO,
            allowlist: String::new(),
            denylist: String::new(),
            prefer_local_peers: false,
            local_prefix_v4: 0,
            local_prefix_v6: 0,
            local_networks: Vec::new(),
            full_scrape: false,
            full_scrape_interval: Duration::ZERO,
            mode: Mode::Public,
            site_password: String::new(),
            report_password: String::new(),
            database: String::new(),
            gazelle_schema: GazelleSchema::Ops,
            readonly: false,
            site_url: String::new(),
            flush_interval: Duration::ZERO,
            del_reason_lifetime: Duration::ZERO,
            explicit: BTreeSet::new(),
        }
    }

    /// Recomputes the values of keys the operator did not set from those
    /// they did, so that a key set alone never trips a rule over a key
    /// left alone:
    /// - `min_announce_interval`, `announce_jitter` and `peer_timeout`
    ///   follow `announce_interval` (a half, a tenth, one and a half: the
    ///   built-in 30m gives 15m, 3m, 45m);
    /// - `announce_interval` left alone grows to fit a longer
    ///   `min_announce_interval` or `announce_jitter` that was set;
    /// - `numwant_max` left alone grows to a larger `numwant_default`, and
    ///   `numwant_default` left alone shrinks to a smaller `numwant_max`.
    ///
    /// Rules between two keys the operator both set stay for `validate`.
    pub fn derive(&mut self) {
        let set = |name: &str| self.explicit.contains(name);
        if !set("announce_interval") {
            let mut interval = builtin_duration("announce_interval");
            if set("min_announce_interval") {
                interval = interval.max(self.min_announce_interval);
            }
            if set("announce_jitter") {
                interval = interval.max(self.announce_jitter.saturating_mul(2));
            }
            self.announce_interval = interval;
        }
        let interval = self.announce_interval;
        if !set("min_announce_interval") {
            self.min_announce_interval = interval / 2;
        }
        if !set("announce_jitter") {
            self.announce_jitter = interval / 10;
        }
        if !set("peer_timeout") {
            self.peer_timeout = interval.saturating_mul(3) / 2;
        }
        if !set("numwant_max") {
            let max = builtin_count("numwant_max");
            self.numwant_max = if set("numwant_default") {
                max.max(self.numwant_default)
            } else {
                max
            };
        }
        if !set("numwant_default") {
            self.numwant_default = builtin_count("numwant_default").min(self.numwant_max);
        }
    }

    /// What `derive` made of a key the operator did not set, for
    /// `--print-config`: how it follows other keys, or None for a plain
    /// built-in default.
    pub fn derivation(&self, name: &str) -> Option<&'static str> {
        if self.explicit.contains(name) {
            return None;
        }
        match name {
            "min_announce_interval" => Some("half of announce_interval"),
            "announce_jitter" => Some("a tenth of announce_interval"),
            "peer_timeout" => Some("announce_interval and a half"),
            "announce_interval" if self.announce_interval != builtin_duration(name) => {
                Some("raised to fit min_announce_interval or announce_jitter")
            }
            "numwant_max" if self.numwant_max != builtin_count(name) => {
                Some("raised to numwant_default")
            }
            "numwant_default" if self.numwant_default != builtin_count(name) => {
                Some("lowered to numwant_max")
            }
            _ => None,
        }
    }

    /// Checks every limit and the rules between keys; the message names the
    /// key(s). Flags and the conf file already check each key on its own as
    /// it is set; this repeats those checks for configs built in code.
    pub fn validate(&self) -> Result<(), String> {
        for key in KEYS {
            key.check(self).map_err(|e| format!("{}: {e}", key.name))?;
        }
        let d = value::render_duration;
        if self.min_announce_interval > self.announce_interval {
            return Err(format!(
                "min_announce_interval ({}) must not be longer than announce_interval ({})",
                d(&self.min_announce_interval),
                d(&self.announce_interval)
            ));
        }
        if self.announce_jitter >= self.announce_interval {
            return Err(format!(
                "announce_jitter ({}) must be shorter than announce_interval ({})",
                d(&self.announce_jitter),
                d(&self.announce_interval)
            ));
        }
        if self.mode == Mode::Private {
            for (name, value) in [
                ("site_password", &self.site_password),
                ("report_password", &self.report_password),
            ] {
                if value.len() != PASSWORD_LEN {
                    return Err(format!(
                        "{name}: private mode needs a secret of exactly {PASSWORD_LEN} characters"
                    ));
                }
            }
            let sqlite = self.database.starts_with("sqlite:");
            if sqlite && self.readonly {
                return Err(
                    "readonly: only with a site's mysql:// database (the embedded one is hayate's own)"
                        .into(),
                );
            }
            if self.site_password == self.report_password {
                return Err("report_password must differ from site_password".into());
            }
            // A private tracker serves registered torrents only: the
            // lists would be silently ignored, so they are refused.
            for (name, value) in [("allowlist", &self.allowlist), ("denylist", &self.denylist)] {
                if !value.is_empty() {
                    return Err(format!(
                        "{name}: not used in private mode (torrents are registered through the control API)"
                    ));
                }
            }
        }
        if self.numwant_default > self.numwant_max {
            return Err(format!(
                "numwant_default ({}) must not be larger than numwant_max ({})",
                self.numwant_default, self.numwant_max
            ));
        }
        Ok(())
    }
}

/// Most worker threads: far beyond any core count, low enough that a typo
/// (`workers = 10000`) is caught instead of spawning threads until failure.
const MAX_WORKERS: usize = 1024;
/// Most lock stripes: 1M mutexes is already ~40 MiB before any torrent.
const MAX_STRIPES: usize = 1 << 20;
/// Smallest request-head limit: a real announce does not fit in less.
const MIN_REQUEST_BYTES: usize = 256;
/// Largest request-head limit: announces are a few hundred bytes; this bounds
/// per-connection buffers.
const MAX_REQUEST_BYTES: usize = 1 << 20;
/// Most header lines; real clients send under 20.
const MAX_HEADERS: usize = 1024;

// Single-key checks: the key table runs them when a key is set, and
// `validate` runs them again. Messages omit the key; callers prefix it.

fn check_workers(n: &usize) -> Result<(), String> {
    if *n <= MAX_WORKERS {
        Ok(())
    } else {
        Err(format!("must be auto or at most {MAX_WORKERS}, got {n}"))
    }
}

fn check_stripes(n: &usize) -> Result<(), String> {
    if n.is_power_of_two() && *n <= MAX_STRIPES {
        Ok(())
    } else {
        Err(format!(
            "must be a power of two from 1 to {MAX_STRIPES}, got {n}"
        ))
    }
}

fn check_prefix_v4(n: &usize) -> Result<(), String> {
    check_at_most(*n, 32)
}

fn check_prefix_v6(n: &usize) -> Result<(), String> {
    check_at_most(*n, 128)
}

fn check_at_most(n: usize, max: usize) -> Result<(), String> {
    if n <= max {
        Ok(())
    } else {
        Err(format!("must be at most {max}, got {n}"))
    }
}

fn check_positive_count(n: &usize) -> Result<(), String> {
    at_least(*n, 1)
}

fn check_positive_duration(d: &Duration) -> Result<(), String> {
    if d.is_zero() {
        Err("must be longer than 0".into())
    } else {
        Ok(())
    }
}

/// Bounds of `udp_recv_buffer`: a few datagrams at least, 1 GiB at most.
const MIN_UDP_RECV_BUFFER: usize = 64 * 1024;
const MAX_UDP_RECV_BUFFER: usize = 1 << 30;

fn check_udp_recv_buffer(n: &usize) -> Result<(), String> {
    let r = value::render_size;
    if (MIN_UDP_RECV_BUFFER..=MAX_UDP_RECV_BUFFER).contains(n) {
        Ok(())
    } else {
        Err(format!(
            "must be from {} to {}, got {}",
            r(&MIN_UDP_RECV_BUFFER),
            r(&MAX_UDP_RECV_BUFFER),
            r(n)
        ))
    }
}

fn check_request_bytes(n: &usize) -> Result<(), String> {
    let r = value::render_size;
    if (MIN_REQUEST_BYTES..=MAX_REQUEST_BYTES).contains(n) {
        Ok(())
    } else {
        Err(format!(
            "must be from {} to {}, got {}",
            r(&MIN_REQUEST_BYTES),
            r(&MAX_REQUEST_BYTES),
            r(n)
        ))
    }
}

fn check_headers(n: &usize) -> Result<(), String> {
    at_least(*n, 1).and_then(|()| at_most(*n, MAX_HEADERS))
}

/// A stats path is matched against the request target, so it must look
/// like one: absolute, no query, fragment, spaces or control characters.
fn check_stats_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("must start with /, got {path:?}"));
    }
    match path
        .chars()
        .find(|c| !c.is_ascii_graphic() || *c == '?' || *c == '#')
    {
        Some(c) => Err(format!("must not contain {c:?}, got {path:?}")),
        None => Ok(()),
    }
}

/// Header names are RFC 9110 tokens.
fn check_header_name(name: &str) -> Result<(), String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !name.is_empty() && name.chars().all(token) {
        Ok(())
    } else {
        Err(format!(
            "expected a header name like X-Forwarded-For, got {name:?}"
        ))
    }
}

fn at_least(n: usize, min: usize) -> Result<(), String> {
    if n >= min {
        Ok(())
    } else {
        Err(format!("must be at least {min}, got {n}"))
    }
}

fn at_most(n: usize, max: usize) -> Result<(), String> {
    if n <= max {
        Ok(())
    } else {
        Err(format!("must be at most {max}, got {n}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses() {
        let mut config = Config::blank();
        for key in KEYS {
            assert_eq!(key.set(&mut config, key.default), Ok(()), "{}", key.name);
        }
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn defaults_cover_every_field() {
        // Applying the defaults over two configs that differ in every field
        // gives the same result only if the table sets every field.
        let mut other = Config {
            http_listen: vec![SocketAddr::from(([1, 2, 3, 4], 5))],
            udp_listen: vec![SocketAddr::from(([1, 2, 3, 4], 5))],
            udp_recv_buffer: 1,
            workers: 7,
            stripes: 8,
            announce_interval: Duration::from_secs(1),
            min_announce_interval: Duration::from_secs(1),
            announce_jitter: Duration::from_secs(1),
            peer_timeout: Duration::from_secs(1),
            reap_interval: Duration::from_secs(1),
            numwant_default: 1,
            numwant_max: 1,
            max_scrape_hashes: 1,
            allow_ip_spoofing: true,
            trusted_proxies: vec![IpNet::from(std::net::IpAddr::from([1, 1, 1, 1]))],
            real_ip_header: "x".into(),
            http_max_request_bytes: 1,
            http_max_headers: 1,
            http_request_timeout: Duration::from_secs(1),
            http_idle_timeout: Duration::from_secs(1),
            http_max_connections: 1,
            http_max_connections_per_ip: 1,
            stats_path: "/x".into(),
            stats_allow: Vec::new(),
            log_level: log::LevelFilter::Trace,
            state_file: "x".into(),
            state_save_interval: Duration::from_secs(1),
            allowlist: "x".into(),
            denylist: "x".into(),
            prefer_local_peers: false,
            local_prefix_v4: 1,
            local_prefix_v6: 1,
            local_networks: vec![IpNet::from(std::net::IpAddr::from([1, 1, 1, 1]))],
            full_scrape: true,
            full_scrape_interval: Duration::from_secs(1),
            mode: Mode::Private,
            site_password: "x".into(),
            report_password: "y".into(),
            database: "sqlite:x".into(),
            gazelle_schema: GazelleSchema::Classic,
            readonly: true,
            site_url: "http://x".into(),
            flush_interval: Duration::from_secs(1),
            del_reason_lifetime: Duration::from_secs(1),
            explicit: BTreeSet::from(["x"]),
        };
        for key in KEYS {
            assert_eq!(key.set(&mut other, key.default), Ok(()), "{}", key.name);
        }
        assert_eq!(other.explicit.len(), KEYS.len() + 1, "every key and \"x\"");
        other.explicit.clear();
        assert_eq!(other, Config::default());
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.http_listen.len(), 2);
        assert_eq!(c.workers, 0);
        assert_eq!(c.stripes, 1024);
        assert_eq!(c.announce_interval, Duration::from_secs(1800));
        assert_eq!(c.http_max_request_bytes, 8192);
        assert_eq!(c.stats_allow.len(), 2);
        assert_eq!(c.log_level, log::LevelFilter::Info);
    }

    #[test]
    fn validate_rejects() {
        type Edit = fn(&mut Config);
        let cases: &[(Edit, &str)] = &[
            (
                |c| c.stripes = 1000,
                "stripes: must be a power of two from 1 to 1048576, got 1000",
            ),
            (
                |c| c.stripes = 0,
                "stripes: must be a power of two from 1 to 1048576, got 0",
            ),
            (
                |c| c.stripes = 1 << 21,
                "stripes: must be a power of two from 1 to 1048576, got 2097152",
            ),
            (
                |c| c.workers = 1025,
                "workers: must be auto or at most 1024, got 1025",
            ),
            (
                |c| c.peer_timeout = Duration::ZERO,
                "peer_timeout: must be longer than 0",
            ),
            (
                |c| c.announce_interval = Duration::ZERO,
                "announce_interval: must be longer than 0",
            ),
            (
                |c| c.reap_interval = Duration::ZERO,
                "reap_interval: must be longer than 0",
            ),
            (
                |c| c.http_request_timeout = Duration::ZERO,
                "http_request_timeout: must be longer than 0",
            ),
            (
                |c| c.numwant_max = 0,
                "numwant_max: must be at least 1, got 0",
            ),
            (
                |c| c.max_scrape_hashes = 0,
                "max_scrape_hashes: must be at least 1, got 0",
            ),
            (
                |c| c.http_max_request_bytes = 255,
                "http_max_request_bytes: must be from 256 to 1MiB, got 255",
            ),
            (
                |c| c.http_max_request_bytes = 2 << 20,
                "http_max_request_bytes: must be from 256 to 1MiB, got 2MiB",
            ),
            (
                |c| c.http_max_headers = 0,
                "http_max_headers: must be at least 1, got 0",
            ),
            (
                |c| c.http_max_headers = 1025,
                "http_max_headers: must be at most 1024, got 1025",
            ),
            (
                |c| c.http_max_connections = 0,
                "http_max_connections: must be at least 1, got 0",
            ),
            (
                |c| c.http_max_connections_per_ip = 0,
                "http_max_connections_per_ip: must be at least 1, got 0",
            ),
            (
                |c| c.stats_path = "stats".into(),
                "stats_path: must start with /, got \"stats\"",
            ),
            (
                |c| c.stats_path = "/s?x".into(),
                "stats_path: must not contain '?', got \"/s?x\"",
            ),
            (
                |c| c.stats_path = "/a b".into(),
                "stats_path: must not contain ' ', got \"/a b\"",
            ),
            (
                |c| c.real_ip_header = "X Real".into(),
                "real_ip_header: expected a header name like X-Forwarded-For, got \"X Real\"",
            ),
            (
                |c| c.real_ip_header = String::new(),
                "real_ip_header: expected a header name like X-Forwarded-For, got \"\"",
            ),
            (
                |c| c.min_announce_interval = Duration::from_secs(3600),
                "min_announce_interval (1h) must not be longer than announce_interval (30m)",
            ),
            (
                |c| c.announce_jitter = Duration::from_secs(1800),
                "announce_jitter (30m) must be shorter than announce_interval (30m)",
            ),
            (
                |c| c.numwant_default = 201,
                "numwant_default (201) must not be larger than numwant_max (200)",
            ),
        ];
        for (edit, want) in cases {
            let mut config = Config::default();
            edit(&mut config);
            assert_eq!(config.validate(), Err(want.to_string()));
        }
    }

    #[test]
    fn validate_accepts_edges() {
        type Edit = fn(&mut Config);
        let cases: &[Edit] = &[
            |c| c.stripes = 1,
            |c| c.stripes = 1 << 20,
            |c| c.workers = 1024,
            |c| c.http_max_request_bytes = 256,
            |c| c.http_max_request_bytes = 1 << 20,
            |c| c.http_idle_timeout = Duration::ZERO,
            |c| c.announce_jitter = Duration::ZERO,
            |c| c.min_announce_interval = c.announce_interval,
            |c| c.numwant_default = c.numwant_max,
            |c| c.real_ip_header = "X-Real-IP".into(),
        ];
        for edit in cases {
            let mut config = Config::default();
            edit(&mut config);
            assert_eq!(config.validate(), Ok(()));
        }
    }
}
