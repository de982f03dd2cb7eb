//! The command line and the conf file as operators meet them: the real
//! binary with flags and temp conf files, checking exit status, stdout and
//! the exact error line on stderr. Every run has `--check-config`,
//! `--print-config`, `--help` or an error, so no tracker is ever started.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use hayate::config::KEYS;

/// A fresh directory under the system temp dir, removed on drop. Runs use
/// it as working directory, so the repo's tracker.conf is never picked up.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("hayate-config-cli-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }

    /// Writes `text` to `name` in the scratch dir; its path.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs hayate with `args` in the scratch dir.
    fn run(&self, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_hayate"))
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap();
        Run {
            args: args.iter().map(|a| a.to_string()).collect(),
            output,
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One finished run; its assertions print the arguments and both streams.
struct Run {
    args: Vec<String>,
    output: Output,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    fn context(&self) -> String {
        format!(
            "args: {:?}\nstatus: {}\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.output.status,
            self.stdout(),
            self.stderr()
        )
    }

    /// Asserts exit 0 and an empty stderr; the stdout.
    fn success(&self) -> String {
        assert_eq!(self.output.status.code(), Some(0), "{}", self.context());
        assert_eq!(self.stderr(), "", "{}", self.context());
        self.stdout()
    }

    /// Asserts exit 2, no stdout and exactly `hayate: {message}` on stderr.
    fn fails_with(&self, message: &str) {
        assert_eq!(self.output.status.code(), Some(2), "{}", self.context());
        assert_eq!(self.stdout(), "", "{}", self.context());
        assert_eq!(
            self.stderr(),
            format!("hayate: {message}\n"),
            "{}",
            self.context()
        );
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn unknown_key_in_the_default_conf_names_line_and_suggestion() {
    let s = Scratch::new();
    s.file("tracker.conf", "# tuned\n\nanounce_interval = 20m\n");
    s.run(&["--check-config"]).fails_with(
        "tracker.conf:3: unknown key \"anounce_interval\" (did you mean \"announce_interval\"?)",
    );
}

#[test]
fn bad_value_in_a_named_conf() {
    let s = Scratch::new();
    let conf = s.file(
        "bad.conf",
        "numwant_default = 10\nnumwant_max = lots # too vague\n",
    );
    s.run(&["--config", &display(&conf), "--check-config"])
        .fails_with(&format!(
            "{}:2: numwant_max: expected a number, got \"lots\"",
            display(&conf)
        ));
}

#[test]
fn malformed_line_and_duplicate_key() {
    let s = Scratch::new();
    let conf = s.file("a.conf", "workers = 2\nworkers 3\n");
    s.run(&["--config", &display(&conf), "--check-config"])
        .fails_with(&format!("{}:2: expected \"key = value\"", display(&conf)));
    let conf = s.file("b.conf", "workers = 2\n\nworkers = 3\n");
    s.run(&["--config", &display(&conf), "--check-config"])
        .fails_with(&format!(
            "{}:3: duplicate key \"workers\" (first set on line 1)",
            display(&conf)
        ));
}

#[test]
fn missing_named_conf_is_an_error() {
    let s = Scratch::new();
    let run = s.run(&["--config", "nope.conf", "--check-config"]);
    assert_eq!(run.output.status.code(), Some(2), "{}", run.context());
    assert!(
        run.stderr().starts_with("hayate: nope.conf: cannot read: "),
        "{}",
        run.context()
    );
}

#[test]
fn bad_flag_value() {
    let s = Scratch::new();
    s.run(&["--numwant-max", "lots", "--check-config"])
        .fails_with("--numwant-max: expected a number, got \"lots\"");
    s.run(&["--announce-interval=30", "--check-config"])
        .fails_with("--announce-interval: expected a duration like 90s, 30m or 1h, got \"30\"");
}

#[test]
fn unknown_flag_and_stray_argument() {
    let s = Scratch::new();
    s.run(&["--anounce-interval", "20m", "--check-config"])
        .fails_with("unknown flag --anounce-interval (did you mean --announce-interval?)");
    s.run(&["start", "--check-config"])
        .fails_with("unexpected argument \"start\" (settings are flags like --workers 4)");
}

#[test]
fn validation_errors() {
    let s = Scratch::new();
    s.run(&[
        "--numwant-default",
        "300",
        "--numwant-max",
        "200",
        "--check-config",
    ])
    .fails_with("numwant_default (300) must not be larger than numwant_max (200)");
    let conf = s.file("v.conf", "announce_interval = 10m\n");
    s.run(&[
        "--config",
        &display(&conf),
        "--min-announce-interval",
        "15m",
        "--print-config",
    ])
    .fails_with("min_announce_interval (15m) must not be longer than announce_interval (10m)");
}

#[test]
fn flags_override_the_file_which_overrides_defaults() {
    let s = Scratch::new();
    let conf = s.file(
        "p.conf",
        "announce_interval = 10m\nmin_announce_interval = 5m\n",
    );
    let conf = display(&conf);
    let config_eq = format!("--config={conf}");
    let cases: &[(&[&str], &str)] = &[
        (&["--print-config"], "\n# announce_interval = 30m\n"),
        (
            &["--config", &conf, "--print-config"],
            "\nannounce_interval = 10m\n",
        ),
        (
            &[
                "--config",
                &conf,
                "--announce-interval",
                "20m",
                "--print-config",
            ],
            "\nannounce_interval = 20m\n",
        ),
        (
            &["--announce-interval=20m", &config_eq, "--print-config"],
            "\nannounce_interval = 20m\n",
        ),
    ];
    for (args, want) in cases {
        let run = s.run(args);
        assert!(
            run.success().contains(want),
            "want {want:?}\n{}",
            run.context()
        );
    }
}

#[test]
fn check_config_and_version() {
    let s = Scratch::new();
    assert_eq!(s.run(&["--check-config"]).success(), "config ok\n");
    s.file("tracker.conf", "workers = 2\n");
    assert_eq!(s.run(&["--check-config"]).success(), "config ok\n");
    let version = format!("hayate {}\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(s.run(&["--version"]).success(), version);
    assert_eq!(s.run(&["-V"]).success(), version);
}

#[test]
fn help_lists_every_key() {
    let s = Scratch::new();
    let help = s.run(&["--help"]).success();
    assert_eq!(s.run(&["-h"]).success(), help);
    for key in KEYS {
        let flag = format!("--{}", key.name.replace('_', "-"));
        assert!(
            help.contains(&format!("  {flag} <{}>\n", key.kind)),
            "{flag} missing from:\n{help}"
        );
        assert!(help.contains(key.doc), "doc of {flag} missing");
    }
    for special in [
        "--config",
        "--print-config",
        "--check-config",
        "--help",
        "--version",
    ] {
        assert!(help.contains(special), "{special} missing from:\n{help}");
    }
}

#[test]
fn print_config_round_trips() {
    let s = Scratch::new();
    let defaults = s.run(&["--print-config"]).success();
    assert_eq!(
        defaults,
        include_str!("../tracker.conf"),
        "tracker.conf drifted from the key table"
    );

    let flags = [
        "--workers=3",
        "--http-listen",
        "127.0.0.1:7000",
        "--announce-jitter",
        "90s",
        "--trusted-proxies",
        "10.0.0.0/8, 192.0.2.1",
        "--stats-allow",
        "",
        "--http-max-request-bytes",
        "4096",
        "--log-level=debug",
        "--print-config",
    ];
    let printed = s.run(&flags).success();
    assert_ne!(printed, defaults);
    assert!(
        printed.contains("\ntrusted_proxies = 10.0.0.0/8, 192.0.2.1/32\n"),
        "{printed}"
    );
    let conf = s.file("printed.conf", &printed);
    let again = s
        .run(&["--config", &display(&conf), "--print-config"])
        .success();
    assert_eq!(again, printed);
}

/// Keys left alone follow the ones set: the interval alone (flag, or the
/// shipped tracker.conf with only that line uncommented and changed)
/// starts, its followers move with it, and `--print-config` marks them.
#[test]
fn keys_left_alone_follow_announce_interval() {
    let s = Scratch::new();
    assert_eq!(
        s.run(&["--announce-interval", "10s", "--check-config"])
            .success(),
        "config ok\n"
    );
    let shipped = include_str!("../tracker.conf")
        .replace("# announce_interval = 30m\n", "announce_interval = 10s\n");
    let conf = s.file("only-interval.conf", &shipped);
    let printed = s
        .run(&["--config", &display(&conf), "--print-config"])
        .success();
    for line in [
        "\nannounce_interval = 10s\n",
        "\n# min_announce_interval = 5s   (half of announce_interval)\n",
        "\n# announce_jitter = 1s   (a tenth of announce_interval)\n",
        "\n# peer_timeout = 15s   (announce_interval and a half)\n",
    ] {
        assert!(printed.contains(line), "{line:?} missing:\n{printed}");
    }
    // A key set alone beyond the interval left alone raises it.
    let printed = s
        .run(&["--min-announce-interval", "2h", "--print-config"])
        .success();
    assert!(
        printed.contains("\nmin_announce_interval = 2h\n"),
        "{printed}"
    );
    assert!(
        printed.contains("\n# announce_interval = 2h   (raised to fit"),
        "{printed}"
    );
    // Both set and at odds: refused, naming the key set.
    s.run(&[
        "--announce-interval",
        "10s",
        "--announce-jitter",
        "10s",
        "--check-config",
    ])
    .fails_with("announce_jitter (10s) must be shorter than announce_interval (10s)");
}

/// README's key table documents every key with its default.
#[test]
fn readme_documents_every_key() {
    let readme = include_str!("../README.md");
    for key in hayate::config::KEYS {
        let row = format!("| `{}` | ", key.name);
        let line = readme
            .lines()
            .find(|l| l.starts_with(&row))
            .unwrap_or_else(|| panic!("README.md has no table row for {}", key.name));
        let default = if key.default.is_empty() {
            "empty".to_string()
        } else {
            format!("`{}`", key.default)
        };
        assert!(
            line.contains(&default),
            "README.md row for {} does not show its default {default}: {line}",
            key.name
        );
    }
}
