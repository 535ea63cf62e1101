//! Admission: beyond --max-sessions a new connection is closed with a clear
//! reason, and the sessions already in are untouched.
mod support;

use partyline::protocol::CloseCode;
use partyline_client::{Client, ClientError, DisconnectReason, ErrorCode, Event};
use support::*;

#[tokio::test]
async fn beyond_the_session_cap_connections_are_refused_with_a_reason() {
    let server = start_with(|c| c.max_sessions = 2).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, _bob_events) = server.client("bob").await;

    match Client::connect(server.config("cyd")).await {
        Err(ClientError::Closed(DisconnectReason::ClosedByServer { code, reason })) => {
            assert_eq!(code, CloseCode::ServerFull as u64);
            assert!(reason.contains("server full"), "{reason}");
        }
        Err(other) => panic!("expected a ServerFull close, got {other}"),
        Ok(_) => panic!("a third session was admitted past the cap of 2"),
    }

    // The two sessions inside are untouched.
    let party = ana
        .create_party(settings(true, 2, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::MemberJoined { .. }
    ));

    // A place frees up when a session ends.
    bob.close().await;
    for _ in 0..100 {
        if server.handle.session_count() < 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (cyd, _events) = server.client("cyd").await;
    assert_eq!(cyd.presence().user_id, "cyd");
}

#[tokio::test]
async fn under_handshake_pressure_clients_prove_their_address_and_still_get_in() {
    // Threshold 0: every connection is asked to retry with a token first.
    let server = start_with(|c| c.retry_above = 0).await;
    bystanders_still_served(&server).await;
}

#[tokio::test]
async fn beyond_the_handshake_cap_connections_are_refused() {
    let server = start_with(|c| c.max_handshakes = 0).await;
    match Client::connect(server.config("ana")).await {
        Err(error @ ClientError::ConnectionRefused { .. }) => {
            assert!(
                error.to_string().to_lowercase().contains("refused"),
                "{error}"
            )
        }
        Err(other) => panic!("expected a refused connection, got {other}"),
        Ok(_) => panic!("admitted past a handshake cap of 0"),
    }
}

#[tokio::test]
async fn a_session_holds_at_most_the_allowed_parties_seats_and_requests_together() {
    let server = start_with(|c| c.max_parties_per_session = 2).await;
    let (ana, _ana_events) = server.client("ana").await;
    let (bob, _bob_events) = server.client("bob").await;
    let first = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    let closed = bob
        .create_party(settings(false, 4, ""))
        .await
        .unwrap()
        .party_id;
    // A waiting request counts too.
    ana.join_party(closed).await.unwrap();
    let error = ana.create_party(settings(true, 4, "")).await.unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::TooManyParties));
    let other = bob
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    assert_eq!(
        ana.join_party(other).await.unwrap_err().code(),
        Some(ErrorCode::TooManyParties)
    );
    // Leaving frees a place.
    ana.leave_party(first).await.unwrap();
    ana.join_party(other).await.unwrap();
}
