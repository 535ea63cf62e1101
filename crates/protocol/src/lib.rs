//! partyline's wire format: the messages, codecs, ids and error codes that
//! the server and every client share.
//!
//! No I/O and no tokio here: everything is bytes in, values out, so the
//! codecs can be fuzzed and benchmarked in isolation. PROTOCOL.md at the
//! repository root describes every byte; keep the two in step.

#![warn(missing_docs)]
// Everything here parses bytes a peer controls: no unchecked indexing, and
// nothing a peer sends may panic.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

mod datagram;
mod error;
mod frame;
mod messages;
mod versions;

pub use datagram::{
    client_datagram_hint, decode_client_datagram, decode_server_datagram, encode_client_datagram,
    encode_server_datagram, ClientDatagram, DatagramError, ServerDatagram,
    CLIENT_DATAGRAM_HEADER_LEN, DATAGRAM_KIND_PARTY_DATA, SERVER_DATAGRAM_HEADER_LEN,
};
pub use error::{CloseCode, ErrorBody, ErrorCode};
pub use frame::{
    decode_body, encode_frame, encode_frame_within, frame_body_len, frame_body_len_within,
    FrameError, FRAME_HEADER_LEN,
};
pub use messages::*;
pub use versions::{
    close_code_for_version, decode_client_frame, encode_server_frame, error_for_version,
    event_for_version,
};

/// The request id of a control frame that did not decode, when it is a
/// `Request` whose tag and id did (the command after them did not): so
/// the request can still be answered, with an error, under its own id.
pub fn request_id_hint(body: &[u8]) -> Option<u32> {
    // `ClientFrame::Request` is variant 1: a varint tag, then the id.
    let (tag, rest) = postcard::take_from_bytes::<u32>(body).ok()?;
    let (id, _) = postcard::take_from_bytes::<u32>(rest).ok()?;
    (tag == 1).then_some(id)
}

/// Version carried in `Hello`; bumped whenever a message, variant, field,
/// error code or reason is added that a strict decoder of the previous
/// version could not read (PROTOCOL.md, "Compatibility").
pub const PROTOCOL_VERSION: u16 = 3;

/// The oldest version a server of this build still serves: the one before
/// [`PROTOCOL_VERSION`]. Its clients are never sent anything they cannot
/// decode ([`encode_server_frame`], [`event_for_version`]).
pub const OLDEST_PROTOCOL_VERSION: u16 = 2;

/// Largest ready check message in bytes of UTF-8.
pub const MAX_READY_CHECK_MESSAGE_BYTES: usize = 256;

/// Shortest ready check, in milliseconds.
pub const READY_CHECK_MIN_TIMEOUT_MS: u64 = 5_000;

/// Longest ready check, in milliseconds.
pub const READY_CHECK_MAX_TIMEOUT_MS: u64 = 120_000;

/// Most members one member may mute in one party (a mute outlives the
/// muted member's seat, so that leaving and coming back does not undo it).
pub const MAX_MUTES: usize = 64;

/// Most users on one session's block list.
pub const MAX_BLOCKS: usize = 512;

/// TLS ALPN identifier; a connection without it is refused during the handshake.
pub const ALPN: &[u8] = b"partyline/1";

/// Largest frame body (after the 4-byte length) either side accepts. A
/// snapshot of a full party with maximal names, attributes, state and
/// properties is about 160 KiB (230 KiB with a full join queue).
pub const MAX_FRAME_SIZE: u32 = 256 * 1024;

/// Largest Welcome frame body, the one exception to [`MAX_FRAME_SIZE`]: a
/// resume that could not be replayed carries a snapshot of every party of
/// the session (up to 24 of them, each up to about 230 KiB with its join
/// requests), so the server caps parties per session to keep it within.
pub const MAX_WELCOME_SIZE: u32 = 8 * 1024 * 1024;

/// Most parties (seats and join requests) a server may allow one session,
/// so that a snapshot resume fits in one Welcome.
pub const MAX_PARTIES_PER_SESSION: usize = 24;

/// Largest party, leader included.
pub const MAX_PARTY_SIZE: u16 = 256;

/// Largest party label in bytes of UTF-8.
pub const MAX_LABEL_BYTES: usize = 2048;

/// Largest status text in bytes of UTF-8.
pub const MAX_STATUS_BYTES: usize = 128;

/// Party state: most keys, and most bytes of keys and values together.
pub const MAX_STATE_ENTRIES: usize = 32;
/// See [`MAX_STATE_ENTRIES`].
pub const MAX_STATE_BYTES: usize = 4096;

/// One member's attributes: most keys, and most bytes of keys and values.
pub const MAX_ATTRIBUTE_ENTRIES: usize = 16;
/// See [`MAX_ATTRIBUTE_ENTRIES`].
pub const MAX_ATTRIBUTE_BYTES: usize = 256;

/// Listing properties: most keys, and most bytes of keys and values.
pub const MAX_PROPERTY_ENTRIES: usize = 16;
/// See [`MAX_PROPERTY_ENTRIES`].
pub const MAX_PROPERTY_BYTES: usize = 1024;

/// Most bans one party keeps.
pub const MAX_BANS: usize = 256;

/// Most results one search returns.
pub const MAX_SEARCH_RESULTS: u16 = 100;

/// Join codes: this many characters ...
pub const JOIN_CODE_LEN: usize = 6;
/// ... from this alphabet: A-Z and 2-9 without the look-alikes I, L, O
/// (and 0, 1). 31^6 is about 887 million codes.
pub const JOIN_CODE_ALPHABET: &[u8; 31] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// Largest user id or username in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 128;

/// Largest payload of one reliable party-data message. Leaves room in a
/// frame for the event envelope and the sender's presence.
pub const MAX_RELIABLE_DATA: u32 = 32 * 1024;

/// Largest datagram payload announced by default. quinn's smallest
/// `max_datagram_size` before MTU discovery is about 1162 bytes; minus the
/// 41-byte server datagram header this leaves a safe margin on any path.
pub const DEFAULT_MAX_DATAGRAM_DATA: u32 = 1100;

/// Ask the peer to acknowledge after `threshold` ack-eliciting packets or
/// `max_delay`, whichever comes first (QUIC ACK frequency). Plain data here;
/// the server and the client each hand it to their QUIC stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckFrequency {
    /// Packets between acknowledgements.
    pub threshold: u32,
    /// Longest wait before an acknowledgement.
    pub max_delay: std::time::Duration,
}

impl AckFrequency {
    /// An ACK every 10 packets or 50 ms: what we measured as a candidate
    /// for party traffic (no better than QUIC's default, see BENCHMARKS.md).
    pub const PARTY: AckFrequency = AckFrequency {
        threshold: 10,
        max_delay: std::time::Duration::from_millis(50),
    };
}
