//! A value that is replaced while the tracker runs (SIGHUP reloads of the
//! configuration and access lists) and read on every request.
//!
//! Writers swap an `Arc` under a short mutex and bump a generation counter.
//! Readers keep their own `Arc` (a `Cached`) and look at the counter once
//! per poll-loop turn: one shared atomic load, no lock, and no reader ever
//! waits for another. The mutex is taken only to pick up a new value.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The current value and its generation.
pub struct Live<T> {
    value: Mutex<Arc<T>>,
    generation: AtomicU64,
}

impl<T> Live<T> {
    /// Starts at generation 0 with `value`.
    pub fn new(value: T) -> Live<T> {
        Live {
            value: Mutex::new(Arc::new(value)),
            generation: AtomicU64::new(0),
        }
    }

    /// The current value.
    pub fn load(&self) -> Arc<T> {
        Arc::clone(&self.value.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the value; readers pick it up at their next refresh.
    pub fn store(&self, value: T) {
        *self.value.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(value);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Bumped by every `store`.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// A reader's copy of a `Live` value.
pub struct Cached<T> {
    value: Arc<T>,
    generation: u64,
}

impl<T> Cached<T> {
    /// The current value of `live`.
    pub fn new(live: &Live<T>) -> Cached<T> {
        // Read the generation first: a store racing with us is then seen
        // again at the next refresh rather than missed.
        let generation = live.generation();
        Cached {
            value: live.load(),
            generation,
        }
    }

    /// Picks up a newer value; true if there was one.
    pub fn refresh(&mut self, live: &Live<T>) -> bool {
        if live.generation() == self.generation {
            return false;
        }
        *self = Cached::new(live);
        true
    }

    /// The value.
    pub fn get(&self) -> &Arc<T> {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_see_stores_at_refresh() {
        let live = Live::new(1);
        let mut a = Cached::new(&live);
        assert!(!a.refresh(&live));
        live.store(2);
        assert_eq!(**a.get(), 1, "no change before refresh");
        assert!(a.refresh(&live));
        assert_eq!(**a.get(), 2);
        assert!(!a.refresh(&live));
        assert_eq!(*live.load(), 2);
    }
}
