//! The server-side API over real QUIC: a backend forms, fills, moves,
//! kicks from and closes parties, speaks into them, reads them, lists a
//! user's sessions and ends a session; members hear it all as events, and
//! every refusal is typed.
mod support;

#[path = "../examples/squad_backend.rs"]
mod squad_backend;

use partyline::party::PartySettings;
use partyline::protocol::{ErrorCode, InvitePolicy, KeyValues, SessionId};
use partyline::server::ApiError;
use partyline_client::{DisconnectReason, Event, Events, LeaveReason};
use support::*;

fn closed(max_size: u16) -> PartySettings {
    PartySettings {
        open: false,
        max_size,
        label: "backend".into(),
        invite_policy: InvitePolicy::default(),
        leader_policy: Default::default(),
    }
}

fn refused_code(result: Result<impl std::fmt::Debug, ApiError>) -> ErrorCode {
    match result {
        Err(ApiError::Refused(body)) => body.code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The next event that is not a status or ticket event.
async fn seated(events: &mut Events) -> partyline_client::Party {
    match next(events).await {
        Event::PartyJoined { party } => party,
        other => panic!("expected PartyJoined, got {other:?}"),
    }
}

#[tokio::test]
async fn a_backend_forms_a_party_and_each_member_hears_it() {
    let server = start().await;
    let api = server.handle.api();
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (cy, mut cy_events) = server.client("cy").await;

    let party = api
        .create_party(
            &[ana.session_id(), bob.session_id(), cy.session_id()],
            closed(4),
            KeyValues::new(),
        )
        .await
        .unwrap();
    assert_eq!(party.leader.user_id, "ana");
    let users: Vec<&str> = party.members.iter().map(|m| m.user_id.as_str()).collect();
    assert_eq!(users, ["ana", "bob", "cy"]);

    // Each hears it was seated, then who came after it.
    assert_eq!(seated(&mut ana_events).await.members.len(), 1);
    for joined in ["bob", "cy"] {
        match next(&mut ana_events).await {
            Event::MemberJoined { member, .. } => assert_eq!(member.user_id, joined),
            other => panic!("expected {joined} joining, got {other:?}"),
        }
    }
    assert_eq!(seated(&mut bob_events).await.members.len(), 2);
    assert_eq!(seated(&mut cy_events).await.members.len(), 3);
    // The SDK's roster knows the party, as if the player had joined.
    assert_eq!(cy.party(party.party_id).unwrap().members.len(), 3);

    // Read back: members, leader, seq, nobody waiting.
    let info = api.party(party.party_id).await.unwrap();
    assert_eq!(info.snapshot, party);
    assert!(info.requests.is_empty());
    assert_eq!(api.parties("backend", 10).await, vec![party.clone()]);
    assert!(api.parties("nothing like it", 10).await.is_empty());
}

#[tokio::test]
async fn a_backend_adds_moves_kicks_and_closes() {
    let server = start().await;
    let api = server.handle.api();
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (cy, mut cy_events) = server.client("cy").await;
    let first = api
        .create_party(&[ana.session_id()], closed(2), KeyValues::new())
        .await
        .unwrap();
    let second = api
        .create_party(&[cy.session_id()], closed(4), KeyValues::new())
        .await
        .unwrap();
    seated(&mut ana_events).await;
    seated(&mut cy_events).await;

    // Added to a closed party, no invite needed.
    api.add_member(first.party_id, bob.session_id())
        .await
        .unwrap();
    seated(&mut bob_events).await;
    assert!(matches!(
        next(&mut ana_events).await,
        Event::MemberJoined { .. }
    ));
    // Full now: refused, typed; and a second seat for the same user too.
    let (dee, _dee_events) = server.client("dee").await;
    assert_eq!(
        refused_code(api.add_member(first.party_id, dee.session_id()).await),
        ErrorCode::PartyFull
    );
    assert_eq!(
        refused_code(api.add_member(second.party_id, cy.session_id()).await),
        ErrorCode::AlreadyMember
    );

    // Bob moves to the second party: seated there, gone from the first.
    api.move_member(bob.session_id(), first.party_id, second.party_id)
        .await
        .unwrap();
    assert_eq!(seated(&mut bob_events).await.party_id, second.party_id);
    match next(&mut ana_events).await {
        Event::MemberLeft { member, reason, .. } => {
            assert_eq!(
                (member.user_id.as_str(), reason),
                ("bob", LeaveReason::Left)
            )
        }
        other => panic!("expected Bob leaving, got {other:?}"),
    }
    assert!(matches!(
        next(&mut cy_events).await,
        Event::MemberJoined { .. }
    ));
    assert_eq!(
        refused_code(
            api.move_member(bob.session_id(), first.party_id, second.party_id)
                .await
        ),
        ErrorCode::NotMember
    );

    // The server kicks the leader: Cy is told, Bob leads.
    api.kick(second.party_id, "cy").await.unwrap();
    assert!(matches!(next(&mut cy_events).await, Event::Kicked { .. }));
    match next(&mut bob_events).await {
        Event::LeaderChanged { leader, .. } => assert_eq!(leader.user_id, "bob"),
        other => panic!("expected Bob leading, got {other:?}"),
    }
    match next(&mut bob_events).await {
        Event::MemberLeft { member, reason, .. } => {
            assert_eq!(
                (member.user_id.as_str(), reason),
                ("cy", LeaveReason::Kicked)
            )
        }
        other => panic!("expected Cy kicked, got {other:?}"),
    }
    // Like every new leader, Bob is handed the (empty) request queue.
    assert!(matches!(
        next(&mut bob_events).await,
        Event::JoinRequests { .. }
    ));
    assert_eq!(
        refused_code(api.kick(second.party_id, "nobody").await),
        ErrorCode::MemberNotFound
    );

    // Closed by the server: the members hear it, and it is gone.
    api.close_party(second.party_id).await.unwrap();
    assert!(matches!(
        next(&mut bob_events).await,
        Event::PartyClosed { .. }
    ));
    assert_eq!(
        refused_code(api.party(second.party_id).await),
        ErrorCode::PartyNotFound
    );
    assert_eq!(server.handle.party_count(), 1);
}

#[tokio::test]
async fn the_squad_backend_example_forms_and_greets_a_squad() {
    let server = start().await;
    let api = server.handle.api();
    let (_ana, mut ana_events) = server.client("ana").await;
    let (_bob, mut bob_events) = server.client("bob").await;

    let party = squad_backend::form_squad(&api, &["ana", "bob"])
        .await
        .unwrap();
    assert_eq!((party.open, party.label.as_str()), (false, "squad"));
    seated(&mut ana_events).await;
    assert!(matches!(
        next(&mut ana_events).await,
        Event::MemberJoined { .. }
    ));
    seated(&mut bob_events).await;
    for events in [&mut ana_events, &mut bob_events] {
        let greeting = next_data(events).await;
        assert!(greeting.reliable);
        assert_eq!(greeting.op_code, squad_backend::GREETING);
        assert_eq!(&greeting.data[..], b"good luck, squad");
        // From the server: the nil session, no user.
        assert!(greeting.sender.session_id.0.is_nil());
        assert!(greeting.sender.user_id.is_empty());
    }
    // A squad with someone offline: refused, and nothing formed.
    assert!(squad_backend::form_squad(&api, &["ana", "ghost"])
        .await
        .is_err());
    assert_eq!(server.handle.party_count(), 1);
}

#[tokio::test]
async fn sessions_are_listed_by_user_and_a_disconnect_ends_one_without_grace() {
    let server = start().await;
    let api = server.handle.api();
    let (ana, _ana_events) = server.client("ana").await;
    let (ana_phone, mut phone_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let party = api
        .create_party(
            &[bob.session_id(), ana_phone.session_id()],
            closed(4),
            KeyValues::new(),
        )
        .await
        .unwrap();
    seated(&mut bob_events).await;
    assert!(matches!(
        next(&mut bob_events).await,
        Event::MemberJoined { .. }
    ));

    let anas = api.sessions_of("ana").await;
    let mut expected = vec![ana.session_id(), ana_phone.session_id()];
    expected.sort();
    assert_eq!(
        anas.iter().map(|s| s.session_id).collect::<Vec<_>>(),
        expected
    );
    assert!(anas.iter().all(|s| s.connected && s.remote.is_some()));
    let phone = api.session_info(ana_phone.session_id()).await.unwrap();
    assert_eq!(phone.parties, vec![party.party_id]);
    assert_eq!(api.sessions().await.len(), 3);

    api.disconnect(ana_phone.session_id(), "maintenance")
        .await
        .unwrap();
    // The client hears why, and does not try to come back.
    loop {
        match next(&mut phone_events).await {
            Event::Disconnected {
                reason: DisconnectReason::ClosedByServer { code, reason },
            } => {
                assert_eq!(code, 9);
                assert_eq!(reason, "maintenance");
                break;
            }
            Event::PartyJoined { .. } => {}
            other => panic!("expected the disconnect, got {other:?}"),
        }
    }
    // No grace window: the party hears at once that the session ended.
    match next(&mut bob_events).await {
        Event::MemberLeft { member, reason, .. } => {
            assert_eq!(member.user_id, "ana");
            assert_eq!(reason, LeaveReason::SessionEnded);
        }
        other => panic!("expected Ana's phone gone, got {other:?}"),
    }
    assert_eq!(api.sessions_of("ana").await.len(), 1);
    assert_eq!(
        api.disconnect(ana_phone.session_id(), "again").await,
        Err(ApiError::SessionNotFound(ana_phone.session_id()))
    );
}

#[tokio::test]
async fn the_api_refuses_what_cannot_work() {
    let server = start().await;
    let api = server.handle.api();
    let (ana, _ana_events) = server.client("ana").await;
    let (ana_phone, _p) = server.client("ana").await;
    let ghost = SessionId::random();
    assert_eq!(
        api.create_party(&[ghost], closed(4), KeyValues::new())
            .await,
        Err(ApiError::SessionNotFound(ghost))
    );
    assert_eq!(
        refused_code(api.create_party(&[], closed(4), KeyValues::new()).await),
        ErrorCode::InvalidArgument
    );
    // One seat per user, and no more members than seats.
    assert_eq!(
        refused_code(
            api.create_party(
                &[ana.session_id(), ana_phone.session_id()],
                closed(4),
                KeyValues::new()
            )
            .await
        ),
        ErrorCode::InvalidArgument
    );
    let (bob, _b) = server.client("bob").await;
    assert_eq!(
        refused_code(
            api.create_party(
                &[ana.session_id(), bob.session_id()],
                closed(1),
                KeyValues::new()
            )
            .await
        ),
        ErrorCode::PartyFull
    );
    assert_eq!(
        refused_code(
            api.send_to_party(partyline::protocol::PartyId::random(), 1, "x".into())
                .await
        ),
        ErrorCode::PartyNotFound
    );
    let party = api
        .create_party(&[ana.session_id()], closed(4), KeyValues::new())
        .await
        .unwrap();
    let too_big = vec![0u8; partyline::protocol::MAX_RELIABLE_DATA as usize + 1];
    assert_eq!(
        refused_code(api.send_to_party(party.party_id, 1, too_big.into()).await),
        ErrorCode::PayloadTooLarge
    );
    assert_eq!(server.handle.party_count(), 1);
    bystanders_still_served(&server).await;
}
