//! The Rust client SDK: connect, one async method per command, and a stream
//! of events that a game loop can poll without blocking.
//!
//! ```no_run
//! # async fn example() -> Result<(), partyline::client::ClientError> {
//! use partyline::client::{Client, ClientConfig};
//! let certs = partyline::certs::load_certs("certs/cert.pem".as_ref()).expect("dev cert");
//! let config = ClientConfig::dev("127.0.0.1:7350".parse().unwrap(), certs, "user-1", "Ana");
//! let (client, mut events) = Client::connect(config).await?;
//! let party = client.create_party(true, 4, "").await?;
//! while let Some(event) = events.try_next() { /* once per frame */ }
//! # Ok(()) }
//! ```

mod config;
mod connection;
mod error;
mod supervisor;

pub use config::ClientConfig;
pub use error::{ClientError, DisconnectReason};

use crate::protocol::{
    encode_client_datagram, ClientFrame, CloseCode, Command, ErrorBody, ErrorCode, Event,
    JoinOutcome, PartyId, PartySnapshot, Presence, Reply, Resume, Resumed, SessionId, Welcome,
};
use crate::wire::write_frame;
use bytes::Bytes;
pub use connection::shared_endpoint;
use connection::{establish, Established};
use quinn::{Connection, Endpoint, RecvStream, SendStream};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Party data from another member, by datagram or reliably.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartyData {
    pub party_id: PartyId,
    /// The sender's session id; its presence is in the party's snapshot and
    /// presence events.
    pub sender: SessionId,
    pub op_code: i64,
    pub data: Bytes,
    /// True when it came on the reliable control stream.
    pub reliable: bool,
}

/// Everything the server (or the SDK itself) tells the application.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientEvent {
    /// A party event; `seq` is this session's event counter (from 1).
    Event { seq: u64, event: Event },
    /// Party data from another member.
    Data(PartyData),
    /// The server could not decode a frame this client sent.
    FrameError(ErrorBody),
    /// The connection ended. With auto-reconnect on and a reason that allows
    /// it (a network loss), the SDK is now reconnecting and `Resumed`,
    /// `SessionLost` or `ReconnectFailed` follows; otherwise nothing follows.
    Disconnected(DisconnectReason),
    /// The session is back on a new connection, seats and all. With
    /// `Replayed { count }` the missed events follow at once, in order;
    /// with `Snapshots` the state is in the snapshots (drop party events
    /// whose party seq is not above a snapshot's).
    Resumed(Resumed),
    /// The grace window was missed: the old session and its seats are gone,
    /// and a new session was started.
    SessionLost { new_session: SessionId },
    /// The SDK gave up reconnecting (see `ClientConfig::reconnect_for`).
    ReconnectFailed(String),
}

/// The receiving half of a client's events.
pub struct Events {
    rx: mpsc::Receiver<ClientEvent>,
}

impl Events {
    /// Waits for the next event; `None` once the client is closed for good.
    pub async fn next(&mut self) -> Option<ClientEvent> {
        self.rx.recv().await
    }

    /// The next event if one is waiting: for game loops that must not block.
    pub fn try_next(&mut self) -> Option<ClientEvent> {
        self.rx.try_recv().ok()
    }
}

type Pending = Mutex<HashMap<u32, oneshot::Sender<Result<Reply, ErrorBody>>>>;

/// The connection carrying the session now; replaced on resume.
#[derive(Clone)]
struct Current {
    connection: Connection,
    control: Arc<tokio::sync::Mutex<SendStream>>,
    welcome: Arc<Welcome>,
}

/// State shared by the client handle and its supervisor task.
struct Inner {
    endpoint: Endpoint,
    config: ClientConfig,
    current: RwLock<Current>,
    pending: Pending,
    next_id: AtomicU32,
    /// The seq of the last event frame received, for resuming.
    last_event_seq: AtomicU64,
    dropped_datagrams: AtomicU64,
    /// Set by `close`: no reconnection after that.
    closing: AtomicBool,
    /// False when the endpoint is shared with other clients.
    owns_endpoint: bool,
}

impl Inner {
    fn current(&self) -> Current {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes a new connection the current one; returns its receive stream.
    fn install(&self, established: Established) -> RecvStream {
        let Established {
            connection,
            send,
            recv,
            welcome,
        } = established;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Current {
            connection,
            control: Arc::new(tokio::sync::Mutex::new(send)),
            welcome: Arc::new(welcome),
        };
        recv
    }

    fn resume_ticket(&self) -> Resume {
        Resume {
            token: self.current().welcome.resume_token.clone(),
            last_event_seq: self.last_event_seq.load(Ordering::Acquire),
        }
    }

    fn answer(&self, id: u32, result: Result<Reply, ErrorBody>) {
        let waiter = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        if let Some(waiter) = waiter {
            let _ = waiter.send(result);
        }
    }

    /// Requests in flight die with their connection.
    fn fail_pending(&self) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// A session with a partyline server. Cheap to share behind an `Arc`;
/// every method takes `&self`.
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    /// Connects, says Hello, and waits for Welcome. With `config.resume`
    /// set, takes back that session instead of starting a new one.
    pub async fn connect(config: ClientConfig) -> Result<(Client, Events), ClientError> {
        let endpoint = shared_endpoint(&config, None)?;
        Self::connect_with(endpoint, config, true).await
    }

    /// Like [`Client::connect`], on an endpoint shared with other clients
    /// (see [`shared_endpoint`]): thousands of sessions from one process.
    pub async fn connect_on(
        endpoint: &Endpoint,
        config: ClientConfig,
    ) -> Result<(Client, Events), ClientError> {
        Self::connect_with(endpoint.clone(), config, false).await
    }

    async fn connect_with(
        endpoint: Endpoint,
        mut config: ClientConfig,
        owns_endpoint: bool,
    ) -> Result<(Client, Events), ClientError> {
        let resume = config.resume.take();
        let resuming = resume.as_ref().map(|ticket| ticket.last_event_seq);
        let established = establish(&endpoint, &config, resume).await?;
        let last_event_seq = match (resuming, &established.welcome.resumed) {
            (Some(last_seen), Resumed::Replayed { .. }) => last_seen,
            _ => established.welcome.last_event_seq,
        };
        let (events_tx, events_rx) = mpsc::channel(config.event_capacity);
        let connection = established.connection.clone();
        let placeholder = Current {
            connection: connection.clone(),
            control: Arc::new(tokio::sync::Mutex::new(established.send)),
            welcome: Arc::new(established.welcome),
        };
        let inner = Arc::new(Inner {
            endpoint,
            config,
            current: RwLock::new(placeholder),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(1),
            last_event_seq: AtomicU64::new(last_event_seq),
            dropped_datagrams: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            owns_endpoint,
        });
        tokio::spawn(supervisor::supervise(
            inner.clone(),
            events_tx,
            connection,
            established.recv,
        ));
        Ok((Client { inner }, Events { rx: events_rx }))
    }

    /// The Welcome of the current connection (a new one after each resume).
    pub fn welcome(&self) -> Arc<Welcome> {
        self.inner.current().welcome
    }

    pub fn session_id(&self) -> SessionId {
        self.welcome().session_id
    }

    pub fn presence(&self) -> Presence {
        self.welcome().presence.clone()
    }

    /// What to put in `ClientConfig::resume` to take this session back by
    /// hand (when `auto_reconnect` is off) inside the server's grace window.
    pub fn resume_ticket(&self) -> Resume {
        self.inner.resume_ticket()
    }

    /// Datagrams dropped because the application did not poll events fast enough.
    pub fn dropped_datagrams(&self) -> u64 {
        self.inner.dropped_datagrams.load(Ordering::Relaxed)
    }

    /// Sends one command and waits for its reply.
    pub async fn request(&self, command: Command) -> Result<Reply, ClientError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, tx);
        let control = self.inner.current().control;
        let written = {
            let mut send = control.lock().await;
            write_frame(&mut send, &ClientFrame::Request { id, command }).await
        };
        if let Err(error) = written {
            self.inner
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
            return Err(ClientError::Protocol(error.to_string()));
        }
        match rx.await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(refusal)) => Err(ClientError::Refused(refusal)),
            Err(_) => Err(ClientError::Disconnected),
        }
    }

    pub async fn create_party(
        &self,
        open: bool,
        max_size: u16,
        label: &str,
    ) -> Result<PartySnapshot, ClientError> {
        let command = Command::CreateParty {
            open,
            max_size,
            label: label.to_string(),
        };
        expect_party(self.request(command).await?)
    }

    /// Joined (open party) or Queued (closed party).
    pub async fn join_party(&self, party_id: PartyId) -> Result<JoinOutcome, ClientError> {
        match self.request(Command::JoinParty { party_id }).await? {
            Reply::Join(outcome) => Ok(outcome),
            other => Err(unexpected(other)),
        }
    }

    /// Leader only: the waiting requests, oldest first.
    pub async fn list_join_requests(
        &self,
        party_id: PartyId,
    ) -> Result<Vec<Presence>, ClientError> {
        match self.request(Command::ListJoinRequests { party_id }).await? {
            Reply::JoinRequests { requests, .. } => Ok(requests),
            other => Err(unexpected(other)),
        }
    }

    pub async fn accept(&self, party_id: PartyId, user_id: &str) -> Result<(), ClientError> {
        let user_id = user_id.to_string();
        expect_done(
            self.request(Command::AcceptJoinRequest { party_id, user_id })
                .await?,
        )
    }

    /// Kicks a member or rejects a join request.
    pub async fn remove(&self, party_id: PartyId, user_id: &str) -> Result<(), ClientError> {
        let user_id = user_id.to_string();
        expect_done(self.request(Command::Remove { party_id, user_id }).await?)
    }

    /// Leaves the party, or cancels this session's join request.
    pub async fn leave(&self, party_id: PartyId) -> Result<(), ClientError> {
        expect_done(self.request(Command::Leave { party_id }).await?)
    }

    pub async fn promote(&self, party_id: PartyId, user_id: &str) -> Result<(), ClientError> {
        let user_id = user_id.to_string();
        expect_done(self.request(Command::Promote { party_id, user_id }).await?)
    }

    pub async fn close_party(&self, party_id: PartyId) -> Result<(), ClientError> {
        expect_done(self.request(Command::Close { party_id }).await?)
    }

    /// Changes the given settings; `None` keeps a setting as it is.
    pub async fn update_party(
        &self,
        party_id: PartyId,
        open: Option<bool>,
        label: Option<String>,
        max_size: Option<u16>,
    ) -> Result<PartySnapshot, ClientError> {
        let command = Command::Update {
            party_id,
            open,
            label,
            max_size,
        };
        expect_party(self.request(command).await?)
    }

    pub async fn get_party(&self, party_id: PartyId) -> Result<PartySnapshot, ClientError> {
        expect_party(self.request(Command::GetParty { party_id }).await?)
    }

    /// Party data as one unreliable datagram. Refused with `PayloadTooLarge`
    /// above the limit announced in Welcome (never cut); send it with
    /// [`Client::send_data_reliable`] instead. Errors the server finds later
    /// (not a member, no such party) arrive as a `DataRefused` event.
    pub fn send_data(
        &self,
        party_id: PartyId,
        op_code: i64,
        data: &[u8],
    ) -> Result<(), ClientError> {
        let current = self.inner.current();
        let limit = current.welcome.limits.max_datagram_data as usize;
        if data.len() > limit {
            return Err(payload_too_large(data.len(), limit));
        }
        let datagram = encode_client_datagram(party_id, op_code, data);
        current
            .connection
            .send_datagram(datagram)
            .map_err(|error| match error {
                quinn::SendDatagramError::ConnectionLost(e) => ClientError::Connection(e),
                quinn::SendDatagramError::TooLarge => payload_too_large(data.len(), limit),
                other => ClientError::Protocol(other.to_string()),
            })
    }

    /// Party data on the reliable control stream, ordered with this
    /// session's other reliable messages.
    pub async fn send_data_reliable(
        &self,
        party_id: PartyId,
        op_code: i64,
        data: Bytes,
    ) -> Result<(), ClientError> {
        let limit = self.welcome().limits.max_reliable_data as usize;
        if data.len() > limit {
            return Err(payload_too_large(data.len(), limit));
        }
        expect_done(
            self.request(Command::SendData {
                party_id,
                op_code,
                data,
            })
            .await?,
        )
    }

    /// Closes the session cleanly: the server removes it from its parties at
    /// once, and the SDK does not reconnect.
    pub async fn close(self) {
        self.shut();
        if self.inner.owns_endpoint {
            let _ =
                tokio::time::timeout(Duration::from_secs(1), self.inner.endpoint.wait_idle()).await;
        }
    }

    fn shut(&self) {
        self.inner.closing.store(true, Ordering::Release);
        self.inner
            .current()
            .connection
            .close((CloseCode::Normal as u32).into(), b"bye");
    }
}

impl Drop for Client {
    /// Dropping the client is a goodbye too; it also stops the supervisor.
    fn drop(&mut self) {
        self.shut();
    }
}

fn payload_too_large(len: usize, limit: usize) -> ClientError {
    ClientError::Refused(ErrorBody::new(
        ErrorCode::PayloadTooLarge,
        format!("payload of {len} bytes exceeds the limit of {limit}"),
    ))
}

fn unexpected(reply: Reply) -> ClientError {
    ClientError::Protocol(format!("unexpected reply {reply:?}"))
}

fn expect_party(reply: Reply) -> Result<PartySnapshot, ClientError> {
    match reply {
        Reply::Party(snapshot) => Ok(snapshot),
        other => Err(unexpected(other)),
    }
}

fn expect_done(reply: Reply) -> Result<(), ClientError> {
    match reply {
        Reply::Done => Ok(()),
        other => Err(unexpected(other)),
    }
}
