//! The event struct a game's poll fills, and the storage that keeps what it
//! points to alive until the same thread polls the same client again.

use std::any::Any;
use std::ffi::{c_char, CString};
use std::ptr;

/// A member (or requester, or sender): who they are and whether their
/// connection is up. Strings are NUL-terminated UTF-8.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PlMember {
    /// The user's id.
    pub user_id: *const c_char,
    /// The name to show.
    pub username: *const c_char,
    /// The session's id (a UUID in text form).
    pub session_id: *const c_char,
    /// False while the member's connection is lost and its seat is held.
    pub connected: bool,
}

/// One key and its value, NUL-terminated UTF-8: an entry of a key-value
/// map (party state, member attributes, listing properties, search
/// filters). As an argument the caller owns it; in an event, the client.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PlKeyValue {
    /// The key.
    pub key: *const c_char,
    /// Its value.
    pub value: *const c_char,
}

/// A key-value map: `count` entries at `items`, sorted by key, each key
/// once. Empty: `items` NULL and `count` 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PlKeyValues {
    /// The entries.
    pub items: *const PlKeyValue,
    /// How many `items`.
    pub count: usize,
}

/// A session of a followed user as its followers see it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PlUserStatus {
    /// The session (`connected` is true).
    pub member: PlMember,
    /// Its status text ("" for none).
    pub status: *const c_char,
}

/// A pending invite to a party, as the invitee sees it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PlInvite {
    /// The party invited to (a UUID in text form).
    pub party_id: *const c_char,
    /// Who invited.
    pub inviter: PlMember,
    /// Members when invited, leader included.
    pub member_count: u16,
    /// Most members, leader included.
    pub max_size: u16,
    /// Whether the party was open when invited (the invite seats its user
    /// in a closed party too).
    pub open: bool,
    /// The party's label when invited.
    pub label: *const c_char,
    /// The party's leader when invited.
    pub leader: PlMember,
    /// When the invite runs out: milliseconds since the Unix epoch, by the
    /// server's clock.
    pub expires_at_ms: u64,
}

/// One member this session muted in a party: its party data (for the op
/// codes named) does not reach this session.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PlMute {
    /// The muted member's user id.
    pub user_id: *const c_char,
    /// True: only op codes `op_code_min` to `op_code_max` (inclusive) are
    /// muted; false: all of them.
    pub has_op_codes: bool,
    /// The lowest op code muted, with `has_op_codes`.
    pub op_code_min: i64,
    /// The highest op code muted, with `has_op_codes`.
    pub op_code_max: i64,
}

/// One ban of a party.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PlBan {
    /// The banned user.
    pub user_id: *const c_char,
    /// When the ban ends: milliseconds since the Unix epoch, by the
    /// server's clock; 0 for as long as the party lives.
    pub until_ms: u64,
}

/// A listed party, as a search finds it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PlListedParty {
    /// The party's id (a UUID in text form), to join with.
    pub party_id: *const c_char,
    /// Members now, leader included.
    pub member_count: u16,
    /// Most members, leader included.
    pub max_size: u16,
    /// Whether joins are seated at once.
    pub open: bool,
    /// The party's label.
    pub label: *const c_char,
    /// The properties the leader listed it with.
    pub properties: PlKeyValues,
}

/// One key and its integer value: an entry of an integer map (a ticket's
/// or member's numbers, a matched player's). As an argument the caller
/// owns it; in an event, the client.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PlKeyNumber {
    /// The key, NUL-terminated UTF-8.
    pub key: *const c_char,
    /// Its value (scale fractions yourself: skill 12.5 as 1250).
    pub value: i64,
}

/// An integer map: `count` entries at `items`, sorted by key, each key
/// once. Empty: `items` NULL and `count` 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PlKeyNumbers {
    /// The entries.
    pub items: *const PlKeyNumber,
    /// How many `items`.
    pub count: usize,
}

/// A query's range for one number key: the other ticket's number must lie
/// in `[min, max]`, inclusive. An argument: the caller owns it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PlKeyRange {
    /// The key, NUL-terminated UTF-8.
    pub key: *const c_char,
    /// Lowest allowed.
    pub min: i64,
    /// Highest allowed (not below `min`).
    pub max: i64,
}

/// One member's own properties in a ticket, carried to the match (they
/// win over the ticket's). An argument: the caller owns it and all it
/// points to, read only during the call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PlMemberProperties {
    /// Whose: a user id in the ticket's party (or the submitter).
    pub user_id: *const c_char,
    /// String properties: `string_count` pairs (NULL and 0: none).
    pub strings: *const PlKeyValue,
    /// How many `strings`.
    pub string_count: usize,
    /// Integer properties: `number_count` pairs (NULL and 0: none).
    pub numbers: *const PlKeyNumber,
    /// How many `numbers`.
    pub number_count: usize,
}

/// A matchmaking ticket, for `pl_submit_ticket`. Every pointer is the
/// caller's, read only during the call (everything is copied); an array
/// may be NULL when its count is 0. Zero-filled is not a valid ticket:
/// set `min_count`, `max_count` and `count_multiple`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PlTicketRequest {
    /// NULL for a solo ticket; a party id (UUID text) for a ticket of the
    /// whole party, every member in it (leader only).
    pub party_id: *const c_char,
    /// Fewest players in the match, this ticket's included (at least 1).
    pub min_count: u32,
    /// Most players in the match (at least `min_count`, and at least the
    /// party's members).
    pub max_count: u32,
    /// The match's player count must be a multiple of this (1: any; 0 is
    /// refused).
    pub count_multiple: u32,
    /// A lower minimum that applies once the ticket has waited the
    /// server's relax time; 0: none.
    pub relaxed_min_count: u32,
    /// The ticket's string properties, which other tickets' queries test:
    /// `string_count` pairs.
    pub strings: *const PlKeyValue,
    /// How many `strings`.
    pub string_count: usize,
    /// The ticket's integer properties: `number_count` pairs.
    pub numbers: *const PlKeyNumber,
    /// How many `numbers`.
    pub number_count: usize,
    /// Query: every other ticket in the match must have each of these
    /// string properties: `query_string_count` pairs.
    pub query_strings: *const PlKeyValue,
    /// How many `query_strings`.
    pub query_string_count: usize,
    /// Query: every other ticket's number for each key must lie in its
    /// range: `query_range_count` ranges.
    pub query_ranges: *const PlKeyRange,
    /// How many `query_ranges`.
    pub query_range_count: usize,
    /// Per member properties, carried to the match (members not listed
    /// have none): `member_count` entries.
    pub members: *const PlMemberProperties,
    /// How many `members`.
    pub member_count: usize,
}

/// One player of a match, as `PL_EVENT_MATCHED` lists them.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PlMatchedPlayer {
    /// Who (`connected` is not tracked for a match and is always true).
    pub member: PlMember,
    /// The party it came with (a UUID in text form); NULL for a solo ticket.
    pub party_id: *const c_char,
    /// Its ticket's string properties, then its own (its own win).
    pub strings: PlKeyValues,
    /// Its ticket's integer properties, then its own.
    pub numbers: PlKeyNumbers,
}

/// One event, filled by `pl_client_poll_sized` (or `pl_client_poll`).
/// Which fields are set depends on `kind` (a `PL_EVENT_*`); the others are
/// zero or NULL. Pointers are the client's, valid until the same thread
/// polls the same client again (or frees it). New fields are only ever
/// added at the end.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PlEvent {
    /// What happened: a `PL_EVENT_*` constant.
    pub kind: i32,
    /// `PL_EVENT_REPLY`: the id the command returned.
    pub request_id: i64,
    /// 0 for success; a server refusal (positive, PROTOCOL.md's codes) or a
    /// `PL_ERR_*` (negative).
    pub error_code: i32,
    /// Why, when `error_code` is not 0, or a disconnect's reason.
    pub error_message: *const c_char,
    /// The party concerned (a UUID in text form).
    pub party_id: *const c_char,
    /// `PL_EVENT_CONNECTED` / `PL_EVENT_SESSION_LOST`: this session's id.
    pub session_id: *const c_char,
    /// The member the event is about (joined, left, leader, sender...).
    /// `PL_EVENT_DATA` sent by the server itself (the game's backend) has
    /// an empty user id and the nil session id.
    pub member: PlMember,
    /// A reason code; see each event's constant.
    pub reason: i32,
    /// Party fields: open to direct joins.
    pub open: bool,
    /// Party fields: most members, leader included.
    pub max_size: u16,
    /// Party fields: the label.
    pub label: *const c_char,
    /// Party fields: the leader.
    pub leader: PlMember,
    /// Party fields: the members in seat order.
    pub members: *const PlMember,
    /// How many `members`.
    pub member_count: usize,
    /// Join requests (a leader's party, or `PL_EVENT_JOIN_REQUESTS`).
    pub requests: *const PlMember,
    /// How many `requests`.
    pub request_count: usize,
    /// Whether the party fields are set (a party reply, joined, updated, synced).
    pub has_party: bool,
    /// Join reply: waiting for the leader (closed party).
    pub queued: bool,
    /// `PL_EVENT_DATA`: the sender's op code.
    pub op_code: i64,
    /// `PL_EVENT_DATA`: the payload.
    pub data: *const u8,
    /// `PL_EVENT_DATA`: the payload's length in bytes.
    pub data_len: usize,
    /// `PL_EVENT_DATA`: true when it came reliably.
    pub reliable: bool,
    // Fields below came with protocol 2 (find, invite, gather); they
    // follow all older ones so that the offsets above stay as they were.
    /// `PL_EVENT_STATUS_ONLINE` / `PL_EVENT_STATUS_CHANGED`: the status
    /// text of `member` ("" for none).
    pub status: *const c_char,
    /// `pl_follow`'s reply: the followed users' sessions online now.
    pub statuses: *const PlUserStatus,
    /// How many `statuses`.
    pub status_count: usize,
    /// `pl_list_invites`'s reply: the pending invites, oldest first;
    /// `PL_EVENT_INVITED`: the one invite.
    pub invites: *const PlInvite,
    /// How many `invites`.
    pub invite_count: usize,
    /// Party fields: who may invite (a `PL_INVITE_POLICY_*`).
    pub invite_policy: i32,
    /// Party fields and `PL_EVENT_PARTY_STATE_CHANGED`: the party state.
    pub state: PlKeyValues,
    /// Party fields: each member's attributes, in the order of `members`
    /// (`member_count` entries).
    pub member_attributes: *const PlKeyValues,
    /// `PL_EVENT_MEMBER_ATTRIBUTES_CHANGED`: all of `member`'s attributes.
    pub attributes: PlKeyValues,
    /// Party fields, `PL_EVENT_JOIN_CODE_CHANGED` and `pl_create_join_code`'s
    /// reply: the join code ("" for none).
    pub join_code: *const c_char,
    /// Party fields and `PL_EVENT_LISTING_CHANGED`: listed for search.
    pub listed: bool,
    /// Party fields and `PL_EVENT_LISTING_CHANGED`: the listing properties.
    pub properties: PlKeyValues,
    /// `PL_EVENT_BANNED`: when the ban ends (Unix ms, server clock); 0 for
    /// as long as the party lives.
    pub until_ms: u64,
    /// `pl_list_bans`'s reply: the party's bans, oldest first.
    pub bans: *const PlBan,
    /// How many `bans`.
    pub ban_count: usize,
    /// `pl_search_parties`'s reply: the parties found, in listing order.
    pub parties: *const PlListedParty,
    /// How many `parties`.
    pub party_count: usize,
    /// `pl_search_parties`'s reply: the `cursor` of the next page; 0 when
    /// this page was the last.
    pub next_cursor: u64,
    // Fields below came with matchmaking; they follow all older ones.
    /// `pl_submit_ticket`'s reply and `PL_EVENT_TICKET_STARTED`,
    /// `PL_EVENT_TICKET_CANCELLED`, `PL_EVENT_MATCHED`: the ticket.
    pub ticket_id: u64,
    /// `PL_EVENT_MATCHED`: the match's id (a UUID in text form).
    pub match_id: *const c_char,
    /// `PL_EVENT_MATCHED`: every player, ticket by ticket, oldest ticket
    /// first.
    pub players: *const PlMatchedPlayer,
    /// How many `players`.
    pub player_count: usize,
    /// `PL_EVENT_MATCHED`: the match token to hand the game server, which
    /// verifies it with the shared secret (PROTOCOL.md, "Match token").
    pub match_token: *const c_char,
    /// `PL_EVENT_MATCHED`: when `match_token` stops being valid: seconds
    /// since the Unix epoch, by the server's clock.
    pub token_expires_at: u64,
    // Fields below came with protocol 3 (ready checks); they follow all
    // older ones.
    /// Party fields: a ready check runs (the `check_*` fields describe it).
    pub has_ready_check: bool,
    /// The ready check events, and party fields with `has_ready_check`:
    /// the check (answer it under this id).
    pub check_id: u64,
    /// `PL_EVENT_READY_CHECK_STARTED` and party fields: the leader's
    /// message ("" for none).
    pub check_message: *const c_char,
    /// `PL_EVENT_READY_CHECK_STARTED` and party fields: how long it runs,
    /// in milliseconds from its start.
    pub check_timeout_ms: u64,
    /// `PL_EVENT_READY_CHECK_STARTED` and party fields: when it times out
    /// (Unix ms, server clock).
    pub check_ends_at_ms: u64,
    /// Ready check events and party fields: the members asked that are
    /// ready.
    pub check_ready: *const PlMember,
    /// How many `check_ready`.
    pub check_ready_count: usize,
    /// The members asked that are not ready, or left.
    pub check_not_ready: *const PlMember,
    /// How many `check_not_ready`.
    pub check_not_ready_count: usize,
    /// The members asked that have not answered.
    pub check_no_answer: *const PlMember,
    /// How many `check_no_answer`.
    pub check_no_answer_count: usize,
    /// `PL_EVENT_READY_CHECK_ANSWERED`: `member`'s answer now.
    pub ready: bool,
    // Fields below came with protocol 3's leader by connection quality;
    // they follow all older ones.
    /// Party fields: who leads when the leader leaves or is lost (a
    /// `PL_LEADER_POLICY_*`).
    pub leader_policy: i32,
    /// Party fields: each member's connection quality as the server
    /// measured it (a `PL_QUALITY_*`), in the order of `members`
    /// (`member_count` entries), as of this event: no event says it
    /// changed (`pl_get_party` asks again).
    pub member_quality: *const i32,
    // Fields below came with protocol 3's mutes and blocks; they follow
    // all older ones.
    /// Party fields: the members this session muted in the party.
    pub muted: *const PlMute,
    /// How many `muted`.
    pub muted_count: usize,
    /// The reply of `pl_block`, `pl_unblock` and `pl_list_blocks`, and
    /// `PL_EVENT_BLOCKS_CHANGED`: this session's block list (user ids,
    /// sorted).
    pub blocked: *const *const c_char,
    /// How many `blocked`.
    pub blocked_count: usize,
}

impl PlMember {
    const NONE: PlMember = PlMember {
        user_id: ptr::null(),
        username: ptr::null(),
        session_id: ptr::null(),
        connected: false,
    };
}

impl PlKeyValues {
    pub(crate) const EMPTY: PlKeyValues = PlKeyValues {
        items: ptr::null(),
        count: 0,
    };
}

impl PlEvent {
    /// An empty event (`PL_EVENT_NONE`).
    pub fn none() -> PlEvent {
        PlEvent {
            kind: crate::PL_EVENT_NONE,
            request_id: 0,
            error_code: 0,
            error_message: ptr::null(),
            party_id: ptr::null(),
            session_id: ptr::null(),
            member: PlMember::NONE,
            reason: 0,
            open: false,
            max_size: 0,
            label: ptr::null(),
            leader: PlMember::NONE,
            members: ptr::null(),
            member_count: 0,
            requests: ptr::null(),
            request_count: 0,
            has_party: false,
            queued: false,
            op_code: 0,
            data: ptr::null(),
            data_len: 0,
            reliable: false,
            status: ptr::null(),
            statuses: ptr::null(),
            status_count: 0,
            invites: ptr::null(),
            invite_count: 0,
            invite_policy: 0,
            state: PlKeyValues::EMPTY,
            member_attributes: ptr::null(),
            attributes: PlKeyValues::EMPTY,
            join_code: ptr::null(),
            listed: false,
            properties: PlKeyValues::EMPTY,
            until_ms: 0,
            bans: ptr::null(),
            ban_count: 0,
            parties: ptr::null(),
            party_count: 0,
            next_cursor: 0,
            ticket_id: 0,
            match_id: ptr::null(),
            players: ptr::null(),
            player_count: 0,
            match_token: ptr::null(),
            token_expires_at: 0,
            has_ready_check: false,
            check_id: 0,
            check_message: ptr::null(),
            check_timeout_ms: 0,
            check_ends_at_ms: 0,
            check_ready: ptr::null(),
            check_ready_count: 0,
            check_not_ready: ptr::null(),
            check_not_ready_count: 0,
            check_no_answer: ptr::null(),
            check_no_answer_count: 0,
            ready: false,
            leader_policy: 0,
            member_quality: ptr::null(),
            muted: ptr::null(),
            muted_count: 0,
            blocked: ptr::null(),
            blocked_count: 0,
        }
    }
}

/// Owns everything one thread's last polled event points to.
#[derive(Default)]
pub(crate) struct Held {
    strings: Vec<CString>,
    /// Arrays of any of the C structs above, type-erased: only their heap
    /// buffers matter, and those do not move when the boxes do.
    lists: Vec<Box<dyn Any>>,
    data: bytes::Bytes,
}

// The raw pointers in `lists` point into `strings` and `lists`, which this
// owns too; nothing here is shared outside the mutex that holds it.
unsafe impl Send for Held {}

impl Held {
    /// Text as a C string owned here (a NUL inside is dropped, never cut at).
    pub(crate) fn text(&mut self, text: &str) -> *const c_char {
        let c = CString::new(text.replace('\0', "")).unwrap_or_default();
        // A CString's buffer does not move when the Vec grows.
        let pointer = c.as_ptr();
        self.strings.push(c);
        pointer
    }

    pub(crate) fn member(
        &mut self,
        presence: &partyline_client::Presence,
        connected: bool,
    ) -> PlMember {
        PlMember {
            user_id: self.text(&presence.user_id),
            username: self.text(&presence.username),
            session_id: self.text(&presence.session_id.to_string()),
            connected,
        }
    }

    /// An array owned here; returns its pointer and length (NULL and 0
    /// when empty).
    pub(crate) fn list<T: 'static>(&mut self, items: Vec<T>) -> (*const T, usize) {
        if items.is_empty() {
            return (ptr::null(), 0);
        }
        let pointer = items.as_ptr();
        let len = items.len();
        self.lists.push(Box::new(items));
        (pointer, len)
    }

    /// A key-value map owned here, in key order.
    pub(crate) fn key_values(&mut self, map: &partyline_client::KeyValues) -> PlKeyValues {
        let items: Vec<PlKeyValue> = map
            .iter()
            .map(|(key, value)| PlKeyValue {
                key: self.text(key),
                value: self.text(value),
            })
            .collect();
        let (items, count) = self.list(items);
        PlKeyValues { items, count }
    }

    /// An integer map owned here, in key order.
    pub(crate) fn key_numbers(&mut self, map: &partyline_client::Numbers) -> PlKeyNumbers {
        let items: Vec<PlKeyNumber> = map
            .iter()
            .map(|(key, value)| PlKeyNumber {
                key: self.text(key),
                value: *value,
            })
            .collect();
        let (items, count) = self.list(items);
        PlKeyNumbers { items, count }
    }

    pub(crate) fn data(&mut self, data: bytes::Bytes) -> (*const u8, usize) {
        self.data = data;
        (self.data.as_ptr(), self.data.len())
    }
}
