//! Query-string decoding for HTTP announce and scrape (PROTOCOL.md "HTTP
//! announce", "HTTP scrape"): which parameters we read, their defaults, and
//! which [`Failure`] a bad request gets.
//!
//! Hot path, so no allocation on the announce path: a query is split into
//! raw `key=value` slices, the last raw value of each known key is kept, and
//! only those values are decoded, into stack buffers or byte by byte. No
//! shared state, no locks.
//!
//! Decoding rules (ours, matching what trackers in the wild do):
//! - `+` is the byte `+`, never a space; `%2B` is also `+`.
//! - Names are compared exactly after percent-decoding (`info%5Fhash` is
//!   `info_hash`). A name that is malformed or longer than [`MAX_KEY_LEN`]
//!   cannot be one we know, so it is skipped like any unknown key.
//! - A malformed escape (`%zz`, `%4` at the end) fails the request with
//!   [`Failure::MalformedQuery`] only in a value we read; elsewhere (unknown
//!   keys, an earlier value of a repeated key) it is ignored.
//! - A repeated key: the last value wins, except scrape's `info_hash`, which
//!   collects every distinct value.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use super::percent::{decode, pairs, DecodeError, Decoded, Malformed};
use crate::core::{Event, Failure, InfoHash, PeerId};

/// Longest parameter name we decode. Every name we read is at most 10
/// bytes, so a name that decodes to more than this is unknown by definition.
const MAX_KEY_LEN: usize = 32;
/// Longest `ip`/`ipv4`/`ipv6` value we try to parse once decoded: an IPv6
/// literal is at most 45 bytes, plus `[`, `]` and `:65535`. Longer values
/// are hostnames or garbage and count as absent.
const MAX_IP_LEN: usize = 64;
/// Longest `event` value we compare; the longest known one, `completed`, is
/// 9 bytes, so anything longer is an invalid event.
const MAX_EVENT_LEN: usize = 16;

/// A decoded HTTP announce (BEP 3, 7, 23).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceQuery {
    /// `info_hash`: 20 raw bytes.
    pub info_hash: InfoHash,
    /// `peer_id`: 20 raw bytes.
    pub peer_id: PeerId,
    /// `port`, 1..=65535.
    pub port: u16,
    /// `uploaded` bytes; 0 when absent.
    pub uploaded: u64,
    /// `downloaded` bytes; 0 when absent.
    pub downloaded: u64,
    /// `left` bytes (0 makes the peer a seeder).
    pub left: u64,
    /// `event`; `paused`, empty and absent are [`Event::None`].
    pub event: Event,
    /// `compact`: true unless the value is exactly `0`.
    pub compact: bool,
    /// `no_peer_id`: true only when the value is exactly `1`.
    pub no_peer_id: bool,
    /// `numwant`: `None` when absent or negative; huge values saturate to
    /// `usize::MAX` (the caller applies its default and cap).
    pub numwant: Option<usize>,
    /// `ip` when it is an IP literal; hostnames and garbage give `None`.
    pub ip: Option<IpAddr>,
    /// BEP 7 `ipv4`: `a.b.c.d` or `a.b.c.d:port` (port ignored).
    pub ipv4: Option<Ipv4Addr>,
    /// BEP 7 `ipv6`: `addr`, `[addr]` or `[addr]:port` (port ignored).
    pub ipv6: Option<Ipv6Addr>,
}

/// Decodes an announce query: the bytes after `?`, without the fragment.
///
/// When several things are wrong, the first failing check in this order is
/// reported: `info_hash`, `peer_id`, `port`, `left`, `uploaded`,
/// `downloaded`, `numwant`, `event`, then `compact`, `no_peer_id`, `ip`,
/// `ipv4`, `ipv6` (these last can only fail with a malformed escape). Never
/// allocates.
pub fn parse_announce(query: &[u8]) -> Result<AnnounceQuery, Failure> {
    let raw = RawAnnounce::collect(query);

    let info_hash = hash20(
        raw.info_hash.ok_or(Failure::MissingInfoHash)?,
        Failure::InvalidInfoHash,
    )?;
    let peer_id = hash20(
        raw.peer_id.ok_or(Failure::MissingPeerId)?,
        Failure::InvalidPeerId,
    )?;
    let port = port(raw.port.ok_or(Failure::MissingPort)?)?;
    let left = number(raw.left.ok_or(Failure::MissingLeft)?)?;
    let uploaded = raw.uploaded.map_or(Ok(0), number)?;
    let downloaded = raw.downloaded.map_or(Ok(0), number)?;
    let numwant = raw.numwant.map_or(Ok(None), numwant)?;
    let event = raw.event.map_or(Ok(Event::None), event)?;
    // Only an explicit `compact=0` turns compact peers off.
    let compact = !raw.compact.map_or(Ok(false), |v| decodes_to(v, b"0"))?;
    let no_peer_id = raw.no_peer_id.map_or(Ok(false), |v| decodes_to(v, b"1"))?;
    let ip = address(raw.ip, |t| t.parse::<IpAddr>().ok())?;
    let ipv4 = address(raw.ipv4, parse_ipv4)?;
    let ipv6 = address(raw.ipv6, parse_ipv6)?;

    Ok(AnnounceQuery {
        info_hash,
        peer_id,
        port,
        uploaded,
        downloaded,
        left,
        event,
        compact,
        no_peer_id,
        numwant,
        ip,
        ipv4,
        ipv6,
    })
}

/// Decodes a scrape query, appending each distinct `info_hash` to `out` in
/// first-seen order (entries already in `out` are left alone and not
/// compared against).
///
/// More than `max` distinct hashes give [`Failure::TooManyInfoHashes`]; a
/// value that is not 20 bytes, [`Failure::InvalidInfoHash`]; a malformed
/// escape in one, [`Failure::MalformedQuery`]; the first problem in query
/// order wins, and on any error `out` is restored to its length on entry.
/// No `info_hash` at all is `Ok` with nothing appended: the caller decides
/// about full scrape. Duplicates are found by linear search, which is cheap
/// because at most `max` hashes are ever kept.
pub fn parse_scrape(query: &[u8], max: usize, out: &mut Vec<InfoHash>) -> Result<(), Failure> {
    let start = out.len();
    let result = collect_hashes(query, max, start, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn collect_hashes(
    query: &[u8],
    max: usize,
    start: usize,
    out: &mut Vec<InfoHash>,
) -> Result<(), Failure> {
    for (k, v) in pairs(query) {
        if key(k) != Key::InfoHash {
            continue;
        }
        let hash = hash20(v, Failure::InvalidInfoHash)?;
        let ours = out.get(start..).unwrap_or(&[]);
        if ours.contains(&hash) {
            continue;
        }
        if ours.len() >= max {
            return Err(Failure::TooManyInfoHashes);
        }
        out.push(hash);
    }
    Ok(())
}

/// The parameters we read, by decoded name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    InfoHash,
    PeerId,
    Port,
    Uploaded,
    Downloaded,
    Left,
    Event,
    Compact,
    NoPeerId,
    NumWant,
    Ip,
    Ipv4,
    Ipv6,
    Other,
}

/// Classifies a raw (possibly percent-encoded) parameter name.
fn key(raw: &[u8]) -> Key {
    if !raw.contains(&b'%') {
        return key_named(raw);
    }
    let mut buf = [0u8; MAX_KEY_LEN];
    match decode(raw, &mut buf) {
        Ok(n) => buf.get(..n).map_or(Key::Other, key_named),
        Err(_) => Key::Other,
    }
}

fn key_named(name: &[u8]) -> Key {
    match name {
        b"info_hash" => Key::InfoHash,
        b"peer_id" => Key::PeerId,
        b"port" => Key::Port,
        b"uploaded" => Key::Uploaded,
        b"downloaded" => Key::Downloaded,
        b"left" => Key::Left,
        b"event" => Key::Event,
        b"compact" => Key::Compact,
        b"no_peer_id" => Key::NoPeerId,
        b"numwant" => Key::NumWant,
        b"ip" => Key::Ip,
        b"ipv4" => Key::Ipv4,
        b"ipv6" => Key::Ipv6,
        _ => Key::Other,
    }
}

/// The last raw value of each announce parameter we read.
#[derive(Default)]
struct RawAnnounce<'a> {
    info_hash: Option<&'a [u8]>,
    peer_id: Option<&'a [u8]>,
    port: Option<&'a [u8]>,
    uploaded: Option<&'a [u8]>,
    downloaded: Option<&'a [u8]>,
    left: Option<&'a [u8]>,
    event: Option<&'a [u8]>,
    compact: Option<&'a [u8]>,
    no_peer_id: Option<&'a [u8]>,
    numwant: Option<&'a [u8]>,
    ip: Option<&'a [u8]>,
    ipv4: Option<&'a [u8]>,
    ipv6: Option<&'a [u8]>,
}

impl<'a> RawAnnounce<'a> {
    fn collect(query: &'a [u8]) -> Self {
        let mut raw = RawAnnounce::default();
        for (k, v) in pairs(query) {
            let slot = match key(k) {
                Key::InfoHash => &mut raw.info_hash,
                Key::PeerId => &mut raw.peer_id,
                Key::Port => &mut raw.port,
                Key::Uploaded => &mut raw.uploaded,
                Key::Downloaded => &mut raw.downloaded,
                Key::Left => &mut raw.left,
                Key::Event => &mut raw.event,
                Key::Compact => &mut raw.compact,
                Key::NoPeerId => &mut raw.no_peer_id,
                Key::NumWant => &mut raw.numwant,
                Key::Ip => &mut raw.ip,
                Key::Ipv4 => &mut raw.ipv4,
                Key::Ipv6 => &mut raw.ipv6,
                Key::Other => continue,
            };
            *slot = Some(v);
        }
        raw
    }
}

/// A 20-byte `info_hash` or `peer_id`; any other length is `invalid`.
fn hash20(v: &[u8], invalid: Failure) -> Result<[u8; 20], Failure> {
    let mut out = [0u8; 20];
    match decode(v, &mut out) {
        Ok(20) => Ok(out),
        Ok(_) | Err(DecodeError::TooLong) => Err(invalid),
        Err(DecodeError::Malformed) => Err(Failure::MalformedQuery),
    }
}

/// What a run of decoded bytes says as a decimal number.
enum Decimal {
    Value(u64),
    /// All digits, but more than `u64::MAX`.
    Overflow,
    /// Empty, or some byte is not an ASCII digit.
    NotDigits,
}

/// Reads a decimal number. Leading zeros are fine; `+`, `-`, spaces are
/// not. A malformed escape anywhere is `MalformedQuery`, even after a
/// non-digit, so the answer does not depend on where the scan stopped.
fn decimal(bytes: Decoded<'_>) -> Result<Decimal, Failure> {
    let mut acc = Some(0u64);
    let mut any = false;
    let mut non_digit = false;
    for b in bytes {
        let b = b.map_err(|Malformed| Failure::MalformedQuery)?;
        if b.is_ascii_digit() {
            any = true;
            acc = acc
                .and_then(|a| a.checked_mul(10))
                .and_then(|a| a.checked_add(u64::from(b - b'0')));
        } else {
            non_digit = true;
        }
    }
    Ok(match acc {
        _ if non_digit || !any => Decimal::NotDigits,
        Some(n) => Decimal::Value(n),
        None => Decimal::Overflow,
    })
}

/// `uploaded`, `downloaded`, `left`.
fn number(v: &[u8]) -> Result<u64, Failure> {
    match decimal(Decoded::new(v))? {
        Decimal::Value(n) => Ok(n),
        Decimal::Overflow | Decimal::NotDigits => Err(Failure::InvalidNumber),
    }
}

fn port(v: &[u8]) -> Result<u16, Failure> {
    match decimal(Decoded::new(v))? {
        Decimal::Value(n) => match u16::try_from(n) {
            Ok(0) | Err(_) => Err(Failure::InvalidPort),
            Ok(p) => Ok(p),
        },
        Decimal::Overflow | Decimal::NotDigits => Err(Failure::InvalidPort),
    }
}

/// `numwant`: `-` then digits (clients send `-1` for "default") is `None`;
/// huge positive values saturate.
fn numwant(v: &[u8]) -> Result<Option<usize>, Failure> {
    let mut bytes = Decoded::new(v);
    let negative = matches!(bytes.clone().next(), Some(Ok(b'-')));
    if negative {
        bytes.next();
    }
    match (negative, decimal(bytes)?) {
        (_, Decimal::NotDigits) => Err(Failure::InvalidNumber),
        (true, _) => Ok(None),
        (false, Decimal::Value(n)) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        (false, Decimal::Overflow) => Ok(Some(usize::MAX)),
    }
}

fn event(v: &[u8]) -> Result<Event, Failure> {
    let mut buf = [0u8; MAX_EVENT_LEN];
    let n = match decode(v, &mut buf) {
        Ok(n) => n,
        Err(DecodeError::TooLong) => return Err(Failure::InvalidEvent),
        Err(DecodeError::Malformed) => return Err(Failure::MalformedQuery),
    };
    match buf.get(..n) {
        Some(b"" | b"paused") => Ok(Event::None),
        Some(b"started") => Ok(Event::Started),
        Some(b"completed") => Ok(Event::Completed),
        Some(b"stopped") => Ok(Event::Stopped),
        _ => Err(Failure::InvalidEvent),
    }
}

/// Whether `v` decodes to exactly `want`.
fn decodes_to(v: &[u8], want: &[u8]) -> Result<bool, Failure> {
    let mut want = want.iter();
    let mut same = true;
    for b in Decoded::new(v) {
        let b = b.map_err(|Malformed| Failure::MalformedQuery)?;
        same &= want.next() == Some(&b);
    }
    Ok(same && want.next().is_none())
}

/// An address parameter: `None` when absent, or when its decoded text is
/// too long, not UTF-8 or rejected by `parse`; only a malformed escape fails.
fn address<T>(v: Option<&[u8]>, parse: fn(&str) -> Option<T>) -> Result<Option<T>, Failure> {
    let Some(v) = v else { return Ok(None) };
    let mut buf = [0u8; MAX_IP_LEN];
    match decode(v, &mut buf) {
        Ok(n) => Ok(buf
            .get(..n)
            .and_then(|t| std::str::from_utf8(t).ok())
            .and_then(parse)),
        Err(DecodeError::TooLong) => Ok(None),
        Err(DecodeError::Malformed) => Err(Failure::MalformedQuery),
    }
}

fn parse_ipv4(text: &str) -> Option<Ipv4Addr> {
    text.parse::<Ipv4Addr>()
        .ok()
        .or_else(|| text.parse::<SocketAddrV4>().ok().map(|s| *s.ip()))
}

fn parse_ipv6(text: &str) -> Option<Ipv6Addr> {
    text.parse::<Ipv6Addr>()
        .ok()
        .or_else(|| text.parse::<SocketAddrV6>().ok().map(|s| *s.ip()))
        .or_else(|| {
            text.strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<Ipv6Addr>().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 20 bytes behind [`QB_HASH`]: binary, with some bytes sent
    /// unescaped because they are unreserved characters.
    const HASH: InfoHash = [
        0x12, 0x34, b'V', b'x', 0x9a, 0xbc, 0xde, 0xf0, 0x11, 0x22, 0x33, b'D', b'U', b'f', b'w',
        0x88, 0x99, 0xaa, 0xbb, 0xcc,
    ];
    const QB_HASH: &str = "%124Vx%9a%BC%de%F0%11%223DUfw%88%99%aa%bb%cc";
    const PEER: PeerId = *b"-qB4650-a~b.c_d-e8Z9";
    const QB_PEER: &str = "-qB4650-a~b.c_d-e8Z9";

    /// What qBittorrent 4.6 sends on its first announce (key order and
    /// extras included).
    fn qbittorrent() -> String {
        format!(
            "info_hash={QB_HASH}&peer_id={QB_PEER}&port=6881&uploaded=0&downloaded=0\
             &left=1048576&corrupt=0&key=8A2F1C3E&event=started&numwant=200&compact=1\
             &no_peer_id=1&supportcrypto=1&redundant=0"
        )
    }

    fn parse(q: &str) -> Result<AnnounceQuery, Failure> {
        parse_announce(q.as_bytes())
    }

    /// The minimal valid announce with `extra` appended.
    fn with(extra: &str) -> Result<AnnounceQuery, Failure> {
        parse(&format!(
            "info_hash={QB_HASH}&peer_id={QB_PEER}&port=1&left=0{extra}"
        ))
    }

    /// Percent-encodes every byte, the way a strict client would.
    fn enc(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("%{b:02X}")).collect()
    }

    #[test]
    fn qbittorrent_announce() {
        let a = parse(&qbittorrent()).unwrap();
        assert_eq!(
            a,
            AnnounceQuery {
                info_hash: HASH,
                peer_id: PEER,
                port: 6881,
                uploaded: 0,
                downloaded: 0,
                left: 1_048_576,
                event: Event::Started,
                compact: true,
                no_peer_id: true,
                numwant: Some(200),
                ip: None,
                ipv4: None,
                ipv6: None,
            }
        );
    }

    #[test]
    fn defaults() {
        let a = with("").unwrap();
        assert_eq!((a.uploaded, a.downloaded, a.left), (0, 0, 0));
        assert_eq!(a.event, Event::None);
        assert!(a.compact);
        assert!(!a.no_peer_id);
        assert_eq!((a.numwant, a.ip, a.ipv4, a.ipv6), (None, None, None, None));
    }

    #[test]
    fn hashes_decode_to_raw_bytes() {
        let mut plus = HASH;
        plus[0] = b'+';
        plus[1] = b'+';
        // (info_hash text, expected bytes): `+` stays `+`, `%2B`/`%2b` is `+`.
        let cases: &[(String, InfoHash)] = &[
            (enc(&HASH), HASH),
            (QB_HASH.to_string(), HASH),
            (format!("+%2BVx{}", &QB_HASH[6..]), plus),
            (format!("%2b+Vx{}", &QB_HASH[6..]), plus),
            (enc(&[0u8; 20]), [0; 20]),
            (enc(&[0xff; 20]), [0xff; 20]),
        ];
        for (text, want) in cases {
            let q = format!("info_hash={text}&peer_id={}&port=1&left=0", enc(&PEER));
            let a = parse(&q).unwrap_or_else(|e| panic!("{q}: {e:?}"));
            assert_eq!(a.info_hash, *want, "{q}");
            assert_eq!(a.peer_id, PEER, "{q}");
        }
    }

    #[test]
    fn failures() {
        let h = QB_HASH;
        let p = QB_PEER;
        let cases: &[(String, Failure)] = &[
            // Each required parameter missing.
            (
                format!("peer_id={p}&port=1&left=0"),
                Failure::MissingInfoHash,
            ),
            (
                format!("info_hash={h}&port=1&left=0"),
                Failure::MissingPeerId,
            ),
            (
                format!("info_hash={h}&peer_id={p}&left=0"),
                Failure::MissingPort,
            ),
            (
                format!("info_hash={h}&peer_id={p}&port=1"),
                Failure::MissingLeft,
            ),
            (String::new(), Failure::MissingInfoHash),
            // Hash lengths.
            (
                format!("info_hash={}&peer_id={p}&port=1&left=0", enc(&[1; 19])),
                Failure::InvalidInfoHash,
            ),
            (
                format!("info_hash={}&peer_id={p}&port=1&left=0", enc(&[1; 21])),
                Failure::InvalidInfoHash,
            ),
            (
                format!("info_hash={}&peer_id={p}&port=1&left=0", enc(&[1; 200])),
                Failure::InvalidInfoHash,
            ),
            (
                format!("info_hash=&peer_id={p}&port=1&left=0"),
                Failure::InvalidInfoHash,
            ),
            (
                format!("info_hash={h}&peer_id={}&port=1&left=0", enc(&[1; 19])),
                Failure::InvalidPeerId,
            ),
            (
                format!("info_hash={h}&peer_id={}&port=1&left=0", enc(&[1; 21])),
                Failure::InvalidPeerId,
            ),
            // Ports.
            (
                format!("info_hash={h}&peer_id={p}&port=0&left=0"),
                Failure::InvalidPort,
            ),
            (
                format!("info_hash={h}&peer_id={p}&port=65536&left=0"),
                Failure::InvalidPort,
            ),
            (
                format!("info_hash={h}&peer_id={p}&port=abc&left=0"),
                Failure::InvalidPort,
            ),
            (
                format!("info_hash={h}&peer_id={p}&port=&left=0"),
                Failure::InvalidPort,
            ),
            (
                format!("info_hash={h}&peer_id={p}&port=-1&left=0"),
                Failure::InvalidPort,
            ),
            (
                format!("info_hash={h}&peer_id={p}&port=99999999999999999999999&left=0"),
                Failure::InvalidPort,
            ),
            // Check order: info_hash, peer_id, port, left, then the rest.
            ("port=0&event=bogus".to_string(), Failure::MissingInfoHash),
            (
                format!("info_hash={h}&peer_id=short&port=0"),
                Failure::InvalidPeerId,
            ),
            (
                format!("info_hash={h}&peer_id={p}&port=0&uploaded=x"),
                Failure::InvalidPort,
            ),
            (
                format!("info_hash={h}&peer_id={p}&port=1&uploaded=x&event=bogus"),
                Failure::MissingLeft,
            ),
            (
                format!("info_hash={h}&peer_id={p}&port=1&left=0&event=bogus&uploaded=x"),
                Failure::InvalidNumber,
            ),
        ];
        for (q, want) in cases {
            assert_eq!(parse(q), Err(*want), "{q}");
        }
    }

    #[test]
    fn numbers() {
        let ok: &[(&str, u64)] = &[
            ("0", 0),
            ("007", 7),
            ("18446744073709551615", u64::MAX),
            ("%31%32", 12),
        ];
        for (text, want) in ok {
            for key in ["uploaded", "downloaded", "left"] {
                let a = with(&format!("&{key}={text}")).unwrap();
                let got = match key {
                    "uploaded" => a.uploaded,
                    "downloaded" => a.downloaded,
                    _ => a.left,
                };
                assert_eq!(got, *want, "{key}={text}");
            }
        }
        for bad in [
            "",
            "18446744073709551616",
            "99999999999999999999999999",
            "-1",
            "+1",
            "1 ",
            "0x10",
            "1.5",
            "%2B1",
        ] {
            for key in ["uploaded", "downloaded", "left"] {
                assert_eq!(
                    with(&format!("&{key}={bad}")),
                    Err(Failure::InvalidNumber),
                    "{key}={bad}"
                );
            }
        }
    }

    #[test]
    fn numwant() {
        let cases: &[(&str, Result<Option<usize>, Failure>)] = &[
            ("50", Ok(Some(50))),
            ("0", Ok(Some(0))),
            ("-1", Ok(None)),
            ("%2D1", Ok(None)),
            ("-99999999999999999999999", Ok(None)),
            ("18446744073709551615", Ok(Some(usize::MAX))),
            ("99999999999999999999999", Ok(Some(usize::MAX))),
            ("", Err(Failure::InvalidNumber)),
            ("-", Err(Failure::InvalidNumber)),
            ("-x", Err(Failure::InvalidNumber)),
            ("--1", Err(Failure::InvalidNumber)),
            ("12a", Err(Failure::InvalidNumber)),
            ("99999999999999999999999a", Err(Failure::InvalidNumber)),
            ("-1%zz", Err(Failure::MalformedQuery)),
        ];
        for (text, want) in cases {
            assert_eq!(
                with(&format!("&numwant={text}")).map(|a| a.numwant),
                *want,
                "numwant={text}"
            );
        }
    }

    #[test]
    fn events_and_flags() {
        let events: &[(&str, Result<Event, Failure>)] = &[
            ("started", Ok(Event::Started)),
            ("completed", Ok(Event::Completed)),
            ("stopped", Ok(Event::Stopped)),
            ("paused", Ok(Event::None)),
            ("", Ok(Event::None)),
            ("%73topped", Ok(Event::Stopped)),
            ("Started", Err(Failure::InvalidEvent)),
            ("start", Err(Failure::InvalidEvent)),
            ("completedcompletedcompleted", Err(Failure::InvalidEvent)),
            ("st%zzarted", Err(Failure::MalformedQuery)),
        ];
        for (text, want) in events {
            assert_eq!(
                with(&format!("&event={text}")).map(|a| a.event),
                *want,
                "event={text}"
            );
        }
        let flags: &[(&str, bool, bool)] = &[
            ("", true, false),
            ("&compact=1&no_peer_id=1", true, true),
            ("&compact=0&no_peer_id=0", false, false),
            ("&compact=%30", false, false),
            ("&compact=00&no_peer_id=11", true, false),
            ("&compact=&no_peer_id=", true, false),
            ("&compact=0&compact=1", true, false),
        ];
        for (extra, compact, no_peer_id) in flags {
            let a = with(extra).unwrap();
            assert_eq!(
                (a.compact, a.no_peer_id),
                (*compact, *no_peer_id),
                "{extra}"
            );
        }
    }

    #[test]
    fn escapes_in_known_and_unknown_keys() {
        let cases: &[(&str, Result<(), Failure>)] = &[
            // A value we read.
            ("&left=%zz", Err(Failure::MalformedQuery)),
            ("&left=1%4", Err(Failure::MalformedQuery)),
            ("&left=x%4", Err(Failure::MalformedQuery)),
            ("&uploaded=%", Err(Failure::MalformedQuery)),
            ("&compact=%g0", Err(Failure::MalformedQuery)),
            ("&ip=1.2.3.%", Err(Failure::MalformedQuery)),
            ("&ipv6=%3A%3", Err(Failure::MalformedQuery)),
            // Ignored: unknown keys, malformed names, overridden values.
            ("&key=%zz", Ok(())),
            ("&trackerid=%4", Ok(())),
            ("&%zz=1", Ok(())),
            ("&le%ft=%zz", Ok(())),
            ("&left=%zz&left=5", Ok(())),
        ];
        for (extra, want) in cases {
            assert_eq!(with(extra).map(|_| ()), *want, "{extra}");
        }
        let hash_bad = format!(
            "info_hash=%1g{}&peer_id={QB_PEER}&port=1&left=0",
            &QB_HASH[3..]
        );
        assert_eq!(parse(&hash_bad), Err(Failure::MalformedQuery));
        let peer_bad = format!("info_hash={QB_HASH}&peer_id={QB_PEER}%&port=1&left=0");
        assert_eq!(parse(&peer_bad), Err(Failure::MalformedQuery));
    }

    #[test]
    fn repeated_keys_last_wins() {
        let q = format!(
            "info_hash={}&peer_id={QB_PEER}&port=1&left=9&port=2&info_hash={QB_HASH}&left=3\
             &event=started&event=&numwant=5&numwant=-1",
            enc(&[7; 20])
        );
        let a = parse(&q).unwrap();
        assert_eq!((a.info_hash, a.port, a.left), (HASH, 2, 3));
        assert_eq!((a.event, a.numwant), (Event::None, None));
        // An earlier invalid value does not matter either.
        assert_eq!(with("&port=0&port=443").map(|a| a.port), Ok(443));
    }

    #[test]
    fn binary_garbage_in_unknown_keys() {
        let mut q = qbittorrent().into_bytes();
        q.extend_from_slice(b"&key=\x00\xff\x80=\xfe");
        q.extend_from_slice(b"&\x00\xff=\x01");
        q.extend_from_slice(b"&\xff");
        q.extend_from_slice(b"&&&=&==");
        let a = parse_announce(&q).unwrap();
        assert_eq!((a.info_hash, a.peer_id, a.port), (HASH, PEER, 6881));
        // Raw bytes straight in a hash value are taken as they are.
        let mut raw = b"info_hash=".to_vec();
        raw.extend_from_slice(&[0x00, 0xff, b'&' + 1, 0x80].repeat(5));
        raw.extend_from_slice(b"&peer_id=-qB4650-a~b.c_d-e8Z9&port=1&left=0");
        assert_eq!(
            parse_announce(&raw).map(|a| a.info_hash[..4].to_vec()),
            Ok(vec![0x00, 0xff, b'&' + 1, 0x80])
        );
    }

    #[test]
    fn percent_encoded_keys() {
        let q = format!(
            "info%5Fhash={QB_HASH}&%70eer%5fid={QB_PEER}&%70%6F%72%74=80&l%65ft=1\
             &{}=%5B::1%5D:1&info_hash%=x&{}=1",
            enc(b"ipv6"),
            enc(&[b'x'; 40]),
        );
        let a = parse(&q).unwrap();
        assert_eq!(
            (a.info_hash, a.peer_id, a.port, a.left),
            (HASH, PEER, 80, 1)
        );
        assert_eq!(a.ipv6, Some(Ipv6Addr::LOCALHOST));
        // Names are case-sensitive: these are unknown keys.
        assert_eq!(with("&LEFT=x&Port=0&EVENT=bogus").map(|a| a.port), Ok(1));
    }

    #[test]
    fn addresses() {
        let v4 = |s: &str| Some(s.parse::<Ipv4Addr>().unwrap());
        let v6 = |s: &str| Some(s.parse::<Ipv6Addr>().unwrap());
        let cases: &[(&str, Option<Ipv4Addr>, Option<Ipv6Addr>)] = &[
            ("&ipv4=192.0.2.7", v4("192.0.2.7"), None),
            ("&ipv4=192.0.2.7:6881", v4("192.0.2.7"), None),
            ("&ipv4=192.0.2.7%3A6881", v4("192.0.2.7"), None),
            ("&ipv4=192.0.2", None, None),
            ("&ipv4=2001:db8::1", None, None),
            ("&ipv4=tracker.example", None, None),
            ("&ipv6=2001:db8::1", None, v6("2001:db8::1")),
            ("&ipv6=2001%3Adb8%3A%3A1", None, v6("2001:db8::1")),
            ("&ipv6=[2001:db8::1]:6881", None, v6("2001:db8::1")),
            (
                "&ipv6=%5B2001%3adb8%3a%3a1%5D%3a6881",
                None,
                v6("2001:db8::1"),
            ),
            ("&ipv6=[2001:db8::1]", None, v6("2001:db8::1")),
            ("&ipv6=::ffff:192.0.2.7", None, v6("::ffff:192.0.2.7")),
            ("&ipv6=192.0.2.7", None, None),
            ("&ipv6=[2001:db8::1", None, None),
            ("&ipv4=1.2.3.4&ipv6=::2", v4("1.2.3.4"), v6("::2")),
        ];
        for (extra, ipv4, ipv6) in cases {
            let a = with(extra).unwrap();
            assert_eq!((a.ipv4, a.ipv6), (*ipv4, *ipv6), "{extra}");
        }
        let ips: &[(&str, Option<IpAddr>)] = &[
            ("1.2.3.4", Some(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)))),
            (
                "2001%3Adb8%3A%3A1",
                Some(IpAddr::V6("2001:db8::1".parse().unwrap())),
            ),
            ("tracker.example.org", None),
            ("1.2.3.4:80", None),
            ("", None),
        ];
        for (text, want) in ips {
            assert_eq!(with(&format!("&ip={text}")).unwrap().ip, *want, "ip={text}");
        }
        let long = format!("&ip={}", "a".repeat(500));
        assert_eq!(with(&long).unwrap().ip, None);
    }

    #[test]
    fn scrape() {
        let h1 = enc(&[1; 20]);
        let h2 = QB_HASH;
        let h3 = enc(&[3; 20]);
        type Want = Result<Vec<InfoHash>, Failure>;
        let cases: &[(String, usize, Want)] = &[
            (String::new(), 10, Ok(vec![])),
            ("key=1&peer_id=x".to_string(), 10, Ok(vec![])),
            (format!("info_hash={h2}"), 10, Ok(vec![HASH])),
            (
                format!("info_hash={h1}&info_hash={h2}&info%5Fhash={h1}&info_hash={h3}"),
                10,
                Ok(vec![[1; 20], HASH, [3; 20]]),
            ),
            (
                format!("info_hash={h1}&info_hash={h2}&info_hash={h1}"),
                2,
                Ok(vec![[1; 20], HASH]),
            ),
            (
                format!("info_hash={h1}&info_hash={h2}&info_hash={h3}"),
                2,
                Err(Failure::TooManyInfoHashes),
            ),
            (
                format!("info_hash={h1}"),
                0,
                Err(Failure::TooManyInfoHashes),
            ),
            (
                format!("info_hash={h1}&info_hash=abc"),
                10,
                Err(Failure::InvalidInfoHash),
            ),
            (
                format!("info_hash={h1}&info_hash=%zz"),
                10,
                Err(Failure::MalformedQuery),
            ),
            (format!("info_hash={h1}&key=%zz&%zz"), 10, Ok(vec![[1; 20]])),
        ];
        for (q, max, want) in cases {
            let mut out = vec![[9; 20]];
            let got = parse_scrape(q.as_bytes(), *max, &mut out);
            let first = out.remove(0);
            assert_eq!(first, [9; 20], "{q}: entries already in out kept");
            assert_eq!(got.map(|()| out), *want, "{q} max={max}");
        }
    }

    #[test]
    fn never_panics_on_prefixes_and_junk() {
        let q = format!("{}&ipv6=%5B::1%5D:1&ip=1.2.3.4&numwant=-1", qbittorrent());
        let q = q.as_bytes();
        for end in 0..=q.len() {
            let _ = parse_announce(&q[..end]);
            let _ = parse_scrape(&q[..end], 3, &mut Vec::new());
        }
        for junk in [&b"%"[..], b"=", b"&", b"%%%", b"=%=%", b"\xff\xfe=\x00"] {
            let _ = parse_announce(junk);
        }
    }
}
