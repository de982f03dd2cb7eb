//! The UDP tracker (BEP 15, BEP 41), served by the same worker threads as
//! HTTP: the codec (`codec`), stateless connection IDs (`connid`), and the
//! per-worker sockets and request handling (`front`).

pub mod codec;
pub mod connid;
pub mod front;
