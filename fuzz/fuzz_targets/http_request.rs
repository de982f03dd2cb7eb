//! Feeds arbitrary bytes to the HTTP front as a request head, through the
//! server's own functions in `src/http/conn.rs`: `parse_head` (httparse as
//! the server configures it, with `http_max_headers` header slots),
//! `split_target`, then `query::parse_announce` and `query::parse_scrape`
//! on the query and `request_client` (the `real_ip_header` decoding of
//! `client_ip`) for a direct peer and for peers behind a trusted proxy.
//!
//! Asserts only what hayate documents:
//! - a complete head is no longer than the input;
//! - the split: the path is the target up to the first `?`, the query the
//!   bytes after it up to the first `#`;
//! - announce: `port` is 1..=65535, and a successful decode encoded back
//!   the strict way (every hash byte percent-escaped) decodes to the same;
//! - scrape: at most `max` distinct hashes appended after what `out`
//!   already held, `out` restored on error, a smaller `max` fails exactly
//!   when there are more hashes than it allows; when announce and scrape
//!   both succeed, the announce's `info_hash` (the last value) is one of
//!   the scraped ones (every distinct value);
//! - client: a peer that is not a trusted proxy is its own client; behind
//!   a trusted proxy the answer is canonical (no v4-mapped IPv6) and is
//!   either the proxy itself or an address outside `trusted_proxies`.
#![no_main]

use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::sync::OnceLock;

use hayate::config::Config;
use hayate::core::{Event, Failure, InfoHash};
use hayate::http::client_ip::{canonical, is_in};
use hayate::http::conn::{parse_head, request_client, split_target, MAX_HEADERS_CAP};
use hayate::http::query::{parse_announce, parse_scrape, AnnounceQuery};
use libfuzzer_sys::fuzz_target;

/// Already in `out` before a scrape is parsed; must still be there after.
const SENTINEL: InfoHash = [0xee; 20];

/// The default config with proxies trusted, so header decoding runs.
fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let mut config = Config::default();
        config.trusted_proxies = ["127.0.0.0/8", "10.0.0.0/8", "::1/128", "fd00::/8"]
            .iter()
            .map(|n| n.parse().expect("network"))
            .collect();
        config
    })
}

fuzz_target!(|data: &[u8]| {
    let config = config();
    let max_headers = config.http_max_headers.min(MAX_HEADERS_CAP);
    let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS_CAP];
    let mut req = httparse::Request::new(&mut []);
    let Ok(httparse::Status::Complete(n)) = parse_head(&mut req, data, &mut headers[..max_headers])
    else {
        return;
    };
    assert!(
        n <= data.len(),
        "head of {n} bytes from {} bytes",
        data.len()
    );

    let target = req.path.unwrap_or("/").as_bytes();
    let (path, query) = split_target(target);
    check_split(target, path, query);

    let announce = parse_announce(query);
    if let Ok(a) = &announce {
        assert_ne!(a.port, 0);
        assert_eq!(parse_announce(&encode(a)), Ok(*a), "re-encoded announce");
    }

    let max = config.max_scrape_hashes;
    let scraped = scrape(query, max);
    let small = scrape(query, 1);
    if let Ok(hashes) = &scraped {
        let want = if hashes.len() > 1 {
            Err(Failure::TooManyInfoHashes)
        } else {
            Ok(hashes.clone())
        };
        assert_eq!(small, want, "max 1 vs max {max}");
        if let Ok(a) = &announce {
            assert!(hashes.contains(&a.info_hash), "announce hash not scraped");
        }
    }

    for peer in [
        "127.0.0.1",
        "::ffff:10.1.2.3",
        "::1",
        "192.0.2.1",
        "2001:db8::1",
    ] {
        let peer: IpAddr = peer.parse().expect("address");
        let got = request_client(&req, peer, config);
        let trusted = &config.trusted_proxies;
        if !is_in(trusted, canonical(peer)) {
            assert_eq!(got, Some(canonical(peer)), "untrusted peer {peer}");
        } else if let Some(ip) = got {
            assert_eq!(ip, canonical(ip), "not canonical: {ip}");
            assert!(
                ip == canonical(peer) || !is_in(trusted, ip),
                "trusted hop {ip} returned"
            );
        }
    }
});

/// The split matches its documentation, checked against the target.
fn check_split(target: &[u8], path: &[u8], query: &[u8]) {
    match target.iter().position(|&b| b == b'?') {
        None => assert!(path == target && query.is_empty()),
        Some(q) => {
            assert_eq!(path, &target[..q]);
            let after = &target[q + 1..];
            assert!(after.starts_with(query));
            assert!(!query.contains(&b'#'));
            assert!(query.len() == after.len() || after[query.len()] == b'#');
        }
    }
}

/// `parse_scrape` with a sentinel already in `out`: the hashes it appended.
fn scrape(query: &[u8], max: usize) -> Result<Vec<InfoHash>, Failure> {
    let mut out = vec![SENTINEL];
    let result = parse_scrape(query, max, &mut out);
    assert_eq!(out.first(), Some(&SENTINEL), "entry already in out lost");
    let added = out.split_off(1);
    match result {
        Err(e) => {
            assert!(added.is_empty(), "{e:?} but {} hashes kept", added.len());
            Err(e)
        }
        Ok(()) => {
            assert!(added.len() <= max, "{} hashes, max {max}", added.len());
            for (i, h) in added.iter().enumerate() {
                assert!(!added[..i].contains(h), "duplicate hash");
            }
            Ok(added)
        }
    }
}

/// An announce as a strict client would send it: every byte of the hashes
/// escaped, numbers in decimal, defaults left out.
fn encode(a: &AnnounceQuery) -> Vec<u8> {
    let escaped = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("%{b:02X}")).collect() };
    let mut q = format!(
        "info_hash={}&peer_id={}&port={}&left={}&uploaded={}&downloaded={}",
        escaped(&a.info_hash),
        escaped(&a.peer_id),
        a.port,
        a.left,
        a.uploaded,
        a.downloaded
    );
    if let Some(n) = a.numwant {
        q += &format!("&numwant={n}");
    }
    match a.event {
        Event::None => {}
        Event::Started => q += "&event=started",
        Event::Completed => q += "&event=completed",
        Event::Stopped => q += "&event=stopped",
    }
    if !a.compact {
        q += "&compact=0";
    }
    if a.no_peer_id {
        q += "&no_peer_id=1";
    }
    if let Some(ip) = a.ip {
        q += &format!("&ip={ip}");
    }
    if let Some(ip) = a.ipv4 {
        q += &format!("&ipv4={ip}");
    }
    if let Some(ip) = a.ipv6 {
        q += &format!("&ipv6={ip}");
    }
    q.into_bytes()
}
