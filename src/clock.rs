//! The tracker's coarse clock: whole seconds since start, as `u32` (136
//! years). Peer records keep last-seen times in it. Tests move it forward
//! with `advance` instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Seconds since the tracker started, plus any test offset.
#[derive(Clone, Debug)]
pub struct Clock {
    start: Instant,
    offset_secs: Arc<AtomicU64>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// A clock starting at 0 now.
    pub fn new() -> Clock {
        Clock {
            start: Instant::now(),
            offset_secs: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Whole seconds since start.
    pub fn now(&self) -> u32 {
        let secs = self.start.elapsed().as_secs() + self.offset_secs.load(Ordering::Relaxed);
        u32::try_from(secs).unwrap_or(u32::MAX)
    }

    /// Moves the clock forward (tests: expiry without sleeping).
    pub fn advance(&self, by: Duration) {
        self.offset_secs.fetch_add(by.as_secs(), Ordering::Relaxed);
    }
}

/// A duration in whole clock seconds, saturating.
pub fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}
