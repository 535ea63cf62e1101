//! The leader by connection quality over real QUIC (PROTOCOL.md, "Leader
//! by connection quality"): the server measures each member's connection,
//! members read the buckets in the snapshot, and when the leader leaves a
//! `ConnectionQuality` party the best connection leads, not the longest
//! seated; a `Tenure` party keeps the old rule. One member's path goes
//! through the tests' UDP relay with a delay each way: its round trip is
//! real, so these tests take real time, kept short by sampling every
//! 100 ms. (The rules' property test is `tests/leader_policy_rules.rs`;
//! the report across nodes, on the paused clock, is in
//! `src/server/hub_tests.rs`.)

mod support;

use partyline::protocol::{ConnectionQuality, LeaderPolicy};
use partyline_client::{Client, Event, Events, Party, PartyId, PartySettings};
use std::time::Duration;
use support::relay::Relay;
use support::*;

/// Each way through the relay: a round trip of 240 ms and more, a score
/// of 240 and more, `Poor`.
const SLOW_PATH: Duration = Duration::from_millis(120);

/// Samples every 100 ms: the first comes just after a session's Welcome.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

struct Trio {
    _server: TestServer,
    _relay: Relay,
    ana: Client,
    bob: Client,
    bob_events: Events,
    cy: Client,
    cy_events: Events,
    party: PartyId,
}

/// Ana leads a party with `policy`; Bob joins second through the slow
/// relay, Cy third on loopback. Returns once the party's snapshot shows
/// both measured: Bob `Poor`, Cy `Good`.
async fn trio(policy: LeaderPolicy) -> Trio {
    let server = start_with(|config| config.keep_alive = SAMPLE_EVERY).await;
    let relay = Relay::start(server.addr).await;
    relay.delay(SLOW_PATH);
    let (ana, mut ana_events) = server.client("ana").await;
    let mut slow = server.config("bob");
    slow.server_addr = relay.addr;
    let (bob, mut bob_events) = Client::connect(slow).await.expect("bob connects");
    let (cy, cy_events) = server.client("cy").await;
    let settings = PartySettings {
        leader_policy: policy,
        ..settings(true, 4, "")
    };
    let party = ana.create_party(settings).await.unwrap();
    assert_eq!(party.leader_policy, policy);
    let party = party.party_id;
    bob.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;
    cy.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;
    next_event(&mut bob_events).await;
    let measured = measured(&ana, party).await;
    assert_eq!(
        quality(&measured),
        [
            ("ana", ConnectionQuality::Good),
            ("bob", ConnectionQuality::Poor),
            ("cy", ConnectionQuality::Good),
        ]
    );
    Trio {
        _server: server,
        _relay: relay,
        ana,
        bob,
        bob_events,
        cy,
        cy_events,
        party,
    }
}

fn quality(party: &Party) -> Vec<(&str, ConnectionQuality)> {
    party
        .members
        .iter()
        .map(|m| (m.presence.user_id.as_str(), m.quality))
        .collect()
}

/// The party as the server shows it, once every member is measured.
async fn measured(client: &Client, party: PartyId) -> Party {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let seen = client.get_party(party).await.unwrap();
        if seen
            .members
            .iter()
            .all(|m| m.quality != ConnectionQuality::Unknown)
        {
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not measured in time: {:?}",
            quality(&seen)
        );
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

async fn new_leader(events: &mut Events) -> String {
    match next_event(events).await {
        Event::LeaderChanged { leader, .. } => leader.user_id,
        other => panic!("expected the new leader, got {other:?}"),
    }
}

#[tokio::test]
async fn the_best_connection_leads_next_not_the_longest_seated() {
    let mut t = trio(LeaderPolicy::ConnectionQuality).await;
    t.ana.leave_party(t.party).await.unwrap();
    // Bob has sat longest, but his path is slow: Cy leads.
    assert_eq!(new_leader(&mut t.bob_events).await, "cy");
    assert_eq!(new_leader(&mut t.cy_events).await, "cy");
    let seen = t.cy.get_party(t.party).await.unwrap();
    assert!(seen.is_leader());
    assert_eq!(seen.leader_policy, LeaderPolicy::ConnectionQuality);
}

#[tokio::test]
async fn under_tenure_the_longest_seated_leads_next_however_slow() {
    let mut t = trio(LeaderPolicy::Tenure).await;
    t.ana.leave_party(t.party).await.unwrap();
    assert_eq!(new_leader(&mut t.bob_events).await, "bob");
    assert_eq!(new_leader(&mut t.cy_events).await, "bob");
    assert!(t.bob.get_party(t.party).await.unwrap().is_leader());
}

#[tokio::test]
async fn the_leader_switches_the_policy_and_members_are_told() {
    let mut t = trio(LeaderPolicy::Tenure).await;
    let update = partyline_client::PartyUpdate {
        leader_policy: Some(LeaderPolicy::ConnectionQuality),
        ..Default::default()
    };
    let updated = t.ana.update_party(t.party, update).await.unwrap();
    assert_eq!(updated.leader_policy, LeaderPolicy::ConnectionQuality);
    match next_event(&mut t.bob_events).await {
        Event::PartyUpdated { party } => {
            assert_eq!(party.leader_policy, LeaderPolicy::ConnectionQuality)
        }
        other => panic!("expected the update, got {other:?}"),
    }
    assert!(matches!(
        next_event(&mut t.cy_events).await,
        Event::PartyUpdated { .. }
    ));
    // Ana's session ends (she closes her client): the rule of now names Cy.
    t.ana.close().await;
    assert_eq!(new_leader(&mut t.cy_events).await, "cy");
}
