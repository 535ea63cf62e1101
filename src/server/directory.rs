//! The user directory, on each user's *owner* node (docs/CLUSTER.md,
//! "Presence and invites: the user's owner"): for each user it owns, which
//! nodes have sessions of it and what they show, which nodes have
//! followers of it, and its pending invites. Pure data: what to send, and
//! to whom, is the presence module's.
//!
//! What a node says of a user carries that node's `seq`, which only grows:
//! whatever path a message took (to the owner, on to a new owner, from the
//! owner to a follower), an older one never replaces a newer one.

use crate::party::InviteNotice;
use crate::protocol::PartyInvite;
use crate::server::peers::{home_of, NodeId, NodePresence};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio::time::Instant;

/// What one node said last of one user's sessions there.
struct At {
    seq: u64,
    sessions: u32,
    presence: NodePresence,
    /// When it said it has none left: kept a while, so that a follower
    /// that registers late still learns those sessions went.
    gone_since: Option<Instant>,
}

#[derive(Default)]
struct Book {
    at: HashMap<NodeId, At>,
    followers: HashSet<NodeId>,
    invites: Vec<PartyInvite>,
}

impl Book {
    fn is_empty(&self) -> bool {
        self.at.is_empty() && self.followers.is_empty() && self.invites.is_empty()
    }

    fn with_sessions(&self) -> Vec<NodeId> {
        let at = self.at.iter().filter(|(_, at)| at.sessions > 0);
        at.map(|(node, _)| *node).collect()
    }
}

/// The books of the users this node owns (and, for a while after the
/// owner changed, of some it owned).
#[derive(Default)]
pub(crate) struct Directory {
    books: HashMap<String, Book>,
}

impl Directory {
    /// What node `presence.node` says of its sessions of a user, kept when
    /// newer than what it said before: the nodes to tell it to (its
    /// followers, not the sender); `None` when it was old.
    pub(crate) fn presence(&mut self, presence: &NodePresence) -> Option<Vec<NodeId>> {
        let book = self.books.entry(presence.user_id.clone()).or_default();
        if let Some(at) = book.at.get(&presence.node) {
            if at.seq >= presence.seq {
                return None;
            }
        }
        let gone_since = (presence.sessions == 0).then(Instant::now);
        book.at.insert(
            presence.node,
            At {
                seq: presence.seq,
                sessions: presence.sessions,
                presence: presence.clone(),
                gone_since,
            },
        );
        let to = book.followers.iter().copied();
        Some(to.filter(|node| *node != presence.node).collect())
    }

    /// Node `node` follows these users: what every node said of them.
    pub(crate) fn follow(&mut self, node: NodeId, user_ids: &[String]) -> Vec<NodePresence> {
        let mut known = Vec::new();
        for user_id in user_ids {
            let book = self.books.entry(user_id.clone()).or_default();
            book.followers.insert(node);
            let at = book.at.iter().filter(|(at, _)| **at != node);
            known.extend(at.map(|(_, at)| at.presence.clone()));
        }
        known
    }

    /// Node `node` has no followers of these users any more.
    pub(crate) fn unfollow(&mut self, node: NodeId, user_ids: &[String]) {
        for user_id in user_ids {
            if let Some(book) = self.books.get_mut(user_id) {
                book.followers.remove(&node);
                if book.is_empty() {
                    self.books.remove(user_id);
                }
            }
        }
    }

    /// An invite sent or gone: kept or dropped; the nodes with sessions of
    /// the invitee, to tell it to.
    pub(crate) fn invite(&mut self, notice: &InviteNotice) -> Vec<NodeId> {
        match notice {
            InviteNotice::Sent { user_id, invite } => {
                let book = self.books.entry(user_id.clone()).or_default();
                book.invites.retain(|i| i.party_id != invite.party_id);
                book.invites.push(invite.clone());
                book.with_sessions()
            }
            InviteNotice::Gone {
                user_id, party_id, ..
            } => {
                let Some(book) = self.books.get_mut(user_id) else {
                    return Vec::new();
                };
                book.invites.retain(|i| i.party_id != *party_id);
                let to = book.with_sessions();
                if book.is_empty() {
                    self.books.remove(user_id);
                }
                to
            }
        }
    }

    /// Invites a party's home holds, sent after this node became their
    /// invitees' owner: kept (replacing what this node had of the same
    /// party), told to no one (the invitees' sessions heard them when they
    /// were sent, or list them).
    pub(crate) fn home_invites(&mut self, invites: Vec<(String, PartyInvite)>) {
        for (user_id, invite) in invites {
            let book = self.books.entry(user_id).or_default();
            book.invites.retain(|i| i.party_id != invite.party_id);
            book.invites.push(invite);
        }
    }

    /// This node no longer owns the users `gone` says: their invites go
    /// (the parties' homes send them to the new owner), so none is kept
    /// here to come back stale should it own them again.
    pub(crate) fn release_invites(&mut self, gone: impl Fn(&str) -> bool) {
        self.books.retain(|user_id, book| {
            if gone(user_id) {
                book.invites.clear();
            }
            !book.is_empty()
        });
    }

    /// The user's pending invites not yet run out, oldest first.
    pub(crate) fn invites(&self, user_id: &str, now_ms: u64) -> Vec<PartyInvite> {
        let Some(book) = self.books.get(user_id) else {
            return Vec::new();
        };
        let pending = book.invites.iter().filter(|i| i.expires_at_ms > now_ms);
        pending.cloned().collect()
    }

    /// Node `node` is lost: what it said, its follows, and the invites of
    /// the parties it homed (gone with it) are gone.
    pub(crate) fn node_lost(&mut self, node: NodeId) {
        self.books.retain(|_, book| {
            book.at.remove(&node);
            book.followers.remove(&node);
            book.invites.retain(|i| home_of(i.party_id) != node);
            !book.is_empty()
        });
    }

    /// Forgets what has served its time: a node's word that its sessions
    /// went, after `keep_for`; invites run out; and the books of users
    /// this node no longer owns (`owned` says), once nothing in them is
    /// newer than `keep_for` (the nodes that still send here have moved
    /// to the new owner by then).
    pub(crate) fn tidy(&mut self, keep_for: Duration, now_ms: u64, owned: impl Fn(&str) -> bool) {
        let now = Instant::now();
        let old = |since: Instant| now.duration_since(since) >= keep_for;
        self.books.retain(|user_id, book| {
            book.at.retain(|_, at| !at.gone_since.is_some_and(&old));
            book.invites.retain(|i| i.expires_at_ms > now_ms);
            if !owned(user_id) && book.at.values().all(|at| at.gone_since.is_some()) {
                book.followers.clear();
            }
            !book.is_empty()
        });
    }
}
