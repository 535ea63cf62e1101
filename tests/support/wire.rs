//! A wire-level test client: a bare QUIC connection that says Hello and
//! sends `Request`s itself, and hands back every `ServerFrame` as sent, with
//! the sequence numbers the SDK hides by design (a party's `seq` in replies
//! and events, the session's event `seq`). For protocol tests only; games
//! and every other test use the SDK.

use super::{frame, TestServer, WAIT};
use partyline::protocol::{
    decode_body, ClientFrame, CloseCode, Command, ErrorBody, Event, Hello, Identity, JoinOutcome,
    PartyId, PartySnapshot, Presence, Reply, Resume, ServerFrame, SessionId, Welcome,
    PROTOCOL_VERSION,
};
use partyline::wire::read_frame;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

type Waiters = Arc<Mutex<HashMap<u32, oneshot::Sender<Result<Reply, ErrorBody>>>>>;

pub struct WireClient {
    _endpoint: quinn::Endpoint,
    pub connection: quinn::Connection,
    send: tokio::sync::Mutex<quinn::SendStream>,
    waiters: Waiters,
    /// Every frame that is not a response, in the order the server sent it.
    frames: mpsc::UnboundedReceiver<ServerFrame>,
    next_id: AtomicU32,
    /// The session event `seq` of the last event taken with `next_event`.
    last_event_seq: u64,
    welcome: Welcome,
    reader: JoinHandle<()>,
}

impl WireClient {
    /// A new session for dev user `user` (named `{user}-name`, as the SDK
    /// clients of `TestServer::config` are).
    pub async fn connect(server: &TestServer, user: &str) -> WireClient {
        Self::hello(server, user, None)
            .await
            .unwrap_or_else(|refusal| panic!("{user} was refused: {refusal}"))
    }

    /// Takes a session back with a resume ticket.
    pub async fn resume(
        server: &TestServer,
        user: &str,
        ticket: Resume,
    ) -> Result<WireClient, ErrorBody> {
        Self::hello(server, user, Some(ticket)).await
    }

    async fn hello(
        server: &TestServer,
        user: &str,
        resume: Option<Resume>,
    ) -> Result<WireClient, ErrorBody> {
        let resuming = resume.as_ref().map(|ticket| ticket.last_event_seq);
        let (endpoint, connection) = server.raw().await;
        let (mut send, mut recv) = connection.open_bi().await.unwrap();
        let hello = ClientFrame::Hello(Hello {
            version: PROTOCOL_VERSION,
            identity: Identity::Dev {
                user_id: user.to_string(),
                username: format!("{user}-name"),
            },
            resume,
        });
        send.write_all(&frame(&hello)).await.unwrap();
        let welcome = match read_server_frame(&mut recv).await {
            Some(ServerFrame::Welcome(welcome)) => welcome,
            Some(ServerFrame::Refused(refusal)) => return Err(refusal),
            other => panic!("expected Welcome or Refused, got {other:?}"),
        };
        let waiters: Waiters = Arc::default();
        let (tx, frames) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_frames(recv, waiters.clone(), tx));
        let last_event_seq = match (resuming, &welcome.resumed) {
            // Replayed events follow, numbered on from what the client saw.
            (Some(seen), partyline::protocol::Resumed::Replayed { .. }) => seen,
            _ => welcome.last_event_seq,
        };
        Ok(WireClient {
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

    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    pub fn session_id(&self) -> SessionId {
        self.welcome.session_id
    }

    pub fn presence(&self) -> Presence {
        self.welcome.presence.clone()
    }

    /// What a client that has read every event so far resumes with.
    pub fn resume_ticket(&self) -> Resume {
        Resume {
            token: self.welcome.resume_token.clone(),
            last_event_seq: self.last_event_seq,
        }
    }

    /// Sends one `Request` and waits for its `Response`.
    pub async fn request(&self, command: Command) -> Result<Reply, ErrorBody> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().unwrap().insert(id, tx);
        let bytes = frame(&ClientFrame::Request { id, command });
        self.send.lock().await.write_all(&bytes).await.unwrap();
        tokio::time::timeout(WAIT, rx)
            .await
            .expect("a response within the limit")
            .expect("the control stream is open")
    }

    /// The next event frame: the session's event `seq` and the event.
    pub async fn next_event(&mut self) -> (u64, Event) {
        let frame = tokio::time::timeout(WAIT, self.frames.recv())
            .await
            .expect("an event within the limit")
            .expect("the control stream is open");
        match frame {
            ServerFrame::Event { seq, event } => {
                self.last_event_seq = seq;
                (seq, event)
            }
            other => panic!("expected an event frame, got {other:?}"),
        }
    }

    /// The next event, without its session `seq`.
    pub async fn next_party_event(&mut self) -> Event {
        self.next_event().await.1
    }

    /// Nothing has arrived (after an awaited round trip proved it would have).
    pub fn assert_no_pending(&mut self) {
        if let Ok(frame) = self.frames.try_recv() {
            panic!("expected no frame, got {frame:?}");
        }
    }

    pub async fn create_party(
        &self,
        open: bool,
        max_size: u16,
        label: &str,
    ) -> Result<PartySnapshot, ErrorBody> {
        party(
            self.request(Command::CreateParty {
                open,
                max_size,
                label: label.to_string(),
                invite_policy: Default::default(),
                state: Default::default(),
                leader_policy: Default::default(),
            })
            .await,
        )
    }

    pub async fn join_party(&self, party_id: PartyId) -> Result<JoinOutcome, ErrorBody> {
        match self.request(Command::JoinParty { party_id }).await? {
            Reply::Join(outcome) => Ok(outcome),
            other => panic!("expected a join outcome, got {other:?}"),
        }
    }

    pub async fn get_party(&self, party_id: PartyId) -> Result<PartySnapshot, ErrorBody> {
        party(self.request(Command::GetParty { party_id }).await)
    }

    pub async fn update_party(
        &self,
        party_id: PartyId,
        open: Option<bool>,
        label: Option<String>,
        max_size: Option<u16>,
    ) -> Result<PartySnapshot, ErrorBody> {
        party(
            self.request(Command::Update {
                party_id,
                open,
                label,
                max_size,
                invite_policy: None,
                leader_policy: None,
            })
            .await,
        )
    }

    pub async fn list_join_requests(&self, party_id: PartyId) -> Result<Vec<Presence>, ErrorBody> {
        match self.request(Command::ListJoinRequests { party_id }).await? {
            Reply::JoinRequests { requests, .. } => Ok(requests),
            other => panic!("expected join requests, got {other:?}"),
        }
    }

    pub async fn leave(&self, party_id: PartyId) -> Result<(), ErrorBody> {
        done(self.request(Command::Leave { party_id }).await)
    }

    pub async fn accept(&self, party_id: PartyId, user_id: &str) -> Result<(), ErrorBody> {
        let user_id = user_id.to_string();
        done(
            self.request(Command::AcceptJoinRequest { party_id, user_id })
                .await,
        )
    }

    pub async fn kick(&self, party_id: PartyId, user_id: &str) -> Result<(), ErrorBody> {
        let user_id = user_id.to_string();
        done(self.request(Command::Kick { party_id, user_id }).await)
    }

    pub async fn reject(&self, party_id: PartyId, user_id: &str) -> Result<(), ErrorBody> {
        let user_id = user_id.to_string();
        done(self.request(Command::Reject { party_id, user_id }).await)
    }

    pub async fn promote(&self, party_id: PartyId, user_id: &str) -> Result<(), ErrorBody> {
        let user_id = user_id.to_string();
        done(self.request(Command::Promote { party_id, user_id }).await)
    }

    pub async fn close_party(&self, party_id: PartyId) -> Result<(), ErrorBody> {
        done(self.request(Command::Close { party_id }).await)
    }
}

impl Drop for WireClient {
    fn drop(&mut self) {
        self.reader.abort();
        self.connection
            .close((CloseCode::Normal as u32).into(), b"bye");
    }
}

fn party(reply: Result<Reply, ErrorBody>) -> Result<PartySnapshot, ErrorBody> {
    match reply? {
        Reply::Party(snapshot) => Ok(snapshot),
        other => panic!("expected a party snapshot, got {other:?}"),
    }
}

fn done(reply: Result<Reply, ErrorBody>) -> Result<(), ErrorBody> {
    match reply? {
        Reply::Done => Ok(()),
        other => panic!("expected Done, got {other:?}"),
    }
}

/// One frame, or `None` when the stream ended.
async fn read_server_frame(recv: &mut quinn::RecvStream) -> Option<ServerFrame> {
    let mut body = Vec::new();
    let read = tokio::time::timeout(WAIT, read_frame(recv, &mut body))
        .await
        .expect("a frame within the limit");
    match read {
        Ok(true) => Some(decode_body(&body).expect("a frame the tests can decode")),
        Ok(false) | Err(_) => None,
    }
}

/// Routes responses to their waiters and everything else, in order, to
/// the client's frame queue, until the stream ends.
async fn read_frames(
    mut recv: quinn::RecvStream,
    waiters: Waiters,
    frames: mpsc::UnboundedSender<ServerFrame>,
) {
    let mut body = Vec::new();
    while let Ok(true) = read_frame(&mut recv, &mut body).await {
        match decode_body::<ServerFrame>(&body).expect("a frame the tests can decode") {
            ServerFrame::Response { id, result } => {
                if let Some(waiter) = waiters.lock().unwrap().remove(&id) {
                    let _ = waiter.send(result);
                }
            }
            other => {
                let _ = frames.send(other);
            }
        }
    }
}
