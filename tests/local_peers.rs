//! Local peers first (issue #4) against the real server. Every peer talks
//! to the tracker over loopback, which is a trusted proxy here, and names
//! the address it "comes from" in `X-Forwarded-For`: a swarm spread over
//! many subnets without leaving 127.0.0.1. IPv4 and IPv6, over HTTP; one
//! UDP announcer from [::1] (the UDP front passes `local_networks` too).

mod common;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use common::*;
use hayate::{Config, Server};
use ipnet::IpNet;
use serde_bencode::value::Value;

fn tracker(prefer: bool, local_networks: &[&str]) -> Server {
    let mut c: Config = config();
    c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    c.prefer_local_peers = prefer;
    c.local_networks = local_networks.iter().map(|n| n.parse().unwrap()).collect();
    start(c)
}

/// An announce (leecher, port 6881) from `ip` through the loopback proxy.
fn announce_from(s: &Server, h: &[u8; 20], ip: &str, numwant: usize) -> Value {
    let target = announce(h, 6881, 100, &format!("&numwant={numwant}"));
    let header = format!("X-Forwarded-For: {ip}");
    let r = get_with(v4(s), &target, &[&header]).bencode();
    assert_eq!(failure(&r), None, "{target} from {ip}: {r:?}");
    r
}

/// The IPv4 swarm: 3 peers in 10.1.2.0/24, 10 elsewhere in 10.1.0.0/16
/// (one /24 each), 47 elsewhere in 10.0.0.0/8.
fn ipv4_swarm(s: &Server, h: &[u8; 20]) {
    for i in 1..=3 {
        announce_from(s, h, &format!("10.1.2.{i}"), 0);
    }
    for x in 10..20 {
        announce_from(s, h, &format!("10.1.{x}.5"), 0);
    }
    for k in 0..47 {
        announce_from(s, h, &format!("10.{}.{k}.7", 2 + k % 8), 0);
    }
}

fn ips4(r: &Value) -> Vec<Ipv4Addr> {
    peers4(r)
        .into_iter()
        .map(|(ip, _)| Ipv4Addr::from(ip))
        .collect()
}

fn ips6(r: &Value) -> Vec<Ipv6Addr> {
    peers6(r)
        .into_iter()
        .map(|(ip, _)| Ipv6Addr::from(ip))
        .collect()
}

fn within(net: &str, ip: impl Into<IpAddr>) -> bool {
    net.parse::<IpNet>().unwrap().contains(&ip.into())
}

const ME4: &str = "10.1.2.200";

#[test]
fn own_subnet_comes_first_ipv4() {
    let s = tracker(true, &[]);
    let h = [40u8; 20];
    ipv4_swarm(&s, &h);
    let locals: HashSet<Ipv4Addr> = (1..=3).map(|i| Ipv4Addr::new(10, 1, 2, i)).collect();
    let mut rest = HashSet::new();
    for _ in 0..20 {
        let r = announce_from(&s, &h, ME4, 5);
        let got = ips4(&r);
        assert_eq!(got.len(), 5, "{got:?}");
        let first: HashSet<Ipv4Addr> = got[..3].iter().copied().collect();
        assert_eq!(first, locals, "{got:?}");
        assert!(
            got[3..].iter().all(|ip| !within("10.1.2.0/24", *ip)),
            "{got:?}"
        );
        rest.extend(got[3..].iter().copied());
    }
    // The other two are random over the 57 others, not a fixed pair.
    assert!(rest.len() > 10, "{rest:?}");
    s.shutdown();
}

#[test]
fn configured_local_network_comes_next_ipv4() {
    let s = tracker(true, &["10.1.0.0/16"]);
    let h = [41u8; 20];
    ipv4_swarm(&s, &h);
    let mut next = HashSet::new();
    for _ in 0..20 {
        let got = ips4(&announce_from(&s, &h, ME4, 5));
        assert!(
            got[..3].iter().all(|ip| within("10.1.2.0/24", *ip)),
            "{got:?}"
        );
        assert!(
            got[3..].iter().all(|ip| within("10.1.0.0/16", *ip)),
            "{got:?}"
        );
        next.extend(got[3..].iter().copied());
    }
    assert!(next.len() > 5, "random within the network: {next:?}");
    // numwant 20: the /24, then all ten of the /16, then seven others.
    let got = ips4(&announce_from(&s, &h, ME4, 20));
    assert_eq!(got.len(), 20);
    assert!(
        got[..3].iter().all(|ip| within("10.1.2.0/24", *ip)),
        "{got:?}"
    );
    assert!(
        got[3..13]
            .iter()
            .all(|ip| within("10.1.0.0/16", *ip) && !within("10.1.2.0/24", *ip)),
        "{got:?}"
    );
    assert!(
        got[13..].iter().all(|ip| !within("10.1.0.0/16", *ip)),
        "{got:?}"
    );
    let me: Ipv4Addr = ME4.parse().unwrap();
    assert!(!got.contains(&me), "handed itself: {got:?}");
    s.shutdown();
}

#[test]
fn no_preference_when_switched_off() {
    let s = tracker(false, &["10.1.0.0/16"]);
    let h = [42u8; 20];
    ipv4_swarm(&s, &h);
    // 60 replies of 5 out of 60 peers, 3 of them neighbours: about 15
    // neighbours in all at random (standard deviation ~4), 180 with
    // preference. Neither group keeps the front of the reply.
    let (mut near, mut leading) = (0, 0);
    for _ in 0..60 {
        let got = ips4(&announce_from(&s, &h, ME4, 5));
        near += got.iter().filter(|ip| within("10.1.2.0/24", **ip)).count();
        leading += usize::from(within("10.1.0.0/16", got[0]));
    }
    assert!(near < 45, "{near} neighbours handed out in 300");
    assert!(leading < 40, "{leading} of 60 replies led by 10.1.x.x");
    s.shutdown();
}

#[test]
fn own_slash_64_then_network_ipv6() {
    let s = tracker(true, &["2001:db8:1::/48"]);
    let h = [43u8; 20];
    for i in 1..=3 {
        announce_from(&s, &h, &format!("2001:db8:1:2::{i}"), 0);
    }
    for x in 0x10..0x18 {
        announce_from(&s, &h, &format!("2001:db8:1:{x:x}::5"), 0);
    }
    for x in 0..30 {
        announce_from(&s, &h, &format!("2001:db8:{:x}::7", 0x100 + x), 0);
    }
    for _ in 0..10 {
        let r = announce_from(&s, &h, "2001:db8:1:2::ff", 5);
        assert!(peers4(&r).is_empty());
        let got = ips6(&r);
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(
            got[..3].iter().all(|ip| within("2001:db8:1:2::/64", *ip)),
            "{got:?}"
        );
        assert!(
            got[3..]
                .iter()
                .all(|ip| within("2001:db8:1::/48", *ip) && !within("2001:db8:1:2::/64", *ip)),
            "{got:?}"
        );
    }
    s.shutdown();
}

/// connect + announce over UDP from `sock`; the peers of the reply.
fn udp_announce(sock: &UdpSocket, server: SocketAddr, h: &[u8; 20], numwant: i32) -> Vec<Ipv6Addr> {
    let exchange = |d: &[u8]| {
        sock.send_to(d, server).unwrap();
        let mut buf = [0u8; 2048];
        let (n, _) = sock.recv_from(&mut buf).expect("udp reply");
        buf[..n].to_vec()
    };
    let mut d = 0x0417_2710_1980i64.to_be_bytes().to_vec();
    d.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    let r = exchange(&d);
    let conn = &r[8..16];
    let mut d = conn.to_vec();
    d.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]); // announce, transaction 2
    d.extend_from_slice(h);
    d.extend_from_slice(&[7; 20]); // peer_id
    d.extend_from_slice(&[0; 8]); // downloaded
    d.extend_from_slice(&100u64.to_be_bytes()); // left
    d.extend_from_slice(&[0; 8]); // uploaded
    d.extend_from_slice(&[0; 4]); // event none
    d.extend_from_slice(&[0; 4]); // ip
    d.extend_from_slice(&[0; 4]); // key
    d.extend_from_slice(&numwant.to_be_bytes());
    d.extend_from_slice(&sock.local_addr().unwrap().port().to_be_bytes());
    let r = exchange(&d);
    assert_eq!(&r[..8], &[0, 0, 0, 1, 0, 0, 0, 2], "{r:?}");
    r[20..]
        .chunks(18)
        .map(|c| Ipv6Addr::from(<[u8; 16]>::try_from(&c[..16]).unwrap()))
        .collect()
}

#[test]
fn udp_announcer_gets_its_neighbours_first() {
    // [::1] is the UDP announcer; "::2" and "::3" (its /64) and "0:0:1::5"
    // (in the configured ::/32) join over HTTP, with 20 strangers.
    let s = tracker(true, &["::/32"]);
    let h = [44u8; 20];
    for ip in ["::2", "::3", "0:0:1::5"] {
        announce_from(&s, &h, ip, 0);
    }
    for x in 0..20 {
        announce_from(&s, &h, &format!("2001:db8:{:x}::7", 0x200 + x), 0);
    }
    let sock = UdpSocket::bind("[::1]:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for _ in 0..5 {
        let got = udp_announce(&sock, u6(&s), &h, 4);
        assert_eq!(got.len(), 4, "{got:?}");
        let first: HashSet<Ipv6Addr> = got[..2].iter().copied().collect();
        let want: HashSet<Ipv6Addr> = ["::2", "::3"].iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!(first, want, "{got:?}");
        assert_eq!(got[2], "0:0:1::5".parse::<Ipv6Addr>().unwrap(), "{got:?}");
        assert!(within("2001:db8::/32", got[3]), "{got:?}");
    }
    s.shutdown();
}
