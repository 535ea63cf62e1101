//! The one place that owns session timers: what happens when a connection
//! is lost (seats held, members told, leader handed over) and when a grace
//! window ends without a resume.

use super::commands::{deliver, end_session};
use super::session::SessionRef;
use super::Shared;
use std::sync::Arc;

/// Marks the session's seats disconnected everywhere, then starts the
/// leader-grace and grace timers.
pub(crate) fn connection_lost(shared: &Arc<Shared>, session: &SessionRef, generation: u64) {
    let me = session.session_id();
    let hand_over_now = shared.config.leader_grace.is_zero();
    set_connected(shared, session, false, hand_over_now);
    tracing::info!(grace = ?shared.config.grace, "connection lost; seats held");

    if !hand_over_now {
        let (shared, session) = (shared.clone(), session.clone());
        tokio::spawn(async move {
            tokio::time::sleep(shared.config.leader_grace).await;
            if session.is_detached_since(generation) {
                for party_id in session.party_ids() {
                    let _ = shared.table.apply(
                        party_id,
                        |party| Ok(((), party.leader_grace_over(me))),
                        |_, effects| deliver(&shared, effects),
                    );
                }
            }
        });
    }

    let (shared, session) = (shared.clone(), session.clone());
    tokio::spawn(async move {
        tokio::time::sleep(shared.config.grace).await;
        if session.end(generation, true) {
            tracing::info!(session = %me, "grace window over; session removed");
            finish(&shared, &session);
        }
    });
}

/// Tells every party of the session that it is (dis)connected.
pub(crate) fn set_connected(
    shared: &Shared,
    session: &SessionRef,
    connected: bool,
    hand_over_now: bool,
) {
    let me = session.session_id();
    for party_id in session.party_ids() {
        // Requests (not seats) answer NotMember: nothing to tell then.
        let _ = shared.table.apply(
            party_id,
            |party| {
                party
                    .set_connected(me, connected, hand_over_now)
                    .map(|effects| ((), effects))
            },
            |_, effects| deliver(shared, effects),
        );
    }
}

/// The session is over: out of the registry and out of every party.
pub(crate) fn finish(shared: &Shared, session: &SessionRef) {
    shared.forget_session(session.session_id());
    end_session(shared, session);
    shared.users.session_ended(session);
}
