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
        let b = &mut self.buf;
        b[..8].copy_from_slice(&conn_id.to_be_bytes());
        let (kind, len) = match req {
            Request::Announce {
                info_hash,
                peer_id,
                port,
                left,
                event,
                numwant,
                key,
            } => {
                b[8..12].copy_from_slice(&1u32.to_be_bytes());
                b[16..36].copy_from_slice(&info_hash);
                b[36..56].copy_from_slice(&peer_id);
                b[56..64].copy_from_slice(&0u64.to_be_bytes());
                b[64..72].copy_from_slice(&left.to_be_bytes());
                b[72..80].copy_from_slice(&0u64.to_be_bytes());
                b[80..84].copy_from_slice(&event.udp_code().to_be_bytes());
                b[84..88].copy_from_slice(&0u32.to_be_bytes());
                b[88..92].copy_from_slice(&key.to_be_bytes());
                b[92..96].copy_from_slice(&numwant.to_be_bytes());
                b[96..98].copy_from_slice(&port.to_be_bytes());
                (Kind::Announce, 98)
            }
            Request::Scrape(hashes) => {
                b[8..12].copy_from_slice(&2u32.to_be_bytes());
                for (i, h) in hashes.iter().enumerate() {
                    b[16 + 20 * i..36 + 20 * i].copy_from_slice(h);
                }
                (Kind::Scrape, 16 + 20 * hashes.len())
            }
        };
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
