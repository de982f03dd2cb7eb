//! TCP attackers: one endless header line, idle connections, slowloris,
//! and pipelined garbage on keep-alive connections.

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Pace, Rng, Tally};
use crate::common::{connect_from, read_response};

/// Source addresses of each attack (127.0.BLOCK.x).
const BOMB_BLOCK: u8 = 3;
const IDLE_BLOCK: u8 = 1;
const SLOWLORIS_BLOCK: u8 = 2;
const PIPELINE_BLOCK: u8 = 6;
/// Connections per source address: under the default
/// `http_max_connections_per_ip` (64), so the per-address cap lets every
/// one in and the test measures the tracker holding them all.
pub const PER_ADDRESS: usize = 50;

fn source(block: u8, i: usize) -> [u8; 4] {
    [127, 0, block, 1 + (i / PER_ADDRESS) as u8]
}

/// One header line of `line_bytes` without CRLF. The tracker must cut it
/// off (431 at `http_max_request_bytes`) long before the end.
pub fn header_bomb(addr: SocketAddr, line_bytes: u64) -> Tally {
    let mut t = Tally::default();
    let Some(mut s) = connect_from(source(BOMB_BLOCK, 0), addr) else {
        t.bump("bomb_connect_failed");
        return t;
    };
    let _ = s.write_all(b"GET /announce HTTP/1.1\r\nX-Bomb: ");
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0u64;
    while sent < line_bytes {
        match s.write(&chunk) {
            Ok(n) => sent += n as u64,
            Err(_) => break, // cut off, as it should be
        }
    }
    t.add("bomb_bytes_sent", sent);
    t.add("bomb_cut_off", u64::from(sent < line_bytes));
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if let Some(r) = read_response(&mut s) {
        t.bump(&format!("bomb_answer_{}", r.status));
    }
    t
}

/// `n` connections that never send a byte, held until `stop`.
pub fn idle(addr: SocketAddr, n: usize, stop: &AtomicBool) -> Tally {
    let mut t = Tally::default();
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        match connect_from(source(IDLE_BLOCK, i), addr) {
            Some(s) => held.push(s),
            None => t.bump("idle_connect_failed"),
        }
    }
    t.add("idle_opened", held.len() as u64);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Still open at the end (none cut by the tracker)?
    for s in &mut held {
        let _ = s.set_nonblocking(true);
        match s.read(&mut [0; 64]) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => t.bump("idle_held_to_the_end"),
            _ => t.bump("idle_cut"),
        }
    }
    t
}

/// `n` slowloris connections, each trickling one byte every `every` of a
/// request line that never ends. Cut off connections (the tracker answers
/// 408 after `http_request_timeout`) are reopened at once.
pub fn slowloris(addr: SocketAddr, n: usize, every: Duration, stop: &AtomicBool) -> Tally {
    let mut t = Tally::default();
    const LINE: &[u8] = b"GET /announce?info_hash=";
    let open = |i: usize, t: &mut Tally| {
        let s = connect_from(source(SLOWLORIS_BLOCK, i), addr)?;
        s.set_nonblocking(true).ok()?;
        t.bump("slowloris_connections");
        Some((s, 0usize))
    };
    let mut conns: Vec<Option<(TcpStream, usize)>> = (0..n).map(|i| open(i, &mut t)).collect();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        for (i, slot) in conns.iter_mut().enumerate() {
            let cut = match slot {
                None => true,
                Some((s, pos)) => {
                    let mut buf = [0u8; 256];
                    match s.read(&mut buf) {
                        Ok(0) => true,
                        Ok(got) => {
                            let head = String::from_utf8_lossy(&buf[..got]).into_owned();
                            let status = head.split(' ').nth(1).unwrap_or("?").to_string();
                            t.bump(&format!("slowloris_answer_{status}"));
                            true
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            let byte = LINE.get(*pos).copied().unwrap_or(b'a');
                            *pos += 1;
                            match s.write(&[byte]) {
                                Ok(1) => {
                                    t.bump("slowloris_bytes");
                                    false
                                }
                                _ => true,
                            }
                        }
                        Err(_) => true,
                    }
                }
            };
            if cut {
                t.bump("slowloris_cut");
                *slot = open(i, &mut t);
            }
        }
        next += every;
        while Instant::now() < next && !stop.load(Ordering::Relaxed) {
            std::thread::sleep((next - Instant::now()).min(Duration::from_millis(50)));
        }
    }
    t
}

/// Garbage that follows valid pipelined requests, and the status the
/// tracker must answer it with (then close).
fn garbage(rng: &mut Rng) -> (Vec<u8>, u16) {
    match rng.below(9) {
        0 | 1 => {
            // Binary noise starting with a byte no method can start with
            // (not CR or LF, which HTTP lets a parser skip before a request).
            let first = *rng.pick(&[0u8, 1, 7, 0x1b, 0x7f, 0x80, 0xff, b' ', b'(', b'"']);
            let mut g = vec![first];
            g.extend(rng.noise(0, 300));
            (g, 400)
        }
        2 => (
            b"POST /announce HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
            405,
        ),
        3 => (
            b"GET /announce HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            400,
        ),
        4 => (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n".to_vec(), 400),
        5 => (b"GET / HTTP/2.0\r\n\r\n".to_vec(), 400),
        6 => {
            let mut g = b"GET / HTTP/1.1\r\n".to_vec();
            for i in 0..40 {
                g.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
            }
            g.extend_from_slice(b"\r\n");
            (g, 431)
        }
        7 => (b"GET / HTTP/1.1\r\nX-Nul: a\0b\r\n\r\n".to_vec(), 400),
        _ => (
            b"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc".to_vec(),
            400,
        ),
    }
}

/// `batches` keep-alive connections, each sending 1 to 5 valid requests
/// and then garbage in one write: every valid request must be answered,
/// in order, then the garbage with its 4xx, then the connection closed.
pub fn pipelined_garbage(
    addr: SocketAddr,
    batches: usize,
    over: Duration,
    mut rng: Rng,
    stop: &AtomicBool,
) -> (Tally, Vec<String>) {
    let mut t = Tally::default();
    let mut wrong = Vec::new();
    let pace = Pace::new(batches, over);
    for b in 0..batches {
        if !pace.wait(b, stop) {
            break;
        }
        let Some(s) = connect_from(source(PIPELINE_BLOCK, b % 500), addr) else {
            t.bump("pipelined_connect_failed");
            continue;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let valid = rng.range(1, 5);
        let mut batch = Vec::new();
        for v in 0..valid {
            let target = if v % 2 == 0 {
                let hash = [rng.below(16) as u8; 20];
                crate::common::announce(&hash, 1 + rng.below(60000) as u16, 1, "")
            } else {
                format!("/scrape?info_hash={}", crate::common::pct(&[3; 20]))
            };
            batch.extend_from_slice(format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        }
        let (junk, want) = garbage(&mut rng);
        batch.extend_from_slice(&junk);
        t.bump("pipelined_batches");
        t.add("pipelined_valid_sent", valid as u64);
        let mut w = &s;
        if w.write_all(&batch).is_err() {
            t.bump("pipelined_write_failed");
            continue;
        }
        let mut r = BufReader::new(&s);
        let mut ok = true;
        for _ in 0..valid {
            match read_response(&mut r) {
                Some(resp) if resp.status == 200 => t.bump("pipelined_valid_answered"),
                other => {
                    ok = false;
                    wrong.push(format!(
                        "pipelined: valid request got {:?}",
                        other.map(|x| x.status)
                    ));
                }
            }
        }
        match read_response(&mut r) {
            Some(resp) if resp.status == want => t.bump(&format!("pipelined_answer_{want}")),
            other => {
                ok = false;
                wrong.push(format!(
                    "pipelined: garbage {:?} got {:?}, want {want}",
                    String::from_utf8_lossy(&junk[..junk.len().min(60)]),
                    other.map(|x| x.status)
                ));
            }
        }
        // And then the tracker closes.
        match r.read(&mut [0; 16]) {
            Ok(0) => t.bump("pipelined_closed"),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => t.bump("pipelined_closed"),
            other => {
                ok = false;
                wrong.push(format!("pipelined: not closed after garbage: {other:?}"));
            }
        }
        if !ok {
            t.bump("pipelined_wrong");
        }
    }
    (t, wrong)
}
