//! Ready checks over real QUIC, through the SDK: the leader asks, members
//! answer and change their answers, everyone sees the tally live (events
//! and the roster), the check ends when all are ready or the leader
//! cancels, every refusal is typed, a resume replays a check, and the
//! game's hooks are asked before one starts and told when it ends. (The
//! time-out runs on the server's timer: `src/server/hub_tests.rs` proves
//! it on the paused clock, across nodes; the rules' own property test is
//! `tests/ready_check_rules.rs`.)

mod support;

use partyline::protocol::{ErrorBody, ErrorCode as WireCode};
use partyline::server::{AfterEvent, BeforeCall, Decision, HookFuture, HookPoint, Hooks};
use partyline_client::protocol::{ReadyCheck, ReadyCheckOutcome};
use partyline_client::{ErrorCode, Event, Events, PartyId, Presence};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

const MINUTE: Duration = Duration::from_secs(60);

fn users(who: &[Presence]) -> Vec<&str> {
    who.iter().map(|p| p.user_id.as_str()).collect()
}

async fn started(events: &mut Events) -> ReadyCheck {
    match next_event(events).await {
        Event::ReadyCheckStarted { check, .. } => check,
        other => panic!("expected a ready check, got {other:?}"),
    }
}

async fn answered(events: &mut Events) -> (String, bool) {
    match next_event(events).await {
        Event::ReadyCheckAnswered { member, ready, .. } => (member.user_id, ready),
        other => panic!("expected an answer, got {other:?}"),
    }
}

/// The end: its outcome and the three lists, by user.
async fn ended(events: &mut Events) -> (ReadyCheckOutcome, [Vec<String>; 3]) {
    match next_event(events).await {
        Event::ReadyCheckEnded {
            outcome,
            ready,
            not_ready,
            no_answer,
            ..
        } => {
            let owned = |who: Vec<Presence>| who.into_iter().map(|p| p.user_id).collect();
            (outcome, [owned(ready), owned(not_ready), owned(no_answer)])
        }
        other => panic!("expected the end, got {other:?}"),
    }
}

#[tokio::test]
async fn members_answer_see_the_tally_and_the_last_ready_ends_it() {
    let server = start().await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (cy, mut cy_events) = server.client("cy").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    cy.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;
    next_event(&mut ana_events).await;
    next_event(&mut bob_events).await;

    ana.start_ready_check(party, "pull?", MINUTE).await.unwrap();
    let check = started(&mut bob_events).await;
    assert_eq!(check.message, "pull?");
    assert_eq!(check.timeout_ms, 60_000);
    assert_eq!(users(&check.ready), ["ana"], "the leader counts as ready");
    assert_eq!(users(&check.no_answer), ["bob", "cy"]);
    started(&mut ana_events).await;
    started(&mut cy_events).await;

    // Bob is not ready, then is: every member sees each answer, and the
    // roster keeps the tally.
    bob.answer_ready_check(party, check.check_id, false)
        .await
        .unwrap();
    bob.answer_ready_check(party, check.check_id, true)
        .await
        .unwrap();
    // The same answer again changes nothing.
    bob.answer_ready_check(party, check.check_id, true)
        .await
        .unwrap();
    for events in [&mut ana_events, &mut bob_events, &mut cy_events] {
        assert_eq!(answered(events).await, ("bob".into(), false));
        assert_eq!(answered(events).await, ("bob".into(), true));
    }
    let tally = cy.party(party).unwrap().ready_check.unwrap();
    assert_eq!(users(&tally.ready), ["ana", "bob"]);
    assert_eq!(users(&tally.no_answer), ["cy"]);

    // Cy is the last: ready, and the check is over for everyone.
    cy.answer_ready_check(party, check.check_id, true)
        .await
        .unwrap();
    for events in [&mut ana_events, &mut bob_events, &mut cy_events] {
        assert_eq!(answered(events).await, ("cy".into(), true));
        let (outcome, [ready, not_ready, no_answer]) = ended(events).await;
        assert_eq!(outcome, ReadyCheckOutcome::AllReady);
        assert_eq!(ready, ["ana", "bob", "cy"]);
        assert!(not_ready.is_empty() && no_answer.is_empty());
    }
    assert!(ana.party(party).unwrap().ready_check.is_none());
    assert!(ana.get_party(party).await.unwrap().ready_check.is_none());
    // An answer to the ended check is refused: it never counts for another.
    let late = bob.answer_ready_check(party, check.check_id, false).await;
    assert_eq!(code(late), ErrorCode::NoReadyCheck);
}

#[tokio::test]
async fn every_refusal_is_typed_and_changes_nothing() {
    let server = start().await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (cy, _cy_events) = server.client("cy").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;

    assert_eq!(
        code(bob.start_ready_check(party, "", MINUTE).await),
        ErrorCode::NotLeader
    );
    assert_eq!(
        code(cy.start_ready_check(party, "", MINUTE).await),
        ErrorCode::NotMember
    );
    let short = Duration::from_millis(4_999);
    assert_eq!(
        code(ana.start_ready_check(party, "", short).await),
        ErrorCode::InvalidArgument
    );
    let long = Duration::from_millis(120_001);
    assert_eq!(
        code(ana.start_ready_check(party, "", long).await),
        ErrorCode::InvalidArgument
    );
    let loud = "x".repeat(257);
    assert_eq!(
        code(ana.start_ready_check(party, &loud, MINUTE).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(ana.start_ready_check(party, "a\u{7}", MINUTE).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(ana.cancel_ready_check(party).await),
        ErrorCode::NoReadyCheck
    );
    assert_eq!(
        code(bob.answer_ready_check(party, 1, true).await),
        ErrorCode::NoReadyCheck
    );
    assert_eq!(
        code(bob.answer_ready_check(PartyId::random(), 1, true).await),
        ErrorCode::PartyNotFound
    );
    assert_no_pending(&mut bob_events);

    ana.start_ready_check(party, "", Duration::from_secs(5))
        .await
        .unwrap();
    let check = started(&mut bob_events).await;
    assert_eq!(
        code(ana.start_ready_check(party, "", MINUTE).await),
        ErrorCode::ReadyCheckRunning
    );
    assert_eq!(
        code(bob.cancel_ready_check(party).await),
        ErrorCode::NotLeader
    );
    let stale = check.check_id - 1;
    assert_eq!(
        code(bob.answer_ready_check(party, stale, true).await),
        ErrorCode::NoReadyCheck
    );
    // Cy joins during the check: not asked.
    cy.join_party(party).await.unwrap();
    let joined = cy.party(party).unwrap();
    assert_eq!(
        joined.ready_check.map(|c| c.check_id),
        Some(check.check_id),
        "its snapshot shows it"
    );
    assert_eq!(
        code(cy.answer_ready_check(party, check.check_id, true).await),
        ErrorCode::NotAsked
    );
    assert!(matches!(
        next_event(&mut bob_events).await,
        Event::MemberJoined { .. }
    ));

    ana.cancel_ready_check(party).await.unwrap();
    let (outcome, [ready, not_ready, no_answer]) = ended(&mut bob_events).await;
    assert_eq!(outcome, ReadyCheckOutcome::Cancelled);
    assert_eq!(
        (ready, not_ready, no_answer),
        (vec!["ana".to_string()], vec![], vec!["bob".to_string()])
    );
}

#[tokio::test]
async fn a_leaver_counts_as_not_ready_and_a_resume_replays_the_check() {
    let server = start().await;
    let (ana, _ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (cy, _cy_events) = server.client("cy").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    cy.join_party(party).await.unwrap();
    next_event(&mut bob_events).await;

    // Bob's view of the wire, to resume from before the check.
    let ticket = bob.resume_ticket();
    ana.start_ready_check(party, "", MINUTE).await.unwrap();
    let check = started(&mut bob_events).await;
    cy.answer_ready_check(party, check.check_id, true)
        .await
        .unwrap();
    assert_eq!(answered(&mut bob_events).await, ("cy".into(), true));
    cy.leave_party(party).await.unwrap();
    assert!(matches!(
        next_event(&mut bob_events).await,
        Event::MemberLeft { .. }
    ));
    assert_eq!(answered(&mut bob_events).await, ("cy".into(), false));
    let tally = bob.party(party).unwrap().ready_check.unwrap();
    assert_eq!(users(&tally.not_ready), ["cy"]);

    // A raw resume of Bob's session from before the check replays it all,
    // each event with the party's seq.
    let mut wire = support::wire::WireClient::resume(&server, "bob", ticket)
        .await
        .unwrap();
    let mut replayed = Vec::new();
    for _ in 0..4 {
        replayed.push(wire.next_party_event().await);
    }
    assert!(
        matches!(&replayed[0], partyline::protocol::Event::ReadyCheckStarted { seq, check, .. } if *seq == check.check_id)
    );
    assert!(matches!(
        &replayed[1],
        partyline::protocol::Event::ReadyCheckAnswered { ready: true, .. }
    ));
    assert!(matches!(
        &replayed[2],
        partyline::protocol::Event::MemberLeft { .. }
    ));
    assert!(
        matches!(&replayed[3], partyline::protocol::Event::ReadyCheckAnswered { ready: false, seq, .. } if Some(*seq) == replayed[2].party_seq())
    );
    // Its snapshot shows the running check too.
    let snapshot = wire.get_party(party).await.unwrap();
    assert_eq!(snapshot.ready_check.map(|c| c.not_ready.len()), Some(1));
}

/// Denies ready checks whose message says "now", and records the ends.
#[derive(Default)]
struct ReadyRules {
    ended: Mutex<Vec<AfterEvent>>,
}

impl Hooks for ReadyRules {
    fn before<'a>(&'a self, call: &'a BeforeCall) -> HookFuture<'a, Decision> {
        let decision = match &call.command {
            partyline::protocol::Command::StartReadyCheck { message, .. }
                if call.point == HookPoint::ReadyCheck && message == "now" =>
            {
                Decision::Deny(ErrorBody::new(WireCode::Denied, "not during a fight"))
            }
            _ => Decision::Allow,
        };
        Box::pin(async move { decision })
    }

    fn after<'a>(&'a self, event: &'a AfterEvent) -> HookFuture<'a, ()> {
        if matches!(event, AfterEvent::ReadyCheckEnded { .. }) {
            self.ended.lock().unwrap().push(event.clone());
        }
        Box::pin(async {})
    }
}

#[tokio::test]
async fn the_game_s_hooks_may_refuse_a_check_and_hear_how_each_ended() {
    let rules = Arc::new(ReadyRules::default());
    let server = start_with_hooks(rules.clone(), |_| {}).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let party = ana
        .create_party(settings(true, 2, ""))
        .await
        .unwrap()
        .party_id;
    let denied = ana.start_ready_check(party, "now", MINUTE).await;
    assert_eq!(code(denied), ErrorCode::Denied);
    // A party of one is all ready at once.
    ana.start_ready_check(party, "ok", MINUTE).await.unwrap();
    started(&mut ana_events).await;
    let (outcome, _) = ended(&mut ana_events).await;
    assert_eq!(outcome, ReadyCheckOutcome::AllReady);
    let deadline = std::time::Instant::now() + WAIT;
    while rules.ended.lock().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the after-hook was told"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ends = rules.ended.lock().unwrap().clone();
    match &ends[..] {
        [AfterEvent::ReadyCheckEnded {
            party_id,
            outcome: ReadyCheckOutcome::AllReady,
            ready,
            ..
        }] => {
            assert_eq!(*party_id, party);
            assert_eq!(users(ready), ["ana"]);
        }
        other => panic!("expected one end, got {other:?}"),
    }
}
