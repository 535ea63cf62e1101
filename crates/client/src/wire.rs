//! Frames over the control stream: a 4-byte length, then a postcard body.

use crate::protocol::{
    encode_frame, frame_body_len_within, FrameError, FRAME_HEADER_LEN, MAX_FRAME_SIZE,
};
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

/// Encodes and writes one frame.
pub(crate) async fn write_frame<T: Serialize>(
    send: &mut SendStream,
    message: &T,
) -> Result<(), String> {
    let mut buf = Vec::new();
    encode_frame(message, &mut buf).map_err(|e: FrameError| e.to_string())?;
    send.write_all(&buf).await.map_err(|e| e.to_string())
}
