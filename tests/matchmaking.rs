//! Matchmaking over real QUIC: squads and solos into one match, a party
//! that changes while waiting, a leader lost inside its grace window, the
//! match token and its key, and every refusal.
mod support;

use partyline::auth::mint_token_for;
use partyline::matchmaker::{derive_match_key, verify_match_token, MatchTokenError};
use partyline::server::{AuthMode, DEV_MATCH_SECRET};
use partyline_client::{
    Client, ClientConfig, ErrorCode, Event, Events, MatchFound, TicketCancelReason, TicketRequest,
};
use std::time::Duration;
use support::relay::Relay;
use support::*;

fn five_v_five(party_id: Option<partyline_client::PartyId>) -> TicketRequest {
    TicketRequest {
        party_id,
        min_count: 10,
        max_count: 10,
        count_multiple: 1,
        ..TicketRequest::default()
    }
}

async fn fast() -> TestServer {
    start_with(|c| c.matchmaker_interval = Duration::from_millis(50)).await
}

/// The next matchmaking event, skipping party events.
async fn next_ticket_event(events: &mut Events) -> Event {
    loop {
        match next(events).await {
            event @ (Event::TicketStarted { .. }
            | Event::TicketCancelled { .. }
            | Event::Matched(_)) => return event,
            _ => continue,
        }
    }
}

async fn matched(events: &mut Events) -> MatchFound {
    loop {
        match next_ticket_event(events).await {
            Event::Matched(found) => return found,
            Event::TicketStarted { .. } => continue,
            other => panic!("expected a match, got {other:?}"),
        }
    }
}

/// A party of `size` led by `{name}0`, every member seated.
async fn party(
    server: &TestServer,
    name: &str,
    size: usize,
) -> (partyline_client::PartyId, Vec<(Client, Events)>) {
    let mut members = Vec::new();
    let (leader, events) = server.client(&format!("{name}0")).await;
    let party_id = leader
        .create_party(settings(true, 8, ""))
        .await
        .unwrap()
        .party_id;
    members.push((leader, events));
    for i in 1..size {
        let (member, events) = server.client(&format!("{name}{i}")).await;
        member.join_party(party_id).await.unwrap();
        members.push((member, events));
    }
    (party_id, members)
}

#[tokio::test]
async fn squads_of_two_and_three_with_solos_fill_five_versus_five() {
    let server = fast().await;
    let (duo_id, mut duo) = party(&server, "duo", 2).await;
    let (trio_id, mut trio) = party(&server, "trio", 3).await;
    let duo_ticket = duo[0]
        .0
        .submit_ticket(five_v_five(Some(duo_id)))
        .await
        .unwrap();
    trio[0]
        .0
        .submit_ticket(five_v_five(Some(trio_id)))
        .await
        .unwrap();
    let mut solos = Vec::new();
    for i in 0..5 {
        let (solo, events) = server.client(&format!("solo{i}")).await;
        solo.submit_ticket(five_v_five(None)).await.unwrap();
        solos.push((solo, events));
    }
    // A dev server's match key: derived from the public dev secret.
    let dev_key = derive_match_key(DEV_MATCH_SECRET);
    let mut match_ids = std::collections::HashSet::new();
    for (_, events) in duo
        .iter_mut()
        .chain(trio.iter_mut())
        .chain(solos.iter_mut())
    {
        let found = matched(events).await;
        match_ids.insert(found.match_id);
        assert_eq!(found.players.len(), 10);
        let duo_seen = found
            .players
            .iter()
            .filter(|p| p.party_id == Some(duo_id))
            .count();
        let trio_seen = found
            .players
            .iter()
            .filter(|p| p.party_id == Some(trio_id))
            .count();
        assert_eq!(
            (duo_seen, trio_seen),
            (2, 3),
            "each party whole, in the one match"
        );
        // The game server's view: the token says the same.
        let claims = verify_match_token(&dev_key, &found.token, partyline::auth::unix_now())
            .expect("a valid token");
        assert_eq!(claims.players.len(), 10);
        assert_eq!(claims.match_id.as_bytes(), &found.match_id);
        let mut parties = claims.parties();
        parties.sort();
        let mut expected = vec![duo_id, trio_id];
        expected.sort();
        assert_eq!(parties, expected);
        // The dev secret itself is not the key; expired tokens are refused.
        assert_eq!(
            verify_match_token(DEV_MATCH_SECRET, &found.token, 0),
            Err(MatchTokenError::BadSignature)
        );
        assert!(matches!(
            verify_match_token(&dev_key, &found.token, found.token_expires_at),
            Err(MatchTokenError::Expired { .. })
        ));
    }
    assert_eq!(match_ids.len(), 1, "everyone is in the same match");
    // The duo's ticket is done: it may queue again.
    assert_ne!(
        duo[0]
            .0
            .submit_ticket(five_v_five(Some(duo_id)))
            .await
            .unwrap(),
        duo_ticket
    );
}

/// Two solo players of a token server matched together: the match token
/// each receives.
async fn a_match_on_a_token_server(secret: &[u8], match_secret: Option<&[u8]>) -> MatchFound {
    let (auth_secret, match_secret) = (secret.to_vec(), match_secret.map(<[u8]>::to_vec));
    let server = start_with(move |c| {
        c.matchmaker_interval = Duration::from_millis(50);
        c.auth = AuthMode::Token {
            secret: auth_secret,
            previous: None,
        };
        c.match_secret = match_secret;
    })
    .await;
    let duel = TicketRequest {
        min_count: 2,
        max_count: 2,
        count_multiple: 1,
        ..TicketRequest::default()
    };
    let mut players = Vec::new();
    for user in ["ana", "ben"] {
        let token = mint_token_for(secret, user, user, Duration::from_secs(60));
        let config = ClientConfig::with_token(server.addr, server.certs.clone(), &token);
        let (client, events) = Client::connect(config).await.expect("a minted token");
        client.submit_ticket(duel.clone()).await.unwrap();
        players.push((client, events));
    }
    let found = matched(&mut players[0].1).await;
    assert_eq!(matched(&mut players[1].1).await.token, found.token);
    found
}

#[tokio::test]
async fn a_token_server_signs_match_tokens_with_the_derived_key_never_the_token_secret() {
    let secret = b"example-token-secret-of-32-bytes";
    let found = a_match_on_a_token_server(secret, None).await;
    let now = partyline::auth::unix_now();
    // What `partyline match-key` prints for this secret (tests/cli.rs).
    let claims = verify_match_token(&derive_match_key(secret), &found.token, now)
        .expect("the derived key verifies");
    assert_eq!(claims.players.len(), 2);
    // The identity key does not: a game server given the match key holds
    // nothing that mints identity tokens.
    assert_eq!(
        verify_match_token(secret, &found.token, now),
        Err(MatchTokenError::BadSignature)
    );

    // A match secret of the operator's own is the key, as it is.
    let own = b"a-match-secret-for-game-servers!";
    let found = a_match_on_a_token_server(secret, Some(own)).await;
    assert!(verify_match_token(own, &found.token, now).is_ok());
    for wrong in [&secret[..], &derive_match_key(secret)[..]] {
        assert_eq!(
            verify_match_token(wrong, &found.token, now),
            Err(MatchTokenError::BadSignature)
        );
    }
}

#[tokio::test]
async fn a_party_that_changes_while_waiting_is_told_its_ticket_was_cancelled() {
    let server = fast().await;
    let (party_id, mut members) = party(&server, "p", 2).await;
    let ticket = members[0]
        .0
        .submit_ticket(five_v_five(Some(party_id)))
        .await
        .unwrap();
    for (_, events) in members.iter_mut() {
        assert!(matches!(
            next_ticket_event(events).await,
            Event::TicketStarted { ticket_id, party_id: Some(p) } if ticket_id == ticket && p == party_id
        ));
    }
    let (newcomer, _events) = server.client("newcomer").await;
    newcomer.join_party(party_id).await.unwrap();
    for (_, events) in members.iter_mut() {
        match next_ticket_event(events).await {
            Event::TicketCancelled { ticket_id, reason } => {
                assert_eq!(ticket_id, ticket);
                assert_eq!(reason, TicketCancelReason::MembershipChanged);
            }
            other => panic!("expected the ticket cancelled, got {other:?}"),
        }
    }
    // The leader cancels a new one itself; a member may not.
    let again = members[0]
        .0
        .submit_ticket(five_v_five(Some(party_id)))
        .await
        .unwrap();
    assert_eq!(
        code(members[1].0.cancel_ticket(again).await),
        ErrorCode::NotLeader
    );
    members[0].0.cancel_ticket(again).await.unwrap();
    assert_eq!(
        code(members[0].0.cancel_ticket(again).await),
        ErrorCode::TicketNotFound
    );
}

#[tokio::test]
async fn a_leader_lost_inside_the_grace_window_keeps_the_party_ticket() {
    let server = start_with(|c| {
        fast_loss_detection(c);
        c.matchmaker_interval = Duration::from_millis(50);
    })
    .await;
    let relay = Relay::start(server.addr).await;
    let (leader, mut leader_events) = via_relay(&server, &relay, "lead", true).await;
    let party_id = leader
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    let (member, mut member_events) = server.client("mate").await;
    member.join_party(party_id).await.unwrap();
    let request = TicketRequest {
        min_count: 4,
        max_count: 4,
        ..five_v_five(Some(party_id))
    };
    leader.submit_ticket(request.clone()).await.unwrap();
    relay.blackhole(true);
    // The member sees the leader go; the ticket stays.
    loop {
        match next(&mut member_events).await {
            Event::MemberConnectionChanged {
                connected: false, ..
            } => break,
            Event::TicketCancelled { .. } => panic!("a lost connection is not a change of members"),
            _ => {}
        }
    }
    // Two solos complete the match of 4 while the leader is away.
    let mut solos = Vec::new();
    for i in 0..2 {
        let (solo, events) = server.client(&format!("s{i}")).await;
        solo.submit_ticket(TicketRequest {
            party_id: None,
            ..request.clone()
        })
        .await
        .unwrap();
        solos.push((solo, events));
    }
    let found = matched(&mut member_events).await;
    assert_eq!(found.players.len(), 4);
    assert!(found.players.iter().any(|p| p.presence.user_id == "lead"));
    // The leader hears it on its return, replayed.
    relay.blackhole(false);
    let found_by_leader = matched(&mut leader_events).await;
    assert_eq!(found_by_leader.match_id, found.match_id);
}

#[tokio::test]
async fn bad_tickets_are_refused_with_their_own_codes() {
    let server = fast().await;
    let (party_id, members) = party(&server, "big", 3).await;
    let leader = &members[0].0;
    let too_small = TicketRequest {
        min_count: 2,
        max_count: 2,
        ..five_v_five(Some(party_id))
    };
    assert_eq!(
        code(leader.submit_ticket(too_small).await),
        ErrorCode::PartyTooLarge
    );
    assert_eq!(
        code(
            members[1]
                .0
                .submit_ticket(five_v_five(Some(party_id)))
                .await
        ),
        ErrorCode::NotLeader
    );
    let bad_counts = TicketRequest {
        min_count: 0,
        ..five_v_five(None)
    };
    let (solo, _events) = server.client("solo").await;
    assert_eq!(
        code(solo.submit_ticket(bad_counts).await),
        ErrorCode::InvalidTicket
    );
    let mut bad_range = five_v_five(None);
    bad_range.query.ranges.insert(
        "skill".into(),
        partyline_client::NumberRange { min: 10, max: 1 },
    );
    assert_eq!(
        code(solo.submit_ticket(bad_range).await),
        ErrorCode::InvalidTicket
    );
    // Bounds that keep a Matched frame inside one frame.
    let huge_match = TicketRequest {
        max_count: 101,
        ..five_v_five(None)
    };
    assert_eq!(
        code(solo.submit_ticket(huge_match).await),
        ErrorCode::InvalidTicket
    );
    let mut heavy_member = five_v_five(None);
    heavy_member
        .members
        .push(partyline_client::MemberProperties {
            user_id: "solo".into(),
            strings: [("loadout".to_string(), "x".repeat(300))]
                .into_iter()
                .collect(),
            numbers: Default::default(),
        });
    assert_eq!(
        code(solo.submit_ticket(heavy_member).await),
        ErrorCode::InvalidTicket
    );
    let mut empty_key = five_v_five(None);
    empty_key.strings.insert(String::new(), "x".into());
    assert_eq!(
        code(solo.submit_ticket(empty_key).await),
        ErrorCode::InvalidTicket
    );
    solo.submit_ticket(five_v_five(None)).await.unwrap();
    assert_eq!(
        code(solo.submit_ticket(five_v_five(None)).await),
        ErrorCode::AlreadyMatchmaking
    );
    // A party whose member is already queued alone cannot queue.
    let (party2, members2) = party(&server, "q", 2).await;
    members2[1]
        .0
        .submit_ticket(five_v_five(None))
        .await
        .unwrap();
    assert_eq!(
        code(members2[0].0.submit_ticket(five_v_five(Some(party2))).await),
        ErrorCode::AlreadyMatchmaking
    );
    assert_eq!(
        code(solo.cancel_ticket(999).await),
        ErrorCode::TicketNotFound
    );
    // Submits are rate-limited per session (30 a minute by default).
    let (spammer, _events) = server.client("spammer").await;
    let mut limited = false;
    for _ in 0..40 {
        match spammer.submit_ticket(five_v_five(None)).await {
            Ok(ticket) => spammer.cancel_ticket(ticket).await.unwrap(),
            Err(e) if e.code() == Some(ErrorCode::RateLimited) => {
                limited = true;
                break;
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert!(limited, "the 31st ticket in a minute is refused");
    bystanders_still_served(&server).await;
}
