//! One party's rules. See PARTIES.md (shared guide) and PROTOCOL.md for the
//! behaviour promised to clients; this file is its executable form.

use super::quality::{bucket, choose_leader, Candidate};
use super::PartyError;
use crate::protocol::{
    Event, InviteGoneReason, InvitePolicy, JoinOutcome, KeyValues, LeaderPolicy, LeaveReason,
    Muted, PartyId, PartySnapshot, Presence, RejectReason, RequestGoneReason, SessionId,
    TicketCancelReason, MAX_LABEL_BYTES, MAX_PARTY_SIZE, MAX_STATE_BYTES, MAX_STATE_ENTRIES,
};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

mod gather;
mod quiet;
mod ready;
pub use gather::{validate_key_values, Ban, Invite, InviteNotice};
pub use quiet::{BlockList, Sender};

/// A member's place in a party. `link` is whatever the caller uses to reach
/// the session (the server: its connection handle); the rules never look at it.
#[derive(Clone, Debug)]
pub struct Seat<L> {
    pub presence: Presence,
    pub link: L,
    /// False while the member's connection is lost and its seat is held.
    pub connected: bool,
    /// What the member tells the party about itself (character, ready).
    pub attributes: KeyValues,
    /// The members this one muted, by user id (kept when they leave, so
    /// that coming back does not undo it).
    muted: Vec<Muted>,
    /// Members with whom this one shares a block, either way: no party
    /// data passes between them. By user id; kept in step with the seats.
    blocked_with: Vec<String>,
    /// Its connection's score as its node last reported it (lower is
    /// better, `super::quality`); `None` until reported, and while
    /// disconnected.
    pub score: Option<u32>,
}

impl<L> Seat<L> {
    /// A seat for a connected session.
    pub fn new(presence: Presence, link: L) -> Self {
        Seat {
            presence,
            link,
            connected: true,
            attributes: KeyValues::new(),
            muted: Vec::new(),
            blocked_with: Vec::new(),
            score: None,
        }
    }

    /// The members this one muted.
    pub fn muted(&self) -> &[Muted] {
        &self.muted
    }
}

/// A waiting join request of a closed party.
#[derive(Clone, Debug)]
pub struct JoinRequest<L> {
    pub presence: Presence,
    pub link: L,
    pub expires_at: Instant,
    /// The requester's connection score as its node reported it: its
    /// seat starts with it when the leader accepts.
    pub score: Option<u32>,
}

/// One event for one recipient.
#[derive(Clone, Debug)]
pub struct Delivery<L> {
    pub to: L,
    pub event: Event,
}

/// What an operation asks the caller to do, in order.
#[derive(Debug)]
pub struct Effects<L> {
    /// Events to deliver, in the order each recipient must see them.
    pub deliveries: Vec<Delivery<L>>,
    /// Sessions whose seat or request in this party ended by this operation.
    pub released: Vec<L>,
    /// Invites sent and gone: for every session of the invitee, online or
    /// not yet, so they go by user id rather than by link.
    pub invites: Vec<InviteNotice>,
    /// The party's matchmaking ticket ended with this change (its members
    /// changed, or the party closed): the caller takes it out of the pool.
    pub ticket_ended: Option<(u64, TicketCancelReason)>,
    /// One copy of each membership and leadership event of this operation
    /// (`MemberJoined`, `MemberLeft`, `LeaderChanged`, `Closed`), whoever
    /// heard it: what the server's after-hooks are told.
    pub changes: Vec<Event>,
    /// Set by the table when the operation left the party empty, so it
    /// is gone.
    pub ended: Option<PartyId>,
}

impl<L> Default for Effects<L> {
    fn default() -> Self {
        Effects {
            deliveries: Vec::new(),
            released: Vec::new(),
            invites: Vec::new(),
            ticket_ended: None,
            changes: Vec::new(),
            ended: None,
        }
    }
}

impl<L: Clone> Effects<L> {
    fn tell(&mut self, to: &L, event: Event) {
        self.deliveries.push(Delivery {
            to: to.clone(),
            event,
        });
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartySettings {
    pub open: bool,
    pub max_size: u16,
    pub label: String,
    pub invite_policy: InvitePolicy,
    /// Who leads next when the leader leaves or is lost.
    pub leader_policy: LeaderPolicy,
}

/// A change of settings; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartyUpdate {
    pub open: Option<bool>,
    pub label: Option<String>,
    pub max_size: Option<u16>,
    pub invite_policy: Option<InvitePolicy>,
    pub leader_policy: Option<LeaderPolicy>,
}

#[derive(Debug)]
pub struct Party<L> {
    id: PartyId,
    seq: u64,
    settings: PartySettings,
    /// Seat order is tenure order: index 0 has been seated longest.
    members: Vec<Seat<L>>,
    /// Index into `members`; always valid while the party is not empty.
    leader: usize,
    /// The leader is disconnected and leadership is due to pass, but no
    /// member is connected to take it: the first to come back gets it.
    leader_handover_pending: bool,
    /// First come, first served; all share one time limit, so the front
    /// always expires first.
    requests: VecDeque<JoinRequest<L>>,
    /// Leader-owned key-values every member sees.
    state: KeyValues,
    /// The join code, when the leader asked for one (the table keeps the
    /// code index; the party only remembers its own).
    join_code: Option<String>,
    /// `Some(properties)` while listed for search.
    listing: Option<KeyValues>,
    /// Pending invites, soonest to expire first (one shared lifetime, and a
    /// renewed invite moves to the back).
    invites: VecDeque<Invite>,
    /// Bans in force, oldest first.
    bans: Vec<Ban>,
    /// The party's waiting matchmaking ticket, if any.
    matchmaking: Option<u64>,
    /// The ready check running now, if any.
    ready_check: Option<ready::RunningCheck>,
    /// Seats with a mute or a block to honour: while 0, party data takes
    /// the path that looks at neither (`quiet.rs`).
    quiet_seats: usize,
}

fn validate_max_size(max_size: u16) -> Result<(), PartyError> {
    if max_size == 0 || max_size > MAX_PARTY_SIZE {
        return Err(PartyError::InvalidArgument(format!(
            "max_size must be between 1 and {MAX_PARTY_SIZE} (leader included), got {max_size}"
        )));
    }
    Ok(())
}

fn validate_label(label: &str) -> Result<(), PartyError> {
    if label.len() > MAX_LABEL_BYTES {
        return Err(PartyError::InvalidArgument(format!(
            "label is {} bytes, the limit is {MAX_LABEL_BYTES}",
            label.len()
        )));
    }
    Ok(())
}

impl<L: Clone + BlockList> Party<L> {
    /// A new party with `leader` as its leader and only member, sequence 0.
    pub fn create(
        id: PartyId,
        leader: Seat<L>,
        settings: PartySettings,
        state: KeyValues,
    ) -> Result<Self, PartyError> {
        validate_max_size(settings.max_size)?;
        validate_label(&settings.label)?;
        validate_key_values("party state", &state, MAX_STATE_ENTRIES, MAX_STATE_BYTES)?;
        Ok(Party {
            id,
            seq: 0,
            settings,
            members: vec![leader],
            leader: 0,
            leader_handover_pending: false,
            requests: VecDeque::new(),
            state,
            join_code: None,
            listing: None,
            invites: VecDeque::new(),
            bans: Vec::new(),
            matchmaking: None,
            ready_check: None,
            quiet_seats: 0,
        })
    }

    pub fn id(&self) -> PartyId {
        self.id
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn settings(&self) -> &PartySettings {
        &self.settings
    }

    pub fn members(&self) -> &[Seat<L>] {
        &self.members
    }

    pub fn requests(&self) -> impl ExactSizeIterator<Item = &JoinRequest<L>> {
        self.requests.iter()
    }

    /// The leader's seat; `None` only once the party is gone.
    pub fn leader(&self) -> Option<&Seat<L>> {
        self.members.get(self.leader)
    }

    /// An empty party is gone: the table drops it.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// When the next waiting request, invite or ban runs out.
    pub fn next_expiry(&self) -> Option<Instant> {
        let request = self.requests.front().map(|r| r.expires_at);
        let invite = self.invites.front().map(|i| i.expires_at);
        let ban = self.bans.iter().filter_map(|b| b.until).min();
        [request, invite, ban].into_iter().flatten().min()
    }

    pub fn snapshot(&self) -> PartySnapshot {
        PartySnapshot {
            party_id: self.id,
            seq: self.seq,
            open: self.settings.open,
            max_size: self.settings.max_size,
            label: self.settings.label.clone(),
            leader: self
                .leader()
                .map(|seat| seat.presence.clone())
                .unwrap_or_else(|| Presence {
                    user_id: String::new(),
                    username: String::new(),
                    session_id: SessionId::nil(),
                }),
            members: self.members.iter().map(|s| s.presence.clone()).collect(),
            disconnected: self
                .members
                .iter()
                .filter(|s| !s.connected)
                .map(|s| s.presence.session_id)
                .collect(),
            invite_policy: self.settings.invite_policy,
            state: self.state.clone(),
            attributes: self.members.iter().map(|s| s.attributes.clone()).collect(),
            join_code: self.join_code.clone().unwrap_or_default(),
            listed: self.listing.is_some(),
            properties: self.listing.clone().unwrap_or_default(),
            ready_check: self.ready_check().map(Box::new),
            leader_policy: self.settings.leader_policy,
            quality: self.members.iter().map(|s| bucket(s.score)).collect(),
            muted: Vec::new(),
        }
    }

    /// The snapshot as `session` sees it: with its own mutes.
    pub fn snapshot_for(&self, session: SessionId) -> PartySnapshot {
        let muted = self
            .seat_of_session(session)
            .map(|index| self.members[index].muted.clone())
            .unwrap_or_default();
        PartySnapshot {
            muted,
            ..self.snapshot()
        }
    }

    /// A member's (or requester's) node reported its connection's score
    /// (`None`: no measurement). Nobody is told: snapshots show it, the
    /// next choice of a leader reads it, and a requester's seat starts
    /// with it. A disconnected seat keeps none. False when `session`
    /// holds neither a seat nor a request here.
    pub fn set_score(&mut self, session: SessionId, score: Option<u32>) -> bool {
        if let Some(index) = self.seat_of_session(session) {
            let seat = &mut self.members[index];
            seat.score = score.filter(|_| seat.connected);
            return true;
        }
        match self
            .requests
            .iter_mut()
            .find(|r| r.presence.session_id == session)
        {
            Some(request) => {
                request.score = score;
                true
            }
            None => false,
        }
    }

    fn seat_of_session(&self, session: SessionId) -> Option<usize> {
        self.members
            .iter()
            .position(|s| s.presence.session_id == session)
    }

    fn seat_of_user(&self, user_id: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|s| s.presence.user_id == user_id)
    }

    fn request_of_user(&self, user_id: &str) -> Option<usize> {
        self.requests
            .iter()
            .position(|r| r.presence.user_id == user_id)
    }

    /// The session's seat or waiting request is reached another way from
    /// now on (it resumed on another node): its link becomes `link`. No
    /// rule changes and nobody is told; the old link is returned, `None`
    /// when the session holds nothing here.
    pub fn relink(&mut self, session: SessionId, link: L) -> Option<L> {
        if let Some(index) = self.seat_of_session(session) {
            let old = std::mem::replace(&mut self.members[index].link, link);
            // The same session's list, through another link: in step.
            self.refresh_blocks_of(index);
            return Some(old);
        }
        let request = self
            .requests
            .iter_mut()
            .find(|r| r.presence.session_id == session)?;
        Some(std::mem::replace(&mut request.link, link))
    }

    pub fn is_member(&self, session: SessionId) -> bool {
        self.seat_of_session(session).is_some()
    }

    /// Members may look; the leader may act.
    fn require_leader(&self, caller: SessionId) -> Result<usize, PartyError> {
        match self.seat_of_session(caller) {
            None => Err(PartyError::NotMember),
            Some(index) if index == self.leader => Ok(index),
            Some(_) => Err(PartyError::NotLeader),
        }
    }

    fn tell_members(&self, effects: &mut Effects<L>, except: Option<usize>, event: &Event) {
        if matches!(
            event,
            Event::MemberJoined { .. }
                | Event::MemberLeft { .. }
                | Event::LeaderChanged { .. }
                | Event::Closed { .. }
        ) {
            effects.changes.push(event.clone());
        }
        for (index, seat) in self.members.iter().enumerate() {
            if Some(index) != except {
                effects.tell(&seat.link, event.clone());
            }
        }
    }

    fn request_presences(&self) -> Vec<Presence> {
        self.requests.iter().map(|r| r.presence.clone()).collect()
    }

    pub fn get(&self, caller: SessionId) -> Result<PartySnapshot, PartyError> {
        if !self.is_member(caller) {
            return Err(PartyError::NotMember);
        }
        Ok(self.snapshot_for(caller))
    }

    /// Whether `user_id` may take a seat now: not seated or waiting
    /// already, not banned, and a seat free.
    fn check_room_for(&self, user_id: &str, now: Instant) -> Result<(), PartyError> {
        if self.seat_of_user(user_id).is_some() {
            return Err(PartyError::AlreadyMember);
        }
        if self.request_of_user(user_id).is_some() {
            return Err(PartyError::AlreadyRequested);
        }
        if self.is_banned(user_id, now) {
            return Err(PartyError::Banned);
        }
        if self.members.len() >= usize::from(self.settings.max_size) {
            return Err(PartyError::PartyFull);
        }
        Ok(())
    }

    /// Seats a newcomer (checked by `check_room_for`): the members hear
    /// `MemberJoined`; the newcomer hears nothing here (its caller answers it).
    fn seat_newcomer(&mut self, presence: Presence, link: L, effects: &mut Effects<L>) {
        self.seq += 1;
        let event = Event::MemberJoined {
            party_id: self.id,
            seq: self.seq,
            presence: presence.clone(),
        };
        self.tell_members(effects, None, &event);
        self.push_seat(Seat::new(presence, link));
        self.members_changed(effects);
        // Everyone else is away and leadership was due to pass: the
        // newcomer is the only connected member, so it leads.
        if self.leader_handover_pending && self.hand_over_to_connected() {
            let newcomer = self.members.len() - 1;
            if let Some(leader) = self.leader() {
                let changed = Event::LeaderChanged {
                    party_id: self.id,
                    seq: self.seq,
                    leader: leader.presence.clone(),
                };
                self.tell_members(effects, Some(newcomer), &changed);
            }
            // Like every new leader, it is handed the queue it now owns.
            self.send_requests_to_leader(effects);
        }
    }

    /// Whether a join by `user_id` now would seat it (an open party, or a
    /// live invite) rather than queue a request: what the game's hooks are
    /// asked about, before the join runs.
    pub fn would_seat(&self, user_id: &str, now: Instant) -> bool {
        self.settings.open || self.invite_of_user(user_id, now).is_some()
    }

    pub fn join(
        &mut self,
        presence: Presence,
        link: L,
        now: Instant,
        request_ttl: Duration,
    ) -> Result<(JoinOutcome, Effects<L>), PartyError> {
        // Before anything else: to a user its leader blocked, the party
        // answers as one that does not exist.
        if self.leader_blocks(&presence.user_id) {
            return Err(PartyError::BlockedByLeader);
        }
        self.check_room_for(&presence.user_id, now)?;
        let mut effects = Effects::default();
        // A live invite seats its user even in a closed party, once.
        let invited = self.take_invite(&presence.user_id, now, &mut effects);
        if self.settings.open || invited {
            self.seat_newcomer(presence, link, &mut effects);
            return Ok((JoinOutcome::Joined(self.snapshot()), effects));
        }
        if self.requests.len() >= usize::from(self.settings.max_size) {
            return Err(PartyError::TooManyRequests);
        }
        self.seq += 1;
        if let Some(leader) = self.leader() {
            effects.tell(
                &leader.link,
                Event::JoinRequested {
                    party_id: self.id,
                    seq: self.seq,
                    presence: presence.clone(),
                },
            );
        }
        self.requests.push_back(JoinRequest {
            presence,
            link,
            expires_at: now + request_ttl,
            score: None,
        });
        Ok((
            JoinOutcome::Queued {
                party_id: self.id,
                seq: self.seq,
            },
            effects,
        ))
    }

    pub fn join_requests(&self, caller: SessionId) -> Result<Vec<Presence>, PartyError> {
        self.require_leader(caller)?;
        Ok(self.request_presences())
    }

    pub fn accept(&mut self, caller: SessionId, user_id: &str) -> Result<Effects<L>, PartyError> {
        self.require_leader(caller)?;
        let index = self
            .request_of_user(user_id)
            .ok_or(PartyError::RequestNotFound)?;
        // A full party keeps the request queued so the leader can retry later.
        if self.members.len() >= usize::from(self.settings.max_size) {
            return Err(PartyError::PartyFull);
        }
        let request = self
            .requests
            .remove(index)
            .ok_or(PartyError::RequestNotFound)?;
        self.seq += 1;
        let mut effects = Effects::default();
        let joined = Event::MemberJoined {
            party_id: self.id,
            seq: self.seq,
            presence: request.presence.clone(),
        };
        self.tell_members(&mut effects, None, &joined);
        self.push_seat(Seat {
            score: request.score,
            ..Seat::new(request.presence, request.link.clone())
        });
        self.members_changed(&mut effects);
        // The requester hears first that it is in, then nothing else of this change.
        effects.deliveries.insert(
            0,
            Delivery {
                to: request.link,
                event: Event::Accepted(self.snapshot()),
            },
        );
        Ok(effects)
    }

    /// Kicks a member or rejects a join request, whichever `user_id` is
    /// (the wire's `Remove`, kept for older clients).
    pub fn remove(&mut self, caller: SessionId, user_id: &str) -> Result<Effects<L>, PartyError> {
        match self.kick(caller, user_id) {
            Err(PartyError::MemberNotFound) => match self.reject(caller, user_id) {
                // Neither seated nor waiting: as before Kick and Reject existed.
                Err(PartyError::RequestNotFound) => Err(PartyError::MemberNotFound),
                rejected => rejected,
            },
            kicked => kicked,
        }
    }

    /// Leader only: takes a member's seat away.
    pub fn kick(&mut self, caller: SessionId, user_id: &str) -> Result<Effects<L>, PartyError> {
        let leader_index = self.require_leader(caller)?;
        if self.members[leader_index].presence.user_id == user_id {
            return Err(PartyError::CannotRemoveSelf);
        }
        let index = self
            .seat_of_user(user_id)
            .ok_or(PartyError::MemberNotFound)?;
        let mut effects = Effects::default();
        self.seq += 1;
        let seat = self.remove_seat(index);
        effects.tell(
            &seat.link,
            Event::Kicked {
                party_id: self.id,
                seq: self.seq,
            },
        );
        let left = Event::MemberLeft {
            party_id: self.id,
            seq: self.seq,
            presence: seat.presence,
            reason: LeaveReason::Kicked,
        };
        self.tell_members(&mut effects, None, &left);
        effects.released.push(seat.link);
        self.members_changed(&mut effects);
        Ok(effects)
    }

    /// Leader only: turns a waiting join request down.
    pub fn reject(&mut self, caller: SessionId, user_id: &str) -> Result<Effects<L>, PartyError> {
        self.require_leader(caller)?;
        let request = self
            .request_of_user(user_id)
            .and_then(|index| self.requests.remove(index))
            .ok_or(PartyError::RequestNotFound)?;
        let mut effects = Effects::default();
        self.seq += 1;
        effects.tell(
            &request.link,
            Event::JoinRejected {
                party_id: self.id,
                seq: self.seq,
                reason: RejectReason::Rejected,
            },
        );
        effects.released.push(request.link);
        Ok(effects)
    }

    /// Takes a seat out, keeping `leader` pointing at the same member, or at
    /// the longest-seated connected one when the leader itself goes.
    fn remove_seat(&mut self, index: usize) -> Seat<L> {
        let seat = self.members.remove(index);
        self.unseated(&seat);
        if index < self.leader {
            self.leader -= 1;
        } else if index == self.leader {
            self.leader = 0;
            self.hand_over_to_connected();
        }
        seat
    }

    /// Makes the connected member the leader policy names leader (the
    /// longest seated, or the best connection: `super::quality`). With
    /// nobody connected the leader stays and the handover waits for a
    /// return. Returns whether the leader changed.
    fn hand_over_to_connected(&mut self) -> bool {
        let seats: Vec<Candidate> = self
            .members
            .iter()
            .map(|s| Candidate {
                connected: s.connected,
                score: s.score,
            })
            .collect();
        match choose_leader(self.settings.leader_policy, &seats) {
            Some(index) => {
                self.leader_handover_pending = false;
                let changed = index != self.leader;
                self.leader = index;
                changed
            }
            None => {
                self.leader_handover_pending = !self.members.is_empty();
                false
            }
        }
    }

    /// A member's connection was lost (`connected` false) or is back.
    /// `hand_over_now`: a lost leader gives up leadership at once (the
    /// leader grace is zero); otherwise [`Party::leader_grace_over`] does it
    /// later. Each change is one sequence step.
    pub fn set_connected(
        &mut self,
        session: SessionId,
        connected: bool,
        hand_over_now: bool,
    ) -> Result<Effects<L>, PartyError> {
        let index = self.seat_of_session(session).ok_or(PartyError::NotMember)?;
        let mut effects = Effects::default();
        if self.members[index].connected == connected {
            return Ok(effects);
        }
        self.members[index].connected = connected;
        // A score measured the connection that is gone; a new one is
        // measured anew.
        self.members[index].score = None;
        self.seq += 1;
        let lost_leader = !connected && index == self.leader && hand_over_now;
        let returning = connected && self.leader_handover_pending;
        let new_leader = (lost_leader || returning) && self.hand_over_to_connected();
        if new_leader {
            self.announce_leader(&mut effects);
        }
        let event = Event::MemberConnection {
            party_id: self.id,
            seq: self.seq,
            presence: self.members[index].presence.clone(),
            connected,
        };
        self.tell_members(&mut effects, Some(index), &event);
        if new_leader {
            self.send_requests_to_leader(&mut effects);
        }
        Ok(effects)
    }

    /// The leader grace of a lost leader is over: if it is still the
    /// disconnected leader, leadership passes to a connected member.
    pub fn leader_grace_over(&mut self, session: SessionId) -> Effects<L> {
        let mut effects = Effects::default();
        let still_lost_leader = self
            .leader()
            .is_some_and(|seat| seat.presence.session_id == session && !seat.connected);
        if still_lost_leader && self.hand_over_to_connected() {
            self.seq += 1;
            self.announce_leader(&mut effects);
            self.send_requests_to_leader(&mut effects);
        }
        effects
    }

    /// A session goes: it leaves its seat, or its request is cancelled.
    /// `reason` is `Left` for a leave command, `SessionEnded` when the
    /// session is gone; `Kicked` is not a leave and is treated as `Left`.
    pub fn leave(
        &mut self,
        session: SessionId,
        reason: LeaveReason,
    ) -> Result<Effects<L>, PartyError> {
        let reason = match reason {
            LeaveReason::SessionEnded => LeaveReason::SessionEnded,
            LeaveReason::Left | LeaveReason::Kicked | LeaveReason::Banned => LeaveReason::Left,
        };
        self.depart(session, reason)
    }

    /// The server (an embedding backend) takes a member's seat away, the
    /// leader's too: the member hears `Kicked`, the others `MemberLeft`
    /// with reason `Kicked`, and a leader's seat passes on as when a
    /// leader leaves.
    pub fn kick_by_server(&mut self, user_id: &str) -> Result<Effects<L>, PartyError> {
        let index = self
            .seat_of_user(user_id)
            .ok_or(PartyError::MemberNotFound)?;
        let session = self.members[index].presence.session_id;
        self.depart(session, LeaveReason::Kicked)
    }

    /// The server (an embedding backend) seats a session, whether the
    /// party is open or closed and without an invite; the size limit, bans
    /// and one seat per user still hold. The seated session hears
    /// `Accepted` with the party as it now is, the others `MemberJoined`.
    pub fn seat_by_server(
        &mut self,
        presence: Presence,
        link: L,
        now: Instant,
    ) -> Result<(PartySnapshot, Effects<L>), PartyError> {
        self.check_room_for(&presence.user_id, now)?;
        let mut effects = Effects::default();
        self.seat_newcomer(presence, link.clone(), &mut effects);
        let snapshot = self.snapshot();
        // The seated session hears first that it is in.
        effects.deliveries.insert(
            0,
            Delivery {
                to: link,
                event: Event::Accepted(snapshot.clone()),
            },
        );
        Ok((snapshot, effects))
    }

    /// A session's seat or request goes; `reason` is what the others are
    /// told (`Kicked`: the member is told too).
    fn depart(
        &mut self,
        session: SessionId,
        reason: LeaveReason,
    ) -> Result<Effects<L>, PartyError> {
        let mut effects = Effects::default();
        if let Some(index) = self.seat_of_session(session) {
            let was_leader = index == self.leader;
            self.seq += 1;
            let seat = self.remove_seat(index);
            if reason == LeaveReason::Kicked {
                effects.tell(
                    &seat.link,
                    Event::Kicked {
                        party_id: self.id,
                        seq: self.seq,
                    },
                );
            }
            if self.members.is_empty() {
                // Nobody is left to tell, but the after-hooks are told.
                effects.changes.push(Event::MemberLeft {
                    party_id: self.id,
                    seq: self.seq,
                    presence: seat.presence.clone(),
                    reason,
                });
                self.reject_all_requests(&mut effects);
                self.drop_all_invites(&mut effects, InviteGoneReason::PartyClosed);
            } else {
                // With nobody connected to take over, the party waits: the
                // first member back leads, and is announced then.
                let new_leader = was_leader && !self.leader_handover_pending;
                if new_leader {
                    self.announce_leader(&mut effects);
                }
                let left = Event::MemberLeft {
                    party_id: self.id,
                    seq: self.seq,
                    presence: seat.presence,
                    reason,
                };
                self.tell_members(&mut effects, None, &left);
                if new_leader {
                    self.send_requests_to_leader(&mut effects);
                }
            }
            effects.released.push(seat.link);
            self.members_changed(&mut effects);
            return Ok(effects);
        }
        if let Some(index) = self
            .requests
            .iter()
            .position(|r| r.presence.session_id == session)
        {
            let request = self.requests.remove(index).ok_or(PartyError::NotMember)?;
            self.seq += 1;
            let gone_reason = match reason {
                LeaveReason::SessionEnded => RequestGoneReason::SessionEnded,
                LeaveReason::Left | LeaveReason::Kicked | LeaveReason::Banned => {
                    RequestGoneReason::Cancelled
                }
            };
            self.tell_leader_request_gone(&mut effects, request.presence, gone_reason);
            effects.released.push(request.link);
            return Ok(effects);
        }
        Err(PartyError::NotMember)
    }

    fn tell_leader_request_gone(
        &self,
        effects: &mut Effects<L>,
        presence: Presence,
        reason: RequestGoneReason,
    ) {
        if let Some(leader) = self.leader() {
            effects.tell(
                &leader.link,
                Event::JoinRequestGone {
                    party_id: self.id,
                    seq: self.seq,
                    presence,
                    reason,
                },
            );
        }
    }

    fn announce_leader(&self, effects: &mut Effects<L>) {
        if let Some(leader) = self.leader() {
            let event = Event::LeaderChanged {
                party_id: self.id,
                seq: self.seq,
                leader: leader.presence.clone(),
            };
            self.tell_members(effects, None, &event);
        }
    }

    fn send_requests_to_leader(&self, effects: &mut Effects<L>) {
        if let Some(leader) = self.leader() {
            effects.tell(
                &leader.link,
                Event::JoinRequestList {
                    party_id: self.id,
                    seq: self.seq,
                    requests: self.request_presences(),
                },
            );
        }
    }

    fn reject_all_requests(&mut self, effects: &mut Effects<L>) {
        for request in self.requests.drain(..) {
            effects.tell(
                &request.link,
                Event::JoinRejected {
                    party_id: self.id,
                    seq: self.seq,
                    reason: RejectReason::PartyClosed,
                },
            );
            effects.released.push(request.link);
        }
    }

    pub fn promote(&mut self, caller: SessionId, user_id: &str) -> Result<Effects<L>, PartyError> {
        let leader_index = self.require_leader(caller)?;
        let target = self
            .seat_of_user(user_id)
            .ok_or(PartyError::MemberNotFound)?;
        let mut effects = Effects::default();
        if target == leader_index {
            return Ok(effects);
        }
        if !self.members[target].connected {
            return Err(PartyError::InvalidArgument(
                "that member is disconnected; a leader must be connected".into(),
            ));
        }
        self.seq += 1;
        self.leader = target;
        self.announce_leader(&mut effects);
        self.send_requests_to_leader(&mut effects);
        Ok(effects)
    }

    /// Ends the party: members hear Closed, requesters hear PartyClosed.
    pub fn close(&mut self, caller: SessionId) -> Result<Effects<L>, PartyError> {
        self.require_leader(caller)?;
        self.seq += 1;
        let mut effects = Effects::default();
        let closed = Event::Closed {
            party_id: self.id,
            seq: self.seq,
        };
        self.tell_members(&mut effects, None, &closed);
        self.reject_all_requests(&mut effects);
        self.drop_all_invites(&mut effects, InviteGoneReason::PartyClosed);
        effects
            .released
            .extend(self.members.drain(..).map(|seat| seat.link));
        self.members_changed(&mut effects);
        self.leader = 0;
        Ok(effects)
    }

    pub fn update(
        &mut self,
        caller: SessionId,
        update: PartyUpdate,
    ) -> Result<(PartySnapshot, Effects<L>), PartyError> {
        self.require_leader(caller)?;
        if let Some(max_size) = update.max_size {
            validate_max_size(max_size)?;
            if usize::from(max_size) < self.members.len() {
                return Err(PartyError::InvalidArgument(format!(
                    "max_size {max_size} is below the current member count {}",
                    self.members.len()
                )));
            }
        }
        if let Some(label) = &update.label {
            validate_label(label)?;
        }
        if let Some(open) = update.open {
            self.settings.open = open;
        }
        if let Some(label) = update.label {
            self.settings.label = label;
        }
        if let Some(max_size) = update.max_size {
            self.settings.max_size = max_size;
        }
        if let Some(policy) = update.invite_policy {
            self.settings.invite_policy = policy;
        }
        if let Some(policy) = update.leader_policy {
            self.settings.leader_policy = policy;
        }
        self.seq += 1;
        let mut effects = Effects::default();
        let updated = Event::Updated {
            party_id: self.id,
            seq: self.seq,
            open: self.settings.open,
            max_size: self.settings.max_size,
            label: self.settings.label.clone(),
            invite_policy: self.settings.invite_policy,
            leader_policy: self.settings.leader_policy,
        };
        self.tell_members(&mut effects, None, &updated);
        Ok((self.snapshot_for(caller), effects))
    }

    /// Drops every request, invite and ban whose time ran out; each
    /// request is its own change (invites and bans are not party events).
    pub fn expire(&mut self, now: Instant) -> Effects<L> {
        let mut effects = Effects::default();
        self.expire_invites_and_bans(now, &mut effects);
        while self.requests.front().is_some_and(|r| r.expires_at <= now) {
            let Some(request) = self.requests.pop_front() else {
                break;
            };
            self.seq += 1;
            effects.tell(
                &request.link,
                Event::JoinRejected {
                    party_id: self.id,
                    seq: self.seq,
                    reason: RejectReason::Expired,
                },
            );
            self.tell_leader_request_gone(
                &mut effects,
                request.presence,
                RequestGoneReason::Expired,
            );
            effects.released.push(request.link);
        }
        effects
    }

    /// The data path: checks that `sender` is seated and appends the link
    /// of every other connected member to `recipients`, but those that
    /// muted the sender for `op_code` or share a block with it. Returns
    /// the sender's presence and how many were left out so.
    pub fn data_recipients(
        &self,
        sender: SessionId,
        op_code: i64,
        recipients: &mut Vec<L>,
    ) -> Result<Sender<'_>, PartyError> {
        let index = self.seat_of_session(sender).ok_or(PartyError::NotMember)?;
        let presence = &self.members[index].presence;
        let others = self
            .members
            .iter()
            .enumerate()
            .filter(|(i, seat)| *i != index && seat.connected);
        // Nobody in the party mutes or blocks: one comparison, as before
        // mutes existed.
        if self.quiet_seats == 0 {
            recipients.extend(others.map(|(_, seat)| seat.link.clone()));
            return Ok(Sender {
                presence,
                withheld: 0,
            });
        }
        let mut withheld = 0;
        for (_, seat) in others {
            match quiet::hears(seat, &presence.user_id, op_code) {
                true => recipients.push(seat.link.clone()),
                false => withheld += 1,
            }
        }
        Ok(Sender { presence, withheld })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(n: u128) -> Presence {
        Presence {
            user_id: format!("u{n}"),
            username: format!("n{n}"),
            session_id: SessionId::from_u128(n),
        }
    }

    /// A party of `n` members with links 1..=n, member 1 leading.
    fn party_of(n: u128) -> Party<u128> {
        let settings = PartySettings {
            open: true,
            max_size: 8,
            label: String::new(),
            invite_policy: InvitePolicy::Leader,
            leader_policy: LeaderPolicy::Tenure,
        };
        let mut party = Party::create(
            PartyId::from_u128(99),
            Seat::new(presence(1), 1),
            settings,
            KeyValues::new(),
        )
        .unwrap();
        for i in 2..=n {
            party
                .join(presence(i), i, Instant::now(), Duration::from_secs(60))
                .unwrap();
        }
        party
    }

    #[test]
    fn no_data_goes_to_disconnected_members() {
        let mut party = party_of(4);
        party
            .set_connected(SessionId::from_u128(3), false, true)
            .unwrap();
        let mut recipients = Vec::new();
        party
            .data_recipients(SessionId::from_u128(1), 0, &mut recipients)
            .unwrap();
        assert_eq!(recipients, vec![2, 4]);
        party
            .set_connected(SessionId::from_u128(3), true, true)
            .unwrap();
        recipients.clear();
        party
            .data_recipients(SessionId::from_u128(1), 0, &mut recipients)
            .unwrap();
        assert_eq!(recipients, vec![2, 3, 4]);
    }

    #[test]
    fn a_lost_leader_hands_over_at_once_or_after_its_grace() {
        let mut party = party_of(3);
        let effects = party
            .set_connected(SessionId::from_u128(1), false, false)
            .unwrap();
        assert_eq!(
            party.leader().map(|s| s.link),
            Some(1),
            "held during the leader grace"
        );
        assert!(effects
            .deliveries
            .iter()
            .all(|d| matches!(d.event, Event::MemberConnection { .. })));
        let before = party.seq();
        let effects = party.leader_grace_over(SessionId::from_u128(1));
        assert_eq!(party.leader().map(|s| s.link), Some(2));
        assert_eq!(party.seq(), before + 1);
        assert!(matches!(
            effects.deliveries[0].event,
            Event::LeaderChanged { .. }
        ));

        let mut party = party_of(3);
        party
            .set_connected(SessionId::from_u128(1), false, true)
            .unwrap();
        assert_eq!(
            party.leader().map(|s| s.link),
            Some(2),
            "handed over at once"
        );
    }

    #[test]
    fn a_leader_leaving_with_nobody_connected_announces_no_leader_until_one_is_back() {
        let mut party = party_of(3);
        for away in [2, 3] {
            party
                .set_connected(SessionId::from_u128(away), false, true)
                .unwrap();
        }
        let effects = party
            .leave(SessionId::from_u128(1), LeaveReason::Left)
            .unwrap();
        assert!(
            effects
                .deliveries
                .iter()
                .all(|d| matches!(d.event, Event::MemberLeft { .. })),
            "no LeaderChanged naming a disconnected member: {:?}",
            effects.deliveries
        );
        let effects = party
            .set_connected(SessionId::from_u128(3), true, true)
            .unwrap();
        assert_eq!(party.leader().map(|s| s.link), Some(3));
        assert!(matches!(
            effects.deliveries[0].event,
            Event::LeaderChanged { .. }
        ));
    }

    #[test]
    fn a_newcomer_into_a_waiting_lead_gets_the_queue_it_now_owns() {
        let mut party = party_of(2);
        for away in [1, 2] {
            party
                .set_connected(SessionId::from_u128(away), false, true)
                .unwrap();
        }
        let (_, effects) = party
            .join(presence(9), 9, Instant::now(), Duration::from_secs(60))
            .unwrap();
        assert_eq!(party.leader().map(|s| s.link), Some(9));
        assert!(
            effects
                .deliveries
                .iter()
                .any(|d| d.to == 9 && matches!(d.event, Event::JoinRequestList { .. })),
            "{:?}",
            effects.deliveries
        );
    }

    #[test]
    fn with_nobody_connected_the_first_back_leads() {
        let mut party = party_of(2);
        party
            .set_connected(SessionId::from_u128(2), false, true)
            .unwrap();
        party
            .set_connected(SessionId::from_u128(1), false, true)
            .unwrap();
        assert_eq!(
            party.leader().map(|s| s.link),
            Some(1),
            "nobody to hand over to"
        );
        let effects = party
            .set_connected(SessionId::from_u128(2), true, true)
            .unwrap();
        assert_eq!(party.leader().map(|s| s.link), Some(2));
        assert!(matches!(
            effects.deliveries[0].event,
            Event::LeaderChanged { .. }
        ));
        let error = party.promote(SessionId::from_u128(2), "u1").unwrap_err();
        assert!(
            matches!(error, PartyError::InvalidArgument(_)),
            "a disconnected member cannot lead"
        );
    }
}
