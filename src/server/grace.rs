//! The one place that owns session timers: what happens when a connection
//! is lost (seats held, members told, leader handed over) and when a grace
//! window ends without a resume; also for the sessions of a lost node,
//! whose seats the parties here hold for a resume on another node; and
//! what a connection's measured quality tells the parties of its session
//! (the next leader, under `LeaderPolicy::ConnectionQuality`).

use super::session::SessionDeadline;
use super::session::SessionRef;
use super::state::{deliver, Shared};
use tokio::time::Instant;

/// Marks the session's seats disconnected everywhere, then sets the
/// leader-grace and grace deadlines.
pub(crate) fn connection_lost(shared: &Shared, session: &SessionRef, generation: u64) {
    tracing::info!(grace = ?shared.config.grace, "connection lost; seats held");
    hold_seats(shared, session, generation);
}

fn hold_seats(shared: &Shared, session: &SessionRef, generation: u64) {
    let hand_over_now = shared.config.leader_grace.is_zero();
    set_connected(shared, session, false, hand_over_now);
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

/// A lost node's session (`proxy`, seated here): its seats are held as
/// for a lost connection, members told and the lead passed on the same
/// way, until a resume on another node takes them (the proxy then ends,
/// and its timers find it so) or the grace window ends.
pub(crate) fn hold_for_lost_node(shared: &Shared, proxy: &SessionRef) {
    tracing::info!(session = %proxy.session_id(), grace = ?shared.config.grace, "a lost node's session: its seats here are held for a resume on another node");
    hold_seats(shared, proxy, proxy.generation());
}

/// A lost node's session, held here through the grace window, was not
/// resumed anywhere: it leaves, as a session that ended.
pub(crate) fn held_seats_over(shared: &Shared, proxy: &SessionRef) {
    tracing::info!(session = %proxy.session_id(), "grace window over for a lost node's session; its seats end");
    shared.route().drop_proxy(proxy);
    end_session(shared, proxy);
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
            if !session.end(generation, true) {
                return;
            }
            match session.remote.is_some() {
                // A lost node's session, held here: not a session of this
                // node's registry (one resumed here has the same id).
                true => held_seats_over(shared, &session),
                false => {
                    tracing::info!(session = %session.session_id(), "grace window over; session removed");
                    finish(shared, &session);
                }
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
