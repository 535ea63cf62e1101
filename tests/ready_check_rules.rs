//! Property test of the ready check rules (`Party`'s pure rules, no
//! server): random starts, answers, cancels, time-outs, joins, leaves,
//! kicks and promotions, checked after every step against a model of who
//! was asked and how each answered:
//!
//! - the check in the snapshot is the model's: every member asked is in
//!   exactly one of `ready`, `not_ready`, `no_answer`, and nobody else is;
//! - an asked member who left is not ready; a member seated later is in
//!   no list and is refused (`NotAsked`);
//! - every event carries the party's `seq` after the step, and a step that
//!   sends events steps it (an unchanged answer sends none);
//! - a check ends once, with `AllReady` exactly when every member asked is
//!   ready, and its result is the model's lists.

use partyline::party::{Effects, Party, PartyError, PartySettings, Seat};
use partyline::protocol::{
    Event, InvitePolicy, KeyValues, LeaveReason, PartyId, Presence, ReadyCheckOutcome, SessionId,
};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const PLAYERS: u128 = 6;

fn presence(n: u128) -> Presence {
    Presence {
        user_id: format!("u{n}"),
        username: format!("n{n}"),
        session_id: SessionId::from_u128(n),
    }
}

#[derive(Clone, Debug)]
enum Op {
    Start { timeout_ms: u64 },
    Answer { ready: bool, stale: bool },
    Cancel,
    TimeOut { stale: bool },
    Join,
    Leave,
    Kick(u128),
    Promote(u128),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        prop_oneof![Just(4_999u64), Just(5_000), Just(60_000), Just(120_001)]
            .prop_map(|timeout_ms| Op::Start { timeout_ms }),
        (any::<bool>(), proptest::bool::weighted(0.1))
            .prop_map(|(ready, stale)| Op::Answer { ready, stale }),
        (any::<bool>(), proptest::bool::weighted(0.1))
            .prop_map(|(ready, stale)| Op::Answer { ready, stale }),
        Just(Op::Cancel),
        proptest::bool::weighted(0.2).prop_map(|stale| Op::TimeOut { stale }),
        Just(Op::Join),
        Just(Op::Leave),
        (1..=PLAYERS).prop_map(Op::Kick),
        (1..=PLAYERS).prop_map(Op::Promote),
    ]
}

/// What the model expects of the running check.
#[derive(Debug, Clone)]
struct Model {
    check_id: u64,
    /// Asked session number -> answer.
    asked: BTreeMap<u128, Option<bool>>,
}

struct World {
    party: Party<u128>,
    check: Option<Model>,
    ended: Vec<u64>,
}

impl World {
    fn seated(&self, n: u128) -> bool {
        self.party.is_member(SessionId::from_u128(n))
    }

    fn leader(&self) -> u128 {
        self.party.leader().map(|seat| seat.link).unwrap_or(0)
    }

    /// Applies `op` by `actor` and checks what it said against the model.
    fn step(&mut self, actor: u128, op: Op) {
        let before = self.party.seq();
        let me = SessionId::from_u128(actor);
        let effects: Result<Effects<u128>, PartyError> = match op {
            Op::Start { timeout_ms } => {
                let result = self.party.start_ready_check(me, "m".into(), timeout_ms, 0);
                let valid = (5_000..=120_000).contains(&timeout_ms);
                match &result {
                    Ok((check_id, _)) => {
                        assert!(valid && self.check.is_none() && actor == self.leader());
                        let asked = self
                            .party
                            .members()
                            .iter()
                            .map(|seat| (seat.link, (seat.link == actor).then_some(true)))
                            .collect();
                        self.check = Some(Model {
                            check_id: *check_id,
                            asked,
                        });
                    }
                    Err(PartyError::ReadyCheckRunning) => assert!(self.check.is_some()),
                    Err(PartyError::InvalidArgument(_)) => assert!(!valid),
                    Err(PartyError::NotLeader) => assert!(self.seated(actor)),
                    Err(PartyError::NotMember) => assert!(!self.seated(actor)),
                    Err(other) => panic!("unexpected {other:?}"),
                }
                result.map(|(_, effects)| effects)
            }
            Op::Answer { ready, stale } => {
                let check_id = self.check.as_ref().map_or(1, |c| c.check_id) + u64::from(stale);
                let result = self.party.answer_ready_check(me, check_id, ready);
                match &result {
                    Ok(_) => {
                        let model = self.check.as_mut().expect("a check runs");
                        *model.asked.get_mut(&actor).expect("asked") = Some(ready);
                    }
                    Err(PartyError::NotMember) => assert!(!self.seated(actor)),
                    Err(PartyError::NoReadyCheck) => assert!(self.check.is_none() || stale),
                    Err(PartyError::NotAsked) => {
                        assert!(!self.check.as_ref().unwrap().asked.contains_key(&actor))
                    }
                    Err(other) => panic!("unexpected {other:?}"),
                }
                result
            }
            Op::Cancel => self.party.cancel_ready_check(me),
            Op::TimeOut { stale } => {
                let check_id = self.check.as_ref().map_or(1, |c| c.check_id) + u64::from(stale);
                Ok(self.party.ready_check_timed_out(check_id))
            }
            Op::Join => {
                let newcomer = (1..=PLAYERS).find(|n| !self.seated(*n));
                match newcomer {
                    Some(n) => self
                        .party
                        .join(presence(n), n, Instant::now(), Duration::from_secs(60))
                        .map(|(_, effects)| effects),
                    None => Ok(Effects::default()),
                }
            }
            Op::Leave if self.party.members().len() > 1 => self.party.leave(me, LeaveReason::Left),
            Op::Leave => Ok(Effects::default()),
            Op::Kick(target) => self.party.kick(me, &format!("u{target}")),
            Op::Promote(target) => self.party.promote(me, &format!("u{target}")),
        };
        let Ok(effects) = effects else {
            assert_eq!(self.party.seq(), before, "a refusal changes nothing");
            return;
        };
        // Members gone count as not ready.
        if let Some(model) = &mut self.check {
            for (n, answer) in model.asked.iter_mut() {
                if !self.party.is_member(SessionId::from_u128(*n)) {
                    *answer = Some(false);
                }
            }
        }
        self.check_events(&effects, before);
        self.check_snapshot();
    }

    fn check_events(&mut self, effects: &Effects<u128>, before: u64) {
        if !effects.deliveries.is_empty() {
            assert_eq!(self.party.seq(), before + 1, "one change, one step");
        }
        for delivery in &effects.deliveries {
            if let Some(seq) = delivery.event.party_seq() {
                assert_eq!(seq, self.party.seq());
            }
        }
        let ends: Vec<&Event> = effects
            .deliveries
            .iter()
            .map(|d| &d.event)
            .filter(|e| matches!(e, Event::ReadyCheckEnded { .. }))
            .collect();
        let Some(Event::ReadyCheckEnded {
            check_id,
            outcome,
            ready,
            not_ready,
            no_answer,
            ..
        }) = ends.first()
        else {
            return;
        };
        let model = self.check.take().expect("only a running check ends");
        assert_eq!(*check_id, model.check_id);
        assert!(!self.ended.contains(check_id), "a check ends once");
        self.ended.push(*check_id);
        let with = |answer: Option<bool>| -> Vec<u128> {
            model
                .asked
                .iter()
                .filter(|(_, a)| **a == answer)
                .map(|(n, _)| *n)
                .collect()
        };
        let numbers = |who: &[Presence]| -> Vec<u128> {
            let mut n: Vec<u128> = who.iter().map(|p| p.session_id.0.as_u128()).collect();
            n.sort();
            n
        };
        assert_eq!(numbers(ready), with(Some(true)));
        assert_eq!(numbers(not_ready), with(Some(false)));
        assert_eq!(numbers(no_answer), with(None));
        let all_ready = model.asked.values().all(|a| *a == Some(true));
        assert_eq!(*outcome == ReadyCheckOutcome::AllReady, all_ready);
        // Every member then seated heard it.
        assert_eq!(ends.len(), self.party.members().len());
    }

    fn check_snapshot(&mut self) {
        if self.party.is_empty() {
            self.check = None;
        }
        let shown = self.party.snapshot().ready_check;
        match (&shown, &self.check) {
            (None, None) => {}
            (Some(check), Some(model)) => {
                assert_eq!(check.check_id, model.check_id);
                let mut listed: Vec<(u128, Option<bool>)> = Vec::new();
                for (who, answer) in [
                    (&check.ready, Some(true)),
                    (&check.not_ready, Some(false)),
                    (&check.no_answer, None),
                ] {
                    listed.extend(who.iter().map(|p| (p.session_id.0.as_u128(), answer)));
                }
                listed.sort();
                let expected: Vec<_> = model.asked.iter().map(|(n, a)| (*n, *a)).collect();
                assert_eq!(listed, expected);
            }
            (shown, model) => panic!("snapshot {shown:?}, model {model:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn ready_checks_follow_their_rules(steps in proptest::collection::vec((1..=PLAYERS, op()), 1..60)) {
        let settings = PartySettings {
            open: true,
            max_size: PLAYERS as u16,
            label: String::new(),
            invite_policy: InvitePolicy::Leader,
            leader_policy: Default::default(),
        };
        let party = Party::create(PartyId::from_u128(99), Seat::new(presence(1), 1), settings, KeyValues::new()).unwrap();
        let mut world = World { party, check: None, ended: Vec::new() };
        for (actor, op) in steps {
            world.step(actor, op);
        }
    }
}

fn party_of(n: u128) -> Party<u128> {
    let settings = PartySettings {
        open: true,
        max_size: 8,
        label: String::new(),
        invite_policy: InvitePolicy::Leader,
        leader_policy: Default::default(),
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
fn the_last_ready_answer_ends_the_check_in_the_same_change() {
    let mut party = party_of(2);
    let (check, started) = party
        .start_ready_check(SessionId::from_u128(1), "go".into(), 30_000, 1_000)
        .unwrap();
    assert_eq!(check, party.seq(), "the check is named by its start's seq");
    assert_eq!(started.deliveries.len(), 2, "every member hears it");
    let Event::ReadyCheckStarted { check: shown, .. } = &started.deliveries[0].event else {
        panic!("{:?}", started.deliveries);
    };
    assert_eq!(shown.ends_at_ms, 31_000);
    assert_eq!(shown.ready, vec![presence(1)], "the leader counts as ready");
    let effects = party
        .answer_ready_check(SessionId::from_u128(2), check, true)
        .unwrap();
    let kinds: Vec<_> = effects
        .deliveries
        .iter()
        .filter(|d| d.to == 2)
        .map(|d| &d.event)
        .collect();
    assert!(matches!(
        kinds[0],
        Event::ReadyCheckAnswered { ready: true, .. }
    ));
    assert!(matches!(
        kinds[1],
        Event::ReadyCheckEnded {
            outcome: ReadyCheckOutcome::AllReady,
            ..
        }
    ));
    assert!(effects
        .changes
        .iter()
        .any(|e| matches!(e, Event::ReadyCheckEnded { .. })));
    assert!(party.snapshot().ready_check.is_none());
    // A late time-out of the ended check does nothing.
    assert!(party.ready_check_timed_out(check).deliveries.is_empty());
}

#[test]
fn a_leaver_counts_as_not_ready_and_a_joiner_is_not_asked() {
    let mut party = party_of(3);
    let (check, _) = party
        .start_ready_check(SessionId::from_u128(1), String::new(), 5_000, 0)
        .unwrap();
    party
        .answer_ready_check(SessionId::from_u128(3), check, true)
        .unwrap();
    let left = party
        .leave(SessionId::from_u128(3), LeaveReason::Left)
        .unwrap();
    let to_one: Vec<_> = left.deliveries.iter().filter(|d| d.to == 1).collect();
    assert!(matches!(to_one[0].event, Event::MemberLeft { .. }));
    assert!(
        matches!(&to_one[1].event, Event::ReadyCheckAnswered { presence: p, ready: false, .. } if p.user_id == "u3")
    );
    party
        .join(presence(4), 4, Instant::now(), Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        party
            .answer_ready_check(SessionId::from_u128(4), check, true)
            .unwrap_err(),
        PartyError::NotAsked
    );
    let ended = party.ready_check_timed_out(check);
    let Event::ReadyCheckEnded {
        outcome,
        ready,
        not_ready,
        no_answer,
        ..
    } = &ended.deliveries[0].event
    else {
        panic!("{:?}", ended.deliveries);
    };
    assert_eq!(*outcome, ReadyCheckOutcome::TimedOut);
    assert_eq!(ready, &vec![presence(1)]);
    assert_eq!(not_ready, &vec![presence(3)]);
    assert_eq!(no_answer, &vec![presence(2)]);
    assert_eq!(ended.deliveries.len(), 3, "members 1, 2 and 4 hear it");
}

#[test]
fn bad_starts_are_typed_refusals() {
    let mut party = party_of(2);
    let leader = SessionId::from_u128(1);
    let refusal = |party: &mut Party<u128>, who, message: &str, timeout| {
        party
            .start_ready_check(who, message.into(), timeout, 0)
            .map(|_| ())
            .unwrap_err()
    };
    assert!(matches!(
        refusal(&mut party, leader, "", 4_999),
        PartyError::InvalidArgument(_)
    ));
    assert!(matches!(
        refusal(&mut party, leader, "", 120_001),
        PartyError::InvalidArgument(_)
    ));
    assert!(matches!(
        refusal(&mut party, leader, &"x".repeat(257), 5_000),
        PartyError::InvalidArgument(_)
    ));
    assert!(matches!(
        refusal(&mut party, leader, "a\nb", 5_000),
        PartyError::InvalidArgument(_)
    ));
    assert_eq!(
        refusal(&mut party, SessionId::from_u128(2), "", 5_000),
        PartyError::NotLeader
    );
    assert_eq!(
        refusal(&mut party, SessionId::from_u128(9), "", 5_000),
        PartyError::NotMember
    );
    assert_eq!(
        party.cancel_ready_check(leader).map(|_| ()).unwrap_err(),
        PartyError::NoReadyCheck
    );
    party
        .start_ready_check(leader, "ok".into(), 5_000, 0)
        .unwrap();
    assert_eq!(
        refusal(&mut party, leader, "", 5_000),
        PartyError::ReadyCheckRunning
    );
}
