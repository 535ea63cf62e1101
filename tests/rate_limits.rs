//! Per-session rate limits: refusals over the limit, recovery after it, and
//! a flooder cut off, while other sessions are not affected.
mod support;

use partyline::protocol::CloseCode;
use partyline_client::{ClientError, DisconnectReason, ErrorCode, Event};
use std::time::Duration;
use support::*;

#[tokio::test]
async fn commands_over_the_rate_are_refused_then_allowed_again() {
    let server = start_with(|c| c.command_rate = 5.0).await;
    let (ana, _events) = server.client("ana").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    let mut refused = 0;
    for _ in 0..30 {
        match ana.get_party(party).await {
            Ok(_) => {}
            Err(error) => {
                assert_eq!(error.code(), Some(ErrorCode::RateLimited), "{error}");
                refused += 1;
            }
        }
    }
    assert!(
        refused >= 10,
        "a burst of 10 then refusals, got {refused} refused"
    );
    assert!(server.handle.rate_limited() >= refused);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    ana.get_party(party).await.expect("tokens came back");
}

#[tokio::test]
async fn datagrams_over_the_rate_are_dropped_without_a_reply() {
    let server = start_with(|c| c.data_rate = 10.0).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let party = ana
        .create_party(settings(true, 2, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;
    for _ in 0..60 {
        ana.send_data(party, 1, b"spam").unwrap();
    }
    // The burst (20) got through; the rest were dropped and counted.
    for _ in 0..20 {
        assert!(matches!(next(&mut bob_events).await, Event::Data(_)));
    }
    // Most of the other 40 were dropped (a slow machine may refill a token
    // or two while they arrive).
    for _ in 0..100 {
        if server.handle.rate_limited() >= 30 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(server.handle.rate_limited() >= 30);
    // No refusal events for dropped datagrams, and ana is still in.
    ana.get_party(party).await.unwrap();
    assert!(ana_events.try_next().is_none());
}

#[tokio::test]
async fn a_client_that_keeps_flooding_is_cut_off_and_others_go_on() {
    let server = start_with(|c| c.command_rate = 5.0).await;
    let (bob, mut bob_events) = server.client("bob").await;
    let party = bob
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    let (eve, mut eve_events) = server.client("eve").await;
    eve.join_party(party).await.unwrap();
    next_event(&mut bob_events).await;
    let mut cut = false;
    for _ in 0..500 {
        if let Err(ClientError::Closed(_) | ClientError::Protocol(_)) = eve.get_party(party).await {
            cut = true;
            break;
        }
    }
    assert!(cut, "the flooder was disconnected");
    loop {
        match next(&mut eve_events).await {
            Event::Disconnected {
                reason: DisconnectReason::ClosedByServer { code, .. },
            } => {
                assert_eq!(code, CloseCode::RateLimited as u64);
                break;
            }
            Event::Disconnected { reason } => panic!("unexpected reason {reason:?}"),
            _ => {}
        }
    }
    // A flooder gets no grace window: it leaves at once, and bob is fine.
    match next_event(&mut bob_events).await {
        Event::MemberLeft { member, .. } => assert_eq!(member.user_id, "eve"),
        other => panic!("unexpected {other:?}"),
    }
    bob.get_party(party).await.unwrap();
}

#[tokio::test]
async fn a_datagram_flooder_is_cut_off_without_a_grace_window_too() {
    let server = start_with(|c| c.data_rate = 10.0).await;
    let (bob, mut bob_events) = server.client("bob").await;
    let party = bob
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    let (eve, mut eve_events) = server.client("eve").await;
    eve.join_party(party).await.unwrap();
    next_event(&mut bob_events).await;
    // Far over the data rate, for long enough to be cut off.
    let flood = tokio::spawn(async move {
        for _ in 0..20_000 {
            if eve.send_data(party, 1, b"x").is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
        eve
    });
    loop {
        match next(&mut eve_events).await {
            Event::Disconnected {
                reason: DisconnectReason::ClosedByServer { code, .. },
            } => {
                assert_eq!(code, CloseCode::RateLimited as u64);
                break;
            }
            Event::Disconnected { reason } => panic!("unexpected reason {reason:?}"),
            _ => {}
        }
    }
    let _eve = flood.await.unwrap();
    // Skipping the data that got through, bob sees eve leave at once,
    // not lose her connection and keep her seat.
    loop {
        match next(&mut bob_events).await {
            Event::Data(_) => continue,
            Event::MemberLeft { member, .. } => {
                assert_eq!(member.user_id, "eve");
                break;
            }
            other => panic!("expected eve to leave at once, got {other:?}"),
        }
    }
}

/// A client firing 1,000 commands at once is cut for the rate, and hears
/// the close code (8) at once: the server keeps the connection until its
/// close has gone out, even with replies queued behind it. 20 times.
#[tokio::test]
async fn a_burst_cut_hears_its_close_code_within_a_second_every_time() {
    let server = start().await;
    for round in 0..20 {
        let mut config = server.config(&format!("burst-{round}"));
        config.auto_reconnect = false;
        let (client, mut events) = partyline_client::Client::connect(config).await.unwrap();
        let party = partyline::protocol::PartyId::random();
        let client = std::sync::Arc::new(client);
        let mut burst = tokio::task::JoinSet::new();
        for _ in 0..1000 {
            let client = client.clone();
            let command = partyline::protocol::Command::GetParty { party_id: party };
            burst.spawn(async move { client.request(command).await });
        }
        let started = std::time::Instant::now();
        while burst.join_next().await.is_some() {}
        let reason = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                if let Some(Event::Disconnected { reason }) = events.next().await {
                    return reason;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("round {round}: no close within 1 s of the burst"));
        match reason {
            DisconnectReason::ClosedByServer { code, .. } => {
                assert_eq!(code, CloseCode::RateLimited as u64, "round {round}")
            }
            other => panic!("round {round}: {other:?} after {:?}", started.elapsed()),
        }
    }
}
