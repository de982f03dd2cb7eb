//! HTTP announce and scrape against the real server, IPv4 and IPv6:
//! replies decoded with serde_bencode, counting rules, selection, expiry,
//! failure reasons.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use serde_bencode::value::Value;

const LOCAL4: [u8; 4] = [127, 0, 0, 1];

#[test]
fn peers_see_each_other_over_ipv4() {
    let s = start(config());
    let h = [1u8; 20];
    let first = get(v4(&s), &announce(&h, 1001, 100, "")).bencode();
    assert_eq!(failure(&first), None);
    assert!(
        peers4(&first).is_empty(),
        "first peer got itself: {first:?}"
    );
    assert_eq!((int(&first, "complete"), int(&first, "incomplete")), (0, 1));
    let second = get(v4(&s), &announce(&h, 1002, 100, "")).bencode();
    assert_eq!(peers4(&second), vec![(LOCAL4, 1001)]);
    assert_eq!(
        (int(&second, "complete"), int(&second, "incomplete")),
        (0, 2)
    );
    assert_eq!(bytes(&second, "external ip"), &LOCAL4);
    assert_eq!(int(&second, "interval"), 1800);
    assert_eq!(int(&second, "min interval"), 900);
    assert_eq!(int(&second, "downloaded"), 0);
    s.shutdown();
}

#[test]
fn peers_see_each_other_over_ipv6_and_across_families() {
    let s = start(config());
    let h = [2u8; 20];
    get(v6(&s), &announce(&h, 2001, 100, ""));
    let r = get(v6(&s), &announce(&h, 2002, 100, "")).bencode();
    let loopback6: [u8; 16] = std::net::Ipv6Addr::LOCALHOST.octets();
    assert_eq!(peers6(&r), vec![(loopback6, 2001)]);
    assert!(peers4(&r).is_empty());
    assert_eq!(bytes(&r, "external ip"), &loopback6);
    // An IPv4 announcer of the same torrent gets both families.
    let r = get(v4(&s), &announce(&h, 2003, 100, "")).bencode();
    assert_eq!(peers6(&r).len(), 2, "{r:?}");
    assert_eq!(int(&r, "incomplete"), 3);
    s.shutdown();
}

#[test]
fn dict_form_lists_ip_and_port() {
    let s = start(config());
    let h = [3u8; 20];
    get(v4(&s), &announce(&h, 3001, 100, ""));
    get(v6(&s), &announce(&h, 3002, 100, ""));
    let r = get(v4(&s), &announce(&h, 3003, 100, "&compact=0")).bencode();
    let Some(Value::List(peers)) = field(&r, "peers") else {
        panic!("no peer list: {r:?}")
    };
    let mut got: Vec<(String, i64)> = peers
        .iter()
        .map(|p| {
            (
                String::from_utf8_lossy(bytes(p, "ip")).into_owned(),
                int(p, "port"),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![("127.0.0.1".to_string(), 3001), ("::1".to_string(), 3002)]
    );
    s.shutdown();
}

#[test]
fn seeders_get_only_leechers() {
    let s = start(config());
    let h = [4u8; 20];
    for port in 4001..4004 {
        get(v4(&s), &announce(&h, port, 0, ""));
    }
    get(v4(&s), &announce(&h, 4010, 5, ""));
    let r = get(v4(&s), &announce(&h, 4004, 0, "")).bencode();
    assert_eq!(
        peers4(&r),
        vec![(LOCAL4, 4010)],
        "a seeder was handed seeders"
    );
    assert_eq!((int(&r, "complete"), int(&r, "incomplete")), (4, 1));
    let r = get(v4(&s), &announce(&h, 4011, 5, "")).bencode();
    assert_eq!(peers4(&r).len(), 5, "a leecher gets seeders and leechers");
    s.shutdown();
}

#[test]
fn stopped_removes_the_peer_and_returns_no_peers() {
    let s = start(config());
    let h = [5u8; 20];
    get(v4(&s), &announce(&h, 5001, 100, ""));
    get(v4(&s), &announce(&h, 5002, 100, ""));
    let r = get(v4(&s), &announce(&h, 5002, 100, "&event=stopped")).bencode();
    assert!(peers4(&r).is_empty());
    assert_eq!(int(&r, "incomplete"), 1);
    let r = get(v4(&s), &announce(&h, 5003, 100, "")).bencode();
    assert_eq!(peers4(&r), vec![(LOCAL4, 5001)]);
    s.shutdown();
}

#[test]
fn completed_counts_once_per_peer() {
    let s = start(config());
    let h = [6u8; 20];
    get(v4(&s), &announce(&h, 6001, 100, "&event=started"));
    get(v4(&s), &announce(&h, 6001, 0, "&event=completed"));
    get(v4(&s), &announce(&h, 6001, 0, "&event=completed"));
    get(v4(&s), &announce(&h, 6002, 0, "&event=completed"));
    let r = get(v4(&s), &announce(&h, 6003, 10, "&event=paused")).bencode();
    assert_eq!(int(&r, "downloaded"), 2);
    assert_eq!((int(&r, "complete"), int(&r, "incomplete")), (2, 1));
    s.shutdown();
}

#[test]
fn numwant_default_and_cap() {
    let mut c = config();
    c.numwant_default = 7;
    c.numwant_max = 12;
    let s = start(c);
    let h = [7u8; 20];
    for port in 7001..7031 {
        get(v4(&s), &announce(&h, port, 100, ""));
    }
    let count = |extra: &str| peers4(&get(v4(&s), &announce(&h, 7100, 100, extra)).bencode()).len();
    assert_eq!(count(""), 7);
    assert_eq!(count("&numwant=3"), 3);
    assert_eq!(count("&numwant=0"), 0);
    assert_eq!(count("&numwant=500"), 12);
    assert_eq!(count("&numwant=-1"), 7);
    let r = get(v4(&s), &announce(&h, 7100, 100, "&numwant=12")).bencode();
    let distinct: HashSet<_> = peers4(&r).into_iter().collect();
    assert_eq!(distinct.len(), 12, "repeats in a sample");
    assert!(!distinct.contains(&(LOCAL4, 7100)), "announcer got itself");
    s.shutdown();
}

#[test]
fn interval_jitter_stays_in_bounds() {
    let mut c = config();
    c.announce_interval = Duration::from_secs(600);
    c.min_announce_interval = Duration::from_secs(300);
    c.announce_jitter = Duration::from_secs(60);
    let s = start(c);
    let mut seen = HashSet::new();
    for port in 1..40 {
        let r = get(v4(&s), &announce(&[8; 20], port, 1, "")).bencode();
        let i = int(&r, "interval");
        assert!((540..=660).contains(&i), "interval {i}");
        assert_eq!(int(&r, "min interval"), 300);
        seen.insert(i);
    }
    assert!(seen.len() > 5, "no jitter: {seen:?}");
    s.shutdown();
}

#[test]
fn expired_peers_are_reaped() {
    let mut c = config();
    c.peer_timeout = Duration::from_secs(60);
    let s = start(c);
    let h = [9u8; 20];
    get(v4(&s), &announce(&h, 9001, 100, ""));
    let stats = || get(v4(&s), "/stats").text();
    assert!(wait_until(Duration::from_secs(5), || metric(
        &stats(),
        "hayate_torrents"
    ) == Some(1)));
    s.clock().advance(Duration::from_secs(61));
    assert!(
        wait_until(Duration::from_secs(5), || metric(
            &stats(),
            "hayate_torrents"
        ) == Some(0)),
        "peer not expired: {}",
        stats()
    );
    let r = get(v4(&s), &announce(&h, 9002, 100, "")).bencode();
    assert!(peers4(&r).is_empty(), "expired peer handed out: {r:?}");
    s.shutdown();
}

#[test]
fn scrape_counts_known_and_unknown_hashes() {
    let s = start(config());
    let (a, b, unknown) = ([10u8; 20], [11u8; 20], [12u8; 20]);
    get(v4(&s), &announce(&a, 1, 0, "&event=completed"));
    get(v4(&s), &announce(&a, 2, 5, ""));
    get(v6(&s), &announce(&b, 3, 5, ""));
    let target = format!(
        "/scrape?info_hash={}&info_hash={}&info_hash={}",
        pct(&a),
        pct(&b),
        pct(&unknown)
    );
    let r = get(v6(&s), &target).bencode();
    let files = field(&r, "files").unwrap_or_else(|| panic!("no files: {r:?}"));
    let Value::Dict(files) = files else {
        panic!("files not a dict")
    };
    let counts = |h: &[u8; 20]| {
        let f = files
            .get(h.as_slice())
            .unwrap_or_else(|| panic!("hash missing"));
        (
            int(f, "complete"),
            int(f, "incomplete"),
            int(f, "downloaded"),
        )
    };
    assert_eq!(counts(&a), (1, 1, 1));
    assert_eq!(counts(&b), (0, 1, 0));
    assert_eq!(counts(&unknown), (0, 0, 0));
    s.shutdown();
}

#[test]
fn every_failure_reason() {
    let mut c = config();
    c.max_scrape_hashes = 2;
    let s = start(c);
    let h = pct(&[1; 20]);
    let id = pct(b"-HY0001-abcdefghijkl");
    let cases: &[(String, &str)] = &[
        (
            format!("/announce?peer_id={id}&port=1&left=0"),
            "missing info_hash",
        ),
        (
            format!(
                "/announce?info_hash={}&peer_id={id}&port=1&left=0",
                pct(&[1; 19])
            ),
            "invalid info_hash",
        ),
        (
            format!(
                "/announce?info_hash={}&peer_id={id}&port=1&left=0",
                pct(&[1; 21])
            ),
            "invalid info_hash",
        ),
        (
            format!("/announce?info_hash={h}&port=1&left=0"),
            "missing peer_id",
        ),
        (
            format!("/announce?info_hash={h}&peer_id=short&port=1&left=0"),
            "invalid peer_id",
        ),
        (
            format!("/announce?info_hash={h}&peer_id={id}&left=0"),
            "missing port",
        ),
        (
            format!("/announce?info_hash={h}&peer_id={id}&port=0&left=0"),
            "invalid port",
        ),
        (
            format!("/announce?info_hash={h}&peer_id={id}&port=70000&left=0"),
            "invalid port",
        ),
        (
            format!("/announce?info_hash={h}&peer_id={id}&port=1"),
            "missing left",
        ),
        (
            format!("/announce?info_hash={h}&peer_id={id}&port=1&left=lots"),
            "invalid number",
        ),
        (
            format!("/announce?info_hash={h}&peer_id={id}&port=1&left=0&uploaded=-5"),
            "invalid number",
        ),
        (
            format!("/announce?info_hash={h}&peer_id={id}&port=1&left=0&event=exploded"),
            "invalid event",
        ),
        (
            format!("/announce?info_hash=%zz{h}&peer_id={id}&port=1&left=0"),
            "malformed query",
        ),
        ("/scrape".to_string(), "full scrape is disabled"),
        (
            format!(
                "/scrape?info_hash={h}&info_hash={}&info_hash={}",
                pct(&[2; 20]),
                pct(&[3; 20])
            ),
            "too many info_hash",
        ),
    ];
    for (target, want) in cases {
        let r = get(v4(&s), target);
        assert_eq!(r.status, 200, "{target}");
        let v = r.bencode();
        let reason = failure(&v).unwrap_or_else(|| panic!("no failure for {target}: {v:?}"));
        assert!(
            reason.starts_with(want),
            "{target}: got {reason:?}, want {want:?}"
        );
        assert_eq!(int(&v, "min interval"), 900, "{target}");
    }
    let page = get(v4(&s), "/stats").text();
    assert_eq!(
        metric(&page, "hayate_failures_total{reason=\"invalid_port\"}"),
        Some(2)
    );
    assert_eq!(
        metric(&page, "hayate_failures_total{reason=\"missing_left\"}"),
        Some(1)
    );
    // Unknown parameters, binary `key` values and `+` are fine.
    let ok = get(
        v4(&s),
        &format!(
            "/announce?info_hash={h}&peer_id={id}&port=1&left=0&key=%00%FF+x&supportcrypto=1&foo"
        ),
    );
    assert_eq!(failure(&ok.bencode()), None);
    s.shutdown();
}

#[test]
fn spoofed_addresses_ignored_unless_allowed() {
    let h = [13u8; 20];
    let s = start(config());
    get(v4(&s), &announce(&h, 1, 5, "&ip=10.9.9.9&ipv6=2001:db8::9"));
    let r = get(v4(&s), &announce(&h, 2, 5, "")).bencode();
    assert_eq!(peers4(&r), vec![(LOCAL4, 1)]);
    assert!(peers6(&r).is_empty());
    s.shutdown();

    let mut c = config();
    c.allow_ip_spoofing = true;
    let s = start(c);
    get(v4(&s), &announce(&h, 1, 5, "&ip=10.9.9.9&ipv6=2001:db8::9"));
    let r = get(v4(&s), &announce(&h, 2, 5, "")).bencode();
    assert_eq!(peers4(&r), vec![([10, 9, 9, 9], 1)]);
    let db8: [u8; 16] = "2001:db8::9"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    assert_eq!(peers6(&r), vec![(db8, 1)]);
    s.shutdown();
}
