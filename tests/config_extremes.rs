//! Every key set alone to an extreme legal value: the tracker starts (on
//! ephemeral loopback ports). A key left alone never refuses one that was
//! set (`Config::derive`); the one exception is `mode = private`, which
//! needs the two secrets.
//!
//! "Extreme" is found, not listed: for each key, the smallest and the
//! largest value of a ladder of candidates that the key's own parser and
//! check accept, so a new limit is crossed without editing this file.

mod common;

use hayate::config::{Config, KEYS};

/// Candidates by kind; the accepted ones at both ends are tried.
fn ladder(kind: &str) -> Vec<String> {
    let numbers = || {
        let mut n: Vec<u64> = vec![0, 1, 2, 3];
        n.extend((2..=40).map(|k| 1u64 << k));
        n.extend((1..=19).map(|k| 10u64.pow(k)));
        n.sort_unstable();
        n
    };
    match kind {
        "duration" => ["0s", "1ms", "1s", "1m", "1h", "8760h"]
            .map(String::from)
            .to_vec(),
        "count" | "size" => numbers().iter().map(u64::to_string).collect(),
        "bool" => vec!["false".into(), "true".into()],
        "level" => vec!["off".into(), "trace".into()],
        "mode" => vec!["public".into(), "private".into()],
        "schema" => vec!["ops".into(), "classic".into()],
        "CIDR list" => vec!["".into(), "0.0.0.0/0, ::/0".into()],
        // Addresses, paths and strings have no extremes to speak of: the
        // listen addresses are the test's, the others are names.
        _ => Vec::new(),
    }
}

/// The smallest and largest accepted candidate of `key`.
fn extremes(key: &hayate::config::Key) -> Vec<String> {
    let accepted: Vec<String> = ladder(key.kind)
        .into_iter()
        .filter(|v| key.set(&mut Config::default(), v).is_ok())
        .collect();
    match (accepted.first(), accepted.last()) {
        (Some(a), Some(b)) if a != b => vec![a.clone(), b.clone()],
        (Some(a), _) => vec![a.clone()],
        _ => Vec::new(),
    }
}

#[test]
fn every_key_alone_at_an_extreme_legal_value_starts() {
    let mut tried = 0;
    for key in KEYS {
        if key.name.ends_with("_listen") {
            continue;
        }
        for value in extremes(key) {
            let mut config = Config::default();
            key.set(&mut config, &value).unwrap();
            config.http_listen = vec!["127.0.0.1:0".parse().unwrap()];
            config.udp_listen = vec!["127.0.0.1:0".parse().unwrap()];
            config.log_level = log::LevelFilter::Off;
            tried += 1;
            if let Err(e) = config.validate() {
                // Private mode cannot run without its two secrets: the one
                // value no default can complete.
                let secrets = key.name == "mode" && e.contains("private mode needs a secret");
                assert!(secrets, "{} = {value} alone is refused: {e}", key.name);
                continue;
            }
            if let Err(e) = hayate::start(config).map(hayate::Server::shutdown) {
                panic!("{} = {value}: valid but does not start: {e}", key.name);
            }
        }
    }
    assert!(tried > 40, "only {tried} values tried");
}
