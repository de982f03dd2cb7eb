//! Private mode's URLs (GAZELLE.md "URLs"): `/<secret>/announce`,
//! `/<secret>/scrape`, `/<site_password>/update`, `/<report_password>/report`.
//! A public `/announce` or `/scrape` gets `Passkey not found`: a private
//! tracker never serves a public swarm. Anything else falls through to the
//! public routes (stats page, `/`, 404).

use std::sync::atomic::Ordering::Relaxed;

use super::client_ip::canonical;
use super::routes::{Request, Routes, Status};
use super::{query, reply};
use crate::config::{Config, PASSWORD_LEN};
use crate::core::Failure;
use crate::private::announce::Request as PrivRequest;
use crate::private::control::{self, Effect};
use crate::private::report::{self, Figures};
use crate::private::{Private, Refusal};
use crate::server::{Env, Shared};
use crate::stats::{Family, WorkerStats, PROTO_HTTP};

/// The page served for a private URL without a query: crawlers follow
/// announce URLs posted on the web, and must not index them.
const NOINDEX_PAGE: &[u8] = b"<!DOCTYPE html>\n<html><head><meta name=\"robots\" content=\"noindex, nofollow\"><title>Nothing to see here</title></head><body>Nothing to see here</body></html>\n";

/// Serves `req` if it is a private URL; `None` lets the public routes
/// answer (stats page, `/`, anything unknown).
pub fn serve(routes: &mut Routes, env: &Env, req: &Request, body: &mut Vec<u8>) -> Option<Status> {
    let Env {
        shared,
        config,
        stats,
        ..
    } = *env;
    let private = shared.private.as_ref()?;
    let (secret, action) = match req.path {
        b"/announce" | b"/scrape" => (&b""[..], &req.path[1..]),
        path => split(path)?,
    };
    if !matches!(action, b"announce" | b"scrape" | b"update" | b"report") {
        return None;
    }
    if req.query.is_empty() {
        body.extend_from_slice(NOINDEX_PAGE);
        return Some(Status::Html);
    }
    let result = match action {
        b"announce" => announce(routes, env, private, secret, req, body),
        b"scrape" => scrape(routes, env, private, secret, req, body),
        b"update" => {
            let done = update(shared, config, private, secret, req, body);
            if body.as_slice() == b"success" {
                // Acknowledged once written: a site does not resend a
                // call that answered `success` (`conn::serve_one` holds
                // the reply until the flusher has committed it).
                routes.await_ticket = Some(private.last_ticket());
            }
            done
        }
        _ => report_page(shared, private, secret, req, body),
    };
    if let Err(refusal) = result {
        refuse(config, stats, refusal, body);
    }
    Some(Status::Ok)
}

/// `/<32 bytes>/<action>` → (secret, action).
fn split(path: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = path.strip_prefix(b"/")?;
    let slash = rest.iter().position(|&b| b == b'/')?;
    let (secret, action) = rest.split_at(slash);
    (secret.len() == PASSWORD_LEN).then_some((secret, action.get(1..)?))
}

/// Writes the failure reply for `refusal` and counts it.
fn refuse(config: &Config, stats: &WorkerStats, refusal: Refusal, body: &mut Vec<u8>) {
    if let Refusal::Query(f) = refusal {
        WorkerStats::bump(&stats.failures[f as usize]);
    }
    WorkerStats::bump(&stats.private_refusals[refusal.index()]);
    body.clear();
    let min_interval = crate::clock::secs(config.min_announce_interval);
    reply::failure(body, &refusal.reason(), min_interval, None);
}

fn announce(
    routes: &mut Routes,
    env: &Env,
    private: &Private,
    passkey: &[u8],
    req: &Request,
    body: &mut Vec<u8>,
) -> Result<(), Refusal> {
    let Env {
        shared,
        config,
        stats,
        ..
    } = *env;
    let user = private.user(passkey)?;
    let q = match query::parse_announce(req.query) {
        Ok(q) => q,
        Err(f) => {
            // GAZELLE.md's order: an unregistered torrent is named before
            // anything wrong with the rest of the query.
            let hash_ok = !matches!(
                f,
                Failure::MissingInfoHash | Failure::InvalidInfoHash | Failure::MalformedQuery
            );
            if hash_ok {
                routes.hashes.clear();
                if query::parse_scrape(req.query, 1, &mut routes.hashes).is_ok() {
                    if let Some(h) = routes.hashes.first() {
                        private.check_registered(h)?;
                    }
                }
            }
            return Err(Refusal::Query(f));
        }
    };
    let client = req
        .client
        .ok_or(Refusal::Query(Failure::InvalidProxyHeader))?;
    if let Err(refusal) = private.check_client(&q.peer_id) {
        private.check_registered(&q.info_hash)?;
        return Err(refusal);
    }
    let ip = match q.ip {
        Some(claimed) if config.allow_ip_spoofing => canonical(claimed),
        _ => client,
    };
    let r = PrivRequest {
        info_hash: q.info_hash,
        peer_id: q.peer_id,
        ip,
        port: q.port,
        uploaded: q.uploaded,
        downloaded: q.downloaded,
        corrupt: corrupt(req.query),
        left: q.left,
        event: q.event,
        numwant: q
            .numwant
            .unwrap_or(config.numwant_default)
            .min(config.numwant_max),
        want_v4: true,
        want_v6: true,
        user_agent: req.user_agent,
    };
    let now = shared.tracker.clock().now();
    let draw = routes.rng.next_u64();
    let mut counts = private.announce(user, &r, now, draw, routes.slot, &mut routes.picked)?;
    counts.interval_secs = shared.tracker.jittered_interval(&mut routes.rng);
    // From the tracker's timers, like `interval`: an
    // `update_announce_interval` served by this worker in this same turn
    // is already there, while `config` is this turn's copy.
    counts.min_interval_secs = shared.tracker.min_interval_secs();
    reply::announce(
        body,
        &counts,
        &routes.picked.v4,
        &routes.picked.v6,
        q.compact,
        client,
    );
    WorkerStats::bump(&stats.announces[PROTO_HTTP][Family::of(client) as usize]);
    Ok(())
}

/// The `corrupt` parameter: bytes the client threw away (0 when absent
/// or not a number).
fn corrupt(query: &[u8]) -> u64 {
    super::percent::pairs(query)
        .find(|(k, _)| *k == b"corrupt")
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok())
        .unwrap_or(0)
}

fn scrape(
    routes: &mut Routes,
    env: &Env,
    private: &Private,
    passkey: &[u8],
    req: &Request,
    body: &mut Vec<u8>,
) -> Result<(), Refusal> {
    let Env { config, stats, .. } = *env;
    private.user(passkey)?;
    routes.hashes.clear();
    query::parse_scrape(req.query, config.max_scrape_hashes, &mut routes.hashes)
        .map_err(Refusal::Query)?;
    let client = req
        .client
        .ok_or(Refusal::Query(Failure::InvalidProxyHeader))?;
    routes.files.clear();
    // Unknown torrents are left out (GAZELLE.md).
    let found = routes
        .hashes
        .iter()
        .filter_map(|h| Some((*h, private.scrape(h)?)));
    routes.files.extend(found);
    reply::scrape(body, &mut routes.files);
    WorkerStats::bump(&stats.scrapes[PROTO_HTTP][Family::of(client) as usize]);
    Ok(())
}

/// Compares secrets in time independent of where they differ.
fn same_secret(given: &[u8], expected: &str) -> bool {
    let expected = expected.as_bytes();
    if given.len() != expected.len() {
        return false;
    }
    given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

fn update(
    shared: &Shared,
    config: &Config,
    private: &Private,
    secret: &[u8],
    req: &Request,
    body: &mut Vec<u8>,
) -> Result<(), Refusal> {
    if !same_secret(secret, &config.site_password) {
        return Err(Refusal::AuthenticationFailure);
    }
    match control::update(private, req.query) {
        Ok(Effect::None) => body.extend_from_slice(b"success"),
        Ok(Effect::AnnounceInterval(secs)) => match set_interval(shared, config, secs) {
            Ok(()) => body.extend_from_slice(b"success"),
            Err(e) => control_failure(config, &e, body),
        },
        Err(e) => control_failure(config, &e, body),
    }
    Ok(())
}

fn control_failure(config: &Config, text: &str, body: &mut Vec<u8>) {
    log::info!("update refused: {text}");
    let min_interval = crate::clock::secs(config.min_announce_interval);
    reply::failure(body, text, min_interval, None);
}

/// `update_announce_interval`: the live configuration's interval;
/// `min interval` becomes half of it (the default ratio, 30m → 15m), and
/// the jitter is pulled down to a tenth of it when it no longer fits.
fn set_interval(shared: &Shared, config: &Config, secs: u32) -> Result<(), String> {
    let mut new = config.clone();
    let interval = std::time::Duration::from_secs(u64::from(secs));
    new.announce_interval = interval;
    new.min_announce_interval = interval / 2;
    if new.announce_jitter >= interval {
        new.announce_jitter = interval / 10;
    }
    new.validate()?;
    shared.tracker.apply(&new);
    shared.config.store(new);
    log::info!("update: announce_interval is now {secs}s");
    Ok(())
}

fn report_page(
    shared: &Shared,
    private: &Private,
    secret: &[u8],
    req: &Request,
    body: &mut Vec<u8>,
) -> Result<(), Refusal> {
    let config = shared.config.load();
    if !same_secret(secret, &config.report_password) {
        return Err(Refusal::AuthenticationFailure);
    }
    let figures: Figures = shared.stats.report_figures();
    match report::report(private, req.query, &figures) {
        Ok(text) => body.extend_from_slice(text.as_bytes()),
        Err(e) => control_failure(&config, &e, body),
    }
    Ok(())
}

/// Counts of the private gauges, for the stats page summary.
pub fn live_counts(private: &Private) -> (u64, u64) {
    let s = u64::try_from(private.seeders.load(Relaxed)).unwrap_or(0);
    let l = u64::try_from(private.leechers.load(Relaxed)).unwrap_or(0);
    (s, l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_paths() {
        let key = [b'k'; 32];
        let mut path = b"/".to_vec();
        path.extend_from_slice(&key);
        path.extend_from_slice(b"/announce");
        assert_eq!(split(&path), Some((&key[..], &b"announce"[..])));
        assert_eq!(split(b"/short/announce"), None);
        assert_eq!(split(b"/announce"), None);
    }

    #[test]
    fn secrets_compare_whole() {
        let s = "a".repeat(32);
        assert!(same_secret(s.as_bytes(), &s));
        assert!(!same_secret(&s.as_bytes()[..31], &s));
        assert!(!same_secret("b".repeat(32).as_bytes(), &s));
    }
}
