//! The UDP tracker (BEP 15, BEP 41) over real sockets on 127.0.0.1 and
//! [::1]: connect → announce → peers, scrape order and counts, forged and
//! expired connection IDs, BEP 41 options, one swarm across HTTP and UDP,
//! garbage dropped without a reply, reply size caps, stats counters.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::*;

const PROTOCOL_ID: i64 = 0x0417_2710_1980;

/// A UDP tracker client on its own socket (its own source port).
struct Client {
    sock: UdpSocket,
    server: SocketAddr,
    tx: i32,
}

/// A decoded announce reply.
#[derive(Debug)]
struct AnnounceReply {
    interval: i32,
    leechers: i32,
    seeders: i32,
    peers: Vec<(Vec<u8>, u16)>,
}

impl Client {
    fn new(server: SocketAddr) -> Client {
        let bind = if server.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        };
        let sock = UdpSocket::bind(bind).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        Client {
            sock,
            server,
            tx: 0x1000,
        }
    }

    fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    /// Sends a datagram; returns the reply, or None if none came.
    fn exchange(&self, d: &[u8]) -> Option<Vec<u8>> {
        self.sock.send_to(d, self.server).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = self.sock.recv_from(&mut buf).ok()?;
        Some(buf[..n].to_vec())
    }

    fn connect(&mut self) -> i64 {
        self.tx += 1;
        let mut d = PROTOCOL_ID.to_be_bytes().to_vec();
        d.extend_from_slice(&0i32.to_be_bytes());
        d.extend_from_slice(&self.tx.to_be_bytes());
        let r = self.exchange(&d).expect("connect reply");
        assert_eq!(r.len(), 16, "{r:?}");
        assert_eq!(i32_at(&r, 0), 0);
        assert_eq!(i32_at(&r, 4), self.tx);
        i64::from_be_bytes(r[8..16].try_into().unwrap())
    }

    #[allow(clippy::too_many_arguments)]
    fn announce_raw(
        &mut self,
        conn: i64,
        hash: [u8; 20],
        left: u64,
        event: i32,
        num_want: i32,
        options: &[u8],
    ) -> Option<Vec<u8>> {
        self.tx += 1;
        let mut d = conn.to_be_bytes().to_vec();
        d.extend_from_slice(&1i32.to_be_bytes());
        d.extend_from_slice(&self.tx.to_be_bytes());
        d.extend_from_slice(&hash);
        d.extend_from_slice(b"-HY0001-udpudpudpudp");
        d.extend_from_slice(&0u64.to_be_bytes());
        d.extend_from_slice(&left.to_be_bytes());
        d.extend_from_slice(&0u64.to_be_bytes());
        d.extend_from_slice(&event.to_be_bytes());
        d.extend_from_slice(&0u32.to_be_bytes());
        d.extend_from_slice(&7u32.to_be_bytes());
        d.extend_from_slice(&num_want.to_be_bytes());
        d.extend_from_slice(&self.port().to_be_bytes());
        d.extend_from_slice(options);
        self.exchange(&d)
    }

    fn announce(&mut self, hash: [u8; 20], left: u64, num_want: i32) -> AnnounceReply {
        let conn = self.connect();
        let r = self
            .announce_raw(conn, hash, left, 2, num_want, &[])
            .expect("announce reply");
        decode_announce(&r, self.tx, self.server.is_ipv4())
    }

    fn scrape(&mut self, hashes: &[[u8; 20]]) -> Vec<u8> {
        let conn = self.connect();
        self.tx += 1;
        let mut d = conn.to_be_bytes().to_vec();
        d.extend_from_slice(&2i32.to_be_bytes());
        d.extend_from_slice(&self.tx.to_be_bytes());
        for h in hashes {
            d.extend_from_slice(h);
        }
        self.exchange(&d).expect("scrape reply")
    }
}

fn i32_at(d: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(d[at..at + 4].try_into().unwrap())
}

fn decode_announce(r: &[u8], tx: i32, v4: bool) -> AnnounceReply {
    assert_eq!(
        i32_at(r, 0),
        1,
        "not an announce reply: {:?}",
        String::from_utf8_lossy(r)
    );
    assert_eq!(i32_at(r, 4), tx);
    let width = if v4 { 6 } else { 18 };
    assert_eq!(
        (r.len() - 20) % width,
        0,
        "peer list of {} bytes",
        r.len() - 20
    );
    AnnounceReply {
        interval: i32_at(r, 8),
        leechers: i32_at(r, 12),
        seeders: i32_at(r, 16),
        peers: r[20..]
            .chunks(width)
            .map(|c| {
                (
                    c[..width - 2].to_vec(),
                    u16::from_be_bytes([c[width - 2], c[width - 1]]),
                )
            })
            .collect(),
    }
}

/// The error message of an action-3 reply.
fn error_text(r: &[u8]) -> String {
    assert_eq!(i32_at(r, 0), 3, "not an error reply: {r:?}");
    String::from_utf8_lossy(&r[8..]).into_owned()
}

#[test]
fn connect_announce_peers_ipv4_and_ipv6() {
    let s = start(config());
    for (addr, ip) in [
        (u4(&s), vec![127, 0, 0, 1]),
        (u6(&s), std::net::Ipv6Addr::LOCALHOST.octets().to_vec()),
    ] {
        let h = [addr.is_ipv4() as u8 + 40; 20];
        let mut a = Client::new(addr);
        let mut b = Client::new(addr);
        let first = a.announce(h, 10, -1);
        assert!(first.peers.is_empty());
        assert_eq!((first.leechers, first.seeders), (1, 0));
        assert_eq!(first.interval, 1800);
        let second = b.announce(h, 0, -1);
        assert_eq!(second.peers, vec![(ip.clone(), a.port())]);
        assert_eq!((second.leechers, second.seeders), (1, 1));
        // stopped removes the peer and returns none.
        let conn = b.connect();
        let r = b.announce_raw(conn, h, 0, 3, -1, &[]).unwrap();
        let stopped = decode_announce(&r, b.tx, addr.is_ipv4());
        assert!(stopped.peers.is_empty());
        assert_eq!((stopped.leechers, stopped.seeders), (1, 0));
    }
    s.shutdown();
}

#[test]
fn scrape_answers_in_request_order() {
    let s = start(config());
    let (x, y, unknown) = ([50u8; 20], [51u8; 20], [52u8; 20]);
    Client::new(u4(&s)).announce(x, 0, -1);
    Client::new(u4(&s)).announce(x, 5, -1);
    Client::new(u6(&s)).announce(y, 5, -1);
    let mut c = Client::new(u6(&s));
    let r = c.scrape(&[y, unknown, x, y]);
    assert_eq!((i32_at(&r, 0), i32_at(&r, 4)), (2, c.tx));
    let triples: Vec<(i32, i32, i32)> = r[8..]
        .chunks(12)
        .map(|e| (i32_at(e, 0), i32_at(e, 4), i32_at(e, 8)))
        .collect();
    // (seeders, completed, leechers) per hash, in request order.
    assert_eq!(triples, vec![(0, 0, 1), (0, 0, 0), (1, 0, 1), (0, 0, 1)]);
    s.shutdown();
}

#[test]
fn forged_and_expired_connection_ids_get_errors_never_announces() {
    let s = start(config());
    let h = [60u8; 20];
    let mut c = Client::new(u4(&s));
    let r = c
        .announce_raw(0x1234_5678_9abc_def0, h, 1, 2, -1, &[])
        .expect("error reply");
    assert!(error_text(&r).contains("connection ID"), "{r:?}");
    assert!(r.len() < 98, "error reply larger than the request");
    // An ID issued to another address is no good either (a v6 ID over v4).
    let mut other = Client::new(u6(&s));
    let foreign = other.connect();
    let r = c
        .announce_raw(foreign, h, 1, 2, -1, &[])
        .expect("error reply");
    error_text(&r);
    // Expired: valid now, refused after two minutes (clock moved, no sleep).
    let conn = c.connect();
    s.clock().advance(Duration::from_secs(121));
    let r = c.announce_raw(conn, h, 1, 2, -1, &[]).expect("error reply");
    assert!(error_text(&r).contains("connection ID"));
    // No amplification: the smallest request that can be refused, a scrape
    // of one hash (36 bytes) with a made-up ID, gets no more bytes back.
    let mut scrape = 0x1234_5678_9abc_def0_i64.to_be_bytes().to_vec();
    scrape.extend_from_slice(&2i32.to_be_bytes());
    scrape.extend_from_slice(&7i32.to_be_bytes());
    scrape.extend_from_slice(&h);
    c.sock.send_to(&scrape, u4(&s)).unwrap();
    let mut buf = [0u8; 512];
    let n = c.sock.recv(&mut buf).expect("error reply");
    assert_eq!((i32_at(&buf[..n], 0), i32_at(&buf[..n], 4)), (3, 7));
    assert!(
        n <= scrape.len(),
        "{n}-byte error reply to a {}-byte scrape",
        scrape.len()
    );
    // None of that put a peer in the swarm.
    let fresh = Client::new(u4(&s)).announce(h, 1, -1);
    assert_eq!((fresh.leechers, fresh.peers.len()), (1, 0));
    let page = get(v4(&s), "/stats").text();
    assert_eq!(
        metric(
            &page,
            "hayate_udp_connection_id_refused_total{reason=\"forged\"}"
        ),
        Some(3)
    );
    assert_eq!(
        metric(
            &page,
            "hayate_udp_connection_id_refused_total{reason=\"expired\"}"
        ),
        Some(1)
    );
    s.shutdown();
}

#[test]
fn bep41_options_with_and_without_url_data() {
    let s = start(config());
    let h = [70u8; 20];
    let mut c = Client::new(u4(&s));
    let cases: &[(&[u8], bool)] = &[
        (&[], true),
        (&[2, 1, b'/'], true), // libtorrent's 101-byte announce
        (
            &[
                1, 1, 2, 9, b'/', b'a', b'n', b'n', b'o', b'u', b'n', b'c', b'e', 2, 4, b'?', b'a',
                b'=', b'1', 0,
            ],
            true,
        ),
        (&[0, 0xff, 0xff], true), // bytes after EndOfOptions are ignored
        (&[2, 200, b'x'], false), // URL data running past the datagram
    ];
    for (options, answered) in cases {
        let conn = c.connect();
        let r = c.announce_raw(conn, h, 1, 0, -1, options);
        assert_eq!(r.is_some(), *answered, "options {options:?}");
        if let Some(r) = r {
            decode_announce(&r, c.tx, true);
        }
    }
    let page = get(v4(&s), "/stats").text();
    assert_eq!(
        metric(&page, "hayate_udp_invalid_total{cause=\"bad_options\"}"),
        Some(1)
    );
    s.shutdown();
}

#[test]
fn one_swarm_across_http_and_udp() {
    let s = start(config());
    let h = [80u8; 20];
    get(v4(&s), &announce(&h, 8001, 5, ""));
    let mut c = Client::new(u4(&s));
    let r = c.announce(h, 5, -1);
    assert_eq!(r.peers, vec![(vec![127, 0, 0, 1], 8001)]);
    let back = get(v6(&s), &announce(&h, 8002, 5, "")).bencode();
    assert!(
        peers4(&back).contains(&([127, 0, 0, 1], c.port())),
        "{back:?}"
    );
    assert_eq!(int(&back, "incomplete"), 3);
    s.shutdown();
}

#[test]
fn garbage_is_dropped_silently_then_good_requests_answered() {
    let s = start(config());
    let mut c = Client::new(u4(&s));
    let mut wrong_magic = 0x0417_2710_1981i64.to_be_bytes().to_vec();
    wrong_magic.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    let mut unknown_action = 5i64.to_be_bytes().to_vec();
    unknown_action.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 1]);
    let mut short_announce = 5i64.to_be_bytes().to_vec();
    short_announce.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 1, 2, 3]);
    let garbage: &[&[u8]] = &[
        b"",
        b"x",
        &[0xff; 15],
        &wrong_magic,
        &unknown_action,
        &short_announce,
        &[0; 1400],
    ];
    for g in garbage {
        assert_eq!(c.exchange(g), None, "reply to garbage {g:?}");
    }
    let r = c.announce([90; 20], 1, -1);
    assert_eq!(r.leechers, 1);
    let page = get(v4(&s), "/stats").text();
    assert_eq!(
        metric(&page, "hayate_udp_invalid_total{cause=\"short\"}"),
        Some(4)
    );
    assert_eq!(
        metric(&page, "hayate_udp_invalid_total{cause=\"bad_protocol_id\"}"),
        Some(2)
    );
    assert_eq!(
        metric(&page, "hayate_udp_invalid_total{cause=\"unknown_action\"}"),
        Some(1)
    );
    assert_eq!(
        metric(
            &page,
            "hayate_udp_requests_total{action=\"connect\",family=\"ipv4\"}"
        ),
        Some(1)
    );
    assert_eq!(
        metric(
            &page,
            "hayate_udp_requests_total{action=\"announce\",family=\"ipv4\"}"
        ),
        Some(1)
    );
    assert_eq!(
        metric(
            &page,
            "hayate_announces_total{proto=\"udp\",family=\"ipv4\"}"
        ),
        Some(1)
    );
    s.shutdown();
}

#[test]
fn reply_size_caps_and_numwant() {
    let mut c = config();
    c.numwant_max = 500;
    c.numwant_default = 30;
    c.max_scrape_hashes = 100;
    let s = start(c);
    let h = [100u8; 20];
    // 250 peers in each family, announced over HTTP with distinct ports.
    for port in 1..=250u16 {
        get(v4(&s), &announce(&h, port, 5, ""));
        get(v6(&s), &announce(&h, port, 5, ""));
    }
    let mut c4 = Client::new(u4(&s));
    let r = c4.announce(h, 5, 1000);
    assert_eq!(r.peers.len(), 200);
    assert_eq!(c4.announce(h, 5, -1).peers.len(), 30);
    assert_eq!(c4.announce(h, 5, 0).peers.len(), 0);
    assert_eq!(c4.announce(h, 5, 7).peers.len(), 7);
    let mut c6 = Client::new(u6(&s));
    let conn = c6.connect();
    let raw = c6.announce_raw(conn, h, 5, 0, 1000, &[]).unwrap();
    assert!(raw.len() <= 1208, "{} bytes", raw.len());
    assert_eq!(decode_announce(&raw, c6.tx, false).peers.len(), 66);
    // Scrape: 74 hashes answered, 75 refused with an error.
    let ok = c4.scrape(&[[1; 20]; 74]);
    assert_eq!(ok.len(), 8 + 74 * 12);
    let refused = c4.scrape(&[[1; 20]; 75]);
    assert!(error_text(&refused).contains("too many"));
    s.shutdown();
}

#[test]
fn invalid_event_gets_an_error_reply() {
    let s = start(config());
    let mut c = Client::new(u4(&s));
    let conn = c.connect();
    let r = c.announce_raw(conn, [110; 20], 1, 9, -1, &[]).unwrap();
    assert!(error_text(&r).contains("invalid event"));
    s.shutdown();
}

/// A socket whose turn ran out with datagrams still waiting leaves the
/// poll until it is drained (udp/front.rs); it must come back. After a
/// burst that outruns a turn, lone requests that arrive while the worker
/// sleeps are still answered, over IPv4 and IPv6.
#[test]
fn busy_socket_rejoins_the_poll_once_drained() {
    let mut c = config();
    c.workers = 1;
    let s = start(c);
    let busy_turns =
        || metric(&get(v4(&s), "/stats").text(), "hayate_udp_busy_turns_total").unwrap_or(0);
    for (i, addr) in [u4(&s), u6(&s)].into_iter().enumerate() {
        let before = busy_turns();
        let flood = UdpSocket::bind(if addr.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        })
        .unwrap();
        let mut connect = PROTOCOL_ID.to_be_bytes().to_vec();
        connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        let mut bursts = 0;
        while busy_turns() == before {
            assert!(bursts < 20, "{addr}: no burst of 5,000 outran a turn");
            for _ in 0..5_000 {
                let _ = flood.send_to(&connect, addr);
            }
            bursts += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut client = Client::new(addr);
        for k in 0..3u8 {
            // Long enough for the worker to drain the burst and sleep.
            std::thread::sleep(Duration::from_millis(300));
            let r = client.announce([100 + 10 * i as u8 + k; 20], 5, -1);
            assert_eq!((r.leechers, r.seeders), (1, 0), "{addr}");
        }
    }
    s.shutdown();
}
