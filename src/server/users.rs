//! Users as others find them: each user's live sessions (for status
//! presence and invites), who follows them, and their pending invites.
//!
//! Blocks hide sessions both ways: a follower does not see a session
//! whose block list names the follower's user, nor a session of a user
//! the follower's own list names (`sees`). Every status event, `Followed`
//! answer and invite passes that test per session; a change of a block
//! list tells each side the difference (`Users::set_blocks`).
//!
//! One lock for the registry. It is taken after a party's shard lock has
//! been released (invite notices arrive through a party's delivery) and
//! never while taking a shard lock, so it cannot deadlock with the table.
//! Events are pushed to session outboxes under it: that never blocks.

use super::directory::Directory;
use super::peers::{NodeId, NodePresence, Shown};
use super::session::{lock, BlockSet, Outbound, SessionLink, SessionRef};
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

    /// Tells `event`, about the session `about`, to the followers that
    /// see it.
    fn tell_followers(&self, about: &Shown, event: &Event) {
        for follower in self.followers.values() {
            if sees(follower, about) {
                follower.push_event(event.clone());
            }
        }
    }

    /// Every visible session of the user `follower` sees: here, and on
    /// other nodes as they said (by session id there).
    fn seen_by(&self, follower: &SessionLink) -> Vec<UserStatus> {
        let mut seen: Vec<UserStatus> = (self.sessions.iter().filter_map(|s| shown_of(s)))
            .filter(|shown| sees(follower, shown))
            .map(|shown| shown.status)
            .collect();
        let mut remote: Vec<UserStatus> = (self.remote.values())
            .flat_map(|presence| presence.visible.iter())
            .filter(|shown| sees(follower, shown))
            .map(|shown| shown.status.clone())
            .collect();
        remote.sort_by_key(|status| status.presence.session_id);
        seen.extend(remote);
        seen
    }

    /// This node's sessions of the user now, as its `seq`-th word.
    fn presence(&self, user_id: &str, me: NodeId, seq: u64) -> NodePresence {
        NodePresence {
            user_id: user_id.to_string(),
            node: me,
            seq,
            sessions: self.sessions.len() as u32,
            visible: self.sessions.iter().filter_map(|s| shown_of(s)).collect(),
        }
    }

    /// How a session shows on a node other than `node` (here, or another
    /// node that said so): a session resumed on another node moves.
    fn shown_elsewhere(&self, node: NodeId, session: SessionId) -> Option<Shown> {
        let here = self.sessions.iter().filter_map(|s| shown_of(s));
        let others = (self.remote.iter().filter(|(at, _)| **at != node))
            .flat_map(|(_, presence)| presence.visible.iter().cloned());
        here.chain(others)
            .find(|shown| shown.status.presence.session_id == session)
    }

    /// What another node said of its sessions, when newer: each follower
    /// here hears the difference it sees (sessions shown, changed, gone,
    /// hidden or shown by a block; a session that moved between nodes
    /// stays online).
    fn apply_remote(&mut self, presence: &NodePresence) {
        let old = match self.remote.get(&presence.node) {
            Some(known) if known.seq >= presence.seq => return,
            Some(known) => known.visible.clone(),
            None => Vec::new(),
        };
        for follower in self.followers.values() {
            for event in self.remote_changes(follower, presence.node, &old, &presence.visible) {
                follower.push_event(event);
            }
        }
        self.remote.insert(presence.node, presence.clone());
    }

    /// What `follower` sees change when node `node`'s visible sessions go
    /// from `old` to `new`.
    fn remote_changes(
        &self,
        follower: &SessionLink,
        node: NodeId,
        old: &[Shown],
        new: &[Shown],
    ) -> Vec<Event> {
        let seen = |shown: &Shown| sees(follower, shown);
        let session_of = |shown: &Shown| shown.status.presence.session_id;
        let elsewhere = |session| self.shown_elsewhere(node, session).filter(seen);
        let mut events = Vec::new();
        for now in new.iter().filter(|shown| seen(shown)) {
            let session = session_of(now);
            let before = (old.iter())
                .find(|shown| session_of(shown) == session && seen(shown))
                .cloned()
                .or_else(|| elsewhere(session));
            match before {
                None => events.push(Event::StatusOnline(now.status.clone())),
                Some(before) if before.status.status != now.status.status => {
                    events.push(Event::StatusChanged(now.status.clone()))
                }
                Some(_) => {}
            }
        }
        for gone in old.iter().filter(|shown| seen(shown)) {
            let session = session_of(gone);
            let still = new
                .iter()
                .any(|shown| session_of(shown) == session && seen(shown));
            if !still && elsewhere(session).is_none() {
                events.push(Event::StatusOffline {
                    presence: gone.status.presence.clone(),
                });
            }
        }
        events
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

/// The events that turn `before` (sessions seen) into `now`: offline for
/// those no longer seen, online for those seen anew.
fn differences(before: &[UserStatus], now: &[UserStatus]) -> Vec<Event> {
    let has = |list: &[UserStatus], session| list.iter().any(|s| s.presence.session_id == session);
    let gone = (before.iter())
        .filter(|s| !has(now, s.presence.session_id))
        .map(|s| Event::StatusOffline {
            presence: s.presence.clone(),
        });
    let came = (now.iter())
        .filter(|s| !has(before, s.presence.session_id))
        .map(|s| Event::StatusOnline(s.clone()));
    gone.chain(came).collect()
}

/// Follow refused: it would pass the limit.
pub(crate) struct TooManyFollows;

/// How a session of this node shows to its followers, while it is
/// visible: its status, and whom it hides from.
fn shown_of(session: &SessionLink) -> Option<Shown> {
    let social = lock(&session.social);
    social.visible.then(|| Shown {
        status: UserStatus {
            presence: session.presence.clone(),
            status: social.status.clone(),
        },
        blocks: session.block_list(),
    })
}

/// Whether `follower` sees the session `shown`: neither blocks the other's
/// user.
fn sees(follower: &SessionLink, shown: &Shown) -> bool {
    !follower.blocks_user(&shown.status.presence.user_id)
        && shown
            .blocks
            .binary_search(&follower.presence.user_id)
            .is_err()
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
        if let Some(shown) = shown_of(session) {
            entry.tell_followers(&shown, &Event::StatusOnline(shown.status.clone()));
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
        let shown = shown_of(session);
        let follows = std::mem::take(&mut lock(&session.social).follows);
        let mut users = lock(&self.by_id);
        let user_id = &session.presence.user_id;
        let mut presence = None;
        if let Some(entry) = users.get_mut(user_id) {
            entry.sessions.retain(|s| s.session_id() != me_id);
            if let Some(shown) = &shown {
                let offline = Event::StatusOffline {
                    presence: session.presence.clone(),
                };
                entry.tell_followers(shown, &offline);
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
        let shown = Shown {
            status: UserStatus {
                presence: session.presence.clone(),
                status,
            },
            blocks: session.block_list(),
        };
        let event = match (was_visible, visible) {
            (true, true) if was_status != shown.status.status => {
                Event::StatusChanged(shown.status.clone())
            }
            (false, true) => Event::StatusOnline(shown.status.clone()),
            (true, false) => Event::StatusOffline {
                presence: session.presence.clone(),
            },
            _ => return None,
        };
        entry.tell_followers(&shown, &event);
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
            let here = entry.sessions.iter().filter_map(|s| shown_of(s));
            online.extend(
                here.filter(|shown| sees(session, shown))
                    .map(|shown| shown.status),
            );
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
            online.extend(entry.seen_by(session));
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
                for shown in presence.visible {
                    let offline = Event::StatusOffline {
                        presence: shown.status.presence.clone(),
                    };
                    entry.tell_followers(&shown, &offline);
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
                // A session that blocks the inviter is not told (nor is
                // the inviter told so).
                let inviter = &invite.inviter.user_id;
                for session in entry.sessions.iter().filter(|s| !s.blocks_user(inviter)) {
                    session.push_event(Event::Invited(invite.clone()));
                }
            }
            InviteNotice::Gone {
                user_id,
                party_id,
                reason,
                inviter,
            } => {
                let Some(entry) = users.get(&user_id) else {
                    return;
                };
                // A session that was not told of the invite (it blocks the
                // inviter) is not told it is gone either.
                for session in entry.sessions.iter().filter(|s| !s.blocks_user(&inviter)) {
                    session.push_event(Event::InviteGone { party_id, reason });
                }
            }
        }
    }

    /// Gives a session here the block list `blocks`, and tells what it
    /// changes: the session hears its followed users' sessions go offline
    /// (now hidden) or come online (shown again), and its user's
    /// followers here hear the same of it. Returns this node's sessions
    /// of its user now when the session shows (for the owner, which
    /// passes its new list on to the follower nodes).
    pub(crate) fn set_blocks(
        &self,
        session: &SessionRef,
        blocks: BlockSet,
        me: NodeId,
    ) -> Option<NodePresence> {
        let users = lock(&self.by_id);
        let follows: Vec<String> = lock(&session.social).follows.iter().cloned().collect();
        let followed = |users: &HashMap<String, UserEntry>| -> Vec<UserStatus> {
            (follows.iter().filter_map(|user_id| users.get(user_id)))
                .flat_map(|entry| entry.seen_by(session))
                .collect()
        };
        let saw = followed(&users);
        let shown_before = shown_of(session);
        session.replace_blocks(blocks);
        let shown_now = shown_of(session);
        let sees_now = followed(&users);
        for event in differences(&saw, &sees_now) {
            session.push_event(event);
        }
        let user_id = &session.presence.user_id;
        let entry = users.get(user_id)?;
        let (before, now) = (shown_before?, shown_now?);
        for follower in entry.followers.values() {
            match (sees(follower, &before), sees(follower, &now)) {
                (true, false) => follower.push_event(Event::StatusOffline {
                    presence: session.presence.clone(),
                }),
                (false, true) => follower.push_event(Event::StatusOnline(now.status.clone())),
                _ => {}
            }
        }
        Some(entry.presence(user_id, me, self.seq()))
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
