//! Users as others find them: each user's live sessions (for status
//! presence and invites), who follows them, and their pending invites.
//!
//! One lock for the registry. It is taken after a party's shard lock has
//! been released (invite notices arrive through a party's delivery) and
//! never while taking a shard lock, so it cannot deadlock with the table.
//! Events are pushed to session outboxes under it: that never blocks.

use super::session::{lock, Outbound, SessionRef};
use crate::party::InviteNotice;
use crate::protocol::{Event, PartyInvite, Reply, SessionId, UserStatus};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
struct UserEntry {
    /// Live sessions (connected or in their grace window), oldest first.
    sessions: Vec<SessionRef>,
    /// Sessions following this user.
    followers: HashMap<SessionId, SessionRef>,
    /// Pending invites, in the order they arrived (a renewal moves one to
    /// the back).
    invites: Vec<PartyInvite>,
    /// In a cluster, for a user followed here: its visible sessions on
    /// other nodes, by session, with their node (told offline when that
    /// node is lost).
    remote: HashMap<SessionId, (u32, UserStatus)>,
}

impl UserEntry {
    fn is_unused(&self) -> bool {
        self.sessions.is_empty() && self.followers.is_empty() && self.invites.is_empty()
    }

    /// Keeps the remote sessions' view in step with a status event.
    fn note_remote(&mut self, node: u32, event: &Event) {
        match event {
            Event::StatusOnline(status) | Event::StatusChanged(status) => {
                self.remote
                    .insert(status.presence.session_id, (node, status.clone()));
            }
            Event::StatusOffline { presence } => {
                self.remote.remove(&presence.session_id);
            }
            _ => {}
        }
    }

    fn tell_followers(&self, event: &Event) {
        for follower in self.followers.values() {
            follower.push_event(event.clone());
        }
    }
}

#[derive(Default)]
pub(crate) struct Users {
    by_id: Mutex<HashMap<String, UserEntry>>,
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
    /// A new session: online to its user's followers (sessions start
    /// visible, with no status text).
    /// Returns the event its followers got, for the other nodes' followers.
    pub(crate) fn session_started(&self, session: &SessionRef) -> Option<Event> {
        let mut users = lock(&self.by_id);
        let entry = users.entry(session.presence.user_id.clone()).or_default();
        entry.sessions.push(session.clone());
        let event = Event::StatusOnline(status_of(session)?);
        entry.tell_followers(&event);
        Some(event)
    }

    /// The live sessions of a user.
    pub(crate) fn sessions_of(&self, user_id: &str) -> Vec<SessionRef> {
        lock(&self.by_id)
            .get(user_id)
            .map(|entry| entry.sessions.clone())
            .unwrap_or_default()
    }

    /// A session is over: offline to its followers, and it follows no one.
    /// Returns the event its followers got.
    pub(crate) fn session_ended(&self, session: &SessionRef) -> Option<Event> {
        let me = session.session_id();
        let (visible, follows) = {
            let mut social = lock(&session.social);
            (social.visible, std::mem::take(&mut social.follows))
        };
        let mut users = lock(&self.by_id);
        let user_id = &session.presence.user_id;
        let offline = visible.then(|| Event::StatusOffline {
            presence: session.presence.clone(),
        });
        if let Some(entry) = users.get_mut(user_id) {
            entry.sessions.retain(|s| s.session_id() != me);
            if let Some(offline) = &offline {
                entry.tell_followers(offline);
            }
            if entry.is_unused() {
                users.remove(user_id);
            }
        }
        for followed in follows {
            if let Some(entry) = users.get_mut(&followed) {
                entry.followers.remove(&me);
                if entry.followers.is_empty() {
                    entry.remote.clear();
                }
                if entry.is_unused() {
                    users.remove(&followed);
                }
            }
        }
        offline
    }

    /// Changes what the session shows; its followers hear the difference,
    /// which is returned.
    pub(crate) fn set_status(
        &self,
        session: &SessionRef,
        status: String,
        visible: bool,
    ) -> Option<Event> {
        let users = lock(&self.by_id);
        let (was_visible, was_status) = {
            let mut social = lock(&session.social);
            let before = (social.visible, std::mem::take(&mut social.status));
            social.status = status.clone();
            social.visible = visible;
            before
        };
        let entry = users.get(&session.presence.user_id)?;
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
        Some(event)
    }

    /// Follows `user_ids`; returns the visible sessions of all of them.
    pub(crate) fn follow(
        &self,
        session: &SessionRef,
        user_ids: Vec<String>,
        max_follows: usize,
    ) -> Result<Vec<UserStatus>, TooManyFollows> {
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
        let mut online = Vec::new();
        for user_id in user_ids {
            let entry = users.entry(user_id).or_default();
            entry
                .followers
                .insert(session.session_id(), session.clone());
            online.extend(entry.sessions.iter().filter_map(status_of));
        }
        Ok(online)
    }

    /// Answers `session`'s `Follow` of `user_ids` (request `id`) with
    /// their visible sessions as this node knows them now: its own, and
    /// those of other nodes as gathered and changed since (the node task
    /// notes both in the order they came). Queued under the registry's
    /// lock, like every status event: a change told before the reply is
    /// in it, one made after it is told after it. `fit` says how many of
    /// them one reply holds.
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
            let mut remote: Vec<UserStatus> = entry
                .remote
                .values()
                .map(|(_, status)| status.clone())
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

    /// Statuses of sessions on other nodes, gathered for a `Follow` of
    /// `user_ids` (`node` is where each came from): remembered for the
    /// users still followed here.
    pub(crate) fn note_gathered(&self, node: u32, statuses: &[UserStatus]) {
        let mut users = lock(&self.by_id);
        for status in statuses {
            if let Some(entry) = users.get_mut(&status.presence.user_id) {
                if !entry.followers.is_empty() {
                    entry.note_remote(node, &Event::StatusOnline(status.clone()));
                }
            }
        }
    }

    /// A status event of a session on node `node`: to this node's
    /// followers of its user.
    pub(crate) fn remote_status(&self, node: u32, user_id: &str, event: &Event) {
        let mut users = lock(&self.by_id);
        if let Some(entry) = users.get_mut(user_id) {
            if entry.followers.is_empty() {
                return;
            }
            // Already known as it is (a follow's gather crossed this
            // change): the followers saw it in their `Followed` reply.
            let known = match event {
                Event::StatusOnline(status) | Event::StatusChanged(status) => entry
                    .remote
                    .get(&status.presence.session_id)
                    .is_some_and(|(_, seen)| seen.status == status.status),
                _ => false,
            };
            entry.note_remote(node, event);
            if !known {
                entry.tell_followers(event);
            }
        }
    }

    /// Node `node` is lost: its sessions go offline for the followers here.
    pub(crate) fn node_lost(&self, node: u32) {
        let mut users = lock(&self.by_id);
        for entry in users.values_mut() {
            let gone: Vec<SessionId> = entry
                .remote
                .iter()
                .filter(|(_, (at, _))| *at == node)
                .map(|(id, _)| *id)
                .collect();
            for id in gone {
                if let Some((_, status)) = entry.remote.remove(&id) {
                    entry.tell_followers(&Event::StatusOffline {
                        presence: status.presence,
                    });
                }
            }
        }
    }

    /// The visible sessions of these users here, for another node's
    /// `Follow`.
    pub(crate) fn statuses_of(&self, user_ids: &[String]) -> Vec<UserStatus> {
        let users = lock(&self.by_id);
        user_ids
            .iter()
            .filter_map(|user_id| users.get(user_id))
            .flat_map(|entry| entry.sessions.iter().filter_map(status_of))
            .collect()
    }

    pub(crate) fn unfollow(&self, session: &SessionRef, user_ids: Vec<String>) {
        let mut users = lock(&self.by_id);
        let mut social = lock(&session.social);
        for user_id in user_ids {
            if social.follows.remove(&user_id) {
                if let Some(entry) = users.get_mut(&user_id) {
                    entry.followers.remove(&session.session_id());
                    if entry.followers.is_empty() {
                        entry.remote.clear();
                    }
                    if entry.is_unused() {
                        users.remove(&user_id);
                    }
                }
            }
        }
    }

    /// An invite sent or gone: kept or dropped, and told to every live
    /// session of the invitee.
    pub(crate) fn notice(&self, notice: InviteNotice) {
        let mut users = lock(&self.by_id);
        match notice {
            InviteNotice::Sent { user_id, invite } => {
                let entry = users.entry(user_id).or_default();
                entry.invites.retain(|i| i.party_id != invite.party_id);
                entry.invites.push(invite.clone());
                for session in &entry.sessions {
                    session.push_event(Event::Invited(invite.clone()));
                }
            }
            InviteNotice::Gone {
                user_id,
                party_id,
                reason,
            } => {
                let Some(entry) = users.get_mut(&user_id) else {
                    return;
                };
                entry.invites.retain(|i| i.party_id != party_id);
                for session in &entry.sessions {
                    session.push_event(Event::InviteGone { party_id, reason });
                }
                if entry.is_unused() {
                    users.remove(&user_id);
                }
            }
        }
    }

    /// The user's pending invites not yet run out, oldest first.
    pub(crate) fn invites(&self, user_id: &str, now_ms: u64) -> Vec<PartyInvite> {
        lock(&self.by_id)
            .get(user_id)
            .map(|entry| {
                entry
                    .invites
                    .iter()
                    .filter(|i| i.expires_at_ms > now_ms)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}
