//! hayate: a small synchronous BitTorrent tracker.
//!
//! The public surface the binary and the tests use: [`Config`], [`start`]
//! (binds, spawns the threads, returns a [`Server`] handle with the bound
//! addresses) and [`run`] (the binary's main loop: start, wait for a
//! signal or a dead thread, stop).
#![forbid(unsafe_code)]

pub mod cli;
pub mod clock;
pub mod config;
pub mod core;
pub mod http;
pub mod rng;
pub mod server;
pub mod stats;
pub mod udp;
pub mod worker;

use std::process::ExitCode;

pub use config::Config;
pub use server::{start, Event, Server};

/// Runs the tracker until SIGTERM/SIGINT; the binary's exit status.
pub fn run(config: Config) -> ExitCode {
    init_logging(config.log_level);
    let server = match start(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hayate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let http = server.http_addrs().iter().map(|a| format!("http://{a}"));
    let udp = server.udp_addrs().iter().map(|a| format!("udp://{a}"));
    let addrs: Vec<String> = http.chain(udp).collect();
    log::info!(
        "hayate {} serving {} with {} workers",
        env!("CARGO_PKG_VERSION"),
        addrs.join(", "),
        server.shared().config.worker_count()
    );
    if let Err(e) = forward_signals(&server) {
        eprintln!("hayate: signals: {e}");
        server.shutdown();
        return ExitCode::FAILURE;
    }
    // Any thread ending before we asked it to is a failure of the process.
    let status = match server.next_event() {
        Some(Event::Signal(sig)) => {
            log::info!("signal {sig}: shutting down");
            ExitCode::SUCCESS
        }
        Some(Event::Exited(name)) => {
            log::error!("thread {name} ended unexpectedly: shutting down");
            ExitCode::FAILURE
        }
        None => ExitCode::FAILURE,
    };
    server.shutdown();
    log::info!("stopped");
    status
}

/// A `signals` thread that turns SIGTERM/SIGINT into supervisor events.
fn forward_signals(server: &Server) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    let tx = server.events();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if tx.send(Event::Signal(sig)).is_err() {
                    return;
                }
            }
        })?;
    Ok(())
}

/// env_logger to stderr at `level`; `RUST_LOG` overrides.
fn init_logging(level: log::LevelFilter) {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    let _ = builder.try_init();
}
