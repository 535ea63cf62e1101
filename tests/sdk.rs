//! The SDK's own promises, over real QUIC: the roster it keeps, the
//! distinct Kick and Reject, who sent party data, calls while it
//! reconnects, and connect errors a developer can act on.
mod support;

use partyline::certs::generate_dev_identity;
use partyline_client::{
    shared_endpoint, Client, ClientConfig, ClientError, ErrorCode, Event, Events, JoinOutcome,
    LeaveReason, Party, PartyId, RejectReason,
};
use std::collections::HashSet;
use std::time::Duration;
use support::relay::Relay;
use support::*;

fn users(party: &Party) -> Vec<&str> {
    party
        .members
        .iter()
        .map(|m| m.presence.user_id.as_str())
        .collect()
}

fn requesters(party: &Party) -> Vec<&str> {
    party
        .join_requests
        .iter()
        .map(|p| p.user_id.as_str())
        .collect()
}

/// The client's roster view of a party it must be in.
fn view(client: &Client, party: PartyId) -> Party {
    client
        .party(party)
        .unwrap_or_else(|| panic!("{} should be in the party", client.presence().user_id))
}

fn connected(client: &Client, party: PartyId, user: &str) -> bool {
    view(client, party)
        .member(user)
        .unwrap_or_else(|| panic!("{user} should be seated"))
        .connected
}

async fn expect_joined_event(events: &mut Events, party: PartyId, user: &str) {
    match next_event(events).await {
        Event::MemberJoined { party_id, member } => {
            assert_eq!((party_id, member.user_id.as_str()), (party, user))
        }
        other => panic!("expected {user} to join, got {other:?}"),
    }
}

async fn expect_requested(events: &mut Events, party: PartyId, user: &str) {
    match next_event(events).await {
        Event::JoinRequested {
            party_id,
            requester,
        } => assert_eq!((party_id, requester.user_id.as_str()), (party, user)),
        other => panic!("expected {user}'s join request, got {other:?}"),
    }
}

async fn expect_party_joined(events: &mut Events, party: PartyId) -> Party {
    match next_event(events).await {
        Event::PartyJoined { party: seated } => {
            assert_eq!(seated.party_id, party);
            seated
        }
        other => panic!("expected to be seated, got {other:?}"),
    }
}

async fn expect_connection(events: &mut Events, user: &str, up: bool) {
    match next_event(events).await {
        Event::MemberConnectionChanged {
            member, connected, ..
        } => assert_eq!((member.user_id.as_str(), connected), (user, up)),
        other => panic!("expected {user} connected={up}, got {other:?}"),
    }
}

async fn expect_leader(events: &mut Events, user: &str) {
    match next_event(events).await {
        Event::LeaderChanged { leader, .. } => assert_eq!(leader.user_id, user),
        other => panic!("expected {user} to lead, got {other:?}"),
    }
}

async fn expect_left(events: &mut Events, user: &str, why: LeaveReason) {
    match next_event(events).await {
        Event::MemberLeft { member, reason, .. } => {
            assert_eq!((member.user_id.as_str(), reason), (user, why))
        }
        other => panic!("expected {user} to leave ({why:?}), got {other:?}"),
    }
}

async fn expect_requests(events: &mut Events, expected: &[&str]) {
    match next_event(events).await {
        Event::JoinRequests { requests, .. } => {
            let got: Vec<_> = requests.iter().map(|p| p.user_id.as_str()).collect();
            assert_eq!(got, expected);
        }
        other => panic!("expected the join requests, got {other:?}"),
    }
}

#[tokio::test]
async fn the_roster_follows_every_change_of_the_party() {
    let server = start_with(fast_loss_detection).await;
    let relay = Relay::start(server.addr).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (cyd, mut cyd_events) = via_relay(&server, &relay, "cyd", true).await;
    let (dee, mut dee_events) = server.client("dee").await;

    // Created: ana alone, leading, nobody waiting.
    let created = ana
        .create_party(settings(false, 4, "roster"))
        .await
        .unwrap();
    let party = created.party_id;
    assert!(created.is_leader());
    assert_eq!(users(&created), ["ana"]);
    assert_eq!(view(&ana, party), created);
    assert_eq!(ana.parties(), vec![created.clone()]);

    // A join request: the leader's roster shows it; the requester has no seat.
    assert_eq!(
        bob.join_party(party).await.unwrap(),
        JoinOutcome::Queued { party_id: party }
    );
    expect_requested(&mut ana_events, party, "bob").await;
    assert_eq!(requesters(&view(&ana, party)), ["bob"]);
    assert!(bob.party(party).is_none() && bob.parties().is_empty());

    // Accepted: seated on both sides, the request gone.
    ana.accept(party, "bob").await.unwrap();
    assert!(requesters(&view(&ana, party)).is_empty());
    let seated = expect_party_joined(&mut bob_events, party).await;
    assert_eq!(users(&seated), ["ana", "bob"]);
    assert!(!seated.is_leader());
    assert_eq!(seated.leader.user_id, "ana");
    assert_eq!(view(&bob, party), seated);
    expect_joined_event(&mut ana_events, party, "bob").await;
    assert_eq!(users(&view(&ana, party)), ["ana", "bob"]);

    // Cyd too; only the leader ever sees the request.
    cyd.join_party(party).await.unwrap();
    expect_requested(&mut ana_events, party, "cyd").await;
    assert_eq!(requesters(&view(&ana, party)), ["cyd"]);
    assert!(requesters(&view(&bob, party)).is_empty());
    ana.accept(party, "cyd").await.unwrap();
    expect_party_joined(&mut cyd_events, party).await;
    expect_joined_event(&mut ana_events, party, "cyd").await;
    expect_joined_event(&mut bob_events, party, "cyd").await;
    for client in [&ana, &bob, &cyd] {
        assert_eq!(users(&view(client, party)), ["ana", "bob", "cyd"]);
        assert!(view(client, party).members.iter().all(|m| m.connected));
    }

    // Cyd's connection is lost, then back: the seat is held, flagged away.
    relay.blackhole(true);
    expect_lost(&mut cyd_events, true).await;
    for events in [&mut ana_events, &mut bob_events] {
        expect_connection(events, "cyd", false).await;
    }
    for client in [&ana, &bob] {
        assert_eq!(users(&view(client, party)), ["ana", "bob", "cyd"]);
        assert!(!connected(client, party, "cyd"));
        assert!(connected(client, party, "ana") && connected(client, party, "bob"));
    }
    relay.blackhole(false);
    assert_eq!(next(&mut cyd_events).await, Event::Resumed);
    for events in [&mut ana_events, &mut bob_events] {
        expect_connection(events, "cyd", true).await;
    }
    for client in [&ana, &bob, &cyd] {
        assert!(connected(client, party, "cyd"));
    }

    // Kicked: gone from the kicked client's roster, and from the others'.
    ana.kick(party, "cyd").await.unwrap();
    assert_eq!(
        next_event(&mut cyd_events).await,
        Event::Kicked { party_id: party }
    );
    assert!(cyd.party(party).is_none() && cyd.parties().is_empty());
    for events in [&mut ana_events, &mut bob_events] {
        expect_left(events, "cyd", LeaveReason::Kicked).await;
    }
    assert_eq!(users(&view(&ana, party)), ["ana", "bob"]);
    assert_eq!(users(&view(&bob, party)), ["ana", "bob"]);

    // Promoted: both rosters agree who leads; the new leader gets the queue.
    ana.promote(party, "bob").await.unwrap();
    expect_leader(&mut ana_events, "bob").await;
    expect_leader(&mut bob_events, "bob").await;
    expect_requests(&mut bob_events, &[]).await;
    assert!(view(&bob, party).is_leader());
    assert!(!view(&ana, party).is_leader());
    assert_eq!(view(&ana, party).leader.user_id, "bob");

    // A request to the new leader: only bob's roster shows it.
    dee.join_party(party).await.unwrap();
    expect_requested(&mut bob_events, party, "dee").await;
    assert_eq!(requesters(&view(&bob, party)), ["dee"]);
    assert!(requesters(&view(&ana, party)).is_empty());

    // The leader leaves: ana leads again and inherits the queue.
    bob.leave_party(party).await.unwrap();
    assert!(bob.party(party).is_none() && bob.parties().is_empty());
    expect_leader(&mut ana_events, "ana").await;
    expect_left(&mut ana_events, "bob", LeaveReason::Left).await;
    expect_requests(&mut ana_events, &["dee"]).await;
    let now = view(&ana, party);
    assert!(now.is_leader());
    assert_eq!(users(&now), ["ana"]);
    assert_eq!(requesters(&now), ["dee"]);

    // Dee is seated, then the party closes: gone from every roster.
    ana.accept(party, "dee").await.unwrap();
    expect_party_joined(&mut dee_events, party).await;
    expect_joined_event(&mut ana_events, party, "dee").await;
    assert_eq!(users(&view(&dee, party)), ["ana", "dee"]);
    ana.close_party(party).await.unwrap();
    assert!(ana.parties().is_empty());
    assert_eq!(
        next_event(&mut dee_events).await,
        Event::PartyClosed { party_id: party }
    );
    assert!(dee.party(party).is_none() && dee.parties().is_empty());
}

#[tokio::test]
async fn reject_and_kick_are_distinct() {
    let server = start().await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (cyd, mut cyd_events) = server.client("cyd").await;
    let party = ana
        .create_party(settings(false, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    expect_requested(&mut ana_events, party, "bob").await;
    ana.accept(party, "bob").await.unwrap();
    expect_party_joined(&mut bob_events, party).await;
    expect_joined_event(&mut ana_events, party, "bob").await;
    cyd.join_party(party).await.unwrap();
    expect_requested(&mut ana_events, party, "cyd").await;

    // Reject on a member: refused, and the member keeps its seat.
    assert_eq!(
        code(ana.reject(party, "bob").await),
        ErrorCode::RequestNotFound
    );
    // Kick on a requester: refused, and the request still waits.
    assert_eq!(
        code(ana.kick(party, "cyd").await),
        ErrorCode::MemberNotFound
    );

    let now = ana.get_party(party).await.unwrap();
    assert_eq!(users(&now), ["ana", "bob"]);
    let waiting: Vec<_> = ana
        .list_join_requests(party)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.user_id)
        .collect();
    assert_eq!(waiting, ["cyd"]);
    assert_eq!(requesters(&view(&ana, party)), ["cyd"]);
    // Round trips later, neither was told anything.
    assert_eq!(users(&bob.get_party(party).await.unwrap()), ["ana", "bob"]);
    assert_no_pending(&mut bob_events);
    assert_eq!(
        code(cyd.join_party(party).await),
        ErrorCode::AlreadyRequested
    );
    assert_no_pending(&mut cyd_events);
    assert_no_pending(&mut ana_events);

    // Each on its own kind of user works.
    ana.reject(party, "cyd").await.unwrap();
    assert_eq!(
        next_event(&mut cyd_events).await,
        Event::JoinRejected {
            party_id: party,
            reason: RejectReason::Rejected
        }
    );
    assert!(requesters(&view(&ana, party)).is_empty());
    ana.kick(party, "bob").await.unwrap();
    assert_eq!(
        next_event(&mut bob_events).await,
        Event::Kicked { party_id: party }
    );
    expect_left(&mut ana_events, "bob", LeaveReason::Kicked).await;
    assert_eq!(users(&view(&ana, party)), ["ana"]);
}

#[tokio::test]
async fn party_data_names_its_sender() {
    let server = start().await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    expect_joined_event(&mut ana_events, party, "bob").await;

    ana.send_data(party, 1, b"by datagram").unwrap();
    ana.send_data_reliable(party, 2, b"reliably").await.unwrap();
    bob.send_data_reliable(party, 3, b"back").await.unwrap();
    // A datagram has no order relative to reliable data (the server may
    // hold it for its coalescing window): take the two in either order.
    let mut both = [
        next_data(&mut bob_events).await,
        next_data(&mut bob_events).await,
    ];
    both.sort_by_key(|data| data.reliable);
    for (data, (reliable, payload)) in both
        .iter()
        .zip([(false, &b"by datagram"[..]), (true, &b"reliably"[..])])
    {
        assert_eq!((data.reliable, &data.data[..]), (reliable, payload));
        assert_eq!(data.sender.user_id, "ana");
        assert_eq!(data.sender.username, "ana-name");
        assert_eq!(data.sender.session_id, ana.session_id());
        assert_eq!(*data.sender, ana.presence());
    }
    let data = next_data(&mut ana_events).await;
    assert_eq!(*data.sender, bob.presence());
    assert_eq!((data.op_code, data.reliable), (3, true));
    // And by datagram the other way, resolved from ana's roster.
    bob.send_data(party, 4, b"pong").unwrap();
    let data = next_data(&mut ana_events).await;
    assert_eq!(*data.sender, bob.presence());
    assert_eq!((data.op_code, data.reliable), (4, false));
}

fn reconnecting<T: std::fmt::Debug>(result: Result<T, ClientError>) {
    match result {
        Err(ClientError::Reconnecting) => {}
        other => panic!("expected Reconnecting, got {other:?}"),
    }
}

#[tokio::test]
async fn while_reconnecting_every_call_says_so_and_after_resumed_calls_work() {
    let server = start_with(fast_loss_detection).await;
    let relay = Relay::start(server.addr).await;
    let (bob, mut bob_events) = via_relay(&server, &relay, "bob", true).await;
    let party = bob
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;

    relay.blackhole(true);
    expect_lost(&mut bob_events, true).await;
    // The relay drops everything: the SDK is retrying while we call.
    reconnecting(bob.create_party(settings(true, 4, "")).await);
    reconnecting(bob.get_party(party).await);
    reconnecting(bob.send_data(party, 1, b"x"));
    reconnecting(bob.send_data_reliable(party, 1, b"x").await);
    // The roster still shows the party it expects back.
    assert_eq!(users(&view(&bob, party)), ["bob"]);

    relay.blackhole(false);
    assert_eq!(next(&mut bob_events).await, Event::Resumed);
    assert_eq!(users(&bob.get_party(party).await.unwrap()), ["bob"]);
    bob.send_data(party, 1, b"x").unwrap();
    bob.send_data_reliable(party, 1, b"x").await.unwrap();
    let second = bob.create_party(settings(true, 4, "")).await.unwrap();
    assert_eq!(bob.parties().len(), 2);
    assert!(second.is_leader());
}

#[tokio::test]
async fn a_lost_session_names_the_parties_it_lost() {
    let server = start_with(|c| {
        fast_loss_detection(c);
        c.grace = Duration::from_millis(1000);
    })
    .await;
    let relay = Relay::start(server.addr).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = via_relay(&server, &relay, "bob", true).await;
    let own = bob
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    let anas = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(anas).await.unwrap();
    expect_joined_event(&mut ana_events, anas, "bob").await;
    let old_session = bob.session_id();

    relay.blackhole(true);
    expect_lost(&mut bob_events, true).await;
    expect_connection(&mut ana_events, "bob", false).await;
    // Bob's window ends while he is away.
    expect_left(&mut ana_events, "bob", LeaveReason::SessionEnded).await;
    relay.blackhole(false);
    match next(&mut bob_events).await {
        Event::SessionLost {
            lost_parties,
            new_session,
        } => {
            let lost: HashSet<_> = lost_parties.into_iter().collect();
            assert_eq!(lost, HashSet::from([own, anas]));
            assert_ne!(new_session, old_session);
            assert_eq!(bob.session_id(), new_session);
        }
        other => panic!("expected SessionLost, got {other:?}"),
    }
    assert!(bob.parties().is_empty());
    assert_eq!(code(bob.get_party(anas).await), ErrorCode::NotMember);
    // The new session plays on.
    bob.create_party(settings(true, 4, "")).await.unwrap();
}

#[tokio::test]
async fn connecting_where_nothing_answers_says_so() {
    // A socket that is really there and never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let (tls, _, _) = generate_dev_identity().unwrap();
    let mut config = ClientConfig::dev(addr, tls.chain, "ana", "Ana");
    config.idle_timeout = Duration::from_secs(1);
    let error = Client::connect(config).await.err().expect("no answer");
    assert!(
        matches!(&error, ClientError::NoAnswer { addr: a, .. } if *a == addr),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&addr.to_string()), "{message}");
    assert!(
        message.contains("is `partyline serve` running"),
        "{message}"
    );
    drop(silent);
}

#[tokio::test]
async fn connecting_with_the_wrong_certificate_is_a_tls_error() {
    let server = start().await;
    let (other, _, _) = generate_dev_identity().unwrap();
    let config = ClientConfig::dev(server.addr, other.chain, "ana", "Ana");
    match Client::connect(config).await {
        Err(error @ ClientError::Tls { .. }) => {
            assert!(
                error.to_string().contains(&server.addr.to_string()),
                "{error}"
            )
        }
        Err(other) => panic!("expected a TLS error, got {other:?}"),
        Ok(_) => panic!("connected while trusting another certificate"),
    }
    bystanders_still_served(&server).await;
}

#[tokio::test]
async fn a_session_on_a_shared_endpoint_uses_its_own_settings() {
    let server = start().await;
    // An endpoint built from a configuration that trusts nothing: a
    // session that used the endpoint's settings instead of its own would
    // fail the TLS handshake.
    let mut trusts_nothing = server.config("nobody");
    trusts_nothing.trusted_certs.clear();
    let endpoint = shared_endpoint(&trusts_nothing, None).expect("endpoint");
    let (ana, _events) = Client::connect_on(&endpoint, server.config("ana"))
        .await
        .expect("ana's own trusted certificate is used");
    assert_eq!(ana.presence().user_id, "ana");
}
