//! Stateless BEP 15 connection IDs.
//!
//! Threat model. UDP source addresses can be forged. Without connection
//! IDs, anyone could send an announce "from" a victim's address and make
//! the tracker (a) send the victim a reply several times larger than the
//! request (reflection/amplification), and (b) insert the victim into
//! swarms (peer injection, which turns every client of those swarms into a
//! traffic source against the victim). The connect round trip proves the
//! sender receives at its address: only a real owner of the address sees
//! the ID the tracker hands out.
//!
//! So an ID must be unforgeable by an off-path attacker and cost nothing to
//! remember. It is `issued_at (u32 clock seconds) ‖ MAC (u32)`, where MAC is
//! a keyed hash (SipHash with a per-process random key, via std's
//! `RandomState`) of the client's IP address and `issued_at`. Validation
//! recomputes the MAC: no per-client state, so a flood of connects costs no
//! memory. An attacker who cannot see replies must guess 32 bits per try,
//! per address, per validity window; a restart changes the key and so
//! invalidates every ID (clients reconnect, as BEP 15 expects).
//!
//! The port is left out of the MAC on purpose: a NAT may move a client to a
//! new port between connect and announce, and the reflection defence only
//! needs the address.
//!
//! Reflection analysis (issue 6). What a forged source address can make
//! the tracker send to its victim, per datagram the attacker sends:
//!
//! | request (bytes)                         | reply to an unproven address |
//! |-----------------------------------------|------------------------------|
//! | connect (16)                            | connect reply, 16 bytes      |
//! | announce, ID not valid (98 and up)      | error, 8 + 21 = 29 bytes     |
//! | scrape, ID not valid (36 and up)        | error, 8 + 21 = 29 bytes     |
//! | anything that does not parse            | nothing (dropped, counted)   |
//!
//! One reply per datagram, never larger than the datagram that caused it:
//! a bandwidth factor of at most 1.0 and a packet factor of 1, so the
//! tracker is no better a reflector than the attacker's own uplink. The
//! error text is kept short for that reason ("invalid connection ID";
//! `tests/udp.rs` checks a refused 36-byte scrape gets at most 36 bytes
//! back). Peer lists and scrape counts, the large replies, go only to an
//! address that presented a valid ID, i.e. received our connect reply.
//! What remains is an attacker spending its own bandwidth 1:1; per-address
//! rate limits would not change that and are left out.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;

/// How long an ID is accepted after it was issued (BEP 15: a client may use
/// one for a minute; accept for two so slow clients are not refused).
pub const VALID_SECS: u32 = 120;

/// Why an ID was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The MAC does not match: made up, or from another address or process.
    Forged,
    /// Genuine but older than `VALID_SECS` (or from the future).
    Expired,
}

/// Issues and checks connection IDs with one per-process key.
#[derive(Clone, Debug)]
pub struct ConnIds {
    key: RandomState,
}

impl Default for ConnIds {
    fn default() -> Self {
        ConnIds {
            key: RandomState::new(),
        }
    }
}

impl ConnIds {
    /// The ID for `ip`, issued at clock second `now`.
    pub fn issue(&self, ip: IpAddr, now: u32) -> i64 {
        ((u64::from(now) << 32) | u64::from(self.mac(ip, now))) as i64
    }

    /// Checks an ID presented by `ip` at clock second `now`.
    pub fn check(&self, id: i64, ip: IpAddr, now: u32) -> Result<(), Refused> {
        let id = id as u64;
        let issued = (id >> 32) as u32;
        if id as u32 != self.mac(ip, issued) {
            return Err(Refused::Forged);
        }
        if issued > now || now - issued > VALID_SECS {
            return Err(Refused::Expired);
        }
        Ok(())
    }

    fn mac(&self, ip: IpAddr, issued: u32) -> u32 {
        let h = self.key.hash_one((ip, issued));
        (h ^ (h >> 32)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_for_two_minutes_from_the_same_address_only() {
        let ids = ConnIds::default();
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        let id = ids.issue(a, 1000);
        assert_eq!(ids.check(id, a, 1000), Ok(()));
        assert_eq!(ids.check(id, a, 1000 + VALID_SECS), Ok(()));
        assert_eq!(ids.check(id, a, 1001 + VALID_SECS), Err(Refused::Expired));
        assert_eq!(ids.check(id, a, 999), Err(Refused::Expired));
        assert_eq!(ids.check(id, b, 1000), Err(Refused::Forged));
        assert_eq!(ids.check(id ^ 1, a, 1000), Err(Refused::Forged));
        // Moving the timestamp breaks the MAC.
        assert_eq!(ids.check(id + (1 << 32), a, 1001), Err(Refused::Forged));
        // Another process (another key) does not accept it.
        assert_eq!(ConnIds::default().check(id, a, 1000), Err(Refused::Forged));
        assert_eq!(ids.check(0x41727101980, a, 1000), Err(Refused::Forged));
    }
}
