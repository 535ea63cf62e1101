//! The one framing function of the control stream: a little-endian `u32`
//! body length, then a postcard body of at most [`MAX_FRAME_SIZE`] bytes.

use super::MAX_FRAME_SIZE;
use serde::{Deserialize, Serialize};

/// Bytes of the length prefix before every frame body.
pub const FRAME_HEADER_LEN: usize = 4;

/// Why a frame could not be encoded, or its prefix or body not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// The body is longer than [`MAX_FRAME_SIZE`].
    #[error("frame body of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The body length that was announced or produced.
        len: usize,
        /// The largest body allowed.
        max: usize,
    },
    /// The body did not encode or decode (including trailing bytes); the text says why.
    #[error("frame body could not be decoded: {0}")]
    Malformed(String),
}

/// Appends one frame (length prefix + postcard body) to `out`.
pub fn encode_frame<T: Serialize>(message: &T, out: &mut Vec<u8>) -> Result<(), FrameError> {
    encode_frame_within(message, out, MAX_FRAME_SIZE)
}

/// [`encode_frame`] with another limit: [`crate::MAX_WELCOME_SIZE`] for the
/// one Welcome frame of a connection.
pub fn encode_frame_within<T: Serialize>(
    message: &T,
    out: &mut Vec<u8>,
    max: u32,
) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    let taken = std::mem::take(out);
    let mut filled = match postcard::to_extend(message, taken) {
        Ok(buf) => buf,
        Err(e) => return Err(FrameError::Malformed(e.to_string())),
    };
    let body_len = filled.len() - start - FRAME_HEADER_LEN;
    if body_len > max as usize {
        filled.truncate(start);
        *out = filled;
        return Err(FrameError::TooLarge {
            len: body_len,
            max: max as usize,
        });
    }
    // The prefix was reserved above, so the range always exists.
    if let Some(prefix) = filled.get_mut(start..start + FRAME_HEADER_LEN) {
        prefix.copy_from_slice(&(body_len as u32).to_le_bytes());
    }
    *out = filled;
    Ok(())
}

/// Reads a length prefix and checks it against the maximum before anything
/// is allocated, so a hostile prefix of gigabytes costs nothing.
pub fn frame_body_len(header: [u8; FRAME_HEADER_LEN]) -> Result<usize, FrameError> {
    frame_body_len_within(header, MAX_FRAME_SIZE)
}

/// [`frame_body_len`] with another limit (the Welcome's).
pub fn frame_body_len_within(
    header: [u8; FRAME_HEADER_LEN],
    max: u32,
) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(header) as usize;
    if len > max as usize {
        return Err(FrameError::TooLarge {
            len,
            max: max as usize,
        });
    }
    Ok(len)
}

/// Decodes one frame body. Trailing bytes are an error: a body means exactly
/// one message.
pub fn decode_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, FrameError> {
    match postcard::take_from_bytes(body) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(FrameError::Malformed(format!(
            "{} trailing bytes after the message",
            rest.len()
        ))),
        Err(e) => Err(FrameError::Malformed(e.to_string())),
    }
}
