//! A session's handle as the rest of the server sees it: who it is, its
//! bounded outbox of control-stream messages, its connection for
//! datagrams, and the parties it is in.

use crate::party::Link;
use crate::protocol::{
    encode_frame, CloseCode, ErrorBody, Event, PartyId, Presence, Reply, ServerFrame, SessionId,
};
use quinn::{Connection, SendStream};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::mpsc;

/// What goes out on a session's control stream, in order.
#[derive(Debug)]
pub(crate) enum Outbound {
    Response {
        id: u32,
        result: Result<Reply, ErrorBody>,
    },
    Event(Event),
    FrameError(ErrorBody),
}

#[derive(Debug)]
pub(crate) struct SessionLink {
    pub(crate) presence: Presence,
    pub(crate) connection: Connection,
    outbox: mpsc::Sender<Outbound>,
    /// Parties where this session has a seat or a join request; kept by the
    /// party table under its shard locks.
    parties: Mutex<HashSet<PartyId>>,
}

/// The link type stored in the party table.
pub(crate) type SessionRef = Arc<SessionLink>;

impl SessionLink {
    pub(crate) fn new(
        presence: Presence,
        connection: Connection,
        outbox: mpsc::Sender<Outbound>,
    ) -> Self {
        SessionLink {
            presence,
            connection,
            outbox,
            parties: Mutex::new(HashSet::new()),
        }
    }

    pub(crate) fn session_id(&self) -> SessionId {
        self.presence.session_id
    }

    /// Queues a message without waiting. A full outbox means the client is
    /// not reading its control stream: it is cut off rather than allowed to
    /// hold server memory or stall the party.
    pub(crate) fn push(&self, message: Outbound) {
        match self.outbox.try_send(message) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(session = %self.session_id(), "slow consumer: outbox full, closing");
                self.connection.close(
                    (CloseCode::SlowConsumer as u32).into(),
                    b"slow consumer: control stream not read",
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Takes the set of parties, for leaving them all when the session ends.
    pub(crate) fn take_parties(&self) -> HashSet<PartyId> {
        std::mem::take(&mut *self.parties.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Link for SessionRef {
    fn session_id(&self) -> SessionId {
        self.presence.session_id
    }

    fn attach(&self, party: PartyId) {
        self.parties
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(party);
    }

    fn detach(&self, party: PartyId) {
        self.parties
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&party);
    }
}

/// Drains the outbox onto the control stream, numbering events from 1.
/// Whatever is queued is coalesced into one write, so a burst of events
/// costs one stream write rather than one per event.
pub(crate) async fn write_outbox(mut send: SendStream, mut outbox: mpsc::Receiver<Outbound>) {
    const BATCH_BYTES: usize = 64 * 1024;
    let mut event_seq: u64 = 0;
    let mut buf = Vec::with_capacity(4096);
    while let Some(first) = outbox.recv().await {
        buf.clear();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            let frame = match message {
                Outbound::Response { id, result } => ServerFrame::Response { id, result },
                Outbound::Event(event) => {
                    event_seq += 1;
                    ServerFrame::Event {
                        seq: event_seq,
                        event,
                    }
                }
                Outbound::FrameError(error) => ServerFrame::FrameError(error),
            };
            if let Err(error) = encode_frame(&frame, &mut buf) {
                // Only a message above the frame limit can fail; it is a bug
                // in a limit check, not the client's fault: log it and go on
                // without leaving a gap in the event numbers.
                if matches!(frame, ServerFrame::Event { .. }) {
                    event_seq -= 1;
                }
                tracing::error!(%error, "could not encode an outgoing frame");
            }
            if buf.len() < BATCH_BYTES {
                next = outbox.try_recv().ok();
            }
        }
        if send.write_all(&buf).await.is_err() {
            return;
        }
    }
    let _ = send.finish();
}
