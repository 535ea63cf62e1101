//! A session that resumes on another node than the one that issued its
//! resume token (its flow moved, behind a load balancer): the node the
//! client reached takes the session over, and every party that holds a
//! seat or a request of it re-points that seat to the new node
//! (docs/CLUSTER.md, "Resume on any node"). The client gets snapshots.

use super::snapshots_of;
use crate::protocol::{
    CloseCode, ErrorBody, ErrorCode, PartyId, Presence, Resumed, ResumedParty, SessionId, Welcome,
};
use crate::server::peers::{Answer, HandOverFacts, NodeId, Question};
use crate::server::route::Route;
use crate::server::session::{lock, OutboxSender, ResumeToken, SessionLink, SessionRef};
use crate::server::state::{deliver, Shared};
use std::collections::HashMap;
use std::sync::Arc;

/// Who resumes: the identity the Hello proved, and where from.
pub(crate) struct Resuming {
    pub(crate) user_id: String,
    pub(crate) username: String,
    pub(crate) token: ResumeToken,
    /// The protocol version of the resuming Hello: the session speaks it
    /// here (it resumes from snapshots, so no logged event was made for
    /// another version).
    pub(crate) version: u16,
    pub(crate) address: Option<crate::server::player_limits::AddressKey>,
}

fn refused(message: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::ResumeRefused, message)
}

/// Whether a resume token names another node of this cluster (then
/// `resume_elsewhere` serves it).
pub(crate) fn names_another_node(shared: &Shared, token: &ResumeToken) -> bool {
    let route = shared.route();
    route.clustered() && token.node != route.me
}

/// The client's session lives on the node its token names: that node hands
/// it over (checking the secret), the session is made here with the same
/// id, and the homes of its parties re-point its seats here. Answers the
/// Welcome (always from snapshots), the session and its attachment.
pub(crate) async fn resume_elsewhere(
    shared: &Shared,
    resuming: Resuming,
    connection: Option<quinn::Connection>,
    outbox: OutboxSender,
) -> Result<(Welcome, SessionRef, u64), ErrorBody> {
    let route = shared.route();
    let token = &resuming.token;
    let old_node = token.node;
    if shared.find_session(token.session).is_some() {
        return Err(refused("resume token already used; start a new session"));
    }
    // With the cluster's key, a token this cluster did not issue to this
    // user is refused here; without it, only its node can tell (its secret).
    if shared.resume_key.cluster_wide && !shared.resume_key.verifies(token, &resuming.user_id) {
        return Err(refused(
            "resume token not issued by this cluster for this user",
        ));
    }
    if !route.knows(old_node) {
        return Err(refused(
            "the node that held this session is not in the cluster; start a new session",
        ));
    }
    let question = Question::HandOver {
        session: token.session,
        user_id: resuming.user_id.clone(),
        secret: token.secret,
        to: route.me,
    };
    let facts = match route.ask_node(old_node, question).await {
        Some(Answer::HandedOver(Some(facts))) => *facts,
        Some(_) => {
            return Err(refused(
                "resume token unknown, already used, another user's, or its grace window is over; start a new session",
            ))
        }
        None => {
            return Err(refused(
                "the node that held this session did not answer; start a new session",
            ))
        }
    };
    let presence = Presence {
        user_id: resuming.user_id,
        username: resuming.username,
        session_id: token.session,
    };
    let session = Arc::new(
        SessionLink::new(
            presence,
            crate::server::replay::ReplayLog::new(
                shared.config.replay_events,
                shared.config.replay_bytes,
            ),
            shared.metrics.clone(),
        )
        .numbered_from(facts.next_event_seq)
        .opened_from(resuming.address)
        .speaking(resuming.version),
    );
    {
        let mut social = lock(&session.social);
        social.status = facts.status.clone();
        social.visible = facts.visible;
        social.follows = facts.follows.iter().cloned().collect();
    }
    // Before its followers here see it (presence hides it by its list).
    session.replace_blocks(facts.blocks.iter().cloned().collect());
    // Counted as a session of its user here; the old node let it go.
    shared
        .register_session(session.clone())
        .map_err(|_| refused("this user has the most sessions allowed here"))?;
    crate::server::metrics::count(&shared.metrics.sessions_resumed);
    crate::server::presence::session_started(&shared.users, route, &session);
    let attached = session
        .attach(connection, outbox, None)
        .map_err(|_| refused("the session ended while it resumed"))?;
    let (parties, waiting) = take_seats(shared, &session, old_node, facts).await;
    tracing::info!(from = %format_args!("{old_node:08x}"), parties = parties.len(), "session resumed from another node");
    let welcome = Welcome {
        session_id: session.session_id(),
        presence: session.presence.clone(),
        resume_token: shared.resume_key.issue(
            session.session_id(),
            &session.presence.user_id,
            route.me,
            attached.resume_secret,
        ),
        limits: shared.limits.clone(),
        last_event_seq: attached.last_event_seq,
        resumed: Resumed::Snapshots { parties, waiting },
    };
    Ok((welcome, session, attached.generation))
}

/// The session's seats and requests follow it here: those the old node
/// homes came re-pointed with its facts, those homed here are re-pointed
/// here, the others by their homes. Their snapshots, and the requests
/// that wait.
async fn take_seats(
    shared: &Shared,
    session: &SessionRef,
    old_node: NodeId,
    facts: HandOverFacts,
) -> (Vec<ResumedParty>, Vec<PartyId>) {
    let route = shared.route();
    let (mut parties, mut waiting) = (facts.parties, facts.waiting);
    let mut homes: HashMap<NodeId, ()> = HashMap::new();
    for party_id in &facts.elsewhere {
        let home = route.home_of(*party_id);
        if home != route.me && home != old_node {
            homes.insert(home, ());
        }
    }
    // Parties homed here: the proxy of the old node gives way to the session.
    if let Some(proxy) = route.take_proxy(session.session_id()) {
        if Route::lives_on(&proxy, old_node) {
            let (here, queued) = relink_here(shared, &proxy, session);
            parties.extend(here);
            waiting.extend(queued);
        }
    }
    // Noted before asking the others, so a home lost meanwhile ends them.
    note_remote(session, &parties, &waiting, route);
    for home in homes.into_keys() {
        let question = Question::Repoint {
            session: session.session_id(),
            user_id: session.presence.user_id.clone(),
            from: old_node,
            to: route.me,
        };
        if let Some(Answer::Snapshots {
            parties: found,
            waiting: queued,
        }) = route.ask_node(home, question).await
        {
            note_remote(session, &found, &queued, route);
            parties.extend(found);
            waiting.extend(queued);
        }
    }
    (parties, waiting)
}

/// What the session now holds on other homes: its set of parties, and
/// their last `seq` (for `Closed` when a home is lost).
fn note_remote(session: &SessionRef, parties: &[ResumedParty], waiting: &[PartyId], route: &Route) {
    for party in parties {
        let party_id = party.snapshot.party_id;
        if !route.is_here(party_id) {
            session.note_party(party_id, true);
            Route::note_seat(session, party_id, party.snapshot.seq, Some(true));
        }
    }
    for party_id in waiting {
        if !route.is_here(*party_id) {
            session.note_party(*party_id, true);
            Route::note_seat(session, *party_id, 0, Some(false));
        }
    }
}

/// Gives `new` the seats and requests `old` holds in parties homed here
/// (a seat held disconnected comes back: its members hear
/// `MemberConnection`); their snapshots and the requests that wait.
pub(crate) fn relink_here(
    shared: &Shared,
    old: &SessionRef,
    new: &SessionRef,
) -> (Vec<ResumedParty>, Vec<PartyId>) {
    let me = new.session_id();
    let mut moved = Vec::new();
    for party_id in old.party_ids() {
        let relinked = shared.table.relink(party_id, me, new.clone(), |old, new| {
            old.note_party(party_id, false);
            new.note_party(party_id, true);
        });
        if relinked.is_some() {
            let _ = shared.table.apply(
                party_id,
                |party| party.set_connected(me, true, false).map(|e| ((), e)),
                |_, effects| deliver(shared, effects),
            );
            moved.push(party_id);
        }
    }
    snapshots_of(shared, me, moved)
}

/// On the node a token names: hands session `session` over to node `to`
/// if `secret` is its current one. Its connection is closed
/// (`Superseded`), it leaves this node without leaving its parties, and
/// the parties homed here re-point its seats to `to`.
pub(crate) fn hand_over(
    shared: &Shared,
    session_id: SessionId,
    user_id: &str,
    secret: uuid::Uuid,
    to: NodeId,
) -> Answer {
    let route = shared.route();
    let Some(session) = shared.find_session(session_id) else {
        return Answer::HandedOver(None);
    };
    if session.presence.user_id != user_id || session.remote.is_some() {
        return Answer::HandedOver(None);
    }
    let Some(handed) = session.hand_over(secret) else {
        return Answer::HandedOver(None);
    };
    if let Some(connection) = handed.connection {
        connection.close(
            (CloseCode::Superseded as u32).into(),
            b"session resumed on another node",
        );
    }
    shared.forget_session(session_id);
    let (status, visible, follows) = {
        let social = lock(&session.social);
        let follows = social.follows.iter().cloned().collect();
        (social.status.clone(), social.visible, follows)
    };
    // Out of the users here without an offline for its followers: it is
    // still online, on the other node.
    lock(&session.social).visible = false;
    crate::server::presence::session_ended(&shared.users, route, &session);
    // Its solo ticket (a party's stays with its party).
    shared.matchmaking.session_ended(session_id);
    let elsewhere = session
        .party_ids()
        .into_iter()
        .filter(|party_id| !route.is_here(*party_id))
        .collect();
    let proxy = route.proxy(session.presence.clone(), to);
    // The same session through the proxy: the same list, before the
    // parties here look at it again.
    let blocks = session.block_list();
    proxy.replace_blocks(blocks.iter().cloned().collect());
    let (parties, waiting) = relink_here(shared, &session, &proxy);
    tracing::info!(session = %session_id, to = %format_args!("{to:08x}"), "session handed over to another node");
    Answer::HandedOver(Some(Box::new(HandOverFacts {
        next_event_seq: handed.next_event_seq,
        status,
        visible,
        follows,
        blocks,
        parties,
        waiting,
        elsewhere,
    })))
}

/// On a party's home: the seats and requests of session `session_id`,
/// which sat here through node `from`, now go through node `to`.
pub(crate) fn repoint(
    shared: &Shared,
    session_id: SessionId,
    user_id: &str,
    from: NodeId,
    to: NodeId,
) -> Answer {
    let route = shared.route();
    let empty = Answer::Snapshots {
        parties: Vec::new(),
        waiting: Vec::new(),
    };
    let Some(old) = route.find_proxy(session_id) else {
        return empty;
    };
    if !Route::lives_on(&old, from) || old.presence.user_id != user_id {
        return empty;
    }
    let _ = route.take_proxy(session_id);
    let new = route.proxy(old.presence.clone(), to);
    new.replace_blocks(old.block_list().into_iter().collect());
    let (parties, waiting) = relink_here(shared, &old, &new);
    // The old proxy holds nothing now; a timer of it finds it ended.
    old.end_now();
    Answer::Snapshots { parties, waiting }
}
