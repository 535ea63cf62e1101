//! The background side of a client: reads the control stream and the
//! datagrams of the current connection, and when the connection is lost,
//! reconnects with backoff and resumes the session.

use super::connection::{establish, Established};
use super::{ClientError, ClientEvent, DisconnectReason, Inner, PartyData};
use crate::protocol::{
    decode_body, decode_server_datagram, CloseCode, ErrorCode, Event, Resumed, ServerFrame,
};
use crate::wire::read_frame;
use quinn::{Connection, RecvStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LONGEST_RETRY: Duration = Duration::from_secs(2);

pub(super) async fn supervise(
    inner: Arc<Inner>,
    events: mpsc::Sender<ClientEvent>,
    mut connection: Connection,
    mut recv: RecvStream,
) {
    loop {
        let datagrams = tokio::spawn(read_datagrams(
            connection.clone(),
            events.clone(),
            inner.clone(),
        ));
        let reading = read_control(&inner, &mut recv, &events).await;
        datagrams.abort();
        inner.fail_pending();
        if reading.is_err() {
            return; // the application dropped its events: nobody is listening
        }
        if connection.close_reason().is_none() {
            // The stream ended but the connection did not: end it, so the
            // session is not left half open.
            connection.close((CloseCode::Normal as u32).into(), b"control stream ended");
        }
        let reason = DisconnectReason::from(connection.closed().await);
        let reconnect = inner.config.auto_reconnect
            && !inner.closing.load(Ordering::Acquire)
            && may_come_back(&reason);
        if events
            .send(ClientEvent::Disconnected(reason))
            .await
            .is_err()
            || !reconnect
        {
            return;
        }
        match reconnect_with_backoff(&inner).await {
            Ok((established, event)) => {
                connection = established.connection.clone();
                recv = inner.install(established);
                if events.send(event).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                let _ = events
                    .send(ClientEvent::ReconnectFailed(error.to_string()))
                    .await;
                return;
            }
        }
    }
}

/// A lost network or a server that cut a slow reader may take the session
/// back; a shutdown, a refusal or a takeover by another connection may not.
fn may_come_back(reason: &DisconnectReason) -> bool {
    match reason {
        DisconnectReason::ConnectionLost(_) => true,
        DisconnectReason::ClosedByServer { code, .. } => *code == CloseCode::SlowConsumer as u64,
        DisconnectReason::ServerShutdown | DisconnectReason::ClosedLocally => false,
    }
}

async fn reconnect_with_backoff(inner: &Inner) -> Result<(Established, ClientEvent), ClientError> {
    let deadline = Instant::now() + inner.config.reconnect_for;
    let mut delay = FIRST_RETRY;
    loop {
        let error =
            match establish(&inner.endpoint, &inner.config, Some(inner.resume_ticket())).await {
                Ok(established) => {
                    // Replayed events follow and carry their own numbers; after
                    // snapshots, numbering goes on from the Welcome's.
                    if !matches!(established.welcome.resumed, Resumed::Replayed { .. }) {
                        inner
                            .last_event_seq
                            .store(established.welcome.last_event_seq, Ordering::Release);
                    }
                    let event = ClientEvent::Resumed(established.welcome.resumed.clone());
                    return Ok((established, event));
                }
                Err(ClientError::Refused(refusal)) if refusal.code == ErrorCode::ResumeRefused => {
                    match establish(&inner.endpoint, &inner.config, None).await {
                        Ok(established) => {
                            inner
                                .last_event_seq
                                .store(established.welcome.last_event_seq, Ordering::Release);
                            let event = ClientEvent::SessionLost {
                                new_session: established.welcome.session_id,
                            };
                            return Ok((established, event));
                        }
                        Err(error) => error,
                    }
                }
                // Identity or version refused: trying again will not help.
                Err(error @ ClientError::Refused(_)) => return Err(error),
                Err(error) => error,
            };
        if inner.closing.load(Ordering::Acquire) || Instant::now() + delay > deadline {
            return Err(error);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(LONGEST_RETRY);
    }
}

/// Reads frames until the stream ends. `Err` means the application dropped
/// its event receiver.
async fn read_control(
    inner: &Inner,
    recv: &mut RecvStream,
    events: &mpsc::Sender<ClientEvent>,
) -> Result<(), ()> {
    let mut body = Vec::new();
    while let Ok(true) = read_frame(recv, &mut body).await {
        let frame = match decode_body::<ServerFrame>(&body) {
            Ok(frame) => frame,
            Err(error) => {
                tracing::warn!(%error, "undecodable frame from the server");
                continue;
            }
        };
        let event = match frame {
            ServerFrame::Response { id, result } => {
                inner.answer(id, result);
                continue;
            }
            ServerFrame::Event { seq, event } => {
                inner.last_event_seq.store(seq, Ordering::Release);
                match event {
                    Event::Data {
                        party_id,
                        sender,
                        op_code,
                        data,
                    } => ClientEvent::Data(PartyData {
                        party_id,
                        sender: sender.session_id,
                        op_code,
                        data,
                        reliable: true,
                    }),
                    event => ClientEvent::Event { seq, event },
                }
            }
            ServerFrame::FrameError(error) => ClientEvent::FrameError(error),
            ServerFrame::Welcome(_) | ServerFrame::Refused(_) => continue,
        };
        // Waiting here is back-pressure: an application that stops polling
        // stops reading, and the server sees a slow consumer.
        events.send(event).await.map_err(drop)?;
    }
    Ok(())
}

async fn read_datagrams(
    connection: Connection,
    events: mpsc::Sender<ClientEvent>,
    inner: Arc<Inner>,
) {
    while let Ok(datagram) = connection.read_datagram().await {
        let Ok(data) = decode_server_datagram(datagram) else {
            continue;
        };
        let event = ClientEvent::Data(PartyData {
            party_id: data.party_id,
            sender: data.sender,
            op_code: data.op_code,
            data: data.payload,
            reliable: false,
        });
        // Unreliable data is worth less than blocking for: drop if full.
        if events.try_send(event).is_err() {
            inner.dropped_datagrams.fetch_add(1, Ordering::Relaxed);
        }
    }
}
