//! Issue 2's acceptance scenario against the real binary, all at once: a
//! client streaming one endless header line, many idle connections, and
//! slowloris connections trickling bytes, while a well-behaved client keeps
//! announcing. Resident memory must stay within 64 MB of idle, the thread
//! count must not move, and the good client must be answered quickly.
//!
//! CI scale by default (64 MiB line, 300 idle, 50 trickling, 6 s);
//! `HAYATE_HOSTILE=full` runs the full scale (1 GiB, 2,000 idle, 200
//! trickling at one byte a second, 30 s) and prints the figures.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

struct Scale {
    line_bytes: u64,
    idle: usize,
    trickle: usize,
    trickle_every: Duration,
    run_for: Duration,
}

fn scale() -> Scale {
    if std::env::var("HAYATE_HOSTILE").as_deref() == Ok("full") {
        Scale {
            line_bytes: 1 << 30,
            idle: 2000,
            trickle: 200,
            trickle_every: Duration::from_secs(1),
            run_for: Duration::from_secs(30),
        }
    } else {
        Scale {
            line_bytes: 64 << 20,
            idle: 300,
            trickle: 50,
            trickle_every: Duration::from_millis(200),
            run_for: Duration::from_secs(6),
        }
    }
}

/// A TCP connection from a chosen loopback source address, so the
/// per-address connection cap sees many clients, as on the internet.
fn connect_from(src: [u8; 4], to: SocketAddr) -> Option<TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    let from: SocketAddr = (std::net::Ipv4Addr::from(src), 0).into();
    sock.bind(&from.into()).ok()?;
    sock.connect(&to.into()).ok()?;
    Some(TcpStream::from(sock))
}

#[test]
fn issue2_hostile_mix_keeps_memory_threads_and_latency() {
    let sc = scale();
    let p = Proc::start(&[
        "--udp-listen",
        "",
        "--http-listen",
        "127.0.0.1:0",
        "--workers",
        "2",
        "--http-max-connections",
        "10000",
    ]);
    let addr = p.http[0];
    // Warm up the normal path, then take the idle baseline.
    for i in 0..20 {
        get(addr, &announce(&[9; 20], 1000 + i, 1, ""));
    }
    let rss0 = p.status_field("VmRSS");
    let threads0 = p.status_field("Threads");
    let stop = Arc::new(AtomicBool::new(false));
    let mut attackers = Vec::new();

    // 1. One endless header line, no CRLF.
    let line_bytes = sc.line_bytes;
    attackers.push(std::thread::spawn(move || {
        let Some(mut s) = connect_from([127, 0, 3, 1], addr) else {
            return 0;
        };
        let _ = s.write_all(b"GET /announce HTTP/1.1\r\nX-Bomb: ");
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent = 0u64;
        while sent < line_bytes {
            match s.write(&chunk) {
                Ok(n) => sent += n as u64,
                Err(_) => break, // the tracker cut us off, as it should
            }
        }
        sent
    }));
    // 2. Idle connections from many addresses.
    let idle: Vec<TcpStream> = (0..sc.idle)
        .filter_map(|i| connect_from([127, 0, 1, 1 + (i / 50) as u8], addr))
        .collect();
    // 3. Slowloris: trickle a byte at a time, reconnect when cut off.
    for i in 0..sc.trickle {
        let stop = stop.clone();
        let every = sc.trickle_every;
        attackers.push(std::thread::spawn(move || {
            let src = [127, 0, 2, 1 + (i / 50) as u8];
            let mut cut = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let Some(mut s) = connect_from(src, addr) else {
                    return cut;
                };
                for b in b"GET /announce?info_hash=".iter().cycle() {
                    if stop.load(Ordering::Relaxed) || s.write_all(&[*b]).is_err() {
                        break;
                    }
                    std::thread::sleep(every);
                }
                cut += 1;
            }
            cut
        }));
    }

    // The well-behaved client: a fresh connection per announce, every 100 ms.
    let mut latencies = Vec::new();
    let mut failures = 0;
    let (mut rss_max, mut threads_max) = (rss0, threads0);
    let started = Instant::now();
    let mut port = 20000;
    let mut open_during = 0;
    while started.elapsed() < sc.run_for {
        if port % 10 == 0 {
            let page = get(addr, "/stats").text();
            open_during =
                open_during.max(metric(&page, "hayate_http_connections_open").unwrap_or(0));
        }
        let t = Instant::now();
        let r = get(addr, &announce(&[7; 20], port, 1, ""));
        latencies.push(t.elapsed());
        if r.status != 200 || failure(&r.bencode()).is_some() {
            failures += 1;
        }
        port += 1;
        rss_max = rss_max.max(p.status_field("VmRSS"));
        threads_max = threads_max.max(p.status_field("Threads"));
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    drop(idle);
    let sent: Vec<u64> = attackers
        .into_iter()
        .map(|t| t.join().unwrap_or(0))
        .collect();

    latencies.sort();
    let pct = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    let growth_mb = rss_max.saturating_sub(rss0) as f64 / 1024.0;
    println!(
        "hostile: {} announces, failures {failures}, p50 {:?}, p99 {:?}, max {:?}; RSS idle {} kB, max {} kB (+{growth_mb:.1} MB); threads {threads0} → max {threads_max}; open connections during {open_during}; header line sent before cut-off {} bytes",
        latencies.len(),
        pct(0.5),
        pct(0.99),
        latencies[latencies.len() - 1],
        rss0,
        rss_max,
        sent[0],
    );
    assert_eq!(failures, 0);
    assert!(growth_mb < 64.0, "RSS grew {growth_mb:.1} MB");
    assert_eq!(threads_max, threads0, "thread count moved");
    assert!(
        sent[0] < sc.line_bytes,
        "the endless header line was never cut off"
    );
    assert!(
        open_during as usize >= sc.idle / 2,
        "idle connections were not held: {open_during}"
    );
    assert!(
        pct(0.5) < Duration::from_millis(50),
        "median {:?}",
        pct(0.5)
    );
    assert!(
        pct(0.99) < Duration::from_millis(250),
        "p99 {:?}",
        pct(0.99)
    );
    // Afterwards the descriptors go back down and the tracker still serves.
    assert!(wait_until(Duration::from_secs(10), || {
        metric(&get(addr, "/stats").text(), "hayate_http_connections_open") == Some(1)
    }));
    let r = get(addr, &announce(&[7; 20], 1, 1, ""));
    assert_eq!(failure(&r.bencode()), None);
}
