//! The HTTP side of a worker: its SO_REUSEPORT listener per address (the
//! kernel spreads connections), a slab of connections, reusable buffers.
//! The worker's poll loop (`crate::worker`) hands it the events of its
//! tokens.
//!
//! Rules (mio's examples, redis's ae.c): drain accept and read until
//! `WouldBlock`; an error on one connection closes that connection only;
//! connections are closed after the event batch, so a reused token never
//! receives a stale event; a connection that used up its per-turn request
//! budget goes on a pending list (the poll will not report it again).
//! Timeouts are checked by a sweep every tick, O(connections) per tick.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use super::conn::{
    limiter_ip, reject, serve_buffered, write_response, Conn, Ctx, REQUESTS_PER_TURN,
};
use super::routes::Routes;
use crate::access::AccessList;
use crate::config::Config;
use crate::server::{Env, Shared, Throttle};
use crate::stats::{Reject, WorkerStats};
use crate::sys::fin::send_held;

/// Listener `i` has token `LISTENER_BASE + i`.
pub const LISTENER_BASE: usize = 1;
/// Connection slot `s` has token `CONN_BASE + s`.
pub const CONN_BASE: usize = 1 << 16;
/// After an accept error like EMFILE, try again this much later (the
/// listener reports no new edge for connections already queued). Retrying
/// at once instead would spin while descriptors stay exhausted:
/// `tests/fd_exhaustion.rs` measured 0.70 s of CPU per second with this
/// at zero, 0 s with 100 ms.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// Upper bound on one accept burst, so a listener cannot starve the rest.
const ACCEPTS_PER_TURN: usize = 256;
/// A connection whose reply buffer grew beyond this gives the memory back.
const OUT_KEEP_BYTES: usize = 64 * 1024;
/// While a control call's reply waits for its commit, the poll wakes this
/// often to look (the flusher commits at once when asked: a few ms).
const HELD_POLL: Duration = Duration::from_millis(2);
/// One worker's HTTP listeners and connections.
pub struct HttpFront {
    id: usize,
    registry: Registry,
    shared: Arc<Shared>,
    config: Arc<Config>,
    access: Arc<AccessList>,
    listeners: Vec<TcpListener>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    closing: Vec<usize>,
    pending: Vec<usize>,
    /// Connections holding a control reply until its commit.
    held: Vec<usize>,
    scratch: Vec<u8>,
    body: Vec<u8>,
    routes: Routes,
    accept_retry_at: Option<Instant>,
    accept_warn: Throttle,
    next_sweep: Instant,
}

impl HttpFront {
    /// Worker `id`'s HTTP side, serving `listeners` (bound, non-blocking),
    /// registered with the worker's poll through `registry`.
    pub fn new(
        id: usize,
        registry: &Registry,
        shared: Arc<Shared>,
        listeners: Vec<std::net::TcpListener>,
    ) -> io::Result<HttpFront> {
        let registry = registry.try_clone()?;
        let mut mio_listeners = Vec::with_capacity(listeners.len());
        for (i, l) in listeners.into_iter().enumerate() {
            let mut l = TcpListener::from_std(l);
            registry.register(&mut l, Token(LISTENER_BASE + i), Interest::READABLE)?;
            mio_listeners.push(l);
        }
        let config = shared.config.load();
        let scratch = vec![0; config.http_max_request_bytes];
        Ok(HttpFront {
            id,
            registry,
            access: shared.access.load(),
            shared,
            config,
            listeners: mio_listeners,
            conns: Vec::new(),
            free: Vec::new(),
            closing: Vec::new(),
            pending: Vec::new(),
            held: Vec::new(),
            scratch,
            body: Vec::with_capacity(4096),
            routes: Routes::new(id),
            accept_retry_at: None,
            accept_warn: Throttle::new(Duration::from_secs(10)),
            next_sweep: Instant::now(),
        })
    }

    /// Takes a reloaded configuration (limits and timeouts apply to the
    /// next request; listen addresses need a restart).
    pub fn set_config(&mut self, config: Arc<Config>) {
        // Keep the invariant scratch.len() == http_max_request_bytes.
        self.scratch.resize(config.http_max_request_bytes, 0);
        self.config = config;
    }

    /// Takes reloaded access lists.
    pub fn set_access(&mut self, access: Arc<AccessList>) {
        self.access = access;
    }

    /// Handles one poll event for a token in the HTTP ranges.
    pub fn on_event(&mut self, token: Token) {
        match token.0 {
            t if t >= CONN_BASE => self.drive(t - CONN_BASE),
            t => self.accept(t - LISTENER_BASE),
        }
    }

    /// How long the poll may sleep given HTTP's queued work.
    pub fn timeout(&self, tick: Duration) -> Duration {
        if !self.pending.is_empty() {
            return Duration::ZERO;
        }
        let tick = if self.held.is_empty() {
            tick
        } else {
            tick.min(HELD_POLL)
        };
        self.accept_retry_at.map_or(tick, |at| {
            at.saturating_duration_since(Instant::now()).min(tick)
        })
    }

    /// After an event batch: serve connections that used up their turn,
    /// close what was marked, retry a postponed accept, sweep timeouts.
    pub fn after_events(&mut self, tick: Duration) {
        for slot in std::mem::take(&mut self.pending) {
            self.drive(slot);
        }
        for slot in std::mem::take(&mut self.held) {
            self.drive(slot);
        }
        self.close_marked();
        let now = Instant::now();
        if self.accept_retry_at.is_some_and(|at| now >= at) {
            self.accept_retry_at = None;
            for i in 0..self.listeners.len() {
                self.accept(i);
            }
        }
        if now >= self.next_sweep {
            self.sweep(now);
            self.close_marked();
            self.next_sweep = now + tick;
        }
    }

    fn accept(&mut self, i: usize) {
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(listener) = self.listeners.get(i) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_resource_exhaustion(&e) => {
                    if self.accept_warn.ready() {
                        log::warn!("worker {}: accept: {e} (retrying; raise LimitNOFILE or lower http_max_connections)", self.id);
                    }
                    self.accept_retry_at = Some(Instant::now() + ACCEPT_RETRY);
                    return;
                }
                // ECONNABORTED and friends concern one connection only.
                Err(e) => log::debug!("worker {}: accept: {e}", self.id),
            }
        }
        // Burst limit hit: more may be queued, and no new edge will say so.
        self.accept_retry_at = Some(Instant::now());
    }

    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr) {
        let config = &*self.config;
        let ip = limiter_ip(&peer);
        let stats = self.shared.stats.worker(self.id);
        if let Err(why) = self.shared.limiter.admit(
            &self.shared.stats.http_open,
            ip,
            config.http_max_connections,
            config.http_max_connections_per_ip,
        ) {
            WorkerStats::bump(&stats.http_rejected[why as usize]);
            // Best effort: a fresh socket's send buffer takes this at once.
            let mut reply = Vec::with_capacity(128);
            write_response(
                &mut reply,
                503,
                "text/plain",
                b"too many connections\n",
                true,
                false,
            );
            let _ = stream.write(&reply);
            return;
        }
        WorkerStats::bump(&stats.http_accepted);
        // TCP_NODELAY comes from the listener (`server::bind_tcp`): one
        // system call less per connection, 1.5-2.2% less CPU per request
        // with a connection per request (`benches/same-core.sh http`, 4 rounds).
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        self.conns[slot] = Some(Conn::new(stream, peer, Instant::now()));
        // Serve first, register after: a connection-per-request client's
        // request is there by the time we accept (the listener defers
        // accepting until data arrives, `sys::defer`), so it is served
        // and closed without an epoll_ctl ADD and DEL. Registering later
        // loses nothing: an edge-triggered ADD reports readiness that is
        // already there.
        self.drive(slot);
        if let Some(at) = self.closing.iter().position(|&c| c == slot) {
            // Done already (served, or failed): close it now, not at the end
            // of the batch, so its per-IP count is released before the next
            // accept. Otherwise a client that reconnects as soon as it has
            // its reply is counted once per connection of this turn and hits
            // `http_max_connections_per_ip` with 4 connections open. Safe to
            // free the slot mid-batch: the socket was never registered, so
            // no event of this batch names it.
            self.closing.swap_remove(at);
            self.close(slot);
            return;
        }
        let Some(Some(conn)) = self.conns.get_mut(slot) else {
            return;
        };
        let interest = if conn.want_write {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let token = Token(CONN_BASE + slot);
        match self.registry.register(&mut conn.stream, token, interest) {
            Ok(()) => conn.registered = true,
            Err(e) => {
                log::debug!("worker {}: register: {e}", self.id);
                self.closing.push(slot);
            }
        }
    }

    /// Moves a connection forward as far as it can go: write pending
    /// output, serve buffered requests, read more, until it would block.
    pub(crate) fn drive(&mut self, slot: usize) {
        let mut budget = REQUESTS_PER_TURN;
        loop {
            let Some(Some(conn)) = self.conns.get_mut(slot) else {
                return;
            };
            if self.closing.contains(&slot) {
                return;
            }
            let stats = self.shared.stats.worker(self.id);
            match flush(conn, stats) {
                Ok(true) => {}
                Ok(false) => {
                    if !conn.want_write {
                        conn.want_write = true;
                        let token = Token(CONN_BASE + slot);
                        let interest = Interest::READABLE | Interest::WRITABLE;
                        if conn.registered
                            && self
                                .registry
                                .reregister(&mut conn.stream, token, interest)
                                .is_err()
                        {
                            self.closing.push(slot);
                        }
                    }
                    return;
                }
                Err(_) => return self.closing.push(slot),
            }
            if let Some((ticket, _)) = &conn.held {
                let private = self.shared.private.as_ref();
                if private.is_some_and(|p| !p.is_durable(*ticket)) {
                    if !self.held.contains(&slot) {
                        self.held.push(slot);
                    }
                    return;
                }
                if let Some((_, reply)) = conn.held.take() {
                    conn.out.extend_from_slice(&reply);
                }
                continue;
            }
            if let Some(cursor) = conn.full_scrape {
                // The previous slice is on its way: produce the next one.
                conn.full_scrape = self.routes.full_scrape_slice(
                    &self.shared,
                    &self.access,
                    cursor,
                    &mut conn.out,
                );
                continue;
            }
            if conn.close_after_flush {
                return self.closing.push(slot);
            }
            if conn.want_write {
                conn.want_write = false;
                let token = Token(CONN_BASE + slot);
                if conn.registered {
                    let _ = self
                        .registry
                        .reregister(&mut conn.stream, token, Interest::READABLE);
                }
            }
            let mut ctx = Ctx {
                env: Env {
                    shared: &self.shared,
                    config: &self.config,
                    access: &self.access,
                    stats,
                },
                routes: &mut self.routes,
                body: &mut self.body,
            };
            if conn.inbuf_dirty {
                let buf = std::mem::take(&mut conn.inbuf);
                let used = serve_buffered(&buf, conn, &mut ctx, &mut budget);
                conn.inbuf = buf;
                conn.inbuf.drain(..used);
                conn.inbuf_dirty = budget == 0;
                note_partial(conn);
                if budget == 0 {
                    self.pending.push(slot);
                    let _ = flush(conn, stats);
                    return;
                }
                continue;
            }
            let room = ctx
                .env
                .config
                .http_max_request_bytes
                .saturating_sub(conn.inbuf.len());
            if room == 0 {
                reject(conn, stats, Reject::HeadTooLarge);
                continue;
            }
            // room <= scratch.len(): both come from this worker's config
            // (set_config resizes the scratch buffer with it).
            let read = match conn.stream.read(&mut self.scratch[..room]) {
                Ok(0) => return self.closing.push(slot),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if conn.inbuf.is_empty() && conn.inbuf.capacity() > 0 {
                        conn.inbuf = Vec::new();
                    }
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.closing.push(slot),
            };
            stats
                .http_bytes_in
                .fetch_add(read as u64, Ordering::Relaxed);
            conn.last_active = Instant::now();
            if conn.inbuf.is_empty() {
                // Common case: whole requests in one read, parsed in place.
                let data = &self.scratch[..read];
                let used = serve_buffered(data, conn, &mut ctx, &mut budget);
                conn.inbuf.extend_from_slice(&data[used..]);
                conn.inbuf_dirty = budget == 0 && !conn.inbuf.is_empty();
            } else {
                conn.inbuf.extend_from_slice(&self.scratch[..read]);
                conn.inbuf_dirty = true;
            }
            note_partial(conn);
            if budget == 0 {
                self.pending.push(slot);
                let _ = flush(conn, stats);
                return;
            }
        }
    }

    /// Times out slow heads and idle connections.
    fn sweep(&mut self, now: Instant) {
        let config = &*self.config;
        let idle_limit = if config.http_idle_timeout.is_zero() {
            config.http_request_timeout
        } else {
            config.http_idle_timeout
        };
        let stats = self.shared.stats.worker(self.id);
        for (slot, conn) in self.conns.iter_mut().enumerate() {
            let Some(conn) = conn else { continue };
            if self.closing.contains(&slot) {
                continue;
            }
            if conn.held.is_some() {
                // Waiting on us (a commit), not on the client: only the
                // idle limit applies (an outage longer than it closes
                // the connection unanswered; the site retries).
                if now.duration_since(conn.last_active) >= idle_limit {
                    self.closing.push(slot);
                }
                continue;
            }
            if let Some(started) = conn.request_started {
                if now.duration_since(started) >= config.http_request_timeout
                    && !conn.close_after_flush
                {
                    conn.inbuf = Vec::new();
                    conn.inbuf_dirty = false;
                    conn.request_started = None;
                    reject(conn, stats, Reject::RequestTimeout);
                    self.pending.push(slot);
                }
                continue;
            }
            if now.duration_since(conn.last_active) >= idle_limit {
                if !conn.has_output() {
                    WorkerStats::bump(&stats.http_idle_closed);
                }
                // Also a client that stopped reading its replies.
                self.closing.push(slot);
            }
        }
    }

    /// Closes the connections marked during the batch.
    pub fn close_marked(&mut self) {
        while let Some(slot) = self.closing.pop() {
            self.close(slot);
        }
    }

    /// Closes connection `slot` and frees the slot and its per-IP count.
    fn close(&mut self, slot: usize) {
        if let Some(mut conn) = self.conns.get_mut(slot).and_then(Option::take) {
            if conn.registered {
                let _ = self.registry.deregister(&mut conn.stream);
            }
            self.shared
                .limiter
                .release(&self.shared.stats.http_open, limiter_ip(&conn.peer));
            self.free.push(slot);
        }
    }

    /// Shutdown, first step: stop accepting; every connection closes once
    /// its reply is written, idle ones at once.
    pub fn begin_drain(&mut self) {
        for mut l in self.listeners.drain(..) {
            let _ = self.registry.deregister(&mut l);
        }
        self.accept_retry_at = None;
        for slot in 0..self.conns.len() {
            if let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) {
                conn.close_after_flush = true;
                if !conn.has_output() {
                    self.closing.push(slot);
                }
            }
        }
        self.close_marked();
    }

    /// True when no connection is left.
    pub fn is_idle(&self) -> bool {
        self.conns.iter().all(Option::is_none)
    }

    /// Shutdown, last step: close whatever is left.
    pub fn close_all(&mut self) {
        self.closing.extend(0..self.conns.len());
        self.close_marked();
    }
}

/// Writes what `out` holds. `Ok(true)`: all written; `Ok(false)`: the socket
/// is full; `Err`: the connection is broken.
fn flush(conn: &mut Conn, stats: &WorkerStats) -> io::Result<bool> {
    // The last reply of a connection that closes next: its bytes leave
    // with the FIN, in one segment instead of two (`sys::fin`).
    let last = conn.close_after_flush && conn.full_scrape.is_none() && conn.held.is_none();
    while conn.has_output() {
        let rest = &conn.out[conn.out_pos..];
        let sent = if last {
            send_held(&conn.stream, rest)
        } else {
            conn.stream.write(rest)
        };
        match sent {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                conn.out_pos += n;
                conn.last_active = Instant::now();
                stats.http_bytes_out.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if last {
        // The FIN now, with the held bytes, rather than at `close`: a
        // socket closed with unread input (a client still sending, as a
        // rejected oversized head does) resets instead and would drop them.
        // An error here changes nothing: the connection closes next.
        let _ = conn.stream.shutdown(std::net::Shutdown::Write);
    }
    conn.out.clear();
    conn.out_pos = 0;
    if conn.out.capacity() > OUT_KEEP_BYTES {
        conn.out = Vec::new();
    }
    Ok(true)
}

/// Starts or stops the head timer as a partial request appears or goes.
fn note_partial(conn: &mut Conn) {
    if conn.inbuf.is_empty() {
        conn.request_started = None;
    } else if conn.request_started.is_none() {
        conn.request_started = Some(Instant::now());
    }
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: the listener is fine, the process or
/// system is out of something; retry later instead of spinning.
fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23) | Some(24) | Some(105) | Some(12))
}

/// Sweep period: fine enough for the shortest configured timeout.
pub fn tick(c: &Config) -> Duration {
    let mut shortest = c.http_request_timeout;
    if !c.http_idle_timeout.is_zero() {
        shortest = shortest.min(c.http_idle_timeout);
    }
    (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}
