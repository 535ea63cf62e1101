use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a request (or handshake, or datagram) was refused.
///
/// Serialized as its stable number (a `u16`), never as a variant index, so
/// new codes can be added without renumbering. A client that meets a number
/// it does not know gets [`ErrorCode::Unknown`] instead of a decode error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "u16", from = "u16")]
pub enum ErrorCode {
    /// A field is out of range (max size, label), or the promote target is disconnected.
    InvalidArgument,
    /// No party with that id: it never existed, was closed, or emptied.
    PartyNotFound,
    /// A join or accept when the party already has `max_size` members.
    PartyFull,
    /// A member that is not the leader tried a leader-only command.
    NotLeader,
    /// The caller has no seat in the party (data, get, leave, or a leader command).
    NotMember,
    /// The target user of a leader command is not in the party.
    MemberNotFound,
    /// The user already has a seat in the party.
    AlreadyMember,
    /// The user already has a join request waiting for the party.
    AlreadyRequested,
    /// The party already has `max_size` join requests waiting.
    TooManyRequests,
    /// An accept or reject names a user without a waiting join request.
    RequestNotFound,
    /// The leader tried to remove itself; it must leave or promote instead.
    CannotRemoveSelf,
    /// Party data above the datagram or reliable payload limit.
    PayloadTooLarge,
    /// Over the session's command rate or data rate.
    RateLimited,
    /// The identity in Hello was refused (bad token, wrong identity kind, bad names).
    Unauthenticated,
    /// Hello carried a protocol version this server does not speak.
    VersionMismatch,
    /// A server fault (a bug), not the client's doing.
    Internal,
    /// A frame or datagram that could not be decoded.
    MalformedFrame,
    /// A well-formed message at the wrong time (a second Hello, a command before Hello).
    ProtocolViolation,
    /// A resume token that is unknown, used, expired (grace window over) or
    /// another user's: start a new session.
    ResumeRefused,
    /// This session already has as many parties (seats and waiting
    /// requests together) as the server allows.
    TooManyParties,
    /// A decline or revoke names an invite that is not pending (never
    /// sent, used, declined, revoked or expired).
    InviteNotFound,
    /// The user is banned from the party: no seat, request, code join or
    /// invite until the ban ends.
    Banned,
    /// No live party has that join code (mistyped, rotated, cleared, or
    /// the party closed).
    JoinCodeNotFound,
    /// Following these users would pass `Limits::max_follows`.
    TooManyFollows,
    /// Party state, member attributes or listing properties would pass
    /// their entry or byte limit (`Limits`).
    KeyValuesTooLarge,
    /// The party already has 256 pending invites (`MAX_PARTY_SIZE`).
    TooManyInvites,
    /// The party already has `Limits::max_bans` bans.
    TooManyBans,
    /// An unban names a user who is not banned from the party.
    BanNotFound,
    /// The session (or one of the party's members) is already in a
    /// matchmaking ticket, or the party already has one.
    AlreadyMatchmaking,
    /// No waiting ticket with that id that this session may cancel.
    TicketNotFound,
    /// A ticket's counts or query cannot work: min_count 0 or above
    /// max_count, count_multiple 0, a range with min above max, or more
    /// properties than the limits allow.
    InvalidTicket,
    /// The party has more members than the ticket's max_count.
    PartyTooLarge,
    /// The server's own rules (a hook of the game embedding it) refused
    /// the command; the message says why.
    Denied,
    /// The server's own rules failed or ran out of time on this command:
    /// nothing changed; trying again later may work.
    HookFailed,
    /// The party lives on another node of a cluster that this node cannot
    /// reach now (the messaging link is down, or the node did not answer
    /// in time). Nothing is known to have changed; trying again later may
    /// work.
    Unavailable,
    /// `StartReadyCheck` while the party's ready check runs: one at a time
    /// (version 3).
    ReadyCheckRunning,
    /// `AnswerReadyCheck` or `CancelReadyCheck` when no ready check runs,
    /// or an answer naming a check that is not the one running (version 3).
    NoReadyCheck,
    /// `AnswerReadyCheck` by a member the running check did not ask: it
    /// was seated after the check began (version 3).
    NotAsked,
    /// `Mute` of a new member when this session already mutes
    /// [`crate::MAX_MUTES`] members of the party (version 3).
    TooManyMutes,
    /// `Block` that would put more than [`crate::MAX_BLOCKS`] users on the
    /// session's block list (version 3).
    TooManyBlocks,
    /// The caller's own block list stands in the way: an `Invite` of a
    /// user this session blocked (version 3). Never says that someone
    /// else blocked the caller.
    Blocked,
    /// A number this build does not know (sent by a newer peer).
    Unknown(u16),
}

impl ErrorCode {
    /// The stable number this code has on the wire (PROTOCOL.md section 6).
    pub const fn number(self) -> u16 {
        match self {
            ErrorCode::InvalidArgument => 1,
            ErrorCode::PartyNotFound => 2,
            ErrorCode::PartyFull => 3,
            ErrorCode::NotLeader => 4,
            ErrorCode::NotMember => 5,
            ErrorCode::MemberNotFound => 6,
            ErrorCode::AlreadyMember => 7,
            ErrorCode::AlreadyRequested => 8,
            ErrorCode::TooManyRequests => 9,
            ErrorCode::RequestNotFound => 10,
            ErrorCode::CannotRemoveSelf => 11,
            ErrorCode::PayloadTooLarge => 12,
            ErrorCode::RateLimited => 13,
            ErrorCode::Unauthenticated => 14,
            ErrorCode::VersionMismatch => 15,
            ErrorCode::Internal => 16,
            ErrorCode::MalformedFrame => 17,
            ErrorCode::ProtocolViolation => 18,
            ErrorCode::ResumeRefused => 19,
            ErrorCode::TooManyParties => 20,
            ErrorCode::InviteNotFound => 21,
            ErrorCode::Banned => 22,
            ErrorCode::JoinCodeNotFound => 23,
            ErrorCode::TooManyFollows => 24,
            ErrorCode::KeyValuesTooLarge => 25,
            ErrorCode::TooManyInvites => 26,
            ErrorCode::TooManyBans => 27,
            ErrorCode::BanNotFound => 28,
            ErrorCode::AlreadyMatchmaking => 29,
            ErrorCode::TicketNotFound => 30,
            ErrorCode::InvalidTicket => 31,
            ErrorCode::PartyTooLarge => 32,
            ErrorCode::Denied => 33,
            ErrorCode::HookFailed => 34,
            ErrorCode::Unavailable => 35,
            ErrorCode::ReadyCheckRunning => 36,
            ErrorCode::NoReadyCheck => 37,
            ErrorCode::NotAsked => 38,
            ErrorCode::TooManyMutes => 39,
            ErrorCode::TooManyBlocks => 40,
            ErrorCode::Blocked => 41,
            ErrorCode::Unknown(n) => n,
        }
    }
}

impl From<ErrorCode> for u16 {
    fn from(code: ErrorCode) -> u16 {
        code.number()
    }
}

impl From<u16> for ErrorCode {
    fn from(n: u16) -> ErrorCode {
        match n {
            1 => ErrorCode::InvalidArgument,
            2 => ErrorCode::PartyNotFound,
            3 => ErrorCode::PartyFull,
            4 => ErrorCode::NotLeader,
            5 => ErrorCode::NotMember,
            6 => ErrorCode::MemberNotFound,
            7 => ErrorCode::AlreadyMember,
            8 => ErrorCode::AlreadyRequested,
            9 => ErrorCode::TooManyRequests,
            10 => ErrorCode::RequestNotFound,
            11 => ErrorCode::CannotRemoveSelf,
            12 => ErrorCode::PayloadTooLarge,
            13 => ErrorCode::RateLimited,
            14 => ErrorCode::Unauthenticated,
            15 => ErrorCode::VersionMismatch,
            16 => ErrorCode::Internal,
            17 => ErrorCode::MalformedFrame,
            18 => ErrorCode::ProtocolViolation,
            19 => ErrorCode::ResumeRefused,
            20 => ErrorCode::TooManyParties,
            21 => ErrorCode::InviteNotFound,
            22 => ErrorCode::Banned,
            23 => ErrorCode::JoinCodeNotFound,
            24 => ErrorCode::TooManyFollows,
            25 => ErrorCode::KeyValuesTooLarge,
            26 => ErrorCode::TooManyInvites,
            27 => ErrorCode::TooManyBans,
            28 => ErrorCode::BanNotFound,
            29 => ErrorCode::AlreadyMatchmaking,
            30 => ErrorCode::TicketNotFound,
            31 => ErrorCode::InvalidTicket,
            32 => ErrorCode::PartyTooLarge,
            33 => ErrorCode::Denied,
            34 => ErrorCode::HookFailed,
            35 => ErrorCode::Unavailable,
            36 => ErrorCode::ReadyCheckRunning,
            37 => ErrorCode::NoReadyCheck,
            38 => ErrorCode::NotAsked,
            39 => ErrorCode::TooManyMutes,
            40 => ErrorCode::TooManyBlocks,
            41 => ErrorCode::Blocked,
            other => ErrorCode::Unknown(other),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Unknown(n) => write!(f, "Unknown({n})"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// A refusal on the wire: the code to act on and a message for humans.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for the program to act on.
    pub code: ErrorCode,
    /// Why, in words for humans.
    pub message: String,
}

impl ErrorBody {
    /// A refusal with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ErrorBody {}

/// QUIC application close codes the server uses; the reason phrase says more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCode {
    /// Ordinary goodbye from either side.
    Normal = 0,
    /// The peer broke the protocol in a way the connection cannot recover from.
    ProtocolViolation = 1,
    /// The server is shutting down.
    ServerShutdown = 2,
    /// Hello was refused (version, identity); a `Refused` frame said why.
    HandshakeRefused = 3,
    /// The session did not read its control stream fast enough.
    SlowConsumer = 4,
    /// A frame's length prefix exceeded the maximum frame size.
    FrameTooLarge = 5,
    /// A resume on another connection took this session over.
    Superseded = 6,
    /// The server is at its session limit; try later or elsewhere.
    ServerFull = 7,
    /// The session kept exceeding its rate limits.
    RateLimited = 8,
    /// The server (an operator, or the game's backend) ended the session:
    /// no grace window; connecting again starts a new session.
    Disconnected = 9,
}

impl CloseCode {
    /// The close code with this QUIC error number, or `None` for one we do not know.
    pub fn from_number(n: u64) -> Option<CloseCode> {
        Some(match n {
            0 => CloseCode::Normal,
            1 => CloseCode::ProtocolViolation,
            2 => CloseCode::ServerShutdown,
            3 => CloseCode::HandshakeRefused,
            4 => CloseCode::SlowConsumer,
            5 => CloseCode::FrameTooLarge,
            6 => CloseCode::Superseded,
            7 => CloseCode::ServerFull,
            8 => CloseCode::RateLimited,
            9 => CloseCode::Disconnected,
            _ => return None,
        })
    }
}
