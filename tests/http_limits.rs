//! Every HTTP limit crossed against the real server (oversized head, too
//! many headers, slow head, idle keep-alive, connection caps, bad methods
//! and bodies), each followed by a normal announce that must still work.
//! Also the HTTP/1.x connection rules: keep-alive, pipelining, 1.0 close.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

/// A normal announce still gets a normal reply.
fn still_serves(addr: SocketAddr) {
    let r = get(addr, &announce(&[0xAB; 20], 6881, 1, ""));
    assert_eq!(r.status, 200);
    assert_eq!(failure(&r.bencode()), None);
}

/// Reads until the server closes; true if it closed within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
        if start.elapsed() > within {
            return false;
        }
    }
}

#[test]
fn oversized_head_gets_431_and_close() {
    let mut c = config();
    c.http_max_request_bytes = 1024;
    let s = start(c);
    // A header line with no CRLF, well past the limit.
    let mut conn = TcpStream::connect(v4(&s)).unwrap();
    conn.write_all(b"GET /announce HTTP/1.1\r\nX-Long: ")
        .unwrap();
    let chunk = vec![b'a'; 512];
    let mut sent = 0;
    while sent < 64 * 1024 {
        if conn.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    let r = read_response(&mut conn).expect("a 431 before the close");
    assert_eq!(r.status, 431);
    assert!(closed_within(&mut conn, Duration::from_secs(5)));
    // Exactly at the limit is fine.
    let target = announce(&[1; 20], 1, 1, "");
    let pad = 1024 - format!("GET {target} HTTP/1.1\r\nX: \r\n\r\n").len();
    let exact = format!("GET {target} HTTP/1.1\r\nX: {}\r\n\r\n", "p".repeat(pad));
    assert_eq!(exact.len(), 1024);
    assert_eq!(raw(v4(&s), exact.as_bytes()).status, 200);
    still_serves(v4(&s));
    s.shutdown();
}

#[test]
fn too_many_headers_gets_431() {
    let mut c = config();
    c.http_max_headers = 4;
    let s = start(c);
    let target = announce(&[1; 20], 1, 1, "");
    let four = get_with(v4(&s), &target, &["A: 1", "B: 2"]); // + Host + Connection
    assert_eq!(four.status, 200);
    let five = get_with(v4(&s), &target, &["A: 1", "B: 2", "C: 3"]);
    assert_eq!(five.status, 431);
    still_serves(v4(&s));
    s.shutdown();
}

#[test]
fn slow_head_gets_408() {
    let mut c = config();
    c.http_request_timeout = Duration::from_millis(300);
    let s = start(c);
    let mut conn = TcpStream::connect(v6(&s)).unwrap();
    let started = Instant::now();
    conn.write_all(b"GET /announce?info_hash=").unwrap();
    let r = read_response(&mut conn).expect("408");
    assert_eq!(r.status, 408);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(closed_within(&mut conn, Duration::from_secs(2)));
    // Trickling one byte at a time does not reset the timer.
    let mut conn = TcpStream::connect(v4(&s)).unwrap();
    let started = Instant::now();
    for b in b"GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaaaaaa" {
        if conn.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(40));
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    assert!(closed_within(&mut conn, Duration::from_secs(3)));
    assert!(started.elapsed() < Duration::from_secs(3));
    still_serves(v4(&s));
    s.shutdown();
}

#[test]
fn idle_keep_alive_is_closed_and_keep_alive_works() {
    let mut c = config();
    c.http_idle_timeout = Duration::from_millis(400);
    let s = start(c);
    let mut conn = TcpStream::connect(v4(&s)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let target = announce(&[2; 20], 1, 1, "");
    for _ in 0..3 {
        write!(conn, "GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let r = read_response(&mut conn).expect("keep-alive reply");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), None);
    }
    let started = Instant::now();
    assert!(
        closed_within(&mut conn, Duration::from_secs(3)),
        "idle connection kept open"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    let page = get(v4(&s), "/stats").text();
    assert!(
        metric(&page, "hayate_http_idle_closed_total").unwrap_or(0) >= 1,
        "{page}"
    );
    still_serves(v4(&s));
    s.shutdown();
}

#[test]
fn pipelined_requests_answered_in_order_and_http10_closes() {
    let s = start(config());
    let mut conn = TcpStream::connect(v4(&s)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut batch = String::new();
    for port in 1..=5u16 {
        batch.push_str(&format!(
            "GET {} HTTP/1.1\r\nHost: t\r\n\r\n",
            announce(&[3; 20], port, 1, "")
        ));
    }
    conn.write_all(batch.as_bytes()).unwrap();
    for expected in 1..=5i64 {
        let r = read_response(&mut conn).expect("pipelined reply");
        assert_eq!(int(&r.bencode(), "incomplete"), expected);
    }
    let mut old = TcpStream::connect(v4(&s)).unwrap();
    write!(old, "GET {} HTTP/1.0\r\n\r\n", announce(&[3; 20], 9, 1, "")).unwrap();
    let r = read_response(&mut old).expect("1.0 reply");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    assert!(closed_within(&mut old, Duration::from_secs(2)));
    s.shutdown();
}

#[test]
fn zero_idle_timeout_closes_after_each_reply() {
    let mut c = config();
    c.http_idle_timeout = Duration::ZERO;
    let s = start(c);
    let mut conn = TcpStream::connect(v4(&s)).unwrap();
    write!(conn, "GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let r = read_response(&mut conn).expect("reply");
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    assert!(closed_within(&mut conn, Duration::from_secs(2)));
    s.shutdown();
}

#[test]
fn bad_requests_get_400_405_404() {
    let s = start(config());
    assert_eq!(
        raw(v4(&s), b"\x16\x03\x01\x02\x00garbage\r\n\r\n").status,
        400
    );
    assert_eq!(
        raw(v4(&s), b"POST /announce HTTP/1.1\r\nHost: t\r\n\r\n").status,
        405
    );
    let with_body = b"GET /announce HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    assert_eq!(raw(v4(&s), with_body).status, 400);
    assert_eq!(get(v4(&s), "/nope").status, 404);
    // HEAD: the GET head (with its Content-Length) and no body.
    let mut conn = TcpStream::connect(v4(&s)).unwrap();
    conn.write_all(b"HEAD / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut all = String::new();
    conn.read_to_string(&mut all).unwrap();
    assert!(all.starts_with("HTTP/1.1 200 OK\r\n"), "{all}");
    assert!(
        all.ends_with("\r\n\r\n") && all.contains("Content-Length: "),
        "{all}"
    );
    still_serves(v4(&s));
    s.shutdown();
}

#[test]
fn connection_caps_answer_503_and_recover() {
    let mut c = config();
    c.http_max_connections = 6;
    c.http_max_connections_per_ip = 4;
    let s = start(c);
    let addr = v4(&s);
    let open = |n: usize| -> Vec<TcpStream> {
        (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect()
    };
    let held = open(4);
    assert!(wait_until(Duration::from_secs(3), || {
        metric(
            &s.shared().stats.render(None),
            "hayate_http_connections_open",
        ) == Some(4)
    }));
    // The fifth from 127.0.0.1 crosses the per-address cap.
    let mut extra = TcpStream::connect(addr).unwrap();
    let r = read_response(&mut extra).expect("503 per ip");
    assert_eq!(r.status, 503);
    // Two more from another loopback address fill the total; a third crosses it.
    let from2 = |_: usize| {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(&"127.0.0.2:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        sock.connect(&addr.into()).unwrap();
        TcpStream::from(sock)
    };
    let held2: Vec<TcpStream> = (0..2).map(from2).collect();
    assert!(wait_until(Duration::from_secs(3), || {
        metric(
            &s.shared().stats.render(None),
            "hayate_http_connections_open",
        ) == Some(6)
    }));
    let mut over = from2(0);
    assert_eq!(read_response(&mut over).expect("503 total").status, 503);
    let page = s.shared().stats.render(None);
    assert_eq!(
        metric(
            &page,
            "hayate_http_connections_rejected_total{reason=\"max_connections_per_ip\"}"
        ),
        Some(1)
    );
    assert_eq!(
        metric(
            &page,
            "hayate_http_connections_rejected_total{reason=\"max_connections\"}"
        ),
        Some(1)
    );
    drop(held);
    drop(held2);
    assert!(wait_until(Duration::from_secs(3), || {
        metric(
            &s.shared().stats.render(None),
            "hayate_http_connections_open",
        ) == Some(0)
    }));
    still_serves(addr);
    s.shutdown();
}

/// Connection-per-request clients: a connection served and closed in the
/// turn that accepted it stops counting against the per-address cap at
/// once. 40 connections queued at once from one address, each with its
/// request written, against a cap of 2: all answered 200 (before the fix,
/// every connection accepted in the same turn still counted and the third
/// got 503).
#[test]
fn served_connections_stop_counting_before_the_next_accept() {
    let mut c = config();
    c.workers = 1;
    c.http_max_connections_per_ip = 2;
    let s = start(c);
    for addr in [v4(&s), v6(&s)] {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            announce(&[0xCD; 20], 6881, 1, "")
        );
        let mut conns: Vec<TcpStream> = (0..40)
            .map(|_| {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(request.as_bytes()).unwrap();
                s
            })
            .collect();
        for (i, conn) in conns.iter_mut().enumerate() {
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let r = read_response(conn).expect("a reply");
            assert_eq!(r.status, 200, "{addr} connection {i}: {}", r.text());
        }
    }
    let page = s.shared().stats.render(None);
    assert_eq!(
        metric(
            &page,
            "hayate_http_connections_rejected_total{reason=\"max_connections_per_ip\"}"
        ),
        Some(0)
    );
}

/// The listeners defer accepting until a connection's first data
/// (`sys::defer`, 1 s): a client silent for longer than that is still
/// accepted and served, over IPv4 and IPv6, and the connection counts as
/// open while it waits.
#[test]
fn silent_clients_are_accepted_after_the_defer_and_served() {
    let s = start(config());
    let mut conns: Vec<TcpStream> = [v4(&s), v6(&s)]
        .into_iter()
        .map(|a| TcpStream::connect(a).unwrap())
        .collect();
    assert!(
        wait_until(Duration::from_secs(5), || {
            metric(
                &s.shared().stats.render(None),
                "hayate_http_connections_open",
            ) == Some(2)
        }),
        "silent connections were never accepted"
    );
    for c in &mut conns {
        let target = announce(&[0xCD; 20], 6881, 1, "");
        write!(c, "GET {target} HTTP/1.0\r\nHost: t\r\n\r\n").unwrap();
        let r = read_response(c).expect("a reply");
        assert_eq!(r.status, 200);
        assert_eq!(failure(&r.bencode()), None);
    }
    s.shutdown();
}
