//! The SDK's own reconnection: on a network loss it reconnects with backoff,
//! resumes, and tells the application what happened.
mod support;

use partyline::protocol::Resumed;
use partyline_client::{ErrorCode, Event, LeaveReason, PartyUpdate};
use std::time::Duration;
use support::relay::Relay;
use support::*;

/// These tests let the SDK reconnect by itself.
const AUTO: bool = true;

#[tokio::test]
async fn the_sdk_reconnects_resumes_and_replays_by_itself() {
    let server = start_with(fast_loss_detection).await;
    let relay = Relay::start(server.addr).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = via_relay(&server, &relay, "bob", AUTO).await;
    let session = bob.session_id();
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;

    relay.blackhole(true);
    expect_lost(&mut bob_events, AUTO).await;
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::MemberConnectionChanged {
            connected: false,
            ..
        }
    ));
    ana.update_party(
        party,
        PartyUpdate {
            label: Some("while away".into()),
            ..PartyUpdate::default()
        },
    )
    .await
    .unwrap();
    relay.blackhole(false);

    match next(&mut bob_events).await {
        Event::Resumed => {}
        other => panic!("expected Resumed, got {other:?}"),
    }
    // The SDK hides the replay count; the Welcome of the new connection
    // still carries it.
    assert_eq!(bob.welcome().resumed, Resumed::Replayed { count: 1 });
    match next_event(&mut bob_events).await {
        Event::PartyUpdated { party: now } => assert_eq!(now.label, "while away"),
        other => panic!("expected the missed update, got {other:?}"),
    }
    // The SDK counted the replayed event: a second resume would start
    // after it.
    assert_eq!(
        bob.resume_ticket().last_event_seq,
        bob.welcome().last_event_seq
    );
    assert_eq!(bob.session_id(), session, "the same session");
    assert_eq!(bob.get_party(party).await.unwrap().members.len(), 2);
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::PartyUpdated { .. }
    ));
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::MemberConnectionChanged {
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
    let (bob, mut bob_events) = via_relay(&server, &relay, "bob", AUTO).await;
    let old_session = bob.session_id();
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;

    relay.blackhole(true);
    expect_lost(&mut bob_events, AUTO).await;
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::MemberConnectionChanged {
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
        Event::SessionLost {
            lost_parties,
            new_session,
        } => {
            assert_eq!(lost_parties, vec![party]);
            assert_ne!(new_session, old_session);
            assert_eq!(bob.session_id(), new_session);
        }
        other => panic!("expected SessionLost, got {other:?}"),
    }
    let error = bob.get_party(party).await.unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::NotMember));
    assert!(bob.parties().is_empty(), "the roster forgot the lost party");
}

#[tokio::test]
async fn with_auto_reconnect_off_the_application_decides() {
    let server = start_with(fast_loss_detection).await;
    let relay = Relay::start(server.addr).await;
    let (_bob, mut bob_events) = via_relay(&server, &relay, "bob", false).await;
    relay.blackhole(true);
    expect_lost(&mut bob_events, false).await;
    let after = tokio::time::timeout(WAIT, bob_events.next())
        .await
        .expect("the stream ends");
    assert_eq!(
        after, None,
        "nothing follows: no reconnection was attempted"
    );
}
