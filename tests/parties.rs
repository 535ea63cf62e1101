//! Every party operation between real clients over real QUIC.
//!
//! The party's `seq` (in replies and events) and the session's event `seq`
//! are wire-level numbers the SDK hides by design: the tests that check them
//! speak the wire through `support::wire::WireClient` for the sessions whose
//! numbers they check, and use the SDK for everyone else.
mod support;

use partyline::protocol::{
    Command, ErrorCode, Event as WireEvent, JoinOutcome as WireJoinOutcome, LeaveReason, PartyId,
    PartySnapshot, RejectReason, Reply, RequestGoneReason,
};
use partyline_client::{Client, Event, Events, JoinOutcome, Party, PartyUpdate};
use support::wire::WireClient;
use support::*;

struct Player {
    client: Client,
    events: Events,
}

async fn players(server: &TestServer, names: &[&str]) -> Vec<Player> {
    let mut out = Vec::new();
    for name in names {
        let (client, events) = server.client(name).await;
        out.push(Player { client, events });
    }
    out
}

async fn wire_players(server: &TestServer, names: &[&str]) -> Vec<WireClient> {
    let mut out = Vec::new();
    for name in names {
        out.push(WireClient::connect(server, name).await);
    }
    out
}

fn joined(outcome: JoinOutcome) -> Party {
    match outcome {
        JoinOutcome::Joined(party) => party,
        other => panic!("expected Joined, got {other:?}"),
    }
}

fn wire_joined(outcome: WireJoinOutcome) -> PartySnapshot {
    match outcome {
        WireJoinOutcome::Joined(snapshot) => snapshot,
        other => panic!("expected Joined, got {other:?}"),
    }
}

/// The first player creates an open party; the others join in order. Every
/// join event is consumed so each test starts from quiet event streams.
async fn open_party(players: &mut [Player], max_size: u16) -> PartyId {
    let party = players[0]
        .client
        .create_party(settings(true, max_size, ""))
        .await
        .unwrap()
        .party_id;
    for i in 1..players.len() {
        joined(players[i].client.join_party(party).await.unwrap());
        for earlier in players.iter_mut().take(i) {
            assert!(matches!(
                next_event(&mut earlier.events).await,
                Event::MemberJoined { .. }
            ));
        }
    }
    party
}

/// `open_party` for wire-level players.
async fn wire_open_party(players: &mut [WireClient], max_size: u16) -> PartyId {
    let party = players[0]
        .create_party(true, max_size, "")
        .await
        .unwrap()
        .party_id;
    for i in 1..players.len() {
        wire_joined(players[i].join_party(party).await.unwrap());
        for earlier in players.iter_mut().take(i) {
            assert!(matches!(
                earlier.next_party_event().await,
                WireEvent::MemberJoined { .. }
            ));
        }
    }
    party
}

/// The party's `seq` as the server has it now, asked through the SDK's raw
/// request (the SDK's `Party` does not show it).
async fn party_seq(client: &Client, party_id: PartyId) -> u64 {
    match client
        .request(Command::GetParty { party_id })
        .await
        .unwrap()
    {
        Reply::Party(snapshot) => snapshot.seq,
        other => panic!("expected a party, got {other:?}"),
    }
}

#[tokio::test]
async fn create_join_get_update_leave_and_the_party_is_gone_when_empty() {
    let server = start().await;
    // Both sessions check the party's seq in what they receive: wire level.
    let mut p = wire_players(&server, &["ana", "bob"]).await;
    let created = p[0].create_party(true, 4, "ranked").await.unwrap();
    assert_eq!(created.seq, 0);
    assert!(created.open);
    assert_eq!(created.max_size, 4);
    assert_eq!(created.label, "ranked");
    assert_eq!(created.leader.user_id, "ana");
    assert_eq!(created.members.len(), 1);
    let party = created.party_id;

    let snapshot = wire_joined(p[1].join_party(party).await.unwrap());
    assert_eq!(snapshot.seq, 1);
    let users: Vec<_> = snapshot
        .members
        .iter()
        .map(|m| m.user_id.as_str())
        .collect();
    assert_eq!(users, ["ana", "bob"]);
    let bob_presence = p[1].presence();
    match p[0].next_party_event().await {
        WireEvent::MemberJoined { seq, presence, .. } => {
            assert_eq!(seq, 1);
            assert_eq!(presence, bob_presence);
        }
        other => panic!("unexpected {other:?}"),
    }

    assert_eq!(p[1].get_party(party).await.unwrap(), snapshot);

    let updated = p[0]
        .update_party(party, None, Some("casual".into()), Some(6))
        .await
        .unwrap();
    assert_eq!(
        (
            updated.label.as_str(),
            updated.max_size,
            updated.open,
            updated.seq
        ),
        ("casual", 6, true, 2)
    );
    for player in p.iter_mut() {
        match player.next_party_event().await {
            WireEvent::Updated {
                seq,
                open,
                max_size,
                label,
                ..
            } => assert_eq!(
                (seq, open, max_size, label.as_str()),
                (2, true, 6, "casual")
            ),
            other => panic!("unexpected {other:?}"),
        }
    }

    p[1].leave(party).await.unwrap();
    match p[0].next_party_event().await {
        WireEvent::MemberLeft {
            seq,
            presence,
            reason,
            ..
        } => {
            assert_eq!((seq, reason), (3, LeaveReason::Left));
            assert_eq!(presence.user_id, "bob");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(server.handle.party_count(), 1);
    p[0].leave(party).await.unwrap();
    assert_eq!(server.handle.party_count(), 0);
    assert_eq!(code(p[0].get_party(party).await), ErrorCode::PartyNotFound);
    assert_eq!(code(p[1].join_party(party).await), ErrorCode::PartyNotFound);
}

#[tokio::test]
async fn the_sdk_sees_create_join_get_update_leave_the_same_way() {
    // The same story as above through the SDK, which shows no seq.
    let server = start().await;
    let mut p = players(&server, &["ana", "bob"]).await;
    let created = p[0]
        .client
        .create_party(settings(true, 4, "ranked"))
        .await
        .unwrap();
    assert!(created.open);
    assert_eq!((created.max_size, created.label.as_str()), (4, "ranked"));
    assert_eq!(created.leader.user_id, "ana");
    assert!(created.is_leader());
    assert_eq!(created.members.len(), 1);
    let party = created.party_id;

    let seated = joined(p[1].client.join_party(party).await.unwrap());
    let users: Vec<_> = seated
        .members
        .iter()
        .map(|m| m.presence.user_id.as_str())
        .collect();
    assert_eq!(users, ["ana", "bob"]);
    assert!(seated.members.iter().all(|m| m.connected));
    assert!(!seated.is_leader());
    match next_event(&mut p[0].events).await {
        Event::MemberJoined { party_id, member } => {
            assert_eq!(party_id, party);
            assert_eq!(member, p[1].client.presence());
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(p[1].client.get_party(party).await.unwrap(), seated);

    let updated = p[0]
        .client
        .update_party(
            party,
            PartyUpdate {
                open: None,
                label: Some("casual".into()),
                max_size: Some(6),
                invite_policy: None,
                leader_policy: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (updated.label.as_str(), updated.max_size, updated.open),
        ("casual", 6, true)
    );
    for player in p.iter_mut() {
        match next_event(&mut player.events).await {
            Event::PartyUpdated { party: now } => {
                assert_eq!(now.party_id, party);
                assert_eq!(
                    (now.open, now.max_size, now.label.as_str()),
                    (true, 6, "casual")
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    p[1].client.leave_party(party).await.unwrap();
    match next_event(&mut p[0].events).await {
        Event::MemberLeft {
            party_id,
            member,
            reason,
        } => {
            assert_eq!((party_id, reason), (party, LeaveReason::Left));
            assert_eq!(member.user_id, "bob");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(server.handle.party_count(), 1);
    p[0].client.leave_party(party).await.unwrap();
    assert_eq!(server.handle.party_count(), 0);
    assert_eq!(
        code(p[0].client.get_party(party).await),
        ErrorCode::PartyNotFound
    );
    assert_eq!(
        code(p[1].client.join_party(party).await),
        ErrorCode::PartyNotFound
    );
}

#[tokio::test]
async fn validation_and_permission_errors_are_typed() {
    let server = start().await;
    let mut p = players(&server, &["ana", "bob", "cyd", "dee"]).await;
    assert_eq!(
        code(p[0].client.create_party(settings(true, 0, "")).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(p[0].client.create_party(settings(true, 257, "")).await),
        ErrorCode::InvalidArgument
    );
    let long_label = "l".repeat(2049);
    assert_eq!(
        code(
            p[0].client
                .create_party(settings(true, 4, &long_label))
                .await
        ),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(p[0].client.join_party(PartyId::random()).await),
        ErrorCode::PartyNotFound
    );

    let party = open_party(&mut p[..3], 3).await;
    let (bob, dee) = (&p[1].client, &p[3].client);
    assert_eq!(code(bob.accept(party, "dee").await), ErrorCode::NotLeader);
    assert_eq!(code(bob.kick(party, "cyd").await), ErrorCode::NotLeader);
    assert_eq!(code(bob.reject(party, "dee").await), ErrorCode::NotLeader);
    assert_eq!(code(bob.promote(party, "cyd").await), ErrorCode::NotLeader);
    assert_eq!(code(bob.close_party(party).await), ErrorCode::NotLeader);
    assert_eq!(
        code(
            bob.update_party(
                party,
                PartyUpdate {
                    open: Some(false),
                    ..PartyUpdate::default()
                }
            )
            .await
        ),
        ErrorCode::NotLeader
    );
    assert_eq!(
        code(bob.list_join_requests(party).await),
        ErrorCode::NotLeader
    );
    assert_eq!(code(dee.get_party(party).await), ErrorCode::NotMember);
    assert_eq!(code(dee.leave_party(party).await), ErrorCode::NotMember);
    assert_eq!(code(dee.close_party(party).await), ErrorCode::NotMember);
    assert_eq!(
        code(dee.send_data_reliable(party, 1, b"x").await),
        ErrorCode::NotMember
    );
    assert_eq!(code(dee.join_party(party).await), ErrorCode::PartyFull);
    assert_eq!(code(bob.join_party(party).await), ErrorCode::AlreadyMember);

    let ana = &p[0].client;
    assert_eq!(
        code(ana.promote(party, "dee").await),
        ErrorCode::MemberNotFound
    );
    // Neither seated nor waiting: not found either way, and for the old
    // Remove command as before Kick and Reject existed.
    assert_eq!(
        code(ana.kick(party, "dee").await),
        ErrorCode::MemberNotFound
    );
    assert_eq!(
        code(ana.reject(party, "dee").await),
        ErrorCode::RequestNotFound
    );
    let remove = |user_id: &str| Command::Remove {
        party_id: party,
        user_id: user_id.to_string(),
    };
    assert_eq!(
        code(ana.request(remove("dee")).await),
        ErrorCode::MemberNotFound
    );
    assert_eq!(
        code(ana.kick(party, "ana").await),
        ErrorCode::CannotRemoveSelf
    );
    assert_eq!(
        code(ana.request(remove("ana")).await),
        ErrorCode::CannotRemoveSelf
    );
    assert_eq!(
        code(ana.accept(party, "dee").await),
        ErrorCode::RequestNotFound
    );
    assert_eq!(
        code(
            ana.update_party(
                party,
                PartyUpdate {
                    max_size: Some(2),
                    ..PartyUpdate::default()
                }
            )
            .await
        ),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(
            ana.update_party(
                party,
                PartyUpdate {
                    max_size: Some(257),
                    ..PartyUpdate::default()
                }
            )
            .await
        ),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(
            ana.update_party(
                party,
                PartyUpdate {
                    label: Some(long_label),
                    ..PartyUpdate::default()
                }
            )
            .await
        ),
        ErrorCode::InvalidArgument
    );
    // Promoting oneself is a no-op success that changes nothing.
    ana.promote(party, "ana").await.unwrap();
    // (The party's seq, from the raw reply: two joins, nothing since.)
    assert_eq!(party_seq(ana, party).await, 2);

    // Every refusal above left the party as it was, and told no one anything.
    let snapshot = ana.get_party(party).await.unwrap();
    assert_eq!(snapshot.members.len(), 3);
    for player in p.iter_mut() {
        assert_no_pending(&mut player.events);
    }
}

#[tokio::test]
async fn the_longest_seated_member_becomes_leader_one_by_one() {
    let server = start().await;
    // Every member checks the party's seq of each change: wire level.
    let mut p = wire_players(&server, &["ana", "bob", "cyd", "dee"]).await;
    let party = wire_open_party(&mut p, 4).await;
    let mut seq = 3;
    for leaving in 0..3 {
        p[leaving].leave(party).await.unwrap();
        seq += 1;
        let expected_leader = p[leaving + 1].presence().user_id;
        let left_user = p[leaving].presence().user_id;
        for (index, player) in p.iter_mut().enumerate().skip(leaving + 1) {
            match player.next_party_event().await {
                WireEvent::LeaderChanged { seq: s, leader, .. } => {
                    assert_eq!(
                        (s, leader.user_id.as_str()),
                        (seq, expected_leader.as_str())
                    )
                }
                other => panic!("expected LeaderChanged first, got {other:?}"),
            }
            match player.next_party_event().await {
                WireEvent::MemberLeft {
                    seq: s,
                    presence,
                    reason,
                    ..
                } => {
                    assert_eq!((s, reason), (seq, LeaveReason::Left));
                    assert_eq!(presence.user_id, left_user);
                }
                other => panic!("expected MemberLeft, got {other:?}"),
            }
            if index == leaving + 1 {
                match player.next_party_event().await {
                    WireEvent::JoinRequestList {
                        seq: s, requests, ..
                    } => {
                        assert_eq!(s, seq);
                        assert!(requests.is_empty());
                    }
                    other => panic!("the new leader gets the queue, got {other:?}"),
                }
            }
        }
        let snapshot = p[3].get_party(party).await.unwrap();
        assert_eq!(snapshot.leader.user_id, expected_leader);
    }
    p[3].leave(party).await.unwrap();
    assert_eq!(server.handle.party_count(), 0);
}

#[tokio::test]
async fn closed_party_requests_accept_and_reject() {
    let server = start().await;
    // Ana, bob and cyd check seqs; dee only meets refusals, through the SDK.
    let mut p = wire_players(&server, &["ana", "bob", "cyd"]).await;
    let (dee, _dee_events) = server.client("dee").await;
    let party = p[0].create_party(false, 2, "").await.unwrap().party_id;

    assert_eq!(
        p[1].join_party(party).await.unwrap(),
        WireJoinOutcome::Queued {
            party_id: party,
            seq: 1
        }
    );
    assert_eq!(
        code(p[1].join_party(party).await),
        ErrorCode::AlreadyRequested
    );
    match p[0].next_party_event().await {
        WireEvent::JoinRequested { seq, presence, .. } => {
            assert_eq!((seq, presence.user_id.as_str()), (1, "bob"))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        p[2].join_party(party).await.unwrap(),
        WireJoinOutcome::Queued { seq: 2, .. }
    ));
    assert!(matches!(
        p[0].next_party_event().await,
        WireEvent::JoinRequested { seq: 2, .. }
    ));
    // At most max_size (2) requests wait.
    assert_eq!(
        code(dee.join_party(party).await),
        ErrorCode::TooManyRequests
    );

    let queue: Vec<_> = p[0]
        .list_join_requests(party)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.user_id)
        .collect();
    assert_eq!(queue, ["bob", "cyd"]);

    p[0].accept(party, "bob").await.unwrap();
    match p[1].next_party_event().await {
        WireEvent::Accepted(snapshot) => {
            assert_eq!(snapshot.seq, 3);
            assert_eq!(snapshot.members.len(), 2);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        p[0].next_party_event().await,
        WireEvent::MemberJoined { seq: 3, .. }
    ));

    // Full now: the accept fails and the request stays queued.
    assert_eq!(code(p[0].accept(party, "cyd").await), ErrorCode::PartyFull);
    let queue = p[0].list_join_requests(party).await.unwrap();
    assert_eq!(queue.len(), 1);
    // A full closed party does not queue more requests either.
    assert_eq!(code(dee.join_party(party).await), ErrorCode::PartyFull);

    p[0].reject(party, "cyd").await.unwrap();
    match p[2].next_party_event().await {
        WireEvent::JoinRejected { seq, reason, .. } => {
            assert_eq!((seq, reason), (4, RejectReason::Rejected))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(p[0].list_join_requests(party).await.unwrap().is_empty());
}

#[tokio::test]
async fn kick_promote_and_close() {
    let server = start().await;
    // Ana, bob and cyd check seqs; dee only asks to join, through the SDK.
    let mut p = wire_players(&server, &["ana", "bob", "cyd"]).await;
    let (dee, mut dee_events) = server.client("dee").await;
    let party = wire_open_party(&mut p, 4).await;

    p[0].kick(party, "bob").await.unwrap();
    assert!(matches!(
        p[1].next_party_event().await,
        WireEvent::Kicked { seq: 3, .. }
    ));
    for i in [0, 2] {
        match p[i].next_party_event().await {
            WireEvent::MemberLeft {
                reason, presence, ..
            } => {
                assert_eq!(reason, LeaveReason::Kicked);
                assert_eq!(presence.user_id, "bob");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(code(p[1].get_party(party).await), ErrorCode::NotMember);

    p[0].promote(party, "cyd").await.unwrap();
    for i in [0, 2] {
        match p[i].next_party_event().await {
            WireEvent::LeaderChanged { leader, seq, .. } => {
                assert_eq!((leader.user_id.as_str(), seq), ("cyd", 4))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(matches!(
        p[2].next_party_event().await,
        WireEvent::JoinRequestList { .. }
    ));
    assert_eq!(code(p[0].close_party(party).await), ErrorCode::NotLeader);

    // A waiting requester is told when the party closes.
    p[2].update_party(party, Some(false), None, None)
        .await
        .unwrap();
    for i in [0, 2] {
        assert!(matches!(
            p[i].next_party_event().await,
            WireEvent::Updated { open: false, .. }
        ));
    }
    assert!(matches!(
        dee.join_party(party).await.unwrap(),
        JoinOutcome::Queued { .. }
    ));
    assert!(matches!(
        p[2].next_party_event().await,
        WireEvent::JoinRequested { .. }
    ));

    p[2].close_party(party).await.unwrap();
    for i in [0, 2] {
        assert!(matches!(
            p[i].next_party_event().await,
            WireEvent::Closed { seq: 7, .. }
        ));
    }
    match next_event(&mut dee_events).await {
        Event::JoinRejected { party_id, reason } => {
            assert_eq!((party_id, reason), (party, RejectReason::PartyClosed))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(server.handle.party_count(), 0);
    assert_eq!(code(dee.join_party(party).await), ErrorCode::PartyNotFound);
}

#[tokio::test]
async fn the_old_remove_command_still_kicks_members_and_rejects_requests() {
    // Older clients send Remove for both; it must go on doing both.
    let server = start().await;
    let mut p = players(&server, &["ana", "bob", "cyd"]).await;
    let party = open_party(&mut p[..2], 4).await;
    p[0].client
        .update_party(
            party,
            PartyUpdate {
                open: Some(false),
                ..PartyUpdate::default()
            },
        )
        .await
        .unwrap();
    for i in [0, 1] {
        assert!(matches!(
            next_event(&mut p[i].events).await,
            Event::PartyUpdated { .. }
        ));
    }
    assert_eq!(
        p[2].client.join_party(party).await.unwrap(),
        JoinOutcome::Queued { party_id: party }
    );
    assert!(matches!(
        next_event(&mut p[0].events).await,
        Event::JoinRequested { .. }
    ));
    let remove = |user_id: &str| Command::Remove {
        party_id: party,
        user_id: user_id.to_string(),
    };

    // A waiting requester: rejected.
    assert_eq!(
        p[0].client.request(remove("cyd")).await.unwrap(),
        Reply::Done
    );
    match next_event(&mut p[2].events).await {
        Event::JoinRejected { party_id, reason } => {
            assert_eq!((party_id, reason), (party, RejectReason::Rejected))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(p[0]
        .client
        .list_join_requests(party)
        .await
        .unwrap()
        .is_empty());

    // A member: kicked.
    assert_eq!(
        p[0].client.request(remove("bob")).await.unwrap(),
        Reply::Done
    );
    assert_eq!(
        next_event(&mut p[1].events).await,
        Event::Kicked { party_id: party }
    );
    match next_event(&mut p[0].events).await {
        Event::MemberLeft { member, reason, .. } => {
            assert_eq!(
                (member.user_id.as_str(), reason),
                ("bob", LeaveReason::Kicked)
            )
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(p[0].client.get_party(party).await.unwrap().members.len(), 1);
    assert_eq!(
        code(p[1].client.get_party(party).await),
        ErrorCode::NotMember
    );
}

#[tokio::test]
async fn sequence_numbers_rise_by_one_per_change_as_every_member_sees_them() {
    let server = start().await;
    // Ana and bob check the numbers: wire level. The joiners use the SDK.
    let mut p = wire_players(&server, &["ana", "bob"]).await;
    let party = wire_open_party(&mut p, 16).await;
    // Ten players join at once: every member must still see 2..=11 in order.
    let joiners = players(
        &server,
        &["j0", "j1", "j2", "j3", "j4", "j5", "j6", "j7", "j8", "j9"],
    )
    .await;
    let joins = joiners.iter().map(|j| j.client.join_party(party));
    for outcome in futures_join_all(joins).await {
        joined(outcome.unwrap());
    }
    for player in p.iter_mut() {
        for expected in 2..=11 {
            match player.next_party_event().await {
                WireEvent::MemberJoined { seq, .. } => assert_eq!(seq, expected),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    // Session event numbers also rise by exactly one.
    p[0].update_party(party, None, Some("x".into()), None)
        .await
        .unwrap();
    let mut last = None;
    for _ in 0..2 {
        p[0].update_party(party, None, Some("y".into()), None)
            .await
            .unwrap();
        let (seq, event) = p[0].next_event().await;
        if let Some(previous) = last {
            assert_eq!(seq, previous + 1);
        }
        last = Some(seq);
        assert!(event.party_seq().is_some());
    }
}

/// Polls futures concurrently without an extra dependency.
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for (future, output) in set.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("finished")).collect()
}

#[tokio::test]
async fn requests_expire_after_the_configured_limit() {
    let server = start_with(|c| c.join_request_ttl = std::time::Duration::from_millis(300)).await;
    // Bob checks the seq of his rejection: wire level. Ana uses the SDK.
    let (ana, mut ana_events) = server.client("ana").await;
    let mut bob = WireClient::connect(&server, "bob").await;
    let party = ana
        .create_party(settings(false, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::JoinRequested { .. }
    ));
    match bob.next_party_event().await {
        WireEvent::JoinRejected { reason, seq, .. } => {
            assert_eq!((reason, seq), (RejectReason::Expired, 2))
        }
        other => panic!("unexpected {other:?}"),
    }
    match next_event(&mut ana_events).await {
        Event::JoinRequestGone {
            reason, requester, ..
        } => {
            assert_eq!(reason, RequestGoneReason::Expired);
            assert_eq!(requester.user_id, "bob");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(ana.list_join_requests(party).await.unwrap().is_empty());
    // Expired means gone: the requester may ask again.
    assert!(matches!(
        bob.join_party(party).await.unwrap(),
        WireJoinOutcome::Queued { .. }
    ));
}

async fn expect_request_gone(events: &mut Events, expected: RequestGoneReason, user: &str) {
    match next_event(events).await {
        Event::JoinRequestGone {
            reason, requester, ..
        } => {
            assert_eq!((reason, requester.user_id.as_str()), (expected, user))
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn requests_are_cancelled_by_leave_and_vanish_with_their_session() {
    let server = start().await;
    let mut p = players(&server, &["ana", "bob", "cyd"]).await;
    let party = p[0]
        .client
        .create_party(settings(false, 4, ""))
        .await
        .unwrap()
        .party_id;
    p[1].client.join_party(party).await.unwrap();
    p[2].client.join_party(party).await.unwrap();
    for _ in 0..2 {
        assert!(matches!(
            next_event(&mut p[0].events).await,
            Event::JoinRequested { .. }
        ));
    }
    p[1].client.leave_party(party).await.unwrap();
    expect_request_gone(&mut p[0].events, RequestGoneReason::Cancelled, "bob").await;
    let cyd = p.remove(2);
    cyd.client.close().await;
    expect_request_gone(&mut p[0].events, RequestGoneReason::SessionEnded, "cyd").await;
    assert!(p[0]
        .client
        .list_join_requests(party)
        .await
        .unwrap()
        .is_empty());
    assert_no_pending(&mut p[1].events);
}

#[tokio::test]
async fn a_closed_session_leaves_at_once_and_leadership_passes() {
    let server = start().await;
    let mut p = players(&server, &["ana", "bob", "cyd"]).await;
    let party = open_party(&mut p, 4).await;
    let ana = p.remove(0);
    ana.client.close().await;
    for player in p.iter_mut() {
        assert!(matches!(
            next_event(&mut player.events).await,
            Event::LeaderChanged { .. }
        ));
        match next_event(&mut player.events).await {
            Event::MemberLeft { reason, member, .. } => {
                assert_eq!(
                    (reason, member.user_id.as_str()),
                    (LeaveReason::SessionEnded, "ana")
                )
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let snapshot = p[1].client.get_party(party).await.unwrap();
    assert_eq!(snapshot.leader.user_id, "bob");
    for player in p {
        player.client.close().await;
    }
    // The last sessions going away takes the party with them.
    for _ in 0..100 {
        if server.handle.party_count() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(server.handle.party_count(), 0);
}
