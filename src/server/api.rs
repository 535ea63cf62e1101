//! The server-side API: what an embedding backend (or an operator, through
//! the admin HTTP API) may do to live parties and sessions, with the
//! server's authority rather than a member's. Every change goes through the
//! same party rules, seq numbers and deliveries as a command.

use super::commands::{check_reliable_size, deliver};
use super::grace;
use super::hook_events::AfterEvent;
use super::session::SessionRef;
use super::state::Shared;
use crate::party::{Effects, Link, PartyError, PartySettings, Seat};
use crate::protocol::{
    CloseCode, ErrorBody, ErrorCode, Event, KeyValues, LeaveReason, PartyId, PartySnapshot,
    Presence, SessionId,
};
use bytes::Bytes;
use serde::Serialize;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// A handle on a running (or bound) server's state; cheap to clone.
#[derive(Clone)]
pub struct ServerApi {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for ServerApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerApi").finish_non_exhaustive()
    }
}

/// What the API refuses with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No live session (connected or in its grace window) has that id.
    #[error("no live session {0}")]
    SessionNotFound(SessionId),
    /// A party rule refused, as it would refuse a client: the same code
    /// and message.
    #[error("{}: {}", .0.code, .0.message)]
    Refused(ErrorBody),
}

impl From<PartyError> for ApiError {
    fn from(error: PartyError) -> Self {
        ApiError::Refused(error.into())
    }
}

/// A live session, as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// The session.
    pub session_id: SessionId,
    /// Its user.
    pub user_id: String,
    /// Its user's display name.
    pub username: String,
    /// False while it waits in its grace window.
    pub connected: bool,
    /// Where its connection comes from, while connected.
    pub remote: Option<SocketAddr>,
    /// Parties where it has a seat or a join request.
    pub parties: Vec<PartyId>,
}

/// A party, as the API shows it: its snapshot and who is waiting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartyInfo {
    /// Members, leader, settings, seq, who is disconnected, state.
    pub snapshot: PartySnapshot,
    /// Join requests waiting for the leader, oldest first.
    pub requests: Vec<Presence>,
}

/// Who the server is when it sends into a party: a nil session id and an
/// empty user id, which no client can have (PROTOCOL.md §4, `Data`).
pub fn server_presence() -> Presence {
    Presence {
        user_id: String::new(),
        username: String::new(),
        session_id: SessionId::nil(),
    }
}

impl ServerApi {
    fn session(&self, id: SessionId) -> Result<SessionRef, ApiError> {
        self.shared
            .find_session(id)
            .ok_or(ApiError::SessionNotFound(id))
    }

    fn info(session: &SessionRef) -> SessionInfo {
        let mut parties = session.party_ids();
        parties.sort();
        SessionInfo {
            session_id: session.session_id(),
            user_id: session.presence.user_id.clone(),
            username: session.presence.username.clone(),
            connected: session.is_connected(),
            remote: session.remote_address(),
            parties,
        }
    }

    /// Every live session, connected or in its grace window.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let mut all: Vec<SessionInfo> = self.shared.all_sessions().iter().map(Self::info).collect();
        all.sort_by(|a, b| (&a.user_id, a.session_id).cmp(&(&b.user_id, b.session_id)));
        all
    }

    /// The live sessions of one user (a user may play on several devices).
    pub fn sessions_of(&self, user_id: &str) -> Vec<SessionInfo> {
        let mut mine: Vec<SessionInfo> = self
            .shared
            .users
            .sessions_of(user_id)
            .iter()
            .map(Self::info)
            .collect();
        mine.sort_by_key(|info| info.session_id);
        mine
    }

    /// The parties a user leads now, through any of its sessions.
    pub fn parties_led_by(&self, user_id: &str) -> Vec<PartyId> {
        let mut led = Vec::new();
        for session in self.shared.users.sessions_of(user_id) {
            let me = session.session_id();
            for party_id in session.party_ids() {
                let leads = self.shared.table.read(party_id, |party| {
                    Ok(party
                        .leader()
                        .is_some_and(|seat| seat.presence.session_id == me))
                });
                if leads == Ok(true) {
                    led.push(party_id);
                }
            }
        }
        led.sort();
        led
    }

    /// One live session.
    pub fn session_info(&self, id: SessionId) -> Result<SessionInfo, ApiError> {
        self.session(id).map(|session| Self::info(&session))
    }

    /// Ends a session now: its connection closes with `Disconnected`
    /// (close code 9), there is no grace window, and it leaves every party
    /// as a session that ended does.
    pub fn disconnect(&self, id: SessionId, reason: &str) -> Result<(), ApiError> {
        let session = self.session(id)?;
        tracing::info!(session = %id, reason, "session disconnected by the server");
        // Marked before the close, as a rule-breaker's cut is: the
        // connection's task, woken by the close on another thread, then
        // ends the session outright instead of holding its seats for a
        // resume that must not come.
        session
            .cut_for_violation
            .store(true, std::sync::atomic::Ordering::Release);
        session.close(CloseCode::Disconnected, reason);
        if session.end_now() {
            grace::finish(&self.shared, &session);
        }
        Ok(())
    }

    /// Parties alive now whose label contains `label` (every party for an
    /// empty one), at most `limit`, in no particular order.
    pub fn parties(&self, label: &str, limit: usize) -> Vec<PartySnapshot> {
        self.shared.table.collect(limit, |party| {
            party
                .settings()
                .label
                .contains(label)
                .then(|| party.snapshot())
        })
    }

    /// One party, with its waiting join requests.
    pub fn party(&self, party_id: PartyId) -> Result<PartyInfo, ApiError> {
        Ok(self.shared.table.read(party_id, |party| {
            Ok(PartyInfo {
                snapshot: party.snapshot(),
                requests: party
                    .requests()
                    .map(|request| request.presence.clone())
                    .collect(),
            })
        })?)
    }

    /// Creates a party for `sessions`: the first leads, the rest are
    /// seated in order, whatever `settings.open` says. Each session hears
    /// `Accepted` with the party as it was when it was seated, then the
    /// joins after it, as members of any party do.
    pub fn create_party(
        &self,
        sessions: &[SessionId],
        settings: PartySettings,
        state: KeyValues,
    ) -> Result<PartySnapshot, ApiError> {
        let Some(&leader_id) = sessions.first() else {
            return Err(invalid("a party needs at least one session"));
        };
        if sessions.len() > usize::from(settings.max_size) {
            return Err(ApiError::Refused(PartyError::PartyFull.into()));
        }
        let members = sessions
            .iter()
            .map(|&id| self.session(id))
            .collect::<Result<Vec<_>, _>>()?;
        let mut users = HashSet::new();
        for member in &members {
            if !users.insert(member.presence.user_id.as_str()) {
                return Err(invalid(format!(
                    "user {} is named twice: one seat per user",
                    member.presence.user_id
                )));
            }
            self.check_room(member)?;
        }
        let leader = &members[0];
        let party_id = self.shared.new_party_id();
        let seat = Seat::new(leader.presence.clone(), leader.clone());
        let snapshot = self.shared.table.create(party_id, seat, settings, state)?;
        leader.push_event(Event::Accepted(snapshot));
        if let Some(hooks) = &self.shared.hooks {
            hooks.tell(AfterEvent::PartyCreated {
                party_id,
                leader: leader.presence.clone(),
            });
        }
        tracing::info!(party = %party_id, leader = %leader_id, members = sessions.len(), "party created by the server");
        for member in &members[1..] {
            self.seat(party_id, member)?;
        }
        Ok(self.party(party_id)?.snapshot)
    }

    /// Seats a session in a party, open or closed, without an invite; the
    /// size limit, bans and one seat per user still hold.
    pub fn add_member(&self, party_id: PartyId, session: SessionId) -> Result<(), ApiError> {
        let session = self.session(session)?;
        self.check_room(&session)?;
        self.seat(party_id, &session)
    }

    /// Moves a session's seat from one party to another: seated in `to`
    /// first (so a refusal there changes nothing), then gone from `from`
    /// as if it had left.
    pub fn move_member(
        &self,
        session: SessionId,
        from: PartyId,
        to: PartyId,
    ) -> Result<(), ApiError> {
        let session = self.session(session)?;
        let me = session.session_id();
        let seated = self
            .shared
            .table
            .read(from, |party| Ok(party.is_member(me)))?;
        if !seated {
            return Err(ApiError::Refused(PartyError::NotMember.into()));
        }
        self.seat(to, &session)?;
        self.apply(from, |party| party.leave(me, LeaveReason::Left))
    }

    /// Takes a member's seat away, the leader's too; it hears `Kicked`.
    pub fn kick(&self, party_id: PartyId, user_id: &str) -> Result<(), ApiError> {
        self.apply(party_id, |party| party.kick_by_server(user_id))
    }

    /// Ends a party: members hear `Closed`, requesters `PartyClosed`.
    pub fn close_party(&self, party_id: PartyId) -> Result<(), ApiError> {
        self.apply(party_id, |party| {
            let leader = party
                .leader()
                .map(|seat| seat.presence.session_id)
                .ok_or(PartyError::PartyNotFound)?;
            party.close(leader)
        })
    }

    /// Sends reliable data into a party from the server: every connected
    /// member gets a `Data` event whose sender is [`server_presence`].
    pub fn send_to_party(
        &self,
        party_id: PartyId,
        op_code: i64,
        data: Bytes,
    ) -> Result<(), ApiError> {
        check_reliable_size(&self.shared, &data).map_err(ApiError::Refused)?;
        let recipients: Vec<SessionRef> = self.shared.table.read(party_id, |party| {
            Ok(party
                .members()
                .iter()
                .filter(|seat| seat.connected)
                .map(|seat| seat.link.clone())
                .collect())
        })?;
        self.shared
            .route()
            .send_data(recipients, party_id, &server_presence(), op_code, &data);
        Ok(())
    }

    /// Refuses a session already at the per-session party limit.
    fn check_room(&self, session: &SessionRef) -> Result<(), ApiError> {
        let limit = self.shared.config.max_parties_per_session;
        if session.party_ids().len() >= limit {
            return Err(ApiError::Refused(ErrorBody::new(
                ErrorCode::TooManyParties,
                format!(
                    "session {} is already in {limit} parties, the most allowed",
                    session.session_id()
                ),
            )));
        }
        Ok(())
    }

    fn seat(&self, party_id: PartyId, session: &SessionRef) -> Result<(), ApiError> {
        let now = Instant::now();
        self.shared.table.apply(
            party_id,
            |party| {
                let seated =
                    party.seat_by_server(session.presence.clone(), session.clone(), now)?;
                Link::attach(session, party_id);
                Ok(seated)
            },
            |_, effects| deliver(&self.shared, effects),
        )?;
        Ok(())
    }

    fn apply(
        &self,
        party_id: PartyId,
        op: impl FnOnce(&mut crate::party::Party<SessionRef>) -> Result<Effects<SessionRef>, PartyError>,
    ) -> Result<(), ApiError> {
        self.shared.table.apply(
            party_id,
            |party| op(party).map(|effects| ((), effects)),
            |_, effects| deliver(&self.shared, effects),
        )?;
        Ok(())
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::Refused(ErrorBody::new(ErrorCode::InvalidArgument, message))
}
