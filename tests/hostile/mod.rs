//! Issue 6's attackers, shared by the hostile suites. Each attack is one
//! function that runs on its own thread against one tracker, until its
//! count is sent or `stop` is set, and returns a `Tally` of what it sent
//! and how the tracker answered:
//!
//! - `tcp`: an endless header line, idle connections, slowloris, pipelined
//!   garbage on keep-alive connections;
//! - `mangle`: HTTP announces and scrapes with every parameter mangled,
//!   each checked against the answer hayate's documented rules give it;
//! - `udp`: a flood of garbage datagrams, of connects from many source
//!   ports and of announces with forged connection IDs, and the
//!   well-behaved UDP client.
//!
//! Attackers use their own loopback source addresses (127.0.x.y, one
//! block per attack), so per-address caps see many clients, as on the
//! internet, and never the well-behaved client's 127.0.0.1.
#![allow(dead_code)]

pub mod mangle;
pub mod tcp;
pub mod udp;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// xorshift64*: reproducible garbage from a seed, not good randomness.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// 0..n
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// lo..=hi
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// `lo..=hi` random bytes.
    pub fn noise(&mut self, lo: usize, hi: usize) -> Vec<u8> {
        let n = self.range(lo, hi);
        self.bytes(n)
    }
    /// A new generator for another thread.
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next())
    }
}

/// The run's seed: `HAYATE_HOSTILE_SEED`, or the clock. Printed, so a
/// failing run can be replayed.
pub fn seed() -> u64 {
    std::env::var("HAYATE_HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

/// Named counts.
#[derive(Clone, Debug, Default)]
pub struct Tally(pub BTreeMap<String, u64>);

impl Tally {
    pub fn add(&mut self, key: &str, n: u64) {
        *self.0.entry(key.to_string()).or_insert(0) += n;
    }
    pub fn bump(&mut self, key: &str) {
        self.add(key, 1);
    }
    pub fn get(&self, key: &str) -> u64 {
        self.0.get(key).copied().unwrap_or(0)
    }
    pub fn merge(&mut self, other: &Tally) {
        for (k, v) in &other.0 {
            self.add(k, *v);
        }
    }
    /// The counts whose key starts with `prefix`, prefix removed.
    pub fn with_prefix(&self, prefix: &str) -> Vec<(String, u64)> {
        self.0
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), *v)))
            .collect()
    }
    /// `{a: 1, b: 2}` of the counts under `prefix`.
    pub fn show(&self, prefix: &str) -> String {
        let items: Vec<String> = self
            .with_prefix(prefix)
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        format!("{{{}}}", items.join(", "))
    }
}

/// Spreads `total` items evenly over `over`: `wait(i)` sleeps until item
/// `i` is due; false once `stop` is set.
pub struct Pace {
    start: Instant,
    every: Duration,
}

impl Pace {
    pub fn new(total: usize, over: Duration) -> Pace {
        Pace {
            start: Instant::now(),
            every: over / total.max(1) as u32,
        }
    }
    pub fn wait(&self, i: usize, stop: &AtomicBool) -> bool {
        let due = self.start + self.every * i as u32;
        loop {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            let now = Instant::now();
            if now >= due {
                return true;
            }
            std::thread::sleep((due - now).min(Duration::from_millis(50)));
        }
    }
}

/// p50, p99 and max of some latencies (sorted in place).
pub fn percentiles(v: &mut [Duration]) -> (Duration, Duration, Duration) {
    if v.is_empty() {
        return Default::default();
    }
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99), v[v.len() - 1])
}

/// This process's open-file limit (soft, hard), from /proc/self/limits.
pub fn nofile_limits() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or("");
    let mut nums = line.split_whitespace().filter_map(|w| {
        w.parse::<u64>()
            .ok()
            .or((w == "unlimited").then_some(u64::MAX))
    });
    let soft = nums.next().unwrap_or(1024);
    (soft, nums.next().unwrap_or(soft))
}

/// Lets this process open `need` descriptors: raises the soft limit to
/// the hard one with prlimit(1) (util-linux; no libc dependency) when it
/// is lower. Panics, saying what to do, when the hard limit is too low.
pub fn ensure_nofile(need: u64) {
    let (soft, hard) = nofile_limits();
    if soft >= need {
        return;
    }
    let _ = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={hard}:{hard}"))
        .status();
    let (soft, _) = nofile_limits();
    assert!(
        soft >= need,
        "this test opens {need} descriptors; the limit is {soft} (hard {hard}): run `ulimit -n {need}` first"
    );
}
