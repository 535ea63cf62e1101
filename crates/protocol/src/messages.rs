//! Every message of the control stream. The postcard encoding of these
//! types *is* the wire format: field order and variant order matter, and
//! PROTOCOL.md lists both. Append new variants at the end only.

use super::ErrorBody;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Names a party. A UUID (16 bytes on the wire); shown in its usual text form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartyId(pub Uuid);

/// Names one session of a user (a user may have several). A UUID, like
/// [`PartyId`], but never interchangeable with one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionId(pub Uuid);

macro_rules! uuid_id {
    ($name:ident) => {
        impl $name {
            /// A fresh random id.
            pub fn random() -> Self {
                $name(Uuid::new_v4())
            }

            /// The all-zero id: what a refusal carries when it has no id to name.
            pub const fn nil() -> Self {
                $name(Uuid::nil())
            }

            /// The 16 bytes, as on the wire.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            /// From the 16 bytes on the wire.
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                $name(Uuid::from_bytes(bytes))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;

            /// Parses the usual text form (`8-4-4-4-12` hex digits).
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Uuid::try_parse(text.trim()).map($name)
            }
        }
    };
}

uuid_id!(PartyId);
uuid_id!(SessionId);

/// How a session is shown to others.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Presence {
    pub user_id: String,
    pub username: String,
    pub session_id: SessionId,
}

/// Who the client says it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Identity {
    /// Development mode: the client names itself. Refused when the server
    /// runs with a token secret.
    Dev { user_id: String, username: String },
    /// A signed token minted by the game's backend (see `crate::auth`).
    Token { token: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u16,
    pub identity: Identity,
    /// Present to take back a session whose connection was lost.
    pub resume: Option<Resume>,
}

/// Asks for an existing session back, inside its grace window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// The `resume_token` of the last Welcome (single use).
    pub token: String,
    /// The `seq` of the last event frame the client received (0 for none).
    pub last_event_seq: u64,
}

/// Frames the client sends on the control stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientFrame {
    /// First frame of every session, exactly once.
    Hello(Hello),
    /// A command; `id` is chosen by the client and echoed in the response.
    Request { id: u32, command: Command },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    CreateParty {
        open: bool,
        max_size: u16,
        label: String,
    },
    JoinParty {
        party_id: PartyId,
    },
    ListJoinRequests {
        party_id: PartyId,
    },
    AcceptJoinRequest {
        party_id: PartyId,
        user_id: String,
    },
    /// Kicks a member, or rejects a join request, by user id.
    Remove {
        party_id: PartyId,
        user_id: String,
    },
    /// Leaves the party, or cancels this session's join request.
    Leave {
        party_id: PartyId,
    },
    Promote {
        party_id: PartyId,
        user_id: String,
    },
    Close {
        party_id: PartyId,
    },
    /// Fields left `None` stay as they are.
    Update {
        party_id: PartyId,
        open: Option<bool>,
        label: Option<String>,
        max_size: Option<u16>,
    },
    GetParty {
        party_id: PartyId,
    },
    /// Party data sent reliably on the control stream instead of as a datagram.
    SendData {
        party_id: PartyId,
        op_code: i64,
        data: Bytes,
    },
    /// Leader only: takes a member's seat away (never touches a join request).
    Kick {
        party_id: PartyId,
        user_id: String,
    },
    /// Leader only: turns a waiting join request down (never kicks a member).
    Reject {
        party_id: PartyId,
        user_id: String,
    },
}

/// The server's limits, announced in `Welcome` so clients check before sending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_frame_size: u32,
    pub max_datagram_data: u32,
    pub max_reliable_data: u32,
    pub max_party_size: u16,
    pub max_label_bytes: u32,
    pub join_request_ttl_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub session_id: SessionId,
    pub presence: Presence,
    /// Opaque and single use: present it in `Hello.resume` to take this
    /// session back after a connection loss. Every Welcome carries a new one.
    pub resume_token: String,
    pub limits: Limits,
    /// The `seq` of the last event numbered for this session before this
    /// Welcome (0 for a new session). Events that follow count on from it.
    pub last_event_seq: u64,
    pub resumed: Resumed,
}

/// How a Hello with `resume` was served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resumed {
    /// A new session (Hello had no `resume`).
    New,
    /// Same session; the `count` events the client missed follow at once,
    /// in order, with their original sequence numbers.
    Replayed { count: u32 },
    /// Same session, but the missed events were older than the replay log:
    /// here is the state instead. Events that follow may repeat changes the
    /// snapshots already show; drop party events whose party `seq` is not
    /// above the snapshot's.
    Snapshots {
        parties: Vec<ResumedParty>,
        /// Parties where this session's join request still waits.
        waiting: Vec<PartyId>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumedParty {
    pub snapshot: PartySnapshot,
    /// The waiting join requests, oldest first; empty unless this session leads.
    pub requests: Vec<Presence>,
}

/// A party as a member sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartySnapshot {
    pub party_id: PartyId,
    /// The party's event sequence number at the time of the snapshot.
    pub seq: u64,
    pub open: bool,
    pub max_size: u16,
    pub label: String,
    pub leader: Presence,
    /// In seat order: the first is the longest-seated.
    pub members: Vec<Presence>,
    /// Session ids of members whose connection is lost and whose seat is
    /// held for the grace window.
    pub disconnected: Vec<SessionId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinOutcome {
    /// Seated at once (open party).
    Joined(PartySnapshot),
    /// Waiting for the leader (closed party).
    Queued { party_id: PartyId, seq: u64 },
}

/// The successful result of a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// CreateParty, Update, GetParty.
    Party(PartySnapshot),
    /// JoinParty.
    Join(JoinOutcome),
    /// ListJoinRequests: oldest first.
    JoinRequests {
        party_id: PartyId,
        seq: u64,
        requests: Vec<Presence>,
    },
    /// Every other command.
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaveReason {
    /// The member left by itself.
    Left,
    /// The leader removed the member.
    Kicked,
    /// The member's session ended (its connection closed).
    SessionEnded,
}

/// Why a join request ended without a seat; told to the requester.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    /// The leader rejected it.
    Rejected,
    /// The party closed or emptied while the request waited.
    PartyClosed,
    /// The request waited longer than the server's join-request limit.
    Expired,
}

/// Why a join request vanished; told to the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestGoneReason {
    Cancelled,
    Expired,
    SessionEnded,
}

/// What the server pushes without being asked. Every variant that reflects a
/// change of a party carries that party's sequence number after the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// To the other members: someone was seated.
    MemberJoined {
        party_id: PartyId,
        seq: u64,
        presence: Presence,
    },
    /// To the remaining members: someone left, was kicked, or went away.
    MemberLeft {
        party_id: PartyId,
        seq: u64,
        presence: Presence,
        reason: LeaveReason,
    },
    /// To every member: the leader changed.
    LeaderChanged {
        party_id: PartyId,
        seq: u64,
        leader: Presence,
    },
    /// To the leader: a new join request.
    JoinRequested {
        party_id: PartyId,
        seq: u64,
        presence: Presence,
    },
    /// To the leader: a request vanished without the leader acting.
    JoinRequestGone {
        party_id: PartyId,
        seq: u64,
        presence: Presence,
        reason: RequestGoneReason,
    },
    /// To a new leader: the waiting requests, oldest first.
    JoinRequestList {
        party_id: PartyId,
        seq: u64,
        requests: Vec<Presence>,
    },
    /// To a requester the leader accepted: it is seated.
    Accepted(PartySnapshot),
    /// To a requester: its request ended without a seat.
    JoinRejected {
        party_id: PartyId,
        seq: u64,
        reason: RejectReason,
    },
    /// To a member the leader removed.
    Kicked { party_id: PartyId, seq: u64 },
    /// To every member: the leader closed the party; it is gone.
    Closed { party_id: PartyId, seq: u64 },
    /// To every member: the leader changed the settings.
    Updated {
        party_id: PartyId,
        seq: u64,
        open: bool,
        max_size: u16,
        label: String,
    },
    /// Reliable party data from another member.
    Data {
        party_id: PartyId,
        sender: Presence,
        op_code: i64,
        data: Bytes,
    },
    /// A datagram of this session's that the server did not forward, and why.
    DataRefused {
        party_id: PartyId,
        op_code: i64,
        error: ErrorBody,
    },
    /// To the other members: a member lost its connection (its seat is held
    /// for the grace window) or came back.
    MemberConnection {
        party_id: PartyId,
        seq: u64,
        presence: Presence,
        connected: bool,
    },
}

impl Event {
    /// The party this event concerns.
    pub fn party_id(&self) -> PartyId {
        match self {
            Event::MemberJoined { party_id, .. }
            | Event::MemberLeft { party_id, .. }
            | Event::LeaderChanged { party_id, .. }
            | Event::JoinRequested { party_id, .. }
            | Event::JoinRequestGone { party_id, .. }
            | Event::JoinRequestList { party_id, .. }
            | Event::JoinRejected { party_id, .. }
            | Event::Kicked { party_id, .. }
            | Event::Closed { party_id, .. }
            | Event::Updated { party_id, .. }
            | Event::Data { party_id, .. }
            | Event::DataRefused { party_id, .. }
            | Event::MemberConnection { party_id, .. } => *party_id,
            Event::Accepted(snapshot) => snapshot.party_id,
        }
    }

    /// The party sequence number, for events that reflect a change.
    pub fn party_seq(&self) -> Option<u64> {
        match self {
            Event::MemberJoined { seq, .. }
            | Event::MemberLeft { seq, .. }
            | Event::LeaderChanged { seq, .. }
            | Event::JoinRequested { seq, .. }
            | Event::JoinRequestGone { seq, .. }
            | Event::JoinRequestList { seq, .. }
            | Event::JoinRejected { seq, .. }
            | Event::Kicked { seq, .. }
            | Event::Closed { seq, .. }
            | Event::Updated { seq, .. }
            | Event::MemberConnection { seq, .. } => Some(*seq),
            Event::Accepted(snapshot) => Some(snapshot.seq),
            Event::Data { .. } | Event::DataRefused { .. } => None,
        }
    }
}

/// Frames the server sends on the control stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerFrame {
    /// The answer to a good Hello.
    Welcome(Welcome),
    /// The answer to a bad Hello; the connection closes right after.
    Refused(ErrorBody),
    /// Exactly one per request.
    Response {
        id: u32,
        result: Result<Reply, ErrorBody>,
    },
    /// `seq` counts the events of this session from 1, with no gaps.
    Event { seq: u64, event: Event },
    /// A frame that could not be decoded, so no request id could be answered.
    FrameError(ErrorBody),
}
