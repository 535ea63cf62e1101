//! Smoke test of the load generator: a short run against an in-process
//! server. Checks that every message arrived and the report is complete;
//! no timing assertions (speed is for BENCHMARKS.md).
#[path = "../../../tests/support/mod.rs"]
mod support;

use partyline_loadtest::{run, LoadtestConfig, ProgressMode};
use std::time::Duration;
use support::*;

fn load(server: &TestServer) -> LoadtestConfig {
    LoadtestConfig {
        server: server.addr,
        certs: server.certs.clone(),
        parties: 6,
        party_size: 3,
        rate_hz: 20.0,
        payload: 64,
        duration: Duration::from_millis(1500),
        reliable: false,
        connect_rate: 1000.0,
        idle_sessions: 0,
        // In-process: the "server" figures include the generator, but every
        // field of the report is exercised.
        server_pid: Some(std::process::id()),
        endpoints: 2,
        progress: ProgressMode::Quiet,
        ack_frequency: Some(partyline_client::AckFrequency::PARTY),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_datagram_run_delivers_everything_and_reports_it_all() {
    let server = start().await;
    let report = run(load(&server)).await.expect("the run completes");
    assert_eq!(report.sessions, 18);
    assert!(report.sent > 0);
    assert_eq!(report.expected, report.sent * 2);
    assert_eq!(
        report.received, report.expected,
        "every datagram arrived on loopback"
    );
    assert_eq!(report.latency.count(), report.received);
    assert!(report.latency.quantile(0.99) > 0);
    assert!(report.handshake.1 > Duration::ZERO);
    assert!(report.create.0 > Duration::ZERO && report.join.0 > Duration::ZERO);
    assert!(
        report.accept.0 > Duration::ZERO,
        "half the parties are closed: accepts happened"
    );
    assert!(report.server_steady_cpu.is_some() && report.server_peak_rss.is_some());
    assert!(report.own_total_cpu.is_some());
    let json = report.to_json();
    for key in [
        "\"latency_ms\"",
        "\"delivery_ratio\":1.000000",
        "\"handshake\"",
        "\"server_peak_rss_bytes\"",
    ] {
        assert!(json.contains(key), "{key} in {json}");
    }
    assert!(report.to_svg().starts_with("<svg"));
    assert!(report.to_text().contains("delivery 100.0000%"));
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
async fn a_reliable_run_delivers_everything() {
    let server = start().await;
    let mut config = load(&server);
    config.reliable = true;
    config.parties = 2;
    let report = run(config).await.expect("the run completes");
    assert!(report.sent > 0);
    assert_eq!(report.received, report.expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_connect_and_report_memory() {
    let server = start().await;
    let mut config = load(&server);
    config.idle_sessions = 50;
    config.rate_hz = 0.0;
    config.duration = Duration::from_millis(200);
    let report = run(config).await.expect("the run completes");
    assert_eq!(report.sessions, 50);
    assert_eq!(report.sent, 0);
    assert!(report.server_rss_per_session.is_some());
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
    assert!(report.accept.0 > Duration::ZERO);
    assert!(
        server.handle.rate_limited() > 0,
        "the limit was actually hit"
    );
}
