//! Command line: flags from the key table, `--help`, `--print-config`,
//! `--check-config`, `--config PATH`.
//!
//! Every key of [`KEYS`] is a long flag (`announce_interval` →
//! `--announce-interval`), taking `--flag value` or `--flag=value`. The
//! configuration is built as defaults < conf file < flags, then validated;
//! any mistake is an `Err` with a one-line message.

use std::convert::Infallible;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::config::keys::closest;
use crate::config::{load, render_conf, Config, Key, KEYS};

/// What the binary should do after parsing its arguments.
pub enum Action {
    /// Start the tracker with this configuration.
    Run(Box<Config>),
    /// Print this text to stdout and exit 0 (`--help`, `--print-config`, `--check-config`).
    Print(String),
}

/// Conf file read when `--config` is not given, if it exists in the
/// working directory.
const DEFAULT_CONF: &str = "tracker.conf";

/// Flags that are not keys: short form, long form, value name, help line.
const SPECIAL_FLAGS: [(&str, &str, &str, &str); 5] = [
    (
        "",
        "--config",
        "FILE",
        "Conf file to read (default: ./tracker.conf if it exists)",
    ),
    (
        "",
        "--print-config",
        "",
        "Print the effective configuration as a conf file and exit",
    ),
    (
        "",
        "--check-config",
        "",
        "Check the configuration, print \"config ok\" and exit",
    ),
    ("-h", "--help", "", "Print this help and exit"),
    ("-V", "--version", "", "Print the version and exit"),
];

/// Parses the arguments (without the program name). An `Err` is the one-line
/// message to print before exiting with status 2.
pub fn parse(args: impl Iterator<Item = OsString>) -> Result<Action, String> {
    let mut args = pico_args::Arguments::from_vec(args.collect());
    if args.contains(["-h", "--help"]) {
        return Ok(Action::Print(help()));
    }
    if args.contains(["-V", "--version"]) {
        return Ok(Action::Print(format!(
            "hayate {}\n",
            env!("CARGO_PKG_VERSION")
        )));
    }
    let print_config = args.contains("--print-config");
    let check_config = args.contains("--check-config");
    let config_path = take_path(&mut args, "--config")?;
    // Collect the flag values first: they are applied after the file.
    let mut flag_values: Vec<(&Key, &str, String)> = Vec::new();
    for (key, flag) in KEYS.iter().zip(key_flags()) {
        if let Some(value) = take_value(&mut args, flag)? {
            flag_values.push((key, flag, value));
        }
    }
    if let Some(leftover) = args.finish().first() {
        return Err(unexpected(leftover));
    }

    let mut config = Config::default();
    match config_path {
        Some(path) => load(&path, &mut config).map_err(|e| e.to_string())?,
        None if Path::new(DEFAULT_CONF).exists() => {
            load(Path::new(DEFAULT_CONF), &mut config).map_err(|e| e.to_string())?;
        }
        None => {}
    }
    for (key, flag, value) in flag_values {
        key.set(&mut config, &value)
            .map_err(|e| format!("{flag}: {e}"))?;
    }
    config.validate()?;

    Ok(if print_config {
        Action::Print(render_conf(&config))
    } else if check_config {
        Action::Print("config ok\n".into())
    } else {
        Action::Run(Box::new(config))
    })
}

/// The `--help` text, generated from the key table.
pub fn help() -> String {
    let mut out = format!(
        "hayate {}\n{}\n\n\
         Usage: hayate [--config FILE] [--KEY VALUE]...\n\n\
         Every setting is both a flag and a conf-file key: --announce-interval 30m\n\
         is announce_interval = 30m in the file. Flags override the file, the file\n\
         overrides the defaults. --key value and --key=value both work.\n\n\
         Options:\n",
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_DESCRIPTION"),
    );
    for (short, long, value, doc) in SPECIAL_FLAGS {
        let short = if short.is_empty() {
            String::new()
        } else {
            format!("{short}, ")
        };
        let flag = format!("{short}{long} {value}");
        let flag = flag.trim_end();
        out.push_str(&format!("  {flag:<16}  {doc}\n"));
    }
    out.push_str("\nSettings:\n");
    for (key, flag) in KEYS.iter().zip(key_flags()) {
        let unit = if key.unit.is_empty() {
            String::new()
        } else {
            format!("{}; ", key.unit)
        };
        let default = key.shown_default();
        out.push_str(&format!(
            "  {flag} <{}>\n      {} ({unit}default: {default})\n",
            key.kind, key.doc
        ));
    }
    out
}

/// The flag of each key, in table order. pico-args wants `&'static str`
/// names, so the generated strings are leaked, once per process.
fn key_flags() -> &'static [&'static str] {
    static FLAGS: OnceLock<Vec<&'static str>> = OnceLock::new();
    FLAGS.get_or_init(|| {
        KEYS.iter()
            .map(|key| &*Box::leak(key.flag().into_boxed_str()))
            .collect()
    })
}

/// Removes `flag` and its value from `args`; `--flag value` and
/// `--flag=value` both work.
fn take_value(
    args: &mut pico_args::Arguments,
    flag: &'static str,
) -> Result<Option<String>, String> {
    fn text(s: &str) -> Result<String, Infallible> {
        Ok(s.to_string())
    }
    let mut values = Vec::new();
    // Each found value is removed from `args`, so this ends.
    while let Some(value) = args
        .opt_value_from_fn(flag, text)
        .map_err(|e| flag_error(flag, e))?
    {
        values.push(value);
    }
    at_most_once(flag, values)
}

/// Like [`take_value`] for a path. `--flag PATH` need not be UTF-8;
/// pico-args reads `--flag=PATH` only as UTF-8.
fn take_path(
    args: &mut pico_args::Arguments,
    flag: &'static str,
) -> Result<Option<PathBuf>, String> {
    fn os_path(s: &OsStr) -> Result<PathBuf, Infallible> {
        Ok(PathBuf::from(s))
    }
    fn path(s: &str) -> Result<PathBuf, Infallible> {
        Ok(PathBuf::from(s))
    }
    let mut values = Vec::new();
    while let Some(value) = args
        .opt_value_from_os_str(flag, os_path)
        .map_err(|e| flag_error(flag, e))?
    {
        values.push(value);
    }
    while let Some(value) = args
        .opt_value_from_fn(flag, path)
        .map_err(|e| flag_error(flag, e))?
    {
        values.push(value);
    }
    at_most_once(flag, values)
}

/// A flag given twice is an error rather than "last wins": pico-args finds
/// `--flag value` before `--flag=value`, not in command-line order.
fn at_most_once<T>(flag: &str, mut values: Vec<T>) -> Result<Option<T>, String> {
    if values.len() > 1 {
        return Err(format!("{flag} given more than once"));
    }
    Ok(values.pop())
}

fn flag_error(flag: &str, error: pico_args::Error) -> String {
    match error {
        pico_args::Error::OptionWithoutAValue(_) => format!("{flag} needs a value"),
        pico_args::Error::NonUtf8Argument => format!("{flag}: value is not valid UTF-8"),
        other => format!("{flag}: {other}"),
    }
}

/// The error for an argument no flag claimed: an unknown flag (with the
/// closest real one) or a stray positional argument.
fn unexpected(arg: &OsStr) -> String {
    let arg = arg.to_string_lossy();
    let name = arg.split('=').next().unwrap_or_default();
    if name.len() > 1 && name.starts_with('-') {
        if SPECIAL_FLAGS
            .iter()
            .any(|(_, long, value, _)| *long == name && value.is_empty())
        {
            // `--print-config=yes`: a switch given a value.
            return format!("{name} takes no value");
        }
        let specials = SPECIAL_FLAGS.iter().map(|(_, long, _, _)| *long);
        let candidates = key_flags().iter().copied().chain(specials);
        match closest(&name.replace('_', "-"), candidates) {
            Some(suggestion) => format!("unknown flag {name} (did you mean {suggestion}?)"),
            None => format!("unknown flag {name} (see --help)"),
        }
    } else {
        format!("unexpected argument {arg:?} (settings are flags like --workers 4)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run(args: &[&str]) -> Result<Action, String> {
        // `--config /dev/null` keeps a tracker.conf in the test's working
        // directory out of the picture.
        let args = ["--config", "/dev/null"]
            .iter()
            .chain(args)
            .map(OsString::from);
        parse(args.collect::<Vec<_>>().into_iter())
    }

    fn config(args: &[&str]) -> Result<Config, String> {
        match run(args)? {
            Action::Run(config) => Ok(*config),
            Action::Print(text) => Err(format!("printed {text:?}")),
        }
    }

    #[test]
    fn flags_set_keys() {
        let c = config(&[
            "--announce-interval",
            "20m",
            "--workers=4",
            "--trusted-proxies",
            "",
        ]);
        let c = c.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.announce_interval, Duration::from_secs(1200));
        assert_eq!(c.workers, 4);
        assert!(c.trusted_proxies.is_empty());
        assert_eq!(config(&[]), Ok(Config::default()));
    }

    #[test]
    fn flag_errors() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["--numwant-max", "lots"],
                "--numwant-max: expected a number, got \"lots\"",
            ),
            (
                &["--numwant-max=lots"],
                "--numwant-max: expected a number, got \"lots\"",
            ),
            (
                &["--anounce-interval", "5m"],
                "unknown flag --anounce-interval (did you mean --announce-interval?)",
            ),
            (
                &["--anounce-interval=5m"],
                "unknown flag --anounce-interval (did you mean --announce-interval?)",
            ),
            (
                &["--announce_interval=5m"],
                "unknown flag --announce_interval (did you mean --announce-interval?)",
            ),
            (
                &["--print-conf"],
                "unknown flag --print-conf (did you mean --print-config?)",
            ),
            (&["--colour"], "unknown flag --colour (see --help)"),
            (&["-x"], "unknown flag -x (see --help)"),
            (
                &["serve"],
                "unexpected argument \"serve\" (settings are flags like --workers 4)",
            ),
            (&["--workers"], "--workers needs a value"),
            (&["--stats-allow="], "--stats-allow needs a value"),
            (
                &["--workers", "2", "--workers=3"],
                "--workers given more than once",
            ),
            (&["--config", "/dev/null"], "--config given more than once"),
            (&["--config=/dev/null"], "--config given more than once"),
            (&["--print-config=yes"], "--print-config takes no value"),
            (
                &["--numwant-default", "300", "--numwant-max", "200"],
                "numwant_default (300) must not be larger than numwant_max (200)",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(config(args).err().as_deref(), Some(*want), "{args:?}");
        }
    }

    #[test]
    fn special_flags() {
        let print = |args: &[&str]| match run(args) {
            Ok(Action::Print(text)) => text,
            Ok(Action::Run(_)) => "run".into(),
            Err(e) => e,
        };
        assert_eq!(print(&["--check-config"]), "config ok\n");
        assert_eq!(print(&["--print-config"]), render_conf(&Config::default()));
        assert!(print(&["--print-config", "--workers", "3"]).contains("\nworkers = 3\n"));
        assert_eq!(
            print(&["-V"]),
            format!("hayate {}\n", env!("CARGO_PKG_VERSION"))
        );
        let help = print(&["--help"]);
        assert_eq!(print(&["-h"]), help);
        for key in KEYS {
            assert!(
                help.contains(&format!("  {} <{}>\n", key.flag(), key.kind)),
                "{}",
                key.name
            );
        }
    }
}
