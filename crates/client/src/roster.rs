//! The client's own view of each party it is in, kept current from the
//! replies and events it receives, in the order the server sent them.

use crate::protocol::{
    ConnectionQuality, Event as WireEvent, InvitePolicy, KeyValues, LeaderPolicy, Muted, PartyId,
    PartySnapshot, Presence, ReadyCheck, SessionId,
};
use std::collections::HashMap;
use std::sync::Arc;

/// A party as this client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Party {
    /// The party's id: share it so friends can join.
    pub party_id: PartyId,
    /// Open parties seat whoever joins; closed ones queue join requests.
    pub open: bool,
    /// Most members, leader included.
    pub max_size: u16,
    /// Free-form text the leader set.
    pub label: String,
    /// The leader now.
    pub leader: Presence,
    /// In seat order: the first has been in the party longest.
    pub members: Vec<Member>,
    /// Waiting join requests, oldest first (known to the leader only).
    pub join_requests: Vec<Presence>,
    /// This client's session, to tell which member is "me".
    pub my_session: SessionId,
    /// Who may invite: the leader only, or any member.
    pub invite_policy: InvitePolicy,
    /// The party state the leader keeps (`Client::set_party_state`).
    pub state: KeyValues,
    /// The join code; empty when the party has none.
    pub join_code: String,
    /// Whether the party is listed for search.
    pub listed: bool,
    /// The properties it is listed with (empty when not listed).
    pub properties: KeyValues,
    /// The ready check running now, with the answers so far (kept live
    /// from `ReadyCheckAnswered`); `None` when none runs.
    pub ready_check: Option<ReadyCheck>,
    /// Who leads when the leader leaves or is lost.
    pub leader_policy: LeaderPolicy,
    /// The members this session muted here ([`crate::Client::mute`]):
    /// their party data does not reach it (for the op codes named). Only
    /// this session sees its mutes; they last while it is seated.
    pub muted: Vec<Muted>,
    /// The party's sequence number this view reflects.
    pub(crate) seq: u64,
}

/// One seat of a party.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Who sits there.
    pub presence: Presence,
    /// False while the member's connection is lost and its seat is held.
    pub connected: bool,
    /// What the member tells the party about itself (character, ready).
    pub attributes: KeyValues,
    /// Its connection as the server measured it, as of the last snapshot
    /// of the party this client received (no event says it changed:
    /// [`crate::Client::get_party`] refreshes it). `Unknown` for a member
    /// seated or reconnected since, and while it is disconnected.
    pub quality: ConnectionQuality,
}

impl Party {
    /// Builds the view from a snapshot the server sent.
    pub(crate) fn from_snapshot(snapshot: PartySnapshot, my_session: SessionId) -> Party {
        let mut attributes = snapshot.attributes.into_iter();
        let mut quality = snapshot.quality.into_iter();
        let members = snapshot
            .members
            .into_iter()
            .map(|presence| Member {
                connected: !snapshot.disconnected.contains(&presence.session_id),
                presence,
                attributes: attributes.next().unwrap_or_default(),
                quality: quality.next().unwrap_or_default(),
            })
            .collect();
        Party {
            party_id: snapshot.party_id,
            open: snapshot.open,
            max_size: snapshot.max_size,
            label: snapshot.label,
            leader: snapshot.leader,
            members,
            join_requests: Vec::new(),
            my_session,
            invite_policy: snapshot.invite_policy,
            state: snapshot.state,
            join_code: snapshot.join_code,
            listed: snapshot.listed,
            properties: snapshot.properties,
            ready_check: snapshot.ready_check.map(|check| *check),
            leader_policy: snapshot.leader_policy,
            muted: snapshot.muted,
            seq: snapshot.seq,
        }
    }

    /// Whether this client's session leads the party.
    pub fn is_leader(&self) -> bool {
        self.leader.session_id == self.my_session
    }

    /// The member with this user id, if seated.
    pub fn member(&self, user_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.presence.user_id == user_id)
    }

    /// This session's mute of `user_id` here, if it muted it.
    pub fn mute_of(&self, user_id: &str) -> Option<&Muted> {
        self.muted.iter().find(|m| m.user_id == user_id)
    }

    /// How many seats are taken.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Never true for a party the server still has; here for completeness.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// Every party this session is in, plus an index from session id to
/// presence so datagrams can name their sender cheaply.
#[derive(Default)]
pub(crate) struct Roster {
    parties: HashMap<PartyId, Party>,
    senders: HashMap<SessionId, Arc<Presence>>,
    my_session: Option<SessionId>,
    /// Per party, the seq of the snapshot a resume rebuilt it from: events
    /// at or below it repeat what the snapshot shows. (Not the party's
    /// latest seq: one change can send several events with the same seq,
    /// and the caller's own change follows its reply's snapshot.)
    synced: HashMap<PartyId, u64>,
    /// This session's block list, as the server last said it.
    blocked: Vec<String>,
}

/// What applying a wire event did to the roster.
pub(crate) enum Applied {
    /// A change the roster had not seen: pass the event on.
    New,
    /// Older than the party state the roster holds (a snapshot after a
    /// resume already showed it): drop it.
    Stale,
}

impl Roster {
    pub(crate) fn set_session(&mut self, session: SessionId) {
        self.my_session = Some(session);
    }

    fn me(&self) -> SessionId {
        self.my_session.unwrap_or_else(SessionId::nil)
    }

    pub(crate) fn party(&self, party_id: PartyId) -> Option<&Party> {
        self.parties.get(&party_id)
    }

    pub(crate) fn parties(&self) -> impl Iterator<Item = &Party> {
        self.parties.values()
    }

    /// The sender of a datagram, by session id.
    pub(crate) fn sender(&self, session: SessionId) -> Arc<Presence> {
        self.senders.get(&session).cloned().unwrap_or_else(|| {
            Arc::new(Presence {
                user_id: String::new(),
                username: String::new(),
                session_id: session,
            })
        })
    }

    /// Takes a snapshot as the party's state (a reply, or a resume's),
    /// unless the roster already holds a later one. Returns the view.
    pub(crate) fn install(&mut self, snapshot: PartySnapshot) -> Party {
        let me = self.me();
        let party_id = snapshot.party_id;
        if let Some(known) = self.parties.get(&party_id) {
            if known.seq > snapshot.seq {
                return known.clone();
            }
        }
        let mut party = Party::from_snapshot(snapshot, me);
        if let Some(old) = self.parties.get(&party_id) {
            if party.is_leader() {
                party.join_requests = old.join_requests.clone();
            }
        }
        for member in &party.members {
            self.index(&member.presence);
        }
        self.parties.insert(party_id, party.clone());
        party
    }

    /// Takes a resume's snapshot as the party's state: the events that
    /// follow and repeat what it shows are dropped.
    pub(crate) fn resync(&mut self, snapshot: PartySnapshot) -> Party {
        self.synced.insert(snapshot.party_id, snapshot.seq);
        self.install(snapshot)
    }

    /// Sets the waiting requests a leader learned from a reply or a resume.
    pub(crate) fn set_requests(&mut self, party_id: PartyId, requests: Vec<Presence>) {
        if let Some(party) = self.parties.get_mut(&party_id) {
            party.join_requests = requests;
        }
    }

    /// This session muted `mute.user_id` (again: the new range).
    pub(crate) fn muted(&mut self, party_id: PartyId, mute: Muted) {
        if let Some(party) = self.parties.get_mut(&party_id) {
            party.muted.retain(|m| m.user_id != mute.user_id);
            party.muted.push(mute);
        }
    }

    /// This session unmuted `user_id`.
    pub(crate) fn unmuted(&mut self, party_id: PartyId, user_id: &str) {
        if let Some(party) = self.parties.get_mut(&party_id) {
            party.muted.retain(|m| m.user_id != user_id);
        }
    }

    /// The block list the server said.
    pub(crate) fn set_blocked(&mut self, user_ids: Vec<String>) {
        self.blocked = user_ids;
    }

    pub(crate) fn blocked(&self) -> &[String] {
        &self.blocked
    }

    /// The leader answered a request (accepted or rejected): it waits no more.
    pub(crate) fn request_handled(&mut self, party_id: PartyId, user_id: &str) {
        if let Some(party) = self.parties.get_mut(&party_id) {
            party.join_requests.retain(|p| p.user_id != user_id);
        }
    }

    /// This session is no longer in the party.
    pub(crate) fn forget(&mut self, party_id: PartyId) {
        self.synced.remove(&party_id);
        if let Some(party) = self.parties.remove(&party_id) {
            for member in party.members {
                self.unindex_if_unseen(&member.presence.session_id);
            }
        }
    }

    /// Every party is gone (a lost session); returns their ids.
    pub(crate) fn clear(&mut self) -> Vec<PartyId> {
        // A new session starts with no block list.
        self.blocked.clear();
        self.senders.clear();
        self.synced.clear();
        self.parties.drain().map(|(id, _)| id).collect()
    }

    fn index(&mut self, presence: &Presence) {
        self.senders
            .entry(presence.session_id)
            .or_insert_with(|| Arc::new(presence.clone()));
    }

    fn unindex_if_unseen(&mut self, session: &SessionId) {
        let seated = self
            .parties
            .values()
            .any(|p| p.members.iter().any(|m| &m.presence.session_id == session));
        if !seated {
            self.senders.remove(session);
        }
    }

    /// Applies one wire event to the party it concerns.
    pub(crate) fn apply(&mut self, event: &WireEvent) -> Applied {
        // Presence events concern no party.
        let Some(party_id) = event.party_id() else {
            return Applied::New;
        };
        if let (Some(seq), Some(synced)) = (event.party_seq(), self.synced.get(&party_id)) {
            if seq <= *synced && !matches!(event, WireEvent::Accepted(_)) {
                return Applied::Stale;
            }
        }
        match event {
            WireEvent::Accepted(snapshot) => {
                self.install(snapshot.clone());
            }
            WireEvent::Kicked { .. } | WireEvent::Closed { .. } | WireEvent::Banned { .. } => {
                self.forget(party_id)
            }
            WireEvent::MemberJoined { presence, .. } => {
                self.index(presence);
                if let Some(party) = self.parties.get_mut(&party_id) {
                    party
                        .join_requests
                        .retain(|p| p.user_id != presence.user_id);
                    party.members.push(Member {
                        presence: presence.clone(),
                        connected: true,
                        attributes: KeyValues::new(),
                        quality: ConnectionQuality::Unknown,
                    });
                }
            }
            WireEvent::MemberLeft { presence, .. } => {
                if let Some(party) = self.parties.get_mut(&party_id) {
                    party
                        .members
                        .retain(|m| m.presence.session_id != presence.session_id);
                }
                self.unindex_if_unseen(&presence.session_id);
            }
            WireEvent::LeaderChanged { leader, .. } => {
                if let Some(party) = self.parties.get_mut(&party_id) {
                    party.leader = leader.clone();
                    if !party.is_leader() {
                        party.join_requests.clear();
                    }
                }
            }
            WireEvent::MemberConnection {
                presence,
                connected,
                ..
            } => {
                if let Some(party) = self.parties.get_mut(&party_id) {
                    for member in &mut party.members {
                        if member.presence.session_id == presence.session_id {
                            member.connected = *connected;
                            // The server measures each connection anew.
                            member.quality = ConnectionQuality::Unknown;
                        }
                    }
                }
            }
            WireEvent::JoinRequested { presence, .. } => {
                if let Some(party) = self.parties.get_mut(&party_id) {
                    party.join_requests.push(presence.clone());
                }
            }
            WireEvent::JoinRequestGone { presence, .. } => {
                self.request_handled(party_id, &presence.user_id);
            }
            WireEvent::JoinRequestList { requests, .. } => {
                self.set_requests(party_id, requests.clone());
            }
            WireEvent::Updated {
                open,
                max_size,
                label,
                invite_policy,
                leader_policy,
                ..
            } => {
                if let Some(party) = self.parties.get_mut(&party_id) {
                    party.open = *open;
                    party.max_size = *max_size;
                    party.label = label.clone();
                    party.invite_policy = *invite_policy;
                    party.leader_policy = *leader_policy;
                }
            }
            WireEvent::PartyStateChanged { state, .. } => {
                if let Some(party) = self.parties.get_mut(&party_id) {
                    party.state = state.clone();
                }
            }
            WireEvent::MemberAttributesChanged {
                presence,
                attributes,
                ..
            } => {
                if let Some(party) = self.parties.get_mut(&party_id) {
                    for member in &mut party.members {
                        if member.presence.session_id == presence.session_id {
                            member.attributes = attributes.clone();
                        }
                    }
                }
            }
            WireEvent::JoinCodeChanged { code, .. } => {
                if let Some(party) = self.parties.get_mut(&party_id) {
                    party.join_code = code.clone();
                }
            }
            WireEvent::ListingChanged {
                listed, properties, ..
            } => {
                if let Some(party) = self.parties.get_mut(&party_id) {
                    party.listed = *listed;
                    party.properties = properties.clone();
                }
            }
            WireEvent::ReadyCheckStarted { check, .. } => {
                if let Some(party) = self.parties.get_mut(&party_id) {
                    party.ready_check = Some(check.clone());
                }
            }
            WireEvent::ReadyCheckAnswered {
                check_id,
                presence,
                ready,
                ..
            } => {
                let check = self
                    .parties
                    .get_mut(&party_id)
                    .and_then(|party| party.ready_check.as_mut())
                    .filter(|check| check.check_id == *check_id);
                if let Some(check) = check {
                    tally(check, presence, *ready);
                }
            }
            WireEvent::ReadyCheckEnded { .. } => {
                if let Some(party) = self.parties.get_mut(&party_id) {
                    party.ready_check = None;
                }
            }
            WireEvent::JoinRejected { .. }
            | WireEvent::Data { .. }
            | WireEvent::DataRefused { .. }
            | WireEvent::StatusOnline(_)
            | WireEvent::StatusChanged(_)
            | WireEvent::StatusOffline { .. }
            | WireEvent::Invited(_)
            | WireEvent::InviteGone { .. }
            | WireEvent::InviteDeclined { .. }
            | WireEvent::TicketStarted { .. }
            | WireEvent::TicketCancelled { .. }
            | WireEvent::Matched(_)
            | WireEvent::BlocksChanged { .. } => {}
        }
        if let (Some(seq), Some(party)) = (event.party_seq(), self.parties.get_mut(&party_id)) {
            party.seq = party.seq.max(seq);
        }
        Applied::New
    }
}

/// Moves an asked member to the list of its answer.
fn tally(check: &mut ReadyCheck, member: &Presence, ready: bool) {
    let session = member.session_id;
    for list in [&mut check.ready, &mut check.not_ready, &mut check.no_answer] {
        list.retain(|p| p.session_id != session);
    }
    let list = match ready {
        true => &mut check.ready,
        false => &mut check.not_ready,
    };
    list.push(member.clone());
}
