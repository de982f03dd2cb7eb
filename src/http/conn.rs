//! One HTTP connection's state and the request-head handling that works on
//! its bytes: parse heads with httparse (pipelined requests in order),
//! enforce the head limits, call the routes, append replies to the
//! connection's output buffer.
//!
//! Buffers: a connection owns an input buffer only while it holds a partial
//! request (a connection that sends whole requests in one read parses them
//! straight from the worker's scratch buffer), and an output buffer only
//! while a reply is being written. Idle keep-alive connections cost their
//! socket and this struct, nothing more.

use std::io::Write as _;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use mio::net::TcpStream;

use super::client_ip::client_ip;
use super::reply;
use super::routes::{Request, Routes, Status};
use crate::config::Config;
use crate::server::Env;
use crate::stats::{Reject, WorkerStats};

/// Most header lines any config may allow (`http_max_headers` is validated
/// against it); the parser's header array lives on the stack, uninitialised.
pub const MAX_HEADERS_CAP: usize = 1024;

/// Pipelined requests served per connection before yielding to the others.
pub const REQUESTS_PER_TURN: usize = 64;

/// A client connection.
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
    /// The socket peer's address (what the limiter counted).
    pub peer: SocketAddr,
    /// Bytes of a request head not yet complete (or unparsed pipelined requests).
    pub inbuf: Vec<u8>,
    /// `inbuf` may hold a complete request that has not been served yet.
    pub inbuf_dirty: bool,
    /// Reply bytes not yet written.
    pub out: Vec<u8>,
    /// How much of `out` has been written.
    pub out_pos: usize,
    /// When the first byte of the current, incomplete request arrived.
    pub request_started: Option<Instant>,
    /// Last read or write progress.
    pub last_active: Instant,
    /// Close once `out` is written (HTTP/1.0, `Connection: close`, errors).
    pub close_after_flush: bool,
    /// WRITABLE interest is wanted (registered, once `registered`).
    pub want_write: bool,
    /// The socket is registered with the poll (not yet while its first
    /// turn runs: see `HttpFront::admit`).
    pub registered: bool,
    /// A full scrape in progress: the next slice to produce once `out` has
    /// drained (see `Routes::full_scrape_slice`).
    pub full_scrape: Option<u16>,
    /// Replies held until a control call's change is committed (the
    /// highest ticket among them, the responses in order); replies to
    /// requests after it join them, so the order holds.
    pub held: Option<(u64, Vec<u8>)>,
}

impl Conn {
    /// A fresh connection.
    pub fn new(stream: TcpStream, peer: SocketAddr, now: Instant) -> Conn {
        Conn {
            stream,
            peer,
            inbuf: Vec::new(),
            inbuf_dirty: false,
            out: Vec::new(),
            out_pos: 0,
            request_started: None,
            last_active: now,
            close_after_flush: false,
            want_write: false,
            registered: false,
            full_scrape: None,
            held: None,
        }
    }

    /// True while reply bytes wait to be written.
    pub fn has_output(&self) -> bool {
        self.out_pos < self.out.len()
    }
}

/// What the worker hands to request handling besides the connection.
pub struct Ctx<'a> {
    /// Shared state, this worker's config, access lists and counters.
    pub env: Env<'a>,
    /// Router with its scratch space.
    pub routes: &'a mut Routes,
    /// Reused reply-body buffer.
    pub body: &'a mut Vec<u8>,
}

/// Serves the complete requests at the front of `buf`, appending replies
/// to `conn.out`. Returns how many bytes were consumed; stops at a partial
/// head, after `budget` requests, or when the connection must close.
pub fn serve_buffered(buf: &[u8], conn: &mut Conn, ctx: &mut Ctx, budget: &mut usize) -> usize {
    let config = ctx.env.config;
    let max_headers = config.http_max_headers.min(MAX_HEADERS_CAP);
    let mut pos = 0;
    while pos < buf.len() && *budget > 0 && !conn.close_after_flush {
        let rest = &buf[pos..];
        let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS_CAP];
        let mut req = httparse::Request::new(&mut []);
        match parse_head(&mut req, rest, &mut headers[..max_headers]) {
            Ok(httparse::Status::Complete(n)) => {
                *budget -= 1;
                pos += n;
                WorkerStats::bump(&ctx.env.stats.http_requests);
                serve_one(&req, conn, ctx);
            }
            Ok(httparse::Status::Partial) => {
                if rest.len() >= config.http_max_request_bytes {
                    reject(conn, ctx.env.stats, Reject::HeadTooLarge);
                }
                break;
            }
            Err(httparse::Error::TooManyHeaders) => {
                reject(conn, ctx.env.stats, Reject::TooManyHeaders);
                break;
            }
            Err(_) => {
                reject(conn, ctx.env.stats, Reject::BadRequest);
                break;
            }
        }
    }
    pos
}

fn serve_one(req: &httparse::Request, conn: &mut Conn, ctx: &mut Ctx) {
    let config = ctx.env.config;
    let head_only = match req.method {
        Some("GET") => false,
        Some("HEAD") => true,
        _ => return reject(conn, ctx.env.stats, Reject::Method),
    };
    let mut close = req.version != Some(1) || config.http_idle_timeout.is_zero();
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") && h.value.eq_ignore_ascii_case(b"close") {
            close = true;
        }
        // We never read request bodies: one would be parsed as the next request.
        let body_header = h.name.eq_ignore_ascii_case("transfer-encoding")
            || (h.name.eq_ignore_ascii_case("content-length")
                && h.value.iter().any(|&b| b != b'0'));
        if body_header {
            return reject(conn, ctx.env.stats, Reject::BadRequest);
        }
    }
    let target = req.path.unwrap_or("/").as_bytes();
    // Per-request detail for operators at debug; the interop suite also
    // captures client fixtures from these lines. Escaped: one line each.
    log::debug!(
        "http {}: {} {}",
        conn.peer,
        req.method.unwrap_or(""),
        target.escape_ascii()
    );
    let (path, query) = split_target(target);
    let user_agent = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("user-agent"))
        .map_or(&[][..], |h| h.value);
    let request = Request {
        path,
        query,
        client: request_client(req, conn.peer.ip(), config),
        user_agent,
    };
    let status = ctx.routes.serve(&ctx.env, &request, ctx.body);
    if status == Status::FullScrape {
        // Close-delimited body of unknown length, produced slice by slice.
        conn.out.extend_from_slice(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
        );
        if !head_only {
            conn.out.extend_from_slice(reply::SCRAPE_OPEN);
            conn.full_scrape = Some(0);
        }
        conn.close_after_flush = true;
        return;
    }
    let (code, content_type) = match status {
        Status::Ok if path == config.stats_path.as_bytes() => {
            (200, "text/plain; version=0.0.4; charset=utf-8")
        }
        Status::Ok | Status::FullScrape => (200, "text/plain"),
        Status::Html => (200, "text/html; charset=utf-8"),
        Status::NotFound => (404, "text/plain"),
    };
    // A control call's reply waits for its commit, and every reply after
    // it on this connection waits with it (order): pipelined calls share
    // one commit.
    let private = ctx.env.shared.private.as_ref();
    let ticket = ctx
        .routes
        .await_ticket
        .take()
        .filter(|&t| private.is_some_and(|p| !p.is_durable(t)));
    match (&mut conn.held, ticket) {
        (Some((held, reply)), new) => {
            write_response(reply, code, content_type, ctx.body, close, head_only);
            *held = new.map_or(*held, |t| t.max(*held));
        }
        (None, Some(t)) => {
            let mut reply = Vec::new();
            write_response(&mut reply, code, content_type, ctx.body, close, head_only);
            conn.held = Some((t, reply));
        }
        (None, None) => write_response(
            &mut conn.out,
            code,
            content_type,
            ctx.body,
            close,
            head_only,
        ),
    }
    conn.close_after_flush |= close;
}

/// Parses one request head from the front of `buf` (httparse's default
/// parser settings; `headers` is as long as `http_max_headers` allows).
/// Public so the fuzz target parses exactly as the server does.
pub fn parse_head<'h, 'b>(
    req: &mut httparse::Request<'h, 'b>,
    buf: &'b [u8],
    headers: &'h mut [MaybeUninit<httparse::Header<'b>>],
) -> httparse::Result<usize> {
    httparse::ParserConfig::default().parse_request_with_uninit_headers(req, buf, headers)
}

/// Splits a request target into the path and the query: the bytes after
/// the first `?`, without any `#` fragment (empty when there is no `?`).
pub fn split_target(target: &[u8]) -> (&[u8], &[u8]) {
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => (&target[..q], &target[q + 1..]),
        None => (target, &target[target.len()..]),
    };
    let query = match query.iter().position(|&b| b == b'#') {
        Some(f) => &query[..f],
        None => query,
    };
    (path, query)
}

/// The client of a request from `peer`: the peer itself, or what a trusted
/// proxy says in `real_ip_header` (the last 8 lines of it, see
/// [`client_ip`]).
pub fn request_client(req: &httparse::Request, peer: IpAddr, config: &Config) -> Option<IpAddr> {
    let header = config.real_ip_header.as_str();
    let values = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(header))
        .map(|h| h.value);
    client_ip(
        peer,
        &config.trusted_proxies,
        values.collect::<SmallValues>().iter(),
    )
}

/// Header values of the real-IP header: almost always zero or one, so kept
/// inline without allocating.
struct SmallValues<'a> {
    items: [&'a [u8]; 8],
    len: usize,
}

impl<'a> FromIterator<&'a [u8]> for SmallValues<'a> {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(iter: I) -> Self {
        let mut s = SmallValues {
            items: [&[]; 8],
            len: 0,
        };
        for v in iter {
            // More than 8 lines of the header: keep the last 8 (proxies append).
            if s.len == s.items.len() {
                s.items.rotate_left(1);
                s.len -= 1;
            }
            s.items[s.len] = v;
            s.len += 1;
        }
        s
    }
}

impl<'a> SmallValues<'a> {
    fn iter(&self) -> impl DoubleEndedIterator<Item = &'a [u8]> + '_ {
        self.items[..self.len].iter().copied()
    }
}

/// Queues an error reply for a limit or protocol violation and marks the
/// connection for closing.
pub fn reject(conn: &mut Conn, stats: &WorkerStats, why: Reject) {
    WorkerStats::bump(&stats.http_rejected[why as usize]);
    let code = match why {
        Reject::MaxConnections | Reject::MaxConnectionsPerIp => 503,
        Reject::HeadTooLarge | Reject::TooManyHeaders => 431,
        Reject::RequestTimeout => 408,
        Reject::BadRequest => 400,
        Reject::Method => 405,
    };
    let body = format!("{}\n", why.label());
    write_response(
        &mut conn.out,
        code,
        "text/plain",
        body.as_bytes(),
        true,
        false,
    );
    conn.close_after_flush = true;
}

/// Appends a whole HTTP/1.1 response.
pub fn write_response(
    out: &mut Vec<u8>,
    code: u16,
    content_type: &str,
    body: &[u8],
    close: bool,
    head_only: bool,
) {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let connection = if close { "Connection: close\r\n" } else { "" };
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{connection}\r\n",
        body.len()
    );
    if !head_only {
        out.extend_from_slice(body);
    }
}

/// The address a rejected connection is counted under.
pub fn limiter_ip(peer: &SocketAddr) -> IpAddr {
    super::client_ip::canonical(peer.ip())
}
