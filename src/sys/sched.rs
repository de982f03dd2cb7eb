//! The calling thread's scheduling class: background threads (the
//! flusher's SQLite commits) step aside for the workers.

use std::io;

/// Puts the calling thread in Linux's `SCHED_IDLE` class: it runs when
/// no normal thread wants the core, and a worker woken by a packet
/// preempts it at once. On a saturated core it gets only a sliver: its
/// owner must watch for falling behind and go back to `normal`.
pub fn idle() -> io::Result<()> {
    set_policy(libc::SCHED_IDLE)
}

/// Puts the calling thread back in the normal class (`SCHED_OTHER`).
pub fn normal() -> io::Result<()> {
    set_policy(libc::SCHED_OTHER)
}

fn set_policy(policy: libc::c_int) -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0
    // is the calling thread; the call reads nothing else.
    let rc = unsafe { libc::sched_setscheduler(0, policy, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// True when the calling thread is in the idle class.
#[cfg(test)]
pub fn is_idle() -> bool {
    // SAFETY: no arguments but the calling thread (pid 0).
    unsafe { libc::sched_getscheduler(0) == libc::SCHED_IDLE }
}
