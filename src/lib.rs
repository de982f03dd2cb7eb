//! hayate: a small synchronous BitTorrent tracker.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod core;
pub mod http;

/// Runs the tracker until SIGTERM/SIGINT; the binary's exit status.
pub fn run(_config: config::Config) -> std::process::ExitCode {
    std::process::ExitCode::FAILURE
}
