//! What stands behind a `PlClient`: a small tokio runtime running the Rust
//! SDK, a queue of answers for the game to poll, and the error plumbing
//! that keeps panics and Rust errors on this side of the boundary.

use crate::event::{Held, PlEvent, PlMember};
use crate::*;
use partyline_client::{
    certificates_from_pem, load_certificates, resolve_server, Client, ClientConfig, ClientError,
    Event, Events, JoinOutcome, LeaveReason, Party, PartyId, PartySettings, PartyUpdate, Presence,
    RejectReason, RequestGoneReason, SessionId,
};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::watch;

/// An error on its way to the caller: a code and a sentence.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    code: i32,
    message: String,
}

pub(crate) fn invalid(message: impl Into<String>) -> Failure {
    Failure {
        code: PL_ERR_INVALID_ARGUMENT,
        message: message.into(),
    }
}

thread_local! {
    static LAST_ERROR: RefCell<(i32, String)> = const { RefCell::new((0, String::new())) };
}

/// Records the failure as this thread's last error; returns its code.
pub(crate) fn fail(failure: Failure) -> i32 {
    LAST_ERROR.with(|last| *last.borrow_mut() = (failure.code, failure.message));
    failure.code
}

pub(crate) fn last_error<T>(read: impl FnOnce(&str) -> T) -> T {
    LAST_ERROR.with(|last| read(&last.borrow().1))
}

pub(crate) fn last_error_code() -> i32 {
    LAST_ERROR.with(|last| last.borrow().0)
}

/// Runs `body`, turning a failure or a panic into an error code (and the
/// thread's last error message). Nothing unwinds into C.
pub(crate) fn ffi_guard<T>(body: impl FnOnce() -> Result<T, Failure>) -> Result<T, i32> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(failure)) => Err(fail(failure)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(fail(Failure {
                code: PL_ERR_INTERNAL,
                message: format!("internal error in libpartyline (please report it): {what}"),
            }))
        }
    }
}

/// A C string argument: `None` for NULL, an error for text that is not UTF-8.
pub(crate) unsafe fn text(pointer: *const c_char, what: &str) -> Result<Option<String>, Failure> {
    if pointer.is_null() {
        return Ok(None);
    }
    CStr::from_ptr(pointer)
        .to_str()
        .map(|s| Some(s.to_string()))
        .map_err(|_| invalid(format!("{what} is not UTF-8 text")))
}

pub(crate) unsafe fn party_arg(pointer: *const c_char) -> Result<PartyId, Failure> {
    let party = text(pointer, "party_id")?.ok_or_else(|| invalid("party_id is required"))?;
    party
        .parse()
        .map_err(|_| invalid(format!("party_id {party:?} is not a party id (a UUID like 67e55044-10b1-426f-9247-bb680e5fe0c8)")))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What `pl_client_connect` was given.
pub(crate) struct ConnectOptions {
    pub(crate) server: String,
    pub(crate) server_name: Option<String>,
    pub(crate) cert_pem_path: Option<String>,
    pub(crate) cert_pem: Option<Vec<u8>>,
    pub(crate) user_id: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) token: Option<String>,
}

impl ConnectOptions {
    fn config(self) -> Result<ClientConfig, Failure> {
        let config_error = |error: ClientError| invalid(error.to_string());
        let addr = resolve_server(&self.server).map_err(config_error)?;
        let certs = match (self.cert_pem_path, self.cert_pem) {
            (Some(path), _) => load_certificates(path).map_err(config_error)?,
            (None, Some(pem)) => certificates_from_pem(&pem).map_err(config_error)?,
            (None, None) => {
                return Err(invalid(
                    "a certificate to trust is required: cert_pem_path or cert_pem",
                ))
            }
        };
        let mut config = match (self.token, self.user_id) {
            (Some(token), _) => ClientConfig::with_token(addr, certs, &token),
            (None, Some(user_id)) => {
                let username = self.username.unwrap_or_else(|| user_id.clone());
                ClientConfig::dev(addr, certs, &user_id, &username)
            }
            (None, None) => {
                return Err(invalid(
                    "an identity is required: a token, or a dev user_id (and username)",
                ))
            }
        };
        if let Some(name) = self.server_name {
            config.server_name = name;
        }
        Ok(config)
    }
}

/// A command, as the game asked for it.
pub(crate) enum Command {
    Create {
        open: bool,
        max_size: u16,
        label: String,
    },
    Join(PartyId),
    Leave(PartyId),
    Accept(PartyId, String),
    Reject(PartyId, String),
    Kick(PartyId, String),
    Promote(PartyId, String),
    Close(PartyId),
    Update {
        party_id: PartyId,
        open: Option<bool>,
        max_size: Option<u16>,
        label: Option<String>,
    },
    Get(PartyId),
    ListRequests(PartyId),
    SendReliable {
        party_id: PartyId,
        op_code: i64,
        data: Vec<u8>,
    },
}

/// What a successful command answered.
// One per command answer, consumed at once.
#[allow(clippy::large_enum_variant)]
enum Answer {
    Done,
    Party(Party),
    Queued(PartyId),
    Requests(Vec<Presence>),
}

/// Something for the game to poll that is not an SDK event.
enum Queued {
    Connected(Presence),
    ConnectFailed(Failure),
    Reply(i64, Result<Answer, Failure>),
    Event(Event),
}

enum State {
    Connecting,
    Ready(Arc<Client>),
    Gone(Failure),
}

struct Shared {
    state: watch::Sender<State>,
    queue: Mutex<VecDeque<Queued>>,
    events: Mutex<Option<Events>>,
    held: Mutex<Held>,
    next_request: AtomicI64,
}

impl Shared {
    /// The connected client, waiting for the connection if it is still
    /// being made.
    async fn client(&self) -> Result<Arc<Client>, Failure> {
        let mut state = self.state.subscribe();
        let ready = state
            .wait_for(|state| !matches!(state, State::Connecting))
            .await
            .map_err(|_| closed("the client was freed"))?;
        match &*ready {
            State::Ready(client) => Ok(client.clone()),
            State::Gone(failure) => Err(failure.clone()),
            State::Connecting => Err(closed("still connecting")),
        }
    }
}

fn closed(message: &str) -> Failure {
    Failure {
        code: PL_ERR_CLOSED,
        message: format!("the session is closed: {message}"),
    }
}

/// The SDK's error as a code and its sentence.
fn failure(error: ClientError) -> Failure {
    let code = match &error {
        ClientError::Refused(body) => i32::from(body.code.number()),
        ClientError::Config(_) => PL_ERR_INVALID_ARGUMENT,
        ClientError::NoAnswer { .. }
        | ClientError::Tls { .. }
        | ClientError::ConnectionRefused { .. }
        | ClientError::Io(_) => PL_ERR_CONNECT,
        ClientError::Reconnecting => PL_ERR_RECONNECTING,
        ClientError::Closed(_) => PL_ERR_CLOSED,
        ClientError::Protocol(_) => PL_ERR_PROTOCOL,
    };
    Failure {
        code,
        message: error.to_string(),
    }
}

pub(crate) struct ClientHandle {
    runtime: Option<tokio::runtime::Runtime>,
    shared: Arc<Shared>,
}

impl ClientHandle {
    pub(crate) fn connect(options: ConnectOptions) -> Result<ClientHandle, Failure> {
        let config = options.config()?;
        // One worker: a game client needs little, and its own runtime keeps
        // it apart from any runtime the game has.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("partyline")
            .enable_all()
            .build()
            .map_err(|e| Failure {
                code: PL_ERR_INTERNAL,
                message: format!("could not start the network thread: {e}"),
            })?;
        let shared = Arc::new(Shared {
            state: watch::Sender::new(State::Connecting),
            queue: Mutex::new(VecDeque::new()),
            events: Mutex::new(None),
            held: Mutex::new(Held::default()),
            next_request: AtomicI64::new(1),
        });
        let connecting = shared.clone();
        runtime.spawn(async move {
            match Client::connect(config).await {
                Ok((client, events)) => {
                    let me = client.presence();
                    *lock(&connecting.events) = Some(events);
                    lock(&connecting.queue).push_back(Queued::Connected(me));
                    connecting
                        .state
                        .send_replace(State::Ready(Arc::new(client)));
                }
                Err(error) => {
                    let failure = failure(error);
                    lock(&connecting.queue).push_back(Queued::ConnectFailed(failure.clone()));
                    connecting.state.send_replace(State::Gone(failure));
                }
            }
        });
        Ok(ClientHandle {
            runtime: Some(runtime),
            shared,
        })
    }

    /// Starts a command; its reply is queued when it comes.
    pub(crate) fn start(&self, command: Command) -> Result<i64, Failure> {
        if let State::Gone(failure) = &*self.shared.state.borrow() {
            return Err(failure.clone());
        }
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| closed("the client was freed"))?;
        let request_id = self.shared.next_request.fetch_add(1, Ordering::Relaxed);
        let shared = self.shared.clone();
        runtime.spawn(async move {
            let answer = match shared.client().await {
                Ok(client) => run(&client, command).await,
                Err(failure) => Err(failure),
            };
            lock(&shared.queue).push_back(Queued::Reply(request_id, answer));
        });
        Ok(request_id)
    }

    pub(crate) fn send_datagram(
        &self,
        party_id: PartyId,
        op_code: i64,
        data: &[u8],
    ) -> Result<(), Failure> {
        match &*self.shared.state.borrow() {
            State::Ready(client) => client.send_data(party_id, op_code, data).map_err(failure),
            State::Connecting => Err(Failure {
                code: PL_ERR_NOT_CONNECTED,
                message: "still connecting: wait for PL_EVENT_CONNECTED before sending data".into(),
            }),
            State::Gone(failure) => Err(failure.clone()),
        }
    }

    pub(crate) fn close(&self) {
        if let State::Ready(client) = &*self.shared.state.borrow() {
            client.disconnect();
        }
    }

    /// Closes, then stops the network thread, giving the goodbye a moment
    /// to leave.
    pub(crate) fn shutdown(mut self) {
        self.close();
        self.shared
            .state
            .send_replace(State::Gone(closed("the client was freed")));
        lock(&self.shared.events).take();
        if let Some(runtime) = self.runtime.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                // Inside some async runtime we may not block.
                runtime.shutdown_background();
            } else {
                runtime.shutdown_timeout(Duration::from_millis(100));
            }
        }
    }

    /// The next event, filled in and owned by this client until the next poll.
    pub(crate) fn poll(&self) -> Option<PlEvent> {
        let next = lock(&self.shared.queue).pop_front().or_else(|| {
            lock(&self.shared.events)
                .as_mut()
                .and_then(|events| events.try_next())
                .map(Queued::Event)
        })?;
        if let Queued::Event(Event::SessionLost { lost_parties, .. }) = &next {
            // Each lost party follows as its own PL_EVENT_PARTY_LOST.
            let mut queue = lock(&self.shared.queue);
            for party_id in lost_parties.iter().rev() {
                queue.push_front(Queued::Event(Event::PartyLost {
                    party_id: *party_id,
                }));
            }
        }
        let mut held = lock(&self.shared.held);
        *held = Held::default();
        Some(fill(&mut held, next))
    }
}

async fn run(client: &Client, command: Command) -> Result<Answer, Failure> {
    let done = |result: Result<(), ClientError>| result.map(|()| Answer::Done).map_err(failure);
    let party = |result: Result<Party, ClientError>| result.map(Answer::Party).map_err(failure);
    match command {
        Command::Create {
            open,
            max_size,
            label,
        } => party(
            client
                .create_party(PartySettings {
                    open,
                    max_size,
                    label,
                    ..PartySettings::default()
                })
                .await,
        ),
        Command::Join(party_id) => match client.join_party(party_id).await {
            Ok(JoinOutcome::Joined(joined)) => Ok(Answer::Party(joined)),
            Ok(JoinOutcome::Queued { party_id }) => Ok(Answer::Queued(party_id)),
            Err(error) => Err(failure(error)),
        },
        Command::Leave(party_id) => done(client.leave_party(party_id).await),
        Command::Accept(party_id, user) => done(client.accept(party_id, &user).await),
        Command::Reject(party_id, user) => done(client.reject(party_id, &user).await),
        Command::Kick(party_id, user) => done(client.kick(party_id, &user).await),
        Command::Promote(party_id, user) => done(client.promote(party_id, &user).await),
        Command::Close(party_id) => done(client.close_party(party_id).await),
        Command::Update {
            party_id,
            open,
            max_size,
            label,
        } => party(
            client
                .update_party(
                    party_id,
                    PartyUpdate {
                        open,
                        max_size,
                        label,
                        invite_policy: None,
                    },
                )
                .await,
        ),
        Command::Get(party_id) => party(client.get_party(party_id).await),
        Command::ListRequests(party_id) => client
            .list_join_requests(party_id)
            .await
            .map(Answer::Requests)
            .map_err(failure),
        Command::SendReliable {
            party_id,
            op_code,
            data,
        } => done(client.send_data_reliable(party_id, op_code, &data).await),
    }
}

fn leave_reason(reason: LeaveReason) -> i32 {
    match reason {
        LeaveReason::Left => 0,
        LeaveReason::Kicked => 1,
        LeaveReason::SessionEnded => 2,
        LeaveReason::Banned => 3,
    }
}

fn reject_reason(reason: RejectReason) -> i32 {
    match reason {
        RejectReason::Rejected => 0,
        RejectReason::PartyClosed => 1,
        RejectReason::Expired => 2,
    }
}

fn gone_reason(reason: RequestGoneReason) -> i32 {
    match reason {
        RequestGoneReason::Cancelled => 0,
        RequestGoneReason::Expired => 1,
        RequestGoneReason::SessionEnded => 2,
    }
}

fn set_party(held: &mut Held, event: &mut PlEvent, party: &Party) {
    event.has_party = true;
    event.party_id = held.text(&party.party_id.to_string());
    event.open = party.open;
    event.max_size = party.max_size;
    event.label = held.text(&party.label);
    let leader_connected = party
        .member(&party.leader.user_id)
        .is_none_or(|m| m.connected);
    event.leader = held.member(&party.leader, leader_connected);
    let members: Vec<PlMember> = party
        .members
        .iter()
        .map(|m| held.member(&m.presence, m.connected))
        .collect();
    (event.members, event.member_count) = held.list(members);
    set_requests(held, event, &party.join_requests);
}

fn set_requests(held: &mut Held, event: &mut PlEvent, requests: &[Presence]) {
    let requests: Vec<PlMember> = requests.iter().map(|p| held.member(p, true)).collect();
    (event.requests, event.request_count) = held.list(requests);
}

fn set_failure(held: &mut Held, event: &mut PlEvent, failure: &Failure) {
    event.error_code = failure.code;
    event.error_message = held.text(&failure.message);
}

fn session_text(held: &mut Held, session: SessionId) -> *const c_char {
    held.text(&session.to_string())
}

fn party_only(held: &mut Held, event: &mut PlEvent, kind: i32, party_id: PartyId) {
    event.kind = kind;
    event.party_id = held.text(&party_id.to_string());
}

/// Turns one queued item into the C event, its text owned by `held`.
fn fill(held: &mut Held, queued: Queued) -> PlEvent {
    let mut event = PlEvent::none();
    match queued {
        Queued::Connected(me) => {
            event.kind = PL_EVENT_CONNECTED;
            event.session_id = session_text(held, me.session_id);
            event.member = held.member(&me, true);
        }
        Queued::ConnectFailed(failure) => {
            event.kind = PL_EVENT_DISCONNECTED;
            set_failure(held, &mut event, &failure);
        }
        Queued::Reply(request_id, answer) => {
            event.kind = PL_EVENT_REPLY;
            event.request_id = request_id;
            match answer {
                Ok(Answer::Done) => {}
                Ok(Answer::Party(party)) => set_party(held, &mut event, &party),
                Ok(Answer::Queued(party_id)) => {
                    event.queued = true;
                    event.party_id = held.text(&party_id.to_string());
                }
                Ok(Answer::Requests(requests)) => set_requests(held, &mut event, &requests),
                Err(failure) => set_failure(held, &mut event, &failure),
            }
        }
        Queued::Event(game_event) => match game_event {
            Event::PartyJoined { party } => {
                event.kind = PL_EVENT_PARTY_JOINED;
                set_party(held, &mut event, &party);
            }
            Event::PartyUpdated { party } => {
                event.kind = PL_EVENT_PARTY_UPDATED;
                set_party(held, &mut event, &party);
            }
            Event::PartySynced { party } => {
                event.kind = PL_EVENT_PARTY_SYNCED;
                set_party(held, &mut event, &party);
            }
            Event::MemberJoined { party_id, member } => {
                party_only(held, &mut event, PL_EVENT_MEMBER_JOINED, party_id);
                event.member = held.member(&member, true);
            }
            Event::MemberLeft {
                party_id,
                member,
                reason,
            } => {
                party_only(held, &mut event, PL_EVENT_MEMBER_LEFT, party_id);
                event.member = held.member(&member, false);
                event.reason = leave_reason(reason);
            }
            Event::LeaderChanged { party_id, leader } => {
                party_only(held, &mut event, PL_EVENT_LEADER_CHANGED, party_id);
                event.member = held.member(&leader, true);
            }
            Event::MemberConnectionChanged {
                party_id,
                member,
                connected,
            } => {
                party_only(held, &mut event, PL_EVENT_MEMBER_CONNECTION, party_id);
                event.member = held.member(&member, connected);
            }
            Event::JoinRequested {
                party_id,
                requester,
            } => {
                party_only(held, &mut event, PL_EVENT_JOIN_REQUESTED, party_id);
                event.member = held.member(&requester, true);
            }
            Event::JoinRequestGone {
                party_id,
                requester,
                reason,
            } => {
                party_only(held, &mut event, PL_EVENT_JOIN_REQUEST_GONE, party_id);
                event.member = held.member(&requester, true);
                event.reason = gone_reason(reason);
            }
            Event::JoinRequests { party_id, requests } => {
                party_only(held, &mut event, PL_EVENT_JOIN_REQUESTS, party_id);
                set_requests(held, &mut event, &requests);
            }
            Event::JoinRejected { party_id, reason } => {
                party_only(held, &mut event, PL_EVENT_JOIN_REJECTED, party_id);
                event.reason = reject_reason(reason);
            }
            Event::Kicked { party_id } => party_only(held, &mut event, PL_EVENT_KICKED, party_id),
            Event::PartyClosed { party_id } => {
                party_only(held, &mut event, PL_EVENT_PARTY_CLOSED, party_id)
            }
            Event::PartyLost { party_id } => {
                party_only(held, &mut event, PL_EVENT_PARTY_LOST, party_id)
            }
            Event::Data(data) => {
                party_only(held, &mut event, PL_EVENT_DATA, data.party_id);
                event.member = held.member(&data.sender, true);
                event.op_code = data.op_code;
                event.reliable = data.reliable;
                (event.data, event.data_len) = held.data(data.data);
            }
            Event::DataRefused {
                party_id,
                op_code,
                error,
            } => {
                party_only(held, &mut event, PL_EVENT_DATA_REFUSED, party_id);
                event.op_code = op_code;
                event.error_code = i32::from(error.code.number());
                event.error_message = held.text(&error.message);
            }
            Event::Reconnecting { reason } => {
                event.kind = PL_EVENT_RECONNECTING;
                event.error_code = PL_ERR_RECONNECTING;
                event.error_message = held.text(&reason.to_string());
            }
            Event::Resumed => event.kind = PL_EVENT_RESUMED,
            Event::SessionLost { new_session, .. } => {
                event.kind = PL_EVENT_SESSION_LOST;
                event.session_id = session_text(held, new_session);
            }
            Event::Disconnected { reason } => {
                event.kind = PL_EVENT_DISCONNECTED;
                event.error_code = PL_ERR_CLOSED;
                event.error_message = held.text(&reason.to_string());
            }
            Event::ProtocolError { message } => {
                event.kind = PL_EVENT_PROTOCOL_ERROR;
                event.error_code = PL_ERR_PROTOCOL;
                event.error_message = held.text(&message);
            }
            // TODO(gather branch): the C ABI's events for status, invites,
            // state, attributes, codes, listing and bans.
            _ => {}
        },
    }
    event
}
