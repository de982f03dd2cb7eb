//! Issue 6: every attack at once against ONE tracker (the real binary, so
//! its memory, threads and descriptors are read from /proc), while a
//! well-behaved client announces every 100 ms over HTTP and over UDP:
//!
//! - one endless header line (no CRLF);
//! - idle TCP connections, slowloris connections;
//! - HTTP requests with every parameter mangled, each checked against
//!   the answer the documented rules give it (`hostile/mangle.rs`);
//! - pipelined garbage after valid requests on keep-alive connections;
//! - a UDP flood of garbage, of connects from many source ports, and of
//!   announces with forged connection IDs.
//!
//! Pass: the tracker lives; resident memory within 64 MB of idle; the
//! thread count never moves; descriptors back to idle afterwards; the good
//! client has no failure, a median under 50 ms and a p99 under 50 ms (full
//! scale; 250 ms at CI scale, see `Scale::p99_max`) on both protocols; every
//! mangled request and pipelined batch got exactly its answer; and the
//! stats page counted the attacks (failures by reason, rejected
//! connections by reason, UDP garbage by cause, forged connection IDs).
//!
//! Connection caps: the defaults (`http_max_connections` 10,000,
//! `http_max_connections_per_ip` 64) admit every attacker, because each
//! attack spreads its connections over many 127.0.x.y addresses, 50 per
//! address, as on the internet (the caps themselves are crossed in
//! `http_limits.rs`). `http_idle_timeout` is raised so the idle
//! connections are held for the whole run (its expiry is tested there too).
//!
//! CI scale by default (`make test`, about 10 s); `HAYATE_HOSTILE=full`
//! (`make hostile`) runs the full scale: a 1 GiB line, 5,000 idle, 500
//! slowloris, 10,000 mangled requests, a UDP flood of 35,000 datagrams a
//! second, for 40 s. It subsumes issue 2's mix (line + idle + slowloris).
//! `HAYATE_HOSTILE_SEED` replays a run's garbage.

mod common;
mod hostile;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hostile::{mangle, percentiles, tcp, udp, Rng, Tally};

struct Scale {
    name: &'static str,
    line_bytes: u64,
    idle: usize,
    slowloris: usize,
    slowloris_every: Duration,
    mangled: usize,
    pipelined: usize,
    udp_sockets: usize,
    udp: udp::Rates,
    run_for: Duration,
    /// The bound on the good client's p99. Full scale: issue 6's 50 ms.
    /// CI scale: 250 ms, as CI shares its 2 cores with other jobs and one
    /// stall of the whole machine (190 ms measured while a load test
    /// started beside it) is 2 of the 80 samples; a tracker that holds a
    /// worker shows up as seconds, and as failures, at either scale.
    p99_max: Duration,
}

fn scale() -> Scale {
    if std::env::var("HAYATE_HOSTILE").as_deref() == Ok("full") {
        Scale {
            name: "full",
            line_bytes: 1 << 30,
            idle: 5000,
            slowloris: 500,
            slowloris_every: Duration::from_secs(1),
            mangled: 10_000,
            pipelined: 2000,
            udp_sockets: 1024,
            udp: udp::Rates {
                garbage: 20_000,
                connect: 10_000,
                forged: 5_000,
            },
            run_for: Duration::from_secs(40),
            p99_max: Duration::from_millis(50),
        }
    } else {
        Scale {
            name: "CI",
            line_bytes: 64 << 20,
            idle: 300,
            slowloris: 50,
            slowloris_every: Duration::from_millis(200),
            mangled: 1000,
            pipelined: 100,
            udp_sockets: 64,
            udp: udp::Rates {
                garbage: 2000,
                connect: 1000,
                forged: 500,
            },
            run_for: Duration::from_secs(8),
            p99_max: Duration::from_millis(250),
        }
    }
}

/// Mangled requests come from this many threads, each on its own address.
const MANGLERS: usize = 2;
/// The good clients' period.
const EVERY: Duration = Duration::from_millis(100);

/// Every counter of the stats page, by full name with labels.
fn counters(addr: std::net::SocketAddr) -> BTreeMap<String, u64> {
    get(addr, "/stats")
        .text()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The change of each counter starting with `prefix`, non-zero ones only.
fn deltas(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    prefix: &str,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| {
            let label = k
                .split_once('"')
                .and_then(|(_, rest)| rest.split_once('"'))
                .map_or(k.as_str(), |(l, _)| l);
            (label.to_string(), v - before.get(k).copied().unwrap_or(0))
        })
        .filter(|(_, d)| *d > 0)
        .collect()
}

/// The well-behaved client's announce on a fresh connection (as most
/// clients do); `None` when no answer comes within 5 s.
fn good_announce(addr: std::net::SocketAddr, port: u16) -> Option<Response> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let target = announce(&[7; 20], port, 1, "");
    s.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: tracker\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    read_response(&mut s)
}

/// A successful announce reply.
fn announced(r: &Response) -> bool {
    serde_bencode::from_bytes::<serde_bencode::value::Value>(&r.body)
        .is_ok_and(|v| failure(&v).is_none() && field(&v, "interval").is_some())
}

/// `RcvbufErrors` of /proc/net/snmp: UDP datagrams the kernel dropped
/// because a socket's receive buffer was full, machine-wide.
fn udp_rcvbuf_errors() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// The tracker's descriptor count once the last client connection is
/// closed on its side too (two reads 50 ms apart agree).
fn settled_fds(p: &Proc) -> usize {
    let mut last = p.fds();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = p.fds();
        if now == last {
            break;
        }
        last = now;
    }
    last
}

fn show(m: &BTreeMap<String, u64>) -> String {
    let items: Vec<String> = m.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{{}}}", items.join(", "))
}

#[test]
fn issue6_every_attack_at_once_against_one_tracker() {
    let sc = scale();
    let seed = hostile::seed();
    let mut rng = Rng::new(seed);
    // This process holds every attacking socket at once.
    hostile::ensure_nofile((sc.idle + sc.slowloris + sc.udp_sockets + 256) as u64);
    // The tracker gets what contrib/hayate.service gives it.
    let nofile = hostile::nofile_limits().1.min(65_536);
    let mut p = Proc::start_nofile(
        nofile,
        &[
            "--http-listen",
            "127.0.0.1:0",
            "--udp-listen",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--http-idle-timeout",
            "10m",
        ],
    );
    let (addr, uaddr) = (p.http[0], p.udp[0]);
    // Warm up the normal paths, then take the idle baseline.
    for i in 0..20 {
        get(addr, &announce(&[9; 20], 1000 + i, 1, ""));
    }
    let warm = Arc::new(AtomicBool::new(false));
    let w = warm.clone();
    let t = std::thread::spawn(move || udp::good_client(uaddr, Duration::from_millis(10), &w));
    std::thread::sleep(Duration::from_millis(200));
    warm.store(true, Ordering::Relaxed);
    let _ = t.join();
    let before = counters(addr);
    let drops0 = udp_rcvbuf_errors();
    let fds0 = settled_fds(&p);
    let (rss0, threads0) = (p.status_field("VmRSS"), p.status_field("Threads"));

    let stop = Arc::new(AtomicBool::new(false));
    let mut attackers: Vec<std::thread::JoinHandle<(Tally, Vec<String>)>> = Vec::new();
    let spread = sc.run_for.mul_f64(0.8);
    {
        let line = sc.line_bytes;
        attackers.push(std::thread::spawn(move || {
            (tcp::header_bomb(addr, line), vec![])
        }));
    }
    {
        let (n, stop) = (sc.idle, stop.clone());
        attackers.push(std::thread::spawn(move || {
            (tcp::idle(addr, n, &stop), vec![])
        }));
    }
    {
        let (n, every, stop) = (sc.slowloris, sc.slowloris_every, stop.clone());
        attackers.push(std::thread::spawn(move || {
            (tcp::slowloris(addr, n, every, &stop), vec![])
        }));
    }
    for m in 0..MANGLERS {
        let (n, r, stop) = (sc.mangled / MANGLERS, rng.fork(), stop.clone());
        attackers.push(std::thread::spawn(move || {
            mangle::send(addr, [127, 0, 4, 1 + m as u8], n, spread, r, &stop)
        }));
    }
    {
        let (n, r, stop) = (sc.pipelined, rng.fork(), stop.clone());
        attackers.push(std::thread::spawn(move || {
            tcp::pipelined_garbage(addr, n, spread, r, &stop)
        }));
    }
    {
        let (n, rates, r, stop) = (sc.udp_sockets, sc.udp, rng.fork(), stop.clone());
        attackers.push(std::thread::spawn(move || {
            (udp::flood(uaddr, n, rates, spread, r, &stop), vec![])
        }));
    }
    let good_udp = {
        let stop = stop.clone();
        std::thread::spawn(move || udp::good_client(uaddr, EVERY, &stop))
    };

    // The well-behaved HTTP client: a fresh connection per announce.
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    let (mut rss_max, mut threads_min, mut threads_max, mut fds_max) =
        (rss0, threads0, threads0, fds0);
    let mut open_max = 0;
    let started = Instant::now();
    let mut round = 0u32;
    while started.elapsed() < sc.run_for {
        let t = Instant::now();
        let port = 20000 + (round % 1000) as u16;
        match good_announce(addr, port) {
            Some(r) if r.status == 200 && announced(&r) => latencies.push(t.elapsed()),
            Some(r) => failures.push(format!("{} {}", r.status, r.text())),
            None => failures.push(format!("no answer within 5 s ({:?})", t.elapsed())),
        }
        rss_max = rss_max.max(p.status_field("VmRSS"));
        let threads = p.status_field("Threads");
        threads_min = threads_min.min(threads);
        threads_max = threads_max.max(threads);
        fds_max = fds_max.max(p.fds());
        if round.is_multiple_of(10) {
            let page = get(addr, "/stats").text();
            open_max = open_max.max(metric(&page, "hayate_http_connections_open").unwrap_or(0));
        }
        round += 1;
        let due = started + EVERY * round;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut tally = Tally::default();
    let mut wrong = Vec::new();
    for a in attackers {
        let (t, w) = a.join().expect("attacker thread");
        tally.merge(&t);
        wrong.extend(w);
    }
    let (mut udp_latencies, udp_failures) = good_udp.join().expect("good UDP client");
    let alive = matches!(p.child.try_wait(), Ok(None));
    // Afterwards the descriptors go back to idle (the attackers' sockets
    // are closed; the tracker sees each close).
    let fds_back = wait_until(Duration::from_secs(20), || p.fds() == fds0);
    let fds_after = p.fds();
    let after = counters(addr);
    let kernel_drops = udp_rcvbuf_errors() - drops0;

    let (p50, p99, max) = percentiles(&mut latencies);
    let (u50, u99, umax) = percentiles(&mut udp_latencies);
    let growth_mb = rss_max.saturating_sub(rss0) as f64 / 1024.0;
    let failed = deltas(&before, &after, "hayate_failures_total");
    let rejected = deltas(&before, &after, "hayate_http_connections_rejected_total");
    let invalid = deltas(&before, &after, "hayate_udp_invalid_total");
    let refused = deltas(&before, &after, "hayate_udp_connection_id_refused_total");
    let udp_requests = deltas(&before, &after, "hayate_udp_requests_total");
    let dropped = deltas(&before, &after, "hayate_udp_dropped_replies_total");
    println!(
        "hostile-mix ({} scale, seed {seed}, 2 workers, {}s):",
        sc.name,
        sc.run_for.as_secs()
    );
    println!(
        "  good client: HTTP {} announces, {} failures, p50 {p50:.2?}, p99 {p99:.2?}, max {max:.2?}; UDP {} announces, {} failures, p50 {u50:.2?}, p99 {u99:.2?}, max {umax:.2?}",
        latencies.len(),
        failures.len(),
        udp_latencies.len(),
        udp_failures.len(),
    );
    println!(
        "  tracker: RSS idle {rss0} kB, max {rss_max} kB (+{growth_mb:.1} MB); threads {threads0} (min {threads_min}, max {threads_max}); fds idle {fds0}, max during {fds_max}, after {fds_after}; open HTTP connections max {open_max}"
    );
    println!(
        "  header line: {} bytes sent before cut-off, answers {}",
        tally.get("bomb_bytes_sent"),
        tally.show("bomb_answer_")
    );
    println!(
        "  idle: {} opened, {} held to the end",
        tally.get("idle_opened"),
        tally.get("idle_held_to_the_end")
    );
    println!(
        "  slowloris: {} connections ({} at a time), {} bytes trickled, cut {} times, answers {}",
        tally.get("slowloris_connections"),
        sc.slowloris,
        tally.get("slowloris_bytes"),
        tally.get("slowloris_cut"),
        tally.show("slowloris_answer_")
    );
    println!(
        "  mangled HTTP: {} sent on {} connections: valid announces {}, valid scrapes {}, failures {}, statuses {}; wrong {}, unanswered {}",
        tally.get("mangled_sent"),
        tally.get("mangled_connections"),
        tally.get("mangled_ok_announce"),
        tally.get("mangled_ok_scrape"),
        tally.show("mangled_failure_"),
        tally.show("mangled_status_"),
        tally.get("mangled_wrong"),
        tally.get("mangled_no_answer"),
    );
    println!(
        "  pipelined garbage: {} batches, {} valid requests answered of {}, garbage answered {}, closed after {}",
        tally.get("pipelined_batches"),
        tally.get("pipelined_valid_answered"),
        tally.get("pipelined_valid_sent"),
        tally.show("pipelined_answer_"),
        tally.get("pipelined_closed"),
    );
    println!(
        "  UDP from {} source ports: garbage {} sent {}, replies {}; connects {} sent, {} replies; forged-ID announces {} sent, {} error replies",
        tally.get("udp_flood_sockets"),
        tally.get("udp_garbage_sent"),
        tally.show("udp_garbage_sent_"),
        tally.get("udp_other_replies"),
        tally.get("udp_connect_sent"),
        tally.get("udp_connect_replies"),
        tally.get("udp_forged_sent"),
        tally.get("udp_forged_refused_replies"),
    );
    println!(
        "  /stats deltas: failures {}; HTTP rejected {}; UDP invalid {}; UDP connection IDs refused {}; UDP requests {}; UDP dropped replies {}",
        show(&failed),
        show(&rejected),
        show(&invalid),
        show(&refused),
        show(&udp_requests),
        show(&dropped),
    );
    println!("  kernel UDP receive-buffer drops (whole machine) during the run: {kernel_drops}");
    for w in wrong.iter().take(10) {
        println!("  WRONG: {w}");
    }

    assert!(alive, "the tracker died: {}", p.stderr_text());
    assert!(failures.is_empty(), "good HTTP client failed: {failures:?}");
    assert!(
        udp_failures.is_empty(),
        "good UDP client failed: {udp_failures:?}"
    );
    assert!(p50 < Duration::from_millis(50), "HTTP median {p50:?}");
    assert!(u50 < Duration::from_millis(50), "UDP median {u50:?}");
    assert!(p99 < sc.p99_max, "HTTP p99 {p99:?}");
    assert!(u99 < sc.p99_max, "UDP p99 {u99:?}");
    assert!(growth_mb < 64.0, "RSS grew {growth_mb:.1} MB");
    assert_eq!(
        (threads_min, threads_max),
        (threads0, threads0),
        "thread count moved"
    );
    assert!(fds_back, "descriptors: idle {fds0}, after {fds_after}");
    assert!(
        wrong.is_empty(),
        "{} wrong answers, first: {:?}",
        wrong.len(),
        wrong.first()
    );

    // Each attack ran in full and was answered as it should be.
    assert!(
        tally.get("bomb_bytes_sent") < sc.line_bytes,
        "the endless line was never cut off"
    );
    assert_eq!(tally.get("idle_opened"), sc.idle as u64);
    assert_eq!(tally.get("idle_held_to_the_end"), sc.idle as u64);
    assert!(
        open_max as usize >= sc.idle + sc.slowloris / 2,
        "connections not held: {open_max}"
    );
    assert!(
        tally.get("slowloris_answer_408") > 0,
        "no slowloris connection timed out"
    );
    assert_eq!(
        tally.get("mangled_sent"),
        (sc.mangled / MANGLERS * MANGLERS) as u64
    );
    assert_eq!(tally.get("pipelined_batches"), sc.pipelined as u64);
    assert_eq!(tally.get("udp_other_replies"), 0, "garbage was answered");

    // The stats page saw exactly that.
    for (label, _) in mangle::REASONS {
        let ours = tally.get(&format!("mangled_failure_{label}"));
        assert_eq!(
            failed.get(label).copied().unwrap_or(0),
            ours,
            "failures {{reason={label}}}"
        );
    }
    let reject = |l: &str| rejected.get(l).copied().unwrap_or(0);
    assert_eq!(
        reject("bad_request"),
        tally.get("mangled_status_400") + tally.get("pipelined_answer_400")
    );
    assert_eq!(
        reject("head_too_large"),
        tally.get("mangled_status_431") + 1
    );
    assert_eq!(
        reject("too_many_headers"),
        tally.get("pipelined_answer_431")
    );
    assert_eq!(
        reject("method_not_allowed"),
        tally.get("pipelined_answer_405")
    );
    assert!(reject("request_timeout") >= tally.get("slowloris_answer_408"));
    for (cause, sent) in tally.with_prefix("udp_garbage_sent_") {
        assert_eq!(
            invalid.get(&cause).copied().unwrap_or(0),
            sent,
            "udp invalid {{cause={cause}}}"
        );
    }
    assert_eq!(
        refused.get("forged").copied().unwrap_or(0),
        tally.get("udp_forged_sent")
    );
    assert!(udp_requests.get("connect").copied().unwrap_or(0) >= tally.get("udp_connect_sent"));
}
