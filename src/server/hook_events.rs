//! What the game's hooks are told, and the queue that carries it: the
//! after-events a party's change implies, the hook points, and the
//! counters of what failed or was dropped. Low in the server, so that the
//! code that delivers a change can tell the hooks without knowing them
//! (the hooks module holds the game's hooks and runs them).

use crate::party::Effects;
use crate::protocol::{Event, LeaveReason, PartyId, Presence, ReadyCheckOutcome};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Which rule a before-hook is asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HookPoint {
    /// `CreateParty`.
    CreateParty,
    /// `JoinParty` or `JoinByCode` on an open party (or one the caller is
    /// invited to): the caller would be seated.
    Join,
    /// `JoinParty` or `JoinByCode` on a closed party: the caller would wait
    /// for the leader.
    JoinRequest,
    /// `AcceptJoinRequest`.
    Accept,
    /// `Reject`, or `Remove` of a requester.
    Reject,
    /// `Kick`, or `Remove` of a member.
    Kick,
    /// `Promote`.
    Promote,
    /// `Close`.
    Close,
    /// `Update`.
    Update,
    /// `SendData` (reliable party data; datagrams are not hooked).
    ReliableData,
    /// `Invite`.
    Invite,
    /// `SubmitTicket`.
    Matchmaking,
    /// `StartReadyCheck`.
    ReadyCheck,
    /// `Mute` (a member muting another for itself; `Unmute` is not asked).
    Mute,
    /// `Block` or `Unblock`: the session changes its own block list (the
    /// game may keep it, or refuse to unblock a platform's block).
    Block,
}

/// What after-hooks are told.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AfterEvent {
    /// A party began, with `leader` as its first member.
    PartyCreated {
        /// The party.
        party_id: PartyId,
        /// Its leader.
        leader: Presence,
    },
    /// A party ended: closed by its leader or the server, or its last
    /// member left.
    PartyClosed {
        /// The party.
        party_id: PartyId,
    },
    /// Someone took a seat.
    MemberJoined {
        /// The party.
        party_id: PartyId,
        /// The new member.
        member: Presence,
    },
    /// Someone lost a seat (a party's last member leaving is told too,
    /// before `PartyClosed`; a close is told as `PartyClosed` alone).
    MemberLeft {
        /// The party.
        party_id: PartyId,
        /// The member who left.
        member: Presence,
        /// Why.
        reason: LeaveReason,
    },
    /// Leadership passed.
    LeaderChanged {
        /// The party.
        party_id: PartyId,
        /// The new leader.
        leader: Presence,
    },
    /// A ready check ended (everyone ready, timed out, or cancelled): who
    /// was ready, who was not (or had left), who never answered.
    ReadyCheckEnded {
        /// The party.
        party_id: PartyId,
        /// The check (the party `seq` of its start).
        check_id: u64,
        /// Why it ended.
        outcome: ReadyCheckOutcome,
        /// Members that were ready.
        ready: Vec<Presence>,
        /// Members that were not ready, or had left.
        not_ready: Vec<Presence>,
        /// Members that never answered.
        no_answer: Vec<Presence>,
    },
}

/// After-events waiting for the after-hook task; more are dropped.
const AFTER_QUEUE: usize = 16 * 1024;

/// Where after-events go (the after-hook task drains it), and what went
/// wrong with hooks: kept with the server's state.
pub(crate) struct HookState {
    after: mpsc::Sender<AfterEvent>,
    pub(crate) after_dropped: AtomicU64,
    pub(crate) failures: AtomicU64,
}

impl HookState {
    /// The state, and the receiving end the after-hook task drains.
    pub(crate) fn new() -> (HookState, mpsc::Receiver<AfterEvent>) {
        let (after, queue) = mpsc::channel(AFTER_QUEUE);
        let state = HookState {
            after,
            after_dropped: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        };
        (state, queue)
    }

    /// Queues an after-event; never waits.
    pub(crate) fn tell(&self, event: AfterEvent) {
        if self.after.try_send(event).is_err() {
            let dropped = self.after_dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Once per thousand: a stuck sink must not flood the log too.
            if dropped % 1000 == 1 {
                tracing::warn!(dropped, "after-hook queue full: events dropped");
            }
        }
    }

    /// The after-events one operation's effects imply.
    pub(crate) fn tell_effects<L>(&self, effects: &Effects<L>) {
        for event in &effects.changes {
            match event {
                Event::MemberJoined {
                    party_id, presence, ..
                } => self.tell(AfterEvent::MemberJoined {
                    party_id: *party_id,
                    member: presence.clone(),
                }),
                Event::MemberLeft {
                    party_id,
                    presence,
                    reason,
                    ..
                } => self.tell(AfterEvent::MemberLeft {
                    party_id: *party_id,
                    member: presence.clone(),
                    reason: *reason,
                }),
                Event::LeaderChanged {
                    party_id, leader, ..
                } => self.tell(AfterEvent::LeaderChanged {
                    party_id: *party_id,
                    leader: leader.clone(),
                }),
                Event::ReadyCheckEnded {
                    party_id,
                    check_id,
                    outcome,
                    ready,
                    not_ready,
                    no_answer,
                    ..
                } => self.tell(AfterEvent::ReadyCheckEnded {
                    party_id: *party_id,
                    check_id: *check_id,
                    outcome: *outcome,
                    ready: ready.clone(),
                    not_ready: not_ready.clone(),
                    no_answer: no_answer.clone(),
                }),
                _ => {}
            }
        }
        if let Some(party_id) = effects.ended {
            self.tell(AfterEvent::PartyClosed { party_id });
        }
    }
}
