//! Counters and gauges, and the plain-text stats page (Prometheus text
//! exposition format, readable by eye).
//!
//! Each worker owns a `WorkerStats` (its own cache lines: no false sharing)
//! and bumps it with `Relaxed` atomics; the page sums them when rendered.
//! Torrent and peer gauges are live: every thread that changes the store
//! adds signed changes to its own `Gauges`, summed like the counters.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;

use crate::core::announce::{Gauges, Totals};
use crate::core::Failure;
use crate::private::{Private, Refusal};
use crate::udp::codec::Invalid;

/// Address family label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// IPv4
    V4 = 0,
    /// IPv6
    V6 = 1,
}

impl Family {
    /// The family of `ip` (v4-mapped IPv6 counts as IPv4).
    pub fn of(ip: std::net::IpAddr) -> Family {
        match ip {
            std::net::IpAddr::V4(_) => Family::V4,
            std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => Family::V4,
            std::net::IpAddr::V6(_) => Family::V6,
        }
    }
}

const FAMILIES: [&str; 2] = ["ipv4", "ipv6"];

/// Index of HTTP in `[proto]` arrays.
pub const PROTO_HTTP: usize = 0;
/// Index of UDP in `[proto]` arrays.
pub const PROTO_UDP: usize = 1;
const PROTOS: [&str; 2] = ["http", "udp"];
/// UDP request actions, index of `udp_requests`.
const UDP_ACTIONS: [&str; 3] = ["connect", "announce", "scrape"];

/// Why the HTTP front refused or cut a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// `http_max_connections` reached (503).
    MaxConnections = 0,
    /// `http_max_connections_per_ip` reached (503).
    MaxConnectionsPerIp,
    /// Request head over `http_max_request_bytes` (431).
    HeadTooLarge,
    /// More header lines than `http_max_headers` (431).
    TooManyHeaders,
    /// Head not complete within `http_request_timeout` (408).
    RequestTimeout,
    /// Unparseable request (400).
    BadRequest,
    /// Method other than GET or HEAD (405).
    Method,
}

impl Reject {
    /// Every variant, index = `self as usize`.
    pub const ALL: [Reject; 7] = [
        Reject::MaxConnections,
        Reject::MaxConnectionsPerIp,
        Reject::HeadTooLarge,
        Reject::TooManyHeaders,
        Reject::RequestTimeout,
        Reject::BadRequest,
        Reject::Method,
    ];

    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            Reject::MaxConnections => "max_connections",
            Reject::MaxConnectionsPerIp => "max_connections_per_ip",
            Reject::HeadTooLarge => "head_too_large",
            Reject::TooManyHeaders => "too_many_headers",
            Reject::RequestTimeout => "request_timeout",
            Reject::BadRequest => "bad_request",
            Reject::Method => "method_not_allowed",
        }
    }
}

/// One worker's counters. Aligned to its own cache lines.
#[derive(Default)]
#[repr(align(128))]
pub struct WorkerStats {
    /// Successful announces `[proto][family]`.
    pub announces: [[AtomicU64; 2]; 2],
    /// Successful scrapes `[proto][family]`.
    pub scrapes: [[AtomicU64; 2]; 2],
    /// Refused requests per `Failure`.
    pub failures: [AtomicU64; Failure::ALL.len()],
    /// HTTP requests parsed (any route).
    pub http_requests: AtomicU64,
    /// HTTP connections accepted.
    pub http_accepted: AtomicU64,
    /// HTTP connections refused or cut, per `Reject`.
    pub http_rejected: [AtomicU64; Reject::ALL.len()],
    /// Keep-alive connections closed for idleness.
    pub http_idle_closed: AtomicU64,
    /// HTTP bytes read.
    pub http_bytes_in: AtomicU64,
    /// HTTP bytes written.
    pub http_bytes_out: AtomicU64,
    /// UDP requests decoded, `[action][family]` (connect, announce, scrape).
    pub udp_requests: [[AtomicU64; 2]; 3],
    /// UDP datagrams dropped as garbage, per `udp::codec::Invalid`.
    pub udp_invalid: [AtomicU64; Invalid::ALL.len()],
    /// UDP connection IDs refused, per `udp::connid::Refused` (forged, expired).
    pub udp_connid_refused: [AtomicU64; 2],
    /// UDP replies the socket did not take.
    pub udp_dropped_replies: AtomicU64,
    /// UDP turns that ended with datagrams still waiting.
    pub udp_busy_turns: AtomicU64,
    /// UDP bytes read.
    pub udp_bytes_in: AtomicU64,
    /// UDP bytes written.
    pub udp_bytes_out: AtomicU64,
    /// Private requests refused, per `private::Refusal::index`.
    pub private_refusals: [AtomicU64; Refusal::LABELS.len()],
    /// This worker's share of the live torrent and peer counts.
    pub gauges: Gauges,
}

impl WorkerStats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
}

/// All counters and gauges of a running tracker.
pub struct Stats {
    started: Instant,
    workers: Box<[WorkerStats]>,
    /// Open HTTP connections (maintained by the connection limiter).
    pub http_open: AtomicUsize,
    /// The reaper's share of the live torrent and peer counts.
    pub reaper_gauges: Gauges,
    totals: Mutex<Totals>,
    /// The health line's rates and the sample they were measured from.
    last_summary: Mutex<Option<Sample>>,
}

impl Stats {
    /// Counters for `workers` workers.
    pub fn new(workers: usize) -> Stats {
        Stats {
            started: Instant::now(),
            workers: (0..workers.max(1))
                .map(|_| WorkerStats::default())
                .collect(),
            http_open: AtomicUsize::new(0),
            reaper_gauges: Gauges::default(),
            last_summary: Mutex::new(None),
            totals: Mutex::new(Totals::default()),
        }
    }

    /// Worker `i`'s counters (wraps around; workers are numbered 0..n).
    pub fn worker(&self, i: usize) -> &WorkerStats {
        &self.workers[i % self.workers.len()]
    }

    /// Stores the totals of the latest reaper sweep.
    pub fn set_totals(&self, totals: Totals) {
        *self.totals.lock().unwrap_or_else(|p| p.into_inner()) = totals;
    }

    /// The latest sweep's totals.
    pub fn totals(&self) -> Totals {
        *self.totals.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sum(&self, f: impl Fn(&WorkerStats) -> &AtomicU64) -> u64 {
        self.workers.iter().map(|w| f(w).load(Relaxed)).sum()
    }

    /// The health line, for `systemctl status`, the logs and the stats
    /// page's first line: version, uptime, torrents, peers (share of
    /// seeders), requests and errors (requests answered with a failure
    /// reason) per second. The rates are over the time since the previous
    /// call, whoever made it, once that is at least a second; a call sooner
    /// repeats the last rates.
    pub fn summary(&self, private: Option<&Private>) -> String {
        let udp: u64 = (0..3)
            .flat_map(|a| [0, 1].map(move |f| (a, f)))
            .map(|(a, f)| self.sum(|w| &w.udp_requests[a][f]))
            .sum();
        let requests = self.sum(|w| &w.http_requests) + udp;
        let errors = (0..Failure::ALL.len())
            .map(|i| self.sum(|w| &w.failures[i]))
            .chain((0..Refusal::LABELS.len()).map(|i| self.sum(|w| &w.private_refusals[i])))
            .sum::<u64>();
        let now = Instant::now();
        let mut last = self.last_summary.lock().unwrap_or_else(|p| p.into_inner());
        let sample = last.unwrap_or(Sample {
            at: self.started,
            requests: 0,
            errors: 0,
            rates: (0.0, 0.0),
        });
        let secs = now.duration_since(sample.at).as_secs_f64();
        let rates = if secs >= 1.0 || last.is_none() {
            let secs = secs.max(0.001);
            let rates = (
                requests.saturating_sub(sample.requests) as f64 / secs,
                errors.saturating_sub(sample.errors) as f64 / secs,
            );
            *last = Some(Sample {
                at: now,
                requests,
                errors,
                rates,
            });
            rates
        } else {
            sample.rates
        };
        drop(last);
        let (what, torrents, seeders, peers) = match private {
            Some(p) => {
                let count = |a: &AtomicI64| u64::try_from(a.load(Relaxed)).unwrap_or(0);
                let (seeders, leechers) = (count(&p.seeders), count(&p.leechers));
                let users = format!("private, {} users, ", grouped(p.users().len() as u64));
                (users, p.torrent_count() as u64, seeders, seeders + leechers)
            }
            None => {
                let peers: u64 = (0..2)
                    .flat_map(|f| [0, 1].map(move |k| (f, k)))
                    .map(|(f, k)| self.live(|g| &g.peers[f][k]))
                    .sum();
                let seeders = self.live(|g| &g.peers[0][1]) + self.live(|g| &g.peers[1][1]);
                (String::new(), self.live(|g| &g.torrents), seeders, peers)
            }
        };
        let share = (seeders * 100).checked_div(peers).unwrap_or(0);
        format!(
            "hayate {} up {}: {what}{} torrents, {} peers ({share}% seeders), {} req/s, {} errors/s",
            env!("CARGO_PKG_VERSION"),
            uptime(self.started.elapsed()),
            grouped(torrents),
            grouped(peers),
            grouped(rates.0.round() as u64),
            grouped(rates.1.round() as u64),
        )
    }

    /// Sums a live gauge over the workers and the reaper (never below 0).
    fn live(&self, f: impl Fn(&Gauges) -> &AtomicI64) -> u64 {
        let sum: i64 = self
            .workers
            .iter()
            .map(|w| f(&w.gauges).load(Relaxed))
            .sum::<i64>()
            + f(&self.reaper_gauges).load(Relaxed);
        sum.max(0) as u64
    }

    /// The figures of the private report API's `get=stats`.
    pub fn report_figures(&self) -> crate::private::report::Figures {
        let both = |f: &dyn Fn(&WorkerStats) -> &[[AtomicU64; 2]; 2]| -> u64 {
            (0..2)
                .flat_map(|p| [0, 1].map(move |i| (p, i)))
                .map(|(p, i)| self.sum(|w| &f(w)[p][i]))
                .sum()
        };
        let udp: u64 = (0..3)
            .flat_map(|a| [0, 1].map(move |f| (a, f)))
            .map(|(a, f)| self.sum(|w| &w.udp_requests[a][f]))
            .sum();
        let refused: u64 = (0..Refusal::LABELS.len())
            .map(|i| self.sum(|w| &w.private_refusals[i]))
            .sum();
        crate::private::report::Figures {
            uptime: self.started.elapsed().as_secs(),
            connections_opened: self.sum(|w| &w.http_accepted),
            open_connections: self.http_open.load(Relaxed) as u64,
            requests: self.sum(|w| &w.http_requests) + udp,
            announces: both(&|w| &w.announces),
            failed_announces: refused,
            scrapes: both(&|w| &w.scrapes),
            bytes_read: self.sum(|w| &w.http_bytes_in) + self.sum(|w| &w.udp_bytes_in),
            bytes_written: self.sum(|w| &w.http_bytes_out) + self.sum(|w| &w.udp_bytes_out),
        }
    }

    /// Renders the stats page; in private mode `private` adds its section.
    /// The first line is the health line as a comment, which a Prometheus
    /// parser skips: `curl -s host/stats | head -1`.
    pub fn render(&self, private: Option<&Private>) -> String {
        let mut page = Page(String::with_capacity(4096));
        page.0.push_str("# ");
        page.0.push_str(&self.summary(private));
        page.0.push('\n');
        let t = self.totals();
        page.gauge(
            "hayate_uptime_seconds",
            "Seconds since the tracker started.",
            &[("", self.started.elapsed().as_secs())],
        );
        page.gauge(
            "hayate_torrents",
            "Torrents with at least one peer.",
            &[("", self.live(|g| &g.torrents))],
        );
        page.gauge(
            "hayate_peers",
            "Peers by kind and family.",
            &[
                (
                    "kind=\"seeder\",family=\"ipv4\"",
                    self.live(|g| &g.peers[0][1]),
                ),
                (
                    "kind=\"leecher\",family=\"ipv4\"",
                    self.live(|g| &g.peers[0][0]),
                ),
                (
                    "kind=\"seeder\",family=\"ipv6\"",
                    self.live(|g| &g.peers[1][1]),
                ),
                (
                    "kind=\"leecher\",family=\"ipv6\"",
                    self.live(|g| &g.peers[1][0]),
                ),
            ],
        );
        let per_proto_family = |f: &dyn Fn(&WorkerStats) -> &[[AtomicU64; 2]; 2]| {
            let mut rows = Vec::with_capacity(4);
            for (p, proto) in PROTOS.iter().enumerate() {
                for (i, family) in FAMILIES.iter().enumerate() {
                    let value = self.sum(|w| &f(w)[p][i]);
                    rows.push((format!("proto=\"{proto}\",family=\"{family}\""), value));
                }
            }
            rows
        };
        page.counter_owned(
            "hayate_announces_total",
            "Successful announces.",
            &per_proto_family(&|w| &w.announces),
        );
        page.counter_owned(
            "hayate_scrapes_total",
            "Successful scrapes.",
            &per_proto_family(&|w| &w.scrapes),
        );
        let failures: Vec<(String, u64)> = Failure::ALL
            .iter()
            .map(|f| {
                (
                    format!("reason=\"{}\"", f.label()),
                    self.sum(|w| &w.failures[*f as usize]),
                )
            })
            .collect();
        page.counter_owned(
            "hayate_failures_total",
            "Requests refused with a failure reason.",
            &failures,
        );
        page.counter(
            "hayate_http_requests_total",
            "HTTP requests parsed.",
            &[("", self.sum(|w| &w.http_requests))],
        );
        page.gauge(
            "hayate_http_connections_open",
            "Open HTTP connections.",
            &[("", self.http_open.load(Relaxed) as u64)],
        );
        page.counter(
            "hayate_http_connections_accepted_total",
            "HTTP connections accepted.",
            &[("", self.sum(|w| &w.http_accepted))],
        );
        let rejected: Vec<(String, u64)> = Reject::ALL
            .iter()
            .map(|r| {
                (
                    format!("reason=\"{}\"", r.label()),
                    self.sum(|w| &w.http_rejected[*r as usize]),
                )
            })
            .collect();
        page.counter_owned(
            "hayate_http_connections_rejected_total",
            "HTTP connections refused or cut by a limit.",
            &rejected,
        );
        page.counter(
            "hayate_http_idle_closed_total",
            "Keep-alive connections closed when idle.",
            &[("", self.sum(|w| &w.http_idle_closed))],
        );
        let mut udp_requests = Vec::with_capacity(6);
        for (a, action) in UDP_ACTIONS.iter().enumerate() {
            for (i, family) in FAMILIES.iter().enumerate() {
                let value = self.sum(|w| &w.udp_requests[a][i]);
                udp_requests.push((format!("action=\"{action}\",family=\"{family}\""), value));
            }
        }
        page.counter_owned(
            "hayate_udp_requests_total",
            "UDP requests decoded, by action and family.",
            &udp_requests,
        );
        let invalid: Vec<(String, u64)> = Invalid::ALL
            .iter()
            .map(|c| {
                (
                    format!("cause=\"{}\"", c.label()),
                    self.sum(|w| &w.udp_invalid[*c as usize]),
                )
            })
            .collect();
        page.counter_owned(
            "hayate_udp_invalid_total",
            "UDP datagrams dropped as garbage, by cause.",
            &invalid,
        );
        page.counter(
            "hayate_udp_connection_id_refused_total",
            "UDP requests with a forged or expired connection ID.",
            &[
                ("reason=\"forged\"", self.sum(|w| &w.udp_connid_refused[0])),
                ("reason=\"expired\"", self.sum(|w| &w.udp_connid_refused[1])),
            ],
        );
        page.counter(
            "hayate_udp_dropped_replies_total",
            "UDP replies the socket would not take (buffer full).",
            &[("", self.sum(|w| &w.udp_dropped_replies))],
        );
        page.counter(
            "hayate_udp_busy_turns_total",
            "Turns in which a worker served its most datagrams from one UDP socket and more were waiting.",
            &[("", self.sum(|w| &w.udp_busy_turns))],
        );
        page.counter(
            "hayate_bytes_received_total",
            "Bytes received.",
            &[
                ("proto=\"http\"", self.sum(|w| &w.http_bytes_in)),
                ("proto=\"udp\"", self.sum(|w| &w.udp_bytes_in)),
            ],
        );
        page.counter(
            "hayate_bytes_sent_total",
            "Bytes sent.",
            &[
                ("proto=\"http\"", self.sum(|w| &w.http_bytes_out)),
                ("proto=\"udp\"", self.sum(|w| &w.udp_bytes_out)),
            ],
        );
        page.gauge(
            "hayate_resident_memory_bytes",
            "Resident memory of the process.",
            &[("", resident_bytes().unwrap_or(0))],
        );
        page.gauge(
            "hayate_reap_longest_hold_microseconds",
            "Longest time the last reap held one stripe.",
            &[("", t.longest_hold.as_micros() as u64)],
        );
        if let Some(p) = private {
            self.render_private(&mut page, p);
        }
        page.0
    }

    fn render_private(&self, page: &mut Page, p: &Private) {
        let refusals: Vec<(String, u64)> = Refusal::LABELS
            .iter()
            .enumerate()
            .map(|(i, label)| {
                (
                    format!("reason=\"{label}\""),
                    self.sum(|w| &w.private_refusals[i]),
                )
            })
            .collect();
        page.counter_owned(
            "hayate_private_refusals_total",
            "Private requests refused, by Ocelot's failure reason.",
            &refusals,
        );
        let f = &p.flush;
        let get = |a: &AtomicU64| a.load(Relaxed);
        let gauge = |a: &AtomicI64| u64::try_from(a.load(Relaxed)).unwrap_or(0);
        page.gauge(
            "hayate_private_users",
            "Users loaded (passkeys).",
            &[("", p.users().len() as u64)],
        );
        page.gauge(
            "hayate_private_torrents",
            "Registered torrents.",
            &[("", p.torrent_count() as u64)],
        );
        page.gauge(
            "hayate_private_tokens",
            "Freeleech tokens held.",
            &[("", p.token_count() as u64)],
        );
        page.gauge(
            "hayate_private_peers",
            "Private peers by kind.",
            &[
                ("kind=\"seeder\"", gauge(&p.seeders)),
                ("kind=\"leecher\"", gauge(&p.leechers)),
            ],
        );
        page.counter(
            "hayate_private_ledgers_handed_over_total",
            "Ledgers of deltas handed to the flusher.",
            &[("", get(&f.handed_over))],
        );
        page.counter(
            "hayate_private_deltas_total",
            "Deltas (announces, count changes) handed to the flusher.",
            &[("", get(&f.deltas))],
        );
        page.counter(
            "hayate_private_batches_committed_total",
            "Batches committed to the database.",
            &[("", get(&f.batches))],
        );
        page.counter(
            "hayate_private_peer_rows_committed_total",
            "Peer rows (xbt_files_users) committed.",
            &[("", get(&f.peer_rows))],
        );
        page.gauge(
            "hayate_private_commit_last_microseconds",
            "How long the last commit took.",
            &[("", get(&f.last_commit_micros))],
        );
        page.counter(
            "hayate_private_commit_microseconds_total",
            "Time spent committing.",
            &[("", get(&f.commit_micros))],
        );
        page.counter(
            "hayate_private_database_errors_total",
            "Commits that failed (retried with back-off).",
            &[("", get(&f.errors))],
        );
        page.gauge(
            "hayate_private_oldest_uncommitted_milliseconds",
            "Age of the oldest delta the flusher holds that is not committed yet; 0 when none.",
            &[("", get(&f.oldest_pending_millis))],
        );
        page.counter(
            "hayate_private_reloads_total",
            "Reloads of users, torrents, tokens and whitelist from the database.",
            &[("", get(&f.reloads))],
        );
        page.gauge(
            "hayate_private_database_outage_milliseconds",
            "How long the database has been failing, as of the flusher's last turn; 0 when it is not.",
            &[("", get(&f.outage_millis))],
        );
        page.counter(
            "hayate_private_site_calls_total",
            "Token-expiry calls to site_url, by result.",
            &[
                ("result=\"ok\"", get(&f.site_calls)),
                ("result=\"failed\"", get(&f.site_errors)),
            ],
        );
    }
}

/// The counts and rates the health line was last measured at.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Instant,
    requests: u64,
    errors: u64,
    /// (requests, errors) per second up to `at`.
    rates: (f64, f64),
}

/// `n` with thousands separated by commas: 627,735.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Uptime as people say it: `3d 4h 12m`, or `42s` in the first minute.
fn uptime(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        return format!("{secs}s");
    }
    let (days, hours, minutes) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60);
    match (days, hours) {
        (0, 0) => format!("{minutes}m"),
        (0, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h {minutes}m"),
    }
}

/// Builds the exposition text.
struct Page(String);

impl Page {
    fn metric(&mut self, kind: &str, name: &str, help: &str, rows: &[(&str, u64)]) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in rows {
            if labels.is_empty() {
                let _ = writeln!(self.0, "{name} {value}");
            } else {
                let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
            }
        }
    }
    fn gauge(&mut self, name: &str, help: &str, rows: &[(&str, u64)]) {
        self.metric("gauge", name, help, rows);
    }
    fn counter(&mut self, name: &str, help: &str, rows: &[(&str, u64)]) {
        self.metric("counter", name, help, rows);
    }
    fn counter_owned(&mut self, name: &str, help: &str, rows: &[(String, u64)]) {
        let rows: Vec<(&str, u64)> = rows.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        self.metric("counter", name, help, &rows);
    }
}

/// Resident memory of this process, from `/proc/self/status` (Linux).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_line_numbers_read_as_people_write_them() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(627_735), "627,735");
        assert_eq!(grouped(1_234_567_890), "1,234,567,890");
        let s = std::time::Duration::from_secs;
        assert_eq!(uptime(s(42)), "42s");
        assert_eq!(uptime(s(60 * 12)), "12m");
        assert_eq!(uptime(s(3600 * 4 + 60 * 12)), "4h 12m");
        assert_eq!(uptime(s(86_400 * 3 + 3600 * 4 + 60 * 12 + 7)), "3d 4h 12m");
    }

    #[test]
    fn the_page_starts_with_the_health_line() {
        let s = Stats::new(2);
        let page = s.render(None);
        let first = page.lines().next().unwrap_or("");
        let want = format!("# hayate {} up ", env!("CARGO_PKG_VERSION"));
        assert!(first.starts_with(&want), "{first}");
        assert!(
            first.ends_with(": 0 torrents, 0 peers (0% seeders), 0 req/s, 0 errors/s"),
            "{first}"
        );
    }

    #[test]
    fn page_sums_workers_and_is_well_formed() {
        let s = Stats::new(2);
        WorkerStats::bump(&s.worker(0).announces[PROTO_HTTP][0]);
        WorkerStats::bump(&s.worker(1).announces[PROTO_HTTP][0]);
        WorkerStats::bump(&s.worker(1).announces[PROTO_UDP][1]);
        WorkerStats::bump(&s.worker(1).failures[Failure::InvalidPort as usize]);
        let page = s.render(None);
        assert!(
            page.contains("hayate_announces_total{proto=\"http\",family=\"ipv4\"} 2\n"),
            "{page}"
        );
        assert!(page.contains("hayate_announces_total{proto=\"udp\",family=\"ipv6\"} 1\n"));
        assert!(page.contains("hayate_failures_total{reason=\"invalid_port\"} 1\n"));
        for line in page.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap_or_default();
            assert!(name.starts_with("hayate_"), "{line}");
            assert!(value.parse::<u64>().is_ok(), "{line}");
        }
        assert!(resident_bytes().unwrap_or(0) > 0);
    }
}
