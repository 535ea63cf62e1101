//! One client connection: handshake (Hello -> Welcome), then three loops
//! that live as long as the connection: control frames in, outbox out,
//! datagrams in.

use super::commands;
use super::session::{write_outbox, Outbound, SessionLink, SessionRef};
use super::{AuthMode, Shared};
use crate::auth::{unix_now, validate_name, verify_token};
use crate::protocol::{
    decode_body, decode_client_datagram, encode_server_datagram, ClientFrame, CloseCode, ErrorBody,
    ErrorCode, Event, Hello, Identity, Presence, ServerFrame, Welcome, PROTOCOL_VERSION,
};
use crate::wire::{read_frame, write_frame, ReadFrameError};
use quinn::{Connection, RecvStream, SendStream};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tracing::Instrument;
use uuid::Uuid;

pub(crate) async fn serve(shared: Arc<Shared>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    let connection = match timeout(shared.config.hello_timeout, incoming).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => {
            tracing::debug!(%remote, %error, "handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%remote, "handshake timed out");
            return;
        }
    };
    let span = tracing::info_span!("session", %remote, session = tracing::field::Empty, user = tracing::field::Empty);
    run_session(shared, connection).instrument(span).await;
}

async fn run_session(shared: Arc<Shared>, connection: Connection) {
    let Some((send, mut recv, presence)) = handshake(&shared, &connection).await else {
        return;
    };
    let span = tracing::Span::current();
    span.record("session", tracing::field::display(presence.session_id));
    span.record("user", tracing::field::display(&presence.user_id));
    tracing::info!(username = %presence.username, "session started");

    let (outbox_tx, outbox_rx) = mpsc::channel(shared.config.outbox_capacity);
    let session: SessionRef = Arc::new(SessionLink::new(presence, connection.clone(), outbox_tx));
    let writer = tokio::spawn(write_outbox(send, outbox_rx).in_current_span());
    let datagrams = tokio::spawn(datagram_loop(shared.clone(), session.clone()).in_current_span());

    control_loop(&shared, &session, &mut recv).await;
    // Idempotent: a no-op when the peer or a loop already closed it.
    connection.close((CloseCode::Normal as u32).into(), b"session ended");

    datagrams.abort();
    commands::end_session(&shared, &session);
    // Dropping our handle lets the writer finish once the table's are gone too.
    drop(session);
    let reason = connection.closed().await;
    writer.abort();
    tracing::info!(%reason, "session ended");
}

/// Reads Hello and answers Welcome or Refused. `None` means the connection
/// is done (refused, or lost before Hello).
async fn handshake(
    shared: &Shared,
    connection: &Connection,
) -> Option<(SendStream, RecvStream, Presence)> {
    let limit = shared.config.hello_timeout;
    let (mut send, mut recv) = match timeout(limit, connection.accept_bi()).await {
        Ok(Ok(streams)) => streams,
        Ok(Err(_)) => return None,
        Err(_) => {
            connection.close(
                (CloseCode::ProtocolViolation as u32).into(),
                b"no control stream opened",
            );
            return None;
        }
    };
    let mut body = Vec::new();
    let hello = match timeout(limit, read_frame(&mut recv, &mut body)).await {
        Err(_) => Err(ErrorBody::new(
            ErrorCode::ProtocolViolation,
            "no Hello within the time limit",
        )),
        Ok(Ok(true)) => match decode_body::<ClientFrame>(&body) {
            Ok(ClientFrame::Hello(hello)) => Ok(hello),
            Ok(ClientFrame::Request { .. }) => Err(ErrorBody::new(
                ErrorCode::ProtocolViolation,
                "the first frame must be Hello",
            )),
            Err(e) => Err(ErrorBody::new(ErrorCode::MalformedFrame, e.to_string())),
        },
        Ok(Ok(false)) => return None,
        Ok(Err(ReadFrameError::Read(_))) => return None,
        Ok(Err(e)) => Err(ErrorBody::new(ErrorCode::MalformedFrame, e.to_string())),
    };
    let admitted = hello.and_then(|hello| admit(shared, hello));
    match admitted {
        Ok(presence) => {
            let welcome = ServerFrame::Welcome(Welcome {
                session_id: presence.session_id,
                presence: presence.clone(),
                resume_token: Uuid::new_v4().simple().to_string(),
                limits: shared.limits.clone(),
            });
            write_frame(&mut send, &welcome).await.ok()?;
            Some((send, recv, presence))
        }
        Err(refusal) => {
            tracing::info!(code = %refusal.code, message = %refusal.message, "hello refused");
            let _ = write_frame(&mut send, &ServerFrame::Refused(refusal.clone())).await;
            let _ = send.finish();
            // Give the Refused frame a moment to arrive before the close
            // discards it; the close reason repeats the message regardless.
            let _ = timeout(std::time::Duration::from_millis(500), send.stopped()).await;
            connection.close(
                (CloseCode::HandshakeRefused as u32).into(),
                refusal.to_string().as_bytes(),
            );
            None
        }
    }
}

/// Checks version and identity; returns the new session's presence.
fn admit(shared: &Shared, hello: Hello) -> Result<Presence, ErrorBody> {
    if hello.version != PROTOCOL_VERSION {
        return Err(ErrorBody::new(
            ErrorCode::VersionMismatch,
            format!(
                "this server speaks protocol version {PROTOCOL_VERSION}; the client sent version {}",
                hello.version
            ),
        ));
    }
    let unauthenticated = |message: String| ErrorBody::new(ErrorCode::Unauthenticated, message);
    let (user_id, username) = match (&shared.config.auth, hello.identity) {
        (AuthMode::Dev, Identity::Dev { user_id, username }) => {
            validate_name("user_id", &user_id).map_err(unauthenticated)?;
            validate_name("username", &username).map_err(unauthenticated)?;
            (user_id, username)
        }
        (AuthMode::Dev, Identity::Token { .. }) => {
            return Err(unauthenticated(
                "this server runs in dev mode without a token secret; send a Dev identity".into(),
            ))
        }
        (AuthMode::Token { .. }, Identity::Dev { .. }) => {
            return Err(unauthenticated(
                "this server requires a signed token; dev identities are refused".into(),
            ))
        }
        (AuthMode::Token { secret }, Identity::Token { token }) => {
            let claims = verify_token(secret, &token, unix_now())
                .map_err(|e| unauthenticated(e.to_string()))?;
            (claims.user_id, claims.username)
        }
    };
    Ok(Presence {
        user_id,
        username,
        session_id: Uuid::new_v4(),
    })
}

async fn control_loop(shared: &Shared, session: &SessionRef, recv: &mut RecvStream) {
    let mut body = Vec::new();
    loop {
        match read_frame(recv, &mut body).await {
            Ok(true) => {}
            Ok(false) => {
                // The client finished its side: a clean goodbye.
                session.connection.close(
                    (CloseCode::Normal as u32).into(),
                    b"control stream finished",
                );
                return;
            }
            Err(ReadFrameError::Read(_)) => return,
            Err(error) => {
                // The stream can't be resynchronised after a bad length.
                tracing::info!(%error, "closing: unreadable control stream");
                let code = match error {
                    ReadFrameError::Frame(crate::protocol::FrameError::TooLarge { .. }) => {
                        CloseCode::FrameTooLarge
                    }
                    _ => CloseCode::ProtocolViolation,
                };
                session
                    .connection
                    .close((code as u32).into(), error.to_string().as_bytes());
                return;
            }
        }
        match decode_body::<ClientFrame>(&body) {
            Ok(ClientFrame::Request { id, command }) => {
                commands::handle(shared, session, id, command)
            }
            Ok(ClientFrame::Hello(_)) => session.push(Outbound::FrameError(ErrorBody::new(
                ErrorCode::ProtocolViolation,
                "Hello was already received on this session",
            ))),
            Err(error) => {
                tracing::debug!(%error, "malformed frame");
                session.push(Outbound::FrameError(ErrorBody::new(
                    ErrorCode::MalformedFrame,
                    error.to_string(),
                )));
            }
        }
    }
}

/// The hot path: one datagram in, the other members' datagrams out. The
/// shard is read-locked only to collect recipients; the outgoing datagram
/// is built once and shared (`Bytes` clones are reference counts).
async fn datagram_loop(shared: Arc<Shared>, session: SessionRef) {
    let me = session.session_id();
    let max_payload = shared.limits.max_datagram_data as usize;
    let mut recipients: Vec<SessionRef> = Vec::new();
    while let Ok(datagram) = session.connection.read_datagram().await {
        let refused = |party_id, op_code, code, message: String| {
            session.push(Outbound::Event(Event::DataRefused {
                party_id,
                op_code,
                error: ErrorBody::new(code, message),
            }));
        };
        let data = match decode_client_datagram(datagram) {
            Ok(data) => data,
            Err(error) => {
                refused(Uuid::nil(), 0, ErrorCode::MalformedFrame, error.to_string());
                continue;
            }
        };
        if data.payload.len() > max_payload {
            let message = format!(
                "datagram payload of {} bytes exceeds the limit of {max_payload}",
                data.payload.len()
            );
            refused(
                data.party_id,
                data.op_code,
                ErrorCode::PayloadTooLarge,
                message,
            );
            continue;
        }
        let checked = shared.table.read(data.party_id, |party| {
            party.data_recipients(me, &mut recipients).map(drop)
        });
        if let Err(error) = checked {
            recipients.clear();
            refused(data.party_id, data.op_code, error.code(), error.to_string());
            continue;
        }
        let outgoing = encode_server_datagram(data.party_id, me, data.op_code, &data.payload);
        for recipient in recipients.drain(..) {
            // A full send buffer drops the oldest datagram: stale game state
            // is worth less than fresh.
            let _ = recipient.connection.send_datagram(outgoing.clone());
        }
    }
}
