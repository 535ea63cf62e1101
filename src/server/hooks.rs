//! Server hooks: the embedding game's own rules and analytics.
//!
//! A `Hooks` implementation, given to `ServerBuilder::hooks`, is
//! asked before each command that changes a party (create, join, join
//! request, accept, reject, kick, promote, close, update, reliable data,
//! invite, matchmaking ticket, ready check, mute) or a session's block
//! list (block, unblock), and may allow it, deny it with an error the
//! client receives, or change it. It is asked for a new session's block
//! list (a platform's, say) before the session is welcomed. It is told
//! afterwards when parties are created and closed, members join and
//! leave, leaders change, and ready checks end.
//!
//! A hook runs on the calling session's task, outside every lock, within
//! [`super::config::ServerConfig::hook_timeout`]. A hook that panics or overruns
//! fails that one command with `HookFailed`; the server and the other
//! sessions are untouched (a hook that blocks its thread instead of
//! awaiting cannot be stopped: use `spawn_blocking` for blocking work).
//! After-hooks run one at a time on a task of their own, from a bounded
//! queue: a slow analytics sink loses events (counted, and logged), it
//! never slows a party down.

use super::hook_events::HookState;
pub use super::hook_events::{AfterEvent, HookPoint};
use crate::protocol::{Command, ErrorBody, ErrorCode, PartyId, Presence};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
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

    /// The block list a new session of `user_id` starts with (a
    /// platform's block list, the game's own), asked once per new session
    /// (not on a resume) before its Welcome. Ids that break the user id
    /// rule, and the user's own, are left out, and only the first
    /// `MAX_BLOCKS` are kept; a hook that fails or overruns leaves the
    /// list empty (counted as a hook failure). Later changes go through
    /// [`super::api::ServerApi::set_blocks`]. Default: none.
    fn block_list<'a>(&'a self, user_id: &'a str) -> HookFuture<'a, Vec<String>> {
        let _ = user_id;
        Box::pin(async { Vec::new() })
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

    fn block_list<'a>(&'a self, user_id: &'a str) -> HookFuture<'a, Vec<String>> {
        (**self).block_list(user_id)
    }
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
    pub server: super::api::ServerApi,
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

/// The game's hooks, run within their time budget; what they are told
/// and what failed is kept in the server's [`HookState`].
pub(crate) struct HookRunner {
    hooks: Arc<dyn Hooks>,
    budget: Duration,
    state: Arc<HookState>,
}

impl HookRunner {
    pub(crate) fn new(hooks: Arc<dyn Hooks>, budget: Duration, state: Arc<HookState>) -> Self {
        HookRunner {
            hooks,
            budget,
            state,
        }
    }

    /// Drains the after-hook queue, one event at a time, each within the
    /// time budget.
    pub(crate) async fn run_after(self: Arc<Self>, mut queue: mpsc::Receiver<AfterEvent>) {
        while let Some(event) = queue.recv().await {
            if let Err(failure) = guarded(self.budget, || self.hooks.after(&event)).await {
                self.state.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(?event, "after-hook {failure}");
            }
        }
    }

    /// Asks the before-hook about `command` at `point` (for `party_id`):
    /// `Ok` with the command to run (as sent, or as the hook changed it),
    /// or the refusal to answer.
    pub(crate) async fn before(
        &self,
        server: super::api::ServerApi,
        caller: Presence,
        (point, party_id): (HookPoint, Option<PartyId>),
        command: Command,
    ) -> Result<Command, ErrorBody> {
        let call = BeforeCall {
            point,
            caller,
            party_id,
            command,
            server,
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
                self.state.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(?point, ?changed, "before-hook changed the command's kind");
                Err(ErrorBody::new(
                    ErrorCode::HookFailed,
                    "the server's rules failed on this command",
                ))
            }
            Err(failure) => {
                self.state.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(?point, "before-hook {failure}");
                Err(ErrorBody::new(
                    ErrorCode::HookFailed,
                    format!("the server's rules {failure} on this command"),
                ))
            }
        }
    }
}

impl HookRunner {
    /// The block list a new session of `user_id` starts with, as the
    /// game's hook says it, kept to the rules a session's own list keeps
    /// (what breaks them is left out and logged); empty when the hook
    /// fails.
    pub(crate) async fn block_list(&self, user_id: &str) -> Vec<String> {
        let listed = match guarded(self.budget, || self.hooks.block_list(user_id)).await {
            Ok(listed) => listed,
            Err(failure) => {
                self.state.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(user_id, "block-list hook {failure}");
                return Vec::new();
            }
        };
        let given = listed.len();
        let mut kept: Vec<String> = listed
            .into_iter()
            .filter(|blocked| blocked != user_id)
            .filter(|blocked| crate::auth::validate_name("user id", blocked).is_ok())
            .collect();
        kept.sort_unstable();
        kept.dedup();
        kept.truncate(crate::protocol::MAX_BLOCKS);
        if kept.len() != given {
            tracing::warn!(user_id, given, kept = kept.len(), "block-list hook: ids left out (invalid, the user's own, repeated, or past MAX_BLOCKS)");
        }
        kept
    }
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
