//! A version 2 client at the wire level (a test that uses it declares
//! `support`, and `v2` from `support/v2.rs`, at its root): it says `Hello { version: 2 }`,
//! sends version 2's commands, and decodes every frame the server sends
//! with the frozen, strict version 2 types (`super::v2`). A frame it cannot
//! decode is kept as an error, so the test that reads it fails: what a
//! game that shipped against version 2 reads, this reads.

use crate::support::{TestServer, WAIT};
use crate::v2::{
    ClientFrame, Command, ErrorBody, Event, Hello, Identity, Reply, Resume, ServerFrame, Welcome,
};
use partyline::protocol::{decode_body, encode_frame};
use partyline::wire::read_frame;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Each waiting request's answer, or why a frame did not decode.
type Waiters = Arc<Mutex<HashMap<u32, oneshot::Sender<Result<Result<Reply, ErrorBody>, String>>>>>;

/// What the reader hands on: a frame that is not a response, or why a
/// frame did not decode as version 2.
type Read = Result<ServerFrame, String>;

pub struct V2Client {
    _endpoint: quinn::Endpoint,
    pub connection: quinn::Connection,
    send: tokio::sync::Mutex<quinn::SendStream>,
    waiters: Waiters,
    frames: mpsc::UnboundedReceiver<Read>,
    next_id: AtomicU32,
    /// The session event `seq` of the last event taken.
    pub last_event_seq: u64,
    pub welcome: Welcome,
    reader: JoinHandle<()>,
}

fn encoded<T: serde::Serialize>(message: &T) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_frame(message, &mut buf).unwrap();
    buf
}

impl V2Client {
    /// A new version 2 session for dev user `user` (named `{user}-name`).
    pub async fn connect(server: &TestServer, user: &str) -> V2Client {
        Self::hello(server, user, None)
            .await
            .unwrap_or_else(|refusal| panic!("{user} was refused: {refusal:?}"))
    }

    /// Takes a version 2 session back.
    pub async fn resume(
        server: &TestServer,
        user: &str,
        ticket: Resume,
    ) -> Result<V2Client, ErrorBody> {
        Self::hello(server, user, Some(ticket)).await
    }

    async fn hello(
        server: &TestServer,
        user: &str,
        resume: Option<Resume>,
    ) -> Result<V2Client, ErrorBody> {
        let seen = resume.as_ref().map(|ticket| ticket.last_event_seq);
        let (endpoint, connection) = server.raw().await;
        let (mut send, mut recv) = connection.open_bi().await.unwrap();
        let hello = ClientFrame::Hello(Hello {
            version: 2,
            identity: Identity::Dev {
                user_id: user.to_string(),
                username: format!("{user}-name"),
            },
            resume,
        });
        send.write_all(&encoded(&hello)).await.unwrap();
        let mut body = Vec::new();
        let read = tokio::time::timeout(WAIT, read_frame(&mut recv, &mut body))
            .await
            .expect("a Welcome within the limit");
        assert!(matches!(read, Ok(true)), "no first frame: {read:?}");
        let welcome = match decode_body::<ServerFrame>(&body).expect("a version 2 Welcome") {
            ServerFrame::Welcome(welcome) => welcome,
            ServerFrame::Refused(refusal) => return Err(refusal),
            other => panic!("expected Welcome or Refused, got {other:?}"),
        };
        let waiters: Waiters = Arc::default();
        let (tx, frames) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_frames(recv, waiters.clone(), tx));
        let last_event_seq = match (seen, &welcome.resumed) {
            (Some(seen), crate::v2::Resumed::Replayed { .. }) => seen,
            _ => welcome.last_event_seq,
        };
        Ok(V2Client {
            _endpoint: endpoint,
            connection,
            send: tokio::sync::Mutex::new(send),
            waiters,
            frames,
            next_id: AtomicU32::new(1),
            last_event_seq,
            welcome,
            reader,
        })
    }

    pub fn resume_ticket(&self) -> Resume {
        Resume {
            token: self.welcome.resume_token.clone(),
            last_event_seq: self.last_event_seq,
        }
    }

    /// Sends one version 2 `Request` and waits for its `Response`.
    pub async fn request(&self, command: Command) -> Result<Reply, ErrorBody> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.request_bytes(id, &encoded(&ClientFrame::Request { id, command }))
            .await
    }

    /// Sends a request's bytes as they are (a command version 2 has not).
    pub async fn request_bytes(&self, id: u32, bytes: &[u8]) -> Result<Reply, ErrorBody> {
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().unwrap().insert(id, tx);
        self.send.lock().await.write_all(bytes).await.unwrap();
        tokio::time::timeout(WAIT, rx)
            .await
            .expect("a response within the limit")
            .expect("the control stream is open")
            .unwrap_or_else(|error| panic!("a frame version 2 cannot decode: {error}"))
    }

    /// The next event frame, checked to number on from the last one with
    /// no gap.
    pub async fn next_event(&mut self) -> Event {
        let read = tokio::time::timeout(WAIT, self.frames.recv())
            .await
            .expect("an event within the limit")
            .expect("the control stream is open");
        match read.unwrap_or_else(|error| panic!("a frame version 2 cannot decode: {error}")) {
            ServerFrame::Event { seq, event } => {
                assert_eq!(seq, self.last_event_seq + 1, "a gap in event numbers");
                self.last_event_seq = seq;
                event
            }
            other => panic!("expected an event frame, got {other:?}"),
        }
    }

    /// Nothing has arrived (after an awaited round trip proved it would have).
    pub fn assert_no_pending(&mut self) {
        if let Ok(read) = self.frames.try_recv() {
            panic!("expected no frame, got {read:?}");
        }
    }
}

impl Drop for V2Client {
    fn drop(&mut self) {
        self.reader.abort();
        self.connection.close(0u32.into(), b"bye");
    }
}

/// Responses to their waiters (a response that does not decode fails the
/// waiting request); everything else, in order, to the frame queue.
async fn read_frames(
    mut recv: quinn::RecvStream,
    waiters: Waiters,
    frames: mpsc::UnboundedSender<Read>,
) {
    let mut body = Vec::new();
    while let Ok(true) = read_frame(&mut recv, &mut body).await {
        match decode_body::<ServerFrame>(&body) {
            Ok(ServerFrame::Response { id, result }) => {
                if let Some(waiter) = waiters.lock().unwrap().remove(&id) {
                    let _ = waiter.send(Ok(result));
                }
            }
            Ok(other) => {
                let _ = frames.send(Ok(other));
            }
            Err(error) => {
                let error = format!("{error} in {body:02x?}");
                // It may have been a response: every waiting request fails.
                for (_, waiter) in waiters.lock().unwrap().drain() {
                    let _ = waiter.send(Err(error.clone()));
                }
                let _ = frames.send(Err(error));
            }
        }
    }
}
