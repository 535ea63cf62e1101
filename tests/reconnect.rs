//! The SDK's own reconnection: on a network loss it reconnects with backoff,
//! resumes, and tells the application what happened.
mod support;

use partyline::client::ClientEvent;
use partyline::protocol::{ErrorCode, Event, LeaveReason, Resumed};
use std::time::Duration;
use support::relay::Relay;
use support::*;

#[tokio::test]
async fn the_sdk_reconnects_resumes_and_replays_by_itself() {
    let server = start_with(fast_loss_detection).await;
    let relay = Relay::start(server.addr).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = via_relay(&server, &relay, "bob", true).await;
    let session = bob.session_id();
    let party = ana.create_party(true, 4, "").await.unwrap().party_id;
    bob.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;

    relay.blackhole(true);
    expect_lost(&mut bob_events).await;
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::MemberConnection {
            connected: false,
            ..
        }
    ));
    ana.update_party(party, None, Some("while away".into()), None)
        .await
        .unwrap();
    relay.blackhole(false);

    match next(&mut bob_events).await {
        ClientEvent::Resumed(Resumed::Replayed { count }) => assert_eq!(count, 1),
        other => panic!("expected Resumed, got {other:?}"),
    }
    match next_event(&mut bob_events).await {
        Event::Updated { label, .. } => assert_eq!(label, "while away"),
        other => panic!("expected the missed update, got {other:?}"),
    }
    assert_eq!(bob.session_id(), session, "the same session");
    assert_eq!(bob.get_party(party).await.unwrap().members.len(), 2);
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::Updated { .. }
    ));
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::MemberConnection {
            connected: true,
            ..
        }
    ));
}

#[tokio::test]
async fn a_missed_window_is_reported_and_a_new_session_started() {
    let server = start_with(|c| {
        fast_loss_detection(c);
        c.grace = Duration::from_millis(1000);
    })
    .await;
    let relay = Relay::start(server.addr).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = via_relay(&server, &relay, "bob", true).await;
    let old_session = bob.session_id();
    let party = ana.create_party(true, 4, "").await.unwrap().party_id;
    bob.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;

    relay.blackhole(true);
    expect_lost(&mut bob_events).await;
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::MemberConnection {
            connected: false,
            ..
        }
    ));
    match next_event(&mut ana_events).await {
        Event::MemberLeft { reason, .. } => assert_eq!(reason, LeaveReason::SessionEnded),
        other => panic!("expected the window to end, got {other:?}"),
    }
    relay.blackhole(false);
    match next(&mut bob_events).await {
        ClientEvent::SessionLost { new_session } => {
            assert_ne!(new_session, old_session);
            assert_eq!(bob.session_id(), new_session);
        }
        other => panic!("expected SessionLost, got {other:?}"),
    }
    let error = bob.get_party(party).await.unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::NotMember));
}

#[tokio::test]
async fn with_auto_reconnect_off_the_application_decides() {
    let server = start_with(fast_loss_detection).await;
    let relay = Relay::start(server.addr).await;
    let (_bob, mut bob_events) = via_relay(&server, &relay, "bob", false).await;
    relay.blackhole(true);
    expect_lost(&mut bob_events).await;
    let after = tokio::time::timeout(WAIT, bob_events.next())
        .await
        .expect("the stream ends");
    assert_eq!(
        after, None,
        "nothing follows: no reconnection was attempted"
    );
}
