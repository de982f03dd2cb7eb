//! The report API, `/<report_password>/report?get=...`, in Ocelot's line
//! format (GAZELLE.md): `value label` per line. The site parses
//! `leechers tracked`, `seeders tracked`, and a user's `N leeching` /
//! `N seeding`.

use std::fmt::Write;

use super::Private;

/// The figures of `get=stats`, gathered by the caller from the counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct Figures {
    /// Seconds since start.
    pub uptime: u64,
    /// HTTP connections accepted.
    pub connections_opened: u64,
    /// HTTP connections open now.
    pub open_connections: u64,
    /// Requests served (HTTP and UDP).
    pub requests: u64,
    /// Successful announces.
    pub announces: u64,
    /// Refused announces.
    pub failed_announces: u64,
    /// Scrapes.
    pub scrapes: u64,
    /// Bytes read (HTTP and UDP).
    pub bytes_read: u64,
    /// Bytes written (HTTP and UDP).
    pub bytes_written: u64,
}

/// Answers `query`; `Err` carries the failure text.
pub fn report(private: &Private, query: &[u8], figures: &Figures) -> Result<String, String> {
    let mut get = None;
    let mut key = None;
    for (k, v) in crate::http::percent::pairs(query) {
        match k {
            b"get" if get.is_none() => get = Some(v),
            b"key" if key.is_none() => key = Some(v),
            _ => {}
        }
    }
    let mut out = String::new();
    match get {
        Some(b"stats") => {
            let f = figures;
            let per_sec = |n: u64| n / f.uptime.max(1);
            let seeders = u64::try_from(private.seeders.load(std::sync::atomic::Ordering::Relaxed))
                .unwrap_or(0);
            let leechers =
                u64::try_from(private.leechers.load(std::sync::atomic::Ordering::Relaxed))
                    .unwrap_or(0);
            let lines: [(u64, &str); 13] = [
                (f.uptime, "uptime"),
                (f.connections_opened, "connections opened"),
                (f.open_connections, "open connections"),
                (per_sec(f.connections_opened), "connections/s"),
                (f.requests, "requests handled"),
                (per_sec(f.requests), "requests/s"),
                (f.announces, "successful announcements"),
                (f.failed_announces, "failed announcements"),
                (f.scrapes, "scrapes"),
                (leechers, "leechers tracked"),
                (seeders, "seeders tracked"),
                (f.bytes_read, "bytes read"),
                (f.bytes_written, "bytes written"),
            ];
            for (value, label) in lines {
                let _ = writeln!(out, "{value} {label}");
            }
        }
        Some(b"user") => {
            let key = key.ok_or("missing key")?;
            let passkey: Vec<u8> = crate::http::percent::Decoded::new(key)
                .collect::<Result<_, _>>()
                .map_err(|_| "malformed key")?;
            let user = private
                .user(&passkey)
                .map_err(|r| r.reason().into_owned())?;
            let (leeching, seeding) = private.user_counts(user.id);
            let _ = writeln!(out, "{leeching} leeching");
            let _ = writeln!(out, "{seeding} seeding");
        }
        Some(other) => {
            return Err(format!(
                "unknown report {:?}",
                String::from_utf8_lossy(other)
            ))
        }
        None => return Err("missing get".into()),
    }
    Ok(out)
}
