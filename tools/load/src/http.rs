//! HTTP announces and scrapes. std has no readiness polling, so each
//! request in flight is its own thread (a lane) with blocking I/O: one
//! persistent HTTP/1.1 connection (`--keepalive on`) or a new connection per
//! request with `Connection: close` (`--keepalive off`). Buffers are reused;
//! nothing is allocated per request except on errors. Every TCP connection
//! opened is counted (`connects`), so a server that closes keep-alive
//! connections anyway shows as one connect per response.

use crate::plan::{Plan, Tally};
use crate::stats::{Counters, Shared};
use crate::workload::{Lane, Request};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Largest reply read (a 200-peer dict-form announce is under 20 KiB).
const MAX_REPLY: usize = 64 * 1024;

/// One lane's settings.
pub struct Conf {
    pub addr: SocketAddr,
    pub host: String,
    pub keepalive: bool,
    /// Private mode: the passkey this lane's scrapes use (announces carry
    /// their peer's own).
    pub passkey: Option<[u8; 32]>,
}

enum Outcome {
    Announce,
    Scrape,
    Failure(Vec<u8>),
    Bad,
    Timeout,
    Io,
}

/// Runs one lane until the plan ends (fill: until its slots are done).
pub fn run(conf: &Conf, mut lane: Lane, plan: &Plan, shared: Shared) {
    let mut tally = Tally::new(shared);
    let mut conn: Option<TcpStream> = None;
    let mut req = Vec::with_capacity(512);
    let mut resp = vec![0u8; MAX_REPLY];
    let mut next_due: Option<u64> = None;
    loop {
        let mut now = plan.now();
        if plan.over(now) {
            break;
        }
        let sent = match plan.period_ns {
            Some(period) => {
                let due = *next_due.get_or_insert(now);
                if due > now {
                    plan.sleep_until(due, Duration::from_millis(50));
                    continue;
                }
                next_due = Some((due as f64 + period) as u64);
                due
            }
            None => now,
        };
        let lag = &mut tally.c.send_lag_max;
        *lag = (*lag).max(now.saturating_sub(sent));
        let Some(r) = lane.next() else { break };
        let scrape = matches!(r, Request::Scrape(_));
        encode(&mut req, &r, conf);
        let c = &mut tally.c;
        let outcome = exchange(conf, &mut conn, &req, &mut resp, plan, scrape, c);
        now = plan.now();
        match outcome {
            Outcome::Announce => {
                c.announces += 1;
                c.latency.record(now.saturating_sub(sent));
            }
            Outcome::Scrape => {
                c.scrapes += 1;
                c.latency.record(now.saturating_sub(sent));
            }
            Outcome::Failure(m) => c.error_reply(&m),
            Outcome::Bad => c.bad_replies += 1,
            Outcome::Timeout => c.timeouts += 1,
            Outcome::Io => c.io_errors += 1,
        }
        tally.tick(plan, now);
    }
    tally.hand_over(plan, plan.now());
}

/// Sends one request and reads its reply, connecting first if needed (each
/// connection opened counts in `c.connects`). A reused keep-alive
/// connection that the server closed meanwhile is reconnected once, as
/// browsers do.
fn exchange(
    conf: &Conf,
    conn: &mut Option<TcpStream>,
    req: &[u8],
    resp: &mut [u8],
    plan: &Plan,
    scrape: bool,
    c: &mut Counters,
) -> Outcome {
    for attempt in 0..2 {
        let reused = conn.is_some();
        if conn.is_none() {
            let t = Duration::from_nanos(plan.timeout_ns);
            match TcpStream::connect_timeout(&conf.addr, t) {
                Ok(s) => {
                    c.connects += 1;
                    let _ = s.set_nodelay(true);
                    let _ = s.set_read_timeout(Some(t));
                    let _ = s.set_write_timeout(Some(t));
                    *conn = Some(s);
                }
                Err(e) if is_timeout(&e) => return Outcome::Timeout,
                Err(_) => return Outcome::Io,
            }
        }
        let s = conn.as_mut().unwrap();
        match s.write_all(req).and_then(|_| read_reply(s, resp)) {
            Ok((len, body, close)) => {
                if close || !conf.keepalive {
                    *conn = None;
                }
                return classify(&resp[..len], body, scrape);
            }
            Err(e) => {
                *conn = None;
                if reused && attempt == 0 && is_closed(&e) {
                    continue;
                }
                return if is_timeout(&e) {
                    Outcome::Timeout
                } else {
                    Outcome::Io
                };
            }
        }
    }
    Outcome::Io
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn is_closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionReset
            | ErrorKind::BrokenPipe
            | ErrorKind::ConnectionAborted
    )
}

/// Reads one reply: returns its length, where the body starts, and whether
/// the server will close the connection. Needs Content-Length or the end of
/// the connection to know where the body ends.
fn read_reply(s: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<(usize, usize, bool)> {
    let mut len = 0;
    let mut head: Option<(usize, Option<usize>, bool)> = None;
    loop {
        if let Some((body, Some(clen), close)) = head {
            if len >= body + clen {
                return Ok((body + clen, body, close));
            }
        }
        if len == buf.len() {
            return Err(ErrorKind::InvalidData.into());
        }
        let n = s.read(&mut buf[len..])?;
        if n == 0 {
            return match head {
                Some((body, None, _)) => Ok((len, body, true)),
                _ => Err(ErrorKind::UnexpectedEof.into()),
            };
        }
        len += n;
        if head.is_none() {
            if let Some(i) = buf[..len].windows(4).position(|w| w == b"\r\n\r\n") {
                head = Some(parse_head(&buf[..i]));
                let (b, cl, c) = head.unwrap();
                head = Some((i + 4 + b, cl, c));
            }
        }
    }
}

/// Content-Length and `Connection: close` from a response head (the first
/// field is always 0: the body offset is added by the caller).
pub fn parse_head(head: &[u8]) -> (usize, Option<usize>, bool) {
    let mut clen = None;
    let mut close = false;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            clen = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        } else if name.eq_ignore_ascii_case(b"connection") {
            close = value.eq_ignore_ascii_case(b"close");
        }
    }
    (0, clen, close)
}

fn classify(reply: &[u8], body: usize, scrape: bool) -> Outcome {
    if !reply.starts_with(b"HTTP/1.1 200") && !reply.starts_with(b"HTTP/1.0 200") {
        // A refusal by a limit (503, 431...): an error reply, with its status line.
        let end = reply
            .iter()
            .position(|&b| b == b'\r')
            .unwrap_or(reply.len());
        return Outcome::Failure(reply[..end.min(64)].to_vec());
    }
    let b = &reply[body..];
    if let Some(i) = find(b, b"14:failure reason") {
        let rest = &b[i + 17..];
        let text = rest
            .iter()
            .position(|&c| c == b':')
            .and_then(|colon| {
                let n: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
                rest.get(colon + 1..colon + 1 + n)
            })
            .unwrap_or(b"(unparsable failure reason)");
        return Outcome::Failure(text.to_vec());
    }
    match (scrape, b.first()) {
        (false, Some(b'd')) if find(b, b"8:intervali").is_some() => Outcome::Announce,
        (true, Some(b'd')) if find(b, b"5:filesd").is_some() => Outcome::Scrape,
        _ => Outcome::Bad,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
    }
}

fn push_num(out: &mut Vec<u8>, n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut n = n;
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// The whole request into `out` (cleared first).
fn encode(out: &mut Vec<u8>, r: &Request, conf: &Conf) {
    out.clear();
    match r {
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
            out.extend_from_slice(b"GET /");
            if let Some(key) = passkey {
                out.extend_from_slice(key);
                out.push(b'/');
            }
            out.extend_from_slice(b"announce?info_hash=");
            push_escaped(out, info_hash);
            out.extend_from_slice(b"&peer_id=");
            push_escaped(out, peer_id);
            out.extend_from_slice(b"&port=");
            push_num(out, *port as u64);
            out.extend_from_slice(b"&uploaded=");
            push_num(out, *uploaded);
            out.extend_from_slice(b"&downloaded=");
            push_num(out, *downloaded);
            out.extend_from_slice(b"&left=");
            push_num(out, *left);
            out.extend_from_slice(b"&compact=1&numwant=");
            push_num(out, *numwant as u64);
            out.extend_from_slice(b"&key=");
            push_num(out, *key as u64);
            if let Some(name) = event.http_name() {
                out.extend_from_slice(b"&event=");
                out.extend_from_slice(name.as_bytes());
            }
        }
        Request::Scrape(hashes) => {
            out.extend_from_slice(b"GET /");
            if let Some(key) = &conf.passkey {
                out.extend_from_slice(key);
                out.push(b'/');
            }
            out.extend_from_slice(b"scrape?");
            for (i, h) in hashes.iter().enumerate() {
                if i > 0 {
                    out.push(b'&');
                }
                out.extend_from_slice(b"info_hash=");
                push_escaped(out, h);
            }
        }
    }
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(conf.host.as_bytes());
    out.extend_from_slice(b"\r\nUser-Agent: hayate-load/0.1\r\n");
    if !conf.keepalive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{passkey, Event};

    #[test]
    fn replies_are_classified() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        let mut r = ok.to_vec();
        r.extend_from_slice(b"d8:intervali1800e5:peers0:e");
        assert!(matches!(classify(&r, ok.len(), false), Outcome::Announce));
        let mut r = ok.to_vec();
        r.extend_from_slice(b"d14:failure reason8:bad porte");
        assert!(matches!(classify(&r, ok.len(), false), Outcome::Failure(m) if m == b"bad port"));
        let r = b"HTTP/1.1 503 Service Unavailable\r\n\r\n";
        assert!(matches!(classify(r, r.len(), false), Outcome::Failure(_)));
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-length: 12\r\nConnection: close"),
            (0, Some(12), true)
        );
    }

    fn conf(keepalive: bool, passkey: Option<[u8; 32]>) -> Conf {
        Conf {
            addr: "127.0.0.1:1".parse().unwrap(),
            host: "127.0.0.1:1".into(),
            keepalive,
            passkey,
        }
    }

    fn announce(passkey: Option<[u8; 32]>, uploaded: u64, downloaded: u64) -> Request<'static> {
        Request::Announce {
            info_hash: [0xAB; 20],
            peer_id: *b"-HL0001-abcdefghijkl",
            port: 6881,
            left: 100,
            event: Event::None,
            numwant: 50,
            key: 9,
            uploaded,
            downloaded,
            passkey,
        }
    }

    const HASH: &str = "%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB";

    #[test]
    fn public_requests_are_unchanged() {
        let mut out = Vec::new();
        encode(&mut out, &announce(None, 0, 0), &conf(false, None));
        let want = format!(
            "GET /announce?info_hash={HASH}&peer_id=-HL0001-abcdefghijkl&port=6881\
             &uploaded=0&downloaded=0&left=100&compact=1&numwant=50&key=9 HTTP/1.1\r\n\
             Host: 127.0.0.1:1\r\nUser-Agent: hayate-load/0.1\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(String::from_utf8(out.clone()).unwrap(), want);
        encode(&mut out, &Request::Scrape(&[[0xAB; 20]]), &conf(true, None));
        assert!(out.starts_with(format!("GET /scrape?info_hash={HASH} HTTP/1.1\r\n").as_bytes()));
    }

    #[test]
    fn private_requests_put_the_passkey_first() {
        let key = passkey(41);
        assert_eq!(&key, b"0000000000000000000000000000002a");
        let mut out = Vec::new();
        encode(
            &mut out,
            &announce(Some(key), 49152, 16384),
            &conf(true, None),
        );
        let want = format!(
            "GET /0000000000000000000000000000002a/announce?info_hash={HASH}\
             &peer_id=-HL0001-abcdefghijkl&port=6881&uploaded=49152&downloaded=16384\
             &left=100&compact=1&numwant=50&key=9 HTTP/1.1\r\n"
        );
        assert!(
            out.starts_with(want.as_bytes()),
            "{}",
            String::from_utf8_lossy(&out)
        );
        // A scrape uses the lane's passkey.
        encode(
            &mut out,
            &Request::Scrape(&[[0xAB; 20]]),
            &conf(true, Some(passkey(0))),
        );
        let want =
            format!("GET /00000000000000000000000000000001/scrape?info_hash={HASH} HTTP/1.1\r\n");
        assert!(
            out.starts_with(want.as_bytes()),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
}
