//! Shared by the benches that fill a store the way a public tracker looks:
//! half the torrents with one or two peers, the rest a skewed tail.
#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use hayate::core::announce::{Announce, Gauges, PeerBuf, Tracker};
use hayate::core::Event;
use hayate::rng::Rng;

/// A number from the environment, or `default`.
pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A spread-out info hash for torrent `t`.
pub fn hash(t: u64) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[..8].copy_from_slice(&t.to_le_bytes());
    h[8..16].copy_from_slice(&(t.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes());
    h
}

/// Half the torrents with one or two peers, the rest a skewed tail.
pub fn fill(tracker: &Tracker, peers: u64, torrents: u64) {
    fill_family(tracker, peers, torrents, false)
}

/// `fill` with IPv6 peers (`2001:db8::/32`) when `v6`.
pub fn fill_family(tracker: &Tracker, peers: u64, torrents: u64, v6: bool) {
    let gauges = Gauges::default();
    let mut rng = Rng::from_seed(42);
    let mut out = PeerBuf::default();
    let small = torrents / 2;
    let mut placed = 0u64;
    let mut announce = |t: u64, i: u64, rng: &mut Rng| {
        let addr4 = SocketAddrV4::new(Ipv4Addr::from(0x0100_0000 + (i as u32)), 6881);
        let ip6 = Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i) << 16 | 1);
        let addr6 = SocketAddrV6::new(ip6, 6881, 0, 0);
        let a = Announce {
            info_hash: hash(t),
            v4: (!v6).then_some(addr4),
            v6: v6.then_some(addr6),
            left: i % 2,
            event: Event::Started,
            numwant: 0,
            want_v4: !v6,
            want_v6: v6,
            local_networks: &[],
        };
        tracker.announce(&a, rng, &mut out, &gauges);
    };
    for t in 0..small {
        for _ in 0..(1 + t % 2) {
            if placed < peers {
                announce(t, placed, &mut rng);
                placed += 1;
            }
        }
    }
    let tail = torrents - small;
    for t in 0..tail {
        if placed < peers {
            announce(small + t, placed, &mut rng);
            placed += 1;
        }
    }
    while placed < peers {
        let u = rng.below(1 << 20) as f64 / f64::from(1 << 20);
        let t = small + ((u * u * u) * tail as f64) as u64;
        announce(t.min(torrents - 1), placed, &mut rng);
        placed += 1;
    }
}
