//! Users as others find them: each user's live sessions (for status
//! presence and invites), who follows them, and their pending invites.
//!
//! One lock for the registry. It is taken after a party's shard lock has
//! been released (invite notices arrive through a party's delivery) and
//! never while taking a shard lock, so it cannot deadlock with the table.
//! Events are pushed to session outboxes under it: that never blocks.

use super::directory::Directory;
use super::peers::{NodeId, NodePresence};
use super::session::{lock, Outbound, SessionRef};
use crate::party::InviteNotice;
use crate::protocol::{Event, Reply, SessionId, UserStatus};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Default)]
struct UserEntry {
    /// Live sessions (connected or in their grace window), oldest first.
    sessions: Vec<SessionRef>,
    /// Sessions following this user.
    followers: HashMap<SessionId, SessionRef>,
    /// In a cluster, for a user followed here: what each other node said
    /// last of its sessions (their node is lost: offline).
    remote: HashMap<NodeId, NodePresence>,
    /// The owner told of this node's sessions, and of its follows.
    told_sessions: Option<NodeId>,
    told_follows: Option<NodeId>,
    /// When its last session here ended: kept a while (`Users::tidy`), so
    /// a new owner hears that too.
    gone_at: Option<Instant>,
}

impl UserEntry {
    fn is_unused(&self) -> bool {
        self.sessions.is_empty() && self.followers.is_empty() && self.gone_at.is_none()
    }

    fn tell_followers(&self, event: &Event) {
        for follower in self.followers.values() {
            follower.push_event(event.clone());
        }
    }

    /// This node's sessions of the user now, as its `seq`-th word.
    fn presence(&self, user_id: &str, me: NodeId, seq: u64) -> NodePresence {
        NodePresence {
            user_id: user_id.to_string(),
            node: me,
            seq,
            sessions: self.sessions.len() as u32,
            visible: self.sessions.iter().filter_map(status_of).collect(),
        }
    }

    /// How a session shows on a node other than `node` (here, or another
    /// node that said so): a session resumed on another node moves.
    fn shown_elsewhere(&self, node: NodeId, session: SessionId) -> Option<UserStatus> {
        let here = self.sessions.iter().filter_map(status_of);
        let others = (self.remote.iter().filter(|(at, _)| **at != node))
            .flat_map(|(_, presence)| presence.visible.iter().cloned());
        here.chain(others)
            .find(|status| status.presence.session_id == session)
    }

    /// What another node said of its sessions, when newer: its followers
    /// here hear the difference (sessions shown, changed, gone; a session
    /// that moved between nodes stays online).
    fn apply_remote(&mut self, presence: &NodePresence) {
        let old = match self.remote.get(&presence.node) {
            Some(known) if known.seq >= presence.seq => return,
            Some(known) => known.visible.clone(),
            None => Vec::new(),
        };
        for status in &presence.visible {
            let session = status.presence.session_id;
            let before = (old
                .iter()
                .find(|s| s.presence.session_id == session)
                .cloned())
            .or_else(|| self.shown_elsewhere(presence.node, session));
            match before.as_ref() {
                None => self.tell_followers(&Event::StatusOnline(status.clone())),
                Some(before) if before.status != status.status => {
                    self.tell_followers(&Event::StatusChanged(status.clone()))
                }
                Some(_) => {}
            }
        }
        for gone in old.into_iter().filter(|s| {
            let session = s.presence.session_id;
            (presence.visible.iter()).all(|now| now.presence.session_id != session)
                && self.shown_elsewhere(presence.node, session).is_none()
        }) {
            self.tell_followers(&Event::StatusOffline {
                presence: gone.presence,
            });
        }
        self.remote.insert(presence.node, presence.clone());
    }
}

/// What this node tells a user's new owner after the live nodes changed.
pub(crate) struct Reregister {
    pub(crate) owner: NodeId,
    pub(crate) user_id: String,
    /// Its sessions there (none: they ended lately).
    pub(crate) presence: Option<NodePresence>,
    /// It has followers of the user.
    pub(crate) follows: bool,
}

pub(crate) struct Users {
    by_id: Mutex<HashMap<String, UserEntry>>,
    /// In a cluster, the books of the users this node owns.
    directory: Mutex<Directory>,
    /// The `seq` of this node's next word of a user's sessions: from the
    /// clock at start, so a node that starts again says newer words.
    next_seq: AtomicU64,
}

impl Default for Users {
    fn default() -> Self {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Users {
            by_id: Mutex::default(),
            directory: Mutex::default(),
            next_seq: AtomicU64::new(since_epoch.as_micros() as u64),
        }
    }
}

/// Follow refused: it would pass the limit.
pub(crate) struct TooManyFollows;

fn status_of(session: &SessionRef) -> Option<UserStatus> {
    let social = lock(&session.social);
    social.visible.then(|| UserStatus {
        presence: session.presence.clone(),
        status: social.status.clone(),
    })
}

impl Users {
    /// The owner's books (the presence module alone uses them).
    pub(crate) fn directory(&self) -> MutexGuard<'_, Directory> {
        lock(&self.directory)
    }

    fn seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// A new session: online to its user's followers here (sessions start
    /// visible, with no status text). Returns this node's sessions of the
    /// user now, for its owner (`me`: this node; `owner`: the owner told).
    pub(crate) fn session_started(
        &self,
        session: &SessionRef,
        me: NodeId,
        owner: NodeId,
    ) -> NodePresence {
        let mut users = lock(&self.by_id);
        let user_id = &session.presence.user_id;
        let entry = users.entry(user_id.clone()).or_default();
        entry.sessions.push(session.clone());
        entry.gone_at = None;
        entry.told_sessions = Some(owner);
        if let Some(status) = status_of(session) {
            entry.tell_followers(&Event::StatusOnline(status));
        }
        entry.presence(user_id, me, self.seq())
    }

    /// The live sessions of a user.
    pub(crate) fn sessions_of(&self, user_id: &str) -> Vec<SessionRef> {
        lock(&self.by_id)
            .get(user_id)
            .map(|entry| entry.sessions.clone())
            .unwrap_or_default()
    }

    /// A session is over: offline to its followers, and it follows no one.
    /// Returns this node's sessions of its user now (for the owner), and
    /// the users no longer followed here by anyone.
    pub(crate) fn session_ended(
        &self,
        session: &SessionRef,
        me: NodeId,
    ) -> (Option<NodePresence>, Vec<String>) {
        let me_id = session.session_id();
        let (visible, follows) = {
            let mut social = lock(&session.social);
            (social.visible, std::mem::take(&mut social.follows))
        };
        let mut users = lock(&self.by_id);
        let user_id = &session.presence.user_id;
        let mut presence = None;
        if let Some(entry) = users.get_mut(user_id) {
            entry.sessions.retain(|s| s.session_id() != me_id);
            if visible {
                entry.tell_followers(&Event::StatusOffline {
                    presence: session.presence.clone(),
                });
            }
            if entry.sessions.is_empty() {
                entry.gone_at = Some(Instant::now());
            }
            presence = Some(entry.presence(user_id, me, self.seq()));
        }
        let unfollowed = follows
            .into_iter()
            .filter(|followed| Self::drop_follower(&mut users, followed, me_id))
            .collect();
        (presence, unfollowed)
    }

    /// `follower` no longer follows `followed`: true when no one here does
    /// now (its owner is to hear it).
    fn drop_follower(
        users: &mut HashMap<String, UserEntry>,
        followed: &str,
        follower: SessionId,
    ) -> bool {
        let Some(entry) = users.get_mut(followed) else {
            return false;
        };
        let was_followed = !entry.followers.is_empty();
        entry.followers.remove(&follower);
        let unfollowed = was_followed && entry.followers.is_empty();
        if unfollowed {
            entry.remote.clear();
            entry.told_follows = None;
        }
        if entry.is_unused() {
            users.remove(followed);
        }
        unfollowed
    }

    /// Changes what the session shows; its followers here hear the
    /// difference. Returns this node's sessions of its user now when what
    /// they show changed (for the owner).
    pub(crate) fn set_status(
        &self,
        session: &SessionRef,
        status: String,
        visible: bool,
        me: NodeId,
    ) -> Option<NodePresence> {
        let users = lock(&self.by_id);
        let (was_visible, was_status) = {
            let mut social = lock(&session.social);
            let before = (social.visible, std::mem::take(&mut social.status));
            social.status = status.clone();
            social.visible = visible;
            before
        };
        let user_id = &session.presence.user_id;
        let entry = users.get(user_id)?;
        let shown = UserStatus {
            presence: session.presence.clone(),
            status,
        };
        let event = match (was_visible, visible) {
            (true, true) if was_status != shown.status => Event::StatusChanged(shown),
            (false, true) => Event::StatusOnline(shown),
            (true, false) => Event::StatusOffline {
                presence: session.presence.clone(),
            },
            _ => return None,
        };
        entry.tell_followers(&event);
        Some(entry.presence(user_id, me, self.seq()))
    }

    /// Follows `user_ids`; returns the visible sessions here of all of
    /// them, and those not followed here before (their owner is to hear
    /// of it).
    pub(crate) fn follow(
        &self,
        session: &SessionRef,
        user_ids: Vec<String>,
        max_follows: usize,
    ) -> Result<(Vec<UserStatus>, Vec<String>), TooManyFollows> {
        let mut user_ids = user_ids;
        user_ids.sort_unstable();
        user_ids.dedup();
        let mut users = lock(&self.by_id);
        {
            let mut social = lock(&session.social);
            let new = user_ids
                .iter()
                .filter(|id| !social.follows.contains(*id))
                .count();
            if social.follows.len() + new > max_follows {
                return Err(TooManyFollows);
            }
            social.follows.extend(user_ids.iter().cloned());
        }
        let (mut online, mut new) = (Vec::new(), Vec::new());
        for user_id in user_ids {
            let entry = users.entry(user_id.clone()).or_default();
            if entry.told_follows.is_none() {
                new.push(user_id);
            }
            entry
                .followers
                .insert(session.session_id(), session.clone());
            online.extend(entry.sessions.iter().filter_map(status_of));
        }
        Ok((online, new))
    }

    /// Notes that `owner` was told of this node's follows of `user_ids`
    /// (those still followed here).
    pub(crate) fn told_follows(&self, user_ids: &[String], owner: NodeId) {
        let mut users = lock(&self.by_id);
        for user_id in user_ids {
            if let Some(entry) = users.get_mut(user_id) {
                if !entry.followers.is_empty() {
                    entry.told_follows = Some(owner);
                }
            }
        }
    }

    /// Answers `session`'s `Follow` of `user_ids` (request `id`) with
    /// their visible sessions as this node knows them now: its own, and
    /// those of other nodes as their owners told (the node task notes what
    /// they say in the order it came). Queued under the registry's lock,
    /// like every status event: a change told before the reply is in it,
    /// one made after it is told after it. `fit` says how many of them one
    /// reply holds.
    pub(crate) fn answer_follow(
        &self,
        session: &SessionRef,
        id: u32,
        mut user_ids: Vec<String>,
        fit: impl FnOnce(&[UserStatus]) -> usize,
    ) {
        user_ids.sort_unstable();
        user_ids.dedup();
        let users = lock(&self.by_id);
        let mut online = Vec::new();
        for entry in user_ids.iter().filter_map(|user_id| users.get(user_id)) {
            online.extend(entry.sessions.iter().filter_map(status_of));
            let mut remote: Vec<UserStatus> = (entry.remote.values())
                .flat_map(|presence| presence.visible.iter().cloned())
                .collect();
            remote.sort_by_key(|status| status.presence.session_id);
            online.extend(remote);
        }
        online.truncate(fit(&online));
        session.push(Outbound::Response {
            id,
            result: Ok(Reply::Followed { online }),
        });
    }

    /// What another node said of its sessions of a user (through the
    /// user's owner): for the followers here, if any.
    pub(crate) fn remote_presence(&self, presence: &NodePresence) {
        let mut users = lock(&self.by_id);
        if let Some(entry) = users.get_mut(&presence.user_id) {
            if !entry.followers.is_empty() {
                entry.apply_remote(presence);
            }
        }
    }

    /// Node `node` is lost: its sessions go offline for the followers here.
    pub(crate) fn node_lost(&self, node: NodeId) {
        let mut users = lock(&self.by_id);
        for entry in users.values_mut() {
            if let Some(presence) = entry.remote.remove(&node) {
                for status in presence.visible {
                    entry.tell_followers(&Event::StatusOffline {
                        presence: status.presence,
                    });
                }
            }
        }
    }

    /// Stops `session` following `user_ids`: the users no one here follows
    /// any more.
    pub(crate) fn unfollow(&self, session: &SessionRef, user_ids: Vec<String>) -> Vec<String> {
        let mut users = lock(&self.by_id);
        let mut social = lock(&session.social);
        let mut unfollowed = Vec::new();
        for user_id in user_ids {
            if social.follows.remove(&user_id)
                && Self::drop_follower(&mut users, &user_id, session.session_id())
            {
                unfollowed.push(user_id);
            }
        }
        unfollowed
    }

    /// An invite sent or gone: told to every live session of the invitee
    /// here (the invitee's owner keeps it; this node keeps no copy).
    pub(crate) fn notice(&self, notice: InviteNotice) {
        let users = lock(&self.by_id);
        match notice {
            InviteNotice::Sent { user_id, invite } => {
                let Some(entry) = users.get(&user_id) else {
                    return;
                };
                for session in &entry.sessions {
                    session.push_event(Event::Invited(invite.clone()));
                }
            }
            InviteNotice::Gone {
                user_id,
                party_id,
                reason,
            } => {
                let Some(entry) = users.get(&user_id) else {
                    return;
                };
                for session in &entry.sessions {
                    session.push_event(Event::InviteGone { party_id, reason });
                }
            }
        }
    }

    /// After the live nodes changed: for each user whose owner
    /// (`owner_of`) is not the one this node told, what to tell the new
    /// one (noted as told).
    pub(crate) fn reregister(
        &self,
        me: NodeId,
        owner_of: impl Fn(&str) -> NodeId,
    ) -> Vec<Reregister> {
        let mut users = lock(&self.by_id);
        let mut told = Vec::new();
        for (user_id, entry) in users.iter_mut() {
            let owner = owner_of(user_id);
            let sessions = entry.told_sessions.is_some_and(|told| told != owner)
                && (!entry.sessions.is_empty() || entry.gone_at.is_some());
            let follows = entry.told_follows.is_some_and(|told| told != owner);
            if !sessions && !follows {
                continue;
            }
            if sessions {
                entry.told_sessions = Some(owner);
            }
            if follows {
                entry.told_follows = Some(owner);
            }
            let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
            told.push(Reregister {
                owner,
                user_id: user_id.clone(),
                presence: sessions.then(|| entry.presence(user_id, me, seq)),
                follows,
            });
        }
        told
    }

    /// Forgets the users whose last session here ended `keep_for` ago and
    /// that nothing else keeps.
    pub(crate) fn tidy(&self, keep_for: Duration) {
        let mut users = lock(&self.by_id);
        users.retain(|_, entry| {
            if entry.gone_at.is_some_and(|at| at.elapsed() >= keep_for) {
                entry.gone_at = None;
                entry.told_sessions = None;
            }
            !entry.is_unused()
        });
    }
}
