//! The run's timing, shared read-only by every sending thread: when it
//! started, when warm-up ends, when to stop, how requests are paced.

use crate::stats::{self, Counters, Shared};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Timing and shape of the run.
pub struct Plan {
    pub start: Instant,
    /// Counts handed over before this (ns since start) are dropped.
    pub warmup_ns: u64,
    /// Threads stop sending at this time (ns since start).
    pub end_ns: u64,
    /// A request unanswered this long is a timeout.
    pub timeout_ns: u64,
    /// Closed loop: requests in flight per thread.
    pub concurrency: usize,
    /// Open loop: nanoseconds between two sends of one lane.
    pub period_ns: Option<f64>,
    /// Set by the main thread to stop everyone early.
    pub stop: AtomicBool,
}

impl Plan {
    /// Nanoseconds since the start of the run.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// True once the run is over for the sending threads.
    pub fn over(&self, now: u64) -> bool {
        now >= self.end_ns || self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps until `due` (ns since start), at most `cap`.
    pub fn sleep_until(&self, due: u64, cap: Duration) {
        let now = self.now();
        if due > now {
            std::thread::sleep(Duration::from_nanos(due - now).min(cap));
        }
    }
}

/// A thread's counts and when it last handed them over.
pub struct Tally {
    pub c: Counters,
    last_flush: u64,
    shared: Shared,
}

impl Tally {
    /// Counts for the thread owning `shared`.
    pub fn new(shared: Shared) -> Tally {
        Tally {
            c: Counters::default(),
            last_flush: 0,
            shared,
        }
    }

    /// Hands the counts over every `stats::FLUSH`; during warm-up they are
    /// dropped instead.
    pub fn tick(&mut self, plan: &Plan, now: u64) {
        if now - self.last_flush.min(now) >= stats::FLUSH.as_nanos() as u64 {
            self.hand_over(plan, now);
        }
    }

    /// Hands the counts over now (at thread exit).
    pub fn hand_over(&mut self, plan: &Plan, now: u64) {
        self.last_flush = now;
        if now < plan.warmup_ns {
            self.c = Counters::default();
        } else {
            stats::flush(&mut self.c, &self.shared);
        }
    }
}
