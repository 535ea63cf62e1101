//! Frames over the control stream: a 4-byte length, then a postcard body.

use crate::protocol::{
    encode_frame, frame_body_len_within, ErrorBody, ErrorCode, FrameError, FRAME_HEADER_LEN,
    MAX_FRAME_SIZE,
};
use crate::ClientError;
use quinn::{ReadExactError, RecvStream, SendStream};
use serde::Serialize;

/// Reads one frame body into `body`. `Ok(false)`: the server finished the
/// stream between frames. Any error ends the connection's session.
pub(crate) async fn read_frame(recv: &mut RecvStream, body: &mut Vec<u8>) -> Result<bool, String> {
    read_frame_within(recv, body, MAX_FRAME_SIZE).await
}

/// [`read_frame`] with another limit: the Welcome's, for the first frame.
pub(crate) async fn read_frame_within(
    recv: &mut RecvStream,
    body: &mut Vec<u8>,
    max: u32,
) -> Result<bool, String> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(ReadExactError::FinishedEarly(0)) => return Ok(false),
        Err(error) => return Err(error.to_string()),
    }
    let len = frame_body_len_within(header, max).map_err(|e| e.to_string())?;
    body.clear();
    body.resize(len, 0);
    recv.read_exact(body).await.map_err(|e| e.to_string())?;
    Ok(true)
}

/// Encodes one frame, refusing at once one the server would not take
/// (over the frame limit): it would cut the session for it.
pub(crate) fn encode<T: Serialize>(
    message: &T,
    what: &'static str,
) -> Result<Vec<u8>, ClientError> {
    let mut frame = Vec::new();
    encode_frame(message, &mut frame).map_err(|error| match error {
        FrameError::TooLarge { len, max } => ClientError::Refused(ErrorBody::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the {what} is {len} bytes encoded, above the protocol's frame limit of {max} \
                 bytes (MAX_FRAME_SIZE): nothing was sent; send less (shorter text, fewer keys \
                 or ids)"
            ),
        )),
        FrameError::Malformed(why) => {
            ClientError::Protocol(format!("the {what} could not be encoded: {why}"))
        }
    })?;
    Ok(frame)
}

/// Writes one encoded frame.
pub(crate) async fn write_frame(send: &mut SendStream, frame: &[u8]) -> Result<(), String> {
    send.write_all(frame).await.map_err(|e| e.to_string())
}
