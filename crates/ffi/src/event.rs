//! The event struct a game's poll fills, and the storage that keeps what it
//! points to alive until the next poll.

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

/// One event, filled by `pl_client_poll`. Which fields are set depends on
/// `kind` (a `PL_EVENT_*`); the others are zero or NULL. Pointers stay
/// valid until the next `pl_client_poll` on the same client.
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
}

impl PlMember {
    const NONE: PlMember = PlMember {
        user_id: ptr::null(),
        username: ptr::null(),
        session_id: ptr::null(),
        connected: false,
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
        }
    }
}

/// Owns everything the last polled event points to.
#[derive(Default)]
pub(crate) struct Held {
    strings: Vec<CString>,
    lists: Vec<Vec<PlMember>>,
    data: bytes::Bytes,
}

// The raw pointers in `lists` point into `strings`, which this owns too.
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

    /// A list owned here; returns its pointer and length.
    pub(crate) fn list(&mut self, members: Vec<PlMember>) -> (*const PlMember, usize) {
        if members.is_empty() {
            return (ptr::null(), 0);
        }
        let pointer = members.as_ptr();
        let len = members.len();
        self.lists.push(members);
        (pointer, len)
    }

    pub(crate) fn data(&mut self, data: bytes::Bytes) -> (*const u8, usize) {
        self.data = data;
        (self.data.as_ptr(), self.data.len())
    }
}
