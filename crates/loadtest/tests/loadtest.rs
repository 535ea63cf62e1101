//! Smoke test of the load generator: a short run against an in-process
//! server. Checks that every message arrived and the report is complete;
//! no timing assertions (speed is for BENCHMARKS.md).
#[path = "../../../tests/support/mod.rs"]
mod support;

use partyline_loadtest::{bare, run, LoadtestConfig, ProgressMode};
use std::time::Duration;
use support::*;

fn load(server: &TestServer) -> LoadtestConfig {
    LoadtestConfig {
        server: server.addr,
        servers: Vec::new(),
        cluster: Default::default(),
        certs: server.certs.clone(),
        parties: 6,
        party_size: 3,
        rate_hz: 20.0,
        payload: 64,
        warmup: Duration::from_millis(300),
        duration: Duration::from_millis(1500),
        reliable: false,
        connect_rate: 1000.0,
        idle_sessions: 0,
        // In-process: the "server" figures include the generator, but every
        // field of the report is exercised.
        server_pid: Some(std::process::id()),
        server_metrics: server.metrics,
        server_metrics_interval: Duration::from_secs(1),
        server_threads: 2,
        generator_threads: 2,
        endpoints: 2,
        progress: ProgressMode::Quiet,
        ack_frequency: Some(partyline_client::AckFrequency::PARTY),
        token_secret: None,
        keep_alive: None,
        idle_timeout: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_datagram_run_delivers_everything_and_reports_it_all() {
    let server = start_with(|c| c.metrics = Some("127.0.0.1:0".parse().unwrap())).await;
    let report = run(load(&server)).await.expect("the run completes");
    assert_eq!(report.load.sessions, 18);
    let sends = &report.sends;
    // 18 senders at 20 Hz for 1.5 s: every due send is offered, made or missed.
    assert_eq!(sends.offered, 18 * 30);
    assert_eq!(sends.offered, sends.sent + sends.missed + sends.failed);
    assert_eq!(sends.failed, 0);
    assert!(sends.lateness_ms.is_some());
    let delivery = &report.delivery;
    assert_eq!(delivery.expected, sends.sent * 2);
    assert_eq!(
        delivery.received, delivery.expected,
        "every measured datagram arrived on loopback"
    );
    assert_eq!((delivery.duplicates, delivery.sdk_event_drops), (0, 0));
    assert_eq!(report.latency.len(), delivery.received);
    let latency = report.latency_ms.expect("latency measured");
    assert!(latency.p99 > 0.0 && latency.max >= latency.p99);
    let control = &report.control;
    assert!(control.handshake.is_some() && control.create.is_some() && control.join.is_some());
    assert!(
        control.accept.is_some(),
        "half the parties are closed: accepts happened"
    );
    assert!(control.form.is_some());
    assert!(report.server.is_some() && report.server_figures.peak_rss_bytes.is_some());
    assert!(report.server_figures.cpu_per_delivered_us.is_some());
    assert!(report.generator.is_some());
    // The server's QUIC counters, scraped at the window's edges.
    let transport = report.server_transport.expect("server metrics scraped");
    assert!(transport.datagrams_handed > 0 && transport.datagram_frames_sent > 0);
    assert!(transport.packets_sent > 0);
    // 1.5 s of window: one whole second read in the timeline.
    assert_eq!(report.server_transport_timeline.len(), 1);
    assert!(json_has_transport(&report.to_json()));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("valid JSON");
    assert_eq!(json["delivery"]["ratio"], 1.0);
    assert_eq!(json["sends"]["offered"], 540);
    assert!(json["latency_ms"]["p99"].is_f64());
    assert!(json["generator_bound"].is_array());
    assert!(json["control"]["handshake"]["p50"].is_f64());
    assert!(report.to_svg().starts_with("<svg"));
    assert!(report.to_text().contains("100.0000%"));
    // The parties were torn down with the sessions.
    for _ in 0..100 {
        if server.handle.party_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.handle.party_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_several_servers_spreads_parties_and_adds_up_every_process() {
    // Two "nodes" that are the same in-process server: the placement and
    // the accounting are exercised, not a cluster.
    let server = start_with(|c| c.metrics = Some("127.0.0.1:0".parse().unwrap())).await;
    let mut config = load(&server);
    config.servers = vec![server.addr, server.addr];
    let pid = std::process::id();
    let named = |name: &str| partyline_loadtest::cluster::Named {
        name: name.to_string(),
        value: pid,
    };
    config.cluster.processes = vec![named("a"), named("b"), named("nats")];
    config.cluster.servers = 2;
    if let Some(metrics) = server.metrics {
        config.cluster.node_metrics = vec![partyline_loadtest::cluster::Named {
            name: "a".to_string(),
            value: metrics,
        }];
    }
    let report = run(config).await.expect("the run completes");
    assert_eq!(report.delivery.received, report.delivery.expected);
    let cluster = report.cluster.as_ref().expect("a cluster part");
    // 6 parties of 3 over 2 nodes: member j of party p on (p + j) % 2.
    assert_eq!(cluster.sessions_per_server, [9, 9]);
    assert_eq!(cluster.parties_led_per_server, [3, 3]);
    let roles: Vec<&str> = cluster.processes.iter().map(|p| p.role).collect();
    assert_eq!(roles, ["server", "server", "extra"]);
    let total = cluster.total_cpu_s.expect("every process sampled");
    let summed: f64 = cluster.processes.iter().map(|p| p.cpu_s).sum();
    assert!((total - summed).abs() < 1e-9);
    let per = cluster
        .total_cpu_per_delivered_us
        .expect("messages delivered");
    assert!((per - total / report.delivery.received as f64 * 1e6).abs() < 1e-6);
    // Not in a cluster: no cluster counters, but its QUIC counters.
    assert_eq!(cluster.nodes.len(), 1);
    assert!(cluster.nodes[0].cluster.is_none() && cluster.nodes[0].transport.is_some());
    assert!(cluster.published.is_none() && cluster.nats.is_none());
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("valid JSON");
    assert_eq!(json["cluster"]["sessions_per_server"][1], 9);
    assert!(report.to_text().contains("total CPU per delivered message"));
    // A plain run's JSON is as before: no cluster part at all.
    let plain = run(load(&server)).await.expect("the run completes");
    assert!(plain.cluster.is_none() && !plain.to_json().contains("\"cluster\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reliable_run_delivers_everything() {
    let server = start().await;
    let mut config = load(&server);
    config.reliable = true;
    config.parties = 2;
    let report = run(config).await.expect("the run completes");
    assert!(report.sends.sent > 0);
    assert_eq!(report.delivery.received, report.delivery.expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_connect_and_report_memory() {
    let server = start().await;
    let mut config = load(&server);
    config.idle_sessions = 50;
    config.rate_hz = 0.0;
    config.duration = Duration::from_millis(200);
    let report = run(config).await.expect("the run completes");
    assert_eq!(report.load.sessions, 50);
    assert_eq!(report.sends.offered, 0);
    assert_eq!(
        report.delivery.ratio, None,
        "nothing expected: no ratio, no NaN"
    );
    assert!(report.server_figures.rss_per_session_bytes.is_some());
    assert!(report.to_json().contains("\"ratio\":null"));
}

#[tokio::test]
async fn nonsense_loads_are_refused() {
    let server = start().await;
    let mut config = load(&server);
    config.payload = 8;
    assert!(run(config).await.is_err());
    let mut config = load(&server);
    config.parties = 0;
    assert!(run(config).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_closed_party_forms_under_the_command_rate_limit() {
    // Party 1 of 2 is closed: its leader accepts 59 requests in a burst,
    // beyond a command rate of 10/s (burst 20); the generator waits and retries.
    let server = start_with(|c| c.command_rate = 10.0).await;
    let mut config = load(&server);
    config.parties = 2;
    config.party_size = 60;
    config.rate_hz = 0.0;
    config.duration = Duration::from_millis(100);
    let report = run(config)
        .await
        .expect("the parties form despite the limit");
    assert!(report.control.accept.is_some());
    assert!(
        server.handle.rate_limited() > 0,
        "the limit was actually hit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bare_relay_carries_the_same_load_with_the_same_accounting() {
    let (tls, _, _) = partyline::certs::generate_dev_identity().expect("dev certificate");
    let certs = tls.chain.clone();
    let config = partyline::server::ServerConfig::new("127.0.0.1:0".parse().unwrap(), tls);
    let endpoint = bare::bind_bare_relay(&config).expect("relay binds");
    let addr = endpoint.local_addr().expect("local addr");
    let relay = tokio::spawn(bare::serve_bare_relay(endpoint, 3));
    let figures = bare::measure(bare::BareLoad {
        server: addr,
        certs,
        sessions: 9,
        group_size: 3,
        rate_hz: 20.0,
        payload: 64,
        warmup: Duration::from_millis(200),
        duration: Duration::from_millis(1000),
        endpoints: 2,
        server_pid: Some(std::process::id()),
        server_threads: 2,
        generator_threads: 2,
    })
    .await
    .expect("the bare run completes");
    relay.abort();
    assert_eq!(figures.sends.offered, 9 * 20);
    assert_eq!(figures.delivery.expected, figures.sends.sent * 2);
    assert_eq!(figures.delivery.received, figures.delivery.expected);
    assert_eq!(figures.delivery.duplicates, 0);
    assert!(figures.latency_ms.is_some() && figures.cpu_per_delivered_us.is_some());
}

fn json_has_transport(json: &str) -> bool {
    let json: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
    json["server_transport"]["packets_lost"].is_u64()
        && json["server_transport_timeline"][0][1]["congestion_events"].is_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_mode_server_is_driven_with_minted_tokens() {
    // At least 32 bytes: a server refuses a shorter token secret.
    let secret = b"loadtest-secret-of-32-bytes-or-more".to_vec();
    let server = start_with(|c| {
        c.auth = partyline::server::AuthMode::Token {
            secret: secret.clone(),
            previous: None,
        }
    })
    .await;
    // Dev identities are refused by such a server...
    let refused = run(LoadtestConfig {
        parties: 1,
        ..load(&server)
    })
    .await;
    assert!(refused.is_err(), "dev identities must be refused");
    // ...tokens minted with its secret are not.
    let report = run(LoadtestConfig {
        parties: 2,
        duration: Duration::from_millis(500),
        token_secret: Some(secret.clone()),
        ..load(&server)
    })
    .await
    .expect("the run completes with tokens");
    assert_eq!(report.load.sessions, 6);
    assert_eq!(report.delivery.received, report.delivery.expected);
}

#[test]
fn bad_arguments_exit_2_before_any_server_starts() {
    let bin = env!("CARGO_BIN_EXE_partyline-loadtest");
    let cases: &[&[&str]] = &[
        &["--rate", "inf"],
        &["--rate", "-1"],
        &["--duration", "0"],
        &["--party-size", "0"],
        &["--party-size", "257"],
        &["--payload", "3"],
        &["--parties", "0"],
        &["--connect-rate", "0"],
    ];
    for args in cases {
        let output = std::process::Command::new(bin)
            // A server binary that does not exist: starting one would fail
            // with another message and exit code 1.
            .args(["--server-bin", "/nonexistent/partyline", "--json"])
            .args(*args)
            .output()
            .expect("the generator runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("starting"), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}: no report");
    }
}
