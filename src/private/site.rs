//! The site's own callback (`site_url`): after a tokened snatch the
//! token is spent, and the site is told with
//! `GET <site_url>/tools.php?key=<site_password>&type=expiretoken&action=ocelot&tokens=<user>:<torrent>,...`,
//! as Ocelot does (the site then marks `users_freeleeches.Expired` and
//! clears its caches). Workers only queue the token; the flusher sends
//! the calls after the commit that holds the snatch, so a worker never
//! waits on the site. A failed call is kept and retried after the next
//! commit (the queue is bounded; tokened snatches are rare).

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::{lock, Private};
use crate::db::Token;

/// Most expiries waiting for the site; beyond this the oldest are dropped
/// (logged): the site's own token list then still shows them unexpired.
pub const QUEUE_MAX: usize = 100_000;

/// Tokens per request: keeps the URL far under any server's limit.
const PER_REQUEST: usize = 200;

/// How long connecting, sending and reading the answer may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed `site_url`: plain HTTP, as Ocelot speaks to the site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteUrl {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (80 unless given).
    pub port: u16,
    /// Path prefix without a trailing `/` (empty for the root).
    pub path: String,
}

impl SiteUrl {
    /// `http://host[:port][/path]`.
    pub fn parse(url: &str) -> Result<SiteUrl, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("expected http://host[:port][/path], got {url:?}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) || path.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(format!(
                "{url:?}: the path must be plain (no ?, # or spaces)"
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: unclosed ["))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() || !host.bytes().all(|b| b.is_ascii_graphic() && b != b'@') {
            return Err(format!("{url:?}: no host"));
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("{url:?}: bad port {p:?}"))?,
        };
        Ok(SiteUrl {
            host: host.to_owned(),
            port,
            path: path.trim_end_matches('/').to_owned(),
        })
    }
}

/// `s` percent-encoded for a query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Tells the site that `tokens` are spent; Ok once it answered 2xx to
/// every request.
pub fn expire_tokens(site: &SiteUrl, password: &str, tokens: &[Token]) -> io::Result<()> {
    for chunk in tokens.chunks(PER_REQUEST) {
        let list = chunk
            .iter()
            .map(|t| format!("{}:{}", t.user, t.torrent))
            .collect::<Vec<_>>()
            .join(",");
        let target = format!(
            "{}/tools.php?key={}&type=expiretoken&action=ocelot&tokens={}",
            site.path,
            encode(password),
            encode(&list)
        );
        get(site, &target)?;
    }
    Ok(())
}

/// One `GET target` to the site; Ok on a 2xx status.
fn get(site: &SiteUrl, target: &str) -> io::Result<()> {
    let addr = (site.host.as_str(), site.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let host = if site.host.contains(':') {
        format!("[{}]", site.host)
    } else {
        site.host.clone()
    };
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: hayate\r\nConnection: close\r\n\r\n",
        site.port
    );
    stream.write_all(request.as_bytes())?;
    // The status line is all that matters.
    let mut head = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        let n = stream.read(&mut head[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let status = head.get(..got).unwrap_or(&[]);
    let ok = status.starts_with(b"HTTP/1.") && status.get(9) == Some(&b'2');
    if ok {
        Ok(())
    } else {
        let line = String::from_utf8_lossy(status);
        let line = line.lines().next().unwrap_or("");
        Err(io::Error::other(format!("the site answered {line:?}")))
    }
}

impl Private {
    /// Queues a spent token for the site (a worker, after a tokened
    /// snatch).
    pub(super) fn queue_expiry(&self, token: Token) {
        let mut q = lock(&self.expiries);
        if q.len() >= QUEUE_MAX {
            q.pop_front();
            log::warn!("site_url: {QUEUE_MAX} token expiries waiting; the oldest dropped");
        }
        q.push_back(token);
    }

    /// The spent tokens waiting for the site, taken.
    pub fn take_expiries(&self) -> Vec<Token> {
        lock(&self.expiries).drain(..).collect()
    }

    /// Puts back expiries the site did not take (before any queued since;
    /// the oldest go when that passes `QUEUE_MAX`).
    pub fn requeue_expiries(&self, tokens: Vec<Token>) {
        let mut q = lock(&self.expiries);
        for t in tokens.into_iter().rev() {
            q.push_front(t);
        }
        let over = q.len().saturating_sub(QUEUE_MAX);
        q.drain(..over);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_urls_parse() {
        let u = SiteUrl::parse("http://site.example").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("site.example", 80, "")
        );
        let u = SiteUrl::parse("http://127.0.0.1:8080/gazelle/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/gazelle")
        );
        let u = SiteUrl::parse("http://[::1]:81").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 81));
        for bad in [
            "https://site.example",
            "site.example",
            "http://",
            "http://:80",
            "http://h:0",
            "http://h:99999",
            "http://h/a?b",
            "http://user@h",
            "http://[::1",
        ] {
            assert!(SiteUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("a&b=c 1:2,3"), "a%26b%3Dc%201%3A2%2C3");
    }
}
