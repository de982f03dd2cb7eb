//! Full scrape (opt-in): every torrent, streamed slice by slice as the
//! socket drains, keys sorted as bencode requires, one per address per
//! `full_scrape_interval` (BEP 31 `retry in` beyond).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use serde_bencode::value::Value;

/// A spread of hashes: every first byte is used.
fn hash(i: u32) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = (i.wrapping_mul(2_654_435_761) >> 24) as u8;
    h[1..5].copy_from_slice(&i.to_be_bytes());
    h
}

#[test]
fn full_scrape_streams_every_torrent_sorted_and_is_rate_limited() {
    let mut c = config();
    c.full_scrape = true;
    let s = start(c);
    let torrents = 4000u32;
    // One keep-alive connection, pipelined in batches: fast in debug builds.
    let mut conn = TcpStream::connect(v4(&s)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for batch in (0..torrents).collect::<Vec<_>>().chunks(50) {
        let mut req = String::new();
        for &i in batch {
            let left = if i % 3 == 0 { 0 } else { 9 };
            req.push_str(&format!(
                "GET {} HTTP/1.1\r\nHost: t\r\n\r\n",
                announce(&hash(i), 1000 + (i % 7) as u16, left, "")
            ));
        }
        conn.write_all(req.as_bytes()).unwrap();
        for _ in batch {
            read_response(&mut conn).expect("announce reply");
        }
    }
    // The full scrape: a close-delimited body larger than socket buffers,
    // read slowly at first so the tracker must wait for the socket.
    let mut fs = TcpStream::connect(v4(&s)).unwrap();
    fs.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    fs.write_all(b"GET /scrape HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut raw = Vec::new();
    fs.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n") && head.contains("Connection: close"),
        "{head}"
    );
    let body = &raw[split..];
    let value: Value = serde_bencode::from_bytes(body).expect("bencode body");
    // serde_bencode writes dict keys sorted: same bytes back = sorted input.
    assert_eq!(
        serde_bencode::to_bytes(&value).unwrap(),
        body,
        "files not sorted"
    );
    let Some(Value::Dict(files)) = field(&value, "files") else {
        panic!("no files")
    };
    assert_eq!(files.len(), torrents as usize);
    for i in [0, 1, 2, 3, 1234, torrents - 1] {
        let f = &files[hash(i).as_slice()];
        let seeder = i % 3 == 0;
        assert_eq!(
            (int(f, "complete"), int(f, "incomplete")),
            (seeder as i64, !seeder as i64),
            "torrent {i}"
        );
    }
    // A second one from the same address within the interval is refused.
    let again = get(v4(&s), "/scrape").bencode();
    assert_eq!(
        failure(&again).as_deref(),
        Some("full scrape requested too often")
    );
    assert_eq!(field(&again, "retry in"), Some(&Value::Int(5)));
    // Another address (IPv6 loopback) may.
    let mut other = TcpStream::connect(v6(&s)).unwrap();
    other.write_all(b"GET /scrape HTTP/1.0\r\n\r\n").unwrap();
    let mut all = Vec::new();
    other.read_to_end(&mut all).unwrap();
    assert!(all.starts_with(b"HTTP/1.1 200 OK\r\n") && all.ends_with(b"ee"));
    s.shutdown();
}
