//! The control API, `/<site_password>/update?action=...`: the site
//! registers users and torrents, grants tokens, edits the client
//! whitelist (GAZELLE.md "The control API"). Every action is idempotent
//! (the site retries) and answers `success`, also when it names a user or
//! torrent the tracker does not know (logged: the site would only retry a
//! failure forever); a call hayate cannot read (unknown action, a missing
//! or malformed parameter) gets a failure naming what is wrong.
//!
//! An `info_hash` comes as 20 raw percent-encoded bytes (what Gazelle
//! sends) or as 40 hex digits (what a person types); bulk parameters are
//! plain concatenations of fixed-width raw values, as Gazelle sends them.

use crate::http::percent::{pairs, Decoded};

use super::swarm::Leech;
use super::{Private, User};
use crate::core::InfoHash;

/// What a successful call asks of the caller besides answering `success`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Nothing more.
    None,
    /// Set `announce_interval` to this many seconds.
    AnnounceInterval(u32),
}

/// Runs the call in `query`; `Err` carries the failure text.
pub fn update(private: &Private, query: &[u8]) -> Result<Effect, String> {
    let q = Query(query);
    let action = q.text("action")?;
    match action.as_str() {
        "add_torrent" => {
            let hash = q.hash("info_hash")?;
            let id = q.number("id")?;
            let leech = q.leech()?;
            private.add_torrent(hash, id, leech);
        }
        "update_torrent" => {
            let hash = q.hash("info_hash")?;
            let leech = q.leech()?;
            if !private.set_leech(&hash, leech) {
                log::info!("update_torrent {}: not registered", hex(&hash));
            }
        }
        "update_torrents" => {
            let leech = q.leech()?;
            for hash in q.fixed::<20>("info_hashes")? {
                // Bulk: a torrent the tracker does not know is skipped.
                private.set_leech(&hash, leech);
            }
        }
        "delete_torrent" => {
            let hash = q.hash("info_hash")?;
            let reason = q
                .optional_number("reason")?
                .and_then(|r| u8::try_from(r).ok());
            private.delete_torrent(&hash, Some(reason));
        }
        "add_token" | "remove_token" => {
            let hash = q.hash("info_hash")?;
            let user = q.number("userid")?;
            if !private.set_token(user, &hash, action == "add_token") {
                log::info!("{action} {}: not registered", hex(&hash));
            }
        }
        "add_user" => {
            let passkey = q.passkey("passkey")?;
            let id = q.number("id")?;
            let visible = q.optional_flag("visible")?.unwrap_or(true);
            let can_leech = private.users().get(&passkey).is_none_or(|u| u.can_leech);
            private.add_user(
                passkey,
                User {
                    id,
                    can_leech,
                    protected: !visible,
                },
            );
        }
        "update_user" => {
            let passkey = q.passkey("passkey")?;
            let Ok(old) = private.user(&passkey) else {
                log::info!("update_user: unknown passkey");
                return Ok(Effect::None);
            };
            let can_leech = q.optional_flag("can_leech")?.unwrap_or(old.can_leech);
            let visible = q.optional_flag("visible")?.unwrap_or(!old.protected);
            private.add_user(
                passkey,
                User {
                    id: old.id,
                    can_leech,
                    protected: !visible,
                },
            );
        }
        "remove_user" => {
            let passkey = q.passkey("passkey")?;
            private.remove_user(&passkey);
        }
        "remove_users" => {
            for passkey in q.fixed::<32>("passkeys")? {
                private.remove_user(&passkey);
            }
        }
        "change_passkey" => {
            let old = q.passkey("oldpasskey")?;
            let new = q.passkey("newpasskey")?;
            // A retried call finds the new passkey already in place.
            if !private.change_passkey(&old, new) && private.user(&new).is_err() {
                log::info!("change_passkey: unknown passkey");
            }
        }
        "add_whitelist" => {
            let prefix = q.bytes("peer_id")?;
            private.edit_whitelist(|list| {
                if !list.contains(&prefix) {
                    list.push(prefix);
                }
            });
        }
        "remove_whitelist" => {
            let prefix = q.bytes("peer_id")?;
            private.edit_whitelist(|list| list.retain(|p| *p != prefix));
        }
        "edit_whitelist" => {
            let old = q.bytes("old_peer_id")?;
            let new = q.bytes("new_peer_id")?;
            private.edit_whitelist(|list| {
                list.retain(|p| *p != old && *p != new);
                list.push(new);
            });
        }
        "update_announce_interval" => {
            let secs = q.number("new_announce_interval")?;
            if secs == 0 {
                return Err("new_announce_interval must be at least 1".into());
            }
            return Ok(Effect::AnnounceInterval(secs));
        }
        "info_torrent" => {
            let hash = q.hash("info_hash")?;
            match private.torrents.stripe(&hash).get(&hash) {
                Some(t) => log::info!(
                    "info_torrent {}: id {}, leech type {}",
                    hex(&hash),
                    t.id,
                    t.leech.code()
                ),
                None => log::info!("info_torrent {}: not registered", hex(&hash)),
            }
        }
        other => return Err(format!("unknown action {other:?}")),
    }
    Ok(Effect::None)
}

/// A control query's parameters.
struct Query<'a>(&'a [u8]);

impl Query<'_> {
    /// The decoded value of `name` (the first one).
    fn bytes(&self, name: &str) -> Result<Vec<u8>, String> {
        let raw = pairs(self.0)
            .find(|(k, _)| *k == name.as_bytes())
            .map(|(_, v)| v)
            .ok_or_else(|| format!("missing {name}"))?;
        Decoded::new(raw)
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| format!("malformed {name}"))
    }

    fn has(&self, name: &str) -> bool {
        pairs(self.0).any(|(k, _)| k == name.as_bytes())
    }

    fn text(&self, name: &str) -> Result<String, String> {
        String::from_utf8(self.bytes(name)?).map_err(|_| format!("invalid {name}"))
    }

    fn number(&self, name: &str) -> Result<u32, String> {
        self.text(name)?
            .parse()
            .map_err(|_| format!("invalid {name} (a whole number)"))
    }

    fn optional_number(&self, name: &str) -> Result<Option<i64>, String> {
        if !self.has(name) {
            return Ok(None);
        }
        let text = self.text(name)?;
        if text.is_empty() {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .map_err(|_| format!("invalid {name} (a whole number)"))
    }

    fn optional_flag(&self, name: &str) -> Result<Option<bool>, String> {
        match self.optional_number(name)? {
            None => Ok(None),
            Some(0) => Ok(Some(false)),
            Some(1) => Ok(Some(true)),
            Some(_) => Err(format!("invalid {name} (0 or 1)")),
        }
    }

    fn leech(&self) -> Result<Leech, String> {
        match self.optional_number("freetorrent")? {
            None | Some(0) => Ok(Leech::Normal),
            Some(1) => Ok(Leech::Free),
            Some(2) => Ok(Leech::Neutral),
            Some(_) => Err("invalid freetorrent (0, 1 or 2)".into()),
        }
    }

    fn passkey(&self, name: &str) -> Result<[u8; 32], String> {
        self.bytes(name)?
            .try_into()
            .map_err(|_| format!("invalid {name} (32 characters)"))
    }

    fn hash(&self, name: &str) -> Result<InfoHash, String> {
        let v = self.bytes(name)?;
        parse_hash(&v).ok_or_else(|| format!("invalid {name} (20 bytes or 40 hex digits)"))
    }

    fn fixed<const N: usize>(&self, name: &str) -> Result<Vec<[u8; N]>, String> {
        let v = self.bytes(name)?;
        if v.len() % N != 0 {
            return Err(format!("invalid {name} (n x {N} characters)"));
        }
        Ok(v.chunks_exact(N)
            .filter_map(|c| c.try_into().ok())
            .collect())
    }
}

/// 20 raw bytes, or 40 hex digits.
pub fn parse_hash(v: &[u8]) -> Option<InfoHash> {
    if let Ok(raw) = <[u8; 20]>::try_from(v) {
        return Some(raw);
    }
    if v.len() != 40 || !v.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; 20];
    for (o, pair) in out.iter_mut().zip(v.chunks_exact(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *o = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_raw_or_hex() {
        let raw = [0xABu8; 20];
        assert_eq!(parse_hash(&raw), Some(raw));
        assert_eq!(parse_hash(&[b'a'; 40]), Some([0xAA; 20]));
        assert_eq!(parse_hash(&[b'z'; 40]), None);
        assert_eq!(parse_hash(&[1; 19]), None);
        assert_eq!(
            parse_hash(b"+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a"),
            None
        );
    }

    #[test]
    fn query_values() {
        let q = Query(
            b"action=add_user&passkey=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&id=7&visible=0&bad=%zz",
        );
        assert_eq!(q.text("action").unwrap(), "add_user");
        assert_eq!(q.number("id").unwrap(), 7);
        assert_eq!(q.optional_flag("visible").unwrap(), Some(false));
        assert_eq!(q.optional_flag("can_leech").unwrap(), None);
        assert!(q.bytes("bad").unwrap_err().contains("malformed"));
        assert!(q.bytes("nope").unwrap_err().contains("missing"));
        assert_eq!(q.passkey("passkey").unwrap(), [b'a'; 32]);
        let q = Query(b"info_hashes=%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%01%02%02%02%02%02%02%02%02%02%02%02%02%02%02%02%02%02%02%02%02");
        assert_eq!(
            q.fixed::<20>("info_hashes").unwrap(),
            vec![[1; 20], [2; 20]]
        );
    }
}
