//! The system calls std, mio and socket2 do not offer, wrapped for the
//! rest of the crate: batched UDP receive and send (`mmsg`: `recvmmsg`,
//! `sendmmsg`), TCP_DEFER_ACCEPT on the HTTP listeners (`defer`), a
//! reply's last bytes held for the FIN (`fin`), a cache prefetch hint
//! for the store (`prefetch`) and the flusher's scheduling class
//! (`sched`). The
//! crate's only `unsafe` code is here (`lib.rs` denies it everywhere
//! else); each block carries a `SAFETY:` note saying why it is sound.
#![allow(unsafe_code)]

pub mod defer;
pub mod fin;
pub mod mmsg;
pub mod prefetch;
pub mod sched;
