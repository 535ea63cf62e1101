use crate::protocol::{ErrorBody, ErrorCode};

/// Every way a party operation can be refused. Each maps to one wire code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartyError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("no such party")]
    PartyNotFound,
    #[error("the party is full")]
    PartyFull,
    #[error("only the party leader can do that")]
    NotLeader,
    #[error("you are not a member of this party")]
    NotMember,
    #[error("that user is not a member of this party (nor a requester)")]
    MemberNotFound,
    #[error("that user already has a seat in this party")]
    AlreadyMember,
    #[error("that user already asked to join this party")]
    AlreadyRequested,
    #[error("too many join requests are waiting for this party")]
    TooManyRequests,
    #[error("that user has no join request for this party")]
    RequestNotFound,
    #[error("the leader cannot remove itself; leave or promote instead")]
    CannotRemoveSelf,
    #[error("no pending invite to this party for that user")]
    InviteNotFound,
    #[error("that user is banned from this party")]
    Banned,
    #[error("no party has that join code")]
    JoinCodeNotFound,
    #[error("{0}")]
    KeyValuesTooLarge(String),
    #[error("this party already has as many pending invites as the largest party has seats (256)")]
    TooManyInvites,
    #[error("this party already has as many bans as the server keeps")]
    TooManyBans,
    #[error("that user is not banned from this party")]
    BanNotFound,
    #[error("a ready check is already running in this party")]
    ReadyCheckRunning,
    #[error("no such ready check is running in this party")]
    NoReadyCheck,
    #[error("this ready check did not ask you: you were seated after it began")]
    NotAsked,
    /// The leader's session blocks the joiner. Told exactly as
    /// `PartyNotFound` is (same code, same message), so that a blocked
    /// user cannot tell a block from a party that is gone.
    #[error("no such party")]
    BlockedByLeader,
    #[error("you have blocked that user; unblock them first")]
    Blocked,
    #[error(
        "you already mute {} members of this party, the most allowed",
        crate::protocol::MAX_MUTES
    )]
    TooManyMutes,
}

impl PartyError {
    pub fn code(&self) -> ErrorCode {
        match self {
            PartyError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            PartyError::PartyNotFound => ErrorCode::PartyNotFound,
            PartyError::PartyFull => ErrorCode::PartyFull,
            PartyError::NotLeader => ErrorCode::NotLeader,
            PartyError::NotMember => ErrorCode::NotMember,
            PartyError::MemberNotFound => ErrorCode::MemberNotFound,
            PartyError::AlreadyMember => ErrorCode::AlreadyMember,
            PartyError::AlreadyRequested => ErrorCode::AlreadyRequested,
            PartyError::TooManyRequests => ErrorCode::TooManyRequests,
            PartyError::RequestNotFound => ErrorCode::RequestNotFound,
            PartyError::CannotRemoveSelf => ErrorCode::CannotRemoveSelf,
            PartyError::InviteNotFound => ErrorCode::InviteNotFound,
            PartyError::Banned => ErrorCode::Banned,
            PartyError::JoinCodeNotFound => ErrorCode::JoinCodeNotFound,
            PartyError::KeyValuesTooLarge(_) => ErrorCode::KeyValuesTooLarge,
            PartyError::TooManyInvites => ErrorCode::TooManyInvites,
            PartyError::TooManyBans => ErrorCode::TooManyBans,
            PartyError::BanNotFound => ErrorCode::BanNotFound,
            PartyError::ReadyCheckRunning => ErrorCode::ReadyCheckRunning,
            PartyError::NoReadyCheck => ErrorCode::NoReadyCheck,
            PartyError::NotAsked => ErrorCode::NotAsked,
            PartyError::BlockedByLeader => ErrorCode::PartyNotFound,
            PartyError::Blocked => ErrorCode::Blocked,
            PartyError::TooManyMutes => ErrorCode::TooManyMutes,
        }
    }
}

impl From<PartyError> for ErrorBody {
    fn from(error: PartyError) -> ErrorBody {
        ErrorBody::new(error.code(), error.to_string())
    }
}
