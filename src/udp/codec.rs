//! The BEP 15 wire format (PROTOCOL.md "UDP tracker"): requests decoded
//! from a datagram without allocation (BEP 41 URL data is gathered into a
//! caller's reusable buffer), replies written into a caller's buffer.
//! All integers big-endian. Nothing here panics on any input.

use crate::core::{Event, InfoHash, PeerId};

/// The magic `connection_id` of a connect request.
pub const PROTOCOL_ID: i64 = 0x0417_2710_1980;
/// Bytes of an announce before any BEP 41 option.
pub const ANNOUNCE_LEN: usize = 98;
/// Most URL-data bytes gathered from BEP 41 options (a path + query with a
/// 32-character passkey needs about 60).
pub const MAX_URL_DATA: usize = 1024;

/// Action codes.
const CONNECT: i32 = 0;
const ANNOUNCE: i32 = 1;
const SCRAPE: i32 = 2;
const ERROR: i32 = 3;

/// A datagram that is not a request: dropped without a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Shorter than the request it claims to be.
    Short,
    /// An action we do not know.
    UnknownAction,
    /// A connect without the protocol magic.
    BadProtocolId,
    /// Malformed BEP 41 options (truncated, or URL data over the cap).
    BadOptions,
    /// A scrape whose hash list is not a whole number of hashes.
    BadLength,
}

impl Invalid {
    /// Every variant, index = `self as usize`.
    pub const ALL: [Invalid; 5] = [
        Invalid::Short,
        Invalid::UnknownAction,
        Invalid::BadProtocolId,
        Invalid::BadOptions,
        Invalid::BadLength,
    ];

    /// The `cause` label on the stats page.
    pub fn label(self) -> &'static str {
        match self {
            Invalid::Short => "short",
            Invalid::UnknownAction => "unknown_action",
            Invalid::BadProtocolId => "bad_protocol_id",
            Invalid::BadOptions => "bad_options",
            Invalid::BadLength => "bad_length",
        }
    }
}

/// An announce request (offsets in PROTOCOL.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// Presented connection ID.
    pub connection_id: i64,
    /// Echoed in the reply.
    pub transaction_id: i32,
    /// The torrent.
    pub info_hash: InfoHash,
    /// The client's peer id.
    pub peer_id: PeerId,
    /// Bytes downloaded.
    pub downloaded: u64,
    /// Bytes left.
    pub left: u64,
    /// Bytes uploaded.
    pub uploaded: u64,
    /// 0 none, 1 completed, 2 started, 3 stopped; `None` for other values.
    pub event: Option<Event>,
    /// Claimed IPv4 address (0 = the sender's).
    pub ip: u32,
    /// Client key.
    pub key: u32,
    /// Peers wanted; negative = default.
    pub num_want: i32,
    /// Listening port.
    pub port: u16,
}

/// A decoded request. `url` (announce only) is the concatenated BEP 41 URL
/// data, e.g. `/<passkey>/announce?x=y`, in the buffer passed to `parse`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// Connect.
    Connect {
        /// Echoed in the reply.
        transaction_id: i32,
    },
    /// Announce.
    Announce(AnnounceRequest),
    /// Scrape.
    Scrape {
        /// Presented connection ID.
        connection_id: i64,
        /// Echoed in the reply.
        transaction_id: i32,
        /// `n × 20` bytes of info hashes, in request order.
        hashes: &'a [u8],
    },
}

/// Reads `N` bytes at `at`.
fn bytes<const N: usize>(d: &[u8], at: usize) -> Result<[u8; N], Invalid> {
    d.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or(Invalid::Short)
}
fn i32_at(d: &[u8], at: usize) -> Result<i32, Invalid> {
    bytes::<4>(d, at).map(i32::from_be_bytes)
}
fn i64_at(d: &[u8], at: usize) -> Result<i64, Invalid> {
    bytes::<8>(d, at).map(i64::from_be_bytes)
}
fn u64_at(d: &[u8], at: usize) -> Result<u64, Invalid> {
    bytes::<8>(d, at).map(u64::from_be_bytes)
}

/// The connection ID, info hash, seeding and port of a datagram that
/// looks like an announce (right action, long enough), without decoding
/// the rest: for
/// prefetching a batch before it is served. `parse` still decides what
/// the datagram is.
pub fn peek_announce(d: &[u8]) -> Option<Peek> {
    if d.len() < ANNOUNCE_LEN || i32_at(d, 8) != Ok(ANNOUNCE) {
        return None;
    }
    Some(Peek {
        connection_id: i64_at(d, 0).ok()?,
        info_hash: bytes::<20>(d, 16).ok()?,
        seeder: i64_at(d, 64).ok()? == 0,
        port: u16::from_be_bytes(bytes::<2>(d, 96).ok()?),
    })
}

/// What `peek_announce` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peek {
    /// The connection ID, unchecked.
    pub connection_id: i64,
    /// The torrent.
    pub info_hash: InfoHash,
    /// `left` is 0.
    pub seeder: bool,
    /// The announced port.
    pub port: u16,
}

/// Decodes a datagram. BEP 41 URL data of an announce is gathered into
/// `url` (cleared first).
pub fn parse<'a>(d: &'a [u8], url: &mut Vec<u8>) -> Result<Request<'a>, Invalid> {
    url.clear();
    let connection_id = i64_at(d, 0)?;
    let action = i32_at(d, 8)?;
    let transaction_id = i32_at(d, 12)?;
    match action {
        CONNECT if connection_id != PROTOCOL_ID => Err(Invalid::BadProtocolId),
        CONNECT => Ok(Request::Connect { transaction_id }),
        ANNOUNCE => {
            if d.len() < ANNOUNCE_LEN {
                return Err(Invalid::Short);
            }
            let event = match i32_at(d, 80)? {
                0 => Some(Event::None),
                1 => Some(Event::Completed),
                2 => Some(Event::Started),
                3 => Some(Event::Stopped),
                _ => None,
            };
            let request = AnnounceRequest {
                connection_id,
                transaction_id,
                info_hash: bytes(d, 16)?,
                peer_id: bytes(d, 36)?,
                downloaded: u64_at(d, 56)?,
                left: u64_at(d, 64)?,
                uploaded: u64_at(d, 72)?,
                event,
                ip: bytes::<4>(d, 84).map(u32::from_be_bytes)?,
                key: bytes::<4>(d, 88).map(u32::from_be_bytes)?,
                num_want: i32_at(d, 92)?,
                port: bytes::<2>(d, 96).map(u16::from_be_bytes)?,
            };
            parse_options(d.get(ANNOUNCE_LEN..).unwrap_or(&[]), url)?;
            Ok(Request::Announce(request))
        }
        SCRAPE => {
            let hashes = d.get(16..).unwrap_or(&[]);
            if hashes.is_empty() {
                return Err(Invalid::Short);
            }
            if hashes.len() % 20 != 0 {
                return Err(Invalid::BadLength);
            }
            Ok(Request::Scrape {
                connection_id,
                transaction_id,
                hashes,
            })
        }
        _ => Err(Invalid::UnknownAction),
    }
}

/// BEP 41 options: 0 ends the list, 1 is a one-byte no-op, every other type
/// has a length byte; type 2 (URL data) values are concatenated, others are
/// skipped. Running out of bytes without an end marker is fine (most
/// clients send none); a length that overruns the datagram is not.
fn parse_options(mut rest: &[u8], url: &mut Vec<u8>) -> Result<(), Invalid> {
    while let Some((&kind, tail)) = rest.split_first() {
        match kind {
            0 => return Ok(()),
            1 => rest = tail,
            _ => {
                let (&len, tail) = tail.split_first().ok_or(Invalid::BadOptions)?;
                let data = tail.get(..usize::from(len)).ok_or(Invalid::BadOptions)?;
                if kind == 2 {
                    if url.len() + data.len() > MAX_URL_DATA {
                        return Err(Invalid::BadOptions);
                    }
                    url.extend_from_slice(data);
                }
                rest = tail.get(usize::from(len)..).unwrap_or(&[]);
            }
        }
    }
    Ok(())
}

/// Connect reply: 16 bytes.
pub fn connect_reply(out: &mut Vec<u8>, transaction_id: i32, connection_id: i64) {
    out.clear();
    out.extend_from_slice(&CONNECT.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(&connection_id.to_be_bytes());
}

/// Announce reply header; the caller appends the compact peers.
pub fn announce_reply(
    out: &mut Vec<u8>,
    transaction_id: i32,
    interval: u32,
    leechers: u32,
    seeders: u32,
) {
    out.clear();
    out.extend_from_slice(&ANNOUNCE.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    for v in [interval, leechers, seeders] {
        out.extend_from_slice(&clamp_i32(v).to_be_bytes());
    }
}

/// Scrape reply header; the caller appends one `scrape_entry` per hash.
pub fn scrape_reply(out: &mut Vec<u8>, transaction_id: i32) {
    out.clear();
    out.extend_from_slice(&SCRAPE.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
}

/// One scrape entry: seeders, completed, leechers.
pub fn scrape_entry(out: &mut Vec<u8>, seeders: u32, completed: u32, leechers: u32) {
    for v in [seeders, completed, leechers] {
        out.extend_from_slice(&clamp_i32(v).to_be_bytes());
    }
}

/// Error reply with a message.
pub fn error_reply(out: &mut Vec<u8>, transaction_id: i32, message: &str) {
    out.clear();
    out.extend_from_slice(&ERROR.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(message.as_bytes());
}

fn clamp_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announce_bytes(options: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&0x1122_3344_5566_7788i64.to_be_bytes());
        d.extend_from_slice(&1i32.to_be_bytes());
        d.extend_from_slice(&77i32.to_be_bytes());
        d.extend_from_slice(&[0xaa; 20]);
        d.extend_from_slice(b"-lt2010-abcdefghijkl");
        d.extend_from_slice(&5u64.to_be_bytes());
        d.extend_from_slice(&6u64.to_be_bytes());
        d.extend_from_slice(&7u64.to_be_bytes());
        d.extend_from_slice(&2i32.to_be_bytes());
        d.extend_from_slice(&[10, 0, 0, 1]);
        d.extend_from_slice(&0xdead_beefu32.to_be_bytes());
        d.extend_from_slice(&(-1i32).to_be_bytes());
        d.extend_from_slice(&6881u16.to_be_bytes());
        assert_eq!(d.len(), ANNOUNCE_LEN);
        d.extend_from_slice(options);
        d
    }

    #[test]
    fn connect_needs_the_magic() {
        let mut url = Vec::new();
        let mut d = PROTOCOL_ID.to_be_bytes().to_vec();
        d.extend_from_slice(&0i32.to_be_bytes());
        d.extend_from_slice(&99i32.to_be_bytes());
        assert_eq!(
            parse(&d, &mut url),
            Ok(Request::Connect { transaction_id: 99 })
        );
        d[7] ^= 1;
        assert_eq!(parse(&d, &mut url), Err(Invalid::BadProtocolId));
    }

    #[test]
    fn announce_fields_and_bep41() {
        let mut url = Vec::new();
        let Ok(Request::Announce(a)) = parse(&announce_bytes(&[]), &mut url) else {
            panic!("not an announce")
        };
        assert_eq!(a.connection_id, 0x1122_3344_5566_7788);
        assert_eq!(a.transaction_id, 77);
        assert_eq!(a.info_hash, [0xaa; 20]);
        assert_eq!(&a.peer_id, b"-lt2010-abcdefghijkl");
        assert_eq!((a.downloaded, a.left, a.uploaded), (5, 6, 7));
        assert_eq!(a.event, Some(Event::Started));
        assert_eq!(
            (a.ip, a.key, a.num_want, a.port),
            (0x0a00_0001, 0xdead_beef, -1, 6881)
        );
        assert!(url.is_empty());
        // (options, expected url data or error)
        type Case<'a> = (&'a [u8], Result<&'a [u8], Invalid>);
        let cases: &[Case] = &[
            (&[2, 1, b'/'], Ok(b"/")), // libtorrent's 101-byte announce
            (&[0], Ok(b"")),
            (&[1, 1, 1, 0, 2, 3, b'a', b'b', b'c'], Ok(b"")),
            (
                &[2, 4, b'/', b'a', b'n', b'n', 1, 2, 3, b'?', b'x', b'=', 0],
                Ok(b"/ann?x="),
            ),
            (&[9, 2, 0xff, 0xff, 2, 2, b'/', b'k'], Ok(b"/k")), // unknown type skipped
            (&[2, 5, b'a'], Err(Invalid::BadOptions)),
            (&[2], Err(Invalid::BadOptions)),
        ];
        for (opts, want) in cases {
            let got = parse(&announce_bytes(opts), &mut url).map(|_| url.as_slice());
            assert_eq!(got, *want, "{opts:?}");
        }
        let mut huge = Vec::new();
        for _ in 0..5 {
            huge.push(2);
            huge.push(255);
            huge.extend_from_slice(&[b'x'; 255]);
        }
        assert_eq!(
            parse(&announce_bytes(&huge), &mut url),
            Err(Invalid::BadOptions)
        );
    }

    #[test]
    fn peek_announce_only_for_announces() {
        let leecher = Peek {
            connection_id: 0x1122_3344_5566_7788,
            info_hash: [0xaa; 20],
            seeder: false,
            port: 6881,
        };
        assert_eq!(peek_announce(&announce_bytes(&[])), Some(leecher));
        assert_eq!(peek_announce(&announce_bytes(&[2, 1, b'x'])), Some(leecher));
        let mut seeding = announce_bytes(&[]);
        seeding[64..72].copy_from_slice(&0u64.to_be_bytes());
        seeding[96..98].copy_from_slice(&51413u16.to_be_bytes());
        let seeder = Peek {
            seeder: true,
            port: 51413,
            ..leecher
        };
        assert_eq!(peek_announce(&seeding), Some(seeder));
        assert!(matches!(
            parse(&seeding, &mut Vec::new()),
            Ok(Request::Announce(a)) if a.left == 0 && a.port == 51413
        ));
        let a = announce_bytes(&[]);
        assert_eq!(peek_announce(&a[..ANNOUNCE_LEN - 1]), None);
        let mut scrape = a.clone();
        scrape[8..12].copy_from_slice(&SCRAPE.to_be_bytes());
        assert_eq!(peek_announce(&scrape), None);
        assert_eq!(peek_announce(&[]), None);
    }

    #[test]
    fn short_unknown_and_scrape_lengths() {
        let mut url = Vec::new();
        let a = announce_bytes(&[]);
        for n in 0..ANNOUNCE_LEN {
            assert!(parse(&a[..n], &mut url).is_err(), "{n} bytes accepted");
        }
        let mut s = 5i64.to_be_bytes().to_vec();
        s.extend_from_slice(&2i32.to_be_bytes());
        s.extend_from_slice(&1i32.to_be_bytes());
        assert_eq!(parse(&s, &mut url), Err(Invalid::Short));
        s.extend_from_slice(&[1; 40]);
        assert!(
            matches!(parse(&s, &mut url), Ok(Request::Scrape { hashes, .. }) if hashes.len() == 40)
        );
        s.push(0);
        assert_eq!(parse(&s, &mut url), Err(Invalid::BadLength));
        let mut u = 5i64.to_be_bytes().to_vec();
        u.extend_from_slice(&9i32.to_be_bytes());
        u.extend_from_slice(&1i32.to_be_bytes());
        assert_eq!(parse(&u, &mut url), Err(Invalid::UnknownAction));
    }

    #[test]
    fn replies_have_the_documented_layout() {
        let mut out = Vec::new();
        connect_reply(&mut out, 7, -2);
        assert_eq!(
            out,
            [0, 0, 0, 0, 0, 0, 0, 7, 255, 255, 255, 255, 255, 255, 255, 254]
        );
        announce_reply(&mut out, 7, 1800, 3, u32::MAX);
        assert_eq!(out.len(), 20);
        assert_eq!(&out[16..], &i32::MAX.to_be_bytes());
        scrape_reply(&mut out, 7);
        scrape_entry(&mut out, 1, 2, 3);
        assert_eq!(
            out,
            [0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]
        );
        error_reply(&mut out, 7, "no");
        assert_eq!(out, [0, 0, 0, 3, 0, 0, 0, 7, b'n', b'o']);
    }
}
