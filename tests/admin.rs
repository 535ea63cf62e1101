//! The admin HTTP API through a real HTTP client (ureq) over real TCP: the
//! bearer token, the error shapes, stats, parties listed, searched and
//! inspected (a disconnected member shows), a kick, a close, sessions
//! listed and disconnected (the SDK clients hear each), and the listener
//! shared with /metrics.
mod support;

use partyline::certs::generate_dev_identity;
use partyline::server::{Server, ServerConfig, ServerError};
use partyline_client::{DisconnectReason, Event, JoinOutcome, KeyValues, PartyId};
use serde_json::{json, Value};
use std::net::SocketAddr;
use support::relay::Relay;
use support::*;

const TOKEN: &str = "admin-token-for-the-tests-0123456789";

/// A server with the admin API on 127.0.0.1:0 (the config `tweak`ed
/// first), and the admin address.
async fn start_admin(tweak: impl FnOnce(&mut ServerConfig)) -> (TestServer, SocketAddr) {
    let (tls, _, _) = generate_dev_identity().expect("dev certificate");
    let certs = tls.chain.clone();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), tls);
    config.admin = Some("127.0.0.1:0".parse().unwrap());
    config.admin_token = Some(TOKEN.into());
    tweak(&mut config);
    let server = Server::bind(config).expect("server binds");
    let admin = server.admin_addr().expect("an admin address");
    let test_server = TestServer {
        addr: server.local_addr().expect("local addr"),
        metrics: server.metrics_addr(),
        certs,
        handle: server.spawn(),
    };
    (test_server, admin)
}

/// An HTTP answer: status, the headers wanted, and the body.
#[derive(Debug)]
struct Reply {
    status: u16,
    www_authenticate: Option<String>,
    content_type: Option<String>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.body))
    }

    /// The JSON body of a success.
    fn ok(&self) -> Value {
        assert_eq!(self.status, 200, "{}", self.body);
        self.json()
    }

    /// The error's code, after checking the status.
    fn error(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        let body = self.json();
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        body["error"].clone()
    }
}

/// One request through ureq, on a blocking thread: `token` `None` sends no
/// Authorization header, `Some` a bearer token.
async fn request(
    method: &str,
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut builder = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if let Some(token) = token {
        builder = builder.header("Authorization", format!("Bearer {token}"));
    }
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
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
        };
        let (www_authenticate, content_type) = (header("www-authenticate"), header("content-type"));
        Reply {
            status: response.status().as_u16(),
            www_authenticate,
            content_type,
            body: response.body_mut().read_to_string().expect("a text body"),
        }
    })
    .await
    .expect("the request thread")
}

/// With the right token.
async fn admin(method: &str, addr: SocketAddr, path: &str, body: Option<Value>) -> Reply {
    request(method, addr, path, Some(TOKEN), body).await
}

async fn get(addr: SocketAddr, path: &str) -> Value {
    admin("GET", addr, path, None).await.ok()
}

fn users(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("an array")
        .iter()
        .map(|entry| entry["user_id"].as_str().expect("a user id"))
        .collect()
}

#[tokio::test]
async fn without_the_right_token_every_request_is_401_and_changes_nothing() {
    let (server, addr) = start_admin(|_| {}).await;
    let (ana, _ana_events) = server.client("ana").await;
    let party = ana
        .create_party(settings(true, 4, "mine"))
        .await
        .unwrap()
        .party_id;

    let missing = request("GET", addr, "/v1/stats", None, None).await;
    assert_eq!(missing.error(401)["code"], "Unauthorized");
    assert_eq!(
        missing.www_authenticate.as_deref(),
        Some("Bearer realm=\"partyline-admin\"")
    );
    assert_eq!(missing.content_type.as_deref(), Some("application/json"));

    let wrong = request("GET", addr, "/v1/stats", Some("not-the-admin-token"), None).await;
    assert_eq!(wrong.error(401)["code"], "Unauthorized");
    let challenge = wrong.www_authenticate.unwrap_or_default();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    // The right token with a byte more or less is as wrong.
    for near in [&TOKEN[1..], &format!("{TOKEN}x")] {
        let near = request("GET", addr, "/v1/stats", Some(near), None).await;
        near.error(401);
    }

    // Another scheme is no token; neither says which paths exist.
    let basic = ureq::http::Request::builder()
        .uri(format!("http://{addr}/v1/stats"))
        .header("Authorization", format!("Basic {TOKEN}"))
        .body(())
        .unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        agent.run(basic).expect("an answer").status().as_u16()
    })
    .await
    .unwrap();
    assert_eq!(status, 401);
    request("GET", addr, "/no/such/path", None, None)
        .await
        .error(401);

    // A close without the token closed nothing.
    let path = format!("/v1/parties/{party}");
    request("DELETE", addr, &path, Some("wrong-token-wrong-token"), None)
        .await
        .error(401);
    assert_eq!(server.handle.party_count(), 1);
    assert_eq!(get(addr, &path).await["label"], "mine");
}

#[tokio::test]
async fn unknown_paths_methods_ids_and_bodies_are_refused_as_json() {
    let (server, addr) = start_admin(|_| {}).await;
    let (ana, _ana_events) = server.client("ana").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;

    let missing = admin("GET", addr, "/v2/stats", None).await;
    assert_eq!(missing.error(404)["code"], "NotFound");
    assert_eq!(missing.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        admin("GET", addr, "/", None).await.error(404)["code"],
        "NotFound"
    );

    let wrong_method = admin("PUT", addr, "/v1/stats", None).await;
    assert_eq!(wrong_method.error(405)["code"], "MethodNotAllowed");
    admin("GET", addr, &format!("/v1/parties/{party}/kick"), None)
        .await
        .error(405);

    // Ids that are not UUIDs, queries and bodies that do not parse.
    for path in [
        "/v1/parties/not-a-uuid",
        "/v1/sessions/12345",
        "/v1/parties?limit=0",
        "/v1/parties?limit=1001",
        "/v1/parties?limit=many",
        "/v1/parties?colour=red",
        "/v1/sessions?limit=0",
    ] {
        let refused = admin("GET", addr, path, None).await;
        assert_eq!(refused.error(400)["code"], "BadRequest", "{path}");
    }
    let kick = format!("/v1/parties/{party}/kick");
    for body in [
        json!({"user": "ana"}),
        json!(["ana"]),
        json!({}),
        json!("ana"),
    ] {
        admin("POST", addr, &kick, Some(body)).await.error(400);
    }
    let huge = Some(json!({"user_id": "x".repeat(20_000)}));
    let too_large = admin("POST", addr, &kick, huge).await;
    assert_eq!(too_large.error(413)["code"], "BodyTooLarge");
    let long_reason = format!(
        "/v1/sessions/{}?reason={}",
        ana.session_id(),
        "x".repeat(201)
    );
    admin("DELETE", addr, &long_reason, None).await.error(400);

    // Well-formed ids of nothing alive.
    let gone = PartyId::random();
    let error = admin("GET", addr, &format!("/v1/parties/{gone}"), None)
        .await
        .error(404);
    assert_eq!(error["code"], "PartyNotFound");
    assert_eq!(error["code_number"], 2);
    let body = Some(json!({"user_id": "ana"}));
    admin("POST", addr, &format!("/v1/parties/{gone}/kick"), body)
        .await
        .error(404);
    admin("DELETE", addr, &format!("/v1/parties/{gone}"), None)
        .await
        .error(404);
    let nobody = format!("/v1/sessions/{}", PartyId::random());
    let error = admin("GET", addr, &nobody, None).await.error(404);
    assert_eq!(error["code"], "SessionNotFound");
    assert!(error.get("code_number").is_none(), "{error}");
    admin("DELETE", addr, &nobody, None).await.error(404);

    // Nothing was changed by any of it.
    assert_eq!(server.handle.party_count(), 1);
    assert_eq!(server.handle.session_count(), 1);
}

#[tokio::test]
async fn stats_count_sessions_parties_and_what_the_server_did() {
    let (server, addr) = start_admin(|_| {}).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, _bob_events) = server.client("bob").await;
    let party = ana
        .create_party(settings(true, 4, "listed"))
        .await
        .unwrap()
        .party_id;
    ana.create_party(settings(true, 4, "quiet")).await.unwrap();
    ana.list_party(party, KeyValues::new()).await.unwrap();
    ana.create_join_code(party).await.unwrap();
    bob.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;

    let stats = get(addr, "/v1/stats").await;
    assert_eq!(stats["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(stats["auth"], "dev");
    assert!(stats["uptime_seconds"].is_u64(), "{stats}");
    assert_eq!(
        stats["sessions"],
        json!({"alive": 2, "connected": 2, "in_grace": 0})
    );
    assert_eq!(stats["parties"], json!({"alive": 2, "listed": 1}));
    assert_eq!(stats["join_codes"], 1);
    assert_eq!(stats["matchmaking_tickets"], 0);
    assert_eq!(stats["transport_connections"], 2);
    assert_eq!(stats["totals"]["sessions_started"], 2);
    // Two creates, a listing, a join code and a join at least.
    assert!(
        stats["totals"]["commands"].as_u64().unwrap_or(0) >= 5,
        "{stats}"
    );
}

#[tokio::test]
async fn parties_are_listed_and_searched_by_label() {
    let (server, addr) = start_admin(|_| {}).await;
    let (ana, _ana_events) = server.client("ana").await;
    let (bob, _bob_events) = server.client("bob").await;
    for (leader, label) in [(&ana, "ranked-eu"), (&ana, "casual"), (&bob, "ranked-us")] {
        leader.create_party(settings(true, 4, label)).await.unwrap();
    }

    let all = get(addr, "/v1/parties").await;
    let labels: Vec<&str> = all["parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|party| party["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["casual", "ranked-eu", "ranked-us"]);
    assert_eq!(all["parties_alive"], 3);
    let casual = &all["parties"][0];
    assert_eq!(casual["leader"]["user_id"], "ana");
    assert_eq!(
        (&casual["members"], &casual["connected_members"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(casual["open"], true);
    assert_eq!(casual["max_size"], 4);

    let ranked = get(addr, "/v1/parties?label=ranked").await;
    let leaders: Vec<&str> = ranked["parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|party| party["leader"]["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(leaders, ["ana", "bob"]);
    let none = get(addr, "/v1/parties?label=tournament").await;
    assert_eq!(none["parties"], json!([]));
    // The limit cuts the list; parties_alive says there are more.
    let one = get(addr, "/v1/parties?limit=1").await;
    assert_eq!(one["parties"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["parties_alive"], 3);
}

#[tokio::test]
async fn a_party_shows_members_leader_seq_requests_and_who_is_disconnected() {
    let (server, addr) = start_admin(|config| {
        fast_loss_detection(config);
        // Bob's seat stays held, disconnected, for the whole test.
        config.grace = std::time::Duration::from_secs(60);
    })
    .await;
    let relay = Relay::start(server.addr).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = via_relay(&server, &relay, "bob", false).await;
    let (cy, _cy_events) = server.client("cy").await;
    let party = ana
        .create_party(settings(false, 4, "closed"))
        .await
        .unwrap()
        .party_id;
    // Seated by the server in the closed party; Cy only asks.
    server
        .handle
        .api()
        .add_member(party, bob.session_id())
        .await
        .unwrap();
    assert!(matches!(
        next_event(&mut bob_events).await,
        Event::PartyJoined { .. }
    ));
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::MemberJoined { .. }
    ));
    assert!(matches!(
        cy.join_party(party).await.unwrap(),
        JoinOutcome::Queued { .. }
    ));
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::JoinRequested { .. }
    ));

    relay.blackhole(true);
    match next_event(&mut ana_events).await {
        Event::MemberConnectionChanged {
            member, connected, ..
        } => assert_eq!((member.user_id.as_str(), connected), ("bob", false)),
        other => panic!("expected Bob's connection lost, got {other:?}"),
    }
    expect_lost(&mut bob_events, false).await;

    let view = get(addr, &format!("/v1/parties/{party}")).await;
    assert_eq!(view["party_id"], party.to_string());
    assert_eq!(view["label"], "closed");
    assert_eq!(view["open"], false);
    assert_eq!(view["leader"]["user_id"], "ana");
    assert_eq!(view["join_code"], Value::Null);
    assert_eq!(users(&view["members"]), ["ana", "bob"]);
    let ana_seat = &view["members"][0];
    assert_eq!(
        (&ana_seat["leader"], &ana_seat["connected"]),
        (&json!(true), &json!(true))
    );
    let bob_seat = &view["members"][1];
    assert_eq!(bob_seat["session_id"], bob.session_id().to_string());
    assert_eq!(
        (&bob_seat["leader"], &bob_seat["connected"]),
        (&json!(false), &json!(false))
    );
    // A lost connection has no quality; no ready check runs.
    assert_eq!(bob_seat["quality"], "Unknown");
    assert_eq!(view["leader_policy"], "Tenure");
    assert_eq!(view["ready_check"], Value::Null);
    assert_eq!(users(&view["requests"]), ["cy"]);
    // The seq is the party's own: what the server-side API reads.
    let info = server.handle.api().party(party).await.unwrap();
    assert_eq!(view["seq"], info.snapshot.seq);
    assert!(info.snapshot.seq > 0);

    // The session list and the stats show Bob waiting in his grace window.
    let bobs = get(addr, "/v1/sessions?user_id=bob").await;
    assert_eq!(bobs["sessions"][0]["connected"], false);
    assert_eq!(bobs["sessions"][0]["remote"], Value::Null);
    assert_eq!(bobs["sessions"][0]["quality_score"], Value::Null);
    assert_eq!(bobs["sessions"][0]["parties"], json!([party.to_string()]));
    let stats = get(addr, "/v1/stats").await;
    assert_eq!(
        stats["sessions"],
        json!({"alive": 3, "connected": 2, "in_grace": 1})
    );
    let listed = get(addr, "/v1/parties").await;
    assert_eq!(listed["parties"][0]["connected_members"], 1);
}

#[tokio::test]
async fn an_operator_kicks_a_member_and_closes_a_party() {
    let (server, addr) = start_admin(|_| {}).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (cy, mut cy_events) = server.client("cy").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    for member in [&bob, &cy] {
        member.join_party(party).await.unwrap();
        next_event(&mut ana_events).await;
    }
    next_event(&mut bob_events).await; // Cy joining

    let kick = format!("/v1/parties/{party}/kick");
    let kicked = admin("POST", addr, &kick, Some(json!({"user_id": "bob"})))
        .await
        .ok();
    assert_eq!(
        kicked,
        json!({"party_id": party.to_string(), "kicked": "bob"})
    );
    match next(&mut bob_events).await {
        Event::Kicked { party_id } => assert_eq!(party_id, party),
        other => panic!("expected Bob kicked, got {other:?}"),
    }
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::MemberLeft { .. }
    ));
    assert_eq!(
        users(&get(addr, &format!("/v1/parties/{party}")).await["members"]),
        ["ana", "cy"]
    );

    // A party rule refuses: Bob has no seat any more.
    let refused = admin("POST", addr, &kick, Some(json!({"user_id": "bob"}))).await;
    let error = refused.error(409);
    assert_eq!(error["code"], "MemberNotFound");
    assert_eq!(error["code_number"], 6);

    let closed = admin("DELETE", addr, &format!("/v1/parties/{party}"), None)
        .await
        .ok();
    assert_eq!(
        closed,
        json!({"party_id": party.to_string(), "closed": true})
    );
    for events in [&mut ana_events, &mut cy_events] {
        loop {
            match next(events).await {
                Event::PartyClosed { party_id } => {
                    assert_eq!(party_id, party);
                    break;
                }
                // Cy may still have Bob's leaving to read.
                Event::MemberLeft { .. } => {}
                other => panic!("expected the party closed, got {other:?}"),
            }
        }
    }
    assert_eq!(server.handle.party_count(), 0);
    admin("GET", addr, &format!("/v1/parties/{party}"), None)
        .await
        .error(404);
}

#[tokio::test]
async fn sessions_are_listed_and_an_operator_disconnects_one() {
    let (server, addr) = start_admin(|_| {}).await;
    let (ana, _ana_events) = server.client("ana").await;
    let (ana_phone, mut phone_events) = server.client("ana").await;
    let (_bob, _bob_events) = server.client("bob").await;

    let all = get(addr, "/v1/sessions").await;
    assert_eq!(users(&all["sessions"]), ["ana", "ana", "bob"]);
    assert_eq!(all["matched"], 3);
    let anas = get(addr, "/v1/sessions?user_id=ana").await;
    let mut expected = vec![
        ana.session_id().to_string(),
        ana_phone.session_id().to_string(),
    ];
    expected.sort();
    let ids: Vec<&str> = anas["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|session| session["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, expected);
    let cut = get(addr, "/v1/sessions?limit=1").await;
    assert_eq!(cut["sessions"].as_array().map(Vec::len), Some(1));
    assert_eq!(cut["matched"], 3);

    let phone = format!("/v1/sessions/{}", ana_phone.session_id());
    let one = get(addr, &phone).await;
    assert_eq!(one["user_id"], "ana");
    assert_eq!(one["username"], "ana-name");
    assert_eq!(one["connected"], true);
    assert!(
        one["remote"]
            .as_str()
            .is_some_and(|r| r.starts_with("127.0.0.1:")),
        "{one}"
    );

    let done = admin(
        "DELETE",
        addr,
        &format!("{phone}?reason=maintenance%20now"),
        None,
    )
    .await
    .ok();
    assert_eq!(
        done,
        json!({"session_id": ana_phone.session_id().to_string(), "disconnected": true})
    );
    match next(&mut phone_events).await {
        Event::Disconnected {
            reason: DisconnectReason::ClosedByServer { code, reason },
        } => assert_eq!((code, reason.as_str()), (9, "maintenance now")),
        other => panic!("expected the disconnect, got {other:?}"),
    }
    assert_eq!(get(addr, "/v1/sessions?user_id=ana").await["matched"], 1);
    admin("DELETE", addr, &phone, None).await.error(404);
}

#[tokio::test]
async fn the_admin_api_shares_the_metrics_listener_and_only_metrics_stay_open() {
    let (server, addr) = start_admin(|config| {
        config.metrics = config.admin;
    })
    .await;
    assert_eq!(server.metrics, Some(addr), "one listener for both");
    let (_ana, _ana_events) = server.client("ana").await;

    // Served without the admin token, parsed and checked.
    let metrics = scrape_metrics(&server).await;
    assert_eq!(metrics.count("partyline_sessions", &[]), 1);
    request("GET", addr, "/v1/stats", None, None)
        .await
        .error(401);
    assert_eq!(get(addr, "/v1/stats").await["sessions"]["alive"], 1);
    admin("GET", addr, "/nothing-here", None).await.error(404);
}

#[tokio::test]
async fn the_admin_api_is_not_served_without_a_good_token() {
    let bind = |token: Option<&str>| {
        let (tls, _, _) = generate_dev_identity().unwrap();
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), tls);
        config.admin = Some("127.0.0.1:0".parse().unwrap());
        config.admin_token = token.map(Into::into);
        Server::bind(config)
    };
    let message = |result: Result<Server, ServerError>| match result {
        Err(ServerError::Config(message)) => message,
        Err(other) => panic!("expected a configuration error, got {other}"),
        Ok(_) => panic!("expected a refusal"),
    };
    assert!(message(bind(None)).contains("needs a bearer token"));
    assert!(message(bind(Some("short"))).contains("at least 16 bytes"));
    assert!(message(bind(Some("sixteen bytes, but spaced"))).contains("visible ASCII"));

    // A config can be logged: the token is not in its Debug form.
    let (tls, _, _) = generate_dev_identity().unwrap();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), tls);
    config.admin_token = Some(TOKEN.into());
    let shown = format!("{config:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
}

#[tokio::test]
async fn a_party_shows_its_running_ready_check_policy_and_connection_quality() {
    let (server, addr) = start_admin(|config| {
        // A sample every 100 ms: measured moments after each Welcome.
        config.keep_alive = std::time::Duration::from_millis(100);
    })
    .await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, _bob_events) = server.client("bob").await;
    let quality = partyline_client::PartySettings {
        leader_policy: partyline_client::LeaderPolicy::ConnectionQuality,
        ..settings(true, 4, "")
    };
    let party = ana.create_party(quality).await.unwrap().party_id;
    bob.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;
    ana.start_ready_check(party, "go?", std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let path = format!("/v1/parties/{party}");
    let deadline = tokio::time::Instant::now() + WAIT;
    let view = loop {
        let view = get(addr, &path).await;
        let measured = view["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|member| member["quality"] != "Unknown");
        if measured {
            break view;
        }
        assert!(tokio::time::Instant::now() < deadline, "{view}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(view["leader_policy"], "ConnectionQuality");
    // Both on loopback: well under 80 ms.
    assert_eq!(view["members"][0]["quality"], "Good");
    assert_eq!(view["members"][1]["quality"], "Good");
    let check = &view["ready_check"];
    assert_eq!(check["message"], "go?");
    assert_eq!(check["timeout_ms"], 60_000);
    assert_eq!(check["started_by"]["user_id"], "ana");
    assert_eq!(users(&check["ready"]), ["ana"]);
    assert_eq!(users(&check["no_answer"]), ["bob"]);
    assert_eq!(check["not_ready"], json!([]));
    let session = get(addr, &format!("/v1/sessions/{}", bob.session_id())).await;
    assert!(
        session["quality_score"]
            .as_u64()
            .is_some_and(|score| score < 80),
        "{session}"
    );
    // Once it ends, the view shows none.
    ana.cancel_ready_check(party).await.unwrap();
    assert_eq!(get(addr, &path).await["ready_check"], Value::Null);
}
