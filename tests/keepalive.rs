//! The server's batched keep-alives (empty datagrams, PROTOCOL.md §5): they
//! alone keep a client that never pings connected, and without them the
//! same client is lost within the idle timeout. Real QUIC timers, so real
//! time: a few seconds per test.
mod support;

use partyline::server::ServerConfig;
use partyline_client::{Client, Event, Events};
use std::time::Duration;
use support::*;

const IDLE: Duration = Duration::from_millis(1000);

/// Ana never sends a PING of her own (her keep-alive is far beyond her idle
/// timeout) and sits in Bob's party, where he watches her connection.
async fn silent_ana_and_watching_bob(server: &TestServer) -> (Client, Events, Client, Events) {
    let mut config = server.config("ana");
    config.keep_alive = Duration::from_secs(60);
    config.idle_timeout = IDLE;
    config.auto_reconnect = false;
    let (ana, ana_events) = Client::connect(config).await.expect("ana connects");
    // Bob keeps himself alive, whatever the server does.
    let mut config = server.config("bob");
    config.keep_alive = IDLE / 5;
    config.idle_timeout = IDLE;
    let (bob, mut bob_events) = Client::connect(config).await.expect("bob connects");
    let party = bob
        .create_party(settings(true, 4, ""))
        .await
        .expect("bob creates")
        .party_id;
    ana.join_party(party).await.expect("ana joins");
    assert!(matches!(
        next(&mut bob_events).await,
        Event::MemberJoined { .. }
    ));
    (ana, ana_events, bob, bob_events)
}

fn server_keep_alive(period: Duration) -> impl FnOnce(&mut ServerConfig) {
    move |config| {
        config.idle_timeout = IDLE;
        config.keep_alive = period;
    }
}

#[tokio::test]
async fn a_client_that_never_pings_stays_connected_on_the_servers_keep_alives() {
    let server = start_with(server_keep_alive(Duration::from_millis(200))).await;
    let (ana, mut ana_events, _bob, mut bob_events) = silent_ana_and_watching_bob(&server).await;

    // Three idle timeouts of silence from Ana's side.
    tokio::time::sleep(3 * IDLE).await;
    assert_no_pending(&mut ana_events);
    assert_no_pending(&mut bob_events);
    let party = ana
        .create_party(settings(true, 2, "still here"))
        .await
        .expect("ana's session still answers");
    assert_eq!(party.label, "still here");
}

#[tokio::test]
async fn without_keep_alives_the_silent_client_is_lost_within_the_idle_timeout() {
    let server = start_with(server_keep_alive(Duration::ZERO)).await;
    let (_ana, _ana_events, _bob, mut bob_events) = silent_ana_and_watching_bob(&server).await;

    // The server notices within its idle timeout (QUIC may stretch it to
    // three PTOs, a few milliseconds here): Bob is told.
    let told = tokio::time::timeout(IDLE + Duration::from_millis(500), next(&mut bob_events))
        .await
        .expect("Bob hears of it within the idle timeout");
    match told {
        Event::MemberConnectionChanged {
            member, connected, ..
        } => {
            assert_eq!(member.user_id, "ana");
            assert!(!connected);
        }
        other => panic!("expected Ana's connection lost, got {other:?}"),
    }
}
