//! Server hooks: the embedding game's own rules and analytics.
//!
//! A `Hooks` implementation, given to [`super::ServerBuilder::hooks`], is
//! asked before each command that changes a party (create, join, join
//! request, accept, reject, kick, promote, close, update, reliable data,
//! invite, matchmaking ticket) and may allow it, deny it with an error the
//! client receives, or change it. It is told afterwards when parties are
//! created and closed, members join and leave, and leaders change.
//!
//! A hook runs on the calling session's task, outside every lock, within
//! [`super::ServerConfig::hook_timeout`]. A hook that panics or overruns
//! fails that one command with `HookFailed`; the server and the other
//! sessions are untouched (a hook that blocks its thread instead of
//! awaiting cannot be stopped: use `spawn_blocking` for blocking work).
//! After-hooks run one at a time on a task of their own, from a bounded
//! queue: a slow analytics sink loses events (counted, and logged), it
//! never slows a party down.

use super::peers::{Answer, HookFacts, Question};
use super::session::SessionRef;
use super::Shared;
use crate::party::Effects;
use crate::protocol::{Command, ErrorBody, ErrorCode, Event, LeaveReason, PartyId, Presence};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// What a hook returns: a boxed future, so that `Hooks` stays object-safe.
pub type HookFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The embedding game's rules (before-hooks) and analytics (after-hooks).
/// Both methods have defaults that do nothing, so an implementation
/// overrides only what it needs.
pub trait Hooks: Send + Sync + 'static {
    /// Before a command runs. Default: allow.
    fn before<'a>(&'a self, call: &'a BeforeCall) -> HookFuture<'a, Decision> {
        let _ = call;
        Box::pin(async { Decision::Allow })
    }

    /// After something happened to a party. Default: nothing.
    fn after<'a>(&'a self, event: &'a AfterEvent) -> HookFuture<'a, ()> {
        let _ = event;
        Box::pin(async {})
    }
}

/// Shared hooks (kept by the game as well, to read what they gathered).
impl<H: Hooks + ?Sized> Hooks for Arc<H> {
    fn before<'a>(&'a self, call: &'a BeforeCall) -> HookFuture<'a, Decision> {
        (**self).before(call)
    }

    fn after<'a>(&'a self, event: &'a AfterEvent) -> HookFuture<'a, ()> {
        (**self).after(event)
    }
}

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
}

/// A command about to run.
#[derive(Clone, Debug)]
pub struct BeforeCall {
    /// Which rule this is.
    pub point: HookPoint,
    /// Who sent it.
    pub caller: Presence,
    /// The party it concerns, when it names one (for `JoinByCode`, the
    /// party the code leads to).
    pub party_id: Option<PartyId>,
    /// The command as the client sent it.
    pub command: Command,
    /// The server, to look at its parties and sessions (do not wait on
    /// anything that waits for this command).
    pub server: super::ServerApi,
}

/// A before-hook's answer.
#[derive(Clone, Debug)]
pub enum Decision {
    /// Run the command as sent.
    Allow,
    /// Refuse it: the client gets this error (any code; `Denied` unless
    /// another says more).
    Deny(ErrorBody),
    /// Run this command instead. It must be the same command kind (a
    /// `CreateParty` with a clamped `max_size` or a set label, say);
    /// another kind fails the command with `HookFailed`.
    Modify(Command),
}

impl Decision {
    /// `Deny` with code `Denied` and `message`.
    pub fn deny(message: impl Into<String>) -> Decision {
        Decision::Deny(ErrorBody::new(ErrorCode::Denied, message))
    }
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
}

/// After-events waiting for the after-hook task; more are dropped.
const AFTER_QUEUE: usize = 16 * 1024;

/// The installed hooks and the after-hook queue.
pub(crate) struct HookRunner {
    hooks: Arc<dyn Hooks>,
    budget: Duration,
    after: mpsc::Sender<AfterEvent>,
    pub(crate) after_dropped: AtomicU64,
    pub(crate) failures: AtomicU64,
}

impl HookRunner {
    /// The runner, and the receiving end the after-hook task drains.
    pub(crate) fn new(
        hooks: Arc<dyn Hooks>,
        budget: Duration,
    ) -> (HookRunner, mpsc::Receiver<AfterEvent>) {
        let (after, queue) = mpsc::channel(AFTER_QUEUE);
        let runner = HookRunner {
            hooks,
            budget,
            after,
            after_dropped: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        };
        (runner, queue)
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
                _ => {}
            }
        }
        if let Some(party_id) = effects.ended {
            self.tell(AfterEvent::PartyClosed { party_id });
        }
    }

    /// Drains the after-hook queue, one event at a time, each within the
    /// time budget.
    pub(crate) async fn run_after(self: Arc<Self>, mut queue: mpsc::Receiver<AfterEvent>) {
        while let Some(event) = queue.recv().await {
            if let Err(failure) = guarded(self.budget, || self.hooks.after(&event)).await {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(?event, "after-hook {failure}");
            }
        }
    }

    /// Asks the before-hook about `command`; `Ok` with the command to run
    /// (as sent, or as the hook changed it), or the refusal to answer.
    pub(crate) async fn before(
        &self,
        shared: &Arc<Shared>,
        session: &SessionRef,
        command: Command,
    ) -> Result<Command, ErrorBody> {
        let Some((point, party_id)) = point_of(shared, &session.presence, &command).await else {
            return Ok(command);
        };
        let call = BeforeCall {
            point,
            caller: session.presence.clone(),
            party_id,
            command,
            server: super::ServerApi {
                shared: shared.clone(),
            },
        };
        match guarded(self.budget, || self.hooks.before(&call)).await {
            Ok(Decision::Allow) => Ok(call.command),
            Ok(Decision::Deny(refusal)) => Err(refusal),
            Ok(Decision::Modify(changed))
                if std::mem::discriminant(&changed) == std::mem::discriminant(&call.command) =>
            {
                Ok(changed)
            }
            Ok(Decision::Modify(changed)) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(?point, ?changed, "before-hook changed the command's kind");
                Err(ErrorBody::new(
                    ErrorCode::HookFailed,
                    "the server's rules failed on this command",
                ))
            }
            Err(failure) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(?point, "before-hook {failure}");
                Err(ErrorBody::new(
                    ErrorCode::HookFailed,
                    format!("the server's rules {failure} on this command"),
                ))
            }
        }
    }
}

/// Which hook a command meets, and the party it names; `None` for the
/// commands no hook is asked about. Joins and removals ask the party's
/// home (this node, or the one it lives on) whether the caller would be
/// seated and whether the one removed holds a seat; the answer may be
/// stale by the time the command runs, and the rules decide then as
/// always. A party nobody can find meets the hook as a plain `Join` (or
/// `Kick`): the command then fails on its own.
async fn point_of(
    shared: &Shared,
    caller: &Presence,
    command: &Command,
) -> Option<(HookPoint, Option<PartyId>)> {
    Some(match command {
        Command::CreateParty { .. } => (HookPoint::CreateParty, None),
        Command::JoinParty { party_id } => {
            let facts = facts(shared, *party_id, caller, None).await;
            (join_point(facts), Some(*party_id))
        }
        Command::JoinByCode { code } => {
            // An unknown code fails on its own (and counts as a guess).
            let party_id = party_of_code(shared, code).await?;
            let facts = facts(shared, party_id, caller, None).await;
            (join_point(facts), Some(party_id))
        }
        Command::AcceptJoinRequest { party_id, .. } => (HookPoint::Accept, Some(*party_id)),
        Command::Reject { party_id, .. } => (HookPoint::Reject, Some(*party_id)),
        Command::Kick { party_id, .. } => (HookPoint::Kick, Some(*party_id)),
        Command::Remove { party_id, user_id } => {
            let seated = facts(shared, *party_id, caller, Some(user_id))
                .await
                .is_none_or(|facts| facts.target_seated);
            let point = if seated {
                HookPoint::Kick
            } else {
                HookPoint::Reject
            };
            (point, Some(*party_id))
        }
        Command::Promote { party_id, .. } => (HookPoint::Promote, Some(*party_id)),
        Command::Close { party_id } => (HookPoint::Close, Some(*party_id)),
        Command::Update { party_id, .. } => (HookPoint::Update, Some(*party_id)),
        Command::SendData { party_id, .. } => (HookPoint::ReliableData, Some(*party_id)),
        Command::Invite { party_id, .. } => (HookPoint::Invite, Some(*party_id)),
        Command::SubmitTicket(request) => (HookPoint::Matchmaking, request.party_id),
        _ => return None,
    })
}

/// A join seats the caller (open party, live invite) or queues a request.
fn join_point(facts: Option<HookFacts>) -> HookPoint {
    match facts {
        Some(HookFacts {
            would_seat: false, ..
        }) => HookPoint::JoinRequest,
        _ => HookPoint::Join,
    }
}

/// What the party's home says of `party_id` for this caller.
async fn facts(
    shared: &Shared,
    party_id: PartyId,
    caller: &Presence,
    target: Option<&String>,
) -> Option<HookFacts> {
    let question = Question::HookFacts {
        party_id,
        caller: caller.user_id.clone(),
        target: target.cloned(),
    };
    let answer = shared
        .route()
        .ask_home(party_id, question, |question| {
            super::commands::answer(shared, question)
        })
        .await;
    match answer {
        Some(Answer::HookFacts(facts)) => facts,
        _ => None,
    }
}

/// The party a join code leads to: here, or on any other node.
async fn party_of_code(shared: &Shared, code: &str) -> Option<PartyId> {
    if let Ok(party_id) = shared.table.party_of_code(code) {
        return Some(party_id);
    }
    shared
        .route()
        .ask_all(Question::FindCode(code.to_string()))
        .await
        .into_iter()
        .find_map(|(_, answer)| match answer {
            Answer::Code(found) => found,
            _ => None,
        })
}

/// Why a hook gave no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HookFailure {
    Panicked,
    TimedOut,
}

impl std::fmt::Display for HookFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HookFailure::Panicked => "panicked",
            HookFailure::TimedOut => "ran out of time",
        })
    }
}

/// Runs a hook within `budget`, catching a panic in making the future or
/// in any poll of it.
async fn guarded<'a, T>(
    budget: Duration,
    make: impl FnOnce() -> HookFuture<'a, T>,
) -> Result<T, HookFailure> {
    let future = panic::catch_unwind(AssertUnwindSafe(make)).map_err(|_| HookFailure::Panicked)?;
    match tokio::time::timeout(budget, CatchPanic(future)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(())) => Err(HookFailure::Panicked),
        Err(_) => Err(HookFailure::TimedOut),
    }
}

/// A future whose panics become `Err(())`.
struct CatchPanic<'a, T>(HookFuture<'a, T>);

impl<T> Future for CatchPanic<'_, T> {
    type Output = Result<T, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match panic::catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_hook_that_overruns_its_budget_times_out() {
        let slow = guarded(Duration::from_millis(100), || {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                1
            })
        });
        assert_eq!(slow.await, Err(HookFailure::TimedOut));
        let quick = guarded(Duration::from_millis(100), || Box::pin(async { 2 }));
        assert_eq!(quick.await, Ok(2));
    }

    #[tokio::test]
    async fn a_hook_that_panics_making_or_polling_its_future_is_caught() {
        let in_poll = guarded(Duration::from_secs(1), || {
            Box::pin(async {
                tokio::task::yield_now().await;
                panic!("hook bug");
            })
        });
        assert_eq!(in_poll.await, Err::<(), _>(HookFailure::Panicked));
        let in_make = guarded::<()>(Duration::from_secs(1), || panic!("hook bug"));
        assert_eq!(in_make.await, Err(HookFailure::Panicked));
    }
}
