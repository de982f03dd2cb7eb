//! Issue 6: descriptor exhaustion. The binary runs under `ulimit -n 64`;
//! connections pile up until accept() fails with EMFILE. The tracker must
//! log that once (rate-limited, not once per attempt), must not spin on a
//! listener that stays readable while accept keeps failing, must keep
//! serving the connections it already has, and must accept again as soon
//! as descriptors are free.

mod common;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

/// The descriptor limit the tracker runs under.
const NOFILE: u64 = 64;

/// A request on a kept-alive connection, and its response.
fn ask(conn: &mut BufReader<TcpStream>, target: &str) -> Option<Response> {
    let req = format!("GET {target} HTTP/1.1\r\nHost: tracker\r\n\r\n");
    conn.get_mut().write_all(req.as_bytes()).ok()?;
    read_response(conn)
}

/// A new connection's announce, or None (no answer within 2 s).
fn fresh_announce(addr: SocketAddr, port: u16) -> Option<Response> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let target = announce(&[5; 20], port, 1, "");
    s.write_all(format!("GET {target} HTTP/1.1\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    read_response(&mut s)
}

fn accept_warnings(p: &Proc) -> usize {
    p.stderr
        .lock()
        .map(|l| l.iter().filter(|l| l.contains("accept:")).count())
        .unwrap_or(0)
}

#[test]
fn emfile_is_logged_once_served_through_and_recovered_from() {
    let mut p = Proc::start_nofile(
        NOFILE,
        &[
            "--http-listen",
            "127.0.0.1:0",
            "--udp-listen",
            "",
            "--workers",
            "1",
        ],
    );
    let addr = p.http[0];
    let fds0 = p.fds();
    // A keep-alive connection from before the exhaustion.
    let mut keeper = BufReader::new(TcpStream::connect(addr).unwrap());
    keeper
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let r = ask(&mut keeper, &announce(&[5; 20], 1, 1, "")).expect("keeper answered");
    assert_eq!(failure(&r.bencode()), None);

    // The hoard: connections the tracker accepts until it has no
    // descriptor left; the rest wait in the listen queue.
    let mut hoard = Vec::new();
    for i in 0..(NOFILE as usize + 40) {
        let src = [127, 0, 8, 1 + (i / 50) as u8];
        hoard.push(connect_from(src, addr).expect("connect (queued if not accepted)"));
    }
    assert!(
        wait_until(Duration::from_secs(5), || accept_warnings(&p) > 0),
        "no accept error logged; fds {}: {}",
        p.fds(),
        p.stderr_text()
    );
    let exhausted_at = Instant::now();
    let fds_full = p.fds();

    // A second of exhaustion with new connections arriving (each one a new
    // readiness edge on the listener, each accept failing): CPU time used.
    let cpu0 = p.cpu_time();
    let t0 = Instant::now();
    for i in 0..20 {
        hoard.push(connect_from([127, 0, 8, 10 + (i / 50) as u8], addr).expect("queued"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let cpu = p.cpu_time() - cpu0;
    let wall = t0.elapsed();

    // The connection it already had is still served, stats page included.
    let r = ask(&mut keeper, &announce(&[5; 20], 2, 1, "")).expect("served while exhausted");
    assert_eq!(failure(&r.bencode()), None);
    let stats = ask(&mut keeper, "/stats").expect("stats while exhausted");
    assert_eq!(stats.status, 200);

    // Two seconds on, still one line: the warning is rate-limited.
    std::thread::sleep(Duration::from_secs(2).saturating_sub(exhausted_at.elapsed()));
    let warnings = accept_warnings(&p);

    // Free the descriptors: new connections are served again.
    drop(hoard);
    let freed = Instant::now();
    let mut recovered = None;
    for port in 100.. {
        if fresh_announce(addr, port).is_some_and(|r| failure(&r.bencode()).is_none()) {
            recovered = Some(freed.elapsed());
            break;
        }
        if freed.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    drop(keeper);
    let fds_back = wait_until(Duration::from_secs(10), || p.fds() == fds0);

    println!(
        "fd exhaustion (ulimit -n {NOFILE}, 1 worker): fds idle {fds0}, exhausted {fds_full}; CPU {cpu:?} over {wall:.2?} of exhaustion with 20 new connections; accept warnings logged {warnings} in 2 s; recovered {recovered:?} after the hoard closed; fds back to {}",
        p.fds()
    );
    for line in p.stderr_text().lines().filter(|l| l.contains("accept:")) {
        println!("  {line}");
    }
    assert!(
        matches!(p.child.try_wait(), Ok(None)),
        "tracker died: {}",
        p.stderr_text()
    );
    assert_eq!(warnings, 1, "{}", p.stderr_text());
    // A spinning worker would burn the whole second (measured: see the
    // note on ACCEPT_RETRY in src/http/server.rs).
    assert!(
        cpu < wall / 10,
        "CPU {cpu:?} over {wall:?}: the worker spins"
    );
    assert!(
        recovered.is_some(),
        "not accepting after descriptors were freed"
    );
    assert!(fds_back, "fds {} after, {fds0} idle", p.fds());
}
