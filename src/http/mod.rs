//! The HTTP front: our own mio server loop (`server`), connection handling
//! and limits (`conn`, `limits`), client addresses behind proxies
//! (`client_ip`), routes, query decoding and bencoded replies.
//! ARCHITECTURE.md says why this is not tiny_http.

pub mod client_ip;
pub mod conn;
pub mod limits;
pub mod percent;
pub mod private;
pub mod query;
pub mod reply;
pub mod routes;
pub mod server;
