//! UDP attackers (BEP 15): a flood of garbage datagrams, of connect
//! requests from many source ports, and of announces with forged
//! connection IDs; and the well-behaved UDP client.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Rng, Tally};

const PROTOCOL_ID: i64 = 0x0417_2710_1980;
/// Flood sources: 127.0.7.x, this many sockets (source ports) each.
const FLOOD_BLOCK: u8 = 7;
const SOCKETS_PER_ADDRESS: usize = 64;
/// What hayate answers a forged or expired connection ID with.
const REFUSED: &[u8] = b"invalid connection ID";

/// Datagrams per second of each kind.
#[derive(Clone, Copy, Debug)]
pub struct Rates {
    pub garbage: usize,
    pub connect: usize,
    pub forged: usize,
}

fn header(connection_id: i64, action: i32, transaction_id: i32) -> Vec<u8> {
    let mut d = connection_id.to_be_bytes().to_vec();
    d.extend_from_slice(&action.to_be_bytes());
    d.extend_from_slice(&transaction_id.to_be_bytes());
    d
}

/// A connect request.
pub fn connect_request(transaction_id: i32) -> Vec<u8> {
    header(PROTOCOL_ID, 0, transaction_id)
}

/// A 98-byte announce.
pub fn announce_request(
    connection_id: i64,
    transaction_id: i32,
    info_hash: [u8; 20],
    peer_id: [u8; 20],
    event: i32,
    port: u16,
) -> Vec<u8> {
    let mut d = header(connection_id, 1, transaction_id);
    d.extend_from_slice(&info_hash);
    d.extend_from_slice(&peer_id);
    d.extend_from_slice(&[0; 8]); // downloaded
    d.extend_from_slice(&1000u64.to_be_bytes()); // left
    d.extend_from_slice(&[0; 8]); // uploaded
    d.extend_from_slice(&event.to_be_bytes());
    d.extend_from_slice(&[0; 4]); // ip: the sender's
    d.extend_from_slice(&[0; 4]); // key
    d.extend_from_slice(&(-1i32).to_be_bytes()); // num_want: default
    d.extend_from_slice(&port.to_be_bytes());
    d
}

/// A datagram that is no request, and the `cause` label hayate must count
/// it under (`hayate_udp_invalid_total`). Never answered.
pub fn garbage(rng: &mut Rng) -> (Vec<u8>, &'static str) {
    let id = rng.next() as i64;
    let tx = rng.next() as i32;
    match rng.below(6) {
        0 => (rng.noise(0, 15), "short"),
        1 => {
            // An announce cut short.
            let mut d = header(id, 1, tx);
            d.extend(rng.noise(0, 98 - 16 - 1));
            (d, "short")
        }
        2 => {
            let action = loop {
                let a = rng.next() as i32;
                if !(0..=2).contains(&a) {
                    break a;
                }
            };
            let mut d = header(id, action, tx);
            d.extend(rng.noise(0, 199));
            (d, "unknown_action")
        }
        3 => {
            // A connect without the magic.
            let id = if id == PROTOCOL_ID { id + 1 } else { id };
            let mut d = header(id, 0, tx);
            d.extend(rng.noise(0, 199));
            (d, "bad_protocol_id")
        }
        4 => {
            // BEP 41 URL data whose length overruns the datagram.
            let mut d = header(id, 1, tx);
            d.extend(rng.bytes(98 - 16));
            d.extend_from_slice(&[2, 255]);
            d.extend(rng.noise(0, 99));
            (d, "bad_options")
        }
        _ => {
            // A scrape whose hash list is not whole hashes.
            let mut d = header(id, 2, tx);
            let n = 20 * rng.below(5) + rng.range(1, 19);
            d.extend(rng.bytes(n));
            (d, "bad_length")
        }
    }
}

/// Floods `target` for `over` at `rates`, round-robin from `sockets`
/// sockets (source ports) on 127.0.7.x, draining the replies as it goes.
/// Tally: `udp_garbage_sent_CAUSE`, `udp_connect_sent`, `udp_forged_sent`,
/// and the replies: `udp_connect_replies`, `udp_forged_refused_replies`,
/// `udp_other_replies` (must stay 0: garbage gets no answer).
pub fn flood(
    target: SocketAddr,
    sockets: usize,
    rates: Rates,
    over: Duration,
    mut rng: Rng,
    stop: &AtomicBool,
) -> Tally {
    let mut t = Tally::default();
    let socks: Vec<UdpSocket> = (0..sockets)
        .filter_map(|i| {
            let ip = [127, 0, FLOOD_BLOCK, 1 + (i / SOCKETS_PER_ADDRESS) as u8];
            let s = UdpSocket::bind((std::net::Ipv4Addr::from(ip), 0)).ok()?;
            s.set_nonblocking(true).ok()?;
            Some(s)
        })
        .collect();
    t.add("udp_flood_sockets", socks.len() as u64);
    let start = Instant::now();
    let (mut garbage_sent, mut connect_sent, mut forged_sent) = (0usize, 0usize, 0usize);
    let mut k = 0usize;
    let mut last_drain = start;
    let mut send = |d: &[u8], t: &mut Tally| {
        k += 1;
        if socks[k % socks.len()].send_to(d, target).is_err() {
            t.bump("udp_send_failed");
        }
    };
    while !stop.load(Ordering::Relaxed) && start.elapsed() < over {
        let secs = start.elapsed().as_secs_f64();
        let due = |rate: usize| (rate as f64 * secs) as usize;
        while garbage_sent < due(rates.garbage) {
            let (d, cause) = garbage(&mut rng);
            send(&d, &mut t);
            t.bump(&format!("udp_garbage_sent_{cause}"));
            garbage_sent += 1;
        }
        while connect_sent < due(rates.connect) {
            send(&connect_request(rng.next() as i32), &mut t);
            connect_sent += 1;
        }
        while forged_sent < due(rates.forged) {
            let hash = [rng.below(16) as u8; 20];
            let d = announce_request(rng.next() as i64, 7, hash, [9; 20], 2, 6881);
            send(&d, &mut t);
            forged_sent += 1;
        }
        if last_drain.elapsed() >= Duration::from_millis(100) {
            drain(&socks, &mut t);
            last_drain = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    t.add("udp_garbage_sent", garbage_sent as u64);
    t.add("udp_connect_sent", connect_sent as u64);
    t.add("udp_forged_sent", forged_sent as u64);
    // The last replies.
    std::thread::sleep(Duration::from_millis(300));
    drain(&socks, &mut t);
    t
}

fn drain(socks: &[UdpSocket], t: &mut Tally) {
    let mut buf = [0u8; 2048];
    for s in socks {
        loop {
            match s.recv_from(&mut buf) {
                Ok((16, _)) if buf[..4] == [0, 0, 0, 0] => t.bump("udp_connect_replies"),
                Ok((n, _)) if buf[..4] == [0, 0, 0, 3] && &buf[8..n] == REFUSED => {
                    t.bump("udp_forged_refused_replies")
                }
                Ok(_) => t.bump("udp_other_replies"),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => break,
            }
        }
    }
}

/// The well-behaved UDP client on 127.0.0.1: a connect, then an announce
/// every `every` (a fresh connect each minute, as BEP 15 says). Returns
/// the announce round trips, and each failure (no reply within a second,
/// or not an announce reply).
pub fn good_client(
    target: SocketAddr,
    every: Duration,
    stop: &AtomicBool,
) -> (Vec<Duration>, Vec<String>) {
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let port = sock.local_addr().map(|a| a.port()).unwrap_or(1);
    let mut tx = 0i32;
    let mut conn: Option<(i64, Instant)> = None;
    let start = Instant::now();
    let mut round = 0u32;
    while !stop.load(Ordering::Relaxed) {
        tx += 1;
        let id = match conn {
            Some((id, at)) if at.elapsed() < Duration::from_secs(60) => id,
            _ => match exchange(&sock, target, &connect_request(tx), tx) {
                Some(r) if r.len() == 16 && r[..4] == [0, 0, 0, 0] => {
                    let id = i64::from_be_bytes(r[8..16].try_into().unwrap_or([0; 8]));
                    conn = Some((id, Instant::now()));
                    tx += 1;
                    id
                }
                other => {
                    failures.push(format!("connect: {other:?}"));
                    round += 1;
                    continue;
                }
            },
        };
        let event = if round == 0 { 2 } else { 0 };
        let d = announce_request(id, tx, [8; 20], *b"-GOOD01-udp-client-1", event, port);
        let t = Instant::now();
        match exchange(&sock, target, &d, tx) {
            Some(r) if r.len() >= 20 && r[..4] == [0, 0, 0, 1] => latencies.push(t.elapsed()),
            other => failures.push(format!("announce: {other:?}")),
        }
        round += 1;
        let due = start + every * round;
        while Instant::now() < due && !stop.load(Ordering::Relaxed) {
            std::thread::sleep((due - Instant::now()).min(Duration::from_millis(20)));
        }
    }
    (latencies, failures)
}

/// Sends `d` and waits for the reply with transaction ID `tx`.
fn exchange(sock: &UdpSocket, target: SocketAddr, d: &[u8], tx: i32) -> Option<Vec<u8>> {
    sock.send_to(d, target).ok()?;
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        if n >= 8 && buf[4..8] == tx.to_be_bytes() {
            return Some(buf[..n].to_vec());
        }
    }
    None
}
