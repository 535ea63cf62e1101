//! partyline's C ABI: the way in for C, C#, C++ and every game engine.
//!
//! The shape, for a game loop:
//! - `pl_client_connect` returns a handle at once; the connection is made
//!   in the background and `PL_EVENT_CONNECTED` (or `PL_EVENT_DISCONNECTED`)
//!   follows.
//! - Every command returns a request id at once (negative: an error code);
//!   its answer arrives later as a `PL_EVENT_REPLY` with the same id.
//!   Commands made before the connection is up wait for it.
//! - `pl_client_poll`, once per frame, fills a caller-owned `PlEvent` with
//!   the next event. Strings and arrays it points to belong to the client
//!   and stay valid until the next `pl_client_poll` on that client.
//! - No callbacks: nothing calls into the game from another thread.
//! - Every function may be called from any thread. No panic crosses the
//!   boundary: it becomes `PL_ERR_INTERNAL`.
//!
//! `include/partyline.h` is generated from this file by cbindgen (a test
//! checks that the committed header is current).
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// Every pointer argument is checked for NULL and documented in the header;
// the functions are `unsafe extern "C"` in spirit, as every C ABI is.
#![allow(clippy::missing_safety_doc)]

mod event;
mod handle;

use handle::{ffi_guard, text, ClientHandle, Command};
use std::ffi::c_char;
use std::ptr;

pub use event::{PlEvent, PlMember};

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
// Positive codes are the server's refusals (PROTOCOL.md's error codes:
// 1 InvalidArgument ... 12 PayloadTooLarge, 13 RateLimited ...).

/// No event was waiting.
pub const PL_EVENT_NONE: i32 = 0;
/// The session is up: `session_id` and `member` (this session) are set.
pub const PL_EVENT_CONNECTED: i32 = 1;
/// The answer to a command: `request_id`, `error_code` (0: success) and
/// `error_message`; party replies fill the party fields, join replies set
/// `queued`, join-request lists fill `requests`.
pub const PL_EVENT_REPLY: i32 = 2;
/// The leader accepted this session into a closed party: party fields set.
pub const PL_EVENT_PARTY_JOINED: i32 = 3;
/// Someone took a seat: `party_id`, `member`.
pub const PL_EVENT_MEMBER_JOINED: i32 = 4;
/// Someone left: `party_id`, `member`, `reason` (0 left, 1 kicked, 2 session ended).
pub const PL_EVENT_MEMBER_LEFT: i32 = 5;
/// The leader changed: `party_id`, `member` is the new leader.
pub const PL_EVENT_LEADER_CHANGED: i32 = 6;
/// A member lost its connection or came back: `party_id`, `member` (with `connected`).
pub const PL_EVENT_MEMBER_CONNECTION: i32 = 7;
/// To the leader: someone asks to join: `party_id`, `member`.
pub const PL_EVENT_JOIN_REQUESTED: i32 = 8;
/// To the leader: a request vanished: `party_id`, `member`, `reason`
/// (0 cancelled, 1 expired, 2 session ended).
pub const PL_EVENT_JOIN_REQUEST_GONE: i32 = 9;
/// To a new leader: the waiting requests: `party_id`, `requests`.
pub const PL_EVENT_JOIN_REQUESTS: i32 = 10;
/// This session's join request ended without a seat: `party_id`, `reason`
/// (0 rejected, 1 party closed, 2 expired).
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
/// The session is over: `error_code` (a `PL_ERR_*`) and `error_message`
/// say why. Only the failed replies of commands already made may follow.
pub const PL_EVENT_DISCONNECTED: i32 = 22;
/// The server could not decode something this client sent: `error_message`.
pub const PL_EVENT_PROTOCOL_ERROR: i32 = 23;

/// An opaque client: one session with a partyline server.
pub struct PlClient {
    handle: ClientHandle,
}

/// Starts connecting and returns the client at once (NULL on a bad
/// argument: see `pl_last_error`). The outcome arrives as
/// `PL_EVENT_CONNECTED` or `PL_EVENT_DISCONNECTED`.
///
/// - `server`: "host:port", e.g. "127.0.0.1:7350".
/// - `server_name`: the name the certificate carries; NULL for "localhost".
/// - The certificate to trust: `cert_pem_path` (a PEM file), or
///   `cert_pem`/`cert_pem_len` (PEM text in memory); one of the two.
/// - Who to be: `token` (a signed token from the game's backend), or, when
///   `token` is NULL, the dev identity `user_id` and `username`.
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

/// Fills `event` with the next event and returns 1, or returns 0 when none
/// waits (negative: an error). Call it in a loop once per frame. What the
/// event points to stays valid until the next call on this client.
#[no_mangle]
pub unsafe extern "C" fn pl_client_poll(client: *mut PlClient, event: *mut PlEvent) -> i32 {
    let Some(client) = client.as_ref() else {
        return null_argument("client");
    };
    if event.is_null() {
        return null_argument("event");
    }
    match ffi_guard(|| Ok(client.handle.poll())) {
        Ok(Some(next)) => {
            event.write(next);
            1
        }
        Ok(None) => {
            event.write(PlEvent::none());
            0
        }
        Err(code) => code,
    }
}

/// Creates a party led by this session. Returns a request id (> 0) or a
/// negative error; the reply carries the party.
#[no_mangle]
pub unsafe extern "C" fn pl_create_party(
    client: *mut PlClient,
    open: bool,
    max_size: u16,
    label: *const c_char,
) -> i64 {
    command(client, || {
        Ok(Command::Create {
            open,
            max_size,
            label: text(label, "label")?.unwrap_or_default(),
        })
    })
}

/// Joins an open party, or asks a closed party's leader (the reply then
/// has `queued` set, and `PL_EVENT_PARTY_JOINED` or
/// `PL_EVENT_JOIN_REJECTED` follows).
#[no_mangle]
pub unsafe extern "C" fn pl_join_party(client: *mut PlClient, party_id: *const c_char) -> i64 {
    command(client, || Ok(Command::Join(handle::party_arg(party_id)?)))
}

/// Leaves a party, or withdraws this session's join request.
#[no_mangle]
pub unsafe extern "C" fn pl_leave_party(client: *mut PlClient, party_id: *const c_char) -> i64 {
    command(client, || Ok(Command::Leave(handle::party_arg(party_id)?)))
}

/// Leader only: seats a user whose join request waits.
#[no_mangle]
pub unsafe extern "C" fn pl_accept(
    client: *mut PlClient,
    party_id: *const c_char,
    user_id: *const c_char,
) -> i64 {
    command(client, || {
        Ok(Command::Accept(
            handle::party_arg(party_id)?,
            user_arg(user_id)?,
        ))
    })
}

/// Leader only: turns a waiting join request down.
#[no_mangle]
pub unsafe extern "C" fn pl_reject(
    client: *mut PlClient,
    party_id: *const c_char,
    user_id: *const c_char,
) -> i64 {
    command(client, || {
        Ok(Command::Reject(
            handle::party_arg(party_id)?,
            user_arg(user_id)?,
        ))
    })
}

/// Leader only: takes a member's seat away.
#[no_mangle]
pub unsafe extern "C" fn pl_kick(
    client: *mut PlClient,
    party_id: *const c_char,
    user_id: *const c_char,
) -> i64 {
    command(client, || {
        Ok(Command::Kick(
            handle::party_arg(party_id)?,
            user_arg(user_id)?,
        ))
    })
}

/// Leader only: hands leadership to another member.
#[no_mangle]
pub unsafe extern "C" fn pl_promote(
    client: *mut PlClient,
    party_id: *const c_char,
    user_id: *const c_char,
) -> i64 {
    command(client, || {
        Ok(Command::Promote(
            handle::party_arg(party_id)?,
            user_arg(user_id)?,
        ))
    })
}

/// Leader only: ends the party for everyone.
#[no_mangle]
pub unsafe extern "C" fn pl_close_party(client: *mut PlClient, party_id: *const c_char) -> i64 {
    command(client, || Ok(Command::Close(handle::party_arg(party_id)?)))
}

/// Leader only: changes settings. `open`: -1 keeps it, 0 closes, 1 opens;
/// `max_size`: -1 keeps it; `label`: NULL keeps it. The reply carries the party.
#[no_mangle]
pub unsafe extern "C" fn pl_update_party(
    client: *mut PlClient,
    party_id: *const c_char,
    open: i32,
    max_size: i32,
    label: *const c_char,
) -> i64 {
    command(client, || {
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
            n => Some(u16::try_from(n).map_err(|_| {
                handle::invalid(format!("max_size must be -1 or 1..=256, not {n}"))
            })?),
        };
        Ok(Command::Update {
            party_id: handle::party_arg(party_id)?,
            open,
            max_size,
            label: text(label, "label")?,
        })
    })
}

/// The party as the server has it now (members only). The reply carries it.
#[no_mangle]
pub unsafe extern "C" fn pl_get_party(client: *mut PlClient, party_id: *const c_char) -> i64 {
    command(client, || Ok(Command::Get(handle::party_arg(party_id)?)))
}

/// Leader only: the waiting join requests; the reply fills `requests`.
#[no_mangle]
pub unsafe extern "C" fn pl_list_join_requests(
    client: *mut PlClient,
    party_id: *const c_char,
) -> i64 {
    command(client, || {
        Ok(Command::ListRequests(handle::party_arg(party_id)?))
    })
}

/// Party data on the reliable control stream. Returns a request id; the
/// reply says the server took it.
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
        Ok(Command::SendReliable {
            party_id: handle::party_arg(party_id)?,
            op_code,
            data: bytes_arg(data, data_len).unwrap_or_default(),
        })
    })
}

/// Party data as one unreliable datagram, sent at once: returns `PL_OK`,
/// a negative error, or 12 (PayloadTooLarge) above the server's limit.
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

/// Closes the session cleanly (the server removes it from its parties at
/// once); `PL_EVENT_DISCONNECTED` follows. The client must still be freed.
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

/// Closes the session if open and frees the client. NULL is ignored. Do
/// not use the client, or anything a poll returned, afterwards.
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

/// Copies the message of the last error on this thread into `buffer`
/// (NUL-terminated, cut to fit) and returns its full length in bytes
/// (without the NUL): call with a NULL buffer to learn the size.
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

/// The code of the last error on this thread (a `PL_ERR_*`, or a server's
/// positive code), 0 if none: what a NULL from `pl_client_connect` meant.
#[no_mangle]
pub extern "C" fn pl_last_error_code() -> i32 {
    handle::last_error_code()
}

/// The library's version, e.g. "0.1.0" (static; never freed).
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

    #[test]
    fn a_panic_becomes_an_internal_error_with_its_message() {
        let result: Result<(), i32> = handle::ffi_guard(|| panic!("boom"));
        assert_eq!(result, Err(PL_ERR_INTERNAL));
        assert!(last_error_text().contains("boom"));
    }
}
