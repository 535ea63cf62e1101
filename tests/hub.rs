//! Several servers of one process as one cluster, linked by the in-memory
//! hub (no NATS): real servers, real QUIC clients, faults on demand. The
//! same routing as over NATS; `tests/cluster.rs` keeps the NATS adapter's
//! own proof.
mod support;

use partyline::protocol::{Command, PartyId};
use partyline::server::{
    AfterEvent, BeforeCall, Decision, HookFuture, HookPoint, Hooks, MemoryHub, NodeTimings, Server,
    ServerConfig,
};
use partyline_client::{ErrorCode, Event, JoinOutcome, PartyUpdate};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

/// Quick heartbeats, so that nodes hear each other and a lost node is
/// noticed within a second or so.
fn timings() -> NodeTimings {
    NodeTimings {
        heartbeat: Duration::from_millis(100),
        node_timeout: Duration::from_millis(900),
        request_timeout: Duration::from_secs(2),
    }
}

async fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Before-calls one node's hooks were asked: (point, caller, party).
#[derive(Default)]
struct Asked(Mutex<Vec<(HookPoint, String, Option<PartyId>)>>);

impl Hooks for Asked {
    fn before<'a>(&'a self, call: &'a BeforeCall) -> HookFuture<'a, Decision> {
        let asked = (call.point, call.caller.user_id.clone(), call.party_id);
        self.0.lock().unwrap().push(asked);
        Box::pin(async { Decision::Allow })
    }

    fn after<'a>(&'a self, _event: &'a AfterEvent) -> HookFuture<'a, ()> {
        Box::pin(async {})
    }
}

impl Asked {
    fn take(&self) -> Vec<(HookPoint, String, Option<PartyId>)> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

/// Nodes `names` of one hub, each with its own recorder of hook calls,
/// each hearing all the others.
async fn hub_cluster(hub: &MemoryHub, names: &[&str]) -> Vec<(TestServer, Arc<Asked>)> {
    let mut nodes = Vec::new();
    for name in names {
        let asked = Arc::new(Asked::default());
        let hooks = asked.clone();
        let server = start_built(
            |_: &mut ServerConfig| {},
            |config| {
                Server::builder(config)
                    .hooks(hooks)
                    .hub(hub, name, timings())
                    .build()
            },
        )
        .await;
        nodes.push((server, asked));
    }
    for (node, _) in &nodes {
        wait_until("every node hears every other", || {
            node.handle.cluster_peers().len() == names.len() - 1
        })
        .await;
    }
    nodes
}

#[tokio::test]
async fn hooks_run_once_at_the_caller_s_node_with_the_right_point_wherever_the_party_lives() {
    let hub = MemoryHub::new();
    let nodes = hub_cluster(&hub, &["a", "b"]).await;
    let (a, asked_a) = (&nodes[0].0, &nodes[0].1);
    let (b, asked_b) = (&nodes[1].0, &nodes[1].1);
    let (ana, mut ana_events) = a.client("ana").await;
    let (bob, _bob_events) = b.client("bob").await;
    let (cy, _cy_events) = b.client("cy").await;
    let (dee, _dee_events) = b.client("dee").await;
    let (eve, _eve_events) = b.client("eve").await;

    // An open party homed on a, joined by code from b: the hook is asked
    // on b (where bob is), as a Join, naming the party the code leads to.
    let party = ana
        .create_party(settings(true, 8, "hub"))
        .await
        .unwrap()
        .party_id;
    let code = ana.create_join_code(party).await.unwrap();
    assert!(matches!(
        bob.join_by_code(&code).await.unwrap(),
        JoinOutcome::Joined(_)
    ));
    assert_eq!(
        asked_a.take(),
        [(HookPoint::CreateParty, "ana".to_string(), None)]
    );
    assert_eq!(
        asked_b.take(),
        [(HookPoint::Join, "bob".to_string(), Some(party))]
    );

    // Closed now: a join by code and a join by id from b are requests.
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
        cy.join_by_code(&code).await.unwrap(),
        JoinOutcome::Queued { .. }
    ));
    assert!(matches!(
        dee.join_party(party).await.unwrap(),
        JoinOutcome::Queued { .. }
    ));
    // Invited, eve would be seated in the closed party: a Join.
    ana.invite(party, "eve").await.unwrap();
    assert!(matches!(
        eve.join_party(party).await.unwrap(),
        JoinOutcome::Joined(_)
    ));
    assert_eq!(
        asked_a.take(),
        [
            (HookPoint::Update, "ana".to_string(), Some(party)),
            (HookPoint::Invite, "ana".to_string(), Some(party)),
        ]
    );
    assert_eq!(
        asked_b.take(),
        [
            (HookPoint::JoinRequest, "cy".to_string(), Some(party)),
            (HookPoint::JoinRequest, "dee".to_string(), Some(party)),
            (HookPoint::Join, "eve".to_string(), Some(party)),
        ]
    );

    // A leader on b: its removals are asked on b, a requester's as a
    // rejection and a member's as a kick (the home tells which).
    ana.promote(party, "bob").await.unwrap();
    let remove = |user_id: &str| Command::Remove {
        party_id: party,
        user_id: user_id.to_string(),
    };
    bob.request(remove("dee")).await.unwrap();
    bob.request(remove("eve")).await.unwrap();
    bob.accept(party, "cy").await.unwrap();
    assert_eq!(
        asked_a.take(),
        [(HookPoint::Promote, "ana".to_string(), Some(party))]
    );
    assert_eq!(
        asked_b.take(),
        [
            (HookPoint::Reject, "bob".to_string(), Some(party)),
            (HookPoint::Kick, "bob".to_string(), Some(party)),
            (HookPoint::Accept, "bob".to_string(), Some(party)),
        ]
    );
    // Nothing was asked twice: the home ran the forwarded commands
    // without asking again.
    loop {
        match next_event(&mut ana_events).await {
            Event::MemberJoined { member, .. } if member.user_id == "cy" => break,
            _ => continue,
        }
    }
    assert!(asked_a.take().is_empty() && asked_b.take().is_empty());
}

#[tokio::test]
async fn a_stalled_node_is_lost_and_its_parties_end_for_the_others() {
    let hub = MemoryHub::new();
    let nodes = hub_cluster(&hub, &["a", "b"]).await;
    let (a, b) = (&nodes[0].0, &nodes[1].0);
    let (ana, _ana_events) = a.client("ana").await;
    let (bob, mut bob_events) = b.client("bob").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();

    // Node a freezes (it does not crash, it stops answering): b judges it
    // lost after its timeout, and bob's seat in a's party ends.
    hub.stall("a");
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            if let Event::PartyClosed { party_id, .. } = next(&mut bob_events).await {
                return party_id;
            }
        }
    })
    .await
    .expect("bob hears the party of the lost node end");
    assert_eq!(closed, party);
    assert!(bob.party(party).is_none(), "the roster forgot the party");
    // A command for a party of the lost node fails at once, typed.
    assert_eq!(code(bob.get_party(party).await), ErrorCode::PartyNotFound);
    wait_until("b no longer counts a", || {
        b.handle.cluster_peers().is_empty()
    })
    .await;
}

#[tokio::test]
async fn a_leader_on_another_node_meets_every_other_hook_point_on_its_own_node() {
    let hub = MemoryHub::new();
    let nodes = hub_cluster(&hub, &["a", "b"]).await;
    let (a, asked_a) = (&nodes[0].0, &nodes[0].1);
    let (b, asked_b) = (&nodes[1].0, &nodes[1].1);
    let (ana, _ana_events) = a.client("ana").await;
    let (bob, _bob_events) = b.client("bob").await;
    let (cy, _cy_events) = a.client("cy").await;
    let (dee, _dee_events) = a.client("dee").await;
    let party = ana
        .create_party(settings(true, 8, "hub"))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    cy.join_party(party).await.unwrap();
    ana.promote(party, "bob").await.unwrap();
    ana.leave_party(party).await.unwrap();
    asked_a.take();
    asked_b.take();

    // bob, on b, leads a party homed on a: each of his commands meets its
    // hook on b, once, whatever runs it on a.
    bob.kick(party, "cy").await.unwrap();
    bob.update_party(
        party,
        PartyUpdate {
            open: Some(false),
            ..PartyUpdate::default()
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        dee.join_party(party).await.unwrap(),
        JoinOutcome::Queued { .. }
    ));
    bob.reject(party, "dee").await.unwrap();
    bob.send_data_reliable(party, 3, b"hello").await.unwrap();
    bob.submit_ticket(partyline_client::TicketRequest {
        party_id: Some(party),
        min_count: 2,
        max_count: 4,
        count_multiple: 1,
        ..partyline_client::TicketRequest::default()
    })
    .await
    .unwrap();
    bob.close_party(party).await.unwrap();
    let bob_at = |point| (point, "bob".to_string(), Some(party));
    assert_eq!(
        asked_b.take(),
        [
            bob_at(HookPoint::Kick),
            bob_at(HookPoint::Update),
            bob_at(HookPoint::Reject),
            bob_at(HookPoint::ReliableData),
            bob_at(HookPoint::Matchmaking),
            bob_at(HookPoint::Close),
        ]
    );
    assert_eq!(
        asked_a.take(),
        [(HookPoint::JoinRequest, "dee".to_string(), Some(party))]
    );
}

/// A ready check across nodes: the leader on one node (not the party's
/// home), members on the home; the start and the cancel are forwarded,
/// the answers come from the home's node, and every member hears the tally
/// and the result in order; the hook is asked where the leader is.
#[tokio::test]
async fn a_ready_check_runs_with_the_leader_and_members_on_different_nodes() {
    let hub = MemoryHub::new();
    let nodes = hub_cluster(&hub, &["a", "b"]).await;
    let (a, asked_a) = (&nodes[0].0, &nodes[0].1);
    let (b, asked_b) = (&nodes[1].0, &nodes[1].1);
    let (ana, mut ana_events) = a.client("ana").await;
    let (cy, mut cy_events) = a.client("cy").await;
    let (bob, mut bob_events) = b.client("bob").await;
    // Homed on a; Bob, on b, leads it.
    let party = ana
        .create_party(settings(true, 4, "hub"))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    cy.join_party(party).await.unwrap();
    ana.promote(party, "bob").await.unwrap();
    for events in [&mut ana_events, &mut bob_events] {
        loop {
            if let Event::LeaderChanged { leader, .. } = next_event(events).await {
                assert_eq!(leader.user_id, "bob");
                break;
            }
        }
    }
    loop {
        if let Event::LeaderChanged { .. } = next_event(&mut cy_events).await {
            break;
        }
    }
    // The new leader is handed the (empty) queue it now owns.
    assert!(matches!(
        next_event(&mut bob_events).await,
        Event::JoinRequests { .. }
    ));
    asked_a.take();
    asked_b.take();

    bob.start_ready_check(party, "pull?", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        asked_b.take(),
        [(HookPoint::ReadyCheck, "bob".to_string(), Some(party))],
        "asked on the leader's node"
    );
    assert!(asked_a.take().is_empty());
    let mut check_id = 0;
    for events in [&mut ana_events, &mut bob_events, &mut cy_events] {
        match next_event(events).await {
            Event::ReadyCheckStarted { check, .. } => {
                let users: Vec<&str> = check.no_answer.iter().map(|p| p.user_id.as_str()).collect();
                assert_eq!(users, ["ana", "cy"]);
                assert_eq!(check.ready[0].user_id, "bob", "the leader counts as ready");
                check_id = check.check_id;
            }
            other => panic!("expected the check, got {other:?}"),
        }
    }
    // Bob's node shows the running check in the party the home keeps.
    let seen = bob.get_party(party).await.unwrap();
    assert_eq!(seen.ready_check.map(|c| c.check_id), Some(check_id));

    ana.answer_ready_check(party, check_id, true).await.unwrap();
    cy.answer_ready_check(party, check_id, false).await.unwrap();
    cy.answer_ready_check(party, check_id, true).await.unwrap();
    // Bob, on b, hears every answer in order, then the end.
    let mut heard = Vec::new();
    loop {
        match next_event(&mut bob_events).await {
            Event::ReadyCheckAnswered { member, ready, .. } => heard.push((member.user_id, ready)),
            Event::ReadyCheckEnded { outcome, ready, .. } => {
                assert_eq!(outcome, partyline_client::ReadyCheckOutcome::AllReady);
                assert_eq!(ready.len(), 3);
                break;
            }
            other => panic!("expected the tally, got {other:?}"),
        }
    }
    assert_eq!(
        heard,
        [
            ("ana".to_string(), true),
            ("cy".to_string(), false),
            ("cy".to_string(), true)
        ]
    );

    // A second check, cancelled by the leader from b.
    bob.start_ready_check(party, "", Duration::from_secs(60))
        .await
        .unwrap();
    bob.cancel_ready_check(party).await.unwrap();
    // Ana, on the home's node, heard both checks end, in order.
    let mut ends = Vec::new();
    while ends.len() < 2 {
        match next_event(&mut ana_events).await {
            Event::ReadyCheckEnded { outcome, .. } => ends.push(outcome),
            Event::ReadyCheckStarted { .. } | Event::ReadyCheckAnswered { .. } => {}
            other => panic!("expected the checks, got {other:?}"),
        }
    }
    use partyline_client::ReadyCheckOutcome::{AllReady, Cancelled};
    assert_eq!(ends, [AllReady, Cancelled]);
    assert!(ana.get_party(party).await.unwrap().ready_check.is_none());
    // Not the leader: refused, wherever the member is.
    let refused = ana
        .start_ready_check(party, "", Duration::from_secs(60))
        .await;
    assert_eq!(code(refused), ErrorCode::NotLeader);
}
