//! Several workers in one process (`serve --workers N`): real QUIC clients
//! spread over the workers by the kernel, one party across them, data and
//! events between them; each connection's packets steered to its worker
//! by its connection id, also after a NAT rebinding (through the relay);
//! the limits that hold for the process; a clean stop; and, as real
//! `partyline serve` processes, the fallback to one worker when the kernel
//! refuses the steering program, and the flags that cannot go together.
mod support;

use partyline::certs::generate_dev_identity;
use partyline::protocol::{CloseCode, Resumed};
use partyline::server::{ServerConfig, Workers, WorkersConfig, WorkersHandle};
use partyline_client::{
    Client, ClientConfig, ClientError, DisconnectReason, ErrorCode, Event, Events, LeaveReason,
    PartyId,
};
use rustls::pki_types::CertificateDer;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::exposition::Exposition;
use support::relay::Relay;
use support::*;

#[path = "support/child.rs"]
mod child;

/// A process of workers on 127.0.0.1:0, with /metrics.
struct Process {
    handle: WorkersHandle,
    certs: Vec<CertificateDer<'static>>,
}

fn start_workers(count: usize, tweak: impl FnOnce(&mut ServerConfig)) -> Process {
    let (tls, _, _) = generate_dev_identity().expect("dev certificate");
    let certs = tls.chain.clone();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), tls);
    config.metrics = Some("127.0.0.1:0".parse().unwrap());
    tweak(&mut config);
    let handle = Workers::start(config, WorkersConfig::new(count), None).expect("workers start");
    Process { handle, certs }
}

/// A member: its client, its events, and the worker that holds it.
struct Member {
    client: Arc<Client>,
    events: Events,
    worker: String,
}

impl Process {
    fn config(&self, user: &str) -> ClientConfig {
        ClientConfig::dev(
            self.handle.local_addr(),
            self.certs.clone(),
            user,
            &format!("{user}-name"),
        )
    }

    /// The worker (node name) each live session is on.
    async fn placement(&self) -> BTreeMap<String, String> {
        self.handle
            .api()
            .sessions()
            .await
            .into_iter()
            .map(|info| (info.session_id.to_string(), info.node))
            .collect()
    }

    /// Connects clients (`config` makes each one's settings) until every
    /// worker holds at least `each` of them: the kernel places a new
    /// connection by the client's own random first id, so it takes a few.
    async fn spread(&self, each: usize, config: impl Fn(&str) -> ClientConfig) -> Vec<Member> {
        let mut members = Vec::new();
        for n in 0..64 {
            let user = format!("player-{n}");
            let (client, events) = Client::connect(config(&user)).await.expect("connects");
            let placement = self.placement().await;
            let worker = placement[&client.session_id().to_string()].clone();
            members.push(Member {
                client: Arc::new(client),
                events,
                worker,
            });
            let per_worker = on_each_worker(&members);
            if per_worker.len() == self.handle.count() && per_worker.values().all(|n| *n >= each) {
                return members;
            }
        }
        panic!("64 clients did not reach every worker");
    }

    fn metrics(&self) -> Exposition {
        scrape_addr(self.handle.metrics_addr().expect("metrics"))
    }
}

fn on_each_worker(members: &[Member]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for member in members {
        *counts.entry(member.worker.clone()).or_insert(0) += 1;
    }
    counts
}

/// Everyone joins the first member's party; each member hears every
/// member that joined after it (events crossing workers).
async fn one_party(members: &mut [Member]) -> PartyId {
    let party = members[0]
        .client
        .create_party(settings(true, 64, "workers"))
        .await
        .unwrap()
        .party_id;
    for member in members.iter().skip(1) {
        member.client.join_party(party).await.unwrap();
    }
    let count = members.len();
    for (index, member) in members.iter_mut().enumerate() {
        for _ in index + 1..count {
            match next_event(&mut member.events).await {
                Event::MemberJoined { .. } => {}
                other => panic!("expected MemberJoined, got {other:?}"),
            }
        }
    }
    party
}

/// Every member sends a datagram marked `round` every 20 ms until every
/// member has one of this round from every other; nothing else may
/// arrive (no reconnect, no member leaving).
async fn data_round(members: &mut [Member], party: PartyId, round: u8) {
    let senders: Vec<_> = members
        .iter()
        .map(|member| {
            let client = member.client.clone();
            tokio::spawn(async move {
                loop {
                    let _ = client.send_data(party, 7, &[round]);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();
    let everyone: BTreeSet<String> = members
        .iter()
        .map(|m| m.client.session_id().to_string())
        .collect();
    for member in members.iter_mut() {
        let me = member.client.session_id().to_string();
        let mut heard = BTreeSet::new();
        heard.insert(me);
        while heard != everyone {
            let data = next_data(&mut member.events).await;
            if data.data.as_ref() == [round] {
                heard.insert(data.sender.session_id.to_string());
            }
        }
    }
    for sender in senders {
        sender.abort();
    }
}

#[tokio::test]
async fn members_on_every_worker_play_one_party_and_the_process_is_seen_whole() {
    let process = start_workers(2, |_| {});
    let mut members = process.spread(2, |user| process.config(user)).await;
    let count = members.len();
    let party = one_party(&mut members).await;
    data_round(&mut members, party, 1).await;

    // The party lives on one worker and seats members of both.
    let info = process.handle.api().party(party).await.unwrap();
    assert_eq!(info.snapshot.members.len(), count);
    assert_eq!(process.handle.party_count(), 1);

    let metrics = process.metrics();
    assert_eq!(metrics.get("partyline_workers", &[]), Some(2.0));
    assert_eq!(metrics.get("partyline_sessions", &[]), Some(count as f64));
    assert_eq!(metrics.get("partyline_parties", &[]), Some(1.0));
    let on_worker = |w: &str| {
        metrics
            .get("partyline_worker_sessions", &[("worker", w)])
            .unwrap_or_default() as usize
    };
    let placed = on_each_worker(&members);
    assert_eq!(on_worker("0"), placed["w0"]);
    assert_eq!(on_worker("1"), placed["w1"]);
    // Data crossed between the workers, and each connection's packets
    // reached its own.
    let crossed = |lane: &str| metrics.sum("partyline_worker_messages_total", &[("lane", lane)]);
    assert!(crossed("data").0 > 0.0, "party data crossed workers");
    assert!(crossed("control").0 > 0.0, "events crossed workers");
    assert_eq!(steered_wrong(&metrics), 0.0);
    // Every datagram in was counted by the worker that got it: the sum is
    // the process's.
    let data_in = metrics.count(
        "partyline_data_total",
        &[("direction", "in"), ("path", "datagram")],
    );
    assert!(data_in >= count as u64, "{data_in} datagrams in");
    assert_eq!(metrics.get("process_threads", &[]).map(|_| ()), Some(()));
}

#[tokio::test]
async fn with_retry_every_client_proves_its_address_and_plays_on() {
    // Every connection is asked for a Retry: the new id the worker gives
    // in it names that worker, so the client's second Initial comes back
    // to it.
    let process = start_workers(2, |config| config.retry_above = 0);
    let mut members = process.spread(2, |user| process.config(user)).await;
    let party = one_party(&mut members).await;
    data_round(&mut members, party, 1).await;
    let metrics = process.metrics();
    let retries = metrics.count("partyline_refusals_total", &[("cause", "retry")]);
    assert!(retries >= members.len() as u64, "{retries} retries");
    assert_eq!(steered_wrong(&metrics), 0.0);
}

#[tokio::test]
async fn the_admin_api_sees_and_acts_on_every_workers_sessions_and_parties() {
    const TOKEN: &str = "admin-token-for-the-workers-tests-0123";
    let process = start_workers(2, |config| {
        config.admin = config.metrics;
        config.admin_token = Some(TOKEN.into());
    });
    let mut members = process.spread(1, |user| process.config(user)).await;
    let party = one_party(&mut members).await;
    let admin = process.handle.admin_addr().expect("admin");
    let get = |path: &str| {
        let path = path.to_string();
        tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(WAIT))
                .build()
                .into();
            let mut response = agent
                .get(format!("http://{admin}{path}"))
                .header("Authorization", format!("Bearer {TOKEN}"))
                .call()
                .expect("200");
            let body = response.body_mut().read_to_string().expect("text");
            serde_json::from_str::<serde_json::Value>(&body).expect("JSON")
        })
    };
    let count = members.len() as u64;
    let stats = get("/v1/stats").await.unwrap();
    assert_eq!(stats["sessions"]["alive"], count, "{stats}");
    assert_eq!(stats["sessions"]["connected"], count, "{stats}");
    assert_eq!(stats["parties"]["alive"], 1, "{stats}");
    assert_eq!(stats["transport_connections"], count, "{stats}");
    let sessions = get("/v1/sessions").await.unwrap();
    assert_eq!(sessions["matched"], count, "{sessions}");
    let nodes: BTreeSet<&str> = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, BTreeSet::from(["w0", "w1"]));
    let parties = get("/v1/parties").await.unwrap();
    assert_eq!(parties["parties"][0]["members"], count, "{parties}");
    // A kick through worker 0's API reaches a member of either worker.
    let kicked = members
        .iter()
        .skip(1)
        .find(|m| m.worker == "w1")
        .or(members.get(1))
        .map(|m| m.client.presence().user_id)
        .unwrap();
    process.handle.api().kick(party, &kicked).await.unwrap();
    match next_event(&mut members[0].events).await {
        Event::MemberLeft { member, reason, .. } => {
            assert_eq!((member.user_id, reason), (kicked, LeaveReason::Kicked))
        }
        other => panic!("expected the kick, got {other:?}"),
    }
}

#[tokio::test]
async fn after_a_nat_rebinding_each_connections_packets_still_reach_its_worker() {
    let process = start_workers(2, |_| {});
    let relay = Relay::start(process.handle.local_addr()).await;
    // Several on each worker: were packets steered by their 4-tuple, about
    // half of the new ones would reach the other worker.
    let mut members = process
        .spread(3, |user| {
            let mut config = process.config(user);
            config.server_addr = relay.addr;
            config.auto_reconnect = false;
            config
        })
        .await;
    let party = one_party(&mut members).await;
    data_round(&mut members, party, 1).await;
    let before = remotes(&process).await;
    let placed = process.placement().await;

    relay.rebind().await;
    data_round(&mut members, party, 2).await;

    // The server saw every client move to a new address, on the worker
    // that held it, and nothing was steered elsewhere.
    let after = remotes(&process).await;
    for (session, remote) in &after {
        assert_ne!(Some(remote), before.get(session), "session {session} moved");
    }
    assert_eq!(after.len(), members.len());
    assert_eq!(process.placement().await, placed);
    assert_eq!(steered_wrong(&process.metrics()), 0.0);
    for member in &mut members {
        assert_no_pending(&mut member.events);
    }
}

/// Packets that reached a worker with another worker's connection id, in
/// the process (each worker's figure is there).
fn steered_wrong(metrics: &Exposition) -> f64 {
    let (sum, series) = metrics.sum(
        "partyline_worker_unknown_connection_packets_total",
        &[("named", "another_worker")],
    );
    assert_eq!(series, 2, "one per worker");
    sum
}

#[tokio::test]
async fn a_lost_connection_resumes_on_whichever_worker_it_reaches() {
    let process = start_workers(2, fast_loss_detection);
    let relay = Relay::start(process.handle.local_addr()).await;
    let (ana, mut ana_events) = Client::connect(process.config("ana")).await.unwrap();
    let mut config = process.config("bob");
    config.server_addr = relay.addr;
    config.idle_timeout = FAST_IDLE;
    config.keep_alive = Duration::from_millis(200);
    config.reconnect_for = Duration::from_secs(20);
    let (bob, mut bob_events) = Client::connect(config).await.unwrap();
    let session = bob.session_id().to_string();
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    // The new connection lands on a worker by its own first id: on the
    // same one, the session is taken back with an exact replay; on the
    // other, the worker that held it hands it over (as a node of a
    // cluster does), with snapshots. Until both have happened.
    let mut paths = BTreeSet::new();
    for _ in 0..12 {
        let before = process.placement().await[&session].clone();
        relay.blackhole(true);
        // Past the data of the last round, still arriving.
        loop {
            match next(&mut bob_events).await {
                Event::Data(_) => continue,
                Event::Reconnecting {
                    reason: DisconnectReason::ConnectionLost(_),
                } => break,
                other => panic!("expected the loss, got {other:?}"),
            }
        }
        relay.blackhole(false);
        match next(&mut bob_events).await {
            Event::Resumed => {}
            other => panic!("expected Resumed, got {other:?}"),
        }
        assert_eq!(bob.session_id().to_string(), session, "the same session");
        let moved = process.placement().await[&session] != before;
        match (moved, &bob.welcome().resumed) {
            (false, Resumed::Replayed { .. }) | (true, Resumed::Snapshots { .. }) => {}
            (moved, other) => panic!("moved {moved}, resumed by {other:?}"),
        }
        paths.insert(moved);
        // Still in the party, both ways.
        for (from, to) in [(&ana, &mut bob_events), (&bob, &mut ana_events)] {
            let deadline = Instant::now() + WAIT;
            'heard: loop {
                assert!(Instant::now() < deadline, "no party data after the resume");
                let _ = from.send_data(party, 3, b"still here");
                let wait = tokio::time::timeout(Duration::from_millis(100), next(to));
                if let Ok(Event::Data(data)) = wait.await {
                    if data.data.as_ref() == b"still here" {
                        break 'heard;
                    }
                }
            }
        }
        if paths.len() == 2 {
            return;
        }
    }
    panic!("12 resumes all took one path: {paths:?}");
}

/// Each connected session's remote address, by session.
async fn remotes(process: &Process) -> BTreeMap<String, SocketAddr> {
    process
        .handle
        .api()
        .sessions()
        .await
        .into_iter()
        .filter_map(|info| Some((info.session_id.to_string(), info.remote?)))
        .collect()
}

#[tokio::test]
async fn the_limits_on_sessions_hold_for_the_process_not_each_worker() {
    let process = start_workers(2, |config| {
        config.max_sessions_per_user = 1;
        config.max_sessions = 3;
    });
    let (_ana, _ana_events) = Client::connect(process.config("ana")).await.unwrap();
    // Each attempt lands on a worker by its own first id: eight refusals
    // mean the other worker refused too (or 1 in 256).
    for _ in 0..8 {
        let refused = Client::connect(process.config("ana")).await.map(|_| ());
        assert_eq!(code(refused), ErrorCode::RateLimited);
    }
    let (_bob, _) = Client::connect(process.config("bob")).await.unwrap();
    let (_cy, _) = Client::connect(process.config("cy")).await.unwrap();
    for n in 0..8 {
        let mut config = process.config(&format!("late-{n}"));
        config.auto_reconnect = false;
        match Client::connect(config).await {
            Err(ClientError::Closed(DisconnectReason::ClosedByServer { code, .. })) => {
                assert_eq!(code, CloseCode::ServerFull as u64)
            }
            Err(other) => panic!("expected a ServerFull close, got {other}"),
            Ok(_) => panic!("a fourth session in a process of at most 3"),
        }
    }
}

#[tokio::test]
async fn a_stop_tells_every_member_the_server_shuts_down_and_nothing_else() {
    let process = start_workers(2, |_| {});
    let mut members = process.spread(2, |user| process.config(user)).await;
    one_party(&mut members).await;
    let Process { handle, .. } = process;
    tokio::time::timeout(Duration::from_secs(10), handle.shutdown())
        .await
        .expect("the workers stop within their drain timeout");
    // No member heard another leave first: the workers stopped hearing
    // each other before any said goodbye.
    for member in &mut members {
        match next(&mut member.events).await {
            Event::Disconnected { reason } => assert_eq!(reason, DisconnectReason::ServerShutdown),
            other => panic!("expected the shutdown, got {other:?}"),
        }
    }
}

/// A scratch directory for one test's child process.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("partyline-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A child process, killed when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines logged so far (those already waiting).
fn logged(log: &std::sync::mpsc::Receiver<String>, until: &str) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    let mut lines = Vec::new();
    while Instant::now() < deadline {
        match log.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let done = line.contains(until);
                lines.push(line);
                if done {
                    return lines;
                }
            }
            Err(_) => continue,
        }
    }
    panic!("no line with {until:?} in {lines:#?}")
}

#[tokio::test]
async fn serve_with_workers_says_so_and_serves() {
    let dir = scratch("workers-serve");
    let (child, addr, log) =
        child::serve_logged(&dir, &["--workers", "2", "--metrics", "127.0.0.1:0"]);
    let _child = Killed(child);
    let lines = logged(&log, "serving Prometheus metrics");
    let listening = lines.iter().find(|l| l.contains("listening")).unwrap();
    assert!(listening.contains("workers=2"), "{listening}");
    let metrics: SocketAddr = lines
        .last()
        .and_then(|line| line.split("metrics=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.parse().ok())
        .expect("the metrics address");
    let certs = partyline_client::load_certificates(dir.join("cert.pem")).unwrap();
    let (ana, _) = Client::connect(ClientConfig::dev(addr, certs, "ana", "Ana"))
        .await
        .unwrap();
    ana.create_party(settings(true, 4, "")).await.unwrap();
    let scraped = tokio::task::spawn_blocking(move || scrape_addr(metrics))
        .await
        .unwrap();
    assert_eq!(scraped.get("partyline_workers", &[]), Some(2.0));
    assert_eq!(scraped.get("partyline_parties", &[]), Some(1.0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn when_the_kernel_refuses_the_steering_program_one_worker_serves_and_says_why() {
    let dir = scratch("workers-refused");
    let (child, addr, log) = child::serve_logged(
        &dir,
        &[
            "--workers",
            "2",
            "--refuse-steering",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let _child = Killed(child);
    let lines = logged(&log, "serving Prometheus metrics");
    let refused = lines
        .iter()
        .find(|l| l.contains("refused the packet steering program"))
        .unwrap_or_else(|| panic!("no refusal logged: {lines:#?}"));
    assert!(refused.contains("WARN"), "{refused}");
    assert!(refused.contains("serving with one worker"), "{refused}");
    let listening = lines.iter().find(|l| l.contains("listening")).unwrap();
    assert!(!listening.contains("workers="), "{listening}");
    let metrics: SocketAddr = lines
        .last()
        .and_then(|line| line.split("metrics=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.parse().ok())
        .expect("the metrics address");
    let certs = partyline_client::load_certificates(dir.join("cert.pem")).unwrap();
    let (ana, _) = Client::connect(ClientConfig::dev(addr, certs, "ana", "Ana"))
        .await
        .unwrap();
    ana.create_party(settings(true, 4, "")).await.unwrap();
    let scraped = tokio::task::spawn_blocking(move || scrape_addr(metrics))
        .await
        .unwrap();
    assert_eq!(scraped.get("partyline_workers", &[]), None, "one server");
    assert_eq!(scraped.get("partyline_parties", &[]), Some(1.0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `partyline serve` with `args`: it must refuse them as a usage error.
fn refused_usage(args: &[&str]) -> String {
    let output = std::process::Command::new(child::BIN)
        .arg("serve")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("partyline runs");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn workers_refuse_a_cluster_another_thread_count_and_too_many() {
    let cluster = refused_usage(&[
        "--workers",
        "2",
        "--cluster",
        "nats://127.0.0.1:1",
        "--node",
        "a",
    ]);
    assert!(cluster.contains("cannot join a cluster yet"), "{cluster}");
    let threads = refused_usage(&["--workers", "2", "--threads", "4"]);
    assert!(threads.contains("each worker is one thread"), "{threads}");
    let many = refused_usage(&["--workers", "257"]);
    assert!(many.contains("--workers"), "{many}");
}
