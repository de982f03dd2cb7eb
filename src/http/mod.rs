//! The HTTP front: our own mio server loop, request parsing, routes and
//! bencoded replies.

pub mod query;
pub mod reply;
