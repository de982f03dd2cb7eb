//! Info-hash access lists, opentracker-compatible: `allowlist` and
//! `denylist` files of 40-hex info hashes, one per line, `#` comments and
//! blank lines allowed. With an allowlist only listed torrents are tracked;
//! a denylisted torrent is always refused (deny wins).
//!
//! The lists live in a `Live<AccessList>`: a reload (SIGHUP, or the reaper
//! seeing a file's mtime change) builds a new list off the hot path and
//! swaps it in; workers pick it up at their next loop turn without locking.
//! A bad line is reported with its number and skipped; an unreadable file
//! keeps the list that was loaded before.

use std::collections::HashSet;
use std::path::Path;
use std::time::SystemTime;

use crate::core::{Failure, InfoHash};

/// The allow and deny sets in force.
#[derive(Debug, Default)]
pub struct AccessList {
    /// `None` when no allowlist is configured (everything allowed).
    allow: Option<HashSet<InfoHash>>,
    deny: HashSet<InfoHash>,
}

impl AccessList {
    /// The lists of `allow` and `deny` (either may be absent).
    pub fn new(allow: Option<HashSet<InfoHash>>, deny: HashSet<InfoHash>) -> AccessList {
        AccessList { allow, deny }
    }

    /// May this torrent be tracked? The failure says why not.
    pub fn check(&self, hash: &InfoHash) -> Result<(), Failure> {
        if self.deny.contains(hash) {
            return Err(Failure::TorrentDenied);
        }
        match &self.allow {
            Some(allow) if !allow.contains(hash) => Err(Failure::TorrentNotAllowed),
            _ => Ok(()),
        }
    }

    /// True if `check` passes.
    pub fn permits(&self, hash: &InfoHash) -> bool {
        self.check(hash).is_ok()
    }

    /// Number of hashes in the allowlist (None without one) and denylist.
    pub fn sizes(&self) -> (Option<usize>, usize) {
        (self.allow.as_ref().map(HashSet::len), self.deny.len())
    }
}

/// Parses a list file's text. Returns the hashes and one message per bad
/// line (`file:line: ...`).
pub fn parse(text: &str, file: &str) -> (HashSet<InfoHash>, Vec<String>) {
    let mut hashes = HashSet::new();
    let mut bad = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        match parse_hex(line) {
            Some(h) => {
                hashes.insert(h);
            }
            None => bad.push(format!(
                "{file}:{}: not a 40-hex info hash: {line:.60}",
                n + 1
            )),
        }
    }
    (hashes, bad)
}

fn parse_hex(s: &str) -> Option<InfoHash> {
    let b = s.as_bytes();
    if b.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        *out.get_mut(i)? = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Reads one list file; `Err` is a one-line reason.
pub fn load_file(path: &str) -> Result<(HashSet<InfoHash>, Vec<String>), String> {
    let text = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let text = String::from_utf8_lossy(&text);
    Ok(parse(&text, path))
}

/// The modification time of a file (None if it cannot be read).
pub fn mtime(path: &str) -> Option<SystemTime> {
    if path.is_empty() {
        return None;
    }
    std::fs::metadata(Path::new(path))
        .and_then(|m| m.modified())
        .ok()
}

/// Builds the lists from the configured paths, keeping `previous` sets for
/// a file that cannot be read. Logs bad lines and errors.
pub fn build(allow_path: &str, deny_path: &str, previous: &AccessList) -> AccessList {
    let allow = if allow_path.is_empty() {
        None
    } else {
        match load_file(allow_path) {
            Ok((set, bad)) => {
                report(&bad);
                Some(set)
            }
            Err(e) => {
                log::error!("allowlist {e}; keeping the previous list");
                // No previous list: refuse everything rather than open up.
                Some(previous.allow.clone().unwrap_or_default())
            }
        }
    };
    let deny = if deny_path.is_empty() {
        HashSet::new()
    } else {
        match load_file(deny_path) {
            Ok((set, bad)) => {
                report(&bad);
                set
            }
            Err(e) => {
                log::error!("denylist {e}; keeping the previous list");
                previous.deny.clone()
            }
        }
    };
    AccessList { allow, deny }
}

fn report(bad: &[String]) {
    // Bounded: a file of garbage must not flood the log.
    for line in bad.iter().take(10) {
        log::warn!("{line} (skipped)");
    }
    if bad.len() > 10 {
        log::warn!("... and {} more bad lines skipped", bad.len() - 10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hashes_comments_and_reports_bad_lines() {
        let text = "# list\n\n0123456789abcdef0123456789ABCDEF01234567\n  aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa # trailing\nnope\n0123\n";
        let (set, bad) = parse(text, "deny.txt");
        assert_eq!(set.len(), 2);
        assert!(set.contains(&[0xaa; 20]));
        let first = [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
            0xcd, 0xef, 0x01, 0x23, 0x45, 0x67,
        ];
        assert!(set.contains(&first));
        assert_eq!(
            bad,
            vec![
                "deny.txt:5: not a 40-hex info hash: nope",
                "deny.txt:6: not a 40-hex info hash: 0123"
            ]
        );
        assert!(
            parse("ééééééééééééééééééééééééééééééééééééééé\u{0}", "x")
                .1
                .len()
                == 1
        );
    }

    #[test]
    fn deny_wins_and_allowlist_restricts() {
        let (a, b, c) = ([1u8; 20], [2u8; 20], [3u8; 20]);
        let open = AccessList::default();
        assert_eq!(open.check(&a), Ok(()));
        let list = AccessList::new(Some([a, b].into()), [b].into());
        assert_eq!(list.check(&a), Ok(()));
        assert_eq!(list.check(&b), Err(Failure::TorrentDenied));
        assert_eq!(list.check(&c), Err(Failure::TorrentNotAllowed));
        let deny_only = AccessList::new(None, [c].into());
        assert!(deny_only.permits(&a) && !deny_only.permits(&c));
    }
}
