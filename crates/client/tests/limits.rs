//! Mistakes are told where they are made, at once and in their own words:
//! a command or Hello too large for the protocol's frame limit never leaves
//! the SDK, and every call after the session ended answers `Closed`.
mod support;

use partyline_client::protocol::{Command, MAX_FRAME_SIZE};
use partyline_client::{
    check_command, Client, ClientConfig, ClientError, DisconnectReason, ErrorCode, Event, PartyId,
    PartySettings,
};
use std::time::Duration;
use support::*;

/// Well past the frame limit (256 KiB), like the 300 KiB label.
const HUGE: usize = 300 * 1024;
/// "At once": no round trip to a server that would cut the session.
const AT_ONCE: Duration = Duration::from_millis(500);

fn huge_text() -> String {
    "x".repeat(HUGE)
}

/// The refusal a command or Hello over the frame limit gets: the size rule,
/// with the sizes.
fn assert_too_large(error: &ClientError, what: &str) {
    assert_eq!(error.code(), Some(ErrorCode::PayloadTooLarge), "{error:?}");
    let sentence = error.to_string();
    let expected = format!("the {what} is ");
    assert!(sentence.contains(&expected), "{sentence}");
    let limit = format!("above the protocol's frame limit of {MAX_FRAME_SIZE} bytes");
    assert!(sentence.contains(&limit), "{sentence}");
}

async fn at_once<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(AT_ONCE, call)
        .await
        .expect("answered at once")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_commands_are_refused_at_once_and_the_session_goes_on() {
    let server = start().await;
    let (ana, _events) = server.client("ana").await;
    let label = PartySettings {
        label: huge_text(),
        ..PartySettings::default()
    };
    assert_too_large(
        &at_once(ana.create_party(label)).await.unwrap_err(),
        "command",
    );
    let code = huge_text();
    assert_too_large(
        &at_once(ana.join_by_code(&code)).await.unwrap_err(),
        "command",
    );
    assert_too_large(&at_once(ana.follow(&[&code])).await.unwrap_err(), "command");
    let raw = Command::JoinByCode { code: code.clone() };
    assert_too_large(&check_command(&raw).unwrap_err(), "command");
    assert_too_large(&at_once(ana.request(raw)).await.unwrap_err(), "command");

    // Nothing reached the server: the session and its stream are fine.
    let party = ana
        .create_party(PartySettings::default())
        .await
        .expect("the next command works");
    assert_eq!(party.members.len(), 1);
    assert!(check_command(&Command::GetParty {
        party_id: party.party_id
    })
    .is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_hello_is_refused_before_connecting_with_its_rules() {
    let server = start().await;
    let long_user = server.config(&huge_text());
    assert!(long_user.validate().is_err());
    let error = at_once(Client::connect(long_user))
        .await
        .err()
        .expect("refused");
    assert_too_large(&error, "Hello");
    let rule = format!("user_id must be 1 to 128 bytes, got {HUGE}");
    assert!(error.to_string().contains(&rule), "{error}");

    let huge_token = ClientConfig::with_token(server.addr, server.certs.clone(), &huge_text());
    let error = at_once(Client::connect(huge_token))
        .await
        .err()
        .expect("refused");
    assert_too_large(&error, "Hello");
    // Under the frame limit, names are the server's to judge, with its rule.
    let long_name = server.config(&"x".repeat(129));
    let error = Client::connect(long_name).await.err().expect("refused");
    assert_eq!(error.code(), Some(ErrorCode::Unauthenticated), "{error}");
}

fn nowhere() -> PartyId {
    "67e55044-10b1-426f-9247-bb680e5fe0c8"
        .parse()
        .expect("a party id")
}

fn assert_closed<T: std::fmt::Debug>(result: Result<T, ClientError>, why: &DisconnectReason) {
    match result {
        Err(ClientError::Closed(reason)) => assert_eq!(&reason, why),
        other => panic!("expected Closed({why:?}), got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_right_after_a_close_answers_closed() {
    let server = start().await;
    let locally = DisconnectReason::ClosedLocally;
    for round in 0..20 {
        let (client, mut events) = server.client(&format!("user-{round}")).await;
        // Not waiting for the goodbye: the very next call is the race.
        client.disconnect();
        assert_closed(client.send_data(nowhere(), 1, b"x"), &locally);
        assert_closed(at_once(client.get_party(nowhere())).await, &locally);
        assert_eq!(client.closed(), Some(locally.clone()));
        match next(&mut events).await {
            Event::Disconnected { reason } => assert_eq!(reason, locally),
            other => panic!("expected Disconnected, got {other:?}"),
        }
        assert_closed(client.send_data(nowhere(), 1, b"x"), &locally);
        assert_closed(
            at_once(client.create_party(PartySettings::default())).await,
            &locally,
        );
    }
    let (client, _events) = server.client("closer").await;
    client.close().await;
    for _ in 0..40 {
        assert_closed(client.send_data(nowhere(), 1, b"x"), &locally);
    }
    // Even what would be refused for its size: the session is over first.
    assert_closed(client.send_data(nowhere(), 1, &[0; 64 * 1024]), &locally);
    let big = vec![0; 64 * 1024];
    assert_closed(
        at_once(client.send_data_reliable(nowhere(), 1, &big)).await,
        &locally,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_after_disconnected_answers_closed() {
    let server = start().await;
    let (client, mut events) = server.client("ana").await;
    assert_eq!(client.closed(), None);
    server.handle.shutdown().await;
    let reason = match next(&mut events).await {
        Event::Disconnected { reason } => reason,
        other => panic!("expected Disconnected, got {other:?}"),
    };
    assert_eq!(reason, DisconnectReason::ServerShutdown);
    assert_eq!(client.closed(), Some(reason.clone()));
    assert_closed(client.send_data(nowhere(), 1, b"x"), &reason);
    assert_closed(at_once(client.get_party(nowhere())).await, &reason);
    assert_closed(at_once(client.leave_party(nowhere())).await, &reason);
}
