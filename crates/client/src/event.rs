//! What the SDK tells the game: one flat enum in game terms.

use crate::error::DisconnectReason;
use crate::protocol::{
    ErrorBody, InviteGoneReason, KeyValues, LeaveReason, MatchFound, PartyId, PartyInvite,
    Presence, ReadyCheck, ReadyCheckOutcome, RejectReason, RequestGoneReason, SessionId,
    TicketCancelReason, UserStatus,
};
use crate::roster::Party;
use bytes::Bytes;
use std::sync::Arc;

/// Party data from another member, by datagram or reliably.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartyData {
    /// The party it was sent to.
    pub party_id: PartyId,
    /// Who sent it. Resolved from this client's roster; in the rare case
    /// that a datagram outruns the event that seated its sender, only
    /// `session_id` is filled and the names are empty.
    pub sender: Arc<Presence>,
    /// The sender's own tag for the message (what it means is the game's).
    pub op_code: i64,
    /// The payload, as sent.
    pub data: Bytes,
    /// True when it came on the reliable control stream.
    pub reliable: bool,
}

/// Everything the server (or the SDK itself) tells the game, in the order
/// it happened. Poll it once per frame with [`crate::Events::try_next`].
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// This session was seated in a closed party: the leader accepted its
    /// join request. (Creating or joining an open party answers the call
    /// itself; no event follows.)
    PartyJoined {
        /// The party as it is now.
        party: Party,
    },
    /// Someone else took a seat.
    MemberJoined {
        /// The party.
        party_id: PartyId,
        /// The new member.
        member: Presence,
    },
    /// Someone else left, was kicked, or their session ended.
    MemberLeft {
        /// The party.
        party_id: PartyId,
        /// The member who is gone.
        member: Presence,
        /// Why.
        reason: LeaveReason,
    },
    /// The party has a new leader (maybe this session: see
    /// [`Party::is_leader`]).
    LeaderChanged {
        /// The party.
        party_id: PartyId,
        /// The new leader.
        leader: Presence,
    },
    /// A member lost its connection (its seat is held for the server's
    /// grace window) or came back.
    MemberConnectionChanged {
        /// The party.
        party_id: PartyId,
        /// The member.
        member: Presence,
        /// False while the member is away.
        connected: bool,
    },
    /// To the leader: someone asks to join this closed party.
    JoinRequested {
        /// The party.
        party_id: PartyId,
        /// Who asks.
        requester: Presence,
    },
    /// To the leader: a join request vanished without the leader acting.
    JoinRequestGone {
        /// The party.
        party_id: PartyId,
        /// Who had asked.
        requester: Presence,
        /// Why it is gone.
        reason: RequestGoneReason,
    },
    /// To a new leader: the join requests waiting now, oldest first
    /// (empty when none wait).
    JoinRequests {
        /// The party.
        party_id: PartyId,
        /// The waiting requesters.
        requests: Vec<Presence>,
    },
    /// This session's join request ended without a seat.
    JoinRejected {
        /// The party asked.
        party_id: PartyId,
        /// Why.
        reason: RejectReason,
    },
    /// The leader took this session's seat away.
    Kicked {
        /// The party left.
        party_id: PartyId,
    },
    /// The leader closed the party; it is gone.
    PartyClosed {
        /// The party.
        party_id: PartyId,
    },
    /// The leader changed the party's settings.
    PartyUpdated {
        /// The party as it is now.
        party: Party,
    },
    /// Party data from another member.
    Data(PartyData),
    /// A datagram of this session's that the server did not forward, and why.
    DataRefused {
        /// The party it was sent to.
        party_id: PartyId,
        /// Its op code.
        op_code: i64,
        /// The server's reason.
        error: ErrorBody,
    },
    /// The connection was lost; the SDK is reconnecting. Calls answer
    /// [`crate::ClientError::Reconnecting`] until `Resumed` or
    /// `SessionLost`, or `Disconnected` when it gives up.
    Reconnecting {
        /// What ended the connection.
        reason: DisconnectReason,
    },
    /// Back on a new connection with the same session, seats and all.
    /// The events missed meanwhile follow at once, in order; or, when too
    /// many were missed for the server to replay, the roster was rebuilt
    /// and `PartySynced` (and `PartyLost`) follow instead.
    Resumed,
    /// After a resume, the party as the server has it now (events missed
    /// during the outage could not all be replayed): redraw it from here.
    PartySynced {
        /// The party as it is now.
        party: Party,
    },
    /// After a resume: this session is no longer in the party, and the
    /// events that said why were too many to replay.
    PartyLost {
        /// The party.
        party_id: PartyId,
    },
    /// The server's grace window passed before the SDK got back: the old
    /// session and its seats are gone, and this is a new session.
    SessionLost {
        /// Parties the old session was in; it is in none of them now.
        lost_parties: Vec<PartyId>,
        /// The new session's id.
        new_session: SessionId,
    },
    /// The session is over: closed by this client or the server, or the
    /// SDK gave up reconnecting. Nothing follows; connect again to play on.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
    /// The server could not decode something this client sent (a bug in
    /// the client, or a newer protocol): the message says what.
    ProtocolError {
        /// The server's (or the SDK's) description.
        message: String,
    },
    /// A session of a followed user came online (or stopped appearing
    /// offline).
    StatusOnline(UserStatus),
    /// A session of a followed user changed its status text.
    StatusChanged(UserStatus),
    /// A session of a followed user went offline, or appears offline.
    StatusOffline {
        /// The session that went.
        presence: Presence,
    },
    /// An invite to a party arrived (or was renewed): join it with
    /// [`crate::Client::join_party`] (it admits to a closed party too), or
    /// turn it down with [`crate::Client::decline_invite`].
    Invited(PartyInvite),
    /// An invite is gone: used or declined (maybe by another session of
    /// this user), revoked, expired, or its party closed.
    InviteGone {
        /// The party of the invite.
        party_id: PartyId,
        /// Why.
        reason: InviteGoneReason,
    },
    /// To the inviter: the invitee turned the invite down.
    InviteDeclined {
        /// The party.
        party_id: PartyId,
        /// The session that declined.
        by: Presence,
    },
    /// The leader changed the party state.
    PartyStateChanged {
        /// The party.
        party_id: PartyId,
        /// The whole state now.
        state: KeyValues,
    },
    /// A member (maybe this session) changed its attributes.
    MemberAttributesChanged {
        /// The party.
        party_id: PartyId,
        /// Whose.
        member: Presence,
        /// All of that member's attributes now.
        attributes: KeyValues,
    },
    /// The party's join code changed (empty: removed).
    JoinCodeChanged {
        /// The party.
        party_id: PartyId,
        /// The code now.
        code: String,
    },
    /// The party was listed, relisted or unlisted.
    ListingChanged {
        /// The party.
        party_id: PartyId,
        /// Whether it is listed now.
        listed: bool,
        /// Its properties now.
        properties: KeyValues,
    },
    /// This session's matchmaking ticket (its own, or its party's) waits.
    TicketStarted {
        /// The ticket.
        ticket_id: u64,
        /// Its party; `None` for a solo ticket.
        party_id: Option<PartyId>,
    },
    /// A ticket this session was in stopped without a match.
    TicketCancelled {
        /// The ticket.
        ticket_id: u64,
        /// Why: cancelled, the party's members changed, the party closed,
        /// the submitter's session ended.
        reason: TicketCancelReason,
    },
    /// A match: every player, and the token to hand the game server.
    Matched(MatchFound),
    /// The leader banned this session's user: its seat or join request in
    /// the party is gone.
    Banned {
        /// The party.
        party_id: PartyId,
        /// When the ban ends (Unix ms, server clock); 0 for the party's life.
        until_ms: u64,
    },
    /// The leader started a ready check: answer it with
    /// [`crate::Client::answer_ready_check`] if this session is among
    /// `check.no_answer` (the leader counts as ready). The party's
    /// `ready_check` shows it until it ends.
    ReadyCheckStarted {
        /// The party.
        party_id: PartyId,
        /// The check, with whom it asks.
        check: ReadyCheck,
    },
    /// A member answered the ready check, changed its answer, or left
    /// (then it counts as not ready).
    ReadyCheckAnswered {
        /// The party.
        party_id: PartyId,
        /// The check.
        check_id: u64,
        /// Who.
        member: Presence,
        /// Its answer now.
        ready: bool,
    },
    /// The ready check is over: everyone ready, its time ran out, or the
    /// leader cancelled it.
    ReadyCheckEnded {
        /// The party.
        party_id: PartyId,
        /// The check.
        check_id: u64,
        /// Why it ended.
        outcome: ReadyCheckOutcome,
        /// Who was ready.
        ready: Vec<Presence>,
        /// Who was not ready, or had left.
        not_ready: Vec<Presence>,
        /// Who never answered.
        no_answer: Vec<Presence>,
    },
    /// The game's server set this session's block list (the game's own
    /// rules, or a platform's list); [`crate::Client::blocked`] shows it.
    BlocksChanged {
        /// The blocked users now.
        user_ids: Vec<String>,
    },
}
