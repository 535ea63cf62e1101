//! A session as the rest of the server sees it. It outlives its connection:
//! while the connection is lost it keeps its seats, numbers and logs the
//! events it would have been sent, and waits for a resume.

use super::peers::RemoteAt;
use super::pending::{Pending, Pushed};
use super::player_limits::{AddressKey, Player};
use super::quality::QualityMeter;
use super::replay::{Replay, ReplayLog};
use super::transport::ClientConnection;
use crate::protocol::{
    close_code_for_version, encode_server_frame, event_for_version, CloseCode, ErrorBody, Event,
    PartyId, Presence, Reply, ServerFrame, SessionId, MAX_FRAME_SIZE, PROTOCOL_VERSION,
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
    /// A party's ready check runs out (on the party's home): not a
    /// session's timer, but the same timer fires it. Stale when the
    /// check ended sooner.
    ReadyCheck { party_id: PartyId, check_id: u64 },
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

/// What goes out on a session's control stream, in order. Queued boxed
/// (`Queued`), so a small event costs no reply-sized slot.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Outbound {
    Response {
        id: u32,
        result: Result<Reply, ErrorBody>,
    },
    /// An event's whole frame (`ServerFrame::Event`), numbered and encoded
    /// once, when it was logged: the replay log holds the same bytes.
    Event(Bytes),
    FrameError(ErrorBody),
}

impl Outbound {
    /// The frame a client decodes from this message: how the tests that
    /// drive sessions without a connection read what was sent.
    #[cfg(test)]
    pub(crate) fn decoded(self) -> ServerFrame {
        match self {
            Outbound::Response { id, result } => ServerFrame::Response { id, result },
            Outbound::Event(frame) => {
                crate::protocol::decode_body(&frame[crate::protocol::FRAME_HEADER_LEN..])
                    .expect("an event frame the server encoded")
            }
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

/// A resume token as it reads: `<session>.<node>.<nonce>.<mac>` (hex).
/// The node that issued it holds the session; the nonce is the session's
/// single-use secret there; the MAC (HMAC-SHA256, first 16 bytes, of the
/// session id, the user id, the node and the nonce, under the resume key)
/// lets another node of the cluster verify it when that node is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResumeToken {
    pub(crate) session: SessionId,
    pub(crate) node: u32,
    pub(crate) secret: Uuid,
    mac: [u8; 16],
}

/// The key resume tokens are signed with. Derived from the cluster's
/// shared key file (`--reset-key-file`, its own HMAC label) so that every
/// node verifies every node's tokens; without one, a random key of this
/// process: then only the issuing node can check a token, by its secret.
pub(crate) struct ResumeKey {
    key: ring::hmac::Key,
    /// Every node of the cluster has this key (it came from the file).
    pub(crate) cluster_wide: bool,
}

impl ResumeKey {
    pub(crate) fn new(shared_key: Option<&[u8]>) -> ResumeKey {
        use ring::hmac;
        let Some(file_key) = shared_key else {
            // Two v4 UUIDs: 244 random bits from the OS's generator.
            let mut random = [0u8; 32];
            random[..16].copy_from_slice(Uuid::new_v4().as_bytes());
            random[16..].copy_from_slice(Uuid::new_v4().as_bytes());
            return ResumeKey {
                key: hmac::Key::new(hmac::HMAC_SHA256, &random),
                cluster_wide: false,
            };
        };
        let file_key = hmac::Key::new(hmac::HMAC_SHA256, file_key);
        let derived = hmac::sign(&file_key, b"partyline resume token v1");
        ResumeKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
            cluster_wide: true,
        }
    }

    fn mac(&self, session: SessionId, user_id: &str, node: u32, secret: Uuid) -> [u8; 16] {
        let mut context = ring::hmac::Context::with_key(&self.key);
        context.update(session.0.as_bytes());
        context.update(&(user_id.len() as u64).to_be_bytes());
        context.update(user_id.as_bytes());
        context.update(&node.to_be_bytes());
        context.update(secret.as_bytes());
        let tag = context.sign();
        let mut mac = [0u8; 16];
        mac.copy_from_slice(&tag.as_ref()[..16]);
        mac
    }

    /// The token for `secret` of session `session` of `user_id`, held on `node`.
    pub(crate) fn issue(
        &self,
        session: SessionId,
        user_id: &str,
        node: u32,
        secret: Uuid,
    ) -> String {
        let mac = self.mac(session, user_id, node, secret);
        format!(
            "{}.{node:08x}.{}.{}",
            session.0.simple(),
            secret.simple(),
            Uuid::from_bytes(mac).simple()
        )
    }

    /// Whether `token` was issued under this key for `user_id`: only
    /// meaningful with a cluster-wide key (false otherwise).
    pub(crate) fn verifies(&self, token: &ResumeToken, user_id: &str) -> bool {
        let mac = self.mac(token.session, user_id, token.node, token.secret);
        // Constant time: no early exit on the first byte that differs.
        let differs = mac
            .iter()
            .zip(token.mac)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        self.cluster_wide && differs == 0
    }
}

impl ResumeToken {
    /// Parses `<session>.<node>.<nonce>.<mac>`; `None` for anything else.
    pub(crate) fn parse(token: &str) -> Option<ResumeToken> {
        let mut parts = token.split('.');
        let session = SessionId(Uuid::try_parse(parts.next()?).ok()?);
        let node = parts.next()?;
        if node.len() != 8 {
            return None;
        }
        let node = u32::from_str_radix(node, 16).ok()?;
        let secret = Uuid::try_parse(parts.next()?).ok()?;
        let mac = *Uuid::try_parse(parts.next()?).ok()?.as_bytes();
        parts.next().is_none().then_some(ResumeToken {
            session,
            node,
            secret,
            mac,
        })
    }
}

/// Sessions of lost nodes taken over by a node of the cluster, as the
/// user's owner notes them: the first node to claim a session gets it, so
/// a dead node's token works once however many nodes it is shown to
/// (docs/CLUSTER.md, "Resume after the old node died").
#[derive(Default)]
pub(crate) struct ResumeClaims {
    claimed: HashSet<SessionId>,
    /// When each claim may be forgotten, oldest first.
    until: VecDeque<(tokio::time::Instant, SessionId)>,
}

impl ResumeClaims {
    /// A node claims `session`: true if no node did before (a claim is
    /// kept `keep_for`, past the last moment any node accepts the token).
    pub(crate) fn claim(&mut self, session: SessionId, keep_for: std::time::Duration) -> bool {
        let now = tokio::time::Instant::now();
        while let Some(&(until, expired)) = self.until.front() {
            if until > now {
                break;
            }
            self.until.pop_front();
            self.claimed.remove(&expired);
        }
        if !self.claimed.insert(session) {
            return false;
        }
        self.until.push_back((now + keep_for, session));
        true
    }
}

/// What a node hands over of a session that resumes on another node.
pub(crate) struct HandedOver {
    /// The number of the next event it would have sent.
    pub(crate) next_event_seq: u64,
    /// The connection that carried it, to be closed as superseded.
    pub(crate) connection: Option<ClientConnection>,
}

/// The result of attaching a connection to a session.
pub(crate) struct Attached {
    pub(crate) generation: u64,
    /// The new single-use secret (the caller makes the token of it).
    pub(crate) resume_secret: Uuid,
    /// The last event number before this attachment.
    pub(crate) last_event_seq: u64,
    /// Missed events to send before anything else; `None` when the gap is
    /// older than the replay log (send snapshots instead).
    pub(crate) replay: Option<Replay>,
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
    /// The most recent events' frames, for exact replay on resume.
    log: ReplayLog,
    resume_secret: Uuid,
    ended: bool,
}

#[derive(Debug)]
pub(crate) struct SessionLink {
    pub(crate) presence: Presence,
    /// The protocol version of the Hello that started the session: what
    /// it is sent is what that version decodes (`crate::protocol`'s
    /// `event_for_version` and `encode_server_frame`).
    pub(crate) version: u16,
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
    /// The source address the session was opened from, as the
    /// per-address limits count it (`None`: not counted, e.g. loopback,
    /// or a proxy). A resume from elsewhere keeps it: the session counts
    /// where it was admitted until it ends.
    pub(crate) address: Option<AddressKey>,
    /// On a party's home node, for a member connected to another node:
    /// where its replies, events and data go instead of a connection (a
    /// **proxy**; the route module is what looks at it).
    pub(crate) remote: Option<RemoteAt>,
    /// A local session's bookkeeping of other nodes (its remote seats, the
    /// homes it reached); `None` until it reaches another node.
    pub(crate) abroad: Mutex<Option<Box<SessionAbroad>>>,
    /// The users this session blocks (PROTOCOL.md, "Mutes and blocks"),
    /// sorted; on a party's home, a proxy's copy of its session's list.
    /// Read by the party rules (`BlockList`), status presence and
    /// invites; written by the session's commands, the game's server and
    /// its hook (the commands module's `quiet` family).
    blocks: RwLock<BlockSet>,
    /// Its connection's quality, measured by the keep-alive task (unused
    /// on a proxy: the member's own node measures it).
    pub(crate) quality: Arc<QualityMeter>,
}

/// A block list: user ids, sorted (as `Reply::Blocks` says them).
pub(crate) type BlockSet = std::collections::BTreeSet<String>;

/// The link type stored in the party table.
pub(crate) type SessionRef = Arc<SessionLink>;

/// Takes a std mutex, poisoned or not: every critical section here is
/// short and leaves its data consistent, so a panic elsewhere must not stop
/// the server from serving.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SessionLink {
    /// A session of this node, whose events go to `log` (empty) as well.
    pub(crate) fn new(
        presence: Presence,
        log: ReplayLog,
        metrics: Arc<super::metrics::Metrics>,
    ) -> Self {
        SessionLink {
            version: PROTOCOL_VERSION,
            connection: RwLock::new(None),
            state: Mutex::new(SessionState {
                outbox: None,
                generation: 0,
                next_event_seq: 1,
                log,
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
            address: None,
            remote: None,
            abroad: Mutex::new(None),
            blocks: RwLock::new(BlockSet::new()),
            quality: Arc::new(QualityMeter::new(presence.session_id)),
            presence,
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
            ..SessionLink::new(presence, ReplayLog::new(0, 0), metrics)
        }
    }

    /// The session of a client that said `version` in its Hello.
    pub(crate) fn speaking(self, version: u16) -> Self {
        SessionLink { version, ..self }
    }

    pub(crate) fn session_id(&self) -> SessionId {
        self.presence.session_id
    }

    /// The session, counted per address under `address`.
    pub(crate) fn opened_from(mut self, address: Option<AddressKey>) -> Self {
        self.address = address;
        self
    }

    /// Whose limits the session spends: its user's, and its address's.
    pub(crate) fn player(&self) -> Player<'_> {
        Player {
            user: &self.presence.user_id,
            address: self.address,
        }
    }

    /// Attaches a connection. `resume` is `(secret, last_event_seq)` for a
    /// resume, checked and rotated atomically so a token works once.
    pub(crate) fn attach(
        &self,
        connection: Option<ClientConnection>,
        outbox: OutboxSender,
        resume: Option<(Uuid, u64)>,
    ) -> Result<Attached, ResumeRefusal> {
        let mut state = lock(&self.state);
        if state.ended {
            return Err(ResumeRefusal::Token);
        }
        let last_event_seq = state.next_event_seq - 1;
        let replay = match resume {
            None => Some(Replay::default()),
            Some((secret, _)) if secret != state.resume_secret => return Err(ResumeRefusal::Token),
            // `None` when the log no longer holds every missed event (past
            // either of its bounds): snapshots instead.
            Some((_, last_seen)) => state.log.after(last_seen, state.next_event_seq),
        };
        state.generation += 1;
        state.resume_secret = Uuid::new_v4();
        state.outbox = Some(outbox);
        let superseded = std::mem::replace(
            &mut *self
                .connection
                .write()
                .unwrap_or_else(PoisonError::into_inner),
            connection,
        );
        Ok(Attached {
            generation: state.generation,
            resume_secret: state.resume_secret,
            last_event_seq,
            replay,
            superseded,
        })
    }

    /// Attaches an outbox with no connection behind it, as `attach` does
    /// for a new session: how the tests drive several nodes' sessions on
    /// tokio's paused clock, where QUIC cannot run (the hub_tests module).
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

    /// Counts attachments: a proxy's stays 0 (it never attaches), and a
    /// held proxy's timers name it.
    pub(crate) fn generation(&self) -> u64 {
        lock(&self.state).generation
    }

    /// The current resume secret (the tests make tokens of it).
    #[cfg(test)]
    pub(crate) fn resume_secret(&self) -> Uuid {
        lock(&self.state).resume_secret
    }

    /// The session resumes on another node: if `secret` is its current
    /// one, it ends here at once, without leaving its parties (the new node
    /// takes its seats over), and its connection is given back to be closed.
    /// `None` when the secret is wrong or already used, or the session ended.
    pub(crate) fn hand_over(&self, secret: Uuid) -> Option<HandedOver> {
        let mut state = lock(&self.state);
        if state.ended || state.resume_secret != secret {
            return None;
        }
        state.ended = true;
        state.log.release();
        if let Some(outbox) = state.outbox.take() {
            outbox.goodbye(CloseCode::Superseded, "session resumed on another node");
        }
        let connection = self
            .connection
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        Some(HandedOver {
            next_event_seq: state.next_event_seq,
            connection,
        })
    }

    /// A session taken over from another node numbers its events on from
    /// where that node stopped (before anything is attached).
    pub(crate) fn numbered_from(self, next_event_seq: u64) -> Self {
        lock(&self.state).next_event_seq = next_event_seq.max(1);
        self
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
        state.log.release();
        *self
            .connection
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
        true
    }

    /// Numbers, logs and (when connected) queues an event on this node's
    /// connection. A full outbox means the client is not reading: its
    /// connection is cut, which starts the grace window like any other
    /// loss. (`push_event`, in the route module, picks this or the member's
    /// node.)
    pub(crate) fn queue_event(&self, event: Event) {
        // What the client's version cannot decode is left out before it
        // is numbered, so its event numbers keep no gap.
        let Some(event) = event_for_version(event, self.version) else {
            return;
        };
        let mut state = lock(&self.state);
        if state.ended {
            return;
        }
        let seq = state.next_event_seq;
        // Encoded under the lock, as its number is taken: frames enter the
        // log and the outbox in the order of their numbers.
        let frame = match encode_event(seq, event, self.version) {
            Ok(frame) => frame,
            // Only an event above the frame limit: a bug in a limit check.
            // It is not numbered, so the session's numbers keep no gap.
            Err(error) => {
                tracing::error!(%error, "could not encode an event");
                return;
            }
        };
        state.next_event_seq += 1;
        state.log.push(seq, &frame);
        if let Some(outbox) = &state.outbox {
            if let Err(OutboxFull) = outbox.try_send(Box::new(Outbound::Event(frame))) {
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
        let code = close_code_for_version(code, self.version);
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

    /// Holds a datagram for the coalescing flusher (the coalesce module).
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

    /// Whether this session blocks `user_id`.
    pub(crate) fn blocks_user(&self, user_id: &str) -> bool {
        let blocks = self.blocks.read().unwrap_or_else(PoisonError::into_inner);
        // Most lists are empty: no string compared then.
        !blocks.is_empty() && blocks.contains(user_id)
    }

    /// The block list now, sorted.
    pub(crate) fn block_list(&self) -> Vec<String> {
        let blocks = self.blocks.read().unwrap_or_else(PoisonError::into_inner);
        blocks.iter().cloned().collect()
    }

    /// Whether the block list is empty.
    pub(crate) fn blocks_nobody(&self) -> bool {
        self.blocks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// Replaces the block list; returns the old one.
    pub(crate) fn replace_blocks(&self, blocks: BlockSet) -> BlockSet {
        let mut held = self.blocks.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut held, blocks)
    }

    /// Notes that the session holds (`held`) a seat or a request in
    /// `party_id`, or no longer does (the party table's `Link`).
    pub(crate) fn note_party(&self, party_id: PartyId, held: bool) {
        let mut parties = lock(&self.parties);
        match held {
            true => parties.insert(party_id),
            false => parties.remove(&party_id),
        };
        // Its new seat's (or request's) home learns the score next sample.
        if held && self.remote.is_none() {
            self.quality.owe();
        }
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

/// The party rules ask a member's link whom its session blocks.
impl crate::party::BlockList for SessionRef {
    fn blocks(&self, user_id: &str) -> bool {
        self.blocks_user(user_id)
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

/// Event `seq`'s frame, encoded once for the stream and the replay log
/// alike: in a buffer kept per thread (so that encoding grows no new one
/// each time), then copied out at its exact size.
fn encode_event(
    seq: u64,
    event: Event,
    version: u16,
) -> Result<Bytes, crate::protocol::FrameError> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with_borrow_mut(|buf| {
        buf.clear();
        let frame = ServerFrame::Event { seq, event };
        let encoded = encode_server_frame(&frame, version, buf, MAX_FRAME_SIZE);
        let frame = encoded.map(|()| Bytes::copy_from_slice(buf));
        release_if_large(buf);
        frame
    })
}

/// How long a goodbye waits for what is in flight to settle before it
/// closes: well under a second, so a cut client hears its code at once.
pub(crate) const GOODBYE_SETTLE: std::time::Duration = std::time::Duration::from_millis(300);

/// Writes `backlog` (the replayed events' frames), then drains the outbox
/// onto the control stream, until the outbox ends (then the stream is
/// finished) or the server says goodbye (then the connection closes with
/// its code, once what is in flight has settled).
pub(crate) async fn write_outbox(
    mut send: SendStream,
    backlog: Bytes,
    mut outbox: OutboxReceiver,
    connection: ClientConnection,
    version: u16,
) {
    let farewell = outbox.farewell();
    let ended = {
        let writing = drain_onto(&mut send, backlog, &mut outbox, version);
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
    backlog: Bytes,
    outbox: &mut OutboxReceiver,
    version: u16,
) -> bool {
    const BATCH_BYTES: usize = 64 * 1024;
    if !backlog.is_empty() && send.write_all(&backlog).await.is_err() {
        return false;
    }
    drop(backlog);
    // Grows on first use: an idle session should cost as little as possible.
    let mut buf = Vec::new();
    loop {
        buf.clear();
        release_if_large(&mut buf);
        let Some(first) = outbox.recv().await else {
            return true;
        };
        let mut next = Some(first);
        while let Some(message) = next.take() {
            encode_or_log(*message, &mut buf, version);
            if buf.len() < BATCH_BYTES {
                next = outbox.try_recv();
            }
        }
        if send.write_all(&buf).await.is_err() {
            return false;
        }
    }
}

/// Encodes one frame as the session's `version` decodes it (an event was
/// encoded so when it was numbered).
fn encode_or_log(message: Outbound, buf: &mut Vec<u8>, version: u16) {
    let (id, frame) = match message {
        Outbound::Event(frame) => return buf.extend_from_slice(&frame),
        Outbound::Response { id, result } => (Some(id), ServerFrame::Response { id, result }),
        Outbound::FrameError(error) => (None, ServerFrame::FrameError(error)),
    };
    if let Err(error) = encode_server_frame(&frame, version, buf, MAX_FRAME_SIZE) {
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
            let _ = encode_server_frame(&answer, version, buf, MAX_FRAME_SIZE);
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
            ready_check: None,
            leader_policy: Default::default(),
            quality: Vec::new(),
            muted: Vec::new(),
        };
        let mut buf = Vec::new();
        encode_or_log(
            Outbound::Response {
                id: 9,
                result: Ok(crate::protocol::Reply::Party(huge)),
            },
            &mut buf,
            PROTOCOL_VERSION,
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

    fn kicked(seq: u64) -> Event {
        Event::Kicked {
            party_id: PartyId::nil(),
            seq,
        }
    }

    #[test]
    fn an_event_is_queued_as_its_wire_frame_numbered_without_gaps() {
        let presence = Presence {
            user_id: "ana".into(),
            username: "Ana".into(),
            session_id: SessionId::random(),
        };
        let metrics = Arc::new(super::super::metrics::Metrics::default());
        let session = SessionLink::new(presence, ReplayLog::new(8, 1024), metrics);
        let (sender, mut receiver) = outbox(8);
        session.attach_outbox(sender).unwrap();
        for party_seq in [5, 9, 300] {
            session.queue_event(kicked(party_seq));
        }
        // An event no frame can carry is dropped without taking a number.
        session.queue_event(Event::Updated {
            party_id: PartyId::nil(),
            seq: 1,
            open: true,
            max_size: 2,
            label: "x".repeat(crate::protocol::MAX_FRAME_SIZE as usize),
            invite_policy: Default::default(),
            leader_policy: Default::default(),
        });
        session.queue_event(kicked(301));
        for (seq, party_seq) in [(1, 5), (2, 9), (3, 300), (4, 301)] {
            let Some(Outbound::Event(frame)) = receiver.try_recv().map(|queued| *queued) else {
                panic!("expected event {seq}");
            };
            // The bytes a client reads are those encoding the frame gives.
            let mut expected = Vec::new();
            let event = kicked(party_seq);
            crate::protocol::encode_frame(&ServerFrame::Event { seq, event }, &mut expected)
                .unwrap();
            assert_eq!(frame[..], expected[..], "event {seq}");
        }
        assert!(receiver.try_recv().is_none());
        // The log holds the same frames: all four, replayed after 0.
        let replay = lock(&session.state).log.after(0, 5).unwrap();
        assert_eq!(replay.count, 4);
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
