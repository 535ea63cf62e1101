//! Every party operation between real clients over real QUIC.
mod support;

use partyline::client::{Client, ClientEvent, Events};
use partyline::protocol::{
    ErrorCode, Event, JoinOutcome, LeaveReason, PartyId, PartySnapshot, RejectReason,
    RequestGoneReason,
};
use support::*;

struct Player {
    client: Client,
    events: Events,
}

impl Player {
    fn user(&self) -> String {
        self.client.presence().user_id
    }
}

async fn players(server: &TestServer, names: &[&str]) -> Vec<Player> {
    let mut out = Vec::new();
    for name in names {
        let (client, events) = server.client(name).await;
        out.push(Player { client, events });
    }
    out
}

fn joined(outcome: JoinOutcome) -> PartySnapshot {
    match outcome {
        JoinOutcome::Joined(snapshot) => snapshot,
        other => panic!("expected Joined, got {other:?}"),
    }
}

/// The first player creates an open party; the others join in order. Every
/// join event is consumed so each test starts from quiet event streams.
async fn open_party(players: &mut [Player], max_size: u16) -> PartyId {
    let party = players[0]
        .client
        .create_party(true, max_size, "")
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

fn code(result: Result<impl std::fmt::Debug, partyline::client::ClientError>) -> ErrorCode {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => error
            .code()
            .unwrap_or_else(|| panic!("expected a refusal, got {error}")),
    }
}

#[tokio::test]
async fn create_join_get_update_leave_and_the_party_is_gone_when_empty() {
    let server = start().await;
    let mut p = players(&server, &["ana", "bob"]).await;
    let created = p[0].client.create_party(true, 4, "ranked").await.unwrap();
    assert_eq!(created.seq, 0);
    assert!(created.open);
    assert_eq!(created.max_size, 4);
    assert_eq!(created.label, "ranked");
    assert_eq!(created.leader.user_id, "ana");
    assert_eq!(created.members.len(), 1);
    let party = created.party_id;

    let snapshot = joined(p[1].client.join_party(party).await.unwrap());
    assert_eq!(snapshot.seq, 1);
    let users: Vec<_> = snapshot
        .members
        .iter()
        .map(|m| m.user_id.as_str())
        .collect();
    assert_eq!(users, ["ana", "bob"]);
    match next_event(&mut p[0].events).await {
        Event::MemberJoined { seq, presence, .. } => {
            assert_eq!(seq, 1);
            assert_eq!(presence, p[1].client.presence());
        }
        other => panic!("unexpected {other:?}"),
    }

    assert_eq!(p[1].client.get_party(party).await.unwrap(), snapshot);

    let updated = p[0]
        .client
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
        match next_event(&mut player.events).await {
            Event::Updated {
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

    p[1].client.leave(party).await.unwrap();
    match next_event(&mut p[0].events).await {
        Event::MemberLeft {
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
    p[0].client.leave(party).await.unwrap();
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
        code(p[0].client.create_party(true, 0, "").await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(p[0].client.create_party(true, 257, "").await),
        ErrorCode::InvalidArgument
    );
    let long_label = "l".repeat(2049);
    assert_eq!(
        code(p[0].client.create_party(true, 4, &long_label).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(p[0].client.join_party(uuid::Uuid::new_v4()).await),
        ErrorCode::PartyNotFound
    );

    let party = open_party(&mut p[..3], 3).await;
    let (bob, dee) = (&p[1].client, &p[3].client);
    assert_eq!(code(bob.accept(party, "dee").await), ErrorCode::NotLeader);
    assert_eq!(code(bob.remove(party, "cyd").await), ErrorCode::NotLeader);
    assert_eq!(code(bob.promote(party, "cyd").await), ErrorCode::NotLeader);
    assert_eq!(code(bob.close_party(party).await), ErrorCode::NotLeader);
    assert_eq!(
        code(bob.update_party(party, Some(false), None, None).await),
        ErrorCode::NotLeader
    );
    assert_eq!(
        code(bob.list_join_requests(party).await),
        ErrorCode::NotLeader
    );
    assert_eq!(code(dee.get_party(party).await), ErrorCode::NotMember);
    assert_eq!(code(dee.leave(party).await), ErrorCode::NotMember);
    assert_eq!(code(dee.close_party(party).await), ErrorCode::NotMember);
    assert_eq!(
        code(
            dee.send_data_reliable(party, 1, bytes::Bytes::from_static(b"x"))
                .await
        ),
        ErrorCode::NotMember
    );
    assert_eq!(code(dee.join_party(party).await), ErrorCode::PartyFull);
    assert_eq!(code(bob.join_party(party).await), ErrorCode::AlreadyMember);

    let ana = &p[0].client;
    assert_eq!(
        code(ana.promote(party, "dee").await),
        ErrorCode::MemberNotFound
    );
    assert_eq!(
        code(ana.remove(party, "dee").await),
        ErrorCode::MemberNotFound
    );
    assert_eq!(
        code(ana.remove(party, "ana").await),
        ErrorCode::CannotRemoveSelf
    );
    assert_eq!(
        code(ana.accept(party, "dee").await),
        ErrorCode::RequestNotFound
    );
    assert_eq!(
        code(ana.update_party(party, None, None, Some(2)).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(ana.update_party(party, None, None, Some(257)).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(ana.update_party(party, None, Some(long_label), None).await),
        ErrorCode::InvalidArgument
    );
    // Promoting oneself is a no-op success that changes nothing.
    ana.promote(party, "ana").await.unwrap();
    assert_eq!(ana.get_party(party).await.unwrap().seq, 2);

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
    let mut p = players(&server, &["ana", "bob", "cyd", "dee"]).await;
    let party = open_party(&mut p, 4).await;
    let mut seq = 3;
    for leaving in 0..3 {
        p[leaving].client.leave(party).await.unwrap();
        seq += 1;
        let expected_leader = p[leaving + 1].user();
        let left_user = p[leaving].user();
        for (index, player) in p.iter_mut().enumerate().skip(leaving + 1) {
            match next_event(&mut player.events).await {
                Event::LeaderChanged { seq: s, leader, .. } => {
                    assert_eq!(
                        (s, leader.user_id.as_str()),
                        (seq, expected_leader.as_str())
                    )
                }
                other => panic!("expected LeaderChanged first, got {other:?}"),
            }
            match next_event(&mut player.events).await {
                Event::MemberLeft {
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
                match next_event(&mut player.events).await {
                    Event::JoinRequestList {
                        seq: s, requests, ..
                    } => {
                        assert_eq!(s, seq);
                        assert!(requests.is_empty());
                    }
                    other => panic!("the new leader gets the queue, got {other:?}"),
                }
            }
        }
        let snapshot = p[3].client.get_party(party).await.unwrap();
        assert_eq!(snapshot.leader.user_id, expected_leader);
    }
    p[3].client.leave(party).await.unwrap();
    assert_eq!(server.handle.party_count(), 0);
}

#[tokio::test]
async fn closed_party_requests_accept_and_reject() {
    let server = start().await;
    let mut p = players(&server, &["ana", "bob", "cyd", "dee"]).await;
    let party = p[0]
        .client
        .create_party(false, 2, "")
        .await
        .unwrap()
        .party_id;

    assert_eq!(
        p[1].client.join_party(party).await.unwrap(),
        JoinOutcome::Queued {
            party_id: party,
            seq: 1
        }
    );
    assert_eq!(
        code(p[1].client.join_party(party).await),
        ErrorCode::AlreadyRequested
    );
    match next_event(&mut p[0].events).await {
        Event::JoinRequested { seq, presence, .. } => {
            assert_eq!((seq, presence.user_id.as_str()), (1, "bob"))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        p[2].client.join_party(party).await.unwrap(),
        JoinOutcome::Queued { seq: 2, .. }
    ));
    assert!(matches!(
        next_event(&mut p[0].events).await,
        Event::JoinRequested { seq: 2, .. }
    ));
    // At most max_size (2) requests wait.
    assert_eq!(
        code(p[3].client.join_party(party).await),
        ErrorCode::TooManyRequests
    );

    let queue: Vec<_> = p[0]
        .client
        .list_join_requests(party)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.user_id)
        .collect();
    assert_eq!(queue, ["bob", "cyd"]);

    p[0].client.accept(party, "bob").await.unwrap();
    match next_event(&mut p[1].events).await {
        Event::Accepted(snapshot) => {
            assert_eq!(snapshot.seq, 3);
            assert_eq!(snapshot.members.len(), 2);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        next_event(&mut p[0].events).await,
        Event::MemberJoined { seq: 3, .. }
    ));

    // Full now: the accept fails and the request stays queued.
    assert_eq!(
        code(p[0].client.accept(party, "cyd").await),
        ErrorCode::PartyFull
    );
    let queue = p[0].client.list_join_requests(party).await.unwrap();
    assert_eq!(queue.len(), 1);
    // A full closed party does not queue more requests either.
    assert_eq!(
        code(p[3].client.join_party(party).await),
        ErrorCode::PartyFull
    );

    p[0].client.remove(party, "cyd").await.unwrap();
    match next_event(&mut p[2].events).await {
        Event::JoinRejected { seq, reason, .. } => {
            assert_eq!((seq, reason), (4, RejectReason::Rejected))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(p[0]
        .client
        .list_join_requests(party)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn kick_promote_and_close() {
    let server = start().await;
    let mut p = players(&server, &["ana", "bob", "cyd", "dee"]).await;
    let party = open_party(&mut p[..3], 4).await;

    p[0].client.remove(party, "bob").await.unwrap();
    assert!(matches!(
        next_event(&mut p[1].events).await,
        Event::Kicked { seq: 3, .. }
    ));
    for i in [0, 2] {
        match next_event(&mut p[i].events).await {
            Event::MemberLeft {
                reason, presence, ..
            } => {
                assert_eq!(reason, LeaveReason::Kicked);
                assert_eq!(presence.user_id, "bob");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        code(p[1].client.get_party(party).await),
        ErrorCode::NotMember
    );

    p[0].client.promote(party, "cyd").await.unwrap();
    for i in [0, 2] {
        match next_event(&mut p[i].events).await {
            Event::LeaderChanged { leader, seq, .. } => {
                assert_eq!((leader.user_id.as_str(), seq), ("cyd", 4))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(matches!(
        next_event(&mut p[2].events).await,
        Event::JoinRequestList { .. }
    ));
    assert_eq!(
        code(p[0].client.close_party(party).await),
        ErrorCode::NotLeader
    );

    // A waiting requester is told when the party closes.
    p[2].client
        .update_party(party, Some(false), None, None)
        .await
        .unwrap();
    for i in [0, 2] {
        assert!(matches!(
            next_event(&mut p[i].events).await,
            Event::Updated { open: false, .. }
        ));
    }
    assert!(matches!(
        p[3].client.join_party(party).await.unwrap(),
        JoinOutcome::Queued { .. }
    ));
    assert!(matches!(
        next_event(&mut p[2].events).await,
        Event::JoinRequested { .. }
    ));

    p[2].client.close_party(party).await.unwrap();
    for i in [0, 2] {
        assert!(matches!(
            next_event(&mut p[i].events).await,
            Event::Closed { seq: 7, .. }
        ));
    }
    match next_event(&mut p[3].events).await {
        Event::JoinRejected { reason, .. } => assert_eq!(reason, RejectReason::PartyClosed),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(server.handle.party_count(), 0);
    assert_eq!(
        code(p[3].client.join_party(party).await),
        ErrorCode::PartyNotFound
    );
}

#[tokio::test]
async fn sequence_numbers_rise_by_one_per_change_as_every_member_sees_them() {
    let server = start().await;
    let mut p = players(&server, &["ana", "bob"]).await;
    let party = open_party(&mut p, 16).await;
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
            match next_event(&mut player.events).await {
                Event::MemberJoined { seq, .. } => assert_eq!(seq, expected),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    // Session event numbers also rise by exactly one.
    p[0].client
        .update_party(party, None, Some("x".into()), None)
        .await
        .unwrap();
    let mut last = None;
    for _ in 0..2 {
        p[0].client
            .update_party(party, None, Some("y".into()), None)
            .await
            .unwrap();
        match next(&mut p[0].events).await {
            ClientEvent::Event { seq, event } => {
                if let Some(previous) = last {
                    assert_eq!(seq, previous + 1);
                }
                last = Some(seq);
                assert!(event.party_seq().is_some());
            }
            other => panic!("unexpected {other:?}"),
        }
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
    let mut p = players(&server, &["ana", "bob"]).await;
    let party = p[0]
        .client
        .create_party(false, 4, "")
        .await
        .unwrap()
        .party_id;
    p[1].client.join_party(party).await.unwrap();
    assert!(matches!(
        next_event(&mut p[0].events).await,
        Event::JoinRequested { .. }
    ));
    match next_event(&mut p[1].events).await {
        Event::JoinRejected { reason, seq, .. } => {
            assert_eq!((reason, seq), (RejectReason::Expired, 2))
        }
        other => panic!("unexpected {other:?}"),
    }
    match next_event(&mut p[0].events).await {
        Event::JoinRequestGone {
            reason, presence, ..
        } => {
            assert_eq!(reason, RequestGoneReason::Expired);
            assert_eq!(presence.user_id, "bob");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(p[0]
        .client
        .list_join_requests(party)
        .await
        .unwrap()
        .is_empty());
    // Expired means gone: the requester may ask again.
    assert!(matches!(
        p[1].client.join_party(party).await.unwrap(),
        JoinOutcome::Queued { .. }
    ));
}

async fn expect_request_gone(events: &mut Events, expected: RequestGoneReason, user: &str) {
    match next_event(events).await {
        Event::JoinRequestGone {
            reason, presence, ..
        } => {
            assert_eq!((reason, presence.user_id.as_str()), (expected, user))
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
        .create_party(false, 4, "")
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
    p[1].client.leave(party).await.unwrap();
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
            Event::MemberLeft {
                reason, presence, ..
            } => {
                assert_eq!(
                    (reason, presence.user_id.as_str()),
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
