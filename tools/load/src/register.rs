//! `register`: makes a private hayate know the users and torrents a
//! `--passkeys` run uses, through its control API
//! (`/<site_password>/update?action=...`, GAZELLE.md "The control API"):
//! `add_user` for user ids 1..=U (passkey `format!("{:032x}", id)`, as
//! `workload::passkey(id - 1)`), then `add_torrent` for every info hash of
//! the workload (id = popularity rank + 1, `freetorrent=0`). One keep-alive
//! HTTP/1.1 connection, requests pipelined `WINDOW` at a time (hayate
//! serves pipelined requests in order); every reply must be `success`.

use crate::args::{Opts, Target};
use crate::http::parse_head;
use crate::workload::{passkey, Workload};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Requests written before their replies are read.
const WINDOW: usize = 64;
/// A reply that takes longer than this is a failure.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The control call for item `i`: users first (`i < users`), then torrents.
fn call(out: &mut Vec<u8>, password: &str, host: &str, users: u64, work: &Workload, i: u64) {
    out.extend_from_slice(b"GET /");
    out.extend_from_slice(password.as_bytes());
    if i < users {
        out.extend_from_slice(b"/update?action=add_user&passkey=");
        out.extend_from_slice(&passkey(i));
        out.extend_from_slice(format!("&id={}&visible=1", i + 1).as_bytes());
    } else {
        let rank = i - users;
        out.extend_from_slice(b"/update?action=add_torrent&info_hash=");
        for b in &work.hashes[rank as usize] {
            out.extend_from_slice(format!("{b:02x}").as_bytes());
        }
        out.extend_from_slice(format!("&id={}&freetorrent=0", rank + 1).as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\nUser-Agent: hayate-load/0.1\r\n\r\n");
}

/// Replies read off one connection, in order; bytes past one reply are
/// kept for the next (pipelining).
struct Replies {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Replies {
    /// The next reply's body; `Err` when the connection fails or closes.
    fn next(&mut self) -> Result<Vec<u8>, String> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let (_, clen, _) = parse_head(&self.buf[..i]);
                let clen = clen.ok_or("a reply without Content-Length")?;
                let body = i + 4;
                if self.buf.len() >= body + clen {
                    if !self.buf.starts_with(b"HTTP/1.1 200") {
                        let end = self.buf[..i].iter().position(|&b| b == b'\r').unwrap_or(i);
                        return Err(String::from_utf8_lossy(&self.buf[..end]).into_owned());
                    }
                    let reply = self.buf[body..body + clen].to_vec();
                    self.buf.drain(..body + clen);
                    return Ok(reply);
                }
            }
            let n = match self.stream.read(&mut chunk) {
                Ok(0) => return Err("the tracker closed the connection".into()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read: {e}")),
            };
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// What a reply that is not `success` says: the bencoded failure reason
/// when there is one.
fn why(reply: &[u8]) -> String {
    let text = String::from_utf8_lossy(reply);
    match text.split_once("14:failure reason") {
        Some((_, rest)) => rest
            .split_once(':')
            .and_then(|(n, s)| Some(s.get(..n.parse::<usize>().ok()?)?.to_string()))
            .unwrap_or_else(|| text.to_string()),
        None => text.to_string(),
    }
}

/// Runs `register`; false (after saying why) on any failure.
pub fn run(o: &Opts, work: &Workload) -> bool {
    let (Target::Http(addr, host), Some(password)) = (&o.target, o.site_password.as_deref()) else {
        eprintln!("hayate-load register: needs --http ADDR and --site-password PW");
        return false;
    };
    let users = o.passkeys;
    let total = users + work.hashes.len() as u64;
    println!(
        "hayate-load register: http {addr}, {users} users and {} torrents (seed {}), one keep-alive connection",
        work.hashes.len(),
        o.seed
    );
    let start = Instant::now();
    let stream = match TcpStream::connect_timeout(addr, TIMEOUT) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hayate-load register: connect {addr}: {e}");
            return false;
        }
    };
    let setup = stream
        .set_nodelay(true)
        .and_then(|_| stream.set_read_timeout(Some(TIMEOUT)))
        .and_then(|_| stream.set_write_timeout(Some(TIMEOUT)))
        .and_then(|_| stream.try_clone());
    let mut writer = match setup {
        Ok(w) => w,
        Err(e) => {
            eprintln!("hayate-load register: socket: {e}");
            return false;
        }
    };
    let mut replies = Replies {
        stream,
        buf: Vec::new(),
    };
    let mut out = Vec::with_capacity(WINDOW * 160);
    let mut done = 0u64;
    while done < total {
        let batch = (total - done).min(WINDOW as u64);
        out.clear();
        for i in done..done + batch {
            call(&mut out, password, host, users, work, i);
        }
        if let Err(e) = writer.write_all(&out) {
            eprintln!("hayate-load register: write after {done} calls: {e}");
            return false;
        }
        for i in done..done + batch {
            let what = if i < users { "add_user" } else { "add_torrent" };
            match replies.next() {
                Ok(body) if body == b"success" => {}
                Ok(body) => {
                    eprintln!(
                        "hayate-load register: call {} ({what}) failed: {}",
                        i + 1,
                        why(&body)
                    );
                    return false;
                }
                Err(e) => {
                    eprintln!("hayate-load register: call {} ({what}): {e}", i + 1);
                    return false;
                }
            }
        }
        done += batch;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "register: {users} users and {} torrents added ({total} calls, all success) in {secs:.2} s ({:.0} calls/s)",
        work.hashes.len(),
        total as f64 / secs.max(1e-9)
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_name_users_then_torrents() {
        let mut work = Workload::new(2, 0, 1.0, 0.0, 4, 50, 1);
        work.passkeys = 3;
        let mut out = Vec::new();
        call(&mut out, "pw", "h:1", 3, &work, 2);
        assert!(out.starts_with(
            b"GET /pw/update?action=add_user&passkey=00000000000000000000000000000003&id=3&visible=1 HTTP/1.1\r\nHost: h:1\r\n"
        ));
        out.clear();
        call(&mut out, "pw", "h:1", 3, &work, 4);
        let hex: String = work.hashes[1].iter().map(|b| format!("{b:02x}")).collect();
        let want = format!(
            "GET /pw/update?action=add_torrent&info_hash={hex}&id=2&freetorrent=0 HTTP/1.1\r\n"
        );
        assert!(out.starts_with(want.as_bytes()));
    }

    #[test]
    fn failure_reasons_are_read() {
        assert_eq!(
            why(b"d14:failure reason20:Unregistered torrente"),
            "Unregistered torrent"
        );
        assert_eq!(why(b"nope"), "nope");
    }
}
