//! Client addresses behind trusted and untrusted proxies, and the stats
//! page: its content (Prometheus text format) and its access control.

mod common;

use common::*;

#[test]
fn proxy_header_only_from_trusted_proxies() {
    // Untrusted: the header is ignored, the socket address counts.
    let s = start(config());
    let h = [20u8; 20];
    get_with(
        v4(&s),
        &announce(&h, 1, 5, ""),
        &["X-Forwarded-For: 203.0.113.7"],
    );
    let r = get(v4(&s), &announce(&h, 2, 5, "")).bencode();
    assert_eq!(peers4(&r), vec![([127, 0, 0, 1], 1)]);
    s.shutdown();

    // Trusted loopback proxy: the rightmost untrusted hop is the client.
    let mut c = config();
    c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    c.real_ip_header = "X-Real-Client".into();
    let s = start(c);
    let hdr = "x-real-client: 198.51.100.1, 203.0.113.7, 127.0.0.5";
    let r = get_with(v4(&s), &announce(&h, 1, 5, ""), &[hdr]).bencode();
    assert_eq!(bytes(&r, "external ip"), &[203, 0, 113, 7]);
    let r = get_with(
        v6(&s),
        &announce(&h, 2, 5, ""),
        &["X-Real-Client: 2001:db8::5"],
    )
    .bencode();
    assert_eq!(peers4(&r), vec![([203, 0, 113, 7], 1)]);
    let r = get(v4(&s), &announce(&h, 3, 5, "")).bencode();
    let db8: [u8; 16] = "2001:db8::5"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    assert_eq!(peers6(&r), vec![(db8, 2)]);
    // X-Forwarded-For is not the configured header here: ignored.
    let r = get_with(
        v4(&s),
        &announce(&h, 4, 5, ""),
        &["X-Forwarded-For: 192.0.2.1"],
    )
    .bencode();
    assert_eq!(bytes(&r, "external ip"), &[127, 0, 0, 1]);
    // A trusted proxy sending garbage gets a failure, not a guess.
    let r = get_with(
        v4(&s),
        &announce(&h, 5, 5, ""),
        &["X-Real-Client: not-an-ip"],
    )
    .bencode();
    assert!(
        failure(&r).unwrap_or_default().contains("client address"),
        "{r:?}"
    );
    s.shutdown();
}

#[test]
fn stats_page_counts_and_format() {
    let s = start(config());
    let h = [21u8; 20];
    get(v4(&s), &announce(&h, 1, 0, ""));
    get(v4(&s), &announce(&h, 2, 5, ""));
    get(v6(&s), &announce(&h, 3, 5, ""));
    get(v6(&s), &format!("/scrape?info_hash={}", pct(&h)));
    get(v4(&s), "/announce?port=1");
    let page = || get(v4(&s), "/stats");
    assert!(wait_until(std::time::Duration::from_secs(5), || {
        metric(
            &page().text(),
            "hayate_peers{kind=\"leecher\",family=\"ipv6\"}",
        ) == Some(1)
    }));
    let r = page();
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/plain"));
    let text = r.text();
    let expect = [
        ("hayate_torrents", 1),
        ("hayate_peers{kind=\"seeder\",family=\"ipv4\"}", 1),
        ("hayate_peers{kind=\"leecher\",family=\"ipv4\"}", 1),
        ("hayate_peers{kind=\"seeder\",family=\"ipv6\"}", 0),
        ("hayate_announces_total{proto=\"http\",family=\"ipv4\"}", 2),
        ("hayate_announces_total{proto=\"http\",family=\"ipv6\"}", 1),
        ("hayate_scrapes_total{proto=\"http\",family=\"ipv6\"}", 1),
        ("hayate_failures_total{reason=\"missing_info_hash\"}", 1),
    ];
    for (name, value) in expect {
        assert_eq!(metric(&text, name), Some(value), "{name} in\n{text}");
    }
    assert!(metric(&text, "hayate_resident_memory_bytes").unwrap_or(0) > 1_000_000);
    assert!(metric(&text, "hayate_http_connections_accepted_total").unwrap_or(0) >= 6);
    assert!(metric(&text, "hayate_bytes_received_total{proto=\"http\"}").unwrap_or(0) > 300);
    // The health line first (a comment); then the exposition format: HELP
    // and TYPE before each family, values numeric.
    let mut lines = text.lines();
    let health = lines.next().unwrap_or("");
    let want = format!("# hayate {} up ", env!("CARGO_PKG_VERSION"));
    assert!(health.starts_with(&want), "{health}");
    assert!(
        health.contains(" torrents, ") && health.ends_with(" errors/s"),
        "{health}"
    );
    for line in lines {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            assert!(
                rest.ends_with(" gauge") || rest.ends_with(" counter"),
                "{line}"
            );
        } else if !line.starts_with("# HELP ") {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("hayate_"), "{line}");
            value.parse::<u64>().unwrap_or_else(|_| panic!("{line}"));
        }
    }
    s.shutdown();
}

#[test]
fn stats_page_only_for_allowed_addresses() {
    let mut c = config();
    c.stats_allow = vec!["10.0.0.0/8".parse().unwrap()];
    c.stats_path = "/metrics".into();
    let s = start(c);
    assert_eq!(get(v4(&s), "/metrics").status, 404);
    assert_eq!(get(v6(&s), "/metrics").status, 404);
    assert_eq!(get(v4(&s), "/stats").status, 404);
    s.shutdown();

    let mut c = config();
    c.stats_allow = vec!["::1/128".parse().unwrap()];
    let s = start(c);
    assert_eq!(get(v4(&s), "/stats").status, 404);
    assert_eq!(get(v6(&s), "/stats").status, 200);
    s.shutdown();
}
