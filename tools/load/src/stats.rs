//! Counting and reporting. Each sending thread counts into its own `Counters`
//! and every `FLUSH` hands them to its `Shared` slot (one uncontended mutex
//! per thread); the reporter takes all slots at each interval. The tracker's
//! resident memory and threads come from /proc, its torrents and peers from
//! its stats page.

use crate::hist::{self, Hist};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a sending thread hands its counts over.
pub const FLUSH: Duration = Duration::from_millis(100);
/// Distinct error messages kept (the rest are counted under the last).
const MAX_MESSAGES: usize = 8;

/// What one thread saw since its last hand-over.
#[derive(Clone, Default)]
pub struct Counters {
    /// Announce replies (a peer list).
    pub announces: u64,
    /// Scrape replies.
    pub scrapes: u64,
    /// UDP connect replies; over HTTP, TCP connections opened.
    pub connects: u64,
    /// Requests with no reply within `--timeout`.
    pub timeouts: u64,
    /// Error replies (UDP action 3, HTTP `failure reason`), by message.
    pub error_replies: u64,
    pub messages: Vec<(String, u64)>,
    /// Replies that do not parse or do not match a request.
    pub bad_replies: u64,
    /// Failed TCP connects, resets, socket errors (ICMP refused over UDP).
    pub io_errors: u64,
    /// Latency of answered announces and scrapes, nanoseconds.
    pub latency: Hist,
    /// Open loop: the most a request left after its scheduled time (this
    /// process's own delay, included in the latency), nanoseconds.
    pub send_lag_max: u64,
}

impl Counters {
    /// Announce and scrape replies.
    pub fn responses(&self) -> u64 {
        self.announces + self.scrapes
    }

    /// Every kind of error.
    pub fn errors(&self) -> u64 {
        self.timeouts + self.error_replies + self.bad_replies + self.io_errors
    }

    /// Counts an error reply with its message (allocates only on errors).
    pub fn error_reply(&mut self, message: &[u8]) {
        self.error_replies += 1;
        let text = String::from_utf8_lossy(message);
        if let Some(m) = self.messages.iter_mut().find(|(t, _)| *t == text) {
            m.1 += 1;
        } else if self.messages.len() < MAX_MESSAGES {
            self.messages.push((text.into_owned(), 1));
        } else if let Some(m) = self.messages.last_mut() {
            m.1 += 1;
        }
    }

    /// Adds `o` into `self`.
    pub fn merge(&mut self, o: &Counters) {
        self.announces += o.announces;
        self.scrapes += o.scrapes;
        self.connects += o.connects;
        self.timeouts += o.timeouts;
        self.error_replies += o.error_replies;
        self.bad_replies += o.bad_replies;
        self.io_errors += o.io_errors;
        self.latency.merge(&o.latency);
        self.send_lag_max = self.send_lag_max.max(o.send_lag_max);
        for (text, n) in &o.messages {
            if let Some(m) = self.messages.iter_mut().find(|(t, _)| t == text) {
                m.1 += n;
            } else if self.messages.len() < MAX_MESSAGES {
                self.messages.push((text.clone(), *n));
            }
        }
    }
}

/// One thread's hand-over slot.
pub type Shared = Arc<Mutex<Counters>>;

/// Moves `local` into `shared`, leaving `local` empty.
pub fn flush(local: &mut Counters, shared: &Shared) {
    let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
    s.merge(local);
    drop(s);
    *local = Counters::default();
}

/// Takes everything handed over so far from all threads.
pub fn take(slots: &[Shared]) -> Counters {
    let mut sum = Counters::default();
    for s in slots {
        let mut c = s.lock().unwrap_or_else(|e| e.into_inner());
        sum.merge(&c);
        *c = Counters::default();
    }
    sum
}

/// What the tracker looks like from outside: /proc and its stats page.
#[derive(Default, Clone, Copy)]
pub struct Probe {
    pub rss_kb: Option<u64>,
    pub threads: Option<u64>,
    pub torrents: Option<u64>,
    pub peers: Option<u64>,
}

/// Reads VmRSS and Threads of `pid`, and torrents and peers from `stats`
/// (hayate's /stats: `hayate_torrents`, the sum of `hayate_peers{...}`).
pub fn probe(pid: Option<u32>, stats: Option<&StatsUrl>) -> Probe {
    let mut p = Probe::default();
    if let Some(pid) = pid {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let field = |name: &str| {
                s.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
            };
            p.rss_kb = field("VmRSS:");
            p.threads = field("Threads:");
        }
    }
    if let Some(url) = stats {
        if let Some(page) = url.fetch() {
            let mut peers = None;
            for line in page.lines() {
                let mut it = line.split_whitespace();
                let (Some(name), Some(value)) = (it.next(), it.next()) else {
                    continue;
                };
                let Ok(v) = value.parse::<f64>() else {
                    continue;
                };
                if name == "hayate_torrents" {
                    p.torrents = Some(v as u64);
                } else if name.starts_with("hayate_peers{") || name == "hayate_peers" {
                    peers = Some(peers.unwrap_or(0) + v as u64);
                }
            }
            p.peers = peers;
        }
    }
    p
}

/// `http://HOST:PORT/PATH`, fetched with a plain HTTP/1.0 GET.
pub struct StatsUrl {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

impl StatsUrl {
    /// Parses `http://127.0.0.1:6969/stats` (IPv6: `http://[::1]:6969/stats`).
    pub fn parse(url: &str) -> Result<StatsUrl, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs"))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/stats"),
        };
        let addr = crate::args::resolve(host)?;
        Ok(StatsUrl {
            addr,
            host: host.to_string(),
            path: path.to_string(),
        })
    }

    fn fetch(&self) -> Option<String> {
        let t = Duration::from_secs(2);
        let mut s = TcpStream::connect_timeout(&self.addr, t).ok()?;
        s.set_read_timeout(Some(t)).ok()?;
        s.set_write_timeout(Some(t)).ok()?;
        let req = format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.path, self.host
        );
        s.write_all(req.as_bytes()).ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        let i = body.find("\r\n\r\n")?;
        Some(body.split_off(i + 4))
    }
}

/// The per-interval table's header (figures in microseconds, one column per
/// figure so scripts can cut them out by position).
pub const HEADER: &str = "  elapsed      req/s   errors  timeout  errrepl      bad       io   p50_us   p99_us p99.9_us   max_us   lag_us    rss_kB  threads  torrents     peers";

/// One table row.
pub fn row(elapsed_s: u64, secs: f64, c: &Counters, p: &Probe) -> String {
    let us = |ns: u64| ns.div_ceil(1000);
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    format!(
        "{:>8}s {:>10.0} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>9} {:>9}",
        elapsed_s,
        c.responses() as f64 / secs,
        c.errors(),
        c.timeouts,
        c.error_replies,
        c.bad_replies,
        c.io_errors,
        us(c.latency.quantile(0.5)),
        us(c.latency.quantile(0.99)),
        us(c.latency.quantile(0.999)),
        us(c.latency.max()),
        us(c.send_lag_max),
        opt(p.rss_kb),
        opt(p.threads),
        opt(p.torrents),
        opt(p.peers),
    )
}

/// The closing summary, several lines.
pub fn summary(c: &Counters, secs: f64) -> String {
    let mut s = format!(
        "responses: {} announces, {} scrapes ({} connects) in {:.1} s\n\
         responses/s: {:.0}\n\
         errors: {} ({} timeout, {} error reply, {} bad reply, {} io/connect)\n",
        c.announces,
        c.scrapes,
        c.connects,
        secs,
        c.responses() as f64 / secs,
        c.errors(),
        c.timeouts,
        c.error_replies,
        c.bad_replies,
        c.io_errors,
    );
    for (text, n) in &c.messages {
        s += &format!("  error reply {n}x: {text}\n");
    }
    let l = &c.latency;
    s += &format!(
        "latency: p50 {}  p99 {}  p99.9 {}  max {}\n",
        hist::human(l.quantile(0.5)),
        hist::human(l.quantile(0.99)),
        hist::human(l.quantile(0.999)),
        hist::human(l.max()),
    );
    if c.send_lag_max > 0 {
        s += &format!(
            "send lag: max {} (how late this process sent a scheduled request; part of the latency)\n",
            hist::human(c.send_lag_max)
        );
    }
    s
}
