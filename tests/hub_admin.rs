//! The server-side API and the admin API on a cluster of real servers
//! linked by the in-memory hub, with real QUIC clients: lists from every
//! node in one order, a party read and acted on at its home, a session
//! disconnected on its own node, sessions seated across nodes, and a
//! stalled node left out of lists and failing what is aimed at it, typed.
mod support;

#[path = "../examples/squad_backend.rs"]
mod squad_backend;

use partyline::certs::generate_dev_identity;
use partyline::party::PartySettings;
use partyline::protocol::{ErrorCode, InvitePolicy, KeyValues, PartyId};
use partyline::server::{ApiError, MemoryHub, NodeTimings, Server, ServerApi, ServerConfig};
use partyline_client::{DisconnectReason, Event, Events, LeaveReason};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::*;

const TOKEN: &str = "admin-token-for-the-hub-tests-0123456789";

/// Quick heartbeats, so that nodes hear each other at once.
fn timings() -> NodeTimings {
    NodeTimings {
        heartbeat: Duration::from_millis(100),
        node_timeout: Duration::from_millis(900),
        request_timeout: Duration::from_secs(2),
    }
}

/// A stalled node is not judged lost during the test, and a question to
/// it is given up soon.
fn patient_timings() -> NodeTimings {
    NodeTimings {
        heartbeat: Duration::from_millis(100),
        node_timeout: Duration::from_secs(120),
        request_timeout: Duration::from_millis(300),
    }
}

/// A node of the cluster, with its admin API.
struct Node {
    server: TestServer,
    admin: SocketAddr,
}

impl Node {
    fn api(&self) -> ServerApi {
        self.server.handle.api()
    }
}

/// Nodes `names` of one hub, each with the admin API on 127.0.0.1:0, each
/// hearing all the others.
async fn cluster(
    hub: &MemoryHub,
    names: &[&str],
    timings: NodeTimings,
    tweak: impl Fn(&mut ServerConfig),
) -> Vec<Node> {
    let mut nodes = Vec::new();
    for name in names {
        let (tls, _, _) = generate_dev_identity().expect("dev certificate");
        let certs = tls.chain.clone();
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), tls);
        config.admin = Some("127.0.0.1:0".parse().unwrap());
        config.admin_token = Some(TOKEN.into());
        tweak(&mut config);
        let server = Server::builder(config)
            .hub(hub, name, timings)
            .build()
            .expect("server binds");
        let admin = server.admin_addr().expect("an admin address");
        let server = TestServer {
            addr: server.local_addr().expect("local addr"),
            metrics: server.metrics_addr(),
            certs,
            handle: server.spawn(),
        };
        nodes.push(Node { server, admin });
    }
    let deadline = Instant::now() + WAIT;
    for node in &nodes {
        while node.server.handle.cluster_peers().len() < names.len() - 1 {
            assert!(
                Instant::now() < deadline,
                "the nodes never heard each other"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    nodes
}

/// One admin request with the token, on a blocking thread: the status and
/// the JSON body.
async fn admin(method: &str, addr: SocketAddr, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut builder = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("Authorization", format!("Bearer {TOKEN}"));
    let body = body.map(|body| body.to_string()).unwrap_or_default();
    if !body.is_empty() {
        builder = builder.header("Content-Type", "application/json");
    }
    let request = builder.body(body).expect("a request");
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(WAIT))
            .build()
            .into();
        let mut response = agent.run(request).expect("an HTTP answer");
        let text = response.body_mut().read_to_string().expect("a text body");
        let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        (response.status().as_u16(), json)
    })
    .await
    .expect("the request thread")
}

async fn get(addr: SocketAddr, path: &str) -> Value {
    let (status, body) = admin("GET", addr, path, None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Skips events until one that `wanted` picks.
async fn until<T>(events: &mut Events, mut wanted: impl FnMut(&Event) -> Option<T>) -> T {
    loop {
        let event = next(events).await;
        if let Some(found) = wanted(&event) {
            return found;
        }
    }
}

/// Waits until `user` left `party` for `why`.
async fn left(events: &mut Events, party: PartyId, user: &str, why: LeaveReason) {
    until(events, |event| match event {
        Event::MemberLeft {
            party_id,
            member,
            reason,
        } if *party_id == party && member.user_id == user => {
            assert_eq!(*reason, why, "{user} left {party} for another reason");
            Some(())
        }
        _ => None,
    })
    .await
}

async fn joined(events: &mut Events, party: PartyId, user: &str) {
    until(events, |event| match event {
        Event::MemberJoined { party_id, member } if *party_id == party => {
            (member.user_id == user).then_some(())
        }
        _ => None,
    })
    .await
}

async fn seated_in(events: &mut Events) -> PartyId {
    until(events, |event| match event {
        Event::PartyJoined { party } => Some(party.party_id),
        _ => None,
    })
    .await
}

async fn closed(events: &mut Events, party: PartyId) {
    until(events, |event| match event {
        Event::PartyClosed { party_id } => (*party_id == party).then_some(()),
        _ => None,
    })
    .await
}

/// The client was closed by the server with code 9 and `why`.
async fn disconnected(events: &mut Events, why: &str) {
    let (code, reason) = until(events, |event| match event {
        Event::Disconnected {
            reason: DisconnectReason::ClosedByServer { code, reason },
        } => Some((*code, reason.clone())),
        Event::Disconnected { reason } => panic!("disconnected otherwise: {reason:?}"),
        _ => None,
    })
    .await;
    assert_eq!((code, reason.as_str()), (9, why));
}

fn labels(parties: &[partyline::protocol::PartySnapshot]) -> Vec<&str> {
    parties.iter().map(|party| party.label.as_str()).collect()
}

fn unavailable(nodes: &[&str]) -> ApiError {
    ApiError::Unavailable {
        nodes: nodes.iter().map(|node| node.to_string()).collect(),
    }
}

#[tokio::test]
async fn sessions_and_parties_are_listed_from_every_node_in_one_order() {
    let hub = MemoryHub::new();
    let nodes = cluster(&hub, &["a", "b", "c"], timings(), |_| {}).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (ana, _ana_events) = a.server.client("ana").await;
    let (bob, mut bob_events) = b.server.client("bob").await;
    let (bob_phone, _phone_events) = c.server.client("bob").await;
    let (cy, _cy_events) = c.server.client("cy").await;
    let lobby_a = ana
        .create_party(settings(true, 4, "lobby-a"))
        .await
        .unwrap();
    let lobby_b = bob
        .create_party(settings(true, 4, "lobby-b"))
        .await
        .unwrap();
    let lobby_c = cy.create_party(settings(true, 4, "lobby-c")).await.unwrap();
    let other_a = ana.create_party(settings(true, 4, "zz-a")).await.unwrap();

    // Every node's sessions, from node a: by user, then session id.
    let sessions = a.api().sessions().await;
    let users: Vec<&str> = sessions.iter().map(|s| s.user_id.as_str()).collect();
    assert_eq!(users, ["ana", "bob", "bob", "cy"]);
    let mut bobs = vec![(bob.session_id(), "b"), (bob_phone.session_id(), "c")];
    bobs.sort();
    let listed: Vec<_> = sessions[1..3]
        .iter()
        .map(|s| (s.session_id, s.node.as_str()))
        .collect();
    assert_eq!(listed, bobs);
    let of_bob = a.api().sessions_of("bob").await;
    assert_eq!(of_bob, sessions[1..3].to_vec());
    let cy_info = a.api().session_info(cy.session_id()).await.unwrap();
    assert_eq!(
        (cy_info.node.as_str(), cy_info.parties.clone()),
        ("c", vec![lobby_c.party_id])
    );

    // Every node's parties, by label; the limit takes the first ones.
    let all = b.api().parties("", 10).await;
    assert_eq!(labels(&all), ["lobby-a", "lobby-b", "lobby-c", "zz-a"]);
    assert_eq!(all[1].party_id, lobby_b.party_id);
    assert_eq!(
        labels(&c.api().parties("lobby", 2).await),
        ["lobby-a", "lobby-b"]
    );
    assert_eq!(labels(&a.api().parties("-c", 10).await), ["lobby-c"]);

    // The admin API of any node lists the same, with each one's node.
    let parties = get(c.admin, "/v1/parties?limit=3").await;
    let listed: Vec<(&str, &str)> = parties["parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["label"].as_str().unwrap(), p["home"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [("lobby-a", "a"), ("lobby-b", "b"), ("lobby-c", "c")]
    );
    assert_eq!(parties["parties_alive"], 4);
    assert_eq!(parties["silent_nodes"], json!([]));
    let page = get(b.admin, "/v1/sessions?limit=3").await;
    let users: Vec<&str> = page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["ana", "bob", "bob"]);
    assert_eq!(page["matched"], 4);
    assert_eq!(page["sessions"][0]["node"], "a");

    // Bob leads his own party on b, and (promoted) ana's on a: both are
    // found from c, where his other session is.
    bob.join_party(lobby_a.party_id).await.unwrap();
    ana.promote(lobby_a.party_id, "bob").await.unwrap();
    until(&mut bob_events, |event| match event {
        Event::LeaderChanged { leader, .. } => (leader.user_id == "bob").then_some(()),
        _ => None,
    })
    .await;
    let mut led = vec![lobby_a.party_id, lobby_b.party_id];
    led.sort();
    assert_eq!(c.api().parties_led_by("bob").await, led);
    assert_eq!(b.api().parties_led_by("ana").await, [other_a.party_id]);
    assert_eq!(b.api().parties_led_by("cy").await, [lobby_c.party_id]);
}

#[tokio::test]
async fn a_party_homed_on_another_node_is_read_kicked_from_and_closed_there() {
    let hub = MemoryHub::new();
    let nodes = cluster(&hub, &["a", "b", "c"], timings(), |_| {}).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (bob, mut bob_events) = b.server.client("bob").await;
    let (ana, mut ana_events) = a.server.client("ana").await;
    let (cy, mut cy_events) = c.server.client("cy").await;
    let party = bob
        .create_party(settings(true, 4, "b-party"))
        .await
        .unwrap()
        .party_id;
    ana.join_party(party).await.unwrap();
    cy.join_party(party).await.unwrap();
    joined(&mut bob_events, party, "cy").await;
    joined(&mut ana_events, party, "cy").await;

    // Read from a, where it does not live.
    let info = a.api().party(party).await.unwrap();
    let members: Vec<&str> = info
        .snapshot
        .members
        .iter()
        .map(|m| m.user_id.as_str())
        .collect();
    assert_eq!(members, ["bob", "ana", "cy"]);
    assert_eq!(info.snapshot.leader.user_id, "bob");
    assert!(info.requests.is_empty());

    // Kicked from a: cy (on c) is told, bob (on b) and ana (on a) see it.
    a.api().kick(party, "cy").await.unwrap();
    until(&mut cy_events, |event| match event {
        Event::Kicked { party_id } => (*party_id == party).then_some(()),
        _ => None,
    })
    .await;
    left(&mut bob_events, party, "cy", LeaveReason::Kicked).await;
    left(&mut ana_events, party, "cy", LeaveReason::Kicked).await;
    match a.api().kick(party, "nobody").await {
        Err(ApiError::Refused(body)) => assert_eq!(body.code, ErrorCode::MemberNotFound),
        other => panic!("expected MemberNotFound, got {other:?}"),
    }

    // Reliable data from the server, sent from c, reaches every member.
    c.api().send_to_party(party, 7, "hi".into()).await.unwrap();
    for events in [&mut ana_events, &mut bob_events] {
        let data = until(events, |event| match event {
            Event::Data(data) => Some(data.clone()),
            _ => None,
        })
        .await;
        assert_eq!((data.op_code, &data.data[..]), (7, &b"hi"[..]));
        assert!(data.sender.session_id.0.is_nil());
    }

    // Closed from c: every member hears it, and it is gone.
    c.api().close_party(party).await.unwrap();
    closed(&mut ana_events, party).await;
    closed(&mut bob_events, party).await;
    fn gone<T: std::fmt::Debug>(result: Result<T, ApiError>) -> ErrorCode {
        match result {
            Err(ApiError::Refused(body)) => body.code,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(gone(a.api().party(party).await), ErrorCode::PartyNotFound);
    assert_eq!(
        gone(a.api().close_party(party).await),
        ErrorCode::PartyNotFound
    );
    // A party id naming no node of the cluster: not found, at once (once
    // the link has been up a heartbeat, every node has been heard).
    tokio::time::sleep(timings().heartbeat).await;
    let nowhere = PartyId::random();
    assert_eq!(gone(a.api().party(nowhere).await), ErrorCode::PartyNotFound);
}

#[tokio::test]
async fn a_session_on_another_node_is_disconnected_on_its_node() {
    let hub = MemoryHub::new();
    let nodes = cluster(&hub, &["a", "b"], timings(), |_| {}).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let (ana, mut ana_events) = a.server.client("ana").await;
    let (bob, mut bob_events) = b.server.client("bob").await;
    let party = ana
        .create_party(settings(true, 4, "a-party"))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    joined(&mut ana_events, party, "bob").await;

    let info = a.api().session_info(bob.session_id()).await.unwrap();
    assert_eq!((info.node.as_str(), info.connected), ("b", true));
    assert_eq!(info.parties, [party]);

    a.api()
        .disconnect(bob.session_id(), "maintenance")
        .await
        .unwrap();
    // Bob's client is closed with code 9, and does not come back; ana
    // sees him leave at once, as a session that ended.
    disconnected(&mut bob_events, "maintenance").await;
    left(&mut ana_events, party, "bob", LeaveReason::SessionEnded).await;
    assert!(b.api().sessions_of("bob").await.is_empty());
    assert_eq!(
        a.api().session_info(bob.session_id()).await,
        Err(ApiError::SessionNotFound(bob.session_id()))
    );
    assert_eq!(
        a.api().disconnect(bob.session_id(), "again").await,
        Err(ApiError::SessionNotFound(bob.session_id()))
    );
    let members = a.api().party(party).await.unwrap().snapshot.members;
    assert_eq!(members.len(), 1);
}

#[tokio::test]
async fn the_admin_api_of_one_node_acts_on_another_node_s_party_and_session() {
    let hub = MemoryHub::new();
    let nodes = cluster(&hub, &["a", "b"], timings(), |_| {}).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let (bob, mut bob_events) = b.server.client("bob").await;
    let (cy, mut cy_events) = b.server.client("cy").await;
    let (ana, mut ana_events) = a.server.client("ana").await;
    let party = bob
        .create_party(settings(true, 4, "b-room"))
        .await
        .unwrap()
        .party_id;
    cy.join_party(party).await.unwrap();
    ana.join_party(party).await.unwrap();
    joined(&mut bob_events, party, "ana").await;

    // Node a's admin API shows b's party and sessions.
    let view = get(a.admin, &format!("/v1/parties/{party}")).await;
    assert_eq!(
        (&view["home"], &view["label"]),
        (&json!("b"), &json!("b-room"))
    );
    let members: Vec<&str> = view["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["bob", "cy", "ana"]);
    let sessions = get(a.admin, "/v1/sessions").await;
    assert_eq!(sessions["matched"], 3);
    let cy_view = get(a.admin, &format!("/v1/sessions/{}", cy.session_id())).await;
    assert_eq!(
        (&cy_view["user_id"], &cy_view["node"]),
        (&json!("cy"), &json!("b"))
    );

    // A kick through a: cy is told, the others see it.
    let kick = format!("/v1/parties/{party}/kick");
    let (status, body) = admin("POST", a.admin, &kick, Some(json!({"user_id": "cy"}))).await;
    assert_eq!((status, &body["kicked"]), (200, &json!("cy")), "{body}");
    until(&mut cy_events, |event| {
        matches!(event, Event::Kicked { party_id } if *party_id == party).then_some(())
    })
    .await;
    left(&mut ana_events, party, "cy", LeaveReason::Kicked).await;

    // Bob, on b, disconnected through a: closed with code 9.
    let path = format!("/v1/sessions/{}?reason=restart", bob.session_id());
    let (status, body) = admin("DELETE", a.admin, &path, None).await;
    assert_eq!(
        (status, &body["disconnected"]),
        (200, &json!(true)),
        "{body}"
    );
    disconnected(&mut bob_events, "restart").await;
    left(&mut ana_events, party, "bob", LeaveReason::SessionEnded).await;

    // Closed through a: ana hears it; then it is not found.
    let path = format!("/v1/parties/{party}");
    let (status, body) = admin("DELETE", a.admin, &path, None).await;
    assert_eq!((status, &body["closed"]), (200, &json!(true)), "{body}");
    closed(&mut ana_events, party).await;
    let (status, body) = admin("GET", a.admin, &path, None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("PartyNotFound"))
    );
}

#[tokio::test]
async fn a_stalled_node_is_left_out_of_lists_and_what_is_aimed_at_it_fails_typed() {
    let hub = MemoryHub::new();
    let nodes = cluster(&hub, &["a", "b"], patient_timings(), |_| {}).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let (ana, _ana_events) = a.server.client("ana").await;
    let (bob, _bob_events) = b.server.client("bob").await;
    ana.create_party(settings(true, 4, "a-party"))
        .await
        .unwrap();
    let b_party = bob
        .create_party(settings(true, 4, "b-party"))
        .await
        .unwrap()
        .party_id;
    assert_eq!(
        labels(&a.api().parties("", 10).await),
        ["a-party", "b-party"]
    );

    // Node b freezes: it is not lost yet, it only stops answering.
    hub.stall("b");
    let api = a.api();
    let answered = tokio::time::timeout(WAIT, async {
        assert_eq!(labels(&api.parties("", 10).await), ["a-party"]);
        let users: Vec<String> = api
            .sessions()
            .await
            .into_iter()
            .map(|s| s.user_id)
            .collect();
        assert_eq!(users, ["ana"]);
        assert_eq!(api.party(b_party).await, Err(unavailable(&["b"])));
        assert_eq!(api.kick(b_party, "bob").await, Err(unavailable(&["b"])));
        assert_eq!(
            api.send_to_party(b_party, 1, "x".into()).await,
            Err(unavailable(&["b"]))
        );
        // Its sessions may be there: not "not found", but unavailable.
        let bob_session = bob.session_id();
        assert_eq!(
            api.session_info(bob_session).await,
            Err(unavailable(&["b"]))
        );
        assert_eq!(
            api.disconnect(bob_session, "x").await,
            Err(unavailable(&["b"]))
        );

        let listed = get(a.admin, "/v1/parties").await;
        assert_eq!(listed["silent_nodes"], json!(["b"]));
        assert_eq!(listed["parties"].as_array().unwrap().len(), 1);
        let sessions = get(a.admin, "/v1/sessions").await;
        assert_eq!(sessions["silent_nodes"], json!(["b"]));
        assert_eq!(sessions["matched"], 1);
        let (status, body) =
            admin("DELETE", a.admin, &format!("/v1/parties/{b_party}"), None).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(
            (&body["error"]["code"], &body["error"]["code_number"]),
            (&json!("Unavailable"), &json!(35))
        );
    })
    .await;
    assert!(answered.is_ok(), "a stalled node made the API hang");
}

fn squad(max_size: u16, label: &str) -> PartySettings {
    PartySettings {
        open: false,
        max_size,
        label: label.into(),
        invite_policy: InvitePolicy::default(),
        leader_policy: Default::default(),
    }
}

#[tokio::test]
async fn the_server_seats_sessions_of_any_node_in_parties_of_any_node() {
    let hub = MemoryHub::new();
    let nodes = cluster(&hub, &["a", "b", "c"], timings(), |_| {}).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (_ana, mut ana_events) = a.server.client("ana").await;
    let (dee, mut dee_events) = a.server.client("dee").await;
    let (bob, mut bob_events) = b.server.client("bob").await;
    let (cy, mut cy_events) = c.server.client("cy").await;
    let (eve, mut eve_events) = c.server.client("eve").await;

    // A squad of players on a and b, formed by a backend on c: homed on
    // the leader's node, a; both are seated and greeted.
    let formed = squad_backend::form_squad(&c.api(), &["ana", "bob"])
        .await
        .unwrap();
    let party = formed.party_id;
    assert_eq!(
        partyline::server::home_of(party),
        partyline::server::node_tag("a")
    );
    assert_eq!(seated_in(&mut ana_events).await, party);
    joined(&mut ana_events, party, "bob").await;
    assert_eq!(seated_in(&mut bob_events).await, party);
    for events in [&mut ana_events, &mut bob_events] {
        let greeting = next_data(events).await;
        assert_eq!(greeting.op_code, squad_backend::GREETING);
    }

    // Cy and eve (on c) added by a's backend to dee's closed party on a.
    let room = dee
        .create_party(settings(false, 8, "a-room"))
        .await
        .unwrap()
        .party_id;
    a.api().add_member(room, cy.session_id()).await.unwrap();
    a.api().add_member(room, eve.session_id()).await.unwrap();
    assert_eq!(seated_in(&mut cy_events).await, room);
    assert_eq!(seated_in(&mut eve_events).await, room);
    joined(&mut dee_events, room, "eve").await;
    let cy_info = c.api().session_info(cy.session_id()).await.unwrap();
    assert_eq!(cy_info.parties, [room]);

    // Cy moved to a closed party on b by c's backend; dee (on a) added to
    // it by c's backend too.
    let b_side = bob
        .create_party(settings(false, 4, "b-side"))
        .await
        .unwrap()
        .party_id;
    c.api()
        .move_member(cy.session_id(), room, b_side)
        .await
        .unwrap();
    assert_eq!(seated_in(&mut cy_events).await, b_side);
    left(&mut dee_events, room, "cy", LeaveReason::Left).await;
    c.api().add_member(b_side, dee.session_id()).await.unwrap();
    assert_eq!(seated_in(&mut dee_events).await, b_side);
    let members = b.api().party(b_side).await.unwrap().snapshot.members;
    let users: Vec<&str> = members.iter().map(|m| m.user_id.as_str()).collect();
    assert_eq!(users, ["bob", "cy", "dee"]);

    // Seats taken for sessions elsewhere end with those sessions: eve and
    // cy end on c, and the parties on a and b see them go.
    a.api().disconnect(eve.session_id(), "bye").await.unwrap();
    b.api().disconnect(cy.session_id(), "bye").await.unwrap();
    left(&mut dee_events, room, "eve", LeaveReason::SessionEnded).await;
    left(&mut dee_events, b_side, "cy", LeaveReason::SessionEnded).await;

    // Refusals are typed wherever they happen.
    match a.api().add_member(b_side, dee.session_id()).await {
        Err(ApiError::Refused(body)) => assert_eq!(body.code, ErrorCode::AlreadyMember),
        other => panic!("expected AlreadyMember, got {other:?}"),
    }
    let ghost = partyline::protocol::SessionId::random();
    assert_eq!(
        b.api().add_member(room, ghost).await,
        Err(ApiError::SessionNotFound(ghost))
    );
    // The squad is as it was formed.
    let members = c.api().party(party).await.unwrap().snapshot.members;
    assert_eq!(members.len(), 2);
}

#[tokio::test]
async fn long_lists_are_gathered_page_by_page_in_one_order() {
    // 80 parties of 4 KB state on each node: more than one node's page
    // holds, so the lister asks again after each node's last.
    const PER_NODE: usize = 80;
    const PER_LEADER: usize = 20;
    let hub = MemoryHub::new();
    let nodes = cluster(&hub, &["a", "b"], timings(), |config| {
        config.max_parties_per_session = PER_LEADER;
    })
    .await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let mut leaders = Vec::new();
    for index in 0..2 * PER_NODE / PER_LEADER {
        let node = [a, b][index % 2];
        leaders.push(node.server.client(&format!("leader-{index}")).await);
    }
    let mut state = KeyValues::new();
    state.insert("blob".into(), "x".repeat(3800));
    for index in 0..2 * PER_NODE {
        // Even labels on a, odd on b: the two lists interleave.
        let node = [a, b][index % 2];
        let leader = &leaders[index % 2 + 2 * (index / (2 * PER_LEADER))].0;
        let label = format!("big-{index:03}");
        node.api()
            .create_party(&[leader.session_id()], squad(4, &label), state.clone())
            .await
            .unwrap();
    }
    let expected: Vec<String> = (0..2 * PER_NODE).map(|i| format!("big-{i:03}")).collect();
    let all = a.api().parties("big", 1000).await;
    assert_eq!(labels(&all), expected);
    let first = b.api().parties("big", 150).await;
    assert_eq!(labels(&first), expected[..150]);

    let listed = get(a.admin, "/v1/parties?label=big&limit=101").await;
    let labels: Vec<&str> = listed["parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, expected[..101]);
    assert_eq!(listed["parties_alive"], 2 * PER_NODE);
}

#[tokio::test]
async fn a_seat_taken_for_a_session_that_ended_meanwhile_goes_with_it() {
    let hub = MemoryHub::new();
    let nodes = cluster(&hub, &["a", "b", "c"], patient_timings(), |_| {}).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (bob, mut bob_events) = b.server.client("bob").await;
    let (cy, _cy_events) = c.server.client("cy").await;
    let party = bob
        .create_party(settings(false, 4, "b-room"))
        .await
        .unwrap()
        .party_id;

    // a's backend seats cy (on c) in b's party while b is frozen: the
    // seat waits at b, and a hears nothing in time.
    hub.stall("b");
    assert_eq!(
        a.api().add_member(party, cy.session_id()).await,
        Err(unavailable(&["b"]))
    );
    // Cy ends on c meanwhile; then b takes the seat, late.
    c.api().disconnect(cy.session_id(), "bye").await.unwrap();
    hub.heal("b");
    joined(&mut bob_events, party, "cy").await;
    // c no longer has cy: b hears so, and the seat goes.
    left(&mut bob_events, party, "cy", LeaveReason::SessionEnded).await;
    let members = b.api().party(party).await.unwrap().snapshot.members;
    assert_eq!(members.len(), 1);
}
