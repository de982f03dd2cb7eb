//! The conf file (`tracker.conf`): reading it and applying its lines to a
//! `Config` through the key table. Syntax: one `key = value` per line,
//! blank lines, `#` comments on their own line or after a value (` # ...`).
//! Every mistake is an error naming the file and line: an unknown key, a
//! bad value, a line without `=`, a key given twice.

use std::fmt;
use std::path::Path;

use super::keys::{closest, lookup, KEYS};
use super::Config;

/// A conf file that could not be read or applied; displays as
/// `tracker.conf:12: message` (or `tracker.conf: message` without a line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name as given by the caller.
    pub file: String,
    /// 1-based line number, when the error belongs to one line.
    pub line: Option<usize>,
    /// What is wrong, without the file and line.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Reads the conf file at `path` and applies it to `config`. The file must
/// be UTF-8 text. On error `config` may be partly updated.
pub fn load(path: &Path, config: &mut Config) -> Result<(), ConfigError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: None,
        message: format!("cannot read: {e}"),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e
            .as_bytes()
            .get(..e.utf8_error().valid_up_to())
            .unwrap_or_default();
        ConfigError {
            file: file.clone(),
            line: Some(valid.iter().filter(|b| **b == b'\n').count() + 1),
            message: "not valid UTF-8 text".into(),
        }
    })?;
    parse_conf(&text, &file, config)
}

/// Applies conf-file text to `config`, line by line, over what it already
/// holds (defaults, usually). `file_name` only labels errors. On error
/// `config` may be partly updated.
pub fn parse_conf(text: &str, file_name: &str, config: &mut Config) -> Result<(), ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Line where each key was set, to report duplicates.
    let mut seen: Vec<(&'static str, usize)> = Vec::with_capacity(KEYS.len());
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let error = |message: String| ConfigError {
            file: file_name.to_string(),
            line: Some(line),
            message,
        };
        let content = strip_comment(raw).trim();
        if content.is_empty() {
            continue;
        }
        let (name, value) = match content.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => (name.trim(), value.trim()),
            _ => return Err(error("expected \"key = value\"".into())),
        };
        let Some(key) = lookup(name) else {
            return Err(error(unknown_key(name)));
        };
        if let Some((_, first)) = seen.iter().find(|(seen_name, _)| *seen_name == key.name) {
            return Err(error(format!(
                "duplicate key {name:?} (first set on line {first})"
            )));
        }
        seen.push((key.name, line));
        key.set(config, value)
            .map_err(|message| error(format!("{}: {message}", key.name)))?;
    }
    Ok(())
}

/// `unknown key "x"`, with the closest real key when it looks like a typo
/// (also catching flag spelling, `announce-interval`).
fn unknown_key(name: &str) -> String {
    let names = KEYS.iter().map(|key| key.name);
    match closest(&name.replace('-', "_"), names) {
        Some(suggestion) => format!("unknown key {name:?} (did you mean {suggestion:?}?)"),
        None => format!("unknown key {name:?}"),
    }
}

/// The line without its comment: everything from a `#` that starts the
/// line or follows whitespace. A `#` inside a word (`a#b`) is kept.
fn strip_comment(line: &str) -> &str {
    let mut previous = ' ';
    for (at, c) in line.char_indices() {
        if c == '#' && previous.is_whitespace() {
            return line.get(..at).unwrap_or_default();
        }
        previous = c;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn apply(text: &str) -> Result<Config, String> {
        let mut config = Config::default();
        parse_conf(text, "tracker.conf", &mut config).map_err(|e| e.to_string())?;
        Ok(config)
    }

    #[test]
    fn accepted_syntax() {
        type Check = fn(&Config) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |c| *c == Config::default()),
            ("# only a comment\n\n   \n", |c| *c == Config::default()),
            ("announce_interval = 10m", |c| {
                c.announce_interval == Duration::from_secs(600)
            }),
            ("  announce_interval=10m  ", |c| {
                c.announce_interval == Duration::from_secs(600)
            }),
            ("announce_interval = 10m # ten minutes", |c| {
                c.announce_interval == Duration::from_secs(600)
            }),
            ("announce_interval = 10m\t# tab comment", |c| {
                c.announce_interval == Duration::from_secs(600)
            }),
            ("\u{feff}workers = 3\r\nstripes = 8\r\n", |c| {
                c.workers == 3 && c.stripes == 8
            }),
            ("trusted_proxies = # none", |c| c.trusted_proxies.is_empty()),
            ("stats_allow =", |c| c.stats_allow.is_empty()),
            ("real_ip_header = \"X-Real-IP\"", |c| {
                c.real_ip_header == "X-Real-IP"
            }),
            ("real_ip_header = X#Y", |c| c.real_ip_header == "X#Y"),
            ("workers = auto\nallow_ip_spoofing = yes", |c| {
                c.workers == 0 && c.allow_ip_spoofing
            }),
        ];
        for (text, check) in cases {
            match apply(text) {
                Ok(config) => assert!(check(&config), "{text:?}"),
                Err(e) => panic!("{text:?}: {e}"),
            }
        }
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases: &[(&str, &str)] = &[
            (
                "# c\n\nanounce_interval = 5m",
                "tracker.conf:3: unknown key \"anounce_interval\" (did you mean \"announce_interval\"?)",
            ),
            (
                "announce-interval = 5m",
                "tracker.conf:1: unknown key \"announce-interval\" (did you mean \"announce_interval\"?)",
            ),
            ("colour = blue", "tracker.conf:1: unknown key \"colour\""),
            ("\n\n\nnumwant_max = lots", "tracker.conf:4: numwant_max: expected a number, got \"lots\""),
            ("workers 4", "tracker.conf:1: expected \"key = value\""),
            ("= 4", "tracker.conf:1: expected \"key = value\""),
            (
                "workers = 2\nstripes = 8\nworkers = 3",
                "tracker.conf:3: duplicate key \"workers\" (first set on line 1)",
            ),
            ("announce_interval = 30", "tracker.conf:1: announce_interval: expected a duration like 90s, 30m or 1h, got \"30\""),
            ("stripes = 1000", "tracker.conf:1: stripes: must be a power of two from 1 to 1048576, got 1000"),
            ("peer_timeout = 99999999999999999999h", "tracker.conf:1: peer_timeout: duration \"99999999999999999999h\" is too large (at most 8760h, one year)"),
        ];
        for (text, want) in cases {
            assert_eq!(apply(text).map(|_| ()), Err(want.to_string()), "{text:?}");
        }
    }

    #[test]
    fn load_reports_io_and_encoding() {
        let dir = std::env::temp_dir();
        let missing = dir.join(format!("hayate-missing-{}.conf", std::process::id()));
        let mut config = Config::default();
        let err = load(&missing, &mut config).map_err(|e| e.to_string());
        let want = format!("{}: cannot read: ", missing.display());
        assert!(err.as_ref().is_err_and(|e| e.starts_with(&want)), "{err:?}");

        let latin1 = dir.join(format!("hayate-latin1-{}.conf", std::process::id()));
        std::fs::write(&latin1, b"workers = 2\nreal_ip_header = X-\xe9\n").unwrap();
        let err = load(&latin1, &mut config).map_err(|e| e.to_string());
        let _ = std::fs::remove_file(&latin1);
        assert_eq!(
            err,
            Err(format!("{}:2: not valid UTF-8 text", latin1.display()))
        );
    }

    #[test]
    fn comments() {
        let cases = [
            ("# all", ""),
            ("a = b # c", "a = b "),
            ("a = b#c", "a = b#c"),
            ("a = b\t#c", "a = b\t"),
            ("é = ü # x", "é = ü "),
        ];
        for (line, want) in cases {
            assert_eq!(strip_comment(line), want, "{line:?}");
        }
    }
}
