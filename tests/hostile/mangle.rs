//! HTTP announces and scrapes with one parameter mangled each: overlong
//! values, bad percent-escapes, NULs (escaped and raw), 20-byte fields of
//! 19 and 21 bytes, huge and negative numbers, empty and missing values,
//! repeated keys, encoded and unknown key names, raw bytes a request line
//! may not hold, heads over the size limit. Parameters appear in a random
//! order.
//!
//! Each request's answer is worked out here, independently, from the rules
//! documented at the top of `src/http/query.rs` (percent-decoding, last
//! value of a repeated key wins, a malformed escape counts only in a value
//! that is read, the order of the checks) and from HTTP/1.1 (a target with
//! a control byte or invalid UTF-8 is not a request: 400; a head over
//! `http_max_request_bytes`: 431). The tracker must give exactly that
//! answer: a valid reply or the right failure reason, never a wrong one,
//! a crash or a hang.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::{Pace, Rng, Tally};
use crate::common::{connect_from, failure, field, pct, read_response, Response};

/// `http_max_request_bytes` (the default).
const MAX_HEAD: usize = 8192;
/// `max_scrape_hashes` (the default).
const MAX_SCRAPE: usize = 64;
/// Torrents the valid values announce to (bounded, so swarms stay small).
const TORRENTS: usize = 16;

const MALFORMED: &str = "malformed query string";
const NUMBER: &str = "invalid number in uploaded, downloaded, left or numwant";
const BAD_HASH: &str = "invalid info_hash (must be 20 bytes)";

/// Failure texts and their `reason` labels on the stats page.
pub const REASONS: [(&str, &str); 11] = [
    ("missing_info_hash", "missing info_hash"),
    ("invalid_info_hash", BAD_HASH),
    ("missing_peer_id", "missing peer_id"),
    ("invalid_peer_id", "invalid peer_id (must be 20 bytes)"),
    ("missing_port", "missing port"),
    ("invalid_port", "invalid port"),
    ("missing_left", "missing left"),
    ("invalid_number", NUMBER),
    ("invalid_event", "invalid event"),
    ("malformed_query", MALFORMED),
    (
        "too_many_info_hashes",
        "too many info_hash values in one scrape",
    ),
];

/// The stats label of a failure text.
pub fn label(reason: &str) -> &'static str {
    REASONS
        .iter()
        .chain(&[("full_scrape_disabled", "full scrape is disabled")])
        .find(|(_, text)| *text == reason)
        .map_or("unknown", |(label, _)| label)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// 20 raw bytes.
    Hash,
    /// Decimal 1..=65535.
    Port,
    /// Decimal u64.
    Count,
    /// `-` then digits (default), or digits (saturating).
    NumWant,
    /// "", paused, started, completed, stopped.
    Event,
    /// compact, no_peer_id: any value.
    Flag,
    /// ip, ipv4, ipv6: anything that is not an address counts as absent.
    Addr,
}

struct Param {
    name: &'static str,
    kind: Kind,
    /// The failure when absent (required parameters).
    missing: Option<&'static str>,
    /// The failure for a bad value.
    invalid: &'static str,
}

/// Announce parameters in the order hayate checks them.
const PARAMS: [Param; 13] = [
    Param {
        name: "info_hash",
        kind: Kind::Hash,
        missing: Some("missing info_hash"),
        invalid: BAD_HASH,
    },
    Param {
        name: "peer_id",
        kind: Kind::Hash,
        missing: Some("missing peer_id"),
        invalid: "invalid peer_id (must be 20 bytes)",
    },
    Param {
        name: "port",
        kind: Kind::Port,
        missing: Some("missing port"),
        invalid: "invalid port",
    },
    Param {
        name: "left",
        kind: Kind::Count,
        missing: Some("missing left"),
        invalid: NUMBER,
    },
    Param {
        name: "uploaded",
        kind: Kind::Count,
        missing: None,
        invalid: NUMBER,
    },
    Param {
        name: "downloaded",
        kind: Kind::Count,
        missing: None,
        invalid: NUMBER,
    },
    Param {
        name: "numwant",
        kind: Kind::NumWant,
        missing: None,
        invalid: NUMBER,
    },
    Param {
        name: "event",
        kind: Kind::Event,
        missing: None,
        invalid: "invalid event",
    },
    Param {
        name: "compact",
        kind: Kind::Flag,
        missing: None,
        invalid: "",
    },
    Param {
        name: "no_peer_id",
        kind: Kind::Flag,
        missing: None,
        invalid: "",
    },
    Param {
        name: "ip",
        kind: Kind::Addr,
        missing: None,
        invalid: "",
    },
    Param {
        name: "ipv4",
        kind: Kind::Addr,
        missing: None,
        invalid: "",
    },
    Param {
        name: "ipv6",
        kind: Kind::Addr,
        missing: None,
        invalid: "",
    },
];

/// What a request must get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A successful announce reply.
    Announce,
    /// A scrape reply with this many files.
    Scrape(usize),
    /// 200 with this failure reason.
    Failure(&'static str),
    /// Not a well-formed HTTP request: this status, then close.
    Status(u16),
}

/// `%` + two hex digits is a byte, anything else is itself; `None` when a
/// `%` is not followed by two hex digits.
fn decode(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The number a run of ASCII digits spells, `None` past u128 or when empty
/// or not all digits.
fn decimal(v: &[u8]) -> Option<u128> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let digits = v.iter().skip_while(|&&b| b == b'0').count();
    if digits > 38 {
        return Some(u128::MAX);
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// The verdict on the value a parameter ends up with.
fn judge(p: &Param, raw: &[u8]) -> Result<(), &'static str> {
    let v = decode(raw).ok_or(MALFORMED)?;
    let all_digits = !v.is_empty() && v.iter().all(u8::is_ascii_digit);
    let ok = match p.kind {
        Kind::Hash => v.len() == 20,
        Kind::Port => all_digits && decimal(&v).is_some_and(|n| (1..=65535).contains(&n)),
        Kind::Count => all_digits && decimal(&v).is_some_and(|n| n <= u128::from(u64::MAX)),
        Kind::NumWant => {
            let rest = v.strip_prefix(b"-").unwrap_or(&v);
            !rest.is_empty() && rest.iter().all(u8::is_ascii_digit)
        }
        Kind::Event => matches!(
            &v[..],
            b"" | b"paused" | b"started" | b"completed" | b"stopped"
        ),
        Kind::Flag | Kind::Addr => true,
    };
    if ok {
        Ok(())
    } else {
        Err(p.invalid)
    }
}

/// Raw `(key, value)` pairs of a query, as hayate splits them.
fn pairs(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(eq) => (&p[..eq], &p[eq + 1..]),
            None => (p, &[][..]),
        })
}

/// Whether a raw key names `name` (compared after percent-decoding).
fn names(key: &[u8], name: &str) -> bool {
    decode(key).is_some_and(|k| k == name.as_bytes())
}

/// The answer to `GET <target>` with a head of `head_len` bytes.
fn expect(target: &[u8], head_len: usize) -> Expect {
    // httparse takes bytes 0x21..=0x7e and valid UTF-8 above 0x7f.
    let target_ok = target
        .iter()
        .all(|&b| (0x21..=0x7e).contains(&b) || b >= 0x80)
        && std::str::from_utf8(target).is_ok();
    if !target_ok {
        return Expect::Status(400);
    }
    if head_len > MAX_HEAD {
        return Expect::Status(431);
    }
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => (&target[..q], &target[q + 1..]),
        None => (target, &[][..]),
    };
    let query = query.split(|&b| b == b'#').next().unwrap_or(&[]);
    let result = match path {
        b"/announce" => expect_announce(query),
        b"/scrape" => expect_scrape(query),
        _ => unreachable!("only /announce and /scrape are mangled"),
    };
    result.unwrap_or_else(Expect::Failure)
}

fn expect_announce(query: &[u8]) -> Result<Expect, &'static str> {
    for p in &PARAMS {
        let last = pairs(query).filter(|(k, _)| names(k, p.name)).last();
        match (last, p.missing) {
            (Some((_, v)), _) => judge(p, v)?,
            (None, Some(missing)) => return Err(missing),
            (None, None) => {}
        }
    }
    Ok(Expect::Announce)
}

fn expect_scrape(query: &[u8]) -> Result<Expect, &'static str> {
    let mut seen: Vec<Vec<u8>> = Vec::new();
    for (_, v) in pairs(query).filter(|(k, _)| names(k, "info_hash")) {
        let hash = decode(v).ok_or(MALFORMED)?;
        if hash.len() != 20 {
            return Err(BAD_HASH);
        }
        if !seen.contains(&hash) {
            if seen.len() >= MAX_SCRAPE {
                return Err("too many info_hash values in one scrape");
            }
            seen.push(hash);
        }
    }
    if seen.is_empty() {
        return Err("full scrape is disabled");
    }
    Ok(Expect::Scrape(seen.len()))
}

/// Characters that stand for themselves in a query value (no `&`, `=`,
/// `#`, `%`).
const PLAIN: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$'()*+,;:@/?";

/// `lo..=hi` plain characters.
fn plain(rng: &mut Rng, lo: usize, hi: usize) -> Vec<u8> {
    let n = rng.range(lo, hi);
    (0..n).map(|_| *rng.pick(PLAIN)).collect()
}

fn digits(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| b'0' + rng.below(10) as u8).collect()
}

fn escaped(bytes: &[u8]) -> Vec<u8> {
    pct(bytes).into_bytes()
}

/// A valid raw value for a parameter.
fn valid(rng: &mut Rng, kind: Kind, name: &str) -> Vec<u8> {
    match (kind, name) {
        (Kind::Hash, "info_hash") => escaped(&[rng.below(TORRENTS) as u8 + 0x40; 20]),
        (Kind::Hash, _) => escaped(&rng.bytes(20)),
        (Kind::Port, _) => rng.range(1, 65535).to_string().into_bytes(),
        (Kind::Count, _) => (rng.next() >> rng.below(64)).to_string().into_bytes(),
        (Kind::NumWant, _) => rng.pick(&["-1", "0", "5", "50", "200"]).as_bytes().to_vec(),
        (Kind::Event, _) => rng
            .pick(&["", "started", "paused", "completed", "stopped"])
            .as_bytes()
            .to_vec(),
        (Kind::Flag, _) => rng.pick(&["1", "0"]).as_bytes().to_vec(),
        (Kind::Addr, "ipv6") => b"%5B2001%3Adb8%3A%3A1%5D%3A6881".to_vec(),
        (Kind::Addr, _) => b"10.1.2.3".to_vec(),
    }
}

/// A mangled raw value, short enough to repeat.
fn mangled(rng: &mut Rng, kind: Kind, name: &str) -> Vec<u8> {
    let base = valid(rng, kind, name);
    match rng.below(14) {
        // Bad percent-escapes, at the end or inside.
        0 => {
            let bad = *rng.pick(&["%", "%4", "%zz", "%g0", "%%41", "%0x", "%+1"]);
            let mut v = base;
            v.extend_from_slice(bad.as_bytes());
            if bad.len() == 3 && rng.chance(2) {
                v.extend_from_slice(&plain(rng, 3, 3));
            }
            v
        }
        // NULs, escaped: at the end, at the start, or a 20-byte field of NULs.
        1 => match rng.below(3) {
            0 => [&base[..], b"%00"].concat(),
            1 => [&b"%00"[..], &base[..]].concat(),
            _ => escaped(&[0; 20]),
        },
        // 20-byte fields of 19 and 21 bytes.
        2 => escaped(&rng.bytes(19)),
        3 => escaped(&rng.bytes(21)),
        // Huge numbers.
        4 => rng
            .pick(&[
                "18446744073709551616",
                "99999999999999999999",
                "65536",
                "4294967296",
            ])
            .as_bytes()
            .to_vec(),
        5 => [&b"1"[..], &digits(rng, 60)].concat(),
        // Negative numbers.
        6 => rng
            .pick(&["-1", "-0", "-65535", "-18446744073709551616", "-", "--1"])
            .as_bytes()
            .to_vec(),
        // Empty.
        7 => Vec::new(),
        // Raw bytes that are fine in a request line: UTF-8, `+`, `?`.
        8 => [
            &base[..],
            rng.pick(&["é", "日本", "+", "?", "+%2B"]).as_bytes(),
        ]
        .concat(),
        // A fragment: everything after `#` is not part of the query.
        9 => [&base[..], b"#", &plain(rng, 5, 5)].concat(),
        // Plain text of a random length where a number or hash goes.
        10 => plain(rng, 1, 40),
        // Every byte escaped (valid, just unusual).
        11 => escaped(&decode(&base).unwrap_or_default()),
        // Leading zeros.
        12 => [&b"000"[..], &base[..]].concat(),
        _ => base,
    }
}

/// One key=value pair as raw bytes.
fn pair(key: &[u8], value: &[u8]) -> Vec<u8> {
    [key, b"=", value].concat()
}

/// A mangled announce target.
fn announce_target(rng: &mut Rng) -> Vec<u8> {
    let target = rng.below(PARAMS.len());
    let mut items: Vec<Vec<u8>> = Vec::new();
    for (i, p) in PARAMS.iter().enumerate() {
        let key = p.name.as_bytes();
        if i != target {
            if p.missing.is_some() || rng.chance(2) {
                items.push(pair(key, &valid(rng, p.kind, p.name)));
            }
            continue;
        }
        match rng.below(10) {
            // Missing.
            0 => {}
            // Repeated: good then bad, bad then good, or many.
            1 => {
                items.push(pair(key, &valid(rng, p.kind, p.name)));
                items.push(pair(key, &mangled(rng, p.kind, p.name)));
            }
            2 => {
                items.push(pair(key, &mangled(rng, p.kind, p.name)));
                items.push(pair(key, &valid(rng, p.kind, p.name)));
            }
            3 => {
                for _ in 0..rng.range(3, 40) {
                    let v = if rng.chance(2) {
                        valid(rng, p.kind, p.name)
                    } else {
                        mangled(rng, p.kind, p.name)
                    };
                    items.push(pair(key, &v));
                }
            }
            // The key percent-encoded (still the same key), with a bad escape
            // (so an unknown key), or in capitals (unknown too).
            4 => {
                let key = match rng.below(3) {
                    0 => escaped(key),
                    1 => [key, b"%z"].concat(),
                    _ => key.to_ascii_uppercase(),
                };
                items.push(pair(&key, &mangled(rng, p.kind, p.name)));
            }
            // Overlong, still under the head limit.
            5 => items.push(pair(key, &plain(rng, 100, 6000))),
            // Over the head limit.
            6 => items.push(pair(key, &plain(rng, MAX_HEAD, 3 * MAX_HEAD))),
            // A raw byte no request line may hold: a control byte, a space,
            // invalid UTF-8.
            7 => {
                let mut v = valid(rng, p.kind, p.name);
                let bad = *rng.pick(&[0u8, 1, 8, 0x0b, 0x1f, 0x7f, b' ', 0xff, 0xc3]);
                let at = rng.below(v.len() + 1);
                v.insert(at, bad);
                items.push(pair(key, &v));
            }
            // A key without `=`, and empty pairs.
            8 => {
                items.push(key.to_vec());
                items.push(Vec::new());
            }
            _ => items.push(pair(key, &mangled(rng, p.kind, p.name))),
        }
    }
    // Random order.
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
    [&b"/announce?"[..], &items.join(&b'&')].concat()
}

/// A mangled scrape target: up to 70 hashes (the cap is 64), repeats,
/// and maybe one bad value.
fn scrape_target(rng: &mut Rng) -> Vec<u8> {
    let n = *rng.pick(&[0, 1, 2, 10, 63, 64, 65, 70]);
    let mut items: Vec<Vec<u8>> = (0..n)
        .map(|_| pair(b"info_hash", &escaped(&[rng.below(80) as u8; 20])))
        .collect();
    if rng.chance(2) {
        let bad = mangled(rng, Kind::Hash, "info_hash");
        items.insert(rng.below(items.len() + 1), pair(b"info_hash", &bad));
    }
    if rng.chance(4) {
        items.push(b"info_hash".to_vec());
    }
    [&b"/scrape?"[..], &items.join(&b'&')].concat()
}

/// A whole request and the answer it must get.
pub fn request(rng: &mut Rng) -> (Vec<u8>, Expect) {
    let target = if rng.chance(5) {
        scrape_target(rng)
    } else {
        announce_target(rng)
    };
    let mut req = [&b"GET "[..], &target, b" HTTP/1.1\r\nHost: tracker\r\n"].concat();
    if rng.chance(10) {
        req.extend_from_slice(b"Connection: close\r\n");
    }
    req.extend_from_slice(b"\r\n");
    let want = expect(&target, req.len());
    (req, want)
}

/// Whether `r` is the answer `want` describes.
fn matches(r: &Response, want: &Expect) -> bool {
    let bencoded = || serde_bencode::from_bytes::<serde_bencode::value::Value>(&r.body).ok();
    match want {
        Expect::Status(code) => r.status == *code,
        Expect::Failure(reason) => {
            r.status == 200 && bencoded().and_then(|v| failure(&v)).as_deref() == Some(*reason)
        }
        Expect::Announce => {
            r.status == 200
                && bencoded()
                    .is_some_and(|v| failure(&v).is_none() && field(&v, "interval").is_some())
        }
        Expect::Scrape(n) => {
            r.status == 200
                && bencoded().is_some_and(|v| match field(&v, "files") {
                    Some(serde_bencode::value::Value::Dict(d)) => d.len() == *n,
                    _ => false,
                })
        }
    }
}

/// Sends `count` mangled requests spread over `over` on keep-alive
/// connections from `src`, reconnecting when the tracker closes. Returns
/// the tally (`mangled_*`: answers by failure reason or status) and a
/// description of each wrong answer.
pub fn send(
    addr: SocketAddr,
    src: [u8; 4],
    count: usize,
    over: Duration,
    mut rng: Rng,
    stop: &AtomicBool,
) -> (Tally, Vec<String>) {
    let mut t = Tally::default();
    let mut wrong = Vec::new();
    let pace = Pace::new(count, over);
    let mut conn: Option<BufReader<TcpStream>> = None;
    for i in 0..count {
        if !pace.wait(i, stop) {
            break;
        }
        let (req, want) = request(&mut rng);
        let mut c = match conn.take() {
            Some(c) => c,
            None => match connect_from(src, addr) {
                Some(s) => {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                    t.bump("mangled_connections");
                    BufReader::new(s)
                }
                None => {
                    t.bump("mangled_connect_failed");
                    continue;
                }
            },
        };
        t.bump("mangled_sent");
        // A head over the limit may be cut off while still being written;
        // the answer is read either way.
        let _ = c.get_mut().write_all(&req);
        let got = read_response(&mut c);
        let Some(r) = got else {
            t.bump("mangled_no_answer");
            wrong.push(format!(
                "no answer (hang or close) to {:?}, want {want:?}",
                String::from_utf8_lossy(&req[..req.len().min(300)])
            ));
            continue;
        };
        if !matches(&r, &want) {
            t.bump("mangled_wrong");
            wrong.push(format!(
                "{:?}: want {want:?}, got {} {:?}",
                String::from_utf8_lossy(&req[..req.len().min(300)]),
                r.status,
                String::from_utf8_lossy(&r.body[..r.body.len().min(200)])
            ));
        }
        match &want {
            Expect::Announce => t.bump("mangled_ok_announce"),
            Expect::Scrape(_) => t.bump("mangled_ok_scrape"),
            Expect::Failure(reason) => t.bump(&format!("mangled_failure_{}", label(reason))),
            Expect::Status(code) => t.bump(&format!("mangled_status_{code}")),
        }
        let close = r.status != 200 || r.header("connection").is_some_and(|v| v == "close");
        if !close {
            conn = Some(c);
        }
    }
    (t, wrong)
}
