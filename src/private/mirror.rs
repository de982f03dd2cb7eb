//! Control API changes written through to a database hayate owns (the
//! embedded one): which entities changed (`Dirty`, marked by each call),
//! read back as current state when the flusher builds a batch
//! (`take_mirror`), and the tickets that hold a call's answer until its
//! change is committed.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crossbeam_channel::Receiver;

use super::{lock, read, Private};
use crate::core::InfoHash;
use crate::db::{Mirror, Token, TorrentRow, UserRow};

/// Control API changes not yet written to a database hayate owns: which
/// entities changed; their current state is read when the batch is built.
#[derive(Debug, Default)]
pub(super) struct Dirty {
    pub(super) users: HashSet<u32>,
    /// Users removed by the control API, as they were (their row is
    /// written disabled, and created if it never was).
    pub(super) removed_users: HashMap<u32, UserRow>,
    pub(super) torrents: HashSet<InfoHash>,
    pub(super) deleted_torrents: HashSet<u32>,
    pub(super) tokens: HashSet<(u32, InfoHash)>,
    pub(super) whitelist: bool,
}

/// Control API marks taken for one commit (opaque).
#[derive(Debug, Default)]
pub struct MirrorMarks(Dirty, u64);

impl Private {
    /// Marks a control API change for the next commit (embedded database
    /// only) and asks the flusher for that commit now.
    pub(super) fn mark(&self, f: impl FnOnce(&mut Dirty)) {
        if self.mirror {
            let mut dirty = lock(&self.dirty);
            f(&mut dirty);
            self.issued.fetch_add(1, Relaxed);
            drop(dirty);
            // Full: a commit is asked for already, and will take this too.
            let _ = self.nudge_tx.try_send(());
        }
    }

    /// The ticket of the latest control API change (0: none ever).
    pub fn last_ticket(&self) -> u64 {
        self.issued.load(Relaxed)
    }

    /// True once every control API change up to `ticket` is committed.
    pub fn is_durable(&self, ticket: u64) -> bool {
        self.durable.load(Acquire) >= ticket
    }

    /// Records that the changes taken with `marks` are committed.
    pub fn confirm(&self, marks: &MirrorMarks) {
        self.durable.fetch_max(marks.1, Release);
    }

    /// The flusher's end of the commit-now requests.
    pub fn nudges(&self) -> &Receiver<()> {
        &self.nudge_rx
    }

    /// The control API changes to write, as current state (see `Mirror`).
    /// The marks are taken: on a failed commit, `restore_mirror` puts
    /// them back.
    pub fn take_mirror(&self) -> (Mirror, MirrorMarks) {
        let (dirty, up_to) = {
            let mut d = lock(&self.dirty);
            (std::mem::take(&mut *d), self.issued.load(Relaxed))
        };
        let mut m = Mirror::default();
        {
            let users = self.users();
            for &id in &dirty.users {
                match users.passkey_of(id).and_then(|k| Some((k, users.get(&k)?))) {
                    Some((passkey, u)) => m.users.push(UserRow {
                        id,
                        passkey,
                        can_leech: u.can_leech,
                        protected: u.protected,
                    }),
                    None => m
                        .disabled_users
                        .extend(dirty.removed_users.get(&id).cloned()),
                }
            }
        }
        let mut live_ids = HashSet::new();
        for hash in &dirty.torrents {
            if let Some(t) = self.torrents.stripe(hash).get(hash) {
                live_ids.insert(t.id);
                m.torrents.push(TorrentRow {
                    id: t.id,
                    info_hash: *hash,
                    free: t.leech.code(),
                    snatched: t.snatched,
                });
            }
        }
        m.deleted_torrents = dirty
            .deleted_torrents
            .iter()
            .copied()
            .filter(|id| !live_ids.contains(id))
            .collect();
        for (user, hash) in &dirty.tokens {
            let Some(torrent) = self.torrents.stripe(hash).get(hash).map(|t| t.id) else {
                continue;
            };
            let token = Token {
                user: *user,
                torrent,
            };
            if self.has_token(*user, torrent) {
                m.tokens.push(token);
            } else {
                m.expired_tokens.push(token);
            }
        }
        if dirty.whitelist {
            m.whitelist = Some(read(&self.whitelist).clone());
        }
        m.users.sort_by_key(|u| u.id);
        m.disabled_users.sort_by_key(|u| u.id);
        m.torrents.sort_by_key(|t| t.id);
        m.deleted_torrents.sort_unstable();
        (m, MirrorMarks(dirty, up_to))
    }

    /// Puts back marks taken by `take_mirror` whose commit failed.
    pub fn restore_mirror(&self, marks: MirrorMarks) {
        let mut d = lock(&self.dirty);
        let back = marks.0;
        d.users.extend(back.users);
        for (id, row) in back.removed_users {
            d.removed_users.entry(id).or_insert(row);
        }
        d.torrents.extend(back.torrents);
        d.deleted_torrents.extend(back.deleted_torrents);
        d.tokens.extend(back.tokens);
        d.whitelist |= back.whitelist;
    }
}
