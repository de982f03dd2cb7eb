//! What each URL does: `/announce`, `/scrape`, the stats page and `/`.
//! Takes a parsed request, calls the core, writes the body into a reused
//! buffer and returns the status. Knows nothing of sockets.

use std::net::{IpAddr, SocketAddrV4, SocketAddrV6};

use super::client_ip::{canonical, is_in};
use super::reply::RetryIn;
use super::{query, reply};
use crate::access::AccessList;
use crate::config::Config;
use crate::config::Mode;
use crate::core::announce::{Announce, PeerBuf, ScrapeCounts};
use crate::core::{Failure, InfoHash};
use crate::private::swarm::Picked;
use crate::rng::Rng;
use crate::server::{Env, Shared};
use crate::stats::{Family, WorkerStats, PROTO_HTTP};

/// The parts of a request the routes look at.
pub struct Request<'a> {
    /// Path without the query (`/announce`).
    pub path: &'a [u8],
    /// Bytes after `?` (empty when none).
    pub query: &'a [u8],
    /// The client, after trusted-proxy resolution; `None` when a trusted
    /// proxy sent an unusable address header.
    pub client: Option<IpAddr>,
    /// The `User-Agent` header (empty when none).
    pub user_agent: &'a [u8],
}

/// What the route produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 200, body is bencode or text.
    Ok,
    /// 404.
    NotFound,
    /// A full scrape: the body is produced in slices by `full_scrape_slice`
    /// as the connection drains.
    FullScrape,
    /// 200, body is an HTML page.
    Html,
}

/// A worker's router with its reusable scratch space.
pub struct Routes {
    pub(super) rng: Rng,
    peers: PeerBuf,
    pub(super) hashes: Vec<InfoHash>,
    pub(super) files: Vec<(InfoHash, ScrapeCounts)>,
    /// Private mode's reply peers.
    pub(super) picked: Picked,
    /// The worker's id: its private ledger.
    pub(super) slot: usize,
    /// Set by a control call whose change must be committed before its
    /// `success` is sent (taken by `conn::serve_one`).
    pub(super) await_ticket: Option<u64>,
}

impl Routes {
    /// Worker `slot`'s router.
    pub fn new(slot: usize) -> Routes {
        Routes {
            rng: Rng::from_entropy(),
            peers: PeerBuf::default(),
            hashes: Vec::new(),
            files: Vec::new(),
            picked: Picked::default(),
            slot,
            await_ticket: None,
        }
    }
}

impl Default for Routes {
    fn default() -> Self {
        Routes::new(0)
    }
}

impl Routes {
    /// Serves `req`, writing the body into `body` (cleared first).
    pub fn serve(&mut self, env: &Env, req: &Request, body: &mut Vec<u8>) -> Status {
        let Env {
            shared,
            config,
            stats,
            ..
        } = *env;
        body.clear();
        if config.mode == Mode::Private {
            if let Some(status) = super::private::serve(self, env, req, body) {
                return status;
            }
        }
        match req.path {
            b"/announce" => {
                if let Err(f) = self.announce(env, req, body) {
                    fail(config, stats, f, body);
                }
                Status::Ok
            }
            b"/scrape" => match self.scrape(env, req, body) {
                Ok(status) => status,
                Err(f) => {
                    fail(config, stats, f, body);
                    Status::Ok
                }
            },
            p if p == config.stats_path.as_bytes() => match req.client {
                Some(ip) if is_in(&config.stats_allow, ip) => {
                    let page = shared.stats.render(shared.private.as_ref());
                    body.extend_from_slice(page.as_bytes());
                    Status::Ok
                }
                _ => not_found(body),
            },
            b"/" => {
                body.extend_from_slice(
                    b"hayate BitTorrent tracker\nannounce: /announce\nscrape: /scrape\n",
                );
                Status::Ok
            }
            _ => not_found(body),
        }
    }

    fn announce(&mut self, env: &Env, req: &Request, body: &mut Vec<u8>) -> Result<(), Failure> {
        let Env {
            shared,
            config,
            access,
            stats,
        } = *env;
        let q = query::parse_announce(req.query)?;
        let client = req.client.ok_or(Failure::InvalidProxyHeader)?;
        access.check(&q.info_hash)?;
        let spoof = config.allow_ip_spoofing;
        let ip = match q.ip {
            Some(claimed) if spoof => canonical(claimed),
            _ => client,
        };
        let (mut v4, mut v6) = match ip {
            IpAddr::V4(a) => (Some(SocketAddrV4::new(a, q.port)), None),
            IpAddr::V6(a) => (None, Some(SocketAddrV6::new(a, q.port, 0, 0))),
        };
        // BEP 7: the other family's address, only when enabled and only
        // for the family the request did not arrive on.
        if spoof {
            v4 = v4.or(q.ipv4.map(|a| SocketAddrV4::new(a, q.port)));
            v6 = v6.or(q.ipv6.map(|a| SocketAddrV6::new(a, q.port, 0, 0)));
        }
        let announce = Announce {
            info_hash: q.info_hash,
            v4,
            v6,
            left: q.left,
            event: q.event,
            numwant: q
                .numwant
                .unwrap_or(config.numwant_default)
                .min(config.numwant_max),
            want_v4: true,
            want_v6: true,
            local_networks: &config.local_networks,
        };
        let counts =
            shared
                .tracker
                .announce(&announce, &mut self.rng, &mut self.peers, &stats.gauges);
        reply::announce(
            body,
            &counts,
            &self.peers.v4,
            &self.peers.v6,
            q.compact,
            client,
        );
        WorkerStats::bump(&stats.announces[PROTO_HTTP][Family::of(client) as usize]);
        Ok(())
    }

    fn scrape(&mut self, env: &Env, req: &Request, body: &mut Vec<u8>) -> Result<Status, Failure> {
        let Env {
            shared,
            config,
            access,
            stats,
        } = *env;
        self.hashes.clear();
        query::parse_scrape(req.query, config.max_scrape_hashes, &mut self.hashes)?;
        let client = req.client.ok_or(Failure::InvalidProxyHeader)?;
        if self.hashes.is_empty() {
            if !config.full_scrape {
                return Err(Failure::FullScrapeDisabled);
            }
            shared
                .full_scrapes
                .admit(client, config.full_scrape_interval)?;
            WorkerStats::bump(&stats.scrapes[PROTO_HTTP][Family::of(client) as usize]);
            return Ok(Status::FullScrape);
        }
        self.files.clear();
        // A torrent the access lists refuse scrapes as unknown (zeros).
        self.files.extend(self.hashes.iter().map(|h| {
            let counts = if access.permits(h) {
                shared.tracker.scrape(h)
            } else {
                ScrapeCounts::default()
            };
            (*h, counts)
        }));
        reply::scrape(body, &mut self.files);
        WorkerStats::bump(&stats.scrapes[PROTO_HTTP][Family::of(client) as usize]);
        Ok(Status::Ok)
    }

    /// Appends slice `cursor` of a full scrape to `out`: the torrents whose
    /// hash starts with that byte, sorted (so the whole `files` dict is
    /// sorted, as bencode requires), then after slice 255 the closing
    /// bytes. Returns the next cursor, `None` once done.
    pub fn full_scrape_slice(
        &mut self,
        shared: &Shared,
        access: &AccessList,
        cursor: u16,
        out: &mut Vec<u8>,
    ) -> Option<u16> {
        let Ok(first) = u8::try_from(cursor) else {
            out.extend_from_slice(reply::SCRAPE_CLOSE);
            return None;
        };
        self.files.clear();
        shared
            .tracker
            .scrape_slice(first, &|h| access.permits(h), &mut self.files);
        reply::scrape_files(out, &mut self.files);
        Some(cursor + 1)
    }
}

fn fail(config: &Config, stats: &WorkerStats, f: Failure, body: &mut Vec<u8>) {
    body.clear();
    WorkerStats::bump(&stats.failures[f as usize]);
    let min_interval = crate::clock::secs(config.min_announce_interval);
    reply::failure(body, f.reason(), min_interval, retry_in(f, config));
}

/// Minutes a client is told to wait before asking again about a torrent
/// missing from the allowlist (it may be added later).
const RETRY_NOT_ALLOWED_MINUTES: u32 = 60;

/// BEP 31 `retry in` for failures that will not go away by retrying now.
fn retry_in(f: Failure, config: &Config) -> Option<RetryIn> {
    match f {
        Failure::TorrentDenied => Some(RetryIn::Never),
        Failure::TorrentNotAllowed => Some(RetryIn::Minutes(RETRY_NOT_ALLOWED_MINUTES)),
        Failure::FullScrapeTooOften => {
            let minutes = config.full_scrape_interval.as_secs().div_ceil(60);
            Some(RetryIn::Minutes(u32::try_from(minutes).unwrap_or(u32::MAX)))
        }
        _ => None,
    }
}

pub(super) fn not_found(body: &mut Vec<u8>) -> Status {
    body.clear();
    body.extend_from_slice(b"not found\n");
    Status::NotFound
}
