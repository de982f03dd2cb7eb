//! The MySQL/MariaDB driver (`--features mysql`, `make test-mysql`) with
//! the real binary against the real server: each test makes a database of
//! its own with Gazelle's tables (both schema generations), plays the
//! site (rows written as Gazelle writes them, control calls as it makes
//! them) and reads back what hayate wrote. The scripted site run with
//! SIGKILLs and an outage is in `private_crash.rs` (`mysql_*`).
#![cfg(feature = "mysql")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use common::mariadb::{Schema, TestDb};
use common::*;
use mysql::prelude::Queryable;

const SITE: &str = "SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSS";
const REPORT: &str = "RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR";
const SCHEMAS: [Schema; 2] = [Schema::Classic, Schema::Ops];

/// A passkey from a digit.
fn key(c: char) -> String {
    c.to_string().repeat(32)
}

/// Starts hayate on `db` with `extra` flags.
fn tracker(db: &TestDb, extra: &[&str]) -> Proc {
    let url = db.url(None);
    let mut args = vec![
        "--config",
        "/dev/null",
        "--mode",
        "private",
        "--site-password",
        SITE,
        "--report-password",
        REPORT,
        "--database",
        &url,
        "--gazelle-schema",
        db.schema.name(),
        "--flush-interval",
        "100ms",
        "--http-listen",
        "127.0.0.1:0,[::1]:0",
        "--udp-listen",
        "127.0.0.1:0",
        "--workers",
        "2",
    ];
    args.extend_from_slice(extra);
    let p = Proc::start(&args);
    assert!(!p.http.is_empty(), "did not start: {}", p.stderr_text());
    p
}

/// An announce of `passkey` for `hash` with counters; the bencoded reply.
#[allow(clippy::too_many_arguments)]
fn announce_as(
    p: &Proc,
    v6: bool,
    passkey: &str,
    hash: &[u8; 20],
    peer_id: &[u8; 20],
    up: u64,
    down: u64,
    left: u64,
    extra: &str,
    agent: &str,
) -> serde_bencode::value::Value {
    let target = format!(
        "/{passkey}/announce?info_hash={}&peer_id={}&port=6881&uploaded={up}&downloaded={down}&left={left}{extra}",
        pct(hash),
        pct(peer_id)
    );
    let ua = format!("User-Agent: {agent}");
    get_with(p.http[usize::from(v6)], &target, &[&ua]).bencode()
}

#[allow(clippy::too_many_arguments)]
fn ann(
    p: &Proc,
    passkey: &str,
    hash: &[u8; 20],
    peer: u8,
    up: u64,
    down: u64,
    left: u64,
    extra: &str,
) -> serde_bencode::value::Value {
    let mut peer_id = *b"-qB4620-000000000000";
    peer_id[19] = peer;
    announce_as(
        p,
        false,
        passkey,
        hash,
        &peer_id,
        up,
        down,
        left,
        extra,
        "qBittorrent/4.6.2",
    )
}

/// Runs the binary in private mode with `extra` flags, expecting it to
/// refuse to start (exit 2): its stderr.
fn refused(extra: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hayate"))
        .args(["--config", "/dev/null", "--mode", "private"])
        .args(["--site-password", SITE, "--report-password", REPORT])
        .args(extra)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    err
}

fn stats(p: &Proc, name: &str) -> u64 {
    metric(&get(p.http[0], "/stats").text(), name).unwrap_or(0)
}

/// Waits until the flusher holds nothing uncommitted.
fn settled(p: &Proc) {
    std::thread::sleep(Duration::from_millis(150));
    assert!(
        wait_until(Duration::from_secs(10), || {
            let page = get(p.http[0], "/stats").text();
            metric(&page, "hayate_private_oldest_uncommitted_milliseconds") == Some(0)
        }),
        "not committed: {}",
        p.stderr_text()
    );
}

fn update(p: &Proc, query: &str) {
    let r = get(p.http[0], &format!("/{SITE}/update?{query}"));
    assert_eq!(r.text(), "success", "update?{query}");
}

const H1: [u8; 20] = [1; 20];
/// An IPv6 address longer than Gazelle's `varchar(15)`.
const V6: &str = "&ip=2001:db8:1111:2222:3333:4444:5555:6666";
const H2: [u8; 20] = [2; 20];
const H3: [u8; 20] = [3; 20];

#[test]
fn loads_the_site_and_writes_credit_counts_and_snatches_to_its_columns() {
    for schema in SCHEMAS {
        let db = TestDb::create(schema);
        db.add_user(10, &key('a'), true);
        db.add_user(11, &key('b'), false); // protected
        db.add_user(12, &key('c'), true);
        db.exec(&["UPDATE users_main SET Enabled = '2' WHERE ID = 12"]); // disabled
        db.add_torrent(100, &H1, 0);
        db.add_torrent(101, &H2, 1); // free
        db.add_torrent(102, &H3, 2); // neutral
        db.add_token(11, 100);
        let p = tracker(&db, &[]);
        let log = p.stderr_text();
        assert!(log.contains("2 users (2 added"), "{log}");
        assert!(
            log.contains("3 torrents") && log.contains("1 tokens"),
            "{log}"
        );
        let r = ann(&p, &key('c'), &H1, 1, 0, 0, 5, "");
        assert_eq!(
            failure(&r).as_deref(),
            Some("Passkey not found"),
            "{schema:?}"
        );
        // Normal, free, neutral; the protected user holds a token on 100.
        for (i, h) in [H1, H2, H3].iter().enumerate() {
            let peer = i as u8;
            assert_eq!(
                failure(&ann(&p, &key('a'), h, peer, 0, 0, 100, "&event=started")),
                None
            );
            assert_eq!(
                failure(&ann(&p, &key('a'), h, peer, 1000, 400, 100, "")),
                None
            );
        }
        ann(&p, &key('b'), &H1, 9, 50, 60, 100, "&event=started");
        ann(&p, &key('b'), &H1, 9, 150, 160, 0, "&event=completed");
        settled(&p);
        assert_eq!(
            db.credit(10),
            (2000, 400),
            "{schema:?}: normal + free + neutral"
        );
        assert_eq!(
            db.credit(11),
            (100, 0),
            "{schema:?}: tokened download is free"
        );
        assert_eq!(
            db.int(
                "SELECT Downloaded FROM users_freeleeches WHERE UserID = 11 AND TorrentID = 100"
            ),
            Some(100)
        );
        // Torrent 100: user a leeching, user b seeding after its snatch.
        assert_eq!(
            db.torrent_stats(100),
            Some((1, 1, 1, 1000 - 400 + 100 - 100))
        );
        assert_eq!(
            db.torrent_stats(101).map(|t| (t.0, t.1, t.2)),
            Some((0, 1, 0))
        );
        let snatch: Option<(u32, u32, String)> = db
            .conn()
            .query_first("SELECT uid, fid, IP FROM xbt_snatched")
            .unwrap();
        assert_eq!(snatch, Some((11, 100, String::new())), "protected: no IP");
        let rows = db.int("SELECT count(*) FROM xbt_files_users WHERE active = 1");
        assert_eq!(rows, Some(4));
        let ip: Option<String> = db
            .conn()
            .query_first("SELECT ip FROM xbt_files_users WHERE uid = 10 LIMIT 1")
            .unwrap();
        assert_eq!(ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            stats(&p, "hayate_private_database_errors_total"),
            0,
            "{}",
            p.stderr_text()
        );
    }
}

#[test]
fn control_calls_change_memory_only_and_a_reload_reads_the_site_again() {
    let db = TestDb::create(Schema::Ops);
    db.add_user(10, &key('a'), true);
    db.add_torrent(100, &H1, 0);
    let p = tracker(&db, &[]);
    let before = |db: &TestDb| {
        (
            db.text("SELECT count(*) FROM users_main"),
            db.text("SELECT count(*) FROM torrents"),
            db.text("SELECT count(*) FROM users_freeleeches"),
            db.text("SELECT count(*) FROM xbt_client_whitelist"),
            db.text("SELECT group_concat(torrent_pass) FROM users_main"),
            db.text("SELECT group_concat(FreeTorrent) FROM torrents"),
        )
    };
    let was = before(&db);
    // Every action answers success and acts on announces.
    update(
        &p,
        &format!("action=add_user&passkey={}&id=20&visible=1", key('d')),
    );
    update(
        &p,
        &format!(
            "action=add_torrent&info_hash={}&id=200&freetorrent=1",
            pct(&H2)
        ),
    );
    assert_eq!(failure(&ann(&p, &key('d'), &H2, 1, 0, 0, 10, "")), None);
    update(
        &p,
        &format!("action=update_torrent&info_hash={}&freetorrent=2", pct(&H2)),
    );
    update(
        &p,
        &format!(
            "action=update_torrents&info_hashes={}{}&freetorrent=0",
            pct(&H1),
            pct(&H2)
        ),
    );
    update(
        &p,
        &format!("action=add_token&info_hash={}&userid=20", pct(&H2)),
    );
    update(
        &p,
        &format!("action=remove_token&info_hash={}&userid=20", pct(&H2)),
    );
    update(
        &p,
        &format!(
            "action=update_user&passkey={}&can_leech=0&visible=1",
            key('d')
        ),
    );
    let r = ann(&p, &key('d'), &H2, 1, 0, 0, 10, "");
    assert_eq!(
        failure(&r).as_deref(),
        Some("Access denied, leeching forbidden")
    );
    update(
        &p,
        &format!(
            "action=change_passkey&oldpasskey={}&newpasskey={}",
            key('d'),
            key('e')
        ),
    );
    assert_eq!(
        failure(&ann(&p, &key('d'), &H2, 1, 0, 0, 0, "")).as_deref(),
        Some("Passkey not found")
    );
    assert_eq!(failure(&ann(&p, &key('e'), &H2, 1, 0, 0, 0, "")), None);
    update(&p, "action=add_whitelist&peer_id=-TR");
    let r = ann(&p, &key('a'), &H1, 1, 0, 0, 0, "");
    assert_eq!(
        failure(&r).as_deref(),
        Some("Your client is not on the whitelist")
    );
    update(&p, "action=edit_whitelist&old_peer_id=-TR&new_peer_id=-qB");
    assert_eq!(failure(&ann(&p, &key('a'), &H1, 1, 0, 0, 0, "")), None);
    update(&p, "action=remove_whitelist&peer_id=-qB");
    update(
        &p,
        "action=update_announce_interval&new_announce_interval=600",
    );
    update(&p, &format!("action=info_torrent&info_hash={}", pct(&H2)));
    update(
        &p,
        &format!("action=delete_torrent&info_hash={}&reason=1", pct(&H2)),
    );
    let r = ann(&p, &key('e'), &H2, 1, 0, 0, 0, "");
    assert_eq!(failure(&r).as_deref(), Some("Unregistered torrent: Trump"));
    update(
        &p,
        &format!("action=remove_users&passkeys={}{}", key('e'), key('x')),
    );
    update(&p, &format!("action=remove_user&passkey={}", key('a')));
    assert_eq!(
        failure(&ann(&p, &key('a'), &H1, 1, 0, 0, 0, "")).as_deref(),
        Some("Passkey not found")
    );
    settled(&p);
    assert_eq!(before(&db), was, "the site's tables are the site's");
    // SIGUSR1: the site's view again, as a diff (user a is back; a new
    // user and torrent the site wrote meanwhile come in).
    db.add_user(30, &key('f'), true);
    db.add_torrent(300, &H3, 0);
    p.signal("USR1");
    assert!(wait_until(Duration::from_secs(10), || stats(
        &p,
        "hayate_private_reloads_total"
    ) == 1));
    assert_eq!(failure(&ann(&p, &key('a'), &H1, 2, 0, 0, 0, "")), None);
    assert_eq!(failure(&ann(&p, &key('f'), &H3, 3, 0, 0, 0, "")), None);
    assert_eq!(
        failure(&ann(&p, &key('e'), &H2, 4, 0, 0, 0, "")).as_deref(),
        Some("Passkey not found")
    );
    assert!(
        p.stderr_text()
            .contains("2 users (2 added or changed, 0 removed)"),
        "{}",
        p.stderr_text()
    );
}

#[test]
fn readonly_serves_but_never_writes() {
    let db = TestDb::create(Schema::Classic);
    db.add_user(10, &key('a'), true);
    db.add_torrent(100, &H1, 0);
    // An old row Ocelot left: readonly leaves it too.
    db.exec(&["INSERT INTO xbt_files_users (uid, fid, active, peer_id, mtime) VALUES (10, 100, 1, X'00', 5)"]);
    let p = tracker(&db, &["--readonly", "true"]);
    ann(&p, &key('a'), &H1, 1, 0, 0, 10, "&event=started");
    let r = ann(&p, &key('a'), &H1, 1, 5000, 100, 0, "&event=completed");
    assert_eq!(failure(&r), None);
    assert_eq!(int(&r, "complete"), 1);
    std::thread::sleep(Duration::from_millis(500));
    assert!(stats(&p, "hayate_private_batches_committed_total") > 0);
    assert_eq!(db.credit(10), (0, 0));
    assert_eq!(db.torrent_stats(100), Some((0, 0, 0, 0)));
    assert_eq!(db.int("SELECT count(*) FROM xbt_files_users"), Some(1));
    assert_eq!(db.int("SELECT count(*) FROM xbt_snatched"), Some(0));
    // readonly is for a site's database only.
    let err = refused(&["--database", "sqlite:x.db", "--readonly", "true"]);
    assert!(err.contains("readonly"), "{err}");
}

#[test]
fn a_restart_restores_live_peers_and_deletes_old_rows() {
    for schema in SCHEMAS {
        let db = TestDb::create(schema);
        db.add_user(10, &key('a'), true);
        db.add_torrent(100, &H1, 0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut peer_id = *b"-qB4620-000000000000";
        peer_id[19] = 7;
        let hex: String = peer_id.iter().map(|b| format!("{b:02x}")).collect();
        db.exec(&[
            // Live: committed baselines 1000 up, 300 down, a seeder.
            &format!(
                "INSERT INTO xbt_files_users (uid, fid, active, uploaded, downloaded, remaining, \
                 ip, peer_id, mtime) VALUES (10, 100, 1, 1000, 300, 0, '10.1.2.3', X'{hex}', {})",
                now - 60
            ),
            // Older than peer_timeout (45 min): deleted at start.
            &format!(
                "INSERT INTO xbt_files_users (uid, fid, active, uploaded, peer_id, mtime) \
                 VALUES (10, 100, 1, 5, X'01', {})",
                now - 3 * 3600
            ),
        ]);
        let p = tracker(&db, &[]);
        assert!(
            p.stderr_text().contains("restored 1 live peers"),
            "{}",
            p.stderr_text()
        );
        assert_eq!(db.int("SELECT count(*) FROM xbt_files_users"), Some(1));
        settled(&p);
        // The swarm counts follow what was restored.
        assert_eq!(db.torrent_stats(100).map(|t| (t.0, t.1)), Some((1, 0)));
        // Only growth over the committed baseline is credited.
        ann(&p, &key('a'), &H1, 7, 1500, 300, 0, "");
        settled(&p);
        assert_eq!(db.credit(10), (500, 0), "{schema:?}");
    }
}

#[test]
fn values_are_fitted_to_the_sites_columns() {
    let db = TestDb::create(Schema::Classic);
    db.add_user(10, &key('a'), true);
    db.add_torrent(100, &H1, 0);
    // A latin1 useragent column, as older sites have.
    db.exec(&["ALTER TABLE xbt_files_users MODIFY useragent varchar(20) CHARACTER SET latin1 NOT NULL DEFAULT ''"]);
    let p = tracker(&db, &["--allow-ip-spoofing", "true"]);
    let nul_id = *b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01";
    let long_agent = format!("Ünïcode😀{}", "x".repeat(300));
    let r = announce_as(
        &p,
        true,
        &key('a'),
        &H1,
        &nul_id,
        0,
        0,
        5,
        &format!("&event=started{V6}"),
        &long_agent,
    );
    assert_eq!(failure(&r), None);
    announce_as(
        &p,
        true,
        &key('a'),
        &H1,
        &nul_id,
        10,
        0,
        0,
        &format!("&event=completed{V6}"),
        &long_agent,
    );
    settled(&p);
    assert_eq!(
        stats(&p, "hayate_private_database_errors_total"),
        0,
        "{}",
        p.stderr_text()
    );
    let row: Option<(Vec<u8>, String, String)> = db
        .conn()
        .query_first("SELECT peer_id, ip, useragent FROM xbt_files_users")
        .unwrap();
    let (pid, ip, ua) = row.expect("row written");
    assert_eq!(pid, nul_id.to_vec());
    assert_eq!(ip, "", "an IPv6 address does not fit varchar(15)");
    assert_eq!(ua, format!("?n?code?{}", "x".repeat(12)));
    let snatch_ip: Option<String> = db
        .conn()
        .query_first("SELECT IP FROM xbt_snatched")
        .unwrap();
    assert_eq!(snatch_ip.as_deref(), Some(""));
    // Credit past the column's range is clamped, never a failed batch.
    ann(&p, &key('a'), &H1, 1, 0, 0, 5, "&event=started");
    ann(&p, &key('a'), &H1, 1, u64::MAX, 0, 5, "");
    settled(&p);
    assert_eq!(
        stats(&p, "hayate_private_database_errors_total"),
        0,
        "{}",
        p.stderr_text()
    );
    assert_eq!(db.credit(10).0, u64::MAX);
}

#[test]
fn a_tokened_snatch_is_reported_to_site_url() {
    let site = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/gazelle", site.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (i, s) in site.incoming().enumerate() {
            let Ok(mut s) = s else { continue };
            let mut line = String::new();
            BufReader::new(&s).read_line(&mut line).unwrap();
            // The first call fails: hayate must retry it.
            let status = if i == 0 { "500 Oops" } else { "200 OK" };
            let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
            let _ = tx.send(line);
        }
    });
    let db = TestDb::create(Schema::Ops);
    db.add_user(10, &key('a'), true);
    db.add_torrent(100, &H1, 0);
    db.add_token(10, 100);
    let p = tracker(&db, &["--site-url", &url]);
    ann(&p, &key('a'), &H1, 1, 0, 0, 5, "&event=started");
    ann(&p, &key('a'), &H1, 1, 0, 5, 0, "&event=completed");
    let want = format!(
        "GET /gazelle/tools.php?key={SITE}&type=expiretoken&action=ocelot&tokens=10%3A100 HTTP/1.1\r\n"
    );
    let first = rx.recv_timeout(Duration::from_secs(10)).expect("a call");
    assert_eq!(first, want);
    let second = rx.recv_timeout(Duration::from_secs(10)).expect("a retry");
    assert_eq!(second, want);
    assert!(wait_until(Duration::from_secs(5), || {
        let page = get(p.http[0], "/stats").text();
        metric(&page, "hayate_private_site_calls_total{result=\"ok\"}") == Some(1)
            && metric(&page, "hayate_private_site_calls_total{result=\"failed\"}") == Some(1)
    }));
    // The token is spent: the next download is credited.
    ann(&p, &key('a'), &H1, 2, 0, 0, 5, "&event=started");
    ann(&p, &key('a'), &H1, 2, 0, 7, 5, "");
    settled(&p);
    assert_eq!(db.credit(10), (0, 7));
    assert_eq!(
        db.int("SELECT Downloaded FROM users_freeleeches WHERE UserID = 10"),
        Some(5)
    );
}

#[test]
fn a_database_that_is_not_the_schema_named_stops_the_start() {
    let db = TestDb::create(Schema::Classic);
    let url = db.url(None);
    let err = refused(&["--database", &url, "--gazelle-schema", "ops"]);
    assert!(
        err.contains("users_leech_stats.UserID") && err.contains("gazelle_schema = ops"),
        "{err}"
    );
    // A wrong password is named, the password is not.
    let err = refused(&["--database", &url.replace("root@", "root:hunter2@")]);
    assert!(!err.contains("hunter2"), "{err}");
}
