//! Resume on any node, end to end (issue 24): real `partyline serve`
//! processes in a cluster on a real nats-server, sharing one
//! `--reset-key-file`, and a real SDK client whose flow goes through the
//! tests' UDP relay, which moves it to another node as a load balancer
//! would (`Relay::move_to`). The moved flow's next packet gets a
//! stateless reset from the new node, and the SDK resumes there with its
//! token:
//! - after its node was SIGKILLed: the new node takes the seats the live
//!   nodes' parties held for it (`Resumed`, `PartySynced` for a party on a
//!   live node, `PartyLost` for the dead node's own party), its party-mate
//!   sees it reconnect;
//! - after the grace window: the resume is refused, the seats are gone;
//! - while its node lives: that node hands the session over.
mod support;

use partyline::protocol::PartyId;
use partyline_client::{Client, ClientConfig, Event, Events, PartySettings};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::nats::Nats;
use support::relay::Relay;
use support::{code, next, WAIT};

#[path = "support/child.rs"]
mod child;

/// A node: a `partyline serve` process, killed when dropped.
struct Node {
    child: Child,
    addr: SocketAddr,
}

impl Node {
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Nodes of one cluster: their certificate directory and reset key.
struct Cluster {
    dir: PathBuf,
    nats: Nats,
    grace_secs: u32,
    node_timeout_secs: u32,
}

impl Cluster {
    fn new(test: &str, grace_secs: u32, node_timeout_secs: u32) -> Cluster {
        let dir = std::env::temp_dir().join(format!("partyline-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut key = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(dir.join("reset-key"))
            .unwrap();
        key.write_all(&[7u8; 32]).unwrap();
        Cluster {
            dir,
            nats: Nats::start(),
            grace_secs,
            node_timeout_secs,
        }
    }

    /// A node named `name` (started one after another: the first makes
    /// the certificate the others load).
    fn node(&self, name: &str) -> Node {
        let key = self.dir.join("reset-key");
        let grace = self.grace_secs.to_string();
        let node_timeout = self.node_timeout_secs.to_string();
        let (child, addr) = child::serve(
            &self.dir,
            &[
                "--cluster",
                &self.nats.url(),
                "--node",
                name,
                "--node-timeout",
                &node_timeout,
                "--grace",
                &grace,
                "--reset-key-file",
                key.to_str().unwrap(),
            ],
        );
        Node { child, addr }
    }

    fn config(&self, addr: SocketAddr, user: &str) -> ClientConfig {
        let certs = partyline_client::load_certificates(self.dir.join("cert.pem")).unwrap();
        ClientConfig::dev(addr, certs, user, user)
    }

    async fn client(&self, addr: SocketAddr, user: &str) -> (Client, Events) {
        Client::connect(self.config(addr, user)).await.unwrap()
    }

    /// A client whose flow goes through `relay`: it notices a moved flow
    /// only by a stateless reset (its idle timeout is far beyond the test).
    async fn relayed(&self, relay: &Relay, user: &str) -> (Arc<Client>, Events) {
        let mut config = self.config(relay.addr, user);
        config.idle_timeout = Duration::from_secs(60);
        config.keep_alive = Duration::from_secs(30);
        let (client, events) = Client::connect(config).await.unwrap();
        (Arc::new(client), events)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Joins `party` once the client's node hears the party's node (the nodes
/// are separate processes: they find each other over NATS first).
async fn join_when_heard(client: &Client, party: PartyId) {
    let deadline = Instant::now() + WAIT;
    while let Err(error) = client.join_party(party).await {
        assert!(Instant::now() < deadline, "never joined: {error}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn open_party(client: &Client) -> PartyId {
    let settings = PartySettings {
        open: true,
        max_size: 4,
        ..PartySettings::default()
    };
    client.create_party(settings).await.unwrap().party_id
}

/// Party data at 20 Hz, as a game in play sends it: what makes the moved
/// flow's packets reach the new node (and its reset reach the client).
fn in_play(client: &Arc<Client>, party: PartyId) -> tokio::task::JoinHandle<()> {
    let client = client.clone();
    tokio::spawn(async move {
        loop {
            let _ = client.send_data(party, 1, b"tick");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

fn drain(events: &mut Events) {
    while events.try_next().is_some() {}
}

/// What the SDK tells after a reconnect, until `Resumed` and one event
/// per party of `parties`: the parties synced and those lost.
async fn resumed(events: &mut Events, parties: usize) -> (Vec<PartyId>, Vec<PartyId>) {
    let within = Duration::from_secs(30);
    let deadline = tokio::time::Instant::now() + within;
    let (mut synced, mut lost, mut resumed) = (Vec::new(), Vec::new(), false);
    while !resumed || synced.len() + lost.len() < parties {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("the SDK resumes in time")
            .expect("events open");
        match event {
            Event::Reconnecting { .. } | Event::Data(_) => {}
            Event::Resumed => resumed = true,
            Event::PartySynced { party } => synced.push(party.party_id),
            Event::PartyLost { party_id } => lost.push(party_id),
            other => panic!("expected a resume, got {other:?}"),
        }
    }
    (synced, lost)
}

/// Waits for what `user`'s connection does in the party's events.
async fn connection_of(events: &mut Events, user: &str) -> bool {
    loop {
        if let Event::MemberConnectionChanged {
            member, connected, ..
        } = next(events).await
        {
            if member.user_id == user {
                return connected;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_s_client_resumes_on_another_node_and_keeps_the_parties_on_live_nodes() {
    // A node timeout of 5 s: the moved client's first resume (0.5 s after
    // the kill) waits out the 2 s request timeout before the dead node is
    // judged lost, so the SDK is answered Unavailable and must try again.
    let cluster = Cluster::new("dead-resume", 15, 5);
    let mut dying = cluster.node("dying");
    let live_b = cluster.node("live-b");
    let live_c = cluster.node("live-c");
    let relay = Relay::start(dying.addr).await;
    let (dee, mut dee_events) = cluster.relayed(&relay, "dee").await;
    let (bob, mut bob_events) = cluster.client(live_b.addr, "bob").await;
    let (cy, _cy_events) = cluster.client(live_c.addr, "cy").await;
    // dee (on the dying node) in its own party there and in bob's on b;
    // cy's joins make sure c hears both nodes.
    let on_dying = open_party(&dee).await;
    let on_b = open_party(&bob).await;
    join_when_heard(&dee, on_b).await;
    join_when_heard(&cy, on_dying).await;
    join_when_heard(&cy, on_b).await;
    let sender = in_play(&dee, on_b);
    tokio::time::sleep(Duration::from_millis(300)).await;
    drain(&mut dee_events);
    drain(&mut bob_events);

    let died = Instant::now();
    dying.kill();
    // The balancer moves the flow long before c judges the dying node
    // lost: the first resume finds it silent (Unavailable), a later one
    // takes over.
    tokio::time::sleep(Duration::from_millis(500)).await;
    relay.move_to(live_c.addr).await;
    let (synced, lost) = resumed(&mut dee_events, 2).await;
    eprintln!(
        "node death to Resumed on another node: {} ms",
        died.elapsed().as_millis()
    );
    assert_eq!(synced, [on_b], "bob's party is kept");
    assert_eq!(lost, [on_dying], "the dead node's party is lost");
    // Bob saw dee held as disconnected, then back.
    assert!(!connection_of(&mut bob_events, "dee").await);
    assert!(connection_of(&mut bob_events, "dee").await);
    let party = bob.get_party(on_b).await.unwrap();
    assert_eq!(party.members.len(), 3);
    assert!(party.members.iter().all(|m| m.connected));
    // dee's seat works from c: its data reaches bob again.
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(
            Instant::now() < deadline,
            "no data from dee after the resume"
        );
        if let Event::Data(data) = next(&mut bob_events).await {
            if data.sender.user_id == "dee" {
                break;
            }
        }
    }
    assert_eq!(dee.get_party(on_b).await.unwrap().members.len(), 3);
    sender.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_on_another_node_after_the_grace_window_is_refused() {
    let cluster = Cluster::new("dead-resume-late", 3, 3);
    let mut dying = cluster.node("dying");
    let live_b = cluster.node("live-b");
    let (dee, _dee_events) = cluster.client(dying.addr, "dee").await;
    let (bob, mut bob_events) = cluster.client(live_b.addr, "bob").await;
    let on_b = open_party(&bob).await;
    join_when_heard(&dee, on_b).await;
    drain(&mut bob_events);
    let ticket = dee.resume_ticket();

    dying.kill();
    // Held for the grace window (3 s), then gone.
    assert!(!connection_of(&mut bob_events, "dee").await);
    loop {
        if let Event::MemberLeft { member, .. } = next(&mut bob_events).await {
            assert_eq!(member.user_id, "dee");
            break;
        }
    }
    let mut config = cluster.config(live_b.addr, "dee");
    config.resume = Some(ticket);
    config.auto_reconnect = false;
    let refused = Client::connect(config).await.map(drop);
    assert_eq!(code(refused), partyline_client::ErrorCode::ResumeRefused);
    assert_eq!(bob.get_party(on_b).await.unwrap().members.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_moved_to_another_node_while_its_node_lives_resumes_there() {
    let cluster = Cluster::new("live-resume", 15, 3);
    let first = cluster.node("first");
    let second = cluster.node("second");
    let relay = Relay::start(first.addr).await;
    let (dee, mut dee_events) = cluster.relayed(&relay, "dee").await;
    let (bob, mut bob_events) = cluster.client(second.addr, "bob").await;
    let on_first = open_party(&dee).await;
    let on_second = open_party(&bob).await;
    join_when_heard(&dee, on_second).await;
    join_when_heard(&bob, on_first).await;
    let sender = in_play(&dee, on_second);
    tokio::time::sleep(Duration::from_millis(300)).await;
    drain(&mut dee_events);
    drain(&mut bob_events);

    relay.move_to(second.addr).await;
    let (mut synced, lost) = resumed(&mut dee_events, 2).await;
    synced.sort();
    let mut both = vec![on_first, on_second];
    both.sort();
    assert_eq!(synced, both, "every seat kept");
    assert!(lost.is_empty());
    // Nobody saw dee leave; both parties still seat it, connected.
    for party in [on_first, on_second] {
        let now = bob.get_party(party).await.unwrap();
        assert_eq!(now.members.len(), 2);
        assert!(now.members.iter().all(|m| m.connected));
    }
    while let Some(event) = bob_events.try_next() {
        assert!(
            !matches!(event, Event::MemberLeft { .. }),
            "dee never left: {event:?}"
        );
    }
    assert_eq!(dee.get_party(on_first).await.unwrap().members.len(), 2);
    sender.abort();
}
