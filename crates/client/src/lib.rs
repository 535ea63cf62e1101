//! The partyline Rust SDK: parties for game clients, over QUIC.
//!
//! Connect, call one async method per command, and poll [`Events`] once per
//! frame. Everything a game needs is exported from this crate.
//!
//! ```no_run
//! # async fn example() -> Result<(), partyline_client::ClientError> {
//! use partyline_client::{Client, ClientConfig, Event, PartySettings};
//! let certs = partyline_client::load_certificates("certs/cert.pem")?;
//! let addr = partyline_client::resolve_server("127.0.0.1:7350")?;
//! let (client, mut events) = Client::connect(ClientConfig::dev(addr, certs, "user-1", "Ana")).await?;
//! let party = client.create_party(PartySettings::default()).await?;
//! client.send_data(party.party_id, 1, b"hello")?;
//! // In the game loop, once per frame:
//! while let Some(event) = events.try_next() {
//!     if let Event::MemberJoined { member, .. } = event {
//!         println!("{} joined", member.username);
//!     }
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
// Nothing the server sends may panic a game.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod connection;
mod error;
mod event;
mod roster;
mod supervisor;
mod wire;

/// The wire types, for tools that speak the protocol directly. A game
/// needs only what the crate root exports.
pub use partyline_protocol as protocol;

pub use bytes::Bytes;
pub use config::{certificates_from_pem, load_certificates, resolve_server, ClientConfig};
pub use connection::shared_endpoint;
pub use error::{ClientError, DisconnectReason};
pub use event::{Event, PartyData};
pub use protocol::{
    AckFrequency, ConnectionQuality, ErrorBody, ErrorCode, Identity, InviteGoneReason,
    InvitePolicy, KeyValues, LeaderPolicy, LeaveReason, Limits, ListedParty, MatchFound,
    MatchedPlayer, MemberProperties, Muted, NumberRange, Numbers, PartyBan, PartyId, PartyInvite,
    PartySearch, Presence, ReadyCheck, ReadyCheckOutcome, RejectReason, RequestGoneReason, Resume,
    SessionId, TicketCancelReason, TicketQuery, TicketRequest, UserStatus, MAX_BLOCKS, MAX_MUTES,
};
/// A UDP endpoint several sessions can share ([`shared_endpoint`],
/// [`Client::connect_on`]).
pub use quinn::Endpoint;
pub use roster::{Member, Party};

use connection::{establish, Established};
use protocol::{
    encode_client_datagram, ClientFrame, CloseCode, Command, JoinOutcome as WireJoinOutcome, Reply,
    Resumed, Welcome,
};
use quinn::{Connection, RecvStream, SendStream};
use roster::Roster;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};
use wire::{encode, write_frame};

/// The longest a close waits for its goodbye (QUIC's CONNECTION_CLOSE) to
/// leave: [`Client::close`], a drop outside the runtime, and the C
/// library's `pl_client_free`. Usually far less: on a LAN the connection
/// has drained in about 0.1 s.
pub const GOODBYE_LIMIT: Duration = Duration::from_millis(250);

/// The settings of a new party.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartySettings {
    /// Open parties seat whoever joins; closed ones queue join requests
    /// for the leader. Default true.
    pub open: bool,
    /// Most members, leader included (1 to 256). Default 4.
    pub max_size: u16,
    /// Free-form text for the game (a mode, a map). Default empty.
    pub label: String,
    /// Who may invite. Default: the leader only.
    pub invite_policy: InvitePolicy,
    /// The party state to start with. Default empty.
    pub state: KeyValues,
    /// Who leads when the leader leaves or is lost: the longest seated
    /// (default), or the best connection as the server measures it.
    pub leader_policy: LeaderPolicy,
}

impl Default for PartySettings {
    fn default() -> Self {
        PartySettings {
            open: true,
            max_size: 4,
            label: String::new(),
            invite_policy: InvitePolicy::Leader,
            state: KeyValues::new(),
            leader_policy: LeaderPolicy::Tenure,
        }
    }
}

/// One page of a party search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchPage {
    /// The parties found, in listing order.
    pub parties: Vec<ListedParty>,
    /// Put in `PartySearch::cursor` for the next page; 0 when this was the
    /// last.
    pub next_cursor: u64,
}

/// A change of settings; `None` keeps a setting as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartyUpdate {
    /// Open or close the party to direct joins.
    pub open: Option<bool>,
    /// A new size limit (not below the members seated).
    pub max_size: Option<u16>,
    /// A new label.
    pub label: Option<String>,
    /// A new invite policy.
    pub invite_policy: Option<InvitePolicy>,
    /// A new leader policy.
    pub leader_policy: Option<LeaderPolicy>,
}

/// What joining a party did.
#[derive(Clone, Debug, PartialEq, Eq)]
// One per join call: boxing the party would cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
pub enum JoinOutcome {
    /// Seated at once (open party).
    Joined(Party),
    /// Waiting for the leader (closed party): `Event::PartyJoined` or
    /// `Event::JoinRejected` follows.
    Queued {
        /// The party asked.
        party_id: PartyId,
    },
}

/// The receiving half of a client: its events, in order.
pub struct Events {
    rx: mpsc::Receiver<Event>,
}

impl Events {
    /// Waits for the next event; `None` once the client is gone for good.
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is waiting: call it in a loop once per frame.
    pub fn try_next(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

/// Whether the session has a connection now. `Up` counts connections, so a
/// caller can tell "lost after I sent" from "already back".
#[derive(Clone, Debug, PartialEq, Eq)]
enum Link {
    Up(u64),
    Reconnecting,
    Down(DisconnectReason),
}

/// What a successful `Done` reply means for the roster.
#[derive(Clone, Debug)]
enum AfterDone {
    Nothing,
    Forget(PartyId),
    RequestHandled(PartyId, String),
    Muted(PartyId, protocol::Muted),
    Unmuted(PartyId, String),
}

impl AfterDone {
    /// What `command`'s `Done` means for the roster: one place for every
    /// way a command is sent (the named methods and [`Client::request`]).
    fn of(command: &Command) -> AfterDone {
        match command {
            Command::Leave { party_id } | Command::Close { party_id } => {
                AfterDone::Forget(*party_id)
            }
            Command::AcceptJoinRequest { party_id, user_id }
            | Command::Reject { party_id, user_id } => {
                AfterDone::RequestHandled(*party_id, user_id.clone())
            }
            Command::Mute {
                party_id,
                user_id,
                op_codes,
            } => AfterDone::Muted(
                *party_id,
                protocol::Muted {
                    user_id: user_id.clone(),
                    op_codes: *op_codes,
                },
            ),
            Command::Unmute { party_id, user_id } => AfterDone::Unmuted(*party_id, user_id.clone()),
            _ => AfterDone::Nothing,
        }
    }
}

type Waiter = oneshot::Sender<Result<Reply, protocol::ErrorBody>>;

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
    link: watch::Sender<Link>,
    pending: Mutex<HashMap<u32, (Waiter, AfterDone)>>,
    roster: Mutex<Roster>,
    next_id: AtomicU32,
    /// The seq of the last event frame received, for resuming.
    last_event_seq: AtomicU64,
    dropped_datagrams: AtomicU64,
    /// True once this client closed the session (`close`, `disconnect`,
    /// drop): no reconnection after that, and every call answers `Closed`.
    /// A watch, so that a reconnection under way hears it at once.
    closing: watch::Sender<bool>,
    /// False when the endpoint is shared with other clients.
    owns_endpoint: bool,
    /// The runtime the client runs on: a drop on a thread outside it waits
    /// there for the goodbye to leave.
    runtime: Handle,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    fn current(&self) -> Current {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn roster(&self) -> MutexGuard<'_, Roster> {
        lock(&self.roster)
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

    /// Hands a reply to its caller, after applying what it means to the
    /// roster (here, in stream order, so the roster never misses an event).
    fn answer(&self, id: u32, result: Result<Reply, protocol::ErrorBody>) {
        let Some((waiter, after)) = lock(&self.pending).remove(&id) else {
            return;
        };
        if let Ok(reply) = &result {
            let mut roster = self.roster();
            match reply {
                Reply::Party(snapshot) | Reply::Join(WireJoinOutcome::Joined(snapshot)) => {
                    roster.install(snapshot.clone());
                }
                Reply::JoinRequests {
                    party_id, requests, ..
                } => roster.set_requests(*party_id, requests.clone()),
                Reply::Done => match after {
                    AfterDone::Forget(party_id) => roster.forget(party_id),
                    AfterDone::RequestHandled(party_id, user_id) => {
                        roster.request_handled(party_id, &user_id)
                    }
                    AfterDone::Muted(party_id, mute) => roster.muted(party_id, mute),
                    AfterDone::Unmuted(party_id, user_id) => roster.unmuted(party_id, &user_id),
                    AfterDone::Nothing => {}
                },
                Reply::Blocks { user_ids } => roster.set_blocked(user_ids.clone()),
                Reply::Join(WireJoinOutcome::Queued { .. })
                | Reply::Followed { .. }
                | Reply::Invites(_)
                | Reply::JoinCode { .. }
                | Reply::Parties { .. }
                | Reply::Bans { .. }
                | Reply::TicketStarted { .. } => {}
            }
        }
        let _ = waiter.send(result);
    }

    /// Requests in flight die with their connection.
    fn fail_pending(&self) {
        lock(&self.pending).clear();
    }

    /// Why the session is over, if it is: ended (the supervisor's verdict)
    /// or closed by this client (before the supervisor has seen it).
    fn ended(&self) -> Option<DisconnectReason> {
        if let Link::Down(reason) = &*self.link.borrow() {
            return Some(reason.clone());
        }
        self.closing
            .borrow()
            .then_some(DisconnectReason::ClosedLocally)
    }

    /// The error for a call that cannot go through the link as it is now.
    /// An ended session answers `Closed` before anything else: a closed
    /// connection must not read as one that is coming back.
    fn unavailable(&self) -> Option<ClientError> {
        if let Some(reason) = self.ended() {
            return Some(ClientError::Closed(reason));
        }
        match &*self.link.borrow() {
            Link::Up(_) => None,
            Link::Reconnecting => Some(ClientError::Reconnecting),
            Link::Down(reason) => Some(ClientError::Closed(reason.clone())),
        }
    }

    /// A call failed on connection `generation`: waits (bounded) until the
    /// supervisor has decided what the loss means, and says it as one error.
    async fn lost(&self, generation: u64) -> ClientError {
        if let Some(reason) = self.ended() {
            return ClientError::Closed(reason);
        }
        let mut link = self.link.subscribe();
        let limit = self.config.idle_timeout + Duration::from_secs(1);
        let decided =
            tokio::time::timeout(limit, link.wait_for(|state| *state != Link::Up(generation)))
                .await;
        match decided {
            Ok(Ok(state)) => match &*state {
                Link::Down(reason) => ClientError::Closed(reason.clone()),
                Link::Up(_) | Link::Reconnecting => ClientError::Reconnecting,
            },
            Ok(Err(_)) => ClientError::Closed(DisconnectReason::ClosedLocally),
            Err(_) => {
                ClientError::Protocol("the control stream failed on a live connection".into())
            }
        }
    }
}

/// What a close leaves to wait for: its CONNECTION_CLOSE leaving.
struct Goodbye {
    /// The client's own endpoint (not shared with other sessions).
    endpoint: Option<Endpoint>,
    connection: Connection,
    /// The connection's datagrams sent before the close.
    sent_before: u64,
}

impl Goodbye {
    async fn sent(self) {
        match self.endpoint {
            // Idle once every connection on it has drained: the close went
            // out, and was repeated to whatever the server still sent.
            Some(endpoint) => endpoint.wait_idle().await,
            // A shared endpoint idles only when all its sessions do: watch
            // this connection instead. After close() the only packets it
            // sends are the close.
            None => {
                while self.connection.stats().udp_tx.datagrams <= self.sent_before {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }
}

/// Waits on this thread, which is outside any runtime, for `future` to run
/// to its end on `runtime`, at most `limit`. A plain std wait, with no
/// tokio timer: if the runtime is shutting down, the task is dropped and
/// the wait ends at once.
fn wait_outside_runtime(
    runtime: &Handle,
    future: impl Future<Output = ()> + Send + 'static,
    limit: Duration,
) {
    let (done, finished) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        future.await;
        let _ = done.send(());
    });
    let _ = finished.recv_timeout(limit);
}

/// Refuses at once a command the protocol cannot carry: one over the
/// frame limit once encoded (`MAX_FRAME_SIZE`), refused as
/// `PayloadTooLarge` with the sizes in its message.
/// Every call of [`Client`] checks this itself before sending; the C
/// library calls it before it queues a command.
pub fn check_command(command: &Command) -> Result<(), ClientError> {
    // With the largest request id: a command that passes always fits.
    let request = ClientFrame::Request {
        id: u32::MAX,
        command: command.clone(),
    };
    encode(&request, "command").map(drop)
}

/// A session with a partyline server. Cheap to share behind an `Arc`;
/// every method takes `&self`. Dropping it closes the session.
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
        config.validate()?;
        let runtime = Handle::try_current().map_err(|_| {
            ClientError::Config("the client must be connected from inside a tokio runtime".into())
        })?;
        let resume = config.resume.take();
        let resuming = resume.as_ref().map(|ticket| ticket.last_event_seq);
        let established = establish(&endpoint, &config, resume, None).await?;
        let last_event_seq = match (resuming, &established.welcome.resumed) {
            (Some(last_seen), Resumed::Replayed { .. }) => last_seen,
            _ => established.welcome.last_event_seq,
        };
        let mut roster = Roster::default();
        roster.set_session(established.welcome.session_id);
        if let Resumed::Snapshots { parties, .. } = &established.welcome.resumed {
            for party in parties {
                let party_id = party.snapshot.party_id;
                roster.resync(party.snapshot.clone());
                roster.set_requests(party_id, party.requests.clone());
            }
        }
        let (events_tx, events_rx) = mpsc::channel(config.event_capacity);
        let connection = established.connection.clone();
        let inner = Arc::new(Inner {
            endpoint,
            config,
            current: RwLock::new(Current {
                connection: connection.clone(),
                control: Arc::new(tokio::sync::Mutex::new(established.send)),
                welcome: Arc::new(established.welcome),
            }),
            link: watch::Sender::new(Link::Up(0)),
            pending: Mutex::new(HashMap::new()),
            roster: Mutex::new(roster),
            next_id: AtomicU32::new(1),
            last_event_seq: AtomicU64::new(last_event_seq),
            dropped_datagrams: AtomicU64::new(0),
            closing: watch::Sender::new(false),
            owns_endpoint,
            runtime,
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

    /// This session's id (a new one after `Event::SessionLost`).
    pub fn session_id(&self) -> SessionId {
        self.welcome().session_id
    }

    /// How others see this session.
    pub fn presence(&self) -> Presence {
        self.welcome().presence.clone()
    }

    /// The server's limits (payload sizes, party size).
    pub fn limits(&self) -> Limits {
        self.welcome().limits.clone()
    }

    /// The party as this client knows it now, if it is in it.
    pub fn party(&self, party_id: PartyId) -> Option<Party> {
        self.inner.roster().party(party_id).cloned()
    }

    /// Every party this client is in.
    pub fn parties(&self) -> Vec<Party> {
        self.inner.roster().parties().cloned().collect()
    }

    /// What to put in `ClientConfig::resume` to take this session back by
    /// hand (when `auto_reconnect` is off) inside the server's grace window.
    pub fn resume_ticket(&self) -> Resume {
        self.inner.resume_ticket()
    }

    /// Datagrams dropped because the game did not poll events fast enough.
    pub fn dropped_datagrams(&self) -> u64 {
        self.inner.dropped_datagrams.load(Ordering::Relaxed)
    }

    /// QUIC statistics of the current connection (packets, frames, path
    /// RTT and congestion window): for load tools and diagnostics. Compare
    /// `frame_rx.datagram` with the `Event::Data` seen to tell datagrams the
    /// transport dropped from those the server never sent.
    pub fn transport_stats(&self) -> quinn::ConnectionStats {
        self.inner.current().connection.stats()
    }

    /// Sends one raw command and waits for its reply, keeping the roster
    /// as the named methods do. The named methods below are the way for
    /// games; this is for tools, tests and the C library.
    pub async fn request(&self, command: Command) -> Result<Reply, ClientError> {
        self.send_request(command).await
    }

    /// Why the session is over, once it is: this client closed it
    /// ([`Client::close`], [`Client::disconnect`]) or it ended
    /// (`Event::Disconnected`). From then on every call answers
    /// `ClientError::Closed` at once. `None` while the session lives,
    /// reconnecting included.
    pub fn closed(&self) -> Option<DisconnectReason> {
        self.inner.ended()
    }

    async fn send_request(&self, command: Command) -> Result<Reply, ClientError> {
        // Cloned, not borrowed: `unavailable` reads the link again.
        let link = self.inner.link.borrow().clone();
        let generation = match link {
            Link::Up(generation) if self.inner.ended().is_none() => generation,
            _ => {
                return Err(self
                    .inner
                    .unavailable()
                    .unwrap_or(ClientError::Reconnecting))
            }
        };
        if let Command::SendData { data, .. } = &command {
            let limit = self.welcome().limits.max_reliable_data as usize;
            if data.len() > limit {
                return Err(payload_too_large(data.len(), limit));
            }
        }
        let after = AfterDone::of(&command);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        // Encoded before it is registered: an oversize command is refused
        // here, at once, and never reaches the server.
        let frame = encode(&ClientFrame::Request { id, command }, "command")?;
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.pending).insert(id, (tx, after));
        let control = self.inner.current().control;
        let written = {
            let mut send = control.lock().await;
            write_frame(&mut send, &frame).await
        };
        if written.is_err() {
            lock(&self.inner.pending).remove(&id);
            return Err(self.inner.lost(generation).await);
        }
        match rx.await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(refusal)) => Err(ClientError::Refused(refusal)),
            Err(_) => Err(self.inner.lost(generation).await),
        }
    }

    async fn expect_party(&self, command: Command) -> Result<Party, ClientError> {
        match self.send_request(command).await? {
            Reply::Party(snapshot) => Ok(self.party_view(snapshot)),
            other => Err(unexpected(other)),
        }
    }

    async fn expect_done(&self, command: Command) -> Result<(), ClientError> {
        match self.send_request(command).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// The party a reply's snapshot describes, as the roster has it (with
    /// the join requests it knows), or as the snapshot says if the roster
    /// has moved on already. For replies to [`Client::request`].
    pub fn party_view(&self, snapshot: protocol::PartySnapshot) -> Party {
        self.party(snapshot.party_id)
            .unwrap_or_else(|| Party::from_snapshot(snapshot, self.session_id()))
    }

    /// Creates a party with this session as its leader.
    pub async fn create_party(&self, settings: PartySettings) -> Result<Party, ClientError> {
        self.expect_party(Command::CreateParty {
            open: settings.open,
            max_size: settings.max_size,
            label: settings.label,
            invite_policy: settings.invite_policy,
            state: settings.state,
            leader_policy: settings.leader_policy,
        })
        .await
    }

    /// Joins an open party at once, or asks a closed party's leader. An
    /// invite to this session's user seats it even in a closed party.
    pub async fn join_party(&self, party_id: PartyId) -> Result<JoinOutcome, ClientError> {
        self.join_with(Command::JoinParty { party_id }).await
    }

    /// Joins (or asks to join) the party with this join code, as
    /// [`Client::join_party`] would. Case, spaces and dashes do not matter.
    pub async fn join_by_code(&self, code: &str) -> Result<JoinOutcome, ClientError> {
        self.join_with(Command::JoinByCode {
            code: code.to_string(),
        })
        .await
    }

    async fn join_with(&self, command: Command) -> Result<JoinOutcome, ClientError> {
        match self.send_request(command).await? {
            Reply::Join(WireJoinOutcome::Joined(snapshot)) => {
                Ok(JoinOutcome::Joined(self.party_view(snapshot)))
            }
            Reply::Join(WireJoinOutcome::Queued { party_id, .. }) => {
                Ok(JoinOutcome::Queued { party_id })
            }
            other => Err(unexpected(other)),
        }
    }

    /// Leaves the party, or withdraws this session's join request.
    pub async fn leave_party(&self, party_id: PartyId) -> Result<(), ClientError> {
        self.expect_done(Command::Leave { party_id }).await
    }

    /// Leader only: the waiting join requests, oldest first.
    pub async fn list_join_requests(
        &self,
        party_id: PartyId,
    ) -> Result<Vec<Presence>, ClientError> {
        match self
            .send_request(Command::ListJoinRequests { party_id })
            .await?
        {
            Reply::JoinRequests { requests, .. } => Ok(requests),
            other => Err(unexpected(other)),
        }
    }

    /// Leader only: seats a user whose join request waits.
    pub async fn accept(&self, party_id: PartyId, user_id: &str) -> Result<(), ClientError> {
        let user_id = user_id.to_string();
        self.expect_done(Command::AcceptJoinRequest { party_id, user_id })
            .await
    }

    /// Leader only: turns a waiting join request down (never kicks a
    /// member: `RequestNotFound` if the user has no request).
    pub async fn reject(&self, party_id: PartyId, user_id: &str) -> Result<(), ClientError> {
        let user_id = user_id.to_string();
        self.expect_done(Command::Reject { party_id, user_id })
            .await
    }

    /// Leader only: takes a member's seat away (`MemberNotFound` if the
    /// user is not seated).
    pub async fn kick(&self, party_id: PartyId, user_id: &str) -> Result<(), ClientError> {
        let user_id = user_id.to_string();
        self.expect_done(Command::Kick { party_id, user_id }).await
    }

    /// Leader only: hands leadership to another member.
    pub async fn promote(&self, party_id: PartyId, user_id: &str) -> Result<(), ClientError> {
        let user_id = user_id.to_string();
        self.expect_done(Command::Promote { party_id, user_id })
            .await
    }

    /// Leader only: ends the party for everyone.
    pub async fn close_party(&self, party_id: PartyId) -> Result<(), ClientError> {
        self.expect_done(Command::Close { party_id }).await
    }

    /// Leader only: changes the given settings.
    pub async fn update_party(
        &self,
        party_id: PartyId,
        update: PartyUpdate,
    ) -> Result<Party, ClientError> {
        self.expect_party(Command::Update {
            party_id,
            open: update.open,
            label: update.label,
            max_size: update.max_size,
            invite_policy: update.invite_policy,
            leader_policy: update.leader_policy,
        })
        .await
    }

    /// Sets the status text this session's followers see (empty: none),
    /// and whether it shows as online at all (`visible: false` appears
    /// offline).
    pub async fn set_status(&self, status: &str, visible: bool) -> Result<(), ClientError> {
        let command = Command::SetStatus {
            status: status.to_string(),
            visible,
        };
        self.expect_done(command).await
    }

    /// Follows users: `Event::StatusOnline`, `StatusChanged` and
    /// `StatusOffline` follow for each of their sessions. Returns the
    /// sessions of theirs that are online now.
    pub async fn follow(&self, user_ids: &[&str]) -> Result<Vec<UserStatus>, ClientError> {
        let user_ids = user_ids.iter().map(|u| u.to_string()).collect();
        match self.send_request(Command::Follow { user_ids }).await? {
            Reply::Followed { online } => Ok(online),
            other => Err(unexpected(other)),
        }
    }

    /// Stops following users.
    pub async fn unfollow(&self, user_ids: &[&str]) -> Result<(), ClientError> {
        let user_ids = user_ids.iter().map(|u| u.to_string()).collect();
        self.expect_done(Command::Unfollow { user_ids }).await
    }

    /// Invites a user: each of their sessions gets `Event::Invited`, and
    /// the invite seats them once, even in a closed party, until it
    /// expires. The leader may invite; any member too under
    /// `InvitePolicy::AnyMember`.
    pub async fn invite(&self, party_id: PartyId, user_id: &str) -> Result<(), ClientError> {
        let user_id = user_id.to_string();
        self.expect_done(Command::Invite { party_id, user_id })
            .await
    }

    /// Turns down an invite to this session's user; the inviter is told.
    pub async fn decline_invite(&self, party_id: PartyId) -> Result<(), ClientError> {
        self.expect_done(Command::DeclineInvite { party_id }).await
    }

    /// Takes back a pending invite: the leader any, and under
    /// `InvitePolicy::AnyMember` a member its own.
    pub async fn revoke_invite(&self, party_id: PartyId, user_id: &str) -> Result<(), ClientError> {
        let user_id = user_id.to_string();
        self.expect_done(Command::RevokeInvite { party_id, user_id })
            .await
    }

    /// This user's pending invites, oldest first.
    pub async fn list_invites(&self) -> Result<Vec<PartyInvite>, ClientError> {
        match self.send_request(Command::ListInvites).await? {
            Reply::Invites(invites) => Ok(invites),
            other => Err(unexpected(other)),
        }
    }

    /// Leader only: a new join code for the party (the old one stops
    /// working). Players join with [`Client::join_by_code`].
    pub async fn create_join_code(&self, party_id: PartyId) -> Result<String, ClientError> {
        match self
            .send_request(Command::CreateJoinCode { party_id })
            .await?
        {
            Reply::JoinCode { code, .. } => Ok(code),
            other => Err(unexpected(other)),
        }
    }

    /// Leader only: removes the party's join code.
    pub async fn clear_join_code(&self, party_id: PartyId) -> Result<(), ClientError> {
        self.expect_done(Command::ClearJoinCode { party_id }).await
    }

    /// Leader only: lists the party for search with these properties (or
    /// changes them).
    pub async fn list_party(
        &self,
        party_id: PartyId,
        properties: KeyValues,
    ) -> Result<(), ClientError> {
        let command = Command::ListParty {
            party_id,
            properties,
        };
        self.expect_done(command).await
    }

    /// Leader only: takes the party out of search.
    pub async fn unlist_party(&self, party_id: PartyId) -> Result<(), ClientError> {
        self.expect_done(Command::UnlistParty { party_id }).await
    }

    /// Searches listed parties: one page.
    pub async fn search_parties(&self, search: PartySearch) -> Result<SearchPage, ClientError> {
        match self.send_request(Command::SearchParties(search)).await? {
            Reply::Parties {
                parties,
                next_cursor,
            } => Ok(SearchPage {
                parties,
                next_cursor,
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Leader only: sets keys of the party state (after removing `remove`).
    pub async fn set_party_state(
        &self,
        party_id: PartyId,
        set: KeyValues,
        remove: &[&str],
    ) -> Result<(), ClientError> {
        let command = Command::SetPartyState {
            party_id,
            set,
            remove: remove.iter().map(|k| k.to_string()).collect(),
        };
        self.expect_done(command).await
    }

    /// Sets keys of this session's own attributes in the party (after
    /// removing `remove`): every member sees them.
    pub async fn set_member_attributes(
        &self,
        party_id: PartyId,
        set: KeyValues,
        remove: &[&str],
    ) -> Result<(), ClientError> {
        let command = Command::SetMemberAttributes {
            party_id,
            set,
            remove: remove.iter().map(|k| k.to_string()).collect(),
        };
        self.expect_done(command).await
    }

    /// Leader only: bans a user for `duration` (`None`: the party's life),
    /// removing their seat, request and invite.
    pub async fn ban(
        &self,
        party_id: PartyId,
        user_id: &str,
        duration: Option<Duration>,
    ) -> Result<(), ClientError> {
        let duration_ms = duration.map_or(0, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
        });
        let command = Command::Ban {
            party_id,
            user_id: user_id.to_string(),
            duration_ms,
        };
        self.expect_done(command).await
    }

    /// Leader only: lifts a ban.
    pub async fn unban(&self, party_id: PartyId, user_id: &str) -> Result<(), ClientError> {
        let user_id = user_id.to_string();
        self.expect_done(Command::Unban { party_id, user_id }).await
    }

    /// Starts matchmaking: a solo ticket, or with `party_id` set (leader
    /// only) a ticket for the whole party. Returns the ticket's id;
    /// `Event::TicketStarted`, then `Matched` or `TicketCancelled` follow
    /// for every session in it.
    pub async fn submit_ticket(&self, request: TicketRequest) -> Result<u64, ClientError> {
        match self.send_request(Command::SubmitTicket(request)).await? {
            Reply::TicketStarted { ticket_id } => Ok(ticket_id),
            other => Err(unexpected(other)),
        }
    }

    /// Stops a waiting ticket: this session's own, or its party's (leader).
    pub async fn cancel_ticket(&self, ticket_id: u64) -> Result<(), ClientError> {
        self.expect_done(Command::CancelTicket { ticket_id }).await
    }

    /// Leader only: asks every member whether it is ready, for `timeout`
    /// (5 to 120 s); `message` is shown to them (at most 256 bytes, may be
    /// empty). The leader counts as ready. Members hear
    /// [`Event::ReadyCheckStarted`], the answers as they come
    /// ([`Event::ReadyCheckAnswered`]), and the result
    /// ([`Event::ReadyCheckEnded`]); [`Party::ready_check`] shows it while
    /// it runs. One at a time per party (`ReadyCheckRunning`).
    pub async fn start_ready_check(
        &self,
        party_id: PartyId,
        message: &str,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let command = Command::StartReadyCheck {
            party_id,
            message: message.to_string(),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        self.expect_done(command).await
    }

    /// Answers the party's ready check `check_id` (from
    /// [`Event::ReadyCheckStarted`] or [`Party::ready_check`]), or changes
    /// the answer, until it ends.
    pub async fn answer_ready_check(
        &self,
        party_id: PartyId,
        check_id: u64,
        ready: bool,
    ) -> Result<(), ClientError> {
        let command = Command::AnswerReadyCheck {
            party_id,
            check_id,
            ready,
        };
        self.expect_done(command).await
    }

    /// Leader only: ends the running ready check now (`Cancelled`).
    pub async fn cancel_ready_check(&self, party_id: PartyId) -> Result<(), ClientError> {
        self.expect_done(Command::CancelReadyCheck { party_id })
            .await
    }

    /// Stops `user_id`'s party data reaching this session (datagrams and
    /// reliable data), for the op codes in `op_codes` (inclusive; `None`:
    /// all of them, e.g. a voice range alone keeps game data). Muting the
    /// same member again replaces the range. The muted member is not told;
    /// the mute lasts while this session is seated (a resume keeps it), and
    /// [`Party::muted`] shows it. `MemberNotFound` for a user not seated,
    /// `TooManyMutes` past [`MAX_MUTES`] members.
    pub async fn mute(
        &self,
        party_id: PartyId,
        user_id: &str,
        op_codes: Option<NumberRange>,
    ) -> Result<(), ClientError> {
        let command = Command::Mute {
            party_id,
            user_id: user_id.to_string(),
            op_codes,
        };
        self.expect_done(command).await
    }

    /// Lets a muted member's party data reach this session again.
    pub async fn unmute(&self, party_id: PartyId, user_id: &str) -> Result<(), ClientError> {
        let user_id = user_id.to_string();
        self.expect_done(Command::Unmute { party_id, user_id })
            .await
    }

    /// Blocks users for this session: no party data passes between it and
    /// them in any party, neither sees the other's status, a party this
    /// session leads is closed to them, and their invites do not reach
    /// it. They are not told. Returns the block list now (at most
    /// [`MAX_BLOCKS`]: `TooManyBlocks` past it).
    pub async fn block(&self, user_ids: &[&str]) -> Result<Vec<String>, ClientError> {
        let user_ids = user_ids.iter().map(|u| u.to_string()).collect();
        self.expect_blocks(Command::Block { user_ids }).await
    }

    /// Takes users off this session's block list; returns the list now.
    pub async fn unblock(&self, user_ids: &[&str]) -> Result<Vec<String>, ClientError> {
        let user_ids = user_ids.iter().map(|u| u.to_string()).collect();
        self.expect_blocks(Command::Unblock { user_ids }).await
    }

    /// This session's block list as the server has it (the game's server
    /// may have set it: [`Event::BlocksChanged`]).
    pub async fn list_blocks(&self) -> Result<Vec<String>, ClientError> {
        self.expect_blocks(Command::ListBlocks).await
    }

    /// This session's block list as the client last heard it (no round
    /// trip).
    pub fn blocked(&self) -> Vec<String> {
        self.inner.roster().blocked().to_vec()
    }

    async fn expect_blocks(&self, command: Command) -> Result<Vec<String>, ClientError> {
        match self.send_request(command).await? {
            Reply::Blocks { user_ids } => Ok(user_ids),
            other => Err(unexpected(other)),
        }
    }

    /// Leader only: the party's bans, oldest first.
    pub async fn list_bans(&self, party_id: PartyId) -> Result<Vec<PartyBan>, ClientError> {
        match self.send_request(Command::ListBans { party_id }).await? {
            Reply::Bans { bans, .. } => Ok(bans),
            other => Err(unexpected(other)),
        }
    }

    /// The party as the server has it now (members only).
    pub async fn get_party(&self, party_id: PartyId) -> Result<Party, ClientError> {
        self.expect_party(Command::GetParty { party_id }).await
    }

    /// Party data as one unreliable datagram: for state that the next tick
    /// replaces. Refused with `PayloadTooLarge` above `limits().max_datagram_data`
    /// (never cut); send larger data with [`Client::send_data_reliable`].
    /// Errors the server finds later (not a member, no such party) arrive
    /// as `Event::DataRefused`.
    pub fn send_data(
        &self,
        party_id: PartyId,
        op_code: i64,
        data: &[u8],
    ) -> Result<(), ClientError> {
        // No link check up front: while reconnecting or after the end, the
        // current connection is the closed one, and its ConnectionLost is
        // told apart below, off the hot path.
        let current = self.inner.current();
        let limit = current.welcome.limits.max_datagram_data as usize;
        if data.len() > limit {
            // An ended session answers Closed to everything, this too.
            return Err(match self.inner.ended() {
                Some(reason) => ClientError::Closed(reason),
                None => payload_too_large(data.len(), limit),
            });
        }
        let datagram = encode_client_datagram(party_id, op_code, data);
        current
            .connection
            .send_datagram(datagram)
            .map_err(|error| match error {
                quinn::SendDatagramError::ConnectionLost(_) => {
                    // The supervisor decides between reconnecting and done;
                    // until it has, a loss reads as reconnecting.
                    self.inner
                        .unavailable()
                        .unwrap_or(ClientError::Reconnecting)
                }
                quinn::SendDatagramError::TooLarge => payload_too_large(data.len(), limit),
                other => ClientError::Protocol(other.to_string()),
            })
    }

    /// Party data on the reliable control stream, in order with this
    /// session's other reliable messages: for events that must arrive.
    pub async fn send_data_reliable(
        &self,
        party_id: PartyId,
        op_code: i64,
        data: &[u8],
    ) -> Result<(), ClientError> {
        // Refused above `limits().max_reliable_data` in `send_request`.
        let command = Command::SendData {
            party_id,
            op_code,
            data: Bytes::copy_from_slice(data),
        };
        self.expect_done(command).await
    }

    /// Ends the session: the server removes it from its parties at once
    /// (the others see `MemberLeft`, and a lead passes on), and the SDK does
    /// not reconnect. Returns once the goodbye has left, at most
    /// [`GOODBYE_LIMIT`] later; `Event::Disconnected` follows, and every
    /// call answers `ClientError::Closed` from now on. Closing while the
    /// SDK reconnects stops it. Await it before the runtime ends: a goodbye
    /// still queued when the runtime stops never leaves, and the others
    /// would see a lost connection (a ghost for the grace window) instead.
    pub async fn close(&self) {
        if let Some(goodbye) = self.shut() {
            let _ = tokio::time::timeout(GOODBYE_LIMIT, goodbye.sent()).await;
        }
    }

    /// [`Client::close`] without waiting: the goodbye leaves when the
    /// runtime next runs the connection (within milliseconds while it runs).
    pub fn disconnect(&self) {
        let _ = self.shut();
    }

    /// Closes the session, the first time; returns what is left to wait
    /// for.
    fn shut(&self) -> Option<Goodbye> {
        // Before the connection is read: a reconnection that installs a new
        // one after this sees the flag and closes it (supervisor.rs).
        if self.inner.closing.send_replace(true) {
            return None;
        }
        let connection = self.inner.current().connection;
        let endpoint = self
            .inner
            .owns_endpoint
            .then(|| self.inner.endpoint.clone());
        if connection.close_reason().is_some() && endpoint.is_none() {
            // Lost or ended already: nothing of ours left to send.
            return None;
        }
        let sent_before = connection.stats().udp_tx.datagrams;
        connection.close((CloseCode::Normal as u32).into(), b"bye");
        Some(Goodbye {
            endpoint,
            connection,
            sent_before,
        })
    }
}

impl Drop for Client {
    /// Dropping the client closes the session as [`Client::close`] does,
    /// and stops the supervisor. On a thread outside the tokio runtime (a
    /// game's main thread at quit) it also waits as `close` does, at most
    /// [`GOODBYE_LIMIT`], so the goodbye leaves even if the runtime ends
    /// next. Inside the runtime a drop cannot block; the goodbye leaves as
    /// long as the runtime runs.
    fn drop(&mut self) {
        let Some(goodbye) = self.shut() else {
            return;
        };
        if Handle::try_current().is_err() {
            wait_outside_runtime(&self.inner.runtime, goodbye.sent(), GOODBYE_LIMIT);
        }
    }
}

fn payload_too_large(len: usize, limit: usize) -> ClientError {
    ClientError::Refused(protocol::ErrorBody::new(
        ErrorCode::PayloadTooLarge,
        format!("payload of {len} bytes exceeds the limit of {limit}"),
    ))
}

fn unexpected(reply: Reply) -> ClientError {
    ClientError::Protocol(format!("unexpected reply {reply:?}"))
}
