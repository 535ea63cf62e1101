//! The one place that owns session timers: what happens when a connection
//! is lost (seats held, members told, leader handed over) and when a grace
//! window ends without a resume; and what a connection's measured quality
//! tells the parties of its session (the next leader, under
//! `LeaderPolicy::ConnectionQuality`).

use super::session::SessionDeadline;
use super::session::SessionRef;
use super::state::{deliver, Shared};
use tokio::time::Instant;

/// Marks the session's seats disconnected everywhere, then sets the
/// leader-grace and grace deadlines.
pub(crate) fn connection_lost(shared: &Shared, session: &SessionRef, generation: u64) {
    let hand_over_now = shared.config.leader_grace.is_zero();
    set_connected(shared, session, false, hand_over_now);
    tracing::info!(grace = ?shared.config.grace, "connection lost; seats held");
    let now = Instant::now();
    if !hand_over_now {
        shared.deadlines.schedule(
            now + shared.config.leader_grace,
            SessionDeadline::LeaderGrace {
                session: session.clone(),
                generation,
            },
        );
    }
    shared.deadlines.schedule(
        now + shared.config.grace,
        SessionDeadline::Grace {
            session: session.clone(),
            generation,
        },
    );
}

/// A deadline came due: act on it unless the session came back.
pub(crate) fn deadline_reached(shared: &Shared, deadline: SessionDeadline) {
    match deadline {
        SessionDeadline::LeaderGrace {
            session,
            generation,
        } => {
            if session.is_detached_since(generation) {
                leader_grace_over(shared, &session);
                shared.route().tell_leader_grace_over(&session);
            }
        }
        SessionDeadline::Grace {
            session,
            generation,
        } => {
            if session.end(generation, true) {
                tracing::info!(session = %session.session_id(), "grace window over; session removed");
                finish(shared, &session);
            }
        }
        SessionDeadline::ReadyCheck { party_id, check_id } => {
            // Gone with its party, or ended sooner: nothing to do.
            let _ = shared.table.apply(
                party_id,
                |party| Ok(((), party.ready_check_timed_out(check_id))),
                |_, effects| deliver(shared, effects),
            );
        }
    }
}

/// A lost session's leader grace is over in every party of it here.
pub(crate) fn leader_grace_over(shared: &Shared, session: &SessionRef) {
    let me = session.session_id();
    for party_id in session.party_ids() {
        let _ = shared.table.apply(
            party_id,
            |party| Ok(((), party.leader_grace_over(me))),
            |_, effects| deliver(shared, effects),
        );
    }
}

/// Tells every party of the session that it is (dis)connected: here, and
/// (for a local session in a cluster) on the homes of its remote parties.
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
    shared
        .route()
        .tell_connection(session, connected, hand_over_now);
}

/// The session's connection measured `score`, a change worth telling
/// (the quality module decides): its seats and requests keep it, here and
/// (for a local session in a cluster) on the homes of its remote parties.
/// Nobody is told: snapshots show it, and the next choice of a leader
/// reads it.
pub(crate) fn connection_measured(shared: &Shared, session: &SessionRef, score: u32) {
    let me = session.session_id();
    for party_id in session.party_ids() {
        // Not homed here: its home hears below.
        let _ = shared
            .table
            .with_party_mut(party_id, |party| Ok(party.set_score(me, Some(score))));
    }
    shared.route().tell_quality(session, score);
    super::metrics::count(&shared.metrics.quality_reports);
}

/// The session is over: out of the registry and out of every party.
pub(crate) fn finish(shared: &Shared, session: &SessionRef) {
    shared.forget_session(session.session_id());
    end_session(shared, session);
    super::presence::session_ended(&shared.users, shared.route(), session);
    shared.matchmaking.session_ended(session.session_id());
}

/// A session is gone: it leaves every party it sat in and cancels every
/// request it had waiting, exactly as if it had left.
pub(crate) fn end_session(shared: &Shared, session: &SessionRef) {
    let me = session.session_id();
    // Before its set is taken: the homes of its remote parties.
    shared.route().tell_session_ended(session);
    for party_id in session.take_parties() {
        // The party may have closed meanwhile; then there is nothing to leave.
        let _ = shared.table.apply(
            party_id,
            |party| {
                Ok((
                    (),
                    party.leave(me, crate::protocol::LeaveReason::SessionEnded)?,
                ))
            },
            |_, effects| deliver(shared, effects),
        );
    }
}
