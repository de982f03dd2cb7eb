//! The binary itself: startup log, SIGTERM/SIGINT shutdown (exit 0 within
//! 5 s, replies in flight delivered), startup errors (exit non-zero with a
//! one-line cause).

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn sigterm_finishes_in_flight_and_exits_zero() {
    let mut p = Proc::start(&[
        "--http-listen",
        "127.0.0.1:0, [::1]:0",
        "--udp-listen",
        "127.0.0.1:0, [::1]:0",
        "--workers",
        "2",
    ]);
    assert_eq!((p.http.len(), p.udp.len()), (2, 2), "{}", p.stderr_text());
    let r = get(p.http[1], &announce(&[1; 20], 1, 1, ""));
    assert_eq!(failure(&r.bencode()), None);
    // An idle keep-alive connection must not hold the shutdown up.
    let _idle = TcpStream::connect(p.http[0]).unwrap();
    // A request written just before the signal still gets its reply.
    let mut conn = TcpStream::connect(p.http[0]).unwrap();
    write!(
        conn,
        "GET {} HTTP/1.1\r\nHost: t\r\n\r\n",
        announce(&[1; 20], 2, 1, "")
    )
    .unwrap();
    let reply = read_response(&mut conn).expect("reply before shutdown");
    assert_eq!(reply.status, 200);
    let started = Instant::now();
    p.signal("TERM");
    let status = p
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no exit within 5 s: {}", p.stderr_text()));
    assert!(status.success(), "{status:?}: {}", p.stderr_text());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        p.stderr_text().contains("shutting down"),
        "{}",
        p.stderr_text()
    );
}

#[test]
fn sigint_also_stops() {
    let mut p = Proc::start(&[
        "--http-listen",
        "127.0.0.1:0",
        "--udp-listen",
        "",
        "--workers",
        "1",
    ]);
    p.signal("INT");
    let status = p.wait_exit(Duration::from_secs(5)).expect("exit");
    assert!(status.success());
}

#[test]
fn port_in_use_is_a_one_line_startup_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hayate"))
        .args(["--http-listen", &addr.to_string(), "--udp-listen", ""])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("bind {addr}")) && stderr.contains("in use"),
        "{stderr}"
    );
}

/// SO_REUSEPORT would let a second hayate share the port silently and split
/// the traffic; it must fail like any other "address in use" instead.
#[test]
fn a_second_instance_on_the_same_ports_refuses_to_start() {
    let free = |udp: bool| {
        if udp {
            std::net::UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        } else {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        }
    };
    let (http, udp) = (free(false).to_string(), free(true).to_string());
    let _first = Proc::start(&[
        "--http-listen",
        &http,
        "--udp-listen",
        &udp,
        "--workers",
        "2",
    ]);
    for (h, u, what) in [
        (http.as_str(), "", "bind "),
        ("127.0.0.1:0", udp.as_str(), "bind udp "),
    ] {
        let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_hayate"))
            .args(["--http-listen", h, "--udp-listen", u])
            .current_dir(std::env::temp_dir())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = second.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = second.kill();
                panic!("a second instance started on {h} / {u:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(!status.success(), "{stderr}");
        assert!(
            stderr.contains(what) && stderr.contains("in use"),
            "{stderr}"
        );
    }
}
