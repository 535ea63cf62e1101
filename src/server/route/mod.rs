//! Routing: the one place that looks at where a session is. A party
//! member is a session of this node or of another (a **proxy**, on the
//! party's home, for a member whose connection is elsewhere); everything
//! sent to a member goes through here, and what goes to other nodes is
//! batched once per node (`EventBatches`, `fan_out_datagram`).
//!
//! - A party lives on its **home**, the node that created it; bytes 0-3 of
//!   its id are the home's tag, so any node routes a party id with no
//!   lookup. Alone (no other node), every party is homed here.
//! - A session's command for a party homed elsewhere is forwarded to the
//!   home (`forward`), which runs it for a proxy of the session and
//!   answers exactly as locally: the reply, then the events, in order.
//! - The node table: who is alive (heartbeats), and the matcher (the live
//!   node with the lowest tag).
//!
//! Other nodes are reached through [`Peers`] alone; what arrives from
//! them is served by the nodes module.

mod send;
mod table;

pub(crate) use table::{Heard, Loss};

use super::metrics::Metrics;
use super::peers::{
    encode, home_of, party_id_on, Answer, ControlMessage, NodeId, Outlet, Peers, Question, RemoteAt,
};
use super::session::{lock, Outbound, RemoteSeat, SessionLink, SessionRef};
use crate::protocol::{Command, ErrorBody, ErrorCode, PartyId, Presence, ResumedParty, SessionId};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};

/// How nodes watch each other and wait for each other.
#[derive(Clone, Copy, Debug)]
pub struct NodeTimings {
    /// How often a node announces itself. Default 1 s.
    pub heartbeat: Duration,
    /// A node not heard from for this long is lost, and its parties end.
    /// Default 3 s.
    pub node_timeout: Duration,
    /// How long a forwarded command waits for its home's answer before it
    /// fails with `Unavailable`. Default 2 s.
    pub request_timeout: Duration,
}

impl Default for NodeTimings {
    fn default() -> Self {
        NodeTimings {
            heartbeat: Duration::from_secs(1),
            node_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(2),
        }
    }
}

/// Where a command runs, in a cluster.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target {
    /// The party's home.
    Party(PartyId),
    /// The ticket's home (which made it, and keeps it or its shadow).
    Ticket(u64),
    /// The node whose pool holds the cluster's tickets.
    Matcher,
}

/// A command sent to its home, waiting for the answer.
pub(crate) struct Pending {
    pub(crate) session: SessionRef,
    pub(crate) id: u32,
    pub(crate) node: NodeId,
    pub(crate) done: oneshot::Sender<()>,
}

/// A forwarded command, to be awaited by the session's control loop (so
/// one session's commands still run one at a time, in order).
pub(crate) struct Forwarding {
    corr: u32,
    done: oneshot::Receiver<()>,
}

/// A question asked of other nodes, gathering their answers.
pub(crate) struct Gather {
    waiting_for: HashSet<NodeId>,
    answers: Vec<(NodeId, Answer)>,
    done: Option<oneshot::Sender<()>>,
}

impl Gather {
    pub(crate) fn heard_from(&mut self, node: NodeId) {
        self.waiting_for.remove(&node);
        if self.waiting_for.is_empty() {
            if let Some(done) = self.done.take() {
                let _ = done.send(());
            }
        }
    }
}

/// What a question asked of other nodes gathered.
#[derive(Default)]
pub(crate) struct Gathered {
    /// Each answer, with the node that gave it.
    pub(crate) answers: Vec<(NodeId, Answer)>,
    /// The nodes that did not answer within the request timeout.
    pub(crate) silent: Vec<NodeId>,
}

/// Why a party's home gave no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unanswered {
    /// The node its id names is not in the cluster: neither is the party.
    NoSuchNode,
    /// Its home did not answer within the request timeout, or the link to
    /// the other nodes is down.
    Silent(NodeId),
}

/// This node's place among the others: where parties and sessions are,
/// and how to reach them.
pub(crate) struct Route {
    pub(crate) me: NodeId,
    alone: bool,
    pub(crate) timings: NodeTimings,
    peers: Arc<dyn Peers>,
    pub(crate) outlet: Arc<Outlet>,
    metrics: Arc<Metrics>,
    coalescer: Option<Arc<super::coalesce::Coalescer>>,
    pending: Mutex<HashMap<u32, Pending>>,
    gathers: Mutex<HashMap<u32, Gather>>,
    next_corr: AtomicU32,
    /// Members on other nodes of parties homed here, by session.
    proxies: Mutex<HashMap<SessionId, SessionRef>>,
    nodes: Mutex<table::NodeTable>,
    /// Wakes the heartbeat task early (a new node was heard).
    pub(crate) beat_soon: Notify,
}

impl Route {
    pub(crate) fn new(
        peers: Arc<dyn Peers>,
        timings: NodeTimings,
        metrics: Arc<Metrics>,
        coalescer: Option<Arc<super::coalesce::Coalescer>>,
    ) -> Route {
        Route {
            me: peers.node(),
            alone: peers.is_alone(),
            timings,
            outlet: Arc::new(Outlet::new(peers.clone(), timings.node_timeout)),
            peers,
            metrics,
            coalescer,
            pending: Mutex::new(HashMap::new()),
            gathers: Mutex::new(HashMap::new()),
            next_corr: AtomicU32::new(1),
            proxies: Mutex::new(HashMap::new()),
            nodes: Mutex::new(table::NodeTable::new()),
            beat_soon: Notify::new(),
        }
    }

    pub(crate) fn peers(&self) -> &Arc<dyn Peers> {
        &self.peers
    }

    /// False for a server alone.
    pub(crate) fn clustered(&self) -> bool {
        !self.alone
    }

    /// A fresh party id homed on this node.
    pub(crate) fn new_party_id(&self) -> PartyId {
        match self.alone {
            true => PartyId::random(),
            false => party_id_on(self.me),
        }
    }

    /// The node that homes `party_id`.
    pub(crate) fn home_of(&self, party_id: PartyId) -> NodeId {
        match self.alone {
            true => self.me,
            false => home_of(party_id),
        }
    }

    /// Whether `party_id` is homed on this node.
    pub(crate) fn is_here(&self, party_id: PartyId) -> bool {
        self.alone || home_of(party_id) == self.me
    }

    /// The node a ticket id names (its high 32 bits); this one alone.
    pub(crate) fn node_of_ticket(&self, ticket_id: u64) -> NodeId {
        match self.alone {
            true => self.me,
            false => (ticket_id >> 32) as NodeId,
        }
    }

    /// The node that runs a command for `target`, when it is not this one.
    pub(crate) fn elsewhere(&self, target: Target) -> Option<NodeId> {
        if self.alone {
            return None;
        }
        let node = match target {
            Target::Party(party_id) => home_of(party_id),
            Target::Ticket(ticket_id) => self.node_of_ticket(ticket_id),
            Target::Matcher => self.matcher(),
        };
        (node != self.me).then_some(node)
    }

    pub(crate) fn link_is_up(&self) -> bool {
        self.peers.link_up_since().is_some()
    }

    /// Sends a command to the node that runs it and registers the wait;
    /// `None` when it was answered at once (link down, node unknown).
    pub(crate) fn forward(
        &self,
        session: &SessionRef,
        id: u32,
        node: NodeId,
        command: Command,
    ) -> Option<Forwarding> {
        let refuse = |error: ErrorBody| {
            session.push(Outbound::Response {
                id,
                result: Err(error),
            });
            None
        };
        if !self.link_is_up() {
            self.count_unavailable();
            return refuse(ErrorBody::new(
                ErrorCode::Unavailable,
                "that party lives on another node, and the cluster link is down; try again shortly",
            ));
        }
        if !self.knows(node) && self.just_joined() {
            // Not heard yet (this node just came up or back): it may be
            // there; a message to it could not be addressed yet.
            self.count_unavailable();
            return refuse(ErrorBody::new(
                ErrorCode::Unavailable,
                "that party's node is not heard yet (this node just joined the cluster); try again shortly",
            ));
        }
        if !self.knows(node) {
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
                node,
                done: done_tx,
            },
        );
        lock(&session.abroad)
            .get_or_insert_with(Default::default)
            .homes
            .insert(node);
        super::peers::PeerMetrics::add(&self.peers.metrics().forwarded, 1);
        self.outlet.control(
            node,
            &ControlMessage::Command {
                corr,
                from: self.me,
                caller: session.presence.clone(),
                command,
            },
        );
        Some(Forwarding { corr, done })
    }

    fn count_unavailable(&self) {
        super::peers::PeerMetrics::add(&self.peers.metrics().unavailable, 1);
    }

    /// Waits for a forwarded command's answer (pushed to the session by
    /// the nodes module, in order with its events); past the request
    /// timeout, answers `Unavailable` itself.
    pub(crate) async fn finish(&self, forwarding: Forwarding) {
        let Forwarding { corr, done } = forwarding;
        if tokio::time::timeout(self.timings.request_timeout, done)
            .await
            .is_ok()
        {
            return;
        }
        if let Some(pending) = lock(&self.pending).remove(&corr) {
            self.count_unavailable();
            pending.session.push(Outbound::Response {
                id: pending.id,
                result: Err(ErrorBody::new(
                    ErrorCode::Unavailable,
                    format!(
                        "the party's node did not answer within {:?}; the command may or may not have run",
                        self.timings.request_timeout
                    ),
                )),
            });
        }
    }

    /// The answer to a forwarded command arrived: its wait, if it still
    /// waits (a late answer finds the caller told `Unavailable` already).
    pub(crate) fn answered(&self, corr: u32) -> Option<Pending> {
        lock(&self.pending).remove(&corr)
    }

    /// Asks every other node `question`; their answers, within the
    /// request timeout (a node that stays silent is left out). Alone: at
    /// once, none.
    pub(crate) async fn ask_all(&self, question: Question) -> Vec<(NodeId, Answer)> {
        self.ask_every(question).await.answers
    }

    /// Asks every other node `question`: their answers, and the nodes that
    /// did not answer within the request timeout (every one of them while
    /// the link is down). Alone: at once, none.
    pub(crate) async fn ask_every(&self, question: Question) -> Gathered {
        let peers: HashSet<NodeId> = self.live_nodes().into_iter().collect();
        self.ask(peers, question).await
    }

    /// Asks one other node `question`: its answer, or `None` when it did
    /// not answer within the request timeout.
    /// The answer of `node` to `question`: `here`'s when `node` is this
    /// one; `None` when it did not answer in time.
    pub(crate) async fn ask_at(
        &self,
        node: NodeId,
        question: Question,
        here: impl FnOnce(Question) -> Answer,
    ) -> Option<Answer> {
        match node == self.me {
            true => Some(here(question)),
            false => self.ask_node(node, question).await,
        }
    }

    pub(crate) async fn ask_node(&self, node: NodeId, question: Question) -> Option<Answer> {
        let gathered = self.ask([node].into(), question).await;
        gathered
            .answers
            .into_iter()
            .next()
            .map(|(_, answer)| answer)
    }

    /// Asks `peers` `question`; their answers, within the request timeout.
    async fn ask(&self, peers: HashSet<NodeId>, question: Question) -> Gathered {
        self.ask_each(peers, |_| question.clone()).await
    }

    /// Asks each of `peers` its own question (`question_for`); their
    /// answers, within the request timeout.
    pub(crate) async fn ask_each(
        &self,
        peers: HashSet<NodeId>,
        question_for: impl Fn(NodeId) -> Question,
    ) -> Gathered {
        let silent_all = |peers: HashSet<NodeId>| Gathered {
            answers: Vec::new(),
            silent: peers.into_iter().collect(),
        };
        if peers.is_empty() || !self.link_is_up() {
            return silent_all(peers);
        }
        let corr = self.next_corr.fetch_add(1, Ordering::Relaxed).max(1);
        let (done, answered) = oneshot::channel();
        let mut payloads = Vec::new();
        for peer in &peers {
            let message = ControlMessage::Ask {
                corr,
                from: self.me,
                question: question_for(*peer),
            };
            let Some(payload) = encode(&message) else {
                return silent_all(peers);
            };
            payloads.push((*peer, payload));
        }
        lock(&self.gathers).insert(
            corr,
            Gather {
                waiting_for: peers.clone(),
                answers: Vec::new(),
                done: Some(done),
            },
        );
        for (peer, payload) in payloads {
            self.outlet.control_encoded(peer, payload);
        }
        let _ = tokio::time::timeout(self.timings.request_timeout, answered).await;
        match lock(&self.gathers).remove(&corr) {
            Some(gather) => Gathered {
                answers: gather.answers,
                silent: gather.waiting_for.into_iter().collect(),
            },
            None => Gathered::default(),
        }
    }

    /// The answer to `question` about `party_id`, from the party's home:
    /// `here` answers it when that is this node.
    pub(crate) async fn ask_home(
        &self,
        party_id: PartyId,
        question: Question,
        here: impl FnOnce(Question) -> Answer,
    ) -> Result<Answer, Unanswered> {
        if self.is_here(party_id) {
            return Ok(here(question));
        }
        let home = home_of(party_id);
        if self.link_is_up() && !self.knows(home) && !self.just_joined() {
            // Its home is gone (or never was): so is the party.
            return Err(Unanswered::NoSuchNode);
        }
        self.ask_node(home, question)
            .await
            .ok_or(Unanswered::Silent(home))
    }

    /// An answer to a gather arrived from `from`.
    pub(crate) fn gathered(&self, corr: u32, from: NodeId, answer: Answer) {
        if let Some(gather) = lock(&self.gathers).get_mut(&corr) {
            gather.answers.push((from, answer));
            gather.heard_from(from);
        }
    }

    /// A session resumed from snapshots: snapshots of its parties homed on
    /// other nodes, asked of their homes (one question per home).
    pub(crate) async fn remote_snapshots(
        &self,
        session: &SessionRef,
    ) -> (Vec<ResumedParty>, Vec<PartyId>) {
        let mut by_home: HashMap<NodeId, Vec<PartyId>> = HashMap::new();
        for party_id in session.party_ids() {
            if !self.is_here(party_id) {
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
            for (_, answer) in self.ask([home].into(), question).await.answers {
                if let Answer::Snapshots {
                    parties: found,
                    waiting: queued,
                    ..
                } = answer
                {
                    parties.extend(found);
                    waiting.extend(queued);
                }
            }
        }
        (parties, waiting)
    }

    /// Sends `message` to node `node` on its control lane (in order with
    /// this node's other messages to it).
    pub(crate) fn send_to(&self, node: NodeId, message: &ControlMessage) {
        self.outlet.control(node, message);
    }

    /// Asks `question` of `node` without waiting for its answer: the
    /// answer is acted on by the node task as it arrives (`corr` 0 is no
    /// one's).
    pub(crate) fn ask_no_wait(&self, node: NodeId, question: Question) {
        let ask = ControlMessage::Ask {
            corr: 0,
            from: self.me,
            question,
        };
        self.outlet.control(node, &ask);
    }

    /// Tells the homes of a local session's remote parties that its
    /// connection was lost or is back. Nothing for a proxy: its own node
    /// tells.
    pub(crate) fn tell_connection(
        &self,
        session: &SessionRef,
        connected: bool,
        hand_over_now: bool,
    ) {
        if session.remote.is_some() {
            return;
        }
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

    /// Tells the homes of a local session's remote parties its
    /// connection's new score (one message per home). Nothing for a
    /// proxy: its own node measures it.
    pub(crate) fn tell_quality(&self, session: &SessionRef, score: u32) {
        if session.remote.is_some() {
            return;
        }
        for home in self.remote_homes(session) {
            self.outlet.control(
                home,
                &ControlMessage::Quality {
                    session: session.session_id(),
                    score,
                },
            );
        }
    }

    /// A local session's leader grace is over: the homes of its remote
    /// parties pass the lead on.
    pub(crate) fn tell_leader_grace_over(&self, session: &SessionRef) {
        if session.remote.is_some() {
            return;
        }
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
        if session.remote.is_some() {
            return;
        }
        let mut homes = self.remote_homes(session);
        if let Some(state) = lock(&session.abroad).take() {
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

    fn remote_homes(&self, session: &SessionRef) -> HashSet<NodeId> {
        session
            .party_ids()
            .into_iter()
            .filter(|party_id| !self.is_here(*party_id))
            .map(home_of)
            .collect()
    }

    /// The session `presence` of node `node`: this node's own session, or
    /// the proxy of one elsewhere (made on first use). `None` when a local
    /// session is gone.
    pub(crate) fn member_at(
        &self,
        presence: Presence,
        node: NodeId,
        find_local: impl FnOnce(SessionId) -> Option<SessionRef>,
    ) -> Option<SessionRef> {
        match node == self.me {
            true => find_local(presence.session_id),
            false => Some(self.proxy(presence, node)),
        }
    }

    /// The proxy of a member on `node`, made on its first command.
    /// One that names another node and holds nothing here (its session
    /// moved: a ticket's home keeps no seat of it) gives way to one on
    /// `node`, so its answers go where the session is now.
    pub(crate) fn proxy(&self, caller: Presence, node: NodeId) -> SessionRef {
        let mut proxies = lock(&self.proxies);
        let moved = proxies
            .get(&caller.session_id)
            .is_some_and(|proxy| !Self::lives_on(proxy, node) && proxy.party_ids().is_empty());
        if moved {
            proxies.remove(&caller.session_id);
        }
        proxies
            .entry(caller.session_id)
            .or_insert_with(|| self.new_proxy(caller, node))
            .clone()
    }

    /// A ticket's member on `node`, for a pool: a proxy that only passes
    /// events on, kept by the ticket and not among the party proxies (a
    /// party's proxy of the same session may still name the node it left).
    pub(crate) fn ticket_member(&self, member: Presence, node: NodeId) -> SessionRef {
        self.new_proxy(member, node)
    }

    fn new_proxy(&self, member: Presence, node: NodeId) -> SessionRef {
        let at = RemoteAt {
            node,
            outlet: self.outlet.clone(),
        };
        Arc::new(SessionLink::new_proxy(member, at, self.metrics.clone()))
    }

    /// Runs `seat` with the proxy of a member on `node` (made if needed),
    /// holding the proxies meanwhile: the server-side API seats members
    /// from its own task, and the node task must not drop the proxy as
    /// idle before it holds the seat. `seat` must not touch the proxies.
    pub(crate) fn with_proxy<R>(
        &self,
        member: Presence,
        node: NodeId,
        seat: impl FnOnce(&SessionRef) -> R,
    ) -> R {
        let mut proxies = lock(&self.proxies);
        let proxy = proxies
            .entry(member.session_id)
            .or_insert_with(|| self.new_proxy(member, node))
            .clone();
        seat(&proxy)
    }

    pub(crate) fn take_proxy(&self, session: SessionId) -> Option<SessionRef> {
        lock(&self.proxies).remove(&session)
    }

    /// Takes `proxy` out of the proxies if it is still the one of its
    /// session (a resume may have put another in its place).
    pub(crate) fn drop_proxy(&self, proxy: &SessionRef) {
        let mut proxies = lock(&self.proxies);
        if proxies
            .get(&proxy.session_id())
            .is_some_and(|now| Arc::ptr_eq(now, proxy))
        {
            proxies.remove(&proxy.session_id());
        }
    }

    pub(crate) fn find_proxy(&self, session: SessionId) -> Option<SessionRef> {
        lock(&self.proxies).get(&session).cloned()
    }

    /// The proxies of `user_id`'s sessions on other nodes (members of
    /// parties homed here).
    pub(crate) fn proxies_of(&self, user_id: &str) -> Vec<SessionRef> {
        lock(&self.proxies)
            .values()
            .filter(|proxy| proxy.presence.user_id == user_id)
            .cloned()
            .collect()
    }

    /// Proxies now (for tests and metrics).
    pub(crate) fn proxy_count(&self) -> usize {
        lock(&self.proxies).len()
    }

    /// Drops the proxies that hold nothing here any more (their member
    /// left, was kicked, or the party closed).
    pub(crate) fn drop_idle_proxies(&self) {
        lock(&self.proxies).retain(|_, proxy| !proxy.party_ids().is_empty());
        self.outlet.tidy();
    }

    /// Whether `member` lives on `node` (a lost node's members).
    pub(crate) fn lives_on(member: &SessionLink, node: NodeId) -> bool {
        member.remote.as_ref().is_some_and(|at| at.node == node)
    }

    /// Notes what a relayed reply or event says of a session's remote
    /// seat, for a lost home.
    pub(crate) fn note_seat(
        session: &SessionRef,
        party_id: PartyId,
        seq: u64,
        seated: Option<bool>,
    ) {
        let mut state = lock(&session.abroad);
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
        if self.alone {
            return;
        }
        if let Some(goodbye) = self.beat(true) {
            self.peers.farewell(goodbye).await;
        }
        self.peers.stop();
        lock(&self.proxies).clear();
    }
}
