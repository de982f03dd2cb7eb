//! Access lists (allowlist, denylist; BEP 31 `retry in`) and live reloads
//! (SIGHUP re-reads the conf file and the lists; the reaper notices a list
//! file's new mtime), against the real binary.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::*;
use serde_bencode::value::Value;

fn hex(h: &[u8; 20]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn scratch_dir() -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("hayate-reload-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `text` and moves the mtime forward, so a rewrite within the same
/// timestamp tick is still seen as a change.
fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    static BUMP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let t = SystemTime::now()
        + Duration::from_secs(BUMP.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

fn announce_reply(p: &Proc, h: &[u8; 20], port: u16) -> Value {
    get(p.http[0], &announce(h, port, 1, "")).bencode()
}

fn retry_in(v: &Value) -> Option<String> {
    match field(v, "retry in") {
        Some(Value::Int(i)) => Some(i.to_string()),
        Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

#[test]
fn allowlist_and_denylist_with_retry_in() {
    let dir = scratch_dir();
    let (ok, unlisted, denied) = ([1u8; 20], [2u8; 20], [3u8; 20]);
    let allow = dir.join("allow.txt");
    let deny = dir.join("deny.txt");
    write(
        &allow,
        &format!("# allowed\n{}\n{}\nnot-a-hash\n", hex(&ok), hex(&denied)),
    );
    write(&deny, &format!("{}\n", hex(&denied)));
    let p = Proc::start(&[
        "--http-listen",
        "127.0.0.1:0",
        "--udp-listen",
        "127.0.0.1:0",
        "--allowlist",
        allow.to_str().unwrap(),
        "--denylist",
        deny.to_str().unwrap(),
    ]);
    assert_eq!(failure(&announce_reply(&p, &ok, 1)), None);
    let r = announce_reply(&p, &unlisted, 1);
    assert_eq!(
        failure(&r).as_deref(),
        Some("torrent not allowed on this tracker")
    );
    assert_eq!(retry_in(&r).as_deref(), Some("60"));
    let r = announce_reply(&p, &denied, 1);
    assert_eq!(
        failure(&r).as_deref(),
        Some("torrent not allowed on this tracker"),
        "deny must win"
    );
    assert_eq!(retry_in(&r).as_deref(), Some("never"));
    // Scraping a refused torrent reveals nothing.
    let s = get(p.http[0], &format!("/scrape?info_hash={}", pct(&denied))).bencode();
    let Some(Value::Dict(files)) = field(&s, "files") else {
        panic!("{s:?}")
    };
    assert_eq!(int(&files[denied.as_slice()], "complete"), 0);
    let log = p.stderr_text();
    assert!(log.contains("allow.txt:4: not a 40-hex info hash"), "{log}");
    assert!(log.contains("access lists: 2 allowed, 1 denied"), "{log}");
    // UDP refuses the same way (error reply text).
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut connect = 0x0417_2710_1980i64.to_be_bytes().to_vec();
    connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    udp.send_to(&connect, p.udp[0]).unwrap();
    let mut buf = [0u8; 2048];
    let n = udp.recv(&mut buf).unwrap();
    assert_eq!(n, 16);
    let mut a = buf[8..16].to_vec();
    a.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
    a.extend_from_slice(&denied);
    a.extend_from_slice(&[7; 20]);
    a.extend_from_slice(&[0; 24]);
    a.extend_from_slice(&[
        0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 0x1a, 0xe1,
    ]);
    udp.send_to(&a, p.udp[0]).unwrap();
    let n = udp.recv(&mut buf).unwrap();
    assert_eq!(&buf[..4], &[0, 0, 0, 3], "not an error reply");
    assert_eq!(&buf[8..n], b"torrent not allowed on this tracker");
}

#[test]
fn sighup_and_mtime_reload_lists_and_denied_swarms_are_dropped() {
    let dir = scratch_dir();
    let deny = dir.join("deny.txt");
    write(&deny, "# nothing yet\n");
    let (a, b) = ([10u8; 20], [11u8; 20]);
    let p = Proc::start(&[
        "--http-listen",
        "127.0.0.1:0",
        "--udp-listen",
        "",
        "--denylist",
        deny.to_str().unwrap(),
        "--reap-interval",
        "100ms",
    ]);
    announce_reply(&p, &a, 1);
    announce_reply(&p, &b, 1);
    let torrents = || metric(&get(p.http[0], "/stats").text(), "hayate_torrents");
    assert_eq!(torrents(), Some(2));
    // SIGHUP: a is denied from now on, and its swarm goes at the next reap.
    write(&deny, &format!("{}\n", hex(&a)));
    p.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(5), || failure(&announce_reply(
            &p, &a, 2
        ))
        .is_some()),
        "SIGHUP did not reload the denylist: {}",
        p.stderr_text()
    );
    assert!(
        wait_until(Duration::from_secs(5), || torrents() == Some(1)),
        "denied swarm kept"
    );
    // No signal: the reaper sees the file change.
    write(&deny, &format!("{}\n", hex(&b)));
    assert!(
        wait_until(Duration::from_secs(5), || failure(&announce_reply(
            &p, &b, 3
        ))
        .is_some()),
        "mtime change not picked up: {}",
        p.stderr_text()
    );
    assert_eq!(
        failure(&announce_reply(&p, &a, 4)),
        None,
        "a is allowed again"
    );
    // The line is logged before the new list is in force, but reaches
    // us through the stderr reader thread: wait for it.
    assert!(
        wait_until(Duration::from_secs(5), || p
            .stderr_text()
            .contains("access list file changed: reloading")),
        "{}",
        p.stderr_text()
    );
}

#[test]
fn sighup_rereads_the_conf_file_and_reports_restart_only_keys() {
    let dir = scratch_dir();
    let conf = dir.join("tracker.conf");
    let base = "http_listen = 127.0.0.1:0\nudp_listen =\nannounce_interval = 10m\nmin_announce_interval = 5m\nannounce_jitter = 0\n";
    write(&conf, base);
    let p = Proc::start(&["--config", conf.to_str().unwrap(), "--numwant-max", "300"]);
    assert_eq!(int(&announce_reply(&p, &[20; 20], 1), "interval"), 600);
    write(
        &conf,
        &format!("{base}announce_interval = 20m\nworkers = 7\nnumwant_max = 9\n")
            .replace("announce_interval = 10m\n", ""),
    );
    p.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(5), || int(
            &announce_reply(&p, &[20; 20], 1),
            "interval"
        ) == 1200),
        "{}",
        p.stderr_text()
    );
    // The new config is live before the reload's lines reach our end of
    // the stderr pipe: wait for them.
    assert!(
        wait_until(Duration::from_secs(5), || {
            let log = p.stderr_text();
            log.contains("reload: announce_interval: 10m → 20m")
                && log.contains("reload: workers: auto → 7 needs a restart; still auto")
        }),
        "{}",
        p.stderr_text()
    );
    let log = p.stderr_text();
    assert!(
        !log.contains("numwant_max: "),
        "the flag must still win over the file: {log}"
    );
    // A broken file keeps the running config.
    write(&conf, "announce_interval = soon\n");
    p.signal("HUP");
    assert!(wait_until(Duration::from_secs(5), || p
        .stderr_text()
        .contains("reload failed")));
    assert!(
        p.stderr_text()
            .contains("tracker.conf:1: announce_interval"),
        "{}",
        p.stderr_text()
    );
    assert_eq!(int(&announce_reply(&p, &[20; 20], 1), "interval"), 1200);
}

/// Keys left unset follow `announce_interval` across a reload: the file
/// sets only the interval; after SIGHUP with a new one, `min interval`
/// (half of it) moves too, and the reload says so.
#[test]
fn sighup_moves_the_keys_that_follow_the_interval() {
    let dir = scratch_dir();
    let conf = dir.join("tracker.conf");
    let base = "http_listen = 127.0.0.1:0\nudp_listen =\n";
    write(&conf, &format!("{base}announce_interval = 10m\n"));
    let p = Proc::start(&["--config", conf.to_str().unwrap()]);
    assert_eq!(int(&announce_reply(&p, &[21; 20], 1), "min interval"), 300);
    write(&conf, &format!("{base}announce_interval = 20m\n"));
    p.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(5), || int(
            &announce_reply(&p, &[21; 20], 1),
            "min interval"
        ) == 600),
        "{}",
        p.stderr_text()
    );
    assert!(
        wait_until(Duration::from_secs(5), || p
            .stderr_text()
            .contains("reload: min_announce_interval: 5m → 10m")),
        "{}",
        p.stderr_text()
    );
}

/// Swarms restored from the state file that the access lists now refuse
/// are gone before the first request, not at the first reap.
#[test]
fn restored_swarms_of_denied_torrents_are_dropped_at_start() {
    let dir = scratch_dir();
    let state = dir.join("state");
    let deny = dir.join("deny.txt");
    write(&deny, "");
    let (kept, denied) = ([30u8; 20], [31u8; 20]);
    let args = |deny: &Path| -> Vec<String> {
        [
            "--http-listen",
            "127.0.0.1:0",
            "--udp-listen",
            "",
            "--reap-interval",
            "1h",
            "--state-file",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([
            state.to_str().unwrap().to_string(),
            "--denylist".into(),
            deny.to_str().unwrap().into(),
        ])
        .collect()
    };
    let first_args = args(&deny);
    let mut first = Proc::start(&first_args.iter().map(String::as_str).collect::<Vec<_>>());
    announce_reply(&first, &kept, 1);
    announce_reply(&first, &denied, 1);
    first.signal("TERM");
    assert!(first
        .wait_exit(Duration::from_secs(5))
        .is_some_and(|s| s.success()));
    write(&deny, &format!("{}\n", hex(&denied)));
    let second_args = args(&deny);
    let second = Proc::start(&second_args.iter().map(String::as_str).collect::<Vec<_>>());
    let page = get(second.http[0], "/stats").text();
    assert_eq!(
        metric(&page, "hayate_torrents"),
        Some(1),
        "{page}\n{}",
        second.stderr_text()
    );
    let s = get(second.http[0], &format!("/scrape?info_hash={}", pct(&kept))).bencode();
    let Some(Value::Dict(files)) = field(&s, "files") else {
        panic!("{s:?}")
    };
    assert_eq!(int(&files[kept.as_slice()], "incomplete"), 1);
}
