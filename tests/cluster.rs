//! A partyline cluster on a real `nats-server` (docs/CLUSTER.md): three
//! nodes on loopback, each a real server with real QUIC clients. A party
//! with members on every node goes through every party rule, with data
//! both ways; party data and events cross NATS once per node; a killed
//! node's parties end and its members leave; a NATS restart leaves local
//! parties working and remote commands failing fast, then heals; the
//! server-side API lists every node's parties in pages that fit a NATS
//! message, and disconnects a session on another node.
mod support;

use partyline::protocol::LeaveReason;
use partyline::server::{home_of, node_tag, ClusterConfig, Server, ServerConfig};
use partyline_client::{
    ClientConfig, ErrorCode, Event, Events, JoinOutcome, PartyUpdate, RejectReason,
};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::nats::Nats;
use support::*;

/// Heart-beats about three times a second and judges a node lost after
/// 3 s of silence (ten beats): a CI machine busy with the other tests
/// does not starve a node that long, and a node killed on purpose is
/// still noticed well within the tests' waits.
fn cluster_config(nats: &Nats, name: &str) -> ClusterConfig {
    let mut cluster = ClusterConfig::new(nats.url(), name);
    cluster.heartbeat = Duration::from_millis(300);
    cluster.node_timeout = Duration::from_secs(3);
    cluster
}

async fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Nodes named `names` (with metrics), each hearing all the others.
async fn cluster(nats: &Nats, names: &[&str]) -> Vec<TestServer> {
    cluster_with(nats, names, |config| {
        config.metrics = Some("127.0.0.1:0".parse().unwrap())
    })
    .await
}

/// `cluster`, each node's settings changed by `tweak`.
async fn cluster_with(
    nats: &Nats,
    names: &[&str],
    tweak: impl Fn(&mut ServerConfig),
) -> Vec<TestServer> {
    let mut nodes = Vec::new();
    for name in names {
        let cluster = cluster_config(nats, name);
        nodes.push(
            start_with(|config: &mut ServerConfig| {
                config.cluster = Some(cluster);
                tweak(config);
            })
            .await,
        );
    }
    for node in &nodes {
        wait_until("every node hears every other", || {
            node.handle.cluster_peers().len() == names.len() - 1
        })
        .await;
    }
    nodes
}

/// Skips events that are not about parties' membership: the new leader's
/// request list and the like are checked where they matter.
async fn next_membership(events: &mut Events) -> Event {
    loop {
        match next_event(events).await {
            Event::JoinRequests { .. } => continue,
            event => return event,
        }
    }
}

/// An open party of 4 that `leader` creates, and its id.
async fn open_party(leader: &partyline_client::Client) -> partyline::protocol::PartyId {
    leader
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id
}

/// The next event is someone seated in a party.
async fn expect_joined(events: &mut Events) {
    assert!(matches!(
        next_event(events).await,
        Event::MemberJoined { .. }
    ));
}

/// Skips events until one that `wanted` picks (within the usual limit).
async fn until<T>(events: &mut Events, mut wanted: impl FnMut(Event) -> Option<T>) -> T {
    loop {
        if let Some(found) = wanted(next(events).await) {
            return found;
        }
    }
}

async fn metric(server: &TestServer, name: &str) -> u64 {
    scrape_metrics(server).await.count(name, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_with_members_on_three_nodes_follows_every_rule() {
    let nats = Nats::start();
    let nodes = cluster(&nats, &["node-a", "node-b", "node-c"]).await;
    let (ana, mut ana_events) = nodes[0].client("ana").await;
    let (bob, mut bob_events) = nodes[1].client("bob").await;
    let (cara, mut cara_events) = nodes[2].client("cara").await;

    // Created on node A: its id names A as its home.
    let party = ana
        .create_party(settings(false, 4, "squad"))
        .await
        .unwrap()
        .party_id;
    assert_eq!(home_of(party), node_tag("node-a"));

    // A closed party: a request from node B, accepted by the leader on A.
    assert!(matches!(
        bob.join_party(party).await.unwrap(),
        JoinOutcome::Queued { .. }
    ));
    match next_event(&mut ana_events).await {
        Event::JoinRequested { requester, .. } => assert_eq!(requester.user_id, "bob"),
        other => panic!("expected JoinRequested, got {other:?}"),
    }
    ana.accept(party, "bob").await.unwrap();
    match next_event(&mut bob_events).await {
        Event::PartyJoined { party: joined } => {
            assert_eq!(joined.party_id, party);
            assert_eq!(joined.members.len(), 2);
        }
        other => panic!("expected PartyJoined, got {other:?}"),
    }
    assert!(
        matches!(next_event(&mut ana_events).await, Event::MemberJoined { member, .. } if member.user_id == "bob")
    );

    // A request from node C, rejected, then asked again and accepted.
    assert!(matches!(
        cara.join_party(party).await.unwrap(),
        JoinOutcome::Queued { .. }
    ));
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::JoinRequested { .. }
    ));
    ana.reject(party, "cara").await.unwrap();
    assert!(matches!(
        next_event(&mut cara_events).await,
        Event::JoinRejected {
            reason: RejectReason::Rejected,
            ..
        }
    ));
    // Asking twice is refused with the same typed error as on one node.
    cara.join_party(party).await.unwrap();
    assert_eq!(
        code(cara.join_party(party).await),
        ErrorCode::AlreadyRequested
    );
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::JoinRequested { .. }
    ));
    ana.accept(party, "cara").await.unwrap();
    assert!(matches!(
        next_event(&mut cara_events).await,
        Event::PartyJoined { .. }
    ));
    for events in [&mut ana_events, &mut bob_events] {
        assert!(
            matches!(next_event(events).await, Event::MemberJoined { member, .. } if member.user_id == "cara")
        );
    }

    // Data both ways: datagrams from every node, reliable data too.
    bob.send_data(party, 7, b"from b").unwrap();
    for events in [&mut ana_events, &mut cara_events] {
        let data = next_data(events).await;
        assert_eq!((data.op_code, &data.data[..]), (7, &b"from b"[..]));
        assert_eq!(data.sender.user_id, "bob");
    }
    ana.send_data(party, 8, b"from a").unwrap();
    for events in [&mut bob_events, &mut cara_events] {
        assert_eq!(&next_data(events).await.data[..], b"from a");
    }
    cara.send_data_reliable(party, 9, b"reliable from c")
        .await
        .unwrap();
    for events in [&mut ana_events, &mut bob_events] {
        let data = next_data(events).await;
        assert!(data.reliable);
        assert_eq!(&data.data[..], b"reliable from c");
    }

    // A leader command's errors are the same as on one node.
    assert_eq!(code(bob.kick(party, "cara").await), ErrorCode::NotLeader);

    // Update, then promote the member on B: it leads from another node.
    ana.update_party(
        party,
        PartyUpdate {
            open: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for events in [&mut ana_events, &mut bob_events, &mut cara_events] {
        match next_event(events).await {
            Event::PartyUpdated { party: updated } => assert!(updated.open),
            other => panic!("expected PartyUpdated, got {other:?}"),
        }
    }
    ana.promote(party, "bob").await.unwrap();
    for events in [&mut ana_events, &mut bob_events, &mut cara_events] {
        assert!(
            matches!(next_membership(events).await, Event::LeaderChanged { leader, .. } if leader.user_id == "bob")
        );
    }
    // The new leader on node B kicks the member on node C.
    bob.kick(party, "cara").await.unwrap();
    assert!(matches!(
        next_event(&mut cara_events).await,
        Event::Kicked { .. }
    ));
    for events in [&mut ana_events, &mut bob_events] {
        assert!(matches!(
            next_membership(events).await,
            Event::MemberLeft {
                reason: LeaveReason::Kicked,
                ..
            }
        ));
    }
    // The party is open now: cara joins again at once.
    assert!(matches!(
        cara.join_party(party).await.unwrap(),
        JoinOutcome::Joined(_)
    ));
    for events in [&mut ana_events, &mut bob_events] {
        expect_joined(events).await;
    }
    // The leader on B leaves: the longest member (ana, on A) leads.
    bob.leave_party(party).await.unwrap();
    for events in [&mut ana_events, &mut cara_events] {
        assert!(
            matches!(next_membership(events).await, Event::LeaderChanged { leader, .. } if leader.user_id == "ana")
        );
        assert!(matches!(
            next_membership(events).await,
            Event::MemberLeft {
                reason: LeaveReason::Left,
                ..
            }
        ));
    }
    ana.close_party(party).await.unwrap();
    assert!(matches!(
        next_membership(&mut cara_events).await,
        Event::PartyClosed { .. }
    ));
    assert_eq!(nodes[0].handle.party_count(), 0);
    wait_until("node A holds no remote member", || {
        nodes[0].handle.remote_members() == 0
    })
    .await;

    // A party homed on B: a member on A speaks to its leader on B.
    let on_b = open_party(&bob).await;
    assert_eq!(home_of(on_b), node_tag("node-b"));
    assert!(matches!(
        ana.join_party(on_b).await.unwrap(),
        JoinOutcome::Joined(_)
    ));
    expect_joined(&mut bob_events).await;
    ana.send_data(on_b, 3, b"to b").unwrap();
    assert_eq!(&next_data(&mut bob_events).await.data[..], b"to b");
    // A party id no live node homes: refused at once, as on one node,
    // once the node has been up a heartbeat (before, a node it has not
    // heard yet may home it: then its command waits for an answer).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        code(
            bob.send_data_reliable(partyline::protocol::PartyId::random(), 1, b"x")
                .await
        ),
        ErrorCode::PartyNotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_events_cross_nats_once_per_node_not_once_per_member() {
    let nats = Nats::start();
    let nodes = cluster(&nats, &["once-a", "once-b"]).await;
    let (ana, mut ana_events) = nodes[0].client("ana").await;
    let party = ana
        .create_party(settings(true, 8, ""))
        .await
        .unwrap()
        .party_id;
    let mut on_b = Vec::new();
    for name in ["b1", "b2", "b3"] {
        let (client, events) = nodes[1].client(name).await;
        client.join_party(party).await.unwrap();
        expect_joined(&mut ana_events).await;
        on_b.push((client, events));
    }
    for i in 0..on_b.len() {
        // Each member hears those who joined after it.
        for _ in i + 1..on_b.len() {
            assert!(matches!(
                next_event(&mut on_b[i].1).await,
                Event::MemberJoined { .. }
            ));
        }
    }

    let datagrams_out = "partyline_cluster_datagram_messages_out_total";
    let control_out = "partyline_cluster_control_messages_out_total";
    let (a_before, b_before) = (
        metric(&nodes[0], datagrams_out).await,
        metric(&nodes[1], datagrams_out).await,
    );
    const SENT: u64 = 10;
    for i in 0..SENT {
        ana.send_data(party, i as i64, b"tick").unwrap();
        // Paced, so loopback never drops one.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for (_, events) in on_b.iter_mut() {
        for i in 0..SENT {
            assert_eq!(next_data(events).await.op_code, i as i64);
        }
    }
    // Three members on B, one message per datagram.
    assert_eq!(metric(&nodes[0], datagrams_out).await - a_before, SENT);

    // From a member on B: once to the home, once back for the other two.
    on_b[0].0.send_data(party, 99, b"from b1").unwrap();
    assert_eq!(next_data(&mut ana_events).await.op_code, 99);
    for (_, events) in on_b.iter_mut().skip(1) {
        assert_eq!(next_data(events).await.op_code, 99);
    }
    assert_eq!(metric(&nodes[1], datagrams_out).await - b_before, 1);
    assert_eq!(metric(&nodes[0], datagrams_out).await - a_before, SENT + 1);

    // One change, one event batch for node B's three members.
    let before = metric(&nodes[0], control_out).await;
    ana.update_party(
        party,
        PartyUpdate {
            label: Some("renamed".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for (_, events) in on_b.iter_mut() {
        assert!(matches!(
            next_event(events).await,
            Event::PartyUpdated { .. }
        ));
    }
    assert_eq!(metric(&nodes[0], control_out).await - before, 1);
}

/// `partyline serve` as a child process in the cluster, so it can be
/// killed as a crash would (no goodbye to the other nodes).
fn spawn_node(nats: &Nats, name: &str, cert_dir: &std::path::Path) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_partyline"))
        .args(["serve", "--listen", "127.0.0.1:0", "--cert-dir"])
        .arg(cert_dir)
        .args([
            "--cluster",
            &nats.url(),
            "--node",
            name,
            "--node-timeout",
            "1.5",
        ])
        .env("NO_COLOR", "1")
        .env_remove("PARTYLINE_TOKEN_SECRET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("partyline starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("addr=").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let addr = rx.recv_timeout(WAIT).expect("a listening line");
    (child, addr.parse().expect("an address"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_s_parties_end_and_its_members_leave_elsewhere() {
    let nats = Nats::start();
    let nodes = cluster(&nats, &["live-a"]).await;
    let dir = std::env::temp_dir().join(format!("partyline-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // Named so that its tag is the lowest: it is the cluster's matcher.
    let doomed_name = (0..)
        .map(|i| format!("doomed-{i}"))
        .find(|name| node_tag(name) < node_tag("live-a"))
        .unwrap();
    let (mut doomed, addr) = spawn_node(&nats, &doomed_name, &dir);
    wait_until("node A hears node C", || {
        nodes[0].handle.cluster_peers() == [doomed_name.clone()]
    })
    .await;
    let certs = partyline_client::load_certificates(dir.join("cert.pem")).unwrap();
    let mut config = ClientConfig::dev(addr, certs, "cara", "Cara");
    config.auto_reconnect = false;
    let (cara, mut cara_events) = partyline_client::Client::connect(config).await.unwrap();
    let (ana, mut ana_events) = nodes[0].client("ana").await;

    // One party homed on the doomed node with ana (on A) in it, one homed
    // on A with cara (on the doomed node) in it.
    let on_c = open_party(&cara).await;
    ana.join_party(on_c).await.unwrap();
    expect_joined(&mut cara_events).await;
    let on_a = open_party(&ana).await;
    cara.join_party(on_a).await.unwrap();
    expect_joined(&mut ana_events).await;
    assert_eq!(nodes[0].handle.remote_members(), 1);
    // Ana follows cara, whose only session is on the doomed node.
    assert_eq!(ana.follow(&["cara"]).await.unwrap().len(), 1);
    // Ana's solo ticket is made by her node and waits in the doomed
    // node's pool (the matcher's).
    let ticket = ana
        .submit_ticket(partyline_client::TicketRequest {
            min_count: 5,
            max_count: 5,
            count_multiple: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(home_of_ticket(ticket), node_tag("live-a"));
    until(&mut ana_events, |e| {
        matches!(e, Event::TicketStarted { .. }).then_some(())
    })
    .await;

    doomed.kill().expect("kill -9");
    let _ = doomed.wait();
    // Within the node timeout: both facts reach ana, in either order.
    let mut closed = false;
    let mut left = false;
    let mut offline = false;
    let mut cancelled = false;
    while !(closed && left && offline && cancelled) {
        match next_event(&mut ana_events).await {
            Event::TicketCancelled {
                ticket_id,
                reason: partyline_client::TicketCancelReason::NodeLost,
            } if ticket_id == ticket => cancelled = true,
            Event::PartyClosed { party_id } if party_id == on_c => closed = true,
            Event::StatusOffline { presence } if presence.user_id == "cara" => offline = true,
            Event::MemberLeft {
                party_id,
                member,
                reason: LeaveReason::SessionEnded,
            } if party_id == on_a && member.user_id == "cara" => left = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(nodes[0].handle.cluster_peers().is_empty());
    assert_eq!(nodes[0].handle.remote_members(), 0);
    // The party on A lives on, and the lost one is gone for good.
    assert_eq!(ana.get_party(on_a).await.unwrap().members.len(), 1);
    assert_eq!(code(ana.get_party(on_c).await), ErrorCode::PartyNotFound);
    assert_eq!(code(ana.join_party(on_c).await), ErrorCode::PartyNotFound);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_keeps_local_parties_working_and_remote_ones_heal() {
    let mut nats = Nats::start();
    let nodes = cluster(&nats, &["restart-a", "restart-b"]).await;
    let (ana, mut ana_events) = nodes[0].client("ana").await;
    let (abe, mut abe_events) = nodes[0].client("abe").await;
    let (bob, mut bob_events) = nodes[1].client("bob").await;
    let party = open_party(&ana).await;
    bob.join_party(party).await.unwrap();
    expect_joined(&mut ana_events).await;

    nats.stop();
    wait_until("both nodes see the link down", || {
        nodes.iter().all(|node| !node.handle.cluster_link_up())
    })
    .await;
    // Local parties and local members carry on.
    abe.join_party(party).await.unwrap();
    expect_joined(&mut ana_events).await;
    let local = open_party(&ana).await;
    abe.join_party(local).await.unwrap();
    expect_joined(&mut ana_events).await;
    ana.send_data(party, 5, b"still here").unwrap();
    assert_eq!(&next_data(&mut abe_events).await.data[..], b"still here");
    // A command for a party homed on the other node fails at once.
    let started = Instant::now();
    assert_eq!(
        code(bob.send_data_reliable(party, 1, b"lost?").await),
        ErrorCode::Unavailable
    );
    assert!(started.elapsed() < Duration::from_secs(1), "failed fast");

    nats.resume();
    wait_until("both nodes are back on NATS", || {
        nodes.iter().all(|node| node.handle.cluster_link_up())
    })
    .await;
    // The link heals by itself, nobody was judged lost, and the party
    // across both nodes works again.
    let deadline = Instant::now() + WAIT;
    loop {
        match bob.send_data_reliable(party, 2, b"back").await {
            Ok(()) => break,
            Err(error) => {
                assert!(Instant::now() < deadline, "never healed: {error:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    loop {
        let data = next_data(&mut ana_events).await;
        if &data.data[..] == b"back" {
            break;
        }
    }
    assert_eq!(ana.get_party(party).await.unwrap().members.len(), 3);
    assert_eq!(
        metric(&nodes[0], "partyline_cluster_nodes_lost_total").await,
        0
    );
    drop(bob_events.try_next());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_with_a_taken_name_is_refused_and_a_resume_moves_to_another_node() {
    let nats = Nats::start();
    let nodes = cluster(&nats, &["same", "other"]).await;
    let (tls, _, _) = partyline::certs::generate_dev_identity().unwrap();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), tls);
    config.cluster = Some(cluster_config(&nats, "same"));
    let twin = Server::bind(config).unwrap();
    let refused = twin.join_cluster().await.unwrap_err().to_string();
    assert!(refused.contains("already used"), "{refused}");

    // A session's resume token works on another node while its own lives:
    // that node takes the session over (same id, from snapshots), the old
    // connection is closed Superseded, and the token then works no more.
    let client = wire::WireClient::connect(&nodes[0], "ana").await;
    let ticket = client.resume_ticket();
    let moved = wire::WireClient::resume(&nodes[1], "ana", ticket.clone())
        .await
        .expect("node B takes the session of node A over");
    assert_eq!(moved.welcome().session_id, client.welcome().session_id);
    assert!(matches!(
        moved.welcome().resumed,
        partyline::protocol::Resumed::Snapshots { .. }
    ));
    let closed = tokio::time::timeout(Duration::from_secs(5), client.connection.closed())
        .await
        .expect("the old connection is closed");
    assert!(
        matches!(&closed, quinn::ConnectionError::ApplicationClosed(close)
            if close.error_code == quinn::VarInt::from(partyline::protocol::CloseCode::Superseded as u32)),
        "{closed:?}"
    );
    for node in [&nodes[0], &nodes[1]] {
        let refusal = match wire::WireClient::resume(node, "ana", ticket.clone()).await {
            Err(refusal) => refusal,
            Ok(_) => panic!("a used token worked again"),
        };
        assert_eq!(refusal.code, partyline::protocol::ErrorCode::ResumeRefused);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_listings_invites_and_presence_work_across_nodes() {
    let nats = Nats::start();
    let nodes = cluster(&nats, &["find-a", "find-b"]).await;
    let (ana, mut ana_events) = nodes[0].client("ana").await;
    let (bob, mut bob_events) = nodes[1].client("bob").await;

    // A join code minted on A, typed by a player on B.
    let on_a = ana
        .create_party(settings(true, 4, "on a"))
        .await
        .unwrap()
        .party_id;
    let code = ana.create_join_code(on_a).await.unwrap();
    assert!(matches!(
        bob.join_by_code(&code.to_lowercase()).await.unwrap(),
        JoinOutcome::Joined(_)
    ));
    until(&mut ana_events, |e| {
        matches!(e, Event::MemberJoined { .. }).then_some(())
    })
    .await;
    assert_eq!(
        code_of(bob.join_by_code("ZZZZZZ").await),
        ErrorCode::JoinCodeNotFound
    );

    // One listing across both nodes, paged with one cursor.
    let on_b = bob
        .create_party(settings(true, 4, "on b"))
        .await
        .unwrap()
        .party_id;
    let duo: partyline_client::KeyValues = [("mode".to_string(), "duo".to_string())].into();
    ana.list_party(on_a, duo.clone()).await.unwrap();
    bob.list_party(on_b, duo.clone()).await.unwrap();
    let (cara, mut cara_events) = nodes[0].client("cara").await;
    let mut found = Vec::new();
    let mut cursor = 0;
    loop {
        let page = cara
            .search_parties(partyline_client::PartySearch {
                properties: duo.clone(),
                limit: 1,
                cursor,
                ..Default::default()
            })
            .await
            .unwrap();
        found.extend(page.parties.iter().map(|p| p.party_id));
        cursor = page.next_cursor;
        if cursor == 0 {
            break;
        }
        assert!(found.len() < 3, "the cursor never ends: {found:?}");
    }
    found.sort();
    let mut expected = vec![on_a, on_b];
    expected.sort();
    assert_eq!(found, expected, "each party once, from both nodes");

    // An invite from A to a user on B, seen, listed and declined there.
    ana.invite(on_a, "cara").await.unwrap();
    ana.invite(on_a, "dora").await.unwrap();
    let (dora, mut dora_events) = nodes[1].client("dora").await;
    let invites = dora.list_invites().await.unwrap();
    assert_eq!(
        invites.len(),
        1,
        "the invite sent before dora came is kept on B"
    );
    ana.invite(on_a, "dora").await.unwrap();
    until(&mut dora_events, |e| {
        matches!(e, Event::Invited(_)).then_some(())
    })
    .await;
    until(&mut cara_events, |e| {
        matches!(e, Event::Invited(_)).then_some(())
    })
    .await;
    dora.decline_invite(on_a).await.unwrap();
    until(&mut ana_events, |e| {
        matches!(e, Event::InviteDeclined { .. }).then_some(())
    })
    .await;

    // Presence: a follower on A sees a user whose sessions are on B.
    let (finn, _finn_events) = nodes[1].client("finn").await;
    finn.set_status("in lobby", true).await.unwrap();
    let online = ana.follow(&["finn"]).await.unwrap();
    assert_eq!(online.len(), 1);
    assert_eq!(online[0].status, "in lobby");
    finn.set_status("in match", true).await.unwrap();
    // Finn's changes from before the follow may still arrive, in the
    // order they happened, crossing its answer.
    until(&mut ana_events, |e| match e {
        Event::StatusChanged(status) if status.status == "in match" => Some(()),
        Event::StatusOnline(status) | Event::StatusChanged(status)
            if status.presence.user_id == "finn" =>
        {
            None
        }
        other => panic!("unexpected {other:?}"),
    })
    .await;
    // A second session of finn, on A: both show.
    let (finn2, _finn2_events) = nodes[0].client("finn").await;
    until(&mut ana_events, |e| {
        matches!(e, Event::StatusOnline(_)).then_some(())
    })
    .await;
    finn.close().await;
    let gone = until(&mut ana_events, |e| match e {
        Event::StatusOffline { presence } => Some(presence),
        _ => None,
    })
    .await;
    assert_ne!(gone.session_id, finn2.session_id(), "the session on B went");
    drop(bob_events.try_next());
}

/// The node that made a ticket (its home, which keeps it or its shadow):
/// its id's high 32 bits.
fn home_of_ticket(ticket_id: u64) -> u32 {
    (ticket_id >> 32) as u32
}

fn code_of<T: std::fmt::Debug>(result: Result<T, partyline_client::ClientError>) -> ErrorCode {
    code(result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_ticket_is_served_by_the_party_s_home_for_a_leader_on_another_node() {
    use partyline_client::TicketRequest;
    let nats = Nats::start();
    let nodes = cluster_with(&nats, &["mm-a", "mm-b"], |config| {
        config.matchmaker_interval = Duration::from_millis(50)
    })
    .await;
    let (ana, mut ana_events) = nodes[0].client("ana").await;
    let (bob, mut bob_events) = nodes[1].client("bob").await;
    // Homed on B, led from A.
    let party = open_party(&bob).await;
    ana.join_party(party).await.unwrap();
    bob.promote(party, "ana").await.unwrap();
    until(&mut ana_events, |e| {
        matches!(e, Event::LeaderChanged { .. }).then_some(())
    })
    .await;
    let trio = TicketRequest {
        party_id: Some(party),
        min_count: 3,
        max_count: 3,
        count_multiple: 1,
        ..TicketRequest::default()
    };
    let ticket = ana.submit_ticket(trio.clone()).await.unwrap();
    for events in [&mut ana_events, &mut bob_events] {
        until(events, |e| {
            matches!(e, Event::TicketStarted { .. }).then_some(())
        })
        .await;
    }
    // The ticket's id names its home: a cancel from A reaches B.
    ana.cancel_ticket(ticket).await.unwrap();
    for events in [&mut ana_events, &mut bob_events] {
        until(events, |e| {
            matches!(e, Event::TicketCancelled { .. }).then_some(())
        })
        .await;
    }
    assert_eq!(
        code(ana.cancel_ticket(ticket).await),
        ErrorCode::TicketNotFound
    );

    // Solo players on different nodes meet in one pool.
    let (dan, mut dan_events) = nodes[0].client("dan").await;
    let (eve, mut eve_events) = nodes[1].client("eve").await;
    let duo = TicketRequest {
        min_count: 2,
        max_count: 2,
        count_multiple: 1,
        strings: [("mode".to_string(), "duo".to_string())].into(),
        query: partyline_client::TicketQuery {
            strings: [("mode".to_string(), "duo".to_string())].into(),
            ..Default::default()
        },
        ..TicketRequest::default()
    };
    dan.submit_ticket(duo.clone()).await.unwrap();
    eve.submit_ticket(duo).await.unwrap();
    for events in [&mut dan_events, &mut eve_events] {
        let found = until(events, |e| match e {
            Event::Matched(found) => Some(found),
            _ => None,
        })
        .await;
        let mut names: Vec<_> = found
            .players
            .iter()
            .map(|p| p.presence.user_id.clone())
            .collect();
        names.sort();
        assert_eq!(names, ["dan", "eve"]);
    }

    // Again, and a solo player on B completes the match.
    ana.submit_ticket(trio.clone()).await.unwrap();
    let (cara, mut cara_events) = nodes[1].client("cara").await;
    cara.submit_ticket(TicketRequest {
        party_id: None,
        ..trio
    })
    .await
    .unwrap();
    for events in [&mut ana_events, &mut bob_events, &mut cara_events] {
        let found = until(events, |e| match e {
            Event::Matched(found) => Some(found),
            _ => None,
        })
        .await;
        assert_eq!(found.players.len(), 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_attributes_bans_and_a_lost_connection_cross_nodes() {
    use support::relay::Relay;
    let nats = Nats::start();
    let nodes = cluster_with(&nats, &["more-a", "more-b"], |config| {
        fast_loss_detection(config);
        // A short replay log: a resume after a few events away comes back
        // with snapshots.
        config.replay_events = 2;
    })
    .await;
    let (ana, mut ana_events) = nodes[0].client("ana").await;
    let relay = Relay::start(nodes[1].addr).await;
    let (bob, mut bob_events) = via_relay(&nodes[1], &relay, "bob", true).await;
    let (cara, mut cara_events) = nodes[1].client("cara").await;
    let party = open_party(&ana).await;
    bob.join_party(party).await.unwrap();
    cara.join_party(party).await.unwrap();
    for _ in 0..2 {
        expect_joined(&mut ana_events).await;
    }
    expect_joined(&mut bob_events).await;

    // Party state from the home, attributes from a member on B.
    let map: partyline_client::KeyValues = [("map".to_string(), "dust".to_string())].into();
    ana.set_party_state(party, map.clone(), &[]).await.unwrap();
    for events in [&mut ana_events, &mut bob_events, &mut cara_events] {
        match next_event(events).await {
            Event::PartyStateChanged { state, .. } => assert_eq!(state, map),
            other => panic!("expected PartyStateChanged, got {other:?}"),
        }
    }
    let role: partyline_client::KeyValues = [("role".to_string(), "healer".to_string())].into();
    bob.set_member_attributes(party, role.clone(), &[])
        .await
        .unwrap();
    for events in [&mut ana_events, &mut bob_events, &mut cara_events] {
        match next_event(events).await {
            Event::MemberAttributesChanged {
                member, attributes, ..
            } => {
                assert_eq!(member.user_id, "bob");
                assert_eq!(attributes, role);
            }
            other => panic!("expected MemberAttributesChanged, got {other:?}"),
        }
    }
    assert!(ana.list_join_requests(party).await.unwrap().is_empty());

    // A ban of a member on B: out, and kept out until unbanned.
    ana.ban(party, "cara", None).await.unwrap();
    assert!(matches!(
        next_event(&mut cara_events).await,
        Event::Banned { .. }
    ));
    for events in [&mut ana_events, &mut bob_events] {
        assert!(matches!(
            next_event(events).await,
            Event::MemberLeft {
                reason: LeaveReason::Banned,
                ..
            }
        ));
    }
    assert_eq!(code(cara.join_party(party).await), ErrorCode::Banned);
    ana.unban(party, "cara").await.unwrap();
    cara.join_party(party).await.unwrap();
    for events in [&mut ana_events, &mut bob_events] {
        expect_joined(events).await;
    }

    // Bob's connection to node B is lost: the home marks his seat, and
    // his resume on node B brings it back.
    relay.blackhole(true);
    expect_lost(&mut bob_events, true).await;
    for events in [&mut ana_events, &mut cara_events] {
        match next_event(events).await {
            Event::MemberConnectionChanged {
                member, connected, ..
            } => assert_eq!((member.user_id.as_str(), connected), ("bob", false)),
            other => panic!("expected MemberConnectionChanged, got {other:?}"),
        }
    }
    // More changes while he is away than his node's replay log holds.
    for round in 0..3 {
        let state: partyline_client::KeyValues = [("round".to_string(), round.to_string())].into();
        ana.set_party_state(party, state, &[]).await.unwrap();
        for events in [&mut ana_events, &mut cara_events] {
            assert!(matches!(
                next_event(events).await,
                Event::PartyStateChanged { .. }
            ));
        }
    }
    relay.blackhole(false);
    until(&mut bob_events, |e| {
        matches!(e, Event::Resumed).then_some(())
    })
    .await;
    // Resumed from snapshots: the party homed on node A is in them.
    match next(&mut bob_events).await {
        Event::PartySynced { party: synced } => {
            assert_eq!(synced.party_id, party);
            assert_eq!(synced.state.get("round").map(String::as_str), Some("2"));
        }
        other => panic!("expected PartySynced, got {other:?}"),
    }
    match next_event(&mut ana_events).await {
        Event::MemberConnectionChanged {
            member, connected, ..
        } => assert_eq!((member.user_id.as_str(), connected), ("bob", true)),
        other => panic!("expected MemberConnectionChanged, got {other:?}"),
    }
    // Still one party across both nodes: data from the resumed member.
    bob.send_data_reliable(party, 4, b"back").await.unwrap();
    assert_eq!(&next_data(&mut ana_events).await.data[..], b"back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stops_promptly_while_nats_is_down() {
    let mut nats = Nats::start();
    let nodes = cluster(&nats, &["stop-a", "stop-b"]).await;
    nats.stop();
    wait_until("the link is down", || !nodes[0].handle.cluster_link_up()).await;
    let [node, _other]: [TestServer; 2] = nodes.try_into().ok().unwrap();
    tokio::time::timeout(WAIT, node.handle.shutdown())
        .await
        .expect("the node stops without NATS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn party_data_for_another_node_is_dropped_and_counted_when_its_queue_is_full() {
    let nats = Nats::start();
    // A queue of one message: a burst of datagrams cannot all wait.
    let nodes = cluster_with(&nats, &["queue-a", "queue-b"], |config| {
        config.metrics = Some("127.0.0.1:0".parse().unwrap());
        if let Some(cluster) = config.cluster.as_mut() {
            cluster.datagram_queue = 1;
        }
    })
    .await;
    let (ana, mut ana_events) = nodes[0].client("ana").await;
    let (bob, _bob_events) = nodes[1].client("bob").await;
    let party = open_party(&ana).await;
    bob.join_party(party).await.unwrap();
    expect_joined(&mut ana_events).await;
    const SENT: u64 = 400;
    for i in 0..SENT {
        ana.send_data(party, i as i64, b"burst").unwrap();
    }
    // Every datagram for node B was either queued for NATS or dropped,
    // counted, and nothing waits without bound.
    let published = "partyline_cluster_datagram_messages_out_total";
    let dropped = "partyline_cluster_datagrams_dropped_total";
    let deadline = Instant::now() + WAIT;
    loop {
        let (out, lost) = (
            metric(&nodes[0], published).await,
            metric(&nodes[0], dropped).await,
        );
        if out + lost == SENT {
            assert!(lost > 0, "a queue of one held a burst of {SENT}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{out} published and {lost} dropped of {SENT}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_server_side_api_lists_and_disconnects_across_nats_within_its_message_size() {
    // Node b holds more parties than one NATS message (1 MiB by default)
    // can carry: its answer comes in pages, asked one after another.
    const PARTIES: usize = 320;
    const PER_LEADER: usize = 20;
    let nats = Nats::start();
    let nodes = cluster_with(&nats, &["a", "b"], |config| {
        config.max_parties_per_session = PER_LEADER;
    })
    .await;
    let (ana, _ana_events) = nodes[0].client("ana").await;
    let mut leaders = Vec::new();
    for index in 0..PARTIES / PER_LEADER {
        leaders.push(nodes[1].client(&format!("leader-{index:02}")).await);
    }
    let mut state = partyline::protocol::KeyValues::new();
    state.insert("blob".into(), "x".repeat(3800));
    let b_api = nodes[1].handle.api();
    for index in 0..PARTIES {
        let leader = leaders[index / PER_LEADER].0.session_id();
        let settings = partyline::party::PartySettings {
            open: false,
            max_size: 4,
            label: format!("big-{index:03}"),
            invite_policy: Default::default(),
            leader_policy: Default::default(),
        };
        b_api
            .create_party(&[leader], settings, state.clone())
            .await
            .unwrap();
    }
    let a_api = nodes[0].handle.api();
    let labels: Vec<String> = a_api
        .parties("big", 1000)
        .await
        .into_iter()
        .map(|party| party.label)
        .collect();
    let expected: Vec<String> = (0..PARTIES).map(|i| format!("big-{i:03}")).collect();
    assert_eq!(labels, expected);
    assert_eq!(a_api.sessions().await.len(), 1 + PARTIES / PER_LEADER);

    // A session on b, disconnected from a: closed with code 9 on b.
    let (bob, mut bob_events) = nodes[1].client("bob").await;
    a_api
        .disconnect(bob.session_id(), "over nats")
        .await
        .unwrap();
    let reason = until(&mut bob_events, |event| match event {
        Event::Disconnected { reason } => Some(reason),
        _ => None,
    })
    .await;
    match reason {
        partyline_client::DisconnectReason::ClosedByServer { code, reason } => {
            assert_eq!((code, reason.as_str()), (9, "over nats"))
        }
        other => panic!("expected a close by the server, got {other:?}"),
    }
    let bobs = a_api.sessions_of("bob").await;
    assert!(bobs.is_empty(), "{bobs:?}");
    drop(ana);
}
