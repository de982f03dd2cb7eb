//! Issue 4: swarms survive a restart. The real binary, run twice on one
//! `--state-file`: peers announced before a SIGTERM are handed out after
//! the restart and the stats page shows the same counts; a periodic save
//! survives a SIGKILL; a garbage or truncated state file is a warning, and
//! a save that cannot be written is an error line: the tracker starts,
//! serves and stops normally in both cases.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_bencode::value::Value;

const A: [u8; 20] = [0xa1; 20];
const B: [u8; 20] = [0xb2; 20];

/// An empty directory of its own for the state file.
fn state_path() -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("hayate-state-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("state")
}

/// Removes the state file's directory (what `state_path` made).
fn clean(state: &Path) {
    if let Some(dir) = state.ancestors().find(|d| {
        d.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("hayate-state-"))
    }) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The binary on loopback ports, no UDP, with `state` and `extra` flags.
fn run(state: &Path, extra: &[&str]) -> Proc {
    let mut args = vec![
        "--http-listen",
        "127.0.0.1:0, [::1]:0",
        "--udp-listen",
        "",
        "--workers",
        "2",
        "--state-file",
        state.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let p = Proc::start(&args);
    assert_eq!(p.http.len(), 2, "{}", p.stderr_text());
    p
}

/// SIGTERM, then a zero exit within 5 s.
fn stop(mut p: Proc) -> String {
    p.signal("TERM");
    let status = p
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no exit within 5 s: {}", p.stderr_text()));
    assert!(status.success(), "{status:?}: {}", p.stderr_text());
    p.stderr_text()
}

/// Torrents and peers (seeders/leechers, IPv4/IPv6) on the stats page.
fn counts(p: &Proc) -> Vec<Option<u64>> {
    let page = get(p.http[0], "/stats").text();
    [
        "hayate_torrents",
        "hayate_peers{kind=\"seeder\",family=\"ipv4\"}",
        "hayate_peers{kind=\"leecher\",family=\"ipv4\"}",
        "hayate_peers{kind=\"seeder\",family=\"ipv6\"}",
        "hayate_peers{kind=\"leecher\",family=\"ipv6\"}",
    ]
    .iter()
    .map(|m| metric(&page, m))
    .collect()
}

/// An announce that must succeed; the bencoded reply.
fn ok(p: &Proc, family: usize, target: &str) -> Value {
    let r = get(p.http[family], target).bencode();
    assert_eq!(failure(&r), None, "{target}: {r:?}\n{}", p.stderr_text());
    r
}

/// `downloaded` of one torrent, by scrape.
fn downloaded(p: &Proc, hash: &[u8; 20]) -> i64 {
    let r = get(p.http[0], &format!("/scrape?info_hash={}", pct(hash))).bencode();
    match field(&r, "files") {
        Some(Value::Dict(files)) => int(&files[&hash.to_vec()], "downloaded"),
        _ => panic!("no files in {r:?}"),
    }
}

fn ports4(r: &Value) -> Vec<u16> {
    let mut v: Vec<u16> = peers4(r).iter().map(|(_, port)| *port).collect();
    v.sort();
    v
}

#[test]
fn issue_4_swarms_survive_a_restart() {
    let state = state_path();
    let p = run(&state, &[]);
    assert!(
        p.stderr_text().contains("not found: starting empty"),
        "{}",
        p.stderr_text()
    );
    // A: three IPv4 peers (one seeder, counted complete) and one IPv6 peer; B: one.
    ok(&p, 0, &announce(&A, 1001, 0, "&event=completed"));
    ok(&p, 0, &announce(&A, 1002, 5, "&event=started"));
    ok(&p, 0, &announce(&A, 1003, 5, ""));
    ok(&p, 1, &announce(&A, 1004, 5, ""));
    ok(&p, 0, &announce(&B, 2001, 5, ""));
    let before = counts(&p);
    assert_eq!(
        before,
        [Some(2), Some(1), Some(3), Some(0), Some(1)],
        "{}",
        p.stderr_text()
    );
    let log = stop(p);
    assert!(log.contains("saved 2 torrents, 5 peers to"), "{log}");

    let q = run(&state, &[]);
    assert!(
        q.stderr_text().contains(&format!(
            "restored 2 torrents, 5 peers from {}",
            state.display()
        )),
        "{}",
        q.stderr_text()
    );
    assert_eq!(counts(&q), before, "{}", q.stderr_text());
    assert_eq!(downloaded(&q, &A), 1);
    // A newcomer to A is handed every peer announced before the restart.
    let r = ok(&q, 0, &announce(&A, 1005, 5, "&numwant=50"));
    assert_eq!(ports4(&r), [1001, 1002, 1003], "{r:?}");
    assert!(peers4(&r).iter().all(|(ip, _)| *ip == [127, 0, 0, 1]));
    let v6 = peers6(&r);
    assert_eq!(
        v6,
        [(std::net::Ipv6Addr::LOCALHOST.octets(), 1004)],
        "{r:?}"
    );
    assert_eq!((int(&r, "complete"), int(&r, "incomplete")), (1, 4));
    // The seeder that completed before the restart is not counted twice.
    ok(&q, 0, &announce(&A, 1001, 0, "&event=completed"));
    assert_eq!(downloaded(&q, &A), 1);
    let r = ok(&q, 0, &announce(&B, 2002, 5, ""));
    assert_eq!(ports4(&r), [2001]);
    let log = stop(q);
    assert!(log.contains("saved 2 torrents, 7 peers to"), "{log}");
    clean(&state);
}

#[test]
fn a_periodic_save_survives_a_kill() {
    let state = state_path();
    let mut p = run(
        &state,
        &["--state-save-interval", "100ms", "--log-level", "debug"],
    );
    ok(&p, 0, &announce(&A, 3001, 0, ""));
    ok(&p, 0, &announce(&A, 3002, 5, ""));
    assert!(
        wait_until(Duration::from_secs(10), || p
            .stderr_text()
            .contains("saved 1 torrents, 2 peers to")),
        "no periodic save: {}",
        p.stderr_text()
    );
    // No shutdown save: whatever the last periodic save wrote must do.
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let q = run(&state, &[]);
    assert!(
        q.stderr_text().contains("restored 1 torrents, 2 peers"),
        "{}",
        q.stderr_text()
    );
    let r = ok(&q, 0, &announce(&A, 3003, 5, ""));
    assert_eq!(ports4(&r), [3001, 3002]);
    stop(q);
    clean(&state);
}

#[test]
fn a_garbage_or_truncated_state_file_is_a_warning_not_a_failure() {
    let state = state_path();
    std::fs::write(&state, b"# not a state file\nworkers = 2\n").unwrap();
    let p = run(&state, &[]);
    let log = p.stderr_text();
    assert!(
        log.contains("WARN") && log.contains("ignored, starting empty: not a hayate state file"),
        "{log}"
    );
    assert_eq!(counts(&p)[0], Some(0));
    ok(&p, 0, &announce(&A, 4001, 5, ""));
    let log = stop(p);
    assert!(log.contains("saved 1 torrents, 1 peers"), "{log}");

    // The garbage was replaced by a good file; cut it short.
    let good = std::fs::read(&state).unwrap();
    std::fs::write(&state, &good[..good.len() - 3]).unwrap();
    let p = run(&state, &[]);
    let log = p.stderr_text();
    assert!(
        log.contains("WARN") && log.contains("checksum mismatch: corrupt or truncated"),
        "{log}"
    );
    let r = ok(&p, 0, &announce(&A, 4002, 5, ""));
    assert!(peers4(&r).is_empty(), "{r:?}");
    stop(p);
    clean(&state);
}

#[test]
fn a_save_that_fails_is_an_error_line_and_the_stop_completes() {
    let state = state_path().join("no-such-dir").join("state");
    let p = run(&state, &[]);
    ok(&p, 0, &announce(&A, 5001, 5, ""));
    let log = stop(p);
    assert!(
        log.contains("ERROR") && log.contains("saving swarm state failed: create"),
        "{log}"
    );
    assert!(!state.exists());
    clean(&state);
}
