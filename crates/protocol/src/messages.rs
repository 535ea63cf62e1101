//! Every message of the control stream. The postcard encoding of these
//! types *is* the wire format: field order and variant order matter, and
//! PROTOCOL.md lists both. Append new variants at the end only.

use super::ErrorBody;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A small string map: party state, member attributes, listing
/// properties. Sorted by key on the wire (postcard encodes a map as its
/// length, then each key and value), so equal maps are equal bytes.
pub type KeyValues = BTreeMap<String, String>;

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

            /// From a number (big-endian): readable ids for tests and tools.
            pub const fn from_u128(n: u128) -> Self {
                $name(Uuid::from_u128(n))
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
    /// The user's stable id, the same in every session.
    pub user_id: String,
    /// The name to show.
    pub username: String,
    /// The session this presence belongs to.
    pub session_id: SessionId,
}

/// Who the client says it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Identity {
    /// Development mode: the client names itself. Refused when the server
    /// runs with a token secret.
    Dev {
        /// The user's stable id (1 to 128 bytes, no control characters).
        user_id: String,
        /// The name to show (1 to 128 bytes, no control characters).
        username: String,
    },
    /// A signed token minted by the game's backend (see `partyline::auth`).
    Token {
        /// The token text, `v1.<user_id>.<username>.<expires>.<tag>`.
        token: String,
    },
}

/// The client's first frame: protocol version, identity, and an optional resume.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version the client speaks ([`crate::PROTOCOL_VERSION`]).
    pub version: u16,
    /// Who the client says it is.
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
    Request {
        /// Chosen by the client; the matching `Response` carries it back.
        id: u32,
        /// What to do.
        command: Command,
    },
}

/// What a client asks the server to do; each gets exactly one `Response`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Creates a party with the caller as its leader.
    CreateParty {
        /// Whether anyone may join at once (`false`: joins wait for the leader).
        open: bool,
        /// Most members, leader included (1 to 256).
        max_size: u16,
        /// Free text for the game; empty means no label.
        label: String,
        /// Who may invite: the leader only, or any member.
        invite_policy: InvitePolicy,
        /// The party state to start with (leader-owned, seen by members).
        state: KeyValues,
        /// Who leads when the leader leaves or is lost (version 3: a
        /// version 2 client's `CreateParty` has no such field, and its
        /// party gets `Tenure`).
        leader_policy: LeaderPolicy,
    },
    /// Takes a seat in an open party, or asks the leader of a closed one.
    JoinParty {
        /// The party this concerns.
        party_id: PartyId,
    },
    /// Leader only: lists the waiting join requests.
    ListJoinRequests {
        /// The party this concerns.
        party_id: PartyId,
    },
    /// Leader only: seats a user whose join request waits.
    AcceptJoinRequest {
        /// The party this concerns.
        party_id: PartyId,
        /// The requester to seat.
        user_id: String,
    },
    /// Kicks a member, or rejects a join request, by user id.
    Remove {
        /// The party this concerns.
        party_id: PartyId,
        /// The member to kick or the requester to reject.
        user_id: String,
    },
    /// Leaves the party, or cancels this session's join request.
    Leave {
        /// The party this concerns.
        party_id: PartyId,
    },
    /// Leader only: makes another member the leader.
    Promote {
        /// The party this concerns.
        party_id: PartyId,
        /// The member to make leader.
        user_id: String,
    },
    /// Leader only: ends the party for everyone.
    Close {
        /// The party this concerns.
        party_id: PartyId,
    },
    /// Fields left `None` stay as they are.
    Update {
        /// The party this concerns.
        party_id: PartyId,
        /// New open setting, if any.
        open: Option<bool>,
        /// New label, if any (empty means no label).
        label: Option<String>,
        /// New size limit, if any; not below the current member count.
        max_size: Option<u16>,
        /// New invite policy, if any.
        invite_policy: Option<InvitePolicy>,
        /// New leader policy, if any (version 3: a version 2 client's
        /// `Update` has no such field, and leaves the policy as it is).
        leader_policy: Option<LeaderPolicy>,
    },
    /// Members only: asks for a snapshot of the party.
    GetParty {
        /// The party this concerns.
        party_id: PartyId,
    },
    /// Party data sent reliably on the control stream instead of as a datagram.
    SendData {
        /// The party this concerns.
        party_id: PartyId,
        /// The game's own op code (what the data means), passed on untouched.
        op_code: i64,
        /// The payload, at most `max_reliable_data` bytes.
        data: Bytes,
    },
    /// Leader only: takes a member's seat away (never touches a join request).
    Kick {
        /// The party this concerns.
        party_id: PartyId,
        /// The member to remove.
        user_id: String,
    },
    /// Leader only: turns a waiting join request down (never kicks a member).
    Reject {
        /// The party this concerns.
        party_id: PartyId,
        /// The requester to turn down.
        user_id: String,
    },
    /// Sets this session's status text and whether it shows as online to
    /// its followers. An empty status clears it; `visible: false` appears
    /// offline (followers are told it went offline).
    SetStatus {
        /// At most `Limits::max_status_bytes` bytes of UTF-8.
        status: String,
        /// `false` appears offline.
        visible: bool,
    },
    /// Follows users by id, to be told when their sessions come online,
    /// change status, and go offline. Answered with `Reply::Followed`.
    Follow {
        /// Users to follow; already-followed ones are kept as they are.
        user_ids: Vec<String>,
    },
    /// Stops following users; ids not followed are ignored.
    Unfollow {
        /// Users to stop following.
        user_ids: Vec<String>,
    },
    /// Invites a user to a party: every online session of theirs is told at
    /// once, and the invite admits them (once, until it expires) even to a
    /// closed party. Inviting the same user again renews the invite.
    Invite {
        /// The party this concerns.
        party_id: PartyId,
        /// Whom to invite.
        user_id: String,
    },
    /// Turns down an invite to this session's user; the inviter is told.
    DeclineInvite {
        /// The party of the invite.
        party_id: PartyId,
    },
    /// Takes back a pending invite: the leader any, and under
    /// `InvitePolicy::AnyMember` a member its own.
    RevokeInvite {
        /// The party this concerns.
        party_id: PartyId,
        /// Whose invite to take back.
        user_id: String,
    },
    /// Lists the pending invites of this session's user, oldest first.
    ListInvites,
    /// Leader only: gives the party a new join code (replacing any old one).
    /// Answered with `Reply::JoinCode`.
    CreateJoinCode {
        /// The party this concerns.
        party_id: PartyId,
    },
    /// Leader only: removes the party's join code.
    ClearJoinCode {
        /// The party this concerns.
        party_id: PartyId,
    },
    /// Joins (or asks to join) the party that has this code, exactly as
    /// `JoinParty` would. Case-insensitive. Answered with `Reply::Join`.
    JoinByCode {
        /// The code, as a player typed it.
        code: String,
    },
    /// Leader only: lists the party (or updates its properties), so that
    /// `SearchParties` finds it.
    ListParty {
        /// The party this concerns.
        party_id: PartyId,
        /// Public properties to search by (`key = value` filters).
        properties: KeyValues,
    },
    /// Leader only: takes the party out of search results.
    UnlistParty {
        /// The party this concerns.
        party_id: PartyId,
    },
    /// Searches listed parties. Answered with `Reply::Parties`.
    SearchParties(PartySearch),
    /// Leader only: sets and removes keys of the party state.
    SetPartyState {
        /// The party this concerns.
        party_id: PartyId,
        /// Keys to set (added or replaced).
        set: KeyValues,
        /// Keys to remove (applied before `set`).
        remove: Vec<String>,
    },
    /// Sets and removes keys of this session's own member attributes.
    SetMemberAttributes {
        /// The party this concerns.
        party_id: PartyId,
        /// Keys to set (added or replaced).
        set: KeyValues,
        /// Keys to remove (applied before `set`).
        remove: Vec<String>,
    },
    /// Leader only: bans a user from the party, removing their seat, join
    /// request and invite, and refusing them until the ban ends.
    Ban {
        /// The party this concerns.
        party_id: PartyId,
        /// Whom to ban.
        user_id: String,
        /// How long, in milliseconds; 0 for as long as the party lives.
        duration_ms: u64,
    },
    /// Leader only: lifts a ban.
    Unban {
        /// The party this concerns.
        party_id: PartyId,
        /// Whose ban to lift.
        user_id: String,
    },
    /// Leader only: lists the party's bans. Answered with `Reply::Bans`.
    ListBans {
        /// The party this concerns.
        party_id: PartyId,
    },
    /// Starts matchmaking: a solo ticket, or (with `party_id`, leader only)
    /// a ticket for the whole party, every member in it. Answered with
    /// `Reply::TicketStarted`.
    SubmitTicket(TicketRequest),
    /// Stops a ticket: its submitter's (solo), or the party leader's.
    CancelTicket {
        /// The ticket, as `TicketStarted` named it.
        ticket_id: u64,
    },
    /// Leader only: asks every member whether it is ready (version 3).
    /// One check at a time per party; the leader counts as ready.
    StartReadyCheck {
        /// The party this concerns.
        party_id: PartyId,
        /// Shown to the members (at most [`crate::MAX_READY_CHECK_MESSAGE_BYTES`]
        /// bytes, no control character); may be empty.
        message: String,
        /// How long the members have to answer, in milliseconds:
        /// [`crate::READY_CHECK_MIN_TIMEOUT_MS`] to
        /// [`crate::READY_CHECK_MAX_TIMEOUT_MS`].
        timeout_ms: u64,
    },
    /// A member the running check asked answers it, or changes its answer
    /// (version 3).
    AnswerReadyCheck {
        /// The party this concerns.
        party_id: PartyId,
        /// The check answered, as `ReadyCheckStarted` named it: an answer
        /// meant for an earlier check never counts for a later one.
        check_id: u64,
        /// Ready, or not ready.
        ready: bool,
    },
    /// Leader only: ends the running check now (version 3).
    CancelReadyCheck {
        /// The party this concerns.
        party_id: PartyId,
    },
    /// Stops the party data of another member reaching this session
    /// (version 3): datagrams and reliable `Data` it sends with an op code
    /// in `op_codes` (every op code when `None`). Muting the same member
    /// again replaces the range. The muted member is not told.
    Mute {
        /// The party this concerns.
        party_id: PartyId,
        /// The member to mute.
        user_id: String,
        /// Only these op codes (inclusive); `None`: all of them.
        op_codes: Option<NumberRange>,
    },
    /// Lets a muted member's party data reach this session again
    /// (version 3). A member not muted: nothing changes.
    Unmute {
        /// The party this concerns.
        party_id: PartyId,
        /// The member to unmute.
        user_id: String,
    },
    /// Adds users to this session's block list (version 3): answered with
    /// `Reply::Blocks`, the list now.
    Block {
        /// Users to block; already-blocked ones are kept as they are.
        user_ids: Vec<String>,
    },
    /// Takes users off this session's block list (version 3); ids not on
    /// it are ignored. Answered with `Reply::Blocks`.
    Unblock {
        /// Users to unblock.
        user_ids: Vec<String>,
    },
    /// This session's block list (version 3), however it was set:
    /// answered with `Reply::Blocks`.
    ListBlocks,
}

impl Command {
    /// The protocol version that added this command: a session of an
    /// older version is answered as that version's server would answer a
    /// tag it does not know (`MalformedFrame`).
    pub fn since_version(&self) -> u16 {
        match self {
            Command::StartReadyCheck { .. }
            | Command::AnswerReadyCheck { .. }
            | Command::CancelReadyCheck { .. }
            | Command::Mute { .. }
            | Command::Unmute { .. }
            | Command::Block { .. }
            | Command::Unblock { .. }
            | Command::ListBlocks => 3,
            _ => 2,
        }
    }
}

/// A party's ready check: who was asked, and how each answered so far
/// (version 3). In a snapshot while it runs, and in `ReadyCheckStarted`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyCheck {
    /// Names the check: the party `seq` of its start.
    pub check_id: u64,
    /// The leader who started it.
    pub started_by: Presence,
    /// The leader's message (may be empty).
    pub message: String,
    /// How long it runs, in milliseconds, from its start.
    pub timeout_ms: u64,
    /// When it times out: Unix milliseconds by the server's clock.
    pub ends_at_ms: u64,
    /// Asked members that answered ready, in seat order at the start.
    pub ready: Vec<Presence>,
    /// Asked members that answered not ready, or left the party.
    pub not_ready: Vec<Presence>,
    /// Asked members that have not answered yet.
    pub no_answer: Vec<Presence>,
}

/// One member this session muted in a party (version 3), as its own
/// snapshots show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Muted {
    /// The muted member's user id.
    pub user_id: String,
    /// The op codes muted (inclusive); `None`: all of them.
    pub op_codes: Option<NumberRange>,
}

impl Muted {
    /// Whether party data with `op_code` is muted.
    pub fn covers(&self, op_code: i64) -> bool {
        self.op_codes
            .is_none_or(|range| range.min <= op_code && op_code <= range.max)
    }
}

/// Who becomes leader when the leader leaves, or is lost and its leader
/// grace runs out (version 3). Either way only a connected member is
/// chosen; `Promote` is untouched by it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LeaderPolicy {
    /// The longest-seated connected member (the only rule of version 2).
    #[default]
    Tenure,
    /// The connected member with the best connection as the server
    /// measures it (smoothed RTT and loss over the last minute,
    /// PROTOCOL.md "Leader by connection quality"); tenure breaks ties.
    ConnectionQuality,
}

/// A member's connection as the server measures it, in coarse buckets
/// (version 3): in `PartySnapshot::quality`. PROTOCOL.md, "Leader by
/// connection quality", gives the scores of each bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConnectionQuality {
    /// Not measured yet (a connection's first seconds), or the member is
    /// disconnected.
    #[default]
    Unknown,
    /// Low round-trip time and little loss.
    Good,
    /// Playable, noticeably slower or lossier.
    Fair,
    /// Slow or lossy.
    Poor,
}

/// How a ready check ended (version 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadyCheckOutcome {
    /// Every member asked answered ready.
    AllReady,
    /// Its time ran out first.
    TimedOut,
    /// The leader cancelled it.
    Cancelled,
}

/// Integer properties of a ticket or member (scale fractions yourself:
/// skill 12.5 as 1250).
pub type Numbers = BTreeMap<String, i64>;

/// What a ticket asks of every other ticket in its match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketQuery {
    /// The other ticket's string property must equal each of these.
    pub strings: KeyValues,
    /// The other ticket's number must lie in each `[min, max]`, inclusive.
    pub ranges: BTreeMap<String, NumberRange>,
}

/// An inclusive range of integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberRange {
    /// Lowest allowed.
    pub min: i64,
    /// Highest allowed.
    pub max: i64,
}

/// One member's own properties in a ticket, carried to the match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberProperties {
    /// Whose.
    pub user_id: String,
    /// String properties.
    pub strings: KeyValues,
    /// Integer properties.
    pub numbers: Numbers,
}

/// A matchmaking ticket as submitted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRequest {
    /// `None` for a solo ticket; the party for a party's ticket (leader only).
    pub party_id: Option<PartyId>,
    /// Fewest players in the match, this ticket's included.
    pub min_count: u32,
    /// Most players in the match.
    pub max_count: u32,
    /// The match's player count must be a multiple of this (1: any).
    pub count_multiple: u32,
    /// A lower minimum that applies once the ticket has waited the
    /// server's relax time (`Limits::matchmaker_relax_after_ms`); 0: none.
    pub relaxed_min_count: u32,
    /// The ticket's string properties, which other tickets' queries test.
    pub strings: KeyValues,
    /// The ticket's integer properties, which other tickets' queries test.
    pub numbers: Numbers,
    /// What every other ticket in the match must have.
    pub query: TicketQuery,
    /// Per member properties, carried to `Matched` (members not listed
    /// have none).
    pub members: Vec<MemberProperties>,
}

/// Why a ticket stopped without a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketCancelReason {
    /// Its submitter (or the party's leader) cancelled it.
    Cancelled,
    /// The party's members changed (someone joined, left, was kicked or
    /// banned): a ticket is for the party as it was.
    MembershipChanged,
    /// The party closed.
    PartyClosed,
    /// The submitting session ended.
    SessionEnded,
    /// A cluster's node that held the ticket (its pool, or its party) was
    /// lost (PROTOCOL.md section 13).
    NodeLost,
}

/// One player of a match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchedPlayer {
    /// Who.
    pub presence: Presence,
    /// The party it came with; `None` for a solo ticket.
    pub party_id: Option<PartyId>,
    /// Its ticket's string properties, then its own (its own win).
    pub strings: KeyValues,
    /// Its ticket's integer properties, then its own.
    pub numbers: Numbers,
}

/// A match, as every player of it is told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchFound {
    /// The match (a UUID's 16 bytes).
    pub match_id: [u8; 16],
    /// The ticket of this session that was matched.
    pub ticket_id: u64,
    /// Every player, ticket by ticket, oldest ticket first.
    pub players: Vec<MatchedPlayer>,
    /// For the game server: signed (PROTOCOL.md, "Match token").
    pub token: String,
    /// When the token stops being valid (Unix seconds).
    pub token_expires_at: u64,
}

/// Who may invite users to a party.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InvitePolicy {
    /// Only the leader (the default).
    #[default]
    Leader,
    /// Any member.
    AnyMember,
}

/// What `SearchParties` looks for. Every filter must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartySearch {
    /// Only open parties (joined without the leader's accept).
    pub open_only: bool,
    /// Only parties with at least this many free seats.
    pub min_free_seats: u16,
    /// Only parties whose properties hold every one of these pairs.
    pub properties: KeyValues,
    /// Most results wanted, 1 to `Limits::max_search_results`.
    pub limit: u16,
    /// 0 for the first page; else `next_cursor` of the previous page.
    pub cursor: u64,
}

/// A listed party as a search shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedParty {
    /// The party's id, to join with.
    pub party_id: PartyId,
    /// Members now, leader included.
    pub members: u16,
    /// Most members, leader included.
    pub max_size: u16,
    /// Whether joins are seated at once.
    pub open: bool,
    /// The party's label.
    pub label: String,
    /// The properties the leader listed it with.
    pub properties: KeyValues,
}

/// A session as its followers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserStatus {
    /// Which session of which user.
    pub presence: Presence,
    /// Its status text (empty: none).
    pub status: String,
}

/// A pending invite, as the invitee sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyInvite {
    /// The party invited to.
    pub party_id: PartyId,
    /// Who invited.
    pub inviter: Presence,
    /// Members when invited, leader included.
    pub members: u16,
    /// Most members, leader included.
    pub max_size: u16,
    /// Whether the party was open when invited (the invite admits to a
    /// closed one too).
    pub open: bool,
    /// The party's label when invited.
    pub label: String,
    /// The party's leader when invited.
    pub leader: Presence,
    /// When the invite runs out: milliseconds since the Unix epoch, by the
    /// server's clock.
    pub expires_at_ms: u64,
}

/// One ban of a party.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyBan {
    /// The banned user.
    pub user_id: String,
    /// When the ban ends, milliseconds since the Unix epoch by the server's
    /// clock; 0 for the party's life.
    pub until_ms: u64,
}

/// The server's limits, announced in `Welcome` so clients check before sending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest control-stream frame body in bytes.
    pub max_frame_size: u32,
    /// Largest datagram payload in bytes; larger ones are refused, never cut.
    pub max_datagram_data: u32,
    /// Largest `SendData` payload in bytes.
    pub max_reliable_data: u32,
    /// Largest `max_size` a party may have, leader included.
    pub max_party_size: u16,
    /// Largest party label in bytes of UTF-8.
    pub max_label_bytes: u32,
    /// How long a join request waits before it expires, in milliseconds.
    pub join_request_ttl_ms: u64,
    /// Largest status text in bytes of UTF-8.
    pub max_status_bytes: u32,
    /// Most users one session may follow.
    pub max_follows: u32,
    /// How long an invite lasts, in milliseconds.
    pub invite_ttl_ms: u64,
    /// Invites one session may send per minute.
    pub invites_per_minute: u32,
    /// `JoinByCode` attempts one session may make per minute.
    pub join_code_attempts_per_minute: u32,
    /// Most results one `SearchParties` returns.
    pub max_search_results: u16,
    /// Party state: most keys.
    pub max_state_entries: u32,
    /// Party state: most bytes of keys and values together.
    pub max_state_bytes: u32,
    /// One member's attributes: most keys.
    pub max_attribute_entries: u32,
    /// One member's attributes: most bytes of keys and values together.
    pub max_attribute_bytes: u32,
    /// Listing properties: most keys.
    pub max_property_entries: u32,
    /// Listing properties: most bytes of keys and values together.
    pub max_property_bytes: u32,
    /// Most bans one party keeps.
    pub max_bans: u32,
    /// How often the matchmaker runs, in milliseconds.
    pub matchmaker_interval_ms: u64,
    /// After this long waiting, a ticket's `relaxed_min_count` applies
    /// (milliseconds).
    pub matchmaker_relax_after_ms: u64,
}

/// The server's answer to a good Hello: the session is open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// This session's id (the same one again after a resume).
    pub session_id: SessionId,
    /// How others see this session.
    pub presence: Presence,
    /// Opaque and single use: present it in `Hello.resume` to take this
    /// session back after a connection loss. Every Welcome carries a new one.
    pub resume_token: String,
    /// The server's limits, to check before sending.
    pub limits: Limits,
    /// The `seq` of the last event numbered for this session before this
    /// Welcome (0 for a new session). Events that follow count on from it.
    pub last_event_seq: u64,
    /// Whether and how an asked-for resume was served.
    pub resumed: Resumed,
}

/// How a Hello with `resume` was served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resumed {
    /// A new session (Hello had no `resume`).
    New,
    /// Same session; the `count` events the client missed follow at once,
    /// in order, with their original sequence numbers.
    Replayed {
        /// How many replayed events follow.
        count: u32,
    },
    /// Same session, but the missed events were older than the replay log:
    /// here is the state instead. Events that follow may repeat changes the
    /// snapshots already show; drop party events whose party `seq` is not
    /// above the snapshot's.
    Snapshots {
        /// Every party where this session has a seat.
        parties: Vec<ResumedParty>,
        /// Parties where this session's join request still waits.
        waiting: Vec<PartyId>,
    },
}

/// One party's state, sent on a resume whose gap was older than the replay log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumedParty {
    /// The party as it is now.
    pub snapshot: PartySnapshot,
    /// The waiting join requests, oldest first; empty unless this session leads.
    pub requests: Vec<Presence>,
}

/// A party as a member sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartySnapshot {
    /// The party's id.
    pub party_id: PartyId,
    /// The party's event sequence number at the time of the snapshot.
    pub seq: u64,
    /// Whether joins are seated at once (`false`: they wait for the leader).
    pub open: bool,
    /// Most members, leader included.
    pub max_size: u16,
    /// Free text for the game; empty means no label.
    pub label: String,
    /// The current leader.
    pub leader: Presence,
    /// In seat order: the first is the longest-seated.
    pub members: Vec<Presence>,
    /// Session ids of members whose connection is lost and whose seat is
    /// held for the grace window.
    pub disconnected: Vec<SessionId>,
    /// Who may invite.
    pub invite_policy: InvitePolicy,
    /// The party state (leader-owned).
    pub state: KeyValues,
    /// Each member's attributes, in the order of `members`.
    pub attributes: Vec<KeyValues>,
    /// The join code; empty when the party has none.
    pub join_code: String,
    /// Whether the party is listed for search.
    pub listed: bool,
    /// The properties it is listed with (empty when not listed).
    pub properties: KeyValues,
    /// The ready check running now, if any (version 3 from here: a
    /// version 2 client is sent the snapshot without it). Boxed: most
    /// parties have none, and a snapshot travels inside events.
    pub ready_check: Option<Box<ReadyCheck>>,
    /// Who leads when the leader leaves or is lost (version 3).
    pub leader_policy: LeaderPolicy,
    /// Each member's connection quality, in the order of `members`
    /// (version 3), as the party's home knew it at the snapshot: no event
    /// follows a change (PROTOCOL.md, "Leader by connection quality").
    pub quality: Vec<ConnectionQuality>,
    /// The members this session muted in the party (version 3 from here:
    /// a version 2 client is sent the snapshot without it). Only in a
    /// snapshot sent to the muting member itself (a reply, or a resume);
    /// empty in every other.
    pub muted: Vec<Muted>,
}

/// What a `JoinParty` led to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
// Short-lived (one per join reply): boxing the snapshot would cost an
// allocation for nothing.
#[allow(clippy::large_enum_variant)]
pub enum JoinOutcome {
    /// Seated at once (open party).
    Joined(PartySnapshot),
    /// Waiting for the leader (closed party).
    Queued {
        /// The party asked to join.
        party_id: PartyId,
        /// The party's sequence number after the request was queued.
        seq: u64,
    },
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
        /// The party asked about.
        party_id: PartyId,
        /// The party's current sequence number.
        seq: u64,
        /// The waiting requesters, oldest first.
        requests: Vec<Presence>,
    },
    /// Every other command.
    Done,
    /// Follow: the followed users' sessions that are online now.
    Followed {
        /// One entry per visible session of a followed user.
        online: Vec<UserStatus>,
    },
    /// ListInvites: pending invites of this session's user, oldest first.
    Invites(Vec<PartyInvite>),
    /// CreateJoinCode.
    JoinCode {
        /// The party.
        party_id: PartyId,
        /// The new code: 6 characters of the code alphabet (PROTOCOL.md).
        code: String,
    },
    /// SearchParties: one page, in listing order.
    Parties {
        /// The matching parties, at most the limit asked for.
        parties: Vec<ListedParty>,
        /// Pass as `cursor` for the next page; 0 when there is none.
        next_cursor: u64,
    },
    /// ListBans: oldest first.
    Bans {
        /// The party.
        party_id: PartyId,
        /// The bans in force.
        bans: Vec<PartyBan>,
    },
    /// SubmitTicket: the ticket waits.
    TicketStarted {
        /// Names the ticket (for `CancelTicket` and the events).
        ticket_id: u64,
    },
    /// Block, Unblock, ListBlocks (version 3): this session's block list
    /// now, in ascending byte order.
    Blocks {
        /// The blocked users.
        user_ids: Vec<String>,
    },
}

/// Why a member left a party; told to the remaining members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaveReason {
    /// The member left by itself.
    Left,
    /// The leader removed the member.
    Kicked,
    /// The member's session ended (its connection closed).
    SessionEnded,
    /// The leader banned the member.
    Banned,
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

/// Why an invite ended without being used; told to the invitee.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InviteGoneReason {
    /// The leader took it back.
    Revoked,
    /// The party closed or emptied.
    PartyClosed,
    /// It ran out.
    Expired,
    /// The leader banned the invitee.
    Banned,
    /// One of the invitee's sessions used it (joined) or declined it.
    Answered,
}

/// Why a join request vanished; told to the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestGoneReason {
    /// The requester cancelled it (left).
    Cancelled,
    /// The request waited longer than the server's join-request limit.
    Expired,
    /// The requester's session ended.
    SessionEnded,
}

/// What the server pushes without being asked. Every variant that reflects a
/// change of a party carries that party's sequence number after the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// To the other members: someone was seated.
    MemberJoined {
        /// The party this concerns.
        party_id: PartyId,
        /// The party's sequence number after this change.
        seq: u64,
        /// The member who was seated.
        presence: Presence,
    },
    /// To the remaining members: someone left, was kicked, or went away.
    MemberLeft {
        /// The party this concerns.
        party_id: PartyId,
        /// The party's sequence number after this change.
        seq: u64,
        /// The member who is gone.
        presence: Presence,
        /// Why the member is gone.
        reason: LeaveReason,
    },
    /// To every member: the leader changed.
    LeaderChanged {
        /// The party this concerns.
        party_id: PartyId,
        /// The party's sequence number after this change.
        seq: u64,
        /// The new leader.
        leader: Presence,
    },
    /// To the leader: a new join request.
    JoinRequested {
        /// The party this concerns.
        party_id: PartyId,
        /// The party's sequence number after this change.
        seq: u64,
        /// Who asked to join.
        presence: Presence,
    },
    /// To the leader: a request vanished without the leader acting.
    JoinRequestGone {
        /// The party this concerns.
        party_id: PartyId,
        /// The party's sequence number after this change.
        seq: u64,
        /// Whose request vanished.
        presence: Presence,
        /// Why it vanished.
        reason: RequestGoneReason,
    },
    /// To a new leader: the waiting requests, oldest first.
    JoinRequestList {
        /// The party this concerns.
        party_id: PartyId,
        /// The party's sequence number after this change.
        seq: u64,
        /// The waiting requesters, oldest first (possibly none).
        requests: Vec<Presence>,
    },
    /// To a requester the leader accepted: it is seated.
    Accepted(PartySnapshot),
    /// To a requester: its request ended without a seat.
    JoinRejected {
        /// The party this concerns.
        party_id: PartyId,
        /// The party's sequence number after this change.
        seq: u64,
        /// Why the request ended.
        reason: RejectReason,
    },
    /// To a member the leader removed.
    Kicked {
        /// The party this concerns.
        party_id: PartyId,
        /// The party's sequence number after this change.
        seq: u64,
    },
    /// To every member: the leader closed the party; it is gone.
    Closed {
        /// The party this concerns.
        party_id: PartyId,
        /// The party's sequence number after this change.
        seq: u64,
    },
    /// To every member: the leader changed the settings.
    Updated {
        /// The party this concerns.
        party_id: PartyId,
        /// The party's sequence number after this change.
        seq: u64,
        /// Whether joins are now seated at once.
        open: bool,
        /// The size limit now, leader included.
        max_size: u16,
        /// The label now; empty means no label.
        label: String,
        /// Who may invite now.
        invite_policy: InvitePolicy,
        /// Who leads next now (version 3: a version 2 client is sent
        /// `Updated` without it).
        leader_policy: LeaderPolicy,
    },
    /// Reliable party data from another member.
    Data {
        /// The party this concerns.
        party_id: PartyId,
        /// The member who sent it.
        sender: Presence,
        /// The game's own op code (what the data means), as the sender gave it.
        op_code: i64,
        /// The payload.
        data: Bytes,
    },
    /// A datagram of this session's that the server did not forward, and why.
    DataRefused {
        /// The datagram's party; nil when the datagram did not parse.
        party_id: PartyId,
        /// The datagram's op code; 0 when the datagram did not parse.
        op_code: i64,
        /// Why it was refused (`NotMember`, `PartyNotFound`, `PayloadTooLarge`, ...).
        error: ErrorBody,
    },
    /// To the other members: a member lost its connection (its seat is held
    /// for the grace window) or came back.
    MemberConnection {
        /// The party this concerns.
        party_id: PartyId,
        /// The party's sequence number after this change.
        seq: u64,
        /// The member whose connection changed.
        presence: Presence,
        /// `true` when it is back, `false` when it was lost.
        connected: bool,
    },
    /// To followers: a session of a followed user came online (or stopped
    /// appearing offline).
    StatusOnline(UserStatus),
    /// To followers: a session of a followed user changed its status text.
    StatusChanged(UserStatus),
    /// To followers: a session of a followed user went offline (ended,
    /// or appears offline).
    StatusOffline {
        /// The session that went.
        presence: Presence,
    },
    /// To every online session of the invitee: an invite arrived (or was
    /// renewed).
    Invited(PartyInvite),
    /// To the invitee's sessions: the invite is gone.
    InviteGone {
        /// The party of the invite.
        party_id: PartyId,
        /// Why.
        reason: InviteGoneReason,
    },
    /// To the inviter: the invitee turned the invite down.
    InviteDeclined {
        /// The party of the invite.
        party_id: PartyId,
        /// The session that declined.
        presence: Presence,
    },
    /// To every member: the leader changed the party state. Carries the
    /// whole state.
    PartyStateChanged {
        /// The party this concerns.
        party_id: PartyId,
        /// The party's sequence number after this change.
        seq: u64,
        /// The state now.
        state: KeyValues,
    },
    /// To every member (the changer included): a member's attributes
    /// changed. Carries all of that member's attributes.
    MemberAttributesChanged {
        /// The party this concerns.
        party_id: PartyId,
        /// The party's sequence number after this change.
        seq: u64,
        /// Whose attributes.
        presence: Presence,
        /// That member's attributes now.
        attributes: KeyValues,
    },
    /// To every member: the join code changed (empty: removed).
    JoinCodeChanged {
        /// The party this concerns.
        party_id: PartyId,
        /// The party's sequence number after this change.
        seq: u64,
        /// The code now; empty when there is none.
        code: String,
    },
    /// To every member: the party was listed, relisted or unlisted.
    ListingChanged {
        /// The party this concerns.
        party_id: PartyId,
        /// The party's sequence number after this change.
        seq: u64,
        /// Whether it is listed now.
        listed: bool,
        /// Its properties now (empty when unlisted).
        properties: KeyValues,
    },
    /// To a banned member or requester: the ban, and its end.
    Banned {
        /// The party this concerns.
        party_id: PartyId,
        /// The party's sequence number after this change.
        seq: u64,
        /// When the ban ends (Unix ms, server clock); 0 for the party's life.
        until_ms: u64,
    },
    /// To every session in a ticket: it waits for a match.
    TicketStarted {
        /// The ticket.
        ticket_id: u64,
        /// Its party; `None` for a solo ticket.
        party_id: Option<PartyId>,
    },
    /// To every session in a ticket: it stopped without a match.
    TicketCancelled {
        /// The ticket.
        ticket_id: u64,
        /// Why.
        reason: TicketCancelReason,
    },
    /// To every session in every ticket of a match.
    Matched(MatchFound),
    /// To every member (version 3): the leader started a ready check.
    ReadyCheckStarted {
        /// The party this concerns.
        party_id: PartyId,
        /// The party's sequence number after this change.
        seq: u64,
        /// The check: whom it asks, and the leader counted ready.
        check: ReadyCheck,
    },
    /// To every member (version 3): an asked member answered, changed its
    /// answer, or left (then it counts as not ready).
    ReadyCheckAnswered {
        /// The party this concerns.
        party_id: PartyId,
        /// The party's sequence number after this change.
        seq: u64,
        /// The check.
        check_id: u64,
        /// Who answered.
        presence: Presence,
        /// Its answer now.
        ready: bool,
    },
    /// To every member (version 3): the ready check is over.
    ReadyCheckEnded {
        /// The party this concerns.
        party_id: PartyId,
        /// The party's sequence number after this change.
        seq: u64,
        /// The check.
        check_id: u64,
        /// Why it ended.
        outcome: ReadyCheckOutcome,
        /// Asked members that were ready at the end.
        ready: Vec<Presence>,
        /// Asked members that were not ready, or had left.
        not_ready: Vec<Presence>,
        /// Asked members that never answered.
        no_answer: Vec<Presence>,
    },
    /// To a session whose block list the game's server set (version 3):
    /// the list now, in ascending byte order.
    BlocksChanged {
        /// The blocked users.
        user_ids: Vec<String>,
    },
}

impl Event {
    /// The party this event concerns; `None` for presence events.
    pub fn party_id(&self) -> Option<PartyId> {
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
            | Event::MemberConnection { party_id, .. }
            | Event::InviteGone { party_id, .. }
            | Event::InviteDeclined { party_id, .. }
            | Event::PartyStateChanged { party_id, .. }
            | Event::MemberAttributesChanged { party_id, .. }
            | Event::JoinCodeChanged { party_id, .. }
            | Event::ListingChanged { party_id, .. }
            | Event::Banned { party_id, .. }
            | Event::ReadyCheckStarted { party_id, .. }
            | Event::ReadyCheckAnswered { party_id, .. }
            | Event::ReadyCheckEnded { party_id, .. } => Some(*party_id),
            Event::Invited(invite) => Some(invite.party_id),
            Event::Accepted(snapshot) => Some(snapshot.party_id),
            Event::StatusOnline(_)
            | Event::StatusChanged(_)
            | Event::StatusOffline { .. }
            | Event::TicketStarted { .. }
            | Event::TicketCancelled { .. }
            | Event::Matched(_)
            | Event::BlocksChanged { .. } => None,
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
            | Event::MemberConnection { seq, .. }
            | Event::PartyStateChanged { seq, .. }
            | Event::MemberAttributesChanged { seq, .. }
            | Event::JoinCodeChanged { seq, .. }
            | Event::ListingChanged { seq, .. }
            | Event::Banned { seq, .. }
            | Event::ReadyCheckStarted { seq, .. }
            | Event::ReadyCheckAnswered { seq, .. }
            | Event::ReadyCheckEnded { seq, .. } => Some(*seq),
            Event::Accepted(snapshot) => Some(snapshot.seq),
            Event::Data { .. }
            | Event::DataRefused { .. }
            | Event::StatusOnline(_)
            | Event::StatusChanged(_)
            | Event::StatusOffline { .. }
            | Event::Invited(_)
            | Event::InviteGone { .. }
            | Event::InviteDeclined { .. }
            | Event::TicketStarted { .. }
            | Event::TicketCancelled { .. }
            | Event::Matched(_)
            | Event::BlocksChanged { .. } => None,
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
        /// The `id` of the request this answers.
        id: u32,
        /// What the command returned, or why it was refused.
        result: Result<Reply, ErrorBody>,
    },
    /// `seq` counts the events of this session from 1, with no gaps.
    Event {
        /// The session event number (not the party's `seq`).
        seq: u64,
        /// What happened.
        event: Event,
    },
    /// A frame that could not be decoded, so no request id could be answered.
    FrameError(ErrorBody),
}
