//! The core announce path (store + swarm + selection) at swarm sizes 1,
//! 100 and 100k with `prefer_local_peers = false`: no work proportional to
//! the swarm, so the three should cost about the same (selection of
//! numwant = 50 dominates). Its peers sit 256 to an address, so with the
//! preference on the announcer's /24 would hold most of the swarm (the
//! local scan's worst case: 4.3 µs at 100k); `local` measures that path.
//!
//! `local`: announces with 1% of the swarm in the announcer's /24 (issue
//! #4, local peers first) at 100, 5k and 100k, preference off and on;
//! `local_net` the same with `local_networks = 10.1.0.0/16` holding
//! another 1%. Each prints how many neighbours a reply holds.

use std::net::{Ipv4Addr, SocketAddrV4};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use hayate::clock::Clock;
use hayate::core::announce::{Announce, Gauges, PeerBuf, Tracker};
use hayate::core::Event;
use hayate::rng::Rng;
use hayate::Config;

fn peer(i: u32) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::from(0x0a00_0000 + (i >> 8)),
        1024 + (i & 0xff) as u16,
    )
}

fn request(hash: [u8; 20], addr: SocketAddrV4, left: u64) -> Announce<'static> {
    Announce {
        info_hash: hash,
        v4: Some(addr),
        v6: None,
        left,
        event: Event::None,
        numwant: 50,
        want_v4: true,
        want_v6: true,
        local_networks: &[],
    }
}

fn bench_announce(c: &mut Criterion) {
    let mut group = c.benchmark_group("announce");
    let plain = Config {
        prefer_local_peers: false,
        ..Config::default()
    };
    for size in [1u32, 100, 100_000] {
        let tracker = Tracker::new(&plain, Clock::new());
        let gauges = Gauges::default();
        let hash = [7u8; 20];
        let mut rng = Rng::from_seed(1);
        let mut out = PeerBuf::default();
        for i in 0..size {
            tracker.announce(
                &request(hash, peer(i), u64::from(i % 3)),
                &mut rng,
                &mut out,
                &gauges,
            );
        }
        // A leecher already in the swarm re-announces (the common case).
        let me = request(hash, peer(size / 2), 1);
        group.bench_with_input(BenchmarkId::new("swarm_size", size), &size, |b, _| {
            b.iter(|| black_box(tracker.announce(black_box(&me), &mut rng, &mut out, &gauges)))
        });
    }
    group.finish();
}

/// The announcer of the `local` benches.
const ME: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 200), 6881);

/// Peer `i` of a `local` swarm: 1 in 100 in the announcer's 10.1.2.0/24,
/// 1 in 100 elsewhere in 10.1.0.0/16, the rest each in a /24 of its own.
fn spread_peer(i: u32) -> SocketAddrV4 {
    let j = i / 100;
    match i % 100 {
        0 => SocketAddrV4::new(
            Ipv4Addr::new(10, 1, 2, 1 + (j % 199) as u8),
            1024 + (j / 199) as u16,
        ),
        50 => SocketAddrV4::new(
            Ipv4Addr::new(10, 1, 3 + (j % 250) as u8, 1 + (j / 250 % 250) as u8),
            6881,
        ),
        _ => SocketAddrV4::new(Ipv4Addr::from(0x0b00_0007 + (i << 8)), 6881),
    }
}

fn bench_local(c: &mut Criterion) {
    let local_net = ["10.1.0.0/16".parse().unwrap()];
    let designs = [("off", false), ("on", true)];
    for (name, networks) in [("local", &[][..]), ("local_net", &local_net[..])] {
        let mut group = c.benchmark_group(name);
        for size in [100u32, 5_000, 100_000] {
            for (design, prefer) in designs {
                let config = Config {
                    prefer_local_peers: prefer,
                    ..Config::default()
                };
                let tracker = Tracker::new(&config, Clock::new());
                let gauges = Gauges::default();
                let hash = [8u8; 20];
                let mut rng = Rng::from_seed(1);
                let mut out = PeerBuf::default();
                for i in 0..size {
                    let mut a = request(hash, spread_peer(i), u64::from(i % 3));
                    a.local_networks = networks;
                    tracker.announce(&a, &mut rng, &mut out, &gauges);
                }
                let mut me = request(hash, ME, 1);
                me.local_networks = networks;
                tracker.announce(&me, &mut rng, &mut out, &gauges);
                group.bench_with_input(BenchmarkId::new(design, size), &size, |b, _| {
                    b.iter(|| {
                        black_box(tracker.announce(black_box(&me), &mut rng, &mut out, &gauges))
                    })
                });
                // What the announcer gets: /24 and /16 neighbours per reply.
                let (mut in24, mut in16) = (0, 0);
                for _ in 0..1000 {
                    tracker.announce(&me, &mut rng, &mut out, &gauges);
                    in24 += out.v4.chunks(6).filter(|c| c[..3] == [10, 1, 2]).count();
                    in16 += out.v4.chunks(6).filter(|c| c[..2] == [10, 1]).count();
                }
                eprintln!(
                    "{name}/{design}/{size}: per reply {:.1} peers in the /24, {:.1} in the /16",
                    in24 as f64 / 1000.0,
                    in16 as f64 / 1000.0,
                );
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench_announce, bench_local);
criterion_main!(benches);
