//! Property test of the matchmaker's rules over random ticket streams:
//! tickets arrive (solos and parties), time passes, rounds run. After each
//! round, for every match made:
//!
//! - no ticket is in two matches, and a party's ticket (all its players)
//!   is in one match whole;
//! - the player count suits every ticket: within its minimum (relaxed
//!   after the wait) and maximum, and a multiple of its count multiple;
//! - every ticket's query holds for every other ticket, both ways;
//! - waiting order: no ticket left waiting that the seed saw before a
//!   younger member could have taken that member's place.

use partyline::matchmaker::{compatible, count_suits, Match, Pool, Query, Ticket, TicketId};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

const RELAX_AFTER: Duration = Duration::from_secs(20);
const MODES: [&str; 2] = ["ranked", "casual"];

#[derive(Clone, Debug)]
struct Spec {
    players: u32,
    min: u32,
    span: u32,
    multiple: u32,
    relaxed: Option<u32>,
    mode: usize,
    wants_mode: bool,
    skill: u8,
    skill_window: Option<u8>,
}

#[derive(Clone, Debug)]
enum Step {
    Submit(Spec),
    Wait(u64),
    Round,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        1u32..4,
        1u32..7,
        0u32..5,
        prop_oneof![3 => Just(1u32), 1 => Just(2u32)],
        proptest::option::of(1u32..4),
        0..MODES.len(),
        any::<bool>(),
        0u8..10,
        proptest::option::of(1u8..5),
    )
        .prop_map(
            |(players, min, span, multiple, relaxed, mode, wants_mode, skill, skill_window)| Spec {
                players,
                min,
                span,
                multiple,
                relaxed,
                mode,
                wants_mode,
                skill,
                skill_window,
            },
        )
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => spec().prop_map(Step::Submit),
        1 => (1u64..15).prop_map(Step::Wait),
        2 => Just(Step::Round),
    ]
}

/// `Some(ticket)` when the spec makes a valid ticket (the server refuses
/// the others up front).
fn ticket(id: u64, spec: &Spec, since: Instant) -> Option<Ticket<u64>> {
    let mut query = Query::default();
    if spec.wants_mode {
        query
            .strings
            .insert("mode".into(), MODES[spec.mode].to_string());
    }
    if let Some(window) = spec.skill_window {
        let skill = f64::from(spec.skill);
        query.ranges.insert(
            "skill".into(),
            (skill - f64::from(window), skill + f64::from(window)),
        );
    }
    let ticket = Ticket {
        id: TicketId(id),
        players: spec.players,
        min_count: spec.min,
        max_count: spec.min + spec.span,
        count_multiple: spec.multiple,
        relaxed_min_count: spec.relaxed,
        strings: BTreeMap::from([("mode".to_string(), MODES[spec.mode].to_string())]),
        numbers: BTreeMap::from([("skill".to_string(), f64::from(spec.skill))]),
        query,
        since,
        // The "party" the ticket stands for: its own id, one per ticket.
        meta: id,
    };
    ticket.validate().ok().map(|()| ticket)
}

fn check_match(m: &Match<u64>, now: Instant, waiting: &[Ticket<u64>]) {
    let tickets: Vec<&Ticket<u64>> = m.tickets.iter().collect();
    let players = m.players();
    assert!(
        count_suits(&tickets, players, now, Some(RELAX_AFTER)),
        "{players} players do not suit {tickets:?}"
    );
    for a in &tickets {
        for b in &tickets {
            if a.id != b.id {
                assert!(a.accepts(b), "{:?} does not accept {:?}", a.id, b.id);
            }
        }
    }
    // Waiting order, among the tickets the seed considered (those after
    // it): an older one left waiting could not take a younger member's
    // place.
    let seed = tickets[0];
    for (index, younger) in tickets.iter().enumerate().skip(1) {
        for older in waiting
            .iter()
            .filter(|w| (seed.since, seed.id) < (w.since, w.id))
            .filter(|w| (w.since, w.id) < (younger.since, younger.id))
        {
            let mut swapped: Vec<&Ticket<u64>> = tickets.clone();
            swapped[index] = older;
            let fits_all = swapped
                .iter()
                .all(|t| t.id == older.id || compatible(*t, older));
            let count = players - younger.players + older.players;
            assert!(
                !(fits_all && count_suits(&swapped, count, now, Some(RELAX_AFTER))),
                "{:?} waited longer than {:?} and could have taken its place",
                older.id,
                younger.id
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn matches_keep_parties_whole_suit_every_ticket_and_serve_the_oldest_first(
        steps in proptest::collection::vec(step(), 1..80),
        scan_limit in prop_oneof![Just(3usize), Just(1000usize)],
    ) {
        let start = Instant::now();
        let mut now = start;
        let mut pool: Pool<u64> = Pool::new(scan_limit, Some(RELAX_AFTER));
        let mut matched: HashSet<TicketId> = HashSet::new();
        let mut next_id = 0u64;
        for step in steps {
            match step {
                Step::Submit(spec) => {
                    next_id += 1;
                    // Distinct instants keep the waiting order total.
                    now += Duration::from_millis(1);
                    if let Some(ticket) = ticket(next_id, &spec, now) {
                        pool.insert(ticket);
                    }
                }
                Step::Wait(secs) => now += Duration::from_secs(secs),
                Step::Round => {
                    let matches = pool.run_round(now);
                    let waiting: Vec<Ticket<u64>> = (1..=next_id)
                        .filter_map(|id| pool.get(TicketId(id)).cloned())
                        .collect();
                    for m in &matches {
                        for t in &m.tickets {
                            prop_assert!(matched.insert(t.id), "{:?} matched twice", t.id);
                            prop_assert!(pool.get(t.id).is_none(), "matched but still waiting");
                            prop_assert_eq!(t.meta, t.id.0, "a party's ticket is whole");
                        }
                        check_match(m, now, &waiting);
                    }
                }
            }
        }
    }
}
