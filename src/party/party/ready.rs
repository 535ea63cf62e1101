//! The ready check: the leader asks every member whether it is ready;
//! each answers (and may change its answer) until every one is ready, the
//! time runs out, or the leader cancels. One at a time per party.
//!
//! Who is asked: every member seated when it starts, the leader counted
//! ready at once. A member seated later is not asked (`NotAsked`); an
//! asked member who leaves (or is kicked, banned, or its session ends)
//! counts as not ready, for good. The rules keep no clock: the server
//! says when the time is up ([`Party::ready_check_timed_out`]).

use super::{Effects, Party, PartyError};
use crate::protocol::{
    Event, Presence, ReadyCheck, ReadyCheckOutcome, SessionId, MAX_READY_CHECK_MESSAGE_BYTES,
    READY_CHECK_MAX_TIMEOUT_MS, READY_CHECK_MIN_TIMEOUT_MS,
};

/// A ready check while it runs.
#[derive(Clone, Debug)]
pub(super) struct RunningCheck {
    /// The party `seq` of its start.
    check_id: u64,
    started_by: Presence,
    message: String,
    timeout_ms: u64,
    ends_at_ms: u64,
    /// Every member asked, in seat order at the start, with its answer
    /// (`None`: none yet).
    asked: Vec<(Presence, Option<bool>)>,
}

impl RunningCheck {
    fn with_answer(&self, answer: Option<bool>) -> Vec<Presence> {
        self.asked
            .iter()
            .filter(|(_, given)| *given == answer)
            .map(|(presence, _)| presence.clone())
            .collect()
    }

    /// The check as the wire shows it: the answers so far.
    pub(super) fn view(&self) -> ReadyCheck {
        ReadyCheck {
            check_id: self.check_id,
            started_by: self.started_by.clone(),
            message: self.message.clone(),
            timeout_ms: self.timeout_ms,
            ends_at_ms: self.ends_at_ms,
            ready: self.with_answer(Some(true)),
            not_ready: self.with_answer(Some(false)),
            no_answer: self.with_answer(None),
        }
    }

    fn all_ready(&self) -> bool {
        self.asked.iter().all(|(_, answer)| *answer == Some(true))
    }

    fn answer_of(&mut self, session: SessionId) -> Option<&mut Option<bool>> {
        self.asked
            .iter_mut()
            .find(|(presence, _)| presence.session_id == session)
            .map(|(_, answer)| answer)
    }
}

/// Checks a ready check's message and timeout.
fn validate(message: &str, timeout_ms: u64) -> Result<(), PartyError> {
    if message.len() > MAX_READY_CHECK_MESSAGE_BYTES || message.chars().any(char::is_control) {
        return Err(PartyError::InvalidArgument(format!(
            "a ready check message must be at most {MAX_READY_CHECK_MESSAGE_BYTES} bytes with no control character"
        )));
    }
    if !(READY_CHECK_MIN_TIMEOUT_MS..=READY_CHECK_MAX_TIMEOUT_MS).contains(&timeout_ms) {
        return Err(PartyError::InvalidArgument(format!(
            "a ready check's timeout_ms must be {READY_CHECK_MIN_TIMEOUT_MS} to {READY_CHECK_MAX_TIMEOUT_MS}, got {timeout_ms}"
        )));
    }
    Ok(())
}

impl<L: Clone + super::BlockList> Party<L> {
    /// The ready check running now, as the wire shows it.
    pub fn ready_check(&self) -> Option<ReadyCheck> {
        self.ready_check.as_ref().map(RunningCheck::view)
    }

    /// Leader only: starts a ready check asking every member, the leader
    /// counted ready. `now_ms` is the wall clock (Unix ms), for the
    /// deadline members are shown. Returns the check's id; the caller
    /// ends it with [`Party::ready_check_timed_out`] after `timeout_ms`
    /// unless it ended before.
    pub fn start_ready_check(
        &mut self,
        caller: SessionId,
        message: String,
        timeout_ms: u64,
        now_ms: u64,
    ) -> Result<(u64, Effects<L>), PartyError> {
        let leader = self.require_leader(caller)?;
        validate(&message, timeout_ms)?;
        if self.ready_check.is_some() {
            return Err(PartyError::ReadyCheckRunning);
        }
        self.seq += 1;
        let check = RunningCheck {
            check_id: self.seq,
            started_by: self.members[leader].presence.clone(),
            message,
            timeout_ms,
            ends_at_ms: now_ms.saturating_add(timeout_ms),
            asked: self
                .members
                .iter()
                .enumerate()
                .map(|(index, seat)| (seat.presence.clone(), (index == leader).then_some(true)))
                .collect(),
        };
        let mut effects = Effects::default();
        let started = Event::ReadyCheckStarted {
            party_id: self.id,
            seq: self.seq,
            check: check.view(),
        };
        self.tell_members(&mut effects, None, &started);
        let check_id = check.check_id;
        // A party of one: its leader is everyone asked.
        let all_ready = check.all_ready();
        self.ready_check = Some(check);
        if all_ready {
            self.end_ready_check(ReadyCheckOutcome::AllReady, &mut effects);
        }
        Ok((check_id, effects))
    }

    /// An asked member answers check `check_id`, or changes its answer.
    /// The same answer again changes nothing. The last member to answer
    /// ready ends the check (`AllReady`) in the same change.
    pub fn answer_ready_check(
        &mut self,
        caller: SessionId,
        check_id: u64,
        ready: bool,
    ) -> Result<Effects<L>, PartyError> {
        let index = self.seat_of_session(caller).ok_or(PartyError::NotMember)?;
        let check = self
            .ready_check
            .as_mut()
            .filter(|check| check.check_id == check_id)
            .ok_or(PartyError::NoReadyCheck)?;
        let answer = check.answer_of(caller).ok_or(PartyError::NotAsked)?;
        let mut effects = Effects::default();
        if *answer == Some(ready) {
            return Ok(effects);
        }
        *answer = Some(ready);
        let all_ready = check.all_ready();
        self.seq += 1;
        let answered = Event::ReadyCheckAnswered {
            party_id: self.id,
            seq: self.seq,
            check_id,
            presence: self.members[index].presence.clone(),
            ready,
        };
        self.tell_members(&mut effects, None, &answered);
        if all_ready {
            self.end_ready_check(ReadyCheckOutcome::AllReady, &mut effects);
        }
        Ok(effects)
    }

    /// Leader only: ends the running check now (`Cancelled`).
    pub fn cancel_ready_check(&mut self, caller: SessionId) -> Result<Effects<L>, PartyError> {
        self.require_leader(caller)?;
        if self.ready_check.is_none() {
            return Err(PartyError::NoReadyCheck);
        }
        self.seq += 1;
        let mut effects = Effects::default();
        self.end_ready_check(ReadyCheckOutcome::Cancelled, &mut effects);
        Ok(effects)
    }

    /// Check `check_id`'s time is up: it ends (`TimedOut`) if it still
    /// runs; otherwise (it ended, another began) nothing happens.
    pub fn ready_check_timed_out(&mut self, check_id: u64) -> Effects<L> {
        let mut effects = Effects::default();
        if self
            .ready_check
            .as_ref()
            .is_some_and(|check| check.check_id == check_id)
        {
            self.seq += 1;
            self.end_ready_check(ReadyCheckOutcome::TimedOut, &mut effects);
        }
        effects
    }

    /// Tells every member the result, at the current `seq`.
    fn end_ready_check(&mut self, outcome: ReadyCheckOutcome, effects: &mut Effects<L>) {
        let Some(check) = self.ready_check.take() else {
            return;
        };
        let view = check.view();
        let ended = Event::ReadyCheckEnded {
            party_id: self.id,
            seq: self.seq,
            check_id: check.check_id,
            outcome,
            ready: view.ready,
            not_ready: view.not_ready,
            no_answer: view.no_answer,
        };
        effects.changes.push(ended.clone());
        self.tell_members(effects, None, &ended);
    }

    /// After a change of members: an asked member who is gone counts as
    /// not ready (the others are told, at this change's `seq`); a party
    /// with nobody left has no check.
    pub(super) fn ready_check_after_departures(&mut self, effects: &mut Effects<L>) {
        if self.members.is_empty() {
            self.ready_check = None;
            return;
        }
        let Some(check) = self.ready_check.as_mut() else {
            return;
        };
        let mut gone = Vec::new();
        for (presence, answer) in &mut check.asked {
            let seated = self
                .members
                .iter()
                .any(|seat| seat.presence.session_id == presence.session_id);
            if !seated && *answer != Some(false) {
                *answer = Some(false);
                gone.push(presence.clone());
            }
        }
        let check_id = check.check_id;
        for presence in gone {
            let answered = Event::ReadyCheckAnswered {
                party_id: self.id,
                seq: self.seq,
                check_id,
                presence,
                ready: false,
            };
            self.tell_members(effects, None, &answered);
        }
    }
}
