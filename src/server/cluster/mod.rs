//! Several partyline nodes behaving as one server, over NATS
//! (docs/CLUSTER.md has the design and its rules).
//!
//! - A party lives on its **home**, the node that created it; bytes 0-3 of
//!   its id are the home's tag, so any node routes a party id with no
//!   lookup.
//! - A session lives on the node it connected to. Its commands for a party
//!   homed elsewhere are forwarded to the home (`pl.<tag>.ctl`), which runs
//!   them with a **proxy** of the session as the party table's link and
//!   answers exactly as locally: the reply, then the events, in order.
//! - Events and party data for members on other nodes cross NATS once per
//!   node, never once per member (`EventBatches`, `DatagramBatches`).
//! - A node that stops heart-beating is lost: the parties it homed end for
//!   their members elsewhere (`Closed`), and its sessions leave the parties
//!   homed here.

mod wire;

use wire::{Answer, BroadcastMessage, Question};
pub(crate) use wire::{ControlMessage, DatagramMessage, Heartbeat, RelayedEvent};

use super::session::{lock, Outbound, SessionLink, SessionRef};
use super::{commands, grace, Shared};
use crate::party::InviteNotice;
use crate::protocol::{
    Command, ErrorBody, ErrorCode, Event, JoinOutcome, PartyId, PartySearch, Presence,
    RejectReason, Reply, SessionId, UserStatus,
};
use async_nats::Subject;
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use wire::encode;

/// How a node joins a cluster (`partyline serve --cluster URL --node NAME`).
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The NATS server(s), e.g. `nats://127.0.0.1:4222` (comma-separated
    /// for several).
    pub url: String,
    /// This node's name, unique in the cluster. Its tag (the first 4 bytes
    /// of SHA-256 of it) is in every party id it mints.
    pub node: String,
    /// How often the node announces itself. Default 1 s.
    pub heartbeat: Duration,
    /// A node not heard from for this long is lost, and its parties end.
    /// Default 3 s.
    pub node_timeout: Duration,
    /// How long a forwarded command waits for its home's answer before it
    /// fails with `Unavailable`. Default 2 s.
    pub request_timeout: Duration,
    /// Party data messages waiting to be published; beyond it, new ones are
    /// dropped and counted (datagrams stay unreliable). Default 16,384.
    pub datagram_queue: usize,
    /// Control messages (replies, events, membership) waiting to be
    /// published; beyond it they are dropped and counted. Default 65,536.
    pub control_queue: usize,
}

impl ClusterConfig {
    pub fn new(url: impl Into<String>, node: impl Into<String>) -> Self {
        ClusterConfig {
            url: url.into(),
            node: node.into(),
            heartbeat: Duration::from_secs(1),
            node_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(2),
            datagram_queue: 16_384,
            control_queue: 65_536,
        }
    }
}

/// A node's tag: the first 4 bytes of SHA-256 of its name.
pub fn node_tag(name: &str) -> u32 {
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let mut tag = [0u8; 4];
    tag.copy_from_slice(&digest.as_ref()[..4]);
    u32::from_be_bytes(tag)
}

/// The tag of the node that homes `party_id`.
pub fn home_of(party_id: PartyId) -> u32 {
    let bytes = party_id.0.as_bytes();
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// A fresh party id homed on the node with `tag`: random, with the tag in
/// bytes 0-3 (the UUID's version and variant bits are untouched).
pub fn party_id_on(tag: u32) -> PartyId {
    let mut bytes = *uuid::Uuid::new_v4().as_bytes();
    bytes[..4].copy_from_slice(&tag.to_be_bytes());
    PartyId(uuid::Uuid::from_bytes(bytes))
}

fn control_subject(tag: u32) -> Subject {
    Subject::from(format!("pl.{tag:08x}.ctl"))
}

fn datagram_subject(tag: u32) -> Subject {
    Subject::from(format!("pl.{tag:08x}.dg"))
}

fn ping_subject(tag: u32) -> Subject {
    Subject::from(format!("pl.{tag:08x}.ping"))
}

const NODES_SUBJECT: &str = "pl.nodes";
/// How long a stopping node tries to say goodbye.
const LEAVE_TIMEOUT: Duration = Duration::from_millis(500);

/// Counters for `/metrics`.
#[derive(Default)]
pub(crate) struct ClusterMetrics {
    pub(crate) control_out: AtomicU64,
    pub(crate) control_in: AtomicU64,
    pub(crate) datagram_messages_out: AtomicU64,
    pub(crate) datagram_messages_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) dropped_control: AtomicU64,
    pub(crate) dropped_datagrams: AtomicU64,
    pub(crate) forwarded: AtomicU64,
    pub(crate) unavailable: AtomicU64,
    pub(crate) nodes_lost: AtomicU64,
    pub(crate) undecodable: AtomicU64,
}

struct Outgoing {
    subject: Subject,
    payload: Bytes,
}

/// The sending half of a node's cluster link: what proxies hold (no
/// reference back to the proxies, so nothing cycles).
pub(crate) struct Outlet {
    control: mpsc::Sender<Outgoing>,
    datagrams: mpsc::Sender<Outgoing>,
    metrics: Arc<ClusterMetrics>,
}

impl Outlet {
    /// Queues a control message for `node`; never blocks. A full queue
    /// (NATS down for long, or far behind) drops it and counts.
    pub(crate) fn control(&self, node: u32, message: &ControlMessage) {
        if let Some(payload) = encode(message) {
            self.queue_control(control_subject(node), payload);
        }
    }

    fn queue_control(&self, subject: Subject, payload: Bytes) {
        let len = payload.len() as u64;
        let outgoing = Outgoing { subject, payload };
        if self.control.try_send(outgoing).is_ok() {
            self.metrics.control_out.fetch_add(1, Ordering::Relaxed);
            self.metrics.bytes_out.fetch_add(len, Ordering::Relaxed);
        } else {
            self.metrics.dropped_control.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues party data for `node`, or drops it (counted) when the queue
    /// is full: datagrams are never queued without bound, nor retried.
    pub(crate) fn datagram(&self, node: u32, message: &DatagramMessage) {
        let Some(payload) = encode(message) else {
            return;
        };
        let len = payload.len() as u64;
        let outgoing = Outgoing {
            subject: datagram_subject(node),
            payload,
        };
        if self.datagrams.try_send(outgoing).is_ok() {
            self.metrics
                .datagram_messages_out
                .fetch_add(1, Ordering::Relaxed);
            self.metrics.bytes_out.fetch_add(len, Ordering::Relaxed);
        } else {
            self.metrics
                .dropped_datagrams
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What makes a session link a proxy: the member lives on `node`.
#[derive(Clone)]
pub(crate) struct ProxyOf {
    pub(crate) node: u32,
    pub(crate) outlet: Arc<Outlet>,
}

impl std::fmt::Debug for ProxyOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxyOf({:08x})", self.node)
    }
}

/// A session's seat or request in a party homed elsewhere, as its own node
/// last heard of it: enough to tell the session when that home is lost.
#[derive(Debug, Clone, Copy)]
struct RemoteSeat {
    /// The party `seq` of the last event relayed to it (or its reply).
    seq: u64,
    /// A seat (`Closed` when the home is lost), or a waiting request
    /// (`JoinRejected`).
    seated: bool,
}

/// A local session's cluster bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct SessionCluster {
    /// Homes it ever sent a command to: told when it ends.
    homes: HashSet<u32>,
    /// Tickets it waits in on other nodes (by `TicketStarted` relayed),
    /// cancelled for it if their node is lost.
    tickets: HashSet<u64>,
    remote: HashMap<PartyId, RemoteSeat>,
}

/// A command sent to its home, waiting for the answer.
struct Pending {
    session: SessionRef,
    id: u32,
    node: u32,
    done: oneshot::Sender<()>,
}

/// A forwarded command, to be awaited by the session's control loop (so
/// one session's commands still run one at a time, in order).
pub(crate) struct Forwarding {
    corr: u32,
    done: oneshot::Receiver<()>,
}

/// A question asked of every other node, gathering their answers.
struct Gather {
    waiting_for: HashSet<u32>,
    answers: Vec<(u32, Answer)>,
    done: Option<oneshot::Sender<()>>,
}

impl Gather {
    fn heard_from(&mut self, node: u32) {
        self.waiting_for.remove(&node);
        if self.waiting_for.is_empty() {
            if let Some(done) = self.done.take() {
                let _ = done.send(());
            }
        }
    }
}

/// A command whose answer needs other nodes: awaited by the session's
/// control loop before its next command (`Cluster::complete`).
pub(crate) enum Deferred {
    /// Sent to the party's home.
    Forwarded(Forwarding),
    /// A join code this node does not know: asked of every other node.
    FindCode(String),
    /// A `Follow`: the followed users' sessions here, and on the others.
    Follow {
        online: Vec<UserStatus>,
        user_ids: Vec<String>,
    },
    /// A search: every node's page, merged in listing order.
    Search(PartySearch),
}

struct PeerNode {
    name: String,
    incarnation: u64,
    last_seen: Instant,
}

/// Subscriptions made when the node joins, consumed by `run`.
struct Inbound {
    control: async_nats::Subscriber,
    datagrams: async_nats::Subscriber,
    nodes: async_nats::Subscriber,
    ping: async_nats::Subscriber,
    control_out: mpsc::Receiver<Outgoing>,
    datagrams_out: mpsc::Receiver<Outgoing>,
}

pub(crate) struct Cluster {
    pub(crate) tag: u32,
    pub(crate) name: String,
    incarnation: u64,
    config: ClusterConfig,
    client: async_nats::Client,
    pub(crate) outlet: Arc<Outlet>,
    pub(crate) metrics: Arc<ClusterMetrics>,
    inbound: Mutex<Option<Inbound>>,
    pending: Mutex<HashMap<u32, Pending>>,
    gathers: Mutex<HashMap<u32, Gather>>,
    next_corr: AtomicU32,
    /// Members on other nodes of parties homed here, by session.
    proxies: Mutex<HashMap<SessionId, SessionRef>>,
    nodes: Mutex<HashMap<u32, PeerNode>>,
    /// Whether the NATS link is up, and since when: no node is judged lost
    /// until this node has been connected for a whole `node_timeout`.
    link_up: Arc<LinkState>,
    /// Wakes the heartbeat task early (a new node was heard).
    beat_soon: tokio::sync::Notify,
}

/// Since when the NATS link is up; `None` while it is down.
#[derive(Default)]
struct LinkState {
    since: Mutex<Option<Instant>>,
}

impl LinkState {
    fn set(&self, up: bool) {
        *lock(&self.since) = up.then(Instant::now);
    }
}

/// Why a node could not join its cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("--node must be 1 to 64 letters, digits, '-', '_' or '.', got {0:?}")]
    BadNodeName(String),
    #[error("could not reach NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("NATS subscription failed: {0}")]
    Subscribe(String),
    #[error(
        "node name {name:?} (tag {tag:08x}) is already used by a live node ({other}); \
         give each node its own --node"
    )]
    TagTaken {
        name: String,
        tag: u32,
        other: String,
    },
}

fn valid_node_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Cluster {
    /// Connects to NATS, checks that no live node holds this node's tag,
    /// and subscribes; `run` then serves the subscriptions.
    pub(crate) async fn join(config: ClusterConfig) -> Result<Cluster, ClusterError> {
        if !valid_node_name(&config.node) {
            return Err(ClusterError::BadNodeName(config.node.clone()));
        }
        let tag = node_tag(&config.node);
        let link_up = Arc::new(LinkState::default());
        let events = link_up.clone();
        let node_name = config.node.clone();
        let client = async_nats::ConnectOptions::new()
            .name(format!("partyline {}", config.node))
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            // Back quickly after a NATS restart: remote commands fail
            // while the link is down.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((attempts as u64 * 100).min(2_000))
            })
            .event_callback(move |event| {
                let events = events.clone();
                let node = node_name.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!(%node, "cluster link (NATS) up");
                            events.set(true);
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!(%node, "cluster link (NATS) down: remote parties unavailable until it is back");
                            events.set(false);
                        }
                        other => tracing::info!(%node, event = %other, "cluster link"),
                    }
                }
            })
            .connect(config.url.as_str())
            .await
            .map_err(|e| ClusterError::Connect {
                url: config.url.clone(),
                reason: e.to_string(),
            })?;
        link_up.set(true);
        let request = client.request(ping_subject(tag), Bytes::new());
        // No responders, or nobody answering in time: the tag is free.
        if let Ok(Ok(answer)) = tokio::time::timeout(Duration::from_millis(500), request).await {
            return Err(ClusterError::TagTaken {
                name: config.node.clone(),
                tag,
                other: String::from_utf8_lossy(&answer.payload).into_owned(),
            });
        }
        let subscribe = |subject: Subject| {
            let client = client.clone();
            async move {
                client
                    .subscribe(subject)
                    .await
                    .map_err(|e| ClusterError::Subscribe(e.to_string()))
            }
        };
        let control = subscribe(control_subject(tag)).await?;
        let datagrams = subscribe(datagram_subject(tag)).await?;
        let nodes = subscribe(Subject::from(NODES_SUBJECT)).await?;
        let ping = subscribe(ping_subject(tag)).await?;
        let metrics = Arc::new(ClusterMetrics::default());
        let (control_tx, control_out) = mpsc::channel(config.control_queue.max(1));
        let (datagrams_tx, datagrams_out) = mpsc::channel(config.datagram_queue.max(1));
        let outlet = Arc::new(Outlet {
            control: control_tx,
            datagrams: datagrams_tx,
            metrics: metrics.clone(),
        });
        tracing::info!(node = %config.node, tag = %format_args!("{tag:08x}"), url = %config.url, "joined the cluster");
        Ok(Cluster {
            tag,
            name: config.node.clone(),
            incarnation: rand_u64(),
            config,
            client,
            outlet,
            metrics,
            inbound: Mutex::new(Some(Inbound {
                control,
                datagrams,
                nodes,
                ping,
                control_out,
                datagrams_out,
            })),
            pending: Mutex::new(HashMap::new()),
            gathers: Mutex::new(HashMap::new()),
            next_corr: AtomicU32::new(1),
            proxies: Mutex::new(HashMap::new()),
            nodes: Mutex::new(HashMap::new()),
            link_up,
            beat_soon: tokio::sync::Notify::new(),
        })
    }

    /// Whether `party_id` is homed on this node.
    pub(crate) fn is_local(&self, party_id: PartyId) -> bool {
        home_of(party_id) == self.tag
    }

    pub(crate) fn link_is_up(&self) -> bool {
        lock(&self.link_up.since).is_some()
    }

    /// The other nodes heard from, by name, sorted.
    pub(crate) fn peers(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.nodes).values().map(|n| n.name.clone()).collect();
        names.sort();
        names
    }

    /// The node whose pool holds the cluster's tickets: the live node with
    /// the lowest tag (every node agrees once they hear the same nodes).
    pub(crate) fn matcher(&self) -> u32 {
        lock(&self.nodes)
            .keys()
            .copied()
            .chain([self.tag])
            .min()
            .unwrap_or(self.tag)
    }

    /// Whether a party homed on `tag` may exist: its node is heard, or
    /// this node's link came up too lately to have heard every node yet
    /// (every node beats back at once when it hears a new one, so one
    /// heartbeat interval is plenty).
    fn may_be_alive(&self, tag: u32) -> bool {
        tag == self.tag
            || lock(&self.nodes).contains_key(&tag)
            || lock(&self.link_up.since)
                .is_some_and(|since| since.elapsed() < self.config.heartbeat)
    }

    /// Sends a command to its party's home and registers the wait; `None`
    /// when it was answered at once (link down, home unknown).
    pub(crate) fn forward(
        &self,
        session: &SessionRef,
        id: u32,
        home: u32,
        command: Command,
    ) -> Option<Deferred> {
        let refuse = |error: ErrorBody| {
            session.push(Outbound::Response {
                id,
                result: Err(error),
            });
            None
        };
        if !self.link_is_up() {
            self.metrics.unavailable.fetch_add(1, Ordering::Relaxed);
            return refuse(ErrorBody::new(
                ErrorCode::Unavailable,
                "that party lives on another node, and the cluster link is down; try again shortly",
            ));
        }
        if !self.may_be_alive(home) {
            // Its home is gone (or never was): so is the party.
            let code = match command {
                Command::DeclineInvite { .. } => ErrorCode::InviteNotFound,
                Command::CancelTicket { .. } => ErrorCode::TicketNotFound,
                _ => ErrorCode::PartyNotFound,
            };
            return refuse(ErrorBody::new(
                code,
                "no such party or ticket: the node it names is not in the cluster",
            ));
        }
        let corr = self.next_corr.fetch_add(1, Ordering::Relaxed);
        let (done_tx, done) = oneshot::channel();
        lock(&self.pending).insert(
            corr,
            Pending {
                session: session.clone(),
                id,
                node: home,
                done: done_tx,
            },
        );
        lock(&session.cluster)
            .get_or_insert_with(Default::default)
            .homes
            .insert(home);
        self.metrics.forwarded.fetch_add(1, Ordering::Relaxed);
        self.outlet.control(
            home,
            &ControlMessage::Command {
                corr,
                from: self.tag,
                caller: session.presence.clone(),
                command,
            },
        );
        Some(Deferred::Forwarded(Forwarding { corr, done }))
    }

    /// Waits for a forwarded command's answer (pushed to the session by
    /// the inbound task, in order with its events); past the request
    /// timeout, answers `Unavailable` itself.
    pub(crate) async fn finish(&self, forwarding: Forwarding) {
        let Forwarding { corr, done } = forwarding;
        if tokio::time::timeout(self.config.request_timeout, done)
            .await
            .is_ok()
        {
            return;
        }
        if let Some(pending) = lock(&self.pending).remove(&corr) {
            self.metrics.unavailable.fetch_add(1, Ordering::Relaxed);
            pending.session.push(Outbound::Response {
                id: pending.id,
                result: Err(ErrorBody::new(
                    ErrorCode::Unavailable,
                    format!(
                        "the party's node did not answer within {:?}; the command may or may not have run",
                        self.config.request_timeout
                    ),
                )),
            });
        }
    }

    /// Asks every other node `question`; their answers, within the
    /// request timeout (a node that stays silent is left out).
    async fn ask_all(&self, question: Question) -> Vec<(u32, Answer)> {
        let peers: HashSet<u32> = lock(&self.nodes).keys().copied().collect();
        self.ask(peers, question).await
    }

    /// Asks `peers` `question`; their answers, within the request timeout.
    async fn ask(&self, peers: HashSet<u32>, question: Question) -> Vec<(u32, Answer)> {
        if peers.is_empty() || !self.link_is_up() {
            return Vec::new();
        }
        let corr = self.next_corr.fetch_add(1, Ordering::Relaxed);
        let (done, answered) = oneshot::channel();
        let message = ControlMessage::Ask {
            corr,
            from: self.tag,
            question,
        };
        let Some(payload) = encode(&message) else {
            return Vec::new();
        };
        lock(&self.gathers).insert(
            corr,
            Gather {
                waiting_for: peers.clone(),
                answers: Vec::new(),
                done: Some(done),
            },
        );
        for peer in peers {
            self.outlet
                .queue_control(control_subject(peer), payload.clone());
        }
        let _ = tokio::time::timeout(self.config.request_timeout, answered).await;
        lock(&self.gathers)
            .remove(&corr)
            .map(|gather| gather.answers)
            .unwrap_or_default()
    }

    /// A session resumed from snapshots: snapshots of its parties homed on
    /// other nodes, asked of their homes (one question per home).
    pub(crate) async fn remote_snapshots(
        &self,
        session: &SessionRef,
    ) -> (Vec<crate::protocol::ResumedParty>, Vec<PartyId>) {
        let mut by_home: HashMap<u32, Vec<PartyId>> = HashMap::new();
        for party_id in session.party_ids() {
            if !self.is_local(party_id) {
                by_home.entry(home_of(party_id)).or_default().push(party_id);
            }
        }
        let (mut parties, mut waiting) = (Vec::new(), Vec::new());
        // One home at a time: at most a few, and only on this rare path.
        for (home, party_ids) in by_home {
            let question = Question::Snapshots {
                session: session.session_id(),
                party_ids,
            };
            for (_, answer) in self.ask([home].into(), question).await {
                if let Answer::Snapshots {
                    parties: found,
                    waiting: queued,
                } = answer
                {
                    parties.extend(found);
                    waiting.extend(queued);
                }
            }
        }
        (parties, waiting)
    }

    /// Finishes a deferred command: its answer is queued when this returns.
    pub(crate) async fn complete(
        &self,
        shared: &Shared,
        session: &SessionRef,
        id: u32,
        deferred: Deferred,
    ) {
        let respond = |result: Result<Reply, ErrorBody>| {
            session.push(Outbound::Response { id, result });
        };
        match deferred {
            Deferred::Forwarded(forwarding) => self.finish(forwarding).await,
            Deferred::FindCode(code) => {
                let found = self
                    .ask_all(Question::FindCode(code))
                    .await
                    .into_iter()
                    .find_map(|(_, answer)| match answer {
                        Answer::Code(found) => found,
                        _ => None,
                    });
                match found {
                    Some(party_id) => {
                        let join = Command::JoinParty { party_id };
                        if let Some(Deferred::Forwarded(forwarding)) =
                            commands::handle(shared, session, id, join)
                        {
                            self.finish(forwarding).await;
                        }
                    }
                    None => respond(Err(crate::party::PartyError::JoinCodeNotFound.into())),
                }
            }
            Deferred::Follow {
                mut online,
                user_ids,
            } => {
                // (Each node's answer was noted as it came, by the control
                // task: see `on_control`.)
                for (_, answer) in self.ask_all(Question::Statuses(user_ids)).await {
                    if let Answer::Statuses(statuses) = answer {
                        online.extend(statuses);
                    }
                }
                online.truncate(commands::fitting(&online));
                respond(Ok(Reply::Followed { online }));
            }
            Deferred::Search(query) => {
                let max = shared.limits.max_search_results;
                let local = match shared.table.search_placed(&query, max) {
                    Ok(local) => local,
                    Err(error) => return respond(Err(error.into())),
                };
                let mut pages = vec![(local.0, local.1 != 0)];
                for (_, answer) in self.ask_all(Question::Search(query.clone())).await {
                    if let Answer::Search { parties, more } = answer {
                        pages.push((parties, more));
                    }
                }
                let limit = usize::from(query.limit.min(max));
                let (parties, next_cursor) = merge_pages(pages, limit);
                respond(Ok(Reply::Parties {
                    parties,
                    next_cursor,
                }));
            }
        }
    }

    /// An invite sent or gone: every other node keeps the invitee's
    /// pending invites too, and tells its sessions.
    pub(crate) fn broadcast_invite(&self, notice: &InviteNotice) {
        self.broadcast(BroadcastMessage::Invite(notice.clone()));
    }

    /// A local session's status event: for the followers on other nodes.
    pub(crate) fn broadcast_status(&self, user_id: &str, event: Event) {
        self.broadcast(BroadcastMessage::Status {
            user_id: user_id.to_string(),
            event,
        });
    }

    /// Sends `message` to every other node on its control subject (not a
    /// subject of their own): so it keeps its order with this node's
    /// answers to their questions, and a follow's gathered statuses and
    /// the status changes around it apply in the order they happened.
    fn broadcast(&self, message: BroadcastMessage) {
        let message = ControlMessage::Broadcast {
            from: self.tag,
            message,
        };
        let Some(payload) = encode(&message) else {
            return;
        };
        let peers: Vec<u32> = lock(&self.nodes).keys().copied().collect();
        for peer in peers {
            self.outlet
                .queue_control(control_subject(peer), payload.clone());
        }
    }

    /// Tells the homes of a local session's remote parties that its
    /// connection was lost or is back.
    pub(crate) fn tell_connection(
        &self,
        session: &SessionRef,
        connected: bool,
        hand_over_now: bool,
    ) {
        for home in self.remote_homes(session) {
            self.outlet.control(
                home,
                &ControlMessage::Connection {
                    session: session.session_id(),
                    connected,
                    hand_over_now,
                },
            );
        }
    }

    pub(crate) fn tell_leader_grace_over(&self, session: &SessionRef) {
        for home in self.remote_homes(session) {
            self.outlet.control(
                home,
                &ControlMessage::LeaderGraceOver {
                    session: session.session_id(),
                },
            );
        }
    }

    /// A local session ended: every home it ever reached hears it, after
    /// whatever it sent before (so a join still in flight is left too).
    pub(crate) fn tell_session_ended(&self, session: &SessionRef) {
        let mut homes = self.remote_homes(session);
        if let Some(state) = lock(&session.cluster).take() {
            homes.extend(state.homes);
        }
        for home in homes {
            self.outlet.control(
                home,
                &ControlMessage::SessionEnded {
                    session: session.session_id(),
                },
            );
        }
    }

    fn remote_homes(&self, session: &SessionRef) -> HashSet<u32> {
        session
            .party_ids()
            .into_iter()
            .map(home_of)
            .filter(|home| *home != self.tag)
            .collect()
    }

    /// The proxy of a member on `node`, made on its first command.
    fn proxy(&self, shared: &Shared, caller: Presence, node: u32) -> SessionRef {
        lock(&self.proxies)
            .entry(caller.session_id)
            .or_insert_with(|| {
                Arc::new(SessionLink::new_proxy(
                    caller,
                    ProxyOf {
                        node,
                        outlet: self.outlet.clone(),
                    },
                    shared.metrics.clone(),
                ))
            })
            .clone()
    }

    fn take_proxy(&self, session: SessionId) -> Option<SessionRef> {
        lock(&self.proxies).remove(&session)
    }

    fn find_proxy(&self, session: SessionId) -> Option<SessionRef> {
        lock(&self.proxies).get(&session).cloned()
    }

    /// Proxies now (for tests and metrics).
    pub(crate) fn proxy_count(&self) -> usize {
        lock(&self.proxies).len()
    }

    /// Serves the subscriptions, publishes what is queued, and heart-beats
    /// until aborted.
    pub(crate) async fn run(shared: Arc<Shared>, cluster: Arc<Cluster>) {
        let Some(inbound) = lock(&cluster.inbound).take() else {
            return;
        };
        let Inbound {
            mut control,
            mut datagrams,
            mut nodes,
            mut ping,
            control_out,
            datagrams_out,
        } = inbound;
        let publishers = [control_out, datagrams_out].map(|mut queue| {
            let client = cluster.client.clone();
            tokio::spawn(async move {
                while let Some(out) = queue.recv().await {
                    if let Err(error) = client.publish(out.subject, out.payload).await {
                        tracing::debug!(%error, "cluster publish failed");
                    }
                }
            })
        });
        let datagram_task = {
            let (shared, cluster) = (shared.clone(), cluster.clone());
            tokio::spawn(async move {
                let mut scratch = DatagramScratch::default();
                while let Some(message) = datagrams.next().await {
                    cluster.count_in(&message.payload, &cluster.metrics.datagram_messages_in);
                    match postcard::from_bytes::<DatagramMessage>(&message.payload) {
                        Ok(message) => on_datagram(&shared, message, &mut scratch),
                        Err(_) => cluster.undecodable(),
                    }
                }
            })
        };
        let ping_task = {
            let (client, name) = (cluster.client.clone(), cluster.name.clone());
            tokio::spawn(async move {
                while let Some(message) = ping.next().await {
                    if let Some(reply) = message.reply {
                        let _ = client.publish(reply, Bytes::from(name.clone())).await;
                    }
                }
            })
        };
        let nodes_task = {
            let (shared, cluster) = (shared.clone(), cluster.clone());
            tokio::spawn(async move {
                while let Some(message) = nodes.next().await {
                    if let Ok(beat) = postcard::from_bytes::<Heartbeat>(&message.payload) {
                        cluster.heard(&shared, beat);
                    }
                }
            })
        };
        let heartbeat_task = {
            let (shared, cluster) = (shared.clone(), cluster.clone());
            tokio::spawn(async move {
                let mut every = tokio::time::interval(cluster.config.heartbeat);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = every.tick() => cluster.sweep(&shared),
                        _ = cluster.beat_soon.notified() => {}
                    }
                    cluster.beat(false).await;
                }
            })
        };
        // Aborting `run` drops this guard, which stops the helpers.
        let _helpers = AbortOnDrop(
            publishers
                .into_iter()
                .chain([datagram_task, ping_task, nodes_task, heartbeat_task])
                .collect(),
        );
        // Proxies are made and dropped only on this task, so a proxy about
        // to take a seat is never dropped between.
        let mut tidy = tokio::time::interval(cluster.config.heartbeat);
        tidy.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = control.next() => {
                    let Some(message) = message else { break };
                    cluster.count_in(&message.payload, &cluster.metrics.control_in);
                    match postcard::from_bytes::<ControlMessage>(&message.payload) {
                        Ok(message) => on_control(&shared, &cluster, message),
                        Err(_) => cluster.undecodable(),
                    }
                }
                _ = tidy.tick() => cluster.drop_idle_proxies(),
            }
        }
    }

    /// Drops the proxies that hold nothing here any more (their member
    /// left, was kicked, or the party closed).
    fn drop_idle_proxies(&self) {
        lock(&self.proxies).retain(|_, proxy| !proxy.party_ids().is_empty());
    }

    fn count_in(&self, payload: &[u8], counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .bytes_in
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
    }

    fn undecodable(&self) {
        // Only another build of partyline (or something else entirely)
        // publishes what this one cannot read.
        self.metrics.undecodable.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("undecodable cluster message dropped (a node of another build?)");
    }

    /// Publishes this node's heartbeat (`leaving` when it stops).
    pub(crate) async fn beat(&self, leaving: bool) {
        let beat = Heartbeat {
            tag: self.tag,
            name: self.name.clone(),
            incarnation: self.incarnation,
            build: env!("CARGO_PKG_VERSION").to_string(),
            leaving,
        };
        if let Some(payload) = encode(&beat) {
            let _ = self.client.publish(NODES_SUBJECT, payload).await;
        }
        if leaving {
            let _ = self.client.flush().await;
        }
    }

    fn heard(&self, shared: &Shared, beat: Heartbeat) {
        if beat.tag == self.tag {
            if beat.incarnation != self.incarnation {
                tracing::error!(name = %beat.name, "another node heart-beats with this node's tag: give each node its own --node");
            }
            return;
        }
        if beat.build != env!("CARGO_PKG_VERSION") {
            tracing::warn!(node = %beat.name, build = %beat.build, "ignoring a node of another partyline build");
            return;
        }
        let restarted = {
            let mut nodes = lock(&self.nodes);
            match nodes.get_mut(&beat.tag) {
                Some(node) if node.incarnation == beat.incarnation && !beat.leaving => {
                    node.last_seen = Instant::now();
                    return;
                }
                Some(_) => true,
                None => false,
            }
        };
        if restarted || beat.leaving {
            // A node that restarted lost everything it homed; one that
            // leaves takes it with it.
            self.node_lost(
                shared,
                beat.tag,
                if beat.leaving { "left" } else { "restarted" },
            );
        }
        if !beat.leaving {
            tracing::info!(node = %beat.name, tag = %format_args!("{:08x}", beat.tag), "node joined the cluster");
            lock(&self.nodes).insert(
                beat.tag,
                PeerNode {
                    name: beat.name,
                    incarnation: beat.incarnation,
                    last_seen: Instant::now(),
                },
            );
            // So the newcomer hears of this node now, not a beat later.
            self.beat_soon.notify_one();
        }
    }

    /// Judges silent nodes lost, unless this node's own link was down
    /// lately (then silence proves nothing).
    fn sweep(&self, shared: &Shared) {
        let judged_since = match *lock(&self.link_up.since) {
            Some(since) if since.elapsed() >= self.config.node_timeout => since,
            _ => return,
        };
        let timeout = self.config.node_timeout;
        let silent: Vec<u32> = lock(&self.nodes)
            .iter()
            .filter(|(_, node)| node.last_seen.max(judged_since).elapsed() >= timeout)
            .map(|(tag, _)| *tag)
            .collect();
        for tag in silent {
            self.node_lost(shared, tag, "silent");
        }
    }

    /// Everything that tied this node to `tag` ends: its commands in
    /// flight fail, its sessions leave the parties homed here, and the
    /// parties it homed end for the sessions here.
    fn node_lost(&self, shared: &Shared, tag: u32, why: &str) {
        let name = lock(&self.nodes).remove(&tag).map(|node| node.name);
        self.metrics.nodes_lost.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(node = ?name, tag = %format_args!("{tag:08x}"), why, "node lost: its parties end, its members leave");
        let failed: Vec<Pending> = {
            let mut pending = lock(&self.pending);
            let corrs: Vec<u32> = pending
                .iter()
                .filter(|(_, p)| p.node == tag)
                .map(|(corr, _)| *corr)
                .collect();
            corrs
                .iter()
                .filter_map(|corr| pending.remove(corr))
                .collect()
        };
        for pending in failed {
            pending.session.push(Outbound::Response {
                id: pending.id,
                result: Err(ErrorBody::new(
                    ErrorCode::Unavailable,
                    "the party's node left the cluster before answering",
                )),
            });
            let _ = pending.done.send(());
        }
        let gone: Vec<SessionRef> = {
            let mut proxies = lock(&self.proxies);
            let ids: Vec<SessionId> = proxies
                .iter()
                .filter(|(_, proxy)| proxy.proxy.as_ref().is_some_and(|p| p.node == tag))
                .map(|(id, _)| *id)
                .collect();
            ids.iter().filter_map(|id| proxies.remove(id)).collect()
        };
        for proxy in gone {
            commands::end_session(shared, &proxy);
        }
        for gather in lock(&self.gathers).values_mut() {
            gather.heard_from(tag);
        }
        shared.users.node_lost(tag);
        for (party_id, ticket_id) in shared.matchmaking.node_lost(tag) {
            super::matchmaking::clear_party_ticket(shared, party_id, ticket_id);
        }
        for session in shared.all_sessions() {
            // Tickets it waits in, in that node's pool.
            let lost: Vec<u64> = lock(&session.cluster)
                .as_mut()
                .map(|state| {
                    let lost: Vec<u64> = state
                        .tickets
                        .iter()
                        .copied()
                        .filter(|id| (id >> 32) as u32 == tag)
                        .collect();
                    state.tickets.retain(|id| (id >> 32) as u32 != tag);
                    lost
                })
                .unwrap_or_default();
            for ticket_id in lost {
                session.push_event(Event::TicketCancelled {
                    ticket_id,
                    reason: crate::protocol::TicketCancelReason::NodeLost,
                });
            }
            for party_id in session.party_ids() {
                if home_of(party_id) != tag {
                    continue;
                }
                crate::party::Link::detach(&session, party_id);
                let seat = lock(&session.cluster)
                    .as_mut()
                    .and_then(|state| state.remote.remove(&party_id));
                let seq = seat.map_or(0, |s| s.seq) + 1;
                session.push_event(match seat {
                    Some(RemoteSeat { seated: false, .. }) => Event::JoinRejected {
                        party_id,
                        seq,
                        reason: RejectReason::PartyClosed,
                    },
                    _ => Event::Closed { party_id, seq },
                });
            }
        }
    }

    /// Notes what a relayed reply or event says of a session's remote
    /// seat, for `node_lost`.
    fn note_seat(session: &SessionRef, party_id: PartyId, seq: u64, seated: Option<bool>) {
        let mut state = lock(&session.cluster);
        let state = state.get_or_insert_with(Default::default);
        match seated {
            None => {
                state.remote.remove(&party_id);
            }
            Some(seated) => {
                let seat = state
                    .remote
                    .entry(party_id)
                    .or_insert(RemoteSeat { seq, seated });
                seat.seq = seat.seq.max(seq);
                seat.seated |= seated;
            }
        }
    }

    /// Stops: tells the other nodes this one leaves, so they end its
    /// parties at once instead of after `node_timeout`.
    pub(crate) async fn leave(&self) {
        // With NATS down the goodbye cannot go out (a flush would wait for
        // the link forever): the others judge this node lost by its
        // silence instead.
        let goodbye = self.beat(true);
        if tokio::time::timeout(LEAVE_TIMEOUT, goodbye).await.is_err() {
            tracing::warn!("could not tell the cluster this node leaves (NATS unreachable); the other nodes will notice its silence");
        }
        lock(&self.proxies).clear();
    }
}

/// Aborts its tasks when dropped.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

fn rand_u64() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

fn on_control(shared: &Shared, cluster: &Cluster, message: ControlMessage) {
    match message {
        ControlMessage::Command {
            corr,
            from,
            caller,
            command,
        } => {
            let proxy = cluster.proxy(shared, caller, from);
            // Runs as a local command of the proxy: its reply and events go
            // back to `from` through the proxy (`SessionLink::push`).
            let forwarded = commands::handle(shared, &proxy, corr, command);
            debug_assert!(forwarded.is_none(), "a proxy's command is never forwarded");
        }
        ControlMessage::Reply { corr, result } => {
            let Some(pending) = lock(&cluster.pending).remove(&corr) else {
                // Answered late: the caller already heard `Unavailable`.
                return;
            };
            match &result {
                Ok(Reply::Join(JoinOutcome::Joined(snapshot))) => Cluster::note_seat(
                    &pending.session,
                    snapshot.party_id,
                    snapshot.seq,
                    Some(true),
                ),
                Ok(Reply::Join(JoinOutcome::Queued { party_id, seq })) => {
                    Cluster::note_seat(&pending.session, *party_id, *seq, Some(false))
                }
                _ => {}
            }
            pending.session.push(Outbound::Response {
                id: pending.id,
                result,
            });
            let _ = pending.done.send(());
        }
        ControlMessage::Events(events) => {
            for RelayedEvent { to, event } in events {
                let seat = match (&event, event.party_id(), event.party_seq()) {
                    (
                        Event::JoinRejected { .. }
                        | Event::Kicked { .. }
                        | Event::Closed { .. }
                        | Event::Banned { .. },
                        Some(party),
                        Some(seq),
                    ) => Some((party, seq, None)),
                    (_, Some(party), Some(seq)) => Some((party, seq, Some(true))),
                    _ => None,
                };
                let ticket = match &event {
                    Event::TicketStarted { ticket_id, .. } => Some((*ticket_id, true)),
                    Event::TicketCancelled { ticket_id, .. } => Some((*ticket_id, false)),
                    Event::Matched(found) => Some((found.ticket_id, false)),
                    _ => None,
                };
                for session in shared.find_sessions(&to) {
                    if let Some((party, seq, seated)) = seat {
                        Cluster::note_seat(&session, party, seq, seated);
                    }
                    if let Some((ticket_id, waiting)) = ticket {
                        let mut state = lock(&session.cluster);
                        let tickets = &mut state.get_or_insert_with(Default::default).tickets;
                        match waiting {
                            true => tickets.insert(ticket_id),
                            false => tickets.remove(&ticket_id),
                        };
                    }
                    session.push_event(event.clone());
                }
            }
        }
        ControlMessage::Membership {
            session,
            party_id,
            held,
        } => {
            if let Some(session) = shared.find_session(session) {
                use crate::party::Link;
                if held {
                    session.attach(party_id);
                } else {
                    session.detach(party_id);
                    Cluster::note_seat(&session, party_id, 0, None);
                }
            }
        }
        ControlMessage::Connection {
            session,
            connected,
            hand_over_now,
        } => {
            if let Some(proxy) = cluster.find_proxy(session) {
                grace::set_connected(shared, &proxy, connected, hand_over_now);
            }
        }
        ControlMessage::LeaderGraceOver { session } => {
            if let Some(proxy) = cluster.find_proxy(session) {
                grace::leader_grace_over(shared, &proxy);
            }
        }
        ControlMessage::SessionEnded { session } => {
            if let Some(proxy) = cluster.take_proxy(session) {
                commands::end_session(shared, &proxy);
            }
            // Its solo ticket, if it waits in this node's pool.
            shared.matchmaking.session_ended(session);
        }
        ControlMessage::PoolTicket {
            ticket_id,
            request,
            submitter,
            members,
        } => {
            let home = (ticket_id >> 32) as u32;
            let members: Option<Vec<SessionRef>> = members
                .into_iter()
                .map(|(presence, node)| match node.unwrap_or(home) {
                    node if node == cluster.tag => shared.find_session(presence.session_id),
                    node => Some(cluster.proxy(shared, presence, node)),
                })
                .collect();
            let pooled = match members {
                Some(members) => shared
                    .matchmaking
                    .insert_pooled(ticket_id, &request, submitter, members, home),
                // A member of this node left meanwhile: the home cancels.
                None => Err(ErrorBody::new(
                    ErrorCode::MemberNotFound,
                    "a member's session is gone",
                )),
            };
            if let Err(refusal) = pooled {
                tracing::info!(ticket_id, %refusal, "a party's ticket could not join the pool");
                cluster
                    .outlet
                    .control(home, &ControlMessage::PoolRefused { ticket_id });
            }
        }
        ControlMessage::Unpool { ticket_id } => shared.matchmaking.unpool(ticket_id),
        ControlMessage::PoolMatched { ticket_id } => {
            if let Some(party_id) = shared.matchmaking.shadow_matched(ticket_id) {
                super::matchmaking::clear_party_ticket(shared, party_id, ticket_id);
            }
        }
        ControlMessage::PoolRefused { ticket_id } => {
            // Its members heard TicketStarted from here: they hear it end.
            if let Some((Some(party_id), _)) = shared.matchmaking.owner_of(ticket_id) {
                super::matchmaking::clear_party_ticket(shared, party_id, ticket_id);
            }
            shared
                .matchmaking
                .cancel(ticket_id, crate::protocol::TicketCancelReason::Cancelled);
        }
        ControlMessage::Ask {
            corr,
            from,
            question,
        } => {
            let answer = match question {
                Question::FindCode(code) => Answer::Code(shared.table.party_of_code(&code).ok()),
                Question::Statuses(user_ids) => {
                    Answer::Statuses(shared.users.statuses_of(&user_ids))
                }
                Question::Snapshots { session, party_ids } => {
                    let (parties, waiting) =
                        super::connection::snapshots_of(shared, session, party_ids);
                    Answer::Snapshots { parties, waiting }
                }
                Question::Search(query) => {
                    let max = shared.limits.max_search_results;
                    let (parties, next) =
                        shared.table.search_placed(&query, max).unwrap_or_default();
                    Answer::Search {
                        parties,
                        more: next != 0,
                    }
                }
            };
            let reply = ControlMessage::Answer {
                corr,
                from: cluster.tag,
                answer,
            };
            cluster.outlet.control(from, &reply);
        }
        ControlMessage::Broadcast { from, message } => on_broadcast(shared, from, message),
        ControlMessage::Answer { corr, from, answer } => {
            // Here, in order with that node's status changes, not later in
            // the waiting command's task.
            if let Answer::Statuses(statuses) = &answer {
                shared.users.note_gathered(from, statuses);
            }
            if let Some(gather) = lock(&cluster.gathers).get_mut(&corr) {
                gather.answers.push((from, answer));
                gather.heard_from(from);
            }
        }
    }
}

fn on_broadcast(shared: &Shared, from: u32, message: BroadcastMessage) {
    match message {
        BroadcastMessage::Invite(notice) => shared.users.notice(notice),
        BroadcastMessage::Status { user_id, event } => {
            shared.users.remote_status(from, &user_id, &event)
        }
    }
}

/// Merges the nodes' pages of a search (each in place order) into the
/// first `limit` parties of the cluster's listing order, and the cursor of
/// the next page: the place of the last one given when any node has more.
fn merge_pages(
    pages: Vec<(Vec<(u64, crate::protocol::ListedParty)>, bool)>,
    limit: usize,
) -> (Vec<crate::protocol::ListedParty>, u64) {
    let mut more = pages.iter().any(|(_, more)| *more);
    let mut merged: Vec<(u64, crate::protocol::ListedParty)> =
        pages.into_iter().flat_map(|(parties, _)| parties).collect();
    merged.sort_by_key(|(place, _)| *place);
    if merged.len() > limit {
        merged.truncate(limit);
        more = true;
    }
    // Long labels and properties: a shorter page, so it fits one frame.
    let parties: Vec<_> = merged.iter().map(|(_, party)| party.clone()).collect();
    let fit = commands::fitting(&parties).max(1).min(parties.len());
    if fit < merged.len() {
        merged.truncate(fit);
        more = true;
    }
    let next = match (more, merged.last()) {
        (true, Some((place, _))) => *place,
        _ => 0,
    };
    (merged.into_iter().map(|(_, party)| party).collect(), next)
}

/// Reused buffers of the datagram task.
#[derive(Default)]
struct DatagramScratch {
    recipients: Vec<SessionRef>,
}

fn on_datagram(shared: &Shared, message: DatagramMessage, scratch: &mut DatagramScratch) {
    match message {
        DatagramMessage::ToHome {
            party_id,
            sender,
            op_code,
            payload,
        } => {
            let recipients = &mut scratch.recipients;
            let checked = shared.table.read(party_id, |party| {
                party.data_recipients(sender, recipients).map(drop)
            });
            if checked.is_err() {
                // Its sender's node checked the seat; it ended meanwhile.
                super::metrics::count(&shared.metrics.dropped_not_member);
                recipients.clear();
                return;
            }
            let outgoing =
                crate::protocol::encode_server_datagram(party_id, sender, op_code, &payload);
            fan_out_datagram(shared, recipients, outgoing);
        }
        DatagramMessage::ToMembers { to, datagram } => {
            let sessions = shared.find_sessions(&to);
            shared.metrics.datagrams_out.inc_by(sessions.len() as u64);
            for session in sessions {
                send_local_datagram(shared, session, datagram.clone());
            }
        }
    }
}

fn send_local_datagram(shared: &Shared, session: SessionRef, datagram: Bytes) {
    match &shared.coalescer {
        None => session.send_datagram(datagram),
        Some(coalescer) => coalescer.queue(session, datagram),
    }
}

/// Sends `outgoing` to every recipient: local sessions directly (or
/// through the coalescer), members on other nodes in one message per node.
/// Drains `recipients`.
pub(crate) fn fan_out_datagram(shared: &Shared, recipients: &mut Vec<SessionRef>, outgoing: Bytes) {
    let mut remote: Vec<(u32, Vec<SessionId>, Arc<Outlet>)> = Vec::new();
    let mut local = 0;
    for recipient in recipients.drain(..) {
        match &recipient.proxy {
            None => {
                local += 1;
                send_local_datagram(shared, recipient, outgoing.clone());
            }
            Some(proxy) => match remote.iter_mut().find(|(node, _, _)| *node == proxy.node) {
                Some((_, to, _)) => to.push(recipient.session_id()),
                None => remote.push((
                    proxy.node,
                    vec![recipient.session_id()],
                    proxy.outlet.clone(),
                )),
            },
        }
    }
    shared.metrics.datagrams_out.inc_by(local);
    for (node, to, outlet) in remote {
        outlet.datagram(
            node,
            &DatagramMessage::ToMembers {
                to,
                datagram: outgoing.clone(),
            },
        );
    }
}

/// Events for members on other nodes, gathered per node so that one change
/// crosses NATS once per node.
#[derive(Default)]
pub(crate) struct EventBatches {
    batches: Vec<(u32, Arc<Outlet>, Vec<RelayedEvent>)>,
}

impl EventBatches {
    pub(crate) fn add(&mut self, proxy: &ProxyOf, session: SessionId, event: Event) {
        let at = match self
            .batches
            .iter()
            .position(|(node, _, _)| *node == proxy.node)
        {
            Some(at) => at,
            None => {
                self.batches
                    .push((proxy.node, proxy.outlet.clone(), Vec::new()));
                self.batches.len() - 1
            }
        };
        let batch = &mut self.batches[at].2;
        match batch.last_mut() {
            // The same event to several members there: named once.
            Some(last) if last.event == event => last.to.push(session),
            _ => batch.push(RelayedEvent {
                to: vec![session],
                event,
            }),
        }
    }

    pub(crate) fn send(self) {
        for (node, outlet, events) in self.batches {
            outlet.control(node, &ControlMessage::Events(events));
        }
    }
}

/// Party data from a local member to a party homed elsewhere: checked
/// against the seats its node knows of, then sent to the home once.
pub(crate) fn datagram_to_home(
    cluster: &Cluster,
    session: &SessionRef,
    party_id: PartyId,
    op_code: i64,
    payload: Bytes,
) -> Result<(), ErrorBody> {
    if !session.holds(party_id) {
        return Err(ErrorBody::new(
            ErrorCode::NotMember,
            "this session has no seat in that party",
        ));
    }
    cluster.outlet.datagram(
        home_of(party_id),
        &DatagramMessage::ToHome {
            party_id,
            sender: session.session_id(),
            op_code,
            payload,
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_party_id_names_its_home_and_stays_a_v4_uuid() {
        let tag = node_tag("node-a");
        for _ in 0..100 {
            let id = party_id_on(tag);
            assert_eq!(home_of(id), tag);
            assert_eq!(id.0.get_version_num(), 4);
            assert_eq!(id.0.get_variant(), uuid::Variant::RFC4122);
        }
        assert_ne!(node_tag("node-a"), node_tag("node-b"));
    }

    #[test]
    fn node_names_are_checked() {
        assert!(valid_node_name("eu-west-1.node_7"));
        assert!(!valid_node_name(""));
        assert!(!valid_node_name("a b"));
        assert!(!valid_node_name("pl.>"));
        assert!(!valid_node_name(&"x".repeat(65)));
    }
}
