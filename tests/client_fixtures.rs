//! Real clients' requests, replayed (issue 7). Every file in
//! `tests/fixtures/clients/` holds the requests one client sent in the
//! interop suite (`make interop-capture` wrote them from hayate's debug
//! log): `GET /announce?...` lines for HTTP, `udp HEX` lines for UDP.
//! Each is sent again, in order, to a real tracker over the family the
//! file was captured on, and must get a successful reply: a change that
//! breaks a client's dialect (its key encoding, its parameter set, its BEP
//! 41 options) fails here, without the slow suite.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const PROTOCOL_ID: u64 = 0x0417_2710_1980;

/// The clients `make interop` runs; each must have left fixtures.
const CLIENTS: &[&str] = &[
    "libtorrent",
    "transmission",
    "aria2",
    "ctorrent",
    "rtorrent",
];

/// One fixture file: `CLIENT-PROTO-FAMILY.txt`.
struct Fixture {
    path: PathBuf,
    client: String,
    proto: String,
    ipv6: bool,
    requests: Vec<String>,
}

fn fixtures() -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clients");
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).expect("tests/fixtures/clients exists") {
        let path = entry.unwrap().path();
        if path.extension() != Some("txt".as_ref()) {
            continue;
        }
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let parts: Vec<&str> = stem.rsplitn(3, '-').collect();
        let [family, proto, client] = parts[..] else {
            panic!("{}: not named CLIENT-PROTO-FAMILY.txt", path.display());
        };
        assert!(
            matches!(proto, "http" | "udp") && matches!(family, "ipv4" | "ipv6"),
            "{}: not named CLIENT-(http|udp)-(ipv4|ipv6).txt",
            path.display()
        );
        let text = fs::read_to_string(&path).unwrap();
        let requests: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        assert!(!requests.is_empty(), "{}: no requests", path.display());
        out.push(Fixture {
            client: client.to_string(),
            proto: proto.to_string(),
            ipv6: family == "ipv6",
            path,
            requests,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[test]
fn every_client_left_fixtures() {
    let found: BTreeSet<String> = fixtures().into_iter().map(|f| f.client).collect();
    for client in CLIENTS {
        assert!(
            found.contains(*client),
            "no fixture of {client} in tests/fixtures/clients (found {found:?})"
        );
    }
}

#[test]
fn http_requests_of_real_clients_succeed() {
    let server = start(config());
    let mut replayed = 0;
    for f in fixtures().iter().filter(|f| f.proto == "http") {
        let addr = if f.ipv6 { v6(&server) } else { v4(&server) };
        for (i, line) in f.requests.iter().enumerate() {
            let target = line
                .strip_prefix("GET ")
                .unwrap_or_else(|| panic!("{}:{}: not a GET line", f.path.display(), i + 3));
            let r = get(addr, target);
            let at = format!("{} request {} ({target})", f.path.display(), i + 1);
            assert_eq!(r.status, 200, "{at}: {}", r.text());
            let v = r.bencode();
            assert_eq!(failure(&v), None, "{at}");
            if target.starts_with("/scrape") {
                assert!(field(&v, "files").is_some(), "{at}: no files in {v:?}");
            } else {
                assert!(int(&v, "interval") > 0, "{at}: no interval in {v:?}");
                // `peers` is always there (empty or not); `peers6` only
                // when there are IPv6 peers to hand out.
                assert!(field(&v, "peers").is_some(), "{at}: no peers in {v:?}");
            }
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no HTTP fixture");
}

/// A datagram from a `udp HEX` line.
fn datagram(f: &Fixture, i: usize, line: &str) -> Vec<u8> {
    let hex = line
        .strip_prefix("udp ")
        .unwrap_or_else(|| panic!("{}: request {}: not a udp line", f.path.display(), i + 1));
    assert!(
        hex.len().is_multiple_of(2) && hex.len() >= 32,
        "{}: request {}",
        f.path.display(),
        i + 1
    );
    (0..hex.len())
        .step_by(2)
        .map(|j| u8::from_str_radix(&hex[j..j + 2], 16).expect("hex"))
        .collect()
}

/// A fresh connection ID for `sock`'s address.
fn connect(sock: &UdpSocket, server: SocketAddr) -> [u8; 8] {
    let mut req = PROTOCOL_ID.to_be_bytes().to_vec();
    req.extend_from_slice(&[0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]);
    sock.send_to(&req, server).unwrap();
    let mut buf = [0u8; 64];
    let n = sock.recv(&mut buf).expect("connect reply");
    assert_eq!(
        &buf[..8],
        &[0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78][..],
        "{n} bytes"
    );
    buf[8..16].try_into().unwrap()
}

#[test]
fn udp_datagrams_of_real_clients_succeed() {
    let server = start(config());
    let mut replayed = 0;
    for f in fixtures().iter().filter(|f| f.proto == "udp") {
        let (target, bind) = if f.ipv6 {
            (u6(&server), "[::1]:0")
        } else {
            (u4(&server), "127.0.0.1:0")
        };
        let sock = UdpSocket::bind(bind).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        for (i, line) in f.requests.iter().enumerate() {
            let mut d = datagram(f, i, line);
            let at = format!("{} request {}", f.path.display(), i + 1);
            let action = u32::from_be_bytes(d[8..12].try_into().unwrap());
            if action != 0 {
                // The client's connection ID was for its own address and
                // has long expired: the replay gets one of its own.
                let id = connect(&sock, target);
                d[..8].copy_from_slice(&id);
            } else {
                assert_eq!(
                    u64::from_be_bytes(d[..8].try_into().unwrap()),
                    PROTOCOL_ID,
                    "{at}"
                );
            }
            sock.send_to(&d, target).unwrap();
            let mut buf = vec![0u8; 2048];
            let n = sock
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("{at}: no reply: {e}"));
            let reply = &buf[..n];
            assert!(n >= 8, "{at}: {n}-byte reply");
            let got = u32::from_be_bytes(reply[..4].try_into().unwrap());
            assert_eq!(
                got,
                action,
                "{at}: reply action {got} (3 = error: {:?})",
                String::from_utf8_lossy(&reply[8..])
            );
            assert_eq!(reply[4..8], d[12..16], "{at}: transaction ID not echoed");
            let min = match action {
                0 => 16,
                1 => 20,
                _ => 8 + 12 * ((d.len() - 16) / 20),
            };
            assert!(n >= min, "{at}: {n}-byte reply to action {action}");
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no UDP fixture");
}
