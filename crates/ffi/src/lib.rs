//! partyline's C ABI: the way in for C, C#, C++ and every game engine.
//!
//! The shape, for a game loop:
//! - `pl_client_connect` returns a handle at once; the connection is made
//!   in the background and `PL_EVENT_CONNECTED` (or `PL_EVENT_DISCONNECTED`)
//!   follows.
//! - Every command returns a request id at once (negative: an error code);
//!   its answer arrives later as a `PL_EVENT_REPLY` with the same id, not
//!   ordered against events (those the command causes may come first).
//!   Commands made before the connection is up wait for it.
//! - `pl_client_poll_sized` (or `pl_client_poll`), once per frame, fills a
//!   caller-owned `PlEvent` with the next event. Strings and arrays it
//!   points to belong to the client (see the threading rule below).
//! - Key-value maps (party state, member attributes, listing properties)
//!   are `PlKeyValues`: `count` `PlKeyValue {key, value}` pairs at `items`,
//!   sorted by key; integer maps (a ticket's numbers) are `PlKeyNumbers`
//!   of `PlKeyNumber {key, value}` the same way. Lists (members, statuses,
//!   invites, bans, parties, matched players) are a pointer and a count. In an event both belong to the client, like its
//!   strings; as arguments they are the caller's, read only during the call.
//! - No callbacks: nothing calls into the game from another thread.
//! - No panic crosses the boundary: it becomes `PL_ERR_INTERNAL`.
//!
//! The ABI's rules (types, versions, threads, ownership, errors) head
//! `include/partyline.h`, which cbindgen generates from this file and
//! `cbindgen.toml`; `tests/header.rs` checks that the committed header is
//! current, appends the layout asserts, and that the threading rule reads
//! the same in the header, README.md and both wrappers.
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// Every pointer argument is checked for NULL and documented in the header;
// the functions are `unsafe extern "C"` in spirit, as every C ABI is.
#![allow(clippy::missing_safety_doc)]

mod event;
mod handle;

use handle::{ffi_guard, text, ClientHandle};
use partyline_client::protocol::Command;
use partyline_client::{InvitePolicy, LeaderPolicy};
use std::ffi::c_char;
use std::mem::size_of;
use std::ptr;

pub use event::{
    PlBan, PlEvent, PlInvite, PlKeyNumber, PlKeyNumbers, PlKeyRange, PlKeyValue, PlKeyValues,
    PlListedParty, PlMatchedPlayer, PlMember, PlMemberProperties, PlMute, PlTicketRequest,
    PlUserStatus,
};

/// Success.
pub const PL_OK: i32 = 0;
/// An argument is missing or malformed: a NULL pointer, text that is not
/// UTF-8, a party id that is not a UUID, a certificate that does not parse.
pub const PL_ERR_INVALID_ARGUMENT: i32 = -1;
/// The connection was lost and the client is reconnecting: try again after
/// `PL_EVENT_RESUMED` (or `PL_EVENT_SESSION_LOST`).
pub const PL_ERR_RECONNECTING: i32 = -2;
/// The session is over (closed, refused, or reconnecting gave up).
pub const PL_ERR_CLOSED: i32 = -3;
/// The server could not be reached or the TLS handshake failed.
pub const PL_ERR_CONNECT: i32 = -4;
/// The server said something this library does not understand.
pub const PL_ERR_PROTOCOL: i32 = -5;
/// A bug in this library (a caught panic); the message says where.
pub const PL_ERR_INTERNAL: i32 = -6;
/// Still connecting: no session yet (for calls that cannot wait).
pub const PL_ERR_NOT_CONNECTED: i32 = -7;
/// Too large for the protocol: a command, or the Hello `pl_client_connect`
/// would send (a token), passes `PL_MAX_FRAME_SIZE` bytes encoded. Refused
/// by the call itself before anything was sent; the session goes on.
/// `pl_last_error` says how large it was.
pub const PL_ERR_TOO_LARGE: i32 = -8;

/// The protocol's frame limit: the most bytes one command (all its text
/// and lists together) or the Hello may take, encoded. Above it:
/// `PL_ERR_TOO_LARGE`.
pub const PL_MAX_FRAME_SIZE: u32 = 262144;

// Positive codes are the server's refusals (PROTOCOL.md's error codes), in
// `error_code` of a failed reply; named here so C can act on them.
/// Refused: a field is out of range (size, label, text), or the promote
/// target is disconnected.
pub const PL_REFUSED_INVALID_ARGUMENT: i32 = 1;
/// Refused: no party with that id (never existed, closed, or emptied).
pub const PL_REFUSED_PARTY_NOT_FOUND: i32 = 2;
/// Refused: the party already has `max_size` members.
pub const PL_REFUSED_PARTY_FULL: i32 = 3;
/// Refused: a leader-only command from a member who does not lead.
pub const PL_REFUSED_NOT_LEADER: i32 = 4;
/// Refused: this session has no seat in the party.
pub const PL_REFUSED_NOT_MEMBER: i32 = 5;
/// Refused: the user named is not in the party.
pub const PL_REFUSED_MEMBER_NOT_FOUND: i32 = 6;
/// Refused: the user already has a seat in the party.
pub const PL_REFUSED_ALREADY_MEMBER: i32 = 7;
/// Refused: the user already has a join request waiting.
pub const PL_REFUSED_ALREADY_REQUESTED: i32 = 8;
/// Refused: the party already has `max_size` join requests waiting.
pub const PL_REFUSED_TOO_MANY_REQUESTS: i32 = 9;
/// Refused: the user named has no waiting join request.
pub const PL_REFUSED_REQUEST_NOT_FOUND: i32 = 10;
/// Refused: the leader may not kick itself (leave or promote instead).
pub const PL_REFUSED_CANNOT_REMOVE_SELF: i32 = 11;
/// Refused: party data above the server's payload limit.
pub const PL_REFUSED_PAYLOAD_TOO_LARGE: i32 = 12;
/// Refused: over the session's command or data rate (or invites, or
/// join-code attempts, a minute).
pub const PL_REFUSED_RATE_LIMITED: i32 = 13;
/// Refused: the identity (token or dev names) was not accepted.
pub const PL_REFUSED_UNAUTHENTICATED: i32 = 14;
/// Refused: the server speaks another protocol version.
pub const PL_REFUSED_VERSION_MISMATCH: i32 = 15;
/// Refused: a fault in the server, not the caller's doing.
pub const PL_REFUSED_INTERNAL: i32 = 16;
/// Refused: the server could not decode a frame or datagram.
pub const PL_REFUSED_MALFORMED_FRAME: i32 = 17;
/// Refused: a well-formed message at the wrong time.
pub const PL_REFUSED_PROTOCOL_VIOLATION: i32 = 18;
/// Refused: the resume token was unknown, used, expired or another user's.
pub const PL_REFUSED_RESUME_REFUSED: i32 = 19;
/// Refused: this session already has as many parties (seats and waiting
/// requests) as the server allows.
pub const PL_REFUSED_TOO_MANY_PARTIES: i32 = 20;
/// Refused: no such pending invite (never sent, used, declined, revoked
/// or expired).
pub const PL_REFUSED_INVITE_NOT_FOUND: i32 = 21;
/// Refused: the user is banned from the party (no seat, request, code
/// join or invite until the ban ends).
pub const PL_REFUSED_BANNED: i32 = 22;
/// Refused: no live party has that join code.
pub const PL_REFUSED_JOIN_CODE_NOT_FOUND: i32 = 23;
/// Refused: following these users would pass the server's follow limit.
pub const PL_REFUSED_TOO_MANY_FOLLOWS: i32 = 24;
/// Refused: party state, member attributes or listing properties would
/// pass their entry or byte limit.
pub const PL_REFUSED_KEY_VALUES_TOO_LARGE: i32 = 25;
/// Refused: the party already has as many pending invites as it allows.
pub const PL_REFUSED_TOO_MANY_INVITES: i32 = 26;
/// Refused: the party already has as many bans as the server keeps.
pub const PL_REFUSED_TOO_MANY_BANS: i32 = 27;
/// Refused: the user named is not banned from the party.
pub const PL_REFUSED_BAN_NOT_FOUND: i32 = 28;
/// Refused: this session (or a member of the party) is already in a
/// matchmaking ticket, or the party already has one.
pub const PL_REFUSED_ALREADY_MATCHMAKING: i32 = 29;
/// Refused: no waiting ticket with that id that this session may cancel
/// (never made, matched, cancelled, or another's).
pub const PL_REFUSED_TICKET_NOT_FOUND: i32 = 30;
/// Refused: a ticket's counts or query cannot work: `min_count` 0 or above
/// `max_count`, `count_multiple` 0, a range with `min` above `max`, or more
/// properties than the server allows.
pub const PL_REFUSED_INVALID_TICKET: i32 = 31;
/// Refused: the party has more members than the ticket's `max_count`.
pub const PL_REFUSED_PARTY_TOO_LARGE: i32 = 32;
/// Refused: the server's own rules (the game's hooks) said no; the message
/// is the game's, for the player.
pub const PL_REFUSED_DENIED: i32 = 33;
/// Refused: the server's own rules failed on this command; nothing changed,
/// and trying again later may work.
pub const PL_REFUSED_HOOK_FAILED: i32 = 34;
/// Refused: the party lives on a cluster node this node cannot reach now;
/// trying again later may work.
pub const PL_REFUSED_UNAVAILABLE: i32 = 35;
/// Refused: the party's ready check is already running (one at a time).
pub const PL_REFUSED_READY_CHECK_RUNNING: i32 = 36;
/// Refused: no ready check runs, or not the one the answer names.
pub const PL_REFUSED_NO_READY_CHECK: i32 = 37;
/// Refused: the running ready check did not ask this member (seated
/// after it began).
pub const PL_REFUSED_NOT_ASKED: i32 = 38;
/// Refused: this session already mutes the most members of the party
/// (64); unmute one first.
pub const PL_REFUSED_TOO_MANY_MUTES: i32 = 39;
/// Refused: the block list would pass its most users (512).
pub const PL_REFUSED_TOO_MANY_BLOCKS: i32 = 40;
/// Refused: this session blocked that user (an invite of them); unblock
/// them first. Never says that someone else blocked this session.
pub const PL_REFUSED_BLOCKED: i32 = 41;

// Reason codes: the `reason` of the event each names.
/// `PL_EVENT_MEMBER_LEFT`: the member left by itself.
pub const PL_LEAVE_LEFT: i32 = 0;
/// `PL_EVENT_MEMBER_LEFT`: the leader kicked the member.
pub const PL_LEAVE_KICKED: i32 = 1;
/// `PL_EVENT_MEMBER_LEFT`: the member's session ended: it quit (closed or
/// freed its client), or its grace window after a lost connection ran out.
pub const PL_LEAVE_SESSION_ENDED: i32 = 2;
/// `PL_EVENT_MEMBER_LEFT`: the leader banned the member.
pub const PL_LEAVE_BANNED: i32 = 3;
/// `PL_EVENT_JOIN_REQUEST_GONE`: the requester withdrew it.
pub const PL_REQUEST_GONE_CANCELLED: i32 = 0;
/// `PL_EVENT_JOIN_REQUEST_GONE`: it waited too long.
pub const PL_REQUEST_GONE_EXPIRED: i32 = 1;
/// `PL_EVENT_JOIN_REQUEST_GONE`: the requester's session ended.
pub const PL_REQUEST_GONE_SESSION_ENDED: i32 = 2;
/// `PL_EVENT_JOIN_REJECTED`: the leader turned it down.
pub const PL_REJECT_REJECTED: i32 = 0;
/// `PL_EVENT_JOIN_REJECTED`: the party closed.
pub const PL_REJECT_PARTY_CLOSED: i32 = 1;
/// `PL_EVENT_JOIN_REJECTED`: it waited too long.
pub const PL_REJECT_EXPIRED: i32 = 2;
/// `PL_EVENT_INVITE_GONE`: the inviter (or the leader) took it back.
pub const PL_INVITE_GONE_REVOKED: i32 = 0;
/// `PL_EVENT_INVITE_GONE`: the party closed.
pub const PL_INVITE_GONE_PARTY_CLOSED: i32 = 1;
/// `PL_EVENT_INVITE_GONE`: it ran out.
pub const PL_INVITE_GONE_EXPIRED: i32 = 2;
/// `PL_EVENT_INVITE_GONE`: this user was banned from the party.
pub const PL_INVITE_GONE_BANNED: i32 = 3;
/// `PL_EVENT_INVITE_GONE`: answered: used or declined, maybe by another
/// session of this user.
pub const PL_INVITE_GONE_ANSWERED: i32 = 4;
/// `PL_EVENT_TICKET_CANCELLED`: cancelled by its submitter or the party's
/// leader.
pub const PL_TICKET_CANCEL_CANCELLED: i32 = 0;
/// `PL_EVENT_TICKET_CANCELLED`: the party's members changed.
pub const PL_TICKET_CANCEL_MEMBERS_CHANGED: i32 = 1;
/// `PL_EVENT_TICKET_CANCELLED`: the party closed.
pub const PL_TICKET_CANCEL_PARTY_CLOSED: i32 = 2;
/// `PL_EVENT_TICKET_CANCELLED`: the submitter's session ended.
pub const PL_TICKET_CANCEL_SESSION_ENDED: i32 = 3;
/// `PL_EVENT_TICKET_CANCELLED`: a cluster node that held it was lost.
pub const PL_TICKET_CANCEL_NODE_LOST: i32 = 4;

/// `PL_EVENT_READY_CHECK_ENDED`: every member asked was ready.
pub const PL_READY_CHECK_ALL_READY: i32 = 0;
/// `PL_EVENT_READY_CHECK_ENDED`: its time ran out first.
pub const PL_READY_CHECK_TIMED_OUT: i32 = 1;
/// `PL_EVENT_READY_CHECK_ENDED`: the leader cancelled it.
pub const PL_READY_CHECK_CANCELLED: i32 = 2;

/// Leader policy: when the leader leaves or is lost, the longest-seated
/// connected member leads (the default).
pub const PL_LEADER_POLICY_TENURE: i32 = 0;
/// Leader policy: the connected member with the best connection as the
/// server measures it leads (tenure breaks ties).
pub const PL_LEADER_POLICY_CONNECTION_QUALITY: i32 = 1;

/// A member's connection quality (party fields' `member_quality`): not
/// measured yet, or disconnected.
pub const PL_QUALITY_UNKNOWN: i32 = 0;
/// A member's connection quality: low round-trip time and little loss.
pub const PL_QUALITY_GOOD: i32 = 1;
/// A member's connection quality: playable, noticeably slower or lossier.
pub const PL_QUALITY_FAIR: i32 = 2;
/// A member's connection quality: slow or lossy.
pub const PL_QUALITY_POOR: i32 = 3;

/// Invite policy: only the leader may invite (the default).
pub const PL_INVITE_POLICY_LEADER: i32 = 0;
/// Invite policy: any member may invite.
pub const PL_INVITE_POLICY_ANY_MEMBER: i32 = 1;

/// No event was waiting.
pub const PL_EVENT_NONE: i32 = 0;
/// The session is up: `session_id` and `member` (this session) are set.
pub const PL_EVENT_CONNECTED: i32 = 1;
/// The answer to a command: `request_id`, `error_code` (0: success) and
/// `error_message`; party replies fill the party fields, join replies set
/// `queued`, join-request lists fill `requests`. Each command's own doc
/// says what else its reply fills. A reply is not ordered against events:
/// those its command causes (say `PL_EVENT_TICKET_STARTED` after
/// `pl_submit_ticket`, or `PL_EVENT_TICKET_CANCELLED` after
/// `pl_cancel_ticket`) may come before it or after it.
pub const PL_EVENT_REPLY: i32 = 2;
/// The leader accepted this session into a closed party: party fields set.
pub const PL_EVENT_PARTY_JOINED: i32 = 3;
/// Someone took a seat: `party_id`, `member`.
pub const PL_EVENT_MEMBER_JOINED: i32 = 4;
/// Someone left: `party_id`, `member`, `reason` (a `PL_LEAVE_*`: left,
/// kicked, session ended, banned).
pub const PL_EVENT_MEMBER_LEFT: i32 = 5;
/// The leader changed: `party_id`, `member` is the new leader.
pub const PL_EVENT_LEADER_CHANGED: i32 = 6;
/// A member lost its connection or came back: `party_id`, `member` (with `connected`).
pub const PL_EVENT_MEMBER_CONNECTION: i32 = 7;
/// To the leader: someone asks to join: `party_id`, `member`.
pub const PL_EVENT_JOIN_REQUESTED: i32 = 8;
/// To the leader: a request vanished: `party_id`, `member`, `reason` (a
/// `PL_REQUEST_GONE_*`: cancelled, expired, session ended).
pub const PL_EVENT_JOIN_REQUEST_GONE: i32 = 9;
/// To a new leader: the waiting requests: `party_id`, `requests`.
pub const PL_EVENT_JOIN_REQUESTS: i32 = 10;
/// This session's join request ended without a seat: `party_id`, `reason`
/// (a `PL_REJECT_*`: rejected, party closed, expired).
pub const PL_EVENT_JOIN_REJECTED: i32 = 11;
/// The leader took this session's seat away: `party_id`.
pub const PL_EVENT_KICKED: i32 = 12;
/// The leader closed the party: `party_id`.
pub const PL_EVENT_PARTY_CLOSED: i32 = 13;
/// The leader changed the settings: party fields set.
pub const PL_EVENT_PARTY_UPDATED: i32 = 14;
/// Party data: `party_id`, `member` (the sender), `op_code`, `data`,
/// `data_len`, `reliable`.
pub const PL_EVENT_DATA: i32 = 15;
/// A datagram the server did not forward: `party_id`, `op_code`,
/// `error_code`, `error_message`.
pub const PL_EVENT_DATA_REFUSED: i32 = 16;
/// The connection was lost; reconnecting: `error_message` says why.
pub const PL_EVENT_RECONNECTING: i32 = 17;
/// Back with the same session and seats.
pub const PL_EVENT_RESUMED: i32 = 18;
/// After a resume, a party's state as the server has it: party fields set.
pub const PL_EVENT_PARTY_SYNCED: i32 = 19;
/// After a resume, a party this session is no longer in: `party_id`.
pub const PL_EVENT_PARTY_LOST: i32 = 20;
/// The old session expired; this is a new one: `session_id` is the new
/// session. A `PL_EVENT_PARTY_LOST` follows for each party it was in.
pub const PL_EVENT_SESSION_LOST: i32 = 21;
/// The session is over: `error_code` and `error_message` say why.
/// `error_code` is `PL_ERR_CLOSED` once a session ended (closed by this
/// client, by the server, or reconnecting gave up: the message says which),
/// or, when no session began, why not: `PL_ERR_CONNECT` (no answer, TLS),
/// `PL_ERR_CLOSED` (`pl_client_close` while connecting), `PL_ERR_PROTOCOL`,
/// or the server's refusal of the Hello, positive: `PL_REFUSED_UNAUTHENTICATED`,
/// `PL_REFUSED_VERSION_MISMATCH`, `PL_REFUSED_RESUME_REFUSED`... Only the
/// failed replies of commands already made may follow; every call after it
/// answers `PL_ERR_CLOSED`.
pub const PL_EVENT_DISCONNECTED: i32 = 22;
/// The server could not decode something this client sent: `error_message`.
pub const PL_EVENT_PROTOCOL_ERROR: i32 = 23;
/// A session of a followed user came online (or stopped appearing
/// offline): `member`, `status`.
pub const PL_EVENT_STATUS_ONLINE: i32 = 24;
/// A session of a followed user changed its status text: `member`, `status`.
pub const PL_EVENT_STATUS_CHANGED: i32 = 25;
/// A session of a followed user went offline, or appears offline: `member`.
pub const PL_EVENT_STATUS_OFFLINE: i32 = 26;
/// An invite arrived (or was renewed): `party_id`, `member` (the inviter),
/// and `invites` with the one invite. Join with `pl_join_party` (it seats
/// this user even in a closed party) or turn it down with
/// `pl_decline_invite`.
pub const PL_EVENT_INVITED: i32 = 27;
/// An invite to this user is gone: `party_id`, `reason` (a
/// `PL_INVITE_GONE_*`: revoked, party closed, expired, banned, answered).
pub const PL_EVENT_INVITE_GONE: i32 = 28;
/// To the inviter: the invitee turned the invite down: `party_id`,
/// `member` (the session that declined).
pub const PL_EVENT_INVITE_DECLINED: i32 = 29;
/// The leader changed the party state: `party_id`, `state` (all of it).
pub const PL_EVENT_PARTY_STATE_CHANGED: i32 = 30;
/// A member (maybe this session) changed its attributes: `party_id`,
/// `member`, `attributes` (all of that member's).
pub const PL_EVENT_MEMBER_ATTRIBUTES_CHANGED: i32 = 31;
/// The party's join code changed: `party_id`, `join_code` ("" when removed).
pub const PL_EVENT_JOIN_CODE_CHANGED: i32 = 32;
/// The party was listed, relisted or unlisted: `party_id`, `listed`,
/// `properties`.
pub const PL_EVENT_LISTING_CHANGED: i32 = 33;
/// The leader banned this session's user: its seat or join request in the
/// party is gone: `party_id`, `until_ms` (0: for the party's life).
pub const PL_EVENT_BANNED: i32 = 34;
/// A matchmaking ticket this session is in waits for a match (its own, or
/// its party's, to every member): `ticket_id`, `party_id` (NULL for a solo
/// ticket).
pub const PL_EVENT_TICKET_STARTED: i32 = 35;
/// A ticket this session was in stopped without a match: `ticket_id`,
/// `reason` (a `PL_TICKET_CANCEL_*`: cancelled, the party's members
/// changed, the party closed, the submitter's session ended, a cluster
/// node that held it was lost).
pub const PL_EVENT_TICKET_CANCELLED: i32 = 36;
/// A match, to every session of every ticket in it: `ticket_id` (this
/// session's ticket), `match_id`, `players`/`player_count`, `match_token`
/// (for the game server) and `token_expires_at`.
pub const PL_EVENT_MATCHED: i32 = 37;
/// The leader started a ready check, to every member: `member` (the
/// leader), `check_id`, `check_message`, `check_timeout_ms`,
/// `check_ends_at_ms` and the lists `check_ready` (the leader),
/// `check_not_ready` and `check_no_answer` (whom it asks). Answer with
/// `pl_answer_ready_check`.
pub const PL_EVENT_READY_CHECK_STARTED: i32 = 38;
/// A member answered the ready check `check_id`, changed its answer, or
/// left (then it counts as not ready): `member` and `ready`.
pub const PL_EVENT_READY_CHECK_ANSWERED: i32 = 39;
/// The ready check `check_id` ended: `reason` (a `PL_READY_CHECK_*`) and
/// the lists `check_ready`, `check_not_ready` (or left) and
/// `check_no_answer`.
pub const PL_EVENT_READY_CHECK_ENDED: i32 = 40;
/// The game's server set this session's block list: `blocked` and
/// `blocked_count` (the list now).
pub const PL_EVENT_BLOCKS_CHANGED: i32 = 41;

/// An opaque client: one session with a partyline server.
pub struct PlClient {
    handle: ClientHandle,
}

/// Starts connecting and returns the client at once (NULL on a bad
/// argument: `pl_last_error_code` and `pl_last_error` say why). The
/// outcome arrives as `PL_EVENT_CONNECTED` or `PL_EVENT_DISCONNECTED`.
///
/// - `server`: "host:port", e.g. "127.0.0.1:7350".
/// - `server_name`: the name the certificate carries; NULL for "localhost".
/// - The certificate to trust: `cert_pem_path` (a PEM file), or
///   `cert_pem`/`cert_pem_len` (PEM text in memory): exactly one of the
///   two, the other NULL (both: `PL_ERR_INVALID_ARGUMENT`).
/// - Who to be: `token` (a signed token from the game's backend), or, when
///   `token` is NULL, the dev identity `user_id` and `username` (the
///   server refuses names over 128 bytes). A token or name too large for
///   the Hello to carry: `PL_ERR_TOO_LARGE`.
///
/// Borrows its arguments only for the call (they stay the caller's; the
/// PEM file is read before it returns). The returned client is the
/// caller's, to free with `pl_client_free` exactly once.
#[no_mangle]
pub unsafe extern "C" fn pl_client_connect(
    server: *const c_char,
    server_name: *const c_char,
    cert_pem_path: *const c_char,
    cert_pem: *const u8,
    cert_pem_len: usize,
    user_id: *const c_char,
    username: *const c_char,
    token: *const c_char,
) -> *mut PlClient {
    let connected = ffi_guard(|| {
        let options = handle::ConnectOptions {
            server: text(server, "server")?.ok_or_else(|| missing("server"))?,
            server_name: text(server_name, "server_name")?,
            cert_pem_path: text(cert_pem_path, "cert_pem_path")?,
            cert_pem: bytes_arg(cert_pem, cert_pem_len),
            user_id: text(user_id, "user_id")?,
            username: text(username, "username")?,
            token: text(token, "token")?,
        };
        ClientHandle::connect(options).map(|handle| Box::into_raw(Box::new(PlClient { handle })))
    });
    connected.unwrap_or(ptr::null_mut())
}

/// `pl_client_poll_sized` for a caller whose `PlEvent` is this header's:
/// fills `*event` (`sizeof(PlEvent)` of this header) with the next event
/// and returns 1, or returns 0 when none waits (negative: an error). A
/// binary built against another version of this header must use
/// `pl_client_poll_sized`. Borrows `event` for the call; what the event
/// points to is the client's (see the threading rule at the top).
#[no_mangle]
pub unsafe extern "C" fn pl_client_poll(client: *mut PlClient, event: *mut PlEvent) -> i32 {
    pl_client_poll_sized(client, event, size_of::<PlEvent>())
}

/// Fills `event` with the next event and returns 1, or returns 0 when none
/// waits (negative: an error). Call it in a loop once per frame.
/// `event_size` is `sizeof(PlEvent)` as the caller's header declares it:
/// the library writes exactly `event_size` bytes at `event`, the fields it
/// knows that fit and zero for any it does not (a newer header's), and
/// never past `event_size`. Below `offsetof(PlEvent, error_message)`
/// (`kind`, `request_id` and `error_code`): `PL_ERR_INVALID_ARGUMENT`, and
/// no event is taken. Borrows `event` for the call; what the event points
/// to is the client's, valid until this thread polls this client again or
/// frees it.
#[no_mangle]
pub unsafe extern "C" fn pl_client_poll_sized(
    client: *mut PlClient,
    event: *mut PlEvent,
    event_size: usize,
) -> i32 {
    let Some(client) = client.as_ref() else {
        return null_argument("client");
    };
    if event.is_null() {
        return null_argument("event");
    }
    let least = std::mem::offset_of!(PlEvent, error_message);
    if event_size < least {
        return handle::fail(handle::invalid(format!(
            "event_size {event_size} is below the least PlEvent ({least} bytes: kind, request_id, error_code)"
        )));
    }
    match ffi_guard(|| Ok(client.handle.poll())) {
        Ok(Some(next)) => {
            write_event(&next, event.cast::<u8>(), event_size);
            1
        }
        Ok(None) => {
            write_event(&PlEvent::none(), event.cast::<u8>(), event_size);
            0
        }
        Err(code) => code,
    }
}

/// `sizeof(PlEvent)` in this library, for a binding to compare with its
/// own (its `PlEvent` may be smaller when older, never larger). Takes and
/// returns no pointer: nothing to own.
#[no_mangle]
pub extern "C" fn pl_event_size() -> usize {
    size_of::<PlEvent>()
}

/// Writes `event` into the caller's `size` bytes at `out`: as much of it
/// as fits, zeros after it.
unsafe fn write_event(event: &PlEvent, out: *mut u8, size: usize) {
    let known = size.min(size_of::<PlEvent>());
    ptr::copy_nonoverlapping((event as *const PlEvent).cast::<u8>(), out, known);
    ptr::write_bytes(out.add(known), 0, size - known);
}

/// Creates a party led by this session. Returns a request id (> 0) or a
/// negative error; the reply carries the party.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_create_party(
    client: *mut PlClient,
    open: bool,
    max_size: u16,
    label: *const c_char,
) -> i64 {
    command(client, || {
        Ok(Command::CreateParty {
            open,
            max_size,
            label: text(label, "label")?.unwrap_or_default(),
            invite_policy: InvitePolicy::Leader,
            state: Default::default(),
            leader_policy: LeaderPolicy::Tenure,
        })
    })
}

/// Joins an open party, or asks a closed party's leader (the reply then
/// has `queued` set, and `PL_EVENT_PARTY_JOINED` or
/// `PL_EVENT_JOIN_REJECTED` follows).
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_join_party(client: *mut PlClient, party_id: *const c_char) -> i64 {
    command(client, || {
        Ok(Command::JoinParty {
            party_id: handle::party_arg(party_id)?,
        })
    })
}

/// Leaves a party, or withdraws this session's join request.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_leave_party(client: *mut PlClient, party_id: *const c_char) -> i64 {
    command(client, || {
        Ok(Command::Leave {
            party_id: handle::party_arg(party_id)?,
        })
    })
}

/// Leader only: seats a user whose join request waits.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_accept(
    client: *mut PlClient,
    party_id: *const c_char,
    user_id: *const c_char,
) -> i64 {
    command(client, || {
        Ok(Command::AcceptJoinRequest {
            party_id: handle::party_arg(party_id)?,
            user_id: user_arg(user_id)?,
        })
    })
}

/// Leader only: turns a waiting join request down.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_reject(
    client: *mut PlClient,
    party_id: *const c_char,
    user_id: *const c_char,
) -> i64 {
    command(client, || {
        Ok(Command::Reject {
            party_id: handle::party_arg(party_id)?,
            user_id: user_arg(user_id)?,
        })
    })
}

/// Leader only: takes a member's seat away.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_kick(
    client: *mut PlClient,
    party_id: *const c_char,
    user_id: *const c_char,
) -> i64 {
    command(client, || {
        Ok(Command::Kick {
            party_id: handle::party_arg(party_id)?,
            user_id: user_arg(user_id)?,
        })
    })
}

/// Leader only: hands leadership to another member.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_promote(
    client: *mut PlClient,
    party_id: *const c_char,
    user_id: *const c_char,
) -> i64 {
    command(client, || {
        Ok(Command::Promote {
            party_id: handle::party_arg(party_id)?,
            user_id: user_arg(user_id)?,
        })
    })
}

/// Leader only: ends the party for everyone.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_close_party(client: *mut PlClient, party_id: *const c_char) -> i64 {
    command(client, || {
        Ok(Command::Close {
            party_id: handle::party_arg(party_id)?,
        })
    })
}

/// Leader only: changes settings. `open`: -1 keeps it, 0 closes, 1 opens;
/// `max_size`: -1 keeps it; `label`: NULL keeps it. The reply carries the party.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_update_party(
    client: *mut PlClient,
    party_id: *const c_char,
    open: i32,
    max_size: i32,
    label: *const c_char,
) -> i64 {
    command(client, || update_arg(party_id, open, max_size, label, None))
}

/// `pl_update_party`'s arguments (and `_ex`'s policy) as a command.
unsafe fn update_arg(
    party_id: *const c_char,
    open: i32,
    max_size: i32,
    label: *const c_char,
    invite_policy: Option<InvitePolicy>,
) -> Result<Command, handle::Failure> {
    let open = match open {
        -1 => None,
        0 => Some(false),
        1 => Some(true),
        other => {
            return Err(handle::invalid(format!(
                "open must be -1, 0 or 1, not {other}"
            )))
        }
    };
    let max_size = match max_size {
        -1 => None,
        n => Some(
            u16::try_from(n)
                .map_err(|_| handle::invalid(format!("max_size must be -1 or 1..=256, not {n}")))?,
        ),
    };
    Ok(Command::Update {
        party_id: handle::party_arg(party_id)?,
        open,
        label: text(label, "label")?,
        max_size,
        invite_policy,
        leader_policy: None,
    })
}

/// The party as the server has it now (members only). The reply carries it.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_get_party(client: *mut PlClient, party_id: *const c_char) -> i64 {
    command(client, || {
        Ok(Command::GetParty {
            party_id: handle::party_arg(party_id)?,
        })
    })
}

/// Leader only: the waiting join requests; the reply fills `requests`.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_list_join_requests(
    client: *mut PlClient,
    party_id: *const c_char,
) -> i64 {
    command(client, || {
        Ok(Command::ListJoinRequests {
            party_id: handle::party_arg(party_id)?,
        })
    })
}

/// Creates a party led by this session, with the settings protocol 2
/// added: `invite_policy` (a `PL_INVITE_POLICY_*`) and the party `state`
/// to start with (`state_count` entries at `state`; NULL and 0 for none).
/// The caller keeps ownership of `label` and `state`: they are copied
/// before this returns. The reply carries the party.
#[no_mangle]
pub unsafe extern "C" fn pl_create_party_ex(
    client: *mut PlClient,
    open: bool,
    max_size: u16,
    label: *const c_char,
    invite_policy: i32,
    state: *const PlKeyValue,
    state_count: usize,
) -> i64 {
    command(client, || {
        Ok(Command::CreateParty {
            open,
            max_size,
            label: text(label, "label")?.unwrap_or_default(),
            invite_policy: handle::invite_policy_arg(invite_policy)?,
            state: handle::key_values_arg(state, state_count, "state")?,
            leader_policy: LeaderPolicy::Tenure,
        })
    })
}

/// `pl_create_party_ex` with the leader policy protocol 3 added:
/// `leader_policy` is a `PL_LEADER_POLICY_*` (who leads when the leader
/// leaves or is lost). The caller keeps ownership of `label` and `state`:
/// they are copied before this returns. The reply carries the party.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn pl_create_party_ex2(
    client: *mut PlClient,
    open: bool,
    max_size: u16,
    label: *const c_char,
    invite_policy: i32,
    state: *const PlKeyValue,
    state_count: usize,
    leader_policy: i32,
) -> i64 {
    command(client, || {
        Ok(Command::CreateParty {
            open,
            max_size,
            label: text(label, "label")?.unwrap_or_default(),
            invite_policy: handle::invite_policy_arg(invite_policy)?,
            state: handle::key_values_arg(state, state_count, "state")?,
            leader_policy: handle::leader_policy_arg(leader_policy)?,
        })
    })
}

/// Leader only: changes who leads when the leader leaves or is lost
/// (`leader_policy`, a `PL_LEADER_POLICY_*`), nothing else. Every member
/// gets `PL_EVENT_PARTY_UPDATED`; the reply carries the party.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_set_leader_policy(
    client: *mut PlClient,
    party_id: *const c_char,
    leader_policy: i32,
) -> i64 {
    command(client, || {
        Ok(Command::Update {
            party_id: handle::party_arg(party_id)?,
            open: None,
            label: None,
            max_size: None,
            invite_policy: None,
            leader_policy: Some(handle::leader_policy_arg(leader_policy)?),
        })
    })
}

/// Leader only: `pl_update_party` that can also change who may invite:
/// `invite_policy` is a `PL_INVITE_POLICY_*`, or -1 to keep it. The reply
/// carries the party.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_update_party_ex(
    client: *mut PlClient,
    party_id: *const c_char,
    open: i32,
    max_size: i32,
    label: *const c_char,
    invite_policy: i32,
) -> i64 {
    command(client, || {
        let invite_policy = match invite_policy {
            -1 => None,
            n => Some(handle::invite_policy_arg(n)?),
        };
        update_arg(party_id, open, max_size, label, invite_policy)
    })
}

/// Sets the status text this session's followers see ("" or NULL: none)
/// and whether it shows as online at all (`visible` false appears
/// offline to them).
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_set_status(
    client: *mut PlClient,
    status: *const c_char,
    visible: bool,
) -> i64 {
    command(client, || {
        Ok(Command::SetStatus {
            status: text(status, "status")?.unwrap_or_default(),
            visible,
        })
    })
}

/// Follows users (`user_id_count` ids at `user_ids`): for each session of
/// theirs, `PL_EVENT_STATUS_ONLINE`, `_CHANGED` and `_OFFLINE` follow. The
/// reply fills `statuses` with their sessions online now. The caller keeps
/// ownership of the ids (copied before this returns).
#[no_mangle]
pub unsafe extern "C" fn pl_follow(
    client: *mut PlClient,
    user_ids: *const *const c_char,
    user_id_count: usize,
) -> i64 {
    command(client, || {
        Ok(Command::Follow {
            user_ids: handle::text_list_arg(user_ids, user_id_count, "user_ids")?,
        })
    })
}

/// Stops following users (ids not followed are ignored). The caller keeps
/// ownership of the ids.
#[no_mangle]
pub unsafe extern "C" fn pl_unfollow(
    client: *mut PlClient,
    user_ids: *const *const c_char,
    user_id_count: usize,
) -> i64 {
    command(client, || {
        Ok(Command::Unfollow {
            user_ids: handle::text_list_arg(user_ids, user_id_count, "user_ids")?,
        })
    })
}

/// Invites a user: each of their sessions gets `PL_EVENT_INVITED`, and the
/// invite seats them once (even in a closed party) until it expires. The
/// leader may invite; any member too under `PL_INVITE_POLICY_ANY_MEMBER`.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_invite(
    client: *mut PlClient,
    party_id: *const c_char,
    user_id: *const c_char,
) -> i64 {
    command(client, || {
        Ok(Command::Invite {
            party_id: handle::party_arg(party_id)?,
            user_id: user_arg(user_id)?,
        })
    })
}

/// Turns down an invite to this session's user; the inviter gets
/// `PL_EVENT_INVITE_DECLINED`.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_decline_invite(client: *mut PlClient, party_id: *const c_char) -> i64 {
    command(client, || {
        Ok(Command::DeclineInvite {
            party_id: handle::party_arg(party_id)?,
        })
    })
}

/// Leader only: takes back a pending invite.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_revoke_invite(
    client: *mut PlClient,
    party_id: *const c_char,
    user_id: *const c_char,
) -> i64 {
    command(client, || {
        Ok(Command::RevokeInvite {
            party_id: handle::party_arg(party_id)?,
            user_id: user_arg(user_id)?,
        })
    })
}

/// This user's pending invites, oldest first: the reply fills `invites`.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_list_invites(client: *mut PlClient) -> i64 {
    command(client, || Ok(Command::ListInvites))
}

/// Leader only: a new join code for the party (the old one stops
/// working). The reply sets `party_id` and `join_code`; members get
/// `PL_EVENT_JOIN_CODE_CHANGED`.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_create_join_code(
    client: *mut PlClient,
    party_id: *const c_char,
) -> i64 {
    command(client, || {
        Ok(Command::CreateJoinCode {
            party_id: handle::party_arg(party_id)?,
        })
    })
}

/// Leader only: removes the party's join code.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_clear_join_code(client: *mut PlClient, party_id: *const c_char) -> i64 {
    command(client, || {
        Ok(Command::ClearJoinCode {
            party_id: handle::party_arg(party_id)?,
        })
    })
}

/// Joins (or asks to join) the party with this join code, exactly as
/// `pl_join_party` would, and answers the same way. Case, spaces and
/// dashes do not matter.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_join_by_code(client: *mut PlClient, code: *const c_char) -> i64 {
    command(client, || {
        Ok(Command::JoinByCode {
            code: text(code, "code")?.ok_or_else(|| missing("code"))?,
        })
    })
}

/// Leader only: lists the party for search with these properties
/// (`property_count` entries at `properties`), or changes them. Members
/// get `PL_EVENT_LISTING_CHANGED`. The caller keeps ownership of
/// `properties` (copied before this returns); a key given twice keeps its
/// last value.
#[no_mangle]
pub unsafe extern "C" fn pl_list_party(
    client: *mut PlClient,
    party_id: *const c_char,
    properties: *const PlKeyValue,
    property_count: usize,
) -> i64 {
    command(client, || {
        Ok(Command::ListParty {
            party_id: handle::party_arg(party_id)?,
            properties: handle::key_values_arg(properties, property_count, "properties")?,
        })
    })
}

/// Leader only: takes the party out of search.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_unlist_party(client: *mut PlClient, party_id: *const c_char) -> i64 {
    command(client, || {
        Ok(Command::UnlistParty {
            party_id: handle::party_arg(party_id)?,
        })
    })
}

/// Searches listed parties, one page. Every filter must hold: `open_only`
/// (only open parties), `min_free_seats`, and each of the `property_count`
/// pairs at `properties` (NULL and 0: any). `limit` is 1 to the server's
/// most (100 by default); `cursor` is 0 for the first page, else the last
/// reply's `next_cursor`. The reply fills `parties` and `next_cursor`.
/// The caller keeps ownership of `properties`.
#[no_mangle]
pub unsafe extern "C" fn pl_search_parties(
    client: *mut PlClient,
    open_only: bool,
    min_free_seats: u16,
    properties: *const PlKeyValue,
    property_count: usize,
    limit: u16,
    cursor: u64,
) -> i64 {
    command(client, || {
        Ok(Command::SearchParties(partyline_client::PartySearch {
            open_only,
            min_free_seats,
            properties: handle::key_values_arg(properties, property_count, "properties")?,
            limit,
            cursor,
        }))
    })
}

/// Leader only: removes the `remove_count` keys at `remove`, then sets the
/// `set_count` pairs at `set`, in the party state. Members get
/// `PL_EVENT_PARTY_STATE_CHANGED`. The caller keeps ownership of both
/// arrays (copied before this returns).
#[no_mangle]
pub unsafe extern "C" fn pl_set_party_state(
    client: *mut PlClient,
    party_id: *const c_char,
    set: *const PlKeyValue,
    set_count: usize,
    remove: *const *const c_char,
    remove_count: usize,
) -> i64 {
    command(client, || {
        Ok(Command::SetPartyState {
            party_id: handle::party_arg(party_id)?,
            set: handle::key_values_arg(set, set_count, "set")?,
            remove: handle::text_list_arg(remove, remove_count, "remove")?,
        })
    })
}

/// Removes the `remove_count` keys at `remove`, then sets the `set_count`
/// pairs at `set`, in this session's own attributes in the party. Every
/// member (this one too) gets `PL_EVENT_MEMBER_ATTRIBUTES_CHANGED`. The
/// caller keeps ownership of both arrays.
#[no_mangle]
pub unsafe extern "C" fn pl_set_member_attributes(
    client: *mut PlClient,
    party_id: *const c_char,
    set: *const PlKeyValue,
    set_count: usize,
    remove: *const *const c_char,
    remove_count: usize,
) -> i64 {
    command(client, || {
        Ok(Command::SetMemberAttributes {
            party_id: handle::party_arg(party_id)?,
            set: handle::key_values_arg(set, set_count, "set")?,
            remove: handle::text_list_arg(remove, remove_count, "remove")?,
        })
    })
}

/// Leader only: bans a user for `duration_ms` milliseconds (0: for as
/// long as the party lives), taking away their seat, join request and
/// invite. They get `PL_EVENT_BANNED`; members see `PL_EVENT_MEMBER_LEFT`
/// with reason 3. Until it ends, their joins are refused with
/// `PL_REFUSED_BANNED`.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_ban(
    client: *mut PlClient,
    party_id: *const c_char,
    user_id: *const c_char,
    duration_ms: u64,
) -> i64 {
    command(client, || {
        Ok(Command::Ban {
            party_id: handle::party_arg(party_id)?,
            user_id: user_arg(user_id)?,
            duration_ms,
        })
    })
}

/// Leader only: lifts a ban.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_unban(
    client: *mut PlClient,
    party_id: *const c_char,
    user_id: *const c_char,
) -> i64 {
    command(client, || {
        Ok(Command::Unban {
            party_id: handle::party_arg(party_id)?,
            user_id: user_arg(user_id)?,
        })
    })
}

/// Leader only: the party's bans, oldest first: the reply sets `party_id`
/// and fills `bans`.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_list_bans(client: *mut PlClient, party_id: *const c_char) -> i64 {
    command(client, || {
        Ok(Command::ListBans {
            party_id: handle::party_arg(party_id)?,
        })
    })
}

/// Starts matchmaking: a solo ticket, or with `request->party_id` set
/// (leader only) a ticket for the whole party, every member in it. The
/// reply sets `ticket_id`; then every session in the ticket gets
/// `PL_EVENT_TICKET_STARTED`, and later `PL_EVENT_MATCHED` or
/// `PL_EVENT_TICKET_CANCELLED`. Refusals: `PL_REFUSED_ALREADY_MATCHMAKING`,
/// `PL_REFUSED_INVALID_TICKET`, `PL_REFUSED_PARTY_TOO_LARGE`,
/// `PL_REFUSED_NOT_LEADER`. The caller keeps ownership of `request` and
/// everything it points to (copied before this returns); a key given twice
/// in one map keeps its last value.
#[no_mangle]
pub unsafe extern "C" fn pl_submit_ticket(
    client: *mut PlClient,
    request: *const PlTicketRequest,
) -> i64 {
    command(client, || {
        let request = request
            .as_ref()
            .ok_or_else(|| handle::invalid("request is NULL"))?;
        Ok(Command::SubmitTicket(handle::ticket_arg(request)?))
    })
}

/// Stops a waiting ticket: this session's own, or (leader only) its
/// party's. Every session in it gets `PL_EVENT_TICKET_CANCELLED` with
/// reason 0. `PL_REFUSED_TICKET_NOT_FOUND` when it is not waiting (say,
/// matched meanwhile).
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_cancel_ticket(client: *mut PlClient, ticket_id: u64) -> i64 {
    command(client, || Ok(Command::CancelTicket { ticket_id }))
}

/// Leader only: asks every member whether it is ready, for `timeout_ms`
/// (5000 to 120000); `message` (NULL or "" for none, at most 256 bytes) is
/// shown to them. The leader counts as ready. Every member gets
/// `PL_EVENT_READY_CHECK_STARTED`, then `PL_EVENT_READY_CHECK_ANSWERED` per
/// answer and `PL_EVENT_READY_CHECK_ENDED`; the party fields show it while
/// it runs (`has_ready_check`). `PL_REFUSED_READY_CHECK_RUNNING` while one
/// runs.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_start_ready_check(
    client: *mut PlClient,
    party_id: *const c_char,
    message: *const c_char,
    timeout_ms: u64,
) -> i64 {
    command(client, || {
        Ok(Command::StartReadyCheck {
            party_id: handle::party_arg(party_id)?,
            message: text(message, "message")?.unwrap_or_default(),
            timeout_ms,
        })
    })
}

/// Answers the party's ready check `check_id` (ready or not), or changes
/// the answer, until it ends.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_answer_ready_check(
    client: *mut PlClient,
    party_id: *const c_char,
    check_id: u64,
    ready: bool,
) -> i64 {
    command(client, || {
        Ok(Command::AnswerReadyCheck {
            party_id: handle::party_arg(party_id)?,
            check_id,
            ready,
        })
    })
}

/// Leader only: ends the running ready check now; every member gets
/// `PL_EVENT_READY_CHECK_ENDED` with `PL_READY_CHECK_CANCELLED`.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_cancel_ready_check(
    client: *mut PlClient,
    party_id: *const c_char,
) -> i64 {
    command(client, || {
        Ok(Command::CancelReadyCheck {
            party_id: handle::party_arg(party_id)?,
        })
    })
}

/// Stops `user_id`'s party data (datagrams and reliable data) reaching
/// this session: all of it when `has_op_codes` is false, else only op
/// codes `op_code_min` to `op_code_max` (inclusive; e.g. a voice range,
/// keeping game data). Muting the same member again replaces the range.
/// The muted member is not told; the party fields' `muted` show it while
/// this session is seated. `PL_REFUSED_TOO_MANY_MUTES` past 64 members.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_mute(
    client: *mut PlClient,
    party_id: *const c_char,
    user_id: *const c_char,
    has_op_codes: bool,
    op_code_min: i64,
    op_code_max: i64,
) -> i64 {
    command(client, || {
        Ok(Command::Mute {
            party_id: handle::party_arg(party_id)?,
            user_id: user_arg(user_id)?,
            op_codes: has_op_codes.then_some(partyline_client::NumberRange {
                min: op_code_min,
                max: op_code_max,
            }),
        })
    })
}

/// Lets a muted member's party data reach this session again.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_unmute(
    client: *mut PlClient,
    party_id: *const c_char,
    user_id: *const c_char,
) -> i64 {
    command(client, || {
        Ok(Command::Unmute {
            party_id: handle::party_arg(party_id)?,
            user_id: user_arg(user_id)?,
        })
    })
}

/// Blocks users (`user_id_count` ids at `user_ids`) for this session: no
/// party data passes between it and them, neither sees the other's
/// status, a party this session leads is closed to them, their invites do
/// not reach it; they are not told. The reply fills `blocked` with the
/// list now (`PL_REFUSED_TOO_MANY_BLOCKS` past 512). The caller keeps
/// ownership of the ids (copied before this returns).
#[no_mangle]
pub unsafe extern "C" fn pl_block(
    client: *mut PlClient,
    user_ids: *const *const c_char,
    user_id_count: usize,
) -> i64 {
    command(client, || {
        Ok(Command::Block {
            user_ids: handle::text_list_arg(user_ids, user_id_count, "user_ids")?,
        })
    })
}

/// Takes users off this session's block list (ids not on it are
/// ignored); the reply fills `blocked` with the list now. The caller keeps
/// ownership of the ids.
#[no_mangle]
pub unsafe extern "C" fn pl_unblock(
    client: *mut PlClient,
    user_ids: *const *const c_char,
    user_id_count: usize,
) -> i64 {
    command(client, || {
        Ok(Command::Unblock {
            user_ids: handle::text_list_arg(user_ids, user_id_count, "user_ids")?,
        })
    })
}

/// This session's block list, however it was set (the game's server may
/// have set it: `PL_EVENT_BLOCKS_CHANGED`); the reply fills `blocked`.
#[no_mangle]
pub unsafe extern "C" fn pl_list_blocks(client: *mut PlClient) -> i64 {
    command(client, || Ok(Command::ListBlocks))
}

/// Party data on the reliable control stream. Returns a request id; the
/// reply says the server took it.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_send_data_reliable(
    client: *mut PlClient,
    party_id: *const c_char,
    op_code: i64,
    data: *const u8,
    data_len: usize,
) -> i64 {
    command(client, || {
        if data.is_null() && data_len > 0 {
            return Err(handle::invalid("data is NULL but data_len is not 0"));
        }
        Ok(Command::SendData {
            party_id: handle::party_arg(party_id)?,
            op_code,
            data: bytes_arg(data, data_len).unwrap_or_default().into(),
        })
    })
}

/// Party data as one unreliable datagram, sent at once: returns `PL_OK`,
/// a negative error, or 12 (PayloadTooLarge) above the server's limit.
/// Borrows its arguments only for the call (they stay the caller's).
#[no_mangle]
pub unsafe extern "C" fn pl_send_data(
    client: *mut PlClient,
    party_id: *const c_char,
    op_code: i64,
    data: *const u8,
    data_len: usize,
) -> i32 {
    let Some(client) = client.as_ref() else {
        return null_argument("client");
    };
    if data.is_null() && data_len > 0 {
        return handle::fail(handle::invalid("data is NULL but data_len is not 0"));
    }
    let sent = ffi_guard(|| {
        let party_id = handle::party_arg(party_id)?;
        let payload: &[u8] = if data_len == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(data, data_len)
        };
        client.handle.send_datagram(party_id, op_code, payload)
    });
    match sent {
        Ok(()) => PL_OK,
        Err(code) => code,
    }
}

/// Ends the session: the server removes it from its parties at once (the
/// others see `PL_EVENT_MEMBER_LEFT`, a lead passes on), and returns
/// without waiting; `PL_EVENT_DISCONNECTED` follows. While connecting, it
/// cancels the connection: `PL_EVENT_DISCONNECTED` (`PL_ERR_CLOSED`) and no
/// `PL_EVENT_CONNECTED`. Every call after it answers `PL_ERR_CLOSED`. The
/// client stays the caller's: free it with `pl_client_free`, which waits
/// for the goodbye to leave.
#[no_mangle]
pub unsafe extern "C" fn pl_client_close(client: *mut PlClient) -> i32 {
    let Some(client) = client.as_ref() else {
        return null_argument("client");
    };
    match ffi_guard(|| {
        client.handle.close();
        Ok(())
    }) {
        Ok(()) => PL_OK,
        Err(code) => code,
    }
}

/// Ends the session as `pl_client_close` does if it is open, waits until
/// the goodbye has left (at most 250 ms; about 0.1 s on a LAN), and frees
/// the client. NULL is ignored. Takes the client back: it must be its last
/// call (none under way on another thread), and neither the client nor
/// anything a poll returned may be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn pl_client_free(client: *mut PlClient) {
    if client.is_null() {
        return;
    }
    let client = Box::from_raw(client);
    let _ = ffi_guard(move || {
        client.handle.shutdown();
        Ok(())
    });
}

/// Copies the message of the most recent failed call on this thread into
/// `buffer` (NUL-terminated, cut to fit) and returns its full length in
/// bytes (without the NUL): call with a NULL buffer to learn the size.
/// Borrows `buffer` (`capacity` bytes, the caller's) for the call.
#[no_mangle]
pub unsafe extern "C" fn pl_last_error(buffer: *mut c_char, capacity: usize) -> usize {
    handle::last_error(|message| {
        let bytes = message.as_bytes();
        if !buffer.is_null() && capacity > 0 {
            let n = bytes.len().min(capacity - 1);
            ptr::copy_nonoverlapping(bytes.as_ptr(), buffer.cast::<u8>(), n);
            buffer.add(n).write(0);
        }
        bytes.len()
    })
}

/// The code of the most recent failed call on this thread (a negative
/// `PL_ERR_*`, or `PL_REFUSED_PAYLOAD_TOO_LARGE` from `pl_send_data`), 0
/// if no call on this thread has failed yet. Like `errno`,
/// a successful call does not reset it: read it right after the call that
/// failed (a NULL from `pl_client_connect`, a negative return). Takes and
/// returns no pointer: nothing to own.
#[no_mangle]
pub extern "C" fn pl_last_error_code() -> i32 {
    handle::last_error_code()
}

/// The library's version, e.g. "0.1.0": static text, the library's, never
/// freed.
#[no_mangle]
pub extern "C" fn pl_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

fn missing(what: &str) -> handle::Failure {
    handle::invalid(format!("{what} is required"))
}

fn null_argument(what: &str) -> i32 {
    handle::fail(handle::invalid(format!("{what} is NULL")))
}

unsafe fn user_arg(user_id: *const c_char) -> Result<String, handle::Failure> {
    text(user_id, "user_id")?.ok_or_else(|| missing("user_id"))
}

unsafe fn bytes_arg(data: *const u8, len: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        return None;
    }
    Some(std::slice::from_raw_parts(data, len).to_vec())
}

/// Runs a command: checks the client, builds the command, and starts it.
unsafe fn command(
    client: *mut PlClient,
    build: impl FnOnce() -> Result<Command, handle::Failure>,
) -> i64 {
    let Some(client) = client.as_ref() else {
        return i64::from(null_argument("client"));
    };
    match ffi_guard(|| build().and_then(|command| client.handle.start(command))) {
        Ok(request_id) => request_id,
        Err(code) => i64::from(code),
    }
}

#[cfg(test)]
mod tests {
    //! Bad input at the boundary: a code and a sentence, never a crash.
    //! (Whole sessions are played by the C, C++ and C# samples in tests/.)
    use super::*;
    use std::ffi::CStr;

    fn last_error_text() -> String {
        let mut buffer = [0 as c_char; 256];
        let len = unsafe { pl_last_error(buffer.as_mut_ptr(), buffer.len()) };
        let text = unsafe { CStr::from_ptr(buffer.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        assert_eq!(len, text.len(), "the full length, when it fits");
        text
    }

    #[test]
    fn a_null_client_is_an_invalid_argument_with_a_message() {
        let code = unsafe { pl_create_party(ptr::null_mut(), true, 4, ptr::null()) };
        assert_eq!(code, i64::from(PL_ERR_INVALID_ARGUMENT));
        assert_eq!(last_error_text(), "client is NULL");
        let mut event = PlEvent::none();
        assert_eq!(
            unsafe { pl_client_poll(ptr::null_mut(), &mut event) },
            PL_ERR_INVALID_ARGUMENT
        );
        unsafe { pl_client_free(ptr::null_mut()) };
    }

    /// Connects as dev user "ana", with the PEM given in memory (if any).
    fn connect_dev(server: &CStr, pem: Option<&[u8]>) -> *mut PlClient {
        let user = c"ana";
        let (pem, pem_len) = pem.map_or((ptr::null(), 0), |p| (p.as_ptr(), p.len()));
        unsafe {
            pl_client_connect(
                server.as_ptr(),
                ptr::null(),
                ptr::null(),
                pem,
                pem_len,
                user.as_ptr(),
                user.as_ptr(),
                ptr::null(),
            )
        }
    }

    #[test]
    fn connect_refuses_a_missing_or_bad_certificate_or_address_at_once() {
        assert!(connect_dev(c"127.0.0.1:9", None).is_null());
        assert_eq!(pl_last_error_code(), PL_ERR_INVALID_ARGUMENT);
        assert!(last_error_text().contains("certificate to trust is required"));
        assert!(connect_dev(c"127.0.0.1:9", Some(b"not pem")).is_null());
        assert!(last_error_text().contains("no certificate found"));
        assert!(connect_dev(c"no port here", Some(b"not pem")).is_null());
        assert!(last_error_text().contains("cannot resolve server address"));
    }

    #[test]
    fn the_error_message_is_cut_to_the_buffer_and_reports_its_length() {
        let _ = unsafe { pl_join_party(ptr::null_mut(), ptr::null()) };
        let full = unsafe { pl_last_error(ptr::null_mut(), 0) };
        let mut small = [0x7f as c_char; 4];
        let len = unsafe { pl_last_error(small.as_mut_ptr(), small.len()) };
        assert_eq!(len, full);
        assert_eq!(unsafe { CStr::from_ptr(small.as_ptr()) }.to_bytes(), b"cli");
    }

    /// A client whose connection will never come: commands built from bad
    /// arguments must be refused before anything is sent.
    fn unconnected() -> *mut PlClient {
        let (_, pem, _) = partyline::certs::generate_dev_identity().expect("dev certificate");
        // Port 9 (discard): nothing answers, and nothing here waits for it.
        connect_dev(c"127.0.0.1:9", Some(pem.as_bytes()))
    }

    #[test]
    fn bad_key_values_and_id_lists_are_refused_with_the_entry_named() {
        let client = unconnected();
        assert!(!client.is_null(), "{}", last_error_text());
        let party = c"67e55044-10b1-426f-9247-bb680e5fe0c8";
        let pairs = [
            PlKeyValue {
                key: c"map".as_ptr(),
                value: c"docks".as_ptr(),
            },
            PlKeyValue {
                key: c"mode".as_ptr(),
                value: ptr::null(),
            },
        ];
        let code = unsafe {
            pl_set_party_state(client, party.as_ptr(), pairs.as_ptr(), 2, ptr::null(), 0)
        };
        assert_eq!(code, i64::from(PL_ERR_INVALID_ARGUMENT));
        assert_eq!(last_error_text(), "set[1].value is NULL");
        let code = unsafe { pl_list_party(client, party.as_ptr(), ptr::null(), 3) };
        assert_eq!(code, i64::from(PL_ERR_INVALID_ARGUMENT));
        assert_eq!(last_error_text(), "properties is NULL but its count is 3");
        let ids = [c"bob".as_ptr(), ptr::null()];
        let code = unsafe { pl_follow(client, ids.as_ptr(), 2) };
        assert_eq!(code, i64::from(PL_ERR_INVALID_ARGUMENT));
        assert_eq!(last_error_text(), "user_ids[1] is NULL");
        let code = unsafe { pl_update_party_ex(client, party.as_ptr(), -1, -1, ptr::null(), 2) };
        assert_eq!(code, i64::from(PL_ERR_INVALID_ARGUMENT));
        assert!(last_error_text().contains("invite_policy must be"));
        let code = unsafe { pl_set_leader_policy(client, party.as_ptr(), 2) };
        assert_eq!(code, i64::from(PL_ERR_INVALID_ARGUMENT));
        assert!(last_error_text().contains("leader_policy must be"));
        let code =
            unsafe { pl_create_party_ex2(client, true, 4, ptr::null(), 0, ptr::null(), 0, -1) };
        assert_eq!(code, i64::from(PL_ERR_INVALID_ARGUMENT));
        let policy = PL_LEADER_POLICY_CONNECTION_QUALITY;
        assert!(unsafe { pl_set_leader_policy(client, party.as_ptr(), policy) } > 0);
        // Empty lists may be NULL; these are queued (and wait to connect).
        assert!(unsafe { pl_follow(client, ptr::null(), 0) } > 0);
        assert!(
            unsafe {
                pl_set_member_attributes(client, party.as_ptr(), ptr::null(), 0, ids.as_ptr(), 1)
            } > 0
        );
        unsafe { pl_client_free(client) };
    }

    /// A ticket for 4 with no properties: what each case below breaks.
    fn ticket() -> PlTicketRequest {
        PlTicketRequest {
            party_id: ptr::null(),
            min_count: 4,
            max_count: 4,
            count_multiple: 1,
            relaxed_min_count: 0,
            strings: ptr::null(),
            string_count: 0,
            numbers: ptr::null(),
            number_count: 0,
            query_strings: ptr::null(),
            query_string_count: 0,
            query_ranges: ptr::null(),
            query_range_count: 0,
            members: ptr::null(),
            member_count: 0,
        }
    }

    #[test]
    fn bad_tickets_are_refused_with_the_entry_named() {
        let client = unconnected();
        assert!(!client.is_null(), "{}", last_error_text());
        let refused = |request: *const PlTicketRequest| {
            let code = unsafe { pl_submit_ticket(client, request) };
            assert_eq!(code, i64::from(PL_ERR_INVALID_ARGUMENT));
            last_error_text()
        };
        assert_eq!(refused(ptr::null()), "request is NULL");
        let bad_party = PlTicketRequest {
            party_id: c"party-1".as_ptr(),
            ..ticket()
        };
        assert!(refused(&bad_party).contains("is not a party id"));
        let no_numbers = PlTicketRequest {
            number_count: 2,
            ..ticket()
        };
        assert_eq!(refused(&no_numbers), "numbers is NULL but its count is 2");
        let ranges = [
            PlKeyRange {
                key: c"skill".as_ptr(),
                min: 1,
                max: 9,
            },
            PlKeyRange {
                key: ptr::null(),
                min: 1,
                max: 9,
            },
        ];
        let bad_range = PlTicketRequest {
            query_ranges: ranges.as_ptr(),
            query_range_count: 2,
            ..ticket()
        };
        assert_eq!(refused(&bad_range), "query_ranges[1].key is NULL");
        let numbers = [PlKeyNumber {
            key: ptr::null(),
            value: 7,
        }];
        let members = [
            PlMemberProperties {
                user_id: c"ana".as_ptr(),
                strings: ptr::null(),
                string_count: 0,
                numbers: ptr::null(),
                number_count: 0,
            },
            PlMemberProperties {
                user_id: c"bob".as_ptr(),
                strings: ptr::null(),
                string_count: 0,
                numbers: numbers.as_ptr(),
                number_count: 1,
            },
        ];
        let bad_member = PlTicketRequest {
            members: members.as_ptr(),
            member_count: 2,
            ..ticket()
        };
        assert_eq!(refused(&bad_member), "members[1].numbers[0].key is NULL");
        let no_user = [PlMemberProperties {
            user_id: ptr::null(),
            ..members[0]
        }];
        let bad_user = PlTicketRequest {
            members: no_user.as_ptr(),
            member_count: 1,
            ..ticket()
        };
        assert_eq!(refused(&bad_user), "members[0].user_id is NULL");
        // Counts and ranges are the server's to judge: these are queued.
        let upside_down = [PlKeyRange {
            key: c"skill".as_ptr(),
            min: 9,
            max: 1,
        }];
        let for_the_server = PlTicketRequest {
            count_multiple: 0,
            query_ranges: upside_down.as_ptr(),
            query_range_count: 1,
            ..ticket()
        };
        assert!(unsafe { pl_submit_ticket(client, &for_the_server) } > 0);
        assert!(unsafe { pl_cancel_ticket(client, 7) } > 0);
        assert_eq!(
            unsafe { pl_cancel_ticket(ptr::null_mut(), 7) },
            i64::from(PL_ERR_INVALID_ARGUMENT)
        );
        unsafe { pl_client_free(client) };
    }

    #[test]
    fn the_refusal_constants_are_the_protocols_codes() {
        use partyline_client::ErrorCode as E;
        let named = [
            (PL_REFUSED_INVALID_ARGUMENT, E::InvalidArgument),
            (PL_REFUSED_PARTY_NOT_FOUND, E::PartyNotFound),
            (PL_REFUSED_PARTY_FULL, E::PartyFull),
            (PL_REFUSED_NOT_LEADER, E::NotLeader),
            (PL_REFUSED_NOT_MEMBER, E::NotMember),
            (PL_REFUSED_MEMBER_NOT_FOUND, E::MemberNotFound),
            (PL_REFUSED_ALREADY_MEMBER, E::AlreadyMember),
            (PL_REFUSED_ALREADY_REQUESTED, E::AlreadyRequested),
            (PL_REFUSED_TOO_MANY_REQUESTS, E::TooManyRequests),
            (PL_REFUSED_REQUEST_NOT_FOUND, E::RequestNotFound),
            (PL_REFUSED_CANNOT_REMOVE_SELF, E::CannotRemoveSelf),
            (PL_REFUSED_PAYLOAD_TOO_LARGE, E::PayloadTooLarge),
            (PL_REFUSED_RATE_LIMITED, E::RateLimited),
            (PL_REFUSED_UNAUTHENTICATED, E::Unauthenticated),
            (PL_REFUSED_VERSION_MISMATCH, E::VersionMismatch),
            (PL_REFUSED_INTERNAL, E::Internal),
            (PL_REFUSED_MALFORMED_FRAME, E::MalformedFrame),
            (PL_REFUSED_PROTOCOL_VIOLATION, E::ProtocolViolation),
            (PL_REFUSED_RESUME_REFUSED, E::ResumeRefused),
            (PL_REFUSED_TOO_MANY_PARTIES, E::TooManyParties),
            (PL_REFUSED_INVITE_NOT_FOUND, E::InviteNotFound),
            (PL_REFUSED_BANNED, E::Banned),
            (PL_REFUSED_JOIN_CODE_NOT_FOUND, E::JoinCodeNotFound),
            (PL_REFUSED_TOO_MANY_FOLLOWS, E::TooManyFollows),
            (PL_REFUSED_KEY_VALUES_TOO_LARGE, E::KeyValuesTooLarge),
            (PL_REFUSED_TOO_MANY_INVITES, E::TooManyInvites),
            (PL_REFUSED_TOO_MANY_BANS, E::TooManyBans),
            (PL_REFUSED_BAN_NOT_FOUND, E::BanNotFound),
            (PL_REFUSED_ALREADY_MATCHMAKING, E::AlreadyMatchmaking),
            (PL_REFUSED_TICKET_NOT_FOUND, E::TicketNotFound),
            (PL_REFUSED_INVALID_TICKET, E::InvalidTicket),
            (PL_REFUSED_PARTY_TOO_LARGE, E::PartyTooLarge),
            (PL_REFUSED_DENIED, E::Denied),
            (PL_REFUSED_HOOK_FAILED, E::HookFailed),
            (PL_REFUSED_UNAVAILABLE, E::Unavailable),
            (PL_REFUSED_READY_CHECK_RUNNING, E::ReadyCheckRunning),
            (PL_REFUSED_NO_READY_CHECK, E::NoReadyCheck),
            (PL_REFUSED_NOT_ASKED, E::NotAsked),
            (PL_REFUSED_TOO_MANY_MUTES, E::TooManyMutes),
            (PL_REFUSED_TOO_MANY_BLOCKS, E::TooManyBlocks),
            (PL_REFUSED_BLOCKED, E::Blocked),
        ];
        for (constant, code) in named {
            assert_eq!(constant, i32::from(code.number()), "{code:?}");
        }
    }

    #[test]
    fn a_panic_becomes_an_internal_error_with_its_message() {
        let result: Result<(), i32> = handle::ffi_guard(|| panic!("boom"));
        assert_eq!(result, Err(PL_ERR_INTERNAL));
        assert!(last_error_text().contains("boom"));
    }
}
