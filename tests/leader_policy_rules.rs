//! Property tests of the next leader's choice (PROTOCOL.md, "Leader by
//! connection quality"): the pure `choose_leader`, then `Party`'s rules
//! with random members, scores, connections and handovers, each checked
//! against a model written here apart from the rules:
//!
//! - the one chosen is connected, and nobody is chosen only when nobody
//!   is connected;
//! - under `ConnectionQuality` no connected member scores a lower step
//!   (the unmeasured after the measured), and among equal steps nobody
//!   seated longer is passed over; under `Tenure`, the longest seated
//!   connected member;
//! - the same input gives the same output;
//! - a score report changes nothing anyone is told: no event, no `seq`.

use partyline::party::quality::{bucket, choose_leader, Candidate, SCORE_STEP};
use partyline::party::{Party, PartySettings, PartyUpdate, Seat};
use partyline::protocol::{
    ConnectionQuality, Event, InvitePolicy, KeyValues, LeaderPolicy, LeaveReason, PartyId,
    Presence, SessionId,
};
use proptest::prelude::*;
use std::time::{Duration, Instant};

fn policy() -> impl Strategy<Value = LeaderPolicy> {
    prop_oneof![
        Just(LeaderPolicy::Tenure),
        Just(LeaderPolicy::ConnectionQuality)
    ]
}

/// Scores bunched so that equal steps and exact ties come up often.
fn score() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![
        Just(None),
        (0u32..40).prop_map(Some),
        (0u32..400).prop_map(Some),
        Just(Some(u32::MAX)),
    ]
}

fn candidate() -> impl Strategy<Value = Candidate> {
    (any::<bool>(), score()).prop_map(|(connected, score)| Candidate { connected, score })
}

/// The model's order: the step of a score, the unmeasured last.
fn step(score: Option<u32>) -> u64 {
    score.map_or(u64::MAX, |s| u64::from(s.min(10_000) / SCORE_STEP))
}

/// The model's leader, by its definition.
fn expected(policy: LeaderPolicy, seats: &[Candidate]) -> Option<usize> {
    let connected: Vec<usize> = (0..seats.len()).filter(|i| seats[*i].connected).collect();
    match policy {
        LeaderPolicy::Tenure => connected.first().copied(),
        LeaderPolicy::ConnectionQuality => {
            let best = connected.iter().map(|i| step(seats[*i].score)).min()?;
            connected
                .into_iter()
                .find(|i| step(seats[*i].score) == best)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn the_chosen_leader_is_connected_and_none_connected_is_better(
        policy in policy(),
        seats in proptest::collection::vec(candidate(), 0..12),
    ) {
        let chosen = choose_leader(policy, &seats);
        prop_assert_eq!(chosen, choose_leader(policy, &seats.clone()), "same input, same output");
        prop_assert_eq!(chosen, expected(policy, &seats));
        match chosen {
            None => prop_assert!(seats.iter().all(|s| !s.connected)),
            Some(index) => {
                let leader = seats[index];
                prop_assert!(leader.connected);
                for (other, seat) in seats.iter().enumerate().filter(|(_, s)| s.connected) {
                    match policy {
                        LeaderPolicy::Tenure => prop_assert!(other >= index),
                        LeaderPolicy::ConnectionQuality => {
                            prop_assert!(step(seat.score) >= step(leader.score), "{other} scores better");
                            if step(seat.score) == step(leader.score) {
                                prop_assert!(other >= index, "a tie goes to the longer seated");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_party_hands_its_lead_to_the_member_its_policy_names(
        policy in policy(),
        members in proptest::collection::vec((any::<bool>(), score()), 1..10),
        handover in 0usize..3,
    ) {
        let mut party = party_of(members.len() as u128 + 1, policy);
        // Member 1 leads; the others get their connection and score.
        for (index, (connected, score)) in members.iter().enumerate() {
            let session = SessionId::from_u128(index as u128 + 2);
            let seq = party.seq();
            prop_assert!(party.set_score(session, *score));
            prop_assert_eq!(party.seq(), seq, "a report is no change of the party");
            if !connected {
                party.set_connected(session, false, true).unwrap();
                prop_assert_eq!(party.members()[index + 1].score, None, "a lost connection has no score");
            }
        }
        let model: Vec<Candidate> = members
            .iter()
            .map(|(connected, score)| Candidate { connected: *connected, score: score.filter(|_| *connected) })
            .collect();
        // The buckets members read are the scores'.
        let shown = party.snapshot().quality;
        prop_assert_eq!(shown.len(), members.len() + 1);
        prop_assert_eq!(shown[0], ConnectionQuality::Unknown);
        for (index, seat) in model.iter().enumerate() {
            prop_assert_eq!(shown[index + 1], bucket(seat.score));
        }
        let leader = SessionId::from_u128(1);
        let effects = match handover {
            // The leader leaves ...
            0 => party.leave(leader, LeaveReason::Left).unwrap(),
            // ... or is lost, handing over at once ...
            1 => party.set_connected(leader, false, true).unwrap(),
            // ... or after its leader grace.
            _ => {
                party.set_connected(leader, false, false).unwrap();
                party.leader_grace_over(leader)
            }
        };
        let now_leading = party.leader().map(|seat| seat.presence.session_id);
        match expected(policy, &model) {
            Some(index) => {
                let chosen = SessionId::from_u128(index as u128 + 2);
                prop_assert_eq!(now_leading, Some(chosen));
                let told = effects.deliveries.iter().any(|d| matches!(
                    &d.event,
                    Event::LeaderChanged { leader, .. } if leader.session_id == chosen
                ));
                prop_assert!(told, "everyone hears the new leader");
            }
            // Nobody connected to lead: the party waits, and says no
            // leader until one is back.
            None => {
                let told = effects.deliveries.iter().any(|d| matches!(d.event, Event::LeaderChanged { .. }));
                prop_assert!(!told, "no leader named while nobody is connected");
            }
        }
    }
}

fn presence(n: u128) -> Presence {
    Presence {
        user_id: format!("u{n}"),
        username: format!("n{n}"),
        session_id: SessionId::from_u128(n),
    }
}

/// A party of `n` members, links 1..=n, member 1 leading.
fn party_of(n: u128, leader_policy: LeaderPolicy) -> Party<u128> {
    let settings = PartySettings {
        open: true,
        max_size: 16,
        label: String::new(),
        invite_policy: InvitePolicy::Leader,
        leader_policy,
    };
    let mut party = Party::create(
        PartyId::from_u128(99),
        Seat::new(presence(1), 1),
        settings,
        KeyValues::new(),
    )
    .unwrap();
    for i in 2..=n {
        party
            .join(presence(i), i, Instant::now(), Duration::from_secs(60))
            .unwrap();
    }
    party
}

#[test]
fn an_accepted_request_keeps_the_score_reported_to_it() {
    let mut party = party_of(2, LeaderPolicy::ConnectionQuality);
    let leader = SessionId::from_u128(1);
    party
        .update(
            leader,
            PartyUpdate {
                open: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
    party
        .join(presence(3), 3, Instant::now(), Duration::from_secs(60))
        .unwrap();
    assert!(party.set_score(SessionId::from_u128(3), Some(20)));
    assert!(party.set_score(SessionId::from_u128(2), Some(150)));
    party.accept(leader, "u3").unwrap();
    assert_eq!(party.snapshot().quality[2], ConnectionQuality::Good);
    // Member 3, seated last but measured best, leads next.
    party.leave(leader, LeaveReason::Left).unwrap();
    assert_eq!(
        party.leader().map(|s| s.presence.session_id),
        Some(SessionId::from_u128(3))
    );
    // Nobody holds a seat or request for 9: nothing to keep.
    assert!(!party.set_score(SessionId::from_u128(9), Some(1)));
}

#[test]
fn the_policy_is_a_setting_members_are_told_of() {
    let mut party = party_of(2, LeaderPolicy::Tenure);
    let before = party.seq();
    let (snapshot, effects) = party
        .update(
            SessionId::from_u128(1),
            PartyUpdate {
                leader_policy: Some(LeaderPolicy::ConnectionQuality),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(snapshot.leader_policy, LeaderPolicy::ConnectionQuality);
    assert_eq!(party.seq(), before + 1);
    assert!(effects.deliveries.iter().all(|d| matches!(
        d.event,
        Event::Updated {
            leader_policy: LeaderPolicy::ConnectionQuality,
            ..
        }
    )));
    assert_eq!(effects.deliveries.len(), 2);
}
