//! One worker thread: a `mio::Poll` that serves this worker's HTTP
//! listeners and connections and its UDP sockets, against the shared store.
//! No hand-off between threads on the hot path: the thread that reads a
//! request answers it.
//!
//! Tokens: `WAKER` (shutdown), then the ranges owned by each front
//! (`http::server::LISTENER_BASE`, `udp::front::UDP_BASE`,
//! `http::server::CONN_BASE`). Work a front could not finish in one turn
//! (a pipelining connection, a busy UDP socket) is resumed before the next
//! poll, which then does not sleep.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use crate::access::AccessList;
use crate::config::Config;
use crate::http::server::{tick, HttpFront, CONN_BASE};
use crate::live::Cached;
use crate::server::Shared;
use crate::udp::front::{UdpFront, UDP_BASE};

/// The waker's token (shutdown).
pub const WAKER: Token = Token(0);
/// How long shutdown waits for HTTP replies still being written.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// A worker: its poll and both fronts.
pub struct Worker {
    /// Its number (`worker-N`): its private ledger slot.
    id: usize,
    poll: Poll,
    shared: Arc<Shared>,
    http: HttpFront,
    udp: UdpFront,
    /// UDP sockets that used up their turn with datagrams still waiting.
    udp_more: Vec<usize>,
    /// This worker's copy of the live configuration.
    config: Cached<Config>,
    /// This worker's copy of the live access lists.
    access: Cached<AccessList>,
}

impl Worker {
    /// A worker over its poll (with the waker registered) and fronts.
    pub fn new(
        id: usize,
        poll: Poll,
        shared: Arc<Shared>,
        http: HttpFront,
        udp: UdpFront,
    ) -> Worker {
        Worker {
            id,
            poll,
            config: Cached::new(&shared.config),
            access: Cached::new(&shared.access),
            shared,
            http,
            udp,
            udp_more: Vec::new(),
        }
    }

    /// Serves until shutdown is requested, then finishes HTTP replies in
    /// flight (bounded by `DRAIN_TIME`).
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut tick = tick(self.config.get());
        loop {
            let timeout = if self.udp_more.is_empty() {
                self.http.timeout(tick)
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    log::error!("poll: {e}");
                    std::thread::sleep(tick);
                }
                continue;
            }
            // After the wait, before serving the batch: a reload that
            // happened while this worker slept applies to these requests.
            // Two atomic loads per wakeup.
            if self.config.refresh(&self.shared.config) {
                let config = self.config.get();
                tick = crate::http::server::tick(config);
                self.http.set_config(Arc::clone(config));
                self.udp.set_config(Arc::clone(config));
            }
            if self.access.refresh(&self.shared.access) {
                self.http.set_access(Arc::clone(self.access.get()));
                self.udp.set_access(Arc::clone(self.access.get()));
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    Token(t) if (UDP_BASE..CONN_BASE).contains(&t) => {
                        if self.udp.on_readable(t - UDP_BASE) {
                            self.udp_more.push(t - UDP_BASE);
                        }
                    }
                    token => self.http.on_event(token),
                }
            }
            for i in std::mem::take(&mut self.udp_more) {
                if self.udp.on_readable(i) {
                    self.udp_more.push(i);
                }
            }
            self.http.after_events(tick);
            if let Some(private) = &self.shared.private {
                private.hand_over(self.id, false);
            }
            if self.shared.shutdown.load(Ordering::Acquire) {
                self.drain();
                return;
            }
        }
    }

    fn drain(&mut self) {
        self.http.begin_drain();
        let deadline = Instant::now() + DRAIN_TIME;
        let mut events = Events::with_capacity(256);
        while !self.http.is_idle() && Instant::now() < deadline {
            let _ = self.poll.poll(&mut events, Some(Duration::from_millis(50)));
            for event in events.iter() {
                if event.token().0 >= CONN_BASE {
                    self.http.on_event(event.token());
                }
            }
            self.http.close_marked();
        }
        self.http.close_all();
    }
}
