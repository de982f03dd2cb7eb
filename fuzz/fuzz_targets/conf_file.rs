//! Feeds arbitrary bytes as the text of a conf file to
//! `hayate::config::parse_conf(text, "fuzz.conf", &mut Config::default())`:
//! the input itself when it is valid UTF-8, its lossy conversion (U+FFFD
//! for bad bytes) otherwise; `load` refuses non-UTF-8 files before parsing.
//!
//! Asserts the conf file's contract:
//! - an error reads `fuzz.conf:LINE: message` (the `file:line: message`
//!   form every startup error about a line has), LINE is a line of the
//!   text that is neither blank nor a comment, and the message is one line;
//! - a config that parses passes every key's own check (a value the setter
//!   accepted is valid), and renders (`--print-config`) to text that parses
//!   back to the same config.
#![no_main]

use std::sync::OnceLock;

use hayate::config::{parse_conf, render_conf, Config, KEYS};
use libfuzzer_sys::fuzz_target;

/// `Config::default()`, built once: it parses every key's default.
fn defaults() -> &'static Config {
    static DEFAULTS: OnceLock<Config> = OnceLock::new();
    DEFAULTS.get_or_init(Config::default)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut config = defaults().clone();
    match parse_conf(&text, "fuzz.conf", &mut config) {
        Err(e) => {
            let shown = e.to_string();
            let line = e.line.expect("a parse error names its line");
            assert!(
                shown.starts_with(&format!("fuzz.conf:{line}: ")),
                "not file:line: message: {shown:?}"
            );
            assert_eq!(e.file, "fuzz.conf");
            assert!(!e.message.is_empty() && !e.message.contains(['\n', '\r']));
            let body = text.strip_prefix('\u{feff}').unwrap_or(&text);
            let at = body
                .lines()
                .nth(line - 1)
                .expect("line number within the text");
            let content = at.trim();
            assert!(
                !content.is_empty() && !content.starts_with('#'),
                "line {line}: {at:?}"
            );
        }
        Ok(()) => {
            for key in KEYS {
                assert_eq!(key.check(&config), Ok(()), "{} accepted", key.name);
            }
            let rendered = render_conf(&config);
            let mut back = defaults().clone();
            if let Err(e) = parse_conf(&rendered, "rendered.conf", &mut back) {
                panic!("rendered config does not parse: {e}\n{rendered}");
            }
            assert_eq!(back, config, "rendered config parses to another");
        }
    }
});
