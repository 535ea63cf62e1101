//! What stands behind a `PlClient`: a small tokio runtime running the Rust
//! SDK, a queue of answers for the game to poll, and the error plumbing
//! that keeps panics and Rust errors on this side of the boundary.

use crate::event::{
    Held, PlBan, PlEvent, PlInvite, PlKeyNumber, PlKeyRange, PlKeyValue, PlKeyValues,
    PlListedParty, PlMatchedPlayer, PlMember, PlMemberProperties, PlMute, PlTicketRequest,
    PlUserStatus,
};
use crate::*;
use partyline_client::protocol::{Command, JoinOutcome as WireJoinOutcome, Reply};
use partyline_client::{
    certificates_from_pem, check_command, load_certificates, resolve_server, shared_endpoint,
    Client, ClientConfig, ClientError, ConnectionQuality, Endpoint, ErrorCode, Event, Events,
    InviteGoneReason, InvitePolicy, KeyValues, LeaderPolicy, LeaveReason, MatchFound,
    MemberProperties, NumberRange, Numbers, Party, PartyBan, PartyId, PartyInvite, Presence,
    ReadyCheck, ReadyCheckOutcome, RejectReason, RequestGoneReason, SearchPage, SessionId,
    TicketCancelReason, TicketQuery, TicketRequest, UserStatus, GOODBYE_LIMIT,
};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::ThreadId;
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

/// A caller's array of `count` C strings (NULL with 0: none), copied.
pub(crate) unsafe fn text_list_arg(
    items: *const *const c_char,
    count: usize,
    what: &str,
) -> Result<Vec<String>, Failure> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if items.is_null() {
        return Err(invalid(format!("{what} is NULL but its count is {count}")));
    }
    std::slice::from_raw_parts(items, count)
        .iter()
        .enumerate()
        .map(|(i, &item)| {
            let name = format!("{what}[{i}]");
            text(item, &name)?.ok_or_else(|| invalid(format!("{name} is NULL")))
        })
        .collect()
}

/// A caller's array of `count` key-value pairs (NULL with 0: none), copied
/// into a map; a key given twice keeps its last value.
pub(crate) unsafe fn key_values_arg(
    items: *const PlKeyValue,
    count: usize,
    what: &str,
) -> Result<KeyValues, Failure> {
    if count == 0 {
        return Ok(KeyValues::new());
    }
    if items.is_null() {
        return Err(invalid(format!("{what} is NULL but its count is {count}")));
    }
    let mut map = KeyValues::new();
    for (i, pair) in std::slice::from_raw_parts(items, count).iter().enumerate() {
        let key_name = format!("{what}[{i}].key");
        let key =
            text(pair.key, &key_name)?.ok_or_else(|| invalid(format!("{key_name} is NULL")))?;
        let value_name = format!("{what}[{i}].value");
        let value = text(pair.value, &value_name)?
            .ok_or_else(|| invalid(format!("{value_name} is NULL")))?;
        map.insert(key, value);
    }
    Ok(map)
}

/// A caller's array of `count` items (NULL with 0: none), borrowed for the
/// call.
unsafe fn slice_arg<'a, T>(items: *const T, count: usize, what: &str) -> Result<&'a [T], Failure> {
    if count == 0 {
        return Ok(&[]);
    }
    if items.is_null() {
        return Err(invalid(format!("{what} is NULL but its count is {count}")));
    }
    Ok(std::slice::from_raw_parts(items, count))
}

/// A required C string inside an array entry, named for the error.
unsafe fn entry_text(pointer: *const c_char, name: String) -> Result<String, Failure> {
    text(pointer, &name)?.ok_or_else(|| invalid(format!("{name} is NULL")))
}

/// A caller's array of `count` integer pairs, copied into a map; a key
/// given twice keeps its last value.
pub(crate) unsafe fn key_numbers_arg(
    items: *const PlKeyNumber,
    count: usize,
    what: &str,
) -> Result<Numbers, Failure> {
    let mut map = Numbers::new();
    for (i, pair) in slice_arg(items, count, what)?.iter().enumerate() {
        map.insert(
            entry_text(pair.key, format!("{what}[{i}].key"))?,
            pair.value,
        );
    }
    Ok(map)
}

/// A caller's array of `count` ranges, copied into a map; a key given
/// twice keeps its last range. The server judges `min` above `max`.
unsafe fn ranges_arg(
    items: *const PlKeyRange,
    count: usize,
    what: &str,
) -> Result<std::collections::BTreeMap<String, NumberRange>, Failure> {
    let mut map = std::collections::BTreeMap::new();
    for (i, range) in slice_arg(items, count, what)?.iter().enumerate() {
        let key = entry_text(range.key, format!("{what}[{i}].key"))?;
        map.insert(
            key,
            NumberRange {
                min: range.min,
                max: range.max,
            },
        );
    }
    Ok(map)
}

unsafe fn members_arg(
    items: *const PlMemberProperties,
    count: usize,
) -> Result<Vec<MemberProperties>, Failure> {
    slice_arg(items, count, "members")?
        .iter()
        .enumerate()
        .map(|(i, member)| {
            Ok(MemberProperties {
                user_id: entry_text(member.user_id, format!("members[{i}].user_id"))?,
                strings: key_values_arg(
                    member.strings,
                    member.string_count,
                    &format!("members[{i}].strings"),
                )?,
                numbers: key_numbers_arg(
                    member.numbers,
                    member.number_count,
                    &format!("members[{i}].numbers"),
                )?,
            })
        })
        .collect()
}

/// `pl_submit_ticket`'s request, copied. Counts and ranges are the
/// server's to judge (it answers with its refusal codes).
pub(crate) unsafe fn ticket_arg(request: &PlTicketRequest) -> Result<TicketRequest, Failure> {
    let party_id = if request.party_id.is_null() {
        None
    } else {
        Some(party_arg(request.party_id)?)
    };
    Ok(TicketRequest {
        party_id,
        min_count: request.min_count,
        max_count: request.max_count,
        count_multiple: request.count_multiple,
        relaxed_min_count: request.relaxed_min_count,
        strings: key_values_arg(request.strings, request.string_count, "strings")?,
        numbers: key_numbers_arg(request.numbers, request.number_count, "numbers")?,
        query: TicketQuery {
            strings: key_values_arg(
                request.query_strings,
                request.query_string_count,
                "query_strings",
            )?,
            ranges: ranges_arg(
                request.query_ranges,
                request.query_range_count,
                "query_ranges",
            )?,
        },
        members: members_arg(request.members, request.member_count)?,
    })
}

/// A `PL_INVITE_POLICY_*`.
pub(crate) fn invite_policy_arg(policy: i32) -> Result<InvitePolicy, Failure> {
    match policy {
        PL_INVITE_POLICY_LEADER => Ok(InvitePolicy::Leader),
        PL_INVITE_POLICY_ANY_MEMBER => Ok(InvitePolicy::AnyMember),
        other => Err(invalid(format!(
            "invite_policy must be PL_INVITE_POLICY_LEADER (0) or PL_INVITE_POLICY_ANY_MEMBER (1), not {other}"
        ))),
    }
}

/// A `PL_LEADER_POLICY_*`.
pub(crate) fn leader_policy_arg(policy: i32) -> Result<LeaderPolicy, Failure> {
    match policy {
        PL_LEADER_POLICY_TENURE => Ok(LeaderPolicy::Tenure),
        PL_LEADER_POLICY_CONNECTION_QUALITY => Ok(LeaderPolicy::ConnectionQuality),
        other => Err(invalid(format!(
            "leader_policy must be PL_LEADER_POLICY_TENURE (0) or PL_LEADER_POLICY_CONNECTION_QUALITY (1), not {other}"
        ))),
    }
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
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "give one certificate to trust, not two: cert_pem_path or cert_pem (the other NULL)",
                ))
            }
            (Some(path), None) => load_certificates(path).map_err(config_error)?,
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
        config.validate().map_err(refused_here)?;
        Ok(config)
    }
}

/// What a successful command answered.
// One per command answer, consumed at once.
#[allow(clippy::large_enum_variant)]
enum Answer {
    Done,
    Party(Party),
    Queued(PartyId),
    Requests(Vec<Presence>),
    Statuses(Vec<UserStatus>),
    Invites(Vec<PartyInvite>),
    JoinCode(PartyId, String),
    Parties(SearchPage),
    Bans(PartyId, Vec<PartyBan>),
    Ticket(u64),
    Blocks(Vec<String>),
}

impl Answer {
    /// A reply in the C event's terms; a party as the client's roster has it.
    fn of(client: &Client, reply: Reply) -> Answer {
        match reply {
            Reply::Party(snapshot) | Reply::Join(WireJoinOutcome::Joined(snapshot)) => {
                Answer::Party(client.party_view(snapshot))
            }
            Reply::Join(WireJoinOutcome::Queued { party_id, .. }) => Answer::Queued(party_id),
            Reply::JoinRequests { requests, .. } => Answer::Requests(requests),
            Reply::Done => Answer::Done,
            Reply::Followed { online } => Answer::Statuses(online),
            Reply::Invites(invites) => Answer::Invites(invites),
            Reply::JoinCode { party_id, code } => Answer::JoinCode(party_id, code),
            Reply::Parties {
                parties,
                next_cursor,
            } => Answer::Parties(SearchPage {
                parties,
                next_cursor,
            }),
            Reply::Bans { party_id, bans } => Answer::Bans(party_id, bans),
            Reply::TicketStarted { ticket_id } => Answer::Ticket(ticket_id),
            Reply::Blocks { user_ids } => Answer::Blocks(user_ids),
        }
    }
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

// Lock order, everywhere: `state` (its watch lock), then `queue`, then
// `events`, then `held`.
struct Shared {
    state: watch::Sender<State>,
    queue: Mutex<VecDeque<Queued>>,
    events: Mutex<Option<Events>>,
    /// What each polling thread's last event points to, kept until that
    /// thread polls this client again (or the client is freed): one
    /// thread's poll never frees what another thread is reading.
    held: Mutex<HashMap<ThreadId, Held>>,
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
            State::Gone(failure) => Err(over(failure)),
            State::Connecting => Err(closed("still connecting")),
        }
    }

    /// Makes the connection the client's, unless the game closed it
    /// meanwhile; then it is closed at once.
    fn connected(&self, client: Client, events: Events) {
        let client = Arc::new(client);
        let me = client.presence();
        let mut events = Some(events);
        let installed = self.state.send_if_modified(|state| {
            if !matches!(state, State::Connecting) {
                return false;
            }
            // Queued before the events are handed over: CONNECTED comes first.
            let mut queue = lock(&self.queue);
            queue.push_back(Queued::Connected(me.clone()));
            *lock(&self.events) = events.take();
            *state = State::Ready(client.clone());
            true
        });
        if !installed {
            client.disconnect();
        }
    }

    /// The connection could not be made (unless the game closed it first,
    /// and was told so then).
    fn not_connected(&self, failure: Failure) {
        self.state.send_if_modified(|state| {
            if !matches!(state, State::Connecting) {
                return false;
            }
            lock(&self.queue).push_back(Queued::ConnectFailed(failure.clone()));
            *state = State::Gone(failure.clone());
            true
        });
    }
}

fn closed(message: &str) -> Failure {
    Failure {
        code: PL_ERR_CLOSED,
        message: format!("the session is closed: {message}"),
    }
}

/// What a call gets once the session is over (or never began): always
/// `PL_ERR_CLOSED` (a refusal's positive code would read as a request id),
/// with why it ended.
fn over(why: &Failure) -> Failure {
    if why.code == PL_ERR_CLOSED {
        why.clone()
    } else {
        closed(&why.message)
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

/// A refusal made on this side before anything was sent, returned by the
/// call itself: a command or Hello over the frame limit is
/// `PL_ERR_TOO_LARGE` (a positive code would read as a request id).
fn refused_here(error: ClientError) -> Failure {
    match &error {
        ClientError::Refused(body) if body.code == ErrorCode::PayloadTooLarge => Failure {
            code: PL_ERR_TOO_LARGE,
            message: error.to_string(),
        },
        _ => failure(error),
    }
}

pub(crate) struct ClientHandle {
    runtime: Option<tokio::runtime::Runtime>,
    shared: Arc<Shared>,
    /// The client's UDP endpoint, this handle's own: freeing waits for it
    /// to drain, so the goodbye leaves before the runtime stops.
    endpoint: Endpoint,
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
        let endpoint = {
            let _inside = runtime.enter();
            shared_endpoint(&config, None).map_err(failure)?
        };
        let shared = Arc::new(Shared {
            state: watch::Sender::new(State::Connecting),
            queue: Mutex::new(VecDeque::new()),
            events: Mutex::new(None),
            held: Mutex::new(HashMap::new()),
            next_request: AtomicI64::new(1),
        });
        {
            let (shared, endpoint) = (shared.clone(), endpoint.clone());
            runtime.spawn(async move {
                match Client::connect_on(&endpoint, config).await {
                    Ok((client, events)) => shared.connected(client, events),
                    Err(error) => shared.not_connected(failure(error)),
                }
            });
        }
        Ok(ClientHandle {
            runtime: Some(runtime),
            shared,
            endpoint,
        })
    }

    /// Starts a command; its reply is queued when it comes. Refused at once
    /// (no request id) when the session is over or the command too large.
    pub(crate) fn start(&self, command: Command) -> Result<i64, Failure> {
        match &*self.shared.state.borrow() {
            State::Gone(failure) => return Err(over(failure)),
            State::Ready(client) => {
                if let Some(reason) = client.closed() {
                    return Err(failure(ClientError::Closed(reason)));
                }
            }
            State::Connecting => {}
        }
        check_command(&command).map_err(refused_here)?;
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| closed("the client was freed"))?;
        let request_id = self.shared.next_request.fetch_add(1, Ordering::Relaxed);
        let shared = self.shared.clone();
        runtime.spawn(async move {
            let answer = match shared.client().await {
                Ok(client) => match client.request(command).await {
                    Ok(reply) => Ok(Answer::of(&client, reply)),
                    Err(error) => Err(failure(error)),
                },
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
            State::Gone(failure) => Err(over(failure)),
        }
    }

    /// Ends the session without waiting. For the game, a connection still
    /// being made is cancelled: `PL_EVENT_DISCONNECTED` is queued now, and
    /// no `PL_EVENT_CONNECTED` follows. Underneath, the connection under way
    /// is left to finish and then says goodbye (`Shared::connected`): cut
    /// between the server's Welcome and its arrival, the server would keep
    /// the new session for its grace window. A connected session says
    /// goodbye at once (the SDK's `PL_EVENT_DISCONNECTED` follows).
    pub(crate) fn close(&self) {
        self.shared.state.send_if_modified(|state| match state {
            State::Connecting => {
                let failure = closed("pl_client_close was called while connecting");
                lock(&self.shared.queue).push_back(Queued::ConnectFailed(failure.clone()));
                *state = State::Gone(failure);
                true
            }
            State::Ready(client) => {
                client.disconnect();
                false
            }
            State::Gone(_) => false,
        });
    }

    /// Closes, waits (at most `GOODBYE_LIMIT`) for the goodbye to leave
    /// (and a connection under way to finish and say it), then stops the
    /// network thread.
    pub(crate) fn shutdown(mut self) {
        self.close();
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        // A plain std wait on this thread, whatever runtime it may be in:
        // the drain runs on the client's own runtime.
        let (drained, finished) = std::sync::mpsc::sync_channel(1);
        let endpoint = self.endpoint.clone();
        runtime.spawn(async move {
            endpoint.wait_idle().await;
            let _ = drained.send(());
        });
        let _ = finished.recv_timeout(GOODBYE_LIMIT);
        self.shared
            .state
            .send_replace(State::Gone(closed("the client was freed")));
        lock(&self.shared.events).take();
        if tokio::runtime::Handle::try_current().is_ok() {
            // Inside some async runtime we may not block.
            runtime.shutdown_background();
        } else {
            runtime.shutdown_timeout(Duration::from_millis(100));
        }
    }

    /// The next event, filled in and owned by this client until this
    /// thread polls it again.
    pub(crate) fn poll(&self) -> Option<PlEvent> {
        let thread = std::thread::current().id();
        // The queue stays locked while the events are read: CONNECTED (and
        // replies) are never passed by the events behind them.
        let next = {
            let mut queue = lock(&self.shared.queue);
            queue.pop_front().or_else(|| {
                lock(&self.shared.events)
                    .as_mut()
                    .and_then(|events| events.try_next())
                    .map(Queued::Event)
            })
        };
        let Some(next) = next else {
            // What this thread's last event pointed to may go now.
            lock(&self.shared.held).remove(&thread);
            return None;
        };
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
        let mine = held.entry(thread).or_default();
        *mine = Held::default();
        Some(fill(mine, next))
    }
}

fn leave_reason(reason: LeaveReason) -> i32 {
    match reason {
        LeaveReason::Left => PL_LEAVE_LEFT,
        LeaveReason::Kicked => PL_LEAVE_KICKED,
        LeaveReason::SessionEnded => PL_LEAVE_SESSION_ENDED,
        LeaveReason::Banned => PL_LEAVE_BANNED,
    }
}

fn reject_reason(reason: RejectReason) -> i32 {
    match reason {
        RejectReason::Rejected => PL_REJECT_REJECTED,
        RejectReason::PartyClosed => PL_REJECT_PARTY_CLOSED,
        RejectReason::Expired => PL_REJECT_EXPIRED,
    }
}

fn gone_reason(reason: RequestGoneReason) -> i32 {
    match reason {
        RequestGoneReason::Cancelled => PL_REQUEST_GONE_CANCELLED,
        RequestGoneReason::Expired => PL_REQUEST_GONE_EXPIRED,
        RequestGoneReason::SessionEnded => PL_REQUEST_GONE_SESSION_ENDED,
    }
}

fn invite_gone_reason(reason: InviteGoneReason) -> i32 {
    match reason {
        InviteGoneReason::Revoked => PL_INVITE_GONE_REVOKED,
        InviteGoneReason::PartyClosed => PL_INVITE_GONE_PARTY_CLOSED,
        InviteGoneReason::Expired => PL_INVITE_GONE_EXPIRED,
        InviteGoneReason::Banned => PL_INVITE_GONE_BANNED,
        InviteGoneReason::Answered => PL_INVITE_GONE_ANSWERED,
    }
}

fn ticket_cancel_reason(reason: TicketCancelReason) -> i32 {
    match reason {
        TicketCancelReason::Cancelled => PL_TICKET_CANCEL_CANCELLED,
        TicketCancelReason::MembershipChanged => PL_TICKET_CANCEL_MEMBERS_CHANGED,
        TicketCancelReason::PartyClosed => PL_TICKET_CANCEL_PARTY_CLOSED,
        TicketCancelReason::SessionEnded => PL_TICKET_CANCEL_SESSION_ENDED,
        TicketCancelReason::NodeLost => PL_TICKET_CANCEL_NODE_LOST,
    }
}

/// A party id as text, or NULL for none (a solo ticket).
fn optional_party(held: &mut Held, party_id: Option<PartyId>) -> *const c_char {
    party_id.map_or(std::ptr::null(), |id| held.text(&id.to_string()))
}

fn set_match(held: &mut Held, event: &mut PlEvent, found: &MatchFound) {
    event.kind = PL_EVENT_MATCHED;
    event.ticket_id = found.ticket_id;
    event.match_id = held.text(&uuid_text(&found.match_id));
    let players: Vec<PlMatchedPlayer> = found
        .players
        .iter()
        .map(|p| PlMatchedPlayer {
            member: held.member(&p.presence, true),
            party_id: optional_party(held, p.party_id),
            strings: held.key_values(&p.strings),
            numbers: held.key_numbers(&p.numbers),
        })
        .collect();
    (event.players, event.player_count) = held.list(players);
    event.match_token = held.text(&found.token);
    event.token_expires_at = found.token_expires_at;
}

/// A UUID's 16 bytes in its usual text form (8-4-4-4-12 lower-case hex).
fn uuid_text(bytes: &[u8; 16]) -> String {
    let mut text = String::with_capacity(36);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

fn invite_policy(policy: InvitePolicy) -> i32 {
    match policy {
        InvitePolicy::Leader => PL_INVITE_POLICY_LEADER,
        InvitePolicy::AnyMember => PL_INVITE_POLICY_ANY_MEMBER,
    }
}

fn leader_policy(policy: LeaderPolicy) -> i32 {
    match policy {
        LeaderPolicy::Tenure => PL_LEADER_POLICY_TENURE,
        LeaderPolicy::ConnectionQuality => PL_LEADER_POLICY_CONNECTION_QUALITY,
    }
}

fn quality(quality: ConnectionQuality) -> i32 {
    match quality {
        ConnectionQuality::Unknown => PL_QUALITY_UNKNOWN,
        ConnectionQuality::Good => PL_QUALITY_GOOD,
        ConnectionQuality::Fair => PL_QUALITY_FAIR,
        ConnectionQuality::Poor => PL_QUALITY_POOR,
    }
}

fn invite(held: &mut Held, invite: &PartyInvite) -> PlInvite {
    PlInvite {
        party_id: held.text(&invite.party_id.to_string()),
        inviter: held.member(&invite.inviter, true),
        member_count: invite.members,
        max_size: invite.max_size,
        open: invite.open,
        label: held.text(&invite.label),
        leader: held.member(&invite.leader, true),
        expires_at_ms: invite.expires_at_ms,
    }
}

fn set_invites(held: &mut Held, event: &mut PlEvent, invites: &[PartyInvite]) {
    let invites: Vec<PlInvite> = invites.iter().map(|i| invite(held, i)).collect();
    (event.invites, event.invite_count) = held.list(invites);
}

fn set_statuses(held: &mut Held, event: &mut PlEvent, statuses: &[UserStatus]) {
    let statuses: Vec<PlUserStatus> = statuses
        .iter()
        .map(|s| PlUserStatus {
            member: held.member(&s.presence, true),
            status: held.text(&s.status),
        })
        .collect();
    (event.statuses, event.status_count) = held.list(statuses);
}

fn set_bans(held: &mut Held, event: &mut PlEvent, bans: &[PartyBan]) {
    let bans: Vec<PlBan> = bans
        .iter()
        .map(|b| PlBan {
            user_id: held.text(&b.user_id),
            until_ms: b.until_ms,
        })
        .collect();
    (event.bans, event.ban_count) = held.list(bans);
}

fn set_search_page(held: &mut Held, event: &mut PlEvent, page: &SearchPage) {
    let parties: Vec<PlListedParty> = page
        .parties
        .iter()
        .map(|p| PlListedParty {
            party_id: held.text(&p.party_id.to_string()),
            member_count: p.members,
            max_size: p.max_size,
            open: p.open,
            label: held.text(&p.label),
            properties: held.key_values(&p.properties),
        })
        .collect();
    (event.parties, event.party_count) = held.list(parties);
    event.next_cursor = page.next_cursor;
}

/// A status event: the session and its text.
fn set_status(held: &mut Held, event: &mut PlEvent, kind: i32, status: &UserStatus) {
    event.kind = kind;
    event.member = held.member(&status.presence, true);
    event.status = held.text(&status.status);
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
    // Parallel to `members`, so PlMember (inside PlEvent twice) keeps its
    // layout and older callers their offsets.
    let attributes: Vec<PlKeyValues> = party
        .members
        .iter()
        .map(|m| held.key_values(&m.attributes))
        .collect();
    (event.member_attributes, _) = held.list(attributes);
    set_requests(held, event, &party.join_requests);
    event.invite_policy = invite_policy(party.invite_policy);
    event.state = held.key_values(&party.state);
    event.join_code = held.text(&party.join_code);
    event.listed = party.listed;
    event.properties = held.key_values(&party.properties);
    if let Some(check) = &party.ready_check {
        event.has_ready_check = true;
        set_ready_check(held, event, check);
    }
    event.leader_policy = leader_policy(party.leader_policy);
    // Parallel to `members`, as `member_attributes` is.
    let qualities: Vec<i32> = party.members.iter().map(|m| quality(m.quality)).collect();
    (event.member_quality, _) = held.list(qualities);
    let muted: Vec<PlMute> = party
        .muted
        .iter()
        .map(|mute| PlMute {
            user_id: held.text(&mute.user_id),
            has_op_codes: mute.op_codes.is_some(),
            op_code_min: mute.op_codes.map_or(0, |range| range.min),
            op_code_max: mute.op_codes.map_or(0, |range| range.max),
        })
        .collect();
    (event.muted, event.muted_count) = held.list(muted);
}

/// A block list: the user ids, as C strings owned here.
fn set_blocked(held: &mut Held, event: &mut PlEvent, user_ids: &[String]) {
    let texts: Vec<*const c_char> = user_ids.iter().map(|user_id| held.text(user_id)).collect();
    (event.blocked, event.blocked_count) = held.list(texts);
}

/// A running ready check's fields (its start, or a party's view).
fn set_ready_check(held: &mut Held, event: &mut PlEvent, check: &ReadyCheck) {
    event.check_id = check.check_id;
    event.check_message = held.text(&check.message);
    event.check_timeout_ms = check.timeout_ms;
    event.check_ends_at_ms = check.ends_at_ms;
    set_check_lists(
        held,
        event,
        &check.ready,
        &check.not_ready,
        &check.no_answer,
    );
}

fn set_check_lists(
    held: &mut Held,
    event: &mut PlEvent,
    ready: &[Presence],
    not_ready: &[Presence],
    no_answer: &[Presence],
) {
    let mut list = |who: &[Presence]| {
        let members: Vec<PlMember> = who.iter().map(|p| held.member(p, true)).collect();
        held.list(members)
    };
    (event.check_ready, event.check_ready_count) = list(ready);
    (event.check_not_ready, event.check_not_ready_count) = list(not_ready);
    (event.check_no_answer, event.check_no_answer_count) = list(no_answer);
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
                Ok(Answer::Statuses(statuses)) => set_statuses(held, &mut event, &statuses),
                Ok(Answer::Invites(invites)) => set_invites(held, &mut event, &invites),
                Ok(Answer::JoinCode(party_id, code)) => {
                    event.party_id = held.text(&party_id.to_string());
                    event.join_code = held.text(&code);
                }
                Ok(Answer::Parties(page)) => set_search_page(held, &mut event, &page),
                Ok(Answer::Bans(party_id, bans)) => {
                    event.party_id = held.text(&party_id.to_string());
                    set_bans(held, &mut event, &bans);
                }
                Ok(Answer::Ticket(ticket_id)) => event.ticket_id = ticket_id,
                Ok(Answer::Blocks(user_ids)) => set_blocked(held, &mut event, &user_ids),
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
            Event::StatusOnline(status) => {
                set_status(held, &mut event, PL_EVENT_STATUS_ONLINE, &status)
            }
            Event::StatusChanged(status) => {
                set_status(held, &mut event, PL_EVENT_STATUS_CHANGED, &status)
            }
            Event::StatusOffline { presence } => {
                event.kind = PL_EVENT_STATUS_OFFLINE;
                event.member = held.member(&presence, false);
            }
            Event::Invited(invited) => {
                party_only(held, &mut event, PL_EVENT_INVITED, invited.party_id);
                event.member = held.member(&invited.inviter, true);
                set_invites(held, &mut event, std::slice::from_ref(&invited));
            }
            Event::InviteGone { party_id, reason } => {
                party_only(held, &mut event, PL_EVENT_INVITE_GONE, party_id);
                event.reason = invite_gone_reason(reason);
            }
            Event::InviteDeclined { party_id, by } => {
                party_only(held, &mut event, PL_EVENT_INVITE_DECLINED, party_id);
                event.member = held.member(&by, true);
            }
            Event::PartyStateChanged { party_id, state } => {
                party_only(held, &mut event, PL_EVENT_PARTY_STATE_CHANGED, party_id);
                event.state = held.key_values(&state);
            }
            Event::MemberAttributesChanged {
                party_id,
                member,
                attributes,
            } => {
                party_only(
                    held,
                    &mut event,
                    PL_EVENT_MEMBER_ATTRIBUTES_CHANGED,
                    party_id,
                );
                event.member = held.member(&member, true);
                event.attributes = held.key_values(&attributes);
            }
            Event::JoinCodeChanged { party_id, code } => {
                party_only(held, &mut event, PL_EVENT_JOIN_CODE_CHANGED, party_id);
                event.join_code = held.text(&code);
            }
            Event::ListingChanged {
                party_id,
                listed,
                properties,
            } => {
                party_only(held, &mut event, PL_EVENT_LISTING_CHANGED, party_id);
                event.listed = listed;
                event.properties = held.key_values(&properties);
            }
            Event::Banned { party_id, until_ms } => {
                party_only(held, &mut event, PL_EVENT_BANNED, party_id);
                event.until_ms = until_ms;
            }
            Event::TicketStarted {
                ticket_id,
                party_id,
            } => {
                event.kind = PL_EVENT_TICKET_STARTED;
                event.ticket_id = ticket_id;
                event.party_id = optional_party(held, party_id);
            }
            Event::TicketCancelled { ticket_id, reason } => {
                event.kind = PL_EVENT_TICKET_CANCELLED;
                event.ticket_id = ticket_id;
                event.reason = ticket_cancel_reason(reason);
            }
            Event::Matched(found) => set_match(held, &mut event, &found),
            Event::ReadyCheckStarted { party_id, check } => {
                party_only(held, &mut event, PL_EVENT_READY_CHECK_STARTED, party_id);
                event.member = held.member(&check.started_by, true);
                set_ready_check(held, &mut event, &check);
            }
            Event::ReadyCheckAnswered {
                party_id,
                check_id,
                member,
                ready,
            } => {
                party_only(held, &mut event, PL_EVENT_READY_CHECK_ANSWERED, party_id);
                event.check_id = check_id;
                event.member = held.member(&member, true);
                event.ready = ready;
            }
            Event::ReadyCheckEnded {
                party_id,
                check_id,
                outcome,
                ready,
                not_ready,
                no_answer,
            } => {
                party_only(held, &mut event, PL_EVENT_READY_CHECK_ENDED, party_id);
                event.check_id = check_id;
                event.reason = match outcome {
                    ReadyCheckOutcome::AllReady => PL_READY_CHECK_ALL_READY,
                    ReadyCheckOutcome::TimedOut => PL_READY_CHECK_TIMED_OUT,
                    ReadyCheckOutcome::Cancelled => PL_READY_CHECK_CANCELLED,
                };
                set_check_lists(held, &mut event, &ready, &not_ready, &no_answer);
            }
            Event::BlocksChanged { user_ids } => {
                event.kind = PL_EVENT_BLOCKS_CHANGED;
                set_blocked(held, &mut event, &user_ids);
            }
        },
    }
    event
}
