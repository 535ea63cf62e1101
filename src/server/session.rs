//! A session as the rest of the server sees it. It outlives its connection:
//! while the connection is lost it keeps its seats, numbers and logs the
//! events it would have been sent, and waits for a resume.

use super::peers::RemoteAt;
use super::pending::{Pending, Pushed};
use super::transport::ClientConnection;
use crate::protocol::{
    encode_frame, CloseCode, ErrorBody, Event, PartyId, Presence, Reply, ServerFrame, SessionId,
};
use bytes::Bytes;
use quinn::SendStream;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use tokio::sync::Notify;
use uuid::Uuid;

/// A session's seat or request in a party homed elsewhere, as its own node
/// last heard of it: enough to tell the session when that home is lost.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RemoteSeat {
    /// The party `seq` of the last event relayed to it (or its reply).
    pub(crate) seq: u64,
    /// A seat (`Closed` when the home is lost), or a waiting request
    /// (`JoinRejected`).
    pub(crate) seated: bool,
}

/// A local session's bookkeeping of other nodes.
#[derive(Debug, Default)]
pub(crate) struct SessionAbroad {
    /// Homes it ever sent a command to: told when it ends.
    pub(crate) homes: std::collections::HashSet<super::peers::NodeId>,
    /// Tickets it waits in on other nodes (by `TicketStarted` relayed),
    /// cancelled for it if their node is lost.
    pub(crate) tickets: std::collections::HashSet<u64>,
    pub(crate) remote: std::collections::HashMap<PartyId, RemoteSeat>,
}

/// A lost session's timers, kept by the server's deadline timer
/// (`super::deadlines`). Each names the attachment it was set for: a session
/// that came back meanwhile makes it stale.
pub(crate) enum SessionDeadline {
    /// A lost leader's grace is over: leadership passes on.
    LeaderGrace {
        session: SessionRef,
        generation: u64,
    },
    /// The grace window is over: the session ends.
    Grace {
        session: SessionRef,
        generation: u64,
    },
}

/// What a session shows its followers, and whom it follows.
#[derive(Debug)]
pub(crate) struct Social {
    pub(crate) status: String,
    pub(crate) visible: bool,
    pub(crate) follows: std::collections::HashSet<String>,
}

impl Default for Social {
    fn default() -> Self {
        Social {
            status: String::new(),
            visible: true,
            follows: Default::default(),
        }
    }
}

/// A queued outbound message. Boxed so that a session's queue holds 8-byte
/// slots rather than 184-byte ones.
pub(crate) type Queued = Box<Outbound>;

/// One connection's outbox: the party logic queues control messages without
/// blocking, the connection's writer drains them in order.
///
/// Not a tokio mpsc channel: a bounded one allocates about 800 bytes when it
/// is made (a cache-padded channel and a first block of 32 slots), for every
/// session, idle or not. This queue allocates nothing until a message waits.
pub(crate) fn outbox(capacity: usize) -> (OutboxSender, OutboxReceiver) {
    let shared = Arc::new(Outbox {
        state: Mutex::new(OutboxState {
            queue: VecDeque::new(),
            sender_gone: false,
            receiver_gone: false,
            goodbye: None,
        }),
        ready: Notify::new(),
        farewell: Notify::new(),
        capacity,
    });
    (OutboxSender(shared.clone()), OutboxReceiver(shared))
}

struct Outbox {
    state: Mutex<OutboxState>,
    /// Signalled on every message and when the sender goes; one waiter.
    ready: Notify,
    /// Signalled when the server says goodbye; one waiter (the writer).
    farewell: Notify,
    capacity: usize,
}

struct OutboxState {
    queue: VecDeque<Queued>,
    sender_gone: bool,
    receiver_gone: bool,
    /// The server closes this connection, with this code and reason: the
    /// writer stops writing, lets what is in flight settle, then closes.
    goodbye: Option<(CloseCode, String)>,
}

/// After a burst, a queue this large is given back once drained.
const OUTBOX_KEPT_SLOTS: usize = 64;

/// The outbox is full: the writer has fallen `capacity` messages behind.
#[derive(Debug)]
pub(crate) struct OutboxFull;

/// The party logic's end of an outbox. Dropping it closes the outbox: the
/// writer sends what is queued, then finishes the stream.
pub(crate) struct OutboxSender(Arc<Outbox>);

impl OutboxSender {
    /// Queues `message`, or refuses it when the outbox is full. Once the
    /// writer is gone, messages are dropped: nobody will send them.
    pub(crate) fn try_send(&self, message: Queued) -> Result<(), OutboxFull> {
        let mut state = lock(&self.0.state);
        if state.receiver_gone {
            return Ok(());
        }
        if state.queue.len() >= self.0.capacity {
            return Err(OutboxFull);
        }
        state.queue.push_back(message);
        drop(state);
        self.0.ready.notify_one();
        Ok(())
    }
}

impl OutboxSender {
    /// Asks the writer to close the connection with `code`: it stops
    /// writing, lets what is in flight settle, and closes (`write_outbox`).
    /// The first goodbye wins.
    pub(crate) fn goodbye(&self, code: CloseCode, reason: &str) {
        let mut state = lock(&self.0.state);
        if state.goodbye.is_none() {
            state.goodbye = Some((code, reason.to_string()));
        }
        drop(state);
        self.0.farewell.notify_one();
    }
}

impl Drop for OutboxSender {
    fn drop(&mut self) {
        lock(&self.0.state).sender_gone = true;
        self.0.ready.notify_one();
    }
}

impl std::fmt::Debug for OutboxSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxSender")
            .field("queued", &lock(&self.0.state).queue.len())
            .finish()
    }
}

/// The writer's end of an outbox.
pub(crate) struct OutboxReceiver(Arc<Outbox>);

impl OutboxReceiver {
    /// The next message; `None` once the sender is gone and all is drained.
    pub(crate) async fn recv(&mut self) -> Option<Queued> {
        loop {
            // Made before looking, so a message queued in between still
            // wakes it (`notify_one` leaves a permit when nobody waits).
            let notified = self.0.ready.notified();
            {
                let mut state = lock(&self.0.state);
                if let Some(message) = self.pop(&mut state) {
                    return Some(message);
                }
                if state.sender_gone {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// The next message if one is queued now.
    pub(crate) fn try_recv(&mut self) -> Option<Queued> {
        let mut state = lock(&self.0.state);
        self.pop(&mut state)
    }

    /// The server's goodbye, once it is said (waits until then).
    pub(crate) fn farewell(&self) -> Farewell {
        Farewell(self.0.clone())
    }

    fn pop(&self, state: &mut OutboxState) -> Option<Queued> {
        let message = state.queue.pop_front();
        if state.queue.is_empty() && state.queue.capacity() > OUTBOX_KEPT_SLOTS {
            state.queue = VecDeque::new();
        }
        message
    }
}

/// Waits for the server's goodbye on one outbox.
pub(crate) struct Farewell(Arc<Outbox>);

impl Farewell {
    /// The goodbye's code and reason, once said.
    pub(crate) async fn said(&self) -> (CloseCode, String) {
        loop {
            let notified = self.0.farewell.notified();
            if let Some(goodbye) = self.now() {
                return goodbye;
            }
            notified.await;
        }
    }

    /// The goodbye, if it was said.
    pub(crate) fn now(&self) -> Option<(CloseCode, String)> {
        lock(&self.0.state).goodbye.clone()
    }
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.receiver_gone = true;
        state.queue.clear();
    }
}

/// What goes out on a session's control stream, in order.
#[derive(Debug)]
pub(crate) enum Outbound {
    Response {
        id: u32,
        result: Result<Reply, ErrorBody>,
    },
    Event {
        seq: u64,
        event: Event,
    },
    FrameError(ErrorBody),
}

impl Outbound {
    fn into_frame(self) -> ServerFrame {
        match self {
            Outbound::Response { id, result } => ServerFrame::Response { id, result },
            Outbound::Event { seq, event } => ServerFrame::Event { seq, event },
            Outbound::FrameError(error) => ServerFrame::FrameError(error),
        }
    }
}

/// Why a resume was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResumeRefusal {
    /// Wrong or already-used token, or the session has ended.
    Token,
}

/// The result of attaching a connection to a session.
pub(crate) struct Attached {
    pub(crate) generation: u64,
    pub(crate) resume_token: String,
    /// The last event number before this attachment.
    pub(crate) last_event_seq: u64,
    /// Missed events to send before anything else; `None` when the gap is
    /// older than the replay log (send snapshots instead).
    pub(crate) replay: Option<Vec<Outbound>>,
    /// The connection this one replaces, to be closed.
    pub(crate) superseded: Option<ClientConnection>,
}

#[derive(Debug)]
struct SessionState {
    /// `Some` while a connection carries the session.
    outbox: Option<OutboxSender>,
    /// Counts attachments, so a stale connection task cannot detach a newer one.
    generation: u64,
    next_event_seq: u64,
    /// The most recent events, for exact replay on resume.
    log: VecDeque<(u64, Event)>,
    log_capacity: usize,
    resume_secret: Uuid,
    ended: bool,
}

#[derive(Debug)]
pub(crate) struct SessionLink {
    pub(crate) presence: Presence,
    /// The current connection, read on the datagram hot path.
    connection: RwLock<Option<ClientConnection>>,
    state: Mutex<SessionState>,
    /// Parties where this session has a seat or a join request; kept by the
    /// party table under its shard locks.
    parties: Mutex<HashSet<PartyId>>,
    /// Datagrams waiting for the coalescing flusher; untouched (and
    /// unallocated) when coalescing is off. Dropped with the link.
    pending: Mutex<Pending>,
    metrics: Arc<super::metrics::Metrics>,
    /// Status shown to followers, and whom this session follows.
    pub(crate) social: Mutex<Social>,
    /// Set when the server cut this session's connection for breaking a
    /// rule (from a task other than the control loop, which then ends the
    /// session without a grace window).
    pub(crate) cut_for_violation: std::sync::atomic::AtomicBool,
    /// Invites sent and join codes tried: each rate-limited on its own.
    pub(crate) invite_limit: Mutex<Option<super::limits::RateLimit>>,
    pub(crate) code_limit: Mutex<Option<super::limits::RateLimit>>,
    pub(crate) ticket_limit: Mutex<Option<super::limits::RateLimit>>,
    /// On a party's home node, for a member connected to another node:
    /// where its replies, events and data go instead of a connection (a
    /// **proxy**; `super::route` is what looks at it).
    pub(crate) remote: Option<RemoteAt>,
    /// A local session's bookkeeping of other nodes (its remote seats, the
    /// homes it reached); `None` until it reaches another node.
    pub(crate) abroad: Mutex<Option<Box<SessionAbroad>>>,
}

/// The link type stored in the party table.
pub(crate) type SessionRef = Arc<SessionLink>;

/// Takes a std mutex, poisoned or not: every critical section here is
/// short and leaves its data consistent, so a panic elsewhere must not stop
/// the server from serving.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SessionLink {
    pub(crate) fn new(
        presence: Presence,
        replay_events: usize,
        metrics: Arc<super::metrics::Metrics>,
    ) -> Self {
        SessionLink {
            presence,
            connection: RwLock::new(None),
            state: Mutex::new(SessionState {
                outbox: None,
                generation: 0,
                next_event_seq: 1,
                log: VecDeque::new(),
                log_capacity: replay_events,
                resume_secret: Uuid::new_v4(),
                ended: false,
            }),
            parties: Mutex::new(HashSet::new()),
            pending: Mutex::default(),
            metrics,
            social: Mutex::default(),
            cut_for_violation: std::sync::atomic::AtomicBool::new(false),
            invite_limit: Mutex::new(None),
            code_limit: Mutex::new(None),
            ticket_limit: Mutex::new(None),
            remote: None,
            abroad: Mutex::new(None),
        }
    }

    /// A member connected to another node, as its party's home sees it: no
    /// connection, no event log (its own node numbers and logs its events).
    pub(crate) fn new_proxy(
        presence: Presence,
        remote: RemoteAt,
        metrics: Arc<super::metrics::Metrics>,
    ) -> Self {
        SessionLink {
            remote: Some(remote),
            ..SessionLink::new(presence, 0, metrics)
        }
    }

    pub(crate) fn session_id(&self) -> SessionId {
        self.presence.session_id
    }

    /// Parses `<session id>.<secret>` (both simple-form UUIDs).
    pub(crate) fn parse_resume_token(token: &str) -> Option<(SessionId, Uuid)> {
        let (session, secret) = token.split_once('.')?;
        Some((
            SessionId(Uuid::try_parse(session).ok()?),
            Uuid::try_parse(secret).ok()?,
        ))
    }

    /// Attaches a connection. `resume` is `(secret, last_event_seq)` for a
    /// resume, checked and rotated atomically so a token works once.
    pub(crate) fn attach(
        &self,
        connection: ClientConnection,
        outbox: OutboxSender,
        resume: Option<(Uuid, u64)>,
    ) -> Result<Attached, ResumeRefusal> {
        let mut state = lock(&self.state);
        if state.ended {
            return Err(ResumeRefusal::Token);
        }
        let last_event_seq = state.next_event_seq - 1;
        let replay = match resume {
            None => Some(Vec::new()),
            Some((secret, _)) if secret != state.resume_secret => return Err(ResumeRefusal::Token),
            Some((_, last_seen)) => {
                let oldest_needed = last_seen + 1;
                let covered = last_seen <= last_event_seq
                    && state
                        .log
                        .front()
                        .map_or(oldest_needed == state.next_event_seq, |(seq, _)| {
                            *seq <= oldest_needed
                        });
                covered.then(|| {
                    state
                        .log
                        .iter()
                        .filter(|(seq, _)| *seq > last_seen)
                        .map(|(seq, event)| Outbound::Event {
                            seq: *seq,
                            event: event.clone(),
                        })
                        .collect()
                })
            }
        };
        state.generation += 1;
        state.resume_secret = Uuid::new_v4();
        state.outbox = Some(outbox);
        let superseded = self
            .connection
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(connection);
        Ok(Attached {
            generation: state.generation,
            resume_token: format!(
                "{}.{}",
                self.session_id().0.simple(),
                state.resume_secret.simple()
            ),
            last_event_seq,
            replay,
            superseded,
        })
    }

    /// Attaches an outbox with no connection behind it, as `attach` does
    /// for a new session: how the tests drive several nodes' sessions on
    /// tokio's paused clock, where QUIC cannot run (`super::hub_tests`).
    /// The attachment's generation; `None` once the session has ended.
    #[cfg(test)]
    pub(crate) fn attach_outbox(&self, outbox: OutboxSender) -> Option<u64> {
        let mut state = lock(&self.state);
        if state.ended {
            return None;
        }
        state.generation += 1;
        state.resume_secret = Uuid::new_v4();
        state.outbox = Some(outbox);
        Some(state.generation)
    }

    /// The connection of `generation` is gone. False if a newer connection
    /// already took over (nothing to do then).
    pub(crate) fn detach(&self, generation: u64) -> bool {
        let mut state = lock(&self.state);
        if state.generation != generation || state.outbox.is_none() {
            return false;
        }
        state.outbox = None;
        *self
            .connection
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
        true
    }

    /// Whether the connection of `generation` still carries the session (a
    /// takeover resume attaches a newer one).
    pub(crate) fn is_attached(&self, generation: u64) -> bool {
        let state = lock(&self.state);
        state.generation == generation && state.outbox.is_some() && !state.ended
    }

    pub(crate) fn is_detached_since(&self, generation: u64) -> bool {
        let state = lock(&self.state);
        state.generation == generation && state.outbox.is_none() && !state.ended
    }

    /// Ends the session if `generation` is still the latest attachment
    /// (and, with `only_if_detached`, no connection came back). Returns
    /// whether it ended now.
    pub(crate) fn end(&self, generation: u64, only_if_detached: bool) -> bool {
        let mut state = lock(&self.state);
        if state.ended
            || state.generation != generation
            || (only_if_detached && state.outbox.is_some())
        {
            return false;
        }
        state.ended = true;
        state.outbox = None;
        state.log.clear();
        *self
            .connection
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
        true
    }

    /// Numbers, logs and (when connected) queues an event on this node's
    /// connection. A full outbox means the client is not reading: its
    /// connection is cut, which starts the grace window like any other
    /// loss. (`push_event`, in `super::route`, picks this or the member's
    /// node.)
    pub(crate) fn queue_event(&self, event: Event) {
        let mut state = lock(&self.state);
        if state.ended {
            return;
        }
        let seq = state.next_event_seq;
        state.next_event_seq += 1;
        if state.log_capacity > 0 {
            if state.log.len() == state.log_capacity {
                state.log.pop_front();
            }
            state.log.push_back((seq, event.clone()));
        }
        if let Some(outbox) = &state.outbox {
            if let Err(OutboxFull) = outbox.try_send(Box::new(Outbound::Event { seq, event })) {
                drop(state);
                self.close_for_slow_consumer();
            }
        }
    }

    /// Queues a response or frame error on this node's connection; dropped
    /// when no connection carries the session (the request died with its
    /// connection).
    pub(crate) fn queue(&self, message: Outbound) {
        let state = lock(&self.state);
        if let Some(outbox) = &state.outbox {
            if let Err(OutboxFull) = outbox.try_send(Box::new(message)) {
                drop(state);
                self.close_for_slow_consumer();
            }
        }
    }

    fn close_for_slow_consumer(&self) {
        super::metrics::count(&self.metrics.slow_consumers);
        tracing::warn!(session = %self.session_id(), "slow consumer: outbox full, closing");
        self.close(
            CloseCode::SlowConsumer,
            "slow consumer: control stream not read",
        );
    }

    /// Whether a connection carries the session now (not in grace).
    pub(crate) fn is_connected(&self) -> bool {
        self.connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Where the current connection comes from, if any.
    pub(crate) fn remote_address(&self) -> Option<std::net::SocketAddr> {
        self.connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(ClientConnection::remote_address)
    }

    /// Ends the session whatever its attachment (the server's own
    /// decision, not a connection's); true if it ended now. Close the
    /// connection first: ending forgets it.
    pub(crate) fn end_now(&self) -> bool {
        let generation = lock(&self.state).generation;
        self.end(generation, false)
    }

    /// Closes the current connection, if any, with `code`: through its
    /// writer, which lets what is in flight settle first, so that the
    /// close is not stuck behind a full congestion window and reaches the
    /// client (quinn sends no CONNECTION_CLOSE while ack-eliciting data
    /// waits on congestion); at once when no writer runs.
    pub(crate) fn close(&self, code: CloseCode, reason: &str) {
        if let Some(outbox) = &lock(&self.state).outbox {
            outbox.goodbye(code, reason);
            return;
        }
        let connection = self
            .connection
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(connection) = connection.as_ref() {
            connection.close(code as u32, reason.as_bytes());
        }
    }

    /// Unreliable party data on this node's connection; silently nothing
    /// when away.
    pub(crate) fn send_datagram_here(&self, datagram: Bytes) {
        let connection = self
            .connection
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(connection) = connection.as_ref() {
            // A full send buffer drops the oldest datagram: stale game state
            // is worth less than fresh.
            if connection.send_datagram(datagram) {
                super::metrics::count(&self.metrics.datagrams_handed);
            }
        }
    }

    /// Holds a datagram for the coalescing flusher (`super::coalesce`).
    pub(crate) fn pend(&self, datagram: Bytes) -> Pushed {
        lock(&self.pending).push(datagram)
    }

    /// Hands every waiting datagram to quinn back to back, with no await in
    /// between, so that they leave in as few packets as fit them; nothing
    /// when away. `scratch` is the caller's reusable buffer. Returns how
    /// many were waiting.
    pub(crate) fn flush_pending(&self, scratch: &mut Vec<Bytes>) -> usize {
        lock(&self.pending).drain_into(scratch);
        let waiting = scratch.len();
        let connection = self
            .connection
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(connection) = connection.as_ref() {
            let mut handed = 0;
            for datagram in scratch.drain(..) {
                // As in `send_datagram`: a full send buffer drops the oldest.
                handed += u64::from(connection.send_datagram(datagram));
            }
            self.metrics.datagrams_handed.inc_by(handed);
        }
        scratch.clear();
        waiting
    }

    /// Notes that the session holds (`held`) a seat or a request in
    /// `party_id`, or no longer does (the party table's `Link`).
    pub(crate) fn note_party(&self, party_id: PartyId, held: bool) {
        let mut parties = lock(&self.parties);
        match held {
            true => parties.insert(party_id),
            false => parties.remove(&party_id),
        };
    }

    /// Whether the session holds a seat or a request in `party_id`.
    pub(crate) fn holds(&self, party_id: PartyId) -> bool {
        lock(&self.parties).contains(&party_id)
    }

    pub(crate) fn party_ids(&self) -> Vec<PartyId> {
        lock(&self.parties).iter().copied().collect()
    }

    /// Takes the set of parties, for leaving them all when the session ends.
    pub(crate) fn take_parties(&self) -> HashSet<PartyId> {
        std::mem::take(&mut *lock(&self.parties))
    }
}

/// Largest frame buffer a session keeps between frames. Commands and events
/// are mostly well under it; a buffer grown past it (a burst of events, a
/// snapshot, a large reliable payload) is given back once used. Otherwise a
/// session that was busy once keeps its high-water mark for the rest of its
/// life, and one frame from a client pins up to `MAX_FRAME_SIZE` (256 KiB)
/// of the server's memory for as long as it stays connected.
pub(crate) const KEPT_BUFFER_BYTES: usize = 2 * 1024;

/// Drops `buf`'s allocation when it has grown past [`KEPT_BUFFER_BYTES`].
pub(crate) fn release_if_large(buf: &mut Vec<u8>) {
    if buf.capacity() > KEPT_BUFFER_BYTES {
        *buf = Vec::new();
    }
}

/// How long a goodbye waits for what is in flight to settle before it
/// closes: well under a second, so a cut client hears its code at once.
pub(crate) const GOODBYE_SETTLE: std::time::Duration = std::time::Duration::from_millis(300);

/// Writes `backlog` (replayed events), then drains the outbox onto the
/// control stream, until the outbox ends (then the stream is finished) or
/// the server says goodbye (then the connection closes with its code,
/// once what is in flight has settled).
pub(crate) async fn write_outbox(
    mut send: SendStream,
    backlog: Vec<Outbound>,
    mut outbox: OutboxReceiver,
    connection: ClientConnection,
) {
    let farewell = outbox.farewell();
    let ended = {
        let writing = drain_onto(&mut send, backlog, &mut outbox);
        tokio::pin!(writing);
        tokio::select! {
            biased;
            goodbye = farewell.said() => Err(goodbye),
            written = &mut writing => farewell.now().map_or(Ok(written), Err),
        }
    };
    let (code, reason) = match ended {
        Err(goodbye) => goodbye,
        Ok(true) => {
            let _ = send.finish();
            return;
        }
        // The stream failed (the client stopped or reset it): a goodbye
        // said later still closes with its code (the connection task
        // aborts this writer when it ends).
        Ok(false) => farewell.said().await,
    };
    settle(&connection).await;
    connection.close(code as u32, reason.as_bytes());
    // `send` lives until here: dropping it would finish the stream, and
    // the client would take the end of its stream for the goodbye.
    drop(send);
}

/// Waits (at most `GOODBYE_SETTLE`) until the connection has sent nothing
/// for a few milliseconds: what was written is out, and its
/// acknowledgements are on their way.
async fn settle(connection: &ClientConnection) {
    const STEP: std::time::Duration = std::time::Duration::from_millis(5);
    let deadline = tokio::time::Instant::now() + GOODBYE_SETTLE;
    let mut sent = connection.stats().udp_tx.datagrams;
    let mut quiet = 0;
    while quiet < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(STEP).await;
        let now = connection.stats().udp_tx.datagrams;
        quiet = if now == sent { quiet + 1 } else { 0 };
        sent = now;
    }
}

/// Writes the backlog, then the outbox as it fills; true when the outbox
/// ended (its sender gone, all written), false when the stream failed.
async fn drain_onto(
    send: &mut SendStream,
    backlog: Vec<Outbound>,
    outbox: &mut OutboxReceiver,
) -> bool {
    const BATCH_BYTES: usize = 64 * 1024;
    // Grows on first use: an idle session should cost as little as possible.
    let mut buf = Vec::new();
    let mut backlog = backlog.into_iter();
    loop {
        buf.clear();
        release_if_large(&mut buf);
        for message in backlog.by_ref() {
            encode_or_log(message, &mut buf);
            if buf.len() >= BATCH_BYTES {
                break;
            }
        }
        if buf.is_empty() {
            let Some(first) = outbox.recv().await else {
                return true;
            };
            let mut next = Some(first);
            while let Some(message) = next.take() {
                encode_or_log(*message, &mut buf);
                if buf.len() < BATCH_BYTES {
                    next = outbox.try_recv();
                }
            }
        }
        if send.write_all(&buf).await.is_err() {
            return false;
        }
    }
}

fn encode_or_log(message: Outbound, buf: &mut Vec<u8>) {
    let id = match &message {
        Outbound::Response { id, .. } => Some(*id),
        _ => None,
    };
    if let Err(error) = encode_frame(&message.into_frame(), buf) {
        // Only a message above the frame limit can fail: a bug in a limit
        // check, not the client's fault. A reply still answers its request.
        tracing::error!(%error, "could not encode an outgoing frame");
        if let Some(id) = id {
            let answer = ServerFrame::Response {
                id,
                result: Err(ErrorBody::new(
                    crate::protocol::ErrorCode::Internal,
                    format!("the reply did not fit in one frame: {error}"),
                )),
            };
            let _ = encode_frame(&answer, buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    #[test]
    fn a_reply_too_large_for_a_frame_is_answered_with_an_error_instead() {
        let huge = crate::protocol::PartySnapshot {
            party_id: crate::protocol::PartyId::nil(),
            seq: 0,
            open: true,
            max_size: 1,
            label: "x".repeat(crate::protocol::MAX_FRAME_SIZE as usize),
            leader: crate::protocol::Presence {
                user_id: String::new(),
                username: String::new(),
                session_id: crate::protocol::SessionId::nil(),
            },
            members: Vec::new(),
            disconnected: Vec::new(),
            invite_policy: Default::default(),
            state: Default::default(),
            attributes: Vec::new(),
            join_code: String::new(),
            listed: false,
            properties: Default::default(),
        };
        let mut buf = Vec::new();
        encode_or_log(
            Outbound::Response {
                id: 9,
                result: Ok(crate::protocol::Reply::Party(huge)),
            },
            &mut buf,
        );
        let frame: ServerFrame =
            crate::protocol::decode_body(&buf[crate::protocol::FRAME_HEADER_LEN..]).unwrap();
        match frame {
            ServerFrame::Response {
                id: 9,
                result: Err(error),
            } => {
                assert_eq!(error.code, ErrorCode::Internal)
            }
            other => panic!("expected an error answer, got {other:?}"),
        }
    }

    fn message(id: u32) -> Queued {
        Box::new(Outbound::Response {
            id,
            result: Err(ErrorBody::new(ErrorCode::InvalidArgument, "test")),
        })
    }

    fn id_of(message: Option<Queued>) -> Option<u32> {
        match message.as_deref()? {
            Outbound::Response { id, .. } => Some(*id),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_outbox_keeps_order_and_ends_after_the_sender_goes() {
        let (sender, mut receiver) = outbox(8);
        for id in 1..=3 {
            sender.try_send(message(id)).unwrap();
        }
        drop(sender);
        assert_eq!(id_of(receiver.recv().await).unwrap(), 1);
        assert_eq!(id_of(receiver.try_recv()).unwrap(), 2);
        assert_eq!(id_of(receiver.recv().await).unwrap(), 3);
        assert!(receiver.recv().await.is_none(), "closed once drained");
    }

    #[tokio::test]
    async fn a_waiting_writer_wakes_for_a_message_and_for_the_close() {
        let (sender, mut receiver) = outbox(8);
        let writer = tokio::spawn(async move {
            let first = id_of(receiver.recv().await);
            let second = id_of(receiver.recv().await);
            (first, second)
        });
        tokio::task::yield_now().await;
        sender.try_send(message(7)).unwrap();
        tokio::task::yield_now().await;
        drop(sender);
        assert_eq!(writer.await.unwrap(), (Some(7), None));
    }

    #[test]
    fn a_full_outbox_refuses_and_a_gone_writer_drops_silently() {
        let (sender, mut receiver) = outbox(2);
        sender.try_send(message(1)).unwrap();
        sender.try_send(message(2)).unwrap();
        assert!(sender.try_send(message(3)).is_err(), "full at capacity");
        assert_eq!(id_of(receiver.try_recv()).unwrap(), 1);
        sender.try_send(message(3)).unwrap();
        drop(receiver);
        // Nobody will send it, so it is not a slow consumer either.
        for id in 4..10 {
            sender.try_send(message(id)).unwrap();
        }
    }

    #[test]
    fn only_a_large_buffer_is_released() {
        let mut small = Vec::with_capacity(KEPT_BUFFER_BYTES);
        release_if_large(&mut small);
        assert_eq!(small.capacity(), KEPT_BUFFER_BYTES);
        let mut large = vec![0u8; KEPT_BUFFER_BYTES + 1];
        release_if_large(&mut large);
        assert_eq!(large.capacity(), 0);
    }

    #[test]
    fn a_drained_outbox_gives_back_a_burst_s_memory() {
        let (sender, mut receiver) = outbox(1024);
        for id in 0..500 {
            sender.try_send(message(id)).unwrap();
        }
        while receiver.try_recv().is_some() {}
        assert_eq!(lock(&sender.0.state).queue.capacity(), 0);
    }
}
