//! Several nodes in one process on the in-memory hub, on tokio's paused
//! clock: deterministic, and seconds of cluster time in milliseconds.
//!
//! Real QUIC clients cannot run on a paused clock (auto-advance would fire
//! quinn's timers while packets are in flight), so, as quinn-proto's `Pair`
//! drives two endpoints with no sockets, these tests drive sessions without
//! connections: each `Player` is a session registered on its node with an
//! outbox and no connection, its commands go through `commands::handle` and
//! `commands::complete` exactly as a connection's control loop sends them,
//! and what it hears is read from its outbox, in order, as the frames a
//! client would decode (`ServerFrame`).
//! Each node runs what a server runs for other nodes (`nodes::run`) and its
//! session timers (the deadlines); nothing else (no endpoint, no HTTP, no
//! matchmaker rounds). `tests/hub.rs` keeps real servers and real clients on
//! the hub, and `tests/cluster.rs` the NATS adapter end to end.
//!
//! Under the paused clock the runtime advances time only when every task
//! is idle, so a `settle()` of one millisecond runs every message between
//! the nodes to its end, and `sleep_until` lands on exact deadlines.

use super::config::ServerConfig;
use super::peers::hub::MemoryHub;
use super::peers::PeerMetrics;
use super::replay::ReplayLog;
use super::route::NodeTimings;
use super::session::{outbox, OutboxReceiver, SessionLink, SessionRef};
use super::state::Shared;
use super::{commands, grace, nodes};
use crate::protocol::{
    Command, ErrorBody, ErrorCode, Event, JoinOutcome, LeaveReason, PartyId, PartySnapshot,
    Presence, RejectReason, Reply, ServerFrame, SessionId,
};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, Instant};

/// The defaults of a real cluster: on the paused clock they cost nothing.
const TIMINGS: NodeTimings = NodeTimings {
    heartbeat: Duration::from_secs(1),
    node_timeout: Duration::from_secs(3),
    request_timeout: Duration::from_secs(2),
};

const MS: Duration = Duration::from_millis(1);

/// Lets every message between the nodes run to its end (see the module's
/// doc): the clock moves by one millisecond.
async fn settle() {
    sleep(MS).await;
}

/// Waits, on the paused clock, until `check` holds (at most a minute of
/// cluster time).
async fn until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

/// One node: a server's state joined to the hub, with its node task and
/// its session timers running.
struct Node {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    fn start(hub: &MemoryHub, name: &str, configure: &dyn Fn(&mut ServerConfig)) -> Node {
        let (tls, _, _) = crate::certs::generate_dev_identity().expect("a dev identity");
        let mut config = ServerConfig::new(([127, 0, 0, 1], 0).into(), tls);
        configure(&mut config);
        let limits = config.limits();
        let shared = Arc::new(Shared::new(config, limits, None));
        let peers = hub.join(name).expect("a free node name");
        shared
            .join(Arc::new(peers), TIMINGS)
            .expect("joins the hub once");
        let timers = {
            let shared = shared.clone();
            tokio::spawn(async move {
                let fire = |deadline| grace::deadline_reached(&shared, deadline);
                shared.deadlines.run(fire).await
            })
        };
        let node_task = tokio::spawn(nodes::run(shared.clone()));
        Node {
            shared,
            tasks: vec![node_task, timers],
        }
    }

    fn player(&self, user: &str) -> Player {
        Player::connect(self, user)
    }

    /// What crossed between this node and the others.
    fn metrics(&self) -> &PeerMetrics {
        self.shared.route().peers().metrics()
    }

    /// The other nodes this one hears, by name.
    fn peers(&self) -> Vec<String> {
        self.shared.route().peer_names()
    }

    fn nodes_lost(&self) -> u64 {
        self.metrics().nodes_lost.load(Ordering::Relaxed)
    }

    /// Members on other nodes that parties homed here hold.
    fn proxies(&self) -> usize {
        self.shared.route().proxy_count()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Nodes of one hub that all hear each other.
struct Cluster {
    hub: MemoryHub,
    nodes: Vec<(&'static str, Node)>,
    /// When the nodes started: they heart-beat on whole seconds from it.
    started: Instant,
}

impl Cluster {
    async fn start(names: &[&'static str]) -> Cluster {
        Self::start_with(names, |_| {}).await
    }

    async fn start_with(names: &[&'static str], configure: impl Fn(&mut ServerConfig)) -> Cluster {
        Self::start_each(names, Duration::ZERO, &configure).await
    }

    /// Nodes started `stagger` apart: they heart-beat at other phases.
    async fn start_staggered(names: &[&'static str], stagger: Duration) -> Cluster {
        Self::start_each(names, stagger, &|_| {}).await
    }

    async fn start_each(
        names: &[&'static str],
        stagger: Duration,
        configure: &dyn Fn(&mut ServerConfig),
    ) -> Cluster {
        let hub = MemoryHub::new();
        let started = Instant::now();
        let mut nodes = Vec::new();
        for name in names {
            if !nodes.is_empty() && !stagger.is_zero() {
                sleep(stagger).await;
            }
            nodes.push((*name, Node::start(&hub, name, configure)));
        }
        let cluster = Cluster {
            hub,
            nodes,
            started,
        };
        until("every node hears every other", || {
            (cluster.nodes.iter()).all(|(_, node)| node.peers().len() == names.len() - 1)
        })
        .await;
        cluster
    }

    fn node(&self, name: &str) -> &Node {
        let found = self.nodes.iter().find(|(n, _)| *n == name);
        &found.expect("a node of the cluster").1
    }

    /// Waits until `offset` past the next heartbeat of the nodes (which
    /// beat together, on whole seconds from their start), so a fault
    /// starts at a known phase; the instant waited for.
    async fn after_next_heartbeat(&self, offset: Duration) -> Instant {
        let beat = TIMINGS.heartbeat.as_millis();
        let since = Instant::now().duration_since(self.started).as_millis();
        let next = self.started + Duration::from_millis(((since / beat + 1) * beat) as u64);
        sleep_until(next + offset).await;
        next + offset
    }
}

/// A client's session on one node, driven without a connection.
struct Player {
    shared: Arc<Shared>,
    session: SessionRef,
    generation: u64,
    outbox: OutboxReceiver,
    next_id: u32,
    /// What arrived and was not taken yet, in order.
    heard: VecDeque<ServerFrame>,
}

impl Player {
    /// A new session, as a connection's Hello opens one.
    fn connect(node: &Node, user: &str) -> Player {
        let shared = node.shared.clone();
        let presence = Presence {
            user_id: user.to_string(),
            username: user.to_string(),
            session_id: SessionId::random(),
        };
        let log = ReplayLog::new(shared.config.replay_events, shared.config.replay_bytes);
        let session = Arc::new(SessionLink::new(presence, log, shared.metrics.clone()));
        shared.register_session(session.clone());
        if let Some(online) = shared.users.session_started(&session) {
            shared.route().broadcast_status(user, online);
        }
        let (sender, receiver) = outbox(shared.config.outbox_capacity);
        let generation = session.attach_outbox(sender).expect("a new session");
        Player {
            shared,
            session,
            generation,
            outbox: receiver,
            next_id: 0,
            heard: VecDeque::new(),
        }
    }

    fn id(&self) -> SessionId {
        self.session.session_id()
    }

    /// Sends `command` as the control loop does (its answer, forwarded or
    /// gathered, awaited on its own task): the request id, and the task.
    fn send(&mut self, command: Command) -> (u32, JoinHandle<()>) {
        self.next_id += 1;
        let id = self.next_id;
        let (shared, session) = (self.shared.clone(), self.session.clone());
        let task = tokio::spawn(async move {
            if let Some(deferred) = commands::handle(&shared, &session, id, command) {
                commands::complete(&shared, &session, id, deferred).await;
            }
        });
        (id, task)
    }

    /// Sends `command` and waits for its answer; what else arrived stays
    /// heard, in order.
    async fn request(&mut self, command: Command) -> Result<Reply, ErrorBody> {
        let (id, task) = self.send(command);
        task.await.expect("the command's task ends");
        self.reply_to(id)
            .unwrap_or_else(|| panic!("request {id} was not answered: {:?}", self.heard))
    }

    /// The answer to request `id`, if it arrived (taken).
    fn reply_to(&mut self, id: u32) -> Option<Result<Reply, ErrorBody>> {
        self.receive();
        let at = self.heard.iter().position(
            |message| matches!(message, ServerFrame::Response { id: answered, .. } if *answered == id),
        )?;
        match self.heard.remove(at) {
            Some(ServerFrame::Response { result, .. }) => Some(result),
            _ => None,
        }
    }

    fn receive(&mut self) {
        while let Some(message) = self.outbox.try_recv() {
            self.heard.push_back(message.decoded());
        }
    }

    /// Everything heard so far, in order (taken).
    fn take(&mut self) -> Vec<ServerFrame> {
        self.receive();
        self.heard.drain(..).collect()
    }

    /// The events heard so far (taken); a reply among them fails the test.
    fn events(&mut self) -> Vec<Event> {
        let take = self.take();
        take.into_iter()
            .map(|message| match message {
                ServerFrame::Event { event, .. } => event,
                other => panic!("expected only events, heard {other:?}"),
            })
            .collect()
    }

    async fn create_party(&mut self, open: bool) -> PartyId {
        let command = Command::CreateParty {
            open,
            max_size: 8,
            label: String::new(),
            invite_policy: Default::default(),
            state: Default::default(),
        };
        snapshot(self.request(command).await).party_id
    }

    async fn join(&mut self, party_id: PartyId) -> JoinOutcome {
        match self.request(Command::JoinParty { party_id }).await {
            Ok(Reply::Join(outcome)) => outcome,
            other => panic!("expected a join outcome, got {other:?}"),
        }
    }

    async fn get(&mut self, party_id: PartyId) -> Result<Reply, ErrorBody> {
        self.request(Command::GetParty { party_id }).await
    }

    /// The connection is lost, as a connection's end with no goodbye.
    fn lose_connection(&mut self) {
        assert!(self.session.detach(self.generation), "it was connected");
        grace::connection_lost(&self.shared, &self.session, self.generation);
    }

    /// A resume on a new connection (its replay is not the point here).
    fn come_back(&mut self) {
        let (sender, receiver) = outbox(self.shared.config.outbox_capacity);
        self.generation = self.session.attach_outbox(sender).expect("alive");
        self.outbox = receiver;
        self.heard.clear();
        grace::set_connected(&self.shared, &self.session, true, false);
    }
}

fn snapshot(reply: Result<Reply, ErrorBody>) -> PartySnapshot {
    match reply {
        Ok(Reply::Party(snapshot)) => snapshot,
        Ok(Reply::Join(JoinOutcome::Joined(snapshot))) => snapshot,
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

fn error_code<T: std::fmt::Debug>(result: Result<T, ErrorBody>) -> ErrorCode {
    match result {
        Err(error) => error.code,
        Ok(value) => panic!("expected an error, got {value:?}"),
    }
}

fn relabel(party_id: PartyId, label: &str) -> Command {
    Command::Update {
        party_id,
        open: None,
        label: Some(label.to_string()),
        max_size: None,
        invite_policy: None,
    }
}

fn promote(party_id: PartyId, user_id: &str) -> Command {
    Command::Promote {
        party_id,
        user_id: user_id.to_string(),
    }
}

/// The members a party's home seats, by user.
async fn seated(asker: &mut Player, party_id: PartyId) -> Vec<String> {
    let snapshot = snapshot(asker.get(party_id).await);
    snapshot.members.into_iter().map(|m| m.user_id).collect()
}

/// Control messages a node sent and received, to count what crossed.
fn control(node: &Node) -> (u64, u64) {
    let metrics = node.metrics();
    (
        metrics.control_out.load(Ordering::Relaxed),
        metrics.control_in.load(Ordering::Relaxed),
    )
}

fn delta(before: (u64, u64), node: &Node) -> (u64, u64) {
    let now = control(node);
    (now.0 - before.0, now.1 - before.1)
}

// ---- Forwards -------------------------------------------------------------

/// A party on a with members on a (ana), b (bob, its leader) and c (cy,
/// dee): everyone's joins and the promotion heard and taken.
async fn party_across_three_nodes(cluster: &Cluster) -> (PartyId, [Player; 4]) {
    let mut ana = cluster.node("a").player("ana");
    let mut bob = cluster.node("b").player("bob");
    let mut cy = cluster.node("c").player("cy");
    let mut dee = cluster.node("c").player("dee");
    let party = ana.create_party(true).await;
    for player in [&mut cy, &mut dee, &mut bob] {
        assert!(matches!(player.join(party).await, JoinOutcome::Joined(_)));
        // The reply came from a, yet the joiner's own node knows the seat.
        assert!(player.session.holds(party));
    }
    assert_eq!(ana.request(promote(party, "bob")).await, Ok(Reply::Done));
    settle().await;
    for player in [&mut ana, &mut bob, &mut cy, &mut dee] {
        player.take();
    }
    (party, [ana, bob, cy, dee])
}

#[tokio::test(start_paused = true)]
async fn a_forwarded_command_is_answered_before_its_events_and_each_node_hears_a_change_once() {
    let cluster = Cluster::start(&["a", "b", "c"]).await;
    let (a, b, c) = (cluster.node("a"), cluster.node("b"), cluster.node("c"));
    let (party, [mut ana, mut bob, mut cy, mut dee]) = party_across_three_nodes(&cluster).await;

    // Bob, on b, leads the party homed on a: his update runs on a, and
    // he hears its reply before the event it caused him.
    let (a0, b0, c0) = (control(a), control(b), control(c));
    let forwarded = b.metrics().forwarded.load(Ordering::Relaxed);
    let (id, task) = bob.send(relabel(party, "forwarded"));
    task.await.unwrap();
    settle().await;
    let heard = bob.take();
    assert!(
        matches!(
            &heard[..],
            [
                ServerFrame::Response { id: answered, result: Ok(Reply::Party(snapshot)) },
                ServerFrame::Event { event: Event::Updated { label, seq, .. }, .. },
            ] if *answered == id && label == "forwarded" && *seq == snapshot.seq
        ),
        "the reply first, then the event: {heard:?}"
    );
    for player in [&mut ana, &mut cy, &mut dee] {
        let events = player.events();
        assert!(
            matches!(&events[..], [Event::Updated { label, .. }] if label == "forwarded"),
            "{events:?}"
        );
    }
    // One forward from b; a answered it and sent b and c one batch each:
    // c's two members share one message.
    assert_eq!(b.metrics().forwarded.load(Ordering::Relaxed), forwarded + 1);
    assert_eq!(delta(a0, a), (3, 1), "a: reply and batch to b, batch to c");
    assert_eq!(
        delta(b0, b),
        (1, 2),
        "b: the command out, reply and batch in"
    );
    assert_eq!(delta(c0, c), (0, 1), "c: one batch for cy and dee");

    // Bob leaves: his reply, and nothing after it for him; the others
    // hear him go and the lead pass, c once for both of its members.
    let (a0, c0) = (control(a), control(c));
    assert_eq!(
        bob.request(Command::Leave { party_id: party }).await,
        Ok(Reply::Done)
    );
    settle().await;
    assert!(bob.take().is_empty(), "nothing for bob after his reply");
    assert!(!bob.session.holds(party), "b knows bob left");
    for player in [&mut ana, &mut cy, &mut dee] {
        let events = player.events();
        let left = |e: &Event| matches!(e, Event::MemberLeft { presence, reason: LeaveReason::Left, .. } if presence.user_id == "bob");
        let led =
            |e: &Event| matches!(e, Event::LeaderChanged { leader, .. } if leader.user_id == "ana");
        assert!(
            events.iter().filter(|e| left(e)).count() == 1
                && events.iter().filter(|e| led(e)).count() == 1,
            "bob left and ana leads, each heard once: {events:?}"
        );
    }
    assert_eq!(
        delta(a0, a).0,
        3,
        "a: membership and reply to b, batch to c"
    );
    assert_eq!(delta(c0, c), (0, 1), "c: both events in one batch");
    // Proxies are tidied every heartbeat.
    sleep(TIMINGS.heartbeat).await;
    assert_eq!(a.proxies(), 2, "cy's and dee's proxies; bob's was dropped");
}

// ---- Node loss ------------------------------------------------------------

/// What ties a and b each way: a's open party `on_a` seats bob (of b),
/// a's closed party `closed_on_a` has bea's (of b) request waiting, and
/// b's party `on_b` seats ana (of a). `bob_seen` and `bea_seen` are the
/// last party `seq` each heard of a's party.
struct Ties {
    on_a: PartyId,
    closed_on_a: PartyId,
    on_b: PartyId,
    ana: Player,
    bob: Player,
    bea: Player,
    bob_seen: u64,
    bea_seen: u64,
}

async fn ties(cluster: &Cluster) -> Ties {
    let mut ana = cluster.node("a").player("ana");
    let mut bob = cluster.node("b").player("bob");
    let mut bea = cluster.node("b").player("bea");
    let on_a = ana.create_party(true).await;
    assert!(matches!(bob.join(on_a).await, JoinOutcome::Joined(_)));
    assert!(ana.request(relabel(on_a, "tied")).await.is_ok());
    settle().await;
    let bob_seen = match &bob.events()[..] {
        [Event::Updated { seq, .. }] => *seq,
        other => panic!("bob hears the update: {other:?}"),
    };
    let closed_on_a = ana.create_party(false).await;
    let bea_seen = match bea.join(closed_on_a).await {
        JoinOutcome::Queued { seq, .. } => seq,
        other => panic!("a closed party queues bea: {other:?}"),
    };
    let on_b = bob.create_party(true).await;
    assert!(matches!(ana.join(on_b).await, JoinOutcome::Joined(_)));
    settle().await;
    for player in [&mut ana, &mut bob, &mut bea] {
        player.take();
    }
    Ties {
        on_a,
        closed_on_a,
        on_b,
        ana,
        bob,
        bea,
        bob_seen,
        bea_seen,
    }
}

/// Stalls a just after a heartbeat: b's command in flight to a fails at
/// the request timeout, one sent later when a is judged lost; and then
/// everything that tied b to a ends, each session told once.
#[tokio::test(start_paused = true)]
async fn a_stalled_node_is_lost_its_parties_end_its_members_leave_and_it_joins_again_when_healed() {
    let cluster = Cluster::start(&["a", "b"]).await;
    let (a, b) = (cluster.node("a"), cluster.node("b"));
    let mut t = ties(&cluster).await;
    let stalled = cluster.after_next_heartbeat(10 * MS).await;
    cluster.hub.stall("a");
    let lost_at = stalled - 10 * MS + TIMINGS.node_timeout;

    let (first, _) = t.bob.send(Command::GetParty { party_id: t.on_a });
    sleep_until(stalled + TIMINGS.request_timeout - MS).await;
    assert!(
        t.bob.take().is_empty(),
        "no answer before the request timeout"
    );
    sleep_until(stalled + TIMINGS.request_timeout).await;
    settle().await;
    let answer = t
        .bob
        .reply_to(first)
        .expect("answered at the request timeout");
    assert_eq!(error_code(answer), ErrorCode::Unavailable);
    assert!(t.bob.take().is_empty(), "a is not lost yet");
    // Sent later, it waits until a is judged lost, not its own timeout.
    sleep_until(lost_at - 500 * MS).await;
    let (second, _) = t.bob.send(Command::GetParty { party_id: t.on_a });
    sleep_until(lost_at - MS).await;
    assert_eq!((a.nodes_lost(), b.nodes_lost()), (0, 0));
    assert!(t.bob.take().is_empty() && t.bea.take().is_empty());

    sleep_until(lost_at).await;
    settle().await;
    assert_eq!(b.nodes_lost(), 1);
    assert!(b.peers().is_empty());
    let answer = t.bob.reply_to(second).expect("failed with the node");
    assert_eq!(error_code(answer), ErrorCode::Unavailable);
    let mut heard = t.bob.events();
    heard.sort_by_key(|event| event.party_id() != Some(t.on_a));
    assert!(
        matches!(
            &heard[..],
            [
                Event::Closed { party_id, seq },
                Event::MemberLeft { party_id: left, presence, reason: LeaveReason::SessionEnded, .. },
            ] if *party_id == t.on_a && *seq == t.bob_seen + 1
                && *left == t.on_b && presence.user_id == "ana"
        ),
        "bob: a's party closed after the last seq he saw, ana left his: {heard:?}"
    );
    let heard = t.bea.events();
    assert!(
        matches!(
            &heard[..],
            [Event::JoinRejected { party_id, seq, reason: RejectReason::PartyClosed }]
                if *party_id == t.closed_on_a && *seq == t.bea_seen + 1
        ),
        "bea's request ended: {heard:?}"
    );
    assert!(!t.bob.session.holds(t.on_a) && !t.bea.session.holds(t.closed_on_a));
    assert_eq!(b.proxies(), 0, "ana's seat on b is gone");
    // A command for the lost node's party now fails at once, typed.
    assert_eq!(
        error_code(t.bob.get(t.on_a).await),
        ErrorCode::PartyNotFound
    );

    // a froze without noticing, but heard nothing from b either: it
    // judged b lost at the same time, from its side.
    assert_eq!(a.nodes_lost(), 1);
    let heard = t.ana.events();
    let left = |e: &Event| matches!(e, Event::MemberLeft { party_id, presence, reason: LeaveReason::SessionEnded, .. } if *party_id == t.on_a && presence.user_id == "bob");
    let closed = |e: &Event| matches!(e, Event::Closed { party_id, .. } if *party_id == t.on_b);
    assert!(
        heard.iter().any(left) && heard.iter().any(closed),
        "{heard:?}"
    );
    assert_eq!(a.proxies(), 0);

    healed_after_mutual_loss(&cluster, &mut t).await;
}

/// After a stall that both nodes judged a loss: the held messages arrive
/// late, the nodes hear each other again as newly joined ones, and the
/// seats stay as each side ended them (no ghost): bob may join again.
async fn healed_after_mutual_loss(cluster: &Cluster, t: &mut Ties) {
    let (a, b) = (cluster.node("a"), cluster.node("b"));
    cluster.hub.heal("a");
    until("a and b hear each other again", || {
        a.peers() == ["b"] && b.peers() == ["a"]
    })
    .await;
    settle().await;
    // Bob's two commands held at a ran there now: their late answers
    // find nothing waiting at b, and nobody is told anything.
    assert!(t.bob.take().is_empty(), "nothing late for bob");
    assert!(t.ana.take().is_empty(), "nothing late for ana");
    assert_eq!((a.nodes_lost(), b.nodes_lost()), (1, 1), "no second loss");
    assert_eq!(seated(&mut t.ana, t.on_a).await, ["ana"]);
    assert_eq!(seated(&mut t.bob, t.on_b).await, ["bob"]);
    assert!(matches!(t.bob.join(t.on_a).await, JoinOutcome::Joined(_)));
    settle().await;
    let heard = t.ana.events();
    assert!(
        matches!(&heard[..], [Event::MemberJoined { presence, .. }] if presence.user_id == "bob"),
        "{heard:?}"
    );
}

/// b stops being heard (what it sends is lost) but still hears a: a
/// judges b lost after the node timeout; b judges nobody.
#[tokio::test(start_paused = true)]
async fn a_node_cut_one_way_is_lost_to_the_others_and_still_hears_them() {
    let cluster = Cluster::start(&["a", "b"]).await;
    let (a, b) = (cluster.node("a"), cluster.node("b"));
    let mut t = ties(&cluster).await;
    let cut = cluster.after_next_heartbeat(10 * MS).await;
    cluster.hub.cut_outbound("b");
    sleep_until(cut - 10 * MS + TIMINGS.node_timeout - MS).await;
    assert_eq!(a.nodes_lost(), 0);
    sleep_until(cut - 10 * MS + TIMINGS.node_timeout).await;
    settle().await;

    // a's side: b's sessions left a's parties, b's parties ended.
    assert_eq!(a.nodes_lost(), 1);
    assert!(a.peers().is_empty());
    assert_eq!(a.proxies(), 0);
    assert_eq!(seated(&mut t.ana, t.on_a).await, ["ana"]);
    let heard = t.ana.events();
    let bob_left = |e: &Event| matches!(e, Event::MemberLeft { party_id, presence, reason: LeaveReason::SessionEnded, .. } if *party_id == t.on_a && presence.user_id == "bob");
    let closed = |e: &Event| matches!(e, Event::Closed { party_id, .. } if *party_id == t.on_b);
    assert!(
        heard.iter().any(bob_left) && heard.iter().any(closed),
        "{heard:?}"
    );
    assert!(!t.ana.session.holds(t.on_b));

    // b's side: a is alive to it, so b forwards, but no answer returns.
    assert_eq!(b.nodes_lost(), 0);
    assert_eq!(b.peers(), ["a"]);
    let asked = Instant::now();
    let answer = t.bob.get(t.on_a).await;
    assert_eq!(error_code(answer), ErrorCode::Unavailable);
    assert_eq!(Instant::now() - asked, TIMINGS.request_timeout);

    // Healed: a hears b again, as a node that joined.
    cluster.hub.heal("b");
    until("a hears b again", || a.peers() == ["b"]).await;
    assert_eq!((a.nodes_lost(), b.nodes_lost()), (1, 0));
}

/// Every cross-node seat of `t` has one truth, long after a fault: a
/// member whose seat its party's home no longer holds was told the party
/// ended for it, and a member told so holds no seat there (no ghost).
async fn assert_one_truth(t: &mut Ties) {
    let ended = |heard: &[Event], party: PartyId| {
        heard.iter().any(|e| {
            e.party_id() == Some(party) && matches!(e, Event::Closed { .. } | Event::Kicked { .. })
        })
    };
    let bob_heard = t.bob.events();
    let ana_heard = t.ana.events();
    let bob_seated = seated(&mut t.ana, t.on_a)
        .await
        .contains(&"bob".to_string());
    let ana_seated = seated(&mut t.bob, t.on_b)
        .await
        .contains(&"ana".to_string());
    let (bob_told, ana_told) = (ended(&bob_heard, t.on_a), ended(&ana_heard, t.on_b));
    assert!(
        bob_told != bob_seated && ana_told != ana_seated,
        "bob (of b) in a's party: seated {bob_seated}, told it ended {bob_told}; \
         ana (of a) in b's party: seated {ana_seated}, told it ended {ana_told}; \
         bob heard {bob_heard:?}, ana heard {ana_heard:?}"
    );
}

#[tokio::test(start_paused = true)]
#[ignore = "issue 24: a stall healed after one node judged the other lost but before the \
            other judged it leaves a ghost seat (the judge's member was told Closed while \
            the other node still seats it) and a member removed without being told (the \
            judge drops it and only its node's bookkeeping hears, by Membership)"]
async fn a_stall_healed_between_the_two_nodes_judgments_leaves_one_truth_per_seat() {
    // b starts half a heartbeat after a: each judges the other at its own
    // tick, half a second apart.
    let cluster = Cluster::start_staggered(&["a", "b"], TIMINGS.heartbeat / 2).await;
    let (a, b) = (cluster.node("a"), cluster.node("b"));
    let mut t = ties(&cluster).await;
    cluster.hub.stall("a");
    until("one node judges the other lost", || {
        a.nodes_lost() + b.nodes_lost() > 0
    })
    .await;
    assert_eq!(a.nodes_lost() + b.nodes_lost(), 1, "only one judged yet");
    cluster.hub.heal("a");
    sleep(TIMINGS.node_timeout * 3).await;
    assert_one_truth(&mut t).await;
}

#[tokio::test(start_paused = true)]
#[ignore = "issue 24: a node cut one way is judged lost by the others but never learns it: \
            its member of another node's party is dropped there without being told, and \
            the other node's member stays seated in its party (a ghost)"]
async fn a_node_cut_one_way_learns_it_was_judged_lost() {
    let cluster = Cluster::start(&["a", "b"]).await;
    let mut t = ties(&cluster).await;
    cluster.hub.cut_outbound("b");
    sleep(TIMINGS.node_timeout * 3).await;
    assert_one_truth(&mut t).await;
}

// ---- Follows crossing status changes ---------------------------------------

fn set_status(status: &str) -> Command {
    Command::SetStatus {
        status: status.to_string(),
        visible: true,
    }
}

/// What a follower knows of `user`'s sessions after hearing `heard` in
/// order, as a client applies it: the `Followed` reply to request
/// `follow` says who is online as what, status events change that.
fn statuses_known(heard: Vec<ServerFrame>, follow: u32, user: &str) -> Vec<(SessionId, String)> {
    let mut known: Vec<(SessionId, String)> = Vec::new();
    let mut set = |presence: &Presence, status: Option<&String>| {
        known.retain(|(session, _)| *session != presence.session_id);
        if let Some(status) = status {
            known.push((presence.session_id, status.clone()));
        }
    };
    for message in heard {
        match message {
            ServerFrame::Response {
                id,
                result: Ok(Reply::Followed { online }),
            } if id == follow => {
                for status in online.iter().filter(|s| s.presence.user_id == user) {
                    set(&status.presence, Some(&status.status));
                }
            }
            ServerFrame::Event { event, .. } => match &event {
                Event::StatusOnline(status) | Event::StatusChanged(status) => {
                    set(&status.presence, Some(&status.status))
                }
                Event::StatusOffline { presence } => set(presence, None),
                _ => {}
            },
            other => panic!("unexpected {other:?}"),
        }
    }
    known
}

/// Ana (on a) shows "lobby"; fay (on b) is about to follow her.
async fn ana_in_the_lobby(cluster: &Cluster) -> (Player, Player) {
    let mut ana = cluster.node("a").player("ana");
    let fay = cluster.node("b").player("fay");
    assert_eq!(ana.request(set_status("lobby")).await, Ok(Reply::Done));
    settle().await;
    (ana, fay)
}

fn follow_ana() -> Command {
    Command::Follow {
        user_ids: vec!["ana".to_string()],
    }
}

#[tokio::test(start_paused = true)]
async fn a_status_changed_before_its_node_answers_a_follow_is_what_the_follower_knows() {
    let cluster = Cluster::start(&["a", "b"]).await;
    let (mut ana, mut fay) = ana_in_the_lobby(&cluster).await;
    // The follow's question waits at a (stalled) while ana changes: a
    // answers after the change, which b hears first.
    cluster.hub.stall("a");
    let (follow, task) = fay.send(follow_ana());
    settle().await;
    assert_eq!(ana.request(set_status("in match")).await, Ok(Reply::Done));
    cluster.hub.heal("a");
    task.await.unwrap();
    settle().await;
    let heard = fay.take();
    // The change reached b first: fay hears it, then the reply, which is
    // the state after it (PROTOCOL.md, section 13).
    assert!(
        matches!(
            &heard[..],
            [
                ServerFrame::Event { event: Event::StatusChanged(changed), .. },
                ServerFrame::Response { id, result: Ok(Reply::Followed { online }) },
            ] if changed.status == "in match" && *id == follow
                && online.len() == 1 && online[0].status == "in match"
        ),
        "{heard:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_status_changed_after_its_node_answered_a_follow_is_what_the_follower_knows() {
    let cluster = Cluster::start(&["a", "b"]).await;
    let (mut ana, mut fay) = ana_in_the_lobby(&cluster).await;
    // a answers "lobby", then ana changes; b gets both, in that order,
    // before the follow's own task builds its reply.
    cluster.hub.stall("b");
    let (follow, task) = fay.send(follow_ana());
    settle().await;
    // The question leaves b; a's answer will wait at b.
    cluster.hub.heal("b");
    cluster.hub.stall("b");
    settle().await;
    assert_eq!(ana.request(set_status("in match")).await, Ok(Reply::Done));
    cluster.hub.heal("b");
    task.await.unwrap();
    settle().await;
    let known = statuses_known(fay.take(), follow, "ana");
    assert_eq!(known, [(ana.id(), "in match".to_string())]);
}

#[tokio::test(start_paused = true)]
async fn a_status_changed_here_while_a_follow_waits_for_other_nodes_is_what_the_follower_knows() {
    let cluster = Cluster::start(&["a", "b"]).await;
    let (_ana, mut fay) = ana_in_the_lobby(&cluster).await;
    let mut gus = cluster.node("b").player("gus");
    assert_eq!(gus.request(set_status("lobby")).await, Ok(Reply::Done));
    // Fay follows gus (of her own node) and ana; while a's answer waits,
    // gus changes.
    cluster.hub.stall("a");
    let (follow, task) = fay.send(Command::Follow {
        user_ids: vec!["ana".to_string(), "gus".to_string()],
    });
    settle().await;
    assert_eq!(gus.request(set_status("in match")).await, Ok(Reply::Done));
    cluster.hub.heal("a");
    task.await.unwrap();
    settle().await;
    let known = statuses_known(fay.take(), follow, "gus");
    assert_eq!(known, [(gus.id(), "in match".to_string())]);
}

// ---- A leader on another node: grace and connection loss relayed ----------

const LEADER_GRACE: Duration = Duration::from_secs(5);
const GRACE: Duration = Duration::from_secs(15);

/// A party on a led by bob of b, with ana of a in it; nodes keep a lost
/// leader's lead for `LEADER_GRACE`, its seat for `GRACE`.
async fn led_from_b() -> (Cluster, PartyId, Player, Player) {
    let cluster = Cluster::start_with(&["a", "b"], |config| {
        config.leader_grace = LEADER_GRACE;
        config.grace = GRACE;
    })
    .await;
    let mut ana = cluster.node("a").player("ana");
    let mut bob = cluster.node("b").player("bob");
    let party = ana.create_party(true).await;
    assert!(matches!(bob.join(party).await, JoinOutcome::Joined(_)));
    assert_eq!(ana.request(promote(party, "bob")).await, Ok(Reply::Done));
    settle().await;
    ana.take();
    bob.take();
    (cluster, party, ana, bob)
}

fn connection_of(event: &Event, user: &str) -> Option<bool> {
    match event {
        Event::MemberConnection {
            presence,
            connected,
            ..
        } if presence.user_id == user => Some(*connected),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_leader_on_another_node_who_is_lost_keeps_the_lead_for_leader_grace_and_the_seat_for_grace(
) {
    let (cluster, party, mut ana, mut bob) = led_from_b().await;
    let lost = Instant::now();
    bob.lose_connection();
    settle().await;
    let heard = ana.events();
    assert!(
        matches!(&heard[..], [e] if connection_of(e, "bob") == Some(false)),
        "{heard:?}"
    );
    let party_now = snapshot(ana.get(party).await);
    assert_eq!(party_now.leader.user_id, "bob", "the lead is held");
    assert_eq!(party_now.disconnected, [bob.id()]);

    sleep_until(lost + LEADER_GRACE - MS).await;
    assert!(ana.events().is_empty(), "nothing within the leader grace");
    sleep_until(lost + LEADER_GRACE).await;
    settle().await;
    let heard = ana.events();
    assert!(
        matches!(heard.first(), Some(Event::LeaderChanged { leader, .. }) if leader.user_id == "ana"),
        "the lead passes at the leader grace: {heard:?}"
    );

    sleep_until(lost + GRACE - MS).await;
    assert!(ana.events().is_empty(), "the seat is held for the grace");
    sleep_until(lost + GRACE).await;
    settle().await;
    let heard = ana.events();
    assert!(
        matches!(
            &heard[..],
            [Event::MemberLeft { presence, reason: LeaveReason::SessionEnded, .. }]
                if presence.user_id == "bob"
        ),
        "{heard:?}"
    );
    assert_eq!(cluster.node("b").shared.session_count(), 0);
    assert_eq!(seated(&mut ana, party).await, ["ana"]);
}

#[tokio::test(start_paused = true)]
async fn a_leader_on_another_node_who_comes_back_within_leader_grace_keeps_the_lead() {
    let (_cluster, party, mut ana, mut bob) = led_from_b().await;
    let lost = Instant::now();
    bob.lose_connection();
    sleep(LEADER_GRACE / 2).await;
    bob.come_back();
    settle().await;
    let heard: Vec<Option<bool>> = ana
        .events()
        .iter()
        .map(|e| connection_of(e, "bob"))
        .collect();
    assert_eq!(heard, [Some(false), Some(true)]);

    // Past both windows: the lead and the seat stay bob's.
    sleep_until(lost + GRACE + TIMINGS.heartbeat).await;
    assert!(ana.events().is_empty(), "no hand-over, no leave");
    let party_now = snapshot(ana.get(party).await);
    assert_eq!(party_now.leader.user_id, "bob");
    assert!(party_now.disconnected.is_empty());
    assert!(bob.take().is_empty());
}
