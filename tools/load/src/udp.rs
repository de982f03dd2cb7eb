//! BEP 15 over UDP: one socket per thread, many requests in flight on it.
//!
//! Requests are numbered; the transaction ID is the number and indexes a
//! fixed table of what is in flight (no allocation per request). Entries are
//! sent in number order, so timeouts are found by walking from the oldest.
//! The connection ID is kept per socket and renewed when it is older than
//! `CONNECTION_ID_AGE` or the tracker refuses it; until the new one arrives
//! the old one is still used (trackers accept them for two minutes).

use crate::plan::{Plan, Tally};
use crate::stats::Shared;
use crate::workload::{Lane, Request};
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// BEP 15: a client may use a connection ID for one minute.
const CONNECTION_ID_AGE_NS: u64 = 60_000_000_000;
/// BEP 15's connect magic.
const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// Requests tracked at once per socket (a power of two).
const TABLE: usize = 1 << 16;
/// Closed loop: how long a receive blocks before timeouts are checked.
const RECV_WAIT: Duration = Duration::from_millis(10);
/// Open loop: longest sleep between checks for replies.
const PACE_SLEEP: Duration = Duration::from_millis(1);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Free,
    Connect,
    Announce,
    Scrape,
}

#[derive(Clone, Copy)]
struct Entry {
    seq: u32,
    /// When it was due (open loop: its scheduled time): latency counts from here.
    due: u64,
    /// When it actually left: the timeout counts from here, so a stall of
    /// this process is not blamed on the tracker as timeouts.
    sent: u64,
    kind: Kind,
}

struct Driver<'a> {
    sock: UdpSocket,
    plan: &'a Plan,
    lane: Lane,
    tally: Tally,
    table: Vec<Entry>,
    /// Oldest number possibly still in flight; next number to use.
    lo: u32,
    hi: u32,
    /// Announces and scrapes in flight (connects not included).
    pending: usize,
    conn_id: Option<u64>,
    conn_at: u64,
    connecting: bool,
    lane_done: bool,
    scrape_hashes: usize,
    buf: [u8; 2048],
}

/// Runs one sending thread until the plan ends (or, in fill mode, until its
/// lane has announced every slot and every reply is in).
pub fn run(addr: SocketAddr, lane: Lane, plan: &Plan, shared: Shared, scrape_hashes: usize) {
    let local: SocketAddr = if addr.is_ipv6() {
        "[::]:0".parse().unwrap()
    } else {
        "0.0.0.0:0".parse().unwrap()
    };
    let mut tally = Tally::new(shared);
    let sock = match UdpSocket::bind(local).and_then(|s| s.connect(addr).map(|_| s)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hayate-load: udp socket to {addr}: {e}");
            tally.c.io_errors += 1;
            tally.hand_over(plan, plan.now().max(plan.warmup_ns));
            return;
        }
    };
    let open = plan.period_ns.is_some();
    let setup = if open {
        sock.set_nonblocking(true)
    } else {
        sock.set_read_timeout(Some(RECV_WAIT))
    };
    if let Err(e) = setup {
        eprintln!("hayate-load: udp socket options: {e}");
    }
    let mut d = Driver {
        sock,
        plan,
        lane,
        tally,
        table: vec![
            Entry {
                seq: 0,
                due: 0,
                sent: 0,
                kind: Kind::Free
            };
            TABLE
        ],
        lo: 0,
        hi: 0,
        pending: 0,
        conn_id: None,
        conn_at: 0,
        connecting: false,
        lane_done: false,
        scrape_hashes,
        buf: [0; 2048],
    };
    d.run();
}

/// BEP 41 option type of URL data.
const OPTION_URL_DATA: u8 = 2;
/// The URL data a private announce carries: `udp://host:port/<passkey>/announce`'s path.
const ANNOUNCE_PATH_LEN: usize = 1 + 32 + 9;

/// Encodes `req` into `b` (transaction ID left at bytes 12..16 for the
/// caller); returns its kind and length. A private announce (`passkey`)
/// ends with one BEP 41 URL-data option holding `/<passkey>/announce`
/// (the option list ends with the packet).
fn encode(b: &mut [u8; 2048], conn_id: u64, req: &Request) -> (Kind, usize) {
    b[..8].copy_from_slice(&conn_id.to_be_bytes());
    match req {
        Request::Announce {
            info_hash,
            peer_id,
            port,
            left,
            event,
            numwant,
            key,
            uploaded,
            downloaded,
            passkey,
        } => {
            b[8..12].copy_from_slice(&1u32.to_be_bytes());
            b[16..36].copy_from_slice(info_hash);
            b[36..56].copy_from_slice(peer_id);
            b[56..64].copy_from_slice(&downloaded.to_be_bytes());
            b[64..72].copy_from_slice(&left.to_be_bytes());
            b[72..80].copy_from_slice(&uploaded.to_be_bytes());
            b[80..84].copy_from_slice(&event.udp_code().to_be_bytes());
            b[84..88].copy_from_slice(&0u32.to_be_bytes());
            b[88..92].copy_from_slice(&key.to_be_bytes());
            b[92..96].copy_from_slice(&numwant.to_be_bytes());
            b[96..98].copy_from_slice(&port.to_be_bytes());
            let Some(passkey) = passkey else {
                return (Kind::Announce, 98);
            };
            b[98] = OPTION_URL_DATA;
            b[99] = ANNOUNCE_PATH_LEN as u8;
            let path = &mut b[100..100 + ANNOUNCE_PATH_LEN];
            path[0] = b'/';
            path[1..33].copy_from_slice(passkey);
            path[33..].copy_from_slice(b"/announce");
            (Kind::Announce, 100 + ANNOUNCE_PATH_LEN)
        }
        Request::Scrape(hashes) => {
            b[8..12].copy_from_slice(&2u32.to_be_bytes());
            for (i, h) in hashes.iter().enumerate() {
                b[16 + 20 * i..36 + 20 * i].copy_from_slice(h);
            }
            (Kind::Scrape, 16 + 20 * hashes.len())
        }
    }
}

impl Driver<'_> {
    fn run(&mut self) {
        let open = self.plan.period_ns.is_some();
        let mut next_due: Option<u64> = None;
        // Closed loop: set when a receive waited RECV_WAIT for nothing, so no
        // reply is waiting unread and what is still in flight may be timed
        // out. (Open loop drains the socket before timing anything out.)
        let mut idle = true;
        loop {
            let now = self.plan.now();
            if self.plan.over(now) || (self.lane_done && self.pending == 0 && !self.connecting) {
                break;
            }
            let mut got = if open { self.receive() } else { 0 };
            let now = self.plan.now();
            if open || idle {
                self.expire(now);
            }
            let stale = now.saturating_sub(self.conn_at) > CONNECTION_ID_AGE_NS;
            if !self.connecting && (self.conn_id.is_none() || stale) {
                self.send_connect(now);
            }
            if self.conn_id.is_some() {
                match self.plan.period_ns {
                    Some(period) => {
                        // Open loop: every due request goes out, stamped with
                        // its scheduled time, however late we are.
                        let due = next_due.get_or_insert(now);
                        while *due <= now && !self.lane_done {
                            let at = *due;
                            *due = (at as f64 + period) as u64;
                            self.send_request(at);
                        }
                    }
                    None => {
                        while self.pending < self.plan.concurrency && !self.lane_done {
                            self.send_request(now);
                        }
                    }
                }
            }
            got += self.receive();
            if open && got == 0 {
                let due = next_due.unwrap_or(now + PACE_SLEEP.as_nanos() as u64);
                self.plan.sleep_until(due, PACE_SLEEP);
            }
            idle = got == 0;
            self.tally.tick(self.plan, self.plan.now());
        }
        let now = self.plan.now();
        self.tally.hand_over(self.plan, now);
    }

    /// Counts requests older than the timeout, oldest first.
    fn expire(&mut self, now: u64) {
        while self.lo != self.hi {
            let e = self.table[self.lo as usize % TABLE];
            if e.kind != Kind::Free && e.seq == self.lo {
                if now.saturating_sub(e.sent) < self.plan.timeout_ns {
                    break;
                }
                self.drop_entry(self.lo, true);
            }
            self.lo = self.lo.wrapping_add(1);
        }
    }

    fn drop_entry(&mut self, seq: u32, timed_out: bool) {
        let e = &mut self.table[seq as usize % TABLE];
        match e.kind {
            Kind::Free => return,
            Kind::Connect => self.connecting = false,
            Kind::Announce | Kind::Scrape => self.pending -= 1,
        }
        e.kind = Kind::Free;
        if timed_out {
            self.tally.c.timeouts += 1;
        }
    }

    /// Takes the next number, making room by timing out the oldest request
    /// if the table is full.
    fn claim(&mut self, due: u64, kind: Kind) -> u32 {
        if self.hi.wrapping_sub(self.lo) as usize >= TABLE {
            let lo = self.lo;
            self.drop_entry(lo, true);
            self.lo = lo.wrapping_add(1);
        }
        let seq = self.hi;
        self.hi = seq.wrapping_add(1);
        let sent = self.plan.now();
        self.table[seq as usize % TABLE] = Entry {
            seq,
            due,
            sent,
            kind,
        };
        if self.plan.period_ns.is_some() {
            let lag = &mut self.tally.c.send_lag_max;
            *lag = (*lag).max(sent.saturating_sub(due));
        }
        if kind != Kind::Connect {
            self.pending += 1;
        }
        seq
    }

    fn send_connect(&mut self, now: u64) {
        let seq = self.claim(now, Kind::Connect);
        self.connecting = true;
        let mut p = [0u8; 16];
        p[..8].copy_from_slice(&PROTOCOL_ID.to_be_bytes());
        p[12..].copy_from_slice(&seq.to_be_bytes());
        if self.sock.send(&p).is_err() {
            self.tally.c.io_errors += 1;
            self.drop_entry(seq, false);
        }
    }

    fn send_request(&mut self, due: u64) {
        let Some(req) = self.lane.next() else {
            self.lane_done = true;
            return;
        };
        let conn_id = self.conn_id.unwrap_or(0);
        let (kind, len) = encode(&mut self.buf, conn_id, &req);
        let seq = self.claim(due, kind);
        self.buf[12..16].copy_from_slice(&seq.to_be_bytes());
        if self.sock.send(&self.buf[..len]).is_err() {
            self.tally.c.io_errors += 1;
            self.drop_entry(seq, false);
        }
    }

    /// Open loop: reads every reply waiting. Closed loop: waits up to
    /// `RECV_WAIT` for one reply. Returns how many datagrams were read.
    fn receive(&mut self) -> usize {
        let mut got = 0;
        let mut buf = [0u8; 2048];
        loop {
            match self.sock.recv(&mut buf) {
                Ok(n) => {
                    got += 1;
                    self.reply(&buf[..n]);
                    if self.plan.period_ns.is_none() {
                        // Closed loop: refill the window at once.
                        return got;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return got
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    // ICMP port unreachable and the like: the request it
                    // belonged to will also time out.
                    self.tally.c.io_errors += 1;
                    return got;
                }
            }
        }
    }

    fn reply(&mut self, p: &[u8]) {
        let now = self.plan.now();
        if p.len() < 8 {
            self.tally.c.bad_replies += 1;
            return;
        }
        let action = u32::from_be_bytes(p[..4].try_into().unwrap());
        let seq = u32::from_be_bytes(p[4..8].try_into().unwrap());
        let e = self.table[seq as usize % TABLE];
        if e.kind == Kind::Free || e.seq != seq {
            // A reply to a request already counted as a timeout.
            return;
        }
        self.drop_entry(seq, false);
        let c = &mut self.tally.c;
        match (action, e.kind) {
            (0, Kind::Connect) if p.len() >= 16 => {
                self.conn_id = Some(u64::from_be_bytes(p[8..16].try_into().unwrap()));
                self.conn_at = now;
                c.connects += 1;
            }
            (1, Kind::Announce) if p.len() >= 20 && (p.len() - 20) % 6 == 0 => {
                c.announces += 1;
                c.latency.record(now.saturating_sub(e.due));
            }
            (2, Kind::Scrape) if p.len() == 8 + 12 * self.scrape_hashes => {
                c.scrapes += 1;
                c.latency.record(now.saturating_sub(e.due));
            }
            (3, _) => {
                c.error_reply(&p[8..]);
                if p[8..].windows(13).any(|w| w == b"connection ID") && !self.connecting {
                    // Refused ID: get a new one before sending more.
                    self.conn_id = None;
                }
            }
            _ => c.bad_replies += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{passkey, Event};

    fn announce(passkey: Option<[u8; 32]>, uploaded: u64, downloaded: u64) -> Request<'static> {
        Request::Announce {
            info_hash: [0xAA; 20],
            peer_id: *b"-HL0001-abcdefghijkl",
            port: 6881,
            left: 7,
            event: Event::Started,
            numwant: 50,
            key: 9,
            uploaded,
            downloaded,
            passkey,
        }
    }

    #[test]
    fn public_announce_is_bep15_without_options() {
        let mut b = [0u8; 2048];
        let (kind, len) = encode(&mut b, 0x1122_3344_5566_7788, &announce(None, 0, 0));
        assert!(kind == Kind::Announce && len == 98);
        assert_eq!(b[..8], 0x1122_3344_5566_7788u64.to_be_bytes());
        assert_eq!(b[8..12], 1u32.to_be_bytes());
        assert_eq!(b[56..64], [0; 8], "downloaded");
        assert_eq!(b[64..72], 7u64.to_be_bytes(), "left");
        assert_eq!(b[72..80], [0; 8], "uploaded");
        assert_eq!(b[80..84], 2u32.to_be_bytes(), "started");
        assert_eq!(b[96..98], 6881u16.to_be_bytes());
    }

    #[test]
    fn private_announce_carries_the_passkey_as_bep41_url_data() {
        let mut b = [0u8; 2048];
        let key = passkey(0);
        let (kind, len) = encode(&mut b, 1, &announce(Some(key), 32768, 16384));
        assert!(kind == Kind::Announce);
        assert_eq!(b[56..64], 16384u64.to_be_bytes(), "downloaded");
        assert_eq!(b[72..80], 32768u64.to_be_bytes(), "uploaded");
        // Type 2 (URL data), its length, the path; the packet ends there.
        let path = b"/00000000000000000000000000000001/announce";
        assert_eq!(b[98], 2);
        assert_eq!(b[99] as usize, path.len());
        assert_eq!(&b[100..len], path);
        assert_eq!(len, 98 + 2 + 42);
    }

    #[test]
    fn scrapes_carry_no_options() {
        let mut b = [0u8; 2048];
        let hashes = [[1u8; 20], [2u8; 20]];
        let (kind, len) = encode(&mut b, 5, &Request::Scrape(&hashes));
        assert!(kind == Kind::Scrape && len == 16 + 40);
        assert_eq!(b[8..12], 2u32.to_be_bytes());
        assert_eq!(b[36..56], [2u8; 20]);
    }
}
