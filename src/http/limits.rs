//! Connection admission: `http_max_connections` over all workers and
//! `http_max_connections_per_ip` per client address.
//!
//! Workers share one limiter. The total is an atomic; the per-address
//! counts sit in a small mutexed map touched once on accept and once on
//! close (never while a request is served), so the lock is held for a
//! hash-map update and nothing else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use std::time::{Duration, Instant};

use crate::core::Failure;
use crate::stats::Reject;

/// Most client addresses remembered by the full-scrape limiter; beyond
/// this (after forgetting expired ones) full scrapes are refused, so a
/// crowd of addresses cannot grow the map without bound.
const MAX_FULL_SCRAPE_CLIENTS: usize = 65_536;

/// One full scrape per client address per `full_scrape_interval`.
#[derive(Default)]
pub struct FullScrapeLimiter {
    last: Mutex<HashMap<IpAddr, Instant>>,
}

impl FullScrapeLimiter {
    /// Lets `ip` do a full scrape now, or says it is too soon.
    pub fn admit(&self, ip: IpAddr, interval: Duration) -> Result<(), Failure> {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = last.get(&ip) {
            if now.duration_since(*at) < interval {
                return Err(Failure::FullScrapeTooOften);
            }
        }
        if last.len() >= MAX_FULL_SCRAPE_CLIENTS {
            last.retain(|_, at| now.duration_since(*at) < interval);
            if last.len() >= MAX_FULL_SCRAPE_CLIENTS {
                return Err(Failure::FullScrapeTooOften);
            }
        }
        last.insert(ip, now);
        Ok(())
    }
}

/// Counts open connections, in total and per client address.
pub struct ConnLimiter {
    per_ip: Mutex<HashMap<IpAddr, u32>>,
}

impl Default for ConnLimiter {
    fn default() -> Self {
        ConnLimiter {
            per_ip: Mutex::new(HashMap::new()),
        }
    }
}

impl ConnLimiter {
    /// Admits a connection from `ip`, or says which limit it crosses.
    /// `open` is the shared open-connection gauge.
    pub fn admit(
        &self,
        open: &AtomicUsize,
        ip: IpAddr,
        max_total: usize,
        max_per_ip: usize,
    ) -> Result<(), Reject> {
        if open.fetch_add(1, Ordering::Relaxed) >= max_total {
            open.fetch_sub(1, Ordering::Relaxed);
            return Err(Reject::MaxConnections);
        }
        let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let count = map.entry(ip).or_insert(0);
        if *count as usize >= max_per_ip {
            if *count == 0 {
                map.remove(&ip);
            }
            open.fetch_sub(1, Ordering::Relaxed);
            return Err(Reject::MaxConnectionsPerIp);
        }
        *count += 1;
        Ok(())
    }

    /// Releases a connection admitted for `ip`.
    pub fn release(&self, open: &AtomicUsize, ip: IpAddr) {
        open.fetch_sub(1, Ordering::Relaxed);
        let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = map.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                map.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_scrape_once_per_interval_per_address() {
        let l = FullScrapeLimiter::default();
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let minute = Duration::from_secs(60);
        assert_eq!(l.admit(a, minute), Ok(()));
        assert_eq!(l.admit(a, minute), Err(Failure::FullScrapeTooOften));
        assert_eq!(l.admit(b, minute), Ok(()));
        assert_eq!(l.admit(a, Duration::ZERO), Ok(()));
    }

    #[test]
    fn limits_total_and_per_ip_and_releases() {
        let l = ConnLimiter::default();
        let open = AtomicUsize::new(0);
        let a: IpAddr = "10.0.0.1".parse().unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "10.0.0.2".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(l.admit(&open, a, 3, 2), Ok(()));
        assert_eq!(l.admit(&open, a, 3, 2), Ok(()));
        assert_eq!(l.admit(&open, a, 3, 2), Err(Reject::MaxConnectionsPerIp));
        assert_eq!(l.admit(&open, b, 3, 2), Ok(()));
        assert_eq!(l.admit(&open, b, 3, 2), Err(Reject::MaxConnections));
        assert_eq!(open.load(Ordering::Relaxed), 3);
        l.release(&open, a);
        assert_eq!(l.admit(&open, b, 3, 2), Ok(()));
        l.release(&open, a);
        l.release(&open, b);
        l.release(&open, b);
        assert_eq!(open.load(Ordering::Relaxed), 0);
        assert!(l.per_ip.lock().map(|m| m.is_empty()).unwrap_or(false));
    }
}
