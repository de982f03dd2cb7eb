//! Start and stop: bind every socket, spawn the named threads, supervise.
//!
//! Threads: `worker-N` (N = `workers`; each one mio poll loop over its own
//! SO_REUSEPORT listeners), `reaper` (expiry + gauges every
//! `reap_interval`, periodic state saves), and in the binary a `signals`
//! thread. Every thread reports its exit on one channel; the supervisor
//! (`run`, or a test via `Server::next_event`) turns an unexpected exit
//! into a shutdown with a non-zero status. The swarm state file is loaded
//! before the workers start and saved after every thread has stopped.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;
use std::time::{Duration, Instant};

use mio::{Poll, Waker};
use socket2::{Domain, Protocol, Socket, Type};

use crate::access::{self, AccessList};
use crate::clock::Clock;
use crate::config::Config;
use crate::config::Mode;
use crate::core::announce::Tracker;
use crate::http::limits::{ConnLimiter, FullScrapeLimiter};
use crate::http::server::HttpFront;
use crate::live::Live;
use crate::private::flusher::{self, Flusher, Order};
use crate::private::Private;
use crate::snapshot::{self, SaveTimer};
use crate::stats::{Stats, WorkerStats};
use crate::sys::defer;
use crate::udp::connid::ConnIds;
use crate::udp::front::UdpFront;
use crate::worker::{Worker, WAKER};

/// Keys a reload cannot change: sockets, threads and the store's shape are
/// made once at start.
pub const RESTART_KEYS: [&str; 9] = [
    "http_listen",
    "udp_listen",
    "udp_recv_buffer",
    "workers",
    "stripes",
    "mode",
    "database",
    "gazelle_schema",
    "readonly",
];

/// Listen backlog for each HTTP listener.
const LISTEN_BACKLOG: i32 = 1024;

/// State every thread shares, read-only apart from its atomics and locks.
pub struct Shared {
    /// The configuration, replaced by reloads (workers cache it).
    pub config: Live<Config>,
    /// Info-hash allow/deny lists, replaced by reloads (workers cache it).
    pub access: Live<AccessList>,
    /// The list files' mtimes as last loaded (the reaper watches them).
    access_mtimes: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
    /// The swarms and their rules.
    pub tracker: Tracker,
    /// Counters and gauges.
    pub stats: Stats,
    /// HTTP connection admission.
    pub limiter: ConnLimiter,
    /// One full scrape per address per `full_scrape_interval`.
    pub full_scrapes: FullScrapeLimiter,
    /// UDP connection IDs (one key for all workers: the kernel may deliver
    /// a client's connect and its announce to different workers).
    pub conn_ids: ConnIds,
    /// Set once to stop every thread.
    pub shutdown: AtomicBool,
    /// Private mode's users, torrents and deltas; `None` in public mode.
    pub private: Option<Private>,
}

/// What a request handler reads: the shared state, and the worker's own
/// copies of the live configuration and access lists, and its counters.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// Shared tracker state.
    pub shared: &'a Shared,
    /// The worker's copy of the configuration.
    pub config: &'a Config,
    /// The worker's copy of the access lists.
    pub access: &'a AccessList,
    /// The worker's counters.
    pub stats: &'a WorkerStats,
}

/// Something the supervisor must react to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A signal arrived (number).
    Signal(i32),
    /// A thread ended (its name); during a shutdown this is expected.
    Exited(String),
}

/// A running tracker.
pub struct Server {
    shared: Arc<Shared>,
    http_addrs: Vec<SocketAddr>,
    udp_addrs: Vec<SocketAddr>,
    wakers: Vec<Arc<Waker>>,
    threads: Vec<JoinHandle<()>>,
    /// Private mode: the flusher (stopped after every other thread) and
    /// its order channel.
    flusher: Option<(JoinHandle<()>, crossbeam_channel::Sender<Order>)>,
    events_tx: Sender<Event>,
    events_rx: Receiver<Event>,
}

/// Sends the thread's name when dropped: at its end, panics included.
struct ExitNotice(String, Sender<Event>);

impl Drop for ExitNotice {
    fn drop(&mut self) {
        let _ = self.1.send(Event::Exited(std::mem::take(&mut self.0)));
    }
}

/// Binds every socket and starts every thread. Errors name what failed
/// (`bind 0.0.0.0:6969: Address already in use`).
pub fn start(config: Config) -> io::Result<Server> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let workers = config.worker_count();
    let clock = Clock::new();
    // Private mode: the database first (a file that cannot be opened or
    // holds a foreign schema stops the start), then its users, torrents
    // and live peers, all before any socket is served.
    let private = match config.mode {
        Mode::Public => None,
        Mode::Private => {
            let bad = |e: crate::db::DbError| io::Error::new(io::ErrorKind::InvalidData, e.0);
            let options = crate::db::Options {
                schema: config.gazelle_schema,
                readonly: config.readonly,
            };
            let mut db = crate::db::open(&config.database, options).map_err(bad)?;
            let private = Private::new(config.stripes, workers, db.owns_site_tables());
            flusher::start(&private, db.as_mut(), &clock, config.peer_timeout).map_err(bad)?;
            Some((private, db))
        }
    };
    let (private, db) = match private {
        Some((p, db)) => (Some(p), Some(db)),
        None => (None, None),
    };
    let shared = Arc::new(Shared {
        private,
        tracker: Tracker::new(&config, clock),
        stats: Stats::new(workers),
        limiter: ConnLimiter::default(),
        full_scrapes: FullScrapeLimiter::default(),
        conn_ids: ConnIds::default(),
        shutdown: AtomicBool::new(false),
        access: Live::new(access::build(
            &config.allowlist,
            &config.denylist,
            &AccessList::default(),
        )),
        access_mtimes: Mutex::new((
            access::mtime(&config.allowlist),
            access::mtime(&config.denylist),
        )),
        config: Live::new(config.clone()),
    });
    log_access(&shared.access.load());

    // Worker 0 binds first; with port 0 the kernel picks one and the other
    // workers join that same port through SO_REUSEPORT.
    let mut tcp: Vec<Vec<std::net::TcpListener>> = (0..workers).map(|_| Vec::new()).collect();
    let mut http_addrs = Vec::new();
    for wanted in &config.http_listen {
        probe_free(*wanted, Type::STREAM).map_err(|e| context(e, "bind", wanted))?;
        let mut addr = *wanted;
        for listeners in tcp.iter_mut() {
            let l = bind_tcp(addr).map_err(|e| context(e, "bind", wanted))?;
            addr = l.local_addr()?;
            listeners.push(l);
        }
        http_addrs.push(addr);
    }
    let mut udp: Vec<Vec<std::net::UdpSocket>> = (0..workers).map(|_| Vec::new()).collect();
    let mut udp_addrs = Vec::new();
    for wanted in &config.udp_listen {
        probe_free(*wanted, Type::DGRAM).map_err(|e| context(e, "bind udp", wanted))?;
        let mut addr = *wanted;
        for (w, sockets) in udp.iter_mut().enumerate() {
            let s = bind_udp(addr, config.udp_recv_buffer, w == 0)
                .map_err(|e| context(e, "bind udp", wanted))?;
            addr = s.local_addr()?;
            sockets.push(s);
        }
        udp_addrs.push(addr);
    }

    // Before any worker runs: nothing changes the store or reads the clock
    // while the snapshot goes in. After the binds, so a port in use fails
    // fast instead of after a long load.
    snapshot::restore_at_start(&shared.tracker, &config, &shared.stats.reaper_gauges);
    if !config.state_file.is_empty() {
        // Restored swarms of torrents the access lists now refuse go before
        // anyone is served, not at the first reap.
        let access = shared.access.load();
        shared
            .tracker
            .reap(&shared.stats.reaper_gauges, &|hash| access.permits(hash));
    }

    let (events_tx, events_rx) = channel();
    let mut server = Server {
        shared: Arc::clone(&shared),
        http_addrs,
        udp_addrs,
        wakers: Vec::new(),
        threads: Vec::new(),
        flusher: None,
        events_tx,
        events_rx,
    };
    for (id, (listeners, sockets)) in tcp.into_iter().zip(udp).enumerate() {
        let poll = Poll::new()?;
        server
            .wakers
            .push(Arc::new(Waker::new(poll.registry(), WAKER)?));
        let http = HttpFront::new(id, poll.registry(), Arc::clone(&shared), listeners)?;
        let udp = UdpFront::new(id, poll.registry(), Arc::clone(&shared), sockets)?;
        let worker = Worker::new(id, poll, Arc::clone(&shared), http, udp);
        server.spawn(format!("worker-{id}"), move || worker.run())?;
    }
    let reaper_shared = Arc::clone(&shared);
    server.spawn("reaper".into(), move || reaper(&reaper_shared))?;
    if let Some(db) = db {
        // flusher: the only thread that writes the database.
        let (orders_tx, orders_rx) = crossbeam_channel::unbounded();
        let flusher_shared = Arc::clone(&shared);
        let notice = ExitNotice("flusher".into(), server.events_tx.clone());
        let handle = std::thread::Builder::new()
            .name("flusher".into())
            .spawn(move || {
                let _notice = notice;
                let Some(private) = flusher_shared.private.as_ref() else {
                    return;
                };
                let config = || flusher_shared.config.load();
                Flusher::new(private, db).run(&orders_rx, config);
            })?;
        server.flusher = Some((handle, orders_tx));
    }
    Ok(server)
}

impl Server {
    fn spawn(&mut self, name: String, body: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let notice = ExitNotice(name.clone(), self.events_tx.clone());
        let handle = std::thread::Builder::new().name(name).spawn(move || {
            let _notice = notice;
            body();
        })?;
        self.threads.push(handle);
        Ok(())
    }

    /// The bound HTTP addresses, in `http_listen` order (ports resolved).
    pub fn http_addrs(&self) -> &[SocketAddr] {
        &self.http_addrs
    }

    /// The bound UDP addresses, in `udp_listen` order (ports resolved).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// The shared state (config, tracker, stats).
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The tracker clock (tests move it forward).
    pub fn clock(&self) -> &Clock {
        self.shared.tracker.clock()
    }

    /// A sender for the supervisor's events (the binary's signal thread).
    pub fn events(&self) -> Sender<Event> {
        self.events_tx.clone()
    }

    /// Waits for the next signal or thread exit.
    pub fn next_event(&self) -> Option<Event> {
        self.events_rx.recv().ok()
    }

    /// Like `next_event`, but gives up after `within` (None).
    pub fn next_event_within(&self, within: Duration) -> Option<Event> {
        self.events_rx.recv_timeout(within).ok()
    }

    /// Applies a re-read configuration: what can change live takes effect
    /// at each worker's next loop turn; keys that need a restart keep their
    /// running values and are reported. Returns one line per changed key.
    pub fn reload(&self, mut new: Config) -> Vec<String> {
        let old = self.shared.config.load();
        let mut report = Vec::new();
        for key in crate::config::KEYS {
            let (was, now) = (key.get(&old), key.get(&new));
            if was == now {
                continue;
            }
            if RESTART_KEYS.contains(&key.name) {
                report.push(format!(
                    "{}: {was} → {now} needs a restart; still {was}",
                    key.name
                ));
            } else {
                report.push(format!("{}: {was} → {now}", key.name));
            }
        }
        new.http_listen.clone_from(&old.http_listen);
        new.udp_listen.clone_from(&old.udp_listen);
        new.udp_recv_buffer = old.udp_recv_buffer;
        new.workers = old.workers;
        new.stripes = old.stripes;
        new.mode = old.mode;
        new.database.clone_from(&old.database);
        new.gazelle_schema = old.gazelle_schema;
        new.readonly = old.readonly;
        self.shared.tracker.apply(&new);
        self.shared.reload_access(&new);
        self.shared.config.store(new);
        report
    }

    /// Stops accepting, lets workers finish replies in flight, stops every
    /// thread and waits for them, then saves the swarms to `state_file`
    /// (if set; a failed save is logged, the shutdown goes on).
    /// Private mode: asks the flusher to commit, then re-read users,
    /// torrents, tokens and whitelist from the database (SIGUSR1).
    pub fn reload_database(&self) -> bool {
        match &self.flusher {
            Some((_, orders)) => orders.send(Order::Reload).is_ok(),
            None => false,
        }
    }

    pub fn shutdown(self) {
        self.shared.shutdown.store(true, Ordering::Release);
        for w in &self.wakers {
            let _ = w.wake();
        }
        for t in &self.threads {
            t.thread().unpark();
        }
        for t in self.threads {
            let _ = t.join();
        }
        // Last: the workers and the reaper are gone, so the flusher's
        // final commit holds every delta they recorded.
        if let Some((handle, orders)) = self.flusher {
            let _ = orders.send(Order::Stop);
            let _ = handle.join();
        }
        // Every thread has stopped: the store no longer changes.
        snapshot::save_logged(&self.shared.tracker, &self.shared.config.load(), false);
    }
}

/// Fails with "address in use" if anything already holds `addr`, even a
/// socket with SO_REUSEPORT (another hayate). Without this check a second
/// instance would silently share the port and split the traffic. A TCP
/// probe sets SO_REUSEADDR (refused next to a listener, allowed next to a
/// previous run's TIME_WAIT connections); a UDP probe sets nothing, since
/// for UDP SO_REUSEADDR itself would allow sharing.
fn probe_free(addr: SocketAddr, ty: Type) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = Socket::new(Domain::for_address(addr), ty, None)?;
    if addr.is_ipv6() {
        probe.set_only_v6(true)?;
    }
    if ty == Type::STREAM {
        probe.set_reuse_address(true)?;
    }
    probe.bind(&addr.into())
}

/// One non-blocking SO_REUSEPORT listener (IPv6 sockets IPV6_V6ONLY, so
/// `0.0.0.0` and `[::]` can both be bound), with TCP_NODELAY (Linux copies
/// it to every accepted socket, which saves a `setsockopt` per connection)
/// and TCP_DEFER_ACCEPT (`sys::defer`).
fn bind_tcp(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nodelay(true)?;
    if let Err(e) = defer::set_defer_accept(&socket, defer::DEFER_SECS) {
        // Only a cost: connections are then accepted at the handshake.
        log::warn!("http {addr}: TCP_DEFER_ACCEPT refused: {e}");
    }
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// One non-blocking SO_REUSEPORT UDP socket with the receive buffer asked
/// for; the kernel clamps it to `net.core.rmem_max`, so what it granted is
/// logged (once per address).
fn bind_udp(
    addr: SocketAddr,
    recv_buffer: usize,
    log_grant: bool,
) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    if let Err(e) = socket.set_recv_buffer_size(recv_buffer) {
        log::warn!("udp {addr}: receive buffer of {recv_buffer} bytes refused: {e}");
    }
    socket.bind(&addr.into())?;
    if log_grant {
        // Linux reports double the usable size (bookkeeping included).
        let granted = socket.recv_buffer_size().unwrap_or(0);
        let bound = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .unwrap_or(addr);
        log::info!("udp {bound}: receive buffer {granted} bytes granted ({recv_buffer} asked)");
    }
    Ok(socket.into())
}

/// An error with what was being done and to which address.
fn context(e: io::Error, what: &str, addr: &SocketAddr) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {addr}: {e}"))
}

impl Shared {
    /// Re-reads the allow/deny lists named in `config` and swaps them in.
    pub fn reload_access(&self, config: &Config) {
        let list = access::build(&config.allowlist, &config.denylist, &self.access.load());
        log_access(&list);
        self.access.store(list);
        *self.access_mtimes.lock().unwrap_or_else(|p| p.into_inner()) = (
            access::mtime(&config.allowlist),
            access::mtime(&config.denylist),
        );
    }

    /// Reloads the lists if a file's mtime changed since the last load.
    fn reload_access_if_changed(&self, config: &Config) {
        let now = (
            access::mtime(&config.allowlist),
            access::mtime(&config.denylist),
        );
        let changed = *self.access_mtimes.lock().unwrap_or_else(|p| p.into_inner()) != now;
        if changed {
            log::info!("access list file changed: reloading");
            self.reload_access(config);
        }
    }
}

fn log_access(list: &AccessList) {
    match list.sizes() {
        (None, 0) => {}
        (allow, deny) => log::info!(
            "access lists: {} allowed, {deny} denied",
            allow.map_or("all".to_string(), |n| n.to_string())
        ),
    }
}

/// The reaper thread: every `reap_interval`, expire and recount; every
/// `state_save_interval` (when set), save the swarms.
fn reaper(shared: &Shared) {
    let mut next = Instant::now() + shared.config.load().reap_interval;
    let mut saves = SaveTimer::default();
    while !shared.shutdown.load(Ordering::Acquire) {
        let now = Instant::now();
        let config = shared.config.load();
        let save_at = saves.due(&config, now);
        if save_at.is_some_and(|at| now >= at) {
            snapshot::save_logged(&shared.tracker, &config, true);
            saves.saved(Instant::now());
            continue;
        }
        let wake = save_at.map_or(next, |at| at.min(next));
        if now < wake {
            std::thread::park_timeout(wake - now);
            continue;
        }
        let config = shared.config.load();
        if let Some(private) = &shared.private {
            let cutoff = shared
                .tracker
                .clock()
                .now()
                .saturating_sub(crate::clock::secs(config.peer_timeout));
            private.reap(cutoff);
            private.prune_deleted(config.del_reason_lifetime);
        }
        shared.reload_access_if_changed(&config);
        let access = shared.access.load();
        let totals = shared
            .tracker
            .reap(&shared.stats.reaper_gauges, &|hash| access.permits(hash));
        if totals.longest_hold > Duration::from_millis(1) {
            log::debug!("reaper: a stripe was held {:?}", totals.longest_hold);
        }
        shared.stats.set_totals(totals);
        next = Instant::now() + shared.config.load().reap_interval;
    }
}

/// Lets a message through at most once per period (log flood control).
pub struct Throttle {
    period: Duration,
    next: Option<Instant>,
}

impl Throttle {
    /// At most one `ready()` per `period`.
    pub fn new(period: Duration) -> Throttle {
        Throttle { period, next: None }
    }

    /// True if a message may be emitted now.
    pub fn ready(&mut self) -> bool {
        let now = Instant::now();
        if self.next.is_some_and(|n| now < n) {
            return false;
        }
        self.next = Some(now + self.period);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The HTTP front no longer sets TCP_NODELAY per connection: it relies
    /// on accepted sockets inheriting it from the listener.
    #[test]
    fn accepted_sockets_inherit_nodelay() {
        for addr in ["127.0.0.1:0", "[::1]:0"] {
            let listener = bind_tcp(addr.parse().unwrap()).unwrap();
            let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            listener.set_nonblocking(false).unwrap();
            let (accepted, _) = listener.accept().unwrap();
            assert!(accepted.nodelay().unwrap(), "{addr}");
        }
    }

    /// Listeners defer accepting until a connection's first data.
    #[test]
    fn listeners_defer_accept() {
        for addr in ["127.0.0.1:0", "[::1]:0"] {
            let listener = bind_tcp(addr.parse().unwrap()).unwrap();
            assert_eq!(
                defer::defer_accept(&listener).unwrap(),
                defer::DEFER_SECS,
                "{addr}"
            );
        }
    }
}
