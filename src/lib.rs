//! hayate: a small synchronous BitTorrent tracker.
//!
//! The public surface the binary and the tests use: [`Config`], [`start`]
//! (binds, spawns the threads, returns a [`Server`] handle with the bound
//! addresses) and [`run`] (the binary's main loop: start, wait for a
//! signal or a dead thread, stop).
// `deny`, not `forbid`: one module (`sys`, the system calls std, mio and
// socket2 lack, and a cache prefetch hint) allows it, with a SAFETY note
// on each block.
#![deny(unsafe_code)]

pub mod access;
pub mod cli;
pub mod clock;
pub mod config;
pub mod core;
pub mod db;
pub mod http;
pub mod live;
pub mod notify;
pub mod private;
pub mod rng;
pub mod server;
pub mod snapshot;
pub mod stats;
pub mod sys;
pub mod udp;
pub mod worker;

use std::process::ExitCode;
use std::time::Duration;

/// SIGTERM and SIGINT stop the tracker, SIGHUP reloads it, SIGUSR1
/// re-reads users, torrents, tokens and whitelist from the database.
const HANDLED_SIGNALS: [i32; 4] = [
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGHUP,
    signal_hook::consts::SIGUSR1,
];

/// How often `systemctl status` gets a fresh summary line.
const STATUS_EVERY: Duration = Duration::from_secs(30);

pub use config::Config;
pub use server::{start, Event, Server};

/// Runs the tracker until SIGTERM/SIGINT; the binary's exit status.
/// SIGHUP calls `reread` (the binary re-parses its flags and conf file)
/// and applies what changed.
pub fn run(config: Config, reread: impl Fn() -> Result<Config, String>) -> ExitCode {
    let rust_log = init_logging();
    log::set_max_level(effective_level(config.log_level, rust_log));
    let notify = notify::Notifier::from_env();
    // Handlers first: from here on a signal is queued for the supervisor
    // instead of killing the process mid-start.
    let signals = match signal_hook::iterator::Signals::new(HANDLED_SIGNALS) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hayate: signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match start(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hayate: {e}");
            // A database that cannot be opened or holds a foreign schema
            // is the operator's to fix, like a bad config: status 2.
            return match e.kind() {
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => {
                    ExitCode::from(2)
                }
                _ => ExitCode::FAILURE,
            };
        }
    };
    if let Err(e) = forward_signals(&server, signals) {
        eprintln!("hayate: signals: {e}");
        server.shutdown();
        return ExitCode::FAILURE;
    }
    let http = server.http_addrs().iter().map(|a| format!("http://{a}"));
    let udp = server.udp_addrs().iter().map(|a| format!("udp://{a}"));
    let addrs: Vec<String> = http.chain(udp).collect();
    log::info!(
        "hayate {} serving {} with {} workers",
        env!("CARGO_PKG_VERSION"),
        addrs.join(", "),
        server.shared().config.load().worker_count()
    );
    notify.ready(&status_line(&server));
    // Any thread ending before we asked it to is a failure of the process.
    let status = loop {
        let Some(event) = server.next_event_within(STATUS_EVERY) else {
            notify.status(&status_line(&server));
            continue;
        };
        match event {
            Event::Signal(signal_hook::consts::SIGHUP) => {
                notify.reloading();
                match reread() {
                    Ok(new) => {
                        let level = effective_level(new.log_level, rust_log);
                        let changes = server.reload(new);
                        log::set_max_level(level);
                        if changes.is_empty() {
                            log::info!("reload: nothing changed");
                        }
                        for change in changes {
                            log::info!("reload: {change}");
                        }
                    }
                    Err(e) => log::error!("reload failed, running config kept: {e}"),
                }
                // `systemctl reload` sends SIGHUP: in private mode it
                // re-reads the database too.
                server.reload_database();
                notify.ready(&status_line(&server));
            }
            Event::Signal(signal_hook::consts::SIGUSR1) => {
                if !server.reload_database() {
                    log::info!("SIGUSR1: no database in public mode, nothing to reload");
                }
            }
            Event::Signal(sig) => {
                log::info!("signal {sig}: shutting down");
                break ExitCode::SUCCESS;
            }
            Event::Exited(name) => {
                log::error!("thread {name} ended unexpectedly: shutting down");
                break ExitCode::FAILURE;
            }
        }
    };
    notify.stopping();
    let summary = status_line(&server);
    server.shutdown();
    log::info!("stopped: {summary}");
    status
}

/// One line for logs and `systemctl status`: torrents, peers, requests.
fn status_line(server: &Server) -> String {
    let shared = server.shared();
    shared.stats.summary(shared.private.as_ref())
}

/// A `signals` thread that turns SIGTERM/SIGINT/SIGHUP into supervisor events.
fn forward_signals(
    server: &Server,
    mut signals: signal_hook::iterator::Signals,
) -> std::io::Result<()> {
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

/// env_logger to stderr. `RUST_LOG`, when set, fixes the filter (returns
/// true); otherwise everything passes the logger and `log::set_max_level`
/// applies `log_level`, so a reload can change it. Under journald
/// (`JOURNAL_STREAM` set) lines carry no timestamp of their own.
fn init_logging() -> bool {
    let mut builder = env_logger::Builder::new();
    let rust_log = std::env::var("RUST_LOG").ok();
    match &rust_log {
        Some(spec) => {
            builder.parse_filters(spec);
        }
        None => {
            builder.filter_level(log::LevelFilter::Trace);
        }
    }
    if stderr_is_journal() {
        builder.format_timestamp(None);
    }
    let _ = builder.try_init();
    rust_log.is_some()
}

/// True when stderr is the journal stream systemd named in `JOURNAL_STREAM`
/// (`device:inode`); a child whose stderr was redirected elsewhere keeps
/// its timestamps.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(named) = std::env::var("JOURNAL_STREAM").ok() else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    named == format!("{}:{}", meta.dev(), meta.ino())
}

/// The level to enforce: `RUST_LOG` wins over the config.
fn effective_level(configured: log::LevelFilter, rust_log: bool) -> log::LevelFilter {
    if rust_log {
        log::max_level()
    } else {
        configured
    }
}
