//! Bencoded bodies of HTTP announce, scrape and failure replies
//! (PROTOCOL.md "HTTP announce", "HTTP scrape"; BEP 3, 7, 23, 24, 31, 48).
//!
//! Each writer appends one complete body to a caller-owned, reused
//! `Vec<u8>` and never clears it, so the caller decides what else shares the
//! buffer. Bencode requires dictionary keys in sorted byte order; each
//! writer emits its keys in that order, listed in its doc comment. Numbers
//! and address text go through small stack buffers: the only allocation is
//! the `Vec` growing. No shared state, no locks.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::core::announce::{AnnounceStats, ScrapeCounts};
use crate::core::InfoHash;

/// Bytes of one compact IPv4 peer: 4 address bytes, 2 port bytes (BEP 23).
const PEER4_LEN: usize = 6;
/// Bytes of one compact IPv6 peer: 16 address bytes, 2 port bytes (BEP 7).
const PEER6_LEN: usize = 18;
/// Room for any address as text: the longest IPv6 form is 45 bytes.
const ADDR_TEXT_LEN: usize = 48;
/// Room for any `u64` in decimal (20 digits).
const U64_DIGITS: usize = 20;

/// BEP 31 `retry in` of a failure reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryIn {
    /// The client may retry after this many minutes.
    Minutes(u32),
    /// The client should never retry (`retry in` = `never`).
    Never,
}

/// Appends an announce reply. Keys, in the order written: `complete`,
/// `downloaded`, `external ip`, `incomplete`, `interval`, `min interval`,
/// `peers`, `peers6`.
///
/// `peers4` holds 6-byte compact entries, `peers6` 18-byte ones; a trailing
/// partial entry is ignored. With `compact`, `peers` is the IPv4 string
/// (always present, maybe empty) and `peers6` the IPv6 string, left out when
/// empty. Without it, `peers` is one list of `{ip, port}` dicts holding the
/// IPv4 then the IPv6 peers (no `peer id`: public mode does not keep them).
/// `external_ip` (BEP 24) is written as 4 or 16 raw bytes; an IPv4-mapped
/// IPv6 address is written as its 4-byte IPv4 form.
pub fn announce(
    out: &mut Vec<u8>,
    stats: &AnnounceStats,
    peers4: &[u8],
    peers6: &[u8],
    compact: bool,
    external_ip: IpAddr,
) {
    let peers4 = whole_entries(peers4, PEER4_LEN);
    let peers6 = whole_entries(peers6, PEER6_LEN);
    out.push(b'd');
    key_int(out, b"complete", stats.complete.into());
    key_int(out, b"downloaded", stats.downloaded.into());
    string(out, b"external ip");
    match external_ip.to_canonical() {
        IpAddr::V4(a) => string(out, &a.octets()),
        IpAddr::V6(a) => string(out, &a.octets()),
    }
    key_int(out, b"incomplete", stats.incomplete.into());
    key_int(out, b"interval", stats.interval_secs.into());
    key_int(out, b"min interval", stats.min_interval_secs.into());
    string(out, b"peers");
    if compact {
        string(out, peers4);
        if !peers6.is_empty() {
            string(out, b"peers6");
            string(out, peers6);
        }
    } else {
        out.push(b'l');
        for entry in peers4.chunks_exact(PEER4_LEN) {
            if let Some((ip, port)) = split_entry::<4>(entry) {
                peer_dict(out, IpAddr::V4(Ipv4Addr::from(ip)), port);
            }
        }
        for entry in peers6.chunks_exact(PEER6_LEN) {
            if let Some((ip, port)) = split_entry::<16>(entry) {
                peer_dict(out, IpAddr::V6(Ipv6Addr::from(ip)), port);
            }
        }
        out.push(b'e');
    }
    out.push(b'e');
}

/// Appends a failure reply. Keys, in the order written: `failure reason`,
/// `min interval`, `retry in` (BEP 31; only when `retry_in` is given:
/// minutes as an integer, or the string `never`).
pub fn failure(out: &mut Vec<u8>, reason: &str, min_interval_secs: u32, retry_in: Option<RetryIn>) {
    out.push(b'd');
    string(out, b"failure reason");
    string(out, reason.as_bytes());
    key_int(out, b"min interval", min_interval_secs.into());
    match retry_in {
        Some(RetryIn::Minutes(m)) => key_int(out, b"retry in", m.into()),
        Some(RetryIn::Never) => {
            string(out, b"retry in");
            string(out, b"never");
        }
        None => {}
    }
    out.push(b'e');
}

/// Appends a scrape reply (BEP 48): `files` maps each hash to a dict with
/// keys `complete`, `downloaded`, `incomplete`.
///
/// Sorts `files` by hash in place, because bencode dict keys must be sorted,
/// and writes each hash once: of duplicates, one arbitrary entry is used
/// (they should agree). Empty `files` gives `d5:filesdee`.
pub fn scrape(out: &mut Vec<u8>, files: &mut [(InfoHash, ScrapeCounts)]) {
    out.extend_from_slice(SCRAPE_OPEN);
    scrape_files(out, files);
    out.extend_from_slice(SCRAPE_CLOSE);
}

/// What a scrape body starts with, before the first file.
pub const SCRAPE_OPEN: &[u8] = b"d5:filesd";
/// What a scrape body ends with, after the last file.
pub const SCRAPE_CLOSE: &[u8] = b"ee";

/// The entries of the `files` dict, sorted by hash and deduplicated (a
/// full scrape writes them in chunks, each sorted and after the last).
pub fn scrape_files(out: &mut Vec<u8>, files: &mut [(InfoHash, ScrapeCounts)]) {
    files.sort_unstable_by_key(|(hash, _)| *hash);
    let mut previous: Option<&InfoHash> = None;
    for (hash, counts) in files.iter() {
        if previous == Some(hash) {
            continue;
        }
        previous = Some(hash);
        string(out, hash);
        out.push(b'd');
        key_int(out, b"complete", counts.complete.into());
        key_int(out, b"downloaded", counts.downloaded.into());
        key_int(out, b"incomplete", counts.incomplete.into());
        out.push(b'e');
    }
}

/// `peers` cut down to whole `entry_len`-byte entries.
fn whole_entries(peers: &[u8], entry_len: usize) -> &[u8] {
    let whole = peers.len() - peers.len() % entry_len;
    peers.get(..whole).unwrap_or(&[])
}

/// Splits a compact entry into its `N` address bytes and big-endian port.
fn split_entry<const N: usize>(entry: &[u8]) -> Option<([u8; N], u16)> {
    let (ip, rest) = entry.split_first_chunk::<N>()?;
    let port = rest.first_chunk::<2>()?;
    Some((*ip, u16::from_be_bytes(*port)))
}

/// One non-compact peer: `d2:ip<len>:<text>4:porti<port>ee`.
fn peer_dict(out: &mut Vec<u8>, ip: IpAddr, port: u16) {
    let mut text = AddrText::default();
    // Cannot fail: ADDR_TEXT_LEN fits every address. Skip the peer if it
    // ever did rather than write a broken body.
    if write!(text, "{ip}").is_err() {
        return;
    }
    out.extend_from_slice(b"d2:ip");
    string(out, text.as_bytes());
    key_int(out, b"port", port.into());
    out.push(b'e');
}

/// A bencoded byte string: `<len>:<bytes>`.
fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    // usize → u64 never truncates on the platforms we build for.
    decimal(out, bytes.len() as u64);
    out.push(b':');
    out.extend_from_slice(bytes);
}

/// A key and an integer value: `<len>:<key>i<value>e`.
fn key_int(out: &mut Vec<u8>, key: &[u8], value: u64) {
    string(out, key);
    out.push(b'i');
    decimal(out, value);
    out.push(b'e');
}

/// `value` in decimal, without allocating.
fn decimal(out: &mut Vec<u8>, mut value: u64) {
    let mut buf = [0u8; U64_DIGITS];
    let mut len = 0;
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
        len += 1;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(buf.get(U64_DIGITS - len..).unwrap_or(&[]));
}

/// A stack buffer to format an address into.
struct AddrText {
    buf: [u8; ADDR_TEXT_LEN],
    len: usize,
}

impl Default for AddrText {
    fn default() -> Self {
        AddrText {
            buf: [0; ADDR_TEXT_LEN],
            len: 0,
        }
    }
}

impl AddrText {
    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

impl fmt::Write for AddrText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_bencode::value::Value;
    use std::collections::HashMap;

    type Dict = HashMap<Vec<u8>, Value>;

    /// Decodes a body as a dict and checks it is canonical bencode: encoding
    /// the decoded value again (serde_bencode sorts keys) gives the same
    /// bytes, so keys were sorted and nothing trailed.
    fn decode(body: &[u8]) -> Dict {
        let value: Value = serde_bencode::from_bytes(body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)));
        let again = serde_bencode::to_bytes(&value).unwrap();
        assert_eq!(
            again,
            body,
            "not canonical: {}",
            String::from_utf8_lossy(body)
        );
        match value {
            Value::Dict(d) => d,
            other => panic!("not a dict: {other:?}"),
        }
    }

    fn get<'a>(d: &'a Dict, key: &str) -> &'a Value {
        d.get(key.as_bytes()).unwrap_or_else(|| {
            panic!(
                "no {key:?} in {:?}",
                d.keys()
                    .map(|k| String::from_utf8_lossy(k))
                    .collect::<Vec<_>>()
            )
        })
    }

    fn int(d: &Dict, key: &str) -> i64 {
        match get(d, key) {
            Value::Int(i) => *i,
            other => panic!("{key}: {other:?}"),
        }
    }

    fn bytes<'a>(d: &'a Dict, key: &str) -> &'a [u8] {
        match get(d, key) {
            Value::Bytes(b) => b,
            other => panic!("{key}: {other:?}"),
        }
    }

    fn keys(d: &Dict) -> Vec<String> {
        let mut k: Vec<String> = d
            .keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        k.sort();
        k
    }

    const STATS: AnnounceStats = AnnounceStats {
        complete: 5,
        incomplete: 10,
        downloaded: 50,
        interval_secs: 1800,
        min_interval_secs: u32::MAX,
    };

    fn peer4(ip: [u8; 4], port: u16) -> Vec<u8> {
        [&ip[..], &port.to_be_bytes()].concat()
    }

    fn peer6(ip: &str, port: u16) -> Vec<u8> {
        let ip: Ipv6Addr = ip.parse().unwrap();
        [&ip.octets()[..], &port.to_be_bytes()].concat()
    }

    fn check_stats(d: &Dict) {
        assert_eq!(int(d, "complete"), 5);
        assert_eq!(int(d, "incomplete"), 10);
        assert_eq!(int(d, "downloaded"), 50);
        assert_eq!(int(d, "interval"), 1800);
        assert_eq!(int(d, "min interval"), i64::from(u32::MAX));
    }

    #[test]
    fn announce_compact() {
        let v4 = [peer4([1, 2, 3, 4], 6881), peer4([255, 0, 0, 1], 1)].concat();
        let v6 = [peer6("2001:db8::1", 51413), peer6("::1", 65535)].concat();
        let ext4: IpAddr = "192.0.2.7".parse().unwrap();
        let ext6: IpAddr = "2001:db8::7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let ext4_bytes = [192, 0, 2, 7];
        let ext6_bytes = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
        let v4_partial = [&v4[..], &[9, 9, 9]].concat();
        let v6_partial = [&v6[..], &[9; 17]].concat();
        struct Case<'a> {
            peers4: &'a [u8],
            peers6: &'a [u8],
            external_ip: IpAddr,
            want_peers: &'a [u8],
            want_peers6: Option<&'a [u8]>,
            want_external_ip: &'a [u8],
        }
        let cases = [
            Case {
                peers4: &v4,
                peers6: &v6,
                external_ip: ext4,
                want_peers: &v4,
                want_peers6: Some(&v6),
                want_external_ip: &ext4_bytes,
            },
            Case {
                peers4: &v4,
                peers6: &[],
                external_ip: ext6,
                want_peers: &v4,
                want_peers6: None,
                want_external_ip: &ext6_bytes,
            },
            // An IPv4-mapped requester gets its 4-byte address back.
            Case {
                peers4: &[],
                peers6: &v6,
                external_ip: mapped,
                want_peers: &[],
                want_peers6: Some(&v6),
                want_external_ip: &ext4_bytes,
            },
            Case {
                peers4: &[],
                peers6: &[],
                external_ip: ext4,
                want_peers: &[],
                want_peers6: None,
                want_external_ip: &ext4_bytes,
            },
            // Trailing partial entries are dropped.
            Case {
                peers4: &v4_partial,
                peers6: &v6_partial,
                external_ip: ext6,
                want_peers: &v4,
                want_peers6: Some(&v6),
                want_external_ip: &ext6_bytes,
            },
            Case {
                peers4: &[1, 2, 3],
                peers6: &[1; 17],
                external_ip: ext4,
                want_peers: &[],
                want_peers6: None,
                want_external_ip: &ext4_bytes,
            },
        ];
        for case in cases {
            let mut out = Vec::new();
            announce(
                &mut out,
                &STATS,
                case.peers4,
                case.peers6,
                true,
                case.external_ip,
            );
            let d = decode(&out);
            check_stats(&d);
            assert_eq!(bytes(&d, "peers"), case.want_peers);
            let peers6 = d.get(&b"peers6"[..]).map(|_| bytes(&d, "peers6"));
            assert_eq!(peers6, case.want_peers6);
            assert_eq!(bytes(&d, "external ip"), case.want_external_ip);
            let expected = 7 + usize::from(case.want_peers6.is_some());
            assert_eq!(d.len(), expected, "{:?}", keys(&d));
        }
    }

    #[test]
    fn announce_dict_form() {
        let v4 = [peer4([1, 2, 3, 4], 6881), peer4([10, 0, 0, 255], 80)].concat();
        let v6 = [peer6("2001:db8::1", 51413), peer6("::ffff:1.2.3.4", 1)].concat();
        let mut out = b"prefix".to_vec();
        announce(&mut out, &STATS, &v4, &v6, false, "::1".parse().unwrap());
        assert!(out.starts_with(b"prefix"), "appends, does not clear");
        let d = decode(&out[6..]);
        check_stats(&d);
        assert_eq!(bytes(&d, "external ip"), &Ipv6Addr::LOCALHOST.octets()[..]);
        assert!(
            !d.contains_key(&b"peers6"[..]),
            "v6 peers share the one list"
        );
        let Value::List(peers) = get(&d, "peers") else {
            panic!("peers is not a list")
        };
        let got: Vec<(String, i64)> = peers
            .iter()
            .map(|p| {
                let Value::Dict(p) = p else { panic!("{p:?}") };
                assert_eq!(keys(p), ["ip", "port"], "no peer id in public mode");
                (
                    String::from_utf8(bytes(p, "ip").to_vec()).unwrap(),
                    int(p, "port"),
                )
            })
            .collect();
        let want = [
            ("1.2.3.4", 6881),
            ("10.0.0.255", 80),
            ("2001:db8::1", 51413),
            ("::ffff:1.2.3.4", 1),
        ];
        let want: Vec<(String, i64)> = want.iter().map(|(ip, p)| (ip.to_string(), *p)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn announce_empty_peers() {
        for compact in [true, false] {
            let mut out = Vec::new();
            announce(
                &mut out,
                &AnnounceStats::default(),
                &[],
                &[],
                compact,
                "0.0.0.0".parse().unwrap(),
            );
            let d = decode(&out);
            for k in [
                "complete",
                "incomplete",
                "downloaded",
                "interval",
                "min interval",
            ] {
                assert_eq!(int(&d, k), 0, "{k}");
            }
            let peers = get(&d, "peers");
            if compact {
                assert_eq!(peers, &Value::Bytes(vec![]));
            } else {
                assert_eq!(peers, &Value::List(vec![]));
            }
            assert!(!d.contains_key(&b"peers6"[..]));
        }
    }

    #[test]
    fn failure_bodies() {
        let mut out = Vec::new();
        failure(&mut out, "missing info_hash", 300, None);
        assert_eq!(
            out,
            b"d14:failure reason17:missing info_hash12:min intervali300ee"
        );
        // (reason, min interval, retry in, expected `retry in` value)
        let cases = [
            ("invalid port", 60, None, None),
            ("", 0, Some(RetryIn::Minutes(5)), Some(Value::Int(5))),
            (
                "too many",
                1,
                Some(RetryIn::Minutes(u32::MAX)),
                Some(Value::Int(u32::MAX.into())),
            ),
            (
                "banned: ü",
                1800,
                Some(RetryIn::Never),
                Some(Value::Bytes(b"never".to_vec())),
            ),
        ];
        for (reason, min, retry, want) in cases {
            let mut out = Vec::new();
            failure(&mut out, reason, min, retry);
            let d = decode(&out);
            assert_eq!(bytes(&d, "failure reason"), reason.as_bytes());
            assert_eq!(int(&d, "min interval"), i64::from(min));
            assert_eq!(d.get(&b"retry in"[..]), want.as_ref(), "{reason}");
            assert_eq!(d.len(), 2 + usize::from(want.is_some()));
        }
    }

    #[test]
    fn scrape_sorted_and_distinct() {
        let c = |complete, incomplete, downloaded| ScrapeCounts {
            complete,
            incomplete,
            downloaded,
        };
        let mut files = vec![
            ([0xff; 20], c(1, 2, 3)),
            ([0x00; 20], c(0, 0, 0)),
            ([0x7f; 20], c(7, 8, 9)),
            ([0xff; 20], c(1, 2, 3)),
            ([0x80; 20], c(u32::MAX, 0, 1)),
            ([0x00; 20], c(0, 0, 0)),
        ];
        let mut out = Vec::new();
        scrape(&mut out, &mut files);
        let d = decode(&out);
        assert_eq!(keys(&d), ["files"]);
        let Value::Dict(f) = get(&d, "files") else {
            panic!("files is not a dict")
        };
        let want = [
            ([0x00; 20], (0, 0, 0)),
            ([0x7f; 20], (7, 8, 9)),
            ([0x80; 20], (u32::MAX.into(), 0, 1)),
            ([0xff; 20], (1, 2, 3)),
        ];
        assert_eq!(f.len(), want.len());
        for (hash, (complete, incomplete, downloaded)) in want {
            let Value::Dict(counts) = &f[&hash.to_vec()] else {
                panic!("{hash:?}")
            };
            assert_eq!(keys(counts), ["complete", "downloaded", "incomplete"]);
            assert_eq!(int(counts, "complete"), complete);
            assert_eq!(int(counts, "incomplete"), incomplete);
            assert_eq!(int(counts, "downloaded"), downloaded);
        }
        // The hashes are written in sorted order (decode() also checks this).
        let pos = |h: [u8; 20]| out.windows(20).position(|w| w == h).unwrap();
        assert!(pos([0x00; 20]) < pos([0x7f; 20]) && pos([0x80; 20]) < pos([0xff; 20]));
    }

    #[test]
    fn scrape_empty() {
        let mut out = Vec::new();
        scrape(&mut out, &mut []);
        assert_eq!(out, b"d5:filesdee");
        assert_eq!(get(&decode(&out), "files"), &Value::Dict(HashMap::new()));
    }

    #[test]
    fn decimal_digits() {
        for v in [0, 1, 9, 10, 99, 100, 4_294_967_295, u64::MAX] {
            let mut out = Vec::new();
            decimal(&mut out, v);
            assert_eq!(out, v.to_string().into_bytes());
        }
    }
}
