//! TCP_DEFER_ACCEPT on the HTTP listeners: the kernel hands a connection
//! to `accept` only once its first data has arrived, not at the end of
//! the handshake. socket2 does not offer the option, so this is a raw
//! `setsockopt`.
//!
//! Why (issue 5): with a connection per request, the worker used to
//! accept many connections (a fifth, under hayate-load with 16 in flight)
//! before their request had arrived. Each of those cost a `recv` that
//! found nothing, an `epoll_ctl` to register, one more wakeup when the
//! request came and an `epoll_ctl` to deregister on close. With the option
//! the first `recv` after `accept` finds the request. A client that stays
//! silent is accepted anyway after `DEFER_SECS` (the kernel then takes the
//! handshake's last ACK), and the request timeout applies from there; until
//! then it holds no descriptor of ours, only the kernel's small request
//! socket.

use std::io;
use std::mem;
use std::os::fd::AsRawFd;

/// Seconds the kernel waits for a connection's first data before handing
/// it over anyway (Linux turns this into SYN-ACK retransmissions: 1 s is
/// one).
pub const DEFER_SECS: libc::c_int = 1;

/// Sets TCP_DEFER_ACCEPT to `secs` on a TCP socket (a listener).
pub fn set_defer_accept(socket: &impl AsRawFd, secs: libc::c_int) -> io::Result<()> {
    // SAFETY: setsockopt reads `optlen` bytes at `optval`, which points at
    // a live c_int of exactly that size; the descriptor is borrowed from a
    // live socket for the duration of the call.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&secs as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// TCP_DEFER_ACCEPT as the kernel holds it (seconds, rounded to whole
/// SYN-ACK retransmissions).
pub fn defer_accept(socket: &impl AsRawFd) -> io::Result<libc::c_int> {
    let mut secs: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes at `optval`, which
    // points at a live c_int of exactly that size, and `len` is a live
    // socklen_t; the descriptor is borrowed from a live socket.
    let r = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&mut secs as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r == 0 {
        Ok(secs)
    } else {
        Err(io::Error::last_os_error())
    }
}
