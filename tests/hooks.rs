//! Server hooks over real QUIC: every hook point is asked, each decision
//! (allow, deny, modify, a modify of the wrong kind) does what it says, a
//! slow or panicking hook fails only its own command, after-hooks hear
//! what happened, and the one-party-per-leader example does its job.
mod support;

#[path = "../examples/one_party_per_leader.rs"]
mod one_party_per_leader;

use partyline::protocol::Command;
use partyline::server::{AfterEvent, BeforeCall, Decision, HookFuture, HookPoint, Hooks};
use partyline_client::{ErrorCode, Event, JoinOutcome, LeaveReason, PartyUpdate, TicketRequest};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

/// Records every before-call (allowing it) and every after-event.
#[derive(Default)]
struct Recorder {
    asked: Mutex<Vec<(HookPoint, String)>>,
    after: Mutex<Vec<AfterEvent>>,
}

impl Hooks for Recorder {
    fn before<'a>(&'a self, call: &'a BeforeCall) -> HookFuture<'a, Decision> {
        self.asked
            .lock()
            .unwrap()
            .push((call.point, call.caller.user_id.clone()));
        Box::pin(async { Decision::Allow })
    }

    fn after<'a>(&'a self, event: &'a AfterEvent) -> HookFuture<'a, ()> {
        self.after.lock().unwrap().push(event.clone());
        Box::pin(async {})
    }
}

#[tokio::test]
async fn every_hook_point_is_asked_with_its_caller() {
    let recorder = Arc::new(Recorder::default());
    let server = start_with_hooks(recorder.clone(), |_| {}).await;
    let (ana, _ana_events) = server.client("ana").await;
    let (bob, _bob_events) = server.client("bob").await;
    let (cy, _cy_events) = server.client("cy").await;

    let party = ana
        .create_party(settings(true, 4, "hooked"))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    ana.update_party(
        party,
        PartyUpdate {
            open: Some(false),
            ..PartyUpdate::default()
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        cy.join_party(party).await.unwrap(),
        JoinOutcome::Queued { .. }
    ));
    ana.reject(party, "cy").await.unwrap();
    cy.join_party(party).await.unwrap();
    ana.accept(party, "cy").await.unwrap();
    ana.send_data_reliable(party, 7, b"hi").await.unwrap();
    ana.invite(party, "dee").await.unwrap();
    ana.kick(party, "cy").await.unwrap();
    ana.promote(party, "bob").await.unwrap();
    bob.submit_ticket(TicketRequest {
        party_id: Some(party),
        min_count: 4,
        max_count: 4,
        count_multiple: 1,
        ..TicketRequest::default()
    })
    .await
    .unwrap();
    bob.close_party(party).await.unwrap();
    // Commands no hook is asked about: not recorded.
    ana.set_status("online", true).await.unwrap();

    let asked = recorder.asked.lock().unwrap().clone();
    let expected: Vec<(HookPoint, String)> = [
        (HookPoint::CreateParty, "ana"),
        (HookPoint::Join, "bob"),
        (HookPoint::Update, "ana"),
        (HookPoint::JoinRequest, "cy"),
        (HookPoint::Reject, "ana"),
        (HookPoint::JoinRequest, "cy"),
        (HookPoint::Accept, "ana"),
        (HookPoint::ReliableData, "ana"),
        (HookPoint::Invite, "ana"),
        (HookPoint::Kick, "ana"),
        (HookPoint::Promote, "ana"),
        (HookPoint::Matchmaking, "bob"),
        (HookPoint::Close, "bob"),
    ]
    .into_iter()
    .map(|(point, user)| (point, user.to_string()))
    .collect();
    assert_eq!(asked, expected);
}

#[tokio::test]
async fn after_hooks_hear_parties_begin_and_end_and_members_come_and_go() {
    let recorder = Arc::new(Recorder::default());
    let server = start_with_hooks(recorder.clone(), |_| {}).await;
    let (ana, _ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let first = ana.create_party(settings(true, 4, "")).await.unwrap();
    bob.join_party(first.party_id).await.unwrap();
    // The leader leaves: Bob leads; then Bob, the last, leaves too.
    ana.leave_party(first.party_id).await.unwrap();
    loop {
        if let Event::LeaderChanged { .. } = next(&mut bob_events).await {
            break;
        }
    }
    bob.leave_party(first.party_id).await.unwrap();
    // A close ends a party with members in it.
    let second = ana.create_party(settings(true, 4, "")).await.unwrap();
    ana.close_party(second.party_id).await.unwrap();

    let (ana_p, bob_p) = (ana.presence(), bob.presence());
    let expected = vec![
        AfterEvent::PartyCreated {
            party_id: first.party_id,
            leader: ana_p.clone(),
        },
        AfterEvent::MemberJoined {
            party_id: first.party_id,
            member: bob_p.clone(),
        },
        AfterEvent::LeaderChanged {
            party_id: first.party_id,
            leader: bob_p.clone(),
        },
        AfterEvent::MemberLeft {
            party_id: first.party_id,
            member: ana_p.clone(),
            reason: LeaveReason::Left,
        },
        AfterEvent::MemberLeft {
            party_id: first.party_id,
            member: bob_p.clone(),
            reason: LeaveReason::Left,
        },
        AfterEvent::PartyClosed {
            party_id: first.party_id,
        },
        AfterEvent::PartyCreated {
            party_id: second.party_id,
            leader: ana_p.clone(),
        },
        AfterEvent::PartyClosed {
            party_id: second.party_id,
        },
    ];
    // After-hooks run on their own task: wait for them to catch up.
    let seen = tokio::time::timeout(WAIT, async {
        loop {
            let seen = recorder.after.lock().unwrap().clone();
            if seen.len() >= expected.len() {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("after-hooks told");
    assert_eq!(seen, expected);
}

/// Denies joins, clamps and labels creates, answers a close with an
/// update (the wrong kind), sleeps on "slow", panics on "boom".
struct Rules;

impl Hooks for Rules {
    fn before<'a>(&'a self, call: &'a BeforeCall) -> HookFuture<'a, Decision> {
        Box::pin(async move {
            match &call.command {
                Command::CreateParty { label, .. } if label == "slow" => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Decision::Allow
                }
                Command::CreateParty { label, .. } if label == "boom" => {
                    panic!("a bug in the game's rules")
                }
                Command::CreateParty {
                    open,
                    max_size,
                    invite_policy,
                    state,
                    ..
                } => Decision::Modify(Command::CreateParty {
                    open: *open,
                    max_size: (*max_size).min(4),
                    label: "ranked".into(),
                    invite_policy: *invite_policy,
                    state: state.clone(),
                    leader_policy: Default::default(),
                }),
                Command::JoinParty { .. } if call.caller.user_id == "mallory" => {
                    Decision::deny("mallory may not join parties")
                }
                Command::Close { party_id } => Decision::Modify(Command::Update {
                    party_id: *party_id,
                    open: None,
                    label: None,
                    max_size: None,
                    invite_policy: None,
                    leader_policy: None,
                }),
                _ => Decision::Allow,
            }
        })
    }
}

#[tokio::test]
async fn allow_deny_and_modify_do_what_they_say() {
    let server = start_with_hooks(Rules, |_| {}).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (mallory, _m) = server.client("mallory").await;
    let (bob, _b) = server.client("bob").await;

    // Modify: the hook clamped the size and set the label.
    let party = ana.create_party(settings(true, 16, "mine")).await.unwrap();
    assert_eq!((party.max_size, party.label.as_str()), (4, "ranked"));

    // Deny: the hook's code and message reach the client; nothing changed.
    let refused = mallory.join_party(party.party_id).await;
    match refused {
        Err(partyline_client::ClientError::Refused(body)) => {
            assert_eq!(body.code, ErrorCode::Denied);
            assert_eq!(body.message, "mallory may not join parties");
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    // Allow: others join as usual, and Ana hears only Bob.
    bob.join_party(party.party_id).await.unwrap();
    match next(&mut ana_events).await {
        Event::MemberJoined { member, .. } => assert_eq!(member.user_id, "bob"),
        other => panic!("expected Bob's join, got {other:?}"),
    }

    // Modify into another kind of command: the command fails, typed.
    assert_eq!(
        code(ana.close_party(party.party_id).await),
        ErrorCode::HookFailed
    );
    assert_eq!(
        ana.get_party(party.party_id).await.unwrap().members.len(),
        2
    );
}

#[tokio::test]
async fn a_slow_or_panicking_hook_fails_only_its_own_command() {
    let server = start_with_hooks(Rules, |config| {
        config.hook_timeout = Duration::from_millis(300);
    })
    .await;
    let (ana, _ana_events) = server.client("ana").await;
    let (bob, _bob_events) = server.client("bob").await;

    // Ana's hook overruns; meanwhile Bob is served at once.
    let slow = tokio::spawn(async move {
        let result = ana.create_party(settings(true, 4, "slow")).await;
        (ana, result)
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let bobs = bob.create_party(settings(true, 4, "")).await.unwrap();
    assert!(
        !slow.is_finished(),
        "Bob's command was answered while Ana's hook still ran"
    );
    let (ana, result) = slow.await.unwrap();
    assert_eq!(code(result), ErrorCode::HookFailed);

    // A panic: that command fails; the session and the server go on.
    assert_eq!(
        code(ana.create_party(settings(true, 4, "boom")).await),
        ErrorCode::HookFailed
    );
    let anas = ana.create_party(settings(true, 4, "")).await.unwrap();
    assert_eq!(anas.label, "ranked");
    ana.join_party(bobs.party_id).await.unwrap();
    assert_eq!(server.handle.party_count(), 2);
    bystanders_still_served(&server).await;
}

#[tokio::test]
async fn the_example_hook_lets_each_user_lead_one_party_at_a_time() {
    let server = start_with_hooks(one_party_per_leader::OnePartyPerLeader, |_| {}).await;
    let (ana, _ana_events) = server.client("ana").await;
    let (ana_phone, _p) = server.client("ana").await;
    let (bob, _bob_events) = server.client("bob").await;

    let first = ana.create_party(settings(true, 4, "")).await.unwrap();
    // A second party, from either of Ana's sessions: denied.
    for session in [&ana, &ana_phone] {
        match session.create_party(settings(true, 4, "")).await {
            Err(partyline_client::ClientError::Refused(body)) => {
                assert_eq!(body.code, ErrorCode::Denied);
                assert!(body.message.contains("already leads"), "{}", body.message);
            }
            other => panic!("expected a denial, got {other:?}"),
        }
    }
    // Bob leads his own; promoting him in Ana's party would make two.
    let bobs = bob.create_party(settings(true, 4, "")).await.unwrap();
    bob.join_party(first.party_id).await.unwrap();
    assert_eq!(
        code(ana.promote(first.party_id, "bob").await),
        ErrorCode::Denied
    );
    // Once Bob's own party is gone, he may be promoted; Ana may then lead
    // a new one.
    bob.close_party(bobs.party_id).await.unwrap();
    ana.promote(first.party_id, "bob").await.unwrap();
    ana.create_party(settings(true, 4, "")).await.unwrap();
}

/// Panics on the first after-event and records the rest.
#[derive(Default)]
struct FlakySink {
    seen: Mutex<Vec<AfterEvent>>,
}

impl Hooks for FlakySink {
    fn after<'a>(&'a self, event: &'a AfterEvent) -> HookFuture<'a, ()> {
        let first = {
            let mut seen = self.seen.lock().unwrap();
            seen.push(event.clone());
            seen.len() == 1
        };
        Box::pin(async move {
            if first {
                panic!("a bug in the analytics sink");
            }
        })
    }
}

#[tokio::test]
async fn a_panicking_after_hook_loses_only_its_own_event() {
    let sink = Arc::new(FlakySink::default());
    let server = start_with_hooks(sink.clone(), |config| {
        config.metrics = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let (ana, _ana_events) = server.client("ana").await;
    let party = ana.create_party(settings(true, 4, "")).await.unwrap();
    ana.close_party(party.party_id).await.unwrap();
    let seen = tokio::time::timeout(WAIT, async {
        loop {
            let seen = sink.seen.lock().unwrap().clone();
            if seen.len() >= 2 {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the sink goes on after its panic");
    assert_eq!(
        seen[1],
        AfterEvent::PartyClosed {
            party_id: party.party_id
        }
    );
    // Counted for operators, and the server serves on.
    let metrics = scrape_metrics(&server).await;
    assert_eq!(metrics.count("partyline_hook_failures_total", &[]), 1);
    bystanders_still_served(&server).await;
}
