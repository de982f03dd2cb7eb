//! Running under systemd (issue 4): the binary's sd_notify messages on a
//! fake `$NOTIFY_SOCKET` (a path and the `@abstract` form) through start,
//! SIGHUP reload and SIGTERM, in order; log lines without timestamps under
//! journald (`$JOURNAL_STREAM`); the shipped unit file's ExecStart agrees
//! with the Makefile and the flags.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

use common::*;

/// How long to wait for one notification before failing.
const NOTIFY_WITHIN: Duration = Duration::from_secs(5);

/// Flags for a small tracker on ephemeral loopback ports.
const ARGS: &[&str] = &[
    "--http-listen",
    "127.0.0.1:0",
    "--udp-listen",
    "127.0.0.1:0",
    "--workers",
    "1",
];

/// The service manager's end: a datagram socket the tracker is pointed at.
struct FakeSystemd {
    socket: UnixDatagram,
    /// The `NOTIFY_SOCKET` value: a path, or `@name`.
    env: String,
    /// Removed on drop when the socket is a file.
    dir: Option<PathBuf>,
}

impl FakeSystemd {
    /// A socket file in a fresh temp dir.
    fn at_path() -> FakeSystemd {
        let dir =
            std::env::temp_dir().join(format!("hayate-notify-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        FakeSystemd::with(socket, path.to_str().unwrap().to_string(), Some(dir))
    }

    /// A socket in the abstract namespace (no file), as systemd uses.
    #[cfg(target_os = "linux")]
    fn abstract_name() -> FakeSystemd {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("hayate-notify-{}-{}", std::process::id(), unique());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).expect("bind abstract notify socket");
        FakeSystemd::with(socket, format!("@{name}"), None)
    }

    fn with(socket: UnixDatagram, env: String, dir: Option<PathBuf>) -> FakeSystemd {
        socket.set_read_timeout(Some(NOTIFY_WITHIN)).unwrap();
        FakeSystemd { socket, env, dir }
    }

    /// Starts the binary with `NOTIFY_SOCKET` pointing here.
    fn start(&self) -> Proc {
        Proc::start_with_env(ARGS, &[("NOTIFY_SOCKET", &self.env)])
    }

    /// The next message that is not a bare periodic `STATUS=` (those come
    /// every 30 s and may land anywhere in a slow run), as its lines.
    fn next(&self, p: &Proc, waiting_for: &str) -> Vec<String> {
        let mut buf = [0u8; 4096];
        loop {
            let n = self.socket.recv(&mut buf).unwrap_or_else(|e| {
                panic!(
                    "no {waiting_for} within {NOTIFY_WITHIN:?} ({e}); stderr:\n{}",
                    p.stderr_text()
                )
            });
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let lines: Vec<String> = text.split('\n').map(str::to_string).collect();
            if lines.iter().all(|l| l.starts_with("STATUS=")) {
                continue;
            }
            return lines;
        }
    }

    /// Asserts the next message is exactly `first` (plus, for READY=1, a
    /// status line) and returns the status text if there is one.
    fn expect(&self, p: &Proc, first: &str) -> Option<String> {
        let lines = self.next(p, first);
        assert_eq!(lines[0], first, "expected {first}, got {lines:?}");
        let status = lines
            .iter()
            .find_map(|l| l.strip_prefix("STATUS=").map(str::to_string));
        let unknown: Vec<_> = lines[1..]
            .iter()
            .filter(|l| !l.starts_with("STATUS="))
            .collect();
        assert!(unknown.is_empty(), "{first} came with {unknown:?}");
        status
    }

    /// Nothing more arrives (the socket is non-blocking for this check).
    fn assert_silent(&self) {
        self.socket.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 4096];
        let extra = self.socket.recv(&mut buf);
        assert!(
            extra.is_err(),
            "unexpected message after exit: {:?}",
            String::from_utf8_lossy(&buf[..extra.unwrap()])
        );
    }
}

impl Drop for FakeSystemd {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A status line as `systemctl status` shows it (the health line):
/// "hayate V up U: T torrents, P peers (S% seeders), R req/s, E errors/s".
fn assert_status(status: Option<String>, torrents: u64, peers: u64) {
    let status = status.expect("READY=1 comes with STATUS=");
    let want = format!(": {torrents} torrents, {peers} peers (");
    assert!(
        status.starts_with(&format!("hayate {} up ", env!("CARGO_PKG_VERSION")))
            && status.contains(&want)
            && status.contains("% seeders), ")
            && status.ends_with(" errors/s"),
        "status {status:?}, want hayate V up U{want}S% seeders), R req/s, E errors/s"
    );
}

/// SIGTERM, then STOPPING=1, exit 0 and silence.
fn stop(systemd: &FakeSystemd, mut p: Proc) {
    p.signal("TERM");
    assert_eq!(systemd.expect(&p, "STOPPING=1"), None);
    let status = p
        .wait_exit(NOTIFY_WITHIN)
        .unwrap_or_else(|| panic!("no exit after SIGTERM: {}", p.stderr_text()));
    assert!(status.success(), "{status:?}: {}", p.stderr_text());
    systemd.assert_silent();
}

#[test]
fn notify_ready_reload_stopping_in_order() {
    let systemd = FakeSystemd::at_path();
    let p = systemd.start();
    assert_status(systemd.expect(&p, "READY=1"), 0, 0);

    // One leecher, so the status after the reload has something to count.
    let r = get(p.http[0], &announce(&[4; 20], 6881, 1, ""));
    assert_eq!(failure(&r.bencode()), None);

    p.signal("HUP");
    assert_eq!(systemd.expect(&p, "RELOADING=1"), None);
    assert_status(systemd.expect(&p, "READY=1"), 1, 1);
    assert!(
        wait_until(NOTIFY_WITHIN, || p.stderr_text().contains("reload: ")),
        "no reload log line: {}",
        p.stderr_text()
    );

    // Still serving after the reload.
    let r = get(p.http[0], &announce(&[4; 20], 6882, 0, ""));
    assert_eq!(failure(&r.bencode()), None);
    stop(&systemd, p);
}

#[cfg(target_os = "linux")]
#[test]
fn notify_socket_in_the_abstract_namespace() {
    let systemd = FakeSystemd::abstract_name();
    let p = systemd.start();
    assert_status(systemd.expect(&p, "READY=1"), 0, 0);
    p.signal("HUP");
    assert_eq!(systemd.expect(&p, "RELOADING=1"), None);
    assert_status(systemd.expect(&p, "READY=1"), 0, 0);
    stop(&systemd, p);
}

/// The "serving" log line of a binary started with `envs`.
fn serving_line(envs: &[(&str, &str)]) -> String {
    let p = Proc::start_with_env(ARGS, envs);
    let mut line = None;
    wait_until(NOTIFY_WITHIN, || {
        line = p
            .stderr
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains(" serving "))
            .cloned();
        line.is_some()
    });
    line.unwrap_or_else(|| panic!("no serving line: {}", p.stderr_text()))
}

/// env_logger's timestamp opens the line: `[2026-11-24T12:11:57Z INFO ...`.
fn has_timestamp(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 12
        && b[0] == b'['
        && b[1..5].iter().all(u8::is_ascii_digit)
        && b[5] == b'-'
        && b[8] == b'-'
        && b[11] == b'T'
}

/// The serving line of a tracker whose stderr is a file; `journal` sets
/// JOURNAL_STREAM to that file's real `device:inode` (what systemd does for
/// the journal stream), otherwise to a stream that is not stderr.
fn serving_line_to_file(journal: bool) -> String {
    use std::os::unix::fs::MetadataExt;
    let path = std::env::temp_dir().join(format!(
        "hayate-journal-{}-{}",
        std::process::id(),
        unique()
    ));
    let file = std::fs::File::create(&path).unwrap();
    let meta = file.metadata().unwrap();
    let stream = if journal {
        format!("{}:{}", meta.dev(), meta.ino())
    } else {
        "8:12345".to_string()
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hayate"))
        .args([
            "--config",
            "/dev/null",
            "--http-listen",
            "127.0.0.1:0",
            "--udp-listen",
            "",
        ])
        .env_remove("RUST_LOG")
        .env("JOURNAL_STREAM", stream)
        .stderr(file)
        .spawn()
        .unwrap();
    let mut line = None;
    wait_until(Duration::from_secs(10), || {
        line = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .find(|l| l.contains(" serving "))
            .map(str::to_string);
        line.is_some()
    });
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&path);
    line.expect("no serving line")
}

#[test]
fn journald_gets_log_lines_without_timestamps() {
    let plain = serving_line(&[]);
    assert!(has_timestamp(&plain), "{plain}");
    let journal = serving_line_to_file(true);
    assert!(!has_timestamp(&journal), "{journal}");
    assert!(journal.starts_with("[INFO "), "{journal}");
    // JOURNAL_STREAM inherited by a process whose stderr went elsewhere.
    let elsewhere = serving_line_to_file(false);
    assert!(has_timestamp(&elsewhere), "{elsewhere}");
}

/// The shipped unit runs the binary `make install` installs with the
/// default PREFIX, and its flags parse with the shipped tracker.conf.
#[test]
fn shipped_unit_matches_the_makefile_and_the_flags() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("contrib/hayate.service")).unwrap();
    let makefile = std::fs::read_to_string(root.join("Makefile")).unwrap();
    let value = |text: &str, key: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key:?} line"))
            .trim()
            .to_string()
    };
    let prefix = value(&makefile, "PREFIX ?=");
    assert_eq!(value(&unit, "Type="), "notify");
    let exec = value(&unit, "ExecStart=");
    // A reload checks the conf file with the same flags, then signals.
    let reload: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("ExecReload="))
        .collect();
    assert_eq!(
        reload,
        [
            format!("{exec} --check-config").as_str(),
            "/bin/kill -HUP $MAINPID"
        ]
    );

    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some(format!("{prefix}/bin/hayate").as_str()));
    let state_dir = std::env::temp_dir().join(format!("hayate-unit-{}", std::process::id()));
    let args: Vec<String> = words
        .map(|w| match w {
            "/etc/hayate/tracker.conf" => root.join("tracker.conf").display().to_string(),
            "/var/lib/hayate/state" => state_dir.join("state").display().to_string(),
            other => other.to_string(),
        })
        .collect();
    assert!(args.contains(&"--state-file".to_string()), "{exec}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hayate"))
        .args(&args)
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Every connection is a descriptor (the shipped file holds the
    // default, commented out).
    let conf = std::fs::read_to_string(root.join("tracker.conf")).unwrap();
    let max_conns: u64 = value(&conf, "# http_max_connections =").parse().unwrap();
    let nofile: u64 = value(&unit, "LimitNOFILE=").parse().unwrap();
    assert!(nofile > max_conns + 100, "LimitNOFILE={nofile}");
}
