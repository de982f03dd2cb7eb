//! Who is asking: the socket's address, or, when the connection comes from
//! a `trusted_proxies` address, the rightmost address in `real_ip_header`
//! that is not itself a trusted proxy. Proxies append, so everything left
//! of the first untrusted hop was written by the client and is ignored.

use std::net::IpAddr;

use ipnet::IpNet;

/// Normalises v4-mapped IPv6 (`::ffff:1.2.3.4`) to IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// True when `ip` is inside one of `nets`.
pub fn is_in(nets: &[IpNet], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(&ip))
}

/// The client address for a request from `peer` carrying the values of
/// `real_ip_header` (one per header line, in order). `None` when a trusted
/// proxy sent a header we cannot use.
pub fn client_ip<'a>(
    peer: IpAddr,
    trusted: &[IpNet],
    header_values: impl DoubleEndedIterator<Item = &'a [u8]>,
) -> Option<IpAddr> {
    let peer = canonical(peer);
    if trusted.is_empty() || !is_in(trusted, peer) {
        return Some(peer);
    }
    let mut any = false;
    for value in header_values.rev() {
        let text = std::str::from_utf8(value).ok()?;
        for hop in text.rsplit(',') {
            let hop = hop.trim();
            if hop.is_empty() {
                continue;
            }
            any = true;
            let ip = canonical(parse_hop(hop)?);
            if !is_in(trusted, ip) {
                return Some(ip);
            }
        }
    }
    // Every hop was a trusted proxy (or there was no header): the nearest
    // one is the best we know.
    if any {
        None
    } else {
        Some(peer)
    }
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:80`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(sa) = hop.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0; 4]))
    }

    #[test]
    fn table() {
        let trusted: Vec<IpNet> = ["127.0.0.0/8", "10.0.0.0/8", "::1/128"]
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        // (peer, header lines, expected)
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("1.2.3.4", &["9.9.9.9"], Some("1.2.3.4")), // untrusted peer: header ignored
            ("127.0.0.1", &["9.9.9.9"], Some("9.9.9.9")),
            ("127.0.0.1", &["6.6.6.6, 9.9.9.9"], Some("9.9.9.9")), // spoofed left part ignored
            ("127.0.0.1", &["9.9.9.9, 10.1.1.1"], Some("9.9.9.9")), // trusted hop skipped
            ("127.0.0.1", &["8.8.8.8", "9.9.9.9"], Some("9.9.9.9")), // last line wins
            ("127.0.0.1", &["2001:db8::7"], Some("2001:db8::7")),
            ("127.0.0.1", &["[2001:db8::7]:443"], Some("2001:db8::7")),
            ("127.0.0.1", &["9.9.9.9:1234"], Some("9.9.9.9")),
            ("127.0.0.1", &["::ffff:9.9.9.9"], Some("9.9.9.9")),
            ("127.0.0.1", &[], Some("127.0.0.1")),
            ("127.0.0.1", &["10.0.0.1"], None),
            ("127.0.0.1", &["garbage"], None),
            ("127.0.0.1", &["garbage, 9.9.9.9"], Some("9.9.9.9")),
            ("::1", &["9.9.9.9"], Some("9.9.9.9")),
        ];
        for (peer, lines, want) in cases {
            let got = client_ip(ip(peer), &trusted, lines.iter().map(|l| l.as_bytes()));
            assert_eq!(got, want.map(ip), "peer={peer} lines={lines:?}");
        }
        assert_eq!(
            client_ip(ip("127.0.0.1"), &[], [b"9.9.9.9".as_slice()].into_iter()),
            Some(ip("127.0.0.1"))
        );
    }
}
