//! Command line: one table of flags drives parsing and `--help`.

use crate::stats::StatsUrl;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Where the requests go.
pub enum Target {
    Udp(SocketAddr),
    /// The address and the `Host:` header value.
    Http(SocketAddr, String),
}

/// What the run does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Announces with churn and scrapes for `--duration`.
    Run,
    /// Announces each peer slot once.
    Fill,
    /// Writes the info hashes and stops; sends nothing.
    Hashes,
    /// Registers the users and torrents with hayate's control API.
    Register,
}

/// Everything the command line says.
pub struct Opts {
    pub mode: Mode,
    pub target: Target,
    pub keepalive: bool,
    pub torrents: u64,
    pub peers: u64,
    pub skew: f64,
    pub scrape_ratio: f64,
    pub scrape_hashes: usize,
    pub numwant: u32,
    pub seed: u64,
    pub threads: usize,
    pub concurrency: usize,
    pub rate: Option<f64>,
    pub duration: Duration,
    pub warmup: Duration,
    pub timeout: Duration,
    pub report_every: Option<Duration>,
    pub tracker_pid: Option<u32>,
    pub stats_url: Option<StatsUrl>,
    pub print_hashes: Option<String>,
    /// Private mode: users (passkeys) the peers belong to; 0 = public.
    pub passkeys: u64,
    /// `register`: the control API's secret.
    pub site_password: Option<String>,
}

/// (flag, value, help) in `--help` order.
const FLAGS: &[(&str, &str, &str)] = &[
    ("--udp", "ADDR", "BEP 15 tracker at ADDR (127.0.0.1:6969, [::1]:6969); the address picks IPv4 or IPv6"),
    ("--http", "ADDR", "HTTP tracker at ADDR: GET /announce and /scrape"),
    ("--keepalive", "on|off", "HTTP: on = persistent HTTP/1.1 connections; off = a new connection per request with Connection: close [on]"),
    ("--torrents", "N", "torrents (info hashes), popularity Zipf-skewed [100000]"),
    ("--peers", "P", "peer identities; each lives in one swarm, re-announces, completes, stops or vanishes and returns as a new peer [200000]"),
    ("--skew", "S", "Zipf exponent of torrent popularity; 1 = most swarms 1-2 peers and a long tail of big ones [1.0]"),
    ("--scrape-ratio", "X", "share of requests that are scrapes, 0.01 or 1/100 [1/100]"),
    ("--scrape-hashes", "K", "info hashes per scrape [4]"),
    ("--numwant", "N", "peers asked for in each announce [50]"),
    ("--seed", "N", "seed of every random choice; same seed and flags, same requests [1]"),
    ("--threads", "T", "sending threads; over UDP each has its own socket [1]"),
    ("--concurrency", "C", "closed loop: requests in flight per thread (HTTP: connections per thread) [16]"),
    ("--rate", "R", "open loop: R requests/s in total, paced; latency counts from the scheduled send time"),
    ("--duration", "D", "how long to run (30s, 10m, 1h) [30s]"),
    ("--warmup", "D", "first part of the run left out of the figures [5s]"),
    ("--timeout", "D", "a request with no reply after D counts as a timeout [2s]"),
    ("--report-every", "D", "print a table row every D (warm-up excluded)"),
    ("--tracker-pid", "PID", "rows show the tracker's VmRSS and thread count from /proc/PID/status"),
    ("--stats-url", "URL", "rows show torrents and peers from hayate's stats page (http://127.0.0.1:6969/stats)"),
    ("--print-hashes", "FILE", "write the --torrents info hashes to FILE as 40-hex lines (an allowlist; - = stdout)"),
    ("--passkeys", "N", "private tracker (Gazelle/Ocelot URLs): peer slot i belongs to user i % N, whose passkey is format!(\"{:032x}\", user + 1), 32 lowercase hex digits (user 0: 00000000000000000000000000000001); announces go to /<passkey>/announce (UDP: a BEP 41 URL-data option), HTTP scrapes to /<passkey>/scrape (lane j uses user j % N), UDP scrapes go as without it (a private hayate refuses them: add --scrape-ratio 0); uploaded grows by 16384 at each re-announce, downloaded too while leeching; register: users 1..=N [0 = public]"),
    ("--site-password", "PW", "register: the tracker's site_password (/<PW>/update)"),
];

/// The `--help` text.
pub fn help() -> String {
    let mut s = String::from(
        "hayate-load: load generator for BitTorrent trackers (UDP BEP 15, HTTP)\n\n\
         Usage: hayate-load [run] (--udp ADDR | --http ADDR) [OPTIONS]\n       \
         hayate-load fill (--udp ADDR | --http ADDR) [OPTIONS]\n       \
         hayate-load hashes [--torrents N] [--seed N] [--print-hashes FILE]\n       \
         hayate-load register --http ADDR --site-password PW [--torrents N] [--passkeys U] [--seed N]\n\n\
         run     announces with churn (started, re-announce, completed, stopped, vanish) and\n        \
         scrapes for --duration: closed loop (--concurrency) or open loop (--rate)\n\
         fill    announces each of --peers once (started; 20% seeders), prints how many\n        \
         were accepted, and stops\n\
         hashes  writes the info hashes the same flags would use (40-hex lines, to\n        \
         --print-hashes FILE or stdout) and stops: an allowlist for a tracker that\n        \
         needs one before it starts\n\
register registers, with hayate's private-mode control API over one keep-alive HTTP\n        \
         connection, users 1..=U (--passkeys U, visible) and every torrent the same\n        \
         --torrents/--seed use (id = rank + 1, freetorrent 0), and stops; every reply\n        \
         must be success (exit 1 otherwise)\n\nOptions:\n",
    );
    for (flag, value, doc) in FLAGS {
        s += &format!("  {flag} {value}\n      {doc}\n");
    }
    s += "  -h, --help\n      print this help\n";
    s
}

/// Parses the command line (without the program name).
pub fn parse(args: Vec<String>) -> Result<Opts, String> {
    let mut it = args.into_iter().peekable();
    let named = match it.peek().map(String::as_str) {
        Some("run") => Some(Mode::Run),
        Some("fill") => Some(Mode::Fill),
        Some("hashes") => Some(Mode::Hashes),
        Some("register") => Some(Mode::Register),
        _ => None,
    };
    if named.is_some() {
        it.next();
    }
    let mode = named.unwrap_or(Mode::Run);
    let mut o = Opts {
        mode,
        target: Target::Udp(resolve("127.0.0.1:6969")?),
        keepalive: true,
        torrents: 100_000,
        peers: 200_000,
        skew: 1.0,
        scrape_ratio: if mode == Mode::Fill { 0.0 } else { 0.01 },
        scrape_hashes: 4,
        numwant: 50,
        seed: 1,
        threads: 1,
        concurrency: 16,
        rate: None,
        duration: Duration::from_secs(30),
        warmup: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
        report_every: None,
        tracker_pid: None,
        stats_url: None,
        print_hashes: None,
        passkeys: 0,
        site_password: None,
    };
    let mut target = false;
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Err(String::new());
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if !FLAGS.iter().any(|(f, _, _)| *f == flag) {
            return Err(format!("unknown argument {arg:?} (see --help)"));
        }
        let v = match inline.or_else(|| it.next()) {
            Some(v) => v,
            None => return Err(format!("{flag}: needs a value")),
        };
        let bad = |e: String| format!("{flag}: {e}");
        match flag.as_str() {
            "--udp" => {
                o.target = Target::Udp(resolve(&v).map_err(bad)?);
                target = true;
            }
            "--http" => {
                o.target = Target::Http(resolve(&v).map_err(bad)?, v.clone());
                target = true;
            }
            "--keepalive" => {
                o.keepalive = match v.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => return Err(bad(format!("expected on or off, got {v:?}"))),
                }
            }
            "--torrents" => o.torrents = num(&v).map_err(bad)?,
            "--peers" => o.peers = num(&v).map_err(bad)?,
            "--skew" => o.skew = float(&v).map_err(bad)?,
            "--scrape-ratio" => o.scrape_ratio = ratio(&v).map_err(bad)?,
            "--scrape-hashes" => o.scrape_hashes = num(&v).map_err(bad)? as usize,
            "--numwant" => o.numwant = num(&v).map_err(bad)? as u32,
            "--seed" => o.seed = num(&v).map_err(bad)?,
            "--threads" => o.threads = num(&v).map_err(bad)?.max(1) as usize,
            "--concurrency" => o.concurrency = num(&v).map_err(bad)?.max(1) as usize,
            "--rate" => o.rate = Some(float(&v).map_err(bad)?).filter(|r| *r > 0.0),
            "--duration" => o.duration = duration(&v).map_err(bad)?,
            "--warmup" => o.warmup = duration(&v).map_err(bad)?,
            "--timeout" => o.timeout = duration(&v).map_err(bad)?.max(Duration::from_millis(1)),
            "--report-every" => {
                o.report_every = Some(duration(&v).map_err(bad)?).filter(|d| !d.is_zero())
            }
            "--tracker-pid" => o.tracker_pid = Some(num(&v).map_err(bad)? as u32),
            "--stats-url" => o.stats_url = Some(StatsUrl::parse(&v).map_err(bad)?),
            "--print-hashes" => o.print_hashes = Some(v),
            "--passkeys" => o.passkeys = num(&v).map_err(bad)?,
            "--site-password" => o.site_password = Some(secret(&v).map_err(bad)?),
            _ => unreachable!("every FLAGS entry is matched"),
        }
    }
    if !target && mode != Mode::Hashes {
        return Err("name the tracker: --udp ADDR or --http ADDR (see --help)".into());
    }
    if o.torrents == 0 {
        return Err("--torrents: must be at least 1".into());
    }
    if o.passkeys > u64::from(u32::MAX) {
        return Err("--passkeys: at most 4294967295 (user ids are 32-bit)".into());
    }
    if mode == Mode::Register {
        if !matches!(o.target, Target::Http(..)) {
            return Err("register: needs --http ADDR (the control API)".into());
        }
        if o.site_password.is_none() {
            return Err("register: needs --site-password PW".into());
        }
        if o.torrents > u64::from(u32::MAX) {
            return Err("register: --torrents at most 4294967295 (torrent ids are 32-bit)".into());
        }
    }
    if o.warmup >= o.duration && mode == Mode::Run {
        return Err("--warmup must be shorter than --duration".into());
    }
    if !(0.0..=1.0).contains(&o.scrape_ratio) || o.skew <= 0.0 {
        return Err("--scrape-ratio must be within 0..1 and --skew above 0".into());
    }
    Ok(o)
}

/// A URL path segment: unreserved characters only (hayate's are 32 long).
fn secret(s: &str) -> Result<String, String> {
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        return Err("expected letters, digits, - . _ or ~".into());
    }
    Ok(s.to_string())
}

/// `host:port` to one socket address (the first the resolver gives).
pub fn resolve(s: &str) -> Result<SocketAddr, String> {
    s.to_socket_addrs()
        .map_err(|e| format!("{s}: {e}"))?
        .next()
        .ok_or_else(|| format!("{s}: no address"))
}

fn num(s: &str) -> Result<u64, String> {
    let t = s.replace('_', "");
    let (digits, mult) = match t.as_bytes().last() {
        Some(b'k') => (&t[..t.len() - 1], 1_000),
        Some(b'M') => (&t[..t.len() - 1], 1_000_000),
        _ => (&t[..], 1),
    };
    digits
        .parse::<u64>()
        .map(|n| n * mult)
        .map_err(|_| format!("expected a whole number (1000, 10k, 2M), got {s:?}"))
}

fn float(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .ok_or_else(|| format!("expected a number, got {s:?}"))
}

fn ratio(s: &str) -> Result<f64, String> {
    match s.split_once('/') {
        Some((a, b)) => {
            let (a, b) = (float(a)?, float(b)?);
            if b <= 0.0 {
                return Err(format!("bad ratio {s:?}"));
            }
            Ok(a / b)
        }
        None => float(s),
    }
}

/// `500ms`, `30s`, `10m`, `1h`; a bare number is seconds.
pub fn duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n = float(n)?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "expected a duration (500ms, 30s, 10m, 1h), got {s:?}"
            ))
        }
    };
    if secs < 0.0 {
        return Err(format!("negative duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Opts, String> {
        parse(s.split_whitespace().map(String::from).collect())
    }

    #[test]
    fn flags_parse() {
        let o = p("fill --udp [::1]:6969 --peers 2M --threads=2 --scrape-ratio 1/50").unwrap();
        assert_eq!(o.mode, Mode::Fill);
        assert!(matches!(o.target, Target::Udp(a) if a.is_ipv6()));
        assert_eq!((o.peers, o.threads), (2_000_000, 2));
        assert!((o.scrape_ratio - 0.02).abs() < 1e-12);
        let o = p("--http 127.0.0.1:80 --keepalive off --rate 5000 --duration 1m").unwrap();
        assert!(!o.keepalive && o.rate == Some(5000.0));
        assert_eq!(o.duration, Duration::from_secs(60));
        let o = p("hashes --torrents 10 --print-hashes -").unwrap();
        assert_eq!((o.mode, o.torrents), (Mode::Hashes, 10));
        assert_eq!(o.print_hashes.as_deref(), Some("-"));
        let o = p("--udp 127.0.0.1:1 --passkeys 100k").unwrap();
        assert_eq!((o.mode, o.passkeys), (Mode::Run, 100_000));
        let o = p("register --http 127.0.0.1:1 --site-password abc --passkeys 10 --torrents 5")
            .unwrap();
        assert_eq!(o.mode, Mode::Register);
        assert_eq!(o.site_password.as_deref(), Some("abc"));
        for bad in [
            "register --udp 127.0.0.1:1 --site-password abc",
            "register --http 127.0.0.1:1",
            "register --http 127.0.0.1:1 --site-password a/b",
            "--udp 127.0.0.1:1 --passkeys 5000000000",
            "--udp",
            "--http 1.2.3.4:1 --keepalive maybe",
            "--nope 1",
            "--torrents 5",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(duration("7").unwrap(), Duration::from_secs(7));
        assert!(duration("3d").is_err());
    }
}
