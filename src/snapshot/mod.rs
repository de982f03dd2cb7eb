//! Swarm state saved to `state_file` and restored at start (issue #4), so a
//! restart does not leave every swarm empty until its peers announce again.
//!
//! Format, version 1, integers little-endian:
//!
//! ```text
//! header   magic "\x89HYT\r\n\x1a\n" (8)  version u32  saved_at u64 (unix s)
//! body     per torrent a record: len u32, then len bytes:
//!            info_hash [20]  downloaded u32  n4 u32  n6 u32
//!            n4 × IPv4 peer: compact [6]  flags u8  age u32
//!            n6 × IPv6 peer: compact [18] flags u8  age u32
//! trailer  torrents u64  peers u64  body_len u64  checksum u64
//! ```
//!
//! Peer flags: bit 0 seeder, bit 1 its `completed` was counted. A peer's
//! age is the seconds between its last announce and the save: the tracker
//! clock restarts at 0 in the next process, so absolute times mean nothing
//! there; `saved_at` (wall clock) lets the restore count the time the
//! tracker was down as age too. The checksum is FNV-1a 64 over every byte before it; any change of
//! a single byte changes it (each FNV step is a bijection of the state), and
//! the body length in the trailer catches truncation. The magic follows
//! PNG's: a high-bit byte and `\r\n`/`\x1a` catch text-mode mangling.
//!
//! Locking: `save` holds one stripe at a time, only while it copies that
//! stripe's swarms into a scratch buffer (reused, so it grows only when a
//! stripe is bigger than every one before it); the file is written after
//! the guard is dropped. `restore` checks the whole file before it touches
//! the store, so a bad file changes nothing, then inserts swarm by swarm,
//! one stripe lock each. The server restores before the workers start and
//! saves after they stop (and, with `state_save_interval`, from the reaper).
//!
//! Files: `write.rs` (the writer), `read.rs` (checks and restore), this
//! one (the file on disk, the log lines, the periodic timer).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::core::announce::{Gauges, Tracker};

mod read;
mod write;

pub use read::{restore, Invalid};
pub use write::write_to;

/// First bytes of every state file.
const MAGIC: [u8; 8] = *b"\x89HYT\r\n\x1a\n";
/// The format this build writes and reads.
pub const VERSION: u32 = 1;
/// Magic, version, saved_at.
const HEADER_BYTES: usize = 8 + 4 + 8;
/// Torrents, peers, body length, checksum.
const TRAILER_BYTES: usize = 4 * 8;
/// A record's info hash, download count and two peer counts.
const RECORD_HEAD_BYTES: u64 = 20 + 4 + 4 + 4;
/// A saved IPv4 peer: compact form, flags, age.
const V4_ENTRY_BYTES: u64 = 6 + 1 + 4;
/// A saved IPv6 peer: compact form, flags, age.
const V6_ENTRY_BYTES: u64 = 18 + 1 + 4;
/// Peer flag: a seeder.
const FLAG_SEEDER: u8 = 1;
/// Peer flag: its `completed` was counted.
const FLAG_COMPLETED: u8 = 2;
/// Write buffer: a 1M-peer save is then a few dozen write calls.
const WRITE_BUFFER_BYTES: usize = 512 * 1024;

/// What a save wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Saved {
    /// Torrents written.
    pub torrents: u64,
    /// Peers written.
    pub peers: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// Longest time one stripe was held while its swarms were copied.
    pub longest_hold: Duration,
}

/// What a restore put into the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Torrents inserted.
    pub torrents: u64,
    /// Peers inserted.
    pub peers: u64,
    /// Peers left out: older than `peer_timeout`, the downtime included.
    pub expired: u64,
}

/// Why a state file was not used.
#[derive(Debug)]
pub enum LoadError {
    /// No file at the path (a first start).
    Missing,
    /// The file could not be read.
    Io(io::Error),
    /// The bytes are not a usable state file.
    Invalid(Invalid),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Missing => write!(f, "no such file"),
            LoadError::Io(e) => write!(f, "{e}"),
            LoadError::Invalid(why) => write!(f, "{why}"),
        }
    }
}

// ---- server glue: the log lines and the periodic timer ----

/// Restores `config.state_file` (if set) into the tracker, adding the
/// counts to `gauges`, and logs the outcome. Never fails: a missing file is
/// a first start (info), a bad one is reported (warn) and ignored.
pub fn restore_at_start(tracker: &Tracker, config: &Config, gauges: &Gauges) {
    if config.state_file.is_empty() {
        return;
    }
    let path = Path::new(&config.state_file);
    let started = Instant::now();
    match load(tracker, path, config.peer_timeout, gauges) {
        Ok(r) => log::info!(
            "restored {} torrents, {} peers from {} in {} ms ({} peers expired meanwhile)",
            r.torrents,
            r.peers,
            path.display(),
            started.elapsed().as_millis(),
            r.expired
        ),
        Err(LoadError::Missing) => {
            log::info!("state file {} not found: starting empty", path.display())
        }
        Err(e) => log::warn!("state file {} ignored, starting empty: {e}", path.display()),
    }
}

/// Saves to `config.state_file` (if set) and logs the outcome: info at
/// shutdown, debug for periodic saves; a failure is an error line, never
/// more (the caller goes on, shutting down or serving).
pub fn save_logged(tracker: &Tracker, config: &Config, periodic: bool) {
    if config.state_file.is_empty() {
        return;
    }
    let path = Path::new(&config.state_file);
    let started = Instant::now();
    match save(tracker, path) {
        Ok(s) => {
            let level = if periodic {
                log::Level::Debug
            } else {
                log::Level::Info
            };
            log::log!(
                level,
                "saved {} torrents, {} peers to {} ({} bytes) in {} ms",
                s.torrents,
                s.peers,
                path.display(),
                s.bytes,
                started.elapsed().as_millis()
            );
        }
        Err(e) => log::error!("saving swarm state failed: {e}"),
    }
}

/// When the reaper saves next: `state_save_interval` after the previous
/// save, or after periodic saving was switched on (at start or by a reload
/// that changed the interval).
#[derive(Debug, Default)]
pub struct SaveTimer {
    next: Option<Instant>,
    interval: Duration,
}

impl SaveTimer {
    /// The next save time under `config`; `None` when periodic saving is off.
    pub fn due(&mut self, config: &Config, now: Instant) -> Option<Instant> {
        let interval = config.state_save_interval;
        if config.state_file.is_empty() || interval.is_zero() {
            self.next = None;
            return None;
        }
        if self.next.is_none() || self.interval != interval {
            self.interval = interval;
            self.next = Some(now + interval);
        }
        self.next
    }

    /// A save finished at `now`.
    pub fn saved(&mut self, now: Instant) {
        self.next = Some(now + self.interval);
    }
}

// ---- saving ----

/// Saves every swarm to `path` atomically: a temporary file next to it,
/// fsync, rename over `path`, fsync of the directory. A failed save leaves
/// the previous file as it was. Errors name the file and the step.
pub fn save(tracker: &Tracker, path: &Path) -> io::Result<Saved> {
    // One fixed temporary name: a save interrupted by a crash leaves one
    // stale file that the next save overwrites, not one per attempt.
    let tmp = temp_path(path);
    let result = save_via(tracker, path, &tmp);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn save_via(tracker: &Tracker, path: &Path, tmp: &Path) -> io::Result<Saved> {
    let ctx = |what: &'static str, p: &Path| {
        let p = p.display().to_string();
        move |e: io::Error| io::Error::new(e.kind(), format!("{what} {p}: {e}"))
    };
    let file = create_private(tmp).map_err(ctx("create", tmp))?;
    let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
    let saved = write_to(tracker, &mut out, unix_now()).map_err(ctx("write", tmp))?;
    let file = out
        .into_inner()
        .map_err(|e| e.into_error())
        .map_err(ctx("write", tmp))?;
    file.sync_all().map_err(ctx("fsync", tmp))?;
    drop(file);
    fs::rename(tmp, path).map_err(ctx("rename to", path))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // The rename is durable only once the directory entry is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(ctx("fsync directory", dir))?;
    Ok(saved)
}

/// `path` with `.tmp` appended (same directory, so the rename is atomic).
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Creates (truncates) a file only its owner can read: it holds peers'
/// addresses.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Seconds since the Unix epoch (0 if the wall clock is before it).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// 64-bit FNV-1a.
struct Fnv1a(u64);

impl Fnv1a {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Fnv1a {
        Fnv1a(Self::OFFSET)
    }

    fn update(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(Self::PRIME);
        }
        self.0 = h;
    }
}

/// Reads `path` and restores it (see `restore`).
pub fn load(
    tracker: &Tracker,
    path: &Path,
    peer_timeout: Duration,
    gauges: &Gauges,
) -> Result<Restored, LoadError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(LoadError::Missing),
        Err(e) => return Err(LoadError::Io(e)),
    };
    // The header first: a path that names some other (big) file is
    // refused without reading it all.
    let mut bytes = Vec::new();
    (&mut file)
        .take(HEADER_BYTES as u64)
        .read_to_end(&mut bytes)
        .map_err(LoadError::Io)?;
    read::check_header(&bytes).map_err(LoadError::Invalid)?;
    if let Ok(meta) = file.metadata() {
        bytes.reserve(usize::try_from(meta.len()).unwrap_or(0));
    }
    file.read_to_end(&mut bytes).map_err(LoadError::Io)?;
    restore(tracker, &bytes, peer_timeout, gauges, unix_now()).map_err(LoadError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_timer_follows_the_live_config() {
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        let config = |file: &str, every: u64| Config {
            state_file: file.into(),
            state_save_interval: secs(every),
            ..Config::default()
        };
        let mut timer = SaveTimer::default();
        assert_eq!(timer.due(&config("", 10), t0), None, "no file, no saves");
        assert_eq!(
            timer.due(&config("s", 0), t0),
            None,
            "interval 0: shutdown only"
        );
        assert_eq!(timer.due(&config("s", 10), t0), Some(t0 + secs(10)));
        assert_eq!(
            timer.due(&config("s", 10), t0 + secs(3)),
            Some(t0 + secs(10))
        );
        timer.saved(t0 + secs(11));
        assert_eq!(
            timer.due(&config("s", 10), t0 + secs(12)),
            Some(t0 + secs(21))
        );
        // A reload with another interval counts from the reload.
        assert_eq!(
            timer.due(&config("s", 60), t0 + secs(15)),
            Some(t0 + secs(75))
        );
        assert_eq!(timer.due(&config("s", 0), t0 + secs(16)), None);
        assert_eq!(
            timer.due(&config("s", 60), t0 + secs(17)),
            Some(t0 + secs(77))
        );
    }

    #[test]
    fn save_and_load_through_a_file() {
        let dir = std::env::temp_dir().join(format!("hayate-snapshot-unit-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state");
        let config = Config {
            stripes: 4,
            ..Config::default()
        };
        let tracker = Tracker::new(&config, crate::clock::Clock::new());
        let saved = save(&tracker, &path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), saved.bytes);
        assert!(!temp_path(&path).exists(), "temporary file left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let fresh = Tracker::new(&config, crate::clock::Clock::new());
        let r = load(&fresh, &path, config.peer_timeout, &Gauges::default());
        assert_eq!(r.ok(), Some(Restored::default()));
        let r = load(
            &fresh,
            &dir.join("absent"),
            config.peer_timeout,
            &Gauges::default(),
        );
        assert!(matches!(r, Err(LoadError::Missing)));
        fs::write(&path, b"\x89HYT\r\n\x1a\n\x07\0\0\0").unwrap();
        let r = load(&fresh, &path, config.peer_timeout, &Gauges::default());
        assert!(
            matches!(r, Err(LoadError::Invalid(Invalid::Version(7)))),
            "{r:?}"
        );
        let r = load(&fresh, &dir, config.peer_timeout, &Gauges::default());
        assert!(matches!(r, Err(LoadError::Io(_))), "{r:?}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
