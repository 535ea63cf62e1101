//! Frame I/O over quinn streams: the glue between `protocol`'s codecs and
//! the control stream, shared by the server and the client.

use crate::protocol::{encode_frame, frame_body_len, FrameError, FRAME_HEADER_LEN};
use quinn::{ReadExactError, RecvStream, SendStream};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ReadFrameError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the stream ended in the middle of a frame")]
    Truncated,
    #[error("reading the control stream failed: {0}")]
    Read(#[from] quinn::ReadError),
}

/// Reads one frame body into `body` (resized to fit). `Ok(false)` means
/// the peer finished the stream cleanly between frames.
pub async fn read_frame(recv: &mut RecvStream, body: &mut Vec<u8>) -> Result<bool, ReadFrameError> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(ReadExactError::FinishedEarly(0)) => return Ok(false),
        Err(ReadExactError::FinishedEarly(_)) => return Err(ReadFrameError::Truncated),
        Err(ReadExactError::ReadError(e)) => return Err(ReadFrameError::Read(e)),
    }
    let len = frame_body_len(header)?;
    body.clear();
    body.resize(len, 0);
    match recv.read_exact(body).await {
        Ok(()) => Ok(true),
        Err(ReadExactError::FinishedEarly(_)) => Err(ReadFrameError::Truncated),
        Err(ReadExactError::ReadError(e)) => Err(ReadFrameError::Read(e)),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteFrameError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("writing the control stream failed: {0}")]
    Write(#[from] quinn::WriteError),
}

/// Encodes and writes one frame.
pub async fn write_frame<T: Serialize>(
    send: &mut SendStream,
    message: &T,
) -> Result<(), WriteFrameError> {
    let mut buf = Vec::new();
    encode_frame(message, &mut buf)?;
    send.write_all(&buf).await?;
    Ok(())
}

/// Writes the one frame allowed above the usual limit: a Welcome, as a
/// client of `version` decodes it.
pub async fn write_welcome(
    send: &mut SendStream,
    message: &crate::protocol::ServerFrame,
    version: u16,
) -> Result<(), WriteFrameError> {
    let mut buf = Vec::new();
    let max = crate::protocol::MAX_WELCOME_SIZE;
    crate::protocol::encode_server_frame(message, version, &mut buf, max)?;
    send.write_all(&buf).await?;
    Ok(())
}
