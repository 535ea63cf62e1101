//! The SDK's reconnection keeps its promise: a network that comes back
//! inside the server's grace window gets the session back, even when it
//! comes back late in the window. Each attempt's handshake has its own
//! limit, so QUIC's slow resends of a first packet (1, 3, 7 s) do not
//! decide when the next try goes out.
mod support;

use partyline_client::{Client, DisconnectReason, Event, PartySettings};
use std::time::{Duration, Instant};
use support::relay::Relay;
use support::*;

/// The server's grace window in this test (`--grace 6`).
const GRACE: Duration = Duration::from_secs(6);
/// How long before the window closes the network comes back.
const BACK_BEFORE_THE_END: Duration = Duration::from_millis(2500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_back_2_5_s_before_the_window_closes_resumes_the_session() {
    let server = start_with(|config| {
        // Both sides notice a silent connection after 1 s.
        config.idle_timeout = Duration::from_secs(1);
        config.keep_alive = Duration::from_millis(200);
        config.grace = GRACE;
    })
    .await;
    let relay = Relay::start(server.addr).await;
    let (ana, mut ana_events) = server.client("ana").await;
    // The client's own idle timeout stays at its default (10 s): it applies
    // to a handshake under way, which is what used to hold attempts back.
    let mut config = server.config("bob");
    config.server_addr = relay.addr;
    let (bob, mut bob_events) = Client::connect(config).await.expect("bob connects");
    let session = bob.session_id();
    let party = ana
        .create_party(PartySettings::default())
        .await
        .expect("party")
        .party_id;
    bob.join_party(party).await.expect("bob joins");

    relay.blackhole(true);
    // The window opens when the server notices: ana sees bob disconnected.
    let window_opened = loop {
        if let Event::MemberConnectionChanged {
            connected: false, ..
        } = next(&mut ana_events).await
        {
            break Instant::now();
        }
    };
    match next(&mut bob_events).await {
        Event::Reconnecting {
            reason: DisconnectReason::ConnectionLost(_),
        } => {}
        other => panic!("expected bob to reconnect, got {other:?}"),
    }
    tokio::time::sleep_until((window_opened + GRACE - BACK_BEFORE_THE_END).into()).await;
    relay.blackhole(false);

    let resumed = loop {
        match next(&mut bob_events).await {
            Event::Resumed => break Instant::now(),
            Event::SessionLost { .. } => panic!(
                "the network came back {BACK_BEFORE_THE_END:?} before the window closed, \
                 but the session was lost {:?} after it opened",
                window_opened.elapsed()
            ),
            _ => {}
        }
    };
    assert!(resumed < window_opened + GRACE, "resumed inside the window");
    assert_eq!(bob.session_id(), session, "the same session");
    assert_eq!(
        bob.get_party(party)
            .await
            .expect("bob's party")
            .members
            .len(),
        2
    );
    println!(
        "back {:?} after the network returned",
        resumed - (window_opened + GRACE - BACK_BEFORE_THE_END)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_while_reconnecting_stops_the_reconnection() {
    let server = start_with(|config| {
        config.idle_timeout = Duration::from_secs(1);
        config.keep_alive = Duration::from_millis(200);
    })
    .await;
    let relay = Relay::start(server.addr).await;
    let mut config = server.config("bob");
    config.server_addr = relay.addr;
    let (bob, mut bob_events) = Client::connect(config).await.expect("bob connects");
    relay.blackhole(true);
    match next(&mut bob_events).await {
        Event::Reconnecting { .. } => {}
        other => panic!("expected bob to reconnect, got {other:?}"),
    }
    // The first attempt is under way (its handshake black-holed).
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::time::timeout(Duration::from_secs(1), bob.close())
        .await
        .expect("close returns at once");
    // Told at once, while the attempt's handshake is still black-holed.
    match next_within(&mut bob_events, Duration::from_secs(1)).await {
        Event::Disconnected {
            reason: DisconnectReason::ClosedLocally,
        } => {}
        other => panic!("expected the close to end it, got {other:?}"),
    }
    // Nothing follows once the path is back: the stream ends, and no
    // attempt comes back to life.
    relay.blackhole(false);
    let after = tokio::time::timeout(Duration::from_secs(3), bob_events.next())
        .await
        .expect("the events end");
    assert!(after.is_none(), "after the close: {after:?}");
    assert_eq!(bob.closed(), Some(DisconnectReason::ClosedLocally));
}
