//! Query-string decoding on the HTTP hot path: `parse_announce` on a
//! typical client announce and `parse_scrape` with 10 hashes. Before
//! measuring, checks that `parse_announce` does not allocate, with a
//! counting global allocator (the benches are their own crate, outside the
//! library's `forbid(unsafe_code)`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hayate::http::query::{parse_announce, parse_scrape};

/// Counts allocations and hands them to the system allocator.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees carry over; the counter is an atomic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A libtorrent-style (qBittorrent 4.6) announce, about 250 bytes: binary
/// hash mostly escaped, every parameter a real client sends.
const ANNOUNCE: &[u8] = b"info_hash=%d8%f79%ce%c3%28%95l%9a%0f%e5%19%c0%1a%b7%aaE%f9%18%d1\
&peer_id=-qB4650-W8u~3lP!s.Qx&port=51413&uploaded=1048576&downloaded=734003200\
&left=3221225472&corrupt=0&key=8A2F1C3E&event=started&numwant=200&compact=1\
&no_peer_id=1&supportcrypto=1&redundant=0&ipv6=2001%3Adb8%3A%3A1";

/// A scrape for 10 fully escaped hashes.
fn scrape_query() -> Vec<u8> {
    let mut q = Vec::new();
    for i in 0..10u8 {
        if i > 0 {
            q.push(b'&');
        }
        q.extend_from_slice(b"info_hash=");
        for j in 0..20u8 {
            q.extend_from_slice(
                format!("%{:02X}", i.wrapping_mul(31) ^ j.wrapping_mul(7)).as_bytes(),
            );
        }
    }
    q
}

fn assert_announce_does_not_allocate() {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        let parsed = parse_announce(black_box(ANNOUNCE));
        assert!(parsed.is_ok(), "bench query must parse: {parsed:?}");
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(allocations, 0, "parse_announce allocated");
}

fn bench(c: &mut Criterion) {
    assert_announce_does_not_allocate();

    let mut group = c.benchmark_group("query");
    group.throughput(Throughput::Bytes(ANNOUNCE.len() as u64));
    group.bench_function("parse_announce", |b| {
        b.iter(|| parse_announce(black_box(ANNOUNCE)))
    });

    let scrape = scrape_query();
    let mut out = Vec::with_capacity(16);
    assert_eq!(parse_scrape(&scrape, 74, &mut out), Ok(()));
    assert_eq!(out.len(), 10, "bench scrape must hold 10 distinct hashes");
    group.throughput(Throughput::Bytes(scrape.len() as u64));
    group.bench_function("parse_scrape_10", |b| {
        b.iter(|| {
            out.clear();
            parse_scrape(black_box(&scrape), 74, &mut out)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
