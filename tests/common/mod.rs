//! Shared test helpers: start a real tracker on ephemeral ports, speak raw
//! HTTP/1.1 to it over TCP, decode bencode with serde_bencode (an
//! independent decoder, not ours).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use hayate::{Config, Server};
use serde_bencode::value::Value;

/// A test config: loopback IPv4 + IPv6 on port 0, two workers, short timers.
pub fn config() -> Config {
    Config {
        http_listen: vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()],
        udp_listen: vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()],
        workers: 2,
        stripes: 16,
        reap_interval: Duration::from_millis(50),
        announce_jitter: Duration::ZERO,
        ..Config::default()
    }
}

/// Starts the tracker; panics with the error (tests only).
pub fn start(c: Config) -> Server {
    hayate::start(c).expect("tracker starts")
}

/// The IPv4 and IPv6 UDP addresses of a server started with `config()`.
pub fn u4(s: &Server) -> SocketAddr {
    s.udp_addrs()[0]
}
pub fn u6(s: &Server) -> SocketAddr {
    s.udp_addrs()[1]
}

/// The IPv4 and IPv6 HTTP addresses of a server started with `config()`.
pub fn v4(s: &Server) -> SocketAddr {
    s.http_addrs()[0]
}
pub fn v6(s: &Server) -> SocketAddr {
    s.http_addrs()[1]
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    /// The body decoded as bencode (panics with the raw body if not).
    pub fn bencode(&self) -> Value {
        serde_bencode::from_bytes(&self.body).unwrap_or_else(|e| {
            panic!(
                "not bencode ({e}): {:?}\nhead: {}",
                String::from_utf8_lossy(&self.body),
                self.head
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Sends raw bytes on a new connection and reads one response.
pub fn raw(addr: SocketAddr, request: &[u8]) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).expect("write");
    read_response(&mut s)
        .unwrap_or_else(|| panic!("no response to {:?}", String::from_utf8_lossy(request)))
}

/// GET `target` with `Connection: close` plus extra header lines.
pub fn get_with(addr: SocketAddr, target: &str, headers: &[&str]) -> Response {
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: tracker\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    raw(addr, req.as_bytes())
}

/// GET `target`.
pub fn get(addr: SocketAddr, target: &str) -> Response {
    get_with(addr, target, &[])
}

/// Reads one response (head + Content-Length body) from a stream. A byte
/// at a time, so nothing past the response is consumed: pass a
/// `BufReader` to read many responses cheaply from one connection.
pub fn read_response(s: &mut impl Read) -> Option<Response> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let len: usize = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("content-length:")
            .map(|v| v.trim().parse().ok())
    })??;
    let mut body = vec![0; len];
    s.read_exact(&mut body).ok()?;
    Some(Response { status, head, body })
}

/// A TCP connection from a chosen loopback source address (127.x.y.z), so
/// the per-address connection cap sees many clients, as on the internet.
pub fn connect_from(src: [u8; 4], to: SocketAddr) -> Option<TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    let from: SocketAddr = (std::net::Ipv4Addr::from(src), 0).into();
    sock.bind(&from.into()).ok()?;
    sock.connect(&to.into()).ok()?;
    Some(TcpStream::from(sock))
}

/// Percent-encodes every byte.
pub fn pct(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// An announce target with the required parameters plus `extra`.
pub fn announce(hash: &[u8; 20], port: u16, left: u64, extra: &str) -> String {
    let mut peer_id = *b"-HY0001-000000000000";
    peer_id[8..10].copy_from_slice(&port.to_be_bytes());
    format!(
        "/announce?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left={left}{extra}",
        pct(hash),
        pct(&peer_id)
    )
}

/// Looks up `key` in a bencode dict.
pub fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Dict(d) => d.get(key.as_bytes()),
        _ => None,
    }
}

/// An integer field (panics with the whole value if absent).
pub fn int(v: &Value, key: &str) -> i64 {
    match field(v, key) {
        Some(Value::Int(i)) => *i,
        _ => panic!("no integer {key:?} in {v:?}"),
    }
}

/// A byte-string field (panics if absent).
pub fn bytes<'a>(v: &'a Value, key: &str) -> &'a [u8] {
    match field(v, key) {
        Some(Value::Bytes(b)) => b,
        _ => panic!("no string {key:?} in {v:?}"),
    }
}

/// The failure reason of a reply, if it is one.
pub fn failure(v: &Value) -> Option<String> {
    match field(v, "failure reason") {
        Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

/// Compact IPv4 peers as (ip, port).
pub fn peers4(v: &Value) -> Vec<([u8; 4], u16)> {
    bytes(v, "peers")
        .chunks(6)
        .map(|c| ([c[0], c[1], c[2], c[3]], u16::from_be_bytes([c[4], c[5]])))
        .collect()
}

/// Compact IPv6 peers as (ip, port); empty when `peers6` is absent.
pub fn peers6(v: &Value) -> Vec<([u8; 16], u16)> {
    match field(v, "peers6") {
        Some(Value::Bytes(b)) => b
            .chunks(18)
            .map(|c| {
                let mut ip = [0; 16];
                ip.copy_from_slice(&c[..16]);
                (ip, u16::from_be_bytes([c[16], c[17]]))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Polls `cond` every 20 ms until it holds or `within` passes.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// The value of an unlabelled or labelled metric line on the stats page.
pub fn metric(page: &str, name_and_labels: &str) -> Option<u64> {
    page.lines().find_map(|l| {
        l.strip_prefix(name_and_labels)?
            .strip_prefix(' ')?
            .parse()
            .ok()
    })
}

/// The real `hayate` binary, started with flags, its stderr collected.
pub struct Proc {
    pub child: std::process::Child,
    pub stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// HTTP addresses from the startup log line.
    pub http: Vec<SocketAddr>,
    /// UDP addresses from the startup log line.
    pub udp: Vec<SocketAddr>,
    /// The empty working directory it runs in (removed on drop).
    pub dir: std::path::PathBuf,
}

impl Proc {
    /// Starts the binary in an empty temp dir (no tracker.conf picked up)
    /// and waits for its "serving" log line.
    pub fn start(args: &[&str]) -> Proc {
        Proc::start_with_env(args, &[])
    }

    /// `start` with extra environment variables. The variables that change
    /// the binary's behaviour (`RUST_LOG`, and the systemd ones, which the
    /// test runner may itself have when run by a service) are cleared
    /// first, so only `envs` sets them.
    pub fn start_with_env(args: &[&str], envs: &[(&str, &str)]) -> Proc {
        Proc::launch(
            std::process::Command::new(env!("CARGO_BIN_EXE_hayate")),
            args,
            envs,
        )
    }

    /// `start` with the open-file limit (`ulimit -n`) set to `nofile`: the
    /// binary is exec'd by `sh` after `ulimit`, so the pid is hayate's.
    pub fn start_nofile(nofile: u64, args: &[&str]) -> Proc {
        let mut sh = std::process::Command::new("sh");
        sh.arg("-c")
            .arg("ulimit -n \"$0\" && exec \"$@\"")
            .arg(nofile.to_string())
            .arg(env!("CARGO_BIN_EXE_hayate"));
        Proc::launch(sh, args, &[])
    }

    fn launch(mut command: std::process::Command, args: &[&str], envs: &[(&str, &str)]) -> Proc {
        use std::io::BufRead;
        use std::process::Stdio;
        let dir =
            std::env::temp_dir().join(format!("hayate-test-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = command
            .args(args)
            .current_dir(&dir)
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hayate");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = std::io::BufReader::new(child.stderr.take().unwrap());
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                if line.contains(" serving ") {
                    let _ = tx.send(line.clone());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("hayate did not start: {:?}", stderr.lock().unwrap())
            });
        let addrs = |scheme: &str| -> Vec<SocketAddr> {
            line.split_whitespace()
                .filter_map(|w| w.trim_end_matches(',').strip_prefix(scheme)?.parse().ok())
                .collect()
        };
        Proc {
            http: addrs("http://"),
            udp: addrs("udp://"),
            child,
            stderr,
            dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field of /proc/<pid>/status, e.g. "VmRSS" (kB) or "Threads".
    pub fn status_field(&self, name: &str) -> u64 {
        let text =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(':')?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    }

    /// Open file descriptors of the process.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// CPU time (user + system) the process has used, from
    /// /proc/<pid>/stat (clock ticks of 1/100 s, Linux's USER_HZ).
    pub fn cpu_time(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the parenthesised command name start at field 3.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Duration::from_millis((ticks(11) + ticks(12)) * 10)
    }

    /// Sends a signal by name (TERM, INT, HUP) with kill(1).
    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits up to `within` for the exit status.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A process-unique number.
pub fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[cfg(feature = "mysql")]
pub mod mariadb;
