//! The core announce path (store + swarm + selection) at swarm sizes 1,
//! 100 and 100k: no work proportional to the swarm, so the three should
//! cost about the same (selection of numwant = 50 dominates).

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

fn request(hash: [u8; 20], addr: SocketAddrV4, left: u64) -> Announce {
    Announce {
        info_hash: hash,
        v4: Some(addr),
        v6: None,
        left,
        event: Event::None,
        numwant: 50,
        want_v4: true,
        want_v6: true,
    }
}

fn bench_announce(c: &mut Criterion) {
    let mut group = c.benchmark_group("announce");
    for size in [1u32, 100, 100_000] {
        let tracker = Tracker::new(&Config::default(), Clock::new());
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

criterion_group!(benches, bench_announce);
criterion_main!(benches);
