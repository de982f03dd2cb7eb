//! Feeds arbitrary bytes as one UDP datagram to `hayate::udp::codec::parse`
//! (BEP 15 connect, announce and scrape, with BEP 41 options after an
//! announce), then writes the reply the front would send with the codec's
//! reply writers.
//!
//! Asserts what the codec documents (offsets in PROTOCOL.md):
//! - a connect carries the protocol magic; an announce is at least 98
//!   bytes and every field is the big-endian value at its offset (an
//!   `event` outside 0..=3 is `None`); a scrape's hashes are all the bytes
//!   after the 16-byte header, a whole, non-zero number of 20-byte hashes;
//! - the BEP 41 URL data never exceeds `MAX_URL_DATA` and is empty for
//!   anything but an announce;
//! - reply sizes: connect 16 bytes, announce header 20, scrape 8 + 12 per
//!   hash, error 8 + the message; each echoes the transaction ID;
//! - what is refused is refused for the documented reason: `Short` only
//!   below 98 bytes, `BadOptions` only after an announce's 98 bytes,
//!   `BadLength` only for a scrape with hashes, `BadProtocolId` only for a
//!   connect, `UnknownAction` only for an action other than 0, 1, 2.
#![no_main]

use hayate::core::Event;
use hayate::udp::codec::{self, Invalid, Request, ANNOUNCE_LEN, MAX_URL_DATA, PROTOCOL_ID};
use libfuzzer_sys::fuzz_target;

fn be<const N: usize>(d: &[u8], at: usize) -> [u8; N] {
    d[at..at + N].try_into().expect("length checked")
}

fuzz_target!(|data: &[u8]| {
    // Dirty on entry, as the front's reused buffer is: parse clears it.
    let mut url = b"left over from the previous datagram".to_vec();
    let mut out = b"previous reply".to_vec();
    let parsed = codec::parse(data, &mut url);
    assert!(url.len() <= MAX_URL_DATA, "{} bytes of URL data", url.len());
    let request = match parsed {
        Ok(request) => request,
        Err(why) => {
            let action = data.get(8..12).map(|a| i32::from_be_bytes(be(a, 0)));
            match why {
                Invalid::Short => assert!(data.len() < ANNOUNCE_LEN, "{} bytes short", data.len()),
                Invalid::BadProtocolId => assert_eq!(action, Some(0)),
                Invalid::BadOptions => assert!(action == Some(1) && data.len() > ANNOUNCE_LEN),
                Invalid::BadLength => assert!(action == Some(2) && data.len() > 16),
                Invalid::UnknownAction => assert!(action.is_some_and(|a| !(0..=2).contains(&a))),
            }
            return;
        }
    };
    assert!(data.len() >= 16);
    let transaction_id = i32::from_be_bytes(be(data, 12));
    match request {
        Request::Connect { transaction_id: t } => {
            assert_eq!(i64::from_be_bytes(be(data, 0)), PROTOCOL_ID);
            assert_eq!(t, transaction_id);
            assert!(url.is_empty());
            codec::connect_reply(&mut out, t, 0x0123_4567_89ab_cdef);
            assert_eq!(out.len(), 16);
        }
        Request::Announce(a) => {
            assert!(data.len() >= ANNOUNCE_LEN);
            assert_eq!(a.connection_id, i64::from_be_bytes(be(data, 0)));
            assert_eq!(a.transaction_id, transaction_id);
            assert_eq!(a.info_hash, be::<20>(data, 16));
            assert_eq!(a.peer_id, be::<20>(data, 36));
            assert_eq!(a.downloaded, u64::from_be_bytes(be(data, 56)));
            assert_eq!(a.left, u64::from_be_bytes(be(data, 64)));
            assert_eq!(a.uploaded, u64::from_be_bytes(be(data, 72)));
            let event = match i32::from_be_bytes(be(data, 80)) {
                0 => Some(Event::None),
                1 => Some(Event::Completed),
                2 => Some(Event::Started),
                3 => Some(Event::Stopped),
                _ => None,
            };
            assert_eq!(a.event, event);
            assert_eq!(a.ip, u32::from_be_bytes(be(data, 84)));
            assert_eq!(a.key, u32::from_be_bytes(be(data, 88)));
            assert_eq!(a.num_want, i32::from_be_bytes(be(data, 92)));
            assert_eq!(a.port, u16::from_be_bytes(be(data, 96)));
            // URL data is made of option bytes: never more than follow the announce.
            assert!(url.len() <= data.len() - ANNOUNCE_LEN);
            codec::announce_reply(&mut out, a.transaction_id, 1800, u32::MAX, 7);
            assert_eq!(out.len(), 20);
            assert_eq!(&out[12..16], &i32::MAX.to_be_bytes(), "counts clamp to i32");
        }
        Request::Scrape {
            connection_id,
            transaction_id: t,
            hashes,
        } => {
            assert_eq!(connection_id, i64::from_be_bytes(be(data, 0)));
            assert_eq!(t, transaction_id);
            assert_eq!(hashes, &data[16..]);
            assert!(!hashes.is_empty() && hashes.len() % 20 == 0);
            assert!(url.is_empty());
            codec::scrape_reply(&mut out, t);
            for _ in hashes.chunks_exact(20) {
                codec::scrape_entry(&mut out, 1, 2, 3);
            }
            assert_eq!(out.len(), 8 + 12 * (hashes.len() / 20));
        }
    }
    assert_eq!(
        &out[4..8],
        &transaction_id.to_be_bytes(),
        "transaction ID echoed"
    );
    let message = "connection ID invalid or expired";
    codec::error_reply(&mut out, transaction_id, message);
    assert_eq!(out.len(), 8 + message.len());
    assert_eq!(&out[4..8], &transaction_id.to_be_bytes());
});
